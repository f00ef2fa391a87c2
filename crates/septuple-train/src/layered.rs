//! The fast path: SGD on a [`Layered`] network by batched per-layer matrix products, with a
//! sparse input layer when the inputs are mostly zero (MNIST: about 81 % zero pixels), in f64
//! or f32 ([`Precision`]): one kernel source, generic over the private [`Real`] trait.
//!
//! Determinism: every parallel loop writes disjoint outputs whose values are computed in a fixed
//! order (rows of the first layer's pre-activations by sample, rows of its weight gradient by
//! input pixel, each summed over the batch in batch order), so results do not depend on the
//! number of threads. The dense products use `ndarray`'s single-threaded `matrixmultiply`.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, CowArray, Ix1, Ix2, Zip};
use rayon::prelude::*;
use septuple_core::{Activation, Layered};
use serde::{Deserialize, Serialize};

use crate::config::Precision;
use crate::data::Dataset;
use crate::error::{DataError, NetworkError, TrainError};
use crate::real::Real;

/// Inputs whose fraction of zeros is at least this are stored sparse (compressed rows). Below
/// it the dense product is as fast or faster.
pub const SPARSE_INPUT_THRESHOLD: f64 = 0.5;

/// Batch samples per parallel task of the per-sample work: about 32 tasks per batch, at least
/// 4 samples each. (A function of the batch size only, so results do not depend on threads.)
fn forward_chunk(nb: usize) -> usize {
    (nb / 32).clamp(4, 64)
}

/// Input features per parallel task of the input layer's gradient (elements of type `T`).
/// Every task scans the whole batch, so large batches get fewer, larger tasks; for small
/// batches a task's gradient rows take the same bytes in f32 as in f64 (18 KB at width 40,
/// within L1), so f32 tasks cover twice the features and scan the batch half as often. Always
/// a multiple of [`MARK`]. (A function of the batch size and type only; the chunking does not
/// change any sum, whose terms are added in batch order.)
fn gradient_chunk<T>(nb: usize) -> usize {
    if nb <= 1000 {
        56 * std::mem::size_of::<f64>() / std::mem::size_of::<T>()
    } else {
        196
    }
}

/// Input features between two marks of [`Csr`]: the gradient chunks' boundaries are marks.
const MARK: usize = 28;

/// Compressed sparse rows of a sample matrix, with each row's positions of the features
/// 0, [`MARK`], 2 [`MARK`], ... (so that a gradient task finds its features without a search).
#[derive(Clone, Debug)]
struct Csr<T> {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<T>,
    /// Row i's `marks_per_row` entries: for mark k, the position in the row of its first
    /// feature >= k MARK (the row's length past its last feature).
    marks: Vec<u32>,
    marks_per_row: usize,
}

impl<T: Real> Csr<T> {
    /// The non-zeros of `x`, rounded to `T`.
    fn from_dense(x: ArrayView2<'_, f64>) -> Self {
        let marks_per_row = x.ncols().div_ceil(MARK) + 1;
        let mut indptr = Vec::with_capacity(x.nrows() + 1);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut marks = Vec::with_capacity(x.nrows() * marks_per_row);
        indptr.push(0);
        for row in x.axis_iter(Axis(0)) {
            let start = indices.len();
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    values.push(T::from_f64(v));
                }
            }
            let own = &indices[start..];
            let mut at = 0;
            for k in 0..marks_per_row {
                while at < own.len() && (own[at] as usize) < k * MARK {
                    at += 1;
                }
                marks.push(at as u32);
            }
            indptr.push(indices.len());
        }
        Csr {
            indptr,
            indices,
            values,
            marks,
            marks_per_row,
        }
    }

    fn row(&self, i: usize) -> (&[u32], &[T]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// The positions in row i of its features in `lo..hi`, for `lo` a multiple of [`MARK`] and
    /// `hi` a multiple of it or the number of features (a gradient chunk's bounds).
    #[inline(always)]
    fn span(&self, i: usize, lo: usize, hi: usize) -> std::ops::Range<usize> {
        let m = &self.marks[i * self.marks_per_row..(i + 1) * self.marks_per_row];
        m[lo / MARK] as usize..m[hi.div_ceil(MARK)] as usize
    }
}

#[derive(Clone, Debug)]
enum Inputs<T> {
    Sparse(Csr<T>),
    Dense,
}

/// Gradients of the mean batch loss with respect to every layer's weights and biases, in the
/// layout of [`Layered`]: `weights[l]` has the shape of W_{l+1}.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGradients {
    /// dL/dW_l, one matrix per layer (shape (n_{l+1}, n_l)).
    pub weights: Vec<Array2<f64>>,
    /// dL/db_l, one vector per layer.
    pub biases: Vec<Array1<f64>>,
    /// The mean loss over the batch at the parameters the gradient was taken at.
    pub loss: f64,
}

/// The instruction sets the fast path's kernels may use, an option of the
/// [`Trainer`](crate::Trainer) ([`with_kernels`](crate::Trainer::with_kernels)) and of
/// [`LayeredWorkspace::with_kernels`]. The kernels use no fused multiply-add, so every choice
/// gives the same bits; only the speed differs (AVX-512 lowers the clock of some CPUs, which
/// can make it slower than AVX2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// The widest the CPU has: AVX-512, else AVX2, else portable code (the default).
    #[default]
    Auto,
    /// AVX2 at most.
    NoAvx512,
    /// Portable code only.
    Generic,
}

/// The instruction set the kernels were compiled for (chosen once, at run time). The kernels
/// use no fused multiply-add, so every choice gives the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest instruction set the CPU has within what `kernels` allows.
    fn detect(kernels: Kernels) -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if kernels == Kernels::Auto && std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if kernels != Kernels::Generic && std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        let _ = kernels;
        Isa::Generic
    }
}

/// Where each layer's values sit in a sample's row of the batch buffer: for every non-input
/// layer k, its activations, derivatives and deltas (n_{k+1} each) from `base[k]`; then the
/// sample's loss.
#[derive(Clone, Debug)]
struct Layout {
    n: Vec<usize>,
    base: Vec<usize>,
    loss: usize,
    stride: usize,
}

impl Layout {
    fn new(n: &[usize]) -> Self {
        let mut base = Vec::with_capacity(n.len() - 1);
        let mut at = 0;
        for &width in &n[1..] {
            base.push(at);
            at += 3 * width;
        }
        Layout {
            n: n.to_vec(),
            base,
            loss: at,
            stride: at + 1,
        }
    }
    fn act(&self, k: usize) -> std::ops::Range<usize> {
        self.base[k]..self.base[k] + self.n[k + 1]
    }
    fn der(&self, k: usize) -> std::ops::Range<usize> {
        let w = self.n[k + 1];
        self.base[k] + w..self.base[k] + 2 * w
    }
    fn del(&self, k: usize) -> std::ops::Range<usize> {
        let w = self.n[k + 1];
        self.base[k] + 2 * w..self.base[k] + 3 * w
    }
}

/// Working memory of the fast path for one network shape and one training set, in the
/// precision it was made for ([`Precision`]): the weights in both layouts (W_l^T,
/// n_l x n_{l+1}, whose rows the forward pass and the input layer read, and W_l for the
/// backward pass), one buffer row per batch sample, gradients, and the input-feature index of
/// the batch; in f32 also the training set's inputs and targets rounded to f32.
///
/// Parameters and gradients cross its interface in f64: [`store`](Self::store) widens f32
/// parameters exactly, [`load`](Self::load) rounds to the workspace's precision, and
/// [`gradients`](Self::gradients) widens f32 gradients.
#[derive(Clone, Debug)]
pub struct LayeredWorkspace {
    buffers: Buffers,
}

/// The workspace's arrays in its precision.
#[derive(Clone, Debug)]
enum Buffers {
    F64(Arrays<f64>),
    F32(Arrays<f32>),
}

/// `$body` with `$a` bound to the workspace's arrays, whichever their precision.
macro_rules! on_arrays {
    ($buffers:expr, $a:ident => $body:expr) => {
        match $buffers {
            Buffers::F64($a) => $body,
            Buffers::F32($a) => $body,
        }
    };
}

/// The arrays of a workspace in precision `T`.
///
/// Invariant: every array is allocated in standard (row-major) layout by [`Arrays::new`] and
/// afterwards only written in place (`assign`, `scaled_add`, slices), so the kernels'
/// `as_slice` views always exist.
#[derive(Clone, Debug)]
struct Arrays<T: Real> {
    layout: Layout,
    inputs: Inputs<T>,
    isa: Isa,
    wt: Vec<Array2<T>>,
    w: Vec<Array2<T>>,
    b: Vec<Array1<T>>,
    rows: Vec<T>,
    gwt: Vec<Array2<T>>,
    gb: Vec<Array1<T>>,
    capacity: usize,
    data: T::Data,
}

/// Read-only state shared by the tasks of one batch.
struct Shared<'a, T, A> {
    layout: &'a Layout,
    wt: &'a [Array2<T>],
    w: &'a [Array2<T>],
    b: &'a [Array1<T>],
    activations: &'a [A],
    inputs: &'a Inputs<T>,
    x: ArrayView2<'a, T>,
    targets: ArrayView2<'a, T>,
    batch: &'a [usize],
    scale: T,
}

/// A non-finite parameter met by `assign_parameters`, as a divergence.
fn diverged(e: septuple_core::CoreError) -> TrainError {
    match e {
        septuple_core::CoreError::NonFinite { what, .. } => TrainError::Diverged {
            epoch: 0,
            what: format!("a value of the {what}"),
        },
        other => other.into(),
    }
}

impl LayeredWorkspace {
    /// Memory for f64 batches of at most `capacity` samples of `data` on a network shaped like
    /// `net`; the network's parameters are copied in.
    pub fn new<A: Activation>(
        net: &Layered<A>,
        data: &Dataset,
        capacity: usize,
    ) -> Result<Self, TrainError> {
        Self::with_precision(net, data, capacity, Precision::F64)
    }

    /// Memory for batches of at most `capacity` samples of `data` on a network shaped like
    /// `net`, computing in `precision`; the network's parameters are copied in (rounded to
    /// f32 for [`Precision::F32`], as are the data's inputs and targets, once).
    pub fn with_precision<A: Activation>(
        net: &Layered<A>,
        data: &Dataset,
        capacity: usize,
        precision: Precision,
    ) -> Result<Self, TrainError> {
        let buffers = match precision {
            Precision::F64 => Buffers::F64(Arrays::new(net, data, capacity)?),
            Precision::F32 => Buffers::F32(Arrays::new(net, data, capacity)?),
        };
        Ok(LayeredWorkspace { buffers })
    }

    /// The same workspace with its kernels limited to what `kernels` allows.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        on_arrays!(&mut self.buffers, a => a.isa = Isa::detect(kernels));
        self
    }

    /// The precision the workspace computes in.
    pub fn precision(&self) -> Precision {
        on_arrays!(&self.buffers, a => a.precision())
    }

    /// Whether the input layer uses the sparse representation.
    pub fn sparse_inputs(&self) -> bool {
        on_arrays!(&self.buffers, a => matches!(a.inputs, Inputs::Sparse(_)))
    }

    /// Copy the workspace's parameters into `net` (exactly: f32 values widen to f64 without
    /// rounding).
    pub fn store<A: Activation>(&self, net: &mut Layered<A>) -> Result<(), TrainError> {
        on_arrays!(&self.buffers, a => a.store(net))
    }

    /// Copy `net`'s parameters into the workspace (exactly in f64, rounded to nearest in f32).
    pub fn load<A: Activation>(&mut self, net: &Layered<A>) {
        on_arrays!(&mut self.buffers, a => a.load(net))
    }

    /// Whether every parameter is finite.
    pub fn parameters_finite(&self) -> bool {
        on_arrays!(&self.buffers, a => a.parameters_finite())
    }

    /// The gradient of the mean boundary loss (Eq. 2.11) over the samples `batch` of `data`
    /// (indices into the dataset the workspace was made for) at the workspace's parameters,
    /// in the layout of [`Layered`], computed in the workspace's precision and returned in f64.
    pub fn gradients<A: Activation>(
        &mut self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
    ) -> Result<LayerGradients, TrainError> {
        on_arrays!(&mut self.buffers, a => a.gradients(activations, data, batch))
    }

    /// One SGD step on the mean boundary loss (Eq. 2.11) of the samples `batch`; returns the
    /// loss before the step (in f32 training, the f32 loss widened). After an error the
    /// parameters are unspecified (the trainer stops and keeps its last checkpoint).
    pub fn step<A: Activation>(
        &mut self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
        learning_rate: f64,
    ) -> Result<f64, TrainError> {
        on_arrays!(&mut self.buffers, a => a.step(activations, data, batch, learning_rate))
    }
}

impl<T: Real> Arrays<T> {
    fn new<A: Activation>(
        net: &Layered<A>,
        data: &Dataset,
        capacity: usize,
    ) -> Result<Self, TrainError> {
        let sizes = net.layer_sizes().to_vec();
        data.check_widths(sizes[0], sizes[sizes.len() - 1])?;
        let capacity = capacity.clamp(1, data.len());
        let inputs = if data.input_sparsity() >= SPARSE_INPUT_THRESHOLD {
            Inputs::Sparse(Csr::from_dense(data.inputs()))
        } else {
            Inputs::Dense
        };
        let copy = T::copy_data(data, matches!(inputs, Inputs::Dense));
        let layers = sizes.len() - 1;
        let layout = Layout::new(&sizes);
        let rounded =
            |a: ArrayView2<'_, f64>| a.mapv(T::from_f64).as_standard_layout().into_owned();
        Ok(Arrays {
            inputs,
            isa: Isa::detect(Kernels::Auto),
            wt: net.weights().iter().map(|w| rounded(w.t())).collect(),
            w: net.weights().iter().map(|w| rounded(w.view())).collect(),
            b: net
                .biases()
                .iter()
                .map(|b| b.mapv(T::from_f64).as_standard_layout().into_owned())
                .collect(),
            rows: vec![T::ZERO; capacity * layout.stride],
            gwt: (0..layers)
                .map(|k| Array2::zeros((sizes[k], sizes[k + 1])))
                .collect(),
            gb: (0..layers).map(|k| Array1::zeros(sizes[k + 1])).collect(),
            capacity,
            layout,
            data: copy,
        })
    }

    fn precision(&self) -> Precision {
        T::PRECISION
    }

    /// Read the inputs of `data` densely from now on.
    #[cfg(test)]
    fn read_dense(&mut self, data: &Dataset) {
        self.inputs = Inputs::Dense;
        self.data = T::copy_data(data, true);
    }

    fn store<A: Activation>(&self, net: &mut Layered<A>) -> Result<(), TrainError> {
        // W_1 is kept only transposed (the backward pass does not need it). In f64 the views
        // are borrowed, in f32 widened copies.
        let weights: Vec<CowArray<'_, f64, Ix2>> = std::iter::once(T::widen(self.wt[0].t()))
            .chain(self.w.iter().skip(1).map(|w| T::widen(w.view())))
            .collect();
        let biases: Vec<CowArray<'_, f64, Ix1>> =
            self.b.iter().map(|b| T::widen(b.view())).collect();
        let weights: Vec<ArrayView2<'_, f64>> = weights.iter().map(|w| w.view()).collect();
        let biases: Vec<ArrayView1<'_, f64>> = biases.iter().map(|b| b.view()).collect();
        net.assign_parameters(&weights, &biases).map_err(diverged)
    }

    fn load<A: Activation>(&mut self, net: &Layered<A>) {
        for ((wt, ws), w) in self.wt.iter_mut().zip(&mut self.w).zip(net.weights()) {
            Zip::from(wt)
                .and(w.t())
                .for_each(|a, &v| *a = T::from_f64(v));
            Zip::from(ws).and(w).for_each(|a, &v| *a = T::from_f64(v));
        }
        for (bw, b) in self.b.iter_mut().zip(net.biases()) {
            Zip::from(bw).and(b).for_each(|a, &v| *a = T::from_f64(v));
        }
    }

    fn parameters_finite(&self) -> bool {
        self.wt.iter().all(|w| w.iter().all(|v| v.finite()))
            && self.b.iter().all(|b| b.iter().all(|v| v.finite()))
    }

    fn gradients<A: Activation>(
        &mut self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
    ) -> Result<LayerGradients, TrainError> {
        let loss = self.run(activations, data, batch, None)?;
        Ok(LayerGradients {
            weights: self
                .gwt
                .iter()
                .map(|g| T::widen(g.t()).as_standard_layout().into_owned())
                .collect(),
            biases: self
                .gb
                .iter()
                .map(|g| T::widen(g.view()).into_owned())
                .collect(),
            loss: loss.to_f64(),
        })
    }

    fn step<A: Activation>(
        &mut self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
        learning_rate: f64,
    ) -> Result<f64, TrainError> {
        let eta = T::from_f64(learning_rate);
        Ok(self.run(activations, data, batch, Some(eta))?.to_f64())
    }

    fn check<A>(
        &self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
    ) -> Result<(), TrainError> {
        let nb = batch.len();
        if nb == 0 || nb > self.capacity {
            return Err(DataError::BatchSize {
                samples: nb,
                capacity: self.capacity,
            }
            .into());
        }
        if let Some(&index) = batch.iter().find(|&&i| i >= data.len()) {
            return Err(DataError::SampleIndex {
                index,
                samples: data.len(),
            }
            .into());
        }
        if let Inputs::Sparse(csr) = &self.inputs {
            if csr.indptr.len() != data.len() + 1 {
                return Err(DataError::Workspace {
                    workspace: csr.indptr.len() - 1,
                    dataset: data.len(),
                }
                .into());
            }
        }
        if let Some(samples) = T::copied_samples(&self.data) {
            if samples != data.len() {
                return Err(DataError::Workspace {
                    workspace: samples,
                    dataset: data.len(),
                }
                .into());
            }
        }
        data.check_widths(self.layout.n[0], self.layout.n[self.layout.n.len() - 1])?;
        if activations.len() != self.wt.len() {
            return Err(NetworkError::Activations {
                got: activations.len(),
                layers: self.wt.len(),
            }
            .into());
        }
        Ok(())
    }

    /// Forward and backward pass of a batch: gradients into `gwt`, `gb`; with a learning rate,
    /// also the SGD update. Returns the mean loss.
    fn run<A: Activation>(
        &mut self,
        activations: &[A],
        data: &Dataset,
        batch: &[usize],
        learning_rate: Option<T>,
    ) -> Result<T, TrainError> {
        self.check(activations, data, batch)?;
        self.sample_pass(activations, data, batch);
        self.weight_gradients(data, batch, learning_rate);
        let loss = self.batch_loss(batch.len());
        self.bias_gradients(batch.len());
        if !loss.finite() {
            return Err(TrainError::Diverged {
                epoch: 0,
                what: "the batch loss".into(),
            });
        }
        if let Some(eta) = learning_rate {
            self.update_after_input_layer(eta);
        }
        Ok(loss)
    }

    /// Per-sample work: forward through every layer, loss, deltas back to the first layer,
    /// into the first `batch.len()` rows of `rows`.
    fn sample_pass<A: Activation>(&mut self, activations: &[A], data: &Dataset, batch: &[usize]) {
        let nb = batch.len();
        let stride = self.layout.stride;
        let isa = self.isa;
        let (x, targets) = T::views(&self.data, data);
        let shared = Shared {
            layout: &self.layout,
            wt: &self.wt,
            w: &self.w,
            b: &self.b,
            activations,
            inputs: &self.inputs,
            x,
            targets,
            batch,
            scale: T::from_f64(1.0 / nb as f64),
        };
        let fc = forward_chunk(nb);
        self.rows[..nb * stride]
            .par_chunks_mut(fc * stride)
            .enumerate()
            .for_each(|(c, chunk)| sample_rows(isa, &shared, c * fc, chunk));
    }

    /// Per-parameter work: every weight gradient row sums over the batch in batch order. The
    /// input layer's update is done in the same tasks (W_1 is not needed again in this step);
    /// the other layers are updated by [`update_after_input_layer`](Self::update_after_input_layer).
    fn weight_gradients(&mut self, data: &Dataset, batch: &[usize], learning_rate: Option<T>) {
        let nb = batch.len();
        let isa = self.isa;
        let rows = &self.rows[..nb * self.layout.stride];
        let lay = &self.layout;
        let (g0, g_rest) = self.gwt.split_at_mut(1);
        // Standard layout: the invariant of Arrays.
        let wt0 = self.wt[0]
            .as_slice_mut()
            .expect("workspace weights are in standard layout");
        let inputs = &self.inputs;
        let (x, _) = T::views(&self.data, data);
        rayon::join(
            || {
                let width = lay.n[1];
                // Standard layout: the invariant of Arrays.
                let g = g0[0]
                    .as_slice_mut()
                    .expect("workspace gradients are in standard layout");
                let gc = gradient_chunk::<T>(nb);
                g.par_chunks_mut(gc * width)
                    .zip(wt0.par_chunks_mut(gc * width))
                    .enumerate()
                    .for_each(|(c, (chunk, w))| {
                        input_gradient_rows(isa, lay, inputs, x, batch, rows, c * gc, chunk);
                        if let Some(eta) = learning_rate {
                            axpy(w, -eta, chunk);
                        }
                    });
            },
            || {
                for (k, g) in g_rest.iter_mut().enumerate() {
                    hidden_gradient(isa, lay, k + 1, nb, rows, g);
                }
            },
        );
    }

    /// The mean over the first `nb` rows of their losses, summed in batch order.
    fn batch_loss(&self, nb: usize) -> T {
        let stride = self.layout.stride;
        let mut loss = T::ZERO;
        for r in 0..nb {
            loss += self.rows[r * stride + self.layout.loss];
        }
        loss / T::from_f64(nb as f64)
    }

    /// The bias gradients into `gb`: each layer's deltas summed over the first `nb` rows in
    /// batch order.
    fn bias_gradients(&mut self, nb: usize) {
        let stride = self.layout.stride;
        for (k, gb) in self.gb.iter_mut().enumerate() {
            gb.fill(T::ZERO);
            // Standard layout: the invariant of Arrays.
            let gs = gb.as_slice_mut().expect("standard layout");
            for r in 0..nb {
                let d = &self.rows[r * stride..][self.layout.del(k)];
                gs.iter_mut().zip(d).for_each(|(a, &b)| *a += b);
            }
        }
    }

    /// The SGD update with learning rate `eta` of every bias and of the weights of every layer
    /// but the input layer (updated with its gradient in
    /// [`weight_gradients`](Self::weight_gradients)).
    fn update_after_input_layer(&mut self, eta: T) {
        for k in 0..self.wt.len() {
            if k > 0 {
                self.wt[k].scaled_add(-eta, &self.gwt[k]);
                self.w[k].scaled_add(-eta, &self.gwt[k].t());
            }
            self.b[k].scaled_add(-eta, &self.gb[k]);
        }
    }
}

macro_rules! with_isa {
    ($isa:expr, $generic:ident, $avx2:ident, $avx512:ident, ($($arg:expr),*)) => {
        match $isa {
            // The crate's only unsafe code: calling a function compiled for an instruction set.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Isa::Avx512` is only chosen when the CPU reports avx512f (`Isa::detect`).
            Isa::Avx512 => unsafe { $avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            // SAFETY: `Isa::Avx2` is only chosen when the CPU reports avx2 (`Isa::detect`).
            Isa::Avx2 => unsafe { $avx2($($arg),*) },
            Isa::Generic => $generic($($arg),*),
        }
    };
}

fn sample_rows<T: Real, A: Activation>(
    isa: Isa,
    sh: &Shared<'_, T, A>,
    first: usize,
    buf: &mut [T],
) {
    with_isa!(
        isa,
        sample_rows_generic,
        sample_rows_avx2,
        sample_rows_avx512,
        (sh, first, buf)
    )
}

fn sample_rows_generic<T: Real, A: Activation>(sh: &Shared<'_, T, A>, first: usize, buf: &mut [T]) {
    sample_rows_impl::<false, T, A>(sh, first, buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sample_rows_avx2<T: Real, A: Activation>(sh: &Shared<'_, T, A>, first: usize, buf: &mut [T]) {
    sample_rows_impl::<false, T, A>(sh, first, buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sample_rows_avx512<T: Real, A: Activation>(sh: &Shared<'_, T, A>, first: usize, buf: &mut [T]) {
    sample_rows_impl::<true, T, A>(sh, first, buf)
}

/// Forward pass, loss and deltas of the batch samples `first..` whose rows are `buf`. With
/// `PAIRS` (AVX-512, whose 32 registers hold the accumulators of two samples), the forward
/// pass runs two samples at a time, so that the two chains of additions into their
/// pre-activations overlap; each sample's terms are still added in the same order, so the bits
/// do not change.
#[inline(always)]
fn sample_rows_impl<const PAIRS: bool, T: Real, A: Activation>(
    sh: &Shared<'_, T, A>,
    first: usize,
    buf: &mut [T],
) {
    let lay = sh.layout;
    let layers = lay.n.len() - 1;
    let stride = lay.stride;
    if PAIRS {
        let done = buf.len() / stride / 2 * 2;
        let mut pairs = buf.chunks_exact_mut(2 * stride);
        for (p, pair) in (&mut pairs).enumerate() {
            let (r1, r2) = pair.split_at_mut(stride);
            let (i1, i2) = (sh.batch[first + 2 * p], sh.batch[first + 2 * p + 1]);
            for k in 0..layers {
                forward_layer2(sh, k, i1, r1, i2, r2);
            }
        }
        for (r, row) in pairs.into_remainder().chunks_mut(stride).enumerate() {
            for k in 0..layers {
                forward_layer(sh, k, sh.batch[first + done + r], row);
            }
        }
    } else {
        for (r, row) in buf.chunks_mut(stride).enumerate() {
            for k in 0..layers {
                forward_layer(sh, k, sh.batch[first + r], row);
            }
        }
    }
    for (r, row) in buf.chunks_mut(stride).enumerate() {
        loss_and_deltas(sh, sh.batch[first + r], row);
    }
}

/// Layer k's activations and derivatives in the row of sample i (the previous layer's
/// activations in place).
#[inline(always)]
fn forward_layer<T: Real, A: Activation>(sh: &Shared<'_, T, A>, k: usize, i: usize, row: &mut [T]) {
    let lay = sh.layout;
    let width = lay.n[k + 1];
    let (lo, hi) = row.split_at_mut(lay.base[k]);
    let (z, hi) = hi.split_at_mut(width);
    let d = &mut hi[..width];
    // Standard layout: the invariant of Arrays.
    z.copy_from_slice(sh.b[k].as_slice().expect("standard layout"));
    let w = sh.wt[k].as_slice().expect("standard layout");
    if k == 0 {
        match sh.inputs {
            Inputs::Sparse(csr) => {
                let (idx, val) = csr.row(i);
                gather_rows(
                    z,
                    idx.iter().map(|&p| p as usize).zip(val.iter().copied()),
                    w,
                );
            }
            Inputs::Dense => {
                for (p, &v) in sh.x.row(i).iter().enumerate() {
                    if v != T::ZERO {
                        axpy(z, v, &w[p * width..(p + 1) * width]);
                    }
                }
            }
        }
    } else {
        let a = &lo[lay.act(k - 1)];
        gather_rows(z, a.iter().copied().enumerate(), w);
    }
    T::apply(&sh.activations[k], z, d);
}

/// [`forward_layer`] for samples i1 and i2 (rows `r1`, `r2`) at once: the same terms in the
/// same order for each.
#[inline(always)]
fn forward_layer2<T: Real, A: Activation>(
    sh: &Shared<'_, T, A>,
    k: usize,
    i1: usize,
    r1: &mut [T],
    i2: usize,
    r2: &mut [T],
) {
    let lay = sh.layout;
    if k == 0 && matches!(sh.inputs, Inputs::Dense) {
        forward_layer(sh, k, i1, r1);
        forward_layer(sh, k, i2, r2);
        return;
    }
    let width = lay.n[k + 1];
    let (lo1, hi1) = r1.split_at_mut(lay.base[k]);
    let (z1, hi1) = hi1.split_at_mut(width);
    let (lo2, hi2) = r2.split_at_mut(lay.base[k]);
    let (z2, hi2) = hi2.split_at_mut(width);
    // Standard layout: the invariant of Arrays.
    let b = sh.b[k].as_slice().expect("standard layout");
    z1.copy_from_slice(b);
    z2.copy_from_slice(b);
    let w = sh.wt[k].as_slice().expect("standard layout");
    match sh.inputs {
        Inputs::Sparse(csr) if k == 0 => {
            let terms = |i| {
                let (idx, val): (&[u32], &[T]) = csr.row(i);
                idx.iter().map(|&p| p as usize).zip(val.iter().copied())
            };
            gather_rows2(z1, terms(i1), z2, terms(i2), w);
        }
        _ => {
            let a1 = &lo1[lay.act(k - 1)];
            let a2 = &lo2[lay.act(k - 1)];
            gather_rows2(
                z1,
                a1.iter().copied().enumerate(),
                z2,
                a2.iter().copied().enumerate(),
                w,
            );
        }
    }
    T::apply(&sh.activations[k], z1, &mut hi1[..width]);
    T::apply(&sh.activations[k], z2, &mut hi2[..width]);
}

/// The loss and the deltas of every layer in the row of sample i, after the forward pass.
#[inline(always)]
fn loss_and_deltas<T: Real, A: Activation>(sh: &Shared<'_, T, A>, i: usize, row: &mut [T]) {
    let lay = sh.layout;
    let layers = lay.n.len() - 1;
    // Loss and output delta: d(mean 1/2 |x_out - t|^2)/dx_out = (x_out - t) / nb.
    let out = layers - 1;
    let t = sh.targets.row(i);
    let mut loss = T::ZERO;
    for j in 0..lay.n[layers] {
        let e = row[lay.act(out).start + j] - t[j];
        loss += e * e;
        row[lay.del(out).start + j] = e * sh.scale * row[lay.der(out).start + j];
    }
    row[lay.loss] = T::from_f64(0.5) * loss;
    // Deltas backwards: delta_{k-1} = (W_k^T delta_k) * f'_{k-1}, as rows of W_k.
    for k in (1..layers).rev() {
        let (lo, hi) = row.split_at_mut(lay.base[k]);
        let dk = &hi[2 * lay.n[k + 1]..3 * lay.n[k + 1]];
        let (lo_a, dprev) = lo.split_at_mut(lay.del(k - 1).start);
        let dprev = &mut dprev[..lay.n[k]];
        dprev.iter_mut().for_each(|v| *v = T::ZERO);
        // Standard layout: the invariant of Arrays.
        let w = sh.w[k].as_slice().expect("standard layout");
        gather_rows(dprev, dk.iter().copied().enumerate(), w);
        let der = &lo_a[lay.der(k - 1)];
        dprev.iter_mut().zip(der).for_each(|(v, &d)| *v *= d);
    }
}

#[allow(clippy::too_many_arguments)]
fn input_gradient_rows<T: Real>(
    isa: Isa,
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    with_isa!(
        isa,
        input_gradient_impl,
        input_gradient_avx2,
        input_gradient_avx512,
        (lay, inputs, x, batch, rows, first, g)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn input_gradient_avx2<T: Real>(
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    input_gradient_impl(lay, inputs, x, batch, rows, first, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn input_gradient_avx512<T: Real>(
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    input_gradient_impl(lay, inputs, x, batch, rows, first, g)
}

/// Rows `first..` of dL/dW_1^T: row p = sum over the batch (in batch order) of x_p delta_1.
/// Each task walks the whole batch and takes the non-zeros of its own rows (found by the
/// marks of each sample's compressed row), so no two tasks write the same row.
#[inline(always)]
fn input_gradient_impl<T: Real>(
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    g.iter_mut().for_each(|v| *v = T::ZERO);
    match lay.n[1] {
        60 => input_gradient_fixed::<60, T>(lay, inputs, x, batch, rows, first, g),
        40 => input_gradient_fixed::<40, T>(lay, inputs, x, batch, rows, first, g),
        20 => input_gradient_fixed::<20, T>(lay, inputs, x, batch, rows, first, g),
        10 => input_gradient_fixed::<10, T>(lay, inputs, x, batch, rows, first, g),
        _ => input_gradient_any(lay, inputs, x, batch, rows, first, g),
    }
}

/// [`input_gradient_impl`] for a first layer of width `W`, with zeroed `g`: the same terms
/// added in the same order, but each sample's delta is copied once into a local array (held in
/// registers across the sample's pixels) and the gradient is indexed by whole rows of `W`, so
/// that a term costs one bounds check and no dispatch on the width.
#[inline(always)]
fn input_gradient_fixed<const W: usize, T: Real>(
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    let del = lay.del(0).start;
    // The caller matched lay.n[1] == W, and g holds whole rows of the layer's width.
    let (g, _) = g.as_chunks_mut::<W>();
    let count = g.len();
    let lo = first as u32;
    for (r, &i) in batch.iter().enumerate() {
        let d: [T; W] = rows[r * lay.stride + del..][..W]
            .try_into()
            .expect("a delta row of W");
        match inputs {
            Inputs::Sparse(csr) => {
                let (idx, val) = csr.row(i);
                let span = csr.span(i, first, first + count);
                for (&p, &v) in idx[span.clone()].iter().zip(&val[span]) {
                    let gr = &mut g[(p - lo) as usize];
                    for k in 0..W {
                        gr[k] += v * d[k];
                    }
                }
            }
            Inputs::Dense => {
                for (gr, &v) in g.iter_mut().zip(x.row(i).iter().skip(first)) {
                    if v != T::ZERO {
                        for k in 0..W {
                            gr[k] += v * d[k];
                        }
                    }
                }
            }
        }
    }
}

/// [`input_gradient_impl`] for any width, with zeroed `g`.
#[inline(always)]
fn input_gradient_any<T: Real>(
    lay: &Layout,
    inputs: &Inputs<T>,
    x: ArrayView2<'_, T>,
    batch: &[usize],
    rows: &[T],
    first: usize,
    g: &mut [T],
) {
    let width = lay.n[1];
    let del = lay.del(0);
    let count = g.len() / width;
    // The chunk's bounds are marks of the Csr (gradient_chunk is a multiple of MARK).
    let lo = first as u32;
    for (r, &i) in batch.iter().enumerate() {
        let d = &rows[r * lay.stride..][del.clone()];
        match inputs {
            Inputs::Sparse(csr) => {
                let (idx, val) = csr.row(i);
                let span = csr.span(i, first, first + count);
                for (&p, &v) in idx[span.clone()].iter().zip(&val[span]) {
                    let o = (p - lo) as usize * width;
                    axpy(&mut g[o..o + width], v, d);
                }
            }
            Inputs::Dense => {
                for (k, &v) in x.row(i).iter().skip(first).take(count).enumerate() {
                    if v != T::ZERO {
                        axpy(&mut g[k * width..(k + 1) * width], v, d);
                    }
                }
            }
        }
    }
}

fn hidden_gradient<T: Real>(
    isa: Isa,
    lay: &Layout,
    k: usize,
    nb: usize,
    rows: &[T],
    g: &mut Array2<T>,
) {
    // Standard layout: the invariant of Arrays.
    let g = g
        .as_slice_mut()
        .expect("workspace gradients are in standard layout");
    with_isa!(
        isa,
        hidden_gradient_impl,
        hidden_gradient_avx2,
        hidden_gradient_avx512,
        (lay, k, nb, rows, g)
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn hidden_gradient_avx2<T: Real>(lay: &Layout, k: usize, nb: usize, rows: &[T], g: &mut [T]) {
    hidden_gradient_impl(lay, k, nb, rows, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn hidden_gradient_avx512<T: Real>(lay: &Layout, k: usize, nb: usize, rows: &[T], g: &mut [T]) {
    hidden_gradient_impl(lay, k, nb, rows, g)
}

/// dL/dW_{k+1}^T for a non-input layer k >= 1: row j = sum over the batch of a_{k-1,j} delta_k.
#[inline(always)]
fn hidden_gradient_impl<T: Real>(lay: &Layout, k: usize, nb: usize, rows: &[T], g: &mut [T]) {
    match lay.n[k + 1] {
        20 => hidden_gradient_fixed::<20, T>(lay, k, nb, rows, g),
        10 => hidden_gradient_fixed::<10, T>(lay, k, nb, rows, g),
        _ => hidden_gradient_any(lay, k, nb, rows, g),
    }
}

/// Rows of [`hidden_gradient_impl`] at a time in registers.
const HIDDEN_ROWS: usize = 4;

/// [`hidden_gradient_impl`] for a layer of width `W`: the same sums in the same (batch) order,
/// but [`HIDDEN_ROWS`] rows of the gradient at a time are held in registers across the whole
/// batch (one load of each delta serves them all, and no row is loaded and stored per term).
#[inline(always)]
fn hidden_gradient_fixed<const W: usize, T: Real>(
    lay: &Layout,
    k: usize,
    nb: usize,
    rows: &[T],
    g: &mut [T],
) {
    let act = lay.act(k - 1).start;
    let del = lay.del(k).start;
    // The caller matched lay.n[k + 1] == W: g holds n_k rows of W.
    let (g, _) = g.as_chunks_mut::<W>();
    let delta = |r: usize| -> &[T; W] {
        rows[r * lay.stride + del..][..W]
            .try_into()
            .expect("a delta row of W")
    };
    let j0 = g.len() / HIDDEN_ROWS * HIDDEN_ROWS;
    let mut groups = g.chunks_exact_mut(HIDDEN_ROWS);
    for (q, group) in (&mut groups).enumerate() {
        let j = q * HIDDEN_ROWS;
        let mut acc = [[T::ZERO; W]; HIDDEN_ROWS];
        for r in 0..nb {
            // Group q covers rows j..j + HIDDEN_ROWS of g, all within the n_k activations of
            // layer k - 1 (the groups are exact chunks of g's n_k rows).
            let a: &[T; HIDDEN_ROWS] = rows[r * lay.stride + act + j..][..HIDDEN_ROWS]
                .try_into()
                .expect("HIDDEN_ROWS activations");
            let d = delta(r);
            for (accm, &am) in acc.iter_mut().zip(a) {
                madd(accm, am, d);
            }
        }
        group.copy_from_slice(&acc);
    }
    for (m, gr) in groups.into_remainder().iter_mut().enumerate() {
        let mut acc = [T::ZERO; W];
        for r in 0..nb {
            madd(&mut acc, rows[r * lay.stride + act + j0 + m], delta(r));
        }
        *gr = acc;
    }
}

/// [`hidden_gradient_impl`] for any width.
#[inline(always)]
fn hidden_gradient_any<T: Real>(lay: &Layout, k: usize, nb: usize, rows: &[T], g: &mut [T]) {
    let width = lay.n[k + 1];
    g.iter_mut().for_each(|v| *v = T::ZERO);
    let act = lay.act(k - 1);
    let del = lay.del(k);
    for r in 0..nb {
        let row = &rows[r * lay.stride..(r + 1) * lay.stride];
        let d = &row[del.clone()];
        for (j, &a) in row[act.clone()].iter().enumerate() {
            axpy(&mut g[j * width..(j + 1) * width], a, d);
        }
    }
}

/// z += sum over (row j, coefficient v) of v * w[j], the rows of w having z's width, terms
/// added in the order given (each element of z sees the same additions in the same order as
/// with one `axpy` per term). z is processed in equal blocks (60, 40, 32, 30, 20, 16 or 10 wide,
/// whichever divides the width) held in registers across all terms, which saves a store and a
/// load of z per term; other widths fall back to one `axpy` per term.
#[inline(always)]
fn gather_rows<T: Real, I>(z: &mut [T], terms: I, w: &[T])
where
    I: Iterator<Item = (usize, T)> + Clone,
{
    match z.len() {
        n if n % 60 == 0 => gather_blocks::<60, T, I>(z, terms, w),
        n if n % 40 == 0 => gather_blocks::<40, T, I>(z, terms, w),
        n if n % 32 == 0 => gather_blocks::<32, T, I>(z, terms, w),
        n if n % 30 == 0 => gather_blocks::<30, T, I>(z, terms, w),
        n if n % 20 == 0 => gather_blocks::<20, T, I>(z, terms, w),
        n if n % 16 == 0 => gather_blocks::<16, T, I>(z, terms, w),
        n if n % 10 == 0 => gather_blocks::<10, T, I>(z, terms, w),
        width => {
            for (j, v) in terms {
                axpy(z, v, &w[j * width..(j + 1) * width]);
            }
        }
    }
}

/// [`gather_rows`] into z1 and z2 (of the same width) at once, with their own terms: each sees
/// the same additions in the same order as alone, but the two chains of additions overlap.
#[inline(always)]
fn gather_rows2<T: Real, I1, I2>(z1: &mut [T], t1: I1, z2: &mut [T], t2: I2, w: &[T])
where
    I1: ExactSizeIterator<Item = (usize, T)> + Clone,
    I2: ExactSizeIterator<Item = (usize, T)> + Clone,
{
    match z1.len() {
        n if n % 60 == 0 => gather2_blocks::<60, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 40 == 0 => gather2_blocks::<40, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 32 == 0 => gather2_blocks::<32, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 30 == 0 => gather2_blocks::<30, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 20 == 0 => gather2_blocks::<20, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 16 == 0 => gather2_blocks::<16, T, I1, I2>(z1, t1, z2, t2, w),
        n if n % 10 == 0 => gather2_blocks::<10, T, I1, I2>(z1, t1, z2, t2, w),
        _ => {
            gather_rows(z1, t1, w);
            gather_rows(z2, t2, w);
        }
    }
}

#[inline(always)]
fn gather2_blocks<const B: usize, T: Real, I1, I2>(
    z1: &mut [T],
    t1: I1,
    z2: &mut [T],
    t2: I2,
    w: &[T],
) where
    I1: ExactSizeIterator<Item = (usize, T)> + Clone,
    I2: ExactSizeIterator<Item = (usize, T)> + Clone,
{
    // As in gather_blocks: z1, z2 and w split into blocks of B without a remainder.
    let per = z1.len() / B;
    let (zb1, _) = z1.as_chunks_mut::<B>();
    let (zb2, _) = z2.as_chunks_mut::<B>();
    let (wb, _) = w.as_chunks::<B>();
    let both = t1.len().min(t2.len());
    for (c, (zc1, zc2)) in zb1.iter_mut().zip(zb2.iter_mut()).enumerate() {
        let (mut acc1, mut acc2) = (*zc1, *zc2);
        let (mut i1, mut i2) = (t1.clone(), t2.clone());
        // Take stops after `both` items without drawing another: the rest stay in i1, i2.
        for ((j1, v1), (j2, v2)) in i1.by_ref().take(both).zip(i2.by_ref().take(both)) {
            madd(&mut acc1, v1, &wb[j1 * per + c]);
            madd(&mut acc2, v2, &wb[j2 * per + c]);
        }
        for (j, v) in i1 {
            madd(&mut acc1, v, &wb[j * per + c]);
        }
        for (j, v) in i2 {
            madd(&mut acc2, v, &wb[j * per + c]);
        }
        *zc1 = acc1;
        *zc2 = acc2;
    }
}

#[inline(always)]
fn gather_blocks<const B: usize, T: Real, I>(z: &mut [T], terms: I, w: &[T])
where
    I: Iterator<Item = (usize, T)> + Clone,
{
    // gather_rows calls this only for widths divisible by B, and w holds whole rows of the
    // width: both split into blocks of B without a remainder, and row j's block c is block
    // j per + c of w (one bounds check per term).
    let per = z.len() / B;
    let (zb, _) = z.as_chunks_mut::<B>();
    let (wb, _) = w.as_chunks::<B>();
    for (c, zc) in zb.iter_mut().enumerate() {
        let mut acc = *zc;
        for (j, v) in terms.clone() {
            madd(&mut acc, v, &wb[j * per + c]);
        }
        *zc = acc;
    }
}

/// acc += v row, element by element, in runs of 16 elements and a shorter tail: as a run is a
/// whole register of f32 with AVX-512 (two of f64), the compiler vectorises every run at full
/// width (left to itself it splits a block of 60 f32 into narrower registers).
#[inline(always)]
fn madd<const B: usize, T: Real>(acc: &mut [T; B], v: T, row: &[T; B]) {
    let (a16, a_tail) = acc.as_chunks_mut::<16>();
    let (r16, r_tail) = row.as_chunks::<16>();
    for (a, r) in a16.iter_mut().zip(r16) {
        for k in 0..16 {
            a[k] += v * r[k];
        }
    }
    for (a, &r) in a_tail.iter_mut().zip(r_tail) {
        *a += v * r;
    }
}

/// y += a x, element by element (vectorised by the compiler; no fused multiply-add, so the
/// result is the same whatever instruction set runs it). Common widths get a fixed-size
/// version without loop or tail.
#[inline(always)]
fn axpy<T: Real>(y: &mut [T], a: T, x: &[T]) {
    match y.len().min(x.len()) {
        60 => axpy_fixed::<60, T>(y, a, x),
        40 => axpy_fixed::<40, T>(y, a, x),
        20 => axpy_fixed::<20, T>(y, a, x),
        10 => axpy_fixed::<10, T>(y, a, x),
        _ => {
            for (yi, xi) in y.iter_mut().zip(x) {
                *yi += a * *xi;
            }
        }
    }
}

#[inline(always)]
fn axpy_fixed<const N: usize, T: Real>(y: &mut [T], a: T, x: &[T]) {
    // axpy calls this only when both slices have N elements or more: the slices have N.
    let y: &mut [T; N] = (&mut y[..N]).try_into().expect("N elements");
    let x: &[T; N] = x[..N].try_into().expect("N elements");
    for k in 0..N {
        y[k] += a * x[k];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use septuple_core::Network;
    use septuple_core::{Boundary, BoundaryLoss, Builtin, Init, Loss};

    fn data(n: usize, n_in: usize, n_out: usize, sparse: bool, seed: u64) -> Dataset {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let x = Array2::from_shape_fn((n, n_in), |_| {
            if sparse && rng.random::<f64>() < 0.7 {
                0.0
            } else {
                rng.random::<f64>()
            }
        });
        let t = Array2::from_shape_fn((n, n_out), |_| rng.random::<f64>() - 0.5);
        Dataset::new(x, t, None).unwrap()
    }

    fn mean_loss(net: &Layered<Builtin>, d: &Dataset, batch: &[usize]) -> f64 {
        let x = d.inputs().select(Axis(0), batch);
        let t = d.targets().select(Axis(0), batch);
        let s = net.to_septuple().unwrap();
        let states = s.forward_states(x.view()).unwrap();
        BoundaryLoss
            .mean(&s, states.view(), &Boundary::new(x.view(), t.view()))
            .unwrap()
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Central differences with h = 1e-6 on a loss of order 1: truncation O(h^2 L''') ~
        // 1e-12, rounding O(eps L / h) ~ 1e-10; we allow 1e-7 absolute on gradients of order
        // 0.01-1.
        for (sizes, sparse) in [
            (vec![7, 5, 4, 3], true),
            (vec![6, 4, 2], false),
            (vec![5, 3], true),
            // A first layer of width 10: the kernels specialised for the width.
            (vec![12, 10, 3], true),
            (vec![12, 10, 3], false),
            // A hidden layer of width 10 over 5 neurons: a group of rows and a remainder.
            (vec![6, 5, 10, 3], true),
        ] {
            let net = Layered::random(&sizes, Builtin::Tanh, Init::Normal { std: 0.8 }, 3).unwrap();
            let d = data(9, sizes[0], *sizes.last().unwrap(), sparse, 1);
            let batch = [4usize, 1, 7, 7, 0];
            let mut ws = LayeredWorkspace::new(&net, &d, 6).unwrap();
            assert_eq!(ws.sparse_inputs(), sparse);
            let g = ws.gradients(net.activations(), &d, &batch).unwrap();
            assert_relative_eq!(g.loss, mean_loss(&net, &d, &batch), max_relative = 1e-13);
            let h = 1e-6;
            for l in 0..net.depth() - 1 {
                let shape = net.weights()[l].dim();
                for idx in [(0usize, 0usize), (1, 2), (2, 1), (shape.0 - 1, shape.1 - 1)] {
                    if idx.0 >= shape.0 || idx.1 >= shape.1 {
                        continue;
                    }
                    let p = nudged(&net, l, Some(idx), h);
                    let m = nudged(&net, l, Some(idx), -h);
                    let fd = (mean_loss(&p, &d, &batch) - mean_loss(&m, &d, &batch)) / (2.0 * h);
                    assert_relative_eq!(g.weights[l][idx], fd, epsilon = 1e-7);
                }
                let p = nudged(&net, l, None, h);
                let m = nudged(&net, l, None, -h);
                let fd = (mean_loss(&p, &d, &batch) - mean_loss(&m, &d, &batch)) / (2.0 * h);
                assert_relative_eq!(g.biases[l][1], fd, epsilon = 1e-7);
            }
        }
    }

    /// `net` with weight `idx` (or bias 1 when `idx` is None) of layer `l + 1` moved by `h`.
    fn nudged(
        net: &Layered<Builtin>,
        l: usize,
        idx: Option<(usize, usize)>,
        h: f64,
    ) -> Layered<Builtin> {
        let mut out = net.clone();
        let mut w = net.weights()[l].clone();
        let mut b = net.biases()[l].clone();
        match idx {
            Some(ij) => w[ij] += h,
            None => b[1] += h,
        }
        out.set_layer(l, w.view(), b.view()).unwrap();
        out
    }

    #[test]
    fn sparse_and_dense_paths_agree() {
        // First layers of a width without and with specialised kernels.
        for sizes in [&[30, 6, 4][..], &[30, 20, 10, 4][..]] {
            let net = Layered::random(sizes, Builtin::Tanh, Init::GlorotUniform, 2).unwrap();
            let d = data(40, 30, 4, true, 5);
            // 39 samples: chunks of 4 and one of 3 (two samples at a time and one alone).
            let batch: Vec<usize> = (0..39).rev().collect();
            let mut sparse = LayeredWorkspace::new(&net, &d, 40).unwrap();
            let mut dense = sparse.clone();
            on_arrays!(&mut dense.buffers, a => a.read_dense(&d));
            let a = sparse.gradients(net.activations(), &d, &batch).unwrap();
            let b = dense.gradients(net.activations(), &d, &batch).unwrap();
            // Both skip the zero inputs and add the rest in the same order: the same bits.
            assert_eq!(a, b);
            // And every instruction set gives the same bits (no fused multiply-add anywhere).
            let mut generic = sparse.clone().with_kernels(Kernels::Generic);
            assert_eq!(generic.gradients(net.activations(), &d, &batch).unwrap(), a);
        }
    }

    #[test]
    fn step_moves_against_the_gradient() {
        let mut net = Layered::random(&[8, 5, 3], Builtin::Tanh, Init::TorchLinear, 9).unwrap();
        let d = data(20, 8, 3, true, 2);
        let batch: Vec<usize> = (0..20).collect();
        let mut ws = LayeredWorkspace::new(&net, &d, 20).unwrap();
        let g = ws.gradients(net.activations(), &d, &batch).unwrap();
        let before = net.clone();
        ws.step(before.activations(), &d, &batch, 0.1).unwrap();
        ws.store(&mut net).unwrap();
        for l in 0..2 {
            let expect = &before.weights()[l] - &(&g.weights[l] * 0.1);
            assert_relative_eq!(net.weights()[l], expect, epsilon = 1e-15);
        }
        assert!(mean_loss(&net, &d, &batch) < g.loss);
    }

    #[test]
    fn bad_batches_are_errors() {
        let net = Layered::random(&[4, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let d = data(5, 4, 2, false, 1);
        let mut ws = LayeredWorkspace::new(&net, &d, 3).unwrap();
        assert!(ws.gradients(net.activations(), &d, &[]).is_err());
        assert!(ws.gradients(net.activations(), &d, &[0, 1, 2, 3]).is_err());
        assert!(ws.gradients(net.activations(), &d, &[9]).is_err());
        let wrong = data(5, 3, 2, false, 1);
        assert!(LayeredWorkspace::new(&net, &wrong, 3).is_err());
    }
}
