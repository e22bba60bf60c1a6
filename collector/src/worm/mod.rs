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

use redovault::config::load::deserialize_both;
use redovault::config::units::{duration, size};
use redovault::config::{Problems, StoreConfig, ms, secs};
use smart_default::SmartDefault;

/// The `[worm]` section: where pieces go and how often.
#[derive(Debug, Clone, SmartDefault, serde::Deserialize)]
#[serde(default)]
pub struct WormConfig {
    /// The WORM store: the keys of the watcher's `[store]`, read from the same table (the
    /// collector's own put-only credentials come from the environment, as the watcher's do).
    #[serde(skip)]
    pub store: StoreConfig,
    /// The recovery public key (SubjectPublicKeyInfo PEM); its private half stays offline.
    /// Required.
    pub recovery_public_key: PathBuf,
    /// Longest time from a byte becoming durable here to its piece being cut.
    #[default(secs(1))]
    #[serde(deserialize_with = "duration")]
    pub seal_interval: Duration,
    /// Largest piece, in redo bytes.
    #[default(16 << 20)]
    #[serde(deserialize_with = "size")]
    pub max_piece: u64,
    /// A chain segment is sealed into WORM after this many pieces...
    #[default = 60]
    pub manifest_entries: u64,
    /// ...or this long after its first piece, whichever comes first (and at every log end).
    #[default(secs(60))]
    #[serde(deserialize_with = "duration")]
    pub manifest_interval: Duration,
}

impl WormConfig {
    /// Reads a `[worm]` table: the store's keys and ours.
    pub fn parse(table: &toml::Table, p: &mut Problems) -> Option<WormConfig> {
        let (store, w) = deserialize_both::<StoreConfig, Self>("worm", table.clone(), p)?;
        store.check_at("worm", p);
        p.at_least("worm.seal_interval", w.seal_interval, ms(10));
        // A piece may run one chunk (and its commit marks) past `max_piece`; 64M keeps every
        // piece far below what a reader accepts (`piece::MAX_PIECE_PLAINTEXT`).
        p.size_range("worm.max_piece", w.max_piece, 1 << 10, 64 << 20);
        p.range("worm.manifest_entries", w.manifest_entries, 1, 100_000);
        p.at_least("worm.manifest_interval", w.manifest_interval, ms(100));
        if w.recovery_public_key.as_os_str().is_empty() && !p.about("worm.recovery_public_key") {
            let what = "required (the public half of the offline recovery key, made by \
                        deploy/recovery-key.sh)";
            p.push("worm.recovery_public_key", what);
        }
        Some(WormConfig { store, ..w })
    }
}
