//! Matrix-free estimates of the spectrum of G = M^T M, M = I - f'w (Eq. 5.6), for networks too
//! large for the dense and structured paths: only M V and M^T V on blocks of vectors
//! ([`Network::apply_m`], [`Network::apply_mt`]) are used, O(nnz(w)) per vector and step.
//!
//! Both estimators run Golub-Kahan-Lanczos bidiagonalisation of M with full
//! reorthogonalisation (classical Gram-Schmidt, applied a second time where the DGKS test asks
//! for it) rather than Lanczos on G: the
//! Ritz values of G are the squared singular values of the small bidiagonal B, which a
//! backward-stable SVD gives to eps * sigma_max absolute in sigma, i.e. to relative accuracy
//! eps * cond(M) in lambda = sigma^2, where the eigenvalues of the tridiagonal T = B^T B
//! (Lanczos on G) are only accurate to eps * lambda_max, relative eps * cond(M)^2 for the
//! smallest lambda: the log lambda of Figs. 4-5 reach below -10.
//!
//! The extreme singular values use a thick restart (a basis of fixed size, compressed to the
//! best Ritz vectors when full) with blocked reorthogonalisation, and get the smallest from
//! M^-1 = sum_(j < L) (f'w)^j (f'w is nilpotent), where they are the largest. faer 0.24's
//! operator module (`faer::operator`, a `LinOp` trait and Krylov-Schur partial eigen/SVD
//! solvers) is not used: its partial SVD exposes neither the residual bounds per Ritz value
//! nor the bidiagonal's first-row weights that the quadrature needs, and its `LinOp` works on
//! faer matrices with a scratch stack protocol, where the network trait works on ndarray
//! blocks. faer does the small dense SVDs.
//!
//! The rank bound: the rows of f'w vanish at the n_in inputs, so G - I has rank <= 2r
//! (r = N - n_in non-input neurons) and the Krylov space of any start vector has dimension
//! <= 2r + 1. Bidiagonalisation stops there (or earlier at a breakdown), and then the Gauss
//! quadrature of that probe is exact for every f and the Ritz values are eigenvalues of G.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use septuple_core::{dot_fixed_order, Network};
use septuple_thermo::{Quadrature, QuadratureRule};
use serde::{Deserialize, Serialize};

use crate::backend::dense_svd;
use crate::block_restart::{block_thick_restart, BlockShape};
use crate::error::SpectralError;

/// A remainder below this times the largest alpha or beta seen so far ends bidiagonalisation:
/// the Krylov space is invariant to working precision. After two Gram-Schmidt passes the
/// remainder of an exhausted space is a few eps * |M| * sqrt(steps), far below it; a true
/// coupling of this size changes the quadrature by its square.
pub(crate) const BREAKDOWN: f64 = 1e-12;

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
    /// reference magnitude ([`Monitor`]; 0: always run `max_probes`).
    pub rel_tol: f64,
    /// The seed of the probes and of the start vector of the extreme singular values.
    pub seed: u64,
    /// How many of the largest and of the smallest singular values of M to compute.
    pub n_extreme: usize,
    /// The most Golub-Kahan steps for each end of the extreme singular values, over all
    /// restarts (a one-sided run adds the k steps' worth of its explicit residuals, and a
    /// two-sided rerun has a budget of its own).
    pub extreme_max_steps: usize,
    /// The most basis vectors the extreme singular values keep before a thick restart (at
    /// least 2 `n_extreme` + 10 are used; capped at min(2r + 1, N), where the Krylov space is
    /// exhausted without restarting).
    pub extreme_basis: usize,
    /// Converged when each of the wanted Ritz values has residual <= this times sigma_max.
    pub extreme_tol: f64,
    /// Vectors per Golub-Kahan block of the extreme singular values (>= 1): 1 (the default)
    /// runs the single-vector recurrence, b > 1 the block recurrence (one product with b
    /// vectors per step). A block product costs less per vector on sparse networks, but the
    /// block Krylov space needs more products for the same Ritz values (on the random
    /// 10^6-neuron DAG of `examples/large_network.rs`: 380 single-vector products, 500 in
    /// blocks of 2, 900 in blocks of 4; docs/performance.md), so the default stays at one. A
    /// block run needs its basis plus one block within half the Krylov bound; otherwise the
    /// single-vector recurrence runs (where an exhausted Krylov space is exact).
    /// [`ExtremeSpectrum::block`] says which ran.
    pub extreme_block: usize,
    /// Which Golub-Kahan vectors of the single-vector extreme singular values are
    /// reorthogonalised ([`Sides`]).
    pub extreme_sides: Sides,
    /// Whether stochastic Lanczos quadrature removes the unit eigenspace S^perp from each probe
    /// (see [`unit_subspace`]) and adds its weight at lambda = 1 exactly: no bias from the
    /// N - k unit eigenvalues (which Gauss nodes never hit exactly) and less variance. Needs
    /// the N x n_in block f'w E_I within the default [`DenseBudget`](septuple_core::DenseBudget);
    /// skipped beyond it.
    pub deflate: bool,
    /// Whether [`extreme_singular_values`] also computes the `n_extreme` smallest (through
    /// M^-1; C_(N-20) of Eq. 10.5 needs them, C_20 only the largest).
    pub smallest: bool,
    /// With a value > 0, stochastic Lanczos quadrature chooses its steps: starting from
    /// `max_steps`, it doubles them (up to `steps_limit` and the Krylov bound) until, on the
    /// first batch of probes, every monitored trace changes by at most this times its reference
    /// magnitude ([`Monitor`]) between the Gauss rules of the first half of the steps and of all
    /// of them
    /// ([`Slq::quadrature_change`]). 0 (the default): `max_steps` steps, whatever the change.
    pub quadrature_tol: f64,
    /// The most steps the adaptive choice may reach (>= `max_steps` when `quadrature_tol` > 0).
    pub steps_limit: usize,
    /// How stochastic Lanczos quadrature keeps each probe's Golub-Kahan vectors orthogonal.
    pub reorthogonalisation: Reorthogonalisation,
}

/// Which Golub-Kahan vectors of [`extreme_singular_values`] are reorthogonalised against their
/// basis ([`MatrixFreeOptions::extreme_sides`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sides {
    /// Both: U and V orthonormal to working precision, and the residual bound of each Ritz
    /// value is the recurrence's beta_m |p_(m,j)|.
    Both,
    /// V only (one-sided reorthogonalisation, Simon and Zha 2000; the default of Baglama and
    /// Reichel's IRLBA): the left vectors u_j are kept orthogonal by the three-term
    /// recurrence alone, except the first after each restart, which is reorthogonalised. Half
    /// the Gram-Schmidt work of [`Sides::Both`]. The Ritz vectors in V stay orthonormal (so no
    /// spurious copies of a converged value), but U may lose orthogonality where M is
    /// ill-conditioned, and then beta_m |p_(m,j)| is no longer a bound: so a run that stops
    /// takes the residuals of its wanted Ritz triplets explicitly (k products with M, k with M^T,
    /// [`ExtremeSpectrum::one_sided`]) and, should one of them miss the tolerance the
    /// recurrence claimed, runs again with both sides. Where the basis may hold the whole
    /// Krylov space (2r + 1 <= `extreme_basis`), both sides run: an exhausted space is then
    /// exact.
    #[default]
    Right,
}

/// How stochastic Lanczos quadrature keeps each probe's Golub-Kahan vectors orthogonal
/// ([`MatrixFreeOptions::reorthogonalisation`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reorthogonalisation {
    /// Against every earlier vector of the probe (two classical Gram-Schmidt passes): the
    /// Gauss rules of exact arithmetic, and exact ones once a Krylov space is exhausted.
    /// Memory 2 x steps x N doubles per probe of a batch.
    Full,
    /// Only the last two vectors of each probe are kept (memory 4 N doubles per probe, and no
    /// O(steps^2 N) Gram-Schmidt work). In floating point the vectors then lose orthogonality
    /// as Ritz values converge, which adds copies of converged nodes to the Gauss rule while
    /// the weights still sum to one; the rule stays a quadrature of the same measure, accurate
    /// for smooth f (Knizhnerman 1996; tested against the exact spectrum), but a Krylov space
    /// is never taken as exhausted, so no probe counts as exact.
    None,
    /// Full when a batch's vectors (2 x steps x N x batch doubles, steps the most that may
    /// run) fit the default [`DenseBudget`](septuple_core::DenseBudget), None beyond; the
    /// result says which ran ([`Slq::reorthogonalised`]). The choice depends on the options
    /// and N only, never on the thread count.
    #[default]
    Auto,
}

impl Default for MatrixFreeOptions {
    /// 8 to 64 probes in batches of 8, 60 steps, relative tolerance 1e-2, seed 0; 20 extreme
    /// values each side (C_20 and C_(N-20) of Fig. 6) within 3000 steps per end, in a basis of
    /// 60 vectors, to residual 1e-10 sigma_max.
    fn default() -> Self {
        MatrixFreeOptions {
            max_probes: 64,
            min_probes: 8,
            batch: 8,
            max_steps: 60,
            rel_tol: 1e-2,
            seed: 0,
            n_extreme: 20,
            extreme_max_steps: 3000,
            extreme_basis: 60,
            extreme_tol: 1e-10,
            extreme_block: 1,
            extreme_sides: Sides::Right,
            smallest: true,
            deflate: true,
            quadrature_tol: 0.0,
            steps_limit: 1920,
            reorthogonalisation: Reorthogonalisation::Auto,
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
        count("extreme_basis", self.extreme_basis, 1, "at least 1 vector")?;
        count(
            "extreme_block",
            self.extreme_block,
            1,
            "at least 1 vector per block",
        )?;
        if self.quadrature_tol > 0.0 && self.steps_limit < self.max_steps {
            return Err(SpectralError::Parameter {
                what: "steps_limit",
                value: self.steps_limit.to_string(),
                expected: "at least max_steps when the steps are chosen adaptively",
            });
        }
        for (what, v) in [
            ("rel_tol", self.rel_tol),
            ("extreme_tol", self.extreme_tol),
            ("quadrature_tol", self.quadrature_tol),
        ] {
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
    full: bool,
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
    let mut v = standard(start);
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
    // Each probe's vectors, contiguous (a strided column of the block would make every
    // Gram-Schmidt dot product a strided walk).
    let mut vs: Vec<Vec<Array1<f64>>> = (0..b)
        .map(|c| {
            if full {
                vec![v.column(c).to_owned()]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut us: Vec<Vec<Array1<f64>>> = vec![Vec::new(); b];
    // Four blocks of N x b for the whole run, in standard layout (the row-wise recurrences
    // read them so): the products go into `p` and `q`, which then trade places with the
    // vectors they replace (a network that fuses M V allocates nothing per step).
    let mut u_prev = Array2::<f64>::zeros((n, b));
    let mut p = Array2::<f64>::zeros((n, b));
    let mut q = Array2::<f64>::zeros((n, b));
    for j in 0..steps {
        // alpha_j u_j = M v_j - beta_(j-1) u_(j-1).
        net.apply_m_into(fp, v.view(), p.view_mut())?;
        if full {
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
                reorthogonalise(&mut col, &us[c]);
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
                let col = col / a;
                p.column_mut(c).assign(&col);
                us[c].push(col);
            }
        } else {
            let coef: Vec<f64> = (0..b)
                .map(|c| {
                    if j > 0 && active[c] {
                        out[c].beta[j - 1]
                    } else {
                        0.0
                    }
                })
                .collect();
            let norms = recur_rows(&mut p, &u_prev, &coef, &active);
            let mut divisor = vec![None; b];
            for c in 0..b {
                if !active[c] {
                    continue;
                }
                let a = norms[c];
                if !(a > BREAKDOWN * scale[c].max(f64::MIN_POSITIVE)) || !a.is_finite() {
                    active[c] = false;
                    out[c].exhausted = true;
                    continue;
                }
                scale[c] = scale[c].max(a);
                out[c].alpha.push(a);
                divisor[c] = Some(a);
            }
            divide_rows(&mut p, &divisor);
        }
        // beta_j v_(j+1) = M^T u_j - alpha_j v_j.
        net.apply_mt_into(fp, p.view(), q.view_mut())?;
        if full {
            for c in 0..b {
                if !active[c] {
                    q.column_mut(c).fill(0.0);
                    continue;
                }
                let aj = out[c].alpha[j];
                q.column_mut(c).scaled_add(-aj, &v.column(c));
                let mut col = q.column(c).to_owned();
                reorthogonalise(&mut col, &vs[c]);
                let bnorm = col.dot(&col).sqrt();
                out[c].beta.push(bnorm);
                if out[c].alpha.len() >= bound || !(bnorm > BREAKDOWN * scale[c]) {
                    active[c] = false;
                    // With full reorthogonalisation the bound is the dimension of the
                    // Krylov space: the rule is exact either way.
                    out[c].exhausted = true;
                    q.column_mut(c).fill(0.0);
                    continue;
                }
                scale[c] = scale[c].max(bnorm);
                let col = col / bnorm;
                q.column_mut(c).assign(&col);
                vs[c].push(col);
            }
        } else {
            let coef: Vec<f64> = (0..b)
                .map(|c| if active[c] { out[c].alpha[j] } else { 0.0 })
                .collect();
            let norms = recur_rows(&mut q, &v, &coef, &active);
            let mut divisor = vec![None; b];
            for c in 0..b {
                if !active[c] {
                    continue;
                }
                let bnorm = norms[c];
                out[c].beta.push(bnorm);
                if out[c].alpha.len() >= bound || !(bnorm > BREAKDOWN * scale[c]) {
                    active[c] = false;
                    // Without reorthogonalisation the bound says nothing about the rule.
                    out[c].exhausted = !(bnorm > BREAKDOWN * scale[c]);
                    continue;
                }
                scale[c] = scale[c].max(bnorm);
                divisor[c] = Some(bnorm);
            }
            divide_rows(&mut q, &divisor);
        }
        if !active.iter().any(|&a| a) {
            break;
        }
        // u_(j-1) and v_j are spent: their blocks take the next products.
        std::mem::swap(&mut u_prev, &mut p);
        std::mem::swap(&mut v, &mut q);
    }
    Ok(out)
}

/// `f` on a one-thread rayon pool: faer's high-level decompositions take their parallelism
/// from the calling pool, and their blocked algorithms split the work by it.
pub(crate) fn sequential<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, SpectralError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| SpectralError::Backend {
            reason: format!("a one-thread pool for a dense decomposition: {e}"),
        })?;
    Ok(pool.install(f))
}

/// Rows of a block product per task in [`recur_rows`] and [`divide_rows`]: fixed, so that the
/// partial sums are the same whatever the thread count.
const ROW_CHUNK: usize = 4096;

/// `x` in standard (row-major) layout.
fn standard(x: Array2<f64>) -> Array2<f64> {
    if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    }
}

/// The recurrence of one half step for every column at once (the path without
/// reorthogonalisation): x[., c] -= coef[c] prev[., c] for the active columns, 0 for the others,
/// and the columns' norms, in one pass over the rows of both row-major blocks. The sums of
/// squares go row chunk by row chunk, the chunks' sums added in order: the same bits for any
/// thread count. (Column by column, every strided pass would touch the whole N x b block.)
fn recur_rows(x: &mut Array2<f64>, prev: &Array2<f64>, coef: &[f64], active: &[bool]) -> Vec<f64> {
    let b = x.ncols();
    let prev = prev.as_standard_layout();
    let ps = prev.as_slice().expect("standard layout");
    let xs = x.as_slice_mut().expect("standard layout");
    let partial: Vec<Vec<f64>> = xs
        .par_chunks_mut(ROW_CHUNK * b)
        .zip(ps.par_chunks(ROW_CHUNK * b))
        .map(|(xc, pc)| {
            let mut sums = vec![0.0; b];
            for (xr, pr) in xc.chunks_mut(b).zip(pc.chunks(b)) {
                for c in 0..b {
                    if active[c] {
                        // x + (-k) p, as ndarray's scaled_add computes it.
                        xr[c] += -coef[c] * pr[c];
                        sums[c] += xr[c] * xr[c];
                    } else {
                        xr[c] = 0.0;
                    }
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![0.0; b];
    for p in &partial {
        for (s, v) in sums.iter_mut().zip(p) {
            *s += v;
        }
    }
    sums.iter().map(|s| s.sqrt()).collect()
}

/// x[., c] /= divisor[c], or 0 where there is none (the columns that stop).
fn divide_rows(x: &mut Array2<f64>, divisor: &[Option<f64>]) {
    let b = x.ncols();
    let xs = x.as_slice_mut().expect("standard layout");
    xs.par_chunks_mut(ROW_CHUNK * b).for_each(|xc| {
        for xr in xc.chunks_mut(b) {
            for (v, d) in xr.iter_mut().zip(divisor) {
                *v = match d {
                    Some(d) => *v / d,
                    None => 0.0,
                };
            }
        }
    });
}

/// Classical Gram-Schmidt of `x` against every vector of `basis` (orthonormal), repeated when
/// the DGKS test asks for it: the sweeps of [`reorthogonalise_block`] over fixed chunks of
/// rows, so the bits do not depend on the thread count. `x` and the basis are owned vectors
/// that [`golub_kahan`] builds itself (`to_owned` columns, and their quotients), so they are
/// contiguous: there is no other layout to handle.
fn reorthogonalise(x: &mut Array1<f64>, basis: &[Array1<f64>]) {
    let cols: Vec<&[f64]> = basis
        .iter()
        .map(|q| q.as_slice().expect("an owned, contiguous basis vector"))
        .collect();
    reorthogonalise_slices(
        &cols,
        x.as_slice_mut().expect("an owned, contiguous vector"),
    );
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
    // One thread: faer would split a large bidiagonal (adaptive steps reach 1,920) by the
    // calling pool's thread count.
    let (u, s, v) =
        sequential(|| dense_svd(mat.as_ref(), false))?.map_err(|e| SpectralError::Backend {
            reason: format!("SVD of the {m} x {m} Golub-Kahan bidiagonal did not converge: {e:?}"),
        })?;
    let sigma: Vec<f64> = s[..m].to_vec();
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
pub(crate) fn rademacher(n: usize, seed: u64, stream: u64) -> Array1<f64> {
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
    /// The residual r = sqrt(|M y - sigma x|^2 + |M^T x - sigma y|^2) of the Ritz pair (x, y)
    /// (the recurrence's |M^T x - sigma y| when both sides are reorthogonalised, where
    /// M y = sigma x holds by construction; taken explicitly after a one-sided run): some
    /// singular value of M lies within `sigma_bound` = r / sqrt 2 of sigma.
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
    /// Golub-Kahan steps taken (products with M or M^-1 and their transposes), both ends,
    /// with the products of the explicit residuals of one-sided runs.
    pub steps: usize,
    /// Whether every one of `largest` met the tolerance (or the Krylov space was exhausted).
    pub largest_converged: bool,
    /// Whether every one of `smallest` met the tolerance (or the Krylov space was exhausted;
    /// true when they were not asked for).
    /// The smallest converge much more slowly than the largest (they sit in the clustered end
    /// of the singular values of M).
    pub smallest_converged: bool,
    /// Whether the Krylov space was exhausted (then the Ritz values are eigenvalues of G, but
    /// each distinct eigenvalue appears once: the N - 2r eigenvalues 1 appear as one).
    pub exhausted: bool,
    /// The vectors per Golub-Kahan block that ran (1: the single-vector recurrence; see
    /// [`MatrixFreeOptions::extreme_block`]).
    #[serde(default = "one")]
    pub block: usize,
    /// Whether the returned values come from one-sided runs ([`Sides::Right`]); their
    /// residual bounds are then the explicit |M y - sigma x| and |M^T x - sigma y| of the
    /// normalised Ritz vectors, not the recurrence's.
    #[serde(default)]
    pub one_sided: bool,
}

fn one() -> usize {
    1
}

/// The k = `options.n_extreme` largest and smallest eigenvalues lambda = sigma^2 of G
/// (Eq. 5.6) at f' = `fp` (Eq. 5.4), with residual bounds, by thick-restart Golub-Kahan-Lanczos
/// bidiagonalisation from a seeded Rademacher start vector.
///
/// The largest are the largest singular values of M. The smallest are 1 / the largest
/// singular values of M^-1, which costs no factorisation: f'w is nilpotent (w^L = 0 for a
/// network of L layers, Eq. 2.1), so M^-1 = sum_(j < L) (f'w)^j, applied by Horner's rule in
/// L - 1 products with w (the forward substitution of Eq. 2.9 linearised). Both ends thereby
/// converge as fast as the largest singular values do, where Krylov methods on M itself
/// converge slowly at the clustered small end.
///
/// Each run keeps a basis of at most `extreme_basis` (at least 2k + 10) vectors; when it is
/// full and the k wanted Ritz values do not all have residual <= `extreme_tol` times the
/// largest, it restarts from the best `(basis + k) / 2` Ritz vectors and the residual
/// vector (the thick restart of Wu and Simon in Baglama and Reichel's bidiagonal form),
/// until `extreme_max_steps` products in total, the Krylov space is exhausted, or
/// convergence. Orthogonalisation is classical Gram-Schmidt against the whole basis, repeated
/// where the DGKS test asks for it, of the right vectors only by default ([`Sides::Right`]:
/// the bounds are then explicit residuals, with a two-sided rerun should one miss the
/// tolerance) or of both ([`Sides::Both`]).
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
    if fp.len() != n {
        return Err(SpectralError::Shape {
            what: "f'",
            got: vec![fp.len()],
            expected: vec![n],
        });
    }
    let depth = net.feedforward()?.depth;
    let bound = krylov_bound(n, net.inputs().len());
    let start = rademacher(n, options.seed, u64::MAX);
    let k = options.n_extreme.min(bound);
    let requested = options.extreme_block;
    // A block run never takes its Krylov space as exhausted; where the space is small enough
    // to be exhausted (a basis and a block beyond half the bound) the single-vector run does.
    let shape = (requested > 1)
        .then(|| BlockShape::new(k, requested, options.extreme_basis))
        .filter(|sh| 2 * (sh.m + sh.b) <= bound && sh.m + sh.b <= n);
    // One-sided only where a run restarts: a basis that may hold the whole Krylov space
    // keeps both sides, so that an exhausted space stays exact.
    let basis = options.extreme_basis.max(2 * k + 10).min(bound).max(1);
    let one_sided = shape.is_none() && options.extreme_sides == Sides::Right && basis < bound;
    let run = |op: &dyn BlockOp| -> Result<TopSingular, SpectralError> {
        match shape {
            Some(sh) => block_thick_restart(op, n, k, sh, options),
            None => single_vector_run(op, start.view(), k, bound, options, one_sided),
        }
    };
    let top = run(&ForwardOp { net, fp })?;
    let bottom = if options.smallest {
        run(&InverseOp { net, fp, depth })?
    } else {
        TopSingular {
            sigma: Vec::new(),
            residual: Vec::new(),
            steps: 0,
            converged: true,
            exhausted: true,
            one_sided: false,
            left_lost: false,
        }
    };
    let sqrt2 = std::f64::consts::SQRT_2;
    let ritz = |sigma: f64, b: f64| RitzValue {
        lambda: sigma * sigma,
        sigma,
        sigma_bound: b,
        lambda_bound: (2.0 * sigma + b) * b,
    };
    let largest = top
        .sigma
        .iter()
        .zip(&top.residual)
        .map(|(&s, &res)| ritz(s, res / sqrt2))
        .collect();
    // tau = 1 / sigma with |tau - tau'| <= b for some singular value tau' of M^-1: sigma' =
    // 1 / tau' lies in [1 / (tau + b), 1 / (tau - b)], within b / (tau (tau - b)) of sigma.
    let smallest = bottom
        .sigma
        .iter()
        .zip(&bottom.residual)
        .map(|(&tau, &res)| {
            let b = res / sqrt2;
            let sb = if tau > b {
                b / (tau * (tau - b))
            } else {
                f64::INFINITY
            };
            ritz(1.0 / tau, sb)
        })
        .collect();
    Ok(ExtremeSpectrum {
        largest,
        smallest,
        steps: top.steps + bottom.steps,
        largest_converged: top.converged,
        smallest_converged: bottom.converged,
        exhausted: top.exhausted && (bottom.exhausted || !options.smallest),
        block: shape.map_or(1, |sh| sh.b),
        one_sided: top.one_sided || bottom.one_sided,
    })
}

/// The single-vector thick restart, one-sided first when `one_sided` ([`Sides::Right`]): if
/// its explicit residuals miss the tolerance its recurrence met (U lost the orthogonality the
/// recurrence's bounds assume, or the operator's transpose is not that of its product), a
/// two-sided run from the same start, whose steps are added to the first's.
fn single_vector_run(
    op: &dyn BlockOp,
    start: ArrayView1<'_, f64>,
    k: usize,
    bound: usize,
    options: &MatrixFreeOptions,
    one_sided: bool,
) -> Result<TopSingular, SpectralError> {
    let first = thick_restart(op, start, k, bound, options, one_sided)?;
    if !first.left_lost {
        return Ok(first);
    }
    let mut both = thick_restart(op, start, k, bound, options, false)?;
    both.steps += first.steps;
    Ok(both)
}

/// A linear operator on R^N given by its products with blocks of vectors (N x b).
pub(crate) trait BlockOp {
    fn apply(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError>;
    fn apply_t(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError>;
    /// [`BlockOp::apply`] into `out` (the shape of `v`).
    fn apply_into(
        &self,
        v: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), SpectralError> {
        out.assign(&self.apply(v)?);
        Ok(())
    }
    /// [`BlockOp::apply_t`] into `out` (the shape of `v`).
    fn apply_t_into(
        &self,
        v: ArrayView2<'_, f64>,
        mut out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), SpectralError> {
        out.assign(&self.apply_t(v)?);
        Ok(())
    }
}

/// M = I - f'w (Eq. 5.6).
struct ForwardOp<'a, N: ?Sized> {
    net: &'a N,
    fp: ArrayView1<'a, f64>,
}

impl<N: Network + ?Sized> BlockOp for ForwardOp<'_, N> {
    fn apply(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
        Ok(self.net.apply_m(self.fp, v)?)
    }
    fn apply_t(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
        Ok(self.net.apply_mt(self.fp, v)?)
    }
    fn apply_into(
        &self,
        v: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), SpectralError> {
        Ok(self.net.apply_m_into(self.fp, v, out)?)
    }
    fn apply_t_into(
        &self,
        v: ArrayView2<'_, f64>,
        out: ArrayViewMut2<'_, f64>,
    ) -> Result<(), SpectralError> {
        Ok(self.net.apply_mt_into(self.fp, v, out)?)
    }
}

/// M^-1 = sum_(j < L) (f'w)^j: f'w is nilpotent of index <= L, the network's number of layers.
struct InverseOp<'a, N: ?Sized> {
    net: &'a N,
    fp: ArrayView1<'a, f64>,
    depth: usize,
}

impl<N: Network + ?Sized> BlockOp for InverseOp<'_, N> {
    /// Horner: x <- v + f' (w x), L - 1 times.
    fn apply(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
        let mut x = v.to_owned();
        for _ in 1..self.depth {
            let mut wx = self.net.weights_times(x.view())?;
            for (mut row, &f) in wx.rows_mut().into_iter().zip(self.fp) {
                row *= f;
            }
            wx += &v;
            x = wx;
        }
        Ok(x)
    }
    /// M^-T = sum_j (w^T f')^j: x <- v + w^T (f' x), L - 1 times.
    fn apply_t(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
        let mut x = v.to_owned();
        for _ in 1..self.depth {
            for (mut row, &f) in x.rows_mut().into_iter().zip(self.fp) {
                row *= f;
            }
            let mut wx = self.net.weights_t_times(x.view())?;
            wx += &v;
            x = wx;
        }
        Ok(x)
    }
}

/// The k largest singular values of an operator with their residuals beta_m |p_(m,j)|.
pub(crate) struct TopSingular {
    pub(crate) sigma: Vec<f64>,
    pub(crate) residual: Vec<f64>,
    pub(crate) steps: usize,
    pub(crate) converged: bool,
    pub(crate) exhausted: bool,
    /// A one-sided run ([`Sides::Right`]): `residual` holds explicit residuals.
    pub(crate) one_sided: bool,
    /// A one-sided run whose explicit residuals missed the tolerance its recurrence met.
    pub(crate) left_lost: bool,
}

/// Classical Gram-Schmidt of the column `x` (N x 1) against the columns of `basis` (N x j,
/// orthonormal), repeated once when the Daniel-Gragg-Kaufman-Stewart criterion asks for it.
///
/// With contiguous columns (the column-major bases of [`thick_restart`]) the work is done in
/// sweeps over fixed chunks of rows, each reading the basis once ([`gram_schmidt_sweep`]):
/// the first takes h = Q^T x and |x|. The length left after subtracting Q h is
/// |x|^2 - |h|^2 for orthonormal Q; if that keeps at least 1/2 of |x|^2 (ARPACK's DGKS test,
/// |x - Q h| >= 0.717 |x|), one pass is enough and the second sweep only subtracts Q h.
/// Otherwise (cancellation: x was nearly in the span of Q, and the difference of the squares
/// is no measure of what is left) the second sweep subtracts Q h and, in the same reading of
/// Q, takes the next projection h' = Q^T x, which a third sweep subtracts ("twice is
/// enough"). The difference of the squares decides only where it is at least half of |x|^2,
/// so its rounding (a few eps |x|^2, and |Q^T Q - I| |h|^2) cannot turn the decision. So a
/// Lanczos step, whose x is nearly orthogonal already, reads its basis twice rather than the
/// four times of two unconditional passes, and takes Q^T x once. Every partial sum is
/// taken over a fixed chunk of rows and the chunks added in order, so the bits do not depend
/// on the thread count. Other layouts: two passes of matrix products.
fn reorthogonalise_block(x: &mut Array2<f64>, basis: ArrayView2<'_, f64>) {
    let j = basis.ncols();
    if j == 0 {
        return;
    }
    let cols: Option<Vec<&[f64]>> = (0..j)
        .map(|k| basis.index_axis_move(Axis(1), k).to_slice())
        .collect();
    let (Some(cols), Some(xs)) = (cols, x.as_slice_memory_order_mut()) else {
        for _ in 0..2 {
            let h = basis.t().dot(&*x);
            *x -= &basis.dot(&h);
        }
        return;
    };
    reorthogonalise_slices(&cols, xs);
}

/// The sweeps of [`reorthogonalise_block`] for `x` against the orthonormal vectors `cols`
/// (each at least as long as x), with its DGKS decision.
fn reorthogonalise_slices(cols: &[&[f64]], xs: &mut [f64]) {
    /// ARPACK's constant for the DGKS test (dgetv0, dsaitr: 0.717 ~ 1/sqrt(2)).
    const DGKS: f64 = 0.717;
    if cols.is_empty() {
        return;
    }
    let (h, norm2) = gram_schmidt_sweep(cols, xs, None, true);
    let projected: f64 = h.iter().map(|x| x * x).sum();
    if norm2 - projected >= DGKS * DGKS * norm2 {
        gram_schmidt_sweep(cols, xs, Some(&h), false);
        return;
    }
    let (h2, _) = gram_schmidt_sweep(cols, xs, Some(&h), true);
    gram_schmidt_sweep(cols, xs, Some(&h2), false);
}

/// Rows per chunk of [`gram_schmidt_sweep`]: 8 KiB of x, which stays in the first-level cache
/// while the basis streams past it, and a chunk of a 60-vector basis (480 KiB) that stays in
/// the second-level cache between the update and the projection. (Chunks of N / 16 rows, 62,500
/// at N = 10^6, made no measurable difference there: docs/logs/large_network_one_sided.log.)
const GS_ROWS: usize = 1024;

/// Basis vectors that [`gram_schmidt_sweep`] takes at a time: each element of x is loaded and
/// stored once per group rather than once per vector (the 20 largest at N = 10^6 in
/// docs/performance.md, before and after).
const GS_GROUP: usize = 4;

/// One sweep of [`reorthogonalise_block`] over fixed chunks of rows: x -= sum_k h_k q_k (when
/// `h` is given, k ascending for every element), then, with `dots`, (Q^T x, |x|^2) of the
/// result, each a sum over chunks in chunk order of the chunks' own sums ([`dot_fixed_order`],
/// or [`dots_fixed_order`] for [`GS_GROUP`] vectors at a time, the same bits); without, an
/// empty projection and 0.
fn gram_schmidt_sweep(
    cols: &[&[f64]],
    xs: &mut [f64],
    h: Option<&[f64]>,
    dots: bool,
) -> (Vec<f64>, f64) {
    let j = cols.len();
    let grouped = j / GS_GROUP * GS_GROUP;
    let partial: Vec<Vec<f64>> = xs
        .par_chunks_mut(GS_ROWS)
        .enumerate()
        .map(|(c, xc)| {
            let (lo, len) = (c * GS_ROWS, xc.len());
            let seg = |k: usize| &cols[k][lo..lo + len];
            if let Some(h) = h {
                for k in (0..grouped).step_by(GS_GROUP) {
                    let qs: [&[f64]; GS_GROUP] = std::array::from_fn(|g| seg(k + g));
                    let hs: [f64; GS_GROUP] = std::array::from_fn(|g| h[k + g]);
                    for (i, xi) in xc.iter_mut().enumerate() {
                        // The subtractions in k order, as one vector at a time would do them.
                        let mut v = *xi;
                        for g in 0..GS_GROUP {
                            v -= hs[g] * qs[g][i];
                        }
                        *xi = v;
                    }
                }
                for (k, &hk) in h.iter().enumerate().take(j).skip(grouped) {
                    for (xi, &qi) in xc.iter_mut().zip(seg(k)) {
                        *xi -= hk * qi;
                    }
                }
            }
            if !dots {
                return Vec::new();
            }
            let mut sums = Vec::with_capacity(j + 1);
            for k in (0..grouped).step_by(GS_GROUP) {
                sums.extend(dots_fixed_order::<GS_GROUP>(
                    std::array::from_fn(|g| seg(k + g)),
                    xc,
                ));
            }
            sums.extend((grouped..j).map(|k| dot_fixed_order(seg(k), xc)));
            sums.push(dot_fixed_order(xc, xc));
            sums
        })
        .collect();
    if !dots {
        return (Vec::new(), 0.0);
    }
    let mut total = vec![0.0f64; j + 1];
    for sums in &partial {
        for (t, s) in total.iter_mut().zip(sums) {
            *t += s;
        }
    }
    let norm2 = total.pop().unwrap_or(0.0);
    (total, norm2)
}

/// [`dot_fixed_order`] of each of C vectors `qs` (each at least as long as x) with x in one
/// pass over x: the same four lanes, tail and order of additions for each, so the same bits.
fn dots_fixed_order<const C: usize>(qs: [&[f64]; C], x: &[f64]) -> [f64; C] {
    let len = x.len();
    let whole = len / 4 * 4;
    let mut acc = [[0.0f64; 4]; C];
    for i in (0..whole).step_by(4) {
        let xs = &x[i..i + 4];
        for (a, q) in acc.iter_mut().zip(&qs) {
            let q = &q[i..i + 4];
            for l in 0..4 {
                a[l] += q[l] * xs[l];
            }
        }
    }
    std::array::from_fn(|c| {
        let a = acc[c];
        let tail: f64 = qs[c][whole..len]
            .iter()
            .zip(&x[whole..])
            .map(|(q, x)| q * x)
            .sum();
        ((a[0] + a[1]) + (a[2] + a[3])) + tail
    })
}

fn column_norm(x: &Array2<f64>) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Thick-restart Golub-Kahan-Lanczos for the k largest singular triplets of `op` from
/// `start`. Invariants after each step j: A V_j = U_j B_j and
/// A^T U_j = V_j B_j^T + r e_j^T with V, U orthonormal (columns of N x m matrices in
/// column-major order) and B upper triangular: diagonal Sigma and a spike column after a
/// restart, bidiagonal after it.
fn thick_restart(
    op: &dyn BlockOp,
    start: ArrayView1<'_, f64>,
    k: usize,
    bound: usize,
    options: &MatrixFreeOptions,
    one_sided: bool,
) -> Result<TopSingular, SpectralError> {
    let n = start.len();
    let m = options.extreme_basis.max(2 * k + 10).min(bound).max(1);
    let keep = ((m + k) / 2).max(k).min(m.saturating_sub(1));
    let budget = options.extreme_max_steps;
    let mut v = Array2::<f64>::zeros((n, m + 1).f());
    let mut u = Array2::<f64>::zeros((n, m).f());
    let mut b = Array2::<f64>::zeros((m, m));
    let norm = start.dot(&start).sqrt();
    if !(norm > 0.0 && norm.is_finite()) {
        return Err(SpectralError::Parameter {
            what: "start vector norm",
            value: norm.to_string(),
            expected: "a non-zero finite start vector",
        });
    }
    v.column_mut(0).assign(&(&start / norm));
    // Kept Ritz vectors and the coupling rho of the next v to them.
    let mut kept = 0usize;
    let mut rho: Vec<f64> = Vec::new();
    let mut steps = 0usize;
    let mut scale = 0.0f64;
    // The products are written into these (no new N-vector per step).
    let mut p = Array2::<f64>::zeros((n, 1));
    let mut q = Array2::<f64>::zeros((n, 1));
    loop {
        let mut size = m;
        let mut exhausted = false;
        let mut beta_m = 0.0;
        for j in kept..m {
            // alpha_j u_j = A v_j - (beta_(j-1) u_(j-1) | U_kept rho).
            op.apply_into(v.slice(s![.., j..j + 1]), p.view_mut())?;
            steps += 1;
            if j == kept && kept > 0 {
                let r = Array2::from_shape_vec((kept, 1), rho.clone()).map_err(backend)?;
                p -= &u.slice(s![.., ..kept]).dot(&r);
                for (i, &ri) in rho.iter().enumerate() {
                    b[[i, j]] = ri;
                }
            } else if j > 0 {
                let bj = b[[j - 1, j]];
                p.column_mut(0).scaled_add(-bj, &u.column(j - 1));
            }
            if !one_sided || j == kept {
                reorthogonalise_block(&mut p, u.slice(s![.., ..j]));
            }
            let a = column_norm(&p);
            if !(a > BREAKDOWN * scale.max(f64::MIN_POSITIVE)) || !a.is_finite() {
                size = j;
                exhausted = true;
                break;
            }
            scale = scale.max(a);
            b[[j, j]] = a;
            u.column_mut(j)
                .zip_mut_with(&p.column(0), |uj, &pj| *uj = pj / a);
            // beta_j v_(j+1) = A^T u_j - alpha_j v_j.
            op.apply_t_into(u.slice(s![.., j..j + 1]), q.view_mut())?;
            q.column_mut(0).scaled_add(-a, &v.column(j));
            reorthogonalise_block(&mut q, v.slice(s![.., ..j + 1]));
            let bn = column_norm(&q);
            if j + 1 >= bound || !(bn > BREAKDOWN * scale) {
                size = j + 1;
                exhausted = true;
                break;
            }
            scale = scale.max(bn);
            v.column_mut(j + 1)
                .zip_mut_with(&q.column(0), |vj, &qj| *vj = qj / bn);
            if j + 1 < m {
                b[[j, j + 1]] = bn;
            } else {
                beta_m = bn;
            }
            if steps >= budget {
                size = j + 1;
                break;
            }
        }
        if size == 0 {
            return Ok(TopSingular {
                sigma: Vec::new(),
                residual: Vec::new(),
                steps,
                converged: true,
                exhausted: true,
                one_sided,
                left_lost: false,
            });
        }
        // The residual coupling of a run cut short by the budget is the last beta computed.
        // (It was stored as the superdiagonal entry b[size - 1, size], outside B_size.)
        if size < m && !exhausted {
            beta_m = b[[size - 1, size]];
        }
        let (pu, sigma, qv, idx) = ranked_svd(b.slice(s![..size, ..size]))?;
        let coupling = if exhausted { 0.0 } else { beta_m };
        let residual: Vec<f64> = idx
            .iter()
            .map(|&i| coupling * pu[(size - 1, i)].abs())
            .collect();
        let kk = k.min(size);
        let smax = sigma.first().copied().unwrap_or(0.0);
        let converged = exhausted
            || residual[..kk]
                .iter()
                .all(|&r| r <= options.extreme_tol * smax);
        if converged || steps >= budget || keep == 0 {
            if !one_sided {
                return Ok(TopSingular {
                    sigma: sigma[..kk].to_vec(),
                    residual: residual[..kk].to_vec(),
                    steps,
                    converged,
                    exhausted,
                    one_sided,
                    left_lost: false,
                });
            }
            let wanted = &idx[..kk];
            let explicit = explicit_residuals(
                op,
                v.slice(s![.., ..size]),
                u.slice(s![.., ..size]),
                (&qv, &pu),
                wanted,
                &sigma[..kk],
            )?;
            // kk products with A and kk with A^T: kk steps' worth.
            steps += kk;
            let met = explicit.iter().all(|&r| r <= options.extreme_tol * smax);
            return Ok(TopSingular {
                sigma: sigma[..kk].to_vec(),
                residual: explicit,
                steps,
                converged: met,
                exhausted,
                one_sided,
                left_lost: converged && !met,
            });
        }
        // Restart: V <- [V_m Q_keep, v_(m+1)], U <- U_m P_keep, B <- diag(Sigma_keep).
        let q_keep = Array2::from_shape_fn((size, keep), |(i, c)| qv[(i, idx[c])]);
        let p_keep = Array2::from_shape_fn((size, keep), |(i, c)| pu[(i, idx[c])]);
        let next = v.column(size).to_owned();
        rotate_basis(&mut v, size, &q_keep);
        v.column_mut(keep).assign(&next);
        rotate_basis(&mut u, size, &p_keep);
        b.fill(0.0);
        for c in 0..keep {
            b[[c, c]] = sigma[c];
        }
        rho = (0..keep).map(|c| beta_m * pu[(size - 1, idx[c])]).collect();
        kept = keep;
    }
}

/// Ritz triplets whose residuals [`explicit_residuals`] takes at a time (a fixed-width
/// block product of the sparse septuple; its four N x 4 blocks are 128 MB at N = 10^6).
const RITZ_GROUP: usize = 4;

/// The explicit residual r_c = sqrt(|A y - sigma_c x|^2 + |A^T x - sigma_c y|^2) of each
/// wanted Ritz triplet of a thick restart, with y = V q_c / |V q_c| and x = U p_c / |U p_c|
/// (q_c, p_c the columns `wanted[c]` of the projected matrix's right and left singular
/// vectors `qp`), `sigma[c]` its Ritz value. The vector [x; y] / sqrt 2 is a unit vector whose
/// residual for the augmented matrix [[0, A], [A^T, 0]] (eigenvalues +-sigma_i of A) is
/// r_c / sqrt 2, so some singular value of A lies within r_c / sqrt 2 of sigma_c, whatever the
/// orthogonality of U and V: the bound [`RitzValue::sigma_bound`] takes. Costs one product with
/// A and one with A^T per triplet, in blocks of [`RITZ_GROUP`]. Deterministic: every element
/// is the product of one row with one column, and the norms are summed row by row in order.
fn explicit_residuals(
    op: &dyn BlockOp,
    v: ArrayView2<'_, f64>,
    u: ArrayView2<'_, f64>,
    qp: (&faer::Mat<f64>, &faer::Mat<f64>),
    wanted: &[usize],
    sigma: &[f64],
) -> Result<Vec<f64>, SpectralError> {
    let size = v.ncols();
    let mut out = Vec::with_capacity(wanted.len());
    for (group, sig) in wanted.chunks(RITZ_GROUP).zip(sigma.chunks(RITZ_GROUP)) {
        let g = group.len();
        let pick = |m: &faer::Mat<f64>| Array2::from_shape_fn((size, g), |(i, c)| m[(i, group[c])]);
        let y = rows_times(v, &pick(qp.0));
        let x = rows_times(u, &pick(qp.1));
        let ay = op.apply(y.view())?;
        let atx = op.apply_t(x.view())?;
        let norms = |z: &Array2<f64>| {
            let mut n2 = vec![0.0f64; g];
            for row in z.rows() {
                for (t, &e) in n2.iter_mut().zip(row) {
                    *t += e * e;
                }
            }
            n2.into_iter().map(f64::sqrt).collect::<Vec<_>>()
        };
        let (ny, nx) = (norms(&y), norms(&x));
        let mut r2 = vec![0.0f64; g];
        for (((yr, xr), ayr), atxr) in y
            .rows()
            .into_iter()
            .zip(x.rows())
            .zip(ay.rows())
            .zip(atx.rows())
        {
            for c in 0..g {
                let (yc, xc) = (yr[c] / ny[c], xr[c] / nx[c]);
                let d1 = ayr[c] / ny[c] - sig[c] * xc;
                let d2 = atxr[c] / nx[c] - sig[c] * yc;
                r2[c] += d1 * d1 + d2 * d2;
            }
        }
        for (c, r) in r2.into_iter().enumerate() {
            // A Ritz vector of zero length (never from an orthonormal basis) bounds nothing.
            let ok = ny[c] > 0.0 && nx[c] > 0.0;
            out.push(if ok { r.sqrt() } else { f64::INFINITY });
        }
    }
    Ok(out)
}

/// X R for X (N x size, any layout) and R (size x g) as a standard-layout N x g array, over
/// fixed chunks of [`ROW_CHUNK`] rows in parallel: every element is one product of the same
/// row with the same column, the same bits for any thread count.
fn rows_times(x: ArrayView2<'_, f64>, r: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    let blocks: Vec<Array2<f64>> = (0..n)
        .step_by(ROW_CHUNK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|lo| x.slice(s![lo..(lo + ROW_CHUNK).min(n), ..]).dot(r))
        .collect();
    let mut out = Array2::<f64>::zeros((n, r.ncols()));
    for (c, block) in blocks.iter().enumerate() {
        let lo = c * ROW_CHUNK;
        out.slice_mut(s![lo..lo + block.nrows(), ..]).assign(block);
    }
    out
}

/// The SVD A = P diag(s) Q^T of a thick restart's projected matrix (size x size) with the
/// order of its singular values, largest first: (P, s ranked, Q, idx) with s ranked[c] =
/// s[idx[c]], the triplet of rank c in column idx[c] of P and Q. On a one-thread pool, as for
/// the bidiagonal: the same bits whatever the calling pool.
#[allow(clippy::type_complexity)]
pub(crate) fn ranked_svd(
    a: ArrayView2<'_, f64>,
) -> Result<(faer::Mat<f64>, Vec<f64>, faer::Mat<f64>, Vec<usize>), SpectralError> {
    let size = a.nrows();
    let mat = faer::Mat::<f64>::from_fn(size, a.ncols(), |i, j| a[[i, j]]);
    let (pu, sv, qv) =
        sequential(|| dense_svd(mat.as_ref(), false))?.map_err(|e| SpectralError::Backend {
            reason: format!("SVD of the {size} x {size} projected matrix did not converge: {e:?}"),
        })?;
    let mut idx: Vec<usize> = (0..sv.len()).collect();
    idx.sort_by(|&x, &y| sv[y].total_cmp(&sv[x]));
    let sigma = idx.iter().map(|&i| sv[i]).collect();
    Ok((pu, sigma, qv, idx))
}

/// X[:, ..keep] <- X[:, ..size] R for a column-major X (N x m) and R (size x keep), in place:
/// the thick restart's new basis. Done over fixed chunks of [`ROW_CHUNK`] rows (each row of
/// the result depends on that row of X alone), in windows of [`ROTATE_WINDOW`] chunks: the
/// chunks of a window are multiplied in parallel into row-major blocks, then written into the
/// columns of X in parallel. Memory beyond X: one window's N_w x keep block (not the whole
/// N x keep product). The same bits for any thread count: every element is one product of
/// the same row with the same column.
fn rotate_basis(x: &mut Array2<f64>, size: usize, r: &Array2<f64>) {
    let (n, keep) = (x.nrows(), r.ncols());
    if n == 0 || keep == 0 {
        return;
    }
    let window = ROW_CHUNK * ROTATE_WINDOW;
    for w_lo in (0..n).step_by(window) {
        let w_hi = (w_lo + window).min(n);
        let xv = x.view();
        let blocks: Vec<(usize, Array2<f64>)> = (w_lo..w_hi)
            .step_by(ROW_CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|lo| {
                let hi = (lo + ROW_CHUNK).min(w_hi);
                (lo, xv.slice(s![lo..hi, ..size]).dot(r))
            })
            .collect();
        let Some(xs) = x.as_slice_memory_order_mut() else {
            unreachable!("the bases of thick_restart are column-major")
        };
        xs.par_chunks_mut(n)
            .take(keep)
            .enumerate()
            .for_each(|(c, col)| {
                for (lo, block) in &blocks {
                    for (dst, &src) in col[*lo..*lo + block.nrows()]
                        .iter_mut()
                        .zip(block.column(c))
                    {
                        *dst = src;
                    }
                }
            });
    }
}

/// Chunks of rows per window of [`rotate_basis`] (a window of 4096 x 64 rows and 40 kept
/// columns holds 84 MB).
const ROTATE_WINDOW: usize = 64;

pub(crate) fn backend<E: std::fmt::Debug>(e: E) -> SpectralError {
    SpectralError::Backend {
        reason: format!("{e:?}"),
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
    /// The dimension of the unit eigenspace removed from the probes (None: not deflated).
    pub deflated: Option<usize>,
    /// The same probes' Gauss rules from the first half of their steps (ceil(m/2) of m; a
    /// probe whose Krylov space was exhausted keeps its exact rule): the coarse rules of
    /// [`quadrature_change`](Slq::quadrature_change).
    pub coarse: Quadrature,
    /// How many times the adaptive choice doubled the steps (0 with fixed steps).
    pub doublings: usize,
    /// Whether the probes were fully reorthogonalised ([`Reorthogonalisation`]).
    pub reorthogonalised: bool,
}

impl Slq {
    /// The change of the estimate of tr f(G) between the coarse rules (half the steps) and the
    /// full ones: the mean over probes of the paired difference of the two Gauss rules, with
    /// its standard error. It is an estimate of the quadrature bias of the coarse rules; for a
    /// smooth f, whose Gauss rules converge geometrically in the steps, that of the full rules
    /// is smaller, so a change below the statistical error says the steps suffice, and one
    /// above it says the full rules are biased by up to about that much. Zero for exact probes.
    pub fn quadrature_change(&self, f: &dyn Fn(f64) -> f64) -> septuple_thermo::Estimate {
        let fine = self.quadrature.per_probe(f);
        let coarse = self.coarse.per_probe(f);
        let d: Vec<f64> = fine.iter().zip(&coarse).map(|(a, b)| a - b).collect();
        septuple_thermo::Estimate::from_samples(&d)
    }
}

/// The Gauss rule of z^T f(G) z / |z|^2 from one Golub-Kahan bidiagonal: nodes sigma_j^2,
/// weights the squared first components of B's right singular vectors, scaled by 1 - `w1`,
/// and the deflated unit eigenspace's share `w1` at lambda = 1 exactly.
fn gauss_rule(bd: &Bidiagonal, w1: f64) -> Result<QuadratureRule, SpectralError> {
    let (sigma, _, first_v) = bidiagonal_svd(bd)?;
    let mut pairs: Vec<(f64, f64)> = sigma
        .iter()
        .zip(&first_v)
        .map(|(&s, &q)| (s * s, q * q * (1.0 - w1)))
        .collect();
    if w1 > 0.0 {
        pairs.push((1.0, w1));
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(QuadratureRule {
        nodes: pairs.iter().map(|p| p.0).collect(),
        weights: pairs.iter().map(|p| p.1).collect(),
        exact: bd.exhausted,
    })
}

/// One probe's Gauss rules: from all its steps and from the first half of them (the leading
/// ceil(m/2) x ceil(m/2) block of B is the bidiagonal of the shorter run from the same start).
fn probe_rules(
    bd: &Bidiagonal,
    w1: f64,
) -> Result<(QuadratureRule, QuadratureRule), SpectralError> {
    let full = gauss_rule(bd, w1)?;
    let m = bd.alpha.len();
    let coarse = if bd.exhausted || m < 2 {
        full.clone()
    } else {
        let h = m.div_ceil(2);
        gauss_rule(
            &Bidiagonal {
                alpha: bd.alpha[..h].to_vec(),
                beta: bd.beta[..h.min(bd.beta.len())].to_vec(),
                exhausted: false,
            },
            w1,
        )?
    };
    Ok((full, coarse))
}

/// The rules of probes `lo..hi` at `steps` steps: (full, coarse, steps taken) per probe.
type ProbeRules = Vec<(QuadratureRule, QuadratureRule, usize)>;

/// An orthonormal basis (n_in x d, input coordinates) of S^perp, the subspace on which M and
/// M^T act as the identity (docs/theory.md, "The 2r + 1 rank bound"): the null space of the
/// input columns A_(.,I) = f' w E_I of A = f'w (Eq. 5.4). Every vector of it is an
/// eigenvector of G (Eq. 5.6) with eigenvalue exactly 1; d = n_in - rank(A_(.,I)), and
/// k = N - d bounds the number of dynamical eigenvalues. Numerical rank: singular values
/// above max(n_in, rows) eps sigma_max. Errors if the N x n_in block exceeds `budget`.
pub fn unit_subspace<N: Network + ?Sized>(
    net: &N,
    fp: ArrayView1<'_, f64>,
    budget: septuple_core::DenseBudget,
) -> Result<Array2<f64>, SpectralError> {
    let n = net.n_neurons();
    let inputs = net.inputs();
    let n_in = inputs.len();
    // Generic weights: the numerical rank of the input columns is their structural rank, so
    // full structural rank means S^perp = {0} without the dense block and its SVD (which at
    // N = 10^5 and a thousand inputs cost more than the whole quadrature).
    if crate::structure::input_columns_structural_rank(net, fp)? == Some(n_in) {
        return Ok(Array2::zeros((n_in, 0)));
    }
    budget.check("f'w on the input columns", n, n_in)?;
    let mut e = Array2::<f64>::zeros((n, n_in));
    for (c, &i) in inputs.iter().enumerate() {
        e[[i, c]] = 1.0;
    }
    let mut b = net.weights_times(e.view())?;
    for (mut row, &f) in b.rows_mut().into_iter().zip(fp) {
        row *= f;
    }
    let rows: Vec<usize> = (0..n)
        .filter(|&i| b.row(i).iter().any(|&v| v.abs() > 0.0))
        .collect();
    let m = rows.len();
    if m == 0 {
        return Ok(Array2::eye(n_in));
    }
    // B_nz^T (n_in x m): its left singular vectors beyond the rank span the null space of B.
    let bt = faer::Mat::<f64>::from_fn(n_in, m, |i, j| b[[rows[j], i]]);
    // Only U is read: with m >= n_in the thin SVD has all of it (and no m x m V). faer's
    // default parallelism is the calling pool's thread count, and its blocked SVD splits work
    // by it: one thread, so the basis is the same bits whatever the pool.
    let (u, sv, _) =
        sequential(|| dense_svd(bt.as_ref(), m >= n_in))?.map_err(|e| SpectralError::Backend {
            reason: format!("SVD of the {n_in} x {m} input columns of f'w did not converge: {e:?}"),
        })?;
    let k = n_in.min(m);
    let smax = (0..k).map(|j| sv[j]).fold(0.0f64, f64::max);
    let tol = n_in.max(m) as f64 * f64::EPSILON * smax;
    let rank = (0..k).filter(|&j| sv[j] > tol).count();
    Ok(Array2::from_shape_fn((n_in, n_in - rank), |(i, c)| {
        u[(i, rank + c)]
    }))
}

/// What a monitored trace's tolerance is relative to ([`Monitor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reference {
    /// |tr f(G)|: for traces of one sign (log det(I + beta G), mu_2), where it is the
    /// relative error of the trace itself.
    Value,
    /// tr |f(G)|, the sum of the magnitudes of the terms: for traces whose terms cancel, such
    /// as mu_3 = tr (log G)^3 (Eq. 9.6), which vanishes when the log lambda are symmetric about
    /// 0 (exactly so for one layer of weights, where (f'w)^2 = 0; docs/theory.md). There no
    /// tolerance relative to |tr f| can be met; tr |f| is the scale of the terms whose sum is
    /// estimated, and equals |tr f| when they have one sign.
    Magnitude,
}

/// A trace tr f(G) that the adaptive rules of [`stochastic_lanczos_quadrature`] watch: the
/// stopping rule on the probes (`rel_tol`) and the choice of steps (`quadrature_tol`) hold its
/// standard error, and its change between the coarse and fine Gauss rules, to a fraction of the
/// [`Reference`] magnitude.
#[derive(Clone, Copy)]
pub struct Monitor<'a> {
    /// The function f of the trace tr f(G).
    pub f: &'a (dyn Fn(f64) -> f64 + Sync),
    /// What its tolerances are relative to.
    pub reference: Reference,
}

impl<'a> Monitor<'a> {
    /// tr f(G) with tolerances relative to |tr f(G)|.
    pub fn value(f: &'a (dyn Fn(f64) -> f64 + Sync)) -> Self {
        Monitor {
            f,
            reference: Reference::Value,
        }
    }

    /// tr f(G) with tolerances relative to tr |f(G)|.
    pub fn magnitude(f: &'a (dyn Fn(f64) -> f64 + Sync)) -> Self {
        Monitor {
            f,
            reference: Reference::Magnitude,
        }
    }

    /// The estimate of tr f(G) under `q` and its reference magnitude.
    fn trace_and_reference(&self, q: &Quadrature) -> (septuple_thermo::Estimate, f64) {
        let e = septuple_thermo::SpectralMeasure::trace(q, self.f);
        let r = match self.reference {
            Reference::Value => e.value.abs(),
            Reference::Magnitude => {
                septuple_thermo::SpectralMeasure::trace(q, &|l: f64| (self.f)(l).abs()).value
            }
        };
        (e, r)
    }
}

impl std::fmt::Debug for Monitor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// Stochastic Lanczos quadrature for traces tr f(G) of G (Eq. 5.6) at f' = `fp` (Eq. 5.4):
/// seeded Rademacher probes z_p (probe p from stream p of the seed), Golub-Kahan on M from
/// each, the Gauss rule of z^T f(G) z from the bidiagonal (nodes sigma_j^2, weights the squared
/// first components of B's right singular vectors). Probes run in batches of
/// `options.batch`; after each batch, once `min_probes` have run, it stops if every trace of
/// `monitor` has standard error <= `rel_tol` times its reference magnitude ([`Monitor`]), or at
/// `max_probes`.
///
/// Each probe also keeps the Gauss rule of its first ceil(m/2) steps ([`Slq::coarse`]), from
/// which [`Slq::quadrature_change`] estimates the quadrature bias the standard errors leave
/// out; with `options.quadrature_tol` > 0 the steps are chosen by it (see
/// [`MatrixFreeOptions::quadrature_tol`]; the first batch of probes decides, at most
/// log2(steps_limit / max_steps) + 1 times its cost is added).
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
    monitor: &[Monitor<'_>],
) -> Result<Slq, SpectralError> {
    options.check()?;
    let n = net.n_neurons();
    let bound = krylov_bound(n, net.inputs().len());
    let perp = if options.deflate {
        unit_subspace(net, fp, septuple_core::DenseBudget::default()).ok()
    } else {
        None
    };
    let inputs = net.inputs();
    let deflated = perp.as_ref().map(|q| q.ncols());
    let reorthogonalised = match options.reorthogonalisation {
        Reorthogonalisation::Full => true,
        Reorthogonalisation::None => false,
        Reorthogonalisation::Auto => {
            let most_steps = if options.quadrature_tol > 0.0 {
                options.steps_limit
            } else {
                options.max_steps
            }
            .min(bound);
            septuple_core::DenseBudget::default()
                .check("the vectors of a batch", n, 2 * most_steps * options.batch)
                .is_ok()
        }
    };
    let run_probes = |lo: usize, hi: usize, steps: usize| -> Result<ProbeRules, SpectralError> {
        let mut start = Array2::zeros((n, hi - lo));
        // |z_perp|^2 / N: the probe's weight at lambda = 1 exactly.
        let mut unit_weight = vec![0.0; hi - lo];
        for (c, p) in (lo..hi).enumerate() {
            let mut z = rademacher(n, options.seed, p as u64);
            if let Some(q) = &perp {
                let zi = Array1::from_iter(inputs.iter().map(|&i| z[i]));
                let h = q.t().dot(&zi);
                let zp = q.dot(&h);
                for (k, &i) in inputs.iter().enumerate() {
                    z[i] -= zp[k];
                }
                unit_weight[c] = h.dot(&h) / n as f64;
            }
            start.column_mut(c).assign(&z);
        }
        golub_kahan(net, fp, start, steps, bound, reorthogonalised)?
            .iter()
            .zip(&unit_weight)
            .map(|(bd, &w1)| {
                let (full, coarse) = probe_rules(bd, w1)?;
                Ok((full, coarse, bd.alpha.len()))
            })
            .collect()
    };
    let (steps, doublings, pilot) = choose_steps(n, options, bound, monitor, &run_probes)?;
    let mut rules: Vec<(QuadratureRule, QuadratureRule)> = Vec::new();
    let mut max_steps_taken = 0;
    for (full, coarse, m) in pilot {
        max_steps_taken = max_steps_taken.max(m);
        rules.push((full, coarse));
    }
    let n_threads = rayon::current_num_threads().max(1);
    let finished = |rules: Vec<(QuadratureRule, QuadratureRule)>, steps_taken: usize| {
        let (fine, coarse): (Vec<_>, Vec<_>) = rules.into_iter().unzip();
        finish(n, fine, coarse, steps_taken, bound, deflated, doublings).map(|s| Slq {
            reorthogonalised,
            ..s
        })
    };
    while rules.len() < options.max_probes {
        // A round of up to n_threads batches in parallel; the stopping rule looks at every
        // batch boundary in order, so extra batches of a round are discarded if it stops early.
        // The first round holds only the batches the rule needs before it may stop
        // (`min_probes`): a network whose variance is small stops there, and running a second
        // batch beside it would double the work of the whole estimate for nothing (at
        // N = 10^6 the block products use both threads by themselves). Which probes are run
        // and where the rule stops are the same either way.
        let first = rules.len();
        let wanted = if first == 0 {
            options.min_probes.div_ceil(options.batch).max(1)
        } else {
            n_threads
        };
        let n_batches = wanted
            .min(n_threads)
            .min(options.max_probes.div_ceil(options.batch));
        let batches: Vec<(usize, usize)> = (0..n_batches)
            .map(|t| {
                let lo = first + t * options.batch;
                (lo, (lo + options.batch).min(options.max_probes))
            })
            .filter(|(lo, hi)| lo < hi)
            .collect();
        let results: Vec<Result<ProbeRules, SpectralError>> = batches
            .par_iter()
            .map(|&(lo, hi)| run_probes(lo, hi, steps))
            .collect();
        for batch in results {
            for (full, coarse, m) in batch? {
                max_steps_taken = max_steps_taken.max(m);
                rules.push((full, coarse));
            }
            if rules.len() >= options.min_probes && rules.len() >= 2 && options.rel_tol > 0.0 {
                let fine: Vec<QuadratureRule> = rules.iter().map(|r| r.0.clone()).collect();
                let q = Quadrature::new(n, n as f64, fine)?;
                let done = monitor.iter().all(|m| {
                    let (e, reference) = m.trace_and_reference(&q);
                    e.stderr <= options.rel_tol * reference
                });
                if done {
                    return finished(rules, max_steps_taken);
                }
            }
        }
    }
    finished(rules, max_steps_taken)
}

/// The steps of every probe: `max_steps` (capped at the Krylov bound) with fixed steps; with
/// `quadrature_tol` > 0, doubled from there until the first batch of probes changes every
/// monitored trace by at most `quadrature_tol` times its reference magnitude between its coarse
/// and full rules, or `steps_limit` (or the bound) is reached. Returns the steps, the doublings, and the
/// first batch's rules at the chosen steps when they were computed to choose them (reused as
/// the first probes, which they are).
fn choose_steps(
    n: usize,
    options: &MatrixFreeOptions,
    bound: usize,
    monitor: &[Monitor<'_>],
    run_probes: &(dyn Fn(usize, usize, usize) -> Result<ProbeRules, SpectralError> + Sync),
) -> Result<(usize, usize, ProbeRules), SpectralError> {
    let mut steps = options.max_steps.min(bound);
    if options.quadrature_tol <= 0.0 {
        return Ok((steps, 0, Vec::new()));
    }
    let limit = options.steps_limit.min(bound);
    let pilot_probes = options.batch.clamp(2, options.max_probes);
    let mut doublings = 0;
    loop {
        let pilot = run_probes(0, pilot_probes, steps)?;
        if steps >= limit || pilot.iter().all(|r| r.0.exact) {
            return Ok((steps, doublings, pilot));
        }
        let fine = Quadrature::new(n, n as f64, pilot.iter().map(|r| r.0.clone()).collect())?;
        let coarse = Quadrature::new(n, n as f64, pilot.iter().map(|r| r.1.clone()).collect())?;
        let settled = monitor.iter().all(|m| {
            let (a, reference) = m.trace_and_reference(&fine);
            let b = septuple_thermo::SpectralMeasure::trace(&coarse, m.f).value;
            (a.value - b).abs() <= options.quadrature_tol * reference
        });
        if settled {
            return Ok((steps, doublings, pilot));
        }
        steps = (2 * steps).min(limit);
        doublings += 1;
    }
}

fn finish(
    n: usize,
    rules: Vec<QuadratureRule>,
    coarse: Vec<QuadratureRule>,
    steps: usize,
    bound: usize,
    deflated: Option<usize>,
    doublings: usize,
) -> Result<Slq, SpectralError> {
    let probes = rules.len();
    let exact_probes = rules.iter().filter(|r| r.exact).count();
    Ok(Slq {
        quadrature: Quadrature::new(n, n as f64, rules)?,
        coarse: Quadrature::new(n, n as f64, coarse)?,
        probes,
        steps,
        exact_probes,
        krylov_bound: bound,
        deflated,
        doublings,
        reorthogonalised: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools<T: Send>(f: impl Fn() -> T + Send + Sync) -> (T, T) {
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(&f)
        };
        (run(1), run(2))
    }

    /// A dense operator A = Q1 diag(s) Q2^T with the given singular values.
    struct DenseOp(Array2<f64>);

    impl BlockOp for DenseOp {
        fn apply(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
            Ok(self.0.dot(&v))
        }
        fn apply_t(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
            Ok(self.0.t().dot(&v))
        }
    }

    fn dense_op(s: &[f64], seed: u64) -> DenseOp {
        let n = s.len();
        let (q1, q2) = (basis(n, n, seed), basis(n, n, seed + 1));
        let mut a = q1.clone();
        for (mut col, &sk) in a.columns_mut().into_iter().zip(s) {
            col *= sk;
        }
        DenseOp(a.dot(&q2.t()))
    }

    /// The explicit residual of a triplet: ~0 for an exact one (u_i, v_i, sigma_i) taken
    /// through arbitrary (non-orthonormal) bases, and exactly sqrt 2 |delta| for sigma_i +
    /// delta, where the bound r / sqrt 2 is |delta|, the distance to sigma_i itself: both terms
    /// of r are there, with the scaling of the bound.
    #[test]
    fn explicit_residuals_measure_the_distance_of_an_offset_triplet() {
        let n = 40;
        let s: Vec<f64> = (0..n).map(|i| 10.0 * 0.8f64.powi(i as i32)).collect();
        let op = dense_op(&s, 3);
        let mat = faer::Mat::<f64>::from_fn(n, n, |i, j| op.0[[i, j]]);
        let (pu, sv, qv) = dense_svd(mat.as_ref(), false).unwrap();
        // Bases V = U = a scaled, non-orthogonal mix of the first 6 columns and q, p chosen
        // so that V q and U p are the singular vectors of the wanted values (times 3 and 0.5).
        let size = 6;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mix = Array2::from_shape_fn((size, size), |(i, j)| {
            if i == j {
                2.0
            } else {
                rng.random_range(-0.5..0.5)
            }
        });
        let inv = {
            let m = faer::Mat::<f64>::from_fn(size, size, |i, j| mix[[i, j]]);
            let inv = faer::linalg::solvers::DenseSolveCore::inverse(&m.partial_piv_lu());
            Array2::from_shape_fn((size, size), |(i, j)| inv[(i, j)])
        };
        let first = |m: &faer::Mat<f64>| Array2::from_shape_fn((n, size), |(i, j)| m[(i, j)]);
        let (vb, ub) = (first(&qv).dot(&mix), first(&pu).dot(&mix));
        // V q_c = 3 v_c and U p_c = 0.5 u_c for c < size.
        let q = faer::Mat::<f64>::from_fn(size, size, |i, j| 3.0 * inv[[i, j]]);
        let p = faer::Mat::<f64>::from_fn(size, size, |i, j| 0.5 * inv[[i, j]]);
        let wanted = [0, 2, 5];
        let exact: Vec<f64> = wanted.iter().map(|&c| sv[c]).collect();
        let r = explicit_residuals(&op, vb.view(), ub.view(), (&q, &p), &wanted, &exact).unwrap();
        for (c, &rc) in r.iter().enumerate() {
            // Rounding: a few eps |A| per element, over sqrt(n) elements.
            assert!(rc < 1e-12 * s[0], "exact triplet {c}: residual {rc:e}");
        }
        for delta in [1e-3, -0.25] {
            let off: Vec<f64> = exact.iter().map(|x| x + delta).collect();
            let r = explicit_residuals(&op, vb.view(), ub.view(), (&q, &p), &wanted, &off).unwrap();
            for &rc in &r {
                let bound = rc / std::f64::consts::SQRT_2;
                assert!(
                    (bound - delta.abs()).abs() < 1e-12 * s[0],
                    "offset {delta}: bound {bound}"
                );
            }
        }
    }

    /// One-sided runs on operators from well- to ill-conditioned (singular values 10 down to
    /// 10^-14): the explicit bounds hold against the dense SVD, the values agree with a
    /// two-sided run, and where the left vectors lose the orthogonality the recurrence's
    /// bounds assume the run says so (and `extreme_singular_values` would rerun it).
    #[test]
    fn one_sided_bounds_hold_from_well_to_ill_conditioned() {
        let n = 300;
        for (floor, seed) in [(1e-1, 1u64), (1e-8, 2), (1e-14, 3)] {
            let s: Vec<f64> = (0..n)
                .map(|i| 10.0 * (floor / 10.0f64).powf(i as f64 / (n - 1) as f64))
                .collect();
            let op = dense_op(&s, seed);
            let start = rademacher(n, seed, 0);
            let options = MatrixFreeOptions {
                n_extreme: 6,
                extreme_basis: 22,
                extreme_tol: 1e-10,
                ..Default::default()
            };
            let one = thick_restart(&op, start.view(), 6, n, &options, true).unwrap();
            let two = thick_restart(&op, start.view(), 6, n, &options, false).unwrap();
            assert!(one.converged && !one.left_lost, "floor {floor:e}");
            assert!(one.one_sided && !two.one_sided);
            for (c, (&sig, &res)) in one.sigma.iter().zip(&one.residual).enumerate() {
                let near = s
                    .iter()
                    .map(|t| (t - sig).abs())
                    .fold(f64::INFINITY, f64::min);
                // The dense singular values are exact here (the operator is built from them);
                // its products carry eps |A| rounding.
                assert!(
                    near <= res / std::f64::consts::SQRT_2 + 1e-13 * s[0],
                    "floor {floor:e}, value {c}: {sig} is {near:e} from the spectrum, bound {res:e}"
                );
                if one.converged {
                    assert!((sig - two.sigma[c]).abs() <= 1e-10 * s[0]);
                }
            }
        }
    }

    /// An operator whose transpose is not its product's (A^T + E, |E| ~ 1e-6 |A|), as a
    /// faulty network's M^T would be: the one-sided recurrence converges on its own
    /// assumptions, the explicit residuals see |E| and say the left side was lost, and the
    /// run is redone with both sides (steps added; the rerun's recurrence bounds are all the
    /// two-sided method can offer).
    #[test]
    fn explicit_residuals_catch_an_inconsistent_transpose() {
        struct Skewed(DenseOp, Array2<f64>);
        impl BlockOp for Skewed {
            fn apply(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
                self.0.apply(v)
            }
            fn apply_t(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, SpectralError> {
                Ok(self.0.apply_t(v)? + self.1.dot(&v))
            }
        }
        let n = 200;
        let s: Vec<f64> = (0..n).map(|i| 10.0 * 0.97f64.powi(i as i32)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let e = Array2::from_shape_fn((n, n), |_| 1e-6 * rng.random_range(-1.0..1.0));
        let op = Skewed(dense_op(&s, 7), e);
        let start = rademacher(n, 1, 0);
        let options = MatrixFreeOptions {
            n_extreme: 4,
            extreme_basis: 18,
            ..Default::default()
        };
        let one = thick_restart(&op, start.view(), 4, n, &options, true).unwrap();
        assert!(one.left_lost && !one.converged, "{:?}", one.residual);
        assert!(one.residual.iter().any(|&r| r > options.extreme_tol * 10.0));
        let run = single_vector_run(&op, start.view(), 4, n, &options, true).unwrap();
        assert!(!run.one_sided && run.steps > one.steps);
        let two = thick_restart(&op, start.view(), 4, n, &options, false).unwrap();
        assert_eq!(run.sigma, two.sigma);
        assert_eq!(run.steps, one.steps + two.steps);
    }

    /// An orthonormal N x j basis in column-major order (Gram-Schmidt of seeded columns).
    fn basis(n: usize, j: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut q = Array2::<f64>::zeros((n, j).f());
        for c in 0..j {
            let mut x = Array1::from_shape_fn(n, |_| rng.random_range(-1.0..1.0));
            for _ in 0..2 {
                for k in 0..c {
                    let h = q.column(k).dot(&x);
                    x.scaled_add(-h, &q.column(k));
                }
            }
            let norm = x.dot(&x).sqrt();
            q.column_mut(c).assign(&(x / norm));
        }
        q
    }

    /// The largest |q_k . x| / |x|.
    fn loss_of_orthogonality(q: &Array2<f64>, x: &Array2<f64>) -> f64 {
        let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt();
        q.t().dot(x).iter().fold(0.0f64, |m, v| m.max(v.abs())) / norm
    }

    /// A vector nearly orthogonal to the basis (one pass, the DGKS test passes) and one nearly
    /// in its span (cancellation: the repeated pass runs) both come out orthogonal to it at
    /// the level of rounding (eps sqrt(N) = 2.2e-16 x 71 here, with room), and the same bits
    /// on 1 and 2 threads (N = 5,000: five chunks of rows).
    #[test]
    fn gram_schmidt_sweeps_orthogonalise_and_are_deterministic() {
        let (n, j) = (5000, 12);
        let q = basis(n, j, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let noise = Array2::from_shape_fn((n, 1), |_| rng.random_range(-1.0..1.0));
        let coef = Array2::from_shape_fn((j, 1), |(k, _)| 1.0 + k as f64);
        let cases = [
            ("nearly orthogonal", noise.clone() + q.dot(&coef) * 1e-6),
            ("nearly in the span", q.dot(&coef) + noise * 1e-9),
        ];
        for (what, x0) in cases {
            let (a, b) = pools(|| {
                let mut x = x0.clone();
                reorthogonalise_block(&mut x, q.view());
                x
            });
            assert_eq!(a, b, "{what}: thread counts disagree");
            let loss = loss_of_orthogonality(&q, &a);
            assert!(loss < 1e-13, "{what}: |Q^T x| / |x| = {loss:e}");
            // What is left is x's component outside the span, untouched in direction.
            let before = loss_of_orthogonality(&q, &x0);
            assert!(before > 1e-7, "{what}: the case must start non-orthogonal");
        }
    }

    /// The sweep in groups of [`GS_GROUP`] vectors gives the bits of one vector at a time
    /// (a reference written here: each subtraction in k order, each product by
    /// dot_fixed_order), for bases with and without a partial group and a last chunk of rows
    /// that is not a multiple of 4.
    #[test]
    fn grouped_sweeps_are_the_one_vector_sweeps_bit_for_bit() {
        fn reference(cols: &[&[f64]], xs: &mut [f64], h: Option<&[f64]>) -> (Vec<f64>, f64) {
            let mut total = vec![0.0; cols.len() + 1];
            for (c, xc) in xs.chunks_mut(GS_ROWS).enumerate() {
                let (lo, len) = (c * GS_ROWS, xc.len());
                if let Some(h) = h {
                    for (q, &hk) in cols.iter().zip(h) {
                        for (xi, &qi) in xc.iter_mut().zip(&q[lo..lo + len]) {
                            *xi -= hk * qi;
                        }
                    }
                }
                for (t, q) in total.iter_mut().zip(cols) {
                    *t += dot_fixed_order(&q[lo..lo + len], xc);
                }
                total[cols.len()] += dot_fixed_order(xc, xc);
            }
            let norm2 = total.pop().unwrap();
            (total, norm2)
        }
        let n = 3 * GS_ROWS + 7;
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for j in [3, 4, 9] {
            let q: Vec<Vec<f64>> = (0..j)
                .map(|_| (0..n).map(|_| rng.random_range(-1.0..1.0)).collect())
                .collect();
            let cols: Vec<&[f64]> = q.iter().map(|v| v.as_slice()).collect();
            let x0: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let h: Vec<f64> = (0..j).map(|_| rng.random_range(-1.0..1.0)).collect();
            for coef in [None, Some(h.as_slice())] {
                let (mut a, mut b) = (x0.clone(), x0.clone());
                let got = gram_schmidt_sweep(&cols, &mut a, coef, true);
                let want = reference(&cols, &mut b, coef);
                assert_eq!(got, want, "j = {j}");
                assert_eq!(a, b, "j = {j}");
            }
        }
    }

    /// The in-place restart equals the product X[:, ..size] R (to rounding: the same sums,
    /// perhaps in another order of the product kernel's blocks), leaves the other columns
    /// alone, and gives the same bits on 1 and 2 threads, over more than one window of rows.
    #[test]
    fn rotate_basis_is_the_product_in_place() {
        let n = ROW_CHUNK * ROTATE_WINDOW + 3 * ROW_CHUNK + 17;
        let (m, size, keep) = (7, 6, 4);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x0 = Array2::from_shape_fn((n, m).f(), |_| rng.random_range(-1.0..1.0));
        let r = Array2::from_shape_fn((size, keep), |_| rng.random_range(-1.0..1.0));
        let want = x0.slice(s![.., ..size]).dot(&r);
        let (a, b) = pools(|| {
            let mut x = x0.clone();
            rotate_basis(&mut x, size, &r);
            x
        });
        assert_eq!(a, b);
        let err = (&a.slice(s![.., ..keep]) - &want)
            .iter()
            .fold(0.0f64, |e, v| e.max(v.abs()));
        // Each entry sums 6 products of numbers below 1 in magnitude: 6 eps at most.
        assert!(err <= 6.0 * f64::EPSILON, "max error {err:e}");
        assert_eq!(a.slice(s![.., keep..]), x0.slice(s![.., keep..]));
    }
}
