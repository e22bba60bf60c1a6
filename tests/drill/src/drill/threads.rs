//! One redo thread of the drill's database (RAC: one per instance): what recovery brought
//! back for it (its archived logs from WORM or rebuilt by the collector, its rebuilt online
//! log) and the referee's checks of it against that thread's ground truth. Sequences are per
//! thread, so every map here is one thread's; the checks of the whole database (per-table
//! counts, the audit, the script) are in `checks.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::DrillError;
use super::procs::{Usage, run_ok_measured};
use super::referee::{self, Check, Recovered, Replay, ThreadLogs};
use crate::simulate::journal::JournalEntry;

/// What recovery brought back for one thread.
#[derive(Debug, Clone)]
pub struct ThreadRecovery {
    /// The redo thread.
    pub thread: u16,
    /// Its stream, `db<dbid>-rl<resetlogs id>-t<thread>`.
    pub stream: String,
    /// Its record in `restore-online.json`.
    pub record: serde_json::Value,
    /// The rebuilt online log's sequence, path and size (with padding).
    pub online_seq: u32,
    /// The rebuilt online log.
    pub online_path: PathBuf,
    pub online_size: u64,
    /// `collector` or `worm`, as `restore online` recorded it.
    pub online_source: String,
    /// Why that source.
    pub online_source_reason: String,
    /// Archived logs restored from WORM: sequence -> (path, SHA-256 recorded).
    pub from_worm: BTreeMap<u32, (PathBuf, String)>,
    /// Of those, the ones shipped but not yet sealed in a manifest.
    pub shipped_not_sealed: usize,
    /// Sequences between the first restored one and the online log that WORM lacks.
    pub missing: Vec<u32>,
    /// Archived logs rebuilt by the collector: sequence -> (path, size).
    pub rebuilt_archived: BTreeMap<u32, (PathBuf, u64)>,
    /// What recovery applies, in order (set by [`ThreadRecovery::plan`]).
    pub recovered: Vec<Recovered>,
    /// Why recovery stops before the online log, if it does.
    pub applied_note: Option<String>,
}

/// Every thread's record in `restore-online.json`, by thread.
pub fn online_records(dest: &Path) -> Result<BTreeMap<u16, serde_json::Value>, DrillError> {
    let path = dest.join("restore-online.json");
    let text = fs::read_to_string(&path).map_err(|e| DrillError::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| DrillError::Step(format!("{}: {e}", path.display())))?;
    Ok(v["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((u16::try_from(r["thread"].as_u64()?).ok()?, r.clone())))
        .collect())
}

impl ThreadRecovery {
    /// Thread `thread`'s part of what `restore archive` (`archive_record`) and `restore
    /// online` (`record`) wrote.
    pub fn gather(
        thread: u16,
        stream: String,
        record: serde_json::Value,
        archive_record: &serde_json::Value,
    ) -> ThreadRecovery {
        let mut from_worm = BTreeMap::new();
        let mut shipped_not_sealed = 0;
        for f in archive_record["files"].as_array().into_iter().flatten() {
            if f["thread"].as_u64() != Some(u64::from(thread)) {
                continue;
            }
            if f["shipped_not_sealed"].as_bool() == Some(true) {
                shipped_not_sealed += 1;
            }
            let seq = f["sequence"].as_u64().unwrap_or(0) as u32;
            let path = PathBuf::from(f["path"].as_str().unwrap_or(""));
            from_worm.insert(seq, (path, f["sha256"].as_str().unwrap_or("").to_string()));
        }
        let online_seq = record["sequence"].as_u64().unwrap_or(0) as u32;
        // Archived logs not (yet) recorded in WORM's manifest when the host died: rebuilt
        // from the collector. When the backup host is gone, nothing rebuilds them: `restore
        // online` rebuilds only the online log from the pieces in WORM (the checks name them).
        let first = from_worm.keys().next().copied().unwrap_or(online_seq);
        let missing: Vec<u32> = (first..online_seq)
            .filter(|s| !from_worm.contains_key(s))
            .collect();
        ThreadRecovery {
            thread,
            stream,
            online_path: PathBuf::from(record["path"].as_str().unwrap_or("")),
            online_size: record["size"].as_u64().unwrap_or(0),
            online_source: record["source"]
                .as_str()
                .unwrap_or("not recorded")
                .to_string(),
            online_source_reason: record["source_reason"].as_str().unwrap_or("").to_string(),
            record,
            online_seq,
            from_worm,
            shipped_not_sealed,
            missing,
            rebuilt_archived: BTreeMap::new(),
            recovered: Vec::new(),
            applied_note: None,
        }
    }

    /// Rebuilds the archived logs WORM lacks from the collector (`collector_config`) into
    /// `dest`.
    pub fn rebuild_missing(
        &mut self,
        collector: &Path,
        collector_config: &str,
        dest: &Path,
    ) -> Result<Usage, DrillError> {
        let mut total = Usage::default();
        for s in &self.missing {
            let out_path = dest.join(format!("rebuilt_{}_{s}.arc", self.thread));
            let (out, usage) = run_ok_measured(
                collector,
                &[
                    "rebuild",
                    "--config",
                    collector_config,
                    "--stream",
                    &self.stream,
                    "--sequence",
                    &s.to_string(),
                    "--out",
                    &out_path.to_string_lossy(),
                    "--json",
                ],
                &[],
            )?;
            let v: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| DrillError::Step(format!("rebuild report: {e}")))?;
            let size = v["size"].as_u64().unwrap_or(0);
            self.rebuilt_archived.insert(*s, (out_path, size));
            total.cpu_seconds += usage.cpu_seconds;
            total.peak_rss_bytes = total.peak_rss_bytes.max(usage.peak_rss_bytes);
        }
        Ok(total)
    }

    /// What recovery applies: the archived logs in sequence order up to the first gap, then
    /// the online log if it is the next one (a log after a gap cannot be applied).
    pub fn plan(&mut self) {
        let archived_files: BTreeMap<u32, &PathBuf> = self
            .from_worm
            .iter()
            .map(|(s, (p, _))| (*s, p))
            .chain(self.rebuilt_archived.iter().map(|(s, (p, _))| (*s, p)))
            .collect();
        let mut recovered: Vec<Recovered> = Vec::new();
        let mut applied_note = None;
        for (seq, path) in &archived_files {
            if let Some(prev) = recovered.last()
                && prev.sequence + 1 != *seq
            {
                applied_note = Some(format!(
                    "recovery stops after log {}: log {} is missing",
                    prev.sequence,
                    prev.sequence + 1
                ));
                break;
            }
            recovered.push(Recovered {
                sequence: *seq,
                path: (*path).clone(),
            });
        }
        let online_seq = self.online_seq;
        if applied_note.is_none() {
            match recovered.last().map(|r| r.sequence) {
                Some(last) if online_seq <= last => {
                    applied_note = Some(format!(
                        "the rebuilt online log {online_seq} is not applied: archived log {online_seq} was recovered whole"
                    ));
                }
                Some(last) if online_seq > last + 1 => {
                    applied_note = Some(format!(
                        "recovery stops after log {last}: log {} is missing before the online log {online_seq}",
                        last + 1
                    ));
                }
                _ => recovered.push(Recovered {
                    sequence: online_seq,
                    path: self.online_path.clone(),
                }),
            }
        }
        self.recovered = recovered;
        self.applied_note = applied_note;
    }

    /// True when recovery of this thread cannot reach its online log (a gap, or archived
    /// logs only the collector could rebuild).
    pub fn gap(&self) -> bool {
        self.applied_note.is_some() || !self.missing.is_empty()
    }
}

/// What the referee found for one thread.
#[derive(Debug, Clone)]
pub struct ThreadChecks {
    pub thread: u16,
    /// Its checks (named with the thread when the database has several).
    pub checks: Vec<Check>,
    /// Replay of its recovered redo.
    pub replay: Replay,
    /// Its committed transactions in the journal.
    pub commits: usize,
    /// Of those, recovered in order (the journal's first ones).
    pub matched: usize,
    /// Lost (after the last recovered commit).
    pub lost: usize,
    /// The first recovered commit that differs from the journal, if any.
    pub diff: Option<String>,
    /// Commit-time span of the lost commits (database clock, whole seconds).
    pub rpo_seconds: f64,
    /// Commit time (Unix seconds) of the first lost commit.
    pub first_lost_time: Option<i64>,
    /// Its last commit in the journal (xid, SCN).
    pub last_commit: Option<(String, u64)>,
}

/// How the checks are told apart: the single-instance names, or with the thread.
pub fn check_name(base: &str, thread: u16, threads: usize) -> String {
    if threads > 1 {
        format!("{base} (thread {thread})")
    } else {
        base.to_string()
    }
}

/// The referee's checks of one thread: its archived logs byte for byte, its online log's
/// prefix, its commits in order, the rebuilt online log's commits, that its redo parses.
/// `journal` is the whole journal (this thread's entries are taken from it); `no_survivor`:
/// the backup host was wiped with no other collector (WORM may end inside the thread's redo).
pub fn check(
    r: &ThreadRecovery,
    logs: &ThreadLogs,
    journal: &[JournalEntry],
    table_names: &std::collections::HashMap<u32, String>,
    no_survivor: bool,
    threads: usize,
    start_time: i64,
) -> Result<ThreadChecks, DrillError> {
    let name = |base: &str| check_name(base, r.thread, threads);
    let mine: Vec<JournalEntry> = journal
        .iter()
        .filter(|e| e.thread == r.thread)
        .cloned()
        .collect();
    let jcommits = referee::journal_commits(&mine);
    let replay = referee::replay(&r.recovered, table_names);
    let (matched, lost, diff) = referee::compare_commits(&replay.commits, &jcommits);
    let jtimes: Vec<i64> = mine
        .iter()
        .filter(|e| !e.rollback)
        .map(|e| e.unix_time)
        .collect();
    let rpo_seconds = if lost == 0 {
        0.0
    } else {
        let to = jtimes.last().copied().unwrap_or(start_time);
        let from = matched
            .checked_sub(1)
            .and_then(|i| jtimes.get(i).copied())
            .unwrap_or(start_time);
        (to - from).max(0) as f64
    };
    let archived = ArchivedLogs::tally(r, logs, no_survivor)?;
    let checks = vec![
        archived.check(&name("archived logs byte-identical"), r, logs),
        online_prefix_check(r, logs, &name("online log prefix identical"))?,
        commits_check(
            &name("commits recovered = journal"),
            r,
            (matched, lost, &diff),
            jcommits.len(),
            no_survivor,
        ),
        online_commits_check(
            &name("rebuilt online log commits = journal"),
            r,
            &jcommits,
            table_names,
            no_survivor,
        ),
        parses_check(&name("recovered redo parses cleanly"), r, &replay),
    ];
    Ok(ThreadChecks {
        thread: r.thread,
        checks,
        commits: jcommits.len(),
        matched,
        lost,
        diff,
        rpo_seconds,
        first_lost_time: jtimes.get(matched).copied().filter(|_| lost > 0),
        last_commit: jcommits.last().map(|c| (c.0.clone(), c.1)),
        replay,
    })
}

/// What the referee found of one thread's archived logs.
#[derive(Default)]
struct ArchivedLogs {
    /// Byte-identical to the database's.
    identical: usize,
    /// What is wrong, one line a log.
    problems: Vec<String>,
    /// The log the rebuilt online log stands for (checked as the online log).
    as_online: Option<u32>,
    /// Logs after the last commit in WORM, lost with the last seal interval.
    lost_logs: Vec<u32>,
}

impl ArchivedLogs {
    /// Archived logs, byte for byte. With the backup host wiped, WORM may end inside an
    /// archived log or before it: the log the rebuilt online log stands for is checked as the
    /// online log (to its last commit); a log after that point, in neither WORM's archive nor
    /// its pieces, went with the last seal interval: it is named, its commits are in the RPO.
    fn tally(
        r: &ThreadRecovery,
        logs: &ThreadLogs,
        no_survivor: bool,
    ) -> Result<ArchivedLogs, DrillError> {
        let online_seq = r.online_seq;
        // The point recovery reaches: the sequence of the last file it applies, and whether
        // that is the rebuilt online log (applied to its last commit, not to its end).
        let point_seq = r.recovered.last().map_or(0, |x| x.sequence);
        let online_applied = r.applied_note.is_none() && point_seq == online_seq;
        let mut found = ArchivedLogs::default();
        for (seq, truth_path) in &logs.archived {
            let want = logs.archived_sha256.get(seq).cloned().unwrap_or_default();
            let problem = if let Some((path, sha)) = r.from_worm.get(seq) {
                let got = referee::sha256_file(path)?;
                (got != want || *sha != want)
                    .then(|| format!("log {seq}: SHA-256 {got}, the database wrote {want}"))
            } else if let Some((path, size)) = r.rebuilt_archived.get(seq) {
                rebuilt_difference(*seq, path, *size, truth_path)?
            } else if no_survivor && online_applied && *seq == online_seq {
                found.as_online = Some(*seq);
                continue;
            } else if no_survivor && *seq > point_seq.max(online_seq) {
                found.lost_logs.push(*seq);
                continue;
            } else if r.missing.contains(seq) && no_survivor {
                Some(format!(
                    "log {seq}: not recovered (not in WORM's sealed manifest; with the backup host gone nothing rebuilds it from the pieces)"
                ))
            } else {
                Some(format!("log {seq}: not recovered"))
            };
            match problem {
                None => found.identical += 1,
                Some(p) => found.problems.push(p),
            }
        }
        Ok(found)
    }

    fn check(&self, name: &str, r: &ThreadRecovery, logs: &ThreadLogs) -> Check {
        let (identical, as_online, lost_logs) = (self.identical, self.as_online, &self.lost_logs);
        Check::new(
            name,
            self.problems.is_empty()
                && identical + usize::from(as_online.is_some()) + lost_logs.len()
                    == logs.archived.len(),
            if self.problems.is_empty() {
                format!(
                    "{identical} of {} ({} from WORM by SHA-256, {} rebuilt by the collector){}{}",
                    logs.archived.len(),
                    r.from_worm.len(),
                    r.rebuilt_archived.len(),
                    match as_online {
                        Some(seq) => format!(
                            "; log {seq}: rebuilt from WORM to its last commit (the online log check)"
                        ),
                        None => String::new(),
                    },
                    if lost_logs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; after the last commit in WORM, lost with the last seal interval: {lost_logs:?} (their commits are in the RPO)"
                        )
                    }
                )
            } else {
                self.problems.join("; ")
            },
        )
    }
}

/// How an archived log the collector rebuilt (`path`, `size` bytes) differs from the
/// database's (`truth`), if it does.
fn rebuilt_difference(
    seq: u32,
    path: &Path,
    size: u64,
    truth: &Path,
) -> Result<Option<String>, DrillError> {
    let a = fs::read(path).map_err(|e| DrillError::io(path, e))?;
    let b = fs::read(truth).map_err(|e| DrillError::io(truth, e))?;
    // An archived copy's blocks 0 and 1 (block count, next SCN) are written at the
    // switch; the stream has the online log's: compare from block 2, to the end.
    if b.len() as u64 != size {
        return Ok(Some(format!(
            "log {seq} (rebuilt): {size} bytes, the database archived {}",
            b.len()
        )));
    }
    Ok(referee::first_difference(&a, &b, 1024, size as usize)
        .map(|at| format!("log {seq} (rebuilt): differs at byte {at}")))
}

/// Every committed transaction of the thread, in order: what recovery brought back is the
/// journal's first ones (`matched`, `lost`, the first difference); losing some is allowed only
/// when the backup host is gone.
fn commits_check(
    name: &str,
    r: &ThreadRecovery,
    (matched, lost, diff): (usize, usize, &Option<String>),
    commits: usize,
    no_survivor: bool,
) -> Check {
    let mut detail = match diff {
        Some(d) => d.clone(),
        None if lost == 0 => format!("{matched} of {commits} committed transactions, in order"),
        None => format!(
            "the first {matched} of {commits} committed transactions, in order; the last {lost} lost"
        ),
    };
    if let Some(n) = &r.applied_note {
        detail.push_str(&format!("; {n}"));
    }
    Check::new(name, diff.is_none() && (lost == 0 || no_survivor), detail)
}

/// The rebuilt online log's own commits: the journal's in that log (all of them; with the
/// backup host wiped, the journal's first ones, through the last commit in WORM).
fn online_commits_check(
    name: &str,
    r: &ThreadRecovery,
    jcommits: &[(String, u64, u32)],
    table_names: &std::collections::HashMap<u32, String>,
    no_survivor: bool,
) -> Check {
    let online_seq = r.online_seq;
    let r_online = referee::replay(
        &[Recovered {
            sequence: online_seq,
            path: r.online_path.clone(),
        }],
        table_names,
    )
    .commits;
    let j_online: Vec<_> = jcommits
        .iter()
        .filter(|c| c.2 == online_seq)
        .cloned()
        .collect();
    let last_xid = r.record["last_commit_xid"].as_str().unwrap_or("-");
    let online_ok = if no_survivor {
        j_online.starts_with(&r_online) && r_online.last().is_some_and(|c| c.0 == last_xid)
    } else {
        j_online == r_online
    };
    Check::new(
        name,
        online_ok,
        format!(
            "log {online_seq}: {} commits rebuilt, the journal has {} (last {} at SCN {})",
            r_online.len(),
            j_online.len(),
            last_xid,
            r.record["last_commit_scn"].as_u64().unwrap_or(0)
        ),
    )
}

/// The recovered redo parses without a problem.
fn parses_check(name: &str, r: &ThreadRecovery, replay: &Replay) -> Check {
    Check::new(
        name,
        replay.problems.is_empty(),
        if replay.problems.is_empty() {
            format!(
                "{} files; {} rollback compensation changes (11.x + 5.6) set aside",
                r.recovered.len(),
                replay.compensations
            )
        } else {
            replay.problems.join("; ")
        },
    )
}

/// The online log: the database's bytes up to the last commit the rebuilt log holds.
fn online_prefix_check(
    r: &ThreadRecovery,
    logs: &ThreadLogs,
    name: &str,
) -> Result<Check, DrillError> {
    let online_seq = r.online_seq;
    let Some(src) = logs.online.get(&online_seq) else {
        return Ok(Check::new(
            name,
            false,
            format!("the database had no online log {online_seq} at the crash"),
        ));
    };
    let a = fs::read(&r.online_path).map_err(|e| DrillError::io(&r.online_path, e))?;
    let b = fs::read(src).map_err(|e| DrillError::io(src, e))?;
    let size = r.online_size as usize;
    // A log that had switched by the crash (WORM may end in one) had its header's block 1
    // (next SCN, time) rewritten at the switch, after the stream carried it: compare such a
    // log from block 2, as an archived one.
    let from = if logs.archived.contains_key(&online_seq) {
        1024
    } else {
        0
    };
    Ok(match referee::first_difference(&a, &b, from, size) {
        None => {
            // The record's SHA-256 covers the log's bytes up to the cut.
            let want = r.record["sha256"].as_str().unwrap_or("");
            let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&a[..size]));
            Check::new(
                name,
                got == want,
                format!(
                    "log {online_seq} from {}: {size} bytes{}, SHA-256 {}",
                    r.online_source,
                    if from > 0 {
                        " (from block 2: it had switched, its header was rewritten)"
                    } else {
                        ""
                    },
                    got.get(..16).unwrap_or(&got)
                ),
            )
        }
        Some(at) => Check::new(
            name,
            false,
            format!("log {online_seq}: differs at byte {at} of {size}"),
        ),
    })
}

/// The journal's entries through each thread's last recovered commit (`matched` of each
/// thread's commits; rollbacks up to there kept), in journal order: what the per-table
/// counts are compared with when WORM ends inside the redo.
pub fn journal_through(
    journal: &[JournalEntry],
    matched: &BTreeMap<u16, usize>,
) -> Vec<JournalEntry> {
    // Per thread: the index (in its own entries) just past its `matched`-th commit.
    let mut ends: BTreeMap<u16, usize> = BTreeMap::new();
    for (&t, &m) in matched {
        let end = journal
            .iter()
            .filter(|e| e.thread == t)
            .enumerate()
            .filter(|(_, e)| !e.rollback)
            .nth(m.wrapping_sub(1))
            .map_or(0, |(i, _)| i + 1);
        ends.insert(t, end);
    }
    let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
    journal
        .iter()
        .filter(|e| {
            let n = seen.entry(e.thread).or_default();
            *n += 1;
            *n <= ends.get(&e.thread).copied().unwrap_or(0)
        })
        .cloned()
        .collect()
}

/// The bound on a lost commit's age with the backup host wiped: the collector's seal interval
/// plus the upload in flight.
pub fn wiped_rpo_bound() -> Duration {
    super::setup::WORM_SEAL_INTERVAL + Duration::from_secs(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(thread: u16, n: u32, rollback: bool) -> JournalEntry {
        JournalEntry {
            xid: format!("{thread}.{n}.1"),
            usn: thread,
            slot: n as u16,
            sqn: 1,
            thread,
            sequence: 1,
            scn: u64::from(n),
            time: String::new(),
            unix_time: 0,
            rollback,
            block: 2,
            offset: 16,
            begin_scn: u64::from(n),
            table: "ACCOUNTS".into(),
            data_object_id: 74_001,
            row_ids: Vec::new(),
            op_count: 1,
            inserts: 1,
            updates: 0,
            deletes: 0,
            long: false,
        }
    }

    #[test]
    fn the_journal_through_each_threads_last_recovered_commit() {
        // Threads interleaved; thread 1 recovered through its 2nd commit, thread 2 through
        // its 1st; a rollback of thread 1 before its 2nd commit is kept, the one after not.
        let j = vec![
            entry(1, 1, false),
            entry(2, 2, false),
            entry(1, 3, true),
            entry(1, 4, false),
            entry(2, 5, false),
            entry(1, 6, true),
            entry(1, 7, false),
        ];
        let kept = journal_through(&j, &BTreeMap::from([(1, 2), (2, 1)]));
        let xids: Vec<&str> = kept.iter().map(|e| e.xid.as_str()).collect();
        assert_eq!(xids, ["1.1.1", "2.2.1", "1.3.1", "1.4.1"]);
        // Nothing recovered of a thread: none of its entries.
        let kept = journal_through(&j, &BTreeMap::from([(1, 0), (2, 2)]));
        let xids: Vec<&str> = kept.iter().map(|e| e.xid.as_str()).collect();
        assert_eq!(xids, ["2.2.1", "2.5.1"]);
    }

    #[test]
    fn checks_are_named_with_the_thread_only_on_rac() {
        assert_eq!(check_name("RPO = 0", 1, 1), "RPO = 0");
        assert_eq!(check_name("RPO = 0", 2, 2), "RPO = 0 (thread 2)");
    }
}
