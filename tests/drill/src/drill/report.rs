//! The drill's report: `drill-report.json` and the summary printed at the end, made in the
//! last phase from what the others found.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::attack::Action;
use super::checks::Verdict;
use super::crash::Crash;
use super::procs::ProcessUsage;
use super::recovery::Recovery;
use super::referee::{Check, TableCounts, Truth};
use super::stage::Stage;
use super::{DrillError, Evidence};

/// One row of the per-table comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    /// Table name.
    pub table: String,
    /// One of the paper's five tables (the rest is background workload).
    pub paper: bool,
    /// What the database committed (journal).
    pub journal: TableCounts,
    /// What replaying the recovered redo gives.
    pub recovered: TableCounts,
}

/// One recovery step and its time.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryStep {
    /// What.
    pub step: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Its result.
    pub detail: String,
}

/// The drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// True when every check held.
    pub pass: bool,
    /// Where the archived logs went.
    pub store: String,
    /// True when the backup host was wiped at the crash (`--wipe-backup-host`).
    pub wipe_backup_host: bool,
    /// Collectors (backup hosts); with more than one, the wipe reaches the first only.
    pub collectors: u32,
    /// Redo threads (RAC instances), one extractor each.
    pub threads: u16,
    /// Per redo thread: its commits, what was lost, its rebuilt online log.
    pub per_thread: Vec<ThreadReport>,
    /// Commits lost: committed transactions in the journal after the last recovered commit
    /// (every thread's).
    pub rpo_commits: usize,
    /// Commit-time span from the last recovered commit to the last committed transaction in
    /// the journal (the database's commit times, whole seconds; 0 when none is lost).
    pub rpo_seconds: f64,
    /// Where the rebuilt online log came from: `worm` (pieces opened with the recovery key)
    /// or `collector` (its segments), as `restore online` recorded it.
    pub online_source: String,
    /// Why `restore online` chose that source.
    pub online_source_reason: String,
    /// Seconds from the start of recovery to verified files.
    pub rto_seconds: f64,
    /// The watcher's manifest seal interval in this drill, in seconds.
    pub seal_interval_seconds: f64,
    /// Archived logs restored from WORM that a sealed manifest lists.
    pub archived_from_sealed_manifest: usize,
    /// Archived logs restored from WORM that were shipped but not yet sealed (found by their
    /// headers and SHA-256 keys).
    pub archived_shipped_not_sealed: usize,
    /// Seconds the database ran.
    pub workload_seconds: f64,
    /// Redo per second the database was asked to write (`--rate`).
    pub rate_bytes_per_second: u64,
    /// Redo per second it wrote: the asked rate scaled by how far its clock (which advances
    /// with the redo written) kept up with the wall clock. Below the asked rate when the machine
    /// could not keep up: the drill then ran at this rate, not at the asked one.
    pub redo_bytes_per_second: f64,
    /// Committed transactions.
    pub commits: usize,
    /// Rolled-back transactions.
    pub rollbacks: usize,
    /// Archived logs the database wrote.
    pub archived_logs: usize,
    /// The last commit the database wrote (xid, SCN).
    pub last_commit: Option<(String, u64)>,
    /// Milliseconds from the crash (the instant the simulated database stopped writing) to the
    /// first poll (every 20 ms, over the collector's metrics) that saw the collector's durable
    /// SCN at or past the last commit's: an upper bound of when the backup host held it.
    /// Between the two the drill only reads the last commit from the journal's tail and polls;
    /// the referee's ground-truth copy is taken after the wiper killed the daemons, so it delays
    /// neither this figure nor the wiper. `None` when not seen within the grace period.
    pub last_commit_durable_after_ms: Option<f64>,
    /// When the database crashed, in Unix seconds.
    pub crashed_at_unix: f64,
    /// What the attacker did.
    pub attack: Vec<Action>,
    pub recovery: Vec<RecoveryStep>,
    /// The referee's checks.
    pub checks: Vec<Check>,
    /// Each daemon's and recovery step's CPU seconds and peak RSS (from /proc).
    pub processes: Vec<ProcessUsage>,
    /// Per table.
    pub tables: Vec<TableRow>,
    /// The drill's directory.
    pub dir: PathBuf,
}

/// One redo thread in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// The redo thread.
    pub thread: u16,
    /// Its committed transactions (journal).
    pub commits: usize,
    /// Of those, lost (RPO of the thread).
    pub rpo_commits: usize,
    /// Its last commit in the journal (xid, SCN).
    pub last_commit: Option<(String, u64)>,
    /// The last commit its rebuilt online log holds (xid, SCN).
    pub recovered_last_commit: Option<(String, u64)>,
    /// The rebuilt online log.
    pub online_log: PathBuf,
    /// Where it came from (`collector` or `worm`).
    pub online_source: String,
}

impl DrillReport {
    /// The human summary printed at the end.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_checks(&mut s);
        self.render_tables(&mut s);
        self.render_threads(&mut s);
        self.render_costs(&mut s);
        self.render_verdict(&mut s);
        s
    }

    fn render_checks(&self, s: &mut String) {
        s.push_str("checks:\n");
        for c in &self.checks {
            s.push_str(&format!(
                "  {} {:<40} {}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
    }

    fn render_tables(&self, s: &mut String) {
        s.push_str("per table (rows = inserts - deletes; journal = what the database committed, recovered = replay of the restored redo):\n");
        s.push_str(&format!(
            "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8}\n",
            "table", "", "txns j/r", "rows j/r", "ins", "upd", "del"
        ));
        for t in &self.tables {
            s.push_str(&format!(
                "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8}\n",
                t.table,
                if t.paper { "paper" } else { "bg" },
                format!("{}/{}", t.journal.transactions, t.recovered.transactions),
                format!("{}/{}", t.journal.rows, t.recovered.rows),
                t.recovered.inserts,
                t.recovered.updates,
                t.recovered.deletes
            ));
        }
    }

    fn render_threads(&self, s: &mut String) {
        s.push_str(&format!(
            "archived logs from WORM: {} from sealed manifests, {} shipped but not yet sealed (watcher seal interval {:.0} s)\n",
            self.archived_from_sealed_manifest,
            self.archived_shipped_not_sealed,
            self.seal_interval_seconds
        ));
        if self.per_thread.len() > 1 {
            s.push_str("per redo thread (RAC: one extractor per instance):\n");
            for t in &self.per_thread {
                s.push_str(&format!(
                    "  thread {}: {} commits, {} lost; last commit {}, recovered to {} in {} (from {})\n",
                    t.thread,
                    t.commits,
                    t.rpo_commits,
                    t.last_commit
                        .as_ref()
                        .map_or("-".into(), |(x, scn)| format!("{x} at SCN {scn}")),
                    t.recovered_last_commit
                        .as_ref()
                        .map_or("-".into(), |(x, scn)| format!("{x} at SCN {scn}")),
                    t.online_log.display(),
                    t.online_source
                ));
            }
        }
    }

    fn render_costs(&self, s: &mut String) {
        s.push_str("cost per process (CPU seconds user + system; peak RSS = VmHWM):\n");
        for p in &self.processes {
            s.push_str(&format!(
                "  {:<20} {:<9} {:>9.2} s CPU {:>9} MiB peak RSS\n",
                p.name,
                p.kind,
                p.usage.cpu_seconds,
                p.usage.peak_rss_bytes.map_or("-".to_string(), |b| format!(
                    "{:.1}",
                    b as f64 / f64::from(1 << 20)
                ))
            ));
        }
        s.push_str("time budget per recovery step:\n");
        for r in &self.recovery {
            s.push_str(&format!("  {:<40} {:>8.2} s\n", r.step, r.seconds));
        }
        s.push_str(&format!(
            "  {:<40} {:>8.2} s\n",
            "total (RTO)", self.rto_seconds
        ));
    }

    fn render_verdict(&self, s: &mut String) {
        s.push_str(&format!(
            "redo: {:.2} MiB/s written of the {:.2} MiB/s asked, for {:.1} s\n",
            self.redo_bytes_per_second / f64::from(1 << 20),
            self.rate_bytes_per_second as f64 / f64::from(1 << 20),
            self.workload_seconds
        ));
        s.push_str(&format!(
            "verdict: {}   RPO = {} commits lost ({:.0} s of commit time)   RTO = {:.1} s   online log from {}   ({} commits, {} archived logs, store {}{})\n",
            if self.pass { "PASS" } else { "FAIL" },
            self.rpo_commits,
            self.rpo_seconds,
            self.rto_seconds,
            self.online_source,
            self.commits,
            self.archived_logs,
            self.store,
            match (self.wipe_backup_host, self.collectors) {
                (true, 1) => "; backup host wiped at the crash".to_string(),
                (true, n) => format!("; backup host 1 of {n} wiped at the crash"),
                (false, 1) => String::new(),
                (false, n) => format!("; {n} collectors"),
            } + &if self.threads > 1 {
                format!("; {} redo threads", self.threads)
            } else {
                String::new()
            }
        ));
    }
}

impl DrillReport {
    /// The last phase: the report from what every other phase found, written to
    /// `drill-report.json` in the drill's directory.
    pub(super) fn write(
        stage: &Stage,
        crash: &Crash,
        truth: &Truth,
        recovery: Recovery,
        verdict: Verdict,
        evidence: Evidence,
    ) -> Result<DrillReport, DrillError> {
        let opts = stage.opts;
        let (online_source, online_source_reason) = online_source(&recovery);
        let from_worm: usize = recovery.threads.iter().map(|r| r.from_worm.len()).sum();
        let shipped_not_sealed: usize = recovery.threads.iter().map(|r| r.shipped_not_sealed).sum();
        let report = DrillReport {
            pass: verdict.checks.iter().all(|c| c.ok),
            store: stage.store_name.clone(),
            wipe_backup_host: opts.wipe_backup_host,
            collectors: opts.collectors.max(1),
            threads: stage.threads,
            per_thread: per_thread(&recovery, &verdict),
            rpo_commits: verdict.lost,
            rpo_seconds: verdict.rpo_seconds,
            online_source,
            online_source_reason,
            rto_seconds: recovery.rto,
            seal_interval_seconds: opts.seal_interval.as_secs_f64(),
            archived_from_sealed_manifest: from_worm - shipped_not_sealed,
            archived_shipped_not_sealed: shipped_not_sealed,
            workload_seconds: crash.workload_seconds,
            rate_bytes_per_second: opts.rate,
            redo_bytes_per_second: crash.redo_rate,
            commits: truth.commits.len(),
            rollbacks: truth.rollbacks(),
            archived_logs: truth.archived_logs(),
            last_commit: truth.commits.last().map(|c| (c.0.clone(), c.1)),
            last_commit_durable_after_ms: crash.durable_after,
            crashed_at_unix: crash.at_unix,
            attack: evidence.actions,
            recovery: recovery.steps,
            checks: verdict.checks,
            processes: evidence.processes,
            tables: verdict.tables,
            dir: stage.layout.root.clone(),
        };
        let json = stage.layout.root.join("drill-report.json");
        fs::write(
            &json,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
        .map_err(|e| DrillError::io(&json, e))?;
        Ok(report)
    }
}

/// Where the rebuilt online logs came from, and why: one source when every thread's log came
/// from the same kind of copy; else each thread's.
fn online_source(recovery: &Recovery) -> (String, String) {
    let threads = &recovery.threads;
    let sources: BTreeSet<&str> = threads.iter().map(|r| r.online_source.as_str()).collect();
    match (sources.len(), threads.as_slice()) {
        (1, [r, ..]) => (
            r.online_source.clone(),
            threads
                .iter()
                .map(|r| r.online_source_reason.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => (
            threads
                .iter()
                .map(|r| format!("thread {}: {}", r.thread, r.online_source))
                .collect::<Vec<_>>()
                .join(", "),
            threads
                .iter()
                .map(|r| format!("thread {}: {}", r.thread, r.online_source_reason))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    }
}

/// Each redo thread's line of the report: what recovery brought back and what the referee found.
fn per_thread(recovery: &Recovery, verdict: &Verdict) -> Vec<ThreadReport> {
    recovery
        .threads
        .iter()
        .zip(&verdict.per_thread)
        .map(|(r, t)| ThreadReport {
            thread: r.thread,
            commits: t.commits,
            rpo_commits: t.lost,
            last_commit: t.last_commit.clone(),
            recovered_last_commit: r.record["last_commit_xid"].as_str().map(|x| {
                (
                    x.to_string(),
                    r.record["last_commit_scn"].as_u64().unwrap_or(0),
                )
            }),
            online_log: r.online_path.clone(),
            online_source: r.online_source.clone(),
        })
        .collect()
}
