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
//! `--databases N` ([`fleet`]) runs N of these drills at once, each database on hosts of its
//! own and all in one WORM store, set up one at a time and crashed at the same moment: the
//! verdict passes only when every database's does.
//!
//! ```text
//!  setup ─► run (workload, daemons) ─► crash ─► last commit held? ─► kill -9 ─► referee snapshot
//!        ─► attack (dd, rm -rf, WORM attempts) ─► recovery ─► checks
//! ```
//!
//! The daemons are the real programs (`redovault watch`, `redovault-extractor`,
//! `redovault-collector`, `redovault-verifier`), run as child processes.

pub mod attack;
mod checks;
mod crash;
mod destroy;
pub mod fleet;
mod live;
pub mod procs;
mod recovery;
pub mod referee;
mod report;
pub mod setup;
mod stage;
pub mod threads;
mod worm;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::simulate::workload::Table;
use attack::Action;
use live::Live;
use procs::{ProcessUsage, Programs};
use redovault::store::s3::Credentials;
pub use report::{DrillReport, RecoveryStep, TableRow, ThreadReport};
use stage::Stage;

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
    /// This database's place among several attacked at once (`--databases`, [`fleet`]).
    pub member: Option<fleet::Member>,
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

/// What the drill records as it goes, for the report: what the attacker did, in order, and
/// what each process cost (CPU seconds, peak RSS), read from /proc as it ends.
#[derive(Default)]
struct Evidence {
    actions: Vec<Action>,
    processes: Vec<ProcessUsage>,
}

/// Runs the drill; `say` gets each progress line.
pub fn run(opts: &DrillOptions, say: &mut dyn FnMut(&str)) -> Result<DrillReport, DrillError> {
    let together = opts.member.as_ref().map(|m| &*m.together);
    let started = {
        let _turn = together.map(fleet::Together::start_turn);
        start(opts, say)
    };
    let running = started.and_then(|(stage, mut live)| {
        live.run_workload(&stage, say)?;
        Ok((stage, live))
    });
    if let Some(t) = together {
        t.crash_together();
    }
    let (stage, live) = running?;
    let mut evidence = Evidence::default();
    let (crash, backup) = crash::crash(&stage, live, &mut evidence, say)?;
    let truth = referee::witness(&stage.layout, say)?;
    destroy::destroy(&stage, &truth, &mut evidence, say)?;
    let recovery = recovery::recover(&stage, backup, &mut evidence, say)?;
    let verdict = checks::judge(&stage, &truth, &recovery, &crash, &evidence, say)?;
    DrillReport::write(&stage, &crash, &truth, recovery, verdict, evidence)
}

/// Set-up and the daemons' start: the stage and the running database host and backup host.
fn start<'a>(
    opts: &'a DrillOptions,
    say: &mut dyn FnMut(&str),
) -> Result<(Stage<'a>, Live), DrillError> {
    let (stage, database) = Stage::set_up(opts)?;
    stage.announce(say);
    let live = Live::start(&stage, database, say)?;
    Ok((stage, live))
}
