//! The IDX format of the MNIST files, raw or gzip-compressed.
//!
//! An IDX file is a big-endian header, `00 00 TT DD` (TT the item type, 0x08 for unsigned
//! bytes; DD the number of dimensions) followed by DD u32 sizes, then the items in row-major
//! order. MNIST images are `00 00 08 03`, count x 28 x 28; labels are `00 00 08 01`, count.

use std::borrow::Cow;

use ndarray::Array2;

use crate::error::{hex, IoError};
use crate::inflate::{is_gzip, Gunzip};

/// Item types of the IDX format, by their type byte (for messages).
fn item_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "i16",
        0x0C => "i32",
        0x0D => "f32",
        0x0E => "f64",
        _ => return None,
    })
}

/// A decoded IDX file of unsigned bytes: its dimensions and its items in row-major order.
struct IdxU8<'a> {
    dims: Vec<usize>,
    data: Cow<'a, [u8]>,
}

fn check_magic(what: &str, head: &[u8], ndims: u8) -> Result<(), IoError> {
    let expected = format!("0x000008{ndims:02x} (unsigned bytes, {ndims} dimension(s))");
    if head[0] != 0 || head[1] != 0 {
        return Err(IoError::BadMagic {
            what: what.to_string(),
            found: hex(head),
            expected,
        });
    }
    if head[2] != 0x08 {
        return Err(match item_type_name(head[2]) {
            Some(name) => IoError::unsupported(
                what,
                format!(
                    "IDX item type {name} (0x{:02x}); only unsigned bytes (0x08) are read",
                    head[2]
                ),
            ),
            None => IoError::BadMagic {
                what: what.to_string(),
                found: hex(head),
                expected,
            },
        });
    }
    if head[3] != ndims {
        return Err(IoError::header(
            what,
            format!(
                "{} dimension(s), expected {ndims} ({})",
                head[3],
                if ndims == 3 {
                    "count, rows, columns"
                } else {
                    "count"
                }
            ),
        ));
    }
    Ok(())
}

/// The number of items the dimensions describe, or an error if it overflows.
fn item_count(what: &str, dims: &[usize]) -> Result<u64, IoError> {
    dims.iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| IoError::TooLarge {
            what: what.to_string(),
            claimed: u64::MAX,
            limit: u64::MAX,
        })
}

fn parse_dims(head: &[u8]) -> Vec<usize> {
    head.chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect()
}

/// Decode an IDX file of `ndims` dimensions of unsigned bytes, raw or gzip (told by the magic
/// bytes). The size claimed by the header is checked against the input before anything is
/// allocated for the items; the file must end exactly after them.
fn parse_idx_u8<'a>(what: &str, bytes: &'a [u8], ndims: u8) -> Result<IdxU8<'a>, IoError> {
    let header_len = 4 + 4 * ndims as usize;
    if is_gzip(bytes) {
        let mut gz = Gunzip::new(what, bytes);
        let head = gz.take(4)?;
        if head.len() < 4 {
            return Err(IoError::truncated(
                format!("{what} (decompressed header)"),
                4,
                head.len() as u64,
            ));
        }
        check_magic(what, &head, ndims)?;
        let sizes = gz.take(4 * ndims as u64)?;
        if sizes.len() < 4 * ndims as usize {
            return Err(IoError::truncated(
                format!("{what} (decompressed header)"),
                header_len as u64,
                4 + sizes.len() as u64,
            ));
        }
        let dims = parse_dims(&sizes);
        let n = item_count(what, &dims)?;
        let data = gz.finish(n)?;
        Ok(IdxU8 {
            dims,
            data: Cow::Owned(data),
        })
    } else {
        if bytes.len() < 4 {
            return Err(IoError::truncated(
                format!("{what} header"),
                4,
                bytes.len() as u64,
            ));
        }
        check_magic(what, &bytes[..4], ndims)?;
        if bytes.len() < header_len {
            return Err(IoError::truncated(
                format!("{what} header"),
                header_len as u64,
                bytes.len() as u64,
            ));
        }
        let dims = parse_dims(&bytes[4..header_len]);
        let n = item_count(what, &dims)?;
        let body = &bytes[header_len..];
        let needed = (header_len as u64).saturating_add(n);
        if (body.len() as u64) < n {
            return Err(IoError::truncated(what, needed, bytes.len() as u64));
        }
        if (body.len() as u64) > n {
            return Err(IoError::TrailingData {
                what: what.to_string(),
                expected: needed,
                extra: body.len() as u64 - n,
            });
        }
        Ok(IdxU8 {
            dims,
            data: Cow::Borrowed(body),
        })
    }
}

/// Images read from an IDX file: one row per image, pixels scaled to [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    /// count x (rows * columns), each pixel byte divided by 255, rows of the image in order.
    pub pixels: Array2<f64>,
    /// Pixel rows per image (28 for MNIST).
    pub rows: usize,
    /// Pixel columns per image (28 for MNIST).
    pub cols: usize,
}

/// Read an IDX image file (magic `0x00000803`, dimensions count x rows x columns, unsigned
/// bytes), raw or gzip, told apart by the gzip magic bytes, not by a file name.
///
/// Pixels are scaled to byte/255. Errors: wrong magic or item type, zero rows or columns,
/// truncated input, trailing data, a header claiming more than the input can hold.
pub fn parse_idx_images(bytes: &[u8]) -> Result<IdxImages, IoError> {
    let what = "IDX image file";
    let idx = parse_idx_u8(what, bytes, 3)?;
    let (count, rows, cols) = (idx.dims[0], idx.dims[1], idx.dims[2]);
    if rows == 0 || cols == 0 {
        return Err(IoError::header(
            what,
            format!("images of {rows} x {cols} pixels; expected at least one row and one column"),
        ));
    }
    let pixels: Vec<f64> = idx.data.iter().map(|&p| f64::from(p) / 255.0).collect();
    let pixels = Array2::from_shape_vec((count, rows * cols), pixels)
        .map_err(|e| IoError::header(what, e.to_string()))?;
    Ok(IdxImages { pixels, rows, cols })
}

/// Read an IDX label file (magic `0x00000801`, one unsigned byte per sample), raw or gzip, and
/// check that every label is a digit 0-9.
pub fn parse_idx_labels(bytes: &[u8]) -> Result<Vec<u8>, IoError> {
    let idx = parse_idx_u8("IDX label file", bytes, 1)?;
    if let Some((index, &label)) = idx.data.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(IoError::LabelOutOfRange {
            index,
            label,
            classes: 10,
        });
    }
    Ok(idx.data.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn idx_images(count: u32, rows: u32, cols: u32, fill: u8) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 3];
        for d in [count, rows, cols] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(fill, (count * rows * cols) as usize));
        v
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_and_gzip_read_the_same() {
        let mut raw = idx_images(3, 2, 2, 0);
        for (i, p) in raw[16..].iter_mut().enumerate() {
            *p = (i * 20) as u8;
        }
        let a = parse_idx_images(&raw).unwrap();
        let b = parse_idx_images(&gzip(&raw)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.pixels.dim(), (3, 4));
        assert_eq!((a.rows, a.cols), (2, 2));
        // Pixel byte 220 (sample 2, pixel 3) maps to 220/255.
        assert_eq!(a.pixels[[2, 3]], 220.0 / 255.0);
    }

    #[test]
    fn magic_and_dimensions_are_checked() {
        let mut raw = idx_images(1, 2, 2, 0);
        raw[2] = 0x0D;
        assert!(matches!(
            parse_idx_images(&raw),
            Err(IoError::Unsupported { .. })
        ));
        raw[2] = 0x07;
        assert!(matches!(
            parse_idx_images(&raw),
            Err(IoError::BadMagic { .. })
        ));
        let labels = [0u8, 0, 8, 1, 0, 0, 0, 1, 3];
        assert!(matches!(
            parse_idx_images(&labels),
            Err(IoError::Header { .. })
        ));
        let zero_rows = idx_images(1, 0, 5, 0);
        assert!(matches!(
            parse_idx_images(&zero_rows),
            Err(IoError::Header { .. })
        ));
    }

    #[test]
    fn truncation_and_trailing_data_are_errors() {
        let raw = idx_images(2, 3, 3, 1);
        let cut = &raw[..raw.len() - 1];
        assert!(matches!(
            parse_idx_images(cut),
            Err(IoError::Truncated {
                needed: 34,
                available: 33,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_images(&gzip(cut)),
            Err(IoError::Truncated {
                needed: 34,
                available: 33,
                ..
            })
        ));
        let mut long = raw.clone();
        long.push(0);
        assert!(matches!(
            parse_idx_images(&long),
            Err(IoError::TrailingData { extra: 1, .. })
        ));
        assert!(matches!(
            parse_idx_images(&gzip(&long)),
            Err(IoError::TrailingData { extra: 1, .. })
        ));
        let mut after_member = gzip(&raw);
        after_member.extend_from_slice(b"junk");
        assert!(matches!(
            parse_idx_images(&after_member),
            Err(IoError::TrailingData { extra: 4, .. })
        ));
        let gz = gzip(&raw);
        assert!(matches!(
            parse_idx_images(&gz[..gz.len() - 3]),
            Err(IoError::Decompress { .. } | IoError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_claims_are_refused_before_allocation() {
        // 4 billion images of 65535 x 65535 pixels, in a 16-byte file.
        let mut raw = vec![0, 0, 8, 3];
        for d in [u32::MAX, 65535, 65535] {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        assert!(matches!(
            parse_idx_images(&raw),
            Err(IoError::Truncated { .. })
        ));
        // The same header gzip-compressed: the claim exceeds what ~40 bytes can inflate to.
        assert!(matches!(
            parse_idx_images(&gzip(&raw)),
            Err(IoError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_gzip_checksum_is_an_error() {
        let raw = idx_images(1, 2, 2, 7);
        let mut gz = gzip(&raw);
        let n = gz.len();
        gz[n - 8] ^= 0xff; // the CRC-32 of the member trailer
        assert!(matches!(
            parse_idx_images(&gz),
            Err(IoError::Decompress { .. })
        ));
    }

    #[test]
    fn labels_are_digits() {
        let ok = [0u8, 0, 8, 1, 0, 0, 0, 3, 0, 9, 4];
        assert_eq!(parse_idx_labels(&ok).unwrap(), vec![0, 9, 4]);
        let bad = [0u8, 0, 8, 1, 0, 0, 0, 3, 0, 10, 4];
        assert!(matches!(
            parse_idx_labels(&bad),
            Err(IoError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            })
        ));
        assert!(matches!(
            parse_idx_labels(&gzip(&bad)),
            Err(IoError::LabelOutOfRange {
                index: 1,
                label: 10,
                ..
            })
        ));
    }
}
