//! Newtypes for the positions and identifiers of Oracle redo: SCN, log sequence, thread,
//! database and incarnation ids, RBA, XID.
//!
//! Each prints in the notation a DBA reads in Oracle's own tools (`v$log`, LogMiner, redo dumps).

use std::fmt;

/// A number that names or orders something in redo: a newtype that prints as the bare
/// number (and, with the `serde` feature, is written as one).
macro_rules! number {
    ($(#[$doc:meta])* $name:ident($int:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(
            feature = "serde",
            derive(serde::Serialize, serde::Deserialize),
            serde(transparent)
        )]
        pub struct $name(pub $int);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

number! {
    /// System change number: Oracle's logical clock (48 bits, or 64 with the 12c "big SCN"
    /// form).
    Scn(u64)
}

impl Scn {
    /// The largest SCN that the 6-byte form (u32 base + u16 wrap without bit 15) can hold.
    pub const MAX_SMALL: u64 = (1 << 47) - 1;
}

number! {
    /// Log sequence number of one redo thread (`%s` in `log_archive_format`).
    LogSeq(u32)
}

number! {
    /// Redo thread number (one per RAC instance; `%t` in `log_archive_format`).
    ThreadId(u16)
}

number! {
    /// Database id (`v$database.dbid`): which database a log or a stream belongs to.
    DbId(u32)
}

number! {
    /// Resetlogs id of a database incarnation (changes at `OPEN RESETLOGS`; `%r` in
    /// `log_archive_format`): sequences restart from 1 under a new one.
    ResetlogsId(u32)
}

/// Redo byte address: log sequence, block number and byte offset within the block.
///
/// The offset counts the 16-byte block header, as Oracle's RBA does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Rba {
    /// Log sequence of the file that holds the address.
    pub seq: LogSeq,
    /// Block number within the file (block 0 is the file header).
    pub block: u32,
    /// Byte offset within the block, counting the 16-byte block header.
    pub offset: u16,
}

impl fmt::Display for Rba {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "0x{:06x}.{:08x}.{:04x}",
            self.seq.0, self.block, self.offset
        )
    }
}

/// Transaction id: undo segment number, slot and wrap sequence (`usn.slot.sqn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Xid {
    /// Undo segment number.
    pub usn: u16,
    /// Slot in the undo segment's transaction table.
    pub slot: u16,
    /// Wrap sequence of that slot.
    pub sqn: u32,
}

impl fmt::Display for Xid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.usn, self.slot, self.sqn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_oracle_notation() {
        let xid = Xid {
            usn: 10,
            slot: 12,
            sqn: 572,
        };
        assert_eq!(xid.to_string(), "10.12.572");
        let rba = Rba {
            seq: LogSeq(15),
            block: 0x246,
            offset: 0x150,
        };
        assert_eq!(rba.to_string(), "0x00000f.00000246.0150");
        assert_eq!(Scn(2267708).to_string(), "2267708");
    }
}
