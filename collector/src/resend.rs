//! A Data that starts before a stream's durable end: an idempotent resend, or divergent redo.
//!
//! Every collector is an independent copy of the extractor's stream and must never replace
//! bytes it acknowledged (several collectors per stream, issue 15). An extractor resends
//! acknowledged redo after a lost Ack or a reconnect; a forged or confused one may send
//! other bytes at an acknowledged position. So a Data that overlaps the durable redo is
//! compared with what the segments hold (read back and authenticated, [`read_range`]):
//!
//! ```text
//! Data [pos, end) vs held log [0, held)        (held: durable end of log pos.seq)
//!   pos > resume                        ─► Gap       (refused, as any Data out of place)
//!   log pos.seq not held                ─► NotHeld   (retired or never stored: cannot compare)
//!   overlap [pos, min(end, held)) differs ─► Divergent at the first differing byte
//!   runs past the end of a complete log, or
//!   ends the log before `held`          ─► Divergent at that offset (another history)
//!   end <= held (log end agrees)        ─► Covered   (Ack the durable end, store nothing)
//!   end >  held, log still open         ─► Extend    (append only [held, end))
//! ```
//!
//! The decision ([`place`]) is pure; [`check`] adds the read-back. Memory: the read-back
//! holds at most the overlap, never more than the Data itself. Commit marks of the overlap
//! are not compared: they are derived from the bytes, which are.

use redovault::crypto::keys::KeyRing;
use redovault::wire::StreamPos;

use crate::store::{StreamSnapshot, StreamStoreError, held_log, read_range};

/// What to do with the part of an overlapping Data beyond the held redo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rest {
    /// Nothing beyond: the Data is wholly held.
    Covered,
    /// New redo from offset `from` of the Data's log (the held end of an open log); the
    /// tail may be empty when only the Data's log end is new.
    Extend {
        /// Where the new part starts.
        from: StreamPos,
    },
    /// The Data contradicts the held log's end: it runs past the end of a complete log, or
    /// ends the log before bytes that are held.
    Contradicts {
        /// The first position where the two histories part.
        at: StreamPos,
        /// How.
        reason: String,
    },
}

/// Where a Data lies against a stream's durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// It starts where the stream continues: an ordinary append.
    Next,
    /// It starts after that: a gap (refused).
    Gap,
    /// Its log is not held (before the first retained log, or never stored): it cannot be
    /// compared (refused, not an alarm).
    NotHeld,
    /// It overlaps held redo: compare its first `compare` bytes, then see `rest`.
    Overlap {
        /// Bytes of the Data, from its start, that are held.
        compare: u64,
        /// What follows them.
        rest: Rest,
    },
}

/// Places a Data (`pos`, `len` bytes, ending its log or not) against a stream whose next
/// append starts at `resume`, given how much of log `pos.seq` is held (`held`: its durable
/// end offset and whether the log is complete, as [`held_log`] says).
pub fn place(
    pos: StreamPos,
    len: u64,
    log_end: bool,
    resume: StreamPos,
    held: Option<(u64, bool)>,
) -> Placement {
    if pos == resume {
        return Placement::Next;
    }
    if pos > resume {
        return Placement::Gap;
    }
    let Some((held_end, complete)) = held else {
        return Placement::NotHeld;
    };
    let at = |offset| StreamPos {
        seq: pos.seq,
        offset,
    };
    let end = pos.offset.saturating_add(len);
    let compare = end.min(held_end).saturating_sub(pos.offset);
    let rest = if end > held_end {
        if complete {
            Rest::Contradicts {
                at: at(held_end.max(pos.offset)),
                reason: format!(
                    "log {} ended at offset {held_end}; the Data runs to {end}",
                    pos.seq
                ),
            }
        } else {
            Rest::Extend { from: at(held_end) }
        }
    } else if log_end && end < held_end {
        Rest::Contradicts {
            at: at(end),
            reason: format!(
                "the Data ends log {} at offset {end}, but it is held up to {held_end}",
                pos.seq
            ),
        }
    } else if log_end && !complete {
        // Every byte held, and the log end is news: append it (an empty tail).
        Rest::Extend { from: at(held_end) }
    } else {
        Rest::Covered
    };
    Placement::Overlap { compare, rest }
}

/// The index of the first byte where `held` and `sent` differ (over their common length).
pub fn first_difference(held: &[u8], sent: &[u8]) -> Option<usize> {
    held.iter().zip(sent).position(|(a, b)| a != b)
}

/// An overlapping Data that agrees with the held redo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// Wholly held: store nothing, acknowledge the durable end.
    Covered {
        /// Bytes compared.
        duplicate: u64,
    },
    /// Held up to `from`, new after it: append the Data's bytes from `from` only.
    Extend {
        /// Bytes compared.
        duplicate: u64,
        /// Where the new part starts.
        from: StreamPos,
    },
}

/// Why an overlapping Data is refused.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// It starts after the durable end.
    #[error("Data at {pos} but the stream continues at {resume}")]
    Gap {
        /// Where it starts.
        pos: StreamPos,
        /// Where the stream continues.
        resume: StreamPos,
    },
    /// Its log is not held here: nothing to compare it with.
    #[error("Data at {pos}: log {} is not held here (retired or never stored), the stream continues at {resume}", pos.seq)]
    NotHeld {
        /// Where it starts.
        pos: StreamPos,
        /// Where the stream continues.
        resume: StreamPos,
    },
    /// Different bytes, or another end of the log, at an acknowledged position.
    #[error(
        "divergent redo: the Data at {pos} differs from the acknowledged redo at {at}: {reason}"
    )]
    Divergent {
        /// Where the Data starts.
        pos: StreamPos,
        /// The first differing position.
        at: StreamPos,
        /// How it differs.
        reason: String,
    },
    /// The held redo could not be read back (an I/O error, damage, retired meanwhile).
    #[error("the held redo could not be read back to compare: {0}")]
    Unreadable(#[source] StreamStoreError),
}

/// Compares a Data that starts before the stream's durable end (`snap`) with the held
/// redo, read back from the segments and authenticated with `keys`. `bytes` is the Data's
/// redo; `log_end`: it ends its log.
pub fn check(
    snap: &StreamSnapshot,
    keys: &KeyRing,
    pos: StreamPos,
    bytes: &[u8],
    log_end: bool,
) -> Result<Resend, ResendError> {
    let resume = snap.durable.resume_pos();
    let len = bytes.len() as u64;
    let (compare, rest) = match place(pos, len, log_end, resume, held_log(snap, pos.seq)) {
        Placement::Next => {
            return Ok(Resend::Extend {
                duplicate: 0,
                from: pos,
            });
        }
        Placement::Gap => return Err(ResendError::Gap { pos, resume }),
        Placement::NotHeld => return Err(ResendError::NotHeld { pos, resume }),
        Placement::Overlap { compare, rest } => (compare, rest),
    };
    if compare > 0 {
        let held = read_range(snap, keys, pos, compare).map_err(ResendError::Unreadable)?;
        let sent = bytes
            .get(..held.len())
            .ok_or_else(|| ResendError::Unreadable(short_read(snap, pos, compare)))?;
        if let Some(i) = first_difference(&held, sent) {
            return Err(ResendError::Divergent {
                pos,
                at: StreamPos {
                    seq: pos.seq,
                    offset: pos.offset + i as u64,
                },
                reason: "different bytes".into(),
            });
        }
    }
    match rest {
        Rest::Covered => Ok(Resend::Covered { duplicate: compare }),
        Rest::Extend { from } => Ok(Resend::Extend {
            duplicate: compare,
            from,
        }),
        Rest::Contradicts { at, reason } => Err(ResendError::Divergent { pos, at, reason }),
    }
}

fn short_read(snap: &StreamSnapshot, pos: StreamPos, len: u64) -> StreamStoreError {
    StreamStoreError::NotHeld {
        stream: snap.stream,
        pos,
        len,
        reason: "the comparison is longer than the Data".into(),
    }
}

#[cfg(test)]
#[path = "resend_tests.rs"]
mod tests;
