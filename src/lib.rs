//! redovault: keeps an Oracle database recoverable to its last commit.
//!
//! This root crate is the library that the `redovault` binary and the role crates share.
//!
//! Layout:
//! - [`cli`]: the command line (the only place that uses `anyhow`).
//! - [`crypto`]: the only module that imports cipher and TLS crates (the link's TLS and
//!   legacy Blowfish channel, the collector's at-rest envelope and key ring).
//! - [`durable`]: crash-safe file writes (temp file, fsync, rename, fsync of the directory).
//! - [`inspect`]: the report of `redovault inspect` (JSON model and human summary).
//! - [`wire`]: the redo stream between extractor and collector (stream ids, positions, commit marks).
//! - [`store`]: the only module that talks to S3; WORM writes with Object Lock, and a
//!   local-directory backend behind the same trait.

pub mod cli;
pub mod crypto;
pub mod durable;
pub mod inspect;
pub mod simulate;
pub mod store;
pub mod wire;
