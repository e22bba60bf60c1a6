//! Oracle redo log format: a sans-IO parser and writer.
//!
//! This crate does no I/O (no filesystem, no async runtime, no logging): callers feed bytes and
//! poll results. It never panics on any input and never loops; every error names its kind and
//! its position (block and offset).
//!
//! Layout:
//! - [`position`]: SCN, log sequence, thread, RBA and XID newtypes.
//! - [`checksum`]: the 16-bit XOR block checksum.

pub mod checksum;
pub mod position;

pub use position::{LogSeq, Rba, Scn, ThreadId, Xid};
