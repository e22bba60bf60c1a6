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
//! - [`piece`]: the stream pieces put into WORM, sealed to the offline recovery key.
//! - [`rebuild`]: rebuilds a stream's online log up to its last durable commit.
//! - [`resend`]: a Data overlapping acknowledged redo, compared with the segments: an
//!   idempotent resend, or divergent redo (refused, alarm).
//! - [`fs`]: the file operations of the write path, with a fault-injecting version for tests.
//! - [`config`]: the TOML configuration (every problem at once, unknown keys refused).
//! - [`allow`]: the `[[extractor]]` allow-list and its check.
//! - [`server`]: the listener (connection limit, one session per connection); `ctx`
//!   (private): what sessions share, the state per stream (at most one live session per
//!   stream); `session` (private): Hello → Welcome → Data → writer → Ack.
//! - [`worm`]: every stream's acknowledged redo uploaded into WORM as pieces sealed to the
//!   offline recovery key, within a seal interval, with a hash-chained record per stream.
//! - [`metrics`]: the Prometheus metrics (`redovault_collector_*`, per stream).
//! - [`status`]: the read-only status page (`GET /status`, JSON) beside the metrics: per
//!   stream the last durable commit, the WORM position, the session and its reconnects.
//!
//! Encryption itself lives in `redovault::crypto` (the only module that imports ciphers).

pub mod allow;
pub mod config;
mod ctx;
pub mod fs;
pub mod index;
pub mod metrics;
pub mod piece;
pub mod rebuild;
pub mod resend;
pub mod retention;
pub mod retention_task;
pub mod segment;
pub mod server;
mod session;
pub mod status;
pub mod store;
pub mod worm;
pub mod writer;
