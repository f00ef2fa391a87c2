//! What the trainer can train: the [`Trainable`] trait, implemented by [`Layered`] (the fast
//! path) and [`Dag`] (any feedforward septuple).

use ndarray::{s, ArrayView2, Axis};
use septuple_core::{
    Activation, Boundary, BulkLoss, BulkSolver, Layered, Loss, Network, Potential,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{Objective, Precision, Sgd};
use crate::dag::Dag;
use crate::data::Dataset;
use crate::error::{NetworkError, TrainError};
use crate::layered::{Kernels, LayeredWorkspace};

/// A [`Network`] SGD can train: everything else (outputs, the dense septuple, f', the
/// operators of G) comes from [`Network`]. Parameters may live in the workspace while an epoch
/// runs; the trainer calls [`sync`](Trainable::sync) before anyone reads the model.
pub trait Trainable: Network + Clone + Serialize + DeserializeOwned + Send {
    /// Working memory for one training set.
    type Workspace: Send;

    /// Working memory for steps on `data` with the settings of `sgd`, its kernels limited to
    /// what `kernels` allows (where the model has a choice of kernels).
    fn workspace(
        &self,
        data: &Dataset,
        sgd: &Sgd,
        kernels: Kernels,
    ) -> Result<Self::Workspace, TrainError>;

    /// One SGD step with learning rate `eta` on the samples `batch` of `data`; returns the mean
    /// loss of the batch before the step.
    fn step(
        &mut self,
        ws: &mut Self::Workspace,
        data: &Dataset,
        batch: &[usize],
        eta: f64,
        objective: Objective,
    ) -> Result<f64, TrainError>;

    /// Bring the model up to date with the workspace's parameters; a non-finite parameter is
    /// [`TrainError::Diverged`] and leaves the model as it was.
    fn sync(&mut self, ws: &Self::Workspace) -> Result<(), TrainError>;

    /// Whether every parameter is finite.
    fn is_finite(&self) -> bool;
}

/// Gradient of the mean bulk loss (Eq. 3.4, mass `mass`) of a batch at its bulk-solved states
/// (Eq. 3.2) with respect to each layer's parameters, by the envelope theorem: the solved states
/// are stationary in the bulk, so dU_0/dW_l = dH/dW_l at fixed states.
pub fn layered_bulk_gradients<A: Activation>(
    net: &Layered<A>,
    inputs: ArrayView2<'_, f64>,
    targets: ArrayView2<'_, f64>,
    mass: f64,
) -> Result<crate::layered::LayerGradients, TrainError> {
    let sep = net.to_septuple()?;
    let boundary = Boundary::new(inputs, targets);
    let potential = Potential::mass(mass);
    let solution = BulkSolver::default().solve(&sep, &potential, &boundary)?;
    let bulk = BulkLoss::with_potential(potential);
    let states = solution.states.view();
    let loss = bulk.mean(&sep, states, &boundary)?;
    // S >= 1: the mean of an empty batch is an error.
    let mut g = bulk.preactivation_gradients(&sep, states, &boundary)?;
    g *= 1.0 / states.nrows() as f64;
    let mut offsets = net.offsets();
    offsets.push(net.n_neurons());
    let mut weights = Vec::with_capacity(net.depth() - 1);
    let mut biases = Vec::with_capacity(net.depth() - 1);
    for l in 0..net.depth() - 1 {
        let prev = solution.states.slice(s![.., offsets[l]..offsets[l + 1]]);
        let gl = g.slice(s![.., offsets[l + 1]..offsets[l + 2]]);
        weights.push(gl.t().dot(&prev));
        biases.push(gl.sum_axis(Axis(0)));
    }
    Ok(crate::layered::LayerGradients {
        weights,
        biases,
        loss,
    })
}

impl<A> Trainable for Layered<A>
where
    A: Activation + Serialize + DeserializeOwned,
{
    type Workspace = LayeredWorkspace;

    fn workspace(
        &self,
        data: &Dataset,
        sgd: &Sgd,
        kernels: Kernels,
    ) -> Result<LayeredWorkspace, TrainError> {
        let capacity = sgd.batch_size(data.len());
        Ok(
            LayeredWorkspace::with_precision(self, data, capacity, sgd.config().precision)?
                .with_kernels(kernels),
        )
    }

    fn step(
        &mut self,
        ws: &mut LayeredWorkspace,
        data: &Dataset,
        batch: &[usize],
        eta: f64,
        objective: Objective,
    ) -> Result<f64, TrainError> {
        match objective {
            Objective::Boundary | Objective::MeanSquaredError => {
                let scale = objective
                    .boundary_gradient_scale(self.outputs().len())
                    .unwrap_or(1.0);
                ws.step(self.activations(), data, batch, eta * scale)
            }
            Objective::Bulk { mass } => {
                ws.store(self)?;
                let x = data.inputs().select(Axis(0), batch);
                let t = data.targets().select(Axis(0), batch);
                let g = layered_bulk_gradients(self, x.view(), t.view(), mass)?;
                if !g.loss.is_finite() {
                    return Err(TrainError::Diverged {
                        epoch: 0,
                        what: "the batch's bulk loss".into(),
                    });
                }
                let weights: Vec<_> = self
                    .weights()
                    .iter()
                    .zip(&g.weights)
                    .map(|(w, gw)| w - &(gw * eta))
                    .collect();
                let biases: Vec<_> = self
                    .biases()
                    .iter()
                    .zip(&g.biases)
                    .map(|(b, gb)| b - &(gb * eta))
                    .collect();
                let wv: Vec<_> = weights.iter().map(|w| w.view()).collect();
                let bv: Vec<_> = biases.iter().map(|b| b.view()).collect();
                self.assign_parameters(&wv, &bv).map_err(|e| match e {
                    septuple_core::CoreError::NonFinite { what, .. } => TrainError::Diverged {
                        epoch: 0,
                        what: format!("a value of the {what}"),
                    },
                    other => other.into(),
                })?;
                ws.load(self);
                Ok(g.loss)
            }
        }
    }

    fn sync(&mut self, ws: &LayeredWorkspace) -> Result<(), TrainError> {
        ws.store(self)
    }

    fn is_finite(&self) -> bool {
        self.weights()
            .iter()
            .all(|w| w.iter().all(|v| v.is_finite()))
            && self
                .biases()
                .iter()
                .all(|b| b.iter().all(|v| v.is_finite()))
    }
}

impl<A> Trainable for Dag<A>
where
    A: Activation + Serialize + DeserializeOwned,
{
    type Workspace = ();

    fn workspace(&self, data: &Dataset, sgd: &Sgd, _kernels: Kernels) -> Result<(), TrainError> {
        if sgd.config().precision != Precision::F64 {
            return Err(NetworkError::Float32NeedsLayered { model: "Dag" }.into());
        }
        data.check_widths(
            self.septuple().inputs().len(),
            self.septuple().outputs().len(),
        )
    }

    fn step(
        &mut self,
        _ws: &mut (),
        data: &Dataset,
        batch: &[usize],
        eta: f64,
        objective: Objective,
    ) -> Result<f64, TrainError> {
        let x = data.inputs().select(Axis(0), batch);
        let t = data.targets().select(Axis(0), batch);
        let (dw, db, loss) = match objective {
            Objective::Boundary | Objective::MeanSquaredError => {
                self.boundary_gradients(x.view(), t.view())?
            }
            Objective::Bulk { mass } => {
                let boundary = Boundary::new(x.view(), t.view());
                let potential = Potential::mass(mass);
                let solution =
                    BulkSolver::default().solve(self.septuple(), &potential, &boundary)?;
                self.bulk_gradients(
                    solution.states.view(),
                    &boundary,
                    &BulkLoss::with_potential(potential),
                )?
            }
        };
        if !loss.is_finite() {
            return Err(TrainError::Diverged {
                epoch: 0,
                what: "the batch loss".into(),
            });
        }
        let scale = objective
            .boundary_gradient_scale(self.septuple().outputs().len())
            .unwrap_or(1.0);
        self.apply(&dw, &db, eta * scale)?;
        Ok(loss)
    }

    fn sync(&mut self, _ws: &()) -> Result<(), TrainError> {
        Ok(())
    }

    fn is_finite(&self) -> bool {
        // A septuple's values are checked finite when it is built.
        true
    }
}
