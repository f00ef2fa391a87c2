//! The error vocabulary of `septuple-core`.

use thiserror::Error;

/// Everything that can go wrong when a septuple is built, validated, propagated or solved.
///
/// Every variant carries the values that were wrong and its message says what was expected.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A matrix or vector does not have the shape the septuple needs.
    #[error("{what} has shape {got:?}, expected {expected:?}")]
    Shape {
        /// What was passed (e.g. "weight matrix w").
        what: String,
        /// The shape that was passed.
        got: Vec<usize>,
        /// The shape that was expected.
        expected: Vec<usize>,
    },
    /// A value is NaN or infinite where a finite number is required.
    #[error(
        "{what} holds a non-finite value {value} at index {index:?}; every entry must be finite"
    )]
    NonFinite {
        /// What was passed.
        what: String,
        /// Where the value sits.
        index: Vec<usize>,
        /// The value itself.
        value: f64,
    },
    /// A neuron index is not below the number of neurons.
    #[error("{what} names neuron {index}, but the septuple has only {n} neurons (indices 0..{n})")]
    IndexOutOfRange {
        /// Which list holds the index.
        what: String,
        /// The offending index.
        index: usize,
        /// The number of neurons.
        n: usize,
    },
    /// A neuron is listed twice in one projection.
    #[error("{what} lists neuron {index} twice; each neuron may appear once")]
    DuplicateIndex {
        /// Which list holds the index.
        what: String,
        /// The repeated index.
        index: usize,
    },
    /// A weight `w[row][col]` is given twice in a list of (i, j, value) triplets.
    #[error("weight w[{row}][{col}] is given twice, by triplets {first} and {second}; each connection may appear once")]
    DuplicateEntry {
        /// The target neuron i of the connection.
        row: usize,
        /// The source neuron j of the connection.
        col: usize,
        /// The position of the first triplet naming it.
        first: usize,
        /// The position of the second.
        second: usize,
    },
    /// A neuron is both an input and an output neuron.
    #[error("neuron {index} is both an input and an output neuron; P_in and P_out must project onto disjoint subspaces")]
    OverlappingProjections {
        /// The shared index.
        index: usize,
    },
    /// The weight graph has a cycle, so w is not nilpotent (Eq. 2.1 fails).
    #[error("the weight graph has a cycle through neurons {cycle:?}; a feedforward septuple needs a nilpotent w (Eq. 2.1)")]
    Cycle {
        /// The neurons of one cycle, in order (an edge runs from each to the next and from the last to the first).
        cycle: Vec<usize>,
    },
    /// An input neuron receives a connection (Eq. 2.2 fails).
    #[error("input neuron {input} receives a connection from neuron {from} (w[{input}][{from}] = {weight}); Eq. (2.2) needs P_in w = 0")]
    InputHasIncoming {
        /// The input neuron.
        input: usize,
        /// The source of the connection.
        from: usize,
        /// The weight.
        weight: f64,
    },
    /// An output neuron sends a connection (Eq. 2.3 fails).
    #[error("output neuron {output} sends a connection to neuron {to} (w[{to}][{output}] = {weight}); Eq. (2.3) needs P_out w^T = 0")]
    OutputHasOutgoing {
        /// The output neuron.
        output: usize,
        /// The target of the connection.
        to: usize,
        /// The weight.
        weight: f64,
    },
    /// A layered network description is inconsistent.
    #[error("layered network: {reason}")]
    Layers {
        /// What is inconsistent.
        reason: String,
    },
    /// The global septuple does not have the layered structure that was asked for.
    #[error("the septuple is not layered as {sizes:?}: {reason}")]
    NotLayered {
        /// The layer sizes asked for.
        sizes: Vec<usize>,
        /// Why the septuple does not fit them.
        reason: String,
    },
    /// A parameter is outside its domain.
    #[error("parameter {name} = {value} is invalid: expected {expected}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
    /// Propagation produced non-finite or runaway states.
    #[error("propagation diverged at step {step}: sample {sample} reached |x| = {magnitude} (bound {bound})")]
    Diverged {
        /// The step at which it happened.
        step: usize,
        /// The sample that diverged.
        sample: usize,
        /// The largest |x_i| of that sample (infinite or NaN for non-finite states).
        magnitude: f64,
        /// The bound that was exceeded.
        bound: f64,
    },
    /// Fixed-point iteration did not converge within its step limit.
    #[error("no fixed state (Eq. 2.9) after {steps} steps: the last step still changed a state by {change:e} (tolerance {tolerance:e}); w may be recurrent")]
    NotConverged {
        /// Steps taken.
        steps: usize,
        /// Largest change of the last step.
        change: f64,
        /// The tolerance asked for.
        tolerance: f64,
    },
    /// Targets are missing for a septuple with output neurons.
    #[error("the septuple has {n_out} output neurons, but no targets were given; expected a {samples} x {n_out} target matrix")]
    MissingTargets {
        /// The number of output neurons.
        n_out: usize,
        /// The number of samples of the input data.
        samples: usize,
    },
    /// A dense form would take more memory than its budget allows.
    #[error("{what} would be a {rows} x {cols} matrix of f64 ({bytes} bytes), more than the budget of {budget} bytes; use a method that does not need the dense form, or raise the budget")]
    TooLarge {
        /// What would be built.
        what: String,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
        /// The bytes it would take (saturated at u64::MAX).
        bytes: u64,
        /// The budget in bytes.
        budget: u64,
    },
    /// An empty data set was passed where at least one sample is needed.
    #[error("{what} has no samples; at least one is needed")]
    Empty {
        /// What was empty.
        what: String,
    },
}

impl CoreError {
    pub(crate) fn shape(what: impl Into<String>, got: &[usize], expected: &[usize]) -> Self {
        CoreError::Shape {
            what: what.into(),
            got: got.to_vec(),
            expected: expected.to_vec(),
        }
    }
}

/// Check that every entry of an array is finite.
pub(crate) fn check_finite<'a, D: ndarray::Dimension>(
    what: &str,
    a: impl Into<ndarray::ArrayView<'a, f64, D>>,
) -> Result<(), CoreError> {
    let a = a.into();
    for (idx, &v) in a.indexed_iter() {
        if !v.is_finite() {
            return Err(CoreError::NonFinite {
                what: what.to_string(),
                index: idx.into_dimension().slice().to_vec(),
                value: v,
            });
        }
    }
    Ok(())
}

use ndarray::IntoDimension;
