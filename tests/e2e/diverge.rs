//! The real collector never replaces redo it acknowledged (issue 15: each collector is an
//! independent copy). A forged extractor, holding the real extractor's certificate, talks to
//! the real collector binary over real TLS: it ships real Oracle-format redo and gets its
//! Ack; then, in a new session, sends one flipped byte at an acknowledged position. The
//! collector answers an Error, logs `ALARM: divergent redo` naming the stream, the position,
//! the first differing offset, the peer and the extractor id, counts it in
//! `redovault_collector_divergent_redo_total`, and leaves every file of its data directory
//! byte-identical. A later session is still served: the same forgery is refused again, and an
//! identical resend of acknowledged redo with new redo after it is acknowledged up to the new
//! end. `redovault-verifier restore online` then rebuilds the database's bytes.

use redovault_redo::position::ResetlogsId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use redovault::crypto::tls::TlsClient;
use redovault::wire::message::{Data, Hello, Message, PROTOCOL_VERSION};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig, LinkErrorKind};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_redo::position::{LogSeq, ThreadId};
use tokio::net::TcpStream;

use crate::netkit::{World, bins, init_logs, run_ok, scrape, sha256_hex, wait_until};

const EXTRACTOR_ID: &str = "redovault-extractor";

/// Every file under `dir` (relative path) with its SHA-256.
fn hash_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// The CURRENT log of a finished simulation as the extractor would ship it: its written
/// blocks and their commit marks.
struct Redo {
    stream: StreamId,
    seq: LogSeq,
    bytes: Vec<u8>,
    commits: Vec<CommitMark>,
}

fn simulated_redo(w: &World) -> Redo {
    let mut cfg = redovault_drill::simulate::SimConfig::new(&w.sim);
    cfg.log_size = 512 * 1024;
    cfg.transactions = Some(400);
    cfg.seed = 15;
    let stream = StreamId {
        db_id: cfg.db_id,
        resetlogs_id: ResetlogsId(cfg.resetlogs_id()),
        thread: ThreadId(1),
    };
    let summary = redovault_drill::simulate::run(cfg).expect("simulate");
    let (_, seq, path) = summary.current[0].clone();
    let log = std::fs::read(path).unwrap();
    let r = redovault_redo::analyze(&log).unwrap();
    let bs = u64::from(r.file.block_size);
    let len = r
        .write_point
        .map_or(log.len(), |wp| (u64::from(wp) * bs) as usize);
    let bytes = log[..len].to_vec();
    let seq = LogSeq(seq);
    let commits = redovault_redo::analyze(&bytes)
        .unwrap()
        .commits
        .iter()
        .filter(|c| !c.rollback)
        .map(|c| CommitMark {
            xid: c.xid,
            scn: c.scn,
            time: c.unix_time.map(i64::from),
            end: StreamPos {
                seq,
                offset: (u64::from(c.end_block) + 1) * bs,
            },
        })
        .collect();
    Redo {
        stream,
        seq,
        bytes,
        commits,
    }
}

impl Redo {
    fn pos(&self, offset: u64) -> StreamPos {
        StreamPos {
            seq: self.seq,
            offset,
        }
    }

    /// A Data of `bytes` at `from`, with the commits that end inside it.
    fn data(&self, from: u64, bytes: Vec<u8>) -> Message {
        let (lo, hi) = (self.pos(from), self.pos(from + bytes.len() as u64));
        Message::Data(Data {
            pos: lo,
            commits: self
                .commits
                .iter()
                .filter(|c| c.end > lo && c.end <= hi)
                .copied()
                .collect(),
            bytes: Bytes::from(bytes),
            log_end: None,
        })
    }

    /// The source's bytes `[from, to)` as a Data.
    fn slice(&self, from: u64, to: u64) -> Message {
        self.data(from, self.bytes[from as usize..to as usize].to_vec())
    }
}

/// A session of the forged extractor: TLS with the extractor's certificate, Hello from the
/// start of the log; returns the link, its local address and the Welcome's resume.
async fn session(w: &World, r: &Redo) -> (Link, SocketAddr, StreamPos) {
    let addr = w.addr();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let sec = ClientSecurity::Tls {
        client: TlsClient::from_pem_files(&w.pki.client_cert, &w.pki.client_key, &w.pki.ca)
            .unwrap(),
        server_name: "localhost".into(),
    };
    let config = LinkConfig {
        handshake_timeout: Duration::from_secs(5),
        ..LinkConfig::default()
    };
    let mut link = Link::connect(tcp, addr, &sec, &config).await.unwrap();
    link.send(&Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        stream: r.stream,
        db_name: "SIM".into(),
        extractor_id: EXTRACTOR_ID.into(),
        from: r.pos(0),
        capabilities: None,
    }))
    .await
    .unwrap();
    let resume = match link.recv().await.unwrap() {
        Message::Welcome(wl) => wl.resume,
        other => panic!("expected a Welcome, got {other}"),
    };
    (link, local, resume)
}

/// Sends `msg` and returns the Ack's position.
async fn acked(link: &mut Link, msg: &Message) -> StreamPos {
    link.send(msg).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(15), link.recv()).await {
        Ok(Ok(Message::Ack(a))) => a.durable,
        other => panic!("expected an Ack, got {other:?}"),
    }
}

/// Sends `msg` and expects the collector's Error (then the end of the session).
async fn refused(link: &mut Link, msg: &Message) -> String {
    link.send(msg).await.unwrap();
    let reason = match tokio::time::timeout(Duration::from_secs(15), link.recv()).await {
        Ok(Err(e)) => match e.kind {
            LinkErrorKind::PeerFailed(reason) => reason,
            other => panic!("expected the collector's Error, got {other}"),
        },
        other => panic!("expected the collector's Error, got {other:?}"),
    };
    let next = tokio::time::timeout(Duration::from_secs(15), link.recv()).await;
    assert!(
        matches!(next, Ok(Err(_))),
        "the session ends after the refusal: {next:?}"
    );
    reason
}

/// The collector's `ALARM: divergent redo` lines about `peer`.
fn alarm_lines(w: &World, peer: SocketAddr) -> Vec<String> {
    let log = std::fs::read_to_string(w.path("collector.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("ALARM: divergent redo") && l.contains(&peer.to_string()))
        .map(str::to_string)
        .collect()
}

fn divergent_metric(w: &World, stream: &str) -> Option<f64> {
    scrape(w.collector_metrics_addr())
        .get(&format!(
            "redovault_collector_divergent_redo_total{{stream=\"{stream}\"}}"
        ))
        .copied()
}

#[test]
fn collector_refuses_different_bytes_at_an_acknowledged_position_and_changes_nothing() {
    init_logs();
    let w = World::new(3);
    let r = simulated_redo(&w);
    let name = r.stream.to_string();
    let total = r.bytes.len() as u64;
    // Acknowledged first: about the first half, on a block boundary; the rest comes later.
    let half = (total / 2) / 512 * 512;
    assert!(
        r.commits.iter().any(|c| c.end.offset <= half)
            && r.commits.last().unwrap().end.offset > half,
        "commits on both sides of {half} (of {total})"
    );
    let ccfg = w.collector_config("");
    let collector = w.start_collector(&ccfg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // 1. Ship the first half; the Ack comes only once it is durable.
    rt.block_on(async {
        let (mut link, _, resume) = session(&w, &r).await;
        assert_eq!(resume, r.pos(0));
        assert_eq!(acked(&mut link, &r.slice(0, half)).await, r.pos(half));
    });
    assert_eq!(
        divergent_metric(&w, &name),
        Some(0.0),
        "the alarm's series exists at 0"
    );
    let before = hash_tree(&w.store);
    assert!(before.keys().any(|p| p.to_string_lossy().ends_with(".rvs")));

    // 2. Reconnect (Hello from 0): one byte flipped inside acknowledged redo.
    let from = 4 * 512;
    let flip = 3 * 512 + 17;
    let mut forged = r.bytes[from as usize..half as usize].to_vec();
    forged[flip] ^= 0x01;
    let forged = r.data(from, forged);
    let first_diff = r.pos(from + flip as u64);
    let (reason, peer) = rt.block_on(async {
        let (mut link, peer, resume) = session(&w, &r).await;
        assert_eq!(resume, r.pos(half), "the Welcome names the durable end");
        (refused(&mut link, &forged).await, peer)
    });
    assert!(
        reason.contains(&name),
        "the Error names the stream: {reason}"
    );
    assert!(
        reason.contains(&r.pos(from).to_string()),
        "the Error names the position: {reason}"
    );
    let mut line = String::new();
    wait_until(
        "the collector's divergent-redo alarm",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || match alarm_lines(&w, peer).pop() {
            Some(l) => {
                line = l;
                true
            }
            None => false,
        },
    );
    assert!(line.contains("ERROR"), "{line}");
    for what in [
        name.clone(),
        r.pos(from).to_string(),
        first_diff.to_string(),
        peer.to_string(),
        EXTRACTOR_ID.to_string(),
    ] {
        assert!(line.contains(&what), "the alarm names {what}: {line}");
    }
    assert_eq!(divergent_metric(&w, &name), Some(1.0));
    assert_eq!(
        hash_tree(&w.store),
        before,
        "every file of the collector's data directory is byte-identical"
    );

    // 3. Not poisoned: a later session is served, and the same forgery refused again.
    let peer = rt.block_on(async {
        let (mut link, peer, resume) = session(&w, &r).await;
        assert_eq!(resume, r.pos(half));
        refused(&mut link, &forged).await;
        peer
    });
    wait_until(
        "the second alarm",
        Duration::from_secs(15),
        Duration::from_millis(50),
        || !alarm_lines(&w, peer).is_empty(),
    );
    assert_eq!(divergent_metric(&w, &name), Some(2.0));
    assert_eq!(hash_tree(&w.store), before);

    // 4. An identical resend of acknowledged redo with new redo after it: acknowledged up to
    // the new end; a wholly held resend is answered with the durable end.
    rt.block_on(async {
        let (mut link, _, resume) = session(&w, &r).await;
        assert_eq!(resume, r.pos(half));
        assert_eq!(acked(&mut link, &r.slice(from, total)).await, r.pos(total));
        assert_eq!(acked(&mut link, &r.slice(0, half)).await, r.pos(total));
    });
    let m = scrape(w.collector_metrics_addr());
    assert_eq!(
        m.get(&format!(
            "redovault_collector_duplicate_bytes_total{{stream=\"{name}\"}}"
        ))
        .copied(),
        Some((2 * half - from) as f64),
        "resent bytes are compared, not stored twice"
    );
    assert_eq!(divergent_metric(&w, &name), Some(2.0));
    assert!(collector.terminate(Duration::from_secs(20)));

    // 5. The verifier rebuilds the database's bytes from the collector's segments.
    let dest = w.path("restore");
    let out = run_ok(
        &bins().verifier,
        &[
            "restore",
            "online",
            "--collector-dir",
            w.store.to_str().unwrap(),
            "--key-file",
            w.keys.to_str().unwrap(),
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
    let record = &records["threads"][0];
    assert_eq!(record["source"], "collector", "{record}\n{out}");
    let last = r.commits.last().unwrap();
    assert_eq!(
        record["last_commit_scn"].as_u64(),
        Some(last.scn.0),
        "{record}"
    );
    let rebuilt = crate::netkit::rebuilt_redo(record);
    assert_eq!(rebuilt.len() as u64, last.end.offset, "{record}");
    assert!(
        rebuilt == r.bytes[..rebuilt.len()],
        "the rebuilt online log is the database's bytes, not the forged ones"
    );
}
