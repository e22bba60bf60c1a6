//! Upload benchmark: the same files, the same S3 server, the same run, three uploaders:
//! our store (`put_immutable`: hashing, Object Lock, HEAD check included), `curl -T` (no
//! hashing: the near-limit baseline) and `aws s3 cp`. Prints MB/s and client CPU seconds.
//!
//! Run it with `deploy/bench.sh`, which starts Ceph radosgw and installs the aws CLI.
//! Environment: `REDOVAULT_TEST_S3_TARGETS` (an `env.sh` of `deploy/s3/server.sh`),
//! `REDOVAULT_BENCH_AWS` (path of `aws`), `REDOVAULT_BENCH_FILES` (20), `REDOVAULT_BENCH_MIB`
//! (50).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[path = "common.rs"]
mod common;
use common::{Row, Target, cpu_seconds, run_cmd};

use redovault::store::ArchiveStore;
use redovault::store::s3::S3Store;
use redovault_drill::testserver::TestServer;

fn make_files(dir: &Path, n: usize, mib: usize) -> Vec<PathBuf> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|i| {
            let p = dir.join(format!("arch1_{}_1224959854.dbf", 100 + i));
            let mut data = vec![0u8; mib << 20];
            for c in data.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                c.copy_from_slice(&state.to_le_bytes()[..c.len()]);
            }
            std::fs::write(&p, &data).unwrap();
            p
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let targets = std::env::var("REDOVAULT_TEST_S3_TARGETS")
        .expect("REDOVAULT_TEST_S3_TARGETS: run through deploy/bench.sh");
    let server = TestServer::from_env_file(targets.split(',').next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let aws = std::env::var("REDOVAULT_BENCH_AWS").expect("REDOVAULT_BENCH_AWS: path of aws");
    let n: usize = std::env::var("REDOVAULT_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mib: usize = std::env::var("REDOVAULT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let endpoint = server.endpoint.to_string();
    let ca = server.ca.display().to_string();
    // The bucket with a default retention: Ceph drops the lock headers of multipart uploads,
    // and only a bucket default locks those (our HEAD check refuses anything else).
    let bucket = server.bucket_default.clone();
    let key = server.access_key.clone();
    let secret = server.secret_key.clone();
    let run_id = format!("{:08x}", rand::random::<u32>());

    let dir = tempfile::tempdir().unwrap();
    println!("generating {n} files of {mib} MiB");
    let files = make_files(dir.path(), n, mib);
    // Warm the page cache for everyone alike.
    for p in &files {
        let _ = std::fs::read(p);
    }

    let mut rows = Vec::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for (label, threshold, parallel_files, content_md5) in [
        (
            "redovault store (single PUT per file)",
            64u64 << 20,
            1usize,
            false,
        ),
        (
            "redovault store (multipart 16 MiB parts x4)",
            16 << 20,
            1,
            false,
        ),
        ("redovault store (2 files at once)", 64 << 20, 2, false),
        (
            "redovault store (single PUT, + Content-MD5)",
            64 << 20,
            1,
            true,
        ),
    ] {
        let mut c = server.config(&bucket);
        c.multipart_threshold = threshold;
        c.content_md5 = content_md5;
        let store = Arc::new(S3Store::new(c).unwrap());
        let prefix = format!("bench-{run_id}/{}", rows.len());
        let total: u64 = files
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        rt.block_on(store.check()).unwrap();
        let (c0, _) = cpu_seconds();
        let t0 = Instant::now();
        rt.block_on(async {
            let sem = Arc::new(tokio::sync::Semaphore::new(parallel_files));
            let mut set = tokio::task::JoinSet::new();
            for p in files.clone() {
                let permit = Arc::clone(&sem).acquire_owned().await.unwrap();
                let store = Arc::clone(&store);
                let key = format!("{prefix}/{}", p.file_name().unwrap().to_string_lossy());
                set.spawn(async move {
                    let f = tokio::fs::File::open(&p).await.unwrap();
                    let o = store.put_immutable(&key, f).await.unwrap();
                    drop(permit);
                    o
                });
            }
            while let Some(r) = set.join_next().await {
                assert!(r.unwrap().lock.is_some());
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        let (c1, _) = cpu_seconds();
        rows.push(Row {
            name: label.to_string(),
            secs,
            cpu: c1 - c0,
            bytes: total,
        });
    }

    let target = Target {
        endpoint: endpoint.trim_end_matches('/').to_string(),
        ca: ca.clone(),
        bucket: bucket.clone(),
        key: key.clone(),
        secret: secret.clone(),
    };
    rows.push(run_cmd(
        "curl -T (SigV4, UNSIGNED-PAYLOAD, no lock)",
        &files,
        1,
        |p, i| common::curl(&target, p, &format!("bench-{run_id}/curl/{i}")),
    ));
    rows.push(run_cmd("aws s3 cp (awscli v1)", &files, 1, |p, i| {
        common::aws(&aws, &target, p, &format!("bench-{run_id}/aws/{i}"))
    }));

    println!();
    println!("{n} files x {mib} MiB to {endpoint} ({bucket}), HTTPS");
    println!(
        "{:<46} {:>9} {:>9} {:>11}",
        "uploader", "seconds", "MB/s", "client CPU s"
    );
    for r in &rows {
        println!(
            "{:<46} {:>9.2} {:>9.1} {:>11.2}",
            r.name,
            r.secs,
            r.bytes as f64 / 1e6 / r.secs,
            r.cpu
        );
    }
    let curl = rows.iter().find(|r| r.name.starts_with("curl")).unwrap();
    let aws_row = rows.iter().find(|r| r.name.starts_with("aws")).unwrap();
    for r in rows.iter().filter(|r| r.name.starts_with("redovault")) {
        println!(
            "{}: {:.0}% of curl's throughput, {:.0}% of the aws CLI's CPU",
            r.name,
            100.0 * (r.bytes as f64 / r.secs) / (curl.bytes as f64 / curl.secs),
            100.0 * r.cpu / aws_row.cpu
        );
    }
}
