//! The sparse septuple: the septuple of Sec. 2 with w in compressed sparse row form, for networks
//! of 10^4 to 10^7 neurons (convolutional nets, imported graphs) in O(N + nnz) memory.
//!
//! Storage: w as a CSR matrix of the `sprs` crate (rows = target neuron i, columns = source
//! neuron j, columns ascending within a row) and a second CSR matrix of w^T (rows = source j),
//! so that w V and w^T V are both row-wise gathers. Both take 16 bytes per connection plus
//! 8 (N + 1) bytes.
//!
//! Why `sprs` and not a CSR of our own: w V and w^T V on a random N = 10^5 matrix with
//! nnz = 999,940 (uniform (i, j)), one thread, the same summation order in both (the results
//! agree to the bit), mean of 20 products on a shared, loaded 2-core machine, two runs
//! (a scratch crate, then the in-tree benchmark below):
//!
//! | product | k | `sprs` 0.11 | own CSR loop |
//! | --- | --- | --- | --- |
//! | w V | 1 | 4.7 / 11.5 ms | 7.4 / 14.6 ms |
//! | w V | 8 | 88 / 207 ms | 79 / 244 ms |
//! | w^T V, CSR of w^T | 1 | 6.0 / 11.5 ms | 8.8 / 22.9 ms |
//! | w^T V, CSR of w^T | 8 | 91 / 246 ms | 86 / 221 ms |
//! | w^T V, `sprs` CSC view of w | 1 / 8 | 4.2 / 220, 11.2 / 499 ms | |
//!
//! Ours is not measurably faster (within +-15% either way at k = 8, 1.3-2x slower at k = 1),
//! so the crate it is, without its `multi_thread` feature (results must not depend on the
//! thread count); the CSC view of w is twice as slow at k = 8, hence the stored CSR of w^T.
//! Reproduce with
//! `cargo test -p septuple-core --release --test sparse -- --ignored csr_benchmark --nocapture`.

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use crate::activation::{Activation, Builtin};
use crate::bulk::{BulkSolution, BulkSolver};
use crate::error::{check_finite, CoreError};
use crate::graph::{Digraph, Topology};
use crate::layered::Layered;
use crate::loss::{Boundary, BulkLoss, Potential};
use crate::network::{
    check_block, check_jacobian_rows, check_out, check_state, check_vectors, DenseBudget, Network,
};
use crate::propagate::{iterate, FixedPointOptions, FixedState};
use crate::septuple::{check_feedforward, check_neurons, Feedforward, Role, Septuple};

/// A weight given as a triplet (i, j, value): the connection from neuron j into neuron i,
/// `w[[i, j]] = value`.
pub type Triplet = (usize, usize, f64);

/// A neural septuple (Sec. 2) whose weight matrix w is stored sparsely: O(N + nnz) memory and
/// O(nnz k) for every block product of the [`Network`] trait.
///
/// The same object as a dense [`Septuple`] with the same w, b, activations and projections
/// ([`SparseSeptuple::from`] a `&Septuple` and [`Network::to_dense`] convert exactly). A value of
/// this type is always valid: every index in range, every number finite, no connection given
/// twice, the projections disjoint and free of repeats. A connection exists where the weight is
/// non-zero: explicit zeros among the triplets are dropped, so [`Network::n_connections`] is the
/// number of stored entries and the weight graph (Eq. 2.1) is the one of the dense form.
///
/// Propagation: when the weight graph is acyclic, [`Network::forward_states`] reaches the fixed
/// state of Eq. (2.9) in one sweep in topological order, inputs clamped to the data (Eq. 2.7);
/// a recurrent sparse septuple is iterated like [`Septuple::fixed_state`] (Eq. 2.5 from
/// x(0) = P_in x_d, Eq. 2.4) by [`SparseSeptuple::fixed_state`], which may fail to converge.
///
/// Losses and the bulk solve: the boundary loss (Eq. 2.11) and the bulk loss (Eqs. 3.1, 3.4) at
/// given states are evaluated on the sparse form in O(nnz S) by
/// [`SparseSeptuple::boundary_loss_values`] and [`SparseSeptuple::bulk_loss_values`]; the
/// [`Loss`](crate::Loss) trait and [`BulkSolver`] work on the dense form, which
/// [`SparseSeptuple::bulk_solve`] builds within a [`DenseBudget`] (or refuses with
/// [`CoreError::TooLarge`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(
    try_from = "SparseData<A>",
    bound(deserialize = "A: Activation + Deserialize<'de>")
)]
pub struct SparseSeptuple<A = Builtin> {
    w: CsMat<f64>,
    wt: CsMat<f64>,
    b: Array1<f64>,
    activations: Vec<A>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    roles: Vec<Role>,
    topology: Result<Topology, Vec<usize>>,
}

/// The serialised form of a [`SparseSeptuple`]: N, the non-zero weights as (i, j, value)
/// triplets in row order, b, the activations and the projections.
#[derive(Deserialize)]
struct SparseData<A> {
    n: usize,
    weights: Vec<Triplet>,
    b: Array1<f64>,
    activations: Vec<A>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

#[derive(Serialize)]
struct SparseRef<'a, A> {
    n: usize,
    weights: Vec<Triplet>,
    b: &'a Array1<f64>,
    activations: &'a [A],
    inputs: &'a [usize],
    outputs: &'a [usize],
}

impl<A: Serialize + Activation> Serialize for SparseSeptuple<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SparseRef {
            n: self.n_neurons(),
            weights: self.triplets(),
            b: &self.b,
            activations: &self.activations,
            inputs: &self.inputs,
            outputs: &self.outputs,
        }
        .serialize(serializer)
    }
}

impl<A: Activation> TryFrom<SparseData<A>> for SparseSeptuple<A> {
    type Error = CoreError;
    fn try_from(d: SparseData<A>) -> Result<Self, CoreError> {
        SparseSeptuple::from_triplets(d.n, &d.weights, d.b, d.activations, d.inputs, d.outputs)
    }
}

impl<A: Activation + PartialEq> PartialEq for SparseSeptuple<A> {
    /// The same N, weights, biases, activations and projections.
    fn eq(&self, other: &Self) -> bool {
        self.w == other.w
            && self.b == other.b
            && self.activations == other.activations
            && self.inputs == other.inputs
            && self.outputs == other.outputs
    }
}

/// Row-compressed arrays (offsets of length rows + 1, column indices, values).
struct Compressed {
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f64>,
}

/// A stable counting sort of the entries `keys[p]` into `n` buckets: the positions of the
/// entries bucket by bucket, in their given order within a bucket, and the bucket offsets.
fn bucket(
    n: usize,
    keys: impl ExactSizeIterator<Item = usize> + Clone,
) -> (Vec<usize>, Vec<usize>) {
    let mut offsets = vec![0usize; n + 1];
    for k in keys.clone() {
        offsets[k + 1] += 1;
    }
    for k in 0..n {
        offsets[k + 1] += offsets[k];
    }
    let mut fill = offsets.clone();
    let mut perm = vec![0usize; keys.len()];
    for (p, k) in keys.enumerate() {
        perm[fill[k]] = p;
        fill[k] += 1;
    }
    (perm, offsets)
}

/// The transpose of an n x n row-compressed matrix, again row-compressed with ascending
/// indices in each row (a stable counting sort by column, O(n + nnz)).
fn transpose(n: usize, m: &Compressed) -> Compressed {
    let (perm, indptr) = bucket(n, m.indices.iter().copied());
    // The row of entry p: entries are stored row by row.
    let mut row_of = vec![0usize; m.indices.len()];
    for i in 0..n {
        row_of[m.indptr[i]..m.indptr[i + 1]].fill(i);
    }
    Compressed {
        indptr,
        indices: perm.iter().map(|&p| row_of[p]).collect(),
        data: perm.iter().map(|&p| m.data[p]).collect(),
    }
}

/// Every triplet's indices below `n` and its value finite.
fn check_triplets(n: usize, triplets: &[Triplet]) -> Result<(), CoreError> {
    for (k, &(i, j, v)) in triplets.iter().enumerate() {
        for (index, side) in [(i, "target i"), (j, "source j")] {
            if index >= n {
                return Err(CoreError::IndexOutOfRange {
                    what: format!("weight triplet {k} ({side})"),
                    index,
                    n,
                });
            }
        }
        if !v.is_finite() {
            return Err(CoreError::NonFinite {
                what: format!("weight triplet {k}"),
                index: vec![i, j],
                value: v,
            });
        }
    }
    Ok(())
}

/// The n x n row-compressed matrix of checked triplets (columns ascending within a row, zeros
/// dropped), or [`CoreError::DuplicateEntry`] for an (i, j) given twice.
fn compress(n: usize, triplets: &[Triplet]) -> Result<Compressed, CoreError> {
    // Sort by column, then stably by row: rows in order, columns ascending within a row,
    // repeats adjacent and in their given order.
    let (by_col, _) = bucket(n, triplets.iter().map(|t| t.1));
    let (by_row, indptr_all) = bucket(n, by_col.iter().map(|&p| triplets[p].0));
    let mut indptr = Vec::with_capacity(n + 1);
    indptr.push(0);
    let mut indices = Vec::with_capacity(triplets.len());
    let mut data = Vec::with_capacity(triplets.len());
    for i in 0..n {
        let row = &by_row[indptr_all[i]..indptr_all[i + 1]];
        for (q, &pos) in row.iter().enumerate() {
            let p = by_col[pos];
            let (_, j, v) = triplets[p];
            if q > 0 {
                let prev = by_col[row[q - 1]];
                if triplets[prev].1 == j {
                    return Err(CoreError::DuplicateEntry {
                        row: i,
                        col: j,
                        first: prev.min(p),
                        second: prev.max(p),
                    });
                }
            }
            if v != 0.0 {
                indices.push(j);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    Ok(Compressed {
        indptr,
        indices,
        data,
    })
}

/// Output values per task of the CSR kernels (about 64 Ki): fixed, so the chunks, and with
/// them the bits, do not depend on the thread count.
const VALUES_PER_TASK: usize = 65_536;

/// C V for C in CSR (N x N) and a block V (N x k): row i of the result is the sum over row i's
/// entries, in stored order, of c_ij V_j., each V_j. read as one contiguous row (V is copied to
/// standard layout first if it is not). Rows are split over rayon's pool in fixed chunks and each
/// row is summed by one thread in one order, so the bits do not depend on the thread count.
///
/// Written here rather than sprs's `&CsMat * &Array2`, whose generic product indexes V entry by
/// entry: on the N = 10^6, 10^7-connection network of `examples/large_network.rs` with k = 8
/// this kernel is what makes a Golub-Kahan step take tenths of a second rather than seconds.
fn csr_times_block(c: &CsMat<f64>, v: ArrayView2<'_, f64>) -> Array2<f64> {
    let (n, k) = v.dim();
    let v = v.as_standard_layout();
    let vs = v
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout"));
    let indptr = c.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (c.indices(), c.data());
    let mut out = Array2::<f64>::zeros((n, k));
    if k == 0 {
        return out;
    }
    let rows_per_task = (VALUES_PER_TASK / k).max(1);
    out.as_slice_mut()
        .unwrap_or_else(|| unreachable!("a new array is in standard layout"))
        .par_chunks_mut(rows_per_task * k)
        .enumerate()
        .for_each(|(t, chunk)| {
            let first = t * rows_per_task;
            for (r, acc) in chunk.chunks_mut(k).enumerate() {
                let i = first + r;
                for p in indptr[i]..indptr[i + 1] {
                    let j = indices[p];
                    axpy(acc, data[p], &vs[j * k..(j + 1) * k]);
                }
            }
        });
    out
}

/// acc += w x for a row of a block (k values).
#[inline]
fn axpy(acc: &mut [f64], w: f64, x: &[f64]) {
    for (a, &x) in acc.iter_mut().zip(x) {
        *a += w * x;
    }
}

/// Which scaling [`identity_minus_csr_into`] applies: f' on the rows of the product (M V =
/// V - f' (w V)) or on the rows of V (M^T V = V - w^T (f' V), with C = w^T).
#[derive(Clone, Copy)]
enum Scale<'a> {
    Rows(&'a [f64]),
    Columns(&'a [f64]),
}

/// The widest block whose M^T V [`identity_minus_csr_into`] scales by f' before the product.
const PRESCALE_MAX_COLUMNS: usize = 4;

/// out = V - f' (C V) or V - C (f' V) (see [`Scale`]) for C in CSR (N x N) and blocks V, out
/// (N x k), in one pass: the rows of `out` are the accumulators (no product block is
/// allocated; M^T V of at most [`PRESCALE_MAX_COLUMNS`] columns allocates f' V), each summed
/// in stored order by one thread over fixed chunks of rows as in [`csr_times_block`], so the
/// bits do not depend on the thread count. `out` that is not in
/// standard layout is computed in a standard copy and assigned.
fn identity_minus_csr_into(
    c: &CsMat<f64>,
    scale: Scale<'_>,
    v: ArrayView2<'_, f64>,
    mut out: ArrayViewMut2<'_, f64>,
) {
    let (_, k) = v.dim();
    if k == 0 {
        return;
    }
    let v = v.as_standard_layout();
    let vs = v
        .as_slice()
        .unwrap_or_else(|| unreachable!("standard layout"));
    let indptr = c.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (c.indices(), c.data());
    // M^T V for narrow blocks (k <= 4): f' V once, element by element, so that each connection
    // gathers one row of a block rather than a row of V and an entry of f' at two random places
    // (for one vector the f' gather made M^T v much slower than M v; `cargo bench --bench
    // bandwidth` times both). At k = 8 a row of V fills a cache line, so the f' gather adds
    // proportionally less while the new N x k block still costs its page faults: wider blocks
    // scale in the loop.
    let scaled: Option<Vec<f64>> = match scale {
        Scale::Rows(_) => None,
        Scale::Columns(_) if k > PRESCALE_MAX_COLUMNS => None,
        Scale::Columns(f) => {
            let mut sc = vec![0.0f64; vs.len()];
            sc.par_chunks_mut(VALUES_PER_TASK * k)
                .zip(vs.par_chunks(VALUES_PER_TASK * k))
                .zip(f.par_chunks(VALUES_PER_TASK))
                .for_each(|((dst, src), fc)| {
                    for ((d, s), &fj) in dst.chunks_mut(k).zip(src.chunks(k)).zip(fc) {
                        for (d, &x) in d.iter_mut().zip(s) {
                            *d = fj * x;
                        }
                    }
                });
            Some(sc)
        }
    };
    // What each row gathers, the f' of each connection when it is scaled in the loop, and the
    // f'_i of each row: one choice per call, outside the loops over rows and connections.
    let gathered: &[f64] = scaled.as_deref().unwrap_or(vs);
    let (in_loop, per_row) = match (scale, &scaled) {
        (Scale::Rows(f), _) => (None, Some(f)),
        (Scale::Columns(_), Some(_)) => (None, None),
        (Scale::Columns(f), None) => (Some(f), None),
    };
    let kernel = |os: &mut [f64]| {
        let rows_per_task = (VALUES_PER_TASK / k).max(1);
        os.par_chunks_mut(rows_per_task * k)
            .enumerate()
            .for_each(|(t, chunk)| {
                let first = t * rows_per_task;
                let rows = Rows {
                    first,
                    indptr,
                    indices,
                    data,
                    gathered,
                    in_loop,
                    per_row,
                    vs,
                };
                // One vector and the common block widths through fixed-width arrays: for one
                // vector the slice and loop of length 1 per connection of the general loop made
                // M v take 40% longer at N = 10^6 (docs/logs/csr_one_vector.log), and blocks of
                // 8 twice as long (docs/logs/csr_fixed_width.log).
                match k {
                    1 => return rows.fixed::<1>(chunk),
                    4 => return rows.fixed::<4>(chunk),
                    8 => return rows.fixed::<8>(chunk),
                    16 => return rows.fixed::<16>(chunk),
                    _ => {}
                }
                for (r, acc) in chunk.chunks_mut(k).enumerate() {
                    let i = first + r;
                    acc.fill(0.0);
                    let connections = indptr[i]..indptr[i + 1];
                    match in_loop {
                        None => {
                            for p in connections {
                                let j = indices[p];
                                axpy(acc, data[p], &gathered[j * k..(j + 1) * k]);
                            }
                        }
                        Some(f) => {
                            for p in connections {
                                let j = indices[p];
                                axpy(acc, data[p] * f[j], &gathered[j * k..(j + 1) * k]);
                            }
                        }
                    }
                    let fi = per_row.map_or(1.0, |f| f[i]);
                    for (a, &x) in acc.iter_mut().zip(&vs[i * k..(i + 1) * k]) {
                        *a = x - fi * *a;
                    }
                }
            });
    };
    match out.as_slice_mut() {
        Some(os) => kernel(os),
        None => {
            let mut tmp = Array2::<f64>::zeros(v.dim());
            kernel(
                tmp.as_slice_mut()
                    .unwrap_or_else(|| unreachable!("a new array is in standard layout")),
            );
            out.assign(&tmp);
        }
    }
}

/// What a chunk of rows of [`identity_minus_csr_into`] reads: the CSR of C, the gathered block
/// (V or f' V), f' in the loop or on the rows, and V, with the chunk's first row.
struct Rows<'a> {
    first: usize,
    indptr: &'a [usize],
    indices: &'a [usize],
    data: &'a [f64],
    gathered: &'a [f64],
    in_loop: Option<&'a [f64]>,
    per_row: Option<&'a [f64]>,
    vs: &'a [f64],
}

impl Rows<'_> {
    /// The block loop of [`identity_minus_csr_into`] for blocks of exactly K columns: the same
    /// terms in the same order (the same bits), with a row's K sums in an array, which the
    /// compiler keeps in registers, and each gathered row an array of K rather than a slice
    /// whose length is known only at run time.
    #[inline]
    fn fixed<const K: usize>(&self, chunk: &mut [f64]) {
        // Every block here has K columns: chunk, the gathered block and V split into whole
        // rows of K.
        let (out_rows, _) = chunk.as_chunks_mut::<K>();
        let (g, _) = self.gathered.as_chunks::<K>();
        let (v_rows, _) = self.vs.as_chunks::<K>();
        for (r, out) in out_rows.iter_mut().enumerate() {
            let i = self.first + r;
            let (lo, hi) = (self.indptr[i], self.indptr[i + 1]);
            let terms = self.indices[lo..hi].iter().zip(&self.data[lo..hi]);
            let mut acc = [0.0f64; K];
            match self.in_loop {
                None => {
                    for (&j, &c) in terms {
                        let x = &g[j];
                        for l in 0..K {
                            acc[l] += c * x[l];
                        }
                    }
                }
                Some(f) => {
                    for (&j, &c) in terms {
                        let (w, x) = (c * f[j], &g[j]);
                        for l in 0..K {
                            acc[l] += w * x[l];
                        }
                    }
                }
            }
            let fi = self.per_row.map_or(1.0, |f| f[i]);
            let v = &v_rows[i];
            for l in 0..K {
                out[l] = v[l] - fi * acc[l];
            }
        }
    }
}

fn to_csmat(n: usize, m: Compressed) -> CsMat<f64> {
    CsMat::try_new((n, n), m.indptr, m.indices, m.data)
        .unwrap_or_else(|(_, _, _, e)| unreachable!("a sorted CSR structure was built: {e}"))
}

impl<A: Activation> SparseSeptuple<A> {
    /// Build and validate a sparse septuple of `n` neurons in O(N + nnz) time and memory.
    ///
    /// `triplets` are the weights (i, j, value), `w[[i, j]] = value` the weight from neuron j into
    /// neuron i, in any order; every (i, j) may appear once (a repeat is
    /// [`CoreError::DuplicateEntry`] naming both triplets, whatever their values), every value
    /// must be finite ([`CoreError::NonFinite`] with index `[i, j]`) and zeros are dropped (no
    /// connection). `b` and `activations` have N entries; `inputs` and `outputs` list the
    /// neurons spanned by P_in and P_out (in the order of the columns of input data and targets),
    /// in range, free of repeats and disjoint. The topological order of the weight graph
    /// (Eq. 2.1) is computed once here.
    pub fn from_triplets(
        n: usize,
        triplets: &[Triplet],
        b: Array1<f64>,
        activations: Vec<A>,
        inputs: Vec<usize>,
        outputs: Vec<usize>,
    ) -> Result<Self, CoreError> {
        if n == 0 {
            return Err(CoreError::Empty {
                what: "sparse septuple (N = 0 neurons)".into(),
            });
        }
        let roles = check_neurons(n, &b, &activations, &inputs, &outputs)?;
        check_triplets(n, triplets)?;
        let w = compress(n, triplets)?;
        let wt = transpose(n, &w);
        let topology = {
            let edges = (0..n).flat_map(|j| {
                wt.indices[wt.indptr[j]..wt.indptr[j + 1]]
                    .iter()
                    .map(move |&i| (j, i))
            });
            Digraph::from_edges(n, edges)?.topology()
        };
        Ok(SparseSeptuple {
            w: to_csmat(n, w),
            wt: to_csmat(n, wt),
            b,
            activations,
            inputs,
            outputs,
            roles,
            topology,
        })
    }

    /// [`SparseSeptuple::from_triplets`] with one activation for every neuron.
    pub fn with_activation(
        n: usize,
        triplets: &[Triplet],
        b: Array1<f64>,
        activation: A,
        inputs: Vec<usize>,
        outputs: Vec<usize>,
    ) -> Result<Self, CoreError> {
        Self::from_triplets(n, triplets, b, vec![activation; n], inputs, outputs)
    }

    /// The sparse form of a layered network, built from the non-zero entries of its layer
    /// matrices in O(N + sum of the layer matrices' sizes), never an N x N matrix: the neuron
    /// order, biases (zero on inputs) and activations of [`Network::to_dense`] for a
    /// [`Layered`].
    pub fn from_layered(net: &Layered<A>) -> Self {
        let off = net.offsets();
        let mut triplets = Vec::new();
        for (l, w) in net.weights().iter().enumerate() {
            for ((r, c), &v) in w.indexed_iter() {
                if v != 0.0 {
                    triplets.push((off[l + 1] + r, off[l] + c, v));
                }
            }
        }
        let n = Layered::n_neurons(net);
        let acts = (0..n)
            .map(|i| Network::activation(net, i).clone())
            .collect();
        Self::from_triplets(
            n,
            &triplets,
            Network::bias(net).into_owned(),
            acts,
            Network::inputs(net).into_owned(),
            Network::outputs(net).into_owned(),
        )
        .unwrap_or_else(|e| unreachable!("a valid layered network gives a valid septuple: {e}"))
    }

    /// A random feedforward network of `n` neurons for tests and benchmarks at scale: inputs
    /// 0..`n_inputs`, outputs the last `n_outputs`, the rest the bulk, and `connections` weights
    /// spread as evenly as possible over the non-input neurons (each gets
    /// floor or ceil of connections / (N - n_in) incoming ones). Neuron i draws its sources
    /// uniformly without repeats among the earlier neurons that may send (every j < i that is
    /// not an output), so the neuron order is a topological order (Eqs. 2.1-2.3). Weights are
    /// uniform in [-a, a] with a = sqrt(3 / k) for k incoming connections (variance 1 / k, so
    /// pre-activations stay of order one), biases zero, one `activation` for all. The same
    /// arguments give the same network (ChaCha8 from `seed`), in O(N + connections) time and
    /// memory.
    ///
    /// Errors: no non-input neuron, inputs and outputs overlapping, or more connections than a
    /// neuron can have distinct sources (the first non-input neuron can have only n_in).
    pub fn random_dag(
        n: usize,
        n_inputs: usize,
        n_outputs: usize,
        connections: usize,
        activation: A,
        seed: u64,
    ) -> Result<Self, CoreError> {
        use rand::{Rng, SeedableRng};
        if n_inputs == 0 || n_outputs == 0 || n_inputs + n_outputs > n || n_inputs >= n {
            return Err(CoreError::Parameter {
                name: "n_inputs + n_outputs",
                value: (n_inputs + n_outputs) as f64,
                expected: "at least one input and one output, and at most N neurons in both",
            });
        }
        let receivers = n - n_inputs;
        let (per, extra) = (connections / receivers, connections % receivers);
        // The first receiver has the fewest possible sources: n_inputs (or fewer if it is an
        // output and there is no bulk neuron before it, which n_inputs also bounds).
        if per + usize::from(extra > 0) > n_inputs {
            return Err(CoreError::Parameter {
                name: "connections",
                value: connections as f64,
                expected: "at most n_inputs incoming connections per non-input neuron",
            });
        }
        let senders_end = n - n_outputs;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut triplets: Vec<Triplet> = Vec::with_capacity(connections);
        let mut row: Vec<usize> = Vec::new();
        for (r, i) in (n_inputs..n).enumerate() {
            let k = per + usize::from(r < extra);
            let eligible = i.min(senders_end);
            let a = (3.0 / k.max(1) as f64).sqrt();
            row.clear();
            while row.len() < k {
                let j = rng.random_range(0..eligible);
                if !row.contains(&j) {
                    row.push(j);
                }
            }
            for &j in &row {
                triplets.push((i, j, rng.random_range(-a..a)));
            }
        }
        Self::with_activation(
            n,
            &triplets,
            Array1::zeros(n),
            activation,
            (0..n_inputs).collect(),
            (senders_end..n).collect(),
        )
    }

    /// M V (`transpose` false) or M^T V (true) of Eq. (5.6) into `out`, checked, in one fused
    /// pass over the CSR of w or of w^T ([`identity_minus_csr_into`]).
    fn identity_minus_into(
        &self,
        transpose: bool,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), CoreError> {
        check_block(self.n_neurons(), fp, v)?;
        check_out(v, &out)?;
        let fp = fp.as_standard_layout();
        // A standard-layout one-dimensional array is one contiguous slice.
        let f = fp
            .as_slice()
            .unwrap_or_else(|| unreachable!("standard layout"));
        if transpose {
            identity_minus_csr_into(&self.wt, Scale::Columns(f), v, out);
        } else {
            identity_minus_csr_into(&self.w, Scale::Rows(f), v, out);
        }
        Ok(())
    }

    /// The number of neurons N.
    pub fn n_neurons(&self) -> usize {
        self.b.len()
    }

    /// w in compressed sparse row form: row i holds the weights into neuron i, columns
    /// ascending.
    pub fn weights(&self) -> &CsMat<f64> {
        &self.w
    }

    /// w^T in compressed sparse row form: row j holds the weights out of neuron j, targets
    /// ascending.
    pub fn weights_t(&self) -> &CsMat<f64> {
        &self.wt
    }

    /// The non-zero weights as (i, j, value) triplets in row order, columns ascending.
    pub fn triplets(&self) -> Vec<Triplet> {
        let mut t = Vec::with_capacity(self.w.nnz());
        for (i, row) in self.w.outer_iterator().enumerate() {
            t.extend(row.iter().map(|(j, &v)| (i, j, v)));
        }
        t
    }

    /// The weights into neuron `i` (a row of w): the source neurons, ascending, and the weights.
    pub fn row(&self, i: usize) -> (&[usize], &[f64]) {
        let (p0, p1) = (self.w.indptr().index(i), self.w.indptr().index(i + 1));
        (&self.w.indices()[p0..p1], &self.w.data()[p0..p1])
    }

    /// The bias vector b.
    pub fn bias(&self) -> ArrayView1<'_, f64> {
        self.b.view()
    }

    /// The activation of each neuron (Eq. 2.6).
    pub fn activations(&self) -> &[A] {
        &self.activations
    }

    /// The input neurons (P_in), in the order of the columns of input data.
    pub fn inputs(&self) -> &[usize] {
        &self.inputs
    }

    /// The output neurons (P_out), in the order of the columns of targets.
    pub fn outputs(&self) -> &[usize] {
        &self.outputs
    }

    /// The role of every neuron.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The feedforward conditions Eqs. (2.1)-(2.3), in O(N + nnz): w nilpotent (an acyclic
    /// weight graph, by the topological sort of [`Digraph`]; otherwise [`CoreError::Cycle`]
    /// naming one cycle), no connection into an input (Eq. 2.2, [`CoreError::InputHasIncoming`]),
    /// none out of an output (Eq. 2.3, [`CoreError::OutputHasOutgoing`]); the first failing
    /// condition in this order, as for [`Septuple::feedforward`].
    pub fn feedforward(&self) -> Result<Feedforward, CoreError> {
        let topology = self.topology.as_ref().map_err(|cycle| CoreError::Cycle {
            cycle: cycle.clone(),
        })?;
        let first = |m: &CsMat<f64>, i: usize| {
            let p0 = m.indptr().index(i);
            (p0 < m.indptr().index(i + 1)).then(|| (m.indices()[p0], m.data()[p0]))
        };
        check_feedforward(
            topology,
            &self.inputs,
            &self.outputs,
            |i| first(&self.w, i),
            |o| first(&self.wt, o),
        )
    }

    fn check_inputs(&self, inputs: ArrayView2<'_, f64>) -> Result<(), CoreError> {
        Boundary::inputs_only(inputs).check_counts(self.inputs.len(), 0)
    }

    /// (w x)_i + b_i for one state x (a row of states).
    fn preactivation_of(&self, i: usize, x: &[f64]) -> f64 {
        let (cols, vals) = self.row(i);
        let mut acc = 0.0;
        for (&j, &v) in cols.iter().zip(vals) {
            acc += v * x[j];
        }
        acc + self.b[i]
    }

    /// The fixed states x-bar of Eq. (2.9) by the sweep in topological order: each non-input
    /// neuron computed once from neurons computed before it, inputs clamped (Eq. 2.7). Samples
    /// run in parallel, each by itself, so the result does not depend on the thread count.
    fn sweep(
        &self,
        order: &[usize],
        inputs: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        let n = self.n_neurons();
        let bound = FixedPointOptions::default().divergence_bound;
        let mut x = Array2::<f64>::zeros((inputs.nrows(), n));
        let buf = x
            .as_slice_mut()
            .unwrap_or_else(|| unreachable!("a new array is contiguous"));
        let status: Vec<Result<(), CoreError>> = buf
            .par_chunks_mut(n)
            .enumerate()
            .map(|(s, xs)| {
                for (k, &i) in self.inputs.iter().enumerate() {
                    xs[i] = inputs[[s, k]];
                }
                for &i in order {
                    if self.roles[i] == Role::Input {
                        continue;
                    }
                    let v = self.activations[i].value(self.preactivation_of(i, xs));
                    if !(v.abs() <= bound) {
                        return Err(CoreError::Diverged {
                            step: self.topology.as_ref().map_or(0, |t| t.levels[i]),
                            sample: s,
                            magnitude: v.abs(),
                            bound,
                        });
                    }
                    xs[i] = v;
                }
                Ok(())
            })
            .collect();
        status.into_iter().collect::<Result<(), CoreError>>()?;
        Ok(x)
    }

    /// The fixed states x-bar = f(w x-bar + b) of Eq. (2.9) for a batch of inputs (S x n_in) by
    /// iterating Eq. (2.5) from x(0) = P_in x_d (Eq. 2.4), inputs held at their data (Eq. 2.7),
    /// each step O(nnz S): the iteration of [`Septuple::fixed_state`] on the sparse form, with
    /// the same options, step count and errors ([`CoreError::NotConverged`],
    /// [`CoreError::Diverged`]). For an acyclic weight graph, [`Network::forward_states`] gets
    /// the same states in one sweep.
    pub fn fixed_state(
        &self,
        inputs: ArrayView2<'_, f64>,
        options: &FixedPointOptions,
    ) -> Result<FixedState, CoreError> {
        options.check()?;
        self.check_inputs(inputs)?;
        let n = self.n_neurons();
        let mut x = Array2::<f64>::zeros((inputs.nrows(), n));
        for (k, &i) in self.inputs.iter().enumerate() {
            x.column_mut(i).assign(&inputs.column(k));
        }
        let driven: Vec<usize> = (0..n).filter(|&i| self.roles[i] != Role::Input).collect();
        let mut next = x.clone();
        iterate(x, !driven.is_empty(), options, |step, x| {
            let mut change = 0.0f64;
            for (s, (xs, mut ns)) in x.rows().into_iter().zip(next.rows_mut()).enumerate() {
                let xs = xs
                    .as_slice()
                    .unwrap_or_else(|| unreachable!("rows of a new array are contiguous"));
                for &i in &driven {
                    let v = self.activations[i].value(self.preactivation_of(i, xs));
                    options.check_bound(v, step, s)?;
                    change = change.max((v - xs[i]).abs());
                    ns[i] = v;
                }
            }
            std::mem::swap(x, &mut next);
            Ok(change)
        })
    }

    fn check_batch(
        &self,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<(), CoreError> {
        let n = self.n_neurons();
        if states.ncols() != n {
            return Err(CoreError::shape(
                "state matrix (one row per sample)",
                states.shape(),
                &[states.nrows(), n],
            ));
        }
        check_finite("state matrix", states)?;
        boundary.check_counts(self.inputs.len(), self.outputs.len())?;
        if states.nrows() != boundary.n_samples() {
            return Err(CoreError::shape(
                "state matrix",
                states.shape(),
                &[boundary.n_samples(), n],
            ));
        }
        Ok(())
    }

    /// The boundary loss H_d(x) = 1/2 (x - x_d)^T (P_in + P_out) (x - x_d) of Eq. (2.11) for
    /// each state of a batch (S x N), in O(S (n_in + n_out)): the values of
    /// [`BoundaryLoss`](crate::BoundaryLoss) without the dense form (the same terms, summed in
    /// neuron order over the boundary only, so equal up to rounding).
    pub fn boundary_loss_values(
        &self,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array1<f64>, CoreError> {
        self.check_batch(states, boundary)?;
        let mut h = Array1::zeros(states.nrows());
        for (s, hs) in h.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (k, &i) in self.inputs.iter().enumerate() {
                let e = states[[s, i]] - boundary.inputs[[s, k]];
                acc += e * e;
            }
            if let Some(t) = boundary.targets {
                for (k, &o) in self.outputs.iter().enumerate() {
                    let e = states[[s, o]] - t[[s, k]];
                    acc += e * e;
                }
            }
            *hs = 0.5 * acc;
        }
        Ok(h)
    }

    /// The bulk loss H(x) = 1/2 sum_i r_i(x)^2 + V(x) of Eqs. (3.1) and (3.4) for each state of
    /// a batch (S x N), in O(nnz S) plus the cost of the potential V (Eq. 3.3): the values of
    /// [`BulkLoss`] without the dense form. r_i = x_i - f_i((w x + b)_i) on non-input neurons,
    /// x_i - (x_d)_i on inputs (the clamp of Eq. 2.7).
    pub fn bulk_loss_values(
        &self,
        loss: &BulkLoss,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array1<f64>, CoreError> {
        self.check_batch(states, boundary)?;
        loss.potential.check(self.n_neurons())?;
        let mut input_pos = vec![usize::MAX; self.n_neurons()];
        for (k, &i) in self.inputs.iter().enumerate() {
            input_pos[i] = k;
        }
        let mut h: Array1<f64> = states
            .rows()
            .into_iter()
            .enumerate()
            .map(|(s, xs)| {
                let xs = xs.to_vec();
                let mut acc = 0.0;
                for (i, &xi) in xs.iter().enumerate() {
                    let r = if self.roles[i] == Role::Input {
                        xi - boundary.inputs[[s, input_pos[i]]]
                    } else {
                        xi - self.activations[i].value(self.preactivation_of(i, &xs))
                    };
                    acc += r * r;
                }
                0.5 * acc
            })
            .collect();
        h += &loss.potential.values(states);
        Ok(h)
    }

    /// The bulk state solve of Eq. (3.2) by [`BulkSolver::solve`], which works on the dense form
    /// (its Gauss-Newton steps factor N x N curvature matrices): the dense septuple is built
    /// within `budget` first, or [`CoreError::TooLarge`] says it does not fit.
    pub fn bulk_solve(
        &self,
        solver: &BulkSolver,
        potential: &Potential,
        boundary: &Boundary<'_>,
        budget: DenseBudget,
    ) -> Result<BulkSolution, CoreError> {
        let dense = self.to_dense(budget)?;
        solver.solve(&dense, potential, boundary)
    }
}

impl<A: Activation> From<&Septuple<A>> for SparseSeptuple<A> {
    /// The sparse form of a dense septuple: its non-zero weights, b, activations and
    /// projections, in O(N^2) (one scan of w).
    fn from(sep: &Septuple<A>) -> Self {
        let n = sep.n_neurons();
        let triplets: Vec<Triplet> = sep
            .weights()
            .indexed_iter()
            .filter(|(_, &v)| v != 0.0)
            .map(|((i, j), &v)| (i, j, v))
            .collect();
        SparseSeptuple::from_triplets(
            n,
            &triplets,
            sep.bias().to_owned(),
            sep.activations().to_vec(),
            sep.inputs().to_vec(),
            sep.outputs().to_vec(),
        )
        .unwrap_or_else(|e| unreachable!("a valid septuple gives a valid sparse septuple: {e}"))
    }
}

impl<A: Activation> From<&Layered<A>> for SparseSeptuple<A> {
    /// [`SparseSeptuple::from_layered`].
    fn from(net: &Layered<A>) -> Self {
        SparseSeptuple::from_layered(net)
    }
}

impl<A: Activation> Network for SparseSeptuple<A> {
    type Act = A;

    fn n_neurons(&self) -> usize {
        self.b.len()
    }

    fn inputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(&self.inputs)
    }

    fn outputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(&self.outputs)
    }

    fn roles(&self) -> Vec<Role> {
        self.roles.clone()
    }

    /// The number of stored (non-zero) weights, nnz.
    fn n_connections(&self) -> usize {
        self.w.nnz()
    }

    fn weights_sparse(&self) -> Result<Cow<'_, CsMat<f64>>, CoreError> {
        Ok(Cow::Borrowed(&self.w))
    }

    fn activation(&self, i: usize) -> &A {
        &self.activations[i]
    }

    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        SparseSeptuple::feedforward(self)
    }

    /// The fixed states x-bar of Eq. (2.9), inputs clamped (Eq. 2.7): for an acyclic weight
    /// graph by one sweep in topological order, O(nnz S), parallel over samples with the same
    /// result for every thread count; for a recurrent one by the iteration of
    /// [`SparseSeptuple::fixed_state`] with default options, which may report
    /// [`CoreError::NotConverged`] or [`CoreError::Diverged`].
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.check_inputs(inputs)?;
        match &self.topology {
            Ok(t) => self.sweep(&t.order, inputs),
            Err(_) => Ok(self
                .fixed_state(inputs, &FixedPointOptions::default())?
                .states),
        }
    }

    /// w V in O(nnz k).
    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        check_vectors(self.n_neurons(), v)?;
        Ok(csr_times_block(&self.w, v))
    }

    /// w^T V in O(nnz k), by the stored CSR of w^T.
    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        check_vectors(self.n_neurons(), v)?;
        Ok(csr_times_block(&self.wt, v))
    }

    /// M V = V - f' (w V) (Eq. 5.6) in one fused pass over the CSR of w, O(nnz k).
    fn apply_m(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        let mut out = Array2::<f64>::zeros(v.dim());
        self.identity_minus_into(false, fp, v, out.view_mut())?;
        Ok(out)
    }

    /// M^T V = V - w^T (f' V) (Eq. 5.6) in one fused pass over the CSR of w^T, O(nnz k).
    fn apply_mt(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        let mut out = Array2::<f64>::zeros(v.dim());
        self.identity_minus_into(true, fp, v, out.view_mut())?;
        Ok(out)
    }

    /// M V (Eq. 5.6) into `out`, allocating nothing (for `out` in standard layout).
    fn apply_m_into(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), CoreError> {
        self.identity_minus_into(false, fp, v, out)
    }

    /// M^T V (Eq. 5.6) into `out`, allocating nothing for blocks of more than 4 columns and
    /// `out` in standard layout (narrower blocks are scaled by f' into one new block first).
    fn apply_mt_into(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), CoreError> {
        self.identity_minus_into(true, fp, v, out)
    }

    fn bias(&self) -> Cow<'_, Array1<f64>> {
        Cow::Borrowed(&self.b)
    }

    /// y = w x + b in O(nnz).
    fn preactivation(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        check_state(self.n_neurons(), x)?;
        let xs = x.to_vec();
        Ok((0..self.n_neurons())
            .map(|i| self.preactivation_of(i, &xs))
            .collect())
    }

    /// The rows `rows` of M = I - f'w (Eq. 5.6) read off the CSR rows of w, O(|rows| N) for
    /// the dense result.
    fn jacobian_rows(
        &self,
        fp: ArrayView1<'_, f64>,
        rows: &[usize],
        budget: DenseBudget,
    ) -> Result<Array2<f64>, CoreError> {
        let n = self.n_neurons();
        check_jacobian_rows(n, fp, rows, budget)?;
        let mut m = Array2::zeros((rows.len(), n));
        for (k, &i) in rows.iter().enumerate() {
            let f = fp[i];
            let (cols, vals) = self.row(i);
            for (&j, &v) in cols.iter().zip(vals) {
                m[[k, j]] = -f * v;
            }
            m[[k, i]] += 1.0;
        }
        Ok(m)
    }

    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<A>, CoreError> {
        let n = self.n_neurons();
        budget.check("dense weight matrix w", n, n)?;
        let mut w = Array2::zeros((n, n));
        for (i, row) in self.w.outer_iterator().enumerate() {
            for (j, &v) in row.iter() {
                w[[i, j]] = v;
            }
        }
        Septuple::new(
            w,
            self.b.clone(),
            self.activations.clone(),
            self.inputs.clone(),
            self.outputs.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn chain() -> SparseSeptuple {
        // 0 -> 1 -> 2, weights 0.5 and -2.
        SparseSeptuple::with_activation(
            3,
            &[(2, 1, -2.0), (1, 0, 0.5)],
            array![0.0, 0.1, 0.2],
            Builtin::Tanh,
            vec![0],
            vec![2],
        )
        .unwrap()
    }

    #[test]
    fn sweep_by_hand() {
        let s = chain();
        let x = s.forward_states(array![[0.4]].view()).unwrap();
        let h = Builtin::Tanh.value(0.5 * 0.4 + 0.1);
        let o = Builtin::Tanh.value(-2.0 * h + 0.2);
        assert_eq!(x.row(0).to_vec(), vec![0.4, h, o]);
        assert_eq!(s.feedforward().unwrap().depth, 3);
        assert_eq!(s.triplets(), vec![(1, 0, 0.5), (2, 1, -2.0)]);
    }

    #[test]
    fn zeros_are_dropped_and_duplicates_refused() {
        let s = SparseSeptuple::with_activation(
            2,
            &[(1, 0, 0.0)],
            Array1::zeros(2),
            Builtin::Tanh,
            vec![0],
            vec![1],
        )
        .unwrap();
        assert_eq!(Network::n_connections(&s), 0);
        let e = SparseSeptuple::with_activation(
            3,
            &[(1, 0, 1.0), (2, 1, 1.0), (1, 0, 0.0)],
            Array1::zeros(3),
            Builtin::Tanh,
            vec![],
            vec![],
        );
        assert_eq!(
            e.unwrap_err(),
            CoreError::DuplicateEntry {
                row: 1,
                col: 0,
                first: 0,
                second: 2
            }
        );
    }

    #[test]
    fn transpose_is_exact() {
        let s = SparseSeptuple::with_activation(
            4,
            &[(3, 0, 1.0), (1, 0, 2.0), (3, 2, 3.0), (2, 1, 4.0)],
            Array1::zeros(4),
            Builtin::Tanh,
            vec![0],
            vec![3],
        )
        .unwrap();
        let wt = s.weights_t();
        let got: Vec<_> = wt
            .outer_iterator()
            .enumerate()
            .flat_map(|(j, r)| r.iter().map(move |(i, &v)| (j, i, v)).collect::<Vec<_>>())
            .collect();
        assert_eq!(
            got,
            vec![(0, 1, 2.0), (0, 3, 1.0), (1, 2, 4.0), (2, 3, 3.0)]
        );
    }

    #[test]
    fn recurrent_is_iterated() {
        // 0 -> 1 <-> 2 with small weights: a contraction, so the iteration converges.
        let s = SparseSeptuple::with_activation(
            3,
            &[(1, 0, 0.5), (2, 1, 0.3), (1, 2, 0.2)],
            Array1::zeros(3),
            Builtin::Tanh,
            vec![0],
            vec![],
        )
        .unwrap();
        assert!(matches!(s.feedforward(), Err(CoreError::Cycle { .. })));
        let x = s.forward_states(array![[1.0]].view()).unwrap();
        let dense = s.to_dense(DenseBudget::default()).unwrap();
        let xd = Network::forward_states(&dense, array![[1.0]].view()).unwrap();
        // Both iterate to the 1e-12 tolerance of FixedPointOptions; contraction factor < 0.3.
        assert!((&x - &xd).iter().all(|d| d.abs() < 1e-11));
    }

    #[test]
    fn random_dags_are_feedforward_reproducible_and_as_asked() {
        let a = SparseSeptuple::random_dag(500, 40, 10, 4600, Builtin::Tanh, 7).unwrap();
        let b = SparseSeptuple::random_dag(500, 40, 10, 4600, Builtin::Tanh, 7).unwrap();
        let c = SparseSeptuple::random_dag(500, 40, 10, 4600, Builtin::Tanh, 8).unwrap();
        assert_eq!(a.triplets(), b.triplets());
        assert_ne!(a.triplets(), c.triplets());
        assert_eq!(Network::n_connections(&a), 4600);
        assert_eq!(a.inputs(), (0..40).collect::<Vec<_>>());
        assert_eq!(a.outputs(), (490..500).collect::<Vec<_>>());
        // 4600 over 460 receivers: 10 each; sources earlier, never an output.
        for i in 40..500 {
            let (src, w) = a.row(i);
            assert_eq!(src.len(), 10);
            let bound = (3.0f64 / 10.0).sqrt();
            assert!(src.iter().all(|&j| j < i.min(490)));
            assert!(w.iter().all(|v| v.abs() <= bound));
        }
        assert!(a.feedforward().unwrap().depth >= 3);
        // An uneven split: the first receivers take one more.
        let d = SparseSeptuple::random_dag(50, 10, 5, 41, Builtin::Tanh, 1).unwrap();
        assert_eq!(d.row(10).0.len(), 2);
        assert_eq!(d.row(49).0.len(), 1);
    }

    #[test]
    fn impossible_random_dags_are_typed_errors() {
        for (n, n_in, n_out, c) in [(10, 0, 2, 5), (10, 3, 0, 5), (10, 6, 5, 5), (10, 2, 2, 24)] {
            let e = SparseSeptuple::random_dag(n, n_in, n_out, c, Builtin::Tanh, 1).unwrap_err();
            assert!(matches!(e, CoreError::Parameter { .. }), "{e}");
        }
    }

    /// M V and M^T V through the kernels for one vector and for blocks of 4, 8 and 16 columns
    /// are the bits of the general block loop (column 0 of a block of 2, 3, 5 or 9 columns
    /// with the same first column, scaled by f' the same way), on 1 and 2 threads, over more
    /// than one chunk of rows.
    #[test]
    fn fixed_width_products_are_the_block_products_bit_for_bit() {
        let n = 2 * VALUES_PER_TASK + 100;
        let s = SparseSeptuple::random_dag(n, 100, 10, 4 * n, Builtin::Tanh, 5).unwrap();
        let fp = Array1::from_shape_fn(n, |i| 0.5 + ((i * 7) % 13) as f64 / 26.0);
        for (fixed, general) in [(1, 2), (4, 3), (8, 5), (16, 9)] {
            let block = |k: usize| {
                Array2::from_shape_fn((n, k), |(i, c)| ((i * 7 + 3 * c + 3) % 11) as f64 - 5.0)
            };
            one_width(&s, fp.view(), block(fixed), block(general));
        }
    }

    fn one_width(
        s: &SparseSeptuple<Builtin>,
        fp: ArrayView1<'_, f64>,
        v: Array2<f64>,
        v2: Array2<f64>,
    ) {
        for transpose in [false, true] {
            let run = |threads: usize, v: ArrayView2<'_, f64>| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        if transpose {
                            Network::apply_mt(s, fp, v).unwrap()
                        } else {
                            Network::apply_m(s, fp, v).unwrap()
                        }
                    })
            };
            let one = run(1, v.view());
            assert_eq!(one, run(2, v.view()), "transpose {transpose}");
            assert_eq!(
                one.column(0),
                run(1, v2.view()).column(0),
                "transpose {transpose}"
            );
        }
    }

    #[test]
    fn block_products_match_the_dense_ones_for_any_layout_and_thread_count() {
        let s = SparseSeptuple::random_dag(3000, 50, 10, 30_000, Builtin::Tanh, 3).unwrap();
        let dense = s.to_dense(DenseBudget::default()).unwrap();
        for k in [0, 1, 3, 8] {
            let v = Array2::from_shape_fn((3000, k), |(i, c)| ((i * 7 + c * 13) % 11) as f64 - 5.0);
            // The same values in column-major layout.
            let mut f = Array2::zeros((k, 3000));
            f.assign(&v.t());
            let vf = f.t();
            for (ours, theirs) in [
                (
                    Network::weights_times(&s, vf).unwrap(),
                    dense.weights().dot(&v),
                ),
                (
                    Network::weights_t_times(&s, v.view()).unwrap(),
                    dense.weights().t().dot(&v),
                ),
            ] {
                assert!((&ours - &theirs).iter().all(|d| d.abs() < 1e-12));
            }
            let on = |t: usize| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
                    .install(|| Network::weights_times(&s, v.view()).unwrap())
            };
            assert_eq!(on(1), on(2));
        }
    }
}
