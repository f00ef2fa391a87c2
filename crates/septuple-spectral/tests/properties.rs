//! The theorems of Secs. 7 and 9 as property tests over random feedforward networks.

use ndarray::Array1;
use proptest::prelude::*;
use septuple_core::strategies::{feedforward_septuple, layered};
use septuple_core::{Builtin, DenseBudget, Layered, Network};
use septuple_spectral::{equilibrium, spectrum, traces, Faer, Method, SpectrumSummary};

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

/// U(beta) of Eq. (6.1) at m = 0 by the whole pipeline: forward states, their mean, the
/// eigenvalues of G at it as squared singular values of M.
fn pipeline_u(net: &Layered<Builtin>, x: ndarray::ArrayView2<'_, f64>, beta: f64) -> f64 {
    let mean = net.mean_state(x).unwrap();
    let s = spectrum(net, mean.view(), Method::Dense, &Faer::default()).unwrap();
    0.5 * s
        .eigenvalues
        .iter()
        .map(|l| l / (1.0 + beta * l))
        .sum::<f64>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Eq. (6.2): the adjoint dU/dw and dU/db of `equilibrium` against central differences of
    /// the whole pipeline (states, mean, G, U) in every weight and bias of random layered
    /// tanh/logistic networks. Tolerance as in the unit tests of the module: the differences
    /// err by ~h^2 |d^3U| + eps U / h, at most ~1e-8 at h = 1e-5 for these sizes, so
    /// 1e-8 + 1e-6 max |dU/dtheta|.
    #[test]
    fn equilibrium_gradient_matches_central_differences(
        net in layered(1..=3, 1..=5),
        beta in 0.2f64..3.0,
        seed in 0u64..1000,
    ) {
        let n_in = net.layer_sizes()[0];
        let x = ndarray::Array2::from_shape_fn((6, n_in), |(s, i)| {
            ((((s * 7 + i * 13) as u64 + seed) % 101) as f64 / 50.0) - 1.0
        });
        let eq = equilibrium(&net, x.view(), beta, DenseBudget::default(), &Faer::default()).unwrap();
        let off = net.offsets();
        let rebuild = |w: Vec<ndarray::Array2<f64>>, b: Vec<Array1<f64>>| {
            Layered::from_layers(w, b, net.activations().to_vec()).unwrap()
        };
        let h = 1e-5;
        let (mut err, mut scale) = (0.0f64, 0.0f64);
        for l in 0..net.weights().len() {
            let (rows, cols) = net.weights()[l].dim();
            for r in 0..rows {
                for c in 0..cols {
                    let at = |d: f64| {
                        let mut w = net.weights().to_vec();
                        w[l][[r, c]] += d;
                        pipeline_u(&rebuild(w, net.biases().to_vec()), x.view(), beta)
                    };
                    let adj = eq.grad_w[[off[l + 1] + r, off[l] + c]];
                    err = err.max(((at(h) - at(-h)) / (2.0 * h) - adj).abs());
                    scale = scale.max(adj.abs());
                }
                let at = |d: f64| {
                    let mut b = net.biases().to_vec();
                    b[l][r] += d;
                    pipeline_u(&rebuild(net.weights().to_vec(), b), x.view(), beta)
                };
                let adj = eq.grad_b[off[l + 1] + r];
                err = err.max(((at(h) - at(-h)) / (2.0 * h) - adj).abs());
                scale = scale.max(adj.abs());
            }
        }
        prop_assert!(err <= 1e-8 + 1e-6 * scale, "{:e} against {:e}", err, scale);
    }
}
