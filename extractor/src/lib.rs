//! redovault extractor: tails the CURRENT online redo log as LGWR writes it, finds commits
//! (opcode 5.4) and streams the redo up to each commit to a collector.
//!
//! Layout:
//! - [`checkpoint`]: the durable, versioned checkpoint per stream, advanced only on acks.
//! - [`config`]: the TOML configuration (online log groups and members, archive
//!   destinations, tail settings, state directory).
//! - [`archive`]: archived copies found in the archive destinations by header, validated whole.
//! - [`online`]: the online log groups read from their headers alone; finding the CURRENT log.
//! - [`streams`]: one tailer per thread, from its checkpoint or from its CURRENT log.
//! - [`tail`]: the [`tail::Tailer`]: validated chunks of one thread with commit marks.
//! - [`settings`]: the daemon's whole configuration file (the above, plus `[collector]`,
//!   `[link]`, `[telemetry]`), every problem at once.
//! - [`ship`]: one stream to the collector: bounded window, Acks → checkpoint, reconnects,
//!   resume from the collector's position.
//! - [`source`]: the source probe: how far Oracle wrote each thread, seen from the online
//!   logs (not the tailer), how long redo waits unread, and which incarnation is live.
//! - [`fanout`]: one stream to every configured collector, and the protection task.
//! - [`protection`]: what the ack policy protects (pure state machine).
//! - [`run`]: the daemon: per thread, one shipper per collector; metrics endpoint.
//! - [`metrics`]: the Prometheus metrics (`redovault_extractor_*`, per stream).

pub mod archive;
pub mod checkpoint;
pub mod config;
pub mod fanout;
pub mod metrics;
pub mod online;
pub mod protection;
pub mod run;
pub mod settings;
pub mod ship;
pub mod source;
pub mod streams;
pub mod tail;
