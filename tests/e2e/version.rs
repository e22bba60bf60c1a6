//! `--version` of every program names the commit it was built from (and, for the extractor
//! and the collector, the wire protocol they must share): what a DBA compares across hosts
//! before an upgrade (deploy/docs/upgrade.md).

use std::path::Path;
use std::process::Command;

use redovault::wire::message::PROTOCOL_VERSION;

use crate::netkit::bins;

/// `git rev-parse --short HEAD` of this checkout; outside a git checkout, what the build
/// script falls back to.
fn expected_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap().trim().to_owned(),
        _ => std::env::var("REDOVAULT_COMMIT").unwrap_or_else(|_| "unknown".into()),
    }
}

fn version_of(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output().unwrap();
    assert!(out.status.success(), "{} --version: {out:?}", bin.display());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn every_program_names_its_version_and_the_commit_of_the_checkout() {
    let commit = expected_commit();
    assert!(!commit.is_empty());
    let b = bins();
    let wire = format!(", wire protocol {PROTOCOL_VERSION})");
    for (bin, name, speaks_wire) in [
        (&b.redovault, "redovault", false),
        (&b.extractor, "redovault-extractor", true),
        (&b.collector, "redovault-collector", true),
        (&b.verifier, "redovault-verifier", false),
    ] {
        let line = version_of(bin);
        let prefix = format!("{name} {} (commit {commit}", env!("CARGO_PKG_VERSION"));
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        // The hash, then `-dirty` at most, then the end or the wire protocol.
        let rest = line[prefix.len()..]
            .strip_prefix("-dirty")
            .unwrap_or(&line[prefix.len()..]);
        let tail = if speaks_wire { wire.as_str() } else { ")" };
        assert_eq!(rest, tail, "{line:?}");
    }
}
