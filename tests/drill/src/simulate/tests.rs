//! Unit tests of the simulator: files, switches, archives, stale blocks and determinism.

use super::*;
use redovault_redo::checksum::block_checksum_ok;

fn small(dir: &Path, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(dir);
    c.log_size = 64 * 1024;
    c.seed = seed;
    c.switches = Some(5);
    c.mix.long_pct = 20;
    c
}

fn read(p: &Path) -> Vec<u8> {
    fs::read(p).expect("read")
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[test]
fn switches_archive_and_reuse_without_zeroing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = run(small(tmp.path(), 1)).expect("run");
    assert_eq!(s.switches, 5);
    assert_eq!(s.archived.len(), 5);
    for (i, a) in s.archived.iter().enumerate() {
        let name = format!("arch1_{}_{}.dbf", i + 1, SimConfig::new("x").resetlogs_id());
        assert_eq!(a.file_name().and_then(|n| n.to_str()), Some(name.as_str()));
        let b = read(a);
        let nab = u32le(&b, 512 + 156);
        assert_eq!(b.len(), nab as usize * 512, "archive is exactly nab blocks");
        assert_eq!(u32le(&b, 24), nab - 1);
        assert!(b.chunks(512).all(block_checksum_ok));
        assert_eq!(u32le(&b, 512 + 8), i as u32 + 1, "sequence");
    }
    // No temporary file left behind.
    assert_eq!(
        fs::read_dir(tmp.path().join("archive"))
            .expect("dir")
            .count(),
        5
    );
    // Current log: seq 6 in group 3 (groups 1,2,3,1,2,3); it reuses the file of seq 3.
    assert_eq!(
        s.current,
        vec![(1, 6, tmp.path().join("online/redo_t1_g3.log"))]
    );
    let cur = read(&s.current[0].2);
    assert_eq!(u32le(&cur, 512 + 156), 0xFFFF_FFFF);
    assert_eq!(&cur[512 + 192..512 + 198], &[0xFF; 6]);
    // Blocks of seq 3 that seq 6 has not reached yet are still there, not zeroed.
    let nab3 = read(&s.archived[2]).len() / 512;
    let seqs: Vec<u32> = cur
        .chunks(512)
        .skip(2)
        .take(nab3 - 2)
        .map(|b| u32le(b, 8))
        .collect();
    assert_eq!(seqs.first(), Some(&6));
    let written = seqs.iter().take_while(|&&q| q == 6).count();
    assert!(seqs[written..].iter().all(|&q| q == 3), "{seqs:?}");
    assert!(written < seqs.len(), "some stale blocks of seq 3 remain");
    // A switched online log (seq 5 in group 2) equals its archive except for block 0.
    let g2 = read(&tmp.path().join("online/redo_t1_g2.log"));
    let arch5 = read(&s.archived[4]);
    assert_eq!(&g2[512..arch5.len()], &arch5[512..]);
    assert_eq!(u32le(&g2, 24) as usize, 64 * 1024 / 512);
    // The journal holds every ended transaction.
    let text = fs::read_to_string(tmp.path().join("journal.jsonl")).expect("journal");
    let j = journal::parse_journal(&text).expect("parse");
    assert_eq!(j.len() as u64, s.commits + s.rollbacks);
    assert!(s.rollbacks > 0 && s.commits > s.rollbacks);
    assert!(j.windows(2).all(|w| w[0].scn < w[1].scn));
}

#[test]
fn same_seed_same_bytes() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let c = tempfile::tempdir().expect("tempdir");
    run(small(a.path(), 9)).expect("run a");
    run(small(b.path(), 9)).expect("run b");
    run(small(c.path(), 10)).expect("run c");
    for rel in [
        "journal.jsonl",
        "online/redo_t1_g1.log",
        "online/redo_t1_g2.log",
        "online/redo_t1_g3.log",
    ] {
        assert_eq!(
            read(&a.path().join(rel)),
            read(&b.path().join(rel)),
            "{rel}"
        );
    }
    assert_ne!(
        read(&a.path().join("journal.jsonl")),
        read(&c.path().join("journal.jsonl"))
    );
}

#[test]
fn rac_threads_share_one_clock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 3);
    c.threads = 2;
    c.switches = None;
    c.transactions = Some(300);
    c.archive_current = true;
    let s = run(c).expect("run");
    let text = fs::read_to_string(tmp.path().join("journal.jsonl")).expect("journal");
    let j = journal::parse_journal(&text).expect("parse");
    assert_eq!(j.len(), 300);
    let t1 = j.iter().filter(|e| e.thread == 1).count();
    assert!(t1 > 50 && t1 < 250, "{t1}");
    // SCNs are unique across threads; XIDs too (separate undo segments).
    let mut scns: Vec<u64> = j.iter().map(|e| e.scn).collect();
    scns.dedup();
    assert_eq!(scns.len(), 300);
    let mut xids: Vec<&str> = j.iter().map(|e| e.xid.as_str()).collect();
    xids.sort_unstable();
    xids.dedup();
    assert_eq!(xids.len(), 300);
    assert!(
        s.archived
            .iter()
            .any(|p| p.to_string_lossy().contains("arch2_"))
    );
    assert_eq!(s.current.len(), 2);
}

#[test]
fn bad_settings_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 1);
    c.groups = 1;
    assert!(matches!(run(c), Err(SimError::Config(_))));
    let mut c = small(tmp.path(), 1);
    c.log_size = 1000;
    assert!(matches!(run(c), Err(SimError::Config(_))));
    // A directory that already holds a run is refused, and left as it was.
    run(small(tmp.path(), 1)).expect("first run");
    let before = read(&tmp.path().join("journal.jsonl"));
    assert!(matches!(
        run(small(tmp.path(), 2)),
        Err(SimError::Config(_))
    ));
    assert_eq!(read(&tmp.path().join("journal.jsonl")), before);
    assert_eq!(Rate::parse("64K"), Some(Rate::BytesPerSec(65_536)));
    assert_eq!(Rate::parse("20tx"), Some(Rate::TxPerSec(20)));
    assert_eq!(Rate::parse("0"), None);
    assert_eq!(parse_size("1M"), Some(1 << 20));
}

#[test]
fn transaction_rate_drives_the_clock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 4);
    c.switches = None;
    c.transactions = Some(50);
    c.rate = Rate::TxPerSec(10);
    let s = run(c).expect("run");
    assert!(
        (s.simulated_seconds - 5.0).abs() < 1e-9,
        "{}",
        s.simulated_seconds
    );
    let text = fs::read_to_string(tmp.path().join("journal.jsonl")).expect("journal");
    let j = journal::parse_journal(&text).expect("parse");
    let start = SimConfig::new("x").start_time;
    assert_eq!(j.first().map(|e| e.unix_time), Some(start));
    assert_eq!(j.last().map(|e| e.unix_time), Some(start + 4));
}

#[test]
fn precise_clock_and_lag_behind_the_wall_clock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 5);
    c.switches = None;
    c.rate = Rate::TxPerSec(1000);
    let mut sim = Simulator::start(c).expect("start");
    for _ in 0..2500 {
        sim.step().expect("step");
    }
    let (whole, precise) = (sim.now(), sim.now_precise());
    assert!(
        precise >= whole as f64 && precise < whole as f64 + 1.0,
        "{whole} {precise}"
    );
    assert!(precise > SimConfig::new("x").start_time as f64);
    // Not realtime: the simulated clock runs ahead of the wall clock, never behind by much.
    assert!(sim.behind_wall_clock() < Duration::from_secs(1));
}

/// Many seeds over all variants, each log checked by the parser against the journal: shakes
/// out layout edge cases (records ending at a block end, short block tails, long LWNs).
#[test]
fn many_seeds_round_trip_through_the_parser() {
    let sizes = [BlockSize::B512, BlockSize::B1024, BlockSize::B4096];
    let versions = [
        Compat::V11_2_0_4,
        Compat::V12_1_0_2,
        Compat::V19_0,
        Compat::V23_6,
    ];
    for seed in 0..24u64 {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = small(tmp.path(), seed);
        c.block_size = sizes[seed as usize % 3];
        c.endian = if seed % 2 == 0 {
            Endian::Little
        } else {
            Endian::Big
        };
        c.compat = versions[seed as usize % 4];
        c.scn_form = Some(if seed % 5 == 0 {
            ScnForm::Big
        } else {
            ScnForm::Small
        });
        c.switches = Some(3);
        c.lwn_bytes = 2048 + 1500 * (seed as usize % 7);
        c.mix.rollback_pct = 25;
        let s = run(c).expect("run");
        let mut seen = Vec::new();
        let mut logs = s.archived.clone();
        logs.extend(s.current.iter().map(|c| c.2.clone()));
        for p in &logs {
            let r = redovault_redo::analyze(&read(p)).expect("redo");
            assert!(
                r.is_clean(),
                "seed {seed} {}: {:?} {:?}",
                p.display(),
                r.bad_blocks,
                r.errors
            );
            for c in &r.commits {
                seen.push((
                    c.scn.0,
                    c.xid.to_string(),
                    c.rollback,
                    c.rba.block,
                    c.rba.offset,
                ));
            }
        }
        let text = fs::read_to_string(tmp.path().join("journal.jsonl")).expect("journal");
        let want: Vec<_> = journal::parse_journal(&text)
            .expect("parse")
            .into_iter()
            .map(|e| (e.scn, e.xid, e.rollback, e.block, e.offset))
            .collect();
        seen.sort();
        assert_eq!(seen, want, "seed {seed}");
    }
}

#[test]
fn switch_interval_switches_by_age() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = SimConfig::new(tmp.path());
    c.switches = None;
    c.duration = Some(Duration::from_secs(60));
    c.rate = Rate::TxPerSec(2);
    c.switch_interval = Some(Duration::from_secs(10));
    let s = run(c).expect("run");
    // 1 MiB logs never fill at this rate: every switch is by age, about every 10 s.
    assert!((5..=6).contains(&s.switches), "{}", s.switches);
    for p in &s.archived {
        let b = read(p);
        let first = u32le(&b, 512 + 188);
        let next = u32le(&b, 512 + 200);
        assert!(next - first >= 10, "{}: {first}..{next}", p.display());
    }
}

#[test]
fn switch_logfile_archives_every_thread() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 8);
    c.threads = 3;
    let mut sim = Simulator::start(c).expect("start");
    for _ in 0..200 {
        sim.step().expect("step");
    }
    sim.switch_logfile().expect("switch");
    let s = sim.finish().expect("finish");
    assert_eq!(s.archived.len(), 3);
    for (t, p) in s.archived.iter().enumerate() {
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(name.starts_with(&format!("arch{}_1_", t + 1)), "{name}");
        let r = redovault_redo::analyze(&read(p)).expect("redo");
        assert!(r.is_clean());
    }
    assert!(s.current.iter().all(|c| c.1 == 2));
}

#[test]
fn torn_lwn_write_and_write_position() {
    use std::sync::{Arc, Mutex};
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sim = Simulator::start(small(tmp.path(), 2)).expect("start");
    for _ in 0..5 {
        sim.step().expect("step");
    }
    let (seq, before) = sim.write_position(1).expect("thread 1");
    assert_eq!(seq, LogSeq(1));
    assert!(sim.write_position(2).is_none() && sim.write_position(0).is_none());
    let path = tmp.path().join("online/redo_t1_g1.log");
    let block = move |b: &[u8]| b[before as usize * 512..(before as usize + 1) * 512].to_vec();
    let seen = Arc::new(Mutex::new(None));
    let (p, s) = (path.clone(), seen.clone());
    sim.tear_next_lwn(move || {
        let b = block(&fs::read(&p).expect("read"));
        *s.lock().expect("lock") = Some(block_checksum_ok(&b));
    });
    while sim.write_position(1).expect("thread 1").1 == before {
        sim.step().expect("step");
    }
    assert_eq!(
        *seen.lock().expect("lock"),
        Some(false),
        "torn while writing"
    );
    assert!(block_checksum_ok(&block(&read(&path))), "whole afterwards");
}

/// (opcode, field sizes) of every vector in the archived logs of a run.
fn vectors_of(logs: &[PathBuf]) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    for log in logs {
        let mut d = redovault_redo::Decoder::new();
        d.feed(&read(log));
        d.finish();
        while let Some(ev) = d.poll().expect("redo") {
            if let redovault_redo::Event::Record(r) = ev {
                for v in r.vectors() {
                    let v = v.expect("vector");
                    let fields = v.fields().map(<[u8]>::to_vec).collect();
                    out.push((v.opcode.to_string(), fields));
                }
            }
        }
    }
    out
}

#[test]
fn transaction_records_carry_what_oracle_writes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 3);
    c.mix.rollback_pct = 40;
    let s = run(c).expect("run");
    let vs = vectors_of(&s.archived);
    let count = |op: &str| vs.iter().filter(|(o, _)| o == op).count();
    // Session attributes: a new session's first transaction 5.19, the others 5.20.
    assert!(count("5.19") > 0 && count("5.20") > count("5.19"));
    assert_eq!(count("5.19") + count("5.20"), count("5.2"));
    // Rollbacks: 5.6 with a full ktubu (user undo done) and the ktuxvoff.
    assert!(count("5.6") > 0);
    for (_, f) in vs.iter().filter(|(o, _)| o == "5.6") {
        assert_eq!(f.iter().map(Vec::len).collect::<Vec<_>>(), [24, 8]);
        assert_eq!(u16::from_le_bytes([f[0][20], f[0][21]]), 0x0010);
    }
    // Every 5.1: a 76-byte ktubl (0x0c08) or a 24-byte ktubu, and the supplemental-log section.
    for (_, f) in vs.iter().filter(|(o, _)| o == "5.1") {
        let flg = u16::from_le_bytes([f[1][20], f[1][21]]);
        assert!(
            (f[1].len(), flg) == (76, 0x0c08) || (f[1].len(), flg) == (24, 0),
            "ktub {} bytes, flag {flg:#x}",
            f[1].len()
        );
        let supp = f.last().expect("fields");
        assert_eq!(
            (supp.len(), supp[1]),
            (20, 0x1c),
            "supplemental-log section"
        );
    }

    // Without supplemental logging, no 5.1 ends with the section.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut c = small(tmp.path(), 3);
    c.supplemental_log = false;
    let vs = vectors_of(&run(c).expect("run").archived);
    assert!(
        vs.iter()
            .filter(|(o, _)| o == "5.1")
            .all(|(_, f)| f.last().is_none_or(|l| l.len() != 20 || l[1] != 0x1c))
    );
}
