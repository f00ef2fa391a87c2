//! The `safetensors` format: an 8-byte little-endian header length N, N bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [4, 5], "data_offsets": [begin, end]}, ...,
//! "__metadata__": {...}}`), then the byte buffer the offsets point into.

use std::collections::BTreeMap;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::Deserialize;

use crate::error::IoError;
use crate::npy::{checked_size, decode_floats};

const WHAT: &str = "safetensors file";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Info {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

fn width(key: &str, dtype: &str) -> Result<usize, IoError> {
    match dtype {
        "F64" => Ok(8),
        "F32" => Ok(4),
        "F16" | "BF16" => Ok(2),
        _ => Err(IoError::unsupported(
            format!("{WHAT}, tensor {key:?}"),
            format!("dtype {dtype}; only F64, F32, F16 and BF16 are read"),
        )),
    }
}

/// Read every tensor of a `.safetensors` file as an f64 array (F64, F32, F16 and BF16 are
/// converted exactly), keyed by name.
///
/// Checked before anything is allocated for the data: the header length against the file,
/// each tensor's byte range against its dtype and shape and against the buffer; the tensors
/// must tile the buffer exactly (no gaps, overlaps or trailing bytes), as the format requires.
pub fn parse_safetensors(bytes: &[u8]) -> Result<BTreeMap<String, ArrayD<f64>>, IoError> {
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
    let header = &bytes[8..8 + n as usize];
    let buffer = &bytes[8 + n as usize..];
    let raw: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|source| IoError::Json {
            what: format!("{WHAT} header"),
            source,
        })?;
    let mut infos = Vec::with_capacity(raw.len());
    for (key, value) in raw {
        if key == "__metadata__" {
            let ok = value
                .as_object()
                .is_some_and(|m| m.values().all(serde_json::Value::is_string));
            if !ok {
                return Err(IoError::header(
                    WHAT,
                    "__metadata__ must map strings to strings",
                ));
            }
            continue;
        }
        let info: Info = serde_json::from_value(value).map_err(|source| IoError::Json {
            what: format!("{WHAT} header, tensor {key:?}"),
            source,
        })?;
        let w = width(&key, &info.dtype)?;
        let (_, nbytes) = checked_size(&format!("{WHAT}, tensor {key:?}"), &info.shape, w)?;
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
        if end > buffer.len() as u64 {
            return Err(IoError::truncated(
                format!("{WHAT}, tensor {key:?}"),
                8 + n + end,
                bytes.len() as u64,
            ));
        }
        infos.push((key, info, w));
    }
    infos.sort_by_key(|(_, info, _)| info.data_offsets);
    let mut covered = 0u64;
    for (key, info, _) in &infos {
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
    if covered != buffer.len() as u64 {
        return Err(IoError::TrailingData {
            what: format!("{WHAT} buffer"),
            expected: 8 + n + covered,
            extra: buffer.len() as u64 - covered,
        });
    }
    let mut out = BTreeMap::new();
    for (key, info, w) in infos {
        let data = &buffer[info.data_offsets[0] as usize..info.data_offsets[1] as usize];
        let values = if info.dtype == "BF16" {
            data.chunks_exact(2)
                .map(|c| {
                    f64::from(f32::from_bits(
                        u32::from(u16::from_le_bytes([c[0], c[1]])) << 16,
                    ))
                })
                .collect()
        } else {
            decode_floats(data, w, false)
        };
        let dims: Vec<usize> = info.shape.iter().map(|&d| d as usize).collect();
        let array = ArrayD::from_shape_vec(IxDyn(&dims), values)
            .map_err(|e| IoError::header(WHAT, format!("tensor {key:?}: {e}")))?;
        out.insert(key, array);
    }
    Ok(out)
}

/// Write tensors as a `.safetensors` file of F64 tensors, in the order given (the header
/// padded with spaces to a multiple of 8 bytes, as the `safetensors` package writes it).
pub fn write_safetensors<'a>(
    tensors: impl IntoIterator<Item = (&'a str, ArrayViewD<'a, f64>)>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut buffer = Vec::new();
    for (key, t) in tensors {
        let begin = buffer.len();
        for &v in t.iter() {
            buffer.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            key.to_string(),
            serde_json::json!({
                "dtype": "F64",
                "shape": t.shape(),
                "data_offsets": [begin, buffer.len()],
            }),
        );
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + text.len() + buffer.len());
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    out.extend_from_slice(&buffer);
    out
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
    }

    fn file(header: &str, buffer: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(buffer);
        v
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
        let cases: [(&str, &str, Check); 6] = [
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
        ];
        for (what, header, check) in cases {
            let result = parse_safetensors(&file(header, &buf));
            assert!(check(&result), "{what}: {result:?}");
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
            Err(IoError::Truncated { .. })
        ));
    }
}
