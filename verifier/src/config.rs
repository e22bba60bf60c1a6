//! The verifier's TOML configuration: `[store]` (the same keys as the watcher's, used with
//! read-only credentials), `[verify]`, `[collector]`, `[telemetry]`, `[alert]`, `[console]`
//! (the DR console, [`crate::console::config`]). Unknown keys are
//! errors; [`VerifierConfig::parse`] lists every problem at once (`check-config`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::store::LockMode;
use redovault::watcher::config::{AlertConfig, Section, StoreConfig, TelemetryConfig};

use crate::verify::{AcknowledgedGap, DeepMode};

/// `[verify]`.
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
    /// Its key file.
    pub key_file: PathBuf,
    /// Where it seals its streams into WORM (its `[worm] prefix`), when that is not the one
    /// of `verify.worm_prefix` (None: not a WORM copy of its own).
    pub worm_prefix: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifierConfig {
    /// `[store]`.
    pub store: StoreConfig,
    /// `[verify]`.
    pub verify: VerifySection,
    /// `[collector]` or `[[collector]]`: the collectors audited (none: not audited).
    pub collectors: Vec<CollectorSection>,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[alert]`.
    pub alert: AlertConfig,
    /// `[console]`: the DR console (`redovault-verifier console`), when configured.
    pub console: Option<crate::console::config::ConsoleSection>,
}

pub use redovault::tomlcheck::ConfigError;

const SECTIONS: [&str; 6] = [
    "store",
    "verify",
    "collector",
    "telemetry",
    "alert",
    "console",
];

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/redovault/verifier";

impl VerifierConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<VerifierConfig, ConfigError> {
        redovault::tomlcheck::load(path, VerifierConfig::parse)
    }

    /// Parses and checks text; on failure, every problem.
    pub fn parse(text: &str) -> Result<VerifierConfig, Vec<String>> {
        let root: toml::Table = toml::from_str(text)
            .map_err(|e| vec![format!("not valid TOML: {}", e.to_string().trim())])?;
        let mut problems = Vec::new();
        let table = |name: &str, problems: &mut Vec<String>| match root.get(name) {
            None => None,
            Some(toml::Value::Table(t)) => Some(t.clone()),
            Some(_) => {
                problems.push(format!("{name}: expected a [{name}] table"));
                None
            }
        };
        let t_store = table("store", &mut problems);
        let t_verify = table("verify", &mut problems);
        let t_colls: Vec<toml::Table> = match root.get("collector") {
            None => Vec::new(),
            Some(toml::Value::Table(t)) => vec![t.clone()],
            Some(toml::Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    toml::Value::Table(t) => Some(t.clone()),
                    _ => {
                        problems.push(format!("collector[{i}]: expected a table"));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                problems
                    .push("collector: expected a [collector] table or [[collector]] tables".into());
                Vec::new()
            }
        };
        let t_tele = table("telemetry", &mut problems);
        let t_alert = table("alert", &mut problems);
        let t_console = table("console", &mut problems);
        for k in root.keys() {
            if !SECTIONS.contains(&k.as_str()) {
                problems.push(format!(
                    "{k}: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            }
        }
        let mut s = Section::new("store", t_store.as_ref(), &mut problems);
        let store = StoreConfig::parse_section(&mut s);
        s.finish();
        let mut s = Section::new("telemetry", t_tele.as_ref(), &mut problems);
        let telemetry = TelemetryConfig::parse_section(&mut s);
        s.finish();
        let mut s = Section::new("alert", t_alert.as_ref(), &mut problems);
        let alert = AlertConfig::parse_section(&mut s);
        s.finish();

        let collectors = parse_collectors(&t_colls, &mut problems);

        let mut gap_problems = Vec::new();
        let mut s = Section::new("verify", t_verify.as_ref(), &mut problems);
        let lock_mode = match s.string("lock_mode", "compliance").as_str() {
            "compliance" => Some(LockMode::Compliance),
            "governance" => Some(LockMode::Governance),
            "none" => None,
            other => {
                s.problem(
                    "lock_mode",
                    format!("{other:?}: expected \"compliance\", \"governance\" or \"none\""),
                );
                Some(LockMode::Compliance)
            }
        };
        let deep_cycle = s.int("deep_cycle", 30, 1, 100_000) as u32;
        let deep = match s.string("deep", "rolling").as_str() {
            "off" => DeepMode::Off,
            "all" => DeepMode::All,
            "rolling" => DeepMode::Rolling { cycle: deep_cycle },
            other => {
                s.problem(
                    "deep",
                    format!("{other:?}: expected \"off\", \"all\" or \"rolling\""),
                );
                DeepMode::Off
            }
        };
        let gaps = match s.value("acknowledged_gaps") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .enumerate()
                .filter_map(|(i, v)| parse_gap(i, v, &mut gap_problems))
                .collect(),
            Some(_) => {
                s.problem(
                    "acknowledged_gaps",
                    "expected an array of tables ([[verify.acknowledged_gaps]])".into(),
                );
                Vec::new()
            }
        };
        let verify = VerifySection {
            local_manifest: s.opt_string("local_manifest").map(PathBuf::from),
            lock_mode,
            min_retention: s.duration(
                "min_retention",
                Duration::from_secs(30 * 86_400),
                Duration::ZERO,
            ),
            deep,
            parallel: s.int("parallel", 8, 1, 256) as usize,
            interval: s.duration(
                "interval",
                Duration::from_secs(3600),
                Duration::from_secs(1),
            ),
            state_dir: PathBuf::from(s.string("state_dir", DEFAULT_STATE_DIR)),
            report_dir: s.opt_string("report_dir").map(PathBuf::from),
            acknowledged_gaps: gaps,
            worm_prefix: worm_prefix(&mut s),
            recovery_key: s.opt_string("recovery_key").map(PathBuf::from),
        };
        s.finish();
        problems.extend(gap_problems);
        let console = t_console.as_ref().map(|t| {
            crate::console::config::parse(t, verify.state_dir.join("console"), &mut problems)
        });
        match store.kind {
            redovault::watcher::config::StoreKind::S3 => {
                if store.endpoint.is_none() {
                    problems.push("store.endpoint: required for kind = \"s3\"".into());
                }
                if store.bucket.is_empty() {
                    problems.push("store.bucket: required for kind = \"s3\"".into());
                }
            }
            redovault::watcher::config::StoreKind::Local => {
                if store.dir.is_none() {
                    problems.push("store.dir: required for kind = \"local\"".into());
                }
            }
        }
        if problems.is_empty() {
            Ok(VerifierConfig {
                store,
                verify,
                collectors,
                telemetry,
                alert,
                console,
            })
        } else {
            Err(problems)
        }
    }
}

/// A `worm_prefix` key: absent, or a relative key (an empty prefix is a prefix).
fn worm_prefix(s: &mut Section<'_>) -> Option<String> {
    match s.value("worm_prefix") {
        None => None,
        Some(toml::Value::String(p))
            if !p.is_empty() && redovault::store::validate_key(p).is_err() =>
        {
            s.problem(
                "worm_prefix",
                format!("{p:?} must be a relative key without empty, '.' or '..' parts"),
            );
            None
        }
        Some(toml::Value::String(p)) => Some(p.clone()),
        Some(_) => {
            s.problem("worm_prefix", "expected a string".into());
            None
        }
    }
}

/// The collectors: one `[collector]` table (both `dir` and `key_file` empty: none, as
/// before), or `[[collector]]` tables; names unique.
fn parse_collectors(tables: &[toml::Table], problems: &mut Vec<String>) -> Vec<CollectorSection> {
    let list = tables.len() > 1;
    let mut out: Vec<CollectorSection> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let mut own = Vec::new();
        let mut s = Section::new("collector", Some(t), &mut own);
        let name = s.opt_string("name");
        let dir = s.opt_string("dir").map(PathBuf::from);
        let key_file = s.opt_string("key_file").map(PathBuf::from);
        let worm_prefix = worm_prefix(&mut s);
        s.finish();
        let at = if list {
            format!("collector[{i}]")
        } else {
            "collector".to_string()
        };
        problems.extend(own.into_iter().map(|p| match list {
            true => p.replacen("collector", &at, 1),
            false => p,
        }));
        let (dir, key_file) = match (dir, key_file) {
            (Some(d), Some(k)) => (d, k),
            (None, None) if !list && name.is_none() && worm_prefix.is_none() => continue,
            _ => {
                problems.push(format!(
                    "{at}: set both dir and key_file to audit the collector{}",
                    if list { "" } else { ", or neither" }
                ));
                continue;
            }
        };
        let name = name.unwrap_or_else(|| {
            dir.file_name()
                .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
        });
        if out.iter().any(|c| c.name == name) {
            problems.push(format!(
                "{at}: the name {name:?} is taken by another collector (set name = \"...\")"
            ));
        }
        if name.starts_with("worm:") {
            problems.push(format!(
                "{at}.name: {name:?}: names starting with \"worm:\" are those of the WORM copies"
            ));
        }
        out.push(CollectorSection {
            name,
            dir,
            key_file,
            worm_prefix,
        });
    }
    out
}

fn parse_gap(i: usize, v: &toml::Value, problems: &mut Vec<String>) -> Option<AcknowledgedGap> {
    let toml::Value::Table(t) = v else {
        problems.push(format!("verify.acknowledged_gaps[{i}]: expected a table"));
        return None;
    };
    let name: &'static str = "verify.acknowledged_gaps[]";
    let mut s = Section::new(name, Some(t), problems);
    let g = AcknowledgedGap {
        resetlogs_id: s.int("resetlogs_id", 0, 0, u64::from(u32::MAX)) as u32,
        thread: s.int("thread", 1, 1, u64::from(u16::MAX)) as u16,
        from_seq: s.int("from_seq", 0, 0, u64::from(u32::MAX)) as u32,
        to_seq: s.int("to_seq", 0, 0, u64::from(u32::MAX)) as u32,
        reason: s.string("reason", ""),
    };
    let bad_range = g.to_seq < g.from_seq;
    let no_reason = g.reason.trim().is_empty();
    if bad_range {
        s.problem(
            "to_seq",
            format!("{} is below from_seq {}", g.to_seq, g.from_seq),
        );
    }
    if no_reason {
        s.problem("reason", "say why and who acknowledged the gap".into());
    }
    s.finish();
    (!bad_range && !no_reason).then_some(g)
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
