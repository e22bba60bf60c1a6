//! Watcher benchmark: the `redovault watch` daemon (the release binary, a child process)
//! shipping archived redo logs to the real Ceph radosgw, beside `curl -T` and `aws s3 cp` on
//! the same files and server in the same run.
//!
//! Phases (each watcher run has its own state directory and key prefix):
//! 1. **throughput**: `REDOVAULT_BENCH_FILES` (40) logs of `REDOVAULT_BENCH_MIB` (50) MiB
//!    appear at once (renamed into the archive directory, as ARCn does); time until the last
//!    manifest entry is durable; the watcher's CPU and peak RSS (VmHWM);
//! 2. **latency**: `REDOVAULT_BENCH_LATENCY_FILES` (30) more logs arrive one every
//!    `REDOVAULT_BENCH_LATENCY_MS` (1000) ms; detection → upload start and detection → durable
//!    manifest entry, p50 and p99, from the watcher's own log lines;
//! 3. **big log**: one log of `REDOVAULT_BENCH_BIG_GIB` (4) GiB (0 skips it): time, CPU, peak
//!    RSS;
//! 4. the phase-1 files again with `curl -T` (one at a time, and as many at once as the
//!    watcher's parallel uploads) and `aws s3 cp`.
//!
//! The logs are valid archived logs built from the real Oracle 23ai log in `fixtures/`: its
//! record blocks repeated, renumbered, stamped with the log's sequence and re-sealed with
//! their checksums (as the parser benchmark does), so the watcher's validation does its full
//! work. Run it with `deploy/bench.sh watcher`. Environment: `REDOVAULT_TEST_S3_TARGETS` (an
//! `env.sh` of `deploy/s3/server.sh`), `REDOVAULT_BENCH_AWS` (path of `aws`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redovault::store::s3::testserver::TestServer;
use redovault_redo::block::CHECKSUM_AT;
use redovault_redo::checksum;
use redovault_redo::header::FILE_HEADER_CHECKSUM_AT;

#[path = "common.rs"]
mod common;
use common::{Row, Target, cpu_of, peak_rss, run_cmd, total_bytes};

const BS: usize = 512;
const RV: &str = env!("CARGO_BIN_EXE_redovault");
const PARALLEL: usize = 4;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes a valid archived log of at least `bytes` bytes with sequence `seq` into `dir`
/// (streamed: never held in memory).
fn make_log(dir: &Path, seq: u32, bytes: u64) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/oracle-real/free23-le-512/arch1_15_1224959854.dbf");
    let f = std::fs::read(&fixture).unwrap();
    let body = &f[2 * BS..598 * BS];
    let copies = bytes.div_ceil(body.len() as u64) as usize;
    let blocks = 2 + copies * 596;
    let path = dir.join(format!("arch1_{seq}_1224959854.dbf"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let mut head = f[..2 * BS].to_vec();
    head[24..28].copy_from_slice(&((blocks - 1) as u32).to_le_bytes());
    checksum::set_checksum(&mut head[..BS], FILE_HEADER_CHECKSUM_AT);
    head[BS + 8..BS + 12].copy_from_slice(&seq.to_le_bytes());
    head[BS + 156..BS + 160].copy_from_slice(&(blocks as u32).to_le_bytes());
    checksum::set_checksum(&mut head[BS..2 * BS], CHECKSUM_AT);
    out.write_all(&head).unwrap();
    let mut b = [0u8; BS];
    let mut n = 2u32;
    for _ in 0..copies {
        for src in body.chunks_exact(BS) {
            b.copy_from_slice(src);
            b[4..8].copy_from_slice(&n.to_le_bytes());
            b[8..12].copy_from_slice(&seq.to_le_bytes());
            checksum::set_checksum(&mut b, CHECKSUM_AT);
            out.write_all(&b).unwrap();
            n += 1;
        }
    }
    out.flush().unwrap();
    path
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
log_level = "info"
"#,
                archive = archive.display(),
                state = state.display(),
                endpoint = server.endpoint,
                bucket = server.bucket,
                region = server.region,
                ca = server.ca.display(),
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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh");
    let server = TestServer::from_env_file(targets.split(',').next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let aws = std::env::var("REDOVAULT_BENCH_AWS").expect("REDOVAULT_BENCH_AWS: path of aws");
    let n = env_num("REDOVAULT_BENCH_FILES", 40) as u32;
    let size_mib = env_num("REDOVAULT_BENCH_MIB", 50);
    let n_lat = env_num("REDOVAULT_BENCH_LATENCY_FILES", 30) as u32;
    let lat_ms = env_num("REDOVAULT_BENCH_LATENCY_MS", 1000);
    let big_gib = env_num("REDOVAULT_BENCH_BIG_GIB", 4);
    let run_id = format!("{:08x}", rand::random::<u32>());
    let work = tempfile::tempdir_in(
        std::env::var("REDOVAULT_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()),
    )
    .unwrap();
    let staging = work.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();

    println!("generating {n} + {n_lat} logs of {size_mib} MiB");
    let logs: Vec<PathBuf> = (0..n)
        .map(|i| make_log(&staging, 1000 + i, size_mib << 20))
        .collect();
    let lat_logs: Vec<PathBuf> = (0..n_lat)
        .map(|i| make_log(&staging, 2000 + i, size_mib << 20))
        .collect();
    let bytes = total_bytes(&logs);

    // 1. Throughput.
    let r = Run::start(
        &work.path().join("w1"),
        &server,
        &format!("bench-{run_id}/w1"),
    );
    let cpu0 = cpu_of(r.pid());
    let t0 = Instant::now();
    let mut shipped_files = Vec::new();
    for l in &logs {
        let dst = r.archive.join(l.file_name().unwrap());
        std::fs::rename(l, &dst).unwrap();
        shipped_files.push(dst);
    }
    r.wait_for("every log shipped", Duration::from_secs(1800), || {
        r.shipped() == n as usize
    });
    let secs = t0.elapsed().as_secs_f64();
    let watcher_row = Row {
        name: format!("redovault watch ({PARALLEL} at once)"),
        secs,
        cpu: cpu_of(r.pid()) - cpu0,
        bytes,
    };
    let rss_throughput = peak_rss(r.pid());
    r.stop();

    // 2. Latency.
    let r = Run::start(
        &work.path().join("w2"),
        &server,
        &format!("bench-{run_id}/w2"),
    );
    for l in &lat_logs {
        std::fs::rename(l, r.archive.join(l.file_name().unwrap())).unwrap();
        std::thread::sleep(Duration::from_millis(lat_ms));
    }
    r.wait_for("every log shipped", Duration::from_secs(600), || {
        r.shipped() == n_lat as usize
    });
    let lat = r.latencies();
    assert_eq!(lat.len(), n_lat as usize, "one latency line per log");
    let rss_latency = peak_rss(r.pid());
    r.stop();
    let mut to_start: Vec<f64> = lat.iter().map(|l| l.0).collect();
    let mut to_durable: Vec<f64> = lat.iter().map(|l| l.1).collect();

    // 3. One big log.
    let big = (big_gib > 0).then(|| {
        println!("generating a {big_gib} GiB log");
        let big = make_log(&staging, 3000, big_gib << 30);
        let big_bytes = std::fs::metadata(&big).unwrap().len();
        let r = Run::start(
            &work.path().join("w3"),
            &server,
            &format!("bench-{run_id}/w3"),
        );
        let cpu0 = cpu_of(r.pid());
        let t0 = Instant::now();
        let dst = r.archive.join(big.file_name().unwrap());
        std::fs::rename(&big, &dst).unwrap();
        r.wait_for("the big log shipped", Duration::from_secs(3600), || {
            r.shipped() == 1
        });
        let row = Row {
            name: format!("redovault watch, one {big_gib} GiB log"),
            secs: t0.elapsed().as_secs_f64(),
            cpu: cpu_of(r.pid()) - cpu0,
            bytes: big_bytes,
        };
        let rss = peak_rss(r.pid());
        let lat = r.latencies();
        r.stop();
        std::fs::remove_file(&dst).unwrap();
        (row, rss, lat)
    });

    // 4. The reference uploaders on the phase-1 files.
    let target = Target {
        endpoint: server.endpoint.as_str().trim_end_matches('/').to_string(),
        ca: server.ca.display().to_string(),
        bucket: server.bucket.clone(),
        key: server.access_key.clone(),
        secret: server.secret_key.clone(),
    };
    let curl1 = run_cmd("curl -T, one at a time", &shipped_files, 1, |p, i| {
        common::curl(&target, p, &format!("bench-{run_id}/curl1/{i}"))
    });
    let curl_n = run_cmd(
        &format!("curl -T, {PARALLEL} at once"),
        &shipped_files,
        PARALLEL,
        |p, i| common::curl(&target, p, &format!("bench-{run_id}/curlN/{i}")),
    );
    let aws_row = run_cmd("aws s3 cp, one at a time", &shipped_files, 1, |p, i| {
        common::aws(&aws, &target, p, &format!("bench-{run_id}/aws/{i}"))
    });

    println!();
    println!(
        "{n} logs x {size_mib} MiB to {} ({}), HTTPS",
        server.endpoint, server.bucket
    );
    println!(
        "{:<44} {:>9} {:>9} {:>13}",
        "uploader", "seconds", "MB/s", "client CPU s"
    );
    let rows = [&watcher_row, &curl1, &curl_n, &aws_row];
    for r in rows {
        println!(
            "{:<44} {:>9.2} {:>9.1} {:>13.2}",
            r.name,
            r.secs,
            r.mbps(),
            r.cpu
        );
    }
    let best_curl = curl1.mbps().max(curl_n.mbps());
    println!(
        "watcher: {:.0}% of curl's best throughput ({:.0}% of one-at-a-time, {:.0}% of \
         {PARALLEL}-at-once), {:.0}% of the aws CLI's CPU; peak RSS {:.1} MiB",
        100.0 * watcher_row.mbps() / best_curl,
        100.0 * watcher_row.mbps() / curl1.mbps(),
        100.0 * watcher_row.mbps() / curl_n.mbps(),
        100.0 * watcher_row.cpu / aws_row.cpu,
        mib(rss_throughput)
    );
    println!(
        "latency ({n_lat} logs of {size_mib} MiB, one every {lat_ms} ms): detection -> upload \
         start p50 {:.1} ms, p99 {:.1} ms; detection -> durable manifest entry p50 {:.1} ms, \
         p99 {:.1} ms; peak RSS {:.1} MiB",
        percentile(&mut to_start, 50.0),
        percentile(&mut to_start, 99.0),
        percentile(&mut to_durable, 50.0),
        percentile(&mut to_durable, 99.0),
        mib(rss_latency)
    );
    if let Some((row, rss, lat)) = big {
        println!(
            "{}: {:.2} s, {:.1} MB/s, client CPU {:.2} s, peak RSS {:.1} MiB, detection -> \
             upload start {:.0} ms",
            row.name,
            row.secs,
            row.mbps(),
            row.cpu,
            mib(rss),
            lat.first().map_or(f64::NAN, |l| l.0)
        );
    }
    println!(
        "goals: >= 90% of curl's throughput; detection -> upload start p99 < 50 ms; peak RSS < \
         64 MiB"
    );
}
