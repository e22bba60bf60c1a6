//! The tailer against the simulated Oracle (driven step by step in one thread while the
//! tailer reads concurrently) and against the real Oracle 23ai fixtures.
//!
//! Ground truth: the simulator's archived logs (every byte of each sequence, blocks 0 and 1
//! aside, which the archive rewrites) and its journal (every commit), and the parser's
//! `analyze` of the archives for where each commit record ends.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_drill::simulate::journal::parse_journal;
use redovault_drill::simulate::{SimConfig, Simulator};
use redovault_extractor::checkpoint::CheckpointStore;
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::online::LogHeader;
use redovault_extractor::tail::{TailChunk, TailError, TailHandle, TailStats, Tailer};
use redovault_redo::{LogSeq, ThreadId, analyze};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

fn sim_config(dir: &Path, seed: u64) -> SimConfig {
    let mut c = SimConfig::new(dir);
    c.log_size = 64 * 1024;
    c.groups = 3;
    c.seed = seed;
    c.mix.rollback_pct = 20;
    c
}

fn sources(dir: &Path, groups: u32) -> LogSources {
    LogSources {
        groups: (1..=groups)
            .map(|g| vec![dir.join(format!("online/redo_t1_g{g}.log"))])
            .collect(),
        archive_dirs: vec![dir.join("archive")],
    }
}

fn opts() -> TailConfig {
    TailConfig {
        poll: Duration::from_millis(1),
        file_events: false,
        max_chunk: 16 << 10,
        torn_retries: 400,
        torn_delay: Duration::from_millis(5),
        archive_wait: Duration::from_secs(30),
    }
}

fn archive_of(dir: &Path, seq: u32) -> PathBuf {
    archive_of_thread(dir, 1, seq)
}

fn archive_of_thread(dir: &Path, thread: u16, seq: u32) -> PathBuf {
    let rl = SimConfig::new("x").resetlogs_id();
    dir.join(format!("archive/arch{thread}_{seq}_{rl}.dbf"))
}

/// Runs `sim_steps` on the simulator while a spawned tailer runs; returns the chunks up to
/// and including the one that ends sequence `last` (the simulator archives its current log
/// at the end, so that sequence completes).
struct Run {
    chunks: Vec<TailChunk>,
    stats: Arc<TailStats>,
    /// The last sequence archived by the simulator (shipped to its end).
    last: u32,
}

fn collect_until(
    tailer: Tailer,
    last: mpsc::Receiver<u32>,
    sim_thread: impl FnOnce() + Send + 'static,
) -> Run {
    let rt = runtime();
    let cancel = CancellationToken::new();
    let mut h = tailer.spawn(4, cancel.clone()).unwrap();
    let stats = h.stats();
    let sim = thread::spawn(sim_thread);
    let mut chunks: Vec<TailChunk> = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut stop_at: Option<u32> = None;
    loop {
        assert!(
            Instant::now() < deadline,
            "tailer too slow: {} chunks",
            chunks.len()
        );
        if stop_at.is_none() {
            stop_at = last.try_recv().ok();
        }
        if let Some(s) = stop_at
            && ends(&chunks, s)
        {
            break;
        }
        if let Some(c) = next(&rt, &mut h, Duration::from_millis(200)) {
            chunks.push(c);
        }
    }
    sim.join().expect("simulator thread");
    h.stop();
    let last = stop_at.unwrap_or_default();
    let upto = chunks
        .iter()
        .position(|c| c.log_end.is_some() && c.pos.seq.0 == last)
        .unwrap_or_default();
    chunks.truncate(upto + 1);
    Run {
        chunks,
        stats,
        last,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// The next chunk of a spawned tailer, or `None` after `wait`; panics on a tail error.
fn next(rt: &tokio::runtime::Runtime, h: &mut TailHandle, wait: Duration) -> Option<TailChunk> {
    match rt.block_on(async { tokio::time::timeout(wait, h.next_chunk()).await }) {
        Ok(r) => Some(r.expect("tail").expect("tailer running")),
        Err(_) => None,
    }
}

/// True once a chunk ended sequence `seq`.
fn ends(chunks: &[TailChunk], seq: u32) -> bool {
    chunks
        .iter()
        .any(|c| c.log_end.is_some() && c.pos.seq.0 == seq)
}

/// Checks the chunk stream from `from` on: contiguous, whole logs equal to the archives
/// (from block 2 on; blocks 0 and 1 name the same log), every journal commit of those logs
/// once and in order, each mark inside its chunk at the end of the block ending its record.
fn verify(dir: &Path, chunks: &[TailChunk], from: StreamPos, last_seq: u32) {
    verify_thread(dir, 1, chunks, from, last_seq);
}

fn verify_thread(dir: &Path, thread: u16, chunks: &[TailChunk], from: StreamPos, last_seq: u32) {
    let mut expect = from;
    let mut logs: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut marks: Vec<CommitMark> = Vec::new();
    for c in chunks {
        assert_eq!(c.pos, expect, "chunks are contiguous");
        for m in &c.commits {
            assert!(
                m.end > c.pos && m.end <= c.end(),
                "{m:?} in chunk {}..{}",
                c.pos,
                c.end()
            );
        }
        marks.extend(c.commits.iter().copied());
        logs.entry(c.pos.seq.0)
            .or_default()
            .extend_from_slice(&c.bytes);
        expect = match c.log_end {
            Some(end) => {
                assert_eq!(end, c.end().offset, "log_end is the end of the chunk");
                StreamPos {
                    seq: LogSeq(c.pos.seq.0 + 1),
                    offset: 0,
                }
            }
            None => c.end(),
        };
    }
    let journal = parse_journal(&fs::read_to_string(dir.join("journal.jsonl")).unwrap()).unwrap();
    let mut want_marks = Vec::new();
    for seq in from.seq.0..=last_seq {
        let arch = fs::read(archive_of_thread(dir, thread, seq)).unwrap();
        let got = &logs[&seq];
        let skip = if seq == from.seq.0 {
            from.offset as usize
        } else {
            0
        };
        assert_eq!(
            got.len() + skip,
            arch.len(),
            "sequence {seq}: whole log shipped"
        );
        let body_from = 1024usize.max(skip);
        assert!(
            got[body_from - skip..] == arch[body_from..],
            "sequence {seq}: bytes equal the archived copy from block 2 on"
        );
        if skip == 0 {
            let shipped = LogHeader::parse(&got[..1024]).unwrap();
            let archived = LogHeader::parse(&arch[..1024]).unwrap();
            assert_eq!(shipped.seq(), archived.seq());
            assert_eq!(shipped.stream, archived.stream);
            assert_eq!(shipped.redo.first_scn, archived.redo.first_scn);
        }
        let report = analyze(&arch).unwrap();
        for c in report.commits.iter().filter(|c| !c.rollback) {
            let end = StreamPos {
                seq: LogSeq(seq),
                offset: (u64::from(c.end_block) + 1) * 512,
            };
            if end > from {
                want_marks.push((c.xid, c.scn, c.unix_time.map(i64::from), end));
            }
        }
    }
    let got_marks: Vec<_> = marks
        .iter()
        .map(|m| (m.xid, m.scn, m.time, m.end))
        .collect();
    assert_eq!(
        got_marks, want_marks,
        "commit marks = the parser's commits of the archives"
    );
    // And = the journal's commits of those logs, in order (checked from the start of a log).
    assert_eq!(from.offset, 0, "the journal check needs whole logs");
    let in_range: Vec<(String, u64, i64)> = journal
        .iter()
        .filter(|e| e.thread == thread && !e.rollback)
        .filter(|e| e.sequence >= from.seq.0 && e.sequence <= last_seq)
        .map(|e| (e.xid.clone(), e.scn, e.unix_time))
        .collect();
    let from_marks: Vec<(String, u64, i64)> = marks
        .iter()
        .map(|m| (m.xid.to_string(), m.scn.0, m.time.unwrap()))
        .collect();
    assert_eq!(from_marks, in_range, "every journal commit once, in order");
}

/// A simulator thread: `steps` steps with a short pause every few steps (so the tailer
/// follows the live log), a switch every `switch_every` steps, then finish with the current
/// log archived; sends the last archived sequence.
fn live_sim(
    sim: Simulator,
    steps: usize,
    pause_every: usize,
    tx: mpsc::Sender<u32>,
) -> impl FnOnce() + Send + 'static {
    move || {
        let mut sim = sim;
        for i in 0..steps {
            sim.step().unwrap();
            if pause_every > 0 && i % pause_every == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        let s = sim.finish().unwrap();
        let last = s.archived.last().unwrap();
        let name = last.file_name().unwrap().to_string_lossy().to_string();
        let seq: u32 = name.split('_').nth(1).unwrap().parse().unwrap();
        tx.send(seq).unwrap();
    }
}

#[test]
fn live_tail_through_log_switches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 11);
    cfg.archive_current = true;
    let sim = Simulator::start(cfg).unwrap();
    let tailer = Tailer::at_current(&sources(&dir, 3), opts(), ThreadId(1)).unwrap();
    assert_eq!(
        tailer.position(),
        StreamPos {
            seq: LogSeq(1),
            offset: 0
        }
    );
    let (tx, rx) = mpsc::channel();
    let run = collect_until(tailer, rx, live_sim(sim, 3000, 5, tx));
    let last = run.last;
    assert!(last >= 4, "several log switches: {last}");
    verify(
        &dir,
        &run.chunks,
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        last,
    );
    let s = &run.stats;
    assert!(
        run.chunks.len() as u32 > 3 * last,
        "the logs were read as they grew: {} chunks",
        run.chunks.len()
    );
    assert_eq!(s.logs_completed.load(Ordering::Relaxed), u64::from(last));
    assert_eq!(s.decode_errors.load(Ordering::Relaxed), 0);
}

#[test]
fn file_events_wake_the_tailer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 12);
    cfg.archive_current = true;
    let sim = Simulator::start(cfg).unwrap();
    let mut o = opts();
    o.file_events = true;
    o.poll = Duration::from_secs(30);
    let tailer = Tailer::at_current(&sources(&dir, 3), o, ThreadId(1)).unwrap();
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    let run = collect_until(tailer, rx, live_sim(sim, 1500, 5, tx));
    let last = run.last;
    verify(
        &dir,
        &run.chunks,
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        last,
    );
    // With a 30 s poll, only file events can have woken the tailer in time: it caught up
    // with the writer many times (more chunks than logs) and finished well within one poll.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert!(
        run.chunks.len() as u32 > 2 * last,
        "{} chunks",
        run.chunks.len()
    );
}

#[test]
fn late_start_catches_up_from_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 13);
    cfg.archive_current = true;
    let mut sim = Simulator::start(cfg).unwrap();
    // Five switches before the tailer starts: groups 1..3 now hold sequences 4, 5, 6, so
    // sequences 1..3 exist only as archives.
    for _ in 0..5 {
        for _ in 0..40 {
            sim.step().unwrap();
        }
        sim.switch_logfile().unwrap();
    }
    let stream = LogHeader::parse(&fs::read(archive_of(&dir, 1)).unwrap())
        .unwrap()
        .stream;
    let from = StreamPos {
        seq: LogSeq(1),
        offset: 0,
    };
    let tailer = Tailer::new(&sources(&dir, 3), opts(), stream, from).unwrap();
    let (tx, rx) = mpsc::channel();
    let run = collect_until(tailer, rx, live_sim(sim, 1500, 5, tx));
    let last = run.last;
    assert!(last >= 7, "{last}");
    verify(&dir, &run.chunks, from, last);
    assert!(run.stats.archive_reads.load(Ordering::Relaxed) >= 3);
}

#[test]
fn reused_while_reading_continues_from_the_archive() {
    // The tailer reads the first half of sequence 1 online, then LGWR reuses the group
    // (three switches) before it reads on: the rest comes from the archived copy.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 14);
    cfg.groups = 2;
    let mut sim = Simulator::start(cfg).unwrap();
    let mut t = Tailer::at_current(&sources(&dir, 2), opts(), ThreadId(1)).unwrap();
    for _ in 0..60 {
        sim.step().unwrap();
    }
    let mut chunks = Vec::new();
    while let Some(c) = t.poll_chunk().unwrap() {
        chunks.push(c);
    }
    let mid = chunks.last().unwrap().end();
    assert!(mid.offset > 1024, "{mid}");
    for _ in 0..3 {
        for _ in 0..60 {
            sim.step().unwrap();
        }
        sim.switch_logfile().unwrap();
    }
    for _ in 0..30 {
        sim.step().unwrap();
    }
    sim.switch_logfile().unwrap();
    let deadline = Instant::now() + WAIT;
    while !ends(&chunks, 4) {
        assert!(Instant::now() < deadline);
        match t.poll_chunk().unwrap() {
            Some(c) => chunks.push(c),
            None => thread::sleep(Duration::from_millis(5)),
        }
    }
    sim.finish().unwrap();
    let upto = chunks
        .iter()
        .position(|c| c.log_end.is_some() && c.pos.seq.0 == 4)
        .unwrap();
    verify(
        &dir,
        &chunks[..=upto],
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        4,
    );
    assert!(t.stats().archive_reads.load(Ordering::Relaxed) >= 1);
}

#[test]
fn torn_block_in_progress_is_reread() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 15);
    cfg.archive_current = true;
    let mut sim = Simulator::start(cfg).unwrap();
    for _ in 0..30 {
        sim.step().unwrap();
    }
    let tailer = Tailer::at_current(&sources(&dir, 3), opts(), ThreadId(1)).unwrap();
    let cancel = CancellationToken::new();
    let mut h = tailer.spawn(64, cancel).unwrap();
    let stats = h.stats();
    // Hold the simulator in the middle of an LWN write until the tailer has re-read the
    // torn block at least once; then let LGWR finish the write.
    let s = stats.clone();
    sim.tear_next_lwn(move || {
        let deadline = Instant::now() + WAIT;
        while s.torn_rereads.load(Ordering::Relaxed) < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    });
    let (start_seq, start_block) = sim.write_position(1).unwrap();
    while sim.write_position(1).unwrap() == (start_seq, start_block) {
        sim.step().unwrap();
    }
    let summary = sim.finish().unwrap();
    let last = summary.archived.len() as u32;
    let rt = runtime();
    let mut chunks: Vec<TailChunk> = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !ends(&chunks, last) {
        assert!(Instant::now() < deadline);
        chunks.extend(next(&rt, &mut h, Duration::from_millis(200)));
    }
    h.stop();
    assert!(stats.torn_rereads.load(Ordering::Relaxed) >= 3);
    assert_eq!(stats.fallbacks.load(Ordering::Relaxed), 0);
    verify(
        &dir,
        &chunks,
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        last,
    );
}

/// A finished simulation with sequences 1 and 2 complete (3 is CURRENT, all three online).
fn finished_sim(dir: &Path, seed: u64) -> StreamId {
    let mut sim = Simulator::start(sim_config(dir, seed)).unwrap();
    for _ in 0..2 {
        for _ in 0..80 {
            sim.step().unwrap();
        }
        sim.switch_logfile().unwrap();
    }
    for _ in 0..20 {
        sim.step().unwrap();
    }
    sim.finish().unwrap();
    LogHeader::parse(&fs::read(archive_of(dir, 1)).unwrap())
        .unwrap()
        .stream
}

fn drain(t: &mut Tailer) -> Result<Vec<TailChunk>, TailError> {
    let mut out = Vec::new();
    while let Some(c) = t.poll_chunk()? {
        out.push(c);
    }
    Ok(out)
}

#[test]
fn damaged_block_in_a_completed_log_is_reported_with_file_and_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let stream = finished_sim(&dir, 16);
    let g1 = dir.join("online/redo_t1_g1.log");
    let mut bytes = fs::read(&g1).unwrap();
    bytes[5 * 512 + 200] ^= 0x10;
    fs::write(&g1, &bytes).unwrap();
    let mut o = opts();
    o.torn_retries = 2;
    o.torn_delay = Duration::from_millis(1);
    let from = StreamPos {
        seq: LogSeq(1),
        offset: 0,
    };

    // Only the damaged online copy: an error naming the file and the block.
    let mut only_online = sources(&dir, 3);
    only_online.archive_dirs.clear();
    let mut t = Tailer::new(&only_online, o, stream, from).unwrap();
    let e = drain(&mut t).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, TailError::Damaged { block: 5, .. }), "{msg}");
    assert!(msg.contains(&g1.display().to_string()), "{msg}");
    assert!(
        msg.contains("block 5") && msg.contains("checksum after 2 re-reads"),
        "{msg}"
    );
    // Nothing was shipped past the damage, and a retry fails the same way.
    assert_eq!(t.position(), from);
    assert!(matches!(
        t.poll_chunk(),
        Err(TailError::Damaged { block: 5, .. })
    ));

    // A second (healthy) member of the group: it serves the block.
    let g1b = dir.join("g1b.log");
    let mut healthy = bytes.clone();
    healthy[5 * 512 + 200] ^= 0x10;
    fs::write(&g1b, &healthy).unwrap();
    let mut two_members = only_online.clone();
    two_members.groups[0].push(g1b);
    let mut t = Tailer::new(&two_members, o, stream, from).unwrap();
    let chunks = drain(&mut t).unwrap();
    assert_eq!(t.stats().fallbacks.load(Ordering::Relaxed), 1);
    verify(
        &dir,
        &chunks[..chunks
            .iter()
            .position(|c| c.log_end.is_some() && c.pos.seq.0 == 2)
            .unwrap()
            + 1],
        from,
        2,
    );

    // The archived copy serves it too.
    let mut t = Tailer::new(&sources(&dir, 3), o, stream, from).unwrap();
    let chunks = drain(&mut t).unwrap();
    assert!(t.stats().archive_reads.load(Ordering::Relaxed) >= 1);
    let upto = chunks
        .iter()
        .position(|c| c.log_end.is_some() && c.pos.seq.0 == 2)
        .unwrap();
    verify(&dir, &chunks[..=upto], from, 2);
}

#[test]
fn sequence_lost_when_reused_and_never_archived() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut sim = Simulator::start(sim_config(&dir, 17)).unwrap();
    for _ in 0..4 {
        for _ in 0..10 {
            sim.step().unwrap();
        }
        sim.switch_logfile().unwrap();
    }
    sim.finish().unwrap();
    let stream = LogHeader::parse(&fs::read(archive_of(&dir, 1)).unwrap())
        .unwrap()
        .stream;
    let empty = dir.join("empty-archive");
    fs::create_dir_all(&empty).unwrap();
    let mut s = sources(&dir, 3);
    s.archive_dirs = vec![empty.clone()];
    let mut o = opts();
    o.archive_wait = Duration::from_millis(100);
    let mut t = Tailer::new(
        &s,
        o,
        stream,
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
    )
    .unwrap();
    let t0 = Instant::now();
    let e = loop {
        match t.poll_chunk() {
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Ok(Some(c)) => panic!("nothing of sequence 1 is left online: {c:?}"),
            Err(e) => break e,
        }
        assert!(t0.elapsed() < WAIT);
    };
    let msg = e.to_string();
    assert!(
        matches!(e, TailError::SequenceLost { seq: LogSeq(1), .. }),
        "{msg}"
    );
    assert!(msg.contains(&empty.display().to_string()), "{msg}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
}

#[test]
fn restart_from_checkpoint_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 18);
    cfg.archive_current = true;
    let mut sim = Simulator::start(cfg).unwrap();
    let src = sources(&dir, 3);
    let state = dir.join("state");
    let mut t = Tailer::at_current(&src, opts(), ThreadId(1)).unwrap();
    let stream = t.stream();
    let mut acked: Vec<TailChunk> = Vec::new();
    // 40 runs; each acknowledges a pseudo-random part of what it produced (none, some or
    // all, one chunk at a time as acks arrive), then "crashes" (dropped, state lost).
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    for round in 0..40 {
        for _ in 0..rand(60) {
            sim.step().unwrap();
        }
        if round % 9 == 4 {
            sim.switch_logfile().unwrap();
        }
        let produced = drain(&mut t).unwrap();
        let n = rand(produced.len() + 1);
        let mut cp = CheckpointStore::open(&state, stream).unwrap();
        for c in &produced[..n] {
            cp.advance(c.end(), c.last_commit().copied()).unwrap();
        }
        acked.extend(produced.into_iter().take(n));
        drop(t);
        let from = match CheckpointStore::open(&state, stream).unwrap().get() {
            Some(cp) => {
                assert_eq!(cp.pos, acked.last().unwrap().end());
                cp.pos
            }
            None => StreamPos {
                seq: LogSeq(1),
                offset: 0,
            },
        };
        t = Tailer::new(&src, opts(), stream, from).unwrap();
    }
    let s = sim.finish().unwrap();
    let last = s.archived.len() as u32;
    let deadline = Instant::now() + WAIT;
    while !ends(&acked, last) {
        assert!(Instant::now() < deadline);
        acked.extend(drain(&mut t).unwrap());
    }
    // Chunks ending a log are acknowledged at the log's end: the restarted tailer gives the
    // end mark again without bytes; drop such repeats like the collector would.
    let mut stream_chunks: Vec<TailChunk> = Vec::new();
    for c in acked {
        let repeat = c.bytes.is_empty()
            && stream_chunks
                .last()
                .is_some_and(|p| p.log_end.is_some() && p.end() == c.pos);
        if !repeat {
            stream_chunks.push(c);
        }
    }
    let upto = stream_chunks
        .iter()
        .position(|c| c.log_end.is_some() && c.pos.seq.0 == last)
        .unwrap();
    verify(
        &dir,
        &stream_chunks[..=upto],
        StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        last,
    );
}

#[test]
fn bad_start_positions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let stream = finished_sim(&dir, 19);
    for (pos, want) in [
        ((1, 512), "block boundary"),
        ((1, 1000), "block boundary"),
        ((1, 129 * 512), "the log has"),
        ((3, 120 * 512), "written only up to block"),
    ] {
        let pos = StreamPos {
            seq: LogSeq(pos.0),
            offset: pos.1,
        };
        let mut t = Tailer::new(&sources(&dir, 3), opts(), stream, pos).unwrap();
        let e = t.poll_chunk().unwrap_err();
        assert!(matches!(e, TailError::BadPosition { .. }), "{e}");
        assert!(e.to_string().contains(want), "{pos}: {e}");
    }
}

mod oracle_real {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/support/oracle_real.rs"
    ));
}

fn fixture_stream() -> StreamId {
    StreamId {
        db_id: DbId(1_497_016_494),
        resetlogs_id: ResetlogsId(1_224_959_854),
        thread: ThreadId(1),
    }
}

/// The golden commits (inspect --json) of a real log: (xid, scn, time), commits only.
fn golden_commits(name: &str) -> Vec<(String, u64, String)> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/golden")
        .join(format!("{name}.inspect.json"));
    let v: serde_json::Value = serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
    v["commits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["rollback"].as_bool().unwrap())
        .map(|c| {
            (
                c["xid"].as_str().unwrap().to_string(),
                c["scn"].as_u64().unwrap(),
                c["time"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn iso(t: i64) -> String {
    redovault_drill::simulate::journal::iso8601(t)
}

#[test]
fn real_oracle_archives() {
    let Some(real) = oracle_real::free23() else {
        return;
    };
    let src = LogSources {
        groups: Vec::new(),
        archive_dirs: vec![real.clone()],
    };
    let from = StreamPos {
        seq: LogSeq(15),
        offset: 0,
    };
    let mut t = Tailer::new(&src, opts(), fixture_stream(), from).unwrap();
    let chunks = drain(&mut t).unwrap();
    // Both logs, then waiting for sequence 17.
    assert_eq!(
        t.position(),
        StreamPos {
            seq: LogSeq(17),
            offset: 0
        }
    );
    for (seq, name) in [(15, "arch1_15_1224959854"), (16, "arch1_16_1224959854")] {
        let bytes: Vec<u8> = chunks
            .iter()
            .filter(|c| c.pos.seq.0 == seq)
            .flat_map(|c| c.bytes.iter().copied())
            .collect();
        assert_eq!(
            bytes,
            fs::read(real.clone().join(format!("{name}.dbf"))).unwrap()
        );
        let marks: Vec<(String, u64, String)> = chunks
            .iter()
            .filter(|c| c.pos.seq.0 == seq)
            .flat_map(|c| c.commits.iter())
            .map(|m| (m.xid.to_string(), m.scn.0, iso(m.time.unwrap())))
            .collect();
        assert_eq!(marks, golden_commits(name), "sequence {seq}");
    }
    // The scenario's transaction (SOURCES.md): XID 10.12.572 committed at SCN 2267708, its
    // record at block 582 offset 0x150 crossing into block 583.
    let m = chunks
        .iter()
        .flat_map(|c| c.commits.iter())
        .find(|m| m.xid.to_string() == "10.12.572")
        .unwrap();
    assert_eq!(m.scn.0, 2_267_708);
    assert_eq!(m.time, Some(1_772_847_880));
    assert_eq!(
        m.end,
        StreamPos {
            seq: LogSeq(15),
            offset: 584 * 512
        }
    );
    assert!(t.poll_chunk().unwrap().is_none());
}

#[test]
fn real_oracle_resume_around_a_straddling_commit() {
    let Some(real) = oracle_real::free23() else {
        return;
    };
    let src = LogSources {
        groups: Vec::new(),
        archive_dirs: vec![real.clone()],
    };
    let whole = fs::read(real.clone().join("arch1_15_1224959854.dbf")).unwrap();
    // Resuming inside the commit record (it starts in block 582 and ends in block 583):
    // the commit is still found, in the first chunk after the resume point.
    let from = StreamPos {
        seq: LogSeq(15),
        offset: 583 * 512,
    };
    let mut t = Tailer::new(&src, opts(), fixture_stream(), from).unwrap();
    let first = t.poll_chunk().unwrap().unwrap();
    assert_eq!(first.pos, from);
    assert_eq!(
        &first.bytes[..],
        &whole[583 * 512..583 * 512 + first.bytes.len()]
    );
    assert_eq!(first.commits[0].xid.to_string(), "10.12.572");
    // Resuming after it: not reported again.
    let from = StreamPos {
        seq: LogSeq(15),
        offset: 584 * 512,
    };
    let mut t = Tailer::new(&src, opts(), fixture_stream(), from).unwrap();
    let rest = drain(&mut t).unwrap();
    assert!(
        rest.iter()
            .flat_map(|c| c.commits.iter())
            .all(|m| m.xid.to_string() != "10.12.572")
    );
    // Resuming at the very end of sequence 15: its end mark again, no bytes, then 16.
    let from = StreamPos {
        seq: LogSeq(15),
        offset: whole.len() as u64,
    };
    let mut t = Tailer::new(&src, opts(), fixture_stream(), from).unwrap();
    let end = t.poll_chunk().unwrap().unwrap();
    assert!(end.bytes.is_empty());
    assert_eq!(end.log_end, Some(whole.len() as u64));
    assert_eq!(
        t.poll_chunk().unwrap().unwrap().pos,
        StreamPos {
            seq: LogSeq(16),
            offset: 0
        }
    );
}

#[test]
fn spawned_tailer_reports_errors_and_stops_on_cancel() {
    let Some(real) = oracle_real::free23() else {
        return;
    };
    let rt = runtime();
    let src = LogSources {
        groups: Vec::new(),
        archive_dirs: vec![real.clone()],
    };
    // A bad start position: the error comes through the channel, then the end.
    let bad = StreamPos {
        seq: LogSeq(15),
        offset: 700,
    };
    let mut h = Tailer::new(&src, opts(), fixture_stream(), bad)
        .unwrap()
        .spawn(2, CancellationToken::new())
        .unwrap();
    let e = rt.block_on(h.next_chunk()).unwrap_err();
    assert!(matches!(e, TailError::BadPosition { .. }), "{e}");
    assert!(rt.block_on(h.next_chunk()).unwrap().is_none());
    // Both real logs through a channel of 1, then idle (waiting for sequence 17) until
    // cancelled: next_chunk then ends with Ok(None).
    let cancel = CancellationToken::new();
    let from = StreamPos {
        seq: LogSeq(15),
        offset: 0,
    };
    let mut h = Tailer::new(&src, opts(), fixture_stream(), from)
        .unwrap()
        .spawn(1, cancel.clone())
        .unwrap();
    let mut chunks = Vec::new();
    while !ends(&chunks, 16) {
        chunks.push(next(&rt, &mut h, WAIT).expect("a chunk"));
    }
    assert!(
        next(&rt, &mut h, Duration::from_millis(100)).is_none(),
        "idle"
    );
    cancel.cancel();
    let t0 = Instant::now();
    let end = rt.block_on(async { tokio::time::timeout(WAIT, h.next_chunk()).await });
    assert!(matches!(end, Ok(Ok(None))), "{end:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    h.stop();
}

#[test]
fn rac_threads_each_get_their_stream() {
    use redovault_extractor::config::{
        ArchiveConfig, ExtractorConfig, GroupConfig, OnlineConfig, StateConfig,
    };
    use redovault_extractor::streams::start_streams;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut cfg = sim_config(&dir, 21);
    cfg.threads = 2;
    cfg.archive_current = true;
    let sim = Simulator::start(cfg).unwrap();
    let mut groups = Vec::new();
    for t in 1..=2 {
        for g in 1..=3 {
            groups.push(GroupConfig {
                members: vec![dir.join(format!("online/redo_t{t}_g{g}.log"))],
            });
        }
    }
    let xcfg = ExtractorConfig {
        online: OnlineConfig {
            groups,
            threads: Vec::new(),
        },
        archive: ArchiveConfig {
            dirs: vec![dir.join("archive")],
        },
        tail: opts(),
        state: StateConfig {
            dir: dir.join("state"),
        },
    };
    let starts = start_streams(&xcfg).unwrap();
    assert_eq!(starts.len(), 2);
    let rt = runtime();
    let mut handles: Vec<TailHandle> = starts
        .into_iter()
        .map(|s| s.tailer.spawn(8, CancellationToken::new()).unwrap())
        .collect();
    let sim = thread::spawn(move || {
        let mut sim = sim;
        for i in 0..3000 {
            sim.step().unwrap();
            if i % 5 == 0 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        sim.finish().unwrap()
    });
    let mut got: Vec<Vec<TailChunk>> = vec![Vec::new(), Vec::new()];
    let deadline = Instant::now() + WAIT;
    while !sim.is_finished() {
        assert!(Instant::now() < deadline);
        for (i, h) in handles.iter_mut().enumerate() {
            got[i].extend(next(&rt, h, Duration::from_millis(10)));
        }
    }
    let summary = sim.join().unwrap();
    for (i, h) in handles.iter_mut().enumerate() {
        let t = i as u16 + 1;
        // The simulator archived every thread's current log at the end.
        let last = summary.current.iter().find(|c| c.0 == t).unwrap().1 - 1;
        assert!(last >= 2, "thread {t} switched: {last}");
        while !ends(&got[i], last) {
            assert!(Instant::now() < deadline, "thread {t} too slow");
            got[i].extend(next(&rt, h, Duration::from_millis(200)));
        }
        let chunks = &got[i];
        assert!(chunks.iter().all(|c| c.stream.thread == ThreadId(t)));
        let upto = chunks
            .iter()
            .position(|c| c.log_end.is_some() && c.pos.seq.0 == last)
            .unwrap();
        let from = StreamPos {
            seq: LogSeq(1),
            offset: 0,
        };
        verify_thread(&dir, t, &chunks[..=upto], from, last);
    }
    for h in handles {
        h.stop();
    }
}
