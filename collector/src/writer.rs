//! The group-commit writer: one task in front of the [`Store`], many sessions behind it.
//!
//! ```text
//! sessions ──AppendRequest, bounded channel (WriterHandle::append)──► writer task
//!   take one, drain what is queued (≤ max_batch requests, ≤ max_batch_bytes)
//!   ──► write all ──► Store::sync ONCE for the batch, across streams  (spawn_blocking)
//!   ──► answer each: Ok(DurableAppend) | Refused | Failed | NoSpace | Stopped
//!   (the next batch queues up while one syncs: they share the fsync)
//! ```
//!
//! Invariants:
//! - A request is answered `Ok` only after the sync covering it returned, with its stream's
//!   durable state ([`DurableAppend`]).
//! - A failed write or fsync (EIO, ...) fails the store: the batch and every later request
//!   get [`AppendError::Failed`], logged at ERROR, [`WriterStats::failed`] (metric
//!   `redovault_collector_store_failed`); no fsync is retried. A request refused for its own
//!   reasons (a gap, different bytes) gets [`AppendError::Refused`] and affects no other.
//! - Full disk (`ENOSPC`/`EDQUOT`) does **not** fail the store: it cuts every unsynced write
//!   off ([`StreamStoreError::NoSpace`]), the batch gets [`AppendError::NoSpace`] (nothing of
//!   it acknowledged), the alarm is raised (ERROR log, [`WriterStats::disk_full`], metric
//!   `redovault_collector_disk_full`), and requests are answered `NoSpace` without touching
//!   the disk until a retry is due (backoff from [`NO_SPACE_RETRY_MIN`] doubling to
//!   [`NO_SPACE_RETRY_MAX`], or at once after retention freed space:
//!   [`WriterHandle::space_freed`]). The first batch written and synced again clears the
//!   alarm. Sessions end on `NoSpace`; the extractor resends from the durable end.
//! - Cancellation ([`CancellationToken`]) is checked between batches; a started batch always
//!   runs to its end (written, synced, answered); queued requests get
//!   [`AppendError::Stopped`]. Dropping every handle also ends the task.
//!
//! Why one task on the blocking pool: the fsync cost is shared by everything that arrived
//! meanwhile, and file writes and fsync never block the async workers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos, latency};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::index::CommitQuery;
use crate::rebuild::{RebuildError, RebuildOptions, RebuildReport};
use crate::store::{Durable, Store, StreamSnapshot, StreamStoreError};

/// Sizes of the writer's queue and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Requests waiting in the channel before senders wait (backpressure). 1024: with
    /// 64 KiB appends, 64 MiB queued at most, about 6 s of redo at 10 MB/s.
    pub queue: usize,
    /// Most requests written per fsync.
    pub max_batch: usize,
    /// A batch stops taking requests once it holds this many redo bytes (16 MiB keeps one
    /// fsync well under 100 ms on a disk writing 200 MB/s).
    pub max_batch_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            queue: 1024,
            max_batch: 1024,
            max_batch_bytes: 16 << 20,
        }
    }
}

/// Redo to append to a stream (see [`Store::append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    pub stream: StreamId,
    /// Where `bytes` start.
    pub pos: StreamPos,
    /// Redo bytes as read from the source log.
    pub bytes: Vec<u8>,
    /// Commits whose end lies in `bytes`, in order.
    pub commits: Vec<CommitMark>,
    /// The log (sequence) ends with these bytes.
    pub log_end: bool,
}

impl AppendRequest {
    /// Where the next request starts: `(seq + 1, 0)` after the end of a log (as `Data::end`).
    pub fn end(&self) -> StreamPos {
        self.pos.after(self.bytes.len() as u64, self.log_end)
    }
}

/// The acknowledgement of a durable append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableAppend {
    pub stream: StreamId,
    /// The stream's durable state after the batch's fsync: covers the whole request.
    pub durable: Durable,
    /// Bytes of the request newly stored.
    pub stored: u64,
    /// Bytes of the request that were already held (a resend), not stored twice.
    pub duplicate: u64,
}

/// Why an append was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The request was refused (gap, different bytes, malformed, or held redo unreadable);
    /// the store keeps serving.
    #[error(transparent)]
    Refused(Arc<StreamStoreError>),
    /// The disk is full: nothing of the request was kept; send it again later (the
    /// writer retries the disk with backoff, see the module docs).
    #[error("collector disk full: {0}")]
    NoSpace(Arc<str>),
    /// The store is failed (I/O error): nothing is acknowledged until a restart.
    #[error("collector store failed: {0}")]
    Failed(Arc<str>),
    /// The writer has stopped.
    #[error("collector store writer stopped")]
    Stopped,
}

/// Upper bounds, in seconds, of the latency histogram buckets (Prometheus `le`; a last
/// `+Inf` bucket follows): fine around a disk's 0.5 to 10 ms fsync, coarse beyond.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// A latency histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    pub counts: Vec<u64>,
    /// Sum of all observations, in microseconds.
    pub sum_micros: u64,
    /// Number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// The upper bound (seconds) of the bucket holding quantile `q` (`None` when empty or
    /// in the `+Inf` bucket).
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return LATENCY_BUCKETS.get(i).copied();
            }
        }
        None
    }
}

#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// Counters of the writer, for the metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// `redovault_collector_store_failed`: 1 once a write or fsync failed.
    pub failed: bool,
    /// `redovault_collector_disk_full`: 1 while the disk is full (appends answered
    /// `NoSpace`), 0 once a batch was written and synced again.
    pub disk_full: bool,
    /// `redovault_collector_disk_full_total`: batches refused for a full disk.
    pub disk_full_batches: u64,
    /// `redovault_collector_store_batches_total`: batches written and synced.
    pub batches: u64,
    /// `redovault_collector_store_appends_total`: requests acknowledged.
    pub acked: u64,
    /// `redovault_collector_store_refused_total`: requests refused.
    pub refused: u64,
    /// `redovault_collector_store_bytes_total`: redo bytes stored.
    pub bytes: u64,
    /// `redovault_collector_store_duplicate_bytes_total`: resent bytes not stored again.
    pub duplicate_bytes: u64,
    /// `redovault_collector_store_fsync_seconds`: duration of each batch's sync (one
    /// write-ahead fdatasync, or the one dirty segment's; a checkpoint's included).
    pub fsync: LatencyHistogram,
    /// `redovault_collector_wal_bytes_total`: bytes written to the write-ahead file.
    pub wal_bytes: u64,
    /// `redovault_collector_wal_checkpoints_total`: write-ahead checkpoints.
    pub wal_checkpoints: u64,
    /// `redovault_collector_store_ack_latency_seconds`: from enqueueing a request to its
    /// answer.
    pub ack: LatencyHistogram,
}

#[derive(Debug, Default)]
struct Stats {
    failed: AtomicBool,
    disk_full: AtomicBool,
    disk_full_batches: AtomicU64,
    batches: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    bytes: AtomicU64,
    duplicate_bytes: AtomicU64,
    wal_bytes: AtomicU64,
    wal_checkpoints: AtomicU64,
    fsync: Histogram,
    ack: Histogram,
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    durable: RwLock<BTreeMap<StreamId, Durable>>,
    failure: RwLock<Option<Arc<str>>>,
    no_space: Mutex<Option<NoSpace>>,
    stats: Stats,
}

/// First wait before the disk is tried again after `ENOSPC`.
pub const NO_SPACE_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a full disk.
pub const NO_SPACE_RETRY_MAX: Duration = Duration::from_secs(30);

/// The full-disk state: why, and when the disk is tried again.
#[derive(Debug, Clone)]
struct NoSpace {
    reason: Arc<str>,
    retry_at: Instant,
    backoff: Duration,
}

impl NoSpace {
    /// The state after a (first or repeated) `ENOSPC` at `now`.
    fn after(prev: Option<&NoSpace>, reason: Arc<str>, now: Instant) -> NoSpace {
        let backoff = prev.map_or(NO_SPACE_RETRY_MIN, |p| {
            (p.backoff * 2).min(NO_SPACE_RETRY_MAX)
        });
        NoSpace {
            reason,
            retry_at: now + backoff,
            backoff,
        }
    }
}

struct Msg {
    req: AppendRequest,
    reply: oneshot::Sender<Result<DurableAppend, AppendError>>,
    enqueued: Instant,
}

/// The acknowledgement of a submitted request, to wait for.
#[derive(Debug)]
pub struct PendingAck(oneshot::Receiver<Result<DurableAppend, AppendError>>);

impl PendingAck {
    /// Waits until the request is durable (or refused, or the store failed).
    pub async fn wait(self) -> Result<DurableAppend, AppendError> {
        self.0.await.unwrap_or(Err(AppendError::Stopped))
    }
}

/// A cloneable handle to the writer task: append, and read durable state.
#[derive(Debug, Clone)]
pub struct WriterHandle {
    // Declared (so dropped) before `tx`: when the last sender goes, the task wakes and
    // takes the store back only if no handle still holds `shared`.
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

/// Starts the writer task on the current tokio runtime. It ends when `cancel` fires or
/// every handle is dropped. The join handle gives the [`Store`] back if no handle is left
/// by then (handles keep answering `durable`, `commits` and `rebuild` after a cancel, so
/// they keep the store); `None` otherwise, or if a panic poisoned it.
pub fn spawn(
    store: Store,
    cfg: WriterConfig,
    cancel: CancellationToken,
) -> (WriterHandle, tokio::task::JoinHandle<Option<Store>>) {
    let durable = store
        .streams()
        .into_iter()
        .filter_map(|s| store.durable(s).map(|d| (s, d)))
        .collect();
    let failure = store.failure().map(Arc::from);
    let shared = Arc::new(Shared {
        stats: Stats {
            failed: AtomicBool::new(failure.is_some()),
            ..Stats::default()
        },
        store: Mutex::new(store),
        durable: RwLock::new(durable),
        failure: RwLock::new(failure),
        no_space: Mutex::new(None),
    });
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let task = tokio::spawn(run(rx, shared.clone(), cfg, cancel));
    (WriterHandle { shared, tx }, task)
}

async fn run(
    mut rx: mpsc::Receiver<Msg>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
    cancel: CancellationToken,
) -> Option<Store> {
    loop {
        let first = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
        };
        let mut bytes = first.req.bytes.len();
        let mut batch = vec![first];
        while batch.len() < cfg.max_batch.max(1) && bytes < cfg.max_batch_bytes {
            match rx.try_recv() {
                Ok(m) => {
                    bytes += m.req.bytes.len();
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let sh = shared.clone();
        if tokio::task::spawn_blocking(move || process(&sh, batch))
            .await
            .is_err()
        {
            // A panic in the store: its replies were dropped (callers see Stopped);
            // stop rather than acknowledge anything from a state we cannot trust.
            set_failed(&shared, "the store task panicked".into());
            break;
        }
    }
    rx.close();
    while let Ok(m) = rx.try_recv() {
        let _ = m.reply.send(Err(AppendError::Stopped));
    }
    let shared = Arc::into_inner(shared)?;
    shared.store.into_inner().ok()
}

fn set_failed(shared: &Shared, reason: Arc<str>) -> Arc<str> {
    shared.stats.failed.store(true, Ordering::SeqCst);
    if let Ok(mut f) = shared.failure.write() {
        return f.get_or_insert(reason).clone();
    }
    reason
}

/// Writes a batch, syncs once, answers every request. Runs on the blocking pool.
fn process(shared: &Shared, batch: Vec<Msg>) {
    let mut store = match shared.store.lock() {
        Ok(s) => s,
        Err(_) => {
            let reason = set_failed(shared, "the store lock is poisoned".into());
            for m in batch {
                let _ = m.reply.send(Err(AppendError::Failed(reason.clone())));
            }
            return;
        }
    };
    let traced = latency::enabled();
    let trace = |stage| {
        if traced {
            for m in &batch {
                latency::trace_stream(stage, m.req.stream, m.req.end());
            }
        }
    };
    trace("store_batch");
    let waiting = shared
        .no_space
        .lock()
        .ok()
        .and_then(|n| n.clone())
        .filter(|n| Instant::now() < n.retry_at);
    if let Some(n) = waiting {
        shared
            .stats
            .disk_full_batches
            .fetch_add(1, Ordering::Relaxed);
        for m in batch {
            shared.stats.ack.observe(m.enqueued.elapsed());
            let _ = m.reply.send(Err(AppendError::NoSpace(n.reason.clone())));
        }
        return;
    }
    let mut results: Vec<Result<(u64, u64), AppendError>> = Vec::with_capacity(batch.len());
    let mut failure: Option<Arc<str>> = None;
    let mut no_space: Option<Arc<str>> = None;
    for m in &batch {
        if let Some(f) = &failure {
            results.push(Err(AppendError::Failed(f.clone())));
            continue;
        }
        if let Some(f) = &no_space {
            results.push(Err(AppendError::NoSpace(f.clone())));
            continue;
        }
        let r = &m.req;
        match store.append(r.stream, r.pos, &r.bytes, &r.commits, r.log_end) {
            Ok(a) => results.push(Ok((a.stored, a.duplicate))),
            Err(StreamStoreError::NoSpace(reason)) => {
                let reason: Arc<str> = reason.into();
                results.push(Err(AppendError::NoSpace(reason.clone())));
                no_space = Some(reason);
            }
            Err(e) if e.is_failure() => {
                let reason = set_failed(shared, store.failure().unwrap_or("").into());
                results.push(Err(AppendError::Failed(reason.clone())));
                failure = Some(reason);
            }
            Err(e) => {
                tracing::warn!(stream = %r.stream, pos = %r.pos, error = %e, "append refused");
                results.push(Err(AppendError::Refused(Arc::new(e))));
            }
        }
    }
    trace("store_written");
    if failure.is_none() && no_space.is_none() && results.iter().any(Result::is_ok) {
        let t = Instant::now();
        match store.sync() {
            Ok(changed) => {
                shared.stats.fsync.observe(t.elapsed());
                if let Ok(mut d) = shared.durable.write() {
                    d.extend(changed);
                }
            }
            Err(StreamStoreError::NoSpace(reason)) => no_space = Some(reason.into()),
            Err(_) => {
                let reason = set_failed(shared, store.failure().unwrap_or("").into());
                failure = Some(reason);
            }
        }
    }
    trace("store_synced");
    let (wal_bytes, wal_checkpoints) = store.wal_stats();
    shared.stats.wal_bytes.store(wal_bytes, Ordering::Relaxed);
    shared
        .stats
        .wal_checkpoints
        .store(wal_checkpoints, Ordering::Relaxed);
    shared.stats.batches.fetch_add(1, Ordering::Relaxed);
    note_disk(shared, no_space.clone(), results.iter().any(Result::is_ok));
    for (m, r) in batch.into_iter().zip(results) {
        let answer = match (r, &failure, &no_space) {
            (Ok(_), Some(f), _) => Err(AppendError::Failed(f.clone())),
            // The store cut every unsynced write of the batch off: none is acknowledged.
            (_, None, Some(f)) => Err(AppendError::NoSpace(f.clone())),
            (Ok((stored, duplicate)), None, None) => match store.durable(m.req.stream) {
                Some(durable) => {
                    shared.stats.acked.fetch_add(1, Ordering::Relaxed);
                    shared.stats.bytes.fetch_add(stored, Ordering::Relaxed);
                    shared
                        .stats
                        .duplicate_bytes
                        .fetch_add(duplicate, Ordering::Relaxed);
                    Ok(DurableAppend {
                        stream: m.req.stream,
                        durable,
                        stored,
                        duplicate,
                    })
                }
                // Unreachable: an accepted append leaves its stream with durable redo after
                // the sync. Refuse rather than acknowledge without a durable position.
                None => Err(AppendError::Refused(Arc::new(
                    StreamStoreError::InvalidAppend {
                        stream: m.req.stream,
                        pos: m.req.pos,
                        reason: "nothing durable to acknowledge".into(),
                    },
                ))),
            },
            (Err(e), _, _) => {
                if matches!(e, AppendError::Refused(_)) {
                    shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(e)
            }
        };
        shared.stats.ack.observe(m.enqueued.elapsed());
        let _ = m.reply.send(answer);
    }
}

/// Raises the full-disk alarm (and schedules the next try) or clears it once a batch was
/// written and synced.
fn note_disk(shared: &Shared, no_space: Option<Arc<str>>, synced: bool) {
    let Ok(mut state) = shared.no_space.lock() else {
        return;
    };
    match no_space {
        Some(reason) => {
            let next = NoSpace::after(state.as_ref(), reason, Instant::now());
            tracing::error!(
                reason = %next.reason,
                retry_in_ms = u64::try_from(next.backoff.as_millis()).unwrap_or(u64::MAX),
                "collector disk full: nothing acknowledged, extractors keep their redo and resend; \
                 free space (or let retention remove archived sequences)"
            );
            shared.stats.disk_full.store(true, Ordering::SeqCst);
            shared
                .stats
                .disk_full_batches
                .fetch_add(1, Ordering::Relaxed);
            *state = Some(next);
        }
        None if synced => {
            if let Some(prev) = state.take() {
                tracing::info!(
                    was = %prev.reason,
                    "collector disk has space again: acknowledging"
                );
            }
            shared.stats.disk_full.store(false, Ordering::SeqCst);
        }
        None => {}
    }
}

impl WriterHandle {
    /// Space was freed (retention removed segments): a full disk is tried again with the
    /// next request instead of after the backoff.
    pub fn space_freed(&self) {
        if let Ok(mut n) = self.shared.no_space.lock()
            && let Some(n) = n.as_mut()
        {
            n.retry_at = Instant::now();
        }
    }

    /// The full-disk alarm, while it is raised.
    pub fn disk_full(&self) -> Option<Arc<str>> {
        self.shared
            .no_space
            .lock()
            .ok()
            .and_then(|n| n.as_ref().map(|n| n.reason.clone()))
    }

    /// Appends and waits for durability. `Ok` only after the fsync that covers the request
    /// returned; the ack carries the stream's durable state. Safe to drop: a dropped call
    /// may still be written and synced, but is never acknowledged.
    pub async fn append(&self, req: AppendRequest) -> Result<DurableAppend, AppendError> {
        self.submit(req).await?.wait().await
    }

    /// Queues a request (waiting for room in the queue: backpressure) and returns without
    /// waiting for durability. Requests submitted one after the other by one task reach
    /// the store in that order, so a session can keep a window of appends in flight and
    /// collect the acknowledgements later ([`PendingAck::wait`]).
    pub async fn submit(&self, req: AppendRequest) -> Result<PendingAck, AppendError> {
        if let Some(f) = self.failure() {
            return Err(AppendError::Failed(f));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg {
                req,
                reply,
                enqueued: Instant::now(),
            })
            .await
            .map_err(|_| AppendError::Stopped)?;
        Ok(PendingAck(rx))
    }

    /// The durable state of a stream as of the last completed batch (no waiting on the
    /// store).
    pub fn durable(&self, stream: StreamId) -> Option<Durable> {
        self.shared.durable.read().ok()?.get(&stream).copied()
    }

    /// Every stream with durable redo, with its state.
    pub fn durable_all(&self) -> BTreeMap<StreamId, Durable> {
        self.shared
            .durable
            .read()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    /// Requests waiting in the channel (metric `redovault_collector_store_queue_depth`).
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// The store's failure, if it has failed.
    pub fn failure(&self) -> Option<Arc<str>> {
        self.shared.failure.read().ok()?.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> WriterStats {
        let s = &self.shared.stats;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WriterStats {
            failed: s.failed.load(Ordering::SeqCst),
            disk_full: s.disk_full.load(Ordering::SeqCst),
            disk_full_batches: l(&s.disk_full_batches),
            batches: l(&s.batches),
            acked: l(&s.acked),
            refused: l(&s.refused),
            bytes: l(&s.bytes),
            duplicate_bytes: l(&s.duplicate_bytes),
            wal_bytes: l(&s.wal_bytes),
            wal_checkpoints: l(&s.wal_checkpoints),
            fsync: s.fsync.snapshot(),
            ack: s.ack.snapshot(),
        }
    }

    /// Runs `f` on the store between batches (on the blocking pool): retention reads a
    /// stream's view and retires segments through this, never while a batch is written.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Result<T, AppendError> {
        let sh = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            sh.store
                .lock()
                .map(|mut s| f(&mut s))
                .map_err(|_| AppendError::Failed("the store lock is poisoned".into()))
        })
        .await
        .unwrap_or(Err(AppendError::Stopped))
    }

    /// A snapshot of a stream's durable state and the key ring, to read its segments
    /// without holding the store (waits for the current batch to finish; `None`: nothing
    /// durable yet).
    pub async fn snapshot(
        &self,
        stream: StreamId,
    ) -> Result<Option<(StreamSnapshot, KeyRing)>, AppendError> {
        self.with_store(move |s| s.snapshot(stream).map(|snap| (snap, s.keys().clone())))
            .await
    }

    /// Durable commits of a stream (waits for the current batch to finish).
    pub async fn commits(
        &self,
        stream: StreamId,
        query: CommitQuery,
        limit: usize,
    ) -> Result<Vec<CommitMark>, AppendError> {
        let sh = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            sh.store
                .lock()
                .map(|s| s.commits(stream, &query, limit))
                .map_err(|_| AppendError::Failed("the store lock is poisoned".into()))
        })
        .await
        .unwrap_or(Err(AppendError::Stopped))
    }

    /// Rebuilds a stream's log to `out` (see [`crate::rebuild`]). The store is held only to
    /// take a snapshot; segments are read while appends go on.
    pub async fn rebuild(
        &self,
        stream: StreamId,
        out: &Path,
        opts: RebuildOptions,
    ) -> Result<RebuildReport, RebuildError> {
        let sh = self.shared.clone();
        let out: PathBuf = out.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let (snap, keys) = {
                let store = sh
                    .store
                    .lock()
                    .map_err(|_| RebuildError::NoStream(stream))?;
                let snap = store
                    .snapshot(stream)
                    .ok_or(RebuildError::NoStream(stream))?;
                (snap, store.keys().clone())
            };
            crate::rebuild::rebuild(&snap, &keys, &out, &opts)
        })
        .await
        .unwrap_or_else(|e| {
            Err(RebuildError::Io {
                op: "rebuild task",
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::{DbId, ResetlogsId};
    use std::sync::Arc;
    use std::time::Duration;

    use redovault::crypto::keys::{KeyId, KeyRing};
    use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};

    use super::*;
    use crate::fs::{FaultPlan, FaultyFs};
    use crate::store::StoreOptions;

    fn keys() -> KeyRing {
        let id = KeyId::parse("k1").unwrap();
        KeyRing::from_keys(id.clone(), [(id, [9; 32])]).unwrap()
    }

    fn sid(thread: u16) -> StreamId {
        StreamId {
            db_id: DbId(1),
            resetlogs_id: ResetlogsId(2),
            thread: ThreadId(thread),
        }
    }

    fn req(thread: u16, offset: u64, len: usize) -> AppendRequest {
        let end = StreamPos {
            seq: LogSeq(1),
            offset: offset + len as u64,
        };
        AppendRequest {
            stream: sid(thread),
            pos: StreamPos {
                seq: LogSeq(1),
                offset,
            },
            bytes: vec![thread as u8; len],
            commits: vec![CommitMark {
                xid: Xid {
                    usn: thread,
                    slot: 1,
                    sqn: offset as u32,
                },
                scn: Scn(offset + 1),
                time: None,
                end,
            }],
            log_end: false,
        }
    }

    /// Polls `cond` every 5 ms, for at most 10 s.
    async fn wait_until(cond: impl Fn() -> bool) {
        for _ in 0..2000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("condition not reached in 10 s");
    }

    fn start(dir: &Path, fs: &FaultyFs) -> (WriterHandle, tokio::task::JoinHandle<Option<Store>>) {
        let store =
            Store::open_with(dir, keys(), StoreOptions::default(), Arc::new(fs.clone())).unwrap();
        spawn(store, WriterConfig::default(), CancellationToken::new())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_fsync_per_batch_and_no_answer_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan::default());
        let (w, _task) = start(dir.path(), &fs);
        fs.hold_syncs();
        let first = tokio::spawn({
            let w = w.clone();
            async move { w.append(req(1, 0, 4096)).await }
        });
        // While the first batch waits in fsync, 5 sessions send their appends.
        wait_until(|| fs.syncs() >= 1).await;
        let mut sessions = Vec::new();
        for t in 1..=5u16 {
            let w = w.clone();
            sessions.push(tokio::spawn(async move {
                // One session sends in order and waits for each acknowledgement.
                let start = if t == 1 { 4096 } else { 0 };
                let mut acks = Vec::new();
                for i in 0..10u64 {
                    acks.push(w.append(req(t, start + i * 512, 512)).await);
                }
                acks
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!first.is_finished(), "answered before its fsync returned");
        assert!(sessions.iter().all(|s| !s.is_finished()));
        assert_eq!(w.stats().acked, 0);
        assert!(w.durable(sid(1)).is_none());
        fs.release_syncs();
        let a = first.await.unwrap().unwrap();
        assert_eq!(a.durable.end.offset, 4096);
        for (i, s) in sessions.into_iter().enumerate() {
            let t = i as u16 + 1;
            let acks = s.await.unwrap();
            assert_eq!(acks.len(), 10);
            for (k, ack) in acks.into_iter().enumerate() {
                let ack = ack.unwrap();
                let start = if t == 1 { 4096 } else { 0 };
                assert!(ack.durable.end.offset >= start + (k as u64 + 1) * 512);
                assert_eq!(ack.stream, sid(t));
            }
            let end = if t == 1 { 4096 + 5120 } else { 5120 };
            assert_eq!(w.durable(sid(t)).unwrap().end.offset, end);
        }
        let st = w.stats();
        assert_eq!(st.acked, 51);
        assert_eq!(st.fsync.count, st.batches);
        assert_eq!(st.ack.count, 51);
        assert_eq!(st.ack.counts.iter().sum::<u64>(), 51);
        assert!(!st.failed);
    }

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = Histogram::default();
        for ms in [0.2, 0.7, 0.9, 4.0, 4.5, 30.0, 9000.0] {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 7);
        assert_eq!(s.counts.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(
            (s.counts[0], s.counts[1], s.counts[4], s.counts[8]),
            (1, 2, 2, 1)
        );
        assert_eq!(*s.counts.last().unwrap(), 1, "9 s lands in +Inf");
        assert_eq!(s.quantile_upper_bound(0.5), Some(0.005));
        assert_eq!(s.quantile_upper_bound(0.1), Some(0.0005));
        assert_eq!(s.quantile_upper_bound(1.0), None);
        assert_eq!(LatencyHistogram::default().quantile_upper_bound(0.5), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sessions_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan::default());
        let (w, _task) = start(dir.path(), &fs);
        fs.hold_syncs();
        let blocker = tokio::spawn({
            let w = w.clone();
            async move { w.append(req(9, 0, 10)).await }
        });
        wait_until(|| fs.syncs() >= 1).await;
        // 40 sessions, one append each, all queued behind the held fsync.
        let mut tasks = Vec::new();
        for t in 1..=40u16 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move { w.append(req(t, 0, 1000)).await }));
        }
        wait_until(|| w.queue_depth() == 40).await;
        assert!(!blocker.is_finished());
        tokio::time::sleep(Duration::from_millis(100)).await;
        fs.release_syncs();
        blocker.await.unwrap().unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let st = w.stats();
        assert_eq!(st.acked, 41);
        assert_eq!(st.batches, 2, "{st:?}");
        assert_eq!(st.fsync.count, 2);
        // The 40 queued requests waited at least the 100 ms of the held fsync.
        assert!(
            st.ack.quantile_upper_bound(0.5).unwrap() >= 0.1,
            "{:?}",
            st.ack
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_fails_every_waiting_and_later_request_without_retry() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan::default());
        let (w, _task) = start(dir.path(), &fs);
        let ok = w.append(req(1, 0, 1000)).await.unwrap();
        fs.set_plan(FaultPlan {
            fail_sync_from: Some(fs.syncs() + 1),
            ..FaultPlan::default()
        });
        let mut tasks = Vec::new();
        for k in 0..3u64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.append(req(2 + k as u16, 0, 1000)).await
            }));
        }
        for t in tasks {
            let e = t.await.unwrap().unwrap_err();
            assert!(matches!(e, AppendError::Failed(_)), "{e}");
        }
        let syncs = fs.syncs();
        fs.set_plan(FaultPlan::default());
        let e = w.append(req(1, 1000, 10)).await.unwrap_err();
        assert!(
            matches!(&e, AppendError::Failed(r) if r.contains("os error 5")),
            "{e}"
        );
        assert_eq!(fs.syncs(), syncs, "an fsync was retried after a failure");
        assert!(w.stats().failed);
        assert!(w.failure().is_some());
        assert_eq!(w.durable(sid(1)), Some(ok.durable));
        assert!(w.durable(sid(2)).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_stops_acknowledging_and_resumes_when_space_frees() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan::default());
        let (w, _task) = start(dir.path(), &fs);
        w.append(req(1, 0, 100)).await.unwrap();
        fs.set_plan(FaultPlan {
            space: Some(fs.written() + 50),
            ..FaultPlan::default()
        });
        let e = w.append(req(1, 100, 100)).await.unwrap_err();
        assert!(
            matches!(&e, AppendError::NoSpace(r) if r.contains("os error 28")),
            "{e}"
        );
        let st = w.stats();
        assert!(st.disk_full && !st.failed, "{st:?}");
        assert!(w.failure().is_none());
        assert!(w.disk_full().is_some());
        // Within the backoff the disk is not even tried.
        let written = fs.written();
        fs.set_plan(FaultPlan::default());
        let e = w.append(req(1, 100, 100)).await.unwrap_err();
        assert!(matches!(e, AppendError::NoSpace(_)), "{e}");
        assert_eq!(fs.written(), written);
        assert_eq!(w.durable(sid(1)).unwrap().end.offset, 100);
        // Space freed (retention, or after the backoff): acknowledged again.
        w.space_freed();
        let a = w.append(req(1, 100, 100)).await.unwrap();
        assert_eq!(a.durable.end.offset, 200);
        assert!(!w.stats().disk_full);
        assert!(w.disk_full().is_none());
        let commits = w
            .commits(sid(1), CommitQuery::All, usize::MAX)
            .await
            .unwrap();
        assert_eq!(commits.len(), 2);
    }

    #[test]
    fn the_full_disk_backoff_doubles_to_its_cap() {
        let t = Instant::now();
        let a = NoSpace::after(None, "x".into(), t);
        assert_eq!(a.backoff, NO_SPACE_RETRY_MIN);
        let mut n = a;
        for _ in 0..10 {
            n = NoSpace::after(Some(&n), "x".into(), t);
        }
        assert_eq!(n.backoff, NO_SPACE_RETRY_MAX);
        assert_eq!(n.retry_at, t + NO_SPACE_RETRY_MAX);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_request_does_not_disturb_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultyFs::new(FaultPlan::default());
        let (w, _task) = start(dir.path(), &fs);
        w.append(req(1, 0, 100)).await.unwrap();
        let (a, b) = tokio::join!(w.append(req(1, 500, 100)), w.append(req(1, 100, 100)));
        let e = a.unwrap_err();
        assert!(
            matches!(&e, AppendError::Refused(s) if matches!(**s, StreamStoreError::Discontinuity { .. })),
            "{e}"
        );
        assert_eq!(b.unwrap().durable.end.offset, 200);
        let st = w.stats();
        assert_eq!((st.refused, st.acked, st.failed), (1, 2, false));
        let commits = w
            .commits(sid(1), CommitQuery::All, usize::MAX)
            .await
            .unwrap();
        assert_eq!(commits.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_stops_the_writer_and_gives_the_store_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), keys()).unwrap();
        let cancel = CancellationToken::new();
        let (w, task) = spawn(store, WriterConfig::default(), cancel.clone());
        w.append(req(1, 0, 100)).await.unwrap();
        cancel.cancel();
        let store = task.await.unwrap();
        // The handle still exists, so the store is shared: it comes back only once every
        // handle is gone.
        assert!(store.is_none());
        assert!(matches!(
            w.append(req(1, 100, 100)).await,
            Err(AppendError::Stopped)
        ));
        drop(w);

        let store = Store::open(dir.path(), keys()).unwrap();
        let (w, task) = spawn(store, WriterConfig::default(), CancellationToken::new());
        assert_eq!(w.durable(sid(1)).unwrap().end.offset, 100);
        drop(w);
        let store = task.await.unwrap().unwrap();
        assert_eq!(store.durable(sid(1)).unwrap().end.offset, 100);
    }
}
