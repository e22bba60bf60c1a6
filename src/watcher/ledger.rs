//! The watcher's local ledger besides the manifest: the state-directory lock and the file
//! index.
//!
//! - **Lock** (`STATE/lock`): one process at a time owns a state directory (its manifest); a
//!   second `watch` or a `push` is refused with the holder's pid. The lock is an OS file lock,
//!   released by the kernel when the process dies, even by `kill -9`.
//! - **Index** (`STATE/files.json`): path and identity (size, mtime, inode) of files known to
//!   be shipped, with their SHA-256, so that a restart does not read every archived log again.
//!   It is only a cache: the manifest is the record of what shipped. A file missing from the
//!   index, or whose identity changed, is validated again (and found already shipped, or
//!   reported as replaced).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scan::FileIdent;
use crate::durable;
use crate::manifest::Sha256Digest;

/// Holds the state directory's lock until dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// The state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "state directory {dir} is in use by another redovault process ({holder}); stop it first"
    )]
    Busy {
        dir: String,
        /// What the lock file says (pid).
        holder: String,
    },
    /// It cannot be created or locked.
    #[error("state directory {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the lock of `dir` (created if needed) and writes our pid into it.
pub fn lock_state(dir: &Path) -> Result<StateLock, LockError> {
    let io = |source| LockError::Io {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let path = dir.join("lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            return Err(LockError::Busy {
                dir: dir.display().to_string(),
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    f.set_len(0).map_err(io)?;
    f.rewind().map_err(io)?;
    write!(f, "pid {}", std::process::id()).map_err(io)?;
    Ok(StateLock { _file: f })
}

/// One shipped file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub path: PathBuf,
    /// Its identity when it was shipped (or found already shipped).
    pub ident: FileIdent,
    /// Its SHA-256.
    pub sha256: Sha256Digest,
}

#[derive(Debug, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    files: Vec<IndexEntry>,
}

const INDEX: &str = "files.json";

/// Reads the index; a missing or unreadable one is empty (it is only a cache), with a
/// warning for the latter.
pub fn load_index(dir: &Path) -> (HashMap<PathBuf, IndexEntry>, Option<String>) {
    let p = dir.join(INDEX);
    match std::fs::read(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (HashMap::new(), None),
        Err(e) => (
            HashMap::new(),
            Some(format!(
                "cannot read {}: {e}; every file is validated again",
                p.display()
            )),
        ),
        Ok(b) => match serde_json::from_slice::<IndexFile>(&b) {
            Ok(f) if f.version == 1 => (
                f.files.into_iter().map(|e| (e.path.clone(), e)).collect(),
                None,
            ),
            _ => (
                HashMap::new(),
                Some(format!(
                    "{} is not a file index; every file is validated again",
                    p.display()
                )),
            ),
        },
    }
}

/// Writes the index atomically. Blocking.
pub fn write_index(dir: &Path, entries: &HashMap<PathBuf, IndexEntry>) -> std::io::Result<()> {
    let mut files: Vec<IndexEntry> = entries.values().cloned().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes =
        serde_json::to_vec(&IndexFile { version: 1, files }).map_err(std::io::Error::other)?;
    durable::write_atomic(&dir.join(INDEX), &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_with_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = lock_state(d.path()).unwrap();
        let e = lock_state(d.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        lock_state(d.path()).unwrap();
    }

    #[test]
    fn index_round_trip_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        let (empty, warn) = load_index(d.path());
        assert!(empty.is_empty() && warn.is_none());
        let e = IndexEntry {
            path: "/a/x.dbf".into(),
            ident: FileIdent {
                size: 1,
                mtime_ns: 2,
                ino: 3,
                dev: 4,
            },
            sha256: Sha256Digest::of(b"x"),
        };
        let mut m = HashMap::new();
        m.insert(e.path.clone(), e.clone());
        write_index(d.path(), &m).unwrap();
        let (back, warn) = load_index(d.path());
        assert!(warn.is_none());
        assert_eq!(back.get(&e.path), Some(&e));
        std::fs::write(d.path().join(INDEX), b"garbage").unwrap();
        let (back, warn) = load_index(d.path());
        assert!(back.is_empty());
        assert!(warn.unwrap().contains("not a file index"));
    }
}
