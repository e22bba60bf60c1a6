//! Command-line front end: one subcommand per role or tool.
//!
//! This is the top of the program, so errors are `anyhow` here and typed everywhere below.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod external;
pub mod inspect;
pub mod store;
pub mod watch;

/// redovault: keeps an Oracle database recoverable to its last commit, even after the
/// database host is wiped.
#[derive(Debug, Parser)]
#[command(
    name = "redovault",
    version = redovault::build_info::version_line(env!("CARGO_PKG_VERSION")),
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
    /// Run a simulated Oracle instance that writes real-format online and archived redo logs
    /// (`redovault-drill simulate`, next to this binary; not installed on the database host).
    Simulate(external::ExternalArgs),
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
    /// dd on the database host, recovery from nothing, RPO and RTO (`redovault-drill drill`,
    /// next to this binary; not installed on the database host).
    Drill(external::ExternalArgs),
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
    /// programs that `extract`, `collect`, `drill` and `simulate` run).
    pub fn configures_logging(&self) -> bool {
        matches!(
            self.command,
            Command::Watch(_)
                | Command::Extract(_)
                | Command::Collect(_)
                | Command::Drill(_)
                | Command::Simulate(_)
        )
    }
}

/// Sets up `tracing` output on stderr at the level of `-v`; `RUST_LOG` overrides it.
pub fn init_tracing(verbose: u8) {
    redovault::telemetry::init_tracing(
        redovault::telemetry::LogFormat::Text,
        redovault::telemetry::verbosity_level(verbose),
    );
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // `redovault -v drill` is `redovault-drill -v drill`.
    let drill = |sub| {
        let mut prefix = vec!["-v"; usize::from(cli.verbose)];
        prefix.push(sub);
        prefix
    };
    match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Simulate(args) => external::run("redovault-drill", &drill("simulate"), &args),
        Command::Store(args) => store::run(&args),
        Command::Watch(args) => watch::run_watch(&args),
        Command::Push(args) => watch::run_push(&args),
        Command::Status(args) => watch::run_status(&args),
        Command::CheckConfig(args) => watch::run_check_config(&args),
        Command::Drill(args) => external::run("redovault-drill", &drill("drill"), &args),
        Command::Extract(args) => external::run("redovault-extractor", &[], &args),
        Command::Collect(args) => external::run("redovault-collector", &[], &args),
        Command::Verify(args) => external::run("redovault-verifier", &["verify"], &args),
        Command::Restore(args) => external::run("redovault-verifier", &["restore"], &args),
    }
}
