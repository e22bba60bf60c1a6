//! The attack, as the 2011 and 2013 wipers did it, with root on the database host: kill
//! what runs, `dd` zeros over the online redo logs, `rm -rf` the archive destination, the
//! online logs and redovault's own state and configuration; then, with the database host's
//! own S3 credentials, try to delete, overwrite and shorten the retention of what is in WORM.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::DrillError;

/// One thing the attacker did, and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    /// What was tried.
    pub action: String,
    /// What happened.
    pub outcome: String,
    /// For attempts on WORM: true when the server refused (what must happen). Wiping the
    /// host always succeeds (`None`).
    pub refused: Option<bool>,
}

impl Action {
    /// An action on the host (it works: the attacker is root).
    pub fn done(action: impl Into<String>, outcome: impl Into<String>) -> Action {
        Action {
            action: action.into(),
            outcome: outcome.into(),
            refused: None,
        }
    }
}

/// `dd if=/dev/zero of=FILE bs=1M count=SIZE conv=fsync` over every file of `dir`.
pub fn zero_files(dir: &Path) -> Result<Action, DrillError> {
    let mut n = 0;
    let mut bytes = 0u64;
    let entries = fs::read_dir(dir).map_err(|e| DrillError::io(dir, e))?;
    for e in entries.flatten() {
        let p = e.path();
        let len = fs::metadata(&p)
            .map_err(|err| DrillError::io(&p, err))?
            .len();
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .map_err(|err| DrillError::io(&p, err))?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let k = left.min(zeros.len() as u64) as usize;
            f.write_all(&zeros[..k])
                .map_err(|err| DrillError::io(&p, err))?;
            left -= k as u64;
        }
        f.sync_all().map_err(|err| DrillError::io(&p, err))?;
        n += 1;
        bytes += len;
    }
    Ok(Action::done(
        format!(
            "dd if=/dev/zero over every online redo log in {}",
            dir.display()
        ),
        format!(
            "{n} files, {:.1} MiB zeroed and fsynced",
            bytes as f64 / 1048576.0
        ),
    ))
}

/// `rm -rf DIR`, counting what was there.
pub fn remove_tree(dir: &Path, what: &str) -> Result<Action, DrillError> {
    let (files, bytes) = count(dir);
    fs::remove_dir_all(dir).map_err(|e| DrillError::io(dir, e))?;
    Ok(Action::done(
        format!("rm -rf {} ({what})", dir.display()),
        format!("{files} files, {:.1} MiB gone", bytes as f64 / 1048576.0),
    ))
}

fn count(dir: &Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let (f, b) = count(&p);
                    files += f;
                    bytes += b;
                }
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroes_and_removes() {
        let d = tempfile::tempdir().unwrap();
        let online = d.path().join("online");
        fs::create_dir_all(online.join("sub")).unwrap();
        fs::write(online.join("a.log"), vec![7u8; 3000]).unwrap();
        fs::create_dir_all(d.path().join("x/y")).unwrap();
        fs::write(d.path().join("x/y/z"), b"abc").unwrap();
        let a = zero_files(&online);
        // A directory among the files cannot be opened for writing: an error naming it.
        assert!(a.is_err());
        fs::remove_dir_all(online.join("sub")).unwrap();
        let a = zero_files(&online).unwrap();
        assert!(a.outcome.starts_with("1 files"), "{a:?}");
        assert!(
            fs::read(online.join("a.log"))
                .unwrap()
                .iter()
                .all(|&b| b == 0)
        );
        assert_eq!(fs::metadata(online.join("a.log")).unwrap().len(), 3000);
        let a = remove_tree(&d.path().join("x"), "state").unwrap();
        assert!(a.outcome.starts_with("1 files"), "{a:?}");
        assert!(!d.path().join("x").exists());
    }
}
