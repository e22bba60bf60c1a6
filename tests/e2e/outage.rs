//! The link down for 30 s while the database keeps writing: once with the collector
//! stopped, once with the traffic cut by a TCP proxy (a partition: nothing moves, nothing
//! is refused; the extractor notices by missing heartbeats and handshake timeouts). The
//! logs are small (3 groups of 128 KiB at 256 KiB/s: each group is reused every 1.5 s), so
//! the online logs are overwritten many times during the outage and the extractor must
//! catch up from the archived copies afterwards. Every commit must arrive, in order, once;
//! rebuilt logs must equal the source.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::netkit::{LiveDb, Proxy, World, init_logs, scrape, stream_metric};

const OUTAGE: Duration = Duration::from_secs(30);

/// After the outage: a few more seconds of redo, then the checks.
fn catch_up_and_check(w: &World, db: LiveDb, stream: &str, min_logs: u32) -> usize {
    let journal = w.stop_and_wait_for_last_commit(
        db,
        stream,
        Duration::from_secs(2),
        Duration::from_secs(120),
    );
    let em = scrape(w.extractor_metrics_addr());
    let key = |n: &str| format!("{n}{{stream=\"{stream}\"}}");
    let archive_reads = em
        .get(&key("redovault_extractor_archive_reads_total"))
        .copied()
        .unwrap_or(0.0);
    assert!(
        archive_reads >= 1.0,
        "the extractor caught up from archived copies ({archive_reads} archive reads)"
    );
    assert!(em[&key("redovault_extractor_reconnects_total")] >= 1.0);
    let seqs: BTreeSet<u32> = journal.iter().map(|e| e.sequence).collect();
    assert!(
        seqs.len() as u32 >= min_logs,
        "the online logs were reused meanwhile ({} logs)",
        seqs.len()
    );
    journal.len()
}

fn final_checks(w: &World, ccfg: &std::path::Path, stream: &str) {
    // Every 5th log and the last (CURRENT), many of them shipped from the archive.
    w.check_commits_and_rebuilds(ccfg, stream, &w.journal(), 5);
}

#[test]
fn collector_stopped_for_30s_extractor_catches_up_from_the_archive() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(128 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(3));
    assert!(collector.terminate(Duration::from_secs(20)));
    let down_at = w.journal().len();
    std::thread::sleep(OUTAGE);
    let collector = w.start_collector(&ccfg);
    let n = catch_up_and_check(&w, db, &stream, 3 * w.groups + 10);
    assert!(
        n > down_at + 100,
        "the database kept committing during the outage"
    );
    assert!(collector.terminate(Duration::from_secs(20)));
    assert!(extractor.terminate(Duration::from_secs(20)));
    final_checks(&w, &ccfg, &stream);
}

#[test]
fn traffic_cut_for_30s_extractor_catches_up_from_the_archive() {
    init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Compressed (issue 19): the catch-up resends compressed Data over new sessions.
    let mut w = World::new(3);
    w.compress = true;
    let proxy = rt.block_on(Proxy::start(w.addr()));
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(proxy.addr.port(), "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(128 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(3));
    let cm = w.collector_metrics_addr();
    let before = stream_metric(cm, "redovault_collector_durable_scn", &stream).unwrap_or(0.0);
    assert!(before > 0.0, "shipping before the cut");
    proxy.set_cut(true);
    std::thread::sleep(Duration::from_secs(3));
    let during = stream_metric(cm, "redovault_collector_durable_scn", &stream).unwrap_or(0.0);
    std::thread::sleep(OUTAGE - Duration::from_secs(3));
    let still = stream_metric(cm, "redovault_collector_durable_scn", &stream).unwrap_or(0.0);
    assert_eq!(during, still, "nothing crosses the cut");
    assert_eq!(
        stream_metric(cm, "redovault_collector_session_active", &stream),
        Some(0.0),
        "the collector ended the silent session (dead peer)"
    );
    proxy.set_cut(false);
    catch_up_and_check(&w, db, &stream, 3 * w.groups + 10);
    let elog = std::fs::read_to_string(w.path("extractor.log")).unwrap_or_default();
    assert!(
        elog.contains("presumed dead") || elog.contains("handshake not finished"),
        "the extractor noticed the partition: {}",
        elog.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(collector.terminate(Duration::from_secs(20)));
    assert!(extractor.terminate(Duration::from_secs(20)));
    w.assert_stored_compressed(0.8);
    final_checks(&w, &ccfg, &stream);
    drop(proxy);
}

/// The collector's store is replaced by an older copy (a restore from backup): it no longer
/// holds redo it acknowledged. Both sides raise the alarm, and the extractor sends the
/// missing redo again from the collector's position (from the archive where the online log
/// was reused), so nothing is lost.
#[test]
fn collector_restored_from_an_older_copy_gets_the_acknowledged_redo_again() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(128 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(2));
    assert!(collector.terminate(Duration::from_secs(20)));
    let old = w.path("store-old");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&w.store)
        .arg(&old)
        .status()
        .unwrap();
    assert!(st.success());
    let collector = w.start_collector(&ccfg);
    std::thread::sleep(Duration::from_secs(4));
    assert!(collector.terminate(Duration::from_secs(20)));
    std::fs::remove_dir_all(&w.store).unwrap();
    std::fs::rename(&old, &w.store).unwrap();
    let collector = w.start_collector(&ccfg);
    catch_up_and_check(&w, db, &stream, 2 * w.groups);
    let em = scrape(w.extractor_metrics_addr());
    assert!(
        em[&format!("redovault_extractor_collector_behind_total{{stream=\"{stream}\"}}")] >= 1.0,
        "the extractor raised the alarm"
    );
    let clog = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
    assert!(
        clog.contains("ALARM: the extractor's checkpoint is ahead"),
        "the collector raised the alarm"
    );
    assert!(collector.terminate(Duration::from_secs(20)));
    assert!(extractor.terminate(Duration::from_secs(20)));
    final_checks(&w, &ccfg, &stream);
}
