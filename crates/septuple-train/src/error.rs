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
    #[error("invalid training data: {0}")]
    Data(#[from] DataError),
    /// A network the chosen training path cannot train.
    #[error("network not trainable this way: {0}")]
    Network(#[from] NetworkError),
    /// A weight, bias or loss became NaN or infinite.
    #[error("training diverged in epoch {epoch}: {what} is not finite; lower the learning rate (the last checkpoint, if any, is intact)")]
    Diverged {
        /// The 1-based epoch in which it happened.
        epoch: usize,
        /// What became non-finite.
        what: String,
    },
    /// A checkpoint that cannot be read, written or used.
    #[error("checkpoint {path}: {source}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong.
        source: CheckpointError,
    },
    /// The run saturated: the loss has not changed for `frozen_epochs` epochs and the hidden
    /// units are stuck where the activation is flat, so no gradient reaches the parameters
    /// (typical of a learning rate far too large for a bounded activation). Only returned when
    /// asked for ([`SaturationCheck::stop`](crate::SaturationCheck)).
    #[error("training saturated in epoch {epoch}: the loss has not changed for {frozen_epochs} epochs and {saturated_percent:.1} % of the unit-sample pairs of the training set have |f'| below {threshold:e}; lower the learning rate", saturated_percent = 100.0 * saturated_fraction)]
    Saturated {
        /// The 1-based epoch in which it was detected.
        epoch: usize,
        /// Consecutive epochs with an unchanged loss.
        frozen_epochs: usize,
        /// The fraction of saturated (unit, sample) pairs, hidden and output units.
        saturated_fraction: f64,
        /// The |f'| below which a unit counts as saturated.
        threshold: f64,
    },
    /// A record an observer writes could not be serialised.
    #[error("{path}: a record is not serialisable: {source}")]
    Record {
        /// The file the record was for.
        path: PathBuf,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// A file an observer writes could not be written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An observer failed; `source` is its error (downcast it to the observer's error type).
    #[error("observer failed in epoch {epoch}: {source}")]
    Observer {
        /// The epoch whose context the observer was called with (0 before the first).
        epoch: usize,
        /// The observer's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
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

/// Training data that does not fit the network, the workspace or itself.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum DataError {
    /// Inputs and targets disagree on the number of samples.
    #[error("{inputs} input rows and {targets} target rows; expected one of each per sample")]
    Rows {
        /// Input rows.
        inputs: usize,
        /// Target rows.
        targets: usize,
    },
    /// No samples.
    #[error("no samples; expected at least one")]
    Empty,
    /// A NaN or infinite input or target.
    #[error("{what}[{row}, {col}] is {value}; expected finite values")]
    NonFinite {
        /// "inputs" or "targets".
        what: &'static str,
        /// The sample.
        row: usize,
        /// The column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Labels that do not match the samples.
    #[error("{labels} labels for {samples} samples; expected one per sample")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Samples.
        samples: usize,
    },
    /// A label that indexes no target column.
    #[error("label {label} with {classes} target columns; expected labels below {classes}")]
    LabelRange {
        /// The label.
        label: usize,
        /// The number of target columns.
        classes: usize,
    },
    /// Sample widths that do not fit the network.
    #[error("samples have {inputs} inputs and {targets} targets; the network expects {expected_inputs} and {expected_targets}")]
    Widths {
        /// Input columns of the data.
        inputs: usize,
        /// Target columns of the data.
        targets: usize,
        /// Input neurons of the network.
        expected_inputs: usize,
        /// Output neurons of the network.
        expected_targets: usize,
    },
    /// A batch larger than the workspace holds, or empty.
    #[error("batch of {samples} samples; expected 1 to {capacity} (the workspace's capacity)")]
    BatchSize {
        /// Samples in the batch.
        samples: usize,
        /// The workspace's capacity.
        capacity: usize,
    },
    /// A batch index beyond the dataset.
    #[error("sample index {index} in a dataset of {samples} samples")]
    SampleIndex {
        /// The index.
        index: usize,
        /// Samples in the dataset.
        samples: usize,
    },
    /// A workspace used with a dataset other than the one it was made for.
    #[error("the workspace was made for {workspace} samples, the dataset has {dataset}")]
    Workspace {
        /// Samples the workspace was made for.
        workspace: usize,
        /// Samples of the dataset.
        dataset: usize,
    },
}

/// Why a connection of a [`Dag`](crate::Dag) may not learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionRule {
    /// Its target is an input (Eq. 2.2).
    IntoInput,
    /// Its source is an output (Eq. 2.3).
    OutOfOutput,
    /// It connects a neuron to itself (Eq. 2.1).
    SelfConnection,
}

impl std::fmt::Display for ConnectionRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectionRule::IntoInput => "its target is an input (Eq. 2.2 forbids it)",
            ConnectionRule::OutOfOutput => "its source is an output (Eq. 2.3 forbids it)",
            ConnectionRule::SelfConnection => "it is a self-connection (Eq. 2.1 forbids it)",
        })
    }
}

/// A network the chosen training path cannot train.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum NetworkError {
    /// A learning mask of the wrong shape.
    #[error("mask of shape {got:?} for {n} neurons; expected ({n}, {n})")]
    MaskShape {
        /// The mask's shape.
        got: (usize, usize),
        /// Neurons.
        n: usize,
    },
    /// A learning connection the feedforward conditions forbid.
    #[error("connection {from} -> {to} may learn but {rule}")]
    Connection {
        /// Source neuron.
        from: usize,
        /// Target neuron.
        to: usize,
        /// The rule it breaks.
        rule: ConnectionRule,
    },
    /// Learning connections that close a cycle.
    #[error("the learning connections close the cycle {cycle:?}; expected a directed acyclic graph (Eq. 2.1)")]
    Cycle {
        /// The neurons of the cycle.
        cycle: Vec<usize>,
    },
    /// A workspace given the wrong number of activations.
    #[error("{got} activations for {layers} layers; expected one per layer")]
    Activations {
        /// Activations given.
        got: usize,
        /// Layers of the workspace.
        layers: usize,
    },
    /// Initial parameters that are not finite.
    #[error("the initial parameters hold NaN or infinity; expected finite values")]
    NonFiniteParameters,
    /// Float32 training ([`Precision::F32`](crate::Precision::F32)) of a network that does not
    /// take the layered fast path.
    #[error("precision f32 needs the layered fast path (a septuple_core::Layered network); expected precision f64 for a {model}")]
    Float32NeedsLayered {
        /// The kind of model.
        model: &'static str,
    },
}

/// A field of the SGD settings (the one a checkpoint and a trainer disagree on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SgdField {
    /// `learning_rate`.
    LearningRate,
    /// `schedule`.
    Schedule,
    /// `batch`.
    Batch,
    /// `seed`.
    Seed,
    /// `objective`.
    Objective,
    /// `precision`.
    Precision,
}

impl std::fmt::Display for SgdField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SgdField::LearningRate => "learning_rate",
            SgdField::Schedule => "schedule",
            SgdField::Batch => "batch",
            SgdField::Seed => "seed",
            SgdField::Objective => "objective",
            SgdField::Precision => "precision",
        })
    }
}

/// A checkpoint that cannot be read, written or used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint could not be serialised.
    #[error("cannot serialise: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The serialised checkpoint would not load back (JSON has no NaN or infinity: serde_json
    /// writes them as `null`, which no float field reads); nothing was written.
    #[error(
        "not written: it would not load back ({0}); a NaN or infinite value is the usual cause"
    )]
    NotLoadable(#[source] serde_json::Error),
    /// The file is not JSON of a checkpoint.
    #[error("not a checkpoint: {0}")]
    NotACheckpoint(#[source] serde_json::Error),
    /// Another format or version.
    #[error("format {format:?} version {version}; expected {expected_format:?} version {expected_version}")]
    Format {
        /// The file's format.
        format: String,
        /// The file's version.
        version: u32,
        /// This crate's format.
        expected_format: &'static str,
        /// This crate's version.
        expected_version: u32,
    },
    /// A checkpoint whose content does not parse (or does not validate).
    #[error("invalid content: {0}")]
    Content(#[source] serde_json::Error),
    /// Settings that differ from the trainer's in `field`.
    #[error("it was written with {field} = {checkpoint}, the trainer has {trainer}; only the number of epochs may change (and the learning rate with ResumePolicy::AllowLearningRateChange)")]
    Settings {
        /// The first field that differs.
        field: SgdField,
        /// The checkpoint's value.
        checkpoint: String,
        /// The trainer's value.
        trainer: String,
    },
    /// A checkpoint beyond the epochs asked for.
    #[error("it is at epoch {epoch}, beyond the {epochs} epochs asked for")]
    Epoch {
        /// The checkpoint's epoch.
        epoch: usize,
        /// Epochs asked for.
        epochs: usize,
    },
    /// Another training set.
    #[error("it was trained on another training set (fingerprint {checkpoint:#018x}, this one {data:#018x}); expected the same data")]
    Data {
        /// The checkpoint's data fingerprint.
        checkpoint: u64,
        /// This training set's fingerprint.
        data: u64,
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

    /// A divergence reported by a step (which does not know its epoch) labelled with the
    /// epoch it happened in; other errors unchanged.
    pub(crate) fn in_epoch(self, epoch: usize) -> Self {
        match self {
            TrainError::Diverged { what, .. } => TrainError::Diverged { epoch, what },
            other => other,
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::File {
            path: path.into(),
            source,
        }
    }
}
