//! `--databases N`: several databases attacked at the same moment, as the 2011 and 2013 wipers
//! reached hundreds of servers at once.
//!
//! ```text
//!             ┌─ db1: set-up, start ─┐                       ┌─ db1: crash … checks ─┐
//!   fleet ────┼─ db2: set-up, start ─┼─ workload ─ barrier ──┼─ db2: crash … checks ─┼─ report
//!             └─ dbN: set-up, start ─┘  (each its own pace)  └─ dbN: crash … checks ─┘
//!               one at a time (ports)                          all at once
//! ```
//!
//! Each database is deployed as a bank deploys one: its own database host (the simulated
//! database, its watcher and its extractors) and its own backup host, sharing the one WORM
//! store (its own run prefix in the S3 bucket; on the local store each has its own directory).
//! Every database runs the whole single-database drill in a thread of its own, in
//! `DIR/db<i>`, at `--rate / N` with seed `--seed + i - 1`.
//!
//! Invariants:
//! - the databases are set up and started one at a time (their ports are taken from the
//!   kernel then bound by the daemons: two at once could draw the same port), and crash
//!   together: each waits at one barrier after its own `--run-for`, arriving even when its
//!   start failed, so no database waits for one that will never come;
//! - the verdict is PASS only when every database's is; a database whose drill could not run
//!   is a failure named in the report, and the others still finish theirs;
//! - every database's `drill-report.json` stays in its directory; the fleet's report is
//!   `DIR/fleet-report.json`.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};

use serde::Serialize;

use super::{DrillError, DrillOptions, DrillReport};

/// How the databases of one fleet wait for each other.
#[derive(Debug)]
pub struct Together {
    start: Mutex<()>,
    crash: Barrier,
}

impl Together {
    fn new(databases: usize) -> Together {
        Together {
            start: Mutex::new(()),
            crash: Barrier::new(databases),
        }
    }

    /// This database's turn to be set up and started (one at a time).
    pub(super) fn start_turn(&self) -> MutexGuard<'_, ()> {
        // A database whose start panicked leaves nothing to protect: take the lock anyway.
        self.start.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every database has run its workload (or failed to start).
    pub(super) fn crash_together(&self) {
        self.crash.wait();
    }
}

/// A database's place in the fleet.
#[derive(Debug, Clone)]
pub struct Member {
    /// From 1.
    pub index: u16,
    pub together: Arc<Together>,
}

impl Member {
    /// The database's name in progress lines, directories and WORM prefixes.
    pub fn name(&self) -> String {
        format!("db{}", self.index)
    }
}

/// One database's line of the fleet's report.
#[derive(Debug, Serialize)]
pub struct FleetMember {
    /// `db<i>`.
    pub name: String,
    /// Its drill's directory (its `drill-report.json`).
    pub dir: PathBuf,
    /// Its report, when its drill ran to the end.
    pub report: Option<DrillReport>,
    /// Why its drill could not run, when it could not.
    pub error: Option<String>,
}

/// What `--databases N` prints and writes (`fleet-report.json`).
#[derive(Debug, Serialize)]
pub struct FleetReport {
    /// Every database's drill passed.
    pub pass: bool,
    pub databases: u16,
    /// Redo per second asked of all the databases together (`--rate`).
    pub rate_bytes_per_second: u64,
    /// Redo per second all the databases wrote together.
    pub redo_bytes_per_second: f64,
    /// Commits of all the databases.
    pub commits: usize,
    /// Commits lost, all databases together (each database's RPO is in its report).
    pub rpo_commits: usize,
    /// The slowest database's recovery (they recover at the same time, on this one machine).
    pub rto_seconds: f64,
    /// Archived logs restored, all databases together.
    pub archived_logs: usize,
    /// CPU seconds of every daemon and recovery step of every database.
    pub cpu_seconds: f64,
    pub members: Vec<FleetMember>,
    pub dir: PathBuf,
}

/// Runs `databases` drills at once under `opts.dir`; `say` gets each progress line, prefixed
/// with the database's name.
pub fn run(
    opts: &DrillOptions,
    databases: u16,
    say: &mut dyn FnMut(&str),
) -> Result<FleetReport, DrillError> {
    let databases = databases.max(1);
    std::fs::create_dir_all(&opts.dir).map_err(|e| DrillError::io(&opts.dir, e))?;
    let together = Arc::new(Together::new(usize::from(databases)));
    let members: Vec<DrillOptions> = (1..=databases)
        .map(|i| member_options(opts, databases, i, &together))
        .collect();
    say(&format!(
        "==> {databases} databases at {:.2} MiB/s each ({:.2} MiB/s together), each with its own database host and backup host, one WORM store; set up one at a time, attacked at the same moment",
        members[0].rate as f64 / f64::from(1 << 20),
        opts.rate as f64 / f64::from(1 << 20)
    ));
    let results = run_members(&members, say);
    let report = FleetReport::new(opts, databases, &members, results);
    let json = opts.dir.join("fleet-report.json");
    std::fs::write(
        &json,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| DrillError::io(&json, e))?;
    Ok(report)
}

/// Database `index`'s options: its directory, its share of the rate, its own seed.
fn member_options(
    opts: &DrillOptions,
    databases: u16,
    index: u16,
    together: &Arc<Together>,
) -> DrillOptions {
    let member = Member {
        index,
        together: Arc::clone(together),
    };
    let mut o = opts.clone();
    o.dir = opts.dir.join(member.name());
    o.rate = (opts.rate / u64::from(databases)).max(1);
    o.seed = opts.seed.wrapping_add(u64::from(index) - 1);
    o.member = Some(member);
    o
}

/// Every database's drill in a thread of its own; their progress lines reach `say` here, in
/// the order they are said.
fn run_members(
    members: &[DrillOptions],
    say: &mut dyn FnMut(&str),
) -> Vec<Result<DrillReport, DrillError>> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::scope(|s| {
        let handles: Vec<_> = members
            .iter()
            .map(|o| {
                let tx = tx.clone();
                let name = o.member.as_ref().map(Member::name).unwrap_or_default();
                s.spawn(move || {
                    let mut tell = |line: &str| {
                        // The receiver lives until every drill has ended.
                        let _ = tx.send(format!("[{name}] {line}"));
                    };
                    super::run(o, &mut tell)
                })
            })
            .collect();
        drop(tx);
        for line in rx {
            say(&line);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(DrillError::Step(
                        "the database's drill panicked (its progress lines above)".into(),
                    ))
                })
            })
            .collect()
    })
}

impl FleetReport {
    fn new(
        opts: &DrillOptions,
        databases: u16,
        members: &[DrillOptions],
        results: Vec<Result<DrillReport, DrillError>>,
    ) -> FleetReport {
        let members: Vec<FleetMember> = members
            .iter()
            .zip(results)
            .map(|(o, r)| {
                let name = o.member.as_ref().map(Member::name).unwrap_or_default();
                let (report, error) = match r {
                    Ok(r) => (Some(r), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                FleetMember {
                    name,
                    dir: o.dir.clone(),
                    report,
                    error,
                }
            })
            .collect();
        let ran = || members.iter().filter_map(|m| m.report.as_ref());
        FleetReport {
            pass: members
                .iter()
                .all(|m| m.report.as_ref().is_some_and(|r| r.pass)),
            databases,
            rate_bytes_per_second: opts.rate,
            // fold from +0.0: an empty f64 sum is -0.0, which prints as "-0.00".
            redo_bytes_per_second: ran()
                .map(|r| r.redo_bytes_per_second)
                .fold(0.0, |a, b| a + b),
            commits: ran().map(|r| r.commits).sum(),
            rpo_commits: ran().map(|r| r.rpo_commits).sum(),
            rto_seconds: ran().map(|r| r.rto_seconds).fold(0.0, f64::max),
            archived_logs: ran().map(|r| r.archived_logs).sum(),
            cpu_seconds: ran()
                .flat_map(|r| &r.processes)
                .map(|p| p.usage.cpu_seconds)
                .fold(0.0, |a, b| a + b),
            members,
            dir: opts.dir.clone(),
        }
    }

    /// Every database's summary, then the fleet's table and verdict.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for m in &self.members {
            s.push_str(&format!("=== {} ({})\n", m.name, m.dir.display()));
            match (&m.report, &m.error) {
                (Some(r), _) => s.push_str(&r.render()),
                (None, e) => s.push_str(&format!(
                    "the drill could not run: {}\n",
                    e.as_deref().unwrap_or("?")
                )),
            }
        }
        s.push_str(&format!(
            "=== {} databases, attacked at the same moment\n",
            self.databases
        ));
        s.push_str(&format!(
            "  {:<6} {:>8} {:>10} {:>9} {:>8} {:>8} {:>9}\n",
            "db", "verdict", "MiB/s", "commits", "RPO", "RTO s", "logs"
        ));
        for m in &self.members {
            match &m.report {
                Some(r) => s.push_str(&format!(
                    "  {:<6} {:>8} {:>10.2} {:>9} {:>8} {:>8.1} {:>9}\n",
                    m.name,
                    if r.pass { "PASS" } else { "FAIL" },
                    r.redo_bytes_per_second / f64::from(1 << 20),
                    r.commits,
                    r.rpo_commits,
                    r.rto_seconds,
                    r.archived_logs
                )),
                None => s.push_str(&format!("  {:<6} {:>8}\n", m.name, "ERROR")),
            }
        }
        s.push_str(&format!(
            "fleet verdict: {}   RPO = {} commits lost over {} databases   RTO = {:.1} s (the slowest)   redo {:.2} MiB/s written of the {:.2} MiB/s asked   {} commits, {} archived logs, {:.1} CPU s\n",
            if self.pass { "PASS" } else { "FAIL" },
            self.rpo_commits,
            self.databases,
            self.rto_seconds,
            self.redo_bytes_per_second / f64::from(1 << 20),
            self.rate_bytes_per_second as f64 / f64::from(1 << 20),
            self.commits,
            self.archived_logs,
            self.cpu_seconds
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::procs::Programs;
    use std::time::Duration;

    fn options(dir: &str) -> DrillOptions {
        DrillOptions {
            dir: PathBuf::from(dir),
            run_for: Duration::from_secs(8),
            rate: 10 << 20,
            log_size: 64 << 20,
            groups: 3,
            grace: Duration::from_secs(2),
            wipe_backup_host: false,
            collectors: 1,
            threads: 1,
            seed: 7,
            seal_interval: Duration::from_secs(600),
            s3: None,
            programs: Programs {
                redovault: "redovault".into(),
                extractor: "redovault-extractor".into(),
                collector: "redovault-collector".into(),
                verifier: "redovault-verifier".into(),
            },
            member: None,
        }
    }

    #[test]
    fn each_database_gets_its_directory_its_share_of_the_rate_and_its_own_seed() {
        let opts = options("/drills/bank");
        let together = Arc::new(Together::new(4));
        let members: Vec<DrillOptions> = (1..=4)
            .map(|i| member_options(&opts, 4, i, &together))
            .collect();
        for (o, i) in members.iter().zip(1u16..) {
            assert_eq!(o.dir, PathBuf::from(format!("/drills/bank/db{i}")));
            assert_eq!(o.rate, (10 << 20) / 4);
            assert_eq!(o.seed, 7 + u64::from(i) - 1);
            let m = o.member.as_ref().unwrap();
            assert_eq!((m.index, m.name()), (i, format!("db{i}")));
            assert!(Arc::ptr_eq(&m.together, &together));
        }
        // What the databases share is what was asked: the rest of the options.
        assert!(members.iter().all(|o| o.log_size == opts.log_size
            && o.run_for == opts.run_for
            && o.threads == opts.threads));
        // A rate too small to share still leaves every database writing.
        let mut tiny = options("/d");
        tiny.rate = 3;
        assert_eq!(member_options(&tiny, 16, 16, &together).rate, 1);
    }

    #[test]
    fn the_fleet_passes_only_when_every_database_ran_and_passed() {
        let opts = options("/d");
        let together = Arc::new(Together::new(2));
        let members: Vec<DrillOptions> = (1..=2)
            .map(|i| member_options(&opts, 2, i, &together))
            .collect();
        let failed = FleetReport::new(
            &opts,
            2,
            &members,
            vec![
                Err(DrillError::Step("the collector died".into())),
                Err(DrillError::Setup("no port".into())),
            ],
        );
        assert!(!failed.pass);
        assert_eq!(
            failed.members[0].error.as_deref(),
            Some("the collector died")
        );
        assert_eq!(failed.commits, 0);
        let text = failed.render();
        assert!(text.contains("db1") && text.contains("ERROR"), "{text}");
        assert!(text.contains("fleet verdict: FAIL"), "{text}");
        assert!(!text.contains("-0.0"), "{text}");
    }
}
