//! Replicated collectors (1:N) on separate hosts: network namespaces made by the test, the
//! database host (simulated database and the extractor), three collector hosts (each with
//! its own store, key and WORM prefix) and the S3 host (a real Ceph with Object Lock), each
//! on its own address ([`crate::netns`]). The extractor ships with `ack = "majority"`:
//! 1. one collector's link is cut for 30 s: redo keeps being protected by the other two,
//!    the cut one catches up afterwards (from the archived logs: the online ones were
//!    reused meanwhile);
//! 2. a second collector is killed with SIGKILL at random moments: each time, what the
//!    extractor recorded as acknowledged by it is in its store (durable before ack);
//! 3. two of three down: the extractor reports protection below policy (log line and
//!    metric) and its checkpoint stops, while it keeps shipping to the one that is up;
//!    every commit the extractor ever reported as protected is in at least two stores;
//! 4. all back: the policy holds again and every store ends with every commit of the
//!    database, in order;
//! 5. `redovault-verifier restore online` reads the three stores and the three WORM prefixes:
//!    every copy agrees, the online log is rebuilt to the last commit.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_extractor::checkpoint;

use crate::netkit::{
    CommitRow, LiveDb, Proc, World, assert_same_commits, bins, crash_seed, init_logs, wait_until,
};
use crate::netns::{Lan, LanCeph};
use crate::worm::{RecoveryTeam, own_stream};

const COLLECTORS: [(&str, &str); 3] = [
    ("c1", "10.213.0.11"),
    ("c2", "10.213.0.12"),
    ("c3", "10.213.0.13"),
];
const LINK_PORT: u16 = 7070;
const METRICS: &str = "127.0.0.1:9465";

/// One collector host: its configuration, store and running process.
struct Host {
    name: &'static str,
    cfg: PathBuf,
    proc: Option<Proc>,
}

fn collector_config(
    w: &World,
    ceph: &LanCeph,
    team: &RecoveryTeam,
    name: &str,
    addr: &str,
) -> PathBuf {
    let keys = w.path(&format!("{name}.keys"));
    let key = redovault::crypto::keys::random_key_hex();
    fs::write(
        &keys,
        format!("active = \"k1\"\n[keys]\nk1 = \"{}\"\n", &*key),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).unwrap();
    let p = w.path(&format!("{name}.toml"));
    let text = format!(
        r#"[listen]
address = "{addr}:{LINK_PORT}"
[tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
[link]
heartbeat_interval = "250ms"
missed_heartbeats = 8
handshake_timeout = "2s"
[store]
dir = "{store}"
key_file = "{keys}"
segment_size = "256K"
chunk_size = "64K"
[worm]
endpoint = "{endpoint}"
bucket = "{bucket}"
prefix = "replicated-{name}"
ca_file = "{s3ca}"
region = "{region}"
path_style = true
retention = "bucket-default"
recovery_public_key = "{pk}"
seal_interval = "1s"
[telemetry]
log_level = "info"
metrics_listen = "127.0.0.1:9466"
"#,
        cert = w.pki.server_cert.display(),
        key = w.pki.server_key.display(),
        ca = w.pki.ca.display(),
        store = w.path(&format!("store-{name}")).display(),
        keys = keys.display(),
        endpoint = ceph.endpoint,
        bucket = ceph.env["REDOVAULT_TEST_S3_DRILL_BUCKET"],
        s3ca = ceph.ca.display(),
        region = ceph.env["REDOVAULT_TEST_S3_REGION"],
        pk = team.public.display(),
    );
    fs::write(&p, text).unwrap();
    p
}

impl Host {
    fn start(&mut self, lan: &Lan, w: &World, ceph: &LanCeph) {
        let log = w.path(&format!("{}.log", self.name));
        let before =
            fs::read_to_string(&log).map_or(0, |t| t.matches("collector listening").count());
        let p = lan.spawn(
            self.name,
            &format!("collector {}", self.name),
            &bins().collector,
            &["--config", self.cfg.to_str().unwrap()],
            &[
                ("AWS_ACCESS_KEY_ID", ceph.env["AWS_ACCESS_KEY_ID"].as_str()),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    ceph.env["AWS_SECRET_ACCESS_KEY"].as_str(),
                ),
            ],
            &log,
        );
        wait_until(
            &format!("collector {} to listen", self.name),
            Duration::from_secs(30),
            Duration::from_millis(20),
            || {
                fs::read_to_string(&log).map_or(0, |t| t.matches("collector listening").count())
                    > before
            },
        );
        self.proc = Some(p);
    }

    fn kill9(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill9();
        }
    }

    fn stop(&mut self) {
        if let Some(p) = self.proc.take() {
            assert!(
                p.terminate(Duration::from_secs(30)),
                "collector {} stops cleanly",
                self.name
            );
        }
    }

    /// Its durable commits (the process must not run).
    fn commits(&self, w: &World, stream: &str) -> Vec<CommitRow> {
        assert!(self.proc.is_none());
        w.collector_commits(&self.cfg, stream)
    }
}

/// The extractor's checkpoint of `stream` in `dir` (the stream's: what the policy protects;
/// a collector's own under `collectors/<name>`).
fn checkpoint_in(dir: &Path, stream: StreamId) -> Option<(StreamPos, Option<CommitMark>)> {
    checkpoint::list(dir)
        .ok()?
        .into_iter()
        .find(|c| c.stream == stream)
        .map(|c| (c.pos, c.last_commit))
}

fn pos_of(c: Option<(StreamPos, Option<CommitMark>)>) -> StreamPos {
    c.map(|c| c.0).unwrap_or_default()
}

#[test]
fn majority_of_three_collectors_on_separate_hosts_cut_killed_and_two_down() {
    init_logs();
    let Some(()) = redovault_drill::servers::need(
        redovault_drill::servers::on_path("radosgw"),
        "no Ceph radosgw to run on the LAN's S3 host",
    ) else {
        return;
    };
    let Some(lan) = Lan::new(&[
        ("db", "10.213.0.1"),
        ("s3", "10.213.0.5"),
        ("c1", COLLECTORS[0].1),
        ("c2", COLLECTORS[1].1),
        ("c3", COLLECTORS[2].1),
    ]) else {
        return;
    };
    let w = World::new(3);
    let ceph = LanCeph::start(&lan, "s3", &w.path("ceph"));
    let team = RecoveryTeam::new(&w);
    let mut hosts: Vec<Host> = COLLECTORS
        .iter()
        .map(|(name, addr)| Host {
            name,
            cfg: collector_config(&w, &ceph, &team, name, addr),
            proc: None,
        })
        .collect();
    for h in &mut hosts {
        h.start(&lan, &w, &ceph);
    }
    let items: String = COLLECTORS
        .iter()
        .map(|(n, a)| w.collector_item(n, &format!("{a}:{LINK_PORT}")))
        .collect();
    let ecfg = w.extractor_config_to(&items, "");
    let text = fs::read_to_string(&ecfg).unwrap();
    let text = text
        .replace("[link]\n", "[link]\nack = \"majority\"\n")
        .replace(
            &format!("metrics_listen = \"127.0.0.1:{}\"", w.extractor_metrics),
            &format!("metrics_listen = \"{METRICS}\""),
        );
    fs::write(&ecfg, text).unwrap();
    // 512 KiB logs at 128 KiB/s: a switch every 4 s, each online log reused every 12 s.
    let mut sim = w.sim_config(512 << 10, 128 << 10);
    let (sid, stream) = own_stream(&mut sim);
    let db = LiveDb::start(sim);
    let extractor = lan.spawn(
        "db",
        "extractor",
        &bins().extractor,
        &["--config", ecfg.to_str().unwrap()],
        &[],
        &w.path("extractor.log"),
    );
    let state = w.path("extractor-state");
    let own = |name: &str| state.join("collectors").join(name);
    let metric = |name: &str| {
        lan.scrape("db", METRICS)
            .get(&format!(
                "redovault_extractor_{name}{{stream=\"{stream}\"}}"
            ))
            .copied()
    };
    wait_until(
        "redo protected",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || checkpoint_in(&state, sid).is_some_and(|c| c.1.is_some()),
    );
    assert_eq!(metric("collectors_required"), Some(2.0));

    // Every commit the extractor reports as protected, sampled all along.
    let protected: Arc<Mutex<Vec<CommitMark>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (protected, stop, state) = (protected.clone(), stop.clone(), state.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((_, Some(c))) = checkpoint_in(&state, sid) {
                    let mut v = protected.lock().unwrap();
                    if v.last() != Some(&c) {
                        v.push(c);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // 1. c1 cut off for 30 s: protection goes on with c2 and c3.
    lan.cut("c1", true);
    let cut_at = pos_of(checkpoint_in(&state, sid));
    std::thread::sleep(Duration::from_secs(10));
    let c1_cut = pos_of(checkpoint_in(&own("c1"), sid));
    assert_eq!(
        metric("collectors_up"),
        Some(2.0),
        "c1's session ended (heartbeats)"
    );
    assert_eq!(metric("protection_below_policy"), Some(0.0));
    std::thread::sleep(Duration::from_secs(20));
    let during = pos_of(checkpoint_in(&state, sid));
    assert!(
        during > cut_at,
        "protection went on during the cut: {cut_at} -> {during}"
    );
    assert_eq!(
        pos_of(checkpoint_in(&own("c1"), sid)),
        c1_cut,
        "nothing reached c1 during the cut"
    );
    assert!(
        during.seq.0 >= c1_cut.seq.0 + 3,
        "the online logs were reused during the cut"
    );
    lan.cut("c1", false);
    wait_until(
        "c1 to catch up",
        Duration::from_secs(90),
        Duration::from_millis(200),
        || pos_of(checkpoint_in(&own("c1"), sid)) >= during,
    );

    // 2. c3 killed at random moments: what the extractor saw acknowledged is in its store.
    let mut rng = rand::rngs::StdRng::seed_from_u64(crash_seed());
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..=1500)));
        hosts[2].kill9();
        let acked = checkpoint_in(&own("c3"), sid);
        if let Some((_, Some(c))) = acked {
            let held = hosts[2].commits(&w, &stream);
            assert!(
                held.iter()
                    .any(|r| r.scn == c.scn.0 && r.xid == c.xid.to_string()),
                "c3 acknowledged commit {} (SCN {}) and does not hold it after kill -9",
                c.xid,
                c.scn
            );
        }
        hosts[2].start(&lan, &w, &ceph);
    }

    // 3. Two of three down: below policy, the checkpoint stops, c1 still gets redo.
    hosts[1].kill9();
    hosts[2].kill9();
    wait_until(
        "protection below policy",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || metric("protection_below_policy") == Some(1.0),
    );
    // The last acknowledgements of c2 and c3 may still be on their way to the file (it is
    // written at most every 100 ms); from then on it must not move.
    std::thread::sleep(Duration::from_secs(1));
    let frozen = checkpoint_in(&state, sid);
    let c1_then = pos_of(checkpoint_in(&own("c1"), sid));
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        checkpoint_in(&state, sid),
        frozen,
        "the checkpoint stopped below policy"
    );
    assert!(
        pos_of(checkpoint_in(&own("c1"), sid)) > c1_then,
        "shipping went on to c1"
    );
    let log = fs::read_to_string(w.path("extractor.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("protection below policy") && l.contains("c2") && l.contains("c3")),
        "the extractor logs protection below policy naming the collectors down"
    );
    // `check` on the database host says so, naming each collector's copy.
    let ecfg_s = ecfg.to_str().unwrap();
    let (code, out) = lan.output("db", &bins().extractor, &["check", "--config", ecfg_s]);
    assert_eq!(code, 1, "check fails below policy:\n{out}");
    assert!(out.contains("PROTECTION BELOW POLICY"), "{out}");
    assert!(out.contains("1 of 3 collectors up"), "{out}");
    for (name, addr) in COLLECTORS {
        assert!(
            out.contains(&format!(
                "collector {name} ({addr}:{LINK_PORT}): acknowledged"
            )),
            "{out}"
        );
    }
    // Every commit ever reported as protected is in at least two stores.
    hosts[0].stop();
    let stores: Vec<BTreeSet<(String, u64)>> = hosts
        .iter()
        .map(|h| {
            h.commits(&w, &stream)
                .into_iter()
                .map(|r| (r.xid, r.scn))
                .collect()
        })
        .collect();
    let reported = protected.lock().unwrap().clone();
    assert!(
        reported.len() >= 20,
        "protected commits sampled: {}",
        reported.len()
    );
    for c in &reported {
        let key = (c.xid.to_string(), c.scn.0);
        let copies = stores.iter().filter(|s| s.contains(&key)).count();
        assert!(
            copies >= 2,
            "protected commit {} (SCN {}) is in {copies} store(s)",
            c.xid,
            c.scn
        );
    }

    // 4. All back: the policy holds again, every store gets every commit.
    for h in &mut hosts {
        h.start(&lan, &w, &ceph);
    }
    wait_until(
        "protection restored",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || metric("protection_below_policy") == Some(0.0),
    );
    let (code, out) = lan.output("db", &bins().extractor, &["check", "--config", ecfg_s]);
    assert_eq!(code, 0, "check passes once the policy holds:\n{out}");
    assert!(out.contains("the ack policy holds"), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    db.stop();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let journal = w.journal();
    let last = journal
        .iter()
        .rev()
        .find(|e| !e.rollback)
        .expect("a commit")
        .scn;
    for (name, _) in COLLECTORS {
        wait_until(
            &format!("{name} to hold the last commit"),
            Duration::from_secs(120),
            Duration::from_millis(200),
            || {
                checkpoint_in(&own(name), sid)
                    .and_then(|c| c.1)
                    .is_some_and(|c| c.scn.0 == last)
            },
        );
    }
    assert!(log_has(
        &w.path("extractor.log"),
        "protection meets the ack policy again"
    ));
    assert!(extractor.terminate(Duration::from_secs(20)));
    for h in &mut hosts {
        h.stop();
        let n = assert_same_commits(&h.commits(&w, &stream), &journal);
        assert!(n > 500, "{}: {n} commits", h.name);
    }

    // 5. Recovery reads every copy: the three stores and the three WORM prefixes (each
    //    collector sealed its own at its stop), from a host that reaches the S3 host.
    let vcfg = verifier_config(&w, &ceph);
    let dest = w.path("restore");
    let (code, out) = lan.output(
        "db",
        Path::new("/usr/bin/env"),
        &[
            &format!("AWS_ACCESS_KEY_ID={}", ceph.env["AWS_ACCESS_KEY_ID"]),
            &format!(
                "AWS_SECRET_ACCESS_KEY={}",
                ceph.env["AWS_SECRET_ACCESS_KEY"]
            ),
            bins().verifier.to_str().unwrap(),
            "restore",
            "online",
            "--config",
            vcfg.to_str().unwrap(),
            "--recovery-key",
            team.private.to_str().unwrap(),
            "--stream",
            &stream,
            "--dest",
            dest.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "restore online:\n{out}");
    let records: serde_json::Value =
        serde_json::from_slice(&fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
    let record = &records["threads"][0];
    // Every copy agrees; the [store] prefix itself holds none (absent).
    let status: Vec<(String, String)> = record["copies"]
        .as_array()
        .expect("copies")
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap().to_string();
            (name, c["status"].as_str().unwrap().to_string())
        })
        .collect();
    let mut want: Vec<(String, String)> = COLLECTORS
        .iter()
        .map(|(n, _)| (n.to_string(), "agrees".to_string()))
        .collect();
    want.push(("worm:replicated".into(), "absent".into()));
    want.extend(
        COLLECTORS
            .iter()
            .map(|(n, _)| (format!("worm:replicated-{n}"), "agrees".to_string())),
    );
    assert_eq!(status, want, "{out}");
    assert_eq!(
        record["last_commit_scn"].as_u64(),
        Some(last),
        "rebuilt to the last commit: {record}"
    );
}

/// The verifier's configuration: the LAN's S3 server, the three collectors, each with the
/// WORM prefix it seals under.
fn verifier_config(w: &World, ceph: &LanCeph) -> PathBuf {
    let collectors: String = COLLECTORS
        .iter()
        .map(|(name, _)| {
            format!(
                "[[collector]]\nname = \"{name}\"\ndir = \"{}\"\nkey_file = \"{}\"\nworm_prefix = \"replicated-{name}\"\n",
                w.path(&format!("store-{name}")).display(),
                w.path(&format!("{name}.keys")).display()
            )
        })
        .collect();
    let p = w.path("verifier.toml");
    let text = format!(
        r#"[store]
kind = "s3"
endpoint = "{endpoint}"
bucket = "{bucket}"
region = "{region}"
path_style = true
ca_file = "{ca}"
prefix = "replicated"
[verify]
lock_mode = "compliance"
min_retention = "1d"
deep = "off"
state_dir = "{state}"
{collectors}
[telemetry]
metrics_listen = ""
"#,
        endpoint = ceph.endpoint,
        bucket = ceph.env["REDOVAULT_TEST_S3_DRILL_BUCKET"],
        region = ceph.env["REDOVAULT_TEST_S3_REGION"],
        ca = ceph.ca.display(),
        state = w.path("verifier-state").display(),
    );
    fs::write(&p, text).unwrap();
    p
}

fn log_has(path: &Path, what: &str) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.contains(what))
}
