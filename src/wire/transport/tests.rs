use bytes::Bytes;
use redovault_redo::position::{DbId, ResetlogsId};
use redovault_redo::position::{LogSeq, ThreadId};

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::crypto::legacy::LegacyError;
use crate::crypto::tls::{PkiPaths, generate_pki};
use crate::wire::message::{Ack, Data, Hello, Message, PROTOCOL_VERSION, Welcome};
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
            db_id: DbId(42),
            resetlogs_id: ResetlogsId(7),
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
