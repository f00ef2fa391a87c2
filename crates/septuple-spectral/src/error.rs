//! The errors of septuple-spectral.

use septuple_core::CoreError;
use thiserror::Error;

/// What can go wrong when building G or reading its spectrum.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SpectralError {
    /// An error of septuple-core (a state of the wrong length, a non-feedforward network).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An error of septuple-thermo (a thermodynamic quantity outside its domain).
    #[error(transparent)]
    Thermo(#[from] septuple_thermo::ThermoError),
    /// A matrix or vector of the wrong shape.
    #[error("{what} has shape {got:?}; expected {expected:?}")]
    Shape {
        /// What was wrong.
        what: &'static str,
        /// Its shape.
        got: Vec<usize>,
        /// The expected shape.
        expected: Vec<usize>,
    },
    /// NaN or infinity where finite values are needed.
    #[error("{what} holds NaN or infinity; expected finite values")]
    NonFinite {
        /// What held them.
        what: &'static str,
    },
    /// A parameter outside its domain.
    #[error("{what} = {value}; expected {expected}")]
    Parameter {
        /// The parameter.
        what: &'static str,
        /// Its value, as text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An eigenvalue of G that is not positive: G is singular (I - f'w is not invertible),
    /// so log lambda is undefined. Never happens for a feedforward septuple.
    #[error("eigenvalue {index} of G is {value}; log lambda needs G positive definite (is the network feedforward?)")]
    Singular {
        /// Its index in ascending order.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// A non-input neuron whose activation has no second derivative
    /// ([`Activation::second_derivative`](septuple_core::Activation::second_derivative) is
    /// None), where f'' is needed: the derivative of f' of Eq. (5.4) in the parameters.
    #[error("the activation of neuron {neuron} has no second derivative; the derivative of f' (Eq. 5.4) in w and b needs one")]
    NoSecondDerivative {
        /// The neuron.
        neuron: usize,
    },
    /// The dense routine failed.
    #[error("linear algebra backend: {reason}")]
    Backend {
        /// What failed.
        reason: String,
    },
}
