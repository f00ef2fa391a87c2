//! The error vocabulary of `septuple-thermo`.

use septuple_core::CoreError;
use thiserror::Error;

/// Everything that can go wrong when thermodynamic quantities are computed from a spectrum.
///
/// Every variant carries the values that were wrong and its message says what was expected.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ThermoError {
    /// An error of `septuple-core`.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A spectrum (or another list) is empty where at least one entry is needed.
    #[error("{what} is empty; at least one entry is needed")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// A value is NaN or infinite where a finite number is required.
    #[error(
        "{what} holds a non-finite value {value} at index {index}; every entry must be finite"
    )]
    NonFinite {
        /// What was passed.
        what: &'static str,
        /// Where the value sits.
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// An eigenvalue of G is not positive (G = J^T J with det J = 1 has positive eigenvalues).
    #[error(
        "eigenvalue lambda[{index}] = {value} is not positive; the spectrum of G must be positive"
    )]
    NonPositiveEigenvalue {
        /// Where the eigenvalue sits.
        index: usize,
        /// The eigenvalue.
        value: f64,
    },
    /// Two lists that must have the same length do not.
    #[error("{what} has {got} entries, expected {expected} (one per eigenvalue)")]
    LengthMismatch {
        /// What was passed.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The expected length.
        expected: usize,
    },
    /// A scalar parameter is outside its domain.
    #[error("parameter {name} = {value} is invalid: expected {expected}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
    /// The Gaussian integral of Eq. (5.9) diverges: 1 - beta m + beta lambda_i <= 0.
    #[error("1 - beta m + beta lambda[{index}] = {value} <= 0 (beta = {beta}, m = {mass}, lambda = {lambda}): the Gaussian integral (5.9) diverges; expected beta < 1 / (m - lambda_min)")]
    OutsideDomain {
        /// The eigenvalue that fails.
        index: usize,
        /// Its value.
        lambda: f64,
        /// The inverse temperature.
        beta: f64,
        /// The mass of the local objective.
        mass: f64,
        /// The value of 1 - beta m + beta lambda.
        value: f64,
    },
    /// A value to be inverted lies outside the range the function takes.
    #[error("{what} = {value} is outside the attainable range ({lo}, {hi})")]
    OutOfRange {
        /// What was inverted.
        what: &'static str,
        /// The value asked for.
        value: f64,
        /// Lower end of the range (exclusive).
        lo: f64,
        /// Upper end of the range (exclusive).
        hi: f64,
    },
}

/// Check that `x` is finite.
pub(crate) fn finite(name: &'static str, x: f64) -> Result<f64, ThermoError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(ThermoError::Parameter {
            name,
            value: x,
            expected: "a finite number",
        })
    }
}

/// Check that `x` is finite and positive.
pub(crate) fn positive(name: &'static str, x: f64) -> Result<f64, ThermoError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(ThermoError::Parameter {
            name,
            value: x,
            expected: "a finite number > 0",
        })
    }
}

/// Check that a spectrum is non-empty, finite and positive.
pub(crate) fn check_spectrum(lambda: &[f64]) -> Result<(), ThermoError> {
    if lambda.is_empty() {
        return Err(ThermoError::Empty { what: "spectrum" });
    }
    for (index, &value) in lambda.iter().enumerate() {
        if !value.is_finite() {
            return Err(ThermoError::NonFinite {
                what: "spectrum",
                index,
                value,
            });
        }
        if !(value > 0.0) {
            return Err(ThermoError::NonPositiveEigenvalue { index, value });
        }
    }
    Ok(())
}

/// Check that a list has `n` finite entries.
pub(crate) fn check_finite_list(
    what: &'static str,
    xs: &[f64],
    n: usize,
) -> Result<(), ThermoError> {
    if xs.len() != n {
        return Err(ThermoError::LengthMismatch {
            what,
            got: xs.len(),
            expected: n,
        });
    }
    for (index, &value) in xs.iter().enumerate() {
        if !value.is_finite() {
            return Err(ThermoError::NonFinite { what, index, value });
        }
    }
    Ok(())
}
