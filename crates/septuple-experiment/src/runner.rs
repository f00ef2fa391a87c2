//! Training and analysing every network for every seed: the [`Analyzer`] observer, the
//! orchestration of the runs, and resuming them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use septuple_core::{Builtin, BulkSolver, Init, Layered};
use septuple_io::{Mnist, SplitSizes};
use septuple_train::jsonl::{read_json_lines, write_json_lines};
use septuple_train::{
    AnalysisSchedule, Checkpoint, Checkpointer, Context, Dataset, Observer, Observers, Progress,
    TrainError, Trainer,
};

use crate::analysis::{analyze, AnalysisRecord};
use crate::config::{ExperimentConfig, NetworkSpec};
use crate::error::ExperimentError;

/// The observer that analyzes a run at its analysis epochs and keeps the records in a
/// JSON-lines file (reloaded on resume, so an interrupted run's file matches an uninterrupted
/// one).
pub struct Analyzer {
    network: String,
    seed: u64,
    path: PathBuf,
    solver: BulkSolver,
    records: Vec<AnalysisRecord>,
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
    pub fn records(&self) -> &[AnalysisRecord] {
        &self.records
    }
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
        let record = analyze(ctx, &self.network, self.seed, &self.solver).map_err(|e| {
            TrainError::Stopped {
                epoch: ctx.epoch,
                reason: format!("analysis failed: {e}"),
            }
        })?;
        self.records.push(record);
        write_json_lines(&self.path, &self.records)
    }
}

/// The training and test sets of the configuration.
fn datasets(
    config: &ExperimentConfig,
    data: Option<&Path>,
) -> Result<(Dataset, Dataset), ExperimentError> {
    let mnist = Mnist::load(data)?;
    let split = mnist.split(SplitSizes {
        train: config.train_samples,
        test: Some(config.test_samples),
    })?;
    let train = Dataset::from_mnist(&split.train, 1.0, 0.0)?;
    let test = Dataset::from_mnist(&split.test, 1.0, 0.0)?;
    Ok((train, test))
}

/// Train and analyze every network for every seed, writing `<out>/runs/<net>-seed<k>.jsonl`
/// (records), `.checkpoint.json` (resumable state) and returning all records. With `resume`,
/// runs with a checkpoint continue from it; finished runs are read back, not retrained.
pub fn run(
    config: &ExperimentConfig,
    data: Option<&Path>,
    out: &Path,
    resume: bool,
    show_progress: bool,
) -> Result<Vec<AnalysisRecord>, ExperimentError> {
    if config.seeds.is_empty() || config.networks.is_empty() {
        return Err(ExperimentError::Config(
            "at least one seed and one network are needed".into(),
        ));
    }
    let (train, test) = datasets(config, data)?;
    let runs = out.join("runs");
    std::fs::create_dir_all(&runs).map_err(|e| ExperimentError::file(&runs, e))?;
    let mut all = Vec::new();
    for &seed in &config.seeds {
        for spec in &config.networks {
            let one = OneRun {
                config,
                spec,
                seed,
                dir: &runs,
            };
            all.extend(one.records(&train, &test, resume, show_progress)?);
        }
    }
    Ok(all)
}

/// One network trained from one seed.
struct OneRun<'a> {
    config: &'a ExperimentConfig,
    spec: &'a NetworkSpec,
    seed: u64,
    dir: &'a Path,
}

impl OneRun<'_> {
    /// The records of this run: read back if it finished before (and `resume`), else trained,
    /// from its checkpoint if `resume` and there is one.
    fn records(
        &self,
        train: &Dataset,
        test: &Dataset,
        resume: bool,
        show_progress: bool,
    ) -> Result<Vec<AnalysisRecord>, ExperimentError> {
        let (name, seed) = (&self.spec.name, self.seed);
        let stem = format!("{name}-seed{seed}");
        let records = self.dir.join(format!("{stem}.jsonl"));
        let checkpoint = self.dir.join(format!("{stem}.checkpoint.json"));
        let finished = resume
            && Checkpoint::<Layered<Builtin>>::load(&checkpoint)
                .is_ok_and(|c| c.epoch == self.config.epochs);
        if finished {
            return Ok(read_json_lines(&records)?);
        }
        let trainer =
            Trainer::new(self.config.sgd(seed)?).with_schedule(AnalysisSchedule::LogSpaced);
        let mut analyzer = Analyzer::new(name, seed, records);
        let label = if show_progress {
            format!("{name} seed {seed}")
        } else {
            String::new()
        };
        let mut observers = Observers::new()
            .with(Progress::new(label))
            .with(&mut analyzer)
            .with(Checkpointer::new(&checkpoint).every(Duration::from_secs(30)));
        if resume && checkpoint.exists() {
            trainer.resume::<Layered<Builtin>>(&checkpoint, train, Some(test), &mut observers)?;
        } else {
            let mut net =
                Layered::random(&self.spec.sizes, Builtin::Tanh, Init::TorchLinear, seed)?;
            trainer.run(&mut net, train, Some(test), &mut observers)?;
        }
        drop(observers);
        Ok(analyzer.records().to_vec())
    }
}
