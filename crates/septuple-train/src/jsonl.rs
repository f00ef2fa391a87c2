//! JSON-lines files: one serde value per line, as observers write their records.
//!
//! [`write_json_lines`] replaces a file atomically; [`append_json_line`] adds one line (a crash
//! while appending can leave the last line cut short); [`read_json_lines`] reads a file back
//! and stops at such a torn last line, so a resumed run starts from the intact records.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::TrainError;

/// One value as one line of JSON (without the newline).
fn json_line<T: Serialize>(path: &Path, value: &T) -> Result<String, TrainError> {
    serde_json::to_string(value).map_err(|source| TrainError::Record {
        path: path.to_path_buf(),
        source,
    })
}

/// Write `values` to `path`, one JSON document per line, replacing the file atomically
/// (through a temporary file and a rename).
pub fn write_json_lines<T: Serialize>(path: &Path, values: &[T]) -> Result<(), TrainError> {
    let mut text = String::new();
    for v in values {
        text.push_str(&json_line(path, v)?);
        text.push('\n');
    }
    septuple_io::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Append `value` as one line to the existing file `path` and sync it to disk.
pub fn append_json_line<T: Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let line = json_line(path, value)?;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| TrainError::file(path, e))?;
    writeln!(f, "{line}").map_err(|e| TrainError::file(path, e))?;
    f.sync_data().map_err(|e| TrainError::file(path, e))
}

/// The values of the JSON-lines file `path`, in order. Blank lines are skipped. A last line
/// that does not parse is taken for one cut short by a crash while appending, and reading
/// stops before it; a line that does not parse with intact lines after it is an error.
///
/// Errors: [`TrainError::File`] if the file cannot be read or holds a broken line that is not
/// the last one.
pub fn read_json_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::file(path, e))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut values = Vec::with_capacity(lines.len());
    for (k, &(number, line)) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(v) => values.push(v),
            Err(_) if k + 1 == lines.len() => break,
            Err(e) => {
                let reason = format!("line {}: {e}", number + 1);
                return Err(TrainError::file(
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
                ));
            }
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("septuple-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn round_trip_append_and_torn_last_line() {
        let p = scratch("rows.jsonl");
        write_json_lines(&p, &[(1usize, 0.5f64), (2, 0.25)]).unwrap();
        append_json_line(&p, &(5usize, 0.125f64)).unwrap();
        let back: Vec<(usize, f64)> = read_json_lines(&p).unwrap();
        assert_eq!(back, vec![(1, 0.5), (2, 0.25), (5, 0.125)]);
        // A crash in the middle of an append leaves a cut line at the end: it is dropped.
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("[10,0.06");
        std::fs::write(&p, &text).unwrap();
        let back: Vec<(usize, f64)> = read_json_lines(&p).unwrap();
        assert_eq!(back.len(), 3);
        // A broken line followed by intact ones is corruption, not a torn end.
        std::fs::write(&p, "[1,0.5]\n[2,0.2\n[5,0.125]\n").unwrap();
        let e = read_json_lines::<(usize, f64)>(&p).unwrap_err();
        assert!(matches!(e, TrainError::File { .. }) && e.to_string().contains("line 2"));
        assert!(read_json_lines::<(usize, f64)>(&scratch("missing.jsonl")).is_err());
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }
}
