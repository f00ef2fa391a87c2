#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
#![cfg_attr(test, allow(clippy::float_cmp))]
// `!(x > 0.0)` is how a check rejects NaN along with the values it names.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod checkpoint;
mod config;
mod dag;
mod data;
mod error;
pub mod jsonl;
mod layered;
mod metrics;
mod model;
mod observer;
mod trainer;

pub use checkpoint::{fingerprint, Checkpoint, Checkpointer};
pub use config::{Batch, Objective, Schedule, Sgd, SgdConfig};
pub use dag::{Dag, Edges};
pub use data::{accuracy, Dataset};
pub use error::TrainError;
pub use layered::{LayerGradients, LayeredWorkspace, SPARSE_INPUT_THRESHOLD};
pub use metrics::{boundary_metrics, evaluate, MetricsRecorder, MetricsRow, Progress};
pub use model::{layered_bulk_gradients, Trainable};
pub use observer::{AnalysisSchedule, Context, Observer, Observers};
pub use trainer::{RunSummary, Trainer};
