//! The verifier's TOML configuration: `[store]` (the same keys as the watcher's, used with
//! read-only credentials), `[verify]`, `[collector]`, `[telemetry]`, `[alert]`, `[console]`
//! (the DR console, [`crate::console::config`]). Unknown keys are
//! errors; [`VerifierConfig::parse`] lists every problem at once (`check-config`), read by
//! `redovault::config` (the shared sections and their defaults are there).

use redovault::config::{ms, secs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::config::sections::{non_empty, non_empty_path};
use redovault::config::units::{choice, duration};
use redovault::config::{
    AlertConfig, AlertSection, Check, OneOrList, Problems, StoreConfig, TelemetryConfig,
};
use redovault::store::LockMode;
use serde::{Deserialize, Deserializer, de};

use crate::verify::{AcknowledgedGap, DeepMode};

#[derive(Debug, Clone, PartialEq)]
pub struct VerifySection {
    /// The database host's manifest directory, when mounted here read-only.
    pub local_manifest: Option<PathBuf>,
    /// Lock mode every object must have (None: no lock required; only for a local store).
    pub lock_mode: Option<LockMode>,
    /// Retain-until at least this long after shipping.
    pub min_retention: Duration,
    /// Deep mode.
    pub deep: DeepMode,
    /// Objects checked at once.
    pub parallel: usize,
    /// Daemon: time between runs.
    pub interval: Duration,
    /// State between runs (anchor, last deep verification per object).
    pub state_dir: PathBuf,
    /// Daemon: where each run's HTML and JSON reports are written (None: not written).
    pub report_dir: Option<PathBuf>,
    /// Known, acknowledged gaps.
    pub acknowledged_gaps: Vec<AcknowledgedGap>,
    /// Where the collector's streams are in WORM (None: `[store] prefix`).
    pub worm_prefix: Option<String>,
    /// The offline recovery private key (PKCS#8 PEM), when the verifier may read it: pieces
    /// re-hashed are opened and compared with the archived logs (None: not compared).
    pub recovery_key: Option<PathBuf>,
}

/// One collector: a `[collector]` table, or one of the `[[collector]]` list when the
/// extractor ships every stream to several collectors (each keeps its own copy, with its own
/// key, and seals it into WORM under its own prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorSection {
    /// Its name in reports and for `restore online --copy` (default: the last part of `dir`).
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    pub key_file: PathBuf,
    /// Where it seals its streams into WORM (its `[worm] prefix`), when that is not the one
    /// of `verify.worm_prefix` (None: not a WORM copy of its own).
    pub worm_prefix: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierConfig {
    pub store: StoreConfig,
    pub verify: VerifySection,
    /// `[collector]` or `[[collector]]`: the collectors audited (none: not audited).
    pub collectors: Vec<CollectorSection>,
    pub telemetry: TelemetryConfig,
    pub alert: AlertConfig,
    /// `[console]`: the DR console (`redovault-verifier console`), when configured.
    pub console: Option<crate::console::config::ConsoleSection>,
}

pub use redovault::config::ConfigError;

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/redovault/verifier";

impl VerifierConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<VerifierConfig, ConfigError> {
        redovault::config::load::<VerifierFile>(path)
    }

    /// Parses and checks text; on failure, every problem.
    pub fn parse(text: &str) -> Result<VerifierConfig, Vec<String>> {
        redovault::config::parse::<VerifierFile>(text)
    }
}

/// The file as serde reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VerifierFile {
    store: StoreConfig,
    verify: VerifyFile,
    collector: OneOrList<CollectorFile>,
    telemetry: TelemetryConfig,
    alert: AlertSection,
    console: Option<toml::Table>,
}

/// `[verify]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct VerifyFile {
    #[serde(deserialize_with = "non_empty_path")]
    local_manifest: Option<PathBuf>,
    #[serde(deserialize_with = "lock_mode")]
    lock_mode: Option<LockMode>,
    #[serde(deserialize_with = "duration")]
    min_retention: Duration,
    deep: Deep,
    deep_cycle: u32,
    parallel: usize,
    #[serde(deserialize_with = "duration")]
    interval: Duration,
    state_dir: PathBuf,
    #[serde(deserialize_with = "non_empty_path")]
    report_dir: Option<PathBuf>,
    acknowledged_gaps: Vec<GapFile>,
    #[serde(deserialize_with = "worm_prefix")]
    worm_prefix: Option<String>,
    #[serde(deserialize_with = "non_empty_path")]
    recovery_key: Option<PathBuf>,
}

impl Default for VerifyFile {
    fn default() -> VerifyFile {
        VerifyFile {
            local_manifest: None,
            lock_mode: Some(LockMode::Compliance),
            min_retention: secs(30 * 86_400),
            deep: Deep::Rolling,
            deep_cycle: 30,
            parallel: 8,
            interval: secs(3600),
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            report_dir: None,
            acknowledged_gaps: Vec::new(),
            worm_prefix: None,
            recovery_key: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Deep {
    Off,
    All,
    Rolling,
}

/// One `[[verify.acknowledged_gaps]]`.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct GapFile {
    resetlogs_id: u32,
    thread: u16,
    from_seq: u32,
    to_seq: u32,
    reason: String,
}

impl Default for GapFile {
    fn default() -> GapFile {
        GapFile {
            resetlogs_id: 0,
            thread: 1,
            from_seq: 0,
            to_seq: 0,
            reason: String::new(),
        }
    }
}

/// One `[collector]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CollectorFile {
    #[serde(deserialize_with = "non_empty")]
    name: Option<String>,
    #[serde(deserialize_with = "non_empty_path")]
    dir: Option<PathBuf>,
    #[serde(deserialize_with = "non_empty_path")]
    key_file: Option<PathBuf>,
    #[serde(deserialize_with = "worm_prefix")]
    worm_prefix: Option<String>,
}

impl Check for VerifierFile {
    type Output = VerifierConfig;

    fn check(self, p: &mut Problems) -> Option<VerifierConfig> {
        self.store.check(p);
        self.telemetry.check(p);
        let alert = self.alert.check(p);
        let collectors = check_collectors(self.collector, p);
        let verify = self.verify.check(p);
        let console = self.console.map(|t| {
            let mut problems = Vec::new();
            let c =
                crate::console::config::parse(&t, verify.state_dir.join("console"), &mut problems);
            problems.into_iter().for_each(|l| p.line(l));
            c
        });
        Some(VerifierConfig {
            store: self.store,
            verify,
            collectors,
            telemetry: self.telemetry,
            alert,
            console,
        })
    }
}

impl VerifyFile {
    fn check(self, p: &mut Problems) -> VerifySection {
        p.range("verify.deep_cycle", self.deep_cycle, 1, 100_000);
        p.range("verify.parallel", self.parallel, 1, 256);
        p.at_least("verify.interval", self.interval, secs(1));
        let mut gaps = Vec::new();
        for (i, g) in self.acknowledged_gaps.into_iter().enumerate() {
            let at = format!("verify.acknowledged_gaps[{i}]");
            let bad_range = g.to_seq < g.from_seq;
            let no_reason = g.reason.trim().is_empty();
            if bad_range {
                let what = format!("{} is below from_seq {}", g.to_seq, g.from_seq);
                p.push(&format!("{at}.to_seq"), what);
            }
            if no_reason {
                p.push(
                    &format!("{at}.reason"),
                    "say why and who acknowledged the gap",
                );
            }
            if !bad_range && !no_reason {
                gaps.push(AcknowledgedGap {
                    resetlogs_id: g.resetlogs_id,
                    thread: g.thread,
                    from_seq: g.from_seq,
                    to_seq: g.to_seq,
                    reason: g.reason,
                });
            }
        }
        VerifySection {
            local_manifest: self.local_manifest,
            lock_mode: self.lock_mode,
            min_retention: self.min_retention,
            deep: match self.deep {
                Deep::Off => DeepMode::Off,
                Deep::All => DeepMode::All,
                Deep::Rolling => DeepMode::Rolling {
                    cycle: self.deep_cycle,
                },
            },
            parallel: self.parallel,
            interval: self.interval,
            state_dir: self.state_dir,
            report_dir: self.report_dir,
            acknowledged_gaps: gaps,
            worm_prefix: self.worm_prefix,
            recovery_key: self.recovery_key,
        }
    }
}

/// `"compliance"`, `"governance"` or `"none"` (no lock required).
fn lock_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LockMode>, D::Error> {
    let none = None;
    let (c, g) = (Some(LockMode::Compliance), Some(LockMode::Governance));
    choice(d, &[("compliance", c), ("governance", g), ("none", none)])
}

/// A `worm_prefix` key: a relative key (an empty prefix is a prefix).
fn worm_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let p = String::deserialize(d)?;
    if !p.is_empty() && redovault::store::validate_key(&p).is_err() {
        return Err(de::Error::custom(format!(
            "{p:?} must be a relative key without empty, '.' or '..' parts"
        )));
    }
    Ok(Some(p))
}

/// The collectors: one `[collector]` table (both `dir` and `key_file` empty: none, as
/// before), or `[[collector]]` tables; names unique.
fn check_collectors(c: OneOrList<CollectorFile>, p: &mut Problems) -> Vec<CollectorSection> {
    let list = c.items.len() > 1;
    let mut out: Vec<CollectorSection> = Vec::new();
    for (i, f) in c.items.into_iter().enumerate() {
        let at = match c.list {
            true => format!("collector[{i}]"),
            false => "collector".to_string(),
        };
        let (dir, key_file) = match (f.dir, f.key_file) {
            (Some(d), Some(k)) => (d, k),
            (None, None) if !list && f.name.is_none() && f.worm_prefix.is_none() => continue,
            _ => {
                let or = if list { "" } else { ", or neither" };
                p.push(
                    &at,
                    format!("set both dir and key_file to audit the collector{or}"),
                );
                continue;
            }
        };
        let name = f.name.unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
        });
        if out.iter().any(|c| c.name == name) {
            let what =
                format!("the name {name:?} is taken by another collector (set name = \"...\")");
            p.push(&at, what);
        }
        if name.starts_with("worm:") {
            let what =
                format!("{name:?}: names starting with \"worm:\" are those of the WORM copies");
            p.push(&format!("{at}.name"), what);
        }
        out.push(CollectorSection {
            name,
            dir,
            key_file,
            worm_prefix: f.worm_prefix,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_passes() {
        let text = include_str!("../../deploy/config/verifier.example.toml");
        let c = VerifierConfig::parse(text).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(c.verify.deep, DeepMode::Rolling { cycle: 30 });
        assert_eq!(c.verify.acknowledged_gaps.len(), 1);
        assert_eq!(c.verify.recovery_key, None);
        assert_eq!(c.verify.worm_prefix, None);
        let names: Vec<&str> = c.collectors.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["backup1", "backup2"]);
        assert_eq!(
            c.collectors[1].worm_prefix.as_deref(),
            Some("redovault/PROD-b2")
        );
    }

    #[test]
    fn one_collector_table_or_a_list() {
        let base = "[store]\nkind = \"local\"\ndir = \"/x\"\n";
        // The single table of earlier releases: one collector named after its directory.
        let c = VerifierConfig::parse(&format!(
            "{base}[collector]\ndir = \"/var/lib/redovault/collector\"\nkey_file = \"/k\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.collectors,
            vec![CollectorSection {
                name: "collector".into(),
                dir: "/var/lib/redovault/collector".into(),
                key_file: "/k".into(),
                worm_prefix: None,
            }]
        );
        // Both empty: not audited.
        let c = VerifierConfig::parse(&format!("{base}[collector]\ndir = \"\"\nkey_file = \"\"\n"))
            .unwrap();
        assert!(c.collectors.is_empty());
        let c = VerifierConfig::parse(&format!(
            "{base}[[collector]]\nname = \"a\"\ndir = \"/a\"\nkey_file = \"/ka\"\nworm_prefix = \"pa\"\n\
             [[collector]]\ndir = \"/b/coll\"\nkey_file = \"/kb\"\n"
        ))
        .unwrap();
        assert_eq!(c.collectors.len(), 2);
        assert_eq!(c.collectors[0].worm_prefix.as_deref(), Some("pa"));
        assert_eq!(c.collectors[1].name, "coll");
        // Every problem of every entry at once, each named by its place in the list.
        let p = VerifierConfig::parse(&format!(
            "{base}[[collector]]\ndir = \"/a/c\"\nkey_file = \"/k\"\ncolour = 1\n\
             [[collector]]\ndir = \"/b/c\"\nkey_file = \"/k\"\nworm_prefix = \"/abs\"\n\
             [[collector]]\ndir = \"/d\"\n\
             [[collector]]\nname = \"worm:x\"\ndir = \"/e\"\nkey_file = \"/k\"\n"
        ))
        .unwrap_err()
        .join("\n");
        for needle in [
            "collector[0].colour: unknown key",
            "collector[1].worm_prefix",
            "collector[1]: the name \"c\" is taken",
            "collector[2]: set both dir and key_file",
            "collector[3].name",
        ] {
            assert!(p.contains(needle), "{needle} missing from:\n{p}");
        }
    }

    #[test]
    fn worm_prefix_and_recovery_key() {
        let base = "[store]\nkind = \"local\"\ndir = \"/x\"\nprefix = \"p\"\n[verify]\n";
        let c = VerifierConfig::parse(&format!(
            "{base}worm_prefix = \"bank1\"\nrecovery_key = \"/keys/recovery.key\"\n"
        ))
        .unwrap();
        assert_eq!(c.verify.worm_prefix.as_deref(), Some("bank1"));
        assert_eq!(
            c.verify.recovery_key.as_deref(),
            Some(Path::new("/keys/recovery.key"))
        );
        // An empty prefix is a prefix (the collector's may be empty); an empty key is none.
        let c = VerifierConfig::parse(&format!("{base}worm_prefix = \"\"\nrecovery_key = \"\"\n"))
            .unwrap();
        assert_eq!(c.verify.worm_prefix.as_deref(), Some(""));
        assert_eq!(c.verify.recovery_key, None);
        for bad in ["3", "\"/abs\"", "\"a//b\""] {
            let p = VerifierConfig::parse(&format!("{base}worm_prefix = {bad}\n")).unwrap_err();
            assert!(p.join("\n").contains("verify.worm_prefix"), "{bad}: {p:?}");
        }
    }

    #[test]
    fn every_problem_at_once() {
        let p = VerifierConfig::parse(
            r#"
            bogus = 1
            [store]
            kind = "s3"
            colour = "red"
            [verify]
            deep = "sometimes"
            lock_mode = "maybe"
            [[verify.acknowledged_gaps]]
            thread = 1
            from_seq = 9
            to_seq = 3
            [collector]
            dir = "/x"
            "#,
        )
        .unwrap_err();
        let all = p.join("\n");
        for needle in [
            "bogus: unknown section",
            "store.colour: unknown key",
            "verify.deep",
            "verify.lock_mode",
            "to_seq",
            "reason",
            "collector: set both",
            "store.endpoint: required",
            "store.bucket: required",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }
}
