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
pub mod server;
pub mod sources;

use std::sync::{Arc, RwLock};

use redovault::store::ArchiveStore;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::console::config::ConsoleSection;
use crate::console::events::{Event, EventLog, Tracker};
use crate::console::overview::{ExtractorOf, Readings, Row, remember_extractors, rows};
use crate::console::sources::{DrillRun, Reading, Reports, WormFacts, unix_now};

/// One source as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceLine {
    /// `collector`, `extractor`, `watcher`, `worm`, `reports`.
    pub kind: String,
    /// Its name.
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
    /// The run.
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

/// Everything the page and the API show, rebuilt at every poll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When it was built (Unix seconds).
    pub now: f64,
    /// Polls since the start.
    pub generation: u64,
    /// The overview.
    pub rows: Vec<Row>,
    /// The sources.
    pub sources: Vec<SourceLine>,
    /// The events, oldest first.
    pub events: Vec<Event>,
    /// The drills, newest first.
    pub drills: Vec<DrillShown>,
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
            let db = d
                .db_id
                .and_then(|id| cfg.databases.iter().find(|x| x.db_id == id))
                .or_else(|| cfg.databases.first())?;
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
