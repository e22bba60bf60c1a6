//! `redovault-extractor`: thin entry point; everything lives in the library.
//!
//! - `redovault-extractor --config FILE` (or `run`): ship every redo thread to the collector
//!   until SIGTERM or SIGINT.
//! - `check-config --config FILE`: every problem of the file at once, then the files it names
//!   (certificates or PSK); exit 1 when there is one.
//! - `check --config FILE`: what every online member's header says, the CURRENT log of each
//!   thread, and the checkpoints: the protected one and, with several collectors, each
//!   collector's acknowledged position and lag, and whether the running daemon (its metrics
//!   endpoint) has enough sessions for the ack policy; exit 1 when a thread to follow has
//!   neither a log nor a checkpoint, or the policy does not hold.
//! - `tail --config FILE`: a dry run of the tailers: one JSON line per chunk (position,
//!   size, commits, log end) on stdout; nothing is sent and no checkpoint moves.
//!
//! Exit status: 0 success, 1 problems found, 2 error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use redovault_extractor::online::{self, OnlineLogs};
use redovault_extractor::settings::{Cipher, Settings};
use redovault_extractor::streams::start_streams;
use redovault_extractor::tail::TailChunk;
use redovault_extractor::{checkpoint, fanout};
use tokio_util::sync::CancellationToken;

/// redovault extractor: tails the CURRENT online redo log and streams every commit to the
/// collector over TLS 1.3.
#[derive(Debug, Parser)]
#[command(
    name = "redovault-extractor",
    version = redovault::build_info::version_line_with_wire(env!("CARGO_PKG_VERSION")),
    about
)]
struct Cli {
    /// More log output (repeat for more); the configuration's log level otherwise.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The extractor configuration file.
    #[arg(long, global = true, env = "REDOVAULT_EXTRACTOR_CONFIG")]
    config: Option<PathBuf>,
    /// What to do (default: run).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ship every redo thread to the collector (the default).
    Run,
    /// Check the configuration file and the files it names; list every problem.
    CheckConfig {
        /// The file (the same as --config FILE).
        file: Option<PathBuf>,
    },
    /// Show the online logs (from their headers), the CURRENT log of each thread and the
    /// checkpoints.
    Check,
    /// Dry run: tail every thread and print each chunk as a JSON line (nothing is sent, no
    /// checkpoint moves). Stops on Ctrl-C or on the first error.
    Tail,
}

fn level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match redovault::checkconfig::pick(file.as_deref(), cli.config.as_deref()) {
            Ok(path) => check_config(&path),
            Err(e) => {
                eprintln!("redovault-extractor: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Some(config) = cli.config.clone() else {
        eprintln!("redovault-extractor: --config FILE is required");
        return ExitCode::from(2);
    };
    let command = cli.command.unwrap_or(Command::Run);
    if !matches!(command, Command::Run) {
        redovault::telemetry::init_tracing(
            redovault::telemetry::LogFormat::Text,
            level(cli.verbose),
        );
    }
    let r = match command {
        Command::Run => run(&config, cli.verbose),
        Command::CheckConfig { .. } => Ok(check_config(&config)),
        Command::Check => check(&config),
        Command::Tail => tail(&config),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault-extractor: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(path: &std::path::Path, verbose: u8) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(path)?;
    let telemetry = settings.telemetry();
    let lvl = if verbose > 0 {
        level(verbose)
    } else {
        &telemetry.log_level
    };
    redovault::telemetry::init_tracing(telemetry.log_format, lvl);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("extractor")
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let cancel = CancellationToken::new();
        let mut started = redovault_extractor::run::start(&settings, cancel.clone()).await?;
        let code = tokio::select! {
            signal = wait_for_signal() => {
                tracing::info!(signal, "stopping");
                ExitCode::SUCCESS
            }
            r = started.next_end() => {
                // Never while running normally: stop all, exit non-zero (the service manager
                // restarts the extractor, which resumes from its checkpoints).
                tracing::error!(error = ?r.err(), "a stream stopped shipping; exiting");
                ExitCode::from(2)
            }
        };
        cancel.cancel();
        started.wait().await;
        tracing::info!("extractor stopped");
        Ok(code)
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

/// `check-config`: the verdict of [`redovault::checkconfig`] on the file and the files it
/// names.
fn check_config(path: &std::path::Path) -> ExitCode {
    let verdict = Settings::load(path)
        .map_err(|e| e.problems)
        .and_then(|settings| {
            let mut problems = Vec::new();
            if settings.collectors.items.is_empty() {
                problems.push("[collector]: missing section (nowhere to ship)".to_string());
            }
            let several = settings.collectors.items.len() > 1;
            for c in &settings.collectors.items {
                if let Err(e) = c.load_security() {
                    problems.push(if several {
                        format!("{} ({}): {e}", c.name, c.address)
                    } else {
                        e
                    });
                }
            }
            if !problems.is_empty() {
                return Err(problems);
            }
            let mut lines = vec![format!(
                "online: {} groups",
                settings.extract().online.groups.len()
            )];
            for c in &settings.collectors.items {
                lines.push(format!(
                    "ship: to {} as {:?}, {}{}",
                    c.address,
                    c.extractor_id,
                    match c.cipher {
                        Cipher::Blowfish => "LEGACY Blowfish with a pre-shared key",
                        Cipher::Tls => "TLS 1.3 with client certificates",
                    },
                    if several {
                        format!(" (collector {})", c.name)
                    } else {
                        String::new()
                    }
                ));
            }
            if several {
                lines.push(format!(
                    "ack: {} ({} of {} collectors must acknowledge)",
                    settings.link.ack.as_str(),
                    settings.link.ack.required(settings.collectors.items.len()),
                    settings.collectors.items.len()
                ));
            }
            Ok(lines)
        });
    redovault::checkconfig::report(path, verdict)
}

fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(path)?;
    let live = settings
        .telemetry()
        .metrics_listen
        .map(|a| (a, redovault::telemetry::scrape(a)));
    let cfg = settings.extract();
    let views = OnlineLogs::new(&cfg.sources().groups).scan();
    for v in &views {
        println!("group {}:", v.group + 1);
        for m in &v.members {
            println!("  {}", online::describe(&m.path, &m.header));
        }
    }
    let current = online::find_current(&views);
    let saved = checkpoint::list(&cfg.state.dir)?;
    let threads: Vec<u16> = if cfg.online.threads.is_empty() {
        current.iter().map(|c| c.stream.thread.0).collect()
    } else {
        cfg.online.threads.clone()
    };
    let mut ok = !threads.is_empty();
    for t in threads {
        let cur = current.iter().find(|c| c.stream.thread.0 == t);
        match cur {
            Some(c) => println!(
                "thread {t}: {} sequence {} in group {} ({})",
                c.stream,
                c.seq,
                c.group + 1,
                c.state.as_str()
            ),
            None => println!("thread {t}: no online log"),
        }
        let cps: Vec<_> = saved.iter().filter(|c| c.stream.thread.0 == t).collect();
        let source = cur.and_then(fanout::source_position);
        for c in &cps {
            println!(
                "  checkpoint {}: {}",
                c.stream,
                describe(c.pos, c.last_commit)
            );
            if settings.collectors.items.len() > 1 {
                ok &= check_copies(&settings, c.stream, source, live.as_ref())?;
            }
        }
        ok &= cur.is_some() || !cps.is_empty();
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn describe(pos: redovault::wire::StreamPos, last: Option<redovault::wire::CommitMark>) -> String {
    let last = last
        .map(|m| format!(", last commit {} at SCN {}", m.xid, m.scn))
        .unwrap_or_default();
    format!("{pos}{last}")
}

/// Prints each collector's copy of `stream` and whether the daemon meets the ack policy;
/// false when it does not.
fn check_copies(
    settings: &Settings,
    stream: redovault::wire::StreamId,
    source: Option<redovault::wire::StreamPos>,
    live: Option<&(
        std::net::SocketAddr,
        std::collections::BTreeMap<String, f64>,
    )>,
) -> anyhow::Result<bool> {
    let n = settings.collectors.items.len();
    let state = settings.extract().state;
    let required = settings.link.ack.required(n);
    println!(
        "    protected under ack = {:?} ({required} of {n} collectors)",
        settings.link.ack.as_str()
    );
    for c in &settings.collectors.items {
        let dir = fanout::copy_state_dir(&state.dir, &c.name);
        let own = checkpoint::list(&dir)?
            .into_iter()
            .find(|x| x.stream == stream);
        let text = match own {
            Some(x) => {
                let lag = source.map_or(String::new(), |s| {
                    format!(
                        ", {} bytes behind the source at least",
                        redovault_extractor::source::unread_bytes(s, x.pos)
                    )
                });
                format!("acknowledged {}{lag}", describe(x.pos, x.last_commit))
            }
            None => "nothing acknowledged yet".into(),
        };
        println!("    collector {} ({}): {text}", c.name, c.address);
    }
    let Some((addr, samples)) = live else {
        println!("    sessions: unknown (no metrics endpoint configured)");
        return Ok(true);
    };
    let key = |name: &str| format!("redovault_extractor_{name}{{stream=\"{stream}\"}}");
    match (
        samples.get(&key("collectors_up")),
        samples.get(&key("protection_below_policy")),
    ) {
        (Some(up), below) => {
            let holds = below.is_none_or(|b| *b == 0.0) && *up as usize >= required;
            println!(
                "    sessions: {up} of {n} collectors up: {}",
                if holds {
                    "the ack policy holds"
                } else {
                    "PROTECTION BELOW POLICY (the checkpoint does not move)"
                }
            );
            Ok(holds)
        }
        (None, _) => {
            println!("    sessions: unknown (the daemon does not answer on {addr})");
            Ok(true)
        }
    }
}

fn chunk_json(c: &TailChunk) -> serde_json::Value {
    serde_json::json!({
        "stream": c.stream.to_string(),
        "pos": c.pos.to_string(),
        "end": c.end().to_string(),
        "bytes": c.bytes.len(),
        "log_end": c.log_end,
        "commits": c.commits.iter().map(|m| serde_json::json!({
            "xid": m.xid.to_string(),
            "scn": m.scn.0,
            "time": m.time,
            "end": m.end.to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn tail(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = Settings::load(path)?.extract();
    let starts = start_streams(&cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async move {
        let cancel = CancellationToken::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let mut handles = Vec::new();
        for s in starts {
            let mut h = s
                .tailer
                .spawn(16, cancel.clone())
                .context("start a tail thread")?;
            let tx = tx.clone();
            handles.push(tokio::spawn(async move {
                loop {
                    let r = h.next_chunk().await;
                    let stop = !matches!(r, Ok(Some(_)));
                    if tx.send(r).await.is_err() || stop {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        let mut code = ExitCode::SUCCESS;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                r = rx.recv() => match r {
                    Some(Ok(Some(c))) => println!("{}", chunk_json(&c)),
                    Some(Ok(None)) => {}
                    Some(Err(e)) => {
                        eprintln!("redovault-extractor: {e}");
                        code = ExitCode::FAILURE;
                        break;
                    }
                    None => break,
                },
            }
        }
        cancel.cancel();
        for h in handles {
            let _ = h.await;
        }
        Ok(code)
    })
}
