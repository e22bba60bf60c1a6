//! Redo records (§10): the record header, the LWN header that opens each LWN, and a whole
//! reassembled record as the decoder yields it.

use crate::endian::{Endian, scn_from_parts};
use crate::position::{Rba, Scn};
use crate::time::RedoTime;
use crate::vector::{Layout, VectorIter};

/// Length of a record header without an LWN header.
pub const RECORD_HEADER_LEN: usize = 24;
/// Length of a record header that carries an LWN header (`vld & 0x04`).
pub const LWN_RECORD_HEADER_LEN: usize = 68;
/// `vld` bit: the record holds change vectors (KCRVALID).
pub const VLD_VALID: u8 = 0x01;
/// `vld` bit: the 68-byte header with the LWN fields is present (KCRDEPND).
pub const VLD_LWN: u8 = 0x04;

/// Header length for a `vld` byte: 68 when `vld & 0x04`, else 24.
pub fn header_len(vld: u8) -> usize {
    if vld & VLD_LWN != 0 {
        LWN_RECORD_HEADER_LEN
    } else {
        RECORD_HEADER_LEN
    }
}

/// The LWN fields of a 68-byte record header (the first record of an LWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LwnHeader {
    /// LWN number (@24).
    pub num: u16,
    /// Number of LWN headers in the group (@26).
    pub nst: u16,
    /// LWN length in blocks (@28): the LWN covers `[block, block + blocks)`.
    pub blocks: u32,
    /// LWN SCN (@40).
    pub scn: Option<Scn>,
    /// LWN timestamp (@64).
    pub time: RedoTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// Record length in bytes, not counting interleaved block headers (@0).
    pub len: u32,
    /// Validity flags (@4): 0x01 vectors, 0x02 commit SCN, 0x04 LWN header, ...
    pub vld: u8,
    /// Record SCN (wrap u16 @6, base u32 @8). A commit's SCN is this SCN.
    pub scn: Scn,
    /// Sub-SCN (@12).
    pub subscn: u16,
    /// Container UID (@16, 12.1 and later; `None` before).
    pub con_uid: Option<u32>,
    /// LWN fields when `vld & 0x04`.
    pub lwn: Option<LwnHeader>,
}

impl RecordHeader {
    /// Parses a record header from the start of the record bytes `b`; `None` if `b` is shorter
    /// than the header its `vld` announces.
    pub fn parse(b: &[u8], endian: Endian, con_uid: bool) -> Option<RecordHeader> {
        let vld = *b.get(4)?;
        if b.len() < header_len(vld) {
            return None;
        }
        let wrap = endian.u16(b, 6)?;
        let base = endian.u32(b, 8)?;
        // The record SCN is a 6-byte value (no wrap2); a set bit 15 keeps only its low bits.
        let scn = scn_from_parts(base, wrap & 0x7FFF, 0).unwrap_or_default();
        let lwn = if vld & VLD_LWN != 0 {
            Some(LwnHeader {
                num: endian.u16(b, 24)?,
                nst: endian.u16(b, 26)?,
                blocks: endian.u32(b, 28)?,
                scn: endian.scn8(b, 40)?,
                time: RedoTime(endian.u32(b, 64)?),
            })
        } else {
            None
        };
        Some(RecordHeader {
            len: endian.u32(b, 0)?,
            vld,
            scn,
            subscn: endian.u16(b, 12)?,
            con_uid: if con_uid {
                Some(endian.u32(b, 16)?)
            } else {
                None
            },
            lwn,
        })
    }

    /// Length of this header: 68 with an LWN header, else 24.
    pub fn header_len(&self) -> usize {
        header_len(self.vld)
    }
}

/// One whole redo record, reassembled across blocks. It borrows the decoder's buffers and is
/// valid until the next call to [`crate::Decoder::poll`] or [`crate::Decoder::feed`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Where the record starts (sequence, block, offset counting the block header).
    pub rba: Rba,
    /// The block that holds the record's last byte.
    pub end_block: u32,
    pub header: RecordHeader,
    /// The record bytes (`header.len` of them), without interleaved block headers.
    pub bytes: &'a [u8],
    /// Byte order and vector header length.
    pub layout: Layout,
}

impl<'a> Record<'a> {
    /// The change vectors of the record, parsed lazily; an item is an error (and the last one)
    /// when a vector or its length array does not fit in the record.
    pub fn vectors(&self) -> VectorIter<'a> {
        VectorIter::new(self.bytes, self.header.header_len(), self.layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fixture_commit_record_header() {
        // First 24 bytes of the commit record at block 582 offset 0x150 (§12.4).
        let b = [
            0xd4, 0, 0, 0, 0x01, 0, 0, 0, 0x3c, 0x9a, 0x22, 0, 0x01, 0, 0, 0, 0x56, 0xf6, 0x95,
            0x52, 0, 0, 0, 0,
        ];
        let h = RecordHeader::parse(&b, Endian::Little, true).unwrap();
        assert_eq!(h.len, 212);
        assert_eq!(h.scn, Scn(2_267_708));
        assert_eq!(h.con_uid, Some(1_385_559_638));
        assert_eq!(h.subscn, 1);
        assert!(h.lwn.is_none());
        assert!(RecordHeader::parse(&b[..20], Endian::Little, true).is_none());
        let mut lwn = b.to_vec();
        lwn[4] = 0x05;
        assert!(RecordHeader::parse(&lwn, Endian::Little, true).is_none());
    }
}
