//! Tests of the resend decision (pure) and of the comparison against a real store.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redovault::crypto::keys::KeyId;
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};
use sha2::{Digest, Sha256};

use super::*;
use crate::fs::RealFs;
use crate::store::{Store, StoreOptions};

fn p(seq: u32, offset: u64) -> StreamPos {
    StreamPos {
        seq: LogSeq(seq),
        offset,
    }
}

fn keys() -> KeyRing {
    let id = KeyId::parse("k1").unwrap();
    KeyRing::from_keys(id.clone(), [(id, [5; 32])]).unwrap()
}

fn sid() -> StreamId {
    StreamId {
        db_id: DbId(77),
        resetlogs_id: ResetlogsId(88),
        thread: ThreadId(1),
    }
}

/// Deterministic redo-like bytes of `seq` at `offset`.
fn data(seq: u32, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i).wrapping_mul(2_654_435_761) >> 5) as u8 ^ seq as u8)
        .collect()
}

#[test]
fn place_sorts_every_position() {
    // An open log 3 held up to 4096.
    let open = Some((4096, false));
    let resume = p(3, 4096);
    assert_eq!(place(p(3, 4096), 512, false, resume, open), Placement::Next);
    assert_eq!(place(p(3, 4608), 512, false, resume, None), Placement::Gap);
    assert_eq!(place(p(4, 0), 512, false, resume, None), Placement::Gap);
    assert_eq!(place(p(2, 0), 512, false, resume, None), Placement::NotHeld);
    // Wholly held.
    assert_eq!(
        place(p(3, 1024), 512, false, resume, open),
        Placement::Overlap {
            compare: 512,
            rest: Rest::Covered
        }
    );
    // Held, then new.
    assert_eq!(
        place(p(3, 3072), 2048, false, resume, open),
        Placement::Overlap {
            compare: 1024,
            rest: Rest::Extend { from: p(3, 4096) }
        }
    );
    // Every byte held and the log end is new.
    assert_eq!(
        place(p(3, 3584), 512, true, resume, open),
        Placement::Overlap {
            compare: 512,
            rest: Rest::Extend { from: p(3, 4096) }
        }
    );
    // Ends the log before bytes that are held.
    assert!(matches!(
        place(p(3, 0), 1024, true, resume, open),
        Placement::Overlap { compare: 1024, rest: Rest::Contradicts { at, .. } } if at == p(3, 1024)
    ));
}

#[test]
fn place_in_a_complete_log() {
    // Log 3 ended at 4096; the stream continues at (4, 0).
    let done = Some((4096, true));
    let resume = p(4, 0);
    assert_eq!(
        place(p(3, 3584), 512, true, resume, done),
        Placement::Overlap {
            compare: 512,
            rest: Rest::Covered
        }
    );
    // A chunk shipped before its log's end was known: the same bytes, no end flag.
    assert_eq!(
        place(p(3, 0), 4096, false, resume, done),
        Placement::Overlap {
            compare: 4096,
            rest: Rest::Covered
        }
    );
    // The end of the log alone, again.
    assert_eq!(
        place(p(3, 4096), 0, true, resume, done),
        Placement::Overlap {
            compare: 0,
            rest: Rest::Covered
        }
    );
    // Past the end of a complete log: another history.
    assert!(matches!(
        place(p(3, 3584), 1024, false, resume, done),
        Placement::Overlap { compare: 512, rest: Rest::Contradicts { at, .. } } if at == p(3, 4096)
    ));
    assert!(matches!(
        place(p(3, 8192), 512, false, resume, done),
        Placement::Overlap { compare: 0, rest: Rest::Contradicts { at, .. } } if at == p(3, 8192)
    ));
    // Ends it early.
    assert!(matches!(
        place(p(3, 0), 2048, true, resume, done),
        Placement::Overlap { compare: 2048, rest: Rest::Contradicts { at, .. } } if at == p(3, 2048)
    ));
    // Offsets near the top never overflow.
    assert!(matches!(
        place(p(3, u64::MAX - 1), 512, false, resume, done),
        Placement::Overlap {
            compare: 0,
            rest: Rest::Contradicts { .. }
        }
    ));
}

#[test]
fn first_difference_finds_the_first_differing_byte() {
    assert_eq!(first_difference(b"abcdef", b"abcdef"), None);
    assert_eq!(first_difference(b"", b""), None);
    assert_eq!(first_difference(b"abcdef", b"abXdeY"), Some(2));
    assert_eq!(first_difference(b"Xbc", b"abc"), Some(0));
    // Only the common length is compared (the caller compares equal lengths).
    assert_eq!(first_difference(b"abc", b"ab"), None);
}

/// Every file under `dir` with its SHA-256.
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let h = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
                out.insert(path.display().to_string(), h);
            }
        }
    }
    out
}

/// A store with log 1 complete (150 000 bytes) and log 2 open at 100 000 bytes, in small
/// chunks and segments so that comparisons cross both.
fn store(dir: &Path) -> Store {
    let opts = StoreOptions {
        segment_size: 64 * 1024,
        chunk_size: 1000,
        compress: None,
    };
    let mut st = Store::open_with(dir, keys(), opts, Arc::new(RealFs)).unwrap();
    let s = sid();
    st.append(s, p(1, 0), &data(1, 0, 150_000), &[], true)
        .unwrap();
    st.append(s, p(2, 0), &data(2, 0, 100_000), &[], false)
        .unwrap();
    st.sync().unwrap();
    st
}

#[test]
fn identical_resends_are_covered_or_extended() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let snap = st.snapshot(sid()).unwrap();
    let k = st.keys().clone();
    let before = hashes(dir.path());
    // Inside the complete log, across chunks and segments.
    assert_eq!(
        check(&snap, &k, p(1, 999), &data(1, 999, 80_000), false).unwrap(),
        Resend::Covered { duplicate: 80_000 }
    );
    // Its end, again.
    assert_eq!(
        check(&snap, &k, p(1, 149_000), &data(1, 149_000, 1000), true).unwrap(),
        Resend::Covered { duplicate: 1000 }
    );
    // The open log: held bytes and new ones.
    assert_eq!(
        check(&snap, &k, p(2, 99_000), &data(2, 99_000, 3000), false).unwrap(),
        Resend::Extend {
            duplicate: 1000,
            from: p(2, 100_000)
        }
    );
    assert_eq!(before, hashes(dir.path()), "a comparison writes nothing");
}

#[test]
fn a_flipped_byte_is_divergent_at_its_offset_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let snap = st.snapshot(sid()).unwrap();
    let k = st.keys().clone();
    let before = hashes(dir.path());
    for (seq, at, len, flip) in [
        (1u32, 0u64, 100_000usize, 70_000usize),
        (2, 4000, 4000, 1999),
    ] {
        let mut forged = data(seq, at, len);
        forged[flip] ^= 0x01;
        match check(&snap, &k, p(seq, at), &forged, false) {
            Err(ResendError::Divergent { pos, at: first, .. }) => {
                assert_eq!(pos, p(seq, at));
                assert_eq!(first, p(seq, at + flip as u64));
            }
            other => panic!("expected divergent redo, got {other:?}"),
        }
    }
    // A byte beyond the held part differs from nothing: that part is new.
    let mut tail = data(2, 99_000, 2000);
    tail[1500] ^= 0xFF;
    assert!(check(&snap, &k, p(2, 99_000), &tail, false).is_ok());
    // Identical bytes but another end of log 1.
    assert!(matches!(
        check(&snap, &k, p(1, 140_000), &data(1, 140_000, 1000), true),
        Err(ResendError::Divergent { at, .. }) if at == p(1, 141_000)
    ));
    assert!(matches!(
        check(&snap, &k, p(1, 149_500), &data(1, 149_500, 1000), false),
        Err(ResendError::Divergent { at, .. }) if at == p(1, 150_000)
    ));
    assert_eq!(before, hashes(dir.path()), "a refusal writes nothing");
}

#[test]
fn gaps_and_logs_not_held_are_refused_without_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let snap = st.snapshot(sid()).unwrap();
    let k = st.keys().clone();
    assert!(matches!(
        check(&snap, &k, p(2, 101_000), &data(2, 101_000, 100), false),
        Err(ResendError::Gap { resume, .. }) if resume == p(2, 100_000)
    ));
    assert!(matches!(
        check(&snap, &k, p(0, 0), &data(0, 0, 100), false),
        Err(ResendError::NotHeld { .. })
    ));
}

#[test]
fn damage_in_the_held_redo_is_unreadable_not_divergent() {
    let dir = tempfile::tempdir().unwrap();
    let st = store(dir.path());
    let snap = st.snapshot(sid()).unwrap();
    let k = st.keys().clone();
    let seg = &snap.segments[0];
    let mut b = std::fs::read(&seg.path).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x40;
    std::fs::write(&seg.path, &b).unwrap();
    let err = check(&snap, &k, p(1, 0), &data(1, 0, 60_000), false).unwrap_err();
    assert!(matches!(err, ResendError::Unreadable(_)), "{err}");
    assert!(err.to_string().contains("seg-"), "names the segment: {err}");
}
