//! Change-vector opcodes (`layer.code`, §11.3): the ones a commit-aware reader cares about are
//! named; every other one is kept as data in [`Opcode::Unknown`].

use std::fmt;

/// The opcode of a change vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opcode {
    /// 5.1: undo record (ktudb holds the full XID).
    UndoRecord,
    /// 5.2: undo segment header update: transaction begin (ktudh).
    TxnBegin,
    /// 5.4: transaction table update: commit or rollback (ktucm).
    TxnEnd,
    /// 5.6: user undo applied (partial rollback).
    UndoApplied,
    /// 5.11: rollback of a transaction table entry (rollback to savepoint).
    UndoRollback,
    /// 5.19: session information.
    SessionInfo,
    /// 5.20: transaction audit (user, client information).
    TxnAudit,
    /// Other 5.x undo-layer operation.
    Undo(u8),
    /// 10.x: index operation.
    Index(u8),
    /// 11.x: row operation (11.2 insert, 11.3 delete, 11.5 update, ...; see [`Opcode::name`]).
    Row(u8),
    /// 13.x: segment space management.
    Segment(u8),
    /// 14.x: extent and bitmap space management.
    Extent(u8),
    /// 23.1: block written record (lost-write protection).
    BlockWritten,
    /// 23.2: block read record.
    BlockRead,
    /// 24.x: DDL and miscellaneous supplemental markers (24.1 DDL, 24.4 after commits, ...).
    Ddl(u8),
    /// 26.x: LOB operation.
    Lob(u8),
    /// Any other opcode, returned as data.
    Unknown {
        /// Layer (first byte of the vector header).
        layer: u8,
        /// Code (second byte).
        code: u8,
    },
}

impl Opcode {
    /// Classifies `layer.code`.
    pub fn new(layer: u8, code: u8) -> Opcode {
        match (layer, code) {
            (5, 1) => Opcode::UndoRecord,
            (5, 2) => Opcode::TxnBegin,
            (5, 4) => Opcode::TxnEnd,
            (5, 6) => Opcode::UndoApplied,
            (5, 11) => Opcode::UndoRollback,
            (5, 19) => Opcode::SessionInfo,
            (5, 20) => Opcode::TxnAudit,
            (5, c) => Opcode::Undo(c),
            (10, c) => Opcode::Index(c),
            (11, c) => Opcode::Row(c),
            (13, c) => Opcode::Segment(c),
            (14, c) => Opcode::Extent(c),
            (23, 1) => Opcode::BlockWritten,
            (23, 2) => Opcode::BlockRead,
            (24, c) => Opcode::Ddl(c),
            (26, c) => Opcode::Lob(c),
            (layer, code) => Opcode::Unknown { layer, code },
        }
    }

    /// The layer byte.
    pub fn layer(self) -> u8 {
        self.parts().0
    }

    /// The code byte.
    pub fn code(self) -> u8 {
        self.parts().1
    }

    /// `(layer, code)`.
    pub fn parts(self) -> (u8, u8) {
        match self {
            Opcode::UndoRecord => (5, 1),
            Opcode::TxnBegin => (5, 2),
            Opcode::TxnEnd => (5, 4),
            Opcode::UndoApplied => (5, 6),
            Opcode::UndoRollback => (5, 11),
            Opcode::SessionInfo => (5, 19),
            Opcode::TxnAudit => (5, 20),
            Opcode::Undo(c) => (5, c),
            Opcode::Index(c) => (10, c),
            Opcode::Row(c) => (11, c),
            Opcode::Segment(c) => (13, c),
            Opcode::Extent(c) => (14, c),
            Opcode::BlockWritten => (23, 1),
            Opcode::BlockRead => (23, 2),
            Opcode::Ddl(c) => (24, c),
            Opcode::Lob(c) => (26, c),
            Opcode::Unknown { layer, code } => (layer, code),
        }
    }

    /// A short description where the opcode is known, `None` otherwise.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.parts() {
            (5, 1) => "undo record",
            (5, 2) => "transaction begin (undo header)",
            (5, 4) => "commit or rollback",
            (5, 6) => "undo applied",
            (5, 11) => "rollback of transaction table entry",
            (5, 19) => "session information",
            (5, 20) => "transaction audit",
            (10, 2) => "index leaf insert",
            (10, 4) => "index leaf delete",
            (10, 8) => "index new leaf block",
            (10, 18) => "index leaf update key data",
            (10, _) => "index operation",
            (11, 2) => "insert row piece",
            (11, 3) => "delete row piece",
            (11, 4) => "lock row piece",
            (11, 5) => "update row piece",
            (11, 6) => "overwrite row piece",
            (11, 11) => "multi-row insert",
            (11, 12) => "multi-row delete",
            (11, 16) => "logminer row piece",
            (11, 19) => "array update",
            (11, _) => "row operation",
            (13, _) => "segment space management",
            (14, _) => "extent space management",
            (23, 1) => "block written",
            (23, 2) => "block read",
            (24, 1) => "DDL",
            (24, _) => "supplemental marker",
            (26, _) => "LOB operation",
            _ => return None,
        })
    }

    /// True for the 11.x row operations that change table data (insert, delete, update, ...).
    pub fn is_row_change(self) -> bool {
        matches!(self, Opcode::Row(c) if c != 4)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, c) = self.parts();
        write!(f, "{l}.{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_opcode() {
        for layer in 0..=255u8 {
            for code in 0..=255u8 {
                let op = Opcode::new(layer, code);
                assert_eq!(op.parts(), (layer, code));
            }
        }
        assert_eq!(Opcode::new(5, 4), Opcode::TxnEnd);
        assert_eq!(Opcode::new(11, 2).to_string(), "11.2");
        assert_eq!(Opcode::new(11, 2).name(), Some("insert row piece"));
        assert_eq!(Opcode::new(99, 7), Opcode::Unknown { layer: 99, code: 7 });
        assert_eq!(Opcode::new(99, 7).name(), None);
    }
}
