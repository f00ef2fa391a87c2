//! The neural septuple (x, P_in, P_out, w, b, f, H) of Sec. 2 over N neurons.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::activation::{Activation, Builtin};
use crate::error::{check_finite, CoreError};
use crate::graph::{Digraph, Topology};

/// The role of a neuron: on the boundary (input or output) or in the bulk (hidden).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An input neuron: spanned by P_in, clamped to data (Eqs. 2.4, 2.7).
    Input,
    /// An output neuron: spanned by P_out.
    Output,
    /// A hidden neuron of the bulk, I - P_in - P_out.
    Bulk,
}

/// A neural septuple over N neurons: weight matrix w, bias b, one activation per neuron and the
/// input and output projections P_in, P_out (Sec. 2). The loss, the seventh element, is a
/// [`Loss`](crate::Loss) chosen at use; the state vector is whatever is propagated through it.
///
/// `w[[i, j]]` is the weight of the connection from neuron j into neuron i, so that one step of
/// the dynamics is x(t+1) = f(w x(t) + b) (Eq. 2.5). The projections are given as index lists:
/// P_in projects onto the neurons `inputs()` and P_out onto `outputs()`; the remaining neurons are
/// the bulk. A value of this type is always valid: shapes agree, every number is finite and the
/// projections are disjoint. It need not be feedforward; [`Septuple::feedforward`] checks
/// Eqs. (2.1)-(2.3).
///
/// Batches of states are matrices with one row per sample (S x N).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(
    try_from = "SeptupleData<A>",
    bound(deserialize = "A: Activation + Deserialize<'de>")
)]
pub struct Septuple<A = Builtin> {
    w: Array2<f64>,
    b: Array1<f64>,
    activations: Vec<A>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    bulk: Vec<usize>,
    driven: Vec<usize>,
    roles: Vec<Role>,
}

/// The serialised form of a [`Septuple`]: exactly the data it is built from.
#[derive(Deserialize)]
struct SeptupleData<A> {
    w: Array2<f64>,
    b: Array1<f64>,
    activations: Vec<A>,
    inputs: Vec<usize>,
    outputs: Vec<usize>,
}

#[derive(Serialize)]
struct SeptupleRef<'a, A> {
    w: &'a Array2<f64>,
    b: &'a Array1<f64>,
    activations: &'a [A],
    inputs: &'a [usize],
    outputs: &'a [usize],
}

impl<A: Serialize> Serialize for Septuple<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SeptupleRef {
            w: &self.w,
            b: &self.b,
            activations: &self.activations,
            inputs: &self.inputs,
            outputs: &self.outputs,
        }
        .serialize(serializer)
    }
}

impl<A: Activation> TryFrom<SeptupleData<A>> for Septuple<A> {
    type Error = CoreError;
    fn try_from(d: SeptupleData<A>) -> Result<Self, CoreError> {
        Septuple::new(d.w, d.b, d.activations, d.inputs, d.outputs)
    }
}

/// The data a [`Septuple`] is built from: (w, b, activations, inputs, outputs).
pub type Parts<A> = (Array2<f64>, Array1<f64>, Vec<A>, Vec<usize>, Vec<usize>);

/// The result of [`Septuple::feedforward`]: the septuple satisfies Eqs. (2.1)-(2.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedforward {
    /// The number of layers L of Eq. (2.1): one more than the longest directed path of the
    /// weight graph, so that w^n = 0 for all n >= L. (The graph's nilpotency index; the
    /// algebraic index of a particular w can only be smaller, by exact cancellation.)
    pub depth: usize,
    /// The neurons in a topological order: every connection runs from an earlier to a later one.
    pub order: Vec<usize>,
    /// For each neuron, the length of the longest directed path that ends at it.
    pub levels: Vec<usize>,
}

impl<A: Activation> Septuple<A> {
    /// Build and validate a septuple.
    ///
    /// `w` is N x N with `w[[i, j]]` the weight from neuron j into neuron i; `b` and `activations`
    /// have N entries; `inputs` and `outputs` list the neurons spanned by P_in and P_out (in the
    /// order in which input data and targets are given), which must be in range, free of
    /// repeats and disjoint.
    pub fn new(
        w: Array2<f64>,
        b: Array1<f64>,
        activations: Vec<A>,
        inputs: Vec<usize>,
        outputs: Vec<usize>,
    ) -> Result<Self, CoreError> {
        let n = w.nrows();
        if n == 0 {
            return Err(CoreError::Empty {
                what: "weight matrix w".into(),
            });
        }
        if w.ncols() != n {
            return Err(CoreError::shape("weight matrix w", w.shape(), &[n, n]));
        }
        let roles = check_neurons(n, &b, &activations, &inputs, &outputs)?;
        check_finite("weight matrix w", &w)?;
        let bulk = (0..n).filter(|&i| roles[i] == Role::Bulk).collect();
        let driven = (0..n).filter(|&i| roles[i] != Role::Input).collect();
        Ok(Septuple {
            w,
            b,
            activations,
            inputs,
            outputs,
            bulk,
            driven,
            roles,
        })
    }

    /// Build a septuple with one activation for every neuron.
    pub fn with_activation(
        w: Array2<f64>,
        b: Array1<f64>,
        activation: A,
        inputs: Vec<usize>,
        outputs: Vec<usize>,
    ) -> Result<Self, CoreError> {
        let n = b.len();
        Self::new(w, b, vec![activation; n], inputs, outputs)
    }

    /// The number of neurons N.
    pub fn n_neurons(&self) -> usize {
        self.b.len()
    }

    /// The weight matrix w; `w[[i, j]]` is the weight from neuron j into neuron i.
    pub fn weights(&self) -> ArrayView2<'_, f64> {
        self.w.view()
    }

    /// The bias vector b.
    pub fn bias(&self) -> ArrayView1<'_, f64> {
        self.b.view()
    }

    /// The activation of each neuron (Eq. 2.6).
    pub fn activations(&self) -> &[A] {
        &self.activations
    }

    /// The input neurons (the subspace of P_in), in the order of the columns of input data.
    pub fn inputs(&self) -> &[usize] {
        &self.inputs
    }

    /// The output neurons (the subspace of P_out), in the order of the columns of targets.
    pub fn outputs(&self) -> &[usize] {
        &self.outputs
    }

    /// The bulk (hidden) neurons, I - P_in - P_out, ascending.
    pub fn bulk(&self) -> &[usize] {
        &self.bulk
    }

    /// The neurons that the dynamics updates (every neuron that is not an input), ascending.
    pub fn driven(&self) -> &[usize] {
        &self.driven
    }

    /// The role of every neuron.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Split into (w, b, activations, inputs, outputs).
    pub fn into_parts(self) -> Parts<A> {
        (self.w, self.b, self.activations, self.inputs, self.outputs)
    }

    /// Check the feedforward conditions: w nilpotent (Eq. 2.1), checked on the weight graph by a
    /// topological sort (no matrix powers); no connection into an input (Eq. 2.2); no
    /// connection out of an output (Eq. 2.3). A connection is a non-zero `w[[i, j]]`.
    ///
    /// On success returns the depth L and a topological order; otherwise the first failing
    /// condition as a typed error ([`CoreError::Cycle`] names the neurons of one cycle).
    pub fn feedforward(&self) -> Result<Feedforward, CoreError> {
        let n = self.n_neurons();
        // The graph j -> i for w[i][j] != 0; row-major order lists each neuron's successors
        // in ascending order.
        let edges = self
            .w
            .indexed_iter()
            .filter(|(_, &v)| v != 0.0)
            .map(|((i, j), _)| (j, i));
        let graph = Digraph::from_edges(n, edges)?;
        let topology = graph
            .topology()
            .map_err(|cycle| CoreError::Cycle { cycle })?;
        let w = &self.w;
        check_feedforward(
            &topology,
            &self.inputs,
            &self.outputs,
            |i| (0..n).find(|&j| w[[i, j]] != 0.0).map(|j| (j, w[[i, j]])),
            |o| (0..n).find(|&i| w[[i, o]] != 0.0).map(|i| (i, w[[i, o]])),
        )
    }

    /// The pre-activation y = w x + b of one state x.
    pub fn preactivation(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        self.check_state(x)?;
        Ok(self.w.dot(&x) + &self.b)
    }

    /// The diagonal f'_ii of Eq. (5.4): the derivative of each neuron's activation at
    /// y = w x + b for the state x (for G, x is the mean state of Eq. 5.3).
    pub fn derivatives_at(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        let y = self.preactivation(x)?;
        Ok(Array1::from_iter(
            y.iter()
                .zip(&self.activations)
                .map(|(&y, a)| a.derivative(y)),
        ))
    }

    /// One step x(t+1) = f(w x(t) + b) of Eq. (2.5) for a batch of states (S x N), on every
    /// neuron (inputs included: for them this is f(b), which equals the data only when the
    /// input-bias condition Eq. (2.8) holds; [`Septuple::fixed_state`] clamps them instead).
    pub fn step(&self, states: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.check_states(states)?;
        let mut y = states.dot(&self.w.t());
        y += &self.b;
        for mut row in y.rows_mut() {
            for (v, a) in row.iter_mut().zip(&self.activations) {
                *v = a.value(*v);
            }
        }
        Ok(y)
    }

    /// The initial state x(0) = P_in x_d of Eq. (2.4) for a batch of inputs (S x n_in):
    /// the inputs in place, every other component zero.
    pub fn initial_state(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.check_inputs(inputs)?;
        let mut x = Array2::zeros((inputs.nrows(), self.n_neurons()));
        for (k, &i) in self.inputs.iter().enumerate() {
            x.column_mut(i).assign(&inputs.column(k));
        }
        Ok(x)
    }

    pub(crate) fn check_state(&self, x: ArrayView1<'_, f64>) -> Result<(), CoreError> {
        if x.len() != self.n_neurons() {
            return Err(CoreError::shape("state x", x.shape(), &[self.n_neurons()]));
        }
        check_finite("state x", x)
    }

    pub(crate) fn check_states(&self, x: ArrayView2<'_, f64>) -> Result<(), CoreError> {
        if x.ncols() != self.n_neurons() {
            return Err(CoreError::shape(
                "state matrix (one row per sample)",
                x.shape(),
                &[x.nrows(), self.n_neurons()],
            ));
        }
        check_finite("state matrix", x)
    }

    pub(crate) fn check_inputs(&self, inputs: ArrayView2<'_, f64>) -> Result<(), CoreError> {
        if inputs.ncols() != self.inputs.len() {
            return Err(CoreError::shape(
                "input data (one row per sample, one column per input neuron)",
                inputs.shape(),
                &[inputs.nrows(), self.inputs.len()],
            ));
        }
        check_finite("input data", inputs)
    }

    /// The rows of w that act on driven (non-input) neurons, transposed: N x R.
    pub(crate) fn driven_weights_t(&self) -> Array2<f64> {
        let r = self.driven.len();
        let mut wt = Array2::zeros((self.n_neurons(), r));
        for (k, &i) in self.driven.iter().enumerate() {
            wt.column_mut(k).assign(&self.w.row(i));
        }
        wt
    }

    /// The driven (non-input) entries of b.
    pub(crate) fn driven_bias(&self) -> Array1<f64> {
        self.driven.iter().map(|&i| self.b[i]).collect()
    }

    /// The global form as a layered network with the given layer sizes (inputs first, outputs
    /// last), the inverse of [`Layered::to_septuple`](crate::Layered::to_septuple).
    ///
    /// Requires: the sizes add up to N; the inputs are neurons 0..n_0 and the outputs the last
    /// block, both in index order; every weight outside the blocks "layer l -> layer l+1" is
    /// exactly zero; input biases are zero (the layered form has none); every neuron of a
    /// non-input layer has the same activation. The activations of input neurons are not kept:
    /// inputs are clamped, so theirs never acts.
    pub fn to_layered(&self, sizes: &[usize]) -> Result<crate::Layered<A>, CoreError>
    where
        A: PartialEq,
    {
        let n = self.n_neurons();
        let fail = |reason: String| CoreError::NotLayered {
            sizes: sizes.to_vec(),
            reason,
        };
        if sizes.len() < 2 {
            return Err(fail(
                "at least an input and an output layer are needed".into(),
            ));
        }
        if sizes.contains(&0) {
            return Err(fail("every layer needs at least one neuron".into()));
        }
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(n) {
            let total = total.map_or("more than usize::MAX".to_string(), |t| t.to_string());
            return Err(fail(format!("the sizes add up to {total}, but N = {n}")));
        }
        let mut offsets = Vec::with_capacity(sizes.len() + 1);
        offsets.push(0);
        for &s in sizes {
            offsets.push(offsets.last().copied().unwrap_or(0) + s);
        }
        let n_in = sizes[0];
        let n_out = sizes[sizes.len() - 1];
        if self.inputs != (0..n_in).collect::<Vec<_>>() {
            return Err(fail(format!(
                "the inputs must be neurons 0..{n_in} in order, found {:?}",
                self.inputs
            )));
        }
        if self.outputs != (n - n_out..n).collect::<Vec<_>>() {
            return Err(fail(format!(
                "the outputs must be neurons {}..{n} in order",
                n - n_out
            )));
        }
        let layer_of = |i: usize| offsets.partition_point(|&o| o <= i) - 1;
        for ((i, j), &v) in self.w.indexed_iter() {
            if v != 0.0 && layer_of(i) != layer_of(j) + 1 {
                return Err(fail(format!(
                    "w[{i}][{j}] = {v} connects layer {} to layer {}, not to the next layer",
                    layer_of(j),
                    layer_of(i)
                )));
            }
        }
        if let Some(i) = (0..n_in).find(|&i| self.b[i] != 0.0) {
            return Err(fail(format!(
                "input neuron {i} has bias {}; the layered form has no input bias",
                self.b[i]
            )));
        }
        let mut weights = Vec::with_capacity(sizes.len() - 1);
        let mut biases = Vec::with_capacity(sizes.len() - 1);
        let mut activations = Vec::with_capacity(sizes.len() - 1);
        for l in 1..sizes.len() {
            let (r0, r1) = (offsets[l], offsets[l + 1]);
            let (c0, c1) = (offsets[l - 1], offsets[l]);
            weights.push(self.w.slice(s![r0..r1, c0..c1]).to_owned());
            biases.push(self.b.slice(s![r0..r1]).to_owned());
            let a = &self.activations[r0];
            if let Some(i) = (r0..r1).find(|&i| self.activations[i] != *a) {
                return Err(fail(format!(
                    "neuron {i} of layer {l} has activation {:?}, neuron {r0} has {:?}; a layer needs one activation",
                    self.activations[i], a
                )));
            }
            activations.push(a.clone());
        }
        crate::Layered::from_layers(weights, biases, activations)
    }

    /// Mean over samples of a batch of states (S x N): the average `<x>` of Eq. (5.3) over the
    /// empirical ensemble the batch represents.
    pub(crate) fn mean_rows(states: &Array2<f64>, what: &str) -> Result<Array1<f64>, CoreError> {
        states.mean_axis(Axis(0)).ok_or_else(|| CoreError::Empty {
            what: what.to_string(),
        })
    }
}

/// The checks of Sec. 2 on the neuron data of a septuple of `n` neurons, for every septuple
/// type: b and the activations have n entries, b is finite, and the neurons of P_in and P_out
/// are in range, free of repeats and disjoint. Returns the role of every neuron.
pub(crate) fn check_neurons<A>(
    n: usize,
    b: &Array1<f64>,
    activations: &[A],
    inputs: &[usize],
    outputs: &[usize],
) -> Result<Vec<Role>, CoreError> {
    if b.len() != n {
        return Err(CoreError::shape("bias vector b", b.shape(), &[n]));
    }
    if activations.len() != n {
        return Err(CoreError::shape(
            "activation list",
            &[activations.len()],
            &[n],
        ));
    }
    check_finite("bias vector b", b)?;
    roles_of(n, inputs, outputs)
}

/// The feedforward conditions for every septuple type, given an acyclic weight graph's
/// `topology` (Eq. 2.1): no connection into an input (Eq. 2.2), none out of an output
/// (Eq. 2.3), the first failing one as a typed error. `first_into(i)` and `first_out_of(o)`
/// give the first connection into neuron i and out of neuron o: the other neuron and the
/// weight.
pub(crate) fn check_feedforward(
    topology: &Topology,
    inputs: &[usize],
    outputs: &[usize],
    first_into: impl Fn(usize) -> Option<(usize, f64)>,
    first_out_of: impl Fn(usize) -> Option<(usize, f64)>,
) -> Result<Feedforward, CoreError> {
    for &i in inputs {
        if let Some((from, weight)) = first_into(i) {
            return Err(CoreError::InputHasIncoming {
                input: i,
                from,
                weight,
            });
        }
    }
    for &o in outputs {
        if let Some((to, weight)) = first_out_of(o) {
            return Err(CoreError::OutputHasOutgoing {
                output: o,
                to,
                weight,
            });
        }
    }
    Ok(Feedforward {
        depth: topology.depth,
        order: topology.order.clone(),
        levels: topology.levels.clone(),
    })
}

/// The role of each of `n` neurons given the input and output lists: every index in range,
/// no repeats within a list, the lists disjoint.
pub(crate) fn roles_of(
    n: usize,
    inputs: &[usize],
    outputs: &[usize],
) -> Result<Vec<Role>, CoreError> {
    let mut roles = vec![Role::Bulk; n];
    for (what, list, role) in [
        ("input list", inputs, Role::Input),
        ("output list", outputs, Role::Output),
    ] {
        for &i in list.iter() {
            if i >= n {
                return Err(CoreError::IndexOutOfRange {
                    what: what.into(),
                    index: i,
                    n,
                });
            }
            match roles[i] {
                Role::Bulk => roles[i] = role,
                r if r == role => {
                    return Err(CoreError::DuplicateIndex {
                        what: what.into(),
                        index: i,
                    })
                }
                _ => return Err(CoreError::OverlappingProjections { index: i }),
            }
        }
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn chain(n: usize) -> Septuple {
        // 0 -> 1 -> ... -> n-1
        let mut w = Array2::zeros((n, n));
        for i in 1..n {
            w[[i, i - 1]] = 0.5;
        }
        Septuple::with_activation(w, Array1::zeros(n), Builtin::Tanh, vec![0], vec![n - 1]).unwrap()
    }

    #[test]
    fn chain_depth_is_number_of_neurons() {
        let ff = chain(5).feedforward().unwrap();
        assert_eq!(ff.depth, 5);
        assert_eq!(ff.order, vec![0, 1, 2, 3, 4]);
        assert_eq!(ff.levels, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn cycle_is_reported_with_its_neurons() {
        let mut w = Array2::zeros((4, 4));
        w[[1, 0]] = 1.0; // 0 -> 1
        w[[2, 1]] = 1.0; // 1 -> 2
        w[[3, 2]] = 1.0; // 2 -> 3
        w[[1, 3]] = 1.0; // 3 -> 1
        let s =
            Septuple::with_activation(w.clone(), Array1::zeros(4), Builtin::Tanh, vec![0], vec![])
                .unwrap();
        match s.feedforward() {
            Err(CoreError::Cycle { cycle }) => {
                let mut c = cycle.clone();
                c.sort();
                assert_eq!(c, vec![1, 2, 3]);
                for k in 0..cycle.len() {
                    let (from, to) = (cycle[k], cycle[(k + 1) % cycle.len()]);
                    assert_ne!(w[[to, from]], 0.0, "{cycle:?} is not a cycle");
                }
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
    }

    #[test]
    fn self_loop_is_a_cycle() {
        let w = array![[0.0, 0.0], [1.0, 0.3]];
        let s =
            Septuple::with_activation(w, Array1::zeros(2), Builtin::Tanh, vec![0], vec![]).unwrap();
        assert_eq!(s.feedforward(), Err(CoreError::Cycle { cycle: vec![1] }));
    }

    #[test]
    fn eqs_2_2_and_2_3_are_checked() {
        let w = array![[0.0, 0.7, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let s = Septuple::with_activation(w, Array1::zeros(3), Builtin::Tanh, vec![0], vec![2])
            .unwrap();
        assert!(matches!(
            s.feedforward(),
            Err(CoreError::InputHasIncoming {
                input: 0,
                from: 1,
                ..
            })
        ));
        let w = array![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let s = Septuple::with_activation(w, Array1::zeros(3), Builtin::Tanh, vec![0], vec![1])
            .unwrap();
        assert!(matches!(
            s.feedforward(),
            Err(CoreError::OutputHasOutgoing {
                output: 1,
                to: 2,
                ..
            })
        ));
    }

    #[test]
    fn construction_errors() {
        let ok_w = Array2::<f64>::zeros((3, 3));
        let b = Array1::<f64>::zeros(3);
        let acts = vec![Builtin::Tanh; 3];
        let e = Septuple::new(
            Array2::zeros((3, 2)),
            b.clone(),
            acts.clone(),
            vec![],
            vec![],
        );
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let e = Septuple::new(ok_w.clone(), Array1::zeros(2), acts.clone(), vec![], vec![]);
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let e = Septuple::new(ok_w.clone(), b.clone(), vec![Builtin::Tanh], vec![], vec![]);
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let mut bad = ok_w.clone();
        bad[[1, 2]] = f64::NAN;
        let e = Septuple::new(bad, b.clone(), acts.clone(), vec![], vec![]);
        assert!(matches!(e, Err(CoreError::NonFinite { ref index, .. }) if index == &vec![1, 2]));
        let e = Septuple::new(ok_w.clone(), b.clone(), acts.clone(), vec![3], vec![]);
        assert!(matches!(
            e,
            Err(CoreError::IndexOutOfRange { index: 3, .. })
        ));
        let e = Septuple::new(ok_w.clone(), b.clone(), acts.clone(), vec![0, 0], vec![]);
        assert!(matches!(e, Err(CoreError::DuplicateIndex { index: 0, .. })));
        let e = Septuple::new(ok_w.clone(), b.clone(), acts.clone(), vec![0, 1], vec![1]);
        assert_eq!(e, Err(CoreError::OverlappingProjections { index: 1 }));
        let e = Septuple::new(
            Array2::zeros((0, 0)),
            Array1::zeros(0),
            Vec::<Builtin>::new(),
            vec![],
            vec![],
        );
        assert!(matches!(e, Err(CoreError::Empty { .. })));
        let s = Septuple::new(ok_w, b, acts, vec![2, 0], vec![1]).unwrap();
        assert_eq!(s.bulk(), &[] as &[usize]);
        assert_eq!(s.driven(), &[1]);
        assert_eq!(s.roles(), &[Role::Input, Role::Output, Role::Input]);
    }

    #[test]
    fn error_messages_say_what_was_expected() {
        let e = Septuple::new(
            Array2::zeros((3, 2)),
            Array1::zeros(3),
            vec![Builtin::Tanh; 3],
            vec![],
            vec![],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "weight matrix w has shape [3, 2], expected [3, 3]"
        );
    }

    #[test]
    fn derivatives_at_is_eq_5_4() {
        let s = chain(3);
        let x = array![0.2, -0.4, 0.9];
        let d = s.derivatives_at(x.view()).unwrap();
        // y = w x + b = [0, 0.1, -0.2]
        let y = [0.0f64, 0.1, -0.2];
        for i in 0..3 {
            assert!((d[i] - 1.0 / y[i].cosh().powi(2)).abs() < 1e-15);
        }
    }
}
