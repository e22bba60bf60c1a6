//! The collector's stream store: encrypted, append-only, crash-safe.
//!
//! ```text
//! <dir>/LOCK                          held (flock) while a Store is open: one writer only
//! <dir>/FORMAT                        "redovault collector store, format 2" (format 1, from
//!                                     before the write-ahead file, is rewritten at open)
//! <dir>/streams/<stream>/seg-<n>.rvs  segments of one stream (see segment.rs), <stream> =
//!                                     db<dbid>-rl<resetlogs id>-t<thread>
//! <dir>/wal/wal-<n>                   write-ahead file of the multi-stream syncs since the
//!                                     last checkpoint (see wal.rs); none after a clean close
//! ```
//!
//! ```text
//! sync, 2+ dirty segments:  segments ──write (page cache)──► seg-<n>.rvs   (not fdatasynced)
//!                           their unsynced records ──frames──► wal-<n> ──one fdatasync──► ack
//! sync, 1 dirty segment:    seg-<n>.rvs ──fdatasync──► ack                 (no double write)
//! checkpoint (wal ≥ 64 MiB, before retire, clean close):
//!                           fdatasync every segment with wal-only bytes (all at once),
//!                           remove wal-<n>, fsync wal/; the next multi-stream sync starts
//!                           wal-<n+1>
//! open:                     replay wal-* in order into the segments (every frame written
//!                           again, see wal.rs, then fdatasync), remove wal-*, then read
//!                           the segments as ever
//! ```
//!
//! - [`Store::open`] recovers every stream by reading all its segments, authenticating every
//!   chunk and checking that positions run on without gap. A torn tail of a stream's last
//!   segment (unacknowledged by construction, see `segment.rs`) is reported in
//!   [`RecoveryReport::torn`] and cut off (the file is truncated and fsynced; a segment cut
//!   short in its header is removed). Anything else, corruption in the middle included, is
//!   an error naming the file and the offset; nothing is skipped.
//! - [`Store::append`] writes (not yet durably) redo at the end of a stream. It enforces
//!   continuity: `pos` must be the stream's pending end, or `(seq + 1, 0)` after a log end; a
//!   new stream starts at offset 0 of a log. A resend of bytes already held (after a
//!   reconnect) is compared with them and accepted without storing it twice; different
//!   bytes at a held position are refused ([`StreamStoreError::Divergent`]), and so is a resend
//!   that runs past the end of a held log or ends it early ([`StreamStoreError::Overlap`]).
//!   [`read_range`] reads durable bytes back (authenticated) for such comparisons.
//! - [`Store::sync`] makes every pending append durable and returns the new durable ends.
//!   Only then may an append be acknowledged. Two or more dirty segments: their unsynced
//!   records, byte for byte as sealed, go into one write-ahead file as frames and that one
//!   file is fdatasynced (a group commit over 64 streams is one fdatasync, not 64); one:
//!   its own `fdatasync`. New segment files and directories are fsynced when created.
//! - **Durable** means: fdatasynced in the segment, or in a synced write-ahead frame. Every
//!   segment byte durable only in a frame is in the current write-ahead file (invariant:
//!   for each writer, bytes `fsynced..synced` are framed there); a write-ahead file is
//!   removed only after a checkpoint fdatasynced those segments, and no frame names a
//!   segment that could be gone (retire checkpoints first; a rotation fdatasyncs the
//!   closed segment). Open replays frames before reading segments, so the scan below sees
//!   every acknowledged byte in place and the durable counts in record headers stay true.
//! - A checkpoint costs the batch that meets it (the first once the write-ahead file passed
//!   [`WAL_CHECKPOINT_SIZE`]) one round of segment fdatasyncs, all in flight at once, plus an
//!   unlink and a directory fsync: about one multi-file fdatasync every 64 MiB of redo.
//! - After any write or sync error the store is **failed**: every later append and sync is
//!   refused ([`StreamStoreError::Failed`]) and no fsync is ever retried (a failed fsync may have
//!   dropped the dirty pages: retrying could report success for lost data). A restart
//!   recovers from what is on disk, write-ahead file first. A full disk is the exception
//!   (see [`StreamStoreError::NoSpace`]): the store cuts back to what is durable, writes
//!   the synced frames back into the segments (unconditionally, so no page a failed fsync
//!   dropped is trusted), fdatasyncs them and removes the write-ahead file, whose unsynced
//!   tail must never be replayed.
//! - New appends always go to a segment created by this process: after a restart the last
//!   segment of a stream is never written again, so chunk nonces are never reused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redovault::compress::Level;
use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::LogSeq;

use crate::fs::Fs;
use crate::index::{CommitIndex, CommitQuery};
use crate::segment::{SegmentWriter, WriteError};

mod append;
mod error;
mod layout;
mod open;
mod read;
mod retire;
#[cfg(test)]
mod tests;
mod wal;

use error::{io_err, is_no_space};
use layout::now_unix;
use retire::remove_retired;

pub use append::Appended;
pub use error::StreamStoreError;
pub use layout::{FORMAT_LINE, FORMAT_LINE_1, parse_stream_dir_name, stream_dir_name};
pub use open::{RecoveryReport, TornTail};
pub use read::{MAX_READ_RANGE, RetentionView, StreamSnapshot, held_log, read_range};
pub use retire::{RETIRED_FILE, Retired, read_retired};
pub use wal::{WAL_CHECKPOINT_SIZE, WAL_DIR, WalFrame, WalRecovery, wal_file_name, wal_frames};

/// Tuning of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// A segment is closed (fsynced) and the next one created when a chunk would take it
    /// past this size. 64 MiB: a rotation (two extra fsyncs) every few seconds at 10 MB/s at
    /// most, and at most one segment to read back when a resend is compared.
    pub segment_size: u64,
    /// Longest chunk: appends are split into chunks of at most this many redo bytes
    /// (1 MiB; at most [`MAX_CHUNK_DATA`](crate::segment::MAX_CHUNK_DATA)).
    pub chunk_size: usize,
    /// Compress each chunk's redo at this zstd level where it shrinks (`[store] compress`;
    /// `None`, the default: raw). Also the level of the WORM pieces cut from them.
    pub compress: Option<Level>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            segment_size: 64 << 20,
            chunk_size: 1 << 20,
            compress: None,
        }
    }
}

/// The durable state of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    /// End of the durable redo: everything before it is stored and synced.
    pub end: StreamPos,
    /// The log (sequence) of `end` is complete.
    pub log_end: bool,
    /// The last durable commit: the recovery point.
    pub last_commit: Option<CommitMark>,
}

impl Durable {
    /// Where the next append must start: `end`, or `(seq + 1, 0)` after a log end.
    pub fn resume_pos(&self) -> StreamPos {
        if self.log_end {
            next_seq(self.end)
        } else {
            self.end
        }
    }
}

fn next_seq(p: StreamPos) -> StreamPos {
    StreamPos {
        seq: LogSeq(p.seq.0.saturating_add(1)),
        offset: 0,
    }
}

/// One segment of a stream, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSegment {
    /// Segment number.
    pub number: u64,
    pub path: PathBuf,
    /// Start of its first chunk.
    pub first: Option<StreamPos>,
    /// End of its last chunk.
    pub last_end: Option<StreamPos>,
    /// Bytes written.
    pub len: u64,
    /// Bytes known durable (complete records only).
    pub durable_len: u64,
}

/// The store: every stream of one collector, in one directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    keys: KeyRing,
    fs: Arc<dyn Fs>,
    opts: StoreOptions,
    streams: BTreeMap<StreamId, StreamState>,
    dirty: BTreeSet<StreamId>,
    failed: Option<String>,
    recovery: RecoveryReport,
    /// The write-ahead file of the multi-stream syncs since the last checkpoint.
    wal: Option<wal::Wal>,
    /// Number of the next write-ahead file.
    wal_next: u64,
    /// Checkpoint once the write-ahead file is this long ([`WAL_CHECKPOINT_SIZE`]; tests
    /// lower it).
    wal_limit: u64,
    /// Write-ahead bytes written and checkpoints made by this process.
    wal_bytes: u64,
    wal_checkpoints: u64,
    _lock: File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    end: StreamPos,
    log_end: bool,
    last_commit: Option<CommitMark>,
}

impl Tip {
    pub(super) fn durable(&self) -> Durable {
        Durable {
            end: self.end,
            log_end: self.log_end,
            last_commit: self.last_commit,
        }
    }
}

#[derive(Debug)]
struct StreamState {
    dir: PathBuf,
    segments: Vec<StoredSegment>,
    /// The segment this process created and appends to (always the last of `segments`).
    writer: Option<SegmentWriter>,
    durable: Tip,
    pending: Tip,
    pending_commits: Vec<CommitMark>,
    /// End offset of every completed log sequence.
    seq_ends: BTreeMap<LogSeq, u64>,
    index: CommitIndex,
    /// `pending` describes written redo (false for a stream with no chunk yet).
    has_data: bool,
    /// `durable` describes durable redo.
    durable_has_data: bool,
}

impl Store {
    /// What open found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Bytes written to write-ahead files and checkpoints made since open (metrics).
    pub fn wal_stats(&self) -> (u64, u64) {
        (self.wal_bytes, self.wal_checkpoints)
    }

    /// Clean close: a checkpoint (every segment holding bytes durable only in the
    /// write-ahead file is fdatasynced, the file removed), so the next open replays nothing.
    pub fn close(mut self) -> Result<(), StreamStoreError> {
        self.check_failed()?;
        self.checkpoint().map_err(|e| self.fail(e))
    }

    /// The first write or sync error, once the store has failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Every stream that holds redo.
    pub fn streams(&self) -> Vec<StreamId> {
        self.streams
            .iter()
            .filter(|(_, s)| s.durable_known())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The durable state of a stream (`None`: nothing durable yet).
    pub fn durable(&self, stream: StreamId) -> Option<Durable> {
        let s = self.streams.get(&stream)?;
        s.durable_known().then(|| s.durable.durable())
    }

    /// Durable commits of a stream (see [`CommitQuery`]), at most `limit`.
    pub fn commits(&self, stream: StreamId, query: &CommitQuery, limit: usize) -> Vec<CommitMark> {
        self.streams
            .get(&stream)
            .map(|s| s.index.query(query, limit))
            .unwrap_or_default()
    }

    /// The segments of a stream.
    pub fn segments(&self, stream: StreamId) -> Vec<StoredSegment> {
        self.streams
            .get(&stream)
            .map(|s| s.segments.clone())
            .unwrap_or_default()
    }
}

impl StreamState {
    pub(super) fn empty(
        dir: PathBuf,
        segments: Vec<StoredSegment>,
        seq_ends: BTreeMap<LogSeq, u64>,
        index: CommitIndex,
        tip: Option<Tip>,
    ) -> StreamState {
        let t = tip.unwrap_or(Tip {
            end: StreamPos::default(),
            log_end: false,
            last_commit: None,
        });
        StreamState {
            dir,
            segments,
            writer: None,
            durable: t,
            pending: t,
            pending_commits: Vec::new(),
            seq_ends,
            index,
            has_data: tip.is_some(),
            durable_has_data: tip.is_some(),
        }
    }

    pub(super) fn durable_known(&self) -> bool {
        self.durable_has_data
    }

    /// Syncs and closes the current segment (if any) and creates the next one.
    pub(super) fn rotate(
        &mut self,
        fs: &dyn Fs,
        keys: &KeyRing,
        id: StreamId,
        compress: Option<Level>,
    ) -> Result<(), WriteError> {
        if let Some(w) = self.writer.as_mut() {
            // A closed segment is durable before its successor exists: damage in any
            // segment but the last is then corruption, never a torn write.
            w.sync()?;
            let synced = w.synced_len();
            if let Some(info) = self.segments.last_mut() {
                info.durable_len = synced;
            }
        }
        let number = self
            .segments
            .last()
            .map_or(1, |s| s.number.saturating_add(1));
        let w = SegmentWriter::create(fs, &self.dir, keys, id, number, now_unix())?
            .with_compression(compress);
        self.segments.push(StoredSegment {
            number,
            path: w.path().to_path_buf(),
            first: None,
            last_end: None,
            len: w.len(),
            durable_len: w.len(),
        });
        self.writer = Some(w);
        Ok(())
    }
}
