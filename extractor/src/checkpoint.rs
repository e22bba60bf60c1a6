//! The extractor's durable checkpoint: per stream, the position up to which the collector has
//! acknowledged the redo, and the last commit inside it.
//!
//! ```text
//! Ack / Welcome resume ─► CheckpointStore::advance ─► write_atomic (tmp, fsync, rename,
//!   fsync dir) ─► DIR/checkpoint-db<dbid>-rl<resetlogs>-t<thread>.json
//! restart ─► read, SHA-256 of the body checked ─► tailer resumes at Checkpoint::pos
//! ```
//!
//! ```json
//! {"checkpoint":{"format":"redovault-extractor-checkpoint","version":1,
//!   "stream":{"db_id":1497016494,"resetlogs_id":1224959854,"thread":1},
//!   "pos":{"seq":16,"offset":5120},
//!   "last_commit":{"xid":{"usn":4,"slot":16,"sqn":735},"scn":2267718,"time":1772847640,
//!                  "end":{"seq":16,"offset":3584}}},
//!  "sha256":"…"}
//! ```
//!
//! Invariants: the checkpoint moves only on the collector's acknowledgement
//! ([`CheckpointStore::advance`], called by the network part) and never backwards; a crash
//! leaves the old or the new file, never a mix ([`redovault::durable::write_atomic`]); a
//! damaged file (versioned content, SHA-256 of its body) is refused with an error naming it
//! instead of being read as a wrong position. All calls block (fsync): async callers use
//! `spawn_blocking`.

use redovault_redo::position::{DbId, ResetlogsId};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use redovault::durable::write_atomic;
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::{LogSeq, Scn, ThreadId, Xid};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `format` string of a checkpoint file.
pub const FORMAT: &str = "redovault-extractor-checkpoint";
/// The checkpoint format version this build writes and reads.
pub const VERSION: u32 = 1;

/// What the collector has acknowledged of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub stream: StreamId,
    /// Everything before this position is durable at the collector; the tailer resumes here.
    pub pos: StreamPos,
    /// The last commit whose end is at or before `pos`, if any is known.
    pub last_commit: Option<CommitMark>,
}

/// A checkpoint that cannot be read or moved; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading, writing or listing failed.
    #[error("checkpoint {path}: cannot {op}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        source: io::Error,
    },
    /// The file is not a valid checkpoint (not JSON, wrong format, checksum mismatch).
    #[error("checkpoint {path} is corrupt: {detail}")]
    Corrupt {
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer format version.
    #[error("checkpoint {path} has format version {found}; this build reads version {VERSION}")]
    Version {
        path: PathBuf,
        /// Version found.
        found: u32,
    },
    /// The file holds another stream than the one asked for.
    #[error("checkpoint {path} is for stream {found}, not {expected}")]
    WrongStream {
        path: PathBuf,
        /// Stream asked for.
        expected: StreamId,
        /// Stream in the file.
        found: StreamId,
    },
    /// An advance would move the checkpoint backwards.
    #[error("checkpoint {path}: refusing to move back from {from} to {to}")]
    Backwards {
        path: PathBuf,
        /// Current position (or last commit end).
        from: StreamPos,
        /// Requested position (or last commit end).
        to: StreamPos,
    },
    /// The commit given to an advance ends after the position.
    #[error("checkpoint {path}: commit ending at {commit_end} is beyond position {pos}")]
    CommitBeyondPosition {
        path: PathBuf,
        commit_end: StreamPos,
        /// The position.
        pos: StreamPos,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    checkpoint: Body,
    sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    format: String,
    version: u32,
    stream: StreamJ,
    pos: PosJ,
    last_commit: Option<CommitJ>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamJ {
    db_id: DbId,
    resetlogs_id: ResetlogsId,
    thread: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PosJ {
    seq: u32,
    offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct XidJ {
    usn: u16,
    slot: u16,
    sqn: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitJ {
    xid: XidJ,
    scn: u64,
    time: Option<i64>,
    end: PosJ,
}

impl From<StreamPos> for PosJ {
    fn from(p: StreamPos) -> Self {
        PosJ {
            seq: p.seq.0,
            offset: p.offset,
        }
    }
}

impl From<PosJ> for StreamPos {
    fn from(p: PosJ) -> Self {
        StreamPos {
            seq: LogSeq(p.seq),
            offset: p.offset,
        }
    }
}

fn to_body(c: &Checkpoint) -> Body {
    Body {
        format: FORMAT.into(),
        version: VERSION,
        stream: StreamJ {
            db_id: c.stream.db_id,
            resetlogs_id: c.stream.resetlogs_id,
            thread: c.stream.thread.0,
        },
        pos: c.pos.into(),
        last_commit: c.last_commit.map(|m| CommitJ {
            xid: XidJ {
                usn: m.xid.usn,
                slot: m.xid.slot,
                sqn: m.xid.sqn,
            },
            scn: m.scn.0,
            time: m.time,
            end: m.end.into(),
        }),
    }
}

fn from_body(b: &Body) -> Checkpoint {
    Checkpoint {
        stream: StreamId {
            db_id: b.stream.db_id,
            resetlogs_id: b.stream.resetlogs_id,
            thread: ThreadId(b.stream.thread),
        },
        pos: b.pos.into(),
        last_commit: b.last_commit.map(|m| CommitMark {
            xid: Xid {
                usn: m.xid.usn,
                slot: m.xid.slot,
                sqn: m.xid.sqn,
            },
            scn: Scn(m.scn),
            time: m.time,
            end: m.end.into(),
        }),
    }
}

fn body_hash(b: &Body) -> String {
    // Serializing a typed struct is deterministic: the same body always hashes the same.
    let json = serde_json::to_vec(b).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

/// Encodes a checkpoint as the bytes of its file.
pub fn encode(c: &Checkpoint) -> Vec<u8> {
    let checkpoint = to_body(c);
    let sha256 = body_hash(&checkpoint);
    let mut out = serde_json::to_vec_pretty(&Stored { checkpoint, sha256 }).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Decodes the bytes of a checkpoint file; `path` names it in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |detail: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        detail,
    };
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    let body = v.get("checkpoint");
    let format = body.and_then(|b| b.get("format")).and_then(|f| f.as_str());
    if format != Some(FORMAT) {
        return Err(corrupt(format!("not a {FORMAT} file")));
    }
    let version = body
        .and_then(|b| b.get("version"))
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| corrupt("no version".into()))?;
    if version != u64::from(VERSION) {
        return Err(CheckpointError::Version {
            path: path.to_path_buf(),
            found: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    let stored: Stored = serde_json::from_value(v).map_err(|e| corrupt(e.to_string()))?;
    let want = body_hash(&stored.checkpoint);
    if stored.sha256 != want {
        return Err(corrupt(format!(
            "SHA-256 of the body is {want}, the file says {}",
            stored.sha256
        )));
    }
    let c = from_body(&stored.checkpoint);
    if let Some(m) = c.last_commit
        && m.end > c.pos
    {
        return Err(corrupt(format!(
            "last commit ends at {} beyond position {}",
            m.end, c.pos
        )));
    }
    Ok(c)
}

/// Reads the checkpoint file at `path`.
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        op: "read",
        source,
    })?;
    decode(&bytes, path)
}

/// The file name of a stream's checkpoint.
pub fn file_name(stream: StreamId) -> String {
    format!("checkpoint-{stream}.json")
}

/// Every checkpoint in `dir` (files named `checkpoint-*.json`), sorted by stream; a missing
/// directory holds none.
pub fn list(dir: &Path) -> Result<Vec<Checkpoint>, CheckpointError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CheckpointError::Io {
                path: dir.to_path_buf(),
                op: "list",
                source,
            });
        }
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            op: "list",
            source,
        })?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("checkpoint-") && name.ends_with(".json") {
            out.push(load(&e.path())?);
        }
    }
    out.sort_by_key(|c| c.stream);
    Ok(out)
}

/// The checkpoint of one stream, held in memory and on disk.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    stream: StreamId,
    current: Option<Checkpoint>,
}

impl CheckpointStore {
    /// Opens the checkpoint of `stream` in `dir` (created if missing); loads it if it exists.
    pub fn open(dir: &Path, stream: StreamId) -> Result<CheckpointStore, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
            path: dir.to_path_buf(),
            op: "create directory",
            source,
        })?;
        let path = dir.join(file_name(stream));
        let current = match fs::metadata(&path) {
            Ok(_) => Some(load(&path)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(CheckpointError::Io {
                    path,
                    op: "stat",
                    source,
                });
            }
        };
        if let Some(c) = current
            && c.stream != stream
        {
            return Err(CheckpointError::WrongStream {
                path,
                expected: stream,
                found: c.stream,
            });
        }
        Ok(CheckpointStore {
            path,
            stream,
            current,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// The checkpoint, if one was ever written.
    pub fn get(&self) -> Option<Checkpoint> {
        self.current
    }

    /// Moves the checkpoint to `pos` (and `last_commit`, when given; otherwise the previous
    /// one is kept) and makes it durable before returning. Returns `Ok(false)` when nothing
    /// changed. Refuses to move the position or the last commit backwards, and a commit that
    /// ends after `pos`; on any error the checkpoint is unchanged.
    pub fn advance(
        &mut self,
        pos: StreamPos,
        last_commit: Option<CommitMark>,
    ) -> Result<bool, CheckpointError> {
        let prev = self.current;
        if let Some(m) = last_commit
            && m.end > pos
        {
            return Err(CheckpointError::CommitBeyondPosition {
                path: self.path.clone(),
                commit_end: m.end,
                pos,
            });
        }
        if let Some(p) = prev {
            if pos < p.pos {
                return Err(CheckpointError::Backwards {
                    path: self.path.clone(),
                    from: p.pos,
                    to: pos,
                });
            }
            if let (Some(old), Some(new)) = (p.last_commit, last_commit)
                && new.end < old.end
            {
                return Err(CheckpointError::Backwards {
                    path: self.path.clone(),
                    from: old.end,
                    to: new.end,
                });
            }
        }
        let next = Checkpoint {
            stream: self.stream,
            pos,
            last_commit: last_commit.or(prev.and_then(|p| p.last_commit)),
        };
        if prev == Some(next) {
            return Ok(false);
        }
        write_atomic(&self.path, &encode(&next)).map_err(|source| CheckpointError::Io {
            path: self.path.clone(),
            op: "write",
            source,
        })?;
        self.current = Some(next);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamId {
        StreamId {
            db_id: DbId(1_497_016_494),
            resetlogs_id: ResetlogsId(1_224_959_854),
            thread: ThreadId(1),
        }
    }

    fn pos(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    fn commit(end: StreamPos, sqn: u32) -> CommitMark {
        CommitMark {
            xid: Xid {
                usn: 4,
                slot: 16,
                sqn,
            },
            scn: Scn(2_267_718 + u64::from(sqn)),
            time: Some(1_772_847_640),
            end,
        }
    }

    #[test]
    fn advances_durably_and_reloads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let mut s = CheckpointStore::open(&dir, stream()).unwrap();
        assert_eq!(s.get(), None);
        assert!(s.advance(pos(16, 2048), None).unwrap());
        let c = commit(pos(16, 3584), 735);
        assert!(s.advance(pos(16, 5120), Some(c)).unwrap());
        assert!(
            !s.advance(pos(16, 5120), None).unwrap(),
            "no change, no write"
        );
        // A later advance without a commit keeps the last one.
        assert!(s.advance(pos(17, 0), None).unwrap());
        let again = CheckpointStore::open(&dir, stream()).unwrap();
        let got = again.get().unwrap();
        assert_eq!(got.pos, pos(17, 0));
        assert_eq!(got.last_commit, Some(c));
        assert_eq!(list(&dir).unwrap(), vec![got]);
        assert!(
            s.path()
                .ends_with("checkpoint-db1497016494-rl1224959854-t1.json")
        );
        // Nothing else left in the directory (no temporary files).
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn never_moves_backwards() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = CheckpointStore::open(tmp.path(), stream()).unwrap();
        s.advance(pos(5, 8192), Some(commit(pos(5, 4096), 1)))
            .unwrap();
        let e = s.advance(pos(5, 4096), None).unwrap_err();
        assert!(matches!(e, CheckpointError::Backwards { .. }), "{e}");
        let e = s.advance(pos(4, 99_999), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("refusing to move back from 5:8192 to 4:99999"),
            "{e}"
        );
        let e = s
            .advance(pos(6, 0), Some(commit(pos(5, 2048), 2)))
            .unwrap_err();
        assert!(matches!(e, CheckpointError::Backwards { .. }), "{e}");
        let e = s
            .advance(pos(6, 0), Some(commit(pos(6, 512), 3)))
            .unwrap_err();
        assert!(
            matches!(e, CheckpointError::CommitBeyondPosition { .. }),
            "{e}"
        );
        assert_eq!(s.get().unwrap().pos, pos(5, 8192));
        assert_eq!(load(s.path()).unwrap().pos, pos(5, 8192));
    }

    #[test]
    fn corrupt_files_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = CheckpointStore::open(tmp.path(), stream()).unwrap();
        s.advance(pos(9, 1024 * 512), Some(commit(pos(9, 1000 * 512), 7)))
            .unwrap();
        let path = s.path().to_path_buf();
        let good = fs::read(&path).unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        let check = |bytes: &[u8], want: &str| {
            fs::write(&path, bytes).unwrap();
            let e = CheckpointStore::open(tmp.path(), stream()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(want), "{msg}");
        };
        // A changed digit: valid JSON, wrong position: the hash catches it.
        check(text.replace("524288", "524289").as_bytes(), "SHA-256");
        check(&good[..good.len() / 2], "not JSON");
        check(b"", "not JSON");
        check(b"{\"x\":1}", "not a redovault-extractor-checkpoint");
        check(
            text.replace("\"version\": 1", "\"version\": 2").as_bytes(),
            "version 2",
        );
        check(
            text.replace("\"thread\": 1", "\"thread\": 1, \"extra\": 0")
                .as_bytes(),
            "extra",
        );
        // Another stream's checkpoint under this stream's name.
        let mut other = stream();
        other.thread = ThreadId(2);
        let c = Checkpoint {
            stream: other,
            pos: pos(1, 0),
            last_commit: None,
        };
        check(&encode(&c), "is for stream db1497016494-rl1224959854-t2");
        fs::write(&path, &good).unwrap();
        assert!(CheckpointStore::open(tmp.path(), stream()).is_ok());
    }
}
