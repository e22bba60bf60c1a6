//! Sequence tracking per (database, resetlogs id, thread): gaps, last shipped, and how far the
//! database's archived logs may be deleted.
//!
//! For each thread of each incarnation the tracker keeps the shipped sequences as ranges
//! (normally one range, whatever the history length) and the sequences known but not shipped
//! (validated and waiting, or damaged). A **gap** is a sequence between the lowest and the
//! highest known one that is neither shipped nor known: it is reported as soon as a later
//! sequence is seen. **Safe to delete through N** is the highest N such that every sequence
//! from the lowest shipped one up to N is shipped and no known unshipped sequence lies below
//! N: what an RMAN deletion policy may remove. Sequences of different resetlogs ids (after an
//! `OPEN RESETLOGS`) never make gaps with each other.

use std::collections::{BTreeMap, BTreeSet};

use redovault_redo::position::{DbId, LogSeq, ResetlogsId, ThreadId};
use serde::{Deserialize, Serialize};

use crate::manifest::{LogIdentity, ManifestEntry};

/// A thread of one incarnation of one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadKey {
    pub db_id: DbId,
    pub resetlogs_id: ResetlogsId,
    pub thread: ThreadId,
}

impl ThreadKey {
    /// The thread of a log.
    pub fn of(id: &LogIdentity) -> ThreadKey {
        ThreadKey {
            db_id: id.db_id,
            resetlogs_id: id.resetlogs_id,
            thread: id.thread,
        }
    }
}

/// An inclusive range of sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqRange {
    /// First sequence.
    pub first: u32,
    /// Last sequence (inclusive).
    pub last: u32,
}

impl SeqRange {
    /// Number of sequences in the range.
    pub fn len(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// Always false: a range holds at least one sequence.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// A set of sequences kept as sorted, disjoint, non-adjacent ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<SeqRange>);

impl RangeSet {
    /// Adds one sequence.
    pub fn insert(&mut self, s: u32) {
        let i = self.0.partition_point(|r| r.last < s);
        if let Some(r) = self.0.get(i)
            && r.first <= s
        {
            return;
        }
        let joins_prev = i > 0 && self.0[i - 1].last.checked_add(1) == Some(s);
        let joins_next = self
            .0
            .get(i)
            .is_some_and(|r| s.checked_add(1) == Some(r.first));
        match (joins_prev, joins_next) {
            (true, true) => {
                self.0[i - 1].last = self.0[i].last;
                self.0.remove(i);
            }
            (true, false) => self.0[i - 1].last = s,
            (false, true) => self.0[i].first = s,
            (false, false) => self.0.insert(i, SeqRange { first: s, last: s }),
        }
    }

    /// True when `s` is in the set.
    pub fn contains(&self, s: u32) -> bool {
        let i = self.0.partition_point(|r| r.last < s);
        self.0.get(i).is_some_and(|r| r.first <= s)
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[SeqRange] {
        &self.0
    }

    /// Lowest and highest sequence.
    pub fn bounds(&self) -> Option<(u32, u32)> {
        Some((self.0.first()?.first, self.0.last()?.last))
    }

    /// Number of sequences.
    pub fn count(&self) -> u64 {
        self.0.iter().map(SeqRange::len).sum()
    }
}

/// What the last (highest) shipped log of a thread says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastShipped {
    pub sequence: u32,
    pub next_scn: u64,
    /// Time of its next SCN.
    pub next_time: String,
    /// When it was shipped.
    pub shipped_at: String,
}

#[derive(Debug, Clone, Default)]
struct Track {
    db_name: String,
    shipped: RangeSet,
    last: Option<LastShipped>,
    unshipped: BTreeSet<u32>,
}

/// Per-thread state of one thread, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadStatus {
    pub db_id: DbId,
    pub db_name: String,
    pub resetlogs_id: ResetlogsId,
    pub thread: u16,
    /// The highest shipped sequence and what its entry says.
    pub last_shipped: Option<LastShipped>,
    /// Logs shipped.
    pub shipped: u64,
    /// Sequences known but not shipped yet (waiting, failing or damaged).
    pub unshipped: Vec<u32>,
    /// Missing sequences (neither shipped nor present) below a later one.
    pub gaps: Vec<SeqRange>,
    /// The RMAN deletion horizon: every sequence up to this one is in WORM.
    pub safe_to_delete_through: Option<u32>,
}

/// The tracker.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    threads: BTreeMap<ThreadKey, Track>,
}

impl Gaps {
    /// An empty tracker.
    pub fn new() -> Gaps {
        Gaps::default()
    }

    /// A log was shipped (from the manifest).
    pub fn shipped(&mut self, e: &ManifestEntry) {
        let t = self
            .threads
            .entry(ThreadKey::of(&e.identity()))
            .or_default();
        t.db_name.clone_from(&e.db_name);
        let s = e.sequence.0;
        t.shipped.insert(s);
        t.unshipped.remove(&s);
        if t.last.as_ref().is_none_or(|l| l.sequence <= s) {
            t.last = Some(LastShipped {
                sequence: s,
                next_scn: e.next_scn.0,
                next_time: e.next_time.clone(),
                shipped_at: e.shipped_at.clone(),
            });
        }
    }

    /// A log exists but is not shipped (yet).
    pub fn seen_unshipped(&mut self, id: &LogIdentity, db_name: &str) {
        let t = self.threads.entry(ThreadKey::of(id)).or_default();
        if t.db_name.is_empty() {
            t.db_name = db_name.to_string();
        }
        if !t.shipped.contains(id.sequence.0) {
            t.unshipped.insert(id.sequence.0);
        }
    }

    /// A log that was not shipped is gone (or no longer counts).
    pub fn forget_unshipped(&mut self, id: &LogIdentity) {
        if let Some(t) = self.threads.get_mut(&ThreadKey::of(id)) {
            t.unshipped.remove(&id.sequence.0);
        }
    }

    /// The missing sequences of a thread.
    pub fn missing(&self, key: &ThreadKey) -> Vec<SeqRange> {
        let Some(t) = self.threads.get(key) else {
            return Vec::new();
        };
        let mut known = t.shipped.clone();
        for s in &t.unshipped {
            known.insert(*s);
        }
        known
            .ranges()
            .windows(2)
            .map(|w| SeqRange {
                first: w[0].last + 1,
                last: w[1].first - 1,
            })
            .collect()
    }

    /// Missing sequences over every thread.
    pub fn total_missing(&self) -> u64 {
        self.threads
            .keys()
            .map(|k| self.missing(k).iter().map(SeqRange::len).sum::<u64>())
            .sum()
    }

    /// Missing sequences of the live incarnations only: for each database, the threads of its
    /// highest resetlogs id. A gap left in an incarnation that `OPEN RESETLOGS` superseded
    /// stays in [`Gaps::total_missing`] and in the status, but the database no longer
    /// writes there: the alert rule counts only these.
    pub fn live_missing(&self) -> u64 {
        let mut newest: BTreeMap<DbId, ResetlogsId> = BTreeMap::new();
        for k in self.threads.keys() {
            let rl = newest.entry(k.db_id).or_insert(k.resetlogs_id);
            *rl = (*rl).max(k.resetlogs_id);
        }
        self.threads
            .keys()
            .filter(|k| newest.get(&k.db_id) == Some(&k.resetlogs_id))
            .map(|k| self.missing(k).iter().map(SeqRange::len).sum::<u64>())
            .sum()
    }

    /// Every missing sequence, with its thread.
    pub fn all_missing(&self) -> Vec<(ThreadKey, SeqRange)> {
        self.threads
            .keys()
            .flat_map(|k| self.missing(k).into_iter().map(move |r| (*k, r)))
            .collect()
    }

    /// The highest N such that all sequences from the lowest shipped one to N are shipped and
    /// no known unshipped or missing sequence is at or below N.
    pub fn safe_to_delete_through(&self, key: &ThreadKey) -> Option<u32> {
        let t = self.threads.get(key)?;
        let first = *t.shipped.ranges().first()?;
        let lowest_unshipped = t.unshipped.iter().next().copied();
        match lowest_unshipped {
            Some(u) if u < first.first => None,
            _ => Some(first.last),
        }
    }

    /// The status of every thread, in key order.
    pub fn status(&self) -> Vec<ThreadStatus> {
        self.threads
            .iter()
            .map(|(k, t)| ThreadStatus {
                db_id: k.db_id,
                db_name: t.db_name.clone(),
                resetlogs_id: k.resetlogs_id,
                thread: k.thread.0,
                last_shipped: t.last.clone(),
                shipped: t.shipped.count(),
                unshipped: t.unshipped.iter().copied().collect(),
                gaps: self.missing(k),
                safe_to_delete_through: self.safe_to_delete_through(k),
            })
            .collect()
    }
}

/// The identity of sequence `s` of a thread (for tests and callers that build identities).
pub fn identity(key: &ThreadKey, s: u32) -> LogIdentity {
    LogIdentity {
        db_id: key.db_id,
        resetlogs_id: key.resetlogs_id,
        thread: key.thread,
        sequence: LogSeq(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Sha256Digest;
    use redovault_redo::position::Scn;

    const K: ThreadKey = ThreadKey {
        db_id: DbId(7),
        resetlogs_id: ResetlogsId(100),
        thread: ThreadId(1),
    };

    fn entry(key: &ThreadKey, s: u32) -> ManifestEntry {
        ManifestEntry {
            index: u64::from(s),
            db_id: key.db_id,
            db_name: "FREE".into(),
            resetlogs_id: key.resetlogs_id,
            thread: key.thread,
            sequence: LogSeq(s),
            first_scn: Scn(u64::from(s) * 10),
            next_scn: Scn(u64::from(s) * 10 + 10),
            first_time: "t".into(),
            next_time: format!("t{s}"),
            size: 1,
            sha256: Sha256Digest::ZERO,
            object_key: "k".into(),
            version_id: None,
            retain_until: None,
            shipped_at: "now".into(),
            file_name: "f".into(),
            stored: None,
            prev: Sha256Digest::ZERO,
        }
    }

    #[test]
    fn a_gap_of_a_superseded_incarnation_is_not_live() {
        let mut g = Gaps::new();
        g.shipped(&entry(&K, 10));
        g.shipped(&entry(&K, 13)); // 11 and 12 lost before OPEN RESETLOGS
        assert_eq!((g.total_missing(), g.live_missing()), (2, 2));
        let new = ThreadKey {
            resetlogs_id: ResetlogsId(200),
            ..K
        };
        let other_db = ThreadKey {
            db_id: DbId(8),
            resetlogs_id: ResetlogsId(50),
            ..K
        };
        g.shipped(&entry(&new, 1));
        g.shipped(&entry(&new, 2));
        g.shipped(&entry(&other_db, 4));
        g.shipped(&entry(&other_db, 6));
        // The old incarnation's gap stays known, but only the other database's is live.
        assert_eq!((g.total_missing(), g.live_missing()), (3, 1));
        g.shipped(&entry(&new, 5));
        assert_eq!((g.total_missing(), g.live_missing()), (5, 3));
    }

    #[test]
    fn range_set_merges() {
        let mut r = RangeSet::default();
        for s in [5, 7, 6, 1, 3, 2, 10] {
            r.insert(s);
        }
        assert_eq!(
            r.ranges(),
            &[
                SeqRange { first: 1, last: 3 },
                SeqRange { first: 5, last: 7 },
                SeqRange {
                    first: 10,
                    last: 10
                }
            ]
        );
        assert!(r.contains(6) && !r.contains(4) && !r.contains(11));
        assert_eq!(r.count(), 7);
        r.insert(u32::MAX);
        r.insert(0);
        assert_eq!(r.bounds(), Some((0, u32::MAX)));
    }

    #[test]
    fn gap_reported_as_soon_as_a_later_sequence_is_seen() {
        let mut g = Gaps::new();
        g.shipped(&entry(&K, 10));
        g.shipped(&entry(&K, 11));
        assert!(g.missing(&K).is_empty());
        assert_eq!(g.safe_to_delete_through(&K), Some(11));
        // 14 appears (validated, not shipped yet): 12 and 13 are missing now.
        g.seen_unshipped(&identity(&K, 14), "FREE");
        assert_eq!(
            g.missing(&K),
            vec![SeqRange {
                first: 12,
                last: 13
            }]
        );
        assert_eq!(g.total_missing(), 2);
        assert_eq!(g.safe_to_delete_through(&K), Some(11));
        // 12 and 13 arrive; 14 ships before them.
        g.seen_unshipped(&identity(&K, 12), "FREE");
        g.seen_unshipped(&identity(&K, 13), "FREE");
        g.shipped(&entry(&K, 14));
        assert!(g.missing(&K).is_empty());
        assert_eq!(g.safe_to_delete_through(&K), Some(11), "12, 13 not shipped");
        g.shipped(&entry(&K, 12));
        g.shipped(&entry(&K, 13));
        assert_eq!(g.safe_to_delete_through(&K), Some(14));
        let st = g.status();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].last_shipped.as_ref().unwrap().sequence, 14);
        assert_eq!(st[0].last_shipped.as_ref().unwrap().next_time, "t14");
        assert_eq!(st[0].shipped, 5);
    }

    #[test]
    fn vanished_unshipped_log_becomes_a_gap_and_blocks_deletion_horizon() {
        let mut g = Gaps::new();
        g.shipped(&entry(&K, 1));
        g.seen_unshipped(&identity(&K, 2), "FREE");
        g.shipped(&entry(&K, 3));
        assert!(g.missing(&K).is_empty());
        assert_eq!(g.safe_to_delete_through(&K), Some(1));
        g.forget_unshipped(&identity(&K, 2));
        assert_eq!(g.missing(&K), vec![SeqRange { first: 2, last: 2 }]);
        assert_eq!(g.safe_to_delete_through(&K), Some(1));
    }

    #[test]
    fn unshipped_below_the_first_shipped_means_nothing_is_safe() {
        let mut g = Gaps::new();
        g.shipped(&entry(&K, 12));
        g.seen_unshipped(&identity(&K, 10), "FREE");
        assert_eq!(g.safe_to_delete_through(&K), None);
        assert_eq!(
            g.missing(&K),
            vec![SeqRange {
                first: 11,
                last: 11
            }]
        );
    }

    #[test]
    fn threads_and_incarnations_are_separate() {
        let mut g = Gaps::new();
        let t2 = ThreadKey {
            thread: ThreadId(2),
            ..K
        };
        let new_inc = ThreadKey {
            resetlogs_id: ResetlogsId(200),
            ..K
        };
        g.shipped(&entry(&K, 50));
        g.shipped(&entry(&t2, 7));
        g.shipped(&entry(&new_inc, 1));
        g.shipped(&entry(&new_inc, 2));
        assert_eq!(g.total_missing(), 0);
        assert_eq!(g.status().len(), 3);
        g.shipped(&entry(&t2, 9));
        assert_eq!(g.all_missing(), vec![(t2, SeqRange { first: 8, last: 8 })]);
    }
}
