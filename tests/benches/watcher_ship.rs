//! Watcher benchmark: the `redovault watch` daemon (the release binary, a child process)
//! shipping archived redo logs to the real Ceph radosgw, beside `curl -T` and `aws s3 cp` on
//! the same files and server.
//!
//! `REDOVAULT_BENCH_PHASE` picks one phase; `deploy/bench.sh watcher` runs them in turn, each on
//! a fresh server (Ceph's in-memory OSD takes about twice the bytes stored, so the phases do
//! not pile their objects into one server), and appends each phase's figures to
//! `REDOVAULT_BENCH_RESULTS`; the `report` phase prints the comparison.
//! - `set`: `REDOVAULT_BENCH_FILES` (40) logs of `REDOVAULT_BENCH_MIB` (50) MiB appear at once
//!   (hard-linked into the archive directory); time until the last manifest entry is durable;
//!   the watcher's CPU and peak RSS (VmHWM); then `curl -T` on the same files, as many at once
//!   as the watcher's parallel uploads, on the same server;
//! - `reference`: the same files with `curl -T` one at a time and `aws s3 cp`;
//! - `latency`: `REDOVAULT_BENCH_LATENCY_FILES` (30) more logs arrive one every
//!   `REDOVAULT_BENCH_LATENCY_MS` (1000) ms; detection → upload start and detection → durable
//!   manifest entry, p50 and p99, from the watcher's own log lines;
//! - `big`: one log of `REDOVAULT_BENCH_BIG_GIB` (4) GiB: time, CPU, peak RSS;
//! - `report`: the table.
//!
//! The logs are valid archived logs built from the real Oracle 23ai log in `fixtures/`: its
//! record blocks repeated, renumbered, stamped with the log's sequence and re-sealed with
//! their checksums (as the parser benchmark does), so the watcher's validation does its full
//! work. They are made once into `REDOVAULT_BENCH_DIR` (deterministic: same sequence and size,
//! same bytes) and reused by every phase. Environment: `REDOVAULT_TEST_S3_TARGETS` (an `env.sh`
//! of `deploy/s3/server.sh`), `REDOVAULT_BENCH_AWS` (path of `aws`); for a closer look,
//! `REDOVAULT_BENCH_LOG_LEVEL` (the watcher's, default `info`) and `REDOVAULT_BENCH_LOGS` (a
//! directory that keeps each watcher's JSON log, named after its phase).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redovault_drill::testserver::TestServer;

#[path = "archived_logs.rs"]
mod archived_logs;
#[path = "common.rs"]
mod common;
use archived_logs::make_log;
use common::{Row, Target, cpu_of, peak_rss, run_cmd, server_cpu, total_bytes};

const RV: &str = env!("CARGO_BIN_EXE_redovault");
const PARALLEL: usize = 4;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One watcher run: its configuration, state, log, process.
struct Run {
    root: PathBuf,
    archive: PathBuf,
    child: Child,
}

impl Run {
    fn start(root: &Path, server: &TestServer, prefix: &str) -> Run {
        let archive = root.join("archive");
        let state = root.join("state");
        std::fs::create_dir_all(&archive).unwrap();
        let cfg = root.join("watcher.toml");
        std::fs::write(
            &cfg,
            format!(
                r#"
[watch]
dirs = ["{archive}"]
parallel_uploads = {PARALLEL}
[state]
dir = "{state}"
[store]
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "{prefix}"
retention = "1h"
[telemetry]
log_format = "json"
log_level = "{level}"
"#,
                archive = archive.display(),
                state = state.display(),
                endpoint = server.endpoint,
                bucket = server.bucket,
                region = server.region,
                ca = server.ca.display(),
                level =
                    std::env::var("REDOVAULT_BENCH_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(root.join("watch.log")).unwrap();
        let child = Command::new(RV)
            .args(["watch", "--config"])
            .arg(&cfg)
            .env("AWS_ACCESS_KEY_ID", &server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let run = Run {
            root: root.to_path_buf(),
            archive,
            child,
        };
        run.wait_for("the watcher to start", Duration::from_secs(30), || {
            state.join("status.json").exists()
        });
        run
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn shipped(&self) -> usize {
        redovault::manifest::read_entries(&self.root.join("state/manifest"))
            .map(|e| e.len())
            .unwrap_or(0)
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !cond() {
            assert!(
                t0.elapsed() < timeout,
                "timed out waiting for {what}; watcher log:\n{}",
                std::fs::read_to_string(self.root.join("watch.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// (detect → upload start, detect → durable) in ms of each shipped log, from the log.
    fn latencies(&self) -> Vec<(f64, f64)> {
        std::fs::read_to_string(self.root.join("watch.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "archived log shipped")
            .filter_map(|v| {
                Some((
                    v["detect_to_upload_start_ms"].as_f64()?,
                    v["detect_to_durable_ms"].as_f64()?,
                ))
            })
            .collect()
    }

    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let s = self.child.wait().unwrap();
        assert!(s.success(), "watcher exit {s}");
        if let Ok(keep) = std::env::var("REDOVAULT_BENCH_LOGS") {
            let name = self
                .root
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            std::fs::create_dir_all(&keep).unwrap();
            std::fs::copy(
                self.root.join("watch.log"),
                Path::new(&keep).join(format!("{name}.log")),
            )
            .unwrap();
        }
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// One phase's figures, as appended to the results file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Figures {
    phase: String,
    name: String,
    secs: f64,
    cpu: f64,
    bytes: u64,
    peak_rss: Option<u64>,
    /// CPU seconds of the S3 server's processes during the run (same cores as the client).
    #[serde(default)]
    server_cpu: Option<f64>,
    /// (detect → upload start, detect → durable) per log, in ms.
    latencies: Vec<(f64, f64)>,
}

impl Figures {
    fn of(phase: &str, r: &Row, peak_rss: Option<u64>, latencies: Vec<(f64, f64)>) -> Figures {
        Figures {
            phase: phase.into(),
            name: r.name.clone(),
            secs: r.secs,
            cpu: r.cpu,
            bytes: r.bytes,
            peak_rss,
            server_cpu: None,
            latencies,
        }
    }

    fn with_server_cpu(mut self, s: f64) -> Figures {
        self.server_cpu = Some(s);
        self
    }

    fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }

    fn print(&self) {
        println!(
            "{:<58} {:>9.2} {:>9.1} {:>13.2} {:>13} {:>14}",
            self.name,
            self.secs,
            self.mbps(),
            self.cpu,
            self.server_cpu
                .map_or("-".to_string(), |s| format!("{s:.2}")),
            self.peak_rss
                .map_or("-".to_string(), |r| format!("{:.1} MiB", mib(r)))
        );
    }
}

fn record(f: &Figures) {
    f.print();
    if let Ok(path) = std::env::var("REDOVAULT_BENCH_RESULTS") {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(out, "{}", serde_json::to_string(f).unwrap()).unwrap();
    }
}

/// Hard-links `src` into `dir` (a new name appearing at once, as ARCn's rename does).
fn arrive(src: &Path, dir: &Path) -> PathBuf {
    let dst = dir.join(src.file_name().unwrap());
    std::fs::hard_link(src, &dst).unwrap();
    dst
}

struct Ctx {
    server: TestServer,
    aws: String,
    files_dir: PathBuf,
    work: tempfile::TempDir,
    run_id: String,
    n: u32,
    size_mib: u64,
}

impl Ctx {
    fn set(&self) -> Vec<PathBuf> {
        let d = self.files_dir.join("set");
        std::fs::create_dir_all(&d).unwrap();
        (0..self.n)
            .map(|i| make_log(&d, 1000 + i, self.size_mib << 20))
            .collect()
    }

    fn target(&self) -> Target {
        Target {
            endpoint: self
                .server
                .endpoint
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            ca: self.server.ca.display().to_string(),
            bucket: self.server.bucket.clone(),
            key: self.server.access_key.clone(),
            secret: self.server.secret_key.clone(),
        }
    }

    fn watcher(&self, name: &str) -> Run {
        Run::start(
            &self.work.path().join(name),
            &self.server,
            &format!("bench-{}/{name}", self.run_id),
        )
    }
}

fn phase_set(c: &Ctx) {
    let files = c.set();
    let bytes = total_bytes(&files);
    let r = c.watcher("set");
    let cpu0 = cpu_of(r.pid());
    let s0 = server_cpu();
    let t0 = Instant::now();
    for f in &files {
        arrive(f, &r.archive);
    }
    r.wait_for("every log shipped", Duration::from_secs(1800), || {
        r.shipped() == files.len()
    });
    let row = Row {
        name: format!("redovault watch ({PARALLEL} at once)"),
        secs: t0.elapsed().as_secs_f64(),
        cpu: cpu_of(r.pid()) - cpu0,
        bytes,
    };
    let s1 = server_cpu();
    let rss = peak_rss(r.pid());
    r.stop();
    record(&Figures::of("set", &row, Some(rss), Vec::new()).with_server_cpu(s1 - s0));
    let t = c.target();
    let s0 = server_cpu();
    let curl_n = run_cmd(
        &format!("curl -T, {PARALLEL} at once"),
        &files,
        PARALLEL,
        |p, i| common::curl(&t, p, &format!("bench-{}/curlN/{i}", c.run_id)),
    );
    let s1 = server_cpu();
    record(&Figures::of("set", &curl_n, None, Vec::new()).with_server_cpu(s1 - s0));
    let curl_signed = run_cmd(
        &format!("curl -T, {PARALLEL} at once, SHA-256 signed"),
        &files,
        PARALLEL,
        |p, i| common::curl_signed(&t, p, &format!("bench-{}/curlS/{i}", c.run_id)),
    );
    let s2 = server_cpu();
    record(&Figures::of("set", &curl_signed, None, Vec::new()).with_server_cpu(s2 - s1));
}

fn phase_reference(c: &Ctx) {
    let files = c.set();
    let t = c.target();
    let curl1 = run_cmd("curl -T, one at a time", &files, 1, |p, i| {
        common::curl(&t, p, &format!("bench-{}/curl1/{i}", c.run_id))
    });
    record(&Figures::of("reference", &curl1, None, Vec::new()));
    let aws = run_cmd("aws s3 cp, one at a time", &files, 1, |p, i| {
        common::aws(&c.aws, &t, p, &format!("bench-{}/aws/{i}", c.run_id))
    });
    record(&Figures::of("reference", &aws, None, Vec::new()));
}

/// Writes `src` into `dir` as ARCn does: under a temporary name, in 1 MiB writes, fsynced, then
/// renamed to its final name.
fn arcn_write(src: &Path, dir: &Path) -> PathBuf {
    use std::io::Read as _;
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let tmp = dir.join(format!("{name}.tmp"));
    let mut r = std::fs::File::open(src).unwrap();
    let mut w = std::fs::File::create(&tmp).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).unwrap();
    }
    w.sync_all().unwrap();
    drop(w);
    let dst = dir.join(name);
    std::fs::rename(&tmp, &dst).unwrap();
    dst
}

fn phase_latency(c: &Ctx) {
    let n = env_num("REDOVAULT_BENCH_LATENCY_FILES", 30) as u32;
    let cold = env_num("REDOVAULT_BENCH_LATENCY_COLD_FILES", 10) as u32;
    let every = env_num("REDOVAULT_BENCH_LATENCY_MS", 1000);
    let d = c.files_dir.join("latency");
    std::fs::create_dir_all(&d).unwrap();
    let files: Vec<PathBuf> = (0..n + cold)
        .map(|i| make_log(&d, 2000 + i, c.size_mib << 20))
        .collect();
    let (arcn, linked) = files.split_at(n as usize);
    for (label, set, how) in [
        ("ARCn-style (tmp, fsync, rename)", arcn, 0u8),
        ("whole file linked in", linked, 1u8),
    ] {
        if set.is_empty() {
            continue;
        }
        let r = c.watcher(if how == 0 { "latency" } else { "latency-cold" });
        let cpu0 = cpu_of(r.pid());
        let t0 = Instant::now();
        for f in set {
            if how == 0 {
                arcn_write(f, &r.archive);
            } else {
                arrive(f, &r.archive);
            }
            std::thread::sleep(Duration::from_millis(every));
        }
        r.wait_for("every log shipped", Duration::from_secs(600), || {
            r.shipped() == set.len()
        });
        let row = Row {
            name: format!("redovault watch, 1 log/{every} ms, {label}"),
            secs: t0.elapsed().as_secs_f64(),
            cpu: cpu_of(r.pid()) - cpu0,
            bytes: total_bytes(set),
        };
        let lat = r.latencies();
        assert_eq!(lat.len(), set.len(), "one latency line per log");
        let rss = peak_rss(r.pid());
        r.stop();
        record(&Figures::of("latency", &row, Some(rss), lat));
    }
}

fn phase_big(c: &Ctx) {
    let gib = env_num("REDOVAULT_BENCH_BIG_GIB", 4);
    let d = c.files_dir.join("big");
    std::fs::create_dir_all(&d).unwrap();
    println!("making a {gib} GiB log");
    let big = make_log(&d, 3000, gib << 30);
    let r = c.watcher("big");
    let cpu0 = cpu_of(r.pid());
    let t0 = Instant::now();
    arrive(&big, &r.archive);
    r.wait_for("the big log shipped", Duration::from_secs(3600), || {
        r.shipped() == 1
    });
    let row = Row {
        name: format!("redovault watch, one {gib} GiB log"),
        secs: t0.elapsed().as_secs_f64(),
        cpu: cpu_of(r.pid()) - cpu0,
        bytes: std::fs::metadata(&big).unwrap().len(),
    };
    let rss = peak_rss(r.pid());
    let lat = r.latencies();
    r.stop();
    record(&Figures::of("big", &row, Some(rss), lat));
}

fn phase_report() {
    let path = std::env::var("REDOVAULT_BENCH_RESULTS").expect("REDOVAULT_BENCH_RESULTS");
    let all: Vec<Figures> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let find = |prefix: &str| all.iter().rev().find(|f| f.name.starts_with(prefix));
    let named = |name: &str| all.iter().rev().find(|f| f.name == name);
    println!();
    println!(
        "{:<58} {:>9} {:>9} {:>13} {:>13} {:>14}",
        "uploader", "seconds", "MB/s", "client CPU s", "server CPU s", "peak RSS"
    );
    for f in &all {
        f.print();
    }
    if let (Some(w), Some(c1), Some(cn), Some(aws)) = (
        find("redovault watch ("),
        find("curl -T, one"),
        named(&format!("curl -T, {PARALLEL} at once")),
        find("aws s3 cp"),
    ) {
        println!(
            "watcher: {:.0}% of curl's throughput {PARALLEL} at once (same server, same run), \
             {:.0}% of curl one at a time; {:.0}% of the aws CLI's CPU",
            100.0 * w.mbps() / cn.mbps(),
            100.0 * w.mbps() / c1.mbps(),
            100.0 * w.cpu / aws.cpu
        );
    }
    if let (Some(w), Some(cs)) = (
        find("redovault watch ("),
        find(&format!("curl -T, {PARALLEL} at once, SHA-256")),
    ) {
        println!(
            "watcher: {:.0}% of the throughput of curl {PARALLEL} at once with the same \
             server-verified SHA-256",
            100.0 * w.mbps() / cs.mbps()
        );
    }
    for l in all.iter().filter(|f| f.phase == "latency") {
        let mut start: Vec<f64> = l.latencies.iter().map(|x| x.0).collect();
        let mut durable: Vec<f64> = l.latencies.iter().map(|x| x.1).collect();
        println!(
            "latency, {} ({} logs): detection -> upload start p50 {:.1} ms, p99 {:.1} ms; \
             detection -> durable manifest entry p50 {:.1} ms, p99 {:.1} ms",
            l.name,
            start.len(),
            percentile(&mut start, 50.0),
            percentile(&mut start, 99.0),
            percentile(&mut durable, 50.0),
            percentile(&mut durable, 99.0)
        );
    }
    println!(
        "goals: >= 90% of curl's throughput; detection -> upload start p99 < 50 ms; peak RSS \
         < 64 MiB (also while shipping a 4 GiB log)"
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let phase = std::env::var("REDOVAULT_BENCH_PHASE").unwrap_or_else(|_| "set".into());
    if phase == "report" {
        return phase_report();
    }
    let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh");
    let server = TestServer::from_env_file(targets.split(',').next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let files_dir = PathBuf::from(
        std::env::var("REDOVAULT_BENCH_DIR").unwrap_or_else(|_| "/tmp/redovault-bench".into()),
    );
    std::fs::create_dir_all(&files_dir).unwrap();
    let c = Ctx {
        server,
        aws: std::env::var("REDOVAULT_BENCH_AWS").unwrap_or_else(|_| "aws".into()),
        // Beside the logs: hard links need the same filesystem.
        work: tempfile::tempdir_in(&files_dir).unwrap(),
        files_dir,
        run_id: format!("{:08x}", rand::random::<u32>()),
        n: env_num("REDOVAULT_BENCH_FILES", 40) as u32,
        size_mib: env_num("REDOVAULT_BENCH_MIB", 50),
    };
    println!("phase {phase}: {} logs of {} MiB", c.n, c.size_mib);
    match phase.as_str() {
        "set" => phase_set(&c),
        "reference" => phase_reference(&c),
        "latency" => phase_latency(&c),
        "big" => phase_big(&c),
        other => panic!("REDOVAULT_BENCH_PHASE {other:?}: set, reference, latency, big, report"),
    }
}
