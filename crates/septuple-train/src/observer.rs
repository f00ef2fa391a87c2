//! Observers: code called while training runs, with read access to the network and the data.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint::RateSegment;
use crate::config::Sgd;
use crate::data::Dataset;
use crate::error::TrainError;
use crate::health::RunWarning;

/// The error of an observer: any error (`Send + Sync + 'static`), boxed. Every such error
/// converts into it with `?`; the trainer returns it as [`TrainError::Observer`] with the
/// epoch, where the caller can downcast it back to its type. [`ObserverError::stop`] is the
/// one exception: a request to stop, returned as [`TrainError::Stopped`].
///
/// (It does not implement [`std::error::Error`] itself, so that the blanket `From` can exist.)
#[derive(Debug)]
pub struct ObserverError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ObserverError {
    fn from(e: E) -> Self {
        ObserverError(Box::new(e))
    }
}

impl std::fmt::Display for ObserverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ObserverError {
    /// A request to stop training after `epoch` (for example on a user's interrupt): the run
    /// ends with [`TrainError::Stopped`].
    pub fn stop(epoch: usize, reason: impl Into<String>) -> Self {
        ObserverError::from(TrainError::Stopped {
            epoch,
            reason: reason.into(),
        })
    }

    /// The error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref()
    }

    /// The boxed error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }

    /// The trainer's error for this observer error after `epoch`: a stop request stays
    /// [`TrainError::Stopped`], anything else becomes [`TrainError::Observer`].
    pub(crate) fn into_train_error(self, epoch: usize) -> TrainError {
        match self.0.downcast::<TrainError>() {
            Ok(e) if matches!(*e, TrainError::Stopped { .. }) => *e,
            Ok(e) => TrainError::Observer { epoch, source: e },
            Err(source) => TrainError::Observer { epoch, source },
        }
    }
}

/// What an observer sees. `epoch` counts completed epochs (0 before the first).
#[derive(Debug)]
pub struct Context<'a, M> {
    /// Completed epochs.
    pub epoch: usize,
    /// The epoch the run (re)started from: 0 for a fresh run, the checkpoint's epoch on resume.
    pub start_epoch: usize,
    /// The model, up to date.
    pub model: &'a M,
    /// The training set.
    pub train: &'a Dataset,
    /// The test set, if any.
    pub test: Option<&'a Dataset>,
    /// The SGD settings.
    pub sgd: &'a Sgd,
    /// The base learning rates of the run by epoch (more than one segment after a resume that
    /// changed the rate).
    pub learning_rates: &'a [RateSegment],
    /// Warnings about the state of the run at this epoch (see [`SaturationCheck`](crate::SaturationCheck)).
    pub warnings: &'a [RunWarning],
    /// Mean batch loss of the last epoch (None before the first).
    pub epoch_loss: Option<f64>,
    /// Training wall time so far, including the time before a resume and excluding the time
    /// spent in observers.
    pub elapsed: Duration,
    /// Wall time spent in observers so far in this run (not counted in `elapsed`).
    pub observer_time: Duration,
}

/// Called by the trainer; every method has a no-op default. An error stops training and is
/// returned to the caller as [`TrainError::Observer`] (or [`TrainError::Stopped`] for
/// [`ObserverError::stop`]). The time observers take is not training time: it is left out of
/// [`Context::elapsed`].
pub trait Observer<M> {
    /// Before the first epoch of this run (fresh or resumed: see `ctx.start_epoch`).
    fn on_start(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        Ok(())
    }
    /// After every epoch. Keep it cheap.
    fn on_epoch(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        Ok(())
    }
    /// At the analysis epochs of the [`AnalysisSchedule`] (after `on_epoch`).
    fn on_analysis(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        Ok(())
    }
    /// After the last epoch.
    fn on_finish(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        Ok(())
    }
}

/// A list of observers, itself an observer: each call goes to every member in order.
pub struct Observers<'o, M> {
    list: Vec<Box<dyn Observer<M> + 'o>>,
}

impl<M> Default for Observers<'_, M> {
    fn default() -> Self {
        Observers { list: Vec::new() }
    }
}

impl<'o, M> Observers<'o, M> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append an observer.
    pub fn with(mut self, observer: impl Observer<M> + 'o) -> Self {
        self.list.push(Box::new(observer));
        self
    }

    /// Append an observer.
    pub fn push(&mut self, observer: impl Observer<M> + 'o) {
        self.list.push(Box::new(observer));
    }
}

impl<M> Observer<M> for Observers<'_, M> {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.list.iter_mut().try_for_each(|o| o.on_start(ctx))
    }
    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.list.iter_mut().try_for_each(|o| o.on_epoch(ctx))
    }
    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.list.iter_mut().try_for_each(|o| o.on_analysis(ctx))
    }
    fn on_finish(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.list.iter_mut().try_for_each(|o| o.on_finish(ctx))
    }
}

impl<M, O: Observer<M> + ?Sized> Observer<M> for &mut O {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        (**self).on_start(ctx)
    }
    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        (**self).on_epoch(ctx)
    }
    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        (**self).on_analysis(ctx)
    }
    fn on_finish(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        (**self).on_finish(ctx)
    }
}

/// The analysis epochs: those at which [`Observer::on_analysis`] fires. The last epoch always
/// does. (Not to be confused with checkpoints, the resumable state a [`Checkpointer`] writes.)
///
/// [`Checkpointer`]: crate::Checkpointer
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisSchedule {
    /// 1, 2, 5, 10, 20, 50, 100, ... (the default).
    #[default]
    LogSpaced,
    /// Every k epochs (k >= 1).
    Every(usize),
    /// These epochs.
    Epochs(Vec<usize>),
    /// k per decade, evenly in log epoch: round(10^(j / k)) for j = 0, 1, 2, ... (k >= 1;
    /// k = 10 gives 1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100, ...).
    PerDecade(usize),
}

impl AnalysisSchedule {
    /// Whether 1-based `epoch` of a run of `total` epochs is an analysis epoch.
    pub fn contains(&self, epoch: usize, total: usize) -> bool {
        if epoch == total {
            return true;
        }
        match self {
            AnalysisSchedule::LogSpaced => {
                let mut e = epoch;
                while e >= 10 && e.is_multiple_of(10) {
                    e /= 10;
                }
                epoch > 0 && matches!(e, 1 | 2 | 5)
            }
            AnalysisSchedule::Every(k) => *k > 0 && epoch.is_multiple_of(*k),
            AnalysisSchedule::Epochs(list) => list.contains(&epoch),
            AnalysisSchedule::PerDecade(k) => {
                if *k == 0 || epoch == 0 {
                    return false;
                }
                // The j nearest k log10(epoch), and its neighbours against rounding.
                let k = *k as f64;
                let j = (k * (epoch as f64).log10()).round();
                [j - 1.0, j, j + 1.0]
                    .iter()
                    .any(|&j| j >= 0.0 && 10f64.powf(j / k).round() as usize == epoch)
            }
        }
    }

    /// The first analysis epochs of a run of `total` epochs, for messages: "1, 2, 5, 10, 20,
    /// 50, ..." (those up to the sixth, then "...").
    pub fn describe(&self, total: usize) -> String {
        let mut shown: Vec<String> = Vec::new();
        for e in 1..=total {
            if self.contains(e, total) {
                if shown.len() == 6 {
                    shown.push("...".into());
                    break;
                }
                shown.push(e.to_string());
            }
        }
        shown.join(", ")
    }

    /// All analysis epochs of a run of `total` epochs, ascending.
    pub fn epochs(&self, total: usize) -> Vec<usize> {
        (1..=total).filter(|&e| self.contains(e, total)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_spaced() {
        assert_eq!(
            AnalysisSchedule::LogSpaced.epochs(1200),
            vec![1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1200]
        );
        assert_eq!(AnalysisSchedule::LogSpaced.epochs(1), vec![1]);
        assert_eq!(AnalysisSchedule::Every(3).epochs(7), vec![3, 6, 7]);
        assert_eq!(
            AnalysisSchedule::Epochs(vec![4, 2]).epochs(5),
            vec![2, 4, 5]
        );
        assert_eq!(
            AnalysisSchedule::PerDecade(10).epochs(100),
            vec![1, 2, 3, 4, 5, 6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 63, 79, 100]
        );
        // One per decade: the powers of ten, exactly, far out.
        assert_eq!(
            AnalysisSchedule::PerDecade(1).epochs(1_000_000),
            vec![1, 10, 100, 1000, 10_000, 100_000, 1_000_000]
        );
        // k per decade gives k + 1 epochs in [10^d, 10^(d+1)] (fewer where rounding merges
        // neighbours among the first epochs), counted up to 30,000.
        let e = AnalysisSchedule::PerDecade(20).epochs(30_000);
        assert_eq!(
            e.iter().filter(|&&x| (1000..=10_000).contains(&x)).count(),
            21
        );
        assert!(!AnalysisSchedule::PerDecade(0).contains(3, 10));
        assert_eq!(
            AnalysisSchedule::LogSpaced.describe(1000),
            "1, 2, 5, 10, 20, 50, ..."
        );
        assert_eq!(AnalysisSchedule::LogSpaced.describe(3), "1, 2, 3");
    }
}
