#![doc = include_str!("../README.md")]
// `deny`, not `forbid`: ndarray's `s!` macro expands to an `allow(unsafe_code)` that `forbid`
// rejects; no code of this crate is unsafe.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_cmp)]
// Exact float comparisons are intended in tests: loaded values must equal the saved ones.
#![cfg_attr(test, allow(clippy::float_cmp))]

mod error;
mod fs;
mod idx;
mod inflate;
mod inputs;
mod mnist;
mod network;
mod npy;
mod npz_zip;
mod onnx;
mod safetensors;

pub use error::IoError;
pub use fs::{remove_stale_temporaries, write_atomic, TEMP_PREFIX};
pub use idx::{parse_idx_images, parse_idx_labels, IdxImages};
pub use inputs::{load_inputs, SampleInputs};
pub use mnist::{
    one_hot, Mnist, Split, SplitSizes, CLASSES, EMBEDDED_IMAGES_GZ, EMBEDDED_LABELS_GZ,
    PAPER_TRAIN_SAMPLES,
};
pub use network::{
    activation_label, activation_name, infer_layered, layered_from_json, layered_from_npz,
    layered_from_safetensors, layered_from_tensors, load_layered, load_layered_with, load_model,
    load_network, load_septuple, load_septuple_with, network_from_bytes, npz_bytes, npz_bytes_with,
    parse_activation, parse_activations, parse_layer_order, parse_npz, read_npz, safetensors_bytes,
    safetensors_bytes_with, save_json, save_npz, save_npz_with, save_safetensors,
    save_safetensors_with, septuple_from_json, Activations, KeyScheme, LayerOrder, LoadOptions,
    LoadWarning, Loaded, Model, SaveOptions, WeightFormat, META_ACTIVATIONS, META_LAYERS,
    NPZ_METADATA_ENTRY,
};
pub use npy::{parse_npy, write_npy, FloatType, SaveDtype};
pub use onnx::{load_onnx, onnx_from_bytes, OnnxModel, OnnxOutput, SUPPORTED_OPS};
pub use safetensors::{parse_safetensors, read_safetensors, write_safetensors, TensorFile};
