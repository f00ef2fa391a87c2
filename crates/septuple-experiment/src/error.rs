//! The errors of septuple-experiment.

use std::path::{Path, PathBuf};

use crate::figures::FigureError;

/// Everything that can go wrong in the experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// Training failed.
    #[error(transparent)]
    Train(#[from] septuple_train::TrainError),
    /// Reading data failed.
    #[error(transparent)]
    Io(#[from] septuple_io::IoError),
    /// A spectrum could not be computed.
    #[error(transparent)]
    Spectral(#[from] septuple_spectral::SpectralError),
    /// A thermodynamic quantity could not be computed.
    #[error(transparent)]
    Thermo(#[from] septuple_thermo::ThermoError),
    /// A network could not be built.
    #[error(transparent)]
    Core(#[from] septuple_core::CoreError),
    /// A figure could not be drawn.
    #[error(transparent)]
    Figure(#[from] FigureError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Settings that cannot run.
    #[error("invalid experiment settings: {0}")]
    Config(String),
}

impl ExperimentError {
    pub(crate) fn file(path: &Path, e: impl std::fmt::Display) -> Self {
        ExperimentError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
