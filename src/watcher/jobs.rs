//! The units of work the shell runs concurrently (at most `parallel_uploads` file jobs):
//! validate a file, upload a validated log, copy a damaged file to quarantine, seal a manifest
//! segment. Each job only reads the file and talks to the store, and ends with the machine's
//! [`Event`]; every decision and every write to the local state is the machine's and the
//! shell's.
//!
//! Every job is safe to drop at any time (abort at shutdown): it writes nothing locally, and an
//! upload cut short leaves no object (or a complete one that the next attempt finds by HEAD).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sha2::{Digest, Sha256};

use tracing::debug;

use super::config::Config;
use super::machine::{Event, ValidLog, file_name};
use super::outcomes::{JobError, Shipped};
use super::scan::FileIdent;
use super::validate::{self, CHUNK};
use crate::compress::{self, Level};
use crate::manifest::{Encoding, ManifestEntry, SealRecord, SegmentInfo, Sha256Digest, StoredForm};
use crate::store::{ArchiveStore, FileSource, PutOutcome, StoreError};

/// Validates `path` off the async threads.
pub async fn validate_job(path: PathBuf) -> Event {
    let started = Instant::now();
    let p = path.clone();
    let result = tokio::task::spawn_blocking(move || validate::validate(&p))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    debug!(
        file = %path.display(),
        validate_ms = started.elapsed().as_secs_f64() * 1000.0,
        "validated"
    );
    Event::Validated {
        path,
        result,
        now: Instant::now(),
    }
}

/// Uploads a validated log under its content key (a task of its own).
pub async fn upload_job<S: ArchiveStore>(
    store: S,
    cfg: std::sync::Arc<Config>,
    log: ValidLog,
) -> Event {
    upload(&store, &cfg, log).await
}

/// Uploads a validated log under its content key (the daemon's job and `push` alike).
pub async fn upload<S: ArchiveStore>(store: &S, cfg: &Config, log: ValidLog) -> Event {
    let started = Instant::now();
    let result = put_log(store, cfg, &log.path, log.ident.size, log.sha256).await;
    Event::Uploaded {
        log,
        result,
        started,
        now: Instant::now(),
    }
}

/// Puts the validated log at `path` (`size` bytes, `sha256`) into the store, the one way the
/// daemon and `push` both use: as it is, or, with `[watch] compress`, as one zstd frame
/// written to the spool first (the original re-hashed in the same pass, so a file changed
/// since its validation is never shipped under the old digest). A log that does not shrink
/// ships raw. The spool file is removed whatever the upload's outcome.
pub async fn put_log<S: ArchiveStore>(
    store: &S,
    cfg: &Config,
    path: &Path,
    size: u64,
    sha256: Sha256Digest,
) -> Result<Shipped, StoreError> {
    let sha_hex = hex::encode(sha256);
    let raw = || FileSource {
        path: path.to_path_buf(),
        size,
        sha256,
    };
    let Some(level) = cfg.watch.compress else {
        let put = store.put_file(&cfg.archive_key(&sha_hex), &raw()).await?;
        return Ok(Shipped { put, stored: None });
    };
    let spool = spool_file(&cfg.spool_dir(), &sha_hex)?;
    let compressed = compress_to_spool(path, &spool, level).await;
    let result = match compressed {
        Err(e) => Err(e),
        Ok(c) if c.original_sha256 != sha256 || c.original_size != size => {
            Err(StoreError::SourceChanged {
                path: path.display().to_string(),
                detail: format!(
                    "{} bytes with sha256 {} when compressed, {size} bytes with {sha_hex} when validated",
                    c.original_size,
                    hex::encode(c.original_sha256)
                ),
            })
        }
        Ok(c) if c.stored_size >= size => store
            .put_file(&cfg.archive_key(&sha_hex), &raw())
            .await
            .map(|put| Shipped { put, stored: None }),
        Ok(c) => {
            let src = FileSource {
                path: spool.clone(),
                size: c.stored_size,
                sha256: c.stored_sha256,
            };
            store
                .put_file(&cfg.archive_key_zstd(&sha_hex, level), &src)
                .await
                .map(|put| Shipped {
                    put,
                    stored: Some(StoredForm {
                        encoding: Encoding::Zstd,
                        size: c.stored_size,
                        sha256: Sha256Digest(c.stored_sha256.0),
                    }),
                })
        }
    };
    let _ = tokio::fs::remove_file(&spool).await;
    result
}

/// A fresh spool file name for the log with SHA-256 `sha_hex` (the directory created).
fn spool_file(dir: &Path, sha_hex: &str) -> Result<PathBuf, StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        context: format!("creating the spool directory {}", dir.display()),
        source,
    })?;
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Ok(dir.join(format!("{sha_hex}.{}-{n}.zst", std::process::id())))
}

/// Removes what a previous run left in the spool (compressed copies of logs still on disk
/// under their own names); called before the first upload.
pub fn clear_spool(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(".zst") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// [`compress::compress_file`] off the async threads.
async fn compress_to_spool(
    path: &Path,
    spool: &Path,
    level: Level,
) -> Result<compress::FileCompression, StoreError> {
    let (p, sp) = (path.to_path_buf(), spool.to_path_buf());
    tokio::task::spawn_blocking(move || compress::compress_file(&p, &sp, level))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|source| StoreError::Io {
            context: format!("compressing {} to {}", path.display(), spool.display()),
            source,
        })
}

/// SHA-256 of a whole file and its identity before reading (blocking).
fn hash_file(path: &Path) -> std::io::Result<(FileIdent, Sha256Digest)> {
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
) -> Event {
    let p = path.clone();
    let hashed = tokio::task::spawn_blocking(move || hash_file(&p))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let result = match hashed {
        Err(source) => Err(JobError::Read {
            path: path.clone(),
            source,
        }),
        Ok((now, _)) if now != ident => Err(JobError::Changed { path: path.clone() }),
        Ok((now, sha)) => {
            let key = key_of(&hex::encode(sha));
            let src = FileSource {
                path: path.clone(),
                size: now.size,
                sha256: sha,
            };
            match store.put_file(&key, &src).await {
                Ok(_) => Ok((key, sha)),
                Err(e) => Err(JobError::Store(e)),
            }
        }
    };
    Event::Quarantined {
        path,
        ident,
        result,
        now: Instant::now(),
    }
}

/// Puts a closed manifest segment into WORM.
pub async fn seal_job<S: ArchiveStore>(store: S, key: String, seg: SegmentInfo) -> Event {
    let src = FileSource {
        path: seg.path.clone(),
        size: seg.size,
        sha256: Sha256Digest(seg.sha256.0),
    };
    let result = store.put_file(&key, &src).await;
    Event::Sealed { seg, key, result }
}

/// The manifest entry of a shipped log (its size and SHA-256 are the file's, whatever form the
/// object has); its `index` and `prev` are set when it is appended.
pub fn new_entry(log: &ValidLog, shipped: &Shipped, shipped_at: String) -> ManifestEntry {
    let info = &log.info;
    let put = &shipped.put;
    ManifestEntry {
        index: 0,
        prev: Sha256Digest::ZERO,
        db_id: info.db_id,
        db_name: info.db_name.clone(),
        resetlogs_id: info.resetlogs_id,
        thread: info.thread,
        sequence: info.sequence,
        first_scn: info.first_scn,
        next_scn: info.next_scn.unwrap_or_default(),
        first_time: info.first_time.to_iso8601(),
        next_time: info.next_time.to_iso8601(),
        size: log.ident.size,
        sha256: Sha256Digest(log.sha256.0),
        object_key: put.key.clone(),
        version_id: put.version_id.clone(),
        retain_until: put.lock.map(|l| {
            l.retain_until
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
        shipped_at,
        file_name: file_name(&log.path),
        stored: shipped.stored.clone(),
    }
}

/// The record of a segment the store confirmed in WORM (daemon and `push` alike).
pub fn seal_record(
    seg: &SegmentInfo,
    key: String,
    put: &PutOutcome,
    sealed_at: String,
) -> SealRecord {
    SealRecord {
        first: seg.first,
        last: seg.last,
        sha256: seg.sha256,
        key,
        version_id: put.version_id.clone(),
        retain_until: put.lock.map(|l| {
            l.retain_until
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }),
        sealed_at,
    }
}
