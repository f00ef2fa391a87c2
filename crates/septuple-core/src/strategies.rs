//! proptest strategies for random septuples (feature `proptest`), for property tests of your own.
//!
//! ```
//! use proptest::prelude::*;
//! use septuple_core::strategies;
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(16))]
//!     fn every_random_layered_network_is_feedforward(net in strategies::layered(1..=4, 1..=6)) {
//!         let ff = net.to_septuple().unwrap().feedforward().unwrap();
//!         prop_assert!(ff.depth <= net.depth());
//!     }
//! }
//! every_random_layered_network_is_feedforward();
//! ```

use std::ops::RangeInclusive;

use ndarray::{Array1, Array2};
use proptest::prelude::*;

use crate::{Builtin, Layered, Septuple, SparseSeptuple};

/// A smooth built-in activation (tanh or logistic).
pub fn smooth_activation() -> impl Strategy<Value = Builtin> {
    prop_oneof![Just(Builtin::Tanh), Just(Builtin::Logistic)]
}

/// Any built-in activation.
pub fn any_activation() -> impl Strategy<Value = Builtin> {
    prop_oneof![
        Just(Builtin::Tanh),
        Just(Builtin::Logistic),
        Just(Builtin::Relu),
        Just(Builtin::Identity)
    ]
}

/// Layer sizes: `weight_layers` weight matrices (so one more layer of neurons), each layer's
/// width drawn from `widths`.
pub fn layer_sizes(
    weight_layers: RangeInclusive<usize>,
    widths: RangeInclusive<usize>,
) -> impl Strategy<Value = Vec<usize>> {
    let (lo, hi) = (*weight_layers.start(), *weight_layers.end());
    (lo.max(1)..=hi.max(1)).prop_flat_map(move |l| prop::collection::vec(widths.clone(), l + 1))
}

/// A layered tanh/logistic network with 1 + `weight_layers` layers of `widths` neurons each,
/// weights and biases uniform in [-1.5, 1.5].
pub fn layered(
    weight_layers: RangeInclusive<usize>,
    widths: RangeInclusive<usize>,
) -> impl Strategy<Value = Layered<Builtin>> {
    layer_sizes(weight_layers, widths).prop_flat_map(|sizes| {
        let layers: Vec<_> = sizes
            .windows(2)
            .map(|p| {
                (
                    prop::collection::vec(-1.5f64..1.5, p[0] * p[1]),
                    prop::collection::vec(-1.5f64..1.5, p[1]),
                    smooth_activation(),
                )
            })
            .collect();
        layers.prop_map(move |ls| {
            let mut weights = Vec::new();
            let mut biases = Vec::new();
            let mut acts = Vec::new();
            for (l, (w, b, a)) in ls.into_iter().enumerate() {
                weights.push(
                    Array2::from_shape_vec((sizes[l + 1], sizes[l]), w)
                        .unwrap_or_else(|e| unreachable!("{e}")),
                );
                biases.push(Array1::from(b));
                acts.push(a);
            }
            Layered::from_layers(weights, biases, acts).unwrap_or_else(|e| unreachable!("{e}"))
        })
    })
}

/// A feedforward septuple that need not be layered: `n` neurons in a random order, each
/// connection from an earlier to a later neuron present with probability 1/2 (weights in
/// [-1.5, 1.5]), then every input's incoming and every output's outgoing connections removed
/// (Eqs. 2.2, 2.3). Inputs and outputs are disjoint random sets; the rest is the bulk.
pub fn feedforward_septuple(n: RangeInclusive<usize>) -> impl Strategy<Value = Septuple<Builtin>> {
    n.prop_flat_map(|n| {
        (
            Just(n),
            Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
            prop::collection::vec((any::<bool>(), -1.5f64..1.5), n * n),
            prop::collection::vec(-1.5f64..1.5, n),
            prop::collection::vec(0u8..3, n),
            smooth_activation(),
        )
    })
    .prop_map(|(n, order, links, b, roles, act)| {
        let mut pos = vec![0; n];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }
        let inputs: Vec<usize> = (0..n).filter(|&i| roles[i] == 0).collect();
        let outputs: Vec<usize> = (0..n).filter(|&i| roles[i] == 1).collect();
        let w = Array2::from_shape_fn((n, n), |(i, j)| {
            let (on, v) = links[i * n + j];
            let ok = on && pos[j] < pos[i] && roles[i] != 0 && roles[j] != 1;
            if ok {
                v
            } else {
                0.0
            }
        });
        Septuple::new(w, Array1::from(b), vec![act; n], inputs, outputs)
            .unwrap_or_else(|e| unreachable!("{e}"))
    })
}

/// The septuples of [`feedforward_septuple`] in sparse form (w as CSR, zeros not stored).
pub fn sparse_septuple(n: RangeInclusive<usize>) -> impl Strategy<Value = SparseSeptuple<Builtin>> {
    feedforward_septuple(n).prop_map(|s| SparseSeptuple::from(&s))
}
