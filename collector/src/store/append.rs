//! Writing: appends with their continuity rules, the group-commit `sync`, and the failed state
//! after any write or sync error.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io;

use redovault::wire::{CommitMark, StreamId, StreamPos};

use super::*;
use crate::index::CommitIndex;
use crate::segment::{self, SegmentWriter, StoredChunk, WriteError};

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

impl Store {
    /// Appends redo to a stream (not durable until [`Store::sync`]); see the module docs for
    /// the continuity rules. `commits` are the commits whose end lies in this redo.
    pub fn append(
        &mut self,
        stream: StreamId,
        pos: StreamPos,
        bytes: &[u8],
        commits: &[CommitMark],
        log_end: bool,
    ) -> Result<Appended, StreamStoreError> {
        self.check_failed()?;
        let invalid = |reason: String| StreamStoreError::InvalidAppend {
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
        let overlap = |reason: String| StreamStoreError::Overlap {
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
                    return Err(StreamStoreError::Discontinuity {
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
                    return Err(StreamStoreError::Discontinuity {
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
                    return Err(StreamStoreError::Discontinuity {
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
                return Err(StreamStoreError::Discontinuity {
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
                return Err(StreamStoreError::Divergent {
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

    pub(super) fn write_chunks(
        &mut self,
        stream: StreamId,
        start: StreamPos,
        bytes: &[u8],
        commits: &[CommitMark],
        log_end: bool,
    ) -> Result<(), StreamStoreError> {
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
            let chunk = StoredChunk {
                start: at,
                data: piece.to_vec(),
                commits: commits[from..ci].to_vec(),
                log_end: log_end && i + 1 == n,
            };
            if let Err(e) = chunk.check() {
                return Err(StreamStoreError::InvalidAppend {
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

    pub(super) fn write_chunk(
        &mut self,
        stream: StreamId,
        chunk: &StoredChunk,
    ) -> Result<(), StreamStoreError> {
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
    pub fn sync(&mut self) -> Result<Vec<(StreamId, Durable)>, StreamStoreError> {
        self.check_failed()?;
        if self.wal_full()
            && let Err(e) = self.checkpoint()
        {
            return Err(self.fail(e));
        }
        let dirty: Vec<StreamId> = self.dirty.iter().copied().collect();
        let unsynced: Vec<StreamId> = dirty
            .iter()
            .copied()
            .filter(|id| {
                self.streams
                    .get(id)
                    .and_then(|s| s.writer.as_ref())
                    .is_some_and(|w| w.is_dirty())
            })
            .collect();
        // Two or more segments: one write-ahead fdatasync instead of one per segment. One
        // segment: its own fdatasync (no bytes written twice).
        let result = if unsynced.len() >= 2 {
            self.wal_sync(&unsynced)
        } else {
            let writers: Vec<&mut SegmentWriter> = self
                .streams
                .iter_mut()
                .filter(|(id, _)| unsynced.contains(id))
                .filter_map(|(_, s)| s.writer.as_mut())
                .collect();
            sync_all(writers)
        };
        if let Err(e) = result {
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

    pub(super) fn check_failed(&self) -> Result<(), StreamStoreError> {
        match &self.failed {
            Some(reason) => Err(StreamStoreError::Failed {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(super) fn fail(&mut self, e: WriteError) -> StreamStoreError {
        if is_no_space(&e) {
            let reason = e.to_string();
            return match self.reset_to_durable() {
                Ok(()) => {
                    tracing::error!(
                        dir = %self.dir.display(),
                        error = %reason,
                        "collector disk full: unsynced writes cut off, nothing acknowledged until space frees"
                    );
                    StreamStoreError::NoSpace(reason)
                }
                Err(again) => self.fail_for_good(
                    format!("{reason}; then, cutting the unsynced writes off: {again}"),
                    e,
                ),
            };
        }
        self.fail_for_good(e.to_string(), e)
    }

    /// Marks the store failed for `reason` (the first reason stays): no further append or
    /// sync until a restart recovers from the disk.
    fn fail_for_good(&mut self, reason: String, e: WriteError) -> StreamStoreError {
        tracing::error!(
            dir = %self.dir.display(),
            error = %reason,
            "collector store failed: no further acknowledgements until restart"
        );
        self.failed.get_or_insert(reason);
        StreamStoreError::WriteFailed(e)
    }

    /// After a full disk: every segment this process wrote is cut back to its synced length
    /// (what was acknowledged), a segment whose creation did not complete is removed, the
    /// writers are closed (new appends go to a new segment, so no chunk nonce is reused)
    /// and each such stream is read again from disk, as at open.
    ///
    /// With a write-ahead file in play, durable means "fdatasynced in the segment or in a
    /// synced frame": the synced frames are written back into the cut segments, which are
    /// fdatasynced, and the file is removed (its unsynced tail, cut off from the segments,
    /// must never be replayed), before the streams are read again.
    pub(super) fn reset_to_durable(&mut self) -> Result<(), StreamStoreError> {
        let saved = self.recovery.clone();
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        let mut reread = Vec::new();
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
            reread.push((id, s.dir));
        }
        self.wal_reset()?;
        for (id, dir) in reread {
            self.recover_stream(id, dir)?;
        }
        self.dirty.clear();
        self.recovery = saved;
        Ok(())
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
pub(super) fn sync_all(mut writers: Vec<&mut SegmentWriter>) -> Result<(), WriteError> {
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
