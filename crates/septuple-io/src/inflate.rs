//! Bounded decompression: gzip and raw DEFLATE streams whose output size is known in advance.
//!
//! A compressed stream cannot expand by more than a factor of about 1032 (a 258-byte match coded
//! in two bits and change), so a claimed size beyond that bound is refused before anything is
//! decompressed, and output buffers grow only with data actually produced, never with a claim.

use std::io::{BufRead, Read};

use crate::error::IoError;

/// The largest expansion of DEFLATE data, output bytes per input byte (rounded up).
const MAX_RATIO: u64 = 1032;

/// The largest output `compressed` bytes of DEFLATE data could possibly decode to.
pub(crate) fn max_inflated(compressed: usize) -> u64 {
    (compressed as u64)
        .saturating_mul(MAX_RATIO)
        .saturating_add(1024)
}

/// Refuse a claim that no stream of `compressed` bytes can fulfil.
pub(crate) fn check_claim(what: &str, claimed: u64, compressed: usize) -> Result<(), IoError> {
    let limit = max_inflated(compressed);
    if claimed > limit {
        return Err(IoError::TooLarge {
            what: what.to_string(),
            claimed,
            limit,
        });
    }
    Ok(())
}

fn decode_error(what: &str, e: std::io::Error) -> IoError {
    IoError::Decompress {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Read up to `n` bytes (fewer only at the end of the stream), growing with the data read.
pub(crate) fn read_up_to<R: Read>(what: &str, r: R, n: u64) -> Result<Vec<u8>, IoError> {
    let mut out = Vec::new();
    r.take(n)
        .read_to_end(&mut out)
        .map_err(|e| decode_error(what, e))?;
    Ok(out)
}

/// Read exactly `n` more bytes from a decoder, then require the end of the stream.
///
/// `already` is how many decompressed bytes came before (for the messages).
pub(crate) fn read_rest_exact<R: Read>(
    what: &str,
    r: &mut R,
    n: u64,
    already: u64,
) -> Result<Vec<u8>, IoError> {
    let mut out = read_up_to(what, r.by_ref(), n.saturating_add(1))?;
    let got = out.len() as u64;
    if got < n {
        return Err(IoError::truncated(
            format!("{what} (decompressed)"),
            already + n,
            already + got,
        ));
    }
    if got > n {
        // Count the excess, but never hold more than a bounded chunk of it.
        let mut extra = got - n;
        let mut sink = [0u8; 8192];
        loop {
            match r.read(&mut sink) {
                Ok(0) => break,
                Ok(k) => extra += k as u64,
                Err(e) => return Err(decode_error(what, e)),
            }
        }
        return Err(IoError::TrailingData {
            what: format!("{what} (decompressed)"),
            expected: already + n,
            extra,
        });
    }
    out.shrink_to_fit();
    Ok(out)
}

/// Is this the start of a gzip stream (magic 1f 8b)?
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// A gzip decoder over a byte slice that can report what is left after the member.
pub(crate) struct Gunzip<'a> {
    what: String,
    dec: flate2::bufread::GzDecoder<&'a [u8]>,
    compressed: usize,
    produced: u64,
}

impl<'a> Gunzip<'a> {
    pub(crate) fn new(what: &str, bytes: &'a [u8]) -> Self {
        Gunzip {
            what: what.to_string(),
            dec: flate2::bufread::GzDecoder::new(bytes),
            compressed: bytes.len(),
            produced: 0,
        }
    }

    /// The next `n` decompressed bytes; fewer only if the stream ends.
    pub(crate) fn take(&mut self, n: u64) -> Result<Vec<u8>, IoError> {
        let out = read_up_to(&self.what, self.dec.by_ref(), n)?;
        self.produced += out.len() as u64;
        Ok(out)
    }

    /// The remaining `n` decompressed bytes, refusing claims the input cannot hold, a stream
    /// that ends early or continues, a bad checksum, and bytes after the gzip member.
    pub(crate) fn finish(mut self, n: u64) -> Result<Vec<u8>, IoError> {
        check_claim(
            &format!("{} (decompressed)", self.what),
            self.produced.saturating_add(n),
            self.compressed,
        )?;
        let out = read_rest_exact(&self.what, &mut self.dec, n, self.produced)?;
        let mut rest = self.dec.into_inner();
        let left = rest.fill_buf().map(|b| b.len()).unwrap_or(0);
        if left > 0 {
            return Err(IoError::TrailingData {
                what: format!("{} (gzip file)", self.what),
                expected: (self.compressed - left) as u64,
                extra: left as u64,
            });
        }
        Ok(out)
    }
}
