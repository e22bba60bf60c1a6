//! `[console]` of the verifier's configuration: where the console listens (loopback by
//! default, TLS when a certificate is given), its state directory, how often it polls, its
//! sources (collectors' status pages, watchers' and extractors' metrics, report directories;
//! the WORM store is the verifier's `[store]`) and, per database, the RPO and RTO targets.
//!
//! Read like the rest of the file (`redovault::config`): every problem at once, unknown keys
//! refused.

use redovault::config::{ms, secs};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use redovault::config::Problems;
use redovault::config::sections::non_empty_path;
use redovault::config::units::{duration, from_str_with, size};
use serde::{Deserialize, Deserializer};
use smart_default::SmartDefault;

/// Default listen address: loopback (the console shows where every database's recovery
/// point lives; exposing it is a choice, with TLS).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// A collector's status page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct CollectorSource {
    /// Its name on the page.
    pub name: String,
    /// `http://host:port/status` (its metrics listener).
    pub status_url: String,
}

/// A Prometheus endpoint of a watcher or an extractor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct MetricsSource {
    /// Its name on the page.
    pub name: String,
    /// `host:port` of its metrics listener (port 0: not set).
    #[serde(deserialize_with = "metrics")]
    #[default(SocketAddr::from(([0, 0, 0, 0], 0)))]
    pub metrics: SocketAddr,
}

/// One database and its targets.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default)]
pub struct DatabaseTarget {
    /// Its name on the page.
    pub name: String,
    /// Its DBID.
    pub db_id: u32,
    /// Recovery time objective.
    #[serde(deserialize_with = "duration")]
    pub rto_target: Duration,
    /// Recovery point objective: the data-loss exposure allowed.
    #[serde(deserialize_with = "duration")]
    pub rpo_target: Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, SmartDefault)]
#[serde(default)]
pub struct ConsoleSection {
    /// Listen address.
    #[serde(deserialize_with = "listen")]
    #[default(DEFAULT_LISTEN.parse().expect("constant address"))]
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM), with `tls_key`.
    #[serde(deserialize_with = "non_empty_path")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[serde(deserialize_with = "non_empty_path")]
    pub tls_key: Option<PathBuf>,
    /// Where the events are kept (`events.jsonl`); unset: `console` under the verifier's
    /// state directory (set by [`ConsoleSection::check`]).
    pub state_dir: PathBuf,
    /// Time between polls of the collectors, watchers and extractors.
    #[serde(deserialize_with = "duration")]
    #[default(secs(2))]
    pub poll_interval: Duration,
    /// Time between reads of the WORM store and the report directories (heavier).
    #[serde(deserialize_with = "duration")]
    #[default(secs(15))]
    pub worm_interval: Duration,
    /// A source older than this counts as unknown.
    #[serde(deserialize_with = "duration")]
    #[default(secs(30))]
    pub stale_after: Duration,
    /// Measured or expected restore throughput, bytes per second (the RTO estimate).
    #[serde(deserialize_with = "size")]
    #[default(100 << 20)]
    pub restore_throughput: u64,
    /// The fixed steps of a recovery (RMAN catalog, recover, open), for the RTO estimate.
    #[serde(deserialize_with = "duration")]
    #[default(secs(600))]
    pub fixed_steps: Duration,
    /// The collectors' status pages (`[[console.collector]]`).
    #[serde(rename = "collector")]
    pub collectors: Vec<CollectorSource>,
    /// The extractors' metrics (`[[console.extractor]]`).
    #[serde(rename = "extractor")]
    pub extractors: Vec<MetricsSource>,
    /// The watchers' metrics (`[[console.watcher]]`).
    #[serde(rename = "watcher")]
    pub watchers: Vec<MetricsSource>,
    /// Directories of verifier reports (`report-*.json`) and drill reports
    /// (`drill-report.json`, in the directory or one level below).
    pub report_dirs: Vec<PathBuf>,
    /// The databases and their targets (`[[console.database]]`).
    #[serde(rename = "database")]
    pub databases: Vec<DatabaseTarget>,
}

impl ConsoleSection {
    /// The database a report is counted for: the one whose DBID it names, else the first
    /// configured.
    pub fn database_of(&self, db_id: Option<u32>) -> Option<&DatabaseTarget> {
        db_id
            .and_then(|id| self.databases.iter().find(|x| x.db_id == id))
            .or_else(|| self.databases.first())
    }

    /// Adds the problems serde cannot see; an unset state directory becomes
    /// `default_state_dir`.
    pub fn check(&mut self, default_state_dir: PathBuf, p: &mut Problems) {
        if self.state_dir.as_os_str().is_empty() {
            self.state_dir = default_state_dir;
        }
        p.at_least("console.poll_interval", self.poll_interval, ms(100));
        p.at_least("console.worm_interval", self.worm_interval, ms(500));
        p.at_least("console.stale_after", self.stale_after, secs(1));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            p.push("console", "set both tls_cert and tls_key, or neither");
        }
        if self.restore_throughput == 0 {
            p.push("console.restore_throughput", "must be more than 0");
        }
        names("collector", self.collectors.iter().map(|c| &c.name), p);
        for (i, c) in self.collectors.iter().enumerate() {
            let ok = (reqwest::Url::parse(&c.status_url).ok())
                .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                let what = format!("{:?} is not like http://10.0.0.5:9466/status", c.status_url);
                p.push(&format!("console.collector[{i}].status_url"), what);
            }
        }
        for (kind, list) in [("extractor", &self.extractors), ("watcher", &self.watchers)] {
            names(kind, list.iter().map(|m| &m.name), p);
            let unset = list
                .iter()
                .enumerate()
                .filter(|(_, m)| m.metrics.port() == 0);
            for (i, m) in unset {
                let what = format!("{} is not an address like 127.0.0.1:9465", m.metrics);
                p.missing(&format!("console.{kind}[{i}].metrics"), what);
            }
        }
        self.check_databases(p);
    }

    fn check_databases(&self, p: &mut Problems) {
        names("database", self.databases.iter().map(|d| &d.name), p);
        let mut ids = BTreeSet::new();
        for (i, d) in self.databases.iter().enumerate() {
            let key = |k: &str| format!("console.database[{i}].{k}");
            let path_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
            if !d.name.is_empty() && (!d.name.chars().all(path_safe) || d.name.starts_with('.')) {
                let what = "letters, digits, '_', '-' and '.' only (it is a path of the page)";
                p.push(&key("name"), format!("{:?}: {what}", d.name));
            }
            if d.db_id == 0 {
                p.missing(&key("db_id"), "required (the DBID, v$database.dbid)");
            } else if !ids.insert(d.db_id) {
                let what = format!("db_id {} is listed twice", d.db_id);
                p.push("console.database", what);
            }
            match d.rto_target.is_zero() {
                true => p.missing(&key("rto_target"), "required, e.g. \"2h\""),
                false => p.at_least(&key("rto_target"), d.rto_target, secs(1)),
            }
            if d.rpo_target.is_zero() {
                p.missing(&key("rpo_target"), "required, e.g. \"5s\"");
            }
        }
        if self.databases.is_empty() {
            let what = "list every database with its targets ([[console.database]] name, db_id, \
                        rto_target, rpo_target)";
            p.push("console.database", what);
        }
    }
}

/// A problem for each `[[console.<kind>]]` without a name, and for each name used twice.
fn names<'a>(kind: &str, names: impl Iterator<Item = &'a String>, p: &mut Problems) {
    let mut seen = BTreeSet::new();
    for (i, n) in names.enumerate() {
        if n.is_empty() {
            p.push(&format!("console.{kind}[{i}].name"), "required");
        } else if !seen.insert(n) {
            let what = format!("the name {n:?} is used twice");
            p.push(&format!("console.{kind}"), what);
        }
    }
}

fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    from_str_with(d, "a string", false, |a| {
        (a.parse()).map_err(|_| format!("{a:?} is not an address like {DEFAULT_LISTEN}"))
    })
}

fn metrics<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    from_str_with(d, "a string", false, |a| {
        (a.parse()).map_err(|_| format!("{a:?} is not an address like 127.0.0.1:9465"))
    })
}

/// Reads `[console]` alone, as the verifier's file does (the tests of the console).
#[cfg(test)]
pub fn parse(
    table: &toml::Table,
    default_state_dir: PathBuf,
    problems: &mut Vec<String>,
) -> ConsoleSection {
    let mut p = Problems::default();
    let read = redovault::config::load::deserialize_at("console", table.clone(), &mut p);
    let mut c: ConsoleSection = read.unwrap_or_default();
    c.check(default_state_dir, &mut p);
    problems.extend(p.into_vec());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<ConsoleSection, Vec<String>> {
        let t: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let c = parse(&t, PathBuf::from("/state/console"), &mut problems);
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn a_full_section_parses_with_loopback_default() {
        let c = parse_text(
            r#"
report_dirs = ["/var/lib/redovault/reports"]
[[collector]]
name = "c1"
status_url = "http://10.0.0.5:9466/status"
[[extractor]]
name = "prod-db"
metrics = "10.0.0.2:9465"
[[database]]
name = "PROD"
db_id = 1497016494
rto_target = "2h"
rpo_target = "5s"
"#,
        )
        .unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.state_dir, PathBuf::from("/state/console"));
        assert_eq!(c.databases[0].rto_target, Duration::from_secs(7200));
        assert_eq!(c.databases[0].rpo_target, Duration::from_secs(5));
        assert_eq!(c.collectors[0].status_url, "http://10.0.0.5:9466/status");
        assert_eq!(c.extractors[0].metrics, "10.0.0.2:9465".parse().unwrap());
    }

    /// deploy/docs/console.md's example is a valid configuration, as written.
    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../../deploy/docs/console.md");
        let start = doc.find("```toml\n").expect("a toml block") + 8;
        let len = doc[start..].find("```").expect("its end");
        let cfg = crate::config::VerifierConfig::parse(&doc[start..start + len])
            .unwrap_or_else(|p| panic!("{p:#?}"));
        let c = cfg.console.expect("[console]");
        assert!(c.listen.ip().is_loopback());
        assert_eq!(c.restore_throughput, 100 << 20);
        assert_eq!(c.databases[0].rto_target, Duration::from_secs(7200));
        assert_eq!(
            c.state_dir,
            PathBuf::from("/var/lib/redovault/verifier/console")
        );
        assert_eq!(c.watchers[0].name, "prod-db-watcher");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = parse_text(
            r#"
listen = "everywhere"
tls_cert = "/etc/cert.pem"
colour = "blue"
[[collector]]
name = "c1"
status_url = "ftp://x"
[[extractor]]
metrics = "nowhere"
[[database]]
name = "TEST"
db_id = 8
rto_target = "soon"
[[database]]
name = "PROD"
db_id = 7
rto_target = "1h"
rpo_target = "5s"
[[database]]
name = "PROD"
db_id = 7
rto_target = "1h"
rpo_target = "5s"
[[database]]
name = "../x"
db_id = 9
rto_target = "1h"
rpo_target = "5s"
"#,
        )
        .unwrap_err();
        let all = e.join("\n");
        for want in [
            "console.listen",
            "tls_cert and tls_key",
            "console.colour: unknown key",
            "console.collector[0].status_url",
            "console.extractor[0].name: required",
            "console.extractor[0].metrics",
            "console.database[0].rto_target",
            "console.database[0].rpo_target: required",
            "the name \"PROD\" is used twice",
            "db_id 7 is listed twice",
            "console.database[3].name: \"../x\": letters, digits",
        ] {
            assert!(all.contains(want), "{want} missing in:\n{all}");
        }
    }
}
