//! The tailer: turns the online redo logs of one thread into an ordered stream of validated
//! chunks, each with the commits it completes.
//!
//! States per log (a stream, one thread of one incarnation, is its logs in sequence order):
//!
//! ```text
//!            ┌──────────── no group holds seq yet ───────────┐
//!            ▼                                               │
//!  ┌──► OPEN seq ──online group holds seq──► READ online ────┼──► (block zero/stale: write point)
//!  │         │                                │   ▲          │        │ re-read block 1:
//!  │         │ gone online (a group holds a   │   │ valid    │        │  still CURRENT → WAIT (poll / file event)
//!  │         │ higher seq) ─► archive?        │   └──────────┘        │  complete (nab) → READ up to nab
//!  │         ▼                                │ newer seq in block or │  reused (newer seq) → ARCHIVE
//!  │   WAIT ARCHIVE ◄─── no valid copy ───────┴─ header ──────────────┘
//!  │     │  (archive_wait → SequenceLost)     │
//!  │     ▼ valid archived copy                │ bad checksum: re-read torn_retries times,
//!  │   READ archive ──────────────────────────┤ then other members, then the archive,
//!  │                                          │ then Damaged (file and block named)
//!  └──── seq + 1 ◄── nab reached: chunk with log_end ◄──┘
//! ```
//!
//! Invariants:
//! - Every byte of each log is shipped from offset 0 (blocks 0 and 1, the headers, first), in
//!   order, as whole blocks that passed validation (block number, sequence, checksum); no
//!   byte is shipped twice or skipped.
//! - A **never written** (zero) or **stale** (older sequence) block of a CURRENT log is its
//!   write point: wait (`poll`, woken early by file events) and read again.
//! - A **bad checksum** may be a torn write in progress: re-read `torn_retries` times (after
//!   100 µs, then doubling delays up to `torn_delay`), then the group's other members, then
//!   the archived copy; only then [`TailError::Damaged`]. The same for a wrong block number
//!   or format byte, and a zero or stale block before the end of a complete log.
//! - A **newer sequence** in a block or in block 1: LGWR reused the group while the tailer
//!   was behind; the rest comes from the archived copy (matched by header and validated
//!   whole, see [`crate::archive`]), waiting up to `archive_wait` for ARCn.
//! - **Switch**: block 1 shows the log complete (next SCN and nab set): blocks up to nab are
//!   read, the log's last chunk carries `log_end`, then the next sequence is looked for.
//! - **Commits**: every shipped byte goes through a [`Decoder`] (one per log); each 5.4 that
//!   is a commit (not a rollback) becomes a [`CommitMark`] whose `end` is the end of the block
//!   holding the end of the commit record, in the chunk shipping that block: a mark is never
//!   ahead of the bytes that complete it.
//! - **Resuming**: [`Tailer::new`] starts at any chunk end a previous run shipped: the log of
//!   `pos.seq` is found again (online or archived), its blocks before `pos` are read and
//!   decoded but not shipped (so a commit straddling `pos` is still found), and shipping
//!   resumes at exactly `pos`; at the very end of a complete log, a chunk without bytes
//!   carries `log_end` again.
//!
//! Driving it: [`Tailer::poll_chunk`] does one non-blocking step (it sleeps only inside
//! torn-block re-reads); [`Tailer::spawn`] runs it on a dedicated thread that sends chunks
//! into a bounded channel and waits `poll` (or a file event) when idle;
//! [`TailHandle::next_chunk`] receives them (cancel-safe).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::{Decoder, Endian, LogSeq, ThreadId};
use tracing::info;

use crate::archive::{ArchiveDirs, ArchivedLog};
use crate::config::{LogSources, TailConfig};
use crate::online::{self, OnlineLogs};

mod error;
mod io;
mod step;
#[cfg(test)]
mod tests;
mod thread;

pub use error::TailError;
pub use thread::TailHandle;

/// Smallest read at a write point, in blocks; doubled while whole windows are valid.
const MIN_WINDOW: u32 = 8;

/// Shortest interval between two scans of the archive destinations for the same log.
const ARCHIVE_RESCAN: Duration = Duration::from_millis(100);

/// Longest sleep of the tail thread between two checks of its cancellation token.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A run of validated redo of one stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailChunk {
    pub stream: StreamId,
    /// Where `bytes` start (the previous chunk's end, or `(seq, 0)` for a new log).
    pub pos: StreamPos,
    /// Whole validated blocks (empty only in a chunk that just carries `log_end`).
    pub bytes: Bytes,
    /// The commits whose records end in these bytes, in log order.
    pub commits: Vec<CommitMark>,
    /// Set when this chunk reaches the end of its log: the log's size in bytes (nab × block
    /// size). The next chunk starts at `(seq + 1, 0)`.
    pub log_end: Option<u64>,
}

impl TailChunk {
    /// The position just after `bytes`.
    pub fn end(&self) -> StreamPos {
        StreamPos {
            seq: self.pos.seq,
            offset: self.pos.offset + self.bytes.len() as u64,
        }
    }

    /// The last commit of the chunk.
    pub fn last_commit(&self) -> Option<&CommitMark> {
        self.commits.last()
    }
}

/// Counters of one tailer (exported as `redovault_extractor_*` metrics by the daemon).
#[derive(Debug, Default)]
pub struct TailStats {
    /// Chunks produced (`redovault_extractor_chunks_total`).
    pub chunks: AtomicU64,
    /// Bytes shipped (`redovault_extractor_shipped_bytes_total`).
    pub bytes: AtomicU64,
    /// Commit marks produced (`redovault_extractor_commits_total`).
    pub commits: AtomicU64,
    /// Re-reads of a block whose checksum failed (`redovault_extractor_torn_rereads_total`).
    pub torn_rereads: AtomicU64,
    /// Blocks taken from another member or copy than the preferred one
    /// (`redovault_extractor_member_fallbacks_total`).
    pub fallbacks: AtomicU64,
    /// Logs (or rests of logs) read from an archived copy
    /// (`redovault_extractor_archive_reads_total`).
    pub archive_reads: AtomicU64,
    /// Logs shipped to their end (`redovault_extractor_logs_completed_total`).
    pub logs_completed: AtomicU64,
    /// Record-level decode problems (`redovault_extractor_decode_errors_total`).
    pub decode_errors: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Follows the redo stream of one thread (see the module documentation).
pub struct Tailer {
    io: Io,
    pos: StreamPos,
    cur: Option<Cursor>,
}

impl std::fmt::Debug for Tailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tailer")
            .field("stream", &self.io.stream)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Tailer {
    /// A tailer of `stream` that ships from `pos` on: `(seq, 0)` for a whole log, or the end
    /// of a chunk a previous run shipped (the checkpoint).
    pub fn new(
        sources: &LogSources,
        opts: TailConfig,
        stream: StreamId,
        pos: StreamPos,
    ) -> Result<Tailer, TailError> {
        opts.check().map_err(TailError::Config)?;
        Ok(Tailer {
            io: Io {
                stream,
                opts,
                online: OnlineLogs::new(&sources.groups),
                archives: ArchiveDirs::new(sources.archive_dirs.clone()),
                stats: Arc::new(TailStats::default()),
                last_archive_scan: None,
                archive_wait: None,
                scratch: Vec::new(),
            },
            pos,
            cur: None,
        })
    }

    /// A tailer of `thread` from the start of its CURRENT online log (found from the headers
    /// alone), for a first start without a checkpoint.
    pub fn at_current(
        sources: &LogSources,
        opts: TailConfig,
        thread: ThreadId,
    ) -> Result<Tailer, TailError> {
        let views = OnlineLogs::new(&sources.groups).scan();
        let found = online::find_current(&views);
        let Some(c) = found.iter().find(|c| c.stream.thread == thread) else {
            let detail = views
                .iter()
                .flat_map(|v| v.members.iter())
                .map(|m| online::describe(&m.path, &m.header))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TailError::NoCurrentLog { thread, detail });
        };
        info!(stream = %c.stream, seq = c.seq.0, group = c.group + 1, state = c.state.as_str(),
            "starting at the current online log");
        Tailer::new(
            sources,
            opts,
            c.stream,
            StreamPos {
                seq: c.seq,
                offset: 0,
            },
        )
    }

    pub fn stream(&self) -> StreamId {
        self.io.stream
    }

    /// The position of the next byte to ship.
    pub fn position(&self) -> StreamPos {
        self.pos
    }

    pub fn stats(&self) -> Arc<TailStats> {
        self.io.stats.clone()
    }

    /// The files to watch for events: every online member, every archive destination.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = (0..self.io.online.len())
            .flat_map(|g| self.io.online.members(g).iter().map(|m| m.path.clone()))
            .collect();
        v.extend(self.io.archives.dirs().iter().cloned());
        v
    }

    /// One step: reads what is new (at most `max_chunk` bytes) and returns it as a chunk, or
    /// `Ok(None)` when there is nothing new yet (the caller waits and calls again). After an
    /// error the position is unchanged; calling again retries.
    pub fn poll_chunk(&mut self) -> Result<Option<TailChunk>, TailError> {
        let r = self.step();
        if r.is_err() {
            // Bytes read in this step are not shipped: the next call opens the log again at
            // the unchanged position.
            self.cur = None;
        }
        r
    }
}

/// Where the blocks of the log being read come from.
#[derive(Debug)]
enum Source {
    /// An online group: in-sync member indexes, the preferred one first.
    Online { group: usize, members: Vec<usize> },
    /// A validated archived copy.
    Archive(Box<ArchivedLog>),
}

/// The log being read.
struct Cursor {
    seq: LogSeq,
    block_size: u32,
    endian: Endian,
    source: Source,
    /// Next block to ship.
    next_block: u32,
    /// nab, once the log is known to be complete.
    end: Option<u32>,
    /// Blocks that block 0 declares (reads never go beyond).
    file_blocks: u32,
    decoder: Decoder,
    /// Blocks 0 and 1, to ship first (a log started at offset 0).
    pending_header: Option<Vec<u8>>,
    /// Blocks read at once at the write point.
    window: u32,
    /// Set while the rest of the log must come from an archived copy not found yet.
    need_archive: bool,
}

impl Cursor {
    fn bs(&self) -> usize {
        self.block_size as usize
    }

    fn offset(&self, block: u32) -> u64 {
        u64::from(block) * u64::from(self.block_size)
    }
}

/// How a read of consecutive blocks stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// As many blocks as asked for.
    Full,
    /// nab reached.
    End,
    /// A block not written yet in this cycle of a CURRENT log.
    WritePoint,
    /// The online group now holds a newer sequence.
    Reused,
}

/// What block 1 of the online log says now.
enum Refresh {
    Current,
    Complete(u32),
    Reused,
    Unknown,
}

/// The files and settings: everything but the position.
struct Io {
    stream: StreamId,
    opts: TailConfig,
    online: OnlineLogs,
    archives: ArchiveDirs,
    stats: Arc<TailStats>,
    /// When the archive was last searched, for which sequence.
    last_archive_scan: Option<(LogSeq, Instant)>,
    /// Since when the tailer waits for an archived copy, for which sequence.
    archive_wait: Option<(LogSeq, Instant)>,
    scratch: Vec<u8>,
}

/// One copy of a log: an online member or the archived copy of the cursor.
#[derive(Debug, Clone, Copy)]
enum Replica {
    Member { group: usize, member: usize },
    Archive,
}

enum Resolved {
    Valid(Vec<u8>),
    WritePoint,
    Reused,
}
