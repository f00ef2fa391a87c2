//! One call from any network and its data to the spectrum of G, its summary and (optionally)
//! the thermodynamics built on it.

use ndarray::{Array1, ArrayView2, Axis};
use septuple_core::Network;
use septuple_thermo::{ThermoPoint, ThermoSummary};
use serde::{Deserialize, Serialize};

use crate::backend::SpectrumBackend;
use crate::error::SpectralError;
use crate::operator::{
    eigen_components, g_operator_sample_averaged, spectrum, Method, SpectrumOptions,
};
use crate::summary::{SpectrumSummary, SummaryOptions};

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

/// The spectrum of a network's G and what is read from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// N.
    pub n_neurons: usize,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// The method used (never `Auto`).
    pub method: Method,
    /// The dimension of the problem that was solved.
    pub solved_dimension: usize,
    /// The mean state `<x>` of Eq. (5.3) G was linearised at.
    pub mean_state: Array1<f64>,
    /// All N eigenvalues lambda_i of G, ascending.
    pub eigenvalues: Vec<f64>,
    /// The summary.
    pub summary: SpectrumSummary,
    /// The thermodynamics, if asked for.
    pub thermo: Option<ThermoSummary>,
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
    let (eigenvalues, method, solved_dimension) = match options.linearisation {
        Linearisation::MeanState => {
            let s = spectrum(net, mean.view(), options.spectrum, backend)?;
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
        solved_dimension,
        mean_state: mean,
        eigenvalues,
        summary,
        thermo,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisReport {
    /// N.
    pub n_neurons: usize,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// The method used.
    pub method: Method,
    /// sum log lambda (Eqs. 7.7-7.8).
    pub sum_log_lambda: f64,
    /// The number of dynamical eigenvalues.
    pub n_dynamical: usize,
    /// The tolerance that defines them.
    pub dynamical_tolerance: f64,
    /// All log lambda, ascending.
    pub log_lambda: Vec<f64>,
    /// mu_k = Tr (log G)^k, k = 1..4.
    pub traces: [f64; 4],
    /// mu_2 (Eq. 9.5).
    pub mu2: f64,
    /// mu_3 (Eq. 9.6).
    pub mu3: f64,
    /// Mean of the dynamical log lambda.
    pub mean: f64,
    /// Variance of the dynamical log lambda.
    pub variance: f64,
    /// Skewness of the dynamical log lambda.
    pub skewness: f64,
    /// C_20 (Eq. 10.5), if the summary computed it.
    pub c20: Option<f64>,
    /// C_(N-20) (Eq. 10.5), if the summary computed it.
    pub c_all_but_20: Option<f64>,
    /// The gap's position in log lambda.
    pub gap_log_lambda: Option<f64>,
    /// The gap.
    pub gap: Option<crate::summary::Gap>,
    /// sum_i log(1 - beta m + beta lambda_i): the determinant in log Z of Eqs. (5.9)/(5.14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_det_i_plus_beta_g: Option<f64>,
    /// The Laplacian of F in the eigenvalues (Eq. 8.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub laplacian_f: Option<f64>,
    /// The thermodynamics, with `--beta`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thermo: Option<ThermoSummary>,
}

impl Analysis {
    /// The flat record with stable keys.
    pub fn report(&self) -> AnalysisReport {
        let s = &self.summary;
        AnalysisReport {
            n_neurons: self.n_neurons,
            n_samples: self.n_samples,
            method: self.method,
            sum_log_lambda: s.sum_log_lambda,
            n_dynamical: s.n_dynamical,
            dynamical_tolerance: s.dynamical_tolerance,
            log_lambda: s.log_lambda.clone(),
            traces: s.traces,
            mu2: s.mu2,
            mu3: s.mu3,
            mean: s.mean,
            variance: s.variance,
            skewness: s.skewness,
            c20: s.complexity(crate::summary::TopCount::Largest(20)),
            c_all_but_20: s.complexity(crate::summary::TopCount::AllBut(20)),
            gap_log_lambda: s.gap.map(|g| g.log_lambda),
            gap: s.gap,
            log_det_i_plus_beta_g: self.thermo.as_ref().map(|t| t.log_det_i_plus_beta_g),
            laplacian_f: self.thermo.as_ref().map(|t| t.laplacian_f),
            thermo: self.thermo,
        }
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
