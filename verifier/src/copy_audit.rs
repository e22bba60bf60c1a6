//! `verify` over several copies of each stream (every configured collector, and with the
//! recovery key every WORM prefix): each stream's copies compared ([`crate::copies`]), a
//! copy behind the others reported as information (how far), copies that differ as a
//! critical finding naming the stream, the copies and the first differing position.

use std::collections::{BTreeMap, BTreeSet};

use redovault::wire::StreamId;
use serde::{Deserialize, Serialize};

use crate::copies::{self, ChoiceError, CopyKind, CopyUnits, Facts, Status};
use crate::finding::{Finding, FindingKind, LogRef};
use crate::online_record::CopyRecord;

/// One stream's copies as the run found them (the report's "copies" section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCopies {
    /// `db<dbid>-rl<resetlogs id>-t<thread>`.
    pub stream: String,
    /// Every copy, collectors first, with its status against the copy a majority agrees
    /// with (or, without a majority, against the others).
    pub copies: Vec<CopyRecord>,
}

/// One copy of every stream it holds.
#[derive(Debug, Clone)]
pub struct CopyInput {
    pub name: String,
    /// Collector or WORM.
    pub kind: CopyKind,
    /// Its directory or prefix.
    pub place: String,
    /// Per stream: what it holds and its unit digests (None: the copy could not be read at
    /// all, e.g. its directory is gone: absent for every stream).
    pub streams: Option<BTreeMap<StreamId, (copies::Held, CopyUnits)>>,
}

/// Compares the copies of every stream any copy holds. Nothing when fewer than two copies.
pub fn audit(inputs: &[CopyInput]) -> (Vec<StreamCopies>, Vec<Finding>) {
    let mut out = Vec::new();
    let mut findings = Vec::new();
    if inputs.len() < 2 {
        return (out, findings);
    }
    let streams: BTreeSet<StreamId> = inputs
        .iter()
        .filter_map(|c| c.streams.as_ref())
        .flat_map(|m| m.keys().copied())
        .collect();
    for stream in streams {
        let held: Vec<Option<&(copies::Held, CopyUnits)>> = inputs
            .iter()
            .map(|c| c.streams.as_ref().and_then(|m| m.get(&stream)))
            .collect();
        let facts: Vec<Facts> = inputs
            .iter()
            .zip(&held)
            .map(|(c, h)| Facts {
                name: c.name.clone(),
                kind: c.kind,
                held: h.map(|(h, _)| h.clone()),
            })
            .collect();
        let units: Vec<Option<&CopyUnits>> = held.iter().map(|h| h.map(|(_, u)| u)).collect();
        let div = copies::compare_all(&units);
        let places: Vec<String> = inputs.iter().map(|c| c.place.clone()).collect();
        let log = |p: redovault::wire::StreamPos| LogRef {
            resetlogs_id: stream.resetlogs_id,
            thread: stream.thread.0,
            sequence: p.seq.0,
        };
        let (statuses, chosen) = match copies::choose(&facts, &div, None) {
            Ok(c) => {
                let reference = &facts[c.chosen];
                let ref_end = reference.held.as_ref().map(|h| h.end);
                for (i, st) in c.statuses.iter().enumerate() {
                    let f = &facts[i];
                    match st {
                        Status::Behind => {
                            if let (Some(h), Some(to)) = (&f.held, ref_end) {
                                findings.push(
                                    Finding::info(
                                        FindingKind::CopyBehind,
                                        format!("stream {stream} copy {}", f.name),
                                        format!(
                                            "{} ({}) ends at {}, {} behind {} (ends at {}); equal on what both hold",
                                            f.name,
                                            f.kind.as_str(),
                                            h.end,
                                            copies::distance(h.end, to),
                                            reference.name,
                                            to
                                        ),
                                    )
                                    .with_log(log(h.end)),
                                );
                            }
                        }
                        Status::DivergesAt(p) => findings.push(
                            Finding::error(
                                FindingKind::CopiesDiverge,
                                format!("stream {stream} copy {}", f.name),
                                format!(
                                    "{} ({}) and {} ({}, the copy a majority agrees with) differ first at {p}: at most one holds what the database wrote",
                                    f.name,
                                    f.kind.as_str(),
                                    reference.name,
                                    reference.kind.as_str()
                                ),
                            )
                            .with_log(log(*p)),
                        ),
                        Status::Agrees | Status::Absent => {}
                    }
                }
                (c.statuses, Some(c.chosen))
            }
            Err(ChoiceError::NoMajority {
                conflicts,
                statuses,
            }) => {
                for (a, b, p) in conflicts {
                    findings.push(
                        Finding::error(
                            FindingKind::CopiesDiverge,
                            format!("stream {stream} copies {a} and {b}"),
                            format!(
                                "{a} and {b} differ first at {p}, and no majority of the copies settles which holds what the database wrote (restore online --copy NAME once it is known)"
                            ),
                        )
                        .with_log(log(p)),
                    );
                }
                (statuses, None)
            }
            Err(ChoiceError::NothingHeld | ChoiceError::UnknownCopy(..)) => continue,
        };
        out.push(StreamCopies {
            stream: stream.to_string(),
            copies: crate::copies::records(&facts, &places, &statuses, chosen),
        });
    }
    (out, findings)
}

#[cfg(test)]
mod tests {
    use redovault::wire::StreamPos;
    use redovault_collector::segment::StoredChunk;
    use redovault_redo::position::{DbId, ResetlogsId};
    use redovault_redo::position::{LogSeq, ThreadId};

    use super::*;
    use crate::finding::Severity;
    use crate::units::UNIT;

    const S: StreamId = StreamId {
        db_id: DbId(1),
        resetlogs_id: ResetlogsId(2),
        thread: ThreadId(1),
    };

    /// A copy of units 0..units of sequence 4 (the header blocks, 16 units, not compared:
    /// the forged unit is counted after them).
    fn input(name: &str, units: u64, forged: Option<u64>) -> CopyInput {
        let data: Vec<u8> = (0..16 + units)
            .flat_map(|u| {
                vec![
                    if Some(u) == forged.map(|f| f + 16) {
                        0xff
                    } else {
                        u as u8
                    };
                    UNIT
                ]
            })
            .collect();
        let chunk = StoredChunk {
            start: StreamPos {
                seq: LogSeq(4),
                offset: 0,
            },
            data,
            commits: vec![],
            log_end: false,
        };
        let end = chunk.end();
        CopyInput {
            name: name.into(),
            kind: CopyKind::Collector,
            place: format!("/{name}"),
            streams: Some(
                [(
                    S,
                    (
                        copies::Held {
                            end,
                            last_commit: None,
                        },
                        CopyUnits::from_chunks([&chunk]),
                    ),
                )]
                .into(),
            ),
        }
    }

    #[test]
    fn behind_is_info_and_divergence_is_an_error_naming_both_copies() {
        // b is behind a, and holds the unit the forged copy changed: a has a majority.
        let (copies, f) = audit(&[
            input("a", 10, None),
            input("b", 8, None),
            input("forged", 10, Some(7)),
        ]);
        assert_eq!(copies.len(), 1);
        let st: Vec<&str> = copies[0].copies.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(st, ["agrees", "behind", "diverges"]);
        let behind = f
            .iter()
            .find(|f| f.kind == FindingKind::CopyBehind)
            .unwrap();
        assert_eq!(behind.severity, Severity::Info);
        assert!(
            behind.detail.contains("1024 bytes behind a"),
            "{}",
            behind.detail
        );
        let div = f
            .iter()
            .find(|f| f.kind == FindingKind::CopiesDiverge)
            .unwrap();
        assert_eq!(div.severity, Severity::Error);
        assert!(div.subject.contains("db1-rl2-t1") && div.subject.contains("forged"));
        assert!(
            div.detail.contains("differ first at 4:11776"),
            "{}",
            div.detail
        );
        // Two copies that differ: no majority, both named.
        let (_, f) = audit(&[input("a", 10, None), input("b", 10, Some(2))]);
        assert_eq!(f.len(), 1);
        assert!(f[0].subject.contains("copies a and b"), "{}", f[0].subject);
        // One copy: nothing to compare.
        assert!(audit(&[input("a", 10, None)]).1.is_empty());
        // A behind copy that ends before the forged unit supports both: no majority.
        let (c, f) = audit(&[
            input("a", 10, None),
            input("b", 6, None),
            input("forged", 10, Some(7)),
        ]);
        assert!(
            f.iter().all(|f| f.kind == FindingKind::CopiesDiverge),
            "{f:?}"
        );
        let st: Vec<&str> = c[0].copies.iter().map(|c| c.status.as_str()).collect();
        assert_eq!(st, ["diverges", "behind", "diverges"]);
    }
}
