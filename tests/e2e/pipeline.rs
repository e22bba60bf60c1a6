//! End to end, with the real binaries over real TLS on 127.0.0.1: a simulated database
//! writes a live online log at a steady rate through several log switches; the extractor
//! tails it and ships it to the collector. Every commit of the simulator's journal reaches
//! the collector in order (its commit index, through `redovault-collector commits`); the
//! log rebuilt by the collector equals the source's bytes up to the last acknowledged commit
//! (SHA-256 of that prefix), and `redovault inspect --json` of the rebuilt log lists exactly
//! the journal's commits of that log up to there. The metrics of both sides say so too.
//!
//! A frozen collector (SIGSTOP) while the database writes on: the extractor's source probe,
//! which reads the online log itself, sees redo waiting unread for longer and longer (what
//! `RedovaultExtractorStuck` alerts on), and sees it caught up once the collector thaws.

use std::time::Duration;

use crate::netkit::{
    LiveDb, World, assert_same_commits, check_rebuild, init_logs, scrape, stream_metric, wait_until,
};

#[test]
fn live_database_to_collector_every_commit_in_order_and_rebuilt_to_the_last_commit() {
    init_logs();
    // Compressed (issue 19): zstd on the link and in the segments; every check below is
    // about the original bytes.
    let mut w = World::new(3);
    w.compress = true;
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
    // The extractor's source probe sees it caught up with what Oracle wrote, the stream is
    // the live incarnation, and both sides export their link certificates' expiry.
    // (A look of the probe, every 5 s, after the database stopped: its last log, all read.)
    wait_until(
        "the extractor's probe to see the last log written and nothing unread",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            stream_metric(em, "redovault_extractor_source_sequence", &stream)
                .is_some_and(|s| s >= f64::from(last.sequence))
                && stream_metric(em, "redovault_extractor_unread_bytes", &stream) == Some(0.0)
                && stream_metric(em, "redovault_extractor_unread_age_seconds", &stream) == Some(0.0)
        },
    );
    let e = scrape(em);
    let key = |n: &str| format!("{n}{{stream=\"{stream}\"}}");
    assert_eq!(e[&key("redovault_extractor_stream_live")], 1.0);
    assert_eq!(e[&key("redovault_extractor_link_compression_level")], 3.0);
    assert!(e[&key("redovault_extractor_source_offset_bytes")] >= 1024.0);
    let year_from_now = (chrono::Utc::now().timestamp() + 365 * 86_400) as f64;
    let c = scrape(cm);
    for (m, cert) in [
        (
            &e,
            "redovault_extractor_link_cert_expiry_timestamp_seconds{cert=\"client\"}",
        ),
        (
            &e,
            "redovault_extractor_link_cert_expiry_timestamp_seconds{cert=\"ca\"}",
        ),
        (
            &c,
            "redovault_collector_link_cert_expiry_timestamp_seconds{cert=\"server\"}",
        ),
        (
            &c,
            "redovault_collector_link_cert_expiry_timestamp_seconds{cert=\"ca\"}",
        ),
    ] {
        assert!(
            m.get(cert).is_some_and(|t| *t > year_from_now),
            "{cert}: {:?}",
            m.get(cert)
        );
    }
    assert_eq!(c[&key("redovault_collector_stream_live")], 1.0);
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

    w.assert_stored_compressed(0.8);
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
    assert!(
        text.contains(": OK\n") && text.contains("  listen: 127.0.0.1:"),
        "{text}"
    );
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

#[test]
fn extractor_probe_sees_redo_waiting_unread_while_the_collector_is_frozen() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    // 256 KiB logs at 256 KiB/s: the 2 MiB window fills within seconds of the freeze.
    let sim = w.sim_config(256 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let em = w.extractor_metrics_addr();
    let metric = |n: &str| stream_metric(em, n, &stream);
    wait_until(
        "the first acknowledgement",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || metric("redovault_extractor_acked_scn").is_some_and(|s| s > 0.0),
    );
    collector.signal("STOP");
    wait_until(
        "the probe to see redo waiting unread for 15 s",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || {
            metric("redovault_extractor_unread_age_seconds").is_some_and(|a| a >= 15.0)
                && metric("redovault_extractor_unread_bytes").is_some_and(|b| b > 0.0)
        },
    );
    let written_while_frozen = metric("redovault_extractor_source_offset_bytes");
    collector.signal("CONT");
    wait_until(
        "the probe to see the extractor caught up again",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || metric("redovault_extractor_unread_age_seconds").is_some_and(|a| a < 6.0),
    );
    assert_eq!(metric("redovault_extractor_stream_live"), Some(1.0));
    assert!(written_while_frozen.is_some_and(|o| o > 0.0));
    db.stop();
    assert!(
        extractor.terminate(Duration::from_secs(20)),
        "extractor exits 0 on SIGTERM"
    );
    assert!(
        collector.terminate(Duration::from_secs(20)),
        "collector exits 0 on SIGTERM"
    );
}
