//! `redovault inspect` (being built).
use std::process::ExitCode;
/// Arguments of `redovault inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The redo file.
    pub file: std::path::PathBuf,
}
/// Runs `redovault inspect`.
pub fn run(_args: &InspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("inspect is not built yet")
}
