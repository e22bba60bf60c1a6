//! The `redovault-verifier` command line (the only module of this crate that uses `anyhow`):
//! `verify` (once or as a daemon), `restore archive|online|script`, `check-config`.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use redovault::alert::{Alarm, AlarmKind, AlertMetrics, Alerter, Severity as AlarmSeverity};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::ManifestEntry;
use redovault::store::ArchiveStore;
use redovault::store::local::LocalStore;
use redovault::store::s3::S3Store;
use redovault::telemetry::{Histogram, Registry};
use redovault::watcher::config::StoreKind;
use redovault::wire::StreamId;
use redovault_collector::rebuild::{RebuildOptions, rebuild, rebuild_from_chunks};
use redovault_collector::store::StreamSnapshot;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::chain;
use crate::config::VerifierConfig;
use crate::copies::{self, CopyKind, CopyUnits, Facts, Held};
use crate::growth::{ManifestGrowth, unix_seconds};
use crate::html;
use crate::incremental::Incremental;
use crate::online_record::{CopyRecord, OnlineRecord, OnlineRecords, StreamFilter, select_streams};
use crate::report::{AuditReport, LogRef, Verdict};
use crate::restore::{Progress, RestoreItem, restore_archive};
use crate::script::{self, ArchivedLogFile, ScriptInput, Target};
use crate::stream;
use crate::unsealed;
use crate::verify::{CollectorSource, DeepMode, VerifyOptions, verify};
use crate::worm_stream::{self, WormStream};

/// Audits the WORM archive, the manifest chain and the collector; restores for recovery.
#[derive(Debug, Parser)]
#[command(
    name = "redovault-verifier",
    version = redovault::build_info::version_line(env!("CARGO_PKG_VERSION")),
    about
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify once (exit 0 clean, 1 findings, 2 could not run), or on a schedule (--daemon).
    Verify(VerifyArgs),
    /// Bring archived logs or the last-commit online log back, or write the recovery script.
    Restore {
        #[command(subcommand)]
        what: RestoreCommand,
    },
    /// The whole recovery in order (verify, restore archive, restore online, restore script),
    /// resumable: run the same command again after an interruption.
    Recover(RecoverArgs),
    /// Check a configuration file (`FILE` or `--config FILE`) and list every problem.
    CheckConfig(redovault::checkconfig::CheckConfigArgs),
    /// Serve the DR console (`[console]`): a read-only live page of every database's state.
    Console(ConsoleArgs),
}

#[derive(Debug, Args)]
struct ConsoleArgs {
    /// Configuration file (with a `[console]` section).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Debug, Args)]
struct RecoverArgs {
    /// Configuration file (store, collectors, WORM prefixes).
    #[arg(long)]
    config: PathBuf,
    /// Destination directory (its recover-state.json says what a stopped run did).
    #[arg(long)]
    dest: PathBuf,
    /// The offline recovery private key (PKCS#8 PEM): the online log may come from the
    /// collectors' pieces in WORM (the only source left when the backup host is gone).
    #[arg(long)]
    recovery_key: Option<PathBuf>,
    /// The RTO target (`30m`, `2h`): the report says met or exceeded.
    #[arg(long)]
    rto_target: Option<String>,
    /// Stop after this step (verify, restore-archive, restore-online, restore-script).
    #[arg(long)]
    stop_after: Option<String>,
    /// The database (its DBID) to recover, when WORM or the collectors hold several.
    #[arg(long)]
    db_id: Option<u32>,
    /// Also keep the report here, under a name of its own (the recovery history).
    #[arg(long)]
    history: Option<PathBuf>,
    /// Print the report as JSON at the end.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeepArg {
    Off,
    All,
    Rolling,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Override `verify.deep`.
    #[arg(long, value_enum)]
    deep: Option<DeepArg>,
    /// Incremental run (or `verify.incremental = true`): after a clean run kept its anchor
    /// in `verify.state_dir`, read only the sealed segments after it and HEAD only the
    /// objects a listing of versions shows new or changed (plus the rolling deep share);
    /// without an anchor, or when anything verified before changed, a full run.
    #[arg(long, conflicts_with = "full")]
    incremental: bool,
    /// A full run even with `verify.incremental = true` (its anchor is kept for the next
    /// incremental run).
    #[arg(long)]
    full: bool,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the HTML audit report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Run every `verify.interval` until stopped (SIGTERM/SIGINT).
    #[arg(long)]
    daemon: bool,
    /// The offline recovery private key (PKCS#8 PEM), overriding `verify.recovery_key`: the
    /// pieces of the collector's streams re-hashed in WORM are opened and their redo compared
    /// with the archived logs of the same sequences.
    #[arg(long)]
    recovery_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RestoreCommand {
    /// Archived logs from WORM into DEST, verified against the manifest (and those shipped
    /// since the last seal, against their SHA-256 keys), in order, resumable.
    Archive(RestoreArchiveArgs),
    /// The online log rebuilt to the last commit from the longest copy that agrees with the
    /// others (each collector's segments, each WORM prefix with the recovery key).
    Online(RestoreOnlineArgs),
    /// RMAN and SQL*Plus recovery scripts for what was restored into DEST.
    Script(RestoreScriptArgs),
}

#[derive(Debug, Args)]
struct RestoreArchiveArgs {
    /// Configuration file (store, prefix, local manifest).
    #[arg(long)]
    config: PathBuf,
    /// Destination directory.
    #[arg(long)]
    dest: PathBuf,
    /// Only this thread.
    #[arg(long)]
    thread: Option<u16>,
    /// From this sequence.
    #[arg(long)]
    from_seq: Option<u32>,
    /// Up to this sequence.
    #[arg(long)]
    to_seq: Option<u32>,
    /// Every log needed to recover up to (not including) this SCN.
    #[arg(long, conflicts_with = "until_time")]
    until_scn: Option<u64>,
    /// Every log needed to recover up to this time (ISO 8601, database clock).
    #[arg(long)]
    until_time: Option<String>,
    /// Downloads at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// The database (its DBID) whose logs to restore: needed only when WORM holds archived
    /// logs of several databases.
    #[arg(long)]
    db_id: Option<u32>,
}

#[derive(Debug, Args)]
struct RestoreOnlineArgs {
    /// Configuration file (its [collector] or [[collector]] tables, and with
    /// --recovery-key its [store] and WORM prefixes), unless given by flags.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A collector's data directory (repeat for several collectors, each with its
    /// --key-file, paired in order).
    #[arg(long)]
    collector_dir: Vec<PathBuf>,
    /// That collector's key file.
    #[arg(long)]
    key_file: Vec<PathBuf>,
    /// Destination directory.
    #[arg(long)]
    dest: PathBuf,
    /// Only this thread (default: every thread of the database found, one log each).
    #[arg(long)]
    thread: Option<u16>,
    /// The database (its DBID) whose threads to rebuild, each of them: needed only when WORM
    /// or the collectors hold several databases.
    #[arg(long)]
    db_id: Option<u32>,
    /// The stream, `db<dbid>-rl<resetlogs id>-t<thread>` (one thread of one database).
    #[arg(long)]
    stream: Option<String>,
    /// Pad the file with zeros to the online log's size (the default): the shape of an online
    /// log member past its write point, which Oracle and `redovault inspect` expect. Kept so
    /// that scripts written for earlier releases, which had to ask for it, still run.
    #[arg(long, overrides_with = "no_pad")]
    pad: bool,
    /// Write only the redo up to the cut (the last commit), not the full log size: to compare
    /// the file with a prefix of the source log.
    #[arg(long)]
    no_pad: bool,
    /// The offline recovery private key (PKCS#8 PEM): read the stream's pieces from WORM
    /// (the `[store]` of --config) too, under every WORM prefix, as more copies.
    #[arg(long, requires = "config")]
    recovery_key: Option<PathBuf>,
    /// Where a collector's pieces are in WORM (repeatable; default: `[verify] worm_prefix`
    /// or `[store] prefix`, and every `[[collector]] worm_prefix`).
    #[arg(long, requires = "recovery_key")]
    worm_prefix: Vec<String>,
    /// Rebuild from this copy (a collector's name, or `worm:<prefix>`) whatever the others
    /// hold: for copies that diverge with no majority, once the operator knows which to trust.
    #[arg(long)]
    copy: Option<String>,
    /// Print what was rebuilt as JSON on stdout (each thread's record, as in
    /// `restore-online.json`); the progress lines go to stderr.
    #[arg(long)]
    json: bool,
}

/// Where `restore online` prints its progress lines: stdout, or stderr under `--json`.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn line(&self, s: impl std::fmt::Display) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
}

#[derive(Debug, Args)]
struct RestoreScriptArgs {
    /// The directory `restore archive` / `restore online` wrote into.
    #[arg(long)]
    dest: PathBuf,
    /// Recover up to (not including) this SCN instead of the last commit.
    #[arg(long, conflicts_with = "until_time")]
    until_scn: Option<u64>,
    /// Recover up to this time (YYYY-MM-DD HH24:MI:SS).
    #[arg(long)]
    until_time: Option<String>,
}

/// What `restore archive` leaves in DEST for `restore script`.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveRecord {
    restored_at: String,
    files: Vec<RecordFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RecordFile {
    path: PathBuf,
    thread: u16,
    sequence: u32,
    first_scn: u64,
    next_scn: u64,
    sha256: String,
    /// True for a log shipped into WORM but not yet sealed in a manifest when restored
    /// (identified by its Oracle headers, verified against its key's SHA-256).
    #[serde(default)]
    shipped_not_sealed: bool,
}

const ARCHIVE_RECORD: &str = "restore-archive.json";

/// Runs the command line; returns the process exit code.
pub fn main() -> anyhow::Result<i32> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::CheckConfig(a) => {
            let file = a.path().map_err(anyhow::Error::msg)?;
            let verdict = VerifierConfig::load(&file)
                .map(|cfg| verifier_summary(&cfg))
                .map_err(|e| e.problems);
            let ok = verdict.is_ok();
            let _ = redovault::checkconfig::report(&file, verdict);
            Ok(if ok { 0 } else { 1 })
        }
        Command::Verify(a) => {
            let cfg = VerifierConfig::load(&a.config)?;
            redovault::telemetry::init_tracing(cfg.telemetry.log_format, &cfg.telemetry.log_level);
            rt.block_on(dispatch_verify(cfg, a))
        }
        Command::Recover(a) => recover(a),
        Command::Console(a) => {
            let cfg = VerifierConfig::load(&a.config)?;
            redovault::telemetry::init_tracing(cfg.telemetry.log_format, &cfg.telemetry.log_level);
            rt.block_on(dispatch_console(cfg))
        }
        Command::Restore { what } => {
            redovault::telemetry::init_tracing(redovault::telemetry::LogFormat::Text, "warn");
            match what {
                RestoreCommand::Archive(a) => {
                    let cfg = VerifierConfig::load(&a.config)?;
                    rt.block_on(dispatch_restore(cfg, a))
                }
                RestoreCommand::Online(a) => restore_online(a, &rt),
                RestoreCommand::Script(a) => restore_script(a),
            }
        }
    }
}

/// What a valid verifier configuration amounts to, for `check-config`.
fn verifier_summary(cfg: &VerifierConfig) -> Vec<String> {
    let mut v = vec![format!("store: {} (read only)", target(cfg))];
    if let Some(c) = &cfg.console {
        v.push(format!(
            "console: {}://{} (read only), {} database(s), {} collector(s), {} extractor(s), {} watcher(s)",
            if c.tls_cert.is_some() { "https" } else { "http" },
            c.listen,
            c.databases.len(),
            c.collectors.len(),
            c.extractors.len(),
            c.watchers.len()
        ));
    }
    v
}

fn target(cfg: &VerifierConfig) -> String {
    match cfg.store.kind {
        StoreKind::S3 => format!("s3://{}/{}", cfg.store.bucket, cfg.store.prefix),
        StoreKind::Local => format!(
            "local:{}/{}",
            cfg.store.dir.as_deref().unwrap_or(Path::new("")).display(),
            cfg.store.prefix
        ),
    }
}

async fn dispatch_verify(cfg: VerifierConfig, a: VerifyArgs) -> anyhow::Result<i32> {
    match cfg.store.kind {
        StoreKind::S3 => {
            let s = S3Store::new(redovault::watcher::s3_config(&cfg.store)?)?;
            run_verify(Arc::new(s), cfg, a).await
        }
        StoreKind::Local => {
            let dir = cfg.store.dir.clone().context("store.dir")?;
            run_verify(Arc::new(LocalStore::new(dir)?), cfg, a).await
        }
    }
}

async fn dispatch_console(cfg: VerifierConfig) -> anyhow::Result<i32> {
    match cfg.store.kind {
        StoreKind::S3 => {
            let s = S3Store::new(redovault::watcher::s3_config(&cfg.store)?)?;
            run_console(Arc::new(s), cfg).await
        }
        StoreKind::Local => {
            let dir = cfg.store.dir.clone().context("store.dir")?;
            run_console(Arc::new(LocalStore::new(dir)?), cfg).await
        }
    }
}

/// `console`: serves until SIGTERM or SIGINT.
async fn run_console<S: ArchiveStore + 'static>(
    store: Arc<S>,
    cfg: VerifierConfig,
) -> anyhow::Result<i32> {
    let Some(console) = cfg.console.clone() else {
        bail!("no [console] section in the configuration (see deploy/docs/console.md)");
    };
    let prefix = cfg.store.prefix.clone();
    let worm_prefix = cfg
        .verify
        .worm_prefix
        .clone()
        .unwrap_or_else(|| prefix.clone());
    let cancel = CancellationToken::new();
    // State changes go to the alert hook of `[alert]` (the counters are the console's own:
    // it serves no /metrics).
    let r = Registry::new();
    let alert_metrics = AlertMetrics {
        raised: r.counter_vec(
            "redovault_console_alarms_total",
            "Alarms raised, by kind.",
            "kind",
        ),
        failed: r.counter(
            "redovault_console_alarm_deliveries_failed_total",
            "Alarm deliveries that failed.",
        ),
        dropped: r.counter(
            "redovault_console_alarms_dropped_total",
            "Alarms not queued for the hook (queue full).",
        ),
    };
    let alert_cancel = CancellationToken::new();
    let (alerter, alert_task) =
        Alerter::start(cfg.alert.hook(), alert_metrics, alert_cancel.clone())?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(crate::console::run(
        console,
        store,
        prefix,
        worm_prefix,
        alerter,
        cancel.clone(),
        tx,
    ));
    if let Ok(addr) = rx.await {
        eprintln!("redovault-verifier: console on {addr}");
    }
    let stop = cancel.clone();
    tokio::spawn(async move {
        wait_for_stop().await;
        stop.cancel();
    });
    let served = task.await.context("the console task");
    alert_cancel.cancel();
    let _ = alert_task.await;
    served??;
    Ok(0)
}

async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn dispatch_restore(cfg: VerifierConfig, a: RestoreArchiveArgs) -> anyhow::Result<i32> {
    match cfg.store.kind {
        StoreKind::S3 => {
            let s = S3Store::new(redovault::watcher::s3_config(&cfg.store)?)?;
            run_restore(Arc::new(s), cfg, a).await
        }
        StoreKind::Local => {
            let dir = cfg.store.dir.clone().context("store.dir")?;
            run_restore(Arc::new(LocalStore::new(dir)?), cfg, a).await
        }
    }
}

fn options(
    cfg: &VerifierConfig,
    deep: Option<DeepArg>,
    recovery_key: Option<&Path>,
    incremental: Incremental,
) -> anyhow::Result<VerifyOptions> {
    let collectors = cfg
        .collectors
        .iter()
        .map(|c| {
            Ok(CollectorSource {
                name: c.name.clone(),
                dir: c.dir.clone(),
                keys: KeyRing::load(&c.key_file).with_context(|| {
                    format!("collector {} key file {}", c.name, c.key_file.display())
                })?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deep = match deep {
        None => cfg.verify.deep_mode(),
        Some(DeepArg::Off) => DeepMode::Off,
        Some(DeepArg::All) => DeepMode::All,
        Some(DeepArg::Rolling) => match cfg.verify.deep_mode() {
            DeepMode::Rolling { cycle } => DeepMode::Rolling { cycle },
            _ => DeepMode::Rolling { cycle: 30 },
        },
    };
    Ok(VerifyOptions {
        target: target(cfg),
        prefix: cfg.store.prefix.clone(),
        local_manifest: cfg.verify.local_manifest.clone(),
        policy: crate::objects::Policy {
            lock_mode: cfg.verify.lock_mode,
            min_retention: cfg.verify.min_retention,
        },
        deep,
        parallel: cfg.verify.parallel,
        collectors,
        acknowledged: cfg.verify.acknowledged_gaps.clone(),
        state_dir: Some(cfg.verify.state_dir.clone()),
        worm_prefix: cfg.verify.worm_prefix.clone(),
        worm_copies: cfg
            .collectors
            .iter()
            .filter_map(|c| c.worm_prefix.clone())
            .collect(),
        recovery_key: recovery_key
            .or(cfg.verify.recovery_key.as_deref())
            .map(|p| {
                RecoveryPrivateKey::load(p)
                    .map(Arc::new)
                    .with_context(|| format!("recovery key {}", p.display()))
            })
            .transpose()?,
        incremental,
    })
}

struct VerifierMetrics {
    registry: Arc<Registry>,
    runs: Arc<redovault::telemetry::Counter>,
    findings: Arc<redovault::telemetry::CounterVec>,
    last_run: Arc<redovault::telemetry::Gauge>,
    last_clean: Arc<redovault::telemetry::Gauge>,
    last_errors: Arc<redovault::telemetry::Gauge>,
    last_verdict: Arc<redovault::telemetry::Gauge>,
    bytes: Arc<redovault::telemetry::Counter>,
    duration: Arc<Histogram>,
    sealed_entries: Arc<redovault::telemetry::Gauge>,
    newest_entry: Arc<redovault::telemetry::Gauge>,
    last_growth: Arc<redovault::telemetry::Gauge>,
    growth: std::sync::Mutex<ManifestGrowth>,
    alerts: AlertMetrics,
}

impl VerifierMetrics {
    fn new(interval: std::time::Duration) -> VerifierMetrics {
        let r = Arc::new(Registry::new());
        // Set once: the manifest-growth rule adds it to its bound (growth is seen at most
        // one interval late).
        r.gauge(
            "redovault_verifier_interval_seconds",
            "Time between runs (verify.interval) of `verify --daemon`.",
        )
        .set(interval.as_secs_f64());
        VerifierMetrics {
            sealed_entries: r.gauge(
                "redovault_verifier_manifest_sealed_entries",
                "Manifest entries sealed in WORM at the last run.",
            ),
            newest_entry: r.gauge(
                "redovault_verifier_manifest_newest_entry_timestamp_seconds",
                "When the newest entry sealed in WORM was shipped (watcher clock, Unix time).",
            ),
            last_growth: r.gauge(
                "redovault_verifier_manifest_last_growth_timestamp_seconds",
                "When this verifier last saw the sealed manifest grow (its clock, Unix time).",
            ),
            growth: std::sync::Mutex::new(ManifestGrowth::default()),
            runs: r.counter("redovault_verifier_runs_total", "Verification runs."),
            findings: r.counter_vec(
                "redovault_verifier_findings_total",
                "Error findings, by kind, summed over runs.",
                "kind",
            ),
            last_run: r.gauge(
                "redovault_verifier_last_run_timestamp_seconds",
                "End of the last run (Unix time).",
            ),
            last_clean: r.gauge(
                "redovault_verifier_last_clean_run_timestamp_seconds",
                "End of the last run without findings (Unix time).",
            ),
            last_errors: r.gauge(
                "redovault_verifier_last_run_findings",
                "Error findings of the last run.",
            ),
            last_verdict: r.gauge(
                "redovault_verifier_last_run_exit_code",
                "Exit code of the last run: 0 clean, 1 findings, 2 could not run.",
            ),
            bytes: r.counter(
                "redovault_verifier_rehashed_bytes_total",
                "Bytes downloaded and re-hashed (archived logs and pieces).",
            ),
            duration: r.histogram(
                "redovault_verifier_run_duration_seconds",
                "Duration of a run.",
                Histogram::seconds(),
            ),
            alerts: AlertMetrics {
                raised: r.counter_vec(
                    "redovault_verifier_alarms_total",
                    "Alarms raised, by kind.",
                    "kind",
                ),
                failed: r.counter(
                    "redovault_verifier_alarm_deliveries_failed_total",
                    "Alarm deliveries that failed.",
                ),
                dropped: r.counter(
                    "redovault_verifier_alarms_dropped_total",
                    "Alarms not queued for the hook (queue full).",
                ),
            },
            registry: r,
        }
    }

    fn record(&self, r: &AuditReport, secs: f64) {
        let now = chrono::Utc::now().timestamp() as f64;
        self.runs.inc();
        for (kind, n) in r.counts_by_kind() {
            self.findings.add(kind.as_str(), n);
        }
        self.last_run.set(now);
        if r.verdict == Verdict::Clean {
            self.last_clean.set(now);
        }
        self.last_errors.set(r.summary.errors as f64);
        self.last_verdict.set(f64::from(r.verdict.exit_code()));
        self.bytes
            .add(r.summary.bytes_rehashed + r.summary.piece_bytes_rehashed);
        self.duration.observe(secs);
        if r.verdict != Verdict::CouldNotRun {
            self.record_growth(now, &r.summary);
        }
    }

    /// The manifest-growth gauges ([`crate::growth`]).
    fn record_growth(&self, now: f64, s: &crate::report::Summary) {
        let newest = s.newest_sealed_shipped_at.as_deref().and_then(unix_seconds);
        let mut g = self.growth.lock().unwrap_or_else(|p| p.into_inner());
        g.observe(now, s.sealed_entries, newest);
        self.sealed_entries.set(s.sealed_entries as f64);
        if let Some(t) = newest {
            self.newest_entry.set(t);
        }
        if let Some(t) = g.grew_at {
            self.last_growth.set(t);
        }
    }
}

fn alarm_for(r: &AuditReport) -> Option<Alarm> {
    let (kind, sev, msg) = match r.verdict {
        Verdict::Clean => return None,
        Verdict::Findings => (
            AlarmKind::VerifyFindings,
            if r.findings.iter().any(|f| f.kind.is_tampering()) {
                AlarmSeverity::Critical
            } else {
                AlarmSeverity::Warning
            },
            format!(
                "verification of {} found {} problem(s): {}",
                r.target,
                r.summary.errors,
                r.findings
                    .iter()
                    .take(5)
                    .map(|f| format!("{} {}", f.kind.as_str(), f.subject))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        Verdict::CouldNotRun => (
            AlarmKind::VerifyFailed,
            AlarmSeverity::Critical,
            format!(
                "verification of {} could not run: {}",
                r.target,
                r.error.as_deref().unwrap_or("unknown")
            ),
        ),
    };
    let mut a = Alarm::new(kind, sev, msg)
        .details(serde_json::to_value(&r.summary).unwrap_or(serde_json::Value::Null));
    a.component = "verifier";
    Some(a)
}

async fn run_verify<S: ArchiveStore + 'static>(
    store: Arc<S>,
    cfg: VerifierConfig,
    a: VerifyArgs,
) -> anyhow::Result<i32> {
    let incremental = if a.full {
        Incremental::Full
    } else if a.incremental || cfg.verify.incremental {
        Incremental::On
    } else {
        Incremental::Off
    };
    let opts = options(&cfg, a.deep, a.recovery_key.as_deref(), incremental)?;
    let cancel = CancellationToken::new();
    let metrics = VerifierMetrics::new(cfg.verify.interval);
    if let Some(addr) = cfg.telemetry.metrics_listen {
        let bound = redovault::telemetry::serve_metrics(
            addr,
            Arc::clone(&metrics.registry),
            cancel.clone(),
        )
        .await
        .with_context(|| format!("metrics on {addr}"))?;
        tracing::info!(%bound, "metrics served");
    }
    let (alerter, alert_task) =
        Alerter::start(cfg.alert.hook(), metrics.alerts.clone(), cancel.clone())?;
    let signals = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        signals.cancel();
    });
    let mut code;
    loop {
        let t0 = Instant::now();
        let report = verify(Arc::clone(&store), &opts).await;
        metrics.record(&report, t0.elapsed().as_secs_f64());
        code = report.verdict.exit_code();
        if let Some(alarm) = alarm_for(&report) {
            alerter.raise(alarm);
        }
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_text());
        }
        if let Some(p) = &a.html {
            std::fs::write(p, html::render(&report))
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if a.daemon
            && let Some(dir) = &cfg.verify.report_dir
        {
            write_reports(dir, &report)?;
        }
        if !a.daemon {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(cfg.verify.interval) => {},
        }
    }
    cancel.cancel();
    let _ = alert_task.await;
    Ok(code)
}

fn write_reports(dir: &Path, r: &AuditReport) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = r.finished_at.replace(':', "");
    let base = dir.join(format!("report-{stamp}"));
    redovault::durable::write_atomic(&base.with_extension("json"), &serde_json::to_vec_pretty(r)?)?;
    redovault::durable::write_atomic(&base.with_extension("html"), html::render(r).as_bytes())?;
    Ok(())
}

/// The manifest entries to restore, in recovery order (first SCN, thread, sequence).
fn select(entries: Vec<ManifestEntry>, a: &RestoreArchiveArgs) -> Vec<ManifestEntry> {
    let mut v: Vec<ManifestEntry> = entries
        .into_iter()
        .filter(|e| a.thread.is_none_or(|t| e.thread.0 == t))
        .filter(|e| a.from_seq.is_none_or(|s| e.sequence.0 >= s))
        .filter(|e| a.to_seq.is_none_or(|s| e.sequence.0 <= s))
        .filter(|e| a.until_scn.is_none_or(|s| e.first_scn.0 < s))
        .filter(|e| {
            a.until_time
                .as_deref()
                .is_none_or(|t| e.first_time.as_str() < t)
        })
        .collect();
    v.sort_by_key(|e| (e.first_scn, e.thread, e.sequence));
    v
}

async fn manifest_entries<S: ArchiveStore>(
    store: &S,
    cfg: &VerifierConfig,
) -> anyhow::Result<Vec<ManifestEntry>> {
    let (sealed, mut audit) =
        chain::read_sealed::<ManifestEntry, _>(store, &cfg.store.prefix, "manifest")
            .await
            .context("reading the sealed manifest")?;
    if let Some(dir) = &cfg.verify.local_manifest {
        let lines = chain::read_local(dir)
            .with_context(|| format!("reading the local manifest {}", dir.display()))?;
        let local = chain::audit_lines(&lines, "local copy");
        for (i, v) in local.entries {
            audit.entries.entry(i).or_insert(v);
        }
    }
    for f in sealed.findings.iter().chain(&audit.findings) {
        eprintln!(
            "warning: manifest: {} {}: {}",
            f.kind.as_str(),
            f.subject,
            f.detail
        );
    }
    Ok(audit.entries.into_values().map(|(e, _)| e).collect())
}

/// The sealed entries plus the archived logs shipped into WORM since the last seal (of the
/// database chosen), with the keys of the latter. Problems the listing finds (damaged or
/// foreign objects, gaps before the unsealed logs) are printed as warnings: they are not
/// restored, and `verify` reports them.
async fn with_unsealed<S: ArchiveStore>(
    store: &S,
    cfg: &VerifierConfig,
    sealed: Vec<ManifestEntry>,
    a: &RestoreArchiveArgs,
) -> anyhow::Result<(Vec<ManifestEntry>, std::collections::HashSet<String>)> {
    let referenced = sealed.iter().map(|e| e.object_key.clone()).collect();
    let sealed_logs = sealed
        .iter()
        .map(|e| {
            (
                (e.db_id, e.resetlogs_id, e.thread.0, e.sequence.0),
                e.sha256,
            )
        })
        .collect();
    let opts = unsealed::ScanOptions {
        prefix: cfg.store.prefix.clone(),
        worm_prefix: cfg
            .verify
            .worm_prefix
            .clone()
            .unwrap_or_else(|| cfg.store.prefix.clone()),
        worm_copies: cfg
            .collectors
            .iter()
            .filter_map(|c| c.worm_prefix.clone())
            .collect(),
        // Restore re-hashes every byte it downloads: HEAD is enough here.
        deep: false,
        lock_mode: None,
        parallel: a.parallel,
    };
    let scan = unsealed::scan(store, &opts, &referenced, &sealed_logs)
        .await
        .context("listing the archive for logs shipped since the last seal")?;
    let db = unsealed::choose_db(a.db_id, &unsealed::db_ids(sealed.iter(), &scan.logs))?;
    let logs: Vec<unsealed::UnsealedLog> = scan
        .logs
        .into_iter()
        .filter(|l| db.is_none_or(|d| d == l.header.db_id.0))
        .collect();
    let sealed_refs: Vec<LogRef> = sealed
        .iter()
        .filter(|e| db.is_none_or(|d| d == e.db_id.0))
        .map(|e| LogRef {
            resetlogs_id: e.resetlogs_id,
            thread: e.thread.0,
            sequence: e.sequence.0,
        })
        .collect();
    let unsealed_refs: Vec<LogRef> = logs.iter().map(|l| l.log()).collect();
    let problems = scan
        .findings
        .iter()
        .filter(|f| f.severity == crate::report::Severity::Error)
        .chain(unsealed::gaps(&sealed_refs, &unsealed_refs).iter())
        .map(|f| format!("{} {}: {}", f.kind.as_str(), f.subject, f.detail))
        .collect::<Vec<_>>();
    for p in problems {
        eprintln!("warning: {p}");
    }
    if !logs.is_empty() {
        eprintln!(
            "{} archived log(s) shipped into WORM but not yet sealed in a manifest: restored too (identified by their Oracle headers, verified against their key's SHA-256)",
            logs.len()
        );
    }
    Ok(unsealed::restore_candidates(sealed, &logs, db))
}

async fn run_restore<S: ArchiveStore + 'static>(
    store: Arc<S>,
    cfg: VerifierConfig,
    a: RestoreArchiveArgs,
) -> anyhow::Result<i32> {
    let sealed = manifest_entries(store.as_ref(), &cfg).await?;
    let (candidates, unsealed_keys) = with_unsealed(store.as_ref(), &cfg, sealed, &a).await?;
    let entries = select(candidates, &a);
    if entries.is_empty() {
        bail!(
            "no archived log in WORM (sealed manifest or shipped since) matches the requested range"
        );
    }
    let items: Vec<RestoreItem> = entries.iter().map(RestoreItem::from).collect();
    let tty = std::io::stderr().is_terminal();
    let t0 = Instant::now();
    let summary = restore_archive(Arc::clone(&store), &items, &a.dest, a.parallel, |p| {
        progress(p, tty, t0)
    })
    .await;
    if tty {
        eprintln!();
    }
    let summary = summary?;
    let record = ArchiveRecord {
        restored_at: redovault::alert::now_rfc3339(),
        files: entries
            .iter()
            .zip(&summary.files)
            .map(|(e, p)| RecordFile {
                path: std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()),
                thread: e.thread.0,
                sequence: e.sequence.0,
                first_scn: e.first_scn.0,
                next_scn: e.next_scn.0,
                sha256: e.sha256.to_string(),
                shipped_not_sealed: unsealed_keys.contains(&e.object_key),
            })
            .collect(),
    };
    redovault::durable::write_atomic(
        &a.dest.join(ARCHIVE_RECORD),
        &serde_json::to_vec_pretty(&record)?,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let bytes: u64 = items.iter().map(|i| i.size).sum();
    let n_unsealed = entries
        .iter()
        .filter(|e| unsealed_keys.contains(&e.object_key))
        .count();
    println!(
        "restored {} archived log(s) into {} ({} from sealed manifests, {} shipped but not yet sealed; {} downloaded, {} already there, verified SHA-256), {:.1} MB in {:.1} s ({:.0} MB/s)",
        items.len(),
        a.dest.display(),
        items.len() - n_unsealed,
        n_unsealed,
        summary.restored,
        summary.already_present,
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(0)
}

fn progress(p: Progress, tty: bool, t0: Instant) {
    if !tty {
        return;
    }
    let width = 30usize;
    let done = (p.bytes_done as f64 / p.bytes_total.max(1) as f64 * width as f64) as usize;
    let secs = t0.elapsed().as_secs_f64().max(1e-3);
    eprint!(
        "\r[{}{}] {}/{} files, {:.0}/{:.0} MB, {:.0} MB/s ",
        "#".repeat(done.min(width)),
        ".".repeat(width - done.min(width)),
        p.files_done,
        p.files_total,
        p.bytes_done as f64 / 1e6,
        p.bytes_total as f64 / 1e6,
        p.bytes_done as f64 / 1e6 / secs
    );
}

fn restore_online(a: RestoreOnlineArgs, rt: &tokio::runtime::Runtime) -> anyhow::Result<i32> {
    let cfg = a.config.as_deref().map(VerifierConfig::load).transpose()?;
    let collectors = collector_copies(&a, cfg.as_ref())?;
    let worms = match (&a.recovery_key, &cfg) {
        (Some(k), Some(cfg)) => {
            let key = RecoveryPrivateKey::load(k)?;
            let mut listed = Vec::new();
            for prefix in worm_prefixes(&a.worm_prefix, cfg) {
                let streams = rt.block_on(worm_streams(cfg, &prefix))?;
                listed.push((prefix, streams));
            }
            Some((cfg, key, listed))
        }
        _ => None,
    };
    let mut found: BTreeSet<StreamId> = BTreeSet::new();
    let mut places = Vec::new();
    for c in &collectors {
        if let Some((audit, _)) = &c.read {
            found.extend(audit.snapshots.keys().copied());
        }
        places.push(format!("the collector {} in {}", c.name, c.dir.display()));
    }
    if let Some((_, _, listed)) = &worms {
        for (prefix, streams) in listed {
            found.extend(streams.iter().copied());
            places.push(format!("WORM under {prefix:?}"));
        }
    }
    if collectors.iter().all(|c| c.read.is_none()) && worms.is_none() {
        bail!(
            "no copy to restore from: every collector directory is gone ({}) and no --recovery-key to read WORM",
            collectors
                .iter()
                .map(|c| c.dir.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    // Without --thread or --stream: every thread of the database (RAC), each recorded.
    let filter = StreamFilter {
        db_id: a.db_id,
        thread: a.thread,
        stream: a.stream.as_deref(),
    };
    let streams = select_streams(&found, filter, &places.join(" and "))?;
    std::fs::create_dir_all(&a.dest).with_context(|| format!("creating {}", a.dest.display()))?;
    let out = Out { json: a.json };
    let mut rebuilt = Vec::new();
    for stream in streams {
        let mut copies: Vec<OnlineCopy> = collectors
            .iter()
            .map(|c| OnlineCopy {
                name: c.name.clone(),
                kind: CopyKind::Collector,
                place: c.dir.display().to_string(),
                source: c.read.as_ref().and_then(|(audit, keys)| {
                    audit
                        .snapshots
                        .get(&stream)
                        .map(|snap| CopySource::Collector(snap.clone(), keys.clone()))
                }),
                units: c
                    .read
                    .as_ref()
                    .map(|(audit, _)| audit.copy_units(stream))
                    .unwrap_or_default(),
            })
            .collect();
        if let Some((cfg, key, listed)) = &worms {
            for (prefix, streams) in listed {
                let ws = if streams.contains(&stream) {
                    Some(rt.block_on(worm_stream(cfg, prefix, key, stream))?)
                } else {
                    None
                };
                copies.push(OnlineCopy {
                    name: format!("worm:{prefix}"),
                    kind: CopyKind::Worm,
                    place: prefix.clone(),
                    units: ws
                        .as_ref()
                        .map(|w| CopyUnits::from_chunks(&w.chunks))
                        .unwrap_or_default(),
                    source: ws.filter(|w| w.end.is_some()).map(CopySource::Worm),
                });
            }
        }
        rebuilt.push(restore_one_online(&a, stream, copies, out)?);
    }
    print_online_summary(&rebuilt, &a.dest, out)?;
    Ok(0)
}

/// Each thread's last commit, the point `restore script` can recover to, and with `--json`
/// the records of this run.
fn print_online_summary(rebuilt: &[OnlineRecord], dest: &Path, out: Out) -> anyhow::Result<()> {
    for r in rebuilt {
        out.line(format!(
            "thread {}: last commit SCN {} XID {} at {}, sequence {}, {} commits: {} (from {})",
            r.thread,
            r.last_commit_scn,
            r.last_commit_xid,
            r.last_commit_time.as_deref().unwrap_or("unknown time"),
            r.sequence,
            r.commits,
            r.path.display(),
            r.source
        ));
    }
    if rebuilt.len() > 1
        && let Some(low) = rebuilt.iter().min_by_key(|r| (r.last_commit_scn, r.thread))
    {
        out.line(format!(
            "{} threads rebuilt: recovery reaches the earliest last commit, SCN {} (thread {}); see `restore script`",
            rebuilt.len(),
            low.last_commit_scn,
            low.thread
        ));
    }
    if out.json {
        let v = serde_json::json!({
            "dest": dest,
            "record": dest.join(crate::online_record::ONLINE_RECORD),
            "threads": rebuilt,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

/// One copy of a stream being restored.
struct OnlineCopy {
    name: String,
    kind: CopyKind,
    place: String,
    /// What it holds (None: absent).
    source: Option<CopySource>,
    units: CopyUnits,
}

/// Where a copy's redo is read from.
enum CopySource {
    Collector(StreamSnapshot, KeyRing),
    Worm(WormStream),
}

impl OnlineCopy {
    fn facts(&self) -> Facts {
        Facts {
            name: self.name.clone(),
            kind: self.kind,
            held: self.source.as_ref().and_then(|s| match s {
                CopySource::Collector(snap, _) => Some(Held {
                    end: snap.durable.end,
                    last_commit: snap.durable.last_commit,
                }),
                CopySource::Worm(w) => w.end.map(|end| Held {
                    end,
                    last_commit: w.last_commit,
                }),
            }),
        }
    }
}

fn print_copies(stream: StreamId, records: &[CopyRecord], out: Out) {
    for r in records {
        let held = match (&r.end, r.last_commit_scn, &r.last_commit_end) {
            (None, ..) => String::new(),
            (Some(end), Some(scn), Some(at)) => {
                format!(", ends at {end}, last commit SCN {scn} ending at {at}")
            }
            (Some(end), ..) => format!(", ends at {end}, no commit"),
        };
        let status = match &r.diverges_at {
            Some(p) => format!("diverges at {p}"),
            None => r.status.clone(),
        };
        out.line(format!(
            "copy       {stream} {} ({} {}){held}: {status}{}",
            r.name,
            r.kind,
            r.place,
            if r.chosen { " [chosen]" } else { "" }
        ));
    }
}

/// Compares the copies of one stream, chooses one, rebuilds its online log from it and adds
/// its thread's record (returned).
fn restore_one_online(
    a: &RestoreOnlineArgs,
    stream: StreamId,
    copies: Vec<OnlineCopy>,
    out: Out,
) -> anyhow::Result<OnlineRecord> {
    let facts: Vec<Facts> = copies.iter().map(OnlineCopy::facts).collect();
    let places: Vec<String> = copies.iter().map(|c| c.place.clone()).collect();
    let units: Vec<Option<&CopyUnits>> = copies
        .iter()
        .zip(&facts)
        .map(|(c, f)| f.held.as_ref().map(|_| &c.units))
        .collect();
    let choice = match copies::choose(&facts, &copies::compare_all(&units), a.copy.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            if let copies::ChoiceError::NoMajority { statuses, .. } = &e {
                print_copies(
                    stream,
                    &copies::records(&facts, &places, statuses, None),
                    out,
                );
            }
            bail!("{stream}: {e}");
        }
    };
    let records = copies::records(&facts, &places, &choice.statuses, Some(choice.chosen));
    print_copies(stream, &records, out);
    let opts = RebuildOptions {
        sequence: None,
        pad_to_log_size: !a.no_pad,
    };
    let name = |stream: StreamId, seq: u32| {
        a.dest.join(format!(
            "online_{}_{}_{}.log",
            stream.thread.0, seq, stream.resetlogs_id
        ))
    };
    let kind = facts[choice.chosen].kind;
    let reason = choice.reason.clone();
    let Some(source) = copies.into_iter().nth(choice.chosen).and_then(|c| c.source) else {
        bail!("{stream}: the chosen copy holds nothing");
    };
    let r = match source {
        CopySource::Collector(snap, keys) => {
            let seq = snap
                .durable
                .last_commit
                .map(|c| c.end.seq.0)
                .with_context(|| format!("{}: the stream holds no commit", snap.stream))?;
            rebuild(&snap, &keys, &name(snap.stream, seq), &opts)?
        }
        CopySource::Worm(ws) => {
            let t = ws
                .target(stream)
                .with_context(|| format!("{stream}: the stream's pieces in WORM hold no commit"))?;
            rebuild_from_chunks(&t, &ws.chunks, &name(stream, t.seq.0), &opts)?
        }
    };
    out.line(&r);
    out.line(format!("source     {}: {reason}", kind.as_str()));
    let record = OnlineRecord {
        stream: Some(stream.to_string()),
        path: std::fs::canonicalize(&r.path).unwrap_or(r.path.clone()),
        thread: r.thread.0,
        sequence: r.sequence.0,
        size: r.size,
        file_size: r.file_size,
        sha256: r.sha256_hex(),
        last_commit_scn: r.last_commit.scn.0,
        last_commit_xid: r.last_commit.xid.to_string(),
        last_commit_time: r.last_commit.time.and_then(|t| {
            chrono::DateTime::from_timestamp(t, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }),
        commits: r.commits,
        source: kind.as_str().to_string(),
        source_reason: reason,
        copies: records,
    };
    // One record per thread: `restore script` finds every thread's online log.
    let mut records = OnlineRecords::read(&a.dest)?.unwrap_or_default();
    for n in records.add(record.clone()) {
        out.line(format!("record     {n}"));
    }
    records.write(&a.dest)?;
    Ok(record)
}

/// One collector given to `restore online`: its name, directory, and what was read of it
/// (None: its directory is gone).
struct CollectorCopy {
    name: String,
    dir: PathBuf,
    read: Option<(stream::StreamAudit, KeyRing)>,
}

/// The collectors to read: from the flags (`--collector-dir`/`--key-file` pairs), else from
/// the configuration. A directory that is not there is an absent copy (the backup host was
/// wiped), not an error.
fn collector_copies(
    a: &RestoreOnlineArgs,
    cfg: Option<&VerifierConfig>,
) -> anyhow::Result<Vec<CollectorCopy>> {
    if a.collector_dir.len() != a.key_file.len() {
        bail!(
            "give one --key-file per --collector-dir, in the same order ({} directories, {} key files)",
            a.collector_dir.len(),
            a.key_file.len()
        );
    }
    let listed: Vec<(String, PathBuf, PathBuf)> = if !a.collector_dir.is_empty() {
        let mut out: Vec<(String, PathBuf, PathBuf)> = Vec::new();
        for (d, k) in a.collector_dir.iter().zip(&a.key_file) {
            let base = d
                .file_name()
                .map_or_else(|| d.display().to_string(), |n| n.to_string_lossy().into());
            let mut name = base.clone();
            let mut n = 1;
            while out.iter().any(|(o, _, _)| *o == name) {
                n += 1;
                name = format!("{base}-{n}");
            }
            out.push((name, d.clone(), k.clone()));
        }
        out
    } else {
        match cfg {
            Some(c) => c
                .collectors
                .iter()
                .map(|c| (c.name.clone(), c.dir.clone(), c.key_file.clone()))
                .collect(),
            None => bail!(
                "give --collector-dir and --key-file, or --config with [collector] or [[collector]]"
            ),
        }
    };
    if listed.is_empty() && a.recovery_key.is_none() {
        bail!("no [collector] dir and key_file in the configuration, and no --recovery-key");
    }
    let mut out = Vec::new();
    for (name, dir, key_file) in listed {
        if !dir.is_dir() {
            eprintln!(
                "note: the collector {name}'s directory {} is not there (backup host gone?): absent",
                dir.display()
            );
            out.push(CollectorCopy {
                name,
                dir,
                read: None,
            });
            continue;
        }
        let keys = KeyRing::load(&key_file)
            .with_context(|| format!("collector {name}: key file {}", key_file.display()))?;
        // Read-only: the segments are scanned and authenticated, the collector's store is
        // not opened (it may be running).
        let audit = stream::audit_collector(&dir, &keys);
        for f in &audit.findings {
            eprintln!(
                "warning: {name}: {} {}: {}",
                f.kind.as_str(),
                f.subject,
                f.detail
            );
        }
        out.push(CollectorCopy {
            name,
            dir,
            read: Some((audit, keys)),
        });
    }
    Ok(out)
}

/// The WORM prefixes to read: the flags', else `[verify] worm_prefix` (or `[store] prefix`)
/// and every collector's own, each once.
fn worm_prefixes(flags: &[String], cfg: &VerifierConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all: Vec<String> = if flags.is_empty() {
        std::iter::once(
            cfg.verify
                .worm_prefix
                .clone()
                .unwrap_or_else(|| cfg.store.prefix.clone()),
        )
        .chain(cfg.collectors.iter().filter_map(|c| c.worm_prefix.clone()))
        .collect()
    } else {
        flags.to_vec()
    };
    for p in all {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// The streams with pieces in WORM.
async fn worm_streams(cfg: &VerifierConfig, prefix: &str) -> anyhow::Result<Vec<StreamId>> {
    match cfg.store.kind {
        StoreKind::S3 => {
            let s = S3Store::new(redovault::watcher::s3_config(&cfg.store)?)?;
            worm_stream::list_streams(&s, prefix).await
        }
        StoreKind::Local => {
            let dir = cfg.store.dir.clone().context("store.dir")?;
            worm_stream::list_streams(&LocalStore::new(dir)?, prefix).await
        }
    }
}

/// One stream's pieces in WORM, opened with the recovery key.
async fn worm_stream(
    cfg: &VerifierConfig,
    prefix: &str,
    key: &RecoveryPrivateKey,
    stream: StreamId,
) -> anyhow::Result<WormStream> {
    let ws = match cfg.store.kind {
        StoreKind::S3 => {
            let s = S3Store::new(redovault::watcher::s3_config(&cfg.store)?)?;
            worm_stream::read_stream(&s, prefix, stream, key).await?
        }
        StoreKind::Local => {
            let dir = cfg.store.dir.clone().context("store.dir")?;
            worm_stream::read_stream(&LocalStore::new(dir)?, prefix, stream, key).await?
        }
    };
    for n in &ws.notes {
        eprintln!("warning: worm:{prefix} {stream}: {n}");
    }
    Ok(ws)
}

fn recover(a: RecoverArgs) -> anyhow::Result<i32> {
    use crate::recover::{Step, run};
    let stop_after = a
        .stop_after
        .as_deref()
        .map(|s| {
            Step::parse(s).with_context(|| {
                let names: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
                format!("--stop-after {s:?}: not a step ({})", names.join(", "))
            })
        })
        .transpose()?;
    let rto_target_seconds = a
        .rto_target
        .as_deref()
        .map(|s| {
            redovault::config::parse_duration(s)
                .map(|d| d.as_secs_f64())
                .with_context(|| format!("--rto-target {s:?}: not a duration (e.g. 30m, 2h)"))
        })
        .transpose()?;
    // Refuse a configuration with problems before any step, naming every one.
    VerifierConfig::load(&a.config)?;
    let opts = run::RecoverOptions {
        config: std::fs::canonicalize(&a.config).unwrap_or(a.config.clone()),
        dest: a.dest.clone(),
        recovery_key: a.recovery_key.clone(),
        stop_after,
        rto_target_seconds,
        history: a.history.clone(),
        db_id: a.db_id,
    };
    let (report, code) = run::recover(&opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for t in &report.threads {
            println!(
                "thread {}: sequence {}, last commit SCN {} XID {}{} (from the {})",
                t.thread,
                t.sequence,
                t.last_commit_scn,
                t.last_commit_xid,
                t.last_commit_time
                    .as_deref()
                    .map(|t| format!(" at {t}"))
                    .unwrap_or_default(),
                t.source
            );
        }
        if !report.oracle_commands.is_empty() {
            println!("next, on the database host, in order:");
            for c in &report.oracle_commands {
                println!("  {c}");
            }
        }
        println!(
            "report: {}",
            a.dest.join(crate::recover::report::REPORT_FILE).display()
        );
        println!("{}", report.verdict_line());
    }
    Ok(code)
}

fn restore_script(a: RestoreScriptArgs) -> anyhow::Result<i32> {
    let read = |name: &str| -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read(a.dest.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", a.dest.join(name).display())),
        }
    };
    let archive: Option<ArchiveRecord> = read(ARCHIVE_RECORD)?
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .context(ARCHIVE_RECORD)?;
    let online = OnlineRecords::read(&a.dest)?.unwrap_or_default();
    let target = match (&a.until_scn, &a.until_time) {
        (Some(s), _) => Target::UntilScn(*s),
        (_, Some(t)) => Target::UntilTime(t.clone()),
        _ => Target::LastCommit,
    };
    let input = ScriptInput {
        generated_at: redovault::alert::now_rfc3339(),
        archived: archive
            .map(|r| {
                r.files
                    .into_iter()
                    .map(|f| ArchivedLogFile {
                        path: f.path,
                        thread: f.thread,
                        sequence: f.sequence,
                        first_scn: f.first_scn,
                        next_scn: f.next_scn,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        online: online.online_logs(),
        target,
    };
    let rman = script::rman_script(&input)?;
    let sql = script::sqlplus_script(&input)?;
    redovault::durable::write_atomic(&a.dest.join("recover.rman"), rman.as_bytes())?;
    println!("{}", script::last_recoverable(&input)?);
    for line in script::per_thread(&input)? {
        println!("  {line}");
    }
    println!("wrote {}", a.dest.join("recover.rman").display());
    let sql_path = a.dest.join("recover.sql");
    match sql {
        Some(sql) => {
            redovault::durable::write_atomic(&sql_path, sql.as_bytes())?;
            println!("wrote {}", sql_path.display());
        }
        None => {
            // A recover.sql of an earlier run (another target) must not be run by mistake.
            match std::fs::remove_file(&sql_path) {
                Ok(()) => println!("removed {} of an earlier run", sql_path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {}", sql_path.display()));
                }
            }
            println!("no recover.sql: recover.rman recovers to the target and opens");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault::manifest::Sha256Digest;
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::position::{LogSeq, Scn, ThreadId};

    fn entry(thread: u16, seq: u32, first: u64, time: &str) -> ManifestEntry {
        ManifestEntry {
            index: u64::from(seq),
            db_id: DbId(1),
            db_name: "PROD".into(),
            resetlogs_id: ResetlogsId(5),
            thread: ThreadId(thread),
            sequence: LogSeq(seq),
            first_scn: Scn(first),
            next_scn: Scn(first + 100),
            first_time: time.into(),
            next_time: String::new(),
            size: 1,
            sha256: Sha256Digest::ZERO,
            object_key: String::new(),
            version_id: None,
            retain_until: None,
            shipped_at: String::new(),
            file_name: format!("a_{thread}_{seq}"),
            stored: None,
            prev: Sha256Digest::ZERO,
        }
    }

    fn args(f: impl FnOnce(&mut RestoreArchiveArgs)) -> RestoreArchiveArgs {
        let mut a = RestoreArchiveArgs {
            config: PathBuf::new(),
            dest: PathBuf::new(),
            thread: None,
            from_seq: None,
            to_seq: None,
            until_scn: None,
            until_time: None,
            parallel: 1,
            db_id: None,
        };
        f(&mut a);
        a
    }

    #[test]
    fn selection_by_range_scn_and_time_in_recovery_order() {
        let es = vec![
            entry(1, 12, 300, "2026-11-21T03:00:00"),
            entry(1, 10, 100, "2026-11-21T01:00:00"),
            entry(2, 7, 150, "2026-11-21T01:30:00"),
            entry(1, 11, 200, "2026-11-21T02:00:00"),
        ];
        let seqs = |v: Vec<ManifestEntry>| -> Vec<(u16, u32)> {
            v.iter().map(|e| (e.thread.0, e.sequence.0)).collect()
        };
        assert_eq!(
            seqs(select(es.clone(), &args(|_| {}))),
            vec![(1, 10), (2, 7), (1, 11), (1, 12)],
            "SCN order across threads"
        );
        assert_eq!(
            seqs(select(es.clone(), &args(|a| a.thread = Some(1)))),
            vec![(1, 10), (1, 11), (1, 12)]
        );
        assert_eq!(
            seqs(select(
                es.clone(),
                &args(|a| {
                    a.from_seq = Some(11);
                    a.to_seq = Some(11)
                })
            )),
            vec![(1, 11)]
        );
        // Up to SCN 200: the logs that start before it.
        assert_eq!(
            seqs(select(es.clone(), &args(|a| a.until_scn = Some(200)))),
            vec![(1, 10), (2, 7)]
        );
        assert_eq!(
            seqs(select(
                es,
                &args(|a| a.until_time = Some("2026-11-21T02:30:00".into()))
            )),
            vec![(1, 10), (2, 7), (1, 11)]
        );
    }
}
