//! The collector's read-only status page: `GET /status` on the metrics listener, one JSON
//! document with, per stream, the last durable commit (SCN, XID, commit time), the durable
//! end, where the stream's copy in WORM ends and its last commit there, whether an extractor
//! session is up (and since when) and how many sessions and reconnects it had.
//!
//! Why beside the metrics: the DR console (`redovault-verifier console`) needs the XID and
//! the moments a session went up or down, which Prometheus gauges do not carry, and it must
//! not need Prometheus to be deployed. The page is built from what the session, writer and
//! WORM tasks record here as they go ([`StatusBoard`]); it changes nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;

use redovault_redo::position::{DbId, ResetlogsId};
use serde::{Deserialize, Serialize};

use crate::store::Durable;

/// Version of the status document (the console refuses another).
pub const STATUS_VERSION: u32 = 1;

/// The whole `GET /status` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorStatus {
    /// [`STATUS_VERSION`].
    pub version: u32,
    /// When the page was made (Unix seconds, the collector's clock).
    pub now: i64,
    /// When the collector started (Unix seconds).
    pub started: i64,
    /// Every stream the collector holds or has seen, by name (`db<dbid>-rl<rl>-t<thread>`).
    pub streams: BTreeMap<String, StreamStatus>,
}

/// A commit, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Commit SCN.
    pub scn: u64,
    /// The transaction (`usn.slot.sqn`), when known.
    pub xid: Option<String>,
    /// Commit time (Unix seconds, the database's clock), when the redo carries it.
    pub time: Option<i64>,
}

/// One stream's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    pub db_id: DbId,
    pub thread: u16,
    pub resetlogs_id: ResetlogsId,
    /// The durable end (`sequence:offset`), where a new session resumes.
    pub durable_end: Option<String>,
    /// The last durable commit (the recovery point held here).
    pub last_commit: Option<CommitInfo>,
    /// Where the stream's copy in WORM ends (`sequence:offset`), when `[worm]` is on.
    pub worm_end: Option<String>,
    pub worm_last_commit: Option<CommitInfo>,
    /// When the WORM position last moved (Unix seconds).
    pub worm_updated: Option<i64>,
    /// An extractor session is live.
    pub session_up: bool,
    /// When the session went up or down last (Unix seconds; None: no session since start).
    pub session_since: Option<i64>,
    /// Sessions since the collector started.
    pub sessions: u64,
    /// Sessions after the first since the collector started.
    pub reconnects: u64,
}

/// What the collector's tasks record for the status page.
#[derive(Debug)]
pub struct StatusBoard {
    started: i64,
    streams: Mutex<BTreeMap<String, StreamStatus>>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        StatusBoard::new()
    }
}

impl StatusBoard {
    /// An empty board, started now.
    pub fn new() -> StatusBoard {
        StatusBoard {
            started: unix_now(),
            streams: Mutex::new(BTreeMap::new()),
        }
    }

    fn update(&self, stream: &str, f: impl FnOnce(&mut StreamStatus)) {
        let mut m = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry(stream.to_string()).or_insert_with(|| {
            let (db_id, resetlogs_id, thread) = parse_name(stream);
            StreamStatus {
                db_id: DbId(db_id),
                resetlogs_id: ResetlogsId(resetlogs_id),
                thread,
                ..StreamStatus::default()
            }
        });
        f(e);
    }

    /// Records a stream's durable state (after every acknowledged write, and at start).
    pub fn set_durable(&self, stream: &str, d: &Durable) {
        self.update(stream, |s| {
            s.durable_end = Some(d.resume_pos().to_string());
            if let Some(c) = d.last_commit {
                s.last_commit = Some(CommitInfo {
                    scn: c.scn.0,
                    xid: Some(c.xid.to_string()),
                    time: c.time,
                });
            }
        });
    }

    /// Records a session going up (`reconnect`: not the stream's first since start) or down.
    pub fn set_session(&self, stream: &str, up: bool, reconnect: bool) {
        let now = unix_now();
        self.update(stream, |s| {
            if up {
                s.sessions += 1;
                if reconnect {
                    s.reconnects += 1;
                }
            }
            if s.session_up != up || s.session_since.is_none() {
                s.session_since = Some(now);
            }
            s.session_up = up;
        });
    }

    /// Records where the stream's copy in WORM ends and its last commit there.
    pub fn set_worm(&self, stream: &str, end: String, last: Option<CommitInfo>) {
        let now = unix_now();
        self.update(stream, |s| {
            s.worm_end = Some(end);
            if last.is_some() {
                s.worm_last_commit = last;
            }
            s.worm_updated = Some(now);
        });
    }

    /// The status document now.
    pub fn snapshot(&self) -> CollectorStatus {
        let m = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        CollectorStatus {
            version: STATUS_VERSION,
            now: unix_now(),
            started: self.started,
            streams: m.clone(),
        }
    }

    /// The status document as JSON (what `GET /status` answers).
    pub fn render(&self) -> String {
        serde_json::to_string_pretty(&self.snapshot()).unwrap_or_else(|_| "{}".into())
    }
}

/// (db id, resetlogs id, thread) of a stream name; zeros for a name that is not one (names
/// come from the collector's own stream ids, so this does not happen).
fn parse_name(name: &str) -> (u32, u32, u16) {
    crate::store::parse_stream_dir_name(name)
        .map_or((0, 0, 0), |s| (s.db_id.0, s.resetlogs_id.0, s.thread.0))
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_count_reconnects_and_keep_the_moment_of_each_change() {
        let b = StatusBoard::new();
        let name = "db7-rl100-t1";
        b.set_session(name, true, false);
        let first = b.snapshot().streams[name].clone();
        assert!(first.session_up);
        assert_eq!(
            (first.db_id, first.resetlogs_id, first.thread),
            (DbId(7), ResetlogsId(100), 1)
        );
        assert_eq!((first.sessions, first.reconnects), (1, 0));
        b.set_session(name, false, false);
        b.set_session(name, true, true);
        let s = b.snapshot().streams[name].clone();
        assert!(s.session_up);
        assert_eq!((s.sessions, s.reconnects), (2, 1));
        assert!(s.session_since.is_some());
    }

    #[test]
    fn worm_keeps_its_last_commit_when_a_piece_has_none() {
        let b = StatusBoard::new();
        let c = CommitInfo {
            scn: 42,
            xid: Some("1.2.3".into()),
            time: Some(1_700_000_000),
        };
        b.set_worm("db1-rl2-t1", "5:1024".into(), Some(c.clone()));
        b.set_worm("db1-rl2-t1", "5:2048".into(), None);
        let s = &b.snapshot().streams["db1-rl2-t1"];
        assert_eq!(s.worm_end.as_deref(), Some("5:2048"));
        assert_eq!(s.worm_last_commit.as_ref(), Some(&c));
        let back: CollectorStatus = serde_json::from_str(&b.render()).unwrap();
        assert_eq!(back.version, STATUS_VERSION);
        assert_eq!(back.streams["db1-rl2-t1"], *s);
    }
}
