//! The watcher's status: written atomically to `STATE/status.json` by the daemon every
//! `status_interval` (and at shutdown), read by `redovault status`.
//!
//! `redovault status` recomputes the per-thread part from the manifest itself (the record of
//! what is in WORM), adding the unshipped sequences the daemon last reported, so the answer to
//! "what may RMAN delete" never depends on the daemon being alive. The daemon part (backlog,
//! errors, alarms) is shown with its age, and a status file older than three intervals is
//! reported as "not responding".

use redovault_redo::position::{DbId, ResetlogsId};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::gaps::{Gaps, ThreadStatus};
use crate::manifest::{self, LogIdentity, ManifestError};

/// Format version of `status.json`.
pub const VERSION: u32 = 1;

/// Files waiting to be shipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backlog {
    /// Files not shipped yet (waiting, validating, uploading, retrying, incomplete).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Age of the oldest (from its modification time or first sighting, the earlier).
    pub oldest_age_seconds: Option<f64>,
    pub oldest_file: Option<String>,
    /// Of these, files whose last upload attempt failed.
    pub failing: u64,
    /// Of these, files incomplete or damaged (within the grace period).
    pub incomplete: u64,
}

/// A file that stayed incomplete or damaged past the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedFile {
    pub path: String,
    /// The first missing or bad block.
    pub block: Option<u32>,
    pub reason: String,
    /// Its quarantine copy in WORM, once stored.
    pub quarantine_key: Option<String>,
}

/// A file that reappeared with other bytes than the shipped log it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacedFile {
    pub path: String,
    /// SHA-256 of what was shipped (and stays in WORM).
    pub shipped_sha256: String,
    /// SHA-256 of the file now, when read whole.
    pub found_sha256: Option<String>,
    /// The manifest entry of the shipped log.
    pub manifest_index: u64,
}

/// A file the include patterns match that is not a redo log: left alone, never shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotRedoFile {
    pub path: String,
    /// Byte offset of the first field that is not a redo log's.
    pub offset: u64,
    /// What was found.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub at: String,
    /// Kind (as in the errors metric).
    pub kind: String,
    pub message: String,
}

/// An alarm, briefly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmBrief {
    pub at: String,
    pub kind: String,
    pub message: String,
}

/// Where the manifest stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStatus {
    pub entries: u64,
    /// Hash of the last entry.
    pub last_hash: String,
    /// Last entry covered by segments sealed in WORM.
    pub sealed_through: Option<u64>,
    /// Entries not yet sealed in WORM.
    pub unsealed_entries: u64,
}

/// A log known but not shipped, for the per-thread view of `redovault status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unshipped {
    pub db_id: DbId,
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
    pub sequence: u32,
}

impl Unshipped {
    /// From an identity.
    pub fn of(id: &LogIdentity) -> Unshipped {
        Unshipped {
            db_id: id.db_id,
            resetlogs_id: id.resetlogs_id,
            thread: id.thread.0,
            sequence: id.sequence.0,
        }
    }

    fn identity(&self) -> LogIdentity {
        LogIdentity {
            db_id: self.db_id,
            resetlogs_id: self.resetlogs_id,
            thread: redovault_redo::position::ThreadId(self.thread),
            sequence: redovault_redo::position::LogSeq(self.sequence),
        }
    }
}

/// The content of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Format version.
    pub version: u32,
    /// The daemon's pid.
    pub pid: u32,
    pub started_at: String,
    /// When this was written.
    pub written_at: String,
    /// The same, as Unix milliseconds (for the staleness check).
    pub written_at_unix_ms: u64,
    /// How often the daemon rewrites this file.
    pub status_interval_ms: u64,
    /// False in the last status written at a clean shutdown.
    pub running: bool,
    /// The store, as its start-up check described it.
    pub store: String,
    /// The Prometheus endpoint, if any.
    pub metrics_addr: Option<String>,
    /// Per thread.
    pub threads: Vec<ThreadStatus>,
    /// Logs known but not shipped.
    pub unshipped: Vec<Unshipped>,
    /// Waiting files.
    pub backlog: Backlog,
    /// Files incomplete or damaged past the grace period.
    pub damaged: Vec<DamagedFile>,
    /// Files that replaced a shipped log with other bytes.
    pub replaced: Vec<ReplacedFile>,
    /// Files that are not redo logs (left alone). Absent in status files of older versions.
    #[serde(default)]
    pub not_redo: Vec<NotRedoFile>,
    /// Missing sequences in all.
    pub gap_sequences: u64,
    pub last_error: Option<LastError>,
    /// When the last log was shipped.
    pub last_success_at: Option<String>,
    /// Logs shipped since start.
    pub shipped_files: u64,
    /// Bytes shipped since start.
    pub shipped_bytes: u64,
    pub manifest: ManifestStatus,
    /// The latest alarms (newest last).
    pub recent_alarms: Vec<AlarmBrief>,
}

/// Why the status cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The status file cannot be read.
    #[error("{path}: {detail}")]
    File {
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The manifest cannot be read or is broken.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// What `redovault status` shows: the daemon's view, refreshed from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// "running", "stopped", "not responding" or "never started".
    pub daemon: String,
    /// Age of the status file in seconds.
    pub status_age_seconds: Option<f64>,
    /// Per thread, from the manifest (plus the daemon's unshipped sequences).
    pub threads: Vec<ThreadStatus>,
    pub manifest_entries: u64,
    /// The daemon's last status, if any.
    pub status: Option<Status>,
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

/// Builds the report from a state directory: `status.json` and `manifest/`.
pub fn report(state_dir: &Path) -> Result<Report, StatusError> {
    let status_path = state_dir.join("status.json");
    let status: Option<Status> = match std::fs::read(&status_path) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| StatusError::File {
            path: status_path.display().to_string(),
            detail: format!("not a status file: {e}"),
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(StatusError::File {
                path: status_path.display().to_string(),
                detail: e.to_string(),
            });
        }
    };
    let entries = manifest::read_entries(&state_dir.join("manifest"))?;
    let mut gaps = Gaps::new();
    for e in &entries {
        gaps.shipped(e);
    }
    if let Some(s) = &status {
        for u in &s.unshipped {
            let name = s
                .threads
                .iter()
                .find(|t| t.db_id == u.db_id)
                .map(|t| t.db_name.clone())
                .unwrap_or_default();
            gaps.seen_unshipped(&u.identity(), &name);
        }
    }
    let (daemon, age) = match &status {
        None => ("never started".to_string(), None),
        Some(s) => {
            let age = now_ms().saturating_sub(s.written_at_unix_ms) as f64 / 1000.0;
            let limit = (3 * s.status_interval_ms).max(5000) as f64 / 1000.0;
            let d = if !s.running {
                "stopped"
            } else if age > limit {
                "not responding"
            } else {
                "running"
            };
            (d.to_string(), Some(age))
        }
    };
    Ok(Report {
        daemon,
        status_age_seconds: age,
        threads: gaps.status(),
        manifest_entries: entries.len() as u64,
        status,
    })
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

impl Report {
    /// The human-readable form.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let age = self
            .status_age_seconds
            .map(|a| format!(", status {a:.1} s old"))
            .unwrap_or_default();
        match &self.status {
            Some(s) => o.push_str(&format!(
                "watcher: {} (pid {}{age})\nstore: {}\n",
                self.daemon, s.pid, s.store
            )),
            None => o.push_str(&format!("watcher: {}\n", self.daemon)),
        }
        if self.threads.is_empty() {
            o.push_str("threads: nothing shipped yet\n");
        }
        for t in &self.threads {
            o.push_str(&format!(
                "thread {} of {} (db id {}, resetlogs id {}): ",
                t.thread, t.db_name, t.db_id, t.resetlogs_id
            ));
            match &t.last_shipped {
                Some(l) => o.push_str(&format!(
                    "last shipped sequence {} (next SCN {}, {}), shipped {}; {} logs\n",
                    l.sequence, l.next_scn, l.next_time, l.shipped_at, t.shipped
                )),
                None => o.push_str("nothing shipped\n"),
            }
            let safe = t
                .safe_to_delete_through
                .map_or("none".to_string(), |n| n.to_string());
            let gaps = if t.gaps.is_empty() {
                "none".to_string()
            } else {
                t.gaps
                    .iter()
                    .map(|r| {
                        if r.first == r.last {
                            r.first.to_string()
                        } else {
                            format!("{}-{}", r.first, r.last)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            o.push_str(&format!(
                "  safe to delete through sequence: {safe}; gaps: {gaps}; waiting: {}\n",
                t.unshipped.len()
            ));
        }
        if let Some(s) = &self.status {
            let b = &s.backlog;
            let oldest = match (&b.oldest_file, b.oldest_age_seconds) {
                (Some(f), Some(a)) => format!(", oldest {a:.0} s ({f})"),
                _ => String::new(),
            };
            o.push_str(&format!(
                "backlog: {} files, {}{oldest}; {} failing, {} incomplete\n",
                b.files,
                human_bytes(b.bytes),
                b.failing,
                b.incomplete
            ));
            for d in &s.damaged {
                o.push_str(&format!(
                    "DAMAGED: {} (block {}): {}{}\n",
                    d.path,
                    d.block.map_or("?".to_string(), |b| b.to_string()),
                    d.reason,
                    d.quarantine_key
                        .as_ref()
                        .map(|k| format!("; quarantined as {k}"))
                        .unwrap_or_default()
                ));
            }
            for n in &s.not_redo {
                o.push_str(&format!(
                    "NOT REDO (left alone, not shipped): {}: {}\n",
                    n.path, n.reason
                ));
            }
            for r in &s.replaced {
                o.push_str(&format!(
                    "REPLACED: {} differs from shipped entry {} (sha256 {}); the WORM copy stays\n",
                    r.path, r.manifest_index, r.shipped_sha256
                ));
            }
            match &s.last_error {
                Some(e) => o.push_str(&format!(
                    "last error: {} [{}] {}\n",
                    e.at, e.kind, e.message
                )),
                None => o.push_str("last error: none\n"),
            }
            o.push_str(&format!(
                "last success: {}\n",
                s.last_success_at.as_deref().unwrap_or("none")
            ));
            let m = &s.manifest;
            o.push_str(&format!(
                "manifest: {} entries, last hash {}, sealed in WORM through entry {}, {} not yet sealed\n",
                m.entries,
                m.last_hash,
                m.sealed_through.map_or("none".to_string(), |n| n.to_string()),
                m.unsealed_entries
            ));
            for a in s.recent_alarms.iter().rev().take(5) {
                o.push_str(&format!("alarm: {} [{}] {}\n", a.at, a.kind, a.message));
            }
        } else {
            o.push_str(&format!("manifest: {} entries\n", self.manifest_entries));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ManifestDir, ManifestEntry, Sha256Digest};
    use redovault_redo::position::{LogSeq, Scn, ThreadId};

    fn new_entry(seq: u32) -> ManifestEntry {
        ManifestEntry {
            index: 0,
            prev: Sha256Digest::ZERO,
            db_id: DbId(9),
            db_name: "FREE".into(),
            resetlogs_id: ResetlogsId(5),
            thread: ThreadId(1),
            sequence: LogSeq(seq),
            first_scn: Scn(10),
            next_scn: Scn(20 + u64::from(seq)),
            first_time: "a".into(),
            next_time: "2026-03-07T00:00:00Z".into(),
            size: 1,
            sha256: Sha256Digest::of(&seq.to_le_bytes()),
            object_key: "k".into(),
            version_id: None,
            retain_until: None,
            shipped_at: "2026-03-07T00:00:01Z".into(),
            file_name: format!("f{seq}"),
            stored: None,
        }
    }

    fn status(running: bool, age_ms: u64, unshipped: Vec<Unshipped>) -> Status {
        Status {
            version: VERSION,
            pid: 42,
            started_at: "s".into(),
            written_at: "w".into(),
            written_at_unix_ms: now_ms() - age_ms,
            status_interval_ms: 1000,
            running,
            store: "bucket b".into(),
            metrics_addr: None,
            threads: Vec::new(),
            unshipped,
            backlog: Backlog {
                files: 2,
                bytes: 3 << 20,
                oldest_age_seconds: Some(12.0),
                oldest_file: Some("/a/x.dbf".into()),
                failing: 1,
                incomplete: 0,
            },
            damaged: vec![DamagedFile {
                path: "/a/bad.dbf".into(),
                block: Some(37),
                reason: "block 37 is bad: checksum".into(),
                quarantine_key: Some("p/quarantine/sha256/ab".into()),
            }],
            replaced: Vec::new(),
            not_redo: Vec::new(),
            gap_sequences: 0,
            last_error: None,
            last_success_at: None,
            shipped_files: 0,
            shipped_bytes: 0,
            manifest: ManifestStatus::default(),
            recent_alarms: Vec::new(),
        }
    }

    #[test]
    fn report_merges_manifest_and_daemon_view() {
        let d = tempfile::tempdir().unwrap();
        let r = report(d.path()).unwrap();
        assert_eq!(r.daemon, "never started");
        assert!(r.threads.is_empty());
        let mut m = ManifestDir::open(&d.path().join("manifest"), &mut |_| {}).unwrap();
        for s in [1, 2, 3, 5] {
            m.append(new_entry(s)).unwrap();
        }
        let u = Unshipped {
            db_id: DbId(9),
            resetlogs_id: ResetlogsId(5),
            thread: 1,
            sequence: 6,
        };
        let s = status(true, 100, vec![u]);
        std::fs::write(
            d.path().join("status.json"),
            serde_json::to_vec(&s).unwrap(),
        )
        .unwrap();
        let r = report(d.path()).unwrap();
        assert_eq!(r.daemon, "running");
        assert_eq!(r.manifest_entries, 4);
        let t = &r.threads[0];
        assert_eq!(t.last_shipped.as_ref().unwrap().sequence, 5);
        assert_eq!(t.safe_to_delete_through, Some(3));
        assert_eq!(t.gaps.len(), 1);
        assert_eq!((t.gaps[0].first, t.gaps[0].last), (4, 4));
        assert_eq!(t.unshipped, vec![6]);
        let text = r.render();
        assert!(text.contains("last shipped sequence 5"), "{text}");
        assert!(
            text.contains("safe to delete through sequence: 3; gaps: 4"),
            "{text}"
        );
        assert!(text.contains("DAMAGED: /a/bad.dbf (block 37)"), "{text}");
        assert!(text.contains("backlog: 2 files, 3.0 MiB"), "{text}");

        let stale = status(true, 60_000, Vec::new());
        std::fs::write(
            d.path().join("status.json"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        assert_eq!(report(d.path()).unwrap().daemon, "not responding");
        let stopped = status(false, 60_000, Vec::new());
        std::fs::write(
            d.path().join("status.json"),
            serde_json::to_vec(&stopped).unwrap(),
        )
        .unwrap();
        let r = report(d.path()).unwrap();
        assert_eq!(r.daemon, "stopped");
        assert_eq!(r.threads[0].safe_to_delete_through, Some(3));
    }

    #[test]
    fn broken_status_file_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("status.json"), b"{not json").unwrap();
        let e = report(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("status.json") && e.contains("not a status file"),
            "{e}"
        );
    }
}
