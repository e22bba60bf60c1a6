//! Several copies of one stream (issue 15): `restore online` and `verify` over two real
//! collector stores (one shorter: its collector was cut off), a third whose store holds a
//! forged byte (authenticated under its own key: only the comparison with the other copies
//! catches it), a collector directory that is gone (backup host wiped), and the stream's
//! pieces sealed to a recovery key in WORM on the real Ceph server under two prefixes (one
//! per collector, one shorter). The simulated database's online log is read by the
//! extractor's tailer, as in production.
//!
//! `restore online` must rebuild from the longest copy that agrees with the majority, byte
//! for byte the database's CURRENT online log up to the last commit, and say for every copy
//! whether it agrees, is behind, diverges (and where) or is absent; `verify` must name the
//! divergence (stream, copies, position) as critical and the copies behind as information.

use redovault_redo::position::ResetlogsId;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::Sha256Digest;
use redovault::store::ArchiveStore;
use redovault::store::s3::S3Store;
use redovault::wire::{StreamId, StreamPos};
use redovault_collector::piece::{piece_key, seal};
use redovault_collector::segment::StoredChunk;
use redovault_collector::store::Store;
use redovault_drill::simulate::SimConfig;
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::tail::Tailer;
use redovault_redo::position::{LogSeq, ThreadId};

use crate::netkit::run_with_keys;
use crate::store::ceph;

/// A collector's key ring (each collector its own key), and its key file.
fn key_ring(dir: &Path, name: &str, byte: u8) -> (KeyRing, PathBuf) {
    let id = KeyId::parse("k1").unwrap();
    let ring = KeyRing::from_keys(id.clone(), [(id, [byte; 32])]).unwrap();
    let file = dir.join(format!("{name}.keys"));
    std::fs::write(
        &file,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            hex::encode([byte; 32])
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (ring, file)
}

/// Every chunk the tailer reads of `stream`, from `first` through the CURRENT log until it
/// has nothing more to read.
fn tail_all(
    sim_dir: &Path,
    online: Vec<Vec<PathBuf>>,
    stream: StreamId,
    first: u32,
) -> Vec<StoredChunk> {
    let sources = LogSources {
        groups: online,
        archive_dirs: vec![sim_dir.join("archive")],
    };
    let mut tailer = Tailer::new(
        &sources,
        TailConfig::default(),
        stream,
        StreamPos {
            seq: LogSeq(first),
            offset: 0,
        },
    )
    .unwrap();
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 100 {
        match tailer.poll_chunk().unwrap() {
            Some(c) => {
                idle = 0;
                out.extend(split(StoredChunk {
                    start: c.pos,
                    data: c.bytes.to_vec(),
                    commits: c.commits,
                    log_end: c.log_end.is_some(),
                }));
            }
            None => {
                idle += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    out
}

/// `c` cut into chunks of at most 2 KiB (whole 512-byte blocks), each with the commits that
/// end in it, as a live extractor ships a log being written.
fn split(c: StoredChunk) -> Vec<StoredChunk> {
    const PART: usize = 2048;
    if c.data.len() <= PART {
        return vec![c];
    }
    let n = c.data.len().div_ceil(PART);
    (0..n)
        .map(|i| {
            let a = i * PART;
            let b = (a + PART).min(c.data.len());
            let start = StreamPos {
                seq: c.start.seq,
                offset: c.start.offset + a as u64,
            };
            let end = c.start.offset + b as u64;
            StoredChunk {
                start,
                data: c.data[a..b].to_vec(),
                commits: c
                    .commits
                    .iter()
                    .filter(|m| m.end.offset > start.offset && m.end.offset <= end)
                    .copied()
                    .collect(),
                log_end: c.log_end && i == n - 1,
            }
        })
        .collect()
}

/// A collector store in `dir` holding `chunks`, under its own key.
fn collector_store(dir: &Path, ring: KeyRing, stream: StreamId, chunks: &[StoredChunk]) {
    let mut store = Store::open(dir, ring).unwrap();
    for c in chunks {
        store
            .append(stream, c.start, &c.data, &c.commits, c.log_end)
            .unwrap();
        store.sync().unwrap();
    }
}

/// Seals `chunks` into pieces (4 chunks each) to the recovery key and puts them under
/// `prefix` in WORM, as a collector's uploader does.
async fn seal_into_worm(
    s3: &S3Store,
    prefix: &str,
    stream: StreamId,
    chunks: &[StoredChunk],
    key: &RecoveryPrivateKey,
) -> usize {
    let mut prev = Sha256Digest::ZERO;
    let mut n = 0;
    for (i, group) in chunks.chunks(4).enumerate() {
        let p = seal(stream, i as u64 + 1, prev, group, key.public()).unwrap();
        let k = piece_key(prefix, stream, p.header.start, &p.sha256);
        s3.put_immutable(&k, std::io::Cursor::new(p.bytes))
            .await
            .unwrap();
        prev = p.sha256;
        n += 1;
    }
    n
}

#[test]
fn restore_online_and_verify_over_collectors_and_worm_copies_one_forged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim_dir = d.join("oracle");
    let mut cfg = SimConfig::new(&sim_dir);
    cfg.log_size = 96 * 1024;
    cfg.transactions = Some(600);
    cfg.seed = 1515;
    cfg.archive_current = false;
    let stream = StreamId {
        db_id: cfg.db_id,
        resetlogs_id: ResetlogsId(cfg.resetlogs_id()),
        thread: ThreadId(1),
    };
    let first_seq = cfg.start_sequence;
    let summary = redovault_drill::simulate::run(cfg).unwrap();
    assert!(summary.archived.len() >= 3, "{summary:?}");
    let (_, current_seq, current_file) = summary.current[0].clone();
    let online: Vec<Vec<PathBuf>> = std::fs::read_dir(sim_dir.join("online"))
        .unwrap()
        .map(|e| vec![e.unwrap().path()])
        .collect();
    let chunks = tail_all(&sim_dir, online, stream, first_seq);
    let last = chunks.last().unwrap().start.seq;
    assert_eq!(last.0, current_seq, "the tailer reached the CURRENT log");
    // The chunks of the CURRENT log: the shorter copies end inside it, and the forged byte
    // is in it, before the shorter copies' end.
    let in_current: Vec<usize> = (0..chunks.len())
        .filter(|&i| chunks[i].start.seq.0 == current_seq && !chunks[i].data.is_empty())
        .collect();
    assert!(
        in_current.len() >= 6,
        "{} chunks in the current log",
        in_current.len()
    );
    let short_len = in_current[in_current.len() * 2 / 3];
    let forged_at = in_current[in_current.len() / 3];
    let mut forged = chunks.clone();
    let fc = &mut forged[forged_at];
    let flip = fc.data.len() / 2;
    fc.data[flip] ^= 0x20;
    let forged_pos = StreamPos {
        seq: fc.start.seq,
        offset: (fc.start.offset + flip as u64) / 512 * 512,
    };

    let (ring_a, keys_a) = key_ring(d, "a", 1);
    let (ring_b, keys_b) = key_ring(d, "b", 2);
    let (ring_f, keys_f) = key_ring(d, "forged", 3);
    let (dir_a, dir_b, dir_f) = (d.join("a"), d.join("b"), d.join("forged"));
    collector_store(&dir_a, ring_a, stream, &chunks);
    collector_store(&dir_b, ring_b, stream, &chunks[..short_len]);
    collector_store(&dir_f, ring_f, stream, &forged);

    // The pieces in WORM: collector a's (whole) and b's (shorter), each under its prefix.
    let Some(server) = ceph() else {
        return;
    };
    let base = format!("multi-{:016x}", rand::random::<u64>());
    let (p1, p2) = (format!("{base}/a"), format!("{base}/b"));
    let recovery = RecoveryPrivateKey::generate();
    let recovery_file = d.join("recovery.key");
    std::fs::write(&recovery_file, recovery.to_pem().as_bytes()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&recovery_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = Arc::new(S3Store::new(server.config(&server.bucket)).unwrap());
    // Pieces from the CURRENT log's first chunk on (older pieces retired, as in a long run).
    let from = in_current[0];
    let n1 = rt.block_on(seal_into_worm(&s3, &p1, stream, &chunks[from..], &recovery));
    let n2 = rt.block_on(seal_into_worm(
        &s3,
        &p2,
        stream,
        &chunks[from..short_len],
        &recovery,
    ));
    assert!(n1 > n2 && n2 >= 1, "{n1} {n2}");

    let config = d.join("verifier.toml");
    let toml_path = |p: &Path| p.to_str().unwrap().to_string();
    std::fs::write(
        &config,
        format!(
            r#"[store]
kind = "s3"
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "{base}"

[verify]
lock_mode = "compliance"
min_retention = "10m"
deep = "off"
state_dir = "{state}"
worm_prefix = "{p1}"

[[collector]]
name = "a"
dir = "{a}"
key_file = "{ka}"

[[collector]]
name = "b"
dir = "{b}"
key_file = "{kb}"
worm_prefix = "{p2}"

[[collector]]
name = "forged"
dir = "{f}"
key_file = "{kf}"

[[collector]]
name = "wiped"
dir = "{gone}"
key_file = "{ka}"

[telemetry]
metrics_listen = ""
"#,
            endpoint = server.endpoint,
            bucket = server.bucket,
            region = server.region,
            ca = toml_path(&server.ca),
            state = toml_path(&d.join("verifier-state")),
            a = toml_path(&dir_a),
            b = toml_path(&dir_b),
            f = toml_path(&dir_f),
            gone = toml_path(&d.join("gone")),
            ka = toml_path(&keys_a),
            kb = toml_path(&keys_b),
            kf = toml_path(&keys_f),
        ),
    )
    .unwrap();
    let verifier = &crate::netkit::bins().verifier;
    let run = |args: &[&str]| run_with_keys(verifier, args, &server.access_key, &server.secret_key);
    let sid = stream.to_string();

    // 1. restore online from the configuration: every collector and both WORM prefixes.
    let dest = d.join("restore");
    let (code, out) = run(&[
        "restore",
        "online",
        "--config",
        config.to_str().unwrap(),
        "--recovery-key",
        recovery_file.to_str().unwrap(),
        "--stream",
        &sid,
        "--dest",
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
    let record = &records["threads"][0];
    let status: Vec<(String, String, bool)> = record["copies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                match c["diverges_at"].as_str() {
                    Some(p) => format!("diverges at {p}"),
                    None => c["status"].as_str().unwrap().to_string(),
                },
                c["chosen"].as_bool().unwrap(),
            )
        })
        .collect();
    let worm1 = format!("worm:{p1}");
    let worm2 = format!("worm:{p2}");
    assert_eq!(
        status,
        vec![
            ("a".to_string(), "agrees".to_string(), true),
            ("b".into(), "behind".into(), false),
            ("forged".into(), format!("diverges at {forged_pos}"), false),
            ("wiped".into(), "absent".into(), false),
            (worm1.clone(), "agrees".into(), false),
            (worm2.clone(), "behind".into(), false),
        ],
        "{out}"
    );
    assert_eq!(record["source"], "collector", "{record}");
    assert!(
        out.contains(&format!("forged (collector {}), ends at", dir_f.display()))
            && out.contains(&format!("diverges at {forged_pos}")),
        "{out}"
    );
    let rebuilt = crate::netkit::rebuilt_redo(record);
    let source = std::fs::read(&current_file).unwrap();
    assert!(rebuilt.len() > 1024);
    assert_eq!(
        rebuilt,
        source[..rebuilt.len()],
        "the online log rebuilt equals the database's CURRENT log up to the last commit"
    );

    // 2. The collectors' directories wiped but a's, from flags, WORM prefixes from flags:
    //    a and worm:p1 agree, worm:p2 is behind, the wiped ones are absent.
    let dest2 = d.join("restore2");
    let (code, out) = run(&[
        "restore",
        "online",
        "--config",
        config.to_str().unwrap(),
        "--collector-dir",
        d.join("gone").to_str().unwrap(),
        "--key-file",
        keys_b.to_str().unwrap(),
        "--recovery-key",
        recovery_file.to_str().unwrap(),
        "--worm-prefix",
        &p2,
        "--worm-prefix",
        &p1,
        "--stream",
        &sid,
        "--dest",
        dest2.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest2.join("restore-online.json")).unwrap()).unwrap();
    let record = &records["threads"][0];
    assert_eq!(record["source"], "worm", "{record}");
    let copies = record["copies"].as_array().unwrap();
    assert_eq!(copies[0]["status"], "absent", "{out}");
    assert_eq!(copies[1]["name"].as_str(), Some(worm2.as_str()));
    assert_eq!(copies[1]["status"], "behind", "{out}");
    assert_eq!(copies[2]["status"], "agrees", "{out}");
    assert_eq!(copies[2]["chosen"], true, "{out}");
    let rebuilt2 = crate::netkit::rebuilt_redo(record);
    assert_eq!(rebuilt2, rebuilt, "the same log from WORM");

    // 3. Two copies that diverge, no majority: refused, naming both and the position;
    //    --copy settles it.
    let two = |extra: &[&str]| {
        let mut args = vec![
            "restore",
            "online",
            "--collector-dir",
            dir_a.to_str().unwrap(),
            "--key-file",
            keys_a.to_str().unwrap(),
            "--collector-dir",
            dir_f.to_str().unwrap(),
            "--key-file",
            keys_f.to_str().unwrap(),
            "--stream",
            &sid,
            "--dest",
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let dest3 = d.join("restore3");
    let (code, out) = two(&[dest3.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("a and forged differ at {forged_pos}")) && out.contains("--copy"),
        "{out}"
    );
    assert!(!dest3.join("restore-online.json").exists());
    let (code, out) = two(&[dest3.to_str().unwrap(), "--copy", "a"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("named by --copy"), "{out}");

    // 4. verify: every collector and WORM prefix; the divergence is critical and named, the
    //    copies behind are information.
    let report = d.join("report.html");
    let (code, out) = run(&[
        "verify",
        "--config",
        config.to_str().unwrap(),
        "--recovery-key",
        recovery_file.to_str().unwrap(),
        "--json",
        "--html",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "findings: {out}");
    let json_start = out.find('{').unwrap();
    // The report on stdout, then whatever the run logged on stderr.
    let r: serde_json::Value = serde_json::Deserializer::from_str(&out[json_start..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    let findings = r["findings"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        findings.iter().filter(|f| f["kind"] == kind).collect()
    };
    let diverge = of("copies_diverge");
    assert_eq!(diverge.len(), 1, "{findings:#?}");
    assert_eq!(diverge[0]["severity"], "error");
    let subject = diverge[0]["subject"].as_str().unwrap();
    let detail = diverge[0]["detail"].as_str().unwrap();
    assert!(
        subject.contains(&sid) && subject.contains("forged"),
        "{subject}"
    );
    assert!(
        detail.contains(&format!("differ first at {forged_pos}")) && detail.contains("a ("),
        "{detail}"
    );
    // The pieces under both prefixes are the streams' (not unreferenced objects).
    assert!(of("unreferenced_object").is_empty(), "{findings:#?}");
    let behind: Vec<&str> = of("copy_behind")
        .iter()
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        behind,
        vec![
            format!("stream {sid} copy b"),
            format!("stream {sid} copy {worm2}")
        ],
        "{findings:#?}"
    );
    // Both prefixes' streams are audited (their chains, pieces no sealed entry records).
    let streams: Vec<&str> = r["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert!(
        streams.contains(&format!("{sid} under {p2}").as_str()),
        "{streams:?}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("id=\"copies\"") && html.contains(&format!("diverges at {forged_pos}")),
        "the HTML report shows the copies"
    );
}
