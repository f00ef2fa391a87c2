//! Every quantity of Secs. 5-8 at one beta, in one serialisable record.

use serde::{Deserialize, Serialize};

use crate::decomposition::{Decomposition, EigenvalueSplit};
use crate::error::ThermoError;
use crate::gaussian::Gaussian;

/// The thermodynamics of one spectrum at one beta.
///
/// `log_z` is the large-N form (5.14) and `log_z_full` the full (5.11) with the mean components
/// (equal to `log_z` without them); free energy, energy, entropy and Laplacian are those of
/// (5.14), the form Secs. 6-10 work with, at mass m. The decomposition fields (`n_greater`,
/// `n_less`, `complexity`, `s0`, ...) are those of Eqs. (6.6)-(7.5), which the paper writes for
/// m = 0; they do not depend on m.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermoSummary {
    /// The inverse temperature.
    pub beta: f64,
    /// The local-objective mass m.
    pub mass: f64,
    /// The number of neurons N.
    pub n: usize,
    /// log Z, Eq. (5.14).
    pub log_z: f64,
    /// log det(I (1 - beta m) + beta G) of Eq. (5.9): sum log(1 - beta m + beta lambda_i).
    pub log_det_i_plus_beta_g: f64,
    /// log Z, Eq. (5.11), with the mean components if given.
    pub log_z_full: f64,
    /// F = -log Z / beta, Eqs. (6.4)/(6.5).
    pub free_energy: f64,
    /// U = -d log Z / d beta, Eq. (6.1).
    pub energy: f64,
    /// S = beta (U - F), Eq. (7.1) corrected.
    pub entropy: f64,
    /// DeltaF in the eigenvalues, Eq. (8.10).
    pub laplacian_f: f64,
    /// N_>, Eqs. (6.6)-(7.5).
    pub n_greater: usize,
    /// N_<, Eq. (8.12).
    pub n_less: usize,
    /// The thresholds used for N_> and N_<.
    pub threshold: EigenvalueSplit,
    /// Complexity C, Eq. (6.7).
    pub complexity: f64,
    /// Thermodynamic entropy S_0, Eq. (7.4).
    pub s0: f64,
    /// Thermodynamic free energy A(beta), Eq. (6.8).
    pub thermodynamic_free_energy: f64,
    /// U ~ N_> / (2 beta), Eqs. (7.5), (10.1).
    pub energy_decomposed: f64,
}

/// Where thermodynamics is evaluated: the inverse temperature beta (Eq. 4.10), the
/// local-objective mass m (Eq. 3.3) and the split of the eigenvalues into large and small for
/// N_> and N_< (Eqs. 6.6-8.12).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermoPoint {
    /// The inverse temperature beta (> 0, finite).
    pub beta: f64,
    /// The local-objective mass m (finite).
    pub mass: f64,
    /// The thresholds for N_> and N_<.
    pub split: EigenvalueSplit,
}

impl ThermoPoint {
    /// beta with m = 0 and the default split.
    pub fn at_beta(beta: f64) -> Self {
        ThermoPoint {
            beta,
            mass: 0.0,
            split: EigenvalueSplit::default(),
        }
    }
}

impl ThermoSummary {
    /// Every quantity for eigenvalues `lambda` of G and optional mean components `mean`
    /// (Eq. 5.12, one per eigenvalue in the same order) at the point `at`.
    ///
    /// Errors: those of [`Gaussian`] (invalid spectrum, beta, m, mean components, or
    /// 1 - beta m + beta lambda_i <= 0).
    pub fn new(
        lambda: &[f64],
        mean: Option<&[f64]>,
        at: &ThermoPoint,
    ) -> Result<Self, ThermoError> {
        let (beta, m, threshold) = (at.beta, at.mass, &at.split);
        let g = Gaussian::new(lambda)?.with_mass(m)?;
        let full = match mean {
            Some(a) => g.with_mean_components(a)?,
            None => g,
        };
        let dec = Decomposition::new(lambda, beta, threshold)?;
        Ok(Self {
            beta,
            mass: m,
            n: lambda.len(),
            log_z: g.log_z(beta)?,
            log_det_i_plus_beta_g: g.log_det(beta)?,
            log_z_full: full.log_z(beta)?,
            free_energy: g.free_energy(beta)?,
            energy: g.energy(beta)?,
            entropy: g.entropy(beta)?,
            laplacian_f: g.laplacian_f(beta)?,
            n_greater: dec.n_greater,
            n_less: dec.n_less,
            threshold: *threshold,
            complexity: dec.complexity,
            s0: dec.s0,
            thermodynamic_free_energy: dec.thermodynamic_free_energy,
            energy_decomposed: dec.energy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(beta: f64, mass: f64) -> ThermoPoint {
        ThermoPoint {
            beta,
            mass,
            split: EigenvalueSplit::default(),
        }
    }

    #[test]
    fn summary_collects_the_parts_and_round_trips() {
        let l = [0.1, 0.5, 2.0, 10.0];
        let a = [0.2, 0.0, -0.1, 0.3];
        let s = ThermoSummary::new(&l, Some(&a), &point(1.3, 0.05)).unwrap();
        let g = Gaussian::new(&l).unwrap().with_mass(0.05).unwrap();
        assert_eq!(s.log_z, g.log_z(1.3).unwrap());
        assert_eq!(
            s.log_z_full,
            g.with_mean_components(&a).unwrap().log_z(1.3).unwrap()
        );
        assert!(s.log_z_full < s.log_z);
        // (5.14): log Z = -1/2 log det + (N/2) log 2 pi.
        let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        approx::assert_relative_eq!(
            s.log_z,
            -0.5 * s.log_det_i_plus_beta_g + 4.0 * half_log_2pi,
            max_relative = 1e-14
        );
        assert_eq!(s.n_greater, 2);
        assert_eq!(s.n_less, 2);
        let back: ThermoSummary =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let none = ThermoSummary::new(&l, None, &point(1.3, 0.05)).unwrap();
        assert_eq!(none.log_z, none.log_z_full);
        assert!(ThermoSummary::new(&l, Some(&a[..2]), &point(1.3, 0.0)).is_err());
        assert!(ThermoSummary::new(&l, None, &ThermoPoint::at_beta(-1.0)).is_err());
    }
}
