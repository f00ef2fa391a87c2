//! What Secs. 7-10 read from the spectrum of G, estimated matrix-free: the traces and moments
//! by stochastic Lanczos quadrature with standard errors, the complexities C_n of Eq. (10.5)
//! from the extreme eigenvalues with error bounds.

use septuple_thermo::{Estimate, Quadrature, SpectralMeasure};
use serde::{Deserialize, Serialize};

use crate::matrix_free::{ExtremeSpectrum, Slq};
use crate::structure::StructuralCount;
use crate::summary::{SummaryOptions, TopCount};

/// One complexity C_n of Eq. (10.5) from Ritz values: a value and a bound on its error (from
/// the residual bounds of the eigenvalues it sums; not a standard error).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundedComplexity {
    /// Which eigenvalues were summed.
    pub count: TopCount,
    /// n: how many of the largest log lambda.
    pub n: usize,
    /// C_n.
    pub value: f64,
    /// |C_n - C_n(true)| <= this, if each Ritz value is the estimate of the eigenvalue of its
    /// rank (see [`extreme_singular_values`](crate::extreme_singular_values)).
    pub error_bound: f64,
}

/// How the matrix-free estimate was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixFreeInfo {
    /// Probe vectors of the quadrature.
    pub probes: usize,
    /// The most Golub-Kahan steps (quadrature nodes) of one probe.
    pub lanczos_steps: usize,
    /// Probes whose Krylov space was exhausted (their quadrature is exact).
    pub exact_probes: usize,
    /// The Krylov dimension bound min(2r + 1, N).
    pub krylov_bound: usize,
    /// The seed of the probes and of the start vector.
    pub seed: u64,
    /// The dimension of the unit eigenspace removed from the probes (None: not deflated).
    pub deflated: Option<usize>,
    /// Golub-Kahan steps of the extreme eigenvalues (both ends).
    pub extreme_steps: usize,
    /// Whether the largest eigenvalues met their residual tolerance.
    pub largest_converged: bool,
    /// Whether the smallest eigenvalues met their residual tolerance.
    pub smallest_converged: bool,
    /// How many times the adaptive choice doubled the quadrature's steps (0 with fixed
    /// steps; see [`MatrixFreeOptions::quadrature_tol`](crate::MatrixFreeOptions)).
    #[serde(default)]
    pub doublings: usize,
    /// Whether the quadrature's probes were fully reorthogonalised
    /// ([`Reorthogonalisation`](crate::Reorthogonalisation)).
    #[serde(default = "yes")]
    pub reorthogonalised: bool,
    /// Whether the extreme eigenvalues came from one-sided runs, their bounds explicit
    /// residuals ([`Sides`](crate::Sides), [`ExtremeSpectrum::one_sided`](crate::ExtremeSpectrum)).
    #[serde(default)]
    pub extreme_one_sided: bool,
}

fn yes() -> bool {
    true
}

/// How far each estimate of [`EstimatedSummary`] moves between the Gauss rules of the first
/// half of the steps and of all of them ([`Slq::quadrature_change`]): an estimate of the
/// quadrature bias that the standard errors leave out (it estimates the coarse rules' bias,
/// which exceeds the full rules' for the smooth functions; for the indicator of the dynamical
/// count it need not). Zero when every probe's Krylov space was exhausted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuadratureChange {
    /// Of sum log lambda.
    pub sum_log_lambda: f64,
    /// Of the dynamical count.
    pub n_dynamical: f64,
    /// Of mu_k, k = 1..4.
    pub traces: [f64; 4],
    /// Of the mean of the dynamical log lambda.
    pub mean: f64,
    /// Of their variance.
    pub variance: f64,
    /// Of their skewness.
    pub skewness: f64,
}

impl QuadratureChange {
    /// The change of mu_2.
    pub fn mu2(&self) -> f64 {
        self.traces[1]
    }

    /// The change of mu_3.
    pub fn mu3(&self) -> f64 {
        self.traces[2]
    }
}

/// How far the matrix-free thermodynamics move between half the steps and all of them
/// ([`Slq::quadrature_change`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThermoChange {
    /// Of log det(I (1 - beta m) + beta G) (Eq. 5.9).
    pub log_det_i_plus_beta_g: f64,
    /// Of the Laplacian DeltaF (Eqs. 8.10, 9.1).
    pub laplacian_f: f64,
}

/// The four traces the moments of the dynamical log lambda are made of
/// ([`dynamical_moments`]): with a count `known` (the structural one), log^k lambda over all
/// eigenvalues (the unit ones add 0) and the constant known / N, whose trace is `known` exactly;
/// without, the indicator of |log lambda| > `tol` times log^k lambda, and the indicator.
fn moment_functions(
    n: usize,
    tol: f64,
    known: Option<usize>,
) -> [Box<dyn Fn(f64) -> f64 + Sync>; 4] {
    match known {
        Some(k) => {
            let c = k as f64 / n as f64;
            [
                Box::new(|l: f64| l.ln()),
                Box::new(|l: f64| l.ln().powi(2)),
                Box::new(|l: f64| l.ln().powi(3)),
                Box::new(move |_| c),
            ]
        }
        None => {
            let ind = move |l: f64| if l.ln().abs() > tol { 1.0 } else { 0.0 };
            [
                Box::new(move |l: f64| ind(l) * l.ln()),
                Box::new(move |l: f64| ind(l) * l.ln().powi(2)),
                Box::new(move |l: f64| ind(l) * l.ln().powi(3)),
                Box::new(ind),
            ]
        }
    }
}

/// Point values of the traced quantities from one set of rules: sum log lambda, the dynamical
/// count, mu_1..mu_4, and the mean, variance and skewness of the dynamical log lambda.
fn point_values(q: &Quadrature, tol: f64, known: Option<usize>) -> (f64, f64, [f64; 4], [f64; 3]) {
    let t = |f: &dyn Fn(f64) -> f64| q.trace(f).value;
    let fs = moment_functions(q.dimension(), tol, known);
    let x = [t(&fs[0]), t(&fs[1]), t(&fs[2]), t(&fs[3])];
    (
        t(&|l: f64| l.ln()),
        x[3],
        [1, 2, 3, 4].map(|k| t(&move |l: f64| l.ln().powi(k))),
        dynamical_moments(&x),
    )
}

/// Mean, variance (population) and skewness of the dynamical log lambda from the traces of
/// 1(dyn) log lambda, 1(dyn) log^2 lambda, 1(dyn) log^3 lambda and 1(dyn); zeros without
/// dynamical eigenvalues.
fn dynamical_moments(x: &[f64]) -> [f64; 3] {
    let nd = x[3];
    if !(nd > 0.0) {
        return [0.0; 3];
    }
    let mean = x[0] / nd;
    let var = x[1] / nd - mean * mean;
    let m3 = x[2] / nd - 3.0 * mean * x[1] / nd + 2.0 * mean.powi(3);
    let skew = if var > 0.0 { m3 / var.powf(1.5) } else { 0.0 };
    [mean, var, skew]
}

/// The estimates of [`SpectrumSummary`](crate::SpectrumSummary)'s fields, each with its
/// standard error over probes (traces: the spread of Hutchinson's estimator; ratios: the
/// delete-one jackknife). The Gauss rules' bias is not in the standard errors; it vanishes for
/// probes whose Krylov space is exhausted (docs/theory.md, "Estimators").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimatedSummary {
    /// N.
    pub n_neurons: usize,
    /// tr log G = log det G, zero for a feedforward network (Eqs. 7.7-7.8): a check of the
    /// estimator, whose bars must cover 0.
    pub sum_log_lambda: Estimate,
    /// The tolerance that defines the dynamical eigenvalues.
    pub dynamical_tolerance: f64,
    /// The number of dynamical eigenvalues (|log lambda| > tolerance). With
    /// `n_dynamical_structural`, that count, exact (standard error 0): the structural rank of
    /// [A, A^T]. Without, tr 1(|log G| > tolerance) by the Gauss rules: an indicator, so its
    /// rules count the Ritz nodes near 1 as dynamical unless the Krylov space is exhausted (with
    /// deflation the unit eigenspace S^perp of the input columns enters exactly at lambda = 1).
    pub n_dynamical: Estimate,
    /// The structural count behind `n_dynamical` and the moments of the dynamical log lambda
    /// ([`structural_dynamical_count`](crate::structural_dynamical_count)); None: they come from
    /// the indicator's Gauss rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_dynamical_structural: Option<StructuralCount>,
    /// mu_k = Tr (log G)^k, k = 1..4 (Eqs. 9.5, 9.6).
    pub traces: [Estimate; 4],
    /// Mean of the dynamical log lambda.
    pub mean: Estimate,
    /// Variance of the dynamical log lambda (population).
    pub variance: Estimate,
    /// Skewness of the dynamical log lambda.
    pub skewness: Estimate,
    /// The complexities of the options that the extreme eigenvalues reach.
    pub complexities: Vec<BoundedComplexity>,
    /// The extreme eigenvalues themselves.
    pub extremes: ExtremeSpectrum,
    /// How far each estimate moves between half the steps and all of them.
    pub quadrature_change: QuadratureChange,
    /// How the estimate was obtained.
    pub info: MatrixFreeInfo,
}

impl EstimatedSummary {
    /// The estimates from a quadrature (`slq`) and the extreme eigenvalues (`extremes`) of the
    /// same G: traces mu_k of Eqs. (9.5)-(9.6), the moments of the dynamical log lambda, and
    /// C_n of Eq. (10.5). `TopCount::Largest(n)` needs the n largest eigenvalues;
    /// `TopCount::AllBut(k)`, C_(N-k), needs the k smallest, because the sum of all log lambda is
    /// exactly 0 for a feedforward network (Eqs. 7.7-7.8): the N - k largest sum to minus the k
    /// smallest. Complexities the extremes do not reach are left out.
    ///
    /// With a `structural` count (of the same G, at `options.dynamical_tolerance`), the
    /// dynamical count is that count and the moments of the dynamical log lambda are mu_k over
    /// it: the unit eigenvalues add nothing to mu_k, so no indicator is integrated.
    pub fn new(
        slq: &Slq,
        extremes: ExtremeSpectrum,
        options: &SummaryOptions,
        seed: u64,
        structural: Option<StructuralCount>,
    ) -> Self {
        let q: &Quadrature = &slq.quadrature;
        let n = q.dimension();
        let tol = options.dynamical_tolerance;
        let known = structural.map(|s| s.n_dynamical);
        let ln = |l: f64| l.ln();
        let traces = [1, 2, 3, 4].map(|k| q.trace(&move |l: f64| l.ln().powi(k)));
        let mf = moment_functions(n, tol, known);
        let fs: [&dyn Fn(f64) -> f64; 4] = [&mf[0], &mf[1], &mf[2], &mf[3]];
        let moments = dynamical_moments;
        let mean = q.jackknife(&fs, &|x| moments(x)[0]);
        let variance = q.jackknife(&fs, &|x| moments(x)[1]);
        let skewness = q.jackknife(&fs, &|x| moments(x)[2]);
        let c = 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        // |log lambda - log lambda'| <= b / (lambda - b) for |lambda - lambda'| <= b < lambda.
        let log_err = |r: &crate::matrix_free::RitzValue| {
            if r.lambda > r.lambda_bound {
                r.lambda_bound / (r.lambda - r.lambda_bound)
            } else {
                f64::INFINITY
            }
        };
        let complexities = options
            .complexities
            .iter()
            .filter_map(|&count| {
                let k = count.resolve(n);
                // An exhausted Krylov space lists each distinct eigenvalue once (the unit ones
                // as one): the values are ranks only while they stay off 1.
                let off_one = |r: Option<&crate::matrix_free::RitzValue>| {
                    !extremes.exhausted || r.is_some_and(|r| r.lambda.ln().abs() > tol)
                };
                match count {
                    TopCount::Largest(_)
                        if k <= extremes.largest.len()
                            && (k == 0 || off_one(extremes.largest.get(k - 1))) =>
                    {
                        let top = &extremes.largest[..k];
                        Some(BoundedComplexity {
                            count,
                            n: k,
                            value: -0.5 * top.iter().map(|r| r.lambda.ln()).sum::<f64>() + c,
                            error_bound: 0.5 * top.iter().map(log_err).sum::<f64>(),
                        })
                    }
                    TopCount::AllBut(j)
                        if j <= extremes.smallest.len()
                            && j < n
                            && (j == 0 || off_one(extremes.smallest.get(j - 1))) =>
                    {
                        let low = &extremes.smallest[..j];
                        Some(BoundedComplexity {
                            count,
                            n: k,
                            value: 0.5 * low.iter().map(|r| r.lambda.ln()).sum::<f64>() + c,
                            error_bound: 0.5 * low.iter().map(log_err).sum::<f64>(),
                        })
                    }
                    _ => None,
                }
            })
            .collect();
        let info = MatrixFreeInfo {
            probes: slq.probes,
            lanczos_steps: slq.steps,
            exact_probes: slq.exact_probes,
            krylov_bound: slq.krylov_bound,
            deflated: slq.deflated,
            seed,
            extreme_steps: extremes.steps,
            largest_converged: extremes.largest_converged,
            smallest_converged: extremes.smallest_converged,
            doublings: slq.doublings,
            reorthogonalised: slq.reorthogonalised,
            extreme_one_sided: extremes.one_sided,
        };
        let (fine, coarse) = (
            point_values(q, tol, known),
            point_values(&slq.coarse, tol, known),
        );
        let quadrature_change = QuadratureChange {
            sum_log_lambda: fine.0 - coarse.0,
            n_dynamical: fine.1 - coarse.1,
            traces: [0, 1, 2, 3].map(|k| fine.2[k] - coarse.2[k]),
            mean: fine.3[0] - coarse.3[0],
            variance: fine.3[1] - coarse.3[1],
            skewness: fine.3[2] - coarse.3[2],
        };
        EstimatedSummary {
            n_neurons: n,
            quadrature_change,
            sum_log_lambda: q.trace(&ln),
            dynamical_tolerance: tol,
            n_dynamical: match known {
                Some(k) => Estimate::exact(k as f64),
                None => q.trace(&mf[3]),
            },
            n_dynamical_structural: structural,
            traces,
            mean,
            variance,
            skewness,
            complexities,
            extremes,
            info,
        }
    }

    /// mu_2 = Tr (log G)^2 (Eq. 9.5).
    pub fn mu2(&self) -> Estimate {
        self.traces[1]
    }

    /// mu_3 = Tr (log G)^3 (Eq. 9.6).
    pub fn mu3(&self) -> Estimate {
        self.traces[2]
    }

    /// The complexity C_n of Eq. (10.5) for `count`, if the extremes reach it.
    pub fn complexity(&self, count: TopCount) -> Option<BoundedComplexity> {
        self.complexities.iter().find(|c| c.count == count).copied()
    }
}
