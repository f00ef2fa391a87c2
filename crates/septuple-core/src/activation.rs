//! Activation functions f_i of Eq. (2.6).

use serde::{Deserialize, Serialize};

/// An activation function f_i(y) of one neuron (Eq. 2.6): its value and its derivative.
///
/// The activation map f of a septuple acts component-wise, one `Activation` per neuron.
/// Implement this trait to use an activation that is not built in.
pub trait Activation: Clone + Send + Sync + std::fmt::Debug {
    /// The value f(y).
    fn value(&self, y: f64) -> f64;
    /// The derivative f'(y), the diagonal entry of Eq. (5.4).
    fn derivative(&self, y: f64) -> f64;
    /// The second derivative f''(y), if known. The bulk solver uses it for the exact Hessian
    /// of the bulk loss; without it the solver falls back to the Gauss-Newton matrix.
    fn second_derivative(&self, _y: f64) -> Option<f64> {
        None
    }
    /// The closed interval [lo, hi] that contains every value of f (the range the remark under
    /// Eq. (3.4) bounds states by). Unbounded sides are infinite.
    fn range(&self) -> (f64, f64) {
        (f64::NEG_INFINITY, f64::INFINITY)
    }
}

/// The activation functions built into septuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// f(y) = tanh(y), f'(y) = sech^2(y) (Eq. 10.4); range [-1, 1].
    Tanh,
    /// f(y) = max(0, y), f'(y) = 1 for y > 0 and 0 otherwise; range [0, inf).
    Relu,
    /// f(y) = 1 / (1 + e^-y), f'(y) = f(y) (1 - f(y)); range [0, 1].
    Logistic,
    /// f(y) = y, f'(y) = 1; unbounded.
    Identity,
}

impl Activation for Builtin {
    #[inline]
    fn value(&self, y: f64) -> f64 {
        match self {
            Builtin::Tanh => y.tanh(),
            Builtin::Relu => y.max(0.0),
            Builtin::Logistic => logistic(y),
            Builtin::Identity => y,
        }
    }

    #[inline]
    fn derivative(&self, y: f64) -> f64 {
        match self {
            Builtin::Tanh => {
                // sech^2 y = 1 - tanh^2 y; exact to rounding and never negative.
                let t = y.tanh();
                (1.0 - t) * (1.0 + t)
            }
            Builtin::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Builtin::Logistic => {
                let s = logistic(y);
                s * (1.0 - s)
            }
            Builtin::Identity => 1.0,
        }
    }

    fn second_derivative(&self, y: f64) -> Option<f64> {
        Some(match self {
            Builtin::Tanh => {
                let t = y.tanh();
                -2.0 * t * (1.0 - t) * (1.0 + t)
            }
            Builtin::Relu | Builtin::Identity => 0.0,
            Builtin::Logistic => {
                let s = logistic(y);
                s * (1.0 - s) * (1.0 - 2.0 * s)
            }
        })
    }

    fn range(&self) -> (f64, f64) {
        match self {
            Builtin::Tanh => (-1.0, 1.0),
            Builtin::Relu => (0.0, f64::INFINITY),
            Builtin::Logistic => (0.0, 1.0),
            Builtin::Identity => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

#[inline]
fn logistic(y: f64) -> f64 {
    // Evaluate on the side where exp does not overflow.
    if y >= 0.0 {
        1.0 / (1.0 + (-y).exp())
    } else {
        let e = y.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const ALL: [Builtin; 4] = [
        Builtin::Tanh,
        Builtin::Relu,
        Builtin::Logistic,
        Builtin::Identity,
    ];

    #[test]
    fn derivatives_match_central_differences() {
        // Central difference error is O(h^2 f''') ~ 1e-10 for h = 1e-5, rounding O(eps/h) ~ 1e-11.
        let h = 1e-5;
        for a in ALL {
            for &y in &[-3.0, -0.7, -0.1, 0.3, 1.1, 4.0] {
                let fd = (a.value(y + h) - a.value(y - h)) / (2.0 * h);
                assert_relative_eq!(a.derivative(y), fd, epsilon = 1e-9);
                let fd2 = (a.derivative(y + h) - a.derivative(y - h)) / (2.0 * h);
                if a != Builtin::Relu || y.abs() > h {
                    assert_relative_eq!(a.second_derivative(y).unwrap(), fd2, epsilon = 1e-9);
                }
            }
        }
    }

    #[test]
    fn values_lie_in_range() {
        for a in ALL {
            let (lo, hi) = a.range();
            for &y in &[-800.0, -20.0, -1.0, 0.0, 1.0, 20.0, 800.0] {
                let v = a.value(y);
                assert!(v >= lo && v <= hi, "{a:?}({y}) = {v} outside [{lo}, {hi}]");
                assert!(v.is_finite());
            }
        }
    }

    #[test]
    fn tanh_derivative_is_eq_10_4() {
        // Eq. (10.4): sech^2 y = 4 (e^y + e^-y)^-2.
        for &y in &[-2.0f64, -0.5, 0.0, 0.25, 1.5] {
            let paper = 4.0 / (y.exp() + (-y).exp()).powi(2);
            assert_relative_eq!(Builtin::Tanh.derivative(y), paper, max_relative = 1e-14);
        }
    }

    #[test]
    fn serde_names() {
        let s = serde_json::to_string(&Builtin::Logistic).unwrap();
        assert_eq!(s, "\"logistic\"");
        let back: Builtin = serde_json::from_str(&s).unwrap();
        assert_eq!(back, Builtin::Logistic);
    }
}
