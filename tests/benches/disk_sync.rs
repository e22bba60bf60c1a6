//! What the disk alone allows a group-commit writer: the floor under the collector's
//! commit → durable Ack latency, and the design question behind it (append to a growing file,
//! as the collector's segments do, or overwrite a file written with zeros beforehand, which
//! spares `fdatasync` the journal commit of the new file size).
//!
//! Arrivals of `REDOVAULT_BENCH_APPEND_BYTES` (4,700: 10 MB/s of redo at ~2,200 commits/s)
//! at `REDOVAULT_BENCH_RATE` per second for `REDOVAULT_BENCH_SECONDS` (15) from a timer
//! thread; one writer thread takes everything queued, writes it, `fdatasync`s once, and
//! stamps every arrival of the batch durable. Printed: arrival → durable p50 / p90 / p99 /
//! p99.9 / max for both files, beside the disk's own `fdatasync` (1,000 × 16 KiB appends and
//! 1,000 × 16 KiB overwrites, back to back). Nothing else of redovault runs: no TLS, no
//! sealing, no threads but these two. Run it on the collector's disk (`REDOVAULT_BENCH_DIR`;
//! the default, the system's temporary directory, may be tmpfs, where fsync costs nothing).
//!
//! ```sh
//! REDOVAULT_BENCH_DIR=/var/lib/redovault cargo bench -p redovault --bench disk_sync
//! ```

#[path = "common.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn summary(what: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    println!(
        "{what:<44} n={:>6}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms",
        v.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        v[v.len() - 1]
    );
}

/// A file of `bytes` zeros, written (not fallocated: unwritten extents would need a metadata
/// change at the first write) and made durable.
fn zeroed(path: &Path, bytes: u64) -> File {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let z = vec![0u8; 1 << 20];
    for _ in 0..bytes.div_ceil(1 << 20) {
        f.write_all(&z).unwrap();
    }
    f.sync_all().unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f
}

fn reference(dir: &Path) {
    let b = vec![7u8; 16 << 10];
    let path = dir.join("disk-sync-ref");
    let mut f = common::probe_file(&path);
    summary(
        "fdatasync after a 16 KiB append",
        &mut common::sync_latencies(&mut f, &b, 1000),
    );
    let mut f = zeroed(&path, 1000 * b.len() as u64);
    summary(
        "fdatasync after a 16 KiB overwrite",
        &mut common::sync_latencies(&mut f, &b, 1000),
    );
    let _ = std::fs::remove_file(&path);
}

fn group_commit(dir: &Path, prezeroed: bool, rate: f64, size: usize, secs: u64) {
    let path = dir.join("disk-sync-gc");
    let total = (rate as u64) * size as u64 * secs + (16 << 20);
    let mut f = if prezeroed {
        zeroed(&path, total)
    } else {
        common::probe_file(&path)
    };
    let mut v = common::group_commit_latencies(&mut f, rate, size, secs);
    summary(
        if prezeroed {
            "group commit, overwrite of a zeroed file"
        } else {
            "group commit, append to a growing file"
        },
        &mut v,
    );
    let _ = std::fs::remove_file(&path);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir =
        std::env::var("REDOVAULT_BENCH_DIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let rate = env_num("REDOVAULT_BENCH_RATE", 2200) as f64;
    let size = env_num("REDOVAULT_BENCH_APPEND_BYTES", 4700) as usize;
    let secs = env_num("REDOVAULT_BENCH_SECONDS", 15);
    println!(
        "disk_sync in {}: {rate} arrivals/s of {size} bytes for {secs} s, two rounds",
        dir.display()
    );
    for _ in 0..2 {
        reference(&dir);
        group_commit(&dir, false, rate, size, secs);
        group_commit(&dir, true, rate, size, secs);
    }
}
