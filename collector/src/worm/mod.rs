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

use redovault::config::{ms, secs};
use std::path::PathBuf;
use std::time::Duration;

pub use chain::{PieceEntry, WormState, chain_dir, read_state};
pub use cutter::{Cutter, Decision};
pub use follow::{FollowError, Follower};
pub use task::{Worm, spawn};

use redovault::config::load::deserialize_both;
use redovault::config::{Problems, StoreConfig};

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

/// The keys of `[worm]` besides the store's.
#[derive(Debug, serde::Deserialize)]
#[serde(default)]
struct WormKeys {
    #[serde(deserialize_with = "redovault::config::sections::non_empty_path")]
    recovery_public_key: Option<PathBuf>,
    #[serde(deserialize_with = "redovault::config::units::duration")]
    seal_interval: Duration,
    #[serde(deserialize_with = "redovault::config::units::size")]
    max_piece: u64,
    manifest_entries: u64,
    #[serde(deserialize_with = "redovault::config::units::duration")]
    manifest_interval: Duration,
}

impl Default for WormKeys {
    fn default() -> WormKeys {
        WormKeys {
            recovery_public_key: None,
            seal_interval: secs(1),
            max_piece: 16 << 20,
            manifest_entries: 60,
            manifest_interval: secs(60),
        }
    }
}

impl WormConfig {
    /// Reads a `[worm]` table; problems go to `problems` with their key path.
    pub fn parse(table: &toml::Table, problems: &mut Vec<String>) -> Option<WormConfig> {
        let mut p = Problems::default();
        let read = deserialize_both::<StoreConfig, WormKeys>("worm", table.clone(), &mut p);
        let Some((store, k)) = read else {
            problems.extend(p.into_vec());
            return None;
        };
        store.check_at("worm", &mut p);
        p.at_least("worm.seal_interval", k.seal_interval, ms(10));
        p.range("worm.manifest_entries", k.manifest_entries, 1, 100_000);
        p.at_least("worm.manifest_interval", k.manifest_interval, ms(100));
        if k.recovery_public_key.is_none() {
            p.push(
                "worm.recovery_public_key",
                "required (the public half of the offline recovery key, made by \
                 deploy/recovery-key.sh)",
            );
        }
        problems.extend(p.into_vec());
        let max_piece = k.max_piece;
        // A piece may run one chunk (and its commit marks) past `max_piece`; 64M keeps every
        // piece far below what a reader accepts (`piece::MAX_PIECE_PLAINTEXT`).
        if !(1 << 10..=64 << 20).contains(&max_piece) {
            problems.push(format!(
                "worm.max_piece: {max_piece} bytes, expected 1K to 64M"
            ));
        }
        Some(WormConfig {
            store,
            recovery_public_key: k.recovery_public_key?,
            seal_interval: k.seal_interval,
            max_piece,
            manifest_entries: k.manifest_entries,
            manifest_interval: k.manifest_interval,
        })
    }
}
