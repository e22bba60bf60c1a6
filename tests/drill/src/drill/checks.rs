//! The referee's checks of the whole database against the ground truth: the WORM attempts
//! refused, each thread's own checks ([`threads::check`]), the script naming every online
//! log, the per-table counts, the paper's tables, the audit, and RPO (0, or with the backup
//! host wiped within one seal interval plus the upload in flight).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use super::attack::Action;
use super::crash::Crash;
use super::recovery::{Audit, Recovery};
use super::referee::{self, Check, TableCounts, Truth};
use super::stage::Stage;
use super::threads::{self, ThreadChecks, ThreadRecovery};
use super::{DrillError, Evidence, TableRow, setup};
use crate::simulate::journal::JournalEntry;

/// What the referee found.
pub struct Verdict {
    /// Every check, in the report's order.
    pub checks: Vec<Check>,
    /// Each thread's findings, from thread 1.
    pub per_thread: Vec<ThreadChecks>,
    /// The per-table comparison.
    pub tables: Vec<TableRow>,
    /// Commits lost, every thread's.
    pub lost: usize,
    /// Commit-time span of the lost commits (the longest of the threads').
    pub rpo_seconds: f64,
}

/// The checks' phase.
pub fn judge(
    stage: &Stage,
    truth: &Truth,
    recovery: &Recovery,
    crash: &Crash,
    evidence: &Evidence,
    say: &mut dyn FnMut(&str),
) -> Result<Verdict, DrillError> {
    say("==> [5/5] the referee's checks against the ground truth");
    let mut checks = Vec::new();
    if stage.opts.s3.is_some() {
        checks.push(worm_attempts_refused(&evidence.actions));
    }
    // Per redo thread: every committed transaction of the thread, in order: what recovery
    // brought back is the thread's first commits in the journal; the rest is lost (RPO).
    let mut per = Vec::new();
    for r in &recovery.threads {
        let logs = truth.threads.get(&r.thread).cloned().unwrap_or_default();
        let tc = threads::check(
            r,
            &logs,
            &truth.journal,
            &stage.table_names,
            stage.no_survivor,
            recovery.threads.len(),
            stage.start_time,
        )?;
        checks.extend(tc.checks.iter().cloned());
        per.push(tc);
    }
    if recovery.script_code == 0 {
        checks.push(script_names_every_online_log(truth, recovery));
    }
    let (tables, counts) = table_counts(stage, truth, &per);
    checks.push(counts);
    checks.push(paper_tables_busy(stage, truth));
    checks.push(audit_clean(&recovery.audit, &evidence.actions));
    if stage.no_survivor {
        checks.extend(rpo_within_seal_interval(crash, recovery, &per));
    } else {
        checks.extend(rpo_zero(stage, recovery, &per));
    }
    Ok(Verdict {
        checks,
        lost: per.iter().map(|t| t.lost).sum(),
        rpo_seconds: per.iter().map(|t| t.rpo_seconds).fold(0.0, f64::max),
        per_thread: per,
        tables,
    })
}

/// Every attempt on WORM with the database host's keys was refused.
fn worm_attempts_refused(actions: &[Action]) -> Check {
    let attempts: Vec<&Action> = actions.iter().filter(|a| a.refused.is_some()).collect();
    let allowed: Vec<&str> = attempts
        .iter()
        .filter(|a| a.refused == Some(false))
        .map(|a| a.action.as_str())
        .collect();
    Check::new(
        "WORM attempts refused",
        !attempts.is_empty() && allowed.is_empty(),
        if allowed.is_empty() {
            format!("{} of {} refused", attempts.len(), attempts.len())
        } else {
            format!("allowed: {}", allowed.join("; "))
        },
    )
}

/// The recovery script: every thread's rebuilt online log, by name, in a RECOVER LOGFILE.
fn script_names_every_online_log(truth: &Truth, recovery: &Recovery) -> Check {
    let recoveries = &recovery.threads;
    let jcommits = &truth.commits;
    let sql = fs::read_to_string(recovery.dest.join("recover.sql")).unwrap_or_default();
    let unnamed: Vec<String> = recoveries
        .iter()
        .filter(|r| !sql.contains(&format!("RECOVER LOGFILE '{}';", r.online_path.display())))
        .map(|r| format!("thread {} ({})", r.thread, r.online_path.display()))
        .collect();
    // What the script recovers: every commit, on any thread, at or before the earliest
    // of the threads' last commits (the point every thread's redo covers).
    let point = recoveries
        .iter()
        .filter_map(|r| r.record["last_commit_scn"].as_u64())
        .min()
        .unwrap_or(0);
    let reachable = jcommits.iter().filter(|c| c.1 <= point).count();
    Check::new(
        "recovery script names every online log",
        unnamed.is_empty(),
        if unnamed.is_empty() {
            format!(
                "recover.sql applies {}; it recovers through SCN {point}: {reachable} of {} commits{}",
                recoveries
                    .iter()
                    .map(|r| r
                        .online_path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned())
                    .collect::<Vec<_>>()
                    .join(" and "),
                jcommits.len(),
                if reachable < jcommits.len() {
                    format!(
                        ", the {} after it past the point every thread's redo covers (named per thread in the script)",
                        jcommits.len() - reachable
                    )
                } else {
                    String::new()
                }
            )
        } else {
            format!("recover.sql does not apply {}", unnamed.join(", "))
        },
    )
}

/// Per-table counts: against the whole journal; with the backup host wiped, against the
/// journal up to each thread's last recovered commit (only when the recovered commits are
/// exactly each thread's first ones: otherwise the whole journal, and the check fails with
/// the commits'). Returns the rows and the check.
fn table_counts(stage: &Stage, truth: &Truth, per: &[ThreadChecks]) -> (Vec<TableRow>, Check) {
    let mut replayed: BTreeMap<String, TableCounts> = BTreeMap::new();
    for t in per {
        for (name, c) in &t.replay.tables {
            let sum = replayed.entry(name.clone()).or_default();
            sum.transactions += c.transactions;
            sum.inserts += c.inserts;
            sum.updates += c.updates;
            sum.deletes += c.deletes;
            sum.rows = sum.inserts - sum.deletes;
        }
    }
    let diff_any = per.iter().any(|t| t.diff.is_some());
    let through;
    let journal_upto: &[JournalEntry] = if stage.no_survivor && !diff_any {
        through = threads::journal_through(
            &truth.journal,
            &per.iter().map(|t| (t.thread, t.matched)).collect(),
        );
        &through
    } else {
        &truth.journal
    };
    let matched: usize = per.iter().map(|t| t.matched).sum();
    let jt = referee::journal_tables(journal_upto);
    let names: BTreeSet<String> = jt.keys().chain(replayed.keys()).cloned().collect();
    let paper_names: BTreeSet<String> = stage.paper.iter().map(|t| t.name.clone()).collect();
    let rows: Vec<TableRow> = names
        .into_iter()
        .map(|n| TableRow {
            paper: paper_names.contains(&n),
            journal: jt.get(&n).copied().unwrap_or_default(),
            recovered: replayed.get(&n).copied().unwrap_or_default(),
            table: n,
        })
        .collect();
    let unequal: Vec<&str> = rows
        .iter()
        .filter(|r| r.journal != r.recovered)
        .map(|r| r.table.as_str())
        .collect();
    let check = Check::new(
        "per-table row counts equal",
        unequal.is_empty(),
        match (unequal.is_empty(), journal_upto.len() < truth.journal.len()) {
            (true, false) => format!("{} tables", rows.len()),
            (true, true) => format!(
                "{} tables, against the journal up to the last recovered commit (#{matched} of {})",
                rows.len(),
                truth.commits.len()
            ),
            (false, _) => format!("differ: {}", unequal.join(", ")),
        },
    );
    (rows, check)
}

/// The paper's tables: at least ten committed transactions each.
fn paper_tables_busy(stage: &Stage, truth: &Truth) -> Check {
    let paper = &stage.paper;
    let jt_all = referee::journal_tables(&truth.journal);
    let thin: Vec<String> = paper
        .iter()
        .filter(|t| jt_all.get(&t.name).is_none_or(|c| c.transactions < 10))
        .map(|t| t.name.clone())
        .collect();
    let transactions = || {
        paper
            .iter()
            .filter_map(|t| jt_all.get(&t.name).map(|c| c.transactions))
    };
    Check::new(
        "paper tables: >= 10 transactions each",
        thin.is_empty(),
        if thin.is_empty() {
            format!(
                "{} tables, {} to {} committed transactions each",
                paper.len(),
                transactions().min().unwrap_or(0),
                transactions().max().unwrap_or(0)
            )
        } else {
            format!("too few in {}", thin.join(", "))
        },
    )
}

/// The audit: clean, except for what the attacker's overwrite attempt left (a newer version
/// over a recorded object is evidence, and restore uses the recorded version).
fn audit_clean(audit: &Audit, actions: &[Action]) -> Check {
    let stacked = actions
        .iter()
        .filter(|a| a.refused == Some(true) && a.outcome.contains("new version"))
        .count();
    let expected: BTreeMap<String, usize> = if stacked > 0 {
        BTreeMap::from([("object_replaced".to_string(), stacked)])
    } else {
        BTreeMap::new()
    };
    let found = &audit.finding_kinds;
    Check::new(
        "audit of WORM, manifest and collector",
        audit.code != 2 && *found == expected,
        format!(
            "verdict {}{}",
            audit.verdict,
            if found.is_empty() {
                String::new()
            } else if *found == expected {
                format!(
                    ": exactly the {stacked} versions the attacker stacked (object_replaced), nothing else"
                )
            } else {
                format!(", findings {found:?}, expected {expected:?}")
            }
        ),
    )
}

/// With the backup host wiped and no other collector: what it had not yet sealed into WORM
/// is lost, and nothing older: every lost commit committed within one seal interval plus the
/// upload in flight of the crash. Its age on the wall clock is at most: the crash on the
/// database's clock, minus its commit time (whole seconds, rounded down), plus that clock's
/// lag. And every online log came from WORM.
fn rpo_within_seal_interval(
    crash: &Crash,
    recovery: &Recovery,
    per: &[ThreadChecks],
) -> Vec<Check> {
    let clock = crash.clock;
    let lost: usize = per.iter().map(|t| t.lost).sum();
    let diff_any = per.iter().any(|t| t.diff.is_some());
    let rpo_seconds = per.iter().map(|t| t.rpo_seconds).fold(0.0, f64::max);
    let bound = threads::wiped_rpo_bound();
    let oldest = per
        .iter()
        .filter_map(|t| t.first_lost_time)
        .map(|t| clock.at - t as f64 + clock.behind.as_secs_f64())
        .reduce(f64::max);
    let mut checks = vec![Check::new(
        "RPO within one seal interval plus the upload in flight",
        !diff_any && oldest.is_none_or(|age| age <= bound.as_secs_f64()),
        format!(
            "{lost} commits lost ({rpo_seconds:.0} s of commit time){}{}; bound: every lost commit committed within seal_interval {:.1} s + 2 s = {:.1} s of the crash (commit times in whole seconds, the database's clock {:.2} s behind the wall clock)",
            oldest.map_or(String::new(), |age| format!(
                ", the oldest at most {age:.2} s before the crash"
            )),
            if per.len() > 1 {
                format!(" ({})", per_thread_lost(per))
            } else {
                String::new()
            },
            setup::WORM_SEAL_INTERVAL.as_secs_f64(),
            bound.as_secs_f64(),
            clock.behind.as_secs_f64()
        ),
    )];
    checks.extend(online_sources(
        &recovery.threads,
        "online log source = worm",
        "worm",
    ));
    checks
}

/// RPO 0; with backup host 1 wiped, every rebuilt online log from a surviving collector.
fn rpo_zero(stage: &Stage, recovery: &Recovery, per: &[ThreadChecks]) -> Vec<Check> {
    let lost: usize = per.iter().map(|t| t.lost).sum();
    let diff_any = per.iter().any(|t| t.diff.is_some());
    let mut checks = vec![Check::new(
        "RPO = 0",
        lost == 0 && !diff_any,
        if per.len() > 1 {
            format!("{lost} commits lost ({})", per_thread_lost(per))
        } else {
            format!("{lost} commits lost")
        },
    )];
    if stage.opts.wipe_backup_host {
        checks.extend(online_sources(
            &recovery.threads,
            "online log from a surviving collector",
            "collector",
        ));
    }
    checks
}

/// One check a thread: its rebuilt online log came from `source`.
fn online_sources(recoveries: &[ThreadRecovery], name: &str, source: &str) -> Vec<Check> {
    recoveries
        .iter()
        .map(|r| {
            Check::new(
                &threads::check_name(name, r.thread, recoveries.len()),
                r.online_source == source,
                format!("{}: {}", r.online_source, r.online_source_reason),
            )
        })
        .collect()
}

fn per_thread_lost(per: &[ThreadChecks]) -> String {
    per.iter()
        .map(|t| format!("thread {}: {} of {} lost", t.thread, t.lost, t.commits))
        .collect::<Vec<_>>()
        .join(", ")
}
