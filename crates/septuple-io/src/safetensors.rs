//! The `safetensors` format: an 8-byte little-endian header length N, N bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [4, 5], "data_offsets": [begin, end]}, ...,
//! "__metadata__": {...}}`), then the byte buffer the offsets point into.
//!
//! Read and written with HuggingFace's `safetensors` crate, the format's reference
//! implementation. Before the crate sees a file, its header is checked here once more, with
//! checked arithmetic against the bytes present: `safetensors` 0.8 adds the claimed offsets
//! to the header length unchecked (an overflow on crafted offsets near 2^64), and it keeps
//! the tensors in a hash map, so the order of the keys in the file, which layer order may
//! fall back on, is read here too.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use safetensors::{Dtype, SafeTensors, View};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::IoError;
use crate::npy::{checked_size, FloatType, SaveDtype};

const WHAT: &str = "safetensors file";

/// The largest header the `safetensors` crate reads (its `MAX_HEADER_SIZE`).
const MAX_HEADER: u64 = 100_000_000;

/// The tensors of a file in the order of their keys in its header, and its `__metadata__`.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorFile {
    /// Each tensor's key, values (converted exactly to f64) and stored type, in header order.
    pub tensors: Vec<(String, ArrayD<f64>, FloatType)>,
    /// The string-to-string `__metadata__` map (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Info {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// A JSON object's entries in the order they appear in the text.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Ordered, M::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = m.next_entry::<String, serde_json::Value>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(V)
    }
}

fn float_type(key: &str, dtype: &str) -> Result<FloatType, IoError> {
    match dtype {
        "F64" => Ok(FloatType::F64),
        "F32" => Ok(FloatType::F32),
        "F16" => Ok(FloatType::F16),
        "BF16" => Ok(FloatType::Bf16),
        _ => Err(IoError::unsupported(
            format!("{WHAT}, tensor {key:?}"),
            format!("dtype {dtype}; only F64, F32, F16 and BF16 are read"),
        )),
    }
}

fn crate_error(e: safetensors::SafeTensorError) -> IoError {
    IoError::header(WHAT, e.to_string())
}

/// Read every tensor of a `.safetensors` file as an f64 array (F64, F32, F16 and BF16 are
/// converted exactly), keyed by name. See [`read_safetensors`] for the checks.
pub fn parse_safetensors(bytes: &[u8]) -> Result<BTreeMap<String, ArrayD<f64>>, IoError> {
    Ok(read_safetensors(bytes)?
        .tensors
        .into_iter()
        .map(|(k, a, _)| (k, a))
        .collect())
}

/// Read a `.safetensors` file: its tensors in header order and its metadata.
///
/// Checked before anything is allocated for the data: the header length against the file,
/// each tensor's byte range against its dtype and shape and against the buffer, with no
/// arithmetic that can overflow; the tensors must tile the buffer exactly (no gaps, overlaps
/// or trailing bytes), as the format requires; keys are unique; `__metadata__` maps strings
/// to strings.
pub fn read_safetensors(bytes: &[u8]) -> Result<TensorFile, IoError> {
    let (n, entries) = header_entries(bytes)?;
    let buffer_len = bytes.len() as u64 - 8 - n;
    let mut metadata = BTreeMap::new();
    let mut infos: Vec<(String, Info, FloatType)> = Vec::with_capacity(entries.len());
    let mut seen = std::collections::HashSet::new();
    for (key, value) in entries {
        if !seen.insert(key.clone()) {
            return Err(IoError::header(
                WHAT,
                format!("key {key:?} appears twice in the header"),
            ));
        }
        if key == "__metadata__" {
            let map: BTreeMap<String, String> = serde_json::from_value(value)
                .map_err(|_| IoError::header(WHAT, "__metadata__ must map strings to strings"))?;
            metadata = map;
            continue;
        }
        let (info, ty) = checked_info(&key, value, n, buffer_len, bytes.len() as u64)?;
        infos.push((key, info, ty));
    }
    check_tiling(&infos, n, buffer_len)?;
    // Every claim is now known to be true; the reference implementation reads the file.
    let file = SafeTensors::deserialize(bytes).map_err(crate_error)?;
    let mut tensors = Vec::with_capacity(infos.len());
    for (key, info, ty) in infos {
        let array = decode(&file, &key, &info, ty)?;
        tensors.push((key, array, ty));
    }
    Ok(TensorFile { tensors, metadata })
}

/// The header length n (checked against the bytes present and [`MAX_HEADER`]) and the
/// header's entries in file order.
fn header_entries(bytes: &[u8]) -> Result<(u64, Vec<(String, serde_json::Value)>), IoError> {
    if bytes.len() < 8 {
        return Err(IoError::truncated(
            format!("{WHAT} header length"),
            8,
            bytes.len() as u64,
        ));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    let n = u64::from_le_bytes(n);
    let available = bytes.len() as u64 - 8;
    if n > available {
        return Err(IoError::truncated(
            format!("{WHAT} header"),
            n.saturating_add(8),
            bytes.len() as u64,
        ));
    }
    if n > MAX_HEADER {
        return Err(IoError::TooLarge {
            what: format!("{WHAT} header"),
            claimed: n,
            limit: MAX_HEADER,
        });
    }
    // n <= bytes.len() - 8.
    let header = &bytes[8..8 + n as usize];
    let Ordered(entries) = serde_json::from_slice(header).map_err(|source| IoError::Json {
        what: format!("{WHAT} header"),
        source,
    })?;
    Ok((n, entries))
}

/// One tensor's header entry, its dtype known and its byte range consistent with its shape
/// and inside the buffer of `buffer_len` bytes (the file has `file_len` bytes, n of header).
fn checked_info(
    key: &str,
    value: serde_json::Value,
    n: u64,
    buffer_len: u64,
    file_len: u64,
) -> Result<(Info, FloatType), IoError> {
    let info: Info = serde_json::from_value(value).map_err(|source| IoError::Json {
        what: format!("{WHAT} header, tensor {key:?}"),
        source,
    })?;
    let ty = float_type(key, &info.dtype)?;
    let (_, nbytes) = checked_size(&format!("{WHAT}, tensor {key:?}"), &info.shape, ty.width())?;
    let [begin, end] = info.data_offsets;
    if begin > end || end - begin != nbytes {
        return Err(IoError::header(
                WHAT,
                format!(
                    "tensor {key:?} of dtype {} and shape {:?} needs {nbytes} bytes, but its data_offsets are [{begin}, {end}]",
                    info.dtype, info.shape
                ),
            ));
    }
    if end > buffer_len {
        return Err(IoError::truncated(
            format!("{WHAT}, tensor {key:?}"),
            end.saturating_add(8).saturating_add(n),
            file_len,
        ));
    }
    Ok((info, ty))
}

/// The tensors must tile the buffer after the header, without gaps or overlaps.
fn check_tiling(
    infos: &[(String, Info, FloatType)],
    n: u64,
    buffer_len: u64,
) -> Result<(), IoError> {
    let mut by_offset: Vec<&(String, Info, FloatType)> = infos.iter().collect();
    by_offset.sort_by_key(|(_, info, _)| info.data_offsets);
    let mut covered = 0u64;
    for (key, info, _) in by_offset {
        if info.data_offsets[0] != covered {
            return Err(IoError::header(
                WHAT,
                format!(
                    "tensor {key:?} starts at byte {} of the buffer, expected {covered}: tensors must tile the buffer without gaps or overlaps",
                    info.data_offsets[0]
                ),
            ));
        }
        covered = info.data_offsets[1];
    }
    if covered != buffer_len {
        return Err(IoError::TrailingData {
            what: format!("{WHAT} buffer"),
            expected: 8 + n + covered,
            extra: buffer_len - covered,
        });
    }
    Ok(())
}

/// The values of tensor `key`, read by the reference implementation, as f64 (exactly).
fn decode(
    file: &SafeTensors<'_>,
    key: &str,
    info: &Info,
    ty: FloatType,
) -> Result<ArrayD<f64>, IoError> {
    let view = file.tensor(key).map_err(crate_error)?;
    let expected = match ty {
        FloatType::F64 => Dtype::F64,
        FloatType::F32 => Dtype::F32,
        FloatType::F16 => Dtype::F16,
        FloatType::Bf16 => Dtype::BF16,
    };
    if view.dtype() != expected {
        return Err(IoError::header(
            WHAT,
            format!(
                "tensor {key:?}: dtype {:?} read, {} declared",
                view.dtype(),
                info.dtype
            ),
        ));
    }
    let data = view.data();
    // Every F16, BF16 and F32 value is an f64 value: the conversions are exact.
    let values: Vec<f64> = match ty {
        FloatType::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        FloatType::F32 => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        FloatType::F16 => data
            .chunks_exact(2)
            .map(|c| f64::from(half::f16::from_le_bytes([c[0], c[1]])))
            .collect(),
        FloatType::Bf16 => data
            .chunks_exact(2)
            .map(|c| f64::from(half::bf16::from_le_bytes([c[0], c[1]])))
            .collect(),
    };
    let dims: Vec<usize> = view.shape().to_vec();
    ArrayD::from_shape_vec(IxDyn(&dims), values)
        .map_err(|e| IoError::header(WHAT, format!("tensor {key:?}: {e}")))
}

/// One tensor's bytes, ready for `safetensors::serialize`.
struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn encode(t: ArrayViewD<'_, f64>, dtype: SaveDtype) -> Encoded {
    let mut data = Vec::with_capacity(t.len() * dtype.width());
    match dtype {
        SaveDtype::F64 => t
            .iter()
            .for_each(|v| data.extend_from_slice(&v.to_le_bytes())),
        SaveDtype::F32 => t
            .iter()
            .for_each(|&v| data.extend_from_slice(&(v as f32).to_le_bytes())),
    }
    Encoded {
        dtype: match dtype {
            SaveDtype::F64 => Dtype::F64,
            SaveDtype::F32 => Dtype::F32,
        },
        shape: t.shape().to_vec(),
        data,
    }
}

/// Write tensors as a `.safetensors` file of F64 tensors, through the `safetensors` crate
/// (which orders the buffer by dtype and key and pads the header to 8 bytes).
pub fn write_safetensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, ArrayViewD<'a, f64>)>,
) -> Vec<u8> {
    write_safetensors_as(tensors, SaveDtype::F64, &BTreeMap::new())
        .expect("a header of a few tensor names stays below the format's 100 MB limit")
}

/// Write tensors in the given float type with a `__metadata__` map (omitted when empty).
pub(crate) fn write_safetensors_as<'a>(
    tensors: impl IntoIterator<Item = (&'a str, ArrayViewD<'a, f64>)>,
    dtype: SaveDtype,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, IoError> {
    let encoded: Vec<(String, Encoded)> = tensors
        .into_iter()
        .map(|(k, t)| (k.to_string(), encode(t, dtype)))
        .collect();
    let info: Option<HashMap<String, String>> = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    safetensors::serialize(encoded.iter().map(|(k, e)| (k.as_str(), e)), info)
        .map_err(|e| IoError::header(WHAT, format!("cannot write: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trip() {
        let a = array![[1.0, 2.0], [3.0, -4.5]].into_dyn();
        let b = array![0.25].into_dyn();
        let bytes = write_safetensors([("w", a.view()), ("b", b.view())]);
        let back = parse_safetensors(&bytes).unwrap();
        assert_eq!(back["w"], a);
        assert_eq!(back["b"], b);
        let mut meta = BTreeMap::new();
        meta.insert("k".to_string(), "v".to_string());
        let bytes = write_safetensors_as([("w", a.view())], SaveDtype::F32, &meta).unwrap();
        let back = read_safetensors(&bytes).unwrap();
        assert_eq!(back.metadata, meta);
        assert_eq!(back.tensors[0].2, FloatType::F32);
    }

    fn file(header: &str, buffer: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(buffer);
        v
    }

    #[test]
    fn header_order_is_kept() {
        let buf = [0u8; 24];
        let f = file(
            r#"{"z":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
            &buf,
        );
        let keys: Vec<String> = read_safetensors(&f)
            .unwrap()
            .tensors
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn inconsistent_headers_are_typed_errors() {
        let buf = [0u8; 16];
        let ok = file(
            r#"{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
            &buf,
        );
        assert!(parse_safetensors(&ok).is_ok());
        type Check = fn(&Result<BTreeMap<String, ArrayD<f64>>, IoError>) -> bool;
        let cases: [(&str, &str, Check); 11] = [
            (
                "size disagrees with dtype and shape",
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
            (
                "hole before the data",
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
            (
                "data past the end",
                r#"{"a":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}"#,
                |r| matches!(r, Err(IoError::Truncated { .. })),
            ),
            (
                "shape overflows",
                r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
                |r| matches!(r, Err(IoError::TooLarge { .. })),
            ),
            (
                "integer dtype",
                r#"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#,
                |r| matches!(r, Err(IoError::Unsupported { .. })),
            ),
            (
                "bytes after the last tensor",
                r#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#,
                |r| matches!(r, Err(IoError::TrailingData { extra: 8, .. })),
            ),
            (
                "a key twice",
                r#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
            (
                "metadata not strings",
                r#"{"__metadata__":{"x":1},"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
            (
                // Offsets near 2^64: the subtraction and every sum in the messages are checked.
                "offsets near 2^64",
                r#"{"a":{"dtype":"F64","shape":[2],"data_offsets":[18446744073709551600,18446744073709551615]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
            (
                "an end of 2^64 - 1 that matches the size",
                r#"{"a":{"dtype":"F64","shape":[1],"data_offsets":[18446744073709551607,18446744073709551615]}}"#,
                |r| {
                    matches!(
                        r,
                        Err(IoError::Truncated {
                            needed: u64::MAX,
                            ..
                        })
                    )
                },
            ),
            (
                "begin after end",
                r#"{"a":{"dtype":"F64","shape":[0],"data_offsets":[18446744073709551615,0]}}"#,
                |r| matches!(r, Err(IoError::Header { .. })),
            ),
        ];
        for (what, header, check) in cases {
            let result = parse_safetensors(&file(header, &buf));
            assert!(check(&result), "{what}: {result:?}");
            // Messages format without overflow.
            if let Err(e) = result {
                assert!(!e.to_string().is_empty());
            }
        }
        let not_json = file("{nope", &buf);
        assert!(matches!(
            parse_safetensors(&not_json),
            Err(IoError::Json { .. })
        ));
        let mut claims_more = ok.clone();
        claims_more[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            parse_safetensors(&claims_more),
            Err(IoError::Truncated {
                needed: u64::MAX,
                ..
            })
        ));
    }
}
