//! `redovault drill`: the attack drill of the seed paper, end to end on one machine.
//!
//! A simulated Oracle database (five bank tables, at least ten transactions each, plus a
//! steady background workload) writes real-format redo while the whole of redovault runs:
//! the watcher ships every archived log into WORM (S3 Object Lock, or a local directory
//! standing in for it), the extractor streams the CURRENT online log over TLS 1.3 with mutual
//! authentication to the collector, which stores it encrypted and uploads it into WORM as
//! pieces sealed to an offline recovery key (`[worm]`, every second). Then the attack, as the 2011
//! and 2013 wipers did it with root on the database host: the database dies, the daemons are
//! killed, zeros are written over the online logs, the archive destination, the online logs
//! and redovault's own state and configuration are removed, and the database host's own S3
//! credentials are used to delete, overwrite and shorten the retention of the WORM objects
//! (each must be refused). Then recovery from nothing: a fresh install with read-only keys
//! verifies, restores the archived logs and the last-commit online log, and writes the
//! recovery script. The referee (ground truth copied outside every host after the crash, once
//! the wiper has killed the daemons and before it destroys any file) checks every archived log
//! byte for byte, the online log's prefix, every committed transaction in order, and per-table
//! row counts replayed from the recovered redo (every row change, streamed: the checks hold at
//! any log size); it prints RPO (commits lost, and their span of commit time), RTO (seconds
//! from the start of recovery to verified files), the redo rate the database achieved, and
//! each daemon's and recovery step's CPU seconds and peak RSS.
//!
//! What is timed from when: `last_commit_durable_after_ms` from the crash (the simulated
//! database stopped) to the first poll that sees the collector hold the last commit, with
//! nothing else in between (the last commit is read from the journal's tail); the wiper's
//! grace from the crash too; RTO from the start of the fresh install to the recovery script.
//! The referee's copy (hundreds of MB at bank rates) runs between the daemons' death and the
//! destruction of the files, inside none of these spans.
//!
//! `--wipe-backup-host` is the hard case: the wiper reaches the backup host at the moment the
//! database crashes, before the referee's copy, and nothing gets a grace period: the collector
//! and the database host's daemons are killed at once and the backup host's directory (store,
//! key ring, configuration, certificates) is removed. Recovery then has WORM and the recovery
//! team's key only: the online log is rebuilt from the pieces to the last commit in WORM, RPO
//! must stay within one seal interval plus the upload in flight, and the checks compare with the
//! journal up to the last recovered commit. Without the flag RPO must be 0.
//!
//! ```text
//!  setup ─► run (workload, daemons) ─► crash ─► last commit held? ─► kill -9 ─► referee snapshot
//!        ─► attack (dd, rm -rf, WORM attempts) ─► recovery ─► checks
//! ```
//!
//! The daemons are the real programs (`redovault watch`, `redovault-extractor`,
//! `redovault-collector`, `redovault-verifier`), run as child processes.

pub mod attack;
pub mod procs;
pub mod referee;
pub mod setup;
mod worm;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::simulate::journal::JournalEntry;
use crate::simulate::workload::{Table, default_tables};
use crate::simulate::{Rate, SimConfig, Simulator};
use crate::store::s3::Credentials;
use attack::Action;
use procs::{
    Daemon, ProcessUsage, Programs, Usage, free_port, run_measured, run_ok_measured, scrape,
    wait_for,
};
use referee::{Check, Recovered, TableCounts};
use setup::{Layout, Ports};

/// Why the drill could not run (a failed check is not an error: it is in the report).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The machine or the programs are not ready.
    #[error("set-up: {0}")]
    Setup(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A step failed (a daemon died, a tool failed).
    #[error("{0}")]
    Step(String),
}

impl DrillError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> DrillError {
        DrillError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The S3 server the drill uses instead of the local directory, with the three sets of keys
/// of a real deployment.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// HTTPS endpoint.
    pub endpoint: url::Url,
    /// The CA of the server's certificate.
    pub ca: PathBuf,
    /// Signing region.
    pub region: String,
    /// The bucket (Object Lock, default COMPLIANCE retention, the deploy/ bucket policy).
    pub bucket: String,
    /// The prefix the database host may write under.
    pub prefix: String,
    /// The database host's keys: create objects, read them back, nothing else.
    pub dbhost: Credentials,
    /// The verifier's keys: read only.
    pub verifier: Credentials,
    /// The collector's keys: create its pieces under `prefix/streams/`, nothing else.
    pub collector: Credentials,
}

impl S3Target {
    /// From the `env.sh` that `deploy/s3/server.sh up ceph DIR` writes; `None` when it
    /// describes no drill bucket (a server without users and bucket policies).
    pub fn from_env_file(path: &Path) -> Result<Option<S3Target>, DrillError> {
        let t = crate::store::s3::testserver::TestServer::from_env_file(&path.to_string_lossy())
            .map_err(|e| DrillError::Setup(e.to_string()))?;
        Ok(t.drill.map(|d| S3Target {
            endpoint: t.endpoint,
            ca: t.ca,
            region: t.region,
            bucket: d.bucket,
            prefix: d.prefix,
            collector: d.collector,
            dbhost: d.dbhost,
            verifier: d.verifier,
        }))
    }

    /// True when the server answers on its port.
    pub fn reachable(&self) -> bool {
        let host = self.endpoint.host_str().unwrap_or("127.0.0.1");
        let port = self.endpoint.port_or_known_default().unwrap_or(443);
        format!("{host}:{port}")
            .parse::<SocketAddr>()
            .ok()
            .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The drill's directory (its earlier content is replaced).
    pub dir: PathBuf,
    /// How long the database runs before the attack.
    pub run_for: Duration,
    /// Redo per second.
    pub rate: u64,
    /// Size of one online log.
    pub log_size: u64,
    /// Online log groups.
    pub groups: u32,
    /// Time from the database's crash to the wiper reaching redovault's daemons.
    pub grace: Duration,
    /// The hard case: the wiper also reaches the backup host, at the moment the database
    /// crashes (no grace period for any daemon): the collector is killed and its store, key
    /// ring and configuration removed; recovery runs from WORM and the offline recovery key.
    pub wipe_backup_host: bool,
    /// Collectors, each on a backup host of its own; the extractor ships to every one with
    /// `ack = "majority"`. `wipe_backup_host` wipes the first only: a survivor must then
    /// give the online log back to the last commit.
    pub collectors: u32,
    /// Seed of the workload.
    pub seed: u64,
    /// The watcher's manifest seal interval (production: [`setup::PRODUCTION_SEAL_INTERVAL`]).
    /// Logs shipped since the last seal must come back from WORM all the same.
    pub seal_interval: Duration,
    /// S3 instead of the local directory.
    pub s3: Option<S3Target>,
    /// The programs.
    pub programs: Programs,
}

/// One row of the per-table comparison.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    /// Table name.
    pub table: String,
    /// One of the paper's five tables (the rest is background workload).
    pub paper: bool,
    /// What the database committed (journal).
    pub journal: TableCounts,
    /// What replaying the recovered redo gives.
    pub recovered: TableCounts,
}

/// One recovery step and its time.
#[derive(Debug, Clone, Serialize)]
pub struct RecoveryStep {
    /// What.
    pub step: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Its result.
    pub detail: String,
}

/// The drill's result.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// True when every check held.
    pub pass: bool,
    /// Where the archived logs went.
    pub store: String,
    /// True when the backup host was wiped at the crash (`--wipe-backup-host`).
    pub wipe_backup_host: bool,
    /// Collectors (backup hosts); with more than one, the wipe reaches the first only.
    pub collectors: u32,
    /// Commits lost: committed transactions in the journal after the last recovered commit.
    pub rpo_commits: usize,
    /// Commit-time span from the last recovered commit to the last committed transaction in
    /// the journal (the database's commit times, whole seconds; 0 when none is lost).
    pub rpo_seconds: f64,
    /// Where the rebuilt online log came from: `worm` (pieces opened with the recovery key)
    /// or `collector` (its segments), as `restore online` recorded it.
    pub online_source: String,
    /// Why `restore online` chose that source.
    pub online_source_reason: String,
    /// Seconds from the start of recovery to verified files.
    pub rto_seconds: f64,
    /// The watcher's manifest seal interval in this drill, in seconds.
    pub seal_interval_seconds: f64,
    /// Archived logs restored from WORM that a sealed manifest lists.
    pub archived_from_sealed_manifest: usize,
    /// Archived logs restored from WORM that were shipped but not yet sealed (found by their
    /// headers and SHA-256 keys).
    pub archived_shipped_not_sealed: usize,
    /// Seconds the database ran.
    pub workload_seconds: f64,
    /// Redo per second the database was asked to write (`--rate`).
    pub rate_bytes_per_second: u64,
    /// Redo per second it wrote: the asked rate scaled by how far its clock (which advances
    /// with the redo written) kept up with the wall clock. Below the asked rate when the machine
    /// could not keep up: the drill then ran at this rate, not at the asked one.
    pub redo_bytes_per_second: f64,
    /// Committed transactions.
    pub commits: usize,
    /// Rolled-back transactions.
    pub rollbacks: usize,
    /// Archived logs the database wrote.
    pub archived_logs: usize,
    /// The last commit the database wrote (xid, SCN).
    pub last_commit: Option<(String, u64)>,
    /// Milliseconds from the crash (the instant the simulated database stopped writing) to the
    /// first poll (every 20 ms, over the collector's metrics) that saw the collector's durable
    /// SCN at or past the last commit's: an upper bound of when the backup host held it.
    /// Between the two the drill only reads the last commit from the journal's tail and polls;
    /// the referee's ground-truth copy is taken after the wiper killed the daemons, so it delays
    /// neither this figure nor the wiper. `None` when not seen within the grace period.
    pub last_commit_durable_after_ms: Option<f64>,
    /// What the attacker did.
    pub attack: Vec<Action>,
    /// The recovery.
    pub recovery: Vec<RecoveryStep>,
    /// The referee's checks.
    pub checks: Vec<Check>,
    /// Each daemon's and recovery step's CPU seconds and peak RSS (from /proc).
    pub processes: Vec<ProcessUsage>,
    /// Per table.
    pub tables: Vec<TableRow>,
    /// The drill's directory.
    pub dir: PathBuf,
}

impl DrillReport {
    /// The human summary printed at the end.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str("checks:\n");
        for c in &self.checks {
            s.push_str(&format!(
                "  {} {:<40} {}\n",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        s.push_str("per table (rows = inserts - deletes; journal = what the database committed, recovered = replay of the restored redo):\n");
        s.push_str(&format!(
            "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8}\n",
            "table", "", "txns j/r", "rows j/r", "ins", "upd", "del"
        ));
        for t in &self.tables {
            s.push_str(&format!(
                "  {:<12} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8}\n",
                t.table,
                if t.paper { "paper" } else { "bg" },
                format!("{}/{}", t.journal.transactions, t.recovered.transactions),
                format!("{}/{}", t.journal.rows, t.recovered.rows),
                t.recovered.inserts,
                t.recovered.updates,
                t.recovered.deletes
            ));
        }
        s.push_str(&format!(
            "archived logs from WORM: {} from sealed manifests, {} shipped but not yet sealed (watcher seal interval {:.0} s)\n",
            self.archived_from_sealed_manifest,
            self.archived_shipped_not_sealed,
            self.seal_interval_seconds
        ));
        s.push_str("cost per process (CPU seconds user + system; peak RSS = VmHWM):\n");
        for p in &self.processes {
            s.push_str(&format!(
                "  {:<20} {:<9} {:>9.2} s CPU {:>9} MiB peak RSS\n",
                p.name,
                p.kind,
                p.usage.cpu_seconds,
                p.usage.peak_rss_bytes.map_or("-".to_string(), |b| format!(
                    "{:.1}",
                    b as f64 / f64::from(1 << 20)
                ))
            ));
        }
        s.push_str("time budget per recovery step:\n");
        for r in &self.recovery {
            s.push_str(&format!("  {:<40} {:>8.2} s\n", r.step, r.seconds));
        }
        s.push_str(&format!(
            "  {:<40} {:>8.2} s\n",
            "total (RTO)", self.rto_seconds
        ));
        s.push_str(&format!(
            "redo: {:.2} MiB/s written of the {:.2} MiB/s asked, for {:.1} s\n",
            self.redo_bytes_per_second / f64::from(1 << 20),
            self.rate_bytes_per_second as f64 / f64::from(1 << 20),
            self.workload_seconds
        ));
        s.push_str(&format!(
            "verdict: {}   RPO = {} commits lost ({:.0} s of commit time)   RTO = {:.1} s   online log from {}   ({} commits, {} archived logs, store {}{})\n",
            if self.pass { "PASS" } else { "FAIL" },
            self.rpo_commits,
            self.rpo_seconds,
            self.rto_seconds,
            self.online_source,
            self.commits,
            self.archived_logs,
            self.store,
            match (self.wipe_backup_host, self.collectors) {
                (true, 1) => "; backup host wiped at the crash".to_string(),
                (true, n) => format!("; backup host 1 of {n} wiped at the crash"),
                (false, 1) => String::new(),
                (false, n) => format!("; {n} collectors"),
            }
        ));
        s
    }
}

/// The paper's five tables (data object ids of their own, tablespace file 25).
pub fn paper_tables() -> Vec<Table> {
    ["ACCOUNTS", "DEPOSITS", "LOANS", "TRANSFERS", "BRANCHES"]
        .iter()
        .enumerate()
        .map(|(i, name)| Table {
            name: (*name).to_string(),
            data_obj: 74_001 + i as u32,
            afn: 25,
            first_block: 128 + 65_536 * i as u32,
        })
        .collect()
}

/// A simulated database that runs on its own thread until it crashes.
struct LiveDb {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Simulator, String>>,
}

impl LiveDb {
    fn start(cfg: SimConfig) -> Result<LiveDb, DrillError> {
        let sim = Simulator::start(cfg)
            .map_err(|e| DrillError::Setup(format!("the simulated database: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sim = sim;
            while !flag.load(Ordering::Relaxed) {
                sim.step().map_err(|e| e.to_string())?;
            }
            Ok(sim)
        });
        Ok(LiveDb { stop, thread })
    }

    /// The instance dies between two LGWR writes: redo still in its buffer is lost, as are
    /// the open transactions; what was written stays (with its journal lines).
    fn crash(self) -> Result<CrashClock, DrillError> {
        self.stop.store(true, Ordering::Relaxed);
        let sim = self
            .thread
            .join()
            .map_err(|_| DrillError::Step("the simulated database panicked".into()))?
            .map_err(|e| DrillError::Step(format!("the simulated database failed: {e}")))?;
        let clock = CrashClock {
            at: sim.now_precise(),
            behind: sim.behind_wall_clock(),
        };
        drop(sim);
        Ok(clock)
    }
}

/// The database's clock when it crashed.
#[derive(Debug, Clone, Copy)]
struct CrashClock {
    /// Simulated Unix time (the clock of the journal's commit times), to the microsecond.
    at: f64,
    /// How far that clock was behind the wall clock: a commit that is `d` seconds old on the
    /// database's clock is at most `d + behind` seconds old on the wall clock.
    behind: Duration,
}

/// Runs the drill; `say` gets each progress line.
pub fn run(opts: &DrillOptions, say: &mut dyn FnMut(&str)) -> Result<DrillReport, DrillError> {
    let l = Layout::create(&opts.dir)?;
    // With the backup host wiped and no other collector, only WORM is left.
    let no_survivor = opts.wipe_backup_host && opts.collectors < 2;
    let replica_ports = (1..opts.collectors.max(1))
        .map(|_| Ok((free_port()?, free_port()?)))
        .collect::<Result<Vec<(u16, u16)>, DrillError>>()?;
    let ports = Ports {
        collector: free_port()?,
        collector_metrics: free_port()?,
        extractor_metrics: free_port()?,
        watcher_metrics: free_port()?,
    };
    let prefix = match &opts.s3 {
        Some(t) => format!(
            "{}/drill-{}-{}",
            t.prefix.trim_end_matches('/'),
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        ),
        None => "drill".to_string(),
    };
    let store_name = match &opts.s3 {
        Some(t) => format!(
            "s3 {}/{}/{}",
            t.endpoint.as_str().trim_end_matches('/'),
            t.bucket,
            prefix
        ),
        None => format!("local directory {} (stands in for WORM)", l.vault.display()),
    };
    let cfgs = setup::write_configs(
        &l,
        ports,
        opts.groups,
        opts.s3.as_ref(),
        &prefix,
        opts.seal_interval,
        &replica_ports,
    )?;
    say(&format!("==> [1/5] set-up in {}", l.root.display()));
    say(&format!(
        "    link certificates (CA, collector, extractor) and the collector's AES-256-GCM key made on the fly; store: {store_name}"
    ));
    say(&format!(
        "    recovery key pair made on the fly: the private half offline with the recovery team ({}), the public half on the backup host; the collector seals its pieces into WORM every {} s",
        l.recovery_key().display(),
        setup::WORM_SEAL_INTERVAL.as_secs_f64()
    ));
    say(&format!(
        "    the watcher seals its manifest into WORM every {} s{}",
        opts.seal_interval.as_secs_f64(),
        if opts.seal_interval == setup::PRODUCTION_SEAL_INTERVAL {
            " (the production default): the logs shipped since the last seal come back from WORM by their headers and SHA-256"
        } else {
            ""
        }
    ));

    let mut sim = SimConfig::new(&l.oracle);
    sim.groups = opts.groups;
    sim.log_size = opts.log_size;
    sim.rate = Rate::BytesPerSec(opts.rate);
    sim.realtime = true;
    sim.seed = opts.seed;
    if opts.s3.is_some() {
        // The collector's pieces of every run share `PREFIX/streams/` (the bucket policy's
        // grant): a database id of its own keeps this run's stream apart from earlier ones'.
        sim.db_id = rand::random::<u32>() | 1;
    }
    let start_time = sim.start_time;
    let paper = paper_tables();
    let mut tables = paper.clone();
    tables.extend(default_tables());
    sim.tables = tables.clone();
    let stream = format!("db{}-rl{}-t1", sim.db_id, sim.resetlogs_id());
    let table_names: HashMap<u32, String> = tables
        .iter()
        .map(|t| (t.data_obj, t.name.clone()))
        .collect();

    // ---- run
    say("==> [2/5] the database host and the backup host at work");
    let p = &opts.programs;
    let ccfg = cfgs.collector.to_string_lossy().into_owned();
    // The collector's own keys for its pieces in WORM (from the environment, as the watcher's).
    let collector_env: Vec<(&str, &str)> = match &opts.s3 {
        Some(t) => vec![
            ("AWS_ACCESS_KEY_ID", t.collector.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", t.collector.secret_key.as_str()),
        ],
        None => vec![],
    };
    let mut collector = Daemon::start(
        "collector",
        &p.collector,
        &["--config", &ccfg],
        &collector_env,
        &l.log("collector.log"),
    )?;
    let caddr = SocketAddr::from(([127, 0, 0, 1], ports.collector));
    if !wait_for(Duration::from_secs(30), || {
        TcpStream::connect_timeout(&caddr, Duration::from_millis(200)).is_ok()
    }) {
        return Err(DrillError::Step(format!(
            "the collector did not listen on {caddr}:\n{}",
            collector.tail(20)
        )));
    }
    say(&format!(
        "    collector listening on {caddr} (TLS 1.3, client certificates required)"
    ));
    let mut replicas = Vec::new();
    for r in &cfgs.replicas {
        let d = Daemon::start(
            &r.name,
            &p.collector,
            &["--config", &r.config.to_string_lossy()],
            &[],
            &l.log(&format!("collector-{}.log", r.name)),
        )?;
        let a = SocketAddr::from(([127, 0, 0, 1], r.port));
        if !wait_for(Duration::from_secs(30), || {
            TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
        }) {
            return Err(DrillError::Step(format!(
                "the collector of {} did not listen on {a}:\n{}",
                r.name,
                d.tail(20)
            )));
        }
        replicas.push(d);
    }
    if !replicas.is_empty() {
        say(&format!(
            "    {} more collectors on backup hosts {} (each its own store and key); the extractor ships to all {} with ack = \"majority\"",
            replicas.len(),
            cfgs.replicas
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            replicas.len() + 1
        ));
    }
    let t_db = Instant::now();
    let db = LiveDb::start(sim)?;
    let dbhost_env: Vec<(&str, &str)> = match &opts.s3 {
        Some(t) => vec![
            ("AWS_ACCESS_KEY_ID", t.dbhost.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", t.dbhost.secret_key.as_str()),
        ],
        None => vec![],
    };
    let wcfg = cfgs.watcher.to_string_lossy().into_owned();
    let mut watcher = Daemon::start(
        "watcher",
        &p.redovault,
        &["watch", "--config", &wcfg],
        &dbhost_env,
        &l.log("watcher.log"),
    )?;
    let ecfg = cfgs.extractor.to_string_lossy().into_owned();
    let mut extractor = Daemon::start(
        "extractor",
        &p.extractor,
        &["--config", &ecfg],
        &[],
        &l.log("extractor.log"),
    )?;
    say(&format!(
        "    simulated Oracle: {} groups of {} KiB, {} KiB/s of redo, tables {} + background {}",
        opts.groups,
        opts.log_size >> 10,
        opts.rate >> 10,
        paper
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        default_tables()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    say("    watcher (archived logs -> WORM) and extractor (online log -> collector) started");
    let t_run = Instant::now();
    let cm = SocketAddr::from(([127, 0, 0, 1], ports.collector_metrics));
    let status_path = l.host_state.join("watcher/status.json");
    let mut next = Duration::from_secs(1);
    while t_run.elapsed() < opts.run_for {
        std::thread::sleep(Duration::from_millis(50));
        for d in [&mut collector, &mut watcher, &mut extractor]
            .into_iter()
            .chain(replicas.iter_mut())
        {
            if !d.running() {
                return Err(DrillError::Step(format!(
                    "the {} died:\n{}",
                    d.name,
                    d.tail(20)
                )));
            }
        }
        if t_run.elapsed() >= next {
            next += Duration::from_secs(1);
            say(&format!(
                "    {:>4.1} s  {}",
                t_run.elapsed().as_secs_f64(),
                progress(&status_path, cm, &stream)
            ));
        }
    }

    // ---- crash (in the hard case the wiper reaches the backup host in the same step, before
    // anything else), and the referee's snapshot
    let clock = db.crash()?;
    let crash = Instant::now();
    let workload_seconds = t_run.elapsed().as_secs_f64();
    // The simulated clock advances with the redo written: where it lags the wall clock, the
    // machine did not keep up with the asked rate, and this is the rate the drill ran at.
    let db_wall = crash.duration_since(t_db).as_secs_f64();
    let redo_rate = opts.rate as f64 * (db_wall - clock.behind.as_secs_f64()).max(0.0)
        / db_wall.max(f64::EPSILON);
    let mut collector = Some(collector);
    let mut host_daemons = Some((watcher, extractor));
    let mut actions = Vec::new();
    // What each process cost (CPU seconds, peak RSS), read from /proc as it ends.
    let mut processes: Vec<ProcessUsage> = Vec::new();
    if opts.wipe_backup_host {
        if let Some(c) = collector.take() {
            processes.push(daemon_usage(&c.name.clone(), c.kill9()));
        }
        if let Some((w, e)) = host_daemons.take() {
            processes.push(daemon_usage("watcher", w.kill9()));
            processes.push(daemon_usage("extractor", e.kill9()));
        }
        actions.push(Action::done(
            if replicas.is_empty() {
                "at the crash: kill -9 of the collector (backup host), the watcher and the extractor (database host)"
            } else {
                "at the crash: kill -9 of the collector on backup host 1, the watcher and the extractor (database host)"
            },
            "all three gone, no grace period",
        ));
        actions.push(attack::remove_tree(
            &l.remote,
            "the backup host: the collector's store, key ring, configuration, certificates, the recovery public key",
        )?);
    }
    // The timing below runs from the crash with nothing else in its way: the last commit is
    // read from the journal's tail (a few KiB), not from the referee's copy, which is taken
    // only once the wiper has killed redovault's daemons (see `last_commit_durable_after_ms`).
    let journal_last = referee::last_commit_in_journal(&l.oracle.join("journal.jsonl"))?;
    say(&format!(
        "==> [3/5] the attack: the database crashes after {workload_seconds:.1} s (last commit {} at SCN {}; redo written at {:.2} MiB/s of the {:.2} MiB/s asked)",
        journal_last.as_ref().map_or("-", |c| c.0.as_str()),
        journal_last.as_ref().map_or(0, |c| c.1),
        redo_rate / f64::from(1 << 20),
        opts.rate as f64 / f64::from(1 << 20)
    ));
    let mut durable_after = None;
    // Seen on the first backup host, or on the second when the first was wiped.
    let watched = if collector.is_some() {
        Some(cm)
    } else {
        cfgs.replicas
            .first()
            .map(|r| SocketAddr::from(([127, 0, 0, 1], r.metrics)))
    };
    if let (Some((_, scn)), Some(m)) = (journal_last.as_ref(), watched) {
        let key = format!("redovault_collector_durable_scn{{stream=\"{stream}\"}}");
        if wait_for(opts.grace.max(Duration::from_millis(100)), || {
            scrape(m).get(&key).is_some_and(|v| *v >= *scn as f64)
        }) {
            durable_after = Some(crash.elapsed().as_secs_f64() * 1000.0);
        }
    }
    if let Some(ms) = durable_after {
        say(&format!(
            "    the collector held the last commit {ms:.1} ms after the crash (seen by polling its metrics every 20 ms)"
        ));
    }
    if let Some((watcher, extractor)) = host_daemons.take() {
        let left = opts.grace.saturating_sub(crash.elapsed());
        std::thread::sleep(left);
        say(&format!(
            "    {:.1} s after the crash the wiper reaches redovault:",
            opts.grace.as_secs_f64()
        ));
        processes.push(daemon_usage("watcher", watcher.kill9()));
        processes.push(daemon_usage("extractor", extractor.kill9()));
        actions.push(Action::done(
            "kill -9 of the watcher and the extractor",
            "both gone",
        ));
    } else {
        say(
            "    at the crash the wiper reached the backup host and redovault's daemons (no grace period), then wiped the database host:",
        );
    }
    // The referee's copy: redovault's daemons on the database host are dead, its files not yet
    // destroyed. Nothing timed runs meanwhile.
    let t_copy = Instant::now();
    let truth = referee::snapshot(&l.oracle, &l.referee)?;
    let jcommits = referee::journal_commits(&truth.journal);
    let rollbacks = truth.journal.iter().filter(|e| e.rollback).count();
    let last = jcommits.last().cloned();
    say(&format!(
        "    referee: journal ({} commits, {} rollbacks), {} archived and the online logs copied to {} in {:.1} s (ground truth, outside every host; taken after the daemons died, before the files are destroyed)",
        jcommits.len(),
        rollbacks,
        truth.archived.len(),
        l.referee.display(),
        t_copy.elapsed().as_secs_f64()
    ));
    actions.push(attack::zero_files(&l.oracle.join("online"))?);
    actions.push(attack::remove_tree(
        &l.oracle.join("archive"),
        "the archive destination",
    )?);
    actions.push(attack::remove_tree(
        &l.oracle.join("online"),
        "the online redo logs",
    )?);
    actions.push(attack::remove_tree(
        &l.host_state,
        "redovault's state: manifest, checkpoints, status",
    )?);
    actions.push(attack::remove_tree(
        &l.host_etc,
        "redovault's configuration and the extractor's certificate",
    )?);
    actions.push(attack::remove_tree(&l.host, "everything else on the host")?);
    if let Some(t) = &opts.s3 {
        let keys: Vec<String> = truth
            .archived_sha256
            .values()
            .map(|h| format!("{prefix}/archive/sha256/{h}"))
            .collect();
        actions.extend(worm::attempts(t, &prefix, &keys)?);
    } else {
        actions.push(Action::done(
            "attempts on WORM with the database host's credentials",
            "not run: the local store has no credentials (run with S3 for this part)",
        ));
    }
    for a in &actions {
        let mark = match a.refused {
            Some(true) => "refused ",
            Some(false) => "ALLOWED ",
            None => "",
        };
        say(&format!("    {} -> {mark}{}", a.action, a.outcome));
    }

    // ---- recovery from nothing
    say(&format!(
        "==> [4/5] recovery from nothing: a fresh install in {}",
        l.recovery.display()
    ));
    let t0 = Instant::now();
    let mut steps = Vec::new();
    let step = |steps: &mut Vec<RecoveryStep>, what: &str, t: Instant, detail: String| {
        steps.push(RecoveryStep {
            step: what.to_string(),
            seconds: t.elapsed().as_secs_f64(),
            detail,
        });
    };
    let stopped = collector.take().map(|c| {
        let name = c.name.clone();
        let (clean, usage) = c.terminate_measured(Duration::from_secs(30));
        processes.push(daemon_usage(&name, usage));
        clean
    });
    for r in replicas.drain(..) {
        let name = format!("collector {}", r.name);
        let (_, usage) = r.terminate_measured(Duration::from_secs(30));
        processes.push(daemon_usage(&name, usage));
    }
    let t = Instant::now();
    // The collector whose store recovery reads: the first backup host's, or a survivor's.
    let (ccfg, survivor) = match (opts.wipe_backup_host, cfgs.replicas.first()) {
        (false, _) => (
            ccfg.clone(),
            Some((l.remote.join("store"), l.remote.join("collector.keys"))),
        ),
        (true, Some(r)) => (
            r.config.to_string_lossy().into_owned(),
            Some((r.store(), r.keys())),
        ),
        (true, None) => (ccfg.clone(), None),
    };
    let vcfg = setup::write_verifier_config(&l, opts.s3.as_ref(), &prefix, survivor)?;
    let vcfg_s = vcfg.to_string_lossy().into_owned();
    let verifier_env: Vec<(&str, &str)> = match &opts.s3 {
        Some(t) => vec![
            ("AWS_ACCESS_KEY_ID", t.verifier.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", t.verifier.secret_key.as_str()),
        ],
        None => vec![],
    };
    step(
        &mut steps,
        "install",
        t,
        match stopped {
            Some(clean) => format!(
                "verifier configuration with read-only keys; the collector stopped ({}); the recovery team's key",
                if clean { "cleanly" } else { "killed" }
            ),
            None if !no_survivor => format!(
                "verifier configuration with read-only keys; backup host 1 is gone, the collector of {} stopped; the recovery team's key",
                cfgs.replicas.first().map_or("-", |r| r.name.as_str())
            ),
            None => "verifier configuration with read-only keys, no collector (the backup host is gone); the recovery team's key".to_string(),
        },
    );
    let t = Instant::now();
    let html = l.recovery.join("audit.html");
    let (vcode, vout, verr, usage) = run_measured(
        &p.verifier,
        &[
            "verify",
            "--config",
            &vcfg_s,
            "--json",
            "--html",
            &html.to_string_lossy(),
        ],
        &verifier_env,
    )?;
    processes.push(recovery_usage("verify", usage));
    let audit: serde_json::Value = serde_json::from_str(&vout).map_err(|e| {
        DrillError::Step(format!(
            "redovault-verifier verify (exit {vcode}) printed no JSON report ({e}): {verr}"
        ))
    })?;
    let finding_kinds: BTreeMap<String, usize> = audit["findings"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|f| f["severity"].as_str() != Some("info"))
                .filter_map(|f| f["kind"].as_str())
                .fold(BTreeMap::new(), |mut m, k| {
                    *m.entry(k.to_string()).or_default() += 1;
                    m
                })
        })
        .unwrap_or_default();
    step(
        &mut steps,
        "verify",
        t,
        format!(
            "verdict {} (exit {vcode}), findings {:?}, report {}",
            audit["verdict"].as_str().unwrap_or("?"),
            finding_kinds,
            html.display()
        ),
    );
    let dest = l.recovery.join("restore");
    let dest_s = dest.to_string_lossy().into_owned();
    let t = Instant::now();
    let (out, usage) = run_ok_measured(
        &p.verifier,
        &["restore", "archive", "--config", &vcfg_s, "--dest", &dest_s],
        &verifier_env,
    )?;
    processes.push(recovery_usage("restore archive", usage));
    step(&mut steps, "restore archive", t, out.trim().to_string());
    // The online log: always with the recovery team's key, so that the verifier can take the
    // pieces in WORM (the only source left when the backup host is gone).
    let rkey = l.recovery_key().to_string_lossy().into_owned();
    let mut args = vec![
        "restore",
        "online",
        "--config",
        &vcfg_s,
        "--dest",
        &dest_s,
        "--recovery-key",
        &rkey,
        "--stream",
        &stream,
    ];
    if cfgs.worm_prefix != prefix {
        args.extend(["--worm-prefix", &cfgs.worm_prefix]);
    }
    let t = Instant::now();
    let (out, usage) = run_ok_measured(&p.verifier, &args, &verifier_env)?;
    processes.push(recovery_usage("restore online", usage));
    // One record per thread (`threads`); the drill's database has one.
    let online_record: serde_json::Value =
        read_json(&dest.join("restore-online.json"))?["threads"][0].clone();
    let online_source = online_record["source"]
        .as_str()
        .unwrap_or("not recorded")
        .to_string();
    let online_source_reason = online_record["source_reason"]
        .as_str()
        .unwrap_or("")
        .to_string();
    step(
        &mut steps,
        "restore online",
        t,
        format!(
            "{} (from {online_source}{})",
            out.lines().next().unwrap_or("").trim(),
            if online_source_reason.is_empty() {
                String::new()
            } else {
                format!(": {online_source_reason}")
            }
        ),
    );
    let archive_record: serde_json::Value = read_json(&dest.join("restore-archive.json"))?;
    let mut from_worm = BTreeMap::new();
    let mut shipped_not_sealed = 0;
    for f in archive_record["files"].as_array().into_iter().flatten() {
        if f["shipped_not_sealed"].as_bool() == Some(true) {
            shipped_not_sealed += 1;
        }
        let seq = f["sequence"].as_u64().unwrap_or(0) as u32;
        let path = PathBuf::from(f["path"].as_str().unwrap_or(""));
        from_worm.insert(
            seq,
            (path.clone(), f["sha256"].as_str().unwrap_or("").to_string()),
        );
    }
    let online_seq = online_record["sequence"].as_u64().unwrap_or(0) as u32;
    // Archived logs not (yet) recorded in WORM's manifest when the host died: rebuilt from
    // the collector. When the backup host is gone, nothing rebuilds them: `restore online`
    // rebuilds only the online log from the pieces in WORM (the checks name them).
    let first = from_worm.keys().next().copied().unwrap_or(online_seq);
    let missing: Vec<u32> = (first..online_seq)
        .filter(|s| !from_worm.contains_key(s))
        .collect();
    let mut rebuilt_archived = BTreeMap::new();
    if !missing.is_empty() && no_survivor {
        step(
            &mut steps,
            "archived logs missing from WORM",
            Instant::now(),
            format!(
                "sequences {missing:?} not rebuilt: the backup host is gone, and restore online rebuilds only the online log from the pieces"
            ),
        );
    } else if !missing.is_empty() {
        let t = Instant::now();
        let mut rebuild_usage = Usage::default();
        for s in &missing {
            let out_path = dest.join(format!("rebuilt_{s}.arc"));
            let (out, usage) = run_ok_measured(
                &p.collector,
                &[
                    "rebuild",
                    "--config",
                    &ccfg,
                    "--stream",
                    &stream,
                    "--sequence",
                    &s.to_string(),
                    "--out",
                    &out_path.to_string_lossy(),
                    "--json",
                ],
                &[],
            )?;
            rebuild_usage.cpu_seconds += usage.cpu_seconds;
            rebuild_usage.peak_rss_bytes = rebuild_usage.peak_rss_bytes.max(usage.peak_rss_bytes);
            let v: serde_json::Value = serde_json::from_str(&out)
                .map_err(|e| DrillError::Step(format!("rebuild report: {e}")))?;
            let size = v["size"].as_u64().unwrap_or(0);
            rebuilt_archived.insert(*s, (out_path, size));
        }
        processes.push(recovery_usage("collector rebuild", rebuild_usage));
        step(
            &mut steps,
            "rebuild archived logs missing from WORM",
            t,
            format!("sequences {missing:?} from the collector"),
        );
    }
    // What recovery applies: the archived logs in sequence order up to the first gap, then the
    // online log if it is the next one (a log after a gap cannot be applied).
    let online_path = PathBuf::from(online_record["path"].as_str().unwrap_or(""));
    let online_size = online_record["size"].as_u64().unwrap_or(0);
    let archived_files: BTreeMap<u32, &PathBuf> = from_worm
        .iter()
        .map(|(s, (p, _))| (*s, p))
        .chain(rebuilt_archived.iter().map(|(s, (p, _))| (*s, p)))
        .collect();
    let mut recovered: Vec<Recovered> = Vec::new();
    let mut applied_note = None;
    for (seq, path) in &archived_files {
        if let Some(prev) = recovered.last()
            && prev.sequence + 1 != *seq
        {
            applied_note = Some(format!(
                "recovery stops after log {}: log {} is missing",
                prev.sequence,
                prev.sequence + 1
            ));
            break;
        }
        recovered.push(Recovered {
            sequence: *seq,
            path: (*path).clone(),
        });
    }
    if applied_note.is_none() {
        match recovered.last().map(|r| r.sequence) {
            Some(last) if online_seq <= last => {
                applied_note = Some(format!(
                    "the rebuilt online log {online_seq} is not applied: archived log {online_seq} was recovered whole"
                ));
            }
            Some(last) if online_seq > last + 1 => {
                applied_note = Some(format!(
                    "recovery stops after log {last}: log {} is missing before the online log {online_seq}",
                    last + 1
                ));
            }
            _ => recovered.push(Recovered {
                sequence: online_seq,
                path: online_path.clone(),
            }),
        }
    }
    let t = Instant::now();
    // An archived log missing from `restore archive` (a gap, or rebuilt from the collector
    // outside its record): `restore script` refuses a script that cannot reach the last
    // commit, and says why; otherwise it must succeed.
    let args = ["restore", "script", "--dest", &dest_s];
    let (code, out, err, usage) = run_measured(&p.verifier, &args, &[])?;
    processes.push(recovery_usage("restore script", usage));
    let gap = applied_note.is_some() || !missing.is_empty();
    let detail = match (code, gap) {
        (0, _) => out.lines().next().unwrap_or("").trim().to_string(),
        (_, true) => format!("no script to the last commit: {}", err.trim()),
        (_, false) => {
            return Err(DrillError::Step(format!(
                "restore script exited {code}: {}{}",
                out.trim_end(),
                err.trim_end()
            )));
        }
    };
    step(&mut steps, "restore script", t, detail);
    let rto = t0.elapsed().as_secs_f64();
    for s in &steps {
        say(&format!(
            "    {:<40} {:>6.2} s  {}",
            s.step, s.seconds, s.detail
        ));
    }
    say(&format!("    {:<40} {:>6.2} s", "total (RTO)", rto));

    // ---- the referee's checks
    say("==> [5/5] the referee's checks against the ground truth");
    let mut checks = Vec::new();
    if opts.s3.is_some() {
        let attempts: Vec<&Action> = actions.iter().filter(|a| a.refused.is_some()).collect();
        let allowed: Vec<&str> = attempts
            .iter()
            .filter(|a| a.refused == Some(false))
            .map(|a| a.action.as_str())
            .collect();
        checks.push(Check::new(
            "WORM attempts refused",
            !attempts.is_empty() && allowed.is_empty(),
            if allowed.is_empty() {
                format!("{} of {} refused", attempts.len(), attempts.len())
            } else {
                format!("allowed: {}", allowed.join("; "))
            },
        ));
    }
    // Every committed transaction, in order: what recovery brought back is the journal's
    // first commits; the rest is lost (RPO).
    let replay = referee::replay(&recovered, &table_names);
    let (matched, lost, diff) = referee::compare_commits(&replay.commits, &jcommits);
    let jtimes: Vec<i64> = truth
        .journal
        .iter()
        .filter(|e| !e.rollback)
        .map(|e| e.unix_time)
        .collect();
    let rpo_seconds = if lost == 0 {
        0.0
    } else {
        let to = jtimes.last().copied().unwrap_or(start_time);
        let from = matched
            .checked_sub(1)
            .and_then(|i| jtimes.get(i).copied())
            .unwrap_or(start_time);
        (to - from).max(0) as f64
    };
    // The point recovery reaches: the sequence of the last file it applies, and whether that
    // is the rebuilt online log (applied to its last commit, not to its end).
    let point_seq = recovered.last().map_or(0, |r| r.sequence);
    let online_applied = applied_note.is_none() && point_seq == online_seq;
    // Archived logs, byte for byte. With the backup host wiped, WORM may end inside an
    // archived log or before it: the log the rebuilt online log stands for is checked as the
    // online log (to its last commit); a log after that point, in neither WORM's archive nor
    // its pieces, went with the last seal interval: it is named, its commits are in the RPO.
    let mut identical = 0;
    let mut problems = Vec::new();
    let mut as_online = None;
    let mut lost_logs = Vec::new();
    for (seq, truth_path) in &truth.archived {
        let want = truth.archived_sha256.get(seq).cloned().unwrap_or_default();
        if let Some((path, sha)) = from_worm.get(seq) {
            let got = referee::sha256_file(path)?;
            if got == want && *sha == want {
                identical += 1;
            } else {
                problems.push(format!(
                    "log {seq}: SHA-256 {got}, the database wrote {want}"
                ));
            }
        } else if let Some((path, size)) = rebuilt_archived.get(seq) {
            let a = fs::read(path).map_err(|e| DrillError::io(path, e))?;
            let b = fs::read(truth_path).map_err(|e| DrillError::io(truth_path, e))?;
            // An archived copy's blocks 0 and 1 (block count, next SCN) are written at the
            // switch; the stream has the online log's: compare from block 2, to the end.
            if b.len() as u64 != *size {
                problems.push(format!(
                    "log {seq} (rebuilt): {size} bytes, the database archived {}",
                    b.len()
                ));
            } else {
                match referee::first_difference(&a, &b, 1024, *size as usize) {
                    None => identical += 1,
                    Some(at) => problems.push(format!("log {seq} (rebuilt): differs at byte {at}")),
                }
            }
        } else if no_survivor && online_applied && *seq == online_seq {
            as_online = Some(*seq);
        } else if no_survivor && *seq > point_seq.max(online_seq) {
            lost_logs.push(*seq);
        } else if missing.contains(seq) && no_survivor {
            problems.push(format!(
                "log {seq}: not recovered (not in WORM's sealed manifest; with the backup host gone nothing rebuilds it from the pieces)"
            ));
        } else {
            problems.push(format!("log {seq}: not recovered"));
        }
    }
    checks.push(Check::new(
        "archived logs byte-identical",
        problems.is_empty()
            && identical + usize::from(as_online.is_some()) + lost_logs.len()
                == truth.archived.len(),
        if problems.is_empty() {
            format!(
                "{identical} of {} ({} from WORM by SHA-256, {} rebuilt by the collector){}{}",
                truth.archived.len(),
                from_worm.len(),
                rebuilt_archived.len(),
                match as_online {
                    Some(seq) => format!(
                        "; log {seq}: rebuilt from WORM to its last commit (the online log check)"
                    ),
                    None => String::new(),
                },
                if lost_logs.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; after the last commit in WORM, lost with the last seal interval: {lost_logs:?} (their commits are in the RPO)"
                    )
                }
            )
        } else {
            problems.join("; ")
        },
    ));
    // The online log: the database's bytes up to the last commit the rebuilt log holds.
    let online_check = match truth.online.get(&online_seq) {
        None => Check::new(
            "online log prefix identical",
            false,
            format!("the database had no online log {online_seq} at the crash"),
        ),
        Some(src) => {
            let a = fs::read(&online_path).map_err(|e| DrillError::io(&online_path, e))?;
            let b = fs::read(src).map_err(|e| DrillError::io(src, e))?;
            let size = online_size as usize;
            // A log that had switched by the crash (WORM may end in one) had its header's
            // block 1 (next SCN, time) rewritten at the switch, after the stream carried it:
            // compare such a log from block 2, as an archived one.
            let from = if truth.archived.contains_key(&online_seq) {
                1024
            } else {
                0
            };
            match referee::first_difference(&a, &b, from, size) {
                None => {
                    // The record's SHA-256 covers the log's bytes up to the cut.
                    let want = online_record["sha256"].as_str().unwrap_or("");
                    let got = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&a[..size]));
                    Check::new(
                        "online log prefix identical",
                        got == want,
                        format!(
                            "log {online_seq} from {online_source}: {size} bytes{}, SHA-256 {}",
                            if from > 0 {
                                " (from block 2: it had switched, its header was rewritten)"
                            } else {
                                ""
                            },
                            got.get(..16).unwrap_or(&got)
                        ),
                    )
                }
                Some(at) => Check::new(
                    "online log prefix identical",
                    false,
                    format!("log {online_seq}: differs at byte {at} of {size}"),
                ),
            }
        }
    };
    checks.push(online_check);
    let mut commits_detail = match &diff {
        Some(d) => d.clone(),
        None if lost == 0 => format!(
            "{matched} of {} committed transactions, in order",
            jcommits.len()
        ),
        None => format!(
            "the first {matched} of {} committed transactions, in order; the last {lost} lost",
            jcommits.len()
        ),
    };
    if let Some(n) = &applied_note {
        commits_detail.push_str(&format!("; {n}"));
    }
    checks.push(Check::new(
        "commits recovered = journal",
        diff.is_none() && (lost == 0 || no_survivor),
        commits_detail,
    ));
    // The rebuilt online log's own commits: the journal's in that log (all of them; with the
    // backup host wiped, the journal's first ones, through the last commit in WORM).
    let r_online = referee::replay(
        &[Recovered {
            sequence: online_seq,
            path: online_path.clone(),
        }],
        &table_names,
    )
    .commits;
    let j_online: Vec<_> = jcommits
        .iter()
        .filter(|c| c.2 == online_seq)
        .cloned()
        .collect();
    let last_xid = online_record["last_commit_xid"].as_str().unwrap_or("-");
    let online_ok = if no_survivor {
        j_online.starts_with(&r_online) && r_online.last().is_some_and(|c| c.0 == last_xid)
    } else {
        j_online == r_online
    };
    checks.push(Check::new(
        "rebuilt online log commits = journal",
        online_ok,
        format!(
            "log {online_seq}: {} commits rebuilt, the journal has {} (last {} at SCN {})",
            r_online.len(),
            j_online.len(),
            last_xid,
            online_record["last_commit_scn"].as_u64().unwrap_or(0)
        ),
    ));
    checks.push(Check::new(
        "recovered redo parses cleanly",
        replay.problems.is_empty(),
        if replay.problems.is_empty() {
            format!(
                "{} files; {} rollback compensation changes (11.x + 5.6) set aside",
                recovered.len(),
                replay.compensations
            )
        } else {
            replay.problems.join("; ")
        },
    ));
    // Per-table counts: against the whole journal; with the backup host wiped, against the
    // journal up to the last recovered commit (only when the recovered commits are exactly
    // its first ones: otherwise the whole journal, and the check fails with the commits').
    let journal_upto: &[JournalEntry] = if no_survivor && diff.is_none() {
        let end = truth
            .journal
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.rollback)
            .nth(matched.wrapping_sub(1))
            .map_or(0, |(i, _)| i + 1);
        &truth.journal[..end]
    } else {
        &truth.journal
    };
    let jt = referee::journal_tables(journal_upto);
    let names: BTreeSet<String> = jt.keys().chain(replay.tables.keys()).cloned().collect();
    let paper_names: BTreeSet<String> = paper.iter().map(|t| t.name.clone()).collect();
    let rows: Vec<TableRow> = names
        .into_iter()
        .map(|n| TableRow {
            paper: paper_names.contains(&n),
            journal: jt.get(&n).copied().unwrap_or_default(),
            recovered: replay.tables.get(&n).copied().unwrap_or_default(),
            table: n,
        })
        .collect();
    let unequal: Vec<&str> = rows
        .iter()
        .filter(|r| r.journal != r.recovered)
        .map(|r| r.table.as_str())
        .collect();
    checks.push(Check::new(
        "per-table row counts equal",
        unequal.is_empty(),
        match (unequal.is_empty(), journal_upto.len() < truth.journal.len()) {
            (true, false) => format!("{} tables", rows.len()),
            (true, true) => format!(
                "{} tables, against the journal up to the last recovered commit (#{matched} of {})",
                rows.len(),
                jcommits.len()
            ),
            (false, _) => format!("differ: {}", unequal.join(", ")),
        },
    ));
    let jt_all = referee::journal_tables(&truth.journal);
    let thin: Vec<String> = paper
        .iter()
        .filter(|t| jt_all.get(&t.name).is_none_or(|c| c.transactions < 10))
        .map(|t| t.name.clone())
        .collect();
    checks.push(Check::new(
        "paper tables: >= 10 transactions each",
        thin.is_empty(),
        if thin.is_empty() {
            format!(
                "{} tables, {} to {} committed transactions each",
                paper.len(),
                paper
                    .iter()
                    .filter_map(|t| jt_all.get(&t.name).map(|c| c.transactions))
                    .min()
                    .unwrap_or(0),
                paper
                    .iter()
                    .filter_map(|t| jt_all.get(&t.name).map(|c| c.transactions))
                    .max()
                    .unwrap_or(0)
            )
        } else {
            format!("too few in {}", thin.join(", "))
        },
    ));
    // The audit: clean, except for what the attacker's overwrite attempt left (a newer version
    // over a recorded object is evidence, and restore uses the recorded version).
    let stacked = actions
        .iter()
        .filter(|a| a.refused == Some(true) && a.outcome.contains("new version"))
        .count();
    let expected: BTreeMap<String, usize> = if stacked > 0 {
        BTreeMap::from([("object_replaced".to_string(), stacked)])
    } else {
        BTreeMap::new()
    };
    checks.push(Check::new(
        "audit of WORM, manifest and collector",
        vcode != 2 && finding_kinds == expected,
        format!(
            "verdict {}{}",
            audit["verdict"].as_str().unwrap_or("?"),
            if finding_kinds.is_empty() {
                String::new()
            } else if finding_kinds == expected {
                format!(
                    ": exactly the {stacked} versions the attacker stacked (object_replaced), nothing else"
                )
            } else {
                format!(", findings {finding_kinds:?}, expected {expected:?}")
            }
        ),
    ));
    if no_survivor {
        // What the backup host had not yet sealed into WORM is lost, and nothing older: every
        // lost commit committed within one seal interval plus the upload in flight of the
        // crash. Its age on the wall clock is at most: the crash on the database's clock,
        // minus its commit time (whole seconds, rounded down), plus that clock's lag.
        let bound = setup::WORM_SEAL_INTERVAL + Duration::from_secs(2);
        let oldest = jtimes
            .get(matched)
            .filter(|_| lost > 0)
            .map(|t| clock.at - *t as f64 + clock.behind.as_secs_f64());
        checks.push(Check::new(
            "RPO within one seal interval plus the upload in flight",
            diff.is_none() && oldest.is_none_or(|age| age <= bound.as_secs_f64()),
            format!(
                "{lost} commits lost ({rpo_seconds:.0} s of commit time){}; bound: every lost commit committed within seal_interval {:.1} s + 2 s = {:.1} s of the crash (commit times in whole seconds, the database's clock {:.2} s behind the wall clock)",
                oldest.map_or(String::new(), |age| format!(
                    ", the oldest at most {age:.2} s before the crash"
                )),
                setup::WORM_SEAL_INTERVAL.as_secs_f64(),
                bound.as_secs_f64(),
                clock.behind.as_secs_f64()
            ),
        ));
        checks.push(Check::new(
            "online log source = worm",
            online_source == "worm",
            format!("{online_source}: {online_source_reason}"),
        ));
    } else {
        checks.push(Check::new(
            "RPO = 0",
            lost == 0 && diff.is_none(),
            format!("{lost} commits lost"),
        ));
        if opts.wipe_backup_host {
            // Backup host 1 was wiped: the rebuilt online log must come from a survivor.
            checks.push(Check::new(
                "online log from a surviving collector",
                online_source == "collector",
                format!("{online_source}: {online_source_reason}"),
            ));
        }
    }
    let pass = checks.iter().all(|c| c.ok);
    let report = DrillReport {
        pass,
        store: store_name,
        wipe_backup_host: opts.wipe_backup_host,
        collectors: opts.collectors.max(1),
        rpo_commits: lost,
        rpo_seconds,
        online_source,
        online_source_reason,
        rto_seconds: rto,
        seal_interval_seconds: opts.seal_interval.as_secs_f64(),
        archived_from_sealed_manifest: from_worm.len() - shipped_not_sealed,
        archived_shipped_not_sealed: shipped_not_sealed,
        workload_seconds,
        rate_bytes_per_second: opts.rate,
        redo_bytes_per_second: redo_rate,
        commits: jcommits.len(),
        rollbacks,
        archived_logs: truth.archived.len(),
        last_commit: last.map(|c| (c.0, c.1)),
        last_commit_durable_after_ms: durable_after,
        attack: actions,
        recovery: steps,
        checks,
        processes,
        tables: rows,
        dir: l.root.clone(),
    };
    let json = l.root.join("drill-report.json");
    fs::write(
        &json,
        serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )
    .map_err(|e| DrillError::io(&json, e))?;
    Ok(report)
}

fn daemon_usage(name: &str, usage: Usage) -> ProcessUsage {
    ProcessUsage {
        name: name.to_string(),
        kind: "daemon",
        usage,
    }
}

fn recovery_usage(name: &str, usage: Usage) -> ProcessUsage {
    ProcessUsage {
        name: name.to_string(),
        kind: "recovery",
        usage,
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, DrillError> {
    let text = fs::read_to_string(path).map_err(|e| DrillError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| DrillError::Step(format!("{}: {e}", path.display())))
}

/// One progress line: the watcher's status file and the collector's metrics.
fn progress(status: &Path, collector_metrics: SocketAddr, stream: &str) -> String {
    let st: Option<serde_json::Value> = fs::read_to_string(status)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let shipped = st
        .as_ref()
        .and_then(|v| v["shipped_files"].as_u64())
        .unwrap_or(0);
    let sealed = st
        .as_ref()
        .and_then(|v| v["manifest"]["sealed_through"].as_u64())
        .unwrap_or(0);
    let m = scrape(collector_metrics);
    let get = |n: &str| m.get(&format!("{n}{{stream=\"{stream}\"}}")).copied();
    let scn = |n: &str| get(n).map_or("-".into(), |v| format!("{v:.0}"));
    format!(
        "archived logs in WORM {shipped} (manifest sealed through {sealed})   collector: {:.2} MB stored, durable SCN {}, in WORM to SCN {}",
        get("redovault_collector_stored_bytes_total").unwrap_or(0.0) / 1e6,
        scn("redovault_collector_durable_scn"),
        scn("redovault_collector_worm_scn")
    )
}
