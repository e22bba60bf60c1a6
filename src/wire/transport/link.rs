//! Establishing a link: the security handshake on a fresh connection, then the two halves.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::legacy::HandshakeIo;
use super::receiver::LinkReceiver;
use super::sender::LinkSender;
use super::{
    ClientSecurity, LinkConfig, LinkError, LinkErrorKind, LinkMode, Parts, PeerInfo, ServerSecurity,
};
use crate::compress::Level;
use crate::crypto::tls::PeerIdentity;
use crate::wire::frame::{FrameDecoder, FrameEncoder};
use crate::wire::message::Message;

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
                    Ok(Link::over_tls(stream, peer, identity, config))
                }
                ServerSecurity::LegacyBlowfish(psk) => {
                    let (stream, parts) = HandshakeIo::new(io, config).accept(psk, config).await?;
                    Ok(Link::over_legacy(stream, parts, peer, config))
                }
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
                    Ok(Link::over_tls(stream, peer, identity, config))
                }
                ClientSecurity::LegacyBlowfish(psk) => {
                    let (stream, parts) = HandshakeIo::new(io, config).connect(psk, config).await?;
                    Ok(Link::over_legacy(stream, parts, peer, config))
                }
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

    /// A link over an established TLS session: frames go unsealed, TLS protects them.
    fn over_tls<S>(stream: S, peer: SocketAddr, identity: PeerIdentity, config: &LinkConfig) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let info = PeerInfo {
            addr: peer,
            mode: LinkMode::Tls,
            identity: Some(identity),
        };
        let parts = Parts {
            enc: FrameEncoder::new(config.max_frame_len),
            dec: FrameDecoder::new(config.max_frame_len),
            sealed: None,
        };
        Link::from_parts(stream, parts, info, config)
    }

    /// A link over the legacy channel the handshake keyed: every frame sealed.
    fn over_legacy<S>(stream: S, parts: Parts, peer: SocketAddr, config: &LinkConfig) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let info = PeerInfo {
            addr: peer,
            mode: LinkMode::LegacyBlowfish,
            identity: None,
        };
        Link::from_parts(stream, parts, info, config)
    }

    /// The two halves over `stream`, both starting their clocks now.
    fn from_parts<S>(stream: S, parts: Parts, info: PeerInfo, config: &LinkConfig) -> Link
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let peer = Arc::new(info);
        let now = Instant::now();
        let (sealer, opener) = parts.sealed.unzip();
        Link {
            sender: LinkSender::new(
                Box::new(write),
                parts.enc,
                sealer,
                peer.clone(),
                config,
                now,
            ),
            receiver: LinkReceiver::new(Box::new(read), parts.dec, opener, peer, config, now),
        }
    }

    /// Who is at the other end.
    pub fn peer(&self) -> &PeerInfo {
        self.sender.peer()
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
