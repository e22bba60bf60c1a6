//! Configuration files on serde, with every problem reported at once.
//!
//! ```text
//! text ──toml──▶ Table ──serde (derive)──▶ the role's config ──check()──▶ checked config
//!                  │        │      └─ unknown keys (serde_ignored): `store.buckt: unknown key`
//!                  │        └─ a type error (serde_path_to_error): `store.retention: expected …`;
//!                  │           its key is removed and the table read again (its default then)
//!                  └─ a syntax error: the only problem
//! ```
//!
//! Invariants: every key's problem names its path (`section.key`, `list[2].key`); parsing
//! returns the config only when the list of problems is empty; a file never panics the reader
//! and the retry loop ends (each round removes one key). Durations and sizes have one parser
//! ([`units`]); the sections the roles share (`[store]`, `[telemetry]`, `[alert]`) and their
//! defaults are in [`sections`].

pub mod load;
pub mod sections;
pub mod units;

use std::path::PathBuf;
use std::time::Duration;

use crate::compress::{Level, MAX_LEVEL};

pub use load::{Check, load, parse};
pub use sections::{
    AlertConfig, AlertSection, Cipher, Compress, CredentialsMode, DaemonTelemetry, OneOrList,
    StoreConfig, StoreKind, Telemetry, TelemetryConfig,
};
pub use units::{ms, parse_duration, parse_size, secs};

/// A configuration file with problems; `problems` lists every one found.
#[derive(Debug, thiserror::Error)]
#[error("{}: {} problem(s):\n  {}", path.display(), problems.len(), problems.join("\n  "))]
pub struct ConfigError {
    pub path: PathBuf,
    /// One line per problem (`section.key: what is wrong`).
    pub problems: Vec<String>,
}

/// The problems found so far, in the order found, one line each (`path: what is wrong`).
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Adds the problem `what` of the key at `path`.
    pub fn push(&mut self, path: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{path}: {what}"));
    }

    /// Adds a line as it is (it names its key itself).
    pub fn line(&mut self, line: String) {
        self.0.push(line);
    }

    /// True when a problem of the key at `path` is already listed (so that a key reported as
    /// malformed is not also reported as missing).
    pub fn about(&self, path: &str) -> bool {
        self.0.iter().any(|p| {
            p.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with([':', '.', '[']))
        })
    }

    /// A problem unless `v` is within `min..=max`.
    pub fn range<T: TryInto<u64>>(&mut self, path: &str, v: T, min: u64, max: u64) {
        let v = v.try_into().unwrap_or(u64::MAX);
        if !(min..=max).contains(&v) {
            self.push(path, format!("{v} is out of range {min}..={max}"));
        }
    }

    /// A problem unless `d` is at least `min`.
    pub fn at_least(&mut self, path: &str, d: std::time::Duration, min: std::time::Duration) {
        if d < min {
            self.push(path, format!("{d:?} is shorter than the minimum {min:?}"));
        }
    }

    /// A problem unless the size `v` is within `min..=max` bytes.
    pub fn size_range<T: TryInto<u64>>(&mut self, path: &str, v: T, min: u64, max: u64) {
        let v = v.try_into().unwrap_or(u64::MAX);
        if !(min..=max).contains(&v) {
            self.push(path, format!("out of range {min}..={max} bytes"));
        }
    }

    /// The zstd level of a `compress = "zstd"` key (None when `on` is false), `level` checked
    /// within the levels zstd has at `path`.
    pub fn zstd_level(&mut self, path: &str, on: bool, level: u64) -> Option<Level> {
        self.range(path, level, 1, MAX_LEVEL as u64);
        Level::new(i32::try_from(level).ok()?).filter(|_| on)
    }

    /// A problem unless `d` is within `min..=max`.
    pub fn within(&mut self, path: &str, d: Duration, min: Duration, max: Duration) {
        if d < min || d > max {
            self.push(path, format!("{d:?} is outside {min:?}..={max:?}"));
        }
    }

    /// "missing" at `path` when `empty` (a key that must be set), unless its value is already
    /// reported as malformed (serde then left the field at its default).
    pub fn missing_if(&mut self, path: &str, empty: bool) {
        if empty {
            self.missing(path, "missing");
        }
    }

    /// `what` at `path`, unless a problem of that key is already listed.
    pub fn missing(&mut self, path: &str, what: impl std::fmt::Display) {
        if !self.about(path) {
            self.push(path, what);
        }
    }

    /// A problem unless `p` is an absolute path.
    pub fn absolute(&mut self, path: &str, p: &std::path::Path) {
        if !p.is_absolute() {
            self.push(path, format!("{} is not an absolute path", p.display()));
        }
    }

    /// How many problems so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}
