//! Loss functions H of the septuple: the boundary loss of Eqs. (2.10)/(2.11) and the bulk loss
//! of Eqs. (3.1)/(3.4) with local objectives.

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::activation::Activation;
use crate::error::{check_finite, CoreError};
use crate::septuple::Septuple;

/// Boundary data x_d for a batch: the input data (S x n_in, columns in the order of
/// [`Septuple::inputs`]) and, for a septuple with output neurons, the targets (S x n_out, in the
/// order of [`Septuple::outputs`]).
#[derive(Clone, Copy, Debug)]
pub struct Boundary<'a> {
    /// Input data, P_in x_d.
    pub inputs: ArrayView2<'a, f64>,
    /// Desired outputs, P_out x_d (None for a septuple without output neurons).
    pub targets: Option<ArrayView2<'a, f64>>,
}

impl<'a> Boundary<'a> {
    /// Boundary data with inputs and targets.
    pub fn new(inputs: ArrayView2<'a, f64>, targets: ArrayView2<'a, f64>) -> Self {
        Boundary {
            inputs,
            targets: Some(targets),
        }
    }

    /// Boundary data with inputs only (a septuple without output neurons, or forward use).
    pub fn inputs_only(inputs: ArrayView2<'a, f64>) -> Self {
        Boundary {
            inputs,
            targets: None,
        }
    }

    /// The number of samples S.
    pub fn n_samples(&self) -> usize {
        self.inputs.nrows()
    }

    /// Check the data against a septuple: shapes, sample counts, finiteness; targets present
    /// exactly when the septuple has output neurons.
    pub fn check<A: Activation>(&self, net: &Septuple<A>) -> Result<(), CoreError> {
        self.check_counts(net.inputs().len(), net.outputs().len())
    }

    /// [`Boundary::check`] for a network with `n_in` input and `n_out` output neurons.
    pub(crate) fn check_counts(&self, n_in: usize, n_out: usize) -> Result<(), CoreError> {
        if self.inputs.ncols() != n_in {
            return Err(CoreError::shape(
                "input data (one row per sample, one column per input neuron)",
                self.inputs.shape(),
                &[self.inputs.nrows(), n_in],
            ));
        }
        check_finite("input data", self.inputs)?;
        let s = self.inputs.nrows();
        match (self.targets, n_out) {
            (None, 0) => Ok(()),
            (None, n_out) => Err(CoreError::MissingTargets { n_out, samples: s }),
            (Some(t), n_out) => {
                if t.dim() != (s, n_out) {
                    return Err(CoreError::shape(
                        "targets (one row per sample, one column per output neuron)",
                        t.shape(),
                        &[s, n_out],
                    ));
                }
                check_finite("targets", t)
            }
        }
    }

    /// Write the boundary data into a batch of states (S x N): inputs and targets in place.
    pub fn impose<A: Activation>(
        &self,
        net: &Septuple<A>,
        states: &mut Array2<f64>,
    ) -> Result<(), CoreError> {
        self.check(net)?;
        if states.dim() != (self.n_samples(), net.n_neurons()) {
            return Err(CoreError::shape(
                "state matrix",
                states.shape(),
                &[self.n_samples(), net.n_neurons()],
            ));
        }
        for (k, &i) in net.inputs().iter().enumerate() {
            states.column_mut(i).assign(&self.inputs.column(k));
        }
        if let Some(t) = self.targets {
            for (k, &o) in net.outputs().iter().enumerate() {
                states.column_mut(o).assign(&t.column(k));
            }
        }
        Ok(())
    }
}

/// A loss function H(x, b, w), the seventh element of the septuple: its value for each state of
/// a batch and its gradient with respect to the state.
pub trait Loss<A: Activation> {
    /// H for each state of a batch (S x N): one value per sample.
    fn values(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array1<f64>, CoreError>;

    /// dH/dx for each state of a batch: S x N.
    fn gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError>;

    /// dH/dy for each state of a batch (S x N) with the states held fixed, y = w x + b the
    /// pre-activations of Eq. (2.5): the explicit dependence of H(x, b, w) on the parameters.
    /// A loss depends on b and w only through y, so at fixed states dH/db_i = dH/dy_i and
    /// dH/dw_ij = dH/dy_i x_j. Zero on the input neurons, whose y the dynamics never uses
    /// (Eq. 2.7).
    ///
    /// Training combines this with [`gradients`](Loss::gradients): at forward states (Eq. 2.9)
    /// the chain through the states is added by backpropagation; at states stationary in the
    /// bulk (Eq. 3.2) that chain vanishes and this is the whole gradient (envelope theorem).
    fn preactivation_gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError>;

    /// The mean of H over the batch (S >= 1).
    fn mean(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<f64, CoreError> {
        self.values(net, states, boundary)?
            .mean()
            .ok_or_else(|| CoreError::Empty {
                what: "state matrix".into(),
            })
    }
}

fn check_batch<A: Activation>(
    net: &Septuple<A>,
    states: ArrayView2<'_, f64>,
    boundary: &Boundary<'_>,
) -> Result<(), CoreError> {
    net.check_states(states)?;
    boundary.check(net)?;
    if states.nrows() != boundary.n_samples() {
        return Err(CoreError::shape(
            "state matrix",
            states.shape(),
            &[boundary.n_samples(), net.n_neurons()],
        ));
    }
    Ok(())
}

/// The mean boundary loss U_d of Eq. (2.11) over a batch whose inputs are clamped to the data
/// (Eq. 2.7), so that only the outputs contribute: from the output states `outputs` and the
/// targets `targets` (both S x n_out, S >= 1),
///
/// U_d = 0.5 * (sum over all entries of (outputs - targets)^2) / S,
///
/// the squares summed in row-major order (sample by sample, outputs in order) from 0, so the
/// result is the same to the last bit wherever it is computed. [`BoundaryLoss::mean_at_forward_states`]
/// is this at a network's forward states.
pub fn mean_boundary_loss(
    outputs: ArrayView2<'_, f64>,
    targets: ArrayView2<'_, f64>,
) -> Result<f64, CoreError> {
    if outputs.dim() != targets.dim() {
        return Err(CoreError::shape(
            "targets (one row per sample, one column per output neuron)",
            targets.shape(),
            outputs.shape(),
        ));
    }
    if outputs.nrows() == 0 {
        return Err(CoreError::Empty {
            what: "output states".into(),
        });
    }
    let d = &outputs - &targets;
    Ok(0.5 * d.iter().map(|v| v * v).sum::<f64>() / outputs.nrows() as f64)
}

/// The boundary loss H_d(x) = 1/2 (x - x_d)^T (P_in + P_out) (x - x_d) of Eq. (2.11): half the
/// squared error on the input and output neurons. (Eq. (2.10) writes the same sum over the
/// outputs without the factor 1/2; we keep the 1/2 of Eq. (2.11), whose gradient is the plain
/// error; see docs/theory.md.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BoundaryLoss;

impl BoundaryLoss {
    /// The mean boundary loss U_d of Eq. (2.11) of a batch at the forward states of `net`
    /// (Eq. 2.9, inputs clamped, so only the outputs contribute): [`mean_boundary_loss`] of
    /// the network's outputs and the targets. Unlike [`Loss::mean`], which sums each sample's
    /// H_d first, the squares are summed in one row-major pass (the same value up to
    /// rounding).
    pub fn mean_at_forward_states<N: crate::Network>(
        net: &N,
        inputs: ArrayView2<'_, f64>,
        targets: ArrayView2<'_, f64>,
    ) -> Result<f64, CoreError> {
        mean_boundary_loss(net.predict(inputs)?.view(), targets)
    }

    fn errors<A: Activation>(
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Array2<f64> {
        let mut e = Array2::zeros(states.raw_dim());
        for (k, &i) in net.inputs().iter().enumerate() {
            let mut col = e.column_mut(i);
            col.assign(&states.column(i));
            col -= &boundary.inputs.column(k);
        }
        if let Some(t) = boundary.targets {
            for (k, &o) in net.outputs().iter().enumerate() {
                let mut col = e.column_mut(o);
                col.assign(&states.column(o));
                col -= &t.column(k);
            }
        }
        e
    }
}

impl<A: Activation> Loss<A> for BoundaryLoss {
    /// Eq. (2.11) for each sample.
    fn values(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array1<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        let e = Self::errors(net, states, boundary);
        Ok(e.rows().into_iter().map(|r| 0.5 * r.dot(&r)).collect())
    }

    /// The gradient of Eq. (2.11): (P_in + P_out)(x - x_d).
    fn gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        Ok(Self::errors(net, states, boundary))
    }

    /// Zero: H_d of Eq. (2.11) depends on w and b only through the states.
    fn preactivation_gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        Ok(Array2::zeros(states.raw_dim()))
    }
}

/// The local-objective potential V(x) of Eq. (3.3) and the sentence after Eq. (3.4):
/// V(x) = -(m/2) sum_i x_i^2 + sum_ij g_ij x_i x_j, summed over all neurons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Potential {
    /// The mass m of the "tachyonic" term -(m/2) x_i^2 (m > 0 rewards states near the bounds of
    /// the activation's range).
    pub mass: f64,
    /// Optional pairwise couplings g (N x N) of the interaction term sum_ij g_ij x_i x_j.
    pub couplings: Option<Array2<f64>>,
}

impl Potential {
    /// No local objective: V = 0 (the bulk loss of Eq. 3.1).
    pub fn none() -> Self {
        Potential::default()
    }

    /// The mass term of Eq. (3.3) alone.
    pub fn mass(m: f64) -> Self {
        Potential {
            mass: m,
            couplings: None,
        }
    }

    /// Check against a septuple of N neurons: m finite, g N x N and finite.
    pub fn check(&self, n: usize) -> Result<(), CoreError> {
        if !self.mass.is_finite() {
            return Err(CoreError::Parameter {
                name: "mass",
                value: self.mass,
                expected: "a finite mass m",
            });
        }
        if let Some(g) = &self.couplings {
            if g.dim() != (n, n) {
                return Err(CoreError::shape("coupling matrix g", g.shape(), &[n, n]));
            }
            check_finite("coupling matrix g", g)?;
        }
        Ok(())
    }

    /// V(x) for each state of a batch (Eq. 3.3 with couplings).
    pub fn values(&self, states: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut v: Array1<f64> = states
            .rows()
            .into_iter()
            .map(|r| -0.5 * self.mass * r.dot(&r))
            .collect();
        if let Some(g) = &self.couplings {
            let gx = states.dot(&g.t()); // row s: g x_s
            for (vs, (xs, gxs)) in v.iter_mut().zip(states.rows().into_iter().zip(gx.rows())) {
                *vs += xs.dot(&gxs);
            }
        }
        v
    }

    /// dV/dx = -m x + (g + g^T) x for each state of a batch.
    pub fn gradients(&self, states: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut grad = states.to_owned() * (-self.mass);
        if let Some(g) = &self.couplings {
            grad += &states.dot(&g.t());
            grad += &states.dot(g);
        }
        grad
    }
}

/// The bulk loss of Eqs. (3.1) and (3.4): half the squared error of the fixed-point equation
/// (2.9) plus a local-objective potential V (Eq. 3.3),
///
/// H(x) = 1/2 sum_i r_i(x)^2 + V(x), with r_i = x_i - f_i((w x + b)_i) for every non-input
/// neuron and r_i = x_i - (x_d)_i for every input neuron.
///
/// The input rows are the clamp of Eq. (2.7): the condition Eq. (2.8) makes the fixed-point
/// residual of a feedforward network's inputs vanish, so the inputs contribute nothing on the
/// constraint surface of Eq. (3.2) and the Jacobian of r is exactly I - f'w there (the operator
/// inside G of Eq. 5.6). Eq. (3.4) writes the bias inside f as "p_j"; it is b_i (docs/theory.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BulkLoss {
    /// The local objective V.
    pub potential: Potential,
}

impl BulkLoss {
    /// The bulk loss of Eq. (3.1): no local objective.
    pub fn new() -> Self {
        BulkLoss::default()
    }

    /// The bulk loss of Eq. (3.4) with mass m.
    pub fn with_mass(m: f64) -> Self {
        BulkLoss {
            potential: Potential::mass(m),
        }
    }

    /// The bulk loss with a general potential.
    pub fn with_potential(potential: Potential) -> Self {
        BulkLoss { potential }
    }

    /// The residuals r (S x N) and, for the driven neurons, f'(y) (S x R).
    pub(crate) fn residuals<A: Activation>(
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
        want_derivatives: bool,
    ) -> (Array2<f64>, Option<Array2<f64>>) {
        let driven = net.driven();
        let mut y = states.dot(&net.driven_weights_t());
        y += &net.driven_bias();
        let mut r = Array2::zeros(states.raw_dim());
        for (k, &i) in net.inputs().iter().enumerate() {
            let mut col = r.column_mut(i);
            col.assign(&states.column(i));
            col -= &boundary.inputs.column(k);
        }
        let acts = net.activations();
        let mut fp = want_derivatives.then(|| Array2::zeros(y.raw_dim()));
        for (s, ys) in y.rows().into_iter().enumerate() {
            for (k, (&i, &yi)) in driven.iter().zip(ys).enumerate() {
                r[[s, i]] = states[[s, i]] - acts[i].value(yi);
                if let Some(fp) = fp.as_mut() {
                    fp[[s, k]] = acts[i].derivative(yi);
                }
            }
        }
        (r, fp)
    }
}

impl<A: Activation> Loss<A> for BulkLoss {
    /// Eq. (3.4) (Eq. 3.1 when V = 0) for each sample.
    fn values(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array1<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        self.potential.check(net.n_neurons())?;
        let (r, _) = Self::residuals(net, states, boundary, false);
        let mut h: Array1<f64> = r.rows().into_iter().map(|r| 0.5 * r.dot(&r)).collect();
        h += &self.potential.values(states);
        Ok(h)
    }

    /// dH/dx = (I - f'w)^T r + dV/dx, with the input rows of I - f'w replaced by the clamp
    /// (identity rows), for each sample.
    fn gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        self.potential.check(net.n_neurons())?;
        let (r, fp) = Self::residuals(net, states, boundary, true);
        let mut fpr = fp.unwrap_or_else(|| unreachable!("derivatives were requested"));
        for (mut row, rs) in fpr.rows_mut().into_iter().zip(r.rows()) {
            for (v, &i) in row.iter_mut().zip(net.driven()) {
                *v *= rs[i];
            }
        }
        // (f'w)^T restricted to driven rows: (S x R) . (R x N)
        let mut grad = r;
        grad -= &fpr.dot(&net.driven_weights_t().t());
        grad += &self.potential.gradients(states);
        Ok(grad)
    }

    /// dH/dy_i = -r_i f'(y_i) for every non-input neuron i (V does not depend on w or b; the
    /// clamp residuals of the inputs do not depend on y).
    fn preactivation_gradients(
        &self,
        net: &Septuple<A>,
        states: ArrayView2<'_, f64>,
        boundary: &Boundary<'_>,
    ) -> Result<Array2<f64>, CoreError> {
        check_batch(net, states, boundary)?;
        self.potential.check(net.n_neurons())?;
        let (r, fp) = Self::residuals(net, states, boundary, true);
        let fp = fp.unwrap_or_else(|| unreachable!("derivatives were requested"));
        let mut g = Array2::zeros(states.raw_dim());
        for ((mut gs, rs), fps) in g.rows_mut().into_iter().zip(r.rows()).zip(fp.rows()) {
            for (&i, &f) in net.driven().iter().zip(fps) {
                gs[i] = -rs[i] * f;
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Network;
    use crate::{Builtin, Init, Layered};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn net() -> Septuple {
        Layered::random(&[3, 4, 2], Builtin::Tanh, Init::TorchLinear, 5)
            .unwrap()
            .to_septuple()
            .unwrap()
    }

    fn fd_gradient(
        loss: &dyn Loss<Builtin>,
        net: &Septuple,
        x: &Array2<f64>,
        bd: &Boundary<'_>,
    ) -> Array2<f64> {
        let h = 1e-6;
        let mut g = Array2::zeros(x.raw_dim());
        for s in 0..x.nrows() {
            for i in 0..x.ncols() {
                let mut xp = x.clone();
                xp[[s, i]] += h;
                let mut xm = x.clone();
                xm[[s, i]] -= h;
                let vp = loss.values(net, xp.view(), bd).unwrap()[s];
                let vm = loss.values(net, xm.view(), bd).unwrap()[s];
                g[[s, i]] = (vp - vm) / (2.0 * h);
            }
        }
        g
    }

    #[test]
    fn gradients_match_finite_differences() {
        let net = net();
        let inputs = array![[0.2, -0.3, 0.9], [0.0, 0.5, -0.1]];
        let targets = array![[1.0, -1.0], [-1.0, 1.0]];
        let bd = Boundary::new(inputs.view(), targets.view());
        let x = Array2::from_shape_fn((2, 9), |(s, i)| 0.8 * ((s * 9 + i) as f64 * 1.3).sin());
        let mut g = Array2::from_shape_fn((9, 9), |(i, j)| ((i + 2 * j) as f64).cos() * 0.1);
        g[[0, 0]] = 0.4;
        let losses: Vec<Box<dyn Loss<Builtin>>> = vec![
            Box::new(BoundaryLoss),
            Box::new(BulkLoss::new()),
            Box::new(BulkLoss::with_mass(0.3)),
            Box::new(BulkLoss::with_potential(Potential {
                mass: -0.2,
                couplings: Some(g),
            })),
        ];
        for loss in &losses {
            let analytic = loss.gradients(&net, x.view(), &bd).unwrap();
            let fd = fd_gradient(loss.as_ref(), &net, &x, &bd);
            // Central differences with h = 1e-6 on O(1) smooth functions: truncation ~h^2 = 1e-12,
            // rounding ~eps/h = 1e-10.
            assert_abs_diff_eq!(analytic, fd, epsilon = 1e-8);
        }
    }

    #[test]
    fn preactivation_gradients_match_finite_differences_in_the_parameters() {
        // dH_s/db_i = g[s, i] and dH_s/dw_ij = g[s, i] x_sj at fixed states, checked by central
        // differences in b_i and w_ij (h = 1e-6 on O(1) smooth functions: error ~1e-10).
        let net = net();
        let inputs = array![[0.2, -0.3, 0.9], [0.0, 0.5, -0.1]];
        let targets = array![[1.0, -1.0], [-1.0, 1.0]];
        let bd = Boundary::new(inputs.view(), targets.view());
        let x = Array2::from_shape_fn((2, 9), |(s, i)| 0.8 * ((s * 9 + i) as f64 * 1.3).sin());
        let losses: Vec<Box<dyn Loss<Builtin>>> = vec![
            Box::new(BoundaryLoss),
            Box::new(BulkLoss::new()),
            Box::new(BulkLoss::with_mass(0.3)),
        ];
        let h = 1e-6;
        let moved = |i: usize, j: Option<usize>, d: f64| {
            let (mut w, mut b, a, inp, out) = net.clone().into_parts();
            match j {
                Some(j) => w[[i, j]] += d,
                None => b[i] += d,
            }
            Septuple::new(w, b, a, inp, out).unwrap()
        };
        for loss in &losses {
            let g = loss.preactivation_gradients(&net, x.view(), &bd).unwrap();
            for i in 0..9 {
                for j in [None, Some(0), Some(4), Some(8)] {
                    let fd = (loss.values(&moved(i, j, h), x.view(), &bd).unwrap()
                        - loss.values(&moved(i, j, -h), x.view(), &bd).unwrap())
                        / (2.0 * h);
                    for s in 0..2 {
                        let analytic = g[[s, i]] * j.map_or(1.0, |j| x[[s, j]]);
                        assert_abs_diff_eq!(analytic, fd[s], epsilon = 1e-8);
                    }
                }
            }
            // The inputs' pre-activations are not used (Eq. 2.7).
            for &i in net.inputs() {
                assert!(g.column(i).iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn mean_boundary_loss_agrees_with_the_loss() {
        // The same sum in two orders (row-major in one pass; per sample, then the mean): equal
        // up to a few ulps of a sum of 6 terms of order 1, 1e-15 relative.
        let net = net();
        let inputs = array![[0.2, -0.3, 0.9], [0.0, 0.5, -0.1], [1.0, 1.0, -1.0]];
        let targets = array![[1.0, -1.0], [-1.0, 1.0], [0.5, 0.0]];
        let bd = Boundary::new(inputs.view(), targets.view());
        let x = net.forward_states(inputs.view()).unwrap();
        let a = BoundaryLoss::mean_at_forward_states(&net, inputs.view(), targets.view()).unwrap();
        let b = BoundaryLoss.mean(&net, x.view(), &bd).unwrap();
        approx::assert_relative_eq!(a, b, max_relative = 1e-15);
        // The order of operations is pinned: 0.5 * (sum of squares, row-major) / S.
        let out = net.predict(inputs.view()).unwrap();
        let mut sum = 0.0;
        for (o, t) in out.iter().zip(targets.iter()) {
            sum += (o - t) * (o - t);
        }
        assert_eq!(a.to_bits(), (0.5 * sum / 3.0).to_bits());
        assert!(mean_boundary_loss(out.view(), targets.t()).is_err());
        assert!(mean_boundary_loss(
            out.slice(ndarray::s![..0, ..]),
            targets.slice(ndarray::s![..0, ..])
        )
        .is_err());
    }

    #[test]
    fn boundary_loss_by_hand() {
        let net = net();
        let inputs = array![[0.2, -0.3, 0.9]];
        let targets = array![[1.0, -1.0]];
        let bd = Boundary::new(inputs.view(), targets.view());
        let x = net.forward_states(inputs.view()).unwrap();
        let h = BoundaryLoss.values(&net, x.view(), &bd).unwrap()[0];
        let (o0, o1) = (x[[0, 7]], x[[0, 8]]);
        let expected = 0.5 * ((o0 - 1.0).powi(2) + (o1 + 1.0).powi(2));
        assert_abs_diff_eq!(h, expected, epsilon = 1e-15);
    }

    #[test]
    fn bulk_loss_is_zero_at_forward_state_without_outputs() {
        // A feedforward septuple with no output neurons and m = 0: the forward state solves
        // Eq. (2.9) exactly, so every residual vanishes.
        let lay = Layered::random(&[3, 4, 2], Builtin::Tanh, Init::TorchLinear, 9).unwrap();
        let (w, b, acts, inputs, _) = lay.to_septuple().unwrap().into_parts();
        let net = Septuple::new(w, b, acts, inputs, vec![]).unwrap();
        let inputs = array![[0.2, -0.3, 0.9], [1.0, 0.0, -1.0]];
        let x = net.forward_states(inputs.view()).unwrap();
        let h = BulkLoss::new()
            .values(&net, x.view(), &Boundary::inputs_only(inputs.view()))
            .unwrap();
        assert_eq!(h, array![0.0, 0.0]);
    }

    #[test]
    fn missing_or_misshapen_targets_are_errors() {
        let net = net();
        let inputs = array![[0.2, -0.3, 0.9]];
        let x = net.forward_states(inputs.view()).unwrap();
        let e = BoundaryLoss.values(&net, x.view(), &Boundary::inputs_only(inputs.view()));
        assert_eq!(
            e,
            Err(CoreError::MissingTargets {
                n_out: 2,
                samples: 1
            })
        );
        let t = array![[1.0, 2.0, 3.0]];
        let e = BulkLoss::new().values(&net, x.view(), &Boundary::new(inputs.view(), t.view()));
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let t = array![[1.0, 2.0]];
        let e = BulkLoss::with_potential(Potential {
            mass: 0.0,
            couplings: Some(Array2::zeros((2, 2))),
        })
        .values(&net, x.view(), &Boundary::new(inputs.view(), t.view()));
        assert!(matches!(e, Err(CoreError::Shape { .. })));
        let e = BulkLoss::with_mass(f64::NAN).values(
            &net,
            x.view(),
            &Boundary::new(inputs.view(), t.view()),
        );
        assert!(matches!(e, Err(CoreError::Parameter { .. })));
    }
}
