//! Opening a store: the lock, the layout, and every stream recovered (chunks authenticated,
//! positions continuous, a torn tail cut off).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redovault::crypto::keys::KeyRing;
use redovault::wire::StreamId;

use super::*;
use crate::fs::{Fs, RealFs};
use crate::index::CommitIndex;
use crate::segment::{self, MAX_CHUNK_DATA, ScanMode};

/// A torn tail found and cut off at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub stream: StreamId,
    /// The segment file.
    pub file: PathBuf,
    /// Where the file was cut.
    pub offset: u64,
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
    /// The write-ahead files replayed before the segments were read.
    pub wal: WalRecovery,
}

impl Store {
    /// Opens (creating if needed) the store in `dir` with the real file system and default
    /// options, recovering every stream.
    pub fn open(dir: &Path, keys: KeyRing) -> Result<Store, StreamStoreError> {
        Store::open_with(dir, keys, StoreOptions::default(), Arc::new(RealFs))
    }

    /// [`Store::open`] with options and the file operations to write through.
    pub fn open_with(
        dir: &Path,
        keys: KeyRing,
        opts: StoreOptions,
        fs: Arc<dyn Fs>,
    ) -> Result<Store, StreamStoreError> {
        if opts.chunk_size == 0 || opts.chunk_size > MAX_CHUNK_DATA {
            return Err(StreamStoreError::Options(format!(
                "chunk size {} not in 1..={MAX_CHUNK_DATA}",
                opts.chunk_size
            )));
        }
        if opts.segment_size < 64 * 1024 {
            return Err(StreamStoreError::Options(format!(
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
                return Err(StreamStoreError::Locked {
                    dir: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }
        let format = dir.join("FORMAT");
        match std::fs::read(&format) {
            Ok(b) if b == FORMAT_LINE.as_bytes() => {}
            Ok(b) if b == FORMAT_LINE_1.as_bytes() => {
                // Upgraded before a write-ahead file can exist: from now on a collector that
                // would ignore one refuses the store.
                redovault::durable::write_atomic(&format, FORMAT_LINE.as_bytes())
                    .map_err(io_err("write", &format))?;
                tracing::info!(file = %format.display(), "store format 1 upgraded to 2");
            }
            Ok(b) => {
                return Err(StreamStoreError::Format {
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
        let wal_dir = dir.join(WAL_DIR);
        if !wal_dir.is_dir() {
            fs.create_dir(&wal_dir)
                .map_err(io_err("create directory", &wal_dir))?;
            fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
        }
        // Before the segments are read: they then hold every acknowledged byte.
        let (wal, wal_next) = Store::recover_wal(dir)?;
        let mut store = Store {
            dir: dir.to_path_buf(),
            keys,
            fs,
            opts,
            streams: BTreeMap::new(),
            dirty: BTreeSet::new(),
            failed: None,
            recovery: RecoveryReport {
                wal,
                ..RecoveryReport::default()
            },
            wal: None,
            wal_next,
            wal_limit: WAL_CHECKPOINT_SIZE,
            wal_bytes: 0,
            wal_checkpoints: 0,
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

    pub(super) fn recover_stream(
        &mut self,
        id: StreamId,
        dir: PathBuf,
    ) -> Result<(), StreamStoreError> {
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
                return Err(StreamStoreError::Corrupt {
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
            let scanned =
                segment::scan::<StreamStoreError>(&path, &self.keys, mode, None, |off, c| {
                    let corrupt = |reason: String| StreamStoreError::Corrupt {
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
                return Err(StreamStoreError::Corrupt {
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
            segments.push(StoredSegment {
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
}
