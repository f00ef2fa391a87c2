#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// The only unsafe code calls the fast path's kernels compiled for AVX2 or AVX-512 once the CPU
// has reported the feature (layered.rs, `with_isa!`); everything else is safe.
#![deny(unsafe_code)]
#![deny(clippy::float_cmp)]
#![cfg_attr(test, allow(clippy::float_cmp))]
// `!(x > 0.0)` is how a check rejects NaN along with the values it names.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod checkpoint;
mod config;
mod dag;
mod data;
mod error;
mod health;
pub mod jsonl;
mod layered;
mod metrics;
mod model;
mod observer;
mod real;
mod trainer;

pub use checkpoint::{fingerprint, Checkpoint, Checkpointer, RateSegment};
pub use config::{Batch, Objective, Precision, Schedule, Sgd, SgdConfig};
pub use dag::{Dag, Edges};
pub use data::{accuracy, Dataset};
pub use error::{CheckpointError, ConnectionRule, DataError, NetworkError, SgdField, TrainError};
pub use health::{saturated_fraction, RunWarning, SaturationCheck};
pub use layered::{Kernels, LayerGradients, LayeredWorkspace, SPARSE_INPUT_THRESHOLD};
pub use metrics::{boundary_metrics, evaluate, MetricsRecorder, MetricsRow, Progress};
pub use model::{layered_bulk_gradients, Trainable};
pub use observer::{AnalysisSchedule, Context, Observer, ObserverError, Observers};
pub use trainer::{ResumePolicy, RunSummary, Trainer};
