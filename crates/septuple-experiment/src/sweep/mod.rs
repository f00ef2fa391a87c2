//! Sweeps: many independent runs (a network and a seed each) of one training configuration,
//! described by a [`SweepManifest`] file, split into deterministic [`Shard`]s that any batch
//! scheduler can run on as many machines as it has, and merged into one report
//! ([`merge`]) whatever the sharding.
//!
//! The runs of a sweep are the networks of its [`ExperimentConfig`] crossed with its seeds,
//! seed-major ([`Sweep::runs`]); run `k` of that list belongs to shard `k mod n`. A shard
//! writes its own directory:
//!
//! - `sweep.json`: the manifest and the shard, so that [`merge`] can tell shards of another
//!   sweep apart;
//! - `runs/<network>-seed<k>.jsonl`: the [`AnalysisRecord`]s at the log-spaced analysis epochs;
//! - `runs/<network>-seed<k>.losses.csv`: the mean batch loss U_d of every epoch (the
//!   learning-efficiency measures of [`RunSummary`] come from it);
//! - `runs/<network>-seed<k>.checkpoint.json`: the resumable state of the run.
//!
//! Locally the runs of a shard share the machine's cores as independent runs, one thread
//! each ([`Jobs`]); a run's numbers do not depend on the thread count, so the choice changes
//! only the time taken.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use septuple_experiment::sweep::{merge, run_shard, Shard, Sweep, SweepOptions};
//! let sweep = Sweep::load(Path::new("examples/sweep/depth.json"))?;
//! for i in 0..2 {
//!     let dir = PathBuf::from(format!("out/shard{i}"));
//!     run_shard(&sweep, Shard::new(i, 2)?, &dir, &SweepOptions::default())?;
//! }
//! let report = merge(&[PathBuf::from("out/shard0"), PathBuf::from("out/shard1")], Path::new("out/merged"))?;
//! println!("{}", report.markdown());
//! # Ok::<(), septuple_experiment::ExperimentError>(())
//! ```

mod rank;
mod report;

use std::fmt;
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use septuple_train::{Context, Observer, ObserverError};
use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisRecord;
use crate::config::{Experiment, ExperimentConfig, NetworkSpec};
use crate::error::ExperimentError;
use crate::runner::{datasets, run_stem, OneRun};

pub use rank::{permutation_p_value, spearman, spearman_interval, Correlation};
pub use report::{merge, read_runs, RunSummary, SweepReport, SweepRun};

/// The U_d levels of the learning-efficiency measure "epochs to reach U_d <= level" by
/// default: from a tenth of the untrained networks' loss (about 0.45 per sample for the
/// one-hot targets of MNIST) down to where the paper's runs end.
pub fn default_loss_levels() -> Vec<f64> {
    vec![0.1, 0.05, 0.03, 0.02]
}

/// A sweep as written in its file: a training configuration whose networks and seeds span the
/// runs, the U_d levels of the efficiency measure and the epochs at which the spectral
/// quantities are compared. [`check`](Self::check) validates it into a [`Sweep`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepManifest {
    /// Its name (letters, digits, '-' and '_').
    pub name: String,
    /// The training configuration; its `networks` and `seeds` span the runs, and its
    /// `histogram_epochs` are not used.
    pub experiment: ExperimentConfig,
    /// U_d levels, strictly decreasing and positive: a run's efficiency includes the first
    /// epoch whose mean batch loss is at most each.
    #[serde(default = "default_loss_levels")]
    pub loss_levels: Vec<f64>,
    /// Analysis epochs (1, 2, 5, 10, 20, ...) at which the report compares the spectral
    /// quantities across architectures; the last epoch is always one.
    #[serde(default)]
    pub probe_epochs: Vec<usize>,
}

/// A checked [`SweepManifest`].
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    manifest: SweepManifest,
    experiment: Experiment,
    probe_epochs: Vec<usize>,
}

/// One run of a sweep: a network of the configuration and a seed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunKey {
    /// The network's name.
    pub network: String,
    /// The seed.
    pub seed: u64,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&run_stem(&self.network, self.seed))
    }
}

impl SweepManifest {
    /// Validate every field; the error names the first one that is wrong.
    pub fn check(self) -> Result<Sweep, ExperimentError> {
        let usable = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            return Err(ExperimentError::config(
                "name",
                format!("{:?}", self.name),
                "a non-empty name of ASCII letters, digits, '-' and '_'",
            ));
        }
        let experiment = self.experiment.clone().check()?;
        let levels = &self.loss_levels;
        for (i, &l) in levels.iter().enumerate() {
            if !(l.is_finite() && l > 0.0) || (i > 0 && !(l < levels[i - 1])) {
                return Err(ExperimentError::config(
                    format!("loss_levels[{i}]"),
                    l,
                    "finite positive levels, strictly decreasing",
                ));
            }
        }
        let epochs = experiment.config().sgd.epochs;
        let schedule = experiment.schedule();
        let mut probe_epochs = Vec::new();
        for (i, &e) in self.probe_epochs.iter().enumerate() {
            if e == 0 || e > epochs || !schedule.contains(e, epochs) {
                return Err(ExperimentError::config(
                    format!("probe_epochs[{i}]"),
                    e,
                    format!(
                        "an analysis epoch ({}) of at most {epochs}",
                        schedule.describe(epochs)
                    ),
                ));
            }
            if !probe_epochs.contains(&e) {
                probe_epochs.push(e);
            }
        }
        if !probe_epochs.contains(&epochs) {
            probe_epochs.push(epochs);
        }
        probe_epochs.sort_unstable();
        Ok(Sweep {
            manifest: self,
            experiment,
            probe_epochs,
        })
    }
}

impl Sweep {
    /// Read and check a manifest file (JSON).
    pub fn load(path: &Path) -> Result<Sweep, ExperimentError> {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::file(path, e))?;
        let manifest: SweepManifest = serde_json::from_str(&text).map_err(|e| {
            ExperimentError::file(path, format!("not a sweep manifest (JSON): {e}"))
        })?;
        manifest.check()
    }

    /// The manifest.
    pub fn manifest(&self) -> &SweepManifest {
        &self.manifest
    }

    /// The checked training configuration.
    pub fn experiment(&self) -> &Experiment {
        &self.experiment
    }

    /// The probe epochs, ascending, the last epoch included.
    pub fn probe_epochs(&self) -> &[usize] {
        &self.probe_epochs
    }

    /// The network of a run's name.
    pub fn network(&self, name: &str) -> Option<&NetworkSpec> {
        self.experiment
            .config()
            .networks
            .iter()
            .find(|n| n.name == name)
    }

    /// Every run, seed-major: for each seed, each network in the manifest's order.
    pub fn runs(&self) -> Vec<RunKey> {
        let c = self.experiment.config();
        c.seeds
            .iter()
            .flat_map(|&seed| {
                c.networks.iter().map(move |n| RunKey {
                    network: n.name.clone(),
                    seed,
                })
            })
            .collect()
    }

    /// The runs of `shard`: run `k` of [`runs`](Self::runs) when `k mod count == index`.
    pub fn shard_runs(&self, shard: Shard) -> Vec<RunKey> {
        self.runs()
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % shard.count == shard.index)
            .map(|(_, r)| r)
            .collect()
    }
}

/// Shard `index` of `count` (0 <= index < count), written `index/count`: run `k` of a sweep
/// belongs to shard `k mod count`. Index 0 fits a Slurm array `--array=0-(count-1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: usize, count: usize) -> Result<Shard, ExperimentError> {
        if count == 0 || index >= count {
            return Err(ExperimentError::config(
                "shard",
                format!("{index}/{count}"),
                "i/n with n >= 1 and 0 <= i < n",
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ExperimentError;
    fn from_str(s: &str) -> Result<Shard, ExperimentError> {
        let bad = || ExperimentError::config("shard", s, "i/n with n >= 1 and 0 <= i < n");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }
}

/// How many runs of a shard train at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Jobs {
    /// As many as the machine has cores (at most the shard's runs), each on one thread; one run
    /// at a time with all threads when that is one.
    #[default]
    Auto,
    /// This many at once; 1: one run after another, each with all threads.
    Fixed(NonZeroUsize),
}

impl Jobs {
    /// The number of concurrent runs for `runs` runs on this machine.
    pub fn resolve(self, runs: usize) -> usize {
        let n = match self {
            Jobs::Auto => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            Jobs::Fixed(n) => n.get(),
        };
        n.min(runs).max(1)
    }
}

impl FromStr for Jobs {
    type Err = ExperimentError;
    fn from_str(s: &str) -> Result<Jobs, ExperimentError> {
        if s == "auto" {
            return Ok(Jobs::Auto);
        }
        s.parse::<NonZeroUsize>()
            .map(Jobs::Fixed)
            .map_err(|_| ExperimentError::config("jobs", s, "auto or a whole number >= 1"))
    }
}

impl fmt::Display for Jobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jobs::Auto => f.write_str("auto"),
            Jobs::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// How [`run_shard`] runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepOptions {
    /// The directory of the MNIST IDX files; None: the subset embedded in septuple-io.
    pub data: Option<PathBuf>,
    /// Continue runs from their checkpoints and skip finished ones.
    pub resume: bool,
    /// Show progress on standard error: a bar per run when runs go one at a time, a line per
    /// started and finished run when they go side by side.
    pub progress: bool,
    /// How many runs train at once.
    pub jobs: Jobs,
}

/// What a shard's directory says of itself (`sweep.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    /// The sweep.
    pub manifest: SweepManifest,
    /// The shard.
    pub shard: Shard,
    /// Its runs, in the sweep's order.
    pub runs: Vec<RunKey>,
}

/// The name of a shard directory's description.
pub const SHARD_FILE: &str = "sweep.json";

/// What [`run_shard`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardOutcome {
    /// The shard's runs, in the sweep's order.
    pub runs: Vec<RunKey>,
    /// How many trained at once.
    pub jobs: usize,
    /// Wall time of the whole shard (s).
    pub wall_seconds: f64,
    /// Training samples processed by the runs trained now (epochs x samples, summed; runs
    /// that had finished before and were skipped count nothing).
    pub samples_trained: u64,
}

/// Train and analyze the runs of `shard` into `out` (see the [module docs](self) for the
/// files), `options.jobs` at a time. With `resume`, runs continue from their checkpoints and
/// finished runs are skipped; without it a directory that holds runs of the shard already is
/// refused, and so is one that holds another sweep or shard.
pub fn run_shard(
    sweep: &Sweep,
    shard: Shard,
    out: &Path,
    options: &SweepOptions,
) -> Result<ShardOutcome, ExperimentError> {
    let start = Instant::now();
    let runs = sweep.shard_runs(shard);
    let described = ShardFile {
        manifest: sweep.manifest.clone(),
        shard,
        runs: runs.clone(),
    };
    let dir = out.join("runs");
    std::fs::create_dir_all(&dir).map_err(|e| ExperimentError::file(&dir, e))?;
    claim(out, &described)?;
    if options.resume {
        for d in [out, dir.as_path()] {
            septuple_io::remove_stale_temporaries(d)?;
        }
    } else if let Some(key) = runs
        .iter()
        .find(|k| dir.join(format!("{k}.losses.csv")).exists())
    {
        return Err(ExperimentError::file(
            &dir,
            format!(
                "holds run {key} of this shard already; continue the shard with resume \
                 (the command line's --resume), or use another directory"
            ),
        ));
    }
    let (train, test) = datasets(&sweep.experiment, options.data.as_deref())?;
    let jobs = options.jobs.resolve(runs.len());
    let epochs = sweep.experiment.config().sgd.epochs;
    let trained = AtomicUsize::new(0);
    let one = |k: usize, label: String| -> Result<(), ExperimentError> {
        let key = &runs[k];
        let spec = sweep
            .network(&key.network)
            .expect("the shard's runs come from the sweep's networks");
        let run = OneRun {
            experiment: &sweep.experiment,
            spec,
            seed: key.seed,
            dir: &dir,
            loss_curve: true,
        };
        // One read of the checkpoint: finished runs are skipped, the others count the epochs
        // they still train.
        let from = if options.resume { run.epochs_done() } else { 0 };
        if from < epochs {
            run.records(&train, &test, options.resume, label)?;
            trained.fetch_add((epochs - from) * train.len(), Ordering::Relaxed);
        }
        Ok(())
    };
    if jobs == 1 {
        for (k, key) in runs.iter().enumerate() {
            let label = if options.progress {
                format!("{key} ({}/{})", k + 1, runs.len())
            } else {
                String::new()
            };
            one(k, label)?;
        }
    } else {
        side_by_side(runs.len(), jobs, options.progress, &runs, &one)?;
    }
    Ok(ShardOutcome {
        runs,
        jobs,
        wall_seconds: start.elapsed().as_secs_f64(),
        samples_trained: trained.load(Ordering::Relaxed) as u64,
    })
}

/// Write `sweep.json` into `out`, or check that the one there describes the same shard.
fn claim(out: &Path, described: &ShardFile) -> Result<(), ExperimentError> {
    let path = out.join(SHARD_FILE);
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| ExperimentError::file(&path, e))?;
        let there: ShardFile = serde_json::from_str(&text)
            .map_err(|e| ExperimentError::file(&path, format!("not a shard description: {e}")))?;
        if there != *described {
            return Err(ExperimentError::file(
                &path,
                format!(
                    "the directory holds shard {} of sweep {:?}, not shard {} of this sweep {:?} \
                     (use another --out, or remove it)",
                    there.shard, there.manifest.name, described.shard, described.manifest.name
                ),
            ));
        }
        return Ok(());
    }
    let json = serde_json::to_string_pretty(described).expect("a shard description serializes");
    septuple_io::write_atomic(&path, json.as_bytes())?;
    Ok(())
}

/// Run `n` runs `jobs` at a time, each on a thread of its own with a one-thread rayon pool;
/// after the first error no new run starts, and that error is returned.
fn side_by_side(
    n: usize,
    jobs: usize,
    progress: bool,
    runs: &[RunKey],
    one: &(dyn Fn(usize, String) -> Result<(), ExperimentError> + Sync),
) -> Result<(), ExperimentError> {
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, ExperimentError)>> = Mutex::new(None);
    let start = Instant::now();
    let say = |line: String| {
        if progress {
            // A whole line at once, so that the workers' lines do not interleave.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    };
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let pool = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                    Ok(p) => p,
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert((
                            usize::MAX,
                            ExperimentError::config("jobs", jobs, format!("a thread pool: {e}")),
                        ));
                        return;
                    }
                };
                loop {
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= n {
                        return;
                    }
                    say(format!("{}: started", runs[k]));
                    match pool.install(|| one(k, String::new())) {
                        Ok(()) => {
                            let done = finished.fetch_add(1, Ordering::SeqCst) + 1;
                            say(format!(
                                "{}: finished ({done}/{n} after {:.0} s)",
                                runs[k],
                                start.elapsed().as_secs_f64()
                            ));
                        }
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            say(format!("{}: failed: {e}", runs[k]));
                            let mut slot = first_error.lock().unwrap_or_else(|p| p.into_inner());
                            // The error of the earliest run in the sweep's order, whatever
                            // the order in which the workers met them.
                            if slot.as_ref().is_none_or(|(j, _)| k < *j) {
                                *slot = Some((k, e));
                            }
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// The observer that keeps the mean batch loss of every epoch in a CSV file
/// (`epoch,mean_batch_loss`), one line appended per epoch. On resume from a checkpoint at
/// epoch k it keeps the first k epochs of the file and drops the rest, so an interrupted and
/// resumed run's file matches an uninterrupted one's.
pub struct LossCurve {
    path: PathBuf,
}

impl LossCurve {
    /// A curve kept in `path`.
    pub fn new(path: PathBuf) -> Self {
        LossCurve { path }
    }
}

/// The header of a loss-curve file.
pub const LOSS_CURVE_HEADER: &str = "epoch,mean_batch_loss";

/// Read the first `limit` epochs of a loss-curve file (all with `None`); an incomplete last
/// line (a run killed while writing) beyond `limit` is ignored.
pub fn read_loss_curve(path: &Path, limit: Option<usize>) -> Result<Vec<f64>, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::file(path, e))?;
    let mut lines = text.lines();
    if lines.next() != Some(LOSS_CURVE_HEADER) {
        return Err(ExperimentError::file(
            path,
            format!("not a loss curve: expected the header {LOSS_CURVE_HEADER:?}"),
        ));
    }
    let mut losses = Vec::new();
    for (i, line) in lines.enumerate() {
        if limit.is_some_and(|l| losses.len() >= l) {
            break;
        }
        let parsed = line.split_once(',').and_then(|(e, l)| {
            let e: usize = e.parse().ok()?;
            let l: f64 = l.parse().ok()?;
            (e == i + 1).then_some(l)
        });
        match parsed {
            Some(l) => losses.push(l),
            None => {
                return Err(ExperimentError::file(
                    path,
                    format!(
                        "line {}: expected `{},<loss>`, found {line:?}",
                        i + 2,
                        i + 1
                    ),
                ))
            }
        }
    }
    Ok(losses)
}

fn curve_text(losses: &[f64]) -> String {
    let mut s = String::with_capacity(24 * (losses.len() + 1));
    s.push_str(LOSS_CURVE_HEADER);
    s.push('\n');
    for (i, l) in losses.iter().enumerate() {
        s.push_str(&format!("{},{l:?}\n", i + 1));
    }
    s
}

impl<M> Observer<M> for LossCurve {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        let kept = if ctx.start_epoch > 0 && self.path.exists() {
            let kept = read_loss_curve(&self.path, Some(ctx.start_epoch))?;
            if kept.len() < ctx.start_epoch {
                return Err(ExperimentError::file(
                    &self.path,
                    format!(
                        "the curve has {} epochs, fewer than the checkpoint's {}",
                        kept.len(),
                        ctx.start_epoch
                    ),
                )
                .into());
            }
            kept
        } else if ctx.start_epoch > 0 {
            return Err(ExperimentError::file(
                &self.path,
                format!(
                    "missing: the run resumes at epoch {} and its loss curve is gone",
                    ctx.start_epoch
                ),
            )
            .into());
        } else {
            Vec::new()
        };
        septuple_io::write_atomic(&self.path, curve_text(&kept).as_bytes())?;
        Ok(())
    }

    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        let loss = ctx.epoch_loss.unwrap_or(f64::NAN);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| ExperimentError::file(&self.path, e))?;
        file.write_all(format!("{},{loss:?}\n", ctx.epoch).as_bytes())
            .map_err(|e| ExperimentError::file(&self.path, e))?;
        Ok(())
    }
}

/// Whether `records` and `losses` are those of a finished run of `epochs` epochs.
pub(crate) fn complete(records: &[AnalysisRecord], losses: &[f64], epochs: usize) -> bool {
    losses.len() == epochs && records.last().is_some_and(|r| r.epoch == epochs)
}

#[cfg(test)]
mod tests;
