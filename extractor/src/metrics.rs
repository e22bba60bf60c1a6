//! The extractor's Prometheus metrics (`redovault_extractor_*`), per stream (label `stream`).
//!
//! - `redovault_extractor_lag_bytes`: redo read from the online (or archived) log and not
//!   yet acknowledged by the collector; `redovault_extractor_lag_milliseconds`: the age of
//!   the oldest such byte (0 when everything read is acknowledged). This is the part of the
//!   database's redo that a wipe of the host would lose now.
//! - `redovault_extractor_acked_sequence`, `redovault_extractor_acked_offset_bytes`: the
//!   acknowledged (checkpointed) position; `redovault_extractor_acked_scn`,
//!   `redovault_extractor_acked_commit_time_seconds`: the last acknowledged commit (the
//!   recovery point at the collector).
//! - `redovault_extractor_read_sequence`, `redovault_extractor_read_offset_bytes`: where
//!   the tailer has read to.
//! - `redovault_extractor_connected` (0/1), `redovault_extractor_reconnects_total` (sessions
//!   after the first), `redovault_extractor_sent_bytes_total`,
//!   `redovault_extractor_resent_bytes_total` (sent again after a reconnect),
//!   `redovault_extractor_window_bytes` (unacknowledged bytes in flight),
//!   `redovault_extractor_collector_behind_total` (alarm: the collector did not hold redo it
//!   had acknowledged), `redovault_extractor_tail_errors_total`.
//! - Seen from the online logs themselves by the source probe ([`crate::source`]), not by the
//!   tailer, so that a tailer or shipper that is stuck while the session stays up is seen:
//!   `redovault_extractor_source_sequence`, `redovault_extractor_source_offset_bytes` (where
//!   Oracle has written the thread's newest online log to), `redovault_extractor_unread_bytes`
//!   (written and not yet read by the tailer, at least), `redovault_extractor_unread_age_seconds`
//!   (how long the oldest such redo has waited, at the probe's resolution; 0: caught up),
//!   `redovault_extractor_stream_live` (1 while the online logs hold this incarnation; 0 once
//!   `OPEN RESETLOGS` started a newer one: the alert rules ignore such streams).
//! - `redovault_extractor_link_compression_level`: the zstd level Data travels at on the
//!   link now (0: raw; `[link] compress` off, or the collector declined).
//! - Replicated collectors ([`crate::fanout`]): with several `[[collector]]`, the series above
//!   that describe one link (lag, acked, read, connected, window, sent, reconnects, tail
//!   counters...) carry a second label `collector`, and the stream's own series (no
//!   `collector` label) describe what the ack policy protects: `acked_*` is the protected
//!   position, `lag_*` the redo read and not yet protected, `connected` 1 while enough
//!   sessions are up. With one collector, every series is as before (label `stream` only).
//!   For every stream: `redovault_extractor_protected_sequence`,
//!   `..._protected_offset_bytes`, `..._protected_scn`, `..._protected_commit_time_seconds`
//!   (what the policy covers: the checkpoint), `redovault_extractor_collectors_up`,
//!   `redovault_extractor_collectors_required`, `redovault_extractor_protection_below_policy`
//!   (1 while fewer sessions are up than the policy needs) and
//!   `redovault_extractor_protection_below_policy_total` (times it fell below).
//! - `redovault_extractor_link_cert_expiry_timestamp_seconds{cert="client"|"ca"}`: not-after
//!   time of the link's client certificate and of the CA it trusts (TLS mode only).
//! - The tailer's counters (see [`crate::tail::TailStats`]): `redovault_extractor_chunks_total`,
//!   `..._shipped_bytes_total` (read and handed on), `..._commits_total`,
//!   `..._torn_rereads_total`, `..._member_fallbacks_total`, `..._archive_reads_total`,
//!   `..._logs_completed_total`, `..._decode_errors_total`; they add up across tailer
//!   restarts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redovault::telemetry::{Counter, Family, Gauge, Registry};
use redovault::wire::{CommitMark, StreamId, StreamPos};

use crate::tail::TailStats;

/// Every extractor metric family.
#[derive(Debug)]
pub struct ExtractorMetrics {
    /// The registry the endpoint renders.
    pub registry: Arc<Registry>,
    /// Not-after time of the link's certificates, by `cert` (`client`, `ca`).
    pub link_cert_expiry: Arc<Family<Gauge>>,
    gauges: Vec<Arc<Family<Gauge>>>,
    counters: Vec<Arc<Family<Counter>>>,
    protection_gauges: Vec<Arc<Family<Gauge>>>,
    below_policy_total: Arc<Family<Counter>>,
}

const PROTECTION_GAUGES: [(&str, &str); 7] = [
    (
        "redovault_extractor_protected_sequence",
        "Log sequence of the position the ack policy protects (the checkpoint).",
    ),
    (
        "redovault_extractor_protected_offset_bytes",
        "Byte offset of the protected position in its log.",
    ),
    (
        "redovault_extractor_protected_scn",
        "SCN of the last commit the ack policy protects.",
    ),
    (
        "redovault_extractor_protected_commit_time_seconds",
        "Commit time (Unix seconds) of the last protected commit.",
    ),
    (
        "redovault_extractor_collectors_up",
        "Collectors with an established session for this stream.",
    ),
    (
        "redovault_extractor_collectors_required",
        "Collectors the ack policy needs for this stream.",
    ),
    (
        "redovault_extractor_protection_below_policy",
        "1 while fewer collectors are up than the ack policy needs (the checkpoint stops).",
    ),
];

const GAUGES: [(&str, &str); 17] = [
    (
        "redovault_extractor_lag_bytes",
        "Redo read from the source and not yet acknowledged by the collector.",
    ),
    (
        "redovault_extractor_lag_milliseconds",
        "Age of the oldest redo byte read and not yet acknowledged (0: none).",
    ),
    (
        "redovault_extractor_acked_sequence",
        "Log sequence of the acknowledged (checkpointed) position.",
    ),
    (
        "redovault_extractor_acked_offset_bytes",
        "Byte offset of the acknowledged position in its log.",
    ),
    (
        "redovault_extractor_acked_scn",
        "SCN of the last commit acknowledged by the collector.",
    ),
    (
        "redovault_extractor_acked_commit_time_seconds",
        "Commit time (Unix seconds) of the last acknowledged commit.",
    ),
    (
        "redovault_extractor_read_sequence",
        "Log sequence the tailer has read to.",
    ),
    (
        "redovault_extractor_read_offset_bytes",
        "Byte offset the tailer has read to.",
    ),
    (
        "redovault_extractor_connected",
        "1 while a session with the collector is established.",
    ),
    (
        "redovault_extractor_window_bytes",
        "Unacknowledged Data bytes in flight.",
    ),
    (
        "redovault_extractor_last_ack_latency_seconds",
        "Time from sending the last acknowledged Data to its Ack.",
    ),
    (
        "redovault_extractor_source_sequence",
        "Sequence of the thread's newest online log, as the source probe reads it.",
    ),
    (
        "redovault_extractor_source_offset_bytes",
        "How far Oracle has written that log (bytes, found from its blocks).",
    ),
    (
        "redovault_extractor_unread_bytes",
        "Redo Oracle has written that the tailer has not read yet (at least; 0: caught up).",
    ),
    (
        "redovault_extractor_unread_age_seconds",
        "How long the oldest unread redo has waited (probe resolution; 0: caught up).",
    ),
    (
        "redovault_extractor_stream_live",
        "1 while the online logs hold this incarnation; 0 once a newer one took over.",
    ),
    (
        "redovault_extractor_link_compression_level",
        "zstd level of the Data sent on the link now; 0: uncompressed.",
    ),
];

const COUNTERS: [(&str, &str); 14] = [
    (
        "redovault_extractor_reconnects_total",
        "Sessions with the collector after the first one.",
    ),
    (
        "redovault_extractor_sent_bytes_total",
        "Redo bytes sent to the collector.",
    ),
    (
        "redovault_extractor_resent_bytes_total",
        "Redo bytes sent again after a reconnect.",
    ),
    (
        "redovault_extractor_collector_behind_total",
        "Sessions where the collector did not hold redo it had acknowledged (alarm).",
    ),
    (
        "redovault_extractor_tail_errors_total",
        "Tailer failures (damaged block in every copy, log lost): retried.",
    ),
    (
        "redovault_extractor_chunks_total",
        "Chunks read and validated.",
    ),
    (
        "redovault_extractor_shipped_bytes_total",
        "Redo bytes read, validated and handed on.",
    ),
    ("redovault_extractor_commits_total", "Commits found."),
    (
        "redovault_extractor_torn_rereads_total",
        "Re-reads of a block whose checksum failed (torn write in progress).",
    ),
    (
        "redovault_extractor_member_fallbacks_total",
        "Blocks taken from another member or copy than the preferred one.",
    ),
    (
        "redovault_extractor_archive_reads_total",
        "Logs (or rests of logs) read from an archived copy.",
    ),
    (
        "redovault_extractor_logs_completed_total",
        "Logs shipped to their end.",
    ),
    (
        "redovault_extractor_decode_errors_total",
        "Record-level decode problems.",
    ),
    (
        "redovault_extractor_acks_total",
        "Acknowledgements received.",
    ),
];

impl ExtractorMetrics {
    /// Registers every family in a new registry.
    pub fn new() -> ExtractorMetrics {
        let registry = Arc::new(Registry::new());
        let gauges = GAUGES
            .iter()
            .map(|(n, h)| registry.gauge_family(n, h, "stream"))
            .collect();
        let counters = COUNTERS
            .iter()
            .map(|(n, h)| registry.counter_family(n, h, "stream"))
            .collect();
        let link_cert_expiry = registry.gauge_family(
            "redovault_extractor_link_cert_expiry_timestamp_seconds",
            "Not-after time (Unix seconds) of the link's client certificate and of the CA it trusts.",
            "cert",
        );
        let protection_gauges = PROTECTION_GAUGES
            .iter()
            .map(|(n, h)| registry.gauge_family(n, h, "stream"))
            .collect();
        let below_policy_total = registry.counter_family(
            "redovault_extractor_protection_below_policy_total",
            "Times the stream's protection fell below the ack policy.",
            "stream",
        );
        ExtractorMetrics {
            registry,
            link_cert_expiry,
            gauges,
            counters,
            protection_gauges,
            below_policy_total,
        }
    }

    /// The series the source probe of one stream reads and sets.
    pub fn probe(&self, s: StreamId) -> ProbeMetrics {
        let name = s.to_string();
        let g = |i: usize| self.gauges[i].with(&name);
        ProbeMetrics {
            read_sequence: g(6),
            read_offset: g(7),
            source_sequence: g(11),
            source_offset: g(12),
            unread_bytes: g(13),
            unread_age: g(14),
            live: g(15),
        }
    }

    /// The series of one stream.
    pub fn stream(&self, s: StreamId) -> StreamMetrics {
        self.stream_copy(s, None)
    }

    /// The series of one stream's link to one collector: labelled `collector` too when
    /// the stream goes to several (see the module docs).
    pub fn stream_copy(&self, s: StreamId, collector: Option<&str>) -> StreamMetrics {
        let name = s.to_string();
        let extra: Vec<(&str, &str)> = collector.map(|c| ("collector", c)).into_iter().collect();
        let g = |i: usize| self.gauges[i].with_extra(&name, &extra);
        let c = |i: usize| self.counters[i].with_extra(&name, &extra);
        StreamMetrics {
            lag_bytes: g(0),
            lag_ms: g(1),
            acked_sequence: g(2),
            acked_offset: g(3),
            acked_scn: g(4),
            acked_commit_time: g(5),
            read_sequence: g(6),
            read_offset: g(7),
            connected: g(8),
            window_bytes: g(9),
            ack_latency_last: g(10),
            compression_level: g(16),
            reconnects: c(0),
            sent_bytes: c(1),
            resent_bytes: c(2),
            collector_behind: c(3),
            tail_errors: c(4),
            tail: [c(5), c(6), c(7), c(8), c(9), c(10), c(11), c(12)],
            acks: c(13),
            tail_seen: [0; 8],
        }
    }
}

impl ExtractorMetrics {
    /// The protection series of one stream.
    pub fn protection(&self, s: StreamId) -> ProtectionMetrics {
        let name = s.to_string();
        let g = |i: usize| self.protection_gauges[i].with(&name);
        ProtectionMetrics {
            sequence: g(0),
            offset: g(1),
            scn: g(2),
            commit_time: g(3),
            up: g(4),
            required: g(5),
            below: g(6),
            below_total: self.below_policy_total.with(&name),
        }
    }
}

/// One stream's protection series (see the module docs).
#[derive(Debug, Clone)]
pub struct ProtectionMetrics {
    /// See the module docs.
    pub sequence: Arc<Gauge>,
    /// See the module docs.
    pub offset: Arc<Gauge>,
    /// See the module docs.
    pub scn: Arc<Gauge>,
    /// See the module docs.
    pub commit_time: Arc<Gauge>,
    /// See the module docs.
    pub up: Arc<Gauge>,
    /// See the module docs.
    pub required: Arc<Gauge>,
    /// See the module docs.
    pub below: Arc<Gauge>,
    /// See the module docs.
    pub below_total: Arc<Counter>,
}

impl ProtectionMetrics {
    /// Records the protected position and commit.
    pub fn protected(&self, pos: StreamPos, last: Option<&CommitMark>) {
        self.sequence.set(f64::from(pos.seq.0));
        self.offset.set(pos.offset as f64);
        if let Some(c) = last {
            self.scn.set(c.scn.0 as f64);
            if let Some(t) = c.time {
                self.commit_time.set(t as f64);
            }
        }
    }
}

impl Default for ExtractorMetrics {
    fn default() -> Self {
        ExtractorMetrics::new()
    }
}

/// The series of one stream that the source probe uses ([`crate::source`]).
#[derive(Debug, Clone)]
pub struct ProbeMetrics {
    /// Where the tailer has read to (set by the shipper): sequence.
    pub read_sequence: Arc<Gauge>,
    /// Where the tailer has read to: offset.
    pub read_offset: Arc<Gauge>,
    /// See the module docs.
    pub source_sequence: Arc<Gauge>,
    /// See the module docs.
    pub source_offset: Arc<Gauge>,
    /// See the module docs.
    pub unread_bytes: Arc<Gauge>,
    /// See the module docs.
    pub unread_age: Arc<Gauge>,
    /// See the module docs.
    pub live: Arc<Gauge>,
}

impl ProbeMetrics {
    /// The read position the shipper last recorded.
    pub fn read_pos(&self) -> StreamPos {
        StreamPos {
            seq: redovault_redo::LogSeq(self.read_sequence.get() as u32),
            offset: self.read_offset.get() as u64,
        }
    }
}

/// One stream's series.
#[derive(Debug)]
pub struct StreamMetrics {
    /// See the module docs.
    pub lag_bytes: Arc<Gauge>,
    /// See the module docs.
    pub lag_ms: Arc<Gauge>,
    /// See the module docs.
    pub acked_sequence: Arc<Gauge>,
    /// See the module docs.
    pub acked_offset: Arc<Gauge>,
    /// See the module docs.
    pub acked_scn: Arc<Gauge>,
    /// See the module docs.
    pub acked_commit_time: Arc<Gauge>,
    /// See the module docs.
    pub read_sequence: Arc<Gauge>,
    /// See the module docs.
    pub read_offset: Arc<Gauge>,
    /// See the module docs.
    pub connected: Arc<Gauge>,
    /// See the module docs.
    pub window_bytes: Arc<Gauge>,
    /// See the module docs.
    pub ack_latency_last: Arc<Gauge>,
    /// See the module docs.
    pub compression_level: Arc<Gauge>,
    /// See the module docs.
    pub reconnects: Arc<Counter>,
    /// See the module docs.
    pub sent_bytes: Arc<Counter>,
    /// See the module docs.
    pub resent_bytes: Arc<Counter>,
    /// See the module docs.
    pub collector_behind: Arc<Counter>,
    /// See the module docs.
    pub tail_errors: Arc<Counter>,
    /// See the module docs.
    pub acks: Arc<Counter>,
    tail: [Arc<Counter>; 8],
    tail_seen: [u64; 8],
}

impl StreamMetrics {
    /// Records the compression the session's link negotiated.
    pub fn link_compressed(&self, level: Option<redovault::compress::Level>) {
        self.compression_level
            .set(f64::from(level.map_or(0, redovault::compress::Level::get)));
    }

    /// Records the acknowledged position and commit.
    pub fn acked(&self, pos: StreamPos, last: Option<&CommitMark>) {
        self.acked_sequence.set(f64::from(pos.seq.0));
        self.acked_offset.set(pos.offset as f64);
        if let Some(c) = last {
            self.acked_scn.set(c.scn.0 as f64);
            if let Some(t) = c.time {
                self.acked_commit_time.set(t as f64);
            }
        }
    }

    /// Records the read position.
    pub fn read(&self, pos: StreamPos) {
        self.read_sequence.set(f64::from(pos.seq.0));
        self.read_offset.set(pos.offset as f64);
    }

    /// A new tailer starts (its counters start at zero).
    pub fn new_tailer(&mut self) {
        self.tail_seen = [0; 8];
    }

    /// Adds what the tailer counted since the last call.
    pub fn tail_stats(&mut self, s: &TailStats) {
        let now = [
            s.chunks.load(Ordering::Relaxed),
            s.bytes.load(Ordering::Relaxed),
            s.commits.load(Ordering::Relaxed),
            s.torn_rereads.load(Ordering::Relaxed),
            s.fallbacks.load(Ordering::Relaxed),
            s.archive_reads.load(Ordering::Relaxed),
            s.logs_completed.load(Ordering::Relaxed),
            s.decode_errors.load(Ordering::Relaxed),
        ];
        for ((counter, seen), now) in self.tail.iter().zip(&mut self.tail_seen).zip(now) {
            counter.add(now.saturating_sub(*seen));
            *seen = (*seen).max(now);
        }
    }
}
