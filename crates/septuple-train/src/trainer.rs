//! The training loop.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::checkpoint::{fingerprint, Checkpoint, RateSegment};
use crate::config::{Sgd, SgdConfig};
use crate::data::Dataset;
use crate::error::{CheckpointError, NetworkError, SgdField, TrainError};
use crate::health::{saturated_fraction, RunWarning, SaturationCheck, Watch};
use crate::layered::Kernels;
use crate::model::Trainable;
use crate::observer::{AnalysisSchedule, Context, Observer, ObserverError};

/// What a finished run reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Completed epochs.
    pub epochs: usize,
    /// The epoch the run started from (non-zero after a resume).
    pub start_epoch: usize,
    /// Mean batch loss of the last epoch.
    pub last_epoch_loss: Option<f64>,
    /// Training wall time, including the time before a resume, excluding observers.
    pub elapsed: Duration,
    /// Wall time spent in observers in this run.
    pub observer_time: Duration,
    /// The base learning rates of the whole run, by epoch.
    pub learning_rates: Vec<RateSegment>,
    /// The warnings of the last epoch (empty for a healthy run).
    pub warnings: Vec<RunWarning>,
}

/// What a resume may change besides the number of epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResumePolicy {
    /// Nothing else: every other setting must equal the checkpoint's.
    #[default]
    Strict,
    /// The base learning rate too (say after a divergence): the new rate applies from the
    /// checkpoint's epoch + 1 and is recorded in the learning-rate history
    /// ([`RateSegment`]); the schedule, batch, seed (so the sample order) and objective must
    /// stay the same.
    AllowLearningRateChange,
}

/// Runs SGD epochs on a [`Trainable`] model and calls an [`Observer`] along the way.
#[derive(Clone, Debug)]
pub struct Trainer {
    sgd: Sgd,
    schedule: AnalysisSchedule,
    saturation: SaturationCheck,
    kernels: Kernels,
}

impl Trainer {
    /// A trainer with the default (log-spaced) analysis schedule, the default
    /// [`SaturationCheck`] (warn, do not stop) and the fastest [`Kernels`] the CPU has.
    pub fn new(sgd: Sgd) -> Self {
        Trainer {
            sgd,
            schedule: AnalysisSchedule::default(),
            saturation: SaturationCheck::default(),
            kernels: Kernels::default(),
        }
    }

    /// Use another analysis schedule.
    pub fn with_schedule(mut self, schedule: AnalysisSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Use another saturation check (for example one that stops the run).
    pub fn with_saturation_check(mut self, check: SaturationCheck) -> Self {
        self.saturation = check;
        self
    }

    /// Use other instruction sets on the fast path (every choice gives the same bits).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
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

    /// The saturation check.
    pub fn saturation_check(&self) -> &SaturationCheck {
        &self.saturation
    }

    /// Train `model` from epoch 0 for the configured number of epochs.
    pub fn run<M: Trainable>(
        &self,
        model: &mut M,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<RunSummary, TrainError> {
        let history = vec![RateSegment {
            from_epoch: 1,
            learning_rate: self.sgd.config().learning_rate,
        }];
        let start = Start {
            epoch: 0,
            before: Duration::ZERO,
            history,
        };
        self.run_from(model, start, train, test, observer)
    }

    /// Continue the run saved in the checkpoint at `path`: the model, epoch and time are read
    /// from it; the settings must equal this trainer's except for the number of epochs (which
    /// may grow), and the training set must be the one it was trained on. The same as
    /// [`resume_with`](Trainer::resume_with) with [`ResumePolicy::Strict`].
    pub fn resume<M: Trainable>(
        &self,
        path: impl AsRef<Path>,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<(M, RunSummary), TrainError> {
        self.resume_with(path, train, test, observer, ResumePolicy::Strict)
    }

    /// [`resume`](Trainer::resume), allowing what `policy` allows to differ from the
    /// checkpoint. A differing setting that is not allowed is
    /// [`CheckpointError::Settings`] naming the field.
    pub fn resume_with<M: Trainable>(
        &self,
        path: impl AsRef<Path>,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
        policy: ResumePolicy,
    ) -> Result<(M, RunSummary), TrainError> {
        let path = path.as_ref();
        let cp: Checkpoint<M> = Checkpoint::load(path)?;
        let refuse = |source| TrainError::Checkpoint {
            path: path.to_path_buf(),
            source,
        };
        let mut history = cp.rate_history();
        let differing = differing_fields(cp.sgd.config(), self.sgd.config());
        let allowed = |f: SgdField| {
            f == SgdField::LearningRate && policy == ResumePolicy::AllowLearningRateChange
        };
        if let Some((field, checkpoint, trainer)) =
            differing.iter().find(|(f, _, _)| !allowed(*f)).cloned()
        {
            return Err(refuse(CheckpointError::Settings {
                field,
                checkpoint,
                trainer,
            }));
        }
        if !differing.is_empty() {
            history.push(RateSegment {
                from_epoch: cp.epoch + 1,
                learning_rate: self.sgd.config().learning_rate,
            });
        }
        if cp.epoch > self.sgd.epochs() {
            return Err(refuse(CheckpointError::Epoch {
                epoch: cp.epoch,
                epochs: self.sgd.epochs(),
            }));
        }
        let data = fingerprint(train);
        if cp.data_fingerprint != data {
            return Err(refuse(CheckpointError::Data {
                checkpoint: cp.data_fingerprint,
                data,
            }));
        }
        let start = Start {
            epoch: cp.epoch,
            before: Duration::from_secs_f64(cp.elapsed_seconds.max(0.0)),
            history,
        };
        let mut model = cp.model;
        let summary = self.run_from(&mut model, start, train, test, observer)?;
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
        Ok(self.epoch_losses(model, ws, train, epoch)?.mean_batch)
    }

    fn epoch_losses<M: Trainable>(
        &self,
        model: &mut M,
        ws: &mut M::Workspace,
        train: &Dataset,
        epoch: usize,
    ) -> Result<EpochLoss, TrainError> {
        let n = train.len();
        let batch = self.sgd.batch_size(n);
        let objective = self.sgd.config().objective;
        let eta = self.sgd.learning_rate(epoch);
        let order = self.sgd.order(epoch, n);
        rayon::scope(|_| {
            let mut sum = 0.0;
            let mut weighted = 0.0;
            let mut steps = 0usize;
            for chunk in order.chunks(batch) {
                let loss = model
                    .step(ws, train, chunk, eta, objective)
                    .map_err(|e| e.in_epoch(epoch))?;
                sum += loss;
                weighted += loss * chunk.len() as f64;
                steps += 1;
            }
            Ok(EpochLoss {
                mean_batch: sum / steps as f64,
                per_sample: weighted / n as f64,
            })
        })
    }

    fn run_from<M: Trainable>(
        &self,
        model: &mut M,
        start: Start,
        train: &Dataset,
        test: Option<&Dataset>,
        observer: &mut impl Observer<M>,
    ) -> Result<RunSummary, TrainError> {
        if !model.is_finite() {
            return Err(NetworkError::NonFiniteParameters.into());
        }
        let mut ws = model.workspace(train, &self.sgd, self.kernels)?;
        if let Some(t) = test {
            model.workspace(t, &self.sgd, self.kernels)?;
        }
        let total = self.sgd.epochs();
        let start_epoch = start.epoch;
        let history = start.history;
        let mut clock = Clock::start(start.before);
        let mut watch = Watch::default();
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
                    learning_rates: &history,
                    warnings: &watch.warnings,
                    epoch_loss: $loss,
                    elapsed: clock.training(),
                    observer_time: clock.observers,
                }
            };
        }
        let ctx = context!(model, start_epoch, None);
        clock.observe(start_epoch, || observer.on_start(&ctx))?;
        for epoch in start_epoch + 1..=total {
            let losses = self.epoch_losses(model, &mut ws, train, epoch)?;
            check_epoch(model, &ws, epoch, losses.mean_batch)?;
            self.watch(&mut watch, model, train, epoch, losses.per_sample)?;
            epoch_loss = Some(losses.mean_batch);
            let ctx = context!(model, epoch, epoch_loss);
            clock.observe(epoch, || observer.on_epoch(&ctx))?;
            if self.schedule.contains(epoch, total) {
                // The same context: the time of `on_epoch` is not training time either.
                clock.observe(epoch, || observer.on_analysis(&ctx))?;
            }
        }
        let last = total.max(start_epoch);
        let ctx = context!(model, last, epoch_loss);
        clock.observe(last, || observer.on_finish(&ctx))?;
        Ok(RunSummary {
            epochs: total,
            start_epoch,
            last_epoch_loss: epoch_loss,
            elapsed: clock.training(),
            observer_time: clock.observers,
            learning_rates: history.clone(),
            warnings: watch.warnings.clone(),
        })
    }

    /// The saturation check after epoch `epoch` with training loss `loss`; a saturated run is
    /// [`TrainError::Saturated`] if the check says stop.
    fn watch<M: Trainable>(
        &self,
        watch: &mut Watch,
        model: &M,
        train: &Dataset,
        epoch: usize,
        loss: f64,
    ) -> Result<(), TrainError> {
        let check = &self.saturation;
        watch.update(check, loss, || {
            saturated_fraction(model, train.inputs(), check.threshold)
        })?;
        if check.stop && watch.is_saturated() {
            return Err(TrainError::Saturated {
                epoch,
                frozen_epochs: watch.frozen(),
                saturated_fraction: watch.saturated().unwrap_or(0.0),
                threshold: check.threshold,
            });
        }
        Ok(())
    }
}

/// The settings other than the number of epochs in which `a` and `b` differ, in the order of
/// [`SgdConfig`]'s fields, with both values as text.
fn differing_fields(a: &SgdConfig, b: &SgdConfig) -> Vec<(SgdField, String, String)> {
    let text = |x: &dyn std::fmt::Debug| format!("{x:?}");
    let mut out = Vec::new();
    if a.learning_rate.to_bits() != b.learning_rate.to_bits() {
        out.push((
            SgdField::LearningRate,
            text(&a.learning_rate),
            text(&b.learning_rate),
        ));
    }
    if a.schedule != b.schedule {
        out.push((SgdField::Schedule, text(&a.schedule), text(&b.schedule)));
    }
    if a.batch != b.batch {
        out.push((SgdField::Batch, text(&a.batch), text(&b.batch)));
    }
    if a.seed != b.seed {
        out.push((SgdField::Seed, text(&a.seed), text(&b.seed)));
    }
    if a.objective != b.objective {
        out.push((SgdField::Objective, text(&a.objective), text(&b.objective)));
    }
    if a.precision != b.precision {
        out.push((SgdField::Precision, text(&a.precision), text(&b.precision)));
    }
    out
}

/// Where a run starts: the epoch, the training time before it and the learning-rate history.
struct Start {
    epoch: usize,
    before: Duration,
    history: Vec<RateSegment>,
}

/// The losses of one epoch.
struct EpochLoss {
    /// The mean of the batch losses (what observers see as the epoch loss).
    mean_batch: f64,
    /// The sample-weighted mean: the mean loss over the training set during the epoch
    /// (the same as `mean_batch` when all batches have the same size).
    per_sample: f64,
}

/// After epoch `epoch`: bring the model up to date and check that its parameters and the
/// epoch's mean loss `mean` are finite.
fn check_epoch<M: Trainable>(
    model: &mut M,
    ws: &M::Workspace,
    epoch: usize,
    mean: f64,
) -> Result<(), TrainError> {
    model.sync(ws).map_err(|e| e.in_epoch(epoch))?;
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
    Ok(())
}

/// Wall time of a run, split into training and observers.
struct Clock {
    before: Duration,
    started: Instant,
    observers: Duration,
}

impl Clock {
    fn start(before: Duration) -> Self {
        Clock {
            before,
            started: Instant::now(),
            observers: Duration::ZERO,
        }
    }

    /// Training time: the time before a resume plus this run's wall time less the time spent
    /// in observers.
    fn training(&self) -> Duration {
        self.before + self.started.elapsed().saturating_sub(self.observers)
    }

    /// Run an observer call, adding its wall time to the observers' time.
    fn observe(
        &mut self,
        epoch: usize,
        call: impl FnOnce() -> Result<(), ObserverError>,
    ) -> Result<(), TrainError> {
        let t = Instant::now();
        let result = call();
        self.observers += t.elapsed();
        result.map_err(|e| e.into_train_error(epoch))
    }
}
