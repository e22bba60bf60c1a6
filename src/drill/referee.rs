//! The referee: what the database had written when it crashed (the ground truth, copied
//! outside every host before the attack), and the checks of what recovery brought back
//! against it: archived logs byte for byte, the rebuilt online log's prefix, every committed
//! transaction in order (RPO), and per-table row counts replayed from the recovered redo.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use redovault_redo::position::Xid;
use serde::Serialize;
use sha2::Digest;

use super::DrillError;
use crate::simulate::journal::{JournalEntry, parse_journal};

/// The ground truth at the crash.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Every ended transaction, in log order (every thread's).
    pub journal: Vec<JournalEntry>,
    /// Each redo thread's logs (RAC: one set per instance; sequences are per thread).
    pub threads: BTreeMap<u16, ThreadLogs>,
}

/// One redo thread's logs at the crash.
#[derive(Debug, Clone, Default)]
pub struct ThreadLogs {
    /// Archived logs by sequence: the referee's copy.
    pub archived: BTreeMap<u32, PathBuf>,
    /// Online logs by sequence (as they were at the crash): the referee's copy.
    pub online: BTreeMap<u32, PathBuf>,
    /// SHA-256 (hex) of each archived log, by sequence.
    pub archived_sha256: BTreeMap<u32, String>,
}

impl Truth {
    /// Archived logs of every thread.
    pub fn archived_logs(&self) -> usize {
        self.threads.values().map(|t| t.archived.len()).sum()
    }
}

/// Copies the journal, the archived logs and the online logs of the simulated database
/// (`oracle`) into `referee`, each log filed under the thread its header names.
pub fn snapshot(oracle: &Path, referee: &Path) -> Result<Truth, DrillError> {
    let journal_src = oracle.join("journal.jsonl");
    let journal_dst = referee.join("journal.jsonl");
    fs::copy(&journal_src, &journal_dst).map_err(|e| DrillError::io(&journal_src, e))?;
    let text = fs::read_to_string(&journal_dst).map_err(|e| DrillError::io(&journal_dst, e))?;
    let journal = parse_journal(&text)
        .map_err(|e| DrillError::Step(format!("{}: {e}", journal_dst.display())))?;
    let mut threads: BTreeMap<u16, ThreadLogs> = BTreeMap::new();
    for (sub, suffix) in [("archive", ".dbf"), ("online", ".log")] {
        let from = oracle.join(sub);
        let to = referee.join(sub);
        fs::create_dir_all(&to).map_err(|e| DrillError::io(&to, e))?;
        let entries = fs::read_dir(&from).map_err(|e| DrillError::io(&from, e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(suffix) {
                continue;
            }
            let dst = to.join(&name);
            fs::copy(e.path(), &dst).map_err(|err| DrillError::io(&e.path(), err))?;
            let bytes = fs::read(&dst).map_err(|err| DrillError::io(&dst, err))?;
            // Only logs with a header: an online group never used has none.
            if let Ok(r) = redovault_redo::analyze(&bytes) {
                let seq = r.header.sequence.0;
                let t = threads.entry(r.header.thread.0).or_default();
                if sub == "archive" {
                    t.archived_sha256
                        .insert(seq, hex::encode(sha2::Sha256::digest(&bytes)));
                    t.archived.insert(seq, dst);
                } else {
                    t.online.insert(seq, dst);
                }
            }
        }
    }
    Ok(Truth { journal, threads })
}

/// One check: what, whether it held, the detail.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Short name.
    pub name: String,
    /// True when it held.
    pub ok: bool,
    /// Figures or the first difference.
    pub detail: String,
}

impl Check {
    /// A check.
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            ok,
            detail: detail.into(),
        }
    }
}

/// A recovered redo file, in recovery order.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// Log sequence.
    pub sequence: u32,
    /// The file.
    pub path: PathBuf,
}

/// Per-table figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TableCounts {
    /// Committed transactions.
    pub transactions: u64,
    /// Rows inserted.
    pub inserts: i64,
    /// Rows updated.
    pub updates: i64,
    /// Rows deleted.
    pub deletes: i64,
    /// Rows in the table (inserts − deletes; the tables start empty).
    pub rows: i64,
}

/// Per-table counts from the journal's committed transactions.
pub fn journal_tables(journal: &[JournalEntry]) -> BTreeMap<String, TableCounts> {
    let mut out: BTreeMap<String, TableCounts> = BTreeMap::new();
    for e in journal.iter().filter(|e| !e.rollback) {
        let t = out.entry(e.table.clone()).or_default();
        t.transactions += 1;
        t.inserts += i64::from(e.inserts);
        t.updates += i64::from(e.updates);
        t.deletes += i64::from(e.deletes);
        t.rows = t.inserts - t.deletes;
    }
    out
}

/// What replaying the recovered redo gives.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Committed transactions (xid, SCN, sequence), in order.
    pub commits: Vec<(String, u64, u32)>,
    /// Per-table counts, by table name (data object ids mapped by `tables`).
    pub tables: BTreeMap<String, TableCounts>,
    /// Problems met (unreadable file, record errors, too many row changes).
    pub problems: Vec<String>,
    /// Row changes without a transaction id (a rollback's undo applied: 11.x + 5.6).
    pub compensations: u64,
}

/// Replays the recovered files in order with the redo parser: every committed transaction
/// and its row changes (11.2 insert, 11.3 delete, 11.5 update) by table.
pub fn replay(files: &[Recovered], tables: &HashMap<u32, String>) -> Replay {
    let mut out = Replay::default();
    let mut pending: HashMap<Xid, HashMap<u32, [i64; 3]>> = HashMap::new();
    for f in files {
        let bytes = match fs::read(&f.path) {
            Ok(b) => b,
            Err(e) => {
                out.problems
                    .push(format!("{}: cannot read: {e}", f.path.display()));
                continue;
            }
        };
        let r = match redovault_redo::analyze(&bytes) {
            Ok(r) => r,
            Err(e) => {
                out.problems
                    .push(format!("{}: not a redo log: {e}", f.path.display()));
                continue;
            }
        };
        if !r.errors.is_empty() {
            out.problems.push(format!(
                "{}: {} record error(s), first: {}",
                f.path.display(),
                r.errors.len(),
                r.errors[0]
            ));
        }
        if r.row_changes_omitted > 0 {
            out.problems.push(format!(
                "{}: more row changes than the parser lists ({} omitted)",
                f.path.display(),
                r.row_changes_omitted
            ));
        }
        for c in &r.row_changes {
            // A rollback applies its undo as 11.x + 5.6 records, which name no
            // transaction: they undo changes of a transaction that is not counted.
            let Some(xid) = c.xid else {
                out.compensations += 1;
                continue;
            };
            let i = match c.opcode.parts() {
                (11, 2) => 0,
                (11, 5) => 1,
                (11, 3) => 2,
                _ => continue,
            };
            pending
                .entry(xid)
                .or_default()
                .entry(c.data_object)
                .or_default()[i] += 1;
        }
        for c in &r.commits {
            let changes = pending.remove(&c.xid).unwrap_or_default();
            if c.rollback {
                continue;
            }
            out.commits.push((c.xid.to_string(), c.scn.0, f.sequence));
            let mut seen_tables = Vec::new();
            for (obj, [ins, upd, del]) in changes {
                let name = tables
                    .get(&obj)
                    .cloned()
                    .unwrap_or_else(|| format!("OBJ#{obj}"));
                let t = out.tables.entry(name.clone()).or_default();
                t.inserts += ins;
                t.updates += upd;
                t.deletes += del;
                t.rows = t.inserts - t.deletes;
                seen_tables.push(name);
            }
            seen_tables.sort();
            seen_tables.dedup();
            for name in seen_tables {
                out.tables.entry(name).or_default().transactions += 1;
            }
        }
    }
    out
}

/// The journal's committed transactions (xid, SCN, sequence), in order.
pub fn journal_commits(journal: &[JournalEntry]) -> Vec<(String, u64, u32)> {
    journal
        .iter()
        .filter(|e| !e.rollback)
        .map(|e| (e.xid.clone(), e.scn, e.sequence))
        .collect()
}

/// Compares the recovered commits with the journal's: the recovered ones must be exactly the
/// journal's first ones, in order. Returns (matched, lost, first difference).
pub fn compare_commits(
    recovered: &[(String, u64, u32)],
    journal: &[(String, u64, u32)],
) -> (usize, usize, Option<String>) {
    let same = recovered
        .iter()
        .zip(journal)
        .take_while(|(a, b)| a == b)
        .count();
    let diff = if same < recovered.len() {
        Some(format!(
            "commit #{} differs: recovered {:?}, journal {:?}",
            same + 1,
            recovered.get(same),
            journal.get(same)
        ))
    } else {
        None
    };
    (same, journal.len() - same, diff)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, DrillError> {
    let bytes = fs::read(path).map_err(|e| DrillError::io(path, e))?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// The first byte where `a[from..len]` and `b[from..len]` differ (None: identical over the range).
pub fn first_difference(a: &[u8], b: &[u8], from: usize, len: usize) -> Option<usize> {
    if a.len() < len || b.len() < len {
        return Some(a.len().min(b.len()).min(len));
    }
    a[from..len]
        .iter()
        .zip(&b[from..len])
        .position(|(x, y)| x != y)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(x: &str, scn: u64) -> (String, u64, u32) {
        (x.to_string(), scn, 1)
    }

    #[test]
    fn commits_compare_as_a_prefix() {
        let j = vec![c("1.1.1", 10), c("1.2.1", 11), c("1.3.1", 12)];
        assert_eq!(compare_commits(&j, &j), (3, 0, None));
        assert_eq!(compare_commits(&j[..2], &j), (2, 1, None));
        let bad = vec![c("1.1.1", 10), c("9.9.9", 11)];
        let (same, lost, diff) = compare_commits(&bad, &j);
        assert_eq!((same, lost), (1, 2));
        assert!(diff.unwrap().contains("commit #2"));
    }

    #[test]
    fn first_difference_over_a_range() {
        assert_eq!(first_difference(b"abcdef", b"abXdef", 0, 6), Some(2));
        assert_eq!(first_difference(b"abcdef", b"abXdef", 3, 6), None);
        assert_eq!(first_difference(b"abc", b"abcdef", 0, 6), Some(3));
    }
}
