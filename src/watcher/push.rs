//! `redovault push`: ship the given archived logs now and exit (like pgBackRest's
//! `archive-push`), for scripts and for catching up by hand.
//!
//! The same rules as the daemon, file by file: validate (complete, every block good), refuse a
//! log whose identity or file name is in the manifest with other bytes, put it under its
//! content key, append the manifest entry (durably), and at the end seal the manifest segment
//! into WORM. It takes the state directory's lock, so it never runs beside a watcher on the
//! same manifest.

use crate::manifest::Sha256Digest;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::WatchError;
use super::config::Config;
use super::gaps::Gaps;
use super::jobs;
use super::ledger;
use super::machine::{Action, Event, FileState, Limits, Machine, Raise, file_name};
use super::scan::{FileIdent, Seen};
use super::validate::{Completeness, LogInfo, Validation};
use crate::alert::now_rfc3339;
use crate::manifest::{ManifestDir, ManifestEntry, ManifestError, segment_key};
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
            sha256: Sha256Digest(seg.sha256.0),
        };
        match store.put_file(&key, &src).await {
            Ok(put) => {
                let record = jobs::seal_record(&seg, key.clone(), &put, now_rfc3339());
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

/// Pushes one file through the daemon's own decisions ([`Machine`]): the same validation,
/// the same refusals, the same upload and the same manifest entry; only nothing is retried
/// (a failure is reported and the file may be pushed again).
async fn push_one<S: ArchiveStore>(
    cfg: &Config,
    store: &S,
    manifest: &mut ManifestDir,
    file: &Path,
) -> Result<PushOutcome, WatchError> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) => {
            return Ok(PushOutcome::Failed {
                error: format!("cannot read {}: {e}", file.display()),
            });
        }
    };
    let mut machine = Machine::new(limits(cfg), Gaps::new(), HashMap::new(), Instant::now());
    let listed = Event::Listed {
        seen: vec![Seen {
            path: file.to_path_buf(),
            ident: FileIdent::of(&meta),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            temp: false,
        }],
        errors: Vec::new(),
        now: Instant::now(),
        wall: SystemTime::now(),
    };
    let mut pending = VecDeque::from(machine.on(listed, &*manifest));
    let mut said = Said::default();
    while let Some(action) = pending.pop_front() {
        let Some(event) = said.act(action, cfg, store, manifest).await? else {
            continue;
        };
        pending.extend(machine.on(event, &*manifest));
    }
    Ok(said.outcome(machine.state_of(file), file, manifest))
}

/// What the machine said about the pushed file, and what came of its actions.
#[derive(Default)]
struct Said {
    info: Option<LogInfo>,
    entry: Option<ManifestEntry>,
    refused: Option<String>,
    error: Option<String>,
}

impl Said {
    /// Runs one action as the daemon's shell would, once, in line.
    async fn act<S: ArchiveStore>(
        &mut self,
        action: Action,
        cfg: &Config,
        store: &S,
        manifest: &mut ManifestDir,
    ) -> Result<Option<Event>, WatchError> {
        Ok(Some(match action {
            Action::Validate { path } => {
                let event = jobs::validate_job(path).await;
                if let Event::Validated {
                    result:
                        Ok(Validation {
                            verdict: Completeness::Complete { info },
                            ..
                        }),
                    ..
                } = &event
                {
                    self.info = Some(info.clone());
                }
                event
            }
            Action::Upload(log) => {
                let event = jobs::upload(store, cfg, log).await;
                if let Event::Uploaded { result: Err(e), .. } = &event {
                    self.error = Some(e.to_string());
                }
                event
            }
            Action::Record { log, shipped, .. } => {
                let entry = jobs::new_entry(&log, &shipped, now_rfc3339());
                // Durable before the machine hears of it (push runs alone on its manifest).
                let appended = manifest.append(entry)?;
                self.entry = Some(appended.clone());
                Event::Recorded {
                    log,
                    result: Ok(Some(appended)),
                    now: Instant::now(),
                }
            }
            Action::Raise(Raise::Replaced {
                path,
                shipped,
                found,
                index,
                what,
            }) => {
                let what = if what == "its name" {
                    file_name(&path)
                } else {
                    what
                };
                let found = found.map_or("other bytes".to_string(), |f| format!("sha256 {f}"));
                self.refused = Some(format!(
                    "replaced log: {what} was shipped with sha256 {shipped} (manifest entry \
                     {index}), this file has {found}; the WORM copy stays"
                ));
                return Ok(None);
            }
            Action::Error { message, .. } => {
                self.error.get_or_insert(message);
                return Ok(None);
            }
            // Nothing else concerns one file pushed once: no follow, no retry, no alarm.
            _ => return Ok(None),
        }))
    }

    /// The file's result from where the machine left it.
    fn outcome(
        self,
        state: Option<&FileState>,
        file: &Path,
        manifest: &ManifestDir,
    ) -> PushOutcome {
        match state {
            Some(FileState::Shipped) => match (self.entry, &self.info) {
                (Some(entry), _) => PushOutcome::Shipped {
                    entry: Box::new(entry),
                },
                (None, Some(info)) => PushOutcome::AlreadyShipped {
                    index: manifest
                        .by_identity(&info.identity())
                        .map_or(0, |r| r.index),
                },
                (None, None) => PushOutcome::Failed {
                    error: format!("{} shipped without headers", file.display()),
                },
            },
            Some(FileState::Incomplete { block, reason, .. }) => PushOutcome::Refused {
                block: *block,
                reason: reason.clone(),
            },
            Some(FileState::NotRedo { reason, .. }) => PushOutcome::Refused {
                block: Some(0),
                reason: reason.clone(),
            },
            Some(FileState::Replaced { .. }) => PushOutcome::Refused {
                block: None,
                reason: self.refused.unwrap_or_else(|| "replaced log".into()),
            },
            _ => PushOutcome::Failed {
                error: self
                    .error
                    .unwrap_or_else(|| format!("{} changed while it was read", file.display())),
            },
        }
    }
}

/// The decisions' settings for one push: one file at a time, no waiting.
fn limits(cfg: &Config) -> Limits {
    Limits {
        parallel_uploads: 1,
        grace_period: cfg.watch.grace_period,
        retry_max_backoff: cfg.watch.retry_max_backoff,
        backlog_alarm_age: cfg.watch.backlog_alarm_age,
        status_interval: cfg.state.status_interval,
        seal_interval: cfg.state.seal_interval,
        segment_max_entries: usize::MAX,
    }
}
