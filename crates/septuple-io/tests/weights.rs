//! Networks trained elsewhere: fixtures written by safetensors and numpy (see
//! tests/fixtures/make_fixtures.py), and round trips through our own writers.

use std::path::{Path, PathBuf};

use approx::assert_relative_eq;
use ndarray::Array2;
use septuple_core::{Builtin, CoreError, DenseBudget, Init, Layered, Network};
use septuple_io::{
    layered_from_npz, layered_from_safetensors, load_layered, load_layered_with, load_network,
    load_septuple, load_septuple_with, npz_bytes, safetensors_bytes, save_json, save_npz,
    save_safetensors, Activations, IoError, LoadOptions, LoadWarning,
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
    // index_gap.npz holds mlp_f64's values (its 4.* keys renamed 6.*).
    let set = if set == "mlp_f64_gap" { "mlp_f64" } else { set };
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
        Err(IoError::ShapeChain {
            key,
            shape,
            previous_key,
            previous_shape,
            order,
        }) => {
            assert_eq!((key.as_str(), shape), ("2.weight", vec![3, 5]));
            assert_eq!(
                (previous_key.as_str(), previous_shape),
                ("0.weight", vec![4, 5])
            );
            assert_eq!(order, ["0", "2", "4"]);
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    match load_layered(fixture("missing_bias.safetensors")) {
        Err(IoError::UnpairedTensor {
            key,
            shape,
            missing,
        }) => {
            assert_eq!((key.as_str(), missing.as_str()), ("2.weight", "2.bias"));
            assert_eq!(shape, vec![3, 4]);
        }
        other => panic!("expected a missing bias, got {other:?}"),
    }
    // Indices 0, 2, 6 (a Sequential with more modules between its last two Linear layers):
    // any key scheme is read, in natural order, when the shapes chain.
    assert_matches(
        &load_layered(fixture("index_gap.npz")).unwrap(),
        "mlp_f64_gap",
    );
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

/// An npz of one deflated 1 x 100,000 float16 weight (all zeros) and its bias: under 1 KB on
/// disk, a layered network of 100,001 neurons, whose dense form would need an N x N matrix
/// of 80 GB.
fn tiny_npz_of_a_huge_network() -> Vec<u8> {
    use std::io::Write;
    let npy = |descr: &str, shape: &str, data: &[u8]| {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(header.len() as u16).to_le_bytes());
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    };
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("0.weight.npy", deflated).unwrap();
    w.write_all(&npy("<f2", "(1, 100000)", &vec![0u8; 200_000]))
        .unwrap();
    w.start_file("0.bias.npy", deflated).unwrap();
    w.write_all(&npy("<f2", "(1,)", &[0, 0])).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn a_tiny_file_cannot_demand_a_huge_dense_matrix() {
    let bytes = tiny_npz_of_a_huge_network();
    assert!(bytes.len() < 1024, "{} bytes", bytes.len());
    let file = Temp::new("huge.npz");
    std::fs::write(&file.0, &bytes).unwrap();
    // The layered form is small (100,000 weights) and loads.
    let net = load_layered(&file.0).unwrap();
    assert_eq!(net.layer_sizes(), &[100_000, 1]);
    let refused = |r: Result<septuple_core::Septuple, IoError>| match r {
        Err(IoError::Core(CoreError::TooLarge {
            rows,
            cols,
            bytes,
            budget,
            ..
        })) => {
            assert_eq!((rows, cols), (100_001, 100_001));
            assert_eq!(bytes, 100_001u64 * 100_001 * 8);
            assert_eq!(budget, 4 << 30);
        }
        other => panic!("expected the dense budget to refuse, got {other:?}"),
    };
    refused(load_septuple(&file.0));
    // The JSON form of the same network: refused the same way.
    let json = Temp::new("huge.json");
    save_json(&net, &json.0).unwrap();
    refused(load_septuple(&json.0));
    // A budget large enough for a small network lets it through.
    let small = Temp::new("small.npz");
    save_npz(
        &Layered::random(&[3, 2], Builtin::Tanh, Init::GlorotUniform, 1).unwrap(),
        &small.0,
    )
    .unwrap();
    let opts = LoadOptions::default().with_dense_budget(DenseBudget { bytes: 5 * 5 * 8 });
    assert_eq!(
        load_septuple_with(&small.0, &opts)
            .unwrap()
            .network
            .n_neurons(),
        5
    );
    let opts = LoadOptions::default().with_dense_budget(DenseBudget {
        bytes: 5 * 5 * 8 - 1,
    });
    assert!(matches!(
        load_septuple_with(&small.0, &opts),
        Err(IoError::Core(CoreError::TooLarge {
            rows: 5,
            bytes: 200,
            budget: 199,
            ..
        }))
    ));
}

#[test]
fn files_without_activations_warn() {
    let loaded = load_network(fixture("mlp_f32.safetensors"), &LoadOptions::default()).unwrap();
    assert_eq!(loaded.network.activations(), &[Builtin::Tanh; 3]);
    match loaded.warnings.as_slice() {
        [w @ LoadWarning::AssumedTanh { layers: 3, .. }] => {
            let text = w.to_string();
            assert!(
                text.contains("mlp_f32.safetensors carries no activations"),
                "{text}"
            );
            assert!(
                text.ends_with(
                    "assuming tanh on all 3 non-input layers (pass --activations to choose)"
                ),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    let given = LoadOptions::default()
        .with_activations(septuple_io::parse_activations("relu,relu,identity").unwrap());
    let loaded = load_network(fixture("mlp_f32.npz"), &given).unwrap();
    assert!(loaded.warnings.is_empty());
    assert_eq!(
        loaded.network.activations(),
        &[Builtin::Relu, Builtin::Relu, Builtin::Identity]
    );
}

mod saved_with_options {
    use super::*;
    use proptest::prelude::*;
    use septuple_io::{
        network_from_bytes, npz_bytes_with, safetensors_bytes_with, KeyScheme, SaveDtype,
        SaveOptions, WeightFormat,
    };

    fn builtin() -> impl Strategy<Value = Builtin> {
        prop_oneof![
            Just(Builtin::Tanh),
            Just(Builtin::Relu),
            Just(Builtin::Logistic),
            Just(Builtin::Identity),
        ]
    }

    fn scheme(layers: usize) -> impl Strategy<Value = KeyScheme> {
        prop_oneof![
            Just(KeyScheme::Sequential),
            Just(KeyScheme::Numbered {
                prefix: "fc".into()
            }),
            Just(KeyScheme::Numbered {
                prefix: "encoder.layer".into()
            }),
            // Names without numbers, in an order no sort would find: the metadata keeps it.
            Just(KeyScheme::Names(
                (0..layers)
                    .map(|l| ["q", "b", "z", "a", "m", "c"][l].to_string())
                    .collect()
            )),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// save -> load gives the network back with its activations and no warning: f64
        /// bit for bit, f32 as each value rounded to the nearest f32 (exactly that value).
        #[test]
        fn any_network_round_trips_with_its_activations(
            (sizes, keys) in proptest::collection::vec(1usize..7, 2..7)
                .prop_flat_map(|s| { let l = s.len() - 1; (Just(s), scheme(l)) }),
            acts in proptest::collection::vec(builtin(), 6),
            seed in any::<u64>(),
            std in 0.0f64..10.0,
            single in any::<bool>(),
        ) {
            let base = Layered::random(&sizes, Builtin::Tanh, Init::Normal { std }, seed).unwrap();
            let acts = acts[..sizes.len() - 1].to_vec();
            let net = Layered::from_layers(base.weights().to_vec(), base.biases().to_vec(), acts).unwrap();
            let dtype = if single { SaveDtype::F32 } else { SaveDtype::F64 };
            let opts = SaveOptions { dtype, keys };
            let expected = if single {
                Layered::from_layers(
                    net.weights().iter().map(|w| w.mapv(|v| f64::from(v as f32))).collect(),
                    net.biases().iter().map(|b| b.mapv(|v| f64::from(v as f32))).collect(),
                    net.activations().to_vec(),
                ).unwrap()
            } else {
                net.clone()
            };
            for (format, bytes) in [
                (WeightFormat::Safetensors, safetensors_bytes_with(&net, &opts).unwrap()),
                (WeightFormat::Npz, npz_bytes_with(&net, &opts).unwrap()),
            ] {
                let loaded = network_from_bytes(&bytes, format, "saved", &LoadOptions::default()).unwrap();
                prop_assert!(loaded.warnings.is_empty());
                prop_assert_eq!(&loaded.network, &expected);
            }
        }
    }
}

#[test]
fn class_based_state_dicts_load_in_layer_order() {
    // fc1, fc2, fc3 of a module class, float32, written by safetensors and numpy.
    let exp = expected();
    let exp = &exp["mlp_class_f32"];
    let relu = LoadOptions::default()
        .with_activations(septuple_io::parse_activations("relu,relu,identity").unwrap());
    for file in ["mlp_class_f32.safetensors", "mlp_class_f32.npz"] {
        let loaded = load_network(fixture(file), &relu).unwrap();
        let net = &loaded.network;
        assert!(loaded.warnings.is_empty());
        assert_eq!(net.layer_sizes(), &[5, 4, 3, 2], "{file}");
        for l in 0..3 {
            let values = |key: String| -> Vec<f64> {
                exp[&key]["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            };
            let w: Vec<f64> = net.weights()[l].iter().copied().collect();
            assert_eq!(w, values(format!("fc{}.weight", l + 1)), "{file}");
            assert_eq!(
                net.biases()[l].to_vec(),
                values(format!("fc{}.bias", l + 1)),
                "{file}"
            );
        }
        assert_eq!(
            net.activations(),
            &[Builtin::Relu, Builtin::Relu, Builtin::Identity]
        );
    }
}
