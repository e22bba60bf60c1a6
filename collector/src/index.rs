//! The index of committed transactions of one stream: what a last-commit restore contains.
//!
//! Built at open from the commit marks inside the segments (every chunk is read and
//! authenticated then anyway), and extended as appends become durable: it lists durable
//! commits only. Entries are kept per log sequence in stream order, 32 bytes each.
//!
//! Queries: every commit, commits at or after an SCN, the commits of one transaction id,
//! the commits of one log sequence, or the last `n`.

use std::collections::BTreeMap;

use redovault::wire::{CommitMark, StreamPos};
use redovault_redo::position::{LogSeq, Scn, Xid};

/// What to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitQuery {
    /// Every commit, oldest first.
    All,
    /// Commits whose SCN is at least this one, oldest first.
    SinceScn(Scn),
    /// Commits of this transaction id (a wrapped slot may reuse it; each is listed).
    Xid(Xid),
    /// Commits that end in this log sequence.
    Sequence(LogSeq),
    /// The last `n` commits, oldest first.
    Last(usize),
}

const NO_TIME: i64 = i64::MIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    xid: Xid,
    scn: Scn,
    time: i64,
    end_offset: u64,
}

impl Entry {
    fn mark(&self, seq: LogSeq) -> CommitMark {
        CommitMark {
            xid: self.xid,
            scn: self.scn,
            time: (self.time != NO_TIME).then_some(self.time),
            end: StreamPos {
                seq,
                offset: self.end_offset,
            },
        }
    }
}

/// Durable commits of one stream, in stream order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitIndex {
    seqs: BTreeMap<LogSeq, Vec<Entry>>,
    len: usize,
}

impl CommitIndex {
    /// An empty index.
    pub fn new() -> CommitIndex {
        CommitIndex::default()
    }

    /// Adds a commit; commits come in stream order (the store checks it).
    pub fn push(&mut self, c: &CommitMark) {
        self.seqs.entry(c.end.seq).or_default().push(Entry {
            xid: c.xid,
            scn: c.scn,
            time: c.time.unwrap_or(NO_TIME),
            end_offset: c.end.offset,
        });
        self.len += 1;
    }

    /// Drops the commits of every sequence before `seq` (their segments were retired).
    pub fn remove_before(&mut self, seq: LogSeq) {
        let kept = self.seqs.split_off(&seq);
        let dropped: usize = self.seqs.values().map(Vec::len).sum();
        self.seqs = kept;
        self.len -= dropped;
    }

    /// Number of commits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no commit is indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn last(&self) -> Option<CommitMark> {
        let (seq, v) = self.seqs.iter().next_back()?;
        v.last().map(|e| e.mark(*seq))
    }

    /// The last commit that ends in `seq`.
    pub fn last_in(&self, seq: LogSeq) -> Option<CommitMark> {
        self.seqs.get(&seq)?.last().map(|e| e.mark(seq))
    }

    /// Every sequence with commits: its last commit and its commit count, in order.
    pub fn sequences(&self) -> impl Iterator<Item = (LogSeq, CommitMark, usize)> + '_ {
        self.seqs
            .iter()
            .filter_map(|(seq, v)| v.last().map(|e| (*seq, e.mark(*seq), v.len())))
    }

    /// Lowest and highest commit SCN of every sequence with commits (retention matches
    /// them against the archived log's SCN range).
    pub fn scn_ranges(&self) -> impl Iterator<Item = (LogSeq, Scn, Scn)> + '_ {
        self.seqs.iter().filter_map(|(seq, v)| {
            let min = v.iter().map(|e| e.scn).min()?;
            let max = v.iter().map(|e| e.scn).max()?;
            Some((*seq, min, max))
        })
    }

    /// The number of commits that end in `seq`.
    pub fn count_in(&self, seq: LogSeq) -> usize {
        self.seqs.get(&seq).map_or(0, Vec::len)
    }

    /// The commits `query` selects, oldest first, at most `limit` of them (the first ones,
    /// except for [`CommitQuery::Last`]).
    pub fn query(&self, query: &CommitQuery, limit: usize) -> Vec<CommitMark> {
        let all = self
            .seqs
            .iter()
            .flat_map(|(seq, v)| v.iter().map(move |e| (*seq, e)));
        let pick = |it: &mut dyn Iterator<Item = (LogSeq, &Entry)>| {
            it.take(limit).map(|(s, e)| e.mark(s)).collect::<Vec<_>>()
        };
        match *query {
            CommitQuery::All => pick(&mut all.into_iter()),
            CommitQuery::SinceScn(scn) => pick(&mut all.filter(|(_, e)| e.scn >= scn)),
            CommitQuery::Xid(xid) => pick(&mut all.filter(|(_, e)| e.xid == xid)),
            CommitQuery::Sequence(seq) => {
                let v = self.seqs.get(&seq).map_or(&[][..], Vec::as_slice);
                pick(&mut v.iter().map(|e| (seq, e)))
            }
            CommitQuery::Last(n) => {
                let n = n.min(limit);
                let mut out: Vec<CommitMark> = self
                    .seqs
                    .iter()
                    .rev()
                    .flat_map(|(seq, v)| v.iter().rev().map(move |e| e.mark(*seq)))
                    .take(n)
                    .collect();
                out.reverse();
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sqn: u32, scn: u64, seq: u32, off: u64, time: Option<i64>) -> CommitMark {
        CommitMark {
            xid: Xid {
                usn: 1,
                slot: 2,
                sqn,
            },
            scn: Scn(scn),
            time,
            end: StreamPos {
                seq: LogSeq(seq),
                offset: off,
            },
        }
    }

    #[test]
    fn queries() {
        let mut ix = CommitIndex::new();
        let marks = [
            c(1, 100, 5, 1024, Some(10)),
            c(2, 105, 5, 1536, None),
            c(1, 110, 6, 1024, Some(12)),
            c(3, 120, 6, 2048, Some(13)),
        ];
        for m in &marks {
            ix.push(m);
        }
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.query(&CommitQuery::All, usize::MAX), marks);
        assert_eq!(ix.query(&CommitQuery::All, 2), marks[..2]);
        assert_eq!(
            ix.query(&CommitQuery::SinceScn(Scn(106)), usize::MAX),
            marks[2..]
        );
        let x1 = marks[0].xid;
        assert_eq!(
            ix.query(&CommitQuery::Xid(x1), usize::MAX),
            [marks[0], marks[2]]
        );
        assert_eq!(
            ix.query(&CommitQuery::Sequence(LogSeq(5)), usize::MAX),
            marks[..2]
        );
        assert!(
            ix.query(&CommitQuery::Sequence(LogSeq(9)), usize::MAX)
                .is_empty()
        );
        assert_eq!(ix.query(&CommitQuery::Last(3), usize::MAX), marks[1..]);
        assert_eq!(ix.query(&CommitQuery::Last(9), 1), marks[3..]);
        assert_eq!(ix.last(), Some(marks[3]));
        assert_eq!(ix.last_in(LogSeq(5)), Some(marks[1]));
        assert_eq!(ix.count_in(LogSeq(6)), 2);
        assert_eq!(ix.last_in(LogSeq(7)), None);
        assert_eq!(CommitIndex::new().last(), None);
    }
}
