//! The landscape of Eq. (9.3): -DeltaF as a function of u = log lambda for a spectrum with a
//! fraction gamma of eigenvalues at lambda and 1 - gamma at lambda^(gamma / (gamma - 1))
//! (det G = 1, Eq. 9.2); its stationary points, the branch they lie on, the phases of Fig. 1,
//! and Eq. (9.4) as printed.
//!
//! With a = beta e^u, b = beta e^(p u), p = gamma / (gamma - 1) and g(t) = t / (1 + t)^3,
//! d(-DeltaF)/du = -N beta gamma (g(a) - g(b)). Stationary points are u = 0 (a = b) and the
//! nontrivial branch a b (3 + a + b) = 1, which, with real cube roots, is
//! beta (e^((2 + p) u / 3) + e^((1 + 2 p) u / 3)) = 1. See docs/theory.md for the derivation.

use serde::{Deserialize, Serialize};

use crate::error::{finite, positive, ThermoError};
use crate::roots::{bisect, bracket_all};

/// -DeltaF(log lambda; beta, gamma, N) of Eq. (9.3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LandscapeRepr")]
pub struct Landscape {
    beta: f64,
    gamma: f64,
    n: usize,
}

#[derive(Deserialize)]
struct LandscapeRepr {
    beta: f64,
    gamma: f64,
    n: usize,
}

impl TryFrom<LandscapeRepr> for Landscape {
    type Error = ThermoError;
    fn try_from(r: LandscapeRepr) -> Result<Self, ThermoError> {
        Landscape::new(r.beta, r.gamma, r.n)
    }
}

/// The type of a stationary point of -DeltaF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StationaryKind {
    /// A local maximum of -DeltaF (unstable: eigenvalues move away from it).
    Maximum,
    /// A local minimum of -DeltaF (stable).
    Minimum,
    /// A stationary inflection point (the derivative touches zero without changing sign).
    Inflection,
}

/// A stationary point of -DeltaF in u = log lambda.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StationaryPoint {
    /// Its position u = log lambda.
    pub log_lambda: f64,
    /// -DeltaF there.
    pub value: f64,
    /// d^2(-DeltaF)/du^2 there.
    pub second_derivative: f64,
    /// Its type.
    pub kind: StationaryKind,
}

/// The phases of Sec. 9, defined by what u = 0 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// beta < 1/2: u = 0 is a local maximum of -DeltaF.
    Initial,
    /// beta >= 1/2 and gamma < (1 + beta)^-2: u = 0 is a local minimum, but the plateau
    /// N beta gamma / 2 approached as u -> -infinity lies below it, so eigenvalues that cross
    /// the nontrivial maximum run off to log lambda -> -infinity.
    Intermediate,
    /// beta >= 1/2 and gamma >= (1 + beta)^-2, i.e. beta >= 1/sqrt(gamma) - 1: u = 0 is a local
    /// minimum at or below the plateau at u -> -infinity.
    Final,
}

/// g(t) = t / (1 + t)^3, finite for t in [0, inf].
fn g(t: f64) -> f64 {
    if t <= 1.0 {
        t / ((1.0 + t) * (1.0 + t) * (1.0 + t))
    } else {
        let r = 1.0 / t;
        r * r / ((1.0 + r) * (1.0 + r) * (1.0 + r))
    }
}

/// t g'(t) = t (1 - 2 t) / (1 + t)^4.
fn tg1(t: f64) -> f64 {
    if t <= 1.0 {
        t * (1.0 - 2.0 * t) / (1.0 + t).powi(4)
    } else {
        let r = 1.0 / t;
        r * r * (r - 2.0) / (1.0 + r).powi(4)
    }
}

/// (1 + t)^-2.
fn inv_sq(t: f64) -> f64 {
    if t <= 1.0 {
        1.0 / ((1.0 + t) * (1.0 + t))
    } else {
        let r = 1.0 / t;
        r * r / ((1.0 + r) * (1.0 + r))
    }
}

/// Checks gamma in (0, 1) and returns p = gamma / (gamma - 1).
fn exponent_p(gamma: f64) -> Result<f64, ThermoError> {
    if !(gamma > 0.0 && gamma < 1.0) {
        return Err(ThermoError::Parameter {
            name: "gamma",
            value: gamma,
            expected: "a fraction in (0, 1)",
        });
    }
    Ok(gamma / (gamma - 1.0))
}

impl Landscape {
    /// The landscape at inverse temperature `beta` > 0, fraction `gamma` in (0, 1) of small
    /// eigenvalues and `n` >= 1 neurons.
    pub fn new(beta: f64, gamma: f64, n: usize) -> Result<Self, ThermoError> {
        positive("beta", beta)?;
        exponent_p(gamma)?;
        if n == 0 {
            return Err(ThermoError::Parameter {
                name: "n",
                value: 0.0,
                expected: "at least one neuron",
            });
        }
        Ok(Self { beta, gamma, n })
    }

    /// beta.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// gamma.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// p = gamma / (gamma - 1): the large eigenvalues sit at lambda^p (Eq. 9.2).
    pub fn p(&self) -> f64 {
        self.gamma / (self.gamma - 1.0)
    }

    fn ab(&self, u: f64) -> (f64, f64) {
        (self.beta * u.exp(), self.beta * (self.p() * u).exp())
    }

    /// -DeltaF at u = log lambda, Eq. (9.3):
    /// (N beta / 2) (gamma (1 + a)^-2 + (1 - gamma)(1 + b)^-2), a = beta e^u, b = beta e^(p u).
    pub fn value(&self, u: f64) -> f64 {
        let (a, b) = self.ab(u);
        0.5 * self.n as f64 * self.beta * (self.gamma * inv_sq(a) + (1.0 - self.gamma) * inv_sq(b))
    }

    /// d(-DeltaF)/du = -N beta gamma (g(a) - g(b)), g(t) = t / (1 + t)^3.
    pub fn derivative(&self, u: f64) -> f64 {
        let (a, b) = self.ab(u);
        -(self.n as f64) * self.beta * self.gamma * (g(a) - g(b))
    }

    /// d^2(-DeltaF)/du^2 = -N beta gamma (a g'(a) - p b g'(b)).
    pub fn second_derivative(&self, u: f64) -> f64 {
        let (a, b) = self.ab(u);
        -(self.n as f64) * self.beta * self.gamma * (tg1(a) - self.p() * tg1(b))
    }

    /// The limits of -DeltaF as u -> -infinity and u -> +infinity:
    /// (N beta gamma / 2, N beta (1 - gamma) / 2).
    pub fn plateaus(&self) -> (f64, f64) {
        let h = 0.5 * self.n as f64 * self.beta;
        (h * self.gamma, h * (1.0 - self.gamma))
    }

    /// The phase of Sec. 9 (see [`Phase`]).
    pub fn phase(&self) -> Phase {
        if self.beta < 0.5 {
            Phase::Initial
        } else if self.gamma * (1.0 + self.beta) * (1.0 + self.beta) < 1.0 {
            Phase::Intermediate
        } else {
            Phase::Final
        }
    }

    /// Every stationary point of -DeltaF in `[lo, hi]`, sorted by position.
    ///
    /// Roots of the derivative are bracketed by sign changes of derivative / u on a grid of
    /// `cells` cells and refined by bisection; u = 0 is always stationary and is included
    /// exactly; a point where
    /// the derivative touches zero without changing sign is found as a root of the second
    /// derivative at which g(a) = g(b) to 1e-10 relative. Each point is classified by the sign
    /// of the second derivative (where it exceeds 1e-9 of the size of its two terms), or else
    /// by the signs of the derivative on either side. Candidates closer than 1e-6 whose values
    /// agree to 1e-12 are reported once (at beta = 1/2 the branch meets u = 0 in a single
    /// degenerate inflection point).
    ///
    /// Errors: a non-finite or empty range, `cells` = 0.
    pub fn stationary_points(
        &self,
        lo: f64,
        hi: f64,
        cells: usize,
    ) -> Result<Vec<StationaryPoint>, ThermoError> {
        finite("lo", lo)?;
        finite("hi", hi)?;
        if !(hi > lo) {
            return Err(ThermoError::Parameter {
                name: "hi",
                value: hi,
                expected: "greater than lo",
            });
        }
        if cells == 0 {
            return Err(ThermoError::Parameter {
                name: "cells",
                value: 0.0,
                expected: "at least one grid cell",
            });
        }
        let width = (hi - lo) / cells as f64;
        let candidates = self.candidates(lo, hi, cells);
        Ok(self
            .merge(candidates, width)
            .into_iter()
            .map(|u| self.classify(u, width))
            .collect())
    }

    /// The candidate stationary points in `[lo, hi]`, sorted, possibly repeated: the roots of
    /// derivative / u bracketed on the grid, u = 0 exactly, and the roots of the second
    /// derivative at which the derivative touches zero.
    fn candidates(&self, lo: f64, hi: f64, cells: usize) -> Vec<f64> {
        // The derivative divided by u: its roots are the nontrivial stationary points, so a
        // nontrivial root within one grid cell of u = 0 is still bracketed. At u = 0 the
        // quotient is the second derivative.
        let quotient = |u: f64| {
            if u == 0.0 {
                self.second_derivative(0.0)
            } else {
                self.derivative(u) / u
            }
        };
        let mut us: Vec<f64> = bracket_all(quotient, lo, hi, cells);
        if (lo..=hi).contains(&0.0) {
            us.push(0.0);
        }
        for u in bracket_all(|u| self.second_derivative(u), lo, hi, cells) {
            // Tangential only if g(a) and g(b) agree to rounding, relative to their size (in
            // the tails both are tiny, and an inflection point of -DeltaF is not stationary).
            let (a, b) = self.ab(u);
            let (ga, gb) = (g(a), g(b));
            if (ga - gb).abs() <= 1e-10 * (ga + gb) {
                us.push(u);
            }
        }
        us.sort_by(f64::total_cmp);
        us
    }

    /// Sorted candidates with the duplicates merged, on a grid of cells `width` wide.
    fn merge(&self, us: Vec<f64>, width: f64) -> Vec<f64> {
        // Merge duplicates (the same root found twice, e.g. u = 0 by bracketing and exactly);
        // keep u = 0 itself when it is one of them. Near a degenerate stationary point (beta =
        // 1/2, where the branch meets u = 0) the derivative is below its rounding error over a
        // range of about 1e-8 and bisection stops anywhere in it: roots closer than 1e-6 whose
        // values of -DeltaF agree to 1e-12 are one point (no double-precision evaluation can
        // tell them apart).
        let same = |a: f64, b: f64| {
            let d = (a - b).abs();
            d <= 1e-9 * width.max(1e-300) + 1e-12
                || (d <= 1e-6 * a.abs().max(1.0) && {
                    let (fa, fb) = (self.value(a), self.value(b));
                    (fa - fb).abs() <= 1e-12 * fa.abs().max(fb.abs()).max(1.0)
                })
        };
        let mut merged: Vec<f64> = Vec::new();
        for u in us {
            match merged.last_mut() {
                Some(last) if same(*last, u) => {
                    if u == 0.0 {
                        *last = 0.0;
                    }
                }
                _ => merged.push(u),
            }
        }
        merged
    }

    /// The stationary point at u, classified by the sign of the second derivative where it
    /// exceeds 1e-9 of the size of its terms, else by the signs of the derivative a quarter
    /// of a grid cell (`width`) to either side.
    fn classify(&self, u: f64, width: f64) -> StationaryPoint {
        let scale = self.n as f64 * self.beta * self.gamma;
        let s2 = self.second_derivative(u);
        let (a, b) = self.ab(u);
        let size = scale * (tg1(a).abs() + (self.p() * tg1(b)).abs());
        let kind = if s2.abs() > 1e-9 * size {
            if s2 < 0.0 {
                StationaryKind::Maximum
            } else {
                StationaryKind::Minimum
            }
        } else {
            let h = 0.25 * width;
            let (l, r) = (self.derivative(u - h), self.derivative(u + h));
            match (l > 0.0, r > 0.0) {
                (true, false) => StationaryKind::Maximum,
                (false, true) => StationaryKind::Minimum,
                _ => StationaryKind::Inflection,
            }
        };
        StationaryPoint {
            log_lambda: u,
            value: self.value(u),
            second_derivative: s2,
            kind,
        }
    }
}

/// The exponents (e1, e2) = ((2 + p) / 3, (1 + 2 p) / 3) of the nontrivial branch.
fn branch_exponents(gamma: f64) -> Result<(f64, f64), ThermoError> {
    let p = exponent_p(gamma)?;
    Ok(((2.0 + p) / 3.0, (1.0 + 2.0 * p) / 3.0))
}

/// log(e^x + e^y) without overflow.
fn log_sum_exp(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    m + ((x - m).exp() + (y - m).exp()).ln()
}

/// The beta at which u = log lambda is a nontrivial stationary point of Eq. (9.3):
/// beta = 1 / (e^((2 + p) u / 3) + e^((1 + 2 p) u / 3)), p = gamma / (gamma - 1).
///
/// This is the inversion "gap position -> beta" that follows from (9.3); for gamma = 1/3 it is
/// beta = 1 / (1 + e^(u / 2)). At that beta, a gap below u = 0 sits at a maximum of -DeltaF
/// when beta > 1/2 (see [`Landscape::stationary_points`]). Compare
/// [`beta_from_gap_eq_9_4_as_printed`].
///
/// Errors: u not finite, gamma outside (0, 1).
pub fn beta_from_gap(log_lambda: f64, gamma: f64) -> Result<f64, ThermoError> {
    let u = finite("log_lambda", log_lambda)?;
    let (e1, e2) = branch_exponents(gamma)?;
    Ok((-log_sum_exp(e1 * u, e2 * u)).exp())
}

/// Every u = log lambda on the nontrivial branch of Eq. (9.3) at this beta and gamma: the
/// solutions of e^((2 + p) u / 3) + e^((1 + 2 p) u / 3) = 1 / beta, sorted. The left side is a
/// sum of two exponentials (convex), so there are at most two. Closed forms where the exponents
/// allow it: gamma = 1/3 gives u = 2 log((1 - beta) / beta) for beta < 1; gamma = 1/2 gives
/// u = +-3 arccosh(1 / (2 beta)) for beta <= 1/2; gamma -> 0 gives Eq. (9.4) as printed. Here
/// the solutions are found by bracketing and bisection in log space for every gamma.
///
/// Errors: beta not finite and positive, gamma outside (0, 1).
pub fn branch_log_lambdas(beta: f64, gamma: f64) -> Result<Vec<f64>, ThermoError> {
    positive("beta", beta)?;
    let (e1, e2) = branch_exponents(gamma)?;
    let target = -beta.ln();
    let phi = move |u: f64| log_sum_exp(e1 * u, e2 * u) - target;
    // Expand from `start` in direction `dir` until phi changes sign (phi monotone there).
    let expand = |start: f64, dir: f64| -> Option<f64> {
        let f0 = phi(start);
        if f0 == 0.0 {
            return Some(start);
        }
        let mut step = 1.0;
        let mut prev = start;
        for _ in 0..64 {
            let next = start + dir * step;
            let f1 = phi(next);
            if f1 == 0.0 {
                return Some(next);
            }
            if f1.signum() != f0.signum() {
                return Some(if dir > 0.0 {
                    bisect(phi, prev, next)
                } else {
                    bisect(phi, next, prev)
                });
            }
            if !f1.is_finite() {
                return None;
            }
            prev = next;
            step *= 2.0;
        }
        None
    };
    let mut out = Vec::new();
    let tiny = 1e-15;
    if e1 > tiny && e2 > tiny {
        // Increasing from 0 to infinity: one root.
        let dir = if phi(0.0) > 0.0 { -1.0 } else { 1.0 };
        out.extend(expand(0.0, dir));
    } else if e1 < -tiny && e2 < -tiny {
        // Decreasing from infinity to 0: one root.
        let dir = if phi(0.0) > 0.0 { 1.0 } else { -1.0 };
        out.extend(expand(0.0, dir));
    } else if e2.abs() <= tiny || e1.abs() <= tiny {
        // One exponent vanishes: e^(e u) + 1 = 1 / beta.
        let e = if e2.abs() <= tiny { e1 } else { e2 };
        if beta < 1.0 {
            out.push((1.0 / beta - 1.0).ln() / e);
        }
    } else {
        // e1 > 0 > e2: convex with its minimum at u_m.
        let um = (-e2 / e1).ln() / (e1 - e2);
        let fm = phi(um);
        if fm == 0.0 {
            out.push(um);
        } else if fm < 0.0 {
            out.extend(expand(um, -1.0));
            out.extend(expand(um, 1.0));
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// Eq. (9.4) as printed: log lambda = 3 log(-1/2 + sqrt(1/4 + 1/beta)).
///
/// It is the nontrivial branch of (9.3) in the limit gamma -> 0, not at the gamma = 1/3 of
/// Fig. 1 (for which the branch is 2 log((1 - beta) / beta)); the two agree only at
/// beta = 1/2. See [`branch_log_lambdas`].
///
/// Errors: beta not finite and positive.
pub fn gap_eq_9_4_as_printed(beta: f64) -> Result<f64, ThermoError> {
    positive("beta", beta)?;
    Ok(3.0 * (-0.5 + (0.25 + 1.0 / beta).sqrt()).ln())
}

/// The inverse of Eq. (9.4) as printed: with s = e^(u / 3), beta = 1 / (s^2 + s). This is how
/// the paper turns the gaps of Fig. 5 into beta. [`beta_from_gap`] is the relation that follows
/// from (9.3) for a given gamma; the two agree as gamma -> 0.
///
/// Errors: u not finite.
pub fn beta_from_gap_eq_9_4_as_printed(log_lambda: f64) -> Result<f64, ThermoError> {
    let u = finite("log_lambda", log_lambda)?;
    let s = (u / 3.0).exp();
    Ok(1.0 / (s * s + s))
}

/// The beta at which u = 0 turns from a maximum (beta < 1/2) into a minimum of -DeltaF, for
/// every gamma in (0, 1): the second derivative there is
/// -N beta^2 gamma (1 - 2 beta) / ((1 - gamma)(1 + beta)^4). The nontrivial branch crosses u = 0
/// at the same beta.
pub fn stability_exchange_beta() -> f64 {
    0.5
}

/// The beta above which -DeltaF at u = 0, N beta / (2 (1 + beta)^2), is at or below the plateau
/// N beta gamma / 2 of u -> -infinity: beta = 1/sqrt(gamma) - 1 (the condition
/// gamma < (beta + 1)^-2 of Sec. 9, solved for beta). For gamma = 1/3 it is sqrt(3) - 1 = 0.732,
/// the third beta of Fig. 1. The paper prints sqrt(N) - 1, which is this boundary for
/// gamma = 1/N.
///
/// Errors: gamma outside (0, 1).
pub fn global_minimum_boundary_beta(gamma: f64) -> Result<f64, ThermoError> {
    exponent_p(gamma)?;
    Ok(1.0 / gamma.sqrt() - 1.0)
}

/// The phase boundaries as printed in Sec. 9: (1/2, sqrt(N) - 1).
pub fn phase_boundaries_as_printed(n: usize) -> (f64, f64) {
    (0.5, (n as f64).sqrt() - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn parameters_are_checked() {
        assert!(Landscape::new(0.0, 0.3, 10).is_err());
        assert!(Landscape::new(1.0, 0.0, 10).is_err());
        assert!(Landscape::new(1.0, 1.0, 10).is_err());
        assert!(Landscape::new(1.0, f64::NAN, 10).is_err());
        assert!(Landscape::new(1.0, 0.3, 0).is_err());
        let l = Landscape::new(1.0, 0.3, 10).unwrap();
        assert!(l.stationary_points(1.0, 1.0, 10).is_err());
        assert!(l.stationary_points(-1.0, 1.0, 0).is_err());
        assert!(l.stationary_points(f64::NEG_INFINITY, 1.0, 10).is_err());
        assert!(beta_from_gap(f64::NAN, 0.3).is_err());
        assert!(branch_log_lambdas(-1.0, 0.3).is_err());
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Landscape>(&json).unwrap(), l);
        assert!(serde_json::from_str::<Landscape>(r#"{"beta":1.0,"gamma":1.5,"n":3}"#).is_err());
    }

    /// Value, derivative and second derivative against finite differences, including large
    /// |u| where e^u overflows.
    #[test]
    fn derivatives_match_finite_differences() {
        for (beta, gamma) in [(0.25, 1.0 / 3.0), (0.73, 0.1), (2.0, 0.6), (1.0, 0.9)] {
            let l = Landscape::new(beta, gamma, 854).unwrap();
            for u in [-6.0, -1.3, 0.0, 0.4, 2.5, 9.0] {
                let h = 1e-5;
                let d = (l.value(u + h) - l.value(u - h)) / (2.0 * h);
                let d2 = (l.derivative(u + h) - l.derivative(u - h)) / (2.0 * h);
                // Central differences: O(h^2) ~ 1e-10 relative to the scale N beta; rounding
                // eps N beta / h ~ 1e-11 N beta.
                let scale = 854.0 * beta;
                assert!((d - l.derivative(u)).abs() < 1e-8 * scale);
                assert!((d2 - l.second_derivative(u)).abs() < 1e-8 * scale);
            }
            assert!(l.value(800.0).is_finite() && l.derivative(-800.0).is_finite());
            assert!(l.second_derivative(800.0).is_finite());
            let (left, right) = l.plateaus();
            assert_relative_eq!(
                l.value(-700.0 / l.p().abs().max(1.0)),
                left,
                max_relative = 1e-9
            );
            assert_relative_eq!(l.value(700.0), right, max_relative = 1e-9);
        }
    }

    /// Fig. 1 (gamma = 1/3, N = 854): the stationary points and their types, against the
    /// closed form u* = 2 log((1 - beta) / beta) of the nontrivial branch.
    #[test]
    fn figure_1() {
        let gamma = 1.0 / 3.0;
        let cases = [
            (0.25, Phase::Initial),
            (0.5, Phase::Intermediate),
            (0.73, Phase::Intermediate),
            (1.0, Phase::Final),
        ];
        for (case, (beta, phase)) in cases.into_iter().enumerate() {
            let l = Landscape::new(beta, gamma, 854).unwrap();
            assert_eq!(l.phase(), phase, "beta = {beta}");
            let pts = l.stationary_points(-12.0, 12.0, 2400).unwrap();
            let kinds: Vec<_> = pts.iter().map(|p| (p.log_lambda, p.kind)).collect();
            // The same points on Fig. 1's grid, where u = 0 is not a grid node and the
            // degenerate point at beta = 1/2 is found by bisection as well as exactly.
            let fig = l.stationary_points(-8.0, 4.0, 2000).unwrap();
            let fig_kinds: Vec<_> = fig.iter().map(|p| p.kind).collect();
            let in_range: Vec<_> = kinds
                .iter()
                .filter(|(u, _)| (-8.0..=4.0).contains(u))
                .map(|p| p.1)
                .collect();
            assert_eq!(fig_kinds, in_range, "beta = {beta}");
            let ustar = 2.0 * ((1.0 - beta) / beta).ln();
            match case {
                0 => {
                    // Max at 0, min at 2 log 3.
                    assert_eq!(kinds.len(), 2);
                    assert_eq!(kinds[0], (0.0, StationaryKind::Maximum));
                    assert_relative_eq!(kinds[1].0, ustar, max_relative = 1e-12);
                    assert_eq!(kinds[1].1, StationaryKind::Minimum);
                }
                1 => {
                    // Branch and u = 0 merge: one degenerate inflection point.
                    assert_eq!(kinds, vec![(0.0, StationaryKind::Inflection)]);
                }
                2 => {
                    assert_eq!(kinds.len(), 2);
                    assert_relative_eq!(kinds[0].0, ustar, max_relative = 1e-12);
                    assert_eq!(kinds[0].1, StationaryKind::Maximum);
                    assert_eq!(kinds[1], (0.0, StationaryKind::Minimum));
                }
                _ => {
                    // beta = 1: the branch has left to u -> -infinity.
                    assert_eq!(kinds, vec![(0.0, StationaryKind::Minimum)]);
                }
            }
        }
    }

    /// Closed forms of the branch: gamma = 1/3, gamma = 1/2, and gamma -> 0 (Eq. 9.4).
    #[test]
    fn branch_closed_forms() {
        for beta in [0.05, 0.25, 0.5, 0.73, 0.95] {
            let u = branch_log_lambdas(beta, 1.0 / 3.0).unwrap();
            assert_eq!(u.len(), 1);
            // Bisection in log space to the last ulp: 1e-12 relative (absolute near beta = 1/2).
            assert!((u[0] - 2.0 * ((1.0 - beta) / beta).ln()).abs() < 1e-12 * u[0].abs().max(1.0));
            assert_relative_eq!(
                beta_from_gap(u[0], 1.0 / 3.0).unwrap(),
                beta,
                max_relative = 1e-12
            );
        }
        assert!(branch_log_lambdas(1.0, 1.0 / 3.0).unwrap().is_empty());
        // Final phase below beta = 1: the maximum below 0 still exists.
        let l = Landscape::new(0.9, 1.0 / 3.0, 854).unwrap();
        assert_eq!(l.phase(), Phase::Final);
        let pts = l.stationary_points(-12.0, 12.0, 2400).unwrap();
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].kind, StationaryKind::Maximum);
        assert_relative_eq!(
            pts[0].log_lambda,
            2.0 * (0.1f64 / 0.9).ln(),
            max_relative = 1e-12
        );
        assert_eq!(
            (pts[1].log_lambda, pts[1].kind),
            (0.0, StationaryKind::Minimum)
        );
        for beta in [0.1, 0.3, 0.45] {
            let u = branch_log_lambdas(beta, 0.5).unwrap();
            let c = 3.0 * (1.0 / (2.0 * beta)).acosh();
            assert_eq!(u.len(), 2);
            assert_relative_eq!(u[0], -c, max_relative = 1e-12);
            assert_relative_eq!(u[1], c, max_relative = 1e-12);
        }
        assert!(branch_log_lambdas(0.6, 0.5).unwrap().is_empty());
        for beta in [0.25, 0.5, 1.0, 1.47, 4.0] {
            let u = branch_log_lambdas(beta, 1e-10).unwrap();
            // p = -1e-10 shifts the exponents by ~1e-10: the root moves by ~1e-10 |u|.
            assert_relative_eq!(u[0], gap_eq_9_4_as_printed(beta).unwrap(), epsilon = 1e-8);
            assert_relative_eq!(
                beta_from_gap_eq_9_4_as_printed(u[0]).unwrap(),
                beta,
                max_relative = 1e-8
            );
        }
        // The gaps of Sec. 10 (log lambda = -2.3, -2.5, -3.0) through (9.4) as printed give
        // beta = 1.470, 1.604, 1.987 (the paper quotes 1.37, 1.40, 1.47), and through the
        // gamma = 1/3 branch beta = 1 / (1 + e^(u/2)) = 0.760, 0.777, 0.818.
        let printed: Vec<f64> = [-2.3, -2.5, -3.0]
            .iter()
            .map(|&u| beta_from_gap_eq_9_4_as_printed(u).unwrap())
            .collect();
        for (b, e) in printed.iter().zip([1.4698, 1.6039, 1.9872]) {
            assert!((b - e).abs() < 1e-4);
        }
        for (u, e) in [(-2.3, 0.7595), (-2.5, 0.7773), (-3.0, 0.8176)] {
            assert!((beta_from_gap(u, 1.0 / 3.0).unwrap() - e).abs() < 1e-4);
        }
        // (9.4) agrees with the gamma = 1/3 branch only at beta = 1/2 (both give u = 0).
        assert!(gap_eq_9_4_as_printed(0.5).unwrap().abs() < 1e-15);
        assert!((gap_eq_9_4_as_printed(0.25).unwrap() - 2.0 * 3f64.ln()).abs() > 0.8);
    }

    #[test]
    fn phase_boundaries() {
        let gamma = 1.0 / 3.0;
        let bc = global_minimum_boundary_beta(gamma).unwrap();
        assert_relative_eq!(bc, 3f64.sqrt() - 1.0, max_relative = 1e-15);
        // At the boundary -DeltaF(0) equals the left plateau.
        let l = Landscape::new(bc, gamma, 854).unwrap();
        assert_relative_eq!(l.value(0.0), l.plateaus().0, max_relative = 1e-14);
        assert_eq!(
            Landscape::new(bc - 1e-9, gamma, 854).unwrap().phase(),
            Phase::Intermediate
        );
        assert_eq!(
            Landscape::new(bc + 1e-9, gamma, 854).unwrap().phase(),
            Phase::Final
        );
        // u = 0 changes type at beta = 1/2 for every gamma.
        for gamma in [0.05, 1.0 / 3.0, 0.5, 0.8] {
            let below = Landscape::new(0.5 - 1e-3, gamma, 10).unwrap();
            let above = Landscape::new(0.5 + 1e-3, gamma, 10).unwrap();
            assert!(below.second_derivative(0.0) < 0.0);
            assert!(above.second_derivative(0.0) > 0.0);
            assert_relative_eq!(
                beta_from_gap(0.0, gamma).unwrap(),
                stability_exchange_beta()
            );
        }
        assert_eq!(phase_boundaries_as_printed(854), (0.5, 854f64.sqrt() - 1.0));
        assert_relative_eq!(
            global_minimum_boundary_beta(1.0 / 854.0).unwrap(),
            phase_boundaries_as_printed(854).1,
            max_relative = 1e-12
        );
    }
}
