//! The experiment's settings, checked once: an [`ExperimentConfig`] (public fields, serde)
//! becomes an [`Experiment`] through [`ExperimentConfig::check`], which validates every field
//! and names the first wrong one in an [`ExperimentError::Config`].
//!
//! ```
//! use septuple_experiment::{ExperimentConfig, ExperimentError};
//! let experiment = ExperimentConfig::quick().check()?;
//! assert_eq!(experiment.n_neurons(), 854);
//! let mut config = ExperimentConfig::quick();
//! config.seeds = vec![1, 1];
//! assert!(matches!(config.check(), Err(ExperimentError::Config { field, .. }) if field == "seeds"));
//! # Ok::<(), ExperimentError>(())
//! ```

use std::collections::BTreeSet;

use septuple_core::{BulkSolver, Init};
use septuple_train::{AnalysisSchedule, Batch, Objective, Schedule, Sgd, SgdConfig, TrainError};
use serde::{Deserialize, Serialize};

use crate::error::ExperimentError;

/// One of the networks of Sec. 10: a layered tanh network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Its name ("deep", "shallow"): letters, digits, '-' and '_', as it names the run's files.
    pub name: String,
    /// Layer sizes, inputs first (at least two layers).
    pub sizes: Vec<usize>,
}

impl NetworkSpec {
    /// N: the number of neurons, the sum of the layer sizes.
    pub fn n_neurons(&self) -> usize {
        self.sizes.iter().sum()
    }
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

fn default_gamma() -> f64 {
    1.0 / 3.0
}

fn torch_init() -> Init {
    Init::TorchLinear
}

fn is_torch_init(init: &Init) -> bool {
    *init == Init::TorchLinear
}

/// The experiment's settings, unchecked; [`check`](ExperimentConfig::check) turns them into an
/// [`Experiment`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// The SGD settings of every run: learning rate (of the boundary loss (2.11), 1/2 the
    /// summed squared error per sample, in the paper's runs), schedule, batch, epochs and
    /// objective. Their `seed` is not used: each run takes its seed from `seeds`.
    pub sgd: SgdConfig,
    /// Seeds, one run of every network each (a seed gives the initial weights and the sample
    /// order); non-empty and distinct.
    pub seeds: Vec<u64>,
    /// Training samples: the first ones of the data (the paper uses 6,000); at least one.
    pub train_samples: usize,
    /// Test samples: the ones after the training samples; at least one.
    pub test_samples: usize,
    /// The networks; at least one, with distinct names.
    pub networks: Vec<NetworkSpec>,
    /// Epochs whose spectra are histogrammed (Figs. 4-5). Each must be an analysis epoch
    /// (log-spaced: 1, 2, 5, 10, 20, 50, ..., or the last one); those beyond `sgd.epochs` are
    /// not reached and not drawn.
    pub histogram_epochs: Vec<usize>,
    /// gamma, the fraction of small eigenvalues in the landscape -DeltaF(log lambda) of
    /// Eqs. (9.2)-(9.3): it sets the curves of Fig. 1 and the relation gap -> beta
    /// ([`septuple_thermo::beta_from_gap`]). In (0, 1); 1/3 by default, as in the paper's
    /// Fig. 1.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// The solver of the bulk states of Eq. (3.2), for the bulk loss U = U_0 of Eq. (4.1).
    #[serde(default)]
    pub bulk_solver: BulkSolver,
    /// The analysis epochs (where U, the spectrum and the thermodynamics are computed): `k`
    /// per decade, evenly in log epoch ([`AnalysisSchedule::PerDecade`]), or with `None` (the
    /// default) 1, 2, 5, 10, 20, 50, ... ([`AnalysisSchedule::LogSpaced`]). The last epoch is
    /// always analyzed; U_d is kept at every epoch regardless.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyses_per_decade: Option<usize>,
    /// How every run's initial weights and biases are drawn from its seed
    /// ([`Layered::random`](septuple_core::Layered::random)): PyTorch's `nn.Linear` default
    /// ([`Init::TorchLinear`], the default, and absent from serialised configs when it is the
    /// choice) or Keras' `glorot_uniform` with zero biases ([`Init::GlorotUniform`], the
    /// [`keras_defaults`](Self::keras_defaults)).
    #[serde(default = "torch_init", skip_serializing_if = "is_torch_init")]
    pub init: Init,
}

impl ExperimentConfig {
    /// The quick default: 1,000 epochs, batch 100, learning rate 0.01, two seeds, 6,000
    /// training and 4,000 test samples, the paper's networks.
    pub fn quick() -> Self {
        ExperimentConfig {
            sgd: SgdConfig {
                learning_rate: 0.01,
                schedule: Schedule::Constant,
                batch: Batch::Size(100),
                epochs: 1000,
                seed: 0,
                objective: Objective::Boundary,
                precision: septuple_train::Precision::F64,
            },
            seeds: vec![1, 2],
            train_samples: 6000,
            test_samples: 4000,
            networks: paper_networks(),
            histogram_epochs: vec![100, 1000, 10000],
            gamma: default_gamma(),
            bulk_solver: BulkSolver::default(),
            analyses_per_decade: None,
            init: Init::TorchLinear,
        }
    }

    /// These settings with TensorFlow/Keras' defaults for everything the paper leaves unstated
    /// (it says only that it used TensorFlow and SGD): Keras `Dense` layers' `glorot_uniform`
    /// weights and zero biases, the `mse` loss (the mean over the 10 outputs, 2/n_out times
    /// (2.11); [`Objective::MeanSquaredError`]), `SGD()`'s learning rate 0.01 and `fit`'s
    /// batch 32, on a constant schedule, in float32 arithmetic
    /// ([`Precision::F32`](septuple_train::Precision::F32); the analyses stay in float64).
    /// Epochs, seeds, data and networks stay as they are.
    ///
    /// ```
    /// use septuple_core::Init;
    /// use septuple_experiment::ExperimentConfig;
    /// use septuple_train::{Batch, Objective};
    /// let c = ExperimentConfig::quick().keras_defaults();
    /// assert_eq!((c.init, c.sgd.objective), (Init::GlorotUniform, Objective::MeanSquaredError));
    /// assert_eq!((c.sgd.learning_rate, c.sgd.batch), (0.01, Batch::Size(32)));
    /// assert_eq!(c.sgd.precision, septuple_train::Precision::F32);
    /// assert_eq!(c.sgd.epochs, ExperimentConfig::quick().sgd.epochs);
    /// ```
    pub fn keras_defaults(mut self) -> Self {
        self.init = Init::GlorotUniform;
        self.sgd.objective = Objective::MeanSquaredError;
        self.sgd.learning_rate = 0.01;
        self.sgd.schedule = Schedule::Constant;
        self.sgd.batch = Batch::Size(32);
        self.sgd.precision = septuple_train::Precision::F32;
        self
    }

    /// The paper's scale: 30,000 epochs and one seed, otherwise [`quick`](Self::quick).
    pub fn paper() -> Self {
        let mut c = Self::quick();
        c.sgd.epochs = 30_000;
        c.seeds = vec![1];
        c
    }

    /// A few seconds (for CI): 5 epochs, batch 50, 300 training and 100 test samples,
    /// otherwise [`quick`](Self::quick).
    pub fn smoke() -> Self {
        let mut c = Self::quick();
        c.sgd.epochs = 5;
        c.sgd.batch = Batch::Size(50);
        c.train_samples = 300;
        c.test_samples = 100;
        c
    }

    /// Validate every field; the error names the first one that is wrong.
    pub fn check(self) -> Result<Experiment, ExperimentError> {
        check_sgd(&self.sgd)?;
        check_seeds(&self.seeds)?;
        check_networks(&self.networks)?;
        for (field, n) in [
            ("train_samples", self.train_samples),
            ("test_samples", self.test_samples),
        ] {
            if n == 0 {
                return Err(ExperimentError::config(field, n, "at least 1 sample"));
            }
        }
        if self.train_samples.checked_add(self.test_samples).is_none() {
            return Err(ExperimentError::config(
                "test_samples",
                self.test_samples,
                "a count whose sum with train_samples fits in memory",
            ));
        }
        if let Some(k) = self.analyses_per_decade {
            if !(1..=1000).contains(&k) {
                return Err(ExperimentError::config(
                    "analyses_per_decade",
                    k,
                    "a whole number of analyses per decade of epochs, 1 to 1,000",
                ));
            }
        }
        if let Init::Normal { std } = self.init {
            if !(std.is_finite() && std >= 0.0) {
                return Err(ExperimentError::config(
                    "init.std",
                    std,
                    "a finite standard deviation >= 0",
                ));
            }
        }
        let schedule = analysis_schedule(self.analyses_per_decade);
        check_histogram_epochs(&self.histogram_epochs, self.sgd.epochs, &schedule)?;
        if !(self.gamma > 0.0 && self.gamma < 1.0) {
            return Err(ExperimentError::config(
                "gamma",
                self.gamma,
                "a fraction in (0, 1) (Eqs. 9.2-9.3)",
            ));
        }
        check_bulk_solver(&self.bulk_solver)?;
        Ok(Experiment { config: self })
    }
}

/// The SGD settings, through [`SgdConfig::check`]; their fields are named `sgd.<field>`.
fn check_sgd(sgd: &SgdConfig) -> Result<(), ExperimentError> {
    match sgd.clone().check() {
        Ok(_) => Ok(()),
        Err(TrainError::Config {
            field,
            value,
            expected,
        }) => Err(ExperimentError::Config {
            field: format!("sgd.{field}"),
            value,
            expected: expected.into(),
        }),
        Err(e) => Err(e.into()),
    }
}

fn check_seeds(seeds: &[u64]) -> Result<(), ExperimentError> {
    if seeds.is_empty() {
        return Err(ExperimentError::config("seeds", "[]", "at least one seed"));
    }
    if seeds.iter().collect::<BTreeSet<_>>().len() != seeds.len() {
        return Err(ExperimentError::config(
            "seeds",
            format!("{seeds:?}"),
            "distinct seeds (each names a run)",
        ));
    }
    Ok(())
}

fn check_networks(networks: &[NetworkSpec]) -> Result<(), ExperimentError> {
    if networks.is_empty() {
        return Err(ExperimentError::config(
            "networks",
            "[]",
            "at least one network",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, spec) in networks.iter().enumerate() {
        let name = &spec.name;
        let usable = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            return Err(ExperimentError::config(
                format!("networks[{i}].name"),
                format!("{name:?}"),
                "a non-empty name of ASCII letters, digits, '-' and '_' (it names the run's files)",
            ));
        }
        if !names.insert(name.as_str()) {
            return Err(ExperimentError::config(
                format!("networks[{i}].name"),
                format!("{name:?}"),
                "a name no other network has",
            ));
        }
        if spec.sizes.len() < 2 || spec.sizes.contains(&0) {
            return Err(ExperimentError::config(
                format!("networks[{i}].sizes"),
                format!("{:?}", spec.sizes),
                "at least two layers (inputs and outputs) of at least one neuron each",
            ));
        }
    }
    Ok(())
}

/// The analysis epochs of `analyses_per_decade` (see [`ExperimentConfig`]).
pub(crate) fn analysis_schedule(analyses_per_decade: Option<usize>) -> AnalysisSchedule {
    match analyses_per_decade {
        Some(k) => AnalysisSchedule::PerDecade(k),
        None => AnalysisSchedule::LogSpaced,
    }
}

fn check_histogram_epochs(
    epochs: &[usize],
    total: usize,
    schedule: &AnalysisSchedule,
) -> Result<(), ExperimentError> {
    for (i, &e) in epochs.iter().enumerate() {
        if !schedule.contains(e, total) {
            return Err(ExperimentError::config(
                format!("histogram_epochs[{i}]"),
                e,
                format!(
                    "an analysis epoch: {} or the last one",
                    schedule.describe(total)
                ),
            ));
        }
        if epochs[..i].contains(&e) {
            return Err(ExperimentError::config(
                format!("histogram_epochs[{i}]"),
                e,
                "an epoch not listed before",
            ));
        }
    }
    Ok(())
}

/// The domains [`BulkSolver::solve`] accepts, checked before any training.
fn check_bulk_solver(s: &BulkSolver) -> Result<(), ExperimentError> {
    if !(s.gradient_tolerance.is_finite() && s.gradient_tolerance >= 0.0) {
        return Err(ExperimentError::config(
            "bulk_solver.gradient_tolerance",
            s.gradient_tolerance,
            "a finite tolerance >= 0",
        ));
    }
    if s.max_iterations == 0 {
        return Err(ExperimentError::config(
            "bulk_solver.max_iterations",
            0,
            "at least 1 iteration",
        ));
    }
    if !(s.initial_damping.is_finite() && s.initial_damping > 0.0) {
        return Err(ExperimentError::config(
            "bulk_solver.initial_damping",
            s.initial_damping,
            "a finite damping > 0",
        ));
    }
    Ok(())
}

/// Checked settings: every field of the [`ExperimentConfig`] is inside its domain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ExperimentConfig", into = "ExperimentConfig")]
pub struct Experiment {
    config: ExperimentConfig,
}

impl TryFrom<ExperimentConfig> for Experiment {
    type Error = ExperimentError;
    fn try_from(c: ExperimentConfig) -> Result<Self, ExperimentError> {
        c.check()
    }
}

impl From<Experiment> for ExperimentConfig {
    fn from(e: Experiment) -> Self {
        e.config
    }
}

impl Experiment {
    /// The settings.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// The analysis epochs of every run (`analyses_per_decade`).
    pub fn schedule(&self) -> AnalysisSchedule {
        analysis_schedule(self.config.analyses_per_decade)
    }

    /// The SGD settings of the run with `seed`.
    pub fn sgd(&self, seed: u64) -> Result<Sgd, ExperimentError> {
        Ok(SgdConfig {
            seed,
            ..self.config.sgd.clone()
        }
        .check()?)
    }

    /// N of the first network, the one Fig. 1 is drawn for.
    pub fn n_neurons(&self) -> usize {
        self.config.networks[0].n_neurons()
    }

    /// Whether every network has the same N.
    pub fn same_n(&self) -> bool {
        let n = self.n_neurons();
        self.config.networks.iter().all(|s| s.n_neurons() == n)
    }

    /// Check the settings against the data they will run on: `samples` samples of `inputs`
    /// values each, with `targets` target values (classes).
    pub fn check_data(
        &self,
        samples: usize,
        inputs: usize,
        targets: usize,
    ) -> Result<(), ExperimentError> {
        let c = &self.config;
        let wanted = c.train_samples + c.test_samples;
        if wanted > samples {
            return Err(ExperimentError::config(
                "train_samples + test_samples",
                wanted,
                format!("at most {samples}, the samples of the data"),
            ));
        }
        for (i, spec) in c.networks.iter().enumerate() {
            let (first, last) = (spec.sizes[0], spec.sizes[spec.sizes.len() - 1]);
            if first != inputs || last != targets {
                return Err(ExperimentError::config(
                    format!("networks[{i}].sizes"),
                    format!("{:?}", spec.sizes),
                    format!("{inputs} inputs and {targets} outputs, as the data has"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change that makes a valid configuration invalid.
    type Spoil = Box<dyn Fn(&mut ExperimentConfig)>;

    /// The field named by the error of `config.check()`.
    fn field_of(config: ExperimentConfig) -> String {
        match config.check() {
            Err(ExperimentError::Config { field, .. }) => field,
            other => panic!("expected a Config error, got {other:?}"),
        }
    }

    #[test]
    fn presets_are_valid() {
        for c in [
            ExperimentConfig::quick(),
            ExperimentConfig::paper(),
            ExperimentConfig::smoke(),
            ExperimentConfig::quick().keras_defaults(),
            ExperimentConfig::smoke().keras_defaults(),
        ] {
            let e = c.clone().check().unwrap();
            assert_eq!(e.config(), &c);
            assert_eq!((e.n_neurons(), e.same_n()), (854, true));
        }
    }

    /// A serialised config without `init` (every config written before the field existed)
    /// reads as PyTorch's default and writes back without it; Keras' defaults say theirs.
    #[test]
    fn init_is_serialised_only_when_it_is_not_torch() {
        let quick = serde_json::to_string(&ExperimentConfig::quick()).unwrap();
        assert!(!quick.contains(r#""init":"#), "{quick}");
        let back: ExperimentConfig = serde_json::from_str(&quick).unwrap();
        assert_eq!(back.init, Init::TorchLinear);
        let keras = serde_json::to_string(&ExperimentConfig::quick().keras_defaults()).unwrap();
        assert!(keras.contains(r#""init":"glorot_uniform""#), "{keras}");
        let back: ExperimentConfig = serde_json::from_str(&keras).unwrap();
        assert_eq!(back, ExperimentConfig::quick().keras_defaults());
    }

    #[test]
    fn every_invalid_field_is_named() {
        let q = ExperimentConfig::quick;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "sgd.learning_rate",
                Box::new(|c| c.sgd.learning_rate = -1.0),
            ),
            (
                "sgd.learning_rate",
                Box::new(|c| c.sgd.learning_rate = f64::NAN),
            ),
            ("sgd.epochs", Box::new(|c| c.sgd.epochs = 0)),
            (
                "init.std",
                Box::new(|c| c.init = Init::Normal { std: f64::NAN }),
            ),
            ("sgd.batch", Box::new(|c| c.sgd.batch = Batch::Size(0))),
            (
                "sgd.schedule.factor",
                Box::new(|c| {
                    c.sgd.schedule = Schedule::Step {
                        every: 10,
                        factor: 2.0,
                    }
                }),
            ),
            ("seeds", Box::new(|c| c.seeds.clear())),
            ("seeds", Box::new(|c| c.seeds = vec![3, 1, 3])),
            ("networks", Box::new(|c| c.networks.clear())),
            (
                "networks[1].name",
                Box::new(|c| c.networks[1].name = "deep".into()),
            ),
            (
                "networks[0].name",
                Box::new(|c| c.networks[0].name = String::new()),
            ),
            (
                "networks[0].name",
                Box::new(|c| c.networks[0].name = "a/b".into()),
            ),
            (
                "networks[1].sizes",
                Box::new(|c| c.networks[1].sizes = vec![784]),
            ),
            (
                "networks[0].sizes",
                Box::new(|c| c.networks[0].sizes = vec![784, 0, 10]),
            ),
            ("train_samples", Box::new(|c| c.train_samples = 0)),
            ("test_samples", Box::new(|c| c.test_samples = 0)),
            ("test_samples", Box::new(|c| c.test_samples = usize::MAX)),
            (
                "histogram_epochs[1]",
                Box::new(|c| c.histogram_epochs = vec![100, 300]),
            ),
            (
                "histogram_epochs[0]",
                Box::new(|c| c.histogram_epochs = vec![0]),
            ),
            (
                "histogram_epochs[1]",
                Box::new(|c| c.histogram_epochs = vec![5, 5]),
            ),
            ("gamma", Box::new(|c| c.gamma = 0.0)),
            ("gamma", Box::new(|c| c.gamma = 1.0)),
            ("gamma", Box::new(|c| c.gamma = f64::NAN)),
            (
                "bulk_solver.gradient_tolerance",
                Box::new(|c| c.bulk_solver.gradient_tolerance = -1e-3),
            ),
            (
                "bulk_solver.max_iterations",
                Box::new(|c| c.bulk_solver.max_iterations = 0),
            ),
            (
                "bulk_solver.initial_damping",
                Box::new(|c| c.bulk_solver.initial_damping = 0.0),
            ),
        ];
        for (field, spoil) in cases {
            let mut c = q();
            spoil(&mut c);
            assert_eq!(field_of(c), field);
        }
        // The last epoch is analyzed whatever it is, so it may be histogrammed.
        let mut c = q();
        c.sgd.epochs = 300;
        c.histogram_epochs = vec![100, 300];
        assert!(c.check().is_ok());
    }

    #[test]
    fn the_data_must_hold_the_samples_and_fit_the_networks() {
        let e = ExperimentConfig::quick().check().unwrap();
        assert!(e.check_data(10_000, 784, 10).is_ok());
        let field = |r: Result<(), ExperimentError>| match r {
            Err(ExperimentError::Config { field, .. }) => field,
            other => panic!("expected a Config error, got {other:?}"),
        };
        assert_eq!(
            field(e.check_data(9_999, 784, 10)),
            "train_samples + test_samples"
        );
        assert_eq!(field(e.check_data(10_000, 100, 10)), "networks[0].sizes");
        assert_eq!(field(e.check_data(10_000, 784, 2)), "networks[0].sizes");
    }

    #[test]
    fn serde_round_trip_checks_on_the_way_in() {
        let e = ExperimentConfig::paper().check().unwrap();
        let text = serde_json::to_string(&e).unwrap();
        let back: Experiment = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
        // gamma and the bulk solver have defaults, so a document without them still reads.
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        doc.as_object_mut().unwrap().remove("gamma");
        doc.as_object_mut().unwrap().remove("bulk_solver");
        let back: Experiment = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(back, e);
        doc["seeds"] = serde_json::json!([]);
        assert!(serde_json::from_value::<Experiment>(doc).is_err());
    }
}
