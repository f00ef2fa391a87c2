//! The results over seeds: per-network summaries ([`Report`]), the Markdown table, the CSV of
//! all records, and the files of a finished experiment ([`write_outputs`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use septuple_train::{Batch, Objective, Schedule, SgdConfig};

use crate::analysis::{c_n_minus_20_label, AnalysisRecord};
use crate::config::{Experiment, ExperimentConfig};
use crate::error::ExperimentError;
use crate::figures::write_figures;
use crate::stats::{linear_fit, spread, Spread};

/// Per-network results over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkReport {
    /// Network name.
    pub network: String,
    /// The epoch the table refers to (the last analysis epoch all seeds reached).
    pub epoch: usize,
    /// Seeds.
    pub seeds: usize,
    /// N.
    pub n_neurons: usize,
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
    /// beta from the gap, relation of (9.3) at the configured gamma.
    pub beta_gap: Option<Spread>,
    /// beta from the gap by (9.4) as printed.
    pub beta_gap_eq_9_4: Option<Spread>,
    /// beta from U = N_> / (2 beta).
    pub beta_energy: Option<Spread>,
    /// Slope of C_20 against log U (Fig. 7), over the analysis epochs from 10 on.
    ///
    /// (All analysis epochs when the run has fewer than three from epoch 10 on.)
    pub slope_c20: Option<Spread>,
    /// Slope of C_(N-20) against log U (Fig. 7), over the same epochs.
    pub slope_c_n_minus_20: Option<Spread>,
    /// Training accuracy.
    pub train_accuracy: Option<Spread>,
    /// Test accuracy.
    pub test_accuracy: Option<Spread>,
    /// Second-law violations of S along each run (7.6), summed over seeds.
    pub second_law_violations: usize,
    /// Steps between analysis epochs checked for the second law, summed over seeds.
    pub second_law_steps: usize,
    /// The largest violation (rise of S), if any.
    pub largest_violation: Option<f64>,
}

/// The records used for the fits of Fig. 7: from epoch 10 on (the first epochs are far from
/// the slow relaxation the fit describes), or all of them when fewer than three remain.
pub(crate) fn late_records(run: &[AnalysisRecord]) -> Vec<&AnalysisRecord> {
    let ok = |r: &&AnalysisRecord| r.bulk_loss > 0.0 && r.bulk_loss.is_finite();
    let late: Vec<&AnalysisRecord> = run.iter().filter(|r| r.epoch >= 10).filter(ok).collect();
    if late.len() >= 3 {
        late
    } else {
        run.iter().filter(ok).collect()
    }
}

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
pub fn runs_of(records: &[AnalysisRecord]) -> BTreeMap<(String, u64), Vec<AnalysisRecord>> {
    let mut m: BTreeMap<(String, u64), Vec<AnalysisRecord>> = BTreeMap::new();
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

/// The slopes of C_20 and C_(N-20) against log U over the late records of a run (Fig. 7).
fn complexity_slopes(run: &[AnalysisRecord]) -> (Option<f64>, Option<f64>) {
    let late = late_records(run);
    let x: Vec<f64> = late.iter().map(|r| r.bulk_loss.ln()).collect();
    let slope = |y: Vec<f64>| linear_fit(&x, &y).ok().map(|f| f.slope);
    (
        slope(late.iter().map(|r| r.c20).collect()),
        slope(late.iter().map(|r| r.c_n_minus_20).collect()),
    )
}

/// The second law (7.6) along one run, between the records that have a beta from the energy.
#[derive(Default)]
struct SecondLaw {
    steps: usize,
    violations: usize,
    largest: Option<f64>,
}

impl SecondLaw {
    /// Add the steps and violations recorded along the run (checked as it ran).
    fn add(&mut self, run: &[AnalysisRecord]) {
        for step in run.iter().filter_map(|r| r.laws.as_ref()) {
            self.steps += 1;
            if let Some(size) = step.second_law_violation {
                self.violations += 1;
                self.largest = Some(self.largest.map_or(size, |l: f64| l.max(size)));
            }
        }
    }
}

impl NetworkReport {
    /// The summary of network `name` over its runs (one per seed, each sorted by epoch), at
    /// the last epoch all of them reached; None without records.
    fn from_runs(
        name: &str,
        runs: &[&Vec<AnalysisRecord>],
    ) -> Result<Option<Self>, ExperimentError> {
        let Some(epoch) = runs.iter().filter_map(|v| v.last().map(|r| r.epoch)).min() else {
            return Ok(None);
        };
        let at: Vec<&AnalysisRecord> = runs
            .iter()
            .filter_map(|v| v.iter().find(|r| r.epoch == epoch))
            .collect();
        let pick = |f: &dyn Fn(&AnalysisRecord) -> Option<f64>| {
            spread_of(at.iter().filter_map(|r| f(r)).collect())
        };
        let mut slopes20 = Vec::new();
        let mut slopes_n_minus_20 = Vec::new();
        let mut law = SecondLaw::default();
        for run in runs {
            let (s20, s_n_minus_20) = complexity_slopes(run);
            slopes20.extend(s20);
            slopes_n_minus_20.extend(s_n_minus_20);
            law.add(run);
        }
        Ok(Some(NetworkReport {
            network: name.to_string(),
            epoch,
            seeds: at.len(),
            n_neurons: at[0].n_neurons,
            mu2: pick(&|r| Some(r.mu2)),
            mu3: pick(&|r| Some(r.mu3)),
            variance: pick(&|r| Some(r.variance)),
            skewness: pick(&|r| Some(r.skewness)),
            gap: pick(&|r| r.gap),
            beta_gap: pick(&|r| r.beta_gap),
            beta_gap_eq_9_4: pick(&|r| r.beta_gap_eq_9_4),
            beta_energy: pick(&|r| r.beta_energy),
            slope_c20: spread_of(slopes20),
            slope_c_n_minus_20: spread_of(slopes_n_minus_20),
            train_accuracy: pick(&|r| Some(r.train_accuracy)),
            test_accuracy: pick(&|r| Some(r.test_accuracy)),
            second_law_violations: law.violations,
            second_law_steps: law.steps,
            largest_violation: law.largest,
        }))
    }
}

/// How one row of the summary table is read from a network's report.
type RowFn = Box<dyn Fn(&NetworkReport) -> String>;

/// A table cell: mean ± standard deviation over seeds (the mean alone for one seed).
fn cell(s: &Option<Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{:.4} ± {:.2e}", s.mean, s.std),
        Some(s) => format!("{:.4}", s.mean),
        None => "n/a".into(),
    }
}

/// The second-law cell of the summary table.
fn second_law_cell(n: &NetworkReport) -> String {
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
}

/// The rows of the summary table: a name and how to read the cell of a network. `gamma` is the
/// configured gamma and `c_n_minus_20` the name of C_(N-20) for the networks' N.
fn table_rows(gamma: &str, c_n_minus_20: &str) -> Vec<(String, RowFn)> {
    vec![
        (
            "mu2 = Tr (log G)^2 (9.5)".into(),
            Box::new(|n| cell(&n.mu2)),
        ),
        (
            "mu3 = Tr (log G)^3 (9.6)".into(),
            Box::new(|n| cell(&n.mu3)),
        ),
        (
            "mu2 normalised: variance of dynamical log lambda".into(),
            Box::new(|n| cell(&n.variance)),
        ),
        (
            "mu3 normalised: skewness of dynamical log lambda".into(),
            Box::new(|n| cell(&n.skewness)),
        ),
        (
            "gap position (log lambda)".into(),
            Box::new(|n| cell(&n.gap)),
        ),
        (
            format!("beta from gap, (9.3) at gamma = {gamma}"),
            Box::new(|n| cell(&n.beta_gap)),
        ),
        (
            "beta from gap, (9.4) as printed".into(),
            Box::new(|n| cell(&n.beta_gap_eq_9_4)),
        ),
        (
            "beta from U = N_>/(2 beta) (7.5)".into(),
            Box::new(|n| cell(&n.beta_energy)),
        ),
        (
            "slope of C_20 against log U (Fig. 7)".into(),
            Box::new(|n| cell(&n.slope_c20)),
        ),
        (
            format!("slope of {c_n_minus_20} against log U (Fig. 7)"),
            Box::new(|n| cell(&n.slope_c_n_minus_20)),
        ),
        (
            "train accuracy".into(),
            Box::new(|n| cell(&n.train_accuracy)),
        ),
        ("test accuracy".into(), Box::new(|n| cell(&n.test_accuracy))),
        (
            "second law (7.6) along the run".into(),
            Box::new(second_law_cell),
        ),
    ]
}

impl Report {
    /// Summaries over seeds from the records.
    pub fn from_records(
        experiment: &Experiment,
        records: &[AnalysisRecord],
    ) -> Result<Report, ExperimentError> {
        let config = experiment.config();
        let runs = runs_of(records);
        let mut networks = Vec::new();
        for spec in &config.networks {
            let mine: Vec<&Vec<AnalysisRecord>> = runs
                .iter()
                .filter(|((n, _), _)| n == &spec.name)
                .map(|(_, v)| v)
                .collect();
            networks.extend(NetworkReport::from_runs(&spec.name, &mine)?);
        }
        Ok(Report {
            config: config.clone(),
            networks,
        })
    }

    /// The title and the paragraph that describes the settings.
    fn preamble(&self) -> String {
        let c = &self.config;
        format!(
            "# deep_vs_shallow: summary\n\n\
             {} epochs, batch {}, {}, {} training and {} test samples, seeds {:?}; tanh, {}, \
             PyTorch's default initialisation. Values at the last analysis epoch, mean ± \
             standard deviation over seeds.\n\n",
            c.sgd.epochs,
            match c.sgd.batch {
                Batch::Size(b) => b.to_string(),
                Batch::Full => "full".into(),
            },
            learning_rate_text(&c.sgd),
            c.train_samples,
            c.test_samples,
            c.seeds,
            objective_text(&c.sgd),
        )
    }

    /// The header of the table: one column per network.
    fn table_header(&self) -> String {
        let columns = self
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
            .join(" | ");
        format!(
            "| quantity | {columns} |\n| --- |{}\n",
            " --- |".repeat(self.networks.len())
        )
    }

    /// The summary table as Markdown (mean +- standard deviation over seeds).
    pub fn markdown(&self) -> String {
        let mut t = self.preamble();
        t.push_str(&self.table_header());
        let gamma = fraction_text(self.config.gamma);
        let c_n_minus_20 = match self.networks.first() {
            Some(first) if self.networks.iter().all(|n| n.n_neurons == first.n_neurons) => {
                c_n_minus_20_label(first.n_neurons)
            }
            _ => "C_(N-20)".into(),
        };
        for (name, f) in table_rows(&gamma, &c_n_minus_20) {
            t.push_str(&format!(
                "| {name} | {} |\n",
                self.networks.iter().map(&f).collect::<Vec<_>>().join(" | ")
            ));
        }
        t
    }
}

/// The learning rate and its schedule, as the summary states them.
fn learning_rate_text(sgd: &SgdConfig) -> String {
    let eta = sgd.learning_rate;
    match sgd.schedule {
        Schedule::Constant => format!("learning rate {eta}"),
        Schedule::Step { every, factor } => {
            format!("learning rate {eta} times {factor} every {every} epochs")
        }
        Schedule::InverseTime { half_life } => {
            format!("learning rate {eta} / (1 + (epoch - 1) / {half_life})")
        }
    }
}

/// What SGD minimises, as the summary states it.
fn objective_text(sgd: &SgdConfig) -> String {
    match sgd.objective {
        Objective::Boundary => "SGD on the boundary loss (2.11)".into(),
        Objective::Bulk { mass } => format!("SGD on the bulk loss (3.4) with m = {mass}"),
    }
}

/// `x` as a fraction p/q with q <= 12 when it is one to rounding (1/3 -> "1/3"), else as is.
pub(crate) fn fraction_text(x: f64) -> String {
    for q in 1..=12u32 {
        let p = (x * f64::from(q)).round();
        if p != 0.0 && (p / f64::from(q) - x).abs() <= 4.0 * f64::EPSILON * x.abs() {
            return if q == 1 {
                format!("{p}")
            } else {
                format!("{p}/{q}")
            };
        }
    }
    format!("{x}")
}

/// Metrics of all runs as CSV (one row per analysis epoch; the spectrum is in the JSON file).
pub fn metrics_csv(records: &[AnalysisRecord]) -> String {
    let mut t = String::from(
        "network,seed,epoch,boundary_loss,bulk_loss,train_accuracy,test_accuracy,mu2,mu3,variance,skewness,c20,c_n_minus_20,gap,beta_gap,beta_gap_eq_9_4,beta_energy,sum_log_lambda,wall_seconds\n",
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
            r.c_n_minus_20,
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

/// Write the metrics (CSV, JSON), the figures and the Markdown summary into `out`, then remove
/// temporary files a killed writer left there.
pub fn write_outputs(
    experiment: &Experiment,
    records: &[AnalysisRecord],
    out: &Path,
) -> Result<Report, ExperimentError> {
    let config = experiment.config();
    let report = Report::from_records(experiment, records)?;
    let csv = out.join("metrics.csv");
    septuple_io::write_atomic(&csv, metrics_csv(records).as_bytes())?;
    let json = out.join("metrics.json");
    let doc = serde_json::json!({ "config": config, "records": records, "report": report });
    septuple_io::write_atomic(
        &json,
        serde_json::to_string(&doc)
            .map_err(|e| ExperimentError::file(&json, e))?
            .as_bytes(),
    )?;
    write_figures(experiment, records, &out.join("figures"))?;
    let md = out.join("summary.md");
    septuple_io::write_atomic(&md, report.markdown().as_bytes())?;
    // Every output is in place: what is left of a killed writer's temporary files goes.
    for dir in [out.to_path_buf(), out.join("figures")] {
        septuple_io::remove_stale_temporaries(dir)?;
    }
    Ok(report)
}
