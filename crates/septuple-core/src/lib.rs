#![doc = include_str!("../README.md")]
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)` that `forbid`
// rejects; no code of this crate is unsafe.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
// Exact float comparisons are intended in tests (values that must be reproduced to the bit).
#![cfg_attr(test, allow(clippy::float_cmp))]
// `!(x > 0.0)` is how a check rejects NaN along with the values it names.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod activation;
mod bulk;
pub mod ensemble;
mod error;
pub mod graph;
mod layered;
mod linalg;
mod loss;
mod network;
mod propagate;
mod septuple;
mod sparse;
#[cfg(feature = "proptest")]
pub mod strategies;

pub use activation::{tanh, Activation, Builtin, Slope};
pub use bulk::{BulkSolution, BulkSolver, CurvatureModel, SampleReport, SolveStatus};
pub use ensemble::StateSource;
pub use error::CoreError;
pub use layered::{Init, Layered};
pub use linalg::dot_fixed_order;
pub use loss::{mean_boundary_loss, Boundary, BoundaryLoss, BulkLoss, Loss, Potential};
pub use network::{DenseBudget, Network};
pub use propagate::{FixedPointOptions, FixedState};
pub use septuple::{Feedforward, Parts, Role, Septuple};
pub use sparse::{SparseSeptuple, Triplet};

/// The `ndarray` this crate's API is written in (arrays, views), re-exported so users build
/// inputs with the same version.
pub use ndarray;

/// The `sprs` of [`SparseSeptuple::weights`] and [`Network::weights_sparse`], re-exported so
/// users read and build sparse weights with the same version.
pub use sprs;
