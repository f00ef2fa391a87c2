//! The [`Network`] trait: everything the other septuple crates need from a network, whatever
//! its storage (a dense septuple, a layered network, a sparse or imported graph).

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use crate::activation::Activation;
use crate::error::{check_finite, CoreError};
use crate::septuple::{Feedforward, Role, Septuple};

/// The most memory a dense N x N form may take before it is refused: dense septuples, dense
/// operators and dense spectra at large N need 8 N^2 bytes per matrix, which a few thousand
/// neurons turn into gigabytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseBudget {
    /// Bytes one dense matrix may take.
    pub bytes: u64,
}

impl Default for DenseBudget {
    /// 4 GiB: a dense N x N matrix up to N of about 23,000.
    fn default() -> Self {
        DenseBudget { bytes: 4 << 30 }
    }
}

impl DenseBudget {
    /// No limit (the allocator decides).
    pub const UNLIMITED: DenseBudget = DenseBudget { bytes: u64::MAX };

    /// Check that a `rows` x `cols` matrix of f64 fits; `what` names it in the error.
    pub fn check(&self, what: &str, rows: usize, cols: usize) -> Result<(), CoreError> {
        let needed = (rows as u128) * (cols as u128) * 8;
        if needed > u128::from(self.bytes) || needed > isize::MAX as u128 {
            return Err(CoreError::TooLarge {
                what: what.to_string(),
                rows,
                cols,
                bytes: u64::try_from(needed).unwrap_or(u64::MAX),
                budget: self.bytes,
            });
        }
        Ok(())
    }
}

/// A neural network as the septuple crates see it: N neurons with roles (Sec. 2), forward states
/// (Eq. 2.9), the mean state (Eq. 5.3), f' at a state (Eq. 5.4) and the action of w, w^T and
/// M = I - f'w (the operator of Eq. 5.6) on blocks of vectors. Spectra, thermodynamics,
/// training and reports work through this trait, so a new kind of network is one new type
/// implementing it.
///
/// Conventions: neurons are numbered 0..N; `w[[i, j]]` is the weight from neuron j into
/// neuron i; a batch of states is an S x N matrix (one row per sample); a block of vectors is
/// N x k (one column per vector).
///
/// Implemented by [`Septuple`] (dense w), [`Layered`](crate::Layered) (one matrix per
/// layer) and [`SparseSeptuple`](crate::SparseSeptuple) (w in CSR, every block product
/// O(nnz(w) k)).
pub trait Network: Sync {
    /// The activation of the neurons (Eq. 2.6).
    type Act: Activation;

    /// The number of neurons N.
    fn n_neurons(&self) -> usize;

    /// The input neurons (P_in), in the order of the columns of input data.
    fn inputs(&self) -> Cow<'_, [usize]>;

    /// The output neurons (P_out), in the order of the columns of targets.
    fn outputs(&self) -> Cow<'_, [usize]>;

    /// The role of every neuron.
    fn roles(&self) -> Vec<Role> {
        let mut roles = vec![Role::Bulk; self.n_neurons()];
        for &i in self.inputs().iter() {
            roles[i] = Role::Input;
        }
        for &o in self.outputs().iter() {
            roles[o] = Role::Output;
        }
        roles
    }

    /// The number of connections (non-zero entries of w).
    fn n_connections(&self) -> usize;

    /// w in compressed sparse row form (N x N; row i holds the weights into neuron i, columns
    /// ascending, no stored zeros): the pattern and values that structural computations read,
    /// such as the unit eigenvalues of G fixed by the graph (septuple-spectral). The default
    /// scans [`to_dense`](Network::to_dense) within the default [`DenseBudget`];
    /// implementations with direct access to w build it in O(N + nnz).
    fn weights_sparse(&self) -> Result<Cow<'_, CsMat<f64>>, CoreError> {
        let dense = self.to_dense(DenseBudget::default())?;
        Ok(Cow::Owned(dense_to_csr(dense.weights())))
    }

    /// The activation of neuron `i` (Eq. 2.6). Input neurons have one too; it never acts,
    /// since inputs are clamped to the data (Eq. 2.7).
    fn activation(&self, i: usize) -> &Self::Act;

    /// The feedforward conditions Eqs. (2.1)-(2.3): the depth L and a topological order, or
    /// the first condition that fails as a typed error.
    fn feedforward(&self) -> Result<Feedforward, CoreError>;

    /// The forward (fixed) states x-bar of Eq. (2.9) of a batch of inputs (S x n_in -> S x N),
    /// inputs clamped to the data (Eq. 2.7).
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError>;

    /// The output neurons' forward states (S x n_in -> S x n_out).
    fn predict(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        let x = self.forward_states(inputs)?;
        let out = x.select(Axis(1), &self.outputs());
        check_finite("network outputs", &out)?;
        Ok(out)
    }

    /// The mean state `<x>` of Eq. (5.3): the average of the forward states of a batch of
    /// inputs (S >= 1), the empirical ensemble standing for p(x).
    fn mean_state(&self, inputs: ArrayView2<'_, f64>) -> Result<Array1<f64>, CoreError> {
        let x = self.forward_states(inputs)?;
        x.mean_axis(Axis(0)).ok_or_else(|| CoreError::Empty {
            what: "input data".into(),
        })
    }

    /// w V for a block V (N x k -> N x k).
    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError>;

    /// w^T V for a block V (N x k -> N x k).
    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError>;

    /// The bias b (length N; zero on inputs where the network has no input biases).
    fn bias(&self) -> Cow<'_, Array1<f64>>;

    /// The pre-activation y = w x + b of one state x (length N).
    fn preactivation(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        check_state(self.n_neurons(), x)?;
        let col = x.insert_axis(Axis(1));
        let y = self.weights_times(col)?;
        Ok(y.column(0).to_owned() + &*self.bias())
    }

    /// The diagonal f'_ii of Eq. (5.4): each neuron's activation derivative at y = w x + b
    /// for the state x (for G, x is the mean state of Eq. 5.3).
    fn derivatives_at(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        let y = self.preactivation(x)?;
        Ok(Array1::from_iter(
            y.iter()
                .enumerate()
                .map(|(i, &v)| self.activation(i).derivative(v)),
        ))
    }

    /// M V = V - f' (w V) for a block V (N x k), M = I - f'w the operator of Eq. (5.6) with
    /// f' the diagonal `fp` of Eq. (5.4) (length N).
    fn apply_m(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        check_block(self.n_neurons(), fp, v)?;
        let mut wv = self.weights_times(v)?;
        for (mut row, &f) in wv.rows_mut().into_iter().zip(fp) {
            row.mapv_inplace(|x| -f * x);
        }
        wv += &v;
        Ok(wv)
    }

    /// M^T V = V - w^T (f' V) for a block V (N x k), M = I - f'w of Eq. (5.6).
    fn apply_mt(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        check_block(self.n_neurons(), fp, v)?;
        let mut scaled = v.to_owned();
        for (mut row, &f) in scaled.rows_mut().into_iter().zip(fp) {
            row *= f;
        }
        let mut out = self.weights_t_times(scaled.view())?;
        out.mapv_inplace(|x| -x);
        out += &v;
        Ok(out)
    }

    /// [`Network::apply_m`] (M V, Eq. 5.6) written into `out` (the shape of `v`), which it
    /// overwrites. The default computes M V and copies it; an implementation that fuses the
    /// product (as [`SparseSeptuple`](crate::SparseSeptuple) does) allocates nothing, which is
    /// what lets an iteration keep its blocks of N x k.
    fn apply_m_into(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), CoreError> {
        check_out(v, &out)?;
        out.assign(&self.apply_m(fp, v)?);
        Ok(())
    }

    /// [`Network::apply_mt`] (M^T V, Eq. 5.6) written into `out` (the shape of `v`), as
    /// [`Network::apply_m_into`].
    fn apply_mt_into(
        &self,
        fp: ArrayView1<'_, f64>,
        v: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), CoreError> {
        check_out(v, &out)?;
        out.assign(&self.apply_mt(fp, v)?);
        Ok(())
    }

    /// The rows `rows` of M = I - f'w (Eq. 5.6) as a dense |rows| x N matrix; f' is `fp`.
    /// The default applies M^T to unit vectors; implementations with direct access to w
    /// override it. Refused beyond `budget`.
    fn jacobian_rows(
        &self,
        fp: ArrayView1<'_, f64>,
        rows: &[usize],
        budget: DenseBudget,
    ) -> Result<Array2<f64>, CoreError> {
        let n = self.n_neurons();
        check_jacobian_rows(n, fp, rows, budget)?;
        let mut e = Array2::zeros((n, rows.len()));
        for (k, &i) in rows.iter().enumerate() {
            e[[i, k]] = 1.0;
        }
        Ok(self
            .apply_mt(fp, e.view())?
            .reversed_axes()
            .as_standard_layout()
            .into_owned())
    }

    /// The network as a dense septuple (N x N weight matrix), refused with
    /// [`CoreError::TooLarge`] if that matrix exceeds `budget`.
    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<Self::Act>, CoreError>;
}

/// The non-zero entries of a dense N x N matrix in CSR form, columns ascending.
pub(crate) fn dense_to_csr(w: ArrayView2<'_, f64>) -> CsMat<f64> {
    let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
    for row in w.rows() {
        for (j, &v) in row.iter().enumerate() {
            if v != 0.0 {
                indices.push(j);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    CsMat::try_new((w.nrows(), w.ncols()), indptr, indices, data)
        .unwrap_or_else(|(_, _, _, e)| unreachable!("a sorted CSR structure was built: {e}"))
}

pub(crate) fn check_state(n: usize, x: ArrayView1<'_, f64>) -> Result<(), CoreError> {
    if x.len() != n {
        return Err(CoreError::shape("state x", x.shape(), &[n]));
    }
    check_finite("state x", x)
}

/// The output block of an `apply_*_into` has the shape of its input block.
pub(crate) fn check_out(
    v: ArrayView2<'_, f64>,
    out: &ArrayViewMut2<'_, f64>,
) -> Result<(), CoreError> {
    if out.dim() != v.dim() {
        return Err(CoreError::shape(
            "output block of M V or M^T V",
            out.shape(),
            v.shape(),
        ));
    }
    Ok(())
}

pub(crate) fn check_block(
    n: usize,
    fp: ArrayView1<'_, f64>,
    v: ArrayView2<'_, f64>,
) -> Result<(), CoreError> {
    if fp.len() != n {
        return Err(CoreError::shape("f' diagonal", fp.shape(), &[n]));
    }
    check_finite("f' diagonal", fp)?;
    check_vectors(n, v)
}

/// The checks of every [`Network::jacobian_rows`]: the |rows| x N result within `budget`, the
/// f' diagonal `fp` of length N and finite, every row index below N.
pub(crate) fn check_jacobian_rows(
    n: usize,
    fp: ArrayView1<'_, f64>,
    rows: &[usize],
    budget: DenseBudget,
) -> Result<(), CoreError> {
    budget.check("rows of I - f'w", rows.len(), n)?;
    check_block(n, fp, Array2::<f64>::zeros((n, 0)).view())?;
    match rows.iter().find(|&&i| i >= n) {
        Some(&index) => Err(CoreError::IndexOutOfRange {
            what: "row of I - f'w".into(),
            index,
            n,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_vectors(n: usize, v: ArrayView2<'_, f64>) -> Result<(), CoreError> {
    if v.nrows() != n {
        return Err(CoreError::shape(
            "block of vectors (one column per vector)",
            v.shape(),
            &[n, v.ncols()],
        ));
    }
    Ok(())
}

impl<A: Activation> Network for Septuple<A> {
    type Act = A;

    fn n_neurons(&self) -> usize {
        Septuple::n_neurons(self)
    }

    fn inputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(Septuple::inputs(self))
    }

    fn outputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(Septuple::outputs(self))
    }

    fn roles(&self) -> Vec<Role> {
        Septuple::roles(self).to_vec()
    }

    fn n_connections(&self) -> usize {
        self.weights().iter().filter(|&&v| v != 0.0).count()
    }

    fn weights_sparse(&self) -> Result<Cow<'_, CsMat<f64>>, CoreError> {
        Ok(Cow::Owned(dense_to_csr(self.weights())))
    }

    fn activation(&self, i: usize) -> &A {
        &self.activations()[i]
    }

    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        Septuple::feedforward(self)
    }

    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        Ok(self
            .fixed_state(inputs, &crate::FixedPointOptions::default())?
            .states)
    }

    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        check_vectors(Septuple::n_neurons(self), v)?;
        Ok(self.weights().dot(&v))
    }

    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        check_vectors(Septuple::n_neurons(self), v)?;
        Ok(self.weights().t().dot(&v))
    }

    fn bias(&self) -> Cow<'_, Array1<f64>> {
        Cow::Owned(Septuple::bias(self).to_owned())
    }

    fn preactivation(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        Septuple::preactivation(self, x)
    }

    fn derivatives_at(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        Septuple::derivatives_at(self, x)
    }

    fn jacobian_rows(
        &self,
        fp: ArrayView1<'_, f64>,
        rows: &[usize],
        budget: DenseBudget,
    ) -> Result<Array2<f64>, CoreError> {
        let n = Septuple::n_neurons(self);
        check_jacobian_rows(n, fp, rows, budget)?;
        let w = self.weights();
        let mut m = Array2::zeros((rows.len(), n));
        for (k, &i) in rows.iter().enumerate() {
            let f = fp[i];
            let mut row = m.row_mut(k);
            row.zip_mut_with(&w.row(i), |v, &x| *v = -f * x);
            row[i] += 1.0;
        }
        Ok(m)
    }

    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<A>, CoreError> {
        let n = Septuple::n_neurons(self);
        budget.check("dense weight matrix w", n, n)?;
        Ok(self.clone())
    }
}
