//! Property tests of septuple-thermo: the identities of the Gaussian model, Eq. (5.9) against
//! quadrature, the second law (7.6), the first law (7.11) to the accuracy of the decomposition,
//! and the landscape of Eq. (9.3).

use proptest::prelude::*;
use septuple_thermo::strategies::{beta, positive_spectrum, spectrum_away_from, zero_sum_spectrum};
use septuple_thermo::{
    beta_from_gap, branch_log_lambdas, DecompositionAccuracy, EigenvalueSplit, FirstLaw, Gaussian,
    Landscape, LawChecker, StationaryKind, TrajectoryPoint,
};

/// Nodes and weights of 5-point Gauss-Legendre quadrature on [-1, 1].
const GL5: [(f64, f64); 5] = [
    (0.0, 0.568_888_888_888_888_9),
    (-0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (0.538_469_310_105_683_1, 0.478_628_670_499_366_5),
    (-0.906_179_845_938_664, 0.236_926_885_056_189_1),
    (0.906_179_845_938_664, 0.236_926_885_056_189_1),
];

/// Composite 5-point Gauss-Legendre nodes and weights on [lo, hi] with `panels` panels.
fn gauss_legendre(lo: f64, hi: f64, panels: usize) -> Vec<(f64, f64)> {
    let h = (hi - lo) / panels as f64;
    let mut out = Vec::with_capacity(5 * panels);
    for k in 0..panels {
        let mid = lo + (k as f64 + 0.5) * h;
        for (x, w) in GL5 {
            out.push((mid + 0.5 * h * x, 0.5 * h * w));
        }
    }
    out
}

/// Mean components a, mass m and a spectrum of a small model, with beta inside the domain and
/// 1 - beta m + beta lambda_i >= 0.05 (so the Gaussian of (5.9) is not too wide).
fn small_model(n: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>, f64, f64)> {
    (
        positive_spectrum(n..=n, 0.05, 20.0),
        prop::collection::vec(-1.5f64..1.5, n),
        -1.0f64..0.5,
        beta(0.1, 3.0),
    )
        .prop_filter("inside the domain", |(l, _, m, b)| {
            l.iter().all(|li| 1.0 - b * m + b * li >= 0.05)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// S = beta (U - F) and U = d(beta F)/d beta (Eqs. 6.1, 7.1) for every spectrum, mass and
    /// mean state.
    #[test]
    fn entropy_and_energy_identities(
        l in positive_spectrum(1..=40, 1e-3, 1e3),
        a in prop::collection::vec(-1.0f64..1.0, 40),
        m in -1.0f64..1.0,
        b in beta(1e-2, 1e2),
    ) {
        let g = Gaussian::new(&l).unwrap().with_mass(m).unwrap();
        // Keep beta inside the domain with a margin (at most half of beta_max).
        let b = b.min(0.5 * g.beta_max());
        let g = g.with_mean_components(&a[..l.len()]).unwrap();
        let (u, f, s) = (g.energy(b).unwrap(), g.free_energy(b).unwrap(), g.entropy(b).unwrap());
        // Two sums of the same terms: rounding ~ eps times the size of the terms.
        let size = (b * u).abs() + (b * f).abs() + l.len() as f64;
        prop_assert!((s - b * (u - f)).abs() <= 1e-13 * size);
        // Central difference with h = 1e-4 beta. U can be a small difference of larger terms,
        // so errors are measured against T = sum of |terms| of U: the truncation error
        // h^2 |d^3 log Z / d beta^3| / 6 is <= (h lambda_i / d_i)^2 T ~ 1e-8 T (beta lambda / d
        // <= 1 / (1 - beta_max^-1 beta) <= 2), rounding ~ eps |log Z| / h.
        let h = 1e-4 * b;
        let bf = |x: f64| x * g.free_energy(x).unwrap();
        let fd = (bf(b + h) - bf(b - h)) / (2.0 * h);
        let c = 1.0 - b * m;
        let t: f64 = l
            .iter()
            .zip(&a)
            .map(|(&li, &ai)| {
                let d = c + b * li;
                0.5 * (li - m).abs() / d + 0.5 * ai * ai * li * (c * c - b * b * li * m).abs() / (d * d)
            })
            .sum();
        let round = 8.0 * f64::EPSILON * g.log_z(b).unwrap().abs().max(size) / h;
        prop_assert!((fd - u).abs() <= 1e-6 * t + round, "fd {} vs U {}", fd, u);
    }

    /// DeltaF of Eq. (8.10) against a finite-difference Laplacian in lambda.
    #[test]
    fn laplacian_matches_finite_differences(
        l in positive_spectrum(1..=12, 0.05, 50.0),
        b in beta(0.05, 20.0),
    ) {
        let g = Gaussian::new(&l).unwrap();
        let mut fd = 0.0;
        for j in 0..l.len() {
            let f = |x: f64| {
                let mut lj = l.clone();
                lj[j] += x;
                Gaussian::new(&lj).unwrap().free_energy(b).unwrap()
            };
            // Step 1e-3 (lambda_j + 1/beta): truncation ~ 1e-6 (beta h)^2 / 12 relative to the
            // term beta / (2 d^2); rounding ~ eps |F| / h^2.
            let h = 1e-3 * (l[j] + 1.0 / b);
            fd += (f(h) - 2.0 * f(0.0) + f(-h)) / (h * h);
        }
        let lap = g.laplacian_f(b).unwrap();
        let fabs = g.free_energy(b).unwrap().abs() + 10.0;
        let h_min = 1e-3 / b;
        let tol = 1e-5 * lap.abs() + 4.0 * f64::EPSILON * fabs * l.len() as f64 / (h_min * h_min);
        prop_assert!((lap - fd).abs() <= tol, "{} vs {}", lap, fd);
    }

    /// Eq. (5.9) for N = 1: log Z, U = <H> and Var H by quadrature of
    /// exp(-beta H - x^2 / 2) with H = lambda (x - mu)^2 / 2 - m x^2 / 2.
    #[test]
    fn partition_function_n1_by_quadrature((l, a, m, b) in small_model(1)) {
        let (lam, mu) = (l[0], a[0]);
        let h = |x: f64| 0.5 * lam * (x - mu) * (x - mu) - 0.5 * m * x * x;
        // The integrand is a Gaussian of precision P = 1 - beta m + beta lambda centred at
        // beta lambda mu / P; 12 standard deviations either side leave e^-72, and 60 panels of
        // 0.4 sigma make 5-point Gauss-Legendre exact to rounding.
        let p = 1.0 - b * m + b * lam;
        let (x0, sd) = (b * lam * mu / p, 1.0 / p.sqrt());
        let (mut z, mut zh, mut zh2) = (0.0, 0.0, 0.0);
        for (x, w) in gauss_legendre(x0 - 12.0 * sd, x0 + 12.0 * sd, 60) {
            let e = (-b * h(x) - 0.5 * x * x).exp() * w;
            z += e;
            zh += e * h(x);
            zh2 += e * h(x) * h(x);
        }
        let g = Gaussian::new(&l).unwrap().with_mass(m).unwrap().with_mean_components(&a).unwrap();
        prop_assert!((g.log_z(b).unwrap() - z.ln()).abs() < 1e-12);
        let u = zh / z;
        let var = zh2 / z - u * u;
        prop_assert!((g.energy(b).unwrap() - u).abs() < 1e-10 * (1.0 + u.abs()));
        prop_assert!((g.energy_variance(b).unwrap() - var).abs() < 1e-9 * (1.0 + var));
    }

    /// Eq. (5.9) for N = 2 with a rotated G: log Z and U by two-dimensional quadrature of the
    /// integrand written with the matrix G itself. The eigenbasis only orients the grid.
    #[test]
    fn partition_function_n2_by_quadrature(
        (l, mu, m, b) in small_model(2),
        theta in 0.0f64..std::f64::consts::PI,
    ) {
        let (c, s) = (theta.cos(), theta.sin());
        // Eigenvectors v1 = (c, s), v2 = (-s, c); G = sum lambda_i v_i v_i^T.
        let v = [[c, s], [-s, c]];
        let gm = [
            [l[0] * c * c + l[1] * s * s, (l[0] - l[1]) * c * s],
            [(l[0] - l[1]) * c * s, l[0] * s * s + l[1] * c * c],
        ];
        let h = |x: [f64; 2]| {
            let d = [x[0] - mu[0], x[1] - mu[1]];
            let q = d[0] * (gm[0][0] * d[0] + gm[0][1] * d[1]) + d[1] * (gm[1][0] * d[0] + gm[1][1] * d[1]);
            0.5 * q - 0.5 * m * (x[0] * x[0] + x[1] * x[1])
        };
        // a_i = v_i . mu (Eq. 5.12).
        let a = [v[0][0] * mu[0] + v[0][1] * mu[1], v[1][0] * mu[0] + v[1][1] * mu[1]];
        // Centre of the Gaussian: x0 = sum_i beta lambda_i a_i / P_i v_i, P_i = 1 - beta m + beta lambda_i.
        let p = [1.0 - b * m + b * l[0], 1.0 - b * m + b * l[1]];
        let y0 = [b * l[0] * a[0] / p[0], b * l[1] * a[1] / p[1]];
        let sd = [1.0 / p[0].sqrt(), 1.0 / p[1].sqrt()];
        let q1 = gauss_legendre(y0[0] - 12.0 * sd[0], y0[0] + 12.0 * sd[0], 40);
        let q2 = gauss_legendre(y0[1] - 12.0 * sd[1], y0[1] + 12.0 * sd[1], 40);
        let (mut z, mut zh) = (0.0, 0.0);
        for &(y1, w1) in &q1 {
            for &(y2, w2) in &q2 {
                let x = [y1 * v[0][0] + y2 * v[1][0], y1 * v[0][1] + y2 * v[1][1]];
                let hx = h(x);
                let e = (-b * hx - 0.5 * (x[0] * x[0] + x[1] * x[1])).exp() * w1 * w2;
                z += e;
                zh += e * hx;
            }
        }
        let g = Gaussian::new(&l).unwrap().with_mass(m).unwrap().with_mean_components(&a).unwrap();
        // 40 panels of 0.6 sigma per axis: Gauss-Legendre error far below 1e-12.
        prop_assert!((g.log_z(b).unwrap() - z.ln()).abs() < 1e-11, "{} {}", g.log_z(b).unwrap(), z.ln());
        prop_assert!((g.energy(b).unwrap() - zh / z).abs() < 1e-9 * (1.0 + (zh / z).abs()));
    }

    /// Second law (7.6) in the model: S falls as beta grows at a fixed spectrum (dS/dbeta =
    /// -beta Var H < 0), with any mass and mean state.
    #[test]
    fn entropy_falls_with_beta(
        l in zero_sum_spectrum(1..=50, 5.0),
        a in prop::collection::vec(-1.0f64..1.0, 50),
        m in -0.5f64..0.5,
        b in beta(1e-2, 1e2),
        ratio in 1.01f64..3.0,
    ) {
        let g = Gaussian::new(&l).unwrap().with_mass(m).unwrap();
        // Keep ratio * beta inside the domain.
        let b = b.min(0.9 * g.beta_max() / ratio);
        let g = g.with_mean_components(&a[..l.len()]).unwrap();
        let (s1, s2) = (g.entropy(b).unwrap(), g.entropy(ratio * b).unwrap());
        prop_assert!(g.energy_variance(b).unwrap() > 0.0);
        prop_assert!(s2 < s1, "S({}) = {} >= S({}) = {}", ratio * b, s2, b, s1);
    }

    /// Second law in the model: S falls as any lambda_i grows (m = 0, as in Eq. 6.5):
    /// dS/dlambda_i = -beta^2 lambda_i / (2 (1 + beta lambda_i)^2) < 0.
    #[test]
    fn entropy_falls_as_an_eigenvalue_grows(
        l in zero_sum_spectrum(1..=50, 5.0),
        pick in any::<prop::sample::Index>(),
        factor in 1.001f64..10.0,
        b in beta(1e-2, 1e2),
    ) {
        let i = pick.index(l.len());
        let mut l2 = l.clone();
        l2[i] *= factor;
        let s1 = Gaussian::new(&l).unwrap().entropy(b).unwrap();
        let s2 = Gaussian::new(&l2).unwrap().entropy(b).unwrap();
        // Exact change: integral of -beta x / (2 (1 + x)^2) dx over x = beta lambda; compare
        // against rounding of S (eps times the sum of |terms|).
        let x1 = b * l[i];
        let x2 = b * l2[i];
        let exact = 0.5 * ((x2 / (1.0 + x2) - (1.0 + x2).ln()) - (x1 / (1.0 + x1) - (1.0 + x1).ln()));
        let round = 1e-13 * (s1.abs() + l.len() as f64 * (1.0 + b.ln().abs()));
        prop_assert!(exact < 0.0);
        prop_assert!(((s2 - s1) - exact).abs() <= round + 1e-9 * exact.abs());
        if exact.abs() > round {
            prop_assert!(s2 < s1);
        }
    }

    /// Second law in the model: S falls under every spread of log lambda that keeps
    /// sum log lambda = 0: moving t from a smaller log lambda to a larger one, and scaling all
    /// log lambda by c > 1. (S is a sum of a concave function of log lambda_i, hence
    /// Schur-concave.)
    #[test]
    fn entropy_falls_under_spreads(
        l in zero_sum_spectrum(2..=50, 5.0),
        pi in any::<prop::sample::Index>(),
        pj in any::<prop::sample::Index>(),
        t in 0.01f64..3.0,
        c in 1.01f64..2.0,
        b in beta(1e-2, 1e2),
    ) {
        // Two different eigenvalues, i the smaller.
        let i0 = pi.index(l.len());
        let j0 = (i0 + 1 + pj.index(l.len() - 1)) % l.len();
        let (i, j) = if l[i0] < l[j0] { (i0, j0) } else { (j0, i0) };
        prop_assume!(l[i] < l[j]);
        let s = |v: &[f64]| Gaussian::new(v).unwrap().entropy(b).unwrap();
        let s0 = s(&l);
        let mut moved = l.clone();
        moved[i] *= (-t).exp();
        moved[j] *= t.exp();
        let sum_log: f64 = moved.iter().map(|x| x.ln()).sum();
        prop_assert!(sum_log.abs() < 1e-10);
        let round = 1e-13 * (s0.abs() + l.len() as f64 * (1.0 + b.ln().abs()));
        prop_assert!(s(&moved) < s0 + round);
        let scaled: Vec<f64> = l.iter().map(|x| x.powf(c)).collect();
        prop_assert!(s(&scaled) < s0 + round);
    }

    /// How accurate the decomposition (6.6)-(7.5) is as a function of how far the spectrum sits
    /// from 1/beta: with |log(beta lambda_i)| >= delta for all i, |F - F_dec| and |U - U_dec|
    /// are at most (N / 2 beta) e^-delta and |S - S_dec| / beta at most (N / beta) e^-delta.
    #[test]
    fn decomposition_accuracy_bound(
        (b, l, delta) in (beta(0.01, 100.0), 0.0f64..8.0).prop_flat_map(|(b, d)| {
            (Just(b), spectrum_away_from(b, 1..=40, d, 6.0), Just(d))
        }),
    ) {
        let acc = DecompositionAccuracy::new(&l, b, &EigenvalueSplit::default()).unwrap();
        let n = l.len() as f64;
        let e = (-delta).exp();
        // Rounding of F and F_dec, each a sum of N terms of size ~ |log(beta lambda)| / beta.
        let round = 1e-13 * n * (1.0 + delta + 6.0 + b.ln().abs()) / b;
        prop_assert!(acc.log_distance >= delta * (1.0 - 1e-12));
        prop_assert!(acc.free_energy_error.abs() <= n / (2.0 * b) * e + round);
        prop_assert!(acc.energy_error.abs() <= n / (2.0 * b) * e + round);
        prop_assert!(acc.entropy_error.abs() / b <= n / b * e + round);
        prop_assert!(acc.free_energy_error.abs() <= acc.free_energy_bound + round);
        prop_assert!(acc.energy_error.abs() <= acc.energy_bound + round);
        prop_assert!((acc.energy_error - acc.free_energy_error).abs() <= acc.first_law_bound + round);
    }

    /// First law (7.11): between two equilibrium states at one temperature (equal exact free
    /// energy), dU = T dS_0 + T dC holds to the accuracy of the decomposition. The second state
    /// moves a large eigenvalue below 1/beta (N_> changes) and raises another large one so that
    /// sum log(1 + beta lambda), hence F, is unchanged.
    #[test]
    fn first_law_between_equilibrium_states(
        (b, l, delta) in (beta(0.01, 100.0), 0.5f64..8.0).prop_flat_map(|(b, d)| {
            (Just(b), spectrum_away_from(b, 1..=40, d, 6.0), Just(d))
        }),
        drop in 0.0f64..6.0,
        t1 in 0.0f64..6.0,
        t2 in 0.0f64..6.0,
    ) {
        let split = EigenvalueSplit::default();
        // Two more large eigenvalues, at least delta above 1/beta.
        let mut l = l;
        l.push((delta + t1).exp() / b);
        l.push((delta + t2).exp() / b);
        let (k, j) = (l.len() - 2, l.len() - 1);
        let mut l2 = l.clone();
        let xk_new = (-(delta + drop)).exp();
        l2[k] = xk_new / b;
        let gain = (1.0 + b * l[k]).ln() - xk_new.ln_1p();
        l2[j] = ((1.0 + b * l[j]) * gain.exp() - 1.0) / b;
        let fl = FirstLaw::new(&l, &l2, b, &split).unwrap();
        let n = l.len() as f64;
        let round = 1e-12 * n * (1.0 + delta + 12.0 + b.ln().abs()) / b;
        prop_assert!(fl.delta_free_energy.abs() <= round);
        prop_assert!(fl.residual.abs() <= fl.bound + 2.0 * round);
        // Both states sit at least delta from 1/beta: bound <= (2N / beta) e^-delta.
        prop_assert!(fl.bound <= 2.0 * n / b * (-delta).exp() * (1.0 + 1e-12));
        let report = LawChecker::new(split, 0.0, 2.0 * round).unwrap().check(&[
            TrajectoryPoint { beta: b, spectrum: &l },
            TrajectoryPoint { beta: b, spectrum: &l2 },
        ]).unwrap();
        prop_assert!(report.steps[0].first_law_violation.is_none());
    }

    /// The landscape of Eq. (9.3): every nontrivial stationary point found numerically lies on
    /// the closed-form branch beta (e^((2+p)u/3) + e^((1+2p)u/3)) = 1 and every branch point in
    /// the range is found; maxima and minima alternate.
    #[test]
    fn landscape_stationary_points_are_the_branch(
        b in beta(0.02, 5.0),
        gamma in 0.02f64..0.98,
    ) {
        let land = Landscape::new(b, gamma, 854).unwrap();
        let (lo, hi) = (-15.0, 15.0);
        let pts = land.stationary_points(lo, hi, 3000).unwrap();
        let nontrivial: Vec<f64> = pts.iter().map(|p| p.log_lambda).filter(|&u| u != 0.0).collect();
        prop_assert!(pts.iter().any(|p| p.log_lambda == 0.0));
        for &u in &nontrivial {
            // Bisection leaves ~1e-16 |u| in u; beta depends on u with slope <= max|e_k| beta.
            let bb = beta_from_gap(u, gamma).unwrap();
            prop_assert!((bb - b).abs() <= 1e-10 * b, "u {} gives beta {} not {}", u, bb, b);
        }
        let branch: Vec<f64> = branch_log_lambdas(b, gamma).unwrap().into_iter()
            .filter(|&u| u > lo + 0.01 && u < hi - 0.01 && u.abs() > 1e-6).collect();
        let found: Vec<f64> = nontrivial.iter().copied().filter(|&u| u > lo + 0.01 && u < hi - 0.01).collect();
        prop_assert_eq!(branch.len(), found.len(), "branch {:?} vs found {:?}", branch, found);
        for (x, y) in branch.iter().zip(&found) {
            prop_assert!((x - y).abs() <= 1e-9 * (1.0 + x.abs()));
        }
        for w in pts.windows(2) {
            prop_assert!(w[0].kind != w[1].kind || w[0].kind == StationaryKind::Inflection);
        }
        for p in &pts {
            match p.kind {
                StationaryKind::Maximum => prop_assert!(p.second_derivative <= 0.0),
                StationaryKind::Minimum => prop_assert!(p.second_derivative >= 0.0),
                StationaryKind::Inflection => {}
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The strategies deliver what they promise, and septuple-core's are re-exported.
    #[test]
    fn strategies_make_what_they_promise(
        l in zero_sum_spectrum(1..=30, 3.0),
        p in positive_spectrum(1..=30, 0.1, 10.0),
        (b, far) in beta(0.1, 10.0).prop_flat_map(|b| (Just(b), spectrum_away_from(b, 1..=30, 2.0, 1.0))),
        net in septuple_thermo::strategies::layered(1..=3, 1..=5),
    ) {
        let sum_log: f64 = l.iter().map(|x| x.ln()).sum();
        prop_assert!(sum_log.abs() < 1e-12);
        prop_assert!(p.iter().all(|&x| (0.1 * (1.0 - 1e-12)..=10.0 * (1.0 + 1e-12)).contains(&x)));
        let within = |x: f64| {
            let d = (b * x).ln().abs();
            (2.0 - 1e-12..=3.0 + 1e-12).contains(&d)
        };
        prop_assert!(far.iter().all(|&x| within(x)));
        prop_assert!(net.to_septuple().unwrap().feedforward().is_ok());
    }
}
