//! `restore-online.json`: what `restore online` leaves in DEST for `restore script`, one
//! record per redo thread.
//!
//! A RAC database has one stream, hence one rebuilt online log, per thread, and `restore
//! online` rebuilds one stream per run: each run adds its thread's record and keeps the other
//! threads', so `restore script` finds every thread's log in one file. The file of earlier
//! releases, a single record, is read as a list of one. [`select_streams`] says which
//! streams one run rebuilds: by default every thread of the one database incarnation found.

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use redovault::wire::StreamId;
use serde::{Deserialize, Serialize};

use crate::script::OnlineLogFile;

/// The file's name in DEST.
pub const ONLINE_RECORD: &str = "restore-online.json";

/// One thread's rebuilt online log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineRecord {
    /// The stream, `db<dbid>-rl<resetlogs id>-t<thread>` (absent in records of earlier
    /// releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// The rebuilt log.
    pub path: PathBuf,
    pub thread: u16,
    pub sequence: u32,
    /// Redo bytes up to the cut (the end of the last commit's redo): what `sha256` covers.
    pub size: u64,
    /// Length of the file: the online log's full size when padded (the default), else
    /// `size` (0 in records of earlier releases: unknown).
    #[serde(default)]
    pub file_size: u64,
    /// SHA-256 of the redo up to the cut (hex).
    pub sha256: String,
    /// SCN of the thread's last commit.
    pub last_commit_scn: u64,
    pub last_commit_xid: String,
    /// Its time (RFC 3339), when the redo carries it.
    pub last_commit_time: Option<String>,
    /// Commits in this log.
    pub commits: usize,
    /// Where the log came from: `collector` (its segments) or `worm` (the pieces, opened
    /// with the recovery key).
    #[serde(default = "collector_source")]
    pub source: String,
    /// Why that source.
    #[serde(default)]
    pub source_reason: String,
    /// Every copy of the stream read (each collector, each WORM prefix) and how it stands
    /// against the one chosen (absent in records of earlier releases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copies: Vec<CopyRecord>,
}

/// One copy of a stream as `restore online` found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRecord {
    /// The collector's name, or `worm:<prefix>`.
    pub name: String,
    /// `collector` or `worm`.
    pub kind: String,
    /// Its directory or prefix.
    pub place: String,
    /// `agrees`, `behind`, `diverges` or `absent`.
    pub status: String,
    /// Where it first differs from the chosen copy (`<seq>:<offset>`), when it diverges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverges_at: Option<String>,
    /// The end of its longest authenticated prefix (`<seq>:<offset>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit_scn: Option<u64>,
    /// Where its last commit ends (`<seq>:<offset>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit_end: Option<String>,
    /// The copy the log was rebuilt from.
    #[serde(default)]
    pub chosen: bool,
}

fn collector_source() -> String {
    "collector".into()
}

impl OnlineRecord {
    /// The database and incarnation part of the stream name (`db<dbid>-rl<resetlogs id>`).
    fn incarnation(&self) -> Option<&str> {
        self.stream
            .as_deref()
            .and_then(|s| s.rsplit_once("-t"))
            .map(|(i, _)| i)
    }

    /// What the scripts need of it.
    pub fn online_log(&self) -> OnlineLogFile {
        OnlineLogFile {
            path: self.path.clone(),
            thread: self.thread,
            sequence: self.sequence,
            last_commit_scn: self.last_commit_scn,
            last_commit_xid: self.last_commit_xid.clone(),
            last_commit_time: self.last_commit_time.clone(),
        }
    }
}

/// Every thread's record, in thread order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineRecords {
    /// One per thread.
    pub threads: Vec<OnlineRecord>,
}

/// The file as written now, or as written by earlier releases.
#[derive(Deserialize)]
#[serde(untagged)]
enum OnFile {
    Threads(OnlineRecords),
    One(Box<OnlineRecord>),
}

/// A record file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading or writing it failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// It is not a record of `restore online`.
    #[error("{path}: not a record of `restore online`: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl OnlineRecords {
    /// The records in DEST, `None` when `restore online` has not written any there.
    pub fn read(dest: &Path) -> Result<Option<OnlineRecords>, RecordError> {
        let path = dest.join(ONLINE_RECORD);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(RecordError::Io { path, source }),
        };
        match serde_json::from_slice::<OnFile>(&bytes) {
            Ok(OnFile::Threads(r)) => Ok(Some(r)),
            Ok(OnFile::One(r)) => Ok(Some(OnlineRecords { threads: vec![*r] })),
            Err(source) => Err(RecordError::Parse { path, source }),
        }
    }

    /// Adds `r`, replacing the record of the same thread. Records of another database or
    /// incarnation than `r`'s are dropped (they cannot be recovered together); the returned
    /// notes say which.
    pub fn add(&mut self, r: OnlineRecord) -> Vec<String> {
        let mut notes = Vec::new();
        let inc = r.incarnation().map(str::to_string);
        self.threads.retain(|o| {
            if o.thread == r.thread {
                notes.push(format!(
                    "replaces the record of thread {} (sequence {}, {})",
                    o.thread,
                    o.sequence,
                    o.path.display()
                ));
                return false;
            }
            match (o.incarnation(), inc.as_deref()) {
                (Some(a), Some(b)) if a != b => {
                    notes.push(format!(
                        "drops the record of {} ({}): another database or incarnation",
                        o.stream.as_deref().unwrap_or("?"),
                        o.path.display()
                    ));
                    false
                }
                _ => true,
            }
        });
        self.threads.push(r);
        self.threads.sort_by_key(|o| o.thread);
        notes
    }

    /// Writes the file in DEST, atomically and durably.
    pub fn write(&self, dest: &Path) -> Result<(), RecordError> {
        let path = dest.join(ONLINE_RECORD);
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| RecordError::Parse {
            path: path.clone(),
            source,
        })?;
        redovault::durable::write_atomic(&path, &bytes).map_err(|source| RecordError::Io {
            path: path.clone(),
            source,
        })
    }

    /// Every thread's online log, for the scripts.
    pub fn online_logs(&self) -> Vec<OnlineLogFile> {
        self.threads.iter().map(OnlineRecord::online_log).collect()
    }
}

/// Why no stream is chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Nothing matches the filters.
    #[error("{place} holds no matching stream (found: {found})")]
    NoMatch {
        /// Where the streams were looked for.
        place: String,
        /// What was there.
        found: String,
    },
    /// Several databases or incarnations match: which one is the DBA's to say.
    #[error(
        "{place} holds streams of several databases or incarnations ({found}); choose the database with --db-id, or one stream with --stream"
    )]
    Ambiguous {
        /// Where the streams were looked for.
        place: String,
        /// What matched.
        found: String,
    },
}

/// What `restore online` was asked to rebuild: `--db-id`, `--thread`, `--stream` (each
/// narrows; none: everything found).
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFilter<'a> {
    /// Only this database (DBID).
    pub db_id: Option<u32>,
    /// Only this redo thread.
    pub thread: Option<u16>,
    /// Only this stream, `db<dbid>-rl<resetlogs id>-t<thread>`.
    pub stream: Option<&'a str>,
}

impl StreamFilter<'_> {
    fn matches(&self, s: &StreamId) -> bool {
        self.db_id.is_none_or(|d| s.db_id == DbId(d))
            && self.thread.is_none_or(|t| s.thread.0 == t)
            && self.stream.is_none_or(|n| s.to_string() == n)
    }
}

/// The streams `restore online` rebuilds, one run for all: those that match the filter;
/// without `--thread` or `--stream`, every thread of the one database incarnation found (a
/// RAC database: one online log per thread, all recorded for `restore script`); `--db-id`
/// picks the database when WORM or the collectors hold several. Streams of several
/// databases or incarnations are never mixed.
pub fn select_streams(
    found: &BTreeSet<StreamId>,
    filter: StreamFilter<'_>,
    place: &str,
) -> Result<Vec<StreamId>, SelectError> {
    let names = |v: &mut dyn Iterator<Item = &StreamId>| {
        v.map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
    };
    let chosen: Vec<StreamId> = found
        .iter()
        .filter(|s| filter.matches(s))
        .copied()
        .collect();
    if chosen.is_empty() {
        return Err(SelectError::NoMatch {
            place: place.to_string(),
            found: if found.is_empty() {
                "none".into()
            } else {
                names(&mut found.iter())
            },
        });
    }
    let incarnations: BTreeSet<(DbId, ResetlogsId)> =
        chosen.iter().map(|s| (s.db_id, s.resetlogs_id)).collect();
    if incarnations.len() > 1 {
        return Err(SelectError::Ambiguous {
            place: place.to_string(),
            found: names(&mut chosen.iter()),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::position::ThreadId;

    fn sid(db_id: u32, resetlogs_id: u32, thread: u16) -> StreamId {
        StreamId {
            db_id: DbId(db_id),
            resetlogs_id: ResetlogsId(resetlogs_id),
            thread: ThreadId(thread),
        }
    }

    fn by(db_id: Option<u32>, thread: Option<u16>, stream: Option<&str>) -> StreamFilter<'_> {
        StreamFilter {
            db_id,
            thread,
            stream,
        }
    }

    #[test]
    fn every_thread_of_one_incarnation_never_two_incarnations() {
        let rac: BTreeSet<StreamId> = [sid(1, 9, 2), sid(1, 9, 1)].into();
        assert_eq!(
            select_streams(&rac, by(None, None, None), "c"),
            Ok(vec![sid(1, 9, 1), sid(1, 9, 2)])
        );
        assert_eq!(
            select_streams(&rac, by(None, Some(2), None), "c"),
            Ok(vec![sid(1, 9, 2)])
        );
        assert_eq!(
            select_streams(&rac, by(None, None, Some("db1-rl9-t1")), "c"),
            Ok(vec![sid(1, 9, 1)])
        );
        assert!(matches!(
            select_streams(&rac, by(None, Some(3), None), "c"),
            Err(SelectError::NoMatch { .. })
        ));
        let mut two = rac.clone();
        two.insert(sid(1, 10, 1));
        let e = select_streams(&two, by(None, None, None), "the collector").unwrap_err();
        assert!(matches!(e, SelectError::Ambiguous { .. }), "{e}");
        assert!(e.to_string().contains("db1-rl10-t1"), "{e}");
        assert!(e.to_string().contains("--db-id"), "{e}");
        assert!(matches!(
            select_streams(&two, by(None, Some(1), None), "c"),
            Err(SelectError::Ambiguous { .. })
        ));
        assert_eq!(
            select_streams(&two, by(None, None, Some("db1-rl10-t1")), "c"),
            Ok(vec![sid(1, 10, 1)])
        );
    }

    #[test]
    fn the_db_id_picks_one_database_of_several_with_every_thread() {
        // WORM shared by runs of two databases, each RAC with two threads.
        let found: BTreeSet<StreamId> =
            [sid(7, 9, 1), sid(7, 9, 2), sid(8, 3, 1), sid(8, 3, 2)].into();
        assert!(matches!(
            select_streams(&found, by(None, None, None), "WORM"),
            Err(SelectError::Ambiguous { .. })
        ));
        assert_eq!(
            select_streams(&found, by(Some(8), None, None), "WORM"),
            Ok(vec![sid(8, 3, 1), sid(8, 3, 2)])
        );
        assert_eq!(
            select_streams(&found, by(Some(7), Some(2), None), "WORM"),
            Ok(vec![sid(7, 9, 2)])
        );
        let e = select_streams(&found, by(Some(5), None, None), "WORM").unwrap_err();
        assert!(matches!(e, SelectError::NoMatch { .. }), "{e}");
        assert!(e.to_string().contains("db8-rl3-t2"), "{e}");
    }

    fn record(stream: &str, thread: u16, sequence: u32) -> OnlineRecord {
        OnlineRecord {
            stream: Some(stream.into()),
            path: format!("/restore/online_{thread}_{sequence}_9.log").into(),
            thread,
            sequence,
            size: 512,
            file_size: 1024,
            sha256: "00".into(),
            last_commit_scn: 100 + u64::from(thread),
            last_commit_xid: "1.2.3".into(),
            last_commit_time: None,
            commits: 1,
            source: "collector".into(),
            source_reason: String::new(),
            copies: Vec::new(),
        }
    }

    #[test]
    fn each_run_adds_its_thread_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OnlineRecords::read(dir.path()).unwrap().is_none());
        for r in [record("db1-rl9-t2", 2, 7), record("db1-rl9-t1", 1, 12)] {
            let mut all = OnlineRecords::read(dir.path()).unwrap().unwrap_or_default();
            assert!(all.add(r).is_empty());
            all.write(dir.path()).unwrap();
        }
        let all = OnlineRecords::read(dir.path()).unwrap().unwrap();
        let threads: Vec<(u16, u32)> = all.threads.iter().map(|r| (r.thread, r.sequence)).collect();
        assert_eq!(threads, vec![(1, 12), (2, 7)]);
        assert_eq!(all.online_logs().len(), 2);
        // Thread 1 again: its record is replaced, thread 2's kept.
        let mut all = all;
        let notes = all.add(record("db1-rl9-t1", 1, 13));
        assert_eq!(notes.len(), 1, "{notes:?}");
        let threads: Vec<(u16, u32)> = all.threads.iter().map(|r| (r.thread, r.sequence)).collect();
        assert_eq!(threads, vec![(1, 13), (2, 7)]);
        // Another incarnation: the old incarnation's records go.
        let notes = all.add(record("db1-rl10-t1", 1, 1));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(all.threads.len(), 1);
    }

    #[test]
    fn reads_the_single_record_of_earlier_releases() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(ONLINE_RECORD),
            r#"{"path":"/r/online_1_8_5.log","thread":1,"sequence":8,"size":1049088,
                "sha256":"d0b1","last_commit_scn":2016895,"last_commit_xid":"10.31.1916",
                "last_commit_time":"2026-03-07T00:00:24Z","commits":1}"#,
        )
        .unwrap();
        let all = OnlineRecords::read(dir.path()).unwrap().unwrap();
        assert_eq!(all.threads.len(), 1);
        assert_eq!(all.threads[0].sequence, 8);
        assert_eq!(all.threads[0].source, "collector");
        assert_eq!(all.threads[0].stream, None);
        std::fs::write(dir.path().join(ONLINE_RECORD), b"{\"threads\": 3}").unwrap();
        let e = OnlineRecords::read(dir.path()).unwrap_err();
        assert!(e.to_string().contains("restore-online.json"), "{e}");
    }
}
