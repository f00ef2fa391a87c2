//! Small statistics for experiment reports: least-squares lines with standard errors, a test
//! of linearity, spreads over seeds and Student-t confidence intervals, and the formatting of a
//! value with the digits its interval supports.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, StudentsT};

/// Errors of the statistics helpers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// Too few points (or x without spread) for the quantity asked for.
    #[error("{what} needs at least {needed} points with distinct x, got {got}")]
    TooFewPoints {
        /// The quantity.
        what: &'static str,
        /// Points needed.
        needed: usize,
        /// Points given.
        got: usize,
    },
    /// x and y differ in length.
    #[error("x has {x} values but y has {y}; expected equal lengths")]
    LengthMismatch {
        /// Length of x.
        x: usize,
        /// Length of y.
        y: usize,
    },
    /// A confidence level outside (0, 1).
    #[error("confidence level {level} is not in (0, 1)")]
    Level {
        /// The level given.
        level: f64,
    },
    /// Degrees of freedom a distribution does not accept.
    #[error("{dof} degrees of freedom; expected a positive number")]
    Dof {
        /// The degrees of freedom.
        dof: f64,
    },
    /// A value is NaN or infinite.
    #[error("value {value} at index {index} is not finite")]
    NonFinite {
        /// Its index.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// The least-squares line y = intercept + slope x with standard errors.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// The slope.
    pub slope: f64,
    /// The intercept.
    pub intercept: f64,
    /// Standard error of the slope (NaN with two points).
    pub slope_stderr: f64,
    /// Standard error of the intercept (NaN with two points).
    pub intercept_stderr: f64,
    /// Coefficient of determination R^2.
    pub r_squared: f64,
    /// Number of points.
    pub n: usize,
}

fn check(x: &[f64], y: &[f64]) -> Result<(), StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch {
            x: x.len(),
            y: y.len(),
        });
    }
    for (index, &value) in x.iter().chain(y).enumerate() {
        if !value.is_finite() {
            return Err(StatsError::NonFinite {
                index: index % x.len().max(1),
                value,
            });
        }
    }
    Ok(())
}

/// Ordinary least squares of y on x (centred sums, so large offsets lose no precision).
pub fn linear_fit(x: &[f64], y: &[f64]) -> Result<LinearFit, StatsError> {
    check(x, y)?;
    let n = x.len();
    let too_few = StatsError::TooFewPoints {
        what: "a line",
        needed: 2,
        got: n,
    };
    if n < 2 {
        return Err(too_few);
    }
    let nf = n as f64;
    let mx = x.iter().sum::<f64>() / nf;
    let my = y.iter().sum::<f64>() / nf;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if !(sxx > 0.0) {
        return Err(too_few);
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - intercept - slope * a).powi(2))
        .sum();
    let (slope_stderr, intercept_stderr) = if n > 2 {
        let s2 = sse / (nf - 2.0);
        ((s2 / sxx).sqrt(), (s2 * (1.0 / nf + mx * mx / sxx)).sqrt())
    } else {
        (f64::NAN, f64::NAN)
    };
    let r_squared = if syy > 0.0 { 1.0 - sse / syy } else { 1.0 };
    Ok(LinearFit {
        slope,
        intercept,
        slope_stderr,
        intercept_stderr,
        r_squared,
        n,
    })
}

/// Mean and spread of a quantity over repeated runs (seeds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation (n - 1 in the denominator; 0 for one value).
    pub std: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

/// The [`Spread`] of a list of values (at least one, all finite).
pub fn spread(values: &[f64]) -> Result<Spread, StatsError> {
    check(values, values)?;
    let n = values.len();
    if n == 0 {
        return Err(StatsError::TooFewPoints {
            what: "a spread",
            needed: 1,
            got: 0,
        });
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Spread {
        mean,
        std,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        n,
    })
}

/// A two-sided confidence interval for the mean of independent runs (seeds), from Student's t
/// distribution with n - 1 degrees of freedom: mean +- t_(1 - (1 - level) / 2, n - 1) s / sqrt(n),
/// with s the sample standard deviation. It assumes the runs are independent draws of one
/// distribution and is exact for normal draws; with five seeds it is wide by design
/// (t_(0.975, 4) = 2.776).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceInterval {
    /// The sample mean.
    pub mean: f64,
    /// The lower end.
    pub lower: f64,
    /// The upper end.
    pub upper: f64,
    /// The confidence level, in (0, 1).
    pub level: f64,
    /// How many runs.
    pub n: usize,
}

impl ConfidenceInterval {
    /// Half the width of the interval.
    pub fn half_width(&self) -> f64 {
        0.5 * (self.upper - self.lower)
    }

    /// Whether `value` lies in the closed interval.
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }
}

/// The Student-t confidence interval at `level` (for example 0.95) for the mean of `values`
/// (at least two, all finite).
pub fn mean_interval(values: &[f64], level: f64) -> Result<ConfidenceInterval, StatsError> {
    check(values, values)?;
    if values.len() < 2 {
        return Err(StatsError::TooFewPoints {
            what: "a confidence interval",
            needed: 2,
            got: values.len(),
        });
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::Level { level });
    }
    let s = spread(values)?;
    let half = t_quantile(0.5 + 0.5 * level, (s.n - 1) as f64)? * s.std / (s.n as f64).sqrt();
    Ok(ConfidenceInterval {
        mean: s.mean,
        lower: s.mean - half,
        upper: s.mean + half,
        level,
        n: s.n,
    })
}

/// The `p` quantile of Student's t distribution with `dof` degrees of freedom.
pub fn t_quantile(p: f64, dof: f64) -> Result<f64, StatsError> {
    let t = StudentsT::new(0.0, 1.0, dof).map_err(|_| StatsError::Dof { dof })?;
    Ok(t.inverse_cdf(p))
}

/// A quantity over seeds: its spread and, with two or more seeds, its 95% confidence interval
/// for the mean.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverSeeds {
    /// Mean, standard deviation, range and count.
    pub spread: Spread,
    /// The 95% Student-t interval for the mean ([`mean_interval`]); None for one seed.
    pub ci95: Option<ConfidenceInterval>,
}

/// The [`OverSeeds`] of the finite values among `values`; None if there are none.
pub fn over_seeds(values: &[f64]) -> Option<OverSeeds> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let spread = spread(&v).ok()?;
    Some(OverSeeds {
        spread,
        ci95: mean_interval(&v, 0.95).ok(),
    })
}

impl std::fmt::Display for OverSeeds {
    /// "mean [lower, upper]" with the digits the interval supports; the mean to four
    /// significant digits for one seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ci95 {
            Some(ci) => f.write_str(&format_interval(ci)),
            None => f.write_str(&format_supported(self.spread.mean, 0.0)),
        }
    }
}

/// A test of whether y is linear in x: the F test of adding a quadratic term to the
/// least-squares line (nested models, 1 and n - 3 degrees of freedom).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearityTest {
    /// F = (SSE_line - SSE_quadratic) / (SSE_quadratic / (n - 3)).
    pub f: f64,
    /// The probability of an F at least this large if y is linear in x with normal errors.
    pub p_value: f64,
    /// Number of points.
    pub n: usize,
}

/// The F test of a line against a parabola through (x, y): at least four points with three
/// distinct x. A small p-value says the relation is not linear.
pub fn linearity_test(x: &[f64], y: &[f64]) -> Result<LinearityTest, StatsError> {
    let line = linear_fit(x, y)?;
    let n = x.len();
    let too_few = StatsError::TooFewPoints {
        what: "a linearity test",
        needed: 4,
        got: n,
    };
    if n < 4 {
        return Err(too_few);
    }
    let sse_line: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - line.intercept - line.slope * a).powi(2))
        .sum();
    let sse_quad = quadratic_sse(x, y).ok_or(too_few)?;
    let dof = (n - 3) as f64;
    let f = if sse_quad > 0.0 {
        ((sse_line - sse_quad).max(0.0)) / (sse_quad / dof)
    } else if sse_line > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let dist = FisherSnedecor::new(1.0, dof).map_err(|_| StatsError::Dof { dof })?;
    let p_value = if f.is_finite() { dist.sf(f) } else { 0.0 };
    Ok(LinearityTest { f, p_value, n })
}

/// The residual sum of squares of the least-squares parabola, on centred and scaled x so that
/// the 3 x 3 normal equations are well conditioned; None if x has fewer than three distinct
/// values.
fn quadratic_sse(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let sx = (x.iter().map(|v| (v - mx).powi(2)).sum::<f64>() / n).sqrt();
    if !(sx > 0.0) {
        return None;
    }
    let t: Vec<f64> = x.iter().map(|v| (v - mx) / sx).collect();
    // Normal equations A c = r for the basis (1, t, t^2), solved by Gaussian elimination with
    // partial pivoting: three unknowns do not need a library.
    let mut a = [[0.0f64; 4]; 3];
    for (ti, yi) in t.iter().zip(y) {
        let basis = [1.0, *ti, ti * ti];
        for r in 0..3 {
            for c in 0..3 {
                a[r][c] += basis[r] * basis[c];
            }
            a[r][3] += basis[r] * yi;
        }
    }
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        a.swap(col, pivot);
        if a[col][col].abs() <= 1e-12 * n {
            return None;
        }
        for row in col + 1..3 {
            let factor = a[row][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
        }
    }
    let mut c = [0.0f64; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| a[row][k] * c[k]).sum();
        c[row] = (a[row][3] - tail) / a[row][row];
    }
    Some(
        t.iter()
            .zip(y)
            .map(|(ti, yi)| (yi - c[0] - c[1] * ti - c[2] * ti * ti).powi(2))
            .sum(),
    )
}

/// `value` rounded to the decimal place of the second significant digit of `uncertainty`, in
/// plain or scientific notation: the digits an uncertainty of that size supports. A zero or
/// non-finite uncertainty gives four significant digits.
pub fn format_supported(value: f64, uncertainty: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let unc = uncertainty.abs();
    // The exponent of the last digit kept.
    let last = if unc > 0.0 && unc.is_finite() {
        unc.log10().floor() as i32 - 1
    } else if value != 0.0 {
        value.abs().log10().floor() as i32 - 3
    } else {
        0
    };
    let magnitude = if value != 0.0 {
        value.abs().log10().floor() as i32
    } else {
        last
    };
    if (-3..5).contains(&magnitude) && last >= -8 {
        if last < 0 {
            format!("{:.*}", (-last) as usize, value)
        } else {
            let step = 10f64.powi(last);
            format!("{:.0}", (value / step).round() * step)
        }
    } else {
        let digits = (magnitude - last).max(0) as usize;
        format!("{:.*e}", digits, value)
    }
}

/// A confidence interval as text: "mean [lower, upper]", each with the digits the interval's
/// half width supports.
pub fn format_interval(ci: &ConfidenceInterval) -> String {
    let h = ci.half_width();
    format!(
        "{} [{}, {}]",
        format_supported(ci.mean, h),
        format_supported(ci.lower, h),
        format_supported(ci.upper, h)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn exact_line_is_recovered() {
        let x: Vec<f64> = (0..10).map(|i| 1000.0 + i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 769.0 + 1.25 * v).collect();
        let f = linear_fit(&x, &y).unwrap();
        // Centred sums: the only error is rounding of O(1e3) numbers, ~1e-13 relative.
        assert_relative_eq!(f.slope, 1.25, max_relative = 1e-12);
        assert_relative_eq!(f.intercept, 769.0, max_relative = 1e-12);
        assert!(f.slope_stderr < 1e-10);
        assert_relative_eq!(f.r_squared, 1.0, max_relative = 1e-12);
    }

    #[test]
    fn standard_errors_match_the_textbook_formula() {
        // y = (1, 3, 2, 5) at x = (0, 1, 2, 3): slope 1.1, intercept 1.1, residuals
        // (-0.1, 0.8, -1.3, 0.6), SSE = 2.7, s^2 = 1.35, Sxx = 5, se(slope) = sqrt(0.27).
        let f = linear_fit(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_relative_eq!(f.slope, 1.1, max_relative = 1e-14);
        assert_relative_eq!(f.intercept, 1.1, max_relative = 1e-14);
        assert_relative_eq!(f.slope_stderr, 0.27f64.sqrt(), max_relative = 1e-14);
        assert_relative_eq!(
            f.intercept_stderr,
            (1.35f64 * (0.25 + 2.25 / 5.0)).sqrt(),
            max_relative = 1e-14
        );
    }

    #[test]
    fn spread_and_errors() {
        let s = spread(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_relative_eq!(s.mean, 2.5);
        assert_relative_eq!(s.std, (5.0f64 / 3.0).sqrt(), max_relative = 1e-15);
        assert_eq!((s.min, s.max, s.n), (1.0, 4.0, 4));
        assert!(spread(&[]).is_err());
        assert!(linear_fit(&[1.0, 1.0], &[0.0, 1.0]).is_err());
        assert!(linear_fit(&[1.0], &[0.0]).is_err());
        assert!(linear_fit(&[1.0, 2.0], &[0.0]).is_err());
        assert!(linear_fit(&[1.0, f64::NAN], &[0.0, 1.0]).is_err());
    }

    #[test]
    fn t_interval_matches_the_table() {
        // Five values with mean 3 and s = sqrt(2.5); t_(0.975, 4) = 2.7764451 (any t table).
        let ci = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95).unwrap();
        let half = 2.776_445_105 * 2.5f64.sqrt() / 5f64.sqrt();
        assert_relative_eq!(ci.mean, 3.0);
        assert_relative_eq!(ci.half_width(), half, max_relative = 1e-8);
        assert!(ci.contains(3.0) && !ci.contains(3.0 + 1.01 * half));
        // t_(0.975, 1) = 12.706205, the Cauchy quantile tan(pi (0.975 - 1/2)).
        assert_relative_eq!(
            t_quantile(0.975, 1.0).unwrap(),
            (0.475 * std::f64::consts::PI).tan(),
            max_relative = 1e-8
        );
        assert!(mean_interval(&[1.0], 0.95).is_err());
        assert!(mean_interval(&[1.0, 2.0], 1.0).is_err());
    }

    #[test]
    fn t_interval_covers_at_its_level() {
        // 2,000 intervals from 5 normal draws each (Box-Muller on a fixed LCG): the coverage of
        // a 95% interval is binomial(2000, 0.95), standard deviation 0.0049, so it lies in
        // [0.93, 0.97] unless the interval is wrong (4 standard deviations).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut covered = 0;
        for _ in 0..2000 {
            let draws: Vec<f64> = (0..5)
                .map(|_| {
                    let (u1, u2) = (uniform(), uniform());
                    7.0 + 3.0 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
                })
                .collect();
            covered += usize::from(mean_interval(&draws, 0.95).unwrap().contains(7.0));
        }
        let coverage = covered as f64 / 2000.0;
        assert!((0.93..=0.97).contains(&coverage), "coverage {coverage}");
    }

    #[test]
    fn linearity_test_tells_a_line_from_a_parabola() {
        let x: Vec<f64> = (0..12).map(|i| i as f64).collect();
        // A line with small alternating noise: no evidence against linearity.
        let line: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| 2.0 - 0.5 * v + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        assert!(linearity_test(&x, &line).unwrap().p_value > 0.05);
        // A parabola with the same noise: overwhelming evidence.
        let parabola: Vec<f64> = line.iter().zip(&x).map(|(y, v)| y + 0.1 * v * v).collect();
        let t = linearity_test(&x, &parabola).unwrap();
        assert!(t.p_value < 1e-6, "{t:?}");
        assert!(linearity_test(&x[..3], &line[..3]).is_err());
    }

    #[test]
    fn values_keep_the_digits_their_interval_supports() {
        assert_eq!(format_supported(147_857.253_2, 1.10e4), "1.48e5");
        assert_eq!(format_supported(0.40851, 0.00708), "0.4085");
        assert_eq!(format_supported(-9.2303, 0.09), "-9.230");
        assert_eq!(format_supported(1296.5627, 25.8), "1297");
        assert_eq!(format_supported(0.001234, 0.0), "0.001234");
        assert_eq!(format_supported(-2.5e-5, 1e-7), "-2.500e-5");
        let ci = ConfidenceInterval {
            mean: 44.9345,
            lower: 37.9,
            upper: 51.9,
            level: 0.95,
            n: 2,
        };
        assert_eq!(format_interval(&ci), "44.9 [37.9, 51.9]");
    }
}
