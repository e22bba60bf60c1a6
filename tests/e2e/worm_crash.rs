//! The collector's uploader to WORM under faults, on the real Ceph server (the drill bucket
//! with the deploy/ policy, the collector's own put-only keys), with a live simulated
//! database writing small logs (a switch every one or two seconds) through the extractor:
//! - kill -9 of the collector at 30 random moments while S3 is up: the chain stays
//!   continuous, every acknowledged commit reaches WORM, no conflict is raised, a piece
//!   uploaded but never recorded (a kill between the two) is recorded as it is by the
//!   restarted collector, an orphan beside the chain (one planted) is noted by the
//!   verifier, and `restore online` from WORM alone still gets every commit;
//! - S3 unreachable for 60 s (a TCP proxy in front of Ceph, cut): commits keep being
//!   acknowledged, the WORM lag and the failed puts grow, and once S3 answers again the
//!   backlog drains in order from the segments, every commit in WORM.
//!
//! After each, with the collector stopped by SIGTERM (which seals its chain), WORM is read
//! with the verifier's read-only keys and the pieces opened with the recovery key
//! (`worm::check_worm`).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::netkit::{LiveDb, World, crash_seed, init_logs, scrape, stream_metric, wait_until};
use crate::tcp_proxy::TcpProxy;
use crate::worm::{
    Drill, RecoveryTeam, WormCheck, assert_orphans_noted, check_worm, own_stream, read_chain,
    stop_db_and_wait_for_worm,
};

const KILLS: usize = 30;

/// Conflicts the collector counted for `stream` since it started (0 when absent).
fn conflicts(w: &World, stream: &str) -> f64 {
    stream_metric(
        w.collector_metrics_addr(),
        "redovault_collector_worm_conflicts_total",
        stream,
    )
    .unwrap_or(0.0)
}

/// The final checks of both tests, the collector stopped: the chain was sealed into WORM at
/// the stop, no conflict was logged, and `check_worm`.
fn check_after_stop(
    drill: &Drill,
    w: &World,
    team: &RecoveryTeam,
    sim_stream: redovault::wire::StreamId,
    journal: &[redovault_drill::simulate::journal::JournalEntry],
) -> WormCheck {
    let log = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
    let logged = log.matches("WORM conflict").count();
    assert_eq!(
        logged,
        0,
        "no WORM conflict logged: {}",
        log.lines()
            .filter(|l| l.contains("WORM conflict"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let check = check_worm(drill, &w.store, sim_stream, &team.key, journal);
    assert_eq!(
        drill.sealed_through(sim_stream),
        check.pieces as u64,
        "the stop sealed the whole chain into WORM"
    );
    check
}

#[test]
fn kill_9_of_the_collector_at_30_random_moments_while_s3_is_up() {
    init_logs();
    let t0 = Instant::now();
    let Some(drill) = Drill::target() else {
        return;
    };
    // Compressed (issue 19): pieces of compressed chunks, restored from WORM alone.
    let mut w = World::new(3);
    w.compress = true;
    let team = RecoveryTeam::new(&w);
    let ccfg = w.collector_config(&drill.worm_section(
        drill.server.endpoint.as_str(),
        &team.public,
        "100ms",
    ));
    let ecfg = w.extractor_config(w.port, "");
    let mut collector = drill.start_collector(&w, &ccfg);
    // 128 KiB logs at 64 KiB/s: a switch every 2 s, and an uploader that keeps up between
    // kills, so that most pieces end inside a log (the case where what is durable after a
    // restart goes beyond a piece uploaded before the kill).
    let mut sim = w.sim_config(128 << 10, 64 << 10);
    let (sid, stream) = own_stream(&mut sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let mut rng = rand::rngs::StdRng::seed_from_u64(crash_seed());
    let mut seen_conflicts = 0.0;
    let mut worm_scns = std::collections::BTreeSet::new();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..=900)));
        let m = scrape(w.collector_metrics_addr());
        let key = |n: &str| format!("{n}{{stream=\"{stream}\"}}");
        seen_conflicts += m
            .get(&key("redovault_collector_worm_conflicts_total"))
            .copied()
            .unwrap_or(0.0);
        if let Some(s) = m.get(&key("redovault_collector_worm_scn")) {
            worm_scns.insert(*s as u64);
        }
        collector.kill9();
        collector = drill.start_collector(&w, &ccfg);
    }
    let killed_at = t0.elapsed();
    assert!(
        worm_scns.len() >= KILLS / 3,
        "WORM moved on between kills ({} positions)",
        worm_scns.len()
    );
    let journal = stop_db_and_wait_for_worm(&w, db, sid, Duration::from_secs(90));
    seen_conflicts += conflicts(&w, &stream);
    assert_eq!(seen_conflicts, 0.0, "no WORM conflict counted in any run");
    assert!(
        collector.terminate(Duration::from_secs(30)),
        "the collector stops cleanly"
    );
    assert!(extractor.terminate(Duration::from_secs(20)));
    let log = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
    // Orphans of kills recorded by the restarted collector, and how many of them held less
    // than what it read (more had become durable since the kill).
    let field = |l: &str, name: &str| -> Option<u64> {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse().ok())
    };
    let adoptions: Vec<(u64, u64)> = log
        .lines()
        .filter(|l| l.contains("piece uploaded before a restart found in WORM"))
        .filter_map(|l| Some((field(l, "chunks=")?, field(l, "read=")?)))
        .collect();
    let shorter = adoptions.iter().filter(|(held, read)| held < read).count();
    // The uploader records the orphans of kills it finds, so kills rarely leave one: one
    // more, as a kill leaves it when the restart cannot take it, beside a piece of the
    // chain's middle, for the checks below and the verifier.
    let chain = read_chain(&w.store, sid);
    let beside = chain
        .iter()
        .skip(chain.len() / 2)
        .find(|e| e.chunks >= 2)
        .expect("a piece of several chunks");
    let planted = drill.plant_orphan(sid, &team.key, beside);
    let check = check_after_stop(&drill, &w, &team, sid, &journal);
    assert!(
        check.orphans.iter().any(|(k, _)| *k == planted),
        "the planted orphan is found beside the chain"
    );
    let kill_orphans = check.orphans.len() - 1;
    assert!(
        kill_orphans <= KILLS,
        "{kill_orphans} orphans for {KILLS} kills"
    );

    // The backup host is wiped: WORM and the offline key alone still give every commit.
    std::fs::remove_dir_all(&w.store).unwrap();
    std::fs::remove_file(&w.keys).unwrap();
    let out = drill.restore_online_from_worm(&w, &team, sid, &journal);
    assert_orphans_noted(&out, &check.orphans);
    eprintln!(
        "worm crash: {KILLS} kills in {:.1}s; {} pieces, {} commits in WORM; {} orphans of \
         kills left, {} recorded after a restart ({shorter} of them shorter than what was \
         durable by then), 0 conflicts; {:.1}s in all",
        killed_at.as_secs_f64(),
        check.pieces,
        check.commits,
        kill_orphans,
        adoptions.len(),
        t0.elapsed().as_secs_f64()
    );
}

/// The outage: 60 s, or `REDOVAULT_WORM_OUTAGE_SECS` (at least 10) for local runs.
fn outage() -> Duration {
    let secs = std::env::var("REDOVAULT_WORM_OUTAGE_SECS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .expect("REDOVAULT_WORM_OUTAGE_SECS: seconds")
        })
        .unwrap_or(60);
    assert!(secs >= 10, "REDOVAULT_WORM_OUTAGE_SECS: at least 10");
    Duration::from_secs(secs)
}

#[test]
fn a_60s_s3_outage_only_grows_the_worm_lag_and_the_backlog_drains_in_order() {
    init_logs();
    let t0 = Instant::now();
    let outage = outage();
    let Some(drill) = Drill::target() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(TcpProxy::start(drill.upstream()));
    let w = World::new(3);
    let team = RecoveryTeam::new(&w);
    // The server's certificate names 127.0.0.1: TLS verifies through the proxy's port.
    let endpoint = format!("https://127.0.0.1:{}", proxy.addr.port());
    let ccfg = w.collector_config(&drill.worm_section(&endpoint, &team.public, "500ms"));
    let ecfg = w.extractor_config(w.port, "");
    let collector = drill.start_collector(&w, &ccfg);
    // 256 KiB logs at 256 KiB/s: a switch every second, 60 logs of backlog after 60 s.
    let mut sim = w.sim_config(256 << 10, 256 << 10);
    let (sid, stream) = own_stream(&mut sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let (cm, em) = (w.collector_metrics_addr(), w.extractor_metrics_addr());
    let metric = |addr, name: &str| stream_metric(addr, name, &stream).unwrap_or(0.0);
    wait_until(
        "pieces in WORM through the proxy",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || metric(cm, "redovault_collector_worm_pieces_total") >= 3.0,
    );
    let errors_before = metric(cm, "redovault_collector_worm_put_errors_total");

    proxy.cut();
    let cut_at = Instant::now();
    // Let what was in flight settle, then WORM must stand still while acks go on.
    std::thread::sleep(Duration::from_secs(3));
    let worm_scn = metric(cm, "redovault_collector_worm_scn");
    let mut durable = metric(cm, "redovault_collector_durable_scn");
    let mut acked = metric(em, "redovault_extractor_acked_scn");
    while cut_at.elapsed() + Duration::from_secs(5) <= outage {
        std::thread::sleep(Duration::from_secs(5));
        let (d, a) = (
            metric(cm, "redovault_collector_durable_scn"),
            metric(em, "redovault_extractor_acked_scn"),
        );
        assert!(
            d > durable && a > acked,
            "commits keep being acknowledged during the outage ({:.0}s in: durable SCN {durable} \
             -> {d}, acknowledged SCN {acked} -> {a})",
            cut_at.elapsed().as_secs_f64()
        );
        (durable, acked) = (d, a);
    }
    std::thread::sleep(outage.saturating_sub(cut_at.elapsed()));
    let seal = scrape(cm)
        .get("redovault_collector_worm_seal_interval_seconds")
        .copied()
        .expect("the seal interval gauge");
    let lag = metric(cm, "redovault_collector_worm_lag_seconds");
    let errors = metric(cm, "redovault_collector_worm_put_errors_total");
    assert_eq!(
        metric(cm, "redovault_collector_worm_scn"),
        worm_scn,
        "nothing reached WORM during the outage"
    );
    assert!(
        lag > 10.0 * seal,
        "the WORM lag grew beyond ten seal intervals ({lag}s, seal interval {seal}s)"
    );
    assert!(
        errors > errors_before,
        "failed puts counted ({errors_before} -> {errors})"
    );
    proxy.restore();
    let restored_at = Instant::now();

    std::thread::sleep(Duration::from_secs(2));
    let journal = stop_db_and_wait_for_worm(&w, db, sid, Duration::from_secs(90));
    let drained = restored_at.elapsed();
    wait_until(
        "the WORM lag back to 0",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || metric(cm, "redovault_collector_worm_lag_seconds") == 0.0,
    );
    assert_eq!(conflicts(&w, &stream), 0.0, "no WORM conflict");
    assert!(
        collector.terminate(Duration::from_secs(30)),
        "the collector stops cleanly"
    );
    assert!(extractor.terminate(Duration::from_secs(20)));
    let check = check_after_stop(&drill, &w, &team, sid, &journal);
    assert!(
        check.orphans.is_empty(),
        "no orphan without a crash: {:?}",
        check.orphans
    );
    eprintln!(
        "worm outage: {:.0}s cut (lag {lag:.1}s, {} failed puts), backlog drained {:.1}s after \
         the restore; {} pieces, {} commits in WORM; {:.1}s in all",
        outage.as_secs_f64(),
        errors - errors_before,
        drained.as_secs_f64(),
        check.pieces,
        check.commits,
        t0.elapsed().as_secs_f64()
    );
    drop(proxy);
}
