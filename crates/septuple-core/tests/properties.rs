//! Property tests of septuple-core over random feedforward septuples.

use approx::assert_abs_diff_eq;
use ndarray::{Array1, Array2};
use proptest::prelude::*;
use septuple_core::strategies::{feedforward_septuple, layered};
use septuple_core::{
    Activation, Boundary, BulkLoss, BulkSolver, CoreError, FixedPointOptions, Layered, Loss,
    Network, Potential, Septuple, SolveStatus,
};

/// Deterministic input data in [-1, 1] for a network with `n_in` inputs.
fn inputs(s: usize, n_in: usize, phase: f64) -> Array2<f64> {
    Array2::from_shape_fn((s, n_in), |(i, j)| {
        ((i * n_in + j) as f64 * 0.61 + phase).sin()
    })
}

fn targets(s: usize, n_out: usize, phase: f64) -> Array2<f64> {
    Array2::from_shape_fn((s, n_out), |(i, j)| {
        0.9 * ((i + 2 * j) as f64 * 1.7 + phase).cos()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The fixed-point iteration of Eqs. (2.5)/(2.9) reaches the layered sweep after exactly
    /// as many steps as the graph's longest path (L - 1 when no weight vanishes).
    #[test]
    fn fixed_state_equals_layered_sweep(net in layered(1..=6, 1..=12), phase in -3.0f64..3.0) {
        let x = inputs(5, net.layer_sizes()[0], phase);
        let sweep = net.forward_states(x.view()).unwrap();
        let sep = net.to_septuple().unwrap();
        let ff = sep.feedforward().unwrap();
        let fixed = sep.fixed_state(x.view(), &FixedPointOptions::default()).unwrap();
        prop_assert!(fixed.steps < ff.depth);
        prop_assert_eq!(ff.depth, net.depth());
        // Same sums in another order: a few ulps of O(1) numbers, amplified by at most
        // |w| <= 1.5 per layer through 1-Lipschitz activations over <= 6 layers.
        assert_abs_diff_eq!(fixed.states, sweep, epsilon = 1e-12);
    }

    /// Layered -> global -> layered is the identity, and so is global -> layered -> global
    /// for a septuple built from a layered network.
    #[test]
    fn layered_global_round_trip(net in layered(1..=6, 1..=12)) {
        let sep = net.to_septuple().unwrap();
        let back = sep.to_layered(net.layer_sizes()).unwrap();
        prop_assert_eq!(&back, &net);
        prop_assert_eq!(back.to_septuple().unwrap(), sep);
    }

    /// Adding one connection that closes a cycle is always rejected as a cycle (Eq. 2.1),
    /// and the reported neurons do form a cycle.
    #[test]
    fn validation_rejects_any_cycle(sep in feedforward_septuple(2..=12), pick in any::<prop::sample::Index>(), pick2 in any::<prop::sample::Index>(), v in 0.1f64..2.0) {
        let ff = sep.feedforward().unwrap();
        let n = sep.n_neurons();
        // Pick a neuron a and any neuron c reachable from it (c = a allowed: a self-loop);
        // the added connection c -> a closes a cycle of any length the graph offers.
        let w = sep.weights();
        let a = ff.order[pick.index(n)];
        let mut reach = vec![a];
        let mut seen = vec![false; n];
        seen[a] = true;
        let mut head = 0;
        while head < reach.len() {
            let j = reach[head];
            head += 1;
            for i in 0..n {
                if w[[i, j]] != 0.0 && !seen[i] {
                    seen[i] = true;
                    reach.push(i);
                }
            }
        }
        let c = reach[pick2.index(reach.len())];
        let (into, from) = (a, c);
        let (mut w, b, acts, inp, out) = sep.into_parts();
        w[[into, from]] = v;
        let cyclic = Septuple::new(w.clone(), b, acts, inp, out).unwrap();
        match cyclic.feedforward() {
            Err(CoreError::Cycle { cycle }) => {
                prop_assert!(!cycle.is_empty());
                for k in 0..cycle.len() {
                    let (a, c) = (cycle[k], cycle[(k + 1) % cycle.len()]);
                    prop_assert!(w[[c, a]] != 0.0, "{:?} is not a cycle", cycle);
                }
            }
            other => prop_assert!(false, "expected a cycle, got {:?}", other),
        }
    }

    /// Random general feedforward septuples pass Eqs. (2.1)-(2.3) and converge to their fixed
    /// state within L steps.
    #[test]
    fn feedforward_septuples_reach_their_fixed_state(sep in feedforward_septuple(1..=12)) {
        let ff = sep.feedforward().unwrap();
        let x = inputs(3, sep.inputs().len(), 0.4);
        let fixed = sep.fixed_state(x.view(), &FixedPointOptions::default()).unwrap();
        prop_assert!(fixed.steps <= ff.depth);
        // The fixed state satisfies Eq. (2.9) on every driven neuron, exactly.
        for s in 0..3 {
            let xs = fixed.states.row(s);
            let y = sep.weights().dot(&xs) + sep.bias();
            for &i in sep.driven() {
                // w x + b summed in another order than the batched step: a few ulps.
                prop_assert!((xs[i] - sep.activations()[i].value(y[i])).abs() <= 1e-14);
            }
        }
    }

    /// The bulk solve never raises H above its value at the forward state and ends at a
    /// stationary point of the box-constrained problem (KKT conditions).
    #[test]
    fn bulk_solve_lowers_h_and_is_stationary(
        sep in feedforward_septuple(2..=12),
        m in prop_oneof![Just(0.0), 0.0f64..2.0],
        phase in -3.0f64..3.0,
    ) {
        let s = 4;
        let x = inputs(s, sep.inputs().len(), phase);
        let t = targets(s, sep.outputs().len(), phase);
        let bd = if sep.outputs().is_empty() { Boundary::inputs_only(x.view()) } else { Boundary::new(x.view(), t.view()) };
        let pot = Potential::mass(m);
        let loss = BulkLoss::with_potential(pot.clone());
        let mut fwd = sep.forward_states(x.view()).unwrap();
        bd.impose(&sep, &mut fwd).unwrap();
        let h_fwd = loss.values(&sep, fwd.view(), &bd).unwrap();
        let sol = BulkSolver::default().solve(&sep, &pot, &bd).unwrap();
        let h = loss.values(&sep, sol.states.view(), &bd).unwrap();
        let g = loss.gradients(&sep, sol.states.view(), &bd).unwrap();
        for k in 0..s {
            prop_assert!(h[k] <= h_fwd[k], "H rose from {} to {}", h_fwd[k], h[k]);
            prop_assert_eq!(h[k], sol.reports[k].loss);
            prop_assert_eq!(sol.reports[k].status, SolveStatus::Converged, "{:?}", sol.reports[k]);
            for &i in sep.bulk() {
                let (xi, gi) = (sol.states[[k, i]], g[[k, i]]);
                let (lo, hi) = sep.activations()[i].range();
                // The solver's tolerance is 1e-10 on the same gradient, computed in another
                // order: allow rounding on top.
                let tol = 1e-9;
                if xi >= hi { prop_assert!(gi <= tol); }
                else if xi <= lo { prop_assert!(gi >= -tol); }
                else { prop_assert!(gi.abs() <= tol, "interior gradient {} at {}", gi, xi); }
            }
        }
    }

    /// At the forward states with the outputs clamped to the targets, the bulk loss without
    /// local objectives equals the boundary loss: every hidden residual vanishes and the output
    /// residuals are the output errors. So the bulk loss says something beyond H_d only as the
    /// minimum over the bulk, Eq. (4.1).
    #[test]
    fn forward_bulk_loss_is_the_boundary_loss(sep in feedforward_septuple(2..=12), phase in -3.0f64..3.0) {
        let x = inputs(3, sep.inputs().len(), phase);
        let t = targets(3, sep.outputs().len(), phase);
        let bd = if sep.outputs().is_empty() { Boundary::inputs_only(x.view()) } else { Boundary::new(x.view(), t.view()) };
        let fwd = sep.forward_states(x.view()).unwrap();
        let mut clamped = fwd.clone();
        bd.impose(&sep, &mut clamped).unwrap();
        let u = BulkLoss::new().values(&sep, clamped.view(), &bd).unwrap();
        let u_d = septuple_core::BoundaryLoss.values(&sep, fwd.view(), &bd).unwrap();
        // The same squares summed in another order (and f(y) recomputed): rounding only.
        assert_abs_diff_eq!(u, u_d, epsilon = 1e-13);
    }

    /// JSON round trips are lossless for both forms.
    #[test]
    fn serde_round_trip_is_lossless(net in layered(1..=4, 1..=8)) {
        let json = serde_json::to_string(&net).unwrap();
        let back: Layered = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &net);
        let sep = net.to_septuple().unwrap();
        let json = serde_json::to_string(&sep).unwrap();
        let back: Septuple = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, sep);
    }

    /// Arbitrary, also malformed, arguments to the constructors give a typed error or a valid
    /// value, never a panic.
    #[test]
    fn constructors_never_panic(
        n in 0usize..6, m in 0usize..6,
        vals in prop::collection::vec(prop_oneof![Just(f64::NAN), Just(f64::INFINITY), -3.0f64..3.0], 0..40),
        inp in prop::collection::vec(0usize..8, 0..4),
        out in prop::collection::vec(0usize..8, 0..4),
        sizes in prop::collection::vec(0usize..5, 0..5),
        seed in any::<u64>(),
    ) {
        let take = |k: usize| -> Vec<f64> { (0..k).map(|i| vals.get(i).copied().unwrap_or(0.5)).collect() };
        let w = Array2::from_shape_vec((n, m), take(n * m)).unwrap();
        let b = Array1::from(take(n));
        let r = Septuple::with_activation(w.clone(), b.clone(), septuple_core::Builtin::Tanh, inp.clone(), out.clone());
        if let Ok(sep) = &r {
            let _ = sep.feedforward();
            let _ = sep.to_layered(&sizes);
            let x = Array2::from_shape_vec((1, inp.len()), take(inp.len())).unwrap();
            let _ = sep.fixed_state(x.view(), &FixedPointOptions { max_steps: 20, ..Default::default() });
            let t = Array2::from_shape_vec((1, out.len()), take(out.len())).unwrap();
            let _ = BulkSolver::default().solve(sep, &Potential::mass(vals.first().copied().unwrap_or(0.0)), &Boundary::new(x.view(), t.view()));
        }
        let _ = Layered::random(&sizes, septuple_core::Builtin::Tanh, septuple_core::Init::Normal { std: vals.first().copied().unwrap_or(1.0) }, seed);
        let lw = vec![w];
        let _ = Layered::from_layers(lw, vec![b], vec![septuple_core::Builtin::Tanh]);
        let _ = serde_json::from_str::<Septuple>(&format!("{{\"w\":{{\"v\":1,\"dim\":[{n},{m}],\"data\":[]}},\"b\":[],\"activations\":[],\"inputs\":{inp:?},\"outputs\":{out:?}}}"));
    }
}

#[test]
fn malformed_json_is_a_typed_error() {
    // Valid JSON, invalid septuple: overlapping projections.
    let json = r#"{"w":{"v":1,"dim":[2,2],"data":[0,0,1,0]},"b":{"v":1,"dim":[2],"data":[0,0]},"activations":["tanh","tanh"],"inputs":[0],"outputs":[0]}"#;
    let e = serde_json::from_str::<Septuple>(json).unwrap_err();
    assert!(e.to_string().contains("both an input and an output"), "{e}");
    let json = r#"{"weights":[{"v":1,"dim":[1,2],"data":[1,2]}],"biases":[{"v":1,"dim":[2],"data":[0,0]}],"activations":["tanh"]}"#;
    let e = serde_json::from_str::<Layered>(json).unwrap_err();
    assert!(e.to_string().contains("bias vector of layer 1"), "{e}");
}
