//! redovault collector: receives redo streams from extractors, stores them AES-256-GCM
//! encrypted, and rebuilds the online redo log byte for byte up to the last commit.
//!
//! Layout:
//! - [`store`]: the stream store: [`store::Store`] (open and recover, append with continuity
//!   checks, sync, durable positions, commit queries).
//! - [`writer`]: the group-commit task in front of the store: many sessions, one fsync per
//!   batch, an acknowledgement per request only after that fsync.
//! - [`segment`]: the segment file format (sealed chunk records), writing and scanning.
//! - [`index`]: the per-stream index of durable commits.
//! - [`rebuild`]: rebuilds a stream's online log up to its last durable commit.
//! - [`fs`]: the file operations of the write path, with a fault-injecting version for tests.
//!
//! Encryption itself lives in `redovault::crypto` (the only module that imports ciphers).

pub mod fs;
pub mod index;
pub mod rebuild;
pub mod segment;
pub mod store;
pub mod writer;
