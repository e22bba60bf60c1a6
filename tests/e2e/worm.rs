//! What the tests of the collector's `[worm]` uploader share, on the real Ceph server with
//! the drill bucket and the deploy/ policy: the recovery team's key pair, the `[worm]`
//! section, the collector started with its own put-only keys, WORM read back with the
//! verifier's read-only keys, and `restore online` from WORM alone.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::simulate::SimConfig;
use redovault::simulate::journal::JournalEntry;
use redovault::store::ArchiveStore as _;
use redovault::store::s3::S3Store;
use redovault::store::s3::testserver::{DrillBucket, TestServer};
use redovault::wire::StreamId;
use redovault_collector::piece;
use redovault_redo::position::ThreadId;
use tokio::io::AsyncReadExt as _;

use crate::netkit::{Proc, World, bins, run_with_keys};

/// A server of `REDOVAULT_TEST_S3_TARGETS` with the drill bucket (its policy from deploy/,
/// and the collector's, the verifier's and the database host's keys).
pub struct Drill {
    /// The server.
    pub server: TestServer,
    /// Its drill bucket.
    pub drill: DrillBucket,
}

/// The recovery team's key pair: the private half never goes near the collector.
pub struct RecoveryTeam {
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
        RecoveryTeam { private, public }
    }
}

/// A database id of its own for `sim`: pieces of earlier runs on the same server stay in
/// other streams.
pub fn own_db_id(sim: &mut SimConfig) {
    sim.db_id = rand::random::<u32>() | 1;
}

/// The stream of thread 1 of `sim`.
pub fn stream_id(sim: &SimConfig) -> StreamId {
    StreamId {
        db_id: sim.db_id,
        resetlogs_id: sim.resetlogs_id(),
        thread: ThreadId(1),
    }
}

/// One piece object of a stream as WORM holds it.
#[derive(Debug, Clone)]
pub struct WormPiece {
    /// Its key.
    pub key: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Drill {
    /// The drill target; fails loudly when no server has one.
    pub fn target() -> Drill {
        let (server, drill) = crate::store::targets()
            .into_iter()
            .find_map(|t| t.drill.clone().map(|d| (t, d)))
            .expect(
                "none of the servers of REDOVAULT_TEST_S3_TARGETS has a drill bucket: start \
                 Ceph with deploy/s3/server.sh (deploy/test.sh does)",
            );
        Drill { server, drill }
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

    /// Every piece object of `stream` in WORM (GET with the verifier's read-only keys), in
    /// key order.
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
                let mut r = store.get(&o.key, None, None).await.unwrap();
                let mut bytes = Vec::new();
                r.read_to_end(&mut bytes).await.unwrap();
                out.push(WormPiece { key: o.key, bytes });
            }
            out
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
        let record: serde_json::Value =
            serde_json::from_slice(&fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
        assert_eq!(record["source"], "worm", "{record}");
        assert_eq!(
            record["last_commit_scn"].as_u64(),
            Some(last_commit(journal).scn),
            "{record}"
        );
        let seq = record["sequence"].as_u64().unwrap() as u32;
        let rebuilt = fs::read(record["path"].as_str().unwrap()).unwrap();
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
