//! The link: [`Message`]s in frames over TLS 1.3 (default) or the legacy Blowfish channel,
//! over any `AsyncRead + AsyncWrite` (in practice a TCP stream).
//!
//! - Establish: the collector calls [`Link::accept`] on each accepted connection, the
//!   extractor [`Link::connect`] (or [`Link::connect_tcp`]). Both run the security
//!   handshake (TLS with client certificates, or the PSK handshake of the legacy mode)
//!   within [`LinkConfig::handshake_timeout`]. The legacy mode ([`ServerSecurity::LegacyBlowfish`],
//!   off by default) is described in `crypto::legacy`; its handshake is below. The application handshake (Hello, then
//!   Welcome or Reject) is the caller's, with [`Link::send`] and [`Link::recv`].
//! - Use: [`Link::split`] gives a [`LinkSender`] and a [`LinkReceiver`] for two tasks (the
//!   extractor sends Data while it reads Acks; the collector reads Data while it sends
//!   Acks). [`LinkSender::run`] is a ready-made writer task: it sends what arrives on a
//!   bounded channel and a Heartbeat whenever the link was idle for
//!   [`LinkConfig::heartbeat_interval`].
//! - Liveness: [`LinkReceiver::recv`] consumes Heartbeats and fails with
//!   [`LinkErrorKind::Silent`] when the peer sent nothing for
//!   [`LinkConfig::dead_after`] (heartbeat interval × missed heartbeats).
//! - Limits: frames over [`LinkConfig::max_frame_len`] are refused on receive (and
//!   never sent); backpressure is [`Window`](super::window::Window).
//! - Legacy handshake (frames 0 and 1 each way, plaintext): the client sends
//!   `LegacyClientHello` (version byte 1, 32-byte nonce), the server `LegacyServerHello`
//!   (version, nonce); the client proves it knows the PSK with `LegacyClientFinished`
//!   (HMAC over both hello frames as sent), and only then does the server prove it with
//!   `LegacyServerFinished`. A wrong proof gets a plaintext `Error` frame and the connection
//!   is closed. Every later frame is `Sealed` (Blowfish-CTR + HMAC-SHA-256), its message
//!   kind inside; frame numbers continue from the handshake.
//! - Errors: every [`LinkError`] names the peer's address; a peer's `Error` message
//!   becomes [`LinkErrorKind::PeerFailed`]. The first error ends the link: frame numbers
//!   and keys cannot resynchronise, so the caller drops it and reconnects.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{
    FLAG_REKEY, Frame, FrameDecoder, FrameEncoder, FrameError, FrameKind, HEADER_LEN, MAX_FRAME_LEN,
};
use super::message::{Failure, Heartbeat, MAX_REASON_LEN, Message, MessageError};
use super::{StreamPos, latency};
use crate::compress::Level;
use crate::crypto::legacy::{
    self, Handshake, LegacyError, NONCE_LEN, Opener, Psk, REKEY_AFTER_BLOCKS, Role, Sealer, TAG_LEN,
};
use crate::crypto::tls::{PeerIdentity, TlsClient, TlsServer, TlsSessionError};

/// Smallest read: small frames (Acks, Heartbeats) arrive many per read.
const READ_CHUNK: usize = 64 << 10;

/// [`LinkSender::run`] writes once this much is queued even if more messages wait, so
/// a burst does not grow the send buffer without bound.
const FLUSH_AT: usize = 1 << 20;

/// Version byte of the legacy handshake.
const LEGACY_VERSION: u8 = 1;

/// Largest frame accepted during the legacy handshake: nonces, proofs and an Error frame.
const LEGACY_HANDSHAKE_MAX: usize = MAX_REASON_LEN + 64;

/// Tunables of a link. Both ends should use the same heartbeat settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// Send a Heartbeat when nothing else was sent for this long. Default 1 s.
    pub heartbeat_interval: Duration,
    /// The peer is dead after this many heartbeat intervals without a byte. Default 5.
    pub missed_heartbeats: u32,
    /// Largest frame payload accepted (and sent). Default [`MAX_FRAME_LEN`] (8 MiB).
    pub max_frame_len: usize,
    /// The security handshake must finish within this. Default 10 s.
    pub handshake_timeout: Duration,
    /// Legacy mode only: the sender switches keys after this many 64-bit blocks (at most
    /// [`REKEY_AFTER_BLOCKS`], which receivers enforce). Default [`REKEY_AFTER_BLOCKS`].
    pub legacy_rekey_after_blocks: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            heartbeat_interval: Duration::from_secs(1),
            missed_heartbeats: 5,
            max_frame_len: MAX_FRAME_LEN,
            handshake_timeout: Duration::from_secs(10),
            legacy_rekey_after_blocks: REKEY_AFTER_BLOCKS,
        }
    }
}

impl LinkConfig {
    /// How long a silent peer is waited for: heartbeat interval × missed heartbeats.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval
            .saturating_mul(self.missed_heartbeats.max(1))
    }
}

/// How the collector secures accepted connections.
#[derive(Debug, Clone)]
pub enum ServerSecurity {
    /// TLS 1.3, client certificates required (the default and production mode).
    Tls(TlsServer),
    /// LEGACY: Blowfish with a pre-shared key (`cipher = "blowfish"`), see `crypto::legacy`.
    LegacyBlowfish(Psk),
}

/// How the extractor secures its connection.
#[derive(Debug, Clone)]
pub enum ClientSecurity {
    /// TLS 1.3 with our client certificate; the collector's certificate must be valid for
    /// `server_name`.
    Tls {
        /// The TLS client (certificate, key, CA).
        client: TlsClient,
        /// The name to verify the collector's certificate against (DNS name or IP).
        server_name: String,
    },
    /// LEGACY: Blowfish with a pre-shared key (`cipher = "blowfish"`), see `crypto::legacy`.
    LegacyBlowfish(Psk),
}

/// Which protection a link runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// TLS 1.3 with mutual certificate authentication.
    Tls,
    /// LEGACY: Blowfish-CTR + HMAC-SHA-256 with a pre-shared key.
    LegacyBlowfish,
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkMode::Tls => f.write_str("tls"),
            LinkMode::LegacyBlowfish => f.write_str("legacy blowfish"),
        }
    }
}

/// Who is at the other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address.
    pub addr: SocketAddr,
    /// How the link is protected.
    pub mode: LinkMode,
    /// The identity in the peer's certificate (TLS only).
    pub identity: Option<PeerIdentity>,
}

impl fmt::Display for PeerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.addr, self.mode)?;
        if let Some(id) = &self.identity {
            write!(f, ", {id}")?;
        }
        f.write_str(")")
    }
}

/// A link failure, naming the peer.
#[derive(Debug, thiserror::Error)]
#[error("link with {peer}: {kind}")]
pub struct LinkError {
    /// The peer's address.
    pub peer: SocketAddr,
    /// What happened.
    pub kind: LinkErrorKind,
}

impl LinkError {
    fn new(peer: SocketAddr, kind: LinkErrorKind) -> LinkError {
        LinkError { peer, kind }
    }

    /// True when the peer failed to authenticate (or refused our credentials): what the
    /// collector's authentication-failure metric counts.
    pub fn is_authentication(&self) -> bool {
        match &self.kind {
            LinkErrorKind::Tls(e) => e.failure.is_authentication(),
            LinkErrorKind::Legacy(e) => {
                matches!(e, LegacyError::BadProof | LegacyError::RefusedByPeer { .. })
            }
            _ => false,
        }
    }
}

/// What went wrong on a link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkErrorKind {
    /// TLS failed: handshake (no or untrusted certificate, not TLS...) or session.
    #[error("TLS: {0}")]
    Tls(TlsSessionError),
    /// The legacy channel failed: wrong PSK, a frame that fails its HMAC, a missed rekey.
    #[error("legacy blowfish link: {0}")]
    Legacy(LegacyError),
    /// The security handshake did not finish in time.
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    /// A bad frame: garbage, corrupt, oversized, replayed, reordered.
    #[error("{0}")]
    Frame(FrameError),
    /// A frame that does not hold a valid message (or a message we refuse to send).
    #[error("bad message: {0}")]
    Message(MessageError),
    /// Something the protocol does not allow at this point.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer sent an Error message (and closes).
    #[error("the peer reported an error: {0:?}")]
    PeerFailed(String),
    /// The peer closed the connection between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// The connection ended inside a frame.
    #[error("the connection closed in the middle of a frame ({buffered} bytes of it received)")]
    Truncated {
        /// Bytes of the incomplete frame received.
        buffered: usize,
    },
    /// Nothing received for too long.
    #[error("the peer sent nothing for {0:?}, not even a heartbeat: presumed dead")]
    Silent(Duration),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(io::Error),
}

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// An established link. See the module docs.
#[derive(Debug)]
pub struct Link {
    sender: LinkSender,
    receiver: LinkReceiver,
}

impl Link {
    /// Collector side: runs the security handshake on an accepted connection from `peer`.
    pub async fn accept<S>(
        io: S,
        peer: SocketAddr,
        security: &ServerSecurity,
        config: &LinkConfig,
    ) -> Result<Link, LinkError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = async {
            match security {
                ServerSecurity::Tls(tls) => {
                    let (stream, identity) = tls.accept(io).await.map_err(LinkErrorKind::Tls)?;
                    let info = PeerInfo {
                        addr: peer,
                        mode: LinkMode::Tls,
                        identity: Some(identity),
                    };
                    Ok(Link::assemble(stream, info, config))
                }
                ServerSecurity::LegacyBlowfish(psk) => legacy_accept(io, peer, psk, config).await,
            }
        };
        Self::within_timeout(handshake, peer, config).await
    }

    /// Extractor side: runs the security handshake on a connection to `peer`.
    pub async fn connect<S>(
        io: S,
        peer: SocketAddr,
        security: &ClientSecurity,
        config: &LinkConfig,
    ) -> Result<Link, LinkError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let handshake = async {
            match security {
                ClientSecurity::Tls {
                    client,
                    server_name,
                } => {
                    let (stream, identity) = client
                        .connect(io, server_name)
                        .await
                        .map_err(LinkErrorKind::Tls)?;
                    let info = PeerInfo {
                        addr: peer,
                        mode: LinkMode::Tls,
                        identity: Some(identity),
                    };
                    Ok(Link::assemble(stream, info, config))
                }
                ClientSecurity::LegacyBlowfish(psk) => legacy_connect(io, peer, psk, config).await,
            }
        };
        Self::within_timeout(handshake, peer, config).await
    }

    /// Extractor side: connects over TCP (with `TCP_NODELAY`, since Acks are small and
    /// latency matters) and runs [`connect`](Self::connect).
    pub async fn connect_tcp(
        addr: SocketAddr,
        security: &ClientSecurity,
        config: &LinkConfig,
    ) -> Result<Link, LinkError> {
        let tcp = tokio::time::timeout(
            config.handshake_timeout,
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| {
            LinkError::new(
                addr,
                LinkErrorKind::HandshakeTimeout(config.handshake_timeout),
            )
        })?
        .map_err(|e| LinkError::new(addr, LinkErrorKind::Io(e)))?;
        tcp.set_nodelay(true)
            .map_err(|e| LinkError::new(addr, LinkErrorKind::Io(e)))?;
        Self::connect(tcp, addr, security, config).await
    }

    async fn within_timeout(
        handshake: impl Future<Output = Result<Link, LinkErrorKind>>,
        peer: SocketAddr,
        config: &LinkConfig,
    ) -> Result<Link, LinkError> {
        match tokio::time::timeout(config.handshake_timeout, handshake).await {
            Ok(Ok(link)) => {
                tracing::debug!(peer = %link.peer(), "link established");
                Ok(link)
            }
            Ok(Err(kind)) => Err(LinkError::new(peer, kind)),
            Err(_) => Err(LinkError::new(
                peer,
                LinkErrorKind::HandshakeTimeout(config.handshake_timeout),
            )),
        }
    }

    fn assemble<S>(stream: S, info: PeerInfo, config: &LinkConfig) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let parts = Parts {
            enc: FrameEncoder::new(config.max_frame_len),
            dec: FrameDecoder::new(config.max_frame_len),
            sealed: None,
        };
        Link::from_parts(Box::new(r), Box::new(w), parts, info, config)
    }

    fn from_parts(
        read: BoxRead,
        write: BoxWrite,
        parts: Parts,
        info: PeerInfo,
        config: &LinkConfig,
    ) -> Link {
        let peer = Arc::new(info);
        let now = Instant::now();
        let (sealer, opener) = match parts.sealed {
            Some((s, o)) => (Some(s), Some(o)),
            None => (None, None),
        };
        Link {
            sender: LinkSender {
                io: write,
                enc: parts.enc,
                sealer,
                buf: BytesMut::new(),
                peer: peer.clone(),
                heartbeat_interval: config.heartbeat_interval,
                last_sent: now,
                compress: None,
            },
            receiver: LinkReceiver {
                io: read,
                dec: parts.dec,
                opener,
                peer,
                dead_after: config.dead_after(),
                deadline: now + config.dead_after(),
                last_heartbeat: None,
            },
        }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.sender.peer
    }

    /// Sends one message and flushes it ([`LinkSender::send`]).
    pub async fn send(&mut self, msg: &Message) -> Result<(), LinkError> {
        self.sender.send(msg).await
    }

    /// Receives the next message ([`LinkReceiver::recv`]).
    pub async fn recv(&mut self) -> Result<Message, LinkError> {
        self.receiver.recv().await
    }

    /// Compresses the bytes of every Data sent from now on at `level` (`None`: raw), once
    /// the peer accepted it ([`LinkSender::set_compression`]).
    pub fn set_compression(&mut self, level: Option<Level>) {
        self.sender.set_compression(level);
    }

    /// The two halves, for a sending task and a receiving task.
    pub fn split(self) -> (LinkSender, LinkReceiver) {
        (self.sender, self.receiver)
    }
}

/// Framing state carried from the handshake into the link.
struct Parts {
    enc: FrameEncoder,
    dec: FrameDecoder,
    /// Legacy mode: the keyed channel.
    sealed: Option<(Sealer, Opener)>,
}

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
        write!(
            f,
            "LinkSender({}, {} frames sent)",
            self.peer,
            self.enc.next_number()
        )
    }
}

impl LinkSender {
    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    fn err(&self, kind: LinkErrorKind) -> LinkError {
        LinkError::new(self.peer.addr, kind)
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
                .map_err(|e| self.err(LinkErrorKind::Frame(e))),
            Err(kind) => {
                self.buf.truncate(start);
                Err(self.err(kind))
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
            r.map_err(|e| self.io_err(e))?;
            self.last_sent = Instant::now();
        }
        self.io.flush().await.map_err(|e| self.io_err(e))
    }

    fn io_err(&self, e: io::Error) -> LinkError {
        self.err(classify_io(&self.peer, e))
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
        self.io.shutdown().await.map_err(|e| self.io_err(e))
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
        write!(
            f,
            "LinkReceiver({}, {} frames received)",
            self.peer,
            self.dec.next_number()
        )
    }
}

impl LinkReceiver {
    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    fn err(&self, kind: LinkErrorKind) -> LinkError {
        LinkError::new(self.peer.addr, kind)
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
            match self.open(frame).map_err(|k| self.err(k))? {
                Message::Heartbeat(h) => self.last_heartbeat = Some(h),
                Message::Error(f) => return Err(self.err(LinkErrorKind::PeerFailed(f.reason))),
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
                .map_err(|e| self.err(LinkErrorKind::Frame(e)))?
            {
                return Ok(frame);
            }
            let want = self.dec.wanted().max(READ_CHUNK);
            self.dec.buffer_mut().reserve(want);
            let read =
                tokio::time::timeout_at(self.deadline, self.io.read_buf(self.dec.buffer_mut()))
                    .await;
            let n = match read {
                Err(_) => return Err(self.err(LinkErrorKind::Silent(self.dead_after))),
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Ok(Err(e)) => return Err(self.err(classify_io(&self.peer, e))),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                let buffered = self.dec.buffered();
                return Err(self.err(if buffered == 0 {
                    LinkErrorKind::Closed
                } else {
                    LinkErrorKind::Truncated { buffered }
                }));
            }
            self.deadline = Instant::now() + self.dead_after;
        }
    }
}

/// An I/O error on the link: under TLS, the TLS failure inside it (an alert from the peer,
/// a corrupt record) when there is one.
fn classify_io(peer: &PeerInfo, e: io::Error) -> LinkErrorKind {
    if peer.mode == LinkMode::Tls
        && let Some(tls) = TlsSessionError::from_tls_io(&e)
    {
        return LinkErrorKind::Tls(tls);
    }
    LinkErrorKind::Io(e)
}

/// Frame I/O during the legacy handshake, recording the transcript.
struct HandshakeIo<S> {
    io: S,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: BytesMut,
    transcript: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HandshakeIo<S> {
    fn new(io: S, config: &LinkConfig) -> Self {
        let mut dec = FrameDecoder::new(config.max_frame_len);
        dec.set_max_len(LEGACY_HANDSHAKE_MAX);
        HandshakeIo {
            io,
            enc: FrameEncoder::new(config.max_frame_len),
            dec,
            buf: BytesMut::new(),
            transcript: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        kind: FrameKind,
        payload: &[u8],
        record: bool,
    ) -> Result<(), LinkErrorKind> {
        self.buf.clear();
        self.enc
            .encode(kind, 0, payload, &mut self.buf)
            .map_err(LinkErrorKind::Frame)?;
        if record {
            self.transcript.extend_from_slice(&self.buf);
        }
        self.io
            .write_all(&self.buf)
            .await
            .map_err(LinkErrorKind::Io)?;
        self.io.flush().await.map_err(LinkErrorKind::Io)
    }

    /// Best effort: tells the peer why we give up, in a plaintext Error frame.
    async fn send_error(&mut self, reason: &str) {
        let mut body = BytesMut::new();
        let msg = Message::Error(Failure {
            reason: reason.to_string(),
        });
        if msg.encode(&mut body).is_ok() {
            let _ = self.send(FrameKind::ERROR, &body, false).await;
        }
    }

    async fn recv(&mut self, record: bool) -> Result<Frame, LinkErrorKind> {
        loop {
            if let Some(frame) = self.dec.poll().map_err(LinkErrorKind::Frame)? {
                if record {
                    self.transcript.extend_from_slice(&frame.header.encode());
                    self.transcript.extend_from_slice(&frame.payload);
                }
                return Ok(frame);
            }
            let want = self.dec.wanted();
            self.dec.buffer_mut().reserve(want);
            let n = match self.io.read_buf(self.dec.buffer_mut()).await {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(LinkErrorKind::Io(e)),
            };
            if n == 0 {
                let buffered = self.dec.buffered();
                return Err(if buffered == 0 {
                    LinkErrorKind::Closed
                } else {
                    LinkErrorKind::Truncated { buffered }
                });
            }
        }
    }

    /// Receives a frame of `kind` (an Error frame from the peer is its refusal).
    async fn expect(&mut self, kind: FrameKind, record: bool) -> Result<Frame, LinkErrorKind> {
        let frame = self.recv(record).await?;
        if frame.header.kind == FrameKind::ERROR {
            let reason = match Message::decode(FrameKind::ERROR, frame.payload.freeze()) {
                Ok(Message::Error(f)) => f.reason,
                _ => "(unreadable reason)".to_string(),
            };
            return Err(LinkErrorKind::PeerFailed(reason));
        }
        if frame.header.kind != kind || frame.header.flags != 0 {
            return Err(LinkErrorKind::Protocol(format!(
                "legacy handshake: expected {kind}, got {} with flags 0x{:04x}",
                frame.header.kind, frame.header.flags
            )));
        }
        Ok(frame)
    }

    /// Turns the handshake state into a link.
    fn into_link(mut self, peer: SocketAddr, sealed: (Sealer, Opener), config: &LinkConfig) -> Link
    where
        S: Send + 'static,
    {
        self.dec.set_max_len(config.max_frame_len);
        let (r, w) = tokio::io::split(self.io);
        let parts = Parts {
            enc: self.enc,
            dec: self.dec,
            sealed: Some(sealed),
        };
        let info = PeerInfo {
            addr: peer,
            mode: LinkMode::LegacyBlowfish,
            identity: None,
        };
        Link::from_parts(Box::new(r), Box::new(w), parts, info, config)
    }
}

/// Parses a legacy hello payload: version byte and nonce.
fn legacy_hello(frame: &Frame) -> Result<[u8; NONCE_LEN], LinkErrorKind> {
    let bad = |detail: String| LinkErrorKind::Legacy(LegacyError::Handshake(detail));
    let Some((&version, nonce)) = frame.payload.split_first() else {
        return Err(bad("empty hello".to_string()));
    };
    if version != LEGACY_VERSION {
        return Err(bad(format!(
            "legacy handshake version {version}, this side speaks {LEGACY_VERSION}"
        )));
    }
    <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| {
        bad(format!(
            "nonce of {} bytes, expected {NONCE_LEN}",
            nonce.len()
        ))
    })
}

fn hello_payload(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut p = Vec::with_capacity(1 + NONCE_LEN);
    p.push(LEGACY_VERSION);
    p.extend_from_slice(nonce);
    p
}

async fn legacy_connect<S>(
    io: S,
    peer: SocketAddr,
    psk: &Psk,
    config: &LinkConfig,
) -> Result<Link, LinkErrorKind>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut hs = HandshakeIo::new(io, config);
    let client_nonce = legacy::random_nonce();
    hs.send(
        FrameKind::LEGACY_CLIENT_HELLO,
        &hello_payload(&client_nonce),
        true,
    )
    .await?;
    let server_hello = hs.expect(FrameKind::LEGACY_SERVER_HELLO, true).await?;
    let server_nonce = legacy_hello(&server_hello)?;
    let keys = Handshake::new(psk, &client_nonce, &server_nonce, &hs.transcript);
    hs.send(
        FrameKind::LEGACY_CLIENT_FINISHED,
        &keys.finished(Role::Client),
        false,
    )
    .await?;
    let finished = match hs.expect(FrameKind::LEGACY_SERVER_FINISHED, false).await {
        Err(LinkErrorKind::PeerFailed(reason)) => {
            return Err(LinkErrorKind::Legacy(LegacyError::RefusedByPeer { reason }));
        }
        other => other?,
    };
    keys.verify_finished(Role::Server, &finished.payload)
        .map_err(LinkErrorKind::Legacy)?;
    let sealed = keys.into_channel(Role::Client, config.legacy_rekey_after_blocks);
    Ok(hs.into_link(peer, sealed, config))
}

async fn legacy_accept<S>(
    io: S,
    peer: SocketAddr,
    psk: &Psk,
    config: &LinkConfig,
) -> Result<Link, LinkErrorKind>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut hs = HandshakeIo::new(io, config);
    let client_hello = hs.expect(FrameKind::LEGACY_CLIENT_HELLO, true).await?;
    let client_nonce = match legacy_hello(&client_hello) {
        Ok(n) => n,
        Err(e) => {
            hs.send_error(&e.to_string()).await;
            return Err(e);
        }
    };
    let server_nonce = legacy::random_nonce();
    hs.send(
        FrameKind::LEGACY_SERVER_HELLO,
        &hello_payload(&server_nonce),
        true,
    )
    .await?;
    let keys = Handshake::new(psk, &client_nonce, &server_nonce, &hs.transcript);
    let proof = hs.expect(FrameKind::LEGACY_CLIENT_FINISHED, false).await?;
    if let Err(e) = keys.verify_finished(Role::Client, &proof.payload) {
        hs.send_error("authentication failed: the client's proof does not match the collector's pre-shared key")
            .await;
        return Err(LinkErrorKind::Legacy(e));
    }
    hs.send(
        FrameKind::LEGACY_SERVER_FINISHED,
        &keys.finished(Role::Server),
        false,
    )
    .await?;
    let sealed = keys.into_channel(Role::Server, config.legacy_rekey_after_blocks);
    Ok(hs.into_link(peer, sealed, config))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use redovault_redo::position::{LogSeq, ThreadId};

    use super::*;
    use crate::crypto::tls::{PkiPaths, generate_pki};
    use crate::wire::message::{Ack, Data, Hello, PROTOCOL_VERSION, Welcome};
    use crate::wire::{StreamId, StreamPos};

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    fn tls_pair(p: &PkiPaths) -> (ServerSecurity, ClientSecurity) {
        (
            ServerSecurity::Tls(
                TlsServer::from_pem_files(&p.server_cert, &p.server_key, &p.ca).unwrap(),
            ),
            ClientSecurity::Tls {
                client: TlsClient::from_pem_files(&p.client_cert, &p.client_key, &p.ca).unwrap(),
                server_name: "localhost".into(),
            },
        )
    }

    async fn pair(
        server: &ServerSecurity,
        client: &ClientSecurity,
        config: &LinkConfig,
    ) -> (Link, Link) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let (s, c) = tokio::join!(
            Link::accept(a, addr(), server, config),
            Link::connect(b, addr(), client, config)
        );
        (s.unwrap(), c.unwrap())
    }

    fn hello() -> Message {
        Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            stream: StreamId {
                db_id: 42,
                resetlogs_id: 7,
                thread: ThreadId(1),
            },
            db_name: "FREE".into(),
            extractor_id: "redovault-extractor".into(),
            from: StreamPos::default(),
            capabilities: None,
        })
    }

    fn data(offset: u64, len: usize) -> Message {
        Message::Data(Data {
            pos: StreamPos {
                seq: LogSeq(3),
                offset,
            },
            bytes: Bytes::from(vec![0xa5; len]),
            commits: vec![],
            log_end: None,
        })
    }

    #[tokio::test]
    async fn tls_conversation_and_identities() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        let (server, client) = tls_pair(&p);
        let (mut s, mut c) = pair(&server, &client, &LinkConfig::default()).await;
        let id = s.peer().identity.clone().unwrap();
        assert!(id.is("redovault-extractor"), "{id}");
        assert!(c.peer().identity.as_ref().unwrap().is("localhost"));
        assert_eq!(s.peer().mode, LinkMode::Tls);
        c.send(&hello()).await.unwrap();
        assert_eq!(s.recv().await.unwrap(), hello());
        let welcome = Message::Welcome(Welcome {
            resume: StreamPos::default(),
            last_commit: None,
            capabilities: None,
        });
        s.send(&welcome).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), welcome);
        for i in 0..20u64 {
            let m = data(i * 4096, 4096);
            c.send(&m).await.unwrap();
            assert_eq!(s.recv().await.unwrap(), m);
            let ack = Message::Ack(Ack {
                durable: StreamPos {
                    seq: LogSeq(3),
                    offset: (i + 1) * 4096,
                },
                last_commit: None,
            });
            s.send(&ack).await.unwrap();
            assert_eq!(c.recv().await.unwrap(), ack);
        }
        // An orderly close is seen as Closed between frames.
        let (mut cs, _cr) = c.split();
        cs.shutdown().await.unwrap();
        let e = s.recv().await.unwrap_err();
        assert!(matches!(e.kind, LinkErrorKind::Closed), "{e}");
        assert_eq!(e.peer, addr());
    }

    #[tokio::test]
    async fn heartbeats_keep_an_idle_link_alive_and_silence_kills_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        let (server, client) = tls_pair(&p);
        let config = LinkConfig {
            heartbeat_interval: Duration::from_millis(30),
            missed_heartbeats: 4,
            ..LinkConfig::default()
        };
        let (s, c) = pair(&server, &client, &config).await;
        let (c_tx, _c_rx) = c.split();
        let (_s_tx, mut s_rx) = s.split();
        let (tx, rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let writer = tokio::spawn(c_tx.run(rx, cancel.clone()));
        // Idle for 10 dead-peer times' worth of heartbeats... then a real message.
        let got = tokio::spawn(async move {
            let m = s_rx.recv().await;
            (m, s_rx)
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        tx.send(hello()).await.unwrap();
        let (m, mut s_rx) = got.await.unwrap();
        assert_eq!(m.unwrap(), hello());
        assert!(s_rx.last_heartbeat().is_some(), "heartbeats were received");
        assert!(
            s_rx.frames_received() > 5,
            "{} frames",
            s_rx.frames_received()
        );
        // Stop the writer without closing the connection: silence.
        cancel.cancel();
        writer.await.unwrap().unwrap();
        let e = s_rx.recv().await.unwrap_err();
        // The writer shut the stream down on cancel: that is an orderly close.
        assert!(matches!(e.kind, LinkErrorKind::Closed), "{e}");
        drop(tx);

        // A peer that says nothing at all is declared dead.
        let (s, _c) = pair(&server, &client, &config).await;
        let (_s_tx, mut s_rx) = s.split();
        let e = s_rx.recv().await.unwrap_err();
        assert!(
            matches!(e.kind, LinkErrorKind::Silent(d) if d == Duration::from_millis(120)),
            "{e}"
        );
        assert!(e.to_string().contains("127.0.0.1:9"), "{e}");
    }

    #[tokio::test]
    async fn oversized_messages_are_never_sent_and_invalid_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        let (server, client) = tls_pair(&p);
        let config = LinkConfig {
            max_frame_len: 1000,
            ..LinkConfig::default()
        };
        let (mut s, mut c) = pair(&server, &client, &config).await;
        let e = c.send(&data(0, 1001)).await.unwrap_err();
        assert!(matches!(e.kind, LinkErrorKind::Frame(_)), "{e}");
        let bad = Message::Data(Data {
            pos: StreamPos::default(),
            bytes: Bytes::new(),
            commits: vec![],
            log_end: None,
        });
        let e = c.send(&bad).await.unwrap_err();
        assert!(matches!(e.kind, LinkErrorKind::Message(_)), "{e}");
        // The link is still fine and numbering has no gap.
        c.send(&data(0, 900)).await.unwrap();
        assert_eq!(s.recv().await.unwrap(), data(0, 900));
    }

    #[tokio::test]
    async fn legacy_conversation_rekeys_under_a_small_limit() {
        let psk = Psk::generate();
        let server = ServerSecurity::LegacyBlowfish(psk.clone());
        let client = ClientSecurity::LegacyBlowfish(psk);
        // 1024 blocks = 8 KiB per key: a 4 KiB chunk fits once, so nearly every frame rekeys.
        let config = LinkConfig {
            legacy_rekey_after_blocks: 1024,
            ..LinkConfig::default()
        };
        let (mut s, mut c) = pair(&server, &client, &config).await;
        assert_eq!(s.peer().mode, LinkMode::LegacyBlowfish);
        assert!(s.peer().identity.is_none());
        c.send(&hello()).await.unwrap();
        assert_eq!(s.recv().await.unwrap(), hello());
        for i in 0..50u64 {
            let m = data(i * 4096, 4096);
            c.send(&m).await.unwrap();
            assert_eq!(s.recv().await.unwrap(), m);
        }
        let (cs, _) = c.split();
        let (_, sr) = s.split();
        assert!(cs.key_epoch().unwrap() >= 24, "epoch {:?}", cs.key_epoch());
        assert_eq!(
            cs.key_epoch(),
            sr.key_epoch(),
            "receiver followed every rekey"
        );
    }

    #[tokio::test]
    async fn legacy_wrong_psk_is_refused_on_both_sides() {
        let server = ServerSecurity::LegacyBlowfish(Psk::generate());
        let client = ClientSecurity::LegacyBlowfish(Psk::generate());
        let config = LinkConfig::default();
        let (a, b) = tokio::io::duplex(1 << 16);
        let (s, c) = tokio::join!(
            Link::accept(a, addr(), &server, &config),
            Link::connect(b, addr(), &client, &config)
        );
        let s = s.unwrap_err();
        assert!(
            matches!(s.kind, LinkErrorKind::Legacy(LegacyError::BadProof)),
            "{s}"
        );
        assert!(s.is_authentication());
        let c = c.unwrap_err();
        assert!(
            matches!(
                c.kind,
                LinkErrorKind::Legacy(LegacyError::RefusedByPeer { .. })
            ),
            "{c}"
        );
        assert!(c.to_string().contains("pre-shared key"), "{c}");
    }

    #[tokio::test]
    async fn tls_client_to_legacy_server_and_back_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = generate_pki(dir.path()).unwrap();
        let (tls_server, tls_client) = tls_pair(&p);
        let legacy_server = ServerSecurity::LegacyBlowfish(Psk::generate());
        let legacy_client = ClientSecurity::LegacyBlowfish(Psk::generate());
        let config = LinkConfig {
            handshake_timeout: Duration::from_secs(2),
            ..LinkConfig::default()
        };
        let (a, b) = tokio::io::duplex(1 << 16);
        let (s, _c) = tokio::join!(
            Link::accept(a, addr(), &legacy_server, &config),
            Link::connect(b, addr(), &tls_client, &config)
        );
        let s = s.unwrap_err();
        assert!(matches!(s.kind, LinkErrorKind::Frame(_)), "{s}");
        let (a, b) = tokio::io::duplex(1 << 16);
        let (s, _c) = tokio::join!(
            Link::accept(a, addr(), &tls_server, &config),
            Link::connect(b, addr(), &legacy_client, &config)
        );
        let s = s.unwrap_err();
        assert!(
            matches!(&s.kind, LinkErrorKind::Tls(t) if t.failure == crate::crypto::tls::TlsFailure::NotTls),
            "{s}"
        );
    }
}
