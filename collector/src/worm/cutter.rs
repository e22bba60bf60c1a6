//! When to cut the next piece of a stream: the uploader's decisions, pure (no I/O, no clock
//! of its own), so every rule has a unit test below.
//!
//! Rules:
//! - a piece covers redo that is durable on the collector's disk, never more;
//! - it is cut at most `interval` after its first byte became durable (the bound on what a
//!   wiped backup host can cost), at once when the durable end has passed a log switch
//!   (so a piece never waits for redo that will not come in its sequence), and at once when
//!   `max_piece` bytes are waiting in one sequence;
//! - the age of the oldest byte durable but not yet in WORM is the WORM lag.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use redovault::wire::StreamPos;

/// What the uploader should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing waits, or not for long enough: look again at this instant (None: when the
    /// durable end moves).
    Wait(Option<Instant>),
    /// Read and upload a piece from the WORM end up to at most `upto` (the reader stops
    /// earlier at a log end or at the size limit).
    Cut {
        /// The durable end (resume position) observed.
        upto: StreamPos,
    },
}

/// The decisions of one stream's uploader.
#[derive(Debug, Clone)]
pub struct Cutter {
    /// Where WORM ends: the start of the next piece (None: nothing uploaded yet, the next
    /// piece starts at the stream's first stored chunk).
    next: Option<StreamPos>,
    /// Durable ends seen beyond `next`, each with when it was first seen, in order.
    seen: VecDeque<(StreamPos, Instant)>,
    interval: Duration,
    max_piece: u64,
}

impl Cutter {
    /// A cutter for a stream whose WORM copy ends at `next`.
    pub fn new(next: Option<StreamPos>, interval: Duration, max_piece: u64) -> Cutter {
        Cutter {
            next,
            seen: VecDeque::new(),
            interval,
            max_piece: max_piece.max(1),
        }
    }

    /// Where WORM ends.
    pub fn next(&self) -> Option<StreamPos> {
        self.next
    }

    /// The durable end (its resume position: `(seq + 1, 0)` after a log end) as seen `now`.
    pub fn observe(&mut self, durable: StreamPos, now: Instant) {
        if self.next.is_some_and(|n| durable <= n) {
            return;
        }
        if self.seen.back().is_none_or(|(p, _)| durable > *p) {
            self.seen.push_back((durable, now));
        }
    }

    /// When the oldest durable byte not yet in WORM was first seen durable.
    pub fn pending_since(&self) -> Option<Instant> {
        self.seen.front().map(|(_, t)| *t)
    }

    /// The WORM lag at `now`: age of the oldest durable byte not in WORM (zero when none).
    pub fn lag(&self, now: Instant) -> Duration {
        self.pending_since()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// What to do at `now`.
    pub fn decide(&self, now: Instant) -> Decision {
        let (Some((first_pos, first_at)), Some((upto, _))) = (self.seen.front(), self.seen.back())
        else {
            return Decision::Wait(None);
        };
        let due = *first_at + self.interval;
        let from = self.next.unwrap_or(*first_pos);
        let crossed_log_end = self.next.is_some_and(|n| upto.seq > n.seq);
        let full =
            upto.seq == from.seq && upto.offset.saturating_sub(from.offset) >= self.max_piece;
        if now >= due || crossed_log_end || full {
            Decision::Cut { upto: *upto }
        } else {
            Decision::Wait(Some(due))
        }
    }

    /// A piece ending where the stream continues at `next` is in WORM.
    pub fn uploaded(&mut self, next: StreamPos) {
        self.next = Some(next);
        while self.seen.front().is_some_and(|(p, _)| *p <= next) {
            self.seen.pop_front();
        }
        // What is left became durable at the first observation past `next`; its bytes
        // between `next` and that observation were durable no earlier than the piece's
        // own, so the oldest remaining time stands.
    }
}

#[cfg(test)]
mod tests {
    use redovault_redo::position::LogSeq;

    use super::*;

    fn at(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn nothing_durable_beyond_worm_waits_for_the_durable_end() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(3, 1024)), SEC, 1 << 20);
        assert_eq!(c.decide(t0), Decision::Wait(None));
        c.observe(at(3, 1024), t0);
        c.observe(at(3, 512), t0);
        assert_eq!(c.decide(t0), Decision::Wait(None));
        assert_eq!(c.lag(t0 + SEC), Duration::ZERO);
    }

    #[test]
    fn a_piece_is_cut_one_interval_after_its_first_durable_byte() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(3, 0)), SEC, 1 << 20);
        c.observe(at(3, 512), t0);
        c.observe(at(3, 1024), t0 + SEC / 2);
        assert_eq!(c.decide(t0 + SEC / 2), Decision::Wait(Some(t0 + SEC)));
        assert_eq!(c.lag(t0 + SEC / 2), SEC / 2);
        assert_eq!(c.decide(t0 + SEC), Decision::Cut { upto: at(3, 1024) });
    }

    #[test]
    fn a_log_switch_cuts_at_once() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(3, 0)), SEC, 1 << 20);
        c.observe(at(4, 0), t0);
        assert_eq!(c.decide(t0), Decision::Cut { upto: at(4, 0) });
    }

    #[test]
    fn a_full_piece_is_cut_at_once() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(3, 0)), SEC, 4096);
        c.observe(at(3, 4095), t0);
        assert!(matches!(c.decide(t0), Decision::Wait(_)));
        c.observe(at(3, 4096), t0);
        assert_eq!(c.decide(t0), Decision::Cut { upto: at(3, 4096) });
    }

    #[test]
    fn after_an_upload_the_rest_keeps_its_own_age() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(3, 0)), SEC, 1 << 20);
        c.observe(at(3, 512), t0);
        c.observe(at(3, 1024), t0 + SEC / 4);
        c.observe(at(3, 2048), t0 + SEC / 2);
        // A piece up to 1024 (the reader stopped there): 2048 is still waiting, seen at
        // t0 + 1/2 s.
        c.uploaded(at(3, 1024));
        assert_eq!(c.next(), Some(at(3, 1024)));
        assert_eq!(c.pending_since(), Some(t0 + SEC / 2));
        assert_eq!(c.decide(t0 + SEC), Decision::Wait(Some(t0 + SEC * 3 / 2)));
        c.uploaded(at(3, 2048));
        assert_eq!(c.decide(t0 + SEC * 2), Decision::Wait(None));
        assert_eq!(c.lag(t0 + SEC * 2), Duration::ZERO);
    }

    #[test]
    fn a_new_stream_starts_at_its_first_durable_chunk() {
        let t0 = Instant::now();
        let mut c = Cutter::new(None, SEC, 1 << 20);
        c.observe(at(7, 8192), t0);
        assert_eq!(c.decide(t0), Decision::Wait(Some(t0 + SEC)));
        assert_eq!(c.decide(t0 + SEC), Decision::Cut { upto: at(7, 8192) });
        c.uploaded(at(7, 8192));
        c.observe(at(7, 8192), t0 + SEC);
        assert_eq!(c.decide(t0 + SEC * 3), Decision::Wait(None));
    }

    #[test]
    fn a_restart_behind_worm_ignores_what_is_already_there() {
        let t0 = Instant::now();
        let mut c = Cutter::new(Some(at(9, 4096)), SEC, 1 << 20);
        // The collector's durable end after a restart may equal WORM's end exactly.
        c.observe(at(9, 4096), t0);
        assert_eq!(c.pending_since(), None);
        c.observe(at(10, 0), t0);
        assert_eq!(c.decide(t0), Decision::Cut { upto: at(10, 0) });
    }
}
