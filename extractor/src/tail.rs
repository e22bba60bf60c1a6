//! The tailer: turns the online redo logs of one thread into an ordered stream of validated
//! chunks, each with the commits it completes.
//!
//! A stream (one thread of one database incarnation) is the concatenation of its logs in
//! sequence order; the tailer ships every byte of each log from offset 0 (blocks 0 and 1,
//! the headers, first), in order, as whole blocks that passed validation (block number,
//! sequence, checksum), and never ships a byte twice or skips one.
//!
//! # States (per log)
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
//! - **Never written** (zero) and **stale** (older sequence) blocks of a CURRENT log are its
//!   write point: the tailer waits (`poll`, woken early by file events) and reads again.
//! - **Bad checksum** may be a torn write in progress: the block is re-read `torn_retries`
//!   times (after 100 µs, then doubling delays up to `torn_delay`); then the other members of the group are tried, then the
//!   archived copy; only then is it [`TailError::Damaged`]. The same holds for a wrong block
//!   number or format byte, and for a zero or stale block before the end of a complete log.
//! - **Newer sequence** in a block or in block 1: LGWR reused the group while the tailer was
//!   behind; the rest of the log is read from its archived copy (matched by header and
//!   validated whole, see [`crate::archive`]), waiting up to `archive_wait` for ARCn.
//! - **Switch**: when block 1 shows the log complete (next SCN and nab set), the blocks up to
//!   nab are read and the last chunk of the log carries `log_end`; the next sequence is then
//!   looked for in the groups (and the archives).
//!
//! # Commits
//!
//! Every shipped byte also goes through a [`Decoder`] (one per log). Each 5.4 that is a
//! commit (not a rollback) becomes a [`CommitMark`] whose `end` is the end of the block that
//! holds the end of the commit record, in the chunk that ships that block: a mark is never
//! ahead of the bytes that complete it.
//!
//! # Resuming
//!
//! [`Tailer::new`] starts at any position a previous run shipped up to (a chunk end): the
//! log of `pos.seq` is found again (online or archived), its blocks before `pos` are read
//! and decoded but not shipped (so a commit whose record straddles `pos` is still found),
//! and shipping resumes at exactly `pos`. A position at the very end of a complete log yields
//! a chunk without bytes that carries `log_end` again.
//!
//! # Driving it
//!
//! [`Tailer::poll_chunk`] does one non-blocking step (it sleeps only inside torn-block
//! re-reads). [`Tailer::spawn`] runs it on a dedicated thread that sends chunks into a
//! bounded channel and waits `poll` (or until a file event) when there is nothing new;
//! [`TailHandle::next_chunk`] receives them (cancel-safe).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redovault::wire::{CommitMark, StreamId, StreamPos, latency};
use redovault_redo::block::classify;
use redovault_redo::txn::commit_of;
use redovault_redo::{BlockState, Decoder, Endian, Event, LogSeq, Opcode, ThreadId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::archive::{ArchiveDirs, ArchivedLog, Lookup};
use crate::config::{LogSources, TailConfig};
use crate::online::{self, LogHeader, OnlineLogs, read_full_at};

/// Smallest read at a write point, in blocks; doubled while whole windows are valid.
const MIN_WINDOW: u32 = 8;

/// Shortest interval between two scans of the archive destinations for the same log.
const ARCHIVE_RESCAN: Duration = Duration::from_millis(100);

/// Longest sleep of the tail thread between two checks of its cancellation token.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// A run of validated redo of one stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The stream.
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

impl Chunk {
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

/// Why the tailer cannot go on. Each names the stream, and the files and blocks involved.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The tail settings are out of range.
    #[error("tail settings: {0}")]
    Config(String),
    /// No group holds a log of the thread.
    #[error("no online log of thread {thread} found: {detail}")]
    NoCurrentLog {
        /// The thread asked for.
        thread: ThreadId,
        /// What the groups hold.
        detail: String,
    },
    /// A block is bad in every copy of its log (online members and archived copies).
    #[error(
        "stream {stream}: block {block} (byte offset {offset}) of sequence {seq} is damaged in every copy: {}",
        copies_text(.copies)
    )]
    Damaged {
        /// Stream.
        stream: StreamId,
        /// Sequence.
        seq: LogSeq,
        /// Block number.
        block: u32,
        /// Byte offset of the block in the log.
        offset: u64,
        /// Every copy tried, with what was found there.
        copies: Vec<(PathBuf, String)>,
    },
    /// The online log was reused before it was read, and no valid archived copy appeared.
    #[error(
        "stream {stream}: sequence {seq} was overwritten online before byte {offset} was read, and no valid archived copy appeared in {dirs:?} within {waited:?}{}",
        rejected_text(.rejected)
    )]
    SequenceLost {
        /// Stream.
        stream: StreamId,
        /// Sequence.
        seq: LogSeq,
        /// First byte not shipped.
        offset: u64,
        /// Archive destinations searched.
        dirs: Vec<PathBuf>,
        /// How long the tailer waited.
        waited: Duration,
        /// Archived copies found but rejected, with why.
        rejected: Vec<(PathBuf, String)>,
    },
    /// The start position does not fit the log (not a block boundary, or beyond its end).
    #[error("stream {stream}: cannot start at {pos}: {detail}")]
    BadPosition {
        /// Stream.
        stream: StreamId,
        /// The position.
        pos: StreamPos,
        /// Why.
        detail: String,
    },
    /// A log contradicts itself or what was already shipped.
    #[error("stream {stream}: {path}: {detail}")]
    Inconsistent {
        /// Stream.
        stream: StreamId,
        /// The file.
        path: PathBuf,
        /// What contradicts what.
        detail: String,
    },
}

fn copies_text(copies: &[(PathBuf, String)]) -> String {
    copies
        .iter()
        .map(|(p, s)| format!("{}: {s}", p.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn rejected_text(rejected: &[(PathBuf, String)]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" (rejected: {})", copies_text(rejected))
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

    /// The stream.
    pub fn stream(&self) -> StreamId {
        self.io.stream
    }

    /// The position of the next byte to ship.
    pub fn position(&self) -> StreamPos {
        self.pos
    }

    /// The counters.
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
    pub fn poll_chunk(&mut self) -> Result<Option<Chunk>, TailError> {
        let r = self.step();
        if r.is_err() {
            // Bytes read in this step are not shipped: the next call opens the log again at
            // the unchanged position.
            self.cur = None;
        }
        r
    }

    fn step(&mut self) -> Result<Option<Chunk>, TailError> {
        if self.cur.is_none() && !self.open()? {
            return Ok(None);
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(None);
        };
        let start = self.pos;
        let bs = cur.bs();
        let max_blocks = (self.io.opts.max_chunk as usize / bs).max(2) as u32;
        let mut out: Vec<u8> = Vec::new();
        if let Some(h) = cur.pending_header.take() {
            out.extend_from_slice(&h);
        }
        if cur.need_archive && !self.io.switch_to_archive(cur)? {
            return self.finish_chunk(start, out);
        }
        loop {
            let room = max_blocks.saturating_sub((out.len() / bs) as u32);
            if room == 0 {
                break;
            }
            match self.io.read_into(cur, &mut out, room)? {
                Stop::Full | Stop::End => break,
                Stop::WritePoint => match self.io.refresh(cur)? {
                    Refresh::Complete(nab) => {
                        debug!(stream = %self.io.stream, seq = cur.seq.0, nab, "log switched");
                        cur.end = Some(nab);
                    }
                    Refresh::Current | Refresh::Unknown => break,
                    Refresh::Reused => {
                        if !self.io.switch_to_archive(cur)? {
                            break;
                        }
                    }
                },
                Stop::Reused => {
                    if !self.io.switch_to_archive(cur)? {
                        break;
                    }
                }
            }
        }
        self.finish_chunk(start, out)
    }

    /// Decodes the new bytes, builds the chunk and moves the position.
    fn finish_chunk(&mut self, start: StreamPos, out: Vec<u8>) -> Result<Option<Chunk>, TailError> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(None);
        };
        let mut commits = Vec::new();
        if !out.is_empty() {
            cur.decoder.feed(&out);
            drain(
                &mut cur.decoder,
                cur.seq,
                u64::from(cur.block_size),
                Some(&mut commits),
                &self.io.stats,
                self.io.stream,
            )?;
        }
        let end_reached = cur.end.is_some_and(|e| cur.next_block >= e);
        if out.is_empty() && !end_reached {
            return Ok(None);
        }
        let end = StreamPos {
            seq: start.seq,
            offset: start.offset + out.len() as u64,
        };
        let log_end = end_reached.then(|| cur.offset(cur.next_block));
        let stats = &self.io.stats;
        bump(&stats.chunks, 1);
        bump(&stats.bytes, out.len() as u64);
        bump(&stats.commits, commits.len() as u64);
        debug!(stream = %self.io.stream, pos = %start, bytes = out.len(), commits = commits.len(),
            log_end, "chunk");
        if end_reached {
            bump(&stats.logs_completed, 1);
            info!(stream = %self.io.stream, seq = start.seq.0, size = log_end,
                "log shipped to its end");
            self.cur = None;
            self.pos = StreamPos {
                seq: LogSeq(start.seq.0.saturating_add(1)),
                offset: 0,
            };
        } else {
            self.pos = end;
        }
        Ok(Some(Chunk {
            stream: self.io.stream,
            pos: start,
            bytes: Bytes::from(out),
            commits,
            log_end,
        }))
    }

    /// Finds the log of `pos.seq` (online, else archived) and, for a position inside it, reads
    /// and decodes the part already shipped. `Ok(false)`: not available yet.
    fn open(&mut self) -> Result<bool, TailError> {
        let (seq, offset) = (self.pos.seq, self.pos.offset);
        let stream = self.io.stream;
        let views = self.io.online.scan();
        let (source, header) = match online::locate(&views, stream, seq) {
            Some(l) if !l.members.is_empty() => (
                Source::Online {
                    group: l.group,
                    members: l.members,
                },
                l.header,
            ),
            _ => {
                let gone = online::highest_seq(&views, stream).is_some_and(|h| h > seq);
                match self.io.find_archive(seq) {
                    Some(Lookup::Found(a)) => {
                        bump(&self.io.stats.archive_reads, 1);
                        info!(%stream, seq = seq.0, path = %a.path.display(),
                            "reading an archived log (not online any more)");
                        let h = a.header.clone();
                        (Source::Archive(a), h)
                    }
                    Some(Lookup::Missing { rejected }) if gone => {
                        self.io.wait_for_archive(seq, offset, rejected)?;
                        return Ok(false);
                    }
                    _ => {
                        debug!(%stream, seq = seq.0, "waiting for the log to start");
                        return Ok(false);
                    }
                }
            }
        };
        self.io.archive_wait = None;
        let bs = u64::from(header.block_size());
        let bad = |detail: String| TailError::BadPosition {
            stream,
            pos: self.pos,
            detail,
        };
        if offset % bs != 0 || offset == bs {
            return Err(bad(format!(
                "not a block boundary after the headers (block size {bs})"
            )));
        }
        let mut cur = Cursor {
            seq,
            block_size: header.block_size(),
            endian: header.file.endian,
            source,
            next_block: 2,
            end: header.end_block(),
            file_blocks: header.file.block_count.saturating_add(1),
            decoder: Decoder::new(),
            pending_header: Some(header.raw.clone()),
            window: MIN_WINDOW,
            need_archive: false,
        };
        if let Some(end) = cur.end
            && (end < 2 || end > cur.file_blocks)
        {
            return Err(TailError::Inconsistent {
                stream,
                path: self.io.source_path(&cur),
                detail: format!(
                    "nab {end} does not fit the {} blocks of the file",
                    cur.file_blocks
                ),
            });
        }
        info!(%stream, seq = seq.0, from = offset, source = %self.io.source_path(&cur).display(),
            "log opened");
        if offset == 0 {
            self.cur = Some(cur);
            return Ok(true);
        }
        // Resume inside the log: decode (without shipping) what was shipped before.
        let target = u32::try_from(offset / bs).map_err(|_| bad("offset too large".into()))?;
        if target > cur.file_blocks || cur.end.is_some_and(|e| target > e) {
            return Err(bad(format!(
                "the log has {} blocks",
                cur.end.unwrap_or(cur.file_blocks)
            )));
        }
        if let Some(h) = cur.pending_header.take() {
            cur.decoder.feed(&h);
        }
        let prime = (1 << 20) / cur.bs() as u32;
        while cur.next_block < target {
            let mut buf = Vec::new();
            let want = (target - cur.next_block).min(prime);
            let stop = self.io.read_into(&mut cur, &mut buf, want)?;
            cur.decoder.feed(&buf);
            drain(&mut cur.decoder, seq, bs, None, &self.io.stats, stream)?;
            match stop {
                Stop::Full => {}
                Stop::End => break,
                Stop::WritePoint => match self.io.refresh(&mut cur)? {
                    // Ends before the target: reported below.
                    Refresh::Complete(nab) => cur.end = Some(nab),
                    Refresh::Reused => {
                        if !self.io.switch_to_archive(&mut cur)? {
                            return Ok(false);
                        }
                    }
                    // Block 1 unreadable right now (being rewritten): try again later.
                    Refresh::Unknown => return Ok(false),
                    Refresh::Current => {
                        return Err(bad(format!(
                            "the log is written only up to block {} (byte {})",
                            cur.next_block,
                            cur.offset(cur.next_block)
                        )));
                    }
                },
                Stop::Reused => {
                    if !self.io.switch_to_archive(&mut cur)? {
                        return Ok(false);
                    }
                }
            }
        }
        if cur.next_block != target {
            return Err(bad(format!("the log ends at block {}", cur.next_block)));
        }
        self.cur = Some(cur);
        Ok(true)
    }

    /// Runs the tailer on a dedicated thread until `cancel` is cancelled, the receiver is
    /// dropped, or an error (which is sent, then the thread ends). Chunks go into a channel
    /// of `capacity` (at least 1): a slow receiver holds the tailer back.
    pub fn spawn(self, capacity: usize, cancel: CancellationToken) -> std::io::Result<TailHandle> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = self.io.stream;
        let stats = self.io.stats.clone();
        let token = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tail-{stream}"))
            .spawn(move || self.run(tx, token))?;
        Ok(TailHandle {
            stream,
            rx,
            cancel,
            thread: Some(thread),
            stats,
        })
    }

    fn run(mut self, tx: mpsc::Sender<Result<Chunk, TailError>>, cancel: CancellationToken) {
        let span = tracing::info_span!("tail", stream = %self.io.stream);
        let _g = span.enter();
        let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let _watcher = if self.io.opts.file_events {
            watch(&self.watched_paths(), wake_tx)
        } else {
            None
        };
        let poll = self.io.opts.poll;
        while !cancel.is_cancelled() {
            match self.poll_chunk() {
                Ok(Some(chunk)) => {
                    latency::trace(
                        "tail_chunk",
                        // Keyed as the Data it becomes (`Data::end`), so the stages join.
                        chunk
                            .pos
                            .after(chunk.bytes.len() as u64, chunk.log_end.is_some()),
                        chunk.last_commit().map(|c| c.scn),
                    );
                    if !send(&tx, Ok(chunk), &cancel) {
                        break;
                    }
                }
                Ok(None) => {
                    let until = Instant::now() + poll;
                    loop {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() || cancel.is_cancelled() {
                            break;
                        }
                        if wake_rx.recv_timeout(left.min(CANCEL_CHECK)).is_ok() {
                            while wake_rx.try_recv().is_ok() {}
                            break;
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "tailer stopped");
                    send(&tx, Err(e), &cancel);
                    break;
                }
            }
        }
        debug!("tail thread ends");
    }
}

/// The delay before re-read number `n` (from 1) of a torn block: 100 µs, doubling, at most
/// `max`.
fn torn_backoff(n: u32, max: Duration) -> Duration {
    let first = Duration::from_micros(100);
    first
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(max)
}

/// Sends into the bounded channel, giving up when cancelled or when the receiver is gone.
fn send(
    tx: &mpsc::Sender<Result<Chunk, TailError>>,
    item: Result<Chunk, TailError>,
    cancel: &CancellationToken,
) -> bool {
    futures::executor::block_on(async {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            r = tx.send(item) => r.is_ok(),
        }
    })
}

/// Watches `paths` (files and directories); a write, create, rename or removal wakes the tail
/// thread. Reads (ours included) do not.
fn watch(
    paths: &[PathBuf],
    wake: std::sync::mpsc::SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && matches!(
                ev.kind,
                EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any
            )
        {
            let _ = wake.try_send(());
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "file events unavailable; polling only");
            return None;
        }
    };
    for p in paths {
        if let Err(e) = w.watch(p, RecursiveMode::NonRecursive) {
            debug!(path = %p.display(), error = %e, "not watched");
        }
    }
    Some(w)
}

/// Feeds nothing; polls the decoder dry, collecting commit marks when `marks` is given.
fn drain(
    dec: &mut Decoder,
    seq: LogSeq,
    bs: u64,
    mut marks: Option<&mut Vec<CommitMark>>,
    stats: &TailStats,
    stream: StreamId,
) -> Result<(), TailError> {
    loop {
        let ev = match dec.poll() {
            Ok(Some(ev)) => ev,
            Ok(None) => return Ok(()),
            Err(e) => {
                return Err(TailError::Inconsistent {
                    stream,
                    path: PathBuf::from(format!("sequence {seq}")),
                    detail: e.to_string(),
                });
            }
        };
        match ev {
            Event::Record(r) => {
                let Some(m) = marks.as_deref_mut() else {
                    continue;
                };
                for v in r.vectors() {
                    let v = match v {
                        Ok(v) => v,
                        Err(e) => {
                            bump(&stats.decode_errors, 1);
                            warn!(seq = seq.0, rba = %r.rba, error = %e.detail,
                                "change vector does not fit its record; a commit in it may be missed");
                            break;
                        }
                    };
                    if v.opcode != Opcode::TxnEnd {
                        continue;
                    }
                    match commit_of(&r, &v) {
                        Ok(c) if !c.rollback => m.push(CommitMark {
                            xid: c.xid,
                            scn: c.scn,
                            time: c.unix_time.map(i64::from),
                            end: StreamPos {
                                seq,
                                offset: (u64::from(c.end_block) + 1) * bs,
                            },
                        }),
                        Ok(_) => {}
                        Err(e) => {
                            bump(&stats.decode_errors, 1);
                            warn!(seq = seq.0, error = %e, "unreadable 5.4; a commit may be missed");
                        }
                    }
                }
            }
            Event::Error(e) => {
                bump(&stats.decode_errors, 1);
                warn!(seq = seq.0, error = %e,
                    "redo record problem; the bytes are shipped, a commit in them may be missed");
            }
            _ => {}
        }
    }
}

impl Io {
    fn source_path(&self, cur: &Cursor) -> PathBuf {
        match &cur.source {
            Source::Online { group, members } => members
                .first()
                .and_then(|m| self.online.members(*group).get(*m))
                .map(|m| m.path.clone())
                .unwrap_or_default(),
            Source::Archive(a) => a.path.clone(),
        }
    }

    /// Searches the archives for `seq`, at most once per [`ARCHIVE_RESCAN`] for the same
    /// sequence; `None` when skipped.
    fn find_archive(&mut self, seq: LogSeq) -> Option<Lookup> {
        if let Some((s, at)) = self.last_archive_scan
            && s == seq
            && at.elapsed() < ARCHIVE_RESCAN
        {
            return None;
        }
        self.last_archive_scan = Some((seq, Instant::now()));
        Some(self.archives.find(self.stream, seq))
    }

    /// Notes that the tailer waits for an archived copy; an error once `archive_wait` passed.
    fn wait_for_archive(
        &mut self,
        seq: LogSeq,
        offset: u64,
        rejected: Vec<(PathBuf, String)>,
    ) -> Result<(), TailError> {
        let since = match self.archive_wait {
            Some((s, at)) if s == seq => at,
            _ => {
                warn!(stream = %self.stream, seq = seq.0, offset,
                    "the online log was reused before it was read; waiting for its archived copy");
                let now = Instant::now();
                self.archive_wait = Some((seq, now));
                now
            }
        };
        let waited = since.elapsed();
        if waited >= self.opts.archive_wait {
            return Err(TailError::SequenceLost {
                stream: self.stream,
                seq,
                offset,
                dirs: self.archives.dirs().to_vec(),
                waited,
                rejected,
            });
        }
        Ok(())
    }

    /// Moves the cursor to the archived copy of its log. `Ok(false)`: no copy yet (the cursor
    /// remembers it needs one).
    fn switch_to_archive(&mut self, cur: &mut Cursor) -> Result<bool, TailError> {
        let offset = cur.offset(cur.next_block);
        if let Source::Archive(_) = cur.source {
            return Ok(true);
        }
        match self.find_archive(cur.seq) {
            Some(Lookup::Found(a)) => {
                let end = a.end_block();
                if end < cur.next_block {
                    return Err(TailError::Inconsistent {
                        stream: self.stream,
                        path: a.path.clone(),
                        detail: format!(
                            "archived copy ends at block {end}, before block {} already shipped",
                            cur.next_block
                        ),
                    });
                }
                info!(stream = %self.stream, seq = cur.seq.0, from_block = cur.next_block,
                    path = %a.path.display(), "online log reused; reading the rest from the archive");
                bump(&self.stats.archive_reads, 1);
                cur.end = Some(end);
                cur.source = Source::Archive(a);
                cur.need_archive = false;
                self.archive_wait = None;
                Ok(true)
            }
            Some(Lookup::Missing { rejected }) => {
                cur.need_archive = true;
                self.wait_for_archive(cur.seq, offset, rejected)?;
                Ok(false)
            }
            None => {
                cur.need_archive = true;
                let rejected = Vec::new();
                self.wait_for_archive(cur.seq, offset, rejected)?;
                Ok(false)
            }
        }
    }

    /// Reads `n` blocks from `from` of one copy into the scratch buffer; returns the bytes
    /// read (fewer at the end of the file).
    fn read_copy(
        &mut self,
        cur: &Cursor,
        copy: Replica,
        from: u32,
        n: u32,
    ) -> Result<usize, String> {
        let len = n as usize * cur.bs();
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let file: &File = match copy {
            Replica::Member { group, member } => {
                let m = self
                    .online
                    .member(group, member)
                    .ok_or_else(|| "no such member".to_string())?;
                m.file().map_err(|e| format!("cannot open: {e}"))?
            }
            Replica::Archive => match &cur.source {
                Source::Archive(a) => a.file(),
                Source::Online { .. } => return Err("no archived copy open".into()),
            },
        };
        read_full_at(file, &mut self.scratch[..len], cur.offset(from))
            .map_err(|e| format!("read error: {e}"))
    }

    fn copy_path(&self, cur: &Cursor, copy: Replica) -> PathBuf {
        match copy {
            Replica::Member { group, member } => self
                .online
                .members(group)
                .get(member)
                .map(|m| m.path.clone())
                .unwrap_or_default(),
            Replica::Archive => match &cur.source {
                Source::Archive(a) => a.path.clone(),
                Source::Online { .. } => PathBuf::new(),
            },
        }
    }

    /// The state of one block in one copy, and its bytes when valid.
    fn judge(&mut self, cur: &Cursor, copy: Replica, block: u32) -> (BlockState, String) {
        let bs = cur.bs();
        match self.read_copy(cur, copy, block, 1) {
            Ok(n) => {
                let b = &self.scratch[..n.min(bs)];
                let st = classify(b, cur.endian, cur.block_size, block, cur.seq);
                (st, st.to_string())
            }
            Err(e) => (BlockState::Truncated { present: 0 }, e),
        }
    }

    /// The preferred copy of the cursor's source.
    fn primary(cur: &Cursor) -> Replica {
        match &cur.source {
            Source::Online { group, members } => Replica::Member {
                group: *group,
                member: members.first().copied().unwrap_or(0),
            },
            Source::Archive(_) => Replica::Archive,
        }
    }

    /// Appends consecutive valid blocks from `cur.next_block` to `out`, at most `max`.
    fn read_into(
        &mut self,
        cur: &mut Cursor,
        out: &mut Vec<u8>,
        max: u32,
    ) -> Result<Stop, TailError> {
        let bs = cur.bs();
        let mut got = 0u32;
        'outer: while got < max {
            let limit = cur.end.unwrap_or(cur.file_blocks).min(cur.file_blocks);
            if cur.next_block >= limit {
                return Ok(if cur.end.is_some() {
                    Stop::End
                } else {
                    // A CURRENT log filled to the last block of its file: wait for its switch.
                    Stop::WritePoint
                });
            }
            let want = (max - got)
                .min(limit - cur.next_block)
                .min(if cur.end.is_some() { max } else { cur.window });
            let copy = Io::primary(cur);
            let n = match self.read_copy(cur, copy, cur.next_block, want) {
                Ok(n) => n / bs,
                Err(_) => 0,
            };
            let mut i = 0;
            while i < n.max(1) {
                let block = cur.next_block;
                let state = if i < n {
                    let b = &self.scratch[i * bs..(i + 1) * bs];
                    classify(b, cur.endian, cur.block_size, block, cur.seq)
                } else {
                    BlockState::Truncated { present: 0 }
                };
                if state == BlockState::Valid {
                    out.extend_from_slice(&self.scratch[i * bs..(i + 1) * bs]);
                    cur.next_block += 1;
                    got += 1;
                    i += 1;
                    continue;
                }
                match self.resolve(cur, block, state)? {
                    Resolved::Valid(bytes) => {
                        out.extend_from_slice(&bytes);
                        cur.next_block += 1;
                        got += 1;
                        // The rest of the buffer may be older than this re-read: read again.
                        continue 'outer;
                    }
                    Resolved::WritePoint => {
                        cur.window = MIN_WINDOW;
                        return Ok(Stop::WritePoint);
                    }
                    Resolved::Reused => return Ok(Stop::Reused),
                }
            }
            if n as u32 == want && cur.end.is_none() {
                cur.window = cur.window.saturating_mul(2).min(max.max(MIN_WINDOW));
            }
        }
        Ok(Stop::Full)
    }

    /// Decides about a block that was not valid in the preferred copy (see the module docs).
    fn resolve(
        &mut self,
        cur: &mut Cursor,
        block: u32,
        first: BlockState,
    ) -> Result<Resolved, TailError> {
        let complete = cur.end.is_some();
        let online = matches!(cur.source, Source::Online { .. });
        let primary = Io::primary(cur);
        let mut state = first;
        let mut copies: Vec<(PathBuf, String)> = Vec::new();
        if online {
            let mut tries = 0;
            loop {
                match state {
                    BlockState::Valid => {
                        if tries > 0 {
                            debug!(stream = %self.stream, seq = cur.seq.0, block, tries,
                                "torn block valid after re-reading");
                        }
                        let bs = cur.bs();
                        return Ok(Resolved::Valid(self.scratch[..bs].to_vec()));
                    }
                    BlockState::Zero | BlockState::Stale { .. } if !complete => {
                        return Ok(Resolved::WritePoint);
                    }
                    BlockState::Overwritten { .. } => return Ok(Resolved::Reused),
                    BlockState::Zero | BlockState::Stale { .. } => break,
                    _ if tries < self.opts.torn_retries => {
                        tries += 1;
                        bump(&self.stats.torn_rereads, 1);
                        std::thread::sleep(torn_backoff(tries, self.opts.torn_delay));
                        state = self.judge(cur, primary, block).0;
                    }
                    _ => break,
                }
            }
            let what = if tries > 0 {
                format!("{state} after {tries} re-reads")
            } else {
                state.to_string()
            };
            copies.push((self.copy_path(cur, primary), what));
            // The other members of the group.
            let others: Vec<Replica> = match &cur.source {
                Source::Online { group, members } => members
                    .iter()
                    .skip(1)
                    .map(|&m| Replica::Member {
                        group: *group,
                        member: m,
                    })
                    .collect(),
                Source::Archive(_) => Vec::new(),
            };
            for copy in others {
                let (st, what) = self.judge(cur, copy, block);
                if st == BlockState::Valid {
                    bump(&self.stats.fallbacks, 1);
                    warn!(stream = %self.stream, seq = cur.seq.0, block,
                        bad = %copies_text(&copies), good = %self.copy_path(cur, copy).display(),
                        "block bad in one member, read from another");
                    let bs = cur.bs();
                    return Ok(Resolved::Valid(self.scratch[..bs].to_vec()));
                }
                copies.push((self.copy_path(cur, copy), what));
            }
            // The archived copy, when there is one already.
            if let Some(Lookup::Found(a)) = self.find_archive(cur.seq) {
                let old = std::mem::replace(&mut cur.source, Source::Archive(a));
                let (st, what) = self.judge(cur, Replica::Archive, block);
                if st == BlockState::Valid {
                    bump(&self.stats.fallbacks, 1);
                    bump(&self.stats.archive_reads, 1);
                    warn!(stream = %self.stream, seq = cur.seq.0, block,
                        bad = %copies_text(&copies), good = %self.copy_path(cur, Replica::Archive).display(),
                        "block bad online; reading the rest of the log from the archive");
                    if let Source::Archive(a) = &cur.source {
                        cur.end = Some(a.end_block());
                    }
                    let bs = cur.bs();
                    return Ok(Resolved::Valid(self.scratch[..bs].to_vec()));
                }
                copies.push((self.copy_path(cur, Replica::Archive), what));
                cur.source = old;
            }
        } else {
            copies.push((self.copy_path(cur, primary), state.to_string()));
            // An archived copy is complete: try another destination's copy, then the online
            // group if it still holds the log.
            let views = self.online.scan();
            if let Some(l) = online::locate(&views, self.stream, cur.seq) {
                for m in l.members {
                    let copy = Replica::Member {
                        group: l.group,
                        member: m,
                    };
                    let (st, what) = self.judge(cur, copy, block);
                    if st == BlockState::Valid {
                        bump(&self.stats.fallbacks, 1);
                        let bs = cur.bs();
                        return Ok(Resolved::Valid(self.scratch[..bs].to_vec()));
                    }
                    copies.push((self.copy_path(cur, copy), what));
                }
            }
        }
        Err(TailError::Damaged {
            stream: self.stream,
            seq: cur.seq,
            block,
            offset: cur.offset(block),
            copies,
        })
    }

    /// Re-reads block 1 of the online log being read.
    fn refresh(&mut self, cur: &mut Cursor) -> Result<Refresh, TailError> {
        let Source::Online { group, members } = &cur.source else {
            return Ok(Refresh::Unknown);
        };
        let (group, members) = (*group, members.clone());
        for m in members {
            let h: LogHeader = match self.online.read_header(group, m) {
                Ok(h) => h,
                Err(e) => {
                    debug!(stream = %self.stream, group = group + 1, member = m + 1, error = %e,
                        "header not readable now");
                    continue;
                }
            };
            if h.stream != self.stream || h.seq() > cur.seq {
                return Ok(Refresh::Reused);
            }
            if h.seq() < cur.seq {
                continue;
            }
            return match h.end_block() {
                None => Ok(Refresh::Current),
                Some(nab) if nab >= cur.next_block && nab <= cur.file_blocks => {
                    Ok(Refresh::Complete(nab))
                }
                Some(nab) => Err(TailError::Inconsistent {
                    stream: self.stream,
                    path: self.copy_path(cur, Replica::Member { group, member: m }),
                    detail: format!(
                        "header says the log ends at block {nab}, but block {} was valid \
                         (file of {} blocks)",
                        cur.next_block.saturating_sub(1),
                        cur.file_blocks
                    ),
                }),
            };
        }
        Ok(Refresh::Unknown)
    }
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

/// The receiving end of a spawned tailer.
#[derive(Debug)]
pub struct TailHandle {
    stream: StreamId,
    rx: mpsc::Receiver<Result<Chunk, TailError>>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<TailStats>,
}

impl TailHandle {
    /// The stream.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// The tailer's counters.
    pub fn stats(&self) -> Arc<TailStats> {
        self.stats.clone()
    }

    /// The next chunk; `Ok(None)` once the tailer has stopped (cancelled). After an `Err`
    /// the tailer has stopped: start a new one from the checkpoint to retry. Cancel-safe.
    pub async fn next_chunk(&mut self) -> Result<Option<Chunk>, TailError> {
        self.rx.recv().await.transpose()
    }

    /// The same, for callers outside an async runtime.
    pub fn blocking_next_chunk(&mut self) -> Result<Option<Chunk>, TailError> {
        self.rx.blocking_recv().transpose()
    }

    /// Stops the tailer and waits for its thread (blocking: at most one torn-block re-read
    /// series or [`CANCEL_CHECK`]).
    pub fn stop(mut self) {
        self.cancel.cancel();
        self.rx.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_rereads_back_off_from_100us_to_the_limit() {
        let max = Duration::from_millis(5);
        let d: Vec<u128> = (1..=8).map(|n| torn_backoff(n, max).as_micros()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(torn_backoff(10_000, max), max);
        assert_eq!(torn_backoff(1, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn chunk_end_and_last_commit() {
        let stream = StreamId {
            db_id: 1,
            resetlogs_id: 2,
            thread: ThreadId(1),
        };
        let pos = StreamPos {
            seq: LogSeq(3),
            offset: 1024,
        };
        let mark = CommitMark {
            xid: redovault_redo::Xid::default(),
            scn: redovault_redo::Scn(9),
            time: None,
            end: StreamPos {
                seq: LogSeq(3),
                offset: 2048,
            },
        };
        let c = Chunk {
            stream,
            pos,
            bytes: Bytes::from(vec![0u8; 1536]),
            commits: vec![mark],
            log_end: None,
        };
        assert_eq!(c.end().offset, 2560);
        assert_eq!(c.last_commit(), Some(&mark));
    }
}
