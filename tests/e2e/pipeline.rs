//! End to end, with the real binaries over real TLS on 127.0.0.1: a simulated database
//! writes a live online log at a steady rate through several log switches; the extractor
//! tails it and ships it to the collector. Every commit of the simulator's journal reaches
//! the collector in order (its commit index, through `redovault-collector commits`); the
//! log rebuilt by the collector equals the source's bytes up to the last acknowledged commit
//! (SHA-256 of that prefix), and `redovault inspect --json` of the rebuilt log lists exactly
//! the journal's commits of that log up to there. The metrics of both sides say so too.

use std::time::Duration;

use crate::netkit::{
    LiveDb, World, assert_same_commits, check_rebuild, init_logs, scrape, stream_metric, wait_until,
};

#[test]
fn live_database_to_collector_every_commit_in_order_and_rebuilt_to_the_last_commit() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    // 256 KiB logs at 512 KiB/s: a switch every half second.
    let sim = w.sim_config(256 << 10, 512 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(6));
    let summary = db.stop();
    assert!(summary.switches >= 6, "several log switches: {summary:?}");
    let journal = w.journal();
    let last = journal
        .iter()
        .rev()
        .find(|e| !e.rollback)
        .expect("commits in the journal")
        .clone();
    let cm = w.collector_metrics_addr();
    wait_until(
        "the collector to hold the journal's last commit durably",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || stream_metric(cm, "redovault_collector_durable_scn", &stream) == Some(last.scn as f64),
    );
    // The extractor's view: acknowledged up to the same commit, nothing left in flight.
    let em = w.extractor_metrics_addr();
    wait_until(
        "the extractor to see the acknowledgement",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            stream_metric(em, "redovault_extractor_acked_scn", &stream) == Some(last.scn as f64)
                && stream_metric(em, "redovault_extractor_lag_bytes", &stream) == Some(0.0)
        },
    );
    let c = scrape(cm);
    let key = |n: &str| format!("{n}{{stream=\"{stream}\"}}");
    assert!(c[&key("redovault_collector_stored_bytes_total")] > 1_000_000.0);
    assert!(c[&key("redovault_collector_ack_latency_seconds_count")] > 10.0);
    assert_eq!(c[&key("redovault_collector_session_active")], 1.0);
    assert_eq!(c["redovault_collector_store_failed"], 0.0);
    assert!(
        c[&key("redovault_collector_durable_commit_time_seconds")] >= last.unix_time as f64 - 1.0
    );
    assert!(
        collector.terminate(Duration::from_secs(20)),
        "collector exits 0 on SIGTERM"
    );
    assert!(
        extractor.terminate(Duration::from_secs(20)),
        "extractor exits 0 on SIGTERM"
    );

    let commits = w.collector_commits(&ccfg, &stream);
    let n = assert_same_commits(&commits, &journal);
    assert!(n > 100, "{n} commits");
    let report = w.rebuild(&ccfg, &stream, None, &w.path("rebuilt.log"));
    assert_eq!(report["last_commit"]["scn"].as_u64(), Some(last.scn));
    let seq = check_rebuild(&w, &report, &journal);
    assert_eq!(seq, last.sequence);
    // An earlier, complete log rebuilds too, to its own last commit.
    let first_seq = journal[0].sequence;
    let report = w.rebuild(
        &ccfg,
        &stream,
        Some(first_seq),
        &w.path("rebuilt-first.log"),
    );
    check_rebuild(&w, &report, &journal);
}

#[test]
fn redovault_extract_and_collect_run_the_sibling_binaries() {
    let b = crate::netkit::bins();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&b.redovault)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&["extract", "--help"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("redovault-extractor") && text.contains("check-config"),
        "{text}"
    );
    let (code, text) = run(&["collect", "--version"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("redovault-collector "), "{text}");
    // Options and subcommands reach the role binary unchanged, exit status included.
    let w = World::new(2);
    let ccfg = w.collector_config("");
    let (code, text) = run(&[
        "collect",
        "check-config",
        "--config",
        ccfg.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(": OK (listen 127.0.0.1:"), "{text}");
    std::fs::write(&ccfg, "[listen]\n").unwrap();
    let (code, text) = run(&[
        "collect",
        "--config",
        ccfg.to_str().unwrap(),
        "check-config",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("listen.address: missing"), "{text}");
}
