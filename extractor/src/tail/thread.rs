//! The tailer on its own thread: chunks into a bounded channel, woken by file events or the
//! poll interval; [`TailHandle`] is the receiving end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use redovault::wire::{StreamId, latency};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::*;

impl Tailer {
    /// Runs the tailer on a dedicated thread until `cancel` is cancelled, the receiver is
    /// dropped, or an error (which is sent, then the thread ends). Chunks go into a channel
    /// of `capacity` (at least 1): a slow receiver holds the tailer back.
    pub fn spawn(self, capacity: usize, cancel: CancellationToken) -> std::io::Result<TailHandle> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stream = self.io.stream;
        let stats = self.io.stats.clone();
        let token = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tail-{stream}"))
            .spawn(move || self.run(tx, token))?;
        Ok(TailHandle {
            stream,
            rx,
            cancel,
            thread: Some(thread),
            stats,
        })
    }

    pub(super) fn run(
        mut self,
        tx: mpsc::Sender<Result<TailChunk, TailError>>,
        cancel: CancellationToken,
    ) {
        let span = tracing::info_span!("tail", stream = %self.io.stream);
        let _g = span.enter();
        let (wake_tx, wake_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let _watcher = if self.io.opts.file_events {
            watch(&self.watched_paths(), wake_tx)
        } else {
            None
        };
        let poll = self.io.opts.poll;
        while !cancel.is_cancelled() {
            match self.poll_chunk() {
                Ok(Some(chunk)) => {
                    latency::trace(
                        "tail_chunk",
                        // Keyed as the Data it becomes (`Data::end`), so the stages join.
                        chunk
                            .pos
                            .after(chunk.bytes.len() as u64, chunk.log_end.is_some()),
                        chunk.last_commit().map(|c| c.scn),
                    );
                    if !send(&tx, Ok(chunk), &cancel) {
                        break;
                    }
                }
                Ok(None) => {
                    let until = Instant::now() + poll;
                    loop {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() || cancel.is_cancelled() {
                            break;
                        }
                        if wake_rx.recv_timeout(left.min(CANCEL_CHECK)).is_ok() {
                            while wake_rx.try_recv().is_ok() {}
                            break;
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "tailer stopped");
                    send(&tx, Err(e), &cancel);
                    break;
                }
            }
        }
        debug!("tail thread ends");
    }
}

/// Sends into the bounded channel, giving up when cancelled or when the receiver is gone.
pub(super) fn send(
    tx: &mpsc::Sender<Result<TailChunk, TailError>>,
    item: Result<TailChunk, TailError>,
    cancel: &CancellationToken,
) -> bool {
    futures::executor::block_on(async {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            r = tx.send(item) => r.is_ok(),
        }
    })
}

/// Watches `paths` (files and directories); a write, create, rename or removal wakes the tail
/// thread. Reads (ours included) do not.
pub(super) fn watch(
    paths: &[PathBuf],
    wake: std::sync::mpsc::SyncSender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && matches!(
                ev.kind,
                EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any
            )
        {
            let _ = wake.try_send(());
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "file events unavailable; polling only");
            return None;
        }
    };
    for p in paths {
        if let Err(e) = w.watch(p, RecursiveMode::NonRecursive) {
            debug!(path = %p.display(), error = %e, "not watched");
        }
    }
    Some(w)
}

/// The receiving end of a spawned tailer.
#[derive(Debug)]
pub struct TailHandle {
    stream: StreamId,
    rx: mpsc::Receiver<Result<TailChunk, TailError>>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<TailStats>,
}

impl TailHandle {
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// The tailer's counters.
    pub fn stats(&self) -> Arc<TailStats> {
        self.stats.clone()
    }

    /// The next chunk; `Ok(None)` once the tailer has stopped (cancelled). After an `Err`
    /// the tailer has stopped: start a new one from the checkpoint to retry. Cancel-safe.
    pub async fn next_chunk(&mut self) -> Result<Option<TailChunk>, TailError> {
        self.rx.recv().await.transpose()
    }

    /// The same, for callers outside an async runtime.
    pub fn blocking_next_chunk(&mut self) -> Result<Option<TailChunk>, TailError> {
        self.rx.blocking_recv().transpose()
    }

    /// Stops the tailer and waits for its thread (blocking: at most one torn-block re-read
    /// series or [`CANCEL_CHECK`]).
    pub fn stop(mut self) {
        self.cancel.cancel();
        self.rx.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
