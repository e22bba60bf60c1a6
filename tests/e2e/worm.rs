//! What the tests of the collector's `[worm]` uploader share, on the real Ceph server with
//! the drill bucket and the deploy/ policy: the recovery team's key pair, the `[worm]`
//! section, the collector started with its own put-only keys, WORM read back with the
//! verifier's read-only keys, the collector's local chain, and the checks made of them
//! (the chain is continuous and in WORM, every commit of the journal is in its pieces,
//! pieces beside the chain are crash orphans, `restore online` from WORM alone).

use redovault_redo::position::{DbId, ResetlogsId};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::manifest::{Sha256Digest, read_chain_entries};
use redovault::store::ArchiveStore as _;
use redovault::store::s3::S3Store;
use redovault::wire::StreamId;
use redovault_collector::piece::{self, PieceHeader};
use redovault_collector::worm::{PieceEntry, chain_dir};
use redovault_drill::simulate::SimConfig;
use redovault_drill::simulate::journal::JournalEntry;
use redovault_drill::testserver::{DrillBucket, TestServer};
use redovault_redo::position::ThreadId;
use tokio::io::AsyncReadExt as _;

use crate::netkit::{LiveDb, Proc, World, bins, run_with_keys, stream_metric, wait_until};

/// A server of `REDOVAULT_TEST_S3_TARGETS` with the drill bucket (its policy from deploy/,
/// and the collector's, the verifier's and the database host's keys).
pub struct Drill {
    pub server: TestServer,
    /// Its drill bucket.
    pub drill: DrillBucket,
}

/// The recovery team's key pair: the private half never goes near the collector.
pub struct RecoveryTeam {
    /// The private key.
    pub key: RecoveryPrivateKey,
    /// Its PEM file (mode 0600, in the team's own directory).
    pub private: PathBuf,
    /// The public key's PEM file (what the collector gets).
    pub public: PathBuf,
}

impl RecoveryTeam {
    /// A new key pair in `w`.
    pub fn new(w: &World) -> RecoveryTeam {
        let team = w.path("recovery-team");
        fs::create_dir_all(&team).unwrap();
        let key = RecoveryPrivateKey::generate();
        let private = team.join("recovery.key");
        fs::write(&private, key.to_pem().as_bytes()).unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
        let public = w.path("recovery.pub");
        fs::write(&public, key.public().to_pem()).unwrap();
        RecoveryTeam {
            key,
            private,
            public,
        }
    }
}

/// Gives `sim` a database id of its own (pieces of earlier runs on the same server stay in
/// other streams); returns the stream of its thread 1, and its name.
pub fn own_stream(sim: &mut SimConfig) -> (StreamId, String) {
    sim.db_id = DbId(rand::random::<u32>() | 1);
    let sid = StreamId {
        db_id: sim.db_id,
        resetlogs_id: ResetlogsId(sim.resetlogs_id()),
        thread: ThreadId(1),
    };
    (sid, sid.to_string())
}

/// One piece object of a stream as WORM holds it.
#[derive(Debug, Clone)]
pub struct WormPiece {
    pub key: String,
    /// Its size as HEAD reports it.
    pub head_size: u64,
    pub bytes: Vec<u8>,
}

impl Drill {
    /// The drill target; None (skip) when no server runs; fails loudly when no running server
    /// has one.
    pub fn target() -> Option<Drill> {
        let (server, drill) = crate::store::targets()?
            .into_iter()
            .find_map(|t| t.drill.clone().map(|d| (t, d)))
            .expect(
                "none of the servers of REDOVAULT_TEST_S3_TARGETS has a drill bucket: start \
                 Ceph with deploy/s3/server.sh (deploy/test.sh does)",
            );
        Some(Drill { server, drill })
    }

    /// The server's `host:port`.
    pub fn upstream(&self) -> std::net::SocketAddr {
        let host = self.server.endpoint.host_str().expect("endpoint host");
        let port = self
            .server
            .endpoint
            .port_or_known_default()
            .expect("endpoint port");
        format!("{host}:{port}").parse().expect("an IP endpoint")
    }

    /// The collector's `[worm]` section: pieces to `endpoint` (the server's own, or a proxy
    /// in front of it), sealed to `public_key`, cut every `seal_interval`.
    pub fn worm_section(&self, endpoint: &str, public_key: &Path, seal_interval: &str) -> String {
        format!(
            r#"[worm]
endpoint = "{endpoint}"
bucket = "{bucket}"
prefix = "{prefix}"
ca_file = "{ca}"
region = "{region}"
path_style = true
retention = "bucket-default"
recovery_public_key = "{pk}"
seal_interval = "{seal_interval}"
manifest_entries = 8
"#,
            bucket = self.drill.bucket,
            prefix = self.drill.prefix,
            ca = self.server.ca.display(),
            region = self.server.region,
            pk = public_key.display(),
        )
    }

    /// Starts the collector of `w` with `cfg` and the collector's own S3 keys.
    pub fn start_collector(&self, w: &World, cfg: &Path) -> Proc {
        w.start_collector_env(
            cfg,
            &[
                (
                    "AWS_ACCESS_KEY_ID",
                    self.drill.collector.access_key.as_str(),
                ),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    self.drill.collector.secret_key.as_str(),
                ),
            ],
        )
    }

    /// The verifier's configuration file (its `[store]`: the drill bucket and prefix).
    pub fn verifier_config(&self, w: &World) -> PathBuf {
        let p = w.path("verifier.toml");
        fs::write(
            &p,
            format!(
                "[store]\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"{}\"\nca_file = \"{}\"\nregion = \"{}\"\npath_style = true\nretention = \"bucket-default\"\n",
                self.server.endpoint,
                self.drill.bucket,
                self.drill.prefix,
                self.server.ca.display(),
                self.server.region
            ),
        )
        .unwrap();
        p
    }

    /// Every piece object of `stream` in WORM (HEAD and GET with the verifier's read-only
    /// keys), in key order.
    pub fn pieces(&self, stream: StreamId) -> Vec<WormPiece> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store =
                S3Store::new(self.server.verifier_config(&self.drill.prefix).unwrap()).unwrap();
            let mut list = store
                .list(&format!(
                    "{}/pieces/",
                    piece::stream_prefix(&self.drill.prefix, stream)
                ))
                .await
                .unwrap();
            list.sort_by(|a, b| a.key.cmp(&b.key));
            let mut out = Vec::new();
            for o in list {
                let head = store
                    .head(&o.key, None)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{}: listed, but HEAD finds nothing", o.key));
                let mut r = store.get(&o.key, None, None).await.unwrap();
                let mut bytes = Vec::new();
                r.read_to_end(&mut bytes).await.unwrap();
                out.push(WormPiece {
                    key: o.key,
                    head_size: head.size,
                    bytes,
                });
            }
            out
        })
    }

    /// The last chain index sealed into WORM for `stream` (0: none), from the keys of the
    /// chain segments (`manifest/<first>-<last>-<sha256>.jsonl`).
    pub fn sealed_through(&self, stream: StreamId) -> u64 {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let list = rt.block_on(async {
            let store =
                S3Store::new(self.server.verifier_config(&self.drill.prefix).unwrap()).unwrap();
            store
                .list(&format!(
                    "{}/manifest/",
                    piece::stream_prefix(&self.drill.prefix, stream)
                ))
                .await
                .unwrap()
        });
        list.iter()
            .filter_map(|o| {
                let name = o.key.rsplit('/').next()?;
                name.split('-').nth(1)?.parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    /// Puts a piece beside `entry` of the chain, with the collector's keys: the one a kill
    /// between an upload and its record leaves when the restarted uploader cannot record
    /// it as its own (same index, previous piece and start; only the first of the chunks
    /// of `entry`). Returns its key.
    pub fn plant_orphan(
        &self,
        stream: StreamId,
        key: &RecoveryPrivateKey,
        entry: &PieceEntry,
    ) -> String {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let reader =
                S3Store::new(self.server.verifier_config(&self.drill.prefix).unwrap()).unwrap();
            let mut r = reader.get(&entry.object_key, None, None).await.unwrap();
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes).await.unwrap();
            let (h, chunks) = piece::open(&bytes, key, &entry.object_key).unwrap();
            assert!(chunks.len() >= 2, "{}: one chunk", entry.object_key);
            let orphan =
                piece::seal(stream, h.index, h.prev_piece, &chunks[..1], key.public()).unwrap();
            let k = piece::piece_key(&self.drill.prefix, stream, h.start, &orphan.sha256);
            let writer =
                S3Store::new(self.server.collector_config(&self.drill.prefix).unwrap()).unwrap();
            writer
                .put_immutable(&k, std::io::Cursor::new(orphan.bytes))
                .await
                .unwrap();
            k
        })
    }

    /// With the backup host wiped: `restore online --recovery-key --stream` with the
    /// verifier's read-only keys rebuilds the online log from WORM alone (source "worm"),
    /// up to the journal's last commit and equal to the database's bytes. Returns its
    /// output (the notes about pieces beside the chain are warnings on stderr).
    pub fn restore_online_from_worm(
        &self,
        w: &World,
        team: &RecoveryTeam,
        stream: StreamId,
        journal: &[JournalEntry],
    ) -> String {
        let vcfg = self.verifier_config(w);
        let dest = w.path("restore");
        let stream = stream.to_string();
        let (code, out) = run_with_keys(
            &bins().verifier,
            &[
                "restore",
                "online",
                "--config",
                vcfg.to_str().unwrap(),
                "--recovery-key",
                team.private.to_str().unwrap(),
                // WORM under the drill prefix holds other runs' streams too.
                "--stream",
                &stream,
                "--dest",
                dest.to_str().unwrap(),
            ],
            &self.drill.verifier.access_key,
            &self.drill.verifier.secret_key,
        );
        assert_eq!(code, Some(0), "restore online from WORM: {out}");
        let records: serde_json::Value =
            serde_json::from_slice(&fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
        let record = &records["threads"][0];
        assert_eq!(record["source"], "worm", "{record}");
        assert_eq!(
            record["last_commit_scn"].as_u64(),
            Some(last_commit(journal).scn),
            "{record}"
        );
        let seq = record["sequence"].as_u64().unwrap() as u32;
        let rebuilt = crate::netkit::rebuilt_redo(record);
        let (source, _) = w.source_log(seq);
        assert_eq!(
            rebuilt,
            source[..rebuilt.len()],
            "the online log rebuilt from WORM equals the database's bytes"
        );
        out
    }
}

/// The journal's last commit.
pub fn last_commit(journal: &[JournalEntry]) -> &JournalEntry {
    journal
        .iter()
        .rev()
        .find(|e| !e.rollback)
        .expect("a commit in the journal")
}

/// Stops the database and waits (up to `within`) until the collector's copy in WORM holds
/// the journal's last commit; returns the journal.
pub fn stop_db_and_wait_for_worm(
    w: &World,
    db: LiveDb,
    stream: StreamId,
    within: Duration,
) -> Vec<JournalEntry> {
    db.stop();
    let journal = w.journal();
    let last = last_commit(&journal).scn as f64;
    let (cm, name) = (w.collector_metrics_addr(), stream.to_string());
    wait_until(
        "the journal's last commit in WORM",
        within,
        Duration::from_millis(100),
        || stream_metric(cm, "redovault_collector_worm_scn", &name) == Some(last),
    );
    journal
}

/// The collector's local chain of `stream` (read-only, verified: `index`, `prev`).
pub fn read_chain(store: &Path, stream: StreamId) -> Vec<PieceEntry> {
    read_chain_entries::<PieceEntry>(&chain_dir(store, stream)).expect("the local chain reads")
}

/// What [`check_worm`] found.
#[derive(Debug)]
pub struct WormCheck {
    /// Pieces on the chain.
    pub pieces: usize,
    /// Commits in them.
    pub commits: usize,
    /// Pieces in WORM beside the chain, each with the key of the chain piece it claims
    /// to follow (None: it claims to be the first).
    pub orphans: Vec<(String, Option<String>)>,
}

/// With the collector stopped: its local chain of `stream` is continuous (indexes 1..n,
/// each piece starting where the previous one ended, `prev_piece` = the previous piece's
/// SHA-256); every piece of the chain is in WORM under a key holding its SHA-256, with its
/// size and bytes; opened with the recovery key, the pieces hold exactly the journal's
/// commits (XID and SCN, in order) from the first streamed sequence on, through its last
/// commit; and every other piece of the stream in WORM is an orphan of a crash (it claims
/// the index and start of a chain piece and follows that piece's predecessor).
pub fn check_worm(
    drill: &Drill,
    store: &Path,
    stream: StreamId,
    key: &RecoveryPrivateKey,
    journal: &[JournalEntry],
) -> WormCheck {
    let chain = read_chain(store, stream);
    assert!(!chain.is_empty(), "pieces recorded");
    for (i, e) in chain.iter().enumerate() {
        assert_eq!(e.index, i as u64 + 1, "chain indexes run 1..n");
        assert_eq!(e.stream(), stream);
        match i.checked_sub(1).map(|p| &chain[p]) {
            None => assert_eq!(e.prev_piece, Sha256Digest::ZERO, "piece 1"),
            Some(p) => {
                assert_eq!(
                    e.start(),
                    p.next_start(),
                    "piece {} starts where piece {} ended",
                    e.index,
                    p.index
                );
                assert_eq!(e.prev_piece, p.sha256, "piece {}: prev_piece", e.index);
            }
        }
    }
    let worm: BTreeMap<String, WormPiece> = drill
        .pieces(stream)
        .into_iter()
        .map(|p| (p.key.clone(), p))
        .collect();
    let mut commits: Vec<(String, u64)> = Vec::new();
    for e in &chain {
        let sha = e.sha256.to_string();
        assert!(
            e.object_key.contains(&sha),
            "{}: key names {sha}",
            e.object_key
        );
        let p = worm
            .get(&e.object_key)
            .unwrap_or_else(|| panic!("piece {} ({}) is not in WORM", e.index, e.object_key));
        assert_eq!(p.head_size, e.size, "{}: HEAD size", e.object_key);
        assert_eq!(
            Sha256Digest::of(&p.bytes),
            e.sha256,
            "{}: SHA-256",
            e.object_key
        );
        let (h, chunks) = piece::open(&p.bytes, key, &p.key)
            .unwrap_or_else(|err| panic!("{}: does not open: {err}", e.object_key));
        assert_eq!(
            (h.index, h.start, h.end, h.log_end, h.prev_piece),
            (e.index, e.start(), e.end(), e.log_end, e.prev_piece),
            "{}: header = chain entry",
            e.object_key
        );
        let before = commits.len();
        commits.extend(
            chunks
                .iter()
                .flat_map(|c| &c.commits)
                .map(|m| (m.xid.to_string(), m.scn.0)),
        );
        assert_eq!(
            (commits.len() - before) as u64,
            e.commits,
            "{}: commits",
            e.object_key
        );
    }
    let first_seq = chain[0].start_seq;
    let want: Vec<(String, u64)> = journal
        .iter()
        .filter(|e| !e.rollback && e.sequence >= first_seq)
        .map(|e| (e.xid.clone(), e.scn))
        .collect();
    if commits != want {
        let at = commits
            .iter()
            .zip(&want)
            .position(|(a, b)| a != b)
            .unwrap_or(commits.len().min(want.len()));
        panic!(
            "the commits in WORM differ from the journal's (from log {first_seq}) at index \
             {at}: WORM has {} ({:?}), the journal {} ({:?})",
            commits.len(),
            commits.get(at),
            want.len(),
            want.get(at)
        );
    }
    let on_chain: BTreeSet<&str> = chain.iter().map(|e| e.object_key.as_str()).collect();
    let mut orphans = Vec::new();
    for (k, p) in &worm {
        if on_chain.contains(k.as_str()) {
            continue;
        }
        let h = PieceHeader::decode(&p.bytes, k).unwrap_or_else(|e| panic!("{k}: {e}"));
        let slot = h
            .index
            .checked_sub(1)
            .and_then(|i| chain.get(i as usize))
            .unwrap_or_else(|| panic!("{k}: index {} is not on the chain", h.index));
        let parent = (h.index > 1).then(|| &chain[h.index as usize - 2]);
        assert!(
            h.start == slot.start()
                && h.prev_piece == parent.map_or(Sha256Digest::ZERO, |p| p.sha256)
                && h.key_id == key.public().id(),
            "{k}: beside the chain, and not an orphan of a crash (index {}, start {})",
            h.index,
            h.start
        );
        piece::open(&p.bytes, key, k).unwrap_or_else(|e| panic!("{k}: does not open: {e}"));
        orphans.push((k.clone(), parent.map(|p| p.object_key.clone())));
    }
    WormCheck {
        pieces: chain.len(),
        commits: commits.len(),
        orphans,
    }
}

/// The verifier's `out` reports every orphan: the count of pieces beside the chain, and
/// for each the chain piece it claims to follow (a fork).
pub fn assert_orphans_noted(out: &str, orphans: &[(String, Option<String>)]) {
    if orphans.is_empty() {
        assert!(!out.contains("not on the chain followed"), "{out}");
        return;
    }
    assert!(
        out.contains(&format!(
            "{} piece(s) are not on the chain followed",
            orphans.len()
        )),
        "{out}"
    );
    for (k, parent) in orphans {
        if let Some(parent) = parent {
            assert!(
                out.lines().any(|l| l.contains("warning: worm")
                    && l.contains(parent.as_str())
                    && l.contains("claim to follow it")),
                "the orphan {k}: its fork at {parent} is noted: {out}"
            );
        }
    }
}
