//! The DR console against a live pipeline, seen in headless Chromium: a simulated database,
//! the watcher shipping its archived logs into the real Ceph (Object Lock), the extractor
//! streaming the online log to a collector that seals it into WORM, and
//! `redovault-verifier console` reading all of them (the collector's `/status`, the
//! extractor's and watcher's metrics, WORM with the verifier's read-only keys, a report
//! directory with two drill reports):
//! 1. the overview shows the database Protected, its exposure under a few seconds;
//! 2. kill -9 of the extractor: the row turns Alert within 10 s, with the reason;
//! 3. the extractor restarted: Protected again, and the events list the outage with its
//!    duration;
//! 4. screenshots at desktop (1280x800) and phone (390x844) width, decoded and checked
//!    (the state's colours visible, the size right), kept under `target/tmp/console/`;
//! 5. a real `verify` run's report in the report directory: the database's timeline of
//!    sequences (verified, then the online log streamed; no gap, nothing tampered) on its
//!    page and in the API, readable at phone width; the verifier runs panel with its
//!    deep-verify coverage and MB/s; the RTO estimate's basis (configured);
//! 6. the console refuses writes (405), serves nothing outside its paths (404), sends its
//!    security headers; a misconfigured source is an error on the page, not a crash.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netkit::{LiveDb, Proc, World, bins, free_port, init_logs, wait_until};
use crate::report_html::{chromium, count_pixels};
use crate::worm::{Drill, RecoveryTeam, own_stream};

/// Row background of an Alert row (`--bad-bg`).
const ALERT_ROW_RGB: [u8; 3] = [0xfd, 0xe2, 0xe0];
/// Row background of a Warning row (`--warn-bg`).
const WARNING_ROW_RGB: [u8; 3] = [0xff, 0xf1, 0xcc];
/// Background of the Protected badge (`--ok-bg`).
const PROTECTED_RGB: [u8; 3] = [0xe3, 0xf4, 0xe8];
/// Background of a run of streamed sequences in the timeline.
const STREAMED_RGB: [u8; 3] = [0xf0, 0xeb, 0xfa];

/// One HTTP/1.1 exchange: status code, head, body.
pub fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: console\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_string())
}

fn overview(addr: SocketAddr) -> serde_json::Value {
    let (code, _, body) = http(addr, "GET", "/api/v1/overview");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).expect("overview JSON")
}

/// Chromium's rendered DOM of `url`.
fn dump_dom(chrome: &Path, profile: &Path, url: &str) -> String {
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `url` at `width`x`height`, checked for its size; returns its path.
fn screenshot(
    chrome: &Path,
    profile: &Path,
    url: &str,
    width: u32,
    height: u32,
    out: &Path,
) -> PathBuf {
    let _ = fs::remove_file(out);
    let r = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        r.status.success(),
        "chromium --screenshot: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let decoder = png::Decoder::new(fs::File::open(out).expect("the screenshot"));
    let info = decoder.read_info().expect("a PNG").info().clone();
    assert_eq!(
        (info.width, info.height),
        (width, height),
        "{}",
        out.display()
    );
    out.to_path_buf()
}

/// The row of thread 1 in a DOM dump: its `data-state` and its text.
fn row_in(dom: &str) -> Option<(String, String)> {
    let start = dom.find("data-thread=\"1\"")?;
    let rest = &dom[start..];
    let state = rest
        .split("data-state=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let end = rest.find("</tr>").unwrap_or(rest.len());
    Some((state, rest[..end].to_string()))
}

/// Where the screenshots are kept: `REDOVAULT_ARTIFACTS/console` (`deploy/test.sh` sets it to
/// `.ci/artifacts`, which CI keeps), else under the target directory.
fn artifacts() -> PathBuf {
    let d = std::env::var_os("REDOVAULT_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf())
        .join("console");
    fs::create_dir_all(&d).unwrap();
    d
}

fn watcher_config(w: &World, drill: &Drill, prefix: &str, mport: u16) -> PathBuf {
    let p = w.path("watcher.toml");
    fs::write(
        &p,
        format!(
            r#"[watch]
dirs = ["{archive}"]
scan_interval = "1s"
grace_period = "1s"
[state]
dir = "{state}"
status_interval = "300ms"
seal_interval = "1s"
[store]
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "{prefix}"
retention = "bucket-default"
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:{mport}"
"#,
            archive = w.sim.join("archive").display(),
            state = w.path("watcher-state").display(),
            endpoint = drill.server.endpoint,
            bucket = drill.drill.bucket,
            region = drill.server.region,
            ca = drill.server.ca.display(),
        ),
    )
    .unwrap();
    p
}

/// The verifier's configuration with `[console]`: the archive under `prefix`, the streams
/// under the drill prefix, and `sources` (the `[[console.*]]` tables).
fn console_config(
    w: &World,
    drill: &Drill,
    name: &str,
    prefix: &str,
    port: u16,
    db_id: u32,
    sources: &str,
) -> PathBuf {
    let p = w.path(name);
    fs::write(
        &p,
        format!(
            r#"[store]
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "{prefix}"
retention = "bucket-default"
[verify]
state_dir = "{state}"
worm_prefix = "{worm_prefix}"
[console]
listen = "127.0.0.1:{port}"
poll_interval = "1s"
worm_interval = "2s"
report_dirs = ["{reports}"]
{sources}
[[console.database]]
name = "PROD"
db_id = {db_id}
rto_target = "2h"
# Generous: on a loaded CI machine the collector's WORM pieces lag by tens of seconds, and a
# WORM exposure above the target is a (correct) Warning that this test is not about.
rpo_target = "2m"
"#,
            endpoint = drill.server.endpoint,
            bucket = drill.drill.bucket,
            region = drill.server.region,
            ca = drill.server.ca.display(),
            state = w.path(&format!("{name}-state")).display(),
            worm_prefix = drill.drill.prefix,
            reports = w.path("reports").display(),
        ),
    )
    .unwrap();
    p
}

fn start_console(w: &World, drill: &Drill, cfg: &Path, port: u16, log: &str) -> Proc {
    let p = Proc::spawn_env(
        "console",
        &bins().verifier,
        &["console", "--config", cfg.to_str().unwrap()],
        &[
            (
                "AWS_ACCESS_KEY_ID",
                drill.drill.verifier.access_key.as_str(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                drill.drill.verifier.secret_key.as_str(),
            ),
        ],
        &w.path(log),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_until(
        "the console to listen",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
    );
    p
}

/// Two drill reports as `redovault drill` writes them: one within the targets, one whose
/// RTO (3 h) exceeds the 2 h target.
fn drill_reports(w: &World) {
    for (dir, rto) in [("drill-a", 42.5), ("drill-b", 3.0 * 3600.0)] {
        let d = w.path("reports").join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("drill-report.json"),
            serde_json::json!({
                "pass": true, "rpo_commits": 0, "rpo_seconds": 0.0, "rto_seconds": rto,
                "store": "s3", "collectors": 1,
            })
            .to_string(),
        )
        .unwrap();
    }
}

#[test]
fn the_console_shows_protected_then_alert_after_kill_9_then_the_outage_in_the_events() {
    init_logs();
    let _ = bins();
    let begun = Instant::now();
    let Some(chrome) = chromium() else {
        return;
    };
    let Some(drill) = Drill::target() else {
        return;
    };
    let w = World::new(3);
    let team = RecoveryTeam::new(&w);
    let shots = artifacts();
    let profile = w.path("chromium-profile");

    // The pipeline.
    let worm = drill.worm_section(drill.server.endpoint.as_str(), &team.public, "500ms");
    let ccfg = w.collector_config(&worm);
    let ecfg = w.extractor_config(w.port, "");
    let collector = drill.start_collector(&w, &ccfg);
    let mut sim = w.sim_config(512 << 10, 128 << 10);
    // The database's clock is the wall clock (the exposure is measured against it).
    sim.start_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (sid, stream) = own_stream(&mut sim);
    let db = LiveDb::start(sim);
    let mut extractor = Some(w.start_extractor(&ecfg));
    let archive_prefix = format!("{}/console-{}", drill.drill.prefix, sid.db_id);
    let wport = free_port();
    let wcfg = watcher_config(&w, &drill, &archive_prefix, wport);
    let watcher = Proc::spawn_env(
        "watcher",
        &bins().redovault,
        &["watch", "--config", wcfg.to_str().unwrap()],
        &[
            ("AWS_ACCESS_KEY_ID", drill.drill.dbhost.access_key.as_str()),
            (
                "AWS_SECRET_ACCESS_KEY",
                drill.drill.dbhost.secret_key.as_str(),
            ),
        ],
        &w.path("watcher.log"),
    );

    // The console.
    drill_reports(&w);
    let port = free_port();
    let sources = format!(
        "[[console.collector]]\nname = \"backup-1\"\nstatus_url = \"http://127.0.0.1:{}/status\"\n\
         [[console.extractor]]\nname = \"db-host\"\nmetrics = \"127.0.0.1:{}\"\n\
         [[console.watcher]]\nname = \"db-host-watcher\"\nmetrics = \"127.0.0.1:{wport}\"\n",
        w.collector_metrics, w.extractor_metrics,
    );
    let cfg = console_config(
        &w,
        &drill,
        "verifier.toml",
        &archive_prefix,
        port,
        sid.db_id.0,
        &sources,
    );
    let console = start_console(&w, &drill, &cfg, port, "console.log");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = format!("http://{addr}/");

    // 1. Protected, exposure under a few seconds.
    let state = |v: &serde_json::Value| v["rows"][0]["state"].as_str().unwrap_or("").to_string();
    // Protected, and WORM read once: the collector's first piece is sealed and the console
    // reads WORM on its own, slower interval, so the WORM exposure may come a little later.
    wait_until(
        "the console to show the database Protected, with its WORM exposure",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            let v = overview(addr);
            state(&v) == "Protected" && v["rows"][0]["exposure_worm"].is_number()
        },
    );
    let v = overview(addr);
    let row = &v["rows"][0];
    assert_eq!(row["stream"].as_str(), Some(stream.as_str()), "{row}");
    let exposure = row["exposure_collector"]
        .as_f64()
        .expect("collector exposure");
    assert!(exposure < 4.0, "exposure {exposure} s: {row}");
    assert!(row["exposure_worm"].as_f64().is_some(), "{row}");
    let dom = dump_dom(&chrome, &profile, &url);
    let (st, text) = row_in(&dom).expect("thread 1's row in the page");
    assert_eq!(st, "Protected", "{text}");
    assert!(text.contains("PROD"), "{text}");
    assert!(text.contains("collector <b>"), "exposure shown: {text}");
    // The drill history: the second drill's RTO exceeds the target.
    assert!(
        dom.contains("data-rto=\"met\""),
        "drill within target listed"
    );
    assert!(
        dom.contains("data-rto=\"exceeded\""),
        "drill over its RTO target listed"
    );
    let desk = screenshot(
        &chrome,
        &profile,
        &url,
        1280,
        800,
        &shots.join("protected-desktop.png"),
    );
    let phone = screenshot(
        &chrome,
        &profile,
        &url,
        390,
        844,
        &shots.join("protected-phone.png"),
    );
    for s in [&desk, &phone] {
        assert!(
            count_pixels(s, PROTECTED_RGB) > 200,
            "Protected badge visible in {}",
            s.display()
        );
        assert_eq!(
            count_pixels(s, ALERT_ROW_RGB),
            0,
            "no Alert row in {}",
            s.display()
        );
        assert_eq!(
            count_pixels(s, WARNING_ROW_RGB),
            0,
            "no Warning row in {}",
            s.display()
        );
    }

    // 2. kill -9 of the extractor: Alert within 10 s, with the reason.
    extractor.take().unwrap().kill9();
    let killed = Instant::now();
    let (alert_after, alert_text) = loop {
        let dom = dump_dom(&chrome, &profile, &url);
        if let Some((st, text)) = row_in(&dom)
            && st == "Alert"
        {
            break (killed.elapsed(), text);
        }
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the row did not turn Alert within 10 s of kill -9: {:?}",
            row_in(&dom)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!(
        "console: Alert {:.1} s after kill -9",
        alert_after.as_secs_f64()
    );
    assert!(
        alert_text.contains("extractor db-host unreachable")
            || alert_text.contains("stream session down on every collector"),
        "the reason is on the row: {alert_text}"
    );
    let desk = screenshot(
        &chrome,
        &profile,
        &url,
        1280,
        800,
        &shots.join("alert-desktop.png"),
    );
    let phone = screenshot(
        &chrome,
        &profile,
        &url,
        390,
        844,
        &shots.join("alert-phone.png"),
    );
    for s in [&desk, &phone] {
        assert!(
            count_pixels(s, ALERT_ROW_RGB) > 2_000,
            "Alert row visible in {}",
            s.display()
        );
    }
    std::thread::sleep(Duration::from_secs(2));

    // 3. Restarted: Protected again; the events list the outage with its duration.
    extractor = Some(w.start_extractor(&ecfg));
    wait_until(
        "Protected again after the restart",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || state(&overview(addr)) == "Protected",
    );
    let down = killed.elapsed().as_secs_f64();
    // The WORM tier catches up a moment after the collector's: the page may say Warning
    // for a poll or two before it settles.
    let mut dom = String::new();
    wait_until(
        "the database page to show Protected",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            dom = dump_dom(&chrome, &profile, &format!("{url}db/PROD"));
            row_in(&dom).map(|r| r.0).as_deref() == Some("Protected")
        },
    );
    assert!(
        dom.contains("data-kind=\"stream_stopped\""),
        "stop event listed"
    );
    assert!(
        dom.contains("the redo stream resumed after"),
        "resume event with its duration listed"
    );
    let (_, _, body) = http(addr, "GET", "/api/v1/events");
    let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let resumed = events
        .iter()
        .find(|e| e["kind"] == "stream_resumed")
        .expect("a stream_resumed event");
    let d = resumed["duration"].as_f64().expect("its duration");
    assert!(
        d > 1.0 && d <= down + 1.0,
        "outage {d} s (killed {down:.1} s ago)"
    );
    screenshot(
        &chrome,
        &profile,
        &format!("{url}db/PROD"),
        1280,
        800,
        &shots.join("database-desktop.png"),
    );
    // The overview for the README, once the WORM tier settled too.
    wait_until(
        "the overview's screenshot to show Protected",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            let desk = screenshot(
                &chrome,
                &profile,
                &url,
                1280,
                800,
                &shots.join("console.png"),
            );
            count_pixels(&desk, PROTECTED_RGB) > 200
        },
    );

    // 3b. A verifier run (the real `verify`, its JSON kept in the report directory as
    //     `verify --daemon` keeps it): the database's timeline of sequences shows them
    //     verified, the online log streamed, no gap, nothing tampered; the verifier runs
    //     panel its deep-verify coverage and throughput; the RTO estimate says it is
    //     configured (the drill reports here measured nothing).
    let out = Command::new(&bins().verifier)
        .args(["verify", "--config", cfg.to_str().unwrap(), "--json"])
        .env("AWS_ACCESS_KEY_ID", &drill.drill.verifier.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &drill.drill.verifier.secret_key)
        .output()
        .expect("run verify");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify --json");
    assert!(
        audit["summary"]["check_millis"].is_u64(),
        "the checks are timed: {}",
        audit["summary"]
    );
    fs::write(
        w.path("reports").join("report-2026-12-06T120000Z.json"),
        &out.stdout,
    )
    .unwrap();
    let mut runs: Vec<serde_json::Value> = Vec::new();
    wait_until(
        "the timeline to show verified and streamed sequences",
        Duration::from_secs(30),
        Duration::from_millis(250),
        || {
            let (code, _, body) = http(addr, "GET", "/api/v1/databases/PROD/timeline");
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            runs = v[0]["runs"].as_array().cloned().unwrap_or_default();
            let has = |st: &str| runs.iter().any(|r| r["state"] == st);
            has("verified") && has("streamed")
        },
    );
    for r in &runs {
        assert!(
            r["state"] != "tampered" && r["state"] != "gap",
            "a healthy pipeline: {runs:?}"
        );
    }
    let newest = runs.last().unwrap();
    assert_eq!(
        newest["streamed"], true,
        "the newest sequence is the stream's: {runs:?}"
    );
    let verified: u64 = runs
        .iter()
        .filter(|r| r["state"] == "verified")
        .map(|r| r["to"].as_u64().unwrap() - r["from"].as_u64().unwrap() + 1)
        .sum();
    let verified_in_audit = audit["threads"][0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "verified")
        .count() as u64;
    assert_eq!(verified, verified_in_audit, "{runs:?}");
    let dom = dump_dom(&chrome, &profile, &format!("{url}db/PROD"));
    assert!(
        dom.contains("<ol class=\"timeline\" data-thread=\"1\">")
            && dom.contains("data-state=\"verified\"")
            && dom.contains("data-state=\"streamed\""),
        "the timeline on the database page: {dom}"
    );
    let phone = screenshot(
        &chrome,
        &profile,
        &format!("{url}db/PROD"),
        390,
        2000,
        &shots.join("database-phone.png"),
    );
    assert!(
        count_pixels(&phone, STREAMED_RGB) > 100,
        "the streamed sequences visible at phone width"
    );
    let (_, _, body) = http(addr, "GET", "/api/v1/verifications");
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run = &runs[0];
    let checked = run["objects_checked"].as_u64().unwrap();
    assert!(checked > 0, "{run}");
    assert_eq!(
        run["objects_deep_verified"].as_u64(),
        Some(checked),
        "a first rolling run re-hashes every log: {run}"
    );
    assert!(run["deep_mb_per_second"].as_f64().unwrap() > 0.0, "{run}");
    let dom = dump_dom(&chrome, &profile, &url);
    assert!(
        dom.contains("Verifier runs")
            && dom.contains(&format!("100% ({checked} of {checked} archived logs)")),
        "the deep-verify coverage on the overview: {dom}"
    );
    let est = &overview(addr)["rows"][0]["rto_estimate"];
    assert_eq!(est["basis"], "configured", "{est}");
    // A healthy pipeline audits clean, and a clean report (`verify` writes `clean`) is no
    // reason for a Warning.
    assert_eq!(audit["verdict"], "clean", "{}", audit["findings"]);
    wait_until(
        "the row Protected with its clean verification",
        Duration::from_secs(20),
        Duration::from_millis(250),
        || {
            let v = overview(addr);
            state(&v) == "Protected" && v["rows"][0]["verification"][0] == "clean"
        },
    );
    assert!(dom.contains("data-basis=\"configured\""));

    // 4. Read-only, known paths only, strict headers.
    for (m, p) in [
        ("POST", "/"),
        ("PUT", "/api/v1/overview"),
        ("DELETE", "/db/PROD"),
    ] {
        let (code, head, _) = http(addr, m, p);
        assert_eq!(code, 405, "{m} {p}");
        assert!(head.contains("allow: get, head"), "{head}");
    }
    for p in [
        "/etc/passwd",
        "/assets/../Cargo.toml",
        "/../../etc/passwd",
        "/db/NOPE",
    ] {
        assert_eq!(http(addr, "GET", p).0, 404, "{p}");
    }
    let (code, head, body) = http(addr, "HEAD", "/");
    assert_eq!((code, body.as_str()), (200, ""));
    for h in [
        "content-security-policy: default-src 'self'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(h), "{h} missing: {head}");
    }

    // 5. A misconfigured source: an error on the page, not a crash.
    let bad_port = free_port();
    let bad_sources = "[[console.collector]]\nname = \"gone\"\nstatus_url = \"http://127.0.0.1:1/status\"\n\
                       [[console.extractor]]\nname = \"nowhere\"\nmetrics = \"127.0.0.1:1\"\n";
    let bad_cfg = console_config(
        &w,
        &drill,
        "bad.toml",
        "no-such-prefix",
        bad_port,
        sid.db_id.0,
        bad_sources,
    );
    let mut bad = start_console(&w, &drill, &bad_cfg, bad_port, "console-bad.log");
    let bad_addr = SocketAddr::from(([127, 0, 0, 1], bad_port));
    wait_until(
        "the misconfigured console to poll",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || overview(bad_addr)["generation"].as_u64().unwrap_or(0) >= 2,
    );
    let dom = dump_dom(&chrome, &profile, &format!("http://{bad_addr}/"));
    assert!(dom.contains("data-source=\"gone\""), "the source is listed");
    assert!(
        dom.contains("collector gone unknown"),
        "its error is a reason on the row"
    );
    assert!(bad.running(), "the console runs on");

    eprintln!("console test: {:.0} s", begun.elapsed().as_secs_f64());
    assert!(
        bad.terminate(Duration::from_secs(10)),
        "console stops cleanly"
    );
    assert!(
        console.terminate(Duration::from_secs(10)),
        "console stops cleanly"
    );
    if let Some(e) = extractor.take() {
        e.kill9();
    }
    let _ = watcher.terminate(Duration::from_secs(10));
    drop(db);
    collector.kill9();
    if let Some(keep) = std::env::var_os("REDOVAULT_CONSOLE_SCREENSHOT") {
        // The README's picture: REDOVAULT_CONSOLE_SCREENSHOT=deploy/docs/console.png cargo test ...
        fs::copy(shots.join("console.png"), keep).unwrap();
    }
}
