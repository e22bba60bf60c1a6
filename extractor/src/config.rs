//! The extractor's configuration file (TOML): where the online redo logs and the archived logs
//! are, how the tailer polls, and where its durable state lives.
//!
//! ```toml
//! [online]
//! threads = [1]                      # optional: the redo threads to follow (default: all found)
//! [[online.group]]                   # one table per online log group
//! members = ["/u01/oradata/FREE/redo01a.log", "/u02/oradata/FREE/redo01b.log"]
//! [[online.group]]
//! members = ["/u01/oradata/FREE/redo02a.log", "/u02/oradata/FREE/redo02b.log"]
//!
//! [archive]
//! dirs = ["/u01/arch"]               # archive destinations (log_archive_dest_n)
//!
//! [tail]                             # every key optional; defaults shown
//! poll = "10ms"                      # how often the CURRENT log is re-read
//! file_events = true                 # wake up early on file events (inotify)
//! max_chunk = "1M"                   # largest chunk of redo handed on at once
//! torn_retries = 20                  # re-reads of a block whose checksum fails ...
//! torn_delay = "5ms"                 # ... at most this far apart (from 100us, doubling)
//! archive_wait = "10m"               # how long to wait for ARCn to archive a reused log
//!
//! [state]
//! dir = "/var/lib/redovault/extractor"   # checkpoints
//! ```
//!
//! Unknown keys are refused (a typo must not silently fall back to a default), every path
//! must be absolute, and every error names the file (and, for syntax errors, the line).
//! Durations take a unit (`us`, `ms`, `s`, `m`, `h`); sizes a number of bytes with an optional
//! `K`, `M` or `G` suffix (powers of 1024).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The whole extractor configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractorConfig {
    /// The online redo log groups.
    pub online: OnlineConfig,
    /// The archive destinations.
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// How the tailer reads.
    #[serde(default)]
    pub tail: TailConfig,
    /// Where durable state (checkpoints) lives.
    pub state: StateConfig,
}

/// `[online]`: the online redo log groups (`v$logfile`), and the threads to follow.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineConfig {
    /// `[[online.group]]`: one entry per group, of every thread (the thread of a group is
    /// read from its header).
    #[serde(rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// Redo threads to follow; empty: every thread found in the groups' headers.
    #[serde(default)]
    pub threads: Vec<u16>,
}

/// One online log group: its members are multiplexed copies of the same log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The member files (absolute paths).
    pub members: Vec<PathBuf>,
}

/// `[archive]`: directories where ARCn writes archived logs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Archive destinations (absolute paths); searched by header, whatever the file names.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

/// `[tail]`: how the tailer reads the online logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Interval between two reads of the CURRENT log when nothing new was found.
    #[serde(deserialize_with = "de_duration")]
    pub poll: Duration,
    /// Also wake up on file events of the online logs and archive directories (hints only:
    /// the poll interval still bounds the wait).
    pub file_events: bool,
    /// Largest chunk in bytes (whole blocks; at least 8 KiB).
    #[serde(deserialize_with = "de_size")]
    pub max_chunk: u64,
    /// Re-reads of a block whose checksum fails (a torn write in progress) before the block
    /// counts as damaged.
    pub torn_retries: u32,
    /// Longest delay between two re-reads of a torn block: the first re-read comes after
    /// 100 µs (LGWR's write is usually done by then), each next delay doubles up to this.
    #[serde(deserialize_with = "de_duration")]
    pub torn_delay: Duration,
    /// How long to wait for the archived copy of a log that was reused before it was read,
    /// before giving up with an error.
    #[serde(deserialize_with = "de_duration")]
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// A configuration that cannot be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the expected keys.
    #[error("configuration {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line and column.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ExtractorConfig {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<ExtractorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        ExtractorConfig::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ExtractorConfig, ConfigError> {
        let cfg: ExtractorConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.check().map_err(|message| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

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

    fn check(&self) -> Result<(), String> {
        if self.online.groups.is_empty() {
            return Err("[online] needs at least one [[online.group]]".into());
        }
        let mut seen = BTreeSet::new();
        for (i, g) in self.online.groups.iter().enumerate() {
            if g.members.is_empty() {
                return Err(format!("online group {} has no members", i + 1));
            }
            for m in &g.members {
                absolute(m, &format!("member of online group {}", i + 1))?;
                if !seen.insert(m.clone()) {
                    return Err(format!(
                        "{} is listed twice as an online member",
                        m.display()
                    ));
                }
            }
        }
        if self.online.threads.contains(&0) {
            return Err("thread numbers start at 1".into());
        }
        for d in &self.archive.dirs {
            absolute(d, "archive directory")?;
        }
        absolute(&self.state.dir, "state directory")?;
        self.tail.check()
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

fn absolute(p: &Path, what: &str) -> Result<(), String> {
    if p.is_absolute() {
        Ok(())
    } else {
        Err(format!("{what} {} is not an absolute path", p.display()))
    }
}

/// Parses `10ms`, `5s`, `500us`, `2m`, `1h` (a whole number and a unit).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "us" | "µs" => Some(Duration::from_micros(n)),
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" | "min" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

/// Parses a size in bytes: `65536`, `64K`, `1M`, `1G` (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid duration {s:?}: use a whole number and a unit (us, ms, s, m, h), e.g. \"10ms\""
        ))
    })
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {s:?}: use bytes with an optional K, M or G suffix, e.g. \"1M\""
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[online]
threads = [1]
[[online.group]]
members = ["/u01/redo01a.log", "/u02/redo01b.log"]
[[online.group]]
members = ["/u01/redo02a.log"]

[archive]
dirs = ["/u01/arch"]

[tail]
poll = "20ms"
file_events = false
max_chunk = "2M"
torn_retries = 3
torn_delay = "1ms"
archive_wait = "30s"

[state]
dir = "/var/lib/redovault/extractor"
"#;

    fn parse(text: &str) -> Result<ExtractorConfig, ConfigError> {
        ExtractorConfig::parse(text, Path::new("/etc/redovault/extractor.toml"))
    }

    #[test]
    fn full_file() {
        let c = parse(FULL).unwrap();
        assert_eq!(c.online.groups.len(), 2);
        assert_eq!(c.online.threads, [1]);
        assert_eq!(c.tail.poll, Duration::from_millis(20));
        assert!(!c.tail.file_events);
        assert_eq!(c.tail.max_chunk, 2 << 20);
        assert_eq!(c.tail.torn_retries, 3);
        assert_eq!(c.tail.archive_wait, Duration::from_secs(30));
        let s = c.sources();
        assert_eq!(s.groups[0].len(), 2);
        assert_eq!(s.archive_dirs, [PathBuf::from("/u01/arch")]);
    }

    #[test]
    fn defaults() {
        let c = parse(
            "[online]\n[[online.group]]\nmembers = [\"/r1\"]\n[[online.group]]\nmembers = [\"/r2\"]\n[state]\ndir = \"/s\"\n",
        )
        .unwrap();
        assert_eq!(c.tail, TailConfig::default());
        assert_eq!(c.tail.poll, Duration::from_millis(10));
        assert!(c.archive.dirs.is_empty());
        assert!(c.online.threads.is_empty());
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = err(&FULL.replace("torn_retries = 3", "torn_retrys = 3"));
        assert!(e.contains("/etc/redovault/extractor.toml"), "{e}");
        assert!(e.contains("torn_retrys"), "{e}");
        let e = err(&format!("{FULL}\n[link]\nhost = \"x\"\n"));
        assert!(e.contains("link"), "{e}");
        let e = err(&FULL.replace("members = [\"/u01/redo02a.log\"]", "member = [\"/x\"]"));
        assert!(e.contains("member"), "{e}");
    }

    #[test]
    fn bad_values_are_explained() {
        let e = err(&FULL.replace("\"20ms\"", "\"20\""));
        assert!(e.contains("invalid duration \"20\""), "{e}");
        assert!(e.contains("line"), "{e}");
        let e = err(&FULL.replace("\"2M\"", "\"2X\""));
        assert!(e.contains("invalid size"), "{e}");
        let e = err(&FULL.replace("\"2M\"", "\"1K\""));
        assert!(e.contains("max_chunk"), "{e}");
        let e = err(&FULL.replace("\"20ms\"", "\"2m\""));
        assert!(e.contains("tail.poll"), "{e}");
        let e = err(&FULL.replace("/u01/arch", "arch"));
        assert!(
            e.contains("archive directory arch is not an absolute path"),
            "{e}"
        );
        let e = err(&FULL.replace("/u02/redo01b.log", "/u01/redo02a.log"));
        assert!(e.contains("listed twice"), "{e}");
        let e = err(&FULL.replace("threads = [1]", "threads = [0]"));
        assert!(e.contains("start at 1"), "{e}");
        let e = err("[state]\ndir = \"/s\"\n");
        assert!(e.contains("online"), "{e}");
        let e = err("[online]\ngroup = []\n[state]\ndir = \"/s\"\n");
        assert!(e.contains("at least one"), "{e}");
        let e = err("[online]\n[[online.group]]\nmembers = []\n[state]\ndir = \"/s\"\n");
        assert!(e.contains("no members"), "{e}");
        let e = err("not toml at all");
        assert!(
            e.starts_with("configuration /etc/redovault/extractor.toml"),
            "{e}"
        );
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = ExtractorConfig::load(Path::new("/nonexistent/extractor.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/extractor.toml"), "{e}");
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10ms"), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("500us"), Some(Duration::from_micros(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("ms"), None);
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("10d"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("8192"), Some(8192));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999G"), None);
    }
}
