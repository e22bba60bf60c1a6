//! redovault: keeps an Oracle database recoverable to its last commit.
//!
//! This root crate is the library that the `redovault` binary and the role crates share: the
//! core (store, crypto, wire, manifest, telemetry, durable writes) and the watcher. The command
//! line is the binary's (`src/main.rs`, `src/cli/`); the drill, the simulator and the S3 test
//! machinery are another crate's (`tests/drill`, `redovault-drill`), which no program of the
//! database host links.
//!
//! Layout:
//! - [`alert`]: alarms and the alert hook (command or webhook).
//! - [`build_info`]: the version line of `--version` (version, commit, wire protocol).
//! - [`config`]: configuration files on serde (every problem at once, unknown keys
//!   refused), the one duration/size parser and the sections the roles share.
//! - [`crypto`]: the only module that imports cipher and TLS crates (the link's TLS and
//!   legacy Blowfish channel, the collector's at-rest envelope and key ring).
//! - [`durable`]: crash-safe file writes (temp file, fsync, rename, fsync of the directory).
//! - [`inspect`]: the report of `redovault inspect` (JSON model and human summary).
//! - [`manifest`]: the hash-chained manifest of shipped archived logs (local segments, WORM seals).
//! - [`wire`]: the redo stream between extractor and collector (stream ids, positions, commit marks).
//! - [`store`]: the only module that talks to S3; WORM writes with Object Lock, and a
//!   local-directory backend behind the same trait.
//! - [`telemetry`]: structured logs (text or JSON) and a small Prometheus registry and endpoint.
//! - [`watcher`]: the daemon that ships archived redo logs into WORM with the manifest.

pub mod alert;
pub mod build_info;
pub mod checkconfig;
pub mod compress;
pub mod config;
pub mod crypto;
pub mod digest;
pub mod durable;
pub mod inspect;
pub mod manifest;

pub mod store;
pub mod telemetry;
pub mod watcher;
pub mod wire;

/// The Oracle simulator of the drill crate (`redovault-drill`), compiled into this crate's own
/// unit tests only: they need real-format redo, and they cannot use the drill crate, which
/// links another copy of this one. The product library does not contain it.
#[cfg(test)]
#[path = "../tests/drill/src/simulate/mod.rs"]
pub mod simulate;
/// Lets the simulator's `redovault::` paths name this crate in the unit tests.
#[cfg(test)]
extern crate self as redovault;
