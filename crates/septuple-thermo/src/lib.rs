#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
// Exact float comparisons are intended in tests (values that must be reproduced to the bit).
#![cfg_attr(test, allow(clippy::float_cmp))]
// `!(x > 0.0)` is how a check rejects NaN along with the values it names.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod decomposition;
mod error;
mod gaussian;
mod landscape;
mod landscape_summary;
mod laws;
mod measure;
mod roots;
#[cfg(feature = "proptest")]
pub mod strategies;
mod summary;

pub use decomposition::{
    beta_from_energy_n_greater, beta_from_energy_self_consistent, laplacian_f_from_n_less,
    n_greater, n_less, Decomposition, DecompositionAccuracy, EigenvalueSplit, FirstLaw,
};
pub use error::ThermoError;
pub use gaussian::{DensityFactor, Gaussian};
pub use landscape::{
    beta_from_gap, beta_from_gap_eq_9_4_as_printed, branch_log_lambdas, gap_eq_9_4_as_printed,
    global_minimum_boundary_beta, phase_boundaries_as_printed, stability_exchange_beta, Landscape,
    Phase, StationaryKind, StationaryPoint,
};
pub use landscape_summary::{kind_name, phase_name, LandscapeSummary, SUMMARY_CELLS};
pub use laws::{LawChecker, LawReport, StateRecord, StepRecord, TrajectoryPoint};
pub use measure::{Estimate, Quadrature, QuadratureRule, SpectralMeasure, ThermoEstimate};
pub use summary::{ThermoPoint, ThermoSummary};
