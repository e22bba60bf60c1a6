//! Decode and checksum throughput on a large (≥ 64 MiB) redo log.
//!
//! The log is built from the real 23ai archived log `arch1_15_1224959854.dbf`: its record blocks
//! (2..=597) are repeated, renumbered and re-sealed with their checksums until the file holds at
//! least 64 MiB; blocks 0 and 1 get the new block count and nab. Every copy keeps the real
//! records, LWNs and commits, so the decoder does the full work: block checks, record
//! reassembly across blocks, change vectors and commit extraction.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-parser cargo bench -p redovault-redo --bench decode`

use std::time::Duration;

use criterion::{Criterion, Throughput, black_box};
use redovault_redo::{
    Decoder, Event, Opcode, analyze, block::CHECKSUM_AT, checksum, header::FILE_HEADER_CHECKSUM_AT,
    txn,
};

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/support/oracle_real.rs"
    ));
}

const BS: usize = 512;
const TARGET: usize = 64 << 20;

fn big_log() -> (Vec<u8>, usize) {
    let f = oracle_real::free23_log("arch1_15_1224959854.dbf")
        .expect("this benchmark needs the real Oracle logs (../shared/fixtures/oracle-real)");
    let body = &f[2 * BS..598 * BS];
    let copies = TARGET.div_ceil(body.len());
    let blocks = 2 + copies * 596;
    let mut out = Vec::with_capacity(blocks * BS);
    out.extend_from_slice(&f[..2 * BS]);
    for _ in 0..copies {
        out.extend_from_slice(body);
    }
    out[24..28].copy_from_slice(&((blocks - 1) as u32).to_le_bytes());
    checksum::set_checksum(&mut out[..BS], FILE_HEADER_CHECKSUM_AT);
    out[BS + 156..BS + 160].copy_from_slice(&(blocks as u32).to_le_bytes());
    checksum::set_checksum(&mut out[BS..2 * BS], CHECKSUM_AT);
    for n in 2..blocks {
        let b = &mut out[n * BS..(n + 1) * BS];
        b[4..8].copy_from_slice(&(n as u32).to_le_bytes());
        checksum::set_checksum(b, CHECKSUM_AT);
    }
    (out, copies)
}

/// Decoder + every change vector + every commit: returns (records, vectors, commits).
fn decode_all(log: &[u8]) -> (u64, u64, u64) {
    let mut d = Decoder::new();
    let (mut records, mut vectors, mut commits) = (0u64, 0u64, 0u64);
    for chunk in log.chunks(1 << 20) {
        d.feed(chunk);
        while let Some(ev) = d.poll().expect("a redo log") {
            if let Event::Record(r) = ev {
                records += 1;
                for v in r.vectors() {
                    let v = v.expect("valid vectors");
                    vectors += 1;
                    if v.opcode == Opcode::TxnEnd && txn::commit_of(&r, &v).is_ok() {
                        commits += 1;
                    }
                }
            }
        }
    }
    d.finish();
    while d.poll().expect("a redo log").is_some() {}
    (records, vectors, commits)
}

/// The decoder alone: every event polled, records yielded but not looked into (`blocks`
/// false) or no record walk at all (`Decoder::blocks_only`, `blocks` true): returns the events.
fn decoder_events(log: &[u8], blocks: bool) -> u64 {
    let mut d = if blocks {
        Decoder::blocks_only()
    } else {
        Decoder::new()
    };
    let mut events = 0u64;
    for chunk in log.chunks(1 << 20) {
        d.feed(chunk);
        while d.poll().expect("a redo log").is_some() {
            events += 1;
        }
    }
    d.finish();
    while d.poll().expect("a redo log").is_some() {
        events += 1;
    }
    events
}

fn checksum_all(log: &[u8]) -> usize {
    log.chunks_exact(BS)
        .filter(|b| checksum::block_checksum_ok(b))
        .count()
}

fn main() {
    let (log, copies) = big_log();
    // The big log decodes exactly as `copies` times the real one.
    let (records, vectors, commits) = decode_all(&log);
    assert_eq!(
        (records, commits),
        (1154 * copies as u64, 20 * copies as u64)
    );
    let report = analyze(&log).expect("a redo log");
    assert!(
        report.is_clean(),
        "{:?} {:?}",
        report.bad_blocks.first(),
        report.errors.first()
    );
    assert_eq!(checksum_all(&log), log.len() / BS);
    println!(
        "large log: {} MiB, {} blocks, {records} records, {vectors} vectors, {commits} commits",
        log.len() >> 20,
        log.len() / BS
    );

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let mut g = c.benchmark_group("redo");
    g.throughput(Throughput::Bytes(log.len() as u64));
    g.bench_function("decode_records_vectors_commits", |b| {
        b.iter(|| black_box(decode_all(black_box(&log))))
    });
    g.bench_function("analyze_full_report", |b| {
        b.iter(|| black_box(analyze(black_box(&log)).map(|r| r.commits.len())))
    });
    g.bench_function("decoder_records_unread", |b| {
        b.iter(|| black_box(decoder_events(black_box(&log), false)))
    });
    g.bench_function("decoder_blocks_only", |b| {
        b.iter(|| black_box(decoder_events(black_box(&log), true)))
    });
    g.bench_function("checksum_only", |b| {
        b.iter(|| black_box(checksum_all(black_box(&log))))
    });
    g.finish();
    c.final_summary();
}
