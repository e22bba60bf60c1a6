//! Why the tailer stopped: every error names the stream and the file (and block) at fault.

use std::path::PathBuf;
use std::time::Duration;

use redovault::wire::{StreamId, StreamPos};
use redovault_redo::{LogSeq, ThreadId};

/// Why the tailer cannot go on. Each names the stream, and the files and blocks involved.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The tail settings are out of range.
    #[error("tail settings: {0}")]
    Config(String),
    /// No group holds a log of the thread.
    #[error("no online log of thread {thread} found: {detail}")]
    NoCurrentLog {
        /// The thread asked for.
        thread: ThreadId,
        /// What the groups hold.
        detail: String,
    },
    /// A block is bad in every copy of its log (online members and archived copies).
    #[error(
        "stream {stream}: block {block} (byte offset {offset}) of sequence {seq} is damaged in every copy: {}",
        copies_text(.copies)
    )]
    Damaged {
        stream: StreamId,
        seq: LogSeq,
        block: u32,
        /// Byte offset of the block in the log.
        offset: u64,
        /// Every copy tried, with what was found there.
        copies: Vec<(PathBuf, String)>,
    },
    /// The online log was reused before it was read, and no valid archived copy appeared.
    #[error(
        "stream {stream}: sequence {seq} was overwritten online before byte {offset} was read, and no valid archived copy appeared in {dirs:?} within {waited:?}{}",
        rejected_text(.rejected)
    )]
    SequenceLost {
        stream: StreamId,
        seq: LogSeq,
        /// First byte not shipped.
        offset: u64,
        /// Archive destinations searched.
        dirs: Vec<PathBuf>,
        /// How long the tailer waited.
        waited: Duration,
        /// Archived copies found but rejected, with why.
        rejected: Vec<(PathBuf, String)>,
    },
    /// The start position does not fit the log (not a block boundary, or beyond its end).
    #[error("stream {stream}: cannot start at {pos}: {detail}")]
    BadPosition {
        stream: StreamId,
        /// The position.
        pos: StreamPos,
        /// Why.
        detail: String,
    },
    /// A log contradicts itself or what was already shipped.
    #[error("stream {stream}: {path}: {detail}")]
    Inconsistent {
        stream: StreamId,
        path: PathBuf,
        /// What contradicts what.
        detail: String,
    },
}

pub(super) fn copies_text(copies: &[(PathBuf, String)]) -> String {
    copies
        .iter()
        .map(|(p, s)| format!("{}: {s}", p.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

pub(super) fn rejected_text(rejected: &[(PathBuf, String)]) -> String {
    if rejected.is_empty() {
        String::new()
    } else {
        format!(" (rejected: {})", copies_text(rejected))
    }
}

/// Why one copy of a log (an online member or the archived copy) could not be read: named
/// beside the copy in [`TailError::Damaged`], and a read that fails is judged as a truncated
/// block, so the next copy is tried.
#[derive(Debug, thiserror::Error)]
pub(super) enum CopyReadError {
    /// The group no longer has that member (the online logs changed).
    #[error("no such member")]
    NoSuchMember,
    /// The member's file cannot be opened.
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    /// The log is read online: there is no archived copy to read.
    #[error("no archived copy open")]
    NoArchive,
    /// The read itself failed.
    #[error("read error: {0}")]
    Read(std::io::Error),
}
