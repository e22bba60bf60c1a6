//! kill -9 of the extractor, and separately of the collector, at 30 random moments each,
//! while a simulated database writes a live online log through log switches.
//!
//! After every kill, what the extractor had acknowledged (its checkpoint, which moves only
//! on the collector's Acks) must be durable at the collector: its durable end and last
//! durable commit (from its metrics; for collector kills, read from the restarted
//! collector, which recovered from its segments). At the end the collector's commit index
//! must be exactly the journal's commits, in order (no gap, no duplicate), every commit
//! acknowledged before a kill must be in it, and every log rebuilt from the collector must
//! equal the source's bytes up to its last commit.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use redovault::wire::StreamPos;
use redovault_extractor::checkpoint::{self, Checkpoint};
use redovault_redo::LogSeq;

use crate::netkit::{LiveDb, World, crash_seed, init_logs, stream_metric, wait_until};

const KILLS: usize = 30;

fn checkpoint(w: &World) -> Option<Checkpoint> {
    checkpoint::list(&w.path("extractor-state"))
        .expect("the extractor's checkpoint reads")
        .into_iter()
        .next()
}

/// The collector's durable end and last durable commit SCN, from its metrics.
fn collector_durable(w: &World, stream: &str) -> Option<(StreamPos, f64)> {
    let m = w.collector_metrics_addr();
    let seq = stream_metric(m, "redovault_collector_durable_sequence", stream)?;
    let off = stream_metric(m, "redovault_collector_durable_offset_bytes", stream)?;
    let scn = stream_metric(m, "redovault_collector_durable_scn", stream).unwrap_or(0.0);
    Some((
        StreamPos {
            seq: LogSeq(seq as u32),
            offset: off as u64,
        },
        scn,
    ))
}

/// The acknowledged checkpoint `cp` is durable at the collector.
fn assert_durable(w: &World, stream: &str, cp: &Checkpoint, when: &str) {
    let (pos, scn) = collector_durable(w, stream).expect("the collector's durable state");
    assert!(
        pos >= cp.pos,
        "{when}: the collector's durable end {pos} is before the acknowledged {}",
        cp.pos
    );
    if let Some(c) = cp.last_commit {
        assert!(
            scn >= c.scn.0 as f64,
            "{when}: the collector's last durable commit SCN {scn} is before the acknowledged {}",
            c.scn.0
        );
    }
}

/// Lets the database run a little more, stops it, waits until the collector holds its last
/// commit, stops both, and checks the collector's commit index and rebuilt logs against the
/// journal; every commit in `acked` must be in the index.
fn finish_and_check(
    w: &World,
    db: LiveDb,
    ccfg: &std::path::Path,
    stream: &str,
    acked: &[Checkpoint],
    procs: Vec<crate::netkit::Proc>,
) {
    let journal = w.stop_and_wait_for_last_commit(
        db,
        stream,
        Duration::from_secs(1),
        Duration::from_secs(90),
    );
    for p in procs {
        p.terminate(Duration::from_secs(20));
    }
    let (commits, seqs, rebuilt) = w.check_commits_and_rebuilds(ccfg, stream, &journal, 3);
    let n = commits.len();
    let held: BTreeSet<(String, u64)> = commits.iter().map(|c| (c.xid.clone(), c.scn)).collect();
    for cp in acked {
        if let Some(c) = cp.last_commit {
            assert!(
                held.contains(&(c.xid.to_string(), c.scn.0)),
                "acknowledged commit {} (SCN {}) is missing",
                c.xid,
                c.scn.0
            );
        }
    }
    eprintln!(
        "{n} commits in {} logs ({} rebuilt), {} acknowledged checkpoints checked",
        seqs.len(),
        rebuilt,
        acked.len()
    );
}

#[test]
fn kill_9_of_the_extractor_at_30_random_moments_loses_and_duplicates_nothing() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(512 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let mut rng = rand::rngs::StdRng::seed_from_u64(crash_seed());
    let mut acked = Vec::new();
    let mut positions = BTreeSet::new();
    for i in 0..KILLS {
        let e = w.start_extractor(&ecfg);
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..700)));
        e.kill9();
        if let Some(cp) = checkpoint(&w) {
            assert_durable(&w, &stream, &cp, &format!("after extractor kill {i}"));
            positions.insert(cp.pos);
            acked.push(cp);
        }
    }
    assert!(
        positions.len() >= KILLS / 3,
        "the extractor made progress between kills ({} positions)",
        positions.len()
    );
    let e = w.start_extractor(&ecfg);
    finish_and_check(&w, db, &ccfg, &stream, &acked, vec![e, collector]);
}

#[test]
fn kill_9_of_the_collector_at_30_random_moments_loses_no_acknowledged_commit() {
    init_logs();
    // Compressed (issue 19): torn tails of compressed chunks are cut at every restart.
    let mut w = World::new(3);
    w.compress = true;
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let mut collector = w.start_collector(&ccfg);
    let sim = w.sim_config(512 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let mut rng = rand::rngs::StdRng::seed_from_u64(crash_seed());
    let mut acked = Vec::new();
    let mut positions = BTreeSet::new();
    for i in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..800)));
        collector.kill9();
        // Give the extractor's checkpoint task a moment to write the last Acks it got.
        std::thread::sleep(Duration::from_millis(30));
        let cp = checkpoint(&w);
        collector = w.start_collector(&ccfg);
        let Some(cp) = cp else { continue };
        wait_until(
            "the restarted collector's metrics",
            Duration::from_secs(20),
            Duration::from_millis(20),
            || collector_durable(&w, &stream).is_some(),
        );
        assert_durable(&w, &stream, &cp, &format!("after collector kill {i}"));
        positions.insert(cp.pos);
        acked.push(cp);
    }
    assert!(
        positions.len() >= KILLS / 3,
        "the pipeline made progress between kills ({} positions)",
        positions.len()
    );
    let log = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
    eprintln!(
        "collector restarts: {} torn tails dropped",
        log.matches("torn tail dropped").count()
    );
    finish_and_check(&w, db, &ccfg, &stream, &acked, vec![extractor, collector]);
    w.assert_stored_compressed(0.8);
}
