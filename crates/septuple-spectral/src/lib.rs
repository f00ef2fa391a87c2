#![doc = include_str!("../README.md")]
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)` that `forbid`
// rejects; no code of this crate is unsafe.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
#![cfg_attr(test, allow(clippy::float_cmp))]
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod analyze;
mod backend;
mod block_restart;
mod equilibrium;
mod error;
mod estimate;
mod matrix_free;
mod method_name;
mod operator;
mod report_table;
mod structure;
mod summary;

pub use analyze::{
    analyze, analyze_states, Analysis, AnalysisOptions, AnalysisReport, Linearisation,
    ThermoOptions,
};
#[cfg(feature = "openblas")]
pub use backend::Lapack;
pub use backend::{Faer, SpectrumBackend};
pub use equilibrium::{
    equilibrium, equilibrium_states, log_z_parts, mean_term, Equilibrium, LogZParts,
};
pub use error::SpectralError;
pub use estimate::{
    BoundedComplexity, EstimatedSummary, MatrixFreeInfo, QuadratureChange, ThermoChange,
};
pub use matrix_free::{
    extreme_singular_values, krylov_bound, stochastic_lanczos_quadrature, unit_subspace,
    ExtremeSpectrum, MatrixFreeOptions, Monitor, Reference, Reorthogonalisation, RitzValue, Sides,
    Slq,
};
pub use method_name::ParseMethodError;
pub use operator::{
    choose_method, eigen_components, g_operator, g_operator_sample_averaged, jacobian, spectrum,
    spectrum_of_jacobian, Cost, Method, MethodChoice, Spectrum, SpectrumOptions,
    MATRIX_FREE_ADVANTAGE,
};
pub use structure::{structural_dynamical_count, StructuralCount};
pub use summary::{
    complexity_n, gap, gap_two_means, histogram, log_spectrum, moments, traces, Complexity, Gap,
    GapRule, SpectrumSummary, SummaryOptions, TopCount, DYNAMICAL_TOLERANCE,
};
