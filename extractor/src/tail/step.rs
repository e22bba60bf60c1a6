//! The tailer's decisions: one step of the state machine in the module docs (open a log,
//! read on, switch, finish a chunk with its commits).

use std::path::PathBuf;

use bytes::Bytes;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::txn::commit_of;
use redovault_redo::{Decoder, Event, LogSeq, Opcode};
use tracing::{debug, info, warn};

use crate::archive::Lookup;
use crate::online;

use super::*;

impl Tailer {
    pub(super) fn step(&mut self) -> Result<Option<TailChunk>, TailError> {
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
    pub(super) fn finish_chunk(
        &mut self,
        start: StreamPos,
        out: Vec<u8>,
    ) -> Result<Option<TailChunk>, TailError> {
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
        Ok(Some(TailChunk {
            stream: self.io.stream,
            pos: start,
            bytes: Bytes::from(out),
            commits,
            log_end,
        }))
    }

    /// Finds the log of `pos.seq` (online, else archived) and, for a position inside it, reads
    /// and decodes the part already shipped. `Ok(false)`: not available yet.
    pub(super) fn open(&mut self) -> Result<bool, TailError> {
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
}

/// Feeds nothing; polls the decoder dry, collecting commit marks when `marks` is given.
pub(super) fn drain(
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
