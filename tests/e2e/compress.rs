//! Compression with a collector that predates it (issue 19): the extractor binary, configured
//! with `[link] compress = "zstd"`, ships a live simulated database to an in-process collector
//! that speaks as one built before compression does. Such a collector refuses a Hello that
//! carries the capabilities byte (trailing bytes to its decoder: an Error naming them) and
//! never sees compressed Data. The extractor must say Hello again without the offer, ship raw,
//! and get its redo acknowledged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redovault::crypto::tls::TlsServer;
use redovault::wire::message::{Ack, Failure, Message, Welcome};
use redovault::wire::transport::{Link, LinkConfig, ServerSecurity};
use tokio::net::TcpListener;

use crate::netkit::{LiveDb, World, init_logs, stream_metric, wait_until};

/// What the old collector saw.
#[derive(Default)]
struct Seen {
    /// Hellos with capabilities, refused as trailing bytes.
    offers: AtomicU64,
    /// Hellos without, welcomed.
    plain: AtomicU64,
    /// Redo bytes acknowledged.
    bytes: AtomicU64,
}

/// One connection, answered as a collector before issue 19 would.
async fn old_collector(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    sec: Arc<ServerSecurity>,
    seen: Arc<Seen>,
) {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_millis(250),
        missed_heartbeats: 8,
        handshake_timeout: Duration::from_secs(2),
        ..LinkConfig::default()
    };
    let Ok(mut link) = Link::accept(tcp, peer, &sec, &config).await else {
        return;
    };
    loop {
        let reply = match link.recv().await {
            Ok(Message::Hello(h)) if h.capabilities.is_some() => {
                seen.offers.fetch_add(1, Ordering::SeqCst);
                // Exactly what the old collector's session sends for a Hello it cannot decode.
                let _ = link
                    .send(&Message::Error(Failure {
                        reason: "bad message: Hello.(end): 1 trailing bytes after the last field"
                            .into(),
                    }))
                    .await;
                return;
            }
            Ok(Message::Hello(h)) => {
                seen.plain.fetch_add(1, Ordering::SeqCst);
                Message::Welcome(Welcome {
                    resume: h.from,
                    last_commit: None,
                    capabilities: None,
                })
            }
            Ok(Message::Data(d)) => {
                seen.bytes.fetch_add(d.bytes.len() as u64, Ordering::SeqCst);
                Message::Ack(Ack {
                    durable: d.end(),
                    last_commit: d.commits.last().copied(),
                })
            }
            Ok(Message::Heartbeat(_)) => continue,
            _ => return,
        };
        if link.send(&reply).await.is_err() {
            return;
        }
    }
}

#[test]
fn an_extractor_offering_compression_ships_raw_to_a_collector_that_predates_it() {
    init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut w = World::new(3);
    w.compress = true;
    let sec = Arc::new(ServerSecurity::Tls(
        TlsServer::from_pem_files(&w.pki.server_cert, &w.pki.server_key, &w.pki.ca).unwrap(),
    ));
    let seen = Arc::new(Seen::default());
    let listener = rt.block_on(TcpListener::bind(w.addr())).unwrap();
    {
        let (sec, seen) = (sec.clone(), seen.clone());
        rt.spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                tokio::spawn(old_collector(tcp, peer, sec.clone(), seen.clone()));
            }
        });
    }
    let ecfg = w.extractor_config(w.port, "");
    let sim = w.sim_config(256 << 10, 256 << 10);
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    let em = w.extractor_metrics_addr();
    wait_until(
        "redo acknowledged by the old collector",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || stream_metric(em, "redovault_extractor_acked_scn", &stream).is_some_and(|s| s > 0.0),
    );
    std::thread::sleep(Duration::from_secs(2));
    db.stop();
    assert_eq!(
        stream_metric(em, "redovault_extractor_link_compression_level", &stream),
        Some(0.0),
        "raw to an old collector"
    );
    assert!(extractor.terminate(Duration::from_secs(20)));
    assert_eq!(
        seen.offers.load(Ordering::SeqCst),
        1,
        "offered once, then not again"
    );
    assert!(seen.plain.load(Ordering::SeqCst) >= 1);
    assert!(seen.bytes.load(Ordering::SeqCst) > 100_000);
    let log = std::fs::read_to_string(w.path("extractor.log")).unwrap_or_default();
    assert!(
        log.contains("the collector refused a Hello that offers compression"),
        "the fallback is logged: {}",
        log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
    drop(rt);
}
