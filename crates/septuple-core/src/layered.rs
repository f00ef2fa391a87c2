//! Layered feedforward networks: the per-layer form (W_l, b_l) of a feedforward septuple.

use std::borrow::Cow;

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::activation::{Activation, Builtin};
use crate::error::{check_finite, CoreError};
use crate::linalg::dot_fixed_order;
use crate::network::{check_jacobian_rows, check_vectors, DenseBudget, Network};
use crate::septuple::{Feedforward, Septuple};

/// Seeded weight initialisers for [`Layered::random`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Glorot (Xavier) uniform: W ~ U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); b = 0.
    GlorotUniform,
    /// W ~ N(0, std^2); b = 0.
    Normal {
        /// The standard deviation (finite, >= 0).
        std: f64,
    },
    /// PyTorch's `nn.Linear` default: W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    TorchLinear,
}

/// A layered feedforward network: layer sizes n_0 (inputs), n_1, ..., n_{L-1} (outputs), weight
/// matrices W_l of shape (n_{l+1}, n_l) (the layout of PyTorch's `nn.Linear.weight`), biases b_l
/// and one activation per non-input layer.
///
/// It is the same object as a feedforward [`Septuple`] whose neurons are ordered input, hidden
/// layers in order, output, and whose w has the W_l as its only non-zero blocks;
/// [`Layered::to_septuple`] and [`Septuple::to_layered`] convert exactly. The layered form
/// propagates by one matrix product per layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "LayeredData<A>",
    bound(
        serialize = "A: Serialize",
        deserialize = "A: Activation + Deserialize<'de>"
    )
)]
pub struct Layered<A = Builtin> {
    #[serde(skip)]
    sizes: Vec<usize>,
    weights: Vec<Array2<f64>>,
    biases: Vec<Array1<f64>>,
    activations: Vec<A>,
}

#[derive(Deserialize)]
struct LayeredData<A> {
    weights: Vec<Array2<f64>>,
    biases: Vec<Array1<f64>>,
    activations: Vec<A>,
}

impl<A: Activation> TryFrom<LayeredData<A>> for Layered<A> {
    type Error = CoreError;
    fn try_from(d: LayeredData<A>) -> Result<Self, CoreError> {
        Layered::from_layers(d.weights, d.biases, d.activations)
    }
}

impl<A: Activation> Layered<A> {
    /// Build from explicit per-layer matrices: `weights[l]` is W_{l+1} of shape (n_{l+1}, n_l),
    /// `biases[l]` has n_{l+1} entries, `activations[l]` acts on layer l+1.
    pub fn from_layers(
        weights: Vec<Array2<f64>>,
        biases: Vec<Array1<f64>>,
        activations: Vec<A>,
    ) -> Result<Self, CoreError> {
        let layers = |reason: String| CoreError::Layers { reason };
        if weights.is_empty() {
            return Err(layers(
                "no weight matrix: at least an input and an output layer are needed".into(),
            ));
        }
        if biases.len() != weights.len() || activations.len() != weights.len() {
            return Err(layers(format!(
                "{} weight matrices, {} bias vectors and {} activations; expected one of each per non-input layer",
                weights.len(),
                biases.len(),
                activations.len()
            )));
        }
        // Row-major storage whatever layout the caller's arrays have (a Fortran-order file
        // gives column-major matrices, a reversed view negative strides): the kernels of every
        // crate may rely on it.
        let weights: Vec<Array2<f64>> = weights
            .into_iter()
            .map(|w| {
                if w.is_standard_layout() {
                    w
                } else {
                    w.as_standard_layout().into_owned()
                }
            })
            .collect();
        let biases: Vec<Array1<f64>> = biases
            .into_iter()
            .map(|b| {
                if b.is_standard_layout() {
                    b
                } else {
                    b.as_standard_layout().into_owned()
                }
            })
            .collect();
        let mut sizes = vec![weights[0].ncols()];
        for (l, (w, b)) in weights.iter().zip(&biases).enumerate() {
            let fan_in = sizes[l];
            if w.ncols() != fan_in {
                return Err(CoreError::shape(
                    format!("weight matrix of layer {}", l + 1),
                    w.shape(),
                    &[w.nrows(), fan_in],
                ));
            }
            if w.nrows() == 0 || w.ncols() == 0 {
                return Err(layers(format!(
                    "layer {} has shape {:?}; every layer needs at least one neuron",
                    l + 1,
                    w.shape()
                )));
            }
            if b.len() != w.nrows() {
                return Err(CoreError::shape(
                    format!("bias vector of layer {}", l + 1),
                    b.shape(),
                    &[w.nrows()],
                ));
            }
            check_finite(&format!("weight matrix of layer {}", l + 1), w)?;
            check_finite(&format!("bias vector of layer {}", l + 1), b)?;
            sizes.push(w.nrows());
        }
        Ok(Layered {
            sizes,
            weights,
            biases,
            activations,
        })
    }

    /// A network with the given layer sizes, one activation on every non-input layer and
    /// weights drawn by `init` from a ChaCha8 stream seeded with `seed` (layer by layer, weights
    /// in row-major order, then biases). The same arguments always give the same network.
    pub fn random(
        sizes: &[usize],
        activation: A,
        init: Init,
        seed: u64,
    ) -> Result<Self, CoreError> {
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(CoreError::Layers {
                reason: format!(
                    "layer sizes {sizes:?}: expected at least two layers, each with at least one neuron"
                ),
            });
        }
        for p in sizes.windows(2) {
            // Refuse sizes whose matrices could not be addressed, rather than overflow.
            if p[0]
                .checked_mul(p[1])
                .and_then(|k| k.checked_mul(std::mem::size_of::<f64>()))
                .is_none_or(|bytes| bytes > isize::MAX as usize)
            {
                return Err(CoreError::Layers {
                    reason: format!("a {} x {} weight matrix does not fit in memory", p[1], p[0]),
                });
            }
        }
        if let Init::Normal { std } = init {
            if !(std.is_finite() && std >= 0.0) {
                return Err(CoreError::Parameter {
                    name: "std",
                    value: std,
                    expected: "a finite standard deviation >= 0",
                });
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights = Vec::with_capacity(sizes.len() - 1);
        let mut biases = Vec::with_capacity(sizes.len() - 1);
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let (w, b) = match init {
                Init::GlorotUniform => {
                    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    (
                        Array2::from_shape_simple_fn((fan_out, fan_in), || uniform(&mut rng, a)),
                        Array1::zeros(fan_out),
                    )
                }
                Init::Normal { std } => (
                    Array2::from_shape_simple_fn((fan_out, fan_in), || std * normal(&mut rng)),
                    Array1::zeros(fan_out),
                ),
                Init::TorchLinear => {
                    let a = 1.0 / (fan_in as f64).sqrt();
                    let w =
                        Array2::from_shape_simple_fn((fan_out, fan_in), || uniform(&mut rng, a));
                    let b = Array1::from_shape_simple_fn(fan_out, || uniform(&mut rng, a));
                    (w, b)
                }
            };
            weights.push(w);
            biases.push(b);
        }
        Self::from_layers(weights, biases, vec![activation; sizes.len() - 1])
    }

    /// The layer sizes n_0 (inputs), ..., n_{L-1} (outputs).
    pub fn layer_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The number of layers L of Eq. (2.1).
    pub fn depth(&self) -> usize {
        self.sizes.len()
    }

    /// The weight matrices W_1, ..., W_{L-1}; `weights()[l]` has shape (n_{l+1}, n_l).
    pub fn weights(&self) -> &[Array2<f64>] {
        &self.weights
    }

    /// The bias vectors b_1, ..., b_{L-1}.
    pub fn biases(&self) -> &[Array1<f64>] {
        &self.biases
    }

    /// Overwrite every weight matrix and bias vector with the given values (same shapes as
    /// now, every value finite), checked before anything is written: on error the network is
    /// unchanged and stays valid.
    pub fn assign_parameters(
        &mut self,
        weights: &[ArrayView2<'_, f64>],
        biases: &[ArrayView1<'_, f64>],
    ) -> Result<(), CoreError> {
        if weights.len() != self.weights.len() || biases.len() != self.biases.len() {
            return Err(CoreError::Layers {
                reason: format!(
                    "{} weight matrices and {} bias vectors given for {} non-input layers; expected one of each per layer",
                    weights.len(),
                    biases.len(),
                    self.weights.len()
                ),
            });
        }
        for (l, (w, b)) in weights.iter().zip(biases).enumerate() {
            let (what_w, what_b) = (
                format!("weight matrix of layer {}", l + 1),
                format!("bias vector of layer {}", l + 1),
            );
            if w.dim() != self.weights[l].dim() {
                return Err(CoreError::shape(what_w, w.shape(), self.weights[l].shape()));
            }
            if b.len() != self.biases[l].len() {
                return Err(CoreError::shape(what_b, b.shape(), self.biases[l].shape()));
            }
            check_finite(&what_w, *w)?;
            check_finite(&what_b, *b)?;
        }
        for (l, (w, b)) in weights.iter().zip(biases).enumerate() {
            self.weights[l].assign(w);
            self.biases[l].assign(b);
        }
        Ok(())
    }

    /// Overwrite the weight matrix and bias vector of non-input layer `l + 1` (index `l` of
    /// [`weights`](Layered::weights)), checked like
    /// [`assign_parameters`](Layered::assign_parameters).
    pub fn set_layer(
        &mut self,
        l: usize,
        weight: ArrayView2<'_, f64>,
        bias: ArrayView1<'_, f64>,
    ) -> Result<(), CoreError> {
        if l >= self.weights.len() {
            return Err(CoreError::Layers {
                reason: format!(
                    "layer index {l} for {} non-input layers; expected 0..{}",
                    self.weights.len(),
                    self.weights.len()
                ),
            });
        }
        let what_w = format!("weight matrix of layer {}", l + 1);
        let what_b = format!("bias vector of layer {}", l + 1);
        if weight.dim() != self.weights[l].dim() {
            return Err(CoreError::shape(
                what_w,
                weight.shape(),
                self.weights[l].shape(),
            ));
        }
        if bias.len() != self.biases[l].len() {
            return Err(CoreError::shape(
                what_b,
                bias.shape(),
                self.biases[l].shape(),
            ));
        }
        check_finite(&what_w, weight)?;
        check_finite(&what_b, bias)?;
        self.weights[l].assign(&weight);
        self.biases[l].assign(&bias);
        Ok(())
    }

    /// The activation of each non-input layer.
    pub fn activations(&self) -> &[A] {
        &self.activations
    }

    /// The number of neurons N = n_0 + ... + n_{L-1}.
    pub fn n_neurons(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The offset of each layer's first neuron in the global neuron order.
    pub fn offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.sizes.len());
        let mut acc = 0;
        for &s in &self.sizes {
            o.push(acc);
            acc += s;
        }
        o
    }

    /// The layered sweep: the states of every layer for a batch of inputs (S x n_0), the input
    /// layer included, each S x n_l. The last is x(L-1) restricted to the outputs: the fixed
    /// state of Eq. (2.9) reached after L - 1 steps of Eq. (2.5), computed in one pass with one
    /// matrix product per layer.
    pub fn layer_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Vec<Array2<f64>>, CoreError> {
        self.check_inputs(inputs)?;
        let mut out = Vec::with_capacity(self.sizes.len());
        out.push(inputs.to_owned());
        for l in 0..self.weights.len() {
            let next = self.layer_forward(l, out[l].view());
            out.push(next);
        }
        Ok(out)
    }

    /// The mean over samples of each layer's states, concatenated in the global order
    /// (Eq. 5.3 from the layer states of one batch).
    pub fn mean_of_layers(&self, layers: &[Array2<f64>]) -> Result<Array1<f64>, CoreError> {
        let s0 = layers.first().map_or(0, |l| l.nrows());
        if layers.len() != self.sizes.len()
            || layers
                .iter()
                .zip(&self.sizes)
                .any(|(l, &n)| l.dim() != (s0, n))
        {
            return Err(CoreError::Layers {
                reason: format!(
                    "layer states of shapes {:?}; expected one S x n_l matrix per layer of sizes {:?}",
                    layers.iter().map(|l| l.dim()).collect::<Vec<_>>(),
                    self.sizes
                ),
            });
        }
        if s0 == 0 {
            return Err(CoreError::Empty {
                what: "layer states".into(),
            });
        }
        let mut mean = Array1::zeros(Layered::n_neurons(self));
        for (layer, off) in layers.iter().zip(self.offsets()) {
            if let Some(m) = layer.mean_axis(Axis(0)) {
                mean.slice_mut(s![off..off + layer.ncols()]).assign(&m);
            }
        }
        Ok(mean)
    }

    /// f(X W_l^T + b_l) for the layer fed by `x`.
    fn layer_forward(&self, l: usize, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut y = x.dot(&self.weights[l].t());
        y += &self.biases[l];
        let a = &self.activations[l];
        y.mapv_inplace(|v| a.value(v));
        y
    }

    /// The global form: an N x N weight matrix with W_l in the block (layer l, layer l-1), the
    /// biases (zero on inputs), inputs = the first layer, outputs = the last layer. Input neurons
    /// get the first non-input layer's activation (it never acts: inputs are clamped). Refused
    /// with [`CoreError::TooLarge`] beyond the default [`DenseBudget`]; see
    /// [`Network::to_dense`] to choose the budget.
    pub fn to_septuple(&self) -> Result<Septuple<A>, CoreError> {
        self.to_dense(DenseBudget::default())
    }

    /// The layer of every neuron, by global index.
    fn layer_of(&self, i: usize) -> usize {
        let mut acc = 0;
        for (l, &s) in self.sizes.iter().enumerate() {
            acc += s;
            if i < acc {
                return l;
            }
        }
        self.sizes.len() - 1
    }

    fn check_inputs(&self, inputs: ArrayView2<'_, f64>) -> Result<(), CoreError> {
        if inputs.ncols() != self.sizes[0] {
            return Err(CoreError::shape(
                "input data (one row per sample, one column per input neuron)",
                inputs.shape(),
                &[inputs.nrows(), self.sizes[0]],
            ));
        }
        check_finite("input data", inputs)
    }
}

impl<A: Activation> Network for Layered<A> {
    type Act = A;

    fn n_neurons(&self) -> usize {
        Layered::n_neurons(self)
    }

    fn inputs(&self) -> Cow<'_, [usize]> {
        Cow::Owned((0..self.sizes[0]).collect())
    }

    fn outputs(&self) -> Cow<'_, [usize]> {
        let n = Layered::n_neurons(self);
        Cow::Owned((n - self.sizes[self.sizes.len() - 1]..n).collect())
    }

    fn n_connections(&self) -> usize {
        self.weights
            .iter()
            .map(|w| w.iter().filter(|&&v| v != 0.0).count())
            .sum()
    }

    fn weights_sparse(&self) -> Result<Cow<'_, sprs::CsMat<f64>>, CoreError> {
        // Row by row: the input layer's rows are empty, layer l + 1's rows read layer l's
        // columns, ascending.
        let n = Layered::n_neurons(self);
        let off = self.offsets();
        let (mut indptr, mut indices, mut data) = (vec![0; self.sizes[0] + 1], vec![], vec![]);
        for (l, w) in self.weights.iter().enumerate() {
            for row in w.rows() {
                for (c, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        indices.push(off[l] + c);
                        data.push(v);
                    }
                }
                indptr.push(indices.len());
            }
        }
        Ok(Cow::Owned(
            sprs::CsMat::try_new((n, n), indptr, indices, data).unwrap_or_else(|(_, _, _, e)| {
                unreachable!("a sorted CSR structure was built: {e}")
            }),
        ))
    }

    fn activation(&self, i: usize) -> &A {
        // Input neurons carry the first non-input layer's activation, as in `to_septuple`.
        &self.activations[self.layer_of(i).max(1) - 1]
    }

    /// A layered network is feedforward by construction: depth L = the number of layers, the
    /// neurons in index order.
    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        let mut levels = Vec::with_capacity(Layered::n_neurons(self));
        for (l, &s) in self.sizes.iter().enumerate() {
            levels.extend(std::iter::repeat_n(l, s));
        }
        Ok(Feedforward {
            depth: self.sizes.len(),
            order: (0..Layered::n_neurons(self)).collect(),
            levels,
        })
    }

    /// The fixed states x-bar of Eq. (2.9) of a batch of inputs (S x n_0), as an S x N matrix in
    /// the global neuron order (the layered sweep, concatenated).
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        let layers = self.layer_states(inputs)?;
        let mut x = Array2::zeros((inputs.nrows(), Layered::n_neurons(self)));
        for (layer, off) in layers.iter().zip(self.offsets()) {
            x.slice_mut(s![.., off..off + layer.ncols()]).assign(layer);
        }
        Ok(x)
    }

    /// The network's output layer for a batch of inputs (S x n_0 -> S x n_{L-1}), one matrix
    /// product per layer; a non-finite output is an error.
    fn predict(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.check_inputs(inputs)?;
        let mut x = self.layer_forward(0, inputs);
        for l in 1..self.weights.len() {
            x = self.layer_forward(l, x.view());
        }
        check_finite("network outputs", &x)?;
        Ok(x)
    }

    /// The mean state `<x>` of Eq. (5.3) over the empirical ensemble of forward states of a
    /// batch of inputs (S x n_0, S >= 1), layer by layer.
    fn mean_state(&self, inputs: ArrayView2<'_, f64>) -> Result<Array1<f64>, CoreError> {
        if inputs.nrows() == 0 {
            return Err(CoreError::Empty {
                what: "input data".into(),
            });
        }
        let layers = self.layer_states(inputs)?;
        self.mean_of_layers(&layers)
    }

    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        let n = Layered::n_neurons(self);
        check_vectors(n, v)?;
        let off = self.offsets();
        let mut out = Array2::zeros((n, v.ncols()));
        for (l, w) in self.weights.iter().enumerate() {
            let src = v.slice(s![off[l]..off[l] + self.sizes[l], ..]);
            let r0 = off[l + 1];
            out.slice_mut(s![r0..r0 + self.sizes[l + 1], ..])
                .assign(&dense_times_block(w, src));
        }
        Ok(out)
    }

    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        let n = Layered::n_neurons(self);
        check_vectors(n, v)?;
        let off = self.offsets();
        let mut out = Array2::zeros((n, v.ncols()));
        for (l, w) in self.weights.iter().enumerate() {
            let r0 = off[l + 1];
            let src = v.slice(s![r0..r0 + self.sizes[l + 1], ..]);
            out.slice_mut(s![off[l]..off[l] + self.sizes[l], ..])
                .assign(&dense_t_times_block(w, src));
        }
        Ok(out)
    }

    fn bias(&self) -> Cow<'_, Array1<f64>> {
        let mut b = Array1::zeros(Layered::n_neurons(self));
        let off = self.offsets();
        for (l, bl) in self.biases.iter().enumerate() {
            let r0 = off[l + 1];
            b.slice_mut(s![r0..r0 + bl.len()]).assign(bl);
        }
        Cow::Owned(b)
    }

    fn jacobian_rows(
        &self,
        fp: ArrayView1<'_, f64>,
        rows: &[usize],
        budget: DenseBudget,
    ) -> Result<Array2<f64>, CoreError> {
        let n = Layered::n_neurons(self);
        check_jacobian_rows(n, fp, rows, budget)?;
        let off = self.offsets();
        let mut m = Array2::zeros((rows.len(), n));
        for (k, &i) in rows.iter().enumerate() {
            let l = self.layer_of(i);
            let mut row = m.row_mut(k);
            if l > 0 {
                let f = fp[i];
                let w = self.weights[l - 1].row(i - off[l]);
                row.slice_mut(s![off[l - 1]..off[l - 1] + self.sizes[l - 1]])
                    .zip_mut_with(&w, |v, &x| *v = -f * x);
            }
            row[i] += 1.0;
        }
        Ok(m)
    }

    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<A>, CoreError> {
        let n = Layered::n_neurons(self);
        budget.check("dense weight matrix w", n, n)?;
        let offsets = self.offsets();
        let mut w = Array2::zeros((n, n));
        let mut acts = Vec::with_capacity(n);
        acts.extend(std::iter::repeat_n(
            self.activations[0].clone(),
            self.sizes[0],
        ));
        for l in 0..self.weights.len() {
            let (r0, c0) = (offsets[l + 1], offsets[l]);
            let (rows, cols) = self.weights[l].dim();
            w.slice_mut(s![r0..r0 + rows, c0..c0 + cols])
                .assign(&self.weights[l]);
            acts.extend(std::iter::repeat_n(self.activations[l].clone(), rows));
        }
        let inputs = (0..self.sizes[0]).collect();
        let outputs = (n - self.sizes[self.sizes.len() - 1]..n).collect();
        Septuple::new(w, Network::bias(self).into_owned(), acts, inputs, outputs)
    }
}

/// U(-a, a) from one uniform draw in [0, 1).
fn uniform(rng: &mut ChaCha8Rng, a: f64) -> f64 {
    a * (2.0 * rng.random::<f64>() - 1.0)
}

/// A standard normal variate by the Box-Muller transform (one draw per pair of uniforms, so the
/// stream depends on nothing but the generator).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Rows (of w for W v, of the result for W^T v) per task of the one-vector kernels.
const DENSE_ROWS: usize = 256;

/// W V for one layer's weights W (m x n) and a block V (n x k). For one vector (k = 1) and W
/// in standard layout: each entry of the result is the dot product of a row of W with v
/// ([`dot_fixed_order`]), in parallel over fixed chunks of rows; so W is read once, on every
/// thread, with no packing, and the bits do not depend on the thread count. ndarray's general
/// product (without a BLAS, which is not a default dependency) runs on one thread and packs
/// W into panels on every call, which dominates for one vector, a Krylov step (the 20
/// largest singular values of a 784-4096-4096-10 network take about half the time with this
/// kernel; docs/performance.md). For blocks, such as a quadrature's batches of probes, its
/// register-blocked kernel is the faster, so k > 1 goes there.
fn dense_times_block(w: &Array2<f64>, v: ArrayView2<'_, f64>) -> Array2<f64> {
    let (m, n) = w.dim();
    let (Some(ws), Some(x)) = (w.as_slice(), single_column(v)) else {
        return w.dot(&v);
    };
    let mut out = Array2::<f64>::zeros((m, 1));
    out.as_slice_mut()
        .unwrap_or_else(|| unreachable!("a new array is in standard layout"))
        .par_chunks_mut(DENSE_ROWS)
        .enumerate()
        .for_each(|(t, chunk)| {
            for (r, o) in chunk.iter_mut().enumerate() {
                let i = t * DENSE_ROWS + r;
                *o = dot_fixed_order(&ws[i * n..(i + 1) * n], &x);
            }
        });
    out
}

/// Rows of W per task of the one-vector W^T v: each task's partial sum (n entries) stays in
/// the first- or second-level cache while its rows stream past.
const DENSE_T_ROWS: usize = 256;

/// W^T V for one layer's weights W (m x n) and a block V (m x k). For one vector and W in
/// standard layout: over fixed chunks of [`DENSE_T_ROWS`] rows of W in parallel, each chunk's
/// partial sum sum_i v_i W[i, .] over its rows in ascending order, then the partial sums added
/// in chunk order; so W is read once, as contiguous rows, and the bits do not depend on the
/// thread count. (Chunks of the result's entries instead read W in short row segments a row
/// length apart: with them the 20 largest singular values of the matrix-free bench took twice
/// as long; docs/performance.md.) Blocks: ndarray's product (see [`dense_times_block`]).
fn dense_t_times_block(w: &Array2<f64>, v: ArrayView2<'_, f64>) -> Array2<f64> {
    let n = w.ncols();
    let (Some(ws), Some(x), true) = (w.as_slice(), single_column(v), n > 0) else {
        return w.t().dot(&v);
    };
    let partials: Vec<Vec<f64>> = ws
        .par_chunks(DENSE_T_ROWS * n)
        .zip(x.par_chunks(DENSE_T_ROWS))
        .map(|(rows, xs)| {
            let mut acc = vec![0.0f64; n];
            for (row, &xi) in rows.chunks_exact(n).zip(xs) {
                for (a, &wij) in acc.iter_mut().zip(row) {
                    *a += wij * xi;
                }
            }
            acc
        })
        .collect();
    let mut out = Array2::<f64>::zeros((n, 1));
    let o = out
        .as_slice_mut()
        .unwrap_or_else(|| unreachable!("a new array is in standard layout"));
    for part in &partials {
        for (oi, &pi) in o.iter_mut().zip(part) {
            *oi += pi;
        }
    }
    out
}

/// The one column of a block of one column (contiguous copy), or None for k != 1 or no rows.
fn single_column(v: ArrayView2<'_, f64>) -> Option<Vec<f64>> {
    (v.ncols() == 1 && v.nrows() > 0).then(|| v.column(0).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;

    #[test]
    fn from_layers_stores_row_major_whatever_the_callers_layout() {
        // A column-major matrix and a bias with a negative stride: the same values, stored
        // row-major (the training kernels read them as slices).
        let w = array![[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]];
        let wf = w.t().as_standard_layout().into_owned().reversed_axes();
        let mut b = array![0.7, 0.8];
        b.invert_axis(ndarray::Axis(0));
        assert!(!wf.is_standard_layout() && !b.is_standard_layout());
        let net = Layered::from_layers(vec![wf], vec![b], vec![Builtin::Tanh]).unwrap();
        assert!(net.weights()[0].is_standard_layout());
        assert!(net.biases()[0].is_standard_layout());
        assert_eq!(net.weights()[0], w);
        assert_eq!(net.biases()[0], array![0.8, 0.7]);
    }

    #[test]
    fn random_is_deterministic_and_seed_dependent() {
        for init in [
            Init::GlorotUniform,
            Init::Normal { std: 0.3 },
            Init::TorchLinear,
        ] {
            let a = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 7).unwrap();
            let b = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 7).unwrap();
            let c = Layered::random(&[5, 4, 3], Builtin::Tanh, init, 8).unwrap();
            assert_eq!(a, b);
            assert_ne!(a, c);
        }
    }

    #[test]
    fn seeded_values_are_pinned() {
        // A changed random stream shows up here in review.
        let net = Layered::random(&[2, 2], Builtin::Tanh, Init::TorchLinear, 42).unwrap();
        let w = &net.weights()[0];
        let pinned = [w[[0, 0]], w[[0, 1]], w[[1, 0]], w[[1, 1]]];
        let again = Layered::random(&[2, 2], Builtin::Tanh, Init::TorchLinear, 42).unwrap();
        assert_eq!(again.weights()[0].as_slice().unwrap(), &pinned);
        for v in pinned {
            assert!(v.abs() <= 1.0 / 2f64.sqrt());
        }
    }

    #[test]
    fn initialiser_statistics() {
        // 200 x 300 = 60,000 draws: the sample variance of U(-a, a) (a^2/3) and of N(0, s^2) is
        // within a few parts in 100 (relative standard error of a variance ~ sqrt(2/n) ~ 0.6%;
        // 3% is 5 standard errors).
        let n = 60_000.0;
        let var = |w: &Array2<f64>| w.iter().map(|v| v * v).sum::<f64>() / n;
        let g = Layered::random(&[300, 200], Builtin::Tanh, Init::GlorotUniform, 1).unwrap();
        let a2 = 6.0 / 500.0;
        assert_relative_eq!(var(&g.weights()[0]), a2 / 3.0, max_relative = 0.03);
        assert!(g.biases()[0].iter().all(|&b| b == 0.0));
        let nn = Layered::random(&[300, 200], Builtin::Tanh, Init::Normal { std: 0.5 }, 1).unwrap();
        assert_relative_eq!(var(&nn.weights()[0]), 0.25, max_relative = 0.03);
        let t = Layered::random(&[300, 200], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        assert_relative_eq!(var(&t.weights()[0]), 1.0 / 300.0 / 3.0, max_relative = 0.03);
        let bound = 1.0 / 300f64.sqrt();
        assert!(t.biases()[0].iter().all(|b| b.abs() <= bound));
    }

    #[test]
    fn from_layers_errors() {
        let e = Layered::<Builtin>::from_layers(vec![], vec![], vec![]);
        assert!(matches!(e, Err(CoreError::Layers { .. })));
        let e = Layered::from_layers(
            vec![Array2::zeros((3, 2)), Array2::zeros((1, 4))],
            vec![Array1::zeros(3), Array1::zeros(1)],
            vec![Builtin::Tanh; 2],
        );
        assert!(matches!(e, Err(CoreError::Shape { .. })), "{e:?}");
        let e = Layered::from_layers(
            vec![Array2::zeros((3, 2))],
            vec![Array1::zeros(2)],
            vec![Builtin::Tanh],
        );
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let e = Layered::from_layers(
            vec![array![[f64::INFINITY]]],
            vec![Array1::zeros(1)],
            vec![Builtin::Tanh],
        );
        assert!(matches!(e, Err(CoreError::NonFinite { .. })));
        let e = Layered::random(&[3], Builtin::Tanh, Init::GlorotUniform, 0);
        assert!(matches!(e, Err(CoreError::Layers { .. })));
        let e = Layered::random(&[3, 1], Builtin::Tanh, Init::Normal { std: f64::NAN }, 0);
        assert!(matches!(e, Err(CoreError::Parameter { .. })));
    }

    #[test]
    fn forward_by_hand() {
        let net = Layered::from_layers(
            vec![array![[1.0, -1.0]], array![[2.0], [0.5]]],
            vec![array![0.1], array![0.0, -0.2]],
            vec![Builtin::Tanh, Builtin::Identity],
        )
        .unwrap();
        let x = array![[0.3, 0.1]];
        let h = (0.3f64 - 0.1 + 0.1).tanh();
        let layers = net.layer_states(x.view()).unwrap();
        assert_relative_eq!(layers[1][[0, 0]], h, max_relative = 1e-15);
        assert_relative_eq!(layers[2][[0, 1]], 0.5 * h - 0.2, max_relative = 1e-15);
        assert_eq!(net.predict(x.view()).unwrap(), layers[2]);
        let states = net.forward_states(x.view()).unwrap();
        assert_eq!(
            states.row(0).to_vec(),
            vec![0.3, 0.1, h, 2.0 * h, 0.5 * h - 0.2]
        );
        assert!(net.layer_states(array![[1.0]].view()).is_err());
    }

    /// The one-vector kernels give ndarray's products to rounding (each element is the same
    /// sum in another order: |error| <= n eps sum |w v|), and blocks of 3, 8 and 9 columns
    /// (ndarray's product) agree too, in both layouts of V, with the same bits on 1 and 2
    /// threads (1,030 x 517 weights: five chunks of rows, a remainder in every loop).
    #[test]
    fn one_vector_products_match_the_matrix_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (m, n) = (1030, 517);
        let w = Array2::from_shape_fn((m, n), |_| rng.random_range(-1.0..1.0));
        for k in [1usize, 3, 8, 9] {
            for (v_rows, product) in [(n, true), (m, false)] {
                let v = Array2::from_shape_fn((v_rows, k), |_| rng.random_range(-1.0..1.0));
                let vf = v.t().as_standard_layout().into_owned().reversed_axes();
                assert!(k == 1 || !vf.is_standard_layout());
                let (want, bound) = if product {
                    (w.dot(&v), w.mapv(f64::abs).dot(&v.mapv(f64::abs)))
                } else {
                    (w.t().dot(&v), w.t().mapv(f64::abs).dot(&v.mapv(f64::abs)))
                };
                let reduced = (if product { n } else { m }) as f64;
                let run = |threads: usize, v: ArrayView2<'_, f64>| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap()
                        .install(|| {
                            if product {
                                dense_times_block(&w, v)
                            } else {
                                dense_t_times_block(&w, v)
                            }
                        })
                };
                let one = run(1, v.view());
                assert_eq!(one, run(2, v.view()), "k = {k}: thread counts disagree");
                assert_eq!(one, run(2, vf.view()), "k = {k}: layouts disagree");
                for ((a, b), c) in one.iter().zip(&want).zip(&bound) {
                    assert!(
                        (a - b).abs() <= reduced * f64::EPSILON * c,
                        "k = {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
