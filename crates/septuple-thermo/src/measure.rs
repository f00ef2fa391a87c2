//! Spectral measures: the thermodynamics of Secs. 5-8 from exact eigenvalues and from
//! quadrature estimates alike, with the estimate's uncertainty carried to the result.
//!
//! Every thermodynamic function of the Gaussian model (5.14) is a trace tr f(G) plus a
//! constant, so one method, [`SpectralMeasure::trace`], is all a spectrum has to provide.
//! Exact eigenvalues (`[f64]`) give a value with zero standard error; a [`Quadrature`] (the
//! nodes and weights of stochastic Lanczos quadrature, one rule per probe vector) gives the
//! mean over probes and the standard error of that mean. Because every quantity is evaluated
//! per probe before averaging, combinations such as S = log Z + beta U carry the correlation
//! of their parts into their standard error.

use serde::{Deserialize, Serialize};

use crate::error::{check_spectrum, finite, positive, ThermoError};
use crate::gaussian::HALF_LOG_2PI;
use crate::summary::ThermoPoint;

/// A value with its standard error and the number of independent samples behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error (0 for an exact value; infinite from a single probe).
    pub stderr: f64,
    /// The number of independent samples (probe vectors) it averages; 1 for an exact value.
    pub samples: usize,
}

impl Estimate {
    /// An exact value: standard error 0, one sample.
    pub fn exact(value: f64) -> Self {
        Estimate {
            value,
            stderr: 0.0,
            samples: 1,
        }
    }

    /// The mean of independent samples and its standard error (sample standard deviation over
    /// sqrt of their number; infinite for one sample, NaN for none).
    pub fn from_samples(samples: &[f64]) -> Self {
        let p = samples.len();
        if p == 0 {
            return Estimate {
                value: f64::NAN,
                stderr: f64::NAN,
                samples: 0,
            };
        }
        let mean = samples.iter().sum::<f64>() / p as f64;
        let stderr = if p == 1 {
            f64::INFINITY
        } else {
            let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (p - 1) as f64;
            (var / p as f64).sqrt()
        };
        Estimate {
            value: mean,
            stderr,
            samples: p,
        }
    }

    /// a * self + b: the standard error scales with |a|.
    pub fn affine(self, a: f64, b: f64) -> Self {
        Estimate {
            value: a * self.value + b,
            stderr: a.abs() * self.stderr,
            samples: self.samples,
        }
    }

    /// Whether `truth` lies within `k` standard errors of the value.
    pub fn covers(&self, truth: f64, k: f64) -> bool {
        (self.value - truth).abs() <= k * self.stderr
    }
}

/// A spectral measure of G: anything that can give tr f(G) = sum_i f(lambda_i) for a function
/// f of the eigenvalue, exactly or as an estimate.
pub trait SpectralMeasure {
    /// N, the dimension of G.
    fn dimension(&self) -> usize;

    /// tr f(G) = sum_i f(lambda_i), with its standard error.
    fn trace(&self, f: &dyn Fn(f64) -> f64) -> Estimate;

    /// The smallest point of the measure's support (the smallest eigenvalue, or the smallest
    /// quadrature node): the domain checks of the Gaussian integral use it.
    fn min_point(&self) -> f64;
}

impl SpectralMeasure for [f64] {
    fn dimension(&self) -> usize {
        self.len()
    }

    /// The sum in index order, standard error 0.
    fn trace(&self, f: &dyn Fn(f64) -> f64) -> Estimate {
        Estimate::exact(self.iter().map(|&l| f(l)).sum())
    }

    fn min_point(&self) -> f64 {
        self.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// One Gauss quadrature rule for the spectral measure of G seen from one probe vector z:
/// z^T f(G) z / |z|^2 ~ sum_j weights_j f(nodes_j) (nodes: Ritz values, weights sum to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuadratureRule {
    /// The nodes theta_j (Ritz values of G), ascending.
    pub nodes: Vec<f64>,
    /// The weights, same order, non-negative, summing to 1.
    pub weights: Vec<f64>,
    /// Whether the Krylov space of the probe was exhausted (the rule is then exact for every f:
    /// z^T f(G) z = |z|^2 sum_j weights_j f(nodes_j) up to rounding).
    pub exact: bool,
}

/// Stochastic Lanczos quadrature: one [`QuadratureRule`] per probe vector z_p with
/// |z_p|^2 = `norm2` (N for Rademacher probes). tr f(G) is estimated by the mean over probes
/// of norm2 * sum_j w_j f(theta_j) (Hutchinson's estimator with each z^T f(G) z by Gauss
/// quadrature); its standard error is the spread over probes divided by sqrt(probes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    n: usize,
    norm2: f64,
    rules: Vec<QuadratureRule>,
}

impl Quadrature {
    /// The measure of an N x N matrix from `rules`, one per probe of squared norm `norm2`.
    /// Errors unless N >= 1, at least one rule, norm2 finite and > 0, every rule with as many
    /// finite positive nodes as finite non-negative weights.
    pub fn new(n: usize, norm2: f64, rules: Vec<QuadratureRule>) -> Result<Self, ThermoError> {
        if n == 0 {
            return Err(ThermoError::Empty { what: "spectrum" });
        }
        if rules.is_empty() {
            return Err(ThermoError::Empty {
                what: "quadrature rules",
            });
        }
        positive("squared probe norm", norm2)?;
        for r in &rules {
            if r.nodes.len() != r.weights.len() {
                return Err(ThermoError::LengthMismatch {
                    what: "quadrature weights",
                    got: r.weights.len(),
                    expected: r.nodes.len(),
                });
            }
            check_spectrum(&r.nodes)?;
            for (index, &value) in r.weights.iter().enumerate() {
                if !(value.is_finite() && value >= 0.0) {
                    return Err(ThermoError::NonFinite {
                        what: "quadrature weights (finite, >= 0)",
                        index,
                        value,
                    });
                }
            }
        }
        Ok(Quadrature { n, norm2, rules })
    }

    /// The rules, one per probe, in probe order.
    pub fn rules(&self) -> &[QuadratureRule] {
        &self.rules
    }

    /// The number of probes.
    pub fn probes(&self) -> usize {
        self.rules.len()
    }

    /// The per-probe estimates norm2 * sum_j w_j f(theta_j) of tr f(G), in probe order.
    pub fn per_probe(&self, f: &dyn Fn(f64) -> f64) -> Vec<f64> {
        self.rules
            .iter()
            .map(|r| {
                self.norm2
                    * r.nodes
                        .iter()
                        .zip(&r.weights)
                        .map(|(&t, &w)| w * f(t))
                        .sum::<f64>()
            })
            .collect()
    }

    /// A smooth function `g` of several traces tr f_k(G) (ratios such as the mean of the
    /// dynamical log lambda), with the delete-one jackknife standard error over probes
    /// (infinite for one probe).
    pub fn jackknife(&self, fs: &[&dyn Fn(f64) -> f64], g: &dyn Fn(&[f64]) -> f64) -> Estimate {
        let per: Vec<Vec<f64>> = fs.iter().map(|f| self.per_probe(f)).collect();
        let p = self.rules.len();
        let sums: Vec<f64> = per.iter().map(|v| v.iter().sum()).collect();
        let full: Vec<f64> = sums.iter().map(|s| s / p as f64).collect();
        let value = g(&full);
        if p < 2 {
            return Estimate {
                value,
                stderr: f64::INFINITY,
                samples: p,
            };
        }
        let mut loo = Vec::with_capacity(p);
        for i in 0..p {
            let t: Vec<f64> = per
                .iter()
                .zip(&sums)
                .map(|(v, s)| (s - v[i]) / (p - 1) as f64)
                .collect();
            loo.push(g(&t));
        }
        let mean = loo.iter().sum::<f64>() / p as f64;
        let var = loo.iter().map(|x| (x - mean).powi(2)).sum::<f64>() * (p - 1) as f64 / p as f64;
        Estimate {
            value,
            stderr: var.sqrt(),
            samples: p,
        }
    }
}

impl SpectralMeasure for Quadrature {
    fn dimension(&self) -> usize {
        self.n
    }

    fn trace(&self, f: &dyn Fn(f64) -> f64) -> Estimate {
        Estimate::from_samples(&self.per_probe(f))
    }

    fn min_point(&self) -> f64 {
        self.rules
            .iter()
            .flat_map(|r| r.nodes.iter().copied())
            .fold(f64::INFINITY, f64::min)
    }
}

/// The thermodynamics of the large-N Gaussian model (5.14) at one point from any
/// [`SpectralMeasure`], every quantity with its standard error. From exact eigenvalues it
/// agrees with [`Gaussian`](crate::Gaussian) to rounding (same formulas, summed per quantity).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThermoEstimate {
    /// The inverse temperature.
    pub beta: f64,
    /// The local-objective mass m.
    pub mass: f64,
    /// N.
    pub n: usize,
    /// log det(I (1 - beta m) + beta G) of Eq. (5.9).
    pub log_det_i_plus_beta_g: Estimate,
    /// log Z, Eq. (5.14): -1/2 log det + (N/2) log 2 pi.
    pub log_z: Estimate,
    /// F = -log Z / beta, Eqs. (6.4)/(6.5).
    pub free_energy: Estimate,
    /// U = -d log Z / d beta = 1/2 tr (G - m) / (I (1 - beta m) + beta G), Eq. (6.1).
    pub energy: Estimate,
    /// S = log Z + beta U, Eq. (7.1) corrected (see [`Gaussian::entropy`](crate::Gaussian::entropy)).
    pub entropy: Estimate,
    /// DeltaF = -(beta / 2) tr (I (1 - beta m) + beta G)^-2, Eqs. (8.10)/(9.1).
    pub laplacian_f: Estimate,
}

impl ThermoEstimate {
    /// Every quantity of (5.14) at `at` (beta, m; the split is not used) from `measure`.
    ///
    /// Errors: beta not finite and > 0, m not finite, or 1 - beta m + beta theta <= 0 at the
    /// smallest support point theta of the measure (the integral (5.9) diverges).
    pub fn new<S: SpectralMeasure + ?Sized>(
        measure: &S,
        at: &ThermoPoint,
    ) -> Result<Self, ThermoError> {
        let beta = positive("beta", at.beta)?;
        let m = finite("mass", at.mass)?;
        let c = 1.0 - beta * m;
        let lmin = measure.min_point();
        let dmin = c + beta * lmin;
        if !(dmin > 0.0) {
            return Err(ThermoError::OutsideDomain {
                index: 0,
                lambda: lmin,
                beta,
                mass: m,
                value: dmin,
            });
        }
        let n = measure.dimension();
        let const_z = n as f64 * HALF_LOG_2PI;
        let log_det = measure.trace(&|l| (c + beta * l).ln());
        let energy = measure.trace(&|l| 0.5 * (l - m) / (c + beta * l));
        let entropy = measure
            .trace(&|l| {
                let d = c + beta * l;
                -0.5 * d.ln() + beta * 0.5 * (l - m) / d
            })
            .affine(1.0, const_z);
        let laplacian_f = measure.trace(&|l| {
            let d = c + beta * l;
            -0.5 * beta / (d * d)
        });
        let log_z = log_det.affine(-0.5, const_z);
        Ok(ThermoEstimate {
            beta,
            mass: m,
            n,
            log_det_i_plus_beta_g: log_det,
            free_energy: log_z.affine(-1.0 / beta, 0.0),
            log_z,
            energy,
            entropy,
            laplacian_f,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gaussian::Gaussian;
    use approx::assert_relative_eq;

    #[test]
    fn exact_measure_agrees_with_gaussian() {
        // Same formulas, summed in the same order up to the grouping of S = log Z + beta U
        // (summed per eigenvalue here): agreement to a few eps times N.
        let l = [0.05, 0.3, 1.0, 1.0, 2.5, 40.0];
        let at = ThermoPoint {
            beta: 0.7,
            mass: 0.2,
            split: Default::default(),
        };
        let e = ThermoEstimate::new(&l[..], &at).unwrap();
        let g = Gaussian::new(&l).unwrap().with_mass(0.2).unwrap();
        assert_eq!(e.log_det_i_plus_beta_g.value, g.log_det(0.7).unwrap());
        assert_relative_eq!(e.log_z.value, g.log_z(0.7).unwrap(), max_relative = 1e-14);
        assert_relative_eq!(
            e.free_energy.value,
            g.free_energy(0.7).unwrap(),
            max_relative = 1e-14
        );
        assert_relative_eq!(e.energy.value, g.energy(0.7).unwrap(), max_relative = 1e-14);
        assert_relative_eq!(
            e.entropy.value,
            g.entropy(0.7).unwrap(),
            max_relative = 1e-13
        );
        assert_relative_eq!(
            e.laplacian_f.value,
            g.laplacian_f(0.7).unwrap(),
            max_relative = 1e-14
        );
        assert_eq!(e.entropy.stderr, 0.0);
        let bad = ThermoPoint {
            beta: 10.0,
            mass: 1.0,
            split: Default::default(),
        };
        assert!(ThermoEstimate::new(&l[..], &bad).is_err());
    }

    #[test]
    fn quadrature_mean_and_spread() {
        // Two probes of a 4 x 4 spectrum; per-probe values 4 * sum w f.
        let rules = vec![
            QuadratureRule {
                nodes: vec![1.0, 2.0],
                weights: vec![0.5, 0.5],
                exact: true,
            },
            QuadratureRule {
                nodes: vec![1.0, 4.0],
                weights: vec![0.75, 0.25],
                exact: true,
            },
        ];
        let q = Quadrature::new(4, 4.0, rules).unwrap();
        let t = q.trace(&|l| l);
        // Per probe: 4 * 1.5 = 6 and 4 * 1.75 = 7.
        assert_relative_eq!(t.value, 6.5);
        assert_relative_eq!(t.stderr, 0.5);
        assert_eq!(t.samples, 2);
        let j = q.jackknife(&[&|l| l], &|x| x[0]);
        // The jackknife of a mean is the usual standard error.
        assert_relative_eq!(j.stderr, 0.5, max_relative = 1e-14);
        assert_eq!(q.min_point(), 1.0);
        let bad = QuadratureRule {
            nodes: vec![1.0],
            weights: vec![],
            exact: false,
        };
        assert!(Quadrature::new(4, 4.0, vec![bad]).is_err());
        assert!(Quadrature::new(4, 4.0, vec![]).is_err());
    }
}
