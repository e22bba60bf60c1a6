//! The console's sources, each read with a bound on time and size and each result kept with
//! when it was read: the collectors' status pages (`GET /status`), the extractors' and
//! watchers' Prometheus metrics, the WORM store (the archive manifest as sealed, and the
//! collector's stream chains), and the report directories (the verifier's `report-*.json`,
//! `redovault drill`'s `drill-report.json`). A source that fails gives its error as text:
//! the page shows it, nothing panics.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::manifest::ManifestEntry;
use redovault::store::{ArchiveStore, StoreError};
use redovault::wire::StreamId;
use redovault_collector::status::{CollectorStatus, STATUS_VERSION};
use serde::Serialize;

use crate::chain;
use crate::console::config::{CollectorSource, MetricsSource};
use crate::console::rto::RestoreMeasure;
use crate::console::timeline;
use crate::report::{FindingKind, LogRef, ThreadTimeline};
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

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if out.len() + chunk.len() > MAX_DOCUMENT {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Why a source's HTTP body was not read whole.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// The connection failed while the body was read.
    #[error("{}", error_chain(.0))]
    Read(reqwest::Error),
    /// The body is longer than any document the console reads.
    #[error("more than {MAX_DOCUMENT} bytes")]
    TooLarge,
}

/// Why WORM could not be read for the page (the page shows it as the WORM source's state).
#[derive(Debug, thiserror::Error)]
pub enum WormFactsError {
    /// The sealed archive manifest cannot be read.
    #[error("archive manifest under {prefix:?}: {source}")]
    Manifest {
        /// The archive prefix.
        prefix: String,
        source: StoreError,
    },
    /// The stream chains cannot be listed.
    #[error("stream chains under {prefix:?}: {source}")]
    Streams {
        /// The WORM prefix of the streams.
        prefix: String,
        source: StoreError,
    },
    /// One stream's chain cannot be read.
    #[error("stream chain {stream}: {source}")]
    Chain {
        stream: StreamId,
        source: StoreError,
    },
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
    pub archive: BTreeMap<(DbId, ResetlogsId, u16), ArchivedThread>,
    /// Per stream: the sequence ranges (inclusive) its sealed chain's pieces cover.
    pub stream_seqs: BTreeMap<String, Vec<(u32, u32)>>,
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
) -> Result<WormFacts, WormFactsError> {
    let mut out = WormFacts::default();
    let (_, audit) = chain::read_sealed::<ManifestEntry, S>(store, prefix, "manifest")
        .await
        .map_err(|source| WormFactsError::Manifest {
            prefix: prefix.to_string(),
            source,
        })?;
    for (e, _) in audit.entries.values() {
        let t = out
            .archive
            .entry((DbId(e.db_id.0), ResetlogsId(e.resetlogs_id.0), e.thread.0))
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
        .map_err(|source| WormFactsError::Streams {
            prefix: worm_prefix.to_string(),
            source,
        })?;
    for (stream, pieces) in streams {
        if !db_ids.contains(&stream.db_id.0) {
            continue;
        }
        let a = stream_chain::audit_stream(store, worm_prefix, stream, &pieces, None)
            .await
            .map_err(|source| WormFactsError::Chain { stream, source })?;
        if let Some((scn, xid, time)) = a.entries().rev().find_map(|e| e.last_commit()) {
            out.streams.insert(stream.to_string(), (scn.0, xid, time));
        }
        let ranges = a.entries().map(|e| (e.start_seq, e.end_seq)).collect();
        out.stream_seqs
            .insert(stream.to_string(), timeline::merge_ranges(ranges));
    }
    Ok(out)
}

/// Verifier reports read (the newest ones, by name).
pub const VERIFIER_RUNS_KEPT: usize = 5;

/// Archived logs listed in a `restore-archive.json` that are measured (their sizes read).
const MAX_RESTORED_FILES: usize = 1_000_000;

/// One verifier report of the report directories (`report-*.json`).
#[derive(Debug, Clone, Serialize)]
pub struct VerifierRun {
    pub file: PathBuf,
    /// `Clean`, `Findings`, `CouldNotRun`.
    pub verdict: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// Error findings.
    pub errors: u64,
    /// Its mode (`fast`, `deep`, `deep 1/30`).
    pub mode: String,
    /// Archived logs checked in the run.
    pub objects_checked: u64,
    /// Of those, downloaded and re-hashed in the run.
    pub objects_deep_verified: u64,
    /// Archived logs deep-verified in this run or an earlier one (the rolling cycle's reach).
    pub objects_ever_deep_verified: u64,
    /// Stream pieces checked, and re-hashed, in the run.
    pub pieces_checked: u64,
    /// Stream pieces re-hashed in the run.
    pub pieces_deep_verified: u64,
    /// Bytes re-hashed (archived logs and pieces).
    pub bytes_rehashed: u64,
    /// Seconds the checks took (the report's `check_millis`; a report written before it
    /// was recorded: the whole run, from its start and end times).
    pub check_seconds: Option<f64>,
    /// Deep-verify throughput: bytes re-hashed per second of checks, in MB/s (10^6 bytes).
    pub deep_mb_per_second: Option<f64>,
    /// The audit's per-thread timelines (for the sequence timelines; not in the API).
    #[serde(skip)]
    pub threads: Vec<ThreadTimeline>,
    /// The logs a tampering finding names.
    #[serde(skip)]
    pub tampered: Vec<LogRef>,
}

impl VerifierRun {
    /// The same run without its timelines (what the page lists).
    pub fn without_timelines(&self) -> VerifierRun {
        VerifierRun {
            threads: Vec::new(),
            tampered: Vec::new(),
            ..self.clone()
        }
    }

    /// Share of the archived logs checked that were re-hashed in the run (0..=1).
    pub fn deep_fraction(&self) -> Option<f64> {
        (self.objects_checked > 0)
            .then(|| self.objects_deep_verified as f64 / self.objects_checked as f64)
    }
}

/// One `redovault drill` or `redovault-verifier recover` report.
#[derive(Debug, Clone, Serialize)]
pub struct DrillRun {
    /// `drill` or `recover`.
    pub kind: String,
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
    /// What its restore measured (for the RTO estimate), when the figures are there.
    pub measure: Option<RestoreMeasure>,
}

/// A recovery `recover --history` keeps that is not complete: running now, or stopped
/// (asked to, failed, interrupted) and resumable.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryProgress {
    /// Its history entry.
    pub file: PathBuf,
    /// When the entry was last written (Unix seconds, the file's time).
    pub at: i64,
    /// The database, when the report names it.
    pub db_id: Option<u32>,
    /// When the recovery's first run started (RFC 3339).
    pub started_at: String,
    /// Runs so far.
    pub runs: u32,
    /// The step running now (None: no run is in a step).
    pub running: Option<String>,
    /// When that step started (Unix seconds).
    pub running_since: Option<i64>,
    /// Steps done, in order.
    pub steps_done: Vec<String>,
    /// Steps in all.
    pub steps_total: usize,
    /// The step that failed last, when the recovery stopped on a failure.
    pub failed: Option<String>,
    /// The next step a run does.
    pub next_step: Option<String>,
    /// RTO so far: every ended step's time, seconds (the running step's elapsed time not
    /// included).
    pub rto_seconds: f64,
}

/// What the report directories hold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reports {
    /// The newest verifier report.
    pub last_verification: Option<VerifierRun>,
    /// The newest verifier reports, newest first (at most [`VERIFIER_RUNS_KEPT`]).
    pub verifications: Vec<VerifierRun>,
    /// Every drill report and complete recovery, newest first.
    pub drills: Vec<DrillRun>,
    /// Recoveries not complete, newest first.
    pub recoveries: Vec<RecoveryProgress>,
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
    verifier.sort_by_key(|p| std::cmp::Reverse(p.file_name().map(|n| n.to_os_string())));
    for (i, p) in verifier.iter().take(VERIFIER_RUNS_KEPT).enumerate() {
        match read_json(p).and_then(|v| verifier_run(p, &v)) {
            Ok(mut r) => {
                if i > 0 {
                    // Only the newest run's timelines are shown.
                    r.threads.clear();
                    r.tampered.clear();
                }
                out.verifications.push(r)
            }
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    out.last_verification = verifier
        .first()
        .and_then(|p| out.verifications.iter().find(|r| &r.file == p))
        .cloned();
    for p in drills {
        match read_json(&p).and_then(|v| drill_or_recovery(&p, &v)) {
            Ok(Run::Ended(r)) => out.drills.push(r),
            Ok(Run::InProgress(r)) => out.recoveries.push(r),
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    out.drills.sort_by_key(|d| std::cmp::Reverse(d.at));
    out.recoveries.sort_by_key(|d| std::cmp::Reverse(d.at));
    out
}

/// Why a run's report file (a verifier, drill or recovery report) is left off the page: it is
/// listed among the page's problems, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct RunFileError {
    /// The report file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: RunFileProblem,
}

/// What is wrong with a run's report file.
#[derive(Debug, thiserror::Error)]
pub enum RunFileProblem {
    /// It cannot be read.
    #[error("{0}")]
    Unreadable(std::io::Error),
    /// It is larger than a report can be.
    #[error("larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// It lacks a field every report of its kind has.
    #[error("no {field} (not a {kind})")]
    Missing {
        field: String,
        /// The kind of report expected.
        kind: &'static str,
    },
}

impl RunFileError {
    fn new(path: &Path, problem: RunFileProblem) -> Self {
        RunFileError {
            path: path.to_path_buf(),
            problem,
        }
    }

    fn missing(path: &Path, field: &str, kind: &'static str) -> Self {
        RunFileError::new(
            path,
            RunFileProblem::Missing {
                field: field.to_string(),
                kind,
            },
        )
    }
}

fn read_json(p: &Path) -> Result<serde_json::Value, RunFileError> {
    let unreadable = |e| RunFileError::new(p, RunFileProblem::Unreadable(e));
    let meta = std::fs::metadata(p).map_err(unreadable)?;
    if meta.len() > MAX_DOCUMENT as u64 {
        return Err(RunFileError::new(p, RunFileProblem::TooLarge));
    }
    let bytes = std::fs::read(p).map_err(unreadable)?;
    serde_json::from_slice(&bytes).map_err(|e| RunFileError::new(p, RunFileProblem::NotJson(e)))
}

fn rfc3339(t: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp())
}

fn verifier_run(p: &Path, v: &serde_json::Value) -> Result<VerifierRun, RunFileError> {
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let sum = |k: &str| v["summary"][k].as_u64().unwrap_or(0);
    let started_at = field("started_at").unwrap_or_default();
    let finished_at = field("finished_at").unwrap_or_default();
    let check_seconds = match v["summary"]["check_millis"].as_u64() {
        Some(ms) => Some(ms as f64 / 1000.0),
        // Written before the checks were timed: the whole run.
        None => rfc3339(&started_at)
            .zip(rfc3339(&finished_at))
            .map(|(a, b)| (b - a).max(0) as f64),
    };
    let bytes_rehashed = sum("bytes_rehashed").saturating_add(sum("piece_bytes_rehashed"));
    let files = v["files"].as_array();
    let threads: Vec<ThreadTimeline> =
        serde_json::from_value(v["threads"].clone()).unwrap_or_default();
    let tampered = v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| {
                    let kind: FindingKind = serde_json::from_value(f["kind"].clone()).ok()?;
                    let log: LogRef = serde_json::from_value(f["log"].clone()).ok()?;
                    kind.is_tampering().then_some(log)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(VerifierRun {
        file: p.to_path_buf(),
        verdict: field("verdict")
            .ok_or_else(|| RunFileError::missing(p, "verdict", "verifier report"))?,
        started_at,
        finished_at,
        errors: sum("errors"),
        mode: field("mode").unwrap_or_default(),
        objects_checked: sum("objects_checked"),
        objects_deep_verified: sum("objects_deep_verified"),
        objects_ever_deep_verified: files.map_or(0, |f| {
            f.iter()
                .filter(|x| x["last_deep_verified"].is_string())
                .count() as u64
        }),
        pieces_checked: sum("pieces_checked"),
        pieces_deep_verified: sum("pieces_deep_verified"),
        bytes_rehashed,
        check_seconds,
        deep_mb_per_second: check_seconds
            .filter(|s| *s > 0.0 && bytes_rehashed > 0)
            .map(|s| bytes_rehashed as f64 / s / 1e6),
        threads,
        tampered,
    })
}

/// A history entry: a run that ended (a drill, a complete recovery) or a recovery not
/// complete.
enum Run {
    Ended(DrillRun),
    InProgress(RecoveryProgress),
}

fn mtime(p: &Path) -> i64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

fn drill_or_recovery(p: &Path, v: &serde_json::Value) -> Result<Run, RunFileError> {
    let recover = v.get("kind").and_then(|k| k.as_str()) == Some("recover");
    // A recovery report from before `complete` was recorded is a complete one.
    if recover && v.get("complete").and_then(|c| c.as_bool()) == Some(false) {
        return recovery_progress(p, v).map(Run::InProgress);
    }
    drill_run(p, v).map(Run::Ended)
}

fn drill_run(p: &Path, v: &serde_json::Value) -> Result<DrillRun, RunFileError> {
    let num = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_f64())
            .ok_or_else(|| RunFileError::missing(p, k, "drill report"))
    };
    let recover = v.get("kind").and_then(|k| k.as_str()) == Some("recover");
    let rto_seconds = num("rto_seconds")?;
    Ok(DrillRun {
        kind: if recover { "recover" } else { "drill" }.into(),
        file: p.to_path_buf(),
        at: mtime(p),
        pass: v
            .get("pass")
            .and_then(|x| x.as_bool())
            .ok_or_else(|| RunFileError::missing(p, "pass", "drill report"))?,
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
        rto_seconds,
        db_id: v
            .get("db_id")
            .and_then(|x| x.as_u64())
            .or_else(|| recovered_db_id(v).map(u64::from))
            .and_then(|x| u32::try_from(x).ok()),
        measure: if recover {
            recover_measure(v, rto_seconds)
        } else {
            drill_measure(p, v, rto_seconds)
        },
    })
}

/// The seconds of the step named `name` in `steps` (`[{"step": .., "seconds": ..}]`).
fn step_seconds(steps: &serde_json::Value, name: &str) -> Option<f64> {
    steps
        .as_array()?
        .iter()
        .filter(|s| s["step"].as_str() == Some(name))
        .filter_map(|s| s["seconds"].as_f64())
        .reduce(f64::max)
}

/// Bytes of the archived logs a `restore-archive.json` lists (None: it or one of its files
/// cannot be read).
fn restored_bytes(record: &Path) -> Option<u64> {
    let v = read_json(record).ok()?;
    let files = v["files"].as_array()?;
    if files.len() > MAX_RESTORED_FILES {
        return None;
    }
    files.iter().try_fold(0u64, |acc, f| {
        let len = std::fs::metadata(f["path"].as_str()?).ok()?.len();
        Some(acc.saturating_add(len))
    })
}

/// A recovery's: the `restore-archive` step's bytes and time.
fn recover_measure(v: &serde_json::Value, rto: f64) -> Option<RestoreMeasure> {
    let secs = step_seconds(&v["steps"], "restore-archive")?;
    let bytes = v["archive_bytes"].as_u64().or_else(|| {
        let dest = v["dest"].as_str()?;
        restored_bytes(&Path::new(dest).join("restore-archive.json"))
    })?;
    Some(RestoreMeasure {
        archive_bytes: bytes,
        archive_seconds: secs,
        other_seconds: (rto - secs).max(0.0),
    })
}

/// A drill's: its `restore archive` step's time, the bytes of what it restored (its
/// `recovery/restore/restore-archive.json`, beside the report).
fn drill_measure(p: &Path, v: &serde_json::Value, rto: f64) -> Option<RestoreMeasure> {
    let secs = step_seconds(&v["recovery"], "restore archive")?;
    let record = p.parent()?.join("recovery/restore/restore-archive.json");
    Some(RestoreMeasure {
        archive_bytes: restored_bytes(&record)?,
        archive_seconds: secs,
        other_seconds: (rto - secs).max(0.0),
    })
}

fn recovery_progress(p: &Path, v: &serde_json::Value) -> Result<RecoveryProgress, RunFileError> {
    let steps = v["steps"]
        .as_array()
        .ok_or_else(|| RunFileError::missing(p, "steps", "recovery report"))?;
    let done: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s["outcome"].as_str(), Some("done" | "done-with-findings")))
        .filter_map(|s| s["step"].as_str().map(str::to_string))
        .collect();
    let failed = steps
        .iter()
        .filter(|s| s["outcome"].as_str() == Some("failed"))
        .find_map(|s| s["step"].as_str().map(str::to_string));
    let next_step = crate::recover::Step::ALL
        .iter()
        .map(|s| s.name())
        .find(|s| !done.iter().any(|d| d == s))
        .map(str::to_string);
    Ok(RecoveryProgress {
        file: p.to_path_buf(),
        at: mtime(p),
        db_id: v["db_id"]
            .as_u64()
            .or_else(|| recovered_db_id(v).map(u64::from))
            .and_then(|x| u32::try_from(x).ok()),
        started_at: v["started_at"].as_str().unwrap_or_default().to_string(),
        runs: v["runs"]
            .as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .unwrap_or(0),
        running: v["running"].as_str().map(str::to_string),
        running_since: v["running_since"].as_str().and_then(rfc3339),
        steps_done: done,
        steps_total: crate::recover::Step::ALL.len(),
        failed,
        next_step,
        rto_seconds: v["rto_seconds"]
            .as_f64()
            .ok_or_else(|| RunFileError::missing(p, "rto_seconds", "recovery report"))?,
    })
}

/// The database a recovery report is for: its first thread's stream, `db<dbid>-rl..-t..`.
fn recovered_db_id(v: &serde_json::Value) -> Option<u32> {
    let stream = v["threads"][0]["stream"].as_str()?;
    stream_id(stream).map(|s| s.db_id.0)
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
    fn deep_verify_coverage_and_throughput_come_from_the_report_old_ones_too() {
        let d = tempfile::tempdir().unwrap();
        // As `verify` writes it now: the checks timed.
        std::fs::write(
            d.path().join("report-2026-12-06T100000Z.json"),
            serde_json::json!({
                "verdict": "clean", "mode": "deep 1/4",
                "started_at": "2026-12-06T09:59:00Z", "finished_at": "2026-12-06T10:00:00Z",
                "summary": {"errors": 0, "objects_checked": 8, "objects_deep_verified": 2,
                    "bytes_rehashed": 30_000_000u64, "pieces_checked": 10,
                    "pieces_deep_verified": 3, "piece_bytes_rehashed": 10_000_000u64,
                    "check_millis": 4000},
                "files": [{"last_deep_verified": "2026-12-06T10:00:00Z"},
                          {"last_deep_verified": "2026-12-05T10:00:00Z"}, {}],
                "threads": [{"resetlogs_id": 5, "thread": 1,
                    "cells": [{"sequence": 7, "state": "verified"}, {"sequence": 8, "state": "tampered"}]}],
                "findings": [
                    {"kind": "object_checksum_mismatch", "severity": "error", "subject": "s",
                     "detail": "d", "log": {"resetlogs_id": 5, "thread": 1, "sequence": 8}},
                    {"kind": "sequence_gap", "severity": "error", "subject": "s", "detail": "d",
                     "log": {"resetlogs_id": 5, "thread": 1, "sequence": 9}},
                    {"kind": "a_kind_from_the_future", "log": {"resetlogs_id": 5, "thread": 1, "sequence": 10}}
                ]
            })
            .to_string(),
        )
        .unwrap();
        // Written before `check_millis`: the whole run's time.
        std::fs::write(
            d.path().join("report-2026-12-05T100000Z.json"),
            r#"{"verdict":"clean","mode":"deep","started_at":"2026-12-05T09:59:50Z",
                "finished_at":"2026-12-05T10:00:00Z",
                "summary":{"errors":0,"objects_checked":4,"objects_deep_verified":4,"bytes_rehashed":5000000}}"#,
        )
        .unwrap();
        let r = read_reports(&[d.path().to_path_buf()]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(r.verifications.len(), 2);
        let new = &r.verifications[0];
        assert_eq!(new.deep_fraction(), Some(0.25));
        assert_eq!(new.objects_ever_deep_verified, 2);
        assert_eq!(new.bytes_rehashed, 40_000_000);
        assert_eq!(new.check_seconds, Some(4.0));
        assert_eq!(new.deep_mb_per_second, Some(10.0));
        assert_eq!(new.threads[0].cells.len(), 2);
        // Only the tampering finding names a tampered log (a gap is not tampering).
        assert_eq!(
            new.tampered,
            vec![LogRef {
                resetlogs_id: ResetlogsId(5),
                thread: 1,
                sequence: 8
            }]
        );
        assert_eq!(
            r.last_verification.as_ref().map(|v| &v.file),
            Some(&new.file)
        );
        let old = &r.verifications[1];
        assert_eq!(old.check_seconds, Some(10.0));
        assert_eq!(old.deep_mb_per_second, Some(0.5));
        assert!(
            old.threads.is_empty(),
            "only the newest keeps its timelines"
        );
    }

    #[test]
    fn a_drill_and_a_recovery_give_their_restore_measurements() {
        let d = tempfile::tempdir().unwrap();
        let restore = d.path().join("drill-1/recovery/restore");
        std::fs::create_dir_all(&restore).unwrap();
        let log = restore.join("1_7.arc");
        std::fs::write(&log, vec![0u8; 3000]).unwrap();
        let record = serde_json::json!({"files": [{"path": log}]}).to_string();
        std::fs::write(restore.join("restore-archive.json"), &record).unwrap();
        std::fs::write(
            d.path().join("drill-1/drill-report.json"),
            serde_json::json!({
                "pass": true, "rpo_commits": 0, "rpo_seconds": 0.0, "rto_seconds": 10.0,
                "recovery": [{"step": "verify", "seconds": 2.0},
                             {"step": "restore archive", "seconds": 3.0},
                             {"step": "restore online", "seconds": 5.0}]
            })
            .to_string(),
        )
        .unwrap();
        // A recovery that recorded its bytes; another, older, whose bytes are read in DEST.
        std::fs::write(
            d.path().join("recover-a.json"),
            r#"{"kind":"recover","complete":true,"pass":true,"rto_seconds":8.0,"archive_bytes":6000,
                "steps":[{"step":"verify","outcome":"done","seconds":1.0},
                         {"step":"restore-archive","outcome":"done","seconds":2.0}]}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("recover-b.json"),
            serde_json::json!({"kind": "recover", "pass": true, "rto_seconds": 4.0,
                "dest": restore, "steps": [{"step": "restore-archive", "seconds": 1.0}]})
            .to_string(),
        )
        .unwrap();
        let r = read_reports(&[d.path().to_path_buf()]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.recoveries.is_empty());
        let find = |k: &str, f: &str| {
            r.drills
                .iter()
                .find(|x| x.kind == k && x.file.ends_with(f))
                .unwrap()
                .measure
                .clone()
                .unwrap()
        };
        let m = find("drill", "drill-report.json");
        assert_eq!((m.archive_bytes, m.archive_seconds), (3000, 3.0));
        assert_eq!(m.other_seconds, 7.0);
        assert_eq!(m.throughput(), Some(1000.0));
        let m = find("recover", "recover-a.json");
        assert_eq!(
            (m.archive_bytes, m.archive_seconds, m.other_seconds),
            (6000, 2.0, 6.0)
        );
        let m = find("recover", "recover-b.json");
        assert_eq!((m.archive_bytes, m.other_seconds), (3000, 3.0));
        // Its restored log gone: nothing measured, not a problem.
        std::fs::remove_file(&log).unwrap();
        let r = read_reports(&[d.path().to_path_buf()]);
        let drill = r.drills.iter().find(|x| x.kind == "drill").unwrap();
        assert!(drill.measure.is_none());
    }

    #[test]
    fn a_recovery_not_complete_is_in_progress_not_in_the_history() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("recover-2026-12-06T18-00-00Z.json"),
            r#"{"kind":"recover","complete":false,"pass":false,"rto_seconds":12.5,"runs":2,
                "started_at":"2026-12-06T18:00:00Z","db_id":7,
                "running":"restore-online","running_since":"2026-12-06T18:05:00Z",
                "steps":[{"step":"verify","outcome":"done-with-findings","seconds":2.5},
                         {"step":"restore-archive","outcome":"done","seconds":10.0}]}"#,
        )
        .unwrap();
        std::fs::write(
            d.path().join("recover-2026-12-06T17-00-00Z.json"),
            r#"{"kind":"recover","complete":false,"pass":false,"rto_seconds":3.0,"runs":1,
                "started_at":"2026-12-06T17:00:00Z",
                "steps":[{"step":"verify","outcome":"done","seconds":1.0},
                         {"step":"restore-archive","outcome":"failed","seconds":2.0}]}"#,
        )
        .unwrap();
        let r = read_reports(&[d.path().to_path_buf()]);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(r.drills.is_empty());
        assert_eq!(r.recoveries.len(), 2);
        let running = r.recoveries.iter().find(|x| x.db_id == Some(7)).unwrap();
        assert_eq!(running.running.as_deref(), Some("restore-online"));
        assert_eq!(running.running_since, Some(1_796_580_300));
        assert_eq!(running.steps_done, ["verify", "restore-archive"]);
        assert_eq!(running.next_step.as_deref(), Some("restore-online"));
        assert_eq!((running.steps_total, running.runs), (4, 2));
        let failed = r.recoveries.iter().find(|x| x.db_id.is_none()).unwrap();
        assert_eq!(failed.failed.as_deref(), Some("restore-archive"));
        assert_eq!(failed.next_step.as_deref(), Some("restore-archive"));
        assert!(failed.running.is_none());
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
