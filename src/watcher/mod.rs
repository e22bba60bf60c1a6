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
//! a [`machine::Event`]. Invariants:
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
//! (completeness + SHA-256), [`follow`] (the same pass while ARCn writes), [`machine`] (the
//! decisions), [`jobs`] (jobs), [`outcomes`] (what they report), [`effects`] (alarms,
//! gauges, status file), [`ledger`] (state lock, file index), [`gaps`] (sequences per
//! thread), [`status`] (status file, `redovault status`), [`metrics`], [`diskspace`] (free
//! space of the archive destinations, against ORA-00257), [`push`] (`redovault push`).

pub mod config;
pub mod diskspace;
pub mod effects;
pub mod events;
pub mod follow;
pub mod gaps;
pub mod jobs;
pub mod ledger;
pub mod machine;
pub mod metrics;
pub mod outcomes;
pub mod push;
pub mod scan;
pub mod status;
pub mod validate;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::alert::{Alarm, AlarmKind, AlertSetupError, Alerter, Severity, now_rfc3339};
use crate::manifest::{ManifestDir, ManifestEntry, ManifestError, SegmentInfo, segment_key};
use crate::store::local::LocalStore;
use crate::store::s3::{S3Config, S3Store};
use crate::store::{ArchiveStore, Retention, RetryPolicy, StoreError};
pub use config::Config;
use config::{StoreConfig, StoreKind};
use effects::Effects;
use gaps::Gaps;
use ledger::LockError;
use machine::{Action, Event, JobOf, Limits, Machine, ValidLog};
use metrics::WatcherMetrics;
use scan::ScanResult;

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
        addr: std::net::SocketAddr,
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
        Alerter::start(cfg.alert.hook(), metrics.alerts.clone(), aux.clone())?;
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
        let w = &cfg.watch;
        let limits = Limits {
            parallel_uploads: w.parallel_uploads,
            grace_period: w.grace_period,
            retry_max_backoff: w.retry_max_backoff,
            backlog_alarm_age: w.backlog_alarm_age,
            status_interval: cfg.state.status_interval,
            seal_interval: cfg.state.seal_interval,
            segment_max_entries: cfg.state.segment_max_entries,
        };
        let effects = Effects::new(
            &cfg,
            Arc::clone(&metrics),
            alerter.clone(),
            store_desc,
            metrics_addr.map(|a| a.to_string()),
        );
        let mut c = Coordinator {
            cfg: Arc::clone(&cfg),
            store,
            machine: Machine::new(limits, gaps, index, Instant::now()),
            manifest: Arc::new(Mutex::new(manifest)),
            jobs: JoinSet::new(),
            job_of: HashMap::new(),
            effects,
            stop_follow: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        if let Some(e) = first_error {
            c.effects.record_error("upload_transient", e);
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

/// Runs the machine's actions: one task owns the machine, the manifest and the jobs.
struct Coordinator<S> {
    cfg: Arc<Config>,
    store: S,
    machine: Machine,
    manifest: Arc<Mutex<ManifestDir>>,
    jobs: JoinSet<Event>,
    job_of: HashMap<tokio::task::Id, JobOf>,
    effects: Effects,
    stop_follow: follow::StopFlag,
}

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
        self.act_all(vec![Action::CloseSegment { close: false }])
            .await;
        let tick = self
            .cfg
            .state
            .status_interval
            .min(Duration::from_millis(500));
        let mut next_scan = Instant::now() + self.cfg.watch.scan_interval;
        loop {
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
            self.feed(Event::Tick {
                now: Instant::now(),
                wall: SystemTime::now(),
            })
            .await;
        }
        self.shutdown().await;
        Ok(())
    }

    /// Feeds the machine one event and runs what it decides, and what that leads to.
    async fn feed(&mut self, event: Event) {
        let actions = self.decide(event);
        self.act_all(actions).await;
        self.effects.gauges(&self.machine);
    }

    fn decide(&mut self, event: Event) -> Vec<Action> {
        let m = self.manifest.lock().unwrap_or_else(|p| p.into_inner());
        self.machine.on(event, &*m)
    }

    async fn act_all(&mut self, actions: Vec<Action>) {
        let mut pending = VecDeque::from(actions);
        while let Some(a) = pending.pop_front() {
            if let Some(next) = self.act(a).await {
                pending.extend(self.decide(next));
            }
        }
    }

    /// Carries out one action; some answer with the event of their result.
    async fn act(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Validate { path } => {
                let fut = jobs::validate_job(path.clone());
                self.spawn(JobOf::Validate(path), fut);
            }
            Action::ValidatedWhileWritten { path } => {
                debug!(file = %path.display(), "validated while written");
                self.effects.metrics.validated_while_written.inc();
            }
            Action::Follow { path, key } => {
                let stop = Arc::clone(&self.stop_follow);
                let fut = async move {
                    let result = tokio::task::spawn_blocking(move || {
                        follow::follow(&path, follow::IDLE, &stop)
                    })
                    .await
                    .ok()
                    .flatten();
                    if let Some(v) = &result {
                        debug!(size = v.ident.size, "followed a log to its end");
                    }
                    Event::Followed {
                        key,
                        result,
                        now: Instant::now(),
                    }
                };
                self.spawn(JobOf::Follow(key), fut);
            }
            Action::Upload(log) => {
                let path = log.path.clone();
                let fut = jobs::upload_job(self.store.clone(), Arc::clone(&self.cfg), log);
                self.spawn(JobOf::File(path), fut);
            }
            Action::Quarantine { path, ident } => {
                let cfg = Arc::clone(&self.cfg);
                let fut = jobs::quarantine_job(self.store.clone(), path.clone(), ident, move |h| {
                    cfg.quarantine_key(h)
                });
                self.spawn(JobOf::File(path), fut);
            }
            Action::Record {
                log,
                shipped,
                started,
            } => return Some(self.record(log, shipped, started).await),
            Action::CloseSegment { close } => return Some(self.close_segment(close).await),
            Action::Seal { seg } => {
                let key = segment_key(&self.cfg.store.prefix, &seg);
                let first = seg.first;
                let fut = jobs::seal_job(self.store.clone(), key, seg);
                self.spawn(JobOf::Seal(first), fut);
            }
            Action::MarkSealed { seg, key, put } => self.mark_sealed(seg, key, put).await,
            Action::Raise(r) => self.effects.raise(r),
            Action::Error { kind, message } => self.effects.error(kind, message),
            Action::WriteStatus => self.write_status(true).await,
            Action::GapOpened { key, range } => warn!(
                thread = key.thread.0,
                resetlogs_id = key.resetlogs_id.0,
                first = range.first,
                last = range.last,
                "gap: sequences missing below a later one"
            ),
            Action::GapClosed { key, range } => info!(
                thread = key.thread.0,
                first = range.first,
                last = range.last,
                "gap closed"
            ),
        }
        None
    }

    fn spawn(&mut self, of: JobOf, fut: impl std::future::Future<Output = Event> + Send + 'static) {
        let h = self.jobs.spawn(fut);
        self.job_of.insert(h.id(), of);
    }

    // ----------------------------------------------------------------------------------------
    // Scanning

    async fn scan(&mut self, started: Instant) {
        let cfg = Arc::clone(&self.cfg);
        let metrics = Arc::clone(&self.effects.metrics);
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
        self.feed(Event::Listed {
            seen: r.files,
            errors: r.errors,
            now: started,
            wall: SystemTime::now(),
        })
        .await;
        // What a rescan costs as the destinations fill up (the scale benchmark reads it):
        // the directory walk, then the coordinator's pass over what it listed.
        debug!(
            target: "redovault::watcher::rescan",
            files = listed,
            tracked = self.machine.tracked(),
            walk_ms = walked.as_secs_f64() * 1000.0,
            total_ms = started.elapsed().as_secs_f64() * 1000.0,
            "rescan done"
        );
    }

    // ----------------------------------------------------------------------------------------
    // Outcomes

    async fn on_join(&mut self, j: Result<(tokio::task::Id, Event), tokio::task::JoinError>) {
        let event = match j {
            Ok((id, event)) => {
                self.job_of.remove(&id);
                if let Event::Quarantined {
                    path,
                    result: Ok((key, sha)),
                    ..
                } = &event
                {
                    info!(file = %path.display(), %key, sha256 = %hex::encode(sha), "damaged file kept in WORM quarantine");
                    self.effects.metrics.quarantined_files.inc();
                }
                event
            }
            Err(e) => {
                let of = self.job_of.remove(&e.id());
                error!(error = %e, job = ?of, "a job failed");
                let Some(job) = of else { return };
                Event::Lost {
                    job,
                    now: Instant::now(),
                }
            }
        };
        self.feed(event).await;
    }

    /// Appends the manifest entry of a log the store confirmed (unless already recorded);
    /// durable before the machine hears of it.
    async fn record(
        &mut self,
        log: ValidLog,
        shipped: outcomes::Shipped,
        started: Instant,
    ) -> Event {
        let upload_time = started.elapsed();
        self.effects
            .metrics
            .upload_seconds
            .observe(upload_time.as_secs_f64());
        let entry = jobs::new_entry(&log, &shipped, now_rfc3339());
        let m = Arc::clone(&self.manifest);
        let appended = tokio::task::spawn_blocking(move || {
            let mut m = m
                .lock()
                .map_err(|_| ManifestError::Inconsistent("manifest lock poisoned".into()))?;
            if m.by_identity(&entry.identity())
                .is_some_and(|r| r.sha256 == entry.sha256)
            {
                return Ok(None);
            }
            m.append(entry).map(Some)
        })
        .await
        .map_err(|e| ManifestError::Inconsistent(format!("manifest writer: {e}")))
        .and_then(|r| r);
        let result = match appended {
            Ok(Some(e)) => {
                self.shipped(&log, &e, &shipped, started, upload_time);
                Ok(Some(e))
            }
            Ok(None) => {
                debug!(file = %log.path.display(), "already recorded in the manifest");
                Ok(None)
            }
            Err(source) => Err(outcomes::RecordError {
                path: log.path.clone(),
                key: shipped.put.key.clone(),
                source,
            }),
        };
        Event::Recorded {
            log,
            result,
            now: Instant::now(),
        }
    }

    /// Counts and logs a log shipped and recorded.
    fn shipped(
        &mut self,
        log: &ValidLog,
        e: &ManifestEntry,
        shipped: &outcomes::Shipped,
        started: Instant,
        upload_time: Duration,
    ) {
        let m = &self.effects.metrics;
        self.effects.shipped_files += 1;
        self.effects.shipped_bytes += e.size;
        m.shipped_files.inc();
        m.shipped_bytes.add(e.size);
        m.last_success
            .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        m.manifest_entries.set((e.index + 1) as f64);
        self.effects.last_success_at = Some(e.shipped_at.clone());
        let durable = Instant::now();
        let path = &log.path;
        let (to_start, to_durable) = match self.machine.detected(path, log.ident) {
            Some(d) => {
                let s = started.saturating_duration_since(d);
                let e2e = durable.saturating_duration_since(d);
                m.detect_to_upload_start_seconds.observe(s.as_secs_f64());
                m.detect_to_durable_seconds.observe(e2e.as_secs_f64());
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
    }

    // ----------------------------------------------------------------------------------------
    // Manifest sealing

    /// Closes the open segment (with `close`) and lists the unsealed ones.
    async fn close_segment(&mut self, close: bool) -> Event {
        let m = Arc::clone(&self.manifest);
        let result = tokio::task::spawn_blocking(move || {
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
        Event::Unsealed { result }
    }

    async fn mark_sealed(&mut self, seg: SegmentInfo, key: String, put: crate::store::PutOutcome) {
        let record = jobs::seal_record(&seg, key.clone(), &put, now_rfc3339());
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
                self.effects.metrics.sealed_segments.inc();
                info!(first = seg.first, last = seg.last, %key, "manifest segment sealed in WORM");
            }
            Err(e) => self.effects.error("manifest_write", e.to_string()),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Status

    async fn write_status(&mut self, running: bool) {
        self.effects.gauges(&self.machine);
        let s = {
            let m = self.manifest.lock().ok();
            self.effects.status(running, &self.machine, m.as_deref())
        };
        let path = self.cfg.status_path();
        let index = self.machine.take_index();
        let had_index = index.is_some();
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
        if let Err(e) = r {
            if had_index {
                self.machine.index_unwritten();
            }
            self.effects.metrics.errors.inc("status_write");
            warn!(error = %e, "cannot write the status file");
        }
    }

    // ----------------------------------------------------------------------------------------
    // Shutdown

    async fn shutdown(&mut self) {
        info!(in_flight = self.jobs.len(), "shutting down");
        self.feed(Event::Stopping).await;
        self.stop_follow
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let deadline = Instant::now() + self.cfg.watch.shutdown_timeout;
        self.drain_jobs(deadline).await;
        // Seal what was shipped, with its own deadline (the store may be down: the segment
        // then stays local and is sealed at the next start).
        self.act_all(vec![Action::CloseSegment { close: true }])
            .await;
        let seal_deadline =
            Instant::now() + self.cfg.watch.shutdown_timeout.max(Duration::from_secs(10));
        self.drain_jobs(seal_deadline).await;
        let now = Instant::now();
        let last = self.decide(Event::Tick {
            now,
            wall: SystemTime::now(),
        });
        // The last status is written below, with the whole index, whatever the tick says.
        self.act_all(
            last.into_iter()
                .filter(|a| !matches!(a, Action::WriteStatus))
                .collect(),
        )
        .await;
        self.machine.index_unwritten();
        self.write_status(false).await;
        info!(
            shipped = self.effects.shipped_files,
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
                    self.job_of.clear();
                    break;
                }
            }
        }
    }
}
