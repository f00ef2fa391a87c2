//! Propagation to the fixed state x-bar of Eq. (2.9).

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::CoreError;
use crate::septuple::Septuple;

/// Options of the fixed-point iteration of [`Septuple::fixed_state`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixedPointOptions {
    /// Stop when no component of any sample changes by more than this in one step.
    pub tolerance: f64,
    /// The most steps taken before [`CoreError::NotConverged`].
    pub max_steps: usize,
    /// A state component beyond this magnitude (or non-finite) is [`CoreError::Diverged`].
    pub divergence_bound: f64,
}

impl Default for FixedPointOptions {
    fn default() -> Self {
        FixedPointOptions {
            tolerance: 1e-12,
            max_steps: 10_000,
            divergence_bound: 1e100,
        }
    }
}

impl FixedPointOptions {
    pub(crate) fn check(&self) -> Result<(), CoreError> {
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(CoreError::Parameter {
                name: "tolerance",
                value: self.tolerance,
                expected: "a finite tolerance >= 0",
            });
        }
        if !(self.divergence_bound > 0.0) {
            return Err(CoreError::Parameter {
                name: "divergence_bound",
                value: self.divergence_bound,
                expected: "a bound > 0",
            });
        }
        Ok(())
    }

    /// [`CoreError::Diverged`] if the new value `v` of a component of sample `sample` at step
    /// `step` is beyond the divergence bound (or not finite).
    pub(crate) fn check_bound(&self, v: f64, step: usize, sample: usize) -> Result<(), CoreError> {
        if !(v.abs() <= self.divergence_bound) {
            return Err(CoreError::Diverged {
                step,
                sample,
                magnitude: v.abs(),
                bound: self.divergence_bound,
            });
        }
        Ok(())
    }
}

/// A batch of fixed states and how they were reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixedState {
    /// The fixed states x-bar of Eq. (2.9), one row per sample (S x N).
    pub states: Array2<f64>,
    /// The number of steps after which no state changed any more (for a feedforward septuple,
    /// at most its depth L; L - 1 for a layered network).
    pub steps: usize,
}

impl<A: Activation> Septuple<A> {
    /// The fixed states x-bar = f(w x-bar + b) of Eq. (2.9) for a batch of inputs (S x n_in), by
    /// iterating Eq. (2.5) from x(0) = P_in x_d (Eq. 2.4) with the inputs held at their data
    /// (Eq. 2.7; this is what the input-bias condition Eq. (2.8) guarantees for a feedforward
    /// network, imposed here for every septuple).
    ///
    /// Each step is one matrix product over the batch, restricted to the rows of w that drive
    /// non-input neurons. A feedforward septuple of depth L converges exactly after at most L
    /// steps; a recurrent one may converge, fail to converge ([`CoreError::NotConverged`]) or
    /// diverge ([`CoreError::Diverged`]).
    pub fn fixed_state(
        &self,
        inputs: ArrayView2<'_, f64>,
        options: &FixedPointOptions,
    ) -> Result<FixedState, CoreError> {
        options.check()?;
        let x = self.initial_state(inputs)?;
        let driven = self.driven();
        let wt = self.driven_weights_t();
        let bd = self.driven_bias();
        let acts: Vec<&A> = driven.iter().map(|&i| &self.activations()[i]).collect();
        iterate(x, !driven.is_empty(), options, |step, x| {
            let mut y = x.dot(&wt);
            y += &bd;
            let mut change = 0.0f64;
            for (s, (mut xs, ys)) in x.rows_mut().into_iter().zip(y.rows()).enumerate() {
                for ((&i, a), &yi) in driven.iter().zip(&acts).zip(ys) {
                    let v = a.value(yi);
                    options.check_bound(v, step, s)?;
                    change = change.max((v - xs[i]).abs());
                    xs[i] = v;
                }
            }
            Ok(change)
        })
    }
}

/// The iteration of Eq. (2.5) to the fixed state of Eq. (2.9), for every septuple type, from
/// the states `x`: `step(k, x)` takes step k (from 1) in place and returns the largest change
/// of a component (or the error of [`FixedPointOptions::check_bound`]). Converged once no
/// component changes by more than the tolerance, with the number of steps after which none
/// changed; [`CoreError::NotConverged`] after `max_steps` steps. With `max_steps` = 0 no step
/// is allowed: converged only if nothing is `driven`.
pub(crate) fn iterate(
    mut x: Array2<f64>,
    driven: bool,
    options: &FixedPointOptions,
    mut step: impl FnMut(usize, &mut Array2<f64>) -> Result<f64, CoreError>,
) -> Result<FixedState, CoreError> {
    for k in 1..=options.max_steps {
        let change = step(k, &mut x)?;
        if change <= options.tolerance {
            return Ok(FixedState {
                states: x,
                steps: k - 1,
            });
        }
        if k == options.max_steps {
            return Err(CoreError::NotConverged {
                steps: k,
                change,
                tolerance: options.tolerance,
            });
        }
    }
    if !driven {
        return Ok(FixedState {
            states: x,
            steps: 0,
        });
    }
    Err(CoreError::NotConverged {
        steps: 0,
        change: f64::INFINITY,
        tolerance: options.tolerance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Builtin, Init, Layered, Network};
    use approx::assert_abs_diff_eq;
    use ndarray::{array, Array1};

    #[test]
    fn layered_sweep_equals_fixed_state() {
        let net = Layered::random(&[4, 5, 3, 2], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
        let x = Array2::from_shape_fn((7, 4), |(i, j)| ((i * 4 + j) as f64 * 0.37).sin());
        let sweep = net.forward_states(x.view()).unwrap();
        let sep = net.to_septuple().unwrap();
        let fixed = sep
            .fixed_state(x.view(), &FixedPointOptions::default())
            .unwrap();
        assert_eq!(fixed.steps, 3); // L - 1
                                    // Both compute the same sums in a different order: agreement to a few ulps of O(1) values.
        assert_abs_diff_eq!(fixed.states, sweep, epsilon = 1e-14);
    }

    #[test]
    fn step_is_eq_2_5() {
        let sep = Layered::random(&[2, 2, 1], Builtin::Tanh, Init::TorchLinear, 1)
            .unwrap()
            .to_septuple()
            .unwrap();
        let x = array![[0.1, 0.2, 0.3, -0.4, 0.5]];
        let next = sep.step(x.view()).unwrap();
        let y = sep.weights().dot(&x.row(0)) + sep.bias();
        for i in 0..5 {
            assert_abs_diff_eq!(next[[0, i]], y[i].tanh(), epsilon = 1e-15);
        }
    }

    #[test]
    fn contractive_recurrent_network_converges_to_a_fixed_point() {
        // 0 -> 1 <-> 2, contractive (|w| < 1, tanh 1-Lipschitz).
        let w = array![[0.0, 0.0, 0.0], [0.8, 0.0, 0.4], [0.0, -0.5, 0.0]];
        let sep =
            Septuple::with_activation(w, array![0.0, 0.1, -0.1], Builtin::Tanh, vec![0], vec![2])
                .unwrap();
        assert!(sep.feedforward().is_err());
        let fs = sep
            .fixed_state(array![[0.7]].view(), &FixedPointOptions::default())
            .unwrap();
        let x = fs.states.row(0).to_owned();
        // x-bar = f(w x-bar + b) on the driven neurons.
        let y = sep.weights().dot(&x) + sep.bias();
        for i in 1..3 {
            assert_abs_diff_eq!(x[i], y[i].tanh(), epsilon = 1e-11);
        }
        assert_eq!(x[0], 0.7);
    }

    #[test]
    fn oscillating_network_does_not_converge() {
        // x1 <- -2 x1 through a self loop with identity activation: a 2-cycle at best, here growth.
        let w = array![[0.0, 0.0], [0.0, -1.0]];
        let sep =
            Septuple::with_activation(w, array![0.0, 1.0], Builtin::Identity, vec![0], vec![])
                .unwrap();
        // x1: 0, 1, 0, 1, ... never settles.
        let e = sep
            .fixed_state(
                array![[0.0]].view(),
                &FixedPointOptions {
                    max_steps: 50,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(
            matches!(e, CoreError::NotConverged { steps: 50, .. }),
            "{e}"
        );
    }

    #[test]
    fn growing_network_diverges() {
        let w = array![[0.0, 0.0], [1.0, 2.0]];
        let sep =
            Septuple::with_activation(w, Array1::zeros(2), Builtin::Identity, vec![0], vec![])
                .unwrap();
        let e = sep
            .fixed_state(
                array![[1.0], [0.0]].view(),
                &FixedPointOptions {
                    divergence_bound: 1e6,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e, CoreError::Diverged { sample: 0, .. }), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let sep = Layered::random(&[2, 1], Builtin::Tanh, Init::TorchLinear, 1)
            .unwrap()
            .to_septuple()
            .unwrap();
        assert!(matches!(
            sep.forward_states(array![[1.0, 2.0, 3.0]].view()),
            Err(CoreError::Shape { .. })
        ));
        assert!(matches!(
            sep.forward_states(array![[1.0, f64::NAN]].view()),
            Err(CoreError::NonFinite { .. })
        ));
        let bad = FixedPointOptions {
            tolerance: f64::NAN,
            ..Default::default()
        };
        assert!(matches!(
            sep.fixed_state(array![[1.0, 2.0]].view(), &bad),
            Err(CoreError::Parameter { .. })
        ));
    }
}
