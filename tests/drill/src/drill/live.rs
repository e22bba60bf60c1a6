//! The database host and the backup host at work: the collectors start, then the live
//! simulated database, the watcher and the extractors; the workload runs, one progress line a
//! second, until the crash.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::DrillError;
use super::procs::{Daemon, scrape, wait_for};
use super::stage::Stage;
use crate::simulate::workload::default_tables;
use crate::simulate::{SimConfig, Simulator};

/// The backup hosts' collectors: the first (gone once wiped) and the others'.
pub struct BackupHosts {
    pub collector: Option<Daemon>,
    pub replicas: Vec<Daemon>,
}

/// redovault's daemons on the database host.
pub struct DatabaseHost {
    pub watcher: Daemon,
    /// One per redo thread, from thread 1.
    pub extractors: Vec<Daemon>,
}

/// Everything that runs until the crash.
pub struct Live {
    pub db: LiveDb,
    pub backup: BackupHosts,
    pub host: DatabaseHost,
    /// When the database started: the redo rate it achieved is measured from here.
    pub db_started: Instant,
    /// When every daemon was up: the workload's time runs from here.
    pub run_started: Instant,
}

impl Live {
    /// Starts the collectors (each listening before the next starts), the database, the
    /// watcher and the extractors.
    pub fn start(
        stage: &Stage,
        database: SimConfig,
        say: &mut dyn FnMut(&str),
    ) -> Result<Live, DrillError> {
        say("==> [2/5] the database host and the backup host at work");
        let backup = start_backup_hosts(stage, say)?;
        let db_started = Instant::now();
        let db = LiveDb::start(database)?;
        let host = start_database_host(stage)?;
        announce_database_host(stage, say);
        Ok(Live {
            db,
            backup,
            host,
            db_started,
            run_started: Instant::now(),
        })
    }

    /// The workload until `--run-for` has passed: a daemon that dies ends the drill.
    pub fn run_workload(
        &mut self,
        stage: &Stage,
        say: &mut dyn FnMut(&str),
    ) -> Result<(), DrillError> {
        let cm = SocketAddr::from(([127, 0, 0, 1], stage.ports.collector_metrics));
        let status_path = stage.layout.host_state.join("watcher/status.json");
        let mut next = Duration::from_secs(1);
        while self.run_started.elapsed() < stage.opts.run_for {
            std::thread::sleep(Duration::from_millis(50));
            let daemons = self
                .backup
                .collector
                .iter_mut()
                .chain([&mut self.host.watcher])
                .chain(self.host.extractors.iter_mut())
                .chain(self.backup.replicas.iter_mut());
            for d in daemons {
                if !d.running() {
                    return Err(DrillError::Step(format!(
                        "the {} died:\n{}",
                        d.name,
                        d.tail(20)
                    )));
                }
            }
            if self.run_started.elapsed() >= next {
                next += Duration::from_secs(1);
                say(&format!(
                    "    {:>4.1} s  {}",
                    self.run_started.elapsed().as_secs_f64(),
                    progress(&status_path, cm, &stage.streams[0])
                ));
            }
        }
        Ok(())
    }
}

/// The first backup host's collector, with its own keys for its pieces in WORM (from the
/// environment, as the watcher's), then the other backup hosts'.
fn start_backup_hosts(stage: &Stage, say: &mut dyn FnMut(&str)) -> Result<BackupHosts, DrillError> {
    let (l, cfgs, p) = (&stage.layout, &stage.configs, &stage.opts.programs);
    let collector = start_listening(
        Daemon::start(
            "collector",
            &p.collector,
            &["--config", &cfgs.collector.to_string_lossy()],
            &stage.keys_env(|t| &t.collector),
            &l.log("collector.log"),
        )?,
        "the collector",
        stage.ports.collector,
    )?;
    say(&format!(
        "    collector listening on {} (TLS 1.3, client certificates required)",
        SocketAddr::from(([127, 0, 0, 1], stage.ports.collector))
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
        replicas.push(start_listening(
            d,
            &format!("the collector of {}", r.name),
            r.port,
        )?);
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
    Ok(BackupHosts {
        collector: Some(collector),
        replicas,
    })
}

/// `d` once it listens on `port` (within 30 s); `what` names it in the error otherwise.
fn start_listening(d: Daemon, what: &str, port: u16) -> Result<Daemon, DrillError> {
    let a = SocketAddr::from(([127, 0, 0, 1], port));
    if !wait_for(Duration::from_secs(30), || {
        TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
    }) {
        return Err(DrillError::Step(format!(
            "{what} did not listen on {a}:\n{}",
            d.tail(20)
        )));
    }
    Ok(d)
}

/// The watcher with the database host's keys, and one extractor per redo thread.
fn start_database_host(stage: &Stage) -> Result<DatabaseHost, DrillError> {
    let (l, p) = (&stage.layout, &stage.opts.programs);
    let watcher = Daemon::start(
        "watcher",
        &p.redovault,
        &[
            "watch",
            "--config",
            &stage.configs.watcher.to_string_lossy(),
        ],
        &stage.keys_env(|t| &t.dbhost),
        &l.log("watcher.log"),
    )?;
    let mut extractors = Vec::new();
    for e in &stage.configs.extractors {
        let (name, log) = if stage.threads == 1 {
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
    Ok(DatabaseHost {
        watcher,
        extractors,
    })
}

fn announce_database_host(stage: &Stage, say: &mut dyn FnMut(&str)) {
    let opts = stage.opts;
    let names = |tables: &[crate::simulate::workload::Table]| {
        tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    say(&format!(
        "    simulated Oracle: {} groups of {} KiB, {} KiB/s of redo, tables {} + background {}",
        opts.groups,
        opts.log_size >> 10,
        opts.rate >> 10,
        names(&stage.paper),
        names(&default_tables())
    ));
    if stage.threads == 1 {
        say("    watcher (archived logs -> WORM) and extractor (online log -> collector) started");
    } else {
        say(&format!(
            "    {} redo threads (RAC instances): the watcher (every thread's archived logs -> WORM) and one extractor per thread (its online log -> collector, [online] threads = [t]) started",
            stage.threads
        ));
    }
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

/// A simulated database that runs on its own thread until it crashes.
pub struct LiveDb {
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
    pub fn crash(self) -> Result<CrashClock, DrillError> {
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
pub struct CrashClock {
    /// Simulated Unix time (the clock of the journal's commit times), to the microsecond.
    pub at: f64,
    /// How far that clock was behind the wall clock: a commit that is `d` seconds old on the
    /// database's clock is at most `d + behind` seconds old on the wall clock.
    pub behind: Duration,
}
