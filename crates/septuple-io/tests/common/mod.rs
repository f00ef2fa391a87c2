//! Helpers of the ONNX tests: fixture paths, 2-D `.npy` references and their comparison.

use std::path::PathBuf;

use ndarray::{Array2, Ix2};
use septuple_io::parse_npy;

/// A file of tests/fixtures/onnx.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

/// A 2-D `.npy` fixture as f64.
pub fn npy2(name: &str) -> Array2<f64> {
    let bytes = std::fs::read(fixture(name)).unwrap();
    parse_npy(&bytes)
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap()
}

/// The largest |a - b| / max(1, |b|).
pub fn worst(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0, f64::max)
}
