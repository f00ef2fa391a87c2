//! The spectrum of G of a network loaded from a file, over samples of inputs: the record the
//! `septuple analyze` command prints.
//!
//! ```
//! use septuple::core::{Builtin, Init, Layered};
//! use septuple::io::SampleInputs;
//! use septuple::spectral::AnalysisOptions;
//! let net = Layered::random(&[784, 8, 4], Builtin::Tanh, Init::TorchLinear, 1)?;
//! let inputs = SampleInputs::load_or_embedded(None, None, Some(50))?;
//! let r = septuple::analyze_layered(&net, "random", &inputs, "MNIST", &AnalysisOptions::default())?;
//! // G = (I - f'w)^T (I - f'w) of a feedforward network has det G = 1 (Sec. 7).
//! assert!(r.report.sum_log_lambda.abs() < 1e-8);
//! assert_eq!(r.layers, vec![784, 8, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::Serialize;

use crate::core::{Activation, Layered};
use crate::io::{IoError, SampleInputs};
use crate::spectral::{
    analyze, AnalysisOptions, AnalysisReport, Faer, SpectralError, SpectrumBackend,
};

/// What can go wrong in [`analyze_layered`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileReportError {
    /// Inputs that do not fit the network.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The spectrum or the thermodynamics.
    #[error(transparent)]
    Spectral(#[from] SpectralError),
}

/// A network's [`AnalysisReport`] with where the network came from and its layers; in JSON the
/// report's keys (`n_neurons`, `sum_log_lambda`, `log_lambda`, ...) sit beside `file` and
/// `layers` in one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FileReport {
    /// The file (or other source) of the network.
    pub file: String,
    /// The layer sizes, inputs first.
    pub layers: Vec<usize>,
    /// The analysis.
    #[serde(flatten)]
    pub report: AnalysisReport,
}

/// The spectrum of G (Eq. 5.6) of a layered network at the mean state over `inputs`, with its
/// summary and (if `options` ask) the thermodynamics, computed by the pure-Rust [`Faer`]
/// backend. `file` names the network in the record, `inputs_name` the samples in errors.
///
/// Errors: [`IoError::InputCount`] naming both numbers when the samples do not have one value
/// per input neuron; any error of [`analyze`].
pub fn analyze_layered<A: Activation>(
    net: &Layered<A>,
    file: &str,
    inputs: &SampleInputs,
    inputs_name: &str,
    options: &AnalysisOptions,
) -> Result<FileReport, FileReportError> {
    analyze_layered_with(net, file, inputs, inputs_name, options, &Faer::default())
}

/// [`analyze_layered`] with the dense linear algebra of `backend` (for example
/// [`Faer`] with more threads, or `Lapack` with the `openblas` feature).
pub fn analyze_layered_with<A: Activation>(
    net: &Layered<A>,
    file: &str,
    inputs: &SampleInputs,
    inputs_name: &str,
    options: &AnalysisOptions,
    backend: &dyn SpectrumBackend,
) -> Result<FileReport, FileReportError> {
    let layers = net.layer_sizes().to_vec();
    inputs.check_fits(inputs_name, layers[0])?;
    let analysis = analyze(net, inputs.matrix(), options, backend)?;
    Ok(FileReport {
        file: file.to_string(),
        layers,
        report: analysis.report(),
    })
}

impl fmt::Display for FileReport {
    /// The file and the layers, then the report's table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<34} {}", "network", self.file)?;
        let layers: Vec<String> = self.layers.iter().map(usize::to_string).collect();
        writeln!(f, "{:<34} {}", "layers", layers.join("-"))?;
        write!(f, "{}", self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Builtin, Init};

    #[test]
    fn the_record_flattens_the_report_beside_file_and_layers() {
        let net = Layered::random(&[3, 4, 2], Builtin::Tanh, Init::TorchLinear, 7).unwrap();
        let x = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i + j) as f64 / 8.0);
        let inputs = SampleInputs::from_array("x", x.into_dyn()).unwrap();
        let r =
            analyze_layered(&net, "net.json", &inputs, "x", &AnalysisOptions::default()).unwrap();
        let doc = serde_json::to_value(&r).unwrap();
        assert_eq!(doc["file"], "net.json");
        assert_eq!(doc["layers"], serde_json::json!([3, 4, 2]));
        assert_eq!(doc["n_neurons"], 9);
        assert!(doc.get("thermo").is_none());
        let text = r.to_string();
        assert!(text.contains("3-4-2"));
        assert!(text.contains("sum log lambda"));

        let wide =
            SampleInputs::from_array("x", ndarray::Array2::zeros((2, 5)).into_dyn()).unwrap();
        let e =
            analyze_layered(&net, "net.json", &wide, "x", &AnalysisOptions::default()).unwrap_err();
        assert!(matches!(
            e,
            FileReportError::Io(IoError::InputCount {
                network_inputs: 3,
                sample_values: 5,
                ..
            })
        ));
    }
}
