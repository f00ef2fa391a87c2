//! One call from a trained layered network and its data to the summary of its spectrum.

use ndarray::ArrayView2;
use septuple_core::{Activation, Layered};
use serde::{Deserialize, Serialize};

use crate::backend::SpectrumBackend;
use crate::error::SpectralError;
use crate::operator::{g_operator_sample_averaged, spectrum, Method};
use crate::summary::SpectrumSummary;

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

/// Options of [`analyze`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzeOptions {
    /// How the eigenvalues are computed.
    pub method: Method,
    /// Where G is linearised.
    pub linearisation: Linearisation,
}

/// The spectrum of a network's G and what is read from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Layer sizes.
    pub layers: Vec<usize>,
    /// Samples the mean state was averaged over.
    pub n_samples: usize,
    /// The method used.
    pub method: Method,
    /// The summary.
    pub summary: SpectrumSummary,
}

/// The spectrum of G (Eq. 5.6) of `net` linearised at the mean forward state of `inputs`
/// (S x n_0, Eq. 5.3), summarised ([`SpectrumSummary`]).
pub fn analyze<A: Activation>(
    net: &Layered<A>,
    inputs: ArrayView2<'_, f64>,
    options: AnalyzeOptions,
    backend: &dyn SpectrumBackend,
) -> Result<Analysis, SpectralError> {
    let n_in = net.layer_sizes()[0];
    if inputs.ncols() != n_in || inputs.nrows() == 0 {
        return Err(SpectralError::Shape {
            what: "inputs",
            got: inputs.shape().to_vec(),
            expected: vec![inputs.nrows().max(1), n_in],
        });
    }
    let sep = net.to_septuple();
    let (eigenvalues, method) = match options.linearisation {
        Linearisation::MeanState => {
            let mean = net.mean_state(inputs)?;
            let s = spectrum(&sep, mean.view(), options.method, backend)?;
            (s.eigenvalues, s.method)
        }
        Linearisation::SampleAveraged => {
            let states = net.states(inputs)?;
            let g = g_operator_sample_averaged(&sep, states.view())?;
            (backend.symmetric_eigenvalues(g.view())?, Method::Dense)
        }
    };
    Ok(Analysis {
        layers: net.layer_sizes().to_vec(),
        n_samples: inputs.nrows(),
        method,
        summary: SpectrumSummary::new(&eigenvalues)?,
    })
}
