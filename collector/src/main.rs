//! `redovault-collector`: thin entry point; everything lives in the library.
//!
//! - `redovault-collector --config FILE` (or `serve`): run the collector until SIGTERM or
//!   SIGINT.
//! - `check-config --config FILE`: every problem of the file at once, then every file it
//!   names (certificates or PSK, key ring, store directory); exit 1 when there is one.
//! - `commits --config FILE [--stream S] [...]`: the durable committed transactions of a
//!   stream (what a last-commit restore contains), or every stream's state without
//!   `--stream`.
//! - `rebuild --config FILE --stream S --out FILE`: the online redo log of the stream,
//!   byte-identical to the source up to its last durable commit, with its SHA-256.
//!
//! `commits` and `rebuild` open the store themselves: the collector must be stopped (the
//! store's lock says so otherwise). Exit status: 0 success, 1 problems found
//! (`check-config`), 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use redovault::crypto::keys::KeyRing;
use redovault::crypto::recovery::RecoveryPublicKey;
use redovault::store::local::LocalStore;
use redovault::store::s3::S3Store;
use redovault::watcher::config::StoreKind;
use redovault::wire::message::MAX_NAME_LEN;
use redovault::wire::{CommitMark, StreamId};
use redovault_collector::config::{Cipher, CollectorConfig, RetentionConfig};
use redovault_collector::index::CommitQuery;
use redovault_collector::rebuild::{RebuildOptions, RebuildReport};
use redovault_collector::retention::Rule;
use redovault_collector::retention_task::{self, Retention};
use redovault_collector::server;
use redovault_collector::store::{Store, parse_stream_dir_name};
use redovault_collector::worm::{self, Worm, WormConfig};
use redovault_redo::position::{LogSeq, Scn, Xid};
use tokio_util::sync::CancellationToken;

/// redovault collector: receives redo streams over TLS 1.3, stores them AES-256-GCM
/// encrypted (fsync before acknowledging), rebuilds the online log to the last commit.
#[derive(Debug, Parser)]
#[command(
    name = "redovault-collector",
    version = redovault::build_info::version_line_with_wire(env!("CARGO_PKG_VERSION")),
    about
)]
struct Cli {
    /// The collector configuration file.
    #[arg(long, global = true, env = "REDOVAULT_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector (the default).
    Serve,
    /// Check the configuration file and every file it names; list every problem.
    CheckConfig {
        /// The file (the same as --config FILE).
        file: Option<PathBuf>,
    },
    /// List the durable committed transactions of a stream (or every stream's state).
    Commits(CommitsArgs),
    /// Rebuild a stream's online redo log up to its last durable commit.
    Rebuild(RebuildArgs),
}

#[derive(Debug, clap::Args)]
struct CommitsArgs {
    /// The stream, `db<dbid>-rl<resetlogs id>-t<thread>`; without it, every stream.
    #[arg(long)]
    stream: Option<String>,
    /// Only commits at or after this SCN.
    #[arg(long, conflicts_with_all = ["xid", "sequence", "last"])]
    since_scn: Option<u64>,
    /// Only this transaction (`usn.slot.sqn`).
    #[arg(long, conflicts_with_all = ["sequence", "last"])]
    xid: Option<String>,
    /// Only the commits of this log sequence.
    #[arg(long, conflicts_with = "last")]
    sequence: Option<u32>,
    /// Only the last N commits.
    #[arg(long)]
    last: Option<usize>,
    /// At most this many lines.
    #[arg(long, default_value_t = usize::MAX)]
    limit: usize,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RebuildArgs {
    /// The stream, `db<dbid>-rl<resetlogs id>-t<thread>`.
    #[arg(long)]
    stream: String,
    /// The file to write (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// The log sequence (default: the one of the last durable commit).
    #[arg(long)]
    sequence: Option<u32>,
    /// Pad with zeros to the online log's size (the shape of an online log member).
    #[arg(long)]
    pad_to_log_size: bool,
    /// JSON report instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match redovault::checkconfig::pick(file.as_deref(), cli.config.as_deref()) {
            Ok(path) => check_config(&path),
            Err(e) => {
                eprintln!("redovault-collector: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Some(config) = cli.config.clone() else {
        eprintln!("redovault-collector: --config FILE is required");
        return ExitCode::from(2);
    };
    let r = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&config),
        Command::CheckConfig { .. } => Ok(check_config(&config)),
        Command::Commits(a) => commits(&config, &a),
        Command::Rebuild(a) => rebuild(&config, &a),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault-collector: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    let cfg = CollectorConfig::load(path)?;
    let telemetry = cfg.telemetry();
    redovault::telemetry::init_tracing(telemetry.log_format, &telemetry.log_level);
    let security = cfg.load_security().map_err(anyhow::Error::msg)?;
    if cfg.listen.cipher == Cipher::Blowfish {
        tracing::warn!(
            "LEGACY link mode cipher = \"blowfish\": pre-shared key, no certificates, no forward \
             secrecy; use TLS in production"
        );
    }
    let keys = KeyRing::load(&cfg.store.key_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("collector")
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let (dir, opts) = (cfg.store.dir.clone(), cfg.store.options());
        let store = tokio::task::spawn_blocking(move || {
            Store::open_with(&dir, keys, opts, Arc::new(redovault_collector::fs::RealFs))
        })
        .await
        .context("open the store")??;
        let cancel = CancellationToken::new();
        let running = server::start(store, cfg.server_options(security), cancel.clone()).await?;
        if let Some(tls) = &cfg.tls {
            let files = [
                ("server", tls.cert.as_path()),
                ("ca", tls.client_ca.as_path()),
            ];
            let family = &running.metrics.link_cert_expiry;
            for e in redovault::telemetry::export_cert_expiry(family, &files) {
                tracing::warn!(error = %e, "link certificate expiry unknown (no metric for it)");
            }
        }
        let worm_cancel = CancellationToken::new();
        let worm = match &cfg.worm {
            Some(w) => Some(start_worm(&cfg, w, &running, worm_cancel.clone())?),
            None => None,
        };
        let retention_cancel = CancellationToken::new();
        let retention = match &cfg.retention {
            Some(r) => Some(start_retention(
                &cfg,
                r,
                &running,
                retention_cancel.clone(),
            )?),
            None => {
                tracing::info!(
                    "no [retention]: the collector keeps every segment (its disk grows)"
                );
                None
            }
        };
        let signal = wait_for_signal().await;
        tracing::info!(signal, "stopping");
        retention_cancel.cancel();
        if let Some(r) = retention {
            let _ = r.await;
        }
        // The uploader first: it uploads what is durable and seals the chains while the
        // writer still answers.
        worm_cancel.cancel();
        if let Some(w) = worm {
            let _ = w.await;
        }
        if let Some(store) = running.stop().await {
            // A checkpoint: the next open has no write-ahead file to replay.
            match tokio::task::spawn_blocking(move || store.close()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "store close: checkpoint failed; the next open replays the write-ahead file"),
                Err(e) => tracing::warn!(error = %e, "store close did not complete"),
            }
        }
        tracing::info!("collector stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts the WORM uploader of `[worm]` over its store (S3, or a local directory for tests).
fn start_worm(
    cfg: &CollectorConfig,
    w: &WormConfig,
    running: &server::Running,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let key =
        RecoveryPublicKey::load(&w.recovery_public_key).context("[worm] recovery_public_key")?;
    let keys = Arc::new(KeyRing::load(&cfg.store.key_file)?);
    tracing::info!(
        recovery_key = %hex::encode(key.id()),
        seal_interval_ms = w.seal_interval.as_millis() as u64,
        prefix = %w.store.prefix,
        "streams sealed into WORM to the recovery key"
    );
    macro_rules! spawn_with {
        ($store:expr) => {
            worm::spawn(
                Worm {
                    store: $store,
                    prefix: w.store.prefix.clone(),
                    key,
                    compress: cfg.store.options().compress,
                    keys,
                    store_dir: cfg.store.dir.clone(),
                    config: w.clone(),
                    writer: running.writer.clone(),
                    metrics: running.metrics.clone(),
                },
                cancel,
            )
        };
    }
    Ok(match w.store.kind {
        StoreKind::S3 => {
            let store = S3Store::new(redovault::watcher::s3_config(&w.store)?)?;
            spawn_with!(store)
        }
        StoreKind::Local => {
            let dir = w.store.dir.clone().context("worm.dir is not set")?;
            spawn_with!(LocalStore::new(dir)?)
        }
    })
}

/// Starts the retention task of `[retention]`, reading the watcher's sealed manifest from
/// `[retention]`'s own store or `[worm]`'s.
fn start_retention(
    cfg: &CollectorConfig,
    r: &RetentionConfig,
    running: &server::Running,
    cancel: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    // The watcher's manifest is read from `[retention]`'s own store keys, or `[worm]`'s.
    let store_cfg = (r.store.as_ref())
        .or(cfg.worm.as_ref().map(|w| &w.store))
        .context("[retention] needs [worm] or its own store keys")?;
    let rule = Rule {
        keep_secs: i64::try_from(r.keep.as_secs()).unwrap_or(i64::MAX),
        worm_required: cfg.worm.is_some(),
    };
    tracing::info!(
        keep_s = rule.keep_secs,
        worm_required = rule.worm_required,
        manifest_prefix = %store_cfg.prefix,
        "retention: segments of sequences archived and verified in WORM are removed after keep"
    );
    macro_rules! spawn_with {
        ($store:expr) => {
            retention_task::spawn(
                Retention {
                    store: $store,
                    prefix: store_cfg.prefix.clone(),
                    rule,
                    interval: r.interval,
                    store_dir: cfg.store.dir.clone(),
                    writer: running.writer.clone(),
                    metrics: running.metrics.clone(),
                },
                cancel,
            )
        };
    }
    Ok(match store_cfg.kind {
        StoreKind::S3 => {
            let store = S3Store::new(redovault::watcher::s3_config(store_cfg)?)?;
            spawn_with!(store)
        }
        StoreKind::Local => {
            let dir = store_cfg
                .dir
                .clone()
                .context("the manifest store's dir is not set")?;
            spawn_with!(LocalStore::new(dir)?)
        }
    })
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// `check-config`: the verdict of [`redovault::checkconfig`] on the file and every file it
/// names.
fn check_config(path: &Path) -> ExitCode {
    let verdict = CollectorConfig::load(path)
        .map_err(|e| e.problems)
        .and_then(|cfg| {
            let problems = cfg.check_resources();
            if problems.is_empty() {
                Ok(collector_summary(&cfg))
            } else {
                Err(problems)
            }
        });
    redovault::checkconfig::report(path, verdict)
}

/// What a valid collector configuration amounts to, one line per part.
fn collector_summary(cfg: &CollectorConfig) -> Vec<String> {
    let mode = match cfg.listen.cipher {
        Cipher::Tls => "TLS 1.3 with client certificates",
        Cipher::Blowfish => "LEGACY Blowfish with a pre-shared key",
    };
    let worm = cfg.worm.as_ref().map_or_else(
        || "worm: none: the commits since the last log switch live on this host only".into(),
        |w| {
            format!(
                "worm: streams sealed into {} within {} ms",
                match w.store.kind {
                    StoreKind::S3 => format!("s3://{}/{}", w.store.bucket, w.store.prefix),
                    StoreKind::Local => format!(
                        "local:{}",
                        w.store.dir.as_deref().unwrap_or(Path::new("")).display()
                    ),
                },
                w.seal_interval.as_millis()
            )
        },
    );
    let retention = match &cfg.retention {
        None => {
            "retention: none: every segment is kept, the disk grows until it is full".to_string()
        }
        Some(r) => format!(
            "retention: a sequence's segments are removed {} after its archived log is verified \
             in the sealed manifest{} (checked every {} s)",
            humanize(r.keep),
            if cfg.worm.is_some() {
                " and its pieces are confirmed in WORM"
            } else {
                ""
            },
            r.interval.as_secs()
        ),
    };
    vec![
        format!("listen: {}, {mode}", cfg.address()),
        format!("store: {}", cfg.store.dir.display()),
        worm,
        retention,
    ]
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "at once".to_string(),
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s => format!("{s} s"),
    }
}

fn open_store(path: &Path) -> anyhow::Result<Store> {
    let cfg = CollectorConfig::load(path)?;
    let keys = KeyRing::load(&cfg.store.key_file)?;
    if !cfg.store.dir.is_dir() {
        bail!("store {} does not exist", cfg.store.dir.display());
    }
    Store::open_with(
        &cfg.store.dir,
        keys,
        cfg.store.options(),
        Arc::new(redovault_collector::fs::RealFs),
    )
    .context("open the store (the collector must be stopped)")
}

fn parse_stream(s: &str) -> anyhow::Result<StreamId> {
    if s.len() > MAX_NAME_LEN {
        bail!("--stream is too long");
    }
    parse_stream_dir_name(s)
        .with_context(|| format!("--stream {s:?} is not like db1497016494-rl1215475200-t1"))
}

fn parse_xid(s: &str) -> anyhow::Result<Xid> {
    let mut p = s.split('.');
    let (Some(a), Some(b), Some(c), None) = (p.next(), p.next(), p.next(), p.next()) else {
        bail!("--xid {s:?} is not usn.slot.sqn");
    };
    Ok(Xid {
        usn: a.parse().with_context(|| format!("--xid {s:?}: usn"))?,
        slot: b.parse().with_context(|| format!("--xid {s:?}: slot"))?,
        sqn: c.parse().with_context(|| format!("--xid {s:?}: sqn"))?,
    })
}

/// ISO 8601 UTC of a commit time (Unix seconds; none before 1970).
fn iso8601(unix: i64) -> String {
    u64::try_from(unix)
        .map(redovault_redo::time::unix_to_iso8601)
        .unwrap_or_default()
}

fn commit_json(c: &CommitMark) -> serde_json::Value {
    serde_json::json!({
        "xid": c.xid.to_string(),
        "scn": c.scn.0,
        "time": c.time.map(iso8601),
        "unix_time": c.time,
        "sequence": c.end.seq.0,
        "end_offset": c.end.offset,
    })
}

fn commit_text(c: &CommitMark) -> String {
    format!(
        "{:<16} scn {:<14} {} log {} offset {}",
        c.xid.to_string(),
        c.scn.0,
        c.time.map_or_else(|| "time unknown".to_string(), iso8601),
        c.end.seq.0,
        c.end.offset
    )
}

fn commits(path: &Path, a: &CommitsArgs) -> anyhow::Result<ExitCode> {
    let stream = a.stream.as_deref().map(parse_stream).transpose()?;
    let xid = a.xid.as_deref().map(parse_xid).transpose()?;
    let store = open_store(path)?;
    let Some(stream) = stream else {
        let mut rows = Vec::new();
        for s in store.streams() {
            let Some(d) = store.durable(s) else { continue };
            let n = store.commits(s, &CommitQuery::All, usize::MAX).len();
            // What WORM holds, from the local chain (an unreadable chain is said, not fatal).
            let w = worm::read_state(store.dir(), s).map_err(|e| e.to_string());
            rows.push((s, d, n, w));
        }
        let retention = retention_task::read_status(store.dir());
        let held = |s: &StreamId| -> serde_json::Value {
            let segs = store.segments(*s);
            let status = retention
                .as_ref()
                .ok()
                .and_then(|r| r.as_ref())
                .and_then(|r| r.streams.get(&s.to_string()));
            serde_json::json!({
                "segments": segs.len(),
                "bytes": segs.iter().map(|g| g.len).sum::<u64>(),
                "first_segment": segs.first().map(|g| g.number),
                "sequences": status.map(|st| &st.sequences),
            })
        };
        if a.json {
            let v: Vec<_> = rows
                .iter()
                .map(|(s, d, n, w)| {
                    serde_json::json!({
                        "stream": s.to_string(),
                        "durable_end": d.resume_pos().to_string(),
                        "commits": n,
                        "last_commit": d.last_commit.as_ref().map(commit_json),
                        "worm": worm_json(w),
                        "held": held(s),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            for (s, d, n, w) in rows {
                let last = d
                    .last_commit
                    .map_or_else(|| "no commit".to_string(), |c| commit_text(&c));
                println!(
                    "{s}  durable to {}  {n} commits  last: {last}",
                    d.resume_pos()
                );
                match w {
                    Ok(w) if w.pieces > 0 => println!(
                        "    in WORM to {}  {} pieces  last commit in WORM: {}  last piece {}",
                        w.next.map_or_else(String::new, |p| p.to_string()),
                        w.pieces,
                        w.last_commit.as_ref().map_or_else(
                            || "none".to_string(),
                            |(scn, xid, _)| format!("scn {scn} xid {xid}")
                        ),
                        w.last_upload.as_deref().unwrap_or("")
                    ),
                    Ok(_) => {}
                    Err(e) => println!("    WORM chain unreadable: {e}"),
                }
                let h = held(&s);
                println!(
                    "    held here: {} segments, {} bytes",
                    h["segments"], h["bytes"]
                );
                if let Some(list) = h["sequences"].as_array() {
                    for r in list {
                        let (first, last) = (&r["first"], &r["last"]);
                        let range = if first == last {
                            format!("{first}")
                        } else {
                            format!("{first}-{last}")
                        };
                        let until = r["until"]
                            .as_i64()
                            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                            .map_or_else(String::new, |t| format!(" until {}", t.to_rfc3339()));
                        println!(
                            "    sequences {range}: {}{until}",
                            r["status"].as_str().unwrap_or("?")
                        );
                    }
                }
            }
            match &retention {
                Ok(Some(r)) => println!(
                    "retention: last pass {}{}",
                    r.at,
                    r.error
                        .as_deref()
                        .map_or_else(String::new, |e| format!(" learned nothing: {e}"))
                ),
                Ok(None) => println!(
                    "retention: no pass recorded (no [retention], or the collector has not run \
                     with it): every segment is kept"
                ),
                Err(e) => println!("retention: status unreadable: {e}"),
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    if store.durable(stream).is_none() {
        bail!(
            "stream {stream} is not in the store {}",
            store.dir().display()
        );
    }
    let query = if let Some(scn) = a.since_scn {
        CommitQuery::SinceScn(Scn(scn))
    } else if let Some(x) = xid {
        CommitQuery::Xid(x)
    } else if let Some(q) = a.sequence {
        CommitQuery::Sequence(LogSeq(q))
    } else if let Some(n) = a.last {
        CommitQuery::Last(n)
    } else {
        CommitQuery::All
    };
    let list = store.commits(stream, &query, a.limit);
    if a.json {
        let v: Vec<_> = list.iter().map(commit_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for c in &list {
            println!("{}", commit_text(c));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn worm_json(w: &Result<worm::WormState, String>) -> serde_json::Value {
    match w {
        Ok(w) if w.pieces == 0 => serde_json::Value::Null,
        Ok(w) => serde_json::json!({
            "pieces": w.pieces,
            "end": w.next.map(|p| p.to_string()),
            "last_commit": w.last_commit.as_ref().map(|(scn, xid, time)| serde_json::json!({
                "scn": scn.0, "xid": xid, "time": time,
            })),
            "last_upload": w.last_upload,
        }),
        Err(e) => serde_json::json!({ "error": e }),
    }
}

fn report_json(r: &RebuildReport) -> serde_json::Value {
    serde_json::json!({
        "stream": r.stream.to_string(),
        "thread": r.thread.0,
        "sequence": r.sequence.0,
        "path": r.path.display().to_string(),
        "size": r.size,
        "file_size": r.file_size,
        "sha256": r.sha256_hex(),
        "last_commit": commit_json(&r.last_commit),
        "commits": r.commits,
        "durable_end": r.durable_end.to_string(),
        "parser": r.parser.as_ref().map(|p| serde_json::json!({
            "records": p.records,
            "commits": p.commits,
            "last_commit": p.last_commit.map(|(x, s)| serde_json::json!({"xid": x.to_string(), "scn": s.0})),
            "clean": p.clean,
        })),
    })
}

fn rebuild(path: &Path, a: &RebuildArgs) -> anyhow::Result<ExitCode> {
    let stream = parse_stream(&a.stream)?;
    let store = open_store(path)?;
    let opts = RebuildOptions {
        sequence: a.sequence.map(LogSeq),
        pad_to_log_size: a.pad_to_log_size,
    };
    let report = store.rebuild(stream, &a.out, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&report))?);
    } else {
        println!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
