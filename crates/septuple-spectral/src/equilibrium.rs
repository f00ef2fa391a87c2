//! The learning equilibrium of Sec. 6 as a residual: the total derivatives of the average bulk
//! loss U(beta) of Eq. (6.1) in the weights and biases (Eq. 6.2), by one reverse-mode pass; and
//! the mean-state term of log Z in Eq. (5.11), the term that (5.12)-(5.14) drop.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;
use septuple_core::{Activation, DenseBudget, Network};
use septuple_thermo::ThermoError;
use serde::{Deserialize, Serialize};

use crate::backend::SpectrumBackend;
use crate::error::SpectralError;
use crate::operator::jacobian;

/// Samples per block of the reverse pass through the forward states. Fixed, so that the blocks
/// and the order in which their sums are added do not depend on the thread count.
const SAMPLE_BLOCK: usize = 128;

/// log(2 pi) / 2, the per-neuron constant of Eq. (5.11).
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

/// log Z of Eq. (5.11) in its three terms, at one beta and m.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogZParts {
    /// The inverse temperature beta.
    pub beta: f64,
    /// The local-objective mass m (Eq. 3.3).
    pub mass: f64,
    /// The first term of Eq. (5.11): -1/2 sum_i log(1 - beta m + beta lambda_i).
    pub log_det_term: f64,
    /// The second term of Eq. (5.11), the one that carries the mean state:
    /// -1/2 sum_i (1 - beta m) beta lambda_i a_i^2 / (1 - beta m + beta lambda_i), a_i the
    /// components of `<x>` in G's eigenbasis (Eqs. 5.10, 5.12). See [`mean_term`].
    pub mean_term: f64,
    /// The third term of Eq. (5.11): (N/2) log 2 pi.
    pub constant: f64,
}

impl LogZParts {
    /// log Z without the mean-state term: Eq. (5.14), the first and third terms of (5.11).
    pub fn without_mean(&self) -> f64 {
        self.log_det_term + self.constant
    }

    /// log Z of Eq. (5.11), all three terms.
    pub fn full(&self) -> f64 {
        self.log_det_term + self.mean_term + self.constant
    }
}

/// The second term of log Z in Eq. (5.11):
/// -1/2 sum_i (1 - beta m) beta lambda_i a_i^2 / (1 - beta m + beta lambda_i)
/// for eigenvalues `lambda` of G (Eq. 5.10) and components `a` of the mean state in the
/// orthonormal eigenbasis (Eq. 5.12), paired by index. It equals
/// -1/2 `<x>`^T (1 - beta m) beta G (I (1 - beta m) + beta G)^-1 `<x>`, the exponent of Eq. (5.9).
///
/// Errors: lists of different lengths or with non-finite entries, beta not positive and finite,
/// m not finite, or 1 - beta m + beta lambda_i <= 0 for some i (the integral (5.9) diverges).
pub fn mean_term(lambda: &[f64], a: &[f64], beta: f64, mass: f64) -> Result<f64, SpectralError> {
    if a.len() != lambda.len() {
        return Err(SpectralError::Shape {
            what: "mean components a",
            got: vec![a.len()],
            expected: vec![lambda.len()],
        });
    }
    if lambda.iter().chain(a).any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite {
            what: "eigenvalues or mean components",
        });
    }
    let d = denominators(lambda, beta, mass)?;
    let c = 1.0 - beta * mass;
    Ok(-0.5
        * lambda
            .iter()
            .zip(a)
            .zip(&d)
            .map(|((&l, &ai), &di)| c * beta * l * ai * ai / di)
            .sum::<f64>())
}

/// 1 - beta m + beta lambda_i for every i, each checked positive; beta positive and m finite.
fn denominators(lambda: &[f64], beta: f64, mass: f64) -> Result<Vec<f64>, SpectralError> {
    if !(beta > 0.0 && beta.is_finite()) {
        return Err(SpectralError::Parameter {
            what: "beta",
            value: beta.to_string(),
            expected: "a positive finite inverse temperature",
        });
    }
    if !mass.is_finite() {
        return Err(SpectralError::Parameter {
            what: "m",
            value: mass.to_string(),
            expected: "a finite mass",
        });
    }
    let c = 1.0 - beta * mass;
    lambda
        .iter()
        .enumerate()
        .map(|(index, &l)| {
            let value = c + beta * l;
            if value > 0.0 {
                Ok(value)
            } else {
                Err(SpectralError::Thermo(ThermoError::OutsideDomain {
                    index,
                    lambda: l,
                    beta,
                    mass,
                    value,
                }))
            }
        })
        .collect()
}

/// G = M^T M of Eq. (5.6) at the mean state, dense, with its eigendecomposition.
struct MeanStateEigen {
    /// f' of Eq. (5.4) at y = w `<x>` + b.
    fp: Array1<f64>,
    /// M = I - f'w.
    m: Array2<f64>,
    /// lambda_i, ascending.
    lambda: Vec<f64>,
    /// Orthonormal eigenvectors v_i (column i belongs to lambda_i).
    v: Array2<f64>,
}

impl MeanStateEigen {
    fn new<N: Network + ?Sized>(
        net: &N,
        mean: ArrayView1<'_, f64>,
        budget: DenseBudget,
        backend: &dyn SpectrumBackend,
    ) -> Result<Self, SpectralError> {
        let m = jacobian(net, mean, budget)?;
        let fp = net.derivatives_at(mean)?;
        let g = m.t().dot(&m);
        let (lambda, v) = backend.symmetric_eigen(g.view())?;
        Ok(MeanStateEigen { fp, m, lambda, v })
    }

    /// The terms of Eq. (5.11) at beta and m, with a = V^T `<x>` (Eq. 5.12).
    fn log_z_parts(
        &self,
        mean: ArrayView1<'_, f64>,
        beta: f64,
        mass: f64,
    ) -> Result<LogZParts, SpectralError> {
        let a = self.v.t().dot(&mean).to_vec();
        let d = denominators(&self.lambda, beta, mass)?;
        Ok(LogZParts {
            beta,
            mass,
            log_det_term: -0.5 * d.iter().map(|di| di.ln()).sum::<f64>(),
            mean_term: mean_term(&self.lambda, &a, beta, mass)?,
            constant: self.lambda.len() as f64 * HALF_LOG_2PI,
        })
    }
}

fn check_mean_len(n: usize, mean: ArrayView1<'_, f64>) -> Result<(), SpectralError> {
    if mean.len() != n {
        return Err(SpectralError::Shape {
            what: "mean state",
            got: mean.shape().to_vec(),
            expected: vec![n],
        });
    }
    Ok(())
}

/// The three terms of log Z of Eq. (5.11) for G of Eq. (5.6) at the mean state `mean`
/// (Eq. 5.3), at `beta` and mass `mass`: the first term -1/2 sum log(1 - beta m + beta
/// lambda_i), the mean-state term ([`mean_term`], with a_i = v_i . `<x>` of Eq. 5.12) and
/// (N/2) log 2 pi. Dense: a symmetric eigendecomposition of G formed explicitly (O(N^3),
/// eigenvalues accurate to ~eps lambda_max), refused beyond `budget`.
pub fn log_z_parts<N: Network + ?Sized>(
    net: &N,
    mean: ArrayView1<'_, f64>,
    beta: f64,
    mass: f64,
    budget: DenseBudget,
    backend: &dyn SpectrumBackend,
) -> Result<LogZParts, SpectralError> {
    let n = net.n_neurons();
    check_mean_len(n, mean)?;
    budget.check("G and its eigenvectors (three N x N matrices)", 3 * n, n)?;
    MeanStateEigen::new(net, mean, budget, backend)?.log_z_parts(mean, beta, mass)
}

/// The equilibrium condition (6.2) of a network at one beta, as derivatives and residuals.
/// See [`equilibrium_states`] for what is differentiated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Equilibrium {
    /// The inverse temperature beta (held fixed).
    pub beta: f64,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// U(beta) = 1/2 tr[G (I + beta G)^-1] = 1/2 sum_i lambda_i / (1 + beta lambda_i), Eq. (6.1)
    /// of log Z of (5.14) at m = 0.
    pub energy: f64,
    /// dU/dw_ij (N x N, `[[i, j]]` for the connection from j into i), the total derivative;
    /// zero where there is no connection (w_ij = 0).
    pub grad_w: Array2<f64>,
    /// dU/db_i (length N), the total derivative; zero on the input neurons, whose biases do not
    /// act (inputs are clamped to the data, Eq. 2.7).
    pub grad_b: Array1<f64>,
    /// ||dU/dw||_F over the connections.
    pub grad_w_norm: f64,
    /// ||dU/db||_2 over the non-input neurons.
    pub grad_b_norm: f64,
    /// ||w||_F over the connections.
    pub weight_norm: f64,
    /// ||b||_2 over the non-input neurons.
    pub bias_norm: f64,
    /// r_w = ||dU/dw||_F ||w||_F / U (see [`equilibrium_states`]).
    pub residual_w: f64,
    /// r_b = ||dU/db||_2 ||b||_2 / U (see [`equilibrium_states`]).
    pub residual_b: f64,
    /// log Z of Eq. (5.11) in its three terms at the same beta and m = 0, from the same
    /// eigendecomposition of G.
    pub log_z: LogZParts,
}

/// [`equilibrium_states`] from input data (S x n_in): one forward pass, then the same.
pub fn equilibrium<N: Network + ?Sized>(
    net: &N,
    inputs: ArrayView2<'_, f64>,
    beta: f64,
    budget: DenseBudget,
    backend: &dyn SpectrumBackend,
) -> Result<Equilibrium, SpectralError> {
    let n_in = net.inputs().len();
    if inputs.ncols() != n_in || inputs.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "inputs",
            got: inputs.shape().to_vec(),
            expected: vec![inputs.nrows().max(1), n_in],
        });
    }
    let states = net.forward_states(inputs)?;
    equilibrium_states(net, states.view(), beta, budget, backend)
}

/// The equilibrium condition (6.2), dU/dw_ij = 0 and dU/db_i = 0, evaluated: the gradient of
/// the average bulk loss U(beta) of Eq. (6.1) in the weights and biases, with the residuals
/// that report how far a network is from the equilibrium.
///
/// **The quantity.** With m = 0 and log Z of Eq. (5.14) (the Gaussian model without the
/// mean-state term of 5.11), U(beta) = -d log Z / d beta = 1/2 tr[G (I + beta G)^-1] with
/// G = M^T M, M = I - f'w (Eq. 5.6), f' = diag f'_i(y_i) at y = w `<x>` + b (Eq. 5.4) and `<x>` the
/// mean state of Eq. (5.3): the average of the forward states (Eq. 2.9) in `states` (S x N, one
/// row per sample, as from [`Network::forward_states`]), exactly the G whose spectrum
/// [`analyze_states`](crate::analyze_states) computes.
///
/// **The derivative.** The total derivative of the map (w, b) -> U(beta) at fixed beta and
/// fixed input data: w and b enter M directly (the factor w of f'w), through f'(y) with
/// y = w `<x>` + b, and through `<x>` itself, the mean over the samples of the forward states, each
/// of which depends on (w, b). The input coordinates of `<x>` are the data and do not move. Only
/// the connections of the network (w_ij != 0) are differentiated; the other entries of
/// [`Equilibrium::grad_w`] are zero.
///
/// **The pass.** dU/dM = M K with K = (I + beta G)^-2 (from dU = 1/2 tr[K dG], since G and
/// (I + beta G)^-1 commute), from the eigendecomposition G = V diag(lambda) V^T; then
/// dU/dw_ij = -f'_i (MK)_ij directly, g_i = dU/dy_i = -f''_i(y_i) sum_j (MK)_ij w_ij through f',
/// which gives dU/db_i = g_i and dU/dw_ij = g_i `<x>`_j, and dU/d`<x>` = w^T g. The last is carried
/// through every sample's forward pass by the adjoint z_s = w^T D_s z_s + w^T g / S
/// (D_s = diag f'(y_s) on the non-input neurons; f'w is nilpotent, so L - 1 products with w^T
/// solve it exactly, L the depth), e_s = D_s z_s, adding sum_s e_s x_s^T to dU/dw and sum_s e_s
/// to dU/db. The samples go in blocks of a fixed size, in parallel, summed in block order:
/// the same bits whatever the thread count.
///
/// **The residuals.** r_w = ||dU/dw||_F ||w||_F / U and r_b = ||dU/db||_2 ||b||_2 / U (norms
/// over the connections and the non-input neurons). To first order a perturbation dw changes
/// U by at most ||dU/dw||_F ||dw||_F (Cauchy-Schwarz), so r_w bounds the relative change of U
/// per unit relative change of the weights, |dU| / U <= r_w ||dw||_F / ||w||_F: dimensionless,
/// independent of how U is normalised (U > 0 always), and 0 exactly at the equilibrium (6.2);
/// r_b likewise for the biases (it vanishes trivially at b = 0, so the raw norms are reported
/// beside it).
///
/// Dense: M, G, its eigenvectors and dU/dw are N x N (O(N^3) for the eigendecomposition, fine
/// for N in the thousands), refused with [`CoreError::TooLarge`](septuple_core::CoreError)
/// beyond `budget`; the reverse pass works through [`Network::weights_times`] and
/// [`Network::weights_t_times`] on blocks of samples. Errors also for beta not positive and
/// finite, non-finite states, a non-feedforward network, and a non-input neuron whose
/// activation has no second derivative ([`SpectralError::NoSecondDerivative`]).
pub fn equilibrium_states<N: Network + ?Sized>(
    net: &N,
    states: ArrayView2<'_, f64>,
    beta: f64,
    budget: DenseBudget,
    backend: &dyn SpectrumBackend,
) -> Result<Equilibrium, SpectralError> {
    let n = net.n_neurons();
    if states.ncols() != n || states.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "forward states",
            got: states.shape().to_vec(),
            expected: vec![states.nrows().max(1), n],
        });
    }
    if states.iter().any(|v| !v.is_finite()) {
        return Err(SpectralError::NonFinite {
            what: "forward states",
        });
    }
    // beta is checked before any O(N^3) work.
    denominators(&[], beta, 0.0)?;
    // M, G, V, M V and dU/dM live together, and w.
    budget.check(
        "M, G, its eigenvectors and the adjoint of U (six N x N matrices)",
        6 * n,
        n,
    )?;
    let depth = net.feedforward()?.depth;
    let mut is_input = vec![false; n];
    for &i in net.inputs().iter() {
        is_input[i] = true;
    }
    let bulk: Vec<usize> = (0..n).filter(|&i| !is_input[i]).collect();
    let s_count = states.nrows();
    let mean = states
        .mean_axis(Axis(0))
        .ok_or(SpectralError::NonFinite { what: "mean state" })?;
    let eig = MeanStateEigen::new(net, mean.view(), budget, backend)?;
    let d = denominators(&eig.lambda, beta, 0.0)?;
    let energy = 0.5 * eig.lambda.iter().zip(&d).map(|(l, di)| l / di).sum::<f64>();
    // dU/dM = M K, K = V diag((1 + beta lambda)^-2) V^T.
    let mut mv = eig.m.dot(&eig.v);
    for (mut col, di) in mv.columns_mut().into_iter().zip(&d) {
        col /= di * di;
    }
    let du_dm = mv.dot(&eig.v.t());
    drop(mv);
    let dense = net.to_dense(budget)?;
    let w = dense.weights();
    let y = net.preactivation(mean.view())?;
    // g_i = dU/dy_i on the non-input neurons (input rows of w, and so of f'w, are zero).
    let mut g = Array1::zeros(n);
    for &i in &bulk {
        let du_dfp = -du_dm.row(i).dot(&w.row(i));
        let f2 = net
            .activation(i)
            .second_derivative(y[i])
            .ok_or(SpectralError::NoSecondDerivative { neuron: i })?;
        g[i] = du_dfp * f2;
    }
    // dU/d`<x>` = w^T g, then back through each sample's forward pass.
    let gx = net
        .weights_t_times(g.view().insert_axis(Axis(1)))?
        .column(0)
        .to_owned();
    let (sum_ex, sum_e) = through_the_states(net, states, gx.view(), &is_input, &bulk, depth)?;
    let inv_s = 1.0 / s_count as f64;
    let mut grad_w = Array2::zeros((n, n));
    let mut grad_b = Array1::zeros(n);
    for (k, &i) in bulk.iter().enumerate() {
        grad_b[i] = g[i] + sum_e[k] * inv_s;
        let (wi, dui, exi) = (w.row(i), du_dm.row(i), sum_ex.row(k));
        let mut row = grad_w.row_mut(i);
        for j in 0..n {
            if wi[j] != 0.0 {
                row[j] = -eig.fp[i] * dui[j] + g[i] * mean[j] + exi[j] * inv_s;
            }
        }
    }
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let grad_w_norm = norm(&mut grad_w.iter().copied());
    let grad_b_norm = norm(&mut grad_b.iter().copied());
    let weight_norm = norm(&mut w.iter().copied());
    let b = dense.bias();
    let bias_norm = norm(&mut bulk.iter().map(|&i| b[i]));
    let log_z = eig.log_z_parts(mean.view(), beta, 0.0)?;
    Ok(Equilibrium {
        beta,
        n_samples: s_count,
        energy,
        grad_w,
        grad_b,
        grad_w_norm,
        grad_b_norm,
        weight_norm,
        bias_norm,
        residual_w: grad_w_norm * weight_norm / energy,
        residual_b: grad_b_norm * bias_norm / energy,
        log_z,
    })
}

/// One block of samples' gradient contributions: (weights, bias).
type BlockGradient = (Array2<f64>, Array1<f64>);

/// The reverse pass of the linear functional gx . `<x>` through every sample's forward pass:
/// returns sum_s e_s x_s^T restricted to the rows `bulk` (|bulk| x N) and sum_s e_s on them,
/// with e_s = D_s z_s, z_s = gx + w^T D_s z_s, D_s = f'(w x_s + b) on the non-input neurons.
fn through_the_states<N: Network + ?Sized>(
    net: &N,
    states: ArrayView2<'_, f64>,
    gx: ArrayView1<'_, f64>,
    is_input: &[bool],
    bulk: &[usize],
    depth: usize,
) -> Result<(Array2<f64>, Array1<f64>), SpectralError> {
    let n = net.n_neurons();
    let b = net.bias();
    let blocks: Vec<(usize, usize)> = (0..states.nrows())
        .step_by(SAMPLE_BLOCK)
        .map(|lo| (lo, (lo + SAMPLE_BLOCK).min(states.nrows())))
        .collect();
    let parts: Vec<Result<BlockGradient, SpectralError>> = blocks
        .par_iter()
        .map(|&(lo, hi)| {
            let xs = states.slice(s![lo..hi, ..]);
            let mut dp = net.weights_times(xs.t())?;
            for (i, mut row) in dp.rows_mut().into_iter().enumerate() {
                if is_input[i] {
                    row.fill(0.0);
                } else {
                    let (act, bi) = (net.activation(i), b[i]);
                    row.mapv_inplace(|y| act.derivative(y + bi));
                }
            }
            let rhs = gx
                .insert_axis(Axis(1))
                .broadcast((n, hi - lo))
                .ok_or(SpectralError::Shape {
                    what: "adjoint of the mean state",
                    got: gx.shape().to_vec(),
                    expected: vec![n],
                })?
                .to_owned();
            let mut z = rhs.clone();
            for _ in 1..depth {
                let e = &dp * &z;
                z = net.weights_t_times(e.view())?;
                z += &rhs;
            }
            let e = (&dp * &z).select(Axis(0), bulk);
            Ok((e.dot(&xs), e.sum_axis(Axis(1))))
        })
        .collect();
    let mut sum_ex = Array2::zeros((bulk.len(), n));
    let mut sum_e = Array1::zeros(bulk.len());
    for part in parts {
        let (ex, e) = part?;
        sum_ex += &ex;
        sum_e += &e;
    }
    Ok((sum_ex, sum_e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Faer;
    use crate::operator::{g_operator, spectrum, Method};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use septuple_core::{Builtin, Init, Layered, Septuple};

    /// U(beta) of Eq. (6.1) at m = 0 by the whole pipeline, independently of the code under
    /// test: forward states, their mean, M at it and the eigenvalues of G as squared singular
    /// values of M (the dense spectrum of the analysis).
    fn pipeline_u<N: Network>(net: &N, inputs: ArrayView2<'_, f64>, beta: f64) -> f64 {
        let states = net.forward_states(inputs).unwrap();
        let mean = states.mean_axis(Axis(0)).unwrap();
        let s = spectrum(net, mean.view(), Method::Dense, &Faer::default()).unwrap();
        0.5 * s
            .eigenvalues
            .iter()
            .map(|l| l / (1.0 + beta * l))
            .sum::<f64>()
    }

    fn inputs(s: usize, n_in: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((s, n_in), || rng.random_range(-1.0..1.0))
    }

    /// The step of the central differences, and the agreement asked of them: |adjoint -
    /// difference| <= ABSOLUTE + RELATIVE max |dU/dtheta| over the network. Central differences
    /// err by h^2 |d^3U| / 6 (third derivatives of order 1-10 here: ~1e-10 at h = 1e-5) plus
    /// the rounding of U amplified by 1 / (2h): U is a sum of N <= 20 terms
    /// lambda / (1 + beta lambda), each from a backward-stable SVD with an error of a few
    /// eps lambda_max (lambda_max ~ 10), so at worst ~1e-13 in U and ~1e-8 in the quotient;
    /// measured, 1e-10 to 1e-9. ABSOLUTE = 1e-8 covers that bound; RELATIVE = 1e-6 leaves room
    /// for the largest gradients (of order 1) and is far below the size of any term of the
    /// chain that could be missing.
    const H: f64 = 1e-5;
    const ABSOLUTE: f64 = 1e-8;
    const RELATIVE: f64 = 1e-6;

    fn agree(err: f64, scale: f64) -> bool {
        err <= ABSOLUTE + RELATIVE * scale
    }

    /// The largest |adjoint - central difference| over every connection and every non-input
    /// bias of a layered network, and the largest |adjoint|.
    fn layered_errors(net: &Layered<Builtin>, x: &Array2<f64>, beta: f64) -> (f64, f64) {
        let eq = equilibrium(
            net,
            x.view(),
            beta,
            DenseBudget::default(),
            &Faer::default(),
        )
        .unwrap();
        let off = net.offsets();
        let rebuild = |weights: Vec<Array2<f64>>, biases: Vec<Array1<f64>>| {
            Layered::from_layers(weights, biases, net.activations().to_vec()).unwrap()
        };
        let u = |n: &Layered<Builtin>| pipeline_u(n, x.view(), beta);
        // U itself: the same sum over eigenvalues of G formed explicitly and from the SVD of M,
        // which differ by ~eps lambda_max each.
        assert!((eq.energy - u(net)).abs() < 1e-12 * eq.energy);
        let (mut err, mut scale) = (0.0f64, 0.0f64);
        for l in 0..net.weights().len() {
            let (rows, cols) = net.weights()[l].dim();
            for r in 0..rows {
                for c in 0..cols {
                    let at = |h: f64| {
                        let mut w = net.weights().to_vec();
                        w[l][[r, c]] += h;
                        u(&rebuild(w, net.biases().to_vec()))
                    };
                    let fd = (at(H) - at(-H)) / (2.0 * H);
                    let adj = eq.grad_w[[off[l + 1] + r, off[l] + c]];
                    err = err.max((fd - adj).abs());
                    scale = scale.max(adj.abs());
                }
                let at = |h: f64| {
                    let mut b = net.biases().to_vec();
                    b[l][r] += h;
                    u(&rebuild(net.weights().to_vec(), b))
                };
                let fd = (at(H) - at(-H)) / (2.0 * H);
                let adj = eq.grad_b[off[l + 1] + r];
                err = err.max((fd - adj).abs());
                scale = scale.max(adj.abs());
            }
        }
        (err, scale)
    }

    #[test]
    fn adjoint_matches_central_differences_on_layered_tanh_networks() {
        for seed in 0..4u64 {
            let net = Layered::random(
                &[6, 5, 4, 3],
                Builtin::Tanh,
                Init::Normal { std: 0.9 },
                seed,
            )
            .unwrap();
            let mut net = net;
            // Non-zero biases, so that every term of the chain is exercised.
            let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
            let biases: Vec<Array1<f64>> = net
                .biases()
                .iter()
                .map(|b| b.mapv(|_| rng.random_range(-0.5..0.5)))
                .collect();
            net = Layered::from_layers(net.weights().to_vec(), biases, net.activations().to_vec())
                .unwrap();
            let x = inputs(9, 6, seed);
            for beta in [0.3, 2.0] {
                let (err, scale) = layered_errors(&net, &x, beta);
                assert!(
                    agree(err, scale),
                    "seed {seed}, beta {beta}: {err:e} against {scale:e}"
                );
            }
        }
    }

    #[test]
    fn adjoint_matches_central_differences_with_mixed_activations() {
        let sizes = [5usize, 4, 4, 2];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let weights: Vec<Array2<f64>> = sizes
            .windows(2)
            .map(|p| Array2::from_shape_simple_fn((p[1], p[0]), || rng.random_range(-1.2..1.2)))
            .collect();
        let biases: Vec<Array1<f64>> = sizes[1..]
            .iter()
            .map(|&k| Array1::from_shape_simple_fn(k, || rng.random_range(-0.5..0.5)))
            .collect();
        for acts in [
            vec![Builtin::Logistic; 3],
            vec![Builtin::Tanh, Builtin::Logistic, Builtin::Tanh],
        ] {
            let net = Layered::from_layers(weights.clone(), biases.clone(), acts.clone()).unwrap();
            let x = inputs(11, 5, 3);
            let (err, scale) = layered_errors(&net, &x, 0.8);
            assert!(agree(err, scale), "{acts:?}: {err:e} against {scale:e}");
        }
    }

    /// The same through the dense septuple of a feedforward network that is not layered
    /// (connections that skip layers), perturbing the entries of w that are connections.
    #[test]
    fn adjoint_matches_central_differences_with_skip_connections() {
        let n = 9;
        let (inputs_idx, outputs_idx) = (vec![0, 1, 2], vec![7, 8]);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let w = Array2::from_shape_fn((n, n), |(i, j)| {
            if j < i && i > 2 && j < 7 && rng.random_bool(0.6) {
                rng.random_range(-1.2..1.2)
            } else {
                0.0
            }
        });
        let b = Array1::from_shape_fn(n, |i| if i > 2 { 0.3 - 0.1 * i as f64 } else { 0.0 });
        let sep = |w: Array2<f64>, b: Array1<f64>| {
            Septuple::with_activation(w, b, Builtin::Tanh, inputs_idx.clone(), outputs_idx.clone())
                .unwrap()
        };
        let net = sep(w.clone(), b.clone());
        let x = inputs(8, 3, 5);
        let beta = 1.1;
        let eq = equilibrium(
            &net,
            x.view(),
            beta,
            DenseBudget::default(),
            &Faer::default(),
        )
        .unwrap();
        let (mut err, mut scale) = (0.0f64, 0.0f64);
        for i in 0..n {
            for j in 0..n {
                if w[[i, j]] == 0.0 {
                    assert_eq!(eq.grad_w[[i, j]], 0.0);
                    continue;
                }
                let at = |h: f64| {
                    let mut w2 = w.clone();
                    w2[[i, j]] += h;
                    pipeline_u(&sep(w2, b.clone()), x.view(), beta)
                };
                let fd = (at(H) - at(-H)) / (2.0 * H);
                err = err.max((fd - eq.grad_w[[i, j]]).abs());
                scale = scale.max(eq.grad_w[[i, j]].abs());
            }
            if i < 3 {
                assert_eq!(eq.grad_b[i], 0.0);
                continue;
            }
            let at = |h: f64| {
                let mut b2 = b.clone();
                b2[i] += h;
                pipeline_u(&sep(w.clone(), b2), x.view(), beta)
            };
            let fd = (at(H) - at(-H)) / (2.0 * H);
            err = err.max((fd - eq.grad_b[i]).abs());
            scale = scale.max(eq.grad_b[i].abs());
        }
        assert!(agree(err, scale), "{err:e} against {scale:e}");
    }

    /// A cyclic Jacobi eigensolver for a small symmetric matrix: eigenvalues (unsorted) and
    /// orthonormal eigenvectors (columns), independent of the backend.
    fn jacobi_eigen(a: &Array2<f64>) -> (Vec<f64>, Array2<f64>) {
        let n = a.nrows();
        let (mut a, mut v) = (a.clone(), Array2::<f64>::eye(n));
        let total: f64 = a.iter().map(|x| x * x).sum();
        for _ in 0..100 {
            let off: f64 = (0..n)
                .flat_map(|p| (0..n).filter(move |&q| q != p).map(move |q| (p, q)))
                .map(|(p, q)| a[[p, q]] * a[[p, q]])
                .sum();
            if off <= 1e-32 * total {
                break;
            }
            for p in 0..n {
                for q in p + 1..n {
                    if a[[p, q]] == 0.0 {
                        continue;
                    }
                    let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * a[[p, q]]);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for k in 0..n {
                        let (kp, kq) = (a[[k, p]], a[[k, q]]);
                        a[[k, p]] = c * kp - s * kq;
                        a[[k, q]] = s * kp + c * kq;
                    }
                    for k in 0..n {
                        let (pk, qk) = (a[[p, k]], a[[q, k]]);
                        a[[p, k]] = c * pk - s * qk;
                        a[[q, k]] = s * pk + c * qk;
                    }
                    for k in 0..n {
                        let (kp, kq) = (v[[k, p]], v[[k, q]]);
                        v[[k, p]] = c * kp - s * kq;
                        v[[k, q]] = s * kp + c * kq;
                    }
                }
            }
        }
        ((0..n).map(|i| a[[i, i]]).collect(), v)
    }

    /// The solution of A y = x by Gaussian elimination with partial pivoting.
    fn solve(a: &Array2<f64>, x: &Array1<f64>) -> Array1<f64> {
        let n = a.nrows();
        let (mut a, mut y) = (a.clone(), x.clone());
        for k in 0..n {
            let p = (k..n)
                .max_by(|&i, &j| a[[i, k]].abs().total_cmp(&a[[j, k]].abs()))
                .unwrap();
            for j in 0..n {
                a.swap([k, j], [p, j]);
            }
            y.swap(k, p);
            for i in k + 1..n {
                let f = a[[i, k]] / a[[k, k]];
                for j in k..n {
                    a[[i, j]] -= f * a[[k, j]];
                }
                y[i] -= f * y[k];
            }
        }
        for k in (0..n).rev() {
            let s: f64 = (k + 1..n).map(|j| a[[k, j]] * y[j]).sum();
            y[k] = (y[k] - s) / a[[k, k]];
        }
        y
    }

    /// The mean-state term of (5.11) three ways: the function under test (the backend's
    /// eigendecomposition), the sum over a Jacobi eigendecomposition of the same G, and the
    /// closed form -1/2 `<x>`^T c beta G (c I + beta G)^-1 `<x>` (c = 1 - beta m) by a linear
    /// solve. All three are backward stable in matrices of norm ~10 and condition below
    /// 1 + beta lambda_max / c ~ 1e2: agreement to ~1e-14 relative; 1e-11 is the contract.
    /// The other two terms are those of Eq. (5.14) from the SVD spectrum (septuple-thermo's
    /// `Gaussian`), which differ by ~eps lambda_max per eigenvalue.
    #[test]
    fn mean_term_matches_the_brute_force_sum_and_the_closed_form() {
        for (seed, beta, m) in [
            (1u64, 0.7, 0.0),
            (2, 1.5, 0.3),
            (3, 0.4, -0.5),
            (4, 3.0, 0.1),
        ] {
            let net = Layered::random(&[5, 4, 3], Builtin::Tanh, Init::Normal { std: 0.9 }, seed)
                .unwrap();
            let x = inputs(13, 5, seed);
            let mean = net.mean_state(x.view()).unwrap();
            let parts = log_z_parts(
                &net,
                mean.view(),
                beta,
                m,
                DenseBudget::default(),
                &Faer::default(),
            )
            .unwrap();
            let g = g_operator(&net, mean.view(), DenseBudget::default()).unwrap();
            let (lambda, v) = jacobi_eigen(&g);
            let a = v.t().dot(&mean);
            let c = 1.0 - beta * m;
            let by_sum = -0.5
                * lambda
                    .iter()
                    .zip(&a)
                    .map(|(l, ai)| c * beta * l * ai * ai / (c + beta * l))
                    .sum::<f64>();
            let shifted = Array2::<f64>::eye(g.nrows()) * c + &g * beta;
            let closed = -0.5 * c * beta * mean.dot(&g.dot(&solve(&shifted, &mean)));
            let close = |p: f64, q: f64| (p - q).abs() <= 1e-11 * p.abs().max(q.abs());
            assert!(close(by_sum, closed), "{by_sum} vs {closed}");
            assert!(
                close(parts.mean_term, by_sum),
                "{} vs {by_sum}",
                parts.mean_term
            );
            assert!(
                close(parts.mean_term, closed),
                "{} vs {closed}",
                parts.mean_term
            );
            assert!(parts.mean_term < 0.0);
            let svd = spectrum(&net, mean.view(), Method::Dense, &Faer::default()).unwrap();
            let large_n = septuple_thermo::Gaussian::new(&svd.eigenvalues)
                .unwrap()
                .with_mass(m)
                .unwrap()
                .log_z(beta)
                .unwrap();
            assert!((parts.without_mean() - large_n).abs() < 1e-11 * large_n.abs());
            let sum = parts.log_det_term + parts.mean_term + parts.constant;
            assert!((parts.full() - sum).abs() <= 1e-15 * sum.abs());
        }
    }

    #[test]
    fn mean_term_errors() {
        let l = [0.5, 1.0, 2.0];
        assert!(matches!(
            mean_term(&l, &[1.0, 2.0], 1.0, 0.0),
            Err(SpectralError::Shape { .. })
        ));
        assert!(mean_term(&l, &[1.0, f64::NAN, 0.0], 1.0, 0.0).is_err());
        assert!(mean_term(&l, &[1.0; 3], 0.0, 0.0).is_err());
        assert!(mean_term(&l, &[1.0; 3], 1.0, f64::INFINITY).is_err());
        // 1 - beta m + beta lambda_0 = 1 - 10 + 0.5 < 0: the integral (5.9) diverges.
        assert!(matches!(
            mean_term(&l, &[1.0; 3], 1.0, 10.0),
            Err(SpectralError::Thermo(ThermoError::OutsideDomain {
                index: 0,
                ..
            }))
        ));
        // a_i = 0: nothing to add.
        assert_eq!(mean_term(&l, &[0.0; 3], 1.0, 0.0).unwrap(), 0.0);
    }

    /// Three blocks of samples, summed in block order: the same bits on one thread and on two.
    #[test]
    fn the_same_bits_whatever_the_thread_count() {
        let net = Layered::random(&[4, 6, 5, 3], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
        let x = inputs(2 * SAMPLE_BLOCK + 44, 4, 9);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    equilibrium(
                        &net,
                        x.view(),
                        0.9,
                        DenseBudget::default(),
                        &Faer::default(),
                    )
                    .unwrap()
                })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one, two);
        assert!(one.residual_w > 0.0 && one.residual_b > 0.0);
    }

    #[derive(Clone, Debug)]
    struct Softsign;

    impl Activation for Softsign {
        fn value(&self, y: f64) -> f64 {
            y / (1.0 + y.abs())
        }
        fn derivative(&self, y: f64) -> f64 {
            (1.0 + y.abs()).powi(-2)
        }
    }

    #[test]
    fn refusals_are_typed_errors() {
        let w = ndarray::array![[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, -0.7, 0.0]];
        let net =
            Septuple::with_activation(w, Array1::zeros(3), Softsign, vec![0], vec![2]).unwrap();
        let x = ndarray::array![[0.3], [-0.2]];
        let b = DenseBudget::default();
        assert!(matches!(
            equilibrium(&net, x.view(), 1.0, b, &Faer::default()),
            Err(SpectralError::NoSecondDerivative { neuron: 1 })
        ));
        let tanh = Layered::random(&[3, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
        let x = inputs(4, 3, 1);
        assert!(matches!(
            equilibrium(
                &tanh,
                x.view(),
                1.0,
                DenseBudget { bytes: 64 },
                &Faer::default()
            ),
            Err(SpectralError::Core(
                septuple_core::CoreError::TooLarge { .. }
            ))
        ));
        for beta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                equilibrium(&tanh, x.view(), beta, b, &Faer::default()),
                Err(SpectralError::Parameter { what: "beta", .. })
            ));
        }
        assert!(equilibrium(&tanh, x.slice(s![.., ..2]), 1.0, b, &Faer::default()).is_err());
        let mut states = tanh.forward_states(x.view()).unwrap();
        states[[0, 4]] = f64::NAN;
        assert!(matches!(
            equilibrium_states(&tanh, states.view(), 1.0, b, &Faer::default()),
            Err(SpectralError::NonFinite { .. })
        ));
    }
}
