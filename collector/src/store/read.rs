//! The read side: snapshots of a stream's durable state, and durable bytes read back from
//! the segments without holding the store.

use std::collections::BTreeMap;
use std::path::Path;

use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::LogSeq;

use super::*;
use crate::segment::{self, ScanError, ScanMode};

/// Everything a rebuild needs, taken from the store so that the rebuild can read the
/// segments without holding the store (see `rebuild.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSnapshot {
    pub stream: StreamId,
    /// Its segments, with their durable lengths (read no further).
    pub segments: Vec<StoredSegment>,
    /// Its durable state.
    pub durable: Durable,
    /// Durable end offset of every completed sequence.
    pub seq_ends: BTreeMap<LogSeq, u64>,
    /// The last durable commit of every sequence that has one, with the count of commits.
    pub seq_commits: BTreeMap<LogSeq, (CommitMark, usize)>,
}

/// A stream as retention sees it (see [`Store::retention_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionView {
    /// Segments, durable state, complete sequences.
    pub snapshot: StreamSnapshot,
    /// Lowest and highest commit SCN per sequence.
    pub scns: BTreeMap<LogSeq, (redovault_redo::position::Scn, redovault_redo::position::Scn)>,
}

impl Store {
    /// A snapshot of a stream's durable state for a rebuild.
    pub fn snapshot(&self, stream: StreamId) -> Option<StreamSnapshot> {
        let s = self.streams.get(&stream)?;
        if !s.durable_known() {
            return None;
        }
        let durable = s.durable.durable();
        let seq_commits = s
            .index
            .sequences()
            .map(|(q, last, count)| (q, (last, count)))
            .collect();
        Some(StreamSnapshot {
            stream,
            segments: s.segments.clone(),
            durable,
            seq_ends: s
                .seq_ends
                .range(..=durable.end.seq)
                .filter(|(q, _)| **q < durable.end.seq || durable.log_end)
                .map(|(q, e)| (*q, *e))
                .collect(),
            seq_commits,
        })
    }

    /// What retention needs to know of a stream: its segments, its durable state, the end
    /// of every complete sequence and the commit SCN range of each sequence.
    pub fn retention_view(&self, stream: StreamId) -> Option<RetentionView> {
        let snap = self.snapshot(stream)?;
        let s = self.streams.get(&stream)?;
        Some(RetentionView {
            scns: s.index.scn_ranges().map(|(q, a, b)| (q, (a, b))).collect(),
            snapshot: snap,
        })
    }

    /// Reads `len` held bytes of `stream` from `pos` (within one log) back from the segments,
    /// pending (written, not yet synced) bytes included: what a resend is compared with.
    pub(super) fn read_stored(
        &self,
        stream: StreamId,
        pos: StreamPos,
        len: u64,
    ) -> Result<Vec<u8>, StreamStoreError> {
        let Some(s) = self.streams.get(&stream) else {
            return Ok(Vec::new());
        };
        read_segments(stream, &s.dir, &s.segments, &self.keys, false, pos, len)
    }

    /// Reads `len` **durable** redo bytes of `stream` from `pos` back from the segments, every
    /// chunk authenticated (see [`read_range`], which does the same from a snapshot without
    /// holding the store).
    pub fn read_range(
        &self,
        stream: StreamId,
        pos: StreamPos,
        len: u64,
    ) -> Result<Vec<u8>, StreamStoreError> {
        let snap = self.snapshot(stream).ok_or(StreamStoreError::NotHeld {
            stream,
            pos,
            len,
            reason: "the stream holds no durable redo".into(),
        })?;
        read_range(&snap, &self.keys, pos, len)
    }
}

/// Most bytes [`read_range`] reads at once: one frame of the link (a Data is never longer),
/// so a comparison never holds more than the Data it checks.
pub const MAX_READ_RANGE: u64 = redovault::wire::frame::MAX_FRAME_LEN as u64;

/// How much of log `seq` the durable state in `snap` holds: `(end offset, complete)`, or
/// `None` when the stream holds nothing of it (before its first retained log, or after its
/// end). A held log runs from offset 0 (a stream starts at offset 0 of a log and retention
/// removes whole logs).
pub fn held_log(snap: &StreamSnapshot, seq: LogSeq) -> Option<(u64, bool)> {
    let d = snap.durable;
    let first = snap.segments.iter().find_map(|g| g.first)?;
    if seq < first.seq || seq > d.end.seq {
        return None;
    }
    if seq == d.end.seq {
        return Some((d.end.offset, d.log_end));
    }
    snap.seq_ends.get(&seq).map(|e| (*e, true))
}

/// Reads `len` durable redo bytes of the stream of `snap` from `pos` (within log `pos.seq`)
/// back from its segments, every chunk authenticated with `keys`. Works from a snapshot, so
/// the caller need not hold the store (segments are append-only and read only up to their
/// durable length; a segment retired meanwhile is an I/O error, never wrong bytes).
///
/// Bounded: at most [`MAX_READ_RANGE`] bytes, allocated only once the range is known to be
/// held; the scan of a segment stops as soon as the range is complete.
pub fn read_range(
    snap: &StreamSnapshot,
    keys: &KeyRing,
    pos: StreamPos,
    len: u64,
) -> Result<Vec<u8>, StreamStoreError> {
    let stream = snap.stream;
    let not_held = |reason: String| StreamStoreError::NotHeld {
        stream,
        pos,
        len,
        reason,
    };
    if len > MAX_READ_RANGE {
        return Err(not_held(format!(
            "longer than the {MAX_READ_RANGE} bytes read at once"
        )));
    }
    let Some((held_end, _)) = held_log(snap, pos.seq) else {
        return Err(not_held(format!("log {} is not held", pos.seq)));
    };
    if pos.offset.checked_add(len).is_none_or(|e| e > held_end) {
        return Err(not_held(format!(
            "log {} is held up to offset {held_end}",
            pos.seq
        )));
    }
    let dir = snap
        .segments
        .first()
        .and_then(|g| g.path.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    read_segments(stream, &dir, &snap.segments, keys, true, pos, len)
}

/// Why a segment scan of [`read_segments`] stopped.
pub(super) enum ReadStop {
    /// The range is complete.
    Full,
    /// The segment could not be read or authenticated.
    Scan(StreamStoreError),
}

impl From<ScanError> for ReadStop {
    fn from(e: ScanError) -> ReadStop {
        ReadStop::Scan(e.into())
    }
}

/// Collects `len` bytes of log `pos.seq` from `pos` out of `segments` (each read up to its
/// durable length when `durable_only`, else up to what was written). The caller checked
/// that `len` is bounded.
pub(super) fn read_segments(
    stream: StreamId,
    dir: &Path,
    segments: &[StoredSegment],
    keys: &KeyRing,
    durable_only: bool,
    pos: StreamPos,
    len: u64,
) -> Result<Vec<u8>, StreamStoreError> {
    let want_end = pos.offset.saturating_add(len);
    let to = StreamPos {
        seq: pos.seq,
        offset: want_end,
    };
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    for seg in segments {
        if out.len() as u64 == len {
            break;
        }
        let (Some(first), Some(last_end)) = (seg.first, seg.last_end) else {
            continue;
        };
        if first >= to || last_end <= pos {
            continue;
        }
        let limit = if durable_only {
            seg.durable_len
        } else {
            seg.len
        };
        let scanned =
            segment::scan::<ReadStop>(&seg.path, keys, ScanMode::Strict, Some(limit), |_, c| {
                if c.start.seq != pos.seq {
                    return Ok(());
                }
                let have = pos.offset.saturating_add(out.len() as u64);
                let c_end = c.start.offset.saturating_add(c.data.len() as u64);
                let lo = c.start.offset.max(have);
                let hi = c_end.min(want_end);
                if lo < hi && lo == have {
                    let a = usize::try_from(lo - c.start.offset).unwrap_or(usize::MAX);
                    let b = usize::try_from(hi - c.start.offset).unwrap_or(usize::MAX);
                    if let Some(part) = c.data.get(a..b) {
                        out.extend_from_slice(part);
                    }
                }
                if out.len() as u64 == len {
                    return Err(ReadStop::Full);
                }
                Ok(())
            });
        match scanned {
            Ok(_) | Err(ReadStop::Full) => {}
            Err(ReadStop::Scan(e)) => return Err(e),
        }
    }
    if out.len() as u64 != len {
        return Err(StreamStoreError::Corrupt {
            file: dir.to_path_buf(),
            offset: 0,
            reason: format!(
                "stream {stream}: held redo {pos}..+{len} could not be read back ({} bytes found)",
                out.len()
            ),
        });
    }
    Ok(out)
}
