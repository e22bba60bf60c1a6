//! The link: messages ([`Message`](super::message::Message)) in frames over TLS 1.3
//! (default) or the legacy Blowfish channel, over any `AsyncRead + AsyncWrite` (in practice
//! a TCP stream).
//!
//! ```text
//! collector: Link::accept ─┐  security handshake within handshake_timeout: TLS with client
//! extractor: Link::connect ┴► certificates, or the legacy PSK handshake (below)
//!   ─► caller's Hello / Welcome|Reject (Link::send, Link::recv)
//!   ─► Link::split ─► LinkSender  (LinkSender::run: bounded channel → frames, Heartbeat
//!                  │               after heartbeat_interval idle)
//!                  └► LinkReceiver (recv: eats Heartbeats; Silent after dead_after)
//! legacy handshake (frames 0 and 1 each way, plaintext):
//!   client LegacyClientHello (version 1, 32-byte nonce) ─► server LegacyServerHello
//!   (version, nonce)
//!   client LegacyClientFinished (HMAC over both hellos as sent) ─► checked, then
//!   server LegacyServerFinished ─► every later frame Sealed (Blowfish-CTR + HMAC-SHA-256),
//!   its message kind inside, frame numbers continuing from the handshake
//! ```
//!
//! Invariants:
//! - The server proves it knows the PSK only after the client has; a wrong proof gets a
//!   plaintext `Error` frame and the connection is closed. The legacy mode
//!   ([`ServerSecurity::LegacyBlowfish`]) is off by default (see `crypto::legacy`).
//! - Frames over [`LinkConfig::max_frame_len`] are refused on receive and never sent;
//!   backpressure is [`Window`](super::window::Window).
//! - [`LinkReceiver::recv`] fails with [`LinkErrorKind::Silent`] when the peer sent nothing
//!   for [`LinkConfig::dead_after`] (heartbeat interval × missed heartbeats).
//! - Every [`LinkError`] names the peer's address; a peer's `Error` message becomes
//!   [`LinkErrorKind::PeerFailed`]. The first error ends the link: frame numbers and keys
//!   cannot resynchronise, so the caller drops it and reconnects.
//!
//! See [`Link::accept`], [`Link::connect`], [`Link::connect_tcp`], [`Link::split`],
//! [`LinkSender::run`], [`LinkReceiver`] and [`LinkConfig`] (`handshake_timeout`, ...).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::crypto::legacy::{Opener, Sealer};
use crate::crypto::legacy::{Psk, REKEY_AFTER_BLOCKS};
use crate::crypto::tls::{PeerIdentity, TlsClient, TlsServer};
use crate::wire::frame::{FrameDecoder, FrameEncoder, MAX_FRAME_LEN};

mod error;
mod legacy;
mod link;
mod receiver;
mod sender;
#[cfg(test)]
mod tests;

pub use error::{LinkError, LinkErrorKind};
pub use link::Link;
pub use receiver::LinkReceiver;
pub use sender::LinkSender;

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

/// Framing state carried from the security handshake into the link (frame numbers go on).
struct Parts {
    enc: FrameEncoder,
    dec: FrameDecoder,
    /// Legacy mode: the keyed channel.
    sealed: Option<(Sealer, Opener)>,
}

/// How either half of a link shows in logs: `Name(peer, N frames sent|received)`.
fn fmt_half(
    f: &mut fmt::Formatter<'_>,
    half: &str,
    peer: &PeerInfo,
    frames: u64,
    verb: &str,
) -> fmt::Result {
    write!(f, "{half}({peer}, {frames} frames {verb})")
}
