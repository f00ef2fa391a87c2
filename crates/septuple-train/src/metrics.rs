//! Built-in observers: the metrics recorder (CSV and JSON lines) and the progress bar.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use septuple_core::ensemble::{bulk_loss_average, StateSource};
use septuple_core::{mean_boundary_loss, Boundary, BulkSolver, DenseBudget, Potential};
use serde::{Deserialize, Serialize};

use crate::data::{accuracy, Dataset};
use crate::error::TrainError;
use crate::health::RunWarning;
use crate::jsonl::{append_json_line, read_json_lines, write_json_lines};
use crate::model::Trainable;
use crate::observer::{Context, Observer, ObserverError};

/// One row of metrics, taken at an analysis epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRow {
    /// Completed epochs.
    pub epoch: usize,
    /// The learning rate of that epoch.
    pub learning_rate: f64,
    /// U_d: the boundary loss of Eq. (2.11) averaged over the training set.
    pub boundary_loss: f64,
    /// U_0: the bulk loss of Eq. (3.4) at the bulk-solved states of Eq. (3.2), averaged over
    /// the training set (Eq. 4.1); None unless the recorder solves the bulk.
    pub bulk_loss: Option<f64>,
    /// Fraction of training samples whose arg-max output is their label (None without labels).
    pub train_accuracy: Option<f64>,
    /// The boundary loss on the test set.
    pub test_loss: Option<f64>,
    /// Test accuracy.
    pub test_accuracy: Option<f64>,
    /// Warnings about the run at that epoch (a frozen loss, saturated units: see
    /// [`SaturationCheck`](crate::SaturationCheck)); empty for a healthy run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<RunWarning>,
    /// Training wall time so far, excluding the time spent in observers (seconds; the only
    /// column that differs between runs).
    pub wall_seconds: f64,
}

/// Evaluate the metrics of `model` at a context (the recorder's computation, for reuse).
pub fn evaluate<M: Trainable>(
    ctx: &Context<'_, M>,
    bulk: Option<(&BulkSolver, f64)>,
) -> Result<MetricsRow, TrainError> {
    let (boundary_loss, train_accuracy) = boundary_metrics(ctx.model, ctx.train)?;
    let (test_loss, test_accuracy) = match ctx.test {
        Some(t) => {
            let (l, a) = boundary_metrics(ctx.model, t)?;
            (Some(l), a)
        }
        None => (None, None),
    };
    let bulk_loss = match bulk {
        Some((solver, mass)) => {
            let net = ctx.model.to_dense(DenseBudget::default())?;
            let boundary = Boundary::new(ctx.train.inputs(), ctx.train.targets());
            Some(bulk_loss_average(
                &net,
                &Potential::mass(mass),
                &boundary,
                StateSource::BulkSolved(*solver),
            )?)
        }
        None => None,
    };
    Ok(MetricsRow {
        epoch: ctx.epoch,
        learning_rate: ctx.sgd.learning_rate(ctx.epoch.max(1)),
        boundary_loss,
        bulk_loss,
        train_accuracy,
        test_loss,
        test_accuracy,
        warnings: ctx.warnings.to_vec(),
        wall_seconds: ctx.elapsed.as_secs_f64(),
    })
}

/// The mean boundary loss U_d (Eq. 2.11, inputs clamped: [`mean_boundary_loss`]) of a dataset
/// at the model's outputs, and the accuracy (if labelled).
pub fn boundary_metrics<M: Trainable>(
    model: &M,
    data: &Dataset,
) -> Result<(f64, Option<f64>), TrainError> {
    let out = model.predict(data.inputs())?;
    let loss = mean_boundary_loss(out.view(), data.targets())?;
    Ok((loss, data.labels().map(|l| accuracy(out.view(), l))))
}

/// Records a [`MetricsRow`] at every analysis epoch, in memory and (optionally) appended to a
/// CSV file and a JSON-lines file. On resume it keeps the rows up to the checkpoint's epoch
/// (from its JSON-lines file) and drops later ones, so the files match an uninterrupted run.
pub struct MetricsRecorder {
    csv: Option<PathBuf>,
    jsonl: Option<PathBuf>,
    bulk: Option<(BulkSolver, f64)>,
    rows: Vec<MetricsRow>,
}

const CSV_HEADER: &str = "epoch,learning_rate,boundary_loss,bulk_loss,train_accuracy,test_loss,test_accuracy,warnings,wall_seconds";

impl MetricsRecorder {
    /// Rows in memory only.
    pub fn in_memory() -> Self {
        MetricsRecorder {
            csv: None,
            jsonl: None,
            bulk: None,
            rows: Vec::new(),
        }
    }

    /// Rows in memory and in `<dir>/<stem>.csv` and `<dir>/<stem>.jsonl`.
    pub fn to_files(dir: impl AsRef<Path>, stem: &str) -> Self {
        let dir = dir.as_ref();
        MetricsRecorder {
            csv: Some(dir.join(format!("{stem}.csv"))),
            jsonl: Some(dir.join(format!("{stem}.jsonl"))),
            bulk: None,
            rows: Vec::new(),
        }
    }

    /// Also record the bulk loss U_0 (Eq. 4.1) with local-objective mass `mass`, solving the
    /// bulk states of the whole training set with `solver` at each analysis epoch.
    pub fn with_bulk_loss(mut self, solver: BulkSolver, mass: f64) -> Self {
        self.bulk = Some((solver, mass));
        self
    }

    /// The rows so far.
    pub fn rows(&self) -> &[MetricsRow] {
        &self.rows
    }

    fn rewrite(&self) -> Result<(), TrainError> {
        if let Some(p) = &self.csv {
            let mut text = String::from(CSV_HEADER);
            text.push('\n');
            for r in &self.rows {
                text.push_str(&csv_line(r));
                text.push('\n');
            }
            septuple_io::write_atomic(p, text.as_bytes())?;
        }
        if let Some(p) = &self.jsonl {
            write_json_lines(p, &self.rows)?;
        }
        Ok(())
    }

    fn append(&self, row: &MetricsRow) -> Result<(), TrainError> {
        let add = |p: &PathBuf, line: String| -> Result<(), TrainError> {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .map_err(|e| TrainError::file(p, e))?;
            writeln!(f, "{line}").map_err(|e| TrainError::file(p, e))?;
            f.sync_data().map_err(|e| TrainError::file(p, e))
        };
        if let Some(p) = &self.csv {
            add(p, csv_line(row))?;
        }
        if let Some(p) = &self.jsonl {
            append_json_line(p, row)?;
        }
        Ok(())
    }
}

fn csv_line(r: &MetricsRow) -> String {
    let opt = |v: Option<f64>| v.map(|x| format!("{x:e}")).unwrap_or_default();
    let warnings: Vec<&str> = r
        .warnings
        .iter()
        .map(|w| match w {
            RunWarning::FrozenLoss { .. } => "frozen_loss",
            RunWarning::Saturated { .. } => "saturated",
        })
        .collect();
    format!(
        "{},{:e},{:e},{},{},{},{},{},{:.3}",
        r.epoch,
        r.learning_rate,
        r.boundary_loss,
        opt(r.bulk_loss),
        opt(r.train_accuracy),
        opt(r.test_loss),
        opt(r.test_accuracy),
        warnings.join(";"),
        r.wall_seconds
    )
}

impl<M: Trainable> Observer<M> for MetricsRecorder {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        if let (Some(p), true) = (&self.jsonl, ctx.start_epoch > 0) {
            if self.rows.is_empty() && p.exists() {
                self.rows = read_json_lines(p)?;
            }
        }
        self.rows.retain(|r| r.epoch <= ctx.start_epoch);
        if let Some(dir) = self.csv.as_ref().and_then(|p| p.parent()) {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| TrainError::file(dir, e))?;
            }
        }
        Ok(self.rewrite()?)
    }

    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        let row = evaluate(ctx, self.bulk.as_ref().map(|(s, m)| (s, *m)))?;
        self.append(&row)?;
        self.rows.push(row);
        Ok(())
    }
}

/// A progress bar over the epochs (on standard error; hidden when it is not a terminal),
/// showing the last epoch's mean batch loss. A new [`RunWarning`] (a frozen loss, saturated
/// units) is printed on standard error when it first appears, terminal or not, unless the
/// bar is [`hidden`](Progress::hidden). The only library code that prints.
pub struct Progress {
    bar: ProgressBar,
    label: String,
    warned: Vec<std::mem::Discriminant<RunWarning>>,
}

impl Progress {
    /// A progress bar labelled `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            label: label.into(),
            warned: Vec::new(),
        }
    }

    /// A bar that draws nothing (for tests and quiet runs).
    pub fn hidden() -> Self {
        Self::new("")
    }
}

impl<M> Observer<M> for Progress {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        if !self.label.is_empty() {
            self.bar = ProgressBar::with_draw_target(
                Some(ctx.sgd.epochs() as u64),
                ProgressDrawTarget::stderr(),
            );
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} epochs {elapsed_precise} (eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            self.bar.set_style(style);
            self.bar.set_prefix(self.label.clone());
        }
        self.bar.set_position(ctx.epoch as u64);
        Ok(())
    }

    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.bar.set_position(ctx.epoch as u64);
        if let Some(l) = ctx.epoch_loss {
            self.bar.set_message(format!("loss {l:.4e}"));
        }
        for w in ctx.warnings {
            let kind = std::mem::discriminant(w);
            if !self.warned.contains(&kind) && !self.label.is_empty() {
                self.warned.push(kind);
                let line = format!("{}: warning after epoch {}: {w}", self.label, ctx.epoch);
                self.bar.suspend(|| eprintln!("{line}"));
            }
        }
        Ok(())
    }

    fn on_finish(&mut self, _ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.bar.finish();
        Ok(())
    }
}
