//! Command line of `redovault-drill`: the `drill` and `simulate` subcommands, with the
//! arguments `redovault drill ...` and `redovault simulate ...` hand over unchanged.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod drill;
mod simulate;

/// redovault's attack drill and Oracle simulator (run through `redovault drill` and
/// `redovault simulate`).
#[derive(Debug, Parser)]
#[command(
    name = "redovault-drill",
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
    /// The attack drill on this machine: the simulated database and every daemon, rm -rf and
    /// dd on the database host, recovery from nothing, RPO and RTO.
    Drill(drill::DrillArgs),
    /// Run a simulated Oracle instance that writes real-format online and archived redo logs.
    Simulate(simulate::SimulateArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Drill(args) => drill::run(&args),
        Command::Simulate(args) => simulate::run(&args),
    }
}
