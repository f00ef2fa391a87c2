//! The training loop.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::checkpoint::{fingerprint, Checkpoint};
use crate::config::Sgd;
use crate::data::Dataset;
use crate::error::TrainError;
use crate::model::Trainable;
use crate::observer::{AnalysisSchedule, Context, Observer};

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Completed epochs.
    pub epochs: usize,
    /// The epoch the run started from (non-zero after a resume).
    pub start_epoch: usize,
    /// Mean batch loss of the last epoch.
    pub last_epoch_loss: Option<f64>,
    /// Training wall time, including the time before a resume.
    pub elapsed: Duration,
}

/// Runs SGD epochs on a [`Trainable`] model and calls an [`Observer`] along the way.
#[derive(Clone, Debug)]
pub struct Trainer {
    sgd: Sgd,
    schedule: AnalysisSchedule,
}

impl Trainer {
    /// A trainer with the default (log-spaced) analysis schedule.
    pub fn new(sgd: Sgd) -> Self {
        Trainer {
            sgd,
            schedule: AnalysisSchedule::default(),
        }
    }

    /// Use another analysis schedule.
    pub fn with_schedule(mut self, schedule: AnalysisSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The settings.
    pub fn sgd(&self) -> &Sgd {
        &self.sgd
    }

    /// The analysis schedule.
    pub fn schedule(&self) -> &AnalysisSchedule {
        &self.schedule
    }

    /// Train `model` from epoch 0 for the configured number of epochs.
    pub fn run<M: Trainable>(
        &self,
        model: &mut M,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<RunSummary, TrainError> {
        self.run_from(model, 0, Duration::ZERO, train, test, observer)
    }

    /// Continue the run saved in the checkpoint at `path`: the model, epoch and time are read
    /// from it; the settings must equal this trainer's except for the number of epochs (which
    /// may grow), and the training set must be the one it was trained on.
    pub fn resume<M: Trainable>(
        &self,
        path: impl AsRef<Path>,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<(M, RunSummary), TrainError> {
        let path = path.as_ref();
        let cp: Checkpoint<M> = Checkpoint::load(path)?;
        let refuse = |reason: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        if cp.sgd.with_epochs(self.sgd.epochs())? != self.sgd {
            return Err(refuse(format!(
                "it was written with other settings ({:?}); expected {:?}",
                cp.sgd.config(),
                self.sgd.config()
            )));
        }
        if cp.epoch > self.sgd.epochs() {
            return Err(refuse(format!(
                "it is at epoch {}, beyond the {} epochs asked for",
                cp.epoch,
                self.sgd.epochs()
            )));
        }
        if cp.data_fingerprint != fingerprint(train) {
            return Err(refuse(
                "it was trained on another training set; expected the same data".into(),
            ));
        }
        let mut model = cp.model;
        let elapsed = Duration::from_secs_f64(cp.elapsed_seconds.max(0.0));
        let summary = self.run_from(&mut model, cp.epoch, elapsed, train, test, observer)?;
        Ok((model, summary))
    }

    /// One epoch (1-based `epoch`) of SGD steps on `train`, parameters in `ws`; returns the
    /// mean batch loss. Runs on a worker thread of rayon's pool, so that the parallel loops
    /// inside the steps do not hand work across threads at every step.
    pub fn epoch<M: Trainable>(
        &self,
        model: &mut M,
        ws: &mut M::Workspace,
        train: &Dataset,
        epoch: usize,
    ) -> Result<f64, TrainError> {
        let n = train.len();
        let batch = self.sgd.batch_size(n);
        let objective = self.sgd.config().objective;
        let eta = self.sgd.learning_rate(epoch);
        let order = self.sgd.order(epoch, n);
        rayon::scope(|_| {
            let mut sum = 0.0;
            let mut steps = 0usize;
            for chunk in order.chunks(batch) {
                let loss = model
                    .step(ws, train, chunk, eta, objective)
                    .map_err(|e| match e {
                        TrainError::Diverged { what, .. } => TrainError::Diverged { epoch, what },
                        other => other,
                    })?;
                sum += loss;
                steps += 1;
            }
            Ok(sum / steps as f64)
        })
    }

    fn run_from<M: Trainable>(
        &self,
        model: &mut M,
        start_epoch: usize,
        before: Duration,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<RunSummary, TrainError> {
        if !model.is_finite() {
            return Err(TrainError::Network {
                reason: "the initial parameters hold NaN or infinity".into(),
            });
        }
        let mut ws = model.workspace(train, &self.sgd)?;
        if let Some(t) = test {
            model.workspace(t, &self.sgd)?;
        }
        let total = self.sgd.epochs();
        let started = Instant::now();
        let mut epoch_loss = None;
        macro_rules! context {
            ($model:expr, $epoch:expr, $loss:expr) => {
                Context {
                    epoch: $epoch,
                    start_epoch,
                    model: $model,
                    train,
                    test,
                    sgd: &self.sgd,
                    epoch_loss: $loss,
                    elapsed: before + started.elapsed(),
                }
            };
        }
        observer.on_start(&context!(model, start_epoch, None))?;
        for epoch in start_epoch + 1..=total {
            let mean = self.epoch(model, &mut ws, train, epoch)?;
            model.sync(&ws).map_err(|e| match e {
                TrainError::Diverged { what, .. } => TrainError::Diverged { epoch, what },
                other => other,
            })?;
            if !model.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    what: "a weight or bias".into(),
                });
            }
            if !mean.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    what: "the epoch's mean loss".into(),
                });
            }
            epoch_loss = Some(mean);
            let ctx = context!(model, epoch, epoch_loss);
            observer.on_epoch(&ctx)?;
            if self.schedule.contains(epoch, total) {
                observer.on_analysis(&ctx)?;
            }
        }
        let ctx = context!(model, total.max(start_epoch), epoch_loss);
        observer.on_finish(&ctx)?;
        Ok(RunSummary {
            epochs: total,
            start_epoch,
            last_epoch_loss: epoch_loss,
            elapsed: ctx.elapsed,
        })
    }
}
