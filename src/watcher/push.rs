//! `redovault push`: ship the given archived logs now and exit (like pgBackRest's
//! `archive-push`), for scripts and for catching up by hand.
//!
//! The same rules as the daemon, file by file: validate (complete, every block good), refuse a
//! log whose identity or file name is in the manifest with other bytes, put it under its
//! content key, append the manifest entry (durably), and at the end seal the manifest segment
//! into WORM. It takes the state directory's lock, so it never runs beside a watcher on the
//! same manifest.

use std::path::PathBuf;

use serde::Serialize;

use super::WatchError;
use super::config::Config;
use super::ledger;
use super::ship;
use super::validate::{self, Verdict};
use crate::alert::now_rfc3339;
use crate::manifest::{
    ManifestDir, ManifestEntry, ManifestError, SealRecord, Sha256Digest, segment_key,
};
use crate::store::{ArchiveStore, FileSource};

/// What happened to one file.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PushOutcome {
    /// Put into WORM and recorded.
    Shipped {
        /// The new manifest entry.
        entry: Box<ManifestEntry>,
    },
    /// Already recorded with the same bytes.
    AlreadyShipped {
        /// The entry recording it.
        index: u64,
    },
    /// Not shipped: incomplete, damaged, not redo, or a replacement of a shipped log.
    Refused {
        /// The first bad or missing block, when known.
        block: Option<u32>,
        /// Why.
        reason: String,
    },
    /// Shipping failed (store or I/O); it may be pushed again.
    Failed {
        /// Why.
        error: String,
    },
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct PushResult {
    /// The file.
    pub file: PathBuf,
    /// What happened.
    #[serde(flatten)]
    pub outcome: PushOutcome,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Per file, in the order given.
    pub files: Vec<PushResult>,
    /// Keys of the manifest segments sealed into WORM at the end.
    pub sealed: Vec<String>,
    /// Why sealing failed, if it did (the segment stays local and is sealed next time).
    pub seal_error: Option<String>,
}

impl PushReport {
    /// True when every file is shipped (now or before) and the manifest is sealed.
    pub fn all_ok(&self) -> bool {
        self.seal_error.is_none()
            && self.files.iter().all(|f| {
                matches!(
                    f.outcome,
                    PushOutcome::Shipped { .. } | PushOutcome::AlreadyShipped { .. }
                )
            })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ManifestError> + Send + 'static,
) -> Result<T, WatchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WatchError::Other(e.to_string()))?
        .map_err(WatchError::from)
}

/// Pushes `files` with `store`, recording them in the manifest of `cfg.state.dir`.
pub async fn push<S: ArchiveStore>(
    cfg: &Config,
    store: &S,
    files: &[PathBuf],
) -> Result<PushReport, WatchError> {
    let _lock = ledger::lock_state(&cfg.state.dir)?;
    let mdir = cfg.manifest_dir();
    let mut manifest = blocking(move || ManifestDir::open(&mdir, &mut |_| {})).await?;
    if let Err(e) = store.check().await
        && !e.is_transient()
    {
        return Err(e.into());
    }
    let mut out = Vec::new();
    for file in files {
        let outcome = push_one(cfg, store, &mut manifest, file).await?;
        out.push(PushResult {
            file: file.clone(),
            outcome,
        });
        if let Some(PushResult {
            outcome: PushOutcome::Shipped { entry },
            file,
        }) = out.last()
        {
            tracing::info!(
                file = %file.display(),
                sequence = entry.sequence.0,
                key = %entry.object_key,
                index = entry.index,
                "archived log pushed"
            );
        }
    }
    // Seal into WORM what this run recorded (and anything left unsealed before).
    let (m, unsealed) = blocking(move || {
        manifest.close_segment()?;
        let u = manifest.unsealed();
        Ok((manifest, u))
    })
    .await?;
    manifest = m;
    let mut sealed = Vec::new();
    let mut seal_error = None;
    for seg in unsealed {
        let key = segment_key(&cfg.store.prefix, &seg);
        let src = FileSource {
            path: seg.path.clone(),
            size: seg.size,
            sha256: seg.sha256.0,
        };
        match store.put_file(&key, &src).await {
            Ok(put) => {
                let record = SealRecord {
                    first: seg.first,
                    last: seg.last,
                    sha256: seg.sha256,
                    key: key.clone(),
                    version_id: put.version_id.clone(),
                    retain_until: put.lock.map(|l| {
                        l.retain_until
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    }),
                    sealed_at: now_rfc3339(),
                };
                manifest = blocking(move || {
                    manifest.mark_sealed(record)?;
                    Ok(manifest)
                })
                .await?;
                sealed.push(key);
            }
            Err(e) => {
                seal_error = Some(format!("cannot seal manifest segment {key}: {e}"));
                break;
            }
        }
    }
    Ok(PushReport {
        files: out,
        sealed,
        seal_error,
    })
}

async fn push_one<S: ArchiveStore>(
    cfg: &Config,
    store: &S,
    manifest: &mut ManifestDir,
    file: &std::path::Path,
) -> Result<PushOutcome, WatchError> {
    let p = file.to_path_buf();
    let v = match tokio::task::spawn_blocking(move || validate::validate(&p))
        .await
        .map_err(|e| WatchError::Other(e.to_string()))?
    {
        Ok(v) => v,
        Err(e) => {
            return Ok(PushOutcome::Failed {
                error: format!("cannot read {}: {e}", file.display()),
            });
        }
    };
    let (info, sha) = match (v.verdict, v.sha256) {
        (Verdict::Complete { info, .. }, Some(sha)) => (info, sha),
        (Verdict::Incomplete { block, reason, .. }, _) => {
            return Ok(PushOutcome::Refused { block, reason });
        }
        (Verdict::NotRedo { reason, .. }, _) => {
            return Ok(PushOutcome::Refused {
                block: Some(0),
                reason,
            });
        }
        _ => {
            return Ok(PushOutcome::Failed {
                error: format!("{} changed while it was read", file.display()),
            });
        }
    };
    let digest = Sha256Digest(sha);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(r) = manifest.by_identity(&info.identity()) {
        if r.sha256 == digest {
            return Ok(PushOutcome::AlreadyShipped { index: r.index });
        }
        return Ok(PushOutcome::Refused {
            block: None,
            reason: format!(
                "replaced log: thread {} sequence {} was shipped with sha256 {} (manifest entry \
                 {}), this file has {digest}; the WORM copy stays",
                info.thread, info.sequence, r.sha256, r.index
            ),
        });
    }
    if let Some(r) = manifest.by_file_name(&name)
        && r.sha256 != digest
    {
        return Ok(PushOutcome::Refused {
            block: None,
            reason: format!(
                "replaced log: {name} was shipped with sha256 {} (manifest entry {}), this file \
                 has {digest}; the WORM copy stays",
                r.sha256, r.index
            ),
        });
    }
    let shipped = match ship::put_log(store, cfg, file, v.ident.size, sha).await {
        Ok(p) if p.confirms(v.ident.size, &sha) => p,
        Ok(p) => {
            return Ok(PushOutcome::Failed {
                error: format!(
                    "the store confirmed {} bytes with sha256 {} for {}, not the object of this log",
                    p.put.size,
                    hex::encode(p.put.sha256),
                    file.display()
                ),
            });
        }
        Err(e) => {
            return Ok(PushOutcome::Failed {
                error: e.to_string(),
            });
        }
    };
    let entry = ship::new_entry(&info, &shipped, (v.ident.size, sha), file, now_rfc3339());
    let e = manifest.append(entry)?;
    Ok(PushOutcome::Shipped { entry: Box::new(e) })
}
