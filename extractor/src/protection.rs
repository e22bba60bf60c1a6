//! Which position of a stream the configured collectors protect, under the ack policy.
//!
//! ```text
//!  shipper → collector A ─┐ CopyState { up, acked, read, lag }
//!  shipper → collector B ─┼──────────────► Protection::observe ──► Advance (checkpoint, metrics)
//!  shipper → collector C ─┘  (latest of each)                 ──► BelowPolicy / Restored
//! ```
//!
//! No consensus is needed: the extractor is the only writer of a stream, a position is a
//! byte offset of an Oracle log, and each collector refuses to rewrite what it acknowledged,
//! so the copies are independent prefixes of one byte sequence. A position is **protected**
//! when `required` copies acknowledged it: the `required`-th highest acknowledged position.
//!
//! Invariants (each has a unit test below):
//! - The protected position never moves backwards, and never past what `required` copies
//!   acknowledged (copies that are down keep their last acknowledgement: it is durable there).
//! - The policy *holds* while at least `required` sessions are up. The first verdict waits
//!   for [`STARTUP_GRACE`] (sessions take a moment to start); after that, every change is
//!   reported once, the restoration with how long protection was below policy.
//!
//! Pure: no clock (the caller passes the time since start), no I/O; the async shell is in
//! [`crate::fanout`].

use std::time::Duration;

use redovault::wire::{CommitMark, StreamPos};

/// How long after start the policy may go unmet before it is reported.
pub const STARTUP_GRACE: Duration = Duration::from_secs(10);

/// How many collectors must acknowledge redo before it counts as protected (`[link] ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    /// Every configured collector.
    All,
    /// More than half of them (with two collectors: both).
    #[default]
    Majority,
    /// At least one.
    Any,
}

impl AckPolicy {
    /// The setting's value in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            AckPolicy::All => "all",
            AckPolicy::Majority => "majority",
            AckPolicy::Any => "any",
        }
    }

    /// Reads the setting's value.
    pub fn parse(s: &str) -> Option<AckPolicy> {
        match s {
            "all" => Some(AckPolicy::All),
            "majority" => Some(AckPolicy::Majority),
            "any" => Some(AckPolicy::Any),
            _ => None,
        }
    }

    /// Copies that must acknowledge, out of `n` configured (at least one).
    pub fn required(self, n: usize) -> usize {
        let n = n.max(1);
        match self {
            AckPolicy::All => n,
            AckPolicy::Majority => n / 2 + 1,
            AckPolicy::Any => 1,
        }
    }
}

/// What one collector holds durably, as its acknowledgements said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Durable end of the stream at that collector.
    pub pos: StreamPos,
    /// The last commit at or before it.
    pub last: Option<CommitMark>,
}

/// The latest state of one collector's copy, as its shipper sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CopyState {
    /// A session is established (Welcome received) and not ended.
    pub up: bool,
    /// Its latest acknowledgement (kept while the session is down: it stays durable there).
    pub acked: Option<Acked>,
    /// Where this copy's tailer has read to.
    pub read: Option<StreamPos>,
    /// Redo read and not acknowledged by this collector, bytes.
    pub lag_bytes: u64,
    /// Age of the oldest such byte, milliseconds.
    pub lag_ms: f64,
}

/// What the shell does after an observation.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The protected position moved forward: checkpoint it, report its commit.
    Advance(Acked),
    /// Fewer sessions are up than the policy needs.
    BelowPolicy {
        /// Sessions up.
        up: usize,
        /// Sessions needed.
        required: usize,
    },
    /// The policy holds again.
    Restored {
        /// Sessions up.
        up: usize,
        /// Sessions needed.
        required: usize,
        /// How long it did not hold (since the first verdict when it never held).
        after: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum PolicyState {
    Starting,
    Holds,
    Below { since: Duration },
}

/// The protection state of one stream (see the module docs).
#[derive(Debug, Clone)]
pub struct Protection {
    policy: AckPolicy,
    copies: usize,
    required: usize,
    protected: Option<Acked>,
    verdict: PolicyState,
}

impl Protection {
    /// A stream shipped to `copies` collectors; `start` is its checkpoint (already protected).
    pub fn new(policy: AckPolicy, copies: usize, start: Option<Acked>) -> Protection {
        Protection {
            policy,
            copies,
            required: policy.required(copies),
            protected: start,
            verdict: PolicyState::Starting,
        }
    }

    pub fn policy(&self) -> AckPolicy {
        self.policy
    }

    /// Copies that must acknowledge.
    pub fn required(&self) -> usize {
        self.required
    }

    /// The protected position and commit.
    pub fn protected(&self) -> Option<Acked> {
        self.protected
    }

    /// False once the policy is reported unmet, until it is restored.
    pub fn holds(&self) -> bool {
        !matches!(self.verdict, PolicyState::Below { .. })
    }

    /// Takes the latest state of every copy, `elapsed` after start; returns what changed.
    pub fn observe(&mut self, copies: &[CopyState], elapsed: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(a) = self.kth_acked(copies)
            && self.protected.is_none_or(|p| a.pos > p.pos)
        {
            self.protected = Some(a);
            out.push(Action::Advance(a));
        }
        let up = copies.iter().filter(|c| c.up).count();
        let enough = up >= self.required;
        match (self.verdict, enough) {
            (PolicyState::Starting, true) => self.verdict = PolicyState::Holds,
            (PolicyState::Starting, false) if elapsed >= STARTUP_GRACE => {
                self.verdict = PolicyState::Below { since: elapsed };
                out.push(self.below(up));
            }
            (PolicyState::Holds, false) => {
                self.verdict = PolicyState::Below { since: elapsed };
                out.push(self.below(up));
            }
            (PolicyState::Below { since }, true) => {
                self.verdict = PolicyState::Holds;
                out.push(Action::Restored {
                    up,
                    required: self.required,
                    after: elapsed.saturating_sub(since),
                });
            }
            _ => {}
        }
        out
    }

    fn below(&self, up: usize) -> Action {
        Action::BelowPolicy {
            up,
            required: self.required,
        }
    }

    /// The `required`-th highest acknowledgement among the copies.
    fn kth_acked(&self, copies: &[CopyState]) -> Option<Acked> {
        let mut acked: Vec<Acked> = copies.iter().filter_map(|c| c.acked).collect();
        if acked.len() < self.required || copies.len() != self.copies {
            return None;
        }
        acked.sort_by_key(|a| std::cmp::Reverse(a.pos));
        acked.get(self.required - 1).copied()
    }

    /// Redo read and not yet protected: the `required`-th smallest lag among the copies
    /// whose session is up (a copy that is down protects nothing new). `None` when fewer
    /// than `required` are up: then nothing new is protected at all.
    pub fn lag(&self, copies: &[CopyState]) -> Option<(u64, f64)> {
        let mut up: Vec<&CopyState> = copies.iter().filter(|c| c.up).collect();
        if up.len() < self.required {
            return None;
        }
        up.sort_by_key(|c| c.lag_bytes);
        let bytes = up[self.required - 1].lag_bytes;
        let mut ms: Vec<f64> = up.iter().map(|c| c.lag_ms).collect();
        ms.sort_by(f64::total_cmp);
        Some((bytes, ms[self.required - 1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_redo::{LogSeq, Scn, Xid};

    fn at(offset: u64) -> Acked {
        let pos = StreamPos {
            seq: LogSeq(5),
            offset,
        };
        Acked {
            pos,
            last: Some(CommitMark {
                xid: Xid::default(),
                scn: Scn(offset),
                time: None,
                end: pos,
            }),
        }
    }

    fn copy(up: bool, acked: Option<u64>) -> CopyState {
        CopyState {
            up,
            acked: acked.map(at),
            ..CopyState::default()
        }
    }

    const T: Duration = STARTUP_GRACE;

    #[test]
    fn required_copies_per_policy() {
        assert_eq!(AckPolicy::Majority.required(1), 1);
        assert_eq!(AckPolicy::Majority.required(2), 2);
        assert_eq!(AckPolicy::Majority.required(3), 2);
        assert_eq!(AckPolicy::Majority.required(5), 3);
        assert_eq!(AckPolicy::All.required(3), 3);
        assert_eq!(AckPolicy::Any.required(3), 1);
        assert_eq!(AckPolicy::Any.required(0), 1);
        for p in [AckPolicy::All, AckPolicy::Majority, AckPolicy::Any] {
            assert_eq!(AckPolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(AckPolicy::parse("quorum"), None);
    }

    #[test]
    fn majority_protects_the_second_highest_acknowledgement() {
        let mut p = Protection::new(AckPolicy::Majority, 3, None);
        let a = p.observe(
            &[
                copy(true, Some(300)),
                copy(true, Some(100)),
                copy(true, None),
            ],
            T,
        );
        assert_eq!(a, vec![Action::Advance(at(100))]);
        let a = p.observe(
            &[
                copy(true, Some(900)),
                copy(true, Some(400)),
                copy(true, Some(700)),
            ],
            T,
        );
        assert_eq!(a, vec![Action::Advance(at(700))]);
        assert_eq!(p.protected(), Some(at(700)));
    }

    #[test]
    fn all_and_any() {
        let copies = [
            copy(true, Some(300)),
            copy(true, Some(100)),
            copy(true, Some(200)),
        ];
        let mut all = Protection::new(AckPolicy::All, 3, None);
        assert_eq!(all.observe(&copies, T), vec![Action::Advance(at(100))]);
        let mut any = Protection::new(AckPolicy::Any, 3, None);
        assert_eq!(any.observe(&copies, T), vec![Action::Advance(at(300))]);
        // `all` with one copy that never acknowledged protects nothing.
        let mut all = Protection::new(AckPolicy::All, 3, None);
        let a = all.observe(
            &[copy(true, Some(300)), copy(true, None), copy(true, Some(5))],
            T,
        );
        assert!(a.is_empty(), "{a:?}");
    }

    #[test]
    fn never_backwards_and_never_past_the_policy() {
        let mut p = Protection::new(AckPolicy::Majority, 3, Some(at(500)));
        // A copy restored from an older store reports less: nothing moves back.
        let a = p.observe(
            &[
                copy(true, Some(100)),
                copy(true, Some(200)),
                copy(true, Some(50)),
            ],
            T,
        );
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(p.protected(), Some(at(500)));
        // Two of three down: their last acknowledgements stay durable there; the one still
        // up runs ahead, the protected position stops at the second highest.
        p.observe(
            &[
                copy(true, Some(600)),
                copy(true, Some(650)),
                copy(true, Some(600)),
            ],
            T,
        );
        assert_eq!(p.protected(), Some(at(600)));
        for n in [700, 800, 5000] {
            p.observe(
                &[
                    copy(true, Some(n)),
                    copy(false, Some(650)),
                    copy(false, Some(600)),
                ],
                T,
            );
            assert_eq!(p.protected(), Some(at(650)), "stopped at the majority");
        }
    }

    #[test]
    fn below_policy_is_reported_once_and_restored_with_its_duration() {
        let mut p = Protection::new(AckPolicy::Majority, 3, None);
        // Sessions starting: no verdict before the grace period.
        assert!(
            p.observe(&[copy(false, None); 3], Duration::from_secs(1))
                .is_empty()
        );
        assert!(p.holds());
        assert!(
            p.observe(&[copy(true, None), copy(true, None), copy(false, None)], T)
                .is_empty()
        );
        // One down of three: still holds.
        let s = Duration::from_secs(20);
        assert!(
            p.observe(&[copy(true, None), copy(false, None), copy(true, None)], s)
                .is_empty()
        );
        // Two down.
        let two_down = [copy(true, None), copy(false, None), copy(false, None)];
        let a = p.observe(&two_down, Duration::from_secs(30));
        assert_eq!(a, vec![Action::BelowPolicy { up: 1, required: 2 }]);
        assert!(!p.holds());
        assert!(
            p.observe(&two_down, Duration::from_secs(31)).is_empty(),
            "once"
        );
        let a = p.observe(
            &[copy(true, None), copy(true, None), copy(false, None)],
            Duration::from_secs(75),
        );
        assert_eq!(
            a,
            vec![Action::Restored {
                up: 2,
                required: 2,
                after: Duration::from_secs(45)
            }]
        );
        assert!(p.holds());
    }

    #[test]
    fn never_up_after_the_grace_period_is_below_policy() {
        let mut p = Protection::new(AckPolicy::Any, 2, None);
        assert!(
            p.observe(&[copy(false, None); 2], Duration::from_secs(9))
                .is_empty()
        );
        let a = p.observe(&[copy(false, None); 2], T);
        assert_eq!(a, vec![Action::BelowPolicy { up: 0, required: 1 }]);
    }

    #[test]
    fn lag_is_the_required_th_smallest_among_sessions_up() {
        let p = Protection::new(AckPolicy::Majority, 3, None);
        let c = |up, b: u64, ms: f64| CopyState {
            up,
            lag_bytes: b,
            lag_ms: ms,
            ..CopyState::default()
        };
        assert_eq!(
            p.lag(&[c(true, 10, 1.0), c(true, 5000, 900.0), c(true, 40, 3.0)]),
            Some((40, 3.0))
        );
        // The cut collector's growing lag does not count; with one up, nothing is protected.
        assert_eq!(
            p.lag(&[c(true, 10, 1.0), c(false, 0, 0.0), c(true, 40, 3.0)]),
            Some((40, 3.0))
        );
        assert_eq!(
            p.lag(&[c(true, 10, 1.0), c(false, 0, 0.0), c(false, 0, 0.0)]),
            None
        );
    }
}
