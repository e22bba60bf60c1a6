//! `restore script`: the RMAN and SQL*Plus commands that recover the database from what
//! `restore archive` and `restore online` put on disk, stating the last recoverable point.
//!
//! Two scripts, because the tools differ in what they accept:
//! - RMAN (`recover.rman`): `CATALOG START WITH` the restored archived logs, then `RECOVER
//!   DATABASE UNTIL SCN|TIME`. Enough when the target is inside the archived logs.
//! - SQL*Plus (`recover.sql`): recovery to the **last commit**. The rebuilt online log is a
//!   partial log that RMAN cannot catalog; SQL's `ALTER DATABASE RECOVER LOGFILE` applies any
//!   log file by name. The script applies every archived log in SCN order, then the rebuilt
//!   online log, and stops at the last commit (`UNTIL CHANGE last_commit_scn + 1`).
//!
//! Datafiles and control file come from the DBA's last backup first (the runbook says how);
//! the scripts only recover.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One restored archived log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedLogFile {
    /// Where it was restored.
    pub path: PathBuf,
    /// Redo thread.
    pub thread: u16,
    /// Log sequence.
    pub sequence: u32,
    /// First SCN in the log.
    pub first_scn: u64,
    /// Next SCN (first SCN of the next log of the thread).
    pub next_scn: u64,
}

/// The rebuilt last-commit online log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineLogFile {
    /// Where it was written.
    pub path: PathBuf,
    /// Redo thread.
    pub thread: u16,
    /// Log sequence.
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
    /// To the last commit the collector holds (needs the online log).
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
    /// The rebuilt online log, if restored.
    pub online: Option<OnlineLogFile>,
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
}

fn sql_path(p: &std::path::Path) -> Result<String, ScriptError> {
    let s = p.to_string_lossy();
    if s.contains('\'') || s.contains('\n') || s.contains('\r') {
        return Err(ScriptError::BadPath(p.to_path_buf()));
    }
    Ok(s.into_owned())
}

fn sorted(archived: &[ArchivedLogFile]) -> Vec<&ArchivedLogFile> {
    let mut v: Vec<&ArchivedLogFile> = archived.iter().collect();
    v.sort_by_key(|a| (a.first_scn, a.thread, a.sequence));
    v
}

/// The last recoverable point in words, as both scripts state it in their heading.
pub fn last_recoverable(input: &ScriptInput) -> Result<String, ScriptError> {
    match (&input.target, &input.online) {
        (Target::LastCommit, None) => Err(ScriptError::NoOnlineLog),
        (Target::LastCommit, Some(o)) => Ok(format!(
            "last commit: SCN {} XID {} at {} (thread {} sequence {})",
            o.last_commit_scn,
            o.last_commit_xid,
            o.last_commit_time.as_deref().unwrap_or("unknown time"),
            o.thread,
            o.sequence
        )),
        (Target::UntilScn(s), _) => Ok(format!("every change before SCN {s}")),
        (Target::UntilTime(t), _) => Ok(format!("every change before {t}")),
    }
}

fn heading(input: &ScriptInput, comment: &str) -> Result<String, ScriptError> {
    if input.archived.is_empty() && input.online.is_none() {
        return Err(ScriptError::Nothing);
    }
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
    let mut threads: Vec<u16> = input.archived.iter().map(|a| a.thread).collect();
    threads.sort_unstable();
    threads.dedup();
    for t in threads {
        let seqs: Vec<u32> = input
            .archived
            .iter()
            .filter(|a| a.thread == t)
            .map(|a| a.sequence)
            .collect();
        let (lo, hi) = (
            seqs.iter().min().copied().unwrap_or(0),
            seqs.iter().max().copied().unwrap_or(0),
        );
        let _ = writeln!(
            h,
            "{comment} Archived logs: thread {t}, sequences {lo} to {hi} ({} files, SHA-256 verified)",
            seqs.len()
        );
    }
    if let Some(o) = &input.online {
        let _ = writeln!(
            h,
            "{comment} Online log (rebuilt to the last commit): thread {} sequence {}: {}",
            o.thread,
            o.sequence,
            o.path.display()
        );
    }
    let _ = writeln!(
        h,
        "{comment} Before running: restore the control file and datafiles from the last backup\n\
         {comment} (RMAN: RESTORE CONTROLFILE FROM ...; ALTER DATABASE MOUNT; RESTORE DATABASE;)."
    );
    Ok(h)
}

/// The RMAN script: catalog the restored archived logs, recover until the target, open.
///
/// For [`Target::LastCommit`] the RMAN script recovers through the archived logs only; the
/// SQL*Plus script then applies the online log. Both say so.
pub fn rman_script(input: &ScriptInput) -> Result<String, ScriptError> {
    let mut s = heading(input, "#")?;
    let mut dirs: Vec<String> = Vec::new();
    for a in sorted(&input.archived) {
        let d = a
            .path
            .parent()
            .map(|p| format!("{}/", p.display()))
            .unwrap_or_default();
        let d = sql_path(std::path::Path::new(&d))?;
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    for d in &dirs {
        let _ = writeln!(s, "CATALOG START WITH '{d}' NOPROMPT;");
    }
    let until = match &input.target {
        Target::UntilScn(scn) => format!("SET UNTIL SCN {scn};"),
        Target::UntilTime(t) => {
            format!("SET UNTIL TIME \"TO_DATE('{t}','YYYY-MM-DD HH24:MI:SS')\";")
        }
        Target::LastCommit => {
            // Recovering here too would apply the archived logs a first time, and recover.sql
            // would then ask for them again from the first one: to the last commit, RMAN only
            // catalogs, and recover.sql applies every log once, the online one last.
            let _ = writeln!(
                s,
                "# Recovery to the last commit: run recover.sql next (it applies every archived log, then\n\
                 # the online log rebuilt to the last commit, and opens with RESETLOGS)."
            );
            return Ok(s);
        }
    };
    let _ = writeln!(s, "RUN {{\n  {until}\n  RECOVER DATABASE;\n}}");
    let _ = writeln!(s, "ALTER DATABASE OPEN RESETLOGS;");
    Ok(s)
}

/// The SQL*Plus script: recovery by explicit log files, through the online log to the target.
pub fn sqlplus_script(input: &ScriptInput) -> Result<String, ScriptError> {
    let mut s = heading(input, "--")?;
    let _ = writeln!(s, "WHENEVER SQLERROR EXIT SQL.SQLCODE");
    let until = match (&input.target, &input.online) {
        (Target::LastCommit, Some(o)) => {
            format!("UNTIL CHANGE {}", o.last_commit_scn.saturating_add(1))
        }
        (Target::LastCommit, None) => return Err(ScriptError::NoOnlineLog),
        (Target::UntilScn(scn), _) => format!("UNTIL CHANGE {scn}"),
        (Target::UntilTime(t), _) => format!("UNTIL TIME '{t}'"),
    };
    let _ = writeln!(
        s,
        "ALTER DATABASE RECOVER DATABASE {until} USING BACKUP CONTROLFILE;"
    );
    for a in sorted(&input.archived) {
        let _ = writeln!(
            s,
            "-- thread {} sequence {} (SCN {} to {})\nALTER DATABASE RECOVER LOGFILE '{}';",
            a.thread,
            a.sequence,
            a.first_scn,
            a.next_scn,
            sql_path(&a.path)?
        );
    }
    if let Some(o) = &input.online {
        let _ = writeln!(
            s,
            "-- online log, thread {} sequence {}, up to the commit of XID {} at SCN {}\n\
             ALTER DATABASE RECOVER LOGFILE '{}';",
            o.thread,
            o.sequence,
            o.last_commit_xid,
            o.last_commit_scn,
            sql_path(&o.path)?
        );
    }
    let _ = writeln!(s, "ALTER DATABASE OPEN RESETLOGS;\nEXIT");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(target: Target) -> ScriptInput {
        ScriptInput {
            generated_at: "2026-11-21T05:00:00Z".into(),
            archived: vec![
                ArchivedLogFile {
                    path: "/restore/arch/arch_1_11_1.arc".into(),
                    thread: 1,
                    sequence: 11,
                    first_scn: 2000,
                    next_scn: 3000,
                },
                ArchivedLogFile {
                    path: "/restore/arch/arch_1_10_1.arc".into(),
                    thread: 1,
                    sequence: 10,
                    first_scn: 1000,
                    next_scn: 2000,
                },
                ArchivedLogFile {
                    path: "/restore/arch/arch_2_5_1.arc".into(),
                    thread: 2,
                    sequence: 5,
                    first_scn: 1500,
                    next_scn: 2600,
                },
            ],
            online: Some(OnlineLogFile {
                path: "/restore/online/redo_1_12.log".into(),
                thread: 1,
                sequence: 12,
                last_commit_scn: 3456,
                last_commit_xid: "7.12.345".into(),
                last_commit_time: Some("2026-11-21T04:59:58Z".into()),
            }),
            target,
        }
    }

    #[test]
    fn last_commit_script_applies_logs_in_scn_order_then_online() {
        let s = sqlplus_script(&input(Target::LastCommit)).unwrap();
        assert!(s.contains("Last recoverable point: last commit: SCN 3456 XID 7.12.345"));
        assert!(s.contains("UNTIL CHANGE 3457 USING BACKUP CONTROLFILE"));
        let pos = |name: &str| s.find(&format!("LOGFILE '/restore/{name}'")).unwrap();
        assert!(pos("arch/arch_1_10_1.arc") < pos("arch/arch_2_5_1.arc"));
        assert!(pos("arch/arch_2_5_1.arc") < pos("arch/arch_1_11_1.arc"));
        assert!(pos("arch/arch_1_11_1.arc") < pos("online/redo_1_12.log"));
        assert!(
            s.trim_end()
                .ends_with("ALTER DATABASE OPEN RESETLOGS;\nEXIT")
        );
    }

    #[test]
    fn rman_script_catalogs_and_recovers_until() {
        let s = rman_script(&input(Target::UntilScn(2500))).unwrap();
        assert_eq!(s.matches("CATALOG START WITH '/restore/arch/'").count(), 1);
        assert!(s.contains("SET UNTIL SCN 2500;"));
        assert!(s.contains("OPEN RESETLOGS"));
        let s = rman_script(&input(Target::UntilTime("2026-11-21 04:30:00".into()))).unwrap();
        assert!(s.contains(
            "SET UNTIL TIME \"TO_DATE('2026-11-21 04:30:00','YYYY-MM-DD HH24:MI:SS')\";"
        ));
        let s = rman_script(&input(Target::LastCommit)).unwrap();
        assert!(s.contains("run recover.sql next"));
        assert!(!s.contains("RECOVER DATABASE"), "RMAN only catalogs: {s}");
        assert!(
            !s.contains("OPEN RESETLOGS"),
            "the SQL script opens after the online log"
        );
    }

    #[test]
    fn refuses_what_cannot_be_recovered_or_quoted() {
        let mut i = input(Target::LastCommit);
        i.online = None;
        assert_eq!(sqlplus_script(&i), Err(ScriptError::NoOnlineLog));
        i.archived.clear();
        i.target = Target::UntilScn(5);
        assert_eq!(rman_script(&i), Err(ScriptError::Nothing));
        let mut i = input(Target::UntilScn(5));
        i.archived[0].path = "/restore/it's.arc".into();
        assert!(matches!(sqlplus_script(&i), Err(ScriptError::BadPath(_))));
    }
}
