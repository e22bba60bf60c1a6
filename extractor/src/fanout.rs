//! One stream shipped to every configured collector, and what the ack policy protects.
//!
//! ```text
//!            ┌─ Shipper → collector A (own TLS link, window, tailer, checkpoint) ─┐
//!  stream ───┼─ Shipper → collector B                                          ─┼─ CopyReport
//!            └─ Shipper → collector C                                          ─┘     │ (latest)
//!                                      protection task ◄── Notify ◄──────────────────┘
//!                                      Protection::observe → stream checkpoint, metrics, log
//! ```
//!
//! - Each collector gets its own [`Shipper`]: a collector that is down, cut off or slow
//!   never holds the others back; when it returns it resumes from its own acknowledged
//!   position, from the shipper's unacknowledged window or by reading the log again (online,
//!   or archived when Oracle reused it meanwhile), exactly as one collector does.
//! - With several collectors, each copy's acknowledged position is kept in its own
//!   checkpoint (`<state>/collectors/<name>/`), which is what its Hello says it holds; the
//!   stream's checkpoint (`<state>/`, where the tailers start after a restart) is written
//!   by the protection task only, at the position the policy protects, so it stops while
//!   fewer collectors than the policy needs are up. With one collector nothing changes: its
//!   shipper writes the stream's checkpoint as before.
//! - The decisions are [`Protection`]'s (pure, tested there); this is the shell.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redovault::wire::{CommitMark, StreamPos};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::config::{LogSources, TailConfig};
use crate::metrics::{ExtractorMetrics, ProtectionMetrics, StreamMetrics};
use crate::protection::{AckPolicy, Acked, Action, CopyState, Protection};
use crate::ship::{CopyReport, ShipConfig, Shipper, checkpoint_task};
use crate::streams::StreamStart;

/// One configured collector.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its name (`[[collector]] name`): metrics label, state directory, log lines.
    pub name: String,
    /// How to reach it.
    pub cfg: Arc<ShipConfig>,
}

/// The directory of a collector's own checkpoints under the extractor's state directory.
pub fn copy_state_dir(state: &Path, name: &str) -> std::path::PathBuf {
    state.join("collectors").join(name)
}

/// Where Oracle has written the CURRENT log `c` to (from its first readable member), for
/// lags shown by `check`.
pub fn source_position(c: &crate::online::CurrentLog) -> Option<StreamPos> {
    c.members.iter().find_map(|m| {
        let f = std::fs::File::open(m).ok()?;
        let h = crate::online::LogHeader::read(&f).ok()?;
        let end = crate::source::written_end(&f, &h).ok()?;
        Some(StreamPos {
            seq: c.seq,
            offset: end,
        })
    })
}

/// Receives every advance of a stream's protected position with the instant it was decided
/// (benchmarks, tests).
pub type ProtectObserver = tokio::sync::mpsc::UnboundedSender<(Instant, Acked)>;

/// How every stream of an extractor is shipped.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// The collectors, in configuration order.
    pub targets: &'a [Target],
    /// How many must acknowledge.
    pub policy: AckPolicy,
    /// The files the tailers read.
    pub sources: &'a LogSources,
    /// How they read.
    pub tail: TailConfig,
    /// The extractor's state directory (checkpoints).
    pub state_dir: &'a Path,
    pub metrics: &'a ExtractorMetrics,
}

/// Spawns one shipper per target for the stream of `start`, and its protection task.
pub fn spawn_stream(
    tasks: &mut JoinSet<()>,
    start: StreamStart,
    plan: &Plan<'_>,
    observer: Option<ProtectObserver>,
    cancel: &CancellationToken,
) -> Result<(), CheckpointError> {
    let Plan {
        targets,
        policy,
        sources,
        tail: tail_cfg,
        state_dir,
        metrics,
    } = *plan;
    let stream = start.tailer.stream();
    let replicated = targets.len() > 1;
    let notify = Arc::new(Notify::new());
    let protected = start.checkpoint.get().map(|c| Acked {
        pos: c.pos,
        last: c.last_commit,
    });
    let mut tailer = Some(start.tailer);
    let mut stream_checkpoint = Some(start.checkpoint);
    let mut reports = Vec::with_capacity(targets.len());
    for t in targets {
        let (checkpoint, m) = match (replicated, stream_checkpoint.take()) {
            (false, Some(cp)) => (cp, metrics.stream(stream)),
            (_, cp) => {
                stream_checkpoint = cp;
                let own = CheckpointStore::open(&copy_state_dir(state_dir, &t.name), stream)?;
                (own, metrics.stream_copy(stream, Some(&t.name)))
            }
        };
        let mut shipper = Shipper::new(
            stream,
            tailer.take(),
            checkpoint,
            start.from,
            sources.clone(),
            tail_cfg,
            t.cfg.clone(),
            m,
        );
        let report = CopyReport::new(notify.clone());
        shipper.report_to(report.clone());
        reports.push((t.name.clone(), report));
        tasks.spawn(shipper.run(cancel.clone()));
    }
    let task = ProtectTask {
        protection: Protection::new(policy, targets.len(), protected),
        copies: reports,
        notify,
        metrics: metrics.protection(stream),
        stream_level: replicated.then(|| metrics.stream(stream)),
        checkpoint: stream_checkpoint.filter(|_| replicated),
        observer,
    };
    let span = tracing::info_span!("protect", %stream);
    tasks.spawn(tracing::Instrument::instrument(
        task.run(cancel.clone()),
        span,
    ));
    Ok(())
}

/// The stream's protection task (see the module docs).
struct ProtectTask {
    protection: Protection,
    copies: Vec<(String, CopyReport)>,
    notify: Arc<Notify>,
    metrics: ProtectionMetrics,
    /// The stream's own series, driven here when it goes to several collectors.
    stream_level: Option<StreamMetrics>,
    /// The stream's checkpoint, written here when it goes to several collectors.
    checkpoint: Option<CheckpointStore>,
    observer: Option<ProtectObserver>,
}

impl ProtectTask {
    async fn run(mut self, cancel: CancellationToken) {
        let t0 = Instant::now();
        let (cp_tx, cp_task) = match self.checkpoint.take() {
            Some(cp) => {
                let (tx, rx) = watch::channel(None);
                (Some(tx), Some(tokio::spawn(checkpoint_task(cp, rx))))
            }
            None => (None, None),
        };
        self.metrics.required.set(self.protection.required() as f64);
        if let Some(a) = self.protection.protected() {
            self.publish(a);
        }
        // When the protected position last moved (the lag's age while below policy).
        let mut advanced_at = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.notify.notified() => {}
                _ = tick.tick() => {}
            }
            let states: Vec<CopyState> = self.copies.iter().map(|(_, r)| r.get()).collect();
            for action in self.protection.observe(&states, t0.elapsed()) {
                match action {
                    Action::Advance(a) => {
                        advanced_at = Instant::now();
                        if let Some(o) = &self.observer {
                            let _ = o.send((advanced_at, a));
                        }
                        self.publish(a);
                        if let Some(tx) = &cp_tx {
                            tx.send_replace(Some((a.pos, a.last)));
                        }
                    }
                    Action::BelowPolicy { up, required } => {
                        self.metrics.below.set(1.0);
                        self.metrics.below_total.inc();
                        warn!(
                            up,
                            required,
                            policy = self.protection.policy().as_str(),
                            down = %self.down(&states),
                            protected = %self.protected_text(),
                            "protection below policy: fewer collectors up than the ack policy \
                             needs; shipping goes on to those that are, the checkpoint stops"
                        );
                    }
                    Action::Restored {
                        up,
                        required,
                        after,
                    } => {
                        self.metrics.below.set(0.0);
                        info!(up, required, after = ?after, "protection meets the ack policy again");
                    }
                }
            }
            let up = states.iter().filter(|c| c.up).count();
            self.metrics.up.set(up as f64);
            if let Some(m) = &self.stream_level {
                let holds = up >= self.protection.required();
                m.connected.set(if holds { 1.0 } else { 0.0 });
                let (bytes, ms) = self.protection.lag(&states).unwrap_or_else(|| {
                    // Nothing new is protected: what was read since waits, at least since
                    // the protected position last moved.
                    let bytes = states.iter().map(|c| c.lag_bytes).max().unwrap_or(0);
                    (bytes, advanced_at.elapsed().as_secs_f64() * 1000.0)
                });
                m.lag_bytes.set(bytes as f64);
                m.lag_ms.set(ms);
                if let Some(r) = states.iter().filter_map(|c| c.read).max() {
                    m.read(r);
                }
            }
        }
        drop(cp_tx);
        if let Some(t) = cp_task {
            let _ = t.await;
        }
    }

    fn publish(&self, a: Acked) {
        self.metrics.protected(a.pos, a.last.as_ref());
        if let Some(m) = &self.stream_level {
            m.acked(a.pos, a.last.as_ref());
        }
    }

    fn down(&self, states: &[CopyState]) -> String {
        let names: Vec<&str> = self
            .copies
            .iter()
            .zip(states)
            .filter(|(_, s)| !s.up)
            .map(|((n, _), _)| n.as_str())
            .collect();
        names.join(",")
    }

    fn protected_text(&self) -> String {
        match self.protection.protected() {
            Some(Acked { pos, last }) => describe(pos, last),
            None => "nothing yet".into(),
        }
    }
}

fn describe(pos: StreamPos, last: Option<CommitMark>) -> String {
    match last {
        Some(c) => format!("{pos} (last commit {} at SCN {})", c.xid, c.scn),
        None => pos.to_string(),
    }
}
