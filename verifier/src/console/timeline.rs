//! One redo thread's sequences as a timeline: which are archived (the sealed manifest in
//! WORM), streamed (the collector's stream chain in WORM, and on to where the collector's
//! durable copy ends), verified by the last audit, missing (gap) or altered (tampered).
//!
//! Pure: the sources' facts in, runs of consecutive sequences of the same kind out. It never
//! walks the sequences one by one (a manifest naming sequence 1 and sequence 4 000 000 000
//! is two runs and a gap, not a loop of four billion): every fact changes only at a few
//! boundaries, and the runs are built between them.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::report::{CellState, ThreadTimeline};

/// Runs kept per thread (the newest; the older ones are counted in `omitted`).
pub const MAX_RUNS: usize = 400;

/// What a sequence is; the later the worse (a run shows the worst that holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqState {
    /// Held by the stream (WORM chain or collector) and not archived yet: the online log.
    Streamed,
    /// In the sealed manifest; not (yet) checked by an audit.
    Archived,
    /// Archived, and the last audit found it as recorded.
    Verified,
    /// Missing, and an operator acknowledged it (lost for good, kept visible).
    AcknowledgedGap,
    /// Missing: a hole in the archive (between its first and last sequence; the stream
    /// does not make up for it, a restore needs the archived log), a sequence held nowhere,
    /// or the audit says so.
    Gap,
    /// The last audit found it altered or missing from the store.
    Tampered,
}

impl SeqState {
    /// The word on the page.
    pub fn label(self) -> &'static str {
        match self {
            SeqState::Streamed => "streamed",
            SeqState::Archived => "archived",
            SeqState::Verified => "verified",
            SeqState::AcknowledgedGap => "acknowledged gap",
            SeqState::Gap => "gap",
            SeqState::Tampered => "tampered",
        }
    }

    /// Its CSS class and `data-state`.
    pub fn class(self) -> &'static str {
        match self {
            SeqState::Streamed => "streamed",
            SeqState::Archived => "archived",
            SeqState::Verified => "verified",
            SeqState::AcknowledgedGap => "acknowledged_gap",
            SeqState::Gap => "gap",
            SeqState::Tampered => "tampered",
        }
    }
}

/// Consecutive sequences with the same facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// First sequence.
    pub from: u32,
    /// Last sequence (inclusive).
    pub to: u32,
    /// What they are.
    pub state: SeqState,
    /// In the sealed manifest.
    pub archived: bool,
    /// Held by the stream.
    pub streamed: bool,
    /// Found as recorded by the last audit.
    pub verified: bool,
}

/// One thread's timeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The runs, oldest first.
    pub runs: Vec<Run>,
    /// Sequences per state (of every run, the omitted ones too).
    pub counts: BTreeMap<SeqState, u64>,
    /// Older runs left out (more than [`MAX_RUNS`]).
    pub omitted: usize,
}

/// What the sources say about one thread of one incarnation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inputs<'a> {
    /// Sequences in the sealed archive manifest.
    pub archived: Option<&'a BTreeSet<u32>>,
    /// Sequence ranges (inclusive) the stream's sealed chain in WORM covers.
    pub streamed: &'a [(u32, u32)],
    /// The sequence where the collector's durable copy ends (its `durable_end`).
    pub collector_seq: Option<u32>,
    /// The thread's timeline in the last audit report.
    pub audit: Option<&'a ThreadTimeline>,
    /// Sequences a tampering finding of the last audit names.
    pub tampered: &'a [u32],
}

/// The facts of one sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    archived: bool,
    streamed: bool,
    audit: Option<CellState>,
    tampered: bool,
    /// Between the first and the last archived sequence: a hole in the archive.
    inside_archive: bool,
}

impl Facts {
    fn state(&self) -> SeqState {
        if self.tampered || self.audit == Some(CellState::Tampered) {
            SeqState::Tampered
        } else if self.audit == Some(CellState::AcknowledgedGap) {
            SeqState::AcknowledgedGap
        } else if self.audit == Some(CellState::Gap)
            || (!self.archived && self.inside_archive)
            || (!self.archived && !self.streamed)
        {
            SeqState::Gap
        } else if self.archived && self.audit == Some(CellState::Verified) {
            SeqState::Verified
        } else if self.archived {
            SeqState::Archived
        } else {
            SeqState::Streamed
        }
    }
}

/// Merges sequence ranges (inclusive): sorted, overlapping and adjacent ones joined; a range
/// given backwards is turned round.
pub fn merge_ranges(mut v: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    for r in v.iter_mut() {
        if r.0 > r.1 {
            *r = (r.1, r.0);
        }
    }
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if u64::from(a) <= u64::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The sequence of a `sequence:offset` position (the collector's `durable_end`).
pub fn position_seq(pos: &str) -> Option<u32> {
    pos.split(':').next()?.trim().parse().ok()
}

/// Builds the timeline (see the module docs).
pub fn build(inp: &Inputs<'_>) -> Timeline {
    let empty = BTreeSet::new();
    let archived = inp.archived.unwrap_or(&empty);
    let tampered: BTreeSet<u32> = inp.tampered.iter().copied().collect();
    let audit: BTreeMap<u32, CellState> = inp
        .audit
        .map(|t| t.cells.iter().map(|c| (c.sequence, c.state)).collect())
        .unwrap_or_default();
    // The stream: its chain in WORM, then on to where the collector's copy ends.
    let mut ranges = inp.streamed.to_vec();
    if let Some(c) = inp.collector_seq {
        let end = ranges.iter().map(|r| r.0.max(r.1)).max();
        ranges.push(match end {
            Some(e) if e < c => (e + 1, c),
            _ => (c, c),
        });
    }
    let streamed = merge_ranges(ranges);
    let (first_archived, last_archived) = (archived.first().copied(), archived.last().copied());

    // Every fact changes only at these sequences (u64: `u32::MAX + 1` is an end).
    let mut bounds: BTreeSet<u64> = BTreeSet::new();
    let explicit = archived
        .iter()
        .chain(audit.keys())
        .chain(tampered.iter())
        .copied();
    for s in explicit {
        bounds.insert(u64::from(s));
        bounds.insert(u64::from(s) + 1);
    }
    for (a, b) in &streamed {
        bounds.insert(u64::from(*a));
        bounds.insert(u64::from(*b) + 1);
    }
    let (Some(&first), Some(&end)) = (bounds.first(), bounds.last()) else {
        return Timeline::default();
    };
    let facts_at = |s: u32| Facts {
        archived: archived.contains(&s),
        streamed: {
            let i = streamed.partition_point(|r| r.1 < s);
            streamed.get(i).is_some_and(|r| r.0 <= s)
        },
        audit: audit.get(&s).copied(),
        tampered: tampered.contains(&s),
        inside_archive: first_archived.is_some_and(|f| f < s)
            && last_archived.is_some_and(|l| s < l),
    };
    let mut runs: Vec<Run> = Vec::new();
    let mut counts: BTreeMap<SeqState, u64> = BTreeMap::new();
    let points: Vec<u64> = bounds.range(first..=end).copied().collect();
    for w in points.windows(2) {
        let (from, to) = (w[0] as u32, (w[1] - 1) as u32);
        let f = facts_at(from);
        let state = f.state();
        *counts.entry(state).or_default() += u64::from(to - from) + 1;
        match runs.last_mut() {
            Some(r)
                if r.state == state
                    && r.archived == f.archived
                    && r.streamed == f.streamed
                    && r.verified == (f.audit == Some(CellState::Verified))
                    && u64::from(r.to) + 1 == u64::from(from) =>
            {
                r.to = to
            }
            _ => runs.push(Run {
                from,
                to,
                state,
                archived: f.archived,
                streamed: f.streamed,
                verified: f.audit == Some(CellState::Verified),
            }),
        }
    }
    let omitted = runs.len().saturating_sub(MAX_RUNS);
    runs.drain(..omitted);
    Timeline {
        runs,
        counts,
        omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TimelineCell;
    use redovault_redo::position::ResetlogsId;

    fn set(v: &[u32]) -> BTreeSet<u32> {
        v.iter().copied().collect()
    }

    fn audit(cells: &[(u32, CellState)]) -> ThreadTimeline {
        ThreadTimeline {
            resetlogs_id: ResetlogsId(1),
            thread: 1,
            cells: cells
                .iter()
                .map(|(s, st)| TimelineCell {
                    sequence: *s,
                    state: *st,
                })
                .collect(),
        }
    }

    fn shape(t: &Timeline) -> Vec<(u32, u32, SeqState)> {
        t.runs.iter().map(|r| (r.from, r.to, r.state)).collect()
    }

    #[test]
    fn archived_verified_then_archived_then_streamed() {
        let archived = set(&[10, 11, 12, 13]);
        let a = audit(&[
            (10, CellState::Verified),
            (11, CellState::Verified),
            (12, CellState::Verified),
        ]);
        let t = build(&Inputs {
            archived: Some(&archived),
            streamed: &[(12, 14)],
            collector_seq: Some(15),
            audit: Some(&a),
            ..Inputs::default()
        });
        assert_eq!(
            shape(&t),
            vec![
                (10, 11, SeqState::Verified),
                (12, 12, SeqState::Verified),
                (13, 13, SeqState::Archived),
                (14, 15, SeqState::Streamed),
            ]
        );
        // 12 is archived, verified and streamed: one run of its own (the facts differ).
        assert!(t.runs[1].streamed && t.runs[1].archived && t.runs[1].verified);
        assert_eq!(t.counts[&SeqState::Verified], 3);
        assert_eq!(t.counts[&SeqState::Streamed], 2);
        assert_eq!(t.omitted, 0);
    }

    #[test]
    fn a_sequence_missing_from_the_archive_is_a_gap_even_when_the_audit_is_older() {
        let archived = set(&[1, 2, 5, 6]);
        let a = audit(&[(1, CellState::Verified), (2, CellState::Verified)]);
        let t = build(&Inputs {
            archived: Some(&archived),
            audit: Some(&a),
            ..Inputs::default()
        });
        assert_eq!(
            shape(&t),
            vec![
                (1, 2, SeqState::Verified),
                (3, 4, SeqState::Gap),
                (5, 6, SeqState::Archived),
            ]
        );
        assert_eq!(t.counts[&SeqState::Gap], 2);
    }

    #[test]
    fn the_audits_gap_tampered_and_acknowledged_cells_win() {
        let archived = set(&[1, 2, 3, 6]);
        let a = audit(&[
            (1, CellState::Verified),
            (2, CellState::Tampered),
            (3, CellState::Verified),
            (4, CellState::AcknowledgedGap),
            (5, CellState::Gap),
            (6, CellState::Verified),
        ]);
        let t = build(&Inputs {
            archived: Some(&archived),
            audit: Some(&a),
            // A tampering finding (archive differs from stream) on a verified sequence.
            tampered: &[3],
            ..Inputs::default()
        });
        assert_eq!(
            shape(&t),
            vec![
                (1, 1, SeqState::Verified),
                // 3: verified by the fast check, but its redo differs from the stream's.
                (2, 2, SeqState::Tampered),
                (3, 3, SeqState::Tampered),
                (4, 4, SeqState::AcknowledgedGap),
                (5, 5, SeqState::Gap),
                (6, 6, SeqState::Verified),
            ]
        );
        assert_eq!(t.counts[&SeqState::Tampered], 2);
    }

    #[test]
    fn a_hole_in_the_stream_above_the_archive_is_a_gap() {
        let archived = set(&[1]);
        let t = build(&Inputs {
            archived: Some(&archived),
            streamed: &[(2, 3), (6, 7)],
            ..Inputs::default()
        });
        assert_eq!(
            shape(&t),
            vec![
                (1, 1, SeqState::Archived),
                (2, 3, SeqState::Streamed),
                (4, 5, SeqState::Gap),
                (6, 7, SeqState::Streamed),
            ]
        );
    }

    #[test]
    fn far_apart_sequences_are_few_runs_not_a_long_loop() {
        let archived = set(&[1, u32::MAX]);
        let t = build(&Inputs {
            archived: Some(&archived),
            streamed: &[(0, 0)],
            ..Inputs::default()
        });
        assert_eq!(
            shape(&t),
            vec![
                (0, 0, SeqState::Streamed),
                (1, 1, SeqState::Archived),
                (2, u32::MAX - 1, SeqState::Gap),
                (u32::MAX, u32::MAX, SeqState::Archived),
            ]
        );
        assert_eq!(t.counts[&SeqState::Gap], u64::from(u32::MAX) - 2);
    }

    #[test]
    fn nothing_known_is_an_empty_timeline_and_many_runs_keep_the_newest() {
        assert_eq!(build(&Inputs::default()), Timeline::default());
        // Every other sequence archived: a run each, then a gap each.
        let archived: BTreeSet<u32> = (0..1000).map(|i| i * 2).collect();
        let t = build(&Inputs {
            archived: Some(&archived),
            ..Inputs::default()
        });
        assert_eq!(t.runs.len(), MAX_RUNS);
        assert_eq!(t.omitted, 1999 - MAX_RUNS);
        assert_eq!(t.runs.last().unwrap().to, 1998);
        assert_eq!(t.counts[&SeqState::Gap], 999);
    }

    #[test]
    fn ranges_merge_and_positions_parse() {
        assert_eq!(
            merge_ranges(vec![(5, 6), (1, 2), (3, 3), (9, 8), (2, 3), (10, 12)]),
            vec![(1, 3), (5, 6), (8, 12)]
        );
        assert_eq!(position_seq("42:1024"), Some(42));
        assert_eq!(position_seq("x:1"), None);
    }
}
