//! Property-testing the laws of learning on your own networks: a test to copy (see
//! docs/laws.md). Replace the `layered` strategy by one that draws the networks you study, keep
//! the properties, and keep the tolerances with their reasons.
//!
//! What is a valid property, and what is not:
//! - det G = 1 (Eqs. 7.7-7.8) for every feedforward network: an identity.
//! - The second law in beta (7.6 read at a fixed network): S of the model (5.14) falls as beta
//!   grows, dS/d beta = -beta Var H < 0: an identity of the model.
//! - The first law (7.11): dU - T dS_0 - T dC equals the change dF of the exact free energy up to
//!   the decomposition's bound, between any two networks of one size at any beta: an identity.
//!   That dF = 0 (a transition between equilibrium states) is the premise of (7.10), not a
//!   property: a real training step need not satisfy it.
//! - The second law between two training states is a measurement, not a property: it can fail,
//!   and whether it holds depends on the temperature. At a cold beta (every eigenvalue large) it
//!   cannot fail at all, because S is the same for every feedforward network there; the last
//!   property shows it, so check the laws at a temperature from the gap instead.

use ndarray::{Array1, Array2};
use proptest::prelude::*;
use septuple::core::{Layered, Network};
use septuple::spectral::{spectrum, Faer, Method};
use septuple::thermo::{strategies, EigenvalueSplit, FirstLaw, Gaussian};

/// The spectrum of G (5.6) at the mean forward state (5.3) of `samples` fixed inputs.
fn spectrum_at_mean(net: &Layered, samples: usize) -> Vec<f64> {
    let n_in = net.inputs().len();
    let inputs = Array2::from_shape_fn((samples, n_in), |(s, i)| {
        ((s * 7 + i * 3) % 11) as f64 / 5.0 - 1.0
    });
    let mean = net.mean_state(inputs.view()).unwrap();
    spectrum(net, mean.view(), Method::Dense, &Faer::default())
        .unwrap()
        .eigenvalues
}

/// The same network with every weight scaled by `factor` (a step of "learning" of one size).
fn scaled(net: &Layered, factor: f64) -> Layered {
    let mut out = net.clone();
    for (l, (w, b)) in net.weights().iter().zip(net.biases()).enumerate() {
        let w: Array2<f64> = w * factor;
        let b: Array1<f64> = b.clone();
        out.set_layer(l, w.view(), b.view()).unwrap();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Eqs. (7.7)-(7.8): sum log lambda = log det G = 0. M = I - f'w is unit triangular in a
    /// topological order; the eigenvalues come from singular values with relative error ~N eps
    /// each, so the sum of N <= 25 logs is zero to 1e-10.
    #[test]
    fn det_g_is_one(net in strategies::layered(1..=3, 1..=6)) {
        let l = spectrum_at_mean(&net, 8);
        let sum: f64 = l.iter().map(|v| v.ln()).sum();
        prop_assert!(sum.abs() < 1e-10, "sum log lambda = {sum}");
    }

    /// The second law in beta: S(2 beta) < S(beta) at a fixed network. S falls by
    /// integral beta Var H d beta > 0, far above rounding for any N >= 1 and these betas.
    #[test]
    fn entropy_falls_as_the_network_cools(
        net in strategies::layered(1..=3, 1..=6),
        beta in strategies::beta(0.05, 20.0),
    ) {
        let l = spectrum_at_mean(&net, 8);
        let g = Gaussian::new(&l).unwrap();
        prop_assert!(g.entropy(2.0 * beta).unwrap() < g.entropy(beta).unwrap());
    }

    /// The first law (7.11) as an identity: between a network and the same network with scaled
    /// weights, at one beta, |(dU - T dS_0 - T dC) - dF| stays within the decomposition's bound
    /// (`FirstLaw::bound`, the summed accuracy of both states' decompositions), plus rounding
    /// of sums of N terms of size up to N (1e-9).
    #[test]
    fn the_first_law_holds_up_to_its_bound(
        net in strategies::layered(1..=3, 1..=6),
        factor in 0.5f64..2.0,
        beta in strategies::beta(0.1, 10.0),
    ) {
        let (a, b) = (spectrum_at_mean(&net, 8), spectrum_at_mean(&scaled(&net, factor), 8));
        let law = FirstLaw::new(&a, &b, beta, &EigenvalueSplit::default()).unwrap();
        prop_assert!(
            (law.residual - law.delta_free_energy).abs() <= law.bound + 1e-9,
            "{law:?}"
        );
    }

    /// Not a law but the reason to choose the temperature: with sum log lambda = 0, S of (5.14)
    /// at beta is const - (N/2) log beta - sum_i 1/(beta lambda_i) + O((beta lambda)^-2), the
    /// same for every feedforward network of that N up to the sum of 1/(beta lambda). At the
    /// betas from U = N_>/(2 beta) (1e3-1e5 in the experiment) a second-law check between two
    /// training states therefore says nothing; at beta from the gap it can fail.
    #[test]
    fn a_cold_second_law_check_cannot_fail(
        net in strategies::layered(1..=3, 1..=6),
        factor in 0.5f64..2.0,
    ) {
        let (a, b) = (spectrum_at_mean(&net, 8), spectrum_at_mean(&scaled(&net, factor), 8));
        let smallest = a.iter().chain(&b).copied().fold(f64::INFINITY, f64::min);
        // Cold: every beta lambda >= 1e3, where |S - (const - 1/2 sum log lambda)| is at most
        // 2 sum 1/(beta lambda) (the series alternates with shrinking terms).
        let beta = 1e3 / smallest;
        let (sa, sb) = (
            Gaussian::new(&a).unwrap().entropy(beta).unwrap(),
            Gaussian::new(&b).unwrap().entropy(beta).unwrap(),
        );
        let tail: f64 = a.iter().chain(&b).map(|l| 2.0 / (beta * l)).sum();
        prop_assert!((sa - sb).abs() <= tail + 1e-9 * sa.abs(), "{sa} {sb} {tail}");
    }
}
