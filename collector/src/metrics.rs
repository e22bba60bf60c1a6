//! The collector's Prometheus metrics (`redovault_collector_*`), per stream where it matters.
//!
//! Per stream (label `stream`, e.g. `db1497016494-rl1215475200-t1`):
//! - `redovault_collector_durable_scn`, `redovault_collector_durable_commit_time_seconds`:
//!   the last durable commit (the recovery point) and its commit time (Unix seconds);
//! - `redovault_collector_durable_sequence`, `redovault_collector_durable_offset_bytes`: the
//!   durable end of the stream;
//! - `redovault_collector_lag_bytes`, `redovault_collector_lag_milliseconds`: redo received
//!   from the extractor and not yet durable, and the age of the oldest such byte (0 when
//!   everything received is durable). The extractor's own lag metrics measure from the
//!   source; these measure the collector's part (network receive to fsync);
//! - `redovault_collector_ack_latency_seconds`: histogram, Data received to its Ack sent;
//! - `redovault_collector_received_bytes_total`, `redovault_collector_stored_bytes_total`,
//!   `redovault_collector_duplicate_bytes_total` (resent after a reconnect, not stored twice),
//!   `redovault_collector_commits_total`;
//! - `redovault_collector_sessions_total`, `redovault_collector_reconnects_total` (sessions
//!   after the first since start), `redovault_collector_session_active` (0 or 1);
//! - `redovault_collector_extractor_ahead_total`: sessions whose extractor checkpoint was
//!   ahead of the durable end (acknowledged redo missing here: an alarm).
//! - `redovault_collector_divergent_redo_total`: Data refused because its bytes (or its log
//!   end) differ from redo this collector acknowledged (an alarm: nothing stored changed).
//!
//! - `redovault_collector_stream_live`: 1 for the newest incarnation of a (database, thread)
//!   the collector holds, 0 for an older one (after `OPEN RESETLOGS`): an old incarnation's
//!   series stay (its extractor is gone, `session_active` stays 0) and the alert rules join
//!   on this gauge to ignore them.
//!
//! WORM (with `[worm]`), per stream: `redovault_collector_worm_sequence`,
//! `redovault_collector_worm_offset_bytes` (where the copy in WORM ends),
//! `redovault_collector_worm_scn`, `redovault_collector_worm_commit_time_seconds` (the last
//! commit in WORM), `redovault_collector_worm_lag_seconds` (age of the oldest durable byte
//! not in WORM), `redovault_collector_worm_pieces_total`, `redovault_collector_worm_bytes_total`,
//! `redovault_collector_worm_put_errors_total`, `redovault_collector_worm_conflicts_total`,
//! `redovault_collector_worm_manifest_seals_total`; collector-wide the histograms
//! `redovault_collector_worm_latency_seconds` (durable here → in WORM) and
//! `redovault_collector_worm_put_seconds`, and `redovault_collector_worm_seal_interval_seconds`.
//!
//! Collector-wide: `redovault_collector_auth_failures_total{reason}`,
//! `redovault_collector_refused_total{reason}` (every refused connection or session),
//! `redovault_collector_connections_active`, `redovault_collector_connections_total`,
//! `redovault_collector_store_failed` (1 once a write or fsync failed: nothing is acknowledged
//! until a restart), `redovault_collector_disk_full` (1 while a write or fsync meets
//! `ENOSPC`/`EDQUOT`: nothing is acknowledged until space frees),
//! `redovault_collector_disk_full_total` (batches refused for it),
//! `redovault_collector_retention_*` (see `retention_task.rs`),
//! `redovault_collector_store_fsyncs_total`,
//! `redovault_collector_store_fsync_seconds_total`, `redovault_collector_store_queue_depth`,
//! `redovault_collector_wal_bytes_total` (bytes of multi-stream group commits written to the
//! store's write-ahead file), `redovault_collector_wal_checkpoints_total` (checkpoints: every
//! segment fdatasynced and the write-ahead file removed),
//! `redovault_collector_link_cert_expiry_timestamp_seconds{cert="server"|"ca"}` (not-after
//! time of the link's server certificate and of the CA it trusts for extractors; TLS mode).

use std::sync::Arc;
use std::sync::Mutex;

use redovault::crypto::tls::TlsFailure;
use redovault::telemetry::{Counter, CounterVec, Family, Gauge, Histogram, Registry};
use redovault::wire::StreamId;
use redovault::wire::transport::{LinkError, LinkErrorKind};

use crate::status::StatusBoard;
use crate::store::Durable;
use crate::writer::{WriterHandle, WriterStats};

/// Bounds of the ack latency histogram, in seconds: fsync-scale (sub-millisecond) to
/// seconds.
pub const ACK_BUCKETS: [f64; 16] = [
    0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0,
];

/// Bounds of the WORM histograms, in seconds.
pub const WORM_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 60.0,
];

/// Every collector metric (see the module docs).
#[derive(Debug)]
pub struct CollectorMetrics {
    /// The registry the endpoint renders.
    pub registry: Arc<Registry>,
    /// Last durable commit SCN.
    pub durable_scn: Arc<Family<Gauge>>,
    /// Last durable commit time.
    pub durable_commit_time: Arc<Family<Gauge>>,
    /// Durable end: sequence.
    pub durable_sequence: Arc<Family<Gauge>>,
    /// Durable end: offset.
    pub durable_offset: Arc<Family<Gauge>>,
    /// Received, not yet durable: bytes.
    pub lag_bytes: Arc<Family<Gauge>>,
    /// Received, not yet durable: age of the oldest byte.
    pub lag_ms: Arc<Family<Gauge>>,
    /// Data received → Ack sent.
    pub ack_latency: Arc<Family<Histogram>>,
    pub received_bytes: Arc<Family<Counter>>,
    pub stored_bytes: Arc<Family<Counter>>,
    /// Redo bytes resent and already held.
    pub duplicate_bytes: Arc<Family<Counter>>,
    /// Commits made durable.
    pub commits: Arc<Family<Counter>>,
    /// Sessions started.
    pub sessions: Arc<Family<Counter>>,
    /// Sessions after the first.
    pub reconnects: Arc<Family<Counter>>,
    /// A session is live.
    pub session_active: Arc<Family<Gauge>>,
    /// Hellos whose checkpoint was ahead of the durable end (acknowledged redo missing).
    pub extractor_ahead: Arc<Family<Counter>>,
    /// Data refused for different bytes at an acknowledged position.
    pub divergent: Arc<Family<Counter>>,
    /// Authentication failures by reason.
    pub auth_failures: Arc<CounterVec>,
    /// Refused connections and sessions by reason.
    pub refused: Arc<CounterVec>,
    /// Connections being served.
    pub connections_active: Arc<Gauge>,
    /// Connections accepted.
    pub connections_total: Arc<Counter>,
    /// 1 once the store failed.
    pub store_failed: Arc<Gauge>,
    /// 1 while the disk is full.
    pub disk_full: Arc<Gauge>,
    /// Batches refused for a full disk.
    pub disk_full_total: Arc<Counter>,
    /// Segments removed by retention.
    pub retention_removed_segments: Arc<Counter>,
    /// Bytes removed by retention.
    pub retention_removed_bytes: Arc<Counter>,
    /// Bytes of segments held on disk.
    pub retention_held_bytes: Arc<Gauge>,
    /// Segments held on disk.
    pub retention_held_segments: Arc<Gauge>,
    /// Held sequences eligible for removal (their segments go at the next pass that can
    /// cut at a log boundary).
    pub retention_eligible_sequences: Arc<Gauge>,
    /// Age (seconds) of the oldest held sequence's archived log, or 0.
    pub retention_oldest_held_seconds: Arc<Gauge>,
    /// Retention passes that failed (manifest unreadable, chain broken, removal error).
    pub retention_errors: Arc<Counter>,
    /// fsyncs (group commits).
    pub store_fsyncs: Arc<Counter>,
    /// Seconds spent in fsync.
    pub store_fsync_seconds: Arc<Gauge>,
    /// Appends waiting for the writer.
    pub store_queue_depth: Arc<Gauge>,
    /// Bytes written to the write-ahead file.
    pub wal_bytes: Arc<Counter>,
    /// Write-ahead checkpoints.
    pub wal_checkpoints: Arc<Counter>,
    /// WORM end of the stream: sequence.
    pub worm_sequence: Arc<Family<Gauge>>,
    /// WORM end of the stream: offset.
    pub worm_offset: Arc<Family<Gauge>>,
    /// Last commit in WORM: SCN.
    pub worm_scn: Arc<Family<Gauge>>,
    /// Last commit in WORM: commit time.
    pub worm_commit_time: Arc<Family<Gauge>>,
    /// Age of the oldest durable byte not yet in WORM.
    pub worm_lag: Arc<Family<Gauge>>,
    /// Pieces confirmed in WORM.
    pub worm_pieces: Arc<Family<Counter>>,
    /// Piece bytes confirmed in WORM.
    pub worm_bytes: Arc<Family<Counter>>,
    /// Failed piece uploads (retried).
    pub worm_put_errors: Arc<Family<Counter>>,
    /// Objects at a stream's next position that do not continue its chain, or other bytes
    /// under a piece's key.
    pub worm_conflicts: Arc<Family<Counter>>,
    /// Chain segments sealed into WORM.
    pub worm_manifest_seals: Arc<Family<Counter>>,
    /// First byte durable here to its piece confirmed in WORM.
    pub worm_latency: Arc<Histogram>,
    /// One piece's put (with its HEAD).
    pub worm_put_seconds: Arc<Histogram>,
    /// The configured seal interval (the alert rule compares the lag with it).
    pub worm_seal_interval: Arc<Gauge>,
    /// 1 for the newest incarnation of a (database, thread), 0 for an older one.
    pub stream_live: Arc<Family<Gauge>>,
    /// Not-after time of the link's certificates, by `cert` (`server`, `ca`).
    pub link_cert_expiry: Arc<Family<Gauge>>,
    /// The read-only status page (`GET /status`), fed with the same events.
    pub status: Arc<StatusBoard>,
    last_stats: Mutex<WriterStats>,
}

impl CollectorMetrics {
    /// Registers every metric in a new registry.
    pub fn new() -> CollectorMetrics {
        let r = Arc::new(Registry::new());
        let s = "stream";
        CollectorMetrics {
            durable_scn: r.gauge_family(
                "redovault_collector_durable_scn",
                "SCN of the last durable commit of the stream (the recovery point).",
                s,
            ),
            durable_commit_time: r.gauge_family(
                "redovault_collector_durable_commit_time_seconds",
                "Commit time (Unix seconds) of the last durable commit of the stream.",
                s,
            ),
            durable_sequence: r.gauge_family(
                "redovault_collector_durable_sequence",
                "Log sequence of the durable end of the stream.",
                s,
            ),
            durable_offset: r.gauge_family(
                "redovault_collector_durable_offset_bytes",
                "Byte offset of the durable end of the stream in its log.",
                s,
            ),
            lag_bytes: r.gauge_family(
                "redovault_collector_lag_bytes",
                "Redo bytes received from the extractor and not yet durable.",
                s,
            ),
            lag_ms: r.gauge_family(
                "redovault_collector_lag_milliseconds",
                "Age of the oldest redo byte received and not yet durable (0: none).",
                s,
            ),
            ack_latency: r.histogram_family(
                "redovault_collector_ack_latency_seconds",
                "Time from receiving a Data frame to sending its Ack (after fsync).",
                s,
                &ACK_BUCKETS,
            ),
            received_bytes: r.counter_family(
                "redovault_collector_received_bytes_total",
                "Redo bytes received.",
                s,
            ),
            stored_bytes: r.counter_family(
                "redovault_collector_stored_bytes_total",
                "Redo bytes stored (encrypted, durable).",
                s,
            ),
            duplicate_bytes: r.counter_family(
                "redovault_collector_duplicate_bytes_total",
                "Redo bytes resent after a reconnect and already held (not stored twice).",
                s,
            ),
            commits: r.counter_family(
                "redovault_collector_commits_total",
                "Commits made durable.",
                s,
            ),
            sessions: r.counter_family(
                "redovault_collector_sessions_total",
                "Extractor sessions started.",
                s,
            ),
            reconnects: r.counter_family(
                "redovault_collector_reconnects_total",
                "Extractor sessions started after the first one since the collector started.",
                s,
            ),
            session_active: r.gauge_family(
                "redovault_collector_session_active",
                "1 while an extractor session of the stream is live.",
                s,
            ),
            extractor_ahead: r.counter_family(
                "redovault_collector_extractor_ahead_total",
                "Sessions whose extractor checkpoint was ahead of the durable end: \
                 acknowledged redo missing here (alarm), resent from the durable end.",
                s,
            ),
            divergent: r.counter_family(
                "redovault_collector_divergent_redo_total",
                "Data refused because it differs from redo this collector acknowledged \
                 (different bytes, or another end of the log): alarm, nothing stored changed.",
                s,
            ),
            auth_failures: r.counter_vec(
                "redovault_collector_auth_failures_total",
                "Connections refused because the peer failed to authenticate.",
                "reason",
            ),
            refused: r.counter_vec(
                "redovault_collector_refused_total",
                "Connections or sessions refused or ended by a protocol violation.",
                "reason",
            ),
            connections_active: r.gauge(
                "redovault_collector_connections_active",
                "Connections being served.",
            ),
            connections_total: r.counter(
                "redovault_collector_connections_total",
                "Connections accepted.",
            ),
            store_failed: r.gauge(
                "redovault_collector_store_failed",
                "1 once a write or fsync failed: nothing is acknowledged until a restart.",
            ),
            disk_full: r.gauge(
                "redovault_collector_disk_full",
                "1 while the store's disk is full (ENOSPC/EDQUOT): nothing is acknowledged until space frees.",
            ),
            disk_full_total: r.counter(
                "redovault_collector_disk_full_total",
                "Write batches refused because the disk was full.",
            ),
            retention_removed_segments: r.counter(
                "redovault_collector_retention_removed_segments_total",
                "Segments removed by retention (their sequences archived and verified in WORM).",
            ),
            retention_removed_bytes: r.counter(
                "redovault_collector_retention_removed_bytes_total",
                "Bytes of segments removed by retention.",
            ),
            retention_held_bytes: r.gauge(
                "redovault_collector_retention_held_bytes",
                "Bytes of segments held on the collector's disk, every stream.",
            ),
            retention_held_segments: r.gauge(
                "redovault_collector_retention_held_segments",
                "Segments held on the collector's disk, every stream.",
            ),
            retention_eligible_sequences: r.gauge(
                "redovault_collector_retention_eligible_sequences",
                "Held sequences whose every retention condition holds.",
            ),
            retention_oldest_held_seconds: r.gauge(
                "redovault_collector_retention_oldest_held_seconds",
                "Seconds since the oldest held segment was created (0: none held).",
            ),
            retention_errors: r.counter(
                "redovault_collector_retention_errors_total",
                "Retention passes that failed (manifest unreadable or broken, removal error).",
            ),
            store_fsyncs: r.counter(
                "redovault_collector_store_fsyncs_total",
                "Group commits (one fdatasync each: of the write-ahead file, or of the one segment written).",
            ),
            store_fsync_seconds: r.gauge(
                "redovault_collector_store_fsync_seconds_total",
                "Seconds spent in group-commit fsyncs.",
            ),
            store_queue_depth: r.gauge(
                "redovault_collector_store_queue_depth",
                "Appends waiting for the group-commit writer.",
            ),
            wal_bytes: r.counter(
                "redovault_collector_wal_bytes_total",
                "Bytes written to the store's write-ahead file (group commits over two or more streams).",
            ),
            wal_checkpoints: r.counter(
                "redovault_collector_wal_checkpoints_total",
                "Write-ahead checkpoints (every segment fdatasynced, the write-ahead file removed).",
            ),
            worm_sequence: r.gauge_family(
                "redovault_collector_worm_sequence",
                "Log sequence where the stream's copy in WORM ends (the next piece starts).",
                s,
            ),
            worm_offset: r.gauge_family(
                "redovault_collector_worm_offset_bytes",
                "Byte offset where the stream's copy in WORM ends.",
                s,
            ),
            worm_scn: r.gauge_family(
                "redovault_collector_worm_scn",
                "SCN of the last commit in WORM (the recovery point without this host).",
                s,
            ),
            worm_commit_time: r.gauge_family(
                "redovault_collector_worm_commit_time_seconds",
                "Commit time (Unix seconds) of the last commit in WORM.",
                s,
            ),
            worm_lag: r.gauge_family(
                "redovault_collector_worm_lag_seconds",
                "Age of the oldest redo byte durable here and not yet in WORM (0: none).",
                s,
            ),
            worm_pieces: r.counter_family(
                "redovault_collector_worm_pieces_total",
                "Pieces confirmed in WORM.",
                s,
            ),
            worm_bytes: r.counter_family(
                "redovault_collector_worm_bytes_total",
                "Bytes of pieces confirmed in WORM.",
                s,
            ),
            worm_put_errors: r.counter_family(
                "redovault_collector_worm_put_errors_total",
                "Failed piece uploads (retried with backoff; acknowledgements go on).",
                s,
            ),
            worm_conflicts: r.counter_family(
                "redovault_collector_worm_conflicts_total",
                "Objects in WORM that do not continue the stream's chain (alarm).",
                s,
            ),
            worm_manifest_seals: r.counter_family(
                "redovault_collector_worm_manifest_seals_total",
                "Chain segments sealed into WORM.",
                s,
            ),
            worm_latency: r.histogram(
                "redovault_collector_worm_latency_seconds",
                "From a piece's first byte durable here to the piece confirmed in WORM.",
                Histogram::new(&WORM_BUCKETS),
            ),
            worm_put_seconds: r.histogram(
                "redovault_collector_worm_put_seconds",
                "One piece's upload, HEAD included.",
                Histogram::new(&WORM_BUCKETS),
            ),
            worm_seal_interval: r.gauge(
                "redovault_collector_worm_seal_interval_seconds",
                "The configured worm.seal_interval.",
            ),
            stream_live: r.gauge_family(
                "redovault_collector_stream_live",
                "1 for the newest incarnation of its database and thread held here, 0 for an older one.",
                s,
            ),
            link_cert_expiry: r.gauge_family(
                "redovault_collector_link_cert_expiry_timestamp_seconds",
                "Not-after time (Unix seconds) of the link's server certificate and of the CA it trusts.",
                "cert",
            ),
            registry: r,
            status: Arc::new(StatusBoard::new()),
            last_stats: Mutex::new(WriterStats::default()),
        }
    }

    /// Records a stream's durable state.
    pub fn set_durable(&self, stream: &str, d: &Durable) {
        self.status.set_durable(stream, d);
        let pos = d.resume_pos();
        self.durable_sequence.with(stream).set(f64::from(pos.seq.0));
        self.durable_offset.with(stream).set(pos.offset as f64);
        if let Some(c) = d.last_commit {
            self.durable_scn.with(stream).set(c.scn.0 as f64);
            if let Some(t) = c.time {
                self.durable_commit_time.with(stream).set(t as f64);
            }
        }
    }

    /// Records a session of `stream` going up (`reconnect`: not its first since start) or
    /// down: `session_active`, `reconnects` and the status page.
    pub fn set_session(&self, stream: &str, up: bool, reconnect: bool) {
        if up && reconnect {
            self.reconnects.with(stream).inc();
        }
        self.session_active
            .with(stream)
            .set(if up { 1.0 } else { 0.0 });
        self.status.set_session(stream, up, reconnect);
    }

    /// Sets `stream_live` of every stream the collector holds ([`live_streams`]).
    pub fn set_live(&self, streams: &[StreamId]) {
        for (s, live) in live_streams(streams) {
            self.stream_live
                .with(&s.to_string())
                .set(if live { 1.0 } else { 0.0 });
        }
    }

    /// Copies the writer's counters (called periodically).
    pub fn refresh_writer(&self, w: &WriterHandle) {
        let now = w.stats();
        let mut last = self.last_stats.lock().unwrap_or_else(|p| p.into_inner());
        self.store_failed.set(if now.failed { 1.0 } else { 0.0 });
        self.disk_full.set(if now.disk_full { 1.0 } else { 0.0 });
        self.disk_full_total
            .add(now.disk_full_batches.saturating_sub(last.disk_full_batches));
        self.store_fsyncs
            .add(now.fsync.count.saturating_sub(last.fsync.count));
        self.store_fsync_seconds
            .set(now.fsync.sum_micros as f64 / 1e6);
        self.store_queue_depth.set(w.queue_depth() as f64);
        self.wal_bytes
            .add(now.wal_bytes.saturating_sub(last.wal_bytes));
        self.wal_checkpoints
            .add(now.wal_checkpoints.saturating_sub(last.wal_checkpoints));
        *last = now;
    }

    /// Counts a refused connection or session (and an authentication failure when it is
    /// one).
    pub fn refused_link(&self, e: &LinkError) {
        let reason = link_reason(e);
        self.refused.inc(reason);
        if e.is_authentication() {
            self.auth_failures.inc(reason);
        }
    }
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        CollectorMetrics::new()
    }
}

/// Each stream with whether it is live: no stream of the same database and thread has a
/// higher resetlogs id (the newest incarnation, the rule the extractor also uses to pick the
/// CURRENT log).
pub fn live_streams(streams: &[StreamId]) -> Vec<(StreamId, bool)> {
    streams
        .iter()
        .map(|s| {
            let superseded = streams.iter().any(|o| {
                o.db_id == s.db_id && o.thread == s.thread && o.resetlogs_id > s.resetlogs_id
            });
            (*s, !superseded)
        })
        .collect()
}

/// A short, fixed label for a link failure.
pub fn link_reason(e: &LinkError) -> &'static str {
    match &e.kind {
        LinkErrorKind::Tls(t) => match t.failure {
            TlsFailure::NoCertificate => "tls_no_certificate",
            TlsFailure::UntrustedCertificate => "tls_untrusted_certificate",
            TlsFailure::InvalidCertificate => "tls_invalid_certificate",
            TlsFailure::RefusedByPeer => "tls_refused_by_peer",
            TlsFailure::NotTls => "not_tls",
            TlsFailure::Incompatible => "tls_incompatible",
            TlsFailure::Closed => "closed",
            TlsFailure::Other => "tls_other",
        },
        LinkErrorKind::Legacy(_) if e.is_authentication() => "legacy_bad_psk",
        LinkErrorKind::Legacy(_) => "legacy_bad_frame",
        LinkErrorKind::HandshakeTimeout(_) => "handshake_timeout",
        LinkErrorKind::Frame(_) => "bad_frame",
        LinkErrorKind::Message(_) => "bad_message",
        LinkErrorKind::Protocol(_) => "protocol",
        LinkErrorKind::PeerFailed(_) => "peer_error",
        LinkErrorKind::Closed | LinkErrorKind::Truncated { .. } => "closed",
        LinkErrorKind::Silent(_) => "silent",
        LinkErrorKind::Io(_) => "io",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::ThreadId;
    use redovault_redo::position::{DbId, ResetlogsId};

    fn id(db: u32, rl: u32, t: u16) -> StreamId {
        StreamId {
            db_id: DbId(db),
            resetlogs_id: ResetlogsId(rl),
            thread: ThreadId(t),
        }
    }

    #[test]
    fn only_the_newest_incarnation_of_each_database_and_thread_is_live() {
        let streams = [
            id(7, 100, 1),
            id(7, 100, 2),
            id(7, 200, 1), // OPEN RESETLOGS: thread 1 restarted, thread 2 not yet seen
            id(8, 50, 1),  // another database with an older resetlogs id
        ];
        let live = live_streams(&streams);
        assert_eq!(
            live,
            vec![
                (streams[0], false),
                (streams[1], true),
                (streams[2], true),
                (streams[3], true),
            ]
        );
        let m = CollectorMetrics::new();
        m.set_live(&streams);
        let text = m.registry.render();
        assert!(text.contains("redovault_collector_stream_live{stream=\"db7-rl100-t1\"} 0"));
        assert!(text.contains("redovault_collector_stream_live{stream=\"db7-rl200-t1\"} 1"));
        assert!(text.contains("redovault_collector_stream_live{stream=\"db7-rl100-t2\"} 1"));
    }
}
