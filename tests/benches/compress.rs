//! zstd on redo (issue 19): ratio, MB/s and CPU per MB at each level, for the link (each Data
//! as the extractor sends it: the tailer's chunks, encoded with `Message::encode_with`) and for
//! the collector's segments (each chunk as the store seals it: `StoredChunk::encode_with`), and
//! what giving the bytes back costs (`Message::decode`, `StoredChunk::decode`).
//!
//! Inputs: the real 23ai archived log (`../shared/fixtures/oracle-real`, read from there;
//! skipped in one line without it), a log of `redovault simulate` (23.6, the simulator's
//! default mix), and one simulated as 19c (`--db-version 19.0`). The simulator has no LOB
//! workload, so a LOB-heavy 19c log is not among them.
//!
//! Levels `REDOVAULT_BENCH_LEVELS` (1,3,9,19); link chunks `REDOVAULT_BENCH_LINK_CHUNK` (64 KiB:
//! what the tailer reads per poll at about 10 MB/s; a backlog is read in 1 MiB chunks, the
//! segment column); segment chunks the store's default 1 MiB; simulated logs
//! `REDOVAULT_BENCH_SIM_MIB` (16). Each figure is CPU seconds of this one thread (from
//! /proc, 10 ms ticks) over at least one second of repeated passes.
//!
//! ```sh
//! deploy/bench.sh compress        # or: cargo bench -p redovault --bench compress
//! ```

#[path = "common.rs"]
mod common;

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/oracle_real.rs"
    ));
}

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redovault::compress::Level;
use redovault::wire::StreamPos;
use redovault::wire::frame::FrameKind;
use redovault::wire::message::{Data, Message};
use redovault_collector::segment::StoredChunk;
use redovault_redo::position::LogSeq;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `pass` until at least a second and two passes went by; CPU seconds per pass.
fn cpu_per_pass(mut pass: impl FnMut()) -> f64 {
    let (c0, _) = common::cpu_seconds();
    let t0 = Instant::now();
    let mut n = 0u32;
    while n < 2 || t0.elapsed() < Duration::from_secs(1) {
        pass();
        n += 1;
    }
    let (c1, _) = common::cpu_seconds();
    f64::max(c1 - c0, 0.01) / f64::from(n)
}

fn pieces(log: &[u8], chunk: usize) -> Vec<(StreamPos, &[u8])> {
    log.chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            (
                StreamPos {
                    seq: LogSeq(7),
                    offset: (i * chunk) as u64,
                },
                c,
            )
        })
        .collect()
}

struct Row {
    ratio: f64,
    mb_s: f64,
    cpu_ms_per_mb: f64,
    back_mb_s: f64,
}

/// The link: each chunk as a Data payload, compressed at `level` (raw payloads as the base).
fn link(log: &[u8], chunk: usize, level: Level) -> Row {
    let datas: Vec<Data> = pieces(log, chunk)
        .into_iter()
        .map(|(pos, b)| Data {
            pos,
            bytes: Bytes::copy_from_slice(b),
            commits: Vec::new(),
            log_end: None,
        })
        .collect();
    let encode = |level: Option<Level>| -> Vec<Bytes> {
        datas
            .iter()
            .map(|d| {
                let mut out = BytesMut::new();
                Message::Data(d.clone())
                    .encode_with(&mut out, level)
                    .expect("a valid Data");
                out.freeze()
            })
            .collect()
    };
    let raw: usize = encode(None).iter().map(Bytes::len).sum();
    let packed = encode(Some(level));
    let sent: usize = packed.iter().map(Bytes::len).sum();
    let cpu = cpu_per_pass(|| {
        std::hint::black_box(encode(Some(level)));
    });
    let back = cpu_per_pass(|| {
        for p in &packed {
            std::hint::black_box(Message::decode(FrameKind::DATA, p.clone()).expect("decodes"));
        }
    });
    row(log.len(), raw, sent, cpu, back)
}

/// The segments: each chunk's plaintext as the store seals it (raw chunks as the base).
fn segment(log: &[u8], chunk: usize, level: Level) -> Row {
    let chunks: Vec<StoredChunk> = pieces(log, chunk)
        .into_iter()
        .map(|(start, b)| StoredChunk {
            start,
            data: b.to_vec(),
            commits: Vec::new(),
            log_end: false,
        })
        .collect();
    let encode = |level: Option<Level>| -> Vec<Vec<u8>> {
        chunks
            .iter()
            .map(|c| c.encode_with(level).expect("a valid chunk"))
            .collect()
    };
    let raw: usize = encode(None).iter().map(Vec::len).sum();
    let packed = encode(Some(level));
    let stored: usize = packed.iter().map(Vec::len).sum();
    let cpu = cpu_per_pass(|| {
        std::hint::black_box(encode(Some(level)));
    });
    let back = cpu_per_pass(|| {
        for p in &packed {
            std::hint::black_box(StoredChunk::decode(p).expect("decodes"));
        }
    });
    row(log.len(), raw, stored, cpu, back)
}

fn row(original: usize, raw: usize, packed: usize, cpu: f64, back: f64) -> Row {
    let mb = original as f64 / 1e6;
    Row {
        ratio: packed as f64 / raw as f64,
        mb_s: mb / cpu,
        cpu_ms_per_mb: cpu * 1e3 / mb,
        back_mb_s: mb / back,
    }
}

/// The first archived log of a fresh simulator run (what `redovault simulate --fast
/// --switches 1 --db-version VERSION --log-size MIBM` writes).
fn simulated(dir: &Path, version: &str, mib: u64) -> Vec<u8> {
    let mut cfg = redovault_drill::simulate::SimConfig::new(dir);
    cfg.switches = Some(1);
    cfg.compat = redovault_redo::writer::Compat::parse(version).expect("a database version");
    cfg.log_size = mib << 20;
    let summary = redovault_drill::simulate::run(cfg).expect("simulate");
    std::fs::read(summary.archived.first().expect("an archived log")).expect("read the log")
}

fn main() {
    let levels: Vec<Level> = std::env::var("REDOVAULT_BENCH_LEVELS")
        .unwrap_or_else(|_| "1,3,9,19".into())
        .split(',')
        .filter_map(|l| l.trim().parse().ok().and_then(Level::new))
        .collect();
    let link_chunk = env_num("REDOVAULT_BENCH_LINK_CHUNK", 64 << 10) as usize;
    let segment_chunk = 1 << 20;
    let mib = env_num("REDOVAULT_BENCH_SIM_MIB", 16);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(log) = oracle_real::free23_log("arch1_15_1224959854.dbf") {
        inputs.push(("real 23ai archived log (arch1_15)".into(), log));
    }
    for (version, name) in [("23.6", "simulated 23.6"), ("19.0", "simulated 19c")] {
        let dir = tmp.path().join(version);
        let log = simulated(&dir, version, mib);
        inputs.push((name.into(), log));
    }
    println!(
        "link chunks {} KiB, segment chunks {} KiB; CPU of one thread",
        link_chunk >> 10,
        segment_chunk >> 10
    );
    println!(
        "| input | size | level | link ratio | link MB/s | link CPU ms/MB | segment ratio | segment MB/s | segment CPU ms/MB | decompress MB/s (link / segment) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, log) in &inputs {
        for &level in &levels {
            let l = link(log, link_chunk, level);
            let s = segment(log, segment_chunk, level);
            println!(
                "| {name} | {:.1} MB | {} | {:.3} | {:.0} | {:.2} | {:.3} | {:.0} | {:.2} | {:.0} / {:.0} |",
                log.len() as f64 / 1e6,
                level.get(),
                l.ratio,
                l.mb_s,
                l.cpu_ms_per_mb,
                s.ratio,
                s.mb_s,
                s.cpu_ms_per_mb,
                l.back_mb_s,
                s.back_mb_s,
            );
        }
    }
}
