//! `redovault-extractor`: thin entry point; everything lives in the library.
//!
//! - `check --config FILE`: what every online member's header says, the CURRENT log of each
//!   thread, and the checkpoints; exit 1 when a thread to follow has neither.
//! - `tail --config FILE`: a dry run of the tailers: one JSON line per chunk (position,
//!   size, commits, log end) on stdout; nothing is sent and no checkpoint moves.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use redovault_extractor::checkpoint;
use redovault_extractor::config::ExtractorConfig;
use redovault_extractor::online::{self, OnlineLogs};
use redovault_extractor::streams::start_streams;
use redovault_extractor::tail::Chunk;
use tokio_util::sync::CancellationToken;

/// redovault extractor: tails the CURRENT online redo log and finds every commit.
#[derive(Debug, Parser)]
#[command(name = "redovault-extractor", version, about)]
struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the online logs (from their headers), the CURRENT log of each thread and the
    /// checkpoints.
    Check {
        /// The extractor configuration file.
        #[arg(long, env = "REDOVAULT_EXTRACTOR_CONFIG")]
        config: PathBuf,
    },
    /// Dry run: tail every thread and print each chunk as a JSON line (nothing is sent, no
    /// checkpoint moves). Stops on Ctrl-C or on the first error.
    Tail {
        /// The extractor configuration file.
        #[arg(long, env = "REDOVAULT_EXTRACTOR_CONFIG")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let r = match cli.command {
        Command::Check { config } => check(&config),
        Command::Tail { config } => tail(&config),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!("redovault-extractor: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cfg = ExtractorConfig::load(path)?;
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
        for c in &cps {
            let last = c
                .last_commit
                .map(|m| format!(", last commit {} at SCN {}", m.xid, m.scn))
                .unwrap_or_default();
            println!("  checkpoint {}: {}{last}", c.stream, c.pos);
        }
        ok &= cur.is_some() || !cps.is_empty();
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn chunk_json(c: &Chunk) -> serde_json::Value {
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
    let cfg = ExtractorConfig::load(path)?;
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
