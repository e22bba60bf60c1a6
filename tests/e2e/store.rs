//! End-to-end tests of the WORM store.
//!
//! - The conformance suite runs against every real S3 server the test command started
//!   (`REDOVAULT_TEST_S3_TARGETS`: a comma-separated list of `env.sh` files written by
//!   `deploy/s3/server.sh up`), and against the local-directory backend.
//! - Fault injection runs against the scripted in-process endpoint of `fake_s3`.
//! - Bad set-ups run the `redovault store` binary and check its one-line errors.

use redovault::digest::Sha256Digest;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redovault::store::local::LocalStore;
use redovault::store::s3::{Credentials, S3Config, S3Store};
use redovault::store::{
    ArchiveStore, FileSource, LockMode, Retention, RetryPolicy, SkewedClock, StoreError,
};
use redovault_drill::admin::AdminRequests as _;
use redovault_drill::testserver::TestServer;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::fake_s3::{FakeS3, Fault};

/// The Ceph server (the real S3 server the end-to-end tests are written for), else the first;
/// None (the test skips, or fails under deploy/test.sh) when no server runs.
pub fn ceph() -> Option<TestServer> {
    let all = targets()?;
    all.iter()
        .find(|t| t.kind == "ceph")
        .or(all.first())
        .cloned()
}

/// The real servers to test against (`REDOVAULT_TEST_S3_TARGETS`); None when none is
/// configured, after the skip line ([`redovault_drill::servers`]: a failure under
/// deploy/test.sh, which starts them).
pub fn targets() -> Option<Vec<TestServer>> {
    redovault_drill::servers::s3_servers()
}

fn store_for(t: &TestServer, bucket: &str) -> S3Store {
    S3Store::new(t.config(bucket)).unwrap()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Deterministic pseudo-random bytes, generated as they are read: a large source that is
/// never held in memory by the test.
pub struct GenReader {
    state: u64,
    left: u64,
}

impl GenReader {
    pub fn new(seed: u64, len: u64) -> GenReader {
        GenReader {
            state: seed | 1,
            left: len,
        }
    }
}

impl AsyncRead for GenReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(1 << 16) as usize;
        let mut chunk = vec![0u8; n];
        for b in chunk.chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            b.copy_from_slice(&bytes[..b.len()]);
        }
        self.left -= n as u64;
        buf.put_slice(&chunk);
        std::task::Poll::Ready(Ok(()))
    }
}

async fn read_all(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).await.unwrap();
    v
}

async fn sha_of_stream(mut r: impl AsyncRead + Unpin) -> ([u8; 32], u64) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        n_total += n as u64;
        h.update(&buf[..n]);
    }
    (h.finalize().into(), n_total)
}

fn cursor(data: &[u8]) -> std::io::Cursor<Vec<u8>> {
    std::io::Cursor::new(data.to_vec())
}

// ---------------------------------------------------------------------------------------------
// The conformance suite: the same checks for every backend.

async fn conformance_round_trip<S: ArchiveStore>(store: &S, name: &str) {
    let prefix = unique("rt");
    let data: Vec<u8> = (0..1_500_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let key = format!("{prefix}/arch1_15_1224959854.dbf");
    let o = store
        .put_immutable(&key, cursor(&data))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(o.size, data.len() as u64, "{name}");
    assert_eq!(
        o.sha256,
        Sha256Digest(<[u8; 32]>::from(Sha256::digest(&data))),
        "{name}"
    );
    assert!(!o.already_present, "{name}");
    let got = read_all(store.get(&key, None, None).await.unwrap()).await;
    assert!(got == data, "{name}: bytes differ after round trip");
    let part = read_all(store.get(&key, Some(1000..5000), None).await.unwrap()).await;
    assert!(part == data[1000..5000], "{name}: ranged get differs");
    let info = store
        .head(&key, None)
        .await
        .unwrap()
        .expect("head finds the object");
    assert_eq!(info.size, data.len() as u64, "{name}");
    assert_eq!(info.sha256, Some(o.sha256), "{name}");
    store
        .put_immutable(&format!("{prefix}/second"), cursor(b"x"))
        .await
        .unwrap();
    let listed = store.list(&format!("{prefix}/")).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![key.as_str(), &format!("{prefix}/second")],
        "{name}"
    );
    assert!(
        store
            .head(&format!("{prefix}/absent"), None)
            .await
            .unwrap()
            .is_none(),
        "{name}"
    );
    assert!(matches!(
        store.get(&format!("{prefix}/absent"), None, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn conformance_create_only<S: ArchiveStore>(store: &S, name: &str) {
    let key = unique("co");
    let a = b"first bytes of the archived log".to_vec();
    let first = store.put_immutable(&key, cursor(&a)).await.unwrap();
    // Same bytes: idempotent success, same version.
    let again = store.put_immutable(&key, cursor(&a)).await.unwrap();
    assert!(again.already_present, "{name}");
    assert_eq!(again.version_id, first.version_id, "{name}");
    assert_eq!(again.sha256, first.sha256, "{name}");
    // Different bytes: the distinct error; original unchanged.
    let err = store
        .put_immutable(&key, cursor(b"tampered bytes"))
        .await
        .unwrap_err();
    assert!(
        err.is_conflict(),
        "{name}: expected AlreadyExistsDifferent, got {err}"
    );
    let got = read_all(store.get(&key, None, None).await.unwrap()).await;
    assert_eq!(got, a, "{name}: original changed");
    let info = store.head(&key, None).await.unwrap().unwrap();
    assert_eq!(
        info.version_id, first.version_id,
        "{name}: a second version appeared"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_backend_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("vault")).unwrap();
    let r = store.check().await.unwrap();
    assert!(!r.worm);
    assert!(r.description.contains("NOT WORM"));
    conformance_round_trip(&store, "local").await;
    conformance_create_only(&store, "local").await;
    // Files are read-only.
    let o = store
        .put_immutable("ro/file", cursor(b"abc"))
        .await
        .unwrap();
    let meta = std::fs::metadata(dir.path().join("vault").join(&o.key)).unwrap();
    assert!(meta.permissions().readonly());
    // Keys cannot escape the directory.
    for bad in ["../x", "/etc/passwd", "a/../../b", ".hidden"] {
        assert!(
            store.put_immutable(bad, cursor(b"x")).await.is_err(),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_conformance_round_trip_and_create_only() {
    let Some(servers) = targets() else {
        return;
    };
    for t in servers {
        let store = store_for(&t, &t.bucket);
        let r = store
            .check()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.kind));
        assert!(r.worm, "{}", t.kind);
        conformance_round_trip(&store, &t.kind).await;
        conformance_create_only(&store, &t.kind).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_compliance_object_cannot_be_deleted_shortened_or_replaced() {
    let Some(servers) = targets() else {
        return;
    };
    for t in servers {
        let store = store_for(&t, &t.bucket);
        let key = unique("worm");
        let original = b"redo that must survive the attacker".to_vec();
        let o = store.put_immutable(&key, cursor(&original)).await.unwrap();
        let lock = o.lock.expect("a lock confirmed by HEAD");
        assert_eq!(lock.mode, LockMode::Compliance);
        let version = o.version_id.clone().expect("a version id");

        for bypass in [false, true] {
            let d = store
                .admin()
                .delete_version(&key, &version, bypass)
                .await
                .unwrap();
            assert_eq!(
                d.status, 403,
                "{}: version delete (bypass {bypass}) was not refused: {d:?}",
                t.kind
            );
        }
        let shorter = lock.retain_until - chrono::Duration::minutes(30);
        let s = store
            .admin()
            .put_retention(&key, &version, LockMode::Compliance, shorter)
            .await
            .unwrap();
        assert!(
            s.status == 403 || s.status == 400,
            "{}: shortening retention was not refused: {s:?}",
            t.kind
        );
        let g = store
            .admin()
            .put_retention(&key, &version, LockMode::Governance, lock.retain_until)
            .await
            .unwrap();
        assert!(
            g.status == 403 || g.status == 400,
            "{}: COMPLIANCE → GOVERNANCE allowed: {g:?}",
            t.kind
        );
        let after = store.head(&key, Some(&version)).await.unwrap().unwrap();
        let after_lock = after.lock.unwrap();
        assert_eq!(after_lock.mode, LockMode::Compliance);
        assert!(after_lock.retain_until >= lock.retain_until - chrono::Duration::seconds(1));

        // An attacker's plain PUT on the same key makes a new version; the locked one survives.
        let attack = store
            .admin()
            .put_plain(&key, Bytes::from_static(b"ransom note"))
            .await
            .unwrap();
        assert_eq!(attack.status, 200, "{}", t.kind);
        let survived = read_all(store.get(&key, None, Some(&version)).await.unwrap()).await;
        assert_eq!(
            survived, original,
            "{}: locked version's bytes changed",
            t.kind
        );
        let versions = store.versions(&key).await.unwrap();
        assert!(
            versions.contains(&version),
            "{}: locked version gone",
            t.kind
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_multipart_72_mib_bounded_memory_and_lock_checked() {
    const LEN: u64 = 72 << 20;
    let Some(servers) = targets() else {
        return;
    };
    for t in servers {
        for bucket in [&t.bucket, &t.bucket_default] {
            let mut c = t.config(bucket);
            c.part_size = 8 << 20;
            c.multipart_threshold = 16 << 20;
            c.concurrency = 3;
            let store = S3Store::new(c).unwrap();
            let key = unique("mp");
            let (expected_sha, _) = sha_of_stream(GenReader::new(7, LEN)).await;
            let res = store.put_immutable(&key, GenReader::new(7, LEN)).await;
            let bound = (16 << 20) + (8 << 20) * 4;
            assert!(
                store.peak_buffered_bytes() <= bound,
                "{} {bucket}: peak buffered {} > {bound}",
                t.kind,
                store.peak_buffered_bytes()
            );
            match res {
                Ok(o) => {
                    assert_eq!(o.size, LEN);
                    assert_eq!(o.sha256, Sha256Digest(expected_sha));
                    let lock = o.lock.expect("lock confirmed");
                    assert_eq!(lock.mode, LockMode::Compliance);
                    let (sha, n) = sha_of_stream(store.get(&key, None, None).await.unwrap()).await;
                    assert_eq!(
                        (sha, n),
                        (expected_sha, LEN),
                        "{} {bucket}: read back differs",
                        t.kind
                    );
                    // An independent HEAD agrees that the lock is there.
                    let info = store.head(&key, None).await.unwrap().unwrap();
                    assert!(info.lock.is_some());
                    assert!(
                        info.etag.unwrap().ends_with("-9"),
                        "{} {bucket}: 9 parts",
                        t.kind
                    );
                }
                Err(StoreError::LockNotApplied { detail, .. }) => {
                    // The server dropped the lock headers of the multipart upload (Ceph's known
                    // gap): we must have said so, and the object must really be unlocked.
                    let info = store.head(&key, None).await.unwrap().unwrap();
                    assert!(
                        info.lock.is_none(),
                        "{} {bucket}: error but lock present: {detail}",
                        t.kind
                    );
                    assert_eq!(
                        t.kind, "ceph",
                        "only Ceph is known to drop multipart locks: {detail}"
                    );
                    assert_eq!(bucket, &t.bucket, "default retention must cover multipart");
                }
                Err(e) => panic!("{} {bucket}: {e}", t.kind),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_retain_until_follows_server_clock_when_local_clock_is_skewed() {
    let period = Duration::from_secs(3600);
    let Some(servers) = targets() else {
        return;
    };
    for t in servers {
        for hours in [-3i64, 5] {
            let mut c = t.config(&t.bucket);
            c.clock = Arc::new(SkewedClock {
                offset: chrono::Duration::hours(hours),
            });
            let store = S3Store::new(c).unwrap();
            let key = unique("skew");
            let o = store
                .put_immutable(&key, cursor(b"skewed"))
                .await
                .unwrap_or_else(|e| panic!("{} skew {hours}h: {e}", t.kind));
            let until = o.lock.unwrap().retain_until;
            // This machine's real clock is right; the store's was off by hours.
            let want = chrono::Utc::now() + chrono::Duration::from_std(period).unwrap();
            let off = (until - want).num_seconds().abs();
            assert!(
                off < 120,
                "{} skew {hours}h: retain-until {until} is {off}s from {want}",
                t.kind
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fault injection through the scripted endpoint.

fn fake_config(endpoint: &str) -> S3Config {
    let mut c = S3Config::new(url::Url::parse(endpoint).unwrap(), "bucket");
    c.path_style = Some(true);
    c.credentials = Some(Credentials {
        access_key: "k".into(),
        secret_key: "s".into(),
        session_token: None,
    });
    c.retry = RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(500),
    };
    c.retention = Retention::Explicit {
        mode: LockMode::Compliance,
        period: Duration::from_secs(86400),
    };
    c
}

/// A script that answers the first `n` PUTs with `fault` and serves everything else.
fn fail_first_puts(n: usize, fault: Fault) -> impl Fn(&crate::fake_s3::Seen, usize) -> Fault {
    let count = std::sync::atomic::AtomicUsize::new(0);
    move |s, _| {
        if s.method == "PUT" && count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < n {
            fault.clone()
        } else {
            Fault::None
        }
    }
}

fn puts(fake: &FakeS3) -> Vec<crate::fake_s3::Seen> {
    fake.seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_slowdown_is_retried() {
    // First two PUTs answer 503 SlowDown, then the third succeeds.
    let fake = FakeS3::start(fail_first_puts(2, Fault::Status(503, "SlowDown")), false).await;
    let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
    let o = store
        .put_immutable("k/slow", cursor(b"payload"))
        .await
        .unwrap();
    assert_eq!(o.size, 7);
    let p = puts(&fake);
    assert_eq!(p.len(), 3, "two SlowDown answers, then success");
    assert!(p.iter().all(|s| s.body == b"payload"));
    assert_eq!(fake.versions("k/slow").len(), 1);
    let lock = o.lock.unwrap();
    assert_eq!(lock.mode, LockMode::Compliance);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_stall_hits_the_deadline_then_retries() {
    let fake = FakeS3::start(
        fail_first_puts(1, Fault::Stall(Duration::from_secs(30))),
        false,
    )
    .await;
    let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
    let t0 = Instant::now();
    let o = store
        .put_immutable("k/stall", cursor(b"stalled once"))
        .await;
    // The stalled request was abandoned at its 800 ms deadline; the retry then found the
    // object (the stalled request had stored it) or stored it: one version either way.
    let o = o.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "deadline not honoured: {:?}",
        t0.elapsed()
    );
    assert_eq!(o.size, 12);
    assert_eq!(fake.versions("k/stall").len(), 1, "no second version");
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_stall_forever_gives_a_clear_error_within_the_budget() {
    let fake = FakeS3::start(
        |s, _| {
            if s.method == "PUT" {
                Fault::Stall(Duration::from_secs(60))
            } else {
                Fault::None
            }
        },
        false,
    )
    .await;
    let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
    let t0 = Instant::now();
    let e = store
        .put_immutable("k/never", cursor(b"x"))
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::RetriesExhausted { attempts: 4, .. }),
        "{msg}"
    );
    assert!(msg.contains("bucket/k/never"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_403_is_not_retried() {
    let fake = FakeS3::start(
        |s, _| {
            if s.method == "PUT" {
                Fault::Status(403, "AccessDenied")
            } else {
                Fault::None
            }
        },
        false,
    )
    .await;
    let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
    let e = store
        .put_immutable("k/denied", cursor(b"x"))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, StoreError::Permanent { status: 403, .. }),
        "{msg}"
    );
    assert!(
        msg.contains("AccessDenied") && msg.contains("not retried"),
        "{msg}"
    );
    assert_eq!(puts(&fake).len(), 1, "a 403 must not be retried");
    assert!(fake.versions("k/denied").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_connection_cut_mid_upload_is_retried_without_a_second_version() {
    for fault in [Fault::CutMidBody, Fault::CutBeforeAnswer] {
        let fake = FakeS3::start(fail_first_puts(1, fault.clone()), false).await;
        let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let o = store
            .put_immutable("k/cut", cursor(&data))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(o.size, data.len() as u64);
        let versions = fake.versions("k/cut");
        assert_eq!(versions.len(), 1, "{fault:?}: exactly one version");
        assert!(versions[0].body == data, "{fault:?}: stored bytes differ");
        let p = puts(&fake);
        match fault {
            // The body never arrived: the retry, after a HEAD that finds nothing, sends it again.
            Fault::CutMidBody => {
                assert_eq!(p.len(), 2, "{fault:?}: one retry");
                assert_eq!(p[1].header("if-none-match"), Some("*"));
            }
            // The object was stored but the answer lost: the HEAD before the retry finds it,
            // so no second PUT is sent (Ceph would have made a second version of it).
            _ => {
                assert_eq!(p.len(), 1, "{fault:?}: no second PUT");
                assert!(o.already_present);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_request_time_too_skewed_is_corrected_from_the_server_date() {
    let fake = FakeS3::start(|_, _| Fault::None, true).await;
    let mut c = fake_config(&fake.endpoint);
    c.clock = Arc::new(SkewedClock {
        offset: chrono::Duration::hours(-7),
    });
    let store = S3Store::new(c).unwrap();
    let o = store
        .put_immutable("k/skew", cursor(b"on time"))
        .await
        .unwrap();
    assert_eq!(o.size, 7);
    // The first request was refused as skewed; the rest were signed with the server's time.
    let seen = fake.seen();
    assert!(seen.len() >= 4);
    let put = puts(&fake).pop().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(
        put.header("x-amz-object-lock-retain-until-date").unwrap(),
    )
    .unwrap();
    let want = chrono::Utc::now() + chrono::Duration::days(1);
    assert!(
        (until.with_timezone(&chrono::Utc) - want)
            .num_seconds()
            .abs()
            < 60,
        "{until}"
    );
    assert_eq!(fake.versions("k/skew").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn integrity_headers_are_sent_on_every_put() {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    // Content-MD5 only when asked for; the SHA-256 checksum and signed payload hash always.
    let fake = FakeS3::start(|_, _| Fault::None, false).await;
    let mut c = fake_config(&fake.endpoint);
    c.content_md5 = true;
    let with_md5 = S3Store::new(c).unwrap();
    with_md5.put_immutable("k/m", cursor(b"abc")).await.unwrap();
    let p = puts(&fake).pop().unwrap();
    assert_eq!(
        p.header("content-md5"),
        Some(b64(&md5::Md5::digest(b"abc")).as_str())
    );
    let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
    store.put_immutable("k/h", cursor(b"abc")).await.unwrap();
    let p = puts(&fake).pop().unwrap();
    assert_eq!(p.header("content-md5"), None);
    assert_eq!(
        p.header("x-amz-checksum-sha256"),
        Some(b64(&Sha256::digest(b"abc")).as_str())
    );
    assert_eq!(
        p.header("x-amz-content-sha256"),
        Some(hex::encode(Sha256::digest(b"abc")).as_str())
    );
    assert_eq!(p.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(p.header("if-none-match"), Some("*"));
}

// ---------------------------------------------------------------------------------------------
// Bad set-ups: one clear line, non-zero exit, nothing recorded as done.

fn run_store_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_redovault"));
    cmd.arg("store").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in [
        "REDOVAULT_S3_ENDPOINT",
        "REDOVAULT_S3_BUCKET",
        "REDOVAULT_S3_CA_FILE",
    ] {
        if !env.iter().any(|(e, _)| e == &k) {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What is wrong, `[endpoint, bucket, CA file]`, the environment, and what the error must say.
type BadCase<'a> = (&'a str, Vec<String>, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn bad_setups_fail_with_one_clear_line_and_record_nothing() {
    let Some(t) = targets().and_then(|all| all.into_iter().next()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("arch1_15_1224959854.dbf");
    std::fs::write(&file, b"redo bytes").unwrap();
    let ledger = dir.path().join("ledger.jsonl");
    let bad_ca = dir.path().join("missing-ca.pem");
    let creds = [
        ("AWS_ACCESS_KEY_ID", t.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", t.secret_key.as_str()),
    ];
    let wrong = [
        ("AWS_ACCESS_KEY_ID", t.access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
    ];
    let endpoint = t.endpoint.to_string();
    let ca = t.ca.display().to_string();
    let cases: Vec<BadCase<'_>> = vec![
        (
            "missing bucket",
            vec![endpoint.clone(), "rv-does-not-exist".into(), ca.clone()],
            &creds,
            "does not exist",
        ),
        (
            "no object lock",
            vec![endpoint.clone(), t.bucket_nolock.clone(), ca.clone()],
            &creds,
            "has no Object Lock: archives would be deletable",
        ),
        (
            "unreachable",
            vec!["https://127.0.0.1:9".into(), t.bucket.clone(), ca.clone()],
            &creds,
            "cannot reach",
        ),
        (
            "unreadable CA",
            vec![
                endpoint.clone(),
                t.bucket.clone(),
                bad_ca.display().to_string(),
            ],
            &creds,
            "cannot read CA file",
        ),
    ];
    let mut cases = cases;
    // LocalStack does not verify header signatures: wrong credentials are only refused by Ceph.
    if t.kind == "ceph" {
        cases.push((
            "wrong credentials",
            vec![endpoint.clone(), t.bucket.clone(), ca.clone()],
            &wrong,
            "credentials from the environment (AWS_ACCESS_KEY_ID) refused",
        ));
    }
    for (what, v, env, needle) in cases {
        let (code, stdout, stderr) = run_store_cli(
            &[
                "--s3-endpoint",
                &v[0],
                "--bucket",
                &v[1],
                "--ca-file",
                &v[2],
                "--path-style",
                "put",
                "--ledger",
                ledger.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
            env,
        );
        assert_ne!(code, 0, "{what}: exit code 0");
        assert!(stdout.is_empty(), "{what}: printed {stdout}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: not one line: {stderr}");
        assert!(lines[0].contains(needle), "{what}: {stderr}");
        assert!(!ledger.exists(), "{what}: something was recorded as done");
    }
    // The good set-up records the file.
    let (code, stdout, stderr) = run_store_cli(
        &[
            "--s3-endpoint",
            &endpoint,
            "--bucket",
            &t.bucket,
            "--ca-file",
            &ca,
            "--path-style",
            "--retention-days",
            "1",
            "put",
            "--prefix",
            &unique("cli"),
            "--ledger",
            ledger.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        &creds,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"lock_mode\":\"COMPLIANCE\""), "{stdout}");
    assert_eq!(std::fs::read_to_string(&ledger).unwrap().lines().count(), 1);
}

#[test]
fn local_store_cli_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault");
    let file = dir.path().join("a.dbf");
    std::fs::write(&file, b"abc").unwrap();
    let vault_s = vault.to_str().unwrap();
    let (code, stdout, stderr) = run_store_cli(
        &["--store-dir", vault_s, "put", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("NOT WORM"), "{stderr}");
    assert!(stdout.contains("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    let (code, stdout, _) = run_store_cli(&["--store-dir", vault_s, "list"], &[]);
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "3\tarchive/a.dbf");
}

// ---------------------------------------------------------------------------------------------
// put_file: a file with a known size and SHA-256, streamed from disk.

/// Writes `len` deterministic bytes to `dir/name` and returns its `FileSource`.
fn gen_file(dir: &std::path::Path, name: &str, seed: u64, len: u64) -> FileSource {
    use std::io::Write as _;
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut h = Sha256::new();
    let mut state = seed | 1;
    let mut left = len;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        for c in buf[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            c.copy_from_slice(&state.to_le_bytes()[..c.len()]);
        }
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    FileSource {
        path,
        size: len,
        sha256: h.finalize().into(),
    }
}

async fn put_file_checks<S: ArchiveStore>(store: &S, name: &str, dir: &std::path::Path) {
    let prefix = unique("pf");
    let src = gen_file(dir, "a.dbf", 11, 3 << 20);
    let key = format!("{prefix}/a");
    let o = store
        .put_file(&key, &src)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!((o.size, o.sha256), (src.size, src.sha256), "{name}");
    assert!(!o.already_present, "{name}");
    let (sha, n) = sha_of_stream(store.get(&key, None, None).await.unwrap()).await;
    assert_eq!((sha, n), (src.sha256.0, src.size), "{name}: read back");
    // Again: idempotent, nothing uploaded.
    let again = store.put_file(&key, &src).await.unwrap();
    assert!(again.already_present, "{name}");
    assert_eq!(again.version_id, o.version_id, "{name}: no second version");

    // Announced bytes that are not the file's: nothing stored, a distinct error.
    let mut wrong = src.clone();
    wrong.sha256.0[0] ^= 1;
    let k2 = format!("{prefix}/changed");
    let e = store.put_file(&k2, &wrong).await.unwrap_err();
    assert!(matches!(e, StoreError::SourceChanged { .. }), "{name}: {e}");
    assert!(store.head(&k2, None).await.unwrap().is_none(), "{name}");
    // A file that grew after it was hashed.
    let mut short = src.clone();
    short.size -= 1000;
    let e = store
        .put_file(&format!("{prefix}/grew"), &short)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::SourceChanged { .. }), "{name}: {e}");
    // Same key, other bytes: the alarm case, original untouched.
    let other = gen_file(dir, "b.dbf", 12, 1 << 20);
    let e = store.put_file(&key, &other).await.unwrap_err();
    assert!(e.is_conflict(), "{name}: {e}");
    let (sha, _) = sha_of_stream(store.get(&key, None, None).await.unwrap()).await;
    assert_eq!(sha, src.sha256.0, "{name}: original untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_put_file_streams_checks_and_refuses_changed_sources() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("vault")).unwrap();
    put_file_checks(&store, "local", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_put_file_single_streamed_put_and_multipart_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(servers) = targets() else {
        return;
    };
    for t in servers {
        let store = store_for(&t, &t.bucket);
        put_file_checks(&store, &t.kind, dir.path()).await;
        // Above the threshold: streamed parts (Ceph keeps locks on multipart uploads only
        // through a bucket default retention).
        let mut c = t.config(&t.bucket_default);
        c.stream_threshold = 8 << 20;
        c.stream_part_size = 5 << 20;
        c.concurrency = 2;
        let store = S3Store::new(c).unwrap();
        let src = gen_file(dir.path(), "big.dbf", 13, (12 << 20) + 4321);
        let key = unique("pf-mp");
        let o = store
            .put_file(&key, &src)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.kind));
        assert_eq!((o.size, o.sha256), (src.size, src.sha256));
        assert!(o.lock.is_some(), "{}: lock confirmed", t.kind);
        assert_eq!(store.peak_buffered_bytes(), 0, "nothing buffered");
        let info = store.head(&key, None).await.unwrap().unwrap();
        assert!(info.etag.unwrap().ends_with("-3"), "{}: 3 parts", t.kind);
        let (sha, n) = sha_of_stream(store.get(&key, None, None).await.unwrap()).await;
        assert_eq!((sha, n), (src.sha256.0, src.size));
        let again = store.put_file(&key, &src).await.unwrap();
        assert!(again.already_present);
        let mut wrong = src.clone();
        wrong.sha256.0[31] ^= 0x80;
        let k2 = unique("pf-mp-changed");
        let e = store.put_file(&k2, &wrong).await.unwrap_err();
        assert!(matches!(e, StoreError::SourceChanged { .. }), "{e}");
        assert!(store.head(&k2, None).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_put_file_cut_mid_body_is_retried_with_the_file_read_again() {
    for fault in [Fault::CutMidBody, Fault::CutBeforeAnswer] {
        let fake = FakeS3::start(fail_first_puts(1, fault.clone()), false).await;
        let store = S3Store::new(fake_config(&fake.endpoint)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let src = gen_file(dir.path(), "f", 5, 1_500_000);
        let o = store
            .put_file("k/file", &src)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(o.sha256, src.sha256);
        let versions = fake.versions("k/file");
        assert_eq!(versions.len(), 1, "{fault:?}: exactly one version");
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(&versions[0].body)),
            src.sha256.0,
            "{fault:?}"
        );
        let p = puts(&fake);
        assert_eq!(
            p[0].header("x-amz-content-sha256"),
            Some(hex::encode(src.sha256).as_str()),
            "the signed payload hash is the known SHA-256"
        );
        match fault {
            Fault::CutMidBody => assert_eq!(p.len(), 2, "one retry"),
            _ => assert!(
                o.already_present && p.len() == 1,
                "found by HEAD, not resent"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_put_file_stalled_upload_hits_the_deadline() {
    let fake = FakeS3::start(
        |s: &crate::fake_s3::Seen, _| {
            if s.method == "PUT" {
                Fault::Stall(Duration::from_secs(30))
            } else {
                Fault::None
            }
        },
        false,
    )
    .await;
    let mut c = fake_config(&fake.endpoint);
    c.retry.max_attempts = 2;
    let store = S3Store::new(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = gen_file(dir.path(), "f", 6, 100_000);
    let t0 = Instant::now();
    let e = store.put_file("k/stall", &src).await.unwrap_err();
    assert!(
        matches!(e, StoreError::RetriesExhausted { attempts: 2, .. }),
        "{e}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
}
