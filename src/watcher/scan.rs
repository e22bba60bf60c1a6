//! The periodic rescan: the truth about which archived logs exist (filesystem events are only
//! hints that trigger a rescan sooner).
//!
//! Walks each archive directory down to `max_depth`, keeps regular files whose name the
//! configuration wants, and notes each one's identity ([`FileIdent`]: size, mtime, inode,
//! device), so that a file still being written, renamed in, or replaced is seen as changed.
//! Symbolic links inside the directories are not followed. Blocking: run it off the async
//! threads.

use std::path::PathBuf;
use std::time::SystemTime;

pub use crate::store::FileIdent;

/// One file found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: PathBuf,
    /// Its identity.
    pub ident: FileIdent,
    /// Its modification time.
    pub mtime: SystemTime,
    /// A temporary name (a log being written), not a log to ship.
    pub temp: bool,
}

/// What a scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Wanted files, in path order.
    pub files: Vec<Seen>,
    /// Directories that could not be listed (one line each).
    pub errors: Vec<String>,
}

/// What a file name is to the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An archived log to ship.
    Log,
    /// A temporary name a log is being written under.
    Temp,
}

/// Lists the files under `dirs` (depth 1: the directories themselves) that `classify` names.
pub fn scan(
    dirs: &[PathBuf],
    max_depth: u32,
    classify: &dyn Fn(&str) -> Option<Kind>,
) -> ScanResult {
    let mut out = ScanResult::default();
    let mut stack: Vec<(PathBuf, u32)> = dirs.iter().rev().map(|d| (d.clone(), 1)).collect();
    while let Some((dir, depth)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                out.errors
                    .push(format!("cannot list {}: {e}", dir.display()));
                continue;
            }
        };
        for entry in rd {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.errors
                        .push(format!("cannot list {}: {e}", dir.display()));
                    break;
                }
            };
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if depth < max_depth {
                    stack.push((entry.path(), depth + 1));
                }
                continue;
            }
            if !ft.is_file() {
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(kind) = classify(name) else {
                continue;
            };
            // The file may vanish between listing and stat (ARCn temp renamed, RMAN delete).
            let Ok(meta) = entry.metadata() else { continue };
            out.files.push(Seen {
                path: entry.path(),
                ident: FileIdent::of(&meta),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                temp: kind == Kind::Temp,
            });
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_wanted_files_to_the_depth_asked() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b/c")).unwrap();
        for p in [
            "x.dbf",
            "x.dbf.tmp",
            "a/y.dbf",
            "a/b/z.dbf",
            "a/b/c/deep.dbf",
        ] {
            std::fs::write(root.join(p), b"x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("x.dbf"), root.join("link.dbf")).unwrap();
        let wants = |n: &str| n.ends_with(".dbf").then_some(Kind::Log);
        let r = scan(&[root.to_path_buf()], 3, &wants);
        let names: Vec<String> = r
            .files
            .iter()
            .map(|s| s.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["a/b/z.dbf", "a/y.dbf", "x.dbf"]);
        assert!(r.errors.is_empty());
        let missing = scan(&[root.join("nope")], 3, &wants);
        assert_eq!(missing.errors.len(), 1);
        assert!(missing.errors[0].contains("nope"), "{:?}", missing.errors);
    }

    #[test]
    fn ident_changes_when_the_file_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let a = FileIdent::stat(&p).unwrap();
        std::fs::write(&p, b"three").unwrap();
        let b = FileIdent::stat(&p).unwrap();
        assert_ne!(a, b);
        assert_eq!(b.size, 5);
    }
}
