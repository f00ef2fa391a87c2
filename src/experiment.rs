//! The experiment of Sec. 10: a deep (784-40-20-10) and a shallow (784-60-10) tanh network
//! trained by SGD on MNIST, analysed at log-spaced checkpoints (losses, the spectrum of G, the
//! complexities, the gap and the temperature it implies), summarised over seeds, with the
//! paper's figures.
//!
//! [`run`] trains and analyses (resumably); [`Report::from_records`] turns the records into
//! tables; [`write_figures`] and [`Report::markdown`] write the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use septuple_core::{Builtin, BulkSolver, Init, Layered};
use septuple_io::{Mnist, SplitSizes};
use septuple_spectral::{spectrum, Faer, Method, SpectrumSummary};
use septuple_thermo::{
    beta_from_energy_self_consistent, beta_from_gap, beta_from_gap_eq_9_4_as_printed, Landscape,
    LawChecker, Split, StationaryKind, TrajectoryPoint,
};
use septuple_train::jsonl::{read_json_lines, write_json_lines};
use septuple_train::{
    evaluate, AnalysisSchedule, Batch, Checkpointer, Context, Dataset, Objective, Observer,
    Observers, Progress, Schedule, SgdConfig, TrainError, Trainer,
};
use serde::{Deserialize, Serialize};

use crate::figures::{histogram, Curve, FigureError, HistogramPlot, LinePlot};
use crate::stats::{linear_fit, spread, Spread};

/// The fraction of small eigenvalues gamma used for Fig. 1 and the gap -> beta relation.
pub const GAMMA: f64 = 1.0 / 3.0;

/// Everything that can go wrong in the experiment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExperimentError {
    /// Training failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// Reading data failed.
    #[error(transparent)]
    Io(#[from] septuple_io::IoError),
    /// A spectrum could not be computed.
    #[error(transparent)]
    Spectral(#[from] septuple_spectral::SpectralError),
    /// A thermodynamic quantity could not be computed.
    #[error(transparent)]
    Thermo(#[from] septuple_thermo::ThermoError),
    /// A network could not be built.
    #[error(transparent)]
    Core(#[from] septuple_core::CoreError),
    /// A figure could not be drawn.
    #[error(transparent)]
    Figure(#[from] FigureError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Settings that cannot run.
    #[error("invalid experiment settings: {0}")]
    Config(String),
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> ExperimentError {
    ExperimentError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One of the two networks of Sec. 10.
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
    /// Epochs whose spectra are histogrammed (Figs. 4-5), if they are checkpoints.
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

    fn sgd(&self, seed: u64) -> Result<septuple_train::Sgd, ExperimentError> {
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

/// Everything recorded at one checkpoint of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Network name.
    pub network: String,
    /// Seed.
    pub seed: u64,
    /// Completed epochs.
    pub epoch: usize,
    /// U_d: boundary loss (2.11) over the training set.
    pub boundary_loss: f64,
    /// U: bulk loss at the bulk-solved states, U_0 of (4.1), over the training set.
    pub bulk_loss: f64,
    /// Training accuracy.
    pub train_accuracy: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Training wall time so far (s).
    pub wall_seconds: f64,
    /// N.
    pub n_neurons: usize,
    /// The dynamical log lambda of G at the mean forward state (ascending); the other
    /// N - n_dynamical eigenvalues are 1.
    pub dynamical_log_lambda: Vec<f64>,
    /// sum log lambda (Eqs. 7.7-7.8).
    pub sum_log_lambda: f64,
    /// mu_2 = Tr (log G)^2 (9.5).
    pub mu2: f64,
    /// mu_3 = Tr (log G)^3 (9.6).
    pub mu3: f64,
    /// Variance of the dynamical log lambda.
    pub variance: f64,
    /// Skewness of the dynamical log lambda.
    pub skewness: f64,
    /// C_20 (10.5).
    pub c20: f64,
    /// C_(N-20) (10.5).
    pub c_all_but_20: f64,
    /// Gap position in log lambda.
    pub gap: Option<f64>,
    /// beta from the gap by the relation that follows from (9.3) at gamma = 1/3.
    pub beta_gap: Option<f64>,
    /// beta from the gap by (9.4) as printed.
    pub beta_gap_eq_9_4: Option<f64>,
    /// The smallest beta solving U = N_>(beta) / (2 beta) (7.5, 10.1) with U the bulk loss.
    pub beta_energy: Option<f64>,
}

impl CheckpointRecord {
    /// All N eigenvalues lambda_i (the non-dynamical ones are 1).
    pub fn eigenvalues(&self) -> Vec<f64> {
        let mut l: Vec<f64> = self.dynamical_log_lambda.iter().map(|u| u.exp()).collect();
        l.resize(self.n_neurons, 1.0);
        l
    }
}

/// The observer that analyses a run at its checkpoints and appends the records to a JSON-lines
/// file (reloaded on resume, so an interrupted run's file matches an uninterrupted one).
pub struct Analyzer {
    network: String,
    seed: u64,
    path: PathBuf,
    solver: BulkSolver,
    records: Vec<CheckpointRecord>,
}

impl Analyzer {
    /// Records of `network` and `seed` into `path`.
    pub fn new(network: &str, seed: u64, path: PathBuf) -> Self {
        Analyzer {
            network: network.into(),
            seed,
            path,
            solver: BulkSolver::default(),
            records: Vec::new(),
        }
    }

    /// The records so far.
    pub fn records(&self) -> &[CheckpointRecord] {
        &self.records
    }
}

/// The analysis of a model at a checkpoint.
pub fn analyse(
    ctx: &Context<'_, Layered<Builtin>>,
    network: &str,
    seed: u64,
    solver: &BulkSolver,
) -> Result<CheckpointRecord, ExperimentError> {
    let metrics = evaluate(ctx, Some((solver, 0.0)))?;
    let net = ctx.model;
    let mean = net.mean_state(ctx.train.inputs())?;
    let spec = spectrum(
        &net.to_septuple(),
        mean.view(),
        Method::Auto,
        &Faer::default(),
    )?;
    let s = SpectrumSummary::new(&spec.eigenvalues)?;
    let bulk_loss = metrics.bulk_loss.unwrap_or(f64::NAN);
    let gap = s.gap.map(|g| g.log_lambda);
    let beta_energy = if bulk_loss > 0.0 {
        beta_from_energy_self_consistent(&spec.eigenvalues, bulk_loss, &Split::default())?
            .first()
            .copied()
    } else {
        None
    };
    Ok(CheckpointRecord {
        network: network.into(),
        seed,
        epoch: ctx.epoch,
        boundary_loss: metrics.boundary_loss,
        bulk_loss,
        train_accuracy: metrics.train_accuracy.unwrap_or(f64::NAN),
        test_accuracy: metrics.test_accuracy.unwrap_or(f64::NAN),
        wall_seconds: metrics.wall_seconds,
        n_neurons: s.n_neurons,
        sum_log_lambda: s.sum_log_lambda,
        mu2: s.mu2,
        mu3: s.mu3,
        variance: s.variance,
        skewness: s.skewness,
        c20: s.c20,
        c_all_but_20: s.c_all_but_20,
        beta_gap: gap.and_then(|u| beta_from_gap(u, GAMMA).ok()),
        beta_gap_eq_9_4: gap.and_then(|u| beta_from_gap_eq_9_4_as_printed(u).ok()),
        gap,
        beta_energy,
        dynamical_log_lambda: s.dynamical,
    })
}

impl Observer<Layered<Builtin>> for Analyzer {
    fn on_start(&mut self, ctx: &Context<'_, Layered<Builtin>>) -> Result<(), TrainError> {
        if ctx.start_epoch > 0 && self.records.is_empty() && self.path.exists() {
            self.records = read_json_lines(&self.path)?;
        }
        self.records.retain(|r| r.epoch <= ctx.start_epoch);
        write_json_lines(&self.path, &self.records)
    }

    fn on_analysis(&mut self, ctx: &Context<'_, Layered<Builtin>>) -> Result<(), TrainError> {
        let record = analyse(ctx, &self.network, self.seed, &self.solver).map_err(|e| {
            TrainError::Stopped {
                epoch: ctx.epoch,
                reason: format!("analysis failed: {e}"),
            }
        })?;
        self.records.push(record);
        write_json_lines(&self.path, &self.records)
    }
}

/// Train and analyse every network for every seed, writing `<out>/runs/<net>-seed<k>.jsonl`
/// (records), `.checkpoint.json` (resumable state) and returning all records. With `resume`,
/// runs with a checkpoint continue from it; finished runs are read back, not retrained.
pub fn run(
    config: &ExperimentConfig,
    data: Option<&Path>,
    out: &Path,
    resume: bool,
    show_progress: bool,
) -> Result<Vec<CheckpointRecord>, ExperimentError> {
    if config.seeds.is_empty() || config.networks.is_empty() {
        return Err(ExperimentError::Config(
            "at least one seed and one network are needed".into(),
        ));
    }
    let mnist = Mnist::load(data)?;
    let split = mnist.split(SplitSizes {
        train: config.train_samples,
        test: Some(config.test_samples),
    })?;
    let train = Dataset::from_mnist(&split.train, 1.0, 0.0)?;
    let test = Dataset::from_mnist(&split.test, 1.0, 0.0)?;
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| file_err(&runs, e))?;
    let mut all = Vec::new();
    for seed in &config.seeds {
        for spec in &config.networks {
            let stem = format!("{}-seed{seed}", spec.name);
            let records = runs.join(format!("{stem}.jsonl"));
            let checkpoint = runs.join(format!("{stem}.checkpoint.json"));
            let sgd = config.sgd(*seed)?;
            let trainer = Trainer::new(sgd).with_schedule(AnalysisSchedule::LogSpaced);
            let mut analyzer = Analyzer::new(&spec.name, *seed, records.clone());
            let label = if show_progress {
                format!("{} seed {seed}", spec.name)
            } else {
                String::new()
            };
            let mut observers = Observers::new()
                .with(Progress::new(label))
                .with(&mut analyzer)
                .with(Checkpointer::new(&checkpoint).every(std::time::Duration::from_secs(30)));
            let finished = resume
                && septuple_train::Checkpoint::<Layered<Builtin>>::load(&checkpoint)
                    .is_ok_and(|c| c.epoch == config.epochs);
            if finished {
                all.extend(read_json_lines::<CheckpointRecord>(&records)?);
                continue;
            }
            if resume && checkpoint.exists() {
                trainer.resume::<Layered<Builtin>>(
                    &checkpoint,
                    &train,
                    Some(&test),
                    &mut observers,
                )?;
            } else {
                let mut net =
                    Layered::random(&spec.sizes, Builtin::Tanh, Init::TorchLinear, *seed)?;
                trainer.run(&mut net, &train, Some(&test), &mut observers)?;
            }
            drop(observers);
            all.extend(analyzer.records().iter().cloned());
        }
    }
    Ok(all)
}

/// Per-network results over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Network name.
    pub network: String,
    /// The epoch the table refers to (the last common checkpoint).
    pub epoch: usize,
    /// Seeds.
    pub seeds: usize,
    /// mu_2 (9.5).
    pub mu2: Option<Spread>,
    /// mu_3 (9.6).
    pub mu3: Option<Spread>,
    /// Variance of the dynamical log lambda.
    pub variance: Option<Spread>,
    /// Skewness of the dynamical log lambda.
    pub skewness: Option<Spread>,
    /// Gap position.
    pub gap: Option<Spread>,
    /// beta from the gap, relation of (9.3) at gamma = 1/3.
    pub beta_gap: Option<Spread>,
    /// beta from the gap by (9.4) as printed.
    pub beta_gap_eq_9_4: Option<Spread>,
    /// beta from U = N_> / (2 beta).
    pub beta_energy: Option<Spread>,
    /// Slope of C_20 against log U (Fig. 7), over checkpoints from epoch 10 on.
    ///
    /// (All checkpoints when the run has fewer than three from epoch 10 on.)
    pub slope_c20: Option<Spread>,
    /// Slope of C_(N-20) against log U.
    pub slope_c_all_but_20: Option<Spread>,
    /// Training accuracy.
    pub train_accuracy: Option<Spread>,
    /// Test accuracy.
    pub test_accuracy: Option<Spread>,
    /// Second-law violations of S along each run (7.6), summed over seeds.
    pub second_law_violations: usize,
    /// Checkpoint steps checked for the second law, summed over seeds.
    pub second_law_steps: usize,
    /// The largest violation (rise of S), if any.
    pub largest_violation: Option<f64>,
}

/// The checkpoints used for the fits of Fig. 7: from epoch 10 on (the first epochs are far
/// from the slow relaxation the fit describes), or all of them when fewer than three remain.
fn late_records(run: &[CheckpointRecord]) -> Vec<&CheckpointRecord> {
    let ok = |r: &&CheckpointRecord| r.bulk_loss > 0.0 && r.bulk_loss.is_finite();
    let late: Vec<&CheckpointRecord> = run.iter().filter(|r| r.epoch >= 10).filter(ok).collect();
    if late.len() >= 3 {
        late
    } else {
        run.iter().filter(ok).collect()
    }
}

/// How one row of the summary table is read from a network's report.
type RowFn = Box<dyn Fn(&NetworkReport) -> String>;

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The settings.
    pub config: ExperimentConfig,
    /// One entry per network.
    pub networks: Vec<NetworkReport>,
}

fn spread_of(values: Vec<f64>) -> Option<Spread> {
    let v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    spread(&v).ok()
}

/// Records grouped by network and seed, sorted by epoch.
pub fn runs_of(records: &[CheckpointRecord]) -> BTreeMap<(String, u64), Vec<CheckpointRecord>> {
    let mut m: BTreeMap<(String, u64), Vec<CheckpointRecord>> = BTreeMap::new();
    for r in records {
        m.entry((r.network.clone(), r.seed))
            .or_default()
            .push(r.clone());
    }
    for v in m.values_mut() {
        v.sort_by_key(|r| r.epoch);
    }
    m
}

impl Report {
    /// Summaries over seeds from the records.
    pub fn from_records(
        config: &ExperimentConfig,
        records: &[CheckpointRecord],
    ) -> Result<Report, ExperimentError> {
        let runs = runs_of(records);
        let mut networks = Vec::new();
        for spec in &config.networks {
            let mine: Vec<&Vec<CheckpointRecord>> = runs
                .iter()
                .filter(|((n, _), _)| n == &spec.name)
                .map(|(_, v)| v)
                .collect();
            let Some(epoch) = mine.iter().filter_map(|v| v.last().map(|r| r.epoch)).min() else {
                continue;
            };
            let at: Vec<&CheckpointRecord> = mine
                .iter()
                .filter_map(|v| v.iter().find(|r| r.epoch == epoch))
                .collect();
            let pick = |f: &dyn Fn(&CheckpointRecord) -> Option<f64>| {
                spread_of(at.iter().filter_map(|r| f(r)).collect())
            };
            let mut slopes20 = Vec::new();
            let mut slopes_all = Vec::new();
            let mut violations = 0;
            let mut steps = 0;
            let mut largest: Option<f64> = None;
            for run in &mine {
                let late = late_records(run);
                let x: Vec<f64> = late.iter().map(|r| r.bulk_loss.ln()).collect();
                if let Ok(f) = linear_fit(&x, &late.iter().map(|r| r.c20).collect::<Vec<_>>()) {
                    slopes20.push(f.slope);
                }
                if let Ok(f) =
                    linear_fit(&x, &late.iter().map(|r| r.c_all_but_20).collect::<Vec<_>>())
                {
                    slopes_all.push(f.slope);
                }
                let spectra: Vec<(f64, Vec<f64>)> = run
                    .iter()
                    .filter_map(|r| r.beta_energy.map(|b| (b, r.eigenvalues())))
                    .collect();
                if spectra.len() >= 2 {
                    let points: Vec<TrajectoryPoint<'_>> = spectra
                        .iter()
                        .map(|(b, l)| TrajectoryPoint {
                            beta: *b,
                            spectrum: l,
                        })
                        .collect();
                    let report = LawChecker::new(Split::default(), 1e-9, 0.0)?.check(&points)?;
                    steps += report.steps.len();
                    for v in report.second_law_violations() {
                        violations += 1;
                        let size = v.second_law_violation.unwrap_or(0.0);
                        largest = Some(largest.map_or(size, |l: f64| l.max(size)));
                    }
                }
            }
            networks.push(NetworkReport {
                network: spec.name.clone(),
                epoch,
                seeds: at.len(),
                mu2: pick(&|r| Some(r.mu2)),
                mu3: pick(&|r| Some(r.mu3)),
                variance: pick(&|r| Some(r.variance)),
                skewness: pick(&|r| Some(r.skewness)),
                gap: pick(&|r| r.gap),
                beta_gap: pick(&|r| r.beta_gap),
                beta_gap_eq_9_4: pick(&|r| r.beta_gap_eq_9_4),
                beta_energy: pick(&|r| r.beta_energy),
                slope_c20: spread_of(slopes20),
                slope_c_all_but_20: spread_of(slopes_all),
                train_accuracy: pick(&|r| Some(r.train_accuracy)),
                test_accuracy: pick(&|r| Some(r.test_accuracy)),
                second_law_violations: violations,
                second_law_steps: steps,
                largest_violation: largest,
            });
        }
        Ok(Report {
            config: config.clone(),
            networks,
        })
    }

    /// The summary table as Markdown (mean +- standard deviation over seeds).
    pub fn markdown(&self) -> String {
        let cell = |s: &Option<Spread>| match s {
            Some(s) if s.n > 1 => format!("{:.4} ± {:.2e}", s.mean, s.std),
            Some(s) => format!("{:.4}", s.mean),
            None => "n/a".into(),
        };
        let c = &self.config;
        let mut t = String::new();
        t.push_str("# deep_vs_shallow: summary\n\n");
        t.push_str(&format!(
            "{} epochs, batch {}, learning rate {}, {} training and {} test samples, seeds {:?}; \
             tanh, SGD on the boundary loss (2.11), PyTorch's default initialisation. Values at \
             the last checkpoint, mean ± standard deviation over seeds.\n\n",
            c.epochs,
            c.batch.map_or("full".to_string(), |b| b.to_string()),
            c.learning_rate,
            c.train_samples,
            c.test_samples,
            c.seeds
        ));
        t.push_str("| quantity | ");
        t.push_str(
            &self
                .networks
                .iter()
                .map(|n| {
                    let plural = if n.seeds == 1 { "" } else { "s" };
                    format!(
                        "{} (epoch {}, {} seed{plural})",
                        n.network, n.epoch, n.seeds
                    )
                })
                .collect::<Vec<_>>()
                .join(" | "),
        );
        t.push_str(" |\n| --- |");
        t.push_str(&" --- |".repeat(self.networks.len()));
        t.push('\n');
        let rows: Vec<(&str, RowFn)> = vec![
            ("mu2 = Tr (log G)^2 (9.5)", Box::new(move |n| cell(&n.mu2))),
            ("mu3 = Tr (log G)^3 (9.6)", Box::new(move |n| cell(&n.mu3))),
            (
                "mu2 normalised: variance of dynamical log lambda",
                Box::new(move |n| cell(&n.variance)),
            ),
            (
                "mu3 normalised: skewness of dynamical log lambda",
                Box::new(move |n| cell(&n.skewness)),
            ),
            ("gap position (log lambda)", Box::new(move |n| cell(&n.gap))),
            (
                "beta from gap, (9.3) at gamma = 1/3",
                Box::new(move |n| cell(&n.beta_gap)),
            ),
            (
                "beta from gap, (9.4) as printed",
                Box::new(move |n| cell(&n.beta_gap_eq_9_4)),
            ),
            (
                "beta from U = N_>/(2 beta) (7.5)",
                Box::new(move |n| cell(&n.beta_energy)),
            ),
            (
                "slope of C_20 against log U (Fig. 7)",
                Box::new(move |n| cell(&n.slope_c20)),
            ),
            (
                "slope of C_834 against log U (Fig. 7)",
                Box::new(move |n| cell(&n.slope_c_all_but_20)),
            ),
            ("train accuracy", Box::new(move |n| cell(&n.train_accuracy))),
            ("test accuracy", Box::new(move |n| cell(&n.test_accuracy))),
            (
                "second law (7.6) along the run",
                Box::new(|n| {
                    if n.second_law_steps == 0 {
                        "not checked (no beta estimate)".into()
                    } else if n.second_law_violations == 0 {
                        format!("held at all {} steps", n.second_law_steps)
                    } else {
                        format!(
                            "{} of {} steps violated (largest rise of S {:.3e})",
                            n.second_law_violations,
                            n.second_law_steps,
                            n.largest_violation.unwrap_or(0.0)
                        )
                    }
                }),
            ),
        ];
        for (name, f) in rows {
            t.push_str(&format!(
                "| {name} | {} |\n",
                self.networks.iter().map(&f).collect::<Vec<_>>().join(" | ")
            ));
        }
        t
    }
}

/// Write Figs. 1-7 as SVG files into `dir` (`fig1_landscape.svg`, ...). Figures 2, 3, 6 and 7
/// show the first seed of each network; histograms (Figs. 4-5) the first seed at the
/// configured epochs that are checkpoints of the run.
pub fn write_figures(
    config: &ExperimentConfig,
    records: &[CheckpointRecord],
    dir: &Path,
) -> Result<Vec<PathBuf>, ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
    let mut written = Vec::new();
    // Fig. 1: the landscape of (9.3).
    let mut fig1 = LinePlot {
        title: "Fig. 1: -ΔF(log λ) of Eq. (9.3), γ = 1/3, N = 854".into(),
        x_label: "log λ".into(),
        y_label: "-ΔF".into(),
        curves: Vec::new(),
        markers: Vec::new(),
    };
    for beta in [0.25, 0.5, 0.73, 1.0] {
        let l = Landscape::new(beta, GAMMA, 854)?;
        let pts = (0..=400)
            .map(|k| {
                let u = -8.0 + k as f64 * 0.03;
                (u, l.value(u))
            })
            .collect();
        fig1.curves.push(Curve::line(format!("β = {beta}"), pts));
        for p in l.stationary_points(-8.0, 4.0, 2000)? {
            let kind = match p.kind {
                StationaryKind::Maximum => "max",
                StationaryKind::Minimum => "min",
                StationaryKind::Inflection => "infl",
            };
            fig1.markers.push((p.log_lambda, p.value, kind.into()));
        }
    }
    let p = dir.join("fig1_landscape.svg");
    fig1.write_svg(&p)?;
    written.push(p);

    let runs = runs_of(records);
    let first = |name: &str| -> Option<&Vec<CheckpointRecord>> {
        runs.iter().find(|((n, _), _)| n == name).map(|(_, v)| v)
    };
    let lg = |v: f64| v.log10();
    // Fig. 2: U and U_d against epoch; Fig. 3: log U against log U_d; Fig. 6: C_20, C_834.
    let mut fig2 = LinePlot {
        title: "Fig. 2: bulk loss U and boundary loss U_d".into(),
        x_label: "log10 epoch".into(),
        y_label: "log10 loss".into(),
        curves: Vec::new(),
        markers: Vec::new(),
    };
    let mut fig3 = LinePlot {
        title: "Fig. 3: bulk loss against boundary loss".into(),
        x_label: "log U_d".into(),
        y_label: "log U".into(),
        curves: Vec::new(),
        markers: Vec::new(),
    };
    let mut fig6 = LinePlot {
        title: "Fig. 6: complexities C_20 and C_834 (10.5)".into(),
        x_label: "log10 epoch".into(),
        y_label: "C".into(),
        curves: Vec::new(),
        markers: Vec::new(),
    };
    for spec in &config.networks {
        let Some(run) = first(&spec.name) else {
            continue;
        };
        let n = &spec.name;
        fig2.curves.push(Curve::line(
            format!("{n}: U"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), lg(r.bulk_loss)))
                .collect(),
        ));
        fig2.curves.push(Curve::line(
            format!("{n}: U_d"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), lg(r.boundary_loss)))
                .collect(),
        ));
        fig3.curves.push(Curve::line(
            n.clone(),
            run.iter()
                .map(|r| (r.boundary_loss.ln(), r.bulk_loss.ln()))
                .collect(),
        ));
        fig6.curves.push(Curve::line(
            format!("{n}: C_20"),
            run.iter().map(|r| (lg(r.epoch as f64), r.c20)).collect(),
        ));
        fig6.curves.push(Curve::line(
            format!("{n}: C_834"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), r.c_all_but_20))
                .collect(),
        ));
        let mut fig7 = LinePlot {
            title: format!("Fig. 7: complexities of the {n} network against log U"),
            x_label: "log U".into(),
            y_label: "C".into(),
            curves: Vec::new(),
            markers: Vec::new(),
        };
        let late = late_records(run);
        let x: Vec<f64> = late.iter().map(|r| r.bulk_loss.ln()).collect();
        for (label, ys) in [
            ("C_20", late.iter().map(|r| r.c20).collect::<Vec<_>>()),
            (
                "C_834",
                late.iter().map(|r| r.c_all_but_20).collect::<Vec<_>>(),
            ),
        ] {
            fig7.curves.push(Curve::dots(
                label,
                x.iter().copied().zip(ys.iter().copied()).collect(),
            ));
            if let Ok(f) = linear_fit(&x, &ys) {
                let (lo, hi) = x
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                fig7.curves.push(Curve::line(
                    format!("{label} fit, slope {:.3}", f.slope),
                    vec![
                        (lo, f.intercept + f.slope * lo),
                        (hi, f.intercept + f.slope * hi),
                    ],
                ));
            }
        }
        // The paper's Fig. 7 is the deep network; the others get a suffix.
        let name = if n == "deep" {
            "fig7_complexity_vs_loss.svg".to_string()
        } else {
            format!("fig7_complexity_vs_loss_{n}.svg")
        };
        let p = dir.join(name);
        fig7.write_svg(&p)?;
        written.push(p);
    }
    for (plot, name) in [
        (&fig2, "fig2_losses.svg"),
        (&fig3, "fig3_bulk_vs_boundary.svg"),
        (&fig6, "fig6_complexity.svg"),
    ] {
        let p = dir.join(name);
        plot.write_svg(&p)?;
        written.push(p);
    }
    // Figs. 4-5: histograms of the dynamical log lambda.
    for (fig, name) in [("4", "shallow"), ("5", "deep")] {
        let Some(run) = first(name) else { continue };
        let chosen: Vec<&CheckpointRecord> = config
            .histogram_epochs
            .iter()
            .filter_map(|e| run.iter().find(|r| r.epoch == *e))
            .collect();
        let chosen = if chosen.is_empty() {
            run.last().into_iter().collect()
        } else {
            chosen
        };
        let lo = chosen
            .iter()
            .flat_map(|r| r.dynamical_log_lambda.iter().copied())
            .fold(f64::INFINITY, f64::min)
            .min(-1.0)
            .floor();
        let hi = chosen
            .iter()
            .flat_map(|r| r.dynamical_log_lambda.iter().copied())
            .fold(f64::NEG_INFINITY, f64::max)
            .max(1.0)
            .ceil();
        let bins = 60;
        let edges: Vec<f64> = (0..=bins)
            .map(|k| lo + (hi - lo) * k as f64 / bins as f64)
            .collect();
        let plot = HistogramPlot {
            title: format!("Fig. {fig}: dynamical log λ of the {name} network"),
            x_label: "log λ".into(),
            edges: edges.clone(),
            groups: chosen
                .iter()
                .map(|r| {
                    (
                        format!("epoch {}", r.epoch),
                        histogram(&r.dynamical_log_lambda, &edges),
                    )
                })
                .collect(),
            marks: chosen
                .iter()
                .filter_map(|r| r.gap.map(|g| (g, format!("gap, epoch {}", r.epoch))))
                .collect(),
        };
        let p = dir.join(format!("fig{fig}_{name}_spectrum.svg"));
        plot.write_svg(&p)?;
        written.push(p);
    }
    Ok(written)
}

/// Metrics of all runs as CSV (one row per checkpoint; the spectrum is in the JSON file).
pub fn metrics_csv(records: &[CheckpointRecord]) -> String {
    let mut t = String::from(
        "network,seed,epoch,boundary_loss,bulk_loss,train_accuracy,test_accuracy,mu2,mu3,variance,skewness,c20,c834,gap,beta_gap,beta_gap_eq_9_4,beta_energy,sum_log_lambda,wall_seconds\n",
    );
    let o = |v: Option<f64>| v.map(|x| format!("{x:e}")).unwrap_or_default();
    for r in records {
        t.push_str(&format!(
            "{},{},{},{:e},{:e},{},{},{:e},{:e},{:e},{:e},{:e},{:e},{},{},{},{},{:e},{:.3}\n",
            r.network,
            r.seed,
            r.epoch,
            r.boundary_loss,
            r.bulk_loss,
            r.train_accuracy,
            r.test_accuracy,
            r.mu2,
            r.mu3,
            r.variance,
            r.skewness,
            r.c20,
            r.c_all_but_20,
            o(r.gap),
            o(r.beta_gap),
            o(r.beta_gap_eq_9_4),
            o(r.beta_energy),
            r.sum_log_lambda,
            r.wall_seconds
        ));
    }
    t
}

/// Write the metrics (CSV, JSON), the figures and the Markdown summary into `out`.
pub fn write_outputs(
    config: &ExperimentConfig,
    records: &[CheckpointRecord],
    out: &Path,
) -> Result<Report, ExperimentError> {
    let report = Report::from_records(config, records)?;
    let csv = out.join("metrics.csv");
    septuple_io::write_atomic(&csv, metrics_csv(records).as_bytes())?;
    let json = out.join("metrics.json");
    let doc = serde_json::json!({ "config": config, "records": records, "report": report });
    septuple_io::write_atomic(
        &json,
        serde_json::to_string(&doc)
            .map_err(|e| file_err(&json, e))?
            .as_bytes(),
    )?;
    write_figures(config, records, &out.join("figures"))?;
    let md = out.join("summary.md");
    septuple_io::write_atomic(&md, report.markdown().as_bytes())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_experiment_end_to_end() {
        let dir = std::env::temp_dir().join(format!("septuple-exp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ExperimentConfig {
            epochs: 5,
            batch: Some(50),
            learning_rate: 0.05,
            seeds: vec![1, 2],
            train_samples: 200,
            test_samples: 100,
            networks: paper_networks(),
            histogram_epochs: vec![2, 5],
        };
        let records = run(&config, None, &dir, false, false).unwrap();
        // Checkpoints 1, 2, 5 for two networks and two seeds.
        assert_eq!(records.len(), 12);
        for r in &records {
            assert!(r.sum_log_lambda.abs() < 1e-10, "{}", r.sum_log_lambda);
            assert!(r.bulk_loss >= 0.0 && r.bulk_loss <= r.boundary_loss + 1e-12);
        }
        let report = write_outputs(&config, &records, &dir).unwrap();
        assert_eq!(report.networks.len(), 2);
        for f in [
            "metrics.csv",
            "metrics.json",
            "summary.md",
            "figures/fig1_landscape.svg",
            "figures/fig2_losses.svg",
            "figures/fig3_bulk_vs_boundary.svg",
            "figures/fig4_shallow_spectrum.svg",
            "figures/fig5_deep_spectrum.svg",
            "figures/fig6_complexity.svg",
            "figures/fig7_complexity_vs_loss.svg",
        ] {
            assert!(dir.join(f).exists(), "{f} missing");
        }
        // Resuming a finished experiment reads the records back unchanged.
        let again = run(&config, None, &dir, true, false).unwrap();
        let strip = |v: &[CheckpointRecord]| {
            v.iter()
                .map(|r| CheckpointRecord {
                    wall_seconds: 0.0,
                    ..r.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&again), strip(&records));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
