//! The extractor's configuration values: where the online redo logs and the archived logs
//! are, how the tailer polls, and where its durable state lives.
//!
//! The file is read by [`crate::settings`] (through the root crate's `config`, which lists
//! every problem at once); these are the values it produces and the tailer's own range
//! check ([`TailConfig::check`]). See `deploy/config/extractor.example.toml` for the file.

use std::path::PathBuf;
use std::time::Duration;

use redovault::config::units::{duration, size};

/// The whole extractor configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractorConfig {
    /// The online redo log groups.
    pub online: OnlineConfig,
    /// The archive destinations.
    pub archive: ArchiveConfig,
    /// How the tailer reads.
    pub tail: TailConfig,
    /// Where durable state (checkpoints) lives.
    pub state: StateConfig,
}

/// `[online]`: the online redo log groups (`v$logfile`), and the threads to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineConfig {
    /// `[[online.group]]`: one entry per group, of every thread (the thread of a group is
    /// read from its header).
    pub groups: Vec<GroupConfig>,
    /// Redo threads to follow; empty: every thread found in the groups' headers.
    pub threads: Vec<u16>,
}

/// One online log group: its members are multiplexed copies of the same log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The member files (absolute paths).
    pub members: Vec<PathBuf>,
}

/// `[archive]`: directories where ARCn writes archived logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveConfig {
    /// Archive destinations (absolute paths); searched by header, whatever the file names.
    pub dirs: Vec<PathBuf>,
}

/// `[tail]`: how the tailer reads the online logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct TailConfig {
    /// Interval between two reads of the CURRENT log when nothing new was found.
    #[serde(deserialize_with = "duration")]
    pub poll: Duration,
    /// Also wake up on file events of the online logs and archive directories (hints only:
    /// the poll interval still bounds the wait).
    pub file_events: bool,
    /// Largest chunk in bytes (whole blocks; at least 8 KiB).
    #[serde(deserialize_with = "size")]
    pub max_chunk: u64,
    /// Re-reads of a block whose checksum fails (a torn write in progress) before the block
    /// counts as damaged.
    pub torn_retries: u32,
    /// Longest delay between two re-reads of a torn block: the first re-read comes after
    /// 100 µs (LGWR's write is usually done by then), each next delay doubles up to this.
    #[serde(deserialize_with = "duration")]
    pub torn_delay: Duration,
    /// How long to wait for the archived copy of a log that was reused before it was read,
    /// before giving up with an error.
    #[serde(deserialize_with = "duration")]
    pub archive_wait: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            poll: Duration::from_millis(10),
            file_events: true,
            max_chunk: 1 << 20,
            torn_retries: 20,
            torn_delay: Duration::from_millis(5),
            archive_wait: Duration::from_secs(600),
        }
    }
}

/// `[state]`: the extractor's own durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Directory of the checkpoints (absolute path).
    pub dir: PathBuf,
}

/// Where the redo of the database lives: what the tailer reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSources {
    /// Online log groups, each a list of member files.
    pub groups: Vec<Vec<PathBuf>>,
    /// Archive destinations.
    pub archive_dirs: Vec<PathBuf>,
}

impl ExtractorConfig {
    /// The files the tailer reads.
    pub fn sources(&self) -> LogSources {
        LogSources {
            groups: self
                .online
                .groups
                .iter()
                .map(|g| g.members.clone())
                .collect(),
            archive_dirs: self.archive.dirs.clone(),
        }
    }
}

impl TailConfig {
    /// Checks the ranges (the poll interval 100 µs..60 s, chunks 8 KiB..64 MiB, ...).
    pub fn check(&self) -> Result<(), String> {
        let t = self;
        if t.poll < Duration::from_micros(100) || t.poll > Duration::from_secs(60) {
            return Err(format!("tail.poll {:?} is outside 100us..60s", t.poll));
        }
        if t.max_chunk < 8 << 10 || t.max_chunk > 64 << 20 {
            return Err(format!("tail.max_chunk {} is outside 8K..64M", t.max_chunk));
        }
        if t.torn_retries > 10_000 {
            return Err(format!(
                "tail.torn_retries {} is above 10000",
                t.torn_retries
            ));
        }
        if t.torn_delay > Duration::from_secs(1) {
            return Err(format!("tail.torn_delay {:?} is above 1s", t.torn_delay));
        }
        if t.archive_wait < t.poll {
            return Err("tail.archive_wait is shorter than tail.poll".into());
        }
        Ok(())
    }
}
