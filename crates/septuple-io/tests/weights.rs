//! Networks trained elsewhere: fixtures written by safetensors and numpy (see
//! tests/fixtures/make_fixtures.py), and round trips through our own writers.

use std::path::{Path, PathBuf};

use approx::assert_relative_eq;
use ndarray::Array2;
use septuple_core::{Builtin, Init, Layered, Network};
use septuple_io::{
    layered_from_npz, layered_from_safetensors, load_layered, load_layered_with, load_septuple,
    npz_bytes, safetensors_bytes, save_json, save_npz, save_safetensors, Activations, IoError,
};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("expected.json")).unwrap()).unwrap()
}

/// Every tensor of the network equals the values Python saved, bit for bit (F32, F16 and
/// BF16 values are exactly representable in f64, so conversion must be exact).
fn assert_matches(net: &Layered, set: &str) {
    let exp = expected();
    let exp = &exp[set];
    assert_eq!(net.layer_sizes(), &[5, 4, 3, 2], "{set}");
    for l in 0..3 {
        for (key, actual) in [
            (
                format!("{}.weight", 2 * l),
                net.weights()[l].iter().copied().collect::<Vec<_>>(),
            ),
            (format!("{}.bias", 2 * l), net.biases()[l].to_vec()),
        ] {
            let values: Vec<f64> = exp[&key]["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(actual, values, "{set} {key}");
        }
        assert_eq!(
            net.weights()[l].dim(),
            (
                exp[format!("{}.weight", 2 * l)]["shape"][0]
                    .as_u64()
                    .unwrap() as usize,
                exp[format!("{}.weight", 2 * l)]["shape"][1]
                    .as_u64()
                    .unwrap() as usize
            )
        );
    }
    assert_eq!(net.activations(), &[Builtin::Tanh; 3]);
}

#[test]
fn safetensors_fixtures_load_exactly() {
    for (file, set) in [
        ("mlp_f64.safetensors", "mlp_f64"),
        ("mlp_f32.safetensors", "mlp_f32"),
        ("mlp_f16.safetensors", "mlp_f16"),
        ("mlp_bf16.safetensors", "mlp_bf16"),
    ] {
        assert_matches(&load_layered(fixture(file)).unwrap(), set);
    }
}

#[test]
fn npz_fixtures_load_exactly() {
    for (file, set) in [
        ("mlp_f64.npz", "mlp_f64"),
        ("mlp_f64_compressed.npz", "mlp_f64"),
        ("mlp_mixed.npz", "mlp_f64"),
        ("mlp_f32.npz", "mlp_f32"),
        ("mlp_fortran_be_f4.npz", "mlp_f32"),
    ] {
        assert_matches(&load_layered(fixture(file)).unwrap(), set);
    }
}

#[test]
fn forward_pass_agrees_with_numpy() {
    let exp = expected();
    let to_matrix = |v: &Value| {
        let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).unwrap();
        let (r, c) = (rows.len(), rows[0].len());
        Array2::from_shape_vec((r, c), rows.concat()).unwrap()
    };
    let x = to_matrix(&exp["forward"]["input"]);
    let want = to_matrix(&exp["forward"]["output"]);
    let net = load_layered(fixture("mlp_f64.safetensors")).unwrap();
    let got = net.predict(x.view()).unwrap();
    // Three layers of at most 5-term dot products and tanh: numpy and Rust may round each
    // product, sum and tanh differently by an ulp or so; outputs are O(0.1) and the layers'
    // gains |W| sech^2 < 2, so the difference stays below ~1e-15 absolute. 1e-13 leaves room
    // for a different summation order but not for a transposed weight matrix.
    assert_relative_eq!(got, want, epsilon = 1e-13);
}

#[test]
fn inconsistent_networks_are_typed_errors() {
    match load_layered(fixture("bad_shape.safetensors")) {
        Err(IoError::TensorShape { key, got, .. }) => {
            assert_eq!(key, "2.weight");
            assert_eq!(got, vec![3, 5]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    match load_layered(fixture("missing_bias.safetensors")) {
        Err(IoError::MissingTensor { key }) => assert_eq!(key, "2.bias"),
        other => panic!("expected a missing bias, got {other:?}"),
    }
    match load_layered(fixture("index_gap.npz")) {
        Err(IoError::IndexGap { indices, stride }) => {
            assert_eq!(indices, vec![0, 2, 6]);
            assert_eq!(stride, 2);
        }
        other => panic!("expected an index gap, got {other:?}"),
    }
    match load_layered(fixture("non_finite.safetensors")) {
        Err(IoError::NonFinite { key, index, value }) => {
            assert_eq!((key.as_str(), index), ("0.bias", 1));
            assert!(value.is_nan());
        }
        other => panic!("expected a non-finite value, got {other:?}"),
    }
    assert!(matches!(
        load_layered(fixture("expected.json")),
        Err(IoError::Header { .. })
    ));
    assert!(matches!(
        load_layered(fixture("make_fixtures.py")),
        Err(IoError::UnknownFormat { .. })
    ));
    assert!(matches!(
        load_layered(fixture("absent.npz")),
        Err(IoError::File { action: "read", .. })
    ));
}

struct Temp(PathBuf);

impl Temp {
    fn new(name: &str) -> Self {
        Temp(std::env::temp_dir().join(format!("septuple-io-{}-{name}", std::process::id())))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn written_networks_read_back_exactly() {
    let net = Layered::random(&[7, 5, 4, 3], Builtin::Tanh, Init::TorchLinear, 3).unwrap();
    let st = layered_from_safetensors(&safetensors_bytes(&net), &Activations::default()).unwrap();
    assert_eq!(st, net);
    let npz = layered_from_npz(&npz_bytes(&net), &Activations::default()).unwrap();
    assert_eq!(npz, net);

    let relu = Layered::from_layers(
        net.weights().to_vec(),
        net.biases().to_vec(),
        vec![Builtin::Relu, Builtin::Tanh, Builtin::Identity],
    )
    .unwrap();
    let json = Temp::new("net.json");
    save_json(&relu, &json.0).unwrap();
    assert_eq!(load_layered(&json.0).unwrap(), relu);
    // A serialised septuple: kept exactly by load_septuple, layers inferred by load_layered.
    let sep = Temp::new("sep.json");
    save_json(&relu.to_septuple().unwrap(), &sep.0).unwrap();
    assert_eq!(load_septuple(&sep.0).unwrap(), relu.to_septuple().unwrap());
    assert_eq!(load_layered(&sep.0).unwrap(), relu);
    assert_eq!(
        load_layered_with(&sep.0, &Activations::All(Builtin::Logistic))
            .unwrap()
            .activations(),
        &[Builtin::Logistic; 3]
    );

    // Without an extension the format is told by content.
    let bare = Temp::new("weights");
    save_safetensors(&net, &bare.0).unwrap();
    assert_eq!(load_layered(&bare.0).unwrap(), net);
    save_npz(&net, &bare.0).unwrap();
    assert_eq!(load_layered(&bare.0).unwrap(), net);
    assert_eq!(load_septuple(&bare.0).unwrap(), net.to_septuple().unwrap());
    save_json(&net, &bare.0).unwrap();
    assert_eq!(load_layered(&bare.0).unwrap(), net);
}

#[test]
fn septuples_that_are_not_layered_are_refused_as_layered() {
    // A skip connection from the input straight to the output: a valid septuple, no layers.
    let net = Layered::random(&[2, 2, 1], Builtin::Tanh, Init::GlorotUniform, 1).unwrap();
    let (mut w, b, acts, inputs, outputs) = net.to_septuple().unwrap().into_parts();
    w[[4, 0]] = 0.5;
    let sep = septuple_core::Septuple::new(w, b, acts, inputs, outputs).unwrap();
    let file = Temp::new("skip.json");
    save_json(&sep, &file.0).unwrap();
    assert_eq!(load_septuple(&file.0).unwrap(), sep);
    assert!(matches!(load_layered(&file.0), Err(IoError::Core(_))));
}

mod round_trips {
    use super::*;
    use proptest::prelude::*;
    use septuple_io::{layered_from_json, septuple_from_json};

    fn builtin() -> impl Strategy<Value = Builtin> {
        prop_oneof![
            Just(Builtin::Tanh),
            Just(Builtin::Relu),
            Just(Builtin::Logistic),
            Just(Builtin::Identity),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every layered network survives our writers and readers bit for bit: safetensors and
        /// npz store f64 exactly, JSON prints floats that parse back to the same bits.
        #[test]
        fn any_network_round_trips(
            sizes in proptest::collection::vec(1usize..9, 2..6),
            seed in any::<u64>(),
            std in 0.0f64..10.0,
            act in builtin(),
        ) {
            let net = Layered::random(&sizes, act, Init::Normal { std }, seed).unwrap();
            let keep = Activations::All(act);
            prop_assert_eq!(&layered_from_safetensors(&safetensors_bytes(&net), &keep).unwrap(), &net);
            prop_assert_eq!(&layered_from_npz(&npz_bytes(&net), &keep).unwrap(), &net);
            let json = serde_json::to_vec(&net).unwrap();
            prop_assert_eq!(&layered_from_json(&json, &Activations::default()).unwrap(), &net);
            let sep = serde_json::to_vec(&net.to_septuple().unwrap()).unwrap();
            prop_assert_eq!(septuple_from_json(&sep).unwrap(), net.to_septuple().unwrap());
            prop_assert_eq!(&layered_from_json(&sep, &Activations::default()).unwrap(), &net);
        }
    }
}
