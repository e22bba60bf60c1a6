//! `restore script`: the RMAN and SQL*Plus commands that recover the database from what
//! `restore archive` and `restore online` put on disk, stating the last recoverable point.
//!
//! ```text
//! DBA's last backup: datafiles, control file (the runbook)        the scripts only recover
//! recover.rman: CATALOG START WITH <restored archived logs>       and open
//!               RECOVER DATABASE UNTIL ... (RMAN picks the logs from the datafiles' checkpoint)
//!               [point in time inside the archived logs: OPEN RESETLOGS, the only script]
//! recover.sql:  WHENEVER SQLERROR CONTINUE (ORA-00279 / 00289 / 00308 ask for the next log)
//!               ALTER DATABASE RECOVER ... USING BACKUP CONTROLFILE, RECOVER LOGFILE
//!               <rebuilt online log per thread> UNTIL CHANGE <target>
//!               WHENEVER SQLERROR EXIT; V$DATAFILE_HEADER all at the target? ─► OPEN RESETLOGS
//! ```
//!
//! Where the two meet, per target:
//! - Last commit, one thread: RMAN `UNTIL SEQUENCE <online seq> THREAD <t>` (every archived
//!   log, none of the online log), SQL*Plus `UNTIL CHANGE <last commit SCN + 1>`.
//! - Last commit, several threads (RAC): Oracle merges the threads' redo in SCN order, so it
//!   applies a change only once every thread's redo is known up to its SCN. RMAN stops at
//!   `UNTIL SCN B`, B the lowest end of the threads' archived logs (the first SCN of the
//!   earliest online log); SQL*Plus applies, per thread, the archived logs still holding redo
//!   at or after B, then that thread's online log, which ends at its last commit L(t). So the
//!   target is `UNTIL CHANGE min L(t) + 1`: every transaction committed at or before it, on
//!   any thread; later commits of other threads are lost (they may depend on redo of the
//!   thread that ends there, which was not kept).
//! - A point in time (`UntilScn`, `UntilTime`) inside the archived logs: RMAN alone. An SCN
//!   past them (inside the online logs): as the last commit, bounded at that SCN.
//!
//! Invariants: a recovery that stopped short exits non-zero instead of opening the database
//! at an earlier point; RMAN never gets a list from sequence 1 (a newer backup would make
//! Oracle refuse it); every statement cites the Oracle documentation it relies on.
//!
//! Why two scripts: RMAN finds the archived logs it needs itself but cannot catalog the
//! partial, rebuilt online logs. No Oracle instance runs in this project's tests: the
//! scripts' structure is what is tested (below).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One restored archived log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedLogFile {
    /// Where it was restored.
    pub path: PathBuf,
    pub thread: u16,
    pub sequence: u32,
    pub first_scn: u64,
    /// Next SCN (first SCN of the next log of the thread).
    pub next_scn: u64,
}

/// One thread's online log, rebuilt to that thread's last commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineLogFile {
    /// Where it was written.
    pub path: PathBuf,
    pub thread: u16,
    pub sequence: u32,
    /// SCN of the last commit it holds.
    pub last_commit_scn: u64,
    /// XID of that commit (`usn.slot.sqn`).
    pub last_commit_xid: String,
    /// Time of that commit (ISO 8601), when the redo carries it.
    pub last_commit_time: Option<String>,
}

/// How far to recover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// To the last commit the collector holds (needs the online logs).
    LastCommit,
    /// Up to, not including, this SCN.
    UntilScn(u64),
    /// Up to this time (`YYYY-MM-DD HH24:MI:SS`, database time zone).
    UntilTime(String),
}

/// Everything the scripts are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInput {
    /// When the scripts were generated (RFC 3339).
    pub generated_at: String,
    /// Restored archived logs (any order; the scripts sort them).
    pub archived: Vec<ArchivedLogFile>,
    /// The rebuilt online logs, at most one per thread (any order).
    pub online: Vec<OnlineLogFile>,
    /// How far to recover.
    pub target: Target,
}

/// Why no script can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// Recovery to the last commit needs the rebuilt online log.
    #[error("recovery to the last commit needs the online log: run `restore online` first")]
    NoOnlineLog,
    /// Nothing was restored.
    #[error("no restored archived log and no online log: run `restore archive` first")]
    Nothing,
    /// A path cannot be quoted safely in SQL (it contains a quote or a newline).
    #[error("path {0:?} cannot be used in a script (quote or newline in it)")]
    BadPath(PathBuf),
    /// Two online logs for one thread.
    #[error("two online logs for thread {0}: keep one (`restore online` records one per thread)")]
    TwoOnlineLogs(u16),
    /// The archived log right before a thread's online log is not restored: recovery cannot
    /// reach the online log.
    #[error(
        "thread {thread}: the archived log sequence {missing}, right before the online log \
         (sequence {online}), was not restored: run `restore archive` (or find the log: gap)"
    )]
    NoLogBeforeOnline {
        thread: u16,
        /// The missing sequence.
        missing: u32,
        /// The online log's sequence.
        online: u32,
    },
    /// A time that is not `YYYY-MM-DD HH24:MI:SS` (it is written into the scripts).
    #[error("time {0:?} is not YYYY-MM-DD HH24:MI:SS")]
    BadTime(String),
    /// The SCN asked for lies past the last commit the online logs hold.
    #[error(
        "SCN {asked} is past the last recoverable commit (SCN {last}): recover to the last commit instead"
    )]
    PastLastCommit {
        /// The SCN asked for.
        asked: u64,
        /// The last recoverable commit.
        last: u64,
    },
}

/// Oracle's documentation, cited in the scripts' comments (titles and sections as in the 19c
/// library; the runbook cites the same).
mod cite {
    pub const CATALOG: &str =
        "Oracle Database Backup and Recovery Reference, CATALOG (START WITH ... NOPROMPT)";
    pub const UNTIL: &str = "Oracle Database Backup and Recovery Reference, untilClause (UNTIL SCN / UNTIL SEQUENCE ... THREAD / UNTIL TIME: noninclusive upper limits) and RECOVER";
    pub const DBPITR: &str = "Oracle Database Backup and Recovery User's Guide, Performing Database Point-in-Time Recovery; Performing Recovery with a Backup Control File";
    pub const RECOVER_SQL: &str = "Oracle Database SQL Language Reference, ALTER DATABASE, general_recovery (USING BACKUP CONTROLFILE, UNTIL CHANGE, LOGFILE, CANCEL)";
    pub const USER_MANAGED: &str = "Oracle Database Backup and Recovery User's Guide, Performing User-Managed Database Flashback and Recovery (Performing Incomplete Database Recovery)";
    pub const SIGNALS: &str = "Oracle Database Error Messages: ORA-00279 (change needed for thread), ORA-00289 (suggestion), ORA-00308 (cannot open archived log)";
    pub const WHENEVER: &str =
        "SQL*Plus User's Guide and Reference, WHENEVER SQLERROR (EXIT / CONTINUE)";
    pub const DATAFILE_HEADER: &str = "Oracle Database Reference, V$DATAFILE_HEADER (CHECKPOINT_CHANGE#, FUZZY, ERROR) and V$DATAFILE (ENABLED)";
    pub const RAC: &str = "Oracle Real Application Clusters Administration and Deployment Guide, Managing Backup and Recovery";
}

fn sql_path(p: &Path) -> Result<String, ScriptError> {
    let s = p.to_string_lossy();
    if s.contains('\'') || s.contains('\n') || s.contains('\r') {
        return Err(ScriptError::BadPath(p.to_path_buf()));
    }
    Ok(s.into_owned())
}

/// Where RMAN stops and how far SQL*Plus goes, worked out once for both scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// The `SET UNTIL ...;` of the RMAN script.
    rman_until: String,
    /// RMAN recovers to the target and opens: there is no SQL*Plus part.
    rman_opens: bool,
    /// The SQL*Plus part, when the target lies in the online logs.
    sql: Option<SqlPlan>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SqlPlan {
    /// `UNTIL CHANGE` of the recovery (noninclusive).
    until_change: u64,
    /// Every datafile's checkpoint must reach this SCN before `OPEN RESETLOGS`.
    reached: u64,
    /// The logs to apply, in the order Oracle asks for them.
    logs: Vec<SqlLog>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SqlLog {
    path: PathBuf,
    comment: String,
}

/// Per thread: the end of its archived logs (the highest next SCN) and its online log.
struct Threads<'a> {
    archived: BTreeMap<u16, Vec<&'a ArchivedLogFile>>,
    online: BTreeMap<u16, &'a OnlineLogFile>,
}

impl<'a> Threads<'a> {
    fn of(input: &'a ScriptInput) -> Result<Threads<'a>, ScriptError> {
        let mut archived: BTreeMap<u16, Vec<&ArchivedLogFile>> = BTreeMap::new();
        for a in &input.archived {
            archived.entry(a.thread).or_default().push(a);
        }
        for v in archived.values_mut() {
            v.sort_by_key(|a| a.sequence);
        }
        let mut online = BTreeMap::new();
        for o in &input.online {
            if online.insert(o.thread, o).is_some() {
                return Err(ScriptError::TwoOnlineLogs(o.thread));
            }
        }
        Ok(Threads { archived, online })
    }

    fn all(&self) -> BTreeSet<u16> {
        self.archived
            .keys()
            .chain(self.online.keys())
            .copied()
            .collect()
    }

    /// The first SCN of the thread's online log: the next SCN of the archived log before it.
    fn online_first_scn(&self, o: &OnlineLogFile) -> Result<u64, ScriptError> {
        let missing = o.sequence.saturating_sub(1);
        self.archived
            .get(&o.thread)
            .and_then(|v| v.iter().find(|a| a.sequence == missing))
            .map(|a| a.next_scn)
            .ok_or(ScriptError::NoLogBeforeOnline {
                thread: o.thread,
                missing,
                online: o.sequence,
            })
    }

    /// Where the thread's redo in archived logs ends: its online log's first SCN, or the
    /// highest next SCN of its archived logs (a thread without an online log).
    fn archive_end(&self, thread: u16) -> Result<u64, ScriptError> {
        match self.online.get(&thread) {
            Some(o) => self.online_first_scn(o),
            None => Ok(self
                .archived
                .get(&thread)
                .and_then(|v| v.iter().map(|a| a.next_scn).max())
                .unwrap_or(0)),
        }
    }

    /// The lowest end of the archived redo over every thread: RMAN can recover up to it
    /// without any online log.
    fn archive_bound(&self) -> Result<u64, ScriptError> {
        let mut b = u64::MAX;
        for t in self.all() {
            b = b.min(self.archive_end(t)?);
        }
        Ok(b)
    }

    /// The lowest last commit over the threads' online logs (see the module doc).
    fn last_commit(&self) -> Option<&'a OnlineLogFile> {
        self.online
            .values()
            .copied()
            .min_by_key(|o| (o.last_commit_scn, o.thread))
    }
}

fn plan(input: &ScriptInput) -> Result<Plan, ScriptError> {
    if input.archived.is_empty() && input.online.is_empty() {
        return Err(ScriptError::Nothing);
    }
    let th = Threads::of(input)?;
    let last = th.last_commit();
    match (&input.target, last) {
        (Target::LastCommit, None) => Err(ScriptError::NoOnlineLog),
        (Target::LastCommit, Some(last)) => {
            let until = last.last_commit_scn.saturating_add(1);
            online_plan(&th, until, last.last_commit_scn)
        }
        (Target::UntilScn(scn), Some(last)) if *scn > th.archive_bound()? => {
            let until_max = last.last_commit_scn.saturating_add(1);
            if *scn > until_max {
                return Err(ScriptError::PastLastCommit {
                    asked: *scn,
                    last: last.last_commit_scn,
                });
            }
            online_plan(&th, *scn, scn.saturating_sub(1))
        }
        (Target::UntilScn(scn), _) => Ok(Plan {
            rman_until: format!("SET UNTIL SCN {scn};"),
            rman_opens: true,
            sql: None,
        }),
        (Target::UntilTime(t), _) if !is_oracle_time(t) => Err(ScriptError::BadTime(t.clone())),
        (Target::UntilTime(t), _) => Ok(Plan {
            rman_until: format!("SET UNTIL TIME \"TO_DATE('{t}','YYYY-MM-DD HH24:MI:SS')\";"),
            rman_opens: true,
            sql: None,
        }),
    }
}

/// `YYYY-MM-DD HH24:MI:SS`: digits where digits go, nothing that could end the quoted date.
fn is_oracle_time(t: &str) -> bool {
    t.len() == 19
        && t.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
}

/// RMAN through the archived logs up to where the first online log begins, SQL*Plus on from
/// there through every thread's online log to `until` (noninclusive).
fn online_plan(th: &Threads<'_>, until: u64, reached: u64) -> Result<Plan, ScriptError> {
    let bound = th.archive_bound()?;
    let threads = th.all();
    let rman_until = match (threads.len(), th.online.values().next()) {
        (1, Some(o)) => {
            // Check that the archived log before it is there, as for several threads.
            th.online_first_scn(o)?;
            format!("SET UNTIL SEQUENCE {} THREAD {};", o.sequence, o.thread)
        }
        _ => format!("SET UNTIL SCN {bound};"),
    };
    // What RMAN leaves to apply: per thread, the archived logs that still hold redo at or
    // after the bound, then the online log. Oracle asks first for the log of each thread
    // that holds the bound (in thread order), then for each next log as the SCN-ordered
    // merge of the threads runs out of the previous one, i.e. by first SCN.
    let mut logs: Vec<(u64, u16, u32, SqlLog)> = Vec::new();
    for t in &threads {
        for a in th.archived.get(t).into_iter().flatten() {
            let past_online = th.online.get(t).is_some_and(|o| a.sequence >= o.sequence);
            if a.next_scn > bound && !past_online {
                logs.push((
                    a.first_scn.max(bound),
                    a.thread,
                    a.sequence,
                    SqlLog {
                        path: a.path.clone(),
                        comment: format!(
                            "thread {} sequence {} (archived, SCN {} to {}): redo at or after RMAN's bound",
                            a.thread, a.sequence, a.first_scn, a.next_scn
                        ),
                    },
                ));
            }
        }
        if let Some(o) = th.online.get(t) {
            logs.push((
                th.online_first_scn(o)?.max(bound),
                o.thread,
                o.sequence,
                SqlLog {
                    path: o.path.clone(),
                    comment: format!(
                        "thread {} sequence {}: the online log rebuilt to this thread's last commit (XID {} at SCN {})",
                        o.thread, o.sequence, o.last_commit_xid, o.last_commit_scn
                    ),
                },
            ));
        }
    }
    logs.sort_by_key(|(at, thread, seq, _)| (*at, *thread, *seq));
    Ok(Plan {
        rman_until,
        rman_opens: false,
        sql: Some(SqlPlan {
            until_change: until,
            reached,
            logs: logs.into_iter().map(|(_, _, _, l)| l).collect(),
        }),
    })
}

/// The last recoverable point in words, as both scripts state it in their heading.
pub fn last_recoverable(input: &ScriptInput) -> Result<String, ScriptError> {
    let th = Threads::of(input)?;
    match (&input.target, th.last_commit()) {
        (Target::LastCommit, None) => Err(ScriptError::NoOnlineLog),
        (Target::LastCommit, Some(o)) => {
            let mut s = format!(
                "last commit: SCN {} XID {} at {} (thread {} sequence {})",
                o.last_commit_scn,
                o.last_commit_xid,
                o.last_commit_time.as_deref().unwrap_or("unknown time"),
                o.thread,
                o.sequence
            );
            if th.online.len() > 1 {
                s.push_str(&format!(
                    ", the earliest of {} threads' last commits: every commit at or before it, on any thread",
                    th.online.len()
                ));
            }
            Ok(s)
        }
        (Target::UntilScn(s), _) => Ok(format!("every change before SCN {s}")),
        (Target::UntilTime(t), _) => Ok(format!("every change before {t}")),
    }
}

/// Per thread, for a recovery through the online logs: the last commit of that thread it
/// recovers, and the thread's commits past the common point that it cannot reach (a RAC
/// database recovers only as far as every thread's redo is known). Empty for a point inside
/// the archived logs, where RMAN alone recovers and no thread's online log is used.
pub fn per_thread(input: &ScriptInput) -> Result<Vec<String>, ScriptError> {
    let th = Threads::of(input)?;
    let Some(low) = th.last_commit() else {
        return Ok(Vec::new());
    };
    // The last SCN recovered (inclusive): the earliest last commit, or below a target SCN.
    let reached = match &input.target {
        Target::LastCommit => low.last_commit_scn,
        Target::UntilScn(scn) if *scn > th.archive_bound()? => {
            scn.saturating_sub(1).min(low.last_commit_scn)
        }
        Target::UntilScn(_) | Target::UntilTime(_) => return Ok(Vec::new()),
    };
    let why = if reached == low.last_commit_scn {
        format!(
            "the redo of thread {} is known only to its last commit, SCN {}",
            low.thread, low.last_commit_scn
        )
    } else {
        format!("the target stops recovery before SCN {}", reached + 1)
    };
    Ok(th
        .online
        .values()
        .map(|o| {
            if o.last_commit_scn <= reached {
                format!(
                    "thread {}: to its last commit, SCN {} XID {} at {} (sequence {}): nothing of it lost",
                    o.thread,
                    o.last_commit_scn,
                    o.last_commit_xid,
                    o.last_commit_time.as_deref().unwrap_or("unknown time"),
                    o.sequence
                )
            } else {
                format!(
                    "thread {}: to SCN {reached}; its commits after SCN {reached}, through its last commit SCN {} XID {} at {} (sequence {}), are not reachable: {}",
                    o.thread,
                    o.last_commit_scn,
                    o.last_commit_xid,
                    o.last_commit_time.as_deref().unwrap_or("unknown time"),
                    o.sequence,
                    why
                )
            }
        })
        .collect())
}

fn heading(input: &ScriptInput, comment: &str) -> Result<String, ScriptError> {
    let th = Threads::of(input)?;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "{comment} redovault recovery script, generated {}",
        input.generated_at
    );
    let _ = writeln!(
        h,
        "{comment} Last recoverable point: {}",
        last_recoverable(input)?
    );
    for line in per_thread(input)? {
        let _ = writeln!(h, "{comment}   {line}");
    }
    for (t, v) in &th.archived {
        let (lo, hi) = (
            v.first().map_or(0, |a| a.sequence),
            v.last().map_or(0, |a| a.sequence),
        );
        let _ = writeln!(
            h,
            "{comment} Archived logs: thread {t}, sequences {lo} to {hi} ({} files, SHA-256 verified)",
            v.len()
        );
    }
    for o in th.online.values() {
        let _ = writeln!(
            h,
            "{comment} Online log (rebuilt to the thread's last commit, SCN {}): thread {} sequence {}: {}",
            o.last_commit_scn,
            o.thread,
            o.sequence,
            o.path.display()
        );
    }
    let _ = writeln!(
        h,
        "{comment} Before running: spfile, password file and TDE keystore in place, the control file and\n\
         {comment} datafiles restored from the last backup, database MOUNTED (RMAN: STARTUP NOMOUNT;\n\
         {comment} RESTORE CONTROLFILE FROM ...; ALTER DATABASE MOUNT; RESTORE DATABASE;). RAC: one\n\
         {comment} instance, cluster_database=false. See deploy/docs/recovery-runbook.md, step 6."
    );
    Ok(h)
}

/// The RMAN script: catalog the restored archived logs, recover from the restored datafiles'
/// checkpoint up to the bound; for a point in time inside the archived logs, also open.
pub fn rman_script(input: &ScriptInput) -> Result<String, ScriptError> {
    let plan = plan(input)?;
    let mut s = heading(input, "#")?;
    let _ = writeln!(
        s,
        "# Run: rman target / cmdfile=recover.rman (RMAN stops at the first error)."
    );
    let mut dirs: Vec<String> = Vec::new();
    let mut sorted: Vec<&ArchivedLogFile> = input.archived.iter().collect();
    sorted.sort_by_key(|a| (a.first_scn, a.thread, a.sequence));
    for a in sorted {
        let d = a
            .path
            .parent()
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_default();
        let d = sql_path(Path::new(&d))?;
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    if !dirs.is_empty() {
        let _ = writeln!(
            s,
            "# Register the restored archived logs with the (backup) control file; RMAN lists and skips\n\
             # what is not an archived log (the .json records, the scripts, the rebuilt online logs).\n\
             # {}",
            cite::CATALOG
        );
    }
    for d in &dirs {
        let _ = writeln!(s, "CATALOG START WITH '{d}' NOPROMPT;");
    }
    let _ = writeln!(
        s,
        "# Recover from the checkpoint of the restored datafiles: RMAN picks the logs it needs.\n\
         # The UNTIL bound is noninclusive.\n# {}\n# {}",
        cite::UNTIL,
        cite::DBPITR
    );
    if plan.sql.is_some() {
        let _ = writeln!(
            s,
            "# The bound stops RMAN where the first rebuilt online log begins: recover.sql goes on\n\
             # from there through every thread's online log to the last recoverable point and opens."
        );
    }
    let _ = writeln!(s, "RUN {{\n  {}\n  RECOVER DATABASE;\n}}", plan.rman_until);
    if plan.rman_opens {
        let _ = writeln!(s, "ALTER DATABASE OPEN RESETLOGS;");
    } else {
        let _ = writeln!(
            s,
            "# Next: sqlplus / as sysdba @recover.sql (do not open the database here)."
        );
    }
    Ok(s)
}

/// The SQL*Plus script: from where `recover.rman` stopped, every thread's online log (and the
/// archived logs still needed with it), a check that recovery reached the target, `OPEN
/// RESETLOGS`. `None` when RMAN alone reaches the target (a point inside the archived logs).
pub fn sqlplus_script(input: &ScriptInput) -> Result<Option<String>, ScriptError> {
    let Some(sql) = plan(input)?.sql else {
        return Ok(None);
    };
    let mut s = heading(input, "--")?;
    let _ = writeln!(
        s,
        "-- Run after recover.rman: sqlplus / as sysdba @recover.sql\n\
         -- {}\n-- {}",
        cite::RECOVER_SQL,
        cite::USER_MANAGED
    );
    let _ = writeln!(
        s,
        "WHENEVER OSERROR EXIT FAILURE\nWHENEVER SQLERROR EXIT SQL.SQLCODE\n\
         -- The database must be mounted (this fails, and the script exits, otherwise).\n\
         SELECT name, dbid, controlfile_type, open_mode FROM v$database;"
    );
    let _ = writeln!(
        s,
        "-- Each statement below signals ORA-00279 / ORA-00289 by design, to ask for the next log\n\
         -- (and ORA-00308 when the log it suggests is not there): they must not exit the script.\n\
         -- {}\n-- {}\n\
         WHENEVER SQLERROR CONTINUE",
        cite::SIGNALS,
        cite::WHENEVER
    );
    let _ = writeln!(
        s,
        "ALTER DATABASE RECOVER DATABASE UNTIL CHANGE {} USING BACKUP CONTROLFILE;",
        sql.until_change
    );
    for l in &sql.logs {
        let _ = writeln!(
            s,
            "-- {}\nALTER DATABASE RECOVER LOGFILE '{}';",
            l.comment,
            sql_path(&l.path)?
        );
    }
    let _ = writeln!(
        s,
        "-- The rebuilt logs end at the last commit: Oracle then asks for the next sequence of the\n\
         -- thread whose redo ends first. End the recovery there (ORA-01112 if it already ended).\n\
         ALTER DATABASE RECOVER CANCEL;"
    );
    let _ = writeln!(
        s,
        "WHENEVER SQLERROR EXIT SQL.SQLCODE\n\
         -- Check before OPEN RESETLOGS: every online, read-write datafile recovered to SCN {r}, none fuzzy\n\
         -- or unreadable. A file listed here means recovery stopped short (a log refused or missing):\n\
         -- the division by zero then exits the script without opening the database.\n\
         -- {}\n\
         SELECT h.file#, h.name, h.checkpoint_change#, h.fuzzy, h.error, 1/0 AS recovery_short_of_target\n\
         \x20 FROM v$datafile_header h JOIN v$datafile d ON d.file# = h.file#\n\
         \x20WHERE d.enabled <> 'READ ONLY' AND h.status = 'ONLINE'\n\
         \x20  AND (h.checkpoint_change# < {r} OR h.fuzzy = 'YES' OR h.error IS NOT NULL);",
        cite::DATAFILE_HEADER,
        r = sql.reached
    );
    let threads = Threads::of(input)?;
    if threads.all().len() > 1 {
        let _ = writeln!(
            s,
            "-- RAC: opened by this one instance (cluster_database=false); set it back to true and start\n\
             -- the other instances afterwards. {}",
            cite::RAC
        );
    }
    let _ = writeln!(s, "ALTER DATABASE OPEN RESETLOGS;\nEXIT");
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(thread: u16, sequence: u32, first_scn: u64, next_scn: u64) -> ArchivedLogFile {
        ArchivedLogFile {
            path: format!("/restore/arch/arch_{thread}_{sequence}_1.arc").into(),
            thread,
            sequence,
            first_scn,
            next_scn,
        }
    }

    fn online(thread: u16, sequence: u32, last_commit_scn: u64) -> OnlineLogFile {
        OnlineLogFile {
            path: format!("/restore/online_{thread}_{sequence}_1.log").into(),
            thread,
            sequence,
            last_commit_scn,
            last_commit_xid: format!("7.{thread}.345"),
            last_commit_time: Some("2026-11-21T04:59:58Z".into()),
        }
    }

    /// One thread: sequences 1 to 11 archived, 12 online (last commit at SCN 3456).
    fn one_thread(target: Target) -> ScriptInput {
        let mut archived: Vec<_> = (1..=11)
            .map(|s| arch(1, s, u64::from(s) * 1000, u64::from(s + 1) * 1000))
            .collect();
        archived.reverse();
        ScriptInput {
            generated_at: "2026-11-21T05:00:00Z".into(),
            archived,
            online: vec![online(1, 12, 12_456)],
            target,
        }
    }

    /// Two threads. Thread 1: sequences 1..=3 (SCN 100..400), online 4 (last commit 470).
    /// Thread 2: sequences 1..=2 (SCN 100..250, 250..380), online 3 (last commit 455).
    fn two_threads(target: Target) -> ScriptInput {
        ScriptInput {
            generated_at: "2026-11-21T05:00:00Z".into(),
            archived: vec![
                arch(1, 3, 300, 400),
                arch(2, 2, 250, 380),
                arch(1, 1, 100, 200),
                arch(2, 1, 100, 250),
                arch(1, 2, 200, 300),
            ],
            online: vec![online(2, 3, 455), online(1, 4, 470)],
            target,
        }
    }

    /// The `WHENEVER SQLERROR` mode in force at each line that is a statement.
    fn statements_with_mode(sql: &str) -> Vec<(&'static str, &str)> {
        let mut mode = "none";
        let mut out = Vec::new();
        for line in sql.lines().map(str::trim) {
            if line.starts_with("--") || line.is_empty() {
                continue;
            }
            if line.starts_with("WHENEVER SQLERROR EXIT") {
                mode = "exit";
            } else if line.starts_with("WHENEVER SQLERROR CONTINUE") {
                mode = "continue";
            }
            out.push((mode, line));
        }
        out
    }

    fn is_recovery(stmt: &str) -> bool {
        stmt.starts_with("ALTER DATABASE RECOVER")
    }

    /// Positions of each needle in `s`, asserting each is found once and they are in order.
    fn assert_in_order(s: &str, needles: &[&str]) {
        let mut last = 0;
        for n in needles {
            assert_eq!(s.matches(n).count(), 1, "{n:?} once in:\n{s}");
            let at = s.find(n).unwrap();
            assert!(at >= last, "{n:?} out of order in:\n{s}");
            last = at;
        }
    }

    #[test]
    fn no_exit_on_error_ahead_of_a_statement_that_signals_by_design() {
        for input in [
            one_thread(Target::LastCommit),
            two_threads(Target::LastCommit),
            two_threads(Target::UntilScn(420)),
        ] {
            let sql = sqlplus_script(&input).unwrap().unwrap();
            let stmts = statements_with_mode(&sql);
            let recovery: Vec<_> = stmts.iter().filter(|(_, l)| is_recovery(l)).collect();
            assert!(recovery.len() >= 3, "{sql}");
            for (mode, line) in &recovery {
                assert_eq!(*mode, "continue", "{line} must not sit behind EXIT:\n{sql}");
            }
            // EXIT re-armed for the check and the open, which must stop the script.
            let (mode, _) = stmts
                .iter()
                .find(|(_, l)| l.contains("1/0 AS recovery_short_of_target"))
                .unwrap();
            assert_eq!(*mode, "exit", "{sql}");
            let (mode, _) = stmts
                .iter()
                .find(|(_, l)| *l == "ALTER DATABASE OPEN RESETLOGS;")
                .unwrap();
            assert_eq!(*mode, "exit", "{sql}");
            assert!(
                sql.trim_end()
                    .ends_with("ALTER DATABASE OPEN RESETLOGS;\nEXIT")
            );
        }
    }

    #[test]
    fn rman_recovers_from_the_backup_checkpoint_up_to_the_online_log() {
        let s = rman_script(&one_thread(Target::LastCommit)).unwrap();
        // One CATALOG of the directory, no file list, RMAN picks from the datafiles' checkpoint.
        assert_eq!(
            s.matches("CATALOG START WITH '/restore/arch/' NOPROMPT;")
                .count(),
            1
        );
        assert!(!s.contains(".arc"), "no per-file list: {s}");
        assert!(!s.contains("ARCHIVELOG"), "{s}");
        assert_in_order(
            &s,
            &[
                "CATALOG START WITH",
                "SET UNTIL SEQUENCE 12 THREAD 1;",
                "RECOVER DATABASE;",
            ],
        );
        assert!(!s.contains("OPEN RESETLOGS"), "recover.sql opens: {s}");
        assert!(s.contains("Backup and Recovery Reference"), "{s}");
        // Nothing of the archived logs is left to SQL*Plus: only the online log.
        let sql = sqlplus_script(&one_thread(Target::LastCommit))
            .unwrap()
            .unwrap();
        assert_eq!(sql.matches("RECOVER LOGFILE").count(), 1, "{sql}");
        assert!(
            !sql.contains("arch_1_1_1.arc"),
            "nothing from sequence 1: {sql}"
        );
        assert_in_order(
            &sql,
            &[
                "SELECT name, dbid",
                "WHENEVER SQLERROR CONTINUE",
                "ALTER DATABASE RECOVER DATABASE UNTIL CHANGE 12457 USING BACKUP CONTROLFILE;",
                "ALTER DATABASE RECOVER LOGFILE '/restore/online_1_12_1.log';",
                "ALTER DATABASE RECOVER CANCEL;",
                "checkpoint_change# < 12456",
                "ALTER DATABASE OPEN RESETLOGS;",
            ],
        );
        assert!(sql.contains("Last recoverable point: last commit: SCN 12456 XID 7.1.345"));
    }

    #[test]
    fn two_threads_one_online_log_each_bounded_at_the_earliest_last_commit() {
        let input = two_threads(Target::LastCommit);
        let rman = rman_script(&input).unwrap();
        // The lowest end of the archived redo: thread 2's online log starts at 380.
        assert!(rman.contains("SET UNTIL SCN 380;"), "{rman}");
        assert!(!rman.contains("SET UNTIL SEQUENCE"), "{rman}");
        let sql = sqlplus_script(&input).unwrap().unwrap();
        for t in [1, 2] {
            assert_eq!(
                sql.matches(&format!("RECOVER LOGFILE '/restore/online_{t}_"))
                    .count(),
                1,
                "one online log for thread {t}:\n{sql}"
            );
        }
        // Thread 2's last commit (455) is the earliest: UNTIL CHANGE 456, checked at 455.
        assert_in_order(
            &sql,
            &[
                "UNTIL CHANGE 456 USING BACKUP CONTROLFILE;",
                // Oracle needs first each thread's log holding SCN 380 (thread order), then
                // the next by first SCN: thread 1 sequence 4 begins at 400.
                "LOGFILE '/restore/arch/arch_1_3_1.arc'",
                "LOGFILE '/restore/online_2_3_1.log'",
                "LOGFILE '/restore/online_1_4_1.log'",
                "RECOVER CANCEL;",
                "checkpoint_change# < 455",
                "-- RAC: opened by this one instance (cluster_database=false)",
                "OPEN RESETLOGS;",
            ],
        );
        // Nothing that ends before the bound.
        for gone in ["arch_1_1_1", "arch_1_2_1", "arch_2_1_1", "arch_2_2_1"] {
            assert!(!sql.contains(gone), "{gone}:\n{sql}");
        }
        let last = last_recoverable(&input).unwrap();
        assert!(
            last.starts_with("last commit: SCN 455 XID 7.2.345"),
            "{last}"
        );
        assert!(last.contains("earliest of 2 threads"), "{last}");
    }

    #[test]
    fn each_thread_says_which_last_commit_it_recovers_and_what_is_past_reach() {
        // One thread: its last commit, nothing lost.
        let one = per_thread(&one_thread(Target::LastCommit)).unwrap();
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(
            one[0].starts_with("thread 1: to its last commit, SCN 12456 XID 7.1.345"),
            "{one:?}"
        );
        assert!(one[0].contains("nothing of it lost"), "{one:?}");
        // Two threads: thread 2 ends first (455); thread 1's commits after 455, through its
        // last (470), are out of reach, and the lines say why.
        let input = two_threads(Target::LastCommit);
        let two = per_thread(&input).unwrap();
        assert_eq!(two.len(), 2, "{two:?}");
        assert!(
            two[0].starts_with("thread 1: to SCN 455; its commits after SCN 455, through its last commit SCN 470 XID 7.1.345"),
            "{two:?}"
        );
        assert!(
            two[0].contains("the redo of thread 2 is known only to its last commit, SCN 455"),
            "{two:?}"
        );
        assert!(
            two[1].starts_with("thread 2: to its last commit, SCN 455 XID 7.2.345"),
            "{two:?}"
        );
        // Both scripts carry the lines in their heading, and the SQL names both online logs.
        let sql = sqlplus_script(&input).unwrap().unwrap();
        let rman = rman_script(&input).unwrap();
        for line in &two {
            assert!(sql.contains(&format!("--   {line}")), "{sql}");
            assert!(rman.contains(&format!("#   {line}")), "{rman}");
        }
        // Equal last commits: nothing of either thread lost.
        let mut even = two_threads(Target::LastCommit);
        even.online[1].last_commit_scn = 455;
        let lines = per_thread(&even).unwrap();
        assert!(
            lines.iter().all(|l| l.contains("nothing of it lost")),
            "{lines:?}"
        );
        // A target SCN inside the online logs: both threads cut there, by the target.
        let lines = per_thread(&two_threads(Target::UntilScn(420))).unwrap();
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert!(l.contains("to SCN 419; its commits after SCN 419"), "{l}");
            assert!(
                l.contains("the target stops recovery before SCN 420"),
                "{l}"
            );
        }
        // Inside the archived logs: RMAN alone, no thread's online log, no lines.
        assert!(
            per_thread(&two_threads(Target::UntilScn(300)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_thread_without_an_online_log_bounds_rman_at_the_end_of_its_archive() {
        // Thread 3 archived up to 350 and has no online log (closed, or not restored): RMAN
        // stops at 350, and its remaining archived redo is left to SQL*Plus by name.
        let mut input = two_threads(Target::LastCommit);
        input.archived.push(arch(3, 9, 200, 350));
        let rman = rman_script(&input).unwrap();
        assert!(rman.contains("SET UNTIL SCN 350;"), "{rman}");
        let sql = sqlplus_script(&input).unwrap().unwrap();
        assert_in_order(
            &sql,
            &[
                "LOGFILE '/restore/arch/arch_1_3_1.arc'",
                "LOGFILE '/restore/arch/arch_2_2_1.arc'",
                "LOGFILE '/restore/online_2_3_1.log'",
                "LOGFILE '/restore/online_1_4_1.log'",
            ],
        );
        assert!(!sql.contains("arch_3_9_1"), "ends at the bound: {sql}");
    }

    #[test]
    fn points_in_time_inside_the_archive_are_rman_alone() {
        let s = rman_script(&two_threads(Target::UntilScn(300))).unwrap();
        assert_in_order(
            &s,
            &[
                "CATALOG START WITH '/restore/arch/'",
                "SET UNTIL SCN 300;",
                "RECOVER DATABASE;",
                "ALTER DATABASE OPEN RESETLOGS;",
            ],
        );
        assert_eq!(
            sqlplus_script(&two_threads(Target::UntilScn(300))),
            Ok(None)
        );
        let t = Target::UntilTime("2026-11-21 04:30:00".into());
        let s = rman_script(&one_thread(t.clone())).unwrap();
        assert!(s.contains(
            "SET UNTIL TIME \"TO_DATE('2026-11-21 04:30:00','YYYY-MM-DD HH24:MI:SS')\";"
        ));
        assert!(s.contains("OPEN RESETLOGS"));
        assert_eq!(sqlplus_script(&one_thread(t)), Ok(None));
        // Without online logs: the archived logs alone.
        let mut i = two_threads(Target::UntilScn(380));
        i.online.clear();
        assert!(rman_script(&i).unwrap().contains("SET UNTIL SCN 380;"));
        assert_eq!(sqlplus_script(&i), Ok(None));
    }

    #[test]
    fn an_scn_inside_the_online_logs_goes_through_them() {
        let i = two_threads(Target::UntilScn(420));
        assert!(rman_script(&i).unwrap().contains("SET UNTIL SCN 380;"));
        let sql = sqlplus_script(&i).unwrap().unwrap();
        assert!(
            sql.contains("UNTIL CHANGE 420 USING BACKUP CONTROLFILE"),
            "{sql}"
        );
        assert!(sql.contains("checkpoint_change# < 419"), "{sql}");
        assert_eq!(
            rman_script(&two_threads(Target::UntilScn(457))),
            Err(ScriptError::PastLastCommit {
                asked: 457,
                last: 455
            })
        );
    }

    #[test]
    fn refuses_what_cannot_be_recovered_or_quoted() {
        let mut i = one_thread(Target::LastCommit);
        i.online.clear();
        assert_eq!(sqlplus_script(&i), Err(ScriptError::NoOnlineLog));
        assert_eq!(rman_script(&i), Err(ScriptError::NoOnlineLog));
        i.archived.clear();
        i.target = Target::UntilScn(5);
        assert_eq!(rman_script(&i), Err(ScriptError::Nothing));
        // The log before the online log is missing: recovery could not reach it.
        let mut i = two_threads(Target::LastCommit);
        i.archived.retain(|a| !(a.thread == 2 && a.sequence == 2));
        assert_eq!(
            rman_script(&i),
            Err(ScriptError::NoLogBeforeOnline {
                thread: 2,
                missing: 2,
                online: 3
            })
        );
        for bad in [
            "2026-11-21T04:30:00",
            "2026-11-21 04:30:00'; SHUTDOWN",
            "yesterday",
        ] {
            assert_eq!(
                rman_script(&two_threads(Target::UntilTime(bad.into()))),
                Err(ScriptError::BadTime(bad.into()))
            );
        }
        let mut i = two_threads(Target::LastCommit);
        i.online.push(online(1, 5, 900));
        assert_eq!(sqlplus_script(&i), Err(ScriptError::TwoOnlineLogs(1)));
        let mut i = two_threads(Target::LastCommit);
        i.archived[0].path = "/restore/arch/it's.arc".into();
        assert!(matches!(sqlplus_script(&i), Err(ScriptError::BadPath(_))));
        i.archived[0].path = "/rest'ore/arch_1_3_1.arc".into();
        assert!(matches!(rman_script(&i), Err(ScriptError::BadPath(_))));
        let mut i = two_threads(Target::LastCommit);
        i.online[0].path = "/restore/on\nline.log".into();
        assert!(matches!(sqlplus_script(&i), Err(ScriptError::BadPath(_))));
    }
}
