//! The streaming, sans-IO decoder: [`Decoder::feed`] bytes, [`Decoder::poll`] events.
//!
//! ```text
//! feed(bytes) ──► [block 0] ─► [block 1] ─► [block 2 .. n: classify ─► walk records] ─► End
//!                 FileHeader   RedoHeader    Block events, Record events, Error events
//! record walk (§10.1): block 2 offset 16 ─► record ─► 4-byte aligned end ─► next record ...
//!   across blocks, skipping each 16-byte block header; < 24 bytes left in the block or
//!   length 0 at a boundary ─► offset 16 of the next block
//! end of redo: CURRENT log (next SCN none, nab 0xFFFFFFFF): first zero or stale block
//!              complete log: nab (blocks from nab on: no records read)
//! ```
//!
//! Invariants:
//! - `poll` returns `Ok(None)` when it needs more bytes, `Ok(Some(event))` otherwise, and
//!   `Err` only when the input is not a redo log at all (block 0 or 1 cannot be read); after
//!   that it keeps returning the same error.
//! - Damage inside the log is an event and decoding goes on: a bad block is an
//!   [`Event::Block`] with a [`BadReason`], a record-level problem an [`Event::Error`]; then
//!   the decoder resynchronises at the next block whose header names a first record offset.
//! - A declared length shorter than its header, longer than what remains of its LWN (or of
//!   the file when no LWN is known), or longer than [`MAX_RECORD_LEN`] is a `record_length`
//!   error: nothing is allocated for it.
//! - Zero or stale blocks at or past the end of redo are not bad, and no record is read past
//!   that point.
//! - Memory: the bytes fed and not yet consumed (at most one block plus the last chunk fed)
//!   and one record being reassembled, never more than the bytes that actually arrived. Feed
//!   in chunks (e.g. 1 MiB) to keep it small.
//!
//! Blocks only ([`Decoder::blocks_only`]): the same block judgement, headers, end and
//! structural errors, without the record walk (no [`Event::Record`], no record-level
//! [`Event::Error`]), for callers that decide on blocks alone (the watcher's completeness
//! check).

use std::collections::VecDeque;

use crate::block::{BLOCK_HEADER_LEN, BadReason, BlockHeader, BlockState, classify};
use crate::checksum;
use crate::endian::align4;
use crate::error::{DecodeError, ErrorKind, NotRedo};
use crate::header::{FILE_HEADER_PREFIX, FileHeader, LogState, RedoHeader};
use crate::position::{LogSeq, Rba};
use crate::record::{RECORD_HEADER_LEN, Record, RecordHeader, VLD_LWN, header_len};
use crate::vector::Layout;

/// Largest record length accepted whatever the LWN and file sizes (64 MiB).
pub const MAX_RECORD_LEN: u32 = 64 << 20;

/// Bytes of block 1 needed to read the redo log header.
const REDO_HEADER_MIN: usize = 272;

/// Consumed bytes kept before `feed` compacts its buffer.
const COMPACT_AT: usize = 1 << 20;

/// One block as judged by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockEvent {
    /// Block number (position in the file).
    pub block: u32,
    pub state: BlockState,
    /// Why it is unusable, or `None` when it is fine: valid, or not yet written in a CURRENT
    /// log (or beyond the nab of a complete one).
    pub bad: Option<BadReason>,
    /// The first-record offset of the block header, for a valid redo block (block 2 on);
    /// `None` for every other block.
    pub first_record: Option<u16>,
}

/// What [`Decoder::poll`] yields.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// Block 0 was read.
    FileHeader(FileHeader),
    /// Block 1 was read.
    RedoHeader(Box<RedoHeader>),
    /// A block from 1 on was judged (one event per block, in order; block 0 only when bad).
    Block(BlockEvent),
    /// A whole redo record.
    Record(Record<'a>),
    /// A record-level problem; decoding goes on.
    Error(DecodeError),
    /// The input ended ([`Decoder::finish`]) and everything in it was judged.
    End,
}

enum Owned {
    FileHeader(FileHeader),
    RedoHeader(Box<RedoHeader>),
    Block(BlockEvent),
    Error(DecodeError),
    End,
}

enum Yield {
    Owned(Owned),
    /// A record lying in `buf[start..start + len]`.
    InBuf {
        start: usize,
        len: usize,
        rba: Rba,
        end_block: u32,
        header: RecordHeader,
    },
    /// A record reassembled in `rec`.
    InRec {
        rba: Rba,
        end_block: u32,
        header: RecordHeader,
    },
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    FileHeader,
    RedoHeader,
    Blocks,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Looking for a record boundary: the next block's first-record offset.
    Seek,
    /// At a record boundary at the current position.
    Boundary,
    /// Inside a record that continues in the next block.
    Partial { rba: Rba, need: usize },
    /// No record is read any more (write point of a CURRENT log, or nab reached).
    Stopped,
}

/// The streaming redo decoder. See the module documentation.
pub struct Decoder {
    buf: Vec<u8>,
    head: usize,
    eof: bool,
    phase: Phase,
    failed: Option<NotRedo>,
    queue: VecDeque<Owned>,
    file: Option<FileHeader>,
    header: Option<RedoHeader>,
    seq: LogSeq,
    state: LogState,
    layout: Layout,
    /// Exclusive end of the blocks declared by block 0 (`block_count + 1`).
    end_block: u32,
    /// Exclusive end of the redo of a complete log (nab), or `end_block`.
    data_end: u32,
    next_block: u32,
    /// Position within the current block while its records are being walked.
    in_block: Option<usize>,
    walk: Walk,
    lwn_end: Option<u32>,
    rec: Vec<u8>,
    write_point: Option<u32>,
    trailing: u64,
    /// False for [`Decoder::blocks_only`]: records are not walked.
    records: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.avail())
            .field("phase", &self.phase)
            .field("next_block", &self.next_block)
            .field("walk", &self.walk)
            .field("log_state", &self.state)
            .field("write_point", &self.write_point)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Owned")
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder waiting for the first byte of a redo file.
    pub fn new() -> Decoder {
        Decoder {
            buf: Vec::new(),
            head: 0,
            eof: false,
            phase: Phase::FileHeader,
            failed: None,
            queue: VecDeque::new(),
            file: None,
            header: None,
            seq: LogSeq(0),
            state: LogState::Archived,
            layout: Layout {
                endian: crate::endian::Endian::Little,
                vector_header_len: 32,
                con_uid: true,
            },
            end_block: 0,
            data_end: 0,
            next_block: 0,
            in_block: None,
            walk: Walk::Boundary,
            lwn_end: None,
            rec: Vec::new(),
            write_point: None,
            trailing: 0,
            records: true,
        }
    }

    /// A decoder that judges blocks (and reads both headers) but does not walk records: the
    /// same [`Event::FileHeader`], [`Event::RedoHeader`], [`Event::Block`], structural
    /// [`Event::Error`]s ([`ErrorKind::HeaderMismatch`], [`ErrorKind::TrailingData`]) and
    /// [`Event::End`] as [`Decoder::new`], no [`Event::Record`] and no record-level error.
    pub fn blocks_only() -> Decoder {
        Decoder {
            records: false,
            ..Decoder::new()
        }
    }

    /// Appends bytes of the file, in order. Records yielded before are invalidated.
    pub fn feed(&mut self, data: &[u8]) {
        if self.head > 0 && (self.head >= COMPACT_AT || self.head >= self.buf.len()) {
            let head = self.head.min(self.buf.len());
            self.buf.drain(..head);
            self.head = 0;
        }
        if self.phase != Phase::Done && self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Declares the end of the input: pending bytes are judged (a partial block is reported as
    /// truncated) and [`Event::End`] follows.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Block 0, once read.
    pub fn file_header(&self) -> Option<&FileHeader> {
        self.file.as_ref()
    }

    /// Block 1, once read.
    pub fn redo_header(&self) -> Option<&RedoHeader> {
        self.header.as_ref()
    }

    /// CURRENT or archived, once block 1 is read.
    pub fn log_state(&self) -> LogState {
        self.state
    }

    /// The first block not yet written in this cycle of a CURRENT log, once seen.
    pub fn write_point(&self) -> Option<u32> {
        self.write_point
    }

    /// The number of the next block to be judged.
    pub fn next_block(&self) -> u32 {
        self.next_block
    }

    /// Yields the next event, `Ok(None)` when more bytes are needed, or `Err` when the input
    /// is not a redo log.
    pub fn poll(&mut self) -> Result<Option<Event<'_>>, NotRedo> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let y = match self.step() {
            Ok(y) => y,
            Err(e) => {
                self.failed = Some(e.clone());
                self.phase = Phase::Done;
                self.buf = Vec::new();
                self.head = 0;
                return Err(e);
            }
        };
        Ok(match y {
            Yield::NeedMore => None,
            Yield::Owned(o) => Some(match o {
                Owned::FileHeader(h) => Event::FileHeader(h),
                Owned::RedoHeader(h) => Event::RedoHeader(h),
                Owned::Block(b) => Event::Block(b),
                Owned::Error(e) => Event::Error(e),
                Owned::End => Event::End,
            }),
            Yield::InBuf {
                start,
                len,
                rba,
                end_block,
                header,
            } => {
                let bytes = start
                    .checked_add(len)
                    .and_then(|end| self.buf.get(start..end))
                    .unwrap_or(&[]);
                Some(Event::Record(Record {
                    rba,
                    end_block,
                    header,
                    bytes,
                    layout: self.layout,
                }))
            }
            Yield::InRec {
                rba,
                end_block,
                header,
            } => Some(Event::Record(Record {
                rba,
                end_block,
                header,
                bytes: &self.rec,
                layout: self.layout,
            })),
        })
    }

    fn avail(&self) -> usize {
        self.buf.len().saturating_sub(self.head)
    }

    fn bs(&self) -> usize {
        self.file.map_or(512, |f| f.bs())
    }

    fn current_block(&self) -> &[u8] {
        let bs = self.bs();
        self.head
            .checked_add(bs)
            .and_then(|end| self.buf.get(self.head..end))
            .unwrap_or(&[])
    }

    fn consume_block(&mut self) {
        self.head = self.head.saturating_add(self.bs()).min(self.buf.len());
        self.next_block = self.next_block.saturating_add(1);
        self.in_block = None;
    }

    fn step(&mut self) -> Result<Yield, NotRedo> {
        // Every pass of this loop returns, queues an event (returned on the next pass) or moves
        // the position forward (a byte offset, a block, or the phase), so it always ends.
        loop {
            if let Some(o) = self.queue.pop_front() {
                return Ok(Yield::Owned(o));
            }
            match self.phase {
                Phase::FileHeader => {
                    if !self.read_file_header()? {
                        return Ok(Yield::NeedMore);
                    }
                }
                Phase::RedoHeader => {
                    if !self.read_redo_header()? {
                        return Ok(Yield::NeedMore);
                    }
                }
                Phase::Blocks => {
                    if let Some(pos) = self.in_block {
                        if let Some(y) = self.walk_block(pos) {
                            return Ok(y);
                        }
                    } else if !self.next_block_state() {
                        return Ok(Yield::NeedMore);
                    }
                }
                Phase::Done => return Ok(Yield::NeedMore),
            }
        }
    }

    /// Reads block 0; false when more bytes are needed.
    fn read_file_header(&mut self) -> Result<bool, NotRedo> {
        let avail = self.avail();
        let short = || NotRedo::new(0, format!("file ends after {avail} bytes, inside block 0"));
        if avail < FILE_HEADER_PREFIX {
            return if self.eof { Err(short()) } else { Ok(false) };
        }
        let prefix = self.buf.get(self.head..).unwrap_or(&[]);
        let fh = FileHeader::parse(prefix)?;
        let bs = fh.bs();
        if avail < bs {
            return if self.eof { Err(short()) } else { Ok(false) };
        }
        self.file = Some(fh);
        self.end_block = fh.block_count.saturating_add(1);
        self.data_end = self.end_block;
        self.layout.endian = fh.endian;
        let ok = checksum::block_checksum_ok(self.current_block());
        self.consume_block();
        self.queue.push_back(Owned::FileHeader(fh));
        if !ok {
            self.queue.push_back(Owned::Block(BlockEvent {
                block: 0,
                state: BlockState::Checksum,
                bad: Some(BadReason::Checksum),
                first_record: None,
            }));
        }
        self.phase = Phase::RedoHeader;
        Ok(true)
    }

    /// Reads block 1; false when more bytes are needed.
    fn read_redo_header(&mut self) -> Result<bool, NotRedo> {
        let Some(fh) = self.file else {
            return Err(NotRedo::new(0, "block 0 not read"));
        };
        let bs = fh.bs();
        let avail = self.avail();
        let at = u64::from(fh.block_size);
        if avail < bs && !(self.eof && avail >= REDO_HEADER_MIN) {
            return if self.eof {
                Err(NotRedo::new(
                    at,
                    format!("file ends {avail} bytes into block 1 (the redo log header)"),
                ))
            } else {
                Ok(false)
            };
        }
        let end = self.head.saturating_add(bs.min(avail));
        let b1 = self.buf.get(self.head..end).unwrap_or(&[]);
        let header = RedoHeader::parse(b1, fh.endian, at)?;
        self.seq = header.sequence;
        let state = classify(b1, fh.endian, fh.block_size, 1, header.sequence);
        self.state = header.log_state();
        self.layout = Layout {
            endian: fh.endian,
            vector_header_len: header.compat.vector_header_len(),
            con_uid: header.compat.is_12_1_or_later(),
        };
        if self.state == LogState::Archived {
            if (2..=self.end_block).contains(&header.nab) {
                self.data_end = header.nab;
            } else {
                self.queue.push_back(Owned::Error(DecodeError::new(
                    ErrorKind::HeaderMismatch,
                    1,
                    156,
                    format!(
                        "nab {} does not fit the {} blocks that block 0 declares",
                        header.nab, fh.block_count
                    ),
                )));
            }
        }
        self.header = Some(header.clone());
        self.queue.push_back(Owned::RedoHeader(Box::new(header)));
        self.queue.push_back(Owned::Block(BlockEvent {
            block: 1,
            state,
            bad: state.bad_reason(),
            first_record: None,
        }));
        if let BlockState::Truncated { .. } = state {
            self.head = self.buf.len();
            self.queue.push_back(Owned::End);
            self.phase = Phase::Done;
            return Ok(true);
        }
        self.consume_block();
        self.walk = if self.records {
            Walk::Boundary
        } else {
            Walk::Stopped
        };
        self.phase = Phase::Blocks;
        Ok(true)
    }

    /// Judges the next block; false when more bytes are needed.
    fn next_block_state(&mut self) -> bool {
        let bs = self.bs();
        let avail = self.avail();
        if self.next_block >= self.end_block {
            // Bytes past the declared blocks are counted (not kept) until the end of input.
            self.trailing = self.trailing.saturating_add(avail as u64);
            self.head = self.buf.len();
            if !self.eof {
                return false;
            }
            if self.trailing > 0 {
                self.queue.push_back(Owned::Error(DecodeError::new(
                    ErrorKind::TrailingData,
                    self.next_block,
                    0,
                    format!(
                        "{} bytes after the last block that block 0 declares",
                        self.trailing
                    ),
                )));
            }
            self.finish_stream();
            return true;
        }
        if avail < bs {
            if !self.eof {
                return false;
            }
            let state = BlockState::Truncated { present: avail };
            self.queue.push_back(Owned::Block(BlockEvent {
                block: self.next_block,
                state,
                bad: Some(BadReason::Truncated),
                first_record: None,
            }));
            self.finish_stream();
            return true;
        }
        let Some(fh) = self.file else {
            self.finish_stream();
            return true;
        };
        let block = self.next_block;
        let state = classify(
            self.current_block(),
            fh.endian,
            fh.block_size,
            block,
            self.seq,
        );
        let beyond_end = block >= self.data_end;
        let unwritten = state.is_unwritten() && (self.state == LogState::Current || beyond_end);
        let bad = if unwritten { None } else { state.bad_reason() };
        if unwritten && self.state == LogState::Current && self.write_point.is_none() {
            self.write_point = Some(block);
        }
        if unwritten || beyond_end {
            self.walk = Walk::Stopped;
        }
        let first_record = if state == BlockState::Valid {
            BlockHeader::parse(self.current_block(), fh.endian).map(|h| h.first_record)
        } else {
            None
        };
        self.queue.push_back(Owned::Block(BlockEvent {
            block,
            state,
            bad,
            first_record,
        }));
        if state == BlockState::Valid && self.walk != Walk::Stopped {
            self.in_block = Some(BLOCK_HEADER_LEN);
        } else {
            if bad.is_some() && self.walk != Walk::Stopped {
                // Any record in progress is lost; find the next boundary after the damage.
                self.walk = Walk::Seek;
                self.lwn_end = None;
            }
            self.consume_block();
        }
        true
    }

    fn finish_stream(&mut self) {
        self.head = self.buf.len();
        self.in_block = None;
        self.queue.push_back(Owned::End);
        self.phase = Phase::Done;
    }

    /// Appends bytes `from..to` of the current block to the record being reassembled.
    fn append_to_record(&mut self, from: usize, to: usize) {
        let src = self
            .head
            .checked_add(from)
            .zip(self.head.checked_add(to))
            .and_then(|(a, b)| self.buf.get(a..b))
            .unwrap_or(&[]);
        self.rec.extend_from_slice(src);
    }

    fn record_error(&mut self, kind: ErrorKind, pos: usize, detail: String) {
        let offset = u32::try_from(pos).unwrap_or(u32::MAX);
        self.queue.push_back(Owned::Error(DecodeError::new(
            kind,
            self.next_block,
            offset,
            detail,
        )));
    }

    /// Walks the records of the current (valid) block from `pos`; returns a record to yield,
    /// or `None` after having moved on (or queued an event).
    fn walk_block(&mut self, pos: usize) -> Option<Yield> {
        let bs = self.bs();
        let block_no = self.next_block;
        let endian = self.layout.endian;
        match self.walk {
            Walk::Stopped => {
                self.consume_block();
                None
            }
            Walk::Seek => {
                let first =
                    BlockHeader::parse(self.current_block(), endian).map_or(0, |h| h.first_record);
                let first = usize::from(first);
                if pos == BLOCK_HEADER_LEN
                    && first >= BLOCK_HEADER_LEN
                    && first < bs
                    && first % 4 == 0
                {
                    self.walk = Walk::Boundary;
                    self.lwn_end = None;
                    self.in_block = Some(first);
                } else {
                    self.consume_block();
                }
                None
            }
            Walk::Partial { rba, need } => {
                let room = bs.saturating_sub(BLOCK_HEADER_LEN);
                let take = need.min(room);
                let end = BLOCK_HEADER_LEN.saturating_add(take);
                self.append_to_record(BLOCK_HEADER_LEN, end);
                let need = need.saturating_sub(take);
                if need > 0 {
                    self.walk = Walk::Partial { rba, need };
                    self.consume_block();
                    return None;
                }
                self.walk = Walk::Boundary;
                let next = align4(end);
                if next >= bs {
                    self.consume_block();
                } else {
                    self.in_block = Some(next);
                }
                match RecordHeader::parse(&self.rec, endian, self.layout.con_uid) {
                    Some(header) => Some(Yield::InRec {
                        rba,
                        end_block: block_no,
                        header,
                    }),
                    None => {
                        // Unreachable: the length was checked against the header length.
                        self.walk = Walk::Seek;
                        None
                    }
                }
            }
            Walk::Boundary => self.record_at(pos),
        }
    }

    /// Starts the record at `pos` of the current block (the walk is at a boundary).
    fn record_at(&mut self, pos: usize) -> Option<Yield> {
        let bs = self.bs();
        let block_no = self.next_block;
        let endian = self.layout.endian;
        let remaining = bs.saturating_sub(pos);
        let block = self.current_block();
        let len = endian.u32(block, pos).unwrap_or(0);
        if remaining < RECORD_HEADER_LEN || len == 0 {
            self.consume_block();
            return None;
        }
        let vld = block.get(pos.saturating_add(4)).copied().unwrap_or(0);
        let hl = header_len(vld);
        let lwn_blocks = if vld & VLD_LWN != 0 && remaining >= hl {
            endian.u32(block, pos.saturating_add(28))
        } else {
            None
        };
        if self.lwn_end.is_some_and(|end| block_no >= end) {
            self.lwn_end = None;
        }
        if let Some(blocks) = lwn_blocks {
            let end = block_no.checked_add(blocks);
            match end {
                Some(end) if blocks > 0 && end <= self.end_block => self.lwn_end = Some(end),
                _ => {
                    self.lwn_end = None;
                    self.record_error(
                        ErrorKind::LwnLength,
                        pos,
                        format!("LWN of {blocks} blocks runs past the end of the file"),
                    );
                }
            }
        }
        let limit = self.lwn_end.unwrap_or(self.end_block);
        let later_blocks = u64::from(limit.saturating_sub(block_no).saturating_sub(1));
        let room = (bs.saturating_sub(BLOCK_HEADER_LEN)) as u64;
        let capacity = later_blocks
            .saturating_mul(room)
            .saturating_add(remaining as u64);
        let len_us = len as usize;
        if len_us < hl || u64::from(len) > capacity || len > MAX_RECORD_LEN {
            let what = if self.lwn_end.is_some() {
                "its LWN"
            } else {
                "the file"
            };
            let detail = if len_us < hl {
                format!("record length {len} is shorter than its {hl}-byte header")
            } else {
                format!(
                    "record length {len} (0x{len:x}) is longer than the {capacity} bytes left in {what}"
                )
            };
            self.record_error(ErrorKind::RecordLength, pos, detail);
            self.walk = Walk::Seek;
            self.lwn_end = None;
            self.consume_block();
            return None;
        }
        let rba = Rba {
            seq: self.seq,
            block: block_no,
            offset: u16::try_from(pos).unwrap_or(u16::MAX),
        };
        let block = self.current_block();
        if len_us <= remaining {
            let start = self.head.saturating_add(pos);
            let header = RecordHeader::parse(
                block.get(pos..pos.saturating_add(len_us)).unwrap_or(&[]),
                endian,
                self.layout.con_uid,
            );
            let next = align4(pos.saturating_add(len_us));
            if next >= bs {
                self.consume_block();
            } else {
                self.in_block = Some(next);
            }
            return header.map(|header| Yield::InBuf {
                start,
                len: len_us,
                rba,
                end_block: block_no,
                header,
            });
        }
        self.rec.clear();
        self.append_to_record(pos, bs);
        self.walk = Walk::Partial {
            rba,
            need: len_us.saturating_sub(remaining),
        };
        self.consume_block();
        None
    }
}

#[cfg(test)]
mod tests {
    //! Synthetic logs in every framing variant: 512/1024/4096-byte blocks, both byte orders,
    //! 11.2 (24-byte vector headers, no con_uid) and 23ai (32-byte headers) layouts.

    use super::*;
    use crate::endian::Endian;
    use crate::header::FILE_HEADER_CHECKSUM_AT;
    use crate::position::{Scn, Xid};
    use crate::report::analyze;

    struct Synth {
        e: Endian,
        bs: usize,
        compat: u32,
    }

    impl Synth {
        fn wide(&self) -> bool {
            crate::header::CompatVersion(self.compat).is_12_1_or_later()
        }

        fn vector(&self, layer: u8, code: u8, class: u16, fields: &[Vec<u8>]) -> Vec<u8> {
            let hl = if self.wide() { 32 } else { 24 };
            let mut v = vec![0u8; hl];
            v[0] = layer;
            v[1] = code;
            self.e.put_u16(&mut v, 2, class);
            self.e.put_u16(&mut v, 6, 0x0001);
            self.e.put_u16(&mut v, 22, 0x1C16);
            if self.wide() {
                self.e.put_u16(&mut v, 24, 3);
            }
            let n = 2 + 2 * fields.len();
            let mut arr = vec![0u8; align4(n)];
            self.e.put_u16(&mut arr, 0, n as u16);
            for (i, f) in fields.iter().enumerate() {
                self.e.put_u16(&mut arr, 2 + 2 * i, f.len() as u16);
            }
            v.extend_from_slice(&arr);
            for f in fields {
                let mut f = f.clone();
                f.resize(align4(f.len()), 0);
                v.extend_from_slice(&f);
            }
            v
        }

        fn record(&self, scn: u32, vectors: &[Vec<u8>]) -> Vec<u8> {
            let mut r = vec![0u8; 24];
            let len = 24 + vectors.iter().map(Vec::len).sum::<usize>();
            self.e.put_u32(&mut r, 0, len as u32);
            r[4] = 0x01;
            self.e.put_u32(&mut r, 8, scn);
            self.e.put_u16(&mut r, 12, 1);
            if self.wide() {
                self.e.put_u32(&mut r, 16, 77);
            }
            for v in vectors {
                r.extend_from_slice(v);
            }
            r
        }

        fn ktu(&self, slot: u16, sqn: u32, flg: u8, len: usize) -> Vec<u8> {
            let mut f = vec![0u8; len];
            self.e.put_u16(&mut f, 0, slot);
            self.e.put_u32(&mut f, 4, sqn);
            if len > 16 {
                f[16] = flg;
            }
            f
        }

        /// A log of sequence 7 holding `records` back to back from block 2.
        fn log(&self, records: &[Vec<u8>], current: bool) -> Vec<u8> {
            let bs = self.bs;
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            let mut firsts: Vec<u16> = Vec::new();
            let mut cur = vec![0u8; bs];
            let mut pos = 16;
            let mut first = 0u16;
            for r in records {
                if bs - pos < 24 {
                    blocks.push(std::mem::replace(&mut cur, vec![0u8; bs]));
                    firsts.push(std::mem::take(&mut first));
                    pos = 16;
                }
                if first == 0 {
                    first = pos as u16;
                }
                let mut rest = &r[..];
                while !rest.is_empty() {
                    let take = rest.len().min(bs - pos);
                    cur[pos..pos + take].copy_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    pos += take;
                    if pos == bs {
                        blocks.push(std::mem::replace(&mut cur, vec![0u8; bs]));
                        firsts.push(std::mem::take(&mut first));
                        pos = 16;
                    }
                }
                pos = align4(pos);
            }
            if pos > 16 {
                blocks.push(cur);
                firsts.push(first);
            }
            let fmt = crate::header::format_byte_for(bs as u32).unwrap();
            let count = blocks.len() + 1;
            let mut out = vec![0u8; bs * 2];
            out[1] = fmt;
            self.e.put_u32(&mut out, 20, bs as u32);
            self.e.put_u32(&mut out, 24, count as u32);
            self.e.put_u32(&mut out, 28, 0x7A7B_7C7D);
            checksum::set_checksum(&mut out[..bs], FILE_HEADER_CHECKSUM_AT);
            let b1 = &mut out[bs..];
            BlockHeader::write(b1, self.e, fmt, 1, LogSeq(7), 0);
            self.e.put_u32(b1, 20, self.compat);
            self.e.put_u32(b1, 24, 4242);
            b1[28..32].copy_from_slice(b"SYNT");
            self.e
                .put_u32(b1, 156, if current { u32::MAX } else { count as u32 + 1 });
            self.e.put_u16(b1, 176, 2);
            self.e.put_u32(b1, 180, 1000);
            if current {
                b1[192..200].fill(0xFF);
            } else {
                self.e.put_u32(b1, 192, 5000);
            }
            checksum::set_checksum(b1, crate::block::CHECKSUM_AT);
            for (i, (mut b, f)) in blocks.into_iter().zip(firsts).enumerate() {
                BlockHeader::write(&mut b, self.e, fmt, i as u32 + 2, LogSeq(7), f);
                checksum::set_checksum(&mut b, crate::block::CHECKSUM_AT);
                out.extend_from_slice(&b);
            }
            out
        }
    }

    #[test]
    fn every_block_size_byte_order_and_layout() {
        for e in [Endian::Little, Endian::Big] {
            for bs in [512, 1024, 4096] {
                for compat in [0x0B20_0400, 0x0C10_0200, 0x1706_0000] {
                    let s = Synth { e, bs, compat };
                    let mut recs = Vec::new();
                    for i in 0..40u32 {
                        let begin = s.vector(5, 2, 35, &[s.ktu(12, 572 + i, 0, 32)]);
                        let insert = s.vector(11, 2, 1, &[vec![0xAB; 700 + i as usize * 13]]);
                        recs.push(s.record(100 + 2 * i, &[begin, insert]));
                        let flg = if i % 5 == 4 { 0x04 } else { 0x12 };
                        let ktucm = s.ktu(12, 572 + i, flg, 20);
                        let commit =
                            s.vector(5, 4, 35, &[ktucm, vec![0; 16], s.e_u32(1_772_847_880)]);
                        recs.push(s.record(101 + 2 * i, &[commit]));
                    }
                    let log = s.log(&recs, false);
                    let r = analyze(&log).unwrap();
                    let what = format!("{e:?} {bs} {compat:x}");
                    assert!(r.is_clean(), "{what}: {:?} {:?}", r.bad_blocks, r.errors);
                    assert_eq!(r.file.endian, e, "{what}");
                    assert_eq!(r.header.db_name, "SYNT");
                    assert_eq!(r.header.thread.0, 2);
                    assert_eq!(r.records, 80, "{what}");
                    assert_eq!(r.commits.len(), 40, "{what}");
                    assert_eq!(r.begins.len(), 40, "{what}");
                    for (i, c) in r.commits.iter().enumerate() {
                        let i = i as u32;
                        assert_eq!(
                            c.xid,
                            Xid {
                                usn: 10,
                                slot: 12,
                                sqn: 572 + i
                            },
                            "{what}"
                        );
                        assert_eq!(c.scn, Scn(u64::from(101 + 2 * i)), "{what}");
                        assert_eq!(c.rollback, i % 5 == 4, "{what}");
                        assert_eq!(c.unix_time, Some(1_772_847_880), "{what}");
                        assert_eq!(c.con_id.is_some(), compat >= 0x0C10_0000, "{what}");
                    }
                    assert_eq!(r.row_changes.len(), 40);
                    assert!(r.row_changes.iter().all(|w| w.data_object == 72_726));
                    assert_eq!(r.last_commit.map(|c| c.xid.sqn), Some(572 + 38));

                    // The same log as the CURRENT online log, with a stale tail.
                    let mut cur = s.log(&recs, true);
                    let nblocks = cur.len() / bs;
                    let tail = nblocks - 3;
                    for n in tail..nblocks {
                        let b = &mut cur[n * bs..(n + 1) * bs];
                        s.e.put_u32(b, 8, 6);
                        checksum::set_checksum(b, crate::block::CHECKSUM_AT);
                    }
                    let r = analyze(&cur).unwrap();
                    assert_eq!(r.log_state, LogState::Current, "{what}");
                    assert!(r.is_clean(), "{what}: {:?}", r.bad_blocks);
                    assert_eq!(r.write_point, Some(tail as u32), "{what}");
                    assert!(r.commits.iter().all(|c| c.end_block < tail as u32));
                }
            }
        }
    }

    impl Synth {
        fn e_u32(&self, v: u32) -> Vec<u8> {
            let mut b = vec![0u8; 4];
            self.e.put_u32(&mut b, 0, v);
            b
        }
    }

    #[test]
    fn need_more_bytes_then_end() {
        let s = Synth {
            e: Endian::Little,
            bs: 512,
            compat: 0x1706_0000,
        };
        let rec = s.record(5, &[s.vector(24, 4, 1, &[vec![1; 8]])]);
        let log = s.log(&[rec], false);
        let mut d = Decoder::new();
        assert!(d.poll().unwrap().is_none());
        d.feed(&log[..31]);
        assert!(d.poll().unwrap().is_none());
        d.feed(&log[31..]);
        let mut kinds = Vec::new();
        while let Some(ev) = d.poll().unwrap() {
            kinds.push(match ev {
                Event::FileHeader(_) => "file",
                Event::RedoHeader(_) => "header",
                Event::Block(_) => "block",
                Event::Record(_) => "record",
                Event::Error(_) => "error",
                Event::End => "end",
            });
        }
        assert_eq!(kinds, ["file", "header", "block", "block", "record"]);
        d.finish();
        assert!(matches!(d.poll().unwrap(), Some(Event::End)));
        assert!(d.poll().unwrap().is_none());
    }

    /// Every event but records and record-level errors, as text.
    fn non_record_events(mut d: Decoder, log: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for piece in log.chunks(1000) {
            d.feed(piece);
            while let Some(ev) = d.poll().unwrap() {
                match ev {
                    Event::Record(_) => {}
                    Event::Error(e)
                        if !matches!(
                            e.kind,
                            ErrorKind::TrailingData | ErrorKind::HeaderMismatch
                        ) => {}
                    ev => out.push(format!("{ev:?}")),
                }
            }
        }
        d.finish();
        while let Some(ev) = d.poll().unwrap() {
            if !matches!(ev, Event::Record(_)) {
                out.push(format!("{ev:?}"));
            }
        }
        out
    }

    #[test]
    fn blocks_only_judges_blocks_like_the_full_decoder_without_records() {
        let s = Synth {
            e: Endian::Little,
            bs: 512,
            compat: 0x1706_0000,
        };
        let recs: Vec<Vec<u8>> = (0..30u32)
            .map(|i| s.record(10 + i, &[s.vector(11, 2, 1, &[vec![0xCD; 900]])]))
            .collect();
        let clean = s.log(&recs, false);
        let mut flipped = clean.clone();
        flipped[512 * 9 + 100] ^= 0x10;
        let mut trailing = clean.clone();
        trailing.extend_from_slice(&[7u8; 300]);
        let truncated = clean[..clean.len() - 700].to_vec();
        let mut current = s.log(&recs, true);
        let n = current.len() / 512;
        current[(n - 2) * 512..].fill(0);
        for (what, log) in [
            ("clean", &clean),
            ("flipped bit", &flipped),
            ("trailing bytes", &trailing),
            ("truncated", &truncated),
            ("current", &current),
        ] {
            let full = non_record_events(Decoder::new(), log);
            let blocks = non_record_events(Decoder::blocks_only(), log);
            assert_eq!(full, blocks, "{what}");
            assert!(full.len() > 30, "{what}: {} events", full.len());
            let mut d = Decoder::blocks_only();
            d.feed(log);
            d.finish();
            while let Some(ev) = d.poll().unwrap() {
                assert!(!matches!(ev, Event::Record(_)), "{what}: a record");
            }
        }
        assert!(
            non_record_events(Decoder::new(), &flipped)
                .iter()
                .any(|e| e.contains("Checksum")),
            "the flipped bit is seen"
        );
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing() {
        // Block 0 claims 2^32 - 1 blocks; a record claims 60 MiB (under MAX_RECORD_LEN, within
        // the claimed file). Only 20 blocks exist: the record buffer grows with the bytes that
        // arrive, never to the declared length, and the end is reported as truncated.
        let s = Synth {
            e: Endian::Little,
            bs: 512,
            compat: 0x1706_0000,
        };
        let mut big = s.record(9, &[s.vector(11, 2, 1, &[vec![0x5A; 9000]])]);
        s.e.put_u32(&mut big, 0, 60 << 20);
        let mut log = s.log(&[big], false);
        s.e.put_u32(&mut log, 24, u32::MAX);
        checksum::set_checksum(&mut log[..512], FILE_HEADER_CHECKSUM_AT);
        let blocks = (log.len() / 512) as u32;
        let mut d = Decoder::new();
        d.feed(&log);
        d.finish();
        let mut last = None;
        while let Some(ev) = d.poll().unwrap() {
            match ev {
                Event::Block(b) => last = Some(b),
                Event::Record(r) => panic!("no record can be whole: {}", r.rba),
                _ => {}
            }
        }
        assert_eq!(
            last.map(|b| (b.block, b.bad)),
            Some((blocks, Some(BadReason::Truncated)))
        );
        assert!(d.rec.capacity() < 64 << 10, "{}", d.rec.capacity());
        // 0xFFFFFFFF is refused outright, with its position.
        let mut all = s.record(9, &[s.vector(11, 2, 1, &[vec![1; 8]])]);
        s.e.put_u32(&mut all, 0, u32::MAX);
        let r = analyze(&s.log(&[all], false)).unwrap();
        let e = &r.errors[0];
        assert_eq!(
            (e.kind, e.block, e.offset),
            (ErrorKind::RecordLength, 2, 16)
        );
    }

    #[test]
    fn not_redo_is_sticky() {
        let mut d = Decoder::new();
        d.feed(&[0x42; 64]);
        assert!(d.poll().is_err());
        d.feed(&[0; 64]);
        assert!(d.poll().is_err());
    }
}
