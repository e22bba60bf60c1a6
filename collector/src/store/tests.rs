//! Tests of the store: continuity, resends, recovery, torn tails, corruption, faults, keys.

use redovault_redo::position::{DbId, ResetlogsId};
use std::fs::OpenOptions;

use super::*;
use crate::fs::RealFs;
use crate::fs::{FaultPlan, FaultyFs};
use crate::segment::{self, ScanMode, StoredChunk};
use redovault::crypto::keys::KeyId;
use redovault_redo::position::{Scn, ThreadId, Xid};

pub(crate) fn ring(active: &str, ids: &[&str]) -> KeyRing {
    let id = |s: &str| KeyId::parse(s).unwrap();
    KeyRing::from_keys(
        id(active),
        ids.iter().map(|s| (id(s), [s.as_bytes()[s.len() - 1]; 32])),
    )
    .unwrap()
}

fn keys() -> KeyRing {
    ring("k1", &["k1"])
}

fn sid(thread: u16) -> StreamId {
    StreamId {
        db_id: DbId(1_497_016_494),
        resetlogs_id: ResetlogsId(1_224_959_854),
        thread: ThreadId(thread),
    }
}

fn p(seq: u32, offset: u64) -> StreamPos {
    StreamPos {
        seq: LogSeq(seq),
        offset,
    }
}

/// Deterministic redo-like bytes of `seq` at `offset`.
fn data(seq: u32, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = (offset + i).wrapping_mul(0x9E37_79B9) ^ u64::from(seq).wrapping_mul(31);
            (x >> 7) as u8
        })
        .collect()
}

fn commit(seq: u32, end: u64) -> CommitMark {
    CommitMark {
        xid: Xid {
            usn: 7,
            slot: (end % 97) as u16,
            sqn: end as u32,
        },
        scn: Scn(2_000_000 + u64::from(seq) * 1_000_000 + end),
        time: Some(1_772_841_600 + end as i64),
        end: p(seq, end),
    }
}

fn opts_small() -> StoreOptions {
    StoreOptions {
        segment_size: 64 * 1024,
        chunk_size: 8 * 1024,
        compress: None,
    }
}

fn open(dir: &Path) -> Store {
    Store::open_with(dir, keys(), opts_small(), Arc::new(RealFs)).unwrap()
}

/// Every chunk of a stream, read from its segments.
fn read_stream(store: &Store, s: StreamId) -> Vec<StoredChunk> {
    let mut out = Vec::new();
    for seg in store.segments(s) {
        segment::scan::<StreamStoreError>(
            &seg.path,
            store.keys(),
            ScanMode::Strict,
            None,
            |_, c| {
                out.push(c);
                Ok(())
            },
        )
        .unwrap();
    }
    out
}

fn bytes_of(chunks: &[StoredChunk], seq: u32) -> Vec<u8> {
    chunks
        .iter()
        .filter(|c| c.start.seq == LogSeq(seq))
        .flat_map(|c| c.data.clone())
        .collect()
}

#[test]
fn append_sync_reopen_keeps_redo_commits_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    {
        let mut st = open(dir.path());
        assert!(st.durable(s).is_none());
        let a = st
            .append(
                s,
                p(5, 0),
                &data(5, 0, 20_000),
                &[commit(5, 512), commit(5, 19_968)],
                false,
            )
            .unwrap();
        assert_eq!(
            (a.pending_end, a.stored, a.duplicate),
            (p(5, 20_000), 20_000, 0)
        );
        // Not durable before sync.
        assert!(st.durable(s).is_none());
        let changed = st.sync().unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.end, p(5, 20_000));
        st.append(s, p(5, 20_000), &data(5, 20_000, 1000), &[], true)
            .unwrap();
        st.append(s, p(6, 0), &data(6, 0, 3000), &[commit(6, 2560)], false)
            .unwrap();
        let d = st.sync().unwrap()[0].1;
        assert_eq!(d.end, p(6, 3000));
        assert!(!d.log_end);
        assert_eq!(d.last_commit, Some(commit(6, 2560)));
        assert_eq!(d.resume_pos(), p(6, 3000));
        assert_eq!(st.sync().unwrap(), []);
    }
    let st = open(dir.path());
    assert!(st.recovery().torn.is_empty());
    assert_eq!(st.recovery().redo_bytes, 24_000);
    assert_eq!(st.recovery().commits, 3);
    let d = st.durable(s).unwrap();
    assert_eq!((d.end, d.last_commit), (p(6, 3000), Some(commit(6, 2560))));
    assert_eq!(st.streams(), [s]);
    let chunks = read_stream(&st, s);
    assert_eq!(bytes_of(&chunks, 5), data(5, 0, 21_000));
    assert_eq!(bytes_of(&chunks, 6), data(6, 0, 3000));
    assert!(chunks.iter().all(|c| c.data.len() <= 8 * 1024));
    assert_eq!(
        st.commits(s, &CommitQuery::All, usize::MAX),
        [commit(5, 512), commit(5, 19_968), commit(6, 2560)]
    );
    let snap = st.snapshot(s).unwrap();
    assert_eq!(snap.seq_ends.get(&LogSeq(5)), Some(&21_000));
    assert_eq!(snap.seq_commits[&LogSeq(5)], (commit(5, 19_968), 2));
}

#[test]
fn continuity_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(dir.path());
    let err = st.append(s, p(3, 512), b"x", &[], false).unwrap_err();
    assert!(
        matches!(err, StreamStoreError::Discontinuity { expected: None, .. }),
        "{err}"
    );
    assert!(err.is_refusal());
    let err = st.append(s, p(3, 0), &[], &[], true).unwrap_err();
    assert!(
        matches!(err, StreamStoreError::InvalidAppend { .. }),
        "{err}"
    );
    st.append(s, p(3, 0), &data(3, 0, 1024), &[], false)
        .unwrap();
    // A gap.
    let err = st
        .append(s, p(3, 2048), &data(3, 2048, 512), &[], false)
        .unwrap_err();
    assert!(
        matches!(err, StreamStoreError::Discontinuity { expected: Some(e), .. } if e == p(3, 1024))
    );
    // The next log before this one ended.
    assert!(matches!(
        st.append(s, p(4, 0), &data(4, 0, 512), &[], false),
        Err(StreamStoreError::Discontinuity { .. })
    ));
    // End the log with an empty append.
    st.append(s, p(3, 1024), &[], &[], true).unwrap();
    // Nothing more in an ended log.
    let err = st
        .append(s, p(3, 1024), &data(3, 1024, 512), &[], false)
        .unwrap_err();
    assert!(matches!(err, StreamStoreError::Overlap { .. }), "{err}");
    // Skipping a log.
    let err = st
        .append(s, p(5, 0), &data(5, 0, 512), &[], false)
        .unwrap_err();
    assert!(
        matches!(err, StreamStoreError::Discontinuity { expected: Some(e), .. } if e == p(4, 0))
    );
    st.append(s, p(4, 0), &data(4, 0, 512), &[], false).unwrap();
    // Commit marks must lie in the append's bytes, in order.
    for bad in [
        vec![commit(4, 512)],
        vec![commit(4, 2048)],
        vec![commit(5, 600)],
        vec![commit(4, 1000), commit(4, 600)],
    ] {
        let err = st
            .append(s, p(4, 512), &data(4, 512, 512), &bad, false)
            .unwrap_err();
        assert!(
            matches!(err, StreamStoreError::InvalidAppend { .. }),
            "{err}"
        );
    }
    st.sync().unwrap();
    assert_eq!(st.durable(s).unwrap().end, p(4, 512));
}

#[test]
fn resends_are_idempotent_and_different_bytes_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(2);
    let mut st = open(dir.path());
    st.append(s, p(1, 0), &data(1, 0, 4096), &[commit(1, 1024)], false)
        .unwrap();
    st.sync().unwrap();
    st.append(
        s,
        p(1, 4096),
        &data(1, 4096, 4096),
        &[commit(1, 8192)],
        false,
    )
    .unwrap();
    // Not yet synced: a resend of durable + pending bytes plus new ones (after a reconnect
    // the session resumes from the durable position).
    let a = st
        .append(
            s,
            p(1, 2048),
            &data(1, 2048, 8192),
            &[commit(1, 8192), commit(1, 10_240)],
            false,
        )
        .unwrap();
    assert_eq!(
        (a.duplicate, a.stored, a.pending_end),
        (6144, 2048, p(1, 10_240))
    );
    // Exact duplicate of held bytes.
    let a = st
        .append(s, p(1, 0), &data(1, 0, 4096), &[commit(1, 1024)], false)
        .unwrap();
    assert_eq!((a.duplicate, a.stored), (4096, 0));
    // Different bytes at a held position.
    let mut other = data(1, 1000, 100);
    other[50] ^= 1;
    let err = st.append(s, p(1, 1000), &other, &[], false).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::Divergent { at, .. } if *at == p(1, 1050)),
        "{err}"
    );
    st.sync().unwrap();
    // End the log, start the next; a resend of the ended log is still recognised.
    st.append(s, p(1, 10_240), &[], &[], true).unwrap();
    st.append(s, p(2, 0), &data(2, 0, 512), &[], false).unwrap();
    let a = st
        .append(
            s,
            p(1, 8192),
            &data(1, 8192, 2048),
            &[commit(1, 10_240)],
            true,
        )
        .unwrap();
    assert_eq!((a.duplicate, a.stored), (2048, 0));
    assert!(matches!(
        st.append(s, p(1, 8192), &data(1, 8192, 4096), &[], false),
        Err(StreamStoreError::Overlap { .. })
    ));
    assert!(matches!(
        st.append(s, p(1, 0), &data(1, 0, 512), &[], true),
        Err(StreamStoreError::Overlap { .. })
    ));
    st.sync().unwrap();
    drop(st);
    let st = open(dir.path());
    let chunks = read_stream(&st, s);
    assert_eq!(bytes_of(&chunks, 1), data(1, 0, 10_240));
    assert_eq!(bytes_of(&chunks, 2), data(2, 0, 512));
    // Every commit once.
    assert_eq!(
        st.commits(s, &CommitQuery::All, usize::MAX),
        [commit(1, 1024), commit(1, 8192), commit(1, 10_240)]
    );
    // A resend after the restart, answered from disk.
    let mut st = st;
    let a = st
        .append(s, p(2, 0), &data(2, 0, 1024), &[], false)
        .unwrap();
    assert_eq!((a.duplicate, a.stored), (512, 512));
}

#[test]
fn segments_rotate_by_size_and_a_restart_never_reuses_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(dir.path());
    let mut off = 0;
    while off < 300_000 {
        st.append(
            s,
            p(9, off),
            &data(9, off, 10_000),
            &[commit(9, off + 10_000)],
            false,
        )
        .unwrap();
        off += 10_000;
        st.sync().unwrap();
    }
    let segs = st.segments(s);
    assert!(segs.len() >= 5, "{} segments", segs.len());
    for seg in &segs {
        assert!(seg.len <= 64 * 1024, "{seg:?}");
        assert_eq!(seg.len, std::fs::metadata(&seg.path).unwrap().len());
    }
    let last_before = segs.last().unwrap().number;
    drop(st);
    let mut st = open(dir.path());
    st.append(s, p(9, off), &data(9, off, 100), &[], false)
        .unwrap();
    st.sync().unwrap();
    let segs = st.segments(s);
    assert_eq!(segs.last().unwrap().number, last_before + 1);
    assert_eq!(st.commits(s, &CommitQuery::All, usize::MAX).len(), 30);
    drop(st);
    // A segment missing in the middle is corruption, named.
    std::fs::remove_file(&segs[2].path).unwrap();
    let err = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(RealFs)).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::Corrupt { file, .. } if *file == segs[2].path),
        "{err}"
    );
}

#[test]
fn a_segment_moved_to_another_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut st = open(dir.path());
    st.append(sid(1), p(1, 0), &data(1, 0, 100), &[], false)
        .unwrap();
    st.append(sid(2), p(1, 0), &data(1, 0, 100), &[], false)
        .unwrap();
    st.sync().unwrap();
    let a = st.segments(sid(1))[0].path.clone();
    let b = st.segments(sid(2))[0].path.clone();
    drop(st);
    // Thread 2's segment put in thread 1's place: the authenticated header says otherwise.
    std::fs::copy(&b, &a).unwrap();
    let err = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(RealFs)).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::Corrupt { file, offset: 0, .. } if *file == a),
        "{err}"
    );
}

#[test]
fn torn_tail_is_cut_and_every_synced_append_survives() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let s = sid(1);
        let mut st = open(dir.path());
        let mut off = 0u64;
        let mut synced = 0u64;
        let n = rng.gen_range(3..12);
        for i in 0..n {
            let len = rng.gen_range(1..20_000u64);
            st.append(
                s,
                p(1, off),
                &data(1, off, len as usize),
                &[commit(1, off + len)],
                false,
            )
            .unwrap();
            off += len;
            if i + 1 < n {
                st.sync().unwrap();
                synced = off;
            }
        }
        // The last append is written but never synced: a crash now can tear it anywhere.
        let last = st.segments(s).last().unwrap().clone();
        drop(st);
        let full = std::fs::metadata(&last.path).unwrap().len();
        let header_and_synced = last.durable_len;
        let cut = rng.gen_range(header_and_synced..full);
        let f = OpenOptions::new().write(true).open(&last.path).unwrap();
        f.set_len(cut).unwrap();
        if round % 3 == 0 {
            // Garbage instead of nothing: pages of another file, or zeros.
            use std::io::Write;
            let mut f = OpenOptions::new().append(true).open(&last.path).unwrap();
            f.write_all(&vec![if round % 2 == 0 { 0 } else { 0xA5 }; 700])
                .unwrap();
        }
        drop(f);
        let st = open(dir.path());
        let d = st.durable(s).unwrap();
        assert!(
            d.end.offset >= synced,
            "round {round}: {} < {synced}",
            d.end.offset
        );
        let torn = &st.recovery().torn;
        assert_eq!(
            torn.len(),
            usize::from(cut != header_and_synced || round % 3 == 0),
            "round {round}"
        );
        let chunks = read_stream(&st, s);
        assert_eq!(bytes_of(&chunks, 1), data(1, 0, d.end.offset as usize));
        // The file was cut at the last good record: a second open finds nothing to cut.
        drop(st);
        let st = open(dir.path());
        assert!(st.recovery().torn.is_empty(), "round {round}");
        assert_eq!(st.durable(s).unwrap(), d);
    }
}

#[test]
fn a_flipped_bit_anywhere_is_detected() {
    let src = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(src.path());
    st.append(s, p(1, 0), &data(1, 0, 100), &[commit(1, 100)], false)
        .unwrap();
    st.sync().unwrap();
    st.append(s, p(1, 100), &data(1, 100, 100), &[commit(1, 200)], false)
        .unwrap();
    st.sync().unwrap();
    st.append(s, p(1, 200), &data(1, 200, 100), &[commit(1, 300)], false)
        .unwrap();
    st.sync().unwrap();
    let seg = st.segments(s)[0].clone();
    drop(st);
    let original = std::fs::read(&seg.path).unwrap();
    let rec = original.len() - seg.durable_len as usize; // 0: all synced
    assert_eq!(rec, 0);
    // The last record starts where the other two end.
    let record_len = CHUNK_LEN_100 + segment::RECORD_OVERHEAD;
    let last_record = original.len() - record_len;
    let mut corrupt = 0;
    let mut torn = 0;
    for pos in 0..original.len() {
        let bit = pos % 8;
        let mut bad = original.clone();
        bad[pos] ^= 1 << bit;
        std::fs::write(&seg.path, &bad).unwrap();
        match Store::open_with(src.path(), keys(), opts_small(), Arc::new(RealFs)) {
            Err(StreamStoreError::Corrupt { file, offset, .. }) => {
                assert_eq!(file, seg.path);
                assert!(offset as usize <= pos, "byte {pos}: offset {offset}");
                assert!(pos < last_record, "byte {pos} is in the last batch");
                corrupt += 1;
            }
            Err(StreamStoreError::Unreadable { file, .. }) => {
                assert_eq!(file, seg.path);
                assert!(pos < last_record);
                corrupt += 1;
            }
            Ok(st) => {
                // Only the last synced batch, with nothing after it, reads as a torn tail;
                // it is reported, never silently accepted.
                let t = &st.recovery().torn;
                assert_eq!(t.len(), 1, "byte {pos} accepted silently");
                assert_eq!(t[0].offset as usize, last_record, "byte {pos}");
                assert!(pos >= last_record, "byte {pos}");
                torn += 1;
            }
            Err(e) => panic!("byte {pos}: {e}"),
        }
        std::fs::write(&seg.path, &original).unwrap();
    }
    assert_eq!(corrupt + torn, original.len());
    assert_eq!(torn, record_len);
}

/// Plaintext length of a chunk of 100 redo bytes with one commit.
const CHUNK_LEN_100: usize = segment::CHUNK_FIXED_LEN + segment::COMMIT_LEN + 100;

#[test]
fn no_plaintext_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(dir.path());
    let marker = b"REDOVAULT-PLAINTEXT-MARKER-0123456789";
    let mut redo = Vec::new();
    while redo.len() < 100_000 {
        redo.extend_from_slice(marker);
        redo.extend_from_slice(&[0u8; 64]);
    }
    st.append(s, p(77, 0), &redo, &[commit(77, 4096)], false)
        .unwrap();
    st.sync().unwrap();
    drop(st);
    let mut files = vec![];
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "rvs"))
    );
    for f in files {
        let b = std::fs::read(&f).unwrap();
        for needle in [&marker[..16], &marker[20..36], &[0u8; 48][..]] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{} holds plaintext {:?}",
                f.display(),
                String::from_utf8_lossy(needle)
            );
        }
        // Nor the commit's SCN or XID in the clear.
        let scn = commit(77, 4096).scn.0.to_le_bytes();
        assert!(!b.windows(8).any(|w| w == scn), "{}", f.display());
    }
}

#[test]
fn a_second_open_is_refused_and_a_foreign_directory_too() {
    let dir = tempfile::tempdir().unwrap();
    let st = open(dir.path());
    let err = Store::open(dir.path(), keys()).unwrap_err();
    assert!(matches!(err, StreamStoreError::Locked { .. }), "{err}");
    drop(st);
    Store::open(dir.path(), keys()).unwrap();
    std::fs::write(dir.path().join("FORMAT"), "something else\n").unwrap();
    assert!(matches!(
        Store::open(dir.path(), keys()),
        Err(StreamStoreError::Format { .. })
    ));
}

#[test]
fn key_rotation_keeps_old_segments_and_a_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let o = opts_small();
    {
        let mut st =
            Store::open_with(dir.path(), ring("k1", &["k1"]), o, Arc::new(RealFs)).unwrap();
        st.append(s, p(1, 0), &data(1, 0, 1000), &[], false)
            .unwrap();
        st.sync().unwrap();
    }
    {
        let mut st =
            Store::open_with(dir.path(), ring("k2", &["k1", "k2"]), o, Arc::new(RealFs)).unwrap();
        st.append(s, p(1, 1000), &data(1, 1000, 1000), &[], false)
            .unwrap();
        st.sync().unwrap();
    }
    let st = Store::open_with(dir.path(), ring("k2", &["k1", "k2"]), o, Arc::new(RealFs)).unwrap();
    let segs = st.segments(s);
    assert_eq!(segs.len(), 2);
    let key_of = |path: &Path| {
        let b = std::fs::read(path).unwrap();
        redovault::crypto::envelope::Opener::new(st.keys(), &b)
            .unwrap()
            .header()
            .key_id
            .to_string()
    };
    assert_eq!(key_of(&segs[0].path), "k1");
    assert_eq!(key_of(&segs[1].path), "k2");
    assert_eq!(bytes_of(&read_stream(&st, s), 1), data(1, 0, 2000));
    drop(st);
    let err = Store::open_with(dir.path(), ring("k2", &["k2"]), o, Arc::new(RealFs)).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::Unreadable { file, .. } if *file == segs[0].path),
        "{err}"
    );
    assert!(err.to_string().contains("\"k1\""), "{err}");
}

#[test]
fn a_failed_fsync_fails_the_store_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    st.append(s, p(1, 0), &data(1, 0, 1000), &[], false)
        .unwrap();
    st.sync().unwrap();
    let good = st.durable(s).unwrap();
    fs.set_plan(FaultPlan {
        fail_sync_from: Some(fs.syncs() + 1),
        ..FaultPlan::default()
    });
    st.append(s, p(1, 1000), &data(1, 1000, 1000), &[], false)
        .unwrap();
    let err = st.sync().unwrap_err();
    assert!(
        matches!(err, StreamStoreError::WriteFailed(_)) && err.is_failure(),
        "{err}"
    );
    assert!(st.failure().unwrap().contains("fdatasync"));
    let syncs = fs.syncs();
    // Even with a healthy disk again, nothing more: no retry, no acknowledgement.
    fs.set_plan(FaultPlan::default());
    assert!(matches!(st.sync(), Err(StreamStoreError::Failed { .. })));
    assert!(matches!(
        st.append(s, p(1, 2000), &data(1, 2000, 10), &[], false),
        Err(StreamStoreError::Failed { .. })
    ));
    assert_eq!(fs.syncs(), syncs);
    assert_eq!(st.durable(s), Some(good));
}

#[test]
fn a_full_disk_mid_record_cuts_the_batch_off_and_the_store_resumes_when_space_frees() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (sid(1), sid(2));
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    for s in [a, b] {
        st.append(s, p(1, 0), &data(1, 0, 1000), &[commit(1, 1000)], false)
            .unwrap();
    }
    st.sync().unwrap();
    let durable_a = st.durable(a).unwrap();
    let seg_a = st.segments(a).last().unwrap().clone();
    // Stream a's append fits, b's runs out of space half-way through its record.
    fs.set_plan(FaultPlan {
        space: Some(fs.written() + 1500),
        ..FaultPlan::default()
    });
    st.append(
        a,
        p(1, 1000),
        &data(1, 1000, 1000),
        &[commit(1, 2000)],
        false,
    )
    .unwrap();
    let err = st
        .append(
            b,
            p(1, 1000),
            &data(1, 1000, 1000),
            &[commit(1, 2000)],
            false,
        )
        .unwrap_err();
    assert!(err.is_no_space() && !err.is_failure(), "{err}");
    assert!(err.to_string().contains("os error 28"), "{err}");
    assert!(
        st.failure().is_none(),
        "a full disk does not fail the store"
    );
    // Neither stream keeps anything unsynced: a's written append was cut off too.
    assert_eq!(st.durable(a), Some(durable_a));
    assert_eq!(st.durable(b).unwrap().end, p(1, 1000));
    assert_eq!(
        std::fs::metadata(&seg_a.path).unwrap().len(),
        seg_a.durable_len,
        "the unsynced record is gone from the file"
    );
    assert!(st.sync().unwrap().is_empty(), "nothing left to acknowledge");
    // Still full: refused again, still nothing half-written.
    let err = st
        .append(a, p(1, 1000), &data(1, 1000, 1000), &[], false)
        .unwrap_err();
    assert!(err.is_no_space(), "{err}");
    // Space frees: the resend goes through, in a new segment (no nonce reuse).
    fs.set_plan(FaultPlan::default());
    for s in [a, b] {
        st.append(
            s,
            p(1, 1000),
            &data(1, 1000, 1000),
            &[commit(1, 2000)],
            false,
        )
        .unwrap();
    }
    st.sync().unwrap();
    assert_eq!(st.durable(a).unwrap().end, p(1, 2000));
    assert!(st.segments(a).len() >= 2);
    drop(st);
    let st = open(dir.path());
    assert!(st.recovery().torn.is_empty(), "{:?}", st.recovery().torn);
    for s in [a, b] {
        let chunks = read_stream(&st, s);
        assert_eq!(bytes_of(&chunks, 1), data(1, 0, 2000));
        assert_eq!(
            st.commits(s, &CommitQuery::All, 10),
            vec![commit(1, 1000), commit(1, 2000)]
        );
    }
}

#[test]
fn a_full_disk_at_fsync_cuts_the_batch_off_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    st.append(s, p(1, 0), &data(1, 0, 1000), &[commit(1, 1000)], false)
        .unwrap();
    st.sync().unwrap();
    fs.set_plan(FaultPlan {
        fail_sync_from: Some(fs.syncs() + 1),
        sync_no_space: true,
        ..FaultPlan::default()
    });
    st.append(
        s,
        p(1, 1000),
        &data(1, 1000, 1000),
        &[commit(1, 2000)],
        false,
    )
    .unwrap();
    let err = st.sync().unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert_eq!(st.durable(s).unwrap().end, p(1, 1000));
    assert_eq!(st.commits(s, &CommitQuery::All, 10), vec![commit(1, 1000)]);
    fs.set_plan(FaultPlan::default());
    st.append(
        s,
        p(1, 1000),
        &data(1, 1000, 1000),
        &[commit(1, 2000)],
        true,
    )
    .unwrap();
    st.sync().unwrap();
    drop(st);
    let st = open(dir.path());
    assert!(st.recovery().torn.is_empty());
    assert_eq!(bytes_of(&read_stream(&st, s), 1), data(1, 0, 2000));
    assert!(st.durable(s).unwrap().log_end);
}

/// A stream of `seqs` logs of `len` bytes each (one commit at each log's end), in small
/// segments: several segments per log.
fn logs(st: &mut Store, s: StreamId, seqs: u32, len: u64) {
    for q in 1..=seqs {
        let mut off = 0;
        while off < len {
            let n = (len - off).min(20_000);
            let last = off + n == len;
            let c = if last { vec![commit(q, len)] } else { vec![] };
            st.append(s, p(q, off), &data(q, off, n as usize), &c, last)
                .unwrap();
            st.sync().unwrap();
            off += n;
        }
    }
}

/// The last segment that ends log `seq`.
fn segment_ending(st: &Store, s: StreamId, seq: u32) -> u64 {
    st.segments(s)
        .iter()
        .filter(|g| g.last_end.is_some_and(|e| e.seq == LogSeq(seq)))
        .map(|g| g.number)
        .max()
        .unwrap()
}

#[test]
fn retire_removes_old_segments_durably_and_keeps_the_rest_readable() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(dir.path());
    logs(&mut st, s, 4, 150_000);
    let n = st.segments(s).len();
    assert!(n >= 8, "{n} segments");
    // A cut inside a log is refused: the next segment would start mid-log.
    let mid = st
        .segments(s)
        .iter()
        .find(|g| g.last_end.is_some_and(|e| e.offset != 150_000))
        .unwrap()
        .number;
    let err = st.retire(s, mid).unwrap_err();
    assert!(err.to_string().contains("ends inside log"), "{err}");
    let last = st.segments(s).last().unwrap().number;
    assert!(
        st.retire(s, last)
            .unwrap_err()
            .to_string()
            .contains("last one")
    );
    let through = segment_ending(&st, s, 2);
    let before: u64 = st.segments(s).iter().map(|g| g.len).sum();
    let r = st.retire(s, through).unwrap();
    assert_eq!(r.segments, through);
    let after: u64 = st.segments(s).iter().map(|g| g.len).sum();
    assert_eq!(before - after, r.bytes);
    assert_eq!(st.segments(s)[0].number, through + 1);
    assert_eq!(st.segments(s)[0].first, Some(p(3, 0)));
    assert_eq!(
        st.commits(s, &CommitQuery::All, 10),
        vec![commit(3, 150_000), commit(4, 150_000)]
    );
    for k in 1..=through {
        assert!(
            !dir.path()
                .join("streams")
                .join(stream_dir_name(s))
                .join(segment::segment_file_name(k))
                .exists()
        );
    }
    // Appends go on; a reopen reads the rest as it was.
    st.append(s, p(5, 0), &data(5, 0, 100), &[commit(5, 100)], false)
        .unwrap();
    st.sync().unwrap();
    drop(st);
    let st = open(dir.path());
    assert_eq!(st.segments(s)[0].number, through + 1);
    let chunks = read_stream(&st, s);
    assert_eq!(bytes_of(&chunks, 3), data(3, 0, 150_000));
    assert_eq!(bytes_of(&chunks, 4), data(4, 0, 150_000));
    assert!(bytes_of(&chunks, 2).is_empty());
    assert_eq!(st.commits(s, &CommitQuery::All, 10).len(), 3);
    let snap = st.snapshot(s).unwrap();
    assert!(snap.seq_ends.contains_key(&LogSeq(3)));
    assert!(!snap.seq_ends.contains_key(&LogSeq(2)));
}

#[test]
fn a_removal_interrupted_by_a_crash_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(1);
    let mut st = open(dir.path());
    logs(&mut st, s, 3, 150_000);
    let through = segment_ending(&st, s, 2);
    let sdir = dir.path().join("streams").join(stream_dir_name(s));
    drop(st);
    // The crash came after the RETIRED file and the first removal: segment 1 is gone, the
    // next one starts in the middle of log 1 (a gap that open alone would call corruption).
    std::fs::write(
        sdir.join(RETIRED_FILE),
        format!("retired through segment {through}\n"),
    )
    .unwrap();
    std::fs::remove_file(sdir.join(segment::segment_file_name(1))).unwrap();
    let st = open(dir.path());
    assert_eq!(st.segments(s)[0].number, through + 1);
    assert_eq!(bytes_of(&read_stream(&st, s), 3), data(3, 0, 150_000));
    for k in 1..=through {
        assert!(!sdir.join(segment::segment_file_name(k)).exists());
    }
    drop(st);
    // A crash before the RETIRED file was renamed into place: nothing changed.
    let dir2 = tempfile::tempdir().unwrap();
    let mut st = open(dir2.path());
    logs(&mut st, s, 2, 150_000);
    let n = st.segments(s).len();
    drop(st);
    let sdir2 = dir2.path().join("streams").join(stream_dir_name(s));
    std::fs::write(sdir2.join("RETIRED.tmp.99"), "retired through").unwrap();
    let st = open(dir2.path());
    assert_eq!(st.segments(s).len(), n);
    // A damaged RETIRED file is corruption, named.
    drop(st);
    std::fs::write(sdir2.join(RETIRED_FILE), "retired through segment x\n").unwrap();
    let err = Store::open_with(dir2.path(), keys(), opts_small(), Arc::new(RealFs)).unwrap_err();
    assert!(err.to_string().contains(RETIRED_FILE), "{err}");
}

#[test]
fn a_failed_directory_sync_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan {
        fail_dir_sync: true,
        ..FaultPlan::default()
    });
    // Creating the store's own directories goes through the same file system.
    let err = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone()));
    assert!(err.is_err());
    fs.set_plan(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    fs.set_plan(FaultPlan {
        fail_dir_sync: true,
        ..FaultPlan::default()
    });
    let err = st
        .append(sid(1), p(1, 0), &data(1, 0, 10), &[], false)
        .unwrap_err();
    assert!(err.is_failure(), "{err}");
}

#[test]
fn stream_directory_names_round_trip() {
    let s = sid(3);
    assert_eq!(stream_dir_name(s), "db1497016494-rl1224959854-t3");
    assert_eq!(parse_stream_dir_name(&stream_dir_name(s)), Some(s));
    for bad in [
        "db1-rl2",
        "db1-rl2-t",
        "dbx-rl2-t3",
        "db01-rl2-t3",
        "db1-rl2-t3x",
    ] {
        assert_eq!(parse_stream_dir_name(bad), None, "{bad}");
    }
}

/// `n` streams with 1000 bytes each at offset 0 of log 1, not yet synced.
fn many(st: &mut Store, n: u16) {
    for t in 1..=n {
        st.append(
            sid(t),
            p(1, 0),
            &data(1, 0, 1000),
            &[commit(1, 1000)],
            false,
        )
        .unwrap();
    }
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join(WAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_checkpoint_has_every_segment_fdatasync_in_flight_at_once() {
    // A batch over many streams is one write-ahead fdatasync; the segments' own fdatasyncs
    // come at a checkpoint, all in one round: rounds would each wait for a journal commit
    // (the scale_streams bench measured at 64 streams: rounds of 16 took four times one).
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    many(&mut st, 64);
    assert_eq!(st.sync().unwrap().len(), 64);
    fs.hold_syncs();
    let checkpoint = std::thread::spawn(move || st.checkpoint().map(|()| st));
    // Held, the calls pile up: all 64 if they run at once (a bounded wait, not a timing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fs.syncs_in_flight() < 64 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let in_flight = fs.syncs_in_flight();
    fs.release_syncs();
    let st = checkpoint.join().unwrap().unwrap();
    assert_eq!(
        in_flight, 64,
        "every segment's checkpoint fdatasync in flight together"
    );
    assert_eq!(fs.syncs_in_flight(), 0);
    assert!(wal_files(dir.path()).is_empty());
    assert_eq!(st.wal_stats().1, 1);
}

#[test]
fn a_batch_over_many_streams_is_one_wal_fdatasync_and_any_failure_fails_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    many(&mut st, 20);
    let before = fs.synced_files().len();
    let changed = st.sync().unwrap();
    assert_eq!(changed.len(), 20);
    let wal = dir.path().join(WAL_DIR).join(wal_file_name(1));
    assert_eq!(
        &fs.synced_files()[before..],
        std::slice::from_ref(&wal),
        "one fdatasync, of the write-ahead file, and none of a segment"
    );
    for t in 1..=20 {
        assert_eq!(st.durable(sid(t)).unwrap().end, p(1, 1000));
    }
    assert_eq!(wal_files(dir.path()), [wal]);
    // One stream alone: its own fdatasync, nothing written twice.
    let wal_bytes = st.wal_stats().0;
    st.append(sid(1), p(1, 1000), &data(1, 1000, 10), &[], false)
        .unwrap();
    let before = fs.synced_files().len();
    st.sync().unwrap();
    assert_eq!(
        fs.synced_files()[before..],
        [st.segments(sid(1)).last().unwrap().path.clone()]
    );
    assert_eq!(st.wal_stats().0, wal_bytes);
    for t in 1..=20 {
        let off = if t == 1 { 1010 } else { 1000 };
        st.append(sid(t), p(1, off), &data(1, off, 10), &[], false)
            .unwrap();
    }
    // The write-ahead fdatasync fails: nothing of the batch is durable, and the store fails.
    fs.set_plan(FaultPlan {
        fail_sync_from: Some(fs.syncs() + 1),
        ..FaultPlan::default()
    });
    let err = st.sync().unwrap_err();
    assert!(matches!(err, StreamStoreError::WriteFailed(_)), "{err}");
    assert!(st.failure().unwrap().contains("wal-"), "{:?}", st.failure());
    assert_eq!(st.durable(sid(1)).unwrap().end, p(1, 1010));
    assert_eq!(st.durable(sid(2)).unwrap().end, p(1, 1000));
    let syncs = fs.syncs();
    fs.set_plan(FaultPlan::default());
    assert!(matches!(st.sync(), Err(StreamStoreError::Failed { .. })));
    assert_eq!(fs.syncs(), syncs, "never retried");
}

#[test]
fn acknowledged_bytes_only_in_the_wal_are_back_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (sid(1), sid(2), sid(3));
    let mut st = open(dir.path());
    for s in [a, b, c] {
        st.append(s, p(1, 0), &data(1, 0, 1000), &[commit(1, 1000)], false)
            .unwrap();
    }
    st.sync().unwrap();
    for s in [a, b, c] {
        st.append(
            s,
            p(1, 1000),
            &data(1, 1000, 3000),
            &[commit(1, 4000)],
            false,
        )
        .unwrap();
    }
    st.sync().unwrap();
    let seg = |s| st.segments(s).last().unwrap().clone();
    let (sa, sb) = (seg(a), seg(b));
    // A crash (no checkpoint): the page cache never reached the segments. Segment a lost
    // everything after its header, segment b's tail reads as zeros.
    drop(st);
    assert_eq!(std::fs::metadata(&sa.path).unwrap().len(), sa.durable_len);
    let first_record = {
        let mut at = 0;
        segment::scan::<StreamStoreError>(&sa.path, &keys(), ScanMode::Strict, None, |off, _| {
            if at == 0 {
                at = off;
            }
            Ok(())
        })
        .unwrap();
        at
    };
    OpenOptions::new()
        .write(true)
        .open(&sa.path)
        .unwrap()
        .set_len(first_record)
        .unwrap();
    let mut bytes = std::fs::read(&sb.path).unwrap();
    let n = bytes.len();
    bytes[n - 2500..].fill(0);
    std::fs::write(&sb.path, &bytes).unwrap();
    let st = open(dir.path());
    let wal = &st.recovery().wal;
    assert_eq!((wal.files, wal.frames), (1, 6), "{wal:?}");
    assert!(wal.restored_bytes >= 2500, "{wal:?}");
    assert!(wal.torn.is_none());
    assert!(st.recovery().torn.is_empty(), "{:?}", st.recovery().torn);
    assert!(wal_files(dir.path()).is_empty(), "replayed, then removed");
    for s in [a, b, c] {
        assert_eq!(st.durable(s).unwrap().end, p(1, 4000));
        assert_eq!(st.read_range(s, p(1, 0), 4000).unwrap(), data(1, 0, 4000));
        assert_eq!(
            st.commits(s, &CommitQuery::All, 10),
            vec![commit(1, 1000), commit(1, 4000)]
        );
    }
    drop(st);
    let st = open(dir.path());
    assert_eq!(st.recovery().wal, WalRecovery::default());
}

/// Two synced batches over streams 1 and 2 (two frames each), then a crash: the write-ahead
/// file and where its frames start.
fn two_wal_batches(dir: &Path) -> (PathBuf, Vec<u64>) {
    let mut st = open(dir);
    let mut starts = Vec::new();
    for (off, len) in [(0u64, 1000usize), (1000, 2000)] {
        for t in [1, 2] {
            starts.push(
                std::fs::metadata(dir.join(WAL_DIR).join(wal_file_name(1))).map_or(0, |m| m.len()),
            );
            st.append(sid(t), p(1, off), &data(1, off, len), &[], false)
                .unwrap();
        }
        st.sync().unwrap();
    }
    drop(st);
    let wal = dir.join(WAL_DIR).join(wal_file_name(1));
    assert!(wal.exists());
    (wal, starts)
}

#[test]
fn a_torn_wal_tail_is_ignored_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = two_wal_batches(dir.path());
    let len = std::fs::metadata(&wal).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let st = open(dir.path());
    let (file, _, reason) = st.recovery().wal.torn.clone().unwrap();
    assert_eq!(file, wal);
    assert!(reason.contains("incomplete"), "{reason}");
    // The segments still held the torn frame's bytes (page cache): nothing lost here.
    assert_eq!(st.durable(sid(2)).unwrap().end, p(1, 3000));
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn a_damaged_frame_of_the_last_batch_is_torn_and_an_earlier_one_is_corruption() {
    // The last batch: its second frame says nothing was durable past the batch's start.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = two_wal_batches(dir.path());
    let mut b = std::fs::read(&wal).unwrap();
    let second_batch = b.len() / 2;
    let at = b[second_batch..]
        .windows(4)
        .position(|w| w == b"RVWF")
        .unwrap()
        + second_batch;
    b[at + 60] ^= 1;
    std::fs::write(&wal, &b).unwrap();
    let st = open(dir.path());
    assert_eq!(st.recovery().wal.torn.as_ref().unwrap().1, at as u64);
    drop(st);
    // The first batch's first frame: a later frame was written after it was synced.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = two_wal_batches(dir.path());
    let mut b = std::fs::read(&wal).unwrap();
    b[60] ^= 1;
    std::fs::write(&wal, &b).unwrap();
    let err = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(RealFs)).unwrap_err();
    match &err {
        StreamStoreError::Corrupt { file, offset, .. } => {
            assert_eq!((file, *offset), (&wal, 0), "{err}");
        }
        _ => panic!("{err}"),
    }
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(wal.exists(), "nothing removed after an error");
    // A frame for a segment that does not exist: named by file and offset too.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = two_wal_batches(dir.path());
    std::fs::remove_dir_all(dir.path().join("streams").join(stream_dir_name(sid(2)))).unwrap();
    let err = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(RealFs)).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::Corrupt { file, .. } if *file == wal),
        "{err}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn a_clean_close_and_a_retire_checkpoint_and_reopen_replays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    many(&mut st, 5);
    st.sync().unwrap();
    assert_eq!(wal_files(dir.path()).len(), 1);
    let before = fs.synced_files().len();
    st.close().unwrap();
    assert_eq!(
        fs.synced_files().len() - before,
        5,
        "each segment fdatasynced"
    );
    assert!(wal_files(dir.path()).is_empty());
    let st = open(dir.path());
    assert_eq!(st.recovery().wal, WalRecovery::default());
    for t in 1..=5 {
        assert_eq!(
            st.read_range(sid(t), p(1, 0), 1000).unwrap(),
            data(1, 0, 1000)
        );
    }
    drop(st);
    // Retire: no frame may outlive the segments it names.
    let dir = tempfile::tempdir().unwrap();
    let mut st = open(dir.path());
    logs(&mut st, sid(1), 3, 150_000);
    many(&mut st, 3);
    st.sync().unwrap();
    assert_eq!(wal_files(dir.path()).len(), 1);
    let through = segment_ending(&st, sid(1), 2);
    st.retire(sid(1), through).unwrap();
    assert!(wal_files(dir.path()).is_empty());
}

#[test]
fn a_wal_past_its_size_is_checkpointed_by_the_next_sync_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    st.wal_limit = 1;
    let wal = |n| dir.path().join(WAL_DIR).join(wal_file_name(n));
    // Per batch: fdatasyncs, checkpoints so far, write-ahead files after it.
    let expected = [
        (1, 0, vec![wal(1)]),
        // The checkpoint fdatasyncs both segments, which covers this batch too: no frame.
        (2, 1, vec![]),
        (1, 1, vec![wal(2)]),
    ];
    for (k, (syncs, checkpoints, files)) in expected.into_iter().enumerate() {
        let off = k as u64 * 1000;
        for t in 1..=2 {
            st.append(sid(t), p(1, off), &data(1, off, 1000), &[], false)
                .unwrap();
        }
        let before = fs.synced_files().len();
        st.sync().unwrap();
        assert_eq!(fs.synced_files().len() - before, syncs, "batch {k}");
        assert_eq!(st.wal_stats().1, checkpoints, "batch {k}");
        assert_eq!(wal_files(dir.path()), files, "batch {k}");
    }
    drop(st);
    let st = open(dir.path());
    for t in 1..=2 {
        assert_eq!(
            st.read_range(sid(t), p(1, 0), 3000).unwrap(),
            data(1, 0, 3000)
        );
    }
}

#[test]
fn a_full_disk_at_the_wal_fdatasync_cuts_the_batch_off_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let mut st = Store::open_with(dir.path(), keys(), opts_small(), Arc::new(fs.clone())).unwrap();
    many(&mut st, 3);
    st.sync().unwrap();
    for t in 1..=3 {
        st.append(sid(t), p(1, 1000), &data(1, 1000, 500), &[], false)
            .unwrap();
    }
    fs.set_plan(FaultPlan {
        fail_sync_from: Some(fs.syncs() + 1),
        sync_no_space: true,
        ..FaultPlan::default()
    });
    let err = st.sync().unwrap_err();
    assert!(err.is_no_space(), "{err}");
    assert!(st.failure().is_none());
    // The write-ahead file is gone (its unsynced tail must never be replayed); what it held
    // durably is in the segments.
    assert!(wal_files(dir.path()).is_empty());
    for t in 1..=3 {
        assert_eq!(st.durable(sid(t)).unwrap().end, p(1, 1000));
    }
    fs.set_plan(FaultPlan::default());
    for t in 1..=3 {
        st.append(sid(t), p(1, 1000), &data(1, 1000, 500), &[], false)
            .unwrap();
    }
    st.sync().unwrap();
    drop(st);
    let st = open(dir.path());
    assert!(st.recovery().torn.is_empty(), "{:?}", st.recovery().torn);
    for t in 1..=3 {
        assert_eq!(
            st.read_range(sid(t), p(1, 0), 1500).unwrap(),
            data(1, 0, 1500)
        );
    }
}

#[test]
fn a_format_1_store_is_upgraded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    std::fs::write(dir.path().join("FORMAT"), FORMAT_LINE_1).unwrap();
    drop(open(dir.path()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("FORMAT")).unwrap(),
        FORMAT_LINE
    );
    // What a format 1 collector compares with: it refuses the store from now on.
    assert_ne!(FORMAT_LINE, FORMAT_LINE_1);
}

#[test]
fn read_range_reads_durable_redo_back_across_chunks_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(3);
    let mut st = open(dir.path());
    // Log 1 complete, log 2 open: chunks of 8 KiB, segments of 64 KiB.
    logs(&mut st, s, 1, 150_000);
    st.append(s, p(2, 0), &data(2, 0, 30_000), &[], false)
        .unwrap();
    st.sync().unwrap();
    assert!(st.segments(s).len() >= 3);
    for (seq, at, len) in [
        (1u32, 0u64, 150_000u64),
        (1, 8191, 2),
        (1, 65_000, 70_000),
        (1, 149_999, 1),
        (2, 0, 30_000),
        (2, 12_345, 0),
    ] {
        assert_eq!(
            st.read_range(s, p(seq, at), len).unwrap(),
            data(seq, at, len as usize),
            "{seq}:{at}+{len}"
        );
    }
    // From a snapshot, without the store (as a session does).
    let snap = st.snapshot(s).unwrap();
    assert_eq!(
        read_range(&snap, st.keys(), p(2, 29_000), 1000).unwrap(),
        data(2, 29_000, 1000)
    );
    assert_eq!(held_log(&snap, LogSeq(1)), Some((150_000, true)));
    assert_eq!(held_log(&snap, LogSeq(2)), Some((30_000, false)));
    assert_eq!(held_log(&snap, LogSeq(3)), None);
    // Written but not yet durable: not read.
    st.append(s, p(2, 30_000), &data(2, 30_000, 1000), &[], false)
        .unwrap();
    let err = st.read_range(s, p(2, 29_500), 1000).unwrap_err();
    assert!(
        matches!(&err, StreamStoreError::NotHeld { reason, .. } if reason.contains("30000")),
        "{err}"
    );
    st.sync().unwrap();
    assert_eq!(
        st.read_range(s, p(2, 29_500), 1000).unwrap(),
        data(2, 29_500, 1000)
    );
    // Past a log's end, a log never stored, another stream, too long at once.
    for (pos, len) in [(p(1, 149_000), 2000), (p(7, 0), 1), (p(1, u64::MAX), 2)] {
        let err = st.read_range(s, pos, len).unwrap_err();
        assert!(matches!(err, StreamStoreError::NotHeld { .. }), "{err}");
    }
    assert!(matches!(
        st.read_range(sid(9), p(1, 0), 1),
        Err(StreamStoreError::NotHeld { .. })
    ));
    let err = st.read_range(s, p(1, 0), MAX_READ_RANGE + 1).unwrap_err();
    assert!(err.to_string().contains("read at once"), "{err}");
}

#[test]
fn read_range_of_a_retired_or_damaged_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid(4);
    let mut st = open(dir.path());
    logs(&mut st, s, 3, 100_000);
    let through = segment_ending(&st, s, 1);
    st.retire(s, through).unwrap();
    assert!(matches!(
        st.read_range(s, p(1, 0), 100),
        Err(StreamStoreError::NotHeld { .. })
    ));
    assert_eq!(st.read_range(s, p(2, 0), 100).unwrap(), data(2, 0, 100));
    // A flipped bit in the segment holding log 3's start: named, never other bytes.
    let seg = st
        .segments(s)
        .into_iter()
        .find(|g| g.first.is_some_and(|f| f.seq == LogSeq(3)))
        .unwrap();
    let mut b = std::fs::read(&seg.path).unwrap();
    let i = b.len() - 100;
    b[i] ^= 0x10;
    std::fs::write(&seg.path, &b).unwrap();
    let err = st.read_range(s, p(3, 0), 100_000).unwrap_err();
    assert!(matches!(err, StreamStoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&seg.path.display().to_string()),
        "{err}"
    );
}
