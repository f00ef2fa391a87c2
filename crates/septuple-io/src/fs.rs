//! Atomic, durable file writes and the clean-up of what a killed writer leaves behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::IoError;

/// The prefix of the temporary files [`write_atomic`] creates beside its target (followed by
/// random characters). [`remove_stale_temporaries`] removes files with this prefix.
pub const TEMP_PREFIX: &str = ".septuple-tmp-";

fn file_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError::File {
        action,
        path,
        source,
    }
}

/// The directory a path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write bytes atomically and durably: into a temporary file in the target's directory
/// (named [`TEMP_PREFIX`] plus random characters, through the `tempfile` crate), flushed to
/// disk with `fsync`, then renamed over `path`, and on Unix the directory synced too so the
/// rename itself survives a power loss. A reader sees the old file or the new one, never
/// half a file; a writer killed before the rename leaves only a temporary file, which
/// [`remove_stale_temporaries`] clears. The new file gets the permissions `std::fs::write`
/// would give it (0o666 less the umask on Unix).
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), IoError> {
    let path = path.as_ref();
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(file_error("create a temporary file in", &dir))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.flush())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(file_error("write", tmp.path()))?;
    // On failure the temporary file is removed when the returned error's file is dropped.
    tmp.persist(path)
        .map_err(|e| file_error("rename", path)(e.error))?;
    #[cfg(unix)]
    {
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(file_error("sync", &dir))?;
    }
    Ok(())
}

/// Remove the temporary files that [`write_atomic`] calls killed before their rename left
/// in `dir` (files whose names start with [`TEMP_PREFIX`]; nothing else is touched, and
/// subdirectories are not searched). Returns how many were removed.
///
/// Call it when no other process is writing into `dir`, for example when a run resumes:
/// a temporary file that a live writer is about to rename would be removed too, and that
/// writer's rename would fail with an error (never a half file).
pub fn remove_stale_temporaries(dir: impl AsRef<Path>) -> Result<usize, IoError> {
    let dir = dir.as_ref();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(file_error("list", dir))? {
        let entry = entry.map_err(file_error("list", dir))?;
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if !is_ours {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(file_error("inspect", &path))?;
        if !kind.is_file() {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            // Gone in the meantime (another clean-up, or its writer renamed it): nothing to do.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error("remove", &path)(e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_atomically_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        write_atomic(&target, b"first").unwrap();
        write_atomic(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.txt")]);
    }

    #[cfg(unix)]
    #[test]
    fn written_files_are_readable_by_others_as_with_fs_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("a");
        let plain = dir.path().join("b");
        write_atomic(&ours, b"x").unwrap();
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&plain));
    }

    #[test]
    fn a_missing_directory_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("absent").join("out.txt");
        assert!(matches!(
            write_atomic(&target, b"x"),
            Err(IoError::File { .. })
        ));
        assert!(matches!(
            remove_stale_temporaries(dir.path().join("absent")),
            Err(IoError::File { action: "list", .. })
        ));
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // What a writer killed between creating and renaming its temporary file leaves.
        let stale = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir.path())
            .unwrap();
        let (_, stale_path) = stale.keep().unwrap();
        std::fs::write(dir.path().join(format!("{TEMP_PREFIX}by-hand")), b"half").unwrap();
        std::fs::write(dir.path().join("keep.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("septuple-tmp-no-dot"), b"").unwrap();
        std::fs::create_dir(dir.path().join(format!("{TEMP_PREFIX}dir"))).unwrap();
        write_atomic(dir.path().join("done.bin"), b"ok").unwrap();

        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 2);
        assert!(!stale_path.exists());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                format!("{TEMP_PREFIX}dir"),
                "done.bin".to_string(),
                "keep.json".to_string(),
                "septuple-tmp-no-dot".to_string(),
            ]
        );
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 0);
    }
}
