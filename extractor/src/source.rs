//! The source probe: how far Oracle has written each stream's thread, read from the online
//! logs themselves (not through the tailer), and how long redo has waited unread.
//!
//! ```text
//! every `interval`, own task, own descriptors on the online logs:
//!   group headers ─► online::find_current: the thread's newest log
//!   ─► written_end: binary search over block headers (a few dozen small reads)
//!   ─► vs the position the shipper last recorded as read ─► unread_bytes
//!      ─► UnreadClock ─► unread_age_seconds (how long the oldest redo seen written and
//!         still unread by the tailer has waited)
//!   newest log of a newer incarnation (OPEN RESETLOGS) ─► old stream not live:
//!      its series stay at `stream_live` 0, ignored by the alert rules
//! ```
//!
//! Why: the shipper's own lag (`redovault_extractor_lag_*`) counts only redo the tailer has
//! read, so a hung tailer (a stuck read, a thread that stopped) or a shipper that stopped
//! taking chunks shows no lag at all while the session stays up and the collector sees a
//! quiet database. Invariant: the probe never depends on the tailer or the shipper being
//! alive; it only reads what they record.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

use redovault::wire::{StreamId, StreamPos};
use redovault_redo::block::BlockHeader;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::config::LogSources;
use crate::metrics::ProbeMetrics;
use crate::online::{self, LogHeader, OnlineLogs, read_full_at};

/// How often the probe looks: fine enough for alert rules that wait a minute or more.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Where Oracle has written the log `header` describes to, as a byte offset in its file.
///
/// A complete log ends at its `nab`. In a CURRENT log, the blocks LGWR has written in this
/// cycle carry the log's sequence and the ones after them are zero or left from an older
/// cycle (a lower sequence): the written blocks are a prefix, found by binary search on the
/// block headers (a torn block in progress counts as written: LGWR is there).
pub fn written_end(file: &File, header: &LogHeader) -> io::Result<u64> {
    let bs = u64::from(header.block_size());
    if bs == 0 {
        return Err(io::Error::other("block size 0 in the header"));
    }
    if let Some(nab) = header.end_block() {
        return Ok(u64::from(nab) * bs);
    }
    let blocks = file.metadata()?.len() / bs;
    let endian = header.file.endian;
    let seq = header.seq();
    let mut buf = [0u8; 16];
    let mut written = |block: u64| -> io::Result<bool> {
        let n = read_full_at(file, &mut buf, block * bs)?;
        Ok(BlockHeader::parse(&buf[..n], endian)
            .is_some_and(|h| h.kind == 0x01 && h.seq == seq && u64::from(h.block) == block))
    };
    // Invariant: every block below `lo` is written, none at or above `hi` is.
    let (mut lo, mut hi) = (2u64.min(blocks), blocks);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if written(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo * bs)
}

/// Redo written at `source` and not read at `read`: exact within one log; when the tailer
/// is still in an older log, the newest log's written bytes (a lower bound: the rest of the
/// logs in between is not counted).
pub fn unread_bytes(source: StreamPos, read: StreamPos) -> u64 {
    if read >= source {
        0
    } else if read.seq == source.seq {
        source.offset - read.offset
    } else {
        source.offset.max(1)
    }
}

/// Remembers when each written end the probe saw was first seen, until the tailer has read
/// past it: the age of the oldest one still unread is how long redo has waited (at the
/// probe's resolution). A tailer that keeps up but is always a little behind never gets
/// older than about one probe interval; one that stopped gets older at every probe.
#[derive(Debug, Default)]
pub struct UnreadClock {
    seen: VecDeque<(StreamPos, Instant)>,
}

/// Ends remembered at most: past that the newest is replaced (the oldest sets the age).
const MAX_SEEN: usize = 1024;

impl UnreadClock {
    /// Records that at `now` Oracle had written to `source` and the tailer read to `read`;
    /// returns how long the oldest unread redo has waited (zero when caught up).
    pub fn observe(&mut self, now: Instant, source: StreamPos, read: StreamPos) -> Duration {
        if read >= source {
            self.seen.clear();
            return Duration::ZERO;
        }
        while self.seen.front().is_some_and(|(end, _)| *end <= read) {
            self.seen.pop_front();
        }
        if self.seen.back().is_none_or(|(end, _)| *end < source) {
            if self.seen.len() >= MAX_SEEN {
                self.seen.pop_back();
            }
            self.seen.push_back((source, now));
        }
        self.seen
            .front()
            .map_or(Duration::ZERO, |(_, t)| now.saturating_duration_since(*t))
    }
}

/// What the probe found for one stream at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    /// The thread's newest log is of this stream's incarnation (or none is online).
    pub live: bool,
    /// Where Oracle has written this stream to, when its newest log is online and readable.
    pub source: Option<StreamPos>,
}

/// One stream the probe watches.
#[derive(Debug)]
struct Probed {
    stream: StreamId,
    metrics: ProbeMetrics,
    clock: UnreadClock,
    last_problem: Option<String>,
}

/// The probe of every stream of one extractor (see the module documentation).
#[derive(Debug)]
pub struct SourceProbe {
    logs: OnlineLogs,
    streams: Vec<Probed>,
}

impl SourceProbe {
    /// A probe of `streams` over the online logs of `sources`, on its own descriptors.
    pub fn new(sources: &LogSources, streams: Vec<(StreamId, ProbeMetrics)>) -> SourceProbe {
        SourceProbe {
            logs: OnlineLogs::new(&sources.groups),
            streams: streams
                .into_iter()
                .map(|(stream, metrics)| Probed {
                    stream,
                    metrics,
                    clock: UnreadClock::default(),
                    last_problem: None,
                })
                .collect(),
        }
    }

    /// Looks once at every stream and sets its gauges.
    pub fn tick(&mut self, now: Instant) {
        let views = self.logs.scan();
        let current = online::find_current(&views);
        for p in &mut self.streams {
            let look = match look(&mut self.logs, &views, &current, p.stream) {
                Ok(l) => {
                    p.last_problem = None;
                    l
                }
                Err(e) => {
                    let text = e.to_string();
                    if p.last_problem.as_deref() != Some(&text) {
                        warn!(stream = %p.stream, error = %text, "source probe cannot read the online log");
                    }
                    p.last_problem = Some(text);
                    continue;
                }
            };
            p.metrics.live.set(if look.live { 1.0 } else { 0.0 });
            let Some(source) = look.source else {
                p.metrics.unread_bytes.set(0.0);
                p.metrics.unread_age.set(0.0);
                continue;
            };
            let read = p.metrics.read_pos();
            p.metrics.source_sequence.set(f64::from(source.seq.0));
            p.metrics.source_offset.set(source.offset as f64);
            p.metrics
                .unread_bytes
                .set(unread_bytes(source, read) as f64);
            let age = p.clock.observe(now, source, read);
            p.metrics.unread_age.set(age.as_secs_f64());
        }
    }

    /// Looks every `interval` until `cancel`; the file reads run off the async threads.
    pub async fn run(mut self, interval: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self = match tokio::task::spawn_blocking(move || {
                self.tick(Instant::now());
                self
            })
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "source probe stopped");
                    return;
                }
            };
        }
    }
}

/// Liveness and written end of `stream` from one scan of the groups.
fn look(
    logs: &mut OnlineLogs,
    views: &[online::GroupView],
    current: &[online::CurrentLog],
    stream: StreamId,
) -> io::Result<Look> {
    let Some(cur) = current.iter().find(|c| c.stream.thread == stream.thread) else {
        return Ok(Look {
            live: true,
            source: None,
        });
    };
    if cur.stream != stream {
        let superseded =
            cur.stream.db_id == stream.db_id && cur.stream.resetlogs_id > stream.resetlogs_id;
        return Ok(Look {
            live: !superseded,
            source: None,
        });
    }
    let Some(at) = online::locate(views, stream, cur.seq) else {
        return Ok(Look {
            live: true,
            source: None,
        });
    };
    let member = at
        .members
        .first()
        .copied()
        .ok_or_else(|| io::Error::other("no in-sync member"))?;
    let m = logs
        .member(at.group, member)
        .ok_or_else(|| io::Error::other("no such member"))?;
    let file = m.file()?;
    let end = written_end(file, &at.header)?;
    Ok(Look {
        live: true,
        source: Some(StreamPos {
            seq: cur.seq,
            offset: end,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redovault_drill::simulate::{SimConfig, Simulator};
    use redovault_redo::LogSeq;

    fn pos(seq: u32, offset: u64) -> StreamPos {
        StreamPos {
            seq: LogSeq(seq),
            offset,
        }
    }

    #[test]
    fn unread_bytes_within_and_across_logs() {
        assert_eq!(unread_bytes(pos(5, 4096), pos(5, 1024)), 3072);
        assert_eq!(unread_bytes(pos(5, 4096), pos(5, 4096)), 0);
        assert_eq!(unread_bytes(pos(5, 4096), pos(6, 0)), 0);
        assert_eq!(unread_bytes(pos(6, 2048), pos(5, 9999)), 2048);
    }

    #[test]
    fn clock_ages_a_stuck_reader_and_not_one_that_keeps_up() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = UnreadClock::default();
        assert_eq!(c.observe(t0, pos(5, 1024), pos(5, 1024)), s(0));
        // Keeps up, always a little behind: the age stays below one probe interval.
        for i in 1..20u64 {
            let age = c.observe(t0 + s(5 * i), pos(5, 1024 + 512 * i), pos(5, 512 + 512 * i));
            assert!(age <= s(5), "step {i}: {age:?}");
        }
        // Stuck at 5:10752 while Oracle writes on: the age grows from the first unread end.
        let stuck = pos(5, 10752);
        let first = c.observe(t0 + s(100), pos(5, 20000), stuck);
        assert!(first <= s(5));
        let later = c.observe(t0 + s(200), pos(6, 1024), stuck);
        assert!(later >= s(100), "{later:?}");
        // Reads past the first end seen while stuck: the age is that of the next one, first
        // seen at 200 s.
        let age = c.observe(t0 + s(205), pos(6, 4096), pos(5, 20000));
        assert_eq!(age, s(5));
        // Caught up: zero, and nothing remembered.
        assert_eq!(c.observe(t0 + s(210), pos(6, 4096), pos(6, 4096)), s(0));
        assert_eq!(c.observe(t0 + s(215), pos(6, 8192), pos(6, 4096)), s(0));
    }

    #[test]
    fn clock_memory_is_bounded() {
        let t0 = Instant::now();
        let mut c = UnreadClock::default();
        for i in 0..(3 * MAX_SEEN as u64) {
            c.observe(t0 + Duration::from_secs(i), pos(5, 1024 + i), pos(5, 0));
        }
        assert!(c.seen.len() <= MAX_SEEN);
        let age = c.observe(
            t0 + Duration::from_secs(10_000),
            pos(5, 1_000_000),
            pos(5, 0),
        );
        assert_eq!(age, Duration::from_secs(10_000));
    }

    fn sources(dir: &std::path::Path) -> LogSources {
        let groups = (1..=3)
            .map(|g| vec![dir.join(format!("online/redo_t1_g{g}.log"))])
            .collect();
        LogSources {
            groups,
            archive_dirs: vec![dir.join("archive")],
        }
    }

    #[test]
    fn probe_sees_a_tailer_that_does_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut c = SimConfig::new(dir);
        c.log_size = 256 * 1024;
        let mut sim = Simulator::start(c).unwrap();
        for _ in 0..40 {
            sim.step().unwrap();
        }
        let src = sources(dir);
        let views = OnlineLogs::new(&src.groups).scan();
        let cur = online::find_current(&views).remove(0);
        let metrics = crate::metrics::ExtractorMetrics::new();
        let pm = metrics.probe(cur.stream);
        // The tailer "read" the headers of the CURRENT log and stopped there.
        pm.read_sequence.set(f64::from(cur.seq.0));
        pm.read_offset.set(1024.0);
        let mut probe = SourceProbe::new(&src, vec![(cur.stream, pm.clone())]);
        let t0 = Instant::now();
        probe.tick(t0);
        let first_end = pm.source_offset.get();
        assert_eq!(pm.live.get(), 1.0);
        assert_eq!(pm.source_sequence.get(), f64::from(cur.seq.0));
        assert!(first_end > 1024.0, "{first_end}");
        assert_eq!(pm.unread_bytes.get(), first_end - 1024.0);
        for _ in 0..40 {
            sim.step().unwrap();
        }
        probe.tick(t0 + Duration::from_secs(120));
        assert!(pm.source_offset.get() > first_end);
        assert!(pm.unread_age.get() >= 120.0, "{}", pm.unread_age.get());
        // The tailer reads up to what Oracle wrote: caught up.
        pm.read_offset.set(pm.source_offset.get());
        probe.tick(t0 + Duration::from_secs(125));
        assert_eq!(pm.unread_bytes.get(), 0.0);
        assert_eq!(pm.unread_age.get(), 0.0);
    }

    #[test]
    fn a_stream_superseded_by_open_resetlogs_is_not_live() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut c = SimConfig::new(dir);
        c.log_size = 64 * 1024;
        let mut sim = Simulator::start(c.clone()).unwrap();
        for _ in 0..20 {
            sim.step().unwrap();
        }
        drop(sim);
        let src = sources(dir);
        let old = online::find_current(&OnlineLogs::new(&src.groups).scan())[0].stream;
        let metrics = crate::metrics::ExtractorMetrics::new();
        let pm = metrics.probe(old);
        let mut probe = SourceProbe::new(&src, vec![(old, pm.clone())]);
        probe.tick(Instant::now());
        assert_eq!(pm.live.get(), 1.0);
        // OPEN RESETLOGS: the same database's online logs now hold a newer incarnation
        // (written in place, as LGWR reuses them: the probe's descriptors follow).
        let tmp2 = tempfile::tempdir().unwrap();
        c.dir = tmp2.path().to_path_buf();
        c.start_time += 86_400;
        let mut sim = Simulator::start(c).unwrap();
        for _ in 0..20 {
            sim.step().unwrap();
        }
        for g in 1..=3 {
            let name = format!("online/redo_t1_g{g}.log");
            std::fs::copy(tmp2.path().join(&name), dir.join(&name)).unwrap();
        }
        let new = online::find_current(&OnlineLogs::new(&src.groups).scan())[0].stream;
        assert_eq!(new.db_id, old.db_id);
        assert!(new.resetlogs_id > old.resetlogs_id, "{old} -> {new}");
        probe.tick(Instant::now());
        assert_eq!(pm.live.get(), 0.0);
        assert_eq!(pm.unread_bytes.get(), 0.0);
        drop(sim);
    }

    #[test]
    fn written_end_is_lgwr_write_position_also_in_reused_groups() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut c = SimConfig::new(dir);
        c.log_size = 64 * 1024;
        let mut sim = Simulator::start(c).unwrap();
        let src = sources(dir);
        let mut logs = OnlineLogs::new(&src.groups);
        let mut checked = 0;
        // Through several switches: groups 1-3 are reused, their old blocks left stale.
        while sim.write_position(1).unwrap().0 < LogSeq(7) {
            for _ in 0..25 {
                sim.step().unwrap();
            }
            let (seq, next_block) = sim.write_position(1).unwrap();
            let views = logs.scan();
            let cur = online::find_current(&views).remove(0);
            if cur.seq != seq {
                continue; // the switch is in progress
            }
            let at = online::locate(&views, cur.stream, cur.seq).unwrap();
            let file = logs
                .member(at.group, at.members[0])
                .unwrap()
                .file()
                .unwrap();
            let end = written_end(file, &at.header).unwrap();
            let bs = u64::from(at.header.block_size());
            assert_eq!(end, u64::from(next_block).max(2) * bs, "sequence {}", seq.0);
            checked += 1;
        }
        assert!(checked >= 5, "{checked}");
        drop(sim);
    }
}
