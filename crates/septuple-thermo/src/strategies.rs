//! proptest strategies for spectra of G and inverse temperatures (feature `proptest`), with
//! septuple-core's strategies for random septuples re-exported, for property tests of your own.
//!
//! ```
//! use proptest::prelude::*;
//! use septuple_thermo::{strategies, Gaussian};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(32))]
//!     fn entropy_falls_as_beta_grows(
//!         l in strategies::zero_sum_spectrum(1..=20, 4.0),
//!         beta in strategies::beta(0.01, 100.0),
//!     ) {
//!         let g = Gaussian::new(&l).unwrap();
//!         prop_assert!(g.entropy(2.0 * beta).unwrap() < g.entropy(beta).unwrap());
//!     }
//! }
//! entropy_falls_as_beta_grows();
//! ```

use std::ops::RangeInclusive;

use proptest::prelude::*;

pub use septuple_core::strategies::{
    any_activation, feedforward_septuple, layer_sizes, layered, smooth_activation,
};

/// A spectrum of G with det G = 1 (Eq. 7.8: sum log lambda = 0), as for every feedforward
/// network: `n` values of log lambda uniform in [-`spread`, `spread`], shifted to zero mean.
/// `spread` must be finite and positive.
pub fn zero_sum_spectrum(n: RangeInclusive<usize>, spread: f64) -> impl Strategy<Value = Vec<f64>> {
    let s = spread.abs();
    n.prop_flat_map(move |n| prop::collection::vec(-s..=s, n.max(1)))
        .prop_map(|u| {
            let mean = u.iter().sum::<f64>() / u.len() as f64;
            u.iter().map(|x| (x - mean).exp()).collect()
        })
}

/// A positive spectrum: `n` eigenvalues log-uniform in [`lo`, `hi`] (0 < lo < hi, finite).
pub fn positive_spectrum(
    n: RangeInclusive<usize>,
    lo: f64,
    hi: f64,
) -> impl Strategy<Value = Vec<f64>> {
    let (a, b) = (lo.ln(), hi.ln());
    n.prop_flat_map(move |n| prop::collection::vec(a..=b, n.max(1)))
        .prop_map(|u| u.into_iter().map(f64::exp).collect())
}

/// An inverse temperature log-uniform in [`lo`, `hi`] (0 < lo < hi, finite).
pub fn beta(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    (lo.ln()..=hi.ln()).prop_map(f64::exp)
}

/// A spectrum whose every eigenvalue sits at least `distance` (on the log scale) away from
/// 1/`beta`: log(beta lambda_i) uniform in `distance + [0, width]` on either side, so that
/// |log(beta lambda_i)| >= distance. For the accuracy of the decomposition (6.6).
pub fn spectrum_away_from(
    beta: f64,
    n: RangeInclusive<usize>,
    distance: f64,
    width: f64,
) -> impl Strategy<Value = Vec<f64>> {
    let w = width.abs();
    n.prop_flat_map(move |n| prop::collection::vec((any::<bool>(), 0.0..=w), n.max(1)))
        .prop_map(move |v| {
            v.into_iter()
                .map(|(above, t)| {
                    let x = distance + t;
                    (if above { x } else { -x }).exp() / beta
                })
                .collect()
        })
}
