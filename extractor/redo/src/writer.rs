//! A sans-IO writer of Oracle-format redo: the bytes LGWR and ARCn put on disk.
//!
//! ```text
//! LogWriter (one log of one thread and sequence)
//!   file_header ─► block 0      current_header ─► block 1 (next SCN "none", nab 0xFFFFFFFF)
//!   append_lwn(Lwn) ─► complete blocks from offset 16 of a fresh block, with their block
//!                      number: write each at block * block_size
//!   switched_header ─► block 1 again (next SCN, next time, nab = blocks written, block 0
//!                      included)
//!   archived copy = archive_file_header + that block 1 + blocks 2..nab
//! VectorBuilder ─► change vectors: 5.2 begin, 5.1 undo (ktubl or ktubu, supplemental-log
//!   section with supplemental logging), 11.2/11.3/11.5 rows, 5.6 undo applied, 5.19/5.20
//!   session attributes, 5.4 commit or rollback, 24.4
//! ```
//!
//! Invariants:
//! - An LWN (log writer number: the unit LGWR makes durable) always ends at a block boundary
//!   (the rest of its last block is zeros): every block [`LogWriter::append_lwn`] returns is
//!   final, never a half-finished one to hold back.
//! - Vectors are in the byte order and version layout of the log; each block header's
//!   first-record offset follows Oracle's rule ([`crate::block::continuation_end_offset`]).
//! - Nothing here does I/O, panics or allocates without bound: every size is checked and
//!   reported as a [`WriterError`].
//!
//! Layouts: `shared/docs/oracle-redo-format.md` §5–§12 and the structure of the real 23ai
//! files in `../shared/fixtures/oracle-real/`.
//!
//! ```
//! use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId, Xid};
//! use redovault_redo::writer::*;
//!
//! let cfg = LogConfig {
//!     block_size: BlockSize::B512,
//!     endian: Endian::Little,
//!     compat: Compat::V23_6,
//!     scn_form: ScnForm::Big,
//!     db_id: DbId(1_497_016_494),
//!     db_name: "FREE".into(),
//!     thread: ThreadId(1),
//!     sequence: LogSeq(16),
//!     resetlogs_id: ResetlogsId(1_224_959_854),
//!     resetlogs_scn: Scn(2_061_806),
//!     activation_id: 0x593A_4BAE,
//!     first_scn: Scn(2_267_717),
//!     first_time: 1_772_847_880,
//!     log_blocks: 20_480,
//!     con_uid: 1_385_559_638,
//!     file_number: 1,
//!     control_seq: 1216,
//! };
//! let mut w = LogWriter::new(cfg.clone())?;
//! let mut file = vec![0u8; (cfg.log_blocks as usize + 1) * 512];
//! file[..512].copy_from_slice(&w.file_header());
//! file[512..1024].copy_from_slice(&w.current_header());
//!
//! let vb = VectorBuilder { endian: Endian::Little, compat: Compat::V23_6, con_id: 3,
//!                          con_uid: cfg.con_uid, undo_afn: 23,
//!                          supplemental_log: true };
//! let xid = Xid { usn: 10, slot: 12, sqn: 572 };
//! let row = RowId { data_obj: 72_726, afn: 24, block: 14, slot: 0 };
//! let insert = vb.insert(xid, 0, row, Scn(2_267_706), &[vec![0xc1, 0x02], b"hello world".to_vec()]);
//! let undo = vb.undo(xid, 0, Scn(2_267_706), &vb.delete(xid, 0, row, Scn(2_267_706)));
//! let lwn = Lwn {
//!     scn: Scn(2_267_718),
//!     time: 1_772_847_880,
//!     records: vec![
//!         Record { scn: Scn(2_267_718), subscn: 1,
//!                  vectors: vec![vb.begin(xid, Scn(2_267_700)), undo, insert] },
//!         Record { scn: Scn(2_267_719), subscn: 1,
//!                  vectors: vec![vb.commit(xid, false, Scn(2_267_718), 1_772_847_880),
//!                                vb.marker_24_4(xid)] },
//!     ],
//! };
//! let out = w.append_lwn(&lwn)?; // complete, checksummed blocks: write them as they come
//! let at = out.first_block as usize * 512;
//! file[at..at + out.bytes.len()].copy_from_slice(&out.bytes);
//! assert_eq!(out.records[0].offset, 16); // an LWN starts at offset 16 of a fresh block
//!
//! // Log switch: block 1 gets next SCN, next time and nab; the archive is nab blocks.
//! file[512..1024].copy_from_slice(&w.switched_header(Scn(2_267_723), 1_772_847_881)?);
//! let nab = w.next_block() as usize;
//! let mut archive = file[..nab * 512].to_vec();
//! archive[..512].copy_from_slice(&w.archive_file_header());
//!
//! let report = redovault_redo::analyze(&archive).expect("a redo log");
//! assert!(report.is_clean());
//! assert_eq!(report.commits[0].xid, xid);
//! assert_eq!(report.commits[0].scn, Scn(2_267_719));
//! # Ok::<(), WriterError>(())
//! ```

use crate::block::continuation_end_offset;
use crate::checksum::set_checksum;
use crate::position::{DbId, LogSeq, Rba, ResetlogsId, Scn, ThreadId};

mod time;
mod vectors;

pub use time::{redo_time_from_unix, unix_from_redo_time};
pub use vectors::{ChangeVector, RowId, Session, Uba, VectorBuilder};

/// Byte order of a redo file (block 0 magic `7D 7C 7B 7A` = little, `7A 7B 7C 7D` = big).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Linux x86-64, Windows, Solaris x86.
    Little,
    /// Solaris SPARC, AIX, HP-UX.
    Big,
}

impl Endian {
    /// The u16 `v` in this byte order.
    pub fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// The u32 `v` in this byte order.
    pub fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// Writes the u16 `v` at `buf[at..at + 2]`; does nothing if it does not fit.
    pub(crate) fn put_u16(self, buf: &mut [u8], at: usize, v: u16) {
        put(buf, at, &self.u16(v));
    }

    /// Writes the u32 `v` at `buf[at..at + 4]`; does nothing if it does not fit.
    pub(crate) fn put_u32(self, buf: &mut [u8], at: usize, v: u32) {
        put(buf, at, &self.u32(v));
    }
}

/// Copies `bytes` to `buf[at..]`; does nothing if they do not fit (callers size their buffers
/// so that everything fits: this is the no-panic form of a slice copy).
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        dst.copy_from_slice(bytes);
    }
}

/// Fills `buf[range]` with `v`; does nothing if the range does not fit.
fn fill(buf: &mut [u8], range: std::ops::Range<usize>, v: u8) {
    if let Some(dst) = buf.get_mut(range) {
        dst.fill(v);
    }
}

/// Redo block size: 512 (Linux, Windows), 1024 (HP-UX) or 4096 (4K-sector disks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockSize {
    /// 512-byte blocks (format byte 0x22).
    B512,
    /// 1024-byte blocks (format byte 0x42, as oracdc expects; see §4 of the format notes).
    B1024,
    /// 4096-byte blocks (format byte 0x82).
    B4096,
}

impl BlockSize {
    /// The block size from its byte count, if it is one Oracle uses for redo.
    pub fn from_bytes(n: u32) -> Option<BlockSize> {
        match n {
            512 => Some(BlockSize::B512),
            1024 => Some(BlockSize::B1024),
            4096 => Some(BlockSize::B4096),
            _ => None,
        }
    }

    /// Size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            BlockSize::B512 => 512,
            BlockSize::B1024 => 1024,
            BlockSize::B4096 => 4096,
        }
    }

    /// The format byte at offset 1 of every block.
    pub fn format_byte(self) -> u8 {
        match self {
            BlockSize::B512 => 0x22,
            BlockSize::B1024 => 0x42,
            BlockSize::B4096 => 0x82,
        }
    }
}

/// The compatibility version stored at block 1 offset 20 (§9.4 of the format notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Compat(pub u32);

impl Compat {
    /// 11.2.0.4: 24-byte vector headers, no con_uid / con_id.
    pub const V11_2_0_4: Compat = Compat(0x0B20_0400);
    /// 12.1.0.2: first version with 32-byte vector headers and con_uid.
    pub const V12_1_0_2: Compat = Compat(0x0C10_0200);
    /// 19.0.0.
    pub const V19_0: Compat = Compat(0x1300_0000);
    /// 23.6.0 (23ai FREE, as in the real fixtures): 5.4 carries the commit time.
    pub const V23_6: Compat = Compat(0x1706_0000);

    /// Major release number (11, 12, 19, 23, ...).
    pub fn major(self) -> u8 {
        (self.0 >> 24) as u8
    }

    /// True from 12.1 on: record con_uid, 32-byte change-vector headers with con_id.
    pub fn has_containers(self) -> bool {
        self.0 >= 0x0C10_0000
    }

    /// True from 23 on: the last 4-byte field of 5.4 is the commit time (Unix seconds).
    pub fn has_commit_time(self) -> bool {
        self.major() >= 23
    }

    /// Size of a change-vector header: 24 before 12.1, 32 from 12.1 on.
    pub fn vector_header_len(self) -> usize {
        if self.has_containers() { 32 } else { 24 }
    }

    /// Parses `11.2.0.4`, `19.0`, `23.6.0` and the like into the on-disk encoding.
    pub fn parse(s: &str) -> Option<Compat> {
        let mut parts = [0u32; 4];
        for (i, p) in s.split('.').enumerate() {
            *parts.get_mut(i)? = p.parse().ok()?;
        }
        let [a, b, c, d] = parts;
        if a == 0 || a > 255 {
            return None;
        }
        if a < 18 {
            if b > 15 || c > 15 || d > 255 {
                return None;
            }
            Some(Compat(a << 24 | b << 20 | c << 16 | d << 8))
        } else {
            if b > 255 || c > 255 || d != 0 {
                return None;
            }
            Some(Compat(a << 24 | b << 16 | c << 8))
        }
    }
}

/// How 8-byte SCN fields of the log header are written (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScnForm {
    /// `u32 base | u16 wrap | u16 0`: 48-bit SCNs, bit 15 of wrap clear (11.2 to 12.1).
    Small,
    /// `u32 base | u16 0x8000|(scn>>48) | u16 scn>>32`: the 12.2+ "big SCN" form, as in the
    /// 23ai fixture, whose header SCNs all carry the bit.
    Big,
}

/// Everything block 0 and block 1 say about one redo log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub block_size: BlockSize,
    /// Byte order of every integer in the file.
    pub endian: Endian,
    /// Compatibility version; decides the 12.1+ and 23+ layouts.
    pub compat: Compat,
    /// Form of the 8-byte header SCNs.
    pub scn_form: ScnForm,
    pub db_id: DbId,
    /// Database name: ASCII, at most 8 bytes.
    pub db_name: String,
    pub thread: ThreadId,
    /// Log sequence of this file.
    pub sequence: LogSeq,
    /// Resetlogs id (`%r` in archive names).
    pub resetlogs_id: ResetlogsId,
    pub resetlogs_scn: Scn,
    pub activation_id: u32,
    /// First (low) SCN of this log.
    pub first_scn: Scn,
    /// First time, Unix seconds (written as a redo time; the simulated host runs in UTC).
    pub first_time: i64,
    /// Size of the online log in blocks, block 0 not counted: the file is
    /// `(log_blocks + 1) * block_size` bytes and redo goes into blocks `2..=log_blocks`.
    pub log_blocks: u32,
    /// Container UID written in every record header from 12.1 on (1 = CDB$ROOT).
    pub con_uid: u32,
    /// Log member file number (kcrfh offset 48).
    pub file_number: u16,
    /// Control file sequence (kcrfh offset 36).
    pub control_seq: u32,
}

/// One redo record to write: its SCN and its change vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record-header SCN (for a 5.4, the commit SCN). Must fit the 6-byte form.
    pub scn: Scn,
    /// Sub-SCN (1 in every record of the real fixture).
    pub subscn: u16,
    /// The change vectors, in order.
    pub vectors: Vec<ChangeVector>,
}

/// One LWN: records that LGWR writes and makes durable together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lwn {
    /// LWN SCN (offset 40 of the LWN header; may be lower than the records' SCNs).
    pub scn: Scn,
    /// LWN timestamp, Unix seconds (written as a redo time).
    pub time: i64,
    /// Records; the first one carries the 68-byte LWN header.
    pub records: Vec<Record>,
}

/// The blocks one [`LogWriter::append_lwn`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenLwn {
    /// Block number of the first block; write `bytes` at `first_block * block_size`.
    pub first_block: u32,
    /// Whole blocks, checksummed: `bytes.len()` is a multiple of the block size.
    pub bytes: Vec<u8>,
    /// Where each record starts (sequence, block, offset counting the block header).
    pub records: Vec<Rba>,
}

impl WrittenLwn {
    /// Number of blocks in this LWN.
    pub fn block_count(&self, block_size: BlockSize) -> u32 {
        (self
            .bytes
            .len()
            .checked_div(block_size.bytes())
            .unwrap_or(0)) as u32
    }
}

/// What can go wrong while building redo bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriterError {
    /// The online log is too small to hold any redo.
    #[error("an online log of {0} blocks is too small (at least 3)")]
    LogTooSmall(u32),
    /// The online log has more blocks than [`MAX_LOG_BLOCKS`].
    #[error("an online log of {0} blocks is too large (at most 2^31 - 1)")]
    LogTooLarge(u32),
    /// The database name is not ASCII or longer than 8 bytes.
    #[error("database name {0:?} must be ASCII and at most 8 bytes")]
    DbName(String),
    /// An SCN does not fit where it must be written.
    #[error("SCN {0} does not fit the {1} form")]
    ScnTooLarge(u64, &'static str),
    /// A time is outside what the u32 redo time can hold (1988 to 2121).
    #[error("time {0} (Unix seconds) is outside the redo time range 1988..2121")]
    TimeOutOfRange(i64),
    /// The LWN does not fit in the blocks left in the online log: switch logs first.
    #[error("LWN needs {needed} blocks but only {available} are left in the log")]
    LogFull {
        /// Blocks the LWN needs.
        needed: u64,
        /// Blocks left before the end of the online log.
        available: u64,
    },
    /// An LWN without records.
    #[error("an LWN needs at least one record")]
    EmptyLwn,
    /// A record without change vectors.
    #[error("a record needs at least one change vector")]
    EmptyRecord,
    /// A record or field is too long for its length slot.
    #[error("{what} of {len} bytes is too long")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A change vector has more fields than its u16 length array can describe.
    #[error("a change vector with {0} fields has too many")]
    TooManyFields(usize),
    /// The next SCN of a switch is not above the first SCN.
    #[error("next SCN {next} must be greater than the first SCN {first}")]
    NextScnNotAfterFirst {
        /// The next SCN asked for.
        next: u64,
        /// The log's first SCN.
        first: u64,
    },
}

/// Length of a record header without (24) and with (68) the LWN header.
pub const RECORD_HEADER_LEN: usize = 24;
/// Length of the record header of the first record of an LWN (vld & 0x04).
pub const LWN_HEADER_LEN: usize = 68;
/// A record never starts in the last `MIN_RECORD_ROOM - 1` bytes of a block: with fewer bytes
/// left, the next record starts at offset 16 of the next block (§10.1).
pub const MIN_RECORD_ROOM: usize = 24;
/// Longest record the writer builds (its u32 length stays far from overflow).
pub const MAX_RECORD_LEN: usize = 0x7FFF_FFFF;
/// Largest online log size in blocks the writer accepts (1 TiB of 512-byte blocks).
pub const MAX_LOG_BLOCKS: u32 = 0x7FFF_FFFF;
/// nab of a log that is still being written.
pub const NAB_CURRENT: u32 = 0xFFFF_FFFF;

/// `vld` of a plain record: change vectors present.
pub const VLD_VALID: u8 = 0x01;
/// `vld` bit of a record with the 68-byte LWN header.
pub const VLD_LWN: u8 = 0x04;

/// Writes one redo log file: headers, then LWN after LWN (see the module docs).
#[derive(Debug, Clone)]
pub struct LogWriter {
    cfg: LogConfig,
    /// First block not yet written (the write point); `nab` once switched.
    next_block: u32,
    largest_lwn: u32,
    lwn_num: u16,
}

impl LogWriter {
    /// A writer for a fresh log whose first redo block will be block 2.
    pub fn new(cfg: LogConfig) -> Result<LogWriter, WriterError> {
        if cfg.log_blocks < 3 {
            return Err(WriterError::LogTooSmall(cfg.log_blocks));
        }
        if cfg.log_blocks > MAX_LOG_BLOCKS {
            return Err(WriterError::LogTooLarge(cfg.log_blocks));
        }
        if !cfg.db_name.is_ascii() || cfg.db_name.len() > 8 {
            return Err(WriterError::DbName(cfg.db_name.clone()));
        }
        redo_time_from_unix(cfg.first_time)?;
        header_scn(cfg.scn_form, cfg.first_scn)?;
        header_scn(cfg.scn_form, cfg.resetlogs_scn)?;
        Ok(LogWriter {
            cfg,
            next_block: 2,
            largest_lwn: 0,
            lwn_num: 0,
        })
    }

    /// The configuration this writer was made with.
    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    /// The first block not yet written: after a switch this is the nab of the log.
    pub fn next_block(&self) -> u32 {
        self.next_block
    }

    /// Blocks left for redo in the online log.
    pub fn remaining_blocks(&self) -> u32 {
        self.cfg
            .log_blocks
            .saturating_add(1)
            .saturating_sub(self.next_block)
    }

    /// The largest LWN written so far, in blocks.
    pub fn largest_lwn(&self) -> u32 {
        self.largest_lwn
    }

    /// Block 0 of the online log: its block count is the size of the online log.
    pub fn file_header(&self) -> Vec<u8> {
        file_header(&self.cfg, self.cfg.log_blocks)
    }

    /// Block 0 of the archived copy: its block count is nab − 1 (block 0 not counted).
    pub fn archive_file_header(&self) -> Vec<u8> {
        file_header(&self.cfg, self.next_block.saturating_sub(1))
    }

    /// Block 1 of a log being written: next SCN none, next time 0, nab `0xFFFFFFFF`.
    pub fn current_header(&self) -> Vec<u8> {
        self.header_block(None, NAB_CURRENT)
    }

    /// Block 1 of a log after its switch: next SCN, next time, and nab = blocks written.
    pub fn switched_header(&self, next_scn: Scn, next_time: i64) -> Result<Vec<u8>, WriterError> {
        if next_scn <= self.cfg.first_scn {
            return Err(WriterError::NextScnNotAfterFirst {
                next: next_scn.0,
                first: self.cfg.first_scn.0,
            });
        }
        header_scn(self.cfg.scn_form, next_scn)?;
        let t = redo_time_from_unix(next_time)?;
        Ok(self.header_block(Some((next_scn, t)), self.next_block))
    }

    /// How many blocks `lwn` takes, without writing it.
    pub fn lwn_blocks(&self, lwn: &Lwn) -> Result<u64, WriterError> {
        let lens = self.record_lengths(lwn)?;
        Ok(layout(&lens, self.cfg.block_size.bytes()).blocks)
    }

    /// Lays out `lwn` from offset 16 of the next free block and returns its finished blocks.
    ///
    /// On error nothing is written and the writer is unchanged; [`WriterError::LogFull`] means
    /// the log must be switched before this LWN.
    pub fn append_lwn(&mut self, lwn: &Lwn) -> Result<WrittenLwn, WriterError> {
        let bs = self.cfg.block_size.bytes();
        let e = self.cfg.endian;
        let lens = self.record_lengths(lwn)?;
        let plan = layout(&lens, bs);
        let available = u64::from(self.remaining_blocks());
        if plan.blocks > available {
            return Err(WriterError::LogFull {
                needed: plan.blocks,
                available,
            });
        }
        // plan.blocks <= available <= u32::MAX, and every block index is below it: the casts
        // of block counts and indexes below are exact.
        let nblocks = plan.blocks as u32;
        let lwn_scn = record_scn(lwn.scn)?;
        let lwn_time = redo_time_from_unix(lwn.time)?;
        let max_scn = record_scn(lwn.records.iter().map(|r| r.scn).max().unwrap_or(lwn.scn))?;
        let mut scns = Vec::with_capacity(lwn.records.len());
        for r in &lwn.records {
            scns.push(record_scn(r.scn)?);
        }
        // Serialize each record, then copy it into the block bodies.
        let mut bytes = vec![0u8; (nblocks as usize).saturating_mul(bs)];
        let mut first_offsets = vec![0u16; nblocks as usize];
        let mut rbas = Vec::with_capacity(lwn.records.len());
        let items = lwn
            .records
            .iter()
            .zip(&plan.starts)
            .zip(lens.iter().zip(&scns));
        for (i, ((rec, &(blk, off)), (&len, &scn))) in items.enumerate() {
            let lwn_start = i == 0;
            let mut buf = Vec::with_capacity(len);
            buf.resize(
                if lwn_start {
                    LWN_HEADER_LEN
                } else {
                    RECORD_HEADER_LEN
                },
                0,
            );
            // record_lengths keeps every length below u32::MAX / 2.
            e.put_u32(&mut buf, 0, len as u32);
            let vld = if lwn_start {
                VLD_VALID | VLD_LWN
            } else {
                VLD_VALID
            };
            put(&mut buf, 4, &[vld]);
            e.put_u16(&mut buf, 6, scn.1);
            e.put_u32(&mut buf, 8, scn.0);
            e.put_u16(&mut buf, 12, rec.subscn);
            if self.cfg.compat.has_containers() {
                e.put_u32(&mut buf, 16, self.cfg.con_uid);
            }
            if lwn_start {
                e.put_u16(&mut buf, 24, self.lwn_num);
                e.put_u16(&mut buf, 26, 1);
                e.put_u32(&mut buf, 28, nblocks);
                e.put_u32(&mut buf, 32, nblocks);
                put_scn8(e, &mut buf, 40, lwn_scn);
                put_scn8(e, &mut buf, 56, max_scn);
                e.put_u32(&mut buf, 64, lwn_time);
            }
            for v in &rec.vectors {
                v.encode_into(e, self.cfg.compat, &mut buf);
            }
            // Offsets are below the block size (at most 4096).
            let offset = off as u16;
            if let Some(first) = first_offsets.get_mut(blk as usize)
                && *first == 0
            {
                *first = offset;
            }
            // Where a record continued from this block ends, Oracle's header names that end
            // (block::continuation_end_offset), whether or not a record starts there.
            let (end_blk, end_off) = record_end((blk as usize, off), len, bs);
            if end_blk != blk as usize
                && let Some(first) = first_offsets.get_mut(end_blk)
                && *first == 0
            {
                *first = continuation_end_offset(end_off, bs);
            }
            rbas.push(Rba {
                seq: self.cfg.sequence,
                block: self.next_block.saturating_add(blk as u32),
                offset,
            });
            copy_spanning(&mut bytes, bs, (blk as usize, off), &buf);
        }
        let blocks = bytes.chunks_exact_mut(bs).zip(&first_offsets);
        for (k, (block, &first)) in blocks.enumerate() {
            let number = self.next_block.saturating_add(k as u32);
            write_block_header(&self.cfg, block, number, first);
        }
        let written = WrittenLwn {
            first_block: self.next_block,
            bytes,
            records: rbas,
        };
        self.next_block = self.next_block.saturating_add(nblocks);
        self.largest_lwn = self.largest_lwn.max(nblocks);
        self.lwn_num = self.lwn_num.wrapping_add(1);
        Ok(written)
    }

    fn record_lengths(&self, lwn: &Lwn) -> Result<Vec<usize>, WriterError> {
        if lwn.records.is_empty() {
            return Err(WriterError::EmptyLwn);
        }
        let mut lens = Vec::with_capacity(lwn.records.len());
        for (i, r) in lwn.records.iter().enumerate() {
            if r.vectors.is_empty() {
                return Err(WriterError::EmptyRecord);
            }
            let mut len = if i == 0 {
                LWN_HEADER_LEN
            } else {
                RECORD_HEADER_LEN
            };
            for v in &r.vectors {
                len = len.saturating_add(v.encoded_len(self.cfg.compat)?);
            }
            if len > MAX_RECORD_LEN {
                return Err(WriterError::TooLong {
                    what: "record",
                    len,
                });
            }
            lens.push(len);
        }
        Ok(lens)
    }

    fn header_block(&self, next: Option<(Scn, u32)>, nab: u32) -> Vec<u8> {
        let c = &self.cfg;
        let e = c.endian;
        let bs = c.block_size.bytes();
        let mut b = vec![0u8; bs];
        // Validated in `new` and `switched_header`; a failure here cannot happen, but falls
        // back to zero rather than panicking.
        let first_time = redo_time_from_unix(c.first_time).unwrap_or(0);
        e.put_u32(&mut b, 20, c.compat.0);
        e.put_u32(&mut b, 24, c.db_id.0);
        let name = c.db_name.as_bytes();
        put(&mut b, 28, name.get(..8).unwrap_or(name));
        e.put_u32(&mut b, 36, c.control_seq);
        e.put_u32(&mut b, 40, c.log_blocks);
        e.put_u32(&mut b, 44, bs as u32);
        e.put_u16(&mut b, 48, c.file_number);
        e.put_u16(&mut b, 50, 2);
        e.put_u32(&mut b, 52, c.activation_id);
        let descr = match next {
            Some((n, _)) => format!(
                "T {:04}, S {:010}, SCN 0x{:016x}-0x{:016x}",
                c.thread.0, c.sequence.0, c.first_scn.0, n.0
            ),
            None => format!(
                "T {:04}, S {:010}, SCN 0x{:016x}-0xffffffffffffffff",
                c.thread.0, c.sequence.0, c.first_scn.0
            ),
        };
        let d = descr.as_bytes();
        put(&mut b, 92, d.get(..64).unwrap_or(d));
        e.put_u32(&mut b, 156, nab);
        e.put_u32(&mut b, 160, c.resetlogs_id.0);
        let form = c.scn_form;
        put_header_scn(e, form, &mut b, 164, c.resetlogs_scn);
        e.put_u32(&mut b, 172, 2);
        e.put_u16(&mut b, 176, c.thread.0);
        put_header_scn(e, form, &mut b, 180, c.first_scn);
        e.put_u32(&mut b, 188, first_time);
        match next {
            Some((n, t)) => {
                put_header_scn(e, form, &mut b, 192, n);
                e.put_u32(&mut b, 200, t);
            }
            None => fill(&mut b, 192..200, 0xFF),
        }
        put(&mut b, 206, &[8, 18]); // zero blocks, format id
        put_header_scn(e, form, &mut b, 208, c.resetlogs_scn);
        e.put_u32(&mut b, 216, c.resetlogs_id.0);
        put_header_scn(e, form, &mut b, 220, c.first_scn);
        e.put_u32(&mut b, 228, first_time);
        e.put_u32(&mut b, 268, self.largest_lwn);
        // Real next SCN (12.2+): none in the real archived fixture as well.
        fill(&mut b, 272..280, 0xFF);
        write_block_header(c, &mut b, 1, 0);
        b
    }
}

/// Where each record of an LWN starts, and how many blocks the LWN covers.
struct Layout {
    /// (block index within the LWN, offset within the block) of each record.
    starts: Vec<(u64, usize)>,
    blocks: u64,
}

/// Places records of the given lengths from offset 16 of block 0 (§10.1, §10.2).
fn layout(lens: &[usize], bs: usize) -> Layout {
    let body = bs.saturating_sub(16).max(1) as u64;
    let mut starts = Vec::with_capacity(lens.len());
    let mut blk: u64 = 0;
    let mut off: usize = 16;
    for &len in lens {
        if bs.saturating_sub(off) < MIN_RECORD_ROOM {
            blk = blk.saturating_add(1);
            off = 16;
        }
        starts.push((blk, off));
        // Advance by `len` bytes of body, skipping block headers.
        let in_first = bs.saturating_sub(off) as u64;
        let len = len as u64;
        if len < in_first {
            off = off.saturating_add(len as usize);
        } else {
            let rest = len.saturating_sub(in_first);
            let whole = rest.checked_div(body).unwrap_or(0);
            let part = rest.checked_rem(body).unwrap_or(0) as usize;
            blk = blk.saturating_add(1).saturating_add(whole);
            off = part.saturating_add(16);
        }
    }
    // The LWN ends with the block holding its last byte.
    let blocks = if off == 16 {
        blk
    } else {
        blk.saturating_add(1)
    };
    Layout {
        starts,
        blocks: blocks.max(1),
    }
}

/// The (block, offset) just past the last byte of a record of `len` bytes written from
/// `start`: the offset is in `16 < offset <= bs` when the record crosses into a later block.
fn record_end(start: (usize, usize), len: usize, bs: usize) -> (usize, usize) {
    let (blk, off) = start;
    let in_first = bs.saturating_sub(off);
    if len <= in_first {
        return (blk, off.saturating_add(len));
    }
    let body = bs.saturating_sub(16).max(1);
    let rest = len.saturating_sub(in_first);
    let whole = rest.saturating_sub(1).checked_div(body).unwrap_or(0);
    let end = 16usize.saturating_add(rest.saturating_sub(whole.saturating_mul(body)));
    (blk.saturating_add(1).saturating_add(whole), end)
}

/// Copies `rec` into the block bodies of `bytes` from (block, offset), skipping block headers.
fn copy_spanning(bytes: &mut [u8], bs: usize, start: (usize, usize), rec: &[u8]) {
    let (mut blk, mut off) = start;
    let mut rest = rec;
    while !rest.is_empty() {
        let n = bs.saturating_sub(off).min(rest.len());
        let Some((now, later)) = rest.split_at_checked(n) else {
            return;
        };
        if n == 0 {
            return;
        }
        put(bytes, blk.saturating_mul(bs).saturating_add(off), now);
        rest = later;
        blk = blk.saturating_add(1);
        off = 16;
    }
}

/// Fills the 16-byte header of a redo block and its checksum.
fn write_block_header(c: &LogConfig, block: &mut [u8], number: u32, first_record: u16) {
    let e = c.endian;
    put(block, 0, &[0x01, c.block_size.format_byte(), 0, 0]);
    e.put_u32(block, 4, number);
    e.put_u32(block, 8, c.sequence.0);
    e.put_u16(block, 12, 0x8000 | (first_record & 0x7FFF));
    set_checksum(block, 14);
}

/// Block 0 with the given block count.
fn file_header(c: &LogConfig, count: u32) -> Vec<u8> {
    let e = c.endian;
    let mut b = vec![0u8; c.block_size.bytes()];
    put(&mut b, 1, &[c.block_size.format_byte()]);
    e.put_u32(&mut b, 4, 0xFFC0_0000);
    put(&mut b, 15, &[0x04]); // flg: checksum set
    e.put_u32(&mut b, 20, c.block_size.bytes() as u32);
    e.put_u32(&mut b, 24, count);
    e.put_u32(&mut b, 28, 0x7A7B_7C7D);
    e.put_u32(&mut b, 32, 4);
    set_checksum(&mut b, 16);
    b
}

/// (base, wrap) of an SCN that must fit the 6-byte record form.
fn record_scn(scn: Scn) -> Result<(u32, u16), WriterError> {
    if scn.0 > Scn::MAX_SMALL {
        return Err(WriterError::ScnTooLarge(scn.0, "6-byte record"));
    }
    Ok((scn.0 as u32, (scn.0 >> 32) as u16))
}

/// Writes an 8-byte SCN in the small form (`base | wrap | 0`).
fn put_scn8(e: Endian, buf: &mut [u8], at: usize, (base, wrap): (u32, u16)) {
    e.put_u32(buf, at, base);
    e.put_u16(buf, at.saturating_add(4), wrap);
    e.put_u16(buf, at.saturating_add(6), 0);
}

/// The three parts (base, wrap, wrap2) of a header SCN in the given form.
fn header_scn(form: ScnForm, scn: Scn) -> Result<(u32, u16, u16), WriterError> {
    let v = scn.0;
    match form {
        ScnForm::Small => {
            if v > Scn::MAX_SMALL {
                return Err(WriterError::ScnTooLarge(v, "small 8-byte"));
            }
            Ok((v as u32, (v >> 32) as u16, 0))
        }
        ScnForm::Big => {
            if v >> 63 != 0 {
                return Err(WriterError::ScnTooLarge(v, "big 8-byte"));
            }
            Ok((v as u32, 0x8000 | (v >> 48) as u16, (v >> 32) as u16))
        }
    }
}

/// Writes a header SCN; values were validated by the caller (out-of-range ones write none).
fn put_header_scn(e: Endian, form: ScnForm, buf: &mut [u8], at: usize, scn: Scn) {
    match header_scn(form, scn) {
        Ok((base, wrap, wrap2)) => {
            e.put_u32(buf, at, base);
            e.put_u16(buf, at.saturating_add(4), wrap);
            e.put_u16(buf, at.saturating_add(6), wrap2);
        }
        Err(_) => fill(buf, at..at.saturating_add(8), 0xFF),
    }
}

#[cfg(test)]
mod tests;
