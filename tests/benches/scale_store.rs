//! Scale curves of the archive side (issue 19): how the watcher's rescan, `verify` and
//! `restore archive` grow with the work. One curve per run, picked by `REDOVAULT_BENCH_SCALE`;
//! each step appends its figures to `REDOVAULT_BENCH_RESULTS` (JSON lines) and `report`
//! prints every curve as a table with the growth from one step to the next
//! (`deploy/bench.sh scale-watcher`, `scale-verify`, `scale-restore`).
//!
//! - `watcher`: archive destinations holding `REDOVAULT_BENCH_WATCHER_STEPS` (100,1000,10000)
//!   small valid archived logs (598 blocks, 306 KB: the real 23ai log's records, renumbered and
//!   re-sealed). The real `redovault watch` binary ships them all first (set-up, into a local
//!   store: the rescan never touches the store, and 10,000 logs would not fit in Ceph's
//!   memstore beside the other benches), and is stopped. What is measured is what a bank pays
//!   with that many logs already shipped: a restart (manifest loaded and its chain verified,
//!   first full scan: spawn to the first status file) and the steady state (one rescan a
//!   second, nothing new: the watcher's own `rescan done` timing, CPU per rescan, peak RSS).
//! - `verify`: a manifest of `E` entries over `O` objects for each `E:O` of
//!   `REDOVAULT_BENCH_VERIFY_STEPS` (10000:1000,100000:10000,1000000:100000). Writing a
//!   million entries through the watcher would take days, so the bench builds them with the
//!   library's own types: a valid hash chain of [`ManifestEntry`], sealed in segments of 1,000
//!   (the watcher's `segment_max_entries`) under [`segment_key`]; entry `i` names object
//!   `i mod O` (small objects put with the store's own `put_immutable`, locked on Ceph). Then
//!   the real `redovault-verifier verify` binary runs three times with one state directory:
//!   the first run (every object never deep-verified is re-hashed), the next one (`--full`,
//!   the rolling 1/30 share, keeping the incremental anchor), then, after one more segment
//!   of 1,000 entries and their 1,000 new objects, an incremental one (`--incremental`):
//!   time, CPU, peak RSS. Every run must be clean.
//! - `restore`: `restore archive` (the real binary, 8 downloads at once) of
//!   `REDOVAULT_BENCH_RESTORE_GIB` (1,2.5,5,10) GiB of 64 MiB valid archived logs under a
//!   sealed manifest: MB/s, CPU s per GB, peak RSS. Each step's store and restored files are
//!   deleted after it (on Ceph, `deploy/bench.sh` runs one step per server).
//!
//! `REDOVAULT_BENCH_STORE`: `ceph` (the server of `REDOVAULT_TEST_S3_TARGETS`) or `local` (a
//! directory under `REDOVAULT_BENCH_DIR`, the `[store] kind = "local"` of `redovault drill
//! --local`). Every row names the store it used.

use redovault_redo::position::{DbId, ResetlogsId};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use redovault::manifest::{ManifestEntry, SegmentInfo, Sha256Digest, segment_key};
use redovault::store::ArchiveStore;
use redovault::store::local::LocalStore;
use redovault::store::s3::S3Store;
use redovault_drill::testserver::TestServer;
use redovault_redo::position::{LogSeq, Scn, ThreadId};
use serde::{Deserialize, Serialize};

#[path = "archived_logs.rs"]
mod archived_logs;
#[path = "common.rs"]
mod common;
use common::{cpu_of, cpu_seconds, peak_rss};

const RV: &str = env!("CARGO_BIN_EXE_redovault");
/// Entries per sealed manifest segment (the watcher's default `segment_max_entries`).
const SEGMENT_ENTRIES: u64 = 1000;
/// Size of the archived logs of the restore curve.
const RESTORE_LOG_MIB: u64 = 64;
/// The steady-state window of the watcher curve.
const STEADY: Duration = Duration::from_secs(20);

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// One step of one curve, as appended to the results file.
#[derive(Debug, Serialize, Deserialize)]
struct Step {
    curve: String,
    store: String,
    /// The step's size, as shown ("10000 logs", "1000000 entries / 100000 objects", "2.5 GiB").
    label: String,
    /// The size the growth is measured against (logs, entries, bytes).
    size: f64,
    /// (column, value).
    figures: Vec<(String, f64)>,
}

fn record(s: &Step) {
    println!(
        "{} [{}] {}: {}",
        s.curve,
        s.store,
        s.label,
        s.figures
            .iter()
            .map(|(k, v)| format!("{k} {v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Ok(path) = std::env::var("REDOVAULT_BENCH_RESULTS") {
        use std::io::Write as _;
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(out, "{}", serde_json::to_string(s).unwrap()).unwrap();
    }
}

/// A child process watched for its peak RSS (VmHWM, read every 20 ms until it exits) and
/// charged the CPU it used (this process's waited-for children, one child at a time).
struct Measured {
    secs: f64,
    cpu: f64,
    peak_rss: u64,
    stdout: String,
}

fn measure(mut cmd: Command, what: &str) -> Measured {
    let (_, c0) = cpu_seconds();
    let t0 = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let reader = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = reader(Box::new(out));
    let err = reader(Box::new(err));
    let mut peak = 0;
    let status = loop {
        peak = peak.max(peak_rss(pid));
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = t0.elapsed().as_secs_f64();
    let (_, c1) = cpu_seconds();
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{}",
        stderr.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    Measured {
        secs,
        cpu: c1 - c0,
        peak_rss: peak,
        stdout,
    }
}

// ---------------------------------------------------------------------------------------------
// Stores

/// Where a curve's objects go.
enum Store {
    Ceph(Box<TestServer>, Arc<S3Store>),
    Local(PathBuf, Arc<LocalStore>),
}

impl Store {
    fn open(work: &Path) -> Store {
        match std::env::var("REDOVAULT_BENCH_STORE").as_deref() {
            Ok("local") => {
                let dir = work.join("vault");
                let s = LocalStore::new(&dir).unwrap();
                Store::Local(dir, Arc::new(s))
            }
            Ok("ceph") | Err(_) => {
                let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
                    .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh");
                let server =
                    TestServer::from_env_file(targets.split(',').next().unwrap_or_default())
                        .unwrap_or_else(|e| panic!("{e}"));
                let s = S3Store::new(server.config(&server.bucket)).unwrap();
                Store::Ceph(Box::new(server), Arc::new(s))
            }
            Ok(other) => panic!("REDOVAULT_BENCH_STORE {other:?}: ceph or local"),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Store::Ceph(..) => "Ceph",
            Store::Local(..) => "local",
        }
    }

    /// Puts `bytes` under `key` (create-only, locked on Ceph); (version id, retain-until).
    async fn put(&self, key: &str, bytes: Vec<u8>) -> (Option<String>, Option<String>) {
        let o = match self {
            Store::Ceph(_, s) => s.put_immutable(key, std::io::Cursor::new(bytes)).await,
            Store::Local(_, s) => s.put_immutable(key, std::io::Cursor::new(bytes)).await,
        }
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
        (
            o.version_id,
            o.lock.map(|l| {
                l.retain_until
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
        )
    }

    /// The `[store]` table of a configuration with this prefix.
    fn toml(&self, prefix: &str) -> String {
        match self {
            Store::Ceph(s, _) => format!(
                "[store]\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\npath_style = \
                 true\nca_file = \"{}\"\nprefix = \"{prefix}\"\n",
                s.endpoint,
                s.bucket,
                s.region,
                s.ca.display()
            ),
            Store::Local(d, _) => format!(
                "[store]\nkind = \"local\"\ndir = \"{}\"\nprefix = \"{prefix}\"\n",
                d.display()
            ),
        }
    }

    /// The `[verify]` lock policy for this store (the local store has no lock).
    fn lock_mode(&self) -> &'static str {
        match self {
            Store::Ceph(..) => "compliance",
            Store::Local(..) => "none",
        }
    }

    fn credentials(&self, cmd: &mut Command) {
        if let Store::Ceph(s, _) = self {
            cmd.env("AWS_ACCESS_KEY_ID", &s.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &s.secret_key);
        }
    }
}

/// A sealed manifest written straight into the store: entries chained as the watcher chains
/// them, closed into segments of [`SEGMENT_ENTRIES`] and put under [`segment_key`].
struct SealedWriter<'a> {
    store: &'a Store,
    prefix: String,
    prev: Sha256Digest,
    next: u64,
    open: Vec<u8>,
    first: u64,
}

impl<'a> SealedWriter<'a> {
    fn new(store: &'a Store, prefix: &str) -> SealedWriter<'a> {
        SealedWriter {
            store,
            prefix: prefix.to_string(),
            prev: Sha256Digest::ZERO,
            next: 1,
            open: Vec::new(),
            first: 1,
        }
    }

    /// Appends `e` (its `index` and `prev` are set here).
    async fn push(&mut self, mut e: ManifestEntry) {
        e.index = self.next;
        e.prev = self.prev;
        self.prev = e.hash();
        self.open.extend_from_slice(e.canonical_line().as_bytes());
        self.open.push(b'\n');
        self.next += 1;
        if self.next - self.first == SEGMENT_ENTRIES {
            self.seal().await;
        }
    }

    async fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let bytes = std::mem::take(&mut self.open);
        let seg = SegmentInfo {
            first: self.first,
            last: self.next - 1,
            sha256: Sha256Digest::of(&bytes),
            size: bytes.len() as u64,
            path: PathBuf::new(),
        };
        self.store
            .put(&segment_key(&self.prefix, &seg), bytes)
            .await;
        self.first = self.next;
    }

    /// Seals what is open; the entries written so far (more can be pushed after).
    async fn finish(&mut self) -> u64 {
        self.seal().await;
        self.next - 1
    }
}

/// The manifest entry of log `seq` (thread 1, SCNs continuous from one log to the next).
fn entry(
    seq: u32,
    size: u64,
    sha: [u8; 32],
    key: String,
    version: Option<String>,
) -> ManifestEntry {
    let scn = 1_000_000 + 10_000 * u64::from(seq);
    ManifestEntry {
        index: 0,
        db_id: DbId(1_497_016_494),
        db_name: "FREE".into(),
        resetlogs_id: ResetlogsId(1_224_959_854),
        thread: ThreadId(1),
        sequence: LogSeq(seq),
        first_scn: Scn(scn),
        next_scn: Scn(scn + 10_000),
        first_time: "2026-12-01T00:00:00".into(),
        next_time: "2026-12-01T00:01:00".into(),
        size,
        sha256: Sha256Digest(sha),
        object_key: key,
        version_id: version,
        retain_until: None,
        shipped_at: "2026-12-01T00:01:01.000Z".into(),
        file_name: format!("arch1_{seq}_1224959854.dbf"),
        stored: None,
        prev: Sha256Digest::ZERO,
    }
}

/// Builds `redovault-verifier` in this bench's profile and target directory; its path.
fn verifier_bin() -> PathBuf {
    common::build_bins(&["-p", "redovault-verifier", "--bin", "redovault-verifier"])
        .join("redovault-verifier")
}

/// A verifier configuration for `prefix` in `dir` (its state directory beside it).
fn verifier_config(store: &Store, dir: &Path, prefix: &str) -> PathBuf {
    let cfg = dir.join("verifier.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[verify]\nstate_dir = \"{}\"\nlock_mode = \"{}\"\nmin_retention = \"1m\"\n\
             [telemetry]\nmetrics_listen = \"\"\n",
            store.toml(prefix),
            dir.join("verifier-state").display(),
            store.lock_mode()
        ),
    )
    .unwrap();
    cfg
}

fn verifier_cmd(bin: &Path, store: &Store, args: &[&str], cfg: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args(args).arg("--config").arg(cfg).env_remove("RUST_LOG");
    store.credentials(&mut c);
    c
}

// ---------------------------------------------------------------------------------------------
// The watcher curve

fn status(state: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(state.join("status.json")).ok()?).ok()
}

fn stop(mut child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let s = child.wait().unwrap();
    assert!(s.success(), "watcher exit {s}");
}

fn wait_for(
    what: &str,
    log: &Path,
    timeout: Duration,
    poll: Duration,
    mut ok: impl FnMut() -> bool,
) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < timeout,
            "timed out waiting for {what}; watcher log (end):\n{}",
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(poll);
    }
}

/// The `rescan done` timings (total ms) the watcher logged.
fn rescans(log: &Path) -> Vec<f64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "rescan done" || v["message"] == "rescan done")
        .filter_map(|v| {
            v["fields"]["total_ms"]
                .as_f64()
                .or_else(|| v["total_ms"].as_f64())
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn watcher_curve(work: &Path) {
    let template = archived_logs::template();
    for n in env_list("REDOVAULT_BENCH_WATCHER_STEPS", "100,1000,10000") {
        let n: u32 = n.parse().expect("REDOVAULT_BENCH_WATCHER_STEPS: numbers");
        let root = work.join(format!("watcher-{n}"));
        let _ = std::fs::remove_dir_all(&root);
        let archive = root.join("archive");
        let state = root.join("state");
        std::fs::create_dir_all(&archive).unwrap();
        let t0 = Instant::now();
        for seq in 1..=n {
            archived_logs::make_log_from(&template, &archive, seq, 1);
        }
        println!(
            "watcher: {n} logs written in {:.1} s (set-up)",
            t0.elapsed().as_secs_f64()
        );
        let cfg = root.join("watcher.toml");
        std::fs::write(
            &cfg,
            format!(
                "[watch]\ndirs = [\"{}\"]\nscan_interval = \"1s\"\n[state]\ndir = \"{}\"\n\
                 [store]\nkind = \"local\"\ndir = \"{}\"\nprefix = \"scale\"\n[telemetry]\n\
                 metrics_listen = \"\"\nlog_format = \"json\"\n\
                 log_level = \"info,redovault::watcher::rescan=debug\"\n",
                archive.display(),
                state.display(),
                root.join("vault").display()
            ),
        )
        .unwrap();
        let spawn = |log: &Path| {
            Command::new(RV)
                .args(["watch", "--config"])
                .arg(&cfg)
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap()
        };
        // Set-up: every log shipped once.
        let ship_log = root.join("ship.log");
        let t0 = Instant::now();
        let w = spawn(&ship_log);
        let pid = w.id();
        let mut ship_cpu = 0.0;
        wait_for(
            "every log shipped",
            &ship_log,
            Duration::from_secs(7200),
            Duration::from_millis(200),
            || {
                ship_cpu = cpu_of(pid);
                status(&state).is_some_and(|s| s["manifest"]["entries"] == n)
            },
        );
        let ship_secs = t0.elapsed().as_secs_f64();
        stop(w);
        // Restart with every log already shipped: spawn to the end of the first full scan
        // (the manifest loaded and its chain verified, the store checked, every file listed
        // and found shipped in the ledger).
        std::fs::remove_file(state.join("status.json")).unwrap();
        let log = root.join("watch.log");
        let t0 = Instant::now();
        let w = spawn(&log);
        let pid = w.id();
        wait_for(
            "the first scan after a restart",
            &log,
            Duration::from_secs(600),
            Duration::from_millis(5),
            || !rescans(&log).is_empty(),
        );
        let startup = t0.elapsed().as_secs_f64();
        let startup_cpu = cpu_of(pid);
        let first_scan = rescans(&log)[0];
        wait_for(
            "the first status after a restart",
            &log,
            Duration::from_secs(60),
            Duration::from_millis(20),
            || state.join("status.json").exists(),
        );
        let s = status(&state).expect("status.json");
        assert_eq!(s["backlog"]["files"], 0, "nothing left to ship: {s}");
        // Steady state: one rescan a second, nothing new.
        std::thread::sleep(Duration::from_secs(2));
        let before = rescans(&log).len();
        let cpu0 = cpu_of(pid);
        std::thread::sleep(STEADY);
        let cpu1 = cpu_of(pid);
        let times = rescans(&log);
        let window = &times[before..];
        assert!(!window.is_empty(), "no rescan logged in {STEADY:?}");
        let rss = peak_rss(pid);
        let s = status(&state).expect("status.json");
        assert_eq!(s["shipped_files"], 0, "a restart re-shipped nothing: {s}");
        stop(w);
        record(&Step {
            curve: "watcher".into(),
            store: "local".into(),
            label: format!("{n} logs"),
            size: f64::from(n),
            figures: vec![
                ("restart s".into(), startup),
                ("restart CPU ms".into(), startup_cpu * 1000.0),
                ("first scan ms".into(), first_scan),
                ("rescan ms (p50)".into(), median(window.to_vec())),
                (
                    "CPU ms per rescan".into(),
                    (cpu1 - cpu0) * 1000.0 / window.len() as f64,
                ),
                ("peak RSS MiB".into(), mib(rss)),
                (
                    "set-up: ship ms per log".into(),
                    ship_secs * 1000.0 / f64::from(n),
                ),
                (
                    "set-up: ship CPU ms per log".into(),
                    ship_cpu * 1000.0 / f64::from(n),
                ),
            ],
        });
        std::fs::remove_dir_all(&root).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The verify curve

fn verify_curve(work: &Path, rt: &tokio::runtime::Runtime) {
    let bin = verifier_bin();
    let store = Store::open(work);
    let run = format!("{:08x}", rand::random::<u32>());
    for step in env_list(
        "REDOVAULT_BENCH_VERIFY_STEPS",
        "10000:1000,100000:10000,1000000:100000",
    ) {
        let (e, o) = step
            .split_once(':')
            .and_then(|(e, o)| Some((e.parse::<u32>().ok()?, o.parse::<u32>().ok()?)))
            .expect("REDOVAULT_BENCH_VERIFY_STEPS: ENTRIES:OBJECTS,...");
        let prefix = format!("scale-{run}/verify-{e}");
        let dir = work.join(format!("verify-{e}"));
        std::fs::create_dir_all(&dir).unwrap();
        let t0 = Instant::now();
        let objects = rt.block_on(put_objects(&store, &prefix, "", o));
        let put_secs = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let mut w = SealedWriter::new(&store, &prefix);
        let written = rt.block_on(async {
            for seq in 1..=e {
                let (key, sha, size, version) = &objects[((seq - 1) % o) as usize];
                w.push(entry(seq, *size, *sha, key.clone(), version.clone()))
                    .await;
            }
            w.finish().await
        });
        assert_eq!(written, u64::from(e));
        println!(
            "verify: {o} objects put in {put_secs:.1} s, {e} entries sealed in {:.1} s (set-up)",
            t0.elapsed().as_secs_f64()
        );
        drop(objects);
        let cfg = verifier_config(&store, &dir, &prefix);
        let mut figures = Vec::new();
        // The first run, as an auditor's default; the next one a full run too (`--full`: it
        // keeps the anchor of incremental runs, which costs one listing of versions of the
        // manifest and one of the archive); then one more segment of entries, each with a
        // new object, and an incremental run from that anchor.
        for (label, what, args) in [
            ("first run", "first", &["verify"][..]),
            ("next run", "next", &["verify", "--full"][..]),
            (
                "incremental run",
                "incremental",
                &["verify", "--incremental"][..],
            ),
        ] {
            if what == "incremental" {
                let n = SEGMENT_ENTRIES as u32;
                let extra = rt.block_on(put_objects(&store, &prefix, "more ", n));
                let written = rt.block_on(async {
                    for (j, (key, sha, size, version)) in extra.iter().enumerate() {
                        w.push(entry(
                            e + 1 + j as u32,
                            *size,
                            *sha,
                            key.clone(),
                            version.clone(),
                        ))
                        .await;
                    }
                    w.finish().await
                });
                assert_eq!(written, u64::from(e + n));
            }
            let m = measure(
                verifier_cmd(&bin, &store, args, &cfg),
                &format!("verify, {what} run, {e} entries"),
            );
            // `measure` asserts exit 0: a clean verdict (findings exit 1).
            figures.push((format!("{label} s"), m.secs));
            figures.push((format!("{label} CPU s"), m.cpu));
            figures.push((format!("{label} peak RSS MiB"), mib(m.peak_rss)));
        }
        let report = dir.join("verifier-state").join("verifier-incremental.json");
        assert!(report.exists(), "the incremental run kept its anchor");
        record(&Step {
            curve: "verify".into(),
            store: store.name().into(),
            label: format!("{e} entries / {o} objects"),
            size: f64::from(e),
            figures,
        });
        std::fs::remove_dir_all(&dir).unwrap();
        if let Store::Local(d, _) = &store {
            std::fs::remove_dir_all(d.join(&prefix)).unwrap();
        }
    }
}

/// `n` small objects under `prefix/archive/sha256/` (`tag` makes their bytes differ from
/// another batch's), 32 puts at once: key, SHA-256, size, version.
async fn put_objects(
    store: &Store,
    prefix: &str,
    tag: &str,
    n: u32,
) -> Vec<(String, [u8; 32], u64, Option<String>)> {
    futures::stream::iter(0..n)
        .map(|j| async move {
            let mut bytes = format!("redovault scale object {prefix} {tag}{j}\n").into_bytes();
            bytes.resize(512, b'.');
            let sha: [u8; 32] = Sha256Digest::of(&bytes).0;
            let key = format!("{prefix}/archive/sha256/{}", hex::encode(sha));
            let size = bytes.len() as u64;
            let (version, _) = store.put(&key, bytes).await;
            (key, sha, size, version)
        })
        .buffered(32)
        .collect()
        .await
}

// ---------------------------------------------------------------------------------------------
// The restore curve

fn restore_curve(work: &Path, rt: &tokio::runtime::Runtime) {
    let bin = verifier_bin();
    let store = Store::open(work);
    let template = archived_logs::template();
    let run = format!("{:08x}", rand::random::<u32>());
    for gib in env_list("REDOVAULT_BENCH_RESTORE_GIB", "1,2.5,5,10") {
        let g: f64 = gib.parse().expect("REDOVAULT_BENCH_RESTORE_GIB: numbers");
        let total = (g * (1u64 << 30) as f64) as u64;
        let n = total.div_ceil(RESTORE_LOG_MIB << 20) as u32;
        let prefix = format!("scale-{run}/restore-{gib}");
        let dir = work.join(format!("restore-{gib}"));
        let staging = dir.join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let t0 = Instant::now();
        let bytes = rt.block_on(async {
            let mut w = SealedWriter::new(&store, &prefix);
            let mut bytes = 0;
            for seq in 1..=n {
                // Each log made on disk, read back, put, and removed: the staging never holds
                // more than one.
                let p =
                    archived_logs::make_log_from(&template, &staging, seq, RESTORE_LOG_MIB << 20);
                let data = std::fs::read(&p).unwrap();
                std::fs::remove_file(&p).unwrap();
                let sha = Sha256Digest::of(&data).0;
                let key = format!("{prefix}/archive/sha256/{}", hex::encode(sha));
                let size = data.len() as u64;
                bytes += size;
                let (version, _) = store.put(&key, data).await;
                w.push(entry(seq, size, sha, key, version)).await;
            }
            w.finish().await;
            bytes
        });
        println!(
            "restore: {n} logs ({:.2} GiB) put in {:.1} s (set-up)",
            bytes as f64 / (1u64 << 30) as f64,
            t0.elapsed().as_secs_f64()
        );
        let cfg = verifier_config(&store, &dir, &prefix);
        let dest = dir.join("restored");
        let mut cmd = verifier_cmd(&bin, &store, &["restore", "archive"], &cfg);
        cmd.arg("--dest").arg(&dest);
        let m = measure(cmd, &format!("restore archive of {gib} GiB"));
        let restored: u64 = std::fs::read_dir(&dest)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".dbf"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert_eq!(restored, bytes, "every byte restored: {}", m.stdout);
        record(&Step {
            curve: "restore".into(),
            store: store.name().into(),
            label: format!("{gib} GiB ({n} logs of {RESTORE_LOG_MIB} MiB)"),
            size: bytes as f64,
            figures: vec![
                ("s".into(), m.secs),
                ("MB/s".into(), bytes as f64 / 1e6 / m.secs),
                ("CPU s".into(), m.cpu),
                ("CPU s per GB".into(), m.cpu / (bytes as f64 / 1e9)),
                ("peak RSS MiB".into(), mib(m.peak_rss)),
            ],
        });
        std::fs::remove_dir_all(&dir).unwrap();
        if let Store::Local(d, _) = &store {
            std::fs::remove_dir_all(d.join(&prefix)).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn report() {
    let path = std::env::var("REDOVAULT_BENCH_RESULTS").expect("REDOVAULT_BENCH_RESULTS");
    let steps: Vec<Step> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut curves: Vec<&str> = steps.iter().map(|s| s.curve.as_str()).collect();
    curves.dedup();
    for curve in curves {
        let rows: Vec<&Step> = steps.iter().filter(|s| s.curve == curve).collect();
        let cols: Vec<&str> = rows[0].figures.iter().map(|(k, _)| k.as_str()).collect();
        println!("\n{curve}: each figure with its growth from the step above (x), same store");
        println!("| store | step | size x | {} |", cols.join(" | "));
        println!("|---|---|---|{}", "---|".repeat(cols.len()));
        let mut prev: Option<&Step> = None;
        for r in rows {
            let same = prev.filter(|p| p.store == r.store);
            let grow = |a: f64, b: Option<f64>| match b {
                Some(b) if b > 0.0 => format!(" (x{:.2})", a / b),
                _ => String::new(),
            };
            let cells: Vec<String> = r
                .figures
                .iter()
                .map(|(k, v)| {
                    let before = same
                        .and_then(|p| p.figures.iter().find(|f| &f.0 == k))
                        .map(|f| f.1);
                    format!("{v:.2}{}", grow(*v, before))
                })
                .collect();
            println!(
                "| {} | {} | {} | {} |",
                r.store,
                r.label,
                same.map_or("-".into(), |p| format!("x{:.2}", r.size / p.size)),
                cells.join(" | ")
            );
            prev = Some(r);
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let curve = std::env::var("REDOVAULT_BENCH_SCALE")
        .expect("REDOVAULT_BENCH_SCALE: watcher, verify, restore or report");
    if curve == "report" {
        return report();
    }
    let base = PathBuf::from(
        std::env::var("REDOVAULT_BENCH_DIR").unwrap_or_else(|_| "/tmp/redovault-bench".into()),
    );
    std::fs::create_dir_all(&base).unwrap();
    let work = tempfile::tempdir_in(&base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match curve.as_str() {
        "watcher" => watcher_curve(work.path()),
        "verify" => verify_curve(work.path(), &rt),
        "restore" => restore_curve(work.path(), &rt),
        other => panic!("REDOVAULT_BENCH_SCALE {other:?}: watcher, verify, restore or report"),
    }
}
