//! Restore benchmark: the same objects, the same S3 server, the same run: `restore archive`
//! (parallel streamed GETs, SHA-256 verified against the manifest, fsync, rename in order)
//! beside raw `curl` GETs (no hashing, no fsync) one at a time and several at once.
//! Also deep verification (download + SHA-256, as `verify --deep all`) beside SHA-256's own
//! speed on one core. Prints MB/s and client CPU seconds.
//!
//! Run it with `deploy/bench.sh restore` (starts Ceph radosgw). Environment:
//! `REDOVAULT_TEST_S3_TARGETS` (an `env.sh` of `deploy/s3/server.sh`), `REDOVAULT_BENCH_FILES`
//! (20), `REDOVAULT_BENCH_MIB` (50).

use redovault_redo::position::{DbId, ResetlogsId};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use redovault::store::ArchiveStore;
use redovault::store::s3::S3Store;
use redovault_drill::testserver::TestServer;
use redovault_verifier::restore::{RestoreItem, restore_archive};
use sha2::{Digest, Sha256};

/// CPU seconds (user + system) of this process, and of its waited-for children.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = 100.0;
    let own = (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / tick;
    let children = (f.get(13).copied().unwrap_or(0.0) + f.get(14).copied().unwrap_or(0.0)) / tick;
    (own, children)
}

struct Row {
    name: String,
    secs: f64,
    cpu: f64,
    bytes: u64,
}

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut data = vec![0u8; len];
    for c in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        c.copy_from_slice(&state.to_le_bytes()[..c.len()]);
    }
    data
}

fn curl_get(
    server: &TestServer,
    bucket: &str,
    key: &str,
    out: &Path,
) -> std::io::Result<std::process::Child> {
    let host = server.endpoint.as_str().trim_end_matches('/').to_string();
    Command::new("curl")
        .args(["-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
        .arg(format!("{}:{}", server.access_key, server.secret_key))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--cacert"])
        .arg(&server.ca)
        .arg("-o")
        .arg(out)
        .arg(format!("{host}/{bucket}/{key}"))
        .spawn()
}

fn curl_rows(
    server: &TestServer,
    bucket: &str,
    items: &[RestoreItem],
    dir: &Path,
    parallel: usize,
) -> Row {
    let total: u64 = items.iter().map(|i| i.size).sum();
    let (_, c0) = cpu_seconds();
    let t0 = Instant::now();
    for (n, batch) in items.chunks(parallel).enumerate() {
        let children: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, it)| {
                curl_get(server, bucket, &it.key, &dir.join(format!("c{n}-{i}"))).unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "curl GET failed");
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (_, c1) = cpu_seconds();
    Row {
        name: format!("curl GET, {parallel} at a time (no hash, no fsync)"),
        secs,
        cpu: c1 - c0,
        bytes: total,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh restore");
    let server = TestServer::from_env_file(targets.split(',').next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let n = env_usize("REDOVAULT_BENCH_FILES", 20);
    let mib = env_usize("REDOVAULT_BENCH_MIB", 50);
    let bucket = server.bucket_default.clone();
    let store = Arc::new(S3Store::new(server.config(&bucket)).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let run_id = format!("{:08x}", rand_seed());
    println!("uploading {n} objects of {mib} MiB (set-up, not measured)");
    let items: Vec<RestoreItem> = rt.block_on(async {
        let mut items = Vec::new();
        for i in 0..n {
            let data = random_bytes(mib << 20, rand_seed() ^ i as u64);
            let sha: [u8; 32] = Sha256::digest(&data).into();
            let key = format!("bench-restore-{run_id}/archive/sha256/{}", hex::encode(sha));
            let size = data.len() as u64;
            let o = store
                .put_immutable(&key, std::io::Cursor::new(data))
                .await
                .unwrap();
            items.push(RestoreItem {
                key,
                version_id: o.version_id,
                sha256: sha,
                size,
                file_name: format!("arch_1_{}_1224959854.arc", 100 + i),
                stored: None,
            });
        }
        items
    });
    let scratch = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for parallel in [1usize, 4, 8] {
        let dest = scratch.path().join(format!("restore-{parallel}"));
        let total: u64 = items.iter().map(|i| i.size).sum();
        let (c0, _) = cpu_seconds();
        let t0 = Instant::now();
        let s = rt
            .block_on(restore_archive(
                Arc::clone(&store),
                &items,
                &dest,
                parallel,
                |_| {},
            ))
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let (c1, _) = cpu_seconds();
        assert_eq!(s.restored, n);
        rows.push(Row {
            name: format!("redovault restore archive, {parallel} in parallel"),
            secs,
            cpu: c1 - c0,
            bytes: total,
        });
        std::fs::remove_dir_all(&dest).unwrap();
    }
    // Deep verification: download + SHA-256 of every object (no disk writes), as `verify
    // --deep all` does for each manifest entry.
    let entries: Vec<redovault::manifest::ManifestEntry> = items
        .iter()
        .enumerate()
        .map(|(i, it)| redovault::manifest::ManifestEntry {
            index: i as u64 + 1,
            db_id: DbId(1),
            db_name: "BENCH".into(),
            resetlogs_id: ResetlogsId(1),
            thread: redovault_redo::position::ThreadId(1),
            sequence: redovault_redo::position::LogSeq(100 + i as u32),
            first_scn: redovault_redo::position::Scn(0),
            next_scn: redovault_redo::position::Scn(0),
            first_time: String::new(),
            next_time: String::new(),
            size: it.size,
            sha256: redovault::manifest::Sha256Digest(it.sha256),
            object_key: it.key.clone(),
            version_id: it.version_id.clone(),
            retain_until: None,
            shipped_at: String::new(),
            file_name: it.file_name.clone(),
            stored: None,
            prev: redovault::manifest::Sha256Digest::ZERO,
        })
        .collect();
    for parallel in [1usize, 2, 4] {
        let total: u64 = items.iter().map(|i| i.size).sum();
        let (c0, _) = cpu_seconds();
        let t0 = Instant::now();
        let ok = rt.block_on(async {
            use futures::StreamExt;
            futures::stream::iter(entries.iter().map(|e| {
                let store = Arc::clone(&store);
                async move {
                    redovault_verifier::objects::deep_check(store.as_ref(), e, None)
                        .await
                        .unwrap()
                }
            }))
            .buffer_unordered(parallel)
            .filter(|r| futures::future::ready(r.findings.is_empty()))
            .count()
            .await
        });
        let secs = t0.elapsed().as_secs_f64();
        let (c1, _) = cpu_seconds();
        assert_eq!(ok, n, "every object re-hashes to its SHA-256");
        rows.push(Row {
            name: format!("redovault deep verify, {parallel} in parallel"),
            secs,
            cpu: c1 - c0,
            bytes: total,
        });
    }
    // SHA-256 alone on one core, for the deep-verify goal.
    let buf = random_bytes(256 << 20, 9);
    let t0 = Instant::now();
    let d = Sha256::digest(&buf);
    let sha_secs = t0.elapsed().as_secs_f64();
    std::hint::black_box(d);
    println!(
        "SHA-256 in memory on one core: {:.0} MB/s",
        buf.len() as f64 / 1e6 / sha_secs
    );
    for parallel in [1usize, 4, 8] {
        let dir = scratch.path().join(format!("curl-{parallel}"));
        std::fs::create_dir_all(&dir).unwrap();
        rows.push(curl_rows(&server, &bucket, &items, &dir, parallel));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    println!();
    println!(
        "{n} objects x {mib} MiB from {} ({bucket}), HTTPS",
        server.endpoint
    );
    println!(
        "{:<52} {:>8} {:>9} {:>12}",
        "reader", "seconds", "MB/s", "client CPU s"
    );
    for r in &rows {
        println!(
            "{:<52} {:>8.2} {:>9.1} {:>12.2}",
            r.name,
            r.secs,
            r.bytes as f64 / 1e6 / r.secs,
            r.cpu
        );
    }
    let mbps = |r: &Row| r.bytes as f64 / r.secs;
    let best_curl = rows
        .iter()
        .filter(|r| r.name.starts_with("curl"))
        .map(mbps)
        .fold(0.0, f64::max);
    for r in rows
        .iter()
        .filter(|r| r.name.starts_with("redovault restore"))
    {
        println!(
            "{}: {:.0}% of the best curl throughput",
            r.name,
            100.0 * mbps(r) / best_curl
        );
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
}
