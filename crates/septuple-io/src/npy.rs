//! numpy's `.npy` array format (versions 1.0, 2.0 and 3.0), floating-point arrays only.
//!
//! Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length (u16 for
//! version 1, u32 for versions 2 and 3, little endian), a Python dict literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a newline,
//! then the raw items.
//!
//! The header and the items are decoded by the `npyz` crate, chosen over `ndarray-npy`
//! because it reads all three float widths this crate needs, `f2` (through `half`), `f4` and
//! `f8`, in either byte order, and reports C or Fortran order for us to lay out (ndarray-npy
//! has no `f2`). npyz trusts the header: it multiplies the shape without overflow checks,
//! allocates the header length and sizes its output by the claimed shape before reading. So
//! the preamble, the header length and the shape (parsed with `py_literal`, the parser npyz
//! itself uses) are checked here against the bytes present first, with checked arithmetic,
//! and npyz only ever sees an input whose claims are true.

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};
use npyz::{DType, Order, TypeChar, WriterBuilder};

use crate::error::{hex, IoError};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The floating-point type a file stores its values in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FloatType {
    /// IEEE 754 binary16 (numpy `f2`, safetensors `F16`).
    F16,
    /// bfloat16: the upper half of an f32 (safetensors `BF16`).
    Bf16,
    /// IEEE 754 binary32 (numpy `f4`, safetensors `F32`).
    F32,
    /// IEEE 754 binary64 (numpy `f8`, safetensors `F64`).
    F64,
}

impl FloatType {
    /// Bytes per value.
    pub fn width(self) -> usize {
        match self {
            FloatType::F16 | FloatType::Bf16 => 2,
            FloatType::F32 => 4,
            FloatType::F64 => 8,
        }
    }
}

/// The floating-point type a network is saved in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SaveDtype {
    /// IEEE 754 binary32: every value rounded to the nearest f32 (PyTorch's default dtype).
    F32,
    /// IEEE 754 binary64: exact.
    #[default]
    F64,
}

impl SaveDtype {
    /// Bytes per value.
    pub fn width(self) -> usize {
        match self {
            SaveDtype::F32 => 4,
            SaveDtype::F64 => 8,
        }
    }
}

/// The number of items of a shape and their size in bytes, or an error on overflow. Zero
/// extents are skipped in the product first, so no partial product of any order overflows
/// either (npyz computes strides from both ends).
pub(crate) fn checked_size(
    what: &str,
    shape: &[u64],
    width: usize,
) -> Result<(usize, u64), IoError> {
    let too_large = || IoError::TooLarge {
        what: what.to_string(),
        claimed: u64::MAX,
        limit: isize::MAX as u64,
    };
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    nonzero.checked_mul(width as u64).ok_or_else(too_large)?;
    if nonzero > isize::MAX as u64 / 8 {
        return Err(too_large());
    }
    let n = if shape.contains(&0) { 0 } else { nonzero };
    // n * width <= nonzero * width, checked above.
    Ok((n as usize, n * width as u64))
}

/// The preamble: header length and where the header starts.
fn preamble(what: &str, bytes: &[u8]) -> Result<(usize, usize), IoError> {
    if bytes.len() < 10 {
        return Err(IoError::truncated(
            format!("{what} preamble"),
            10,
            bytes.len() as u64,
        ));
    }
    if &bytes[..6] != MAGIC {
        return Err(IoError::BadMagic {
            what: what.to_string(),
            found: hex(&bytes[..6]),
            expected: "\\x93NUMPY (0x934e554d5059)".into(),
        });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u64::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10u64),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(IoError::truncated(
                    format!("{what} preamble"),
                    12,
                    bytes.len() as u64,
                ));
            }
            (
                u64::from(u32::from_le_bytes([
                    bytes[8], bytes[9], bytes[10], bytes[11],
                ])),
                12u64,
            )
        }
        _ => {
            return Err(IoError::unsupported(
                what,
                format!("npy format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are read"),
            ))
        }
    };
    // header_len < 2^32, start <= 12: no overflow in u64.
    let data_start = start + header_len;
    if data_start > bytes.len() as u64 {
        return Err(IoError::truncated(
            format!("{what} header"),
            data_start,
            bytes.len() as u64,
        ));
    }
    Ok((start as usize, data_start as usize))
}

/// The shape from the header text, parsed with `py_literal` and converted without overflow.
fn header_shape(what: &str, header: &[u8]) -> Result<Vec<u64>, IoError> {
    use py_literal::Value;
    let text = std::str::from_utf8(header)
        .map_err(|_| IoError::header(what, "the header is not UTF-8"))?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let value: Value = text
        .trim_end()
        .parse()
        .map_err(|e: py_literal::ParseError| {
            IoError::header(what, format!("not a Python dict literal: {e}"))
        })?;
    let Value::Dict(items) = value else {
        return Err(IoError::header(
            what,
            "expected a dict {'descr': ..., 'fortran_order': ..., 'shape': ...}",
        ));
    };
    let mut shape = None;
    for (key, value) in &items {
        let Value::String(key) = key else {
            return Err(IoError::header(
                what,
                "a key of the header dict is not a string",
            ));
        };
        if !matches!(key.as_str(), "descr" | "fortran_order" | "shape") {
            return Err(IoError::header(
                what,
                format!(
                    "unexpected key '{key}'; expected exactly 'descr', 'fortran_order', 'shape'"
                ),
            ));
        }
        if key == "shape" {
            if shape.is_some() {
                return Err(IoError::header(what, "key 'shape' appears twice"));
            }
            let Value::Tuple(dims) = value else {
                return Err(IoError::header(
                    what,
                    format!("'shape' is {value}, expected a tuple of non-negative integers"),
                ));
            };
            let dims = dims
                .iter()
                .map(|d| match d {
                    Value::Integer(i) => i.to_string().parse::<u64>().map_err(|_| {
                        IoError::header(
                            what,
                            format!("dimension {i} is not a non-negative integer below 2^64"),
                        )
                    }),
                    other => Err(IoError::header(
                        what,
                        format!("dimension {other} is not an integer"),
                    )),
                })
                .collect::<Result<Vec<u64>, IoError>>()?;
            shape = Some(dims);
        }
    }
    shape.ok_or_else(|| IoError::header(what, "the header has no 'shape'"))
}

fn float_type(what: &str, dtype: &DType) -> Result<FloatType, IoError> {
    if let DType::Plain(ts) = dtype {
        if ts.type_char() == TypeChar::Float {
            match ts.size_field() {
                2 => return Ok(FloatType::F16),
                4 => return Ok(FloatType::F32),
                8 => return Ok(FloatType::F64),
                _ => {}
            }
        }
    }
    Err(IoError::unsupported(
        what,
        format!(
            "dtype {}; only floating-point arrays ('<f2', '>f2', '<f4', '>f4', '<f8', '>f8') are read",
            dtype.descr()
        ),
    ))
}

fn npyz_error(what: &str, e: impl std::fmt::Display) -> IoError {
    IoError::header(what, e.to_string())
}

/// An array read from a `.npy` file, with the type it was stored in.
pub(crate) struct NpyArray {
    pub(crate) array: ArrayD<f64>,
    pub(crate) stored: FloatType,
}

/// Read one `.npy` array of floats (`f8`, `f4` or `f2`, either byte order, C or Fortran order)
/// into an f64 array of the stored shape. The data must fill the file exactly.
pub fn parse_npy(bytes: &[u8]) -> Result<ArrayD<f64>, IoError> {
    Ok(read_npy("npy array", bytes)?.array)
}

pub(crate) fn read_npy(what: &str, bytes: &[u8]) -> Result<NpyArray, IoError> {
    let (start, data_start) = preamble(what, bytes)?;
    let shape = header_shape(what, &bytes[start..data_start])?;
    // Checked before npyz multiplies the shape or sizes anything by it.
    let width_max = 8;
    checked_size(what, &shape, width_max)?;
    let file = npyz::NpyFile::new(bytes).map_err(|e| npyz_error(what, e))?;
    let header = file.header();
    let stored = float_type(what, &header.dtype())?;
    let (n, nbytes) = checked_size(what, &shape, stored.width())?;
    let body = bytes.len() - data_start;
    let needed = data_start as u64 + nbytes;
    if (body as u64) < nbytes {
        return Err(IoError::truncated(
            format!("{what} data"),
            needed,
            bytes.len() as u64,
        ));
    }
    if (body as u64) > nbytes {
        return Err(IoError::TrailingData {
            what: what.to_string(),
            expected: needed,
            extra: body as u64 - nbytes,
        });
    }
    let fortran = header.order() == Order::Fortran;
    let read_err = |e: std::io::Error| npyz_error(what, e);
    // Every f16 and f32 value is an f64 value: the conversions are exact.
    let values: Vec<f64> = match stored {
        FloatType::F64 => file.into_vec::<f64>().map_err(read_err)?,
        FloatType::F32 => file
            .into_vec::<f32>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
        _ => file
            .into_vec::<half::f16>()
            .map_err(read_err)?
            .into_iter()
            .map(f64::from)
            .collect(),
    };
    if values.len() != n {
        return Err(IoError::header(
            what,
            format!("{} values decoded, expected {n}", values.len()),
        ));
    }
    // Each extent fits in usize: their nonzero product does (checked_size).
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let array = if fortran {
        ArrayD::from_shape_vec(IxDyn(&dims).f(), values)
    } else {
        ArrayD::from_shape_vec(IxDyn(&dims), values)
    };
    let array = array.map_err(|e| IoError::header(what, e.to_string()))?;
    Ok(NpyArray { array, stored })
}

/// Write an array as a `.npy` file of little-endian `f8`, C order (through npyz; the header
/// is padded so the data starts at a multiple of 64 bytes, as numpy writes it).
pub fn write_npy(array: ArrayViewD<'_, f64>) -> Vec<u8> {
    write_npy_as(array, SaveDtype::F64)
}

/// Write an array as a `.npy` file of little-endian `f8`, or `f4` (each value rounded to the
/// nearest f32), C order.
pub(crate) fn write_npy_as(array: ArrayViewD<'_, f64>, dtype: SaveDtype) -> Vec<u8> {
    let shape: Vec<u64> = array.shape().iter().map(|&d| d as u64).collect();
    let mut out = Vec::with_capacity(128 + dtype.width() * array.len());
    // Writing into a Vec cannot fail, and the dtype matches the element type written.
    let result = if dtype == SaveDtype::F64 {
        npyz::WriteOptions::<f64>::new()
            .dtype(DType::Plain("<f8".parse().expect("a valid type string")))
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()
            .and_then(|mut w| {
                w.extend(array.iter().copied())?;
                w.finish()
            })
    } else {
        npyz::WriteOptions::<f32>::new()
            .dtype(DType::Plain("<f4".parse().expect("a valid type string")))
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()
            .and_then(|mut w| {
                w.extend(array.iter().map(|&v| v as f32))?;
                w.finish()
            })
    };
    result.expect("writing an npy array into memory cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn round_trip_and_header_alignment() {
        let a = array![[1.5, -2.0, 3.25], [0.0, 1e-300, -7.0]].into_dyn();
        let bytes = write_npy(a.view());
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert_eq!(parse_npy(&bytes).unwrap(), a);
        let f32s = write_npy_as(a.view(), SaveDtype::F32);
        let back = read_npy("x", &f32s).unwrap();
        assert_eq!(back.stored, FloatType::F32);
        assert_eq!(back.array, a.mapv(|v| f64::from(v as f32)));
    }

    #[test]
    fn f16_values_are_exact() {
        for (bits, value) in [
            (0x3c00u16, 1.0),
            (0xc000, -2.0),
            (0x7bff, 65504.0),
            (0x0001, 2f64.powi(-24)),
            (0x3555, 0.333_251_953_125),
        ] {
            assert_eq!(f64::from(half::f16::from_bits(bits)), value);
        }
        assert!(f64::from(half::f16::from_bits(0x7c00)).is_infinite());
        assert!(f64::from(half::f16::from_bits(0x7e00)).is_nan());
    }

    fn swap(good: &[u8], from: &str, to: &str) -> Vec<u8> {
        let header_len = u16::from_le_bytes([good[8], good[9]]) as usize;
        let head = String::from_utf8(good[10..10 + header_len].to_vec()).unwrap();
        let mut b = good[..10].to_vec();
        let head = head.replace(from, to);
        b.extend_from_slice(head.as_bytes());
        b.extend_from_slice(&good[10 + header_len..]);
        // Keep the declared header length consistent when the replacement changes it.
        b[8..10].copy_from_slice(&(head.len() as u16).to_le_bytes());
        b
    }

    #[test]
    fn header_errors_are_typed() {
        let good = write_npy(array![1.0, 2.0].into_dyn().view());
        assert!(matches!(
            parse_npy(&swap(&good, "'<f8'", "'<i8'")),
            Err(IoError::Unsupported { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "'<f8'", "'|O'")),
            Err(IoError::Unsupported { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "False", "Maybe")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "'shape'", "'shap'")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "(2, )", "(3,)")),
            Err(IoError::Truncated { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "(2, )", "(1,)")),
            Err(IoError::TrailingData { extra: 8, .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "(2, )", "(-2,)")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap(&good, "(2, )", "(99999999999, 99999999999)")),
            Err(IoError::TooLarge { .. })
        ));
        // Partial products that overflow in either direction, around a zero extent.
        for shape in [
            "(4294967296, 4294967296, 0)",
            "(0, 4294967296, 4294967296)",
            "(18446744073709551615, 2)",
            "(18446744073709551616,)",
        ] {
            let r = parse_npy(&swap(&good, "(2, )", shape));
            assert!(
                matches!(r, Err(IoError::TooLarge { .. } | IoError::Header { .. })),
                "{shape}: {r:?}"
            );
        }
        let mut long_header = good.clone();
        long_header[8..10].copy_from_slice(&60000u16.to_le_bytes());
        assert!(matches!(
            parse_npy(&long_header),
            Err(IoError::Truncated { needed: 60010, .. })
        ));
        // Version 2 with a 4 GiB header length in a 130-byte file.
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend_from_slice(&u32::MAX.to_le_bytes());
        v2.extend_from_slice(&good[10..]);
        assert!(matches!(parse_npy(&v2), Err(IoError::Truncated { .. })));
    }

    #[test]
    fn empty_arrays_read() {
        let good = write_npy(array![1.0, 2.0].into_dyn().view());
        let mut b = swap(&good, "(2, )", "(0, 3)");
        b.truncate(b.len() - 16);
        assert_eq!(parse_npy(&b).unwrap().shape(), &[0, 3]);
    }
}
