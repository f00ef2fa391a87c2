//! The paper's Figs. 1-7 from the records of an experiment, one function per figure, and the
//! SVG plots they are drawn with ([`plot`]).
//!
//! Figures 2, 3, 6 and 7 show one run of each network (its smallest seed); the histograms of
//! Figs. 4-5 show that run at the configured histogram epochs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use septuple_spectral::{histogram, DYNAMICAL_TOLERANCE};
use septuple_thermo::{Landscape, StationaryKind};

use crate::analysis::{c_n_minus_20_label, AnalysisRecord};
use crate::config::Experiment;
use crate::error::ExperimentError;
use crate::report::{fraction_text, late_records, runs_of};
use crate::runner::run_stem;
use crate::stats::linear_fit;
use crate::sweep::read_loss_curve;

pub mod plot;

pub use plot::{Curve, FigureError, HistogramPlot, LinePlot};

/// One run of each network: the network's name and its records sorted by epoch.
pub type ShownRuns<'a> = [(&'a str, &'a [AnalysisRecord])];

fn lg(v: f64) -> f64 {
    v.log10()
}

fn line_plot(title: String, x_label: &str, y_label: &str) -> LinePlot {
    LinePlot {
        title,
        x_label: x_label.into(),
        y_label: y_label.into(),
        curves: Vec::new(),
        markers: Vec::new(),
    }
}

/// The betas of Fig. 1.
pub const FIG1_BETAS: [f64; 4] = [0.25, 0.5, 0.73, 1.0];

/// The range of log lambda Fig. 1 shows, [-8, 4].
pub const FIG1_RANGE: (f64, f64) = (-8.0, 4.0);

/// Fig. 1: the landscape -DeltaF(log lambda) of Eq. (9.3) at beta = 0.25, 0.5, 0.73 and 1,
/// with its stationary points marked, for the configured gamma and the N of the networks (of
/// the first network if their N differ; the title says so).
pub fn fig1(experiment: &Experiment) -> Result<LinePlot, ExperimentError> {
    let c = experiment.config();
    let (gamma, n) = (c.gamma, experiment.n_neurons());
    let whose = if experiment.same_n() {
        String::new()
    } else {
        format!(
            " (the {} network's; the networks differ in N)",
            c.networks[0].name
        )
    };
    let mut fig = landscape_plot(&FIG1_BETAS, gamma, n, FIG1_RANGE)?;
    fig.title = format!(
        "Fig. 1: -ΔF(log λ) of Eq. (9.3), γ = {}, N = {n}{whose}",
        fraction_text(gamma)
    );
    Ok(fig)
}

/// The landscape -DeltaF(log lambda) of Eq. (9.3) for each of `betas` at `gamma` and `n`
/// neurons, on `range` = (from, to) of log lambda (400 steps), with the stationary points of
/// [`Landscape::summary`] marked as `max`, `min` or `infl`; Fig. 1 is this plot at the
/// paper's betas and range.
///
/// Errors: a beta, gamma or N outside its domain, or a non-finite or empty range.
pub fn landscape_plot(
    betas: &[f64],
    gamma: f64,
    n: usize,
    range: (f64, f64),
) -> Result<LinePlot, ExperimentError> {
    let (from, to) = range;
    let mut fig = line_plot(
        format!(
            "-ΔF(log λ) of Eq. (9.3), γ = {}, N = {n}",
            fraction_text(gamma)
        ),
        "log λ",
        "-ΔF",
    );
    const STEPS: usize = 400;
    let step = (to - from) / STEPS as f64;
    for &beta in betas {
        let l = Landscape::new(beta, gamma, n)?;
        let pts = (0..=STEPS)
            .map(|k| {
                let u = from + k as f64 * step;
                (u, l.value(u))
            })
            .collect();
        fig.curves.push(Curve::line(format!("β = {beta}"), pts));
        for p in l.summary(from, to)?.stationary_points {
            let kind = match p.kind {
                StationaryKind::Maximum => "max",
                StationaryKind::Minimum => "min",
                StationaryKind::Inflection => "infl",
            };
            fig.markers.push((p.log_lambda, p.value, kind.into()));
        }
    }
    Ok(fig)
}

/// The boundary loss U_d (Eq. 2.11) of every epoch of runs, by (network, seed): entry e - 1 is
/// the mean batch loss of epoch e (the `<run>.losses.csv` of [`LossCurve`](crate::sweep::LossCurve)).
pub type LossCurves = BTreeMap<(String, u64), Vec<f64>>;

/// The loss curves of the runs of `records` that have one in `runs_dir`
/// (`<network>-seed<k>.losses.csv`), each cut at the run's last analyzed epoch; runs without a
/// curve file are left out.
///
/// Errors: a curve file that exists but cannot be read or parsed.
pub fn read_loss_curves(
    runs_dir: &Path,
    records: &[AnalysisRecord],
) -> Result<LossCurves, ExperimentError> {
    let mut curves = LossCurves::new();
    for ((net, seed), run) in runs_of(records) {
        let path = runs_dir.join(format!("{}.losses.csv", run_stem(&net, seed)));
        if path.exists() {
            let last = run.last().map_or(0, |r| r.epoch);
            curves.insert((net, seed), read_loss_curve(&path, Some(last))?);
        }
    }
    Ok(curves)
}

/// At most `limit` points (epoch, loss) of a per-epoch curve, at epochs spaced evenly in log
/// epoch (every epoch while there are fewer than `limit`), the last epoch always included.
fn log_thinned(losses: &[f64], limit: usize) -> Vec<(f64, f64)> {
    let n = losses.len();
    if n == 0 || limit == 0 {
        return Vec::new();
    }
    let mut epochs: Vec<usize> = if n <= limit {
        (1..=n).collect()
    } else {
        let top = (n as f64).ln();
        (0..limit)
            .map(|k| ((top * k as f64 / (limit - 1) as f64).exp().round() as usize).clamp(1, n))
            .collect()
    };
    epochs.dedup();
    epochs
        .into_iter()
        .map(|e| (e as f64, losses[e - 1]))
        .collect()
}

/// The most points a per-epoch curve of Fig. 2 is drawn with.
const CURVE_POINTS: usize = 1000;

/// Fig. 2: the bulk loss U (U_0 of Eq. 4.1) and the boundary loss U_d (Eq. 2.11) against the
/// epoch, both axes in log10: U and U_d at the analyzed epochs and, where `curves` hold the
/// run, U_d at every epoch (the mean batch loss of the epoch, drawn at up to 1,000
/// log-spaced epochs).
pub fn fig2(runs: &ShownRuns<'_>, curves: &LossCurves) -> LinePlot {
    let mut fig = line_plot(
        "Fig. 2: bulk loss U and boundary loss U_d".into(),
        "log10 epoch",
        "log10 loss",
    );
    for &(n, run) in runs {
        fig.curves.push(Curve::line(
            format!("{n}: U"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), lg(r.bulk_loss)))
                .collect(),
        ));
        fig.curves.push(Curve::line(
            format!("{n}: U_d"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), lg(r.boundary_loss)))
                .collect(),
        ));
        if let Some(curve) = run
            .first()
            .and_then(|r| curves.get(&(n.to_string(), r.seed)))
        {
            fig.curves.push(Curve::line(
                format!("{n}: U_d every epoch"),
                log_thinned(curve, CURVE_POINTS)
                    .into_iter()
                    .filter(|p| p.1 > 0.0)
                    .map(|(e, l)| (lg(e), lg(l)))
                    .collect(),
            ));
        }
    }
    fig
}

/// Fig. 3: log U (Eq. 4.1) against log U_d (Eq. 2.11).
pub fn fig3(runs: &ShownRuns<'_>) -> LinePlot {
    let mut fig = line_plot(
        "Fig. 3: bulk loss against boundary loss".into(),
        "log U_d",
        "log U",
    );
    for &(n, run) in runs {
        fig.curves.push(Curve::line(
            n,
            run.iter()
                .map(|r| (r.boundary_loss.ln(), r.bulk_loss.ln()))
                .collect(),
        ));
    }
    fig
}

/// A histogram of the dynamical log lambda of one run at the `epochs` that are analysis epochs
/// of it (its last one if none is), with the gaps marked.
fn spectrum_histogram(
    title: String,
    run: &[AnalysisRecord],
    epochs: &[usize],
) -> Result<HistogramPlot, ExperimentError> {
    let chosen: Vec<&AnalysisRecord> = epochs
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
        .flat_map(|r| r.dynamical_log_lambda(DYNAMICAL_TOLERANCE))
        .fold(f64::INFINITY, f64::min)
        .min(-1.0)
        .floor();
    let hi = chosen
        .iter()
        .flat_map(|r| r.dynamical_log_lambda(DYNAMICAL_TOLERANCE))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0)
        .ceil();
    let bins = 60;
    let edges: Vec<f64> = (0..=bins)
        .map(|k| lo + (hi - lo) * k as f64 / bins as f64)
        .collect();
    let mut groups = Vec::with_capacity(chosen.len());
    for r in &chosen {
        let counts = histogram(&r.dynamical_log_lambda(DYNAMICAL_TOLERANCE), &edges)?;
        groups.push((
            format!("epoch {}", r.epoch),
            counts.into_iter().map(|k| k as f64).collect(),
        ));
    }
    Ok(HistogramPlot {
        title,
        x_label: "log λ".into(),
        edges,
        groups,
        marks: chosen
            .iter()
            .filter_map(|r| r.gap.map(|g| (g, format!("gap, epoch {}", r.epoch))))
            .collect(),
    })
}

/// The run of network `name` among `runs`.
fn run_named<'a>(runs: &ShownRuns<'a>, name: &str) -> Option<&'a [AnalysisRecord]> {
    runs.iter().find(|(n, _)| *n == name).map(|&(_, r)| r)
}

/// Fig. 4: histograms of the dynamical log lambda of G (Eq. 5.6) of the shallow network at the
/// configured epochs; None without a shallow run.
pub fn fig4(
    experiment: &Experiment,
    runs: &ShownRuns<'_>,
) -> Result<Option<HistogramPlot>, ExperimentError> {
    run_named(runs, "shallow")
        .map(|run| {
            spectrum_histogram(
                "Fig. 4: dynamical log λ of the shallow network".into(),
                run,
                &experiment.config().histogram_epochs,
            )
        })
        .transpose()
}

/// Fig. 5: the same as Fig. 4 for the deep network, with the gaps marked; None without a deep
/// run.
pub fn fig5(
    experiment: &Experiment,
    runs: &ShownRuns<'_>,
) -> Result<Option<HistogramPlot>, ExperimentError> {
    run_named(runs, "deep")
        .map(|run| {
            spectrum_histogram(
                "Fig. 5: dynamical log λ of the deep network".into(),
                run,
                &experiment.config().histogram_epochs,
            )
        })
        .transpose()
}

/// The name of C_(N-20) for the N of a run.
fn c_label(run: &[AnalysisRecord]) -> String {
    run.first()
        .map_or("C_(N-20)".into(), |r| c_n_minus_20_label(r.n_neurons))
}

/// Fig. 6: the complexities C_20 and C_(N-20) of Eq. (10.5) against log10 epoch.
pub fn fig6(runs: &ShownRuns<'_>) -> LinePlot {
    let labels: Vec<String> = runs.iter().map(|(_, run)| c_label(run)).collect();
    let all_but_20 = match labels.first() {
        Some(first) if labels.iter().all(|l| l == first) => first.clone(),
        _ => "C_(N-20)".into(),
    };
    let mut fig = line_plot(
        format!("Fig. 6: complexities C_20 and {all_but_20} (10.5)"),
        "log10 epoch",
        "C",
    );
    for (&(n, run), label) in runs.iter().zip(&labels) {
        fig.curves.push(Curve::line(
            format!("{n}: C_20"),
            run.iter().map(|r| (lg(r.epoch as f64), r.c20)).collect(),
        ));
        fig.curves.push(Curve::line(
            format!("{n}: {label}"),
            run.iter()
                .map(|r| (lg(r.epoch as f64), r.c_n_minus_20))
                .collect(),
        ));
    }
    fig
}

/// Fig. 7: C_20 and C_(N-20) of Eq. (10.5) against log U (Eq. 4.1) for the network `name`,
/// over the analysis epochs from 10 on, with their least-squares lines.
pub fn fig7(name: &str, run: &[AnalysisRecord]) -> LinePlot {
    let mut fig = line_plot(
        format!("Fig. 7: complexities of the {name} network against log U"),
        "log U",
        "C",
    );
    let late = late_records(run);
    let x: Vec<f64> = late.iter().map(|r| r.bulk_loss.ln()).collect();
    for (label, ys) in [
        (
            "C_20".to_string(),
            late.iter().map(|r| r.c20).collect::<Vec<_>>(),
        ),
        (c_label(run), late.iter().map(|r| r.c_n_minus_20).collect()),
    ] {
        fig.curves.push(Curve::dots(
            label.as_str(),
            x.iter().copied().zip(ys.iter().copied()).collect(),
        ));
        if let Ok(f) = linear_fit(&x, &ys) {
            let (lo, hi) = x
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            fig.curves.push(Curve::line(
                format!("{label} fit, slope {:.3}", f.slope),
                vec![
                    (lo, f.intercept + f.slope * lo),
                    (hi, f.intercept + f.slope * hi),
                ],
            ));
        }
    }
    fig
}

/// The file of Fig. 7 for network `name`: the paper's Fig. 7 is the deep network, the others
/// get a suffix.
fn fig7_file(name: &str) -> String {
    if name == "deep" {
        "fig7_complexity_vs_loss.svg".to_string()
    } else {
        format!("fig7_complexity_vs_loss_{name}.svg")
    }
}

/// A figure of either kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// Curves and markers.
    Line(LinePlot),
    /// Overlaid histograms.
    Histogram(HistogramPlot),
}

impl Figure {
    /// Write the figure as an SVG file.
    pub fn write_svg(&self, path: &Path) -> Result<(), FigureError> {
        match self {
            Figure::Line(p) => p.write_svg(path),
            Figure::Histogram(p) => p.write_svg(path),
        }
    }
}

/// Figs. 1-7 with their file names (`fig1_landscape.svg`, ...), in order. Figures 2, 3, 6 and
/// 7 show the smallest seed of each network; the histograms (Figs. 4-5) that seed at the
/// configured epochs that are analysis epochs of the run.
pub fn all_figures(
    experiment: &Experiment,
    records: &[AnalysisRecord],
    curves: &LossCurves,
) -> Result<Vec<(String, Figure)>, ExperimentError> {
    let config = experiment.config();
    let all = runs_of(records);
    let shown: Vec<(&str, &[AnalysisRecord])> = config
        .networks
        .iter()
        .filter_map(|spec| {
            all.iter()
                .find(|((n, _), _)| n == &spec.name)
                .map(|(_, v)| (spec.name.as_str(), v.as_slice()))
        })
        .collect();
    let mut figs = vec![
        (
            "fig1_landscape.svg".to_string(),
            Figure::Line(fig1(experiment)?),
        ),
        ("fig2_losses.svg".into(), Figure::Line(fig2(&shown, curves))),
        (
            "fig3_bulk_vs_boundary.svg".into(),
            Figure::Line(fig3(&shown)),
        ),
    ];
    if let Some(f) = fig4(experiment, &shown)? {
        figs.push(("fig4_shallow_spectrum.svg".into(), Figure::Histogram(f)));
    }
    if let Some(f) = fig5(experiment, &shown)? {
        figs.push(("fig5_deep_spectrum.svg".into(), Figure::Histogram(f)));
    }
    figs.push(("fig6_complexity.svg".into(), Figure::Line(fig6(&shown))));
    for &(name, run) in &shown {
        figs.push((fig7_file(name), Figure::Line(fig7(name, run))));
    }
    Ok(figs)
}

/// Write the [`all_figures`] as SVG files into `dir` and return their paths.
pub fn write_figures(
    experiment: &Experiment,
    records: &[AnalysisRecord],
    curves: &LossCurves,
    dir: &Path,
) -> Result<Vec<PathBuf>, ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|e| ExperimentError::file(dir, e))?;
    let mut written = Vec::new();
    for (name, figure) in all_figures(experiment, records, curves)? {
        let p = dir.join(name);
        figure.write_svg(&p)?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ExperimentConfig, NetworkSpec};

    #[test]
    fn per_epoch_curves_are_thinned_evenly_in_log_epoch() {
        let losses: Vec<f64> = (1..=30_000).map(|e| 1.0 / e as f64).collect();
        let pts = log_thinned(&losses, 1000);
        // 1,000 log-spaced targets; those among the first epochs round to the same epoch and
        // merge (653 distinct of 30,000).
        assert!(pts.len() <= 1000 && pts.len() > 600, "{}", pts.len());
        assert_eq!(pts[0], (1.0, 1.0));
        assert_eq!(pts.last().unwrap().0, 30_000.0);
        // Strictly increasing epochs, each with its own loss.
        for w in pts.windows(2) {
            assert!(w[1].0 > w[0].0);
        }
        assert!(pts.iter().all(|&(e, l)| l == 1.0 / e));
        // Short curves keep every epoch; an empty one gives nothing.
        assert_eq!(log_thinned(&losses[..10], 1000).len(), 10);
        assert!(log_thinned(&[], 1000).is_empty());
    }

    fn spec(name: &str, sizes: &[usize]) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            sizes: sizes.to_vec(),
        }
    }

    #[test]
    fn fig1_takes_n_and_gamma_from_the_configuration() {
        let experiment = ExperimentConfig {
            networks: vec![spec("a", &[784, 30, 10]), spec("b", &[784, 20, 10, 10])],
            gamma: 0.25,
            ..ExperimentConfig::quick()
        }
        .check()
        .unwrap();
        let fig = fig1(&experiment).unwrap();
        assert_eq!(
            fig.title,
            "Fig. 1: -ΔF(log λ) of Eq. (9.3), γ = 1/4, N = 824"
        );
        // The same curves and stationary points as the landscape at N = 824, gamma = 1/4.
        let mut expected = Vec::new();
        for (k, beta) in [0.25, 0.5, 0.73, 1.0].into_iter().enumerate() {
            let l = Landscape::new(beta, 0.25, 824).unwrap();
            let curve = &fig.curves[k];
            assert!(curve.points.iter().all(|&(u, v)| v == l.value(u)));
            expected.extend(
                l.stationary_points(-8.0, 4.0, 2000)
                    .unwrap()
                    .into_iter()
                    .map(|p| (p.log_lambda, p.value)),
            );
        }
        let marked: Vec<(f64, f64)> = fig.markers.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(marked, expected);
        // Another N gives another landscape: the curves are not those of the paper's N = 854.
        let l854 = Landscape::new(0.25, 0.25, 854).unwrap();
        assert!(fig.curves[0]
            .points
            .iter()
            .any(|&(u, v)| v != l854.value(u)));
    }

    #[test]
    fn fig1_says_whose_n_it_shows_when_the_networks_differ() {
        let experiment = ExperimentConfig {
            networks: vec![
                spec("wide", &[784, 100, 10]),
                spec("deep", &[784, 40, 20, 10]),
            ],
            ..ExperimentConfig::quick()
        }
        .check()
        .unwrap();
        let fig = fig1(&experiment).unwrap();
        assert_eq!(
            fig.title,
            "Fig. 1: -ΔF(log λ) of Eq. (9.3), γ = 1/3, N = 894 (the wide network's; the networks \
             differ in N)"
        );
    }

    #[test]
    fn complexity_labels_follow_n() {
        assert_eq!(c_n_minus_20_label(854), "C_834");
        assert_eq!(c_n_minus_20_label(100), "C_80");
        assert_eq!(fraction_text(1.0 / 3.0), "1/3");
        assert_eq!(fraction_text(0.3), "3/10");
        assert_eq!(fraction_text(0.123), "0.123");
    }
}
