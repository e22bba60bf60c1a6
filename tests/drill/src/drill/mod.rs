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
//! `--threads N` runs a RAC database: N redo threads (instances) on one SCN clock, one
//! extractor per thread as each instance's is deployed (`[online] threads = [t]`), one
//! stream per thread on the collector. `restore online` rebuilds every thread's online log in
//! one run, the script recovers to the point every thread's redo covers, and the referee
//! checks each thread against its own logs and journal entries ([`threads`]): RPO 0 per
//! thread.
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
pub mod threads;
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
use attack::Action;
use procs::{
    Daemon, ProcessUsage, Programs, Usage, free_port, run_measured, run_ok_measured, scrape,
    wait_for,
};
use redovault::store::s3::Credentials;
use referee::{Check, TableCounts};
use setup::{Layout, Ports};
use threads::ThreadRecovery;

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
        let t = crate::testserver::TestServer::from_env_file(&path.to_string_lossy())
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
    /// Redo threads of the database (RAC instances), each with its own extractor, as
    /// deployed; the referee checks every thread's commits.
    pub threads: u16,
    /// Seed of the workload.
    pub seed: u64,
    /// The watcher's manifest seal interval (production: [`setup::PRODUCTION_SEAL_INTERVAL`]).
    /// Logs shipped since the last seal must come back from WORM all the same.
    pub seal_interval: Duration,
    /// S3 instead of the local directory.
    pub s3: Option<S3Target>,
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
    /// Redo threads (RAC instances), one extractor each.
    pub threads: u16,
    /// Per redo thread: its commits, what was lost, its rebuilt online log.
    pub per_thread: Vec<ThreadReport>,
    /// Commits lost: committed transactions in the journal after the last recovered commit
    /// (every thread's).
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

/// One redo thread in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadReport {
    /// The redo thread.
    pub thread: u16,
    /// Its committed transactions (journal).
    pub commits: usize,
    /// Of those, lost (RPO of the thread).
    pub rpo_commits: usize,
    /// Its last commit in the journal (xid, SCN).
    pub last_commit: Option<(String, u64)>,
    /// The last commit its rebuilt online log holds (xid, SCN).
    pub recovered_last_commit: Option<(String, u64)>,
    /// The rebuilt online log.
    pub online_log: PathBuf,
    /// Where it came from (`collector` or `worm`).
    pub online_source: String,
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
        if self.per_thread.len() > 1 {
            s.push_str("per redo thread (RAC: one extractor per instance):\n");
            for t in &self.per_thread {
                s.push_str(&format!(
                    "  thread {}: {} commits, {} lost; last commit {}, recovered to {} in {} (from {})\n",
                    t.thread,
                    t.commits,
                    t.rpo_commits,
                    t.last_commit
                        .as_ref()
                        .map_or("-".into(), |(x, scn)| format!("{x} at SCN {scn}")),
                    t.recovered_last_commit
                        .as_ref()
                        .map_or("-".into(), |(x, scn)| format!("{x} at SCN {scn}")),
                    t.online_log.display(),
                    t.online_source
                ));
            }
        }
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
            } + &if self.threads > 1 {
                format!("; {} redo threads", self.threads)
            } else {
                String::new()
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
        watcher_metrics: free_port()?,
    };
    let threads = opts.threads.max(1);
    let extractor_ports = (0..threads)
        .map(|_| free_port())
        .collect::<Result<Vec<u16>, DrillError>>()?;
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
        &extractor_ports,
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
    sim.threads = threads;
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
    // One stream per redo thread; progress shows the first.
    let streams: Vec<String> = (1..=threads)
        .map(|t| format!("db{}-rl{}-t{t}", sim.db_id, sim.resetlogs_id()))
        .collect();
    let stream = streams[0].clone();
    let db_id = sim.db_id.to_string();
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
    let mut extractors = Vec::new();
    for e in &cfgs.extractors {
        let (name, log) = if threads == 1 {
            ("extractor".to_string(), "extractor.log".to_string())
        } else {
            (
                format!("extractor of thread {}", e.thread),
                format!("extractor-t{}.log", e.thread),
            )
        };
        extractors.push(Daemon::start(
            &name,
            &p.extractor,
            &["--config", &e.config.to_string_lossy()],
            &[],
            &l.log(&log),
        )?);
    }
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
    if threads == 1 {
        say("    watcher (archived logs -> WORM) and extractor (online log -> collector) started");
    } else {
        say(&format!(
            "    {threads} redo threads (RAC instances): the watcher (every thread's archived logs -> WORM) and one extractor per thread (its online log -> collector, [online] threads = [t]) started"
        ));
    }
    let t_run = Instant::now();
    let cm = SocketAddr::from(([127, 0, 0, 1], ports.collector_metrics));
    let status_path = l.host_state.join("watcher/status.json");
    let mut next = Duration::from_secs(1);
    while t_run.elapsed() < opts.run_for {
        std::thread::sleep(Duration::from_millis(50));
        for d in [&mut collector, &mut watcher]
            .into_iter()
            .chain(extractors.iter_mut())
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
    let mut host_daemons = Some((watcher, extractors));
    let mut actions = Vec::new();
    // What each process cost (CPU seconds, peak RSS), read from /proc as it ends.
    let mut processes: Vec<ProcessUsage> = Vec::new();
    if opts.wipe_backup_host {
        if let Some(c) = collector.take() {
            processes.push(daemon_usage(&c.name.clone(), c.kill9()));
        }
        if let Some((w, es)) = host_daemons.take() {
            processes.push(daemon_usage("watcher", w.kill9()));
            for (e, t) in es.into_iter().zip(1u16..) {
                processes.push(daemon_usage(&extractor_name(t, threads), e.kill9()));
            }
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
    let journal_tail = referee::last_commits_in_journal(&l.oracle.join("journal.jsonl"), threads)?;
    let journal_last = journal_tail.last.clone();
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
    // Every thread's last commit: each thread's stream durable at or past it.
    let last_per_thread: Vec<(String, u64)> = streams
        .iter()
        .zip(1u16..)
        .filter_map(|(stream, t)| {
            journal_tail.per_thread.get(&t).map(|(_, scn)| {
                (
                    format!("redovault_collector_durable_scn{{stream=\"{stream}\"}}"),
                    *scn,
                )
            })
        })
        .collect();
    if let (Some(_), Some(m)) = (journal_last.as_ref(), watched)
        && wait_for(opts.grace.max(Duration::from_millis(100)), || {
            let got = scrape(m);
            last_per_thread
                .iter()
                .all(|(key, scn)| got.get(key).is_some_and(|v| *v >= *scn as f64))
        })
    {
        durable_after = Some(crash.elapsed().as_secs_f64() * 1000.0);
    }
    if let Some(ms) = durable_after {
        say(&format!(
            "    the collector held {} {ms:.1} ms after the crash (seen by polling its metrics every 20 ms)",
            if threads > 1 {
                "every thread's last commit"
            } else {
                "the last commit"
            }
        ));
    }
    if let Some((watcher, extractors)) = host_daemons.take() {
        let left = opts.grace.saturating_sub(crash.elapsed());
        std::thread::sleep(left);
        say(&format!(
            "    {:.1} s after the crash the wiper reaches redovault:",
            opts.grace.as_secs_f64()
        ));
        processes.push(daemon_usage("watcher", watcher.kill9()));
        for (e, t) in extractors.into_iter().zip(1u16..) {
            processes.push(daemon_usage(&extractor_name(t, threads), e.kill9()));
        }
        actions.push(if threads == 1 {
            Action::done("kill -9 of the watcher and the extractor", "both gone")
        } else {
            Action::done(
                format!("kill -9 of the watcher and the {threads} extractors (one per thread)"),
                "all gone",
            )
        });
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
        truth.archived_logs(),
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
            .threads
            .values()
            .flat_map(|t| t.archived_sha256.values())
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
    // The online logs: always with the recovery team's key, so that the verifier can take
    // the pieces in WORM (the only source left when the backup host is gone). One run for
    // every thread of this database (WORM may hold other runs' databases: `--db-id`).
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
        "--db-id",
        &db_id,
    ];
    if cfgs.worm_prefix != prefix {
        args.extend(["--worm-prefix", &cfgs.worm_prefix]);
    }
    let t = Instant::now();
    let (_, usage) = run_ok_measured(&p.verifier, &args, &verifier_env)?;
    processes.push(recovery_usage("restore online", usage));
    // One record per thread (`threads`).
    let mut online_records = threads::online_records(&dest)?;
    let archive_record: serde_json::Value = read_json(&dest.join("restore-archive.json"))?;
    let mut recoveries = Vec::new();
    for (stream, thread) in streams.iter().zip(1u16..) {
        let record = online_records.remove(&thread).ok_or_else(|| {
            DrillError::Step(format!(
                "restore online recorded no online log for thread {thread} ({stream})"
            ))
        })?;
        recoveries.push(ThreadRecovery::gather(
            thread,
            stream.clone(),
            record,
            &archive_record,
        ));
    }
    step(
        &mut steps,
        "restore online",
        t,
        recoveries
            .iter()
            .map(|r| {
                format!(
                    "thread {} sequence {} to its last commit {} at SCN {} (from {}{})",
                    r.thread,
                    r.online_seq,
                    r.record["last_commit_xid"].as_str().unwrap_or("-"),
                    r.record["last_commit_scn"].as_u64().unwrap_or(0),
                    r.online_source,
                    if r.online_source_reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", r.online_source_reason)
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    // Archived logs not (yet) recorded in WORM's manifest when the host died: rebuilt from
    // the collector. When the backup host is gone, nothing rebuilds them: `restore online`
    // rebuilds only the online logs from the pieces in WORM (the checks name them).
    let missing: Vec<String> = recoveries
        .iter()
        .filter(|r| !r.missing.is_empty())
        .map(|r| format!("thread {} sequences {:?}", r.thread, r.missing))
        .collect();
    if !missing.is_empty() && no_survivor {
        step(
            &mut steps,
            "archived logs missing from WORM",
            Instant::now(),
            format!(
                "{} not rebuilt: the backup host is gone, and restore online rebuilds only the online logs from the pieces",
                missing.join(", ")
            ),
        );
    } else if !missing.is_empty() {
        let t = Instant::now();
        let mut rebuild_usage = Usage::default();
        for r in &mut recoveries {
            let u = r.rebuild_missing(&p.collector, &ccfg, &dest)?;
            rebuild_usage.cpu_seconds += u.cpu_seconds;
            rebuild_usage.peak_rss_bytes = rebuild_usage.peak_rss_bytes.max(u.peak_rss_bytes);
        }
        processes.push(recovery_usage("collector rebuild", rebuild_usage));
        step(
            &mut steps,
            "rebuild archived logs missing from WORM",
            t,
            format!("{} from the collector", missing.join(", ")),
        );
    }
    for r in &mut recoveries {
        r.plan();
    }
    let t = Instant::now();
    // An archived log missing from `restore archive` (a gap, or rebuilt from the collector
    // outside its record): `restore script` refuses a script that cannot reach the last
    // commit, and says why; otherwise it must succeed.
    let args = ["restore", "script", "--dest", &dest_s];
    let (script_code, out, err, usage) = run_measured(&p.verifier, &args, &[])?;
    processes.push(recovery_usage("restore script", usage));
    let code = script_code;
    let gap = recoveries.iter().any(ThreadRecovery::gap);
    // The last recoverable point, and with several threads what each thread gives.
    let script_detail = out
        .lines()
        .filter(|l| !l.starts_with("wrote ") && !l.starts_with("no recover.sql"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    let detail = match (code, gap) {
        (0, _) => script_detail.clone(),
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
    // Per redo thread: every committed transaction of the thread, in order: what recovery
    // brought back is the thread's first commits in the journal; the rest is lost (RPO).
    let mut per = Vec::new();
    for r in &recoveries {
        let logs = truth.threads.get(&r.thread).cloned().unwrap_or_default();
        let tc = threads::check(
            r,
            &logs,
            &truth.journal,
            &table_names,
            no_survivor,
            recoveries.len(),
            start_time,
        )?;
        checks.extend(tc.checks.iter().cloned());
        per.push(tc);
    }
    let lost: usize = per.iter().map(|t| t.lost).sum();
    let diff_any = per.iter().any(|t| t.diff.is_some());
    let rpo_seconds = per.iter().map(|t| t.rpo_seconds).fold(0.0, f64::max);
    // The recovery script: every thread's rebuilt online log, by name, in a RECOVER LOGFILE.
    if script_code == 0 {
        let sql = fs::read_to_string(dest.join("recover.sql")).unwrap_or_default();
        let unnamed: Vec<String> = recoveries
            .iter()
            .filter(|r| !sql.contains(&format!("RECOVER LOGFILE '{}';", r.online_path.display())))
            .map(|r| format!("thread {} ({})", r.thread, r.online_path.display()))
            .collect();
        // What the script recovers: every commit, on any thread, at or before the earliest
        // of the threads' last commits (the point every thread's redo covers).
        let point = recoveries
            .iter()
            .filter_map(|r| r.record["last_commit_scn"].as_u64())
            .min()
            .unwrap_or(0);
        let reachable = jcommits.iter().filter(|c| c.1 <= point).count();
        checks.push(Check::new(
            "recovery script names every online log",
            unnamed.is_empty(),
            if unnamed.is_empty() {
                format!(
                    "recover.sql applies {}; it recovers through SCN {point}: {reachable} of {} commits{}",
                    recoveries
                        .iter()
                        .map(|r| r.online_path.file_name().unwrap_or_default().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    jcommits.len(),
                    if reachable < jcommits.len() {
                        format!(
                            ", the {} after it past the point every thread's redo covers (named per thread in the script)",
                            jcommits.len() - reachable
                        )
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("recover.sql does not apply {}", unnamed.join(", "))
            },
        ));
    }
    // Per-table counts: against the whole journal; with the backup host wiped, against the
    // journal up to each thread's last recovered commit (only when the recovered commits are
    // exactly each thread's first ones: otherwise the whole journal, and the check fails with
    // the commits').
    let mut replayed: BTreeMap<String, TableCounts> = BTreeMap::new();
    for t in &per {
        for (name, c) in &t.replay.tables {
            let sum = replayed.entry(name.clone()).or_default();
            sum.transactions += c.transactions;
            sum.inserts += c.inserts;
            sum.updates += c.updates;
            sum.deletes += c.deletes;
            sum.rows = sum.inserts - sum.deletes;
        }
    }
    let through;
    let journal_upto: &[JournalEntry] = if no_survivor && !diff_any {
        through = threads::journal_through(
            &truth.journal,
            &per.iter().map(|t| (t.thread, t.matched)).collect(),
        );
        &through
    } else {
        &truth.journal
    };
    let matched: usize = per.iter().map(|t| t.matched).sum();
    let jt = referee::journal_tables(journal_upto);
    let names: BTreeSet<String> = jt.keys().chain(replayed.keys()).cloned().collect();
    let paper_names: BTreeSet<String> = paper.iter().map(|t| t.name.clone()).collect();
    let rows: Vec<TableRow> = names
        .into_iter()
        .map(|n| TableRow {
            paper: paper_names.contains(&n),
            journal: jt.get(&n).copied().unwrap_or_default(),
            recovered: replayed.get(&n).copied().unwrap_or_default(),
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
    let per_thread_lost = || {
        per.iter()
            .map(|t| format!("thread {}: {} of {} lost", t.thread, t.lost, t.commits))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if no_survivor {
        // What the backup host had not yet sealed into WORM is lost, and nothing older: every
        // lost commit committed within one seal interval plus the upload in flight of the
        // crash. Its age on the wall clock is at most: the crash on the database's clock,
        // minus its commit time (whole seconds, rounded down), plus that clock's lag.
        let bound = threads::wiped_rpo_bound();
        let oldest = per
            .iter()
            .filter_map(|t| t.first_lost_time)
            .map(|t| clock.at - t as f64 + clock.behind.as_secs_f64())
            .reduce(f64::max);
        checks.push(Check::new(
            "RPO within one seal interval plus the upload in flight",
            !diff_any && oldest.is_none_or(|age| age <= bound.as_secs_f64()),
            format!(
                "{lost} commits lost ({rpo_seconds:.0} s of commit time){}{}; bound: every lost commit committed within seal_interval {:.1} s + 2 s = {:.1} s of the crash (commit times in whole seconds, the database's clock {:.2} s behind the wall clock)",
                oldest.map_or(String::new(), |age| format!(
                    ", the oldest at most {age:.2} s before the crash"
                )),
                if per.len() > 1 {
                    format!(" ({})", per_thread_lost())
                } else {
                    String::new()
                },
                setup::WORM_SEAL_INTERVAL.as_secs_f64(),
                bound.as_secs_f64(),
                clock.behind.as_secs_f64()
            ),
        ));
        for r in &recoveries {
            checks.push(Check::new(
                &threads::check_name("online log source = worm", r.thread, recoveries.len()),
                r.online_source == "worm",
                format!("{}: {}", r.online_source, r.online_source_reason),
            ));
        }
    } else {
        checks.push(Check::new(
            "RPO = 0",
            lost == 0 && !diff_any,
            if per.len() > 1 {
                format!("{lost} commits lost ({})", per_thread_lost())
            } else {
                format!("{lost} commits lost")
            },
        ));
        if opts.wipe_backup_host {
            // Backup host 1 was wiped: the rebuilt online logs must come from a survivor.
            for r in &recoveries {
                checks.push(Check::new(
                    &threads::check_name(
                        "online log from a surviving collector",
                        r.thread,
                        recoveries.len(),
                    ),
                    r.online_source == "collector",
                    format!("{}: {}", r.online_source, r.online_source_reason),
                ));
            }
        }
    }
    let pass = checks.iter().all(|c| c.ok);
    // One source when every thread's log came from the same kind of copy; else each thread's.
    let sources: BTreeSet<&str> = recoveries
        .iter()
        .map(|r| r.online_source.as_str())
        .collect();
    let (online_source, online_source_reason) = match (sources.len(), recoveries.as_slice()) {
        (1, [r, ..]) => (
            r.online_source.clone(),
            recoveries
                .iter()
                .map(|r| r.online_source_reason.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => (
            recoveries
                .iter()
                .map(|r| format!("thread {}: {}", r.thread, r.online_source))
                .collect::<Vec<_>>()
                .join(", "),
            recoveries
                .iter()
                .map(|r| format!("thread {}: {}", r.thread, r.online_source_reason))
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let from_worm: usize = recoveries.iter().map(|r| r.from_worm.len()).sum();
    let shipped_not_sealed: usize = recoveries.iter().map(|r| r.shipped_not_sealed).sum();
    let per_thread = recoveries
        .iter()
        .zip(&per)
        .map(|(r, t)| ThreadReport {
            thread: r.thread,
            commits: t.commits,
            rpo_commits: t.lost,
            last_commit: t.last_commit.clone(),
            recovered_last_commit: r.record["last_commit_xid"].as_str().map(|x| {
                (
                    x.to_string(),
                    r.record["last_commit_scn"].as_u64().unwrap_or(0),
                )
            }),
            online_log: r.online_path.clone(),
            online_source: r.online_source.clone(),
        })
        .collect();
    let report = DrillReport {
        pass,
        store: store_name,
        wipe_backup_host: opts.wipe_backup_host,
        collectors: opts.collectors.max(1),
        threads,
        per_thread,
        rpo_commits: lost,
        rpo_seconds,
        online_source,
        online_source_reason,
        rto_seconds: rto,
        seal_interval_seconds: opts.seal_interval.as_secs_f64(),
        archived_from_sealed_manifest: from_worm - shipped_not_sealed,
        archived_shipped_not_sealed: shipped_not_sealed,
        workload_seconds,
        rate_bytes_per_second: opts.rate,
        redo_bytes_per_second: redo_rate,
        commits: jcommits.len(),
        rollbacks,
        archived_logs: truth.archived_logs(),
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

/// An extractor's name in the report: one per redo thread on RAC.
fn extractor_name(thread: u16, threads: u16) -> String {
    if threads == 1 {
        "extractor".to_string()
    } else {
        format!("extractor (thread {thread})")
    }
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
