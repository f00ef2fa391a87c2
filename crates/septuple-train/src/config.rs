//! SGD configuration: unchecked [`SgdConfig`] -> [`SgdConfig::check`] -> [`Sgd`].

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// How many samples one SGD step uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Batch {
    /// Mini-batches of this many samples (the last of an epoch may be smaller).
    Size(usize),
    /// One step per epoch on the whole training set.
    Full,
}

/// The learning rate as a function of the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate in every epoch.
    Constant,
    /// The rate is multiplied by `factor` every `every` epochs: eta * factor^floor((e-1)/every).
    Step {
        /// Epochs between decays (>= 1).
        every: usize,
        /// The decay factor, in (0, 1].
        factor: f64,
    },
    /// eta / (1 + (e-1)/half_life): the rate halves after `half_life` epochs.
    InverseTime {
        /// Epochs until the rate has halved (> 0).
        half_life: f64,
    },
}

/// What SGD minimises.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The boundary loss of Eq. (2.11) with the outputs compared with the targets, averaged over
    /// the batch (the paper's choice, Sec. 10).
    Boundary,
    /// Keras' `mse` loss: the squared output error averaged over the n_out outputs and over
    /// the batch, (1/n_out) |x_out - t|^2 per sample, which is 2/n_out times the boundary loss
    /// of Eq. (2.11). It has the minimiser of [`Boundary`](Objective::Boundary) and gradients
    /// 2/n_out times as large, so SGD on it with learning rate eta takes the steps of SGD on
    /// (2.11) with learning rate 2 eta / n_out (the TensorFlow default of Sec. 10's likely
    /// configuration). The batch losses a step reports are those of (2.11), so that runs on
    /// either objective are compared on one scale.
    MeanSquaredError,
    /// The bulk loss of Eq. (3.4) with mass `mass` at the bulk-solved states of Eq. (3.2),
    /// averaged over the batch: U_0 of Eq. (4.1) on the batch. The gradient with respect to w
    /// and b is taken at the solved states (the envelope theorem: the states are stationary).
    Bulk {
        /// The local-objective mass m of Eq. (3.4).
        mass: f64,
    },
}

impl Objective {
    /// The factor between this objective's gradient with respect to the parameters and that of
    /// the boundary loss (2.11), for a network with `n_outputs` outputs: 1 for
    /// [`Boundary`](Objective::Boundary), 2 / n_outputs for
    /// [`MeanSquaredError`](Objective::MeanSquaredError), None for the bulk loss (not a
    /// multiple of (2.11)).
    ///
    /// ```
    /// use septuple_train::Objective;
    /// assert_eq!(Objective::Boundary.boundary_gradient_scale(10), Some(1.0));
    /// assert_eq!(Objective::MeanSquaredError.boundary_gradient_scale(10), Some(0.2));
    /// assert_eq!(Objective::Bulk { mass: 0.0 }.boundary_gradient_scale(10), None);
    /// ```
    pub fn boundary_gradient_scale(&self, n_outputs: usize) -> Option<f64> {
        match self {
            Objective::Boundary => Some(1.0),
            Objective::MeanSquaredError => Some(2.0 / n_outputs.max(1) as f64),
            Objective::Bulk { .. } => None,
        }
    }
}

/// The floating-point type SGD trains in.
///
/// Only the training steps change: the analyses (metrics, spectra, bulk solves, checkpoints)
/// always read the model in f64.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Double precision throughout (the default).
    #[default]
    F64,
    /// Single precision on the layered fast path ([`LayeredWorkspace`](crate::LayeredWorkspace)):
    /// parameters, activations, derivatives, deltas, the loss and the gradient sums are f32,
    /// and the training set's inputs and targets are rounded to f32 once, when the workspace
    /// is made. The learning rate is rounded to f32 at every step; activation functions are
    /// evaluated in f64 and their values and derivatives rounded to f32. The model
    /// ([`septuple_core::Layered`]) stays f64: after an epoch the f32 parameters are widened
    /// into it exactly, so every analysis runs in f64 on the f32-trained values. Only with
    /// [`Objective::Boundary`] or [`Objective::MeanSquaredError`] and a layered network: [`SgdConfig::check`] refuses it with the
    /// bulk objective, and a [`Dag`](crate::Dag) refuses it when its workspace is made.
    F32,
}

impl Precision {
    /// Whether this is [`Precision::F64`], the default (not written out by serde, so settings
    /// without the field read and write the same as before it existed).
    pub fn is_f64(&self) -> bool {
        *self == Precision::F64
    }
}

/// Unchecked SGD settings; [`check`](SgdConfig::check) turns them into an [`Sgd`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate eta (> 0, finite).
    pub learning_rate: f64,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Batch size.
    pub batch: Batch,
    /// Number of epochs (>= 1).
    pub epochs: usize,
    /// Seed of the shuffling: the order of epoch e depends only on (seed, e).
    pub seed: u64,
    /// The loss to minimise.
    pub objective: Objective,
    /// The floating-point type of the training steps (absent in JSON means f64).
    #[serde(default, skip_serializing_if = "Precision::is_f64")]
    pub precision: Precision,
}

impl Default for SgdConfig {
    /// eta = 0.01, constant, batch 100, 10 epochs, seed 0, boundary loss, f64.
    fn default() -> Self {
        SgdConfig {
            learning_rate: 0.01,
            schedule: Schedule::Constant,
            batch: Batch::Size(100),
            epochs: 10,
            seed: 0,
            objective: Objective::Boundary,
            precision: Precision::F64,
        }
    }
}

/// Checked SGD settings: every value is inside its domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SgdConfig", into = "SgdConfig")]
pub struct Sgd(SgdConfig);

impl TryFrom<SgdConfig> for Sgd {
    type Error = TrainError;
    fn try_from(c: SgdConfig) -> Result<Self, TrainError> {
        c.check()
    }
}

impl From<Sgd> for SgdConfig {
    fn from(s: Sgd) -> Self {
        s.0
    }
}

impl SgdConfig {
    /// Validate every field.
    pub fn check(self) -> Result<Sgd, TrainError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(TrainError::config(
                "learning_rate",
                self.learning_rate,
                "a finite number > 0",
            ));
        }
        if self.epochs == 0 {
            return Err(TrainError::config("epochs", 0, "at least 1"));
        }
        if self.batch == Batch::Size(0) {
            return Err(TrainError::config(
                "batch",
                0,
                "at least 1 sample per batch",
            ));
        }
        match self.schedule {
            Schedule::Constant => {}
            Schedule::Step { every, factor } => {
                if every == 0 {
                    return Err(TrainError::config("schedule.every", every, "at least 1"));
                }
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(TrainError::config("schedule.factor", factor, "in (0, 1]"));
                }
            }
            Schedule::InverseTime { half_life } => {
                if !(half_life.is_finite() && half_life > 0.0) {
                    return Err(TrainError::config(
                        "schedule.half_life",
                        half_life,
                        "a finite number > 0",
                    ));
                }
            }
        }
        if let Objective::Bulk { mass } = self.objective {
            if !mass.is_finite() {
                return Err(TrainError::config(
                    "objective.mass",
                    mass,
                    "a finite number",
                ));
            }
        }
        if self.precision == Precision::F32 && matches!(self.objective, Objective::Bulk { .. }) {
            return Err(TrainError::config(
                "precision",
                "f32",
                "f64 with the bulk objective (float32 training is for the boundary objective)",
            ));
        }
        Ok(Sgd(self))
    }
}

impl Sgd {
    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.0
    }

    /// Number of epochs.
    pub fn epochs(&self) -> usize {
        self.0.epochs
    }

    /// The same settings with another number of epochs (to extend a finished run).
    pub fn with_epochs(&self, epochs: usize) -> Result<Sgd, TrainError> {
        SgdConfig {
            epochs,
            ..self.0.clone()
        }
        .check()
    }

    /// The learning rate in 1-based epoch `epoch`.
    pub fn learning_rate(&self, epoch: usize) -> f64 {
        let e = epoch.saturating_sub(1);
        let eta = self.0.learning_rate;
        match self.0.schedule {
            Schedule::Constant => eta,
            Schedule::Step { every, factor } => {
                eta * factor.powi(i32::try_from(e / every).unwrap_or(i32::MAX))
            }
            Schedule::InverseTime { half_life } => eta / (1.0 + e as f64 / half_life),
        }
    }

    /// Samples per step for a training set of `n` samples.
    pub fn batch_size(&self, n: usize) -> usize {
        match self.0.batch {
            Batch::Size(b) => b.min(n),
            Batch::Full => n,
        }
    }

    /// The sample order of 1-based epoch `epoch` over `n` samples: a Fisher-Yates shuffle by a
    /// ChaCha8 stream seeded with `seed` on stream `epoch`. Full batches are not shuffled (the
    /// order does not change a full-batch gradient beyond rounding, and keeping it fixed keeps
    /// the sum's rounding fixed too).
    pub fn order(&self, epoch: usize, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.batch_size(n) < n {
            let mut rng = ChaCha8Rng::seed_from_u64(self.0.seed);
            rng.set_stream(epoch as u64);
            order.shuffle(&mut rng);
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values() {
        let ok = SgdConfig::default();
        assert!(ok.clone().check().is_ok());
        for bad in [
            SgdConfig {
                learning_rate: -1.0,
                ..ok.clone()
            },
            SgdConfig {
                learning_rate: f64::NAN,
                ..ok.clone()
            },
            SgdConfig {
                epochs: 0,
                ..ok.clone()
            },
            SgdConfig {
                batch: Batch::Size(0),
                ..ok.clone()
            },
            SgdConfig {
                schedule: Schedule::Step {
                    every: 0,
                    factor: 0.5,
                },
                ..ok.clone()
            },
            SgdConfig {
                schedule: Schedule::Step {
                    every: 3,
                    factor: 1.5,
                },
                ..ok.clone()
            },
            SgdConfig {
                schedule: Schedule::InverseTime { half_life: 0.0 },
                ..ok.clone()
            },
            SgdConfig {
                objective: Objective::Bulk { mass: f64::NAN },
                ..ok.clone()
            },
            SgdConfig {
                objective: Objective::Bulk { mass: 0.1 },
                precision: Precision::F32,
                ..ok.clone()
            },
        ] {
            let e = bad.check().unwrap_err();
            assert!(matches!(e, TrainError::Config { .. }), "{e}");
        }
    }

    #[test]
    fn schedules() {
        let s = SgdConfig {
            learning_rate: 1.0,
            schedule: Schedule::Step {
                every: 2,
                factor: 0.5,
            },
            ..SgdConfig::default()
        }
        .check()
        .unwrap();
        let rates: Vec<f64> = (1..=5).map(|e| s.learning_rate(e)).collect();
        assert_eq!(rates, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        let s = SgdConfig {
            learning_rate: 1.0,
            schedule: Schedule::InverseTime { half_life: 10.0 },
            ..SgdConfig::default()
        }
        .check()
        .unwrap();
        assert_eq!(s.learning_rate(1), 1.0);
        assert_eq!(s.learning_rate(11), 0.5);
    }

    #[test]
    fn order_is_a_seeded_permutation() {
        let s = SgdConfig::default().check().unwrap();
        let a = s.order(3, 1000);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, s.order(3, 1000));
        assert_ne!(a, s.order(4, 1000));
        // Pinned: the first indices of epoch 1 for seed 0 (a changed stream shows here).
        let first: Vec<usize> = s.order(1, 1000)[..5].to_vec();
        assert_eq!(first, vec![128, 798, 755, 42, 883]);
    }

    #[test]
    fn serde_checks() {
        let json = r#"{"learning_rate":-1.0,"schedule":"constant","batch":"full","epochs":3,"seed":1,"objective":"boundary"}"#;
        assert!(serde_json::from_str::<Sgd>(json).is_err());
        let s = SgdConfig::default().check().unwrap();
        let back: Sgd = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn precision_is_optional_in_json() {
        // Settings written before the field existed read as f64 and write back byte for byte.
        let old = r#"{"learning_rate":0.01,"schedule":"constant","batch":{"size":100},"epochs":10,"seed":0,"objective":"boundary"}"#;
        let s: Sgd = serde_json::from_str(old).unwrap();
        assert_eq!(s.config().precision, Precision::F64);
        assert_eq!(s, SgdConfig::default().check().unwrap());
        assert_eq!(serde_json::to_string(&s).unwrap(), old);
        // f32 is written, and read back.
        let f32 = SgdConfig {
            precision: Precision::F32,
            ..SgdConfig::default()
        }
        .check()
        .unwrap();
        let text = serde_json::to_string(&f32).unwrap();
        assert!(text.ends_with(r#","precision":"f32"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Sgd>(&text).unwrap(), f32);
        // f32 with the bulk objective is refused, naming the field.
        let bulk = text.replace(r#""boundary""#, r#"{"bulk":{"mass":0.5}}"#);
        let e = serde_json::from_str::<Sgd>(&bulk).unwrap_err().to_string();
        assert!(e.contains("precision"), "{e}");
    }
}
