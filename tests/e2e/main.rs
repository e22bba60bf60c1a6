//! The one end-to-end test binary of the workspace.
//!
//! Each module covers one part of the system through its public interface.
//!
//! A test that needs what `deploy/test.sh` starts or installs (the real S3 servers of
//! `REDOVAULT_TEST_S3_TARGETS`, headless Chromium, root for network namespaces, Ceph for the
//! LAN's own server) asks for it through [`redovault_drill::servers`] (`store::targets`,
//! `store::ceph`, `worm::Drill::target`, `report_html::chromium`, `netns::Lan::new`): on a bare
//! `cargo test` it prints `skipped <test>: <what is missing>; run deploy/test.sh` and returns;
//! under `deploy/test.sh` (`REDOVAULT_TEST_REQUIRE_SERVERS=1`) it fails.

/// Where the real Oracle logs are (`../shared/fixtures/oracle-real`): tests skip without them.
mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/oracle_real.rs"
    ));
}

mod atrest;
mod attack_drill;
mod check_config;
mod compress;
mod console;
mod crash;
mod deploy;
mod diverge;
mod fake_s3;
mod inspect;
mod link;
mod multi_copy;
mod netkit;
mod netns;
mod outage;
mod pipeline;
mod policies;
mod recover;
mod refusals;
mod replicated;
mod report_html;
mod retention;
mod s3err;
mod simulate;
mod store;
mod tcp_proxy;
mod verify;
mod version;
mod watcher;
mod worm;
mod worm_crash;
mod worm_stream;
