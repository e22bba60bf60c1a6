//! Oracle redo log format: a sans-IO parser and writer.
//!
//! This crate does no I/O (no filesystem, no async runtime, no logging): callers feed bytes and
//! poll results. It never panics on any input and never loops; every error names its kind and
//! its position (block and offset). Memory is bounded by what is fed: a declared length is
//! checked against what its LWN and the file can hold before anything is kept for it.
//!
//! # Entry points
//! - [`analyze`]: the whole-file [`Report`] of one redo file (header, block states, record
//!   count, commits with XID/SCN/rollback/RBA/time, begins, row changes, errors, last commit).
//!   [`Analyzer`] does the same from chunks, and hands every row change and transaction end
//!   to a visitor ([`Analyzer::feed_with`]), beyond the report's capped list.
//! - [`Decoder`]: the streaming decoder: [`Decoder::feed`] bytes, [`Decoder::poll`] returns
//!   `Ok(None)` when it needs more, or the next [`Event`] (headers, one event per block, each
//!   [`Record`], record-level [`DecodeError`]s, end); [`Decoder::finish`] declares EOF.
//! - [`Record::vectors`] walks a record's [`ChangeVector`]s; [`txn::commit_of`] and
//!   [`txn::begin_of`] read 5.4 and 5.2 vectors.
//!
//! # Layout
//! - [`position`]: SCN, log sequence, thread, RBA and XID newtypes.
//! - [`checksum`]: the 16-bit XOR block checksum.
//! - [`endian`]: byte order and checked integer/SCN reads.
//! - [`time`]: redo timestamps and Unix times as ISO 8601.
//! - [`header`]: block 0 (file header) and block 1 (redo log header, kcrfh).
//! - [`block`]: the 16-byte block header and block states (valid, zero, stale, ...).
//! - [`offsets`]: every block header's first-record offset checked against the records.
//! - [`record`]: record and LWN headers, the reassembled [`Record`].
//! - [`vector`]: change vectors and their length arrays.
//! - [`opcode`]: named opcodes; unknown ones kept as data.
//! - [`txn`]: XIDs, begin, commit and rollback.
//! - [`decoder`]: the streaming [`Decoder`].
//! - [`report`]: the whole-file [`Report`].
//! - [`error`]: [`DecodeError`] (kind + block + offset) and [`NotRedo`].
//! - [`writer`]: the redo writer used by the simulator.
//!
//! # Decisions
//! - `poll` returns `Err(NotRedo)` only when block 0 or block 1 cannot be read; damage inside a
//!   log is an [`Event`] (a bad block or a record-level error) and decoding goes on, resyncing
//!   at the next block whose header names a first record.
//! - A record starts only where at least 24 bytes remain in the block and the length word is
//!   not 0; otherwise the walk moves to the next block (§10.1 of the format notes).
//! - In a CURRENT online log, blocks from the write point on that are never written (zero) or
//!   left from the previous cycle (older sequence) are not damage; a newer sequence is.
//! - The 5.4 commit time is the last field when the vector has more than one field and that
//!   field is 4 bytes long (Unix epoch seconds, as in 23ai); otherwise there is none.
//! - The record-header SCN is 6 bytes (wrap u16, base u32); the 8-byte header SCNs follow the
//!   big-SCN rule (bit 15 of wrap).
//!
//! The whole crate denies `clippy::indexing_slicing`, `unwrap_used`, `expect_used`, `panic`
//! and `arithmetic_side_effects` outside tests: no input can make them panic.

// No input can make this crate panic: outside tests, every module is denied indexing,
// unwrap/expect, panics and unchecked arithmetic.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod block;
pub mod checksum;
pub mod decoder;
pub mod endian;
pub mod error;
pub mod header;
pub mod offsets;
pub mod opcode;
pub mod position;
pub mod record;
pub mod report;
pub mod time;
pub mod txn;
pub mod vector;
pub mod writer;

pub use block::{BadReason, BlockHeader, BlockState};
pub use decoder::{BlockEvent, Decoder, Event};
pub use endian::Endian;
pub use error::{DecodeError, ErrorKind, NotRedo};
pub use header::{CompatVersion, FileHeader, LogState, RedoHeader};
pub use offsets::{OffsetCheck, OffsetMismatch};
pub use opcode::Opcode;
pub use position::{LogSeq, Rba, Scn, ThreadId, Xid};
pub use record::{Record, RecordHeader};
pub use report::{Analyzer, BadBlock, Report, RowChange, TxnEvent, analyze};
pub use time::RedoTime;
pub use txn::{Begin, Commit};
pub use vector::ChangeVector;
