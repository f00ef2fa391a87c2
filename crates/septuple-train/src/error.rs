//! The errors of septuple-train.

use std::path::PathBuf;

use septuple_core::CoreError;
use septuple_io::IoError;
use thiserror::Error;

/// Everything that can go wrong while configuring, running or resuming training.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TrainError {
    /// An error of septuple-core (shapes, validation, the bulk solve).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error of septuple-io (reading or writing files).
    #[error(transparent)]
    Io(#[from] IoError),
    /// A configuration value outside its domain.
    #[error("invalid training configuration: {field} = {value}; expected {expected}")]
    Config {
        /// The field that was wrong.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Training data that does not fit the network or itself.
    #[error("invalid training data: {reason}")]
    Data {
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A network the chosen training path cannot train.
    #[error("network not trainable this way: {reason}")]
    Network {
        /// What was wrong and what was expected.
        reason: String,
    },
    /// A weight, bias or loss became NaN or infinite.
    #[error("training diverged in epoch {epoch}: {what} is not finite; lower the learning rate (the last checkpoint, if any, is intact)")]
    Diverged {
        /// The 1-based epoch in which it happened.
        epoch: usize,
        /// What became non-finite.
        what: String,
    },
    /// A checkpoint that cannot be read, written or used.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A file an observer writes could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An observer asked to stop (for example on a user's interrupt).
    #[error("training stopped by an observer after epoch {epoch}: {reason}")]
    Stopped {
        /// The last completed epoch.
        epoch: usize,
        /// Why it stopped.
        reason: String,
    },
}

impl TrainError {
    pub(crate) fn config(
        field: &'static str,
        value: impl ToString,
        expected: &'static str,
    ) -> Self {
        TrainError::Config {
            field,
            value: value.to_string(),
            expected,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::File {
            path: path.into(),
            source,
        }
    }
}
