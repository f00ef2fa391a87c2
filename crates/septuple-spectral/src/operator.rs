//! The operator G of Eq. (5.6) and its spectrum, dense or by the structured projection, for
//! any [`Network`].

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use septuple_core::{DenseBudget, Network};
use serde::{Deserialize, Serialize};

use crate::backend::SpectrumBackend;
use crate::error::SpectralError;

fn check_mean<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
) -> Result<(), SpectralError> {
    if mean.len() != net.n_neurons() {
        return Err(SpectralError::Shape {
            what: "mean state",
            got: mean.shape().to_vec(),
            expected: vec![net.n_neurons()],
        });
    }
    if mean.iter().any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite { what: "mean state" });
    }
    Ok(())
}

/// M = I - f' w with f' of Eq. (5.4) evaluated at y = w `<x>` + b: the operator inside G of
/// Eq. (5.6), dense (N x N, refused beyond `budget`). `mean` is the mean state `<x>` of
/// Eq. (5.3) (length N).
pub fn jacobian<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
    budget: DenseBudget,
) -> Result<Array2<f64>, SpectralError> {
    check_mean(net, mean)?;
    let fp = net.derivatives_at(mean)?;
    let all: Vec<usize> = (0..net.n_neurons()).collect();
    Ok(net.jacobian_rows(fp.view(), &all, budget)?)
}

/// G = (I - f'w)^T (I - f'w) of Eq. (5.6), f' at y = w `<x>` + b (Eq. 5.4), dense.
pub fn g_operator<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
    budget: DenseBudget,
) -> Result<Array2<f64>, SpectralError> {
    let m = jacobian(net, mean, budget)?;
    Ok(m.t().dot(&m))
}

/// The sample-averaged G: the mean over the rows of `states` (S x N) of
/// (I - f'_s w)^T (I - f'_s w) with f'_s at each sample's own y = w x_s + b. This is an
/// extension of ours, not in the paper: Eq. (5.4) linearises at the mean state instead.
pub fn g_operator_sample_averaged<N: Network + ?Sized>(
    net: &N,
    states: ArrayView2<'_, f64>,
    budget: DenseBudget,
) -> Result<Array2<f64>, SpectralError> {
    let n = net.n_neurons();
    if states.ncols() != n || states.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "states",
            got: states.shape().to_vec(),
            expected: vec![states.nrows().max(1), n],
        });
    }
    // Two N x N matrices live at once (the sum and one sample's M).
    budget.check("sample-averaged G", 2 * n, n)?;
    let mut g = Array2::zeros((n, n));
    for x in states.axis_iter(Axis(0)) {
        let m = jacobian(net, x, budget)?;
        g += &m.t().dot(&m);
    }
    g /= states.nrows() as f64;
    Ok(g)
}

/// How the eigenvalues of G are computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Squared singular values of the N x N matrix I - f'w: O(N^3).
    Dense,
    /// Only the at most 2r eigenvalues that can differ from 1 (r non-input neurons), from a
    /// k x k projection (k <= 2r): O(N r^2). The rest are exactly 1.
    Structured,
    /// For [`spectrum`]: structured when k <= N / 2 (then it is at least 8 times less work),
    /// dense otherwise. For [`analyze`](crate::analyze): that exact method if it fits the
    /// [`DenseBudget`] and matrix-free is not estimated at least [`MATRIX_FREE_ADVANTAGE`] times
    /// cheaper, else matrix-free ([`choose_method`]).
    #[default]
    Auto,
    /// No spectrum: the summary's traces and moments by stochastic Lanczos quadrature and the
    /// complexities from the extreme eigenvalues, with their errors, from products M V and
    /// M^T V only ([`analyze`](crate::analyze) with
    /// [`AnalysisOptions::matrix_free`](crate::AnalysisOptions::matrix_free)).
    MatrixFree,
}

/// Auto prefers an exact method unless matrix-free is estimated this many times cheaper.
pub const MATRIX_FREE_ADVANTAGE: f64 = 4.0;

/// The estimated cost of one method.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Floating-point operations (a model: leading terms only).
    pub flops: f64,
    /// Bytes of its largest matrix.
    pub bytes: f64,
    /// Whether that matrix fits the [`DenseBudget`].
    pub fits: bool,
}

/// What [`Method::Auto`] chose and the costs it compared.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodChoice {
    /// The method chosen (never `Auto`).
    pub method: Method,
    /// Dense: forming M (N products with M^T) and the singular values of an N x N matrix,
    /// 2 N nnz + (8/3) N^3 flops, 8 N^2 bytes.
    pub dense: Cost,
    /// Structured: r rows of M, two Gram-Schmidt passes over n_in x r, a k x k SVD:
    /// 2 r nnz + 4 n_in r min(n_in, r) + (8/3) k^3 flops, 8 r N bytes.
    pub structured: Cost,
    /// Matrix-free at its options' worst case: every probe for every step and the extreme
    /// eigenvalues for three basis lengths per end (M^-1 costs L - 1 products with w).
    pub matrix_free: Cost,
}

/// The method [`Method::Auto`] stands for in an analysis of a network of `n` neurons,
/// `n_inputs` inputs, `n_connections` non-zero weights and `depth` layers, and the costs it
/// compared; any other method is returned as it is (with the same costs).
#[allow(clippy::too_many_arguments)] // the sizes of the network, then the options
pub fn choose_method(
    method: Method,
    n: usize,
    n_inputs: usize,
    n_connections: usize,
    depth: usize,
    budget: DenseBudget,
    mf: &crate::matrix_free::MatrixFreeOptions,
) -> MethodChoice {
    let (nf, nnz) = (n as f64, n_connections as f64);
    let r = n.saturating_sub(n_inputs);
    let k = r + n_inputs.min(r);
    let (rf, kf, nif) = (r as f64, k as f64, n_inputs as f64);
    let fits = |rows: usize, cols: usize| budget.check("", rows, cols).is_ok();
    let dense = Cost {
        flops: 2.0 * nf * nnz + 8.0 / 3.0 * nf.powi(3),
        bytes: 8.0 * nf * nf,
        fits: fits(n, n),
    };
    let structured = Cost {
        flops: 2.0 * rf * nnz + 4.0 * nif * rf * nif.min(rf) + 8.0 / 3.0 * kf.powi(3),
        bytes: 8.0 * rf * nf,
        fits: fits(r, n),
    };
    let product = 2.0 * nnz + 4.0 * nf;
    let basis = mf.extreme_basis.max(2 * mf.n_extreme + 10) as f64;
    let extreme_steps = (3.0 * basis).min(mf.extreme_max_steps as f64);
    let steps = mf
        .max_steps
        .min(crate::matrix_free::krylov_bound(n, n_inputs)) as f64;
    let extreme = extreme_steps * (2.0 * product * depth.max(1) as f64 + 8.0 * nf * basis);
    let slq = mf.max_probes as f64 * steps * (2.0 * product + 8.0 * nf * steps);
    let matrix_free = Cost {
        flops: extreme + slq,
        bytes: 8.0 * nf * (2.0 * basis + 2.0 * mf.batch as f64 * (steps + 1.0)),
        fits: true,
    };
    let chosen = match method {
        Method::Auto => {
            let exact = resolve(Method::Auto, n, n_inputs);
            let (first, second) = if exact == Method::Structured {
                ((Method::Structured, structured), (Method::Dense, dense))
            } else {
                ((Method::Dense, dense), (Method::Structured, structured))
            };
            let pick = [first, second].into_iter().find(|(_, c)| c.fits);
            match pick {
                Some((m, c)) if matrix_free.flops * MATRIX_FREE_ADVANTAGE >= c.flops => m,
                _ => Method::MatrixFree,
            }
        }
        other => other,
    };
    MethodChoice {
        method: chosen,
        dense,
        structured,
        matrix_free,
    }
}

/// How [`spectrum`] works: the method and the memory its dense matrices may take.
/// ([`Method::MatrixFree`] is an error for [`spectrum`], which returns every eigenvalue.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpectrumOptions {
    /// The method.
    pub method: Method,
    /// The most memory one dense matrix may take (the N x N M of [`Method::Dense`], the
    /// r x N rows of M of [`Method::Structured`]).
    pub budget: DenseBudget,
}

impl From<Method> for SpectrumOptions {
    fn from(method: Method) -> Self {
        SpectrumOptions {
            method,
            budget: DenseBudget::default(),
        }
    }
}

/// The eigenvalues of G, ascending, and how they were computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    /// lambda_i, ascending (N of them).
    pub eigenvalues: Vec<f64>,
    /// The method used (never `Auto`).
    pub method: Method,
    /// The dimension of the problem that was solved (N dense, k structured).
    pub solved_dimension: usize,
}

impl Spectrum {
    /// Natural logarithms of the eigenvalues, ascending. Errors if one is not positive.
    pub fn log_eigenvalues(&self) -> Result<Vec<f64>, SpectralError> {
        crate::summary::log_spectrum(&self.eigenvalues)
    }
}

/// The eigenvalues lambda_i of G (Eq. 5.6) of any network at the mean state `mean`
/// (Eq. 5.3), as squared singular values of M = I - f'w (G itself squares M's condition
/// number), ascending. `options` is a [`Method`] or a [`SpectrumOptions`].
///
/// The structured path needs only the rows of M at the r non-input neurons (r x N, from
/// [`Network::jacobian_rows`]); the dense path all of M.
pub fn spectrum<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
    options: impl Into<SpectrumOptions>,
    backend: &dyn SpectrumBackend,
) -> Result<Spectrum, SpectralError> {
    let options = options.into();
    check_mean(net, mean)?;
    let n = net.n_neurons();
    let inputs = net.inputs();
    let fp = net.derivatives_at(mean)?;
    let mut is_input = vec![false; n];
    for &i in inputs.iter() {
        is_input[i] = true;
    }
    let method = resolve(options.method, n, inputs.len());
    match method {
        Method::MatrixFree => Err(not_a_spectrum()),
        Method::Dense => {
            let all: Vec<usize> = (0..n).collect();
            let m = net.jacobian_rows(fp.view(), &all, options.budget)?;
            dense(m.view(), backend)
        }
        _ => {
            // The input rows of M are identity rows (Eq. 2.2 holds for every network).
            let j_idx: Vec<usize> = (0..n).filter(|&i| !is_input[i]).collect();
            let rows = net.jacobian_rows(fp.view(), &j_idx, options.budget)?;
            structured(rows.view(), &is_input, backend)
        }
    }
}

fn not_a_spectrum() -> SpectralError {
    SpectralError::Parameter {
        what: "method",
        value: "matrix-free".into(),
        expected: "dense, structured or auto: the matrix-free method estimates what is read from the spectrum, not the spectrum (use analyze)",
    }
}

/// The exact method `Auto` stands for at N neurons of which `n_inputs` are inputs.
fn resolve(method: Method, n: usize, n_inputs: usize) -> Method {
    let r = n - n_inputs;
    let k_max = r + n_inputs.min(r);
    match method {
        Method::Auto if 2 * k_max <= n => Method::Structured,
        Method::Auto => Method::Dense,
        other => other,
    }
}

fn dense(m: ArrayView2<'_, f64>, backend: &dyn SpectrumBackend) -> Result<Spectrum, SpectralError> {
    let s = backend.singular_values(m)?;
    Ok(Spectrum {
        eigenvalues: s.iter().map(|v| v * v).collect(),
        method: Method::Dense,
        solved_dimension: m.nrows(),
    })
}

/// The spectrum of G = M^T M for M = I - A, where the rows of A at `inputs` vanish (true for
/// any septuple: nothing feeds an input, Eq. 2.2; and f'w has zero rows there).
pub fn spectrum_of_jacobian(
    m: ArrayView2<'_, f64>,
    inputs: &[usize],
    method: Method,
    backend: &dyn SpectrumBackend,
) -> Result<Spectrum, SpectralError> {
    let n = m.nrows();
    if m.ncols() != n {
        return Err(SpectralError::Shape {
            what: "I - f'w",
            got: m.shape().to_vec(),
            expected: vec![n, n],
        });
    }
    let mut is_input = vec![false; n];
    for &i in inputs {
        if i >= n {
            return Err(SpectralError::Parameter {
                what: "input index",
                value: i.to_string(),
                expected: "an index below N",
            });
        }
        is_input[i] = true;
    }
    if m.iter().any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite { what: "I - f'w" });
    }
    for i in (0..n).filter(|&i| is_input[i]) {
        for j in 0..n {
            let expect = if i == j { 1.0 } else { 0.0 };
            // Exact: these rows are built as identity rows, any other value is a caller's error.
            #[allow(clippy::float_cmp)]
            let differs = m[[i, j]] != expect;
            if differs {
                return Err(SpectralError::Parameter {
                    what: "row of an input neuron in I - f'w",
                    value: format!("row {i} differs from e_{i} at column {j}"),
                    expected: "identity rows at the inputs (nothing feeds an input, Eq. 2.2)",
                });
            }
        }
    }
    match resolve(method, n, inputs.len()) {
        Method::MatrixFree => Err(not_a_spectrum()),
        Method::Dense => dense(m, backend),
        _ => {
            let j_idx: Vec<usize> = (0..n).filter(|&i| !is_input[i]).collect();
            structured(m.select(Axis(0), &j_idx).view(), &is_input, backend)
        }
    }
}

/// The eigenvalues lambda_i of G (Eq. 5.6) with the components a_i = v_i . `<x>` of the mean
/// state in G's orthonormal eigenbasis (Eq. 5.12), both ascending in lambda, for the full log Z
/// of Eq. (5.11). Dense: a symmetric eigendecomposition of G itself by `backend`, O(N^3); the
/// eigenvalues are those of G formed explicitly, accurate to ~eps * lambda_max.
pub fn eigen_components<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
    budget: DenseBudget,
    backend: &dyn SpectrumBackend,
) -> Result<(Vec<f64>, Vec<f64>), SpectralError> {
    let g = g_operator(net, mean, budget)?;
    let (values, vectors) = backend.symmetric_eigen(g.view())?;
    let a = vectors.t().dot(&mean);
    Ok((values, a.to_vec()))
}

/// The projection: with J the non-input neurons and I the inputs, A = f'w has rows only in J,
/// so S = span(e_j, j in J) + range(A^T) is invariant under M and M^T and both act as the
/// identity on its complement. An orthonormal basis is [e_J, Q_B] with Q_B an orthonormal basis
/// of range(A_JI^T) in the input coordinates; in it M is the block matrix
/// [[I - A_JJ, -A_JI Q_B], [0, I]] of size k = |J| + rank, whose singular values are those of M
/// that may differ from 1. `rows` holds the rows J of M (|J| x N, in ascending J).
fn structured(
    rows: ArrayView2<'_, f64>,
    is_input: &[bool],
    backend: &dyn SpectrumBackend,
) -> Result<Spectrum, SpectralError> {
    let n = is_input.len();
    let j_idx: Vec<usize> = (0..n).filter(|&i| !is_input[i]).collect();
    let i_idx: Vec<usize> = (0..n).filter(|&i| is_input[i]).collect();
    let r = j_idx.len();
    // -A_JI (r x n_in) and I - A_JJ (r x r).
    let m_ji = rows.select(Axis(1), &i_idx);
    let m_jj = rows.select(Axis(1), &j_idx);
    // B = (-A_JI)^T = Q R, so (-A_JI) Q = B^T Q = R^T: no product needed.
    let (q, rr) = gram_schmidt(m_ji.t());
    let kb = q.len();
    let k = r + kb;
    let mut block = Array2::zeros((k, k));
    block.slice_mut(s![..r, ..r]).assign(&m_jj);
    for (kk, row) in rr.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            block[[j, r + kk]] = v;
        }
    }
    for d in r..k {
        block[[d, d]] = 1.0;
    }
    let s = backend.singular_values(block.view())?;
    let mut eigenvalues: Vec<f64> = s.iter().map(|v| v * v).collect();
    eigenvalues.extend(std::iter::repeat_n(1.0, n - k));
    eigenvalues.sort_by(f64::total_cmp);
    Ok(Spectrum {
        eigenvalues,
        method: Method::Structured,
        solved_dimension: k,
    })
}

/// A thin QR factorisation b = Q R of `b` (n x c) by classical Gram-Schmidt applied twice
/// ("twice is enough": Q orthonormal to working precision). Columns whose remainder is below
/// 1e-13 of their norm lie in the span of the earlier ones and add no column to Q; R is
/// kb x c (kb columns of Q), upper trapezoidal in the kept columns.
fn gram_schmidt(b: ArrayView2<'_, f64>) -> (Vec<Array1<f64>>, Vec<Vec<f64>>) {
    let (n, c) = b.dim();
    let mut q: Vec<Array1<f64>> = Vec::with_capacity(c.min(n));
    // r[k][col]: coefficient of q_k in column col.
    let mut r: Vec<Vec<f64>> = Vec::with_capacity(c.min(n));
    for (ci, col) in b.axis_iter(Axis(1)).enumerate() {
        let norm0 = col.dot(&col).sqrt();
        if norm0 == 0.0 {
            continue;
        }
        let mut v = col.to_owned();
        for _ in 0..2 {
            for (k, u) in q.iter().enumerate() {
                let p = u.dot(&v);
                v.scaled_add(-p, u);
                r[k][ci] += p;
            }
        }
        let norm = v.dot(&v).sqrt();
        if norm > 1e-13 * norm0 && q.len() < n {
            v /= norm;
            q.push(v);
            let mut row = vec![0.0; c];
            row[ci] = norm;
            r.push(row);
        }
    }
    (q, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Faer;
    use approx::assert_abs_diff_eq;
    use septuple_core::{Builtin, Init, Layered, Network};

    fn mean_state(net: &Layered<Builtin>, seed: u64) -> Array1<f64> {
        let n_in = net.layer_sizes()[0];
        let x = Array2::from_shape_fn((20, n_in), |(s, i)| {
            (((s * 31 + i * 17 + seed as usize) % 97) as f64 / 97.0).powi(2)
        });
        net.mean_state(x.view()).unwrap()
    }

    #[test]
    fn dense_is_squared_singular_values_and_matches_eigvalsh() {
        // Two routes to the same spectrum; eigvalsh of G loses accuracy ~ eps * lambda_max on
        // the small eigenvalues, so compare absolutely at 1e-11 for lambda of order 1-10.
        let net =
            Layered::random(&[6, 5, 4, 3], Builtin::Tanh, Init::Normal { std: 0.7 }, 2).unwrap();
        let sep = net.to_septuple().unwrap();
        let mean = mean_state(&net, 1);
        let spec = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
        let g = g_operator(&sep, mean.view(), DenseBudget::default()).unwrap();
        let direct = Faer::default().symmetric_eigenvalues(g.view()).unwrap();
        for (a, b) in spec.eigenvalues.iter().zip(&direct) {
            assert_abs_diff_eq!(a, b, epsilon = 1e-11);
        }
        assert!(spec.eigenvalues.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn structured_equals_dense() {
        // Both are backward-stable SVDs of orthogonally equivalent matrices: agreement to a
        // few eps times the largest singular value squared (~1e-13 here); 1e-10 is the contract.
        for (sizes, seed) in [
            (vec![12usize, 5, 4, 3], 1u64),
            (vec![30, 7, 2], 2),
            (vec![3, 8, 8, 2], 3),
            (vec![5, 5], 4),
        ] {
            let net =
                Layered::random(&sizes, Builtin::Tanh, Init::Normal { std: 1.1 }, seed).unwrap();
            let sep = net.to_septuple().unwrap();
            let mean = mean_state(&net, seed);
            let d = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
            let s = spectrum(&sep, mean.view(), Method::Structured, &Faer::default()).unwrap();
            assert_eq!(s.method, Method::Structured);
            for (a, b) in d.eigenvalues.iter().zip(&s.eigenvalues) {
                assert_abs_diff_eq!(a, b, epsilon = 1e-10);
            }
        }
    }

    #[test]
    fn log_det_is_zero_at_paper_scale() {
        // det M = 1 for a feedforward network (unit triangular in a topological order), so
        // sum log lambda = 0 (Eqs. 7.7-7.8). Rounding: each log lambda carries ~eps * cond
        // error; summed over 854 values, ~1e-12.
        for sizes in [[784usize, 40, 20, 10].as_slice(), [784, 60, 10].as_slice()] {
            let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 7).unwrap();
            let sep = net.to_septuple().unwrap();
            let mean = mean_state(&net, 3);
            for method in [Method::Dense, Method::Structured] {
                let spec = spectrum(&sep, mean.view(), method, &Faer::default()).unwrap();
                let sum: f64 = spec.log_eigenvalues().unwrap().iter().sum();
                assert!(sum.abs() < 1e-10, "{method:?}: {sum}");
            }
        }
    }

    #[test]
    fn auto_picks_structured_for_the_paper_networks() {
        let net = Layered::random(&[784, 60, 10], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let sep = net.to_septuple().unwrap();
        let mean = mean_state(&net, 2);
        let s = spectrum(&sep, mean.view(), Method::Auto, &Faer::default()).unwrap();
        assert_eq!(s.method, Method::Structured);
        // r = 70 non-input neurons; only the 60 first-layer rows reach the inputs: k = 130.
        assert_eq!(s.solved_dimension, 130);
        assert_eq!(s.eigenvalues.len(), 854);
    }

    #[test]
    fn sample_averaged_g_is_symmetric_positive_semidefinite() {
        let net = Layered::random(&[4, 3, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let sep = net.to_septuple().unwrap();
        let x = Array2::from_shape_fn((5, 4), |(s, i)| ((s + i) as f64 * 0.3).sin());
        let states = sep.forward_states(x.view()).unwrap();
        let g = g_operator_sample_averaged(&sep, states.view(), DenseBudget::default()).unwrap();
        assert_abs_diff_eq!(g, g.t(), epsilon = 1e-15);
        let e = Faer::default().symmetric_eigenvalues(g.view()).unwrap();
        assert!(e[0] > -1e-12);
        // With one sample it is G at that sample.
        let one =
            g_operator_sample_averaged(&sep, states.slice(s![0..1, ..]), DenseBudget::default())
                .unwrap();
        let direct = g_operator(&sep, states.row(0), DenseBudget::default()).unwrap();
        assert_abs_diff_eq!(one, direct, epsilon = 1e-15);
    }

    #[test]
    fn eigen_components_reconstruct_the_mean() {
        // sum a_i^2 = |<x>|^2 (orthonormal basis) and the eigenvalues match the SVD route.
        let net = Layered::random(&[5, 4, 3], Builtin::Tanh, Init::Normal { std: 0.8 }, 5).unwrap();
        let sep = net.to_septuple().unwrap();
        let mean = mean_state(&net, 4);
        let (lambda, a) =
            eigen_components(&sep, mean.view(), DenseBudget::default(), &Faer::default()).unwrap();
        approx::assert_relative_eq!(
            a.iter().map(|v| v * v).sum::<f64>(),
            mean.dot(&mean),
            max_relative = 1e-12
        );
        let d = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
        for (x, y) in lambda.iter().zip(&d.eigenvalues) {
            assert_abs_diff_eq!(x, y, epsilon = 1e-11);
        }
    }

    #[cfg(feature = "openblas")]
    #[test]
    fn lapack_agrees_with_faer() {
        // Two backward-stable SVDs (and symmetric eigensolvers) of one matrix: agreement to a
        // few eps times the largest value; 1e-10 is the contract.
        use crate::backend::Lapack;
        for sizes in [[784usize, 40, 20, 10].as_slice(), [7, 5, 3].as_slice()] {
            let net = Layered::random(sizes, Builtin::Tanh, Init::TorchLinear, 2).unwrap();
            let sep = net.to_septuple().unwrap();
            let mean = mean_state(&net, 5);
            for method in [Method::Dense, Method::Structured] {
                let a = spectrum(&sep, mean.view(), method, &Faer::default()).unwrap();
                let b = spectrum(&sep, mean.view(), method, &Lapack).unwrap();
                for (x, y) in a.eigenvalues.iter().zip(&b.eigenvalues) {
                    assert_abs_diff_eq!(x, y, epsilon = 1e-10);
                }
            }
            let g = g_operator(&sep, mean.view(), DenseBudget::default()).unwrap();
            let a = Faer::default().symmetric_eigenvalues(g.view()).unwrap();
            let b = Lapack.symmetric_eigenvalues(g.view()).unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert_abs_diff_eq!(x, y, epsilon = 1e-10);
            }
        }
    }

    #[cfg(feature = "openblas")]
    #[test]
    fn lapack_eigenvalues_in_any_memory_order() {
        // [[2, 1], [1, 2]] has eigenvalues 1 and 3 (exact in floating point up to rounding);
        // transposed (column-major) and strided views must give the same values. G here has
        // norm below 10, so two backward-stable eigensolvers agree to a few eps times 10 in
        // every eigenvalue; 1e-12 leaves two orders of margin and still catches a wrong
        // layout or triangle, which changes the values at O(1).
        use crate::backend::Lapack;
        let a = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
        let e = Lapack.symmetric_eigenvalues(a.view()).unwrap();
        assert_abs_diff_eq!(e[0], 1.0, epsilon = 1e-14);
        assert_abs_diff_eq!(e[1], 3.0, epsilon = 1e-14);
        let net = Layered::random(&[9, 6, 4], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
        let sep = net.to_septuple().unwrap();
        let g = g_operator(&sep, mean_state(&net, 4).view(), DenseBudget::default()).unwrap();
        let reference = Faer::default().symmetric_eigenvalues(g.view()).unwrap();
        let strided = g.slice(ndarray::s![..;2, ..;2]);
        let strided_ref = Faer::default()
            .symmetric_eigenvalues(strided.to_owned().view())
            .unwrap();
        for (view, expected) in [(g.t(), &reference), (strided, &strided_ref)] {
            let got = Lapack.symmetric_eigenvalues(view).unwrap();
            assert_eq!(got.len(), expected.len());
            for (x, y) in got.iter().zip(expected.iter()) {
                assert_abs_diff_eq!(x, y, epsilon = 1e-12);
            }
        }
        assert!(Lapack
            .symmetric_eigenvalues(g.slice(ndarray::s![.., 1..]))
            .is_err());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let net = Layered::random(&[4, 3, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let sep = net.to_septuple().unwrap();
        let short = Array1::zeros(5);
        assert!(spectrum(&sep, short.view(), Method::Auto, &Faer::default()).is_err());
        let mut nan = Array1::zeros(9);
        nan[2] = f64::NAN;
        assert!(spectrum(&sep, nan.view(), Method::Auto, &Faer::default()).is_err());
        let m = Array2::<f64>::eye(3);
        assert!(spectrum_of_jacobian(m.view(), &[5], Method::Dense, &Faer::default()).is_err());
        let rect = Array2::<f64>::zeros((3, 2));
        assert!(spectrum_of_jacobian(rect.view(), &[], Method::Dense, &Faer::default()).is_err());
    }
}
