//! The collector's `[worm]` on a real S3 server, end to end with the real binaries: what it
//! costs and how soon a commit is in WORM.
//!
//! A simulated database (in this process) writes a live online log at
//! `REDOVAULT_BENCH_RATE_MIB` MiB/s (default 10) in real time, 64 MiB logs (a switch every
//! ~6.4 s), on `/dev/shm` as on its own host; the extractor (`redovault-extractor`, release
//! build) ships it over TLS 1.3 on 127.0.0.1 to the collector (`redovault-collector`) storing
//! on the real disk. Rounds alternate WITH and WITHOUT `[worm]` (default 4 rounds of 20 s:
//! with, without, with, without), each with a fresh collector store, a fresh database (its own
//! database id, so its stream is new in WORM) and fresh processes; the two modes differ only
//! by the `[worm]` section. `[worm]`: the S3 server of `REDOVAULT_TEST_S3_TARGETS` (an
//! `env.sh` of `deploy/s3/server.sh`, Ceph), its drill bucket and prefix with the collector's
//! own put-only keys (as `tests/e2e/worm_stream.rs`), `retention = "bucket-default"`,
//! `seal_interval = "1s"` (`REDOVAULT_BENCH_SEAL_INTERVAL`), every other key at its default.
//!
//! Per round, over the measured window (after `REDOVAULT_BENCH_WARMUP_SECONDS`, 3, until the
//! database stops):
//! - **commit → Ack**, per commit: from the moment the database has written the LWN holding it
//!   (and its journal line; wall clock of this process) to the extractor's `ack_received`
//!   latency event ([`redovault::wire::latency`], in the extractor's JSON log with its
//!   microsecond wall-clock timestamp) of the first Ack whose durable end covers the commit's
//!   chunk (the first `tail_chunk` whose last commit is at or after it), as
//!   `ship_latency.rs` measures it in one process;
//! - **commit → in WORM**, per commit: from the same moment to the collector's
//!   `worm_confirmed` event (`redovault::latency::worm`, emitted by the uploader when the
//!   store confirmed a piece: the PUT returned and the HEAD after it matched) of the first piece
//!   whose end covers the commit's chunk; and **Ack → in WORM** (the uploader's share: the
//!   two above subtracted, per commit). Beside them the collector's own histogram
//!   `redovault_collector_worm_latency_seconds` (per piece: its first durable byte → in WORM;
//!   bucket bounds only);
//! - **S3 requests**: every request the radosgw access log (`beast:` lines of
//!   `<state>/ceph/log/client.rgw.a.log`) shows to the drill bucket whose start time falls in the
//!   window, by method and by what it touched (pieces, chain segments, bucket), scaled to an
//!   hour; the collector's piece and chain-seal counters over the same window;
//! - **CPU**: user + system seconds of the collector (`/proc/<pid>/stat`) over the window,
//!   divided by the MB of redo it stored in the window (`redovault_collector_stored_bytes_total`);
//!   the extractor's and the S3 server's (radosgw, ceph-osd, ceph-mon of this server, by their
//!   pid files) the same way.
//!
//! With `REDOVAULT_BENCH_HOPS=1` the collector also logs its own latency events (in both
//! modes: thousands of lines a second, which costs it CPU and moves the Ack figures) and the
//! bench prints, per mode, where the time of commit → Ack goes, hop by hop, as
//! `ship_latency.rs` does: p50 / p99 per hop and the mean of each hop over the slowest 1 %.
//!
//! With `REDOVAULT_BENCH_WORM_LOCAL=1` (a diagnosis, not the figure) `[worm]` is a local
//! directory beside the database on `/dev/shm` (`kind = "local"`: the same reading, sealing
//! and chain, no HTTP, no TLS, no S3 server sharing the cores, fsync free on tmpfs).
//!
//! With `REDOVAULT_BENCH_NICE_SERVER=1` (a diagnosis) every thread of this S3 server's
//! daemons is reniced to 19 first: on the shared cores the server then only takes what the
//! pipeline leaves, about as if it ran on another machine.
//!
//! With `REDOVAULT_BENCH_BASELINE_COLLECTOR=PATH` a third mode joins the rotation (with,
//! without, with the collector binary at PATH): another build of the collector, compared with
//! this one in the same run.
//!
//! Run: `deploy/bench.sh worm` (a fresh Ceph). `REDOVAULT_BENCH_ROUNDS` (4),
//! `REDOVAULT_BENCH_SECONDS` (20 per round), `REDOVAULT_BENCH_RATE_MIB` (10),
//! `REDOVAULT_BENCH_LOG_MIB` (64), `REDOVAULT_BENCH_SHIP_DIR` (collector store; default
//! `<target>/bench-worm-ship`), `REDOVAULT_BENCH_DB_DIR` (database; default `/dev/shm`).

#[path = "common.rs"]
mod common;

use common::{env_u64, free_port, load_average, pct, scrape, sorted};
use redovault_redo::position::DbId;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::crypto::tls;
use redovault::wire::StreamPos;
use redovault_drill::simulate::{Rate, SimConfig, Simulator};
use redovault_drill::testserver::{DrillBucket, TestServer};
use redovault_redo::LogSeq;

/// Microseconds since the Unix epoch, now.
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The value of the sample `key` (name and labels exactly) in a scrape.
fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|r| r.trim().parse().ok())
    })
}

/// p50 and p99 upper bounds (bucket bounds) of a histogram in a scrape.
fn histogram_quantiles(text: &str, name: &str) -> Option<(f64, f64, f64)> {
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
    Some((q(0.5), q(0.99), total))
}

fn spawn(bin: &Path, cfg: &Path, log: &Path, envs: &[(&str, &str)]) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let mut c = Command::new(bin);
    c.arg("--config")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(out));
    for (k, v) in envs {
        c.env(k, v);
    }
    c.spawn().expect("spawn")
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

/// CPU seconds of the S3 server's daemons (this server's, by the pid files of its state).
fn server_cpu(run_dir: &Path) -> f64 {
    let Ok(dir) = std::fs::read_dir(run_dir) else {
        return f64::NAN;
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
        .map(common::cpu_of)
        .sum()
}

/// Renices every thread of the S3 server's daemons (by the pid files of its state) to 19;
/// how many.
fn nice_server(run_dir: &Path) -> usize {
    let pids: Vec<String> = std::fs::read_dir(run_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
                .filter_map(|e| Some(std::fs::read_to_string(e.path()).ok()?.trim().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for t in tasks.filter_map(Result::ok) {
            let ok = Command::new("renice")
                .args(["-n", "19", "-p"])
                .arg(t.file_name())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            n += usize::from(ok);
        }
    }
    n
}

/// A latency event read back from a JSON log: stage, end position, last commit, when (µs).
struct Event {
    stage: String,
    pos: StreamPos,
    scn: Option<u64>,
    at: i64,
}

/// The latency events of a JSON log (`redovault::latency*` targets).
fn events(log: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.contains("\"stage\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let (Some(stage), Some(seq), Some(offset), Some(ts)) = (
            v["stage"].as_str(),
            v["seq"].as_u64(),
            v["offset"].as_u64(),
            v["timestamp"].as_str(),
        ) else {
            continue;
        };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(ts) else {
            continue;
        };
        out.push(Event {
            stage: stage.to_string(),
            pos: StreamPos {
                seq: LogSeq(seq as u32),
                offset,
            },
            scn: v["scn"].as_u64(),
            at: at.timestamp_micros(),
        });
    }
    out
}

/// Sorted by position, each time replaced by the earliest time of any at or after that
/// position: the moment something covering it happened.
fn earliest_from(mut v: Vec<(StreamPos, i64)>) -> Vec<(StreamPos, i64)> {
    v.sort_by_key(|a| a.0);
    let mut min = i64::MAX;
    for a in v.iter_mut().rev() {
        min = min.min(a.1);
        a.1 = min;
    }
    v
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

/// Per commit (SCN, written at, µs) in `[from, to]`: the time of each hop (ms) and the
/// total, from both processes' latency events (as `ship_latency.rs`: a stage before the
/// Ack's counts at the commit's chunk's end, an Ack stage at the first Ack covering it).
fn hops(ev: &[Event], commits: &[(u64, i64)], from: i64, to: i64) -> Vec<Vec<f64>> {
    let ack_stages = 8usize;
    let mut first: std::collections::HashMap<(usize, StreamPos), i64> = Default::default();
    let mut chunks: Vec<(StreamPos, u64)> = Vec::new();
    let mut acks: [Vec<(StreamPos, i64)>; 2] = [Vec::new(), Vec::new()];
    for e in ev {
        let Some(stage) = STAGES.iter().position(|s| *s == e.stage) else {
            continue;
        };
        if stage == 0
            && let Some(scn) = e.scn
        {
            chunks.push((e.pos, scn));
        }
        if stage >= ack_stages {
            acks[stage - ack_stages].push((e.pos, e.at));
        } else {
            let t = first.entry((stage, e.pos)).or_insert(e.at);
            *t = (*t).min(e.at);
        }
    }
    chunks.sort_by_key(|c| c.0);
    let acks = acks.map(earliest_from);
    let mut rows = Vec::new();
    let mut ci = 0usize;
    for &(scn, written) in commits {
        while chunks.get(ci).is_some_and(|c| c.1 < scn) {
            ci += 1;
        }
        let Some(&(end, _)) = chunks.get(ci) else {
            break;
        };
        if written < from || written > to {
            continue;
        }
        let mut at = vec![written];
        at.extend((0..ack_stages).map_while(|s| first.get(&(s, end)).copied()));
        at.extend(
            acks.iter()
                .map_while(|v| v.get(v.partition_point(|a| a.0 < end)).map(|a| a.1)),
        );
        if at.len() != STAGES.len() + 1 {
            continue;
        }
        let ms = |a: i64, b: i64| (b - a) as f64 / 1000.0;
        let mut row: Vec<f64> = at.windows(2).map(|w| ms(w[0], w[1])).collect();
        row.push(ms(at[0], at[at.len() - 1]));
        rows.push(row);
    }
    rows
}

fn print_hops(title: &str, rows: &[Vec<f64>]) {
    if rows.is_empty() {
        println!("{title}: no commit followed through every stage");
        return;
    }
    let total = STAGES.len();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a][total].total_cmp(&rows[b][total]));
    let slow = &order[rows.len() * 99 / 100..];
    println!(
        "{title}: where commit -> Ack goes ({} commits; ms; slowest 1 % = {}):",
        rows.len(),
        slow.len()
    );
    println!(
        "  {:<34} {:>8} {:>8} {:>9} {:>12}",
        "hop", "p50", "p99", "max", "slowest 1 %"
    );
    for j in 0..=total {
        let col = sorted(rows.iter().map(|r| r[j]).collect());
        let mean = slow.iter().map(|&i| rows[i][j]).sum::<f64>() / slow.len() as f64;
        let hop = if j == total {
            "total: commit written -> Ack".to_string()
        } else if j == 0 {
            format!("commit written -> {}", STAGES[0])
        } else {
            format!("{} -> {}", STAGES[j - 1], STAGES[j])
        };
        println!(
            "  {hop:<34} {:>8.3} {:>8.3} {:>9.3} {mean:>12.3}",
            pct(&col, 0.5),
            pct(&col, 0.99),
            col.last().copied().unwrap_or(f64::NAN)
        );
    }
}

/// WARN and ERROR lines of a JSON log (the first few, and how many).
fn problems(log: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let bad: Vec<String> = text
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .map(str::to_string)
        .collect();
    (bad.len(), bad.into_iter().take(3).collect())
}

/// Requests to `bucket` in radosgw's access log whose start is in `[from, to]` (µs), by
/// "METHOD what" (what: piece, chain segment, bucket), plus the HTTP statuses seen.
fn s3_requests(
    rgw_log: &Path,
    bucket: &str,
    from: i64,
    to: i64,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let text = std::fs::read_to_string(rgw_log).unwrap_or_default();
    let mut kinds = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    for line in text.lines() {
        // beast: 0x7f..: 127.0.0.1 - USER [06/Dec/2026:06:45:43.152 +0000] "GET /b?x HTTP/1.1" 200 ...
        let Some(rest) = line.split_once("beast: ").map(|x| x.1) else {
            continue;
        };
        let (Some(date), Some(req)) = (
            rest.split_once('[').and_then(|x| x.1.split_once(']')),
            rest.split_once('"').and_then(|x| x.1.split_once('"')),
        ) else {
            continue;
        };
        let Ok(at) = chrono::DateTime::parse_from_str(date.0, "%d/%b/%Y:%H:%M:%S%.3f %z") else {
            continue;
        };
        let at = at.timestamp_micros();
        if at < from || at > to {
            continue;
        }
        let mut parts = req.0.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(after) = path.strip_prefix('/').and_then(|p| p.strip_prefix(bucket)) else {
            continue;
        };
        let status = req.1.split_whitespace().next().unwrap_or("?").to_string();
        let what = if after.contains("/pieces/") {
            "piece"
        } else if after.contains("/manifest/") {
            "chain segment"
        } else if after.starts_with('?') || after.is_empty() || after == "/" {
            if method == "GET" && (after.contains("list-type") || after.contains("prefix=")) {
                "LIST"
            } else {
                "bucket"
            }
        } else {
            "other key"
        };
        let kind = if what == "LIST" {
            "LIST".to_string()
        } else {
            format!("{method} {what}")
        };
        *kinds.entry(kind).or_insert(0) += 1;
        *statuses.entry(format!("{method} {status}")).or_insert(0) += 1;
    }
    (kinds, statuses)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    With,
    Without,
    /// With `[worm]`, the collector binary of `REDOVAULT_BENCH_BASELINE_COLLECTOR`.
    WithBaseline,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::With, Mode::Without, Mode::WithBaseline];

    fn name(self) -> &'static str {
        match self {
            Mode::With => "with [worm]",
            Mode::Without => "without [worm]",
            Mode::WithBaseline => "with [worm], baseline",
        }
    }

    fn worm(self) -> bool {
        self != Mode::Without
    }
}

/// What one round measured.
struct Round {
    mode: Mode,
    load_before: String,
    load_after: String,
    window_s: f64,
    commits: usize,
    switches: u64,
    /// commit → Ack, ms, per commit in the window.
    ack: Vec<f64>,
    /// commit → in WORM, ms (with [worm]).
    worm: Vec<f64>,
    /// Ack → in WORM, ms (with [worm]).
    ack_to_worm: Vec<f64>,
    /// Commits in the window never acknowledged / never seen in WORM.
    unacked: usize,
    not_in_worm: usize,
    mb: f64,
    col_cpu: f64,
    ext_cpu: f64,
    srv_cpu: f64,
    requests: BTreeMap<String, u64>,
    statuses: BTreeMap<String, u64>,
    pieces: f64,
    seals: f64,
    put_errors: f64,
    histogram: Option<(f64, f64, f64)>,
    /// Mean seconds of a piece's put (HEAD, PUT, HEAD) and of durable -> in WORM per piece.
    put_mean: f64,
    worm_mean: f64,
    problems: usize,
    /// Per commit, hop by hop (with `REDOVAULT_BENCH_HOPS=1`).
    hops: Vec<Vec<f64>>,
    /// With [worm]: the share of all commits, and of the 1 % slowest to be acknowledged,
    /// written while a piece was being uploaded (in the mean put time + 50 ms before a
    /// piece was confirmed); that window in ms.
    during_upload: Option<(f64, f64, f64)>,
}

impl Round {
    fn requests_total(&self) -> u64 {
        self.requests.values().sum()
    }
    fn per_hour(&self, n: f64) -> f64 {
        n * 3600.0 / self.window_s
    }
}

/// Everything the rounds share.
struct Setup {
    root: PathBuf,
    db_root: PathBuf,
    bins: (PathBuf, PathBuf),
    pki: tls::PkiPaths,
    keys: PathBuf,
    recovery_pub: PathBuf,
    server: TestServer,
    drill: DrillBucket,
    rgw_log: PathBuf,
    server_run: PathBuf,
    seconds: u64,
    warmup: u64,
    rate_mib: u64,
    log_mib: u64,
    seal_interval: String,
    hops: bool,
    worm_local: bool,
    baseline: Option<PathBuf>,
}

/// One round: fresh database, collector (with or without [worm]) and extractor.
fn round(s: &Setup, i: usize, mode: Mode) -> Round {
    let dir = s.root.join(format!("round{i}"));
    let db = s.db_root.join(format!("round{i}"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&db);
    std::fs::create_dir_all(&dir).unwrap();
    let load_before = load_average();

    let mut sim = SimConfig::new(&db);
    sim.log_size = s.log_mib << 20;
    sim.groups = 3;
    sim.rate = Rate::BytesPerSec(s.rate_mib << 20);
    sim.realtime = true;
    // A database id of its own: its stream is new in WORM (earlier rounds stay in theirs).
    sim.db_id = DbId(rand::random::<u32>() | 1);
    let stream = format!("db{}-rl{}-t1", sim.db_id, sim.resetlogs_id());
    let simulator = Simulator::start(sim.clone()).expect("simulator");

    let (port, cport, eport) = (free_port(), free_port(), free_port());
    let worm = match mode {
        Mode::Without => String::new(),
        _ if s.worm_local => {
            let d = db.join("worm");
            std::fs::create_dir_all(&d).unwrap();
            format!(
                "[worm]\nkind = \"local\"\ndir = \"{}\"\nrecovery_public_key = \"{}\"\n\
                 seal_interval = \"{}\"\n",
                d.display(),
                s.recovery_pub.display(),
                s.seal_interval
            )
        }
        Mode::With | Mode::WithBaseline => format!(
            "[worm]\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"{}\"\nca_file = \"{}\"\n\
             region = \"{}\"\npath_style = true\nretention = \"bucket-default\"\n\
             recovery_public_key = \"{}\"\nseal_interval = \"{}\"\n",
            s.server.endpoint,
            s.drill.bucket,
            s.drill.prefix,
            s.server.ca.display(),
            s.server.region,
            s.recovery_pub.display(),
            s.seal_interval
        ),
    };
    let ccfg = dir.join("collector.toml");
    std::fs::write(
        &ccfg,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n\
             [tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\
             [store]\ndir = \"{}\"\nkey_file = \"{}\"\n\
             [telemetry]\nlog_format = \"json\"\nlog_level = \"warn,{trace}=trace\"\n\
             metrics_listen = \"127.0.0.1:{cport}\"\n{worm}",
            s.pki.server_cert.display(),
            s.pki.server_key.display(),
            s.pki.ca.display(),
            dir.join("store").display(),
            s.keys.display(),
            trace = if s.hops {
                redovault::wire::latency::TARGET
            } else {
                redovault::wire::latency::WORM_TARGET
            },
        ),
    )
    .unwrap();
    let groups: String = (1..=sim.groups)
        .map(|g| {
            format!(
                "[[online.group]]\nmembers = [\"{}\"]\n",
                db.join(format!("online/redo_t1_g{g}.log")).display()
            )
        })
        .collect();
    let ecfg = db.join("extractor.toml");
    std::fs::write(
        &ecfg,
        format!(
            "[online]\n{groups}[archive]\ndirs = [\"{}\"]\n[state]\ndir = \"{}\"\n\
             [collector]\naddress = \"127.0.0.1:{port}\"\nserver_name = \"localhost\"\n\
             extractor_id = \"redovault-extractor\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
             [telemetry]\nlog_format = \"json\"\nlog_level = \"warn,redovault::latency=trace\"\n\
             metrics_listen = \"127.0.0.1:{eport}\"\n",
            db.join("archive").display(),
            db.join("extractor-state").display(),
            s.pki.ca.display(),
            s.pki.client_cert.display(),
            s.pki.client_key.display()
        ),
    )
    .unwrap();

    let clog = dir.join("collector.log");
    // The extractor's log (thousands of latency events a second) with the database, on its
    // file system: not on the collector's disk.
    let elog = db.join("extractor.log");
    let collector = spawn(
        match (mode, &s.baseline) {
            (Mode::WithBaseline, Some(b)) => b,
            _ => &s.bins.1,
        },
        &ccfg,
        &clog,
        &[
            ("AWS_ACCESS_KEY_ID", s.drill.collector.access_key.as_str()),
            (
                "AWS_SECRET_ACCESS_KEY",
                s.drill.collector.secret_key.as_str(),
            ),
        ],
    );
    let caddr = SocketAddr::from(([127, 0, 0, 1], cport));
    let t = Instant::now();
    while scrape(caddr).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "collector did not start; see {}",
            clog.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let extractor = spawn(&s.bins.0, &ecfg, &elog, &[]);

    // The database on its own thread; each commit (SCN, when its LWN was written, µs).
    let stop_db = Arc::new(AtomicBool::new(false));
    let (db_thread, commit_rx) =
        common::run_database(simulator, db.join("journal.jsonl"), stop_db.clone(), now_us);

    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(s.warmup));
    let snap = |pid_c: u32, pid_e: u32| {
        (
            now_us(),
            common::cpu_of(pid_c),
            common::cpu_of(pid_e),
            server_cpu(&s.server_run),
            scrape(caddr).unwrap_or_default(),
        )
    };
    let a = snap(collector.id(), extractor.id());
    std::thread::sleep(Duration::from_secs(s.seconds).saturating_sub(start.elapsed()));
    let b = snap(collector.id(), extractor.id());
    stop_db.store(true, Ordering::Relaxed);
    let summary = db_thread.join().expect("db thread");
    let commits: Vec<(u64, i64)> = commit_rx.try_iter().map(|(_, s, t)| (s, t)).collect();
    let last_scn = commits.last().map_or(0, |c| c.0);

    // Everything acknowledged (and with [worm], in WORM) before the processes stop.
    let durable_key = format!("redovault_collector_durable_scn{{stream=\"{stream}\"}}");
    let worm_key = format!("redovault_collector_worm_scn{{stream=\"{stream}\"}}");
    let t = Instant::now();
    loop {
        let text = scrape(caddr).unwrap_or_default();
        let durable = sample(&text, &durable_key).unwrap_or(0.0) >= last_scn as f64;
        let in_worm = !mode.worm() || sample(&text, &worm_key).unwrap_or(0.0) >= last_scn as f64;
        if durable && in_worm {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            println!("  round {i}: not everything reached the collector / WORM within 60 s");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let final_text = scrape(caddr).unwrap_or_default();
    stop(extractor);
    stop(collector);
    let load_after = load_average();
    // radosgw writes its log from a thread of its own: let the window's lines reach the file.
    std::thread::sleep(Duration::from_secs(2));

    // Per commit: its chunk (the first tail chunk whose last commit is at or after it), the
    // first Ack and the first WORM piece whose end covers that chunk.
    let ev = events(&elog);
    let chunks: Vec<(StreamPos, u64)> = ev
        .iter()
        .filter(|e| e.stage == "tail_chunk")
        .filter_map(|e| Some((e.pos, e.scn?)))
        .collect();
    let acks: Vec<(StreamPos, i64)> = ev
        .iter()
        .filter(|e| e.stage == "ack_received")
        .map(|e| (e.pos, e.at))
        .collect();
    let cev = events(&clog);
    let pieces: Vec<(StreamPos, i64)> = cev
        .iter()
        .filter(|e| e.stage == "worm_confirmed")
        .map(|e| (e.pos, e.at))
        .collect();
    let (acks, pieces) = (earliest_from(acks), earliest_from(pieces));
    let all_hops = if s.hops {
        let mut both = ev;
        both.extend(cev);
        hops(&both, &commits, a.0, b.0)
    } else {
        Vec::new()
    };
    let first_covering = |v: &[(StreamPos, i64)], end: StreamPos| {
        v.get(v.partition_point(|a| a.0 < end)).map(|a| a.1)
    };
    let (from, to) = (a.0, b.0);
    let mut r = Round {
        mode,
        load_before,
        load_after,
        window_s: (to - from) as f64 / 1e6,
        commits: 0,
        switches: summary.switches,
        ack: Vec::new(),
        worm: Vec::new(),
        ack_to_worm: Vec::new(),
        unacked: 0,
        not_in_worm: 0,
        mb: 0.0,
        col_cpu: b.1 - a.1,
        ext_cpu: b.2 - a.2,
        srv_cpu: b.3 - a.3,
        requests: BTreeMap::new(),
        statuses: BTreeMap::new(),
        pieces: 0.0,
        seals: 0.0,
        put_errors: 0.0,
        histogram: None,
        put_mean: f64::NAN,
        worm_mean: f64::NAN,
        problems: 0,
        hops: Vec::new(),
        during_upload: None,
    };
    let mut acked_at: Vec<(i64, f64)> = Vec::new();
    let confirms = sorted(pieces.iter().map(|p| p.1 as f64).collect());
    let mut ci = 0usize;
    for &(scn, written) in &commits {
        while chunks.get(ci).is_some_and(|c| c.1 < scn) {
            ci += 1;
        }
        if written < from || written > to {
            continue;
        }
        r.commits += 1;
        let Some(&(end, _)) = chunks.get(ci) else {
            r.unacked += 1;
            r.not_in_worm += 1;
            continue;
        };
        let ms = |t: i64| (t - written) as f64 / 1000.0;
        let ack = first_covering(&acks, end);
        match ack {
            Some(t) => {
                r.ack.push(ms(t));
                acked_at.push((written, ms(t)));
            }
            None => r.unacked += 1,
        }
        if mode.worm() {
            match first_covering(&pieces, end) {
                Some(t) => {
                    r.worm.push(ms(t));
                    if let Some(at) = ack {
                        r.ack_to_worm.push((t - at) as f64 / 1000.0);
                    }
                }
                None => r.not_in_worm += 1,
            }
        }
    }
    let bytes_key = format!("redovault_collector_stored_bytes_total{{stream=\"{stream}\"}}");
    let delta = |key: &str| sample(&b.4, key).unwrap_or(0.0) - sample(&a.4, key).unwrap_or(0.0);
    r.mb = delta(&bytes_key) / 1e6;
    r.pieces = delta(&format!(
        "redovault_collector_worm_pieces_total{{stream=\"{stream}\"}}"
    ));
    r.seals = delta(&format!(
        "redovault_collector_worm_manifest_seals_total{{stream=\"{stream}\"}}"
    ));
    r.put_errors = sample(
        &final_text,
        &format!("redovault_collector_worm_put_errors_total{{stream=\"{stream}\"}}"),
    )
    .unwrap_or(0.0);
    r.histogram = histogram_quantiles(&final_text, "redovault_collector_worm_latency_seconds");
    let mean = |name: &str| {
        sample(&final_text, &format!("{name}_sum")).unwrap_or(f64::NAN)
            / sample(&final_text, &format!("{name}_count")).unwrap_or(f64::NAN)
    };
    r.put_mean = mean("redovault_collector_worm_put_seconds");
    r.worm_mean = mean("redovault_collector_worm_latency_seconds");
    if mode.worm() && !acked_at.is_empty() && r.put_mean.is_finite() {
        let w = r.put_mean * 1e6 + 50_000.0;
        let during = |written: i64| {
            let i = confirms.partition_point(|&c| c < written as f64);
            confirms.get(i).is_some_and(|&c| c - written as f64 <= w)
        };
        let share = |v: &[(i64, f64)]| {
            v.iter().filter(|a| during(a.0)).count() as f64 / v.len().max(1) as f64
        };
        let mut slow = acked_at.clone();
        slow.sort_by(|a, b| b.1.total_cmp(&a.1));
        slow.truncate(acked_at.len().div_ceil(100));
        r.during_upload = Some((share(&acked_at), share(&slow), w / 1000.0));
    }
    (r.requests, r.statuses) = s3_requests(&s.rgw_log, &s.drill.bucket, from, to);
    let (n, first) = problems(&clog);
    r.problems = n;
    r.hops = all_hops;
    for l in first {
        println!("  round {i} collector: {l}");
    }
    for v in [&mut r.ack, &mut r.worm, &mut r.ack_to_worm] {
        v.sort_by(f64::total_cmp);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&db);
    r
}

fn print_round(i: usize, r: &Round) {
    println!(
        "round {i} {:<15} load {} -> {}; {:.1} s window, {} commits, {} switches in the run",
        r.mode.name(),
        r.load_before,
        r.load_after,
        r.window_s,
        r.commits,
        r.switches
    );
    println!(
        "  commit -> Ack     p50 {:.3} ms  p90 {:.3}  p99 {:.3}  max {:.3}  ({} measured, {} never acked)",
        pct(&r.ack, 0.5),
        pct(&r.ack, 0.9),
        pct(&r.ack, 0.99),
        r.ack.last().copied().unwrap_or(f64::NAN),
        r.ack.len(),
        r.unacked
    );
    if r.mode.worm() {
        println!(
            "  commit -> in WORM p50 {:.1} ms  p90 {:.1}  p99 {:.1}  max {:.1}  ({} measured, {} never seen in WORM)",
            pct(&r.worm, 0.5),
            pct(&r.worm, 0.9),
            pct(&r.worm, 0.99),
            r.worm.last().copied().unwrap_or(f64::NAN),
            r.worm.len(),
            r.not_in_worm
        );
        println!(
            "  Ack -> in WORM    p50 {:.1} ms  p99 {:.1}; collector histogram (per piece, durable -> in WORM): {}, mean {:.3} s; piece put (HEAD, PUT, HEAD) mean {:.3} s",
            pct(&r.ack_to_worm, 0.5),
            pct(&r.ack_to_worm, 0.99),
            r.histogram.map_or("none".into(), |(p50, p99, n)| format!(
                "p50 <= {p50} s, p99 <= {p99} s over {n} pieces"
            )),
            r.worm_mean,
            r.put_mean
        );
        if let Some((all, slow, w)) = r.during_upload {
            println!(
                "  written while a piece was uploading (the {w:.0} ms before it was confirmed): {:.0} % of all commits, {:.0} % of the 1 % slowest to be acknowledged",
                all * 100.0,
                slow * 100.0
            );
        }
        println!(
            "  S3: {} requests in the window ({:.0}/h): {:?}; statuses {:?}; {} pieces ({:.0}/h), {} chain seals ({:.0}/h), {} put errors",
            r.requests_total(),
            r.per_hour(r.requests_total() as f64),
            r.requests,
            r.statuses,
            r.pieces,
            r.per_hour(r.pieces),
            r.seals,
            r.per_hour(r.seals),
            r.put_errors
        );
    }
    println!(
        "  CPU over {:.1} MB: collector {:.2} s ({:.4} s/MB), extractor {:.2} s, S3 server {:.2} s; {} WARN/ERROR lines in the collector's log",
        r.mb,
        r.col_cpu,
        r.col_cpu / r.mb,
        r.ext_cpu,
        r.srv_cpu,
        r.problems
    );
}

fn main() {
    let rounds = env_u64("REDOVAULT_BENCH_ROUNDS", 4) as usize;
    let seconds = env_u64("REDOVAULT_BENCH_SECONDS", 20);
    let warmup = env_u64("REDOVAULT_BENCH_WARMUP_SECONDS", 3);
    let rate_mib = env_u64("REDOVAULT_BENCH_RATE_MIB", 10);
    let log_mib = env_u64("REDOVAULT_BENCH_LOG_MIB", 64);
    let seal_interval =
        std::env::var("REDOVAULT_BENCH_SEAL_INTERVAL").unwrap_or_else(|_| "1s".into());
    let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh worm");
    let env_file = targets.split(',').next().unwrap_or_default().to_string();
    let server = TestServer::from_env_file(&env_file).expect("S3 target");
    let drill = server
        .drill
        .clone()
        .expect("a drill bucket (Ceph of deploy/s3/server.sh)");
    let state = Path::new(&env_file)
        .parent()
        .expect("state dir")
        .to_path_buf();
    let rgw_log = state.join("ceph/log/client.rgw.a.log");
    let server_run = state.join("ceph/run");
    assert!(
        rgw_log.is_file(),
        "no radosgw log at {}: the S3 requests are counted from it",
        rgw_log.display()
    );

    let profile = PathBuf::from(env!("CARGO_BIN_EXE_redovault"))
        .parent()
        .expect("profile dir")
        .to_path_buf();
    let root = std::env::var_os("REDOVAULT_BENCH_SHIP_DIR").map_or_else(
        || profile.parent().expect("target").join("bench-worm-ship"),
        PathBuf::from,
    );
    let db_root = std::env::var_os("REDOVAULT_BENCH_DB_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new("/dev/shm").is_dir().then(|| {
                PathBuf::from(format!(
                    "/dev/shm/redovault-bench-worm-{}",
                    std::process::id()
                ))
            })
        })
        .unwrap_or_else(|| root.join("db"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let bins = common::build_role_bins();

    let pki_dir = root.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = tls::generate_pki(&pki_dir).expect("pki");
    let keys = root.join("keys");
    std::fs::write(
        &keys,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The recovery key pair: only the public half is given to the collector.
    let recovery_pub = root.join("recovery.pub");
    std::fs::write(
        &recovery_pub,
        RecoveryPrivateKey::generate().public().to_pem(),
    )
    .unwrap();

    println!(
        "worm_ship: {rounds} rounds of {seconds} s (first {warmup} s not measured), {rate_mib} MiB/s, \
         {log_mib} MiB logs, seal_interval {seal_interval}; S3 {} bucket {} prefix {} (the collector's keys); \
         collector store in {}, database in {}; {} cores",
        server.endpoint,
        drill.bucket,
        drill.prefix,
        root.display(),
        db_root.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let setup = Setup {
        root: root.clone(),
        db_root: db_root.clone(),
        bins,
        pki,
        keys,
        recovery_pub,
        server,
        drill,
        rgw_log,
        server_run,
        seconds,
        warmup,
        rate_mib,
        log_mib,
        seal_interval,
        hops: std::env::var("REDOVAULT_BENCH_HOPS").is_ok_and(|v| v == "1"),
        worm_local: std::env::var("REDOVAULT_BENCH_WORM_LOCAL").is_ok_and(|v| v == "1"),
        baseline: std::env::var_os("REDOVAULT_BENCH_BASELINE_COLLECTOR").map(PathBuf::from),
    };
    if std::env::var("REDOVAULT_BENCH_NICE_SERVER").is_ok_and(|v| v == "1") {
        let n = nice_server(&setup.server_run);
        println!("the S3 server's daemons reniced to 19 ({n} threads) (diagnosis)");
    }
    if setup.worm_local {
        println!("[worm] is a local directory on the database's file system (diagnosis)");
    }
    let mut results = Vec::new();
    for i in 0..rounds {
        // with, without (, with the baseline binary), in turn.
        let mode = if setup.baseline.is_some() {
            Mode::ALL[i % 3]
        } else {
            Mode::ALL[i % 2]
        };
        let r = round(&setup, i + 1, mode);
        print_round(i + 1, &r);
        results.push(r);
    }
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&db_root);
    summarize(&results);
    if setup.hops {
        for mode in Mode::ALL {
            if !results.iter().any(|r| r.mode == mode) {
                continue;
            }
            let rows: Vec<Vec<f64>> = results
                .iter()
                .filter(|r| r.mode == mode)
                .flat_map(|r| r.hops.iter().cloned())
                .collect();
            print_hops(mode.name(), &rows);
        }
    }
}

/// Per mode over its rounds (every commit of every round pooled), and the ratios.
fn summarize(results: &[Round]) {
    let pooled = |mode: Mode, f: fn(&Round) -> &Vec<f64>| {
        sorted(
            results
                .iter()
                .filter(|r| r.mode == mode)
                .flat_map(|r| f(r).iter().copied())
                .collect(),
        )
    };
    let sum = |mode: Mode, f: fn(&Round) -> f64| {
        results
            .iter()
            .filter(|r| r.mode == mode)
            .map(f)
            .sum::<f64>()
    };
    let p99s = |mode: Mode| {
        results
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| format!("{:.2}", pct(&r.ack, 0.99)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!();
    println!(
        "| mode | rounds | commits | commit → Ack p50 | p99 (per round) | commit → in WORM p50 | p99 | Ack → in WORM p50 | p99 | collector CPU s/MB | extractor CPU s/MB | S3 server CPU s/MB | S3 requests/h |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ack = BTreeMap::new();
    for mode in Mode::ALL {
        let n = results.iter().filter(|r| r.mode == mode).count();
        if n == 0 {
            continue;
        }
        let a = pooled(mode, |r| &r.ack);
        let w = pooled(mode, |r| &r.worm);
        let aw = pooled(mode, |r| &r.ack_to_worm);
        let mb = sum(mode, |r| r.mb);
        let secs = sum(mode, |r| r.window_s);
        let req = sum(mode, |r| r.requests_total() as f64);
        let ms = |v: &[f64], p: f64| {
            if v.is_empty() {
                "–".to_string()
            } else {
                format!("{:.0} ms", pct(v, p))
            }
        };
        println!(
            "| {} | {n} | {} | {:.3} ms | **{:.3} ms** ({}) | {} | **{}** | {} | {} | {:.4} | {:.4} | {:.4} | {:.0} |",
            mode.name(),
            a.len(),
            pct(&a, 0.5),
            pct(&a, 0.99),
            p99s(mode),
            ms(&w, 0.5),
            ms(&w, 0.99),
            ms(&aw, 0.5),
            ms(&aw, 0.99),
            sum(mode, |r| r.col_cpu) / mb,
            sum(mode, |r| r.ext_cpu) / mb,
            sum(mode, |r| r.srv_cpu) / mb,
            req * 3600.0 / secs
        );
        ack.insert(mode.name(), (pct(&a, 0.5), pct(&a, 0.99)));
    }
    for with in [Mode::With, Mode::WithBaseline] {
        if let (Some(w), Some(wo)) = (ack.get(with.name()), ack.get(Mode::Without.name())) {
            println!(
                "commit -> Ack {} / without [worm]: p50 {:.2}x  p99 {:.2}x",
                with.name(),
                w.0 / wo.0,
                w.1 / wo.1
            );
        }
    }
    for mode in Mode::ALL {
        if !results.iter().any(|r| r.mode == mode) {
            continue;
        }
        let per_round: Vec<String> = results
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| format!("{:.4}", r.col_cpu / r.mb))
            .collect();
        println!(
            "collector CPU s/MB per round, {}: {}",
            mode.name(),
            per_round.join(", ")
        );
    }
    // S3 requests by kind, per hour, over the rounds with [worm].
    let secs = sum(Mode::With, |r| r.window_s);
    if secs > 0.0 {
        let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
        for r in results.iter().filter(|r| r.mode == Mode::With) {
            for (k, v) in &r.requests {
                *kinds.entry(k.clone()).or_insert(0) += v;
            }
        }
        let pieces = sum(Mode::With, |r| r.pieces);
        let seals = sum(Mode::With, |r| r.seals);
        println!(
            "S3 requests per hour per stream (with [worm], {secs:.0} s measured): {}; pieces {:.0}/h, chain seals {:.0}/h",
            kinds
                .iter()
                .map(|(k, v)| format!("{k} {:.0}", *v as f64 * 3600.0 / secs))
                .collect::<Vec<_>>()
                .join(", "),
            pieces * 3600.0 / secs,
            seals * 3600.0 / secs
        );
    }
}
