//! ONNX models imported as sparse septuples, against the outputs of onnxruntime and PyTorch
//! on the same inputs (fixtures written by tests/fixtures/onnx/make_onnx_fixtures.py).

mod common;

use common::{fixture, npy2, worst};

use ndarray::Array2;
use septuple_core::{DenseBudget, Network};
use septuple_io::{
    load_inputs, load_model, load_network, load_onnx, load_septuple_with, IoError, LoadOptions,
    Model, OnnxModel,
};
use septuple_spectral::{analyze, AnalysisOptions, Faer, Method};

fn onnx(name: &str) -> OnnxModel {
    load_onnx(fixture(name), DenseBudget::default()).unwrap()
}

#[test]
fn lenet_f32_matches_onnxruntime() {
    let model = onnx("lenet_f32.onnx");
    let net = &model.network;
    // 784 inputs + 6@28x28 + 6@14x14 + 16@10x10 + 16@5x5 + 120 + 84 + 10 (Flatten makes none).
    assert_eq!(
        net.n_neurons(),
        784 + 4704 + 1176 + 1600 + 400 + 120 + 84 + 10
    );
    assert_eq!(model.input_shape, [1, 1, 28, 28]);
    assert_eq!(model.outputs.len(), 1);
    assert_eq!(model.outputs[0].shape, [1, 10]);
    // Connections: conv1 (25 per output, fewer at the padded border), pool 4 each, conv2 150
    // each, pool 4 each, the Gemms dense.
    assert!(net.n_connections() < 4704 * 25 + 1176 * 4 + 1600 * 150 + 1600 + 48000 + 10080 + 840);
    net.feedforward().unwrap();
    // Samples of shape 8 x 1 x 28 x 28 fit the 1 x 1 x 28 x 28 input, flattened row-major.
    let inputs = load_inputs(fixture("digits.npy"), None).unwrap();
    assert_eq!(inputs.sample_shape(), [1, 28, 28]);
    let ours = net.predict(inputs.matrix()).unwrap();
    let ort = npy2("lenet_f32_ort.npy");
    // onnxruntime computes in float32: each output is a chain of sums of <= 400 products of
    // magnitude <= ~1, so its rounding error is a few hundred ulp of f32 (6e-8) relative to
    // max(1, |y|) at most; 1e-5 bounds that with room and still catches a wrong weight.
    let err = worst(&ours, &ort);
    assert!(err < 1e-5, "max relative difference {err}");
    // The trained network classifies (argmax agrees with onnxruntime's).
    for (a, b) in ours.rows().into_iter().zip(ort.rows()) {
        let am = a
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .unwrap()
            .0;
        let bm = b
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .unwrap()
            .0;
        assert_eq!(am, bm);
    }
}

#[test]
fn lenet_f64_matches_pytorch_float64() {
    let model = onnx("lenet_f64.onnx");
    let inputs = load_inputs(fixture("digits.npy"), None).unwrap();
    let ours = model.network.predict(inputs.matrix()).unwrap();
    let torch = npy2("lenet_f64_torch.npy");
    // Both sides compute in f64 with the same weights; only the summation order differs:
    // about sqrt(400) * 400 ulp (1.1e-16) of magnitudes <= ~10 is below 1e-12.
    let err = worst(&ours, &torch);
    assert!(err < 1e-12, "max relative difference {err}");
}

#[test]
fn every_supported_op_matches_onnxruntime() {
    let model = onnx("ops_f32.onnx");
    let x = npy_inputs("ops_inputs.npy");
    let net = &model.network;
    net.feedforward().unwrap();
    let y = net.predict(x.view()).unwrap();
    assert_eq!(model.outputs.len(), 2);
    for (k, out) in model.outputs.iter().enumerate() {
        let ort = npy2(&format!("ops_f32_ort_{k}.npy"));
        let ours = y.slice(ndarray::s![.., out.columns.clone()]).to_owned();
        // float32 reference through ~10 layers of <= 36-term sums: see lenet_f32 above.
        let err = worst(&ours, &ort);
        assert!(
            err < 1e-5,
            "output {}: max relative difference {err}",
            out.name
        );
    }
    // Neuron count: 98 inputs; Conv1 64 (BatchNorm folded, LeakyRelu); Conv2 + residual 64
    // (Sigmoid); pool1 64; pool2 16; Conv3 12; Conv4 8 (SAME_UPPER); Conv5 8 (VALID, made
    // into neurons before the MatMul); MatMul + Add 5; Gemm 7; Gemm (transA) 3.
    assert_eq!(
        net.n_neurons(),
        98 + 64 + 64 + 64 + 16 + 12 + 8 + 8 + 5 + 7 + 3
    );
}

#[test]
fn one_dimensional_convolutions_match_onnxruntime() {
    let model = onnx("conv1d_f32.onnx");
    let net = &model.network;
    net.feedforward().unwrap();
    assert_eq!(model.input_shape, [1, 2, 16]);
    // 32 inputs; Conv 4 x 9; grouped dilated Conv 4 x 9; AveragePool 4 x 5; Conv 3 x 5; Gemm 3.
    assert_eq!(net.n_neurons(), 32 + 36 + 36 + 20 + 15 + 3);
    let inputs = load_inputs(fixture("conv1d_inputs.npy"), None).unwrap();
    assert_eq!(inputs.sample_shape(), [2, 16]);
    let ours = net.predict(inputs.matrix()).unwrap();
    // float32 reference through 5 layers of <= 12-term sums: see lenet_f32 above.
    let err = worst(&ours, &npy2("conv1d_f32_ort.npy"));
    assert!(err < 1e-5, "max relative difference {err}");
    // det G = 1 (Sec. 7) on the exact spectrum of the 142 neurons, as for the 2-D graph below.
    let opts = AnalysisOptions::default().with_method(Method::Dense);
    let a = analyze(net, inputs.matrix(), &opts, &Faer::default()).unwrap();
    assert!(a.report().sum_log_lambda.abs() < 1e-8);
}

fn npy_inputs(name: &str) -> Array2<f64> {
    load_inputs(fixture(name), None).unwrap().into_matrix()
}

#[test]
fn imported_feedforward_networks_have_det_g_one() {
    // det G = 1, i.e. sum log lambda = 0, for every feedforward septuple (Sec. 7): exact
    // spectrum of the 349-neuron graph of every op; the sum of 349 logs of eigenvalues from a
    // backward-stable SVD is zero to ~N eps cond, 1e-8 leaves room.
    let model = onnx("ops_f32.onnx");
    let x = npy_inputs("ops_inputs.npy");
    let opts = AnalysisOptions::default().with_method(Method::Dense);
    let a = analyze(&model.network, x.view(), &opts, &Faer::default()).unwrap();
    let r = a.report();
    assert_eq!(r.n_neurons, model.network.n_neurons());
    assert!(r.sum_log_lambda.abs() < 1e-8, "{}", r.sum_log_lambda);
}

#[test]
fn load_model_dispatches_on_onnx() {
    let loaded = load_model(fixture("ops_f32.onnx"), &LoadOptions::default()).unwrap();
    assert!(loaded.warnings.is_empty());
    let Model::Onnx(m) = &loaded.network else {
        panic!("expected an ONNX model");
    };
    assert_eq!(loaded.network.layer_sizes(), None);
    assert_eq!(
        loaded.network.as_network().n_neurons(),
        m.network.n_neurons()
    );
    // By content too: the same bytes under another name.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("model.bin");
    std::fs::copy(fixture("ops_f32.onnx"), &renamed).unwrap();
    let again = load_model(&renamed, &LoadOptions::default()).unwrap();
    assert_eq!(again.network, loaded.network);
    // The dense form (Eq. 2.1-2.3 with w as an N x N matrix) computes the same states.
    let dense = load_septuple_with(fixture("ops_f32.onnx"), &LoadOptions::default()).unwrap();
    let x = npy_inputs("ops_inputs.npy");
    let a = dense.network.predict(x.view()).unwrap();
    let b = m.network.predict(x.view()).unwrap();
    assert!(worst(&a, &b) < 1e-14);
    // A layered loader refuses it by name.
    assert!(matches!(
        load_network(fixture("ops_f32.onnx"), &LoadOptions::default()),
        Err(IoError::Unsupported { .. })
    ));
    // Within a tiny budget the import is refused before it is built.
    let small = LoadOptions::default().with_dense_budget(DenseBudget { bytes: 10_000 });
    assert!(matches!(
        load_model(fixture("lenet_f32.onnx"), &small),
        Err(IoError::TooLarge { .. })
    ));
}

#[test]
fn malformed_models_give_typed_errors() {
    let err = |name: &str| load_onnx(fixture(name), DenseBudget::default()).unwrap_err();
    match err("bad_maxpool.onnx") {
        IoError::OnnxUnsupportedOp { op, supported, .. } => {
            assert_eq!(op, "MaxPool");
            assert!(supported.contains("AveragePool"));
        }
        e => panic!("{e}"),
    }
    let e = err("bad_two_inputs.onnx");
    assert!(
        matches!(&e, IoError::OnnxGraph { what, .. } if what == "graph inputs"),
        "{e}"
    );
    assert!(e.to_string().contains("expected exactly one"));
    let e = err("bad_cycle.onnx");
    assert!(e.to_string().contains("cycle"), "{e}");
    let e = err("bad_initializer_size.onnx");
    assert!(
        matches!(&e, IoError::OnnxGraph { reason, .. } if reason.contains("claim 12") && reason.contains("holds 11")),
        "{e}"
    );
    let e = err("bad_truncated.onnx");
    assert!(matches!(e, IoError::OnnxDecode { .. }), "{e}");
    // Other files are not ONNX models.
    let e = load_onnx(fixture("digits.npy"), DenseBudget::default()).unwrap_err();
    assert!(matches!(e, IoError::OnnxDecode { .. }), "{e}");
}

#[test]
fn corrupted_files_never_panic() {
    // Every truncation of the small model and a sweep of byte flips: an error or a model,
    // never a panic, never an allocation beyond the budget.
    let bytes = std::fs::read(fixture("ops_f32.onnx")).unwrap();
    let budget = DenseBudget { bytes: 64 << 20 };
    for cut in 0..bytes.len() {
        let _ = septuple_io::onnx_from_bytes(&bytes[..cut], "cut", budget);
    }
    for pos in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[pos] ^= flip;
            let _ = septuple_io::onnx_from_bytes(&b, "flipped", budget);
        }
    }
}
