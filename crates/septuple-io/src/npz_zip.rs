//! The ZIP container of numpy's `.npz` archives, through the `zip` crate (pure Rust: its
//! `deflate-flate2` feature on flate2's `miniz_oxide` backend; stored and deflated entries,
//! ZIP64, CRC-32 checked).
//!
//! Around the crate, as for every format here: an entry's claimed size is checked against
//! what its compressed bytes could possibly hold before anything is allocated for it, the
//! decoded size must equal the claim, and the archive must end with its end record (plus
//! the comment that record announces), as numpy writes it.

use std::io::{Cursor, Write};

use zip::result::ZipError;
use zip::CompressionMethod;

use crate::error::IoError;
use crate::inflate::{check_claim, read_rest_exact};

const EOCD: &[u8; 4] = b"PK\x05\x06";

fn zip_error(what: &str, e: ZipError) -> IoError {
    match e {
        ZipError::UnsupportedArchive(feature) => IoError::unsupported(what, feature),
        ZipError::CompressionMethodNotSupported(m) => IoError::unsupported(
            what,
            format!("ZIP compression method {m}; stored (0) and deflated (8) entries are read"),
        ),
        ZipError::Io(e) => IoError::Decompress {
            what: what.to_string(),
            reason: e.to_string(),
        },
        other => IoError::header(what, other.to_string()),
    }
}

/// The archive ends exactly after an end-of-central-directory record and its comment.
fn check_end(what: &str, b: &[u8]) -> Result<(), IoError> {
    if b.len() < 22 {
        return Err(IoError::truncated(
            format!("{what} (end of central directory)"),
            22,
            b.len() as u64,
        ));
    }
    let lowest = b.len().saturating_sub(22 + 65535);
    let found = (lowest..=b.len() - 22).rev().any(|p| {
        &b[p..p + 4] == EOCD
            && usize::from(u16::from_le_bytes([b[p + 20], b[p + 21]])) == b.len() - p - 22
    });
    if !found {
        return Err(IoError::BadMagic {
            what: what.to_string(),
            found: crate::error::hex(&b[..4]),
            expected: "a ZIP archive ending with its end-of-central-directory record (0x504b0506) and the comment it announces".into(),
        });
    }
    Ok(())
}

/// Every entry of a ZIP archive, name and decompressed bytes, in the archive's order.
pub(crate) fn read_entries(what: &str, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, IoError> {
    check_end(what, bytes)?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_error(what, e))?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| zip_error(what, e))?;
        let name = file.name().map_err(|e| zip_error(what, e))?.into_owned();
        let entry = format!("{what}, entry {name:?}");
        if file.encrypted() {
            return Err(IoError::unsupported(entry, "encryption"));
        }
        let compressed = file.compressed_size();
        if compressed > bytes.len() as u64 {
            return Err(IoError::truncated(entry, compressed, bytes.len() as u64));
        }
        let size = file.size();
        match file.compression() {
            CompressionMethod::Stored if size != compressed => {
                return Err(IoError::header(
                    entry,
                    format!("a stored entry of {compressed} bytes claims {size} bytes"),
                ))
            }
            CompressionMethod::Stored => {}
            CompressionMethod::Deflated => check_claim(&entry, size, compressed as usize)?,
            other => {
                return Err(IoError::unsupported(
                    entry,
                    format!("ZIP compression {other}; stored and deflated entries are read"),
                ))
            }
        }
        let data = read_rest_exact(&entry, &mut file, size, 0)?;
        out.push((name, data));
    }
    Ok(out)
}

/// A ZIP archive of stored entries, as `numpy.savez` writes it.
pub(crate) fn write_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(false);
    // Writing into memory cannot fail; entries are far below 4 GiB for the networks we save.
    let result = (|| {
        for (name, data) in entries {
            w.start_file(name.as_str(), options)?;
            w.write_all(data)?;
        }
        w.finish()
    })();
    result
        .expect("writing a ZIP archive into memory cannot fail")
        .into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_output_reads_back() {
        let entries = vec![
            ("a.npy".to_string(), b"hello".to_vec()),
            ("b.npy".to_string(), vec![0u8; 100]),
        ];
        let bytes = write_stored(&entries);
        assert_eq!(read_entries("t", &bytes).unwrap(), entries);
    }

    #[test]
    fn corruption_is_detected() {
        let entries = vec![("a.npy".to_string(), b"hello world".to_vec())];
        let bytes = write_stored(&entries);
        let at = bytes.windows(11).position(|w| w == b"hello world").unwrap();
        let mut bad = bytes.clone();
        bad[at] = b'j';
        assert!(matches!(
            read_entries("t", &bad),
            Err(IoError::Decompress { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            read_entries("t", &long),
            Err(IoError::BadMagic { .. })
        ));
    }
}
