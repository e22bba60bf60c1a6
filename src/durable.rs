//! Durable file writes: the one place that knows how to make a file survive a crash.
//!
//! - [`write_atomic`]: write a whole file so that a crash leaves either the old or the new
//!   content, never a mix: temporary file in the same directory, `fsync`, rename over the
//!   target, `fsync` of the directory.
//! - [`create_new_durable`]: create a file that must not exist yet (create-only), fsynced
//!   with its directory.
//! - [`sync_dir`]: `fsync` of a directory, so that a rename or a new entry in it is durable.
//! - [`append_durable`]: append bytes to a file and `fdatasync` before returning.
//!
//! Every function is blocking; async callers run them in `spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `fsync` of a directory: makes entries created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_of(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(p) => Ok(p),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )),
    }
}

fn temp_name(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", path.display()),
        )
    })?;
    let mut tmp = name.to_os_string();
    tmp.push(format!(".tmp.{}", std::process::id()));
    Ok(parent_of(path)?.join(tmp))
}

/// Writes `bytes` to `path` atomically and durably: a crash at any moment leaves either the
/// previous content of `path` (or no file) or exactly `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_name(path)?;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(parent_of(path)?)
    })();
    if result.is_err() {
        // Best effort: a temporary file left by a failed write is ours and holds nothing
        // that was acknowledged.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Creates `path` with `bytes`, failing with `AlreadyExists` if it exists; durable (file and
/// directory fsynced) when it returns `Ok`.
pub fn create_new_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_dir(parent_of(path)?)
}

/// Appends `bytes` to the already open `file` and makes them durable (`fdatasync`).
pub fn append_durable(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"first version, long").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn create_new_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seg");
        create_new_durable(&p, b"a").unwrap();
        let err = create_new_durable(&p, b"b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"a");
    }

    #[test]
    fn append_durable_appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        append_durable(&mut f, b"one\n").unwrap();
        append_durable(&mut f, b"two\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn write_atomic_in_missing_dir_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("x");
        assert!(write_atomic(&p, b"x").is_err());
    }
}
