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
//!
//! It runs compressed (issue 19): zstd on the link, in the segments and in the pieces.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::netkit::{LiveDb, World, init_logs, stream_metric, wait_until};
use crate::worm::{Drill, RecoveryTeam, last_commit, own_stream};

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
    let Some(drill) = Drill::target() else {
        return;
    };
    // Compressed (issue 19): zstd on the link, in the segments and in the pieces, which both
    // readers give back as the database's bytes.
    let mut w = World::new(3);
    w.compress = true;
    let team = RecoveryTeam::new(&w);
    let worm = drill.worm_section(drill.server.endpoint.as_str(), &team.public, "500ms");
    let ccfg = w.collector_config(&worm);
    let ecfg = w.extractor_config(w.port, "");
    let collector = drill.start_collector(&w, &ccfg);
    let mut sim = w.sim_config(256 << 10, 256 << 10);
    let (sid, stream) = own_stream(&mut sim);
    let db = LiveDb::start(sim);
    let extractor = w.start_extractor(&ecfg);
    std::thread::sleep(Duration::from_secs(5));
    let summary = db.stop();
    assert!(summary.switches >= 3, "several log switches: {summary:?}");
    let journal = w.journal();
    let last = last_commit(&journal).clone();
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
    drill.restore_online_from_worm(&w, &team, sid, &journal);

    // Every piece, opened by an independent HPKE implementation.
    let pieces = w.path("pieces");
    fs::create_dir_all(&pieces).unwrap();
    let files: Vec<PathBuf> = drill
        .pieces(sid)
        .into_iter()
        .map(|p| {
            let f = pieces.join(p.key.rsplit('/').next().unwrap());
            fs::write(&f, p.bytes).unwrap();
            f
        })
        .collect();
    assert!(files.len() >= 4, "{} pieces", files.len());
    let redo = w.path("redo");
    let out = Command::new(interop_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/open_piece.py"))
        .arg("--key")
        .arg(&team.private)
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
