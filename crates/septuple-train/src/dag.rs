//! The general path: SGD on a feedforward [`Septuple`] whose weight graph is any directed
//! acyclic graph, with a mask saying which connections learn. With [`Edges::Forward`] every
//! connection allowed by a topological order learns (w strictly lower triangular in that
//! order), so the hidden structure itself is trained, not only the weights of fixed layers.

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use septuple_core::graph::Digraph;
use septuple_core::{
    Activation, Boundary, BoundaryLoss, BulkLoss, CoreError, DenseBudget, Feedforward, Loss,
    Network, Septuple,
};
use serde::{Deserialize, Serialize};

use crate::error::{ConnectionRule, NetworkError, TrainError};

/// Which connections of a [`Dag`] learn.
#[derive(Clone, Debug, PartialEq)]
pub enum Edges {
    /// Only the connections present (non-zero) in the initial w.
    Existing,
    /// Every connection j -> i with j before i in the network's topological order, i not an
    /// input (Eq. 2.2) and j not an output (Eq. 2.3): w strictly lower triangular in that order.
    Forward,
    /// An explicit N x N mask (true: `w[i][j]` learns). Together with the present connections it
    /// must form a feedforward graph.
    Mask(Array2<bool>),
}

/// A feedforward septuple together with the set of its connections that learn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "DagData<A>",
    bound(
        serialize = "A: Serialize",
        deserialize = "A: Activation + Deserialize<'de>"
    )
)]
pub struct Dag<A> {
    net: Septuple<A>,
    trainable: Array2<bool>,
    #[serde(skip)]
    levels: Vec<Vec<usize>>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "A: Activation + Deserialize<'de>"))]
struct DagData<A> {
    net: Septuple<A>,
    trainable: Array2<bool>,
}

impl<A: Activation> TryFrom<DagData<A>> for Dag<A> {
    type Error = TrainError;
    fn try_from(d: DagData<A>) -> Result<Self, TrainError> {
        Dag::new(d.net, Edges::Mask(d.trainable))
    }
}

impl<A: Activation> Dag<A> {
    /// Check that `net` is feedforward (Eqs. 2.1-2.3) and that the learning connections keep it
    /// so, whatever values they take.
    pub fn new(net: Septuple<A>, edges: Edges) -> Result<Self, TrainError> {
        let ff = net.feedforward()?;
        let n = net.n_neurons();
        let w = net.weights();
        let mut is_input = vec![false; n];
        net.inputs().iter().for_each(|&i| is_input[i] = true);
        let mut is_output = vec![false; n];
        net.outputs().iter().for_each(|&o| is_output[o] = true);
        let trainable = match edges {
            Edges::Existing => w.mapv(|v| v != 0.0),
            Edges::Forward => {
                let mut pos = vec![0; n];
                for (k, &i) in ff.order.iter().enumerate() {
                    pos[i] = k;
                }
                Array2::from_shape_fn((n, n), |(i, j)| {
                    pos[j] < pos[i] && !is_input[i] && !is_output[j]
                })
            }
            Edges::Mask(m) => {
                if m.dim() != (n, n) {
                    return Err(NetworkError::MaskShape { got: m.dim(), n }.into());
                }
                m
            }
        };
        // The union graph must be feedforward: no learning connection into an input or out of
        // an output, and no cycle; its topology gives the levels.
        for ((i, j), &t) in trainable.indexed_iter() {
            if t && (is_input[i] || is_output[j] || i == j) {
                let rule = if is_input[i] {
                    ConnectionRule::IntoInput
                } else if is_output[j] {
                    ConnectionRule::OutOfOutput
                } else {
                    ConnectionRule::SelfConnection
                };
                return Err(NetworkError::Connection {
                    from: j,
                    to: i,
                    rule,
                }
                .into());
            }
        }
        // Row-major order lists each neuron's successors ascending.
        let edges = trainable
            .indexed_iter()
            .filter(|&((i, j), &t)| t || w[[i, j]] != 0.0)
            .map(|((i, j), _)| (j, i));
        let topology = Digraph::from_edges(n, edges)?
            .topology()
            .map_err(|cycle| NetworkError::Cycle { cycle })?;
        let level = topology.levels;
        let depth = level.iter().copied().max().unwrap_or(0);
        let mut levels = vec![Vec::new(); depth + 1];
        for i in 0..n {
            if !is_input[i] {
                levels[level[i]].push(i);
            }
        }
        levels.retain(|l| !l.is_empty());
        Ok(Dag {
            net,
            trainable,
            levels,
        })
    }

    /// The septuple.
    pub fn septuple(&self) -> &Septuple<A> {
        &self.net
    }

    /// The learning connections (true: `w[i][j]` learns).
    pub fn trainable(&self) -> &Array2<bool> {
        &self.trainable
    }

    /// Number of learning weights.
    pub fn n_trainable(&self) -> usize {
        self.trainable.iter().filter(|&&t| t).count()
    }

    /// Fixed states (Eq. 2.9) of a batch, neuron levels in order (S x n_in -> S x N), with the
    /// pre-activations y = w x + b (S x N; zero on inputs).
    fn forward(&self, inputs: ArrayView2<'_, f64>) -> (Array2<f64>, Array2<f64>) {
        let s = inputs.nrows();
        let n = self.net.n_neurons();
        let w = self.net.weights();
        let b = self.net.bias();
        let acts = self.net.activations();
        let mut x = Array2::zeros((s, n));
        let mut y = Array2::zeros((s, n));
        for (k, &i) in self.net.inputs().iter().enumerate() {
            x.column_mut(i).assign(&inputs.column(k));
        }
        for level in &self.levels {
            let wl = w.select(Axis(0), level);
            let yl = x.dot(&wl.t());
            for (c, &i) in level.iter().enumerate() {
                for r in 0..s {
                    let v = yl[[r, c]] + b[i];
                    y[[r, i]] = v;
                    x[[r, i]] = acts[i].value(v);
                }
            }
        }
        (x, y)
    }

    /// Gradient of the mean boundary loss (Eq. 2.11) of a batch with respect to the learning
    /// weights (zero elsewhere) and the biases of the non-input neurons: (dL/dw, dL/db, L).
    /// [`Dag::forward_gradients`] of [`BoundaryLoss`].
    pub fn boundary_gradients(
        &self,
        inputs: ArrayView2<'_, f64>,
        targets: ArrayView2<'_, f64>,
    ) -> Result<(Array2<f64>, Array1<f64>, f64), TrainError> {
        self.forward_gradients(&BoundaryLoss, inputs, targets)
    }

    /// Gradient of the mean loss U(w, b) = mean_s H(x_s) of a batch at its forward states
    /// x_s(w, b) (Eq. 2.9, inputs clamped) with respect to the learning weights (zero
    /// elsewhere) and the biases of the non-input neurons: (dU/dw, dU/db, U).
    ///
    /// The explicit part is [`Loss::preactivation_gradients`]; the part through the states
    /// starts from [`Loss::gradients`] and runs back over the neuron levels
    /// (backpropagation): dU/dy_i = (dU/dx_i) f'(y_i) + dH/dy_i, and each dU/dy_i adds
    /// w_ij dU/dy_i to dU/dx_j. A forward state that overflows is [`TrainError::Diverged`].
    pub fn forward_gradients<L: Loss<A>>(
        &self,
        loss: &L,
        inputs: ArrayView2<'_, f64>,
        targets: ArrayView2<'_, f64>,
    ) -> Result<(Array2<f64>, Array1<f64>, f64), TrainError> {
        let boundary = Boundary::new(inputs, targets);
        boundary.check(&self.net)?;
        let (x, y) = self.forward(inputs);
        if !x.iter().all(|v| v.is_finite()) {
            return Err(TrainError::Diverged {
                epoch: 0,
                what: "a forward state".into(),
            });
        }
        let value = loss.mean(&self.net, x.view(), &boundary)?;
        let scale = 1.0 / inputs.nrows() as f64;
        // e = dU/dx and g = dU/dy, completed level by level from the last one back.
        let mut e = loss.gradients(&self.net, x.view(), &boundary)?;
        e *= scale;
        let mut g = loss.preactivation_gradients(&self.net, x.view(), &boundary)?;
        g *= scale;
        let acts = self.net.activations();
        let w = self.net.weights();
        for level in self.levels.iter().rev() {
            for &i in level {
                for r in 0..inputs.nrows() {
                    g[[r, i]] += e[[r, i]] * acts[i].derivative_given_value(y[[r, i]], x[[r, i]]);
                }
            }
            let gl = g.select(Axis(1), level);
            let wl = w.select(Axis(0), level);
            e += &gl.dot(&wl);
        }
        let (dw, db) = self.parameter_gradients(g, x.view());
        Ok((dw, db, value))
    }

    /// Gradient of the mean bulk loss (Eq. 3.4) at given states (S x N; for the bulk-solved
    /// states of Eq. (3.2) this is the gradient of U_0 of Eq. (4.1) on the batch, by the
    /// envelope theorem): dH/dw_ij = -r_i f'(y_i) x_j for non-input i, masked.
    /// [`Dag::stationary_gradients`] of `loss`.
    pub fn bulk_gradients(
        &self,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
        loss: &BulkLoss,
    ) -> Result<(Array2<f64>, Array1<f64>, f64), TrainError> {
        self.stationary_gradients(loss, states, boundary)
    }

    /// Gradient of the mean loss of a batch at states that are stationary in the bulk
    /// (Eq. 3.2, the boundary clamped) with respect to the learning weights (zero elsewhere)
    /// and the biases of the non-input neurons: (dU/dw, dU/db, U). dH/dx vanishes on the
    /// free neurons and the clamped ones do not move, so only the explicit part
    /// [`Loss::preactivation_gradients`] remains (envelope theorem); at other states this is
    /// the partial derivative at fixed states.
    pub fn stationary_gradients<L: Loss<A>>(
        &self,
        loss: &L,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<(Array2<f64>, Array1<f64>, f64), TrainError> {
        let value = loss.mean(&self.net, states, boundary)?;
        // S >= 1: the mean of an empty batch is an error.
        let scale = 1.0 / states.nrows() as f64;
        let mut g = loss.preactivation_gradients(&self.net, states, boundary)?;
        g *= scale;
        let (dw, db) = self.parameter_gradients(g, states);
        Ok((dw, db, value))
    }

    /// (dU/dw, dU/db) from dU/dy (S x N) at the states x: dU/dw_ij = sum_s dU/dy_si x_sj on
    /// the learning connections (zero elsewhere), dU/db_i = sum_s dU/dy_si.
    fn parameter_gradients(
        &self,
        g: Array2<f64>,
        x: ArrayView2<'_, f64>,
    ) -> (Array2<f64>, Array1<f64>) {
        let mut dw = g.t().dot(&x);
        dw.zip_mut_with(&self.trainable, |v, &t| {
            if !t {
                *v = 0.0;
            }
        });
        (dw, g.sum_axis(Axis(0)))
    }

    /// w -= eta dw, b -= eta db (non-input neurons only); keeps the septuple valid because the
    /// gradient is zero off the learning connections.
    pub(crate) fn apply(
        &mut self,
        dw: &Array2<f64>,
        db: &Array1<f64>,
        eta: f64,
    ) -> Result<(), TrainError> {
        let (mut w, mut b, acts, inputs, outputs) = self.net.clone().into_parts();
        w.scaled_add(-eta, dw);
        b.scaled_add(-eta, db);
        if !(w.iter().all(|v| v.is_finite()) && b.iter().all(|v| v.is_finite())) {
            return Err(TrainError::Diverged {
                epoch: 0,
                what: "a weight or bias".into(),
            });
        }
        for &i in &inputs {
            b[i] = self.net.bias()[i];
        }
        self.net = Septuple::new(w, b, acts, inputs, outputs)?;
        Ok(())
    }
}

/// A `Dag` is its septuple to every crate that reads networks; only training sees the mask.
impl<A: Activation> Network for Dag<A> {
    type Act = A;

    fn n_neurons(&self) -> usize {
        self.net.n_neurons()
    }
    fn inputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(self.net.inputs())
    }
    fn outputs(&self) -> Cow<'_, [usize]> {
        Cow::Borrowed(self.net.outputs())
    }
    fn roles(&self) -> Vec<septuple_core::Role> {
        self.net.roles().to_vec()
    }
    fn n_connections(&self) -> usize {
        Network::n_connections(&self.net)
    }
    fn weights_sparse(&self) -> Result<Cow<'_, septuple_core::sprs::CsMat<f64>>, CoreError> {
        self.net.weights_sparse()
    }
    fn activation(&self, i: usize) -> &A {
        self.net.activation(i)
    }
    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        self.net.feedforward()
    }
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.net.forward_states(inputs)
    }
    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.net.weights_times(v)
    }
    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.net.weights_t_times(v)
    }
    fn bias(&self) -> Cow<'_, Array1<f64>> {
        Network::bias(&self.net)
    }
    fn preactivation(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        self.net.preactivation(x)
    }
    fn derivatives_at(&self, x: ArrayView1<'_, f64>) -> Result<Array1<f64>, CoreError> {
        self.net.derivatives_at(x)
    }
    fn jacobian_rows(
        &self,
        fp: ArrayView1<'_, f64>,
        rows: &[usize],
        budget: DenseBudget,
    ) -> Result<Array2<f64>, CoreError> {
        self.net.jacobian_rows(fp, rows, budget)
    }
    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<A>, CoreError> {
        self.net.to_dense(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use ndarray::array;
    use septuple_core::{Builtin, BulkSolver, Init, Layered, Potential};

    fn tiny() -> Septuple<Builtin> {
        // inputs 0, 1; hidden 2, 3 (3 fed by 2: not layered); output 4 fed by 1, 2, 3.
        let w = array![
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.7, -0.4, 0.0, 0.0, 0.0],
            [0.0, 0.5, 0.9, 0.0, 0.0],
            [0.0, 0.3, -0.6, 0.8, 0.0],
        ];
        Septuple::with_activation(
            w,
            array![0.0, 0.0, 0.1, -0.2, 0.05],
            Builtin::Tanh,
            vec![0, 1],
            vec![4],
        )
        .unwrap()
    }

    fn loss_at(net: &Septuple<Builtin>, x: &Array2<f64>, t: &Array2<f64>) -> f64 {
        let states = net.forward_states(x.view()).unwrap();
        BoundaryLoss
            .mean(net, states.view(), &Boundary::new(x.view(), t.view()))
            .unwrap()
    }

    fn perturbed(net: &Septuple<Builtin>, i: usize, j: Option<usize>, h: f64) -> Septuple<Builtin> {
        let (mut w, mut b, a, inp, out) = net.clone().into_parts();
        match j {
            Some(j) => w[[i, j]] += h,
            None => b[i] += h,
        }
        Septuple::new(w, b, a, inp, out).unwrap()
    }

    #[test]
    fn boundary_gradients_match_finite_differences() {
        // Central differences, h = 1e-6: error ~1e-10 on gradients of order 0.1 (see the
        // layered test for the argument); 1e-7 absolute.
        let net = tiny();
        let dag = Dag::new(net.clone(), Edges::Forward).unwrap();
        let x = array![[0.3, -0.8], [1.0, 0.2], [-0.5, 0.5]];
        let t = array![[0.5], [-0.3], [0.1]];
        let (dw, db, l) = dag.boundary_gradients(x.view(), t.view()).unwrap();
        assert_relative_eq!(l, loss_at(&net, &x, &t), max_relative = 1e-14);
        let h = 1e-6;
        for i in 0..5 {
            for j in 0..5 {
                if dag.trainable()[[i, j]] {
                    let fd = (loss_at(&perturbed(&net, i, Some(j), h), &x, &t)
                        - loss_at(&perturbed(&net, i, Some(j), -h), &x, &t))
                        / (2.0 * h);
                    assert_relative_eq!(dw[[i, j]], fd, epsilon = 1e-7);
                } else {
                    assert_eq!(dw[[i, j]], 0.0);
                }
            }
            if i >= 2 {
                let fd = (loss_at(&perturbed(&net, i, None, h), &x, &t)
                    - loss_at(&perturbed(&net, i, None, -h), &x, &t))
                    / (2.0 * h);
                assert_relative_eq!(db[i], fd, epsilon = 1e-7);
            }
        }
        // Forward edges: 2<-0,1; 3<-0,1,2; 4<-1,2,3 plus 4<-0 (0 precedes 4, 4 an output, 0 not):
        // every pair j before i with i not input and j not output.
        assert_eq!(dag.n_trainable(), 2 + 3 + 4);
    }

    #[test]
    fn forward_gradients_of_a_potential_match_finite_differences() {
        // Any loss at the forward states: the bulk loss with a mass and couplings (at forward
        // states its residuals vanish and H = V(x(w)), whose gradient runs through the states
        // alone). Central differences, h = 1e-6, O(1) functions: error ~1e-10; 1e-7 absolute.
        let net = tiny();
        let dag = Dag::new(net.clone(), Edges::Forward).unwrap();
        let x = array![[0.3, -0.8], [1.0, 0.2], [-0.5, 0.5]];
        let t = array![[0.5], [-0.3], [0.1]];
        let g = Array2::from_shape_fn((5, 5), |(i, j)| 0.1 * ((i + 3 * j) as f64).cos());
        let loss = BulkLoss::with_potential(Potential {
            mass: 0.4,
            couplings: Some(g),
        });
        let u = |n: &Septuple<Builtin>| {
            let states = n.forward_states(x.view()).unwrap();
            loss.mean(n, states.view(), &Boundary::new(x.view(), t.view()))
                .unwrap()
        };
        let (dw, db, value) = dag.forward_gradients(&loss, x.view(), t.view()).unwrap();
        assert_relative_eq!(value, u(&net), max_relative = 1e-14);
        let h = 1e-6;
        for i in 2..5 {
            for j in 0..5 {
                if dag.trainable()[[i, j]] {
                    let fd = (u(&perturbed(&net, i, Some(j), h))
                        - u(&perturbed(&net, i, Some(j), -h)))
                        / (2.0 * h);
                    assert_relative_eq!(dw[[i, j]], fd, epsilon = 1e-7);
                }
            }
            let fd =
                (u(&perturbed(&net, i, None, h)) - u(&perturbed(&net, i, None, -h))) / (2.0 * h);
            assert_relative_eq!(db[i], fd, epsilon = 1e-7);
        }
        assert!(dw.iter().any(|v| v.abs() > 1e-3), "{dw}");
    }

    #[test]
    fn forward_matches_core() {
        let net = Layered::random(&[4, 3, 3, 2], Builtin::Tanh, Init::TorchLinear, 3)
            .unwrap()
            .to_septuple()
            .unwrap();
        let dag = Dag::new(net.clone(), Edges::Existing).unwrap();
        let x = Array2::from_shape_fn((5, 4), |(i, j)| ((i + 2 * j) as f64 * 0.3).sin());
        let (states, _) = dag.forward(x.view());
        let core = net.forward_states(x.view()).unwrap();
        // Same sums over the same connections, in another grouping: a few ulps.
        approx::assert_abs_diff_eq!(states, core, epsilon = 1e-14);
    }

    #[test]
    fn rejects_masks_that_break_feedforward() {
        let net = tiny();
        let mut m = Array2::from_elem((5, 5), false);
        m[[2, 3]] = true; // 3 -> 2 closes 2 -> 3 -> 2
        assert!(Dag::new(net.clone(), Edges::Mask(m)).is_err());
        let mut m = Array2::from_elem((5, 5), false);
        m[[0, 2]] = true; // into an input
        assert!(Dag::new(net.clone(), Edges::Mask(m)).is_err());
        let mut m = Array2::from_elem((5, 5), false);
        m[[3, 4]] = true; // out of an output
        assert!(Dag::new(net.clone(), Edges::Mask(m)).is_err());
        assert!(Dag::new(net, Edges::Mask(Array2::from_elem((4, 4), false))).is_err());
    }

    #[test]
    fn bulk_gradients_are_the_gradient_of_the_solved_loss() {
        // U_0(w) = mean_s min_bulk H: its derivative is the partial derivative at the solved
        // states (envelope theorem). Central differences of U_0 re-solve at w +- h; the solve
        // tolerance (gradient 1e-10) makes U_0 accurate to ~1e-20, so the FD error is the
        // usual ~1e-10; 1e-7 absolute.
        let net = Layered::random(&[3, 3, 2], Builtin::Tanh, Init::Normal { std: 0.9 }, 4)
            .unwrap()
            .to_septuple()
            .unwrap();
        let x = array![[0.2, -0.4, 0.9], [0.7, 0.1, -0.3]];
        let t = array![[0.4, -0.2], [-0.1, 0.3]];
        let bd = Boundary::new(x.view(), t.view());
        let loss = BulkLoss::with_mass(0.3);
        let u0 = |n: &Septuple<Builtin>| {
            let sol = BulkSolver::default()
                .solve(n, &Potential::mass(0.3), &bd)
                .unwrap();
            assert!(sol.all_converged());
            loss.mean(n, sol.states.view(), &bd).unwrap()
        };
        let dag = Dag::new(net.clone(), Edges::Existing).unwrap();
        let sol = BulkSolver::default()
            .solve(&net, &Potential::mass(0.3), &bd)
            .unwrap();
        let (dw, db, value) = dag.bulk_gradients(sol.states.view(), &bd, &loss).unwrap();
        assert_relative_eq!(value, u0(&net), max_relative = 1e-12);
        let h = 1e-6;
        for (i, j) in [(3usize, 0usize), (4, 2), (6, 5), (5, 1)] {
            let fd = (u0(&perturbed(&net, i, Some(j), h)) - u0(&perturbed(&net, i, Some(j), -h)))
                / (2.0 * h);
            assert_relative_eq!(dw[[i, j]], fd, epsilon = 1e-7);
        }
        let fd = (u0(&perturbed(&net, 6, None, h)) - u0(&perturbed(&net, 6, None, -h))) / (2.0 * h);
        assert_relative_eq!(db[6], fd, epsilon = 1e-7);
    }
}
