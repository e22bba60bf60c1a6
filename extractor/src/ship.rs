//! Shipping one stream to the collector: tailer → link (bounded window) → Acks → checkpoint.
//!
//! ```text
//! tail thread ──chunks (bounded)──► shipper ──Data──► sender task ──► collector
//!                                     ▲  window.reserve: waits while W bytes are unacked
//!                                     │  (then the tail channel fills and the tail thread
//!                                     │   stops reading: backpressure down to the disk)
//! receiver task ◄──Ack── collector ───┘  window.acknowledge; latest Ack → shipper
//!                                        → checkpoint task (durable, only on Acks)
//! ```
//!
//! - **Session**: connect (TLS 1.3 with our certificate, or the legacy channel), Hello with
//!   the checkpoint's position, then the collector's Welcome says where to resume: its
//!   durable end. The shipper sends from exactly there: the chunks it still holds
//!   unacknowledged from the previous session when one starts there, else a new tailer
//!   started at that position (the tailer reads the log again up to it, online or from the
//!   archived copy, without shipping it).
//! - **The checkpoint moves only on acknowledgements** (Acks, and the Welcome's resume,
//!   which is the collector's durable end), never backwards, written by a separate task so
//!   that fsyncs never stall the link (the latest Ack wins), at most once per
//!   [`CHECKPOINT_EVERY`]: each write is a `write_atomic` (two fsyncs and a rename) on the
//!   database host's disk, and an Ack comes with every group commit (thousands per second
//!   at 10 MB/s). A checkpoint behind the collector costs nothing: the Welcome's resume
//!   (the collector's durable end) moves it forward at the next session.
//! - **The collector behind the checkpoint** (Welcome resume before it): the collector lost
//!   redo it had acknowledged. ERROR and `redovault_extractor_collector_behind_total`; the
//!   redo is sent again from the collector's position if it is still online or archived
//!   (otherwise the tailer reports the sequence lost, and retries).
//! - **Reconnects** with exponential backoff (`reconnect_min` doubling to `reconnect_max`,
//!   with jitter), after any link error, Reject, dead peer (no heartbeat) or refusal. The
//!   first failure of an outage is logged at WARN, the next ones at DEBUG, the recovery at
//!   INFO.
//! - **Tailer errors** (a block damaged in every copy, a log overwritten before it was read
//!   and never archived) are logged at ERROR, counted, and the tailer is started again from
//!   the last position read after a pause, while the link stays up.
//! - **Cancellation**: the token stops everything; Acks already received are checkpointed
//!   before [`Shipper::run`] returns.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redovault::compress::Level;
use redovault::wire::message::{
    Ack, Capabilities, Data, Hello, Message, PROTOCOL_VERSION, RejectCode,
};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig, LinkError, LinkErrorKind};
use redovault::wire::window::Window;
use redovault::wire::{CommitMark, StreamId, StreamPos, latency};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::checkpoint::CheckpointStore;
use crate::config::{LogSources, TailConfig};
use crate::metrics::StreamMetrics;
use crate::protection::{Acked, CopyState};
use crate::tail::{TailChunk, TailHandle, Tailer};

/// Chunks the tail thread may read ahead of the shipper.
const TAIL_AHEAD: usize = 4;

/// Shortest interval between two checkpoint writes of a stream (the latest acknowledged
/// position is written; the last one always is, at shutdown).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Pause before a failed tailer is started again, doubling up to [`TAIL_RETRY_MAX`].
const TAIL_RETRY_MIN: Duration = Duration::from_millis(500);
const TAIL_RETRY_MAX: Duration = Duration::from_secs(30);

/// Where and how to ship (shared by the streams of one extractor).
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// The collector, `host:port` (resolved at each connection).
    pub address: String,
    /// TLS or legacy.
    pub security: ClientSecurity,
    /// Link tunables.
    pub link: LinkConfig,
    /// Unacknowledged Data bytes allowed in flight.
    pub window: u32,
    /// Our id in the Hello.
    pub extractor_id: String,
    /// Database name in the Hello (for humans).
    pub db_name: String,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Offer zstd at this level in the Hello; compress Data when the Welcome accepts.
    pub compress: Option<Level>,
}

/// Receives every Ack of a stream with the instant it arrived ([`Shipper::observe_acks`]).
pub type AckObserver = mpsc::UnboundedSender<(Instant, Ack)>;

/// Where a shipper publishes the state of its collector's copy for the stream's protection
/// task ([`crate::fanout`]): the latest state wins, so memory stays bounded whatever the
/// rate of Acks.
#[derive(Debug, Clone)]
pub struct CopyReport {
    state: Arc<std::sync::Mutex<CopyState>>,
    notify: Arc<tokio::sync::Notify>,
}

impl CopyReport {
    /// A report that wakes `notify` on every change.
    pub fn new(notify: Arc<tokio::sync::Notify>) -> CopyReport {
        CopyReport {
            state: Arc::new(std::sync::Mutex::new(CopyState::default())),
            notify,
        }
    }

    /// The latest state.
    pub fn get(&self) -> CopyState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut CopyState)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()));
        self.notify.notify_one();
    }
}

/// A chunk sent and not yet acknowledged.
#[derive(Debug)]
struct Sent {
    data: Data,
    read_at: Instant,
    sent_at: Option<Instant>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("cancelled")]
    Cancelled,
    #[error("cannot resolve {addr}: {detail}")]
    Resolve { addr: String, detail: String },
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("the collector refused the session ({code:?}): {reason}")]
    Rejected { code: RejectCode, reason: String },
    #[error("protocol: {0}")]
    Protocol(String),
}

/// The end of `data` as an Ack names it ([`Data::end`]).
fn data_end(d: &Data) -> StreamPos {
    d.end()
}

fn chunk_data(c: TailChunk) -> Data {
    Data {
        pos: c.pos,
        bytes: c.bytes,
        commits: c.commits,
        log_end: c.log_end,
    }
}

fn jitter(d: Duration) -> Duration {
    // ±25 %, from the clock's nanoseconds: enough to spread reconnect storms.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let f = 0.75 + f64::from(n % 1000) / 2000.0;
    d.mul_f64(f)
}

/// Ships one stream (see the module docs).
#[derive(Debug)]
pub struct Shipper {
    stream: StreamId,
    sources: LogSources,
    tail_cfg: TailConfig,
    cfg: Arc<ShipConfig>,
    metrics: StreamMetrics,
    /// The tailer made at start, not spawned yet (used if the first resume is its position).
    initial: Option<Tailer>,
    initial_from: StreamPos,
    tail: Option<TailHandle>,
    /// Position (in [`Data::end`] form) of the next chunk the running tailer delivers.
    next: StreamPos,
    /// When to start a failed tailer again.
    tail_retry: Option<(Instant, Duration)>,
    /// A chunk read and not sent yet.
    fresh: Option<(Data, Instant)>,
    /// Chunks sent and not acknowledged, in stream order.
    unacked: VecDeque<Sent>,
    /// The checkpoint's position as last pushed to the checkpoint task.
    cp_pos: Option<StreamPos>,
    cp_tx: watch::Sender<Option<(StreamPos, Option<CommitMark>)>>,
    cp_task: Option<tokio::task::JoinHandle<()>>,
    sessions: u64,
    /// The current session got its Welcome.
    established: bool,
    /// Offer compression in the next Hello: cleared (until a restart) when a collector
    /// answered an offer with an Error, as one that predates issue 19 does (the Hello's
    /// capabilities are trailing bytes to it).
    offer_compression: bool,
    observer: Option<AckObserver>,
    report: Option<CopyReport>,
    /// The checkpoint at start: what this copy held then.
    start_acked: Option<Acked>,
    tail_cancel: CancellationToken,
}

impl Shipper {
    /// A shipper for a stream whose tailer and checkpoint [`crate::streams::start_streams`]
    /// made: `from` is where the tailer starts (the checkpoint, or the CURRENT log's start).
    /// With no tailer, one is made where the collector resumes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: StreamId,
        tailer: Option<Tailer>,
        checkpoint: CheckpointStore,
        from: StreamPos,
        sources: LogSources,
        tail_cfg: TailConfig,
        cfg: Arc<ShipConfig>,
        metrics: StreamMetrics,
    ) -> Shipper {
        let cp_pos = checkpoint.get().map(|c| c.pos);
        let start_acked = checkpoint.get().map(|c| Acked {
            pos: c.pos,
            last: c.last_commit,
        });
        if let Some(c) = checkpoint.get() {
            metrics.acked(c.pos, c.last_commit.as_ref());
        }
        let (cp_tx, cp_rx) = watch::channel(None);
        let cp_task = tokio::spawn(checkpoint_task(checkpoint, cp_rx));
        Shipper {
            stream,
            sources,
            tail_cfg,
            cfg: cfg.clone(),
            metrics,
            initial: tailer.filter(|t| t.stream() == stream),
            initial_from: from,
            tail: None,
            next: from,
            tail_retry: None,
            fresh: None,
            unacked: VecDeque::new(),
            cp_pos,
            cp_tx,
            cp_task: Some(cp_task),
            sessions: 0,
            established: false,
            offer_compression: cfg.compress.is_some(),
            observer: None,
            report: None,
            start_acked,
            tail_cancel: CancellationToken::new(),
        }
    }

    /// Publishes this copy's state (session up, acknowledgements, read position, lag) to
    /// `report`, for the stream's protection task.
    pub fn report_to(&mut self, report: CopyReport) {
        if let Some(a) = self.start_acked {
            report.update(|s| s.acked = Some(a));
        }
        self.report = Some(report);
    }

    /// What the collector holds durably now (a Welcome's resume can be lower than before:
    /// a collector restored from an older copy).
    fn report_acked(&self, pos: StreamPos, last: Option<CommitMark>) {
        if let Some(r) = &self.report {
            r.update(|s| {
                let last = last.or(s.acked.and_then(|a| a.last));
                s.acked = Some(Acked { pos, last });
            });
        }
    }

    fn report_up(&self, up: bool) {
        if let Some(r) = &self.report {
            r.update(|s| s.up = up);
        }
    }

    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Sends every Ack, with the instant it was received, to `tx` (benchmarks, tests).
    pub fn observe_acks(&mut self, tx: AckObserver) {
        self.observer = Some(tx);
    }

    /// Ships until `cancel` fires: sessions one after the other, with backoff between.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut delay = self.cfg.reconnect_min;
        let mut failures = 0u32;
        let span = tracing::info_span!("ship", stream = %self.stream);
        loop {
            self.established = false;
            let r = tracing::Instrument::instrument(self.session(&cancel), span.clone()).await;
            self.report_up(false);
            self.metrics.connected.set(0.0);
            self.metrics.window_bytes.set(0.0);
            if matches!(r, SessionEnd::Cancelled) {
                break;
            }
            let _g = span.enter();
            if self.established {
                // A session ended: retry soon, and say so.
                delay = self.cfg.reconnect_min;
                failures = 0;
            }
            failures += 1;
            let wait = jitter(delay);
            if let SessionEnd::Rejected { code, .. } = &r
                && !matches!(code, RejectCode::Unavailable | RejectCode::StreamBusy)
            {
                error!(error = %r, retry_in = ?wait, "the collector refuses this extractor: check both configurations");
            } else if failures == 1 {
                warn!(error = %r, retry_in = ?wait, "no session with the collector; reconnecting");
            } else {
                debug!(error = %r, retry_in = ?wait, failures, "still no session with the collector");
            }
            drop(_g);
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            delay = (delay * 2).min(self.cfg.reconnect_max);
        }
        self.shutdown().await;
    }

    async fn shutdown(mut self) {
        if let Some(t) = self.tail.take() {
            let _ = tokio::task::spawn_blocking(move || t.stop()).await;
        }
        self.tail_cancel.cancel();
        drop(self.cp_tx);
        if let Some(t) = self.cp_task.take() {
            let _ = t.await;
        }
    }

    fn push_checkpoint(&mut self, pos: StreamPos, last: Option<CommitMark>) {
        if self.cp_pos.is_some_and(|c| pos <= c) {
            return;
        }
        self.cp_pos = Some(pos);
        self.cp_tx.send_replace(Some((pos, last)));
    }

    /// Starts (or restarts) the tailer at `pos`.
    fn start_tail(&mut self, pos: StreamPos) -> Result<(), String> {
        if let Some(t) = self.tail.take() {
            // Its thread ends at its next cancellation check; nothing it still sends is used.
            drop(t);
        }
        self.fresh = None;
        let tailer = match self.initial.take() {
            Some(t) if t.position() == pos => t,
            _ => Tailer::new(&self.sources, self.tail_cfg, self.stream, pos)
                .map_err(|e| e.to_string())?,
        };
        let handle = tailer
            .spawn(TAIL_AHEAD, self.tail_cancel.child_token())
            .map_err(|e| format!("cannot start a tail thread: {e}"))?;
        self.metrics.new_tailer();
        self.tail = Some(handle);
        self.next = pos;
        self.metrics.read(pos);
        Ok(())
    }

    fn tail_failed(&mut self, why: &str) {
        self.metrics.tail_errors.inc();
        let pause = self
            .tail_retry
            .map_or(TAIL_RETRY_MIN, |(_, p)| (p * 2).min(TAIL_RETRY_MAX));
        error!(error = %why, at = %self.next, retry_in = ?pause, "tailer failed; restarting it after a pause");
        self.tail = None;
        self.tail_retry = Some((Instant::now() + pause, pause));
    }

    /// Positions the sending state at the collector's `resume` (see the module docs).
    fn on_welcome(&mut self, resume: StreamPos, last: Option<CommitMark>) {
        if let Some(cp) = self.cp_pos
            && resume < cp
        {
            self.metrics.collector_behind.inc();
            error!(
                checkpoint = %cp,
                collector = %resume,
                "ALARM: the collector does not hold redo it acknowledged (its store was lost or \
                 restored); sending it again from the collector's position"
            );
        }
        // The Welcome's resume is the collector's durable end: an acknowledgement, unless
        // the collector holds nothing of the stream yet (the start of a log, no commit).
        if last.is_some() || resume.offset > 0 {
            self.push_checkpoint(resume, last);
            self.metrics.acked(resume, last.as_ref());
            self.report_acked(resume, last);
        }
        while self
            .unacked
            .front()
            .is_some_and(|s| data_end(&s.data) <= resume)
        {
            self.unacked.pop_front();
        }
        let continues = match self.unacked.front() {
            Some(s) => s.data.pos == resume,
            None => match &self.fresh {
                Some((d, _)) => d.pos == resume,
                None => self.tail.is_some() && self.next == resume,
            },
        };
        if continues {
            return;
        }
        if self.tail.is_some() || !self.unacked.is_empty() || self.fresh.is_some() {
            info!(%resume, "the collector resumes elsewhere than where this extractor is; restarting the tailer there");
        }
        self.unacked.clear();
        self.fresh = None;
        self.tail_retry = None;
        if let Err(e) = self.start_tail(resume) {
            self.next = resume;
            self.tail_failed(&e);
        }
    }

    fn on_ack(&mut self, a: Ack) {
        self.metrics.acks.inc();
        let mut newest_sent = None;
        while let Some(s) = self.unacked.front() {
            if data_end(&s.data) > a.durable {
                break;
            }
            newest_sent = s.sent_at.or(newest_sent);
            self.unacked.pop_front();
        }
        if let Some(t) = newest_sent {
            self.metrics.ack_latency_last.set(t.elapsed().as_secs_f64());
        }
        self.metrics.acked(a.durable, a.last_commit.as_ref());
        self.push_checkpoint(a.durable, a.last_commit);
        self.report_acked(a.durable, a.last_commit);
    }

    fn refresh(&mut self, window: &Window) {
        let mut bytes: u64 = self.unacked.iter().map(|s| s.data.bytes.len() as u64).sum();
        let mut oldest = self.unacked.front().map(|s| s.read_at);
        if let Some((d, at)) = &self.fresh {
            bytes += d.bytes.len() as u64;
            oldest = oldest.or(Some(*at));
        }
        self.metrics.lag_bytes.set(bytes as f64);
        self.metrics
            .lag_ms
            .set(oldest.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0));
        self.metrics.window_bytes.set(window.in_flight() as f64);
        if let Some(r) = &self.report {
            let read = self.next;
            let ms = oldest.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            r.update(|s| {
                s.read = Some(read);
                s.lag_bytes = bytes;
                s.lag_ms = ms;
            });
        }
        if let Some(t) = &self.tail {
            let stats = t.stats();
            self.metrics.tail_stats(&stats);
        }
    }

    fn hello_from(&self) -> StreamPos {
        self.cp_pos.unwrap_or(self.initial_from)
    }

    async fn connect(&mut self) -> Result<(Link, StreamPos, Option<CommitMark>), SessionEnd> {
        let addr = tokio::net::lookup_host(&self.cfg.address)
            .await
            .map_err(|e| SessionEnd::Resolve {
                addr: self.cfg.address.clone(),
                detail: e.to_string(),
            })?
            .next()
            .ok_or_else(|| SessionEnd::Resolve {
                addr: self.cfg.address.clone(),
                detail: "no address".into(),
            })?;
        let mut link = Link::connect_tcp(addr, &self.cfg.security, &self.cfg.link).await?;
        let from = self.hello_from();
        let offered = self.offer_compression;
        link.send(&Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            stream: self.stream,
            db_name: self.cfg.db_name.clone(),
            extractor_id: self.cfg.extractor_id.clone(),
            from,
            capabilities: offered.then(|| Capabilities::zstd(true)),
        }))
        .await?;
        let answer = tokio::time::timeout(self.cfg.link.handshake_timeout, link.recv())
            .await
            .map_err(|_| SessionEnd::Protocol("no Welcome in time".into()))?;
        let answer = match answer {
            // A collector before issue 19 refuses the offer's byte as trailing bytes after
            // the Hello's last field, in an Error.
            Err(e) if offered && refuses_the_offer(&e) => {
                self.offer_compression = false;
                warn!(error = %e, "the collector refused a Hello that offers compression \
                    (a collector that predates it?): saying Hello again without, uncompressed \
                    until this extractor restarts");
                return Err(e.into());
            }
            r => r?,
        };
        match answer {
            Message::Welcome(w) => {
                let level = self
                    .cfg
                    .compress
                    .filter(|_| offered && w.capabilities.is_some_and(Capabilities::has_zstd));
                link.set_compression(level);
                self.metrics.link_compressed(level);
                match level {
                    Some(l) => info!(
                        level = l.get(),
                        "the collector accepted zstd: Data travels compressed"
                    ),
                    None if offered => {
                        info!("the collector declined compression: Data travels raw")
                    }
                    None => {}
                }
                Ok((link, w.resume, w.last_commit))
            }

            Message::Reject(r) => Err(SessionEnd::Rejected {
                code: r.code,
                reason: r.reason,
            }),
            other => Err(SessionEnd::Protocol(format!(
                "expected Welcome, got {}",
                other.name()
            ))),
        }
    }

    async fn session(&mut self, cancel: &CancellationToken) -> SessionEnd {
        let connected = tokio::select! {
            () = cancel.cancelled() => return SessionEnd::Cancelled,
            r = self.connect() => r,
        };
        let (link, resume, last) = match connected {
            Ok(x) => x,
            Err(e) => return e,
        };
        let peer = link.peer().to_string();
        self.established = true;
        self.sessions += 1;
        if self.sessions > 1 {
            self.metrics.reconnects.inc();
        }
        info!(collector = %peer, from = %self.hello_from(), %resume, "session with the collector started");
        self.on_welcome(resume, last);
        self.report_up(true);
        self.metrics.connected.set(1.0);
        let (tx, mut rx) = link.split();
        let window = Arc::new(Window::new(self.cfg.window));
        let (ack_tx, mut ack_rx) = watch::channel(None::<Ack>);
        let mut recv_task = {
            let window = window.clone();
            let observer = self.observer.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await {
                        Ok(Message::Ack(a)) => {
                            latency::trace("ack_received", a.durable, None);
                            if let Some(o) = &observer {
                                let _ = o.send((Instant::now(), a));
                            }
                            window.acknowledge(a.durable);
                            ack_tx.send_replace(Some(a));
                        }
                        Ok(other) => {
                            return SessionEnd::Protocol(format!(
                                "unexpected {} from the collector",
                                other.name()
                            ));
                        }
                        Err(e) => return SessionEnd::Link(e),
                    }
                }
            })
        };
        let (out_tx, out_rx) = mpsc::channel::<Message>(16);
        let send_cancel = CancellationToken::new();
        let mut send_task = tokio::spawn(tx.run(out_rx, send_cancel.clone()));
        let mut send_done = false;
        let mut resend = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            let to_send = if resend < self.unacked.len() {
                self.unacked
                    .get(resend)
                    .map(|s| (data_end(&s.data), s.data.bytes.len()))
            } else {
                self.fresh
                    .as_ref()
                    .map(|(d, _)| (data_end(d), d.bytes.len()))
            };
            let (want_end, want_len) = to_send.unwrap_or((StreamPos::default(), 0));
            let retry_at = self
                .tail_retry
                .map(|(t, _)| tokio::time::Instant::from_std(t));
            let tail_ready = self.tail.is_some() && to_send.is_none();
            tokio::select! {
                biased;
                () = cancel.cancelled() => break SessionEnd::Cancelled,
                r = &mut recv_task => {
                    break r.unwrap_or_else(|e| SessionEnd::Protocol(format!("receiver task: {e}")));
                }
                r = &mut send_task, if !send_done => {
                    send_done = true;
                    break match r {
                        Ok(Err(e)) => SessionEnd::Link(e),
                        Ok(Ok(())) => SessionEnd::Protocol("sender stopped".into()),
                        Err(e) => SessionEnd::Protocol(format!("sender task: {e}")),
                    };
                }
                r = ack_rx.changed() => {
                    if r.is_ok() && let Some(a) = *ack_rx.borrow_and_update() {
                        self.on_ack(a);
                    }
                }
                _ = tick.tick() => self.refresh(&window),
                r = window.reserve(want_end, want_len), if to_send.is_some() => {
                    if r.is_err() {
                        break SessionEnd::Protocol("window closed".into());
                    }
                    let data = if resend < self.unacked.len() {
                        let s = &mut self.unacked[resend];
                        s.sent_at = Some(Instant::now());
                        self.metrics.resent_bytes.add(s.data.bytes.len() as u64);
                        s.data.clone()
                    } else {
                        let Some((d, read_at)) = self.fresh.take() else { continue };
                        self.unacked.push_back(Sent {
                            data: d.clone(),
                            read_at,
                            sent_at: Some(Instant::now()),
                        });
                        d
                    };
                    resend += 1;
                    let end = data_end(&data);
                    self.metrics.sent_bytes.add(data.bytes.len() as u64);
                    // The sender may be stuck on a partitioned link (its socket buffer
                    // full): the receiver's dead-peer time must still end the session.
                    let sent = tokio::select! {
                        () = cancel.cancelled() => break SessionEnd::Cancelled,
                        r = &mut recv_task => {
                            break r.unwrap_or_else(|e| SessionEnd::Protocol(format!("receiver task: {e}")));
                        }
                        r = out_tx.send(Message::Data(data)) => r,
                    };
                    if sent.is_err() {
                        break SessionEnd::Protocol("sender stopped".into());
                    }
                    latency::trace("data_queued", end, None);
                }
                r = next_chunk(&mut self.tail), if tail_ready => match r {
                    Ok(Some(c)) => {
                        let d = chunk_data(c);
                        self.next = data_end(&d);
                        self.metrics.read(self.next);
                        self.tail_retry = None;
                        self.fresh = Some((d, Instant::now()));
                    }
                    Ok(None) => self.tail_failed("the tailer stopped"),
                    Err(e) => self.tail_failed(&e),
                },
                () = sleep_until_opt(retry_at), if self.tail.is_none() && retry_at.is_some() => {
                    let at = self.next;
                    if let Err(e) = self.start_tail(at) {
                        self.tail_failed(&e);
                    } else {
                        info!(%at, "tailer restarted");
                    }
                }
            }
        };
        // Acks that arrived with the end still count.
        if let Some(a) = *ack_rx.borrow_and_update() {
            self.on_ack(a);
        }
        window.close();
        recv_task.abort();
        drop(out_tx);
        if !send_done {
            // On cancellation, best effort: an orderly close (TLS close_notify, TCP FIN).
            if matches!(end, SessionEnd::Cancelled)
                && tokio::time::timeout(Duration::from_secs(1), &mut send_task)
                    .await
                    .is_ok()
            {
                send_done = true;
            }
            if !send_done {
                send_cancel.cancel();
                let _ = send_task.await;
            }
        }
        self.refresh(&window);
        end
    }
}

/// The answer of a collector that predates compression to a Hello offering it: an Error
/// naming the Hello's trailing bytes.
fn refuses_the_offer(e: &LinkError) -> bool {
    matches!(&e.kind, LinkErrorKind::PeerFailed(r) if r.contains("Hello") && r.contains("trailing"))
}

async fn next_chunk(tail: &mut Option<TailHandle>) -> Result<Option<TailChunk>, String> {
    match tail {
        Some(t) => t.next_chunk().await.map_err(|e| e.to_string()),
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Writes the latest acknowledged position durably, off the link's path, at most once per
/// [`CHECKPOINT_EVERY`] (Acks that arrive meanwhile are folded into the next write); when
/// the shipper drops its sender, the latest position is written at once and the task ends.
pub(crate) async fn checkpoint_task(
    mut cp: CheckpointStore,
    mut rx: watch::Receiver<Option<(StreamPos, Option<CommitMark>)>>,
) {
    let mut last_write: Option<tokio::time::Instant> = None;
    loop {
        let mut closed = rx.changed().await.is_err();
        if let Some(t) = last_write {
            let until = t + CHECKPOINT_EVERY;
            while !closed {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    r = rx.changed() => closed = r.is_err(),
                }
            }
        }
        let v = *rx.borrow_and_update();
        if let Some((pos, last)) = v {
            last_write = Some(tokio::time::Instant::now());
            let r = tokio::task::spawn_blocking(move || {
                let r = cp.advance(pos, last);
                (cp, r)
            })
            .await;
            match r {
                Ok((back, Ok(_))) => cp = back,
                Ok((back, Err(e))) => {
                    error!(error = %e, "checkpoint not written");
                    cp = back;
                }
                Err(e) => {
                    error!(error = %e, "checkpoint task failed");
                    return;
                }
            }
        }
        if closed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::{LogSeq, ThreadId};

    fn stream() -> StreamId {
        StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(8),
            thread: ThreadId(1),
        }
    }

    fn pos(offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(3),
            offset,
        }
    }

    fn on_disk(dir: &std::path::Path) -> Option<StreamPos> {
        crate::checkpoint::list(dir)
            .ok()
            .and_then(|v| v.first().map(|c| c.pos))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoint_writes_are_spaced_and_the_latest_is_written_at_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let cp = CheckpointStore::open(&dir, stream()).unwrap();
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(checkpoint_task(cp, rx));

        // The first acknowledgement is written at once.
        let first_sent = Instant::now();
        tx.send_replace(Some((pos(4096), None)));
        let deadline = Instant::now() + Duration::from_secs(20);
        while on_disk(&dir) != Some(pos(4096)) {
            assert!(
                Instant::now() < deadline,
                "the first checkpoint was never written"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The next ones wait for the interval since that write (which came after
        // `first_sent`): the file cannot show them earlier, whatever the machine's load.
        tx.send_replace(Some((pos(8192), None)));
        tx.send_replace(Some((pos(12288), None)));
        let seen = loop {
            let now = Instant::now();
            match on_disk(&dir) {
                Some(p) if p == pos(12288) => break now,
                Some(p) => assert!(
                    p == pos(4096),
                    "only the latest position is written, got {p}"
                ),
                None => panic!("the checkpoint file went missing"),
            }
            assert!(now < deadline, "the second checkpoint was never written");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        assert!(
            seen - first_sent >= CHECKPOINT_EVERY,
            "second write after {:?}, before the {CHECKPOINT_EVERY:?} interval",
            seen - first_sent
        );

        // On close, the latest position is written without waiting out the interval.
        tx.send_replace(Some((pos(16384), None)));
        drop(tx);
        task.await.unwrap();
        assert_eq!(on_disk(&dir), Some(pos(16384)));
    }
}
