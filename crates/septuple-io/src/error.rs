//! The error vocabulary of `septuple-io`.

use std::path::PathBuf;

use septuple_core::CoreError;
use thiserror::Error;

/// Everything that can go wrong when a data set or a network is read or written.
///
/// Every variant names the file part that was wrong, what was found and what was expected.
/// Parsers return these for any input, however malformed; they never panic and never allocate
/// more than the input can justify.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused a read or a write.
    #[error("cannot {action} {path}: {source}")]
    File {
        /// What was attempted: "read", "write", "list", "rename", "remove", "sync", ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input ends before a part its own header announces.
    #[error("{what} is truncated: {needed} bytes needed, only {available} present")]
    Truncated {
        /// The part of the file that is cut short.
        what: String,
        /// Bytes the header announces (counted from the same origin as `available`).
        needed: u64,
        /// Bytes actually present.
        available: u64,
    },
    /// The input continues after the last part its header announces.
    #[error(
        "{what} has {extra} bytes of trailing data after the {expected} announced by its header"
    )]
    TrailingData {
        /// The part of the file that is too long.
        what: String,
        /// The announced length.
        expected: u64,
        /// Bytes beyond it.
        extra: u64,
    },
    /// A magic number or signature does not match the format.
    #[error("{what}: found magic {found}, expected {expected}")]
    BadMagic {
        /// The file or part whose magic is wrong.
        what: String,
        /// The bytes found, in hexadecimal.
        found: String,
        /// What the format requires.
        expected: String,
    },
    /// A header is syntactically or semantically invalid.
    #[error("{what}: invalid header: {reason}")]
    Header {
        /// The file or part whose header is wrong.
        what: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A header claims more data than any input of this size could hold.
    #[error("{what} claims {claimed} bytes, more than the {limit} bytes its input can hold")]
    TooLarge {
        /// The part whose claim is too large.
        what: String,
        /// The claimed size in bytes (saturated at u64::MAX when it overflows).
        claimed: u64,
        /// The largest size the input can justify.
        limit: u64,
    },
    /// Compressed data is corrupt.
    #[error("{what}: corrupt compressed data: {reason}")]
    Decompress {
        /// The stream that failed.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// A feature of a format that this crate does not read.
    #[error("{what}: {feature} is not supported")]
    Unsupported {
        /// The file or part.
        what: String,
        /// The feature, with what would be supported instead.
        feature: String,
    },
    /// The numbers of images and labels differ.
    #[error("{images} images but {labels} labels; expected one label per image")]
    CountMismatch {
        /// Images in the image file.
        images: usize,
        /// Labels in the label file.
        labels: usize,
    },
    /// A label is not a digit 0-9 (or not below the number of classes asked for).
    #[error("label {label} of sample {index} is out of range: expected 0..{classes}")]
    LabelOutOfRange {
        /// The sample index.
        index: usize,
        /// The label found.
        label: u8,
        /// The number of classes.
        classes: usize,
    },
    /// A directory does not hold the IDX files it should.
    #[error("{dir}: {reason}")]
    MissingData {
        /// The directory searched.
        dir: PathBuf,
        /// What was looked for and what was found.
        reason: String,
    },
    /// A split asks for more samples than a data set has.
    #[error("cannot take {requested} samples ({what}): the data set has {available}")]
    NotEnoughSamples {
        /// Which part of the split.
        what: &'static str,
        /// Samples requested.
        requested: usize,
        /// Samples available.
        available: usize,
    },
    /// A file holds no tensor at all.
    #[error("{what} holds no tensors; a layered network needs `<layer>.weight` and `<layer>.bias` for each Linear layer")]
    NoTensors {
        /// The file or data.
        what: String,
    },
    /// A weight without its bias, or a bias without its weight.
    #[error("tensor {key:?} of shape {shape:?} has no matching {missing:?}; every Linear layer needs both `<layer>.weight` and `<layer>.bias`")]
    UnpairedTensor {
        /// The tensor present.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The key of the tensor that is absent.
        missing: String,
    },
    /// A tensor key does not belong to a stack of Linear layers.
    #[error("unexpected tensor {key:?} of shape {shape:?}: {reason}")]
    UnexpectedTensor {
        /// The key found.
        key: String,
        /// Its shape (empty when not known).
        shape: Vec<usize>,
        /// Why it does not fit.
        reason: String,
    },
    /// The layers' shapes do not chain: the inputs of a layer are not the outputs of the one
    /// before.
    #[error("layers do not chain: {key:?} has shape {shape:?} ({} inputs), but the layer before it, {previous_key:?} of shape {previous_shape:?}, has {} outputs; a weight is [out, in] and the in of each layer must be the out of the previous one (layer order: {order:?})", shape.get(1).copied().unwrap_or(0), previous_shape.first().copied().unwrap_or(0))]
    ShapeChain {
        /// The weight whose inputs do not fit.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
        /// The weight of the layer before.
        previous_key: String,
        /// Its shape.
        previous_shape: Vec<usize>,
        /// The layer names in the order used.
        order: Vec<String>,
    },
    /// A layer order given by the user (or stored in the file) does not name the file's layers.
    #[error("layer order {given:?} does not match the layers in the file {found:?}: {reason}")]
    LayerOrder {
        /// The order given.
        given: Vec<String>,
        /// The layers the file holds (in the file's order).
        found: Vec<String>,
        /// What is wrong.
        reason: String,
    },
    /// An activation name that is not one of the built-in activations.
    #[error("unknown activation {name:?}; expected tanh, relu, sigmoid (or logistic), identity (or linear) or leaky_relu (or leaky_relu:ALPHA), one for all layers or one per non-input layer separated by commas")]
    UnknownActivation {
        /// The name given.
        name: String,
    },
    /// An archive holds several arrays and none was named.
    #[error("{what} holds several arrays {names:?}; name the one to read")]
    AmbiguousArray {
        /// The archive.
        what: String,
        /// The arrays it holds.
        names: Vec<String>,
    },
    /// A named array is not in the archive.
    #[error("{what} has no array {name:?}; it holds {names:?}")]
    NoSuchArray {
        /// The archive.
        what: String,
        /// The name asked for.
        name: String,
        /// The arrays it holds.
        names: Vec<String>,
    },
    /// A sample array is unusable as network inputs.
    #[error("{what}: {reason}")]
    Samples {
        /// The file or array.
        what: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// Samples whose size does not fit the network they are meant for.
    #[error("the network takes {network_inputs} inputs but the samples of {what} hold {sample_values} values each; pass samples that fit")]
    InputCount {
        /// The samples.
        what: String,
        /// The network's input neurons.
        network_inputs: usize,
        /// Values per sample.
        sample_values: usize,
    },
    /// A tensor's shape does not fit the network.
    #[error("tensor {key:?} has shape {got:?}, expected {expected}")]
    TensorShape {
        /// The tensor's key.
        key: String,
        /// Its shape.
        got: Vec<usize>,
        /// What would fit, in words.
        expected: String,
    },
    /// A tensor holds NaN or an infinity.
    #[error("tensor {key:?} holds the non-finite value {value} at flat index {index}; every weight must be finite")]
    NonFinite {
        /// The tensor's key.
        key: String,
        /// The flat (C order) index of the value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The file's format cannot be told from its extension or its first bytes.
    #[error("{path}: unknown network format; expected .safetensors, .npz, .json or .onnx (by extension or by content)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// JSON text is malformed or does not describe a network.
    #[error("{what}: {source}")]
    Json {
        /// What was being read.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The network itself is invalid (wrapped from septuple-core).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// An ONNX file is not a protobuf `ModelProto`.
    #[error("{what}: not a valid ONNX model ({reason}); expected a protobuf ModelProto as torch.onnx.export or onnx.save writes")]
    OnnxDecode {
        /// The file.
        what: String,
        /// The protobuf decoder's message.
        reason: String,
    },
    /// An ONNX graph uses a node this crate does not import.
    #[error("ONNX node {node:?} (#{index}) has op {op:?}, which is not supported; supported ops: {supported}")]
    OnnxUnsupportedOp {
        /// The node's name (empty if it has none).
        node: String,
        /// Its index in the graph's node list.
        index: usize,
        /// Its op type, with its domain if it is not the default one.
        op: String,
        /// The ops that are supported.
        supported: &'static str,
    },
    /// An ONNX graph, node or tensor is not what a feedforward network needs.
    #[error("ONNX {what}: {reason}")]
    OnnxGraph {
        /// The part of the model (a node with its name and op, a tensor, the graph inputs).
        what: String,
        /// What was wrong and what was expected.
        reason: String,
    },
}

impl IoError {
    pub(crate) fn truncated(what: impl Into<String>, needed: u64, available: u64) -> Self {
        IoError::Truncated {
            what: what.into(),
            needed,
            available,
        }
    }

    pub(crate) fn header(what: impl Into<String>, reason: impl Into<String>) -> Self {
        IoError::Header {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>, feature: impl Into<String>) -> Self {
        IoError::Unsupported {
            what: what.into(),
            feature: feature.into(),
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IoError::File {
            action: "read",
            path: path.into(),
            source,
        }
    }
}

/// Hexadecimal rendering of a few bytes, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::from("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
