//! The matrix-free estimators against the exact spectrum (dense SVD), and their error bars
//! against how often they cover the truth.

use ndarray::{Array1, Array2};
use septuple_core::DenseBudget;
use septuple_core::{Builtin, Init, Layered, Network};
use septuple_spectral::{
    analyze, extreme_singular_values, krylov_bound, spectrum, stochastic_lanczos_quadrature,
    AnalysisOptions, Faer, MatrixFreeOptions, Method, Monitor, SpectralError, SpectrumOptions,
    TopCount,
};
use septuple_thermo::{SpectralMeasure, ThermoEstimate, ThermoPoint};

mod common;
use common::on_1_and_2_threads;

fn mean_state(net: &Layered<Builtin>, seed: u64) -> Array1<f64> {
    let n_in = net.layer_sizes()[0];
    let x = Array2::from_shape_fn((20, n_in), |(s, i)| {
        (((s * 31 + i * 17 + seed as usize) % 97) as f64 / 97.0).powi(2)
    });
    net.mean_state(x.view()).unwrap()
}

fn exact(net: &Layered<Builtin>, mean: &Array1<f64>) -> Vec<f64> {
    let sep = net.to_septuple().unwrap();
    spectrum(&sep, mean.view(), Method::Dense, &Faer::default())
        .unwrap()
        .eigenvalues
}

/// Top-k singular values to 1e-8 relative against the dense SVD at N = 2294 (784-1000-500-10,
/// 1500 hidden neurons). The run stops when every residual is <= 1e-10 sigma_max, so each
/// Ritz value is within 1e-10 sigma_max / sqrt 2 of a singular value; the top 20 lie within a
/// factor ~3 of sigma_max, so 1e-8 relative in lambda = sigma^2 leaves a factor > 10 for the
/// dense SVD's own eps * sigma_max error.
#[test]
fn top_k_match_the_dense_svd() {
    let net = Layered::random(&[784, 1000, 500, 10], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
    let mean = mean_state(&net, 1);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions::default();
    let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
    assert!(ext.largest_converged, "{} steps", ext.steps);
    let lambda = exact(&net, &mean);
    let n = lambda.len();
    assert_eq!(ext.largest.len(), 20);
    for (k, r) in ext.largest.iter().enumerate() {
        let truth = lambda[n - 1 - k];
        assert!(
            ((r.lambda - truth) / truth).abs() < 1e-8,
            "lambda_{k}: {} vs {truth}",
            r.lambda
        );
    }
    // The smallest: each Ritz value has an eigenvalue within its bound (plus the dense
    // SVD's eps * sigma_max^2 absolute error, 1e-12 with margin).
    for r in &ext.smallest {
        let near = lambda
            .iter()
            .map(|l| (l - r.lambda).abs())
            .fold(f64::INFINITY, f64::min);
        assert!(near <= r.lambda_bound + 1e-12, "{r:?}: nearest {near}");
    }
    // Through M^-1 the smallest converge like the largest: rank by rank, to 1e-8 relative.
    // Residual <= 1e-10 tau_max for tau = 1 / sigma, and the 20 smallest sigma lie within a
    // factor ~3 of sigma_min, so sigma is within ~3e-10 relative; the dense SVD's absolute
    // eps * sigma_max error is ~1e-13 relative at cond(M) ~ 1e3.
    assert!(ext.smallest_converged, "{} steps", ext.steps);
    for (k, r) in ext.smallest.iter().enumerate() {
        let truth = lambda[k];
        assert!(
            ((r.lambda - truth) / truth).abs() < 1e-8,
            "lambda_(min+{k}): {} vs {truth}",
            r.lambda
        );
    }
}

/// One-sided reorthogonalisation (the default, `Sides::Right`) and both sides give the top 20
/// of the dense SVD to 1e-8 relative at N = 2294 (the argument of `top_k_match_the_dense_svd`),
/// each Ritz value within its bound of an eigenvalue (plus the dense SVD's eps lambda_max
/// error, 1e-12 with margin), and say which ran.
#[test]
fn one_sided_and_two_sided_runs_agree_with_the_dense_svd() {
    use septuple_spectral::Sides;
    let net = Layered::random(&[784, 1000, 500, 10], Builtin::Tanh, Init::TorchLinear, 5).unwrap();
    let mean = mean_state(&net, 2);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    let n = lambda.len();
    for sides in [Sides::Right, Sides::Both] {
        let opts = MatrixFreeOptions {
            smallest: false,
            extreme_sides: sides,
            ..Default::default()
        };
        let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
        assert!(ext.largest_converged, "{sides:?}: {} steps", ext.steps);
        assert_eq!(ext.one_sided, sides == Sides::Right);
        for (k, r) in ext.largest.iter().enumerate() {
            let truth = lambda[n - 1 - k];
            assert!(
                ((r.lambda - truth) / truth).abs() < 1e-8,
                "{sides:?} lambda_{k}: {} vs {truth}",
                r.lambda
            );
            assert!(
                (r.lambda - truth).abs() <= r.lambda_bound + 1e-12,
                "{sides:?} lambda_{k}: {r:?} vs {truth}"
            );
        }
    }
}

/// Eqs. (7.7)-(7.8) through the quadrature: with 2r + 1 >= steps the Krylov space of each
/// probe is exhausted, the rule's nodes are eigenvalues of G (each distinct one once, the
/// N - 2r ones at 1 as one node) and the sum of the log nodes is log det of G on the Krylov
/// space, which contains the whole subspace where G differs from I: log det G = 0. Rounding:
/// each log node carries ~eps cond(M), summed over <= 15 nodes: 1e-10.
#[test]
fn exhausted_krylov_space_gives_log_det_zero() {
    let net = Layered::random(&[20, 4, 3], Builtin::Tanh, Init::Normal { std: 0.9 }, 5).unwrap();
    let mean = mean_state(&net, 2);
    let fp = net.derivatives_at(mean.view()).unwrap();
    assert_eq!(krylov_bound(27, 20), 15);
    let opts = MatrixFreeOptions {
        max_steps: 100,
        rel_tol: 0.0,
        max_probes: 16,
        ..Default::default()
    };
    let slq = stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).unwrap();
    assert_eq!(slq.exact_probes, 16);
    assert!(slq.steps <= 15);
    let lambda = exact(&net, &mean);
    for rule in slq.quadrature.rules() {
        let log_det: f64 = rule.nodes.iter().map(|t| t.ln()).sum();
        assert!(log_det.abs() < 1e-10, "{log_det}");
        for t in &rule.nodes {
            let near = lambda
                .iter()
                .map(|l| (l - t).abs())
                .fold(f64::INFINITY, f64::min);
            assert!(near < 1e-10 * (1.0 + t), "node {t}: nearest {near}");
        }
    }
    // The Hutchinson estimate of tr log G = 0 is unbiased; its bars must cover 0.
    let e = slq.quadrature.trace(&|l: f64| l.ln());
    assert!(e.covers(0.0, 3.0), "{e:?}");
}

/// One coverage run: `trials` seeds on a 60-30-20-10 net (N = 120, r = 60: the Krylov bound
/// is N = 120 but only 15 steps run, so the quadrature is not exact), 30 probes each; returns
/// the number of trials whose +-3 stderr interval covers the exact value, per quantity.
fn coverage(trials: u64) -> [usize; 4] {
    let net = Layered::random(
        &[60, 30, 20, 10],
        Builtin::Tanh,
        Init::Normal { std: 0.25 },
        11,
    )
    .unwrap();
    let mean = mean_state(&net, 4);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    let at = ThermoPoint::at_beta(0.5);
    let truth_thermo = ThermoEstimate::new(&lambda[..], &at).unwrap();
    let mu = |k: i32| lambda.iter().map(|l| l.ln().powi(k)).sum::<f64>();
    let truth = [
        truth_thermo.log_det_i_plus_beta_g.value,
        truth_thermo.laplacian_f.value,
        mu(2),
        mu(3),
    ];
    let mut covered = [0; 4];
    for seed in 0..trials {
        let opts = MatrixFreeOptions {
            max_probes: 30,
            min_probes: 30,
            max_steps: 15,
            rel_tol: 0.0,
            seed,
            ..Default::default()
        };
        let slq = stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).unwrap();
        assert_eq!(slq.exact_probes, 0);
        let q = &slq.quadrature;
        let th = ThermoEstimate::new(q, &at).unwrap();
        let est = [
            th.log_det_i_plus_beta_g,
            th.laplacian_f,
            q.trace(&|l: f64| l.ln().powi(2)),
            q.trace(&|l: f64| l.ln().powi(3)),
        ];
        for k in 0..4 {
            if est[k].covers(truth[k], 3.0) {
                covered[k] += 1;
            }
        }
    }
    covered
}

/// Coverage of the +-3 stderr bars in 40 seeded trials for log det(I + beta G), the
/// Laplacian (8.10), mu_2 and mu_3 (9.5-9.6). Threshold 38 of 40 (95 %): with 30 probes the
/// studentised error is t with 29 degrees of freedom, P(|t| > 3) = 0.0055, so honest bars fail
/// a trial with p ~ 0.0055 (plus a quadrature bias far below the stderr at 15 nodes): 3 or more
/// failures in 40 has probability ~ (40 p)^3 / 6 ~ 2e-3. Bars too small by 2 (coverage of
/// +-1.5 true stderr, p = 0.13) give <= 2 failures with probability ~ 0.09: caught 9 times in 10.
#[test]
fn error_bars_cover_the_truth() {
    let c = coverage(40);
    for (k, &ck) in c.iter().enumerate() {
        assert!(ck >= 38, "quantity {k}: covered {ck} of 40 ({c:?})");
    }
}

/// The full coverage test: 200 trials, at least 95 % (190) covered for every quantity.
/// Run with `cargo test --release -p septuple-spectral --test matrix_free -- --ignored`.
#[test]
#[ignore]
fn error_bars_cover_the_truth_200_trials() {
    let c = coverage(200);
    for (k, &ck) in c.iter().enumerate() {
        assert!(ck >= 190, "quantity {k}: covered {ck} of 200 ({c:?})");
    }
}

/// The fully reorthogonalised quadrature at N = 2,650: its Gram-Schmidt sweeps run over three
/// chunks of rows, which two threads share, and must give the same bits as one.
#[test]
fn reorthogonalised_quadrature_is_deterministic_across_thread_counts() {
    use septuple_spectral::Reorthogonalisation;
    let net = Layered::random(&[1500, 1140, 10], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let mean = mean_state(&net, 3);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions {
        max_probes: 8,
        min_probes: 8,
        batch: 4,
        max_steps: 30,
        rel_tol: 0.0,
        seed: 5,
        reorthogonalisation: Reorthogonalisation::Full,
        ..Default::default()
    };
    let (a, b) =
        on_1_and_2_threads(|| stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).unwrap());
    assert!(a.reorthogonalised);
    assert_eq!(a.probes, 8);
    assert_eq!(a, b);
}

/// Same seed, same bits, with rayon pools of 1 and 2 threads.
#[test]
fn deterministic_across_thread_counts() {
    let net = Layered::random(&[40, 30, 10], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let mean = mean_state(&net, 3);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions {
        max_probes: 40,
        min_probes: 8,
        batch: 4,
        max_steps: 12,
        rel_tol: 1e-3,
        seed: 9,
        ..Default::default()
    };
    let (a, b) = on_1_and_2_threads(|| {
        let mu2 = |l: f64| l.ln().powi(2);
        let slq =
            stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[Monitor::value(&mu2)]).unwrap();
        let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
        (slq, ext)
    });
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    assert!(a.0.probes >= 8);
}

#[test]
fn bad_options_are_errors() {
    let net = Layered::random(&[4, 3, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let fp = Array1::from_elem(9, 0.5);
    for opts in [
        MatrixFreeOptions {
            max_probes: 1,
            ..Default::default()
        },
        MatrixFreeOptions {
            rel_tol: f64::NAN,
            ..Default::default()
        },
        MatrixFreeOptions {
            batch: 0,
            ..Default::default()
        },
    ] {
        assert!(stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).is_err());
    }
    let short = Array1::from_elem(3, 0.5);
    assert!(extreme_singular_values(&net, short.view(), &MatrixFreeOptions::default()).is_err());
}

fn inputs(n_in: usize, samples: usize) -> Array2<f64> {
    Array2::from_shape_fn((samples, n_in), |(s, i)| {
        (((s * 31 + i * 17) % 97) as f64 / 97.0).powi(2)
    })
}

/// The analysis-level path against the exact one on a 200-100-50-10 net (N = 360, r = 160,
/// Krylov bound 321, 60 steps: no probe is exact). Each trace estimate must cover the exact
/// value within 4 stderr: with 64 probes the studentised error is t with 63 degrees of
/// freedom, P(|t| > 4) ~ 2e-4 per quantity, so the seven checks fail together with
/// probability ~1e-3 for honest bars (and the seed is fixed: the result is deterministic).
/// The complexities from the extremes must lie within their error bound (plus 1e-9 for the
/// dense path's own rounding of 20 logarithms).
#[test]
fn analysis_estimates_agree_with_the_exact_analysis() {
    let net = Layered::random(&[200, 100, 50, 10], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let x = inputs(200, 30);
    let exact_opts = AnalysisOptions::default()
        .with_method(Method::Dense)
        .with_thermo(0.5, 0.1);
    let mut mf_opts = AnalysisOptions::default()
        .with_method(Method::MatrixFree)
        .with_thermo(0.5, 0.1);
    mf_opts.matrix_free.rel_tol = 0.0;
    let exact = analyze(&net, x.view(), &exact_opts, &Faer::default()).unwrap();
    let est = analyze(&net, x.view(), &mf_opts, &Faer::default()).unwrap();
    assert_eq!(est.method, Method::MatrixFree);
    assert!(est.eigenvalues.is_empty() && est.summary.is_none() && est.thermo.is_none());
    let r = est.report();
    let t = exact.report();
    assert!(r.log_lambda.is_none() && t.log_lambda.is_some());
    assert!(t.mu2_stderr.is_none() && t.matrix_free.is_none());
    let info = r.matrix_free.unwrap();
    assert_eq!((info.probes, info.exact_probes), (64, 0));
    // No probe is exact, so the table says what its error bars leave out and how far half
    // the steps move each trace; the exact one has no such row. At 60 steps this net's
    // quadrature has settled (every change within its error bar).
    let table = r.to_string();
    assert!(
        table.contains("an estimate of the quadrature bias"),
        "{table}"
    );
    assert!(table.contains("(half the steps: "), "{table}");
    assert!(
        r.quadrature_settled() && !table.contains("NOT settled"),
        "{table}"
    );
    assert!(!t.to_string().contains("error bars"));
    assert!(t.mu2_quadrature_change.is_none() && r.mu2_quadrature_change.is_some());
    let mut unsettled = r.clone();
    unsettled.mu3_quadrature_change = Some(2.0 * r.mu3_stderr.unwrap());
    assert!(!unsettled.quadrature_settled());
    assert!(unsettled.to_string().contains("NOT settled"));
    let within = |what: &str, value: f64, stderr: Option<f64>, truth: f64| {
        let se = stderr.unwrap();
        assert!(
            se.is_finite() && (value - truth).abs() <= 4.0 * se,
            "{what}: {value} +- {se} vs exact {truth}"
        );
    };
    within(
        "sum log lambda",
        r.sum_log_lambda,
        r.sum_log_lambda_stderr,
        0.0,
    );
    within("mu2", r.mu2, r.mu2_stderr, t.mu2);
    within("mu3", r.mu3, r.mu3_stderr, t.mu3);
    within("variance", r.variance, r.variance_stderr, t.variance);
    within("skewness", r.skewness, r.skewness_stderr, t.skewness);
    within(
        "log det",
        r.log_det_i_plus_beta_g.unwrap(),
        r.log_det_i_plus_beta_g_stderr,
        t.log_det_i_plus_beta_g.unwrap(),
    );
    within(
        "laplacian",
        r.laplacian_f.unwrap(),
        r.laplacian_f_stderr,
        t.laplacian_f.unwrap(),
    );
    let te = est.thermo_estimate.unwrap();
    let tt = exact.thermo.unwrap();
    within(
        "F",
        te.free_energy.value,
        Some(te.free_energy.stderr),
        tt.free_energy,
    );
    within("U", te.energy.value, Some(te.energy.stderr), tt.energy);
    within("S", te.entropy.value, Some(te.entropy.stderr), tt.entropy);
    for (what, v, b, truth) in [
        ("C_20", r.c20, r.c20_error_bound, t.c20),
        (
            "C_(N-20)",
            r.c_all_but_20,
            r.c_all_but_20_error_bound,
            t.c_all_but_20,
        ),
    ] {
        let (v, b, truth) = (v.unwrap(), b.unwrap(), truth.unwrap());
        assert!(
            (v - truth).abs() <= b + 1e-9,
            "{what}: {v} (bound {b}) vs {truth}"
        );
    }
    assert!(r.gap_log_lambda.is_none());
    // The dynamical count is structural and exact, and the moments of the dynamical log lambda
    // are mu_k over it (checked above against the exact ones).
    assert_eq!(r.n_dynamical, t.n_dynamical);
    assert_eq!(r.n_dynamical_stderr, None);
    assert_eq!(r.n_dynamical_quadrature_change, None);
    let s = est.estimate.as_ref().unwrap();
    assert_eq!(s.n_dynamical_structural.unwrap().n_dynamical, t.n_dynamical);
    assert!(!table.contains("cannot tell eigenvalues at 1"), "{table}");
    let json = serde_json::to_value(&r).unwrap();
    for key in [
        "mu2_stderr",
        "mu3_stderr",
        "skewness_stderr",
        "laplacian_f_stderr",
        "log_det_i_plus_beta_g_stderr",
        "thermo_estimate",
    ] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    assert!(json.get("log_lambda").is_none());
    let exact_json = serde_json::to_value(&t).unwrap();
    assert!(exact_json.get("mu2_stderr").is_none());
}

/// Auto picks the cheapest exact method within the budget, and matrix-free when neither
/// dense nor structured fits (or is far costlier), and says so.
#[test]
fn auto_says_what_it_chose() {
    let net = Layered::random(&[30, 20, 10], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let x = inputs(30, 10);
    let a = analyze(
        &net,
        x.view(),
        &AnalysisOptions::default(),
        &Faer::default(),
    )
    .unwrap();
    let choice = a.method_choice.unwrap();
    assert_eq!(choice.method, a.method);
    assert_ne!(a.method, Method::MatrixFree);
    let tight = AnalysisOptions {
        spectrum: SpectrumOptions {
            method: Method::Auto,
            // 8 bytes: not even one row of M fits.
            budget: DenseBudget { bytes: 8 },
        },
        ..AnalysisOptions::default()
    };
    let b = analyze(&net, x.view(), &tight, &Faer::default()).unwrap();
    assert_eq!(b.method, Method::MatrixFree);
    let c = b.method_choice.unwrap();
    assert!(!c.dense.fits && !c.structured.fits && c.matrix_free.fits);
    let json = serde_json::to_value(b.report()).unwrap();
    assert_eq!(json["method"], "matrix_free");
    assert_eq!(json["method_choice"]["method"], "matrix_free");
}

/// Same seed, same report bits, with rayon pools of 1 and 2 threads, at the analysis level.
#[test]
fn analysis_is_deterministic_across_thread_counts() {
    let net = Layered::random(&[40, 30, 10], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let x = inputs(40, 10);
    let mut opts = AnalysisOptions::default()
        .with_method(Method::MatrixFree)
        .with_thermo(1.0, 0.0);
    opts.matrix_free.seed = 5;
    opts.matrix_free.batch = 4;
    let (a, b) = on_1_and_2_threads(|| analyze(&net, x.view(), &opts, &Faer::default()).unwrap());
    assert_eq!(a, b);
}

#[test]
fn matrix_free_misuse_is_an_error() {
    // N = 10, r = 4, k = 4 + rank(f'_1 W_1) = 6: four unit eigenvalues.
    let net = Layered::random(&[6, 2, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let x = inputs(6, 3);
    let mut opts = AnalysisOptions::default().with_method(Method::MatrixFree);
    opts.matrix_free.max_probes = 1;
    let e = analyze(&net, x.view(), &opts, &Faer::default()).unwrap_err();
    assert!(
        matches!(
            e,
            SpectralError::Parameter {
                what: "max_probes",
                ..
            }
        ),
        "{e}"
    );
    let mean = net.mean_state(x.view()).unwrap();
    assert!(spectrum(&net, mean.view(), Method::MatrixFree, &Faer::default()).is_err());
    let exact = analyze(
        &net,
        x.view(),
        &AnalysisOptions::default().with_method(Method::Dense),
        &Faer::default(),
    )
    .unwrap();
    assert!(exact.exact_summary().is_ok());
    let mf = analyze(
        &net,
        x.view(),
        &AnalysisOptions::default().with_method(Method::MatrixFree),
        &Faer::default(),
    )
    .unwrap();
    assert!(mf.exact_summary().is_err());
    // N = 10: C_20 is C_10, all of them; an exhausted Krylov space shows each distinct
    // eigenvalue once (the unit ones as one), so the extremes cannot give it.
    let e = mf.estimate.unwrap();
    assert!(e.extremes.exhausted);
    assert!(e.complexity(TopCount::Largest(20)).is_none());
}

/// S^perp of a 60-30-20-10 net: n_in - rank(f'_1 W_1) = 60 - 30 = 30 dimensions, orthonormal,
/// and M acts on it as the identity (to rounding: 1e-12 for entries of order 1).
#[test]
fn the_unit_subspace_is_fixed_by_m() {
    let net = Layered::random(&[60, 30, 20, 10], Builtin::Tanh, Init::TorchLinear, 6).unwrap();
    let mean = mean_state(&net, 2);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let q = septuple_spectral::unit_subspace(&net, fp.view(), DenseBudget::default()).unwrap();
    assert_eq!(q.dim(), (60, 30));
    let gram = q.t().dot(&q);
    for ((i, j), v) in gram.indexed_iter() {
        let e = if i == j { 1.0 } else { 0.0 };
        assert!((v - e).abs() < 1e-12, "Q^T Q [{i}, {j}] = {v}");
    }
    let mut x = Array2::zeros((120, 30));
    x.slice_mut(ndarray::s![..60, ..]).assign(&q);
    let mx = net.apply_m(fp.view(), x.view()).unwrap();
    let mtx = net.apply_mt(fp.view(), x.view()).unwrap();
    for (a, b) in mx.iter().chain(mtx.iter()).zip(x.iter().chain(x.iter())) {
        assert!((a - b).abs() < 1e-12);
    }
}

/// A net whose spectrum is spread enough that a few Gauss nodes are biased: 100-150-150-10,
/// N = 410 (Krylov bound 410), weights N(0, 0.2^2).
fn spread_net() -> (Layered<Builtin>, Array1<f64>) {
    let net = Layered::random(
        &[100, 150, 150, 10],
        Builtin::Tanh,
        Init::Normal { std: 0.2 },
        5,
    )
    .unwrap();
    let mean = mean_state(&net, 2);
    (net, mean)
}

/// The quadrature change (half the steps against all) sees the Gauss rules' bias that the
/// standard errors leave out. On this net at 12 steps mu_2 and mu_3 are 13 and 21 standard
/// errors off the exact traces (measured; a bias, since 64 probes make the spread small),
/// and the change is larger than the error itself: the rules converge monotonically here, so
/// Q_m - Q_(m/2) overstates Q_m - truth, a conservative estimate. (At 4-6 steps, before the
/// rules converge, it can understate it: the adaptive choice starts from more.)
#[test]
fn the_quadrature_change_bounds_the_bias_the_error_bars_miss() {
    let (net, mean) = spread_net();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    let mu = |k: i32| lambda.iter().map(|l| l.ln().powi(k)).sum::<f64>();
    let opts = MatrixFreeOptions {
        max_probes: 64,
        min_probes: 64,
        max_steps: 12,
        rel_tol: 0.0,
        ..Default::default()
    };
    let slq = stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).unwrap();
    assert_eq!((slq.steps, slq.doublings, slq.exact_probes), (12, 0, 0));
    for k in [2, 3] {
        let f = move |l: f64| l.ln().powi(k);
        let e = slq.quadrature.trace(&f);
        let c = slq.quadrature_change(&f);
        let err = e.value - mu(k);
        assert!(
            err.abs() > 5.0 * e.stderr,
            "mu{k}: {err} vs {e:?}: no bias to see"
        );
        assert!(
            c.value.abs() >= err.abs(),
            "mu{k}: change {c:?}, error {err}"
        );
        assert!(
            c.value * err < 0.0,
            "mu{k}: the rules approach the truth from one side"
        );
    }
    // An exhausted Krylov space gives an exact rule and no change.
    let small = Layered::random(&[6, 4, 3], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
    let m = mean_state(&small, 1);
    let fps = small.derivatives_at(m.view()).unwrap();
    let slq = stochastic_lanczos_quadrature(&small, fps.view(), &opts, &[]).unwrap();
    assert_eq!(slq.exact_probes, slq.probes);
    assert_eq!(slq.quadrature_change(&|l: f64| l.ln().powi(3)).value, 0.0);
}

/// With `quadrature_tol`, the steps double from `max_steps` until halving them moves the
/// monitored traces by at most that fraction: from 8 steps, where mu_2 and mu_3 are far off,
/// to a step count where the exact traces lie within 3 standard errors plus the change.
#[test]
fn adaptive_steps_stop_when_the_quadrature_settles() {
    let (net, mean) = spread_net();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let lambda = exact(&net, &mean);
    let mu = |k: i32| lambda.iter().map(|l| l.ln().powi(k)).sum::<f64>();
    let mu2 = |l: f64| l.ln().powi(2);
    let mu3 = |l: f64| l.ln().powi(3);
    let opts = MatrixFreeOptions {
        max_probes: 32,
        min_probes: 32,
        max_steps: 8,
        rel_tol: 0.0,
        quadrature_tol: 0.01,
        ..Default::default()
    };
    let slq = stochastic_lanczos_quadrature(
        &net,
        fp.view(),
        &opts,
        &[Monitor::value(&mu2), Monitor::value(&mu3)],
    )
    .unwrap();
    assert!(slq.doublings >= 2, "{} doublings", slq.doublings);
    assert_eq!(slq.steps, (8 << slq.doublings).min(krylov_bound(410, 100)));
    for (k, f) in [(2, &mu2 as &dyn Fn(f64) -> f64), (3, &mu3)] {
        let e = slq.quadrature.trace(f);
        let c = slq.quadrature_change(f);
        let err = (e.value - mu(k)).abs();
        assert!(
            err <= 3.0 * e.stderr + c.value.abs(),
            "mu{k}: {err}, {e:?}, {c:?}"
        );
    }
    // The steps it chose are a function of the options: the same with fixed steps.
    let fixed = MatrixFreeOptions {
        max_steps: slq.steps,
        quadrature_tol: 0.0,
        ..opts
    };
    let again = stochastic_lanczos_quadrature(&net, fp.view(), &fixed, &[]).unwrap();
    assert_eq!(again.quadrature, slq.quadrature);
    // A limit below the start is refused.
    let bad = MatrixFreeOptions {
        steps_limit: 4,
        ..opts
    };
    assert!(stochastic_lanczos_quadrature(&net, fp.view(), &bad, &[]).is_err());
}

/// Without reorthogonalisation (memory 4 N per probe instead of 2 x steps x N) the Gauss
/// rules still estimate the traces: on the 200-100-50-10 net (60 steps, 64 probes) each of
/// them covers the exact value within 4 of its standard errors, as with full
/// reorthogonalisation (see `analysis_estimates_agree_with_the_exact_analysis` for the bound).
/// No probe is ever taken as exact, even where the Krylov space is exhausted.
#[test]
fn quadrature_without_reorthogonalisation_covers_the_truth() {
    use septuple_spectral::Reorthogonalisation;
    let net = Layered::random(&[200, 100, 50, 10], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let x = inputs(200, 30);
    let exact = analyze(
        &net,
        x.view(),
        &AnalysisOptions::default()
            .with_method(Method::Dense)
            .with_thermo(0.5, 0.1),
        &Faer::default(),
    )
    .unwrap()
    .report();
    let mut opts = AnalysisOptions::default()
        .with_method(Method::MatrixFree)
        .with_thermo(0.5, 0.1);
    opts.matrix_free.rel_tol = 0.0;
    assert_eq!(
        opts.matrix_free.reorthogonalisation,
        Reorthogonalisation::Auto
    );
    let auto = analyze(&net, x.view(), &opts, &Faer::default())
        .unwrap()
        .report();
    assert!(auto.matrix_free.unwrap().reorthogonalised);
    opts.matrix_free.reorthogonalisation = Reorthogonalisation::None;
    let r = analyze(&net, x.view(), &opts, &Faer::default())
        .unwrap()
        .report();
    let info = r.matrix_free.unwrap();
    assert!(!info.reorthogonalised);
    assert_eq!((info.probes, info.exact_probes), (64, 0));
    assert!(r.to_string().contains("not reorthogonalised"));
    for (what, v, se, truth) in [
        ("sum log", r.sum_log_lambda, r.sum_log_lambda_stderr, 0.0),
        ("mu2", r.mu2, r.mu2_stderr, exact.mu2),
        ("mu3", r.mu3, r.mu3_stderr, exact.mu3),
        ("variance", r.variance, r.variance_stderr, exact.variance),
        (
            "log det",
            r.log_det_i_plus_beta_g.unwrap(),
            r.log_det_i_plus_beta_g_stderr,
            exact.log_det_i_plus_beta_g.unwrap(),
        ),
        (
            "laplacian",
            r.laplacian_f.unwrap(),
            r.laplacian_f_stderr,
            exact.laplacian_f.unwrap(),
        ),
    ] {
        let se = se.unwrap();
        assert!(
            (v - truth).abs() <= 4.0 * se,
            "{what}: {v} +- {se} vs exact {truth}"
        );
    }
    // An exhausted Krylov space (20-4-3: bound 15, 100 steps allowed) is not taken as exact.
    let small = Layered::random(&[20, 4, 3], Builtin::Tanh, Init::Normal { std: 0.9 }, 5).unwrap();
    let mean = mean_state(&small, 2);
    let fp = small.derivatives_at(mean.view()).unwrap();
    let none = MatrixFreeOptions {
        max_steps: 100,
        rel_tol: 0.0,
        max_probes: 8,
        reorthogonalisation: Reorthogonalisation::None,
        ..Default::default()
    };
    let slq = stochastic_lanczos_quadrature(&small, fp.view(), &none, &[]).unwrap();
    assert_eq!(slq.exact_probes, 0);
    assert!(!slq.reorthogonalised);
}

/// The path without reorthogonalisation works on all columns of a batch at once in fixed
/// chunks of rows; with N = 9,010 (three chunks) its result is the same bits on 1 and 2 threads,
/// as are the thick restart's chunked Gram-Schmidt passes. (Without the deflation, whose SVD
/// has its own test below.)
#[test]
fn chunked_passes_are_deterministic_across_thread_counts() {
    use septuple_spectral::Reorthogonalisation;
    let net = Layered::random(&[6000, 3000, 10], Builtin::Tanh, Init::TorchLinear, 2).unwrap();
    let mean = mean_state(&net, 3);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let opts = MatrixFreeOptions {
        max_probes: 4,
        min_probes: 4,
        batch: 4,
        max_steps: 10,
        rel_tol: 0.0,
        n_extreme: 3,
        extreme_basis: 16,
        extreme_max_steps: 200,
        smallest: false,
        deflate: false,
        reorthogonalisation: Reorthogonalisation::None,
        ..Default::default()
    };
    let (a, b) = on_1_and_2_threads(|| {
        let slq = stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[]).unwrap();
        let ext = extreme_singular_values(&net, fp.view(), &opts).unwrap();
        (slq, ext)
    });
    assert!(!a.0.reorthogonalised);
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
}

/// The deflated unit subspace (an SVD of the input columns of f'w, here 1,200 x 600) is the
/// same bits whatever the thread count of the calling pool.
#[test]
fn the_unit_subspace_is_deterministic_across_thread_counts() {
    use septuple_spectral::unit_subspace;
    let net = Layered::random(&[1200, 600, 10], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let mean = mean_state(&net, 1);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let (a, b) =
        on_1_and_2_threads(|| unit_subspace(&net, fp.view(), DenseBudget::default()).unwrap());
    assert_eq!(a.ncols(), 1200 - 600);
    assert_eq!(a, b);
}

/// mu_3 (Eq. 9.6) vanishes for one layer of weights ((f'w)^2 = 0: the log lambda come in pairs
/// +-l), so a stopping rule relative to |mu_3| never stops: it runs every probe it may. Relative
/// to tr |log G|^3 ([`Monitor::magnitude`]) it stops, with the exact 0 within its error bars.
#[test]
fn a_vanishing_mu3_is_monitored_relative_to_its_magnitude() {
    let net = Layered::random(&[120, 60], Builtin::Tanh, Init::Normal { std: 0.3 }, 7).unwrap();
    let mean = mean_state(&net, 3);
    let fp = net.derivatives_at(mean.view()).unwrap();
    let exact_mu3: f64 = exact(&net, &mean).iter().map(|l| l.ln().powi(3)).sum();
    let scale: f64 = exact(&net, &mean)
        .iter()
        .map(|l| l.ln().abs().powi(3))
        .sum();
    // Zero up to rounding: the pairs cancel.
    assert!(exact_mu3.abs() <= 1e-9 * scale, "{exact_mu3} of {scale}");
    let opts = MatrixFreeOptions {
        max_probes: 48,
        min_probes: 4,
        batch: 4,
        max_steps: 20,
        // One probe's mu_3 has a spread of ~16% of tr |log G|^3 on this small net (measured),
        // so 5% is reached after about 12 probes; |mu_3| itself stays near its standard error.
        rel_tol: 0.05,
        ..Default::default()
    };
    let mu3 = |l: f64| l.ln().powi(3);
    let by_value =
        stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[Monitor::value(&mu3)]).unwrap();
    assert_eq!(by_value.probes, 48);
    let by_magnitude =
        stochastic_lanczos_quadrature(&net, fp.view(), &opts, &[Monitor::magnitude(&mu3)]).unwrap();
    assert!(by_magnitude.probes < 48, "{} probes", by_magnitude.probes);
    let e = by_magnitude.quadrature.trace(&mu3);
    let reference = by_magnitude
        .quadrature
        .trace(&|l: f64| l.ln().abs().powi(3))
        .value;
    assert!(e.stderr <= 0.05 * reference, "{e:?} against {reference}");
    let change = by_magnitude.quadrature_change(&mu3).value;
    assert!(
        (e.value - exact_mu3).abs() <= 3.0 * e.stderr + change.abs(),
        "{e:?}, change {change}"
    );
}
