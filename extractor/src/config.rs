//! The extractor's configuration values: where the online redo logs and the archived logs
//! are, how the tailer polls, and where its durable state lives.
//!
//! The file is read by [`crate::settings`] (through the root crate's `config`, which lists
//! every problem at once) straight into these sections; [`TailConfig::check`] is also the
//! tailer's own range check. See `deploy/config/extractor.example.toml` for the file.

use std::path::PathBuf;
use std::time::Duration;

use redovault::config::units::{duration, size};
use redovault::config::{Problems, ms, secs};
use serde::Deserialize;
use smart_default::SmartDefault;

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
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct OnlineConfig {
    /// `[[online.group]]`: one entry per group, of every thread (the thread of a group is
    /// read from its header).
    #[serde(rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// Redo threads to follow; empty: every thread found in the groups' headers.
    pub threads: Vec<u16>,
}

/// One online log group: its members are multiplexed copies of the same log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct GroupConfig {
    /// The member files (absolute paths).
    pub members: Vec<PathBuf>,
}

/// `[archive]`: directories where ARCn writes archived logs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct ArchiveConfig {
    /// Archive destinations (absolute paths); searched by header, whatever the file names.
    pub dirs: Vec<PathBuf>,
}

/// `[tail]`: how the tailer reads the online logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SmartDefault, Deserialize)]
#[serde(default)]
pub struct TailConfig {
    /// Interval between two reads of the CURRENT log when nothing new was found.
    #[default(ms(10))]
    #[serde(deserialize_with = "duration")]
    pub poll: Duration,
    /// Also wake up on file events of the online logs and archive directories (hints only:
    /// the poll interval still bounds the wait).
    #[default = true]
    pub file_events: bool,
    /// Largest chunk in bytes (whole blocks; at least 8 KiB).
    #[default(1 << 20)]
    #[serde(deserialize_with = "size")]
    pub max_chunk: u64,
    /// Re-reads of a block whose checksum fails (a torn write in progress) before the block
    /// counts as damaged.
    #[default = 20]
    pub torn_retries: u32,
    /// Longest delay between two re-reads of a torn block: the first re-read comes after
    /// 100 µs (LGWR's write is usually done by then), each next delay doubles up to this.
    #[default(ms(5))]
    #[serde(deserialize_with = "duration")]
    pub torn_delay: Duration,
    /// How long to wait for the archived copy of a log that was reused before it was read,
    /// before giving up with an error.
    #[default(secs(600))]
    #[serde(deserialize_with = "duration")]
    pub archive_wait: Duration,
}

/// `[state]`: the extractor's own durable state.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct StateConfig {
    /// Directory of the checkpoints (absolute path; required).
    #[serde(deserialize_with = "redovault::config::sections::abs_path")]
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
    /// Adds a problem for each setting out of its range (the poll interval 100 µs..60 s,
    /// chunks 8 KiB..64 MiB, ...).
    pub fn check_into(&self, p: &mut Problems) {
        let us = Duration::from_micros;
        p.within("tail.poll", self.poll, us(100), secs(60));
        p.size_range("tail.max_chunk", self.max_chunk, 8 << 10, 64 << 20);
        p.range("tail.torn_retries", self.torn_retries, 0, 10_000);
        p.within("tail.torn_delay", self.torn_delay, us(0), secs(1));
        let month = secs(30 * 86_400);
        p.within("tail.archive_wait", self.archive_wait, self.poll, month);
    }

    /// The tailer's check: the first problem, if any.
    pub fn check(&self) -> Result<(), String> {
        let mut p = Problems::default();
        self.check_into(&mut p);
        p.into_vec().into_iter().next().map_or(Ok(()), Err)
    }
}
