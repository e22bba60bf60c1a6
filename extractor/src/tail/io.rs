//! The tailer's I/O: reading blocks of the online members and the archived copy, torn-block
//! re-reads, block 1 re-read at the write point, the search for an archived copy.

use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redovault_redo::block::classify;
use redovault_redo::{BlockState, LogSeq};
use tracing::{debug, info, warn};

use crate::archive::Lookup;
use crate::online::{self, LogHeader, read_full_at};

use super::error::{CopyReadError, copies_text};
use super::*;

impl Io {
    pub(super) fn source_path(&self, cur: &Cursor) -> PathBuf {
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
    pub(super) fn find_archive(&mut self, seq: LogSeq) -> Option<Lookup> {
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
    pub(super) fn wait_for_archive(
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
    pub(super) fn switch_to_archive(&mut self, cur: &mut Cursor) -> Result<bool, TailError> {
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
    pub(super) fn read_copy(
        &mut self,
        cur: &Cursor,
        copy: Replica,
        from: u32,
        n: u32,
    ) -> Result<usize, CopyReadError> {
        let len = n as usize * cur.bs();
        if self.scratch.len() < len {
            self.scratch.resize(len, 0);
        }
        let file: &File = match copy {
            Replica::Member { group, member } => {
                let m = self
                    .online
                    .member(group, member)
                    .ok_or(CopyReadError::NoSuchMember)?;
                m.file().map_err(CopyReadError::Open)?
            }
            Replica::Archive => match &cur.source {
                Source::Archive(a) => a.file(),
                Source::Online { .. } => return Err(CopyReadError::NoArchive),
            },
        };
        read_full_at(file, &mut self.scratch[..len], cur.offset(from)).map_err(CopyReadError::Read)
    }

    pub(super) fn copy_path(&self, cur: &Cursor, copy: Replica) -> PathBuf {
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
    pub(super) fn judge(
        &mut self,
        cur: &Cursor,
        copy: Replica,
        block: u32,
    ) -> (BlockState, String) {
        let bs = cur.bs();
        match self.read_copy(cur, copy, block, 1) {
            Ok(n) => {
                let b = &self.scratch[..n.min(bs)];
                let st = classify(b, cur.endian, cur.block_size, block, cur.seq);
                (st, st.to_string())
            }
            Err(e) => (BlockState::Truncated { present: 0 }, e.to_string()),
        }
    }

    /// The preferred copy of the cursor's source.
    pub(super) fn primary(cur: &Cursor) -> Replica {
        match &cur.source {
            Source::Online { group, members } => Replica::Member {
                group: *group,
                member: members.first().copied().unwrap_or(0),
            },
            Source::Archive(_) => Replica::Archive,
        }
    }

    /// Appends consecutive valid blocks from `cur.next_block` to `out`, at most `max`.
    pub(super) fn read_into(
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
    pub(super) fn resolve(
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
    pub(super) fn refresh(&mut self, cur: &mut Cursor) -> Result<Refresh, TailError> {
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

/// The delay before re-read number `n` (from 1) of a torn block: 100 µs, doubling, at most
/// `max`.
pub(super) fn torn_backoff(n: u32, max: Duration) -> Duration {
    let first = Duration::from_micros(100);
    first
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(max)
}
