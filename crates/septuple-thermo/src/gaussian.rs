//! The Gaussian model of Sec. 5: log Z, U, F, S, the Laplacian of F and the entropy-density
//! factor of Sec. 8, all from a spectrum of G.

use serde::{Deserialize, Serialize};

use crate::error::{check_finite_list, check_spectrum, finite, positive, ThermoError};
use crate::roots::bisect;

/// log(2 pi) / 2, the per-neuron constant of Eqs. (5.11) and (5.14).
pub(crate) const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

/// The Gaussian model of the canonical ensemble (Eqs. 5.5-5.14) for one spectrum of G.
///
/// The bulk loss is the quadratic form of Eq. (5.5), H = (x - `<x>`)^T G (x - `<x>`) / 2 - m x^T x / 2,
/// and the box of the activation's range is replaced by the Gaussian window exp(-x^T x / 2) of
/// Eq. (5.8), so that Z = integral of exp(-beta H - x^T x / 2) over R^N (Eq. 5.9).
///
/// The model holds borrowed slices: the eigenvalues lambda_i of G (positive, any order), the
/// local-objective mass m (default 0) and optionally the components a_i of the mean state in
/// G's eigenbasis, `<x>` = sum_i a_i v_i (Eq. 5.12). Without them every quantity is that of the
/// large-N form (5.13)/(5.14), which is (5.11) with all a_i = 0.
///
/// Every quantity needs 1 - beta m + beta lambda_i > 0 for all i (the integral (5.9) converges
/// exactly then); outside, a [`ThermoError::OutsideDomain`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gaussian<'a> {
    lambda: &'a [f64],
    mean: Option<&'a [f64]>,
    mass: f64,
}

/// Which form of the entropy-density factor sigma(beta) / sigma(0) of Sec. 8 to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DensityFactor {
    /// Eq. (8.11) as printed: log factor -(alpha / 2) sum_i (1 + beta lambda_i)^-2. It is (8.8)
    /// with (8.10) inserted but with the factor beta^2 of beta * DeltaF lost.
    AsPrinted,
    /// Eq. (8.8) with (8.10): log factor alpha beta DeltaF(beta) = -(alpha beta^2 / 2) sum_i
    /// (1 + beta lambda_i)^-2. Solves (8.6) only if DeltaF did not depend on beta.
    ConstantLaplacian,
    /// The solution of Eq. (8.6) at a fixed spectrum: log factor alpha * integral_0^beta
    /// DeltaF(beta') d beta', with DeltaF of (8.10) depending on beta'.
    Integrated,
}

impl<'a> Gaussian<'a> {
    /// The model for eigenvalues `lambda` of G (Eq. 5.10), with m = 0 and no mean components.
    ///
    /// Errors: an empty spectrum, a non-finite or non-positive eigenvalue.
    pub fn new(lambda: &'a [f64]) -> Result<Self, ThermoError> {
        check_spectrum(lambda)?;
        Ok(Self {
            lambda,
            mean: None,
            mass: 0.0,
        })
    }

    /// The same model with local-objective mass `m` (Eq. 3.3); any finite m.
    pub fn with_mass(self, m: f64) -> Result<Self, ThermoError> {
        Ok(Self {
            mass: finite("m", m)?,
            ..self
        })
    }

    /// The same model with mean-state components `a` in G's eigenbasis (Eq. 5.12), one per
    /// eigenvalue, in the order of the spectrum.
    pub fn with_mean_components(self, a: &'a [f64]) -> Result<Self, ThermoError> {
        check_finite_list("mean components a", a, self.lambda.len())?;
        Ok(Self {
            mean: Some(a),
            ..self
        })
    }

    /// The same model without mean components: the large-N form (5.13)/(5.14).
    pub fn without_mean(self) -> Self {
        Self { mean: None, ..self }
    }

    /// The eigenvalues lambda_i.
    pub fn spectrum(&self) -> &'a [f64] {
        self.lambda
    }

    /// The mean components a_i, if given.
    pub fn mean_components(&self) -> Option<&'a [f64]> {
        self.mean
    }

    /// The mass m.
    pub fn mass(&self) -> f64 {
        self.mass
    }

    /// The number of neurons N (the length of the spectrum).
    pub fn n(&self) -> usize {
        self.lambda.len()
    }

    /// The supremum of the admissible beta: 1 / (m - lambda_min) if m > lambda_min, else
    /// infinity. Every beta in (0, this) is in the domain.
    pub fn beta_max(&self) -> f64 {
        let lmin = self.lambda.iter().copied().fold(f64::INFINITY, f64::min);
        if self.mass > lmin {
            1.0 / (self.mass - lmin)
        } else {
            f64::INFINITY
        }
    }

    /// Checks beta and returns c = 1 - beta m and d_i = c + beta lambda_i > 0.
    fn denominators(&self, beta: f64) -> Result<(f64, Vec<f64>), ThermoError> {
        positive("beta", beta)?;
        let c = 1.0 - beta * self.mass;
        let mut d = Vec::with_capacity(self.lambda.len());
        for (index, &l) in self.lambda.iter().enumerate() {
            let di = c + beta * l;
            if !(di > 0.0) {
                return Err(ThermoError::OutsideDomain {
                    index,
                    lambda: l,
                    beta,
                    mass: self.mass,
                    value: di,
                });
            }
            d.push(di);
        }
        Ok((c, d))
    }

    /// log Z of Eq. (5.11): -1/2 sum log(1 - beta m + beta lambda_i) - 1/2 sum (1 - beta m)
    /// beta lambda_i a_i^2 / (1 - beta m + beta lambda_i) + (N/2) log 2 pi. Without mean
    /// components this is Eq. (5.14).
    pub fn log_z(&self, beta: f64) -> Result<f64, ThermoError> {
        let (c, d) = self.denominators(beta)?;
        let mut s = 0.0;
        for (i, &di) in d.iter().enumerate() {
            s -= 0.5 * di.ln();
            if let Some(a) = self.mean {
                s -= 0.5 * c * beta * self.lambda[i] * a[i] * a[i] / di;
            }
        }
        Ok(s + self.n() as f64 * HALF_LOG_2PI)
    }

    /// log det(I (1 - beta m) + beta G) = sum_i log(1 - beta m + beta lambda_i): the
    /// determinant of Eq. (5.9), log Z of (5.14) being -1/2 of it plus (N/2) log 2 pi.
    pub fn log_det(&self, beta: f64) -> Result<f64, ThermoError> {
        let (_, d) = self.denominators(beta)?;
        Ok(d.iter().map(|di| di.ln()).sum())
    }

    /// log Z of the large-N form, Eq. (5.14), whether or not mean components are held.
    pub fn log_z_large_n(&self, beta: f64) -> Result<f64, ThermoError> {
        self.without_mean().log_z(beta)
    }

    /// U(beta) = -d log Z / d beta, Eq. (6.1), analytic:
    /// 1/2 sum (lambda_i - m) / d_i + 1/2 sum a_i^2 lambda_i ((1 - beta m)^2 - beta^2 lambda_i m) / d_i^2
    /// with d_i = 1 - beta m + beta lambda_i. It is the mean of H under the ensemble (5.9).
    pub fn energy(&self, beta: f64) -> Result<f64, ThermoError> {
        let (c, d) = self.denominators(beta)?;
        let m = self.mass;
        let mut u = 0.0;
        for (i, &di) in d.iter().enumerate() {
            let l = self.lambda[i];
            u += 0.5 * (l - m) / di;
            if let Some(a) = self.mean {
                u += 0.5 * a[i] * a[i] * l * (c * c - beta * beta * l * m) / (di * di);
            }
        }
        Ok(u)
    }

    /// -dU/d beta = d^2 log Z / d beta^2, the variance of H under the ensemble (5.9):
    /// 1/2 sum (lambda_i - m)^2 / d_i^2 + sum a_i^2 lambda_i^2 / d_i^3. Never negative, so U
    /// falls as beta grows (used for the second law, Eq. 7.6).
    pub fn energy_variance(&self, beta: f64) -> Result<f64, ThermoError> {
        let (_, d) = self.denominators(beta)?;
        let m = self.mass;
        let mut v = 0.0;
        for (i, &di) in d.iter().enumerate() {
            let l = self.lambda[i];
            v += 0.5 * (l - m) * (l - m) / (di * di);
            if let Some(a) = self.mean {
                v += a[i] * a[i] * l * l / (di * di * di);
            }
        }
        Ok(v)
    }

    /// Free energy F = -log Z / beta, Eq. (6.4); with m = 0 and no mean components this is
    /// Eq. (6.5) (and (8.9)).
    pub fn free_energy(&self, beta: f64) -> Result<f64, ThermoError> {
        Ok(-self.log_z(beta)? / beta)
    }

    /// Total entropy S = beta (U - F) = log Z + beta U = beta^2 dF/d beta, Eq. (7.1) with its
    /// middle expression corrected (the paper prints Z where log Z belongs; see
    /// docs/theory.md). It is the entropy of the ensemble relative to the window measure
    /// exp(-x^T x / 2) of Eq. (5.8).
    pub fn entropy(&self, beta: f64) -> Result<f64, ThermoError> {
        Ok(self.log_z(beta)? + beta * self.energy(beta)?)
    }

    /// The Laplacian of F in the eigenvalues, DeltaF = sum_j d^2 F / d lambda_j^2, Eq. (8.10)
    /// (and 9.1): -(beta / 2) sum_i d_i^-2, exact for (5.14); with mean components (a_i held
    /// fixed) the term -beta (1 - beta m)^2 sum_i a_i^2 / d_i^3 of (5.11) is added.
    pub fn laplacian_f(&self, beta: f64) -> Result<f64, ThermoError> {
        let (c, d) = self.denominators(beta)?;
        let mut s = 0.0;
        for (i, &di) in d.iter().enumerate() {
            s -= 0.5 * beta / (di * di);
            if let Some(a) = self.mean {
                s -= beta * c * c * a[i] * a[i] / (di * di * di);
            }
        }
        Ok(s)
    }

    /// The Laplacian of F in u_i = log lambda_i (the variable of Fig. 1), sum_j d^2 F / d u_j^2:
    /// 1/2 sum_i (1 - beta m) lambda_i / d_i^2, plus 1/2 (1 - beta m)^2 sum_i a_i^2 lambda_i
    /// (d_i - 2 beta lambda_i) / d_i^3 with mean components. Without them and for m < 1/beta it is
    /// positive, unlike (8.10): the sign of the Laplacian depends on the coordinates Q_k of Sec. 8.
    pub fn laplacian_f_log_lambda(&self, beta: f64) -> Result<f64, ThermoError> {
        let (c, d) = self.denominators(beta)?;
        let mut s = 0.0;
        for (i, &di) in d.iter().enumerate() {
            let l = self.lambda[i];
            s += 0.5 * c * l / (di * di);
            if let Some(a) = self.mean {
                s += 0.5 * c * c * a[i] * a[i] * l * (di - 2.0 * beta * l) / (di * di * di);
            }
        }
        Ok(s)
    }

    /// log(sigma(beta, Q) / sigma(0, Q)), the entropy-density factor of Eqs. (8.8)/(8.11) for
    /// learning rate `alpha`, in the chosen [`DensityFactor`] form. Uses the Laplacian of the
    /// large-N form (5.14) (mean components are ignored) with d_i = 1 - beta m + beta lambda_i in
    /// place of 1 + beta lambda_i. Returned as a logarithm: for N ~ 10^3 the factor itself
    /// underflows.
    pub fn log_entropy_density_factor(
        &self,
        beta: f64,
        alpha: f64,
        form: DensityFactor,
    ) -> Result<f64, ThermoError> {
        let alpha = finite("alpha", alpha)?;
        let (_, d) = self.denominators(beta)?;
        let sum_inv_d2: f64 = d.iter().map(|di| 1.0 / (di * di)).sum();
        Ok(match form {
            DensityFactor::AsPrinted => -0.5 * alpha * sum_inv_d2,
            DensityFactor::ConstantLaplacian => -0.5 * alpha * beta * beta * sum_inv_d2,
            DensityFactor::Integrated => {
                // integral_0^beta -(b/2) / (1 + b k)^2 db = -(beta^2 / 2) psi(beta k),
                // k = lambda - m.
                let s: f64 = self
                    .lambda
                    .iter()
                    .map(|&l| psi(beta * (l - self.mass)))
                    .sum();
                -0.5 * alpha * beta * beta * s
            }
        })
    }

    /// The beta at which the model's energy U(beta) of Eq. (6.1) equals `u`: U falls strictly
    /// with beta ([`Gaussian::energy_variance`] > 0), so the inverse is unique. Bisection in
    /// log beta to full precision.
    ///
    /// Errors: `u` outside the range U takes on (0, [`Gaussian::beta_max`]).
    pub fn beta_from_energy(&self, u: f64) -> Result<f64, ThermoError> {
        let u = finite("energy U", u)?;
        let f = |lb: f64| self.energy(lb.exp()).map(|e| e - u).unwrap_or(f64::NAN);
        let bmax = self.beta_max();
        // U at beta -> 0+: 1/2 sum (lambda - m) + 1/2 sum a^2 lambda.
        let u0 = 0.5 * self.lambda.iter().map(|l| l - self.mass).sum::<f64>()
            + self.mean.map_or(0.0, |a| {
                0.5 * a
                    .iter()
                    .zip(self.lambda)
                    .map(|(ai, l)| ai * ai * l)
                    .sum::<f64>()
            });
        let out = |lo: f64| ThermoError::OutOfRange {
            what: "energy U",
            value: u,
            lo,
            hi: u0,
        };
        let energy_at = |lb: f64| self.energy(lb.exp()).unwrap_or(f64::NAN);
        // Lower end of the bracket: small enough that U(beta) > u.
        let mut lo = 0.0f64.min(bmax.ln() - 1.0);
        let mut tries = 0;
        while !(f(lo) > 0.0) {
            lo -= 8.0;
            tries += 1;
            if !(u < u0) || tries > 90 {
                return Err(out(energy_at(lo.max(0.0f64.min(bmax.ln() - 1.0)))));
            }
        }
        // Upper end: large enough that U(beta) < u, approaching beta_max from below (beta is
        // kept below 1e130 so that beta^2 lambda stays finite).
        let mut hi = lo;
        loop {
            let next = if bmax.is_finite() {
                let lb = bmax.ln();
                lb - 0.5 * (lb - hi)
            } else {
                hi + 4.0
            };
            if !(next > hi) || next > 300.0 {
                return Err(out(energy_at(hi)));
            }
            hi = next;
            let v = f(hi);
            if v < 0.0 {
                break;
            }
            if v.is_nan() {
                return Err(out(energy_at(hi)));
            }
        }
        Ok(bisect(f, lo, hi).exp())
    }
}

/// psi(x) = (log(1 + x) + 1 / (1 + x) - 1) / x^2 for x > -1, with psi(0) = 1/2, so that
/// integral_0^beta b / (1 + b k)^2 db = beta^2 psi(beta k).
pub(crate) fn psi(x: f64) -> f64 {
    if x.abs() < 0.1 {
        // sum_{n >= 2} (-1)^n (n - 1) / n x^(n - 2); 20 terms leave < 0.1^18.
        let mut s = 0.0;
        let mut p = 1.0;
        for n in 2..22 {
            let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
            s += sign * (n as f64 - 1.0) / n as f64 * p;
            p *= x;
        }
        s
    } else {
        (x.ln_1p() - x / (1.0 + x)) / (x * x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    const L: [f64; 5] = [0.05, 0.4, 1.0, 2.5, 20.0];
    const A: [f64; 5] = [0.3, -0.2, 0.1, 0.5, -0.4];

    /// Central second-order finite difference of `f` at `x` with step `h`.
    fn d1(f: impl Fn(f64) -> f64, x: f64, h: f64) -> f64 {
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    #[test]
    fn domain_errors() {
        assert!(matches!(Gaussian::new(&[]), Err(ThermoError::Empty { .. })));
        assert!(matches!(
            Gaussian::new(&[1.0, 0.0]),
            Err(ThermoError::NonPositiveEigenvalue { index: 1, .. })
        ));
        assert!(matches!(
            Gaussian::new(&[1.0, -2.0]),
            Err(ThermoError::NonPositiveEigenvalue { index: 1, .. })
        ));
        assert!(matches!(
            Gaussian::new(&[f64::NAN]),
            Err(ThermoError::NonFinite { index: 0, .. })
        ));
        let g = Gaussian::new(&L).unwrap();
        for beta in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                g.log_z(beta),
                Err(ThermoError::Parameter { name: "beta", .. })
            ));
        }
        assert!(matches!(
            g.with_mean_components(&[1.0]),
            Err(ThermoError::LengthMismatch {
                got: 1,
                expected: 5,
                ..
            })
        ));
        assert!(matches!(
            g.with_mean_components(&[0.0, 0.0, f64::INFINITY, 0.0, 0.0]),
            Err(ThermoError::NonFinite { index: 2, .. })
        ));
        assert!(g.with_mass(f64::NAN).is_err());
        // m = 1: beta_max = 1 / (1 - 0.05); just beyond, lambda_0 fails.
        let gm = g.with_mass(1.0).unwrap();
        assert_relative_eq!(gm.beta_max(), 1.0 / 0.95);
        assert!(gm.log_z(1.0).is_ok());
        assert!(matches!(
            gm.energy(1.1),
            Err(ThermoError::OutsideDomain { index: 0, .. })
        ));
        assert!(g.beta_max().is_infinite());
    }

    #[test]
    fn log_z_by_hand() {
        // One eigenvalue: log Z = -1/2 log(1 - b m + b l) - 1/2 (1 - b m) b l a^2 / (...) + log(2 pi)/2.
        let (l, a, m, b) = (2.0, 0.7, 0.3, 0.5);
        let spectrum = [l];
        let g = Gaussian::new(&spectrum)
            .unwrap()
            .with_mass(m)
            .unwrap()
            .with_mean_components(std::slice::from_ref(&a))
            .unwrap();
        let d: f64 = 1.0 - b * m + b * l;
        let expected = -0.5 * d.ln() - 0.5 * (1.0 - b * m) * b * l * a * a / d
            + 0.5 * (2.0 * std::f64::consts::PI).ln();
        assert_relative_eq!(g.log_z(b).unwrap(), expected, max_relative = 1e-15);
        assert_relative_eq!(
            g.log_z_large_n(b).unwrap(),
            -0.5 * d.ln() + 0.5 * (2.0 * std::f64::consts::PI).ln(),
            max_relative = 1e-15
        );
        // (6.5): m = 0, no a.
        let g0 = Gaussian::new(&L).unwrap();
        let f65: f64 = L.iter().map(|l| (1.0 + b * l).ln()).sum::<f64>() / (2.0 * b)
            - 5.0 / (2.0 * b) * (2.0 * std::f64::consts::PI).ln();
        assert_relative_eq!(g0.free_energy(b).unwrap(), f65, max_relative = 1e-14);
    }

    /// U = -d log Z / d beta and the variance = -dU / d beta against central differences,
    /// with and without mass and mean components.
    #[test]
    fn energy_and_variance_are_derivatives() {
        let base = Gaussian::new(&L).unwrap();
        for g in [
            base,
            base.with_mass(0.3).unwrap(),
            base.with_mean_components(&A).unwrap(),
            base.with_mass(-0.4)
                .unwrap()
                .with_mean_components(&A)
                .unwrap(),
        ] {
            for beta in [0.1, 0.7, 2.0] {
                // h = 1e-5 beta: truncation O(h^2 f''') ~ 1e-10 relative, rounding
                // eps |log Z| / h ~ 1e-11 relative; 1e-7 leaves a wide margin.
                let h = 1e-5 * beta;
                let fd = -d1(|b| g.log_z(b).unwrap(), beta, h);
                assert_relative_eq!(g.energy(beta).unwrap(), fd, max_relative = 1e-7);
                let fd2 = -d1(|b| g.energy(b).unwrap(), beta, h);
                assert_relative_eq!(g.energy_variance(beta).unwrap(), fd2, max_relative = 1e-7);
                assert!(g.energy_variance(beta).unwrap() > 0.0);
            }
        }
    }

    #[test]
    fn entropy_is_beta_squared_df() {
        let g = Gaussian::new(&L)
            .unwrap()
            .with_mass(0.2)
            .unwrap()
            .with_mean_components(&A)
            .unwrap();
        for beta in [0.2, 1.0, 3.0] {
            let h = 1e-5 * beta;
            let fd = beta * beta * d1(|b| g.free_energy(b).unwrap(), beta, h);
            // Same argument as for U; S is O(1) here and F / beta^2 up to 25 F.
            assert_relative_eq!(g.entropy(beta).unwrap(), fd, max_relative = 1e-7);
            let s = beta * (g.energy(beta).unwrap() - g.free_energy(beta).unwrap());
            assert_relative_eq!(g.entropy(beta).unwrap(), s, max_relative = 1e-13);
        }
    }

    /// The Laplacian in lambda and in log lambda against central second differences of F.
    #[test]
    fn laplacians_match_second_differences() {
        for (m, with_a) in [(0.0, false), (0.15, true), (-0.2, true)] {
            for beta in [0.3, 1.0, 4.0] {
                let mut fd = 0.0;
                let mut fd_log = 0.0;
                for j in 0..L.len() {
                    let f = |x: f64, log: bool| {
                        let mut l = L;
                        l[j] = if log { L[j] * x.exp() } else { L[j] + x };
                        let g = Gaussian::new(&l).unwrap().with_mass(m).unwrap();
                        let g = if with_a {
                            g.with_mean_components(&A).unwrap()
                        } else {
                            g
                        };
                        g.free_energy(beta).unwrap()
                    };
                    // Step 1e-3 lambda_j: truncation ~ (beta h)^2 / 12 relative <= 1e-8,
                    // rounding ~ eps |F| / h^2 <= 2e-16 * 15 / 2.5e-9 ~ 1.3e-6 absolute.
                    let h = 1e-3 * L[j];
                    fd += (f(h, false) - 2.0 * f(0.0, false) + f(-h, false)) / (h * h);
                    let hu = 1e-4;
                    fd_log += (f(hu, true) - 2.0 * f(0.0, true) + f(-hu, true)) / (hu * hu);
                }
                let g = Gaussian::new(&L).unwrap().with_mass(m).unwrap();
                let g = if with_a {
                    g.with_mean_components(&A).unwrap()
                } else {
                    g
                };
                let lap = g.laplacian_f(beta).unwrap();
                let lap_log = g.laplacian_f_log_lambda(beta).unwrap();
                // Rounding of the smallest-lambda difference dominates (above), against
                // |DeltaF| >= 0.1: allow 2e-5 relative.
                assert_relative_eq!(lap, fd, max_relative = 2e-5);
                assert_relative_eq!(lap_log, fd_log, max_relative = 1e-5, epsilon = 1e-7);
                if m == 0.0 && !with_a {
                    // (8.10) exactly as printed.
                    let printed: f64 =
                        -0.5 * beta * L.iter().map(|l| (1.0 + beta * l).powi(-2)).sum::<f64>();
                    assert_relative_eq!(lap, printed, max_relative = 1e-14);
                    assert!(lap_log > 0.0);
                }
            }
        }
    }

    #[test]
    fn psi_series_and_closed_form_agree() {
        // Both branches near the switch at |x| = 0.1, and the series against the closed form
        // at a point where cancellation in the closed form is still mild (x = 0.05: the
        // closed form loses ~ eps / x^2 ~ 1e-13).
        for x in [-0.099_999, 0.05, 0.099_999] {
            let closed = (f64::ln_1p(x) - x / (1.0 + x)) / (x * x);
            assert_relative_eq!(psi(x), closed, max_relative = 1e-12);
        }
        assert_relative_eq!(psi(0.0), 0.5);
        // psi(x) beta^2 = integral_0^beta b / (1 + b k)^2 db by the trapezoid rule,
        // 2e5 panels: error ~ (beta / n)^2 f'' / 12 ~ 1e-11.
        for (beta, k) in [(2.0, 3.0), (1.5, -0.6), (0.7, 0.01)] {
            let n = 200_000;
            let hstep = beta / n as f64;
            let f = |b: f64| b / (1.0 + b * k).powi(2);
            let mut s = 0.5 * (f(0.0) + f(beta));
            for i in 1..n {
                s += f(i as f64 * hstep);
            }
            assert_relative_eq!(s * hstep, beta * beta * psi(beta * k), max_relative = 1e-9);
        }
    }

    /// The integrated factor solves d sigma / d beta = alpha DeltaF sigma (Eq. 8.6): its
    /// derivative in beta is alpha DeltaF; the other two forms do not.
    #[test]
    fn integrated_density_factor_solves_eq_8_6() {
        let g = Gaussian::new(&L).unwrap().with_mass(0.02).unwrap();
        let alpha = 0.7;
        for beta in [0.3, 1.0, 5.0] {
            let h = 1e-5 * beta;
            let fd = d1(
                |b| {
                    g.log_entropy_density_factor(b, alpha, DensityFactor::Integrated)
                        .unwrap()
                },
                beta,
                h,
            );
            let lap = g.laplacian_f(beta).unwrap();
            assert_relative_eq!(fd, alpha * lap, max_relative = 1e-7);
            let fd_const = d1(
                |b| {
                    g.log_entropy_density_factor(b, alpha, DensityFactor::ConstantLaplacian)
                        .unwrap()
                },
                beta,
                h,
            );
            assert!((fd_const - alpha * lap).abs() > 1e-3 * (alpha * lap).abs());
        }
        // As printed vs (8.8) with (8.10): a factor beta^2 apart.
        let beta = 3.0;
        let p = g
            .log_entropy_density_factor(beta, alpha, DensityFactor::AsPrinted)
            .unwrap();
        let c = g
            .log_entropy_density_factor(beta, alpha, DensityFactor::ConstantLaplacian)
            .unwrap();
        assert_relative_eq!(c, beta * beta * p, max_relative = 1e-14);
        assert_relative_eq!(
            c,
            alpha * beta * g.laplacian_f(beta).unwrap(),
            max_relative = 1e-14
        );
    }

    /// dS/d lambda_i has the sign of m - lambda_i (S per eigenvalue is ((d - 1)/d - log d) / 2
    /// with d = 1 - beta m + beta lambda_i): with m > 0, raising an eigenvalue below m raises S.
    #[test]
    fn entropy_rises_with_an_eigenvalue_below_the_mass() {
        let (m, beta) = (0.5, 1.0);
        let s = |l0: f64| {
            let l = [l0, 2.0];
            Gaussian::new(&l)
                .unwrap()
                .with_mass(m)
                .unwrap()
                .entropy(beta)
                .unwrap()
        };
        assert!(s(0.3) > s(0.2));
        assert!(s(0.9) < s(0.8));
        // At lambda = m the derivative vanishes: a central difference is O(h^2).
        assert!((s(m + 1e-4) - s(m - 1e-4)).abs() < 1e-9);
    }

    #[test]
    fn beta_from_energy_inverts_energy() {
        let base = Gaussian::new(&L).unwrap();
        for g in [
            base,
            base.with_mass(0.5).unwrap(),
            base.with_mean_components(&A).unwrap(),
        ] {
            let bmax = g.beta_max();
            for beta in [1e-3, 0.1, 0.9, 1.8, 40.0] {
                if beta >= bmax {
                    continue;
                }
                let u = g.energy(beta).unwrap();
                let b = g.beta_from_energy(u).unwrap();
                // Bisection to the last ulp of log beta; the relative error in beta is then
                // set by eps |U| / (|dU/d beta| beta).
                let cond = f64::EPSILON * u.abs() / (g.energy_variance(beta).unwrap() * beta);
                assert_relative_eq!(b, beta, max_relative = 1e-12 + 10.0 * cond);
            }
        }
        // Above U(0+) = sum(lambda) / 2 there is no beta.
        let g = Gaussian::new(&L).unwrap();
        let u0 = 0.5 * L.iter().sum::<f64>();
        assert!(matches!(
            g.beta_from_energy(u0 * 1.01),
            Err(ThermoError::OutOfRange { .. })
        ));
        assert!(g.beta_from_energy(-1.0).is_err());
    }
}
