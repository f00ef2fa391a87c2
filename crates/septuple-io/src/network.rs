//! Layered networks from files: PyTorch `state_dict`s saved as `.safetensors` or `.npz`, with
//! any key scheme, and the septuple's own JSON.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Ix1, Ix2};
use septuple_core::{
    Activation, Builtin, CoreError, DenseBudget, Layered, Network, Septuple, Slope,
};
use serde::Serialize;

use crate::error::IoError;
use crate::fs::write_atomic;
use crate::npy::{read_npy, write_npy_as, FloatType, SaveDtype};
use crate::npz_zip::{read_entries, write_stored};
use crate::onnx::{looks_like_onnx, onnx_from_bytes, OnnxModel};
use crate::safetensors::{read_safetensors, write_safetensors_as, TensorFile};

/// The metadata key holding a network's activations, comma-separated, one per non-input
/// layer (`"relu,relu,identity"`): in a safetensors file's `__metadata__`, and in the
/// [`NPZ_METADATA_ENTRY`] of an npz archive.
pub const META_ACTIVATIONS: &str = "septuple.activations";

/// The metadata key holding a network's layer names in order, comma-separated (`"fc1,fc2"`).
pub const META_LAYERS: &str = "septuple.layers";

/// The npz archive entry holding the same metadata as a safetensors `__metadata__`: a JSON
/// object of strings. `numpy.load` returns it as bytes.
pub const NPZ_METADATA_ENTRY: &str = "__septuple__.json";

/// The activation functions of a loaded network.
///
/// Weight files written by PyTorch hold no activations: a `Linear, ReLU, Linear` saves only
/// the `Linear` parameters. Files this crate writes carry them in their metadata, and JSON
/// files carry their own.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Activations {
    /// The file's own activations (JSON, or a weight file's metadata); tanh on every layer
    /// for a weight file without them, as in the paper's networks (Sec. 10), with a
    /// [`LoadWarning::AssumedTanh`] in the load result.
    #[default]
    FromFileOrTanh,
    /// The same activation on every non-input layer, whatever the file says.
    All(Builtin),
    /// One activation per non-input layer, in order, whatever the file says.
    PerLayer(Vec<Builtin>),
}

/// The activation a name stands for: `tanh`, `relu`, `sigmoid` or `logistic`, `identity` or
/// `linear`, `leaky_relu` (slope 0.01, ONNX's default) or `leaky_relu:ALPHA` (any case,
/// surrounding spaces ignored).
pub fn parse_activation(name: &str) -> Result<Builtin, IoError> {
    let unknown = || IoError::UnknownActivation {
        name: name.to_string(),
    };
    let lower = name.trim().to_ascii_lowercase();
    if let Some(alpha) = lower.strip_prefix("leaky_relu:") {
        let alpha: f64 = alpha.trim().parse().map_err(|_| unknown())?;
        return Slope::new(alpha)
            .map(Builtin::LeakyRelu)
            .map_err(|_| unknown());
    }
    match lower.as_str() {
        "tanh" => Ok(Builtin::Tanh),
        "relu" => Ok(Builtin::Relu),
        "sigmoid" | "logistic" => Ok(Builtin::Logistic),
        "identity" | "linear" => Ok(Builtin::Identity),
        "leaky_relu" => Ok(Builtin::LeakyRelu(Slope::DEFAULT)),
        _ => Err(unknown()),
    }
}

/// The name of an activation's function (`leaky_relu` for every slope); [`activation_label`]
/// is the text [`parse_activation`] reads back.
pub fn activation_name(a: Builtin) -> &'static str {
    match a {
        Builtin::Tanh => "tanh",
        Builtin::Relu => "relu",
        Builtin::Logistic => "sigmoid",
        Builtin::Identity => "identity",
        Builtin::LeakyRelu(_) => "leaky_relu",
    }
}

/// The text [`parse_activation`] reads back for an activation: its [`activation_name`], with
/// the slope for a LeakyRelu (`leaky_relu:0.01`, the shortest text that reads back exactly).
pub fn activation_label(a: Builtin) -> String {
    match a {
        Builtin::LeakyRelu(s) => format!("leaky_relu:{:?}", s.get()),
        _ => activation_name(a).to_string(),
    }
}

/// Activations from text, as a command line takes them: one name for every non-input layer
/// (`"tanh"`) or one per non-input layer separated by commas (`"relu,relu,identity"`); names
/// as [`parse_activation`] reads them.
pub fn parse_activations(text: &str) -> Result<Activations, IoError> {
    let names: Vec<Builtin> = text
        .split(',')
        .map(parse_activation)
        .collect::<Result<_, _>>()?;
    Ok(match names.as_slice() {
        [one] => Activations::All(*one),
        _ => Activations::PerLayer(names),
    })
}

fn format_activations(acts: &[Builtin]) -> String {
    acts.iter()
        .map(|&a| activation_label(a))
        .collect::<Vec<_>>()
        .join(",")
}

/// Where a network's activations came from.
enum Chosen {
    /// The file's, or the user's.
    Given(Vec<Builtin>),
    /// None anywhere: tanh assumed.
    AssumedTanh(Vec<Builtin>),
}

impl Activations {
    fn choose(&self, file: Option<&[Builtin]>, n: usize) -> Result<Chosen, IoError> {
        let chosen = match (self, file) {
            (Activations::FromFileOrTanh, Some(a)) => Chosen::Given(a.to_vec()),
            (Activations::FromFileOrTanh, None) => Chosen::AssumedTanh(vec![Builtin::Tanh; n]),
            (Activations::All(a), _) => Chosen::Given(vec![*a; n]),
            (Activations::PerLayer(v), _) => Chosen::Given(v.clone()),
        };
        let len = match &chosen {
            Chosen::Given(v) | Chosen::AssumedTanh(v) => v.len(),
        };
        if len != n {
            return Err(CoreError::Layers {
                reason: format!(
                    "{len} activations given for {n} non-input layers; expected one per layer"
                ),
            }
            .into());
        }
        Ok(chosen)
    }
}

/// How the layers of a weight file are ordered.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LayerOrder {
    /// The order the file states in its metadata ([`META_LAYERS`]); else by the numbers in
    /// the layer names when every name has one and no two have the same ones (natural order:
    /// `fc2` before `fc10`, `0` before `2`, `encoder.layer1` before `encoder.layer2`); else
    /// the file's own order (safetensors: the order of the header's keys; npz: the archive's).
    #[default]
    Auto,
    /// These layer names (the keys without `.weight` / `.bias`), input side first.
    Names(Vec<String>),
}

/// A layer order from text, as a command line takes it: the layer names (the keys without
/// `.weight` / `.bias`) separated by commas, input side first (`"fc1,fc2,fc3"`), spaces
/// around names ignored. The names are checked against the file when it is loaded.
pub fn parse_layer_order(text: &str) -> LayerOrder {
    LayerOrder::Names(text.split(',').map(|n| n.trim().to_string()).collect())
}

/// How [`load_network`] and [`load_septuple_with`] read a file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// The activation functions.
    pub activations: Activations,
    /// The order of the layers of a weight file.
    pub layer_order: LayerOrder,
    /// The largest dense form [`load_septuple_with`] builds.
    pub dense_budget: DenseBudget,
}

impl LoadOptions {
    /// These options with other activations.
    pub fn with_activations(mut self, activations: Activations) -> Self {
        self.activations = activations;
        self
    }

    /// These options with another layer order.
    pub fn with_layer_order(mut self, order: LayerOrder) -> Self {
        self.layer_order = order;
        self
    }

    /// These options with another dense budget.
    pub fn with_dense_budget(mut self, budget: DenseBudget) -> Self {
        self.dense_budget = budget;
        self
    }
}

/// Something a loader assumed; library code does not print, so callers show these.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadWarning {
    /// The file carries no activations and none were given: tanh on every layer.
    AssumedTanh {
        /// The file (or data) read.
        file: String,
        /// The number of non-input layers.
        layers: usize,
    },
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadWarning::AssumedTanh { file, layers } => write!(
                f,
                "{file} carries no activations; assuming tanh on all {layers} non-input layers (pass --activations to choose)"
            ),
        }
    }
}

/// A loaded network and what the loader assumed on the way.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<T> {
    /// The network.
    pub network: T,
    /// Assumptions the caller should show its user.
    pub warnings: Vec<LoadWarning>,
}

/// The formats [`load_layered`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightFormat {
    /// The `safetensors` format (PyTorch and others).
    Safetensors,
    /// numpy's `.npz` archive of `.npy` arrays.
    Npz,
    /// The septuple's own JSON: a serialised [`Layered`] or [`Septuple`].
    Json,
    /// An ONNX model (a protobuf `ModelProto`), imported as a sparse septuple by
    /// [`load_model`] and [`load_onnx`](crate::load_onnx); not a layered network.
    Onnx,
}

impl WeightFormat {
    /// The format named by a file's extension (`.safetensors`, `.npz`, `.json`, any case).
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "safetensors" => Some(WeightFormat::Safetensors),
            "npz" => Some(WeightFormat::Npz),
            "json" => Some(WeightFormat::Json),
            "onnx" => Some(WeightFormat::Onnx),
            _ => None,
        }
    }

    /// The format told by a file's first bytes: a ZIP signature (npz), a plausible safetensors
    /// header (a length that fits the file, then `{`), JSON text starting with `{`, or a
    /// protobuf starting with a small `ir_version` (ONNX).
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Some(WeightFormat::Npz);
        }
        if bytes.len() >= 9 && bytes[8] == b'{' {
            let mut n = [0u8; 8];
            n.copy_from_slice(&bytes[..8]);
            if u64::from_le_bytes(n) <= bytes.len() as u64 - 8 {
                return Some(WeightFormat::Safetensors);
            }
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'{') {
            return Some(WeightFormat::Json);
        }
        looks_like_onnx(bytes).then_some(WeightFormat::Onnx)
    }
}

/// The layer name and kind of a key `<layer>.weight` or `<layer>.bias`.
fn split_key(key: &str) -> Option<(&str, bool)> {
    let (layer, kind) = key.rsplit_once('.')?;
    if layer.is_empty() {
        return None;
    }
    match kind {
        "weight" => Some((layer, true)),
        "bias" => Some((layer, false)),
        _ => None,
    }
}

/// The numbers in a layer name, in order (`blocks.2.fc10` -> [2, 10]); None for a name
/// without digits or with a number beyond u64.
fn numbers(name: &str) -> Option<Vec<u64>> {
    let nums: Option<Vec<u64>> = name
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect();
    nums.filter(|v| !v.is_empty())
}

fn check_finite(key: &str, t: &ArrayD<f64>) -> Result<(), IoError> {
    if let Some((index, &value)) = t.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(IoError::NonFinite {
            key: key.to_string(),
            index,
            value,
        });
    }
    Ok(())
}

/// One Linear layer's tensors, as found.
#[derive(Default)]
struct Pair {
    weight: Option<(String, ArrayD<f64>)>,
    bias: Option<(String, ArrayD<f64>)>,
}

/// The layer order: the given names, else the file's metadata, else natural order by the
/// numbers in the names, else the file's order.
fn order_layers(
    found: &[String],
    order: &LayerOrder,
    from_file: Option<Vec<String>>,
) -> Result<Vec<String>, IoError> {
    let given = match order {
        LayerOrder::Names(names) => Some(names.clone()),
        LayerOrder::Auto => from_file,
    };
    if let Some(given) = given {
        let bad = |reason: String| IoError::LayerOrder {
            given: given.clone(),
            found: found.to_vec(),
            reason,
        };
        let mut seen = std::collections::HashSet::new();
        for name in &given {
            if !seen.insert(name) {
                return Err(bad(format!("{name:?} is named twice")));
            }
            if !found.contains(name) {
                return Err(bad(format!("the file has no layer {name:?}")));
            }
        }
        if let Some(missing) = found.iter().find(|f| !given.contains(f)) {
            return Err(bad(format!("layer {missing:?} of the file is not named")));
        }
        return Ok(given);
    }
    let keyed: Option<Vec<(Vec<u64>, &String)>> = found
        .iter()
        .map(|name| numbers(name).map(|n| (n, name)))
        .collect();
    if let Some(mut keyed) = keyed {
        let mut nums: Vec<&Vec<u64>> = keyed.iter().map(|(n, _)| n).collect();
        nums.sort();
        if nums.windows(2).all(|w| w[0] != w[1]) {
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            return Ok(keyed.into_iter().map(|(_, n)| n.clone()).collect());
        }
    }
    Ok(found.to_vec())
}

/// Build a layered network from named tensors in the file's order: every tensor a
/// `<layer>.weight` of shape `[out, in]` or a `<layer>.bias` of shape `[out]`, for any layer
/// names (`0`, `2` of an `nn.Sequential`; `fc1`, `fc2` of a module class; `net.0`,
/// `encoder.layer1`, ...), ordered by [`LayerOrder`].
///
/// Errors name the tensors at fault: a key that is not a weight or a bias, a weight without
/// its bias or a bias without its weight, shapes that do not chain, a NaN or an infinity.
fn layered_from_named(
    source: &str,
    tensors: Vec<(String, ArrayD<f64>)>,
    metadata: &BTreeMap<String, String>,
    opts: &LoadOptions,
) -> Result<Loaded<Layered<Builtin>>, IoError> {
    if tensors.is_empty() {
        return Err(IoError::NoTensors {
            what: source.to_string(),
        });
    }
    let mut found: Vec<String> = Vec::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    for (key, t) in tensors {
        let Some((layer, is_weight)) = split_key(&key) else {
            return Err(IoError::UnexpectedTensor {
                shape: t.shape().to_vec(),
                key,
                reason: "only the `<layer>.weight` and `<layer>.bias` tensors of Linear layers are expected".into(),
            });
        };
        let layer = layer.to_string();
        check_finite(&key, &t)?;
        let pair = pairs.entry(layer.clone()).or_insert_with(|| {
            found.push(layer.clone());
            Pair::default()
        });
        let slot = if is_weight {
            &mut pair.weight
        } else {
            &mut pair.bias
        };
        *slot = Some((key, t));
    }
    for name in &found {
        let pair = &pairs[name];
        match (&pair.weight, &pair.bias) {
            (Some((key, t)), None) => {
                return Err(IoError::UnpairedTensor {
                    key: key.clone(),
                    shape: t.shape().to_vec(),
                    missing: format!("{name}.bias"),
                })
            }
            (None, Some((key, t))) => {
                return Err(IoError::UnpairedTensor {
                    key: key.clone(),
                    shape: t.shape().to_vec(),
                    missing: format!("{name}.weight"),
                })
            }
            _ => {}
        }
    }
    let from_file = metadata
        .get(META_LAYERS)
        .map(|s| s.split(',').map(str::to_string).collect());
    let order = order_layers(&found, &opts.layer_order, from_file)?;
    let mut weights = Vec::with_capacity(order.len());
    let mut biases = Vec::with_capacity(order.len());
    let mut previous: Option<(String, Vec<usize>)> = None;
    for name in &order {
        let pair = pairs.remove(name).unwrap_or_default();
        let (Some((wkey, w)), Some((bkey, b))) = (pair.weight, pair.bias) else {
            // Every layer in `order` is one of `found`, each of which has both (checked).
            unreachable!("layer {name:?} lost its weight or bias");
        };
        let wshape = w.shape().to_vec();
        let w: Array2<f64> = w
            .into_dimensionality::<Ix2>()
            .map_err(|_| IoError::TensorShape {
                key: wkey.clone(),
                got: wshape.clone(),
                expected: "a matrix [out, in]".into(),
            })?;
        let (out, fan_in) = w.dim();
        if out == 0 || fan_in == 0 {
            return Err(IoError::TensorShape {
                key: wkey,
                got: wshape,
                expected: "at least one input and one output".into(),
            });
        }
        if let Some((pkey, pshape)) = &previous {
            if fan_in != pshape[0] {
                return Err(IoError::ShapeChain {
                    key: wkey,
                    shape: wshape,
                    previous_key: pkey.clone(),
                    previous_shape: pshape.clone(),
                    order,
                });
            }
        }
        let bshape = b.shape().to_vec();
        let b: Array1<f64> = match b.into_dimensionality::<Ix1>() {
            Ok(b) if b.len() == out => b,
            _ => {
                return Err(IoError::TensorShape {
                    key: bkey,
                    got: bshape,
                    expected: format!("[{out}], one bias per output of {wkey:?}"),
                })
            }
        };
        previous = Some((wkey, wshape));
        weights.push(w);
        biases.push(b);
    }
    let file_acts = match metadata.get(META_ACTIVATIONS) {
        Some(text) => Some(
            text.split(',')
                .map(parse_activation)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let n = weights.len();
    let (acts, warnings) = match opts.activations.choose(file_acts.as_deref(), n)? {
        Chosen::Given(a) => (a, Vec::new()),
        Chosen::AssumedTanh(a) => (
            a,
            vec![LoadWarning::AssumedTanh {
                file: source.to_string(),
                layers: n,
            }],
        ),
    };
    Ok(Loaded {
        network: Layered::from_layers(weights, biases, acts)?,
        warnings,
    })
}

/// Build a layered network from named tensors with the keys of a PyTorch `state_dict` of
/// `Linear` layers and parameter-free activations, for any key scheme (see [`LayerOrder`]
/// for how the layers are ordered; a map has no file order, so names without numbers are
/// taken alphabetically). `activations` chooses the activation functions (tanh by default).
pub fn layered_from_tensors(
    tensors: BTreeMap<String, ArrayD<f64>>,
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let opts = LoadOptions::default().with_activations(activations.clone());
    Ok(layered_from_named(
        "tensors",
        tensors.into_iter().collect(),
        &BTreeMap::new(),
        &opts,
    )?
    .network)
}

/// Read an `.npz` archive: its `.npy` entries in archive order (keyed by the entry name
/// without `.npy`) and the metadata of its [`NPZ_METADATA_ENTRY`], if any.
pub fn read_npz(bytes: &[u8]) -> Result<TensorFile, IoError> {
    let mut tensors: Vec<(String, ArrayD<f64>, FloatType)> = Vec::new();
    let mut metadata = BTreeMap::new();
    for (name, data) in read_entries("npz archive", bytes)? {
        if name == NPZ_METADATA_ENTRY {
            metadata = serde_json::from_slice(&data).map_err(|source| IoError::Json {
                what: format!("npz entry {NPZ_METADATA_ENTRY:?} (a JSON object of strings)"),
                source,
            })?;
            continue;
        }
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(IoError::UnexpectedTensor {
                key: name,
                shape: Vec::new(),
                reason: format!(
                    "an npz archive holds only `.npy` entries (and {NPZ_METADATA_ENTRY:?})"
                ),
            });
        };
        if tensors.iter().any(|(k, _, _)| k == key) {
            return Err(IoError::UnexpectedTensor {
                key: name,
                shape: Vec::new(),
                reason: "the archive holds this entry twice".into(),
            });
        }
        let array = read_npy(&format!("npz entry {name:?}"), &data)?;
        tensors.push((key.to_string(), array.array, array.stored));
    }
    Ok(TensorFile { tensors, metadata })
}

/// Read the tensors of an `.npz` archive (entries `<key>.npy`, stored or deflated) keyed by
/// `<key>`.
pub fn parse_npz(bytes: &[u8]) -> Result<BTreeMap<String, ArrayD<f64>>, IoError> {
    Ok(read_npz(bytes)?
        .tensors
        .into_iter()
        .map(|(k, a, _)| (k, a))
        .collect())
}

fn from_tensor_file(
    source: &str,
    file: TensorFile,
    opts: &LoadOptions,
) -> Result<Loaded<Layered<Builtin>>, IoError> {
    let tensors = file.tensors.into_iter().map(|(k, a, _)| (k, a)).collect();
    layered_from_named(source, tensors, &file.metadata, opts)
}

/// A layered network from the bytes of a `.safetensors` file, activations from its metadata
/// or `activations` (see [`load_network`] for the rules).
pub fn layered_from_safetensors(
    bytes: &[u8],
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let opts = LoadOptions::default().with_activations(activations.clone());
    Ok(from_tensor_file("safetensors data", read_safetensors(bytes)?, &opts)?.network)
}

/// A layered network from the bytes of an `.npz` archive (see [`layered_from_safetensors`]).
pub fn layered_from_npz(
    bytes: &[u8],
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let opts = LoadOptions::default().with_activations(activations.clone());
    Ok(from_tensor_file("npz data", read_npz(bytes)?, &opts)?.network)
}

/// The septuple's JSON: a serialised [`Layered`] (keys `weights`, `biases`, `activations`)
/// or [`Septuple`] (keys `w`, `b`, `activations`, `inputs`, `outputs`).
enum JsonNetwork {
    Layered(Layered<Builtin>),
    Septuple(Septuple<Builtin>),
}

fn parse_json(bytes: &[u8]) -> Result<JsonNetwork, IoError> {
    let json_err = |what: &str| {
        let what = what.to_string();
        move |source| IoError::Json { what, source }
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(json_err("network JSON"))?;
    let obj = value.as_object();
    if obj.is_some_and(|o| o.contains_key("weights")) {
        Ok(JsonNetwork::Layered(
            serde_json::from_value(value).map_err(json_err("layered network JSON"))?,
        ))
    } else if obj.is_some_and(|o| o.contains_key("w")) {
        Ok(JsonNetwork::Septuple(
            serde_json::from_value(value).map_err(json_err("septuple JSON"))?,
        ))
    } else {
        Err(IoError::header(
            "network JSON",
            "expected an object with the keys of a layered network (weights, biases, activations) or of a septuple (w, b, activations, inputs, outputs)",
        ))
    }
}

/// The layered form of a feedforward septuple whose layers are its levels (Eq. 2.1): layer k
/// holds the neurons whose longest incoming path of non-zero connections has k edges. Fails
/// with a typed error for a septuple that is not layered this way (skip connections, inputs
/// out of order, ...). A neuron whose incoming weights are all exactly zero sits at level 0, so
/// a network with such a neuron cannot be recognised: keep those as a serialised [`Layered`].
pub fn infer_layered<A: Activation + PartialEq>(net: &Septuple<A>) -> Result<Layered<A>, IoError> {
    let ff = net.feedforward()?;
    let mut sizes = vec![0usize; ff.depth.max(1)];
    for &level in &ff.levels {
        if level >= sizes.len() {
            sizes.resize(level + 1, 0);
        }
        sizes[level] += 1;
    }
    Ok(net.to_layered(&sizes)?)
}

/// A layered network from the septuple's JSON, a serialised [`Layered`] or a layered
/// [`Septuple`] (its layers inferred by [`infer_layered`]).
pub fn layered_from_json(
    bytes: &[u8],
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let net = match parse_json(bytes)? {
        JsonNetwork::Layered(l) => l,
        JsonNetwork::Septuple(s) => infer_layered(&s)?,
    };
    let n = net.activations().len();
    let (Chosen::Given(acts) | Chosen::AssumedTanh(acts)) =
        activations.choose(Some(net.activations()), n)?;
    if acts == net.activations() {
        return Ok(net);
    }
    Ok(Layered::from_layers(
        net.weights().to_vec(),
        net.biases().to_vec(),
        acts,
    )?)
}

/// A septuple from the septuple's JSON, a serialised [`Septuple`] (kept exactly, layered or
/// not) or [`Layered`] (converted).
pub fn septuple_from_json(bytes: &[u8]) -> Result<Septuple<Builtin>, IoError> {
    Ok(match parse_json(bytes)? {
        JsonNetwork::Layered(l) => l.to_septuple()?,
        JsonNetwork::Septuple(s) => s,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, IoError> {
    std::fs::read(path).map_err(|e| IoError::read(path, e))
}

fn format_of(path: &Path, bytes: &[u8]) -> Result<WeightFormat, IoError> {
    WeightFormat::from_extension(path)
        .or_else(|| WeightFormat::sniff(bytes))
        .ok_or_else(|| IoError::UnknownFormat {
            path: path.to_path_buf(),
        })
}

/// A layered network from the bytes of a file in `format`; `source` names it in warnings.
pub fn network_from_bytes(
    bytes: &[u8],
    format: WeightFormat,
    source: &str,
    opts: &LoadOptions,
) -> Result<Loaded<Layered<Builtin>>, IoError> {
    match format {
        WeightFormat::Safetensors => from_tensor_file(source, read_safetensors(bytes)?, opts),
        WeightFormat::Npz => from_tensor_file(source, read_npz(bytes)?, opts),
        WeightFormat::Json => Ok(Loaded {
            network: layered_from_json(bytes, &opts.activations)?,
            warnings: Vec::new(),
        }),
        WeightFormat::Onnx => Err(IoError::unsupported(
            source,
            "an ONNX model as a layered network (its graph may hold convolutions, pooling and residual connections); load it with load_model or load_onnx, which build a sparse septuple",
        )),
    }
}

/// A network loaded from any format this crate reads: a weight file or JSON as a
/// [`Layered`], an ONNX model as a [`SparseSeptuple`](septuple_core::SparseSeptuple).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Model {
    /// A layered network (`.safetensors`, `.npz`, `.json`).
    Layered(Layered<Builtin>),
    /// An ONNX model's graph as a sparse septuple, with its tensor names and shapes.
    Onnx(Box<OnnxModel>),
}

impl Model {
    /// The network, for everything that works through the [`Network`] trait (spectra,
    /// thermodynamics, forward passes).
    pub fn as_network(&self) -> &(dyn Network<Act = Builtin> + '_) {
        match self {
            Model::Layered(l) => l,
            Model::Onnx(m) => &m.network,
        }
    }

    /// The layer sizes, inputs first, of a layered network; `None` for an ONNX graph.
    pub fn layer_sizes(&self) -> Option<&[usize]> {
        match self {
            Model::Layered(l) => Some(l.layer_sizes()),
            Model::Onnx(_) => None,
        }
    }
}

/// Load a network from `.safetensors`, `.npz`, JSON (as [`load_network`] does) or `.onnx`
/// (as [`load_onnx`](crate::load_onnx) does, within `opts.dense_budget` of memory), the
/// format chosen by the extension or else by the first bytes. `opts.activations` and
/// `opts.layer_order` apply to layered formats; an ONNX model's activations are its own
/// activation nodes.
pub fn load_model(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Loaded<Model>, IoError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let format = format_of(path, &bytes)?;
    let source = path.display().to_string();
    if format == WeightFormat::Onnx {
        return Ok(Loaded {
            network: Model::Onnx(Box::new(onnx_from_bytes(
                &bytes,
                &source,
                opts.dense_budget,
            )?)),
            warnings: Vec::new(),
        });
    }
    let loaded = network_from_bytes(&bytes, format, &source, opts)?;
    Ok(Loaded {
        network: Model::Layered(loaded.network),
        warnings: loaded.warnings,
    })
}

/// Load a layered network from `.safetensors`, `.npz` or JSON, the format chosen by the
/// extension or else by the first bytes.
///
/// Weight files may use any key scheme (see [`LayerOrder`]) and F64, F32, F16 or BF16
/// (safetensors) or f8, f4, f2 in either byte order and C or Fortran order (npz), all
/// converted to f64 exactly. Activations: those of `opts` if given, else the file's own
/// (JSON, or the metadata that [`save_safetensors_with`] and [`save_npz_with`] write),
/// else tanh on every layer with a [`LoadWarning::AssumedTanh`] in the result.
pub fn load_network(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<Loaded<Layered<Builtin>>, IoError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let format = format_of(path, &bytes)?;
    network_from_bytes(&bytes, format, &path.display().to_string(), opts)
}

/// [`load_network`] with the default options, keeping only the network (warnings dropped).
pub fn load_layered(path: impl AsRef<Path>) -> Result<Layered<Builtin>, IoError> {
    Ok(load_network(path, &LoadOptions::default())?.network)
}

/// [`load_layered`] with a choice of activation functions.
pub fn load_layered_with(
    path: impl AsRef<Path>,
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let opts = LoadOptions::default().with_activations(activations.clone());
    Ok(load_network(path, &opts)?.network)
}

/// Load a septuple from any format [`load_model`] reads; a serialised [`Septuple`] in JSON
/// is kept as it is (it need not be layered), an ONNX model is converted from its sparse
/// form, everything else from its layered form, refused with [`CoreError::TooLarge`](septuple_core::CoreError::TooLarge) when its
/// N x N weight matrix would exceed `opts.dense_budget`.
pub fn load_septuple_with(
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<Loaded<Septuple<Builtin>>, IoError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let format = format_of(path, &bytes)?;
    if format == WeightFormat::Onnx {
        let model = onnx_from_bytes(&bytes, &path.display().to_string(), opts.dense_budget)?;
        return Ok(Loaded {
            network: model.network.to_dense(opts.dense_budget)?,
            warnings: Vec::new(),
        });
    }
    if format == WeightFormat::Json {
        if let JsonNetwork::Septuple(s) = parse_json(&bytes)? {
            return Ok(Loaded {
                network: s,
                warnings: Vec::new(),
            });
        }
    }
    let loaded = network_from_bytes(&bytes, format, &path.display().to_string(), opts)?;
    Ok(Loaded {
        network: loaded.network.to_dense(opts.dense_budget)?,
        warnings: loaded.warnings,
    })
}

/// [`load_septuple_with`] with the default options (tanh for weight files without
/// activations, the default 4 GiB [`DenseBudget`]), warnings dropped.
pub fn load_septuple(path: impl AsRef<Path>) -> Result<Septuple<Builtin>, IoError> {
    Ok(load_septuple_with(path, &LoadOptions::default())?.network)
}

/// The tensor keys a saved network gets.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyScheme {
    /// An `nn.Sequential(Linear, act, Linear, act, ...)`: `0.weight`, `0.bias`, `2.weight`, ...
    #[default]
    Sequential,
    /// Numbered names of a module class: prefix `fc` gives `fc1.weight`, `fc1.bias`,
    /// `fc2.weight`, ...
    Numbered {
        /// The text before each layer's number.
        prefix: String,
    },
    /// These layer names, input side first (`encoder.in`, `encoder.out`, ...).
    Names(Vec<String>),
}

impl KeyScheme {
    fn layer_names(&self, layers: usize) -> Result<Vec<String>, IoError> {
        let names: Vec<String> = match self {
            KeyScheme::Sequential => (0..layers).map(|l| (2 * l).to_string()).collect(),
            KeyScheme::Numbered { prefix } => {
                (1..=layers).map(|l| format!("{prefix}{l}")).collect()
            }
            KeyScheme::Names(names) => names.clone(),
        };
        let bad = |reason: String| IoError::LayerOrder {
            given: names.clone(),
            found: Vec::new(),
            reason,
        };
        if names.len() != layers {
            return Err(bad(format!(
                "{} names for {layers} layers; expected one per Linear layer",
                names.len()
            )));
        }
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() || name.contains(',') || name.ends_with('.') {
                return Err(bad(format!(
                    "layer name {name:?} is empty, holds a comma or ends with a dot"
                )));
            }
            if names[..i].contains(name) {
                return Err(bad(format!("layer name {name:?} appears twice")));
            }
        }
        Ok(names)
    }
}

/// How a network is saved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SaveOptions {
    /// The float type of the tensors (f64 by default: exact).
    pub dtype: SaveDtype,
    /// The tensor keys.
    pub keys: KeyScheme,
}

/// The named tensors of a network and the metadata that lets [`load_network`] read it back
/// as it was: its activations ([`META_ACTIVATIONS`]) and layer order ([`META_LAYERS`]).
type Prepared<'a> = (Vec<(String, ArrayViewD<'a, f64>)>, BTreeMap<String, String>);

fn prepare<'a>(net: &'a Layered<Builtin>, keys: &KeyScheme) -> Result<Prepared<'a>, IoError> {
    let names = keys.layer_names(net.weights().len())?;
    let mut tensors = Vec::with_capacity(2 * names.len());
    for (name, (w, b)) in names.iter().zip(net.weights().iter().zip(net.biases())) {
        tensors.push((format!("{name}.weight"), w.view().into_dyn()));
        tensors.push((format!("{name}.bias"), b.view().into_dyn()));
    }
    let mut meta = BTreeMap::new();
    meta.insert(
        META_ACTIVATIONS.to_string(),
        format_activations(net.activations()),
    );
    meta.insert(META_LAYERS.to_string(), names.join(","));
    // What safetensors.torch writes; some loaders (transformers) expect it.
    meta.insert("format".to_string(), "pt".to_string());
    Ok((tensors, meta))
}

/// A layered network as a `.safetensors` file with the keys and float type of `opts`, its
/// activations and layer order in the `__metadata__`. PyTorch reads it with
/// `model.load_state_dict(safetensors.torch.load_file(path))` for a model of the same keys.
pub fn safetensors_bytes_with(
    net: &Layered<Builtin>,
    opts: &SaveOptions,
) -> Result<Vec<u8>, IoError> {
    let (tensors, meta) = prepare(net, &opts.keys)?;
    write_safetensors_as(
        tensors.iter().map(|(k, t)| (k.as_str(), t.view())),
        opts.dtype,
        &meta,
    )
}

/// A layered network as an `.npz` archive (stored `.npy` entries, little endian, C order)
/// with the keys and float type of `opts`, its metadata in [`NPZ_METADATA_ENTRY`].
pub fn npz_bytes_with(net: &Layered<Builtin>, opts: &SaveOptions) -> Result<Vec<u8>, IoError> {
    let (tensors, meta) = prepare(net, &opts.keys)?;
    let mut entries: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(k, t)| (format!("{k}.npy"), write_npy_as(t.view(), opts.dtype)))
        .collect();
    let json = serde_json::to_vec(&meta).map_err(|source| IoError::Json {
        what: NPZ_METADATA_ENTRY.into(),
        source,
    })?;
    entries.push((NPZ_METADATA_ENTRY.to_string(), json));
    Ok(write_stored(&entries))
}

/// Write a layered network as `.safetensors` (see [`safetensors_bytes_with`]), atomically.
pub fn save_safetensors_with(
    net: &Layered<Builtin>,
    path: impl AsRef<Path>,
    opts: &SaveOptions,
) -> Result<(), IoError> {
    write_atomic(path, &safetensors_bytes_with(net, opts)?)
}

/// Write a layered network as `.npz` (see [`npz_bytes_with`]), atomically.
pub fn save_npz_with(
    net: &Layered<Builtin>,
    path: impl AsRef<Path>,
    opts: &SaveOptions,
) -> Result<(), IoError> {
    write_atomic(path, &npz_bytes_with(net, opts)?)
}

/// The keys a PyTorch `nn.Sequential(Linear, Tanh, Linear, Tanh, ...)` uses: `0.weight`,
/// `0.bias`, `2.weight`, ...
fn torch_keys<A: Activation>(net: &Layered<A>) -> Vec<(String, String)> {
    (0..net.weights().len())
        .map(|l| (format!("{}.weight", 2 * l), format!("{}.bias", 2 * l)))
        .collect()
}

/// A layered network (of any activation type) as a `.safetensors` file of F64 tensors with
/// the keys of a PyTorch `nn.Sequential(Linear, Tanh, Linear, Tanh, ...)` (`0.weight`,
/// `0.bias`, `2.weight`, ...). Activations are not stored; [`safetensors_bytes_with`] stores
/// those of a [`Builtin`] network.
pub fn safetensors_bytes<A: Activation>(net: &Layered<A>) -> Vec<u8> {
    let keys = torch_keys(net);
    let tensors = keys
        .iter()
        .zip(net.weights().iter().zip(net.biases()))
        .flat_map(|((wk, bk), (w, b))| {
            [
                (wk.as_str(), w.view().into_dyn()),
                (bk.as_str(), b.view().into_dyn()),
            ]
        });
    crate::safetensors::write_safetensors(tensors)
}

/// A layered network as an `.npz` archive (stored `.npy` entries, little-endian f8) with the
/// same keys as [`safetensors_bytes`], no activations; `numpy.load` reads it.
pub fn npz_bytes<A: Activation>(net: &Layered<A>) -> Vec<u8> {
    let keys = torch_keys(net);
    let mut entries = Vec::with_capacity(2 * keys.len());
    for ((wk, bk), (w, b)) in keys.iter().zip(net.weights().iter().zip(net.biases())) {
        entries.push((
            format!("{wk}.npy"),
            write_npy_as(w.view().into_dyn(), SaveDtype::F64),
        ));
        entries.push((
            format!("{bk}.npy"),
            write_npy_as(b.view().into_dyn(), SaveDtype::F64),
        ));
    }
    write_stored(&entries)
}

/// Serialise a network ([`Layered`] or [`Septuple`], or anything serde can write) as JSON
/// and write it atomically; [`load_layered`] and [`load_septuple`] read it back exactly (floats
/// round-trip).
pub fn save_json<T: Serialize>(value: &T, path: impl AsRef<Path>) -> Result<(), IoError> {
    let text = serde_json::to_vec(value).map_err(|source| IoError::Json {
        what: "network JSON".into(),
        source,
    })?;
    write_atomic(path, &text)
}

/// Write a layered network as `.safetensors` (see [`safetensors_bytes`]), atomically.
pub fn save_safetensors<A: Activation>(
    net: &Layered<A>,
    path: impl AsRef<Path>,
) -> Result<(), IoError> {
    write_atomic(path, &safetensors_bytes(net))
}

/// Write a layered network as `.npz` (see [`npz_bytes`]), atomically.
pub fn save_npz<A: Activation>(net: &Layered<A>, path: impl AsRef<Path>) -> Result<(), IoError> {
    write_atomic(path, &npz_bytes(net))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn w(r: usize, c: usize) -> ArrayD<f64> {
        Array2::<f64>::zeros((r, c)).into_dyn()
    }

    fn b(r: usize) -> ArrayD<f64> {
        Array1::<f64>::zeros(r).into_dyn()
    }

    fn load(tensors: Vec<(&str, ArrayD<f64>)>, opts: &LoadOptions) -> Result<Layered, IoError> {
        let t = tensors
            .into_iter()
            .map(|(k, a)| (k.to_string(), a))
            .collect();
        Ok(layered_from_named("t", t, &BTreeMap::new(), opts)?.network)
    }

    #[test]
    fn keys_split_into_layer_and_kind() {
        assert_eq!(split_key("0.weight"), Some(("0", true)));
        assert_eq!(split_key("net.12.bias"), Some(("net.12", false)));
        assert_eq!(
            split_key("encoder.layer1.weight"),
            Some(("encoder.layer1", true))
        );
        for bad in ["weight", "0.running_mean", ".weight", "0."] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
        assert_eq!(numbers("blocks.2.fc10"), Some(vec![2, 10]));
        assert_eq!(numbers("out"), None);
    }

    #[test]
    fn natural_order_by_the_numbers_in_the_names() {
        let d = LoadOptions::default();
        // fc10 after fc2, whatever the file order.
        let mut t = vec![];
        for (i, (o, n)) in [
            (3usize, 2usize),
            (4, 3),
            (5, 4),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 8),
            (10, 9),
            (11, 10),
            (12, 11),
        ]
        .into_iter()
        .enumerate()
        {
            t.push((format!("fc{}.weight", i + 1), w(o, n)));
            t.push((format!("fc{}.bias", i + 1), b(o)));
        }
        t.reverse();
        let t2: Vec<(&str, ArrayD<f64>)> = t.iter().map(|(k, a)| (k.as_str(), a.clone())).collect();
        let net = load(t2, &d).unwrap();
        assert_eq!(net.layer_sizes(), &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        // nn.Sequential indices with stride 3, behind a prefix.
        let net = load(
            vec![
                ("net.3.weight", w(1, 3)),
                ("net.0.weight", w(3, 2)),
                ("net.0.bias", b(3)),
                ("net.3.bias", b(1)),
            ],
            &d,
        )
        .unwrap();
        assert_eq!(net.layer_sizes(), &[2, 3, 1]);
        // Names without numbers: the file's order.
        let net = load(
            vec![
                ("hidden.weight", w(3, 2)),
                ("hidden.bias", b(3)),
                ("out.weight", w(1, 3)),
                ("out.bias", b(1)),
            ],
            &d,
        )
        .unwrap();
        assert_eq!(net.layer_sizes(), &[2, 3, 1]);
        // Or the user's.
        let named = vec![
            ("out.weight", w(1, 3)),
            ("out.bias", b(1)),
            ("hidden.weight", w(3, 2)),
            ("hidden.bias", b(3)),
        ];
        assert!(matches!(
            load(named.clone(), &d),
            Err(IoError::ShapeChain { .. })
        ));
        let given = d
            .clone()
            .with_layer_order(LayerOrder::Names(vec!["hidden".into(), "out".into()]));
        assert_eq!(given.layer_order, parse_layer_order(" hidden,out "));
        assert_eq!(
            load(named.clone(), &given).unwrap().layer_sizes(),
            &[2, 3, 1]
        );
        let wrong = d.with_layer_order(LayerOrder::Names(vec!["hidden".into()]));
        assert!(matches!(
            load(named, &wrong),
            Err(IoError::LayerOrder { .. })
        ));
    }

    #[test]
    fn unpaired_and_foreign_tensors_are_named() {
        let d = LoadOptions::default();
        match load(
            vec![
                ("fc1.weight", w(3, 2)),
                ("fc1.bias", b(3)),
                ("fc2.weight", w(1, 3)),
            ],
            &d,
        ) {
            Err(IoError::UnpairedTensor {
                key,
                shape,
                missing,
            }) => {
                assert_eq!(
                    (key.as_str(), shape, missing.as_str()),
                    ("fc2.weight", vec![1, 3], "fc2.bias")
                );
            }
            other => panic!("{other:?}"),
        }
        match load(vec![("fc1.bias", b(3))], &d) {
            Err(IoError::UnpairedTensor { missing, .. }) => assert_eq!(missing, "fc1.weight"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load(vec![("bn.running_mean", b(3))], &d),
            Err(IoError::UnexpectedTensor { .. })
        ));
        assert!(matches!(load(vec![], &d), Err(IoError::NoTensors { .. })));
    }

    #[test]
    fn activations_choice_and_warning() {
        let t = vec![
            ("0.weight".to_string(), array![[1.0, 2.0]].into_dyn()),
            ("0.bias".to_string(), array![0.5].into_dyn()),
        ];
        let none = BTreeMap::new();
        let l =
            layered_from_named("f.safetensors", t.clone(), &none, &LoadOptions::default()).unwrap();
        assert_eq!(l.network.activations(), &[Builtin::Tanh]);
        assert_eq!(
            l.warnings[0].to_string(),
            "f.safetensors carries no activations; assuming tanh on all 1 non-input layers (pass --activations to choose)"
        );
        let relu = LoadOptions::default().with_activations(Activations::All(Builtin::Relu));
        let l = layered_from_named("f", t.clone(), &none, &relu).unwrap();
        assert_eq!(l.network.activations(), &[Builtin::Relu]);
        assert!(l.warnings.is_empty());
        let mut meta = BTreeMap::new();
        meta.insert(META_ACTIVATIONS.to_string(), "identity".to_string());
        let l = layered_from_named("f", t.clone(), &meta, &LoadOptions::default()).unwrap();
        assert_eq!(l.network.activations(), &[Builtin::Identity]);
        assert!(l.warnings.is_empty());
        meta.insert(META_ACTIVATIONS.to_string(), "swish".to_string());
        assert!(matches!(
            layered_from_named("f", t.clone(), &meta, &LoadOptions::default()),
            Err(IoError::UnknownActivation { .. })
        ));
        let empty = LoadOptions::default().with_activations(Activations::PerLayer(vec![]));
        assert!(matches!(
            layered_from_named("f", t, &none, &empty),
            Err(IoError::Core(_))
        ));
    }

    #[test]
    fn activation_names_parse() {
        assert_eq!(
            parse_activations("tanh").unwrap(),
            Activations::All(Builtin::Tanh)
        );
        assert_eq!(
            parse_activations("ReLU, relu ,linear").unwrap(),
            Activations::PerLayer(vec![Builtin::Relu, Builtin::Relu, Builtin::Identity])
        );
        assert_eq!(
            parse_activations("sigmoid").unwrap(),
            Activations::All(Builtin::Logistic)
        );
        assert_eq!(
            parse_activations("logistic").unwrap(),
            Activations::All(Builtin::Logistic)
        );
        assert_eq!(
            parse_activations("leaky_relu, Leaky_ReLU:0.2").unwrap(),
            Activations::PerLayer(vec![
                Builtin::LeakyRelu(Slope::DEFAULT),
                Builtin::LeakyRelu(Slope::new(0.2).unwrap())
            ])
        );
        for bad in [
            "",
            "tanh,",
            "gelu",
            "tanh;relu",
            "leaky_relu:x",
            "leaky_relu:inf",
        ] {
            assert!(
                matches!(
                    parse_activations(bad),
                    Err(IoError::UnknownActivation { .. })
                ),
                "{bad}"
            );
        }
        for a in [
            Builtin::Tanh,
            Builtin::Relu,
            Builtin::Logistic,
            Builtin::Identity,
            Builtin::LeakyRelu(Slope::new(0.1).unwrap()),
            Builtin::LeakyRelu(Slope::new(-1e-300).unwrap()),
        ] {
            assert_eq!(parse_activation(&activation_label(a)).unwrap(), a);
        }
    }

    #[test]
    fn key_schemes() {
        assert_eq!(
            KeyScheme::Sequential.layer_names(3).unwrap(),
            ["0", "2", "4"]
        );
        assert_eq!(
            KeyScheme::Numbered {
                prefix: "fc".into()
            }
            .layer_names(2)
            .unwrap(),
            ["fc1", "fc2"]
        );
        for names in [vec!["a"], vec!["a", "a"], vec!["a", ""], vec!["a,b", "c"]] {
            let s = KeyScheme::Names(names.iter().map(|s| s.to_string()).collect());
            assert!(
                matches!(s.layer_names(2), Err(IoError::LayerOrder { .. })),
                "{names:?}"
            );
        }
    }

    #[test]
    fn sniffing() {
        assert_eq!(
            WeightFormat::sniff(b"PK\x03\x04rest"),
            Some(WeightFormat::Npz)
        );
        assert_eq!(
            WeightFormat::sniff(b"  {\"w\": 1}"),
            Some(WeightFormat::Json)
        );
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(WeightFormat::sniff(&st), Some(WeightFormat::Safetensors));
        assert_eq!(WeightFormat::sniff(b"\x93NUMPY"), None);
    }
}
