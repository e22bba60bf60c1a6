//! The second home of every stream: acknowledged redo uploaded into WORM as pieces sealed to
//! the offline recovery key (see ARCHITECTURE.md, "The collector's streams in WORM").
//!
//! ```text
//! writer (fsync, Ack) ──► segments ──► per stream: Cutter decides ─► Follower reads chunks
//!   durable ends (polled)                ─► piece::seal (recovery key) ─► put create-only
//!                                        ─► PieceEntry appended to the local chain (fsync)
//!                                        ─► chain segment sealed into WORM (every N pieces,
//!                                           every `manifest_interval`, at log end, at stop)
//! ```
//!
//! Invariants:
//! - acknowledgements never wait for WORM: S3 down only grows the WORM lag, and the backlog
//!   drains in order from the segments when it returns;
//! - a piece is recorded only after the store confirmed it (HEAD: size, checksum, lock);
//! - a restart resumes from the local chain; a piece uploaded but not recorded before a
//!   crash is found (same start, index and previous piece) and recorded as it is, never
//!   uploaded again with other bytes; a piece there that does not fit is a conflict: an
//!   ERROR, a metric, and ours is uploaded beside it (nothing in WORM is touched).

mod chain;
mod cutter;
mod follow;
mod task;
#[cfg(test)]
mod testkit;

use std::path::PathBuf;
use std::time::Duration;

pub use chain::{PieceEntry, WormState, chain_dir, read_state};
pub use cutter::{Cutter, Decision};
pub use follow::{FollowError, Follower};
pub use task::{Worm, spawn};

use redovault::watcher::config::{Section, StoreConfig, StoreKind};

/// The `[worm]` section: where pieces go and how often.
#[derive(Debug, Clone)]
pub struct WormConfig {
    /// The WORM store: the keys of the watcher's `[store]` (the collector's own put-only
    /// credentials come from the environment, as the watcher's do).
    pub store: StoreConfig,
    /// The recovery public key (SubjectPublicKeyInfo PEM); its private half stays offline.
    pub recovery_public_key: PathBuf,
    /// Longest time from a byte becoming durable here to its piece being cut.
    pub seal_interval: Duration,
    /// Largest piece, in redo bytes.
    pub max_piece: u64,
    /// A chain segment is sealed into WORM after this many pieces...
    pub manifest_entries: u64,
    /// ...or this long after its first piece, whichever comes first (and at every log end).
    pub manifest_interval: Duration,
}

impl WormConfig {
    /// Reads a `[worm]` table; problems go to `problems` with their key path.
    pub fn parse(table: &toml::Table, problems: &mut Vec<String>) -> Option<WormConfig> {
        let mut s = Section::new("worm", Some(table), problems);
        let store = StoreConfig::parse_section(&mut s);
        let key = s.opt_string("recovery_public_key");
        let seal_interval = s.duration(
            "seal_interval",
            Duration::from_secs(1),
            Duration::from_millis(10),
        );
        let max_piece = s.size("max_piece", 16 << 20);
        let manifest_entries = s.int("manifest_entries", 60, 1, 100_000);
        let manifest_interval = s.duration(
            "manifest_interval",
            Duration::from_secs(60),
            Duration::from_millis(100),
        );
        s.finish();
        if key.is_none() {
            problems.push(
                "worm.recovery_public_key: required (the public half of the offline recovery \
                 key, made by deploy/recovery-key.sh)"
                    .into(),
            );
        }
        match store.kind {
            StoreKind::S3 => {
                if store.endpoint.is_none() {
                    problems.push("worm.endpoint: required for kind = \"s3\"".into());
                }
                if store.bucket.is_empty() {
                    problems.push("worm.bucket: required for kind = \"s3\"".into());
                }
            }
            StoreKind::Local => {
                if store.dir.is_none() {
                    problems.push("worm.dir: required for kind = \"local\"".into());
                }
            }
        }
        // A piece may run one chunk (and its commit marks) past `max_piece`; 64M keeps every
        // piece far below what a reader accepts (`piece::MAX_PIECE_PLAINTEXT`).
        if !(1 << 10..=64 << 20).contains(&max_piece) {
            problems.push(format!(
                "worm.max_piece: {max_piece} bytes, expected 1K to 64M"
            ));
        }
        Some(WormConfig {
            store,
            recovery_public_key: PathBuf::from(key?),
            seal_interval,
            max_piece,
            manifest_entries,
            manifest_interval,
        })
    }
}
