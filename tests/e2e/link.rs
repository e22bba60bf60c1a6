//! End-to-end tests of the extractor-collector link over real TCP on 127.0.0.1.
//!
//! A test collector (`Server`) accepts many connections: it answers Hello with Welcome and
//! each Data with an Ack, and logs (and reports to the test) every link it refuses, with
//! the peer's address. While a good client keeps sending Data and getting Acks on its own
//! connection, bad clients try, one after the other, everything the issue lists: no client
//! certificate, a certificate from another CA, garbage bytes, an oversized frame, a
//! replayed and a reordered frame (written raw through a real TLS session, below the
//! framing), a silent client; in legacy Blowfish mode a wrong PSK and recorded ciphertext
//! replayed, renumbered, reordered, or replayed as a whole session. Each must be refused
//! with the expected error naming the peer, and the good client must make progress after
//! each refusal.

use redovault_redo::position::{DbId, ResetlogsId};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redovault::crypto::legacy::{LegacyError, Psk};
use redovault::crypto::tls::{self, PkiPaths, TlsClient, TlsFailure, TlsServer};
use redovault::wire::frame::{
    FrameDecoder, FrameEncoder, FrameErrorKind, FrameHeader, FrameKind, HEADER_LEN, MAX_FRAME_LEN,
};
use redovault::wire::message::{Ack, Data, Failure, Hello, Message, PROTOCOL_VERSION, Welcome};
use redovault::wire::transport::{
    ClientSecurity, Link, LinkConfig, LinkError, LinkErrorKind, ServerSecurity,
};
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any single expected event may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

const CHUNK: usize = 16 << 10;

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("redovault=debug,e2e=debug")
        .try_init();
}

/// The test collector.
struct Server {
    addr: SocketAddr,
    refused: mpsc::Receiver<LinkError>,
    cancel: CancellationToken,
}

impl Server {
    async fn start(security: ServerSecurity, config: LinkConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, refused) = mpsc::channel(64);
        let cancel = CancellationToken::new();
        let security = Arc::new(security);
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    () = stop.cancelled() => return,
                    r = listener.accept() => r.unwrap(),
                };
                tcp.set_nodelay(true).unwrap();
                tokio::spawn(serve(
                    tcp,
                    peer,
                    security.clone(),
                    config.clone(),
                    tx.clone(),
                ));
            }
        });
        Server {
            addr,
            refused,
            cancel,
        }
    }

    /// The next refusal, of whichever connection.
    async fn next_refusal(&mut self) -> LinkError {
        tokio::time::timeout(WAIT, self.refused.recv())
            .await
            .expect("a refusal within the wait")
            .expect("server running")
    }

    /// The next refusal; it must be of the connection from `peer`.
    async fn refusal_of(&mut self, peer: SocketAddr) -> LinkError {
        let e = self.next_refusal().await;
        assert_eq!(e.peer, peer, "refusal of another connection: {e}");
        assert!(
            e.to_string().contains(&peer.to_string()),
            "the error names the peer: {e}"
        );
        e
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// One connection of the test collector.
async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    security: Arc<ServerSecurity>,
    config: LinkConfig,
    refused: mpsc::Sender<LinkError>,
) {
    let mut link = match Link::accept(tcp, peer, &security, &config).await {
        Ok(link) => link,
        Err(e) => {
            tracing::warn!(peer = %e.peer, error = %e, auth = e.is_authentication(), "link refused");
            let _ = refused.send(e).await;
            return;
        }
    };
    loop {
        let reply = match link.recv().await {
            Ok(Message::Hello(h)) => Message::Welcome(Welcome {
                resume: h.from,
                last_commit: None,
                capabilities: None,
            }),
            Ok(Message::Data(d)) => Message::Ack(Ack {
                durable: d.end(),
                last_commit: d.commits.last().copied(),
            }),
            Ok(other) => Message::Error(Failure {
                reason: format!("unexpected {}", other.name()),
            }),
            Err(e) => {
                if !matches!(e.kind, LinkErrorKind::Closed) {
                    tracing::warn!(peer = %e.peer, error = %e, "link refused");
                    // Tell the peer why, then close.
                    let _ = link
                        .send(&Message::Error(Failure {
                            reason: e.kind.to_string(),
                        }))
                        .await;
                    let _ = refused.send(e).await;
                }
                return;
            }
        };
        if link.send(&reply).await.is_err() {
            return;
        }
    }
}

fn hello(id: &str) -> Message {
    Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        stream: StreamId {
            db_id: DbId(0x1234),
            resetlogs_id: ResetlogsId(1_224_959_854),
            thread: ThreadId(1),
        },
        db_name: "FREE".into(),
        extractor_id: id.into(),
        from: StreamPos {
            seq: LogSeq(15),
            offset: 0,
        },
        capabilities: None,
    })
}

fn data(offset: u64) -> Data {
    Data {
        pos: StreamPos {
            seq: LogSeq(15),
            offset,
        },
        bytes: Bytes::from(vec![0x5a; CHUNK]),
        commits: vec![],
        log_end: None,
    }
}

/// The good client: Hello, then Data and its Ack, again and again until `stop`.
/// Returns the chunks acknowledged and, in legacy mode, the key epochs reached by the
/// client's sender and receiver.
fn good_client(
    addr: SocketAddr,
    security: ClientSecurity,
    config: LinkConfig,
    stop: CancellationToken,
    acked: Arc<AtomicU64>,
) -> JoinHandle<(u64, Option<u32>)> {
    tokio::spawn(async move {
        let mut link = Link::connect_tcp(addr, &security, &config).await.unwrap();
        link.send(&hello("good-extractor")).await.unwrap();
        assert!(matches!(link.recv().await.unwrap(), Message::Welcome(_)));
        let mut n = 0u64;
        while !stop.is_cancelled() {
            let d = data(n * CHUNK as u64);
            let end = d.end();
            link.send(&Message::Data(d)).await.unwrap();
            match link.recv().await.unwrap() {
                Message::Ack(a) => assert_eq!(a.durable, end),
                other => panic!("expected an Ack, got {other}"),
            }
            n += 1;
            acked.store(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (tx, _rx) = link.split();
        (n, tx.key_epoch())
    })
}

/// Waits until the good client acknowledged more than `since` chunks: proof that it was
/// served while (or right after) a bad client was refused.
async fn progress(acked: &AtomicU64, since: u64) -> u64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let now = acked.load(Ordering::SeqCst);
            if now > since {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the good client keeps being served")
}

/// Encodes messages as consecutive frames 0, 1, 2... (each frame separately).
fn frames(msgs: &[Message]) -> Vec<BytesMut> {
    let mut enc = FrameEncoder::new(MAX_FRAME_LEN);
    msgs.iter()
        .map(|m| {
            let mut body = BytesMut::new();
            m.encode(&mut body).unwrap();
            let mut out = BytesMut::new();
            enc.encode(m.kind(), 0, &body, &mut out).unwrap();
            out
        })
        .collect()
}

fn mkdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tls_security(p: &PkiPaths) -> (ServerSecurity, ClientSecurity) {
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

/// A TLS session with a valid client certificate, for writing raw frames.
async fn raw_tls(addr: SocketAddr, p: &PkiPaths) -> (SocketAddr, tls::ClientTlsStream<TcpStream>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let client = TlsClient::from_pem_files(&p.client_cert, &p.client_key, &p.ca).unwrap();
    let (stream, id) = client.connect(tcp, "localhost").await.unwrap();
    assert!(id.is("localhost"));
    (local, stream)
}

/// Reads what the server sends until it closes and returns the messages (plaintext
/// frames, as under TLS).
async fn read_messages(stream: &mut tls::ClientTlsStream<TcpStream>) -> Vec<Message> {
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await;
    let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
    dec.feed(&buf);
    let mut out = Vec::new();
    while let Ok(Some(f)) = dec.poll() {
        out.push(Message::decode(f.header.kind, f.payload.freeze()).unwrap());
    }
    out
}

fn expect_tls(e: &LinkError, failure: TlsFailure) {
    match &e.kind {
        LinkErrorKind::Tls(t) => assert_eq!(t.failure, failure, "{e}"),
        _ => panic!("expected a TLS {failure:?} error, got: {e}"),
    }
}

fn expect_frame(e: &LinkError, check: impl Fn(&FrameErrorKind) -> bool) {
    match &e.kind {
        LinkErrorKind::Frame(f) if check(&f.kind) => {}
        _ => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_collector_refuses_bad_clients_while_serving_a_good_one() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::generate_pki(&mkdir(dir.path(), "ok")).unwrap();
    // Independent CAs with their own client and server certificates: one with the same
    // names as ours, one with another CA name.
    let other = tls::generate_pki(&mkdir(dir.path(), "other")).unwrap();
    let evil_names = tls::PkiNames {
        ca_name: "some other CA".into(),
        ..tls::PkiNames::default()
    };
    let evil = tls::generate_pki_with(&mkdir(dir.path(), "evil"), &evil_names).unwrap();
    let (server_sec, client_sec) = tls_security(&pki);
    let config = LinkConfig {
        handshake_timeout: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let mut server = Server::start(server_sec, config.clone()).await;
    let stop = CancellationToken::new();
    let acked = Arc::new(AtomicU64::new(0));
    let good = good_client(
        server.addr,
        client_sec,
        config.clone(),
        stop.clone(),
        acked.clone(),
    );
    let mut seen = progress(&acked, 0).await;

    // 1. No client certificate.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let anonymous = ClientSecurity::Tls {
        client: TlsClient::new(tls::client_config_without_certificate(&pki.ca).unwrap()),
        server_name: "localhost".into(),
    };
    let client_side = match Link::connect(tcp, server.addr, &anonymous, &config).await {
        // TLS 1.3: the client finishes first; the refusal arrives as an alert.
        Ok(mut link) => {
            let _ = link.send(&hello("anonymous")).await;
            link.recv().await.unwrap_err()
        }
        Err(e) => e,
    };
    let e = server.refusal_of(local).await;
    expect_tls(&e, TlsFailure::NoCertificate);
    assert!(e.is_authentication());
    assert!(
        client_side.is_authentication(),
        "client sees the refusal: {client_side}"
    );
    seen = progress(&acked, seen).await;

    // 2. A certificate from another CA: one with another name (unknown issuer), and one
    //    that copies our CA's name (found by name, refused by its signature).
    for stranger_pki in [&evil, &other] {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let stranger = ClientSecurity::Tls {
            client: TlsClient::from_pem_files(
                &stranger_pki.client_cert,
                &stranger_pki.client_key,
                &pki.ca,
            )
            .unwrap(),
            server_name: "localhost".into(),
        };
        let client_side = match Link::connect(tcp, server.addr, &stranger, &config).await {
            Ok(mut link) => {
                let _ = link.send(&hello("stranger")).await;
                link.recv().await.unwrap_err()
            }
            Err(e) => e,
        };
        let e = server.refusal_of(local).await;
        expect_tls(&e, TlsFailure::UntrustedCertificate);
        assert!(client_side.is_authentication(), "{client_side}");
        seen = progress(&acked, seen).await;
    }

    // 2b. And the client refuses a collector whose certificate another CA issued.
    let rogue = Server::start(
        ServerSecurity::Tls(
            TlsServer::from_pem_files(&other.server_cert, &other.server_key, &pki.ca).unwrap(),
        ),
        config.clone(),
    )
    .await;
    let e = Link::connect_tcp(
        rogue.addr,
        &ClientSecurity::Tls {
            client: TlsClient::from_pem_files(&pki.client_cert, &pki.client_key, &pki.ca).unwrap(),
            server_name: "localhost".into(),
        },
        &config,
    )
    .await
    .unwrap_err();
    expect_tls(&e, TlsFailure::UntrustedCertificate);
    drop(rogue);

    // 3. Garbage bytes instead of TLS.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: collector\r\n\r\n")
        .await
        .unwrap();
    let e = server.refusal_of(local).await;
    expect_tls(&e, TlsFailure::NotTls);
    seen = progress(&acked, seen).await;

    // 4. Garbage inside a valid TLS session.
    let (local, mut s) = raw_tls(server.addr, &pki).await;
    s.write_all(&[0xde; 100]).await.unwrap();
    s.flush().await.unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(&e, |k| matches!(k, FrameErrorKind::BadMagic { .. }));
    seen = progress(&acked, seen).await;

    // 5. An oversized frame: refused from its header, before any payload.
    let (local, mut s) = raw_tls(server.addr, &pki).await;
    let header = FrameHeader {
        kind: FrameKind::DATA,
        flags: 0,
        len: MAX_FRAME_LEN as u32 + 1,
        number: 0,
        payload_crc: 0,
    };
    s.write_all(&header.encode()).await.unwrap();
    s.flush().await.unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(&e, |k| {
        *k == FrameErrorKind::TooLong {
            len: MAX_FRAME_LEN as u64 + 1,
            max: MAX_FRAME_LEN as u64,
        }
    });
    let said = read_messages(&mut s).await;
    assert!(
        matches!(said.last(), Some(Message::Error(f)) if f.reason.contains("too large")),
        "the client is told why: {said:?}"
    );
    seen = progress(&acked, seen).await;

    // 6. A replayed frame: Hello, Data, and the same Data frame again.
    let (local, mut s) = raw_tls(server.addr, &pki).await;
    let f = frames(&[hello("replayer"), Message::Data(data(0))]);
    for bytes in [&f[0], &f[1], &f[1]] {
        s.write_all(bytes).await.unwrap();
    }
    s.flush().await.unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(&e, |k| *k == FrameErrorKind::Replayed { got: 1 });
    let said = read_messages(&mut s).await;
    assert!(matches!(said[0], Message::Welcome(_)), "{said:?}");
    assert!(matches!(said[1], Message::Ack(_)), "{said:?}");
    assert!(
        matches!(&said[2], Message::Error(f) if f.reason.contains("replayed")),
        "{said:?}"
    );
    seen = progress(&acked, seen).await;

    // 7. A reordered frame: Hello, then Data #2 before Data #1.
    let (local, mut s) = raw_tls(server.addr, &pki).await;
    let f = frames(&[
        hello("reorderer"),
        Message::Data(data(0)),
        Message::Data(data(CHUNK as u64)),
    ]);
    for bytes in [&f[0], &f[2], &f[1]] {
        s.write_all(bytes).await.unwrap();
    }
    s.flush().await.unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(&e, |k| *k == FrameErrorKind::OutOfOrder { got: 2 });
    seen = progress(&acked, seen).await;

    // 8. A client that connects and says nothing: the handshake times out.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let e = server.refusal_of(local).await;
    assert!(matches!(e.kind, LinkErrorKind::HandshakeTimeout(_)), "{e}");
    drop(tcp);
    seen = progress(&acked, seen).await;

    stop.cancel();
    let (n, _) = tokio::time::timeout(WAIT, good).await.unwrap().unwrap();
    assert!(
        n >= seen,
        "the good client was never interrupted ({n} chunks acknowledged)"
    );
    assert!(
        server.refused.try_recv().is_err(),
        "the good client was never refused"
    );
}

/// A man in the middle between a legacy client and the collector that records and
/// tampers with what the client sends, frame by frame.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    /// Forward as is (record).
    None,
    /// Forward frame `n` twice.
    Replay(u64),
    /// Forward frame `n`, then a copy of it renumbered `n + 1` with valid checksums.
    ReplayRenumbered(u64),
    /// Forward frame `n + 1` before frame `n`.
    Swap(u64),
}

struct Proxy {
    addr: SocketAddr,
    /// The proxy's own address towards the server (the peer the server sees).
    upstream_local: oneshot::Receiver<SocketAddr>,
    /// Everything the client sent (before tampering), once it closed.
    recorded: JoinHandle<Vec<u8>>,
}

async fn proxy(server: SocketAddr, tamper: Tamper) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, upstream_local) = oneshot::channel();
    let recorded = tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let upstream = TcpStream::connect(server).await.unwrap();
        let _ = tx.send(upstream.local_addr().unwrap());
        let (mut cr, mut cw) = client.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut ur, &mut cw).await;
        });
        let mut record = Vec::new();
        let mut buf = BytesMut::new();
        let mut held: Option<BytesMut> = None;
        loop {
            match cr.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            while buf.len() >= HEADER_LEN {
                let raw: [u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().unwrap();
                let h = FrameHeader::decode(&raw, MAX_FRAME_LEN).unwrap();
                let total = HEADER_LEN + h.len as usize;
                if buf.len() < total {
                    break;
                }
                let frame = buf.split_to(total);
                record.extend_from_slice(&frame);
                let mut out: Vec<BytesMut> = Vec::new();
                match tamper {
                    Tamper::Replay(n) if h.number == n => {
                        out.push(frame.clone());
                        out.push(frame);
                    }
                    Tamper::ReplayRenumbered(n) if h.number == n => {
                        let mut copy = frame.clone();
                        let renumbered = FrameHeader { number: n + 1, ..h };
                        copy[..HEADER_LEN].copy_from_slice(&renumbered.encode());
                        out.push(frame);
                        out.push(copy);
                    }
                    Tamper::Swap(n) if h.number == n => held = Some(frame),
                    Tamper::Swap(n) if h.number == n + 1 => {
                        out.push(frame);
                        out.extend(held.take());
                    }
                    _ => out.push(frame),
                }
                for f in out {
                    if uw.write_all(&f).await.is_err() {
                        return record;
                    }
                }
            }
        }
        let _ = uw.shutdown().await;
        record
    });
    Proxy {
        addr,
        upstream_local,
        recorded,
    }
}

/// A legacy client through `proxy` that sends Hello and three Data frames without waiting
/// (client frames: 0 hello, 1 proof, 2 Hello, 3..=5 Data).
async fn legacy_client_through(p: &Proxy, psk: &Psk, config: &LinkConfig) -> Link {
    let tcp = TcpStream::connect(p.addr).await.unwrap();
    let mut link = Link::connect(
        tcp,
        p.addr,
        &ClientSecurity::LegacyBlowfish(psk.clone()),
        config,
    )
    .await
    .unwrap();
    let _ = link.send(&hello("legacy-client")).await;
    for i in 0..3 {
        let _ = link.send(&Message::Data(data(i * CHUNK as u64))).await;
    }
    link
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_collector_refuses_bad_clients_while_serving_a_good_one() {
    init_logs();
    let psk = Psk::generate();
    let config = LinkConfig {
        handshake_timeout: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let mut server =
        Server::start(ServerSecurity::LegacyBlowfish(psk.clone()), config.clone()).await;
    let stop = CancellationToken::new();
    let acked = Arc::new(AtomicU64::new(0));
    // The good client rekeys every 4096 blocks (32 KiB): about every other chunk.
    let good_config = LinkConfig {
        legacy_rekey_after_blocks: 4096,
        ..config.clone()
    };
    let good = good_client(
        server.addr,
        ClientSecurity::LegacyBlowfish(psk.clone()),
        good_config,
        stop.clone(),
        acked.clone(),
    );
    let mut seen = progress(&acked, 0).await;

    // 1. A wrong pre-shared key: refused on both sides.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let client_side = Link::connect(
        tcp,
        server.addr,
        &ClientSecurity::LegacyBlowfish(Psk::generate()),
        &config,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            client_side.kind,
            LinkErrorKind::Legacy(LegacyError::RefusedByPeer { .. })
        ),
        "{client_side}"
    );
    let e = server.refusal_of(local).await;
    assert!(
        matches!(e.kind, LinkErrorKind::Legacy(LegacyError::BadProof)),
        "{e}"
    );
    assert!(e.is_authentication());
    seen = progress(&acked, seen).await;

    // 2. Garbage bytes.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x10])
        .await
        .unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(&e, |k| matches!(k, FrameErrorKind::BadMagic { .. }));
    seen = progress(&acked, seen).await;

    // 3. An oversized frame (during the handshake only small frames are accepted).
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let header = FrameHeader {
        kind: FrameKind::LEGACY_CLIENT_HELLO,
        flags: 0,
        len: 1 << 20,
        number: 0,
        payload_crc: 0,
    };
    tcp.write_all(&header.encode()).await.unwrap();
    let e = server.refusal_of(local).await;
    expect_frame(
        &e,
        |k| matches!(k, FrameErrorKind::TooLong { len, .. } if *len == 1 << 20),
    );
    seen = progress(&acked, seen).await;

    // 4. Recorded ciphertext frame replayed: refused by its number.
    let p = proxy(server.addr, Tamper::Replay(3)).await;
    let _link = legacy_client_through(&p, &psk, &config).await;
    let e = server.refusal_of(p.upstream_local.await.unwrap()).await;
    expect_frame(&e, |k| *k == FrameErrorKind::Replayed { got: 3 });
    seen = progress(&acked, seen).await;

    // 5. Recorded ciphertext frame replayed under the next number with valid checksums:
    //    refused by its HMAC (which covers the number).
    let p = proxy(server.addr, Tamper::ReplayRenumbered(3)).await;
    let _link = legacy_client_through(&p, &psk, &config).await;
    let e = server.refusal_of(p.upstream_local.await.unwrap()).await;
    assert!(
        matches!(e.kind, LinkErrorKind::Legacy(LegacyError::BadTag { .. })),
        "{e}"
    );
    seen = progress(&acked, seen).await;

    // 6. Ciphertext frames reordered.
    let p = proxy(server.addr, Tamper::Swap(3)).await;
    let _link = legacy_client_through(&p, &psk, &config).await;
    let e = server.refusal_of(p.upstream_local.await.unwrap()).await;
    expect_frame(&e, |k| *k == FrameErrorKind::OutOfOrder { got: 4 });
    seen = progress(&acked, seen).await;

    // 7. A whole recorded session replayed on a new connection: the collector's fresh
    //    nonce makes the recorded proof worthless.
    let p = proxy(server.addr, Tamper::None).await;
    let mut link = legacy_client_through(&p, &psk, &config).await;
    for _ in 0..4 {
        link.recv().await.unwrap();
    }
    drop(link);
    let recorded = tokio::time::timeout(WAIT, p.recorded)
        .await
        .unwrap()
        .unwrap();
    assert!(
        recorded.len() > 3 * CHUNK,
        "recorded {} bytes",
        recorded.len()
    );
    assert!(
        !recorded.windows(64).any(|w| w == [0x5a; 64]),
        "no plaintext Data on the wire"
    );
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let _ = tcp.write_all(&recorded).await;
    let e = server.refusal_of(local).await;
    assert!(
        matches!(e.kind, LinkErrorKind::Legacy(LegacyError::BadProof)),
        "{e}"
    );
    seen = progress(&acked, seen).await;

    stop.cancel();
    let (n, epoch) = tokio::time::timeout(WAIT, good).await.unwrap().unwrap();
    assert!(n >= seen);
    // Each 16 KiB chunk takes 2049+ blocks: with 4096-block epochs, one rekey every
    // other chunk at least.
    let epoch = epoch.expect("legacy mode has key epochs");
    assert!(u64::from(epoch) >= n / 2, "{epoch} rekeys for {n} chunks");
    assert!(
        server.refused.try_recv().is_err(),
        "the good client was never refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_certificates_from_the_deploy_script_work() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/link-certs.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .arg("db1-extractor")
        .output()
        .expect("run deploy/link-certs.sh (needs openssl)");
    assert!(
        out.status.success(),
        "link-certs.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = |f: &str| dir.path().join(f);
    let server = Server::start(
        ServerSecurity::Tls(
            TlsServer::from_pem_files(&p("server.pem"), &p("server.key"), &p("ca.pem")).unwrap(),
        ),
        LinkConfig::default(),
    )
    .await;
    let client = ClientSecurity::Tls {
        client: TlsClient::from_pem_files(&p("client.pem"), &p("client.key"), &p("ca.pem"))
            .unwrap(),
        server_name: "127.0.0.1".into(),
    };
    let mut link = Link::connect_tcp(server.addr, &client, &LinkConfig::default())
        .await
        .unwrap();
    link.send(&hello("db1-extractor")).await.unwrap();
    assert!(matches!(link.recv().await.unwrap(), Message::Welcome(_)));
    let id = link.peer().identity.clone().unwrap();
    assert!(id.is("localhost") && id.is("redovault-collector"), "{id}");
    // An openssl client limited to TLS 1.2 (with a valid certificate) is refused: TLS 1.3
    // only.
    let mut server = server;
    let s_client = Command::new("openssl")
        .args(["s_client", "-tls1_2", "-connect"])
        .arg(server.addr.to_string())
        .arg("-cert")
        .arg(p("client.pem"))
        .arg("-key")
        .arg(p("client.key"))
        .arg("-CAfile")
        .arg(p("ca.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    assert!(
        !s_client.status.success(),
        "a TLS 1.2 session was established"
    );
    let e = server.next_refusal().await;
    expect_tls(&e, TlsFailure::Incompatible);
    // The script refuses to overwrite.
    let again = Command::new("bash")
        .arg(&script)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
}
