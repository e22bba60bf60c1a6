//! The retention task: gathers the facts, asks [`crate::retention::plan`], applies it.
//!
//! ```text
//! every [retention] interval:
//!   WORM <prefix>/manifest/ (sealed, GET + LIST only) ─► segment SHA-256 = its key? run on
//!     without gap or overlap? verify_segments_of ─► sealed manifest entries
//!   per stream: store view (segments, complete sequences, commit SCN ranges)
//!     + [worm] local piece chain (worm/chain.rs: pieces confirmed in WORM, in order)
//!     ─► stream_facts (pure) ─► StreamFacts ─► plan ─► Store::retire (crash-safe)
//!     ─► writer told space was freed (a full disk is tried again at once)
//!   ─► metrics, <store dir>/retention.json (held, why, eligible; `redovault-collector commits`)
//! ```
//!
//! Invariants:
//! - No key that can read redo in WORM is on the collector host: its credentials may GET and
//!   LIST `<prefix>/manifest/` and nothing else of the archive.
//! - A segment whose bytes do not hash to the SHA-256 in its key is not used; any break in
//!   the sealed chain ([`verify_segments_of`], the watcher's own verifier): nothing is
//!   learned and nothing removed this pass (ERROR log,
//!   `redovault_collector_retention_errors_total`).
//! - Sealed segments are immutable, so each is read once and kept in memory.
//!
//! Entry points: [`StreamFacts`], [`stream_facts`], [`plan`], [`Store::retire`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redovault::manifest::{ManifestEntry, Sha256Digest, verify_segments_of};
use redovault::store::{ArchiveStore, read_object};
use redovault::watcher::config::join_key;
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::LogSeq;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::metrics::CollectorMetrics;
use crate::retention::{
    ArchivedLog, Plan, Rule, SegmentView, SeqFacts, SeqStatus, StoredScns, StreamFacts,
    archived_matches, plan,
};
use crate::store::{RetentionView, Store};
use crate::worm::PieceEntry;
use crate::writer::WriterHandle;

/// Largest sealed manifest segment read (the watcher seals far smaller ones).
const MAX_MANIFEST_SEGMENT: u64 = 64 << 20;

/// The status file written after every pass.
pub const STATUS_FILE: &str = "retention.json";

/// Why a pass learned nothing.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Listing or reading WORM failed.
    #[error("reading the sealed manifest: {0}")]
    Store(#[from] redovault::store::StoreError),
    /// The sealed manifest does not verify.
    #[error("the sealed manifest does not verify: {0}")]
    Chain(String),
}

/// An archived log as the sealed manifest records it, and when it was shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archived {
    /// What the entry says of the log.
    pub log: ArchivedLog,
    /// When the watcher shipped it (Unix seconds, from the entry's `shipped_at`).
    pub at: i64,
}

/// Archived logs by (database, incarnation, thread, sequence).
pub type ArchivedLogs = BTreeMap<(u32, u32, u16, u32), Archived>;

/// The sealed segments read so far (immutable: each is read once).
#[derive(Debug, Default)]
pub struct SealedManifest {
    segments: BTreeMap<(u64, u64), (String, Vec<u8>)>,
}

/// `<first>-<last>-<sha256>.jsonl`, parsed.
fn parse_segment_name(key: &str) -> Option<(u64, u64, Sha256Digest)> {
    let name = key.rsplit('/').next()?.strip_suffix(".jsonl")?;
    let mut parts = name.splitn(3, '-');
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    let sha = Sha256Digest::from_hex(parts.next()?)?;
    (first >= 1 && last >= first).then_some((first, last, sha))
}

impl SealedManifest {
    /// Reads new sealed segments under `<prefix>/manifest/`, verifies the whole chain, and
    /// returns every archived log it lists.
    pub async fn refresh<S: ArchiveStore>(
        &mut self,
        store: &S,
        prefix: &str,
    ) -> Result<ArchivedLogs, RetentionError> {
        let listing = store.list(&join_key(prefix, "manifest/")).await?;
        for o in listing {
            let Some((first, last, sha)) = parse_segment_name(&o.key) else {
                continue;
            };
            if self
                .segments
                .get(&(first, last))
                .is_some_and(|(k, _)| *k == o.key)
            {
                continue;
            }
            let bytes = read_object(store, &o.key, None, MAX_MANIFEST_SEGMENT).await?;
            if Sha256Digest::of(&bytes) != sha {
                tracing::error!(
                    key = %o.key,
                    "sealed manifest segment does not hash to the SHA-256 in its key: not used"
                );
                continue;
            }
            if let Some((other, _)) = self.segments.get(&(first, last)) {
                return Err(RetentionError::Chain(format!(
                    "{} and {other} both seal entries {first} to {last}",
                    o.key
                )));
            }
            self.segments.insert((first, last), (o.key, bytes));
        }
        let mut next = 1u64;
        for ((first, last), (key, _)) in &self.segments {
            if *first != next {
                return Err(RetentionError::Chain(format!(
                    "{key} starts at entry {first}, expected {next} (a segment is missing or overlaps)"
                )));
            }
            next = last + 1;
        }
        verify_segments_of::<ManifestEntry>(
            self.segments
                .values()
                .map(|(k, b)| (k.as_str(), b.as_slice())),
        )
        .map_err(|e| RetentionError::Chain(e.to_string()))?;
        let mut out = ArchivedLogs::new();
        for (key, bytes) in self.segments.values() {
            for line in String::from_utf8_lossy(bytes).lines() {
                let e = ManifestEntry::parse_line(line)
                    .map_err(|e| RetentionError::Chain(format!("{key}: {e}")))?;
                let Some(at) = unix_of(&e.shipped_at) else {
                    tracing::warn!(key = %key, index = e.index, shipped_at = %e.shipped_at, "manifest entry with an unreadable time: not used");
                    continue;
                };
                let log = ArchivedLog {
                    db_id: e.db_id,
                    resetlogs_id: e.resetlogs_id,
                    thread: e.thread.0,
                    sequence: e.sequence,
                    first_scn: e.first_scn,
                    next_scn: e.next_scn,
                };
                // A log shipped twice counts from its first shipment.
                out.entry((e.db_id.0, e.resetlogs_id.0, e.thread.0, e.sequence.0))
                    .and_modify(|a: &mut Archived| a.at = a.at.min(at))
                    .or_insert(Archived { log, at });
            }
        }
        Ok(out)
    }
}

fn unix_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp())
}

/// A sequence whose manifest entry does not match what the collector stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatched {
    pub seq: LogSeq,
    pub reason: String,
}

/// The facts of one stream, from the store's view, the archived logs and (with `[worm]`)
/// the stream's piece chain in order (`None`: no `[worm]`).
pub fn stream_facts(
    stream: StreamId,
    view: &RetentionView,
    archived: &ArchivedLogs,
    pieces: Option<&[PieceEntry]>,
) -> (StreamFacts, Vec<Mismatched>) {
    let snap = &view.snapshot;
    let segments: Vec<SegmentView> = snap
        .segments
        .iter()
        .map(|g| SegmentView {
            number: g.number,
            first: g.first,
            last_end: g.last_end,
            ends_log: g
                .last_end
                .is_some_and(|e| snap.seq_ends.get(&e.seq) == Some(&e.offset)),
            bytes: g.len,
        })
        .collect();
    let first = segments.iter().find_map(|g| g.first).map(|p| p.seq);
    let current = (!snap.durable.log_end).then_some(snap.durable.end.seq);
    let mut seqs = BTreeMap::new();
    let mut mismatched = Vec::new();
    if let Some(first) = first {
        for q in first.0..=snap.durable.end.seq.0 {
            let seq = LogSeq(q);
            let end = snap.seq_ends.get(&seq).copied();
            let archived_at = archived
                .get(&(stream.db_id.0, stream.resetlogs_id.0, stream.thread.0, q))
                .and_then(|a| {
                    let scns = view.scns.get(&seq).map(|(min, max)| StoredScns {
                        min: *min,
                        max: *max,
                    });
                    match archived_matches(&a.log, stream, seq, scns) {
                        Ok(()) => Some(a.at),
                        Err(e) => {
                            mismatched.push(Mismatched {
                                seq,
                                reason: e.to_string(),
                            });
                            None
                        }
                    }
                });
            let worm_at = match (pieces, end) {
                (Some(p), Some(end)) => worm_covered_at(p, seq, end),
                _ => None,
            };
            seqs.insert(
                seq,
                SeqFacts {
                    complete: end.is_some(),
                    archived_at,
                    worm_at,
                },
            );
        }
    }
    (
        StreamFacts {
            segments,
            seqs,
            current,
        },
        mismatched,
    )
}

/// When the pieces covering sequence `seq` (which ends at `end`) were all confirmed in
/// WORM: the chain must start at or before the sequence's start and reach its log end;
/// the time is that of the piece that reaches it (pieces are confirmed in chain order).
pub fn worm_covered_at(pieces: &[PieceEntry], seq: LogSeq, end: u64) -> Option<i64> {
    let first = pieces.first()?;
    if first.start() > (StreamPos { seq, offset: 0 }) {
        return None;
    }
    let log_end = StreamPos { seq, offset: end };
    pieces
        .iter()
        .find(|p| p.next_start() > log_end)
        .and_then(|p| unix_of(&p.uploaded_at))
}

/// What the task needs.
#[derive(Debug)]
pub struct Retention<S> {
    /// Where the watcher's sealed manifest is read.
    pub store: S,
    /// The archive prefix (`<prefix>/manifest/`).
    pub prefix: String,
    pub rule: Rule,
    /// How often a pass runs.
    pub interval: Duration,
    /// The store directory (the streams' local piece chains, the status file).
    pub store_dir: PathBuf,
    /// The writer (store access between batches).
    pub writer: WriterHandle,
    pub metrics: Arc<CollectorMetrics>,
}

/// The status file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusFile {
    /// When the pass ran (RFC 3339).
    pub at: String,
    /// Retention, seconds.
    pub keep_secs: i64,
    /// `[worm]` pieces are required.
    pub worm_required: bool,
    /// Why the pass learned nothing, if it did not.
    pub error: Option<String>,
    /// Per stream.
    pub streams: BTreeMap<String, StreamStatus>,
}

/// One stream in the status file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// Segments held.
    pub segments: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Segments removed by this pass (through this number), if any.
    pub removed_through: Option<u64>,
    /// Held sequences, grouped: `(first, last, status, until)`.
    pub sequences: Vec<SeqRange>,
}

/// Consecutive sequences with the same status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// First sequence.
    pub first: u32,
    /// Last sequence.
    pub last: u32,
    /// `current`, `not_archived`, `not_in_worm`, `retained`, `eligible`.
    pub status: String,
    /// For `retained`: until when (Unix seconds, the latest of the range).
    pub until: Option<i64>,
}

fn ranges(p: &Plan) -> Vec<SeqRange> {
    let mut out: Vec<SeqRange> = Vec::new();
    for (q, st) in &p.status {
        let until = match st {
            SeqStatus::Retained { until } => Some(*until),
            _ => None,
        };
        match out.last_mut() {
            Some(r) if r.status == st.name() && r.last + 1 == q.0 => {
                r.last = q.0;
                r.until = r.until.max(until);
            }
            _ => out.push(SeqRange {
                first: q.0,
                last: q.0,
                status: st.name().to_string(),
                until,
            }),
        }
    }
    out
}

/// Reads the status file of a store directory (`None`: no pass ran yet).
pub fn read_status(store_dir: &Path) -> Result<Option<StatusFile>, String> {
    let path = store_dir.join(STATUS_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Starts the task; it ends when `cancel` fires.
pub fn spawn<S: ArchiveStore + 'static>(
    r: Retention<S>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut manifest = SealedManifest::default();
        loop {
            let status = pass(&r, &mut manifest, chrono::Utc::now().timestamp()).await;
            write_status(&r.store_dir, &status).await;
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(r.interval) => {}
            }
        }
    })
}

async fn write_status(dir: &Path, status: &StatusFile) {
    let path = dir.join(STATUS_FILE);
    let Ok(bytes) = serde_json::to_vec_pretty(status) else {
        return;
    };
    let p = path.clone();
    let r = tokio::task::spawn_blocking(move || redovault::durable::write_atomic(&p, &bytes)).await;
    if !matches!(r, Ok(Ok(()))) {
        tracing::warn!(file = %path.display(), "retention status file not written");
    }
}

/// One pass at `now` (Unix seconds): learn, decide, remove, report.
pub async fn pass<S: ArchiveStore>(
    r: &Retention<S>,
    manifest: &mut SealedManifest,
    now: i64,
) -> StatusFile {
    let mut status = StatusFile {
        at: chrono::DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        keep_secs: r.rule.keep_secs,
        worm_required: r.rule.worm_required,
        ..StatusFile::default()
    };
    let archived = match manifest.refresh(&r.store, &r.prefix).await {
        Ok(a) => a,
        Err(e) => {
            r.metrics.retention_errors.inc();
            tracing::error!(prefix = %r.prefix, error = %e, "retention: nothing removed this pass");
            status.error = Some(e.to_string());
            return status;
        }
    };
    let (mut held_bytes, mut held_segments, mut eligible) = (0u64, 0u64, 0u64);
    let mut oldest: Option<std::time::SystemTime> = None;
    let mut freed = false;
    for stream in r.writer.durable_all().into_keys() {
        let Ok(Some(view)) = r
            .writer
            .with_store(move |st: &mut Store| st.retention_view(stream))
            .await
        else {
            continue;
        };
        let pieces = if r.rule.worm_required {
            match redovault::manifest::read_chain_entries::<PieceEntry>(&crate::worm::chain_dir(
                &r.store_dir,
                stream,
            )) {
                Ok(p) => Some(p),
                Err(e) => {
                    r.metrics.retention_errors.inc();
                    tracing::error!(stream = %stream, error = %e, "retention: the stream's WORM chain is unreadable: nothing of it removed");
                    continue;
                }
            }
        } else {
            None
        };
        let (facts, mismatched) = stream_facts(stream, &view, &archived, pieces.as_deref());
        for m in &mismatched {
            tracing::warn!(stream = %stream, sequence = m.seq.0, reason = %m.reason, "retention: the archived log does not match what the collector stored: kept");
        }
        let decided = plan(&r.rule, &facts, now);
        eligible += decided
            .status
            .values()
            .filter(|s| **s == SeqStatus::Eligible)
            .count() as u64;
        let mut st = StreamStatus {
            segments: facts.segments.len() as u64,
            bytes: facts.segments.iter().map(|g| g.bytes).sum(),
            removed_through: None,
            sequences: ranges(&decided),
        };
        if let Some(through) = decided.remove_through {
            match r
                .writer
                .with_store(move |s: &mut Store| s.retire(stream, through))
                .await
            {
                Ok(Ok(done)) => {
                    r.metrics.retention_removed_segments.add(done.segments);
                    r.metrics.retention_removed_bytes.add(done.bytes);
                    st.segments -= done.segments.min(st.segments);
                    st.bytes -= done.bytes.min(st.bytes);
                    st.removed_through = Some(through);
                    freed = true;
                    tracing::info!(
                        stream = %stream,
                        through,
                        sequences = ?decided.sequences.iter().map(|q| q.0).collect::<Vec<_>>(),
                        bytes = done.bytes,
                        "retention: sequences archived and verified in WORM removed from the collector's disk"
                    );
                }
                Ok(Err(e)) => {
                    r.metrics.retention_errors.inc();
                    tracing::error!(stream = %stream, through, error = %e, "retention: removal failed");
                }
                Err(e) => {
                    r.metrics.retention_errors.inc();
                    tracing::error!(stream = %stream, error = %e, "retention: store unavailable");
                }
            }
        }
        held_bytes += st.bytes;
        held_segments += st.segments;
        if let Some(first) = view
            .snapshot
            .segments
            .iter()
            .find(|g| st.removed_through.is_none_or(|t| g.number > t))
            && let Ok(t) = std::fs::metadata(&first.path).and_then(|m| m.modified())
        {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
        }
        status.streams.insert(stream.to_string(), st);
    }
    if freed {
        r.writer.space_freed();
    }
    r.metrics.retention_held_bytes.set(held_bytes as f64);
    r.metrics.retention_held_segments.set(held_segments as f64);
    r.metrics.retention_eligible_sequences.set(eligible as f64);
    r.metrics.retention_oldest_held_seconds.set(
        oldest
            .and_then(|t| t.elapsed().ok())
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    tracing::debug!(held_bytes, held_segments, eligible, "retention pass");
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durable, StoredSegment, StreamSnapshot};
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::position::{Scn, ThreadId};

    fn sid() -> StreamId {
        StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: ThreadId(1),
        }
    }

    fn pos(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    fn seg(n: u64, a: StreamPos, b: StreamPos) -> StoredSegment {
        StoredSegment {
            number: n,
            path: PathBuf::from(format!("seg-{n}")),
            first: Some(a),
            last_end: Some(b),
            len: 100,
            durable_len: 100,
        }
    }

    /// Logs 1 and 2 complete (1000 bytes each) in segments 1 and 2, log 3 being written in 3.
    fn view() -> RetentionView {
        RetentionView {
            snapshot: StreamSnapshot {
                stream: sid(),
                segments: vec![
                    seg(1, pos(1, 0), pos(1, 1000)),
                    seg(2, pos(2, 0), pos(2, 1000)),
                    seg(3, pos(3, 0), pos(3, 10)),
                ],
                durable: Durable {
                    end: pos(3, 10),
                    log_end: false,
                    last_commit: None,
                },
                seq_ends: BTreeMap::from([(LogSeq(1), 1000), (LogSeq(2), 1000)]),
                seq_commits: BTreeMap::new(),
            },
            scns: BTreeMap::from([
                (LogSeq(1), (Scn(150), Scn(190))),
                (LogSeq(2), (Scn(250), Scn(260))),
            ]),
        }
    }

    fn archived(seq: u32, first: u64, next: u64, at: i64) -> ((u32, u32, u16, u32), Archived) {
        (
            (7, 9, 1, seq),
            Archived {
                log: ArchivedLog {
                    db_id: DbId(7),
                    resetlogs_id: ResetlogsId(9),
                    thread: 1,
                    sequence: LogSeq(seq),
                    first_scn: Scn(first),
                    next_scn: Scn(next),
                },
                at,
            },
        )
    }

    fn piece(start: StreamPos, end: StreamPos, log_end: bool, uploaded: &str) -> PieceEntry {
        PieceEntry {
            index: 1,
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: 1,
            start_seq: start.seq.0,
            start_offset: start.offset,
            end_seq: end.seq.0,
            end_offset: end.offset,
            log_end,
            chunks: 1,
            redo_bytes: 0,
            commits: 0,
            last_commit_scn: None,
            last_commit_xid: None,
            last_commit_time: None,
            object_key: String::new(),
            size: 0,
            sha256: Sha256Digest([0; 32]),
            prev_piece: Sha256Digest([0; 32]),
            version_id: None,
            retain_until: None,
            durable_at: String::new(),
            uploaded_at: uploaded.to_string(),
            prev: Sha256Digest([0; 32]),
        }
    }

    #[test]
    fn facts_match_the_manifest_and_the_piece_chain() {
        let logs = ArchivedLogs::from([archived(1, 100, 200, 1000), archived(2, 300, 400, 2000)]);
        let pieces = vec![
            piece(pos(1, 0), pos(1, 1000), true, "1970-01-01T00:50:00Z"),
            piece(pos(2, 0), pos(2, 500), false, "1970-01-01T01:00:00Z"),
        ];
        let (f, mism) = stream_facts(sid(), &view(), &logs, Some(&pieces));
        assert_eq!(f.current, Some(LogSeq(3)));
        assert_eq!(f.seqs[&LogSeq(1)].archived_at, Some(1000));
        assert_eq!(f.seqs[&LogSeq(1)].worm_at, Some(3000));
        // Seq 2's stored commits (SCN 250..260) are not in the log's 300..400: kept.
        assert_eq!(f.seqs[&LogSeq(2)].archived_at, None);
        assert_eq!(mism.len(), 1);
        assert_eq!(mism[0].seq, LogSeq(2));
        // Seq 2's pieces stop before its end.
        assert_eq!(f.seqs[&LogSeq(2)].worm_at, None);
        assert!(!f.seqs[&LogSeq(3)].complete);
        assert!(f.segments[0].ends_log && !f.segments[2].ends_log);
        let p = plan(
            &Rule {
                keep_secs: 0,
                worm_required: true,
            },
            &f,
            10_000,
        );
        assert_eq!(p.remove_through, Some(1));
    }

    #[test]
    fn a_chain_that_starts_after_a_sequence_does_not_cover_it() {
        let pieces = vec![piece(
            pos(1, 500),
            pos(1, 1000),
            true,
            "1970-01-01T00:00:10Z",
        )];
        assert_eq!(worm_covered_at(&pieces, LogSeq(1), 1000), None);
        let pieces = vec![piece(pos(1, 0), pos(2, 10), false, "1970-01-01T00:00:10Z")];
        assert_eq!(worm_covered_at(&pieces, LogSeq(1), 1000), Some(10));
        assert_eq!(worm_covered_at(&pieces, LogSeq(2), 1000), None);
        assert_eq!(worm_covered_at(&[], LogSeq(1), 1000), None);
    }

    #[test]
    fn segment_names_parse_strictly_and_status_groups_sequences() {
        let sha = "ab".repeat(32);
        assert_eq!(
            parse_segment_name(&format!("p/manifest/000000000001-000000000010-{sha}.jsonl"))
                .map(|(a, b, _)| (a, b)),
            Some((1, 10))
        );
        assert!(parse_segment_name("p/manifest/junk.jsonl").is_none());
        assert!(parse_segment_name(&format!("p/manifest/5-4-{sha}.jsonl")).is_none());
        assert!(parse_segment_name(&format!("p/manifest/0-4-{sha}.jsonl")).is_none());
        let p = Plan {
            status: BTreeMap::from([
                (LogSeq(1), SeqStatus::Eligible),
                (LogSeq(2), SeqStatus::Eligible),
                (LogSeq(3), SeqStatus::Retained { until: 5 }),
                (LogSeq(4), SeqStatus::Retained { until: 9 }),
                (LogSeq(5), SeqStatus::Current),
            ]),
            ..Plan::default()
        };
        let r = ranges(&p);
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].first, r[0].last, r[0].status.as_str()),
            (1, 2, "eligible")
        );
        assert_eq!((r[1].first, r[1].last, r[1].until), (3, 4, Some(9)));
    }
}
