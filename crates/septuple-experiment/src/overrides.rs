//! The experiment's settings as a command line gives them: a [`Preset`] and the few settings
//! given over it ([`Overrides`]), applied in that order whatever the order of the flags.
//!
//! ```
//! use septuple_experiment::overrides::{parse_batch, Overrides, Preset};
//! let overrides = Overrides {
//!     preset: Preset::Smoke,
//!     epochs: Some(3),
//!     batch: Some(parse_batch("full")?),
//!     ..Overrides::default()
//! };
//! let experiment = overrides.check()?;
//! assert_eq!(experiment.config().sgd.epochs, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::Path;

use septuple_train::Batch;

use crate::config::{Experiment, ExperimentConfig};
use crate::error::ExperimentError;
use crate::report::{write_outputs, Report};
use crate::runner::{run, RunOptions};

/// The settings an experiment starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// [`ExperimentConfig::quick`]: 1,000 epochs, batch 100, two seeds.
    #[default]
    Quick,
    /// [`ExperimentConfig::paper`]: the paper's scale, 30,000 epochs, one seed.
    Paper,
    /// [`ExperimentConfig::smoke`]: a few epochs on a few hundred samples.
    Smoke,
}

impl Preset {
    /// The preset's settings.
    pub fn config(self) -> ExperimentConfig {
        match self {
            Preset::Quick => ExperimentConfig::quick(),
            Preset::Paper => ExperimentConfig::paper(),
            Preset::Smoke => ExperimentConfig::smoke(),
        }
    }
}

/// Settings given over a [`Preset`]; `None` keeps the preset's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// The settings to start from.
    pub preset: Preset,
    /// Replace the preset's initialisation, loss, learning rate and batch by TensorFlow/Keras'
    /// defaults ([`ExperimentConfig::keras_defaults`]) before the flags below go over them.
    pub keras: bool,
    /// Epochs of every run.
    pub epochs: Option<usize>,
    /// The batch of an SGD step.
    pub batch: Option<Batch>,
    /// The learning rate (a constant schedule's rate; see [`septuple_train::SgdConfig`]).
    pub learning_rate: Option<f64>,
    /// Seeds 1..=k: k runs of every network.
    pub seeds: Option<u64>,
    /// Analyses per decade of epochs ([`ExperimentConfig::analyses_per_decade`]).
    pub analyses_per_decade: Option<usize>,
}

impl Overrides {
    /// The preset's settings with these over them, unchecked.
    pub fn config(&self) -> ExperimentConfig {
        let mut config = self.preset.config();
        if self.keras {
            config = config.keras_defaults();
        }
        if let Some(e) = self.epochs {
            config.sgd.epochs = e;
        }
        if let Some(b) = self.batch {
            config.sgd.batch = b;
        }
        if let Some(x) = self.learning_rate {
            config.sgd.learning_rate = x;
        }
        if let Some(k) = self.seeds {
            config.seeds = (1..=k).collect();
        }
        if let Some(k) = self.analyses_per_decade {
            config.analyses_per_decade = Some(k);
        }
        config
    }

    /// The settings, checked ([`ExperimentConfig::check`]): an error names the first wrong
    /// field (zero epochs, zero seeds, a learning rate that is not positive, ...).
    pub fn check(&self) -> Result<Experiment, ExperimentError> {
        self.config().check()
    }
}

/// A batch as a command line gives it: a whole number of samples, or `full` for one step per
/// epoch on the whole training set.
pub fn parse_batch(text: &str) -> Result<Batch, ParseBatchError> {
    match text.trim() {
        "full" => Ok(Batch::Full),
        n => n.parse().map(Batch::Size).map_err(|_| ParseBatchError {
            given: text.to_string(),
        }),
    }
}

/// A batch that is neither a whole number nor `full`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{given}' is not a batch; expected a whole number of samples or 'full'")]
pub struct ParseBatchError {
    /// The text given.
    pub given: String,
}

/// A batch as [`parse_batch`] reads it back: the number of samples, or `full`.
pub struct BatchText(pub Batch);

impl fmt::Display for BatchText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Batch::Size(b) => write!(f, "{b}"),
            Batch::Full => f.write_str("full"),
        }
    }
}

impl Experiment {
    /// One line on what will run: epochs, batch, learning rate, objective and seeds.
    pub fn describe(&self) -> String {
        let c = self.config();
        format!(
            "{} epochs, batch {}, lr {}{}{}, seeds {:?}, analyses at epochs {}",
            c.sgd.epochs,
            BatchText(c.sgd.batch),
            c.sgd.learning_rate,
            match c.sgd.objective {
                septuple_train::Objective::MeanSquaredError => " on Keras' mse",
                _ => "",
            },
            match c.sgd.precision {
                septuple_train::Precision::F32 => " in float32",
                _ => "",
            },
            c.seeds,
            self.schedule().describe(c.sgd.epochs)
        )
    }
}

/// Run the experiment into `out` ([`run`]) and write its metrics, figures and summary there
/// ([`write_outputs`]); the report is returned (its [`Report::markdown`] is the summary).
pub fn run_and_report(
    experiment: &Experiment,
    out: &Path,
    options: &RunOptions,
) -> Result<Report, ExperimentError> {
    let records = run(experiment, out, options)?;
    write_outputs(experiment, &records, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_go_over_the_preset() {
        assert_eq!(Overrides::default().config(), ExperimentConfig::quick());
        let o = Overrides {
            preset: Preset::Paper,
            epochs: Some(7),
            batch: Some(Batch::Full),
            learning_rate: Some(0.5),
            seeds: Some(3),
            analyses_per_decade: Some(10),
            keras: false,
        };
        let c = o.config();
        let mut expected = ExperimentConfig::paper();
        expected.sgd.epochs = 7;
        expected.sgd.batch = Batch::Full;
        expected.sgd.learning_rate = 0.5;
        expected.seeds = vec![1, 2, 3];
        expected.analyses_per_decade = Some(10);
        assert_eq!(c, expected);
        let e = o.check().unwrap();
        assert_eq!(
            e.describe(),
            "7 epochs, batch full, lr 0.5, seeds [1, 2, 3], analyses at epochs 1, 2, 3, 4, 5, 6, ..."
        );
        assert_eq!(e.schedule().epochs(7), [1, 2, 3, 4, 5, 6, 7]);
    }

    /// Keras' defaults replace the preset's, and the flags still go over them.
    #[test]
    fn keras_defaults_sit_between_the_preset_and_the_flags() {
        let o = Overrides {
            preset: Preset::Paper,
            keras: true,
            batch: Some(Batch::Size(64)),
            ..Overrides::default()
        };
        let mut expected = ExperimentConfig::paper().keras_defaults();
        expected.sgd.batch = Batch::Size(64);
        assert_eq!(o.config(), expected);
        assert!(o
            .check()
            .unwrap()
            .describe()
            .contains("lr 0.01 on Keras' mse"));
    }

    #[test]
    fn wrong_values_are_named() {
        let zero_seeds = Overrides {
            seeds: Some(0),
            ..Overrides::default()
        };
        assert!(matches!(
            zero_seeds.check(),
            Err(ExperimentError::Config { field, .. }) if field == "seeds"
        ));
        assert!(Overrides {
            learning_rate: Some(f64::NAN),
            ..Overrides::default()
        }
        .check()
        .is_err());
        assert!(matches!(
            Overrides {
                analyses_per_decade: Some(0),
                ..Overrides::default()
            }
            .check(),
            Err(ExperimentError::Config { field, .. }) if field == "analyses_per_decade"
        ));
    }

    #[test]
    fn batches_read_back() {
        assert_eq!(parse_batch("full"), Ok(Batch::Full));
        assert_eq!(parse_batch("100"), Ok(Batch::Size(100)));
        let e = parse_batch("ten").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'ten' is not a batch; expected a whole number of samples or 'full'"
        );
        for b in [Batch::Full, Batch::Size(64)] {
            assert_eq!(parse_batch(&BatchText(b).to_string()), Ok(b));
        }
    }
}
