//! Merging the shards of a sweep and its report: per-run learning efficiency and spectral
//! quantities, per-architecture means with intervals, and rank correlations asking whether the
//! spectral quantities of Sec. 9 order the architectures as depth and learning do.
//!
//! The report depends on the runs' records and loss curves only (never on wall times or on
//! which directory a run was found in), so a sharded and merged sweep gives the same files as
//! an unsharded one, to the last bit, and merging again rewrites them unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::rank::Correlation;
use super::{read_loss_curve, RunKey, ShardFile, Sweep, SHARD_FILE};
use crate::analysis::AnalysisRecord;
use crate::config::NetworkSpec;
use crate::error::ExperimentError;
use crate::figures::{Curve, Figure, LinePlot};
use crate::stats::{format_supported, over_seeds, OverSeeds};
use septuple_train::jsonl::read_json_lines;

/// One finished run of a sweep: its analysis records and its loss curve.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    /// Which run.
    pub key: RunKey,
    /// The records at its analysis epochs.
    pub records: Vec<AnalysisRecord>,
    /// The mean batch loss U_d of every epoch (epoch 1 first).
    pub losses: Vec<f64>,
}

/// What a run was found as in one directory.
enum Found {
    Finished(SweepRun),
    Unfinished(String),
}

fn read_one(dir: &Path, key: &RunKey, epochs: usize) -> Result<Option<Found>, ExperimentError> {
    let runs = dir.join("runs");
    let records_path = runs.join(format!("{key}.jsonl"));
    let losses_path = runs.join(format!("{key}.losses.csv"));
    if !records_path.exists() && !losses_path.exists() {
        return Ok(None);
    }
    if !records_path.exists() || !losses_path.exists() {
        return Ok(Some(Found::Unfinished(format!(
            "{key} in {} (records or loss curve missing)",
            dir.display()
        ))));
    }
    let records: Vec<AnalysisRecord> = read_json_lines(&records_path)?;
    let losses = read_loss_curve(&losses_path, None)?;
    if let Some(r) = records
        .iter()
        .find(|r| r.network != key.network || r.seed != key.seed)
    {
        return Err(ExperimentError::file(
            &records_path,
            format!(
                "holds a record of {}, not of {key}",
                RunKey {
                    network: r.network.clone(),
                    seed: r.seed
                }
            ),
        ));
    }
    if super::complete(&records, &losses, epochs) {
        Ok(Some(Found::Finished(SweepRun {
            key: key.clone(),
            records,
            losses,
        })))
    } else {
        Ok(Some(Found::Unfinished(format!(
            "{key} in {} (at epoch {} of {epochs})",
            dir.display(),
            losses.len()
        ))))
    }
}

fn read_shard_file(dir: &Path) -> Result<ShardFile, ExperimentError> {
    let path = dir.join(SHARD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ExperimentError::file(
            &path,
            format!("{e} (not the directory of a sweep's shard?)"),
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| ExperimentError::file(&path, format!("not a shard description: {e}")))
}

/// Read the finished runs of a sweep from its shards' directories, in the sweep's order.
/// Every directory must hold a shard of the same sweep; every run of the manifest must be
/// found finished in exactly one of them, else [`ExperimentError::Incomplete`] names the runs
/// missing, unfinished and found twice.
pub fn read_runs(dirs: &[PathBuf]) -> Result<(Sweep, Vec<SweepRun>), ExperimentError> {
    let Some(first) = dirs.first() else {
        return Err(ExperimentError::config(
            "dirs",
            "[]",
            "at least one shard directory",
        ));
    };
    let manifest = read_shard_file(first)?.manifest;
    let sweep = manifest.clone().check()?;
    let epochs = sweep.experiment().config().sgd.epochs;
    let mut found: BTreeMap<RunKey, Vec<(PathBuf, SweepRun)>> = BTreeMap::new();
    let mut unfinished = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if dirs[..i].contains(dir) {
            return Err(ExperimentError::config(
                format!("dirs[{i}]"),
                dir.display(),
                "each directory once",
            ));
        }
        let shard = read_shard_file(dir)?;
        if shard.manifest != manifest {
            return Err(ExperimentError::file(
                &dir.join(SHARD_FILE),
                format!(
                    "a shard of another sweep ({:?}, or the same name with other settings) \
                     than {} ({:?}); expected shards of one manifest",
                    shard.manifest.name,
                    first.display(),
                    manifest.name
                ),
            ));
        }
        // A shard writes only its own runs.
        for key in shard.runs {
            match read_one(dir, &key, epochs)? {
                Some(Found::Finished(run)) => {
                    found.entry(key).or_default().push((dir.clone(), run))
                }
                Some(Found::Unfinished(what)) => unfinished.push((key, what)),
                None => {}
            }
        }
    }
    let mut missing = Vec::new();
    let mut duplicated = Vec::new();
    let mut runs = Vec::new();
    for key in sweep.runs() {
        match found.remove(&key) {
            Some(mut v) if v.len() == 1 => runs.push(v.remove(0).1),
            Some(v) => {
                let where_: Vec<String> = v.iter().map(|(d, _)| d.display().to_string()).collect();
                duplicated.push(format!("{key} ({})", where_.join(" and ")));
            }
            None => {
                if !unfinished.iter().any(|(k, _)| *k == key) {
                    missing.push(key.to_string());
                }
            }
        }
    }
    // An unfinished copy does not matter when a finished one exists elsewhere.
    let finished: Vec<&RunKey> = runs.iter().map(|r| &r.key).collect();
    let unfinished: Vec<String> = unfinished
        .into_iter()
        .filter(|(k, _)| !finished.contains(&k))
        .map(|(_, w)| w)
        .collect();
    if !(missing.is_empty() && unfinished.is_empty() && duplicated.is_empty()) {
        return Err(ExperimentError::Incomplete {
            sweep: manifest.name.clone(),
            missing,
            unfinished,
            duplicated,
        });
    }
    Ok((sweep, runs))
}

/// Merge the shards in `dirs` ([`read_runs`]) and write the report into `out`: `sweep.md`
/// ([`SweepReport::markdown`]), `runs.csv`, `trajectories.csv` and `figures/*.svg`. The files
/// depend only on the runs, so merging again rewrites them unchanged.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<SweepReport, ExperimentError> {
    let (sweep, runs) = read_runs(dirs)?;
    let report = SweepReport::new(&sweep, runs)?;
    report.write(out)?;
    Ok(report)
}

/// The spectral and thermodynamic quantities of a run at one analysis epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probe {
    /// The epoch.
    pub epoch: usize,
    /// Skewness of the dynamical log lambda.
    pub skewness: f64,
    /// mu_2 (9.5) per dynamical eigenvalue.
    pub mu2_per_dynamical: f64,
    /// mu_3 (9.6) per dynamical eigenvalue.
    pub mu3_per_dynamical: f64,
    /// The number of dynamical eigenvalues.
    pub n_dynamical: usize,
    /// The gap in log lambda.
    pub gap: Option<f64>,
    /// gamma measured from the spectrum (the fraction of eigenvalues below the gap).
    pub gamma_measured: Option<f64>,
    /// beta from the gap at the measured gamma.
    pub beta_gap: Option<f64>,
    /// beta from the energy (7.5, 10.1).
    pub beta_energy: Option<f64>,
    /// The Laplacian DeltaF of Eq. (8.10) at the gap's beta.
    pub laplacian_f: Option<f64>,
}

/// The CSV columns of a [`Probe`], in the order of [`Probe::csv_cells`].
const PROBE_COLUMNS: [&str; 9] = [
    "n_dynamical",
    "skewness",
    "mu2_per_dynamical",
    "mu3_per_dynamical",
    "gap",
    "gamma_measured",
    "beta_gap",
    "beta_energy",
    "laplacian_f",
];

impl Probe {
    /// Its values as CSV cells (empty where absent), in the order of [`PROBE_COLUMNS`].
    fn csv_cells(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.n_dynamical,
            self.skewness,
            self.mu2_per_dynamical,
            self.mu3_per_dynamical,
            opt(self.gap),
            opt(self.gamma_measured),
            opt(self.beta_gap),
            opt(self.beta_energy),
            opt(self.laplacian_f)
        )
    }

    fn of(r: &AnalysisRecord) -> Self {
        Probe {
            epoch: r.epoch,
            skewness: r.skewness,
            mu2_per_dynamical: r.mu2_per_dynamical(),
            mu3_per_dynamical: r.mu3_per_dynamical(),
            n_dynamical: r.n_dynamical,
            gap: r.gap,
            gamma_measured: r.gamma_measured,
            beta_gap: r.beta_gap_measured,
            beta_energy: r.beta_energy,
            laplacian_f: r.laplacian_f_gap,
        }
    }
}

/// A run's learning efficiency and its spectral quantities at the sweep's probe epochs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Which run.
    pub key: RunKey,
    /// Hidden layers.
    pub depth: usize,
    /// For each of the sweep's U_d levels, the first epoch whose mean batch loss is at most
    /// it (None: never within the run).
    pub epochs_to_level: Vec<Option<usize>>,
    /// The mean over epochs of ln U_d, U_d the boundary loss (2.11) averaged over the epoch's
    /// batches (the area under the log loss curve per epoch): lower is more efficient.
    pub mean_log_loss: f64,
    /// The boundary loss (2.11) over the training set after the last epoch.
    pub final_loss: f64,
    /// Training accuracy after the last epoch.
    pub train_accuracy: f64,
    /// Test accuracy after the last epoch.
    pub test_accuracy: f64,
    /// The quantities at the probe epochs, ascending.
    pub probes: Vec<Probe>,
}

impl RunSummary {
    fn of(run: &SweepRun, spec: &NetworkSpec, sweep: &Sweep) -> Result<Self, ExperimentError> {
        let last = run.records.last().ok_or_else(|| {
            ExperimentError::config(format!("runs.{}", run.key), "no records", "a finished run")
        })?;
        let epochs_to_level = sweep
            .manifest()
            .loss_levels
            .iter()
            .map(|&level| run.losses.iter().position(|&l| l <= level).map(|i| i + 1))
            .collect();
        let mean_log_loss =
            run.losses.iter().map(|l| l.ln()).sum::<f64>() / run.losses.len() as f64;
        let probes = sweep
            .probe_epochs()
            .iter()
            .map(|&e| {
                run.records
                    .iter()
                    .find(|r| r.epoch == e)
                    .map(Probe::of)
                    .ok_or_else(|| {
                        ExperimentError::config(
                            format!("runs.{}", run.key),
                            format!("no record at probe epoch {e}"),
                            "a record at every analysis epoch",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(RunSummary {
            key: run.key.clone(),
            depth: spec.sizes.len() - 2,
            epochs_to_level,
            mean_log_loss,
            final_loss: last.boundary_loss,
            train_accuracy: last.train_accuracy,
            test_accuracy: last.test_accuracy,
            probes,
        })
    }
}

/// A question the report asks of the runs: does `x` order them as `y` does, in the direction
/// Sec. 9 predicts?
struct Question {
    x: &'static str,
    y: &'static str,
    /// The sign of the rank correlation the paper predicts.
    predicted: f64,
    /// Whether the quantities are read at a probe epoch (else once per run).
    x_value: fn(&RunSummary, usize) -> Option<f64>,
    y_value: fn(&RunSummary, usize) -> Option<f64>,
}

fn depth(s: &RunSummary, _: usize) -> Option<f64> {
    Some(s.depth as f64)
}
fn skewness(s: &RunSummary, p: usize) -> Option<f64> {
    Some(s.probes[p].skewness).filter(|v| v.is_finite())
}
fn mu2n(s: &RunSummary, p: usize) -> Option<f64> {
    Some(s.probes[p].mu2_per_dynamical).filter(|v| v.is_finite())
}
fn mu3n(s: &RunSummary, p: usize) -> Option<f64> {
    Some(s.probes[p].mu3_per_dynamical).filter(|v| v.is_finite())
}
fn laplacian(s: &RunSummary, p: usize) -> Option<f64> {
    s.probes[p].laplacian_f.filter(|v| v.is_finite())
}
fn mean_log_loss(s: &RunSummary, _: usize) -> Option<f64> {
    Some(s.mean_log_loss).filter(|v| v.is_finite())
}
fn test_accuracy(s: &RunSummary, _: usize) -> Option<f64> {
    Some(s.test_accuracy)
}

const QUESTIONS: [Question; 9] = [
    Question {
        x: "depth",
        y: "skewness",
        predicted: -1.0,
        x_value: depth,
        y_value: skewness,
    },
    Question {
        x: "depth",
        y: "mu3 / n_dyn",
        predicted: -1.0,
        x_value: depth,
        y_value: mu3n,
    },
    Question {
        x: "depth",
        y: "mu2 / n_dyn",
        predicted: 1.0,
        x_value: depth,
        y_value: mu2n,
    },
    Question {
        x: "depth",
        y: "DeltaF",
        predicted: 1.0,
        x_value: depth,
        y_value: laplacian,
    },
    Question {
        x: "depth",
        y: "mean ln U_d",
        predicted: -1.0,
        x_value: depth,
        y_value: mean_log_loss,
    },
    Question {
        x: "skewness",
        y: "mean ln U_d",
        predicted: 1.0,
        x_value: skewness,
        y_value: mean_log_loss,
    },
    Question {
        x: "DeltaF",
        y: "mean ln U_d",
        predicted: -1.0,
        x_value: laplacian,
        y_value: mean_log_loss,
    },
    Question {
        x: "skewness",
        y: "test accuracy",
        predicted: -1.0,
        x_value: skewness,
        y_value: test_accuracy,
    },
    Question {
        x: "DeltaF",
        y: "test accuracy",
        predicted: 1.0,
        x_value: laplacian,
        y_value: test_accuracy,
    },
];

/// Random orders of the run-level permutation tests (the architecture-level ones enumerate
/// every order).
const PERMUTATIONS: usize = 9_999;

/// One row of the report's correlation tables.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The probe epoch.
    pub epoch: usize,
    /// "x vs y".
    pub question: String,
    /// The sign Sec. 9 predicts.
    pub predicted: f64,
    /// Over the architectures' means.
    pub architectures: Option<Correlation>,
    /// Over all runs.
    pub runs: Option<Correlation>,
}

impl Answer {
    /// "holds" (predicted sign, architecture-level p <= 0.05), "opposite" (the other sign,
    /// p <= 0.05) or "not shown".
    pub fn verdict(&self) -> &'static str {
        match &self.architectures {
            Some(Correlation {
                rho: Some(r),
                p_value: Some(p),
                ..
            }) if *p <= 0.05 => {
                if r * self.predicted > 0.0 {
                    "holds"
                } else {
                    "opposite"
                }
            }
            _ => "not shown",
        }
    }
}

/// The report of a merged sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepReport {
    sweep: Sweep,
    runs: Vec<SweepRun>,
    summaries: Vec<RunSummary>,
    answers: Vec<Answer>,
}

impl SweepReport {
    /// The report of `runs`, which must be the sweep's runs in its order ([`read_runs`]).
    pub fn new(sweep: &Sweep, runs: Vec<SweepRun>) -> Result<Self, ExperimentError> {
        let summaries = runs
            .iter()
            .map(|r| {
                let spec = sweep.network(&r.key.network).ok_or_else(|| {
                    ExperimentError::config("runs", &r.key, "a run of the sweep's networks")
                })?;
                RunSummary::of(r, spec, sweep)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut answers = Vec::new();
        for (p, &epoch) in sweep.probe_epochs().iter().enumerate() {
            for (qi, q) in QUESTIONS.iter().enumerate() {
                let pairs: Vec<(&str, f64, f64)> = summaries
                    .iter()
                    .filter_map(|s| {
                        Some((
                            s.key.network.as_str(),
                            (q.x_value)(s, p)?,
                            (q.y_value)(s, p)?,
                        ))
                    })
                    .collect();
                let seed = 1000 * p as u64 + qi as u64;
                let of = |x: &[f64], y: &[f64]| Correlation::of(x, y, PERMUTATIONS, seed).ok();
                let (xs, ys): (Vec<f64>, Vec<f64>) = pairs.iter().map(|&(_, x, y)| (x, y)).unzip();
                let (ax, ay) = architecture_means(sweep, &pairs);
                answers.push(Answer {
                    epoch,
                    question: format!("{} vs {}", q.x, q.y),
                    predicted: q.predicted,
                    architectures: of(&ax, &ay),
                    runs: of(&xs, &ys),
                });
            }
        }
        Ok(SweepReport {
            sweep: sweep.clone(),
            runs,
            summaries,
            answers,
        })
    }

    /// The runs' summaries, in the sweep's order.
    pub fn runs(&self) -> &[RunSummary] {
        &self.summaries
    }

    /// The correlation tables' rows, probe epoch by probe epoch.
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    /// The summaries of one network, seed by seed.
    fn of_network<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a RunSummary> + 'a {
        self.summaries.iter().filter(move |s| s.key.network == name)
    }

    fn over<'a>(
        &'a self,
        name: &'a str,
        f: impl Fn(&RunSummary) -> Option<f64>,
    ) -> Option<OverSeeds> {
        let v: Vec<f64> = self.of_network(name).filter_map(f).collect();
        over_seeds(&v)
    }

    /// The report as Markdown: the runs, the per-architecture means with 95% intervals over
    /// seeds, and the rank correlations with their verdicts.
    pub fn markdown(&self) -> String {
        let c = self.sweep.experiment().config();
        let m = self.sweep.manifest();
        let mut s = String::new();
        let _ = writeln!(s, "# Sweep `{}`\n", m.name);
        let _ = writeln!(
            s,
            "{} networks x {} seeds ({:?}), {} epochs each, learning rate {}, batch {}, {} training and {} test samples; {} runs.\n",
            c.networks.len(),
            c.seeds.len(),
            c.seeds,
            c.sgd.epochs,
            c.sgd.learning_rate,
            crate::overrides::BatchText(c.sgd.batch),
            c.train_samples,
            c.test_samples,
            self.summaries.len()
        );
        self.efficiency_table(&mut s);
        let last = self.sweep.probe_epochs().len() - 1;
        for (p, &epoch) in self.sweep.probe_epochs().iter().enumerate() {
            self.spectral_table(&mut s, p, epoch, p == last);
        }
        self.correlation_tables(&mut s);
        s
    }

    fn efficiency_table(&self, s: &mut String) {
        let c = self.sweep.experiment().config();
        let levels = &self.sweep.manifest().loss_levels;
        let _ = writeln!(
            s,
            "## Learning efficiency (means over seeds, 95% t intervals)\n"
        );
        let _ = writeln!(
            s,
            "U_d is the mean batch loss of an epoch; \"epochs to U_d <= l\" averages the runs that got there (how many of them in parentheses).\n"
        );
        let mut header = "| network | sizes | depth | mean ln U_d | final U_d (training set) | train accuracy | test accuracy |".to_string();
        let mut rule = "| --- | --- | --- | --- | --- | --- | --- |".to_string();
        for l in levels {
            let _ = write!(header, " epochs to U_d <= {l} |");
            rule.push_str(" --- |");
        }
        let _ = writeln!(s, "{header}\n{rule}");
        for spec in &c.networks {
            let n = &spec.name;
            let text = |o: Option<OverSeeds>| o.map_or("-".to_string(), |v| v.to_string());
            let sizes: Vec<String> = spec.sizes.iter().map(|v| v.to_string()).collect();
            let _ = write!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} |",
                sizes.join("-"),
                spec.sizes.len() - 2,
                text(self.over(n, |r| Some(r.mean_log_loss))),
                text(self.over(n, |r| Some(r.final_loss))),
                text(self.over(n, |r| Some(r.train_accuracy))),
                text(self.over(n, |r| Some(r.test_accuracy))),
            );
            for j in 0..levels.len() {
                let reached: Vec<f64> = self
                    .of_network(n)
                    .filter_map(|r| r.epochs_to_level[j].map(|e| e as f64))
                    .collect();
                let total = self.of_network(n).count();
                let cell = match over_seeds(&reached) {
                    Some(o) => format!("{o} ({}/{total})", reached.len()),
                    None => format!("never (0/{total})"),
                };
                let _ = write!(s, " {cell} |");
            }
            s.push('\n');
        }
        s.push('\n');
    }

    fn spectral_table(&self, s: &mut String, p: usize, epoch: usize, last: bool) {
        let c = self.sweep.experiment().config();
        let when = if last { " (the last)" } else { "" };
        let _ = writeln!(s, "## The spectrum of G at epoch {epoch}{when}\n");
        let _ = writeln!(
            s,
            "| network | n_dyn | skewness | mu2 / n_dyn | mu3 / n_dyn | gap (log lambda) | gamma measured | beta (gap) | beta (energy) | DeltaF (8.10) at beta (gap) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
        );
        for spec in &c.networks {
            let n = &spec.name;
            let text = |o: Option<OverSeeds>| o.map_or("-".to_string(), |v| v.to_string());
            let counted = |f: fn(&Probe) -> Option<f64>| {
                let total = self.of_network(n).count();
                let v: Vec<f64> = self.of_network(n).filter_map(|r| f(&r.probes[p])).collect();
                match (over_seeds(&v), v.len()) {
                    (Some(o), k) if k == total => o.to_string(),
                    (Some(o), k) => format!("{o} ({k}/{total})"),
                    (None, _) => "-".to_string(),
                }
            };
            let _ = writeln!(
                s,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                text(self.over(n, |r| Some(r.probes[p].n_dynamical as f64))),
                text(self.over(n, |r| Some(r.probes[p].skewness))),
                text(self.over(n, |r| Some(r.probes[p].mu2_per_dynamical))),
                text(self.over(n, |r| Some(r.probes[p].mu3_per_dynamical))),
                counted(|q| q.gap),
                counted(|q| q.gamma_measured),
                counted(|q| q.beta_gap),
                counted(|q| q.beta_energy),
                counted(|q| q.laplacian_f),
            );
        }
        s.push('\n');
    }

    fn correlation_tables(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "## Does the spectrum order the architectures as depth and learning do?\n"
        );
        let _ = writeln!(
            s,
            "Spearman's rho with a 95% interval (Fisher z, Bonett-Wright standard error) and a two-sided permutation p-value: over the architectures' means across seeds (every order enumerated), and over all runs ({PERMUTATIONS} random orders; runs of one architecture are not independent, so these p-values are optimistic). \"Predicted\" is the sign Sec. 9 expects: deeper networks have a more negative skewness and mu_3, a larger mu_2, a less negative DeltaF, and learn faster (a lower mean ln U_d). A verdict needs p <= 0.05 over the architectures.\n"
        );
        for &epoch in self.sweep.probe_epochs() {
            let _ = writeln!(s, "### Spectral quantities at epoch {epoch}\n");
            let _ = writeln!(
                s,
                "| question | predicted | rho (architectures) | p | rho (runs) | p | verdict |\n| --- | --- | --- | --- | --- | --- | --- |"
            );
            for a in self.answers.iter().filter(|a| a.epoch == epoch) {
                let sign = if a.predicted > 0.0 { "+" } else { "-" };
                let _ = writeln!(
                    s,
                    "| {} | {sign} | {} | {} | {} | {} | {} |",
                    a.question,
                    rho_text(a.architectures.as_ref()),
                    p_text(a.architectures.as_ref()),
                    rho_text(a.runs.as_ref()),
                    p_text(a.runs.as_ref()),
                    a.verdict()
                );
            }
            s.push('\n');
        }
    }

    /// One line per run: its efficiency and, for each probe epoch, its spectral quantities.
    pub fn runs_csv(&self) -> String {
        let levels = &self.sweep.manifest().loss_levels;
        let mut s =
            "network,depth,seed,mean_log_loss,final_loss,train_accuracy,test_accuracy".to_string();
        for l in levels {
            let _ = write!(s, ",epochs_to_{l}");
        }
        for e in self.sweep.probe_epochs() {
            for q in PROBE_COLUMNS {
                let _ = write!(s, ",{q}@{e}");
            }
        }
        s.push('\n');
        for r in &self.summaries {
            let _ = write!(
                s,
                "{},{},{},{},{},{},{}",
                r.key.network,
                r.depth,
                r.key.seed,
                r.mean_log_loss,
                r.final_loss,
                r.train_accuracy,
                r.test_accuracy
            );
            for e in &r.epochs_to_level {
                let _ = write!(s, ",{}", e.map_or(String::new(), |v| v.to_string()));
            }
            for q in &r.probes {
                let _ = write!(s, ",{}", q.csv_cells());
            }
            s.push('\n');
        }
        s
    }

    /// One line per run and analysis epoch: the quantities along the runs.
    pub fn trajectories_csv(&self) -> String {
        let mut s = format!(
            "network,seed,epoch,boundary_loss,test_accuracy,{}\n",
            PROBE_COLUMNS.join(",")
        );
        for run in &self.runs {
            for r in &run.records {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{}",
                    r.network,
                    r.seed,
                    r.epoch,
                    r.boundary_loss,
                    r.test_accuracy,
                    Probe::of(r).csv_cells()
                );
            }
        }
        s
    }

    /// The figures with their file names.
    pub fn figures(&self) -> Vec<(String, Figure)> {
        let c = self.sweep.experiment().config();
        let last = self.sweep.probe_epochs().len() - 1;
        let epoch = self.sweep.probe_epochs()[last];
        let plot = |title: String, x: &str, y: &str| LinePlot {
            title,
            x_label: x.into(),
            y_label: y.into(),
            curves: Vec::new(),
            markers: Vec::new(),
        };
        let mut curves = plot(
            "Mean batch loss, mean over seeds".into(),
            "log10 epoch",
            "log10 U_d",
        );
        let mut skew_run = plot(
            "Skewness of the dynamical log lambda along the runs (mean over seeds)".into(),
            "log10 epoch",
            "skewness",
        );
        let mut df_run = plot(
            "DeltaF (8.10) at the gap's beta along the runs (mean over seeds)".into(),
            "log10 epoch",
            "DeltaF",
        );
        let mut skew_depth = plot(
            format!("Skewness at epoch {epoch}"),
            "hidden layers",
            "skewness",
        );
        let mut df_depth = plot(
            format!("DeltaF (8.10) at the gap's beta, epoch {epoch}"),
            "hidden layers",
            "DeltaF",
        );
        let mut area_skew = plot(
            format!("Learning efficiency against skewness at epoch {epoch}"),
            "skewness",
            "mean ln U_d",
        );
        let mut area_df = plot(
            format!("Learning efficiency against DeltaF at epoch {epoch}"),
            "DeltaF",
            "mean ln U_d",
        );
        for spec in &c.networks {
            let name = spec.name.as_str();
            let runs: Vec<&SweepRun> = self.runs.iter().filter(|r| r.key.network == name).collect();
            curves.curves.push(Curve::line(name, mean_log_curve(&runs)));
            skew_run
                .curves
                .push(Curve::line(name, mean_along(&runs, |r| r.skewness)));
            df_run.curves.push(Curve::line(
                name,
                mean_along(&runs, |r| r.laplacian_f_gap.unwrap_or(f64::NAN)),
            ));
            let mine: Vec<&RunSummary> = self.of_network(name).collect();
            let pts = |f: &dyn Fn(&RunSummary) -> Option<(f64, f64)>| -> Vec<(f64, f64)> {
                mine.iter()
                    .filter_map(|r| f(r))
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect()
            };
            skew_depth.curves.push(Curve::dots(
                name,
                pts(&|r| Some((r.depth as f64, r.probes[last].skewness))),
            ));
            df_depth.curves.push(Curve::dots(
                name,
                pts(&|r| Some((r.depth as f64, r.probes[last].laplacian_f?))),
            ));
            area_skew.curves.push(Curve::dots(
                name,
                pts(&|r| Some((r.probes[last].skewness, r.mean_log_loss))),
            ));
            area_df.curves.push(Curve::dots(
                name,
                pts(&|r| Some((r.probes[last].laplacian_f?, r.mean_log_loss))),
            ));
        }
        [
            ("sweep_loss_curves.svg", curves),
            ("sweep_skewness_along_runs.svg", skew_run),
            ("sweep_laplacian_along_runs.svg", df_run),
            ("sweep_skewness_vs_depth.svg", skew_depth),
            ("sweep_laplacian_vs_depth.svg", df_depth),
            ("sweep_efficiency_vs_skewness.svg", area_skew),
            ("sweep_efficiency_vs_laplacian.svg", area_df),
        ]
        .into_iter()
        .filter(|(_, p)| p.curves.iter().any(|c| !c.points.is_empty()))
        .map(|(n, p)| (n.to_string(), Figure::Line(p)))
        .collect()
    }

    /// Write `sweep.md`, `runs.csv`, `trajectories.csv` and `figures/` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), ExperimentError> {
        let figures = out.join("figures");
        std::fs::create_dir_all(&figures).map_err(|e| ExperimentError::file(&figures, e))?;
        for (name, text) in [
            ("sweep.md", self.markdown()),
            ("runs.csv", self.runs_csv()),
            ("trajectories.csv", self.trajectories_csv()),
        ] {
            septuple_io::write_atomic(out.join(name), text.as_bytes())?;
        }
        for (name, figure) in self.figures() {
            figure.write_svg(&figures.join(name))?;
        }
        Ok(())
    }
}

/// The architectures' means of the (network, x, y) triples, in the sweep's network order.
fn architecture_means(sweep: &Sweep, pairs: &[(&str, f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    sweep
        .experiment()
        .config()
        .networks
        .iter()
        .filter_map(|spec| {
            let mine: Vec<(f64, f64)> = pairs
                .iter()
                .filter(|(n, _, _)| *n == spec.name)
                .map(|&(_, x, y)| (x, y))
                .collect();
            let k = mine.len() as f64;
            (k > 0.0).then(|| {
                (
                    mine.iter().map(|p| p.0).sum::<f64>() / k,
                    mine.iter().map(|p| p.1).sum::<f64>() / k,
                )
            })
        })
        .unzip()
}

/// The mean over runs of log10 U_d, at about 200 log-spaced epochs.
fn mean_log_curve(runs: &[&SweepRun]) -> Vec<(f64, f64)> {
    let Some(n) = runs.iter().map(|r| r.losses.len()).min() else {
        return Vec::new();
    };
    let mut epochs: Vec<usize> = (0..=200)
        .map(|k| (n as f64).powf(k as f64 / 200.0).round() as usize)
        .filter(|&e| e >= 1 && e <= n)
        .collect();
    epochs.dedup();
    epochs
        .into_iter()
        .filter_map(|e| {
            let m = runs.iter().map(|r| r.losses[e - 1].ln()).sum::<f64>() / runs.len() as f64;
            let y = m / std::f64::consts::LN_10;
            y.is_finite().then_some(((e as f64).log10(), y))
        })
        .collect()
}

/// The mean over runs of a record's quantity at each analysis epoch all of them have.
fn mean_along(runs: &[&SweepRun], f: fn(&AnalysisRecord) -> f64) -> Vec<(f64, f64)> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .records
        .iter()
        .filter_map(|r0| {
            let v: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.records.iter().find(|r| r.epoch == r0.epoch).map(f))
                .filter(|v| v.is_finite())
                .collect();
            (v.len() == runs.len()).then(|| {
                (
                    (r0.epoch as f64).log10(),
                    v.iter().sum::<f64>() / v.len() as f64,
                )
            })
        })
        .collect()
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

fn rho_text(c: Option<&Correlation>) -> String {
    match c {
        Some(Correlation {
            rho: Some(r),
            interval: Some((lo, hi)),
            n,
            ..
        }) => format!("{r:.2} [{lo:.2}, {hi:.2}] (n = {n})"),
        Some(Correlation {
            rho: Some(r), n, ..
        }) => format!("{r:.2} (n = {n})"),
        Some(c) => format!("- (n = {}, a side is constant)", c.n),
        None => "- (too few values)".to_string(),
    }
}

fn p_text(c: Option<&Correlation>) -> String {
    match c.and_then(|c| c.p_value) {
        Some(p) if p < 1e-3 => format_supported(p, p / 10.0),
        Some(p) => format!("{p:.3}"),
        None => "-".to_string(),
    }
}
