//! End-to-end tests of the watcher: the `redovault watch` and `redovault push` binaries against
//! the real Ceph radosgw of `deploy/s3/server.sh` (each test under its own key prefix), with
//! real-format redo from the simulated Oracle and the real Oracle fixtures.
//!
//! Faults: `kill -9` of the watcher process, an S3 outage made by an in-process TCP proxy
//! (`tcp_proxy`) between the watcher and the real server (the server itself keeps serving the
//! other tests), flipped bits, truncation, and a replaced file.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;
use redovault::manifest::{self, ManifestEntry, verify_segments};
use redovault::store::s3::S3Store;
use redovault::store::{ArchiveStore, LockMode};
use redovault_drill::simulate::{SimConfig, run as simulate};
use redovault_drill::testserver::TestServer;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::store::ceph;
use crate::tcp_proxy::TcpProxy;

const RV: &str = env!("CARGO_BIN_EXE_redovault");

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// One test's world: an archive directory, a state directory, an alarm file, a prefix.
struct World {
    dir: tempfile::TempDir,
    server: TestServer,
    prefix: String,
}

impl World {
    /// None (the test skips, or fails under deploy/test.sh) when no S3 server runs.
    fn new(name: &str) -> Option<World> {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
            server: ceph()?,
            prefix: unique(name),
        };
        std::fs::create_dir_all(w.archive()).unwrap();
        Some(w)
    }

    fn archive(&self) -> PathBuf {
        self.dir.path().join("oracle").join("archive")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn alarms_file(&self) -> PathBuf {
        self.dir.path().join("alarms.jsonl")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("watcher.toml")
    }

    /// Writes the configuration: endpoint (the server, or a proxy), and extra `[watch]` and
    /// `[store]` lines.
    fn write_config(&self, endpoint: &str, watch_extra: &str, store_extra: &str) {
        let t = &self.server;
        let text = format!(
            r#"
[watch]
dirs = ["{archive}"]
{watch}

[state]
dir = "{state}"
status_interval = "300ms"
seal_interval = "2s"
segment_max_entries = 25

[store]
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "{prefix}"
retention = "1h"
{store_extra}

[telemetry]
log_format = "json"
log_level = "info"
metrics_listen = "127.0.0.1:0"

[alert]
command = ["sh", "-c", "cat >> '{alarms}'"]
repeat_after = "1h"
"#,
            archive = self.archive().display(),
            watch = with_defaults(
                &[
                    ("scan_interval", "\"1s\""),
                    ("grace_period", "\"2s\""),
                    ("retry_max_backoff", "\"3s\""),
                ],
                watch_extra
            ),
            state = self.state().display(),
            bucket = t.bucket,
            region = t.region,
            ca = t.ca.display(),
            prefix = self.prefix,
            alarms = self.alarms_file().display(),
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    fn spawn(&self, log_name: &str) -> Watcher {
        let log = std::fs::File::create(self.dir.path().join(log_name)).unwrap();
        let child = Command::new(RV)
            .args(["watch", "--config"])
            .arg(self.config_path())
            .env("AWS_ACCESS_KEY_ID", &self.server.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.server.secret_key)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Watcher(child)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    fn entries(&self) -> Vec<ManifestEntry> {
        // The daemon may be writing: a read that races a segment close is retried.
        for _ in 0..50 {
            if let Ok(e) = manifest::read_entries(&self.state().join("manifest")) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        manifest::read_entries(&self.state().join("manifest")).unwrap()
    }

    fn alarms(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.alarms_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `redovault status --json`: (exit code, report).
    fn status(&self) -> (i32, serde_json::Value) {
        let out = Command::new(RV)
            .args(["status", "--json", "--state-dir"])
            .arg(self.state())
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json: {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }

    fn store(&self) -> S3Store {
        S3Store::new(self.server.config(&self.server.bucket)).unwrap()
    }
}

/// `key = value` lines: `defaults`, except the keys that `extra` sets, then `extra`.
fn with_defaults(defaults: &[(&str, &str)], extra: &str) -> String {
    let set: Vec<&str> = extra
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let mut out: Vec<String> = defaults
        .iter()
        .filter(|(k, _)| !set.contains(k))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    out.push(extra.to_string());
    out.join("\n")
}

/// A running `redovault watch`; killed (SIGKILL) if the test ends without stopping it.
struct Watcher(Child);

impl std::ops::Deref for Watcher {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Watcher {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Sends SIGTERM and waits for a clean exit.
fn stop(child: &mut Child, w: &World, log: &str) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success(), "watcher exited with {s}:\n{}", w.log(log));
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "watcher did not stop:\n{}",
            w.log(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sha_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

/// Simulated archived logs (in `dir/archive`), `n` switches of `log_size` bytes.
fn sim_logs(dir: &Path, n: u64, log_size: u64, seed: u64) -> Vec<PathBuf> {
    let mut c = SimConfig::new(dir);
    c.log_size = log_size;
    c.switches = Some(n);
    c.seed = seed;
    simulate(c).unwrap().archived
}

/// Every entry's object is in WORM with its SHA-256 and size, locked in COMPLIANCE mode into
/// the future, as the version the entry names; the chain of sealed segments in WORM verifies
/// and ends where the local manifest ends.
async fn check_worm(w: &World, entries: &[ManifestEntry]) {
    let store = w.store();
    for e in entries {
        let info = store
            .head(&e.object_key, e.version_id.as_deref())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} not in WORM", e.object_key));
        assert_eq!(info.sha256, Some(e.sha256), "{}", e.object_key);
        assert_eq!(info.size, e.size);
        let lock = info.lock.expect("locked");
        assert_eq!(lock.mode, LockMode::Compliance);
        assert!(lock.retain_until > chrono::Utc::now());
        assert_eq!(
            e.object_key,
            format!("{}/archive/sha256/{}", w.prefix, e.sha256)
        );
        let mut body = Vec::new();
        store
            .get(&e.object_key, None, e.version_id.as_deref())
            .await
            .unwrap()
            .read_to_end(&mut body)
            .await
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&body)), e.sha256.hex());
    }
    // Exactly one object per shipped log.
    let listed: BTreeSet<String> = store
        .list(&format!("{}/archive/", w.prefix))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let expected: BTreeSet<String> = entries.iter().map(|e| e.object_key.clone()).collect();
    assert_eq!(
        listed, expected,
        "objects in WORM = entries of the manifest"
    );
    // The sealed manifest segments chain from the genesis to the last entry.
    let segs = store
        .list(&format!("{}/manifest/", w.prefix))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for s in &segs {
        let info = store.head(&s.key, None).await.unwrap().unwrap();
        assert_eq!(
            info.lock.expect("segment locked").mode,
            LockMode::Compliance
        );
        let mut b = Vec::new();
        store
            .get(&s.key, None, None)
            .await
            .unwrap()
            .read_to_end(&mut b)
            .await
            .unwrap();
        assert!(
            s.key
                .ends_with(&format!("-{}.jsonl", hex::encode(Sha256::digest(&b)))),
            "{}: the key names the segment's SHA-256",
            s.key
        );
        bodies.push((s.key.clone(), b));
    }
    let end = verify_segments(bodies.iter().map(|(k, b)| (k.as_str(), b.as_slice())))
        .unwrap_or_else(|e| panic!("sealed chain: {e}"));
    let last = entries.last().unwrap();
    assert_eq!(
        end.next_index,
        last.index + 1,
        "sealed through the last entry"
    );
    assert_eq!(end.prev, last.hash());
}

/// Every log exactly once, sequences 1..=n of thread 1, each entry's SHA-256 that of the file.
fn check_entries(entries: &[ManifestEntry], n: u32, files: &[PathBuf]) {
    assert_eq!(entries.len(), n as usize, "one entry per log");
    let seqs: BTreeSet<u32> = entries.iter().map(|e| e.sequence.0).collect();
    assert_eq!(
        seqs,
        (1..=n).collect::<BTreeSet<u32>>(),
        "each sequence once"
    );
    let ids: HashSet<_> = entries.iter().map(|e| e.identity()).collect();
    assert_eq!(ids.len(), entries.len());
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let e = entries
            .iter()
            .find(|e| e.file_name == name)
            .unwrap_or_else(|| panic!("{name} not in the manifest"));
        assert_eq!(e.sha256.hex(), sha_file(f), "{name}");
        assert_eq!(e.size, std::fs::metadata(f).unwrap().len());
        assert!(e.next_scn > e.first_scn);
    }
}

fn metrics_text(status: &serde_json::Value) -> String {
    use std::io::{Read as _, Write as _};
    let addr = status["status"]["metrics_addr"]
        .as_str()
        .expect("metrics address");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn watcher_ships_what_simulate_archives_into_worm_with_a_valid_manifest() {
    let Some(w) = World::new("watch-sim") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "", "");
    let mut child = w.spawn("watch.log");
    // The simulated Oracle archives 12 logs while the watcher runs (ARCn-style: temporary
    // name, then rename).
    let sim = Command::new(&crate::netkit::bins().redovault)
        .args(["simulate", "--dir"])
        .arg(w.dir.path().join("oracle"))
        .args([
            "--log-size",
            "128K",
            "--switches",
            "12",
            "--rate",
            "1M",
            "--seed",
            "4",
        ])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    wait_for("12 logs in the manifest", Duration::from_secs(60), || {
        w.entries().len() == 12
    })
    .await;
    wait_for("status shows them", Duration::from_secs(10), || {
        w.status().1["status"]["manifest"]["entries"] == 12
    })
    .await;
    let (code, st) = w.status();
    assert_eq!(code, 0, "healthy: {st:#}");
    assert_eq!(st["daemon"], "running");
    let t = &st["threads"][0];
    assert_eq!(t["last_shipped"]["sequence"], 12, "{st:#}");
    assert_eq!(t["safe_to_delete_through"], 12);
    assert_eq!(t["gaps"], serde_json::json!([]));
    assert_eq!(st["status"]["backlog"]["files"], 0);
    let m = metrics_text(&st);
    assert_eq!(metric(&m, "redovault_watcher_shipped_files_total"), 12.0);
    assert_eq!(metric(&m, "redovault_watcher_backlog_files"), 0.0);
    assert!(metric(&m, "redovault_watcher_upload_duration_seconds_count") >= 12.0);
    assert!(metric(&m, "redovault_watcher_last_success_timestamp_seconds") > 1.7e9);
    assert_eq!(metric(&m, "redovault_watcher_live_gap_sequences"), 0.0);
    // The archive destination's file system, as statvfs sees it (ORA-00257 alerts).
    let dir = w.archive().display().to_string();
    let free = metric(
        &m,
        &format!("redovault_watcher_destination_free_bytes{{dir=\"{dir}\"}}"),
    );
    let size = metric(
        &m,
        &format!("redovault_watcher_destination_size_bytes{{dir=\"{dir}\"}}"),
    );
    assert!(free > 0.0 && free <= size, "free {free} of {size}");
    // The simulator writes each archived copy at once (then renames it): whether the watcher
    // catches one while it is written is a race; a slow ARCn-style arrival is checked below.
    let followed = metric(&m, "redovault_watcher_validated_while_written_total");
    eprintln!("validated while written: {followed} of 12");
    // One process per state directory: a push beside the running watcher is refused.
    let out = Command::new(RV)
        .args(["push", "--store-dir"])
        .arg(w.dir.path().join("elsewhere"))
        .arg("--state-dir")
        .arg(w.state())
        .arg(w.archive().join("arch1_1_1219190400.dbf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another redovault process")
            && err.contains(&format!("pid {}", child.id())),
        "{err}"
    );
    stop(&mut child, &w, "watch.log");

    let files: Vec<PathBuf> = std::fs::read_dir(w.archive())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 12, "the watcher never touches the archive");
    let entries = w.entries();
    check_entries(&entries, 12, &files);
    check_worm(&w, &entries).await;
    assert!(w.alarms().is_empty(), "no alarm: {:?}", w.alarms());
    let (_, st) = w.status();
    assert_eq!(st["daemon"], "stopped");
    assert_eq!(
        st["status"]["manifest"]["sealed_through"], 12,
        "sealed at shutdown"
    );
    // Restarted with nothing new to ship: the last shipment is the manifest's last entry,
    // not zero (else "nothing shipped for an hour" would fire at every restart).
    let mut child = w.spawn("watch2.log");
    wait_for(
        "status of the restarted watcher",
        Duration::from_secs(20),
        || w.status().1["daemon"] == "running",
    )
    .await;
    let last = entries.last().unwrap();
    let shipped = chrono::DateTime::parse_from_rfc3339(&last.shipped_at).unwrap();
    let m = metrics_text(&w.status().1);
    assert_eq!(
        metric(&m, "redovault_watcher_last_success_timestamp_seconds"),
        shipped.timestamp_millis() as f64 / 1000.0
    );
    assert_eq!(metric(&m, "redovault_watcher_shipped_files_total"), 0.0);
    // ARCn writes an archived copy over time under a temporary name, then renames it: the
    // watcher reads it while it is written and validates it without a second pass. Log 13,
    // made by the simulator elsewhere (continuing log 12's SCNs), written 4 KiB every 10 ms.
    let scratch = w.dir.path().join("scratch");
    let sim = Command::new(&crate::netkit::bins().redovault)
        .args(["simulate", "--dir"])
        .arg(&scratch)
        .args([
            "--log-size",
            "128K",
            "--switches",
            "1",
            "--rate",
            "1M",
            "--seed",
            "4",
        ])
        .args(["--db-id", &last.db_id.to_string()])
        .args(["--start-sequence", "13"])
        .args(["--start-scn", &last.next_scn.0.to_string()])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let made = std::fs::read_dir(scratch.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "dbf"))
        .expect("log 13 archived");
    let bytes = std::fs::read(&made).unwrap();
    let name = made.file_name().unwrap().to_string_lossy().into_owned();
    let tmp = w.archive().join(format!("{name}.tmp"));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).unwrap();
        for piece in bytes.chunks(4096) {
            f.write_all(piece).unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        f.sync_all().unwrap();
    }
    std::fs::rename(&tmp, w.archive().join(&name)).unwrap();
    wait_for("log 13 in the manifest", Duration::from_secs(60), || {
        w.entries().len() == 13
    })
    .await;
    let m = metrics_text(&w.status().1);
    assert_eq!(
        metric(&m, "redovault_watcher_validated_while_written_total"),
        1.0,
        "log 13 was validated while ARCn wrote it"
    );
    stop(&mut child, &w, "watch2.log");
}

#[tokio::test(flavor = "multi_thread")]
async fn push_ships_the_real_oracle_logs_like_the_watcher() {
    let Some(w) = World::new("push-real") else {
        return;
    };
    let t = &w.server;
    let Some(real) = crate::oracle_real::free23() else {
        return;
    };
    let fixtures: Vec<PathBuf> = ["arch1_15_1224959854.dbf", "arch1_16_1224959854.dbf"]
        .iter()
        .map(|n| real.join(n))
        .collect();
    let push = |files: &[PathBuf]| {
        Command::new(RV)
            .arg("push")
            .args(["--endpoint", t.endpoint.as_str(), "--bucket", &t.bucket])
            .args(["--prefix", &w.prefix, "--region", &t.region, "--path-style"])
            .arg("--ca-file")
            .arg(&t.ca)
            .args(["--retention", "1h", "--state-dir"])
            .arg(w.state())
            .args(files)
            .env("AWS_ACCESS_KEY_ID", &t.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &t.secret_key)
            .output()
            .unwrap()
    };
    let out = push(&fixtures);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["outcome"], "shipped", "{l}");
    }
    let entries = w.entries();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries.iter().map(|e| e.sequence.0).collect::<Vec<_>>(),
        vec![15, 16]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.db_name == "FREE" && e.thread.0 == 1)
    );
    for (e, f) in entries.iter().zip(&fixtures) {
        assert_eq!(e.sha256.hex(), sha_file(f));
    }
    // Pushed again: recognised, nothing new.
    let again = push(&fixtures);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .lines()
            .all(|l| l.contains("\"outcome\":\"already_shipped\"")),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(w.entries().len(), 2);
    check_worm(&w, &entries).await;
    // A file that is not a complete log is refused with its block, exit 2.
    let bad = w.dir.path().join("arch1_17_1224959854.dbf");
    let bytes = std::fs::read(&fixtures[0]).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2 + 100]).unwrap();
    let out = push(std::slice::from_ref(&bad));
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "refused");
    assert_eq!(v["block"], (bytes.len() / 2 + 100) / 512);
    assert_eq!(w.entries().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_survives_kill_9_at_random_moments_without_losing_or_duplicating() {
    const LOGS: u32 = 110;
    const KILLS: usize = 36;
    let Some(w) = World::new("watch-crash") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "parallel_uploads = 3", "");
    let staging = w.dir.path().join("staging");
    let logs = sim_logs(&staging, u64::from(LOGS), 64 * 1024, 11);
    assert_eq!(logs.len(), LOGS as usize);
    // ARCn-style arrivals (rename into the directory) spread over the kill loop.
    let archive = w.archive();
    let feeder_logs = logs.clone();
    let feeder = std::thread::spawn(move || {
        for l in feeder_logs {
            std::fs::rename(&l, archive.join(l.file_name().unwrap())).unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    let mut rng = rand::thread_rng();
    let mut seen_counts = Vec::new();
    for i in 0..KILLS {
        let mut child = w.spawn(&format!("run{i}.log"));
        let pause = rng.gen_range(50..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        seen_counts.push(w.entries().len());
    }
    feeder.join().unwrap();
    // Progress was made between kills, and the manifest was never broken by a kill.
    assert!(
        seen_counts.windows(2).all(|p| p[0] <= p[1]),
        "{seen_counts:?}"
    );
    let mid_run = seen_counts.iter().filter(|&&n| n < LOGS as usize).count();
    assert!(
        mid_run >= 30,
        "at least 30 kills landed before every log was shipped: {seen_counts:?}"
    );
    // How many uploads a later run found already in WORM (a crash between upload and manifest
    // append, repaired by the idempotent put): informative, it depends on where kills landed.
    let repaired: usize = (0..KILLS)
        .map(|i| {
            w.log(&format!("run{i}.log"))
                .matches("\"already_present\":true")
                .count()
        })
        .sum();
    eprintln!("entries after each kill: {seen_counts:?}; uploads found already stored: {repaired}");
    let mut child = w.spawn("final.log");
    wait_for("every log shipped", Duration::from_secs(120), || {
        w.entries().len() == LOGS as usize
    })
    .await;
    stop(&mut child, &w, "final.log");
    let files: Vec<PathBuf> = logs
        .iter()
        .map(|l| w.archive().join(l.file_name().unwrap()))
        .collect();
    let entries = w.entries();
    check_entries(&entries, LOGS, &files);
    check_worm(&w, &entries).await;
    let (_, st) = w.status();
    assert_eq!(st["threads"][0]["gaps"], serde_json::json!([]));
    assert_eq!(st["threads"][0]["safe_to_delete_through"], LOGS);
    assert!(w.alarms().is_empty(), "no alarm: {:?}", w.alarms());
}

#[tokio::test(flavor = "multi_thread")]
async fn watcher_rides_out_a_60_s_store_outage_and_drains_the_backlog() {
    let Some(w) = World::new("watch-outage") else {
        return;
    };
    let upstream = format!(
        "{}:{}",
        w.server.endpoint.host_str().unwrap(),
        w.server.endpoint.port().unwrap()
    )
    .parse()
    .unwrap();
    let proxy = TcpProxy::start(upstream).await;
    w.write_config(
        &format!("https://127.0.0.1:{}", proxy.addr.port()),
        "backlog_alarm_age = \"20s\"",
        "request_timeout = \"5s\"\nconnect_timeout = \"2s\"\nmax_attempts = 3",
    );
    let staging = w.dir.path().join("staging");
    let logs = sim_logs(&staging, 30, 128 * 1024, 21);
    let arrive = |l: &PathBuf| {
        std::fs::rename(l, w.archive().join(l.file_name().unwrap())).unwrap();
    };
    let mut child = w.spawn("watch.log");
    for l in &logs[..10] {
        arrive(l);
    }
    wait_for("10 logs shipped", Duration::from_secs(60), || {
        w.entries().len() == 10
    })
    .await;

    proxy.cut();
    let cut_at = Instant::now();
    let mut saw_backlog_in_status = false;
    let mut saw_backlog_in_metrics = false;
    let mut i = 10;
    while cut_at.elapsed() < Duration::from_secs(60) {
        if i < logs.len() && cut_at.elapsed() > Duration::from_secs(2 * (i as u64 - 10)) {
            arrive(&logs[i]);
            i += 1;
        }
        let (_, st) = w.status();
        let backlog = st["status"]["backlog"]["files"].as_u64().unwrap_or(0);
        if backlog > 0 {
            saw_backlog_in_status = true;
            assert!(st["status"]["backlog"]["bytes"].as_u64().unwrap() > 0);
            let m = metrics_text(&st);
            if metric(&m, "redovault_watcher_backlog_files") > 0.0
                && metric(&m, "redovault_watcher_oldest_unshipped_age_seconds") > 0.0
            {
                saw_backlog_in_metrics = true;
            }
        }
        // Nothing is reported shipped while the store cannot confirm it.
        assert_eq!(w.entries().len(), 10, "no entry without WORM");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(i, logs.len(), "all logs arrived during the outage");
    assert!(saw_backlog_in_status && saw_backlog_in_metrics);
    let (code, st) = w.status();
    assert_eq!(code, 2, "unhealthy during the outage");
    assert_eq!(st["status"]["backlog"]["files"], 20, "{st:#}");
    assert!(st["status"]["backlog"]["failing"].as_u64().unwrap() > 0);
    // The last error is an upload's, or the periodic seal's when it came last: both talk
    // to the store that is down.
    let kind = st["status"]["last_error"]["kind"].as_str().unwrap();
    assert!(kind.starts_with("upload_") || kind == "seal", "{st:#}");
    let m = metrics_text(&st);
    let upload_errors: f64 = m
        .lines()
        .filter(|l| l.starts_with("redovault_watcher_errors_total{kind=\"upload_"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(upload_errors > 0.0, "{m}");
    let kinds: HashSet<String> = w
        .alarms()
        .iter()
        .map(|a| a["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains("upload_failing"), "{kinds:?}");
    assert!(kinds.contains("backlog"), "{kinds:?}");

    proxy.restore();
    wait_for("the backlog drains", Duration::from_secs(90), || {
        w.entries().len() == 30
    })
    .await;
    wait_for("status shows no backlog", Duration::from_secs(10), || {
        w.status().1["status"]["backlog"]["files"] == 0
    })
    .await;
    stop(&mut child, &w, "watch.log");
    let files: Vec<PathBuf> = logs
        .iter()
        .map(|l| w.archive().join(l.file_name().unwrap()))
        .collect();
    let entries = w.entries();
    check_entries(&entries, 30, &files);
    check_worm(&w, &entries).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_and_truncated_logs_raise_alarms_naming_file_and_block_and_are_quarantined() {
    let Some(w) = World::new("watch-damaged") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "", "");
    let staging = w.dir.path().join("staging");
    let logs = sim_logs(&staging, 4, 128 * 1024, 31);
    for l in &logs[..2] {
        std::fs::copy(l, w.archive().join(l.file_name().unwrap())).unwrap();
    }
    // Sequence 3 with one flipped bit in block 20; sequence 4 cut inside block 30.
    let flipped = w.archive().join(logs[2].file_name().unwrap());
    let mut b = std::fs::read(&logs[2]).unwrap();
    b[20 * 512 + 200] ^= 0x10;
    std::fs::write(&flipped, &b).unwrap();
    let truncated = w.archive().join(logs[3].file_name().unwrap());
    let b = std::fs::read(&logs[3]).unwrap();
    std::fs::write(&truncated, &b[..30 * 512 + 100]).unwrap();
    // A datafile copy that the include pattern `*.dbf` matches: not redo, left alone.
    let datafile = w.archive().join("users01.dbf");
    std::fs::write(&datafile, redovault_drill::simulate::datafile_copy(16)).unwrap();

    let mut child = w.spawn("watch.log");
    wait_for("two damaged_log alarms", Duration::from_secs(60), || {
        w.alarms()
            .iter()
            .filter(|a| a["kind"] == "damaged_log")
            .count()
            == 2
    })
    .await;
    let alarms = w.alarms();
    let find = |f: &Path| {
        alarms
            .iter()
            .find(|a| a["kind"] == "damaged_log" && a["file"] == f.display().to_string())
            .unwrap_or_else(|| panic!("no alarm for {}: {alarms:?}", f.display()))
            .clone()
    };
    let a = find(&flipped);
    assert_eq!(a["block"], 20);
    assert_eq!(a["severity"], "critical");
    assert!(a["message"].as_str().unwrap().contains("checksum"), "{a}");
    let a = find(&truncated);
    assert_eq!(a["block"], 30);
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("file ends inside block 30"),
        "{a}"
    );
    // Both are kept in WORM as evidence under their content hash.
    let store = w.store();
    for f in [&flipped, &truncated] {
        let key = format!("{}/quarantine/sha256/{}", w.prefix, sha_file(f));
        let mut found = None;
        for _ in 0..100 {
            found = store.head(&key, None).await.unwrap();
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let info = found.unwrap_or_else(|| panic!("{key} not in WORM"));
        assert_eq!(info.lock.unwrap().mode, LockMode::Compliance);
        assert_eq!(info.size, std::fs::metadata(f).unwrap().len());
    }
    wait_for(
        "status lists both as damaged and quarantined",
        Duration::from_secs(10),
        || {
            let (_, st) = w.status();
            st["status"]["damaged"]
                .as_array()
                .is_some_and(|d| d.len() == 2 && d.iter().all(|x| x["quarantine_key"].is_string()))
        },
    )
    .await;
    let (code, st) = w.status();
    assert_eq!(code, 2, "damaged logs make status unhealthy");
    assert_eq!(st["threads"][0]["safe_to_delete_through"], 2);
    // The datafile copy: one warning naming it and why, listed by status, not damage, and
    // nothing of it in WORM (no quarantine copy to keep for the bucket's retention).
    let alarms = w.alarms();
    let not_redo: Vec<_> = alarms
        .iter()
        .filter(|a| a["kind"] == "not_redo_log")
        .collect();
    assert_eq!(not_redo.len(), 1, "{alarms:?}");
    assert_eq!(not_redo[0]["file"], datafile.display().to_string());
    assert_eq!(not_redo[0]["severity"], "warning");
    assert!(
        not_redo[0]["message"]
            .as_str()
            .unwrap()
            .contains("block size 8192"),
        "{}",
        not_redo[0]
    );
    assert_eq!(
        st["status"]["not_redo"][0]["path"],
        datafile.display().to_string(),
        "{st}"
    );
    assert_eq!(st["status"]["damaged"].as_array().map(Vec::len), Some(2));
    let key = format!("{}/quarantine/sha256/{}", w.prefix, sha_file(&datafile));
    assert!(store.head(&key, None).await.unwrap().is_none(), "{key}");
    assert_eq!(
        store
            .list(&format!("{}/quarantine/", w.prefix))
            .await
            .unwrap()
            .len(),
        2,
        "only the two damaged logs are quarantined"
    );
    assert!(
        std::fs::metadata(&datafile).is_ok(),
        "the file is left where it was"
    );
    stop(&mut child, &w, "watch.log");
    // Never recorded as shipped.
    let entries = w.entries();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.sequence.0)
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2])
    );
    check_worm(&w, &entries).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replaced_log_raises_an_alarm_and_the_worm_copy_and_manifest_entry_stay() {
    let Some(w) = World::new("watch-replaced") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "", "");
    // Two runs of the same database with other seeds: the same log identity (thread 1,
    // sequence 1, same resetlogs id) and file name, other bytes.
    let a = sim_logs(&w.dir.path().join("run-a"), 1, 128 * 1024, 41).remove(0);
    let b = sim_logs(&w.dir.path().join("run-b"), 1, 128 * 1024, 42).remove(0);
    assert_eq!(a.file_name(), b.file_name());
    let (sha_a, sha_b) = (sha_file(&a), sha_file(&b));
    assert_ne!(sha_a, sha_b);
    let target = w.archive().join(a.file_name().unwrap());
    std::fs::copy(&a, &target).unwrap();
    let mut child = w.spawn("watch.log");
    wait_for("the original shipped", Duration::from_secs(30), || {
        w.entries().len() == 1
    })
    .await;
    let original = w.entries().remove(0);
    assert_eq!(original.sha256.hex(), sha_a);
    // Replaced in place (a temporary name, then a rename over it).
    let tmp = w.archive().join("replacement.tmp");
    std::fs::copy(&b, &tmp).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
    wait_for("a replaced_log alarm", Duration::from_secs(30), || {
        w.alarms().iter().any(|a| a["kind"] == "replaced_log")
    })
    .await;
    let alarm = w
        .alarms()
        .into_iter()
        .find(|a| a["kind"] == "replaced_log")
        .unwrap();
    assert_eq!(alarm["file"], target.display().to_string());
    assert_eq!(alarm["details"]["shipped_sha256"], sha_a);
    assert_eq!(alarm["details"]["found_sha256"], sha_b);
    assert_eq!(alarm["details"]["manifest_index"], 1);
    wait_for("status lists it", Duration::from_secs(10), || {
        w.status().1["status"]["replaced"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    })
    .await;
    stop(&mut child, &w, "watch.log");
    let entries = w.entries();
    assert_eq!(entries, vec![original.clone()], "manifest entry unchanged");
    check_worm(&w, &entries).await; // the WORM copy is the original, and only it
    // The replacement is still the file in place: the watcher never modifies the archive.
    assert_eq!(sha_file(&target), sha_b);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_removed_before_it_was_shipped_raises_an_alarm() {
    let Some(w) = World::new("watch-vanished") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "grace_period = \"1h\"", "");
    // A log still being written (shorter than its header declares) is waiting, not shipped.
    let l = sim_logs(&w.dir.path().join("staging"), 1, 128 * 1024, 51).remove(0);
    let f = w.archive().join(l.file_name().unwrap());
    let b = std::fs::read(&l).unwrap();
    std::fs::write(&f, &b[..b.len() / 2]).unwrap();
    let mut child = w.spawn("watch.log");
    wait_for(
        "the partial log waits in the backlog",
        Duration::from_secs(30),
        || w.status().1["status"]["backlog"]["incomplete"] == 1,
    )
    .await;
    assert!(w.alarms().is_empty());
    std::fs::remove_file(&f).unwrap();
    wait_for(
        "a vanished_unshipped alarm",
        Duration::from_secs(30),
        || {
            w.alarms()
                .iter()
                .any(|a| a["kind"] == "vanished_unshipped" && a["file"] == f.display().to_string())
        },
    )
    .await;
    stop(&mut child, &w, "watch.log");
    assert!(w.entries().is_empty());
}

/// Eight archived logs of a two-instance (RAC) database, threads 1 and 2 with sequences of
/// their own, made in `staging` and moved into `archive`, all but sequence 2 of thread 2
/// (held back: a gap once 3 is shipped).
pub(crate) fn rac_logs_with_a_gap(staging: &Path, archive: &Path) -> RacGap {
    let mut c = SimConfig::new(staging);
    c.threads = 2;
    c.log_size = 64 * 1024;
    c.switches = Some(8);
    c.seed = 61;
    let logs = simulate(c).unwrap().archived;
    assert_eq!(logs.len(), 8);
    let last_of = |t: u16| {
        logs.iter()
            .filter_map(|l| {
                let n = l.file_name()?.to_string_lossy().into_owned();
                let rest = n.strip_prefix(&format!("arch{t}_"))?;
                rest.split('_').next()?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or_else(|| panic!("no archived log of thread {t}"))
    };
    let (last1, last2) = (last_of(1), last_of(2));
    assert!(last2 >= 3, "thread 2 has sequences after 2");
    let held = logs
        .iter()
        .find(|l| {
            l.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("arch2_2_")
        })
        .unwrap()
        .clone();
    for l in logs.iter().filter(|l| **l != held) {
        std::fs::rename(l, archive.join(l.file_name().unwrap())).unwrap();
    }
    RacGap { last1, last2, held }
}

/// What [`rac_logs_with_a_gap`] made.
pub(crate) struct RacGap {
    /// The last sequence of thread 1.
    pub last1: u64,
    /// The last sequence of thread 2.
    pub last2: u64,
    /// Sequence 2 of thread 2, still in the staging directory.
    pub held: PathBuf,
}

#[tokio::test(flavor = "multi_thread")]
async fn gaps_are_reported_per_thread_as_soon_as_a_later_sequence_is_seen() {
    let Some(w) = World::new("watch-gaps") else {
        return;
    };
    w.write_config(w.server.endpoint.as_str(), "", "");
    let RacGap { last1, last2, held } =
        rac_logs_with_a_gap(&w.dir.path().join("staging"), &w.archive());
    let mut child = w.spawn("watch.log");
    wait_for("7 logs shipped", Duration::from_secs(60), || {
        w.entries().len() == 7
    })
    .await;
    let thread = |st: &serde_json::Value, t: u64| {
        st["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["thread"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no thread {t}: {st:#}"))
    };
    let (code, st) = w.status();
    assert_eq!(code, 2, "a gap makes status unhealthy");
    let t1 = thread(&st, 1);
    assert_eq!(t1["gaps"], serde_json::json!([]));
    assert_eq!(t1["safe_to_delete_through"], last1);
    let t2 = thread(&st, 2);
    assert_eq!(t2["gaps"], serde_json::json!([{"first": 2, "last": 2}]));
    assert_eq!(t2["safe_to_delete_through"], 1);
    assert_eq!(t2["last_shipped"]["sequence"], last2);
    let m = metrics_text(&w.status().1);
    assert_eq!(metric(&m, "redovault_watcher_gap_sequences"), 1.0);
    // It outlasts the grace period: an alarm naming the thread and sequence.
    wait_for("a gap alarm", Duration::from_secs(30), || {
        w.alarms().iter().any(|a| a["kind"] == "gap")
    })
    .await;
    let a = w.alarms().into_iter().find(|a| a["kind"] == "gap").unwrap();
    assert_eq!(a["details"]["thread"], 2);
    assert_eq!(
        (a["details"]["first"].clone(), a["details"]["last"].clone()),
        (2.into(), 2.into())
    );
    // The missing log arrives: the gap closes.
    std::fs::rename(&held, w.archive().join(held.file_name().unwrap())).unwrap();
    wait_for("8 logs shipped", Duration::from_secs(30), || {
        w.entries().len() == 8
    })
    .await;
    wait_for("no gap any more", Duration::from_secs(10), || {
        let (_, st) = w.status();
        thread(&st, 2)["safe_to_delete_through"] == last2 && st["status"]["gap_sequences"] == 0
    })
    .await;
    stop(&mut child, &w, "watch.log");
    let entries = w.entries();
    check_worm(&w, &entries).await;
}

#[test]
fn check_config_lists_every_problem_and_watch_refuses_to_start() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[watch]\ndirs = [\"rel\"]\nscan_interval = 5\nbogus = 1\n[store]\nkind = \"tape\"\n",
    )
    .unwrap();
    let out = Command::new(RV)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stdout);
    for want in [
        "watch.scan_interval: expected a duration string",
        "watch.bogus: unknown key",
        "store.kind: \"tape\"",
        "watch.dirs: rel is not an absolute path",
        "store.endpoint: required",
        "store.bucket: required",
        "FAILED, 6 problem(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let out = Command::new(RV)
        .args(["watch", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("watch.bogus: unknown key"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config/watcher.example.toml");
    let out = Command::new(RV)
        .arg("check-config")
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The logs of `dir` (not the restore's own record), by SHA-256 (names aside: logs restored
/// without a sealed manifest get Oracle's `%t_%s_%r.arc`).
fn contents(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "arc" || x == "dbf"))
        .map(|p| sha_file(&p))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_logs_keep_both_digests_and_come_back_byte_identical_sealed_or_not() {
    let Some(w) = World::new("watch-zstd") else {
        return;
    };
    w.write_config(
        w.server.endpoint.as_str(),
        "compress = \"zstd\"\ncompress_level = 1",
        "",
    );
    // No periodic seal: the logs stay shipped but unsealed until the graceful stop.
    let text = std::fs::read_to_string(w.config_path()).unwrap();
    std::fs::write(
        w.config_path(),
        text.replace("seal_interval = \"2s\"", "seal_interval = \"1h\""),
    )
    .unwrap();
    let mut child = w.spawn("watch.log");
    let sim = Command::new(&crate::netkit::bins().redovault)
        .args(["simulate", "--dir"])
        .arg(w.dir.path().join("oracle"))
        .args([
            "--log-size",
            "256K",
            "--switches",
            "6",
            "--rate",
            "2M",
            "--seed",
            "9",
        ])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    wait_for("6 logs in the manifest", Duration::from_secs(60), || {
        w.entries().len() == 6
    })
    .await;
    let originals = contents(&w.archive());
    assert_eq!(originals.len(), 6);
    // Each entry: the file's size and SHA-256, and the object's, smaller, under its own key.
    let store = w.store();
    for e in w.entries() {
        let stored = e
            .stored
            .clone()
            .unwrap_or_else(|| panic!("not compressed: {e:?}"));
        assert_eq!(stored.encoding, manifest::Encoding::Zstd);
        assert!(stored.size < e.size / 2, "{} of {}", stored.size, e.size);
        assert!(originals.contains(&e.sha256.hex()), "{e:?}");
        assert!(
            e.object_key
                .ends_with(&format!("{}.zstd-1", e.sha256.hex())),
            "{}",
            e.object_key
        );
        let info = store
            .head(&e.object_key, e.version_id.as_deref())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((info.size, info.sha256), (stored.size, Some(stored.sha256)));
        assert_eq!(info.lock.map(|l| l.mode), Some(LockMode::Compliance));
    }
    assert_eq!(
        std::fs::read_dir(w.state().join("spool")).unwrap().count(),
        0,
        "spool left over"
    );
    // The host dies before a seal: every log is in WORM, in no sealed manifest.
    child.kill().unwrap();
    child.wait().unwrap();

    let t = &w.server;
    let config = w.dir.path().join("verifier.toml");
    std::fs::write(
        &config,
        format!(
            "{}[verify]\nmin_retention = \"1h\"\ndeep = \"all\"\nstate_dir = \"{}\"\n",
            crate::netkit::verifier_store_section(t, &w.prefix),
            w.dir.path().join("verifier-state").display(),
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let verifier = &crate::netkit::bins().verifier;
    let run =
        |args: &[&str]| crate::netkit::run_with_keys(verifier, args, &t.access_key, &t.secret_key);
    let (code, out) = run(&["verify", "--config", cfg, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"unsealed_logs\": 6"), "{out}");
    assert!(out.contains("\"hash_check\": \"rehashed\""), "{out}");
    let unsealed = w.dir.path().join("restore-unsealed");
    let (code, out) = run(&[
        "restore",
        "archive",
        "--config",
        cfg,
        "--dest",
        unsealed.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        contents(&unsealed),
        originals,
        "unsealed logs restored byte-identical"
    );

    // Restarted and stopped: the manifest is sealed; deep verification decodes every object
    // and restore gives back the files under their own names.
    // The killed watcher's last status still says "running" for a while: wait for the new
    // process's own (its pid), else the stop could come before its signal handler is set.
    let mut child = w.spawn("watch2.log");
    let pid = u64::from(child.id());
    wait_for("restart", Duration::from_secs(30), || {
        let st = w.status().1;
        st["daemon"] == "running" && st["status"]["pid"] == pid
    })
    .await;
    stop(&mut child, &w, "watch2.log");
    let (code, out) = run(&["verify", "--config", cfg, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"manifest_entries\": 6"), "{out}");
    assert!(out.contains("\"unsealed_logs\": 0"), "{out}");
    let sealed = w.dir.path().join("restore-sealed");
    let (code, out) = run(&[
        "restore",
        "archive",
        "--config",
        cfg,
        "--dest",
        sealed.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    for e in w.entries() {
        assert_eq!(
            std::fs::read(sealed.join(&e.file_name)).unwrap(),
            std::fs::read(w.archive().join(&e.file_name)).unwrap(),
            "{}",
            e.file_name
        );
    }
}
