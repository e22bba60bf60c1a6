//! Helpers shared by the benchmarks: CPU time of processes, fdatasync probes, quantiles, ports,
//! metrics scrapes, and running the reference
//! uploaders (`curl -T`, `aws s3 cp`) on the same files and server.

#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Instant;

/// Clock ticks per second of /proc CPU times (Linux).
const TICK: f64 = 100.0;

/// CPU seconds (user + system) of this process and of its waited-for children.
pub fn cpu_seconds() -> (f64, f64) {
    let f = stat_fields("/proc/self/stat");
    // f[0] is field 3 (state): utime is field 14 → index 11.
    let own = (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / TICK;
    let children = (f.get(13).copied().unwrap_or(0.0) + f.get(14).copied().unwrap_or(0.0)) / TICK;
    (own, children)
}

/// CPU seconds (user + system) used so far by the running process `pid`.
pub fn cpu_of(pid: u32) -> f64 {
    let f = stat_fields(&format!("/proc/{pid}/stat"));
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / TICK
}

fn stat_fields(path: &str) -> Vec<f64> {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect()
}

/// CPU seconds (user + system) used so far by the S3 server's processes (radosgw, ceph-osd,
/// ceph-mon: the benches run one server at a time), to show what each uploader costs the
/// server on a machine where both share the cores.
pub fn server_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            matches!(comm.trim(), "radosgw" | "ceph-osd" | "ceph-mon")
        })
        .map(cpu_of)
        .sum()
}

/// An empty file at `path` (created, or emptied), open for writing: where the fdatasync
/// probes write.
pub fn probe_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .expect("probe file")
}

/// `n` × (write `buf` at the file's position, then time its `fdatasync`), back to back: the
/// disk's own fdatasync latencies in ms, sorted.
pub fn sync_latencies(f: &mut std::fs::File, buf: &[u8], n: usize) -> Vec<f64> {
    use std::io::Write;
    let mut out: Vec<f64> = (0..n)
        .map(|_| {
            f.write_all(buf).expect("write");
            let t = Instant::now();
            f.sync_data().expect("fdatasync");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// Peak resident set size (VmHWM) of the running process `pid`, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One uploader's result.
pub struct Row {
    pub name: String,
    pub secs: f64,
    pub cpu: f64,
    pub bytes: u64,
}

impl Row {
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs
    }
}

/// Total size of `files`.
pub fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn check(name: &str, c: Child) {
    let out = c
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f(file, i)` for every file, `parallel` processes at a time; CPU is that of the
/// waited-for children.
pub fn run_cmd(
    name: &str,
    files: &[PathBuf],
    parallel: usize,
    mut f: impl FnMut(&Path, usize) -> Command,
) -> Row {
    let total = total_bytes(files);
    let (_, c0) = cpu_seconds();
    let t0 = Instant::now();
    let mut running: Vec<Child> = Vec::new();
    for (i, p) in files.iter().enumerate() {
        if running.len() >= parallel.max(1) {
            check(name, running.remove(0));
        }
        let mut cmd = f(p, i);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        running.push(cmd.spawn().unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    for c in running {
        check(name, c);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (_, c1) = cpu_seconds();
    Row {
        name: name.to_string(),
        secs,
        cpu: c1 - c0,
        bytes: total,
    }
}

/// S3 target of the reference uploaders.
pub struct Target {
    pub endpoint: String,
    pub ca: String,
    pub bucket: String,
    pub key: String,
    pub secret: String,
}

/// `curl -T` with SigV4 and UNSIGNED-PAYLOAD (no hashing, no lock): the near-limit baseline.
pub fn curl(t: &Target, file: &Path, key: &str) -> Command {
    let mut c = Command::new("curl");
    c.args(["-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", t.key, t.secret))
        .args([
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--cacert",
            &t.ca,
            "-T",
        ])
        .arg(file)
        .arg(format!("{}/{}/{key}", t.endpoint, t.bucket));
    c
}

/// `curl -T` asked to do what the watcher asks of the server: the file's SHA-256 computed first
/// (`openssl dgst`, SHA-NI like the watcher's) and signed as `x-amz-content-sha256`, so the
/// server hashes the body and refuses other bytes. Still no lock, no create-only, no validation.
pub fn curl_signed(t: &Target, file: &Path, key: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(
            r#"h=$(openssl dgst -sha256 -r "$1" | cut -c1-64) && exec curl -sS -f --aws-sigv4 \
                 aws:amz:us-east-1:s3 --user "$2" -H "x-amz-content-sha256: $h" --cacert "$3" \
                 -T "$1" "$4""#,
        )
        .arg("curl-signed")
        .arg(file)
        .arg(format!("{}:{}", t.key, t.secret))
        .arg(&t.ca)
        .arg(format!("{}/{}/{key}", t.endpoint, t.bucket));
    c
}

/// `aws s3 cp` (checksums only when required: Ceph refuses aws-chunked bodies).
pub fn aws(aws: &str, t: &Target, file: &Path, key: &str) -> Command {
    let mut c = Command::new(aws);
    c.env("AWS_ACCESS_KEY_ID", &t.key)
        .env("AWS_SECRET_ACCESS_KEY", &t.secret)
        .env("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .args([
            "--endpoint-url",
            &t.endpoint,
            "--ca-bundle",
            &t.ca,
            "s3",
            "cp",
            "--quiet",
        ])
        .arg(file)
        .arg(format!("s3://{}/{key}", t.bucket));
    c
}

/// Builds the role binaries (`redovault-extractor`, `redovault-collector`) in the profile of
/// this bench (release under `cargo bench`) and target directory; their paths.
pub fn build_role_bins() -> (PathBuf, PathBuf) {
    let pd = build_bins(&[
        "-p",
        "redovault-extractor",
        "-p",
        "redovault-collector",
        "--bins",
    ]);
    (
        pd.join("redovault-extractor"),
        pd.join("redovault-collector"),
    )
}

/// Runs `cargo build` with `what` (packages and targets) in the profile of this bench (release
/// under `cargo bench`) and its target directory; the profile directory the binaries are in.
pub fn build_bins(what: &[&str]) -> PathBuf {
    let pd = PathBuf::from(env!("CARGO_BIN_EXE_redovault"))
        .parent()
        .expect("profile dir")
        .to_path_buf();
    let target = pd.parent().expect("target dir");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build")
        .args(what)
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if pd.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    // Cargo's variables for this bench would leak into the build's scripts.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
            "CARGO_MANIFEST_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&k.as_ref())
        {
            cmd.env_remove(k.as_ref());
        }
    }
    assert!(cmd.status().expect("cargo build").success(), "build failed");
    pd
}

/// Runs the simulated database `sim` on its own thread until `stop` is set, and reports each
/// commit (not rollbacks) with its redo thread, its SCN and `clock()` read right before the
/// step that writes it (the LWN and its journal line); the thread returns the simulation's
/// summary.
pub fn run_database<T: Clone + Send + 'static>(
    sim: redovault_drill::simulate::Simulator,
    journal: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clock: impl Fn() -> T + Send + 'static,
) -> (
    std::thread::JoinHandle<redovault_drill::simulate::Summary>,
    std::sync::mpsc::Receiver<(u16, u64, T)>,
) {
    use std::io::Read;
    let (commit_tx, commit_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut sim = sim;
        let mut jf = std::fs::File::open(&journal).expect("journal");
        let mut pending = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Stamped before the step: a step writes its LWN (and journal line) and then
            // sleeps to keep the simulated clock in real time, so a stamp after it would leave
            // out up to a whole step's pacing (tens of ms at low per-database rates).
            let now = clock();
            sim.step().expect("step");
            let mut more = Vec::new();
            jf.read_to_end(&mut more).expect("read journal");
            pending.extend_from_slice(&more);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let e: redovault_drill::simulate::journal::JournalEntry =
                    serde_json::from_slice(&line).expect("journal line");
                if !e.rollback {
                    let _ = commit_tx.send((e.thread, e.scn, now.clone()));
                }
            }
        }
        sim.finish().expect("finish")
    });
    (thread, commit_rx)
}

/// Commit latencies: commits wait (SCN, when written) until a position covering their SCN is
/// reported (an Ack, a protected position); each one written after `from` counts.
pub struct Latencies {
    waiting: std::collections::VecDeque<(u64, Instant)>,
    covered_scn: u64,
    from: Instant,
    /// Milliseconds, in the order measured.
    pub ms: Vec<f64>,
}

impl Latencies {
    /// Counts commits written at or after `from`.
    pub fn new(from: Instant) -> Latencies {
        Latencies {
            waiting: std::collections::VecDeque::new(),
            covered_scn: 0,
            from,
            ms: Vec::new(),
        }
    }

    /// A commit written at `at`.
    pub fn written(&mut self, scn: u64, at: Instant) {
        self.waiting.push_back((scn, at));
    }

    /// Everything up to `scn` is covered as of `at`.
    pub fn covered(&mut self, scn: u64, at: Instant) {
        self.covered_scn = self.covered_scn.max(scn);
        while self
            .waiting
            .front()
            .is_some_and(|w| w.0 <= self.covered_scn)
        {
            if let Some((_, written)) = self.waiting.pop_front()
                && written >= self.from
                && at >= written
            {
                self.ms.push((at - written).as_secs_f64() * 1000.0);
            }
        }
    }

    /// Commits not covered yet.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// An integer from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0..=1) of sorted values, nearest rank; NaN when there are none.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `v` in ascending order.
pub fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A port free on 127.0.0.1 at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// The 1-, 5- and 15-minute load averages, as the figures are read beside them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A metrics endpoint's text (`GET /metrics`), or None when it does not answer.
pub fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// A group-commit writer on `f` alone: arrivals at `rate` per second for `secs` seconds, each
/// `size` bytes; every arrival queued while the last `fdatasync` ran is written and synced in
/// the next batch. Arrival → durable latencies in ms, the first second left out (page cache
/// and journal warming up). The disk's floor for the pipeline's group commit.
pub fn group_commit_latencies(
    f: &mut std::fs::File,
    rate: f64,
    size: usize,
    secs: u64,
) -> Vec<f64> {
    use std::io::Write as _;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Instant>(1 << 20);
    let n = (rate * secs as f64) as u64;
    let timer = std::thread::spawn(move || {
        let start = Instant::now();
        for i in 0..n {
            let due = start + std::time::Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send(Instant::now()).is_err() {
                return;
            }
        }
    });
    let data = vec![5u8; size.max(1)];
    let mut lat = Vec::with_capacity(n as usize);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        for _ in &batch {
            f.write_all(&data).expect("write");
        }
        f.sync_data().expect("fdatasync");
        let now = Instant::now();
        lat.extend(batch.iter().map(|a| (now - *a).as_secs_f64() * 1e3));
    }
    timer.join().expect("timer thread");
    lat.into_iter().skip(rate as usize).collect()
}
