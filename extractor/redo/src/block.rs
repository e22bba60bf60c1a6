//! The 16-byte header of every redo block (§6) and the state of a block as a reader sees it
//! (§14.3): valid, never written, stale, overwritten, torn, misplaced or malformed.

use std::fmt;

use crate::checksum;
use crate::endian::Endian;
use crate::header::format_byte_ok;
use crate::position::LogSeq;

/// Length of the header at the start of every block from block 1 on.
pub const BLOCK_HEADER_LEN: usize = 16;

/// Offset of the checksum in a block header.
pub const CHECKSUM_AT: usize = 14;

/// The 16-byte block header: `01 <fmt> 00 00 | block# | seq# | 0x8000|first-record | checksum`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// Byte 0: 0x01 for a redo block.
    pub kind: u8,
    /// Byte 1: the format byte of the block size.
    pub format: u8,
    /// Block number (@4).
    pub block: u32,
    /// Sequence of the log cycle that wrote the block (@8).
    pub seq: LogSeq,
    /// Offset of the first record boundary in this block (@12, low 15 bits): where the first
    /// record starts, or where a record continued from an earlier block ends (see
    /// [`continuation_end_offset`]); 0 when the block lies wholly inside one record.
    pub first_record: u16,
    /// Stored checksum (@14).
    pub checksum: u16,
}

impl BlockHeader {
    /// Parses the first 16 bytes of `b`, or `None` if it is shorter.
    pub fn parse(b: &[u8], endian: Endian) -> Option<BlockHeader> {
        Some(BlockHeader {
            kind: *b.first()?,
            format: *b.get(1)?,
            block: endian.u32(b, 4)?,
            seq: LogSeq(endian.u32(b, 8)?),
            first_record: endian.u16(b, 12)? & 0x7FFF,
            checksum: endian.u16(b, CHECKSUM_AT)?,
        })
    }

    /// Writes a block header into `b[..16]` (the checksum is left zero: call
    /// [`checksum::set_checksum`] with [`CHECKSUM_AT`] once the block is complete).
    pub fn write(
        b: &mut [u8],
        endian: Endian,
        format: u8,
        block: u32,
        seq: LogSeq,
        first_record: u16,
    ) {
        if let Some(h) = b.get_mut(..BLOCK_HEADER_LEN) {
            h.fill(0);
            if let Some(x) = h.first_mut() {
                *x = 0x01;
            }
            if let Some(x) = h.get_mut(1) {
                *x = format;
            }
        }
        endian.put_u32(b, 4, block);
        endian.put_u32(b, 8, seq.0);
        endian.put_u16(b, 12, 0x8000 | (first_record & 0x7FFF));
    }
}

/// Fewer bytes than this left after a continued record's end: the block header says 0, not the
/// end offset (no record can start there). Real 23ai and 19c logs follow it.
pub const CONTINUATION_ROOM: usize = 20;

/// What Oracle writes as the first-record offset of a block in which a record continued from
/// an earlier block ends at `end` (4-byte aligned, `16 < end <= block_size`) and no record
/// started before: `end` itself, whether or not another record starts there (the real logs
/// hold it in the last block of an LWN too), or 0 when fewer than [`CONTINUATION_ROOM`] bytes
/// remain. A reader that resyncs at this offset lands on a record boundary either way.
pub fn continuation_end_offset(end: usize, block_size: usize) -> u16 {
    if block_size.saturating_sub(end) < CONTINUATION_ROOM {
        0
    } else {
        u16::try_from(end).unwrap_or(0)
    }
}

/// The state of one block, judged against its expected block number and the log sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockState {
    /// Right block number, right sequence, checksum valid.
    Valid,
    /// Bytes 0..2 are zero: never written (a new or cleared log).
    Zero,
    /// Sequence lower than the log's: left over from an older cycle of a reused online log.
    Stale {
        /// Sequence found in the block.
        found: LogSeq,
    },
    /// Sequence higher than the log's: the online log was reused for a newer sequence.
    Overwritten {
        /// Sequence found in the block.
        found: LogSeq,
    },
    /// The XOR checksum does not hold: a torn write or corruption.
    Checksum,
    /// The block number in the header is not the block's position.
    WrongNumber {
        /// Block number found in the header.
        found: u32,
    },
    /// Byte 0 is not 0x01 or byte 1 does not match the block size.
    Format {
        /// Bytes 0 and 1 found.
        found: [u8; 2],
    },
    /// The file ends inside (or before) this block.
    Truncated {
        /// Bytes of the block present in the file.
        present: usize,
    },
}

impl BlockState {
    /// Short name: `valid`, `zero`, `stale`, `overwritten`, `checksum`, `block_number`,
    /// `format`, `truncated`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockState::Valid => "valid",
            BlockState::Zero => "zero",
            BlockState::Stale { .. } => "stale",
            BlockState::Overwritten { .. } => "overwritten",
            BlockState::Checksum => "checksum",
            BlockState::WrongNumber { .. } => "block_number",
            BlockState::Format { .. } => "format",
            BlockState::Truncated { .. } => "truncated",
        }
    }

    /// Why this block is bad in a complete (archived) log, or `None` when it is valid.
    pub fn bad_reason(self) -> Option<BadReason> {
        match self {
            BlockState::Valid => None,
            BlockState::Zero => Some(BadReason::Zero),
            BlockState::Stale { .. } | BlockState::Overwritten { .. } => Some(BadReason::Sequence),
            BlockState::Checksum => Some(BadReason::Checksum),
            BlockState::WrongNumber { .. } => Some(BadReason::BlockNumber),
            BlockState::Format { .. } => Some(BadReason::Format),
            BlockState::Truncated { .. } => Some(BadReason::Truncated),
        }
    }

    /// True for the states of blocks that a CURRENT log has not written yet in this cycle
    /// (never written, or left over from an older cycle).
    pub fn is_unwritten(self) -> bool {
        matches!(self, BlockState::Zero | BlockState::Stale { .. })
    }
}

impl fmt::Display for BlockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockState::Stale { found } => write!(f, "stale (sequence {found})"),
            BlockState::Overwritten { found } => write!(f, "overwritten (sequence {found})"),
            BlockState::WrongNumber { found } => write!(f, "wrong block number {found}"),
            BlockState::Format { found } => {
                write!(f, "bad format bytes {:02x} {:02x}", found[0], found[1])
            }
            BlockState::Truncated { present } => write!(f, "truncated ({present} bytes present)"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Why a block is unusable, as reported by `inspect` in `bad_blocks[].reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadReason {
    /// Never written.
    Zero,
    /// Bad format byte.
    Format,
    /// Wrong sequence (stale or overwritten).
    Sequence,
    /// Wrong block number.
    BlockNumber,
    /// Checksum mismatch (torn or corrupt).
    Checksum,
    /// The file ends inside or before the block.
    Truncated,
}

impl BadReason {
    /// `zero`, `format`, `sequence`, `block_number`, `checksum` or `truncated`.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::Zero => "zero",
            BadReason::Format => "format",
            BadReason::Sequence => "sequence",
            BadReason::BlockNumber => "block_number",
            BadReason::Checksum => "checksum",
            BadReason::Truncated => "truncated",
        }
    }
}

impl fmt::Display for BadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Judges a whole block: never written (bytes 0..2 zero), then checksum, format, block number,
/// sequence.
///
/// The checksum comes before the header fields (OpenLogReplicator checks it last): when it
/// fails, the header fields cannot be trusted, so any corruption of a block, wherever the
/// flipped bits are, reads as `checksum`; a block whose checksum holds but whose number or
/// sequence is wrong is a whole block in the wrong place or from another cycle (a stale block
/// of a reused online log keeps the valid checksum it was written with).
pub fn classify(
    block: &[u8],
    endian: Endian,
    block_size: u32,
    expected: u32,
    seq: LogSeq,
) -> BlockState {
    let Some(h) = BlockHeader::parse(block, endian) else {
        return BlockState::Truncated {
            present: block.len(),
        };
    };
    if block.len() < block_size as usize {
        return BlockState::Truncated {
            present: block.len(),
        };
    }
    if h.kind == 0 && h.format == 0 {
        return BlockState::Zero;
    }
    if !checksum::block_checksum_ok(block) {
        return BlockState::Checksum;
    }
    if h.kind != 0x01 || !format_byte_ok(block_size, h.format) {
        return BlockState::Format {
            found: [h.kind, h.format],
        };
    }
    if h.block != expected {
        return BlockState::WrongNumber { found: h.block };
    }
    if h.seq < seq {
        return BlockState::Stale { found: h.seq };
    }
    if h.seq > seq {
        return BlockState::Overwritten { found: h.seq };
    }
    BlockState::Valid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seq: u32, no: u32) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        BlockHeader::write(&mut b, Endian::Little, 0x22, no, LogSeq(seq), 16);
        b[100] = 0x5A;
        checksum::set_checksum(&mut b, CHECKSUM_AT);
        b
    }

    #[test]
    fn states() {
        let e = Endian::Little;
        let s = LogSeq(15);
        assert_eq!(classify(&block(15, 7), e, 512, 7, s), BlockState::Valid);
        assert_eq!(classify(&vec![0u8; 512], e, 512, 7, s), BlockState::Zero);
        assert_eq!(
            classify(&block(14, 7), e, 512, 7, s),
            BlockState::Stale { found: LogSeq(14) }
        );
        assert_eq!(
            classify(&block(16, 7), e, 512, 7, s),
            BlockState::Overwritten { found: LogSeq(16) }
        );
        assert_eq!(
            classify(&block(15, 8), e, 512, 7, s),
            BlockState::WrongNumber { found: 8 }
        );
        let mut b = block(15, 7);
        b[1] = 0x82;
        assert_eq!(classify(&b, e, 512, 7, s), BlockState::Checksum);
        checksum::set_checksum(&mut b, CHECKSUM_AT);
        assert_eq!(
            classify(&b, e, 512, 7, s),
            BlockState::Format { found: [1, 0x82] }
        );
        let mut b = block(15, 7);
        b[300] ^= 1;
        assert_eq!(classify(&b, e, 512, 7, s), BlockState::Checksum);
        // A flipped bit in a header field is a checksum error too.
        let mut b = block(15, 7);
        b[8] ^= 1;
        assert_eq!(classify(&b, e, 512, 7, s), BlockState::Checksum);
        assert_eq!(
            classify(&block(15, 7)[..100], e, 512, 7, s),
            BlockState::Truncated { present: 100 }
        );
        let h = BlockHeader::parse(&block(15, 7), e).unwrap();
        assert_eq!((h.block, h.seq, h.first_record), (7, LogSeq(15), 16));
    }
}
