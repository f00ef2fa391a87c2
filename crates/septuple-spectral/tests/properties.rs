//! The theorems of Secs. 7 and 9 as property tests over random feedforward networks.

use ndarray::Array1;
use proptest::prelude::*;
use septuple_core::strategies::{feedforward_septuple, layered};
use septuple_spectral::{spectrum, traces, Faer, Method, SpectrumSummary};

fn mean_in_range(n: usize) -> impl Strategy<Value = Array1<f64>> {
    prop::collection::vec(-0.95f64..0.95, n).prop_map(Array1::from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Eqs. (7.7)-(7.8): det G = 1, i.e. sum log lambda = 0, for every feedforward septuple at
    /// every mean state. Each log lambda carries a rounding error ~ eps cond(M) (cond(M) stays
    /// below ~1e3 for these sizes and weights), summed over N <= 12 values: 1e-9 is ample.
    #[test]
    fn log_det_g_vanishes((net, mean) in feedforward_septuple(2..=12)
        .prop_flat_map(|net| { let n = net.n_neurons(); (Just(net), mean_in_range(n)) })) {
        for method in [Method::Dense, Method::Structured] {
            let s = spectrum(&net, mean.view(), method, &Faer::default()).unwrap();
            let sum: f64 = s.log_eigenvalues().unwrap().iter().sum();
            prop_assert!(sum.abs() < 1e-9, "{:?}: sum log lambda = {}", method, sum);
        }
    }

    /// Eqs. (9.10)-(9.11): without hidden layers (L = 2) every odd trace of log G vanishes: the
    /// non-unit eigenvalues come in pairs lambda, 1/lambda. Tolerance relative to the even
    /// trace of the same order (rounding of each term ~ eps |log lambda|^k).
    #[test]
    fn odd_traces_vanish_without_hidden_layers(net in layered(1..=1, 1..=12),
                                               seed in 0u64..1000) {
        let sep = net.to_septuple().unwrap();
        let n = sep.n_neurons();
        let mean = Array1::from_shape_fn(n, |i| (((i as u64 * 7919 + seed) % 1000) as f64 / 500.0) - 1.0);
        let s = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
        let t = traces(&s.log_eigenvalues().unwrap());
        prop_assert!(t[0].abs() < 1e-10 * (1.0 + t[1]), "mu1 = {}", t[0]);
        prop_assert!(t[2].abs() < 1e-9 * (1.0 + t[3]), "mu3 = {}, mu4 = {}", t[2], t[3]);
    }

    /// The structured path equals the dense path for any layered network.
    #[test]
    fn structured_equals_dense(net in layered(1..=4, 1..=9), seed in 0u64..1000) {
        let sep = net.to_septuple().unwrap();
        let n = sep.n_neurons();
        let mean = Array1::from_shape_fn(n, |i| (((i as u64 * 104_729 + seed) % 997) as f64 / 500.0) - 1.0);
        let d = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
        let s = spectrum(&sep, mean.view(), Method::Structured, &Faer::default()).unwrap();
        for (a, b) in d.eigenvalues.iter().zip(&s.eigenvalues) {
            prop_assert!((a - b).abs() < 1e-10 * (1.0 + a.abs()), "{} vs {}", a, b);
        }
    }
}

/// With one hidden layer (L = 3) the odd traces do not vanish in general: the pairing of
/// L = 2 is broken. A fixed 2-2-2 example: mu_3 is of the order of mu_2^(3/2), far above
/// rounding. (Recorded in docs/theory.md.)
#[test]
fn odd_traces_do_not_vanish_with_one_hidden_layer() {
    use septuple_core::{Builtin, Init, Layered};
    let mut worst: f64 = 0.0;
    for seed in 0..20 {
        let net =
            Layered::random(&[3, 3, 3], Builtin::Tanh, Init::Normal { std: 1.5 }, seed).unwrap();
        let sep = net.to_septuple().unwrap();
        let mean = Array1::from_shape_fn(9, |i| ((i as f64) * 0.37).sin() * 0.5);
        let s = spectrum(&sep, mean.view(), Method::Dense, &Faer::default()).unwrap();
        let t = traces(&s.log_eigenvalues().unwrap());
        worst = worst.max(t[2].abs() / t[1].powf(1.5));
        let summary = SpectrumSummary::new(&s.eigenvalues).unwrap();
        assert!(summary.sum_log_lambda.abs() < 1e-12);
    }
    println!("largest |mu3| / mu2^1.5 over 20 networks: {worst}");
    assert!(worst > 1e-3, "{worst}");
}
