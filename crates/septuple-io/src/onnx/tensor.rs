//! Constant tensors of an ONNX model (initializers and `Constant` nodes), read with the sizes
//! their dims claim checked against the bytes present before anything is allocated.

use super::proto::{tensor_proto::DataLocation, TensorProto};
use crate::error::IoError;

/// The element types of `TensorProto.data_type` this importer reads.
const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;

/// A constant tensor: its shape and its values, floats converted to f64 exactly, integers
/// (shapes for `Reshape`) kept as i64.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Constant {
    pub shape: Vec<usize>,
    pub values: Values,
}

/// The values of a [`Constant`], row-major.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

impl Constant {
    /// The values as floats (integers converted); `what` names the tensor in errors.
    pub fn floats(&self, what: &str) -> Result<Vec<f64>, IoError> {
        match &self.values {
            Values::Float(v) => Ok(v.clone()),
            Values::Int(_) => Err(IoError::OnnxGraph {
                what: what.to_string(),
                reason: "an integer tensor; expected float32 or float64 weights".into(),
            }),
        }
    }

    /// The values as integers (for shapes); `what` names the tensor in errors.
    pub fn ints(&self, what: &str) -> Result<Vec<i64>, IoError> {
        match &self.values {
            Values::Int(v) => Ok(v.clone()),
            Values::Float(_) => Err(IoError::OnnxGraph {
                what: what.to_string(),
                reason: "a float tensor; expected an int64 shape".into(),
            }),
        }
    }
}

/// The dims of a tensor as sizes, and their product, checked for overflow.
pub(crate) fn checked_dims(what: &str, dims: &[i64]) -> Result<(Vec<usize>, usize), IoError> {
    let mut shape = Vec::with_capacity(dims.len());
    let mut count: usize = 1;
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| IoError::OnnxGraph {
            what: what.to_string(),
            reason: format!("dims {dims:?} hold a negative size; expected sizes >= 0"),
        })?;
        count = count.checked_mul(d).ok_or_else(|| IoError::TooLarge {
            what: what.to_string(),
            claimed: u64::MAX,
            limit: isize::MAX as u64,
        })?;
        shape.push(d);
    }
    Ok((shape, count))
}

fn type_name(data_type: i32) -> String {
    match data_type {
        FLOAT => "float32".into(),
        DOUBLE => "float64".into(),
        FLOAT16 => "float16".into(),
        INT64 => "int64".into(),
        INT32 => "int32".into(),
        other => format!("data type {other}"),
    }
}

/// Read a `TensorProto` into a [`Constant`]: float32, float64 or float16 from `raw_data`
/// (little-endian, as the format prescribes) or from `float_data` / `double_data` /
/// `int32_data` (float16 bits); int64 or int32 from `raw_data`, `int64_data` or `int32_data`.
/// The element count the dims claim must equal the values present; nothing is allocated
/// before that check, so a small file cannot make a large tensor.
pub(crate) fn read_tensor(what: &str, t: &TensorProto) -> Result<Constant, IoError> {
    if t.data_location() == DataLocation::External || !t.external_data.is_empty() {
        return Err(IoError::unsupported(
            what,
            "external tensor data (weights in a separate file); expected the weights inside the .onnx file (torch.onnx.export(..., external_data=False))",
        ));
    }
    if t.segment.is_some() {
        return Err(IoError::unsupported(what, "segmented tensors"));
    }
    let (shape, count) = checked_dims(what, &t.dims)?;
    let data_type = t.data_type();
    let width: usize = match data_type {
        FLOAT | INT32 => 4,
        DOUBLE | INT64 => 8,
        FLOAT16 => 2,
        other => {
            return Err(IoError::unsupported(
                what,
                format!(
                    "tensors of {}; expected float32, float64, float16, int64 or int32",
                    type_name(other)
                ),
            ))
        }
    };
    let mismatch = |found: usize, field: &str| IoError::OnnxGraph {
        what: what.to_string(),
        reason: format!(
            "dims {:?} claim {count} {} values, but {field} holds {found}",
            t.dims,
            type_name(data_type)
        ),
    };
    let raw = t.raw_data();
    let values = if t.raw_data.is_some() {
        // Checked before anything is allocated: the bytes present must be exactly count * width.
        let needed = count.checked_mul(width).ok_or_else(|| IoError::TooLarge {
            what: what.to_string(),
            claimed: u64::MAX,
            limit: raw.len() as u64,
        })?;
        if raw.len() != needed {
            return Err(IoError::OnnxGraph {
                what: what.to_string(),
                reason: format!(
                    "dims {:?} of {} need {needed} bytes of raw_data, but {} are present",
                    t.dims,
                    type_name(data_type),
                    raw.len()
                ),
            });
        }
        let chunks = raw.chunks_exact(width);
        match data_type {
            FLOAT => Values::Float(
                chunks
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
            DOUBLE => Values::Float(
                chunks
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            FLOAT16 => Values::Float(
                chunks
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
            ),
            INT64 => Values::Int(
                chunks
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            _ => Values::Int(
                chunks
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            ),
        }
    } else {
        match data_type {
            FLOAT => {
                if t.float_data.len() != count {
                    return Err(mismatch(t.float_data.len(), "float_data"));
                }
                Values::Float(t.float_data.iter().map(|&v| f64::from(v)).collect())
            }
            DOUBLE => {
                if t.double_data.len() != count {
                    return Err(mismatch(t.double_data.len(), "double_data"));
                }
                Values::Float(t.double_data.clone())
            }
            FLOAT16 => {
                if t.int32_data.len() != count {
                    return Err(mismatch(t.int32_data.len(), "int32_data"));
                }
                // Each int32 holds the 16 bits of one half-precision value.
                Values::Float(
                    t.int32_data
                        .iter()
                        .map(|&v| half::f16::from_bits(v as u16).to_f64())
                        .collect(),
                )
            }
            INT64 => {
                if t.int64_data.len() != count {
                    return Err(mismatch(t.int64_data.len(), "int64_data"));
                }
                Values::Int(t.int64_data.clone())
            }
            _ => {
                if t.int32_data.len() != count {
                    return Err(mismatch(t.int32_data.len(), "int32_data"));
                }
                Values::Int(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            }
        }
    };
    if let Values::Float(v) = &values {
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(IoError::NonFinite {
                key: what.to_string(),
                index,
                value: v[index],
            });
        }
    }
    Ok(Constant { shape, values })
}
