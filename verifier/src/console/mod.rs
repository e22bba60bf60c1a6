//! `redovault-verifier console`: the DR console, a read-only web page (and JSON API under
//! `/api/v1/`) of every configured database's recovery state, on the verifier host (off the
//! database host, read-only keys), loopback by default.
//!
//! - [`config`]: `[console]` of the verifier's configuration (listen, TLS, targets, sources).
//! - [`sources`]: reading the collectors' status pages, the extractors' and watchers'
//!   metrics, WORM and the report directories, each with its time and its error.
//! - [`overview`]: the rows (one per database and thread) from the readings;
//!   [`assess`]: the pure rules of Protected / Warning / Alert.
//! - [`events`]: the stream stopped and resumed, state changes; kept in `events.jsonl`; a
//!   change to Warning or Alert goes to the alert hook (`[alert]`, kind `dr_state`).
//! - [`page`]: the HTML; `assets/`: the stylesheet and the script, embedded.
//! - [`server`]: the HTTP(S) server: GET and HEAD only, known paths only, strict headers.
//!
//! The shell ([`run`]): a poll task reads the fast sources every `poll_interval`, a second
//! task reads WORM and the reports every `worm_interval`; each poll rebuilds the snapshot the
//! server answers from. Nothing the console does writes to a source.

pub mod assess;
pub mod config;
pub mod events;
pub mod overview;
pub mod page;
pub mod rto;
pub mod server;
pub mod sources;
pub mod timeline;

use std::sync::{Arc, RwLock};

use redovault::store::ArchiveStore;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::console::config::ConsoleSection;
use crate::console::events::{Event, EventLog, Tracker};
use crate::console::overview::{
    ExtractorOf, Readings, Row, ThreadTimelineShown, remember_extractors, rows,
};
use crate::console::sources::{
    DrillRun, Reading, RecoveryProgress, Reports, VerifierRun, WormFacts, unix_now,
};

/// One source as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceLine {
    /// `collector`, `extractor`, `watcher`, `worm`, `reports`.
    pub kind: String,
    pub name: String,
    /// Where it is read from.
    pub from: String,
    /// Seconds since it was read (None: never).
    pub age: Option<f64>,
    /// Its error, when the last reading failed.
    pub error: Option<String>,
}

/// A drill with the targets of its database.
#[derive(Debug, Clone, Serialize)]
pub struct DrillShown {
    /// The database it is counted for.
    pub database: String,
    #[serde(flatten)]
    pub run: DrillRun,
    /// RPO target (seconds).
    pub rpo_target: f64,
    /// RTO target (seconds).
    pub rto_target: f64,
    /// RPO above its target.
    pub rpo_exceeded: bool,
    /// RTO above its target.
    pub rto_exceeded: bool,
}

/// A recovery not complete (running, or stopped and resumable), against its database's
/// RTO target.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryShown {
    /// The database it is counted for.
    pub database: String,
    #[serde(flatten)]
    pub progress: RecoveryProgress,
    /// RTO so far, seconds: the ended steps', plus the running step's time until now.
    pub rto_so_far: f64,
    /// RTO target (seconds).
    pub rto_target: f64,
    /// RTO so far above the target.
    pub rto_exceeded: bool,
}

/// Everything the page and the API show, rebuilt at every poll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When it was built (Unix seconds).
    pub now: f64,
    /// Polls since the start.
    pub generation: u64,
    /// The overview.
    pub rows: Vec<Row>,
    pub sources: Vec<SourceLine>,
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// The drills, newest first.
    pub drills: Vec<DrillShown>,
    /// The recoveries not complete, newest first.
    pub recoveries: Vec<RecoveryShown>,
    /// The timeline of sequences of every row's thread.
    pub timelines: Vec<ThreadTimelineShown>,
    /// The newest verifier runs, newest first.
    pub verifications: Vec<VerifierRun>,
    /// Problems of the console itself (events file, report files).
    pub problems: Vec<String>,
}

/// What the server reads.
pub type Shared = Arc<RwLock<Snapshot>>;

fn source_lines(cfg: &ConsoleSection, r: &Readings, now: f64) -> Vec<SourceLine> {
    fn line<T>(kind: &str, x: &Reading<T>, now: f64) -> SourceLine {
        SourceLine {
            kind: kind.into(),
            name: x.name.clone(),
            from: x.from.clone(),
            age: Some((now - x.read_at).max(0.0)),
            error: x.result.as_ref().err().cloned(),
        }
    }
    let mut out: Vec<SourceLine> = Vec::new();
    out.extend(r.collectors.iter().map(|x| line("collector", x, now)));
    out.extend(r.extractors.iter().map(|x| line("extractor", x, now)));
    out.extend(r.watchers.iter().map(|x| line("watcher", x, now)));
    match &r.worm {
        Some(w) => {
            let mut l = line("worm", w, now);
            if let Ok(f) = &w.result
                && !f.notes.is_empty()
            {
                l.error = Some(f.notes.join("; "));
            }
            out.push(l)
        }
        None => out.push(SourceLine {
            kind: "worm".into(),
            name: "WORM".into(),
            from: String::new(),
            age: None,
            error: Some("not read yet".into()),
        }),
    }
    if !cfg.report_dirs.is_empty() {
        out.push(SourceLine {
            kind: "reports".into(),
            name: "report directories".into(),
            from: cfg
                .report_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            age: None,
            error: r
                .reports
                .as_ref()
                .filter(|x| !x.problems.is_empty())
                .map(|x| x.problems.join("; ")),
        });
    }
    out
}

/// The drills with their database's targets: the database whose DBID the report names, else
/// the first configured.
fn drills_shown(cfg: &ConsoleSection, reports: Option<&Reports>) -> Vec<DrillShown> {
    let Some(r) = reports else { return Vec::new() };
    r.drills
        .iter()
        .filter_map(|d| {
            let db = cfg.database_of(d.db_id)?;
            let (rpo, rto) = (db.rpo_target.as_secs_f64(), db.rto_target.as_secs_f64());
            Some(DrillShown {
                database: db.name.clone(),
                run: d.clone(),
                rpo_target: rpo,
                rto_target: rto,
                rpo_exceeded: d.rpo_seconds.is_some_and(|s| s > rpo),
                rto_exceeded: d.rto_seconds > rto,
            })
        })
        .collect()
}

/// The recoveries not complete, with their database's target and the RTO so far at `now`.
pub fn recoveries_shown(
    cfg: &ConsoleSection,
    reports: Option<&Reports>,
    now: f64,
) -> Vec<RecoveryShown> {
    let Some(r) = reports else { return Vec::new() };
    r.recoveries
        .iter()
        .filter_map(|p| {
            let db = cfg.database_of(p.db_id)?;
            let running = p
                .running_since
                .filter(|_| p.running.is_some())
                .map_or(0.0, |t| (now - t as f64).max(0.0));
            let rto_so_far = p.rto_seconds + running;
            let target = db.rto_target.as_secs_f64();
            Some(RecoveryShown {
                database: db.name.clone(),
                progress: p.clone(),
                rto_so_far,
                rto_target: target,
                rto_exceeded: rto_so_far > target,
            })
        })
        .collect()
}

/// The slow sources' last readings (WORM and the report directories).
#[derive(Debug, Default)]
struct Slow {
    worm: Option<Reading<WormFacts>>,
    reports: Option<Reports>,
}

/// Runs the console until `cancel` fires: the poll tasks and the server on `cfg.listen`.
/// Returns the bound address through `bound` as soon as it listens.
pub async fn run<S: ArchiveStore + 'static>(
    cfg: ConsoleSection,
    store: Arc<S>,
    prefix: String,
    worm_prefix: String,
    alerter: redovault::alert::Alerter,
    cancel: CancellationToken,
    bound: tokio::sync::oneshot::Sender<std::net::SocketAddr>,
) -> Result<(), server::ServeError> {
    let shared: Shared = Arc::new(RwLock::new(Snapshot::default()));
    let listener = server::bind(&cfg).await?;
    let _ = bound.send(listener.addr);
    let slow = Arc::new(RwLock::new(Slow::default()));
    let slow_task = tokio::spawn(slow_loop(
        cfg.clone(),
        store,
        prefix,
        worm_prefix,
        slow.clone(),
        cancel.clone(),
    ));
    let poll_task = tokio::spawn(poll_loop(
        cfg.clone(),
        slow,
        shared.clone(),
        alerter,
        cancel.clone(),
    ));
    let served = server::serve(listener, shared, cancel.clone()).await;
    cancel.cancel();
    let _ = slow_task.await;
    let _ = poll_task.await;
    served
}

async fn slow_loop<S: ArchiveStore>(
    cfg: ConsoleSection,
    store: Arc<S>,
    prefix: String,
    worm_prefix: String,
    slow: Arc<RwLock<Slow>>,
    cancel: CancellationToken,
) {
    let db_ids: Vec<u32> = cfg.databases.iter().map(|d| d.db_id).collect();
    loop {
        let from = format!("{prefix:?} (streams {worm_prefix:?})");
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sources::read_worm(store.as_ref(), &prefix, &worm_prefix, &db_ids) => r,
        };
        // The page shows the reason as read (the source's state), not the error's structure.
        let result = result.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, "console: WORM unreadable");
        }
        let worm = Reading {
            name: "WORM".into(),
            from,
            read_at: unix_now(),
            result,
        };
        let dirs = cfg.report_dirs.clone();
        let reports = tokio::task::spawn_blocking(move || sources::read_reports(&dirs))
            .await
            .unwrap_or_default();
        if let Ok(mut s) = slow.write() {
            s.worm = Some(worm);
            s.reports = Some(reports);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(cfg.worm_interval) => {}
        }
    }
}

async fn poll_loop(
    cfg: ConsoleSection,
    slow: Arc<RwLock<Slow>>,
    shared: Shared,
    alerter: redovault::alert::Alerter,
    cancel: CancellationToken,
) {
    let client = sources::http_client(cfg.poll_interval.max(std::time::Duration::from_secs(2)));
    let mut log = EventLog::open(&cfg.state_dir);
    let mut tracker = Tracker::default();
    let mut of = ExtractorOf::new();
    let mut generation = 0u64;
    loop {
        let (collectors, extractors, watchers) = tokio::join!(
            futures::future::join_all(
                cfg.collectors
                    .iter()
                    .map(|c| sources::read_collector(&client, c))
            ),
            futures::future::join_all(cfg.extractors.iter().map(sources::read_metrics)),
            futures::future::join_all(cfg.watchers.iter().map(sources::read_metrics)),
        );
        let (worm, reports) = match slow.read() {
            Ok(s) => (s.worm.clone(), s.reports.clone()),
            Err(_) => (None, None),
        };
        let readings = Readings {
            collectors,
            extractors,
            watchers,
            worm,
            reports,
        };
        remember_extractors(&readings, &mut of);
        let now = unix_now();
        let rows = rows(&cfg, &readings, &of, now);
        let new = tracker.observe(now, &rows);
        for e in &new {
            tracing::info!(
                database = %e.database,
                thread = e.thread,
                kind = %e.kind,
                text = %e.text,
                "console event"
            );
            if let Some(a) = events::alarm_of(e) {
                alerter.raise(a);
            }
        }
        log.append(new);
        generation += 1;
        let mut problems: Vec<String> = log.problem.iter().cloned().collect();
        if let Some(r) = &readings.reports {
            problems.extend(r.problems.iter().cloned());
        }
        let snap = Snapshot {
            now,
            generation,
            sources: source_lines(&cfg, &readings, now),
            drills: drills_shown(&cfg, readings.reports.as_ref()),
            recoveries: recoveries_shown(&cfg, readings.reports.as_ref(), now),
            timelines: overview::timelines(&readings, &rows),
            verifications: readings
                .reports
                .as_ref()
                .map(|r| {
                    r.verifications
                        .iter()
                        .map(VerifierRun::without_timelines)
                        .collect()
                })
                .unwrap_or_default(),
            rows,
            events: log.events.clone(),
            problems,
        };
        if let Ok(mut s) = shared.write() {
            *s = snap;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(cfg.poll_interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_recoverys_rto_so_far_counts_its_running_step_against_the_target() {
        let t: toml::Table = toml::from_str(
            "[[database]]\nname = \"PROD\"\ndb_id = 7\nrto_target = \"1m\"\nrpo_target = \"5s\"\n\
             [[database]]\nname = \"TEST\"\ndb_id = 8\nrto_target = \"2h\"\nrpo_target = \"5s\"\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let cfg = config::parse(&t, "/tmp".into(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let progress = |db_id: Option<u32>, running: bool| RecoveryProgress {
            file: "/h/recover-x.json".into(),
            at: 1_000,
            db_id,
            started_at: String::new(),
            runs: 1,
            running: running.then(|| "restore-archive".into()),
            running_since: Some(1_000),
            steps_done: vec!["verify".into()],
            steps_total: 4,
            failed: None,
            next_step: Some("restore-archive".into()),
            rto_seconds: 20.0,
        };
        let reports = Reports {
            recoveries: vec![progress(Some(8), true), progress(None, false)],
            ..Reports::default()
        };
        let shown = recoveries_shown(&cfg, Some(&reports), 1_050.0);
        assert_eq!(shown[0].database, "TEST");
        assert_eq!(shown[0].rto_so_far, 70.0);
        assert!(!shown[0].rto_exceeded);
        // Stopped: no step runs, the RTO stays what the steps took; the first database's.
        assert_eq!(shown[1].database, "PROD");
        assert_eq!(shown[1].rto_so_far, 20.0);
        // Running on PROD (1 min target): 20 s + 50 s running is past it.
        let reports = Reports {
            recoveries: vec![progress(Some(7), true)],
            ..Reports::default()
        };
        assert!(recoveries_shown(&cfg, Some(&reports), 1_050.0)[0].rto_exceeded);
    }
}
