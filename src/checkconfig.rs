//! `check-config`, the same in every program: `PROGRAM check-config FILE` and
//! `PROGRAM check-config --config FILE` both work, and the verdict reads the same.
//!
//! The verdict, on standard output:
//!
//! ```text
//! /etc/redovault/watcher.toml: OK
//!   store: s3 https://s3.example.net/ bucket redo-archive ...
//! ```
//!
//! or, exit status 1, one line per problem and a count:
//!
//! ```text
//! /etc/redovault/watcher.toml: store.bucket: required
//! /etc/redovault/watcher.toml: watch.bogus: unknown key
//! /etc/redovault/watcher.toml: FAILED, 2 problem(s)
//! ```
//!
//! Why one format: operators (and `deploy/`'s scripts) run every role's check the same way
//! before a start or an upgrade, and grep the same words.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `check-config` where `--config` is not already a global option: the file
/// as an argument, or as `--config FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckConfigArgs {
    /// The configuration file.
    #[arg(required_unless_present = "config", conflicts_with = "config")]
    pub file: Option<PathBuf>,
    /// The configuration file (the same as giving it as the argument).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl CheckConfigArgs {
    /// The file named, either way.
    pub fn path(&self) -> Result<PathBuf, String> {
        pick(self.file.as_deref(), self.config.as_deref())
    }
}

/// The file of `check-config FILE` or of `--config FILE` (a program's global option): one of
/// them, or both naming the same file.
pub fn pick(file: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, String> {
    match (file, config) {
        (Some(f), None) | (None, Some(f)) => Ok(f.to_path_buf()),
        (Some(f), Some(c)) if f == c => Ok(f.to_path_buf()),
        (Some(_), Some(_)) => {
            Err("check-config: give the file once, as FILE or as --config FILE".to_string())
        }
        (None, None) => Err("check-config: which file? check-config FILE".to_string()),
    }
}

/// The verdict's lines: `Ok(details)` or `Err(problems)` (see the module documentation).
pub fn verdict_lines(file: &Path, verdict: &Result<Vec<String>, Vec<String>>) -> Vec<String> {
    let f = file.display();
    match verdict {
        Ok(details) => std::iter::once(format!("{f}: OK"))
            .chain(details.iter().map(|d| format!("  {d}")))
            .collect(),
        Err(problems) => problems
            .iter()
            .flat_map(|p| p.lines())
            .map(|p| format!("{f}: {}", p.trim()))
            .chain(std::iter::once(format!(
                "{f}: FAILED, {} problem(s)",
                problems.len()
            )))
            .collect(),
    }
}

/// Prints the verdict on standard output; exit status 0 for OK, 1 for problems.
pub fn report(file: &Path, verdict: Result<Vec<String>, Vec<String>>) -> ExitCode {
    for l in verdict_lines(file, &verdict) {
        println!("{l}");
    }
    if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format() {
        let f = Path::new("/etc/x.toml");
        assert_eq!(
            verdict_lines(f, &Ok(vec!["store: s3".into()])),
            ["/etc/x.toml: OK", "  store: s3"]
        );
        assert_eq!(
            verdict_lines(f, &Err(vec!["a.b: bad".into(), "c: missing".into()])),
            [
                "/etc/x.toml: a.b: bad",
                "/etc/x.toml: c: missing",
                "/etc/x.toml: FAILED, 2 problem(s)"
            ]
        );
    }

    #[test]
    fn either_form() {
        let a = Path::new("/a");
        assert_eq!(pick(Some(a), None).unwrap(), a);
        assert_eq!(pick(None, Some(a)).unwrap(), a);
        assert_eq!(pick(Some(a), Some(a)).unwrap(), a);
        assert!(pick(Some(a), Some(Path::new("/b"))).is_err());
        assert!(pick(None, None).is_err());
    }
}
