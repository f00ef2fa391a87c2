//! A Keras model exported to ONNX by tf2onnx, imported as a sparse septuple, against the
//! outputs of onnxruntime and of Keras itself on the same inputs (fixtures written by
//! tests/fixtures/onnx/make_keras_fixture.py).

mod common;

use common::{fixture, npy2, worst};

use ndarray::Array2;
use septuple_core::{Builtin, DenseBudget, Network};
use septuple_io::{load_inputs, load_onnx, OnnxModel};
use septuple_spectral::{analyze, AnalysisOptions, Faer, Method};

fn keras_mlp() -> OnnxModel {
    load_onnx(fixture("keras_mlp_f32.onnx"), DenseBudget::default()).unwrap()
}

fn inputs() -> Array2<f64> {
    load_inputs(fixture("keras_inputs.npy"), None)
        .unwrap()
        .into_matrix()
}

#[test]
fn keras_mlp_is_a_feedforward_septuple_of_its_dense_layers() {
    // tf2onnx writes each Dense layer as MatMul + Add (+ Tanh): 784 inputs, then one neuron
    // per unit of the three layers.
    let model = keras_mlp();
    let net = &model.network;
    assert_eq!(net.n_neurons(), 784 + 32 + 16 + 10);
    assert_eq!(model.input_shape, [1, 784]);
    assert_eq!(model.outputs.len(), 1);
    assert_eq!(model.outputs[0].name, "logits");
    assert_eq!(model.outputs[0].shape, [1, 10]);
    assert_eq!(net.inputs(), (0..784).collect::<Vec<_>>());
    assert_eq!(net.outputs(), (842 - 10..842).collect::<Vec<_>>());
    // Dense layers: every unit reads every unit of the layer before (glorot_uniform weights
    // are nonzero almost surely, and training keeps them so).
    assert_eq!(net.n_connections(), 784 * 32 + 32 * 16 + 16 * 10);
    // Eqs. (2.1)-(2.3); the longest path input -> 32 -> 16 -> 10 has 3 edges, so L = 4.
    let ff = net.feedforward().unwrap();
    assert_eq!(ff.depth, 4);
    // Dense(activation="tanh") is Tanh after the Add; the last Dense has none.
    let acts = net.activations();
    assert!(acts[784..784 + 32 + 16].iter().all(|a| *a == Builtin::Tanh));
    assert!(acts[784 + 32 + 16..]
        .iter()
        .all(|a| *a == Builtin::Identity));
}

#[test]
fn keras_mlp_matches_onnxruntime_and_keras() {
    let model = keras_mlp();
    let x = inputs();
    assert_eq!(x.dim(), (8, 784));
    let ours = model.network.predict(x.view()).unwrap();
    // onnxruntime and Keras compute in float32, we in f64 with the same (exactly converted)
    // weights and inputs. The widest sum is the first layer's: at most 183 lit pixels in
    // [0, 1] times weights |w| < 0.093, sum |terms| < 5.7, so its float32 rounding error is
    // about sqrt(183) u 5.7 = 5e-6 by the random-walk estimate (u = 6e-8), typically less;
    // tanh is 1-Lipschitz, and the 32- and 16-term layers after it (|w| < 0.48) mix those
    // errors of random sign without growing them much and add a few ulp of their own. 1e-5
    // bounds that and still catches a wrong weight, a dropped bias (every output bias is
    // > 4e-3) or a wrong activation. Measured: 2.2e-7 against onnxruntime, 1.9e-7 against
    // Keras (two ulp of f32 relative to max(1, |y|)).
    let ort = npy2("keras_mlp_f32_ort.npy");
    let err = worst(&ours, &ort);
    assert!(err < 1e-5, "onnxruntime: max relative difference {err}");
    let keras = npy2("keras_mlp_f32_keras.npy");
    let err = worst(&ours, &keras);
    assert!(err < 1e-5, "Keras: max relative difference {err}");
}

#[test]
fn keras_mlp_has_det_g_one() {
    // det G = 1, i.e. sum log lambda = 0, for every feedforward septuple (Sec. 7): exact
    // spectrum of the 842-neuron graph; the sum of 842 logs of eigenvalues from a
    // backward-stable SVD is zero to ~N eps cond, 1e-8 leaves room.
    let model = keras_mlp();
    let x = inputs();
    let opts = AnalysisOptions::default().with_method(Method::Dense);
    let a = analyze(&model.network, x.view(), &opts, &Faer::default()).unwrap();
    let r = a.report();
    assert_eq!(r.n_neurons, 842);
    assert!(r.sum_log_lambda.abs() < 1e-8, "{}", r.sum_log_lambda);
}
