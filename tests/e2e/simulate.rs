//! End-to-end tests of `simulate`: the binary writes online and archived logs and a journal;
//! the parser (`redovault_redo::analyze`) must find every file clean and report exactly the
//! commits the journal holds.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use redovault_drill::simulate::journal::{JournalEntry, parse_journal};
use redovault_redo::{LogState, Report, analyze};

/// Runs `redovault simulate --dir DIR ARGS...` and returns its JSON summary.
fn simulate(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = Command::new(&crate::netkit::bins().redovault)
        .arg("simulate")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run redovault simulate");
    assert!(
        out.status.success(),
        "simulate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON on stdout")
}

fn journal(dir: &Path) -> Vec<JournalEntry> {
    let text = fs::read_to_string(dir.join("journal.jsonl")).expect("journal.jsonl");
    parse_journal(&text).expect("journal lines")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// A commit in a form both sides can produce.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    thread: u16,
    sequence: u32,
    scn: u64,
    xid: String,
    rollback: bool,
    block: u32,
    offset: u16,
    time: Option<i64>,
}

fn from_journal(e: &JournalEntry, with_time: bool) -> Seen {
    Seen {
        thread: e.thread,
        sequence: e.sequence,
        scn: e.scn,
        xid: e.xid.clone(),
        rollback: e.rollback,
        block: e.block,
        offset: e.offset,
        time: with_time.then_some(e.unix_time),
    }
}

fn from_report(r: &Report) -> Vec<Seen> {
    r.commits
        .iter()
        .map(|c| Seen {
            thread: r.header.thread.0,
            sequence: r.header.sequence.0,
            scn: c.scn.0,
            xid: c.xid.to_string(),
            rollback: c.rollback,
            block: c.rba.block,
            offset: c.rba.offset,
            time: c.unix_time.map(i64::from),
        })
        .collect()
}

fn analyze_file(p: &Path) -> (Vec<u8>, Report) {
    let bytes = fs::read(p).expect("read redo file");
    let report = analyze(&bytes).unwrap_or_else(|e| panic!("{}: not redo: {e}", p.display()));
    (bytes, report)
}

/// Checks one simulated directory: every file clean, archives exactly nab blocks, switched
/// online logs equal to their archives, and archives + current logs == journal.
/// Returns the number of journaled transactions and of stale blocks (left over from the
/// previous cycle of a reused group) in the current logs.
fn check_round_trip(
    dir: &Path,
    summary: &serde_json::Value,
    bs: usize,
    with_time: bool,
) -> (usize, u64) {
    let entries = journal(dir);
    assert!(!entries.is_empty(), "journal is empty");
    let mut from_logs: Vec<Seen> = Vec::new();
    let mut archived: BTreeMap<(u16, u32), Vec<Seen>> = BTreeMap::new();
    let mut rows: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in files(&dir.join("archive")) {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            name.starts_with("arch") && name.ends_with(".dbf"),
            "unexpected {name}"
        );
        let (bytes, r) = analyze_file(&p);
        assert!(r.is_clean(), "{name}: {:?} {:?}", r.bad_blocks, r.errors);
        assert_eq!(r.log_state, LogState::Archived, "{name}");
        assert_eq!(r.file.block_size as usize, bs);
        assert_eq!(
            bytes.len(),
            r.header.nab as usize * bs,
            "{name}: exactly nab blocks"
        );
        assert_eq!(
            r.file.block_count + 1,
            r.header.nab,
            "{name}: block 0 count"
        );
        let expected = format!(
            "arch{}_{}_{}.dbf",
            r.header.thread.0, r.header.sequence.0, r.header.resetlogs_id
        );
        assert_eq!(name, expected);
        assert!(r.header.first_scn < r.header.next_scn, "{name}");
        for c in &r.commits {
            assert!(Some(c.scn) >= r.header.first_scn && Some(c.scn) < r.header.next_scn);
        }
        for rc in &r.row_changes {
            if let Some(x) = rc.xid {
                rows.entry(x.to_string()).or_default().push(rc.data_object);
            }
        }
        let seen = from_report(&r);
        from_logs.extend(seen.clone());
        archived.insert((r.header.thread.0, r.header.sequence.0), seen);
    }
    let current: BTreeSet<PathBuf> = summary["current"]
        .as_array()
        .expect("current")
        .iter()
        .map(|c| PathBuf::from(c[2].as_str().expect("path")))
        .collect();
    let mut stale_current = 0u64;
    for p in files(&dir.join("online")) {
        let (_, r) = analyze_file(&p);
        assert!(
            r.is_clean(),
            "{}: {:?} {:?}",
            p.display(),
            r.bad_blocks,
            r.errors
        );
        let seen = from_report(&r);
        if current.contains(&p) {
            assert_eq!(r.log_state, LogState::Current, "{}", p.display());
            stale_current += u64::from(r.blocks.stale);
            assert_eq!(r.header.next_scn, None);
            for rc in &r.row_changes {
                if let Some(x) = rc.xid {
                    rows.entry(x.to_string()).or_default().push(rc.data_object);
                }
            }
            from_logs.extend(seen);
        } else {
            // A switched-out online log holds what its archive holds.
            assert_eq!(r.log_state, LogState::Archived, "{}", p.display());
            let key = (r.header.thread.0, r.header.sequence.0);
            assert_eq!(
                archived.get(&key),
                Some(&seen),
                "{} vs its archive",
                p.display()
            );
        }
    }
    if !with_time {
        // Before 23ai the 5.4 has no time field; a parser may still report the LWN time,
        // which the simulator keeps equal to the commit time.
        let times: BTreeMap<(u16, u64), i64> = entries
            .iter()
            .map(|e| ((e.thread, e.scn), e.unix_time))
            .collect();
        for seen in &mut from_logs {
            if let Some(t) = seen.time.take() {
                assert_eq!(times.get(&(seen.thread, seen.scn)), Some(&t), "{seen:?}");
            }
        }
    }
    let mut want: Vec<Seen> = entries.iter().map(|e| from_journal(e, with_time)).collect();
    want.sort();
    from_logs.sort();
    assert_eq!(from_logs.len(), want.len(), "commit count: logs vs journal");
    assert_eq!(from_logs, want, "commits: logs vs journal");
    // Row changes: every journaled transaction's forward changes carry its XID and table.
    for e in &entries {
        let objs = rows.get(&e.xid).cloned().unwrap_or_default();
        assert_eq!(objs.len(), e.op_count as usize, "row changes of {}", e.xid);
        assert!(
            objs.iter().all(|&o| o == e.data_object_id),
            "data object of {}",
            e.xid
        );
        assert_eq!(e.row_ids.len(), e.op_count as usize);
    }
    (entries.len(), stale_current)
}

#[test]
fn round_trip_every_block_size_byte_order_and_version() {
    let mut total = 0;
    let mut stale = 0;
    for bs in ["512", "1024", "4096"] {
        for endian in ["little", "big"] {
            for version in ["11.2.0.4", "19.0", "23.6"] {
                let tmp = tempfile::tempdir().expect("tempdir");
                let args = [
                    "--fast",
                    "--block-size",
                    bs,
                    "--endian",
                    endian,
                    "--db-version",
                    version,
                    "--log-size",
                    "192K",
                    "--switches",
                    "4",
                    "--long-pct",
                    "20",
                    "--seed",
                    "11",
                ];
                let summary = simulate(tmp.path(), &args);
                assert_eq!(summary["switches"], 4);
                let with_time = version == "23.6";
                let (n, st) =
                    check_round_trip(tmp.path(), &summary, bs.parse().expect("bs"), with_time);
                stale += st;
                let rollbacks = journal(tmp.path()).iter().filter(|e| e.rollback).count();
                assert!(
                    rollbacks > 0,
                    "{bs} {endian} {version}: no rollback exercised"
                );
                total += n;
            }
        }
    }
    assert!(total > 18 * 20, "only {total} transactions in all variants");
    // Reused groups are not zeroed: the parser sees the previous cycle behind the write point.
    assert!(stale > 0, "no stale block in any current log");
}

#[test]
fn long_transactions_span_log_switches() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let summary = simulate(
        tmp.path(),
        &[
            "--fast",
            "--log-size",
            "64K",
            "--switches",
            "8",
            "--long-pct",
            "30",
            "--seed",
            "5",
        ],
    );
    check_round_trip(tmp.path(), &summary, 512, true);
    let entries = journal(tmp.path());
    // A long transaction whose begin SCN lies in an earlier log than its commit.
    let mut bounds: Vec<(u32, u64)> = Vec::new();
    for p in files(&tmp.path().join("archive")) {
        let (_, r) = analyze_file(&p);
        bounds.push((r.header.sequence.0, r.header.first_scn.expect("first").0));
    }
    bounds.sort();
    let seq_of = |scn: u64| {
        bounds
            .iter()
            .filter(|(_, f)| *f <= scn)
            .map(|(s, _)| *s)
            .max()
    };
    let spanning = entries
        .iter()
        .filter(|e| e.long && seq_of(e.begin_scn).is_some_and(|s| s < e.sequence))
        .count();
    assert!(spanning > 0, "no long transaction spans a log switch");
}

#[test]
fn scns_beyond_32_bits_round_trip() {
    for version in ["11.2.0.4", "23.6"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let summary = simulate(
            tmp.path(),
            &[
                "--fast",
                "--db-version",
                version,
                "--log-size",
                "64K",
                "--switches",
                "2",
                "--start-scn",
                "4294967200",
                "--endian",
                "big",
            ],
        );
        check_round_trip(tmp.path(), &summary, 512, version == "23.6");
        let entries = journal(tmp.path());
        assert!(
            entries.iter().any(|e| e.scn > u64::from(u32::MAX)),
            "SCN wrap not reached"
        );
    }
}

#[test]
fn rac_two_threads_round_trip() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let summary = simulate(
        tmp.path(),
        &[
            "--fast",
            "--threads",
            "2",
            "--log-size",
            "64K",
            "--transactions",
            "400",
            "--seed",
            "2",
        ],
    );
    check_round_trip(tmp.path(), &summary, 512, true);
    let entries = journal(tmp.path());
    assert_eq!(entries.len(), 400);
    assert!(entries.iter().any(|e| e.thread == 1) && entries.iter().any(|e| e.thread == 2));
    assert!(files(&tmp.path().join("online")).len() == 6);
    // One SCN clock: commit SCNs are unique across both threads.
    let scns: BTreeSet<u64> = entries.iter().map(|e| e.scn).collect();
    assert_eq!(scns.len(), entries.len());
}

#[test]
fn archive_current_leaves_everything_archived() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let summary = simulate(
        tmp.path(),
        &[
            "--fast",
            "--log-size",
            "64K",
            "--transactions",
            "150",
            "--archive-current",
        ],
    );
    let mut commits = 0;
    for p in files(&tmp.path().join("archive")) {
        let (_, r) = analyze_file(&p);
        assert!(r.is_clean());
        commits += r.commits.len();
    }
    assert_eq!(commits, 150);
    assert_eq!(journal(tmp.path()).len(), 150);
    // The new current log is empty: its header only, the rest stale or zero.
    let cur = PathBuf::from(summary["current"][0][2].as_str().expect("current path"));
    let (_, r) = analyze_file(&cur);
    assert_eq!(r.log_state, LogState::Current);
    assert!(r.commits.is_empty());
}

#[test]
fn same_seed_gives_the_same_bytes() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let args = [
        "--fast",
        "--log-size",
        "64K",
        "--switches",
        "3",
        "--seed",
        "42",
        "--endian",
        "big",
    ];
    simulate(a.path(), &args);
    simulate(b.path(), &args);
    for sub in ["archive", "online"] {
        let fa = files(&a.path().join(sub));
        let fb = files(&b.path().join(sub));
        assert_eq!(fa.len(), fb.len());
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(x.file_name(), y.file_name());
            assert!(
                fs::read(x).expect("a") == fs::read(y).expect("b"),
                "{}",
                x.display()
            );
        }
    }
    assert_eq!(
        fs::read(a.path().join("journal.jsonl")).expect("a"),
        fs::read(b.path().join("journal.jsonl")).expect("b")
    );
}

/// While the simulator runs in real time, the current online log is always readable: header
/// first (CURRENT), then valid blocks up to the write point and nothing torn behind it.
#[test]
fn live_current_log_is_consistent_while_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(&crate::netkit::bins().redovault)
        .arg("simulate")
        .arg("--dir")
        .arg(tmp.path())
        .args([
            "--rate",
            "200K",
            "--duration",
            "3s",
            "--log-size",
            "1M",
            "--fsync",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn simulate");
    let started = Instant::now();
    let online = tmp.path().join("online/redo_t1_g1.log");
    let mut looks = 0;
    let mut max_commits = 0;
    while started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(bytes) = fs::read(&online) else {
            continue;
        };
        let Ok(r) = analyze(&bytes) else { continue };
        if r.log_state != LogState::Current {
            continue;
        }
        // A block being written while we read can be torn: like a tailer, read again.
        let mut r = r;
        for _ in 0..5 {
            if r.is_clean() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            let again = fs::read(&online).expect("re-read");
            let Ok(next) = analyze(&again) else { break };
            r = next;
        }
        if r.log_state != LogState::Current {
            continue;
        }
        looks += 1;
        assert!(r.is_clean(), "live log: {:?} {:?}", r.bad_blocks, r.errors);
        assert!(r.commits.len() >= max_commits, "commits never disappear");
        max_commits = r.commits.len();
    }
    let status = child.wait().expect("wait");
    assert!(status.success());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "--duration is paced in real time"
    );
    assert!(looks >= 5, "looked at the live log {looks} times");
    assert!(max_commits > 0);
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for args in [
        &["--block-size", "2048"][..],
        &["--endian", "middle"],
        &["--db-version", "x.y"],
        &["--log-size", "1K"],
        &["--groups", "1"],
    ] {
        let out = Command::new(&crate::netkit::bins().redovault)
            .arg("simulate")
            .arg("--dir")
            .arg(tmp.path())
            .args(["--fast", "--transactions", "1"])
            .args(args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}
