//! Runs that go on without learning: a loss that no longer changes and units stuck where
//! their activation is flat (a bounded activation such as tanh pushed far into its tails by a
//! learning rate far too large). Such a run ends normally, with chance accuracy, unless
//! something looks: [`SaturationCheck`] does, and says so in [`RunWarning`]s.

use ndarray::{Array2, ArrayView2};
use septuple_core::{Activation, CoreError, Network, Role};
use serde::{Deserialize, Serialize};

/// A warning about the state of a run, shown to observers in
/// [`Context::warnings`](crate::Context) and recorded in [`MetricsRow`](crate::MetricsRow).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunWarning {
    /// The loss over the training set (the sample-weighted mean of the epoch's batch losses)
    /// has not changed, up to [`SaturationCheck::tolerance`], for `epochs` consecutive epochs.
    FrozenLoss {
        /// Consecutive epochs without change.
        epochs: usize,
    },
    /// `fraction` of the units have |f'| below `threshold` over the training set (unit-sample pairs):
    /// no gradient passes through them (the derivative f' of Eq. 5.4 is the factor every
    /// back-propagated error is multiplied by).
    Saturated {
        /// Fraction of the unit-sample pairs that are saturated.
        fraction: f64,
        /// The |f'| below which a unit counts as saturated on a sample.
        threshold: f64,
    },
}

impl std::fmt::Display for RunWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunWarning::FrozenLoss { epochs } => {
                write!(f, "the loss has not changed for {epochs} epochs")
            }
            RunWarning::Saturated {
                fraction,
                threshold,
            } => write!(
                f,
                "{:.1} % of the units have |f'| < {threshold:e} over the training set (unit-sample pairs) (saturated; lower the learning rate)",
                100.0 * fraction
            ),
        }
    }
}

/// How the trainer watches for a frozen or saturated run, and whether it stops one.
///
/// After every epoch the trainer compares the training loss (the sample-weighted mean of the
/// batch losses) with the previous epoch's. Once it has not changed for `frozen_epochs`
/// consecutive epochs, [`RunWarning::FrozenLoss`] is raised and the units' derivatives
/// are evaluated over the training set (one forward pass; only then, so a healthy run pays
/// nothing); if at least `min_fraction` of the unit-sample pairs are below `threshold`,
/// [`RunWarning::Saturated`] too. With `stop`, both together end the run with
/// [`TrainError::Saturated`](crate::TrainError::Saturated).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaturationCheck {
    /// |f'| below which a unit counts as saturated on a sample (default 1e-6).
    pub threshold: f64,
    /// Fraction of saturated unit-sample pairs from which the run counts as
    /// saturated (default 0.5).
    pub min_fraction: f64,
    /// Consecutive epochs with an unchanged loss from which the loss counts as frozen
    /// (default 3).
    pub frozen_epochs: usize,
    /// Relative change of the training loss up to which it counts as unchanged (default 1e-12:
    /// a frozen network's loss changes only by the rounding of sums taken in another sample
    /// order, a few ulps; a learning network's by far more).
    pub tolerance: f64,
    /// Stop with [`TrainError::Saturated`](crate::TrainError::Saturated) when the loss is
    /// frozen and the units saturated (default false: warn only).
    pub stop: bool,
}

impl Default for SaturationCheck {
    fn default() -> Self {
        SaturationCheck {
            threshold: 1e-6,
            min_fraction: 0.5,
            frozen_epochs: 3,
            tolerance: 1e-12,
            stop: false,
        }
    }
}

/// The state of the check along a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Watch {
    last_loss: Option<f64>,
    frozen: usize,
    saturated: Option<f64>,
    pub(crate) warnings: Vec<RunWarning>,
}

impl Watch {
    /// Update with the training loss `loss` of the epoch just completed; `saturation` is
    /// evaluated (lazily) when the loss has just become frozen.
    pub(crate) fn update(
        &mut self,
        check: &SaturationCheck,
        loss: f64,
        saturation: impl FnOnce() -> Result<f64, CoreError>,
    ) -> Result<(), CoreError> {
        let unchanged = self
            .last_loss
            .is_some_and(|l| (loss - l).abs() <= check.tolerance * l.abs().max(loss.abs()));
        self.last_loss = Some(loss);
        if unchanged {
            self.frozen += 1;
        } else {
            self.frozen = 0;
            self.saturated = None;
        }
        self.warnings.clear();
        if self.frozen >= check.frozen_epochs.max(1) {
            self.warnings.push(RunWarning::FrozenLoss {
                epochs: self.frozen,
            });
            if self.saturated.is_none() {
                self.saturated = Some(saturation()?);
            }
            let fraction = self.saturated.unwrap_or(0.0);
            if fraction >= check.min_fraction && fraction > 0.0 {
                self.warnings.push(RunWarning::Saturated {
                    fraction,
                    threshold: check.threshold,
                });
            }
        }
        Ok(())
    }

    /// Consecutive epochs with an unchanged loss.
    pub(crate) fn frozen(&self) -> usize {
        self.frozen
    }

    /// The fraction of saturated units, if evaluated while the loss is frozen.
    pub(crate) fn saturated(&self) -> Option<f64> {
        self.saturated
    }

    /// Whether the run is frozen and saturated.
    pub(crate) fn is_saturated(&self) -> bool {
        self.warnings
            .iter()
            .any(|w| matches!(w, RunWarning::Saturated { .. }))
    }
}

/// Over the units of `net` the activation acts on (hidden and output neurons) and the samples
/// of `inputs`, the fraction of (unit, sample) pairs whose |f'(y)| (Eq. 5.4 at the sample's
/// forward state, y = w x + b) is below `threshold`; 0 for a network with inputs only. Outputs count too: saturated outputs
/// alone stop every gradient, since each back-propagated error starts as (x_out - t) f'_out.
pub fn saturated_fraction<N: Network>(
    net: &N,
    inputs: ArrayView2<'_, f64>,
    threshold: f64,
) -> Result<f64, CoreError> {
    let driven: Vec<usize> = net
        .roles()
        .iter()
        .enumerate()
        .filter(|(_, r)| **r != Role::Input)
        .map(|(i, _)| i)
        .collect();
    if driven.is_empty() {
        return Ok(0.0);
    }
    let x = net.forward_states(inputs)?;
    // y^T = w x^T + b: one column per sample.
    let xt: Array2<f64> = x.t().as_standard_layout().into_owned();
    let y = net.weights_times(xt.view())?;
    let b = net.bias();
    let mut saturated = 0usize;
    for &i in &driven {
        let act = net.activation(i);
        saturated += y
            .row(i)
            .iter()
            .filter(|&&yi| act.derivative(yi + b[i]).abs() < threshold)
            .count();
    }
    let pairs = driven.len() * x.nrows();
    Ok(saturated as f64 / pairs.max(1) as f64)
}
