//! `[console]` of the verifier's configuration: where the console listens (loopback by
//! default, TLS when a certificate is given), its state directory, how often it polls, its
//! sources (collectors' status pages, watchers' and extractors' metrics, report directories;
//! the WORM store is the verifier's `[store]`) and, per database, the RPO and RTO targets.
//!
//! Read like the rest of the file (`redovault::config`): every problem at once, unknown keys
//! refused.

use redovault::config::{ms, secs};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use redovault::config::Problems;
use redovault::config::sections::non_empty_path;
use redovault::config::units::{duration, size};
use serde::Deserialize;

/// Default listen address: loopback (the console shows where every database's recovery
/// point lives; exposing it is a choice, with TLS).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// A collector's status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorSource {
    /// Its name on the page.
    pub name: String,
    /// `http://host:port/status` (its metrics listener).
    pub status_url: String,
}

/// A Prometheus endpoint of a watcher or an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSource {
    /// Its name on the page.
    pub name: String,
    /// `host:port` of its metrics listener.
    pub metrics: SocketAddr,
}

/// One database and its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseTarget {
    /// Its name on the page.
    pub name: String,
    /// Its DBID.
    pub db_id: u32,
    /// Recovery time objective.
    pub rto_target: Duration,
    /// Recovery point objective: the data-loss exposure allowed.
    pub rpo_target: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSection {
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS certificate chain (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Where the events are kept (`events.jsonl`).
    pub state_dir: PathBuf,
    /// Time between polls of the collectors, watchers and extractors.
    pub poll_interval: Duration,
    /// Time between reads of the WORM store and the report directories (heavier).
    pub worm_interval: Duration,
    /// A source older than this counts as unknown.
    pub stale_after: Duration,
    /// Measured or expected restore throughput, bytes per second (the RTO estimate).
    pub restore_throughput: u64,
    /// The fixed steps of a recovery (RMAN catalog, recover, open), for the RTO estimate.
    pub fixed_steps: Duration,
    /// The collectors' status pages.
    pub collectors: Vec<CollectorSource>,
    /// The extractors' metrics.
    pub extractors: Vec<MetricsSource>,
    /// The watchers' metrics.
    pub watchers: Vec<MetricsSource>,
    /// Directories of verifier reports (`report-*.json`) and drill reports
    /// (`drill-report.json`, in the directory or one level below).
    pub report_dirs: Vec<PathBuf>,
    /// The databases and their targets.
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
}

/// `[console]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct ConsoleFile {
    listen: String,
    #[serde(deserialize_with = "non_empty_path")]
    tls_cert: Option<PathBuf>,
    #[serde(deserialize_with = "non_empty_path")]
    tls_key: Option<PathBuf>,
    #[serde(deserialize_with = "non_empty_path")]
    state_dir: Option<PathBuf>,
    #[serde(deserialize_with = "duration")]
    poll_interval: Duration,
    #[serde(deserialize_with = "duration")]
    worm_interval: Duration,
    #[serde(deserialize_with = "duration")]
    stale_after: Duration,
    #[serde(deserialize_with = "size")]
    restore_throughput: u64,
    #[serde(deserialize_with = "duration")]
    fixed_steps: Duration,
    report_dirs: Vec<PathBuf>,
    collector: Vec<Named>,
    extractor: Vec<Named>,
    watcher: Vec<Named>,
    database: Vec<DatabaseFile>,
}

impl Default for ConsoleFile {
    fn default() -> ConsoleFile {
        ConsoleFile {
            listen: DEFAULT_LISTEN.into(),
            tls_cert: None,
            tls_key: None,
            state_dir: None,
            poll_interval: secs(2),
            worm_interval: secs(15),
            stale_after: secs(30),
            restore_throughput: 100 << 20,
            fixed_steps: secs(600),
            report_dirs: Vec::new(),
            collector: Vec::new(),
            extractor: Vec::new(),
            watcher: Vec::new(),
            database: Vec::new(),
        }
    }
}

/// A `[[console.collector]]` (`status_url`) or a `[[console.watcher]]` / `extractor`
/// (`metrics`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    name: String,
    status_url: Option<String>,
    metrics: Option<String>,
}

/// A `[[console.database]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DatabaseFile {
    name: String,
    db_id: u32,
    #[serde(deserialize_with = "duration")]
    rto_target: Duration,
    #[serde(deserialize_with = "duration")]
    rpo_target: Duration,
}

/// Parses `[console]` (`default_state_dir`: under the verifier's state directory).
pub fn parse(
    table: &toml::Table,
    default_state_dir: PathBuf,
    problems: &mut Vec<String>,
) -> ConsoleSection {
    let mut p = Problems::default();
    let read = redovault::config::load::deserialize_at("console", table.clone(), &mut p);
    let f: ConsoleFile = read.unwrap_or_default();
    let listen = f.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        let what = format!("{:?} is not an address like {DEFAULT_LISTEN}", f.listen);
        p.push("console.listen", what);
        DEFAULT_LISTEN.parse().expect("default address")
    });
    p.at_least("console.poll_interval", f.poll_interval, ms(100));
    p.at_least("console.worm_interval", f.worm_interval, ms(500));
    p.at_least("console.stale_after", f.stale_after, secs(1));
    if f.tls_cert.is_some() != f.tls_key.is_some() {
        p.push("console", "set both tls_cert and tls_key, or neither");
    }
    if f.restore_throughput == 0 {
        p.push("console.restore_throughput", "must be more than 0");
    }
    let collectors = collectors(f.collector, &mut p);
    let extractors = metrics_sources("extractor", f.extractor, &mut p);
    let watchers = metrics_sources("watcher", f.watcher, &mut p);
    let databases = databases(f.database, &mut p);
    for (what, names) in [
        ("collector", names(&collectors, |c| &c.name)),
        ("extractor", names(&extractors, |c| &c.name)),
        ("watcher", names(&watchers, |c| &c.name)),
        ("database", names(&databases, |c| &c.name)),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for n in names {
            if !seen.insert(n) {
                p.push(
                    &format!("console.{what}"),
                    format!("the name {n:?} is used twice"),
                );
            }
        }
    }
    problems.extend(p.into_vec());
    ConsoleSection {
        listen,
        tls_cert: f.tls_cert,
        tls_key: f.tls_key,
        state_dir: f.state_dir.unwrap_or(default_state_dir),
        poll_interval: f.poll_interval,
        worm_interval: f.worm_interval,
        stale_after: f.stale_after,
        restore_throughput: f.restore_throughput,
        fixed_steps: f.fixed_steps,
        collectors,
        extractors,
        watchers,
        report_dirs: f.report_dirs,
        databases,
    }
}

fn names<T>(v: &[T], f: impl Fn(&T) -> &String) -> Vec<&str> {
    v.iter().map(|x| f(x).as_str()).collect()
}

/// A problem for each `[[console.<kind>]]` whose name is missing or whose `key` is set
/// elsewhere than it belongs (a collector has a `status_url`, the others `metrics`).
fn named(kind: &str, i: usize, n: &Named, p: &mut Problems) -> String {
    let at = format!("console.{kind}[{i}]");
    if n.name.is_empty() {
        p.push(&format!("{at}.name"), "required");
    }
    let (wrong, key) = match kind {
        "collector" => (n.metrics.is_some(), "metrics"),
        _ => (n.status_url.is_some(), "status_url"),
    };
    if wrong {
        p.push(&format!("{at}.{key}"), "unknown key");
    }
    at
}

fn collectors(list: Vec<Named>, p: &mut Problems) -> Vec<CollectorSource> {
    let mut out = Vec::new();
    for (i, n) in list.into_iter().enumerate() {
        let at = named("collector", i, &n, p);
        let url = n.status_url.unwrap_or_default();
        let ok = reqwest::Url::parse(&url)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            let what = format!("{url:?} is not like http://10.0.0.5:9466/status");
            p.push(&format!("{at}.status_url"), what);
        }
        if ok && !n.name.is_empty() {
            out.push(CollectorSource {
                name: n.name,
                status_url: url,
            });
        }
    }
    out
}

fn metrics_sources(kind: &str, list: Vec<Named>, p: &mut Problems) -> Vec<MetricsSource> {
    let mut out = Vec::new();
    for (i, n) in list.into_iter().enumerate() {
        let at = named(kind, i, &n, p);
        let metrics = n.metrics.unwrap_or_default();
        match metrics.parse::<SocketAddr>() {
            Ok(addr) if !n.name.is_empty() => out.push(MetricsSource {
                name: n.name,
                metrics: addr,
            }),
            Ok(_) => {}
            Err(_) => {
                let what = format!("{metrics:?} is not an address like 127.0.0.1:9465");
                p.push(&format!("{at}.metrics"), what);
            }
        }
    }
    out
}

fn databases(list: Vec<DatabaseFile>, p: &mut Problems) -> Vec<DatabaseTarget> {
    let mut out: Vec<DatabaseTarget> = Vec::new();
    for (i, d) in list.into_iter().enumerate() {
        let at = format!("console.database[{i}]");
        let before = p.len();
        let name = &d.name;
        if name.is_empty() {
            p.push(&format!("{at}.name"), "required");
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || name.starts_with('.')
        {
            let what = format!(
                "{name:?}: letters, digits, '_', '-' and '.' only (it is a path of the page)"
            );
            p.push(&format!("{at}.name"), what);
        }
        for (bad, key, what) in [
            (
                d.db_id == 0,
                "db_id",
                "required (the DBID, v$database.dbid)",
            ),
            (
                d.rto_target.is_zero(),
                "rto_target",
                "required, e.g. \"2h\"",
            ),
            (
                d.rpo_target.is_zero(),
                "rpo_target",
                "required, e.g. \"5s\"",
            ),
        ] {
            if bad && !p.about(&format!("{at}.{key}")) {
                p.push(&format!("{at}.{key}"), what);
            }
        }
        if !d.rto_target.is_zero() {
            p.at_least(&format!("{at}.rto_target"), d.rto_target, secs(1));
        }
        if p.len() == before {
            out.push(DatabaseTarget {
                name: d.name,
                db_id: d.db_id,
                rto_target: d.rto_target,
                rpo_target: d.rpo_target,
            });
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for d in &out {
        if !ids.insert(d.db_id) {
            p.push(
                "console.database",
                format!("db_id {} is listed twice", d.db_id),
            );
        }
    }
    if out.is_empty() && !p.about("console.database") {
        p.push(
            "console.database",
            "list every database with its targets ([[console.database]] name, db_id, \
             rto_target, rpo_target)",
        );
    }
    out
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
