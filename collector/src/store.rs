//! The collector's stream store: encrypted, append-only, crash-safe.
//!
//! ```text
//! <dir>/LOCK                          held (flock) while a Store is open: one writer only
//! <dir>/FORMAT                        "redovault collector store, format 1"
//! <dir>/streams/<stream>/seg-<n>.rvs  segments of one stream (see segment.rs), <stream> =
//!                                     db<dbid>-rl<resetlogs id>-t<thread>
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
//!   bytes at a held position are refused ([`StoreError::Divergent`]), and so is a resend
//!   that runs past the end of a held log or ends it early ([`StoreError::Overlap`]).
//!   [`read_range`] reads durable bytes back (authenticated) for such comparisons.
//! - [`Store::sync`] makes every pending append durable (`fdatasync` of each dirty segment;
//!   new segment files and directories are fsynced when created) and returns the new durable
//!   ends. Only then may an append be acknowledged.
//! - After any write or sync error the store is **failed**: every later append and sync is
//!   refused ([`StoreError::Failed`]) and no fsync is ever retried (a failed fsync may have
//!   dropped the dirty pages: retrying could report success for lost data). A restart
//!   recovers from what is on disk.
//! - New appends always go to a segment created by this process: after a restart the last
//!   segment of a stream is never written again, so chunk nonces are never reused.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redovault::crypto::envelope::EnvelopeError;
use redovault::crypto::keys::KeyRing;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};

use crate::fs::{Fs, RealFs};
use redovault::compress::Level;

use crate::index::{CommitIndex, CommitQuery};
use crate::segment::{self, Chunk, MAX_CHUNK_DATA, ScanError, ScanMode, SegmentWriter, WriteError};

/// Content of the `FORMAT` file.
pub const FORMAT_LINE: &str = "redovault collector store, format 1\n";

/// Tuning of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// A segment is closed (fsynced) and the next one created when a chunk would take it
    /// past this size. 64 MiB: a rotation (two extra fsyncs) every few seconds at 10 MB/s at
    /// most, and at most one segment to read back when a resend is compared.
    pub segment_size: u64,
    /// Longest chunk: appends are split into chunks of at most this many redo bytes
    /// (1 MiB; at most [`MAX_CHUNK_DATA`]).
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

/// What an append did (nothing is durable before [`Store::sync`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// End of the stream's pending (written, maybe not yet durable) redo.
    pub pending_end: StreamPos,
    /// Redo bytes newly written.
    pub stored: u64,
    /// Redo bytes of the request already held (a resend), compared and not written again.
    pub duplicate: u64,
}

/// One segment of a stream, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Segment number.
    pub number: u64,
    /// The file.
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

/// A torn tail found and cut off at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The stream.
    pub stream: StreamId,
    /// The segment file.
    pub file: PathBuf,
    /// Where the file was cut.
    pub offset: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
    /// What was wrong at `offset`.
    pub reason: String,
    /// The file was removed: it was cut short inside its header and never held a chunk.
    pub removed: bool,
}

/// What [`Store::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Streams recovered.
    pub streams: usize,
    /// Segments read.
    pub segments: usize,
    /// Chunks authenticated.
    pub chunks: u64,
    /// Redo bytes held.
    pub redo_bytes: u64,
    /// Commits indexed.
    pub commits: u64,
    /// Torn tails cut off.
    pub torn: Vec<TornTail>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation at open or while reading failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process has the store open.
    #[error("store {} is in use by another process (lock {} held)", dir.display(), dir.join("LOCK").display())]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// The directory holds something other than a store of this format.
    #[error("{}: not a redovault collector store of format 1 (found {found:?})", file.display())]
    Format {
        /// The FORMAT file.
        file: PathBuf,
        /// Its first line.
        found: String,
    },
    /// Options out of range.
    #[error("store options: {0}")]
    Options(String),
    /// Stored data is damaged (not a torn tail): named by file and offset.
    #[error("{} corrupt at offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A segment cannot be read with this key ring or build (unknown key, format).
    #[error("{}: {source}", file.display())]
    Unreadable {
        /// The segment file.
        file: PathBuf,
        /// Why.
        source: EnvelopeError,
    },
    /// Refused: the append does not continue the stream.
    #[error("stream {stream}: append at {pos} refused, the stream continues at {}",
            expected.map_or("offset 0 of a log (new stream)".to_string(), |p| p.to_string()))]
    Discontinuity {
        /// The stream.
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// Where it must start (`None`: a new stream, at offset 0 of any log).
        expected: Option<StreamPos>,
    },
    /// Refused: the append runs past the end of a held log or ends it before held bytes.
    #[error("stream {stream}: append at {pos} refused: {reason}")]
    Overlap {
        /// The stream.
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// What differs.
        reason: String,
    },
    /// Refused: the append's bytes differ from the held redo at `at` (first differing byte):
    /// different bytes at a position already stored, the alarm of a divergent copy.
    #[error(
        "stream {stream}: append at {pos} refused: the bytes differ from the stored redo at {at}"
    )]
    Divergent {
        /// The stream.
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// The first differing byte.
        at: StreamPos,
    },
    /// A range asked of [`read_range`] is not held (not durable, retired, never stored) or
    /// too long to read at once.
    #[error("stream {stream}: redo {pos}..+{len} cannot be read back: {reason}")]
    NotHeld {
        /// The stream.
        stream: StreamId,
        /// Start of the range.
        pos: StreamPos,
        /// Its length.
        len: u64,
        /// Why.
        reason: String,
    },
    /// Refused: the append is malformed (commit marks outside its bytes, too long...).
    #[error("stream {stream}: append at {pos} refused: {reason}")]
    InvalidAppend {
        /// The stream.
        stream: StreamId,
        /// Where the append started.
        pos: StreamPos,
        /// What is wrong.
        reason: String,
    },
    /// A write or sync failed: the store is now failed (see [`StoreError::Failed`]).
    #[error("store failed: {0}")]
    WriteFailed(#[source] WriteError),
    /// The disk is full (`ENOSPC` or `EDQUOT` on a write or fsync). Unlike
    /// [`StoreError::WriteFailed`] the store is not failed: every write of the batch that
    /// was not yet durable was cut off again (files truncated to their synced length, the
    /// streams re-read from disk), so the store holds exactly what was acknowledged and
    /// may be written again once space frees. Nothing of the batch may be acknowledged.
    #[error("disk full: {0}; nothing more is acknowledged until space frees")]
    NoSpace(String),
    /// Refused because an earlier write or sync failed; restart to recover from disk.
    #[error(
        "store is failed since an earlier I/O error ({reason}); nothing more is acknowledged until restart"
    )]
    Failed {
        /// The first failure.
        reason: String,
    },
}

impl StoreError {
    /// The request was refused (the session's fault); the store itself is fine.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Discontinuity { .. }
                | StoreError::Overlap { .. }
                | StoreError::Divergent { .. }
                | StoreError::InvalidAppend { .. }
        )
    }

    /// The disk is full: retry later (see [`StoreError::NoSpace`]).
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::NoSpace(_))
    }

    /// The store is failed (by this error or an earlier one).
    pub fn is_failure(&self) -> bool {
        matches!(self, StoreError::WriteFailed(_) | StoreError::Failed { .. })
    }
}

impl From<ScanError> for StoreError {
    fn from(e: ScanError) -> StoreError {
        match e {
            ScanError::Io { path, source } => StoreError::Io {
                op: "read",
                path,
                source,
            },
            ScanError::Corrupt {
                path,
                offset,
                reason,
            } => StoreError::Corrupt {
                file: path,
                offset,
                reason,
            },
            ScanError::Unreadable { path, source } => StoreError::Unreadable { file: path, source },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tip {
    end: StreamPos,
    log_end: bool,
    last_commit: Option<CommitMark>,
}

impl Tip {
    fn durable(&self) -> Durable {
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
    segments: Vec<SegmentInfo>,
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

/// Everything a rebuild needs, taken from the store so that the rebuild can read the
/// segments without holding the store (see `rebuild.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream.
    pub stream: StreamId,
    /// Its segments, with their durable lengths (read no further).
    pub segments: Vec<SegmentInfo>,
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
    _lock: File,
}

/// Directory name of a stream: `db<dbid>-rl<resetlogs id>-t<thread>`.
pub fn stream_dir_name(s: StreamId) -> String {
    s.to_string()
}

/// The stream a directory name stands for.
pub fn parse_stream_dir_name(name: &str) -> Option<StreamId> {
    let rest = name.strip_prefix("db")?;
    let (db, rest) = rest.split_once("-rl")?;
    let (rl, t) = rest.split_once("-t")?;
    fn digits(s: &str) -> Option<&str> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    let id = StreamId {
        db_id: digits(db)?.parse().ok()?,
        resetlogs_id: digits(rl)?.parse().ok()?,
        thread: ThreadId(digits(t)?.parse().ok()?),
    };
    (stream_dir_name(id) == name).then_some(id)
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with the real file system and default
    /// options, recovering every stream.
    pub fn open(dir: &Path, keys: KeyRing) -> Result<Store, StoreError> {
        Store::open_with(dir, keys, StoreOptions::default(), Arc::new(RealFs))
    }

    /// [`Store::open`] with options and the file operations to write through.
    pub fn open_with(
        dir: &Path,
        keys: KeyRing,
        opts: StoreOptions,
        fs: Arc<dyn Fs>,
    ) -> Result<Store, StoreError> {
        if opts.chunk_size == 0 || opts.chunk_size > MAX_CHUNK_DATA {
            return Err(StoreError::Options(format!(
                "chunk size {} not in 1..={MAX_CHUNK_DATA}",
                opts.chunk_size
            )));
        }
        if opts.segment_size < 64 * 1024 {
            return Err(StoreError::Options(format!(
                "segment size {} below 64 KiB",
                opts.segment_size
            )));
        }
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs.sync_dir(parent)
                    .map_err(io_err("fsync directory", parent))?;
            }
        }
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let format = dir.join("FORMAT");
        match std::fs::read(&format) {
            Ok(b) if b == FORMAT_LINE.as_bytes() => {}
            Ok(b) => {
                return Err(StoreError::Format {
                    file: format,
                    found: String::from_utf8_lossy(&b)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(80)
                        .collect(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                redovault::durable::create_new_durable(&format, FORMAT_LINE.as_bytes())
                    .map_err(io_err("create", &format))?;
            }
            Err(e) => return Err(io_err("read", &format)(e)),
        }
        let streams_dir = dir.join("streams");
        if !streams_dir.is_dir() {
            fs.create_dir(&streams_dir)
                .map_err(io_err("create directory", &streams_dir))?;
            fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
        }
        let mut store = Store {
            dir: dir.to_path_buf(),
            keys,
            fs,
            opts,
            streams: BTreeMap::new(),
            dirty: BTreeSet::new(),
            failed: None,
            recovery: RecoveryReport::default(),
            _lock: lock,
        };
        let mut names = Vec::new();
        for e in std::fs::read_dir(&streams_dir).map_err(io_err("list", &streams_dir))? {
            let e = e.map_err(io_err("list", &streams_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match parse_stream_dir_name(&name) {
                Some(id) if e.path().is_dir() => names.push((id, e.path())),
                _ => tracing::warn!(path = %e.path().display(), "not a stream directory; ignored"),
            }
        }
        names.sort();
        for (id, path) in names {
            store.recover_stream(id, path)?;
        }
        store.recovery.streams = store.streams.len();
        tracing::info!(
            dir = %dir.display(),
            streams = store.recovery.streams,
            segments = store.recovery.segments,
            chunks = store.recovery.chunks,
            redo_bytes = store.recovery.redo_bytes,
            commits = store.recovery.commits,
            torn_tails = store.recovery.torn.len(),
            "collector store opened"
        );
        Ok(store)
    }

    fn recover_stream(&mut self, id: StreamId, dir: PathBuf) -> Result<(), StoreError> {
        // Finish a removal a crash interrupted before reading anything.
        if let Some(through) = read_retired(&dir)? {
            let left = remove_retired(&dir, through)?;
            if left > 0 {
                tracing::warn!(stream = %id, through, files = left, "retention: finished an interrupted removal");
            }
        }
        let mut numbers = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let e = e.map_err(io_err("list", &dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            match segment::parse_segment_file_name(&name) {
                Some(n) => numbers.push(n),
                None if name == RETIRED_FILE => {}
                None => tracing::warn!(path = %e.path().display(), "not a segment; ignored"),
            }
        }
        numbers.sort_unstable();
        for w in numbers.windows(2) {
            if w[0].checked_add(1) != Some(w[1]) {
                return Err(StoreError::Corrupt {
                    file: dir.join(segment::segment_file_name(w[0] + 1)),
                    offset: 0,
                    reason: format!(
                        "segment missing: {} is followed by {}",
                        segment::segment_file_name(w[0]),
                        segment::segment_file_name(w[1])
                    ),
                });
            }
        }
        let mut tip: Option<Tip> = None;
        let mut seq_ends = BTreeMap::new();
        let mut index = CommitIndex::new();
        let mut segments = Vec::new();
        let mut redo_bytes = 0u64;
        let count = numbers.len();
        for (i, &n) in numbers.iter().enumerate() {
            let path = dir.join(segment::segment_file_name(n));
            let last = i + 1 == count;
            let mode = if last {
                ScanMode::LastSegment
            } else {
                ScanMode::Strict
            };
            let mut first = None;
            let mut last_end = None;
            let scanned = segment::scan::<StoreError>(&path, &self.keys, mode, None, |off, c| {
                let corrupt = |reason: String| StoreError::Corrupt {
                    file: path.clone(),
                    offset: off,
                    reason,
                };
                match tip {
                    None if c.start.offset != 0 => {
                        return Err(corrupt(format!(
                            "the stream's first chunk starts at {}, not at a log start",
                            c.start
                        )));
                    }
                    Some(t) if !t.log_end && c.start != t.end => {
                        return Err(corrupt(format!(
                            "chunk starts at {} but the stream ends at {}: a gap or overlap",
                            c.start, t.end
                        )));
                    }
                    Some(t) if t.log_end && c.start != next_seq(t.end) => {
                        return Err(corrupt(format!(
                            "chunk starts at {} but log {} ended: expected {}",
                            c.start,
                            t.end.seq,
                            next_seq(t.end)
                        )));
                    }
                    _ => {}
                }
                for m in &c.commits {
                    index.push(m);
                }
                if c.log_end {
                    seq_ends.insert(c.start.seq, c.end().offset);
                }
                redo_bytes += c.data.len() as u64;
                first.get_or_insert(c.start);
                last_end = Some(c.end());
                tip = Some(Tip {
                    end: c.end(),
                    log_end: c.log_end,
                    last_commit: c
                        .commits
                        .last()
                        .copied()
                        .or(tip.and_then(|t| t.last_commit)),
                });
                Ok(())
            })?;
            if let Some(h) = &scanned.header
                && (h.stream != id || h.segment != n)
            {
                return Err(StoreError::Corrupt {
                    file: path,
                    offset: 0,
                    reason: format!(
                        "header says stream {} segment {}, but the file is segment {n} of {id}",
                        h.stream, h.segment
                    ),
                });
            }
            self.recovery.segments += 1;
            self.recovery.chunks += u64::from(scanned.chunks);
            if let Some(torn) = &scanned.torn {
                let dropped = scanned.len - torn.offset;
                if torn.header {
                    std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
                    redovault::durable::sync_dir(&dir).map_err(io_err("fsync directory", &dir))?;
                } else {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err("open", &path))?;
                    f.set_len(torn.offset).map_err(io_err("truncate", &path))?;
                    f.sync_all().map_err(io_err("fsync", &path))?;
                }
                tracing::warn!(
                    stream = %id,
                    file = %path.display(),
                    offset = torn.offset,
                    dropped_bytes = dropped,
                    removed = torn.header,
                    reason = %torn.reason,
                    "torn tail dropped (never acknowledged)"
                );
                self.recovery.torn.push(TornTail {
                    stream: id,
                    file: path.clone(),
                    offset: torn.offset,
                    dropped_bytes: dropped,
                    reason: torn.reason.clone(),
                    removed: torn.header,
                });
                if torn.header {
                    continue;
                }
            } else if last {
                // What was read may still be only in the page cache (a previous process
                // may have died after a failed fsync): make it durable before calling it so.
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err("fsync", &path))?;
            }
            segments.push(SegmentInfo {
                number: n,
                path,
                first,
                last_end,
                len: scanned.good_len,
                durable_len: scanned.good_len,
            });
        }
        self.recovery.redo_bytes += redo_bytes;
        self.recovery.commits += index.len() as u64;
        let Some(tip) = tip else {
            if !segments.is_empty() {
                // Segments with a header but no chunk: keep them, the next one follows.
                self.streams
                    .insert(id, StreamState::empty(dir, segments, seq_ends, index, None));
            }
            return Ok(());
        };
        self.streams.insert(
            id,
            StreamState::empty(dir, segments, seq_ends, index, Some(tip)),
        );
        Ok(())
    }

    /// What open found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
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
    pub fn segments(&self, stream: StreamId) -> Vec<SegmentInfo> {
        self.streams
            .get(&stream)
            .map(|s| s.segments.clone())
            .unwrap_or_default()
    }

    /// Rebuilds a log of `stream` to `out` (see [`crate::rebuild`]).
    pub fn rebuild(
        &self,
        stream: StreamId,
        out: &Path,
        opts: &crate::rebuild::RebuildOptions,
    ) -> Result<crate::rebuild::RebuildReport, crate::rebuild::RebuildError> {
        let snap = self
            .snapshot(stream)
            .ok_or(crate::rebuild::RebuildError::NoStream(stream))?;
        crate::rebuild::rebuild(&snap, &self.keys, out, opts)
    }

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

    fn check_failed(&self) -> Result<(), StoreError> {
        match &self.failed {
            Some(reason) => Err(StoreError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: WriteError) -> StoreError {
        if is_no_space(&e) {
            let reason = e.to_string();
            return match self.reset_to_durable() {
                Ok(()) => {
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %reason,
                        "collector disk full: unsynced writes cut off, nothing acknowledged until space frees"
                    );
                    StoreError::NoSpace(reason)
                }
                Err(again) => {
                    let reason =
                        format!("{reason}; then, cutting the unsynced writes off: {again}");
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %reason,
                        "collector store failed: no further acknowledgements until restart"
                    );
                    self.failed.get_or_insert(reason);
                    StoreError::WriteFailed(e)
                }
            };
        }
        let reason = e.to_string();
        tracing::error!(
            dir = %self.dir.display(),
            error = %reason,
            "collector store failed: no further acknowledgements until restart"
        );
        self.failed.get_or_insert(reason);
        StoreError::WriteFailed(e)
    }

    /// After a full disk: every segment this process wrote is cut back to its synced length
    /// (what was acknowledged), a segment whose creation did not complete is removed, the
    /// writers are closed (new appends go to a new segment, so no chunk nonce is reused)
    /// and each such stream is read again from disk, as at open.
    fn reset_to_durable(&mut self) -> Result<(), StoreError> {
        let saved = self.recovery.clone();
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(s) = self.streams.get(&id) else {
                continue;
            };
            // A segment created after the last one recorded failed half-way: never used.
            let last = s.segments.last().map_or(0, |g| g.number);
            let beyond = s.dir.join(segment::segment_file_name(last + 1));
            match std::fs::remove_file(&beyond) {
                Ok(()) => {
                    redovault::durable::sync_dir(&s.dir)
                        .map_err(io_err("fsync directory", &s.dir))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &beyond)(e)),
            }
            // Without a writer, what is on disk was synced (at open, or before the writer
            // was closed by an earlier reset).
            if s.writer.is_none() {
                continue;
            }
            let Some(mut s) = self.streams.remove(&id) else {
                continue;
            };
            s.writer = None;
            // Only the last two segments can hold unsynced bytes (a rotation syncs the
            // previous one first); a failed write may have left part of a record that
            // `len` does not count, so the file's own length is what is compared.
            for g in s.segments.iter().rev().take(2) {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&g.path)
                    .map_err(io_err("open", &g.path))?;
                let on_disk = f.metadata().map_err(io_err("stat", &g.path))?.len();
                if on_disk > g.durable_len {
                    f.set_len(g.durable_len)
                        .map_err(io_err("truncate", &g.path))?;
                    f.sync_all().map_err(io_err("fsync", &g.path))?;
                }
            }
            self.recover_stream(id, s.dir)?;
        }
        self.dirty.clear();
        self.recovery = saved;
        Ok(())
    }

    /// Retires the oldest segments of a stream, up to and including segment `through`
    /// (retention, see `retention.rs`). Refused unless `through` is not the stream's last
    /// segment, its last chunk ends its log, and everything retired is durable.
    ///
    /// Crash-safe: the decision is first made durable in the stream's `RETIRED` file
    /// (written atomically: temporary file, fsync, rename, directory fsync); then the
    /// files are removed oldest first and the directory is fsynced. A crash at any point
    /// leaves either the old state or a `RETIRED` file whose leftovers the next open (or
    /// retire) removes before reading the stream.
    pub fn retire(&mut self, stream: StreamId, through: u64) -> Result<Retired, StoreError> {
        self.check_failed()?;
        let refuse = |reason: String| StoreError::Options(format!("retire {stream}: {reason}"));
        let Some(s) = self.streams.get_mut(&stream) else {
            return Err(refuse("no such stream".into()));
        };
        let Some(k) = s.segments.iter().position(|g| g.number == through) else {
            return Err(refuse(format!("no segment {through}")));
        };
        if k + 1 >= s.segments.len() {
            return Err(refuse(format!(
                "segment {through} is the last one (being written)"
            )));
        }
        let gone: Vec<SegmentInfo> = s.segments[..=k].to_vec();
        if let Some(g) = gone.iter().rev().find(|g| g.last_end.is_some()) {
            let end = g.last_end.unwrap_or_default();
            if s.seq_ends.get(&end.seq) != Some(&end.offset) {
                return Err(refuse(format!(
                    "segment {} ends inside log {} (at {end})",
                    g.number, end.seq
                )));
            }
            if !s.durable_has_data || end > s.durable.end {
                return Err(refuse(format!("segment {} is not durable", g.number)));
            }
        }
        if gone.iter().any(|g| g.len != g.durable_len) {
            return Err(refuse("a segment is not wholly durable".into()));
        }
        let marker = s.dir.join(RETIRED_FILE);
        redovault::durable::write_atomic(
            &marker,
            format!("{RETIRED_PREFIX}{through}\n").as_bytes(),
        )
        .map_err(io_err("write", &marker))?;
        s.segments.drain(..=k);
        // Sequences wholly before the first kept chunk leave the index and the log ends.
        if let Some(first) = s.segments.iter().find_map(|g| g.first) {
            s.index.remove_before(first.seq);
            s.seq_ends = s.seq_ends.split_off(&first.seq);
        }
        let dir = s.dir.clone();
        let removed = remove_retired(&dir, through)?;
        let bytes = gone.iter().map(|g| g.len).sum();
        tracing::info!(
            stream = %stream,
            through,
            segments = gone.len(),
            files_removed = removed,
            bytes,
            "retention: segments removed"
        );
        Ok(Retired {
            segments: gone.len() as u64,
            bytes,
        })
    }

    /// Appends redo to a stream (not durable until [`Store::sync`]); see the module docs for
    /// the continuity rules. `commits` are the commits whose end lies in this redo.
    pub fn append(
        &mut self,
        stream: StreamId,
        pos: StreamPos,
        bytes: &[u8],
        commits: &[CommitMark],
        log_end: bool,
    ) -> Result<Appended, StoreError> {
        self.check_failed()?;
        let invalid = |reason: String| StoreError::InvalidAppend {
            stream,
            pos,
            reason,
        };
        let Some(req_end_off) = pos.offset.checked_add(bytes.len() as u64) else {
            return Err(invalid("offset range overflows".into()));
        };
        let req_end = StreamPos {
            seq: pos.seq,
            offset: req_end_off,
        };
        let mut prev = pos;
        for c in commits {
            if c.end.seq != pos.seq || c.end <= pos || c.end > req_end || c.end < prev {
                return Err(invalid(format!(
                    "commit {} ends at {}, outside {pos}..={req_end} or out of order",
                    c.xid, c.end
                )));
            }
            prev = c.end;
        }
        let overlap = |reason: String| StoreError::Overlap {
            stream,
            pos,
            reason,
        };
        // Where new bytes start, and how many leading bytes are already held.
        let (new_start, held) = match self.streams.get(&stream).and_then(|s| {
            s.has_data
                .then_some((s.pending, s.seq_ends.get(&pos.seq).copied()))
        }) {
            None => {
                if pos.offset != 0 {
                    return Err(StoreError::Discontinuity {
                        stream,
                        pos,
                        expected: None,
                    });
                }
                if bytes.is_empty() {
                    return Err(invalid("a stream's first append must carry redo".into()));
                }
                (pos, 0)
            }
            Some((tip, _)) if pos.seq == tip.end.seq => {
                if pos.offset > tip.end.offset {
                    return Err(StoreError::Discontinuity {
                        stream,
                        pos,
                        expected: Some(tip.durable().resume_pos()),
                    });
                }
                let held = req_end_off.min(tip.end.offset) - pos.offset;
                if tip.log_end && req_end_off > tip.end.offset {
                    return Err(overlap(format!(
                        "log {} ended at offset {}; the append runs to {req_end_off}",
                        tip.end.seq, tip.end.offset
                    )));
                }
                if log_end && req_end_off < tip.end.offset {
                    return Err(overlap(format!(
                        "the append ends log {} at {req_end_off}, but {} bytes are held",
                        tip.end.seq, tip.end.offset
                    )));
                }
                if held == 0 {
                    (pos, 0)
                } else {
                    (
                        StreamPos {
                            seq: pos.seq,
                            offset: pos.offset + held,
                        },
                        held,
                    )
                }
            }
            Some((tip, seq_end)) if pos.seq < tip.end.seq => {
                let Some(seq_end) = seq_end else {
                    return Err(StoreError::Discontinuity {
                        stream,
                        pos,
                        expected: Some(tip.durable().resume_pos()),
                    });
                };
                if req_end_off > seq_end || (log_end && req_end_off != seq_end) {
                    return Err(overlap(format!(
                        "log {} ended at offset {seq_end}; the append covers \
                         {}..{req_end_off}{}",
                        pos.seq,
                        pos.offset,
                        if log_end { " and ends the log" } else { "" }
                    )));
                }
                // Wholly held: compare, store nothing.
                (req_end, req_end_off.saturating_sub(pos.offset))
            }
            Some((tip, _)) if tip.log_end && pos == next_seq(tip.end) => (pos, 0),
            Some((tip, _)) => {
                return Err(StoreError::Discontinuity {
                    stream,
                    pos,
                    expected: Some(tip.durable().resume_pos()),
                });
            }
        };
        if held > 0 {
            let held_len = usize::try_from(held).unwrap_or(usize::MAX);
            let stored = self.read_stored(stream, pos, held)?;
            if let Some(i) = stored
                .iter()
                .zip(&bytes[..held_len])
                .position(|(a, b)| a != b)
            {
                return Err(StoreError::Divergent {
                    stream,
                    pos,
                    at: StreamPos {
                        seq: pos.seq,
                        offset: pos.offset + i as u64,
                    },
                });
            }
        }
        let new_bytes = &bytes[usize::try_from(held).unwrap_or(bytes.len())..];
        let tip = self
            .streams
            .get(&stream)
            .filter(|s| s.has_data)
            .map(|s| s.pending);
        let seq_already_ended =
            tip.is_some_and(|t| (t.end.seq == pos.seq && t.log_end) || t.end.seq > pos.seq);
        let write_log_end = log_end && !seq_already_ended;
        if new_bytes.is_empty() && !write_log_end {
            return Ok(Appended {
                pending_end: tip.map_or(pos, |t| t.end),
                stored: 0,
                duplicate: held,
            });
        }
        let new_commits: Vec<CommitMark> = commits
            .iter()
            .filter(|c| c.end > new_start)
            .copied()
            .collect();
        self.write_chunks(stream, new_start, new_bytes, &new_commits, write_log_end)?;
        let pending_end = self.streams.get(&stream).map_or(pos, |s| s.pending.end);
        Ok(Appended {
            pending_end,
            stored: new_bytes.len() as u64,
            duplicate: held,
        })
    }

    /// Reads `len` held bytes of `stream` from `pos` (within one log) back from the segments,
    /// pending (written, not yet synced) bytes included: what a resend is compared with.
    fn read_stored(
        &self,
        stream: StreamId,
        pos: StreamPos,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
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
    ) -> Result<Vec<u8>, StoreError> {
        let snap = self.snapshot(stream).ok_or(StoreError::NotHeld {
            stream,
            pos,
            len,
            reason: "the stream holds no durable redo".into(),
        })?;
        read_range(&snap, &self.keys, pos, len)
    }

    fn write_chunks(
        &mut self,
        stream: StreamId,
        start: StreamPos,
        bytes: &[u8],
        commits: &[CommitMark],
        log_end: bool,
    ) -> Result<(), StoreError> {
        if !self.streams.contains_key(&stream) {
            let dir = self.dir.join("streams").join(stream_dir_name(stream));
            match self.fs.create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(self.fail(WriteError::Io {
                        op: "create directory",
                        path: dir,
                        source,
                    }));
                }
            }
            let parent = self.dir.join("streams");
            if let Err(source) = self.fs.sync_dir(&parent) {
                return Err(self.fail(WriteError::Io {
                    op: "fsync directory",
                    path: parent,
                    source,
                }));
            }
            self.streams.insert(
                stream,
                StreamState::empty(dir, Vec::new(), BTreeMap::new(), CommitIndex::new(), None),
            );
        }
        let pieces: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(self.opts.chunk_size).collect()
        };
        let n = pieces.len();
        let mut at = start;
        let mut ci = 0;
        for (i, piece) in pieces.into_iter().enumerate() {
            let end = StreamPos {
                seq: at.seq,
                offset: at.offset + piece.len() as u64,
            };
            let from = ci;
            while ci < commits.len() && commits[ci].end <= end {
                ci += 1;
            }
            let chunk = Chunk {
                start: at,
                data: piece.to_vec(),
                commits: commits[from..ci].to_vec(),
                log_end: log_end && i + 1 == n,
            };
            if let Err(e) = chunk.check() {
                return Err(StoreError::InvalidAppend {
                    stream,
                    pos: start,
                    reason: e.to_string(),
                });
            }
            self.write_chunk(stream, &chunk)?;
            at = end;
        }
        Ok(())
    }

    fn write_chunk(&mut self, stream: StreamId, chunk: &Chunk) -> Result<(), StoreError> {
        let rec_len = SegmentWriter::record_len(chunk);
        let segment_size = self.opts.segment_size;
        let Some(s) = self.streams.get_mut(&stream) else {
            return Ok(());
        };
        // A new log starts a new segment: every segment then holds one log (or part of
        // one), so retention can remove the segments of a log without cutting into the
        // next one (see `retention.rs`). One more fsync per log switch.
        let rotate = match &s.writer {
            None => true,
            Some(w) => {
                !w.is_empty() && (w.len() + rec_len > segment_size || chunk.start.offset == 0)
            }
        };
        if rotate {
            let result = s.rotate(self.fs.as_ref(), &self.keys, stream, self.opts.compress);
            if let Err(e) = result {
                return Err(self.fail(e));
            }
        }
        let Some(s) = self.streams.get_mut(&stream) else {
            return Ok(());
        };
        let Some(w) = s.writer.as_mut() else {
            return Ok(());
        };
        let result = w.append(chunk);
        match result {
            Ok(_) => {
                let len = w.len();
                if let Some(info) = s.segments.last_mut() {
                    info.first.get_or_insert(chunk.start);
                    info.last_end = Some(chunk.end());
                    info.len = len;
                }
                s.pending = Tip {
                    end: chunk.end(),
                    log_end: chunk.log_end,
                    last_commit: chunk.commits.last().copied().or(s.pending.last_commit),
                };
                if chunk.log_end {
                    s.seq_ends.insert(chunk.start.seq, chunk.end().offset);
                }
                s.pending_commits.extend_from_slice(&chunk.commits);
                s.has_data = true;
                self.dirty.insert(stream);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Makes every pending append durable and returns the streams whose durable state
    /// advanced, with that state. Acknowledge only what this returned.
    pub fn sync(&mut self) -> Result<Vec<(StreamId, Durable)>, StoreError> {
        self.check_failed()?;
        let dirty: Vec<StreamId> = self.dirty.iter().copied().collect();
        let writers: Vec<&mut SegmentWriter> = self
            .streams
            .iter_mut()
            .filter(|(id, _)| self.dirty.contains(id))
            .filter_map(|(_, s)| s.writer.as_mut())
            .filter(|w| w.is_dirty())
            .collect();
        if let Err(e) = sync_all(writers) {
            return Err(self.fail(e));
        }
        for id in &dirty {
            if let Some(s) = self.streams.get_mut(id)
                && let Some(w) = s.writer.as_ref()
            {
                let synced = w.synced_len();
                if let Some(info) = s.segments.last_mut() {
                    info.durable_len = synced;
                }
            }
        }
        let mut out = Vec::with_capacity(dirty.len());
        for id in dirty {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.durable = s.pending;
            for c in s.pending_commits.drain(..) {
                s.index.push(&c);
            }
            s.durable_has_data = s.has_data;
            out.push((id, s.durable.durable()));
        }
        self.dirty.clear();
        Ok(out)
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
) -> Result<Vec<u8>, StoreError> {
    let stream = snap.stream;
    let not_held = |reason: String| StoreError::NotHeld {
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
enum ReadStop {
    /// The range is complete.
    Full,
    /// The segment could not be read or authenticated.
    Scan(StoreError),
}

impl From<ScanError> for ReadStop {
    fn from(e: ScanError) -> ReadStop {
        ReadStop::Scan(e.into())
    }
}

/// Collects `len` bytes of log `pos.seq` from `pos` out of `segments` (each read up to its
/// durable length when `durable_only`, else up to what was written). The caller checked
/// that `len` is bounded.
fn read_segments(
    stream: StreamId,
    dir: &Path,
    segments: &[SegmentInfo],
    keys: &KeyRing,
    durable_only: bool,
    pos: StreamPos,
    len: u64,
) -> Result<Vec<u8>, StoreError> {
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
        return Err(StoreError::Corrupt {
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

/// What [`Store::retire`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retired {
    /// Segments removed.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The file in a stream directory that records the last retired segment.
pub const RETIRED_FILE: &str = "RETIRED";
const RETIRED_PREFIX: &str = "retired through segment ";

/// The last retired segment of a stream directory, from its `RETIRED` file.
pub fn read_retired(dir: &Path) -> Result<Option<u64>, StoreError> {
    let path = dir.join(RETIRED_FILE);
    let text = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let n = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.strip_prefix(RETIRED_PREFIX))
        .and_then(|t| t.strip_suffix('\n'))
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok());
    match n {
        Some(n) => Ok(Some(n)),
        None => Err(StoreError::Corrupt {
            file: path,
            offset: 0,
            reason: format!("not \"{RETIRED_PREFIX}<n>\""),
        }),
    }
}

/// Removes the segment files numbered up to `through` still in `dir`, oldest first, then
/// fsyncs the directory. Returns how many were removed.
fn remove_retired(dir: &Path, through: u64) -> Result<u64, StoreError> {
    let mut numbers = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        if let Some(n) = segment::parse_segment_file_name(&e.file_name().to_string_lossy())
            && n <= through
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    for n in &numbers {
        let path = dir.join(segment::segment_file_name(*n));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
    }
    if !numbers.is_empty() {
        redovault::durable::sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    }
    Ok(numbers.len() as u64)
}

/// `ENOSPC` or `EDQUOT`: the disk (or the quota) is full.
fn is_no_space(e: &WriteError) -> bool {
    match e {
        WriteError::Io { source, .. } => {
            source.kind() == io::ErrorKind::StorageFull
                || matches!(source.raw_os_error(), Some(28 | 122))
        }
        _ => false,
    }
}

/// `fdatasync` of every writer, concurrently when there are several (one thread each, all at
/// once): a batch over many streams then waits for about one fsync, not one per stream (the
/// file system commits them together: on ext4 one journal commit and one cache flush for
/// all). All at once, not in rounds: each round waits for a journal commit of its own, and a
/// longer group commit lets more streams write before the next one, which makes it longer
/// still (`tests/benches/scale_streams.rs` measured at 64 streams: rounds of 16 took it from
/// one fsync to four). The threads are bounded by the streams written in the batch, so by
/// the collector's connections. Returns the first error; every call is made, none is
/// retried.
fn sync_all(mut writers: Vec<&mut SegmentWriter>) -> Result<(), WriteError> {
    if writers.len() <= 1 {
        return writers.iter_mut().try_for_each(|w| w.sync());
    }
    let results: Vec<Result<(), WriteError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|w| {
                let path = w.path().to_path_buf();
                (path, sc.spawn(move || w.sync()))
            })
            .collect();
        handles
            .into_iter()
            .map(|(path, h)| {
                h.join().unwrap_or_else(|_| {
                    Err(WriteError::Io {
                        op: "fdatasync",
                        path,
                        source: io::Error::other("the fdatasync thread panicked"),
                    })
                })
            })
            .collect()
    });
    let mut first_err = None;
    for r in results {
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

impl StreamState {
    fn empty(
        dir: PathBuf,
        segments: Vec<SegmentInfo>,
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

    fn durable_known(&self) -> bool {
        self.durable_has_data
    }

    /// Syncs and closes the current segment (if any) and creates the next one.
    fn rotate(
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
        self.segments.push(SegmentInfo {
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

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
