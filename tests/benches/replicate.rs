//! Commit → protected latency and the extractor's CPU per MB with one collector, two
//! (`ack = "all"`) and three (`ack = "majority"`), at 10 MB/s of redo, in one run on loopback.
//!
//! Real parts, one process: a simulated database writes a live online log in real time (on
//! `/dev/shm`, as on its own host); the extractor's streams ([`redovault_extractor::fanout`]:
//! one shipper per collector, its own tailer, TLS 1.3 link and window, and the protection
//! task) ship it to N collector servers (`redovault_collector::server`: AES-256-GCM segments,
//! group commit, fdatasync before every Ack), each with its own store directory on the real
//! disk (the collectors share the machine's one disk here; on separate hosts each has its
//! own). For every commit, the latency is from the moment the simulator has written the LWN
//! holding it to the moment the protection task decides a protected position whose last
//! commit is at or after it (the checkpoint and the reported commit). The first 2 s of each
//! configuration are warm-up.
//!
//! The extractor's CPU is the CPU time of its own threads only (its runtime, named
//! `rv-extractor`, with its blocking pool, and its tail threads `tail-*`), divided by the MB of
//! redo the database wrote: the simulator and the collectors run on other threads.
//!
//! Run: `cargo bench --bench replicate` (or `deploy/bench.sh replicate`).
//! `REDOVAULT_BENCH_SECONDS` (20 per configuration), `REDOVAULT_BENCH_RATE_MIB` (10),
//! `REDOVAULT_BENCH_SHIP_DIR` (collector stores; default `<target>/bench-replicate`).

#[path = "common.rs"]
mod common;

use common::{env_u64, pct};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redovault::crypto::keys::KeyRing;
use redovault::crypto::tls::{self, PkiPaths, TlsClient, TlsServer};
use redovault::wire::transport::{ClientSecurity, LinkConfig, ServerSecurity};
use redovault_collector::server::{self, ServerOptions};
use redovault_collector::store::Store;
use redovault_collector::writer::WriterConfig;
use redovault_drill::simulate::{Rate, SimConfig, Simulator};
use redovault_extractor::config::{
    ArchiveConfig, ExtractorConfig, GroupConfig, OnlineConfig, StateConfig, TailConfig,
};
use redovault_extractor::fanout::{Plan, Target, spawn_stream};
use redovault_extractor::metrics::ExtractorMetrics;
use redovault_extractor::protection::AckPolicy;
use redovault_extractor::ship::ShipConfig;
use redovault_extractor::streams::start_streams;
use tokio_util::sync::CancellationToken;

fn bench_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("REDOVAULT_BENCH_SHIP_DIR") {
        return PathBuf::from(d);
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_redovault"));
    me.parent().and_then(Path::parent).map_or_else(
        || PathBuf::from("bench-replicate"),
        |t| t.join("bench-replicate"),
    )
}

/// CPU seconds of this process's threads whose name starts with one of `prefixes`.
fn threads_cpu(prefixes: &[&str]) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            prefixes.iter().any(|p| comm.starts_with(p))
        })
        .map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<f64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0.0))
                .collect();
            (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
        })
        .sum()
}

const EXTRACTOR_THREADS: [&str; 2] = ["rv-extractor", "tail-"];

struct Row {
    collectors: usize,
    policy: AckPolicy,
    measured: usize,
    unprotected: usize,
    p50: f64,
    p99: f64,
    max: f64,
    redo_mb: f64,
    cpu_s: f64,
}

fn key_file(path: &Path) {
    std::fs::write(
        path,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn run_one(
    n: usize,
    policy: AckPolicy,
    root: &Path,
    pki: &PkiPaths,
    seconds: u64,
    rate_mib: u64,
) -> Row {
    let collectors_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rv-collector")
        .enable_all()
        .build()
        .unwrap();
    let extractor_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rv-extractor")
        .enable_all()
        .build()
        .unwrap();
    let cancel = CancellationToken::new();
    let mut running = Vec::new();
    for i in 0..n {
        let dir = root.join(format!("n{n}-c{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        key_file(&dir.join("keys"));
        let keys = KeyRing::load(&dir.join("keys")).expect("keys");
        let store = Store::open_with(
            &dir.join("store"),
            keys,
            redovault_collector::store::StoreOptions {
                segment_size: 64 << 20,
                ..redovault_collector::store::StoreOptions::default()
            },
            Arc::new(redovault_collector::fs::RealFs),
        )
        .expect("store");
        let r = collectors_rt
            .block_on(server::start(
                store,
                ServerOptions {
                    listen: "127.0.0.1:0".parse().unwrap(),
                    max_connections: 16,
                    security: ServerSecurity::Tls(
                        TlsServer::from_pem_files(&pki.server_cert, &pki.server_key, &pki.ca)
                            .unwrap(),
                    ),
                    link: LinkConfig::default(),
                    extractors: Vec::new(),
                    writer: WriterConfig::default(),
                    metrics_listen: None,
                    accept_compression: true,
                },
                cancel.clone(),
            ))
            .expect("collector");
        running.push(r);
    }

    let db = PathBuf::from(format!(
        "/dev/shm/redovault-bench-replicate-{}-{n}",
        std::process::id()
    ));
    let db = if Path::new("/dev/shm").is_dir() {
        db
    } else {
        root.join(format!("db-{n}"))
    };
    let _ = std::fs::remove_dir_all(&db);
    let mut sim = SimConfig::new(&db);
    sim.log_size = 64 << 20;
    sim.groups = 3;
    sim.rate = Rate::BytesPerSec(rate_mib << 20);
    sim.realtime = true;
    let sim = Simulator::start(sim).expect("simulator");

    let cfg = ExtractorConfig {
        online: OnlineConfig {
            groups: (1..=3)
                .map(|g| GroupConfig {
                    members: vec![db.join(format!("online/redo_t1_g{g}.log"))],
                })
                .collect(),
            threads: Vec::new(),
        },
        archive: ArchiveConfig {
            dirs: vec![db.join("archive")],
        },
        tail: TailConfig::default(),
        state: StateConfig {
            dir: db.join("extractor-state"),
        },
    };
    let sources = cfg.sources();
    let client = TlsClient::from_pem_files(&pki.client_cert, &pki.client_key, &pki.ca).unwrap();
    let targets: Vec<Target> = running
        .iter()
        .enumerate()
        .map(|(i, r)| Target {
            name: format!("c{}", i + 1),
            cfg: Arc::new(ShipConfig {
                address: r.addr.to_string(),
                security: ClientSecurity::Tls {
                    client: client.clone(),
                    server_name: "localhost".into(),
                },
                link: LinkConfig::default(),
                window: 16 << 20,
                extractor_id: "redovault-extractor".into(),
                db_name: "FREE".into(),
                reconnect_min: Duration::from_millis(50),
                reconnect_max: Duration::from_secs(1),
                compress: None,
            }),
        })
        .collect();
    let metrics = ExtractorMetrics::new();
    let (obs_tx, mut obs_rx) = tokio::sync::mpsc::unbounded_channel();
    let cpu0 = threads_cpu(&EXTRACTOR_THREADS);
    let tasks = {
        let _g = extractor_rt.enter();
        let mut tasks = tokio::task::JoinSet::new();
        let plan = Plan {
            targets: &targets,
            policy,
            sources: &sources,
            tail: cfg.tail,
            state_dir: &cfg.state.dir,
            metrics: &metrics,
        };
        for s in start_streams(&cfg).expect("tailers") {
            spawn_stream(&mut tasks, s, &plan, Some(obs_tx.clone()), &cancel).expect("stream");
        }
        tasks
    };

    let stop = Arc::new(AtomicBool::new(false));
    let (db_thread, commit_rx) =
        common::run_database(sim, db.join("journal.jsonl"), stop.clone(), Instant::now);

    let start = Instant::now();
    let warmup = Duration::from_secs(2);
    let run = Duration::from_secs(seconds);
    let mut lat = common::Latencies::new(start + warmup);
    let mut stopped_at = None;
    let mut cpu_at_stop = None;
    loop {
        while let Ok((_, scn, at)) = commit_rx.try_recv() {
            lat.written(scn, at);
        }
        if stopped_at.is_none() && start.elapsed() >= run {
            stop.store(true, Ordering::Relaxed);
            stopped_at = Some(Instant::now());
        }
        let got = extractor_rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(20), obs_rx.recv()).await
        });
        if let Ok(Some((at, a))) = got
            && let Some(c) = a.last
        {
            while let Ok((_, scn, written)) = commit_rx.try_recv() {
                lat.written(scn, written);
            }
            lat.covered(c.scn.0, at);
        }
        if let Some(t) = stopped_at
            && db_thread.is_finished()
            && (lat.waiting() == 0 || t.elapsed() > Duration::from_secs(30))
        {
            cpu_at_stop.get_or_insert_with(|| threads_cpu(&EXTRACTOR_THREADS));
            break;
        }
    }
    let cpu1 = cpu_at_stop.unwrap_or_else(|| threads_cpu(&EXTRACTOR_THREADS));
    let summary = db_thread.join().expect("db thread");
    cancel.cancel();
    extractor_rt.block_on(async {
        let mut tasks = tasks;
        while tasks.join_next().await.is_some() {}
    });
    collectors_rt.block_on(async {
        for r in running {
            r.stop().await;
        }
    });
    let _ = std::fs::remove_dir_all(&db);
    for i in 0..n {
        let _ = std::fs::remove_dir_all(root.join(format!("n{n}-c{}", i + 1)));
    }
    let unprotected = lat.waiting();
    let mut lat = lat.ms;
    lat.sort_by(f64::total_cmp);
    Row {
        collectors: n,
        policy,
        measured: lat.len(),
        unprotected,
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
        redo_mb: summary.simulated_seconds * (rate_mib << 20) as f64 / 1e6,
        cpu_s: cpu1 - cpu0,
    }
}

fn main() {
    let seconds = env_u64("REDOVAULT_BENCH_SECONDS", 20);
    let rate_mib = env_u64("REDOVAULT_BENCH_RATE_MIB", 10);
    let root = bench_dir();
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let pki_dir = root.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = tls::generate_pki(&pki_dir).expect("pki");
    println!(
        "replicate: {seconds} s per configuration at {rate_mib} MiB/s; collector stores in {}",
        root.display()
    );
    let mut rows = Vec::new();
    for (n, policy) in [
        (1, AckPolicy::Majority),
        (2, AckPolicy::All),
        (3, AckPolicy::Majority),
    ] {
        let r = run_one(n, policy, &root, &pki, seconds, rate_mib);
        println!(
            "  {} collector(s), ack {:<8}: commit -> protected p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} commits measured, {} never protected); extractor CPU {:.2} s for {:.0} MB = {:.1} ms/MB",
            r.collectors,
            r.policy.as_str(),
            r.p50,
            r.p99,
            r.max,
            r.measured,
            r.unprotected,
            r.cpu_s,
            r.redo_mb,
            1000.0 * r.cpu_s / r.redo_mb
        );
        rows.push(r);
    }
    let base = &rows[0];
    println!();
    println!(
        "| collectors | ack | commit → protected p50 | p99 | max | p99 vs 1 | extractor CPU ms/MB | CPU vs 1 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let cpu = 1000.0 * r.cpu_s / r.redo_mb;
        let base_cpu = 1000.0 * base.cpu_s / base.redo_mb;
        println!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2}x | {:.1} | {:.2}x |",
            r.collectors,
            r.policy.as_str(),
            r.p50,
            r.p99,
            r.max,
            r.p99 / base.p99,
            cpu,
            cpu / base_cpu
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
