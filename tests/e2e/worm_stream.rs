//! The collector's second home, end to end on the real Ceph server with the deploy/ bucket
//! policy and the collector's own put-only keys: a live simulated database streams through
//! the extractor to a collector with `[worm]`; every acknowledged commit reaches WORM as
//! pieces sealed to a recovery key made for the test. Then the backup host is wiped
//! (kill -9, its store and key ring removed) and:
//! - `restore online --recovery-key` rebuilds the online log from WORM alone, equal to the
//!   database's bytes up to the last commit, and says it used WORM;
//! - an independent HPKE implementation (Python, pyhpke: `tests/interop/open_piece.py`)
//!   opens every piece with the private key, and the redo it gets back equals the
//!   database's bytes at each piece's range.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use redovault::crypto::recovery::RecoveryPrivateKey;
use redovault::store::ArchiveStore as _;
use redovault::store::s3::S3Store;
use redovault::store::s3::testserver::{DrillBucket, TestServer};
use tokio::io::AsyncReadExt as _;

use crate::netkit::{
    LiveDb, Proc, World, bins, init_logs, run_with_keys, stream_metric, wait_until,
};

fn drill_target() -> (TestServer, DrillBucket) {
    crate::store::targets()
        .into_iter()
        .find_map(|t| t.drill.clone().map(|d| (t, d)))
        .expect(
            "none of the servers of REDOVAULT_TEST_S3_TARGETS has a drill bucket: start Ceph \
             with deploy/s3/server.sh (deploy/test.sh does)",
        )
}

/// The Python of the independent reader's venv (`deploy/interop-venv.sh`).
fn interop_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var("REDOVAULT_INTEROP_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".ci/state/venv-interop"));
    let out = Command::new("bash")
        .arg(root.join("deploy/interop-venv.sh"))
        .arg(&venv)
        .output()
        .expect("run deploy/interop-venv.sh");
    assert!(
        out.status.success(),
        "deploy/interop-venv.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().expect("the venv's python").trim())
}

#[test]
fn every_commit_reaches_worm_and_the_online_log_comes_back_from_worm_alone() {
    init_logs();
    let (server, drill) = drill_target();
    let w = World::new(3);
    // The recovery team's key pair: the private half never goes near the collector.
    let team = w.path("recovery-team");
    fs::create_dir_all(&team).unwrap();
    let sk = RecoveryPrivateKey::generate();
    let sk_path = team.join("recovery.key");
    fs::write(&sk_path, sk.to_pem().as_bytes()).unwrap();
    fs::set_permissions(&sk_path, fs::Permissions::from_mode(0o600)).unwrap();
    let pk_path = w.path("recovery.pub");
    fs::write(&pk_path, sk.public().to_pem()).unwrap();

    let worm = format!(
        r#"[worm]
endpoint = "{endpoint}"
bucket = "{bucket}"
prefix = "{prefix}"
ca_file = "{ca}"
region = "{region}"
path_style = true
retention = "bucket-default"
recovery_public_key = "{pk}"
seal_interval = "500ms"
manifest_entries = 8
"#,
        endpoint = server.endpoint,
        bucket = drill.bucket,
        prefix = drill.prefix,
        ca = server.ca.display(),
        region = server.region,
        pk = pk_path.display(),
    );
    let ccfg = w.collector_config(&worm);
    let ecfg = w.extractor_config(w.port, "");
    let collector = Proc::spawn_env(
        "collector",
        &bins().collector,
        &["--config", ccfg.to_str().unwrap()],
        &[
            ("AWS_ACCESS_KEY_ID", drill.collector.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", drill.collector.secret_key.as_str()),
        ],
        &w.path("collector.log"),
    );
    // A database id of its own: pieces of earlier runs on this server stay in other streams.
    let mut sim = w.sim_config(256 << 10, 256 << 10);
    sim.db_id = rand::random::<u32>() | 1;
    let stream = w.stream(&sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(5));
    let summary = db.stop();
    assert!(summary.switches >= 3, "several log switches: {summary:?}");
    let journal = w.journal();
    let last = journal
        .iter()
        .rev()
        .find(|e| !e.rollback)
        .expect("commits")
        .clone();
    let cm = w.collector_metrics_addr();
    wait_until(
        "the journal's last commit in WORM",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || stream_metric(cm, "redovault_collector_worm_scn", &stream) == Some(last.scn as f64),
    );
    assert_eq!(
        stream_metric(cm, "redovault_collector_worm_conflicts_total", &stream),
        None,
        "no conflict"
    );
    assert!(
        stream_metric(cm, "redovault_collector_worm_pieces_total", &stream).unwrap_or(0.0) >= 4.0
    );
    // The wiper reaches the backup host: the collector dies, its store and key ring go.
    collector.kill9();
    extractor.kill9();
    fs::remove_dir_all(&w.store).unwrap();
    fs::remove_file(&w.keys).unwrap();

    // Recovery from WORM and the offline key only, with the verifier's read-only keys.
    let vcfg = w.path("verifier.toml");
    fs::write(
        &vcfg,
        format!(
            "[store]\nendpoint = \"{}\"\nbucket = \"{}\"\nprefix = \"{}\"\nca_file = \"{}\"\nregion = \"{}\"\npath_style = true\nretention = \"bucket-default\"\n",
            server.endpoint,
            drill.bucket,
            drill.prefix,
            server.ca.display(),
            server.region
        ),
    )
    .unwrap();
    let dest = w.path("restore");
    // WORM under the drill prefix holds other runs' streams too: this one by name.
    let (code, out) = run_with_keys(
        &bins().verifier,
        &[
            "restore",
            "online",
            "--config",
            vcfg.to_str().unwrap(),
            "--recovery-key",
            sk_path.to_str().unwrap(),
            "--stream",
            &stream,
            "--dest",
            dest.to_str().unwrap(),
        ],
        &drill.verifier.access_key,
        &drill.verifier.secret_key,
    );
    assert_eq!(code, Some(0), "restore online from WORM: {out}");
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
    assert_eq!(record["source"], "worm", "{record}");
    assert_eq!(
        record["last_commit_scn"].as_u64(),
        Some(last.scn),
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

    // Every piece, opened by an independent HPKE implementation.
    let pieces = w.path("pieces");
    fs::create_dir_all(&pieces).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = rt.block_on(async {
        let store = S3Store::new(server.verifier_config(&drill.prefix).unwrap()).unwrap();
        let mut list = store
            .list(&format!("{}/streams/{stream}/pieces/", drill.prefix))
            .await
            .unwrap();
        list.sort_by(|a, b| a.key.cmp(&b.key));
        let mut files = Vec::new();
        for o in list {
            let mut r = store.get(&o.key, None, None).await.unwrap();
            let mut b = Vec::new();
            r.read_to_end(&mut b).await.unwrap();
            let f = pieces.join(o.key.rsplit('/').next().unwrap());
            fs::write(&f, b).unwrap();
            files.push(f);
        }
        files
    });
    assert!(files.len() >= 4, "{} pieces", files.len());
    let redo = w.path("redo");
    let out = Command::new(interop_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/open_piece.py"))
        .arg("--key")
        .arg(&sk_path)
        .args(&files)
        .arg("--redo-out")
        .arg(&redo)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "open_piece.py: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), files.len());
    let mut compared = 0;
    for e in fs::read_dir(&redo).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let seq: u32 = name.strip_suffix(".redo").unwrap().parse().unwrap();
        let got = fs::read(e.path()).unwrap();
        let (want, archived) = w.source_log(seq);
        // An archived copy's blocks 0 and 1 were rewritten at the switch, after the
        // extractor read them: compare from block 2 (512-byte blocks here) on.
        let from = if archived { 1024 } else { 0 };
        assert!(got.len() <= want.len(), "log {seq}");
        assert_eq!(
            got[from..],
            want[from..got.len()],
            "log {seq}: pieces = the database's bytes"
        );
        compared += 1;
    }
    assert!(compared >= 3, "{compared} logs compared");
}
