//! Link throughput benchmark: Data frames over loopback TCP, TLS 1.3 and legacy Blowfish.
//!
//! Each mode runs a collector side and an extractor side, each on its own OS thread with a
//! single-threaded tokio runtime, so the CPU time of each thread is the CPU cost of that
//! side (read from `/proc/thread-self/stat`). The extractor sends `REDOVAULT_BENCH_LINK_MIB`
//! MiB (default 2048) of Data chunks of `REDOVAULT_BENCH_LINK_CHUNK_KIB` KiB (default 256)
//! through a bounded in-flight window of `REDOVAULT_BENCH_LINK_WINDOW_MIB` MiB (default 16);
//! the collector decodes each chunk and acknowledges it. Prints MB/s and CPU seconds per
//! side.
//!
//! Run: `cargo bench --bench link_throughput` (goal in issue 5: >= 100 MB/s with TLS,
//! under one core per side).

use redovault_redo::position::{DbId, ResetlogsId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redovault::crypto::legacy::Psk;
use redovault::crypto::tls::{self, TlsClient, TlsServer};
use redovault::wire::message::{Ack, Data, Hello, Message, PROTOCOL_VERSION, Welcome};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig, ServerSecurity};
use redovault::wire::window::Window;
use redovault::wire::{StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (in parentheses, may hold spaces); utime and stime are
    // fields 14 and 15, i.e. indexes 11 and 12 after the name.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0;
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / tick
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct Row {
    mode: &'static str,
    bytes: u64,
    secs: f64,
    client_cpu: f64,
    server_cpu: f64,
    rekeys: Option<u32>,
}

/// The collector side: accepts one link and acknowledges every chunk. Returns its CPU
/// seconds.
fn collector(listener: std::net::TcpListener, security: ServerSecurity, config: LinkConfig) -> f64 {
    let rt = runtime();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        let (tcp, peer) = listener.accept().await.expect("accept");
        tcp.set_nodelay(true).expect("nodelay");
        let cpu0 = thread_cpu_seconds();
        let mut link = Link::accept(tcp, peer, &security, &config)
            .await
            .expect("accept link");
        loop {
            let reply = match link.recv().await {
                Ok(Message::Hello(h)) => Message::Welcome(Welcome {
                    resume: h.from,
                    last_commit: None,
                    capabilities: None,
                }),
                Ok(Message::Data(d)) => Message::Ack(Ack {
                    durable: d.end(),
                    last_commit: None,
                }),
                Ok(other) => panic!("collector: unexpected {other}"),
                Err(_) => break,
            };
            link.send(&reply).await.expect("send ack");
        }
        thread_cpu_seconds() - cpu0
    })
}

/// The extractor side: sends `total` bytes in `chunk`-byte Data messages within a window.
/// Returns (seconds from first Data to last Ack, CPU seconds, legacy rekeys).
fn extractor(
    addr: SocketAddr,
    security: ClientSecurity,
    config: LinkConfig,
    total: u64,
    chunk: usize,
    window: u32,
) -> (f64, f64, Option<u32>) {
    let rt = runtime();
    rt.block_on(async move {
        let cpu0 = thread_cpu_seconds();
        let mut link = Link::connect_tcp(addr, &security, &config)
            .await
            .expect("connect");
        link.send(&Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            stream: StreamId {
                db_id: DbId(1),
                resetlogs_id: ResetlogsId(1),
                thread: ThreadId(1),
            },
            db_name: "BENCH".into(),
            extractor_id: "redovault-extractor".into(),
            from: StreamPos::default(),
            capabilities: None,
        }))
        .await
        .expect("hello");
        assert!(matches!(link.recv().await, Ok(Message::Welcome(_))));
        // Pseudo-random bytes, so nothing on the way can shortcut constant data.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let payload: Vec<u8> = (0..chunk)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let payload = Bytes::from(payload);
        let window = Arc::new(Window::new(window));
        let (mut tx, mut rx) = link.split();
        let chunks = total.div_ceil(chunk as u64);
        let last_end = StreamPos {
            seq: LogSeq(1),
            offset: chunks * chunk as u64,
        };
        let start = Instant::now();
        let acks = {
            let window = window.clone();
            tokio::spawn(async move {
                loop {
                    match rx.recv().await.expect("ack") {
                        Message::Ack(a) => {
                            window.acknowledge(a.durable);
                            if a.durable >= last_end {
                                return rx;
                            }
                        }
                        other => panic!("extractor: unexpected {other}"),
                    }
                }
            })
        };
        for i in 0..chunks {
            let d = Data {
                pos: StreamPos {
                    seq: LogSeq(1),
                    offset: i * chunk as u64,
                },
                bytes: payload.clone(),
                commits: vec![],
                log_end: None,
            };
            window.reserve(d.end(), chunk).await.expect("window");
            tx.send(&Message::Data(d)).await.expect("send data");
        }
        let _rx = acks.await.expect("ack task");
        let secs = start.elapsed().as_secs_f64();
        let rekeys = tx.key_epoch();
        tx.shutdown().await.expect("close");
        (secs, thread_cpu_seconds() - cpu0, rekeys)
    })
}

fn run(
    mode: &'static str,
    server: ServerSecurity,
    client: ClientSecurity,
    total: u64,
    chunk: usize,
    window: u32,
) -> Row {
    let config = LinkConfig {
        heartbeat_interval: Duration::from_secs(5),
        ..LinkConfig::default()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let server_config = config.clone();
    let server = std::thread::spawn(move || collector(listener, server, server_config));
    let client = std::thread::spawn(move || extractor(addr, client, config, total, chunk, window));
    let (secs, client_cpu, rekeys) = client.join().expect("extractor thread");
    let server_cpu = server.join().expect("collector thread");
    Row {
        mode,
        bytes: total.div_ceil(chunk as u64) * chunk as u64,
        secs,
        client_cpu,
        server_cpu,
        rekeys,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let mib = env_usize("REDOVAULT_BENCH_LINK_MIB", 2048) as u64;
    let chunk = env_usize("REDOVAULT_BENCH_LINK_CHUNK_KIB", 256) << 10;
    let window = (env_usize("REDOVAULT_BENCH_LINK_WINDOW_MIB", 16) << 20) as u32;
    let total = mib << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::generate_pki(dir.path()).expect("pki");
    let tls_server = ServerSecurity::Tls(
        TlsServer::from_pem_files(&pki.server_cert, &pki.server_key, &pki.ca).expect("server tls"),
    );
    let tls_client = ClientSecurity::Tls {
        client: TlsClient::from_pem_files(&pki.client_cert, &pki.client_key, &pki.ca)
            .expect("client tls"),
        server_name: "localhost".into(),
    };
    let psk = Psk::generate();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "link throughput: {mib} MiB in {} KiB Data chunks, window {} MiB, loopback TCP; load average at start: {}",
        chunk >> 10,
        window >> 20,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let rows = [
        run(
            "TLS 1.3 (mutual auth)",
            tls_server,
            tls_client,
            total,
            chunk,
            window,
        ),
        run(
            "legacy Blowfish-CTR + HMAC-SHA-256",
            ServerSecurity::LegacyBlowfish(psk.clone()),
            ClientSecurity::LegacyBlowfish(psk),
            total,
            chunk,
            window,
        ),
    ];
    println!();
    println!(
        "| mode | MiB | seconds | MB/s | extractor CPU s | collector CPU s | extractor cores | collector cores | rekeys |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.mode,
            r.bytes >> 20,
            r.secs,
            r.bytes as f64 / 1e6 / r.secs,
            r.client_cpu,
            r.server_cpu,
            r.client_cpu / r.secs,
            r.server_cpu / r.secs,
            r.rekeys.map_or("-".to_string(), |n| n.to_string()),
        );
    }
}
