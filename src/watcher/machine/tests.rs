//! Every transition the watcher relies on, driven by events alone: no runtime, no store, no
//! disk, no clock (time is an `Instant` the test moves forward).

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use redovault_redo::RedoTime;
use redovault_redo::position::{LogSeq, Scn, ThreadId};

use super::*;
use crate::manifest::{Recorded, SegmentInfo, Sha256Digest};
use crate::store::PutOutcome;

const SEC: Duration = Duration::from_secs(1);

/// What the manifest knows, in memory.
#[derive(Default)]
struct Book {
    by_id: HashMap<LogIdentity, Recorded>,
    by_name: HashMap<String, Recorded>,
    open: usize,
}

impl Book {
    fn ship(&mut self, name: &str, info: &LogInfo, sha: [u8; 32]) -> Recorded {
        let r = Recorded {
            index: self.by_id.len() as u64 + 1,
            sha256: Sha256Digest(sha),
        };
        self.by_id.insert(info.identity(), r);
        self.by_name.insert(name.into(), r);
        self.open += 1;
        r
    }
}

impl Shipments for Book {
    fn by_identity(&self, id: &LogIdentity) -> Option<Recorded> {
        self.by_id.get(id).copied()
    }
    fn by_file_name(&self, name: &str) -> Option<Recorded> {
        self.by_name.get(name).copied()
    }
    fn by_sha256(&self, sha: &Sha256Digest) -> Option<u64> {
        self.by_id
            .values()
            .find(|r| r.sha256 == *sha)
            .map(|r| r.index)
    }
    fn open_len(&self) -> usize {
        self.open
    }
}

fn limits() -> Limits {
    Limits {
        parallel_uploads: 2,
        grace_period: 60 * SEC,
        retry_max_backoff: 30 * SEC,
        backlog_alarm_age: 3600 * SEC,
        status_interval: 2 * SEC,
        seal_interval: 300 * SEC,
        segment_max_entries: 100,
    }
}

fn info(seq: u32) -> LogInfo {
    LogInfo {
        db_id: DbId(7),
        db_name: "FREE".into(),
        resetlogs_id: ResetlogsId(5),
        thread: ThreadId(1),
        sequence: LogSeq(seq),
        first_scn: Scn(u64::from(seq) * 100),
        next_scn: Some(Scn(u64::from(seq) * 100 + 100)),
        first_time: RedoTime(0),
        next_time: RedoTime(60),
        block_size: 512,
        block_count: 8,
    }
}

fn ident(ino: u64, size: u64) -> FileIdent {
    FileIdent {
        size,
        mtime_ns: 1,
        ino,
        dev: 1,
    }
}

fn sha(n: u8) -> [u8; 32] {
    [n; 32]
}

fn path(seq: u32) -> PathBuf {
    PathBuf::from(format!("/arch/1_{seq}_5.dbf"))
}

fn complete(id: FileIdent, seq: u32, bytes: u8) -> Validation {
    Validation {
        ident: id,
        sha256: Some(Sha256Digest(sha(bytes))),
        verdict: Completeness::Complete { info: info(seq) },
    }
}

/// Incomplete: `short` (still being written, perhaps), or damaged in block 3.
fn incomplete(id: FileIdent, seq: u32, short: bool) -> Validation {
    let (block, reason) = if short {
        (5, "file ends inside block 5")
    } else {
        (3, "block 3: bad checksum")
    };
    Validation {
        ident: id,
        sha256: (!short).then(|| sha(99).into()),
        verdict: Completeness::Incomplete {
            info: Some(info(seq)),
            block: Some(block),
            reason: reason.into(),
            short,
        },
    }
}

fn not_redo(id: FileIdent) -> Validation {
    Validation {
        ident: id,
        sha256: None,
        verdict: Completeness::NotRedo {
            offset: 0,
            reason: "a datafile header".into(),
        },
    }
}

fn short(id: FileIdent, seq: u32) -> Validation {
    incomplete(id, seq, true)
}

fn damaged(id: FileIdent, seq: u32) -> Validation {
    incomplete(id, seq, false)
}

fn log(p: &Path, id: FileIdent, seq: u32, bytes: u8) -> ValidLog {
    ValidLog {
        path: p.to_path_buf(),
        ident: id,
        info: info(seq),
        sha256: Sha256Digest(sha(bytes)),
    }
}

fn put(id: FileIdent, bytes: u8) -> Shipped {
    Shipped {
        put: PutOutcome {
            key: format!("p/archive/sha256/{}", hex::encode(sha(bytes))),
            version_id: Some("v1".into()),
            size: id.size,
            sha256: Sha256Digest(sha(bytes)),
            already_present: false,
            lock: None,
        },
        stored: None,
    }
}

fn outage() -> StoreError {
    StoreError::Unreachable {
        endpoint: "https://s3".into(),
        detail: "connection refused".into(),
    }
}

/// A machine, its manifest and its clock.
struct World {
    m: Machine,
    book: Book,
    now: Instant,
    wall: SystemTime,
}

impl World {
    fn new() -> World {
        World::with(limits())
    }

    fn with(limits: Limits) -> World {
        let t0 = Instant::now();
        World {
            m: Machine::new(limits, Gaps::new(), HashMap::new(), t0),
            book: Book::default(),
            now: t0,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn on(&mut self, e: Event) -> Vec<Action> {
        self.m.on(e, &self.book)
    }

    fn pass(&mut self, d: Duration) {
        self.now += d;
        self.wall += d;
    }

    /// Lists these files (a complete scan).
    fn list(&mut self, files: &[(PathBuf, FileIdent)]) -> Vec<Action> {
        let seen = files
            .iter()
            .map(|(p, id)| Seen {
                path: p.clone(),
                ident: *id,
                mtime: self.wall,
                temp: false,
            })
            .collect();
        let (now, wall) = (self.now, self.wall);
        self.on(Event::Listed {
            seen,
            errors: Vec::new(),
            now,
            wall,
        })
    }

    fn tick(&mut self) -> Vec<Action> {
        let (now, wall) = (self.now, self.wall);
        self.on(Event::Tick { now, wall })
    }

    fn validated(&mut self, p: &Path, v: Validation) -> Vec<Action> {
        let now = self.now;
        self.on(Event::Validated {
            path: p.to_path_buf(),
            result: Ok(v),
            now,
        })
    }

    fn uploaded(
        &mut self,
        p: &Path,
        id: FileIdent,
        seq: u32,
        bytes: u8,
        r: Result<Shipped, StoreError>,
    ) -> Vec<Action> {
        let now = self.now;
        self.on(Event::Uploaded {
            log: log(p, id, seq, bytes),
            result: r,
            started: now,
            now,
        })
    }

    fn recorded(&mut self, p: &Path, id: FileIdent, seq: u32, bytes: u8) -> Vec<Action> {
        self.book.ship(&machine_name(p), &info(seq), sha(bytes));
        let now = self.now;
        self.on(Event::Recorded {
            log: log(p, id, seq, bytes),
            result: Ok(None),
            now,
        })
    }

    /// Takes one log from the listing to shipped; returns the actions of its last step.
    fn ship(&mut self, p: &Path, id: FileIdent, seq: u32, bytes: u8) -> Vec<Action> {
        self.list(&[(p.to_path_buf(), id)]);
        self.validated(p, complete(id, seq, bytes));
        self.uploaded(p, id, seq, bytes, Ok(put(id, bytes)));
        self.recorded(p, id, seq, bytes)
    }

    fn state(&self, p: &Path) -> &FileState {
        self.m.state_of(p).expect("tracked")
    }
}

fn machine_name(p: &Path) -> String {
    file_name(p)
}

fn validates(a: &[Action]) -> Vec<PathBuf> {
    a.iter()
        .filter_map(|a| match a {
            Action::Validate { path } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

fn uploads(a: &[Action]) -> Vec<PathBuf> {
    a.iter()
        .filter_map(|a| match a {
            Action::Upload(log) => Some(log.path.clone()),
            _ => None,
        })
        .collect()
}

fn quarantines(a: &[Action]) -> usize {
    a.iter()
        .filter(|a| matches!(a, Action::Quarantine { .. }))
        .count()
}

fn raised(a: &[Action]) -> Vec<&Raise> {
    a.iter()
        .filter_map(|a| match a {
            Action::Raise(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn errors(a: &[Action]) -> Vec<&'static str> {
    a.iter()
        .filter_map(|a| match a {
            Action::Error { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_log_is_queued_validated_uploaded_recorded_and_shipped() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    let a = w.list(&[(p.clone(), id)]);
    assert_eq!(
        validates(&a),
        vec![p.clone()],
        "queued, then validation starts at once"
    );
    assert!(matches!(w.state(&p), FileState::Validating));
    assert_eq!(w.m.tally().backlog_files, 1);
    assert_eq!(w.m.tally().backlog_bytes, 4608);

    let a = w.validated(&p, complete(id, 1, 1));
    assert_eq!(
        uploads(&a),
        vec![p.clone()],
        "validated, then its upload starts"
    );
    assert!(matches!(w.state(&p), FileState::Uploading));

    let a = w.uploaded(&p, id, 1, 1, Ok(put(id, 1)));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Record { log, .. } if log.path == p)),
        "{a:?}"
    );
    assert!(
        matches!(w.state(&p), FileState::Recording),
        "not shipped before its manifest entry is written"
    );
    assert_eq!(w.m.tally().backlog_files, 1);

    w.recorded(&p, id, 1, 1);
    assert!(matches!(w.state(&p), FileState::Shipped));
    let t = w.m.tally();
    assert_eq!((t.backlog_files, t.backlog_bytes, t.shipped), (0, 0, 1));
    let index = w.m.take_index().expect("the file index changed");
    assert_eq!(index[&p].sha256, Sha256Digest(sha(1)));
    assert!(w.m.take_index().is_none(), "written once");
}

#[test]
fn a_log_in_the_file_index_with_the_same_bytes_is_shipped_without_a_read() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.book.ship(&file_name(&p), &info(1), sha(1));
    let index = HashMap::from([(
        p.clone(),
        IndexEntry {
            path: p.clone(),
            ident: id,
            sha256: Sha256Digest(sha(1)),
        },
    )]);
    w.m = Machine::new(limits(), Gaps::new(), index, w.now);
    let a = w.list(&[(p.clone(), id)]);
    assert!(validates(&a).is_empty(), "{a:?}");
    assert!(matches!(w.state(&p), FileState::Shipped));
}

#[test]
fn a_log_already_in_the_manifest_with_the_same_bytes_is_not_uploaded_again() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.book.ship(&file_name(&p), &info(1), sha(1));
    w.list(&[(p.clone(), id)]);
    let a = w.validated(&p, complete(id, 1, 1));
    assert!(uploads(&a).is_empty() && raised(&a).is_empty(), "{a:?}");
    assert!(matches!(w.state(&p), FileState::Shipped));
}

#[test]
fn a_log_with_other_bytes_under_a_shipped_identity_is_replaced_and_never_uploaded() {
    let mut w = World::new();
    let (p, id) = (PathBuf::from("/arch/copy_of_1.dbf"), ident(2, 4608));
    w.book.ship("1_1_5.dbf", &info(1), sha(1));
    w.list(&[(p.clone(), id)]);
    let a = w.validated(&p, complete(id, 1, 2));
    assert!(uploads(&a).is_empty(), "{a:?}");
    match raised(&a).as_slice() {
        [
            Raise::Replaced {
                found, what, index, ..
            },
        ] => {
            assert_eq!(*found, Some(Sha256Digest(sha(2))));
            assert_eq!(what, "thread 1 sequence 1");
            assert_eq!(*index, 1);
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(w.state(&p), FileState::Replaced { .. }));
    assert_eq!(w.m.tally().replaced, 1);
    assert_eq!(w.m.tally().backlog_files, 0);
}

#[test]
fn a_log_replaced_under_its_name_is_validated_again_and_refused() {
    let mut w = World::new();
    let p = path(1);
    w.ship(&p, ident(1, 4608), 1, 1);
    // Other bytes under the same name: a new identity (inode, size), seen by the next scan.
    let new = ident(9, 4608);
    let a = w.list(&[(p.clone(), new)]);
    assert_eq!(validates(&a), vec![p.clone()], "validated again");
    assert!(
        w.m.take_index().is_some_and(|ix| !ix.contains_key(&p)),
        "out of the file index"
    );
    let a = w.validated(&p, complete(new, 1, 7));
    assert!(uploads(&a).is_empty());
    assert!(
        matches!(raised(&a).as_slice(), [Raise::Replaced { .. }]),
        "{a:?}"
    );
    assert!(matches!(w.state(&p), FileState::Replaced { .. }));
}

#[test]
fn a_not_redo_file_under_a_shipped_name_is_a_replaced_log() {
    let mut w = World::new();
    let p = path(1);
    w.ship(&p, ident(1, 4608), 1, 1);
    let new = ident(9, 8192);
    w.list(&[(p.clone(), new)]);
    let a = w.validated(&p, not_redo(new));
    assert!(
        matches!(raised(&a).as_slice(), [Raise::Replaced { found: None, .. }]),
        "{a:?}"
    );
}

#[test]
fn a_transient_upload_error_retries_after_backoff() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    let a = w.uploaded(&p, id, 1, 1, Err(outage()));
    assert_eq!(errors(&a), vec!["upload_transient"]);
    assert!(
        matches!(
            raised(&a).as_slice(),
            [Raise::UploadFailing {
                critical: false,
                kind: "upload_transient",
                ..
            }]
        ),
        "{a:?}"
    );
    assert!(uploads(&a).is_empty(), "not before its backoff");
    assert!(matches!(
        w.state(&p),
        FileState::Queued { ready: Some(_), .. }
    ));
    assert_eq!(w.m.tally().failing, 1);
    w.pass(SEC / 2);
    assert!(uploads(&w.tick()).is_empty());
    w.pass(SEC);
    assert_eq!(uploads(&w.tick()), vec![p.clone()], "after 1 s");
    // The second failure waits twice as long.
    w.uploaded(&p, id, 1, 1, Err(outage()));
    w.pass(SEC + SEC / 2);
    assert!(uploads(&w.tick()).is_empty());
    w.pass(SEC);
    assert_eq!(uploads(&w.tick()), vec![p.clone()], "after 2 s");
    w.uploaded(&p, id, 1, 1, Ok(put(id, 1)));
    w.recorded(&p, id, 1, 1);
    assert_eq!(w.m.tally().failing, 0);
    assert!(matches!(w.state(&p), FileState::Shipped));
}

#[test]
fn backoff_doubles_up_to_its_maximum() {
    let max = 30 * SEC;
    let got: Vec<u64> = (1..=7).map(|a| backoff(a, max).as_secs()).collect();
    assert_eq!(got, vec![1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(backoff(u32::MAX, max), max);
}

#[test]
fn a_conflicting_object_is_a_critical_upload_alarm() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    let e = StoreError::AlreadyExistsDifferent {
        key: "k".into(),
        stored: hex::encode(sha(8)),
        new: hex::encode(sha(1)),
    };
    let a = w.uploaded(&p, id, 1, 1, Err(e));
    assert!(
        matches!(
            raised(&a).as_slice(),
            [Raise::UploadFailing {
                critical: true,
                kind: "upload_conflict",
                ..
            }]
        ),
        "{a:?}"
    );
}

#[test]
fn a_log_changed_during_its_upload_is_validated_again_without_alarm() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    let e = StoreError::SourceChanged {
        path: p.display().to_string(),
        detail: "grew".into(),
    };
    let a = w.uploaded(&p, id, 1, 1, Err(e));
    assert!(raised(&a).is_empty(), "{a:?}");
    assert_eq!(validates(&a), vec![p.clone()]);
}

#[test]
fn a_store_answer_for_other_bytes_is_never_recorded() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    let a = w.uploaded(&p, id, 1, 1, Ok(put(id, 2)));
    assert!(
        !a.iter().any(|a| matches!(a, Action::Record { .. })),
        "{a:?}"
    );
    assert_eq!(errors(&a), vec!["upload_other"]);
    assert!(matches!(
        w.state(&p),
        FileState::Queued { ready: Some(_), .. }
    ));
}

#[test]
fn a_manifest_write_failure_raises_and_uploads_again() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    w.uploaded(&p, id, 1, 1, Ok(put(id, 1)));
    let now = w.now;
    let a = w.on(Event::Recorded {
        log: log(&p, id, 1, 1),
        result: Err(RecordError {
            path: p.clone(),
            key: "k".into(),
            source: crate::manifest::ManifestError::Inconsistent("disk full".into()),
        }),
        now,
    });
    assert_eq!(errors(&a), vec!["manifest_write"]);
    assert!(matches!(
        raised(&a).as_slice(),
        [Raise::Manifest {
            subject: "manifest write",
            ..
        }]
    ));
    w.pass(2 * SEC);
    assert_eq!(
        uploads(&w.tick()),
        vec![p.clone()],
        "the same key again, then appended"
    );
}

#[test]
fn a_damaged_log_is_alarmed_after_the_grace_period_and_quarantined_once() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let a = w.validated(&p, damaged(id, 1));
    assert!(
        raised(&a).is_empty() && quarantines(&a) == 0,
        "not within the grace period"
    );
    assert!(matches!(
        w.state(&p),
        FileState::Incomplete { alarmed: false, .. }
    ));
    assert_eq!(w.m.tally().incomplete, 1);
    assert_eq!(w.m.tally().backlog_files, 1);
    w.pass(59 * SEC);
    assert!(raised(&w.tick()).is_empty());
    w.pass(SEC);
    let a = w.tick();
    match raised(&a).as_slice() {
        [Raise::Damaged { block, reason, .. }] => {
            assert_eq!(*block, Some(3));
            assert!(reason.contains("checksum"));
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(quarantines(&a), 1, "its bytes go to the quarantine prefix");
    let t = w.m.tally();
    assert_eq!((t.damaged, t.incomplete, t.backlog_files), (1, 0, 0));
    let now = w.now;
    w.on(Event::Quarantined {
        path: p.clone(),
        ident: id,
        result: Ok(("p/quarantine/sha256/63".into(), Sha256Digest(sha(99)))),
        now,
    });
    for _ in 0..5 {
        w.pass(60 * SEC);
        let a = w.tick();
        assert!(quarantines(&a) == 0 && raised(&a).is_empty(), "{a:?}");
    }
    let s = w.m.status(w.wall);
    assert_eq!(s.damaged.len(), 1);
    assert_eq!(
        s.damaged[0].quarantine_key.as_deref(),
        Some("p/quarantine/sha256/63")
    );
}

#[test]
fn a_failed_quarantine_copy_is_tried_again_after_backoff() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, damaged(id, 1));
    w.pass(60 * SEC);
    assert_eq!(quarantines(&w.tick()), 1);
    let now = w.now;
    let a = w.on(Event::Quarantined {
        path: p.clone(),
        ident: id,
        result: Err(JobError::Store(outage())),
        now,
    });
    assert_eq!(errors(&a), vec!["quarantine"]);
    assert_eq!(quarantines(&a), 0);
    w.pass(2 * SEC);
    assert_eq!(quarantines(&w.tick()), 1);
}

#[test]
fn a_short_log_is_followed_and_its_followed_validation_is_used() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let a = w.validated(&p, short(id, 1));
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Follow { key, .. } if *key == (1, 1))),
        "{a:?}"
    );
    // ARCn finishes writing: the file grows to its declared size, the follow reads it whole.
    let done = ident(1, 4608 + 512);
    let a = w.list(&[(p.clone(), done)]);
    assert!(
        validates(&a).is_empty(),
        "judged when the follow ends, not read twice: {a:?}"
    );
    let now = w.now;
    let a = w.on(Event::Followed {
        key: (1, 1),
        result: Some(complete(done, 1, 1)),
        now,
    });
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::ValidatedWhileWritten { .. })),
        "{a:?}"
    );
    assert_eq!(uploads(&a), vec![p.clone()]);
}

#[test]
fn a_log_written_under_a_temporary_name_is_followed_and_not_read_again_once_renamed() {
    let mut w = World::new();
    let id = ident(4, 4608);
    let (now, wall) = (w.now, w.wall);
    let a = w.on(Event::Listed {
        seen: vec![Seen {
            path: "/arch/1_4_5.dbf.tmp".into(),
            ident: id,
            mtime: wall,
            temp: true,
        }],
        errors: Vec::new(),
        now,
        wall,
    });
    assert!(
        a.iter().any(|a| matches!(a, Action::Follow { .. })),
        "{a:?}"
    );
    assert_eq!(w.m.tracked(), 0, "a temporary name is not a log");
    w.on(Event::Followed {
        key: (1, 4),
        result: Some(complete(id, 4, 4)),
        now,
    });
    let a = w.list(&[(path(4), id)]);
    assert!(validates(&a).is_empty(), "{a:?}");
    assert_eq!(uploads(&a), vec![path(4)]);
}

#[test]
fn a_file_that_is_not_redo_is_reported_once_and_left_alone() {
    let mut w = World::new();
    let (p, id) = (PathBuf::from("/arch/users01.dbf"), ident(1, 8192));
    w.list(&[(p.clone(), id)]);
    let a = w.validated(&p, not_redo(id));
    assert!(
        matches!(raised(&a).as_slice(), [Raise::NotRedo { offset: 0, .. }]),
        "{a:?}"
    );
    assert_eq!(w.m.tally().not_redo, 1);
    assert_eq!(w.m.tally().backlog_files, 0);
    for _ in 0..3 {
        w.pass(120 * SEC);
        let a = w.tick();
        assert!(raised(&a).is_empty() && quarantines(&a) == 0, "{a:?}");
        assert!(validates(&w.list(&[(p.clone(), id)])).is_empty());
    }
}

#[test]
fn a_log_removed_before_it_was_shipped_raises_vanished_and_a_shipped_one_does_not() {
    let mut w = World::new();
    let (shipped, queued) = (path(1), path(2));
    w.ship(&shipped, ident(1, 4608), 1, 1);
    w.list(&[
        (shipped.clone(), ident(1, 4608)),
        (queued.clone(), ident(2, 4608)),
    ]);
    w.validated(&queued, complete(ident(2, 4608), 2, 2));
    w.uploaded(&queued, ident(2, 4608), 2, 2, Err(outage()));
    let a = w.list(&[]);
    match raised(&a).as_slice() {
        [Raise::Vanished { path }] => assert_eq!(*path, queued),
        r => panic!("{r:?}"),
    }
    assert_eq!(w.m.tracked(), 0);
    assert_eq!(w.m.tally(), Tally::default());
}

#[test]
fn a_log_removed_during_its_upload_counts_when_the_upload_ends() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    w.validated(&p, complete(id, 1, 1));
    let a = w.list(&[]);
    assert!(raised(&a).is_empty(), "its upload decides: {a:?}");
    assert_eq!(w.m.tracked(), 1);
    w.uploaded(&p, id, 1, 1, Ok(put(id, 1)));
    let a = w.recorded(&p, id, 1, 1);
    assert!(raised(&a).is_empty(), "{a:?}");
    assert_eq!(w.m.tracked(), 0, "forgotten once shipped");
}

#[test]
fn a_scan_that_cannot_list_a_directory_forgets_nothing() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let (now, wall) = (w.now, w.wall);
    let a = w.on(Event::Listed {
        seen: Vec::new(),
        errors: vec!["cannot list /arch: permission denied".into()],
        now,
        wall,
    });
    assert_eq!(errors(&a), vec!["scan"]);
    assert!(
        matches!(raised(&a).as_slice(), [Raise::ScanFailing { .. }]),
        "{a:?}"
    );
    assert_eq!(w.m.tracked(), 1);
}

#[test]
fn uploads_never_exceed_parallel_uploads_and_the_oldest_goes_first() {
    let mut w = World::new();
    let files: Vec<(PathBuf, FileIdent)> = (1..=5)
        .map(|s| (path(s), ident(u64::from(s), 4608)))
        .collect();
    for i in 0..files.len() {
        // Seen one after the other: the detection order is the shipping order.
        w.list(&files[..=i]);
        w.pass(SEC);
    }
    let mut started = Vec::new();
    // The fifth waits: two validated logs already wait for a slot.
    for (s, (p, id)) in files.iter().take(4).enumerate() {
        let a = w.validated(p, complete(*id, s as u32 + 1, s as u8 + 1));
        started.extend(uploads(&a));
        assert!(
            w.m.in_flight() <= 2 + w.m.limits.validations(),
            "{}",
            w.m.in_flight()
        );
    }
    assert_eq!(started, vec![path(1), path(2)], "two slots, oldest first");
    let a = w.uploaded(&path(1), files[0].1, 1, 1, Ok(put(files[0].1, 1)));
    assert_eq!(
        uploads(&a),
        vec![path(3)],
        "a slot frees when its upload ends"
    );
}

#[test]
fn validations_run_one_at_a_time_ahead_of_the_uploads() {
    let mut w = World::new();
    let files: Vec<(PathBuf, FileIdent)> = (1..=4)
        .map(|s| (path(s), ident(u64::from(s), 4608)))
        .collect();
    let a = w.list(&files);
    assert_eq!(validates(&a), vec![path(1)], "one validation at a time");
    let a = w.validated(&path(1), complete(files[0].1, 1, 1));
    assert_eq!(uploads(&a), vec![path(1)]);
    assert_eq!(validates(&a), vec![path(2)]);
}

#[test]
fn four_upload_slots_run_two_validations_at_once_oldest_first() {
    let mut w = World::with(Limits {
        parallel_uploads: 4,
        ..limits()
    });
    let files: Vec<(PathBuf, FileIdent)> = (1..=6)
        .map(|s| (path(s), ident(u64::from(s), 4608)))
        .collect();
    let a = w.list(&files);
    assert_eq!(
        validates(&a),
        vec![path(1), path(2)],
        "one pass per two slots"
    );
    let a = w.validated(&path(2), complete(files[1].1, 2, 2));
    assert_eq!(uploads(&a), vec![path(2)]);
    assert_eq!(
        validates(&a),
        vec![path(3)],
        "the freed pass takes the next"
    );
    assert_eq!(w.m.validations, 2);
    // One slot or two: one pass; the limit never drops to none.
    for (slots, passes) in [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4)] {
        let l = Limits {
            parallel_uploads: slots,
            ..limits()
        };
        assert_eq!(l.validations(), passes, "{slots} slots");
    }
}

#[test]
fn a_second_copy_of_a_log_in_flight_waits_for_the_first() {
    let mut w = World::new();
    let (a_path, b_path) = (path(1), PathBuf::from("/arch2/1_1_5.dbf"));
    let (a_id, b_id) = (ident(1, 4608), ident(2, 4608));
    w.list(&[(a_path.clone(), a_id), (b_path.clone(), b_id)]);
    w.validated(&a_path, complete(a_id, 1, 1));
    let a = w.validated(&b_path, complete(b_id, 1, 1));
    assert!(uploads(&a).is_empty(), "{a:?}");
    w.uploaded(&a_path, a_id, 1, 1, Ok(put(a_id, 1)));
    w.recorded(&a_path, a_id, 1, 1);
    w.pass(SEC);
    let a = w.tick();
    assert!(uploads(&a).is_empty(), "{a:?}");
    assert!(
        matches!(w.state(&b_path), FileState::Shipped),
        "found in the manifest"
    );
}

#[test]
fn a_validation_that_cannot_read_retries_after_backoff() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let now = w.now;
    let a = w.on(Event::Validated {
        path: p.clone(),
        result: Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        now,
    });
    assert_eq!(errors(&a), vec!["validate_io"]);
    assert!(validates(&a).is_empty());
    w.pass(SEC);
    assert_eq!(validates(&w.tick()), vec![p]);
}

#[test]
fn a_file_changed_while_validated_is_validated_again() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let v = Validation {
        ident: id,
        sha256: None,
        verdict: Completeness::Changed,
    };
    assert!(validates(&w.validated(&p, v)).is_empty());
    w.pass(SEC / 4);
    assert_eq!(validates(&w.tick()), vec![p]);
}

#[test]
fn a_job_that_panicked_is_tried_again() {
    let mut w = World::new();
    let (p, id) = (path(1), ident(1, 4608));
    w.list(&[(p.clone(), id)]);
    let now = w.now;
    w.on(Event::Lost {
        job: JobOf::Validate(p.clone()),
        now,
    });
    assert_eq!(w.m.in_flight(), 0);
    w.pass(SEC);
    assert_eq!(validates(&w.tick()), vec![p]);
}

#[test]
fn segments_are_sealed_on_the_interval_when_full_and_once_while_in_flight() {
    let mut w = World::new();
    let closes = |a: &[Action]| {
        a.iter()
            .filter(|a| matches!(a, Action::CloseSegment { .. }))
            .count()
    };
    assert_eq!(closes(&w.tick()), 0);
    w.pass(300 * SEC);
    assert_eq!(closes(&w.tick()), 1, "sealed on the interval");
    assert_eq!(closes(&w.tick()), 0);
    w.book.open = 100;
    assert_eq!(closes(&w.tick()), 1, "sealed when full");
    w.book.open = 0;
    let seg = SegmentInfo {
        first: 1,
        last: 3,
        path: "/state/manifest/segments/1-3.jsonl".into(),
        size: 10,
        sha256: Sha256Digest(sha(3)),
    };
    let a = w.on(Event::Unsealed {
        result: Ok(vec![seg.clone()]),
    });
    assert!(matches!(a.as_slice(), [Action::Seal { .. }]), "{a:?}");
    let a = w.on(Event::Unsealed {
        result: Ok(vec![seg.clone()]),
    });
    assert!(a.is_empty(), "not twice while in flight: {a:?}");
    let a = w.on(Event::Sealed {
        seg: seg.clone(),
        key: "p/manifest/1-3".into(),
        result: Err(outage()),
    });
    assert!(
        matches!(raised(&a).as_slice(), [Raise::SealFailing { .. }]),
        "{a:?}"
    );
    let a = w.on(Event::Unsealed {
        result: Ok(vec![seg.clone()]),
    });
    assert!(
        matches!(a.as_slice(), [Action::Seal { .. }]),
        "tried again: {a:?}"
    );
    let ok = PutOutcome {
        key: "p/manifest/1-3".into(),
        version_id: None,
        size: 10,
        sha256: Sha256Digest(sha(3)),
        already_present: false,
        lock: None,
    };
    let a = w.on(Event::Sealed {
        seg,
        key: "p/manifest/1-3".into(),
        result: Ok(ok),
    });
    assert!(
        matches!(a.as_slice(), [Action::MarkSealed { .. }]),
        "sealed: {a:?}"
    );
}

#[test]
fn a_gap_is_reported_at_once_and_alarmed_after_the_grace_period() {
    let mut w = World::new();
    let (p1, p3) = (path(1), path(3));
    w.list(&[(p1.clone(), ident(1, 4608)), (p3.clone(), ident(3, 4608))]);
    w.validated(&p1, complete(ident(1, 4608), 1, 1));
    w.validated(&p3, complete(ident(3, 4608), 3, 3));
    assert_eq!(w.m.gaps().total_missing(), 1);
    let a = w.tick();
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::GapOpened { range, .. } if range.first == 2))
    );
    assert!(!raised(&a).iter().any(|r| matches!(r, Raise::Gap { .. })));
    w.pass(60 * SEC);
    let a = w.tick();
    assert!(
        raised(&a)
            .iter()
            .any(|r| matches!(r, Raise::Gap { range, .. } if range.first == 2 && range.last == 2)),
        "{a:?}"
    );
}

#[test]
fn the_backlog_alarm_names_the_oldest_unshipped_log() {
    let mut w = World::with(Limits {
        backlog_alarm_age: 600 * SEC,
        ..limits()
    });
    w.list(&[(path(1), ident(1, 4608))]);
    w.pass(SEC);
    w.list(&[(path(1), ident(1, 4608)), (path(2), ident(2, 4608))]);
    w.pass(600 * SEC);
    let a = w.tick();
    match raised(&a)
        .iter()
        .find(|r| matches!(r, Raise::Backlog { .. }))
    {
        Some(Raise::Backlog { file, age }) => {
            assert_eq!(*file, path(1).display().to_string());
            assert!(*age > 600.0);
        }
        _ => panic!("{a:?}"),
    }
}

#[test]
fn the_status_is_written_every_status_interval() {
    let mut w = World::new();
    let writes = |a: &[Action]| {
        a.iter()
            .filter(|a| matches!(a, Action::WriteStatus))
            .count()
    };
    assert_eq!(writes(&w.tick()), 1);
    assert_eq!(writes(&w.tick()), 0);
    w.pass(2 * SEC);
    assert_eq!(writes(&w.tick()), 1);
}

#[test]
fn stopping_starts_nothing_new() {
    let mut w = World::new();
    w.on(Event::Stopping);
    let a = w.list(&[(path(1), ident(1, 4608))]);
    assert!(validates(&a).is_empty(), "{a:?}");
    w.pass(300 * SEC);
    assert!(
        !w.tick()
            .iter()
            .any(|a| matches!(a, Action::CloseSegment { .. }))
    );
}

/// The aggregates, counted the slow way.
fn recount(m: &Machine) -> Tally {
    let mut t = Tally::default();
    for tr in m.files.values() {
        let backlog = match &tr.state {
            FileState::Incomplete { alarmed, .. } => !alarmed,
            s => matches!(s, FileState::Queued { .. }) || s.busy(),
        };
        if backlog {
            t.backlog_files += 1;
            t.backlog_bytes += tr.ident.size;
            t.failing += u64::from(tr.failing && !matches!(tr.state, FileState::Incomplete { .. }));
        }
        match &tr.state {
            FileState::Incomplete { alarmed: false, .. } => t.incomplete += 1,
            FileState::Incomplete { alarmed: true, .. } => t.damaged += 1,
            FileState::NotRedo { .. } => t.not_redo += 1,
            FileState::Queued { ready: Some(_), .. } => t.ready += 1,
            FileState::Shipped => t.shipped += 1,
            FileState::Replaced { .. } => t.replaced += 1,
            _ => {}
        }
    }
    t
}

#[test]
fn the_aggregates_match_a_recount_after_any_sequence_of_events() {
    use proptest::prelude::*;
    let step = (0u8..8, 1u32..7, 0u8..3);
    proptest!(ProptestConfig::with_cases(64), |(steps in proptest::collection::vec(step, 1..60))| {
        let mut w = World::new();
        let mut listed: Vec<u32> = Vec::new();
        for (op, seq, x) in steps {
            let p = path(seq);
            let id = ident(u64::from(seq) * 10 + u64::from(x % 2), 4608 + u64::from(seq));
            match op {
                0 => {
                    if !listed.contains(&seq) {
                        listed.push(seq);
                    }
                    let files: Vec<_> = listed.iter().map(|s| (path(*s), if *s == seq { id } else { ident(u64::from(*s) * 10, 4608 + u64::from(*s)) })).collect();
                    w.list(&files);
                }
                1 => { w.validated(&p, complete(id, seq, x)); }
                2 => { w.validated(&p, damaged(id, seq)); }
                3 => { w.uploaded(&p, id, seq, x, if x == 0 { Err(outage()) } else { Ok(put(id, x)) }); }
                4 => { w.recorded(&p, id, seq, x); }
                5 => { w.pass(SEC * u32::from(x) * 30); w.tick(); }
                6 => {
                    listed.retain(|s| *s != seq);
                    let files: Vec<_> = listed.iter().map(|s| (path(*s), ident(u64::from(*s) * 10, 4608 + u64::from(*s)))).collect();
                    w.list(&files);
                }
                _ => {
                    let now = w.now;
                    w.on(Event::Quarantined { path: p.clone(), ident: id, result: Ok(("q".into(), Sha256Digest(sha(x)))), now });
                }
            }
            prop_assert_eq!(w.m.tally(), recount(&w.m));
            prop_assert!(w.m.uploads <= 2);
            prop_assert!(w.m.validations <= w.m.limits.validations());
        }
    });
}
