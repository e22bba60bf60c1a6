// Where the real Oracle redo logs are. They are third-party data (provenance and licence in
// their SOURCES.md) kept beside the checkout in `../shared/fixtures/oracle-real/`, never in
// this repository; `REDOVAULT_ORACLE_REAL` points elsewhere. Every test that reads them pulls
// this file in with
// `mod oracle_real { include!(concat!(env!("CARGO_MANIFEST_DIR"), "/<up>/tests/support/oracle_real.rs")); }`
// and skips, saying so in one line, when they are absent; deploy/test.sh refuses to run
// without them, so CI always runs those tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Environment variable naming the `oracle-real` directory.
#[allow(dead_code)] // not every includer uses every item
pub const ENV: &str = "REDOVAULT_ORACLE_REAL";

/// The `oracle-real` directory: `$REDOVAULT_ORACLE_REAL`, else
/// `<workspace root>/../shared/fixtures/oracle-real` (the workspace root is the first directory
/// above this crate's manifest that holds `Cargo.lock`, so a clean clone at `/tmp/X/x` looks in
/// `/tmp/X/shared`).
#[allow(dead_code)]
pub fn root() -> PathBuf {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(manifest);
    workspace.join("../shared/fixtures/oracle-real")
}

/// The two real 23ai logs (512-byte blocks, little-endian), or `None` after one line on
/// stderr saying the calling test skips (written past the test harness's capture).
#[allow(dead_code)]
pub fn free23() -> Option<PathBuf> {
    let dir = root().join("free23-le-512");
    if dir.join("arch1_15_1224959854.dbf").is_file() {
        return Some(dir);
    }
    // One line per test, even when a property test asks once per case.
    static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let test = std::thread::current().name().unwrap_or("test").to_string();
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if !skipped.contains(&test) {
        let _ = writeln!(
            std::io::stderr(),
            "skipping {test}: the real Oracle logs are absent from {} (set {ENV})",
            dir.display()
        );
        skipped.push(test);
    }
    None
}

/// One of the real 23ai logs by file name, read whole, or `None` (skip) as [`free23`].
#[allow(dead_code)]
pub fn free23_log(name: &str) -> Option<Vec<u8>> {
    let p = free23()?.join(name);
    Some(std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
}
