//! The experiment's settings: the networks, the data, SGD, the seeds, and the presets.

use septuple_train::{Batch, Objective, Schedule, Sgd, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;

/// The fraction of small eigenvalues gamma used for Fig. 1 and the gap -> beta relation.
pub const GAMMA: f64 = 1.0 / 3.0;

/// One of the networks of Sec. 10.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// "deep" or "shallow".
    pub name: String,
    /// Layer sizes.
    pub sizes: Vec<usize>,
}

/// The paper's deep (784-40-20-10) and shallow (784-60-10) networks, N = 854 each.
pub fn paper_networks() -> Vec<NetworkSpec> {
    vec![
        NetworkSpec {
            name: "deep".into(),
            sizes: vec![784, 40, 20, 10],
        },
        NetworkSpec {
            name: "shallow".into(),
            sizes: vec![784, 60, 10],
        },
    ]
}

/// The experiment's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Epochs per run.
    pub epochs: usize,
    /// Mini-batch size (None: full batch).
    pub batch: Option<usize>,
    /// Learning rate of the boundary loss (2.11) (1/2 the summed squared error per sample).
    pub learning_rate: f64,
    /// Seeds (each gives the initial weights and the sample order).
    pub seeds: Vec<u64>,
    /// Training samples (the first ones; the paper uses 6,000).
    pub train_samples: usize,
    /// Test samples (the ones after the training samples).
    pub test_samples: usize,
    /// The networks.
    pub networks: Vec<NetworkSpec>,
    /// Epochs whose spectra are histogrammed (Figs. 4-5), if they are analysis epochs.
    pub histogram_epochs: Vec<usize>,
}

impl ExperimentConfig {
    /// The quick default: 1,000 epochs, batch 100, two seeds.
    pub fn quick() -> Self {
        ExperimentConfig {
            epochs: 1000,
            batch: Some(100),
            learning_rate: 0.01,
            seeds: vec![1, 2],
            train_samples: 6000,
            test_samples: 4000,
            networks: paper_networks(),
            histogram_epochs: vec![100, 1000, 10000],
        }
    }

    /// The paper's scale: 30,000 epochs (one seed unless more are asked for).
    pub fn paper() -> Self {
        ExperimentConfig {
            epochs: 30_000,
            seeds: vec![1],
            ..Self::quick()
        }
    }

    /// The SGD settings of the run with `seed`.
    pub(crate) fn sgd(&self, seed: u64) -> Result<Sgd, ExperimentError> {
        Ok(SgdConfig {
            learning_rate: self.learning_rate,
            schedule: Schedule::Constant,
            batch: self.batch.map_or(Batch::Full, Batch::Size),
            epochs: self.epochs,
            seed,
            objective: Objective::Boundary,
        }
        .check()?)
    }
}
