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
    /// A setting outside its domain, or one that does not fit the data it runs on.
    #[error("invalid experiment setting: {field} = {value}; expected {expected}")]
    Config {
        /// The field that was wrong (`seeds`, `sgd.learning_rate`, `networks[1].name`, ...).
        field: String,
        /// Its value, as text.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// Shard directories that do not make up their sweep: runs missing, unfinished or present
    /// in more than one directory.
    #[error(
        "the directories do not make up sweep {sweep:?}: {}",
        incomplete(missing, unfinished, duplicated)
    )]
    Incomplete {
        /// The sweep's name.
        sweep: String,
        /// Runs no directory holds.
        missing: Vec<String>,
        /// Runs that stopped before their last epoch, with where and when.
        unfinished: Vec<String>,
        /// Runs that more than one directory holds, with the directories.
        duplicated: Vec<String>,
    },
}

fn incomplete(missing: &[String], unfinished: &[String], duplicated: &[String]) -> String {
    let mut parts = Vec::new();
    for (what, list) in [
        ("missing", missing),
        ("unfinished", unfinished),
        ("in more than one directory", duplicated),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what}: {}", list.join(", ")));
        }
    }
    format!(
        "{}; expected every run of the manifest exactly once, finished",
        parts.join("; ")
    )
}

impl ExperimentError {
    pub(crate) fn config(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        ExperimentError::Config {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    pub(crate) fn file(path: &Path, e: impl std::fmt::Display) -> Self {
        ExperimentError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}
