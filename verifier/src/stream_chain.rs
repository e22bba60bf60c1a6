//! The collector's streams in WORM, audited like the archive, without the recovery key.
//!
//! ```text
//! <prefix>/streams/<stream>/manifest/<first>-<last>-<sha>.jsonl   sealed chain segments
//!   ─► chain::read_sealed, chain::audit_chain_lines  (the manifest's own code and findings)
//!   ─► continuity: entries run on                     (one PieceEntry per piece)
//! <prefix>/streams/<stream>/pieces/…rvp
//!   recorded ─► fast_check_piece (HEAD) ─► on the rolling schedule: deep_check_piece
//!   unrecorded ─► listed (info: clear header's index and position)
//! with the recovery key: re-hashed piece opened ─► PieceUnits (per 512-byte unit)
//!   ─► compared with the archived log of the same sequence re-hashed in the same run
//!      (crate::objects::deep_check_object)
//! ```
//!
//! Invariants checked, per stream found:
//! - Sealed segments: content versus key, conflicting segments, every edited, removed or
//!   reordered entry named (the manifest's finding kinds, the subject naming the stream); an
//!   anchor per stream, kept between runs, catches a history rewritten wholesale.
//! - [`continuity`]: entry 1 names no previous piece, each entry starts where the previous
//!   one ended (`next_start`) and names its piece's SHA-256 (`prev_piece`), and records its
//!   own stream and the key its start and SHA-256 give.
//! - Every recorded piece: the recorded version, size, SHA-256, lock and retain-until by
//!   HEAD, like an archived log ([`fast_check_piece`]); downloaded and re-hashed on the
//!   archive's schedule ([`deep_check_piece`]); its clear header matches its entry.
//! - A piece no sealed entry records is not yet an error: the open chain segment is not
//!   sealed yet, or a crash left it between its upload and its record.
//!
//! Why no key is needed: a piece's SHA-256 is in its key and its entry, and its header is in
//! the clear; only the redo cross-check ([`PieceUnits`]) opens pieces.

use std::collections::{BTreeMap, HashSet};

use redovault::crypto::recovery::{OpenError, RecoveryPrivateKey};
use redovault::manifest::Sha256Digest;
use redovault::store::{ArchiveStore, ObjectSummary, StoreError};
use redovault::wire::StreamId;
use redovault_collector::piece::{self, HEADER_LEN, PieceError, PieceHeader, piece_key};
use redovault_collector::store::parse_stream_dir_name;
use redovault_collector::worm::PieceEntry;
use tokio::io::AsyncReadExt as _;

use crate::chain::{self, Anchor, AuditEntry, ChainAudit};
use crate::objects::{self, ObjectRef, ObjectResult, Policy};
use crate::report::{FileStatus, Finding, FindingKind, LogRef, WormStreamResult};
use crate::units::{LogKey, PieceUnits};

impl AuditEntry for PieceEntry {
    const MANIFEST: bool = false;

    fn log_ref(&self) -> Option<LogRef> {
        Some(LogRef {
            resetlogs_id: self.resetlogs_id,
            thread: self.thread,
            sequence: self.start_seq,
        })
    }
}

/// How findings name a stream's chain: "stream db1-rl2-t1 piece" (then "entry 3 (WORM)").
pub fn chain_name(stream: StreamId) -> String {
    format!("stream {stream} piece")
}

fn streams_base(prefix: &str) -> String {
    if prefix.is_empty() {
        "streams/".to_string()
    } else {
        format!("{prefix}/streams/")
    }
}

/// The streams under `<prefix>/streams/`, each with the objects under its `pieces/`.
pub async fn list_streams<S: ArchiveStore>(
    store: &S,
    prefix: &str,
) -> Result<BTreeMap<StreamId, Vec<ObjectSummary>>, StoreError> {
    let base = streams_base(prefix);
    let mut out: BTreeMap<StreamId, Vec<ObjectSummary>> = BTreeMap::new();
    for o in store.list(&base).await? {
        let rest = o.key.strip_prefix(&base).unwrap_or("");
        let mut parts = rest.splitn(3, '/');
        let Some(stream) = parts.next().and_then(parse_stream_dir_name) else {
            continue;
        };
        let pieces = out.entry(stream).or_default();
        if parts.next() == Some("pieces") {
            pieces.push(o);
        }
    }
    Ok(out)
}

/// One stream's sealed chain, audited.
#[derive(Debug)]
pub struct StreamChainAudit {
    pub stream: StreamId,
    /// Its entries, and what the chain audit found.
    pub audit: ChainAudit<PieceEntry>,
    /// Sealed segments read.
    pub sealed_segments: usize,
    /// Everything found: seals, chain, anchor, continuity, unreferenced pieces.
    pub findings: Vec<Finding>,
    /// Pieces in WORM that no sealed entry records.
    pub unreferenced: u64,
}

impl StreamChainAudit {
    /// The highest entry and its hash, as the next run's anchor.
    pub fn anchor(&self) -> Option<Anchor> {
        self.audit.anchor()
    }

    /// The entries in chain order.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &PieceEntry> {
        self.audit.entries.values().map(|(e, _)| e)
    }

    /// The stream's line in the report (`errors`: error findings about it in this run).
    pub fn result(&self, errors: u64) -> WormStreamResult {
        let first = self.entries().next();
        let last = self.entries().next_back();
        let last_commit = self.entries().rev().find_map(|e| e.last_commit());
        WormStreamResult {
            stream: self.stream.to_string(),
            sealed_segments: self.sealed_segments as u64,
            entries: self.audit.entries.len() as u64,
            first: first.map(|e| e.start().to_string()),
            next: last.map(|e| e.next_start().to_string()),
            last_commit_scn: last_commit.as_ref().map(|c| c.0.0),
            last_commit_time: last_commit.and_then(|c| c.2).and_then(|t| {
                chrono::DateTime::from_timestamp(t, 0)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }),
            unreferenced: self.unreferenced,
            errors,
        }
    }
}

/// Reads and audits one stream's sealed chain and names the pieces it does not record
/// (`pieces`: the objects under its `pieces/`, as [`list_streams`] found them; `anchor`: what
/// an earlier run verified of this stream).
pub async fn audit_stream<S: ArchiveStore>(
    store: &S,
    prefix: &str,
    stream: StreamId,
    pieces: &[ObjectSummary],
    anchor: Option<&Anchor>,
) -> Result<StreamChainAudit, StoreError> {
    let name = chain_name(stream);
    let (sealed, audit) =
        chain::read_sealed::<PieceEntry, S>(store, &piece::stream_prefix(prefix, stream), &name)
            .await?;
    let mut findings = sealed.findings.clone();
    findings.extend(audit.findings.iter().cloned());
    findings.extend(sealed.unexplained_break(&audit, &name));
    if let Some(a) = anchor {
        findings.extend(chain::check_chain_anchor(&audit, a, &name, "WORM"));
    }
    findings.extend(continuity(prefix, stream, &audit));
    let recorded: HashSet<&str> = audit
        .entries
        .values()
        .map(|(e, _)| e.object_key.as_str())
        .collect();
    let last_sealed = audit.entries.keys().next_back().copied().unwrap_or(0);
    let mut unreferenced = 0;
    for o in pieces.iter().filter(|o| !recorded.contains(o.key.as_str())) {
        unreferenced += 1;
        findings.push(unreferenced_piece(store, stream, o, last_sealed).await);
    }
    Ok(StreamChainAudit {
        stream,
        audit,
        sealed_segments: sealed.segments,
        findings,
        unreferenced,
    })
}

/// The info finding of a piece no sealed entry records, placed by its clear header (a ranged
/// read of its first bytes).
async fn unreferenced_piece<S: ArchiveStore>(
    store: &S,
    stream: StreamId,
    o: &ObjectSummary,
    last_sealed: u64,
) -> Finding {
    let subject = format!("stream {stream} piece {}", o.key);
    let mut head = Vec::with_capacity(HEADER_LEN);
    let read = async {
        let r = store.get(&o.key, Some(0..HEADER_LEN as u64), None).await?;
        r.take(HEADER_LEN as u64)
            .read_to_end(&mut head)
            .await
            .map_err(|source| StoreError::Io {
                context: format!("read {}", o.key),
                source,
            })
    };
    let detail = match read.await {
        Err(e) => {
            format!("in WORM, recorded by no sealed chain entry; its header could not be read: {e}")
        }
        Ok(_) => match PieceHeader::decode_prefix(&head, o.size, &o.key) {
            Err(e) => format!("in WORM, recorded by no sealed chain entry, and not a piece: {e}"),
            Ok(h) if h.stream != stream => format!(
                "in WORM, recorded by no sealed chain entry; its header names stream {}",
                h.stream
            ),
            Ok(h) => {
                let why = if h.index > last_sealed {
                    format!(
                        "after the last sealed entry ({last_sealed}): its chain segment is not sealed yet"
                    )
                } else {
                    format!(
                        "beside sealed entry {}: left by a crash between its upload and its record, or a conflict",
                        h.index
                    )
                };
                format!(
                    "in WORM, recorded by no sealed chain entry: index {}, {} to {}, {why}",
                    h.index, h.start, h.end
                )
            }
        },
    };
    Finding::info(FindingKind::PieceUnreferenced, subject, detail)
}

/// The chain must run on: entry 1 names no previous piece, each entry starts where the one
/// before it ended and names its piece, and records this stream and the key its start and
/// SHA-256 give. Entries on either side of a hole are not compared (the hole is named).
pub fn continuity(prefix: &str, stream: StreamId, audit: &ChainAudit<PieceEntry>) -> Vec<Finding> {
    let name = chain_name(stream);
    let mut out = Vec::new();
    let mut prev: Option<&PieceEntry> = None;
    for (&i, (e, _)) in &audit.entries {
        let subject = format!("{name} entry {i} (WORM)");
        let finding = |kind, detail: String| {
            let f = Finding::error(kind, subject.clone(), detail);
            match e.log_ref() {
                Some(l) => f.with_log(l),
                None => f,
            }
        };
        if e.stream() != stream {
            out.push(finding(
                FindingKind::StreamChainGap,
                format!(
                    "records stream {}, in the chain of stream {stream}",
                    e.stream()
                ),
            ));
        }
        let key = piece_key(prefix, stream, e.start(), &e.sha256);
        if e.object_key != key {
            out.push(finding(
                FindingKind::PieceHeaderMismatch,
                format!(
                    "records the key {}; a piece starting at {} with SHA-256 {} is stored as {key}",
                    e.object_key,
                    e.start(),
                    e.sha256
                ),
            ));
        }
        match prev {
            Some(p) if p.index + 1 == i => {
                if e.start() != p.next_start() {
                    let what = if e.start() > p.next_start() {
                        "the redo between them is not in WORM"
                    } else {
                        "they overlap"
                    };
                    out.push(finding(
                        FindingKind::StreamChainGap,
                        format!(
                            "starts at {}, entry {} ends the stream at {}: {what}",
                            e.start(),
                            p.index,
                            p.next_start()
                        ),
                    ));
                }
                if e.prev_piece != p.sha256 {
                    out.push(finding(
                        FindingKind::StreamChainGap,
                        format!(
                            "names {} as its previous piece, entry {}'s piece is {}",
                            e.prev_piece, p.index, p.sha256
                        ),
                    ));
                }
            }
            None if i == 1 && e.prev_piece != Sha256Digest::ZERO => out.push(finding(
                FindingKind::StreamChainGap,
                format!(
                    "the first piece names {} as its previous piece (zeros expected)",
                    e.prev_piece
                ),
            )),
            _ => {}
        }
        prev = Some(e);
    }
    out
}

/// What a piece's entry recorded of its object.
pub fn object_ref(stream: StreamId, e: &PieceEntry) -> ObjectRef {
    ObjectRef {
        key: e.object_key.clone(),
        version_id: e.version_id.clone(),
        size: e.size,
        sha256: e.sha256,
        stored: None,
        put_at: e.uploaded_at.clone(),
        recorded_in: "its chain entry",
        subject: format!(
            "stream {stream} piece {} ({} to {})",
            e.index,
            e.start(),
            e.end()
        ),
        entry: None,
        log: e.log_ref(),
    }
}

/// The fast path of a recorded piece: HEAD of the recorded version (a newer version over it,
/// size, SHA-256, lock, retain-until after `uploaded_at`), like an archived log's; a piece
/// that is not there is `piece_missing`.
pub async fn fast_check_piece<S: ArchiveStore>(
    store: &S,
    stream: StreamId,
    e: &PieceEntry,
    policy: &Policy,
) -> Result<ObjectResult, StoreError> {
    let mut r = objects::fast_check_object(store, &object_ref(stream, e), policy).await?;
    for f in &mut r.findings {
        if f.kind == FindingKind::ObjectMissing {
            f.kind = FindingKind::PieceMissing;
        }
    }
    Ok(r)
}

/// What the deep check of one piece found.
#[derive(Debug)]
pub struct PieceDeep {
    /// Re-hash, header and (with the key) content findings.
    pub result: ObjectResult,
    /// Opened with the recovery key.
    pub opened: bool,
    /// Its redo, per sequence whose archived log is re-hashed in this run.
    pub units: Vec<PieceUnits>,
    /// Some of its redo cannot be compared in this run (not opened, or a sequence whose
    /// archived log is not in the manifest or not re-hashed in this run).
    pub pending: bool,
}

/// The deep path of a recorded piece: downloads the recorded version and re-hashes it
/// (SHA-256 = entry = key), checks its clear header against its entry, and, with the
/// recovery key, opens it (its chunks against its header and its entry) and digests its redo
/// of each sequence in `compare` (the archived logs re-hashed in this run).
pub async fn deep_check_piece<S: ArchiveStore>(
    store: &S,
    stream: StreamId,
    e: &PieceEntry,
    key: Option<&RecoveryPrivateKey>,
    compare: &HashSet<LogKey>,
) -> Result<PieceDeep, StoreError> {
    let obj = object_ref(stream, e);
    let (mut result, bytes) = objects::deep_check_bytes(store, &obj).await?;
    let mut opened = false;
    let mut units = Vec::new();
    let mut pending = true;
    let mismatch = |detail: String| obj.finding(FindingKind::PieceHeaderMismatch, detail);
    if result.findings.is_empty() {
        match PieceHeader::decode(&bytes, &e.object_key) {
            Err(err) => result.findings.push(mismatch(format!(
                "its entry's SHA-256 matches, but it is no piece: {err}"
            ))),
            Ok(h) => {
                let differs = header_vs_entry(&h, e);
                if !differs.is_empty() {
                    result.findings.push(mismatch(format!(
                        "its clear header differs from its chain entry: {}",
                        differs.join(", ")
                    )));
                }
            }
        }
    }
    if result.findings.is_empty()
        && let Some(k) = key
    {
        match piece::open(&bytes, k, &e.object_key) {
            Err(err) => result.findings.push(obj.finding(
                FindingKind::PieceUnreadable,
                match &err {
                    PieceError::Open {
                        source: OpenError::OtherKey { .. },
                        ..
                    } => format!("sealed to another recovery key than the one given: {err}"),
                    _ => format!("does not open with the recovery key: {err}"),
                },
            )),
            Ok((_, chunks)) => {
                opened = true;
                let redo: u64 = chunks.iter().map(|c| c.data.len() as u64).sum();
                let commits: u64 = chunks.iter().map(|c| c.commits.len() as u64).sum();
                if (redo, commits) != (e.redo_bytes, e.commits) {
                    result.findings.push(mismatch(format!(
                        "it holds {redo} redo bytes and {commits} commits, its chain entry says {} and {}",
                        e.redo_bytes, e.commits
                    )));
                } else {
                    pending = false;
                    for seq in e.start_seq..=e.end_seq {
                        if !chunks.iter().any(|c| c.start.seq.0 == seq) {
                            continue;
                        }
                        let log = (e.db_id, e.resetlogs_id, e.thread, seq);
                        let u = compare.contains(&log).then(|| {
                            PieceUnits::of_chunks(stream, e.index, &e.object_key, seq, &chunks)
                        });
                        match u.flatten() {
                            Some(u) => units.push(u),
                            None => pending = true,
                        }
                    }
                }
            }
        }
    }
    if !result.findings.is_empty() {
        result.status = FileStatus::Tampered;
        units.clear();
        pending = true;
    }
    Ok(PieceDeep {
        result,
        opened,
        units,
        pending,
    })
}

/// The fields where a piece's clear header and its chain entry disagree.
fn header_vs_entry(h: &PieceHeader, e: &PieceEntry) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, header: String, entry: String| {
        if header != entry {
            out.push(format!("{what} {header} (entry: {entry})"));
        }
    };
    check("stream", h.stream.to_string(), e.stream().to_string());
    check("index", h.index.to_string(), e.index.to_string());
    check("start", h.start.to_string(), e.start().to_string());
    check("end", h.end.to_string(), e.end().to_string());
    check("log end", h.log_end.to_string(), e.log_end.to_string());
    check("chunks", h.chunks.to_string(), e.chunks.to_string());
    check(
        "previous piece",
        h.prev_piece.to_string(),
        e.prev_piece.to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::{DbId, ResetlogsId};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use redovault::manifest::{ChainDir, ManifestEntry, SegmentInfo, segment_key};
    use redovault::store::local::LocalStore;
    use redovault::wire::{CommitMark, StreamPos};
    use redovault_collector::piece::{seal, stream_prefix};
    use redovault_collector::segment::StoredChunk;
    use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};

    use super::*;
    use crate::report::{AuditReport, Severity, Verdict};
    use crate::verify::{DeepMode, VerifyOptions, verify};

    const S: StreamId = StreamId {
        db_id: DbId(7),
        resetlogs_id: ResetlogsId(9),
        thread: ThreadId(1),
    };
    const PREFIX: &str = "bank1";
    const SEQ: u32 = 5;
    const PIECE: usize = 1024;

    /// A stream in a local store, written as the collector writes it.
    struct Fx {
        root: tempfile::TempDir,
        store: Arc<LocalStore>,
        key: Arc<RecoveryPrivateKey>,
        entries: Vec<PieceEntry>,
        /// The redo of sequence `SEQ`, whole (the pieces hold a prefix of it).
        log: Vec<u8>,
    }

    fn at(offset: usize) -> StreamPos {
        StreamPos {
            seq: LogSeq(SEQ),
            offset: offset as u64,
        }
    }

    /// `pieces` pieces of `PIECE` bytes of sequence `SEQ`, a sealed chain segment every
    /// `per_segment` entries (the rest left in the open segment, unsealed); with `skip`, the
    /// redo of one piece's length is left out before that piece (a hole in the stream).
    async fn fixture(pieces: usize, per_segment: usize, skip: Option<usize>) -> Fx {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path().join("store")).unwrap());
        let key = Arc::new(RecoveryPrivateKey::generate());
        let log: Vec<u8> = (0..(pieces + 4) * PIECE)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 9)) as u8)
            .collect();
        let mut chain =
            ChainDir::<PieceEntry>::open(&root.path().join("chain"), &mut |_| {}).unwrap();
        let mut entries = Vec::new();
        let mut prev_piece = Sha256Digest::ZERO;
        let mut offset = 0;
        for i in 0..pieces {
            if skip == Some(i) {
                offset += PIECE;
            }
            let end = at(offset + PIECE);
            let chunk = StoredChunk {
                start: at(offset),
                data: log[offset..offset + PIECE].to_vec(),
                commits: vec![CommitMark {
                    xid: Xid {
                        usn: 1,
                        slot: 2,
                        sqn: i as u32,
                    },
                    scn: Scn(1000 + i as u64),
                    time: Some(1_780_000_000 + i as i64),
                    end,
                }],
                log_end: false,
            };
            let index = chain.state().next_index;
            let p = seal(S, index, prev_piece, &[chunk], key.public()).unwrap();
            let object_key = piece_key(PREFIX, S, p.header.start, &p.sha256);
            let out = store
                .put_immutable(&object_key, std::io::Cursor::new(p.bytes.clone()))
                .await
                .unwrap();
            let e = chain
                .append_with(|index, prev| PieceEntry {
                    index,
                    db_id: S.db_id,
                    resetlogs_id: S.resetlogs_id,
                    thread: S.thread.0,
                    start_seq: SEQ,
                    start_offset: offset as u64,
                    end_seq: SEQ,
                    end_offset: end.offset,
                    log_end: false,
                    chunks: 1,
                    redo_bytes: PIECE as u64,
                    commits: 1,
                    last_commit_scn: Some(1000 + i as u64),
                    last_commit_xid: Some(format!("1.2.{i}")),
                    last_commit_time: Some(1_780_000_000 + i as i64),
                    object_key: out.key,
                    size: p.bytes.len() as u64,
                    sha256: p.sha256,
                    prev_piece,
                    version_id: None,
                    retain_until: None,
                    durable_at: "2026-06-01T00:00:00.000Z".into(),
                    uploaded_at: "2026-06-01T00:00:01.000Z".into(),
                    prev,
                })
                .unwrap();
            prev_piece = p.sha256;
            offset += PIECE;
            entries.push(e);
            if entries.len() % per_segment == 0 {
                let seg = chain.close_segment().unwrap().unwrap();
                let k = segment_key(&stream_prefix(PREFIX, S), &seg);
                let bytes = std::fs::read(&seg.path).unwrap();
                store
                    .put_immutable(&k, std::io::Cursor::new(bytes))
                    .await
                    .unwrap();
            }
        }
        Fx {
            root,
            store,
            key,
            entries,
            log,
        }
    }

    impl Fx {
        fn path(&self, key: &str) -> PathBuf {
            self.store.root().join(key)
        }

        /// Removes an object (what no one can do in WORM, but it models one gone).
        fn remove(&self, key: &str) {
            std::fs::remove_file(self.path(key)).unwrap();
        }

        /// The sealed segment keys, in chain order.
        async fn segments(&self) -> Vec<String> {
            let base = format!("{}/manifest/", stream_prefix(PREFIX, S));
            self.store
                .list(&base)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect()
        }

        /// Rewrites sealed segment `n` (from 0) with `f` applied to its lines, under the key
        /// its new content gives (a forgery consistent with its own key).
        async fn rewrite_segment(&self, n: usize, f: impl FnOnce(&mut Vec<String>)) {
            self.rewrite_segment_text(n, |text| {
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                f(&mut lines);
                lines.join("\n") + "\n"
            })
            .await;
        }

        /// The same with the segment's whole text.
        async fn rewrite_segment_text(&self, n: usize, f: impl FnOnce(String) -> String) {
            let old = self.segments().await.remove(n);
            let k = chain::parse_segment_key(&old).unwrap();
            let text = std::fs::read_to_string(self.path(&old)).unwrap();
            let bytes = f(text).into_bytes();
            let seg = SegmentInfo {
                first: k.first,
                last: k.last,
                sha256: Sha256Digest::of(&bytes),
                size: bytes.len() as u64,
                path: PathBuf::new(),
            };
            self.remove(&old);
            self.store
                .put_immutable(
                    &segment_key(&stream_prefix(PREFIX, S), &seg),
                    std::io::Cursor::new(bytes),
                )
                .await
                .unwrap();
        }

        async fn audit(&self) -> StreamChainAudit {
            let listed = list_streams(self.store.as_ref(), PREFIX).await.unwrap();
            assert_eq!(listed.keys().copied().collect::<Vec<_>>(), vec![S]);
            audit_stream(self.store.as_ref(), PREFIX, S, &listed[&S], None)
                .await
                .unwrap()
        }

        /// Puts the archived log of `SEQ` (`bytes`) and a sealed manifest naming it.
        async fn archive(&self, bytes: &[u8]) {
            let sha = Sha256Digest::of(bytes);
            let object_key = format!("{PREFIX}/archive/sha256/{sha}");
            self.store
                .put_immutable(&object_key, std::io::Cursor::new(bytes.to_vec()))
                .await
                .unwrap();
            let e = ManifestEntry {
                index: 1,
                db_id: S.db_id,
                db_name: "PROD".into(),
                resetlogs_id: S.resetlogs_id,
                thread: S.thread,
                sequence: LogSeq(SEQ),
                first_scn: Scn(900),
                next_scn: Scn(2000),
                first_time: "2026-06-01T00:00:00".into(),
                next_time: "2026-06-01T00:10:00".into(),
                size: bytes.len() as u64,
                sha256: sha,
                object_key,
                version_id: None,
                retain_until: None,
                shipped_at: "2026-06-01T00:10:01Z".into(),
                file_name: format!("arch_1_{SEQ}_9.arc"),
                stored: None,
                prev: Sha256Digest::ZERO,
            };
            let seg = (e.canonical_line() + "\n").into_bytes();
            let info = SegmentInfo {
                first: 1,
                last: 1,
                sha256: Sha256Digest::of(&seg),
                size: seg.len() as u64,
                path: PathBuf::new(),
            };
            self.store
                .put_immutable(&segment_key(PREFIX, &info), std::io::Cursor::new(seg))
                .await
                .unwrap();
        }

        async fn verify(&self, key: bool) -> AuditReport {
            let opts = VerifyOptions {
                target: "local".into(),
                prefix: PREFIX.into(),
                local_manifest: None,
                policy: Policy {
                    lock_mode: None,
                    min_retention: Duration::ZERO,
                },
                deep: DeepMode::All,
                parallel: 3,
                collectors: Vec::new(),
                acknowledged: Vec::new(),
                state_dir: None,
                worm_prefix: None,
                worm_copies: Vec::new(),
                recovery_key: key.then(|| Arc::clone(&self.key)),
                incremental: Default::default(),
            };
            verify(Arc::clone(&self.store), &opts).await
        }
    }

    fn kinds(findings: &[Finding]) -> Vec<(FindingKind, String)> {
        findings
            .iter()
            .map(|f| (f.kind, f.subject.clone()))
            .collect()
    }

    fn errors(findings: &[Finding]) -> Vec<(FindingKind, String)> {
        let e: Vec<Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect();
        kinds(&e)
    }

    #[tokio::test]
    async fn a_clean_chain_has_no_finding() {
        let fx = fixture(6, 3, None).await;
        let a = fx.audit().await;
        assert!(a.findings.is_empty(), "{:#?}", a.findings);
        assert_eq!((a.audit.entries.len(), a.sealed_segments), (6, 2));
        assert_eq!(a.anchor().unwrap().index, 6);
        let r = a.result(0);
        assert_eq!(
            (r.first.as_deref(), r.next.as_deref(), r.last_commit_scn),
            (Some("5:0"), Some("5:6144"), Some(1005))
        );
        // The whole run: clean, every piece checked and re-hashed; without the key the
        // cross-check is said not done.
        let rep = fx.verify(false).await;
        assert_eq!(rep.verdict, Verdict::Clean, "{}", rep.to_text());
        let m = &rep.summary;
        assert_eq!(
            (m.worm_streams, m.stream_chain_entries, m.pieces_checked),
            (1, 6, 6)
        );
        assert_eq!((m.pieces_deep_verified, m.pieces_unreferenced), (6, 0));
        assert_eq!(
            (m.pieces_cross_checked, m.pieces_cross_check_pending),
            (0, 6)
        );
        assert_eq!(
            kinds(&rep.findings),
            vec![(
                FindingKind::PieceCrossCheckNotDone,
                "the pieces of 1 stream(s) in WORM".to_string()
            )]
        );
        assert_eq!(rep.findings[0].severity, Severity::Info);
        assert_eq!(rep.streams.len(), 1);
        assert_eq!(rep.streams[0].stream, "db7-rl9-t1");
        assert!(
            rep.to_text()
                .contains("streams:  1 in WORM, 6 chain entries, 6 pieces")
        );
    }

    #[tokio::test]
    async fn without_streams_the_run_is_unchanged() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::new(root.path()).unwrap());
        let opts = VerifyOptions {
            target: "local".into(),
            prefix: PREFIX.into(),
            local_manifest: None,
            policy: Policy {
                lock_mode: None,
                min_retention: Duration::ZERO,
            },
            deep: DeepMode::All,
            parallel: 1,
            collectors: Vec::new(),
            acknowledged: Vec::new(),
            state_dir: None,
            worm_prefix: None,
            worm_copies: Vec::new(),
            recovery_key: Some(Arc::new(RecoveryPrivateKey::generate())),
            incremental: Default::default(),
        };
        let rep = verify(store, &opts).await;
        assert_eq!(rep.verdict, Verdict::Clean);
        assert!(rep.findings.is_empty(), "{:?}", rep.findings);
        assert!(rep.streams.is_empty());
        assert_eq!(rep.summary, crate::report::Summary::default());
        assert!(!rep.to_text().contains("stream"));
    }

    #[tokio::test]
    async fn a_removed_entry_is_named() {
        let fx = fixture(6, 3, None).await;
        fx.rewrite_segment(0, |l| {
            l.remove(1);
        })
        .await;
        let a = fx.audit().await;
        assert_eq!(
            errors(&a.findings),
            vec![(
                FindingKind::ManifestEntryRemoved,
                "stream db7-rl9-t1 piece entry 2 (WORM)".to_string()
            )]
        );
        // Its piece is still in WORM, recorded by nothing sealed: beside entry 2.
        let info: Vec<&Finding> = a
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::PieceUnreferenced)
            .collect();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].severity, Severity::Info);
        assert!(info[0].detail.contains("index 2"), "{}", info[0].detail);
        assert!(
            info[0].detail.contains("beside sealed entry 2"),
            "{}",
            info[0].detail
        );
        let rep = fx.verify(false).await;
        assert_eq!(rep.verdict, Verdict::Findings);
        assert_eq!(rep.streams[0].errors, 1);
    }

    #[tokio::test]
    async fn an_edited_entry_is_named() {
        let fx = fixture(6, 3, None).await;
        fx.rewrite_segment(1, |l| {
            // Entry 5: another last commit.
            l[1] = l[1].replace("\"last_commit_scn\":1004", "\"last_commit_scn\":1");
        })
        .await;
        let a = fx.audit().await;
        assert_eq!(
            errors(&a.findings),
            vec![(
                FindingKind::ManifestEntryEdited,
                "stream db7-rl9-t1 piece entry 5 (WORM)".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn a_reordered_pair_is_named() {
        let fx = fixture(6, 3, None).await;
        fx.rewrite_segment(0, |l| l.swap(1, 2)).await;
        let a = fx.audit().await;
        assert_eq!(
            errors(&a.findings),
            vec![(
                FindingKind::ManifestEntryReordered,
                "stream db7-rl9-t1 piece entry 2 (WORM)".to_string()
            )]
        );
    }

    #[tokio::test]
    async fn a_segment_not_matching_its_key_is_a_seal_mismatch() {
        let fx = fixture(6, 3, None).await;
        let k = fx.segments().await.remove(1);
        let text = std::fs::read_to_string(fx.path(&k)).unwrap();
        fx.remove(&k);
        std::fs::write(fx.path(&k), text.replace("1004", "1005")).unwrap();
        let a = fx.audit().await;
        assert_eq!(
            errors(&a.findings),
            vec![(
                FindingKind::ManifestSealMismatch,
                format!("sealed segment {k}")
            )]
        );
        // Its entries are not read: their pieces are recorded by nothing sealed.
        assert_eq!((a.audit.entries.len(), a.unreferenced), (3, 3));
    }

    #[tokio::test]
    async fn a_segment_the_writers_would_refuse_is_named_even_when_its_entries_read() {
        let fx = fixture(4, 2, None).await;
        // Carriage returns: every line still reads as an entry, but the segment is not in
        // the chain's byte form, which the writers' verifier refuses.
        fx.rewrite_segment_text(1, |t| t.replace('\n', "\r\n"))
            .await;
        let a = fx.audit().await;
        let e = errors(&a.findings);
        assert_eq!(
            e,
            vec![(
                FindingKind::ManifestUnreadable,
                "stream db7-rl9-t1 piece (WORM)".to_string()
            )],
            "{:#?}",
            a.findings
        );
        assert!(
            a.findings[0].detail.contains("do not verify"),
            "{}",
            a.findings[0].detail
        );
    }

    #[tokio::test]
    async fn a_hole_in_the_stream_is_a_chain_gap() {
        let fx = fixture(5, 5, Some(3)).await;
        let a = fx.audit().await;
        let e: Vec<&Finding> = a
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].kind, FindingKind::StreamChainGap);
        assert_eq!(e[0].subject, "stream db7-rl9-t1 piece entry 4 (WORM)");
        assert!(
            e[0].detail
                .contains("starts at 5:4096, entry 3 ends the stream at 5:3072"),
            "{}",
            e[0].detail
        );
    }

    #[tokio::test]
    async fn a_missing_piece_is_named() {
        let fx = fixture(4, 2, None).await;
        fx.remove(&fx.entries[2].object_key);
        let rep = fx.verify(false).await;
        assert_eq!(rep.verdict, Verdict::Findings);
        assert_eq!(
            errors(&rep.findings),
            vec![(
                FindingKind::PieceMissing,
                "stream db7-rl9-t1 piece 3 (5:2048 to 5:3072)".to_string()
            )]
        );
        assert_eq!(rep.summary.pieces_checked, 4);
    }

    #[tokio::test]
    async fn pieces_not_sealed_yet_are_info() {
        // Five pieces, a segment sealed every two: the fifth is in the open segment.
        let fx = fixture(5, 2, None).await;
        let a = fx.audit().await;
        assert_eq!(a.unreferenced, 1);
        assert_eq!(a.findings.len(), 1, "{:#?}", a.findings);
        let f = &a.findings[0];
        assert_eq!(
            (f.kind, f.severity),
            (FindingKind::PieceUnreferenced, Severity::Info)
        );
        assert_eq!(
            f.subject,
            format!("stream db7-rl9-t1 piece {}", fx.entries[4].object_key)
        );
        assert!(
            f.detail
                .contains("index 5, 5:4096 to 5:5120, after the last sealed entry (4)"),
            "{}",
            f.detail
        );
        let rep = fx.verify(false).await;
        assert_eq!(rep.verdict, Verdict::Clean, "{}", rep.to_text());
        assert_eq!(
            (rep.summary.pieces_unreferenced, rep.summary.pieces_checked),
            (1, 4)
        );
        // Something under pieces/ that is no piece: still only info, said so.
        fx.store
            .put_immutable(
                &format!("{}/pieces/junk.rvp", stream_prefix(PREFIX, S)),
                std::io::Cursor::new(b"not a piece".to_vec()),
            )
            .await
            .unwrap();
        let a = fx.audit().await;
        assert_eq!(a.unreferenced, 2);
        assert!(
            a.findings.iter().any(|f| f.detail.contains("not a piece")),
            "{:#?}",
            a.findings
        );
    }

    #[tokio::test]
    async fn a_piece_replaced_by_other_bytes_is_caught_by_the_re_hash() {
        let fx = fixture(3, 3, None).await;
        let e = fx.entries[1].clone();
        // Other bytes under its key, of the same size: a piece sealed over other redo.
        let other = seal(
            S,
            2,
            e.prev_piece,
            &[StoredChunk {
                start: e.start(),
                data: vec![0; PIECE],
                commits: vec![CommitMark {
                    xid: Xid {
                        usn: 9,
                        slot: 9,
                        sqn: 9,
                    },
                    scn: Scn(9),
                    time: None,
                    end: e.end(),
                }],
                log_end: false,
            }],
            fx.key.public(),
        )
        .unwrap();
        assert_eq!(other.bytes.len() as u64, e.size);
        fx.remove(&e.object_key);
        std::fs::write(fx.path(&e.object_key), &other.bytes).unwrap();
        let d = deep_check_piece(fx.store.as_ref(), S, &e, None, &HashSet::new())
            .await
            .unwrap();
        assert_eq!(d.result.status, FileStatus::Tampered);
        assert_eq!(
            d.result.findings.iter().map(|f| f.kind).collect::<Vec<_>>(),
            vec![FindingKind::ObjectChecksumMismatch]
        );
        assert!(d.result.findings[0].detail.contains("its chain entry says"));
        let rep = fx.verify(true).await;
        assert_eq!(rep.verdict, Verdict::Findings);
        assert!(
            errors(&rep.findings).contains(&(
                FindingKind::ObjectChecksumMismatch,
                "stream db7-rl9-t1 piece 2 (5:1024 to 5:2048)".into()
            )),
            "{:#?}",
            rep.findings
        );
        assert!(rep.findings.iter().any(|f| f.kind.is_tampering()));
    }

    #[tokio::test]
    async fn a_header_not_matching_its_entry_is_named() {
        let fx = fixture(2, 2, None).await;
        let mut e = fx.entries[1].clone();
        e.chunks = 3;
        let d = deep_check_piece(fx.store.as_ref(), S, &e, None, &HashSet::new())
            .await
            .unwrap();
        assert_eq!(d.result.findings.len(), 1, "{:#?}", d.result.findings);
        assert_eq!(d.result.findings[0].kind, FindingKind::PieceHeaderMismatch);
        assert!(
            d.result.findings[0].detail.contains("chunks 1 (entry: 3)"),
            "{}",
            d.result.findings[0].detail
        );
        // Sealed to another key: the recovery team could not read it.
        let other = RecoveryPrivateKey::generate();
        let d = deep_check_piece(
            fx.store.as_ref(),
            S,
            &fx.entries[0],
            Some(&other),
            &HashSet::new(),
        )
        .await
        .unwrap();
        assert_eq!(d.result.findings.len(), 1);
        assert_eq!(d.result.findings[0].kind, FindingKind::PieceUnreadable);
        assert!(d.result.findings[0].detail.contains("another recovery key"));
    }

    #[tokio::test]
    async fn with_the_key_pieces_are_compared_with_the_archived_log() {
        let fx = fixture(5, 5, None).await;
        fx.archive(&fx.log).await;
        let rep = fx.verify(true).await;
        assert_eq!(rep.verdict, Verdict::Clean, "{}", rep.to_text());
        assert!(rep.findings.is_empty(), "{:#?}", rep.findings);
        let m = &rep.summary;
        assert_eq!((m.manifest_entries, m.objects_deep_verified), (1, 1));
        assert_eq!(
            (m.pieces_cross_checked, m.pieces_cross_check_pending),
            (5, 0)
        );

        // A log altered before it was archived (its record consistent with it): the piece
        // holding the first differing block is named, with the block.
        let fx = fixture(5, 5, None).await;
        let mut altered = fx.log.clone();
        altered[3000] ^= 0x40;
        fx.archive(&altered).await;
        let rep = fx.verify(true).await;
        assert_eq!(rep.verdict, Verdict::Findings);
        let e: Vec<&Finding> = rep
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].kind, FindingKind::ArchiveDiffersFromStream);
        assert_eq!(e[0].subject, "stream db7-rl9-t1 piece 3 (5:2048 to 5:3072)");
        assert!(
            e[0].detail
                .starts_with("block 5 (offset 2560) of thread 1 sequence 5"),
            "{}",
            e[0].detail
        );
        assert_eq!(rep.summary.pieces_cross_checked, 5);
    }

    #[tokio::test]
    async fn pieces_of_a_sequence_not_archived_yet_are_pending() {
        let fx = fixture(3, 3, None).await;
        let rep = fx.verify(true).await;
        assert_eq!(rep.verdict, Verdict::Clean, "{}", rep.to_text());
        assert!(rep.findings.is_empty(), "{:#?}", rep.findings);
        assert_eq!(
            (
                rep.summary.pieces_cross_checked,
                rep.summary.pieces_cross_check_pending
            ),
            (0, 3)
        );
    }

    #[tokio::test]
    async fn the_rolling_schedule_and_the_stream_anchor_hold_between_runs() {
        let fx = fixture(4, 2, None).await;
        let state = fx.root.path().join("state");
        let mut opts = VerifyOptions {
            target: "local".into(),
            prefix: PREFIX.into(),
            local_manifest: None,
            policy: Policy {
                lock_mode: None,
                min_retention: Duration::ZERO,
            },
            deep: DeepMode::Rolling { cycle: 2 },
            parallel: 2,
            collectors: Vec::new(),
            acknowledged: Vec::new(),
            state_dir: Some(state.clone()),
            worm_prefix: Some(PREFIX.into()),
            worm_copies: Vec::new(),
            recovery_key: None,
            incremental: Default::default(),
        };
        let first = verify(Arc::clone(&fx.store), &opts).await;
        assert_eq!(
            first.summary.pieces_deep_verified, 4,
            "never re-hashed: all"
        );
        let second = verify(Arc::clone(&fx.store), &opts).await;
        assert_eq!(second.summary.pieces_deep_verified, 2, "then 1/cycle");
        let s = crate::verify::load_state(&state).unwrap();
        assert_eq!(s.stream_anchors["db7-rl9-t1"].index, 4);
        assert_eq!(s.deep_verified.len(), 4);
        // A chain rewritten wholesale after the anchor: caught.
        let segs = fx.segments().await;
        fx.remove(&segs[1]);
        opts.deep = DeepMode::Off;
        let rep = verify(Arc::clone(&fx.store), &opts).await;
        assert!(
            errors(&rep.findings).contains(&(
                FindingKind::ManifestEntryRemoved,
                "stream db7-rl9-t1 piece entry 4 (WORM)".to_string()
            )),
            "{:#?}",
            rep.findings
        );
    }
}
