//! Small statistics for experiment reports: least-squares lines and spreads over seeds.

use serde::{Deserialize, Serialize};

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
}
