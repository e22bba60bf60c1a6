//! The console's sources, each read with a bound on time and size and each result kept with
//! when it was read: the collectors' status pages (`GET /status`), the extractors' and
//! watchers' Prometheus metrics, the WORM store (the archive manifest as sealed, and the
//! collector's stream chains), and the report directories (the verifier's `report-*.json`,
//! `redovault drill`'s `drill-report.json`). A source that fails gives its error as text:
//! the page shows it, nothing panics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::manifest::ManifestEntry;
use redovault::store::ArchiveStore;
use redovault::wire::StreamId;
use redovault_collector::status::{CollectorStatus, STATUS_VERSION};
use serde::Serialize;

use crate::chain;
use crate::console::config::{CollectorSource, MetricsSource};
use crate::stream_chain;

/// Largest status page or report read.
const MAX_DOCUMENT: usize = 4 << 20;

/// A source's last reading.
#[derive(Debug, Clone, Serialize)]
pub struct Reading<T> {
    /// The source's name.
    pub name: String,
    /// Where it is read from (URL, address, prefix).
    pub from: String,
    /// When it was read (Unix seconds).
    pub read_at: f64,
    /// What it said, or why it could not be read.
    pub result: Result<T, String>,
}

/// Now, Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads one collector's status page.
pub async fn read_collector(
    client: &reqwest::Client,
    c: &CollectorSource,
) -> Reading<CollectorStatus> {
    let result = async {
        let resp = client
            .get(&c.status_url)
            .send()
            .await
            .map_err(|e| format!("{}: {}", c.status_url, error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("{}: HTTP {}", c.status_url, resp.status()));
        }
        let bytes = read_bounded(resp)
            .await
            .map_err(|e| format!("{}: {e}", c.status_url))?;
        let s: CollectorStatus = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a collector status page: {e}", c.status_url))?;
        if s.version != STATUS_VERSION {
            return Err(format!(
                "{}: status version {} (this console reads {STATUS_VERSION})",
                c.status_url, s.version
            ));
        }
        Ok(s)
    }
    .await;
    Reading {
        name: c.name.clone(),
        from: c.status_url.clone(),
        read_at: unix_now(),
        result,
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("more than {MAX_DOCUMENT} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Reads one Prometheus endpoint (nothing answered: an error).
pub async fn read_metrics(m: &MetricsSource) -> Reading<BTreeMap<String, f64>> {
    let addr = m.metrics;
    let samples = tokio::task::spawn_blocking(move || redovault::telemetry::scrape(addr))
        .await
        .unwrap_or_default();
    Reading {
        name: m.name.clone(),
        from: addr.to_string(),
        read_at: unix_now(),
        result: if samples.is_empty() {
            Err(format!("{addr}: no metrics (not answering)"))
        } else {
            Ok(samples)
        },
    }
}

/// The samples of a per-stream metric for `stream` (one per extra label, e.g. per
/// collector when the extractor ships to several).
pub fn stream_samples(samples: &BTreeMap<String, f64>, name: &str, stream: &str) -> Vec<f64> {
    let head = format!("{name}{{stream=\"{stream}\"");
    samples
        .range(head.clone()..)
        .take_while(|(k, _)| k.starts_with(&head))
        .filter(|(k, _)| k[head.len()..].starts_with(['}', ',']))
        .map(|(_, v)| *v)
        .collect()
}

/// One thread's archived logs in the sealed manifest.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArchivedThread {
    /// Sequences listed.
    pub sequences: BTreeSet<u32>,
    /// Last sequence's shipping time (Unix seconds).
    pub last_shipped: Option<i64>,
    /// Bytes of every archived log listed (what a restore reads).
    pub bytes: u64,
}

impl ArchivedThread {
    /// Sequences missing between the first and the last listed.
    pub fn gaps(&self) -> Vec<u32> {
        let (Some(first), Some(last)) = (self.sequences.first(), self.sequences.last()) else {
            return Vec::new();
        };
        (*first..*last)
            .filter(|s| !self.sequences.contains(s))
            .collect()
    }
}

/// What WORM holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WormFacts {
    /// Per stream (`db..-rl..-t..`): the last commit in its sealed chain (SCN, XID, time).
    pub streams: BTreeMap<String, (u64, String, Option<i64>)>,
    /// Per (db id, resetlogs id, thread): the archived logs as sealed.
    pub archive: BTreeMap<(u32, u32, u16), ArchivedThread>,
    /// What the reading noticed (a chain that does not audit, ...).
    pub notes: Vec<String>,
}

/// Reads the sealed archive manifest under `prefix` and the stream chains under
/// `worm_prefix` of the databases `db_ids` (others' chains are not opened).
pub async fn read_worm<S: ArchiveStore>(
    store: &S,
    prefix: &str,
    worm_prefix: &str,
    db_ids: &[u32],
) -> Result<WormFacts, String> {
    let mut out = WormFacts::default();
    let sealed = chain::read_sealed::<ManifestEntry, S>(store, prefix)
        .await
        .map_err(|e| format!("archive manifest under {prefix:?}: {e}"))?;
    let audit = chain::audit_chain_lines::<ManifestEntry>(&sealed.lines, "manifest", "WORM");
    for (e, _, _) in audit.entries.values() {
        let t = out
            .archive
            .entry((e.db_id, e.resetlogs_id, e.thread.0))
            .or_default();
        t.sequences.insert(e.sequence.0);
        t.bytes += e.size;
        if t.sequences.last() == Some(&e.sequence.0) {
            t.last_shipped = chrono::DateTime::parse_from_rfc3339(&e.shipped_at)
                .ok()
                .map(|d| d.timestamp());
        }
    }
    if !audit.findings.is_empty() {
        out.notes.push(format!(
            "the archive manifest has {} finding(s): run the verifier",
            audit.findings.len()
        ));
    }
    let streams = stream_chain::list_streams(store, worm_prefix)
        .await
        .map_err(|e| format!("stream chains under {worm_prefix:?}: {e}"))?;
    for (stream, pieces) in streams {
        if !db_ids.contains(&stream.db_id) {
            continue;
        }
        let a = stream_chain::audit_stream(store, worm_prefix, stream, &pieces, None)
            .await
            .map_err(|e| format!("stream chain {stream}: {e}"))?;
        if let Some((scn, xid, time)) = a.entries().rev().find_map(|e| e.last_commit()) {
            out.streams.insert(stream.to_string(), (scn.0, xid, time));
        }
    }
    Ok(out)
}

/// The last verifier report of the report directories.
#[derive(Debug, Clone, Serialize)]
pub struct VerifierRun {
    /// Its file.
    pub file: PathBuf,
    /// `Clean`, `Findings`, `CouldNotRun`.
    pub verdict: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// Error findings.
    pub errors: u64,
    /// Its mode (`fast`, `deep`, `deep 1/30`).
    pub mode: String,
}

/// One `redovault drill` or `redovault-verifier recover` report.
#[derive(Debug, Clone, Serialize)]
pub struct DrillRun {
    /// `drill` or `recover`.
    pub kind: String,
    /// Its file.
    pub file: PathBuf,
    /// When it was written (Unix seconds, the file's time).
    pub at: i64,
    /// Every check held (a recovery: every step done, within its RTO target).
    pub pass: bool,
    /// Commits lost (a drill knows, from its ground truth; a recovery does not).
    pub rpo_commits: Option<u64>,
    /// Data lost, in seconds of commits (a drill's).
    pub rpo_seconds: Option<f64>,
    /// Recovery time, seconds.
    pub rto_seconds: f64,
    /// The database it ran for, when the report names it.
    pub db_id: Option<u32>,
}

/// What the report directories hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reports {
    /// The newest verifier report.
    pub last_verification: Option<VerifierRun>,
    /// Every drill report, newest first.
    pub drills: Vec<DrillRun>,
    /// Files that could not be read or understood (file: why).
    pub problems: Vec<String>,
}

/// Reads the report directories: `report-*.json` (the verifier's, the newest by name),
/// `drill-report.json` in a directory or one level below, and `recover-*.json` (the
/// recoveries `recover --history` keeps; `recover-state.json` is not one).
pub fn read_reports(dirs: &[PathBuf]) -> Reports {
    let mut out = Reports::default();
    let mut verifier: Vec<PathBuf> = Vec::new();
    let mut drills: Vec<PathBuf> = Vec::new();
    for d in dirs {
        let list = match std::fs::read_dir(d) {
            Ok(l) => l,
            Err(e) => {
                out.problems.push(format!("{}: {e}", d.display()));
                continue;
            }
        };
        for e in list.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("report-") && name.ends_with(".json") {
                verifier.push(p);
            } else if name == "drill-report.json"
                || (name.starts_with("recover-")
                    && name.ends_with(".json")
                    && name != "recover-state.json")
            {
                drills.push(p);
            } else if p.is_dir() && p.join("drill-report.json").is_file() {
                drills.push(p.join("drill-report.json"));
            }
        }
    }
    verifier.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    if let Some(p) = verifier.last() {
        match read_json(p).and_then(|v| verifier_run(p, &v)) {
            Ok(r) => out.last_verification = Some(r),
            Err(e) => out.problems.push(e),
        }
    }
    for p in drills {
        match read_json(&p).and_then(|v| drill_run(&p, &v)) {
            Ok(r) => out.drills.push(r),
            Err(e) => out.problems.push(e),
        }
    }
    out.drills.sort_by_key(|d| std::cmp::Reverse(d.at));
    out
}

fn read_json(p: &Path) -> Result<serde_json::Value, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if meta.len() > MAX_DOCUMENT as u64 {
        return Err(format!("{}: larger than {MAX_DOCUMENT} bytes", p.display()));
    }
    let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", p.display()))
}

fn verifier_run(p: &Path, v: &serde_json::Value) -> Result<VerifierRun, String> {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(VerifierRun {
        file: p.to_path_buf(),
        verdict: field("verdict")
            .ok_or_else(|| format!("{}: no verdict (not a verifier report)", p.display()))?,
        finished_at: field("finished_at").unwrap_or_default(),
        errors: v["summary"]["errors"].as_u64().unwrap_or(0),
        mode: field("mode").unwrap_or_default(),
    })
}

fn drill_run(p: &Path, v: &serde_json::Value) -> Result<DrillRun, String> {
    let num = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| format!("{}: no {k} (not a drill report)", p.display()))
    };
    let at = std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let recover = v.get("kind").and_then(|k| k.as_str()) == Some("recover");
    Ok(DrillRun {
        kind: if recover { "recover" } else { "drill" }.into(),
        file: p.to_path_buf(),
        at,
        pass: v
            .get("pass")
            .and_then(|x| x.as_bool())
            .ok_or_else(|| format!("{}: no pass (not a drill report)", p.display()))?,
        rpo_commits: if recover {
            None
        } else {
            Some(v.get("rpo_commits").and_then(|x| x.as_u64()).unwrap_or(0))
        },
        rpo_seconds: if recover {
            None
        } else {
            Some(num("rpo_seconds")?)
        },
        rto_seconds: num("rto_seconds")?,
        db_id: v
            .get("db_id")
            .and_then(|x| x.as_u64())
            .or_else(|| recovered_db_id(v).map(u64::from))
            .and_then(|x| u32::try_from(x).ok()),
    })
}

/// The database a recovery report is for: its first thread's stream, `db<dbid>-rl..-t..`.
fn recovered_db_id(v: &serde_json::Value) -> Option<u32> {
    let stream = v["threads"][0]["stream"].as_str()?;
    stream_id(stream).map(|s| s.db_id)
}

/// The stream id of a collector status stream entry.
pub fn stream_id(name: &str) -> Option<StreamId> {
    redovault_collector::store::parse_stream_dir_name(name)
}

/// A bounded HTTP client for the status pages.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_samples_take_every_extra_label_and_no_other_stream() {
        let m: BTreeMap<String, f64> = [
            ("x_connected{stream=\"db1-rl2-t1\"}", 1.0),
            ("x_connected{stream=\"db1-rl2-t1\",collector=\"c2\"}", 0.0),
            ("x_connected{stream=\"db1-rl2-t10\"}", 5.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(
            stream_samples(&m, "x_connected", "db1-rl2-t1"),
            vec![0.0, 1.0]
        );
        assert!(stream_samples(&m, "x_connected", "db1-rl2-t2").is_empty());
    }

    #[test]
    fn gaps_are_the_sequences_missing_between_first_and_last() {
        let t = ArchivedThread {
            sequences: [3, 4, 7, 9].into_iter().collect(),
            ..ArchivedThread::default()
        };
        assert_eq!(t.gaps(), vec![5, 6, 8]);
        assert!(ArchivedThread::default().gaps().is_empty());
    }

    #[test]
    fn reports_are_read_and_bad_ones_named_not_fatal() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("report-2026-01-01T000000Z.json"),
            r#"{"verdict":"Findings","finished_at":"2026-01-01T00:00:00Z","mode":"fast","summary":{"errors":2}}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("report-2025-01-01T000000Z.json"),
            r#"{"verdict":"Clean"}"#,
        )
        .unwrap();
        let drill = d.path().join("drill-1");
        std::fs::create_dir(&drill).unwrap();
        std::fs::write(
            drill.join("drill-report.json"),
            r#"{"pass":true,"rpo_commits":0,"rpo_seconds":0.0,"rto_seconds":42.5}"#,
        )
        .unwrap();
        let bad = d.path().join("drill-2");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("drill-report.json"), b"\xff{garbage").unwrap();
        let r = read_reports(&[d.path().to_path_buf(), d.path().join("missing")]);
        let v = r.last_verification.unwrap();
        assert_eq!((v.verdict.as_str(), v.errors), ("Findings", 2));
        assert_eq!(r.drills.len(), 1);
        assert_eq!(r.drills[0].rto_seconds, 42.5);
        assert!(r.drills[0].pass);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.contains("drill-2")));
        assert!(r.problems.iter().any(|p| p.contains("missing")));
    }

    #[test]
    fn recoveries_kept_by_recover_history_are_listed_without_an_rpo() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("recover-2026-12-06T16-17-54-601Z.json"),
            r#"{"kind":"recover","pass":false,"rto_seconds":9000.0,
                "threads":[{"stream":"db1497016494-rl1219190400-t1"}]}"#,
        )
        .unwrap();
        // The state file of a recovery in progress is not a report.
        std::fs::write(d.path().join("recover-state.json"), r#"{"steps":[]}"#).unwrap();
        let r = read_reports(&[d.path().to_path_buf()]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.drills.len(), 1);
        let run = &r.drills[0];
        assert_eq!(run.kind, "recover");
        assert_eq!((run.rpo_seconds, run.rpo_commits), (None, None));
        assert_eq!(run.db_id, Some(1497016494));
        assert!(!run.pass);
    }
}
