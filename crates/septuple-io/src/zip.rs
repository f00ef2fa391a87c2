//! A strict reader and a minimal writer for the ZIP archives numpy writes as `.npz`.
//!
//! Read: the central directory (found from the end-of-central-directory record, with ZIP64
//! records and extra fields), entries stored or deflated, CRC-32 checked. Not read: encryption,
//! archives split over several disks, other compression methods.

use std::borrow::Cow;

use crate::error::{hex, IoError};
use crate::inflate::{inflate_exact, max_inflated};

const EOCD: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const ZIP64_EOCD: &[u8; 4] = b"PK\x06\x06";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";
const LOCAL: &[u8; 4] = b"PK\x03\x04";

/// A little-endian cursor over a bounded region; every read checks the bounds.
struct Cursor<'w, 'a> {
    what: &'w str,
    b: &'a [u8],
    pos: usize,
}

impl<'w, 'a> Cursor<'w, 'a> {
    fn at(what: &'w str, b: &'a [u8], pos: usize) -> Self {
        Cursor { what, b, pos }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], IoError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(IoError::truncated(
                self.what,
                self.pos as u64 + n as u64,
                self.b.len() as u64,
            )),
        }
    }

    fn u16(&mut self) -> Result<u16, IoError> {
        let s = self.bytes(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    fn u32(&mut self) -> Result<u32, IoError> {
        let s = self.bytes(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn u64(&mut self) -> Result<u64, IoError> {
        let s = self.bytes(8)?;
        Ok(u64::from_le_bytes([
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
        ]))
    }

    fn signature(&mut self, sig: &[u8; 4], expected: &str) -> Result<(), IoError> {
        let s = self.bytes(4)?;
        if s != sig {
            return Err(IoError::BadMagic {
                what: self.what.to_string(),
                found: hex(s),
                expected: format!("{} ({expected})", hex(sig)),
            });
        }
        Ok(())
    }
}

fn to_usize(what: &str, v: u64, len: usize) -> Result<usize, IoError> {
    if v > len as u64 {
        return Err(IoError::truncated(what, v, len as u64));
    }
    Ok(v as usize)
}

/// One entry of the central directory.
struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    uncompressed: u64,
    local_offset: u64,
}

/// Where the central directory is and how many entries it has.
fn find_directory(what: &str, b: &[u8]) -> Result<(usize, usize, u64), IoError> {
    if b.len() < 22 {
        return Err(IoError::truncated(
            format!("{what} (end of central directory)"),
            22,
            b.len() as u64,
        ));
    }
    let lowest = b.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=b.len() - 22)
        .rev()
        .find(|&p| {
            &b[p..p + 4] == EOCD
                && usize::from(u16::from_le_bytes([b[p + 20], b[p + 21]])) == b.len() - p - 22
        })
        .ok_or_else(|| IoError::BadMagic {
            what: what.to_string(),
            found: hex(&b[..4.min(b.len())]),
            expected: "a ZIP archive (an end-of-central-directory record 0x504b0506 at its end)"
                .into(),
        })?;
    let mut c = Cursor::at(what, b, eocd + 4);
    let disk = c.u16()?;
    let cd_disk = c.u16()?;
    let n_disk = c.u16()?;
    let n_total = c.u16()?;
    let cd_size = c.u32()?;
    let cd_offset = c.u32()?;
    let (mut disks_ok, mut n, mut size, mut offset, mut end) = (
        disk == 0 && cd_disk == 0 && n_disk == n_total,
        u64::from(n_total),
        u64::from(cd_size),
        u64::from(cd_offset),
        eocd,
    );
    if n_total == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        let loc = eocd.checked_sub(20).ok_or_else(|| {
            IoError::truncated(format!("{what} (ZIP64 locator)"), 20, eocd as u64)
        })?;
        let mut c = Cursor::at(what, b, loc);
        c.signature(ZIP64_LOCATOR, "ZIP64 end-of-central-directory locator")?;
        let z_disk = c.u32()?;
        let z_off = c.u64()?;
        let total_disks = c.u32()?;
        let z_off = to_usize(what, z_off, loc)?;
        let mut c = Cursor::at(what, &b[..loc], z_off);
        c.signature(ZIP64_EOCD, "ZIP64 end-of-central-directory record")?;
        let _record_size = c.u64()?;
        let _made_by = c.u16()?;
        let _needed = c.u16()?;
        let disk = c.u32()?;
        let cd_disk = c.u32()?;
        let n_disk = c.u64()?;
        n = c.u64()?;
        size = c.u64()?;
        offset = c.u64()?;
        disks_ok = z_disk == 0 && total_disks <= 1 && disk == 0 && cd_disk == 0 && n_disk == n;
        end = z_off;
    }
    if !disks_ok {
        return Err(IoError::unsupported(
            what,
            "an archive split over several disks",
        ));
    }
    let stop = offset.saturating_add(size);
    if stop > end as u64 {
        return Err(IoError::truncated(
            format!("{what} (central directory)"),
            stop,
            end as u64,
        ));
    }
    // Each central header takes at least 46 bytes: refuse counts the directory cannot hold
    // before reserving room for them.
    if n.saturating_mul(46) > size {
        return Err(IoError::header(
            what,
            format!("{n} entries cannot fit in a central directory of {size} bytes"),
        ));
    }
    Ok((offset as usize, stop as usize, n))
}

fn read_central(
    what: &str,
    b: &[u8],
    start: usize,
    stop: usize,
    n: u64,
) -> Result<Vec<Entry>, IoError> {
    let dir = &b[..stop];
    let mut c = Cursor::at(what, dir, start);
    let mut entries = Vec::with_capacity(n as usize);
    for _ in 0..n {
        c.signature(CENTRAL, "central directory file header")?;
        let _made_by = c.u16()?;
        let _needed = c.u16()?;
        let flags = c.u16()?;
        let method = c.u16()?;
        let _time = c.u16()?;
        let _date = c.u16()?;
        let crc = c.u32()?;
        let mut compressed = u64::from(c.u32()?);
        let mut uncompressed = u64::from(c.u32()?);
        let name_len = usize::from(c.u16()?);
        let extra_len = usize::from(c.u16()?);
        let comment_len = usize::from(c.u16()?);
        let disk = c.u16()?;
        let _internal = c.u16()?;
        let _external = c.u32()?;
        let mut local_offset = u64::from(c.u32()?);
        let name = c.bytes(name_len)?;
        let extra = c.bytes(extra_len)?;
        c.bytes(comment_len)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| IoError::header(what, format!("entry name {} is not UTF-8", hex(name))))?
            .to_string();
        if flags & 1 != 0 {
            return Err(IoError::unsupported(
                what,
                format!("encrypted entry {name:?}"),
            ));
        }
        // ZIP64 extended information: the 64-bit values of the fields saturated above, in order.
        let mut x = Cursor::at(what, extra, 0);
        while x.pos + 4 <= extra.len() {
            let id = x.u16()?;
            let size = usize::from(x.u16()?);
            let body = x.bytes(size)?;
            if id == 1 {
                let mut z = Cursor::at(what, body, 0);
                if uncompressed == 0xFFFF_FFFF {
                    uncompressed = z.u64()?;
                }
                if compressed == 0xFFFF_FFFF {
                    compressed = z.u64()?;
                }
                if local_offset == 0xFFFF_FFFF {
                    local_offset = z.u64()?;
                }
            }
        }
        if disk != 0 && disk != 0xFFFF {
            return Err(IoError::unsupported(
                what,
                "an archive split over several disks",
            ));
        }
        entries.push(Entry {
            name,
            method,
            crc,
            compressed,
            uncompressed,
            local_offset,
        });
    }
    Ok(entries)
}

/// One entry of an archive: its name and its uncompressed bytes (borrowed when stored).
pub(crate) type ZipEntry<'a> = (String, Cow<'a, [u8]>);

/// The entries of a ZIP archive as (name, uncompressed bytes), in directory order.
///
/// Sizes claimed by the directory are checked against the archive before anything is
/// decompressed: all entries together may not claim more than the archive could inflate to.
pub(crate) fn read_zip<'a>(what: &str, b: &'a [u8]) -> Result<Vec<ZipEntry<'a>>, IoError> {
    let (start, stop, n) = find_directory(what, b)?;
    let entries = read_central(what, b, start, stop, n)?;
    let claimed = entries
        .iter()
        .fold(0u64, |acc, e| acc.saturating_add(e.uncompressed));
    let limit = max_inflated(b.len());
    if claimed > limit {
        return Err(IoError::TooLarge {
            what: format!("{what} (entries together)"),
            claimed,
            limit,
        });
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let entry_what = format!("{what}, entry {:?}", e.name);
        let offset = to_usize(&entry_what, e.local_offset, b.len())?;
        let mut c = Cursor::at(&entry_what, b, offset);
        c.signature(LOCAL, "local file header")?;
        let _needed = c.u16()?;
        let _flags = c.u16()?;
        let _method = c.u16()?;
        let _time = c.u16()?;
        let _date = c.u16()?;
        let _crc = c.u32()?;
        let _compressed = c.u32()?;
        let _uncompressed = c.u32()?;
        let name_len = usize::from(c.u16()?);
        let extra_len = usize::from(c.u16()?);
        let local_name = c.bytes(name_len)?;
        c.bytes(extra_len)?;
        if local_name != e.name.as_bytes() {
            return Err(IoError::header(
                &entry_what,
                format!(
                    "the local header names {:?}",
                    String::from_utf8_lossy(local_name)
                ),
            ));
        }
        let compressed = to_usize(&entry_what, e.compressed, b.len())?;
        let data = c.bytes(compressed)?;
        let content: Cow<'a, [u8]> = match e.method {
            0 => {
                if e.compressed != e.uncompressed {
                    return Err(IoError::header(
                        &entry_what,
                        format!(
                            "stored entry of {} bytes claims {} uncompressed bytes",
                            e.compressed, e.uncompressed
                        ),
                    ));
                }
                Cow::Borrowed(data)
            }
            8 => Cow::Owned(inflate_exact(&entry_what, data, e.uncompressed)?),
            m => {
                return Err(IoError::unsupported(
                    &entry_what,
                    format!(
                        "compression method {m}; only stored (0) and deflated (8) entries are read"
                    ),
                ))
            }
        };
        let mut crc = flate2::Crc::new();
        crc.update(&content);
        if crc.sum() != e.crc {
            return Err(IoError::Decompress {
                what: entry_what,
                reason: format!(
                    "CRC-32 is {:08x}, the directory says {:08x}",
                    crc.sum(),
                    e.crc
                ),
            });
        }
        out.push((e.name, content));
    }
    Ok(out)
}

/// A ZIP archive of stored (uncompressed) entries, readable by Python's `zipfile` and numpy.
pub(crate) fn write_zip_stored(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = out.len() as u32;
        let fixed = |v: &mut Vec<u8>| {
            v.extend_from_slice(&20u16.to_le_bytes()); // version needed: 2.0
            v.extend_from_slice(&0u16.to_le_bytes()); // flags
            v.extend_from_slice(&0u16.to_le_bytes()); // stored
            v.extend_from_slice(&0u16.to_le_bytes()); // time
            v.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            v.extend_from_slice(&crc.sum().to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(LOCAL);
        fixed(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(CENTRAL);
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        fixed(&mut central);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(EOCD);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_output_reads_back() {
        let entries = vec![
            ("a.npy".to_string(), b"hello".to_vec()),
            ("b.npy".to_string(), vec![]),
        ];
        let z = write_zip_stored(&entries);
        let back = read_zip("test", &z).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "a.npy");
        assert_eq!(&*back[0].1, b"hello");
        assert_eq!(&*back[1].1, b"");
    }

    #[test]
    fn corruption_is_detected() {
        let z = write_zip_stored(&[("a.npy".to_string(), b"hello".to_vec())]);
        let mut bad = z.clone();
        bad[30 + 5] ^= 1; // first data byte
        assert!(matches!(
            read_zip("t", &bad),
            Err(IoError::Decompress { .. })
        ));
        assert!(matches!(
            read_zip("t", &z[..z.len() - 1]),
            Err(IoError::BadMagic { .. })
        ));
        assert!(matches!(
            read_zip("t", b"PK"),
            Err(IoError::Truncated { .. })
        ));
    }
}
