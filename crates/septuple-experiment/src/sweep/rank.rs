//! Rank correlation with an interval and a permutation test: the statistics the sweep report
//! uses to ask whether a spectral quantity orders architectures the way it orders their
//! learning.
//!
//! Written here rather than taken from a crate: statrs (already a dependency, for the t and F
//! quantiles) has no rank correlation or permutation test, and the three functions are a few
//! lines each on top of its normal quantile.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::stats::StatsError;

/// Ranks 1..=n of `x`, ties sharing the mean of the ranks they span.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        // Ties are exact equality: equal values share a rank, however close others are.
        while j + 1 < order.len() && x[order[j + 1]].total_cmp(&x[order[i]]).is_eq() {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            r[o] = mean_rank;
        }
        i = j + 1;
    }
    r
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

fn check(x: &[f64], y: &[f64]) -> Result<(), StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch {
            x: x.len(),
            y: y.len(),
        });
    }
    if x.len() < 3 {
        return Err(StatsError::TooFewPoints {
            what: "a rank correlation",
            needed: 3,
            got: x.len(),
        });
    }
    for (index, &value) in x.iter().chain(y).enumerate() {
        if !value.is_finite() {
            let index = index % x.len();
            return Err(StatsError::NonFinite { index, value });
        }
    }
    Ok(())
}

/// Spearman's rank correlation rho of `x` and `y` (the Pearson correlation of their ranks,
/// ties at mean ranks); None when either is constant. Needs at least 3 finite pairs.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Option<f64>, StatsError> {
    check(x, y)?;
    Ok(pearson(&ranks(x), &ranks(y)))
}

/// A two-sided `level` interval for Spearman's rho from n pairs: Fisher's z = atanh(rho) with
/// the standard error sqrt((1 + rho^2 / 2) / (n - 3)) of Bonett and Wright (2000), which
/// keeps close to its nominal coverage for rank correlations where 1 / sqrt(n - 3) (exact only
/// for Pearson's r of normal data) is too narrow. Needs n >= 4; rho = +-1 gives the point.
pub fn spearman_interval(rho: f64, n: usize, level: f64) -> Result<(f64, f64), StatsError> {
    if n < 4 {
        return Err(StatsError::TooFewPoints {
            what: "an interval for a rank correlation",
            needed: 4,
            got: n,
        });
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(StatsError::Level { level });
    }
    if !(rho.abs() <= 1.0) {
        return Err(StatsError::NonFinite {
            index: 0,
            value: rho,
        });
    }
    if rho.abs() >= 1.0 {
        return Ok((rho, rho));
    }
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    let q = normal.inverse_cdf(0.5 + level / 2.0);
    let se = ((1.0 + rho * rho / 2.0) / (n as f64 - 3.0)).sqrt();
    let z = rho.atanh();
    Ok(((z - q * se).tanh(), (z + q * se).tanh()))
}

/// How many permutations the test enumerates at most; beyond it, it samples.
const EXACT_LIMIT: usize = 40_320; // 8!

/// The two-sided permutation p-value of Spearman's rho: the fraction of pairings of `y` with
/// `x` whose |rho| is at least the observed one (with 1e-12 of slack for rounding). Exact
/// (all n! orders) for n <= 8; otherwise `samples` random orders from `seed`, counted with
/// the observed one, (1 + hits) / (1 + samples), so the value is never 0. Deterministic in
/// `seed`.
pub fn permutation_p_value(
    x: &[f64],
    y: &[f64],
    samples: usize,
    seed: u64,
) -> Result<Option<f64>, StatsError> {
    check(x, y)?;
    let (rx, ry) = (ranks(x), ranks(y));
    let Some(observed) = pearson(&rx, &ry) else {
        return Ok(None);
    };
    let threshold = observed.abs() - 1e-12;
    let hit = |p: &[f64]| pearson(&rx, p).is_some_and(|r| r.abs() >= threshold);
    let n = x.len();
    let exact = (1..=n).try_fold(1usize, |acc, k| {
        acc.checked_mul(k).filter(|&v| v <= EXACT_LIMIT)
    });
    if exact.is_some() {
        let mut p = ry.clone();
        let (mut hits, mut total) = (0usize, 0usize);
        heap_permutations(&mut p, &mut |perm| {
            total += 1;
            hits += usize::from(hit(perm));
        });
        return Ok(Some(hits as f64 / total as f64));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut p = ry.clone();
    let mut hits = 1usize; // the observed pairing
    for _ in 0..samples {
        p.shuffle(&mut rng);
        hits += usize::from(hit(&p));
    }
    Ok(Some(hits as f64 / (samples + 1) as f64))
}

/// Every order of `v` (Heap's algorithm, iterative), each passed to `f` once.
fn heap_permutations(v: &mut [f64], f: &mut dyn FnMut(&[f64])) {
    let n = v.len();
    let mut c = vec![0usize; n];
    f(v);
    let mut i = 0;
    while i < n {
        if c[i] < i {
            if i % 2 == 0 {
                v.swap(0, i);
            } else {
                v.swap(c[i], i);
            }
            f(v);
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
}

/// A rank correlation with its interval and permutation p-value.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    /// Pairs.
    pub n: usize,
    /// Spearman's rho; None when one side is constant.
    pub rho: Option<f64>,
    /// Its 95% interval ([`spearman_interval`]), when n >= 4.
    pub interval: Option<(f64, f64)>,
    /// The two-sided permutation p-value ([`permutation_p_value`]).
    pub p_value: Option<f64>,
}

impl Correlation {
    /// The correlation of `x` and `y` with its 95% interval and a permutation test
    /// (`samples` random orders from `seed` when n > 8).
    pub fn of(x: &[f64], y: &[f64], samples: usize, seed: u64) -> Result<Self, StatsError> {
        let rho = spearman(x, y)?;
        let interval = match rho {
            Some(r) if x.len() >= 4 => Some(spearman_interval(r, x.len(), 0.95)?),
            _ => None,
        };
        Ok(Correlation {
            n: x.len(),
            rho,
            interval,
            p_value: permutation_p_value(x, y, samples, seed)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn ranks_share_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn spearman_matches_the_textbook_formula_without_ties() {
        // rho = 1 - 6 sum d^2 / (n (n^2 - 1)) when there are no ties.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0];
        let d2: f64 = 6.0; // each pair swapped: six differences of 1
        let expected = 1.0 - 6.0 * d2 / (6.0 * 35.0);
        assert_abs_diff_eq!(
            spearman(&x, &y).unwrap().unwrap(),
            expected,
            epsilon = 1e-15
        );
        // Monotone maps do not change it.
        let y3: Vec<f64> = y.iter().map(|v: &f64| v.powi(3)).collect();
        assert_abs_diff_eq!(
            spearman(&x, &y3).unwrap().unwrap(),
            expected,
            epsilon = 1e-15
        );
        assert_eq!(spearman(&x, &[1.0; 6]).unwrap(), None);
    }

    #[test]
    fn the_exact_test_of_a_perfect_order_of_five_is_two_in_120() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let p = permutation_p_value(&x, &x, 0, 0).unwrap().unwrap();
        // Only the identity and the reversal reach |rho| = 1.
        assert_abs_diff_eq!(p, 2.0 / 120.0, epsilon = 1e-15);
    }

    #[test]
    fn the_exact_test_counts_every_order_once() {
        let mut v = [1.0, 2.0, 3.0, 4.0];
        let mut seen = Vec::new();
        heap_permutations(&mut v, &mut |p| seen.push(p.to_vec()));
        assert_eq!(seen.len(), 24);
        seen.sort_by(|a, b| a.partial_cmp(b).unwrap());
        seen.dedup();
        assert_eq!(seen.len(), 24);
    }

    /// The exact p-value of n = 9 by enumeration (9! orders), against the sampled test the
    /// function runs beyond 8 points: they agree within the sampling noise.
    #[test]
    fn the_sampled_test_agrees_with_the_exact_one_within_its_noise() {
        let x: Vec<f64> = (0..9).map(|i| i as f64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for trial in 0..4 {
            let mut y = x.clone();
            y.shuffle(&mut rng);
            if trial == 0 {
                // One far from the null as well: a perfect order with two swaps.
                y = x.clone();
                y.swap(1, 2);
                y.swap(5, 7);
            }
            let observed = spearman(&x, &y).unwrap().unwrap().abs() - 1e-12;
            let (rx, ry) = (ranks(&x), ranks(&y));
            let (mut hits, mut total) = (0usize, 0usize);
            let mut p = ry.clone();
            heap_permutations(&mut p, &mut |perm| {
                total += 1;
                hits += usize::from(pearson(&rx, perm).unwrap().abs() >= observed);
            });
            assert_eq!(total, 362_880);
            let exact = hits as f64 / total as f64;
            let samples = 9_999;
            let sampled = permutation_p_value(&x, &y, samples, trial)
                .unwrap()
                .unwrap();
            // Binomial noise of the sampled fraction, plus the 1/(samples + 1) of counting
            // the observed order: 4 standard deviations.
            let sd = (exact * (1.0 - exact) / samples as f64).sqrt();
            assert!(
                (sampled - exact).abs() <= 4.0 * sd + 1.0 / samples as f64,
                "trial {trial}: sampled {sampled}, exact {exact}"
            );
        }
    }

    /// Under independence (a uniformly random pairing) the test rejects at about its level;
    /// against a strong monotone dependence, almost always.
    #[test]
    fn the_sampled_test_holds_its_level_and_has_power() {
        let x: Vec<f64> = (0..12).map(|i| i as f64).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let trials = 1000;
        let mut rejections = 0;
        for t in 0..trials {
            let mut y = x.clone();
            y.shuffle(&mut rng);
            let p = permutation_p_value(&x, &y, 199, t).unwrap().unwrap();
            rejections += usize::from(p <= 0.05);
        }
        // About 50 expected (a little fewer: rho is discrete), binomial sd 6.9: 25..=75 is
        // beyond 3.5 sd either side.
        assert!((25..=75).contains(&rejections), "{rejections} of {trials}");
        // Two neighbours swapped in a perfect order: rho = 0.993, p well below 0.05.
        let mut y = x.clone();
        y.swap(3, 4);
        assert!(permutation_p_value(&x, &y, 199, 0).unwrap().unwrap() <= 0.01);
    }

    /// The interval's coverage of the true rho, measured: bivariate normal pairs of
    /// correlation r have rho_s = (6 / pi) asin(r / 2).
    #[test]
    fn the_interval_covers_the_true_rank_correlation_about_95_percent_of_the_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let normal = |rng: &mut ChaCha8Rng| {
            use rand::Rng;
            let u: f64 = rng.random_range(1e-12..1.0);
            let v: f64 = rng.random();
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        let r: f64 = 0.6;
        let truth = 6.0 / std::f64::consts::PI * (r / 2.0).asin();
        let trials = 2000;
        let mut covered = 0;
        for _ in 0..trials {
            let x: Vec<f64> = (0..30).map(|_| normal(&mut rng)).collect();
            let y: Vec<f64> = x
                .iter()
                .map(|a| r * a + (1.0 - r * r).sqrt() * normal(&mut rng))
                .collect();
            let rho = spearman(&x, &y).unwrap().unwrap();
            let (lo, hi) = spearman_interval(rho, 30, 0.95).unwrap();
            covered += usize::from(lo <= truth && truth <= hi);
        }
        let coverage = covered as f64 / trials as f64;
        // Binomial sd of a 95% rate over 2000 trials is 0.005; Bonett-Wright is slightly
        // conservative at n = 30, so 0.93..=0.975 allows for that and 4 sd of noise.
        assert!((0.93..=0.975).contains(&coverage), "coverage {coverage}");
    }
}
