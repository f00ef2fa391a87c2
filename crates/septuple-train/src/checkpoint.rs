//! Checkpoints: everything needed to continue a run bit for bit, written atomically.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Sgd;
use crate::data::Dataset;
use crate::error::TrainError;
use crate::observer::{Context, Observer};

const FORMAT: &str = "septuple-train-checkpoint";
const VERSION: u32 = 1;

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
}

impl<M: Serialize + DeserializeOwned> Checkpoint<M> {
    /// A checkpoint of `model` after `epoch` epochs.
    pub fn new(sgd: Sgd, epoch: usize, elapsed: Duration, data: &Dataset, model: M) -> Self {
        Checkpoint {
            format: FORMAT.into(),
            version: VERSION,
            sgd,
            epoch,
            elapsed_seconds: elapsed.as_secs_f64(),
            data_fingerprint: fingerprint(data),
            model,
        }
    }

    /// Write as JSON (floats round-trip exactly) through a temporary file and a rename, so a
    /// crash never leaves a half-written checkpoint.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let bytes = serde_json::to_vec(self).map_err(|e| TrainError::Checkpoint {
            path: path.as_ref().to_path_buf(),
            reason: format!("cannot serialise: {e}"),
        })?;
        septuple_io::write_atomic(path, &bytes)?;
        Ok(())
    }

    /// Read a checkpoint written by [`save`](Checkpoint::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| TrainError::file(path, e))?;
        let bad = |reason: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let head: Header =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a checkpoint ({e})")))?;
        if head.format != FORMAT || head.version != VERSION {
            return Err(bad(format!(
                "format {:?} version {}; expected {FORMAT:?} version {VERSION}",
                head.format, head.version
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid content: {e}")))
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
        .save(&self.path)?;
        self.last = Instant::now();
        self.written += 1;
        Ok(())
    }
}

impl<M: Serialize + DeserializeOwned + Clone> Observer<M> for Checkpointer {
    fn on_start(&mut self, _ctx: &Context<'_, M>) -> Result<(), TrainError> {
        self.last = Instant::now();
        Ok(())
    }

    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
        let by_time = self.interval.is_some_and(|i| self.last.elapsed() >= i);
        let by_epoch = self
            .every_epochs
            .is_some_and(|k| ctx.epoch.is_multiple_of(k));
        if (by_time || by_epoch) && ctx.epoch < ctx.sgd.epochs() {
            self.write(ctx)?;
        }
        Ok(())
    }

    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
        self.write(ctx)
    }
}
