//! Retention: which segments of a stream the collector may remove, decided from facts alone.
//!
//! ```text
//! retention_task.rs: facts (sealed manifest entries, [worm] pieces, clock, stream state)
//!   ──► plan (pure: no clock, no file system) ──► Store::retire(prefix of segments)
//! stream: seg 1 [seq 7 ... seq 8 end] seg 2 [seq 9 ...] seg 3 [... seq 9 end, seq 10 ...]
//!         └──── removable prefix ────┘ └── kept from the first segment holding a sequence
//!                                          that must stay (starts at offset 0 of a log)
//! ```
//!
//! Invariants: the segments are the only off-host copy of the current online log, and the
//! collector's copy of every older sequence until its archived log is safe. A sequence's
//! segments may go only when **all** of these hold:
//! - (a) the sequence's archived log is in WORM and verified: a sealed manifest entry of the
//!   watcher (whose chain verified) names this database, incarnation, thread and sequence,
//!   and the SCNs of the commits the collector stored for the sequence lie in its SCN range;
//! - (b) with `[worm]`, the collector's own pieces cover the whole sequence (its log end
//!   included) and are confirmed in WORM;
//! - (c) `keep` has passed since (a) and (b) first held (the later of the two times);
//! - the sequence is complete (its log end is durable) and is not the one being written.
//!
//! Removal is by **prefix**, since segments do not align with sequences: the oldest segments
//! up to (not including) the first holding a sequence that must stay, and only up to a
//! segment whose last chunk ends its log, so the first kept segment starts at offset 0 of a
//! log (what recovery and the rebuild require). The stream's last segment (the one written)
//! is never removed. Entry points: [`plan`], [`crate::store::Store::retire`].

use std::collections::BTreeMap;

use redovault::wire::StreamPos;
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn};

/// One segment of a stream, as retention sees it (in stream order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentView {
    /// Segment number.
    pub number: u64,
    /// Start of its first chunk (`None`: a segment with no chunk).
    pub first: Option<StreamPos>,
    /// End of its last chunk.
    pub last_end: Option<StreamPos>,
    /// Its last chunk ends its log.
    pub ends_log: bool,
    /// Bytes on disk.
    pub bytes: u64,
}

/// What is known about one sequence the collector holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqFacts {
    /// The sequence's log end is durable in the store.
    pub complete: bool,
    /// (a): when the archived log was recorded in WORM by the watcher's sealed manifest
    /// (Unix seconds), if a verified entry matches what the collector stored.
    pub archived_at: Option<i64>,
    /// (b): when the last piece covering the sequence was confirmed in WORM (Unix seconds),
    /// if the collector's pieces cover it to its log end.
    pub worm_at: Option<i64>,
}

/// The inputs of one decision for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFacts {
    /// Segments, oldest first; the last one is the segment being written.
    pub segments: Vec<SegmentView>,
    /// Facts per held sequence.
    pub seqs: BTreeMap<LogSeq, SeqFacts>,
    /// The sequence being written (the durable end's, unless that log ended).
    pub current: Option<LogSeq>,
}

/// The retention settings the decision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// How long (seconds) a sequence is kept after (a) and (b) first held.
    pub keep_secs: i64,
    /// `[worm]` is configured: (b) is required.
    pub worm_required: bool,
}

/// Why a sequence is held (or that it may go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// The sequence is being written, or its log end is not durable yet.
    Current,
    /// (a) does not hold: no verified sealed manifest entry matches it yet.
    NotArchived,
    /// (b) does not hold: the collector's pieces do not cover it in WORM yet.
    NotInWorm,
    /// (a) and (b) hold; kept until this time (Unix seconds).
    Retained {
        /// When (c) will hold.
        until: i64,
    },
    /// Every condition holds: removable once its segments are (see [`Plan::remove_through`]).
    Eligible,
}

impl SeqStatus {
    /// A short name for logs, metrics and `commits`.
    pub fn name(&self) -> &'static str {
        match self {
            SeqStatus::Current => "current",
            SeqStatus::NotArchived => "not_archived",
            SeqStatus::NotInWorm => "not_in_worm",
            SeqStatus::Retained { .. } => "retained",
            SeqStatus::Eligible => "eligible",
        }
    }
}

/// The decision for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Remove every segment numbered up to and including this one (`None`: nothing).
    pub remove_through: Option<u64>,
    /// Segments to remove, with their bytes.
    pub segments: Vec<(u64, u64)>,
    /// Sequences whose last segment goes (wholly removed).
    pub sequences: Vec<LogSeq>,
    /// The status of every held sequence.
    pub status: BTreeMap<LogSeq, SeqStatus>,
}

impl Plan {
    /// Bytes the plan frees.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|(_, b)| *b).sum()
    }
}

/// The status of one sequence at `now`.
pub fn seq_status(
    rule: &Rule,
    seq: LogSeq,
    f: &SeqFacts,
    current: Option<LogSeq>,
    now: i64,
) -> SeqStatus {
    if !f.complete || current == Some(seq) {
        return SeqStatus::Current;
    }
    let Some(archived) = f.archived_at else {
        return SeqStatus::NotArchived;
    };
    let since = if rule.worm_required {
        match f.worm_at {
            Some(w) => archived.max(w),
            None => return SeqStatus::NotInWorm,
        }
    } else {
        archived
    };
    let until = since.saturating_add(rule.keep_secs);
    if now >= until {
        SeqStatus::Eligible
    } else {
        SeqStatus::Retained { until }
    }
}

/// Decides what of one stream may be removed at `now` (see the module docs).
pub fn plan(rule: &Rule, facts: &StreamFacts, now: i64) -> Plan {
    let status: BTreeMap<LogSeq, SeqStatus> = facts
        .seqs
        .iter()
        .map(|(q, f)| (*q, seq_status(rule, *q, f, facts.current, now)))
        .collect();
    let eligible = |q: LogSeq| status.get(&q) == Some(&SeqStatus::Eligible);
    let mut out = Plan::default();
    let Some((_, older)) = facts.segments.split_last() else {
        out.status = status;
        return out;
    };
    // The longest removable prefix that ends at a log boundary.
    let mut cut: Option<usize> = None;
    // Whether the last segment with chunks seen so far ends its log.
    let mut at_boundary = true;
    for (i, s) in older.iter().enumerate() {
        if let (Some(first), Some(last)) = (s.first, s.last_end) {
            let all = (first.seq.0..=last.seq.0).all(|q| eligible(LogSeq(q)));
            if !all {
                break;
            }
            at_boundary = s.ends_log;
        }
        if at_boundary {
            cut = Some(i);
        }
    }
    let Some(cut) = cut else {
        out.status = status;
        return out;
    };
    let removed = &older[..=cut];
    out.remove_through = Some(removed[cut].number);
    out.segments = removed.iter().map(|s| (s.number, s.bytes)).collect();
    let mut seqs: Vec<LogSeq> = removed
        .iter()
        .filter_map(|s| Some((s.first?, s.last_end?)))
        .flat_map(|(a, b)| (a.seq.0..=b.seq.0).map(LogSeq))
        .collect();
    seqs.dedup();
    out.sequences = seqs;
    out.status = status;
    out
}

/// The SCNs of the commits the collector stored for one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredScns {
    /// Lowest commit SCN.
    pub min: Scn,
    /// Highest commit SCN.
    pub max: Scn,
}

/// What a manifest entry says of an archived log, for matching (see [`archived_matches`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchivedLog {
    pub db_id: DbId,
    /// Incarnation.
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
    pub sequence: LogSeq,
    pub first_scn: Scn,
    /// First SCN of the next log.
    pub next_scn: Scn,
}

/// Why a manifest entry does not stand for the collector's copy of a sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// Another database, incarnation, thread or sequence.
    #[error("the entry names another log")]
    Identity,
    /// A commit the collector stored lies outside the log's SCN range.
    #[error("stored commit SCNs {min}..={max} lie outside the archived log's {first}..={next}")]
    ScnRange {
        /// Lowest stored commit SCN.
        min: Scn,
        /// Highest stored commit SCN.
        max: Scn,
        /// The log's first SCN.
        first: Scn,
        /// The next log's first SCN.
        next: Scn,
    },
}

/// Checks that an archived log (from a verified manifest entry) is the log the collector
/// stored as `(stream, sequence)`: same identity, and every stored commit SCN within the
/// log's SCN range (a commit's SCN is at least the log's first SCN and at most the next
/// log's first SCN). A sequence without commits matches on identity alone.
pub fn archived_matches(
    log: &ArchivedLog,
    stream: redovault::wire::StreamId,
    sequence: LogSeq,
    scns: Option<StoredScns>,
) -> Result<(), Mismatch> {
    if log.db_id != stream.db_id
        || log.resetlogs_id != stream.resetlogs_id
        || log.thread != stream.thread.0
        || log.sequence != sequence
    {
        return Err(Mismatch::Identity);
    }
    if let Some(s) = scns
        && (s.min < log.first_scn || s.max > log.next_scn)
    {
        return Err(Mismatch::ScnRange {
            min: s.min,
            max: s.max,
            first: log.first_scn,
            next: log.next_scn,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault::wire::StreamId;
    use redovault_redo::position::ThreadId;

    fn pos(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    fn seg(number: u64, from: (u32, u64), to: (u32, u64), ends_log: bool) -> SegmentView {
        SegmentView {
            number,
            first: Some(pos(from.0, from.1)),
            last_end: Some(pos(to.0, to.1)),
            ends_log,
            bytes: 1000 * number,
        }
    }

    const DAY: i64 = 86_400;

    fn rule(worm: bool) -> Rule {
        Rule {
            keep_secs: 7 * DAY,
            worm_required: worm,
        }
    }

    fn done(archived: Option<i64>, worm: Option<i64>) -> SeqFacts {
        SeqFacts {
            complete: true,
            archived_at: archived,
            worm_at: worm,
        }
    }

    /// Seqs 1..=3 in segments 1 (seq 1), 2 (seq 2 and the start of 3), 3 (rest of 3), 4
    /// (seq 4, being written).
    fn stream(f: impl Fn(u32) -> SeqFacts) -> StreamFacts {
        let mut seqs = BTreeMap::new();
        for q in 1..=3 {
            seqs.insert(LogSeq(q), f(q));
        }
        seqs.insert(
            LogSeq(4),
            SeqFacts {
                complete: false,
                ..f(4)
            },
        );
        StreamFacts {
            segments: vec![
                seg(1, (1, 0), (1, 500), true),
                seg(2, (2, 0), (3, 100), false),
                seg(3, (3, 100), (3, 900), true),
                seg(4, (4, 0), (4, 50), false),
            ],
            seqs,
            current: Some(LogSeq(4)),
        }
    }

    #[test]
    fn nothing_goes_before_the_log_is_archived() {
        let f = stream(|_| done(None, Some(0)));
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, None);
        assert_eq!(p.status[&LogSeq(1)], SeqStatus::NotArchived);
        assert_eq!(p.status[&LogSeq(4)], SeqStatus::Current);
    }

    #[test]
    fn with_worm_nothing_goes_before_the_pieces_are_confirmed() {
        let f = stream(|_| done(Some(0), None));
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, None);
        assert_eq!(p.status[&LogSeq(2)], SeqStatus::NotInWorm);
        // Without [worm], (b) is not asked for.
        let p = plan(&rule(false), &f, 100 * DAY);
        assert_eq!(p.remove_through, Some(3));
    }

    #[test]
    fn retention_counts_from_the_later_of_archive_and_worm() {
        let f = stream(|_| done(Some(DAY), Some(2 * DAY)));
        let p = plan(&rule(true), &f, 9 * DAY - 1);
        assert_eq!(p.remove_through, None);
        assert_eq!(p.status[&LogSeq(1)], SeqStatus::Retained { until: 9 * DAY });
        let p = plan(&rule(true), &f, 9 * DAY);
        assert_eq!(p.status[&LogSeq(1)], SeqStatus::Eligible);
        assert_eq!(p.remove_through, Some(3));
        assert_eq!(p.segments, vec![(1, 1000), (2, 2000), (3, 3000)]);
        assert_eq!(p.sequences, vec![LogSeq(1), LogSeq(2), LogSeq(3)]);
        assert_eq!(p.bytes(), 6000);
    }

    #[test]
    fn a_sequence_spanning_segments_keeps_both_and_the_cut_stays_at_a_log_boundary() {
        // Seq 3 (in segments 2 and 3) not archived: segment 1 may go, not segment 2 (it
        // would leave the stream starting in the middle of seq 3).
        let f = stream(|q| done((q != 3).then_some(0), Some(0)));
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, Some(1));
        assert_eq!(p.sequences, vec![LogSeq(1)]);
        assert_eq!(p.status[&LogSeq(2)], SeqStatus::Eligible);
    }

    #[test]
    fn an_older_held_sequence_stops_the_prefix() {
        let f = stream(|q| done((q != 1).then_some(0), Some(0)));
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, None);
    }

    #[test]
    fn the_segment_being_written_never_goes_even_if_everything_is_eligible() {
        let mut f = stream(|_| done(Some(0), Some(0)));
        // Even a complete, archived last sequence: its segment is the one written.
        f.seqs.insert(LogSeq(4), done(Some(0), Some(0)));
        f.current = None;
        f.segments[3].ends_log = true;
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, Some(3));
        assert_eq!(p.status[&LogSeq(4)], SeqStatus::Eligible);
    }

    #[test]
    fn the_current_sequence_is_held_whatever_the_facts_say() {
        let r = rule(false);
        let f = done(Some(0), Some(0));
        assert_eq!(
            seq_status(&r, LogSeq(4), &f, Some(LogSeq(4)), 100 * DAY),
            SeqStatus::Current
        );
        let open = SeqFacts {
            complete: false,
            ..f
        };
        assert_eq!(
            seq_status(&r, LogSeq(3), &open, Some(LogSeq(4)), 100 * DAY),
            SeqStatus::Current
        );
    }

    #[test]
    fn empty_segments_go_with_the_prefix_only_at_a_boundary() {
        let mut f = stream(|_| done(Some(0), Some(0)));
        f.segments.insert(
            1,
            SegmentView {
                number: 0,
                first: None,
                last_end: None,
                ends_log: false,
                bytes: 64,
            },
        );
        for (i, s) in f.segments.iter_mut().enumerate() {
            s.number = i as u64 + 1;
        }
        let p = plan(&rule(true), &f, 100 * DAY);
        assert_eq!(p.remove_through, Some(4));
        assert_eq!(p.segments.len(), 4);
        // A lone segment: nothing to remove.
        let lone = StreamFacts {
            segments: vec![seg(1, (1, 0), (1, 10), true)],
            seqs: BTreeMap::from([(LogSeq(1), done(Some(0), Some(0)))]),
            current: None,
        };
        assert_eq!(plan(&rule(true), &lone, 100 * DAY).remove_through, None);
        assert_eq!(
            plan(
                &rule(true),
                &StreamFacts {
                    segments: vec![],
                    seqs: BTreeMap::new(),
                    current: None
                },
                0
            ),
            Plan::default()
        );
    }

    #[test]
    fn archived_logs_match_on_identity_and_scn_range() {
        let s = StreamId {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: ThreadId(2),
        };
        let log = ArchivedLog {
            db_id: DbId(7),
            resetlogs_id: ResetlogsId(9),
            thread: 2,
            sequence: LogSeq(5),
            first_scn: Scn(100),
            next_scn: Scn(200),
        };
        let scns = |a, b| {
            Some(StoredScns {
                min: Scn(a),
                max: Scn(b),
            })
        };
        assert_eq!(archived_matches(&log, s, LogSeq(5), scns(100, 200)), Ok(()));
        assert_eq!(archived_matches(&log, s, LogSeq(5), None), Ok(()));
        assert_eq!(
            archived_matches(&log, s, LogSeq(6), None),
            Err(Mismatch::Identity)
        );
        let other = StreamId {
            db_id: DbId(8),
            ..s
        };
        assert_eq!(
            archived_matches(&log, other, LogSeq(5), None),
            Err(Mismatch::Identity)
        );
        let t1 = StreamId {
            thread: ThreadId(1),
            ..s
        };
        assert_eq!(
            archived_matches(&log, t1, LogSeq(5), None),
            Err(Mismatch::Identity)
        );
        assert!(matches!(
            archived_matches(&log, s, LogSeq(5), scns(99, 150)),
            Err(Mismatch::ScnRange { .. })
        ));
        assert!(matches!(
            archived_matches(&log, s, LogSeq(5), scns(150, 201)),
            Err(Mismatch::ScnRange { .. })
        ));
    }
}
