//! From the sources' last readings to the overview's rows: one per configured database and
//! redo thread (the newest incarnation any source knows), with the facts [`assess`] judges and
//! the figures the page shows. Pure: the readings and `now` in, rows out.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::{BTreeMap, BTreeSet};

use redovault_collector::status::CollectorStatus;
use serde::Serialize;

use crate::console::assess::{
    Assessment, CollectorView, ExtractorView, Facts, Verification, WormView, assess,
};
use crate::console::config::{ConsoleSection, DatabaseTarget};
use crate::console::rto::{self, Measured, RtoEstimate};
use crate::console::sources::{Reading, Reports, WormFacts, stream_id, stream_samples};
use crate::console::timeline::{self, Timeline};

/// Every source's last reading.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Readings {
    /// The collectors' status pages, in configuration order.
    pub collectors: Vec<Reading<CollectorStatus>>,
    /// The extractors' metrics.
    pub extractors: Vec<Reading<BTreeMap<String, f64>>>,
    /// The watchers' metrics.
    pub watchers: Vec<Reading<BTreeMap<String, f64>>>,
    /// WORM (None: not read yet).
    pub worm: Option<Reading<WormFacts>>,
    /// The report directories (None: not read yet).
    pub reports: Option<Reports>,
}

/// A commit as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommitShown {
    pub scn: u64,
    pub xid: Option<String>,
    /// Commit time (Unix seconds).
    pub time: Option<i64>,
    /// Which collector holds it.
    pub on: String,
}

/// One row of the overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The database's name.
    pub database: String,
    /// Its DBID.
    pub db_id: DbId,
    /// The redo thread (0: no source knows the database).
    pub thread: u16,
    /// The stream (`db..-rl..-t..`), when known.
    pub stream: Option<String>,
    /// State, reasons, exposure per tier.
    #[serde(flatten)]
    pub assessment: Assessment,
    /// Whether a session is up on some collector (None: no collector knows).
    pub stream_up: Option<bool>,
    /// The newest durable commit on the collectors.
    pub last_commit: Option<CommitShown>,
    /// The last archived sequence in WORM and its age (seconds).
    pub last_archived: Option<(u32, Option<f64>)>,
    /// Gaps in the archived sequences.
    pub gaps: Vec<u32>,
    /// Extractor lag: bytes read and not acknowledged.
    pub lag_bytes: Option<f64>,
    /// Collector → WORM: age of the oldest byte not in WORM (seconds), from the WORM commit.
    pub worm_behind: Option<f64>,
    /// Last verification: verdict and age (seconds).
    pub verification: Option<(String, Option<f64>)>,
    /// Estimated RTO (seconds).
    pub estimated_rto: Option<f64>,
    /// How it was estimated: throughput, fixed steps, measured (by which run) or configured.
    pub rto_estimate: Option<RtoEstimate>,
    /// RTO target (seconds).
    pub rto_target: f64,
    /// RPO target (seconds).
    pub rpo_target: f64,
}

/// The streams of `db` any source knows, newest incarnation per thread: thread → name.
fn threads_of(db: &DatabaseTarget, r: &Readings) -> BTreeMap<u16, (u32, String)> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    for c in &r.collectors {
        if let Ok(s) = &c.result {
            names.extend(s.streams.keys().cloned());
        }
    }
    if let Some(Reading { result: Ok(w), .. }) = &r.worm {
        names.extend(w.streams.keys().cloned());
        for (db_id, rl, t) in w.archive.keys() {
            names.insert(format!("db{db_id}-rl{rl}-t{t}"));
        }
    }
    for e in &r.extractors {
        if let Ok(m) = &e.result {
            for k in m.keys() {
                if let Some(rest) = k.strip_prefix("redovault_extractor_connected{stream=\"")
                    && let Some(name) = rest.split('"').next()
                {
                    names.insert(name.to_string());
                }
            }
        }
    }
    let mut out: BTreeMap<u16, (u32, String)> = BTreeMap::new();
    for n in names {
        let Some(id) = stream_id(&n) else { continue };
        if id.db_id != DbId(db.db_id) {
            continue;
        }
        let e = out
            .entry(id.thread.0)
            .or_insert((id.resetlogs_id.0, n.clone()));
        if id.resetlogs_id > ResetlogsId(e.0) {
            *e = (id.resetlogs_id.0, n);
        }
    }
    out
}

/// Which extractor last reported each stream (kept across polls: a killed extractor's
/// streams are still its own).
pub type ExtractorOf = BTreeMap<String, String>;

/// Notes which extractor reports each stream.
pub fn remember_extractors(r: &Readings, of: &mut ExtractorOf) {
    for e in &r.extractors {
        if let Ok(m) = &e.result {
            for k in m.keys() {
                if let Some(rest) = k.strip_prefix("redovault_extractor_connected{stream=\"")
                    && let Some(name) = rest.split('"').next()
                {
                    of.insert(name.to_string(), e.name.clone());
                }
            }
        }
    }
}

/// The rows of the overview.
pub fn rows(cfg: &ConsoleSection, r: &Readings, of: &ExtractorOf, now: f64) -> Vec<Row> {
    let mut out = Vec::new();
    for db in &cfg.databases {
        let threads = threads_of(db, r);
        if threads.is_empty() {
            out.push(row(cfg, db, 0, None, r, of, now));
        }
        for (t, (_, name)) in threads {
            out.push(row(cfg, db, t, Some(&name), r, of, now));
        }
    }
    out
}

fn collector_view(
    cfg: &ConsoleSection,
    c: &Reading<CollectorStatus>,
    stream: Option<&str>,
    now: f64,
) -> CollectorView {
    match &c.result {
        Err(e) => CollectorView::Unreachable(e.clone()),
        Ok(_) if now - c.read_at > cfg.stale_after.as_secs_f64() => {
            CollectorView::Stale(now - c.read_at)
        }
        Ok(s) => match stream.and_then(|n| s.streams.get(n)) {
            None => CollectorView::NoStream,
            Some(st) => CollectorView::Held {
                session_up: st.session_up,
                session_since: st.session_since,
                last_commit_time: st.last_commit.as_ref().and_then(|c| c.time),
                worm_commit_time: st.worm_last_commit.as_ref().and_then(|c| c.time),
            },
        },
    }
}

fn extractor_view(
    cfg: &ConsoleSection,
    r: &Readings,
    of: &ExtractorOf,
    stream: Option<&str>,
) -> (String, ExtractorView) {
    if cfg.extractors.is_empty() {
        return (String::new(), ExtractorView::NotConfigured);
    }
    let owner = stream.and_then(|s| of.get(s));
    let candidates: Vec<&Reading<BTreeMap<String, f64>>> = r
        .extractors
        .iter()
        .filter(|e| owner.is_none_or(|o| *o == e.name))
        .collect();
    let Some(stream) = stream else {
        return (String::new(), ExtractorView::NoStream);
    };
    for e in &candidates {
        if let Ok(m) = &e.result {
            let connected = stream_samples(m, "redovault_extractor_connected", stream);
            if connected.is_empty() {
                continue;
            }
            let lag = stream_samples(m, "redovault_extractor_lag_bytes", stream);
            let unread = stream_samples(m, "redovault_extractor_unread_bytes", stream);
            return (
                e.name.clone(),
                ExtractorView::Seen {
                    connected: connected.iter().any(|c| *c >= 1.0),
                    lag_bytes: lag.into_iter().fold(f64::NAN, f64::max),
                    unread_bytes: unread.into_iter().fold(f64::NAN, f64::max),
                },
            );
        }
    }
    match candidates
        .iter()
        .find_map(|e| e.result.as_ref().err().map(|x| (e, x)))
    {
        Some((e, err)) => (e.name.clone(), ExtractorView::Unreachable(err.clone())),
        None => (
            candidates.first().map_or(String::new(), |e| e.name.clone()),
            ExtractorView::NoStream,
        ),
    }
}

fn row(
    cfg: &ConsoleSection,
    db: &DatabaseTarget,
    thread: u16,
    stream: Option<&str>,
    r: &Readings,
    of: &ExtractorOf,
    now: f64,
) -> Row {
    let collectors: Vec<(String, CollectorView)> = r
        .collectors
        .iter()
        .map(|c| (c.name.clone(), collector_view(cfg, c, stream, now)))
        .collect();
    let extractor = extractor_view(cfg, r, of, stream);
    let id = stream.and_then(stream_id);
    let (worm, archived) = match &r.worm {
        None => (WormView::NotYet, None),
        Some(Reading { result: Err(e), .. }) => (WormView::Unreadable(e.clone()), None),
        Some(Reading { result: Ok(w), .. }) => {
            let thread_facts = id.and_then(|i| {
                w.archive
                    .get(&(DbId(i.db_id.0), ResetlogsId(i.resetlogs_id.0), i.thread.0))
            });
            (
                WormView::Read {
                    stream_commit_time: stream.and_then(|s| w.streams.get(s)).and_then(|x| x.2),
                    last_archived: thread_facts
                        .and_then(|t| t.sequences.last().map(|s| (*s, t.last_shipped))),
                    gaps: thread_facts.map(|t| t.gaps()).unwrap_or_default(),
                },
                thread_facts,
            )
        }
    };
    let verification = r
        .reports
        .as_ref()
        .and_then(|x| x.last_verification.as_ref())
        .map(|v| Verification {
            verdict: v.verdict.clone(),
            finished: chrono::DateTime::parse_from_rfc3339(&v.finished_at)
                .ok()
                .map(|d| d.timestamp()),
            errors: v.errors,
        });
    let bytes = archived.map_or(0, |t| t.bytes);
    let rto_estimate = rto::estimate(
        bytes,
        &measurements(cfg, db, r),
        cfg.restore_throughput,
        cfg.fixed_steps.as_secs_f64(),
    );
    let estimated_rto = Some(rto_estimate.seconds);
    let facts = Facts {
        now,
        rpo_target: db.rpo_target.as_secs_f64(),
        rto_target: db.rto_target.as_secs_f64(),
        collectors: collectors.clone(),
        extractor: extractor.clone(),
        worm: worm.clone(),
        verification: verification.clone(),
        estimated_rto,
    };
    let mut assessment = assess(&facts);
    if stream.is_none() {
        assessment.reasons.insert(
            0,
            crate::console::assess::Reason {
                level: crate::console::assess::State::Warning,
                text: format!("no source knows database {} (DBID {})", db.name, db.db_id),
            },
        );
        assessment.state = assessment.state.max(crate::console::assess::State::Warning);
    }
    let held: Vec<(&String, &CollectorView)> = collectors
        .iter()
        .filter(|(_, v)| matches!(v, CollectorView::Held { .. }))
        .map(|(n, v)| (n, v))
        .collect();
    let stream_up = (!held.is_empty()).then(|| {
        held.iter().any(|(_, v)| {
            matches!(
                v,
                CollectorView::Held {
                    session_up: true,
                    ..
                }
            )
        })
    });
    let last_commit = r
        .collectors
        .iter()
        .filter_map(|c| {
            let s = c.result.as_ref().ok()?.streams.get(stream?)?;
            let lc = s.last_commit.as_ref()?;
            Some(CommitShown {
                scn: lc.scn,
                xid: lc.xid.clone(),
                time: lc.time,
                on: c.name.clone(),
            })
        })
        .max_by_key(|c| c.scn);
    let (last_archived, gaps) = match &worm {
        WormView::Read {
            last_archived,
            gaps,
            ..
        } => (
            last_archived.map(|(s, t)| (s, t.map(|t| (now - t as f64).max(0.0)))),
            gaps.clone(),
        ),
        _ => (None, Vec::new()),
    };
    let lag_bytes = match extractor.1 {
        ExtractorView::Seen { lag_bytes, .. } if lag_bytes.is_finite() => Some(lag_bytes),
        _ => None,
    };
    let worm_behind = match (assessment.exposure_worm, assessment.exposure_collector) {
        (Some(w), Some(c)) => Some((w - c).max(0.0)),
        _ => None,
    };
    Row {
        database: db.name.clone(),
        db_id: DbId(db.db_id),
        thread,
        stream: stream.map(str::to_string),
        assessment,
        stream_up,
        last_commit,
        last_archived,
        gaps,
        lag_bytes,
        worm_behind,
        verification: verification
            .map(|v| (v.verdict, v.finished.map(|t| (now - t as f64).max(0.0)))),
        estimated_rto,
        rto_estimate: Some(rto_estimate),
        rto_target: db.rto_target.as_secs_f64(),
        rpo_target: db.rpo_target.as_secs_f64(),
    }
}

/// The restore measurements of the drills and recoveries counted for `db`.
fn measurements<'a>(
    cfg: &ConsoleSection,
    db: &DatabaseTarget,
    r: &'a Readings,
) -> Vec<Measured<'a>> {
    r.reports
        .iter()
        .flat_map(|x| x.drills.iter())
        .filter(|d| cfg.database_of(d.db_id).is_some_and(|x| x.name == db.name))
        .filter_map(|d| {
            Some(Measured {
                kind: &d.kind,
                file: &d.file,
                at: d.at,
                measure: d.measure.as_ref()?,
            })
        })
        .collect()
}

/// One thread's timeline of sequences, as the page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadTimelineShown {
    pub database: String,
    pub thread: u16,
    /// The stream (`db..-rl..-t..`: the incarnation).
    pub stream: String,
    /// The runs of sequences.
    #[serde(flatten)]
    pub timeline: Timeline,
}

/// The timeline of every row's thread: archived (WORM's sealed manifest), streamed (the
/// stream's chain in WORM, and the collectors' durable end), verified, gaps and tampered
/// (the last audit report; its timelines name the incarnation by resetlogs id and thread).
pub fn timelines(r: &Readings, rows: &[Row]) -> Vec<ThreadTimelineShown> {
    let worm = match &r.worm {
        Some(Reading { result: Ok(w), .. }) => Some(w),
        _ => None,
    };
    let audit = r
        .reports
        .as_ref()
        .and_then(|x| x.last_verification.as_ref());
    rows.iter()
        .filter_map(|row| {
            let stream = row.stream.as_deref()?;
            let id = stream_id(stream)?;
            let key = (id.db_id, id.resetlogs_id, id.thread.0);
            let collector_seq = r
                .collectors
                .iter()
                .filter_map(|c| c.result.as_ref().ok()?.streams.get(stream))
                .filter_map(|s| timeline::position_seq(s.durable_end.as_deref()?))
                .max();
            let tampered: Vec<u32> = audit
                .iter()
                .flat_map(|a| a.tampered.iter())
                .filter(|l| l.resetlogs_id == id.resetlogs_id && l.thread == id.thread.0)
                .map(|l| l.sequence)
                .collect();
            let t = timeline::build(&timeline::Inputs {
                archived: worm.and_then(|w| w.archive.get(&key)).map(|t| &t.sequences),
                streamed: worm
                    .and_then(|w| w.stream_seqs.get(stream))
                    .map_or(&[][..], Vec::as_slice),
                collector_seq,
                audit: audit.and_then(|a| {
                    a.threads
                        .iter()
                        .find(|t| t.resetlogs_id == id.resetlogs_id && t.thread == id.thread.0)
                }),
                tampered: &tampered,
            });
            Some(ThreadTimelineShown {
                database: row.database.clone(),
                thread: row.thread,
                stream: stream.to_string(),
                timeline: t,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::assess::State;
    use redovault_collector::status::{CommitInfo, StreamStatus};
    use std::time::Duration;

    fn cfg() -> ConsoleSection {
        let t: toml::Table = toml::from_str(
            r#"
[[collector]]
name = "c1"
status_url = "http://127.0.0.1:1/status"
[[extractor]]
name = "db-host"
metrics = "127.0.0.1:2"
[[database]]
name = "PROD"
db_id = 7
rto_target = "2h"
rpo_target = "5s"
"#,
        )
        .unwrap();
        let mut p = Vec::new();
        let c = crate::console::config::parse(&t, "/tmp".into(), &mut p);
        assert!(p.is_empty(), "{p:?}");
        c
    }

    fn status(now: i64, up: bool) -> CollectorStatus {
        let mut streams = BTreeMap::new();
        for (rl, t) in [(100, 1), (200, 1), (200, 2)] {
            streams.insert(
                format!("db7-rl{rl}-t{t}"),
                StreamStatus {
                    db_id: DbId(7),
                    resetlogs_id: ResetlogsId(rl),
                    thread: t,
                    session_up: up,
                    session_since: Some(now - 20),
                    last_commit: Some(CommitInfo {
                        scn: 1000 + u64::from(rl),
                        xid: Some("1.2.3".into()),
                        time: Some(now - 1),
                    }),
                    ..StreamStatus::default()
                },
            );
        }
        CollectorStatus {
            version: 1,
            now,
            started: now - 100,
            streams,
        }
    }

    #[test]
    fn one_row_per_thread_of_the_newest_incarnation_and_the_killed_extractor_stays_named() {
        let c = cfg();
        let now = 1_800_000_000.0;
        let mut metrics = BTreeMap::new();
        for s in ["db7-rl200-t1", "db7-rl200-t2"] {
            metrics.insert(
                format!("redovault_extractor_connected{{stream=\"{s}\"}}"),
                1.0,
            );
            metrics.insert(
                format!("redovault_extractor_lag_bytes{{stream=\"{s}\"}}"),
                512.0,
            );
            metrics.insert(
                format!("redovault_extractor_unread_bytes{{stream=\"{s}\"}}"),
                0.0,
            );
        }
        let mut r = Readings {
            collectors: vec![Reading {
                name: "c1".into(),
                from: String::new(),
                read_at: now,
                result: Ok(status(now as i64, true)),
            }],
            extractors: vec![Reading {
                name: "db-host".into(),
                from: String::new(),
                read_at: now,
                result: Ok(metrics),
            }],
            worm: Some(Reading {
                name: "worm".into(),
                from: String::new(),
                read_at: now,
                result: Ok(WormFacts::default()),
            }),
            ..Readings::default()
        };
        let mut of = ExtractorOf::new();
        remember_extractors(&r, &mut of);
        let rows = rows(&c, &r, &of, now);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].stream.as_deref(), Some("db7-rl200-t1"));
        assert_eq!(rows[1].thread, 2);
        assert_eq!(rows[0].assessment.state, State::Protected, "{:?}", rows[0]);
        assert_eq!(rows[0].last_commit.as_ref().unwrap().scn, 1200);
        assert_eq!(rows[0].estimated_rto, Some(600.0));

        // kill -9 of the extractor: its metrics stop, the collector's session goes down.
        r.extractors[0].result = Err("127.0.0.1:2: no metrics (not answering)".into());
        r.collectors[0].result = Ok(status(now as i64, false));
        remember_extractors(&r, &mut of);
        let rows = super::rows(&c, &r, &of, now + 3.0);
        assert_eq!(rows[0].assessment.state, State::Alert);
        let all: Vec<&str> = rows[0]
            .assessment
            .reasons
            .iter()
            .map(|x| x.text.as_str())
            .collect();
        assert!(
            all.iter()
                .any(|t| t.contains("extractor db-host unreachable")),
            "{all:?}"
        );
        assert_eq!(rows[0].stream_up, Some(false));
    }

    #[test]
    fn the_timeline_joins_worm_the_collector_and_the_audit_and_the_rto_is_measured() {
        use crate::console::rto::{RestoreMeasure, RtoBasis};
        use crate::console::sources::{ArchivedThread, DrillRun, VerifierRun};
        use crate::console::timeline::SeqState;
        use crate::report::{CellState, LogRef, ThreadTimeline, TimelineCell};
        let c = cfg();
        let now = 1_800_000_000.0;
        let mut st = status(now as i64, true);
        for s in st.streams.values_mut() {
            s.durable_end = Some("6:4096".into());
        }
        let mut worm = WormFacts::default();
        worm.archive.insert(
            (DbId(7), ResetlogsId(200), 1),
            ArchivedThread {
                sequences: [1, 2, 4].into_iter().collect(),
                last_shipped: Some(now as i64 - 60),
                bytes: 50 << 20,
            },
        );
        worm.stream_seqs.insert("db7-rl200-t1".into(), vec![(4, 5)]);
        let audit = VerifierRun {
            file: "/r/report-x.json".into(),
            verdict: "findings".into(),
            started_at: String::new(),
            finished_at: String::new(),
            errors: 1,
            mode: "fast".into(),
            objects_checked: 3,
            objects_deep_verified: 0,
            objects_ever_deep_verified: 0,
            pieces_checked: 0,
            pieces_deep_verified: 0,
            bytes_rehashed: 0,
            check_seconds: None,
            deep_mb_per_second: None,
            threads: vec![ThreadTimeline {
                resetlogs_id: ResetlogsId(200),
                thread: 1,
                cells: [(1, CellState::Verified), (2, CellState::Verified)]
                    .into_iter()
                    .map(|(sequence, state)| TimelineCell { sequence, state })
                    .collect(),
            }],
            tampered: vec![LogRef {
                resetlogs_id: ResetlogsId(200),
                thread: 1,
                sequence: 2,
            }],
        };
        let drill = |at: i64, measure: Option<RestoreMeasure>| DrillRun {
            kind: "drill".into(),
            file: format!("/r/drill-{at}/drill-report.json").into(),
            at,
            pass: true,
            rpo_commits: Some(0),
            rpo_seconds: Some(0.0),
            rto_seconds: 30.0,
            db_id: None,
            measure,
        };
        let r = Readings {
            collectors: vec![Reading {
                name: "c1".into(),
                from: String::new(),
                read_at: now,
                result: Ok(st),
            }],
            worm: Some(Reading {
                name: "worm".into(),
                from: String::new(),
                read_at: now,
                result: Ok(worm),
            }),
            reports: Some(Reports {
                last_verification: Some(audit),
                drills: vec![
                    drill(
                        now as i64 - 100,
                        Some(RestoreMeasure {
                            archive_bytes: 10 << 20,
                            archive_seconds: 2.0,
                            other_seconds: 25.0,
                        }),
                    ),
                    // Newer, but measured nothing: the older one counts.
                    drill(now as i64 - 10, None),
                ],
                ..Reports::default()
            }),
            ..Readings::default()
        };
        let rows = rows(&c, &r, &ExtractorOf::new(), now);
        let t1 = &timelines(&r, &rows)[0];
        assert_eq!((t1.database.as_str(), t1.thread), ("PROD", 1));
        let shape: Vec<(u32, u32, SeqState)> = t1
            .timeline
            .runs
            .iter()
            .map(|x| (x.from, x.to, x.state))
            .collect();
        assert_eq!(
            shape,
            vec![
                (1, 1, SeqState::Verified),
                (2, 2, SeqState::Tampered),
                (3, 3, SeqState::Gap),
                (4, 4, SeqState::Archived),
                (5, 6, SeqState::Streamed),
            ]
        );
        // 50 MiB at the drill's 5 MiB/s, plus its 25 s of other steps.
        let e = rows[0].rto_estimate.as_ref().unwrap();
        assert_eq!(rows[0].estimated_rto, Some(35.0));
        assert!(
            matches!(&e.basis, RtoBasis::Measured { kind, at, .. } if kind == "drill" && *at == now as i64 - 100),
            "{e:?}"
        );
        // Thread 2 has no archived log: its estimate is the fixed steps only.
        assert_eq!(rows[1].estimated_rto, Some(25.0));
    }

    #[test]
    fn a_database_no_source_knows_is_one_warning_row_and_a_stale_collector_is_unknown() {
        let c = cfg();
        let now = 1_800_000_000.0;
        let r = Readings {
            collectors: vec![Reading {
                name: "c1".into(),
                from: String::new(),
                read_at: now - c.stale_after.as_secs_f64() - 1.0,
                result: Ok(status(now as i64, true)),
            }],
            ..Readings::default()
        };
        let rows = rows(&c, &r, &ExtractorOf::new(), now);
        assert!(rows[0].assessment.state >= State::Warning);
        assert!(
            rows[0]
                .assessment
                .reasons
                .iter()
                .any(|x| x.text.contains("collector c1 unknown")),
            "{:?}",
            rows[0].assessment.reasons
        );
        let mut other = c.clone();
        other.databases[0].db_id = 99;
        other.databases[0].rpo_target = Duration::from_secs(5);
        let rows = super::rows(&other, &r, &ExtractorOf::new(), now);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].thread, 0);
        assert!(
            rows[0].assessment.reasons[0]
                .text
                .contains("no source knows")
        );
    }
}
