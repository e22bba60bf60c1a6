//! The attack drill (`redovault drill`), end to end with the real programs: the simulated
//! database with five bank tables and a background workload; the watcher, the extractor, the
//! collector and the verifier running against the real S3 server over TLS with the three sets
//! of keys of a deployment (the database host's put-only keys, the verifier's read-only keys,
//! the bucket policy of `deploy/s3/policies/`); the attack (crash, kill -9, dd, rm -rf, and
//! attempts on WORM with the host's keys); recovery from nothing; the referee's checks. And the
//! hard case (`--wipe-backup-host`): the backup host wiped at the crash, recovery from WORM and
//! the offline recovery key only, RPO within one seal interval plus the upload in flight; and
//! with two collectors (`--collectors 2`), the wipe of one backup host: RPO 0 from the survivor.
//! Run with `--nocapture` by `deploy/test.sh`, so that CI prints the drill, RPO and RTO.

use std::path::PathBuf;
use std::process::Command;

use crate::netkit::bins;

/// The `env.sh` of the first test server with a drill bucket; None (skip) when no server runs.
/// Fails when none of the running ones has one: the drill is not optional.
fn drill_env() -> Option<PathBuf> {
    crate::store::targets()?;
    let list = std::env::var(redovault_drill::servers::S3_TARGETS_ENV).unwrap_or_default();
    let env = list
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .find(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .contains("REDOVAULT_TEST_S3_DRILL_BUCKET")
        })
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("no test server in {list} has a drill bucket (deploy/s3/server.sh up ceph)")
        });
    Some(env)
}

fn drill(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(&bins().redovault)
        .arg("drill")
        .args(args)
        .arg("--json")
        .output()
        .expect("run redovault drill");
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("drill report JSON: {e}\n{progress}"));
    (out.status.code().unwrap_or(-1), report, progress)
}

fn print_summary(report: &serde_json::Value) {
    for c in report["checks"].as_array().unwrap() {
        eprintln!(
            "  {} {:<40} {}",
            if c["ok"].as_bool() == Some(true) {
                "ok  "
            } else {
                "FAIL"
            },
            c["name"].as_str().unwrap(),
            c["detail"].as_str().unwrap()
        );
    }
    eprintln!(
        "drill verdict: {}   RPO = {} commits lost ({} s)   RTO = {:.2} s   online log from {}   ({} commits, {} archived logs, {})",
        if report["pass"].as_bool() == Some(true) {
            "PASS"
        } else {
            "FAIL"
        },
        report["rpo_commits"],
        report["rpo_seconds"],
        report["rto_seconds"].as_f64().unwrap_or(-1.0),
        report["online_source"].as_str().unwrap_or("?"),
        report["commits"],
        report["archived_logs"],
        report["store"].as_str().unwrap_or("")
    );
}

/// What the drill restored from WORM: (from sealed manifests, shipped but not yet sealed).
fn archived_sources(report: &serde_json::Value) -> (u64, u64) {
    (
        report["archived_from_sealed_manifest"].as_u64().unwrap(),
        report["archived_shipped_not_sealed"].as_u64().unwrap(),
    )
}

/// The bound of `--wipe-backup-host`: the collector's seal interval in the drill (1 s) plus 2 s
/// for the upload in flight.
const WIPED_RPO_BOUND_SECONDS: f64 = 3.0;

/// `wiped`: backup host 1 was wiped at the crash; `survivor`: another collector survived.
fn check_report(
    code: i32,
    report: &serde_json::Value,
    progress: &str,
    wiped: bool,
    survivor: bool,
) {
    assert_eq!(code, 0, "the drill failed:\n{progress}");
    assert_eq!(report["pass"].as_bool(), Some(true));
    assert_eq!(report["wipe_backup_host"].as_bool(), Some(wiped));
    if !wiped || survivor {
        assert_eq!(report["rpo_commits"].as_u64(), Some(0), "RPO = 0 commits");
        assert_eq!(report["rpo_seconds"].as_f64(), Some(0.0));
    }
    assert!(report["rto_seconds"].as_f64().unwrap() > 0.0);
    // The time budget: every recovery step timed, and they add up to the RTO.
    let steps = report["recovery"].as_array().unwrap();
    for want in [
        "verify",
        "restore archive",
        "restore online",
        "restore script",
    ] {
        assert!(
            steps.iter().any(|s| s["step"] == want),
            "step {want} timed: {steps:?}"
        );
    }
    let sum: f64 = steps.iter().map(|s| s["seconds"].as_f64().unwrap()).sum();
    assert!(sum <= report["rto_seconds"].as_f64().unwrap() + 0.01);
    // The order never downloads a log twice: verify by HEAD, restore archive re-hashes.
    let verify = steps.iter().find(|s| s["step"] == "verify").unwrap();
    assert!(
        !verify["detail"].as_str().unwrap().contains("deep"),
        "{verify}"
    );
    assert!(report["commits"].as_u64().unwrap() > 100, "a real workload");
    assert!(
        report["archived_logs"].as_u64().unwrap() >= 4,
        "several log switches"
    );
    let checks = report["checks"].as_array().unwrap();
    let mut names = vec![
        "archived logs byte-identical",
        "online log prefix identical",
        "commits recovered = journal",
        "rebuilt online log commits = journal",
        "per-table row counts equal",
        "paper tables: >= 10 transactions each",
        "audit of WORM, manifest and collector",
    ];
    if wiped && !survivor {
        names.extend([
            "RPO within one seal interval plus the upload in flight",
            "online log source = worm",
        ]);
    } else {
        names.push("RPO = 0");
    }
    if wiped && survivor {
        names.push("online log from a surviving collector");
    }
    for name in names {
        let c = checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("check {name} missing"));
        assert_eq!(c["ok"].as_bool(), Some(true), "{name}: {}", c["detail"]);
    }
    let tables = report["tables"].as_array().unwrap();
    let paper: Vec<_> = tables.iter().filter(|t| t["paper"] == true).collect();
    assert_eq!(paper.len(), 5, "the paper's five tables");
    for t in &paper {
        // With the backup host wiped, "journal" is the journal up to the last recovered commit.
        assert!(t["journal"]["transactions"].as_u64().unwrap() >= 10);
        assert_eq!(t["journal"], t["recovered"], "{}", t["table"]);
    }
    // The host was wiped: the attack removed the archive, the online logs, state, config.
    let dir = PathBuf::from(report["dir"].as_str().unwrap());
    assert!(!dir.join("host").exists(), "the database host is gone");
    let attack = report["attack"].as_array().unwrap();
    assert!(
        attack
            .iter()
            .any(|a| a["action"].as_str().unwrap().starts_with("dd if=/dev/zero"))
    );
}

#[test]
fn the_drill_on_real_s3_over_tls_recovers_every_commit_and_the_host_keys_cannot_touch_worm() {
    let Some(env) = drill_env() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let (code, report, progress) = drill(&[
        "--dir",
        dir.to_str().unwrap(),
        "--s3-env",
        env.to_str().unwrap(),
        "--run-for",
        "10s",
    ]);
    eprintln!("{progress}");
    print_summary(&report);
    check_report(code, &report, &progress, false, false);
    assert!(report["store"].as_str().unwrap().starts_with("s3 https://"));
    // The production seal interval (10 minutes, the default): the drill is shorter, so no
    // manifest was sealed and every archived log came back from WORM by its headers and
    // SHA-256 key, byte-identical, with RPO 0.
    assert_eq!(report["seal_interval_seconds"].as_f64(), Some(600.0));
    let (sealed, unsealed) = archived_sources(&report);
    assert!(unsealed > 0, "{report}");
    assert_eq!(
        sealed + unsealed,
        report["archived_logs"].as_u64().unwrap(),
        "every archived log from WORM"
    );
    // Every attempt on WORM with the database host's keys left the objects as they were:
    // delete, delete a version (with and without the governance bypass), shorten the
    // retention, weaken the lock, overwrite; on an archived log (no manifest segment is
    // sealed yet at this seal interval: the wiped case attacks one).
    let attempts: Vec<&serde_json::Value> = report["attack"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| !a["refused"].is_null())
        .collect();
    assert!(attempts.len() >= 6, "{attempts:?}");
    for a in &attempts {
        assert_eq!(a["refused"].as_bool(), Some(true), "{a}");
    }
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "WORM attempts refused")
        .unwrap();
    assert_eq!(check["ok"].as_bool(), Some(true));
}

#[test]
fn the_drill_on_the_local_store_passes_as_the_readme_first_command_runs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let (code, report, progress) =
        drill(&["--dir", dir.to_str().unwrap(), "--local", "--run-for", "5s"]);
    print_summary(&report);
    check_report(code, &report, &progress, false, false);
    assert!(
        report["store"]
            .as_str()
            .unwrap()
            .starts_with("local directory")
    );
    assert!(
        archived_sources(&report).1 > 0,
        "shipped but not yet sealed"
    );
    assert!(progress.contains("total (RTO)"), "{progress}");
    assert!(
        progress.contains("==> [5/5]"),
        "progress is shown:\n{progress}"
    );
}

#[test]
fn the_drill_with_the_backup_host_wiped_at_the_crash_recovers_from_worm_within_one_seal_interval() {
    let Some(env) = drill_env() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let (code, report, progress) = drill(&[
        "--dir",
        dir.to_str().unwrap(),
        "--s3-env",
        env.to_str().unwrap(),
        "--run-for",
        "10s",
        "--wipe-backup-host",
        // Sealed every second: this case covers the sealed manifest (and its segment is
        // attacked); the other two run at the production interval.
        "--seal-interval",
        "1s",
    ]);
    eprintln!("{progress}");
    print_summary(&report);
    check_report(code, &report, &progress, true, false);
    assert!(report["store"].as_str().unwrap().starts_with("s3 https://"));
    assert!(archived_sources(&report).0 > 0, "sealed manifests used");
    // The online log came from the pieces in WORM, opened with the offline recovery key.
    assert_eq!(report["online_source"].as_str(), Some("worm"), "{report}");
    let rpo = report["rpo_seconds"].as_f64().unwrap();
    assert!(
        (0.0..=WIPED_RPO_BOUND_SECONDS).contains(&rpo),
        "RPO {rpo} s, bound {WIPED_RPO_BOUND_SECONDS} s"
    );
    // Both hosts are gone; the recovery team's key, outside every host, is not.
    assert!(!dir.join("backup-host").exists(), "the backup host is gone");
    assert!(dir.join("recovery-team/recovery.key").is_file());
    let attack = report["attack"].as_array().unwrap();
    assert!(
        attack[0]["action"]
            .as_str()
            .unwrap()
            .starts_with("at the crash: kill -9 of the collector"),
        "{attack:?}"
    );
    assert!(
        attack[1]["action"]
            .as_str()
            .unwrap()
            .contains("backup-host")
    );
    // The attempts on WORM with the database host's keys were refused here too.
    let attempts: Vec<&serde_json::Value> =
        attack.iter().filter(|a| !a["refused"].is_null()).collect();
    assert!(attempts.len() >= 12, "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a["refused"].as_bool() == Some(true))
    );
}

#[test]
fn the_drill_with_two_collectors_and_one_backup_host_wiped_recovers_every_commit_from_the_survivor()
{
    let Some(env) = drill_env() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let (code, report, progress) = drill(&[
        "--dir",
        dir.to_str().unwrap(),
        "--s3-env",
        env.to_str().unwrap(),
        "--run-for",
        "10s",
        "--collectors",
        "2",
        "--wipe-backup-host",
    ]);
    eprintln!("{progress}");
    print_summary(&report);
    check_report(code, &report, &progress, true, true);
    assert_eq!(report["collectors"].as_u64(), Some(2));
    // Every commit, from the collector that survived: with ack = "majority" of two, both
    // held every acknowledged commit, and the wiper reached only one of them.
    assert_eq!(
        report["online_source"].as_str(),
        Some("collector"),
        "{report}"
    );
    assert!(!dir.join("backup-host").exists(), "backup host 1 is gone");
    assert!(
        dir.join("backup-host-2/store").is_dir(),
        "backup host 2 stands"
    );
    assert!(
        progress.contains("the extractor ships to all 2 with ack = \"majority\""),
        "{progress}"
    );
}

#[test]
fn the_drill_with_two_redo_threads_recovers_every_commit_of_each_and_the_script_names_both_online_logs()
 {
    let Some(env) = drill_env() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let (code, report, progress) = drill(&[
        "--dir",
        dir.to_str().unwrap(),
        "--s3-env",
        env.to_str().unwrap(),
        "--run-for",
        "8s",
        "--threads",
        "2",
    ]);
    eprintln!("{progress}");
    print_summary(&report);
    assert_eq!(code, 0, "the drill failed:\n{progress}");
    assert_eq!(report["pass"].as_bool(), Some(true));
    assert_eq!(report["threads"].as_u64(), Some(2));
    assert!(report["store"].as_str().unwrap().starts_with("s3 https://"));
    // One extractor per instance's thread, as deployed: each with its own log.
    assert!(progress.contains("one extractor per thread"), "{progress}");
    for t in [1, 2] {
        assert!(
            dir.join(format!("logs/extractor-t{t}.log")).is_file(),
            "the extractor of thread {t} ran"
        );
    }
    // RPO 0 per thread: every commit of each thread recovered, in order, to its last.
    assert_eq!(report["rpo_commits"].as_u64(), Some(0), "{report}");
    let per = report["per_thread"].as_array().unwrap();
    assert_eq!(per.len(), 2, "{report}");
    for (p, t) in per.iter().zip([1u64, 2]) {
        assert_eq!(p["thread"].as_u64(), Some(t), "{p}");
        assert_eq!(p["rpo_commits"].as_u64(), Some(0), "{p}");
        assert!(
            p["commits"].as_u64().unwrap() > 20,
            "a real workload on each thread: {p}"
        );
        assert_eq!(p["recovered_last_commit"], p["last_commit"], "{p}");
    }
    let checks = report["checks"].as_array().unwrap();
    let ok = |name: &str| {
        let c = checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("check {name} missing"));
        assert_eq!(c["ok"].as_bool(), Some(true), "{name}: {}", c["detail"]);
    };
    for t in [1, 2] {
        for base in [
            "archived logs byte-identical",
            "online log prefix identical",
            "commits recovered = journal",
            "rebuilt online log commits = journal",
            "recovered redo parses cleanly",
        ] {
            ok(&format!("{base} (thread {t})"));
        }
    }
    for name in [
        "RPO = 0",
        "recovery script names every online log",
        "per-table row counts equal",
        "WORM attempts refused",
        "audit of WORM, manifest and collector",
    ] {
        ok(name);
    }
    // `restore online` rebuilt and recorded both threads in one run; the script applies both
    // rebuilt logs, by name, and says per thread which last commit it recovers.
    let restore = dir.join("recovery/restore");
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(restore.join("restore-online.json")).unwrap())
            .unwrap();
    let threads = records["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "{records}");
    let sql = std::fs::read_to_string(restore.join("recover.sql")).unwrap();
    for (r, t) in threads.iter().zip([1u64, 2]) {
        assert_eq!(r["thread"].as_u64(), Some(t), "{r}");
        let path = r["path"].as_str().unwrap();
        assert!(
            path.contains(&format!("online_{t}_")),
            "distinct file per thread: {path}"
        );
        assert!(
            sql.contains(&format!("ALTER DATABASE RECOVER LOGFILE '{path}';")),
            "recover.sql applies thread {t}'s online log {path}:\n{sql}"
        );
        assert!(sql.contains(&format!("--   thread {t}: to ")), "{sql}");
    }
    let step = report["recovery"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "restore script")
        .unwrap();
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("thread 1: to ") && detail.contains("thread 2: to "),
        "{detail}"
    );
}

#[test]
fn the_drill_with_two_databases_attacked_at_the_same_moment_recovers_every_commit_of_each() {
    let Some(env) = drill_env() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let (code, fleet, progress) = drill(&[
        "--dir",
        dir.to_str().unwrap(),
        "--s3-env",
        env.to_str().unwrap(),
        "--run-for",
        "8s",
        "--rate",
        "512K",
        "--databases",
        "2",
    ]);
    eprintln!("{progress}");
    assert_eq!(code, 0, "the fleet's drill failed:\n{progress}");
    assert_eq!(fleet["pass"].as_bool(), Some(true), "{fleet}");
    assert_eq!(fleet["databases"].as_u64(), Some(2));
    assert_eq!(
        fleet["rpo_commits"].as_u64(),
        Some(0),
        "RPO 0 over the fleet"
    );
    assert!(dir.join("fleet-report.json").is_file());
    let members = fleet["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let mut stores = Vec::new();
    let mut crashes = Vec::new();
    for (m, i) in members.iter().zip(1..) {
        assert_eq!(m["name"].as_str(), Some(format!("db{i}").as_str()));
        assert!(m["error"].is_null(), "{m}");
        let report = &m["report"];
        print_summary(report);
        // Each database passes the single database's drill, RPO 0 included.
        check_report(code, report, &progress, false, false);
        // Half of the asked rate each.
        assert_eq!(report["rate_bytes_per_second"].as_u64(), Some(256 << 10));
        assert!(dir.join(format!("db{i}/drill-report.json")).is_file());
        stores.push(report["store"].as_str().unwrap().to_string());
        crashes.push(report["crashed_at_unix"].as_f64().unwrap());
        assert!(
            progress.contains(&format!("[db{i}] ==> [5/5]")),
            "{progress}"
        );
    }
    // One WORM store, a run prefix of each database's own.
    assert!(stores.iter().all(|s| s.starts_with("s3 https://")));
    assert_ne!(stores[0], stores[1]);
    // Attacked at the same moment: one barrier releases both, and each database stops at
    // its next LGWR write (milliseconds at this rate).
    let spread = (crashes[0] - crashes[1]).abs();
    assert!(spread < 2.0, "the crashes {spread:.3} s apart");
    assert_eq!(
        fleet["commits"].as_u64().unwrap(),
        members
            .iter()
            .map(|m| m["report"]["commits"].as_u64().unwrap())
            .sum::<u64>()
    );
}
