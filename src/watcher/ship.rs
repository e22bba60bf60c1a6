//! The units of work the coordinator runs concurrently (at most `parallel_uploads` file jobs):
//! validate a file, upload a validated log, copy a damaged file to quarantine, seal a manifest
//! segment. Each job only reads the file and talks to the store; every decision and every
//! write to the local state is the coordinator's, on the job's [`Outcome`].
//!
//! Every job is safe to drop at any time (abort at shutdown): it writes nothing locally, and an
//! upload cut short leaves no object (or a complete one that the next attempt finds by HEAD).

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::scan::FileIdent;
use super::validate::{self, CHUNK, LogInfo, Validation};
use crate::manifest::{NewEntry, SegmentInfo, Sha256Digest};
use crate::store::{ArchiveStore, ErrorKind, FileSource, PutOutcome, StoreError};

/// What a job reports.
#[derive(Debug)]
pub enum Outcome {
    /// A validation pass ended.
    Validated {
        /// The file.
        path: PathBuf,
        /// When the pass started.
        started: Instant,
        /// Its result.
        result: std::io::Result<Validation>,
    },
    /// An upload of a complete log ended.
    Uploaded {
        /// The file.
        path: PathBuf,
        /// Its identity when validated.
        ident: FileIdent,
        /// Its headers.
        info: LogInfo,
        /// Its SHA-256.
        sha256: [u8; 32],
        /// When the upload started.
        started: Instant,
        /// The store's answer.
        result: Result<PutOutcome, StoreError>,
    },
    /// A quarantine copy ended.
    Quarantined {
        /// The file.
        path: PathBuf,
        /// Its identity when read.
        ident: FileIdent,
        /// The key and SHA-256 stored, or why not.
        result: Result<(String, [u8; 32]), String>,
    },
    /// Following a file while it was written ended: its validation, when it reached its
    /// declared size.
    Followed {
        /// (device, inode) of the file.
        key: (u64, u64),
        /// The validation of the whole file, if the follow reached its end.
        result: Option<Validation>,
    },
    /// A manifest segment seal ended.
    Sealed {
        /// The segment.
        seg: SegmentInfo,
        /// Its key.
        key: String,
        /// The store's answer.
        result: Result<PutOutcome, StoreError>,
    },
}

/// Validates `path` off the async threads.
pub async fn validate_job(path: PathBuf) -> Outcome {
    let started = Instant::now();
    let p = path.clone();
    let result = tokio::task::spawn_blocking(move || validate::validate(&p))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    Outcome::Validated {
        path,
        started,
        result,
    }
}

/// Uploads a complete log under its content key.
pub async fn upload_job<S: ArchiveStore>(
    store: S,
    key: String,
    path: PathBuf,
    ident: FileIdent,
    info: LogInfo,
    sha256: [u8; 32],
) -> Outcome {
    let started = Instant::now();
    let src = FileSource {
        path: path.clone(),
        size: ident.size,
        sha256,
    };
    let result = store.put_file(&key, &src).await;
    Outcome::Uploaded {
        path,
        ident,
        info,
        sha256,
        started,
        result,
    }
}

/// SHA-256 of a whole file and its identity before reading (blocking).
fn hash_file(path: &Path) -> std::io::Result<(FileIdent, [u8; 32])> {
    use std::io::Read as _;
    let mut f = std::fs::File::open(path)?;
    let ident = FileIdent::of(&f.metadata()?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok((ident, h.finalize().into()))
}

/// Copies an incomplete or damaged file, as it is now, to `key_of(sha256)`.
pub async fn quarantine_job<S: ArchiveStore>(
    store: S,
    path: PathBuf,
    ident: FileIdent,
    key_of: impl Fn(&str) -> String + Send,
) -> Outcome {
    let p = path.clone();
    let hashed = tokio::task::spawn_blocking(move || hash_file(&p))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let result = match hashed {
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok((now, _)) if now != ident => Err(format!("{} changed", path.display())),
        Ok((now, sha)) => {
            let key = key_of(&hex::encode(sha));
            let src = FileSource {
                path: path.clone(),
                size: now.size,
                sha256: sha,
            };
            match store.put_file(&key, &src).await {
                Ok(_) => Ok((key, sha)),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    Outcome::Quarantined {
        path,
        ident,
        result,
    }
}

/// Puts a closed manifest segment into WORM.
pub async fn seal_job<S: ArchiveStore>(store: S, key: String, seg: SegmentInfo) -> Outcome {
    let src = FileSource {
        path: seg.path.clone(),
        size: seg.size,
        sha256: seg.sha256.0,
    };
    let result = store.put_file(&key, &src).await;
    Outcome::Sealed { seg, key, result }
}

/// The manifest entry of a shipped log.
pub fn new_entry(info: &LogInfo, put: &PutOutcome, path: &Path, shipped_at: String) -> NewEntry {
    NewEntry {
        db_id: info.db_id,
        db_name: info.db_name.clone(),
        resetlogs_id: info.resetlogs_id,
        thread: info.thread,
        sequence: info.sequence,
        first_scn: info.first_scn,
        next_scn: info.next_scn.unwrap_or_default(),
        first_time: info.first_time.to_iso8601(),
        next_time: info.next_time.to_iso8601(),
        size: put.size,
        sha256: Sha256Digest(put.sha256),
        object_key: put.key.clone(),
        version_id: put.version_id.clone(),
        retain_until: put.lock.map(|l| {
            l.retain_until
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
        shipped_at,
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The error-metric label of a store error: its [`ErrorKind`] (classified once, by the store).
pub fn error_kind(e: &StoreError) -> &'static str {
    match e.kind() {
        ErrorKind::Transient => "upload_transient",
        ErrorKind::Config => "upload_config",
        ErrorKind::Tls => "upload_tls",
        ErrorKind::Auth => "upload_auth",
        ErrorKind::Permission => "upload_permission",
        ErrorKind::Missing => "upload_missing",
        ErrorKind::Conflict => "upload_conflict",
        ErrorKind::Integrity => "upload_integrity",
        ErrorKind::Refused => "upload_refused",
    }
}
