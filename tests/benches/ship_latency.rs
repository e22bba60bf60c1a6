//! Commit → durable acknowledgement latency, extractor to collector, at 10 MB/s of redo.
//!
//! One process, real parts: a simulated database writes a live online log at
//! `REDOVAULT_BENCH_RATE_MIB` MiB/s (default 10) in real time; the extractor's shipper
//! (`redovault_extractor::ship::Shipper`, tailer with file events) ships it over TLS 1.3 on
//! 127.0.0.1 to the collector server (`redovault_collector::server`: AES-256-GCM segments,
//! group commit, fdatasync before every Ack) writing to a directory on the real disk. For
//! every commit, the latency is from the moment the simulator has written the LWN holding
//! it (and its journal line) to the moment the extractor receives an Ack whose last commit
//! is at or after it. The first 2 s are warm-up.
//!
//! The simulated database lives on its own file system (`/dev/shm` by default), as on its
//! own host: its ARCn copies (64 MiB written and fsynced at each switch) would otherwise
//! queue in front of the collector's fdatasyncs on the one disk being measured.
//!
//! The extractor's checkpoint directory is on the database's file system too (the extractor
//! runs on the database host).
//!
//! In the same run, the disk's own `fdatasync` latency, appending 16 KiB (about what one
//! group commit holds at this rate) then `fdatasync`, in the collector's directory: 1000
//! times back to back before and after the pipeline (idle disk), and **during** it, one every
//! 10 ms from its own thread after the warm-up (the disk as loaded by the pipeline and by
//! whatever else shares it at that moment). Goal (issue 5): p99 ≤ 1.5 × fdatasync p99 (the
//! idle one measured before); the ratio to the concurrent one is printed beside it. Also
//! printed: the collector's own share (Data received → Ack sent, from its
//! `redovault_collector_ack_latency_seconds` histogram: bucket bounds).
//!
//! Where the time goes: the bench collects the pipeline's latency trace events
//! ([`redovault::wire::latency`]: tail chunk, Data queued, flushed, received, store batch,
//! written, synced, Ack ready, flushed, received) and prints, per hop, the p50 / p99 / max
//! over every measured commit, and the mean of each hop over the slowest 1 % of commits.
//!
//! Run: `cargo bench --bench ship_latency` (or `deploy/bench.sh ship-latency`).
//! `REDOVAULT_BENCH_SECONDS` (20), `REDOVAULT_BENCH_RATE_MIB` (10), `REDOVAULT_BENCH_SHIP_DIR`
//! (collector store; default `<target>/bench-ship`), `REDOVAULT_BENCH_DB_DIR` (database),
//! `REDOVAULT_BENCH_SEGMENT_MIB` (collector segment size, 64).

#[path = "common.rs"]
mod common;

use common::{env_u64, pct};

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redovault::crypto::keys::KeyRing;
use redovault::crypto::tls::{self, TlsClient, TlsServer};
use redovault::wire::StreamPos;
use redovault::wire::latency;
use redovault::wire::transport::{ClientSecurity, LinkConfig, ServerSecurity};
use redovault_collector::server::{self, ServerOptions};
use redovault_collector::store::Store;
use redovault_collector::writer::WriterConfig;
use redovault_drill::simulate::{Rate, SimConfig, Simulator};
use redovault_extractor::checkpoint::CheckpointStore;
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::metrics::ExtractorMetrics;
use redovault_extractor::ship::{ShipConfig, Shipper};
use redovault_extractor::tail::Tailer;
use redovault_redo::ThreadId;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, filter};

fn bench_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("REDOVAULT_BENCH_SHIP_DIR") {
        return PathBuf::from(d);
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_redovault"));
    me.parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("bench-ship"), |t| t.join("bench-ship"))
}

/// While `stop` is unset: after `delay`, appends `size` bytes and fdatasyncs once every
/// `every` (a file of its own in `dir`); latencies in ms, sorted.
fn fdatasync_during(
    dir: &Path,
    size: usize,
    delay: Duration,
    every: Duration,
    stop: &AtomicBool,
) -> Vec<f64> {
    let path = dir.join("fdatasync-probe-concurrent");
    let mut f = common::probe_file(&path);
    let buf = vec![0x5au8; size];
    let mut out = Vec::new();
    let mut next = Instant::now() + delay;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += every;
        f.write_all(&buf).expect("write");
        let t = Instant::now();
        f.sync_data().expect("fdatasync");
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    out.sort_by(f64::total_cmp);
    out
}

/// Appends `size` bytes and fdatasyncs, `n` times; latencies in ms, sorted.
fn fdatasync_latencies(dir: &Path, size: usize, n: usize) -> Vec<f64> {
    let path = dir.join("fdatasync-probe");
    let mut f = common::probe_file(&path);
    let out = common::sync_latencies(&mut f, &vec![0x5au8; size], n);
    drop(f);
    let _ = std::fs::remove_file(&path);
    out
}

/// p50 and p99 upper bounds (bucket bounds) of a histogram family in a rendered registry.
fn histogram_quantiles(text: &str, name: &str) -> Option<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{")) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ")?;
        let le = labels.split("le=\"").nth(1)?.trim_end_matches('"');
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        buckets.push((le, value.parse().ok()?));
    }
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    if total == 0.0 {
        return None;
    }
    let q = |p: f64| {
        buckets
            .iter()
            .find(|b| b.1 >= p * total)
            .map_or(f64::INFINITY, |b| b.0)
    };
    Some((q(0.5), q(0.99)))
}

/// The latency stages in path order ([`redovault::wire::latency`]); Ack stages last.
const STAGES: [&str; 10] = [
    "tail_chunk",
    "data_queued",
    "data_flushed",
    "data_received",
    "store_batch",
    "store_written",
    "store_synced",
    "ack_ready",
    "ack_flushed",
    "ack_received",
];

/// One latency event: stage index, end position, last commit SCN (tail chunks), when.
type Mark = (u8, StreamPos, u64, Instant);

/// Records every latency event ([`latency::TARGET`]) with the instant it was emitted.
#[derive(Clone, Default)]
struct Marks(Arc<Mutex<Vec<Mark>>>);

#[derive(Default)]
struct MarkFields {
    stage: Option<u8>,
    seq: u64,
    offset: u64,
    scn: u64,
}

impl tracing::field::Visit for MarkFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "stage" {
            self.stage = STAGES.iter().position(|s| *s == value).map(|i| i as u8);
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "seq" => self.seq = value,
            "offset" => self.offset = value,
            "scn" => self.scn = value,
            _ => {}
        }
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Marks {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let at = Instant::now();
        let mut f = MarkFields::default();
        event.record(&mut f);
        let (Some(stage), Ok(seq)) = (f.stage, u32::try_from(f.seq)) else {
            return;
        };
        let pos = StreamPos {
            seq: redovault_redo::LogSeq(seq),
            offset: f.offset,
        };
        if let Ok(mut v) = self.0.lock() {
            v.push((stage, pos, f.scn, at));
        }
    }
}

/// Per hop: p50 / p99 / max over the commits written after `from`, and the mean over the
/// slowest 1 % (by total). A commit's chunk is the first tail chunk whose last commit is at
/// or after its SCN; an Ack stage counts at the first Ack whose durable end covers the chunk.
fn breakdown(marks: &[Mark], commits: &[(u64, Instant)], from: Instant) {
    let ack_stages = 8u8;
    let mut first: HashMap<(u8, StreamPos), Instant> = HashMap::new();
    let mut chunks: Vec<(StreamPos, u64)> = Vec::new();
    let mut acks: [Vec<(StreamPos, Instant)>; 2] = [Vec::new(), Vec::new()];
    for &(stage, pos, scn, at) in marks {
        if stage == 0 && scn > 0 {
            chunks.push((pos, scn));
        }
        if stage >= ack_stages {
            acks[usize::from(stage - ack_stages)].push((pos, at));
        } else {
            first.entry((stage, pos)).or_insert(at);
        }
    }
    let ack_at = |v: &[(StreamPos, Instant)], end: StreamPos| {
        v.get(v.partition_point(|a| a.0 < end)).map(|a| a.1)
    };
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut ci = 0usize;
    for &(scn, written) in commits {
        while chunks.get(ci).is_some_and(|c| c.1 < scn) {
            ci += 1;
        }
        let Some(&(end, _)) = chunks.get(ci) else {
            break;
        };
        if written < from {
            continue;
        }
        let mut at = vec![written];
        at.extend((0..ack_stages).map_while(|s| first.get(&(s, end)).copied()));
        at.extend(acks.iter().map_while(|v| ack_at(v, end)));
        if at.len() != STAGES.len() + 1 {
            continue;
        }
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        let mut row: Vec<f64> = at.windows(2).map(|w| ms(w[0], w[1])).collect();
        row.push(ms(at[0], at[at.len() - 1]));
        rows.push(row);
    }
    if rows.is_empty() {
        println!("latency breakdown: no commit followed through every stage");
        return;
    }
    let total = STAGES.len();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a][total].total_cmp(&rows[b][total]));
    let slow = &order[rows.len() * 99 / 100..];
    println!(
        "where the time goes ({} commits; ms; slowest 1 % = {} commits):",
        rows.len(),
        slow.len()
    );
    println!(
        "  {:<34} {:>8} {:>8} {:>8} {:>12}",
        "hop", "p50", "p99", "max", "slowest 1 %"
    );
    for j in 0..=total {
        let mut col: Vec<f64> = rows.iter().map(|r| r[j]).collect();
        col.sort_by(f64::total_cmp);
        let mean = slow.iter().map(|&i| rows[i][j]).sum::<f64>() / slow.len() as f64;
        let hop = if j == total {
            "total: commit written -> Ack".to_string()
        } else if j == 0 {
            format!("commit written -> {}", STAGES[0])
        } else {
            format!("{} -> {}", STAGES[j - 1], STAGES[j])
        };
        println!(
            "  {hop:<34} {:>8.3} {:>8.3} {:>8.3} {mean:>12.3}",
            pct(&col, 0.5),
            pct(&col, 0.99),
            col.last().copied().unwrap_or(f64::NAN)
        );
    }
}

fn main() {
    let seconds = env_u64("REDOVAULT_BENCH_SECONDS", 20);
    let rate_mib = env_u64("REDOVAULT_BENCH_RATE_MIB", 10);
    let root = bench_dir();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");

    let marks = Marks::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(
        marks.clone().with_filter(
            filter::Targets::new().with_target(latency::TARGET, tracing::Level::TRACE),
        ),
    ))
    .expect("latency event collector");

    let fsync = fdatasync_latencies(&root, 16 << 10, 1000);
    let (f50, f99) = (pct(&fsync, 0.5), pct(&fsync, 0.99));
    println!("disk fdatasync (16 KiB appends, 1000x): p50 {f50:.3} ms  p99 {f99:.3} ms");

    // PKI, key ring, store.
    let pki_dir = root.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = tls::generate_pki(&pki_dir).expect("pki");
    let key_file = root.join("keys");
    std::fs::write(
        &key_file,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let keys = KeyRing::load(&key_file).expect("keys");
    let opts = redovault_collector::store::StoreOptions {
        segment_size: env_u64("REDOVAULT_BENCH_SEGMENT_MIB", 64) << 20,
        ..redovault_collector::store::StoreOptions::default()
    };
    let store = Store::open_with(
        &root.join("store"),
        keys,
        opts,
        Arc::new(redovault_collector::fs::RealFs),
    )
    .expect("store");

    // The database: on its own file system (`REDOVAULT_BENCH_DB_DIR`, default a directory
    // in /dev/shm when there is one), as on its own host: ARCn's copies and their fsyncs must
    // not queue in front of the collector's fdatasyncs on the disk being measured.
    let db = std::env::var_os("REDOVAULT_BENCH_DB_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new("/dev/shm")
                .is_dir()
                .then(|| PathBuf::from(format!("/dev/shm/redovault-bench-{}", std::process::id())))
        })
        .unwrap_or_else(|| root.join("db"));
    let _ = std::fs::remove_dir_all(&db);
    println!(
        "ship_latency: {seconds} s at {rate_mib} MiB/s; collector store in {}, database in {}",
        root.display(),
        db.display()
    );
    let mut sim = SimConfig::new(&db);
    sim.log_size = 64 << 20;
    sim.groups = 3;
    sim.rate = Rate::BytesPerSec(rate_mib << 20);
    sim.realtime = true;
    let sim = Simulator::start(sim).expect("simulator");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let link = LinkConfig::default();
    let running = rt
        .block_on(server::start(
            store,
            ServerOptions {
                listen: "127.0.0.1:0".parse().unwrap(),
                max_connections: 16,
                security: ServerSecurity::Tls(
                    TlsServer::from_pem_files(&pki.server_cert, &pki.server_key, &pki.ca).unwrap(),
                ),
                link: link.clone(),
                extractors: Vec::new(),
                writer: WriterConfig::default(),
                metrics_listen: None,
                accept_compression: true,
            },
            cancel.clone(),
        ))
        .expect("collector");
    let sources = LogSources {
        groups: (1..=3)
            .map(|g| vec![db.join(format!("online/redo_t1_g{g}.log"))])
            .collect(),
        archive_dirs: vec![db.join("archive")],
    };
    let tail = TailConfig::default();
    let tailer = Tailer::at_current(&sources, tail, ThreadId(1)).expect("tailer");
    let stream = tailer.stream();
    let from = tailer.position();
    let metrics = ExtractorMetrics::new();
    let cfg = Arc::new(ShipConfig {
        address: running.addr.to_string(),
        security: ClientSecurity::Tls {
            client: TlsClient::from_pem_files(&pki.client_cert, &pki.client_key, &pki.ca).unwrap(),
            server_name: "localhost".into(),
        },
        link,
        window: 16 << 20,
        extractor_id: "redovault-extractor".into(),
        db_name: "FREE".into(),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_secs(1),
        compress: None,
    });
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel();
    let shipper_cancel = CancellationToken::new();
    let shipper = {
        let _rt = rt.enter();
        let checkpoint = CheckpointStore::open(&db.join("extractor-state"), stream).unwrap();
        let mut s = Shipper::new(
            stream,
            Some(tailer),
            checkpoint,
            from,
            sources,
            tail,
            cfg,
            metrics.stream(stream),
        );
        s.observe_acks(ack_tx);
        rt.spawn(s.run(shipper_cancel.clone()))
    };

    // The database runs on its own thread and reports each commit (SCN, when written).
    let stop = Arc::new(AtomicBool::new(false));
    let (db_thread, commit_rx) =
        common::run_database(sim, db.join("journal.jsonl"), stop.clone(), Instant::now);

    let start = Instant::now();
    let warmup = Duration::from_secs(2);
    // The disk's fdatasync while the pipeline runs (same disk, same moment).
    let probe_stop = Arc::new(AtomicBool::new(false));
    let concurrent_probe = {
        let (dir, stop) = (root.clone(), probe_stop.clone());
        std::thread::spawn(move || {
            fdatasync_during(&dir, 16 << 10, warmup, Duration::from_millis(10), &stop)
        })
    };
    let run = Duration::from_secs(seconds);
    let mut commits: Vec<(u64, Instant)> = Vec::new();
    let mut lat = common::Latencies::new(start + warmup);
    let mut stopped_at = None;
    loop {
        while let Ok((_, scn, at)) = commit_rx.try_recv() {
            let c = (scn, at);
            commits.push(c);
            lat.written(c.0, c.1);
        }
        if stopped_at.is_none() && start.elapsed() >= run {
            stop.store(true, Ordering::Relaxed);
            probe_stop.store(true, Ordering::Relaxed);
            stopped_at = Some(Instant::now());
        }
        let got = rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(20), ack_rx.recv()).await
        });
        if let Ok(Some((at, ack))) = got
            && let Some(c) = ack.last_commit
        {
            while let Ok((_, scn, at)) = commit_rx.try_recv() {
                let w = (scn, at);
                commits.push(w);
                lat.written(w.0, w.1);
            }
            lat.covered(c.scn.0, at);
        }
        if let Some(t) = stopped_at
            && db_thread.is_finished()
            && (lat.waiting() == 0 || t.elapsed() > Duration::from_secs(30))
        {
            break;
        }
    }
    let summary = db_thread.join().expect("db thread");
    let during = concurrent_probe.join().expect("fdatasync probe thread");
    let stats = running.writer.stats();
    let collector_side = histogram_quantiles(
        &running.metrics.registry.render(),
        "redovault_collector_ack_latency_seconds",
    );
    shipper_cancel.cancel();
    rt.block_on(async {
        let _ = shipper.await;
        running.stop().await;
    });
    cancel.cancel();

    let fsync_after = fdatasync_latencies(&root, 16 << 10, 1000);
    println!(
        "disk fdatasync again after the run: p50 {:.3} ms  p99 {:.3} ms",
        pct(&fsync_after, 0.5),
        pct(&fsync_after, 0.99)
    );
    let (d50, d99) = (pct(&during, 0.5), pct(&during, 0.99));
    println!(
        "disk fdatasync during the run (16 KiB appends, every 10 ms, {} samples): p50 {d50:.3} ms  p99 {d99:.3} ms  max {:.3} ms",
        during.len(),
        during.last().copied().unwrap_or(f64::NAN)
    );
    let never = lat.waiting();
    let mut lat = lat.ms;
    lat.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    let within = lat.iter().filter(|&&l| l <= 1.5 * f99).count();
    let redo_mb = summary.simulated_seconds * (rate_mib << 20) as f64 / 1e6;
    println!(
        "redo: {:.1} MB in {:.1} s ({} commits, {} log switches); {} commits measured, {} never acknowledged",
        redo_mb,
        summary.simulated_seconds,
        summary.commits,
        summary.switches,
        lat.len(),
        never
    );
    println!(
        "collector: {} group commits, mean fsync {:.3} ms, {} appends acknowledged",
        stats.fsync.count,
        stats.fsync.sum_micros as f64 / 1000.0 / stats.fsync.count.max(1) as f64,
        stats.acked
    );
    if let Some((c50, c99)) = collector_side {
        println!(
            "collector side (Data received -> Ack sent, histogram buckets): p50 <= {:.3} ms  p99 <= {:.3} ms",
            c50 * 1000.0,
            c99 * 1000.0
        );
    }
    println!(
        "commit -> durable ack: p50 {p50:.3} ms  p90 {:.3} ms  p99 {p99:.3} ms  max {max:.3} ms; \
         {:.1} % within 1.5 x fdatasync p99",
        pct(&lat, 0.9),
        100.0 * within as f64 / lat.len().max(1) as f64
    );
    let ratio = p99 / f99;
    println!(
        "p99 / fdatasync p99 (idle, before) = {ratio:.2} (goal <= 1.5: {})",
        if ratio <= 1.5 { "met" } else { "NOT met" }
    );
    println!("p99 / fdatasync p99 (during the run) = {:.2}", p99 / d99);
    let marks = std::mem::take(&mut *marks.0.lock().expect("latency events"));
    breakdown(&marks, &commits, start + warmup);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&db);
}
