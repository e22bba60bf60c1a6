//! The redo stream between extractor and collector: what is shipped, independent of how.
//!
//! ```text
//! stream (StreamId = one thread of one database incarnation)
//!   = log seq n ‖ log seq n+1 ‖ ...        each log from offset 0, file header included
//!   position  = StreamPos (log sequence, byte offset in that log file)
//!   commits   = CommitMark per commit found in the shipped blocks
//! extractor ──frame / message over transport, window──► collector;  verifier reads the same
//! ```
//!
//! Invariants: the extractor ships every byte of each log in order, as whole validated
//! blocks, and marks each commit in them, so the collector always knows the last commit
//! inside what it holds. These types are what the extractor, the collector and the verifier
//! share; the link that carries them is in submodules:
//! - [`frame`]: sans-IO framing (magic, version, kind, flags, length, frame number, CRC32C).
//! - [`message`]: Hello, Welcome, Data, Ack, Heartbeat, Reject, Error; checked encoding.
//! - [`transport`]: the async link over TLS 1.3 (or the legacy Blowfish channel): handshake,
//!   send/receive, heartbeats and dead-peer detection.
//! - [`window`]: the bounded in-flight window (backpressure on unacknowledged Data).
//! - [`latency`]: TRACE events that follow each chunk from the tailer to the Ack.

use std::fmt;

pub mod frame;
pub mod latency;
pub mod message;
pub mod transport;
pub mod window;

use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId, Xid};

/// One redo stream: a thread of one database incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Database id (`v$database.dbid`).
    pub db_id: DbId,
    /// Resetlogs id of the incarnation (changes at `OPEN RESETLOGS`).
    pub resetlogs_id: ResetlogsId,
    /// Redo thread (one per RAC instance).
    pub thread: ThreadId,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "db{}-rl{}-t{}",
            self.db_id, self.resetlogs_id, self.thread.0
        )
    }
}

/// A position in a stream: a byte offset in the log file of one sequence.
///
/// Orders by sequence, then offset. The position `(seq, 0)` is the start of that log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamPos {
    pub seq: LogSeq,
    /// Byte offset in that log file (block 0 starts at 0).
    pub offset: u64,
}

impl StreamPos {
    /// Where the next chunk starts after `len` bytes from here: `(seq + 1, 0)` when they end
    /// their log, else just after them. The one rule for a chunk's end on the wire, in the
    /// store and in the latency trace.
    pub fn after(self, len: u64, ends_log: bool) -> StreamPos {
        if ends_log {
            StreamPos {
                seq: LogSeq(self.seq.0.saturating_add(1)),
                offset: 0,
            }
        } else {
            StreamPos {
                seq: self.seq,
                offset: self.offset.saturating_add(len),
            }
        }
    }
}

impl fmt::Display for StreamPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq.0, self.offset)
    }
}

/// One commit (opcode 5.4, not a rollback) found in shipped redo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommitMark {
    /// The committing transaction.
    pub xid: Xid,
    /// Commit SCN (the SCN of the record holding the 5.4 vector).
    pub scn: Scn,
    /// Commit time, Unix seconds, when the redo carries it.
    pub time: Option<i64>,
    /// End of the block that holds the end of the commit record: shipping the stream up to
    /// this position makes the commit recoverable.
    pub end: StreamPos,
}
