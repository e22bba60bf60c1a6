//! The verifier's TOML configuration: `[store]` (the same keys as the watcher's, used with
//! read-only credentials), `[verify]`, `[collector]`, `[telemetry]`, `[alert]`, `[console]`
//! (the DR console, [`crate::console::config`]). Unknown keys are
//! errors; [`VerifierConfig::parse`] lists every problem at once (`check-config`), read by
//! `redovault::config` (the shared sections and their defaults are there).

use redovault::config::secs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::config::sections::non_empty_path;
use redovault::config::units::{choice, duration, from_str_with};
use redovault::config::{AlertConfig, Check, OneOrList, Problems, StoreConfig, TelemetryConfig};
use redovault::store::LockMode;
use serde::{Deserialize, Deserializer};
use smart_default::SmartDefault;

use crate::chain::AcknowledgedGap;
use crate::console::config::ConsoleSection;
use crate::verify::DeepMode;

#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct VerifySection {
    /// The database host's manifest directory, when mounted here read-only.
    #[serde(deserialize_with = "non_empty_path")]
    pub local_manifest: Option<PathBuf>,
    /// Lock mode every object must have (None: no lock required; only for a local store).
    #[serde(deserialize_with = "lock_mode")]
    #[default(Some(LockMode::Compliance))]
    pub lock_mode: Option<LockMode>,
    /// Retain-until at least this long after shipping.
    #[serde(deserialize_with = "duration")]
    #[default(secs(30 * 86_400))]
    pub min_retention: Duration,
    /// Deep mode, with `deep_cycle`: [`VerifySection::deep_mode`].
    pub deep: Deep,
    /// Runs per full cycle of `deep = "rolling"`.
    #[default = 30]
    pub deep_cycle: u32,
    /// Incremental runs (`verify --incremental`): after a clean run, only the sealed
    /// segments after its anchor are read and the objects compared with one listing of
    /// versions; false (the default): every run is a full audit.
    pub incremental: bool,
    /// Objects checked at once.
    #[default = 8]
    pub parallel: usize,
    /// Daemon: time between runs.
    #[serde(deserialize_with = "duration")]
    #[default(secs(3600))]
    pub interval: Duration,
    /// State between runs (anchor, last deep verification per object).
    #[default(PathBuf::from(DEFAULT_STATE_DIR))]
    pub state_dir: PathBuf,
    /// Daemon: where each run's HTML and JSON reports are written (None: not written).
    #[serde(deserialize_with = "non_empty_path")]
    pub report_dir: Option<PathBuf>,
    /// Known, acknowledged gaps.
    pub acknowledged_gaps: Vec<AcknowledgedGap>,
    /// Where the collector's streams are in WORM (None: `[store] prefix`).
    #[serde(deserialize_with = "worm_prefix")]
    pub worm_prefix: Option<String>,
    /// The offline recovery private key (PKCS#8 PEM), when the verifier may read it: pieces
    /// re-hashed are opened and compared with the archived logs (None: not compared).
    #[serde(deserialize_with = "non_empty_path")]
    pub recovery_key: Option<PathBuf>,
}

/// `verify.deep` as written (a rolling cycle's length is `deep_cycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deep {
    Off,
    All,
    #[default]
    Rolling,
}

impl VerifySection {
    /// `deep` with its cycle, as a verification run takes it.
    pub fn deep_mode(&self) -> DeepMode {
        match self.deep {
            Deep::Off => DeepMode::Off,
            Deep::All => DeepMode::All,
            Deep::Rolling => DeepMode::Rolling {
                cycle: self.deep_cycle,
            },
        }
    }
}

/// One collector: a `[collector]` table, or one of the `[[collector]]` list when the
/// extractor ships every stream to several collectors (each keeps its own copy, with its own
/// key, and seals it into WORM under its own prefix).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct CollectorSection {
    /// Its name in reports and for `restore online --copy` (default: the last part of `dir`).
    pub name: String,
    /// Its data directory.
    pub dir: PathBuf,
    pub key_file: PathBuf,
    /// Where it seals its streams into WORM (its `[worm] prefix`), when that is not the one
    /// of `verify.worm_prefix` (None: not a WORM copy of its own).
    #[serde(deserialize_with = "worm_prefix")]
    pub worm_prefix: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct VerifierConfig {
    pub store: StoreConfig,
    pub verify: VerifySection,
    /// `[collector]` or `[[collector]]`: the collectors audited (none: not audited).
    #[serde(rename = "collector")]
    pub collectors: OneOrList<CollectorSection>,
    pub telemetry: TelemetryConfig,
    pub alert: AlertConfig,
    /// `[console]`: the DR console (`redovault-verifier console`), when configured.
    pub console: Option<ConsoleSection>,
}

pub use redovault::config::ConfigError;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/redovault/verifier";

impl VerifierConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<VerifierConfig, ConfigError> {
        redovault::config::load::<VerifierConfig>(path)
    }

    /// Parses and checks text; on failure, every problem.
    pub fn parse(text: &str) -> Result<VerifierConfig, Vec<String>> {
        redovault::config::parse::<VerifierConfig>(text)
    }
}

impl Check for VerifierConfig {
    type Output = VerifierConfig;

    fn check(mut self, p: &mut Problems) -> Option<VerifierConfig> {
        self.store.check(p);
        self.telemetry.check(p);
        self.alert.check(p);
        check_collectors(&mut self.collectors, p);
        let v = &self.verify;
        p.range("verify.deep_cycle", v.deep_cycle, 1, 100_000);
        p.range("verify.parallel", v.parallel, 1, 256);
        p.at_least("verify.interval", v.interval, secs(1));
        for (i, g) in v.acknowledged_gaps.iter().enumerate() {
            let at = format!("verify.acknowledged_gaps[{i}]");
            if g.to_seq < g.from_seq {
                let what = format!("{} is below from_seq {}", g.to_seq, g.from_seq);
                p.push(&format!("{at}.to_seq"), what);
            }
            if g.reason.trim().is_empty() {
                let what = "say why and who acknowledged the gap";
                p.push(&format!("{at}.reason"), what);
            }
        }
        if let Some(c) = &mut self.console {
            c.check(self.verify.state_dir.join("console"), p);
        }
        Some(self)
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
    from_str_with(
        d,
        "a string",
        false,
        |p| match redovault::store::validate_key(p) {
            Err(_) if !p.is_empty() => Err(format!(
                "{p:?} must be a relative key without empty, '.' or '..' parts"
            )),
            _ => Ok(Some(p.to_string())),
        },
    )
}

/// The collectors: one `[collector]` table (every key empty: none, as before), or
/// `[[collector]]` tables, each with both `dir` and `key_file`; names (by default the last
/// part of `dir`) unique.
fn check_collectors(c: &mut OneOrList<CollectorSection>, p: &mut Problems) {
    let list = c.items.len() > 1;
    if !list && c.items.first() == Some(&CollectorSection::default()) {
        c.items.clear();
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, f) in c.items.iter_mut().enumerate() {
        let at = match c.list {
            true => format!("collector[{i}]"),
            false => "collector".to_string(),
        };
        if f.dir.as_os_str().is_empty() || f.key_file.as_os_str().is_empty() {
            let or = if list { "" } else { ", or neither" };
            let what = format!("set both dir and key_file to audit the collector{or}");
            p.push(&at, what);
            continue;
        }
        if f.name.is_empty() {
            let last = f.dir.file_name().unwrap_or(f.dir.as_os_str());
            f.name = last.to_string_lossy().into();
        }
        let name = &f.name;
        if !names.insert(name.clone()) {
            let what = "is taken by another collector (set name = \"...\")";
            p.push(&at, format!("the name {name:?} {what}"));
        }
        if name.starts_with("worm:") {
            let what = "names starting with \"worm:\" are those of the WORM copies";
            p.push(&format!("{at}.name"), format!("{name:?}: {what}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_passes() {
        let text = include_str!("../../deploy/config/verifier.example.toml");
        let c = VerifierConfig::parse(text).unwrap_or_else(|p| panic!("{p:#?}"));
        assert_eq!(c.verify.deep_mode(), DeepMode::Rolling { cycle: 30 });
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
            c.collectors.items,
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
