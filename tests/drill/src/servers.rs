//! The one rule for tests that need what `deploy/test.sh` installs or starts (the real S3
//! servers, Chromium, root for network namespaces, promtool, OpenLogReplicator, ...):
//!
//! - on a bare `cargo test` (a fresh clone, no servers) such a test prints one line,
//!   `skipped <test>: <what is missing>; run deploy/test.sh`, and returns;
//! - under `deploy/test.sh` (and so in CI), which sets `REDOVAULT_TEST_REQUIRE_SERVERS=1`, a
//!   missing one is a failure: the test panics with the same line. Nothing is skipped there.

use std::io::Write as _;

use crate::testserver::TestServer;

/// Set to `1` by `deploy/test.sh`: what a test needs must be there.
pub const REQUIRE_ENV: &str = "REDOVAULT_TEST_REQUIRE_SERVERS";

/// The `env.sh` files of the running S3 test servers, comma-separated (`deploy/test.sh`).
pub const S3_TARGETS_ENV: &str = "REDOVAULT_TEST_S3_TARGETS";

/// True under `deploy/test.sh`: a missing server or tool fails the test.
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The line that says why the current test cannot run.
pub fn skip_line(missing: &str) -> String {
    let current = std::thread::current();
    // libtest names each test's thread after the test (not with --test-threads 1).
    let test = match current.name() {
        Some(name) if name != "main" => name,
        _ => "this test",
    };
    format!("skipped {test}: {missing}; run deploy/test.sh")
}

/// The current test cannot run because `missing` is missing: prints the skip line and
/// returns, or panics with it under `deploy/test.sh`. The caller returns right after.
pub fn skip(missing: &str) {
    let line = skip_line(missing);
    if required() {
        panic!("{line}");
    }
    // Straight to stderr, past the test harness's capture: a skip must show in every run.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `Some(())` when `present`, else [`skip`]s for `missing` and gives None:
/// `let Some(()) = servers::need(cond, "...") else { return };`.
pub fn need(present: bool, missing: &str) -> Option<()> {
    if present {
        Some(())
    } else {
        skip(missing);
        None
    }
}

/// The S3 test servers of `REDOVAULT_TEST_S3_TARGETS`, or None (after [`skip`]) when it is not
/// set. A target that is named but cannot be read is always a failure: someone meant it.
pub fn s3_servers() -> Option<Vec<TestServer>> {
    let list = std::env::var(S3_TARGETS_ENV).unwrap_or_default();
    let paths: Vec<&str> = list.split(',').filter(|s| !s.trim().is_empty()).collect();
    if paths.is_empty() {
        skip(&format!("no real S3 server ({S3_TARGETS_ENV} is not set)"));
        return None;
    }
    Some(
        paths
            .iter()
            .map(|p| {
                TestServer::from_env_file(p.trim())
                    .unwrap_or_else(|e| panic!("{S3_TARGETS_ENV}: {e}"))
            })
            .collect(),
    )
}

/// True when this process runs as root (uid 0: network namespaces).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next())
            == Some("0")
    })
}

/// True when `program` is an executable on `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let f = dir.join(program);
            f.is_file()
                && std::fs::metadata(&f)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skip_line_names_the_test_and_deploy_test_sh() {
        let line = skip_line("no real S3 server");
        // The test's name, or "this test" when libtest runs it on the main thread.
        let named = std::thread::current().name() != Some("main");
        let test = if named {
            "servers::tests::the_skip_line_names_the_test_and_deploy_test_sh"
        } else {
            "this test"
        };
        assert_eq!(
            line,
            format!("skipped {test}: no real S3 server; run deploy/test.sh")
        );
    }

    #[test]
    fn a_present_need_is_met_and_sh_is_on_path() {
        assert_eq!(need(true, "nothing"), Some(()));
        assert!(on_path("sh"));
        assert!(!on_path("redovault-no-such-program"));
    }
}
