//! Network kinds of a user's own: one implements only the required methods of
//! `septuple::core::Network` and runs through the spectrum and the thermodynamic summary
//! unchanged, giving what the built-in kinds give; a wrapper implements `Network` and
//! `septuple::train::Trainable` by delegation and trains unchanged, then runs through the
//! spectrum and the thermodynamic summary.

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView2};
use septuple::core::{
    Builtin, CoreError, DenseBudget, Feedforward, Init, Layered, Network, Septuple,
};
use septuple::spectral::{
    analyze, spectrum, AnalysisOptions, Faer, Method, ThermoOptions, TopCount,
};
use septuple::thermo::ThermoPoint;
use septuple::train::{
    Batch, Context, Dataset, Kernels, Objective, Observer, ObserverError, Precision, Schedule, Sgd,
    SgdConfig, TrainError, Trainable, Trainer,
};
use serde::{Deserialize, Serialize};

/// A layered network stored with its layers in reverse order (a storage of its own): the trait
/// methods translate.
struct Reversed {
    layers: Vec<(Array2<f64>, Array1<f64>)>,
    inner: Layered,
}

impl Reversed {
    fn new(net: Layered) -> Self {
        let layers = net
            .weights()
            .iter()
            .zip(net.biases())
            .rev()
            .map(|(w, b)| (w.clone(), b.clone()))
            .collect();
        Reversed { layers, inner: net }
    }
}

impl Network for Reversed {
    type Act = Builtin;
    fn n_neurons(&self) -> usize {
        self.layers[self.layers.len() - 1].0.ncols()
            + self.layers.iter().map(|(w, _)| w.nrows()).sum::<usize>()
    }
    fn inputs(&self) -> Cow<'_, [usize]> {
        Cow::Owned((0..self.layers[self.layers.len() - 1].0.ncols()).collect())
    }
    fn outputs(&self) -> Cow<'_, [usize]> {
        let n = self.n_neurons();
        Cow::Owned((n - self.layers[0].0.nrows()..n).collect())
    }
    fn n_connections(&self) -> usize {
        self.layers
            .iter()
            .map(|(w, _)| w.iter().filter(|&&v| v != 0.0).count())
            .sum()
    }
    fn activation(&self, _i: usize) -> &Builtin {
        &Builtin::Tanh
    }
    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        self.inner.feedforward()
    }
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        // Propagate layer by layer from the stored (reversed) list.
        let mut out = vec![inputs.to_owned()];
        for (w, b) in self.layers.iter().rev() {
            let mut y = out[out.len() - 1].dot(&w.t()) + b;
            y.mapv_inplace(septuple::core::tanh);
            out.push(y);
        }
        let views: Vec<_> = out.iter().map(|a| a.view()).collect();
        Ok(ndarray::concatenate(ndarray::Axis(1), &views).expect("same number of rows"))
    }
    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.inner.weights_times(v)
    }
    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.inner.weights_t_times(v)
    }
    fn bias(&self) -> Cow<'_, Array1<f64>> {
        Network::bias(&self.inner)
    }
    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple, CoreError> {
        self.inner.to_dense(budget)
    }
}

fn inputs(samples: usize, n: usize) -> Array2<f64> {
    Array2::from_shape_fn((samples, n), |(s, i)| {
        (((s * 31 + i * 7) % 17) as f64) / 17.0
    })
}

#[test]
fn a_network_of_its_own_runs_through_spectrum_and_thermodynamics() {
    let net = Layered::random(&[12, 7, 5, 3], Builtin::Tanh, Init::TorchLinear, 4).unwrap();
    let mine = Reversed::new(net.clone());
    let x = inputs(30, 12);
    assert_eq!(mine.n_neurons(), 27);
    // Forward states: the same sums in the same order as the layered sweep.
    assert_eq!(
        mine.forward_states(x.view()).unwrap(),
        net.forward_states(x.view()).unwrap()
    );
    let mean = mine.mean_state(x.view()).unwrap();
    for method in [Method::Dense, Method::Structured] {
        let a = spectrum(&mine, mean.view(), method, &Faer::default()).unwrap();
        let b = spectrum(&net, mean.view(), method, &Faer::default()).unwrap();
        // The provided jacobian_rows (M^T on unit vectors) against Layered's direct rows: the
        // same non-zero entries, but zeros of other signs (-f * 0 against sums of +0), and the
        // SVD's Householder reflections pick their signs from leading entries. Both are
        // backward stable: agreement to a few eps times lambda_max (~3 here); 1e-13 absolute.
        for (p, q) in a.eigenvalues.iter().zip(&b.eigenvalues) {
            assert!((p - q).abs() < 1e-13, "{method:?}: {p} vs {q}");
        }
        let sum: f64 = a.log_eigenvalues().unwrap().iter().sum();
        assert!(sum.abs() < 1e-12, "det G = 1 (Eqs. 7.7-7.8): {sum}");
    }
    let options = AnalysisOptions {
        thermo: Some(ThermoOptions {
            at: ThermoPoint::at_beta(0.8),
            mean_components: true,
        }),
        ..AnalysisOptions::default()
    };
    let a = analyze(&mine, x.view(), &options, &Faer::default()).unwrap();
    let b = analyze(&net, x.view(), &options, &Faer::default()).unwrap();
    let close = |p: f64, q: f64| (p - q).abs() <= 1e-12 * q.abs().max(1.0);
    assert_eq!(a.eigenvalues.len(), 27);
    let (ca, cb) = (
        a.exact_summary()
            .unwrap()
            .complexity(TopCount::Largest(20))
            .unwrap(),
        b.exact_summary()
            .unwrap()
            .complexity(TopCount::Largest(20))
            .unwrap(),
    );
    assert!(close(ca, cb), "{ca} vs {cb}");
    let (ta, tb) = (a.thermo.unwrap(), b.thermo.unwrap());
    // Sums of 27 terms each within ~1e-15 of the other's: 1e-12 relative.
    assert!(close(ta.log_z, tb.log_z));
    assert!(close(ta.entropy, tb.entropy));
    // The mean components come from two eigendecompositions of the same G: equal to rounding.
    assert!((ta.log_z_full - tb.log_z_full).abs() < 1e-12 * tb.log_z_full.abs());
    let report = a.report();
    assert_eq!(report.log_det_i_plus_beta_g, Some(ta.log_det_i_plus_beta_g));
    assert_eq!(report.laplacian_f, Some(ta.laplacian_f));
}

/// A user's wrapper: any trainable network, with a count of the SGD steps taken on it. It
/// implements the required methods of `Network` and all of `Trainable` by delegation.
#[derive(Clone, Serialize, Deserialize)]
struct Counted<N> {
    inner: N,
    steps: usize,
}

impl<N: Network> Network for Counted<N> {
    type Act = N::Act;
    fn n_neurons(&self) -> usize {
        self.inner.n_neurons()
    }
    fn inputs(&self) -> Cow<'_, [usize]> {
        self.inner.inputs()
    }
    fn outputs(&self) -> Cow<'_, [usize]> {
        self.inner.outputs()
    }
    fn n_connections(&self) -> usize {
        self.inner.n_connections()
    }
    fn activation(&self, i: usize) -> &N::Act {
        self.inner.activation(i)
    }
    fn feedforward(&self) -> Result<Feedforward, CoreError> {
        self.inner.feedforward()
    }
    fn forward_states(&self, inputs: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.inner.forward_states(inputs)
    }
    fn weights_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.inner.weights_times(v)
    }
    fn weights_t_times(&self, v: ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.inner.weights_t_times(v)
    }
    fn bias(&self) -> Cow<'_, Array1<f64>> {
        self.inner.bias()
    }
    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple<N::Act>, CoreError> {
        self.inner.to_dense(budget)
    }
}

impl<N: Trainable> Trainable for Counted<N> {
    type Workspace = N::Workspace;
    fn workspace(
        &self,
        data: &Dataset,
        sgd: &Sgd,
        kernels: Kernels,
    ) -> Result<N::Workspace, TrainError> {
        self.inner.workspace(data, sgd, kernels)
    }
    fn step(
        &mut self,
        ws: &mut N::Workspace,
        data: &Dataset,
        batch: &[usize],
        eta: f64,
        objective: Objective,
    ) -> Result<f64, TrainError> {
        self.steps += 1;
        self.inner.step(ws, data, batch, eta, objective)
    }
    fn sync(&mut self, ws: &N::Workspace) -> Result<(), TrainError> {
        self.inner.sync(ws)
    }
    fn is_finite(&self) -> bool {
        self.inner.is_finite()
    }
}

/// Collects the mean batch loss of every epoch.
struct Losses(Vec<f64>);

impl<M> Observer<M> for Losses {
    fn on_epoch(&mut self, ctx: &Context<'_, M>) -> Result<(), ObserverError> {
        self.0.extend(ctx.epoch_loss);
        Ok(())
    }
}

fn bits(net: &Layered) -> Vec<u64> {
    let w = net
        .weights()
        .iter()
        .flat_map(|w| w.iter().map(|v| v.to_bits()));
    let b = net
        .biases()
        .iter()
        .flat_map(|b| b.iter().map(|v| v.to_bits()));
    w.chain(b).collect()
}

#[test]
fn a_wrapper_of_its_own_trains_and_runs_through_spectrum_and_thermodynamics() {
    // Targets: a smooth function of the inputs in (-1, 1), which the net can fit.
    let x = inputs(40, 12);
    let t = Array2::from_shape_fn((40, 3), |(s, k)| {
        (x.row(s).sum() * (k as f64 + 1.0) * 0.2 - 0.6).tanh()
    });
    let data = Dataset::new(x.clone(), t, None).unwrap();
    let init = Layered::random(&[12, 7, 5, 3], Builtin::Tanh, Init::TorchLinear, 6).unwrap();
    let sgd = SgdConfig {
        learning_rate: 0.1,
        schedule: Schedule::Constant,
        batch: Batch::Size(10),
        epochs: 6,
        seed: 3,
        objective: Objective::Boundary,
        precision: Precision::F64,
    }
    .check()
    .unwrap();
    let trainer = Trainer::new(sgd);
    let mut plain = init.clone();
    let mut plain_losses = Losses(Vec::new());
    trainer
        .run(&mut plain, &data, None, &mut plain_losses)
        .unwrap();
    let mut mine = Counted {
        inner: init.clone(),
        steps: 0,
    };
    let mut my_losses = Losses(Vec::new());
    trainer.run(&mut mine, &data, None, &mut my_losses).unwrap();
    // The trainer drives the wrapper as it drives the network itself: every step went through
    // it, and the losses and weights are the same to the bit.
    assert_eq!(mine.steps, 6 * 4);
    assert_eq!(my_losses.0, plain_losses.0);
    assert_eq!(bits(&mine.inner), bits(&plain));
    assert_ne!(bits(&mine.inner), bits(&init));
    assert!(my_losses.0[5] < 0.9 * my_losses.0[0], "{:?}", my_losses.0);
    // The trained wrapper through the spectrum (the trait's own jacobian_rows) and the
    // thermodynamic summary: what the network gives, to the tolerances argued in
    // a_network_of_its_own_runs_through_spectrum_and_thermodynamics.
    let mean = mine.mean_state(x.view()).unwrap();
    let a = spectrum(&mine, mean.view(), Method::Dense, &Faer::default()).unwrap();
    let b = spectrum(&plain, mean.view(), Method::Dense, &Faer::default()).unwrap();
    for (p, q) in a.eigenvalues.iter().zip(&b.eigenvalues) {
        assert!((p - q).abs() < 1e-13, "{p} vs {q}");
    }
    let options = AnalysisOptions {
        thermo: Some(ThermoOptions {
            at: ThermoPoint::at_beta(0.8),
            mean_components: false,
        }),
        ..AnalysisOptions::default()
    };
    let ta = analyze(&mine, x.view(), &options, &Faer::default())
        .unwrap()
        .thermo
        .unwrap();
    let tb = analyze(&plain, x.view(), &options, &Faer::default())
        .unwrap()
        .thermo
        .unwrap();
    let close = |p: f64, q: f64| (p - q).abs() <= 1e-12 * q.abs().max(1.0);
    assert!(close(ta.log_z, tb.log_z), "{} vs {}", ta.log_z, tb.log_z);
    assert!(close(ta.entropy, tb.entropy));
}
