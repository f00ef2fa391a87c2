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
    /// The derivative f'(y) when the value `fy = f(y)` is already known. Implementations may
    /// use `fy` to save work (tanh: 1 - fy^2) but must return exactly what
    /// [`derivative`](Activation::derivative) returns; the default ignores `fy`.
    #[inline]
    fn derivative_given_value(&self, y: f64, fy: f64) -> f64 {
        let _ = fy;
        self.derivative(y)
    }
    /// Apply f to a slice of pre-activations in place and store the derivatives beside them:
    /// `z[i] <- f(z[i])`, `d[i] <- f'(z[i])` (same values as [`value`](Activation::value) and
    /// [`derivative`](Activation::derivative); implementations may vectorise). The slices
    /// have equal length.
    #[inline]
    fn apply_slice(&self, z: &mut [f64], d: &mut [f64]) {
        for (zv, dv) in z.iter_mut().zip(d.iter_mut()) {
            let y = *zv;
            let v = self.value(y);
            *dv = self.derivative_given_value(y, v);
            *zv = v;
        }
    }
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
    /// f(y) = y for y >= 0 and alpha y otherwise (ONNX's `LeakyRelu`, PyTorch's
    /// `nn.LeakyReLU(negative_slope)`), f'(y) = 1 for y > 0 and alpha otherwise; unbounded
    /// (bounded below by 0 when alpha = 0). The slope alpha is a finite [`Slope`].
    LeakyRelu(Slope),
}

/// The negative-side slope alpha of [`Builtin::LeakyRelu`]: always finite, so that two slopes
/// compare, hash and serialise by value (`-0` is stored as `0`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Slope(f64);

impl Slope {
    /// 0.01, the default slope of ONNX's `LeakyRelu` and PyTorch's `nn.LeakyReLU`.
    pub const DEFAULT: Slope = Slope(0.01);

    /// The slope `alpha`, or [`CoreError::Parameter`](crate::CoreError::Parameter) unless it is
    /// finite.
    pub fn new(alpha: f64) -> Result<Self, crate::CoreError> {
        if !alpha.is_finite() {
            return Err(crate::CoreError::Parameter {
                name: "leaky_relu slope alpha",
                value: alpha,
                expected: "a finite number",
            });
        }
        // `alpha + 0.0` turns -0 into +0, so equal slopes have equal bits.
        Ok(Slope(alpha + 0.0))
    }

    /// The slope alpha.
    pub fn get(self) -> f64 {
        self.0
    }
}

// A slope is finite (checked by `Slope::new`, the only constructor), so equality is reflexive.
impl Eq for Slope {}

impl std::hash::Hash for Slope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl TryFrom<f64> for Slope {
    type Error = crate::CoreError;
    fn try_from(alpha: f64) -> Result<Self, Self::Error> {
        Slope::new(alpha)
    }
}

impl From<Slope> for f64 {
    fn from(s: Slope) -> f64 {
        s.0
    }
}

impl Activation for Builtin {
    #[inline]
    fn value(&self, y: f64) -> f64 {
        match self {
            Builtin::Tanh => tanh(y),
            Builtin::Relu => y.max(0.0),
            Builtin::Logistic => logistic(y),
            Builtin::Identity => y,
            Builtin::LeakyRelu(a) => {
                if y >= 0.0 {
                    y
                } else {
                    a.0 * y
                }
            }
        }
    }

    #[inline]
    fn derivative(&self, y: f64) -> f64 {
        match self {
            Builtin::Tanh => {
                // sech^2 y = 1 - tanh^2 y; exact to rounding and never negative.
                let t = tanh(y);
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
            Builtin::LeakyRelu(a) => {
                if y > 0.0 {
                    1.0
                } else {
                    a.0
                }
            }
        }
    }

    #[inline]
    fn derivative_given_value(&self, y: f64, fy: f64) -> f64 {
        match self {
            // The same expressions as `derivative`, with the value it would recompute.
            Builtin::Tanh => (1.0 - fy) * (1.0 + fy),
            Builtin::Logistic => fy * (1.0 - fy),
            _ => self.derivative(y),
        }
    }

    #[inline(always)]
    fn apply_slice(&self, z: &mut [f64], d: &mut [f64]) {
        match self {
            // Branch-free tanh: the compiler vectorises this loop.
            Builtin::Tanh => {
                for (zv, dv) in z.iter_mut().zip(d.iter_mut()) {
                    let t = tanh(*zv);
                    *dv = (1.0 - t) * (1.0 + t);
                    *zv = t;
                }
            }
            _ => {
                for (zv, dv) in z.iter_mut().zip(d.iter_mut()) {
                    let y = *zv;
                    let v = self.value(y);
                    *dv = self.derivative_given_value(y, v);
                    *zv = v;
                }
            }
        }
    }

    fn second_derivative(&self, y: f64) -> Option<f64> {
        Some(match self {
            Builtin::Tanh => {
                let t = tanh(y);
                -2.0 * t * (1.0 - t) * (1.0 + t)
            }
            Builtin::Relu | Builtin::Identity | Builtin::LeakyRelu(_) => 0.0,
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
            Builtin::LeakyRelu(a) if a.0 == 0.0 => (0.0, f64::INFINITY),
            Builtin::LeakyRelu(_) => (f64::NEG_INFINITY, f64::INFINITY),
        }
    }
}

/// The hyperbolic tangent used by [`Builtin::Tanh`]: within 2 ulp of the correctly rounded
/// value (tested against the platform's `tanh` on a dense grid), odd, monotone to rounding,
/// exactly +-1 for |y| >= 20, and free of branches and calls, so that loops over slices
/// vectorise. For |y| < 0.625 it is Cephes' rational approximation
/// y + y^3 P(y^2)/Q(y^2); beyond, 1 - 2/(e^{2|y|} + 1) with e^r from Cephes' Pade form after
/// the reduction r = 2|y| - n ln 2.
#[inline(always)]
pub fn tanh(y: f64) -> f64 {
    const P: [f64; 3] = [
        -9.643_991_794_250_523e-1,
        -9.928_772_310_019_186e1,
        -1.614_687_684_417_084_5e3,
    ];
    const Q: [f64; 3] = [
        1.128_116_784_916_329_3e2,
        2.235_488_390_601_004_5e3,
        4.844_063_053_251_255e3,
    ];
    let a = y.abs();
    // Small arguments.
    let y2 = y * y;
    let p = (P[0] * y2 + P[1]) * y2 + P[2];
    let q = ((y2 + Q[0]) * y2 + Q[1]) * y2 + Q[2];
    let small = y + y * y2 * p / q;
    // Large arguments: e^{2a} with 2a clamped to 40 (beyond, tanh rounds to 1).
    let x = (2.0 * a).min(40.0);
    const BIG: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    let shifted = x * std::f64::consts::LOG2_E + BIG;
    let n = shifted - BIG;
    let r = (x - n * 6.931_457_519_531_25e-1) - n * 1.428_606_820_309_417_2e-6;
    let r2 = r * r;
    let px = r * ((1.261_771_930_748_105_9e-4 * r2 + 3.029_944_077_074_419_6e-2) * r2 + 1.0);
    let qx = ((3.001_985_051_386_644_5e-6 * r2 + 2.524_483_403_496_841e-3) * r2
        + 2.272_655_482_081_550_3e-1)
        * r2
        + 2.0;
    let er = 1.0 + 2.0 * px / (qx - px);
    // 2^n from the integer held in the low bits of `shifted`.
    let bits = shifted.to_bits().wrapping_sub(BIG.to_bits());
    let scale = f64::from_bits(bits.wrapping_add(1023) << 52);
    let e = er * scale;
    let large = 1.0 - 2.0 / (e + 1.0);
    // NaN fails the comparison and propagates through `small`.
    let t = if a >= 0.625 { large } else { small.abs() };
    t.copysign(y)
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

    const ALL: [Builtin; 6] = [
        Builtin::Tanh,
        Builtin::Relu,
        Builtin::Logistic,
        Builtin::Identity,
        Builtin::LeakyRelu(Slope(0.1)),
        Builtin::LeakyRelu(Slope(-0.5)),
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
                if !matches!(a, Builtin::Relu | Builtin::LeakyRelu(_)) || y.abs() > h {
                    assert_relative_eq!(a.second_derivative(y).unwrap(), fd2, epsilon = 1e-9);
                }
            }
        }
    }

    #[test]
    fn derivative_given_value_is_bitwise_derivative() {
        for a in ALL {
            for &y in &[-800.0, -3.0, -0.7, -0.0, 0.0, 1e-300, 0.3, 1.1, 4.0, 40.0] {
                assert_eq!(
                    a.derivative_given_value(y, a.value(y)),
                    a.derivative(y),
                    "{a:?} at {y}"
                );
            }
        }
    }

    #[test]
    fn tanh_is_within_two_ulp_of_libm() {
        // A dense grid over [-25, 25] plus the edges of the two branches; the platform tanh is
        // within about 1 ulp of the true value, so 2 ulp to it bounds our error by ~3 ulp.
        let ulp = |v: f64| f64::from_bits(v.abs().to_bits() + 1) - v.abs();
        let mut worst = 0.0f64;
        let mut ys: Vec<f64> = (-250_000..=250_000).map(|k| k as f64 * 1e-4).collect();
        ys.extend([
            0.625,
            -0.625,
            0.624_999_999_999_999_9,
            19.0,
            20.0,
            40.0,
            1e-300,
            5e-324,
        ]);
        for y in ys {
            let (ours, theirs) = (tanh(y), y.tanh());
            let err = (ours - theirs).abs() / ulp(theirs);
            worst = worst.max(err);
            assert!(err <= 2.0, "tanh({y}) = {ours}, libm {theirs}: {err} ulp");
            assert_eq!(tanh(-y), -ours);
        }
        assert!(worst > 0.0);
        assert_eq!(tanh(30.0), 1.0);
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        // Monotone to rounding across the branch point.
        assert!(tanh(0.625) >= tanh(0.624_999_999_999_999_9));
    }

    #[test]
    fn apply_slice_matches_value_and_derivative() {
        for a in ALL {
            let ys: Vec<f64> = (-40..=40).map(|k| k as f64 * 0.173).collect();
            let mut z = ys.clone();
            let mut d = vec![0.0; ys.len()];
            a.apply_slice(&mut z, &mut d);
            for ((y, zv), dv) in ys.iter().zip(&z).zip(&d) {
                assert_eq!(*zv, a.value(*y));
                assert_eq!(*dv, a.derivative(*y));
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
        let leaky = Builtin::LeakyRelu(Slope::new(0.2).unwrap());
        let s = serde_json::to_string(&leaky).unwrap();
        assert_eq!(s, "{\"leaky_relu\":0.2}");
        assert_eq!(serde_json::from_str::<Builtin>(&s).unwrap(), leaky);
        assert!(serde_json::from_str::<Builtin>("{\"leaky_relu\":1e999}").is_err());
    }

    #[test]
    fn leaky_relu_values_and_slopes() {
        let a = Builtin::LeakyRelu(Slope::new(0.01).unwrap());
        assert_eq!(a.value(2.0), 2.0);
        assert_eq!(a.value(-2.0), -0.02);
        assert_eq!(a.derivative(3.0), 1.0);
        assert_eq!(a.derivative(-3.0), 0.01);
        assert_eq!(a.second_derivative(-3.0), Some(0.0));
        // alpha = 0 is ReLU, alpha = 1 the identity.
        let zero = Builtin::LeakyRelu(Slope::new(-0.0).unwrap());
        assert_eq!(zero, Builtin::LeakyRelu(Slope::new(0.0).unwrap()));
        assert_eq!(zero.range(), Builtin::Relu.range());
        for &y in &[-1.5, -0.0, 0.0, 0.7] {
            assert_eq!(zero.value(y), Builtin::Relu.value(y));
            assert_eq!(zero.derivative(y), Builtin::Relu.derivative(y));
        }
        let one = Builtin::LeakyRelu(Slope::new(1.0).unwrap());
        assert_eq!(one.value(-1.5), -1.5);
        assert!(Slope::new(f64::NAN).is_err());
        assert!(Slope::new(f64::INFINITY).is_err());
    }
}
