#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
#![cfg_attr(test, allow(clippy::float_cmp))]
#![allow(clippy::neg_cmp_op_on_partial_ord)]

mod analyze;
mod backend;
mod error;
mod operator;
mod summary;

pub use analyze::{analyze, Analysis, AnalyzeOptions, Linearisation};
#[cfg(feature = "openblas")]
pub use backend::Lapack;
pub use backend::{Faer, SpectrumBackend};
pub use error::SpectralError;
pub use operator::{
    eigen_components, g_operator, g_operator_sample_averaged, jacobian, spectrum,
    spectrum_of_jacobian, Method, Spectrum,
};
pub use summary::{
    complexity_above, complexity_n, gap, histogram, log_spectrum, moments, traces, Gap,
    SpectrumSummary, DYNAMICAL_TOLERANCE,
};
