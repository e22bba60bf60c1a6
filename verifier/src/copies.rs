//! Several copies of one stream (each collector's store, each WORM prefix): which agree,
//! which are behind, which diverge, and which one `restore online` rebuilds from.
//!
//! ```text
//! copy A: ████████████████████         8-byte digest per 512-byte unit (unit_digest)
//! copy B: ███████████████              equal where both hold: B is behind (collector down)
//! copy C: ██████████▒▒▒▒▒▒▒▒▒          differs at one position: C and A diverge there
//! (blocks 0 and 1 of each log skipped; block size from block 0, else 4 KiB assumed)
//!   ─► choose (pure): the longest copy that agrees with a majority of the copies present;
//!      diverging copies and no majority: no choice, unless the operator names the copy
//! ```
//!
//! Invariants:
//! - The extractor is the only writer of a stream and a position is a byte offset of an
//!   Oracle log, so independent copies must hold the same bytes wherever both hold bytes;
//!   where two diverge, at most one holds what the database wrote.
//! - Memory is 1/64 of the redo compared ([`crate::stream::unit_digest`]), never the redo.
//! - The first two blocks of each log (file header, redo log header) are not compared: ARCn
//!   rewrites them when it archives, so a collector that caught up from the archived log
//!   legitimately holds different ones.
//!
//! Entry point: [`choose`].

use std::collections::BTreeMap;
use std::fmt;

use redovault::wire::{CommitMark, StreamPos};
use redovault_collector::segment::StoredChunk;
use redovault_redo::position::LogSeq;
use serde::Serialize;

use crate::units::{SeqDigests, UNIT, unit_digest};

/// Where a copy is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyKind {
    /// A collector's data directory (its segments, with its key file).
    Collector,
    /// A WORM prefix (the pieces, opened with the recovery key).
    Worm,
}

impl CopyKind {
    /// `collector` or `worm`.
    pub fn as_str(self) -> &'static str {
        match self {
            CopyKind::Collector => "collector",
            CopyKind::Worm => "worm",
        }
    }
}

/// The unit digests one copy holds of a stream, per sequence: a run of consecutive whole
/// units from `first` on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyUnits {
    seqs: BTreeMap<LogSeq, (u64, Vec<u64>)>,
    /// Block size of the sequences whose block 0 the copy holds.
    block_sizes: BTreeMap<LogSeq, u32>,
}

/// The largest redo block size: two of them are skipped when a copy's is not known.
const MAX_BLOCK: u64 = 4096;

/// The block size block 0 states (None: not a redo file header).
pub fn block_size_of(block0: &[u8]) -> Option<u32> {
    redovault_redo::FileHeader::parse(block0)
        .ok()
        .and_then(|h| u32::try_from(h.bs()).ok())
}

impl CopyUnits {
    /// From the collector's audit ([`crate::stream::StreamAudit::seqs`]: units from offset 0).
    /// `block_sizes`: what block 0 of each sequence states, where known.
    pub fn from_seq_digests<'a>(
        seqs: impl IntoIterator<Item = (LogSeq, &'a SeqDigests)>,
        block_sizes: BTreeMap<LogSeq, u32>,
    ) -> Self {
        CopyUnits {
            seqs: seqs
                .into_iter()
                .filter(|(_, d)| !d.units.is_empty())
                .map(|(s, d)| (s, (0, d.units.clone())))
                .collect(),
            block_sizes,
        }
    }

    /// From chunks in stream order (a WORM chain). A sequence's run stops at the first chunk
    /// that does not continue it on a unit boundary (never so for redo shipped as whole
    /// blocks); a trailing part of a unit is not digested.
    pub fn from_chunks<'a>(chunks: impl IntoIterator<Item = &'a StoredChunk>) -> Self {
        let mut seqs: BTreeMap<LogSeq, (u64, Vec<u64>)> = BTreeMap::new();
        let mut block_sizes = BTreeMap::new();
        let mut stopped: Vec<LogSeq> = Vec::new();
        for c in chunks {
            let seq = c.start.seq;
            if c.start.offset == 0
                && let Some(bs) = block_size_of(&c.data)
            {
                block_sizes.insert(seq, bs);
            }
            if stopped.contains(&seq) || c.start.offset % UNIT as u64 != 0 {
                stopped.push(seq);
                continue;
            }
            let unit = c.start.offset / UNIT as u64;
            let run = seqs.entry(seq).or_insert((unit, Vec::new()));
            if run.0 + run.1.len() as u64 != unit {
                stopped.push(seq);
                continue;
            }
            run.1.extend(c.data.chunks_exact(UNIT).map(unit_digest));
            if c.data.len() % UNIT != 0 {
                stopped.push(seq);
            }
        }
        seqs.retain(|_, (_, u)| !u.is_empty());
        CopyUnits { seqs, block_sizes }
    }

    /// Units held.
    pub fn units(&self) -> u64 {
        self.seqs.values().map(|(_, u)| u.len() as u64).sum()
    }

    /// The first position where both hold a unit and the units differ (from block 2 on).
    pub fn first_difference(&self, other: &CopyUnits) -> Option<StreamPos> {
        for (seq, (a_first, a)) in &self.seqs {
            let Some((b_first, b)) = other.seqs.get(seq) else {
                continue;
            };
            let bs = match (self.block_sizes.get(seq), other.block_sizes.get(seq)) {
                (Some(x), Some(y)) => u64::from(*x.max(y)),
                (Some(x), None) | (None, Some(x)) => u64::from(*x),
                (None, None) => MAX_BLOCK,
            };
            let headers = 2 * bs.max(UNIT as u64) / UNIT as u64;
            let from = (*a_first).max(*b_first).max(headers);
            let to = (a_first + a.len() as u64).min(b_first + b.len() as u64);
            for u in from..to {
                if a[(u - a_first) as usize] != b[(u - b_first) as usize] {
                    return Some(StreamPos {
                        seq: *seq,
                        offset: u * UNIT as u64,
                    });
                }
            }
        }
        None
    }
}

/// What one copy holds of a stream (None in [`Facts::held`]: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The end of its longest authenticated prefix.
    pub end: StreamPos,
    pub last_commit: Option<CommitMark>,
}

/// One copy as [`choose`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Its name (the collector's, or `worm:<prefix>`).
    pub name: String,
    /// Collector or WORM.
    pub kind: CopyKind,
    /// What it holds; None when absent (its directory gone, no pieces under its prefix).
    pub held: Option<Held>,
}

impl Facts {
    /// What a restore rebuilds to from it, then how far it goes: the order of "longer".
    fn reach(&self) -> Option<(Option<StreamPos>, StreamPos)> {
        self.held
            .as_ref()
            .map(|h| (h.last_commit.map(|c| c.end), h.end))
    }
}

/// A copy's standing against the chosen one (or, without a choice, against the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Holds what the chosen copy holds, as far.
    Agrees,
    /// Equal where it holds bytes, and ends before the chosen copy.
    Behind,
    /// Differs from the chosen copy (or, without one, from another copy) from here.
    DivergesAt(StreamPos),
    /// Not there.
    Absent,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Agrees => f.write_str("agrees"),
            Status::Behind => f.write_str("behind"),
            Status::DivergesAt(p) => write!(f, "diverges at {p}"),
            Status::Absent => f.write_str("absent"),
        }
    }
}

/// Every copy's status and the copy chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// Index of the copy to rebuild from.
    pub chosen: usize,
    /// Per copy, in the order given.
    pub statuses: Vec<Status>,
    /// Why that copy, in a sentence.
    pub reason: String,
}

/// Why no copy is chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// No copy holds the stream.
    #[error("no copy holds the stream (every copy is absent)")]
    NothingHeld,
    /// Copies diverge and no majority settles which holds what the database wrote.
    #[error(
        "copies diverge with no majority: {}; name the copy to trust with --copy NAME",
        .conflicts.iter().map(|(a, b, p)| format!("{a} and {b} differ at {p}")).collect::<Vec<_>>().join(", ")
    )]
    NoMajority {
        /// Copies that diverge, and where.
        conflicts: Vec<(String, String, StreamPos)>,
        /// Every copy's status (against no chosen copy).
        statuses: Vec<Status>,
    },
    /// `--copy NAME` names no copy holding the stream.
    #[error("--copy {0}: no such copy holds the stream (copies: {1})")]
    UnknownCopy(String, String),
}

/// The pairwise comparison of the copies: `diverge[i][j]`, the first position where copies
/// `i` and `j` differ (None: equal on what both hold, or one absent).
pub type Divergence = Vec<Vec<Option<StreamPos>>>;

/// Compares every pair of copies.
pub fn compare_all(units: &[Option<&CopyUnits>]) -> Divergence {
    let n = units.len();
    let mut d = vec![vec![None; n]; n];
    for i in 0..n {
        for j in i + 1..n {
            if let (Some(a), Some(b)) = (units[i], units[j]) {
                let p = a.first_difference(b);
                d[i][j] = p;
                d[j][i] = p;
            }
        }
    }
    d
}

/// Chooses the copy to rebuild from (see the module docs). `forced`: the copy the operator
/// named (`--copy`), taken whatever the others say.
pub fn choose(
    copies: &[Facts],
    diverge: &Divergence,
    forced: Option<&str>,
) -> Result<Choice, ChoiceError> {
    let present: Vec<usize> = (0..copies.len())
        .filter(|&i| copies[i].held.is_some())
        .collect();
    if present.is_empty() {
        return Err(ChoiceError::NothingHeld);
    }
    let n = present.len();
    if let Some(name) = forced {
        let Some(&i) = present.iter().find(|&&i| copies[i].name == name) else {
            let names: Vec<&str> = present.iter().map(|&i| copies[i].name.as_str()).collect();
            return Err(ChoiceError::UnknownCopy(name.into(), names.join(", ")));
        };
        return Ok(Choice {
            chosen: i,
            statuses: statuses(copies, diverge, Some(i)),
            reason: format!("{name}, named by --copy"),
        });
    }
    // A copy's supporters: the copies present that do not differ from it (itself included).
    let supporters = |i: usize| present.iter().filter(|&&j| diverge[i][j].is_none()).count();
    let candidates: Vec<usize> = present
        .iter()
        .copied()
        .filter(|&i| 2 * supporters(i) > n)
        .collect();
    let mut conflicts = Vec::new();
    for (k, &i) in candidates.iter().enumerate() {
        for &j in &candidates[k + 1..] {
            if let Some(p) = diverge[i][j] {
                conflicts.push((copies[i].name.clone(), copies[j].name.clone(), p));
            }
        }
    }
    if candidates.is_empty() || !conflicts.is_empty() {
        if conflicts.is_empty() {
            for (k, &i) in present.iter().enumerate() {
                for &j in &present[k + 1..] {
                    if let Some(p) = diverge[i][j] {
                        conflicts.push((copies[i].name.clone(), copies[j].name.clone(), p));
                    }
                }
            }
        }
        return Err(ChoiceError::NoMajority {
            conflicts,
            statuses: statuses(copies, diverge, None),
        });
    }
    // The longest candidate; on a tie the first given (collectors are listed before WORM).
    let chosen = candidates
        .iter()
        .copied()
        .rev()
        .max_by_key(|&i| copies[i].reach())
        .unwrap_or(candidates[0]);
    let others = present.iter().filter(|&&j| j != chosen).count();
    let agreeing = present
        .iter()
        .filter(|&&j| j != chosen && diverge[chosen][j].is_none())
        .count();
    let reason = if others == 0 {
        format!("{}, the only copy present", copies[chosen].name)
    } else {
        format!(
            "{}, the longest copy agreeing with a majority ({} of the {} other copies present agree or are behind)",
            copies[chosen].name, agreeing, others
        )
    };
    Ok(Choice {
        chosen,
        statuses: statuses(copies, diverge, Some(chosen)),
        reason,
    })
}

/// Every copy's status against `chosen` (without one: each copy diverging from any other
/// is marked at its first difference, the others agree or are behind the longest).
fn statuses(copies: &[Facts], diverge: &Divergence, chosen: Option<usize>) -> Vec<Status> {
    let longest = copies.iter().filter_map(Facts::reach).max();
    (0..copies.len())
        .map(|i| {
            let Some(reach) = copies[i].reach() else {
                return Status::Absent;
            };
            let first_any = (0..copies.len()).filter_map(|j| diverge[i][j]).min();
            let against = match chosen {
                Some(c) if c == i => return Status::Agrees,
                Some(c) => match diverge[i][c] {
                    Some(p) => return Status::DivergesAt(p),
                    None => copies[c].reach(),
                },
                None => {
                    if let Some(p) = first_any {
                        return Status::DivergesAt(p);
                    }
                    longest
                }
            };
            match against {
                Some(a) if reach < a => Status::Behind,
                Some(a) if reach > a => first_any.map_or(Status::Agrees, Status::DivergesAt),
                _ => Status::Agrees,
            }
        })
        .collect()
}

/// The per-copy records of a choice (`chosen`: the copy chosen, if any).
pub fn records(
    facts: &[Facts],
    places: &[String],
    statuses: &[Status],
    chosen: Option<usize>,
) -> Vec<crate::online_record::CopyRecord> {
    facts
        .iter()
        .zip(places)
        .zip(statuses)
        .enumerate()
        .map(|(i, ((f, place), st))| crate::online_record::CopyRecord {
            name: f.name.clone(),
            kind: f.kind.as_str().into(),
            place: place.clone(),
            status: match st {
                Status::Agrees => "agrees",
                Status::Behind => "behind",
                Status::DivergesAt(_) => "diverges",
                Status::Absent => "absent",
            }
            .into(),
            diverges_at: match st {
                Status::DivergesAt(p) => Some(p.to_string()),
                _ => None,
            },
            end: f.held.as_ref().map(|h| h.end.to_string()),
            last_commit_scn: f.held.as_ref().and_then(|h| h.last_commit).map(|c| c.scn.0),
            last_commit_end: f
                .held
                .as_ref()
                .and_then(|h| h.last_commit)
                .map(|c| c.end.to_string()),
            chosen: chosen == Some(i),
        })
        .collect()
}

/// "how far behind", for messages: bytes when in the same sequence, else sequences.
pub fn distance(from: StreamPos, to: StreamPos) -> String {
    if from.seq == to.seq {
        format!("{} bytes", to.offset.saturating_sub(from.offset))
    } else {
        format!(
            "{} sequence(s) ({} -> {})",
            to.seq.0.saturating_sub(from.seq.0),
            from,
            to
        )
    }
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::{Scn, Xid};

    use super::*;

    fn at(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    fn commit(end: StreamPos) -> CommitMark {
        CommitMark {
            xid: Xid {
                usn: 1,
                slot: 1,
                sqn: 1,
            },
            scn: Scn(end.offset),
            time: None,
            end,
        }
    }

    /// Units of the two header blocks (no block 0 here: 4 KiB blocks assumed).
    const H: u64 = 16;

    /// Unit `u` after the header blocks.
    fn unit(u: u64) -> StreamPos {
        at(7, (H + u) * UNIT as u64)
    }

    /// A copy holding the header blocks and units 0..len of sequence 7 after them, each
    /// unit's bytes its number, except `forged` units (value + 100).
    fn copy(name: &str, kind: CopyKind, len: u64, forged: &[u64]) -> (Facts, CopyUnits) {
        let data: Vec<u8> = (0..H + len)
            .flat_map(|u| {
                let v = if u >= H && forged.contains(&(u - H)) {
                    u + 100
                } else {
                    u
                } as u8;
                vec![v; UNIT]
            })
            .collect();
        let chunks: Vec<StoredChunk> = data
            .chunks(4 * UNIT)
            .enumerate()
            .map(|(i, d)| StoredChunk {
                start: at(7, (i * 4 * UNIT) as u64),
                data: d.to_vec(),
                commits: vec![],
                log_end: false,
            })
            .collect();
        let end = unit(len);
        (
            Facts {
                name: name.into(),
                kind,
                held: Some(Held {
                    end,
                    last_commit: Some(commit(end)),
                }),
            },
            CopyUnits::from_chunks(&chunks),
        )
    }

    fn absent(name: &str) -> (Facts, CopyUnits) {
        (
            Facts {
                name: name.into(),
                kind: CopyKind::Collector,
                held: None,
            },
            CopyUnits::default(),
        )
    }

    fn run(copies: &[(Facts, CopyUnits)], forced: Option<&str>) -> Result<Choice, ChoiceError> {
        let facts: Vec<Facts> = copies.iter().map(|(f, _)| f.clone()).collect();
        let units: Vec<Option<&CopyUnits>> = copies
            .iter()
            .map(|(f, u)| f.held.as_ref().map(|_| u))
            .collect();
        choose(&facts, &compare_all(&units), forced)
    }

    #[test]
    fn equal_copies_agree_and_the_first_is_taken() {
        let c = [
            copy("a", CopyKind::Collector, 12, &[]),
            copy("b", CopyKind::Collector, 12, &[]),
            copy("worm:p", CopyKind::Worm, 12, &[]),
        ];
        let ch = run(&c, None).unwrap();
        assert_eq!(ch.chosen, 0);
        assert_eq!(ch.statuses, vec![Status::Agrees; 3]);
    }

    #[test]
    fn the_longest_agreeing_copy_is_chosen_and_the_shorter_is_behind() {
        let c = [
            copy("a", CopyKind::Collector, 8, &[]),
            copy("b", CopyKind::Collector, 12, &[]),
            copy("worm:p", CopyKind::Worm, 10, &[]),
        ];
        let ch = run(&c, None).unwrap();
        assert_eq!(ch.chosen, 1);
        assert_eq!(
            ch.statuses,
            vec![Status::Behind, Status::Agrees, Status::Behind]
        );
        assert!(ch.reason.contains("2 of the 2"), "{}", ch.reason);
    }

    #[test]
    fn a_divergent_copy_is_never_chosen_against_a_majority_even_when_longest() {
        let c = [
            copy("a", CopyKind::Collector, 10, &[]),
            copy("b", CopyKind::Collector, 8, &[]),
            copy("forged", CopyKind::Collector, 16, &[5]),
            copy("worm:p", CopyKind::Worm, 10, &[]),
        ];
        let ch = run(&c, None).unwrap();
        assert_eq!(ch.chosen, 0);
        assert_eq!(
            ch.statuses,
            vec![
                Status::Agrees,
                Status::Behind,
                Status::DivergesAt(unit(5)),
                Status::Agrees
            ]
        );
    }

    #[test]
    fn divergence_without_a_majority_is_refused_unless_a_copy_is_named() {
        let c = [
            copy("a", CopyKind::Collector, 10, &[]),
            copy("b", CopyKind::Collector, 10, &[3]),
        ];
        let e = run(&c, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("a and b differ at") && msg.contains("--copy"),
            "{msg}"
        );
        let ChoiceError::NoMajority { statuses, .. } = e else {
            panic!("{e:?}")
        };
        assert_eq!(statuses, vec![Status::DivergesAt(unit(3)); 2]);
        let ch = run(&c, Some("b")).unwrap();
        assert_eq!(ch.chosen, 1);
        assert_eq!(
            ch.statuses,
            vec![Status::DivergesAt(unit(3)), Status::Agrees]
        );
        assert!(matches!(
            run(&c, Some("zz")),
            Err(ChoiceError::UnknownCopy(..))
        ));
        // A behind copy equal to both does not make a majority for either.
        let c = [
            copy("a", CopyKind::Collector, 10, &[]),
            copy("b", CopyKind::Collector, 10, &[6]),
            copy("short", CopyKind::Worm, 4, &[]),
        ];
        assert!(matches!(run(&c, None), Err(ChoiceError::NoMajority { .. })));
    }

    #[test]
    fn an_absent_copy_is_reported_not_an_error_when_another_exists() {
        let c = [absent("wiped"), copy("b", CopyKind::Collector, 6, &[])];
        let ch = run(&c, None).unwrap();
        assert_eq!(ch.chosen, 1);
        assert_eq!(ch.statuses, vec![Status::Absent, Status::Agrees]);
        assert!(ch.reason.contains("only copy"), "{}", ch.reason);
        assert_eq!(run(&[absent("x")], None), Err(ChoiceError::NothingHeld));
    }

    #[test]
    fn units_compare_on_the_common_range_only() {
        let (_, long) = copy("a", CopyKind::Collector, 12, &[]);
        let (_, short) = copy("b", CopyKind::Collector, 5, &[]);
        assert_eq!(long.first_difference(&short), None);
        assert_eq!(long.units(), H + 12);
        // Starting mid-sequence (older pieces gone): compared from there.
        let tail: Vec<StoredChunk> = vec![StoredChunk {
            start: unit(8),
            data: (H as u8 + 8..H as u8 + 12)
                .flat_map(|u| vec![u; UNIT])
                .collect(),
            commits: vec![],
            log_end: false,
        }];
        let tail = CopyUnits::from_chunks(&tail);
        assert_eq!(tail.first_difference(&long), None);
        let (_, other) = copy("c", CopyKind::Collector, 12, &[9]);
        assert_eq!(tail.first_difference(&other), Some(unit(9)));
        // The header blocks are not compared (ARCn rewrites them).
        let mut header = long.clone();
        header.seqs.get_mut(&LogSeq(7)).unwrap().1[3] ^= 1;
        assert_eq!(header.first_difference(&long), None);
        // With a block 0 stating 512-byte blocks, only units 0 and 1 are headers.
        let mut small = header.clone();
        small.block_sizes.insert(LogSeq(7), 512);
        assert_eq!(small.first_difference(&long), Some(at(7, 3 * UNIT as u64)));
        assert_eq!(distance(at(7, 512), at(7, 2048)), "1536 bytes");
    }
}
