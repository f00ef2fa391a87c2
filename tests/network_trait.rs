//! A network kind of its own, written by a user: it implements only the required methods of
//! `septuple::core::Network` and runs through the spectrum and the thermodynamic summary
//! unchanged, giving what the built-in kinds give.

use std::borrow::Cow;

use ndarray::{Array1, Array2, ArrayView2};
use septuple::core::{
    Builtin, CoreError, DenseBudget, Feedforward, Init, Layered, Network, Septuple,
};
use septuple::spectral::{
    analyze, spectrum, AnalysisOptions, Faer, Method, ThermoOptions, TopCount,
};
use septuple::thermo::ThermoPoint;

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
