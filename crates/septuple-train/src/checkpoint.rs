//! Checkpoints: everything needed to continue a run bit for bit, written atomically.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Sgd;
use crate::data::Dataset;
use crate::error::{CheckpointError, TrainError};
use crate::observer::{Context, Observer, ObserverError};

const FORMAT: &str = "septuple-train-checkpoint";
/// Version 2 added the learning-rate history; version 1 files (without it) still load.
const VERSION: u32 = 2;

/// A stretch of a run trained with one base learning rate: from 1-based epoch `from_epoch`
/// until the next segment, the rate of epoch e is the [`Schedule`](crate::Schedule) applied
/// to `learning_rate` at e. A fresh run has one segment from epoch 1; each resume that changes
/// the rate ([`ResumePolicy::AllowLearningRateChange`](crate::ResumePolicy)) adds one.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateSegment {
    /// The first epoch of the segment (1-based).
    pub from_epoch: usize,
    /// The base learning rate from that epoch on.
    pub learning_rate: f64,
}

/// A training checkpoint. The sample order of an epoch depends only on (seed, epoch) and the
/// learning rate only on the epoch, so the model, the settings and the epoch are the whole
/// state: continuing from a checkpoint gives the same numbers as never stopping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint<M> {
    format: String,
    version: u32,
    /// The SGD settings of the run.
    pub sgd: Sgd,
    /// Completed epochs.
    pub epoch: usize,
    /// Training wall time up to this checkpoint, in seconds.
    pub elapsed_seconds: f64,
    /// A fingerprint of the training set (resuming on other data is refused).
    pub data_fingerprint: u64,
    /// The model after `epoch` epochs.
    pub model: M,
    /// The base learning rates of the run so far, by epoch (empty in version 1 files: one
    /// segment of `sgd`'s rate from epoch 1).
    #[serde(default)]
    pub learning_rates: Vec<RateSegment>,
}

impl<M: Serialize + DeserializeOwned> Checkpoint<M> {
    /// A checkpoint of `model` after `epoch` epochs.
    pub fn new(sgd: Sgd, epoch: usize, elapsed: Duration, data: &Dataset, model: M) -> Self {
        Checkpoint {
            format: FORMAT.into(),
            version: VERSION,
            epoch,
            elapsed_seconds: elapsed.as_secs_f64(),
            data_fingerprint: fingerprint(data),
            learning_rates: vec![RateSegment {
                from_epoch: 1,
                learning_rate: sgd.config().learning_rate,
            }],
            sgd,
            model,
        }
    }

    /// The same checkpoint with the learning-rate history `history`.
    pub fn with_learning_rates(mut self, history: Vec<RateSegment>) -> Self {
        self.learning_rates = history;
        self
    }

    /// The learning-rate history (one segment of `sgd`'s rate for a version 1 file).
    pub fn rate_history(&self) -> Vec<RateSegment> {
        if self.learning_rates.is_empty() {
            vec![RateSegment {
                from_epoch: 1,
                learning_rate: self.sgd.config().learning_rate,
            }]
        } else {
            self.learning_rates.clone()
        }
    }

    /// Write as JSON (floats round-trip exactly) through a temporary file and a rename, so a
    /// crash never leaves a half-written checkpoint. The bytes are parsed back first: a
    /// checkpoint that would not load (a NaN or infinity, which JSON writes as `null`) is
    /// [`CheckpointError::NotLoadable`] and nothing is written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let path = path.as_ref();
        let bad = |source| TrainError::Checkpoint {
            path: path.to_path_buf(),
            source,
        };
        let bytes = serde_json::to_vec(self).map_err(|e| bad(CheckpointError::Serialize(e)))?;
        serde_json::from_slice::<Checkpoint<M>>(&bytes)
            .map_err(|e| bad(CheckpointError::NotLoadable(e)))?;
        septuple_io::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Read a checkpoint written by [`save`](Checkpoint::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| TrainError::file(path, e))?;
        let bad = |source| TrainError::Checkpoint {
            path: path.to_path_buf(),
            source,
        };
        let head: Header =
            serde_json::from_slice(&bytes).map_err(|e| bad(CheckpointError::NotACheckpoint(e)))?;
        if head.format != FORMAT || !(1..=VERSION).contains(&head.version) {
            return Err(bad(CheckpointError::Format {
                format: head.format,
                version: head.version,
                expected_format: FORMAT,
                expected_version: VERSION,
            }));
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(CheckpointError::Content(e)))
    }
}

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// FNV-1a over the bits of the inputs and targets and the shape.
pub fn fingerprint(data: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for byte in v.to_le_bytes() {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(data.len() as u64);
    eat(data.n_inputs() as u64);
    eat(data.n_targets() as u64);
    for &v in data.inputs().iter().chain(data.targets().iter()) {
        eat(v.to_bits());
    }
    h
}

/// An observer that writes a [`Checkpoint`] at every analysis epoch, at the end, and in
/// between whenever `interval` of wall time has passed since the last write.
pub struct Checkpointer {
    path: PathBuf,
    interval: Option<Duration>,
    every_epochs: Option<usize>,
    last: Instant,
    written: usize,
}

impl Checkpointer {
    /// Write to `path` at analysis epochs and at the end.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Checkpointer {
            path: path.into(),
            interval: None,
            every_epochs: None,
            last: Instant::now(),
            written: 0,
        }
    }

    /// Also write whenever `interval` has passed since the last write.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Also write every `k` epochs.
    pub fn every_epochs(mut self, k: usize) -> Self {
        self.every_epochs = Some(k.max(1));
        self
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many checkpoints this observer has written.
    pub fn written(&self) -> usize {
        self.written
    }

    fn write<M: Serialize + DeserializeOwned + Clone>(
        &mut self,
        ctx: &Context<'_, M>,
    ) -> Result<(), TrainError> {
        Checkpoint::new(
            ctx.sgd.clone(),
            ctx.epoch,
            ctx.elapsed,
            ctx.train,
            ctx.model.clone(),
        )
        .with_learning_rates(ctx.learning_rates.to_vec())
        .save(&self.path)?;
        self.last = Instant::now();
        self.written += 1;
        Ok(())
    }
}

impl<M: Serialize + DeserializeOwned + Clone> Observer<M> for Checkpointer {
    fn on_start(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.last = Instant::now();
        Ok(())
    }

    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        let by_time = self.interval.is_some_and(|i| self.last.elapsed() >= i);
        let by_epoch = self
            .every_epochs
            .is_some_and(|k| ctx.epoch.is_multiple_of(k));
        if (by_time || by_epoch) && ctx.epoch < ctx.sgd.epochs() {
            self.write(ctx)?;
        }
        Ok(())
    }

    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        Ok(self.write(ctx)?)
    }
}
