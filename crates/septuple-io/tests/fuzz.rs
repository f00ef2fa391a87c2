//! Robustness: arbitrary bytes, truncations and corruptions of valid files never panic and
//! are answered with typed errors.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use septuple_io::{
    layered_from_json, layered_from_npz, layered_from_safetensors, parse_idx_images,
    parse_idx_labels, parse_npy, parse_npz, parse_safetensors, septuple_from_json, write_npy,
    Activations, IoError, Mnist, EMBEDDED_LABELS_GZ,
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// Run every parser on the bytes; each must return (Ok or a typed error) without panicking.
fn parse_all(bytes: &[u8]) {
    let d = Activations::default();
    let _ = parse_idx_images(bytes);
    let _ = parse_idx_labels(bytes);
    let _ = parse_npy(bytes);
    let _ = parse_npz(bytes);
    let _ = parse_safetensors(bytes);
    let _ = layered_from_npz(bytes, &d);
    let _ = layered_from_safetensors(bytes, &d);
    let _ = layered_from_json(bytes, &d);
    let _ = septuple_from_json(bytes);
    let _ = septuple_io::read_npz(bytes);
    let _ = septuple_io::read_safetensors(bytes);
    let _ = septuple_io::SampleInputs::from_npy(bytes);
    let _ = septuple_io::SampleInputs::from_npz(bytes, None);
    let _ = septuple_io::SampleInputs::from_idx_images(bytes);
    for format in [
        septuple_io::WeightFormat::Safetensors,
        septuple_io::WeightFormat::Npz,
        septuple_io::WeightFormat::Json,
    ] {
        let _ = septuple_io::network_from_bytes(bytes, format, "fuzz", &Default::default());
    }
}

const WEIGHT_FIXTURES: [&str; 11] = [
    "mlp_class_f32.safetensors",
    "mlp_class_f32.npz",
    "mlp_f64.safetensors",
    "mlp_f32.safetensors",
    "mlp_f16.safetensors",
    "mlp_bf16.safetensors",
    "mlp_f64.npz",
    "mlp_f64_compressed.npz",
    "mlp_mixed.npz",
    "mlp_f32.npz",
    "mlp_fortran_be_f4.npz",
];

fn load(name: &str, bytes: &[u8]) -> Result<septuple_core::Layered, IoError> {
    if name.ends_with(".npz") {
        layered_from_npz(bytes, &Activations::default())
    } else {
        layered_from_safetensors(bytes, &Activations::default())
    }
}

/// A small valid IDX image file (20 images of 28 x 28 from the embedded subset), raw and gzip.
fn small_idx() -> (Vec<u8>, Vec<u8>) {
    static SMALL: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SMALL.get_or_init(make_small_idx).clone()
}

fn make_small_idx() -> (Vec<u8>, Vec<u8>) {
    let m = Mnist::embedded().unwrap();
    let mut raw = vec![0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 28, 0, 0, 0, 28];
    raw.extend(
        m.images()
            .rows()
            .into_iter()
            .take(20)
            .flat_map(|r| r.to_vec())
            .map(|p| (p * 255.0).round() as u8),
    );
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&raw).unwrap();
    (raw, e.finish().unwrap())
}

#[test]
fn every_truncation_of_a_weight_file_is_an_error() {
    // Exhaustive: the fixtures are under 2 KB, so every proper prefix is tried.
    for name in WEIGHT_FIXTURES {
        let bytes = fixture(name);
        assert!(load(name, &bytes).is_ok(), "{name}");
        for n in 0..bytes.len() {
            assert!(
                load(name, &bytes[..n]).is_err(),
                "{name} cut to {n} bytes loaded"
            );
            parse_all(&bytes[..n]);
        }
    }
}

#[test]
fn every_truncation_of_an_idx_file_is_an_error() {
    let (raw, gz) = small_idx();
    assert_eq!(parse_idx_images(&raw).unwrap().pixels.nrows(), 20);
    assert_eq!(
        parse_idx_images(&gz).unwrap(),
        parse_idx_images(&raw).unwrap()
    );
    for n in 0..raw.len() {
        assert!(parse_idx_images(&raw[..n]).is_err(), "raw cut to {n}");
    }
    for n in 0..gz.len() {
        assert!(parse_idx_images(&gz[..n]).is_err(), "gzip cut to {n}");
    }
    let labels = EMBEDDED_LABELS_GZ;
    for n in (0..labels.len()).step_by(97) {
        assert!(parse_idx_labels(&labels[..n]).is_err(), "labels cut to {n}");
    }
}

#[test]
fn weight_files_from_elsewhere_with_one_more_byte_are_errors() {
    for name in WEIGHT_FIXTURES {
        let mut bytes = fixture(name);
        bytes.push(0);
        let r = load(name, &bytes);
        // A ZIP archive may carry a trailing comment only if its end record says so; a byte
        // after the end record makes it unreadable. safetensors buffers must be tiled exactly.
        assert!(r.is_err(), "{name} with a trailing byte loaded");
    }
}

#[test]
fn huge_claims_do_not_allocate() {
    // safetensors: a header length of 2^63.
    let mut st = (1u64 << 63).to_le_bytes().to_vec();
    st.extend_from_slice(b"{}");
    assert!(matches!(
        parse_safetensors(&st),
        Err(IoError::Truncated { .. })
    ));
    // npy: a shape of 2^40 x 2^40 f8.
    let mut npy = write_npy(ndarray::arr1(&[1.0]).into_dyn().view());
    let text = String::from_utf8(npy[10..npy.len() - 8].to_vec()).unwrap();
    let text = text
        .replace("(1, )", "(1099511627776, 1099511627776)")
        .replace("(1,)", "(1099511627776, 1099511627776)");
    assert!(text.contains("1099511627776"));
    npy.truncate(10);
    npy[8..10].copy_from_slice(&(text.len() as u16).to_le_bytes());
    npy.extend_from_slice(text.as_bytes());
    assert!(matches!(parse_npy(&npy), Err(IoError::TooLarge { .. })));
    // npz: a deflated entry whose directory claims 4 GiB.
    let mut npz = fixture("mlp_f64_compressed.npz");
    let cd = npz
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central directory");
    npz[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse_npz(&npz), Err(IoError::TooLarge { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Crafted safetensors headers whose offsets and shapes sit near 2^64: a typed error,
    /// with no arithmetic overflow in the checks or in the message (tests run with overflow
    /// checks in every profile).
    #[test]
    fn offsets_near_two_to_the_64_are_typed_errors(
        tensors in proptest::collection::vec(
            (
                prop_oneof![Just("F64"), Just("F32"), Just("F16"), Just("BF16"), Just("U8")],
                proptest::collection::vec(prop_oneof![any::<u64>(), (u64::MAX - 16)..=u64::MAX, 0u64..4], 0..4),
                prop_oneof![any::<u64>(), (u64::MAX - 64)..=u64::MAX, 0u64..32],
                prop_oneof![any::<u64>(), (u64::MAX - 64)..=u64::MAX, 0u64..32],
            ),
            1..9,
        ),
        buffer in 0usize..32,
    ) {
        let entries: Vec<String> = tensors
            .iter()
            .enumerate()
            .map(|(i, (dtype, shape, begin, end))| {
                format!(r#""t{i}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{begin},{end}]}}"#)
            })
            .collect();
        let header = format!("{{{}}}", entries.join(","));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend(std::iter::repeat_n(0u8, buffer));
        let huge = tensors.iter().any(|(_, _, b, e)| *b > 32 || *e > 32);
        match parse_safetensors(&bytes) {
            Ok(_) => prop_assert!(!huge),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_behind_valid_magic_never_panic(
        kind in 0usize..6,
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes: Vec<u8> = match kind {
            0 => vec![0, 0, 8, 3],
            1 => vec![0, 0, 8, 1],
            2 => b"\x93NUMPY\x01\x00".to_vec(),
            3 => b"PK\x03\x04".to_vec(),
            4 => vec![0x1f, 0x8b, 8, 0],
            _ => (tail.len() as u64).to_le_bytes().to_vec(),
        };
        bytes.extend_from_slice(&tail);
        parse_all(&bytes);
    }

    #[test]
    fn corrupted_weight_files_never_panic(
        which in 0usize..WEIGHT_FIXTURES.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let name = WEIGHT_FIXTURES[which];
        let mut bytes = fixture(name);
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        // Either the corruption hit only values (a network loads, still with finite weights)
        // or a typed error comes back.
        match load(name, &bytes) {
            Ok(net) => prop_assert!(net.weights().iter().all(|w| w.iter().all(|v| v.is_finite()))),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        parse_all(&bytes);
    }

    #[test]
    fn corrupted_idx_files_never_panic(
        gzip in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let (raw, gz) = small_idx();
        let mut bytes = if gzip { gz } else { raw };
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        match parse_idx_images(&bytes) {
            Ok(im) => prop_assert_eq!(im.pixels.ncols(), im.rows * im.cols),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        let _ = parse_idx_labels(&bytes);
    }
}
