//! The server with real links on 127.0.0.1: no Ack before the fsync returns and none after a
//! failed one, one live session per stream, the connection limit.

use redovault_redo::position::{DbId, ResetlogsId};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redovault::compress::Level;
use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::{self, TlsClient, TlsServer};
use redovault::wire::message::{Capabilities, Data, Hello, Message, PROTOCOL_VERSION, RejectCode};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig, LinkErrorKind, ServerSecurity};
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::fs::{FaultPlan, FaultyFs};
use crate::store::{Store, StoreOptions};

fn keys() -> KeyRing {
    KeyRing::from_keys(
        KeyId::parse("k1").unwrap(),
        vec![(KeyId::parse("k1").unwrap(), [7u8; 32])],
    )
    .unwrap()
}

fn stream(db: u32) -> StreamId {
    StreamId {
        db_id: DbId(db),
        resetlogs_id: ResetlogsId(1),
        thread: ThreadId(1),
    }
}

fn hello(db: u32, id: &str) -> Message {
    Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        stream: stream(db),
        db_name: "TEST".into(),
        extractor_id: id.into(),
        from: StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        capabilities: None,
    })
}

fn data(offset: u64) -> Message {
    Message::Data(Data {
        pos: StreamPos {
            seq: LogSeq(1),
            offset,
        },
        bytes: Bytes::from(vec![0x42; 8192]),
        commits: Vec::new(),
        log_end: None,
    })
}

fn link_config() -> LinkConfig {
    // A peer is declared dead only after 5 s of silence: a busy CI machine (other test
    // binaries on the same two cores) can stall a task for hundreds of milliseconds, which
    // must not end a session these tests keep open on purpose.
    LinkConfig {
        heartbeat_interval: Duration::from_millis(100),
        missed_heartbeats: 50,
        handshake_timeout: Duration::from_secs(2),
        ..LinkConfig::default()
    }
}

async fn start(
    dir: &Path,
    fs: Arc<dyn crate::fs::Fs>,
    security: ServerSecurity,
    max_connections: usize,
) -> Running {
    let store = Store::open_with(&dir.join("store"), keys(), StoreOptions::default(), fs).unwrap();
    start_server(store, security, max_connections).await
}

async fn start_server(store: Store, security: ServerSecurity, max_connections: usize) -> Running {
    super::start(
        store,
        ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections,
            security,
            link: link_config(),
            extractors: Vec::new(),
            writer: WriterConfig::default(),
            metrics_listen: None,
            accept_compression: true,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn tls_pair(dir: &Path) -> (ServerSecurity, ClientSecurity) {
    let p = tls::generate_pki(dir).unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_before_the_fsync_returns_and_none_after_a_failed_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let (ssec, csec) = tls_pair(tmp.path());
    let server = start(tmp.path(), Arc::new(fs.clone()), ssec, 8).await;
    let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    link.send(&hello(1, "redovault-extractor")).await.unwrap();
    match link.recv().await.unwrap() {
        Message::Welcome(w) => assert_eq!(
            w.resume,
            StreamPos {
                seq: LogSeq(1),
                offset: 0
            }
        ),
        other => panic!("expected Welcome, got {other}"),
    }
    // The disk holds its fsyncs: nothing may be acknowledged meanwhile.
    fs.hold_syncs();
    link.send(&data(0)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(400), link.recv())
            .await
            .is_err(),
        "no Ack while the fsync has not returned"
    );
    fs.release_syncs();
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Ok(Message::Ack(a))) => {
            assert_eq!(
                a.durable,
                StreamPos {
                    seq: LogSeq(1),
                    offset: 8192
                }
            )
        }
        other => panic!("expected the Ack, got {other:?}"),
    }
    // The next fsync fails (EIO): an Error, never an Ack; the store stays failed.
    fs.set_plan(FaultPlan {
        fail_sync_from: Some(fs.syncs() + 1),
        ..FaultPlan::default()
    });
    link.send(&data(8192)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Err(e)) => match e.kind {
            LinkErrorKind::PeerFailed(r) => assert!(r.contains("store failed"), "{r}"),
            other => panic!("expected the collector's Error, got {other}"),
        },
        other => panic!("expected an Error and no Ack, got {other:?}"),
    }
    assert_eq!(server.metrics.store_failed.get(), 1.0);
    assert_eq!(
        server.writer.durable(stream(1)).unwrap().end,
        StreamPos {
            seq: LogSeq(1),
            offset: 8192
        },
        "only what was fsynced is durable"
    );
    // Later sessions are refused until a restart.
    let mut again = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    again.send(&hello(1, "redovault-extractor")).await.unwrap();
    match again.recv().await.unwrap() {
        Message::Reject(r) => assert_eq!(r.code, RejectCode::Unavailable),
        other => panic!("expected Reject(Unavailable), got {other}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_live_session_per_stream_same_id_replaces_other_id_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let psk = Psk::generate();
    let server = start(
        tmp.path(),
        Arc::new(crate::fs::RealFs),
        ServerSecurity::LegacyBlowfish(psk.clone()),
        8,
    )
    .await;
    let csec = ClientSecurity::LegacyBlowfish(psk);
    let connect = || async {
        Link::connect_tcp(server.addr, &csec, &link_config())
            .await
            .unwrap()
    };
    let mut a = connect().await;
    a.send(&hello(5, "ext-a")).await.unwrap();
    assert!(matches!(a.recv().await.unwrap(), Message::Welcome(_)));
    a.send(&data(0)).await.unwrap();
    assert!(matches!(a.recv().await.unwrap(), Message::Ack(_)));
    // Another extractor for the same stream: refused, A unaffected.
    let mut b = connect().await;
    b.send(&hello(5, "ext-b")).await.unwrap();
    match b.recv().await.unwrap() {
        Message::Reject(r) => {
            assert_eq!(r.code, RejectCode::StreamBusy);
            assert!(r.reason.contains("ext-a"), "{}", r.reason);
        }
        other => panic!("expected Reject(StreamBusy), got {other}"),
    }
    a.send(&data(8192)).await.unwrap();
    assert!(matches!(a.recv().await.unwrap(), Message::Ack(_)));
    // The same extractor again (a reconnect): replaces A, resumes at the durable end.
    let mut c = connect().await;
    c.send(&hello(5, "ext-a")).await.unwrap();
    match c.recv().await.unwrap() {
        Message::Welcome(w) => assert_eq!(
            w.resume,
            StreamPos {
                seq: LogSeq(1),
                offset: 16384
            }
        ),
        other => panic!("expected Welcome, got {other}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), a.recv())
            .await
            .expect("A ends")
            .is_err(),
        "the replaced session is closed"
    );
    c.send(&data(16384)).await.unwrap();
    assert!(matches!(c.recv().await.unwrap(), Message::Ack(_)));
    assert_eq!(
        server.metrics.reconnects.with(&stream(5).to_string()).get(),
        1
    );
    server.stop().await;
}

/// deploy/docs/upgrade.md quotes this refusal: an extractor of another wire protocol version is
/// refused at once, with both versions named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_of_another_protocol_version_is_refused_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let psk = Psk::generate();
    let server = start(
        tmp.path(),
        Arc::new(crate::fs::RealFs),
        ServerSecurity::LegacyBlowfish(psk.clone()),
        8,
    )
    .await;
    let csec = ClientSecurity::LegacyBlowfish(psk);
    let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    let newer = PROTOCOL_VERSION + 1;
    let Message::Hello(mut h) = hello(5, "ext-a") else {
        unreachable!("hello() builds a Hello")
    };
    h.protocol_version = newer;
    link.send(&Message::Hello(h)).await.unwrap();
    match link.recv().await.unwrap() {
        Message::Reject(r) => {
            assert_eq!(r.code, RejectCode::UnsupportedVersion);
            assert_eq!(
                r.reason,
                format!(
                    "protocol version {newer} not supported (this collector speaks {PROTOCOL_VERSION})"
                )
            );
        }
        other => panic!("expected Reject(UnsupportedVersion), got {other}"),
    }
    assert_eq!(server.metrics.refused.get("version"), 1);
    assert_eq!(
        server.metrics.reconnects.with(&stream(5).to_string()).get(),
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_before_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let (ssec, csec) = tls_pair(tmp.path());
    let server = start(tmp.path(), Arc::new(crate::fs::RealFs), ssec, 1).await;
    let mut first = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    first.send(&hello(1, "redovault-extractor")).await.unwrap();
    assert!(matches!(first.recv().await.unwrap(), Message::Welcome(_)));
    // The second connection is not accepted while the first one lives: its handshake
    // cannot finish.
    let short = LinkConfig {
        handshake_timeout: Duration::from_millis(500),
        ..link_config()
    };
    let e = Link::connect_tcp(server.addr, &csec, &short)
        .await
        .unwrap_err();
    assert!(matches!(e.kind, LinkErrorKind::HandshakeTimeout(_)), "{e}");
    drop(first);
    let mut second = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    second.send(&hello(1, "redovault-extractor")).await.unwrap();
    assert!(matches!(second.recv().await.unwrap(), Message::Welcome(_)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_acks_the_extractor_resends_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let (ssec, csec) = tls_pair(tmp.path());
    let server = start(tmp.path(), Arc::new(fs.clone()), ssec, 8).await;
    let session = |resume: u64| {
        let csec = csec.clone();
        async move {
            let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
                .await
                .unwrap();
            link.send(&hello(1, "redovault-extractor")).await.unwrap();
            match link.recv().await.unwrap() {
                Message::Welcome(w) => assert_eq!(w.resume.offset, resume, "resume"),
                other => panic!("expected Welcome, got {other}"),
            }
            link
        }
    };
    let mut link = session(0).await;
    link.send(&data(0)).await.unwrap();
    assert!(matches!(link.recv().await.unwrap(), Message::Ack(a) if a.durable.offset == 8192));
    // The disk fills up half-way through the next record.
    fs.set_plan(FaultPlan {
        space: Some(fs.written() + 4000),
        ..FaultPlan::default()
    });
    link.send(&data(8192)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Err(e)) => match e.kind {
            LinkErrorKind::PeerFailed(r) => assert!(r.contains("disk full"), "{r}"),
            other => panic!("expected the collector's Error, got {other}"),
        },
        other => panic!("expected an Error and no Ack, got {other:?}"),
    }
    assert_eq!(server.metrics.disk_full.get(), 1.0);
    assert!(
        server.writer.failure().is_none(),
        "a full disk does not fail the store"
    );
    // The extractor reconnects: welcomed at the durable end, its resend is still refused
    // while the disk is full (no Ack), and nothing half-written became durable.
    let mut link = session(8192).await;
    link.send(&data(8192)).await.unwrap();
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(10), link.recv()).await,
        Ok(Err(_))
    ));
    // Space frees: the next session's resend is acknowledged, and the one after it.
    fs.set_plan(FaultPlan::default());
    server.writer.space_freed();
    let mut link = session(8192).await;
    link.send(&data(8192)).await.unwrap();
    link.send(&data(16384)).await.unwrap();
    let mut last = 0;
    while last < 24576 {
        match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
            Ok(Ok(Message::Ack(a))) => last = a.durable.offset,
            Ok(Ok(Message::Heartbeat(_))) => {}
            other => panic!("expected Acks, got {other:?}"),
        }
    }
    assert!(!server.writer.stats().disk_full);
    server.metrics.refresh_writer(&server.writer);
    assert_eq!(server.metrics.disk_full.get(), 0.0);
    drop(link);
    server.stop().await;
    // Every byte, once, in order: what a rebuild reads.
    let store = Store::open(&tmp.path().join("store"), keys()).unwrap();
    assert!(
        store.recovery().torn.is_empty(),
        "{:?}",
        store.recovery().torn
    );
    let mut got = Vec::new();
    for seg in store.segments(stream(1)) {
        crate::segment::scan::<crate::store::StreamStoreError>(
            &seg.path,
            store.keys(),
            crate::segment::ScanMode::Strict,
            None,
            |_, c| {
                assert_eq!(c.start.offset, got.len() as u64);
                got.extend_from_slice(&c.data);
                Ok(())
            },
        )
        .unwrap();
    }
    assert_eq!(got, vec![0x42; 24576]);
}

fn data_of(offset: u64, bytes: Vec<u8>) -> Message {
    Message::Data(Data {
        pos: StreamPos {
            seq: LogSeq(1),
            offset,
        },
        bytes: Bytes::from(bytes),
        commits: Vec::new(),
        log_end: None,
    })
}

async fn ack_of(link: &mut Link) -> u64 {
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Ok(Message::Ack(a))) => a.durable.offset,
        other => panic!("expected an Ack, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_waits_for_the_data_before_it_and_different_bytes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = FaultyFs::new(FaultPlan::default());
    let (ssec, csec) = tls_pair(tmp.path());
    let server = start(tmp.path(), Arc::new(fs.clone()), ssec, 8).await;
    let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    link.send(&hello(1, "redovault-extractor")).await.unwrap();
    assert!(matches!(link.recv().await.unwrap(), Message::Welcome(_)));
    // A Data, and before it is durable a resend overlapping it with new bytes after it:
    // the resend is compared only once the first one is durable, then its tail appended.
    fs.hold_syncs();
    link.send(&data(0)).await.unwrap();
    link.send(&data(4096)).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), link.recv())
            .await
            .is_err(),
        "no Ack while the fsync has not returned"
    );
    fs.release_syncs();
    assert_eq!(ack_of(&mut link).await, 8192);
    assert_eq!(ack_of(&mut link).await, 12_288);
    // Wholly held: an Ack of the durable end, nothing stored.
    link.send(&data_of(100, vec![0x42; 1000])).await.unwrap();
    assert_eq!(ack_of(&mut link).await, 12_288);
    let name = stream(1).to_string();
    assert_eq!(server.metrics.duplicate_bytes.with(&name).get(), 5096);
    assert_eq!(server.metrics.divergent.with(&name).get(), 0);
    // One byte different inside acknowledged redo: refused, the session ends.
    let mut forged = vec![0x42; 1000];
    forged[999] = 0x43;
    link.send(&data_of(5000, forged)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Err(e)) => match e.kind {
            LinkErrorKind::PeerFailed(r) => {
                assert!(r.contains("divergent redo"), "{r}");
                assert!(
                    r.contains(&name) && r.contains("1:5000") && r.contains("1:5999"),
                    "{r}"
                );
            }
            other => panic!("expected the collector's Error, got {other}"),
        },
        other => panic!("expected an Error, got {other:?}"),
    }
    assert_eq!(server.metrics.divergent.with(&name).get(), 1);
    assert_eq!(server.writer.durable(stream(1)).unwrap().end.offset, 12_288);
    // A gap is still refused as out of place, without the alarm.
    let mut again = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    again.send(&hello(1, "redovault-extractor")).await.unwrap();
    assert!(matches!(again.recv().await.unwrap(), Message::Welcome(_)));
    again.send(&data(20_000)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), again.recv()).await {
        Ok(Err(e)) => assert!(
            matches!(&e.kind, LinkErrorKind::PeerFailed(r) if r.contains("continues at 1:12288")),
            "{e}"
        ),
        other => panic!("expected an Error, got {other:?}"),
    }
    assert_eq!(server.metrics.divergent.with(&name).get(), 1);
    server.stop().await;
}

/// `GET /status` beside `/metrics`: the last durable commit with its XID, the session up and
/// then down with the moment it changed, the reconnect counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_last_durable_commit_and_the_session() {
    use crate::status::CollectorStatus;
    use redovault::wire::CommitMark;
    use redovault_redo::position::{Scn, Xid};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let tmp = tempfile::tempdir().unwrap();
    let psk = Psk::generate();
    let store = Store::open_with(
        &tmp.path().join("store"),
        keys(),
        StoreOptions::default(),
        Arc::new(crate::fs::RealFs),
    )
    .unwrap();
    let server = super::start(
        store,
        ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections: 8,
            security: ServerSecurity::LegacyBlowfish(psk.clone()),
            link: link_config(),
            extractors: Vec::new(),
            writer: WriterConfig::default(),
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            accept_compression: true,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let status_addr = server.metrics_addr.expect("metrics endpoint");
    let status = || async move {
        let mut s = tokio::net::TcpStream::connect(status_addr).await.unwrap();
        s.write_all(b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("content-type: application/json"), "{out}");
        let body = out.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str::<CollectorStatus>(body).unwrap()
    };
    let name = stream(9).to_string();
    assert!(status().await.streams.is_empty());

    let csec = ClientSecurity::LegacyBlowfish(psk);
    let mut a = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    a.send(&hello(9, "ext-a")).await.unwrap();
    assert!(matches!(a.recv().await.unwrap(), Message::Welcome(_)));
    let commit = CommitMark {
        xid: Xid {
            usn: 3,
            slot: 14,
            sqn: 159,
        },
        scn: Scn(26_535),
        time: Some(1_780_000_000),
        end: StreamPos {
            seq: LogSeq(1),
            offset: 8192,
        },
    };
    a.send(&Message::Data(Data {
        pos: StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        bytes: Bytes::from(vec![0x42; 8192]),
        commits: vec![commit],
        log_end: None,
    }))
    .await
    .unwrap();
    assert!(matches!(a.recv().await.unwrap(), Message::Ack(_)));
    let up = status().await.streams[&name].clone();
    assert!(up.session_up);
    assert_eq!((up.sessions, up.reconnects), (1, 0));
    assert_eq!(up.durable_end.as_deref(), Some("1:8192"));
    let last = up.last_commit.expect("last commit");
    assert_eq!(
        (last.scn, last.xid.as_deref(), last.time),
        (26_535, Some("3.14.159"), Some(1_780_000_000))
    );
    assert!(up.worm_end.is_none(), "no [worm]: no WORM position");

    drop(a);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let down = loop {
        let s = status().await.streams[&name].clone();
        if !s.session_up {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "session still up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(down.session_since >= up.session_since);
    let mut b = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    b.send(&hello(9, "ext-a")).await.unwrap();
    assert!(matches!(b.recv().await.unwrap(), Message::Welcome(_)));
    let again = status().await.streams[&name].clone();
    assert!(again.session_up);
    assert_eq!((again.sessions, again.reconnects), (2, 1));
    server.stop().await;
}

fn hello_offering(db: u32, caps: Option<Capabilities>) -> Message {
    let Message::Hello(h) = hello(db, "redovault-extractor") else {
        unreachable!("hello() is a Hello")
    };
    Message::Hello(Hello {
        capabilities: caps,
        ..h
    })
}

/// Redo-like bytes: compress to a small fraction, like real redo's block headers and rows.
fn redo_like(offset: u64, len: usize) -> Bytes {
    Bytes::from(
        (0..len as u64)
            .map(|i| (((offset + i) / 11) % 29) as u8)
            .collect::<Vec<_>>(),
    )
}

async fn welcome_caps(link: &mut Link) -> Option<Capabilities> {
    match link.recv().await.unwrap() {
        Message::Welcome(w) => w.capabilities,
        other => panic!("expected Welcome, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_is_negotiated_and_stored_compressed_as_the_original_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (ssec, csec) = tls_pair(tmp.path());
    let opts = StoreOptions {
        compress: Level::new(3),
        ..StoreOptions::default()
    };
    let dir = tmp.path().join("store");
    let store = Store::open_with(&dir, keys(), opts, Arc::new(crate::fs::RealFs)).unwrap();
    let server = start_server(store, ssec, 8).await;

    // An extractor before issue 19 (no capabilities) gets a Welcome without the field.
    let mut old = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    old.send(&hello_offering(2, None)).await.unwrap();
    assert_eq!(welcome_caps(&mut old).await, None);
    drop(old);

    // An offer is accepted; Data then travels compressed and is acknowledged by its
    // original length.
    let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    link.send(&hello_offering(1, Some(Capabilities::zstd(true))))
        .await
        .unwrap();
    let caps = welcome_caps(&mut link).await;
    assert!(caps.is_some_and(Capabilities::has_zstd), "{caps:?}");
    link.set_compression(Level::new(3));
    let sent = [redo_like(0, 256 << 10), redo_like(256 << 10, 256 << 10)];
    let mut offset = 0u64;
    for bytes in &sent {
        let d = Data {
            pos: StreamPos {
                seq: LogSeq(1),
                offset,
            },
            bytes: bytes.clone(),
            commits: Vec::new(),
            log_end: None,
        };
        offset += bytes.len() as u64;
        link.send(&Message::Data(d)).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
            Ok(Ok(Message::Ack(a))) => assert_eq!(a.durable.offset, offset),
            other => panic!("expected the Ack, got {other:?}"),
        }
    }
    // A resend of the first chunk, compressed again, is compared with the compressed
    // segment's original bytes: a duplicate, acknowledged at the durable end.
    link.send(&Message::Data(Data {
        pos: StreamPos {
            seq: LogSeq(1),
            offset: 0,
        },
        bytes: sent[0].clone(),
        commits: Vec::new(),
        log_end: None,
    }))
    .await
    .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), link.recv()).await {
        Ok(Ok(Message::Ack(a))) => assert_eq!(a.durable.offset, offset),
        other => panic!("expected the Ack of a duplicate, got {other:?}"),
    }
    assert_eq!(
        server
            .metrics
            .duplicate_bytes
            .with(&stream(1).to_string())
            .get(),
        256 << 10
    );
    drop(link);
    let st = server.stop().await.expect("the store back");

    // On disk: much smaller than the redo, and read back byte for byte.
    let on_disk: u64 = std::fs::read_dir(dir.join("streams").join(stream(1).to_string()))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk < offset / 4, "{on_disk} bytes on disk for {offset}");
    let back = st
        .read_range(
            stream(1),
            StreamPos {
                seq: LogSeq(1),
                offset: 0,
            },
            offset,
        )
        .unwrap();
    assert_eq!(back, [&sent[0][..], &sent[1][..]].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_does_not_accept_compression_declines_the_offer() {
    let tmp = tempfile::tempdir().unwrap();
    let (ssec, csec) = tls_pair(tmp.path());
    let store = Store::open_with(
        &tmp.path().join("store"),
        keys(),
        StoreOptions::default(),
        Arc::new(crate::fs::RealFs),
    )
    .unwrap();
    let server = super::start(
        store,
        ServerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_connections: 8,
            security: ssec,
            link: link_config(),
            extractors: Vec::new(),
            writer: WriterConfig::default(),
            metrics_listen: None,
            accept_compression: false,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut link = Link::connect_tcp(server.addr, &csec, &link_config())
        .await
        .unwrap();
    link.send(&hello_offering(1, Some(Capabilities(0xff))))
        .await
        .unwrap();
    assert_eq!(welcome_caps(&mut link).await, Some(Capabilities(0)));
    drop(link);
    server.stop().await;
}
