//! What every session shares: the link settings, the allow-list, the writer, and the stream
//! table (which session holds which stream, and what it has in flight). The server builds it;
//! sessions only read it and claim streams in it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redovault::wire::transport::{LinkConfig, ServerSecurity};
use redovault::wire::{StreamId, StreamPos};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::allow::ExtractorAllow;
use crate::metrics::CollectorMetrics;
use crate::writer::WriterHandle;

/// What sessions share.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) security: ServerSecurity,
    pub(crate) link: LinkConfig,
    pub(crate) extractors: Vec<ExtractorAllow>,
    pub(crate) writer: WriterHandle,
    pub(crate) metrics: Arc<CollectorMetrics>,
    pub(crate) streams: StreamTable,
    pub(crate) accept_compression: bool,
    /// Connections being served (for the active-connections gauge).
    pub(crate) active: AtomicU64,
}

/// Redo received by a session and not yet durable (for the lag metrics).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    /// (end of the Data, its bytes, when it was received), in stream order.
    chunks: std::collections::VecDeque<(StreamPos, u64, Instant)>,
}

impl InFlight {
    pub(crate) fn push(&mut self, end: StreamPos, bytes: u64, at: Instant) {
        self.chunks.push_back((end, bytes, at));
    }

    pub(crate) fn durable(&mut self, upto: StreamPos) {
        while self.chunks.front().is_some_and(|c| c.0 <= upto) {
            self.chunks.pop_front();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
    }

    /// (bytes, age of the oldest) of what is in flight.
    pub(crate) fn lag(&self) -> (u64, Duration) {
        let bytes = self.chunks.iter().map(|c| c.1).sum();
        let age = self
            .chunks
            .front()
            .map_or(Duration::ZERO, |c| c.2.elapsed());
        (bytes, age)
    }
}

/// The live session of a stream.
#[derive(Debug)]
struct Owner {
    session: u64,
    extractor: String,
    peer: SocketAddr,
    cancel: CancellationToken,
    done: watch::Receiver<bool>,
}

#[derive(Debug, Default)]
struct Slot {
    owner: Option<Owner>,
    sessions: u64,
    in_flight: Arc<Mutex<InFlight>>,
}

/// Per-stream state: the live session and what it has in flight.
#[derive(Debug, Default)]
pub(crate) struct StreamTable {
    slots: Mutex<BTreeMap<StreamId, Slot>>,
    next_session: AtomicU64,
}

/// A stream held by a session; releasing it (drop) tells a replacing session that this one
/// is finished.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    table: &'a StreamTable,
    stream: StreamId,
    session: u64,
    done: watch::Sender<bool>,
    /// Sessions of this stream before this one (since the collector started).
    pub(crate) previous_sessions: u64,
    /// The stream's in-flight record.
    pub(crate) in_flight: Arc<Mutex<InFlight>>,
}

/// Why a stream cannot be claimed.
#[derive(Debug)]
pub(crate) enum ClaimError {
    /// Another extractor id holds the stream.
    Busy { extractor: String, peer: SocketAddr },
}

impl StreamTable {
    /// Claims `stream` for a new session of `extractor`. If a session of the same extractor
    /// holds it, that session is cancelled and this waits (up to `wait`) until it has
    /// drained; returns the replaced session's peer then.
    pub(crate) async fn claim(
        &self,
        stream: StreamId,
        extractor: &str,
        peer: SocketAddr,
        cancel: CancellationToken,
        wait: Duration,
    ) -> Result<(Claim<'_>, Option<SocketAddr>), ClaimError> {
        let session = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        let (done_tx, done_rx) = watch::channel(false);
        let (old, previous, in_flight) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(stream).or_default();
            if let Some(o) = &slot.owner
                && o.extractor != extractor
            {
                return Err(ClaimError::Busy {
                    extractor: o.extractor.clone(),
                    peer: o.peer,
                });
            }
            let old = slot.owner.replace(Owner {
                session,
                extractor: extractor.to_string(),
                peer,
                cancel,
                done: done_rx,
            });
            let previous = slot.sessions;
            slot.sessions += 1;
            (old, previous, slot.in_flight.clone())
        };
        let replaced = match old {
            Some(mut o) => {
                o.cancel.cancel();
                let drained = tokio::time::timeout(wait, o.done.wait_for(|d| *d)).await;
                if drained.is_err() {
                    tracing::warn!(%stream, old_peer = %o.peer, "the replaced session did not finish in time; going on");
                }
                Some(o.peer)
            }
            None => None,
        };
        Ok((
            Claim {
                table: self,
                stream,
                session,
                done: done_tx,
                previous_sessions: previous,
                in_flight,
            },
            replaced,
        ))
    }

    /// (stream, bytes in flight, age of the oldest) of every stream, for the lag metrics.
    pub(crate) fn lags(&self) -> Vec<(StreamId, u64, Duration)> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|(s, slot)| {
                let (b, age) = slot
                    .in_flight
                    .lock()
                    .map(|f| f.lag())
                    .unwrap_or((0, Duration::ZERO));
                (*s, b, age)
            })
            .collect()
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        {
            let mut slots = self.table.slots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = slots.get_mut(&self.stream)
                && slot
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.session == self.session)
            {
                slot.owner = None;
            }
        }
        if let Ok(mut f) = self.in_flight.lock() {
            f.clear();
        }
        let _ = self.done.send(true);
    }
}
