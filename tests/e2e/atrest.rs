//! At rest on the collector: no plaintext redo in its segment files, and a flipped bit in a
//! segment is detected (the collector refuses to start, and `rebuild` and `commits` refuse
//! to read past it), each error naming the file and the offset.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netkit::{LiveDb, World, bins, init_logs, stream_metric, wait_until};

/// Length of the plaintext probes looked for in the segments.
const PROBE: usize = 24;

fn segments(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for s in std::fs::read_dir(store.join("streams")).unwrap().flatten() {
        for f in std::fs::read_dir(s.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// Row data the simulator wrote: `row <id> <letters>` strings (at least 24 bytes) found in
/// the redo of the archived logs.
fn known_plaintext(w: &World) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(w.sim.join("archive")).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        let mut i = 0;
        while let Some(p) = bytes[i..].windows(4).position(|x| x == b"row ") {
            let start = i + p;
            let mut end = start + 4;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end < bytes.len() && bytes[end] == b' ' {
                end += 1;
                while end < bytes.len() && bytes[end].is_ascii_lowercase() && end - start < 48 {
                    end += 1;
                }
            }
            if end - start >= 24 {
                found.push(bytes[start..end].to_vec());
            }
            i = end.max(start + 1);
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_plaintext_redo_on_the_collector_disk_and_a_flipped_bit_is_detected() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(256 << 10, 512 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(4));
    db.stop();
    let journal = w.journal();
    let last = journal.iter().rev().find(|e| !e.rollback).unwrap().clone();
    wait_until(
        "the collector to hold the last commit",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            stream_metric(
                w.collector_metrics_addr(),
                "redovault_collector_durable_scn",
                &stream,
            ) == Some(last.scn as f64)
        },
    );
    assert!(extractor.terminate(Duration::from_secs(20)));
    assert!(collector.terminate(Duration::from_secs(20)));

    // No plaintext: row data the database wrote, and runs of redo bytes taken all over the
    // shipped logs. Every 24-byte window of every segment is looked up among them.
    let plain = known_plaintext(&w);
    assert!(
        plain.len() > 50,
        "row data found in the redo: {}",
        plain.len()
    );
    let mut probes: HashSet<[u8; PROBE]> = plain
        .iter()
        .filter_map(|k| k.get(..PROBE).and_then(|p| p.try_into().ok()))
        .collect();
    for e in std::fs::read_dir(w.sim.join("archive")).unwrap().flatten() {
        let log = std::fs::read(e.path()).unwrap();
        for at in (1024..log.len().saturating_sub(PROBE)).step_by(331) {
            let win: [u8; PROBE] = log[at..at + PROBE].try_into().unwrap();
            // Runs of zeros or padding say nothing about encryption.
            if win.iter().collect::<HashSet<_>>().len() >= 12 {
                probes.insert(win);
            }
        }
    }
    assert!(probes.len() > 1000, "{} probes", probes.len());
    let segs = segments(&w.store);
    assert!(segs.len() >= 3, "several segments: {segs:?}");
    let mut held = 0usize;
    for p in &segs {
        let data = std::fs::read(p).unwrap();
        held += data.len();
        if let Some(at) = data.windows(PROBE).position(|x| probes.contains(x)) {
            panic!(
                "{} holds plaintext redo at offset {at}: {:?}",
                p.display(),
                String::from_utf8_lossy(&data[at..at + PROBE])
            );
        }
    }
    assert!(held > 1 << 20, "the segments hold the redo ({held} bytes)");
    // The probes would be found in plaintext: the source logs hold them.
    let src = std::fs::read(
        std::fs::read_dir(w.sim.join("archive"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(src.windows(PROBE).any(|x| probes.contains(x)));

    // A flipped bit inside the first sealed chunk of the first segment.
    let victim = &segs[0];
    let mut data = std::fs::read(victim).unwrap();
    let record = data
        .windows(4)
        .position(|x| x == b"RVCK")
        .expect("a chunk record");
    let at = record + 16 + 7;
    data[at] ^= 0x10;
    std::fs::write(victim, &data).unwrap();
    let name = victim.display().to_string();

    // The collector refuses to start on it, naming the file and the offset.
    let out = Command::new(&bins().collector)
        .args(["--config", ccfg.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the collector must not serve: {err}");
    assert!(
        err.contains(&name) && err.contains(&format!("offset {record}")),
        "the error names {name} and offset {record}: {err}"
    );
    // So do rebuild and commits.
    for args in [
        vec!["rebuild", "--stream", &stream, "--out"],
        vec!["commits", "--stream", &stream],
    ] {
        let mut cmd = Command::new(&bins().collector);
        cmd.args(&args);
        if args[0] == "rebuild" {
            cmd.arg(w.path("never.log"));
        }
        let out = cmd
            .args(["--config", ccfg.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail: {err}");
        assert!(
            err.contains(&name) && err.contains(&format!("offset {record}")),
            "{args:?}: the error names {name} and offset {record}: {err}"
        );
    }
    assert!(!w.path("never.log").exists());
}
