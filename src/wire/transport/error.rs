//! What can go wrong on a link, always naming the peer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{LinkMode, PeerInfo};
use crate::crypto::legacy::LegacyError;
use crate::crypto::tls::TlsSessionError;
use crate::wire::frame::FrameError;
use crate::wire::message::MessageError;

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
    pub(super) fn new(peer: SocketAddr, kind: LinkErrorKind) -> LinkError {
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

impl PeerInfo {
    /// `kind`, as a failure of the link with this peer.
    pub(super) fn error(&self, kind: LinkErrorKind) -> LinkError {
        LinkError::new(self.addr, kind)
    }

    /// An I/O error on the link with this peer ([`classify_io`]).
    pub(super) fn io_error(&self, e: io::Error) -> LinkError {
        self.error(classify_io(self.mode, e))
    }
}

/// An I/O error on a link in `mode`: under TLS, the TLS failure inside it (an alert from
/// the peer, a corrupt record) when there is one.
pub(super) fn classify_io(mode: LinkMode, e: io::Error) -> LinkErrorKind {
    if mode == LinkMode::Tls
        && let Some(tls) = TlsSessionError::from_tls_io(&e)
    {
        return LinkErrorKind::Tls(tls);
    }
    LinkErrorKind::Io(e)
}
