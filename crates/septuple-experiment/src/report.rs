//! The results over seeds: per-network summaries ([`Report`]), the Markdown table, the CSV of
//! all records, and the files of a finished experiment ([`write_outputs`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use septuple_core::Init;
use septuple_train::{Batch, Objective, Schedule, SgdConfig};

use crate::analysis::{c_n_minus_20_label, AnalysisRecord};
use crate::config::{Experiment, ExperimentConfig};
use crate::error::ExperimentError;
use crate::figures::{read_loss_curves, write_figures};
use crate::stats::{linear_fit, linearity_test, over_seeds, OverSeeds};

/// Per-network results over seeds: each quantity at the last analysis epoch all seeds reached,
/// with its spread and 95% confidence interval over seeds.
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
    /// U_d, the boundary loss (2.11).
    pub boundary_loss: Option<OverSeeds>,
    /// U = U_0, the bulk loss (4.1) at the bulk-solved states.
    pub bulk_loss: Option<OverSeeds>,
    /// 1/2 |x - f(w x + b)|^2 at the mean state, the constant (5.5) drops.
    pub mean_state_residual: Option<OverSeeds>,
    /// The number of dynamical eigenvalues.
    pub n_dynamical: Option<OverSeeds>,
    /// mu_2 (9.5).
    pub mu2: Option<OverSeeds>,
    /// mu_3 (9.6).
    pub mu3: Option<OverSeeds>,
    /// mu_2 / n_dyn.
    pub mu2_per_dynamical: Option<OverSeeds>,
    /// mu_3 / n_dyn.
    pub mu3_per_dynamical: Option<OverSeeds>,
    /// Variance of the dynamical log lambda.
    pub variance: Option<OverSeeds>,
    /// Skewness of the dynamical log lambda.
    pub skewness: Option<OverSeeds>,
    /// Gap position (widest space).
    pub gap: Option<OverSeeds>,
    /// Gap position (two-means rule).
    pub gap_two_means: Option<OverSeeds>,
    /// Analysis epochs (all seeds) at which the two gap rules put the same number of
    /// eigenvalues below the gap, and at which both found a gap.
    pub gap_rules_agree: (usize, usize),
    /// gamma of (9.2) measured from the spectrum.
    pub gamma_measured: Option<OverSeeds>,
    /// beta from the gap, relation of (9.3) at the configured gamma.
    pub beta_gap: Option<OverSeeds>,
    /// beta from the gap, relation of (9.3) at the measured gamma.
    pub beta_gap_measured: Option<OverSeeds>,
    /// beta from the gap, relation of (9.3) at gamma = 1/3.
    pub beta_gap_third: Option<OverSeeds>,
    /// beta from the gap by (9.4) as printed.
    pub beta_gap_eq_9_4: Option<OverSeeds>,
    /// beta from U = N_> / (2 beta).
    pub beta_energy: Option<OverSeeds>,
    /// DeltaF of (8.10) at the beta of the measured gamma.
    pub laplacian_f_gap: Option<OverSeeds>,
    /// log sigma(beta) / sigma(0) per unit alpha (8.6-8.11) at that beta.
    pub log_density_factor_gap: Option<OverSeeds>,
    /// Slope of C_20 against log U (Fig. 7), over the analysis epochs from 10 on.
    ///
    /// (All analysis epochs when the run has fewer than three from epoch 10 on.)
    pub slope_c20: Option<OverSeeds>,
    /// Slope of C_(N-20) against log U (Fig. 7), over the same epochs.
    pub slope_c_n_minus_20: Option<OverSeeds>,
    /// The slopes of Fig. 7 fitted from several first epochs.
    pub slope_windows: Vec<SlopeWindow>,
    /// Training accuracy.
    pub train_accuracy: Option<OverSeeds>,
    /// Test accuracy.
    pub test_accuracy: Option<OverSeeds>,
    /// The laws along each run at beta from the energy (7.5).
    pub laws_energy: LawTally,
    /// The laws along each run at beta from the gap at the measured gamma.
    pub laws_gap: LawTally,
    /// U(beta) of the Gaussian model (6.1) at the beta of the measured gamma.
    #[serde(default)]
    pub energy_gap: Option<OverSeeds>,
    /// The residual r_w of the equilibrium condition (6.2) at that beta.
    #[serde(default)]
    pub equilibrium_residual_w_gap: Option<OverSeeds>,
    /// The residual r_b of (6.2) at that beta.
    #[serde(default)]
    pub equilibrium_residual_b_gap: Option<OverSeeds>,
    /// The mean-state term of log Z (5.11) at that beta.
    #[serde(default)]
    pub log_z_mean_term_gap: Option<OverSeeds>,
    /// log Z without it, (5.14), at that beta.
    #[serde(default)]
    pub log_z_large_n_gap: Option<OverSeeds>,
}

/// The slopes of C_20 and C_(N-20) against log U (Fig. 7) fitted over the analysis epochs from
/// `from_epoch` on, per seed, and a test of whether the relation is linear at all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlopeWindow {
    /// The first epoch of the fit.
    pub from_epoch: usize,
    /// The slope of C_20 over seeds.
    pub c20: Option<OverSeeds>,
    /// The mean over seeds of the slope's own least-squares standard error.
    pub c20_stderr: Option<f64>,
    /// The slope of C_(N-20) over seeds.
    pub c_n_minus_20: Option<OverSeeds>,
    /// The mean over seeds of its standard error.
    pub c_n_minus_20_stderr: Option<f64>,
    /// Seeds whose C_20 against log U rejects a line at the 5% level (F test against a
    /// parabola), out of [`tested`](Self::tested).
    pub c20_not_linear: usize,
    /// Seeds with enough points (four) for the test.
    pub tested: usize,
    /// The fewest points any seed's fit used.
    pub min_points: usize,
}

/// The laws of learning along the runs of one network at one choice of temperature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LawTally {
    /// Steps checked, summed over seeds.
    pub steps: usize,
    /// Second-law (7.6) violations of S.
    pub second_law_violations: usize,
    /// The largest rise of S, if any.
    pub largest_violation: Option<f64>,
    /// First-law (7.11) violations: |dU - T dS_0 - T dC| beyond its bound.
    pub first_law_violations: usize,
    /// The largest |residual| / bound of the first law over the steps.
    pub largest_first_law_ratio: Option<f64>,
}

impl LawTally {
    fn add(&mut self, steps: impl Iterator<Item = septuple_thermo::StepRecord>) {
        for step in steps {
            self.steps += 1;
            if let Some(size) = step.second_law_violation {
                self.second_law_violations += 1;
                self.largest_violation = Some(self.largest_violation.map_or(size, |l| l.max(size)));
            }
            if step.first_law_violation.is_some() {
                self.first_law_violations += 1;
            }
            let fl = step.first_law;
            if fl.bound > 0.0 {
                let ratio = fl.residual.abs() / fl.bound;
                self.largest_first_law_ratio =
                    Some(self.largest_first_law_ratio.map_or(ratio, |l| l.max(ratio)));
            }
        }
    }

    /// The table cell.
    fn cell(&self) -> String {
        if self.steps == 0 {
            return "not checked (no beta estimate)".into();
        }
        let second = if self.second_law_violations == 0 {
            format!("S fell at all {} steps", self.steps)
        } else {
            format!(
                "S rose at {} of {} steps (largest rise {:.3e})",
                self.second_law_violations,
                self.steps,
                self.largest_violation.unwrap_or(0.0)
            )
        };
        let first = match self.largest_first_law_ratio {
            Some(r) => format!(
                "; first law beyond its bound at {} steps (largest |residual| / bound {r:.3})",
                self.first_law_violations
            ),
            None => String::new(),
        };
        format!("{second}{first}")
    }
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

/// A least-squares slope of Fig. 7 and its standard error.
type Slope = (f64, f64);

/// The slopes of C_20 and C_(N-20) against log U over `records` (Fig. 7), and whether the
/// C_20 relation rejects a line (None with fewer than four points).
fn complexity_slopes(records: &[&AnalysisRecord]) -> (Option<Slope>, Option<Slope>, Option<bool>) {
    let x: Vec<f64> = records.iter().map(|r| r.bulk_loss.ln()).collect();
    let fit = |y: &[f64]| linear_fit(&x, y).ok().map(|f| (f.slope, f.slope_stderr));
    let c20: Vec<f64> = records.iter().map(|r| r.c20).collect();
    let c_n: Vec<f64> = records.iter().map(|r| r.c_n_minus_20).collect();
    let not_linear = linearity_test(&x, &c20).ok().map(|t| t.p_value < 0.05);
    (fit(&c20), fit(&c_n), not_linear)
}

/// The records of a run with a positive finite U, from epoch `from` on.
fn fit_records(run: &[AnalysisRecord], from: usize) -> Vec<&AnalysisRecord> {
    run.iter()
        .filter(|r| r.epoch >= from && r.bulk_loss > 0.0 && r.bulk_loss.is_finite())
        .collect()
}

/// The first epochs of the fits of [`SlopeWindow`].
pub const SLOPE_WINDOWS: [usize; 4] = [1, 10, 100, 1000];

fn slope_window(runs: &[&Vec<AnalysisRecord>], from_epoch: usize) -> Option<SlopeWindow> {
    let (mut c20, mut se20, mut cn, mut sen) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut not_linear, mut tested, mut min_points) = (0, 0, usize::MAX);
    for run in runs {
        let recs = fit_records(run, from_epoch);
        if recs.len() < 3 {
            continue;
        }
        min_points = min_points.min(recs.len());
        let (a, b, lin) = complexity_slopes(&recs);
        if let Some((s, e)) = a {
            c20.push(s);
            se20.push(e);
        }
        if let Some((s, e)) = b {
            cn.push(s);
            sen.push(e);
        }
        if let Some(rejected) = lin {
            tested += 1;
            not_linear += usize::from(rejected);
        }
    }
    let mean = |v: &[f64]| over_seeds(v).map(|o| o.spread.mean);
    (!c20.is_empty()).then(|| SlopeWindow {
        from_epoch,
        c20: over_seeds(&c20),
        c20_stderr: mean(&se20),
        c_n_minus_20: over_seeds(&cn),
        c_n_minus_20_stderr: mean(&sen),
        c20_not_linear: not_linear,
        tested,
        min_points,
    })
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
            over_seeds(&at.iter().filter_map(|r| f(r)).collect::<Vec<f64>>())
        };
        let mut slopes20 = Vec::new();
        let mut slopes_n_minus_20 = Vec::new();
        let (mut laws_energy, mut laws_gap) = (LawTally::default(), LawTally::default());
        let mut agree = (0, 0);
        for run in runs {
            let (s20, s_n_minus_20, _) = complexity_slopes(&late_records(run));
            slopes20.extend(s20.map(|s| s.0));
            slopes_n_minus_20.extend(s_n_minus_20.map(|s| s.0));
            laws_energy.add(run.iter().filter_map(|r| r.laws));
            laws_gap.add(run.iter().filter_map(|r| r.laws_gap));
            for a in run.iter().filter_map(AnalysisRecord::gap_rules_agree) {
                agree.0 += usize::from(a);
                agree.1 += 1;
            }
        }
        Ok(Some(NetworkReport {
            network: name.to_string(),
            epoch,
            seeds: at.len(),
            n_neurons: at[0].n_neurons,
            boundary_loss: pick(&|r| Some(r.boundary_loss)),
            bulk_loss: pick(&|r| Some(r.bulk_loss)),
            mean_state_residual: pick(&|r| r.mean_state_residual),
            n_dynamical: pick(&|r| Some(r.n_dynamical as f64)),
            mu2: pick(&|r| Some(r.mu2)),
            mu3: pick(&|r| Some(r.mu3)),
            mu2_per_dynamical: pick(&|r| Some(r.mu2_per_dynamical())),
            mu3_per_dynamical: pick(&|r| Some(r.mu3_per_dynamical())),
            variance: pick(&|r| Some(r.variance)),
            skewness: pick(&|r| Some(r.skewness)),
            gap: pick(&|r| r.gap),
            gap_two_means: pick(&|r| r.gap_two_means),
            gap_rules_agree: agree,
            gamma_measured: pick(&|r| r.gamma_measured),
            beta_gap: pick(&|r| r.beta_gap),
            beta_gap_measured: pick(&|r| r.beta_gap_measured),
            beta_gap_third: pick(&|r| r.beta_gap_third),
            beta_gap_eq_9_4: pick(&|r| r.beta_gap_eq_9_4),
            beta_energy: pick(&|r| r.beta_energy),
            laplacian_f_gap: pick(&|r| r.laplacian_f_gap),
            log_density_factor_gap: pick(&|r| r.log_density_factor_gap),
            slope_c20: over_seeds(&slopes20),
            slope_c_n_minus_20: over_seeds(&slopes_n_minus_20),
            slope_windows: SLOPE_WINDOWS
                .iter()
                .filter_map(|&e| slope_window(runs, e))
                .collect(),
            train_accuracy: pick(&|r| Some(r.train_accuracy)),
            test_accuracy: pick(&|r| Some(r.test_accuracy)),
            laws_energy,
            laws_gap,
            energy_gap: pick(&|r| r.energy_gap),
            equilibrium_residual_w_gap: pick(&|r| r.equilibrium_residual_w_gap),
            equilibrium_residual_b_gap: pick(&|r| r.equilibrium_residual_b_gap),
            log_z_mean_term_gap: pick(&|r| r.log_z_mean_term_gap),
            log_z_large_n_gap: pick(&|r| r.log_z_large_n_gap),
        }))
    }
}

/// How one row of the summary table is read from a network's report.
type RowFn = Box<dyn Fn(&NetworkReport) -> String>;

/// A table cell: mean and 95% confidence interval over seeds (the mean alone for one seed).
fn cell(s: &Option<OverSeeds>) -> String {
    s.as_ref().map_or_else(|| "n/a".into(), |o| o.to_string())
}

/// The rows of the summary table: a name and how to read the cell of a network. `gamma` is the
/// configured gamma and `c_n_minus_20` the name of C_(N-20) for the networks' N.
fn table_rows(gamma: &str, c_n_minus_20: &str) -> Vec<(String, RowFn)> {
    vec![
        (
            "U_d, boundary loss (2.11)".into(),
            Box::new(|n| cell(&n.boundary_loss)),
        ),
        (
            "U = U_0, bulk loss (4.1)".into(),
            Box::new(|n| cell(&n.bulk_loss)),
        ),
        (
            "1/2 |x - f(w x + b)|^2 at the mean state (dropped by 5.5)".into(),
            Box::new(|n| cell(&n.mean_state_residual)),
        ),
        (
            "n_dyn, dynamical eigenvalues".into(),
            Box::new(|n| cell(&n.n_dynamical)),
        ),
        (
            "mu2 = Tr (log G)^2 (9.5)".into(),
            Box::new(|n| cell(&n.mu2)),
        ),
        (
            "mu3 = Tr (log G)^3 (9.6)".into(),
            Box::new(|n| cell(&n.mu3)),
        ),
        (
            "mu2 / n_dyn".into(),
            Box::new(|n| cell(&n.mu2_per_dynamical)),
        ),
        (
            "mu3 / n_dyn".into(),
            Box::new(|n| cell(&n.mu3_per_dynamical)),
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
            "gap position (log lambda), widest space".into(),
            Box::new(|n| cell(&n.gap)),
        ),
        (
            "gap position (log lambda), two-means".into(),
            Box::new(|n| cell(&n.gap_two_means)),
        ),
        (
            "epochs where the two gap rules agree".into(),
            Box::new(|n| format!("{} of {}", n.gap_rules_agree.0, n.gap_rules_agree.1)),
        ),
        (
            "gamma measured: fraction of eigenvalues below the gap".into(),
            Box::new(|n| cell(&n.gamma_measured)),
        ),
        (
            "beta from gap, (9.3) at the measured gamma".into(),
            Box::new(|n| cell(&n.beta_gap_measured)),
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
            "DeltaF (8.10) at beta from the gap (measured gamma)".into(),
            Box::new(|n| cell(&n.laplacian_f_gap)),
        ),
        (
            "log sigma(beta)/sigma(0) per alpha (8.6, integrated) at that beta".into(),
            Box::new(|n| cell(&n.log_density_factor_gap)),
        ),
        (
            "U(beta) of the Gaussian model (6.1) at that beta".into(),
            Box::new(|n| cell(&n.energy_gap)),
        ),
        (
            "equilibrium (6.2) residual r_w = |dU/dw| |w| / U at that beta".into(),
            Box::new(|n| cell(&n.equilibrium_residual_w_gap)),
        ),
        (
            "equilibrium (6.2) residual r_b = |dU/db| |b| / U at that beta".into(),
            Box::new(|n| cell(&n.equilibrium_residual_b_gap)),
        ),
        (
            "mean-state term of log Z (5.11) at that beta".into(),
            Box::new(|n| cell(&n.log_z_mean_term_gap)),
        ),
        (
            "log Z without it (5.14) at that beta".into(),
            Box::new(|n| cell(&n.log_z_large_n_gap)),
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
            "laws (7.6, 7.11) at beta from U (7.5)".into(),
            Box::new(|n| n.laws_energy.cell()),
        ),
        (
            "laws (7.6, 7.11) at beta from the gap (measured gamma)".into(),
            Box::new(|n| n.laws_gap.cell()),
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
             {}. Values at the last analysis epoch: the mean \
             over seeds and its 95% confidence interval [lower, upper] (Student's t with one \
             degree of freedom fewer than the seeds in the column's header), each with the \
             digits the interval supports; the value alone for one seed.\n\n",
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
            init_text(c.init),
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
        let mut rows = table_rows(&gamma, &c_n_minus_20);
        if gamma != "1/3" {
            // Fig. 1's gamma beside the configured one.
            let at = rows
                .iter()
                .position(|(name, _)| name.starts_with("beta from gap, (9.4)"))
                .unwrap_or(rows.len());
            rows.insert(
                at,
                (
                    "beta from gap, (9.3) at gamma = 1/3".into(),
                    Box::new(|n| cell(&n.beta_gap_third)),
                ),
            );
        }
        for (name, f) in rows {
            t.push_str(&format!(
                "| {name} | {} |\n",
                self.networks.iter().map(&f).collect::<Vec<_>>().join(" | ")
            ));
        }
        t.push_str(&self.slope_windows_markdown(&c_n_minus_20));
        t
    }

    /// The slopes of Fig. 7 by the first epoch of the fit, with standard errors and the test
    /// of linearity.
    fn slope_windows_markdown(&self, c_n_minus_20: &str) -> String {
        let mut t = format!(
            "\n## Fig. 7: slopes by fit window\n\n\
             Least-squares slopes of C_20 and {c_n_minus_20} against log U over the analysis \
             epochs from the given one on, per seed; the mean over seeds with its 95% interval, \
             the mean of the fits' own standard errors, and how many seeds' C_20 rejects a line \
             against a parabola (F test, 5%).\n\n\
             | network | fit from epoch | points (fewest) | slope of C_20 | its stderr | slope of \
             {c_n_minus_20} | its stderr | C_20 not linear |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        );
        let se = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |x| format!("{x:.2e}"));
        for n in &self.networks {
            for w in &n.slope_windows {
                t.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} of {} |\n",
                    n.network,
                    w.from_epoch,
                    w.min_points,
                    cell(&w.c20),
                    se(w.c20_stderr),
                    cell(&w.c_n_minus_20),
                    se(w.c_n_minus_20_stderr),
                    w.c20_not_linear,
                    w.tested
                ));
            }
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
    let objective: String = match sgd.objective {
        Objective::Boundary => "SGD on the boundary loss (2.11)".into(),
        Objective::MeanSquaredError => {
            "SGD on Keras' mean squared error (the mean over outputs and samples, 2/n_out times \
             the boundary loss (2.11))"
                .into()
        }
        Objective::Bulk { mass } => format!("SGD on the bulk loss (3.4) with m = {mass}"),
    };
    match sgd.precision {
        septuple_train::Precision::F32 => format!("{objective} in float32 arithmetic"),
        _ => objective,
    }
}

/// How the initial parameters were drawn, as the summary states it.
fn init_text(init: Init) -> String {
    match init {
        Init::TorchLinear => "PyTorch's default initialisation".into(),
        Init::GlorotUniform => "Keras' glorot_uniform weights and zero biases".into(),
        Init::Normal { std } => format!("weights N(0, {std}^2) and zero biases"),
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
        "network,seed,epoch,boundary_loss,bulk_loss,train_accuracy,test_accuracy,mu2,mu3,variance,skewness,c20,c_n_minus_20,gap,beta_gap,beta_gap_eq_9_4,beta_energy,sum_log_lambda,wall_seconds,n_dynamical,mu2_per_dynamical,mu3_per_dynamical,gap_n_below,gap_two_means,gap_two_means_n_below,gamma_measured,beta_gap_measured,beta_gap_third,laplacian_f_gap,log_density_factor_gap,mean_state_residual,energy_gap,equilibrium_grad_w_norm_gap,equilibrium_grad_b_norm_gap,equilibrium_residual_w_gap,equilibrium_residual_b_gap,log_z_mean_term_gap,log_z_large_n_gap,delta_entropy_gap,second_law_violation_gap,first_law_residual_gap,first_law_bound_gap\n",
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
        t.pop();
        let count = |v: Option<usize>| v.map(|x| x.to_string()).unwrap_or_default();
        t.push_str(&format!(
            ",{},{:e},{:e},{},{},{},{},{},{},{},{},{}\n",
            r.n_dynamical,
            r.mu2_per_dynamical(),
            r.mu3_per_dynamical(),
            count(r.gap_n_below),
            o(r.gap_two_means),
            count(r.gap_two_means_n_below),
            o(r.gamma_measured),
            o(r.beta_gap_measured),
            o(r.beta_gap_third),
            o(r.laplacian_f_gap),
            o(r.log_density_factor_gap),
            o(r.mean_state_residual),
        ));
        t.pop();
        let law = r.laws_gap;
        t.push_str(&format!(
            ",{},{},{},{},{},{},{},{},{},{},{}\n",
            o(r.energy_gap),
            o(r.equilibrium_grad_w_norm_gap),
            o(r.equilibrium_grad_b_norm_gap),
            o(r.equilibrium_residual_w_gap),
            o(r.equilibrium_residual_b_gap),
            o(r.log_z_mean_term_gap),
            o(r.log_z_large_n_gap),
            o(law.map(|l| l.delta_entropy)),
            o(law.and_then(|l| l.second_law_violation)),
            o(law.map(|l| l.first_law.residual)),
            o(law.map(|l| l.first_law.bound)),
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
    let curves = read_loss_curves(&out.join("runs"), records)?;
    write_figures(experiment, records, &curves, &out.join("figures"))?;
    let md = out.join("summary.md");
    septuple_io::write_atomic(&md, report.markdown().as_bytes())?;
    // Every output is in place: what is left of a killed writer's temporary files goes.
    for dir in [out.to_path_buf(), out.join("figures")] {
        septuple_io::remove_stale_temporaries(dir)?;
    }
    Ok(report)
}
