//! Collector retention against the real Ceph server with the deploy/ bucket policy: the
//! watcher's sealed manifest is read from WORM with the **collector's own keys** (which may
//! GET and LIST `PREFIX/manifest/` and nothing else of the archive), verified, matched
//! against what the collector stored, and only then are segments removed.
//!
//! The manifest is the real chain under the drill prefix (the policy names
//! `PREFIX/manifest/*` exactly, as in production): the test continues whatever chain earlier
//! runs sealed there, with the database host's keys, as the watcher does, so it runs again
//! and again on the same server.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::manifest::{ChainDir, ManifestEntry, Sha256Digest, segment_key};
use redovault::store::s3::S3Store;
use redovault::store::{ArchiveStore, read_object};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::metrics::CollectorMetrics;
use redovault_collector::retention::Rule;
use redovault_collector::retention_task::{Retention, SealedManifest, pass};
use redovault_collector::store::{Store, StoreOptions};
use redovault_collector::worm::{PieceEntry, chain_dir};
use redovault_collector::writer::{self, WriterConfig};
use redovault_redo::position::{LogSeq, Scn, ThreadId, Xid};
use tokio_util::sync::CancellationToken;

use crate::worm::Drill;

const LOG: u64 = 150_000;

fn keys() -> KeyRing {
    let id = KeyId::parse("k1").unwrap();
    KeyRing::from_keys(id.clone(), [(id, [7; 32])]).unwrap()
}

fn scn(seq: u32, off: u64) -> Scn {
    Scn(1_000_000 * u64::from(seq) + off)
}

fn commit(seq: u32, off: u64) -> CommitMark {
    CommitMark {
        xid: Xid {
            usn: 3,
            slot: 1,
            sqn: off as u32,
        },
        scn: scn(seq, off),
        time: Some(1_780_000_000),
        end: StreamPos {
            seq: LogSeq(seq),
            offset: off,
        },
    }
}

fn bytes(seq: u32, off: u64, n: u64) -> Vec<u8> {
    (off..off + n)
        .map(|i| (i.wrapping_mul(31) ^ u64::from(seq)) as u8)
        .collect()
}

/// Sequences 1..=3 complete, 4 being written; one commit every 20,000 bytes.
fn fill(st: &mut Store, s: StreamId) {
    for q in 1..=4u32 {
        let len = if q == 4 { 30_000 } else { LOG };
        let mut off = 0;
        while off < len {
            let n = (len - off).min(20_000);
            let end = off + n == len && q < 4;
            st.append(
                s,
                StreamPos {
                    seq: LogSeq(q),
                    offset: off,
                },
                &bytes(q, off, n),
                &[commit(q, off + n)],
                end,
            )
            .unwrap();
            st.sync().unwrap();
            off += n;
        }
    }
}

/// The sealed manifest segments under `prefix/manifest/`, read with `store`'s keys.
async fn sealed(store: &S3Store, prefix: &str) -> BTreeMap<u64, (String, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for o in store.list(&format!("{prefix}/manifest/")).await.unwrap() {
        let name = o.key.rsplit('/').next().unwrap().to_string();
        let Some(first) = name.split('-').next().and_then(|f| f.parse::<u64>().ok()) else {
            continue;
        };
        let b = read_object(store, &o.key, None, 64 << 20).await.unwrap();
        out.insert(first, (name, b));
    }
    out
}

/// Continues the sealed chain under `prefix/manifest/` with one entry per `(seq, first
/// SCN, next SCN)` of `s`, sealed as the watcher seals (create-only, by the database
/// host's keys).
async fn seal_entries(
    db: &S3Store,
    reader: &S3Store,
    prefix: &str,
    s: StreamId,
    logs: &[(u32, Scn, Scn)],
) {
    let dir = tempfile::tempdir().unwrap();
    let segs = dir.path().join("segments");
    std::fs::create_dir_all(&segs).unwrap();
    let before = sealed(reader, prefix).await;
    let mut last_sealed = 0;
    for (first, (name, b)) in &before {
        std::fs::write(segs.join(format!("{first:012}.jsonl")), b).unwrap();
        last_sealed = name.split('-').nth(1).and_then(|l| l.parse().ok()).unwrap();
    }
    let mut chain = ChainDir::<ManifestEntry>::open(dir.path(), &mut |_| {}).unwrap();
    let shipped = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for &(q, first, next) in logs {
        chain
            .append_with(|index, prev| ManifestEntry {
                index,
                db_id: s.db_id,
                db_name: "RVTEST".into(),
                resetlogs_id: s.resetlogs_id,
                thread: s.thread,
                sequence: LogSeq(q),
                first_scn: first,
                next_scn: next,
                first_time: shipped.clone(),
                next_time: shipped.clone(),
                size: LOG,
                sha256: Sha256Digest::of(&bytes(q, 0, 64)),
                object_key: format!(
                    "{prefix}/archive/sha256/{}",
                    Sha256Digest::of(&bytes(q, 0, 64))
                ),
                version_id: None,
                retain_until: None,
                shipped_at: shipped.clone(),
                file_name: format!("1_{q}_{}.arc", s.db_id),
                stored: None,
                prev,
            })
            .unwrap();
    }
    let seg = chain.close_segment().unwrap().unwrap();
    assert!(seg.first > last_sealed);
    let key = segment_key(prefix, &seg);
    db.put_immutable(&key, tokio::fs::File::open(&seg.path).await.unwrap())
        .await
        .unwrap();
}

/// The local piece chain of `s` as the collector's `[worm]` task records it, confirming
/// pieces that cover sequences 1 and 2 only.
fn worm_chain(store_dir: &Path, s: StreamId) {
    let mut chain = ChainDir::<PieceEntry>::open(&chain_dir(store_dir, s), &mut |_| {}).unwrap();
    let uploaded = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut prev_piece = Sha256Digest([0; 32]);
    for q in 1..=2u32 {
        let piece = Sha256Digest::of(&bytes(q, 1, 64));
        chain
            .append_with(|index, prev| PieceEntry {
                index,
                db_id: s.db_id,
                resetlogs_id: s.resetlogs_id,
                thread: s.thread.0,
                start_seq: q,
                start_offset: 0,
                end_seq: q,
                end_offset: LOG,
                log_end: true,
                chunks: 8,
                redo_bytes: LOG,
                commits: 8,
                last_commit_scn: Some(scn(q, LOG).0),
                last_commit_xid: Some("3.1.150000".into()),
                last_commit_time: None,
                object_key: format!("p/streams/{s}/pieces/{q}"),
                size: LOG + 200,
                sha256: piece,
                prev_piece,
                version_id: None,
                retain_until: None,
                durable_at: uploaded.clone(),
                uploaded_at: uploaded.clone(),
                prev,
            })
            .unwrap();
        prev_piece = piece;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_and_verified_sequences_are_freed_and_nothing_else() {
    let Some(drill) = Drill::target() else {
        return;
    };
    let (t, d) = (&drill.server, &drill.drill);
    let col = S3Store::new(t.collector_config(&d.prefix).unwrap()).unwrap();
    let db = S3Store::new(t.dbhost_config(&d.prefix).unwrap()).unwrap();
    // A database of its own per run: the shared chain lists every earlier run's logs.
    let s = StreamId {
        db_id: DbId(rand::random::<u32>() | 1),
        resetlogs_id: ResetlogsId(1_224_959_854),
        thread: ThreadId(1),
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        segment_size: 64 << 10,
        chunk_size: 8 << 10,
        compress: None,
    };
    let mut st = Store::open_with(
        dir.path(),
        keys(),
        opts,
        Arc::new(redovault_collector::fs::RealFs),
    )
    .unwrap();
    fill(&mut st, s);
    let segments_before = st.segments(s).len();
    worm_chain(dir.path(), s);
    let (w, task) = writer::spawn(st, WriterConfig::default(), CancellationToken::new());
    let metrics = Arc::new(CollectorMetrics::new());
    let r = Retention {
        store: col.clone(),
        prefix: d.prefix.clone(),
        rule: Rule {
            keep_secs: 3600,
            worm_required: true,
        },
        interval: std::time::Duration::from_secs(1),
        store_dir: dir.path().to_path_buf(),
        writer: w.clone(),
        metrics: metrics.clone(),
    };
    let mut manifest = SealedManifest::default();
    let now = chrono::Utc::now().timestamp();

    // Nothing archived yet for this database: nothing goes.
    let status = pass(&r, &mut manifest, now).await;
    assert_eq!(status.error, None, "{status:?}");
    let ss = &status.streams[&s.to_string()];
    assert_eq!(ss.removed_through, None);
    assert_eq!(ss.sequences[0].status, "not_archived", "{ss:?}");

    // The watcher records logs 1..=3 (log 2 with an SCN range that does not hold the
    // collector's commits: another log by that name) in the sealed manifest.
    seal_entries(
        &db,
        &col,
        &d.prefix,
        s,
        &[
            (1, scn(1, 0), scn(2, 0)),
            (2, scn(7, 0), scn(8, 0)),
            (3, scn(3, 0), scn(4, 0)),
        ],
    )
    .await;
    // Archived and in WORM, but within `keep`: held.
    let status = pass(&r, &mut manifest, now).await;
    assert_eq!(status.error, None);
    let ss = &status.streams[&s.to_string()];
    assert_eq!(ss.removed_through, None);
    assert_eq!(ss.sequences[0].status, "retained", "{ss:?}");
    // After `keep`: sequence 1 goes; 2 (SCNs do not match) and with it 3 (not in WORM) stay.
    let later = chrono::Utc::now().timestamp() + 3601;
    let status = pass(&r, &mut manifest, later).await;
    let ss = &status.streams[&s.to_string()];
    let through = ss.removed_through.expect("sequence 1 removed");
    let by: Vec<(u32, &str)> = ss
        .sequences
        .iter()
        .map(|x| (x.first, x.status.as_str()))
        .collect();
    assert_eq!(
        by,
        vec![
            (1, "eligible"),
            (2, "not_archived"),
            (3, "not_in_worm"),
            (4, "current")
        ],
        "{ss:?}"
    );
    // The next pass finds sequence 1 gone and nothing more to remove.
    let again = pass(&r, &mut manifest, later).await;
    let ss2 = &again.streams[&s.to_string()];
    assert_eq!(ss2.removed_through, None);
    assert_eq!(ss2.sequences[0].first, 2, "{ss2:?}");
    assert_eq!(ss2.bytes, ss.bytes);
    assert!(metrics.retention_removed_segments.get() >= 1);
    let sdir = dir.path().join("streams").join(s.to_string());
    for k in 1..=through {
        assert!(
            !sdir.join(format!("seg-{k:020}.rvs")).exists(),
            "segment {k} left"
        );
    }
    // What is left is what was there, from log 2 on; the store reopens cleanly.
    drop((w, r));
    let st = task.await.unwrap().expect("the store back");
    assert!(st.segments(s).len() < segments_before);
    assert_eq!(
        st.segments(s)[0].first,
        Some(StreamPos {
            seq: LogSeq(2),
            offset: 0
        })
    );
    drop(st);
    let st = Store::open_with(
        dir.path(),
        keys(),
        opts,
        Arc::new(redovault_collector::fs::RealFs),
    )
    .unwrap();
    let commits = st.commits(s, &redovault_collector::index::CommitQuery::All, usize::MAX);
    assert_eq!(commits.first(), Some(&commit(2, 20_000)));
    assert_eq!(commits.last(), Some(&commit(4, 30_000)));
}
