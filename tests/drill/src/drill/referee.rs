//! The referee: what the database had written when it crashed (the ground truth, copied
//! outside every host before the attack), and the checks of what recovery brought back
//! against it: archived logs byte for byte, the rebuilt online log's prefix, every committed
//! transaction in order (RPO), and per-table row counts replayed from the recovered redo.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use redovault_redo::position::Xid;
use redovault_redo::{Analyzer, Commit, RowChange, TxnEvent};
use serde::Serialize;
use sha2::Digest;

use super::DrillError;
use super::setup::Layout;
use crate::simulate::journal::{JournalEntry, parse_journal};

/// The ground truth at the crash.
#[derive(Debug, Clone)]
pub struct Truth {
    /// Every ended transaction, in log order (every thread's).
    pub journal: Vec<JournalEntry>,
    /// The journal's committed transactions (xid, SCN, sequence), in order.
    pub commits: Vec<(String, u64, u32)>,
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

    /// Rolled-back transactions in the journal.
    pub fn rollbacks(&self) -> usize {
        self.journal.iter().filter(|e| e.rollback).count()
    }
}

/// The referee's phase: its copy, taken once redovault's daemons on the database host are
/// dead and before its files are destroyed (nothing timed runs meanwhile), into
/// `l.referee`.
pub fn witness(l: &Layout, say: &mut dyn FnMut(&str)) -> Result<Truth, DrillError> {
    let t_copy = Instant::now();
    let truth = snapshot(&l.oracle, &l.referee)?;
    say(&format!(
        "    referee: journal ({} commits, {} rollbacks), {} archived and the online logs copied to {} in {:.1} s (ground truth, outside every host; taken after the daemons died, before the files are destroyed)",
        truth.commits.len(),
        truth.rollbacks(),
        truth.archived_logs(),
        l.referee.display(),
        t_copy.elapsed().as_secs_f64()
    ));
    Ok(truth)
}

/// Copies the journal, the archived logs and the online logs of the simulated database
/// (`oracle`) into `referee`, each log filed under the thread its header names, streamed
/// through in 1 MiB chunks (hashed on the way, its thread and sequence read from its header),
/// so that memory does not grow with the log size.
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
            let (sequence, sha256) = copy_log(&e.path(), &dst)?;
            // Only logs with a header: an online group never used has none.
            if let Some((thread, seq)) = sequence {
                let t = threads.entry(thread).or_default();
                if sub == "archive" {
                    t.archived_sha256.insert(seq, sha256);
                    t.archived.insert(seq, dst);
                } else {
                    t.online.insert(seq, dst);
                }
            }
        }
    }
    Ok(Truth {
        commits: journal_commits(&journal),
        journal,
        threads,
    })
}

/// Copies one log, 1 MiB at a time; returns its thread and sequence (None: no redo header)
/// and its SHA-256 (hex).
fn copy_log(src: &Path, dst: &Path) -> Result<(Option<(u16, u32)>, String), DrillError> {
    let mut from = fs::File::open(src).map_err(|e| DrillError::io(src, e))?;
    let mut to = fs::File::create(dst).map_err(|e| DrillError::io(dst, e))?;
    let mut hash = sha2::Sha256::new();
    let mut sequence = None;
    let mut first = true;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = read_chunk(&mut from, &mut buf).map_err(|e| DrillError::io(src, e))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or(&[]);
        if first {
            sequence = header_sequence(chunk);
            first = false;
        }
        hash.update(chunk);
        to.write_all(chunk).map_err(|e| DrillError::io(dst, e))?;
    }
    Ok((sequence, hex::encode(hash.finalize())))
}

/// The bytes read at a time (the redo parser's own chunk size).
const CHUNK: usize = 1 << 20;

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_chunk(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(buf.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The log sequence in the redo header of a log's first bytes (None: not a redo log, or a
/// header not in them).
fn header_sequence(first: &[u8]) -> Option<(u16, u32)> {
    let mut d = redovault_redo::Decoder::new();
    d.feed(first);
    while let Ok(Some(ev)) = d.poll() {
        if let redovault_redo::Event::RedoHeader(h) = ev {
            return Some((h.thread.0, h.sequence.0));
        }
    }
    None
}

/// The journal's last committed transaction (xid, SCN), read from the file's tail (a window
/// that doubles, from 64 KiB, until it holds a whole committed line): the drill needs it at
/// the crash, before the referee copies and parses the whole journal.
pub fn last_commit_in_journal(path: &Path) -> Result<Option<(String, u64)>, DrillError> {
    Ok(last_commits_in_journal(path, 1)?.last)
}

/// The journal's last commit, and each redo thread's (of threads 1 to `threads`), from its
/// tail.
#[derive(Debug, Default, PartialEq)]
pub struct JournalTail {
    /// The last committed transaction (xid, SCN).
    pub last: Option<(String, u64)>,
    /// Each thread's last committed transaction (a thread with none in the journal: absent).
    pub per_thread: BTreeMap<u16, (String, u64)>,
}

/// [`last_commit_in_journal`] for every thread of a RAC database: the window grows until it
/// holds a commit of each of the `threads` threads, or the whole file.
pub fn last_commits_in_journal(path: &Path, threads: u16) -> Result<JournalTail, DrillError> {
    let mut f = fs::File::open(path).map_err(|e| DrillError::io(path, e))?;
    let len = f.metadata().map_err(|e| DrillError::io(path, e))?.len();
    let mut window: u64 = 64 << 10;
    loop {
        let from = len.saturating_sub(window);
        f.seek(SeekFrom::Start(from))
            .map_err(|e| DrillError::io(path, e))?;
        let mut tail = Vec::new();
        (&mut f)
            .take(window)
            .read_to_end(&mut tail)
            .map_err(|e| DrillError::io(path, e))?;
        let text = String::from_utf8_lossy(&tail);
        // The first line of a window that starts mid-file may be cut: skip it.
        let whole = if from == 0 {
            &text[..]
        } else {
            text.split_once('\n').map_or("", |(_, rest)| rest)
        };
        let mut found = JournalTail::default();
        for line in whole.lines().rev().filter(|l| !l.trim().is_empty()) {
            let e: JournalEntry = serde_json::from_str(line).map_err(|e| {
                DrillError::Step(format!("{}: a line near the end: {e}", path.display()))
            })?;
            if e.rollback {
                continue;
            }
            if found.last.is_none() {
                found.last = Some((e.xid.clone(), e.scn));
            }
            found.per_thread.entry(e.thread).or_insert((e.xid, e.scn));
            if found.per_thread.len() >= usize::from(threads.max(1)) {
                return Ok(found);
            }
        }
        if from == 0 {
            return Ok(found);
        }
        window = window.saturating_mul(2);
    }
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
    /// Problems met (unreadable file, record errors).
    pub problems: Vec<String>,
    /// Row changes without a transaction id (a rollback's undo applied: 11.x + 5.6).
    pub compensations: u64,
    /// Row changes counted (inserts, updates and deletes of every transaction seen).
    pub row_changes: u64,
}

/// The replay's state: fed every transaction event of the recovered redo in recovery order
/// (streamed from the parser, never its capped list), it keeps per open transaction only its
/// per-table counts, and folds them into the tables when the transaction commits: memory is
/// the open transactions' and the list of commits, whatever the size of the logs.
#[derive(Debug)]
pub struct Tally<'a> {
    tables: &'a HashMap<u32, String>,
    pending: HashMap<Xid, HashMap<u32, [i64; 3]>>,
    out: Replay,
}

impl<'a> Tally<'a> {
    /// An empty replay; `tables` names the data object ids.
    pub fn new(tables: &'a HashMap<u32, String>) -> Tally<'a> {
        Tally {
            tables,
            pending: HashMap::new(),
            out: Replay::default(),
        }
    }

    /// One event of the log of sequence `sequence`.
    pub fn event(&mut self, e: TxnEvent, sequence: u32) {
        match e {
            TxnEvent::Row(c) => self.row(&c),
            TxnEvent::End(c) => self.end(&c, sequence),
        }
    }

    /// A problem met (it fails the parse check).
    pub fn problem(&mut self, p: String) {
        self.out.problems.push(p);
    }

    /// The result: transactions still open (no commit in the recovered redo) are not counted.
    pub fn finish(self) -> Replay {
        self.out
    }

    fn row(&mut self, c: &RowChange) {
        // A rollback applies its undo as 11.x + 5.6 records, which name no transaction: they
        // undo changes of a transaction that is not counted.
        let Some(xid) = c.xid else {
            self.out.compensations += 1;
            return;
        };
        let i = match c.opcode.parts() {
            (11, 2) => 0,
            (11, 5) => 1,
            (11, 3) => 2,
            _ => return,
        };
        self.out.row_changes += 1;
        self.pending
            .entry(xid)
            .or_default()
            .entry(c.data_object)
            .or_default()[i] += 1;
    }

    fn end(&mut self, c: &Commit, sequence: u32) {
        let changes = self.pending.remove(&c.xid).unwrap_or_default();
        if c.rollback {
            return;
        }
        self.out
            .commits
            .push((c.xid.to_string(), c.scn.0, sequence));
        let mut seen_tables = Vec::new();
        for (obj, [ins, upd, del]) in changes {
            let name = self
                .tables
                .get(&obj)
                .cloned()
                .unwrap_or_else(|| format!("OBJ#{obj}"));
            let t = self.out.tables.entry(name.clone()).or_default();
            t.inserts += ins;
            t.updates += upd;
            t.deletes += del;
            t.rows = t.inserts - t.deletes;
            seen_tables.push(name);
        }
        seen_tables.sort();
        seen_tables.dedup();
        for name in seen_tables {
            self.out.tables.entry(name).or_default().transactions += 1;
        }
    }
}

/// Replays the recovered files in order with the redo parser, each streamed in 1 MiB chunks:
/// every committed transaction and its row changes (11.2 insert, 11.3 delete, 11.5 update) by
/// table, all of them (see [`Tally`]).
pub fn replay(files: &[Recovered], tables: &HashMap<u32, String>) -> Replay {
    let mut tally = Tally::new(tables);
    let mut buf = vec![0u8; CHUNK];
    for f in files {
        if let Err(p) = replay_file(f, &mut tally, &mut buf) {
            tally.problem(p);
        }
    }
    tally.finish()
}

/// Feeds one file to the parser, its events to `tally`; a file that cannot be read or is not
/// redo is a problem (what was fed of it stays counted).
fn replay_file(f: &Recovered, tally: &mut Tally<'_>, buf: &mut [u8]) -> Result<(), String> {
    let path = f.path.display();
    let mut file = fs::File::open(&f.path).map_err(|e| format!("{path}: cannot read: {e}"))?;
    let mut a = Analyzer::new();
    let seq = f.sequence;
    let mut visit = |e: TxnEvent| tally.event(e, seq);
    loop {
        let n = read_chunk(&mut file, buf).map_err(|e| format!("{path}: cannot read: {e}"))?;
        if n == 0 {
            break;
        }
        a.feed_with(buf.get(..n).unwrap_or(&[]), &mut visit)
            .map_err(|e| format!("{path}: not a redo log: {e}"))?;
    }
    let r = a
        .finish_with(&mut visit)
        .map_err(|e| format!("{path}: not a redo log: {e}"))?;
    if let Some(first) = r.errors.first() {
        return Err(format!(
            "{path}: {} record error(s), first: {first}",
            r.errors.len() as u64 + r.errors_omitted
        ));
    }
    Ok(())
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

/// SHA-256 of a file, hex (streamed, 1 MiB at a time).
pub fn sha256_file(path: &Path) -> Result<String, DrillError> {
    let mut f = fs::File::open(path).map_err(|e| DrillError::io(path, e))?;
    let mut hash = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = read_chunk(&mut f, &mut buf).map_err(|e| DrillError::io(path, e))?;
        if n == 0 {
            break;
        }
        hash.update(buf.get(..n).unwrap_or(&[]));
    }
    Ok(hex::encode(hash.finalize()))
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

    fn xid(sqn: u32) -> Xid {
        Xid {
            usn: 3,
            slot: 1,
            sqn,
        }
    }

    fn row(x: Option<u32>, op: u8, obj: u32) -> TxnEvent {
        TxnEvent::Row(RowChange {
            xid: x.map(xid),
            opcode: redovault_redo::Opcode::new(11, op),
            data_object: obj,
            dba: 0,
            scn: redovault_redo::Scn(1),
            rba: redovault_redo::Rba::default(),
        })
    }

    fn end(x: u32, scn: u64, rollback: bool) -> TxnEvent {
        TxnEvent::End(Commit {
            xid: xid(x),
            scn: redovault_redo::Scn(scn),
            rollback,
            flags: 0,
            rba: redovault_redo::Rba::default(),
            end_block: 2,
            unix_time: None,
            con_id: None,
        })
    }

    #[test]
    fn the_tally_counts_committed_rows_per_table_and_forgets_the_rest() {
        let names = HashMap::from([(7, "ACCOUNTS".to_string()), (8, "LOANS".to_string())]);
        let mut t = Tally::new(&names);
        // Txn 1 (committed in the next log): 2 inserts in ACCOUNTS, 1 update in LOANS.
        t.event(row(Some(1), 2, 7), 5);
        t.event(row(Some(1), 2, 7), 5);
        t.event(row(Some(1), 5, 8), 5);
        // Txn 2 rolls back: its rows and the undo applied (no xid) are not counted.
        t.event(row(Some(2), 2, 8), 5);
        t.event(row(None, 3, 8), 5);
        t.event(end(2, 20, true), 5);
        // Txn 3: a delete in an unnamed object, and a non-row 11.x (11.19 array update) ignored.
        t.event(row(Some(3), 3, 99), 6);
        t.event(row(Some(3), 19, 99), 6);
        t.event(end(1, 21, false), 6);
        t.event(end(3, 22, false), 6);
        // Txn 4 never ends in the recovered redo.
        t.event(row(Some(4), 2, 7), 6);
        let r = t.finish();
        assert_eq!(
            r.commits,
            vec![("3.1.1".to_string(), 21, 6), ("3.1.3".to_string(), 22, 6)]
        );
        let acc = r.tables["ACCOUNTS"];
        assert_eq!((acc.transactions, acc.inserts, acc.rows), (1, 2, 2));
        let loans = r.tables["LOANS"];
        assert_eq!((loans.transactions, loans.updates, loans.rows), (1, 1, 0));
        let other = r.tables["OBJ#99"];
        assert_eq!((other.transactions, other.deletes, other.rows), (1, 1, -1));
        assert_eq!(r.compensations, 1);
        assert_eq!(r.row_changes, 6);
        assert!(r.problems.is_empty());
    }

    #[test]
    fn the_tally_holds_only_open_transactions() {
        // A million row changes in 10,000 committed transactions: nothing stays pending.
        let names = HashMap::new();
        let mut t = Tally::new(&names);
        for x in 0..10_000 {
            for _ in 0..100 {
                t.event(row(Some(x), 2, 1), 1);
            }
            t.event(end(x, u64::from(x), false), 1);
            assert!(t.pending.is_empty());
        }
        let r = t.finish();
        assert_eq!(r.tables["OBJ#1"].inserts, 1_000_000);
        assert_eq!(r.commits.len(), 10_000);
    }

    fn entry(xid: &str, scn: u64, rollback: bool) -> String {
        let e = JournalEntry {
            xid: xid.to_string(),
            usn: 1,
            slot: 2,
            sqn: 3,
            thread: 1,
            sequence: 4,
            scn,
            time: "2026-01-01T00:00:00Z".into(),
            unix_time: 1_767_225_600,
            rollback,
            block: 2,
            offset: 16,
            begin_scn: scn - 1,
            table: "ACCOUNTS".into(),
            data_object_id: 74_001,
            // Long lines: the last commit is far from the end in bytes.
            row_ids: vec!["AAASJRAAZAAAACAAAA".to_string(); 200],
            op_count: 200,
            inserts: 200,
            updates: 0,
            deletes: 0,
            long: false,
        };
        serde_json::to_string(&e).unwrap() + "\n"
    }

    #[test]
    fn the_last_commit_comes_from_the_journals_tail_past_rollbacks() {
        let dir = std::env::temp_dir().join(format!("referee-tail-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("journal.jsonl");
        // Many commits, then enough rollbacks (~4 KiB each) that the window must grow past
        // 64 KiB to find the last commit.
        let mut text = String::new();
        for i in 0..300 {
            text.push_str(&entry(&format!("1.1.{i}"), 100 + i, false));
        }
        for i in 0..40 {
            text.push_str(&entry(&format!("2.2.{i}"), 1_000 + i, true));
        }
        fs::write(&p, &text).unwrap();
        let got = last_commit_in_journal(&p).unwrap();
        assert_eq!(got, Some(("1.1.299".to_string(), 399)));
        let all = parse_journal(&text).unwrap();
        let want = journal_commits(&all).last().map(|c| (c.0.clone(), c.1));
        assert_eq!(got, want);
        // Only rollbacks, or nothing: no commit.
        fs::write(&p, entry("2.2.1", 5, true)).unwrap();
        assert_eq!(last_commit_in_journal(&p).unwrap(), None);
        fs::write(&p, "").unwrap();
        assert_eq!(last_commit_in_journal(&p).unwrap(), None);
        // A damaged line is an error naming the file.
        fs::write(&p, "{not json\n").unwrap();
        let e = last_commit_in_journal(&p).unwrap_err().to_string();
        assert!(e.contains("journal.jsonl"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_threads_last_commit_comes_from_the_tail_however_far_back() {
        let dir = std::env::temp_dir().join(format!("referee-tail2-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("journal.jsonl");
        // Thread 2's last commit, then ~200 KiB of thread 1's: the window must grow.
        let mut text = String::new();
        let mut two = parse_journal(&entry("2.2.7", 50, false)).unwrap().remove(0);
        two.thread = 2;
        text.push_str(&(serde_json::to_string(&two).unwrap() + "\n"));
        for i in 0..60 {
            text.push_str(&entry(&format!("1.1.{i}"), 100 + i, i % 7 == 6));
        }
        fs::write(&p, &text).unwrap();
        let tail = last_commits_in_journal(&p, 2).unwrap();
        assert_eq!(tail.last, Some(("1.1.59".to_string(), 159)));
        assert_eq!(tail.per_thread.get(&1), Some(&("1.1.59".to_string(), 159)));
        assert_eq!(tail.per_thread.get(&2), Some(&("2.2.7".to_string(), 50)));
        // A thread with no commit at all: absent, after reading the whole file.
        let tail = last_commits_in_journal(&p, 3).unwrap();
        assert_eq!(tail.per_thread.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn first_difference_over_a_range() {
        assert_eq!(first_difference(b"abcdef", b"abXdef", 0, 6), Some(2));
        assert_eq!(first_difference(b"abcdef", b"abXdef", 3, 6), None);
        assert_eq!(first_difference(b"abc", b"abcdef", 0, 6), Some(3));
    }
}
