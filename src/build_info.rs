//! What build this is: the version line every program prints for `--version`.
//!
//! The extractor and the collector must speak exactly the same wire protocol
//! ([`PROTOCOL_VERSION`]): their version lines name it, so a DBA can compare two hosts before
//! an upgrade (deploy/docs/upgrade.md). The commit comes from the build script (build.rs).

use crate::wire::message::PROTOCOL_VERSION;

/// The commit the programs were built from: a short git hash, with `-dirty` when the tree had
/// uncommitted changes, or `unknown` outside a git checkout (see build.rs).
pub const COMMIT: &str = env!("REDOVAULT_COMMIT");

/// `VERSION (commit HASH)`, for a program that does not speak the wire protocol.
///
/// `package_version` is the program's own `CARGO_PKG_VERSION`. The line is made once per
/// process (clap asks for it at start-up) and lives as long as the process, hence `'static`.
pub fn version_line(package_version: &str) -> &'static str {
    leak(format!("{package_version} (commit {COMMIT})"))
}

/// `VERSION (commit HASH, wire protocol N)`, for the extractor and the collector, whose wire
/// protocol versions must match exactly.
pub fn version_line_with_wire(package_version: &str) -> &'static str {
    leak(format!(
        "{package_version} (commit {COMMIT}, wire protocol {PROTOCOL_VERSION})"
    ))
}

/// clap takes a `&'static str` for the version; the line is built once, at start-up.
fn leak(line: String) -> &'static str {
    Box::leak(line.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_name_the_version_the_commit_and_the_wire_protocol() {
        assert_eq!(version_line("1.2.3"), format!("1.2.3 (commit {COMMIT})"));
        assert_eq!(
            version_line_with_wire("1.2.3"),
            format!("1.2.3 (commit {COMMIT}, wire protocol {PROTOCOL_VERSION})")
        );
        assert!(!COMMIT.is_empty());
    }
}
