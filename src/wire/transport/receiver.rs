//! The receiving half of a link: frames out of the byte stream (opened in legacy mode),
//! Heartbeats consumed, a silent peer presumed dead.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::error::classify_io;
use super::{LinkConfig, LinkError, LinkErrorKind, LinkMode, PeerInfo, fmt_half};
use crate::crypto::legacy::Opener;
use crate::wire::frame::{FLAG_REKEY, Frame, FrameDecoder, FrameKind};
use crate::wire::message::{Heartbeat, Message};

/// Smallest read: small frames (Acks, Heartbeats) arrive many per read.
const READ_CHUNK: usize = 64 << 10;

pub(super) type BoxRead = Box<dyn AsyncRead + Send + Unpin>;

/// The receiving half of a link.
pub struct LinkReceiver {
    io: BoxRead,
    dec: FrameDecoder,
    opener: Option<Opener>,
    peer: Arc<PeerInfo>,
    dead_after: Duration,
    deadline: Instant,
    last_heartbeat: Option<Heartbeat>,
}

impl fmt::Debug for LinkReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_half(
            f,
            "LinkReceiver",
            &self.peer,
            self.dec.next_number(),
            "received",
        )
    }
}

impl LinkReceiver {
    pub(super) fn new(
        io: BoxRead,
        dec: FrameDecoder,
        opener: Option<Opener>,
        peer: Arc<PeerInfo>,
        config: &LinkConfig,
        now: Instant,
    ) -> LinkReceiver {
        LinkReceiver {
            io,
            dec,
            opener,
            peer,
            dead_after: config.dead_after(),
            deadline: now + config.dead_after(),
            last_heartbeat: None,
        }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// Frames received so far.
    pub fn frames_received(&self) -> u64 {
        self.dec.next_number()
    }

    /// The last Heartbeat received (the peer's clock, for lag estimates).
    pub fn last_heartbeat(&self) -> Option<Heartbeat> {
        self.last_heartbeat
    }

    /// The next message that is not a Heartbeat. Fails on any bad frame or message, when
    /// the peer sends an Error message ([`LinkErrorKind::PeerFailed`]), closes, or stays
    /// silent for the dead-peer time. Cancel-safe: bytes read stay buffered for the next
    /// call, and the silence deadline is kept across calls.
    pub async fn recv(&mut self) -> Result<Message, LinkError> {
        loop {
            let frame = self.next_frame().await?;
            match self.open(frame).map_err(|k| self.peer.error(k))? {
                Message::Heartbeat(h) => self.last_heartbeat = Some(h),
                Message::Error(f) => {
                    return Err(self.peer.error(LinkErrorKind::PeerFailed(f.reason)));
                }
                msg => return Ok(msg),
            }
        }
    }

    /// Legacy mode: the current key epoch of what the peer sends. `None` under TLS.
    pub fn key_epoch(&self) -> Option<u32> {
        self.opener.as_ref().map(Opener::epoch)
    }

    fn open(&mut self, frame: Frame) -> Result<Message, LinkErrorKind> {
        let Frame {
            header,
            mut payload,
        } = frame;
        if let Some(opener) = &mut self.opener {
            if header.kind != FrameKind::SEALED {
                return Err(LinkErrorKind::Protocol(format!(
                    "frame #{} is a plaintext {} frame on an encrypted legacy link",
                    header.number, header.kind
                )));
            }
            let n = opener
                .open(&header.aad(), header.flags & FLAG_REKEY != 0, &mut payload)
                .map_err(LinkErrorKind::Legacy)?;
            payload.truncate(n);
            let Some(&inner) = payload.first() else {
                return Err(LinkErrorKind::Protocol(format!(
                    "sealed frame #{} holds no message",
                    header.number
                )));
            };
            let body = payload.split_off(1);
            return Message::decode(FrameKind(inner), body.freeze())
                .map_err(LinkErrorKind::Message);
        }
        if header.flags != 0 {
            return Err(LinkErrorKind::Protocol(format!(
                "frame #{} has flags 0x{:04x}, which only the legacy mode uses",
                header.number, header.flags
            )));
        }
        Message::decode(header.kind, payload.freeze()).map_err(LinkErrorKind::Message)
    }

    async fn next_frame(&mut self) -> Result<Frame, LinkError> {
        loop {
            if let Some(frame) = self
                .dec
                .poll()
                .map_err(|e| self.peer.error(LinkErrorKind::Frame(e)))?
            {
                return Ok(frame);
            }
            let read = read_more(&mut self.io, &mut self.dec, READ_CHUNK, self.peer.mode);
            match tokio::time::timeout_at(self.deadline, read).await {
                Err(_) => return Err(self.peer.error(LinkErrorKind::Silent(self.dead_after))),
                Ok(r) => r.map_err(|k| self.peer.error(k))?,
            }
            self.deadline = Instant::now() + self.dead_after;
        }
    }
}

/// One read from `io` into `dec`'s buffer (room for at least the rest of the frame, and
/// `min_read`). The peer closing is [`LinkErrorKind::Closed`] between frames and
/// [`LinkErrorKind::Truncated`] inside one.
pub(super) async fn read_more<R: AsyncRead + Unpin>(
    io: &mut R,
    dec: &mut FrameDecoder,
    min_read: usize,
    mode: LinkMode,
) -> Result<(), LinkErrorKind> {
    let want = dec.wanted().max(min_read);
    dec.buffer_mut().reserve(want);
    let n = match io.read_buf(dec.buffer_mut()).await {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
        Err(e) => return Err(classify_io(mode, e)),
    };
    if n == 0 {
        let buffered = dec.buffered();
        return Err(if buffered == 0 {
            LinkErrorKind::Closed
        } else {
            LinkErrorKind::Truncated { buffered }
        });
    }
    Ok(())
}
