//! Shared harness of the extractor–collector end-to-end tests: the real binaries
//! (`redovault-extractor`, `redovault-collector`, `redovault-verifier`, `redovault-drill`,
//! built once per test run next to `redovault`), a throwaway PKI and key file, configuration files, a live simulated
//! database, metrics scraping, the collector's commit index and rebuild through its CLI,
//! and a TCP proxy that can cut the traffic (for outage tests).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use redovault::crypto::tls::{self, PkiPaths};
use redovault_drill::drill::procs::Daemon;
use redovault_drill::simulate::journal::{JournalEntry, parse_journal};
use redovault_drill::simulate::{Rate, SimConfig, Simulator, Summary};
use sha2::{Digest, Sha256};

/// The role binaries.
#[derive(Debug)]
pub struct Bins {
    /// `redovault-extractor`.
    pub extractor: PathBuf,
    /// `redovault-collector`.
    pub collector: PathBuf,
    /// `redovault-verifier`.
    pub verifier: PathBuf,
    pub redovault: PathBuf,
}

/// Builds `redovault-extractor`, `redovault-collector`, `redovault-verifier` and
/// `redovault-drill` (which `redovault drill` and `redovault simulate` run) once per test run,
/// in the target directory and profile of the `redovault` binary under test, and returns their
/// paths.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let me = PathBuf::from(env!("CARGO_BIN_EXE_redovault"));
        let profile_dir = me.parent().expect("bin dir").to_path_buf();
        let target = profile_dir.parent().expect("target dir").to_path_buf();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "-p",
            "redovault-extractor",
            "-p",
            "redovault-collector",
            "-p",
            "redovault-verifier",
            "-p",
            "redovault-drill",
            "--bins",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        // What cargo set for this test process (package name, manifest dir...) is not the
        // outer build's environment: build scripts that watch such variables (ring's)
        // would be rebuilt, and then again by the next outer build.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            let set_by_cargo_test = [
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
                "CARGO_MANIFEST_",
            ]
            .iter()
            .any(|p| k.starts_with(p))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&k.as_ref());
            if set_by_cargo_test {
                cmd.env_remove(k.as_ref());
            }
        }
        if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "cargo build of the role binaries failed");
        Bins {
            extractor: profile_dir.join("redovault-extractor"),
            collector: profile_dir.join("redovault-collector"),
            verifier: profile_dir.join("redovault-verifier"),
            redovault: me,
        }
    })
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A seed for a crash test's random moments (from the clock), printed so that a failing
/// run can be looked at again.
pub fn crash_seed() -> u64 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    eprintln!("crash test seed {s}");
    s
}

/// Logs of the test itself.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("redovault=info,e2e=info")
        .try_init();
}

/// A child process whose output goes to a log file; killed when dropped (the drill's
/// [`Daemon`], with the test's defaults: `RUST_LOG=info`, no backtraces).
#[derive(Debug)]
pub struct Proc {
    d: Daemon,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl Proc {
    /// Starts `bin ARGS` with its output appended to `log`.
    pub fn spawn(name: &str, bin: &Path, args: &[&str], log: &Path) -> Proc {
        Proc::spawn_env(name, bin, args, &[], log)
    }

    /// [`Proc::spawn`] with more environment variables (S3 keys).
    pub fn spawn_env(
        name: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Proc {
        let mut vars = vec![("RUST_LOG", "info"), ("RUST_BACKTRACE", "0")];
        vars.extend_from_slice(env);
        let d = Daemon::start(name, bin, args, &vars, log)
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Proc {
            d,
            log: log.to_path_buf(),
        }
    }

    /// Sends `signal` (`STOP`, `CONT`...).
    pub fn signal(&self, signal: &str) {
        self.d.signal(signal).unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGKILL, and reap it.
    pub fn kill9(self) {
        self.d.kill9();
    }

    /// SIGTERM, and waits for the exit (at most `within`); returns whether it exited 0.
    pub fn terminate(self, within: Duration) -> bool {
        self.d.terminate(within)
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        self.d.running()
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Output of a finished command, with its log on failure.
pub fn run_ok(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}): {}{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `[store]` section of a verifier configuration for the test server `t` under `prefix`.
pub fn verifier_store_section(t: &redovault_drill::testserver::TestServer, prefix: &str) -> String {
    format!(
        "[store]\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\npath_style = true\n\
         ca_file = \"{}\"\nprefix = \"{prefix}\"\n",
        t.endpoint,
        t.bucket,
        t.region,
        t.ca.display(),
    )
}

/// Runs `bin` with `args` and these S3 keys (no session token, no `RUST_LOG` from outside):
/// its exit code and its stdout followed by its stderr.
pub fn run_with_keys(
    bin: &Path,
    args: &[&str],
    access_key: &str,
    secret_key: &str,
) -> (Option<i32>, String) {
    let out = Command::new(bin)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every sample of a Prometheus endpoint: `name{labels}` → value.
pub fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return out;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .is_err()
    {
        return out;
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    for line in body.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some((k, v)) = line.rsplit_once(' ')
            && let Ok(v) = v.parse::<f64>()
        {
            out.insert(k.to_string(), v);
        }
    }
    out
}

/// One sample of a per-stream metric.
pub fn stream_metric(addr: SocketAddr, name: &str, stream: &str) -> Option<f64> {
    scrape(addr)
        .get(&format!("{name}{{stream=\"{stream}\"}}"))
        .copied()
}

/// Waits until `f` is true, polling every `every`; panics with `what` after `within`.
pub fn wait_until(what: &str, within: Duration, every: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(every);
    }
}

/// A test world: a temporary directory with a PKI, a collector key file, a simulated
/// database directory and configuration files for both roles.
#[derive(Debug)]
pub struct World {
    /// The temporary directory (removed on drop).
    pub tmp: tempfile::TempDir,
    /// The PKI (CA, collector and extractor certificates).
    pub pki: PkiPaths,
    /// The collector's key file.
    pub keys: PathBuf,
    /// The simulated database.
    pub sim: PathBuf,
    /// The collector's store.
    pub store: PathBuf,
    /// The collector's listening port.
    pub port: u16,
    /// The collector's metrics port.
    pub collector_metrics: u16,
    /// The extractor's metrics port.
    pub extractor_metrics: u16,
    /// Online groups of the simulated database.
    pub groups: u32,
    /// zstd on the link (`[link] compress` of the extractor) and in the collector's
    /// segments and WORM pieces (`[store] compress`): set by the tests that run compressed.
    pub compress: bool,
}

impl World {
    /// A new world.
    pub fn new(groups: u32) -> World {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let pki_dir = root.join("pki");
        fs::create_dir_all(&pki_dir).unwrap();
        let pki = tls::generate_pki(&pki_dir).expect("PKI");
        let keys = root.join("collector.keys");
        let key = redovault::crypto::keys::random_key_hex();
        fs::write(
            &keys,
            format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", &*key),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
        World {
            sim: root.join("db"),
            store: root.join("store"),
            tmp,
            pki,
            keys,
            port: free_port(),
            collector_metrics: free_port(),
            extractor_metrics: free_port(),
            groups,
            compress: false,
        }
    }

    /// A path in the world.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The collector's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The collector's metrics endpoint.
    pub fn collector_metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.collector_metrics))
    }

    /// The extractor's metrics endpoint.
    pub fn extractor_metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.extractor_metrics))
    }

    /// Writes the collector's configuration (`extra` is appended) and returns its path.
    pub fn collector_config(&self, extra: &str) -> PathBuf {
        let p = self.path("collector.toml");
        let text = format!(
            r#"[listen]
address = "127.0.0.1:{port}"
max_connections = 32
[tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
[link]
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "2s"
[store]
dir = "{store}"
key_file = "{keys}"
segment_size = "256K"
chunk_size = "64K"
{compress}[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
{extra}"#,
            port = self.port,
            cert = self.pki.server_cert.display(),
            key = self.pki.server_key.display(),
            ca = self.pki.ca.display(),
            store = self.store.display(),
            keys = self.keys.display(),
            mport = self.collector_metrics,
            compress = self.compress_keys(),
        );
        fs::write(&p, text).unwrap();
        p
    }

    /// The keys that turn zstd on (level 3) in `[link]` of the extractor and `[store]` of
    /// the collector, when the world runs compressed.
    fn compress_keys(&self) -> &'static str {
        if self.compress {
            "compress = \"zstd\"\ncompress_level = 3\n"
        } else {
            ""
        }
    }

    /// Checks that the collector's segments hold the redo compressed: all of them together
    /// are smaller than `ratio` times the database's archived logs (which the store holds
    /// every byte of, and more, when the redo is stored raw).
    pub fn assert_stored_compressed(&self, ratio: f64) {
        fn size(dir: &Path) -> u64 {
            let Ok(rd) = fs::read_dir(dir) else { return 0 };
            rd.map(|e| e.unwrap())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() { size(&e.path()) } else { m.len() }
                })
                .sum()
        }
        let stored = size(&self.store.join("streams"));
        let archived = size(&self.sim.join("archive"));
        assert!(archived > 0, "archived logs");
        assert!(
            (stored as f64) < ratio * archived as f64,
            "compressed store: {stored} bytes of segments for {archived} bytes of archived logs"
        );
    }

    /// Writes the extractor's configuration, shipping to `port`, and returns its path.
    pub fn extractor_config(&self, port: u16, extra: &str) -> PathBuf {
        let collector = format!(
            "[collector]\naddress = \"127.0.0.1:{port}\"\nserver_name = \"localhost\"\n\
             extractor_id = \"redovault-extractor\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            ca = self.pki.ca.display(),
            cert = self.pki.client_cert.display(),
            key = self.pki.client_key.display(),
        );
        self.extractor_config_to(&collector, extra)
    }

    /// The `[[collector]]` item of a collector at `address` named `name`, with this
    /// world's PKI (its server certificate names `localhost`).
    pub fn collector_item(&self, name: &str, address: &str) -> String {
        format!(
            "[[collector]]\nname = \"{name}\"\naddress = \"{address}\"\nserver_name = \"localhost\"\n\
             extractor_id = \"redovault-extractor\"\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n",
            ca = self.pki.ca.display(),
            cert = self.pki.client_cert.display(),
            key = self.pki.client_key.display(),
        )
    }

    /// Writes the extractor's configuration with `collectors` (its `[collector]` or
    /// `[[collector]]` sections) and `extra`, and returns its path.
    pub fn extractor_config_to(&self, collectors: &str, extra: &str) -> PathBuf {
        let p = self.path("extractor.toml");
        let groups: String = (1..=self.groups)
            .map(|g| {
                format!(
                    "[[online.group]]\nmembers = [\"{}\"]\n",
                    self.sim.join(format!("online/redo_t1_g{g}.log")).display()
                )
            })
            .collect();
        let text = format!(
            r#"[online]
{groups}
[archive]
dirs = ["{arch}"]
[tail]
poll = "10ms"
archive_wait = "60s"
[state]
dir = "{state}"
{collectors}
[link]
window = "2M"
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "2s"
reconnect_min = "50ms"
reconnect_max = "500ms"
{compress}[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
{extra}"#,
            arch = self.sim.join("archive").display(),
            state = self.path("extractor-state").display(),
            mport = self.extractor_metrics,
            compress = self.compress_keys(),
        );
        fs::write(&p, text).unwrap();
        p
    }

    /// Starts the collector binary (log `collector.log`).
    pub fn start_collector(&self, cfg: &Path) -> Proc {
        self.start_collector_env(cfg, &[])
    }

    /// [`World::start_collector`] with more environment variables (its S3 keys), waiting
    /// until it listens.
    pub fn start_collector_env(&self, cfg: &Path, env: &[(&str, &str)]) -> Proc {
        let p = Proc::spawn_env(
            "collector",
            &bins().collector,
            &["--config", cfg.to_str().unwrap()],
            env,
            &self.path("collector.log"),
        );
        let addr = self.addr();
        wait_until(
            "the collector to listen",
            Duration::from_secs(30),
            Duration::from_millis(20),
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        );
        p
    }

    /// Starts the extractor binary (log `extractor.log`).
    pub fn start_extractor(&self, cfg: &Path) -> Proc {
        Proc::spawn(
            "extractor",
            &bins().extractor,
            &["--config", cfg.to_str().unwrap()],
            &self.path("extractor.log"),
        )
    }

    /// The simulation settings of this world.
    pub fn sim_config(&self, log_size: u64, rate: u64) -> SimConfig {
        let mut c = SimConfig::new(&self.sim);
        c.groups = self.groups;
        c.log_size = log_size;
        c.rate = Rate::BytesPerSec(rate);
        c.realtime = true;
        c
    }

    /// The stream name of the simulated database's thread 1.
    pub fn stream(&self, c: &SimConfig) -> String {
        format!("db{}-rl{}-t1", c.db_id, c.resetlogs_id())
    }

    /// The journal of the simulated database.
    pub fn journal(&self) -> Vec<JournalEntry> {
        parse_journal(&fs::read_to_string(self.sim.join("journal.jsonl")).unwrap_or_default())
            .expect("journal")
    }

    /// Lets the database run for `settle`, stops it, and waits (up to `within`) until the
    /// collector holds its last commit; returns the journal.
    pub fn stop_and_wait_for_last_commit(
        &self,
        db: LiveDb,
        stream: &str,
        settle: Duration,
        within: Duration,
    ) -> Vec<JournalEntry> {
        std::thread::sleep(settle);
        db.stop();
        let journal = self.journal();
        let last = journal
            .iter()
            .rev()
            .find(|e| !e.rollback)
            .expect("a commit in the journal")
            .scn;
        wait_until(
            "the collector to hold the journal's last commit",
            within,
            Duration::from_millis(100),
            || {
                stream_metric(
                    self.collector_metrics_addr(),
                    "redovault_collector_durable_scn",
                    stream,
                ) == Some(last as f64)
            },
        );
        journal
    }

    /// With the collector stopped: its commit index equals the journal's commits, and the
    /// rebuilt log of every `step`-th sequence and of the last one equals the source.
    /// Returns the commits, the sequences and how many were rebuilt.
    pub fn check_commits_and_rebuilds(
        &self,
        cfg: &Path,
        stream: &str,
        journal: &[JournalEntry],
        step: usize,
    ) -> (Vec<CommitRow>, Vec<u32>, usize) {
        let commits = self.collector_commits(cfg, stream);
        assert_same_commits(&commits, journal);
        let seqs: Vec<u32> = journal
            .iter()
            .filter(|e| !e.rollback)
            .map(|e| e.sequence)
            .collect::<std::collections::BTreeSet<u32>>()
            .into_iter()
            .collect();
        // Each rebuild opens the whole store: a sample, and the last log (CURRENT).
        let mut pick: Vec<u32> = seqs.iter().copied().step_by(step).collect();
        pick.extend(seqs.last());
        pick.dedup();
        for s in &pick {
            let report = self.rebuild(
                cfg,
                stream,
                Some(*s),
                &self.path(&format!("rebuilt-{s}.log")),
            );
            check_rebuild(self, &report, journal);
        }
        (commits, seqs, pick.len())
    }

    /// The collector's durable commits of `stream`, through its CLI (collector stopped).
    pub fn collector_commits(&self, cfg: &Path, stream: &str) -> Vec<CommitRow> {
        let out = run_ok(
            &bins().collector,
            &[
                "commits",
                "--config",
                cfg.to_str().unwrap(),
                "--stream",
                stream,
                "--json",
            ],
        );
        let v: Vec<serde_json::Value> = serde_json::from_str(&out).expect("commits JSON");
        v.iter()
            .map(|c| CommitRow {
                xid: c["xid"].as_str().unwrap().to_string(),
                scn: c["scn"].as_u64().unwrap(),
                sequence: c["sequence"].as_u64().unwrap() as u32,
                end_offset: c["end_offset"].as_u64().unwrap(),
            })
            .collect()
    }

    /// Rebuilds `stream` (log `sequence`, default the last commit's) into `out` through the
    /// collector's CLI; returns the JSON report.
    pub fn rebuild(
        &self,
        cfg: &Path,
        stream: &str,
        sequence: Option<u32>,
        out: &Path,
    ) -> serde_json::Value {
        let mut args = vec![
            "rebuild".to_string(),
            "--config".into(),
            cfg.to_str().unwrap().into(),
            "--stream".into(),
            stream.into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--json".into(),
        ];
        if let Some(s) = sequence {
            args.push("--sequence".into());
            args.push(s.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        serde_json::from_str(&run_ok(&bins().collector, &args)).expect("rebuild JSON")
    }

    /// The bytes of log `sequence` of thread 1 as the database wrote them, and whether they
    /// come from the archived copy: a complete log, whose headers (blocks 0 and 1: block
    /// count, next SCN) changed at the switch, after the extractor read them.
    pub fn source_log(&self, sequence: u32) -> (Vec<u8>, bool) {
        let g = (sequence - 1) % self.groups + 1;
        let online = fs::read(self.sim.join(format!("online/redo_t1_g{g}.log"))).unwrap();
        // The CURRENT log online: the very bytes the extractor read.
        let current = redovault_redo::analyze(&online).ok().is_some_and(|r| {
            r.header.sequence.0 == sequence && r.log_state == redovault_redo::LogState::Current
        });
        if current {
            return (online, false);
        }
        let arch = self.sim.join("archive");
        for e in fs::read_dir(&arch).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("arch1_{sequence}_")) && name.ends_with(".dbf") {
                return (fs::read(e.path()).unwrap(), true);
            }
        }
        panic!("log {sequence} is neither online nor archived");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A failed test keeps its directory (logs, store, simulated database) for a look.
        if std::thread::panicking() || std::env::var_os("REDOVAULT_E2E_KEEP").is_some() {
            let dir = std::mem::replace(&mut self.tmp, tempfile::tempdir().expect("tempdir"));
            eprintln!("test world kept in {}", dir.keep().display());
        }
    }
}

/// One durable commit as the collector lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRow {
    /// `usn.slot.sqn`.
    pub xid: String,
    /// Commit SCN.
    pub scn: u64,
    /// Log sequence.
    pub sequence: u32,
    /// End of the block holding the end of the commit record.
    pub end_offset: u64,
}

/// SHA-256 in hex.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The redo of an online log `restore online` rebuilt, as its record in
/// `restore-online.json` describes it: checks that the file is padded with zeros to the log's
/// full size (the default), as the header says, and returns the redo up to the cut.
pub fn rebuilt_redo(record: &serde_json::Value) -> Vec<u8> {
    let path = record["path"].as_str().expect("path");
    let mut file = std::fs::read(path).unwrap();
    let size = record["size"].as_u64().expect("size") as usize;
    let file_size = record["file_size"].as_u64().expect("file_size") as usize;
    assert_eq!(file.len(), file_size, "{path}: {record}");
    let header = redovault_redo::FileHeader::parse(&file).expect("a redo file header");
    let full = (header.block_count as usize + 1) * header.block_size as usize;
    assert_eq!(
        file_size, full,
        "{path}: padded to the size its header gives"
    );
    assert!(
        file[size..].iter().all(|b| *b == 0),
        "{path}: zeros after the cut at {size}"
    );
    file.truncate(size);
    file
}

/// A live simulated database on its own thread: steps at its rate until stopped.
pub struct LiveDb {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Summary>>,
}

impl LiveDb {
    /// Starts the simulator with `cfg` (the online logs exist when this returns).
    pub fn start(cfg: SimConfig) -> LiveDb {
        let sim = Simulator::start(cfg).expect("start the simulator");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sim = sim;
            while !flag.load(Ordering::Relaxed) {
                sim.step().expect("simulator step");
            }
            sim.finish().expect("simulator finish")
        });
        LiveDb {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it (flushing what LGWR buffered) and returns its summary.
    pub fn stop(mut self) -> Summary {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("simulator thread")
    }
}

impl Drop for LiveDb {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The journal's commits (not rollbacks), in order, as the collector lists them.
pub fn journal_commits(j: &[JournalEntry]) -> Vec<(String, u64, u32)> {
    j.iter()
        .filter(|e| !e.rollback)
        .map(|e| (e.xid.clone(), e.scn, e.sequence))
        .collect()
}

/// Checks that the collector's commits are exactly the journal's, in order: no gap, no
/// duplicate. Returns how many.
pub fn assert_same_commits(collector: &[CommitRow], journal: &[JournalEntry]) -> usize {
    let got: Vec<(String, u64, u32)> = collector
        .iter()
        .map(|c| (c.xid.clone(), c.scn, c.sequence))
        .collect();
    let want = journal_commits(journal);
    if got != want {
        let first = got
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "the collector's commits differ from the journal's at index {first}: collector has \
             {} commits ({:?}), journal {} ({:?})",
            got.len(),
            got.get(first),
            want.len(),
            want.get(first)
        );
    }
    got.len()
}

/// Checks a rebuild report against the source: the rebuilt file's bytes up to `size` are
/// the source log's, with that SHA-256; `inspect --json` of the rebuilt file lists exactly
/// the journal's entries of that log up to the last commit. Returns the sequence.
pub fn check_rebuild(world: &World, report: &serde_json::Value, journal: &[JournalEntry]) -> u32 {
    let seq = report["sequence"].as_u64().unwrap() as u32;
    let size = report["size"].as_u64().unwrap() as usize;
    let path = PathBuf::from(report["path"].as_str().unwrap());
    let rebuilt = fs::read(&path).unwrap();
    let (source, archived) = world.source_log(seq);
    assert!(source.len() >= size, "source shorter than the rebuilt log");
    // An archived copy has its own blocks 0 and 1 (block count, next SCN): compare after.
    let from = if archived { 2 * 512 } else { 0 };
    if let Some(i) = rebuilt[from..size]
        .iter()
        .zip(&source[from..size])
        .position(|(a, b)| a != b)
    {
        panic!(
            "log {seq}: the rebuilt log differs from the source at byte {} (size {size})",
            from + i
        );
    }
    if !archived {
        assert_eq!(
            report["sha256"].as_str().unwrap(),
            sha256_hex(&source[..size]),
            "the report's SHA-256 is the source prefix's"
        );
    }
    assert_eq!(
        report["sha256"].as_str().unwrap(),
        sha256_hex(&rebuilt[..size]),
        "the report's SHA-256 is the rebuilt file's"
    );
    assert!(
        rebuilt[size..].iter().all(|&b| b == 0),
        "only zeros past the cut"
    );
    // What a DBA sees: `redovault inspect --json` of the rebuilt log.
    let out = Command::new(&bins().redovault)
        .args(["inspect", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let seen: Vec<(String, u64, bool, u64, u64)> = v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["xid"].as_str().unwrap().to_string(),
                c["scn"].as_u64().unwrap(),
                c["rollback"].as_bool().unwrap(),
                c["block"].as_u64().unwrap(),
                c["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    let last_scn = report["last_commit"]["scn"].as_u64().unwrap();
    let last_xid = report["last_commit"]["xid"].as_str().unwrap();
    let in_seq: Vec<(String, u64, bool, u64, u64)> = journal
        .iter()
        .filter(|e| e.sequence == seq)
        .map(|e| {
            (
                e.xid.clone(),
                e.scn,
                e.rollback,
                u64::from(e.block),
                u64::from(e.offset),
            )
        })
        .collect();
    let cut = in_seq
        .iter()
        .position(|e| !e.2 && e.1 == last_scn && e.0 == last_xid)
        .expect("the last rebuilt commit is in the journal");
    assert!(
        seen.len() > cut && seen[..] == in_seq[..seen.len().min(in_seq.len())],
        "inspect of the rebuilt log lists exactly the journal's ends of log {seq} up to the \
         last commit ({} listed, the last commit is number {})",
        seen.len(),
        cut + 1
    );
    // Past the last commit, only rollbacks that end in the same block can be there.
    assert!(
        seen[cut + 1..].iter().all(|e| e.2),
        "no commit after the last acknowledged one"
    );
    seq
}

/// A TCP proxy on 127.0.0.1 that forwards to `target` and can cut the traffic: while cut,
/// no byte moves in either direction on existing connections and new connections are
/// accepted but never answered (a network partition); when restored, the connections that
/// lived through the cut are dropped and new ones are forwarded again.
pub struct Proxy {
    /// The proxy's address.
    pub addr: SocketAddr,
    cut: Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `target` on the current runtime.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let cut_now = *rx.borrow_and_update();
                    if cut_now {
                        // Held, silent, until the cut ends; then dropped.
                        until(&mut rx, false).await;
                        drop(client);
                        return;
                    }
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let pump = async {
                        tokio::select! {
                            _ = tokio::io::copy(&mut cr, &mut sw) => {}
                            _ = tokio::io::copy(&mut sr, &mut cw) => {}
                        }
                    };
                    tokio::select! {
                        () = pump => {}
                        () = until(&mut rx, true) => {
                            // Cut: nothing moves; at the end of the cut, drop both ends.
                            until(&mut rx, false).await;
                        }
                    }
                });
            }
        });
        Proxy {
            addr,
            cut: Arc::new(tx),
            task,
        }
    }

    /// Cuts (`true`) or restores (`false`) the traffic.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// Waits until the cut flag is `v`.
async fn until(rx: &mut tokio::sync::watch::Receiver<bool>, v: bool) {
    loop {
        let now = *rx.borrow_and_update();
        if now == v || rx.changed().await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
