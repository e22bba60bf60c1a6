//! Collector store benchmark: append + group-commit fsync through the writer, against the
//! disk's own `fdatasync`, measured in the same run on the same file system.
//!
//! 1. `fdatasync` baseline: append 64 KiB to a file and `fdatasync` it, paced at 10 MB/s
//!    (one write every 6.55 ms); latency of write + fdatasync, and the same counted from
//!    when the write was due (includes waiting for a slow previous fdatasync).
//! 2. Store, direct: the same pacing, `Store::append` + `Store::sync` on one thread
//!    (sealing, write, fdatasync: the store's own cost, no queue).
//! 3. Store, paced: one stream, 64 KiB appends with a commit mark each, sent at 10 MB/s
//!    without waiting for the previous ack (open loop, as an extractor with a window does);
//!    latency from `WriterHandle::append` to its acknowledgement (encryption, write, fsync).
//! 4. Store, flat out: 1 and 4 streams, each sending 64 KiB appends back to back (closed loop,
//!    4 in flight per stream); MB/s, fsyncs per second, CPU seconds per GB.
//!
//! Baseline and store runs alternate (3 rounds each) so that a noisy neighbour hits both.
//! Run: `cargo bench -p redovault-collector --bench store`. `REDOVAULT_BENCH_SECS` sets the
//! length of each paced run (default 5), `REDOVAULT_BENCH_DIR` the directory (default: the
//! target directory's tmp, on disk, never tmpfs).

use redovault_redo::position::{DbId, ResetlogsId};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::store::Store;
use redovault_collector::writer::{self, AppendRequest, WriterConfig, WriterHandle};
use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};
use tokio_util::sync::CancellationToken;

const CHUNK: usize = 64 * 1024;
const RATE: f64 = 10_000_000.0;
const ROUNDS: usize = 3;

fn keys() -> KeyRing {
    let id = KeyId::parse("bench").unwrap_or_else(|| unreachable!());
    KeyRing::from_keys(id.clone(), [(id, [0x17; 32])]).unwrap_or_else(|e| panic!("{e}"))
}

fn stream(t: u16) -> StreamId {
    StreamId {
        db_id: DbId(7),
        resetlogs_id: ResetlogsId(1),
        thread: ThreadId(t),
    }
}

fn payload(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn request(t: u16, offset: u64, bytes: Vec<u8>) -> AppendRequest {
    let end = StreamPos {
        seq: LogSeq(1),
        offset: offset + bytes.len() as u64,
    };
    AppendRequest {
        stream: stream(t),
        pos: StreamPos {
            seq: LogSeq(1),
            offset,
        },
        commits: vec![CommitMark {
            xid: Xid {
                usn: 1,
                slot: 2,
                sqn: (offset / CHUNK as u64) as u32,
            },
            scn: Scn(1 + offset),
            time: Some(1_772_841_600),
            end,
        }],
        bytes,
        log_end: false,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit(')').next() else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the stat line (utime, stime) are 11 and 12 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// Paced appends of 64 KiB + fdatasync to a plain file: latency of each write + fdatasync,
/// and the same counted from when the write was due (a write due during a slow fdatasync
/// waits for it, as any durable-before-ack writer must).
fn fdatasync_baseline(dir: &Path, secs: f64) -> (Vec<Duration>, Vec<Duration>) {
    let path = dir.join(format!("baseline-{}", std::process::id()));
    let mut f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let buf = payload(1);
    let interval = Duration::from_secs_f64(CHUNK as f64 / RATE);
    let n = (secs / interval.as_secs_f64()) as usize;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    let mut from_due = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        f.write_all(&buf).unwrap_or_else(|e| panic!("{e}"));
        f.sync_data().unwrap_or_else(|e| panic!("{e}"));
        lat.push(t.elapsed());
        from_due.push(due.elapsed());
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    (lat, from_due)
}

/// Paced 64 KiB appends at 10 MB/s straight to a [`Store`] on this thread: latency of
/// `append` (seal, write) + `sync` (fdatasync), the store's own cost without queueing.
fn store_direct_paced(dir: &Path, secs: f64) -> Vec<Duration> {
    let mut store = Store::open(dir, keys()).unwrap_or_else(|e| panic!("{e}"));
    let buf = payload(3);
    let interval = Duration::from_secs_f64(CHUNK as f64 / RATE);
    let n = (secs / interval.as_secs_f64()) as usize;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let r = request(1, (i * CHUNK) as u64, buf.clone());
        let t = Instant::now();
        store
            .append(r.stream, r.pos, &r.bytes, &r.commits, r.log_end)
            .unwrap_or_else(|e| panic!("{e}"));
        store.sync().unwrap_or_else(|e| panic!("{e}"));
        lat.push(t.elapsed());
    }
    lat
}

async fn start_store(dir: &Path) -> (WriterHandle, tokio::task::JoinHandle<Option<Store>>) {
    let store = Store::open(dir, keys()).unwrap_or_else(|e| panic!("{e}"));
    writer::spawn(store, WriterConfig::default(), CancellationToken::new())
}

/// Paced 64 KiB appends at 10 MB/s, open loop; latency of each acknowledgement.
async fn store_paced(dir: &Path, secs: f64) -> Vec<Duration> {
    let (w, _task) = start_store(dir).await;
    let interval = Duration::from_secs_f64(CHUNK as f64 / RATE);
    let n = (secs / interval.as_secs_f64()) as usize;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut pending = Vec::with_capacity(n);
    let buf = payload(2);
    for i in 0..n {
        ticker.tick().await;
        let req = request(1, (i * CHUNK) as u64, buf.clone());
        let t = Instant::now();
        let ack = w
            .submit(req)
            .await
            .unwrap_or_else(|e| panic!("append failed: {e}"));
        pending.push(tokio::spawn(async move {
            ack.wait().await.map(|_| t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for p in pending {
        match p.await {
            Ok(Ok(d)) => lat.push(d),
            Ok(Err(e)) => panic!("append failed: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    lat
}

/// Flat out: `streams` streams, each with `depth` appends in flight; returns (MB/s,
/// fsyncs/s, CPU s per GB).
async fn store_flat_out(dir: &Path, streams: u16, secs: f64) -> (f64, f64, f64) {
    let (w, _task) = start_store(dir).await;
    let depth = 4usize;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for t in 1..=streams {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            let buf = payload(u64::from(t));
            let mut next = 0u64;
            let mut inflight = std::collections::VecDeque::new();
            let mut bytes = 0u64;
            while Instant::now() < deadline {
                while inflight.len() < depth {
                    let req = request(t, next, buf.clone());
                    next += CHUNK as u64;
                    match w.submit(req).await {
                        Ok(p) => inflight.push_back(p),
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
                if let Some(p) = inflight.pop_front() {
                    match p.wait().await {
                        Ok(_) => bytes += CHUNK as u64,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
            for p in inflight {
                if p.wait().await.is_ok() {
                    bytes += CHUNK as u64;
                }
            }
            bytes
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let stats = w.stats();
    (
        total as f64 / elapsed / 1e6,
        stats.fsync.count as f64 / elapsed,
        cpu / (total as f64 / 1e9),
    )
}

fn bench_dir() -> PathBuf {
    std::env::var_os("REDOVAULT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn main() {
    let secs: f64 = std::env::var("REDOVAULT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let base = bench_dir();
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut base_lat = Vec::new();
    let mut base_due = Vec::new();
    let mut store_lat = Vec::new();
    let mut direct_lat = Vec::new();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir_in(&base).unwrap_or_else(|e| panic!("{e}"));
        let (lat, due) = fdatasync_baseline(dir.path(), secs);
        base_lat.extend(lat);
        base_due.extend(due);
        direct_lat.extend(store_direct_paced(
            &dir.path().join(format!("direct-{round}")),
            secs,
        ));
        let sdir = dir.path().join(format!("store-{round}"));
        store_lat.extend(rt.block_on(store_paced(&sdir, secs)));
    }
    base_lat.sort();
    base_due.sort();
    direct_lat.sort();
    store_lat.sort();
    let flat1 = {
        let dir = tempfile::tempdir_in(&base).unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(store_flat_out(dir.path(), 1, secs))
    };
    let flat4 = {
        let dir = tempfile::tempdir_in(&base).unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(store_flat_out(dir.path(), 4, secs))
    };
    println!(
        "collector store bench: {} KiB appends, {:.0} MB/s paced, {ROUNDS} × {secs} s per side, dir {}",
        CHUNK / 1024,
        RATE / 1e6,
        base.display()
    );
    println!();
    println!("| measured | samples | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, l) in [
        ("disk: write 64 KiB + fdatasync", &base_lat),
        ("disk: the same, counted from when it was due", &base_due),
        ("store: append + sync, direct", &direct_lat),
        ("store: append → durable ack (writer)", &store_lat),
    ] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            l.len(),
            ms(pct(l, 0.5)),
            ms(pct(l, 0.99)),
            ms(pct(l, 1.0))
        );
    }
    let p99 = |l: &[Duration]| pct(l, 0.99).as_secs_f64();
    println!();
    println!(
        "p99 / fdatasync p99: store direct {:.2}, through the writer {:.2} (goal ≤ 1.5)",
        p99(&direct_lat) / p99(&base_lat),
        p99(&store_lat) / p99(&base_lat)
    );
    println!();
    println!("| flat out | MB/s | fsyncs/s | CPU s per GB |");
    println!("|---|---:|---:|---:|");
    println!(
        "| 1 stream, 4 in flight | {:.1} | {:.0} | {:.2} |",
        flat1.0, flat1.1, flat1.2
    );
    println!(
        "| 4 streams, 4 in flight each | {:.1} | {:.0} | {:.2} |",
        flat4.0, flat4.1, flat4.2
    );
}
