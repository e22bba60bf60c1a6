//! The real collector refuses bad clients, each with one clear log line naming the peer's
//! address and the reason, while it keeps serving a real extractor shipping a live
//! database: a client without a certificate, one with a certificate from another CA,
//! garbage bytes, an oversized frame, a replayed frame and a reordered frame (the last
//! three written raw inside a valid TLS session, below the framing), and a Hello whose
//! extractor id is not the certificate's.

use redovault_redo::position::{DbId, ResetlogsId};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use redovault::crypto::tls::{self, PkiPaths, TlsClient};
use redovault::wire::frame::{FrameEncoder, FrameHeader, FrameKind, MAX_FRAME_LEN};
use redovault::wire::message::{Hello, Message, PROTOCOL_VERSION};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig};
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::netkit::{LiveDb, World, init_logs, scrape, stream_metric, wait_until};

fn hello(id: &str) -> Message {
    // Another database than the good extractor's: a refused client never touches its stream.
    Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        stream: StreamId {
            db_id: DbId(4242),
            resetlogs_id: ResetlogsId(1),
            thread: ThreadId(1),
        },
        db_name: "EVIL".into(),
        extractor_id: id.into(),
        from: StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        capabilities: None,
    })
}

/// Messages encoded as consecutive frames 0, 1, 2...
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

async fn raw_tls(addr: SocketAddr, p: &PkiPaths) -> (SocketAddr, tls::ClientTlsStream<TcpStream>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let client = TlsClient::from_pem_files(&p.client_cert, &p.client_key, &p.ca).unwrap();
    let (stream, _) = client.connect(tcp, "localhost").await.unwrap();
    (local, stream)
}

/// Waits for the collector's log line about `peer` and checks it says `reason`.
fn refusal_line(w: &World, peer: SocketAddr, reason: &str) -> String {
    let needle = format!("peer={peer}");
    let mut line = String::new();
    wait_until(
        &format!("a log line about {peer}"),
        Duration::from_secs(15),
        Duration::from_millis(50),
        || {
            let log = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
            match log
                .lines()
                .find(|l| l.contains(&needle) && (l.contains("refused") || l.contains("ended")))
            {
                Some(l) => {
                    line = l.to_string();
                    true
                }
                None => false,
            }
        },
    );
    assert!(line.contains("WARN"), "a warning: {line}");
    assert!(line.contains(reason), "the line says {reason:?}: {line}");
    line
}

/// The good extractor is served: the collector's durable SCN of its stream moves on.
fn progress(w: &World, stream: &str, since: f64) -> f64 {
    let mut now = since;
    wait_until(
        "the good extractor to keep being served",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || {
            now = stream_metric(
                w.collector_metrics_addr(),
                "redovault_collector_durable_scn",
                stream,
            )
            .unwrap_or(0.0);
            now > since
        },
    );
    now
}

#[test]
fn collector_refuses_bad_clients_with_a_clear_line_while_serving_an_extractor() {
    init_logs();
    let w = World::new(3);
    let ccfg = w.collector_config("");
    let ecfg = w.extractor_config(w.port, "");
    let collector = w.start_collector(&ccfg);
    let sim = w.sim_config(256 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let mut seen = progress(&w, &stream, 0.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr = w.addr();
    let config = LinkConfig {
        handshake_timeout: Duration::from_secs(5),
        ..LinkConfig::default()
    };

    // 1. No client certificate.
    let peer = rt.block_on(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let anonymous = ClientSecurity::Tls {
            client: TlsClient::new(tls::client_config_without_certificate(&w.pki.ca).unwrap()),
            server_name: "localhost".into(),
        };
        if let Ok(mut link) = Link::connect(tcp, addr, &anonymous, &config).await {
            let _ = link.send(&hello("anonymous")).await;
            assert!(link.recv().await.is_err(), "an anonymous client is refused");
        }
        local
    });
    refusal_line(&w, peer, "tls_no_certificate");
    seen = progress(&w, &stream, seen);

    // 2. A certificate from another CA.
    let other_dir = w.path("other-pki");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = tls::generate_pki(&other_dir).unwrap();
    let peer = rt.block_on(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let stranger = ClientSecurity::Tls {
            client: TlsClient::from_pem_files(&other.client_cert, &other.client_key, &w.pki.ca)
                .unwrap(),
            server_name: "localhost".into(),
        };
        if let Ok(mut link) = Link::connect(tcp, addr, &stranger, &config).await {
            let _ = link.send(&hello("redovault-extractor")).await;
            assert!(link.recv().await.is_err(), "a stranger is refused");
        }
        local
    });
    refusal_line(&w, peer, "tls_untrusted_certificate");
    seen = progress(&w, &stream, seen);

    // 3. Garbage bytes instead of TLS.
    let peer = rt.block_on(async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: collector\r\n\r\n")
            .await
            .unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
        local
    });
    refusal_line(&w, peer, "not_tls");
    seen = progress(&w, &stream, seen);

    // 4. An oversized frame inside a valid TLS session: refused from its header.
    let pki = w.pki.clone();
    let peer = rt.block_on(async {
        let (local, mut s) = raw_tls(addr, &pki).await;
        let header = FrameHeader {
            kind: FrameKind::DATA,
            flags: 0,
            len: MAX_FRAME_LEN as u32 + 1,
            number: 0,
            payload_crc: 0,
        };
        s.write_all(&header.encode()).await.unwrap();
        s.flush().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        local
    });
    refusal_line(&w, peer, "frame too large");
    seen = progress(&w, &stream, seen);

    // 5. A replayed frame: the Hello frame sent twice.
    let peer = rt.block_on(async {
        let (local, mut s) = raw_tls(addr, &pki).await;
        let f = frames(&[hello("redovault-extractor")]);
        s.write_all(&f[0]).await.unwrap();
        s.write_all(&f[0]).await.unwrap();
        s.flush().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        local
    });
    refusal_line(&w, peer, "replayed frame");
    seen = progress(&w, &stream, seen);

    // 6. A reordered frame: after the Hello, frame 2 before frame 1.
    let peer = rt.block_on(async {
        let (local, mut s) = raw_tls(addr, &pki).await;
        let hb = |t| Message::Heartbeat(redovault::wire::message::Heartbeat { sent_at_ms: t });
        let f = frames(&[hello("redovault-extractor"), hb(1), hb(2)]);
        for b in [&f[0], &f[2], &f[1]] {
            s.write_all(b).await.unwrap();
        }
        s.flush().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        local
    });
    refusal_line(&w, peer, "out-of-order frame");
    seen = progress(&w, &stream, seen);

    // 7. A valid certificate, but a Hello claiming another extractor id.
    let peer = rt.block_on(async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let sec = ClientSecurity::Tls {
            client: TlsClient::from_pem_files(&pki.client_cert, &pki.client_key, &pki.ca).unwrap(),
            server_name: "localhost".into(),
        };
        let mut link = Link::connect(tcp, addr, &sec, &config).await.unwrap();
        link.send(&hello("someone-else")).await.unwrap();
        match link.recv().await.unwrap() {
            Message::Reject(r) => assert!(r.reason.contains("does not name"), "{r:?}"),
            other => panic!("expected a Reject, got {other}"),
        }
        local
    });
    refusal_line(&w, peer, "does not name extractor id");
    progress(&w, &stream, seen);

    let m = scrape(w.collector_metrics_addr());
    for reason in [
        "tls_no_certificate",
        "tls_untrusted_certificate",
        "identity_mismatch",
    ] {
        assert!(
            m.get(&format!(
                "redovault_collector_auth_failures_total{{reason=\"{reason}\"}}"
            ))
            .is_some_and(|v| *v >= 1.0),
            "authentication failure {reason} counted"
        );
    }
    drop(db);
    assert!(extractor.terminate(Duration::from_secs(20)));
    assert!(collector.terminate(Duration::from_secs(20)));
}
