//! Tail benchmark (prints figures; not a timed test).
//!
//! 1. Throughput: the tailer reads, validates and decodes (commit marks) a simulated CURRENT
//!    online log already written (256 MiB of redo), and a set of archived logs (catch-up after
//!    the online logs were reused), in 1 MiB chunks; MB/s of redo shipped.
//! 2. Detection latency: the simulator writes redo at a steady 10 MB/s (real time, one LWN
//!    per commit, several log switches) in one thread while a spawned tailer follows; for
//!    every LWN, the time from the end of its write to the receipt of the chunk that ships
//!    its last block; p50/p99/max, with a 10 ms poll and with file events.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-ext cargo bench -p redovault-extractor --bench tail
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redovault::wire::StreamPos;
use redovault_drill::simulate::{Rate, SimConfig, Simulator};
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::online::LogHeader;
use redovault_extractor::tail::Tailer;
use redovault_redo::{LogSeq, ThreadId};
use tokio_util::sync::CancellationToken;

const MIB: f64 = 1024.0 * 1024.0;

fn sources(dir: &Path, groups: u32) -> LogSources {
    LogSources {
        groups: (1..=groups)
            .map(|g| vec![dir.join(format!("online/redo_t1_g{g}.log"))])
            .collect(),
        archive_dirs: vec![dir.join("archive")],
    }
}

fn opts(poll: Duration, file_events: bool) -> TailConfig {
    TailConfig {
        poll,
        file_events,
        max_chunk: 1 << 20,
        ..TailConfig::default()
    }
}

/// Drains a tailer driven in this thread until it has nothing new; returns bytes and commits.
fn drain(t: &mut Tailer) -> (u64, u64) {
    let (mut bytes, mut commits) = (0u64, 0u64);
    while let Some(c) = t.poll_chunk().expect("tail") {
        bytes += c.bytes.len() as u64;
        commits += c.commits.len() as u64;
    }
    (bytes, commits)
}

fn throughput(root: &Path) {
    println!("## throughput (1 MiB chunks, validate every block, decode, commit marks)");
    println!("| source | redo MiB | commits | seconds | MB/s |");
    println!("|---|---:|---:|---:|---:|");
    // One big CURRENT log.
    let dir = root.join("big");
    let mut cfg = SimConfig::new(&dir);
    cfg.groups = 2;
    cfg.log_size = 300 << 20;
    cfg.seed = 1;
    let mut sim = Simulator::start(cfg).expect("simulator");
    let target_blocks = (256u32 << 20) / 512;
    while sim.write_position(1).expect("thread").1 < target_blocks {
        sim.step().expect("step");
    }
    sim.finish().expect("finish");
    for run in 0..3 {
        let mut t = Tailer::at_current(
            &sources(&dir, 2),
            opts(Duration::from_millis(10), false),
            ThreadId(1),
        )
        .expect("tailer");
        let t0 = Instant::now();
        let (bytes, commits) = drain(&mut t);
        let s = t0.elapsed().as_secs_f64();
        println!(
            "| CURRENT online log (run {}) | {:.0} | {commits} | {s:.3} | {:.0} |",
            run + 1,
            bytes as f64 / MIB,
            bytes as f64 / 1e6 / s
        );
    }
    // Archived logs: 18 × 16 MiB (catch-up after the online groups were reused), read with no
    // online group configured: every log comes from its archived copy, validated whole first.
    let dir = root.join("arch");
    let mut cfg = SimConfig::new(&dir);
    cfg.groups = 2;
    cfg.log_size = 16 << 20;
    cfg.switches = Some(18);
    cfg.seed = 2;
    let mut sim = Simulator::start(cfg).expect("simulator");
    while !sim.done() {
        sim.step().expect("step");
    }
    sim.finish().expect("finish");
    let first = std::fs::read_dir(dir.join("archive"))
        .expect("archive dir")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("arch1_1_"))
        .expect("archive of sequence 1");
    let stream = LogHeader::read(&std::fs::File::open(first.path()).expect("open"))
        .expect("header")
        .stream;
    for run in 0..3 {
        let from = StreamPos {
            seq: LogSeq(1),
            offset: 0,
        };
        let archives_only = LogSources {
            groups: Vec::new(),
            archive_dirs: vec![dir.join("archive")],
        };
        let mut t = Tailer::new(
            &archives_only,
            opts(Duration::from_millis(10), false),
            stream,
            from,
        )
        .expect("tailer");
        let t0 = Instant::now();
        let (bytes, commits) = drain(&mut t);
        assert_eq!(t.position().seq, LogSeq(19), "sequences 1..=18 shipped");
        let s = t0.elapsed().as_secs_f64();
        println!(
            "| archived logs, 18 × 16 MiB (run {}) | {:.0} | {commits} | {s:.3} | {:.0} |",
            run + 1,
            bytes as f64 / MIB,
            bytes as f64 / 1e6 / s
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(root: &Path, name: &str, poll: Duration, file_events: bool, seconds: u64) {
    let dir = root.join(name);
    let mut cfg = SimConfig::new(&dir);
    cfg.groups = 3;
    cfg.log_size = 16 << 20;
    cfg.rate = Rate::BytesPerSec(10_000_000);
    cfg.realtime = true;
    cfg.duration = Some(Duration::from_secs(seconds));
    cfg.seed = 3;
    let mut sim = Simulator::start(cfg).expect("simulator");
    let tailer = Tailer::at_current(&sources(&dir, 3), opts(poll, file_events), ThreadId(1))
        .expect("tailer");
    let cancel = CancellationToken::new();
    let mut h = tailer.spawn(64, cancel.clone()).expect("spawn");
    let stats = h.stats();
    // Write times: (sequence, first block not written yet after the write, when).
    let writes: Arc<Mutex<Vec<(u32, u32, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let w = writes.clone();
    let writer = thread::spawn(move || {
        let mut last = sim.write_position(1).expect("thread");
        while !sim.done() {
            sim.step().expect("step");
            let now = sim.write_position(1).expect("thread");
            if now != last {
                w.lock()
                    .expect("lock")
                    .push((now.0.0, now.1, Instant::now()));
                last = now;
            }
        }
        sim.finish().expect("finish")
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    // Chunk receipts: (sequence, end block, when).
    let mut seen: Vec<(u32, u64, Instant)> = Vec::new();
    let mut bytes = 0u64;
    let end = Instant::now() + Duration::from_secs(seconds + 30);
    while Instant::now() < end {
        let next = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(500), h.next_chunk()).await
        });
        match next {
            Ok(Ok(Some(c))) => {
                let at = Instant::now();
                bytes += c.bytes.len() as u64;
                seen.push((c.pos.seq.0, c.end().offset / 512, at));
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => panic!("tail error: {e}"),
            Err(_) if writer.is_finished() => break,
            Err(_) => {}
        }
    }
    let summary = writer.join().expect("writer thread");
    h.stop();
    let writes = writes.lock().expect("lock").clone();
    let mut lat: Vec<Duration> = Vec::new();
    let mut missed = 0;
    for (seq, block, at) in &writes {
        match seen
            .iter()
            .find(|(s, b, _)| s > seq || (s == seq && *b >= u64::from(*block)))
        {
            Some((_, _, got)) => lat.push(got.saturating_duration_since(*at)),
            None => missed += 1,
        }
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {missed} |",
        writes.len(),
        summary.switches,
        stats
            .torn_rereads
            .load(std::sync::atomic::Ordering::Relaxed),
        bytes as f64 / 1e6 / seconds as f64,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
}

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    throughput(tmp.path());
    println!();
    println!("## detection latency (LWN written -> chunk received), 10 MB/s of redo, 20 s");
    println!(
        "| mode | LWNs | switches | torn re-reads | MB/s shipped | p50 ms | p99 ms | max ms | not seen |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    latency(
        tmp.path(),
        "poll 10 ms",
        Duration::from_millis(10),
        false,
        20,
    );
    latency(
        tmp.path(),
        "file events (+ poll 10 ms)",
        Duration::from_millis(10),
        true,
        20,
    );
}
