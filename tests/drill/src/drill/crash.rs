//! The crash and the wiper's first moves: the database dies; with `--wipe-backup-host` the
//! wiper reaches the backup host and redovault's daemons at that moment; the drill times how
//! long the backup host takes to hold the last commit (nothing else runs meanwhile); without
//! the flag the wiper kills the database host's daemons once the grace period is over.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::attack::{self, Action};
use super::live::{BackupHosts, CrashClock, DatabaseHost, Live};
use super::procs::{ProcessUsage, scrape, wait_for};
use super::referee;
use super::stage::Stage;
use super::{DrillError, Evidence};

/// The crash as the drill measured it.
pub struct Crash {
    /// When it crashed (the wall clock): the time to the last commit held and the grace
    /// period run from here.
    pub at: Instant,
    /// The same moment in Unix seconds (databases attacked together compare theirs).
    pub at_unix: f64,
    /// The database's clock at the crash.
    pub clock: CrashClock,
    /// Seconds the workload ran.
    pub workload_seconds: f64,
    /// Redo per second the database wrote: the asked rate scaled by how far its clock kept up.
    pub redo_rate: f64,
    /// Milliseconds from the crash to the first poll that saw the collector hold the last
    /// commit (every thread's), if seen within the grace period.
    pub durable_after: Option<f64>,
}

/// The database crashes (and in the hard case the backup host is wiped with it), the time to
/// the last commit held is taken, then the wiper kills what still runs on the database host.
/// Returns the crash and the backup hosts' collectors still running.
pub fn crash(
    stage: &Stage,
    live: Live,
    evidence: &mut Evidence,
    say: &mut dyn FnMut(&str),
) -> Result<(Crash, BackupHosts), DrillError> {
    let Live {
        db,
        mut backup,
        host,
        db_started,
        run_started,
    } = live;
    let clock = db.crash()?;
    let at = Instant::now();
    let at_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let workload_seconds = run_started.elapsed().as_secs_f64();
    // The simulated clock advances with the redo written: where it lags the wall clock, the
    // machine did not keep up with the asked rate, and this is the rate the drill ran at.
    let db_wall = at.duration_since(db_started).as_secs_f64();
    let redo_rate = stage.opts.rate as f64 * (db_wall - clock.behind.as_secs_f64()).max(0.0)
        / db_wall.max(f64::EPSILON);
    let mut crash = Crash {
        at,
        at_unix,
        clock,
        workload_seconds,
        redo_rate,
        durable_after: None,
    };
    let host = if stage.opts.wipe_backup_host {
        wipe_at_crash(stage, &mut backup, host, evidence)?;
        None
    } else {
        Some(host)
    };
    crash.durable_after = time_last_commit(stage, &crash, &backup, say)?;
    wiper_reaches_redovault(stage, &crash, host, evidence, say);
    Ok((crash, backup))
}

/// `--wipe-backup-host`: at the crash, kill -9 of the collector and of the database host's
/// daemons, and rm -rf of the backup host.
fn wipe_at_crash(
    stage: &Stage,
    backup: &mut BackupHosts,
    host: DatabaseHost,
    evidence: &mut Evidence,
) -> Result<(), DrillError> {
    if let Some(c) = backup.collector.take() {
        let name = c.name.clone();
        evidence
            .processes
            .push(ProcessUsage::daemon(&name, c.kill9()));
    }
    kill_database_host(stage, host, evidence);
    evidence.actions.push(Action::done(
        if backup.replicas.is_empty() {
            "at the crash: kill -9 of the collector (backup host), the watcher and the extractor (database host)"
        } else {
            "at the crash: kill -9 of the collector on backup host 1, the watcher and the extractor (database host)"
        },
        "all three gone, no grace period",
    ));
    evidence.actions.push(attack::remove_tree(
        &stage.layout.remote,
        "the backup host: the collector's store, key ring, configuration, certificates, the recovery public key",
    )?);
    Ok(())
}

/// The time from the crash until the collector (the first backup host's, or the second's
/// when the first was wiped) holds every thread's last commit. It runs from the crash with
/// nothing else in its way: the last commit is read from the journal's tail (a few KiB), not
/// from the referee's copy, which is taken only once the wiper has killed redovault's daemons
/// (see `last_commit_durable_after_ms`).
fn time_last_commit(
    stage: &Stage,
    crash: &Crash,
    backup: &BackupHosts,
    say: &mut dyn FnMut(&str),
) -> Result<Option<f64>, DrillError> {
    let journal = stage.layout.oracle.join("journal.jsonl");
    let journal_tail = referee::last_commits_in_journal(&journal, stage.threads)?;
    let journal_last = journal_tail.last.as_ref();
    say(&format!(
        "==> [3/5] the attack: the database crashes after {:.1} s (last commit {} at SCN {}; redo written at {:.2} MiB/s of the {:.2} MiB/s asked)",
        crash.workload_seconds,
        journal_last.map_or("-", |c| c.0.as_str()),
        journal_last.map_or(0, |c| c.1),
        crash.redo_rate / f64::from(1 << 20),
        stage.opts.rate as f64 / f64::from(1 << 20)
    ));
    let watched = if backup.collector.is_some() {
        Some(SocketAddr::from((
            [127, 0, 0, 1],
            stage.ports.collector_metrics,
        )))
    } else {
        stage
            .configs
            .replicas
            .first()
            .map(|r| SocketAddr::from(([127, 0, 0, 1], r.metrics)))
    };
    // Every thread's last commit: each thread's stream durable at or past it.
    let last_per_thread: Vec<(String, u64)> = stage
        .streams
        .iter()
        .zip(1u16..)
        .filter_map(|(stream, t)| {
            journal_tail.per_thread.get(&t).map(|(_, scn)| {
                (
                    format!("redovault_collector_durable_scn{{stream=\"{stream}\"}}"),
                    *scn,
                )
            })
        })
        .collect();
    let mut durable_after = None;
    if let (Some(_), Some(m)) = (journal_last, watched)
        && wait_for(stage.opts.grace.max(Duration::from_millis(100)), || {
            let got = scrape(m);
            last_per_thread
                .iter()
                .all(|(key, scn)| got.get(key).is_some_and(|v| *v >= *scn as f64))
        })
    {
        durable_after = Some(crash.at.elapsed().as_secs_f64() * 1000.0);
    }
    if let Some(ms) = durable_after {
        say(&format!(
            "    the collector held {} {ms:.1} ms after the crash (seen by polling its metrics every 20 ms)",
            if stage.threads > 1 {
                "every thread's last commit"
            } else {
                "the last commit"
            }
        ));
    }
    Ok(durable_after)
}

/// The grace period over (counted from the crash), the wiper kills the database host's
/// daemons still running (`host`: none when they died at the crash).
fn wiper_reaches_redovault(
    stage: &Stage,
    crash: &Crash,
    host: Option<DatabaseHost>,
    evidence: &mut Evidence,
    say: &mut dyn FnMut(&str),
) {
    let Some(host) = host else {
        say(
            "    at the crash the wiper reached the backup host and redovault's daemons (no grace period), then wiped the database host:",
        );
        return;
    };
    let grace = stage.opts.grace;
    std::thread::sleep(grace.saturating_sub(crash.at.elapsed()));
    say(&format!(
        "    {:.1} s after the crash the wiper reaches redovault:",
        grace.as_secs_f64()
    ));
    kill_database_host(stage, host, evidence);
    let threads = stage.threads;
    evidence.actions.push(if threads == 1 {
        Action::done("kill -9 of the watcher and the extractor", "both gone")
    } else {
        Action::done(
            format!("kill -9 of the watcher and the {threads} extractors (one per thread)"),
            "all gone",
        )
    });
}

/// kill -9 of the watcher and the extractors, each one's cost read first.
fn kill_database_host(stage: &Stage, host: DatabaseHost, evidence: &mut Evidence) {
    evidence
        .processes
        .push(ProcessUsage::daemon("watcher", host.watcher.kill9()));
    for (e, t) in host.extractors.into_iter().zip(1u16..) {
        evidence.processes.push(ProcessUsage::daemon(
            &extractor_name(t, stage.threads),
            e.kill9(),
        ));
    }
}

/// An extractor's name in the report: one per redo thread on RAC.
fn extractor_name(thread: u16, threads: u16) -> String {
    if threads == 1 {
        "extractor".to_string()
    } else {
        format!("extractor (thread {thread})")
    }
}
