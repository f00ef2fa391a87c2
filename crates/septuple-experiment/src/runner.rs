//! Training and analysing every network for every seed: the [`Analyzer`] observer, the
//! orchestration of the runs, and resuming them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use septuple_core::{Builtin, BulkSolver, Layered};
use septuple_io::{Mnist, SplitSizes};
use septuple_thermo::{EigenvalueSplit, LawChecker};
use septuple_train::jsonl::{read_json_lines, write_json_lines};
use septuple_train::{
    Checkpoint, Checkpointer, Context, Dataset, Observer, ObserverError, Observers, Progress,
    Trainer,
};

use crate::analysis::{analyze, laws_between, laws_between_at_gap, AnalysisRecord};
use crate::config::{Experiment, NetworkSpec};
use crate::error::ExperimentError;
use crate::sweep::LossCurve;

/// The stem of a run's files and its name in a sweep: `<network>-seed<seed>`.
pub fn run_stem(network: &str, seed: u64) -> String {
    format!("{network}-seed{seed}")
}

/// The entropy tolerance of the second law (7.6) along a run: S may rise by this much from one
/// analyzed epoch to the next before it counts as a violation (rounding of S, a sum of N terms
/// of order 1, is far below it).
pub const LAW_TOLERANCE: f64 = 1e-9;

/// The observer that analyzes a run at its analysis epochs and keeps the records in a
/// JSON-lines file (reloaded on resume, so an interrupted run's file matches an uninterrupted
/// one).
pub struct Analyzer {
    network: String,
    seed: u64,
    path: PathBuf,
    solver: BulkSolver,
    gamma: f64,
    laws: LawChecker,
    records: Vec<AnalysisRecord>,
}

impl Analyzer {
    /// Records of `network` and `seed` into `path`, with the bulk solver and gamma of
    /// `experiment`.
    pub fn new(experiment: &Experiment, network: &str, seed: u64, path: PathBuf) -> Self {
        let c = experiment.config();
        Analyzer {
            network: network.into(),
            seed,
            path,
            solver: c.bulk_solver,
            gamma: c.gamma,
            laws: LawChecker::new(EigenvalueSplit::default(), LAW_TOLERANCE, 0.0)
                .expect("a valid split and finite, non-negative tolerances"),
            records: Vec::new(),
        }
    }

    /// The records so far.
    pub fn records(&self) -> &[AnalysisRecord] {
        &self.records
    }
}

/// The analyzer's errors are [`ExperimentError`]s: the trainer returns them as
/// [`TrainError::Observer`](septuple_train::TrainError::Observer), whose source downcasts to [`ExperimentError`].
impl Observer<Layered<Builtin>> for Analyzer {
    fn on_start(&mut self, ctx: &Context<'_, Layered<Builtin>>) -> Result<(), ObserverError> {
        if ctx.start_epoch > 0 && self.records.is_empty() && self.path.exists() {
            self.records = read_json_lines(&self.path).map_err(ExperimentError::from)?;
        }
        self.records.retain(|r| r.epoch <= ctx.start_epoch);
        write_json_lines(&self.path, &self.records).map_err(ExperimentError::from)?;
        Ok(())
    }

    fn on_analysis(&mut self, ctx: &Context<'_, Layered<Builtin>>) -> Result<(), ObserverError> {
        let mut record = analyze(ctx, &self.network, self.seed, &self.solver, self.gamma)?;
        // The laws from the last analyzed state with a temperature, checked as the run goes.
        if let Some(previous) = self.records.iter().rev().find(|r| r.beta_energy.is_some()) {
            record.laws = laws_between(&self.laws, previous, &record)?;
        }
        // The same at the temperature from the gap, where the split is informative.
        if let Some(previous) = self
            .records
            .iter()
            .rev()
            .find(|r| r.beta_gap_measured.is_some())
        {
            record.laws_gap = laws_between_at_gap(&self.laws, previous, &record)?;
        }
        self.records.push(record);
        write_json_lines(&self.path, &self.records).map_err(ExperimentError::from)?;
        Ok(())
    }
}

/// How [`run`] runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// The directory of the MNIST IDX files; None: the subset embedded in septuple-io.
    pub data: Option<PathBuf>,
    /// Continue runs from their checkpoints, and read finished runs back instead of training
    /// them again.
    pub resume: bool,
    /// Draw progress bars on standard error.
    pub progress: bool,
}

/// The training and test sets of the experiment (pixels / 255, one-hot targets), after the
/// settings are checked against the data.
pub(crate) fn datasets(
    experiment: &Experiment,
    data: Option<&Path>,
) -> Result<(Dataset, Dataset), ExperimentError> {
    let c = experiment.config();
    let mnist = Mnist::load(data)?;
    experiment.check_data(mnist.len(), mnist.n_pixels(), septuple_io::CLASSES)?;
    let split = mnist.split(SplitSizes {
        train: c.train_samples,
        test: Some(c.test_samples),
    })?;
    let train = Dataset::from_mnist(&split.train, 1.0, 0.0)?;
    let test = Dataset::from_mnist(&split.test, 1.0, 0.0)?;
    Ok((train, test))
}

/// Train and analyze every network for every seed, writing `<out>/runs/<net>-seed<k>.jsonl`
/// (the analysis records), `<net>-seed<k>.losses.csv` (U_d of every epoch, Eq. 2.11, as the
/// mean batch loss: [`LossCurve`]) and `<net>-seed<k>.checkpoint.json` (the resumable state), and
/// return all records, seed by seed and network by network. See [`RunOptions`] for resuming.
pub fn run(
    experiment: &Experiment,
    out: &Path,
    options: &RunOptions,
) -> Result<Vec<AnalysisRecord>, ExperimentError> {
    let c = experiment.config();
    let (train, test) = datasets(experiment, options.data.as_deref())?;
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| ExperimentError::file(&runs, e))?;
    // Temporary files of a run killed while writing (a checkpoint, the records, an output):
    // nothing else writes here while this run starts.
    if options.resume {
        for dir in [out, runs.as_path()] {
            septuple_io::remove_stale_temporaries(dir)?;
        }
    }
    let mut all = Vec::new();
    for &seed in &c.seeds {
        for spec in &c.networks {
            let one = OneRun {
                experiment,
                spec,
                seed,
                dir: &runs,
                loss_curve: true,
            };
            let label = if options.progress {
                format!("{} seed {seed}", spec.name)
            } else {
                String::new()
            };
            all.extend(one.records(&train, &test, options.resume, label)?);
        }
    }
    Ok(all)
}

/// One network trained from one seed.
pub(crate) struct OneRun<'a> {
    pub(crate) experiment: &'a Experiment,
    pub(crate) spec: &'a NetworkSpec,
    pub(crate) seed: u64,
    /// Where its files go.
    pub(crate) dir: &'a Path,
    /// Also keep the mean batch loss of every epoch in `<stem>.losses.csv` ([`LossCurve`]).
    pub(crate) loss_curve: bool,
}

impl OneRun<'_> {
    /// The records of this run: read back if it finished before (and `resume`), else trained,
    /// from its checkpoint if `resume` and there is one.
    fn checkpoint_path(&self) -> PathBuf {
        let stem = run_stem(&self.spec.name, self.seed);
        self.dir.join(format!("{stem}.checkpoint.json"))
    }

    /// The epochs its checkpoint holds (0 without one).
    pub(crate) fn epochs_done(&self) -> usize {
        Checkpoint::<Layered<Builtin>>::load(self.checkpoint_path()).map_or(0, |c| c.epoch)
    }

    /// Whether its checkpoint holds every epoch.
    pub(crate) fn finished(&self) -> bool {
        self.epochs_done() == self.experiment.config().sgd.epochs
    }

    /// A non-empty `label` draws a progress bar with it.
    pub(crate) fn records(
        &self,
        train: &Dataset,
        test: &Dataset,
        resume: bool,
        label: String,
    ) -> Result<Vec<AnalysisRecord>, ExperimentError> {
        let (name, seed) = (&self.spec.name, self.seed);
        let stem = run_stem(name, seed);
        let records = self.dir.join(format!("{stem}.jsonl"));
        let checkpoint = self.checkpoint_path();
        if resume && self.finished() {
            return Ok(read_json_lines(&records)?);
        }
        let trainer =
            Trainer::new(self.experiment.sgd(seed)?).with_schedule(self.experiment.schedule());
        let mut analyzer = Analyzer::new(self.experiment, name, seed, records);
        let mut observers = Observers::new().with(Progress::new(label));
        let curve = self.dir.join(format!("{stem}.losses.csv"));
        // A run resumed from a checkpoint written without a curve goes on without one.
        if self.loss_curve && (!(resume && checkpoint.exists()) || curve.exists()) {
            // Before the checkpointer: a checkpoint's epoch is always in the curve's file.
            observers.push(LossCurve::new(curve));
        }
        let mut observers = observers
            .with(&mut analyzer)
            .with(Checkpointer::new(&checkpoint).every(Duration::from_secs(30)));
        if resume && checkpoint.exists() {
            trainer.resume::<Layered<Builtin>>(&checkpoint, train, Some(test), &mut observers)?;
        } else {
            let mut net = Layered::random(
                &self.spec.sizes,
                Builtin::Tanh,
                self.experiment.config().init,
                seed,
            )?;
            trainer.run(&mut net, train, Some(test), &mut observers)?;
        }
        drop(observers);
        Ok(analyzer.records().to_vec())
    }
}
