//! The legacy Blowfish handshake (frames 0 and 1 each way, plaintext; see the module docs
//! of `transport` and `crypto::legacy`), ending in the keyed channel the link goes on with.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::receiver::read_more;
use super::{LinkConfig, LinkErrorKind, LinkMode, Parts};
use crate::crypto::legacy::{self, Handshake, LegacyError, NONCE_LEN, Opener, Psk, Role, Sealer};
use crate::wire::frame::{Frame, FrameDecoder, FrameEncoder, FrameKind};
use crate::wire::message::{Failure, MAX_REASON_LEN, Message};

/// Version byte of the legacy handshake.
const LEGACY_VERSION: u8 = 1;

/// Largest frame accepted during the legacy handshake: nonces, proofs and an Error frame.
const LEGACY_HANDSHAKE_MAX: usize = MAX_REASON_LEN + 64;

/// Frame I/O during the legacy handshake, recording the transcript.
pub(super) struct HandshakeIo<S> {
    io: S,
    enc: FrameEncoder,
    dec: FrameDecoder,
    buf: BytesMut,
    transcript: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HandshakeIo<S> {
    pub(super) fn new(io: S, config: &LinkConfig) -> Self {
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
            read_more(&mut self.io, &mut self.dec, 0, LinkMode::LegacyBlowfish).await?;
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

    /// The framing state the link continues with: frame numbers go on from the handshake.
    fn into_parts(mut self, sealed: (Sealer, Opener), config: &LinkConfig) -> (S, Parts) {
        self.dec.set_max_len(config.max_frame_len);
        let parts = Parts {
            enc: self.enc,
            dec: self.dec,
            sealed: Some(sealed),
        };
        (self.io, parts)
    }

    /// Sends our hello (in the transcript) with a fresh nonce; returns the nonce.
    async fn send_hello(&mut self, kind: FrameKind) -> Result<[u8; NONCE_LEN], LinkErrorKind> {
        let nonce = legacy::random_nonce();
        let mut payload = Vec::with_capacity(1 + NONCE_LEN);
        payload.push(LEGACY_VERSION);
        payload.extend_from_slice(&nonce);
        self.send(kind, &payload, true).await?;
        Ok(nonce)
    }

    /// Sends our proof that we hold the PSK (not in the transcript).
    async fn send_finished(&mut self, keys: &Handshake, role: Role) -> Result<(), LinkErrorKind> {
        let kind = match role {
            Role::Client => FrameKind::LEGACY_CLIENT_FINISHED,
            Role::Server => FrameKind::LEGACY_SERVER_FINISHED,
        };
        self.send(kind, &keys.finished(role), false).await
    }
}

/// Parses a legacy hello payload: version byte and nonce.
fn hello_nonce(frame: &Frame) -> Result<[u8; NONCE_LEN], LinkErrorKind> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> HandshakeIo<S> {
    /// Client side of the legacy handshake (see the module docs).
    pub(super) async fn connect(
        mut self,
        psk: &Psk,
        config: &LinkConfig,
    ) -> Result<(S, Parts), LinkErrorKind> {
        let client_nonce = self.send_hello(FrameKind::LEGACY_CLIENT_HELLO).await?;
        let server_hello = self.expect(FrameKind::LEGACY_SERVER_HELLO, true).await?;
        let server_nonce = hello_nonce(&server_hello)?;
        let keys = Handshake::new(psk, &client_nonce, &server_nonce, &self.transcript);
        self.send_finished(&keys, Role::Client).await?;
        let finished = match self.expect(FrameKind::LEGACY_SERVER_FINISHED, false).await {
            Err(LinkErrorKind::PeerFailed(reason)) => {
                return Err(LinkErrorKind::Legacy(LegacyError::RefusedByPeer { reason }));
            }
            other => other?,
        };
        keys.verify_finished(Role::Server, &finished.payload)
            .map_err(LinkErrorKind::Legacy)?;
        let sealed = keys.into_channel(Role::Client, config.legacy_rekey_after_blocks);
        Ok(self.into_parts(sealed, config))
    }

    /// Server side of the legacy handshake: the client proves it holds the PSK first.
    pub(super) async fn accept(
        mut self,
        psk: &Psk,
        config: &LinkConfig,
    ) -> Result<(S, Parts), LinkErrorKind> {
        let client_hello = self.expect(FrameKind::LEGACY_CLIENT_HELLO, true).await?;
        let client_nonce = match hello_nonce(&client_hello) {
            Ok(n) => n,
            Err(e) => {
                self.send_error(&e.to_string()).await;
                return Err(e);
            }
        };
        let server_nonce = self.send_hello(FrameKind::LEGACY_SERVER_HELLO).await?;
        let keys = Handshake::new(psk, &client_nonce, &server_nonce, &self.transcript);
        let proof = self
            .expect(FrameKind::LEGACY_CLIENT_FINISHED, false)
            .await?;
        if let Err(e) = keys.verify_finished(Role::Client, &proof.payload) {
            self.send_error("authentication failed: the client's proof does not match the collector's pre-shared key")
                .await;
            return Err(LinkErrorKind::Legacy(e));
        }
        self.send_finished(&keys, Role::Server).await?;
        let sealed = keys.into_channel(Role::Server, config.legacy_rekey_after_blocks);
        Ok(self.into_parts(sealed, config))
    }
}
