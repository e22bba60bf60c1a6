//! The first-record offset of every block header, checked against the records themselves.
//!
//! Oracle's rule, confirmed byte by byte on the real 23ai logs (seq 15: 576 blocks where a
//! record starts, 6 where only a continued record ends, 14 wholly inside a record; seq 16
//! likewise) and stated for 19c in the format notes §6: the field holds the offset of the first
//! record that starts in the block; in a block where a record continued from an earlier block
//! ends, the offset where it ends, even when no record follows it
//! ([`crate::block::continuation_end_offset`]: 0 when fewer than 20 bytes remain); 0 in a block
//! wholly inside one record.
//!
//! [`OffsetChecker`] follows the decoder's events in a bounded window: a block's expected value
//! is settled once a record starts in a later block (records come in log order), so it keeps
//! only the blocks of the record being read.

use std::collections::{BTreeMap, VecDeque};

use crate::block::{BLOCK_HEADER_LEN, continuation_end_offset};
use crate::endian::align4;
use crate::position::Rba;

/// At most this many mismatches are listed (the rest are counted).
pub const MAX_MISMATCHES: usize = 1_000;

/// Blocks whose header was read but whose records have not all been seen, at most: beyond it
/// (a long stretch of blocks without a record, which only damage gives) the oldest go
/// unchecked rather than growing memory.
const MAX_PENDING: usize = 1 << 16;

/// A block whose header names another first-record offset than its records give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OffsetMismatch {
    pub block: u32,
    /// The offset in the block header.
    pub found: u16,
    /// The offset Oracle's rule gives for the records in the block.
    pub expected: u16,
}

/// The result of checking every valid block's first-record offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct OffsetCheck {
    /// Blocks checked: valid redo blocks that a record starts in, ends in or crosses.
    pub checked: u64,
    /// Blocks that break the rule, in block order (at most [`MAX_MISMATCHES`]).
    pub mismatches: Vec<OffsetMismatch>,
    /// Mismatches not listed.
    pub mismatches_omitted: u64,
}

impl OffsetCheck {
    /// True when no checked block breaks the rule.
    pub fn is_consistent(&self) -> bool {
        self.mismatches.is_empty() && self.mismatches_omitted == 0
    }
}

/// Checks block headers against records as the decoder yields them (see the module docs).
#[derive(Debug, Default)]
pub struct OffsetChecker {
    block_size: usize,
    /// Valid blocks read, with their header's offset, awaiting their records.
    found: VecDeque<(u32, u16)>,
    /// Expected offsets of blocks touched by the records seen so far; the first value wins.
    expected: BTreeMap<u32, u16>,
    check: OffsetCheck,
}

impl OffsetChecker {
    /// A checker for a log of `block_size`-byte blocks.
    pub fn new(block_size: usize) -> OffsetChecker {
        OffsetChecker {
            block_size,
            ..OffsetChecker::default()
        }
    }

    /// A valid block whose records are walked, and the offset its header holds.
    pub fn block(&mut self, block: u32, first_record: u16) {
        if self.found.len() >= MAX_PENDING {
            self.found.pop_front();
        }
        self.found.push_back((block, first_record));
    }

    /// A record of `len` bytes starting at `rba`.
    pub fn record(&mut self, rba: Rba, len: u32) {
        self.settle_below(rba.block);
        let bs = self.block_size;
        let body = bs.saturating_sub(BLOCK_HEADER_LEN);
        if body == 0 {
            return;
        }
        self.expected.entry(rba.block).or_insert(rba.offset);
        let in_first = bs.saturating_sub(usize::from(rba.offset));
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len <= in_first {
            return;
        }
        // The rest spans `whole + 1` more blocks and ends at `end` (16 < end <= bs).
        let rest = len.saturating_sub(in_first);
        let whole = rest.saturating_sub(1).checked_div(body).unwrap_or(0);
        let end = BLOCK_HEADER_LEN.saturating_add(rest.saturating_sub(whole.saturating_mul(body)));
        let whole = u32::try_from(whole).unwrap_or(u32::MAX);
        let end_block = rba.block.saturating_add(1).saturating_add(whole);
        for b in rba.block.saturating_add(1)..end_block {
            self.expected.entry(b).or_insert(0);
        }
        self.expected
            .entry(end_block)
            .or_insert(continuation_end_offset(align4(end), bs));
    }

    /// Settles every block still pending and returns the result.
    pub fn finish(mut self) -> OffsetCheck {
        self.settle_below(u32::MAX);
        self.check
    }

    /// Compares every block below `block`: no later record can touch them.
    fn settle_below(&mut self, block: u32) {
        while let Some(&(b, found)) = self.found.front() {
            if b >= block {
                break;
            }
            self.found.pop_front();
            let Some(&expected) = self.expected.get(&b) else {
                continue; // no record touched it (a gap after damage): nothing to compare
            };
            self.check.checked = self.check.checked.saturating_add(1);
            if found != expected {
                if self.check.mismatches.len() < MAX_MISMATCHES {
                    self.check.mismatches.push(OffsetMismatch {
                        block: b,
                        found,
                        expected,
                    });
                } else {
                    self.check.mismatches_omitted = self.check.mismatches_omitted.saturating_add(1);
                }
            }
        }
        let keep = self.expected.split_off(&block);
        self.expected = keep;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::LogSeq;

    fn rba(block: u32, offset: u16) -> Rba {
        Rba {
            seq: LogSeq(1),
            block,
            offset,
        }
    }

    #[test]
    fn starts_continuation_ends_and_middles() {
        let mut c = OffsetChecker::new(512);
        // Record of 1260 bytes from 2.16: 496 in block 2, 496 in block 3, 268 in block 4 -> ends at 284.
        for (b, f) in [(2, 16), (3, 0), (4, 284), (5, 132)] {
            c.block(b, f);
        }
        c.record(rba(2, 16), 1260);
        c.record(rba(4, 284), 344); // ends in block 5 at 132, nothing follows
        let r = c.finish();
        assert_eq!(r.checked, 4);
        assert!(r.is_consistent(), "{r:?}");
    }

    #[test]
    fn a_zero_where_a_continuation_ends_is_reported() {
        let mut c = OffsetChecker::new(512);
        for (b, f) in [(2, 16), (3, 0)] {
            c.block(b, f);
        }
        c.record(rba(2, 16), 600); // 496 + 104: ends in block 3 at 120
        let r = c.finish();
        assert_eq!(
            r.mismatches,
            [OffsetMismatch {
                block: 3,
                found: 0,
                expected: 120
            }]
        );
    }

    #[test]
    fn fewer_than_20_bytes_left_means_0() {
        let mut c = OffsetChecker::new(512);
        for (b, f) in [(2, 16), (3, 0)] {
            c.block(b, f);
        }
        c.record(rba(2, 16), 496 + 480); // ends in block 3 at 496: 16 bytes left
        assert!(c.finish().is_consistent());
    }

    #[test]
    fn blocks_no_record_touches_are_not_checked() {
        let mut c = OffsetChecker::new(512);
        c.block(2, 16);
        c.block(3, 77);
        c.record(rba(2, 16), 100);
        c.block(9, 16);
        c.record(rba(9, 16), 100);
        let r = c.finish();
        assert_eq!(r.checked, 2);
        assert!(r.is_consistent());
    }
}
