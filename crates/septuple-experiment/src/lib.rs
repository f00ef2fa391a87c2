#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(clippy::float_cmp)]
// Exact float comparisons are intended in tests (values that must be reproduced to the bit).
#![cfg_attr(test, allow(clippy::float_cmp))]
// `!(x > 0.0)` is how a check rejects NaN along with the values it names.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

pub mod analysis;
pub mod config;
mod error;
pub mod figures;
pub mod overrides;
pub mod report;
pub mod runner;
pub mod stats;
pub mod sweep;

pub use analysis::{analyze, c_n_minus_20_label, AnalysisRecord};
pub use config::{paper_networks, Experiment, ExperimentConfig, NetworkSpec};
pub use error::ExperimentError;
pub use figures::{
    all_figures, landscape_plot, read_loss_curves, write_figures, Figure, LossCurves,
};
pub use overrides::{run_and_report, Overrides, Preset};
pub use report::{metrics_csv, runs_of, write_outputs, NetworkReport, Report};
pub use runner::{run, Analyzer, RunOptions};
