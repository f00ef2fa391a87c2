//! Matrix-free estimates of the spectrum of G = M^T M, M = I - f'w (Eq. 5.6), for networks too
//! large for the dense and structured paths: only M V and M^T V on blocks of vectors
//! ([`Network::apply_m`], [`Network::apply_mt`]) are used, O(nnz(w)) per vector and step.
//!
//! Both estimators run Golub-Kahan-Lanczos bidiagonalisation of M with full
//! reorthogonalisation (classical Gram-Schmidt applied twice) rather than Lanczos on G: the
//! Ritz values of G are the squared singular values of the small bidiagonal B, which a
//! backward-stable SVD gives to eps * sigma_max absolute in sigma, i.e. to relative accuracy
//! eps * cond(M) in lambda = sigma^2, where the eigenvalues of the tridiagonal T = B^T B
//! (Lanczos on G) are only accurate to eps * lambda_max, relative eps * cond(M)^2 for the
//! smallest lambda: the log lambda of Figs. 4-5 reach below -10.
//!
//! faer 0.24's operator module (`faer::operator`, a `LinOp` trait and Krylov-Schur partial
//! eigen/SVD solvers) is not used: its partial SVD targets the largest singular triplets and
//! exposes neither the smallest ones with their residuals nor the bidiagonal's first-row
//! weights that the quadrature needs, and its `LinOp` works on faer matrices with a scratch
//! stack protocol, where the network trait works on ndarray blocks. faer does the small dense
//! SVDs of B.
//!
//! The rank bound: the rows of f'w vanish at the n_in inputs, so G - I has rank <= 2r
//! (r = N - n_in non-input neurons) and the Krylov space of any start vector has dimension
//! <= 2r + 1. Bidiagonalisation stops there (or earlier at a breakdown), and then the Gauss
//! quadrature of that probe is exact for every f and the Ritz values are eigenvalues of G.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use septuple_core::Network;
use septuple_thermo::{Quadrature, QuadratureRule};
use serde::{Deserialize, Serialize};

use crate::error::SpectralError;

/// A remainder below this times the largest alpha or beta seen so far ends bidiagonalisation:
/// the Krylov space is invariant to working precision. After two Gram-Schmidt passes the
/// remainder of an exhausted space is a few eps * |M| * sqrt(steps), far below it; a true
/// coupling of this size changes the quadrature by its square.
const BREAKDOWN: f64 = 1e-12;

/// Options of the matrix-free estimators.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatrixFreeOptions {
    /// The most Rademacher probe vectors of stochastic Lanczos quadrature (>= 2).
    pub max_probes: usize,
    /// The fewest probes before the stopping rule may stop (>= 2).
    pub min_probes: usize,
    /// Probes run together (one block product per step); the stopping rule is checked after
    /// each batch. Part of the result's definition (fixed, not the thread count).
    pub batch: usize,
    /// The most Golub-Kahan steps per probe (the Gauss rule's number of nodes); capped at
    /// min(2r + 1, N), where the quadrature is exact.
    pub max_steps: usize,
    /// Stop adding probes once every monitored trace has standard error <= this times its
    /// absolute value (0: always run `max_probes`).
    pub rel_tol: f64,
    /// The seed of the probes and of the start vector of the extreme singular values.
    pub seed: u64,
    /// How many of the largest and of the smallest singular values of M to compute.
    pub n_extreme: usize,
    /// The most Golub-Kahan steps for the extreme singular values (capped at min(2r + 1, N)).
    pub extreme_max_steps: usize,
    /// Converged when each of the wanted Ritz values has residual <= this times sigma_max.
    pub extreme_tol: f64,
}

impl Default for MatrixFreeOptions {
    /// 8 to 64 probes in batches of 8, 60 steps, relative tolerance 1e-2, seed 0; 20 extreme
    /// values each side (C_20 of Fig. 6) within 600 steps to residual 1e-10 sigma_max.
    fn default() -> Self {
        MatrixFreeOptions {
            max_probes: 64,
            min_probes: 8,
            batch: 8,
            max_steps: 60,
            rel_tol: 1e-2,
            seed: 0,
            n_extreme: 20,
            extreme_max_steps: 600,
            extreme_tol: 1e-10,
        }
    }
}

impl MatrixFreeOptions {
    /// Checks the options: counts >= the minimum each needs, tolerances finite and >= 0.
    pub fn check(&self) -> Result<(), SpectralError> {
        let count = |what, v: usize, min: usize, expected| {
            if v < min {
                Err(SpectralError::Parameter {
                    what,
                    value: v.to_string(),
                    expected,
                })
            } else {
                Ok(())
            }
        };
        count("max_probes", self.max_probes, 2, "at least 2 probes")?;
        count("min_probes", self.min_probes, 2, "at least 2 probes")?;
        count("batch", self.batch, 1, "at least 1 probe per batch")?;
        count("max_steps", self.max_steps, 1, "at least 1 step")?;
        count(
            "extreme_max_steps",
            self.extreme_max_steps,
            1,
            "at least 1 step",
        )?;
        for (what, v) in [("rel_tol", self.rel_tol), ("extreme_tol", self.extreme_tol)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(SpectralError::Parameter {
                    what,
                    value: v.to_string(),
                    expected: "a finite number >= 0",
                });
            }
        }
        Ok(())
    }
}

/// The upper bidiagonal B of one Golub-Kahan run, M V = U B, M^T U = V B^T + beta_m v e_m^T:
/// diagonal `alpha` (m), superdiagonal `beta[..m-1]`, `beta[m-1]` the residual coupling.
#[derive(Clone, Debug)]
struct Bidiagonal {
    alpha: Vec<f64>,
    beta: Vec<f64>,
    exhausted: bool,
}

/// Golub-Kahan bidiagonalisation of M from the columns of `start` (N x b, non-zero), all run
/// together (one block product with M and one with M^T per step), each with full
/// reorthogonalisation against its own vectors, for at most `steps` steps; a column whose
/// remainder breaks down (or that reaches `bound` steps, the Krylov dimension bound) stops.
fn golub_kahan<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
    start: Array2<f64>,
    steps: usize,
    bound: usize,
) -> Result<Vec<Bidiagonal>, SpectralError> {
    let (n, b) = start.dim();
    let mut out: Vec<Bidiagonal> = (0..b)
        .map(|_| Bidiagonal {
            alpha: Vec::new(),
            beta: Vec::new(),
            exhausted: false,
        })
        .collect();
    let mut active = vec![true; b];
    let mut scale = vec![0.0f64; b];
    let mut v = start;
    for (c, mut col) in v.axis_iter_mut(Axis(1)).enumerate() {
        let norm = col.dot(&col).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return Err(SpectralError::Parameter {
                what: "start vector norm",
                value: format!("{norm} (column {c})"),
                expected: "a non-zero finite start vector",
            });
        }
        col /= norm;
    }
    let mut vs: Vec<Array2<f64>> = vec![v.clone()];
    let mut us: Vec<Array2<f64>> = Vec::new();
    let mut u_prev = Array2::<f64>::zeros((n, b));
    for j in 0..steps {
        // alpha_j u_j = M v_j - beta_(j-1) u_(j-1).
        let mut p = net.apply_m(fp, v.view())?;
        for c in 0..b {
            if !active[c] {
                p.column_mut(c).fill(0.0);
                continue;
            }
            if j > 0 {
                let bj = out[c].beta[j - 1];
                p.column_mut(c).scaled_add(-bj, &u_prev.column(c));
            }
            let mut col = p.column(c).to_owned();
            reorthogonalise(&mut col, &us, c);
            let a = col.dot(&col).sqrt();
            // M is invertible (det M = 1 for the feedforward networks it is built for), so
            // alpha vanishes only if M is singular; treat it as a breakdown, not a division.
            if !(a > BREAKDOWN * scale[c].max(f64::MIN_POSITIVE)) || !a.is_finite() {
                active[c] = false;
                out[c].exhausted = true;
                p.column_mut(c).fill(0.0);
                continue;
            }
            scale[c] = scale[c].max(a);
            out[c].alpha.push(a);
            p.column_mut(c).assign(&(col / a));
        }
        us.push(p.clone());
        // beta_j v_(j+1) = M^T u_j - alpha_j v_j.
        let mut q = net.apply_mt(fp, p.view())?;
        for c in 0..b {
            if !active[c] {
                q.column_mut(c).fill(0.0);
                continue;
            }
            let aj = out[c].alpha[j];
            q.column_mut(c).scaled_add(-aj, &v.column(c));
            let mut col = q.column(c).to_owned();
            reorthogonalise(&mut col, &vs, c);
            let bnorm = col.dot(&col).sqrt();
            out[c].beta.push(bnorm);
            if out[c].alpha.len() >= bound || !(bnorm > BREAKDOWN * scale[c]) {
                active[c] = false;
                out[c].exhausted = true;
                q.column_mut(c).fill(0.0);
                continue;
            }
            scale[c] = scale[c].max(bnorm);
            q.column_mut(c).assign(&(col / bnorm));
        }
        if !active.iter().any(|&a| a) {
            break;
        }
        u_prev = p;
        v = q;
        vs.push(v.clone());
    }
    Ok(out)
}

/// Two passes of classical Gram-Schmidt of `x` against column `c` of every block in `basis`.
fn reorthogonalise(x: &mut Array1<f64>, basis: &[Array2<f64>], c: usize) {
    for _ in 0..2 {
        for q in basis {
            let qc = q.column(c);
            let h = qc.dot(x);
            x.scaled_add(-h, &qc);
        }
    }
}

/// The SVD of the m x m upper bidiagonal: singular values (descending), the last row of the
/// left singular vectors and the first row of the right ones, same order.
#[allow(clippy::type_complexity)] // (singular values, first and last components of the vectors)
fn bidiagonal_svd(b: &Bidiagonal) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>), SpectralError> {
    let m = b.alpha.len();
    let mat = faer::Mat::<f64>::from_fn(m, m, |i, j| {
        if i == j {
            b.alpha[i]
        } else if j == i + 1 {
            b.beta[i]
        } else {
            0.0
        }
    });
    let svd = mat.svd().map_err(|e| SpectralError::Backend {
        reason: format!("SVD of the {m} x {m} Golub-Kahan bidiagonal did not converge: {e:?}"),
    })?;
    let (u, s, v) = (svd.U(), svd.S(), svd.V());
    let sigma: Vec<f64> = (0..m).map(|k| s[k]).collect();
    let last_u: Vec<f64> = (0..m).map(|k| u[(m - 1, k)]).collect();
    let first_v: Vec<f64> = (0..m).map(|k| v[(0, k)]).collect();
    // faer returns them in nonincreasing order; sort defensively with the vectors.
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| sigma[b].total_cmp(&sigma[a]));
    Ok((
        idx.iter().map(|&k| sigma[k]).collect(),
        idx.iter().map(|&k| last_u[k]).collect(),
        idx.iter().map(|&k| first_v[k]).collect(),
    ))
}

/// The Krylov dimension bound min(2r + 1, N) of G for a network with `n` neurons and
/// `n_inputs` inputs (G - I has rank <= 2r, r = N - n_inputs).
pub fn krylov_bound(n: usize, n_inputs: usize) -> usize {
    (2 * (n - n_inputs.min(n)) + 1).min(n)
}

/// A Rademacher vector (entries +-1) of length `n`, from stream `stream` of the ChaCha8
/// generator seeded by `seed`: the same vector whatever else is drawn or which thread draws it.
fn rademacher(n: usize, seed: u64, stream: u64) -> Array1<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    Array1::from_iter((0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }))
}

/// One Ritz singular value of M with its residual bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RitzValue {
    /// lambda = sigma^2, an eigenvalue estimate of G (Eq. 5.6).
    pub lambda: f64,
    /// sigma, a singular value estimate of M.
    pub sigma: f64,
    /// The residual |M^T x - sigma y| of the Ritz pair (x, y): some singular value of M lies
    /// within `sigma_bound` = residual / sqrt 2 of sigma.
    pub sigma_bound: f64,
    /// The corresponding bound on lambda: |lambda - lambda_true| <= (2 sigma + b) b with b the
    /// sigma bound.
    pub lambda_bound: f64,
}

/// The k largest and k smallest singular values of M = I - f'w with residual bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtremeSpectrum {
    /// The largest, descending (at most k).
    pub largest: Vec<RitzValue>,
    /// The smallest, ascending (at most k).
    pub smallest: Vec<RitzValue>,
    /// Golub-Kahan steps taken.
    pub steps: usize,
    /// Whether every one of `largest` met the tolerance (or the Krylov space was exhausted).
    pub largest_converged: bool,
    /// Whether every one of `smallest` met the tolerance (or the Krylov space was exhausted).
    /// The smallest converge much more slowly than the largest (they sit in the clustered end
    /// of the singular values of M).
    pub smallest_converged: bool,
    /// Whether the Krylov space was exhausted (then the Ritz values are eigenvalues of G, but
    /// each distinct eigenvalue appears once: the N - 2r eigenvalues 1 appear as one).
    pub exhausted: bool,
}

/// The k = `options.n_extreme` largest and smallest eigenvalues lambda = sigma^2 of G
/// (Eq. 5.6) at f' = `fp` (Eq. 5.4) by Golub-Kahan-Lanczos bidiagonalisation of M from a seeded
/// Rademacher start vector, with residual bounds. Steps grow (by half, at least 20) until all
/// 2k residuals are <= `extreme_tol` * sigma_max, the Krylov space is exhausted or
/// `extreme_max_steps` is reached.
///
/// A residual bound guarantees an eigenvalue near each Ritz value, not that none was skipped:
/// an eigenvalue whose eigenvector is missing from the start vector, or a second copy of a
/// multiple one, is not found (with probability 0 for the first, always for the second).
pub fn extreme_singular_values<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
    options: &MatrixFreeOptions,
) -> Result<ExtremeSpectrum, SpectralError> {
    options.check()?;
    let n = net.n_neurons();
    let bound = krylov_bound(n, net.inputs().len());
    let cap = options.extreme_max_steps.min(bound);
    let k = options.n_extreme;
    let start = rademacher(n, options.seed, u64::MAX).insert_axis(Axis(1));
    let mut steps = (2 * k + 20).min(cap);
    loop {
        // Restarting from scratch keeps the result a function of (seed, steps) alone; the
        // cost is at most 3x that of the final run (steps grow geometrically).
        let bd = golub_kahan(net, fp, start.clone(), steps, bound)?
            .pop()
            .ok_or(SpectralError::Backend {
                reason: "Golub-Kahan returned no bidiagonal".into(),
            })?;
        let m = bd.alpha.len();
        let (sigma, last_u, _) = bidiagonal_svd(&bd)?;
        let beta_m = bd.beta.last().copied().unwrap_or(0.0);
        let ritz: Vec<RitzValue> = sigma
            .iter()
            .zip(&last_u)
            .map(|(&s, &p)| {
                let b = beta_m * p.abs() / std::f64::consts::SQRT_2;
                RitzValue {
                    lambda: s * s,
                    sigma: s,
                    sigma_bound: b,
                    lambda_bound: (2.0 * s + b) * b,
                }
            })
            .collect();
        let kk = k.min(m);
        let largest: Vec<RitzValue> = ritz[..kk].to_vec();
        let smallest: Vec<RitzValue> = ritz[m - kk..].iter().rev().copied().collect();
        let smax = sigma.first().copied().unwrap_or(0.0);
        let tol = options.extreme_tol * smax;
        let largest_converged = bd.exhausted || largest.iter().all(|r| r.sigma_bound <= tol);
        let smallest_converged = bd.exhausted || smallest.iter().all(|r| r.sigma_bound <= tol);
        if (largest_converged && smallest_converged) || steps >= cap {
            return Ok(ExtremeSpectrum {
                largest,
                smallest,
                steps: m,
                largest_converged,
                smallest_converged,
                exhausted: bd.exhausted,
            });
        }
        steps = (steps + (steps / 2).max(20)).min(cap);
    }
}

/// The result of stochastic Lanczos quadrature: the per-probe Gauss rules (a
/// [`Quadrature`], the [`SpectralMeasure`](septuple_thermo::SpectralMeasure) thermo reads)
/// and how they were obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slq {
    /// The quadrature rules, one per probe, in probe order.
    pub quadrature: Quadrature,
    /// Probes used.
    pub probes: usize,
    /// The most Golub-Kahan steps any probe took.
    pub steps: usize,
    /// Probes whose Krylov space was exhausted (quadrature exact for them).
    pub exact_probes: usize,
    /// The Krylov dimension bound min(2r + 1, N).
    pub krylov_bound: usize,
}

/// Stochastic Lanczos quadrature for traces tr f(G) of G (Eq. 5.6) at f' = `fp` (Eq. 5.4):
/// seeded Rademacher probes z_p (probe p from stream p of the seed), Golub-Kahan on M from
/// each, the Gauss rule of z^T f(G) z from the bidiagonal (nodes sigma_j^2, weights the squared
/// first components of B's right singular vectors). Probes run in batches of
/// `options.batch`; after each batch, once `min_probes` have run, it stops if every trace of
/// `monitor` has standard error <= `rel_tol` * |value|, or at `max_probes`.
///
/// Determinism: probe p depends only on (seed, p); batches are formed in probe order and
/// batches of `batch` probes run in parallel over rayon's pool, in chunks whose results are
/// collected in probe order, so the result is the same bits for any thread count.
///
/// Why Rademacher: |z|^2 = N exactly, so the N - 2r eigenvalues that are exactly 1 contribute
/// exactly N f(1) - (the part on the structured subspace) to every probe and no variance: the
/// estimator's variance, 2 (|A|_F^2 - sum_i A_ii^2) for A = f(G) - f(1) I, comes from the at
/// most 2r-dimensional subspace where G differs from I. (Gaussian probes would add the
/// variance of |z|^2 f(1).)
pub fn stochastic_lanczos_quadrature<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
    options: &MatrixFreeOptions,
    monitor: &[&(dyn Fn(f64) -> f64 + Sync)],
) -> Result<Slq, SpectralError> {
    options.check()?;
    let n = net.n_neurons();
    let bound = krylov_bound(n, net.inputs().len());
    let steps = options.max_steps.min(bound);
    let mut rules: Vec<QuadratureRule> = Vec::new();
    let mut max_steps_taken = 0;
    let n_threads = rayon::current_num_threads().max(1);
    while rules.len() < options.max_probes {
        // A round of up to n_threads batches in parallel; the stopping rule looks at every
        // batch boundary in order, so extra batches of a round are discarded if it stops early.
        let first = rules.len();
        let n_batches = n_threads.min(options.max_probes.div_ceil(options.batch));
        let batches: Vec<(usize, usize)> = (0..n_batches)
            .map(|t| {
                let lo = first + t * options.batch;
                (lo, (lo + options.batch).min(options.max_probes))
            })
            .filter(|(lo, hi)| lo < hi)
            .collect();
        let results: Vec<Result<Vec<(QuadratureRule, usize)>, SpectralError>> = batches
            .par_iter()
            .map(|&(lo, hi)| {
                let mut start = Array2::zeros((n, hi - lo));
                for (c, p) in (lo..hi).enumerate() {
                    start
                        .column_mut(c)
                        .assign(&rademacher(n, options.seed, p as u64));
                }
                golub_kahan(net, fp, start, steps, bound)?
                    .iter()
                    .map(|bd| {
                        let (sigma, _, first_v) = bidiagonal_svd(bd)?;
                        let mut pairs: Vec<(f64, f64)> = sigma
                            .iter()
                            .zip(&first_v)
                            .map(|(&s, &q)| (s * s, q * q))
                            .collect();
                        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
                        Ok((
                            QuadratureRule {
                                nodes: pairs.iter().map(|p| p.0).collect(),
                                weights: pairs.iter().map(|p| p.1).collect(),
                                exact: bd.exhausted,
                            },
                            bd.alpha.len(),
                        ))
                    })
                    .collect()
            })
            .collect();
        for batch in results {
            for (rule, m) in batch? {
                max_steps_taken = max_steps_taken.max(m);
                rules.push(rule);
            }
            if rules.len() >= options.min_probes && rules.len() >= 2 && options.rel_tol > 0.0 {
                let q = Quadrature::new(n, n as f64, rules.clone())?;
                let done = monitor.iter().all(|f| {
                    let e = septuple_thermo::SpectralMeasure::trace(&q, *f);
                    e.stderr <= options.rel_tol * e.value.abs()
                });
                if done {
                    return finish(n, rules, max_steps_taken, bound);
                }
            }
        }
    }
    finish(n, rules, max_steps_taken, bound)
}

fn finish(
    n: usize,
    rules: Vec<QuadratureRule>,
    steps: usize,
    bound: usize,
) -> Result<Slq, SpectralError> {
    let probes = rules.len();
    let exact_probes = rules.iter().filter(|r| r.exact).count();
    Ok(Slq {
        quadrature: Quadrature::new(n, n as f64, rules)?,
        probes,
        steps,
        exact_probes,
        krylov_bound: bound,
    })
}
