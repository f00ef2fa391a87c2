//! The first and second laws of learning (Eqs. 7.6, 7.10, 7.11) checked along a recorded
//! trajectory of spectra and beta estimates.

use serde::{Deserialize, Serialize};

use crate::decomposition::{tolerance, Decomposition, EigenvalueSplit, FirstLaw};
use crate::error::ThermoError;
use crate::gaussian::Gaussian;

/// One recorded state: the spectrum of G and the beta estimated for it, in training order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrajectoryPoint<'a> {
    /// The inverse-temperature estimate.
    pub beta: f64,
    /// The eigenvalues of G.
    pub spectrum: &'a [f64],
}

/// Checks the laws of learning along a trajectory.
///
/// All quantities are those of the large-N model (5.14) with m = 0 and its decomposition
/// (6.6)-(7.5), as in Secs. 6-7 and 10.
///
/// - Second law (7.6): the total entropy S = beta (U - F) of each state at its own beta must not
///   rise from one state to the next by more than `entropy_tolerance`. The decomposed entropy
///   S_0 + C (7.2), which Sec. 10 uses, is checked the same way and reported separately.
/// - First law (7.11): between consecutive states, both evaluated at one temperature (the mean of
///   their two beta estimates), dU - T dS_0 - T dC must vanish up to the accuracy of the
///   decomposition ([`FirstLaw::bound`]) plus `first_law_tolerance`. The record also holds the
///   change dF of the exact free energy: the residual equals dF up to that bound, so a
///   violation means the step was not a transition between equilibrium states (dF != 0, the
///   premise of Eq. 7.10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LawCheckerRepr")]
pub struct LawChecker {
    split: EigenvalueSplit,
    entropy_tolerance: f64,
    first_law_tolerance: f64,
}

#[derive(Deserialize)]
struct LawCheckerRepr {
    split: EigenvalueSplit,
    entropy_tolerance: f64,
    first_law_tolerance: f64,
}

impl TryFrom<LawCheckerRepr> for LawChecker {
    type Error = ThermoError;
    fn try_from(r: LawCheckerRepr) -> Result<Self, ThermoError> {
        LawChecker::new(r.split, r.entropy_tolerance, r.first_law_tolerance)
    }
}

impl Default for LawChecker {
    /// The default [`EigenvalueSplit`] and zero tolerances.
    fn default() -> Self {
        Self {
            split: EigenvalueSplit::default(),
            entropy_tolerance: 0.0,
            first_law_tolerance: 0.0,
        }
    }
}

/// The quantities of one state of a trajectory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StateRecord {
    /// Position in the trajectory.
    pub index: usize,
    /// The beta estimate of this state.
    pub beta: f64,
    /// Total entropy S = beta (U - F) of (5.14) at this beta.
    pub entropy: f64,
    /// S_0 + C of the decomposition (7.2).
    pub entropy_decomposed: f64,
    /// U of (6.1).
    pub energy: f64,
    /// F of (6.5).
    pub free_energy: f64,
    /// S_0 of (7.4).
    pub s0: f64,
    /// C of (6.7).
    pub complexity: f64,
    /// N_>.
    pub n_greater: usize,
}

/// The laws between two consecutive states.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Index of the earlier state.
    pub from: usize,
    /// Index of the later state.
    pub to: usize,
    /// S(to) - S(from).
    pub delta_entropy: f64,
    /// (S_0 + C)(to) - (S_0 + C)(from).
    pub delta_entropy_decomposed: f64,
    /// How far S rose beyond the tolerance, if it did: a violation of (7.6).
    pub second_law_violation: Option<f64>,
    /// How far S_0 + C rose beyond the tolerance, if it did.
    pub second_law_violation_decomposed: Option<f64>,
    /// The first law between the two spectra at the mean beta.
    pub first_law: FirstLaw,
    /// How far |dU - T dS_0 - T dC| exceeds its bound plus the tolerance, if it does: a
    /// violation of (7.11).
    pub first_law_violation: Option<f64>,
}

/// Every state and every step of a trajectory, with the violations of both laws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LawReport {
    /// The checker's settings.
    pub checker: LawChecker,
    /// One record per state.
    pub states: Vec<StateRecord>,
    /// One record per pair of consecutive states.
    pub steps: Vec<StepRecord>,
}

impl LawReport {
    /// The steps that violate the second law (7.6) for the total entropy S.
    pub fn second_law_violations(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps
            .iter()
            .filter(|s| s.second_law_violation.is_some())
    }

    /// The steps that violate the first law (7.11).
    pub fn first_law_violations(&self) -> impl Iterator<Item = &StepRecord> {
        self.steps
            .iter()
            .filter(|s| s.first_law_violation.is_some())
    }

    /// Whether no step violates either law (S_0 + C is reported but not counted here).
    pub fn holds(&self) -> bool {
        self.second_law_violations().next().is_none()
            && self.first_law_violations().next().is_none()
    }
}

impl LawChecker {
    /// A checker with the given split and tolerances (both finite and >= 0).
    pub fn new(
        split: EigenvalueSplit,
        entropy_tolerance: f64,
        first_law_tolerance: f64,
    ) -> Result<Self, ThermoError> {
        Ok(Self {
            split,
            entropy_tolerance: tolerance("entropy_tolerance", entropy_tolerance)?,
            first_law_tolerance: tolerance("first_law_tolerance", first_law_tolerance)?,
        })
    }

    /// The split for N_>.
    pub fn split(&self) -> EigenvalueSplit {
        self.split
    }

    /// The allowed rise of the entropy per step.
    pub fn entropy_tolerance(&self) -> f64 {
        self.entropy_tolerance
    }

    /// The allowed excess of the first-law residual over its bound.
    pub fn first_law_tolerance(&self) -> f64 {
        self.first_law_tolerance
    }

    /// Checks both laws along `trajectory` (in training order).
    ///
    /// Errors: an invalid spectrum or beta in any state (the error of the first one found).
    pub fn check(&self, trajectory: &[TrajectoryPoint<'_>]) -> Result<LawReport, ThermoError> {
        let mut states = Vec::with_capacity(trajectory.len());
        for (index, pt) in trajectory.iter().enumerate() {
            let g = Gaussian::new(pt.spectrum)?;
            let dec = Decomposition::new(pt.spectrum, pt.beta, &self.split)?;
            states.push(StateRecord {
                index,
                beta: pt.beta,
                entropy: g.entropy(pt.beta)?,
                entropy_decomposed: dec.entropy,
                energy: g.energy(pt.beta)?,
                free_energy: g.free_energy(pt.beta)?,
                s0: dec.s0,
                complexity: dec.complexity,
                n_greater: dec.n_greater,
            });
        }
        let rise = |d: f64| {
            let excess = d - self.entropy_tolerance;
            (excess > 0.0).then_some(excess)
        };
        let mut steps = Vec::with_capacity(trajectory.len().saturating_sub(1));
        for k in 1..trajectory.len() {
            let (p, q) = (&trajectory[k - 1], &trajectory[k]);
            let (s, t) = (&states[k - 1], &states[k]);
            let beta = 0.5 * (p.beta + q.beta);
            let first_law = FirstLaw::new(p.spectrum, q.spectrum, beta, &self.split)?;
            let v = first_law.violation(self.first_law_tolerance);
            let ds = t.entropy - s.entropy;
            let dsd = t.entropy_decomposed - s.entropy_decomposed;
            steps.push(StepRecord {
                from: k - 1,
                to: k,
                delta_entropy: ds,
                delta_entropy_decomposed: dsd,
                second_law_violation: rise(ds),
                second_law_violation_decomposed: rise(dsd),
                first_law,
                first_law_violation: (v > 0.0).then_some(v),
            });
        }
        Ok(LawReport {
            checker: *self,
            states,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_checked() {
        assert!(LawChecker::new(EigenvalueSplit::default(), -1.0, 0.0).is_err());
        assert!(LawChecker::new(EigenvalueSplit::default(), 0.0, f64::NAN).is_err());
        let c = LawChecker::new(EigenvalueSplit::default(), 0.1, 0.2).unwrap();
        assert_eq!(c.entropy_tolerance(), 0.1);
        assert_eq!(c.first_law_tolerance(), 0.2);
        let bad = [TrajectoryPoint {
            beta: 1.0,
            spectrum: &[1.0, -1.0],
        }];
        assert!(matches!(
            c.check(&bad),
            Err(ThermoError::NonPositiveEigenvalue { index: 1, .. })
        ));
    }

    /// A trajectory that cools at a fixed spectrum obeys the second law; heating it back
    /// violates it by exactly the entropy rise.
    #[test]
    fn second_law_on_cooling_and_heating() {
        let l = [0.05, 0.3, 1.0, 3.0, 12.0];
        let betas = [0.5, 1.0, 2.0, 1.0];
        let traj: Vec<_> = betas
            .iter()
            .map(|&beta| TrajectoryPoint { beta, spectrum: &l })
            .collect();
        let report = LawChecker::default().check(&traj).unwrap();
        assert_eq!(report.states.len(), 4);
        assert_eq!(report.steps.len(), 3);
        let v: Vec<_> = report.second_law_violations().map(|s| s.from).collect();
        assert_eq!(v, vec![2]);
        let step = &report.steps[2];
        assert_eq!(step.second_law_violation, Some(step.delta_entropy));
        // The same spectrum on both sides of a step: dU, dS_0, dC and dF all vanish.
        for s in &report.steps {
            assert_eq!(s.first_law.residual, 0.0);
            assert!(s.first_law_violation.is_none());
        }
        assert!(!report.holds());
        let json = serde_json::to_string(&report).unwrap();
        let back: LawReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    /// A step that changes the free energy far beyond the decomposition's accuracy is
    /// reported as a first-law violation whose size is |residual| - bound.
    #[test]
    fn first_law_violation_has_its_size() {
        let a = [0.01, 0.02, 50.0, 80.0];
        let b = [0.01, 0.02, 500.0, 800.0];
        let traj = [
            TrajectoryPoint {
                beta: 1.0,
                spectrum: &a,
            },
            TrajectoryPoint {
                beta: 1.0,
                spectrum: &b,
            },
        ];
        let report = LawChecker::default().check(&traj).unwrap();
        let s = &report.steps[0];
        let fl = s.first_law;
        assert!(fl.delta_free_energy > 1.0);
        assert_eq!(s.first_law_violation, Some(fl.residual.abs() - fl.bound));
        // Entropy falls as the large eigenvalues grow: no second-law violation.
        assert!(s.second_law_violation.is_none());
    }
}
