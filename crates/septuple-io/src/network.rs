//! Layered networks from files: PyTorch `state_dict`s saved as `.safetensors` or `.npz`, and
//! the septuple's own JSON.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayD, Ix1, Ix2};
use septuple_core::{Activation, Builtin, Layered, Septuple};
use serde::Serialize;

use crate::error::IoError;
use crate::fs::write_atomic;
use crate::npy::{read_npy, write_npy};
use crate::npz_zip::{read_entries, write_stored};
use crate::safetensors::{parse_safetensors, write_safetensors};

/// The activation functions of a loaded network.
///
/// Weight files (`.safetensors`, `.npz`) hold no activations: a PyTorch `nn.Sequential` of
/// `Linear` and `Tanh` layers saves only the `Linear` parameters. JSON files carry their own.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Activations {
    /// The file's own activations (JSON); tanh on every layer for weight files, as in the
    /// paper's networks (Sec. 10).
    #[default]
    FromFileOrTanh,
    /// The same activation on every non-input layer, whatever the file says.
    All(Builtin),
    /// One activation per non-input layer, in order.
    PerLayer(Vec<Builtin>),
}

impl Activations {
    fn for_layers(&self, file: Option<&[Builtin]>, n: usize) -> Result<Vec<Builtin>, IoError> {
        let acts = match self {
            Activations::FromFileOrTanh => match file {
                Some(a) => a.to_vec(),
                None => vec![Builtin::Tanh; n],
            },
            Activations::All(a) => vec![*a; n],
            Activations::PerLayer(v) => v.clone(),
        };
        if acts.len() != n {
            return Err(septuple_core::CoreError::Layers {
                reason: format!(
                    "{} activations given for {n} non-input layers; expected one per layer",
                    acts.len()
                ),
            }
            .into());
        }
        Ok(acts)
    }
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
}

impl WeightFormat {
    /// The format named by a file's extension (`.safetensors`, `.npz`, `.json`, any case).
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "safetensors" => Some(WeightFormat::Safetensors),
            "npz" => Some(WeightFormat::Npz),
            "json" => Some(WeightFormat::Json),
            _ => None,
        }
    }

    /// The format told by a file's first bytes: a ZIP signature (npz), a plausible safetensors
    /// header (a length that fits the file, then `{`), or JSON text starting with `{`.
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
        (first == Some(&b'{')).then_some(WeightFormat::Json)
    }
}

/// A tensor and its key.
type Named = (String, ArrayD<f64>);

/// One parsed tensor key `<prefix><index>.<weight|bias>`.
fn split_key(key: &str) -> Result<(&str, usize, bool), IoError> {
    let bad = |reason: &str| IoError::UnexpectedTensor {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    let (head, kind) = key
        .rsplit_once('.')
        .ok_or_else(|| bad("expected a key `<i>.weight` or `<i>.bias`"))?;
    let is_weight = match kind {
        "weight" => true,
        "bias" => false,
        _ => {
            return Err(bad(
                "only `.weight` and `.bias` tensors of Linear layers are expected",
            ))
        }
    };
    let (prefix, index) = match head.rsplit_once('.') {
        Some((p, i)) => (&key[..p.len() + 1], i),
        None => ("", head),
    };
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("expected a layer index before `.weight` or `.bias`"));
    }
    let index = index
        .parse()
        .map_err(|_| bad("the layer index does not fit in usize"))?;
    Ok((prefix, index, is_weight))
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

/// Build a layered network from named tensors with the keys of a PyTorch `state_dict` of an
/// `nn.Sequential` of `Linear` layers and parameter-free activations: `<i>.weight` of shape
/// `[out, in]` and `<i>.bias` of shape `[out]` for evenly spaced indices 0, s, 2s, ... (s = 2 for
/// `Linear, Tanh, Linear, Tanh, ...`), optionally behind one common prefix such as `net.`.
///
/// Errors name the tensor at fault: a key that is not a Linear parameter, a missing weight or
/// bias, a gap in the indices, a shape that does not chain with the previous layer, a NaN or
/// an infinity. `activations` chooses the activation functions (tanh by default).
pub fn layered_from_tensors(
    tensors: BTreeMap<String, ArrayD<f64>>,
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let mut prefix: Option<String> = None;
    let mut layers: BTreeMap<usize, [Option<Named>; 2]> = BTreeMap::new();
    for (key, t) in tensors {
        let (p, index, is_weight) = split_key(&key)?;
        match &prefix {
            None => prefix = Some(p.to_string()),
            Some(q) if q != p => {
                return Err(IoError::UnexpectedTensor {
                    key: key.clone(),
                    reason: format!("its prefix {p:?} differs from the other keys' {q:?}"),
                })
            }
            Some(_) => {}
        }
        check_finite(&key, &t)?;
        let slot = &mut layers.entry(index).or_default()[usize::from(!is_weight)];
        *slot = Some((key, t));
    }
    let prefix = prefix.unwrap_or_default();
    let indices: Vec<usize> = layers.keys().copied().collect();
    if indices.is_empty() {
        return Err(IoError::MissingTensor {
            key: format!("{prefix}0.weight"),
        });
    }
    let stride = if indices.len() > 1 {
        indices[1] - indices[0]
    } else {
        1
    };
    let even = indices[0] == 0 && indices.windows(2).all(|p| p[1] - p[0] == stride);
    if !even {
        return Err(IoError::IndexGap { indices, stride });
    }
    let mut weights = Vec::with_capacity(layers.len());
    let mut biases = Vec::with_capacity(layers.len());
    let mut previous: Option<(String, usize)> = None;
    for (index, [w, b]) in layers {
        let (wkey, w) = w.ok_or_else(|| IoError::MissingTensor {
            key: format!("{prefix}{index}.weight"),
        })?;
        let (bkey, b) = b.ok_or_else(|| IoError::MissingTensor {
            key: format!("{prefix}{index}.bias"),
        })?;
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
        if let Some((pkey, pout)) = &previous {
            if fan_in != *pout {
                return Err(IoError::TensorShape {
                    key: wkey,
                    got: wshape,
                    expected: format!(
                        "[{out}, {pout}]: its input is the {pout} outputs of {pkey:?}"
                    ),
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
        previous = Some((wkey, out));
        weights.push(w);
        biases.push(b);
    }
    let acts = activations.for_layers(None, weights.len())?;
    Ok(Layered::from_layers(weights, biases, acts)?)
}

/// Read the tensors of an `.npz` archive (entries `<key>.npy`, stored or deflated) keyed by
/// `<key>`.
pub fn parse_npz(bytes: &[u8]) -> Result<BTreeMap<String, ArrayD<f64>>, IoError> {
    let mut out = BTreeMap::new();
    for (name, data) in read_entries("npz archive", bytes)? {
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(IoError::UnexpectedTensor {
                key: name,
                reason: "an npz archive holds only `.npy` entries".into(),
            });
        };
        let array = read_npy(&format!("npz entry {name:?}"), &data)?.array;
        if out.insert(key.to_string(), array).is_some() {
            return Err(IoError::UnexpectedTensor {
                key: name,
                reason: "the archive holds this entry twice".into(),
            });
        }
    }
    Ok(out)
}

/// A layered network from the bytes of a `.safetensors` file (see [`layered_from_tensors`]).
pub fn layered_from_safetensors(
    bytes: &[u8],
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    layered_from_tensors(parse_safetensors(bytes)?, activations)
}

/// A layered network from the bytes of an `.npz` archive (see [`layered_from_tensors`]).
pub fn layered_from_npz(
    bytes: &[u8],
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    layered_from_tensors(parse_npz(bytes)?, activations)
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
    let acts = activations.for_layers(Some(net.activations()), net.activations().len())?;
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
        JsonNetwork::Layered(l) => l.to_septuple(),
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

/// Load a layered network from `.safetensors`, `.npz` or JSON, the format chosen by the
/// extension or else by the first bytes, with tanh on every layer for weight files (the
/// paper's networks) and the file's own activations for JSON.
pub fn load_layered(path: impl AsRef<Path>) -> Result<Layered<Builtin>, IoError> {
    load_layered_with(path, &Activations::default())
}

/// [`load_layered`] with a choice of activation functions.
pub fn load_layered_with(
    path: impl AsRef<Path>,
    activations: &Activations,
) -> Result<Layered<Builtin>, IoError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    match format_of(path, &bytes)? {
        WeightFormat::Safetensors => layered_from_safetensors(&bytes, activations),
        WeightFormat::Npz => layered_from_npz(&bytes, activations),
        WeightFormat::Json => layered_from_json(&bytes, activations),
    }
}

/// Load a septuple from any format [`load_layered`] reads; a serialised [`Septuple`] in JSON
/// is kept as it is (it need not be layered), everything else is converted from its layered
/// form.
pub fn load_septuple(path: impl AsRef<Path>) -> Result<Septuple<Builtin>, IoError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    match format_of(path, &bytes)? {
        WeightFormat::Json => septuple_from_json(&bytes),
        WeightFormat::Safetensors => {
            Ok(layered_from_safetensors(&bytes, &Activations::default())?.to_septuple())
        }
        WeightFormat::Npz => Ok(layered_from_npz(&bytes, &Activations::default())?.to_septuple()),
    }
}

/// The keys a PyTorch `nn.Sequential(Linear, Tanh, Linear, Tanh, ...)` uses: `0.weight`,
/// `0.bias`, `2.weight`, ...
fn torch_keys<A: Activation>(net: &Layered<A>) -> Vec<(String, String)> {
    (0..net.weights().len())
        .map(|l| (format!("{}.weight", 2 * l), format!("{}.bias", 2 * l)))
        .collect()
}

/// A layered network as a `.safetensors` file of F64 tensors with the keys of a PyTorch
/// `nn.Sequential(Linear, Tanh, Linear, Tanh, ...)` (`0.weight`, `0.bias`, `2.weight`, ...),
/// so that `model.load_state_dict(safetensors.torch.load_file(path))` takes it (after
/// `model.double()`). Activations are not stored.
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
    write_safetensors(tensors)
}

/// A layered network as an `.npz` archive (stored `.npy` entries, little-endian f8) with the
/// same keys as [`safetensors_bytes`]; `numpy.load` reads it.
pub fn npz_bytes<A: Activation>(net: &Layered<A>) -> Vec<u8> {
    let keys = torch_keys(net);
    let mut entries = Vec::with_capacity(2 * keys.len());
    for ((wk, bk), (w, b)) in keys.iter().zip(net.weights().iter().zip(net.biases())) {
        entries.push((format!("{wk}.npy"), write_npy(w.view().into_dyn())));
        entries.push((format!("{bk}.npy"), write_npy(b.view().into_dyn())));
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

    #[test]
    fn keys_split_into_prefix_index_and_kind() {
        assert_eq!(split_key("0.weight").unwrap(), ("", 0, true));
        assert_eq!(split_key("net.12.bias").unwrap(), ("net.", 12, false));
        assert_eq!(split_key("a.b.4.weight").unwrap(), ("a.b.", 4, true));
        for bad in [
            "weight",
            "x.weight",
            "0.running_mean",
            "-1.bias",
            "0.",
            ".weight",
        ] {
            assert!(
                matches!(split_key(bad), Err(IoError::UnexpectedTensor { .. })),
                "{bad}"
            );
        }
    }

    fn t(a: ArrayD<f64>) -> ArrayD<f64> {
        a
    }

    #[test]
    fn index_rules() {
        let w = |r, c| t(Array2::<f64>::zeros((r, c)).into_dyn());
        let b = |r| t(Array1::<f64>::zeros(r).into_dyn());
        let mut m = BTreeMap::new();
        m.insert("0.weight".to_string(), w(3, 2));
        m.insert("0.bias".to_string(), b(3));
        m.insert("3.weight".to_string(), w(1, 3));
        m.insert("3.bias".to_string(), b(1));
        // Stride 3 (Linear, Tanh, Dropout, Linear) is even spacing.
        let net = layered_from_tensors(m.clone(), &Activations::default()).unwrap();
        assert_eq!(net.layer_sizes(), &[2, 3, 1]);
        m.insert("9.weight".to_string(), w(1, 1));
        m.insert("9.bias".to_string(), b(1));
        assert!(matches!(
            layered_from_tensors(m, &Activations::default()),
            Err(IoError::IndexGap { stride: 3, .. })
        ));
        let mut m = BTreeMap::new();
        m.insert("1.weight".to_string(), w(3, 2));
        m.insert("1.bias".to_string(), b(3));
        assert!(matches!(
            layered_from_tensors(m, &Activations::default()),
            Err(IoError::IndexGap { .. })
        ));
    }

    #[test]
    fn activations_choice() {
        let mut m = BTreeMap::new();
        m.insert("0.weight".to_string(), array![[1.0, 2.0]].into_dyn());
        m.insert("0.bias".to_string(), array![0.5].into_dyn());
        let tanh = layered_from_tensors(m.clone(), &Activations::default()).unwrap();
        assert_eq!(tanh.activations(), &[Builtin::Tanh]);
        let relu = layered_from_tensors(m.clone(), &Activations::All(Builtin::Relu)).unwrap();
        assert_eq!(relu.activations(), &[Builtin::Relu]);
        assert!(matches!(
            layered_from_tensors(m, &Activations::PerLayer(vec![])),
            Err(IoError::Core(_))
        ));
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
