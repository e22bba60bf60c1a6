//! The sending half of a link: frames (sealed in legacy mode) into one buffer, written in
//! batches, with a Heartbeat whenever the link was idle.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LinkConfig, LinkError, LinkErrorKind, PeerInfo, fmt_half};
use crate::compress::Level;
use crate::crypto::legacy::{Sealer, TAG_LEN};
use crate::wire::frame::{FLAG_REKEY, FrameEncoder, FrameKind, HEADER_LEN};
use crate::wire::message::{Heartbeat, Message};
use crate::wire::{StreamPos, latency};

/// [`LinkSender::run`] writes once this much is queued even if more messages wait, so
/// a burst does not grow the send buffer without bound.
const FLUSH_AT: usize = 1 << 20;

pub(super) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The sending half of a link.
pub struct LinkSender {
    io: BoxWrite,
    enc: FrameEncoder,
    sealer: Option<Sealer>,
    buf: BytesMut,
    peer: Arc<PeerInfo>,
    heartbeat_interval: Duration,
    last_sent: Instant,
    compress: Option<Level>,
}

impl fmt::Debug for LinkSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_half(f, "LinkSender", &self.peer, self.enc.next_number(), "sent")
    }
}

impl LinkSender {
    pub(super) fn new(
        io: BoxWrite,
        enc: FrameEncoder,
        sealer: Option<Sealer>,
        peer: Arc<PeerInfo>,
        config: &LinkConfig,
        now: Instant,
    ) -> LinkSender {
        LinkSender {
            io,
            enc,
            sealer,
            buf: BytesMut::new(),
            peer,
            heartbeat_interval: config.heartbeat_interval,
            last_sent: now,
            compress: None,
        }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// Compresses the bytes of every Data queued from now on at `level` (`None`: raw). Only
    /// after the peer's Welcome accepted zstd: a peer that did not cannot read them.
    pub fn set_compression(&mut self, level: Option<Level>) {
        self.compress = level;
    }

    /// Frames sent (or queued) so far.
    pub fn frames_sent(&self) -> u64 {
        self.enc.next_number()
    }

    /// Encodes `msg` into the send buffer without writing it; [`flush`](Self::flush)
    /// writes. An invalid or oversized message is refused and nothing is queued.
    pub fn queue(&mut self, msg: &Message) -> Result<(), LinkError> {
        let start = FrameEncoder::begin(&mut self.buf);
        let r = self.encode_payload(msg, start);
        match r {
            Ok((kind, flags)) => self
                .enc
                .finish(&mut self.buf, start, kind, flags)
                .map(|_| ())
                .map_err(|e| self.peer.error(LinkErrorKind::Frame(e))),
            Err(kind) => {
                self.buf.truncate(start);
                Err(self.peer.error(kind))
            }
        }
    }

    /// Appends the payload of `msg`'s frame (sealed in legacy mode) after the header
    /// placeholder at `start`; returns the frame's kind and flags.
    fn encode_payload(
        &mut self,
        msg: &Message,
        start: usize,
    ) -> Result<(FrameKind, u16), LinkErrorKind> {
        let body = start + HEADER_LEN;
        let Some(sealer) = &mut self.sealer else {
            msg.encode_with(&mut self.buf, self.compress)
                .map_err(LinkErrorKind::Message)?;
            return Ok((msg.kind(), 0));
        };
        self.buf.put_u8(msg.kind().0);
        msg.encode_with(&mut self.buf, self.compress)
            .map_err(LinkErrorKind::Message)?;
        let plain_len = self.buf.len() - body;
        // Check the length before the sealer may switch keys: a refused frame must leave
        // the key schedule where the receiver's is.
        self.enc
            .peek_header(FrameKind::SEALED, 0, plain_len + TAG_LEN)
            .map_err(LinkErrorKind::Frame)?;
        let rekey = sealer.prepare(plain_len).map_err(LinkErrorKind::Legacy)?;
        let flags = if rekey { FLAG_REKEY } else { 0 };
        let header = self
            .enc
            .peek_header(FrameKind::SEALED, flags, plain_len + TAG_LEN)
            .map_err(LinkErrorKind::Frame)?;
        let plaintext = self.buf.get_mut(body..).unwrap_or_default();
        let tag = sealer
            .seal(&header.aad(), plaintext)
            .map_err(LinkErrorKind::Legacy)?;
        self.buf.extend_from_slice(&tag);
        Ok((FrameKind::SEALED, flags))
    }

    /// Legacy mode: the current key epoch of what this side sends (how many times it
    /// rekeyed). `None` under TLS.
    pub fn key_epoch(&self) -> Option<u32> {
        self.sealer.as_ref().map(Sealer::epoch)
    }

    /// Writes and flushes everything queued. Not cancel-safe: if dropped mid-write the
    /// link is unusable (drop it).
    pub async fn flush(&mut self) -> Result<(), LinkError> {
        if !self.buf.is_empty() {
            let r = self.io.write_all(&self.buf).await;
            self.buf.clear();
            r.map_err(|e| self.peer.io_error(e))?;
            self.last_sent = Instant::now();
        }
        self.io.flush().await.map_err(|e| self.peer.io_error(e))
    }

    /// Sends one message now.
    pub async fn send(&mut self, msg: &Message) -> Result<(), LinkError> {
        self.queue(msg)?;
        self.flush().await
    }

    /// Sends a Heartbeat now.
    pub async fn send_heartbeat(&mut self) -> Result<(), LinkError> {
        let sent_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.send(&Message::Heartbeat(Heartbeat { sent_at_ms }))
            .await
    }

    /// When a Heartbeat is due if nothing else is sent.
    pub fn heartbeat_due(&self) -> Instant {
        self.last_sent + self.heartbeat_interval
    }

    /// Sends a Heartbeat if the link was idle for the heartbeat interval.
    pub async fn heartbeat_if_idle(&mut self) -> Result<(), LinkError> {
        if Instant::now() >= self.heartbeat_due() {
            self.send_heartbeat().await?;
        }
        Ok(())
    }

    /// Writer task: sends every message from `rx` in order (batching what is already
    /// waiting into one write), and a Heartbeat whenever the link was idle for the
    /// heartbeat interval. Returns `Ok` when `rx` is closed or `cancel` fires (after a
    /// best-effort orderly close), or the first error.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Message>,
        cancel: CancellationToken,
    ) -> Result<(), LinkError> {
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let mut traced = latency::enabled().then(Vec::new);
                    trace_queued(traced.as_mut(), &msg);
                    self.queue(&msg)?;
                    while self.buf.len() < FLUSH_AT {
                        match rx.try_recv() {
                            Ok(msg) => {
                                trace_queued(traced.as_mut(), &msg);
                                self.queue(&msg)?;
                            }
                            Err(_) => break,
                        }
                    }
                    // A partitioned peer (no ACK, no RST) blocks the write once the
                    // socket's buffer is full: cancellation must still end the sender.
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Ok(()),
                        r = self.flush() => r?,
                    }
                    for (stage, end) in traced.into_iter().flatten() {
                        latency::trace(stage, end, None);
                    }
                }
                () = tokio::time::sleep_until(self.heartbeat_due()) => {
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Ok(()),
                        r = self.send_heartbeat() => r?,
                    }
                }
            }
        }
        // Best effort, and bounded (the peer may be gone): the peer learns we closed on
        // purpose (TLS close_notify, TCP FIN).
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.shutdown()).await;
        Ok(())
    }

    /// Flushes and closes the sending direction (TLS close_notify, then TCP FIN).
    pub async fn shutdown(&mut self) -> Result<(), LinkError> {
        self.flush().await?;
        self.io.shutdown().await.map_err(|e| self.peer.io_error(e))
    }
}

/// How long an orderly close may take before the sender gives up on it.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Notes a Data or Ack about to be flushed, for its latency event ([`latency`]).
fn trace_queued(traced: Option<&mut Vec<(&'static str, StreamPos)>>, msg: &Message) {
    let Some(v) = traced else { return };
    match msg {
        Message::Data(d) => v.push(("data_flushed", d.end())),
        Message::Ack(a) => v.push(("ack_flushed", a.durable)),
        _ => {}
    }
}
