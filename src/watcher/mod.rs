//! The watcher: every archived redo log into WORM within seconds, recorded in a hash-chained
//! manifest.
//!
//! ```text
//!  inotify hints ─┐
//!  rescan timer ──┴─► scan ──► files (coordinator state) ──► jobs: validate (1 at a time,
//!                                ▲                            ahead; 1 read: SHA-256 + blocks)
//!                                │ outcomes                   put_file (≤ parallel_uploads;
//!                                └────────────────────────────  streamed, create-only,
//!                                                               HEAD-verified) / quarantine
//!  coordinator ─► manifest append (durable) ─► gaps, status.json, metrics, alarms
//!              └► seal segments into WORM (periodic, when full, at shutdown)
//! ```
//!
//! One coordinator task owns all state; jobs only read files and talk to the store, and report
//! an [`ship::Outcome`]. Invariants:
//! - **Nothing is recorded as shipped that is not in WORM**: the manifest entry is appended
//!   (durably) only after the store confirmed the object with HEAD (size, SHA-256, lock).
//! - **Nothing shipped twice with different bytes, nothing skipped**: objects are addressed by
//!   content (`<prefix>/archive/sha256/<hex>`), so a retry or a restart after a crash between
//!   upload and append puts the same bytes under the same key (idempotent) and appends once;
//!   a log whose (db, resetlogs, thread, sequence) or file name is already in the manifest with
//!   other bytes is never shipped: `replaced_log` alarm, the WORM copy stays.
//! - **Only complete logs ship** ([`validate`]); incomplete or damaged files past the grace
//!   period raise `damaged_log` (file and block) and are copied to
//!   `<prefix>/quarantine/sha256/<hex>` as evidence, never into the manifest.
//! - **One failing file never blocks the others**: each file retries on its own backoff; the
//!   number of jobs is bounded (backpressure), every store request has a deadline.
//! - **The database's files are only read**, never modified, renamed or deleted.
//!
//! Layout: [`config`] (TOML), [`scan`] (rescan), [`events`] (inotify hints), [`validate`]
//! (completeness + SHA-256), [`ship`] (jobs), [`ledger`] (state lock, file index), [`gaps`]
//! (sequences per thread), [`status`] (status file, `redovault status`), [`metrics`],
//! [`diskspace`] (free space of the archive destinations, against ORA-00257),
//! [`push`] (`redovault push`).

pub mod config;
pub mod diskspace;
pub mod events;
pub mod follow;
pub mod gaps;
pub mod ledger;
pub mod metrics;
pub mod push;
pub mod scan;
pub mod ship;
pub mod status;
pub mod validate;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::alert::{Alarm, AlarmKind, AlertSetupError, Alerter, Severity, now_rfc3339};
use crate::manifest::{
    LogIdentity, ManifestDir, ManifestEntry, ManifestError, NewEntry, SealRecord, SegmentInfo,
    Sha256Digest, segment_key,
};
use crate::store::local::LocalStore;
use crate::store::s3::{S3Config, S3Store};
use crate::store::{ArchiveStore, Retention, RetryPolicy, StoreError};
pub use config::Config;
use config::{StoreConfig, StoreKind};
use gaps::{Gaps, SeqRange, ThreadKey};
use ledger::{IndexEntry, LockError};
use metrics::WatcherMetrics;
use scan::{FileIdent, ScanResult};
use ship::Outcome;
use validate::{LogInfo, Verdict};

/// Why the watcher cannot run.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The state directory is in use or unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The manifest is unreadable or its chain is broken.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The store refused the set-up (no Object Lock, credentials, bucket...). Transparent: the
    /// store's line already names the store and what to change (a prefix here was printed
    /// twice by `{:#}`, once with the source).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metrics endpoint cannot listen.
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The alert hook cannot be set up.
    #[error(transparent)]
    Alert(#[from] AlertSetupError),
    /// Something else, in one line.
    #[error("{0}")]
    Other(String),
}

/// The S3 configuration described by `[store]` (credentials from the environment).
pub fn s3_config(s: &StoreConfig) -> Result<S3Config, StoreError> {
    let endpoint = s
        .endpoint
        .clone()
        .ok_or_else(|| StoreError::Config("store.endpoint is not set".into()))?;
    let mut c = S3Config::new(endpoint, &s.bucket);
    c.region.clone_from(&s.region);
    c.path_style = s.path_style;
    c.credential_chain = crate::store::s3::ChainConfig {
        profile: s.profile.clone(),
        sts_endpoint: s.sts_endpoint.clone(),
        instance_metadata: (s.credentials == config::CredentialsMode::Instance)
            .then(|| s.metadata_endpoint.clone()),
    };
    c.ca_file.clone_from(&s.ca_file);
    c.retention = match s.retention {
        None => Retention::BucketDefault,
        Some(period) => Retention::Explicit {
            mode: s.lock_mode,
            period,
        },
    };
    c.allow_unlocked_bucket = s.allow_unlocked_bucket;
    c.retry = RetryPolicy {
        max_attempts: s.max_attempts,
        request_timeout: s.request_timeout,
        connect_timeout: s.connect_timeout,
        ..RetryPolicy::default()
    };
    c.stream_threshold = s.stream_threshold;
    c.stream_part_size = s.part_size;
    c.concurrency = s.part_concurrency;
    c.content_md5 = s.content_md5;
    Ok(c)
}

/// Runs the watcher until `cancel` fires (then finishes in-flight uploads within
/// `shutdown_timeout`, seals the manifest and writes the final status).
pub async fn run(cfg: Config, cancel: CancellationToken) -> Result<(), WatchError> {
    match cfg.store.kind {
        StoreKind::S3 => {
            let store = S3Store::new(s3_config(&cfg.store)?)?;
            run_with_store(cfg, store, cancel).await
        }
        StoreKind::Local => {
            let dir = cfg
                .store
                .dir
                .clone()
                .ok_or_else(|| WatchError::Other("store.dir is not set".into()))?;
            let store = LocalStore::new(dir)?;
            run_with_store(cfg, store, cancel).await
        }
    }
}

/// [`run`] with a given store.
pub async fn run_with_store<S: ArchiveStore + Clone + 'static>(
    cfg: Config,
    store: S,
    cancel: CancellationToken,
) -> Result<(), WatchError> {
    let cfg = Arc::new(cfg);
    let _lock = ledger::lock_state(&cfg.state.dir)?;
    let metrics = Arc::new(WatcherMetrics::new());
    let aux = CancellationToken::new();
    let metrics_addr = match cfg.telemetry.metrics_listen {
        None => None,
        Some(addr) => Some(
            crate::telemetry::serve_metrics(addr, Arc::clone(&metrics.registry), aux.clone())
                .await
                .map_err(|source| WatchError::Metrics { addr, source })?,
        ),
    };
    if let Some(a) = metrics_addr {
        info!(addr = %a, "metrics endpoint listening");
    }
    let (alerter, alert_task) =
        Alerter::start(cfg.alert.hook.clone(), metrics.alerts.clone(), aux.clone())?;
    let result = async {
        let mdir = cfg.manifest_dir();
        let (manifest, gaps, last_shipped_at) = tokio::task::spawn_blocking(move || {
            let mut g = Gaps::new();
            let mut last = None;
            let m = ManifestDir::open(&mdir, &mut |e| {
                g.shipped(e);
                last = Some(e.shipped_at.clone());
            })?;
            Ok::<_, ManifestError>((m, g, last))
        })
        .await
        .map_err(|e| WatchError::Other(format!("manifest loader: {e}")))??;
        // The last shipment before this start, not zero: a restarted watcher is not "nothing
        // shipped since 1970" (RedovaultNothingShipped would fire at once).
        if let Some(t) = last_shipped_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            metrics
                .last_success
                .set(t.timestamp_millis() as f64 / 1000.0);
        }
        info!(
            entries = manifest.len(),
            last_hash = %manifest.state().prev,
            "manifest loaded, chain verified"
        );
        metrics.manifest_entries.set(manifest.len() as f64);
        let (index, warning) = ledger::load_index(&cfg.state.dir);
        if let Some(w) = warning {
            warn!("{w}");
        }
        let mut first_error = None;
        let store_desc = match store.check().await {
            Ok(r) => {
                info!(store = %r.description, worm = r.worm, "store checked");
                if !r.worm && cfg.store.kind == StoreKind::S3 {
                    alerter.raise(Alarm::new(
                        AlarmKind::Store,
                        Severity::Critical,
                        format!("the store is not WORM: {}", r.description),
                    ));
                }
                r.description
            }
            Err(e) if e.is_transient() => {
                warn!(error = %e, "store unreachable at start; logs will queue until it answers");
                first_error = Some(e.to_string());
                format!("unreachable at start: {e}")
            }
            Err(e) => return Err(WatchError::Store(e)),
        };
        let mut c = Coordinator {
            cfg: Arc::clone(&cfg),
            store,
            metrics: Arc::clone(&metrics),
            alerter: alerter.clone(),
            manifest: Arc::new(Mutex::new(manifest)),
            files: HashMap::new(),
            jobs: JoinSet::new(),
            job_paths: HashMap::new(),
            busy: 0,
            validating: 0,
            ids_in_flight: HashSet::new(),
            gaps,
            index,
            index_dirty: false,
            alarm_last: HashMap::new(),
            recent_alarms: Vec::new(),
            gap_seen: HashMap::new(),
            last_error: None,
            last_success_at: None,
            shipped_files: 0,
            shipped_bytes: 0,
            started_at: now_rfc3339(),
            store_desc,
            metrics_addr: metrics_addr.map(|a| a.to_string()),
            seals_in_flight: HashSet::new(),
            stopping: false,
            upload_failures: 0,
            following: HashSet::new(),
            followed: HashMap::new(),
            followed_order: std::collections::VecDeque::new(),
            stop_follow: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        if let Some(e) = first_error {
            c.record_error("upload_transient", e);
        }
        c.run(cancel).await
    }
    .await;
    aux.cancel();
    // Alarms raised during shutdown are still delivered (each bounded by the hook timeout).
    if tokio::time::timeout(Duration::from_secs(60), alert_task)
        .await
        .is_err()
    {
        warn!("alert deliveries still pending at exit were abandoned");
    }
    result
}

/// Where one file stands.
#[derive(Debug, Clone)]
enum FileState {
    /// To validate (or, with `ready`, to upload) once `due`.
    Queued {
        due: Instant,
        ready: Option<Box<(LogInfo, [u8; 32])>>,
    },
    /// A job is running on it.
    Busy,
    /// Not complete (yet), or damaged.
    Incomplete {
        info: Option<LogInfo>,
        block: Option<u32>,
        reason: String,
        alarmed: bool,
        quarantine: Quarantine,
    },
    /// Not a redo log (block 0 says so): reported once, left alone until it changes.
    NotRedo { offset: u64, reason: String },
    /// Shipped (or found in the manifest with the same bytes).
    Shipped,
    /// Other bytes than the shipped log it names: never shipped.
    Replaced {
        shipped: Sha256Digest,
        found: Option<Sha256Digest>,
        index: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Quarantine {
    NotYet,
    Due(Instant),
    Running,
    Stored(String),
}

/// One tracked file.
#[derive(Debug, Clone)]
struct Tracked {
    ident: FileIdent,
    mtime: SystemTime,
    first_seen: SystemTime,
    /// When this version (identity) of the file was first seen.
    detected: Instant,
    attempts: u32,
    failing: bool,
    /// Gone from the directory while a job was running on it: dropped when the job ends.
    gone: bool,
    state: FileState,
}

impl Tracked {
    fn new(ident: FileIdent, mtime: SystemTime, detected: Instant) -> Tracked {
        Tracked {
            ident,
            mtime,
            first_seen: SystemTime::now(),
            detected,
            attempts: 0,
            failing: false,
            gone: false,
            state: FileState::Queued {
                due: detected,
                ready: None,
            },
        }
    }
}

/// What a running job is about (to recover from a job that panicked).
#[derive(Debug, Clone)]
enum JobOf {
    /// An upload or a quarantine copy: takes one of `parallel_uploads` slots.
    File(PathBuf),
    /// A validation pass: runs beside the uploads ([`VALIDATIONS_AT_ONCE`]).
    Validate(PathBuf),
    Seal(u64),
    Follow(FileKey),
}

/// A file regardless of its name: (device, inode).
type FileKey = (u64, u64);

fn key_of(i: &FileIdent) -> FileKey {
    (i.dev, i.ino)
}

/// Validations of followed files kept for their renamed log (beyond this, the oldest go).
const FOLLOWED_KEPT: usize = 64;

/// Validation passes at once. They run beside the uploads rather than in their slots, ahead of
/// them (at most `parallel_uploads` validated logs waiting), so that an upload slot never
/// idles while the next log is read and hashed. One pass uses two threads (read and judge the
/// blocks, SHA-256) and outruns one upload: one at a time is enough.
const VALIDATIONS_AT_ONCE: usize = 1;

struct Coordinator<S> {
    cfg: Arc<Config>,
    store: S,
    metrics: Arc<WatcherMetrics>,
    alerter: Alerter,
    manifest: Arc<Mutex<ManifestDir>>,
    files: HashMap<PathBuf, Tracked>,
    jobs: JoinSet<Outcome>,
    job_paths: HashMap<tokio::task::Id, JobOf>,
    busy: usize,
    /// Validation jobs running.
    validating: usize,
    ids_in_flight: HashSet<LogIdentity>,
    gaps: Gaps,
    index: HashMap<PathBuf, IndexEntry>,
    index_dirty: bool,
    alarm_last: HashMap<(AlarmKind, String), Instant>,
    recent_alarms: Vec<status::AlarmBrief>,
    gap_seen: HashMap<(ThreadKey, u32, u32), Instant>,
    last_error: Option<status::LastError>,
    last_success_at: Option<String>,
    shipped_files: u64,
    shipped_bytes: u64,
    started_at: String,
    store_desc: String,
    metrics_addr: Option<String>,
    seals_in_flight: HashSet<u64>,
    stopping: bool,
    upload_failures: u64,
    /// Files being followed while written.
    following: HashSet<FileKey>,
    /// Validations made by following, waiting for the log they belong to (by identity).
    followed: HashMap<FileIdent, validate::Validation>,
    followed_order: std::collections::VecDeque<FileIdent>,
    stop_follow: follow::StopFlag,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Keeps at most this many alarms in the status file.
const RECENT_ALARMS: usize = 20;

impl<S: ArchiveStore + Clone + 'static> Coordinator<S> {
    async fn run(&mut self, cancel: CancellationToken) -> Result<(), WatchError> {
        let hint = Arc::new(Notify::new());
        let _events = if self.cfg.watch.events {
            match events::start(&self.cfg.watch.dirs, Arc::clone(&hint)) {
                Ok((h, warnings)) => {
                    for w in warnings {
                        warn!("{w}; relying on the periodic rescan");
                    }
                    Some(h)
                }
                Err(e) => {
                    warn!("{e}; relying on the periodic rescan");
                    None
                }
            }
        } else {
            None
        };
        info!(
            dirs = ?self.cfg.watch.dirs,
            scan_interval = ?self.cfg.watch.scan_interval,
            parallel = self.cfg.watch.parallel_uploads,
            "watcher started"
        );
        self.scan(Instant::now()).await;
        // Segments left unsealed by an earlier run (crash, store down at shutdown).
        self.seal(false).await;
        let w = &self.cfg.watch;
        let st = &self.cfg.state;
        let tick = st.status_interval.min(Duration::from_millis(500));
        let mut next_scan = Instant::now() + w.scan_interval;
        let mut next_status = Instant::now();
        let mut next_seal = Instant::now() + st.seal_interval;
        loop {
            self.pump();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(j) = self.jobs.join_next_with_id(), if !self.jobs.is_empty() => {
                    self.on_join(j).await;
                }
                _ = hint.notified() => {
                    self.scan(Instant::now()).await;
                }
                _ = tokio::time::sleep_until(next_scan.into()) => {
                    self.scan(Instant::now()).await;
                    next_scan = Instant::now() + self.cfg.watch.scan_interval;
                }
                _ = tokio::time::sleep(tick) => {}
            }
            let now = Instant::now();
            self.check_alarms(now);
            if now >= next_status {
                self.refresh_gauges();
                self.write_status(true).await;
                next_status = now + self.cfg.state.status_interval;
            }
            let full = self.open_len() >= self.cfg.state.segment_max_entries;
            if now >= next_seal || full {
                self.seal(true).await;
                next_seal = now + self.cfg.state.seal_interval;
            }
        }
        self.shutdown().await;
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // Scanning

    async fn scan(&mut self, started: Instant) {
        let cfg = Arc::clone(&self.cfg);
        let metrics = Arc::clone(&self.metrics);
        let r = tokio::task::spawn_blocking(move || {
            // Free space first, off the async threads (a hung NFS destination blocks here).
            for (dir, e) in diskspace::refresh(&metrics, &cfg.watch.dirs) {
                warn!(dir = %dir.display(), error = %e, "cannot measure the archive destination's free space");
            }
            scan::scan(&cfg.watch.dirs, cfg.watch.max_depth, &|n| {
                if cfg.wants(n) {
                    Some(scan::Kind::Log)
                } else if cfg.is_temp(n) {
                    Some(scan::Kind::Temp)
                } else {
                    None
                }
            })
        })
        .await
        .unwrap_or_else(|e| ScanResult {
            files: Vec::new(),
            errors: vec![format!("scan task failed: {e}")],
        });
        let listed = r.files.len();
        let walked = started.elapsed();
        if !r.errors.is_empty() {
            for e in &r.errors {
                self.metrics.errors.inc("scan");
                self.record_error("scan", e.clone());
            }
            self.alarm(
                "scan".into(),
                Alarm::new(
                    AlarmKind::ScanFailing,
                    Severity::Critical,
                    format!(
                        "archive directories cannot be scanned: {}",
                        r.errors.join("; ")
                    ),
                ),
            );
            // A directory that cannot be listed says nothing about its files: none is taken
            // as gone.
            self.on_listing(r.files, started, false);
        } else {
            self.on_listing(r.files, started, true);
        }
        // What a rescan costs as the destinations fill up (the scale benchmark reads it):
        // the directory walk, then the coordinator's pass over what it listed.
        debug!(
            target: "redovault::watcher::rescan",
            files = listed,
            tracked = self.files.len(),
            walk_ms = walked.as_secs_f64() * 1000.0,
            total_ms = started.elapsed().as_secs_f64() * 1000.0,
            "rescan done"
        );
    }

    fn on_listing(&mut self, seen: Vec<scan::Seen>, started: Instant, complete: bool) {
        let mut present: HashSet<PathBuf> = HashSet::with_capacity(seen.len());
        for s in seen {
            if s.temp {
                self.start_follow(&s.path, s.ident);
                continue;
            }
            present.insert(s.path.clone());
            match self.files.get_mut(&s.path) {
                None => {
                    let mut t = Tracked::new(s.ident, s.mtime, started);
                    let manifest = self.manifest.lock();
                    if let (Some(ix), Ok(m)) = (self.index.get(&s.path), manifest)
                        && ix.ident == s.ident
                        && m.by_sha256(&ix.sha256).is_some()
                    {
                        // Shipped before, unchanged since: no need to read it again.
                        t.state = FileState::Shipped;
                    }
                    debug!(file = %s.path.display(), size = s.ident.size, "new file");
                    self.files.insert(s.path, t);
                }
                Some(t) if t.gone || t.ident != s.ident => {
                    t.gone = false;
                    debug!(file = %s.path.display(), size = s.ident.size, "file changed");
                    let was_shipped = matches!(t.state, FileState::Shipped);
                    t.ident = s.ident;
                    t.mtime = s.mtime;
                    t.detected = started;
                    t.attempts = 0;
                    if !matches!(t.state, FileState::Busy) {
                        t.state = FileState::Queued {
                            due: started,
                            ready: None,
                        };
                    }
                    if was_shipped {
                        self.index.remove(&s.path);
                        self.index_dirty = true;
                    }
                }
                Some(_) => {}
            }
        }
        if !complete {
            return;
        }
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| !present.contains(*p))
            .cloned()
            .collect();
        for p in gone {
            self.forget(p);
        }
    }

    /// A file is no longer in its directory: drop it (once no job runs on it), and raise
    /// `vanished_unshipped` if it was never shipped nor reported.
    fn forget(&mut self, p: PathBuf) {
        if let Some(t) = self.files.get_mut(&p)
            && matches!(t.state, FileState::Busy)
        {
            // Its job decides: an upload that completes still counts (the bytes were read).
            t.gone = true;
            return;
        }
        let Some(t) = self.files.remove(&p) else {
            return;
        };
        if self.index.remove(&p).is_some() {
            self.index_dirty = true;
        }
        let known = match &t.state {
            FileState::Incomplete { info: Some(i), .. } => Some(i.identity()),
            FileState::Queued { ready: Some(r), .. } => Some(r.0.identity()),
            _ => None,
        };
        if let Some(id) = known {
            self.gaps.forget_unshipped(&id);
        }
        let unalarmed = match &t.state {
            FileState::Incomplete { alarmed, .. } => !alarmed,
            s => matches!(s, FileState::Queued { .. } | FileState::Busy),
        };
        if !unalarmed {
            debug!(file = %p.display(), "file removed");
            return;
        }
        self.alarm(
            format!("vanished {}", p.display()),
            Alarm::new(
                AlarmKind::VanishedUnshipped,
                Severity::Critical,
                format!(
                    "{} disappeared before it was shipped: its redo is not in WORM",
                    p.display()
                ),
            )
            .file(p.display().to_string()),
        );
    }

    // ----------------------------------------------------------------------------------------
    // Dispatch

    /// Starts jobs while slots are free: due uploads of validated logs and due quarantine copies
    /// (oldest detection first) in the upload slots, and due validations beside them, ahead of
    /// the uploads by at most `parallel_uploads` validated logs.
    fn pump(&mut self) {
        if self.stopping {
            return;
        }
        let now = Instant::now();
        let parallel = self.cfg.watch.parallel_uploads;
        loop {
            let mut started = false;
            if self.busy < parallel {
                let next = self
                    .files
                    .iter()
                    .filter_map(|(p, t)| match &t.state {
                        FileState::Queued {
                            due,
                            ready: Some(_),
                        } if *due <= now => Some((0u8, t.detected, p)),
                        FileState::Incomplete {
                            quarantine: Quarantine::Due(d),
                            ..
                        } if *d <= now => Some((1u8, t.detected, p)),
                        _ => None,
                    })
                    .min()
                    .map(|(kind, _, p)| (kind, p.clone()));
                if let Some((kind, path)) = next {
                    if kind == 0 {
                        self.start_file_job(path);
                    } else {
                        self.start_quarantine(path);
                    }
                    started = true;
                }
            }
            let waiting = self
                .files
                .values()
                .filter(|t| matches!(t.state, FileState::Queued { ready: Some(_), .. }))
                .count();
            if waiting < parallel {
                // Logs read while they were written need no pass of their own: they go first
                // and take no validation slot.
                let next = self
                    .files
                    .iter()
                    .filter_map(|(p, t)| match &t.state {
                        // A file being followed is judged when the follow ends.
                        FileState::Queued { ready: None, .. }
                            if self.following.contains(&key_of(&t.ident)) =>
                        {
                            None
                        }
                        FileState::Queued { due, ready: None } if *due <= now => {
                            let read = self.followed.contains_key(&t.ident);
                            (read || self.validating < VALIDATIONS_AT_ONCE)
                                .then_some((!read, t.detected, p))
                        }
                        _ => None,
                    })
                    .min()
                    .map(|(_, _, p)| p.clone());
                if let Some(path) = next {
                    self.start_file_job(path);
                    started = true;
                }
            }
            if !started {
                break;
            }
        }
        self.metrics
            .in_flight
            .set((self.busy + self.validating) as f64);
    }

    fn spawn(
        &mut self,
        of: JobOf,
        fut: impl std::future::Future<Output = Outcome> + Send + 'static,
    ) {
        let h = self.jobs.spawn(fut);
        match of {
            JobOf::File(_) => self.busy += 1,
            JobOf::Validate(_) => self.validating += 1,
            JobOf::Seal(_) | JobOf::Follow(_) => {}
        }
        self.job_paths.insert(h.id(), of);
    }

    fn start_file_job(&mut self, path: PathBuf) {
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        let prev = std::mem::replace(&mut t.state, FileState::Busy);
        match prev {
            FileState::Queued {
                ready: Some(ready), ..
            } => {
                // Decided again: the manifest or another copy in flight may have changed the
                // answer since it was queued.
                let (info, sha) = *ready;
                self.decide(path, info, sha);
            }
            _ => {
                let ident = t.ident;
                if let Some(v) = self.followed.remove(&ident) {
                    // Already read while it was written: no second pass.
                    debug!(file = %path.display(), "validated while written");
                    self.metrics.validated_while_written.inc();
                    self.on_validated(path, Ok(v));
                    return;
                }
                let p = path.clone();
                self.spawn(JobOf::Validate(path), ship::validate_job(p));
            }
        }
    }

    /// Follows a file being written (a temporary name, or a log still short), at most
    /// `parallel_uploads` at once.
    fn start_follow(&mut self, path: &Path, ident: FileIdent) {
        let key = key_of(&ident);
        if self.stopping
            || self.following.contains(&key)
            || self.following.len() >= self.cfg.watch.parallel_uploads
            || self.followed.contains_key(&ident)
        {
            return;
        }
        self.following.insert(key);
        let stop = Arc::clone(&self.stop_follow);
        let p = path.to_path_buf();
        let fut = async move {
            let result =
                tokio::task::spawn_blocking(move || follow::follow(&p, follow::IDLE, &stop))
                    .await
                    .ok()
                    .flatten();
            Outcome::Followed { key, result }
        };
        self.spawn(JobOf::Follow(key), fut);
    }

    fn on_followed(&mut self, key: FileKey, result: Option<validate::Validation>) {
        self.following.remove(&key);
        let Some(v) = result else { return };
        debug!(size = v.ident.size, "followed a log to its end");
        self.followed_order.push_back(v.ident);
        self.followed.insert(v.ident, v);
        while self.followed_order.len() > FOLLOWED_KEPT {
            if let Some(old) = self.followed_order.pop_front() {
                self.followed.remove(&old);
            }
        }
    }

    fn start_upload(&mut self, path: PathBuf, ident: FileIdent, info: LogInfo, sha: [u8; 32]) {
        if let Some(t) = self.files.get_mut(&path) {
            t.state = FileState::Busy;
        }
        self.ids_in_flight.insert(info.identity());
        let fut = ship::upload_job(
            self.store.clone(),
            Arc::clone(&self.cfg),
            path.clone(),
            ident,
            info,
            sha,
        );
        self.spawn(JobOf::File(path), fut);
    }

    fn start_quarantine(&mut self, path: PathBuf) {
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        if let FileState::Incomplete { quarantine, .. } = &mut t.state {
            *quarantine = Quarantine::Running;
        }
        let cfg = Arc::clone(&self.cfg);
        let fut = ship::quarantine_job(self.store.clone(), path.clone(), t.ident, move |h| {
            cfg.quarantine_key(h)
        });
        self.spawn(JobOf::File(path), fut);
    }

    fn backoff(&self, attempts: u32) -> Duration {
        backoff(attempts, self.cfg.watch.retry_max_backoff)
    }

    // ----------------------------------------------------------------------------------------
    // Outcomes

    /// Frees the slot a finished job held.
    fn release(&mut self, of: Option<&JobOf>) {
        match of {
            Some(JobOf::File(_)) => self.busy = self.busy.saturating_sub(1),
            Some(JobOf::Validate(_)) => self.validating = self.validating.saturating_sub(1),
            _ => {}
        }
    }

    async fn on_join(&mut self, j: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        match j {
            Ok((id, outcome)) => {
                let of = self.job_paths.remove(&id);
                self.release(of.as_ref());
                let path = match &of {
                    Some(JobOf::File(p) | JobOf::Validate(p)) => Some(p.clone()),
                    _ => None,
                };
                self.on_outcome(outcome).await;
                if let Some(p) = path
                    && self.files.get(&p).is_some_and(|t| t.gone)
                {
                    self.forget(p);
                }
            }
            Err(e) => {
                let of = self.job_paths.remove(&e.id());
                error!(error = %e, job = ?of, "a job failed");
                self.release(of.as_ref());
                match of {
                    Some(JobOf::File(path) | JobOf::Validate(path)) => {
                        let due = Instant::now() + self.backoff(1);
                        let gone = match self.files.get_mut(&path) {
                            Some(t) => {
                                t.state = FileState::Queued { due, ready: None };
                                t.gone
                            }
                            None => false,
                        };
                        if gone {
                            self.forget(path);
                        }
                    }
                    Some(JobOf::Seal(first)) => {
                        self.seals_in_flight.remove(&first);
                    }
                    Some(JobOf::Follow(key)) => {
                        self.following.remove(&key);
                    }
                    None => {}
                }
            }
        }
        self.metrics
            .in_flight
            .set((self.busy + self.validating) as f64);
    }

    async fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Validated {
                path,
                started,
                result,
            } => {
                debug!(
                    file = %path.display(),
                    validate_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "validated"
                );
                self.on_validated(path, result)
            }
            Outcome::Uploaded {
                path,
                ident,
                info,
                sha256,
                started,
                result,
            } => {
                self.on_uploaded(path, ident, info, sha256, started, result)
                    .await
            }
            Outcome::Quarantined {
                path,
                ident,
                result,
            } => self.on_quarantined(path, ident, result),
            Outcome::Sealed { seg, key, result } => self.on_sealed(seg, key, result).await,
            Outcome::Followed { key, result } => self.on_followed(key, result),
        }
    }

    fn on_validated(&mut self, path: PathBuf, result: std::io::Result<validate::Validation>) {
        let now = Instant::now();
        let max = self.cfg.watch.retry_max_backoff;
        let backoff = |a| backoff(a, max);
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                t.attempts += 1;
                t.state = FileState::Queued {
                    due: now + backoff(t.attempts),
                    ready: None,
                };
                if e.kind() != std::io::ErrorKind::NotFound {
                    let msg = format!("cannot read {}: {e}", path.display());
                    self.metrics.errors.inc("validate_io");
                    warn!(file = %path.display(), error = %e, "cannot read archived log");
                    self.record_error("validate_io", msg);
                }
                return;
            }
        };
        if v.ident != t.ident {
            t.state = FileState::Queued {
                due: now,
                ready: None,
            };
            return;
        }
        match v.verdict {
            Verdict::Changed => {
                t.state = FileState::Queued {
                    due: now + Duration::from_millis(200),
                    ready: None,
                };
            }
            Verdict::Incomplete {
                info,
                block,
                reason,
                short,
            } => {
                debug!(file = %path.display(), ?block, %reason, short, "not complete");
                if short {
                    // Still being written, perhaps: follow it to its end.
                    let ident = t.ident;
                    self.start_follow(&path, ident);
                }
                let Some(t) = self.files.get_mut(&path) else {
                    return;
                };
                let keep_alarm = match &t.state {
                    FileState::Incomplete {
                        alarmed,
                        quarantine,
                        ..
                    } => Some((*alarmed, quarantine.clone())),
                    _ => None,
                };
                let (alarmed, quarantine) = keep_alarm.unwrap_or((false, Quarantine::NotYet));
                if let Some(i) = &info {
                    self.gaps.seen_unshipped(&i.identity(), &i.db_name);
                }
                t.state = FileState::Incomplete {
                    info,
                    block,
                    reason,
                    alarmed,
                    quarantine,
                };
                let name = file_name(&path);
                let shipped = self
                    .manifest
                    .lock()
                    .ok()
                    .and_then(|m| m.by_file_name(&name));
                if let Some(r) = shipped {
                    let found = v.sha256.map(Sha256Digest);
                    self.replaced(&path, r.sha256, found, r.index, "its name");
                }
            }
            Verdict::NotRedo { offset, reason } => self.not_redo(path, offset, reason),
            Verdict::Complete { info } => {
                let Some(sha) = v.sha256 else { return };
                self.decide(path, info, sha);
            }
        }
    }

    /// A file that is not a redo log: left where it is, neither shipped nor quarantined (it
    /// may be a datafile copy the include patterns match, to be kept out of WORM), reported
    /// once. If it bears the name of a shipped log, that log was replaced: the alarm says so.
    fn not_redo(&mut self, path: PathBuf, offset: u64, reason: String) {
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        t.state = FileState::NotRedo {
            offset,
            reason: reason.clone(),
        };
        let size = t.ident.size;
        info!(file = %path.display(), offset, %reason, "not a redo log: left alone, not shipped");
        let shipped = self
            .manifest
            .lock()
            .ok()
            .and_then(|m| m.by_file_name(&file_name(&path)));
        if let Some(r) = shipped {
            self.replaced(&path, r.sha256, None, r.index, "its name");
            return;
        }
        self.alarm(
            format!("not redo {}", path.display()),
            Alarm::new(
                AlarmKind::NotRedoLog,
                Severity::Warning,
                format!(
                    "{} matches the include patterns but is {reason}; it is left alone (not \
                     shipped, not quarantined): narrow [watch] include/exclude or move it out \
                     of the archive destination",
                    path.display()
                ),
            )
            .file(path.display().to_string())
            .details(serde_json::json!({ "size": size, "offset": offset })),
        );
    }

    /// A complete log: ship it, or recognise it as shipped, or refuse it as a replacement.
    fn decide(&mut self, path: PathBuf, info: LogInfo, sha: [u8; 32]) {
        let id = info.identity();
        let digest = Sha256Digest(sha);
        let name = file_name(&path);
        let (by_id, by_name) = match self.manifest.lock() {
            Ok(m) => (m.by_identity(&id), m.by_file_name(&name)),
            Err(_) => (None, None),
        };
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        let ident = t.ident;
        if let Some(r) = by_id {
            if r.sha256 == digest {
                debug!(file = %path.display(), index = r.index, "already in the manifest");
                t.state = FileState::Shipped;
                self.index.insert(
                    path.clone(),
                    IndexEntry {
                        path,
                        ident,
                        sha256: digest,
                    },
                );
                self.index_dirty = true;
            } else {
                let what = format!("thread {} sequence {}", id.thread, id.sequence);
                self.replaced(&path, r.sha256, Some(digest), r.index, &what);
            }
            return;
        }
        if let Some(r) = by_name
            && r.sha256 != digest
        {
            self.replaced(&path, r.sha256, Some(digest), r.index, "its name");
            return;
        }
        if self.stopping || self.ids_in_flight.contains(&id) {
            // Another copy of the same log is being uploaded: look again afterwards.
            t.state = FileState::Queued {
                due: Instant::now() + Duration::from_millis(500),
                ready: Some(Box::new((info, sha))),
            };
            return;
        }
        self.gaps.seen_unshipped(&id, &info.db_name);
        if self.busy >= self.cfg.watch.parallel_uploads {
            // Every upload slot is taken: the next free one takes it (pump, oldest first).
            t.state = FileState::Queued {
                due: Instant::now(),
                ready: Some(Box::new((info, sha))),
            };
            return;
        }
        self.start_upload(path, ident, info, sha);
    }

    fn replaced(
        &mut self,
        path: &Path,
        shipped: Sha256Digest,
        found: Option<Sha256Digest>,
        index: u64,
        what: &str,
    ) {
        if let Some(t) = self.files.get_mut(path)
            && !matches!(t.state, FileState::Incomplete { .. })
        {
            t.state = FileState::Replaced {
                shipped,
                found,
                index,
            };
        }
        let found_s = found.map_or("(not read whole)".to_string(), |f| f.hex());
        self.alarm(
            format!("replaced {} {}", path.display(), found_s),
            Alarm::new(
                AlarmKind::ReplacedLog,
                Severity::Critical,
                format!(
                    "{} has other bytes (sha256 {found_s}) than the log shipped under {what} \
                     (manifest entry {index}, sha256 {shipped}); the WORM copy and the \
                     manifest entry stay as they are, the new bytes are not shipped",
                    path.display()
                ),
            )
            .file(path.display().to_string())
            .details(serde_json::json!({
                "manifest_index": index,
                "shipped_sha256": shipped.hex(),
                "found_sha256": found.map(|f| f.hex()),
            })),
        );
    }

    async fn on_uploaded(
        &mut self,
        path: PathBuf,
        ident: FileIdent,
        info: LogInfo,
        sha: [u8; 32],
        started: Instant,
        result: Result<ship::Shipped, StoreError>,
    ) {
        let id = info.identity();
        self.ids_in_flight.remove(&id);
        let now = Instant::now();
        let upload_time = now.duration_since(started);
        let shipped = match result {
            Ok(shipped) if shipped.confirms(ident.size, &sha) => shipped,
            Ok(ship::Shipped { put, .. }) => {
                // The store contract makes this impossible; never record it as shipped.
                self.metrics.errors.inc("upload_other");
                let msg = format!(
                    "{}: the store confirmed {} bytes with sha256 {} instead of the object of the {}-byte log with {}",
                    path.display(),
                    put.size,
                    hex::encode(put.sha256),
                    ident.size,
                    hex::encode(sha)
                );
                error!("{msg}");
                self.record_error("upload_other", msg);
                self.retry_upload(&path, info, sha, None);
                return;
            }
            Err(e) => {
                let kind = ship::error_kind(&e);
                self.metrics.errors.inc(kind);
                warn!(file = %path.display(), error = %e, kind, "upload failed");
                self.record_error(kind, format!("{}: {e}", path.display()));
                if let StoreError::SourceChanged { .. } = e {
                    if let Some(t) = self.files.get_mut(&path) {
                        t.state = FileState::Queued {
                            due: now,
                            ready: None,
                        };
                    }
                    return;
                }
                self.upload_failures += 1;
                let severity = if e.is_conflict() || matches!(e, StoreError::LockNotApplied { .. })
                {
                    // The content key holds other bytes, or locks do not take: tampering or a
                    // broken store, never a passing outage.
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                self.alarm(
                    format!("upload {kind}"),
                    Alarm::new(
                        AlarmKind::UploadFailing,
                        severity,
                        format!("uploads are failing ({kind}): {e}"),
                    )
                    .file(path.display().to_string()),
                );
                self.retry_upload(&path, info, sha, Some(e));
                return;
            }
        };
        self.metrics
            .upload_seconds
            .observe(upload_time.as_secs_f64());
        let entry = ship::new_entry(&info, &shipped, (ident.size, sha), &path, now_rfc3339());
        match self.append(entry).await {
            Ok(None) => {
                debug!(file = %path.display(), "already recorded in the manifest");
                self.mark_shipped(&path, ident, sha);
            }
            Ok(Some(e)) => {
                self.gaps.shipped(&e);
                self.shipped_files += 1;
                self.shipped_bytes += e.size;
                self.metrics.shipped_files.inc();
                self.metrics.shipped_bytes.add(e.size);
                let unix = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                self.metrics.last_success.set(unix);
                self.metrics
                    .manifest_entries
                    .set(self.manifest.lock().map(|m| m.len() as f64).unwrap_or(0.0));
                self.last_success_at = Some(e.shipped_at.clone());
                self.upload_failures = 0;
                let durable = Instant::now();
                let detected = self
                    .files
                    .get(&path)
                    .filter(|t| t.ident == ident)
                    .map(|t| t.detected);
                let (to_start, to_durable) = match detected {
                    Some(d) => {
                        let s = started.saturating_duration_since(d);
                        let e2e = durable.saturating_duration_since(d);
                        self.metrics
                            .detect_to_upload_start_seconds
                            .observe(s.as_secs_f64());
                        self.metrics
                            .detect_to_durable_seconds
                            .observe(e2e.as_secs_f64());
                        (
                            Some(s.as_secs_f64() * 1000.0),
                            Some(e2e.as_secs_f64() * 1000.0),
                        )
                    }
                    None => (None, None),
                };
                info!(
                    file = %path.display(),
                    thread = e.thread.0,
                    sequence = e.sequence.0,
                    size = e.size,
                    sha256 = %e.sha256,
                    key = %e.object_key,
                    version_id = e.version_id.as_deref(),
                    already_present = shipped.put.already_present,
                    index = e.index,
                    upload_ms = upload_time.as_secs_f64() * 1000.0,
                    detect_to_upload_start_ms = to_start,
                    detect_to_durable_ms = to_durable,
                    "archived log shipped"
                );
                self.mark_shipped(&path, ident, sha);
            }
            Err(err) => {
                self.metrics.errors.inc("manifest_write");
                let msg = format!(
                    "{} is in WORM as {} but the manifest entry could not be written: {err}",
                    path.display(),
                    shipped.put.key
                );
                self.record_error("manifest_write", msg.clone());
                self.alarm(
                    "manifest write".into(),
                    Alarm::new(AlarmKind::Manifest, Severity::Critical, msg),
                );
                // The next attempt finds the object (same key, same bytes) and appends.
                self.retry_upload(&path, info, sha, None);
            }
        }
        let full = self.open_len() >= self.cfg.state.segment_max_entries;
        if full {
            self.seal(true).await;
        }
    }

    fn mark_shipped(&mut self, path: &Path, ident: FileIdent, sha: [u8; 32]) {
        let Some(t) = self.files.get_mut(path) else {
            return;
        };
        if t.ident != ident {
            // Changed after it was read: the new version is looked at on its own.
            t.state = FileState::Queued {
                due: Instant::now(),
                ready: None,
            };
            return;
        }
        t.state = FileState::Shipped;
        t.failing = false;
        self.index.insert(
            path.to_path_buf(),
            IndexEntry {
                path: path.to_path_buf(),
                ident,
                sha256: Sha256Digest(sha),
            },
        );
        self.index_dirty = true;
    }

    fn retry_upload(&mut self, path: &Path, info: LogInfo, sha: [u8; 32], err: Option<StoreError>) {
        let attempts = self.files.get(path).map_or(1, |t| t.attempts + 1);
        let due = Instant::now() + self.backoff(attempts);
        if let Some(t) = self.files.get_mut(path) {
            t.attempts = attempts;
            t.failing = err.is_some() || t.failing;
            t.state = FileState::Queued {
                due,
                ready: Some(Box::new((info, sha))),
            };
        }
    }

    /// Appends the entry unless the log is already recorded; durable when it returns.
    async fn append(&mut self, new: NewEntry) -> Result<Option<ManifestEntry>, ManifestError> {
        let m = Arc::clone(&self.manifest);
        tokio::task::spawn_blocking(move || {
            let mut m = m
                .lock()
                .map_err(|_| ManifestError::Inconsistent("manifest lock poisoned".into()))?;
            let id = LogIdentity {
                db_id: new.db_id,
                resetlogs_id: new.resetlogs_id,
                thread: new.thread,
                sequence: new.sequence,
            };
            if m.by_identity(&id).is_some_and(|r| r.sha256 == new.sha256) {
                return Ok(None);
            }
            m.append(new).map(Some)
        })
        .await
        .map_err(|e| ManifestError::Inconsistent(format!("manifest writer: {e}")))?
    }

    fn on_quarantined(
        &mut self,
        path: PathBuf,
        ident: FileIdent,
        result: Result<(String, [u8; 32]), String>,
    ) {
        let due = Instant::now() + self.backoff(2);
        let Some(t) = self.files.get_mut(&path) else {
            return;
        };
        let FileState::Incomplete { quarantine, .. } = &mut t.state else {
            return;
        };
        match result {
            Ok((key, sha)) => {
                info!(file = %path.display(), %key, sha256 = %hex::encode(sha), "damaged file kept in WORM quarantine");
                *quarantine = Quarantine::Stored(key);
                self.metrics.quarantined_files.inc();
            }
            Err(e) => {
                *quarantine = if t.ident == ident {
                    Quarantine::Due(due)
                } else {
                    Quarantine::NotYet
                };
                self.metrics.errors.inc("quarantine");
                warn!(file = %path.display(), error = %e, "quarantine copy failed; will retry");
                self.record_error("quarantine", e);
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Manifest sealing

    fn open_len(&self) -> usize {
        self.manifest.lock().map(|m| m.open_len()).unwrap_or(0)
    }

    /// Closes the open segment (with `close`) and starts a seal job for every unsealed one.
    async fn seal(&mut self, close: bool) {
        let m = Arc::clone(&self.manifest);
        let closed = tokio::task::spawn_blocking(move || {
            let mut m = m
                .lock()
                .map_err(|_| ManifestError::Inconsistent("manifest lock poisoned".into()))?;
            if close {
                m.close_segment()?;
            }
            Ok::<_, ManifestError>(m.unsealed())
        })
        .await
        .map_err(|e| ManifestError::Inconsistent(e.to_string()))
        .and_then(|r| r);
        let unsealed = match closed {
            Ok(u) => u,
            Err(e) => {
                self.metrics.errors.inc("manifest_write");
                self.record_error("manifest_write", e.to_string());
                self.alarm(
                    "manifest close".into(),
                    Alarm::new(
                        AlarmKind::Manifest,
                        Severity::Critical,
                        format!("cannot close the manifest segment: {e}"),
                    ),
                );
                return;
            }
        };
        for seg in unsealed {
            if self.seals_in_flight.contains(&seg.first) {
                continue;
            }
            let key = segment_key(&self.cfg.store.prefix, &seg);
            self.seals_in_flight.insert(seg.first);
            let fut = ship::seal_job(self.store.clone(), key, seg.clone());
            self.spawn(JobOf::Seal(seg.first), fut);
        }
    }

    async fn on_sealed(
        &mut self,
        seg: SegmentInfo,
        key: String,
        result: Result<crate::store::PutOutcome, StoreError>,
    ) {
        self.seals_in_flight.remove(&seg.first);
        match result {
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
                let m = Arc::clone(&self.manifest);
                let r = tokio::task::spawn_blocking(move || {
                    m.lock()
                        .map_err(|_| ManifestError::Inconsistent("manifest lock poisoned".into()))?
                        .mark_sealed(record)
                })
                .await
                .map_err(|e| ManifestError::Inconsistent(e.to_string()))
                .and_then(|r| r);
                match r {
                    Ok(()) => {
                        self.metrics.sealed_segments.inc();
                        info!(first = seg.first, last = seg.last, %key, "manifest segment sealed in WORM");
                    }
                    Err(e) => {
                        self.metrics.errors.inc("manifest_write");
                        self.record_error("manifest_write", e.to_string());
                    }
                }
            }
            Err(e) => {
                self.metrics.errors.inc("seal");
                warn!(first = seg.first, error = %e, "sealing a manifest segment failed; will retry");
                self.record_error("seal", e.to_string());
                self.alarm(
                    "seal".into(),
                    Alarm::new(
                        AlarmKind::Manifest,
                        Severity::Warning,
                        format!(
                            "manifest segment {}..{} cannot be sealed into WORM yet: {e}",
                            seg.first, seg.last
                        ),
                    ),
                );
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Alarms, status

    fn record_error(&mut self, kind: &str, message: String) {
        self.last_error = Some(status::LastError {
            at: now_rfc3339(),
            kind: kind.to_string(),
            message,
        });
    }

    /// Raises `alarm` unless the same kind and subject was raised less than `repeat_after` ago.
    fn alarm(&mut self, subject: String, alarm: Alarm) {
        let now = Instant::now();
        let key = (alarm.kind, subject);
        if self
            .alarm_last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < self.cfg.alert.repeat_after)
        {
            return;
        }
        self.alarm_last.insert(key, now);
        self.recent_alarms.push(status::AlarmBrief {
            at: alarm.at.clone(),
            kind: alarm.kind.as_str().to_string(),
            message: alarm.message.clone(),
        });
        if self.recent_alarms.len() > RECENT_ALARMS {
            self.recent_alarms.remove(0);
        }
        self.alerter.raise(alarm);
    }

    fn check_alarms(&mut self, now: Instant) {
        // Incomplete or damaged past the grace period (unchanged since detected).
        let grace = self.cfg.watch.grace_period;
        let mut expired = Vec::new();
        for (p, t) in &mut self.files {
            if let FileState::Incomplete {
                alarmed,
                quarantine,
                block,
                reason,
                ..
            } = &mut t.state
                && !*alarmed
                && now.duration_since(t.detected) >= grace
            {
                *alarmed = true;
                *quarantine = Quarantine::Due(now);
                expired.push((p.clone(), *block, reason.clone(), t.ident.size));
            }
        }
        for (p, block, reason, size) in expired {
            self.alarm(
                format!("damaged {}", p.display()),
                Alarm::new(
                    AlarmKind::DamagedLog,
                    Severity::Critical,
                    format!(
                        "{} is still incomplete or damaged after {grace:?}: {reason}; it is not \
                         shipped, its bytes go to the quarantine prefix as evidence",
                        p.display()
                    ),
                )
                .file(p.display().to_string())
                .block(block)
                .details(serde_json::json!({ "size": size })),
            );
        }
        // Backlog age.
        let (_, _, oldest) = self.backlog_totals();
        if let Some((age, file)) = oldest
            && age > self.cfg.watch.backlog_alarm_age.as_secs_f64()
        {
            self.alarm(
                "backlog".into(),
                Alarm::new(
                    AlarmKind::Backlog,
                    Severity::Critical,
                    format!(
                        "the oldest unshipped archived log ({file}) is {age:.0} s old (alarm at \
                         {:?})",
                        self.cfg.watch.backlog_alarm_age
                    ),
                )
                .file(file),
            );
        }
        // Gaps: reported at once in status and metrics, alarmed once they outlast the grace.
        let missing = self.gaps.all_missing();
        let current: HashSet<(ThreadKey, u32, u32)> =
            missing.iter().map(|(k, r)| (*k, r.first, r.last)).collect();
        self.gap_seen.retain(|g, _| {
            let keep = current.contains(g);
            if !keep {
                info!(thread = g.0.thread.0, first = g.1, last = g.2, "gap closed");
            }
            keep
        });
        let mut to_alarm = Vec::new();
        for (k, r) in missing {
            let first_seen = *self
                .gap_seen
                .entry((k, r.first, r.last))
                .or_insert_with(|| {
                    warn!(
                        thread = k.thread.0,
                        resetlogs_id = k.resetlogs_id,
                        first = r.first,
                        last = r.last,
                        "gap: sequences missing below a later one"
                    );
                    now
                });
            if now.duration_since(first_seen) >= grace {
                to_alarm.push((k, r));
            }
        }
        for (k, r) in to_alarm {
            self.alarm(
                format!("gap {} {} {} {}", k.resetlogs_id, k.thread, r.first, r.last),
                gap_alarm(&k, &r),
            );
        }
        self.metrics
            .gap_sequences
            .set(self.gaps.total_missing() as f64);
        self.metrics
            .live_gap_sequences
            .set(self.gaps.live_missing() as f64);
    }

    /// Files, bytes, and (age, name) of the oldest unshipped file.
    fn backlog_totals(&self) -> (u64, u64, Option<(f64, String)>) {
        let now = SystemTime::now();
        let mut files = 0;
        let mut bytes = 0;
        let mut oldest: Option<(f64, String)> = None;
        for (p, t) in &self.files {
            let counts = match &t.state {
                FileState::Incomplete { alarmed, .. } => !alarmed,
                s => matches!(s, FileState::Queued { .. } | FileState::Busy),
            };
            if !counts {
                continue;
            }
            files += 1;
            bytes += t.ident.size;
            let since = t.first_seen.min(t.mtime);
            let age = now.duration_since(since).unwrap_or_default().as_secs_f64();
            if oldest.as_ref().is_none_or(|(a, _)| age > *a) {
                oldest = Some((age, p.display().to_string()));
            }
        }
        (files, bytes, oldest)
    }

    fn refresh_gauges(&self) {
        let (files, bytes, oldest) = self.backlog_totals();
        self.metrics.backlog_files.set(files as f64);
        self.metrics.backlog_bytes.set(bytes as f64);
        self.metrics
            .oldest_unshipped_age
            .set(oldest.map_or(0.0, |(a, _)| a));
        let damaged = self
            .files
            .values()
            .filter(|t| matches!(t.state, FileState::Incomplete { alarmed: true, .. }))
            .count();
        self.metrics.damaged_files.set(damaged as f64);
        let not_redo = self
            .files
            .values()
            .filter(|t| matches!(t.state, FileState::NotRedo { .. }))
            .count();
        self.metrics.not_redo_files.set(not_redo as f64);
    }

    fn build_status(&self, running: bool) -> status::Status {
        let (files, bytes, oldest) = self.backlog_totals();
        let mut failing = 0;
        let mut incomplete = 0;
        let mut damaged = Vec::new();
        let mut replaced = Vec::new();
        let mut not_redo = Vec::new();
        for (p, t) in &self.files {
            match &t.state {
                FileState::Queued { .. } | FileState::Busy if t.failing => failing += 1,
                FileState::Incomplete { alarmed: false, .. } => incomplete += 1,
                FileState::Incomplete {
                    alarmed: true,
                    block,
                    reason,
                    quarantine,
                    ..
                } => damaged.push(status::DamagedFile {
                    path: p.display().to_string(),
                    block: *block,
                    reason: reason.clone(),
                    quarantine_key: match quarantine {
                        Quarantine::Stored(k) => Some(k.clone()),
                        _ => None,
                    },
                }),
                FileState::NotRedo { offset, reason } => not_redo.push(status::NotRedoFile {
                    path: p.display().to_string(),
                    offset: *offset,
                    reason: reason.clone(),
                }),
                FileState::Replaced {
                    shipped,
                    found,
                    index,
                } => replaced.push(status::ReplacedFile {
                    path: p.display().to_string(),
                    shipped_sha256: shipped.hex(),
                    found_sha256: found.map(|f| f.hex()),
                    manifest_index: *index,
                }),
                _ => {}
            }
        }
        damaged.sort_by(|a, b| a.path.cmp(&b.path));
        replaced.sort_by(|a, b| a.path.cmp(&b.path));
        not_redo.sort_by(|a, b| a.path.cmp(&b.path));
        let threads = self.gaps.status();
        let unshipped = threads
            .iter()
            .flat_map(|t| {
                t.unshipped.iter().map(|s| status::Unshipped {
                    db_id: t.db_id,
                    resetlogs_id: t.resetlogs_id,
                    thread: t.thread,
                    sequence: *s,
                })
            })
            .collect();
        let manifest = match self.manifest.lock() {
            Ok(m) => status::ManifestStatus {
                entries: m.len(),
                last_hash: m.state().prev.hex(),
                sealed_through: m.sealed_through(),
                unsealed_entries: m.len() - m.sealed_through().unwrap_or(0),
            },
            Err(_) => status::ManifestStatus::default(),
        };
        status::Status {
            version: status::VERSION,
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            written_at: now_rfc3339(),
            written_at_unix_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
            status_interval_ms: u64::try_from(self.cfg.state.status_interval.as_millis())
                .unwrap_or(u64::MAX),
            running,
            store: self.store_desc.clone(),
            metrics_addr: self.metrics_addr.clone(),
            gap_sequences: self.gaps.total_missing(),
            threads,
            unshipped,
            backlog: status::Backlog {
                files,
                bytes,
                oldest_age_seconds: oldest.as_ref().map(|(a, _)| *a),
                oldest_file: oldest.map(|(_, f)| f),
                failing,
                incomplete,
            },
            damaged,
            replaced,
            not_redo,
            last_error: self.last_error.clone(),
            last_success_at: self.last_success_at.clone(),
            shipped_files: self.shipped_files,
            shipped_bytes: self.shipped_bytes,
            manifest,
            recent_alarms: self.recent_alarms.clone(),
        }
    }

    async fn write_status(&mut self, running: bool) {
        let s = self.build_status(running);
        let path = self.cfg.status_path();
        let index = self.index_dirty.then(|| self.index.clone());
        let dir = self.cfg.state.dir.clone();
        let r = tokio::task::spawn_blocking(move || {
            let bytes = serde_json::to_vec_pretty(&s).map_err(std::io::Error::other)?;
            crate::durable::write_atomic(&path, &bytes)?;
            if let Some(ix) = index {
                ledger::write_index(&dir, &ix)?;
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match r {
            Ok(()) => self.index_dirty = false,
            Err(e) => {
                self.metrics.errors.inc("status_write");
                warn!(error = %e, "cannot write the status file");
            }
        }
    }

    // ----------------------------------------------------------------------------------------
    // Shutdown

    async fn shutdown(&mut self) {
        info!(in_flight = self.jobs.len(), "shutting down");
        self.stopping = true;
        self.stop_follow
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = Instant::now() + self.cfg.watch.shutdown_timeout;
        self.drain_jobs(deadline).await;
        // Seal what was shipped, with its own deadline (the store may be down: the segment
        // then stays local and is sealed at the next start).
        self.seal(true).await;
        let seal_deadline =
            Instant::now() + self.cfg.watch.shutdown_timeout.max(Duration::from_secs(10));
        self.drain_jobs(seal_deadline).await;
        self.check_alarms(Instant::now());
        self.refresh_gauges();
        self.index_dirty = true;
        self.write_status(false).await;
        info!(
            shipped = self.shipped_files,
            manifest_entries = self.manifest.lock().map(|m| m.len()).unwrap_or(0),
            "watcher stopped"
        );
    }

    async fn drain_jobs(&mut self, deadline: Instant) {
        while !self.jobs.is_empty() {
            match tokio::time::timeout_at(deadline.into(), self.jobs.join_next_with_id()).await {
                Ok(Some(j)) => self.on_join(j).await,
                Ok(None) => break,
                Err(_) => {
                    warn!(
                        jobs = self.jobs.len(),
                        "shutdown timeout: abandoning jobs in flight (nothing of theirs is recorded)"
                    );
                    self.jobs.abort_all();
                    while self.jobs.join_next().await.is_some() {}
                    self.job_paths.clear();
                    self.busy = 0;
                    self.validating = 0;
                    break;
                }
            }
        }
    }
}

/// 1 s, 2 s, 4 s... up to `max`.
fn backoff(attempts: u32, max: Duration) -> Duration {
    let exp = Duration::from_secs(1).saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    exp.min(max)
}

fn gap_alarm(k: &ThreadKey, r: &SeqRange) -> Alarm {
    Alarm::new(
        AlarmKind::Gap,
        Severity::Critical,
        format!(
            "thread {} (db id {}, resetlogs id {}): sequence{} {} missing while a later one \
             exists",
            k.thread,
            k.db_id,
            k.resetlogs_id,
            if r.first == r.last { "" } else { "s" },
            if r.first == r.last {
                r.first.to_string()
            } else {
                format!("{}-{}", r.first, r.last)
            }
        ),
    )
    .details(serde_json::json!({
        "db_id": k.db_id, "resetlogs_id": k.resetlogs_id, "thread": k.thread.0,
        "first": r.first, "last": r.last,
    }))
}
