//! numpy's `.npy` array format (versions 1.0, 2.0 and 3.0), floating-point arrays only.
//!
//! Layout: the magic `\x93NUMPY`, a major and a minor version byte, the header length (u16 for
//! version 1, u32 for versions 2 and 3, little endian), a Python dict literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }` padded with spaces and a newline,
//! then the raw items.

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use crate::error::{hex, IoError};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Byte order and width of a floating-point `descr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Float {
    big_endian: bool,
    width: usize,
}

/// A parsed header value (the subset of Python literals npy headers use).
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(d) if d == c => {
                self.pos += 1;
                Ok(())
            }
            Some(d) => Err(format!(
                "expected '{}' at byte {}, found '{}'",
                c as char, self.pos, d as char
            )),
            None => Err(format!("expected '{}', found the end", c as char)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(format!("expected a quoted string at byte {}", self.pos)),
        };
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos] != quote {
            if self.s[self.pos] == b'\\' {
                return Err("escape sequences in header strings are not supported".into());
            }
            self.pos += 1;
        }
        if self.pos >= self.s.len() {
            return Err("unterminated string".into());
        }
        let text = std::str::from_utf8(&self.s[start..self.pos])
            .map_err(|_| "a header string is not UTF-8".to_string())?
            .to_string();
        self.pos += 1;
        Ok(text)
    }

    fn integer(&mut self) -> Result<u64, String> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let digits = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        if digits.is_empty() {
            return Err(format!("expected a non-negative integer at byte {start}"));
        }
        // Python 2 wrote long integers with an L suffix.
        if self.s.get(self.pos) == Some(&b'L') {
            self.pos += 1;
        }
        digits
            .parse()
            .map_err(|_| format!("dimension {digits} does not fit in 64 bits"))
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => {
                self.pos += 1;
                let mut dims = Vec::new();
                loop {
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                    dims.push(self.integer()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {}
                        _ => return Err("expected ',' or ')' in the shape tuple".into()),
                    }
                }
                Ok(Value::Tuple(dims))
            }
            _ => {
                let rest = &self.s[self.pos..];
                if rest.starts_with(b"True") {
                    self.pos += 4;
                    Ok(Value::Bool(true))
                } else if rest.starts_with(b"False") {
                    self.pos += 5;
                    Ok(Value::Bool(false))
                } else {
                    Err(format!(
                        "expected a string, a tuple, True or False at byte {}",
                        self.pos
                    ))
                }
            }
        }
    }

    fn dict(&mut self) -> Result<Vec<(String, Value)>, String> {
        self.expect(b'{')?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value()?;
            if items.iter().any(|(k, _)| *k == key) {
                return Err(format!("key '{key}' appears twice"));
            }
            items.push((key, value));
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' in the header dict".into()),
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(format!(
                "{} unexpected bytes after the header dict",
                self.s.len() - self.pos
            ));
        }
        Ok(items)
    }
}

fn parse_descr(what: &str, descr: &str) -> Result<Float, IoError> {
    let (order, kind) = match descr.as_bytes().first() {
        Some(c @ (b'<' | b'>' | b'=' | b'|')) => (*c, &descr[1..]),
        _ => (b'=', descr),
    };
    let width = match kind {
        "f8" => 8,
        "f4" => 4,
        "f2" => 2,
        _ => {
            return Err(IoError::unsupported(
                what,
                format!("dtype '{descr}'; only floating-point '<f8', '>f8', '<f4', '>f4', '<f2', '>f2' are read"),
            ))
        }
    };
    let big_endian = match order {
        b'<' => false,
        b'>' => true,
        b'=' => cfg!(target_endian = "big"),
        _ => {
            return Err(IoError::header(
                what,
                format!("dtype '{descr}': byte order '|' is only for one-byte types"),
            ))
        }
    };
    Ok(Float { big_endian, width })
}

/// Decode floats of the given width and byte order into f64 (exactly: every f16 and f32 value
/// is an f64 value).
pub(crate) fn decode_floats(data: &[u8], width: usize, big_endian: bool) -> Vec<f64> {
    match (width, big_endian) {
        (8, false) => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        (8, true) => data
            .chunks_exact(8)
            .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        (4, false) => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        (4, true) => data
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        (_, false) => data
            .chunks_exact(2)
            .map(|c| f16_to_f64(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        (_, true) => data
            .chunks_exact(2)
            .map(|c| f16_to_f64(u16::from_be_bytes([c[0], c[1]])))
            .collect(),
    }
}

/// IEEE 754 binary16 to f64, exact.
pub(crate) fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    match exp {
        0 => sign * man * (2.0f64).powi(-24),
        31 if man == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + man / 1024.0) * (2.0f64).powi(exp - 15),
    }
}

/// The number of items of a shape and their size in bytes, or an error on overflow.
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
    let n = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)?;
    let bytes = n.checked_mul(width as u64).ok_or_else(too_large)?;
    if bytes > isize::MAX as u64 {
        return Err(too_large());
    }
    Ok((n as usize, bytes))
}

/// Read one `.npy` array of floats (`f8`, `f4` or `f2`, either byte order, C or Fortran order)
/// into an f64 array of the stored shape. The data must fill the file exactly.
pub fn parse_npy(bytes: &[u8]) -> Result<ArrayD<f64>, IoError> {
    parse_npy_named("npy array", bytes)
}

pub(crate) fn parse_npy_named(what: &str, bytes: &[u8]) -> Result<ArrayD<f64>, IoError> {
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
        1 => (u64::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10usize),
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
                12usize,
            )
        }
        _ => {
            return Err(IoError::unsupported(
                what,
                format!("npy format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are read"),
            ))
        }
    };
    let data_start = start as u64 + header_len;
    if data_start > bytes.len() as u64 {
        return Err(IoError::truncated(
            format!("{what} header"),
            data_start,
            bytes.len() as u64,
        ));
    }
    let data_start = data_start as usize;
    let header = &bytes[start..data_start];
    let items = Parser { s: header, pos: 0 }
        .dict()
        .map_err(|reason| IoError::header(what, reason))?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in items {
        match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            (k @ ("descr" | "fortran_order" | "shape"), v) => {
                return Err(IoError::header(
                    what,
                    format!("'{k}' has the wrong type: {v:?}"),
                ))
            }
            (k, _) => {
                return Err(IoError::header(
                    what,
                    format!(
                        "unexpected key '{k}'; expected exactly 'descr', 'fortran_order', 'shape'"
                    ),
                ))
            }
        }
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err(IoError::header(
            what,
            "expected the keys 'descr', 'fortran_order' and 'shape'",
        ));
    };
    let float = parse_descr(what, &descr)?;
    let (n, nbytes) = checked_size(what, &shape, float.width)?;
    let body = &bytes[data_start..];
    let needed = data_start as u64 + nbytes;
    if (body.len() as u64) < nbytes {
        return Err(IoError::truncated(
            format!("{what} data"),
            needed,
            bytes.len() as u64,
        ));
    }
    if (body.len() as u64) > nbytes {
        return Err(IoError::TrailingData {
            what: what.to_string(),
            expected: needed,
            extra: body.len() as u64 - nbytes,
        });
    }
    let values = decode_floats(body, float.width, float.big_endian);
    debug_assert_eq!(values.len(), n);
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let array = if fortran {
        ArrayD::from_shape_vec(IxDyn(&dims).f(), values)
    } else {
        ArrayD::from_shape_vec(IxDyn(&dims), values)
    };
    array.map_err(|e| IoError::header(what, e.to_string()))
}

/// Write an array as a version 1.0 `.npy` file: little-endian f8, C order, header padded so
/// the data starts at a multiple of 64 bytes (as numpy writes it).
pub fn write_npy(array: ArrayViewD<'_, f64>) -> Vec<u8> {
    let shape = match array.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + 8 * array.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    // Shapes a real array can have give headers far below 65535 bytes.
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in array.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
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
    }

    #[test]
    fn f16_values_are_exact() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x7bff), 65504.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(f16_to_f64(0x3555), 0.333_251_953_125);
        assert!(f16_to_f64(0x7c00).is_infinite());
        assert!(f16_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn header_errors_are_typed() {
        let good = write_npy(array![1.0, 2.0].into_dyn().view());
        let swap = |from: &str, to: &str| {
            let head = String::from_utf8(good[10..good.len() - 16].to_vec()).unwrap();
            let mut b = good[..10].to_vec();
            b.extend_from_slice(head.replace(from, to).as_bytes());
            b.extend_from_slice(&good[good.len() - 16..]);
            // Keep the declared header length consistent when the replacement changes it.
            let new_len = (b.len() - 10 - 16) as u16;
            b[8..10].copy_from_slice(&new_len.to_le_bytes());
            b
        };
        assert!(matches!(
            parse_npy(&swap("'<f8'", "'<i8'")),
            Err(IoError::Unsupported { .. })
        ));
        assert!(matches!(
            parse_npy(&swap("'<f8'", "'|f8'")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap("False", "Maybe")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap("'shape'", "'shap'")),
            Err(IoError::Header { .. })
        ));
        assert!(matches!(
            parse_npy(&swap("(2,)", "(3,)")),
            Err(IoError::Truncated { .. })
        ));
        assert!(matches!(
            parse_npy(&swap("(2,)", "(1,)")),
            Err(IoError::TrailingData { extra: 8, .. })
        ));
        assert!(matches!(
            parse_npy(&swap("(2,)", "(99999999999, 99999999999)")),
            Err(IoError::TooLarge { .. })
        ));
        let mut long_header = good.clone();
        long_header[8..10].copy_from_slice(&60000u16.to_le_bytes());
        assert!(matches!(
            parse_npy(&long_header),
            Err(IoError::Truncated { needed: 60010, .. })
        ));
    }
}
