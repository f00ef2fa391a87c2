//! The structural dynamical count on the LeNet-5 of the ONNX fixtures (N = 8878), where the
//! Gauss rules of the indicator count all 8,878 eigenvalues of G as dynamical: it gives the
//! 6,110 of the exact dense spectrum, whose run (`septuple analyze ... --method dense`, 11 min)
//! is logged in docs/logs/lenet_dense_faer.log.

use std::path::PathBuf;

use septuple::core::{DenseBudget, Network};
use septuple::io::{load_inputs, load_onnx};
use septuple::spectral::{structural_dynamical_count, unit_subspace, DYNAMICAL_TOLERANCE};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("crates/septuple-io/tests/fixtures/onnx")
        .join(name)
}

#[test]
fn the_lenet_count_is_the_dense_one() {
    let model = load_onnx(fixture("lenet_f32.onnx"), DenseBudget::default()).unwrap();
    let net = &model.network;
    let inputs = load_inputs(fixture("digits.npy"), None).unwrap();
    let mean = net.mean_state(inputs.matrix()).unwrap();
    let fp = net.derivatives_at(mean.view()).unwrap();
    let count = structural_dynamical_count(net, fp.view(), DYNAMICAL_TOLERANCE).unwrap();
    assert_eq!(net.n_neurons(), 8878);
    assert_eq!(count.n_dynamical, 6110, "{count:?}");
    // None of the 2,768 unit eigenvalues lies in the input subspace the probes deflate: the
    // first convolution reads every pixel.
    let deflated = unit_subspace(net, fp.view(), DenseBudget::default()).unwrap();
    assert_eq!(deflated.ncols(), 0);
}
