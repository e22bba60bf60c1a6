//! `redovault-verifier recover`: the drill's recovery as one resumable workflow. After a
//! local drill, the recovery host is wiped and `recover` runs from nothing with the drill's
//! verifier configuration: stopped after a step, failed at a step (no recovery key), then
//! re-run to the end, it resumes each time where it stopped and gives back exactly what the
//! drill's own recovery gave (the same archived logs, the same online log to the same last
//! commit, the same scripts), with its report and its history entry.

use std::path::Path;
use std::process::Command;

use crate::netkit::bins;

fn recover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(&bins().verifier)
        .arg("recover")
        .args(args)
        .output()
        .expect("run redovault-verifier recover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

/// The script with its destination and generation time taken out.
fn script(p: &Path, dest: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap()
        .replace(dest.to_str().unwrap(), "DEST")
        .lines()
        .filter(|l| !l.contains("redovault recovery script, generated"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn recover_after_a_wipe_resumes_where_it_stopped_and_reproduces_the_drills_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("drill");
    let out = Command::new(&bins().redovault)
        .args(["drill", "--local", "--run-for", "3s", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "drill: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The recovery host is wiped: only its configuration is rewritten; the drill's own
    // restore is kept aside to compare.
    let drill_dest = tmp.path().join("drill-restore");
    std::fs::rename(dir.join("recovery/restore"), &drill_dest).unwrap();
    std::fs::remove_dir_all(dir.join("recovery/state")).unwrap();
    let cfg = dir.join("recovery/verifier.toml");
    let key = dir.join("recovery-team/recovery.key");
    let dest = tmp.path().join("restore");
    let history = tmp.path().join("history");
    let (cfg_s, key_s) = (cfg.to_str().unwrap(), key.to_str().unwrap());
    let (dest_s, hist_s) = (dest.to_str().unwrap(), history.to_str().unwrap());
    let common = [
        "--config",
        cfg_s,
        "--dest",
        dest_s,
        "--rto-target",
        "10m",
        "--history",
        hist_s,
    ];

    // 1. Stopped after the archived logs: exit 3, two steps recorded.
    let mut args = common.to_vec();
    args.extend(["--recovery-key", key_s, "--stop-after", "restore-archive"]);
    let (code, stdout, stderr) = recover(&args);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    assert!(stderr.contains("[2/4] restore-archive: done"), "{stderr}");
    assert!(stdout.contains("verdict: INCOMPLETE"), "{stdout}");
    let state = json(&dest.join("recover-state.json"));
    assert_eq!(state["steps"].as_array().unwrap().len(), 2, "{state}");
    assert!(!dest.join("restore-online.json").exists());

    // 2. The recovery key is missing: the online log step fails, the done steps are skipped.
    let mut args = common.to_vec();
    let missing = tmp.path().join("no-such.key");
    args.extend(["--recovery-key", missing.to_str().unwrap()]);
    let (code, stdout, stderr) = recover(&args);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("[1/4] verify: done in run 1"), "{stderr}");
    assert!(
        stderr.contains("[2/4] restore-archive: done in run 1"),
        "{stderr}"
    );
    assert!(stderr.contains("[3/4] restore-online: FAILED"), "{stderr}");
    assert!(
        stderr.contains("no-such.key"),
        "the step's error is shown: {stderr}"
    );
    assert!(stderr.contains("resumes at restore-online"), "{stderr}");

    // 3. With the key: it resumes at the online log and finishes.
    let mut args = common.to_vec();
    args.extend(["--recovery-key", key_s, "--json"]);
    let (code, stdout, stderr) = recover(&args);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("[3/4] restore-online ..."), "{stderr}");
    assert!(
        !stderr.contains("[2/4] restore-archive ..."),
        "not redone: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["pass"], true, "{report}");
    assert_eq!(report["runs"], 3, "{report}");
    assert_eq!(report["rto_met"], true, "{report}");
    assert_eq!(report["verify_verdict"], "clean", "{report}");
    let steps = report["steps"].as_array().unwrap();
    let runs: Vec<u64> = steps.iter().map(|s| s["run"].as_u64().unwrap()).collect();
    assert_eq!(runs, [1, 1, 3, 3], "{report}");
    // The RTO counts every run's step time, the failed attempt's too.
    let step_sum: f64 = steps.iter().map(|s| s["seconds"].as_f64().unwrap()).sum();
    assert!(
        report["rto_seconds"].as_f64().unwrap() >= step_sum,
        "{report}"
    );
    assert!(
        report["oracle_commands"][0]
            .as_str()
            .unwrap()
            .starts_with("rman target / cmdfile="),
        "{report}"
    );
    assert_eq!(json(&dest.join("recover-report.json")), report);
    let page = std::fs::read_to_string(dest.join("recover-report.html")).unwrap();
    assert!(
        page.contains("PASS") && page.contains("restore-online"),
        "{page}"
    );
    // One history entry for the one recovery, however many runs it took.
    let entries: Vec<_> = std::fs::read_dir(&history)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries.iter().any(|e| e.ends_with(".json"))
            && entries.iter().any(|e| e.ends_with(".html"))
    );

    // What the drill's recovery gave, exactly.
    let ours = json(&dest.join("restore-online.json"));
    let theirs = json(&drill_dest.join("restore-online.json"));
    for k in [
        "last_commit_scn",
        "last_commit_xid",
        "sha256",
        "size",
        "sequence",
        "thread",
    ] {
        assert_eq!(
            ours["threads"][0][k], theirs["threads"][0][k],
            "{k}: {ours} vs {theirs}"
        );
    }
    let logs = |v: serde_json::Value| -> Vec<(u64, String)> {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["sequence"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let archived = logs(json(&dest.join("restore-archive.json")));
    assert!(!archived.is_empty());
    assert_eq!(
        archived,
        logs(json(&drill_dest.join("restore-archive.json")))
    );
    assert_eq!(
        report["archived_logs"].as_u64(),
        Some(archived.len() as u64)
    );
    for s in ["recover.rman", "recover.sql"] {
        assert_eq!(
            script(&dest.join(s), &dest),
            // (written before it was moved aside: it names the drill's restore directory)
            script(&drill_dest.join(s), &dir.join("recovery/restore")),
            "{s}"
        );
    }

    // A fourth run has nothing left to do and says so.
    let (code, _, stderr) = recover(&args);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(" ..."), "nothing re-run: {stderr}");

    // The DR console lists the drill and the recovery, each against the database's targets
    // (an RTO target of 1 s, the shortest it takes: met or exceeded as each run's RTO says).
    let db_id = ours["threads"][0]["stream"]
        .as_str()
        .and_then(|s| s.strip_prefix("db"))
        .and_then(|s| s.split('-').next())
        .unwrap()
        .to_string();
    let port = crate::netkit::free_port();
    let console_cfg = tmp.path().join("console.toml");
    std::fs::write(
        &console_cfg,
        format!(
            "{}\n[console]\nlisten = \"127.0.0.1:{port}\"\nworm_interval = \"1s\"\n\
             report_dirs = [\"{}\", \"{}\"]\n\
             [[console.database]]\nname = \"FREE\"\ndb_id = {db_id}\nrto_target = \"1s\"\nrpo_target = \"5s\"\n",
            std::fs::read_to_string(&cfg).unwrap(),
            tmp.path().display(),
            history.display()
        ),
    )
    .unwrap();
    let _console = crate::netkit::Proc::spawn(
        "console",
        &bins().verifier,
        &["console", "--config", console_cfg.to_str().unwrap()],
        &tmp.path().join("console.log"),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let log = tmp.path().join("console.log");
    crate::netkit::wait_until(
        "the console to listen",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || {
            assert!(
                !std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("problem"),
                "{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200))
                .is_ok()
        },
    );
    let mut listed = serde_json::Value::Null;
    crate::netkit::wait_until(
        "the console to list the drill and the recovery",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(200),
        || {
            let (code, _, body) = crate::console::http(addr, "GET", "/api/v1/drills");
            listed = serde_json::from_str(&body).unwrap_or_default();
            code == 200 && listed.as_array().is_some_and(|a| a.len() == 2)
        },
    );
    let by_kind = |k: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k} in {listed}"))
            .clone()
    };
    let d = by_kind("drill");
    assert_eq!(d["database"], "FREE", "{d}");
    assert_eq!(d["pass"], true, "{d}");
    assert_eq!(d["rpo_commits"], 0, "{d}");
    let exceeded = |v: &serde_json::Value| v["rto_seconds"].as_f64().unwrap() > 1.0;
    assert_eq!(d["rto_exceeded"], exceeded(&d), "{d}");
    let r = by_kind("recover");
    assert_eq!(r["database"], "FREE", "{r}");
    assert_eq!(r["rto_seconds"], report["rto_seconds"], "{r}");
    assert!(r["rpo_seconds"].is_null(), "{r}");
    assert_eq!(r["rto_exceeded"], exceeded(&r), "{r}");
    let (code, _, page) = crate::console::http(addr, "GET", "/");
    assert_eq!(code, 200);
    assert!(
        page.contains("FREE (recover)") && page.contains("FREE (drill)"),
        "{page}"
    );
    if exceeded(&r) {
        assert!(page.contains("exceeded"), "{page}");
    }
}
