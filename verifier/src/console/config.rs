//! `[console]` of the verifier's configuration: where the console listens (loopback by
//! default, TLS when a certificate is given), its state directory, how often it polls, its
//! sources (collectors' status pages, watchers' and extractors' metrics, report directories;
//! the WORM store is the verifier's `[store]`) and, per database, the RPO and RTO targets.
//!
//! Parsed like the rest of the file: every problem at once, unknown keys refused.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use redovault::watcher::config::Section;

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

/// `[console]`.
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

/// Parses `[console]` (`default_state_dir`: under the verifier's state directory).
pub fn parse(
    table: &toml::Table,
    default_state_dir: PathBuf,
    problems: &mut Vec<String>,
) -> ConsoleSection {
    let mut s = Section::new("console", Some(table), problems);
    let listen_text = s.string("listen", DEFAULT_LISTEN);
    let tls_cert = s.opt_string("tls_cert").map(PathBuf::from);
    let tls_key = s.opt_string("tls_key").map(PathBuf::from);
    let state_dir = s
        .opt_string("state_dir")
        .map_or(default_state_dir, PathBuf::from);
    let poll_interval = s.duration(
        "poll_interval",
        Duration::from_secs(2),
        Duration::from_millis(100),
    );
    let worm_interval = s.duration(
        "worm_interval",
        Duration::from_secs(15),
        Duration::from_millis(500),
    );
    let stale_after = s.duration(
        "stale_after",
        Duration::from_secs(30),
        Duration::from_secs(1),
    );
    let restore_throughput = s.size("restore_throughput", 100 << 20);
    let fixed_steps = s.duration("fixed_steps", Duration::from_secs(600), Duration::ZERO);
    let report_dirs = s
        .strings("report_dirs", &[])
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let lists: Vec<(&str, Vec<toml::Table>)> = ["collector", "extractor", "watcher", "database"]
        .into_iter()
        .map(|k| (k, tables(&mut s, k)))
        .collect();
    s.finish();
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        problems.push(format!(
            "console.listen: {listen_text:?} is not an address like {DEFAULT_LISTEN}"
        ));
        DEFAULT_LISTEN.parse().expect("default address")
    });
    if tls_cert.is_some() != tls_key.is_some() {
        problems.push("console: set both tls_cert and tls_key, or neither".into());
    }
    if restore_throughput == 0 {
        problems.push("console.restore_throughput: must be more than 0".into());
    }
    let mut collectors = Vec::new();
    let mut extractors = Vec::new();
    let mut watchers = Vec::new();
    let mut databases = Vec::new();
    for (kind, list) in &lists {
        for (i, t) in list.iter().enumerate() {
            match *kind {
                "collector" => collectors.extend(collector(i, t, problems)),
                "extractor" => extractors.extend(metrics_source("extractor", i, t, problems)),
                "watcher" => watchers.extend(metrics_source("watcher", i, t, problems)),
                _ => databases.extend(database(i, t, problems)),
            }
        }
    }
    for (what, names) in [
        ("collector", names(&collectors, |c| &c.name)),
        ("extractor", names(&extractors, |c| &c.name)),
        ("watcher", names(&watchers, |c| &c.name)),
        ("database", names(&databases, |c| &c.name)),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for n in names {
            if !seen.insert(n) {
                problems.push(format!("console.{what}: the name {n:?} is used twice"));
            }
        }
    }
    let mut ids = std::collections::BTreeSet::new();
    for d in &databases {
        if !ids.insert(d.db_id) {
            problems.push(format!(
                "console.database: db_id {} is listed twice",
                d.db_id
            ));
        }
    }
    if databases.is_empty() {
        problems.push(
            "console.database: list every database with its targets ([[console.database]] \
             name, db_id, rto_target, rpo_target)"
                .into(),
        );
    }
    ConsoleSection {
        listen,
        tls_cert,
        tls_key,
        state_dir,
        poll_interval,
        worm_interval,
        stale_after,
        restore_throughput,
        fixed_steps,
        collectors,
        extractors,
        watchers,
        report_dirs,
        databases,
    }
}

fn names<T>(v: &[T], f: impl Fn(&T) -> &String) -> Vec<&str> {
    v.iter().map(|x| f(x).as_str()).collect()
}

/// The tables of `[[console.<key>]]`.
fn tables(s: &mut Section<'_>, key: &'static str) -> Vec<toml::Table> {
    match s.value(key) {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => {
            let mut out = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v {
                    toml::Value::Table(t) => out.push(t.clone()),
                    _ => s.problem(key, format!("item {i}: expected a table")),
                }
            }
            out
        }
        Some(_) => {
            s.problem(key, format!("expected [[console.{key}]] tables"));
            Vec::new()
        }
    }
}

fn collector(i: usize, t: &toml::Table, problems: &mut Vec<String>) -> Option<CollectorSource> {
    let mut own = Vec::new();
    let mut s = Section::new("console.collector[]", Some(t), &mut own);
    let name = s.string("name", "");
    let url = s.string("status_url", "");
    s.finish();
    problems.extend(own.into_iter().map(|p| p.replace("[]", &format!("[{i}]"))));
    let at = format!("console.collector[{i}]");
    if name.is_empty() {
        problems.push(format!("{at}.name: required"));
    }
    let ok = reqwest::Url::parse(&url)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !ok {
        problems.push(format!(
            "{at}.status_url: {url:?} is not like http://10.0.0.5:9466/status"
        ));
    }
    (ok && !name.is_empty()).then_some(CollectorSource {
        name,
        status_url: url,
    })
}

fn metrics_source(
    kind: &'static str,
    i: usize,
    t: &toml::Table,
    problems: &mut Vec<String>,
) -> Option<MetricsSource> {
    let mut own = Vec::new();
    let label = if kind == "watcher" {
        "console.watcher[]"
    } else {
        "console.extractor[]"
    };
    let mut s = Section::new(label, Some(t), &mut own);
    let name = s.string("name", "");
    let metrics = s.string("metrics", "");
    s.finish();
    problems.extend(own.into_iter().map(|p| p.replace("[]", &format!("[{i}]"))));
    let at = format!("console.{kind}[{i}]");
    if name.is_empty() {
        problems.push(format!("{at}.name: required"));
    }
    let addr = metrics.parse::<SocketAddr>().ok();
    if addr.is_none() {
        problems.push(format!(
            "{at}.metrics: {metrics:?} is not an address like 127.0.0.1:9465"
        ));
    }
    let addr = addr?;
    (!name.is_empty()).then_some(MetricsSource {
        name,
        metrics: addr,
    })
}

fn database(i: usize, t: &toml::Table, problems: &mut Vec<String>) -> Option<DatabaseTarget> {
    let mut own = Vec::new();
    let mut s = Section::new("console.database[]", Some(t), &mut own);
    let name = s.string("name", "");
    let db_id = s.int("db_id", 0, 0, u64::from(u32::MAX)) as u32;
    let rto_target = s.duration("rto_target", Duration::ZERO, Duration::from_secs(1));
    let rpo_target = s.duration("rpo_target", Duration::ZERO, Duration::from_millis(1));
    s.finish();
    problems.extend(own.into_iter().map(|p| p.replace("[]", &format!("[{i}]"))));
    let at = format!("console.database[{i}]");
    let before = problems.len();
    if name.is_empty() {
        problems.push(format!("{at}.name: required"));
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        || name.starts_with('.')
    {
        problems.push(format!(
            "{at}.name: {name:?}: letters, digits, '_', '-' and '.' only (it is a path of the page)"
        ));
    }
    if db_id == 0 {
        problems.push(format!("{at}.db_id: required (the DBID, v$database.dbid)"));
    }
    if rto_target.is_zero() {
        problems.push(format!("{at}.rto_target: required, e.g. \"2h\""));
    }
    if rpo_target.is_zero() {
        problems.push(format!("{at}.rpo_target: required, e.g. \"5s\""));
    }
    (problems.len() == before).then_some(DatabaseTarget {
        name,
        db_id,
        rto_target,
        rpo_target,
    })
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
