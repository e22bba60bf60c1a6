//! Errors of the redo parser: every one names its kind and its position (block and offset).

use std::fmt;

/// What went wrong in a record-level problem (see [`DecodeError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A record length shorter than its header, or longer than its LWN, the file, or
    /// [`crate::decoder::MAX_RECORD_LEN`] can hold.
    RecordLength,
    /// An LWN header whose length in blocks is zero or runs past the end of the file.
    LwnLength,
    /// A change vector or its length array does not fit in its record.
    Vector,
    /// A 5.2 or 5.4 vector too short to hold its XID, or with a class that names no undo
    /// segment.
    Transaction,
    /// Bytes after the last block that block 0 declares.
    TrailingData,
    /// The archived log's nab (block 1) disagrees with the block count of block 0.
    HeaderMismatch,
}

impl ErrorKind {
    /// Stable snake_case name used in `inspect --json` (`"record_length"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RecordLength => "record_length",
            ErrorKind::LwnLength => "lwn_length",
            ErrorKind::Vector => "vector",
            ErrorKind::Transaction => "transaction",
            ErrorKind::TrailingData => "trailing_data",
            ErrorKind::HeaderMismatch => "header_mismatch",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record-level problem found while decoding: the decoder reports it and goes on.
///
/// `offset` is the byte offset within `block`, counting the 16-byte block header (the offset
/// part of an RBA).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at block {block} offset {offset} (0x{offset:x}): {detail}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Block number (block 0 is the file header).
    pub block: u32,
    /// Byte offset within the block.
    pub offset: u32,
    /// Human-readable details (values found and expected).
    pub detail: String,
}

impl DecodeError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, block: u32, offset: u32, detail: impl Into<String>) -> Self {
        DecodeError {
            kind,
            block,
            offset,
            detail: detail.into(),
        }
    }

    /// Byte offset of the error from the start of the file, given the block size.
    pub fn file_offset(&self, block_size: u32) -> u64 {
        u64::from(self.block)
            .saturating_mul(u64::from(block_size))
            .saturating_add(u64::from(self.offset))
    }
}

/// The input is not an Oracle redo log at all (block 0 or block 1 cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("not an Oracle redo log: {detail} (at byte offset {offset})")]
pub struct NotRedo {
    /// Byte offset from the start of the file where the check failed.
    pub offset: u64,
    /// What was found.
    pub detail: String,
}

impl NotRedo {
    pub(crate) fn new(offset: u64, detail: impl Into<String>) -> Self {
        NotRedo {
            offset,
            detail: detail.into(),
        }
    }
}
