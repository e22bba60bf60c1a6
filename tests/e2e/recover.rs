//! `redovault-verifier recover`: the drill's recovery as one resumable workflow. After a
//! local drill, the recovery host is wiped and `recover` runs from nothing with the drill's
//! verifier configuration: stopped after a step, failed at a step (no recovery key), then
//! re-run to the end, it resumes each time where it stopped and gives back exactly what the
//! drill's own recovery gave (the same archived logs, the same online log to the same last
//! commit, the same scripts), with its report and its history entry. The DR console, started
//! before the first run, shows the recovery in progress (steps done, the next one, the RTO so
//! far) after the stopped and the failed run, and once complete lists it in the history and
//! estimates the RTO from what it measured.

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

/// The RTO so far that DEST's state file records.
fn state_rto(dest: &Path) -> serde_json::Value {
    let s = json(&dest.join("recover-state.json"));
    let steps: f64 = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["seconds"].as_f64().unwrap())
        .sum();
    serde_json::json!(s["failed_seconds"].as_f64().unwrap_or(0.0) + steps)
}

/// The console's one recovery in progress, once `ready` holds for it.
fn recovery_in_progress(
    addr: std::net::SocketAddr,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut found = serde_json::Value::Null;
    crate::netkit::wait_until(
        "the console to show the recovery in progress",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(200),
        || {
            let (code, _, body) = crate::console::http(addr, "GET", "/api/v1/recoveries");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            match v.as_array().map(Vec::as_slice) {
                Some([one]) if code == 200 && ready(one) => {
                    found = one.clone();
                    true
                }
                _ => false,
            }
        },
    );
    found
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

    // The DR console, on the recovery host's history and the drill's report (an RTO target
    // of 1 s, the shortest it takes: met or exceeded as each run's RTO says): it shows the
    // recovery while it is not complete, then lists it with the drill.
    let db_id = json(&drill_dest.join("restore-online.json"))["threads"][0]["stream"]
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
    // The console shows it in progress: two steps of four done, the next one, its RTO so far;
    // not in the history of runs that ended.
    let rec = recovery_in_progress(addr, |r| {
        r["steps_done"].as_array().map(Vec::len) == Some(2)
    });
    assert_eq!(rec["database"], "FREE", "{rec}");
    assert_eq!(
        rec["steps_done"],
        serde_json::json!(["verify", "restore-archive"]),
        "{rec}"
    );
    assert_eq!(
        (rec["steps_total"].as_u64(), rec["runs"].as_u64()),
        (Some(4), Some(1)),
        "{rec}"
    );
    assert_eq!(rec["next_step"], "restore-online", "{rec}");
    assert!(rec["running"].is_null(), "the run ended: {rec}");
    // Summed from the same steps on two paths, so equal up to the last bits of an f64.
    let (shown, stored) = (rec["rto_so_far"].as_f64(), state_rto(&dest).as_f64());
    assert!(
        matches!((shown, stored), (Some(a), Some(b)) if (a - b).abs() < 1e-9),
        "{rec}: {stored:?}"
    );
    assert_eq!(rec["rto_target"], 1.0, "{rec}");
    let (_, _, body) = crate::console::http(addr, "GET", "/api/v1/drills");
    let drills: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        drills
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["kind"] == "drill"),
        "a recovery not complete is not in the history: {drills}"
    );
    let (_, _, page) = crate::console::http(addr, "GET", "/db/FREE");
    assert!(
        page.contains("Recoveries in progress")
            && page.contains("stopped before restore-online; a re-run resumes there"),
        "{page}"
    );

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
    // The entry as the failed run left it (the console may first show it mid-run).
    let rec = recovery_in_progress(addr, |r| r["runs"] == 2 && !r["failed"].is_null());
    assert_eq!(rec["failed"], "restore-online", "{rec}");
    assert_eq!(rec["steps_done"].as_array().map(Vec::len), Some(2), "{rec}");

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
    // Complete: no longer in progress.
    crate::netkit::wait_until(
        "the console to see the recovery complete",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(200),
        || {
            let (_, _, body) = crate::console::http(addr, "GET", "/api/v1/recoveries");
            body.trim() == "[]"
        },
    );
    // The estimated RTO now uses what the recovery measured: its archive restore's bytes
    // and time, and its other steps.
    assert!(report["archive_bytes"].as_u64().unwrap() > 0, "{report}");
    let (_, _, body) = crate::console::http(addr, "GET", "/api/v1/overview");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    let est = &overview["rows"][0]["rto_estimate"];
    assert_eq!(est["basis"], "measured", "{overview}");
    assert_eq!(est["kind"], "recover", "{est}");
    let archive_secs = steps
        .iter()
        .find(|s| s["step"] == "restore-archive")
        .and_then(|s| s["seconds"].as_f64())
        .unwrap();
    let want = report["archive_bytes"].as_f64().unwrap() / archive_secs;
    assert!(
        (est["throughput"].as_f64().unwrap() - want).abs() <= want * 1e-9,
        "{est} vs {want}"
    );
    let (code, _, page) = crate::console::http(addr, "GET", "/");
    assert_eq!(code, 200);
    assert!(page.contains("data-basis=\"measured\""), "{page}");
    assert!(
        page.contains("FREE (recover)") && page.contains("FREE (drill)"),
        "{page}"
    );
    if exceeded(&r) {
        assert!(page.contains("exceeded"), "{page}");
    }
}
