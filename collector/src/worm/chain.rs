//! Each stream's record of its pieces: the watcher's hash-chained manifest format
//! (`redovault::manifest`: canonical JSON lines, `index`, `prev`), one [`PieceEntry`] per
//! piece, kept in `<store dir>/worm/<stream>/` and sealed into WORM segment by segment under
//! `<prefix>/streams/<stream>/manifest/`.

use std::path::{Path, PathBuf};

use redovault::manifest::{ChainEntry, ManifestError, Sha256Digest, read_chain_entries};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn};
use serde::{Deserialize, Serialize};

/// One piece in WORM. Field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PieceEntry {
    /// Position in the stream's chain, from 1 (also in the piece's header).
    pub index: u64,
    pub db_id: DbId,
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
    pub start_seq: u32,
    /// Start: byte offset.
    pub start_offset: u64,
    /// End: log sequence of the last chunk.
    pub end_seq: u32,
    /// End: byte offset after the last chunk's redo.
    pub end_offset: u64,
    /// The last chunk ends its log.
    pub log_end: bool,
    /// Chunks in the piece.
    pub chunks: u32,
    /// Redo bytes in the piece.
    pub redo_bytes: u64,
    /// Commits that end in the piece.
    pub commits: u64,
    /// The piece's last commit: SCN.
    pub last_commit_scn: Option<u64>,
    /// Its transaction (`usn.slot.sqn`).
    pub last_commit_xid: Option<String>,
    /// Its commit time (Unix seconds, the database's clock).
    pub last_commit_time: Option<i64>,
    pub object_key: String,
    /// The object's size.
    pub size: u64,
    /// The object's SHA-256 (also in its key).
    pub sha256: Sha256Digest,
    /// SHA-256 of the previous piece object (as in the piece's header).
    pub prev_piece: Sha256Digest,
    /// Version id (None for a local store).
    pub version_id: Option<String>,
    /// Retain-until confirmed by HEAD (RFC 3339).
    pub retain_until: Option<String>,
    /// When its first byte was seen durable on the collector (RFC 3339, collector clock).
    pub durable_at: String,
    /// When the object was confirmed in WORM (RFC 3339, collector clock).
    pub uploaded_at: String,
    /// SHA-256 of the previous entry's canonical line.
    pub prev: Sha256Digest,
}

impl ChainEntry for PieceEntry {
    fn index(&self) -> u64 {
        self.index
    }

    fn prev(&self) -> Sha256Digest {
        self.prev
    }
}

impl PieceEntry {
    pub fn stream(&self) -> StreamId {
        StreamId {
            db_id: self.db_id,
            resetlogs_id: self.resetlogs_id,
            thread: redovault_redo::position::ThreadId(self.thread),
        }
    }

    /// Where the piece starts.
    pub fn start(&self) -> StreamPos {
        StreamPos {
            seq: LogSeq(self.start_seq),
            offset: self.start_offset,
        }
    }

    /// Where the piece's redo ends.
    pub fn end(&self) -> StreamPos {
        StreamPos {
            seq: LogSeq(self.end_seq),
            offset: self.end_offset,
        }
    }

    /// Where the stream continues after it.
    pub fn next_start(&self) -> StreamPos {
        self.end().after(0, self.log_end)
    }

    /// The piece's last commit, if it holds one.
    pub fn last_commit(&self) -> Option<(Scn, String, Option<i64>)> {
        Some((
            Scn(self.last_commit_scn?),
            self.last_commit_xid.clone()?,
            self.last_commit_time,
        ))
    }

    /// The commit fields of `c`.
    pub fn commit_fields(c: Option<&CommitMark>) -> (Option<u64>, Option<String>, Option<i64>) {
        match c {
            Some(c) => (Some(c.scn.0), Some(c.xid.to_string()), c.time),
            None => (None, None, None),
        }
    }
}

/// The local chain directory of a stream.
pub fn chain_dir(store_dir: &Path, stream: StreamId) -> PathBuf {
    store_dir.join("worm").join(stream.to_string())
}

/// What WORM holds of a stream, from its local chain (read-only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WormState {
    /// Pieces recorded.
    pub pieces: u64,
    /// Where the stream continues after the last piece.
    pub next: Option<StreamPos>,
    /// The last commit in WORM: SCN, XID, time.
    pub last_commit: Option<(Scn, String, Option<i64>)>,
    /// When the last piece was confirmed.
    pub last_upload: Option<String>,
}

/// Reads a stream's local chain (verifying it) into its [`WormState`]; a missing chain is
/// an empty state.
pub fn read_state(store_dir: &Path, stream: StreamId) -> Result<WormState, ManifestError> {
    let entries: Vec<PieceEntry> = read_chain_entries(&chain_dir(store_dir, stream))?;
    let mut st = WormState::default();
    for e in &entries {
        st.pieces += 1;
        st.next = Some(e.next_start());
        if let Some(c) = e.last_commit() {
            st.last_commit = Some(c);
        }
        st.last_upload = Some(e.uploaded_at.clone());
    }
    Ok(st)
}
