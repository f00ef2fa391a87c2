//! What is read from the spectrum (Secs. 6-10): traces, moments, complexities, the gap.

use serde::{Deserialize, Serialize};

use crate::error::SpectralError;

/// The default dynamical tolerance: eigenvalues with |log lambda| at or below this are "not
/// dynamical" (numerically 1: the N - 2r eigenvalues that the structure of G fixes at 1 come out
/// within ~1e-15 of it).
pub const DYNAMICAL_TOLERANCE: f64 = 1e-8;

/// How many of the largest log lambda a complexity C_n of Eq. (10.5) sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopCount {
    /// The n largest (C_20 of Fig. 6: `Largest(20)`).
    Largest(usize),
    /// All but the k smallest (C_834 = C_(N-20) of Fig. 6 for N = 854: `AllBut(20)`).
    AllBut(usize),
}

impl TopCount {
    /// The n of C_n for N eigenvalues (at most N).
    pub fn resolve(self, n_total: usize) -> usize {
        match self {
            TopCount::Largest(n) => n.min(n_total),
            TopCount::AllBut(k) => n_total.saturating_sub(k),
        }
    }

    /// The name of C_n for N eigenvalues, with n as a number: `C_20`, `C_834`.
    pub fn label(self, n_total: usize) -> String {
        format!("C_{}", self.resolve(n_total))
    }
}

/// The gap rule of [`gap`]: the widest space between neighbouring negative dynamical log lambda,
/// the lowest fraction of them skipped as lower neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GapRule {
    /// The fraction of the negative dynamical log lambda (at least one of them) that may not be
    /// the lower neighbour of the gap, so a single far outlier is not "the smallest
    /// eigenvalues". In [0, 1).
    pub skip_lowest: f64,
}

impl Default for GapRule {
    /// Skip the lowest 1 %.
    fn default() -> Self {
        GapRule { skip_lowest: 0.01 }
    }
}

/// The choices a [`SpectrumSummary`] depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryOptions {
    /// Eigenvalues with |log lambda| at or below this are not dynamical (finite, >= 0).
    pub dynamical_tolerance: f64,
    /// The complexities C_n of Eq. (10.5) to compute.
    pub complexities: Vec<TopCount>,
    /// How the gap is found.
    pub gap: GapRule,
}

impl Default for SummaryOptions {
    /// Tolerance [`DYNAMICAL_TOLERANCE`], C_20 and C_(N-20) (Fig. 6), the default gap rule.
    fn default() -> Self {
        SummaryOptions {
            dynamical_tolerance: DYNAMICAL_TOLERANCE,
            complexities: vec![TopCount::Largest(20), TopCount::AllBut(20)],
            gap: GapRule::default(),
        }
    }
}

impl SummaryOptions {
    fn check(&self) -> Result<(), SpectralError> {
        if !(self.dynamical_tolerance.is_finite() && self.dynamical_tolerance >= 0.0) {
            return Err(SpectralError::Parameter {
                what: "dynamical_tolerance",
                value: self.dynamical_tolerance.to_string(),
                expected: "a finite number >= 0",
            });
        }
        if !(self.gap.skip_lowest >= 0.0 && self.gap.skip_lowest < 1.0) {
            return Err(SpectralError::Parameter {
                what: "gap.skip_lowest",
                value: self.gap.skip_lowest.to_string(),
                expected: "a fraction in [0, 1)",
            });
        }
        Ok(())
    }
}

/// One complexity C_n of Eq. (10.5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Complexity {
    /// Which eigenvalues were summed.
    pub count: TopCount,
    /// n: how many of the largest log lambda were summed.
    pub n: usize,
    /// C_n.
    pub value: f64,
}

/// Everything the paper reads from one spectrum, in natural logarithms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpectrumSummary {
    /// N.
    pub n_neurons: usize,
    /// All log lambda_i, ascending.
    pub log_lambda: Vec<f64>,
    /// sum log lambda = log det G (zero for feedforward networks, Eqs. 7.7-7.8).
    pub sum_log_lambda: f64,
    /// The tolerance that defines the dynamical eigenvalues.
    pub dynamical_tolerance: f64,
    /// The dynamical log lambda (|log lambda| > tolerance), ascending.
    pub dynamical: Vec<f64>,
    /// Their number.
    pub n_dynamical: usize,
    /// Raw traces mu_k = Tr (log G)^k for k = 1..4 (mu_2, mu_3 of Eqs. 9.5, 9.6).
    pub traces: [f64; 4],
    /// mu_2 = Tr (log G)^2 (Eq. 9.5).
    pub mu2: f64,
    /// mu_3 = Tr (log G)^3 (Eq. 9.6).
    pub mu3: f64,
    /// Mean of the dynamical log lambda.
    pub mean: f64,
    /// Variance of the dynamical log lambda (population): mu_2 normalised.
    pub variance: f64,
    /// Skewness of the dynamical log lambda (third central moment / variance^1.5): mu_3
    /// normalised.
    pub skewness: f64,
    /// The complexities C_n of Eq. (10.5) asked for, in the order of the options.
    pub complexities: Vec<Complexity>,
    /// The gap between the smallest eigenvalues and the rest ([`gap`]).
    pub gap: Option<Gap>,
}

/// A gap in the sorted log lambda (Sec. 10, the arrows of Fig. 5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// Its position: the midpoint of the two eigenvalues around it.
    pub log_lambda: f64,
    /// The largest log lambda below it.
    pub below: f64,
    /// The smallest log lambda above it.
    pub above: f64,
    /// How many eigenvalues lie below it.
    pub n_below: usize,
}

impl SpectrumSummary {
    /// The summary of the eigenvalues `lambda` of G (any order, all positive) with the default
    /// [`SummaryOptions`].
    pub fn new(lambda: &[f64]) -> Result<Self, SpectralError> {
        Self::with_options(lambda, &SummaryOptions::default())
    }

    /// The summary of the eigenvalues `lambda` of G (any order, all positive).
    pub fn with_options(lambda: &[f64], options: &SummaryOptions) -> Result<Self, SpectralError> {
        options.check()?;
        let mut log_lambda = log_spectrum(lambda)?;
        log_lambda.sort_by(f64::total_cmp);
        let n = log_lambda.len();
        let tol = options.dynamical_tolerance;
        let dynamical: Vec<f64> = log_lambda
            .iter()
            .copied()
            .filter(|u| u.abs() > tol)
            .collect();
        let traces = traces(&log_lambda);
        let (mean, variance, skewness) = moments(&dynamical);
        let complexities = options
            .complexities
            .iter()
            .map(|&count| {
                let k = count.resolve(n);
                Ok(Complexity {
                    count,
                    n: k,
                    value: complexity_n(&log_lambda, k, n)?,
                })
            })
            .collect::<Result<Vec<_>, SpectralError>>()?;
        Ok(SpectrumSummary {
            n_neurons: n,
            sum_log_lambda: log_lambda.iter().sum(),
            dynamical_tolerance: tol,
            n_dynamical: dynamical.len(),
            mu2: traces[1],
            mu3: traces[2],
            traces,
            mean,
            variance,
            skewness,
            complexities,
            gap: gap(&dynamical, options.gap),
            dynamical,
            log_lambda,
        })
    }

    /// The complexity C_n of Eq. (10.5) for `count`, if it was asked for.
    pub fn complexity(&self, count: TopCount) -> Option<f64> {
        self.complexities
            .iter()
            .find(|c| c.count == count)
            .map(|c| c.value)
    }
}

/// log lambda_i, same order; errors on a non-positive or non-finite eigenvalue.
pub fn log_spectrum(lambda: &[f64]) -> Result<Vec<f64>, SpectralError> {
    if lambda.is_empty() {
        return Err(SpectralError::Parameter {
            what: "spectrum length",
            value: "0".into(),
            expected: "at least one eigenvalue",
        });
    }
    lambda
        .iter()
        .enumerate()
        .map(|(index, &value)| {
            if value.is_finite() && value > 0.0 {
                Ok(value.ln())
            } else {
                Err(SpectralError::Singular { index, value })
            }
        })
        .collect()
}

/// Raw traces mu_k = Tr (log G)^k = sum_i (log lambda_i)^k for k = 1..4 (Eqs. 9.5, 9.6).
pub fn traces(log_lambda: &[f64]) -> [f64; 4] {
    let mut t = [0.0; 4];
    for &u in log_lambda {
        let mut p = u;
        for tk in t.iter_mut() {
            *tk += p;
            p *= u;
        }
    }
    t
}

/// Mean, variance and skewness of a sample (population moments; zeros for an empty sample,
/// zero skewness when the variance vanishes).
pub fn moments(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let m3 = values.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / n;
    let skew = if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 };
    (mean, m2, skew)
}

/// C_n of Eq. (10.5): -1/2 times the sum of the n largest log lambda, plus (N/2) log 2 pi with
/// N = `n_total` (the paper's constant: N, not n; it only shifts C_n).
pub fn complexity_n(log_lambda: &[f64], n: usize, n_total: usize) -> Result<f64, SpectralError> {
    if n > log_lambda.len() {
        return Err(SpectralError::Parameter {
            what: "n of C_n",
            value: n.to_string(),
            expected: "at most the number of eigenvalues",
        });
    }
    let mut sorted = log_lambda.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let top: f64 = sorted[..n].iter().sum();
    Ok(-0.5 * top + 0.5 * n_total as f64 * (2.0 * std::f64::consts::PI).ln())
}

/// Counts of `values` in the bins [e_0, e_1), [e_1, e_2), ..., the last bin closed; values
/// outside are not counted. Errors unless the edges are finite, ascending and at least two.
pub fn histogram(values: &[f64], edges: &[f64]) -> Result<Vec<usize>, SpectralError> {
    if edges.len() < 2
        || edges.iter().any(|e| !e.is_finite())
        || edges.windows(2).any(|w| !(w[0] < w[1]))
    {
        return Err(SpectralError::Parameter {
            what: "histogram edges",
            value: format!("{edges:?}"),
            expected: "at least two finite, strictly ascending edges",
        });
    }
    let mut counts = vec![0; edges.len() - 1];
    let last = edges.len() - 1;
    for &v in values {
        if v < edges[0] || v > edges[last] || !v.is_finite() {
            continue;
        }
        let k = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(last - 1);
        counts[k] += 1;
    }
    Ok(counts)
}

/// The gap between the smallest eigenvalues and the rest (Sec. 10): among the negative
/// dynamical log lambda (ascending, `dynamical`), the widest space between neighbours u_j and
/// u_(j+1) with u_(j+1) < 0, ignoring the lowest `rule.skip_lowest` of the spectrum's negative
/// part as the lower neighbour (at least the lowest one) so that a single far outlier does not
/// count as "the smallest eigenvalues". None with fewer than three negative eigenvalues.
pub fn gap(dynamical: &[f64], rule: GapRule) -> Option<Gap> {
    let neg: Vec<f64> = dynamical.iter().copied().filter(|&u| u < 0.0).collect();
    if neg.len() < 3 {
        return None;
    }
    // floor(fraction * count), at least one. For the default 0.01 this is count / 100 exactly:
    // the double 0.01 exceeds 1/100, so the product is never rounded below an integer it
    // reaches, and it stays below the next one for any count of eigenvalues.
    let skip = ((rule.skip_lowest * neg.len() as f64) as usize).clamp(1, neg.len() - 2);
    let mut best: Option<(f64, usize)> = None;
    for j in skip..neg.len() - 1 {
        let width = neg[j + 1] - neg[j];
        if best.is_none_or(|(w, _)| width > w) {
            best = Some((width, j));
        }
    }
    best.map(|(_, j)| Gap {
        log_lambda: 0.5 * (neg[j] + neg[j + 1]),
        below: neg[j],
        above: neg[j + 1],
        n_below: j + 1,
    })
}

/// A second rule for the gap of Sec. 10, independent of [`gap`]: the two-means (Otsu)
/// threshold of the negative dynamical log lambda (ascending, `dynamical`), the split into a
/// lower and an upper group that maximises the between-group variance
/// n_1 n_2 (mean_2 - mean_1)^2, each group at least one eigenvalue. Where the spectrum has a
/// clear gap both rules find it; where it does not they may disagree, and the disagreement
/// says the gap is not well defined. None with fewer than three negative eigenvalues.
pub fn gap_two_means(dynamical: &[f64]) -> Option<Gap> {
    let neg: Vec<f64> = dynamical.iter().copied().filter(|&u| u < 0.0).collect();
    if neg.len() < 3 {
        return None;
    }
    let n = neg.len();
    let total: f64 = neg.iter().sum();
    let mut lower_sum = 0.0;
    let mut best: Option<(f64, usize)> = None;
    for (j, &u) in neg[..n - 1].iter().enumerate() {
        lower_sum += u;
        let (n1, n2) = ((j + 1) as f64, (n - j - 1) as f64);
        let d = (total - lower_sum) / n2 - lower_sum / n1;
        let between = n1 * n2 * d * d;
        if best.is_none_or(|(b, _)| between > b) {
            best = Some((between, j));
        }
    }
    best.map(|(_, j)| Gap {
        log_lambda: 0.5 * (neg[j] + neg[j + 1]),
        below: neg[j],
        above: neg[j + 1],
        n_below: j + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn traces_and_moments_by_hand() {
        let u = [-1.0, 0.0, 2.0];
        assert_eq!(traces(&u), [1.0, 5.0, 7.0, 17.0]);
        let (m, v, s) = moments(&[1.0, 2.0, 3.0, 10.0]);
        assert_relative_eq!(m, 4.0);
        assert_relative_eq!(v, (9.0 + 4.0 + 1.0 + 36.0) / 4.0);
        assert_relative_eq!(s, ((-27.0 - 8.0 - 1.0 + 216.0) / 4.0) / v.powf(1.5));
    }

    #[test]
    fn complexity_by_hand() {
        let u = [-2.0, -1.0, 0.5, 1.5];
        let c = 2.0 * (2.0 * std::f64::consts::PI).ln();
        assert_relative_eq!(complexity_n(&u, 2, 4).unwrap(), -1.0 + c);
        assert_relative_eq!(complexity_n(&u, 0, 4).unwrap(), c);
        assert!(complexity_n(&u, 5, 4).is_err());
    }

    #[test]
    fn histogram_bins() {
        let h = histogram(&[0.0, 0.5, 1.0, 1.5, 2.0, 3.0, -1.0], &[0.0, 1.0, 2.0]).unwrap();
        assert_eq!(h, vec![2, 3]);
        assert!(histogram(&[1.0], &[1.0]).is_err());
        assert!(histogram(&[1.0], &[2.0, 1.0]).is_err());
    }

    #[test]
    fn gap_finds_the_widest_space_below_zero() {
        let mut u = vec![-6.0, -3.2, -3.1, -3.0];
        u.extend((0..50).map(|k| -1.5 + k as f64 * 0.02));
        let g = gap(&u, GapRule::default()).unwrap();
        // The outlier at -6 is skipped as a lower neighbour; the gap is between -3.0 and -1.5.
        assert_relative_eq!(g.log_lambda, -2.25);
        assert_eq!(g.n_below, 4);
        assert!(gap(&[-1.0, 2.0], GapRule::default()).is_none());
        // Skipping nothing but the lowest still skips the outlier; skipping 90 % moves the gap
        // into the dense part.
        assert_eq!(gap(&u, GapRule { skip_lowest: 0.0 }).unwrap().n_below, 4);
        assert!(gap(&u, GapRule { skip_lowest: 0.9 }).unwrap().n_below > 4);
    }

    #[test]
    fn summary_fields() {
        let lambda = [0.1, 0.5, 1.0, 2.0, 10.0];
        let s = SpectrumSummary::new(&lambda).unwrap();
        assert_eq!(s.n_dynamical, 4);
        let u: Vec<f64> = lambda.iter().map(|l: &f64| l.ln()).collect();
        assert_relative_eq!(s.mu2, u.iter().map(|v| v * v).sum::<f64>());
        assert_relative_eq!(s.sum_log_lambda, u.iter().sum::<f64>());
        assert!(SpectrumSummary::new(&[1.0, -1.0]).is_err());
        assert!(SpectrumSummary::new(&[]).is_err());
        let u_sorted = {
            let mut v = u.clone();
            v.sort_by(f64::total_cmp);
            v
        };
        assert_eq!(
            s.complexity(TopCount::Largest(20)),
            complexity_n(&u_sorted, 5, 5).ok()
        );
        assert_eq!(s.complexity(TopCount::AllBut(2)), None);
        let opts = SummaryOptions {
            dynamical_tolerance: 0.8,
            complexities: vec![TopCount::AllBut(2)],
            ..SummaryOptions::default()
        };
        let t = SpectrumSummary::with_options(&lambda, &opts).unwrap();
        // |log lambda| > 0.8: 0.1 (-2.30), 10 (2.30); 0.5 (-0.69) and 2 (0.69) are not.
        assert_eq!(t.n_dynamical, 2);
        assert_eq!(t.complexities[0].n, 3);
        assert_eq!(TopCount::AllBut(20).label(854), "C_834");
        let bad = SummaryOptions {
            dynamical_tolerance: f64::NAN,
            ..SummaryOptions::default()
        };
        assert!(SpectrumSummary::with_options(&lambda, &bad).is_err());
        let json = serde_json::to_string(&s).unwrap();
        let back: SpectrumSummary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn the_two_gap_rules_agree_on_a_clear_gap_and_can_disagree() {
        // Ten eigenvalues near -3, twenty spread over [-0.6, -0.05]: both rules split after
        // the tenth.
        let mut u: Vec<f64> = (0..10).map(|i| -3.0 - 0.01 * i as f64).collect();
        u.extend((0..20).map(|i| -0.6 + 0.55 * i as f64 / 19.0));
        u.sort_by(f64::total_cmp);
        let a = gap(&u, GapRule::default()).unwrap();
        let b = gap_two_means(&u).unwrap();
        assert_eq!((a.n_below, b.n_below), (10, 10));
        assert_relative_eq!(a.log_lambda, b.log_lambda);
        // Evenly spaced values with one wider space near the bottom: the widest-space rule
        // takes the space, two-means splits the mass near the middle.
        let mut v: Vec<f64> = (0..40).map(|i| -4.0 + 0.1 * i as f64).collect();
        v[1] -= 0.3;
        v[0] -= 0.3;
        v.sort_by(f64::total_cmp);
        let (a, b) = (
            gap(&v, GapRule { skip_lowest: 0.0 }).unwrap(),
            gap_two_means(&v).unwrap(),
        );
        assert_eq!(a.n_below, 2);
        assert!(b.n_below > 10, "{b:?}");
        assert!(gap_two_means(&[-1.0, -0.5]).is_none());
    }
}
