//! End-to-end tests of what `deploy/` ships beside the binaries.
//!
//! - `deploy/rman-delete-shipped.sh`, the RMAN deletion gate, fed the real `redovault status
//!   --json` of a running `redovault watch` (local store) over a two-thread simulated
//!   database: the RMAN commands it prints, and its refusals (gap, stale, missing, damaged or
//!   replaced logs, several incarnations). No Oracle here: `--execute` is pointed at a
//!   recording stand-in for `rman` that keeps what it was sent.
//! - every `deploy/config/*.example.toml` passes its role's real `check-config`, with the
//!   certificates (made by `deploy/link-certs.sh`) and key file it names created under a
//!   temporary root.
//! - every alert of `deploy/prometheus/redovault-alerts.yml` has, in
//!   `redovault-alerts.test.yml`, a promtool case that must fire and one that must not (the
//!   promtool run itself is in deploy/test.sh: a rule added later without both fails here).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::netkit::{Proc, bins, wait_until};
use crate::watcher::{RacGap, rac_logs_with_a_gap};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn script() -> PathBuf {
    Path::new(ROOT).join("deploy/rman-delete-shipped.sh")
}

/// Runs the wrapper with `args`.
fn wrapper(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("run deploy/rman-delete-shipped.sh")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The RMAN commands of the wrapper's output (every line that is not a `#` comment).
fn commands(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

fn assert_refused(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "refusal expected ({needle}); stdout: {}; stderr: {err}",
        text(&out.stdout)
    );
    assert!(
        err.contains("REFUSED") && err.contains(needle) && err.contains("nothing deleted"),
        "refusal should say {needle:?}: {err}"
    );
    assert!(
        commands(out).is_empty(),
        "a refusal prints no RMAN command: {}",
        text(&out.stdout)
    );
}

/// `redovault status --json --state-dir DIR`: (exit code, JSON text).
fn status(state: &Path) -> (i32, String) {
    let out = Command::new(&bins().redovault)
        .args(["status", "--json", "--state-dir"])
        .arg(state)
        .output()
        .expect("run redovault status");
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

fn status_value(state: &Path) -> serde_json::Value {
    serde_json::from_str(&status(state).1).unwrap_or(serde_json::Value::Null)
}

fn thread_of(st: &serde_json::Value, t: u64) -> &serde_json::Value {
    st["threads"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["thread"] == t))
        .unwrap_or_else(|| panic!("no thread {t} in {st:#}"))
}

fn write_json(path: &Path, v: &serde_json::Value) -> String {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn rman_wrapper_deletes_only_what_is_in_worm_and_refuses_gaps_stale_or_missing_status() {
    let bins = bins();
    let d = tempfile::tempdir().unwrap();
    let archive = d.path().join("oracle/archive");
    let state = d.path().join("state");
    std::fs::create_dir_all(&archive).unwrap();
    // A two-instance (RAC) database; sequence 2 of thread 2 held back: a gap once 3 is shipped.
    let RacGap { last1, last2, held } = rac_logs_with_a_gap(&d.path().join("staging"), &archive);
    let config = d.path().join("watcher.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[watch]
dirs = ["{archive}"]
scan_interval = "1s"
[state]
dir = "{state}"
status_interval = "300ms"
[store]
kind = "local"
dir = "{vault}"
prefix = "rman"
[telemetry]
metrics_listen = ""
"#,
            archive = archive.display(),
            state = state.display(),
            vault = d.path().join("vault").display(),
        ),
    )
    .unwrap();
    let watcher = Proc::spawn(
        "watcher",
        &bins.redovault,
        &["watch", "--config", config.to_str().unwrap()],
        &d.path().join("watch.log"),
    );
    wait_until(
        "7 logs shipped by a running watcher",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let st = status_value(&state);
            st["manifest_entries"] == 7 && st["daemon"] == "running"
        },
    );
    let rv = bins.redovault.to_str().unwrap();
    let state_s = state.to_str().unwrap();

    // A gap: refused, naming the thread and the sequence, whether the wrapper runs
    // `redovault status` itself or reads its saved output.
    let (code, json) = status(&state);
    assert_eq!(code, 2, "a gap makes status unhealthy: {json}");
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        thread_of(&st, 2)["gaps"],
        serde_json::json!([{"first": 2, "last": 2}])
    );
    let saved = d.path().join("status-gap.json");
    std::fs::write(&saved, &json).unwrap();
    assert_refused(
        &wrapper(&["--status-json", saved.to_str().unwrap()]),
        "thread 2: 2",
    );
    assert_refused(
        &wrapper(&["--redovault", rv, "--state-dir", state_s]),
        "missing sequences (thread 2: 2)",
    );

    // The missing log arrives: the gap closes and every thread is safe to delete through its
    // last shipped sequence.
    std::fs::rename(&held, archive.join(held.file_name().unwrap())).unwrap();
    wait_until(
        "8 logs shipped, no gap",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let st = status_value(&state);
            st["manifest_entries"] == 8
                && st["threads"].as_array().is_some_and(|ts| {
                    ts.len() == 2 && ts.iter().all(|t| t["gaps"] == serde_json::json!([]))
                })
        },
    );
    let (code, json) = status(&state);
    assert_eq!(code, 0, "healthy: {json}");
    let st: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(thread_of(&st, 1)["safe_to_delete_through"], last1);
    assert_eq!(thread_of(&st, 2)["safe_to_delete_through"], last2);
    let expected = vec![
        format!("DELETE NOPROMPT ARCHIVELOG UNTIL SEQUENCE {last1} THREAD 1;"),
        format!("DELETE NOPROMPT ARCHIVELOG UNTIL SEQUENCE {last2} THREAD 2;"),
    ];
    let dry = wrapper(&["--redovault", rv, "--state-dir", state_s]);
    assert!(
        dry.status.success(),
        "dry run: {}{}",
        text(&dry.stdout),
        text(&dry.stderr)
    );
    assert_eq!(commands(&dry), expected, "{}", text(&dry.stdout));
    let out = text(&dry.stdout);
    assert!(out.contains("database FREE (db id 1497016494)"), "{out}");
    assert!(out.contains("# dry run: nothing was run"), "{out}");
    // The same from the saved JSON, explicitly as a dry run, and with the database and
    // incarnation named.
    let healthy = d.path().join("status-ok.json");
    std::fs::write(&healthy, &json).unwrap();
    let healthy_s = healthy.to_str().unwrap();
    let rl = thread_of(&st, 1)["resetlogs_id"].to_string();
    let named = wrapper(&[
        "--dry-run",
        "--status-json",
        healthy_s,
        "--db-id",
        "1497016494",
        "--resetlogs-id",
        &rl,
    ]);
    assert!(named.status.success(), "{}", text(&named.stderr));
    assert_eq!(commands(&named), expected);
    assert_refused(
        &wrapper(&["--status-json", healthy_s, "--db-id", "42"]),
        "no shipped thread of db id 42",
    );

    // --execute: the commands, then EXIT, go to RMAN's stdin (here a stand-in that records
    // them); RMAN failing makes the wrapper fail.
    let rec = d.path().join("rman.stdin");
    let fake = d.path().join("rman-stand-in.sh");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ncat > '{}'\nexit 0\n", rec.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec = wrapper(&[
        "--execute",
        "--status-json",
        healthy_s,
        "--rman",
        fake.to_str().unwrap(),
    ]);
    assert!(
        exec.status.success(),
        "{}{}",
        text(&exec.stdout),
        text(&exec.stderr)
    );
    let sent = std::fs::read_to_string(&rec).unwrap();
    assert_eq!(sent, format!("{}\n{}\nEXIT;\n", expected[0], expected[1]));
    let broken = d.path().join("rman-failing.sh");
    std::fs::write(&broken, "#!/bin/sh\ncat > /dev/null\nexit 3\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let failing = wrapper(&[
        "--execute",
        "--status-json",
        healthy_s,
        "--rman",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(failing.status.code(), Some(2), "{}", text(&failing.stderr));
    assert!(text(&failing.stderr).contains("RMAN exited"));

    // What the watcher reports as damaged or replaced stays on the host: refused.
    let mut bad = st.clone();
    bad["status"]["replaced"] = serde_json::json!([{
        "path": "/u01/arch/arch1_3_1.dbf", "shipped_sha256": "00", "found_sha256": null,
        "manifest_index": 3
    }]);
    let p = write_json(&d.path().join("status-replaced.json"), &bad);
    assert_refused(&wrapper(&["--status-json", &p]), "replaced logs");
    let mut bad = st.clone();
    bad["status"]["damaged"] = serde_json::json!([{
        "path": "/u01/arch/arch1_9_1.dbf", "block": 7, "reason": "checksum",
        "quarantine_key": null
    }]);
    let p = write_json(&d.path().join("status-damaged.json"), &bad);
    assert_refused(&wrapper(&["--status-json", &p]), "damaged logs");

    // After an OPEN RESETLOGS the status holds two incarnations: the wrapper must be told
    // which one is current, and then deletes in that one only.
    let mut two = st.clone();
    let mut older = thread_of(&st, 1).clone();
    older["resetlogs_id"] = serde_json::json!(1_100_000_000u64);
    older["safe_to_delete_through"] = serde_json::json!(900);
    two["threads"].as_array_mut().unwrap().push(older);
    let p = write_json(&d.path().join("status-two-incarnations.json"), &two);
    assert_refused(&wrapper(&["--status-json", &p]), "several incarnations");
    let pick = wrapper(&["--status-json", &p, "--resetlogs-id", &rl]);
    assert!(pick.status.success(), "{}", text(&pick.stderr));
    assert_eq!(commands(&pick), expected);
    let old = wrapper(&["--status-json", &p, "--resetlogs-id", "1100000000"]);
    assert!(old.status.success(), "{}", text(&old.stderr));
    assert_eq!(
        commands(&old),
        vec!["DELETE NOPROMPT ARCHIVELOG UNTIL SEQUENCE 900 THREAD 1;".to_string()]
    );

    // Missing: no status file, a file that is not the status, a state directory the watcher
    // never wrote.
    assert_refused(
        &wrapper(&[
            "--status-json",
            d.path().join("nope.json").to_str().unwrap(),
        ]),
        "missing or unreadable",
    );
    let junk = d.path().join("junk.json");
    std::fs::write(&junk, b"{\"daemon\": 1}").unwrap();
    assert_refused(
        &wrapper(&["--status-json", junk.to_str().unwrap()]),
        "is not the JSON of 'redovault status --json'",
    );
    let empty = d.path().join("empty-state");
    std::fs::create_dir_all(&empty).unwrap();
    assert_refused(
        &wrapper(&["--redovault", rv, "--state-dir", empty.to_str().unwrap()]),
        "no watcher status",
    );
    assert_refused(
        &wrapper(&[
            "--redovault",
            "/nonexistent/redovault",
            "--state-dir",
            state_s,
        ]),
        "not found",
    );

    // Stale: the watcher dies (kill -9) and stops rewriting its status. Once it is "not
    // responding", the same state that was fine a moment ago is refused.
    watcher.kill9();
    wait_until(
        "the status to go stale",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || status_value(&state)["daemon"] == "not responding",
    );
    assert_refused(
        &wrapper(&["--redovault", rv, "--state-dir", state_s]),
        "the watcher is not responding",
    );
    // The manifest itself still says the same: only the watcher's liveness changed.
    let st = status_value(&state);
    assert_eq!(thread_of(&st, 1)["safe_to_delete_through"], last1);
}

/// How a role checks its configuration: the program and the arguments before the file.
fn checker(file_name: &str) -> (PathBuf, &'static [&'static str]) {
    let b = bins();
    match file_name {
        "watcher.example.toml" => (b.redovault.clone(), &["check-config"]),
        // Every program takes both forms: FILE here, --config FILE beside.
        "extractor.example.toml" => (b.extractor.clone(), &["check-config"]),
        "collector.example.toml" => (b.collector.clone(), &["check-config", "--config"]),
        "verifier.example.toml" => (b.verifier.clone(), &["check-config"]),
        other => panic!(
            "deploy/config/{other}: a configuration without a check here; add its role's check-config"
        ),
    }
}

fn check(file_name: &str, path: &Path) -> Output {
    let (bin, args) = checker(file_name);
    Command::new(&bin)
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", bin.display()))
}

#[test]
fn every_example_config_in_deploy_passes_its_roles_check_config() {
    let dir = Path::new(ROOT).join("deploy/config");
    let mut examples: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    examples.sort();
    let names: Vec<&str> = examples.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "collector.example.toml",
            "extractor.example.toml",
            "verifier.example.toml",
            "watcher.example.toml"
        ]
    );
    // The examples name absolute paths on a production host (/etc/redovault/..., /var/lib/
    // redovault/..., /u01/...). Each copy is the example with every absolute path moved
    // under a temporary root, nothing else changed.
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display().to_string();
    let mut copies = Vec::new();
    for (name, path) in &examples {
        let original = std::fs::read_to_string(path).unwrap();
        let rerooted = original.replace("\"/", &format!("\"{r}/"));
        assert!(
            !rerooted.contains("\"/etc") && !rerooted.contains("\"/var"),
            "{name}: a path left unmoved"
        );
        let copy = root.path().join(name);
        std::fs::write(&copy, rerooted).unwrap();
        copies.push((name.clone(), copy));
    }

    // Without the files they name, the checks that read them fail, naming each one: the
    // certificates, the key ring, the store's parent directory.
    let find = |n: &str| copies.iter().find(|(name, _)| name == n).unwrap().1.clone();
    let out = check("extractor.example.toml", &find("extractor.example.toml"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains(&format!("{r}/etc/redovault/link/client.pem")),
        "{}",
        text(&out.stdout)
    );
    let out = check("collector.example.toml", &find("collector.example.toml"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let o = text(&out.stdout);
    for named in [
        format!("{r}/etc/redovault/link/server.pem"),
        format!("{r}/etc/redovault/collector.keys"),
        format!("{r}/var/lib/redovault/collector"),
    ] {
        assert!(o.contains(&named), "{named} not named: {o}");
    }

    // Create them as the README says: the link's certificates with deploy/link-certs.sh (the
    // extractor id and collector name of the examples), an owner-only key ring, the state
    // directories' parent.
    let link = root.path().join("etc/redovault/link");
    let st = Command::new("bash")
        .arg(Path::new(ROOT).join("deploy/link-certs.sh"))
        .arg(&link)
        .args(["db01-extractor", "collector.example.net"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "deploy/link-certs.sh: {}",
        text(&st.stderr)
    );
    let keys = root.path().join("etc/redovault/collector.keys");
    std::fs::write(
        &keys,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            hex::encode(rand::random::<[u8; 32]>())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(root.path().join("var/lib/redovault")).unwrap();

    for (name, copy) in &copies {
        let out = check(name, copy);
        assert!(
            out.status.success(),
            "deploy/config/{name} fails its check-config ({}): {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        let o = text(&out.stdout);
        assert!(o.to_lowercase().contains(": ok"), "{name}: no OK line: {o}");
    }
    // The watcher's and the verifier's checks read no file the example names: the examples
    // themselves, unmoved, pass too.
    for (name, path) in &examples {
        if name.starts_with("watcher") || name.starts_with("verifier") {
            let out = check(name, path);
            assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        }
    }
}

/// The parts of a Prometheus rules file this check reads.
#[derive(Debug, serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, serde::Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

/// A rule: an alert, or a recording rule (no `alert`).
#[derive(Debug, serde::Deserialize)]
struct Rule {
    alert: Option<String>,
}

/// The parts of a `promtool test rules` file this check reads.
#[derive(Debug, serde::Deserialize)]
struct RuleTestFile {
    rule_files: Vec<String>,
    tests: Vec<RuleTestGroup>,
}

#[derive(Debug, serde::Deserialize)]
struct RuleTestGroup {
    name: String,
    #[serde(default)]
    alert_rule_test: Vec<AlertRuleTest>,
}

/// One assertion: the alerts of `alertname` firing at one time (none when `exp_alerts` is
/// empty or absent).
#[derive(Debug, serde::Deserialize)]
struct AlertRuleTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<serde_norway::Value>,
}

/// What is missing for every alert of `rules` to have a firing and a quiet case in `tests`
/// (whose `rule_files` must name `rules_name`), and assertions on alerts that do not exist
/// (a misspelt name "passes" its quiet case vacuously).
fn alert_test_coverage(rules_name: &str, rules: &str, tests: &str) -> Vec<String> {
    let rules: RuleFile = serde_norway::from_str(rules).expect("the rules file parses");
    let tests: RuleTestFile = serde_norway::from_str(tests).expect("the test file parses");
    let mut problems = Vec::new();
    if !tests.rule_files.iter().any(|f| f == rules_name) {
        problems.push(format!("rule_files does not name {rules_name}"));
    }
    let alerts: Vec<&str> = rules
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.alert.as_deref())
        .collect();
    let cases: Vec<(&str, &AlertRuleTest)> = tests
        .tests
        .iter()
        .flat_map(|g| g.alert_rule_test.iter().map(move |t| (g.name.as_str(), t)))
        .collect();
    for a in &alerts {
        let mine = || cases.iter().filter(|(_, t)| t.alertname == *a);
        if !mine().any(|(_, t)| !t.exp_alerts.is_empty()) {
            problems.push(format!("{a}: no case that must fire"));
        }
        if !mine().any(|(_, t)| t.exp_alerts.is_empty()) {
            problems.push(format!("{a}: no case that must not fire"));
        }
    }
    for (group, t) in &cases {
        if !alerts.contains(&t.alertname.as_str()) {
            problems.push(format!(
                "test \"{group}\": alert {} is not in the rules",
                t.alertname
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &alerts {
        if !seen.insert(*a) {
            problems.push(format!("{a}: two rules of that name"));
        }
    }
    problems
}

#[test]
fn every_alert_rule_has_a_firing_and_a_quiet_promtool_case() {
    let dir = Path::new(ROOT).join("deploy/prometheus");
    let rules = std::fs::read_to_string(dir.join("redovault-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("redovault-alerts.test.yml")).unwrap();
    let problems = alert_test_coverage("redovault-alerts.yml", &rules, &tests);
    assert!(
        problems.is_empty(),
        "deploy/prometheus/redovault-alerts.test.yml:\n{}",
        problems.join("\n")
    );
    // The rules this issue is about are there (and so tested, by the above).
    for a in [
        "RedovaultExtractorStuck",
        "RedovaultCollectorInstanceDown",
        "RedovaultExtractorInstanceDown",
        "RedovaultWatcherInstanceDown",
        "RedovaultManifestNotGrowing",
        "RedovaultLinkCertificateExpiring",
        "RedovaultLinkCertificateExpiryCritical",
        "RedovaultArchiveDestinationLowSpace",
        "RedovaultArchiveDestinationFull",
    ] {
        assert!(rules.contains(&format!("alert: {a}\n")), "{a} missing");
    }

    // The check itself: a rule added without cases, a quiet case only, a misspelt name.
    let more = rules.clone()
        + "  - name: added-later\n    rules:\n      - alert: RedovaultAddedLater\n        expr: vector(1)\n";
    let p = alert_test_coverage("redovault-alerts.yml", &more, &tests);
    assert_eq!(
        p,
        [
            "RedovaultAddedLater: no case that must fire",
            "RedovaultAddedLater: no case that must not fire"
        ]
    );
    let quiet_only = tests.clone()
        + "  - name: extra\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: RedovaultAddedLater\n        exp_alerts: []\n      - eval_time: 1m\n        alertname: RedovaultAddedLatr\n";
    let p = alert_test_coverage("redovault-alerts.yml", &more, &quiet_only);
    assert_eq!(
        p,
        [
            "RedovaultAddedLater: no case that must fire",
            "test \"extra\": alert RedovaultAddedLatr is not in the rules"
        ]
    );
    let p = alert_test_coverage("other.yml", &rules, &tests);
    assert_eq!(p, ["rule_files does not name other.yml"]);
}
