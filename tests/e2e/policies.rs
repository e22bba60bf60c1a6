//! The bucket policies of `deploy/s3/policies`, enforced by the real Ceph radosgw on the drill
//! bucket of `deploy/s3/server.sh` (its own users, one policy made of the three policy files):
//!
//! - the database host's keys create objects under the prefix (locked by the bucket's default
//!   COMPLIANCE retention), read them back and list them, and every attempt to delete, hide,
//!   re-lock or reconfigure is refused with 403 AccessDenied; a plain overwrite only adds a
//!   version, the original's bytes and lock stay as they were;
//! - the verifier's keys read, HEAD and list versions, and every write is refused;
//! - the collector's keys create objects under `PREFIX/streams/` and read them back, every
//!   attempt to delete, re-lock or reconfigure is refused, and so is every write outside
//!   `PREFIX/streams/`; the database host's keys cannot write under it (no decoy pieces);
//! - the real daemons with those keys: `redovault watch` ships the real Oracle logs with
//!   `retention = "bucket-default"`, `redovault push` finds them shipped, and
//!   `redovault-verifier verify` and `restore archive` with the read-only keys give a clean
//!   verdict and the original bytes.
//!
//! Every target of `REDOVAULT_TEST_S3_TARGETS` with a drill bucket is tested; the others are
//! skipped with a message, and the tests fail when none has one (CI cannot skip them silently).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use redovault::store::s3::{S3Config, S3Store};
use redovault::store::{ArchiveStore, FileSource, LockMode, LockState, Retention, StoreError};
use redovault_drill::admin::{AdminRequests as _, RawOutcome};
use redovault_drill::testserver::{DrillBucket, TestServer};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use crate::netkit::run_with_keys;

const RV: &str = env!("CARGO_BIN_EXE_redovault");

/// The real servers that have a drill bucket; None (skip) when no server runs. Fails when the
/// servers of `REDOVAULT_TEST_S3_TARGETS` have none: a CI whose Ceph lost its drill bucket
/// must not pass by skipping these tests.
fn drill_targets() -> Option<Vec<(TestServer, DrillBucket)>> {
    let mut out = Vec::new();
    for t in crate::store::targets()? {
        match t.drill.clone() {
            Some(d) => out.push((t, d)),
            None => eprintln!(
                "policies: skipping the {} server at {}: no drill bucket (it enforces no bucket \
                 policy; see deploy/s3/policies/README.md)",
                t.kind, t.endpoint
            ),
        }
    }
    assert!(
        !out.is_empty(),
        "none of the servers of REDOVAULT_TEST_S3_TARGETS has a drill bucket \
         (REDOVAULT_TEST_S3_DRILL_BUCKET in its env.sh): start Ceph with deploy/s3/server.sh"
    );
    Some(out)
}

fn unique_prefix(d: &DrillBucket, name: &str) -> String {
    format!("{}/{name}-{:016x}", d.prefix, rand::random::<u64>())
}

/// A stream directory of its own for one run, `PREFIX/streams/<name>-<random>`: the policy
/// grants the collector exactly `PREFIX/streams/*`, so a run keeps apart by its stream name,
/// not by a prefix of its own (`PREFIX/<unique>/streams/…` would be refused).
fn unique_stream(d: &DrillBucket, name: &str) -> String {
    format!("{}/streams/{name}-{:016x}", d.prefix, rand::random::<u64>())
}

/// The default retention of `deploy/s3/policies/bucket-object-lock.json`, which server.sh
/// applies to the drill bucket.
fn policy_default_retention() -> (LockMode, Duration) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/s3/policies/bucket-object-lock.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let d = &v["Rule"]["DefaultRetention"];
    let mode = LockMode::parse(d["Mode"].as_str().unwrap()).unwrap();
    let days = d["Days"]
        .as_u64()
        .or_else(|| d["Years"].as_u64().map(|y| y * 365))
        .unwrap();
    (mode, Duration::from_secs(days * 86400))
}

fn store(config: Result<S3Config, StoreError>) -> S3Store {
    S3Store::new(config.unwrap()).unwrap()
}

/// Refused by the policy: 403 AccessDenied.
#[track_caller]
fn refused(what: &str, o: Result<RawOutcome, StoreError>) {
    let o =
        o.unwrap_or_else(|e| panic!("{what}: the request failed instead of being answered: {e}"));
    assert_eq!(
        (o.status, o.code.as_str()),
        (403, "AccessDenied"),
        "{what}: must be refused"
    );
}

/// A store error that is the server's 403 AccessDenied.
#[track_caller]
fn is_access_denied(what: &str, e: &StoreError) {
    assert!(
        matches!(e, StoreError::Permanent { status: 403, code, .. } if code == "AccessDenied")
            || matches!(e, StoreError::AccessDenied { code, .. } if code == "AccessDenied"),
        "{what}: expected 403 AccessDenied, got {e}"
    );
}

/// The requests that would destroy or weaken what is stored, refused for both key pairs:
/// a delete (marker, version, version with the governance bypass), a shorter retention, the
/// bucket's default retention dropped, its policy dropped.
async fn refuses_destruction(s: &S3Store, key: &str, version: &str, retain_until: DateTime<Utc>) {
    refused("DELETE (delete marker)", s.admin().delete_object(key).await);
    refused(
        "DELETE ?versionId",
        s.admin().delete_version(key, version, false).await,
    );
    refused(
        "DELETE ?versionId with the governance bypass",
        s.admin().delete_version(key, version, true).await,
    );
    refused(
        "PUT ?retention earlier (shorten)",
        s.admin()
            .put_retention(
                key,
                version,
                LockMode::Compliance,
                retain_until - chrono::Duration::days(1),
            )
            .await,
    );
    refused(
        "PUT ?object-lock without a default retention",
        s.admin().put_object_lock_configuration(None).await,
    );
    refused("DELETE ?policy", s.admin().delete_bucket_policy().await);
}

/// What the writers' keys (database host, collector) must also be refused, beyond
/// [`refuses_destruction`]: a GOVERNANCE retention with the bypass, a bucket policy granting
/// `user` everything, a weaker default retention, suspended versioning, and the version
/// listing (the verifier's job). `user` is the IAM user name the keys belong to.
async fn refuses_weakening(
    s: &S3Store,
    bucket: &str,
    user: &str,
    key: &str,
    version: &str,
    now: DateTime<Utc>,
) {
    refused(
        "PUT ?retention GOVERNANCE with the governance bypass",
        s.admin()
            .put_retention_with(
                key,
                version,
                LockMode::Governance,
                now + chrono::Duration::hours(1),
                true,
            )
            .await,
    );
    let open_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam:::user/{user}"]}},"Action":["s3:*"],"Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    refused(
        "PUT ?policy (grant itself everything)",
        s.admin().put_bucket_policy(&open_policy).await,
    );
    refused(
        "PUT ?object-lock GOVERNANCE 1 day",
        s.admin()
            .put_object_lock_configuration(Some((LockMode::Governance, 1)))
            .await,
    );
    refused(
        "PUT ?versioning Suspended",
        s.admin().suspend_versioning().await,
    );
    // No version listing either (the verifier's job).
    let e = s.versions(key).await.unwrap_err();
    is_access_denied("GET ?versions", &e);
}

/// A plain overwrite PUT of `key` by a writer (`s`): s3:PutObject is granted there and the
/// bucket is versioned, so the server either refuses it or adds a version; the original's
/// bytes, size and lock never change. Ceph 16.2.15 adds a version (and locks it by the
/// default). Checked with the verifier's keys (`verifier`).
async fn overwrite_only_adds_a_version(
    t: &TestServer,
    s: &S3Store,
    verifier: &S3Store,
    key: &str,
    version: &str,
    bytes: &[u8],
    lock: LockState,
) {
    let o = s
        .admin()
        .put_plain(key, Bytes::from_static(b"ransom note"))
        .await
        .unwrap();
    match o.status {
        200 => {
            let new = o.version_id.clone().expect("a new version id");
            assert_ne!(new, version);
            assert_eq!(
                verifier.versions(key).await.unwrap(),
                vec![new.clone(), version.to_string()],
                "the overwrite is one more version, listed before the original"
            );
            let lock_new = verifier.head(key, Some(&new)).await.unwrap().unwrap().lock;
            assert_eq!(
                lock_new.map(|l| l.mode),
                Some(LockMode::Compliance),
                "the attacker's version is locked too: it cannot be removed to hide the tampering"
            );
            assert_eq!(read(verifier, key, None).await, b"ransom note");
        }
        403 => assert_eq!(o.code, "AccessDenied", "{o:?}"),
        _ => panic!("plain overwrite: unexpected answer {o:?}"),
    }
    if t.kind == "ceph" {
        assert_eq!(o.status, 200, "Ceph 16.2.15 versions an overwrite: {o:?}");
    }
    assert_eq!(read(verifier, key, Some(version)).await, bytes);
    let orig = verifier.head(key, Some(version)).await.unwrap().unwrap();
    assert_eq!(orig.lock, Some(lock), "the original's lock is unchanged");
    assert_eq!(orig.size, bytes.len() as u64);
}

/// The lock of a new object is the bucket default of the policy files, counted from `now`.
#[track_caller]
fn is_the_bucket_default(lock: LockState, now: DateTime<Utc>) {
    let (want_mode, want_period) = policy_default_retention();
    assert_eq!(lock.mode, want_mode);
    let period = chrono::Duration::from_std(want_period).unwrap();
    assert!(
        lock.retain_until > now + period - chrono::Duration::days(1)
            && lock.retain_until <= now + period + chrono::Duration::days(1),
        "retain-until {} is not the bucket default ({want_period:?}) from {now}",
        lock.retain_until
    );
}

async fn read(store: &S3Store, key: &str, version: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    store
        .get(key, None, version)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn dbhost_keys_create_and_read_but_cannot_delete_replace_or_weaken() {
    let (want_mode, want_period) = policy_default_retention();
    let Some(servers) = drill_targets() else {
        return;
    };
    for (t, d) in servers {
        let prefix = unique_prefix(&d, "dbhost");
        let db = store(t.dbhost_config(&prefix));
        let verifier = store(t.verifier_config(&prefix));

        // The start-up check reads the bucket's lock configuration: the policy's default.
        let ready = db.check().await.unwrap();
        assert!(ready.worm, "{ready:?}");
        assert_eq!(ready.default_retention, Some((want_mode, want_period)));

        // Create: no lock header sent, the bucket default locks it; the HEAD after the put
        // (by version id) confirms it.
        let key_a = format!("{prefix}/archive/a");
        let bytes_a = b"archived redo log A".to_vec();
        let put = db
            .put_immutable(&key_a, std::io::Cursor::new(bytes_a.clone()))
            .await
            .unwrap();
        assert!(!put.already_present);
        let version_a = put.version_id.clone().expect("a versioned bucket");
        let lock_a = put.lock.expect("locked by the bucket default");
        assert_eq!(lock_a.mode, LockMode::Compliance);
        let now = db.server_now().unwrap();
        is_the_bucket_default(lock_a, now);
        // A file, streamed.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.dbf");
        let bytes_b: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &bytes_b).unwrap();
        let key_b = format!("{prefix}/archive/b");
        let src = FileSource {
            path: file,
            size: bytes_b.len() as u64,
            sha256: Sha256::digest(&bytes_b).into(),
        };
        let put_b = db.put_file(&key_b, &src).await.unwrap();
        assert_eq!(put_b.lock.map(|l| l.mode), Some(LockMode::Compliance));

        // Read back, HEAD, list under the prefix; a missing key is a 404 (None), not a 403.
        assert_eq!(read(&db, &key_a, None).await, bytes_a);
        assert_eq!(read(&db, &key_b, None).await, bytes_b);
        let head = db.head(&key_a, None).await.unwrap().unwrap();
        assert_eq!(head.version_id.as_deref(), Some(version_a.as_str()));
        let listed: Vec<String> = db
            .list(&format!("{prefix}/"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(listed, vec![key_a.clone(), key_b.clone()]);
        assert!(
            db.head(&format!("{prefix}/missing"), None)
                .await
                .unwrap()
                .is_none()
        );
        // Create-only still works with these keys: same bytes recognised, other bytes refused.
        let again = db
            .put_immutable(&key_a, std::io::Cursor::new(bytes_a.clone()))
            .await
            .unwrap();
        assert!(again.already_present);
        let e = db
            .put_immutable(&key_a, std::io::Cursor::new(b"other".to_vec()))
            .await
            .unwrap_err();
        assert!(e.is_conflict(), "{e}");

        // Everything that would delete, hide, unlock or reconfigure: 403 AccessDenied.
        refuses_destruction(&db, &key_a, &version_a, lock_a.retain_until).await;
        refuses_weakening(&db, &d.bucket, "redovault-dbhost", &key_a, &version_a, now).await;
        refused(
            "PUT outside the prefix",
            db.admin()
                .put_plain(
                    &format!("elsewhere-{:016x}", rand::random::<u64>()),
                    Bytes::from_static(b"x"),
                )
                .await,
        );
        // Nothing was deleted or hidden: the latest version is still the original.
        let head = db
            .head(&key_a, None)
            .await
            .unwrap()
            .expect("no delete marker");
        assert_eq!(head.version_id.as_deref(), Some(version_a.as_str()));
        assert_eq!(
            verifier.versions(&key_a).await.unwrap(),
            vec![version_a.clone()]
        );

        // A plain overwrite only adds a version; the original stays as it was.
        overwrite_only_adds_a_version(&t, &db, &verifier, &key_a, &version_a, &bytes_a, lock_a)
            .await;
        assert_eq!(read(&db, &key_a, Some(&version_a)).await, bytes_a);

        // Lock headers on a PUT. AWS requires s3:PutObjectRetention for them, which the policy
        // denies; Ceph 16.2.15 does not check it on PutObject and applies them (documented in
        // deploy/s3/policies/README.md). Harmless for what is stored: only a NEW key or version
        // gets the weaker lock, and the database host still cannot use it to delete anything.
        let mut cfg = t.dbhost_config(&prefix).unwrap();
        cfg.retention = Retention::Explicit {
            mode: LockMode::Governance,
            period: Duration::from_secs(3600),
        };
        let weak = S3Store::new(cfg).unwrap();
        let key_c = format!("{prefix}/archive/c");
        let r = weak
            .put_immutable(&key_c, std::io::Cursor::new(b"c".to_vec()))
            .await;
        if t.kind == "ceph" {
            let put_c = r.expect("Ceph 16.2.15 accepts lock headers without s3:PutObjectRetention");
            assert_eq!(put_c.lock.map(|l| l.mode), Some(LockMode::Governance));
            let v = put_c.version_id.unwrap();
            refused(
                "DELETE ?versionId of a GOVERNANCE version with the bypass",
                db.admin().delete_version(&key_c, &v, true).await,
            );
            assert!(db.head(&key_c, Some(&v)).await.unwrap().is_some());
        } else {
            is_access_denied("PUT with lock headers", &r.unwrap_err());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verifier_keys_read_and_list_versions_but_cannot_write() {
    let Some(servers) = drill_targets() else {
        return;
    };
    for (t, d) in servers {
        let prefix = unique_prefix(&d, "verifier");
        let db = store(t.dbhost_config(&prefix));
        let ver = store(t.verifier_config(&prefix));
        let key = format!("{prefix}/archive/a");
        let bytes = b"archived redo log".to_vec();
        let put = db
            .put_immutable(&key, std::io::Cursor::new(bytes.clone()))
            .await
            .unwrap();
        let version = put.version_id.unwrap();

        // Reads: check, GET (latest and by version), HEAD (with the lock), list, versions.
        assert!(ver.check().await.unwrap().worm);
        assert_eq!(read(&ver, &key, None).await, bytes);
        assert_eq!(read(&ver, &key, Some(&version)).await, bytes);
        let head = ver.head(&key, Some(&version)).await.unwrap().unwrap();
        assert_eq!(head.lock, put.lock);
        assert_eq!(head.sha256, Some(put.sha256));
        let listed: Vec<String> = ver
            .list(&format!("{prefix}/"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(listed, vec![key.clone()]);
        assert_eq!(ver.versions(&key).await.unwrap(), vec![version.clone()]);
        assert!(
            ver.head(&format!("{prefix}/missing"), None)
                .await
                .unwrap()
                .is_none()
        );

        // Writes: every one refused.
        let e = ver
            .put_immutable(
                &format!("{prefix}/archive/new"),
                std::io::Cursor::new(b"new".to_vec()),
            )
            .await
            .unwrap_err();
        is_access_denied("store put", &e);
        refused(
            "PUT a new key",
            ver.admin()
                .put_plain(&format!("{prefix}/archive/new2"), Bytes::from_static(b"x"))
                .await,
        );
        refused(
            "PUT over the key",
            ver.admin().put_plain(&key, Bytes::from_static(b"x")).await,
        );
        refuses_destruction(&ver, &key, &version, put.lock.unwrap().retain_until).await;
        // Still exactly the one original version.
        assert_eq!(ver.versions(&key).await.unwrap(), vec![version]);
        assert_eq!(read(&ver, &key, None).await, bytes);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_keys_create_and_read_streams_but_cannot_delete_replace_or_weaken() {
    let (want_mode, want_period) = policy_default_retention();
    let Some(servers) = drill_targets() else {
        return;
    };
    for (t, d) in servers {
        let stream = unique_stream(&d, "collector");
        let col = store(t.collector_config(&d.prefix));
        let db = store(t.dbhost_config(&d.prefix));
        let verifier = store(t.verifier_config(&d.prefix));

        // The start-up check reads the bucket's lock configuration: the policy's default.
        let ready = col.check().await.unwrap();
        assert!(ready.worm, "{ready:?}");
        assert_eq!(ready.default_retention, Some((want_mode, want_period)));

        // A piece, created as the collector creates it: create-only, no lock header; the
        // bucket default locks it, the HEAD after the put (by version id) confirms it.
        let bytes = b"RVPIECE1 sealed to the recovery key".to_vec();
        let key = format!(
            "{stream}/pieces/0000000015-0000000000000000-{}.rvp",
            hex::encode(Sha256::digest(&bytes))
        );
        let put = col
            .put_immutable(&key, std::io::Cursor::new(bytes.clone()))
            .await
            .unwrap();
        assert!(!put.already_present);
        let version = put.version_id.clone().expect("a versioned bucket");
        let lock = put.lock.expect("locked by the bucket default");
        let now = col.server_now().unwrap();
        is_the_bucket_default(lock, now);
        // A piece large enough for a multipart upload (the policy's multipart actions).
        let mut cfg = t.collector_config(&d.prefix).unwrap();
        cfg.multipart_threshold = 5 << 20;
        cfg.part_size = 5 << 20;
        let col_mp = S3Store::new(cfg.clone()).unwrap();
        assert!(col_mp.check().await.unwrap().worm);
        let big: Vec<u8> = (0..(6u32 << 20)).map(|i| (i % 253) as u8).collect();
        let key_big = format!("{stream}/pieces/0000000015-0000000000004000-big.rvp");
        let put_big = col_mp
            .put_immutable(&key_big, std::io::Cursor::new(big.clone()))
            .await
            .unwrap();
        is_the_bucket_default(put_big.lock.expect("locked by the bucket default"), now);
        // The chain segment.
        let key_chain = format!("{stream}/manifest/1-2-0000.jsonl");
        col.put_immutable(&key_chain, std::io::Cursor::new(b"{}\n".to_vec()))
            .await
            .unwrap();

        // Read back, HEAD, list the stream; a missing key is a 404 (None), not a 403.
        assert_eq!(read(&col, &key, None).await, bytes);
        assert_eq!(read(&col, &key, Some(&version)).await, bytes);
        assert_eq!(read(&col, &key_big, None).await, big);
        let head = col.head(&key, None).await.unwrap().unwrap();
        assert_eq!(head.version_id.as_deref(), Some(version.as_str()));
        assert_eq!(head.lock, Some(lock));
        let listed: Vec<String> = col
            .list(&format!("{stream}/"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(
            listed,
            vec![key_chain.clone(), key.clone(), key_big.clone()]
        );
        assert!(
            col.head(&format!("{stream}/pieces/missing.rvp"), None)
                .await
                .unwrap()
                .is_none()
        );
        // Create-only: same bytes recognised, other bytes refused.
        let again = col
            .put_immutable(&key, std::io::Cursor::new(bytes.clone()))
            .await
            .unwrap();
        assert!(again.already_present);
        let e = col
            .put_immutable(&key, std::io::Cursor::new(b"other".to_vec()))
            .await
            .unwrap_err();
        assert!(e.is_conflict(), "{e}");
        // The verifier audits the pieces: it reads them with its own keys.
        assert_eq!(read(&verifier, &key, Some(&version)).await, bytes);

        // Everything that would delete, hide, unlock or reconfigure: 403 AccessDenied.
        refuses_destruction(&col, &key, &version, lock.retain_until).await;
        refuses_weakening(&col, &d.bucket, "redovault-collector", &key, &version, now).await;
        let head = col
            .head(&key, None)
            .await
            .unwrap()
            .expect("no delete marker");
        assert_eq!(head.version_id.as_deref(), Some(version.as_str()));
        assert_eq!(
            verifier.versions(&key).await.unwrap(),
            vec![version.clone()]
        );
        // A plain overwrite only adds a version; the original stays as it was.
        overwrite_only_adds_a_version(&t, &col, &verifier, &key, &version, &bytes, lock).await;

        // Nothing outside `PREFIX/streams/`: not the watcher's archives and manifest, not
        // elsewhere in the bucket; no listing there, and no reading the database host's
        // archives (plain redo).
        let run = unique_prefix(&d, "collector");
        for outside in [
            format!(
                "{}/archive/sha256/{:064x}",
                d.prefix,
                rand::random::<u128>()
            ),
            format!("{}/manifest/{:016x}.jsonl", d.prefix, rand::random::<u64>()),
            format!("{run}/archive/a"),
            format!("{}/streamsx/{:016x}", d.prefix, rand::random::<u64>()),
            format!("elsewhere-{:016x}", rand::random::<u64>()),
        ] {
            refused(
                &format!("collector: PUT {outside}"),
                col.admin()
                    .put_plain(&outside, Bytes::from_static(b"x"))
                    .await,
            );
            let e = col
                .put_immutable(&outside, std::io::Cursor::new(b"x".to_vec()))
                .await
                .unwrap_err();
            is_access_denied(&format!("collector: store put {outside}"), &e);
        }
        let e = col
            .list(&format!("{}/archive/", d.prefix))
            .await
            .unwrap_err();
        is_access_denied("collector: LIST PREFIX/archive/", &e);
        let archive = format!("{run}/archive/a");
        db.put_immutable(&archive, std::io::Cursor::new(b"plain redo".to_vec()))
            .await
            .unwrap();
        let e = col.get(&archive, None, None).await.err().expect("refused");
        is_access_denied("collector: GET an archived log", &e);

        // The database host's keys write nothing under `PREFIX/streams/`: no decoy piece, no
        // new version over a real one, not by multipart either.
        let decoy = format!("{stream}/pieces/0000000015-0000000000008000-decoy.rvp");
        refused(
            "database host: PUT a decoy piece",
            db.admin()
                .put_plain(&decoy, Bytes::from_static(b"decoy"))
                .await,
        );
        refused(
            "database host: PUT over a piece",
            db.admin()
                .put_plain(&key, Bytes::from_static(b"decoy"))
                .await,
        );
        let e = db
            .put_immutable(&decoy, std::io::Cursor::new(b"decoy".to_vec()))
            .await
            .unwrap_err();
        is_access_denied("database host: store put of a decoy piece", &e);
        let mut cfg = t.dbhost_config(&d.prefix).unwrap();
        cfg.multipart_threshold = 5 << 20;
        cfg.part_size = 5 << 20;
        let db_mp = S3Store::new(cfg).unwrap();
        let e = db_mp
            .put_immutable(&decoy, std::io::Cursor::new(big.clone()))
            .await
            .unwrap_err();
        is_access_denied("database host: multipart put of a decoy piece", &e);
        let e = db
            .put_immutable(
                &format!("{}/streams/db1-rl2-t1/pieces/decoy.rvp", d.prefix),
                std::io::Cursor::new(b"decoy".to_vec()),
            )
            .await
            .unwrap_err();
        is_access_denied("database host: store put into another stream", &e);
        // The stream holds exactly what the collector wrote.
        let listed: Vec<String> = verifier
            .list(&format!("{stream}/"))
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(listed, vec![key_chain, key.clone(), key_big]);
        assert_eq!(read(&verifier, &key, Some(&version)).await, bytes);
    }
}

/// The real Oracle archived logs (from `../shared`), or `None`: the test skips, saying so.
fn fixtures() -> Option<Vec<PathBuf>> {
    let dir = crate::oracle_real::free23()?;
    Some(
        ["arch1_15_1224959854.dbf", "arch1_16_1224959854.dbf"]
            .iter()
            .map(|n| dir.join(n))
            .collect(),
    )
}

/// A TOML string array.
fn strs(v: &[&str]) -> toml::Value {
    toml::Value::Array(v.iter().map(|s| toml::Value::from(*s)).collect())
}

/// `deploy/config/NAME` with the given `(section, key, value)` set. Each key must already be
/// in the example (the examples list every key), and everything else stays the example's.
/// The example's acknowledged gaps are the example site's own, not this test's: dropped.
fn from_example(name: &str, set: &[(&str, &str, toml::Value)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/config")
        .join(name);
    let mut doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    for (section, key, value) in set {
        let table = doc
            .get_mut(*section)
            .and_then(toml::Value::as_table_mut)
            .unwrap_or_else(|| panic!("{name}: no [{section}]"));
        assert!(table.contains_key(*key), "{name}: no {section}.{key}");
        table.insert((*key).to_string(), value.clone());
    }
    if let Some(v) = doc.get_mut("verify").and_then(toml::Value::as_table_mut) {
        v.remove("acknowledged_gaps");
    }
    toml::to_string(&doc).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn daemons_with_the_split_keys_ship_verify_and_restore_the_real_oracle_logs() {
    let Some(logs) = fixtures() else {
        return;
    };
    let bins = crate::netkit::bins();
    let Some(servers) = drill_targets() else {
        return;
    };
    for (t, d) in servers {
        let prefix = unique_prefix(&d, "daemons");
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("archive");
        let state = dir.path().join("state");
        let alarms = dir.path().join("alarms.jsonl");
        std::fs::create_dir_all(&archive).unwrap();
        for f in &logs {
            std::fs::copy(f, archive.join(f.file_name().unwrap())).unwrap();
        }
        // The example a DBA copies (deploy/config/watcher.example.toml), with only the site's
        // own values set: its lock settings are what the shipped policy must accept.
        let watcher_cfg = dir.path().join("watcher.toml");
        let alarm_cmd = format!("cat >> '{}'", alarms.display());
        let watcher_toml = from_example(
            "watcher.example.toml",
            &[
                ("watch", "dirs", strs(&[archive.to_str().unwrap()])),
                ("watch", "scan_interval", "1s".into()),
                ("watch", "grace_period", "2s".into()),
                ("watch", "retry_max_backoff", "2s".into()),
                ("state", "dir", state.to_str().unwrap().into()),
                ("state", "status_interval", "300ms".into()),
                ("state", "seal_interval", "1h".into()),
                ("store", "endpoint", t.endpoint.as_str().into()),
                ("store", "bucket", d.bucket.as_str().into()),
                ("store", "region", t.region.as_str().into()),
                ("store", "path_style", true.into()),
                ("store", "ca_file", t.ca.to_str().unwrap().into()),
                ("store", "prefix", prefix.as_str().into()),
                ("telemetry", "log_format", "json".into()),
                ("telemetry", "metrics_listen", "".into()),
                ("alert", "command", strs(&["sh", "-c", &alarm_cmd])),
            ],
        );
        assert!(
            watcher_toml.contains("retention = \"bucket-default\""),
            "the example keeps the bucket's default retention:\n{watcher_toml}"
        );
        std::fs::write(&watcher_cfg, watcher_toml).unwrap();
        let as_dbhost = |cmd: &mut Command| {
            cmd.env("AWS_ACCESS_KEY_ID", &d.dbhost.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &d.dbhost.secret_key)
                .env_remove("AWS_SESSION_TOKEN")
                .env_remove("RUST_LOG");
        };

        // `redovault watch` ships both logs, then seals the manifest at SIGTERM.
        let log = dir.path().join("watch.log");
        let mut cmd = Command::new(RV);
        cmd.args(["watch", "--config"]).arg(&watcher_cfg);
        as_dbhost(&mut cmd);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let manifest = state.join("manifest");
        let t0 = Instant::now();
        loop {
            let n = redovault::manifest::read_entries(&manifest).map_or(0, |e| e.len());
            if n == logs.len() {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "the watcher exited ({st}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if t0.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the watcher shipped {n} of {} logs in 120 s:\n{}",
                    logs.len(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let st = child.wait().unwrap();
        let watch_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(st.success(), "watcher exit {st}:\n{watch_log}");
        assert!(
            !alarms.exists() || std::fs::read_to_string(&alarms).unwrap().trim().is_empty(),
            "no alarm with the database host's keys: {}\n{watch_log}",
            std::fs::read_to_string(&alarms).unwrap_or_default()
        );
        // Shipped in parallel: in the manifest in the order the uploads finished.
        let mut entries = redovault::manifest::read_entries(&manifest).unwrap();
        entries.sort_by_key(|e| e.sequence.0);
        assert_eq!(
            entries.iter().map(|e| e.sequence.0).collect::<Vec<_>>(),
            vec![15, 16]
        );
        for (e, f) in entries.iter().zip(&logs) {
            assert_eq!(
                e.sha256.0,
                <[u8; 32]>::from(Sha256::digest(std::fs::read(f).unwrap()))
            );
        }

        // `redovault push` of the same logs with the same keys: found shipped (create-only
        // comparison by HEAD, which needs the policy's ListBucket grant for a 404).
        let mut cmd = Command::new(RV);
        cmd.args(["push", "--config"]).arg(&watcher_cfg).args(&logs);
        as_dbhost(&mut cmd);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "push: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.matches("\"outcome\":\"already_shipped\"").count(),
            2,
            "{stdout}"
        );

        // Objects and sealed manifest in WORM, locked by the bucket default (seen by the
        // verifier's keys).
        let ver = store(t.verifier_config(&prefix));
        for e in &entries {
            let info = ver
                .head(&e.object_key, e.version_id.as_deref())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(info.lock.map(|l| l.mode), Some(LockMode::Compliance));
        }
        assert!(
            !ver.list(&format!("{prefix}/manifest/"))
                .await
                .unwrap()
                .is_empty(),
            "the manifest is sealed into WORM"
        );

        // `redovault-verifier verify` and `restore archive` with the read-only keys.
        // From the verifier's example too: its lock checks (COMPLIANCE, at least the
        // example's minimum retention) hold for what the bucket default locked.
        let verifier_cfg = dir.path().join("verifier.toml");
        let verifier_toml = from_example(
            "verifier.example.toml",
            &[
                ("store", "endpoint", t.endpoint.as_str().into()),
                ("store", "bucket", d.bucket.as_str().into()),
                ("store", "region", t.region.as_str().into()),
                ("store", "path_style", true.into()),
                ("store", "ca_file", t.ca.to_str().unwrap().into()),
                ("store", "prefix", prefix.as_str().into()),
                (
                    "verify",
                    "local_manifest",
                    manifest.to_str().unwrap().into(),
                ),
                ("verify", "deep", "all".into()),
                (
                    "verify",
                    "state_dir",
                    dir.path().join("verifier-state").to_str().unwrap().into(),
                ),
                ("verify", "report_dir", "".into()),
                ("telemetry", "metrics_listen", "".into()),
            ],
        );
        // No collector host here: the example's [[collector]] list is dropped.
        let mut verifier_doc: toml::Table = verifier_toml.parse().unwrap();
        assert!(verifier_doc.remove("collector").is_some());
        let verifier_toml = toml::to_string(&verifier_doc).unwrap();
        std::fs::write(&verifier_cfg, verifier_toml).unwrap();
        let run_verifier = |args: &[&str]| {
            run_with_keys(
                &bins.verifier,
                args,
                &d.verifier.access_key,
                &d.verifier.secret_key,
            )
        };
        let cfg = verifier_cfg.to_str().unwrap();
        let (code, out) = run_verifier(&["verify", "--config", cfg]);
        assert_eq!(code, Some(0), "{out}");
        assert!(out.contains("CLEAN"), "{out}");
        let dest = dir.path().join("restore");
        let (code, out) = run_verifier(&[
            "restore",
            "archive",
            "--config",
            cfg,
            "--dest",
            dest.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{out}");
        for f in &logs {
            assert!(
                std::fs::read(dest.join(f.file_name().unwrap())).unwrap()
                    == std::fs::read(f).unwrap(),
                "{} restored byte for byte",
                f.display()
            );
        }
    }
}
