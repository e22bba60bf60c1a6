//! Free space of the watched archive destinations' file systems, for the
//! `redovault_watcher_destination_free_bytes` / `..._size_bytes` gauges (label `dir`, the
//! configured directory).
//!
//! Why here: when an archive destination fills up, ARCn cannot archive, and once every
//! online log waits for archiving the database stalls (ORA-00257, "archiver stuck"); with the
//! destination MANDATORY that is the whole database, for redovault's sake when the store is
//! unreachable and the RMAN gate keeps every unshipped log. The alert rules warn while there
//! is still time (little space left, or the fill rate reaching zero within hours).
//!
//! Measured with statvfs (through `rustix`, no `unsafe`): the space an unprivileged user
//! (Oracle) may still use, `f_bavail × f_frsize`, not the root reserve.

use std::io;
use std::path::{Path, PathBuf};

use super::metrics::WatcherMetrics;

/// A file system's space, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Usable by an unprivileged user.
    pub free: u64,
    /// Total.
    pub size: u64,
}

/// The space of the file system holding `dir`.
pub fn space(dir: &Path) -> io::Result<Space> {
    let s = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(Space {
        free: s.f_bavail.saturating_mul(s.f_frsize),
        size: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// Measures every directory in `dirs` and sets its gauges; returns the ones that cannot be
/// measured, with why (their gauges keep their last value; the caller reports the errors).
pub fn refresh(metrics: &WatcherMetrics, dirs: &[PathBuf]) -> Vec<(PathBuf, io::Error)> {
    let mut failed = Vec::new();
    for d in dirs {
        match space(d) {
            Ok(s) => {
                let name = d.display().to_string();
                metrics.destination_free.with(&name).set(s.free as f64);
                metrics.destination_size.with(&name).set(s.size as f64);
            }
            Err(e) => failed.push((d.clone(), e)),
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_the_file_system_and_names_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = space(dir.path()).unwrap();
        assert!(s.size > 0 && s.free <= s.size, "{s:?}");
        let m = WatcherMetrics::new();
        let missing = dir.path().join("missing");
        let failed = refresh(&m, &[dir.path().to_path_buf(), missing.clone()]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, missing);
        assert_eq!(failed[0].1.kind(), io::ErrorKind::NotFound);
        let text = m.registry.render();
        let name = dir.path().display().to_string();
        let line = |metric: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{metric}{{dir=\"{name}\"}} ")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{metric} missing:\n{text}"))
        };
        let (free, size) = (
            line("redovault_watcher_destination_free_bytes"),
            line("redovault_watcher_destination_size_bytes"),
        );
        assert_eq!(size, s.size as f64);
        assert!(free > 0.0 && free <= size);
        assert!(!text.contains("missing\""));
    }
}
