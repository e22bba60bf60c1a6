//! Fuzz target: the bytes of a collector segment file, as recovery finds them after a crash
//! or an attacker's edit. They are written to a temporary store (on /dev/shm when there is
//! one, so fsync costs nothing) as the only segment of one stream, then scanned strictly,
//! scanned as a last segment, and the whole store is opened (recovery).
//!
//! What must hold: a strict scan that succeeds is also a clean last-segment scan with the
//! same chunks; a torn tail starts where the good records end and only a last segment has
//! one; damage that a last-segment scan calls corruption stops the store from opening; an
//! opened store never reports more chunks than the scan authenticated. (Records are sealed
//! with AES-256-GCM under the key below: the seeds are segments written by `SegmentWriter`
//! with the same key, so mutations reach the record and chunk checks behind the tags.)
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::wire::StreamId;
use redovault_collector::segment::{self, StoredChunk, ScanError, ScanMode, Scanned};
use redovault_collector::store::{Store, stream_dir_name};
use redovault_redo::position::ThreadId;

/// The key the seed segments are sealed with (examples/seeds.rs uses the same).
fn keys() -> KeyRing {
    let id = KeyId::parse("fuzz").expect("a key id");
    KeyRing::from_keys(id.clone(), [(id, [0x5a; 32])]).expect("a key ring")
}

fn stream() -> StreamId {
    StreamId {
        db_id: redovault_redo::position::DbId(42),
        resetlogs_id: redovault_redo::position::ResetlogsId(7),
        thread: ThreadId(1),
    }
}

fn scan(path: &Path, mode: ScanMode) -> Result<(Scanned, Vec<(u64, StoredChunk)>), ScanError> {
    let mut chunks = Vec::new();
    let scanned = segment::scan::<ScanError>(path, &keys(), mode, None, |off, c| {
        chunks.push((off, c));
        Ok(())
    })?;
    Ok((scanned, chunks))
}

fuzz_target!(|input: &[u8]| {
    let tmp = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("a temporary directory");
    let store_dir = tmp.path().join("store");
    let stream_dir = store_dir.join("streams").join(stream_dir_name(stream()));
    std::fs::create_dir_all(&stream_dir).expect("the stream directory");
    let path = stream_dir.join(segment::segment_file_name(1));
    std::fs::write(&path, input).expect("the segment file");

    let strict = scan(&path, ScanMode::Strict);
    let last = scan(&path, ScanMode::LastSegment);
    if let Ok((s, chunks)) = &strict {
        assert!(s.torn.is_none(), "a strict scan reported a torn tail");
        let (l, lchunks) = last.as_ref().expect("strict passed, last-segment failed");
        assert_eq!(
            (s, chunks),
            (l, lchunks),
            "strict and last-segment scans differ"
        );
    }
    if let Ok((l, chunks)) = &last {
        assert!(l.good_len <= l.len && l.len == input.len() as u64);
        assert_eq!(l.chunks as usize, chunks.len());
        for w in chunks.windows(2) {
            assert!(w[0].0 < w[1].0, "records out of order");
        }
        match &l.torn {
            Some(t) if !t.header => assert_eq!(t.offset, l.good_len, "torn tail not at the end"),
            Some(t) => assert_eq!((t.offset, l.good_len), (0, 0)),
            None => {
                assert_eq!(l.good_len, l.len, "a clean scan stopped early");
            }
        }
        if l.torn.is_some() {
            assert!(strict.is_err(), "a strict scan accepted a torn tail");
        }
    }

    let opened = Store::open(&store_dir, keys());
    match (&last, &opened) {
        (Err(ScanError::Corrupt { .. }) | Err(ScanError::Unreadable { .. }), Ok(_)) => {
            panic!("a store with a corrupt last segment opened")
        }
        (Ok((l, _)), Ok(store)) => {
            assert!(store.recovery().chunks <= u64::from(l.chunks));
        }
        (_, Err(e)) => assert!(!e.to_string().is_empty()),
        (Err(ScanError::Io { .. }), Ok(_)) => {}
    }
});
