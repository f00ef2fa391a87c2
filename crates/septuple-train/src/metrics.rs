//! Built-in observers: the metrics recorder (CSV and JSON lines) and the progress bar.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use septuple_core::{Boundary, BulkLoss, BulkSolver, Loss, Potential};
use serde::{Deserialize, Serialize};

use crate::data::{accuracy, Dataset};
use crate::error::TrainError;
use crate::jsonl::{append_json_line, read_json_lines, write_json_lines};
use crate::model::Trainable;
use crate::observer::{Context, Observer};

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
    /// Training wall time so far (seconds; the only column that differs between runs).
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
            let net = ctx.model.to_septuple()?;
            let boundary = Boundary::new(ctx.train.inputs(), ctx.train.targets());
            let potential = Potential::mass(mass);
            let sol = solver.solve(&net, &potential, &boundary)?;
            Some(BulkLoss::with_potential(potential).mean(&net, sol.states.view(), &boundary)?)
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
        wall_seconds: ctx.elapsed.as_secs_f64(),
    })
}

/// The mean boundary loss (Eq. 2.11) of a dataset and the accuracy (if labelled).
pub fn boundary_metrics<M: Trainable>(
    model: &M,
    data: &Dataset,
) -> Result<(f64, Option<f64>), TrainError> {
    let out = model.outputs(data.inputs())?;
    let d = &out - &data.targets();
    let loss = 0.5 * d.iter().map(|v| v * v).sum::<f64>() / data.len() as f64;
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

const CSV_HEADER: &str = "epoch,learning_rate,boundary_loss,bulk_loss,train_accuracy,test_loss,test_accuracy,wall_seconds";

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
    format!(
        "{},{:e},{:e},{},{},{},{},{:.3}",
        r.epoch,
        r.learning_rate,
        r.boundary_loss,
        opt(r.bulk_loss),
        opt(r.train_accuracy),
        opt(r.test_loss),
        opt(r.test_accuracy),
        r.wall_seconds
    )
}

impl<M: Trainable> Observer<M> for MetricsRecorder {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
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
        self.rewrite()
    }

    fn on_analysis(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
        let row = evaluate(ctx, self.bulk.as_ref().map(|(s, m)| (s, *m)))?;
        self.append(&row)?;
        self.rows.push(row);
        Ok(())
    }
}

/// A progress bar over the epochs (on standard error; hidden when it is not a terminal),
/// showing the last epoch's mean batch loss.
pub struct Progress {
    bar: ProgressBar,
    label: String,
}

impl Progress {
    /// A progress bar labelled `label`.
    pub fn new(label: impl Into<String>) -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            label: label.into(),
        }
    }

    /// A bar that draws nothing (for tests and quiet runs).
    pub fn hidden() -> Self {
        Self::new("")
    }
}

impl<M> Observer<M> for Progress {
    fn on_start(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
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

    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), TrainError> {
        self.bar.set_position(ctx.epoch as u64);
        if let Some(l) = ctx.epoch_loss {
            self.bar.set_message(format!("loss {l:.4e}"));
        }
        Ok(())
    }

    fn on_finish(&mut self, _ctx: &Context<'_, M>) -> Result<(), TrainError> {
        self.bar.finish();
        Ok(())
    }
}
