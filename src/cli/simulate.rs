//! `redovault simulate` (being built).
use std::process::ExitCode;
/// Arguments of `redovault simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Output directory.
    pub file: std::path::PathBuf,
}
/// Runs `redovault simulate`.
pub fn run(_args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("simulate is not built yet")
}
