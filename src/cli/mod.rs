//! Command-line front end: one subcommand per role or tool.
//!
//! This is the top of the program, so errors are `anyhow` here and typed everywhere below.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod drill;
pub mod external;
pub mod inspect;
pub mod simulate;
pub mod store;
pub mod watch;

/// redovault: keeps an Oracle database recoverable to its last commit, even after the
/// database host is wiped.
#[derive(Debug, Parser)]
#[command(
    name = "redovault",
    version = crate::build_info::version_line(env!("CARGO_PKG_VERSION")),
    about
)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read one redo log file and report its header, blocks, records and commits.
    Inspect(inspect::InspectArgs),
    /// Run a simulated Oracle instance that writes real-format online and archived redo logs.
    Simulate(simulate::SimulateArgs),
    /// Check the WORM store, put files into it (create-only, locked), read them back.
    Store(store::StoreCli),
    /// Ship every archived redo log of the configured directories into WORM, with the manifest.
    Watch(watch::WatchArgs),
    /// Ship the given archived redo logs now, record them in the manifest, and exit.
    Push(watch::PushArgs),
    /// Show the watcher's state: per thread, backlog, gaps, errors, safe-to-delete horizon.
    Status(watch::StatusArgs),
    /// Check a watcher configuration file and list every problem in it.
    CheckConfig(watch::CheckConfigArgs),
    /// The attack drill on this machine: the simulated database and every daemon, rm -rf and
    /// dd on the database host, recovery from nothing, RPO and RTO.
    Drill(drill::DrillArgs),
    /// Run the extractor (`redovault-extractor`, next to this binary): `extract --config FILE`.
    Extract(external::ExternalArgs),
    /// Run the collector (`redovault-collector`, next to this binary): `collect --config FILE`.
    Collect(external::ExternalArgs),
    /// Audit the archive, the manifest and the collector (`redovault-verifier verify`).
    Verify(external::ExternalArgs),
    /// Restore archived logs, the last-commit online log, or the recovery script
    /// (`redovault-verifier restore`).
    Restore(external::ExternalArgs),
}

impl Cli {
    /// True when the command sets up logging itself (`watch`, from its configuration; the
    /// role binaries that `extract` and `collect` run).
    pub fn configures_logging(&self) -> bool {
        matches!(
            self.command,
            Command::Watch(_) | Command::Extract(_) | Command::Collect(_)
        )
    }
}

/// Sets up `tracing` output on stderr; `RUST_LOG` overrides the level.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
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
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Store(args) => store::run(&args),
        Command::Watch(args) => watch::run_watch(&args),
        Command::Push(args) => watch::run_push(&args),
        Command::Status(args) => watch::run_status(&args),
        Command::CheckConfig(args) => watch::run_check_config(&args),
        Command::Drill(args) => drill::run(&args),
        Command::Extract(args) => external::run("redovault-extractor", &[], &args),
        Command::Collect(args) => external::run("redovault-collector", &[], &args),
        Command::Verify(args) => external::run("redovault-verifier", &["verify"], &args),
        Command::Restore(args) => external::run("redovault-verifier", &["restore"], &args),
    }
}
