//! Scale curve of one collector: 1, 4, 16 and 64 streams at a fixed aggregate rate (issue 19).
//!
//! Per step of N streams: simulated databases (in this process, each on its own thread, in
//! real time) write `REDOVAULT_BENCH_RATE_MIB` MiB/s (10) **in all**, `rate / N` per stream;
//! a stream is one redo thread of one database (distinct database ids; with
//! `REDOVAULT_BENCH_RAC_THREADS` = 2, the default, the steps above one stream are RAC
//! databases of two threads each, so 64 streams are 32 databases × 2 threads). N extractor
//! shippers (`redovault_extractor::ship::Shipper`, tailer with file events, one per thread as
//! deployed, all in this process) ship over TLS 1.3 on 127.0.0.1 to **one** collector: the
//! real `redovault-collector` binary (release build), a process of its own, fresh for each
//! step, storing on the real disk (AES-256-GCM segments, group commit, fdatasync before every
//! Ack). The databases live on `/dev/shm` (as on their own hosts, with the shippers'
//! checkpoints): their online logs are `REDOVAULT_BENCH_LOG_MIB` each, by default
//! 512 MiB / N between 8 and 64 MiB (64 MiB at 1 and 4 streams, 32 at 16, 8 at 64), three
//! groups per thread, so 64 streams hold 64 × 3 × 8 MiB = 1.5 GiB in memory.
//!
//! Measured per step, over the window after `REDOVAULT_BENCH_WARMUP_SECONDS` (3) until
//! `REDOVAULT_BENCH_SECONDS` (20) from the start:
//! - **commit → Ack**, per commit of every stream: from the moment its database began the
//!   step that writes the LWN holding it (and its journal line) to the moment that stream's shipper receives an
//!   Ack whose last commit is at or after it (`Shipper::observe_acks`, as `ship_latency.rs`);
//!   p50 / p99 / max pooled over all streams, and the worst stream's p99;
//! - the collector's **CPU** (user + system, `/proc/<pid>/stat`) over the window per MB it
//!   stored in the window (`redovault_collector_stored_bytes_total`, all streams);
//! - the collector's **memory** (VmRSS at the end of the window, VmHWM at the end of the step)
//!   and **file descriptors** (`/proc/<pid>/fd`, the most seen in the window), in total and
//!   per stream above the first step (1 stream): (value(N) − value(1)) / (N − 1);
//! - its group commits per second and mean fsync round (`redovault_collector_store_fsyncs_total`,
//!   `_fsync_seconds_total`) and its own share (Data received → Ack sent, histogram bucket
//!   bounds, `redovault_collector_ack_latency_seconds`).
//!
//! Then, in the same run, right after each step with nothing else of redovault running, **the
//! disk's bare group-commit floor at the same arrival rate** (what `disk_sync.rs` measures):
//! a timer thread delivers arrivals at the step's measured commit rate, each of the step's
//! measured bytes per commit; one writer thread takes everything queued, appends it to a
//! growing file in the collector's directory and `fdatasync`s once, stamping every arrival of
//! the batch durable; `REDOVAULT_BENCH_FLOOR_SECONDS` (10), the first second left out.
//!
//! Goals (issue 19), printed as met / not met with their figures: commit → Ack p99 at the
//! largest step within 2 × the one-stream p99; collector memory per stream flat (at each step
//! after the second, the per-stream RSS above one stream at most 1.25 × the previous step's);
//! commit → Ack p99 within 1.25 × the floor's p99 at every step.
//!
//! Run: `deploy/bench.sh scale-streams`, or `cargo bench -p redovault --bench scale_streams`.
//! `REDOVAULT_BENCH_STREAMS` (`1,4,16,64`), `REDOVAULT_BENCH_RATE_MIB` (10),
//! `REDOVAULT_BENCH_SECONDS` (20), `REDOVAULT_BENCH_SHIP_DIR` (collector store; default
//! `<target>/bench-scale-streams`), `REDOVAULT_BENCH_DB_DIR` (databases; default `/dev/shm`),
//! `REDOVAULT_BENCH_COLLECTOR` (a `redovault-collector` binary to measure instead of this
//! tree's, e.g. an older build), `REDOVAULT_BENCH_RAC_THREADS` (2), `REDOVAULT_BENCH_LOG_MIB`,
//! `REDOVAULT_BENCH_WARMUP_SECONDS` (3), `REDOVAULT_BENCH_FLOOR_SECONDS` (10),
//! `REDOVAULT_BENCH_COLLECTOR_NICE` (the collector under `nice -n` this value, e.g. `-15`:
//! the databases and shippers of every stream run in this process on the same two cores, and
//! at 64 streams and 10 MiB/s they take about 1.5 of them; a deployed collector has its
//! backup host's CPU to itself), `REDOVAULT_BENCH_COLLECTOR_CPUS` (the collector under
//! `taskset -c` these CPUs, e.g. `1`, with the bench itself under `taskset -c 0`: each on a
//! core of its own).

#[path = "common.rs"]
mod common;

use common::{env_u64, free_port, load_average, pct, scrape, sorted};
use redovault_redo::position::DbId;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redovault::crypto::tls::{self, TlsClient};
use redovault::wire::message::Ack;
use redovault::wire::transport::{ClientSecurity, LinkConfig};
use redovault_drill::simulate::{Rate, SimConfig, Simulator};
use redovault_extractor::checkpoint::CheckpointStore;
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::metrics::ExtractorMetrics;
use redovault_extractor::ship::{ShipConfig, Shipper};
use redovault_extractor::tail::Tailer;
use redovault_redo::ThreadId;
use tokio_util::sync::CancellationToken;

/// The sum of every sample of the family `name` (all label sets; `name` alone when it has
/// none).
fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.rsplit_once("} ")?.1
            } else {
                rest.strip_prefix(' ')?
            };
            value.trim().parse::<f64>().ok()
        })
        .sum()
}

/// A histogram family's buckets summed over its label sets: (upper bound, cumulative count).
fn buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&format!("{name}_bucket{{")) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(le) = labels
            .split("le=\"")
            .nth(1)
            .map(|l| l.trim_end_matches('"'))
        else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let v: f64 = value.trim().parse().unwrap_or(0.0);
        match out.iter_mut().find(|b| b.0 == le) {
            Some(b) => b.1 += v,
            None => out.push((le, v)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// p50 and p99 upper bounds (seconds) of the observations between two scrapes.
fn histogram_window(a: &str, b: &str, name: &str) -> Option<(f64, f64)> {
    let before = buckets(a, name);
    let delta: Vec<(f64, f64)> = buckets(b, name)
        .into_iter()
        .map(|(le, v)| {
            let was = before.iter().find(|x| x.0 == le).map_or(0.0, |x| x.1);
            (le, v - was)
        })
        .collect();
    let total = delta.iter().map(|b| b.1).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let q = |p: f64| {
        delta
            .iter()
            .find(|b| b.1 >= p * total)
            .map_or(f64::INFINITY, |b| b.0)
    };
    Some((q(0.5), q(0.99)))
}

/// VmRSS and VmHWM (bytes) and the thread count of a running process.
fn memory(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().trim_end_matches("kB").trim())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:") * 1024,
        field("VmHWM:") * 1024,
        field("Threads:"),
    )
}

/// Open file descriptors of a running process.
fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Starts the collector; with `REDOVAULT_BENCH_COLLECTOR_NICE` under `nice -n`, with
/// `REDOVAULT_BENCH_COLLECTOR_CPUS` under `taskset -c` (as on a backup host of its own, where
/// the databases and shippers do not take its CPU; both exec it, so the pid read for CPU and
/// memory is the collector's).
fn spawn(bin: &Path, cfg: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("collector log");
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if let Ok(cpus) = std::env::var("REDOVAULT_BENCH_COLLECTOR_CPUS") {
        argv.extend(["taskset".into(), "-c".into(), cpus.into()]);
    }
    if let Ok(n) = std::env::var("REDOVAULT_BENCH_COLLECTOR_NICE") {
        argv.extend(["nice".into(), "-n".into(), n.into()]);
    }
    argv.push(bin.into());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.arg("--config")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn the collector")
}

fn stop(mut c: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    for _ in 0..400 {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// What the disk alone allows a group-commit writer at `rate` arrivals per second of `size`
/// bytes for `secs` seconds (as `disk_sync.rs`, appending to a growing file in `dir`):
/// arrival → durable latencies in ms, sorted, the first second left out.
fn group_commit_floor(dir: &Path, rate: f64, size: usize, secs: u64) -> Vec<f64> {
    let path = dir.join("scale-streams-floor");
    let mut f = common::probe_file(&path);
    let lat = common::group_commit_latencies(&mut f, rate, size, secs);
    drop(f);
    let _ = std::fs::remove_file(&path);
    sorted(lat)
}

/// Everything the steps share.
struct Setup {
    root: PathBuf,
    db_root: PathBuf,
    collector_bin: PathBuf,
    pki: tls::PkiPaths,
    keys: PathBuf,
    rate_mib: u64,
    seconds: u64,
    warmup: u64,
    floor_seconds: u64,
    rac_threads: u16,
    log_mib: Option<u64>,
}

/// What one step measured.
struct Step {
    n: usize,
    dbs: usize,
    threads: u16,
    log_mib: u64,
    load_before: String,
    load_after: String,
    window_s: f64,
    /// Commits written in the window (all streams) and how many were never acknowledged.
    commits: usize,
    unacked: usize,
    switches: u64,
    /// commit → Ack, ms, every commit of the window, sorted.
    lat: Vec<f64>,
    /// The largest per-stream p99 (ms).
    worst_stream_p99: f64,
    mb: f64,
    col_cpu: f64,
    bench_cpu: f64,
    idle_rss: u64,
    idle_fds: u64,
    rss: u64,
    hwm: u64,
    fds: u64,
    col_threads: u64,
    group_commits_per_s: f64,
    fsync_round_ms: f64,
    collector_side: Option<(f64, f64)>,
    /// Commits per second and bytes per commit in the window (the floor's arrivals).
    arrivals_per_s: f64,
    bytes_per_commit: f64,
    /// The disk's bare group commit at that rate, arrival → durable ms, sorted.
    floor: Vec<f64>,
}

impl Step {
    fn p99(&self) -> f64 {
        pct(&self.lat, 0.99)
    }
    fn floor_p99(&self) -> f64 {
        pct(&self.floor, 0.99)
    }
    fn cpu_per_mb(&self) -> f64 {
        self.col_cpu / self.mb
    }
}

/// A stream's shipper and what it observed.
struct Stream {
    db: usize,
    thread: u16,
    acks: tokio::sync::mpsc::UnboundedReceiver<(Instant, Ack)>,
    /// (when, last commit SCN acknowledged so far), in arrival order.
    acked: Vec<(Instant, u64)>,
    commits: Vec<(u64, Instant)>,
}

impl Stream {
    fn drain_acks(&mut self) {
        while let Ok((at, ack)) = self.acks.try_recv() {
            let prev = self.acked.last().map_or(0, |a| a.1);
            let scn = ack.last_commit.map_or(0, |c| c.scn.0).max(prev);
            self.acked.push((at, scn));
        }
    }
    fn acked_scn(&self) -> u64 {
        self.acked.last().map_or(0, |a| a.1)
    }
}

fn collector_config(s: &Setup, dir: &Path, port: u16, mport: u16, n: usize) -> PathBuf {
    let cfg = dir.join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\nmax_connections = {}\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\
             [store]\ndir = \"{}\"\nkey_file = \"{}\"\n\
             [telemetry]\nlog_level = \"warn\"\nmetrics_listen = \"127.0.0.1:{mport}\"\n",
            (2 * n).max(256),
            s.pki.server_cert.display(),
            s.pki.server_key.display(),
            s.pki.ca.display(),
            dir.join("store").display(),
            s.keys.display(),
        ),
    )
    .expect("collector config");
    cfg
}

/// How a step's N streams are laid out: databases × threads each.
fn layout(n: usize, rac_threads: u16) -> (usize, u16) {
    let t = usize::from(rac_threads.max(1));
    if n > 1 && n.is_multiple_of(t) {
        (n / t, rac_threads)
    } else {
        (n, 1)
    }
}

fn run_step(s: &Setup, n: usize, rt: &tokio::runtime::Runtime) -> Step {
    let (dbs, threads) = layout(n, s.rac_threads);
    let log_mib = s.log_mib.unwrap_or((512 / n as u64).clamp(8, 64));
    let dir = s.root.join(format!("streams-{n}"));
    let db_root = s.db_root.join(format!("streams-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&db_root);
    std::fs::create_dir_all(&dir).expect("step dir");
    std::fs::create_dir_all(&db_root).expect("database dir");
    let load_before = load_average();

    // The collector, alone, before any stream.
    let (port, mport) = (free_port(), free_port());
    let ccfg = collector_config(s, &dir, port, mport, n);
    let collector = spawn(&s.collector_bin, &ccfg, &db_root.join("collector.log"));
    let pid = collector.id();
    let maddr = SocketAddr::from(([127, 0, 0, 1], mport));
    let t = Instant::now();
    while scrape(maddr).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the collector did not start; see {}",
            db_root.join("collector.log").display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (idle_rss, _, _) = memory(pid);
    let idle_fds = fds(pid);

    // The databases: `rate / N` per stream, a database of `threads` threads gets `threads` shares.
    let per_db = (s.rate_mib << 20) * u64::from(threads) / n as u64;
    let security = ClientSecurity::Tls {
        client: TlsClient::from_pem_files(&s.pki.client_cert, &s.pki.client_key, &s.pki.ca)
            .expect("TLS client"),
        server_name: "localhost".into(),
    };
    let tail = TailConfig::default();
    let metrics = ExtractorMetrics::new();
    let cancel = CancellationToken::new();
    let stop_dbs = Arc::new(AtomicBool::new(false));
    let mut streams: Vec<Stream> = Vec::new();
    let mut sims = Vec::new();
    let mut shippers = Vec::new();
    for d in 0..dbs {
        let db = db_root.join(format!("db{d}"));
        let mut sim = SimConfig::new(&db);
        sim.threads = threads;
        sim.log_size = log_mib << 20;
        sim.groups = 3;
        sim.rate = Rate::BytesPerSec(per_db);
        sim.realtime = true;
        sim.seed = d as u64 + 1;
        sim.db_id = DbId(1_000_000_001 + d as u32);
        sim.db_name = format!("SCALE{d}");
        let simulator = Simulator::start(sim.clone()).expect("simulator");
        let sources = LogSources {
            groups: (1..=threads)
                .flat_map(|t| {
                    let db = db.clone();
                    (1..=sim.groups)
                        .map(move |g| vec![db.join(format!("online/redo_t{t}_g{g}.log"))])
                })
                .collect(),
            archive_dirs: vec![db.join("archive")],
        };
        for t in 1..=threads {
            let tailer = Tailer::at_current(&sources, tail, ThreadId(t)).expect("tailer");
            let stream = tailer.stream();
            let from = tailer.position();
            let cfg = Arc::new(ShipConfig {
                address: format!("127.0.0.1:{port}"),
                security: security.clone(),
                link: LinkConfig::default(),
                window: 16 << 20,
                extractor_id: "redovault-extractor".into(),
                db_name: sim.db_name.clone(),
                reconnect_min: Duration::from_millis(50),
                reconnect_max: Duration::from_secs(1),
                compress: None,
            });
            let (ack_tx, ack_rx) = tokio::sync::mpsc::unbounded_channel();
            let _rt = rt.enter();
            let checkpoint =
                CheckpointStore::open(&db.join("extractor-state"), stream).expect("checkpoint");
            let mut shipper = Shipper::new(
                stream,
                Some(tailer),
                checkpoint,
                from,
                sources.clone(),
                tail,
                cfg,
                metrics.stream(stream),
            );
            shipper.observe_acks(ack_tx);
            shippers.push(rt.spawn(shipper.run(cancel.clone())));
            streams.push(Stream {
                db: d,
                thread: t,
                acks: ack_rx,
                acked: Vec::new(),
                commits: Vec::new(),
            });
        }
        sims.push((simulator, db.join("journal.jsonl")));
    }
    let databases: Vec<_> = sims
        .into_iter()
        .map(|(sim, journal)| common::run_database(sim, journal, stop_dbs.clone(), Instant::now))
        .collect();

    let start = Instant::now();
    let drain = |streams: &mut Vec<Stream>| {
        for st in streams.iter_mut() {
            st.drain_acks();
        }
        for (d, (_, rx)) in databases.iter().enumerate() {
            for (t, scn, at) in rx.try_iter() {
                if let Some(st) = streams.iter_mut().find(|x| x.db == d && x.thread == t) {
                    st.commits.push((scn, at));
                }
            }
        }
    };
    std::thread::sleep(Duration::from_secs(s.warmup));
    let a = (
        Instant::now(),
        common::cpu_of(pid),
        common::cpu_seconds().0,
        scrape(maddr).unwrap_or_default(),
    );
    let end = start + Duration::from_secs(s.seconds);
    let (mut rss, mut max_fds) = (0, 0);
    while Instant::now() < end {
        std::thread::sleep(
            Duration::from_millis(250).min(end.saturating_duration_since(Instant::now())),
        );
        drain(&mut streams);
        max_fds = max_fds.max(fds(pid));
        rss = memory(pid).0;
    }
    let b = (
        Instant::now(),
        common::cpu_of(pid),
        common::cpu_seconds().0,
        scrape(maddr).unwrap_or_default(),
    );
    let col_threads = memory(pid).2;
    stop_dbs.store(true, Ordering::Relaxed);
    let mut switches = 0;
    let mut receivers = Vec::new();
    for (h, rx) in databases {
        switches += h.join().expect("database thread").switches;
        receivers.push(rx);
    }
    for (d, rx) in receivers.iter().enumerate() {
        for (t, scn, at) in rx.try_iter() {
            if let Some(st) = streams.iter_mut().find(|x| x.db == d && x.thread == t) {
                st.commits.push((scn, at));
            }
        }
    }
    // Everything written acknowledged before the shippers stop.
    let t = Instant::now();
    loop {
        for st in streams.iter_mut() {
            st.drain_acks();
        }
        let behind = streams
            .iter()
            .filter(|st| st.commits.last().is_some_and(|c| c.0 > st.acked_scn()))
            .count();
        if behind == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(30) {
            println!("  {n} streams: {behind} streams not fully acknowledged 30 s after the end");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let hwm = memory(pid).1;
    cancel.cancel();
    rt.block_on(async {
        for s in shippers {
            let _ = s.await;
        }
    });
    stop(collector);
    let load_after = load_average();

    // commit → Ack for the commits written in the window.
    let (from, to) = (a.0, b.0);
    let mut lat = Vec::new();
    let mut worst_stream_p99 = 0.0f64;
    let (mut commits, mut unacked) = (0usize, 0usize);
    for st in &streams {
        let mut mine = Vec::new();
        for &(scn, written) in &st.commits {
            if written < from || written > to {
                continue;
            }
            commits += 1;
            let i = st.acked.partition_point(|x| x.1 < scn);
            match st.acked.get(i) {
                Some(&(at, _)) => {
                    mine.push(at.saturating_duration_since(written).as_secs_f64() * 1000.0)
                }
                None => unacked += 1,
            }
        }
        let mine = sorted(mine);
        worst_stream_p99 = worst_stream_p99.max(pct(&mine, 0.99));
        lat.extend(mine);
    }
    let window_s = (to - from).as_secs_f64();
    let delta = |name: &str| family_sum(&b.3, name) - family_sum(&a.3, name);
    let stored = delta("redovault_collector_stored_bytes_total");
    let rounds = delta("redovault_collector_store_fsyncs_total");
    let round_secs = delta("redovault_collector_store_fsync_seconds_total");
    let arrivals_per_s = commits as f64 / window_s;
    let bytes_per_commit = stored / commits.max(1) as f64;
    let _ = std::fs::remove_dir_all(dir.join("store"));
    let _ = std::fs::remove_dir_all(&db_root);
    // The floor, with nothing else of redovault running, in the collector's directory.
    let floor = group_commit_floor(
        &dir,
        arrivals_per_s.max(1.0),
        bytes_per_commit as usize,
        s.floor_seconds,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Step {
        n,
        dbs,
        threads,
        log_mib,
        load_before,
        load_after,
        window_s,
        commits,
        unacked,
        switches,
        lat: sorted(lat),
        worst_stream_p99,
        mb: stored / 1e6,
        col_cpu: b.1 - a.1,
        bench_cpu: b.2 - a.2,
        idle_rss,
        idle_fds,
        rss,
        hwm,
        fds: max_fds,
        col_threads,
        group_commits_per_s: rounds / window_s,
        fsync_round_ms: round_secs / rounds.max(1.0) * 1000.0,
        collector_side: histogram_window(&a.3, &b.3, "redovault_collector_ack_latency_seconds"),
        arrivals_per_s,
        bytes_per_commit,
        floor,
    }
}

fn print_step(r: &Step) {
    println!(
        "{} streams ({} database(s) x {} thread(s), {} MiB logs): load {} -> {}; {:.1} s window, \
         {} commits ({:.0}/s, {:.0} bytes each), {} never acknowledged, {} log switches",
        r.n,
        r.dbs,
        r.threads,
        r.log_mib,
        r.load_before,
        r.load_after,
        r.window_s,
        r.commits,
        r.arrivals_per_s,
        r.bytes_per_commit,
        r.unacked,
        r.switches
    );
    println!(
        "  commit -> Ack p50 {:.3} ms  p90 {:.3}  p99 {:.3}  max {:.3}; worst stream's p99 {:.3} ms; \
         collector side (Data received -> Ack sent, bucket bounds) {}",
        pct(&r.lat, 0.5),
        pct(&r.lat, 0.9),
        r.p99(),
        r.lat.last().copied().unwrap_or(f64::NAN),
        r.worst_stream_p99,
        r.collector_side.map_or("none".into(), |(a, b)| format!(
            "p50 <= {:.1} ms, p99 <= {:.1} ms",
            a * 1e3,
            b * 1e3
        ))
    );
    println!(
        "  disk floor (bare group commit, {:.0} arrivals/s of {:.0} bytes): p50 {:.3} ms  p99 {:.3}  max {:.3}; \
         pipeline p99 / floor p99 = {:.2}",
        r.arrivals_per_s,
        r.bytes_per_commit,
        pct(&r.floor, 0.5),
        r.floor_p99(),
        r.floor.last().copied().unwrap_or(f64::NAN),
        r.p99() / r.floor_p99()
    );
    println!(
        "  collector: {:.1} MB stored, CPU {:.2} s ({:.4} s/MB); VmRSS {:.1} MiB (idle {:.1}), VmHWM {:.1} MiB; \
         {} fds (idle {}), {} threads; {:.0} group commits/s, fsync round mean {:.3} ms; \
         this process (databases + shippers) CPU {:.2} s",
        r.mb,
        r.col_cpu,
        r.cpu_per_mb(),
        mib(r.rss),
        mib(r.idle_rss),
        mib(r.hwm),
        r.fds,
        r.idle_fds,
        r.col_threads,
        r.group_commits_per_s,
        r.fsync_round_ms,
        r.bench_cpu
    );
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1 << 20)
}

/// `x` as a growth factor against `base` ("–" without a base).
fn growth(x: f64, base: Option<f64>) -> String {
    match base {
        Some(b) if b.is_finite() && b != 0.0 && x.is_finite() => format!("{:.2}x", x / b),
        _ => "–".into(),
    }
}

/// Per stream above the first step: (value(N) − value(first)) / (N − N(first)).
fn per_stream(value: f64, n: usize, first: (f64, usize)) -> Option<f64> {
    (n > first.1).then(|| (value - first.0) / (n - first.1) as f64)
}

fn summarize(steps: &[Step]) {
    let Some(first) = steps.first() else {
        return;
    };
    println!();
    println!(
        "| streams | layout | commits | commit → Ack p50 | p99 | max | worst stream p99 | p99 × previous | p99 × first | floor p50 | floor p99 | p99 / floor p99 |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut prev: Option<&Step> = None;
    for r in steps {
        println!(
            "| {} | {} × {} | {} | {:.3} ms | **{:.3} ms** | {:.1} ms | {:.3} ms | {} | {} | {:.3} ms | {:.3} ms | **{:.2}** |",
            r.n,
            r.dbs,
            r.threads,
            r.lat.len(),
            pct(&r.lat, 0.5),
            r.p99(),
            r.lat.last().copied().unwrap_or(f64::NAN),
            r.worst_stream_p99,
            growth(r.p99(), prev.map(Step::p99)),
            growth(r.p99(), Some(first.p99())),
            pct(&r.floor, 0.5),
            r.floor_p99(),
            r.p99() / r.floor_p99()
        );
        prev = Some(r);
    }
    println!();
    println!(
        "| streams | MB stored | collector CPU s/MB | × previous | × first | VmRSS | VmHWM | RSS per stream above first | × previous | fds | fds per stream above first | group commits/s | fsync round |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut prev: Option<&Step> = None;
    let mut prev_ps: Option<f64> = None;
    let first_rss = (first.rss as f64, first.n);
    let first_fds = (first.fds as f64, first.n);
    for r in steps {
        let ps = per_stream(r.rss as f64, r.n, first_rss);
        let fs = per_stream(r.fds as f64, r.n, first_fds);
        println!(
            "| {} | {:.0} | {:.4} | {} | {} | {:.1} MiB | {:.1} MiB | {} | {} | {} | {} | {:.0} | {:.3} ms |",
            r.n,
            r.mb,
            r.cpu_per_mb(),
            growth(r.cpu_per_mb(), prev.map(Step::cpu_per_mb)),
            growth(r.cpu_per_mb(), Some(first.cpu_per_mb())),
            mib(r.rss),
            mib(r.hwm),
            ps.map_or("–".into(), |v| format!("{:.0} KiB", v / 1024.0)),
            ps.map_or("–".into(), |v| growth(v, prev_ps)),
            r.fds,
            fs.map_or("–".into(), |v| format!("{v:.2}")),
            r.group_commits_per_s,
            r.fsync_round_ms
        );
        prev = Some(r);
        prev_ps = ps;
    }
    goals(steps);
}

fn goals(steps: &[Step]) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return;
    };
    println!();
    let ratio = last.p99() / first.p99();
    println!(
        "goal: commit -> Ack p99 at {} streams within 2x of {} stream(s): {:.3} / {:.3} ms = {ratio:.2}x: {}",
        last.n,
        first.n,
        last.p99(),
        first.p99(),
        verdict(ratio <= 2.0)
    );
    let first_rss = (first.rss as f64, first.n);
    let per: Vec<(usize, f64)> = steps
        .iter()
        .filter_map(|r| Some((r.n, per_stream(r.rss as f64, r.n, first_rss)?)))
        .collect();
    let flat = per.windows(2).all(|w| w[1].1 <= 1.25 * w[0].1.max(0.0));
    println!(
        "goal: collector memory per stream flat (each step at most 1.25x the previous, RSS above {} stream(s)): {}: {}",
        first.n,
        per.iter()
            .map(|(n, v)| format!("{n}: {:.0} KiB", v / 1024.0))
            .collect::<Vec<_>>()
            .join(", "),
        verdict(per.len() >= 2 && flat)
    );
    let ratios: Vec<String> = steps
        .iter()
        .map(|r| format!("{}: {:.2}", r.n, r.p99() / r.floor_p99()))
        .collect();
    let within = steps.iter().all(|r| r.p99() <= 1.25 * r.floor_p99());
    println!(
        "goal: commit -> Ack p99 within 1.25x of the disk's bare group-commit p99 at the same arrival rate: {}: {}",
        ratios.join(", "),
        verdict(within)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let steps: Vec<usize> = std::env::var("REDOVAULT_BENCH_STREAMS")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .collect();
    let profile = PathBuf::from(env!("CARGO_BIN_EXE_redovault"))
        .parent()
        .expect("profile dir")
        .to_path_buf();
    let root = std::env::var_os("REDOVAULT_BENCH_SHIP_DIR").map_or_else(
        || {
            profile
                .parent()
                .expect("target")
                .join("bench-scale-streams")
        },
        PathBuf::from,
    );
    let db_root = std::env::var_os("REDOVAULT_BENCH_DB_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new("/dev/shm").is_dir().then(|| {
                PathBuf::from(format!(
                    "/dev/shm/redovault-bench-scale-{}",
                    std::process::id()
                ))
            })
        })
        .unwrap_or_else(|| root.join("db"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    // Another build of the collector instead of this tree's (a before / after comparison).
    let collector_bin = match std::env::var_os("REDOVAULT_BENCH_COLLECTOR") {
        Some(bin) => PathBuf::from(bin),
        None => common::build_role_bins().1,
    };
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();

    let pki_dir = root.join("pki");
    std::fs::create_dir_all(&pki_dir).expect("pki dir");
    let pki = tls::generate_pki(&pki_dir).expect("pki");
    let keys = root.join("keys");
    std::fs::write(
        &keys,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .expect("keys");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let setup = Setup {
        root: root.clone(),
        db_root: db_root.clone(),
        collector_bin,
        pki,
        keys,
        rate_mib: env_u64("REDOVAULT_BENCH_RATE_MIB", 10),
        seconds: env_u64("REDOVAULT_BENCH_SECONDS", 20),
        warmup: env_u64("REDOVAULT_BENCH_WARMUP_SECONDS", 3),
        floor_seconds: env_u64("REDOVAULT_BENCH_FLOOR_SECONDS", 10),
        rac_threads: env_u64("REDOVAULT_BENCH_RAC_THREADS", 2).clamp(1, 64) as u16,
        log_mib: std::env::var("REDOVAULT_BENCH_LOG_MIB")
            .ok()
            .and_then(|v| v.parse().ok()),
    };
    assert!(
        setup.seconds > setup.warmup,
        "REDOVAULT_BENCH_SECONDS must exceed the warm-up"
    );
    println!(
        "scale_streams: steps {steps:?} at {} MiB/s in all, {} s each (first {} s not measured), \
         floor {} s; collector {} (nice {}, cpus {}), store in {}, databases in {}; {} cores, \
         load {}",
        setup.rate_mib,
        setup.seconds,
        setup.warmup,
        setup.floor_seconds,
        setup.collector_bin.display(),
        std::env::var("REDOVAULT_BENCH_COLLECTOR_NICE").unwrap_or_else(|_| "0".into()),
        std::env::var("REDOVAULT_BENCH_COLLECTOR_CPUS").unwrap_or_else(|_| "all".into()),
        root.display(),
        db_root.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut results = Vec::new();
    for n in steps {
        let r = run_step(&setup, n, &rt);
        print_step(&r);
        results.push(r);
    }
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&db_root);
    summarize(&results);
}
