//! One call from any network and its data to the spectrum of G, its summary and (optionally)
//! the thermodynamics built on it.

use ndarray::{Array1, ArrayView2, Axis};
use septuple_core::Network;
use septuple_thermo::{Estimate, ThermoEstimate, ThermoPoint, ThermoSummary};
use serde::{Deserialize, Serialize};

use crate::backend::SpectrumBackend;
use crate::error::SpectralError;
use crate::estimate::{EstimatedSummary, MatrixFreeInfo, ThermoChange};
use crate::matrix_free::{
    extreme_singular_values, stochastic_lanczos_quadrature, MatrixFreeOptions, Monitor,
};
use crate::operator::{
    choose_method, eigen_components, g_operator_sample_averaged, spectrum, Method, MethodChoice,
    SpectrumOptions,
};
use crate::summary::{SpectrumSummary, SummaryOptions, TopCount};

/// Where G is linearised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Linearisation {
    /// At the mean forward state (Eqs. 5.3-5.4), as in the paper.
    #[default]
    MeanState,
    /// G averaged over the samples' own states (our extension; symmetric eigenvalues of the
    /// averaged matrix, always dense).
    SampleAveraged,
}

/// The thermodynamics [`analyze`] adds to the spectrum.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThermoOptions {
    /// beta, m and the eigenvalue split.
    pub at: ThermoPoint,
    /// Include the components a_i of the mean state in G's eigenbasis (Eq. 5.12) for the full
    /// log Z of Eq. (5.11). They need a dense eigendecomposition of G (O(N^3), within the
    /// spectrum's memory budget).
    pub mean_components: bool,
}

/// Options of [`analyze`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisOptions {
    /// How the eigenvalues are computed.
    pub spectrum: SpectrumOptions,
    /// Where G is linearised.
    pub linearisation: Linearisation,
    /// What the summary reads from the spectrum.
    pub summary: SummaryOptions,
    /// Thermodynamics at one point, if asked for.
    pub thermo: Option<ThermoOptions>,
    /// Probes, steps, tolerance and seed of [`Method::MatrixFree`] (checked by [`analyze`]).
    #[serde(default)]
    pub matrix_free: MatrixFreeOptions,
}

impl AnalysisOptions {
    /// These options with another spectrum method (the default memory budget kept).
    pub fn with_method(mut self, method: Method) -> Self {
        self.spectrum.method = method;
        self
    }

    /// These options with the thermodynamics at `beta` and local-objective mass `mass`, the
    /// default eigenvalue split, and the mean components for the full log Z of Eq. (5.11).
    /// beta and m are checked by [`analyze`] (through septuple-thermo).
    pub fn with_thermo(mut self, beta: f64, mass: f64) -> Self {
        self.thermo = Some(ThermoOptions {
            at: ThermoPoint {
                mass,
                ..ThermoPoint::at_beta(beta)
            },
            mean_components: true,
        });
        self
    }
}

/// The spectrum of a network's G and what is read from it: exact (dense, structured) or
/// estimated (matrix-free: no spectrum, `summary` and `thermo` absent, `estimate` and
/// `thermo_estimate` present).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// N.
    pub n_neurons: usize,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// The method used (never `Auto`).
    pub method: Method,
    /// What `Auto` compared, when it was asked for.
    pub method_choice: Option<MethodChoice>,
    /// The dimension of the problem that was solved (for matrix-free, the Krylov bound).
    pub solved_dimension: usize,
    /// The mean state `<x>` of Eq. (5.3) G was linearised at.
    pub mean_state: Array1<f64>,
    /// All N eigenvalues lambda_i of G, ascending (empty for matrix-free).
    pub eigenvalues: Vec<f64>,
    /// The summary of the exact spectrum.
    pub summary: Option<SpectrumSummary>,
    /// The summary estimated matrix-free.
    pub estimate: Option<EstimatedSummary>,
    /// The thermodynamics of the exact spectrum, if asked for.
    pub thermo: Option<ThermoSummary>,
    /// The thermodynamics estimated matrix-free (F, U, S, log det, Laplacian with standard
    /// errors), if asked for.
    pub thermo_estimate: Option<ThermoEstimate>,
    /// How far the matrix-free log det and Laplacian move between half the steps and all.
    #[serde(default)]
    pub thermo_change: Option<ThermoChange>,
}

impl Analysis {
    /// The summary of the exact spectrum; an error naming the method for a matrix-free
    /// analysis (which has [`Analysis::estimate`] instead).
    pub fn exact_summary(&self) -> Result<&SpectrumSummary, SpectralError> {
        self.summary.as_ref().ok_or(SpectralError::Parameter {
            what: "method",
            value: self.method.to_string(),
            expected: "an exact method (dense or structured) for the full summary",
        })
    }
}

/// The spectrum of G (Eq. 5.6) of `net` linearised at the mean forward state of `inputs`
/// (S x n_in, Eq. 5.3), its summary ([`SpectrumSummary`]) and, with
/// [`AnalysisOptions::thermo`], the thermodynamics of Secs. 5-8 ([`ThermoSummary`]). One
/// forward pass over the data.
pub fn analyze<N: Network + ?Sized>(
    net: &N,
    inputs: ArrayView2<'_, f64>,
    options: &AnalysisOptions,
    backend: &dyn SpectrumBackend,
) -> Result<Analysis, SpectralError> {
    let n_in = net.inputs().len();
    if inputs.ncols() != n_in || inputs.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "inputs",
            got: inputs.shape().to_vec(),
            expected: vec![inputs.nrows().max(1), n_in],
        });
    }
    let states = net.forward_states(inputs)?;
    analyze_states(net, states.view(), options, backend)
}

/// [`analyze`] from forward states already computed (S x N, one row per sample: the states of
/// Eq. 2.9), so that a caller that needs them for other quantities propagates once.
pub fn analyze_states<N: Network + ?Sized>(
    net: &N,
    states: ArrayView2<'_, f64>,
    options: &AnalysisOptions,
    backend: &dyn SpectrumBackend,
) -> Result<Analysis, SpectralError> {
    let n = net.n_neurons();
    if states.ncols() != n || states.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "forward states",
            got: states.shape().to_vec(),
            expected: vec![states.nrows().max(1), n],
        });
    }
    let mean = states
        .mean_axis(Axis(0))
        .ok_or(SpectralError::NonFinite { what: "mean state" })?;
    let choice = match (options.linearisation, options.spectrum.method) {
        (Linearisation::MeanState, Method::Auto) => Some(choose_method(
            Method::Auto,
            n,
            net.inputs().len(),
            net.n_connections(),
            net.feedforward()?.depth,
            options.spectrum.budget,
            &options.matrix_free,
        )),
        _ => None,
    };
    let wanted = choice.map_or(options.spectrum.method, |c| c.method);
    if wanted == Method::MatrixFree {
        if options.linearisation == Linearisation::SampleAveraged {
            return Err(SpectralError::Parameter {
                what: "linearisation",
                value: "sample_averaged".into(),
                expected: "mean_state for the matrix-free method (it works on M = I - f'w)",
            });
        }
        return matrix_free(net, states.nrows(), mean, choice, options);
    }
    let spectrum_options = SpectrumOptions {
        method: wanted,
        ..options.spectrum
    };
    let (eigenvalues, method, solved_dimension) = match options.linearisation {
        Linearisation::MeanState => {
            let s = spectrum(net, mean.view(), spectrum_options, backend)?;
            (s.eigenvalues, s.method, s.solved_dimension)
        }
        Linearisation::SampleAveraged => {
            let g = g_operator_sample_averaged(net, states, options.spectrum.budget)?;
            (backend.symmetric_eigenvalues(g.view())?, Method::Dense, n)
        }
    };
    let summary = SpectrumSummary::with_options(&eigenvalues, &options.summary)?;
    let thermo = match options.thermo {
        None => None,
        Some(t) => {
            let a = if t.mean_components {
                let (lambda, a) =
                    eigen_components(net, mean.view(), options.spectrum.budget, backend)?;
                check_pairing(&eigenvalues, &lambda)?;
                Some(a)
            } else {
                None
            };
            Some(ThermoSummary::new(&eigenvalues, a.as_deref(), &t.at)?)
        }
    };
    Ok(Analysis {
        n_neurons: n,
        n_samples: states.nrows(),
        method,
        method_choice: choice,
        solved_dimension,
        mean_state: mean,
        eigenvalues,
        summary: Some(summary),
        estimate: None,
        thermo,
        thermo_estimate: None,
        thermo_change: None,
    })
}

/// The matrix-free analysis: SLQ for the traces (mu_2 and mu_3 of Eqs. 9.5-9.6 monitored by the
/// adaptive rules, mu_3 relative to tr |log G|^3 (`Reference::Magnitude`), and with
/// thermodynamics log det(I(1 - beta m) + beta G) and the Laplacian of Eq. 8.10), the
/// extreme eigenvalues for C_n (Eq. 10.5), [`ThermoEstimate`] for F, U, S.
fn matrix_free<N: Network + ?Sized>(
    net: &N,
    n_samples: usize,
    mean: Array1<f64>,
    choice: Option<MethodChoice>,
    options: &AnalysisOptions,
) -> Result<Analysis, SpectralError> {
    let mf = &options.matrix_free;
    mf.check()?;
    let fp = net.derivatives_at(mean.view())?;
    let mu2 = |l: f64| l.ln().powi(2);
    let mu3 = |l: f64| l.ln().powi(3);
    let thermo_fs = options.thermo.map(|t| {
        let (beta, m) = (t.at.beta, t.at.mass);
        let c = 1.0 - beta * m;
        (
            move |l: f64| (c + beta * l).ln(),
            move |l: f64| {
                let d = c + beta * l;
                -0.5 * beta / (d * d)
            },
        )
    });
    let mut monitor = vec![Monitor::value(&mu2), Monitor::magnitude(&mu3)];
    if let Some((log_det, lap)) = &thermo_fs {
        monitor.push(Monitor::value(log_det));
        monitor.push(Monitor::value(lap));
    }
    let slq = stochastic_lanczos_quadrature(net, fp.view(), mf, &monitor)?;
    let extremes = extreme_singular_values(net, fp.view(), mf)?;
    // The dynamical count from the structure of A (exact for generic weights), which the Gauss
    // rules of an indicator cannot give; a network whose w is only reachable densely beyond
    // the budget falls back to them, and the summary says which.
    let structural = match crate::structure::structural_dynamical_count(
        net,
        fp.view(),
        options.summary.dynamical_tolerance,
    ) {
        Ok(c) => Some(c),
        Err(SpectralError::Core(septuple_core::CoreError::TooLarge { .. })) => None,
        Err(e) => return Err(e),
    };
    let estimate = EstimatedSummary::new(&slq, extremes, &options.summary, mf.seed, structural);
    let thermo_estimate = match options.thermo {
        None => None,
        Some(t) => Some(ThermoEstimate::new(&slq.quadrature, &t.at)?),
    };
    let thermo_change = thermo_fs.as_ref().map(|(log_det, lap)| ThermoChange {
        log_det_i_plus_beta_g: slq.quadrature_change(log_det).value,
        laplacian_f: slq.quadrature_change(lap).value,
    });
    Ok(Analysis {
        n_neurons: net.n_neurons(),
        n_samples,
        method: Method::MatrixFree,
        method_choice: choice,
        solved_dimension: slq.krylov_bound,
        mean_state: mean,
        eigenvalues: Vec::new(),
        summary: None,
        estimate: Some(estimate),
        thermo: None,
        thermo_estimate,
        thermo_change,
    })
}

/// The components a_i come from an eigendecomposition of G formed explicitly, the eigenvalues
/// from the singular values of M; both ascending. They pair up when the two eigenvalue lists
/// agree to the accuracy of the explicit G (a few eps times lambda_max per eigenvalue); a
/// mismatch beyond that (1e-8 relative to lambda_max) would pair a_i with the wrong lambda_i.
/// Within a degenerate eigenspace only sum a_i^2 enters Eq. (5.11), which any basis gives.
fn check_pairing(svd: &[f64], eig: &[f64]) -> Result<(), SpectralError> {
    let scale = svd.iter().chain(eig).fold(0.0f64, |m, v| m.max(v.abs()));
    for (index, (a, b)) in svd.iter().zip(eig).enumerate() {
        if (a - b).abs() > 1e-8 * scale.max(1.0) {
            return Err(SpectralError::Backend {
                reason: format!(
                    "eigenvalue {index} of G is {a} from the singular values of M but {b} from the eigendecomposition of G; the mean components cannot be paired with the spectrum"
                ),
            });
        }
    }
    Ok(())
}

/// The flat record of an [`Analysis`] that reports (and the `analyze` command's JSON) print:
/// stable keys, one value each. C_20 and C_(N-20) of Eq. (10.5) are `c20` and `c_all_but_20`.
/// A matrix-free analysis has no `log_lambda`, `gap` or exact `thermo`; each estimated value
/// carries `<key>_stderr` (a standard error over probes), the complexities `<key>_error_bound`
/// (from residual bounds), and `thermo_estimate` holds F, U, S with their standard errors.
/// Exact analyses have none of these extra keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisReport {
    /// N.
    pub n_neurons: usize,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// The method used.
    pub method: Method,
    /// What `Auto` compared (with `--method auto`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub method_choice: Option<MethodChoice>,
    /// sum log lambda (Eqs. 7.7-7.8).
    pub sum_log_lambda: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum_log_lambda_stderr: Option<f64>,
    /// How far the matrix-free estimate of `sum_log_lambda` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sum_log_lambda_quadrature_change: Option<f64>,
    /// The number of dynamical eigenvalues (matrix-free: the estimate, rounded).
    pub n_dynamical: usize,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n_dynamical_stderr: Option<f64>,
    /// How far the matrix-free estimate of `n_dynamical` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n_dynamical_quadrature_change: Option<f64>,
    /// How the matrix-free `n_dynamical` was obtained: "structural rank of [A, A^T]" (exact
    /// for generic weights, an upper bound always) or "Gauss rules of the indicator".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub n_dynamical_method: Option<String>,
    /// The tolerance that defines them.
    pub dynamical_tolerance: f64,
    /// All log lambda, ascending (exact methods only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_lambda: Option<Vec<f64>>,
    /// mu_k = Tr (log G)^k, k = 1..4.
    pub traces: [f64; 4],
    /// Their standard errors (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub traces_stderr: Option<[f64; 4]>,
    /// mu_2 (Eq. 9.5).
    pub mu2: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mu2_stderr: Option<f64>,
    /// How far the matrix-free estimate of `mu2` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mu2_quadrature_change: Option<f64>,
    /// mu_3 (Eq. 9.6).
    pub mu3: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mu3_stderr: Option<f64>,
    /// How far the matrix-free estimate of `mu3` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mu3_quadrature_change: Option<f64>,
    /// Mean of the dynamical log lambda.
    pub mean: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_stderr: Option<f64>,
    /// How far the matrix-free estimate of `mean` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_quadrature_change: Option<f64>,
    /// Variance of the dynamical log lambda.
    pub variance: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variance_stderr: Option<f64>,
    /// How far the matrix-free estimate of `variance` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variance_quadrature_change: Option<f64>,
    /// Skewness of the dynamical log lambda.
    pub skewness: f64,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skewness_stderr: Option<f64>,
    /// How far the matrix-free estimate of `skewness` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skewness_quadrature_change: Option<f64>,
    /// C_20 (Eq. 10.5), if the summary computed it.
    pub c20: Option<f64>,
    /// A bound on its error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub c20_error_bound: Option<f64>,
    /// C_(N-20) (Eq. 10.5), if the summary computed it.
    pub c_all_but_20: Option<f64>,
    /// A bound on its error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub c_all_but_20_error_bound: Option<f64>,
    /// The gap's position in log lambda (exact methods only).
    pub gap_log_lambda: Option<f64>,
    /// The gap.
    pub gap: Option<crate::summary::Gap>,
    /// sum_i log(1 - beta m + beta lambda_i): the determinant in log Z of Eqs. (5.9)/(5.14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_det_i_plus_beta_g: Option<f64>,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_det_i_plus_beta_g_stderr: Option<f64>,
    /// How far the matrix-free estimate of `log_det_i_plus_beta_g` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub log_det_i_plus_beta_g_quadrature_change: Option<f64>,
    /// The Laplacian of F in the eigenvalues (Eq. 8.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laplacian_f: Option<f64>,
    /// Its standard error (matrix-free).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub laplacian_f_stderr: Option<f64>,
    /// How far the matrix-free estimate of `laplacian_f` moves between the Gauss rules of half the
    /// steps and of all of them: the quadrature bias the standard error leaves out, estimated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub laplacian_f_quadrature_change: Option<f64>,
    /// The thermodynamics of the exact spectrum, with `--beta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thermo: Option<ThermoSummary>,
    /// The thermodynamics estimated matrix-free, with `--beta`: log Z, F, U, S, log det and
    /// the Laplacian, each `{value, stderr, samples}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub thermo_estimate: Option<ThermoEstimate>,
    /// Probes, steps and convergence of the matrix-free estimate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub matrix_free: Option<MatrixFreeInfo>,
}

/// [`AnalysisReport::n_dynamical_method`] of a structural count.
pub(crate) const STRUCTURAL_COUNT: &str = "structural rank of [A, A^T]";
/// [`AnalysisReport::n_dynamical_method`] of a count by quadrature.
pub(crate) const QUADRATURE_COUNT: &str = "Gauss rules of the indicator";

impl AnalysisReport {
    /// Whether every matrix-free trace that has both moves by at most its standard error
    /// between half the steps and all of them (true for exact analyses): the steps suffice
    /// for the error bars to stand for the whole error. The dynamical count, an indicator
    /// whose Gauss rules do not converge that way, is left out.
    pub fn quadrature_settled(&self) -> bool {
        [
            (
                self.sum_log_lambda_quadrature_change,
                self.sum_log_lambda_stderr,
            ),
            (self.mu2_quadrature_change, self.mu2_stderr),
            (self.mu3_quadrature_change, self.mu3_stderr),
            (
                self.log_det_i_plus_beta_g_quadrature_change,
                self.log_det_i_plus_beta_g_stderr,
            ),
            (self.laplacian_f_quadrature_change, self.laplacian_f_stderr),
        ]
        .iter()
        .all(|&(c, e)| match (c, e) {
            (Some(c), Some(e)) => c.abs() <= e,
            _ => true,
        })
    }
}

impl Analysis {
    /// The flat record with stable keys.
    pub fn report(&self) -> AnalysisReport {
        let mut r = AnalysisReport {
            n_neurons: self.n_neurons,
            n_samples: self.n_samples,
            method: self.method,
            method_choice: self.method_choice,
            sum_log_lambda: 0.0,
            sum_log_lambda_stderr: None,
            sum_log_lambda_quadrature_change: None,
            n_dynamical: 0,
            n_dynamical_stderr: None,
            n_dynamical_quadrature_change: None,
            n_dynamical_method: None,
            dynamical_tolerance: 0.0,
            log_lambda: None,
            traces: [0.0; 4],
            traces_stderr: None,
            mu2: 0.0,
            mu2_stderr: None,
            mu2_quadrature_change: None,
            mu3: 0.0,
            mu3_stderr: None,
            mu3_quadrature_change: None,
            mean: 0.0,
            mean_stderr: None,
            mean_quadrature_change: None,
            variance: 0.0,
            variance_stderr: None,
            variance_quadrature_change: None,
            skewness: 0.0,
            skewness_stderr: None,
            skewness_quadrature_change: None,
            c20: None,
            c20_error_bound: None,
            c_all_but_20: None,
            c_all_but_20_error_bound: None,
            gap_log_lambda: None,
            gap: None,
            log_det_i_plus_beta_g: self.thermo.as_ref().map(|t| t.log_det_i_plus_beta_g),
            log_det_i_plus_beta_g_stderr: None,
            log_det_i_plus_beta_g_quadrature_change: None,
            laplacian_f: self.thermo.as_ref().map(|t| t.laplacian_f),
            laplacian_f_stderr: None,
            laplacian_f_quadrature_change: None,
            thermo: self.thermo,
            thermo_estimate: self.thermo_estimate,
            matrix_free: None,
        };
        if let Some(s) = &self.summary {
            r.sum_log_lambda = s.sum_log_lambda;
            r.n_dynamical = s.n_dynamical;
            r.dynamical_tolerance = s.dynamical_tolerance;
            r.log_lambda = Some(s.log_lambda.clone());
            r.traces = s.traces;
            r.mu2 = s.mu2;
            r.mu3 = s.mu3;
            r.mean = s.mean;
            r.variance = s.variance;
            r.skewness = s.skewness;
            r.c20 = s.complexity(TopCount::Largest(20));
            r.c_all_but_20 = s.complexity(TopCount::AllBut(20));
            r.gap_log_lambda = s.gap.map(|g| g.log_lambda);
            r.gap = s.gap;
        }
        if let Some(e) = &self.estimate {
            let v = |x: Estimate| (x.value, Some(x.stderr));
            (r.sum_log_lambda, r.sum_log_lambda_stderr) = v(e.sum_log_lambda);
            r.n_dynamical = e.n_dynamical.value.round().max(0.0) as usize;
            if e.n_dynamical_structural.is_some() {
                r.n_dynamical_method = Some(STRUCTURAL_COUNT.into());
            } else {
                r.n_dynamical_stderr = Some(e.n_dynamical.stderr);
                r.n_dynamical_method = Some(QUADRATURE_COUNT.into());
            }
            r.dynamical_tolerance = e.dynamical_tolerance;
            r.traces = e.traces.map(|t| t.value);
            r.traces_stderr = Some(e.traces.map(|t| t.stderr));
            (r.mu2, r.mu2_stderr) = v(e.mu2());
            (r.mu3, r.mu3_stderr) = v(e.mu3());
            (r.mean, r.mean_stderr) = v(e.mean);
            (r.variance, r.variance_stderr) = v(e.variance);
            (r.skewness, r.skewness_stderr) = v(e.skewness);
            let c20 = e.complexity(TopCount::Largest(20));
            r.c20 = c20.map(|c| c.value);
            r.c20_error_bound = c20.map(|c| c.error_bound);
            let call = e.complexity(TopCount::AllBut(20));
            r.c_all_but_20 = call.map(|c| c.value);
            r.c_all_but_20_error_bound = call.map(|c| c.error_bound);
            r.matrix_free = Some(e.info);
            let c = &e.quadrature_change;
            r.sum_log_lambda_quadrature_change = Some(c.sum_log_lambda);
            if e.n_dynamical_structural.is_none() {
                r.n_dynamical_quadrature_change = Some(c.n_dynamical);
            }
            r.mu2_quadrature_change = Some(c.mu2());
            r.mu3_quadrature_change = Some(c.mu3());
            r.mean_quadrature_change = Some(c.mean);
            r.variance_quadrature_change = Some(c.variance);
            r.skewness_quadrature_change = Some(c.skewness);
        }
        if let Some(c) = &self.thermo_change {
            r.log_det_i_plus_beta_g_quadrature_change = Some(c.log_det_i_plus_beta_g);
            r.laplacian_f_quadrature_change = Some(c.laplacian_f);
        }
        if let Some(t) = &self.thermo_estimate {
            r.log_det_i_plus_beta_g = Some(t.log_det_i_plus_beta_g.value);
            r.log_det_i_plus_beta_g_stderr = Some(t.log_det_i_plus_beta_g.stderr);
            r.laplacian_f = Some(t.laplacian_f.value);
            r.laplacian_f_stderr = Some(t.laplacian_f.stderr);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_flags() {
        let o = AnalysisOptions::default()
            .with_method(Method::Dense)
            .with_thermo(0.5, 0.25);
        assert_eq!(o.spectrum.method, Method::Dense);
        assert_eq!(o.spectrum.budget, SpectrumOptions::default().budget);
        let t = o.thermo.unwrap();
        assert_eq!((t.at.beta, t.at.mass), (0.5, 0.25));
        assert!(t.mean_components);
        assert_eq!(o.linearisation, Linearisation::MeanState);
    }
}
