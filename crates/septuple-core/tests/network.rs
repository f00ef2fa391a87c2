//! Every implementation of the `Network` trait against the dense septuple it stands for.

use approx::assert_abs_diff_eq;
use ndarray::{Array1, Array2, ShapeBuilder};
use proptest::prelude::*;
use septuple_core::strategies::layered;
use septuple_core::{Builtin, CoreError, DenseBudget, Init, Layered, Network, Septuple};

/// The dense M = I - f'w of Eq. (5.6), written out from its definition.
fn dense_m(sep: &Septuple, fp: &Array1<f64>) -> Array2<f64> {
    let n = sep.n_neurons();
    Array2::from_shape_fn((n, n), |(i, j)| {
        f64::from(u8::from(i == j)) - fp[i] * sep.weights()[[i, j]]
    })
}

fn block(n: usize, k: usize, seed: u64) -> Array2<f64> {
    Array2::from_shape_fn((n, k), |(i, j)| {
        (((i * 7 + j * 13) as u64 + seed) as f64 * 0.37).sin()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The layered implementation agrees with its dense septuple on every trait operation.
    /// Products are the same sums over the same non-zero terms, grouped otherwise (plus exact
    /// zeros): a few ulps of O(1) values, so 1e-13 absolute.
    #[test]
    fn layered_agrees_with_its_dense_septuple(net in layered(1..=4, 1..=6), seed in 0u64..1000) {
        let sep = net.to_septuple().unwrap();
        let n = net.n_neurons();
        prop_assert_eq!(Network::n_neurons(&net), n);
        prop_assert_eq!(Network::inputs(&net).to_vec(), sep.inputs().to_vec());
        prop_assert_eq!(Network::outputs(&net).to_vec(), sep.outputs().to_vec());
        prop_assert_eq!(Network::roles(&net), sep.roles().to_vec());
        prop_assert_eq!(Network::bias(&net).to_vec(), sep.bias().to_vec());
        prop_assert_eq!(net.n_connections(), Network::n_connections(&sep));
        for i in 0..n {
            prop_assert_eq!(net.activation(i), &sep.activations()[i]);
        }
        let ff = Network::feedforward(&net).unwrap();
        let ffd = sep.feedforward().unwrap();
        prop_assert_eq!(ff.depth, net.depth());
        prop_assert!(ffd.depth <= ff.depth);

        let n_in = net.layer_sizes()[0];
        let x = block(5, n_in, seed);
        let states = net.forward_states(x.view()).unwrap();
        assert_abs_diff_eq!(states, sep.forward_states(x.view()).unwrap(), epsilon = 1e-13);
        assert_abs_diff_eq!(
            net.predict(x.view()).unwrap(),
            sep.predict(x.view()).unwrap(),
            epsilon = 1e-13
        );
        let mean = net.mean_state(x.view()).unwrap();
        assert_abs_diff_eq!(mean, sep.mean_state(x.view()).unwrap(), epsilon = 1e-13);
        let fp = net.derivatives_at(mean.view()).unwrap();
        assert_abs_diff_eq!(fp, sep.derivatives_at(mean.view()).unwrap(), epsilon = 1e-13);

        let v = block(n, 3, seed + 1);
        let m = dense_m(&sep, &fp);
        assert_abs_diff_eq!(net.weights_times(v.view()).unwrap(), sep.weights().dot(&v), epsilon = 1e-13);
        assert_abs_diff_eq!(net.weights_t_times(v.view()).unwrap(), sep.weights().t().dot(&v), epsilon = 1e-13);
        assert_abs_diff_eq!(net.apply_m(fp.view(), v.view()).unwrap(), m.dot(&v), epsilon = 1e-13);
        assert_abs_diff_eq!(net.apply_mt(fp.view(), v.view()).unwrap(), m.t().dot(&v), epsilon = 1e-13);
        assert_abs_diff_eq!(sep.apply_m(fp.view(), v.view()).unwrap(), m.dot(&v), epsilon = 1e-13);
        assert_abs_diff_eq!(sep.apply_mt(fp.view(), v.view()).unwrap(), m.t().dot(&v), epsilon = 1e-13);

        // Rows of M: exact (one product per entry) in both overrides and the default.
        let rows: Vec<usize> = (0..n).rev().step_by(2).collect();
        let expected = m.select(ndarray::Axis(0), &rows);
        prop_assert_eq!(&net.jacobian_rows(fp.view(), &rows, DenseBudget::default()).unwrap(), &expected);
        prop_assert_eq!(&sep.jacobian_rows(fp.view(), &rows, DenseBudget::default()).unwrap(), &expected);
        let wrapped = Wrapper(&net);
        prop_assert_eq!(&wrapped.jacobian_rows(fp.view(), &rows, DenseBudget::default()).unwrap(), &expected);
    }
}

/// A network kind of its own that provides only the required methods (delegating to a
/// layered network): every provided method must still be right.
struct Wrapper<'a>(&'a Layered);

impl Network for Wrapper<'_> {
    type Act = Builtin;
    fn n_neurons(&self) -> usize {
        Network::n_neurons(self.0)
    }
    fn inputs(&self) -> std::borrow::Cow<'_, [usize]> {
        Network::inputs(self.0)
    }
    fn outputs(&self) -> std::borrow::Cow<'_, [usize]> {
        Network::outputs(self.0)
    }
    fn n_connections(&self) -> usize {
        self.0.n_connections()
    }
    fn activation(&self, i: usize) -> &Builtin {
        self.0.activation(i)
    }
    fn feedforward(&self) -> Result<septuple_core::Feedforward, CoreError> {
        Network::feedforward(self.0)
    }
    fn forward_states(
        &self,
        inputs: ndarray::ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>, CoreError> {
        self.0.forward_states(inputs)
    }
    fn weights_times(&self, v: ndarray::ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.0.weights_times(v)
    }
    fn weights_t_times(&self, v: ndarray::ArrayView2<'_, f64>) -> Result<Array2<f64>, CoreError> {
        self.0.weights_t_times(v)
    }
    fn bias(&self) -> std::borrow::Cow<'_, Array1<f64>> {
        Network::bias(self.0)
    }
    fn to_dense(&self, budget: DenseBudget) -> Result<Septuple, CoreError> {
        self.0.to_dense(budget)
    }
}

#[test]
fn provided_methods_of_a_minimal_implementation() {
    let net = Layered::random(&[4, 3, 2], Builtin::Tanh, Init::TorchLinear, 5).unwrap();
    let w = Wrapper(&net);
    let x = block(6, 4, 2);
    assert_eq!(
        w.predict(x.view()).unwrap(),
        w.forward_states(x.view())
            .unwrap()
            .select(ndarray::Axis(1), &[7, 8])
    );
    let mean = w.mean_state(x.view()).unwrap();
    assert_abs_diff_eq!(mean, net.mean_state(x.view()).unwrap(), epsilon = 1e-15);
    assert_abs_diff_eq!(
        w.derivatives_at(mean.view()).unwrap(),
        net.derivatives_at(mean.view()).unwrap(),
        epsilon = 1e-15
    );
    assert!(matches!(
        w.mean_state(Array2::zeros((0, 4)).view()),
        Err(CoreError::Empty { .. })
    ));
    assert!(matches!(
        w.preactivation(Array1::zeros(3).view()),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        w.apply_m(Array1::zeros(9).view(), Array2::zeros((8, 1)).view()),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        w.jacobian_rows(Array1::zeros(9).view(), &[9], DenseBudget::default()),
        Err(CoreError::IndexOutOfRange { index: 9, .. })
    ));
}

#[test]
fn dense_forms_respect_the_budget() {
    // 1 x 100,000 weights: N = 100,001, a dense w would take 80 GB.
    let net = Layered::from_layers(
        vec![Array2::from_elem((1, 100_000), 0.5)],
        vec![Array1::zeros(1)],
        vec![Builtin::Tanh],
    )
    .unwrap();
    let e = net.to_septuple().unwrap_err();
    assert!(
        matches!(e, CoreError::TooLarge { rows: 100_001, cols: 100_001, bytes, .. } if bytes == 8 * 100_001u64 * 100_001),
        "{e}"
    );
    assert!(e.to_string().contains("budget"));
    // The layered form works at that size without any N x N matrix.
    let x = Array2::from_elem((2, 100_000), 0.001);
    assert_eq!(net.predict(x.view()).unwrap().dim(), (2, 1));
    let small = Layered::random(&[3, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    assert!(small.to_dense(DenseBudget { bytes: 8 * 25 }).is_ok());
    assert!(matches!(
        small.to_dense(DenseBudget { bytes: 8 * 24 }),
        Err(CoreError::TooLarge { .. })
    ));
}

#[test]
fn parameters_are_set_through_checks() {
    let mut net = Layered::random(&[3, 2, 2], Builtin::Tanh, Init::TorchLinear, 1).unwrap();
    let before = net.clone();
    let mut w0 = net.weights()[0].clone();
    w0[[1, 2]] = f64::NAN;
    let ws: Vec<_> = vec![w0.view(), net.weights()[1].view()];
    let bs: Vec<_> = net.biases().iter().map(|b| b.view()).collect();
    let (ws, bs): (Vec<_>, Vec<_>) = (
        ws.into_iter().map(|w| w.to_owned()).collect(),
        bs.into_iter().map(|b| b.to_owned()).collect(),
    );
    let wv: Vec<_> = ws.iter().map(|w| w.view()).collect();
    let bv: Vec<_> = bs.iter().map(|b| b.view()).collect();
    assert!(matches!(
        net.assign_parameters(&wv, &bv),
        Err(CoreError::NonFinite { .. })
    ));
    assert_eq!(net, before, "a refused assignment changes nothing");
    let wrong = Array2::zeros((3, 3));
    assert!(matches!(
        net.set_layer(0, wrong.view(), bs[0].view()),
        Err(CoreError::Shape { .. })
    ));
    assert!(matches!(
        net.set_layer(2, ws[1].view(), bs[1].view()),
        Err(CoreError::Layers { .. })
    ));
    let w1 = Array2::from_elem((2, 2), 0.25);
    net.set_layer(1, w1.view(), Array1::from_elem(2, 0.5).view())
        .unwrap();
    assert_eq!(net.weights()[1], w1);
    assert!(net.to_septuple().is_ok());
}

#[test]
fn column_major_layers_are_stored_row_major() {
    let w = Array2::from_shape_vec((2, 3).f(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert!(!w.is_standard_layout());
    let net = Layered::from_layers(
        vec![w.clone()],
        vec![Array1::zeros(2)],
        vec![Builtin::Identity],
    )
    .unwrap();
    assert!(net.weights()[0].is_standard_layout());
    assert_eq!(net.weights()[0], w);
}
