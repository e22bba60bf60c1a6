//! The verifier on the real S3 server: a clean archive verifies clean (exit 0) and restores
//! byte for byte after the archive directory is wiped; then each kind of tampering is made
//! and must be detected and named: a manifest entry edited, removed or reordered (the local
//! copy), a forged manifest segment in WORM, an object replaced by a newer version under its
//! key, a collector segment with a flipped bit, a missing sequence, and an archived log
//! altered before upload (it differs from the redo the collector received).
//!
//! Each archive is made as in production: the simulated Oracle writes its logs; the
//! extractor's tailer reads them and the collector's store keeps them (AES-256-GCM); `redovault
//! push` ships the archived logs to WORM and seals the manifest.

use redovault_redo::position::ResetlogsId;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::store::LockMode;
use redovault::store::s3::S3Store;
use redovault::wire::{StreamId, StreamPos};
use redovault_collector::store::Store;
use redovault_drill::admin::AdminRequests as _;
use redovault_drill::simulate::SimConfig;
use redovault_drill::testserver::TestServer;
use redovault_extractor::config::{LogSources, TailConfig};
use redovault_extractor::tail::Tailer;
use redovault_redo::position::{LogSeq, ThreadId};
use redovault_verifier::incremental::Incremental;
use redovault_verifier::objects::Policy;
use redovault_verifier::report::{AuditReport, FindingKind, Verdict};
use redovault_verifier::restore::{RestoreItem, restore_archive};
use redovault_verifier::verify::{CollectorSource, DeepMode, VerifyOptions, verify};

use crate::netkit::run_with_keys;
use crate::store::ceph;

const RV: &str = env!("CARGO_BIN_EXE_redovault");

fn keys() -> KeyRing {
    let id = KeyId::parse("k1").unwrap();
    KeyRing::from_keys(id.clone(), [(id, [7; 32])]).unwrap()
}

/// One archive: the simulated database, the collector, the watcher's state, a WORM prefix.
struct Archive {
    dir: tempfile::TempDir,
    server: TestServer,
    prefix: String,
    /// The archived logs as the simulator wrote them (path, bytes), in sequence order.
    originals: Vec<(PathBuf, Vec<u8>)>,
    stream: StreamId,
}

impl Archive {
    fn sim(&self) -> PathBuf {
        self.dir.path().join("oracle")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("watcher-state")
    }
    fn collector(&self) -> PathBuf {
        self.dir.path().join("collector")
    }
    fn store(&self) -> Arc<S3Store> {
        Arc::new(S3Store::new(self.server.config(&self.server.bucket)).unwrap())
    }

    fn options(
        &self,
        local_manifest: Option<PathBuf>,
        collector: Option<PathBuf>,
    ) -> VerifyOptions {
        VerifyOptions {
            target: format!("s3://{}/{}", self.server.bucket, self.prefix),
            prefix: self.prefix.clone(),
            local_manifest,
            policy: Policy {
                lock_mode: Some(LockMode::Compliance),
                min_retention: Duration::from_secs(3600),
            },
            deep: DeepMode::All,
            parallel: 4,
            collectors: collector
                .map(|dir| CollectorSource {
                    name: "collector".into(),
                    dir,
                    keys: keys(),
                })
                .into_iter()
                .collect(),
            acknowledged: Vec::new(),
            state_dir: None,
            worm_prefix: None,
            worm_copies: Vec::new(),
            recovery_key: None,
            incremental: Default::default(),
        }
    }

    async fn verify(&self, local: Option<PathBuf>, collector: Option<PathBuf>) -> AuditReport {
        verify(self.store(), &self.options(local, collector)).await
    }
}

/// Simulates a database, streams its redo into a collector store, lets `tamper` change the
/// archive directory (the database host), then pushes every archived log there to WORM.
fn build(name: &str, seed: u64, tamper: impl FnOnce(&[PathBuf])) -> Option<Archive> {
    let server = ceph()?;
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("oracle");
    let mut cfg = SimConfig::new(&sim_dir);
    cfg.log_size = 96 * 1024;
    cfg.transactions = Some(500);
    cfg.seed = seed;
    cfg.archive_current = true;
    let stream = StreamId {
        db_id: cfg.db_id,
        resetlogs_id: ResetlogsId(cfg.resetlogs_id()),
        thread: ThreadId(1),
    };
    let first_seq = cfg.start_sequence;
    let summary = redovault_drill::simulate::run(cfg).unwrap();
    assert!(summary.archived.len() >= 5, "{summary:?}");
    // In the order written: sequence order (one thread).
    let archived = summary.archived.clone();
    let originals: Vec<(PathBuf, Vec<u8>)> = summary
        .archived
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    let last_seq = first_seq + summary.archived.len() as u32 - 1;

    // The extractor's tailer reads the logs; the collector's store keeps them.
    let mut store = Store::open(&dir.path().join("collector"), keys()).unwrap();
    stream_thread(&mut store, &sim_dir, stream, first_seq, last_seq);
    drop(store);

    tamper(&archived);

    let prefix = format!("{name}-{:016x}", rand::random::<u64>());
    let files: Vec<PathBuf> = archived.iter().filter(|p| p.exists()).cloned().collect();
    push(&server, dir.path(), &prefix, &files);
    Some(Archive {
        dir,
        server,
        prefix,
        originals,
        stream,
    })
}

/// `redovault push` of `files` to WORM under `prefix`, with the watcher state of `dir`: the
/// archived logs shipped and the manifest sealed.
fn push(server: &TestServer, dir: &Path, prefix: &str, files: &[PathBuf]) {
    let out = Command::new(RV)
        .arg("push")
        .args([
            "--endpoint",
            server.endpoint.as_str(),
            "--bucket",
            &server.bucket,
        ])
        .args([
            "--prefix",
            prefix,
            "--region",
            &server.region,
            "--path-style",
        ])
        .arg("--ca-file")
        .arg(&server.ca)
        .args(["--retention", "2h", "--state-dir"])
        .arg(dir.join("watcher-state"))
        .args(files)
        .env("AWS_ACCESS_KEY_ID", &server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "push: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kinds(r: &AuditReport) -> Vec<FindingKind> {
    r.findings.iter().map(|f| f.kind).collect()
}

/// Copies a directory tree (the local manifest, the collector) so a tamper stays local to
/// one check.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
            let mut perm = std::fs::metadata(&dst).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&dst, perm).unwrap();
        }
    }
}

/// The local manifest's lines (closed segments, then the open one) and the file of each.
fn manifest_lines(dir: &Path) -> Vec<(PathBuf, usize, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files.push(dir.join("open.jsonl"));
    let mut out = Vec::new();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            for (i, l) in text.lines().enumerate() {
                out.push((f.clone(), i, l.to_string()));
            }
        }
    }
    out
}

/// Rewrites the local manifest copy in `dir` with `edit` applied to its list of lines.
fn rewrite_manifest(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let lines = manifest_lines(dir);
    let mut texts: Vec<String> = lines.iter().map(|(_, _, l)| l.clone()).collect();
    edit(&mut texts);
    // Put everything in the first file, empty the others: the audit reads them in order.
    let files: Vec<PathBuf> = {
        let mut f: Vec<PathBuf> = lines.iter().map(|(p, _, _)| p.clone()).collect();
        f.dedup();
        f
    };
    for (i, f) in files.iter().enumerate() {
        let body = if i == 0 {
            texts.iter().map(|l| format!("{l}\n")).collect::<String>()
        } else {
            String::new()
        };
        std::fs::write(f, body).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_archive_restores_then_every_tampering_is_named() {
    let Some(a) = build("verify-clean", 31, |_| {}) else {
        return;
    };
    let local = a.state().join("manifest");
    let collector = a.collector();

    // Clean: exit 0, everything deep-verified and cross-checked with the stream.
    let r = a.verify(Some(local.clone()), Some(collector.clone())).await;
    assert_eq!(r.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!(r.verdict.exit_code(), 0);
    assert_eq!(r.summary.manifest_entries as usize, a.originals.len());
    assert_eq!(r.summary.objects_deep_verified as usize, a.originals.len());
    assert_eq!(
        r.summary.logs_cross_checked as usize,
        a.originals.len(),
        "every log compared with the streamed redo"
    );
    assert!(r.summary.segment_chunks_checked > 0);

    // Restore after the archive directory is wiped: every file byte-identical.
    std::fs::remove_dir_all(a.sim().join("archive")).unwrap();
    let entries = redovault::manifest::read_entries(&local).unwrap();
    let items: Vec<RestoreItem> = entries.iter().map(RestoreItem::from).collect();
    let dest = a.dir.path().join("restored");
    let s = restore_archive(a.store(), &items, &dest, 4, |_| {})
        .await
        .unwrap();
    assert_eq!(s.restored, a.originals.len());
    for (path, bytes) in &a.originals {
        let got = std::fs::read(dest.join(path.file_name().unwrap())).unwrap();
        assert!(got == *bytes, "{} differs after restore", path.display());
    }

    // A manifest entry edited, removed, reordered (the database host's local copy).
    for (what, edit, kind) in [
        (
            "edited",
            Box::new(|l: &mut Vec<String>| l[2] = l[2].replacen("\"size\":", "\"size\":1", 1))
                as Box<dyn FnOnce(&mut Vec<String>)>,
            FindingKind::ManifestEntryEdited,
        ),
        (
            "removed",
            Box::new(|l: &mut Vec<String>| {
                l.remove(2);
            }),
            FindingKind::ManifestEntryRemoved,
        ),
        (
            "reordered",
            Box::new(|l: &mut Vec<String>| l.swap(1, 2)),
            FindingKind::ManifestEntryReordered,
        ),
    ] {
        let copy = a.dir.path().join(format!("manifest-{what}"));
        copy_tree(&local, &copy);
        rewrite_manifest(&copy, edit);
        let r = a.verify(Some(copy), None).await;
        assert_eq!(r.verdict.exit_code(), 1, "{what}: {}", r.to_text());
        let hit = r.findings.iter().find(|f| f.kind == kind);
        let hit = hit.unwrap_or_else(|| panic!("{what}: {kind:?} not found in {:?}", kinds(&r)));
        assert!(
            hit.subject.contains("manifest entr"),
            "{what}: {}",
            hit.subject
        );
        assert!(
            hit.entry.is_some_and(|e| (2..=3).contains(&e)),
            "{what}: names entry {:?}",
            hit.entry
        );
    }

    // A collector segment with a flipped bit.
    let coll_copy = a.dir.path().join("collector-flipped");
    copy_tree(&collector, &coll_copy);
    let seg = std::fs::read_dir(coll_copy.join("streams").join(a.stream.to_string()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg"))
        .min()
        .expect("a segment file");
    let mut b = std::fs::read(&seg).unwrap();
    let at = b.len() / 2;
    b[at] ^= 0x10;
    std::fs::write(&seg, b).unwrap();
    let r = a.verify(None, Some(coll_copy)).await;
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SegmentChunkCorrupt)
        .unwrap_or_else(|| panic!("flipped bit not found: {}", r.to_text()));
    assert!(
        f.detail.contains(&seg.display().to_string()) || f.subject.contains("seg"),
        "names the segment: {f:?}"
    );

    // An object replaced by a newer version under the same key (the put-only credentials can
    // do that in a versioned bucket; the locked original stays).
    let victim = &entries[1];
    a.store()
        .admin()
        .put_plain(
            &victim.object_key,
            bytes::Bytes::from_static(b"not a redo log"),
        )
        .await
        .unwrap();
    let r = a.verify(None, None).await;
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ObjectReplaced)
        .unwrap_or_else(|| panic!("replacement not found: {}", r.to_text()));
    assert_eq!(f.entry, Some(victim.index));
    // The recorded version is intact: restore still gets the original bytes.
    let dest2 = a.dir.path().join("restored-after-replace");
    restore_archive(a.store(), &items[1..2], &dest2, 1, |_| {})
        .await
        .unwrap();

    // A forged manifest segment in WORM (a second history for the same entries).
    let lines = manifest_lines(&local);
    let mut forged: String = lines.iter().map(|(_, _, l)| format!("{l}\n")).collect();
    forged = forged.replacen("\"size\":", "\"size\":9", 1);
    let sha = redovault::manifest::Sha256Digest::of(forged.as_bytes());
    let key = format!(
        "{}/manifest/{:012}-{:012}-{sha}.jsonl",
        a.prefix,
        1,
        lines.len()
    );
    a.store()
        .admin()
        .put_plain(&key, bytes::Bytes::from(forged))
        .await
        .unwrap();
    let r = a.verify(None, None).await;
    assert!(
        kinds(&r).contains(&FindingKind::ManifestSealMismatch),
        "forged segment not found: {}",
        r.to_text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_sequence_and_log_altered_before_upload_are_named() {
    let mut altered_name = String::new();
    let mut missing_name = String::new();
    let Some(a) = build("verify-tampered", 47, |archived| {
        // Sequence 3 never reaches WORM.
        missing_name = archived[2]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::remove_file(&archived[2]).unwrap();
        // Sequence 2 is altered on the database host before upload, checksums fixed so it
        // still looks valid to the watcher.
        let p = &archived[1];
        altered_name = p.file_name().unwrap().to_string_lossy().into_owned();
        let mut b = std::fs::read(p).unwrap();
        let bs = 512;
        let block = 6;
        let at = block * bs + 300;
        b[at] ^= 0x01;
        redovault_redo::checksum::set_checksum(&mut b[block * bs..(block + 1) * bs], 14);
        let mut perm = std::fs::metadata(p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(p, perm).unwrap();
        std::fs::write(p, b).unwrap();
    }) else {
        return;
    };
    let r = a
        .verify(Some(a.state().join("manifest")), Some(a.collector()))
        .await;
    assert_eq!(r.verdict.exit_code(), 1, "{}", r.to_text());
    let gap = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SequenceGap)
        .unwrap_or_else(|| panic!("gap not found: {}", r.to_text()));
    assert!(gap.subject.contains("sequence"), "{}", gap.subject);
    let diff = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ArchiveDiffersFromStream)
        .unwrap_or_else(|| panic!("altered log not found: {}", r.to_text()));
    assert!(diff.subject.contains(&altered_name), "{}", diff.subject);
    assert!(diff.detail.contains("block 6"), "{}", diff.detail);
    assert!(!missing_name.is_empty());
    // The timeline shows the gap and the tampered log.
    let cells: Vec<_> = r.threads[0].cells.iter().map(|c| c.state).collect();
    assert!(cells.contains(&redovault_verifier::report::CellState::Gap));
    assert!(cells.contains(&redovault_verifier::report::CellState::Tampered));
}

/// The command line end to end: `redovault verify` (through the root binary) exits 0 on a
/// clean archive and writes the HTML report; `restore archive`, `restore online` (the
/// last-commit log rebuilt read-only from the collector's segments) and `restore script`
/// produce verified files and a script stating the last recoverable commit; a replaced object
/// then makes `verify` exit 1.
#[tokio::test(flavor = "multi_thread")]
async fn command_line_verify_and_restore() {
    let Some(a) = build("verify-cli", 53, |_| {}) else {
        return;
    };
    let bins = crate::netkit::bins();
    let t = &a.server;
    let key_file = a.dir.path().join("collector.keys");
    std::fs::write(
        &key_file,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            hex::encode([7u8; 32])
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = a.dir.path().join("verifier.toml");
    std::fs::write(
        &config,
        format!(
            "{}[verify]\nlocal_manifest = \"{}\"\n\
             min_retention = \"1h\"\ndeep = \"all\"\nstate_dir = \"{}\"\n\
             [collector]\ndir = \"{}\"\nkey_file = \"{}\"\n",
            crate::netkit::verifier_store_section(t, &a.prefix),
            a.state().join("manifest").display(),
            a.dir.path().join("verifier-state").display(),
            a.collector().display(),
            key_file.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| run_with_keys(&bins.redovault, args, &t.access_key, &t.secret_key);
    let cfg = config.to_str().unwrap();
    let html = a.dir.path().join("audit.html");
    let (code, out) = run(&["verify", "--config", cfg, "--html", html.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("redovault verify: CLEAN"), "{out}");
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("Timeline per thread")
    );

    let dest = a.dir.path().join("restore");
    let d = dest.to_str().unwrap();
    let (code, out) = run(&["restore", "archive", "--config", cfg, "--dest", d]);
    assert_eq!(code, Some(0), "{out}");
    for (path, bytes) in &a.originals {
        assert!(std::fs::read(dest.join(path.file_name().unwrap())).unwrap() == *bytes);
    }
    let (code, out) = run(&["restore", "online", "--config", cfg, "--dest", d]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("sha256"), "{out}");
    let (code, out) = run(&["restore", "script", "--dest", d]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("last commit: SCN"), "{out}");
    let sql = std::fs::read_to_string(dest.join("recover.sql")).unwrap();
    assert!(sql.contains("USING BACKUP CONTROLFILE"), "{sql}");
    assert!(sql.contains("RECOVER LOGFILE"), "{sql}");

    // Tamper, and the same command exits 1.
    let entries = redovault::manifest::read_entries(&a.state().join("manifest")).unwrap();
    a.store()
        .admin()
        .put_plain(&entries[0].object_key, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    let (code, out) = run(&["verify", "--config", cfg, "--json"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("\"object_replaced\""), "{out}");

    // The daemon: runs on its schedule, serves metrics, sends the finding to the alert hook.
    let port = crate::netkit::free_port();
    let alerts = a.dir.path().join("alerts.jsonl");
    let daemon_cfg = a.dir.path().join("verifier-daemon.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[verify]\n", "[verify]\ninterval = \"1s\"\n")
        + &format!(
            "[telemetry]\nmetrics_listen = \"127.0.0.1:{port}\"\n\
         [alert]\ncommand = [\"sh\", \"-c\", \"cat >> {}\"]\n",
            alerts.display()
        );
    std::fs::write(&daemon_cfg, text).unwrap();
    let mut child = Command::new(&bins.redovault)
        .args(["verify", "--daemon", "--deep", "off", "--config"])
        .arg(&daemon_cfg)
        .env("AWS_ACCESS_KEY_ID", &t.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &t.secret_key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let scrape = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut metrics = String::new();
    loop {
        if let Some(m) = scrape() {
            metrics = m;
        }
        let runs = metrics
            .lines()
            .find(|l| l.starts_with("redovault_verifier_runs_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let alerted = std::fs::read_to_string(&alerts)
            .is_ok_and(|t| t.contains("verify_findings") && t.contains("object_replaced"));
        if runs >= 2.0 && alerted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "daemon: runs {runs}, alerted {alerted}\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        metrics.contains("redovault_verifier_last_run_exit_code 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redovault_verifier_findings_total{kind=\"object_replaced\"}"),
        "{metrics}"
    );
    // Manifest growth, judged here off the database host: every entry is sealed in WORM,
    // the newest one's time is its shipped_at, and with no growth since the daemon started
    // the last growth is that entry's time (what RedovaultManifestNotGrowing compares).
    let gauge = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name}:\n{metrics}"))
    };
    let newest = chrono::DateTime::parse_from_rfc3339(&entries.last().unwrap().shipped_at)
        .unwrap()
        .timestamp_millis() as f64
        / 1000.0;
    assert_eq!(
        gauge("redovault_verifier_manifest_sealed_entries"),
        entries.len() as f64
    );
    assert_eq!(
        gauge("redovault_verifier_manifest_newest_entry_timestamp_seconds"),
        newest
    );
    assert_eq!(
        gauge("redovault_verifier_manifest_last_growth_timestamp_seconds"),
        newest
    );
    assert_eq!(gauge("redovault_verifier_interval_seconds"), 1.0);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let st = child.wait().unwrap();
    assert!(st.code().is_some(), "the daemon stops on SIGTERM: {st:?}");
}

/// Streams one thread's archived logs `first..=last` into the collector's store, as the
/// extractor would have.
fn stream_thread(store: &mut Store, sim_dir: &Path, stream: StreamId, first: u32, last: u32) {
    let sources = LogSources {
        groups: Vec::new(),
        archive_dirs: vec![sim_dir.join("archive")],
    };
    let mut tailer = Tailer::new(
        &sources,
        TailConfig::default(),
        stream,
        StreamPos {
            seq: LogSeq(first),
            offset: 0,
        },
    )
    .unwrap();
    let done = StreamPos {
        seq: LogSeq(last + 1),
        offset: 0,
    };
    let mut idle = 0;
    while tailer.position() < done && idle < 200 {
        match tailer.poll_chunk().unwrap() {
            Some(c) => {
                idle = 0;
                store
                    .append(stream, c.pos, &c.bytes, &c.commits, c.log_end.is_some())
                    .unwrap();
                store.sync().unwrap();
            }
            None => {
                idle += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    assert!(
        tailer.position() >= done,
        "{stream} stopped at {}",
        tailer.position()
    );
}

/// RAC through the command line: `restore online` run for thread 1, then for thread 2, into
/// one DEST keeps both threads' records (as one run without `--thread` does), and `restore script` writes one pair of scripts that
/// carries both online logs: RMAN catalogs the directory and stops before them (`UNTIL SCN`
/// the lowest end of the threads' archived logs, no file list), SQL*Plus applies each
/// thread's online log once, under `WHENEVER SQLERROR CONTINUE`, to the earliest of the
/// threads' last commits, and opens last. No Oracle instance runs here: the scripts'
/// structure is what is checked. The archived logs are the simulator's own files (their
/// record is written from their headers: `restore archive` from WORM is tested above).
#[test]
fn restore_script_every_thread_of_a_rac_database() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().join("oracle");
    let mut cfg = SimConfig::new(&sim_dir);
    cfg.threads = 2;
    cfg.log_size = 96 * 1024;
    cfg.transactions = Some(800);
    cfg.seed = 91;
    cfg.archive_current = true;
    let (db_id, resetlogs_id) = (cfg.db_id, cfg.resetlogs_id());
    let summary = redovault_drill::simulate::run(cfg).unwrap();
    // (thread, sequence, first SCN, next SCN, path) of every archived log, from its header.
    let logs: Vec<(u16, u32, u64, u64, PathBuf)> = summary
        .archived
        .iter()
        .map(|p| {
            let h = redovault::inspect::inspect_file(p).unwrap().header;
            (
                h.thread.0,
                h.sequence.0,
                h.first_scn.unwrap().0,
                h.next_scn.unwrap().0,
                p.clone(),
            )
        })
        .collect();
    let seqs = |t: u16| -> (u32, u32) {
        let s: Vec<u32> = logs.iter().filter(|l| l.0 == t).map(|l| l.1).collect();
        (*s.iter().min().unwrap(), *s.iter().max().unwrap())
    };
    for t in [1, 2] {
        let (lo, hi) = seqs(t);
        assert!(hi >= lo + 2, "thread {t}: sequences {lo}..={hi}");
    }
    let collector = dir.path().join("collector");
    let mut store = Store::open(&collector, keys()).unwrap();
    for t in [1, 2] {
        let (lo, hi) = seqs(t);
        let stream = StreamId {
            db_id,
            resetlogs_id: ResetlogsId(resetlogs_id),
            thread: ThreadId(t),
        };
        stream_thread(&mut store, &sim_dir, stream, lo, hi);
    }
    drop(store);
    let key_file = dir.path().join("collector.keys");
    std::fs::write(
        &key_file,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            hex::encode([7u8; 32])
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Each thread's last log is the one `restore online` rebuilds: the archive record lists
    // the others.
    let dest = dir.path().join("restore");
    std::fs::create_dir_all(&dest).unwrap();
    let archived: Vec<&(u16, u32, u64, u64, PathBuf)> =
        logs.iter().filter(|l| l.1 < seqs(l.0).1).collect();
    let record = serde_json::json!({
        "restored_at": "2026-12-06T09:00:00Z",
        "files": archived.iter().map(|(t, s, f, n, p)| serde_json::json!({
            "path": p, "thread": t, "sequence": s, "first_scn": f, "next_scn": n,
            "sha256": hex::encode([0u8; 32]),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        dest.join("restore-archive.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();

    let verifier = &crate::netkit::bins().verifier;
    let run = |args: &[&str]| run_with_keys(verifier, args, "", "");
    let d = dest.to_str().unwrap();
    for t in ["1", "2"] {
        let (code, out) = run(&[
            "restore",
            "online",
            "--collector-dir",
            collector.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--dest",
            d,
            "--pad",
            "--thread",
            t,
        ]);
        assert_eq!(code, Some(0), "thread {t}: {out}");
        assert!(
            out.contains(&format!("thread {t}: last commit SCN ")),
            "the summary names the thread's last commit: {out}"
        );
    }
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("restore-online.json")).unwrap()).unwrap();
    let threads = records["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "both threads recorded: {records}");
    let mut last_commits = Vec::new();
    let mut online_paths = Vec::new();
    for (r, t) in threads.iter().zip([1u16, 2]) {
        assert_eq!(r["thread"].as_u64(), Some(u64::from(t)), "{r}");
        assert_eq!(r["sequence"].as_u64(), Some(u64::from(seqs(t).1)), "{r}");
        assert_eq!(
            r["stream"].as_str(),
            Some(format!("db{db_id}-rl{resetlogs_id}-t{t}").as_str())
        );
        last_commits.push(r["last_commit_scn"].as_u64().unwrap());
        online_paths.push(r["path"].as_str().unwrap().to_string());
    }

    // Once for all: without --thread, one run rebuilds and records every thread; --json
    // prints the records of the run (each thread's last commit), the progress on stderr.
    let all = dir.path().join("restore-all");
    let out = std::process::Command::new(verifier)
        .args([
            "restore",
            "online",
            "--collector-dir",
            collector.to_str().unwrap(),
            "--key-file",
            key_file.to_str().unwrap(),
            "--dest",
            all.to_str().unwrap(),
            "--pad",
            "--db-id",
            &db_id.to_string(),
            "--json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json prints JSON ({e}): {stderr}"));
    assert!(
        stderr.contains("2 threads rebuilt: recovery reaches the earliest last commit, SCN "),
        "{stderr}"
    );
    let once: serde_json::Value =
        serde_json::from_slice(&std::fs::read(all.join("restore-online.json")).unwrap()).unwrap();
    assert_eq!(printed["threads"], once["threads"], "{printed}");
    // Another DBID: nothing of this database is rebuilt.
    let (code, out) = run(&[
        "restore",
        "online",
        "--collector-dir",
        collector.to_str().unwrap(),
        "--key-file",
        key_file.to_str().unwrap(),
        "--dest",
        dir.path().join("restore-none").to_str().unwrap(),
        "--db-id",
        &(db_id.0 ^ 1).to_string(),
    ]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("holds no matching stream"), "{out}");
    let strip = |v: &serde_json::Value| -> Vec<(u64, u64, u64)> {
        v["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["thread"].as_u64().unwrap(),
                    r["sequence"].as_u64().unwrap(),
                    r["last_commit_scn"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&once), strip(&records), "{once}");

    let (code, out) = run(&["restore", "script", "--dest", d]);
    assert_eq!(code, Some(0), "{out}");
    let earliest = *last_commits.iter().min().unwrap();
    assert!(
        out.contains(&format!("last commit: SCN {earliest} ")),
        "{out}"
    );
    assert!(out.contains("earliest of 2 threads"), "{out}");
    // Per thread: the last commit it recovers, and what of it lies past the common point.
    for (t, last) in [1, 2].iter().zip(&last_commits) {
        let line = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("thread {t}: to ")))
            .unwrap_or_else(|| panic!("no line for thread {t}: {out}"));
        if *last == earliest {
            assert!(line.contains("nothing of it lost"), "{line}");
        } else {
            assert!(
                line.contains(&format!("through its last commit SCN {last} ")),
                "{line}"
            );
            assert!(line.contains("are not reachable"), "{line}");
        }
    }

    // RMAN: one CATALOG of the directory, no file list, bounded where the first online log
    // begins (the lowest next SCN of the threads' last archived logs).
    let rman = std::fs::read_to_string(dest.join("recover.rman")).unwrap();
    let bound = [1, 2]
        .iter()
        .map(|t| {
            archived
                .iter()
                .filter(|l| l.0 == *t)
                .map(|l| l.3)
                .max()
                .unwrap()
        })
        .min()
        .unwrap();
    let archive_dir = format!("{}/", logs[0].4.parent().unwrap().display());
    assert_eq!(
        rman.matches(&format!("CATALOG START WITH '{archive_dir}' NOPROMPT;"))
            .count(),
        1,
        "{rman}"
    );
    assert!(rman.contains(&format!("SET UNTIL SCN {bound};")), "{rman}");
    assert!(rman.contains("RECOVER DATABASE;"), "{rman}");
    assert!(!rman.contains("OPEN RESETLOGS"), "{rman}");
    for (_, _, _, _, p) in &logs {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(!rman.contains(name), "no file list in RMAN: {name}\n{rman}");
    }

    // SQL*Plus: each thread's online log once, every recovery statement under CONTINUE,
    // EXIT re-armed before the check and the open, the open last.
    let sql = std::fs::read_to_string(dest.join("recover.sql")).unwrap();
    for p in &online_paths {
        assert_eq!(
            sql.matches(&format!("ALTER DATABASE RECOVER LOGFILE '{p}';"))
                .count(),
            1,
            "{p}:\n{sql}"
        );
    }
    assert!(
        sql.contains(&format!(
            "ALTER DATABASE RECOVER DATABASE UNTIL CHANGE {} USING BACKUP CONTROLFILE;",
            earliest + 1
        )),
        "{sql}"
    );
    let mut mode = "";
    let mut order = Vec::new();
    for line in sql.lines().filter(|l| !l.starts_with("--")) {
        if line.starts_with("WHENEVER SQLERROR ") {
            mode = if line.contains("CONTINUE") {
                "continue"
            } else {
                "exit"
            };
        }
        if line.starts_with("ALTER DATABASE RECOVER") {
            assert_eq!(mode, "continue", "{line}:\n{sql}");
            order.push("recover");
        }
        if line.contains("1/0 AS recovery_short_of_target") {
            assert_eq!(mode, "exit", "{sql}");
            order.push("check");
        }
        if line == "ALTER DATABASE OPEN RESETLOGS;" {
            assert_eq!(mode, "exit", "{sql}");
            order.push("open");
        }
    }
    assert_eq!(order.first(), Some(&"recover"), "{sql}");
    assert_eq!(&order[order.len() - 2..], ["check", "open"], "{sql}");
    // Nothing RMAN already applied: no archived log that ends at or before the bound.
    for (_, _, _, next, p) in &logs {
        if *next <= bound {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(!sql.contains(name), "{name} is RMAN's:\n{sql}");
        }
    }
}

/// The watcher's layout: an archived log's key is its SHA-256.
fn archive_key(prefix: &str, bytes: &[u8]) -> String {
    format!(
        "{prefix}/archive/sha256/{}",
        redovault::manifest::Sha256Digest::of(bytes).hex()
    )
}

/// What a restore record says of each file: (sequence, shipped but not yet sealed).
fn restored(dest: &Path) -> Vec<(u64, bool)> {
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("restore-archive.json")).unwrap()).unwrap();
    rec["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["sequence"].as_u64().unwrap(),
                f["shipped_not_sealed"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The seal interval's window: the last logs are shipped into WORM (locked, under their
/// SHA-256) but no sealed manifest lists them when the database host is wiped. `verify`
/// names them (and a hole before them), `restore archive` restores them byte for byte and
/// `restore script` applies them; foreign, non-redo and truncated objects are reported as
/// unreferenced, never restored; the watcher's quarantine is expected.
#[tokio::test(flavor = "multi_thread")]
async fn logs_shipped_since_the_last_seal_are_verified_and_restored_and_strangers_reported() {
    // The last three logs are not pushed (and so not in the sealed manifest).
    let Some(a) = build("unsealed", 61, |archived| {
        for p in &archived[archived.len() - 3..] {
            std::fs::remove_file(p).unwrap();
        }
    }) else {
        return;
    };
    let n = a.originals.len();
    let store = a.store();
    let put = |key: String, bytes: Vec<u8>| {
        let store = Arc::clone(&store);
        async move {
            use redovault::store::ArchiveStore;
            store
                .put_immutable(&key, std::io::Cursor::new(bytes))
                .await
                .unwrap();
        }
    };
    let options = || VerifyOptions {
        deep: DeepMode::Off,
        ..a.options(None, None)
    };
    let seq_of = |i: usize| {
        let h = redovault_redo::FileHeader::parse(&a.originals[i].1).unwrap();
        let b1 = &a.originals[i].1[h.bs()..2 * h.bs()];
        redovault_redo::RedoHeader::parse(b1, h.endian, h.bs() as u64)
            .unwrap()
            .sequence
            .0
    };

    // 1. The watcher shipped the last two (not the one before them) and died before sealing.
    for (p, b) in &a.originals[n - 2..] {
        let _ = p;
        put(archive_key(&a.prefix, b), b.clone()).await;
    }
    let r = verify(a.store(), &options()).await;
    assert_eq!(r.verdict, Verdict::Findings, "{}", r.to_text());
    assert_eq!(r.summary.unsealed_logs, 2, "{}", r.to_text());
    let gap: Vec<_> = r.of_kind(FindingKind::SequenceGap).collect();
    assert_eq!(gap.len(), 1, "{}", r.to_text());
    assert_eq!(
        gap[0].subject,
        format!("thread 1 sequence {}", seq_of(n - 3))
    );
    assert_eq!(r.of_kind(FindingKind::ShippedNotSealed).count(), 2);

    // 2. With the one before them too, the archive is whole: clean, three logs unsealed.
    put(
        archive_key(&a.prefix, &a.originals[n - 3].1),
        a.originals[n - 3].1.clone(),
    )
    .await;
    let r = verify(a.store(), &options()).await;
    assert_eq!(r.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!(
        (r.summary.manifest_entries, r.summary.unsealed_logs),
        ((n - 3) as u64, 3)
    );
    let seqs: Vec<u32> = r.unsealed.iter().map(|u| u.header.sequence).collect();
    assert_eq!(seqs, (n - 3..n).map(seq_of).collect::<Vec<_>>());
    assert!(
        r.to_text()
            .contains("3 archived log(s) shipped but not yet sealed")
    );
    // Deep: each re-hashed against its key.
    let deep = verify(a.store(), &a.options(None, None)).await;
    assert_eq!(deep.verdict, Verdict::Clean, "{}", deep.to_text());
    assert!(
        deep.unsealed
            .iter()
            .all(|u| u.hash_check == redovault_verifier::unsealed::HashCheck::Rehashed)
    );

    // 3. The command line: verify (JSON and HTML), restore archive, restore script.
    let bins = crate::netkit::bins();
    let t = &a.server;
    let config = a.dir.path().join("verifier.toml");
    std::fs::write(
        &config,
        format!(
            "{}[verify]\nmin_retention = \"1h\"\ndeep = \"off\"\nstate_dir = \"{}\"\n",
            crate::netkit::verifier_store_section(t, &a.prefix),
            a.dir.path().join("verifier-state").display(),
        ),
    )
    .unwrap();
    let run = |args: &[&str]| run_with_keys(&bins.verifier, args, &t.access_key, &t.secret_key);
    let cfg = config.to_str().unwrap();
    let html = a.dir.path().join("audit.html");
    let (code, out) = run(&[
        "verify",
        "--config",
        cfg,
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"shipped_not_sealed\""), "{out}");
    assert!(out.contains("\"unsealed_logs\": 3"), "{out}");
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("Shipped but not yet sealed")
    );
    let dest = a.dir.path().join("restore");
    let d = dest.to_str().unwrap();
    let (code, out) = run(&["restore", "archive", "--config", cfg, "--dest", d]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "({} from sealed manifests, 3 shipped but not yet sealed",
            n - 3
        )),
        "{out}"
    );
    let rec = restored(&dest);
    assert_eq!(rec.len(), n);
    let unsealed_seqs: Vec<u64> = rec.iter().filter(|r| r.1).map(|r| r.0).collect();
    assert_eq!(
        unsealed_seqs,
        (n - 3..n).map(|i| u64::from(seq_of(i))).collect::<Vec<_>>()
    );
    for (i, (path, bytes)) in a.originals.iter().enumerate() {
        let name = if i < n - 3 {
            path.file_name().unwrap().to_string_lossy().into_owned()
        } else {
            format!("1_{}_{}.arc", seq_of(i), a.stream.resetlogs_id)
        };
        assert!(
            std::fs::read(dest.join(&name)).unwrap() == *bytes,
            "{name} is not byte-identical"
        );
    }
    // No online log here (the collector is not part of this case): to the end of the last.
    let h = redovault_redo::FileHeader::parse(&a.originals[n - 1].1).unwrap();
    let until = redovault_redo::RedoHeader::parse(
        &a.originals[n - 1].1[h.bs()..2 * h.bs()],
        h.endian,
        h.bs() as u64,
    )
    .unwrap()
    .next_scn
    .unwrap()
    .0
    .to_string();
    let (code, out) = run(&["restore", "script", "--dest", d, "--until-scn", &until]);
    assert_eq!(code, Some(0), "{out}");
    let scripts: String = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql" || x == "rman"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    // RMAN catalogs the restore directory (sealed and unsealed logs alike) and recovers up
    // to the bound; the heading counts every restored log, the unsealed ones included.
    assert!(
        scripts.contains(&format!("CATALOG START WITH '{d}/' NOPROMPT;")),
        "{scripts}"
    );
    assert!(
        scripts.contains(&format!("SET UNTIL SCN {until};")),
        "{scripts}"
    );
    assert!(
        scripts.contains(&format!("to {} ({n} files", seq_of(n - 1))),
        "{scripts}"
    );

    // 4. Strangers: a foreign object, bytes under archive/ that are no redo log, a truncated
    //    log under its own SHA-256, and a quarantined file.
    put(format!("{}/notes/readme.txt", a.prefix), b"hello".to_vec()).await;
    let pdf = b"%PDF-1.7\n not a redo log at all, but named like one\n".repeat(200);
    put(archive_key(&a.prefix, &pdf), pdf).await;
    let truncated = a.originals[1].1[..a.originals[1].1.len() - 512].to_vec();
    put(archive_key(&a.prefix, &truncated), truncated).await;
    // And the attacker's put over an unsealed log (a newer version under its key).
    let replaced_key = archive_key(&a.prefix, &a.originals[n - 1].1);
    a.store()
        .admin()
        .put_plain(&replaced_key, bytes::Bytes::from_static(b"zeros"))
        .await
        .unwrap();
    let damaged = b"half a datafile".to_vec();
    put(
        format!(
            "{}/quarantine/sha256/{}",
            a.prefix,
            redovault::manifest::Sha256Digest::of(&damaged).hex()
        ),
        damaged,
    )
    .await;
    let r = verify(a.store(), &a.options(None, None)).await;
    assert_eq!(r.verdict, Verdict::Findings, "{}", r.to_text());
    let strangers: Vec<&str> = r
        .of_kind(FindingKind::UnreferencedObject)
        .map(|f| f.detail.as_str())
        .collect();
    assert_eq!(strangers.len(), 3, "{}", r.to_text());
    assert!(
        strangers
            .iter()
            .any(|d| d.contains("not a key redovault writes"))
    );
    assert!(
        strangers
            .iter()
            .any(|d| d.contains("not an Oracle redo log"))
    );
    assert!(strangers.iter().any(|d| d.contains("truncated")));
    assert_eq!(r.of_kind(FindingKind::QuarantinedObject).count(), 1);
    assert_eq!(
        (
            r.summary.unsealed_logs,
            r.summary.unreferenced_objects,
            r.summary.quarantined_objects
        ),
        (3, 3, 1)
    );
    let tampering: Vec<FindingKind> = kinds(&r).into_iter().filter(|k| k.is_tampering()).collect();
    assert_eq!(
        tampering,
        vec![FindingKind::ObjectReplaced],
        "{}",
        r.to_text()
    );
    assert_eq!(
        r.of_kind(FindingKind::ObjectReplaced)
            .next()
            .unwrap()
            .subject,
        replaced_key
    );
    // Restore takes the same logs, and nothing of the strangers.
    let dest2 = a.dir.path().join("restore2");
    let (code, out) = run(&[
        "restore",
        "archive",
        "--config",
        cfg,
        "--dest",
        dest2.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: unreferenced_object"), "{out}");
    assert_eq!(restored(&dest2), rec);
    let last = format!("1_{}_{}.arc", seq_of(n - 1), a.stream.resetlogs_id);
    assert!(
        std::fs::read(dest2.join(&last)).unwrap() == a.originals[n - 1].1,
        "the version the watcher put, not the one written over it"
    );
    let files = std::fs::read_dir(&dest2).unwrap().count();
    assert_eq!(files, n + 1, "the logs and restore-archive.json only");
}

/// Incremental runs on the real server (issue 19): after a clean run kept its anchor, a run
/// after new logs are shipped reads only the new sealed segment and HEADs only the new
/// objects; a new version put over a verified object is found by an incremental run; a
/// sealed segment tampered with (a new version over it) or hidden (a delete marker) is a
/// finding and a full run.
#[tokio::test(flavor = "multi_thread")]
async fn incremental_runs_check_only_what_is_new_and_still_find_every_change() {
    // The last two logs held back, shipped after the first run.
    let Some(a) = build("verify-incr", 37, |logs| {
        for p in &logs[logs.len() - 2..] {
            std::fs::rename(p, p.with_extension("later")).unwrap();
        }
    }) else {
        return;
    };
    let n = a.originals.len();
    let state = a.dir.path().join("verifier-state");
    let opts = |incremental| VerifyOptions {
        deep: DeepMode::Off,
        state_dir: Some(state.clone()),
        incremental,
        ..a.options(None, None)
    };
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!(r.run.kind, "full", "no anchor yet");
    assert!(
        r.run
            .fallback
            .as_deref()
            .is_some_and(|f| f.contains("no anchor"))
    );
    assert_eq!(r.summary.objects_checked as usize, n - 2);

    // Two more logs shipped and sealed: only they are looked at.
    let later: Vec<PathBuf> = a.originals[n - 2..]
        .iter()
        .map(|(p, _)| {
            std::fs::rename(p.with_extension("later"), p).unwrap();
            p.clone()
        })
        .collect();
    push(&a.server, a.dir.path(), &a.prefix, &later);
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
    assert_eq!(r.run.segments_read, 1, "{}", r.to_text());
    assert!(r.run.segments_anchored >= 1);
    assert_eq!(r.run.objects_headed, 2, "{}", r.to_text());
    assert_eq!(r.run.objects_listed as usize, n - 2);
    assert_eq!(r.summary.sealed_entries as usize, n);
    let names: Vec<&str> = r.files.iter().map(|f| f.file_name.as_str()).collect();
    for (p, _) in &a.originals[n - 2..] {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    // Nothing new: nothing read, nothing HEADed.
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.verdict, Verdict::Clean, "{}", r.to_text());
    assert_eq!((r.run.segments_read, r.run.objects_headed), (0, 0));

    // A new version pushed over a verified object (the put-only credentials can).
    let entries = redovault::manifest::read_entries(&a.state().join("manifest")).unwrap();
    let victim = &entries[1];
    a.store()
        .admin()
        .put_plain(
            &victim.object_key,
            bytes::Bytes::from_static(b"not a redo log"),
        )
        .await
        .unwrap();
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.run.kind, "incremental", "{}", r.to_text());
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ObjectReplaced)
        .unwrap_or_else(|| panic!("replacement not found: {}", r.to_text()));
    assert_eq!(f.entry, Some(victim.index));
    assert_eq!(r.verdict.exit_code(), 1);

    // A sealed segment with a new version over it, then one hidden by a delete marker.
    let mut segments: Vec<String> = redovault::store::ArchiveStore::list(
        a.store().as_ref(),
        &format!("{}/manifest/", a.prefix),
    )
    .await
    .unwrap()
    .into_iter()
    .map(|o| o.key)
    .collect();
    segments.sort();
    assert!(segments.len() >= 2, "{segments:?}");
    a.store()
        .admin()
        .put_plain(&segments[0], bytes::Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.run.kind, "full", "{}", r.to_text());
    assert!(
        r.run
            .fallback
            .as_deref()
            .is_some_and(|f| f.contains("changed")),
        "{:?}",
        r.run
    );
    let k = kinds(&r);
    assert!(
        k.contains(&FindingKind::ManifestSealMismatch),
        "{}",
        r.to_text()
    );
    assert!(k.contains(&FindingKind::ObjectReplaced), "{}", r.to_text());

    let hidden = segments.last().unwrap();
    let out = a.store().admin().delete_object(hidden).await.unwrap();
    assert!(out.status < 300, "delete marker refused: {out:?}");
    let r = verify(a.store(), &opts(Incremental::On)).await;
    assert_eq!(r.run.kind, "full", "{}", r.to_text());
    let f = r
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::ManifestSealMismatch && f.subject.contains(hidden))
        .unwrap_or_else(|| panic!("hidden segment not named: {}", r.to_text()));
    assert!(f.detail.contains("delete marker"), "{}", f.detail);
    assert!(
        kinds(&r).contains(&FindingKind::ManifestEntryRemoved),
        "{}",
        r.to_text()
    );
}
