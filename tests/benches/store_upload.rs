//! Upload benchmark: the same files, the same S3 server, the same run, three uploaders:
//! our store (`put_immutable`: hashing, Object Lock, HEAD check included), `curl -T` (no
//! hashing: the near-limit baseline) and `aws s3 cp`. Prints MB/s and client CPU seconds.
//!
//! Run it with `deploy/bench.sh`, which starts Ceph radosgw and installs the aws CLI.
//! Environment: `REDOVAULT_TEST_S3_TARGETS` (an `env.sh` of `deploy/s3/server.sh`),
//! `REDOVAULT_BENCH_AWS` (path of `aws`), `REDOVAULT_BENCH_FILES` (20), `REDOVAULT_BENCH_MIB`
//! (50).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use redovault::store::ArchiveStore;
use redovault::store::s3::S3Store;
use redovault::store::s3::testserver::TestServer;

/// CPU seconds (user + system) of this process and of its waited-for children.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // rest[0] is field 3 (state): utime is field 14 → index 11.
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

fn run_cmd(name: &str, files: &[PathBuf], mut f: impl FnMut(&Path, usize) -> Command) -> Row {
    let total: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let (_, c0) = cpu_seconds();
    let t0 = Instant::now();
    for (i, p) in files.iter().enumerate() {
        let out = f(p, i).output().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            out.status.success(),
            "{name} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let (_, c1) = cpu_seconds();
    Row {
        name: name.to_string(),
        secs,
        cpu: c1 - c0,
        bytes: total,
    }
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

    let host = endpoint.trim_end_matches('/').to_string();
    rows.push(run_cmd(
        "curl -T (SigV4, UNSIGNED-PAYLOAD, no lock)",
        &files,
        |p, i| {
            let mut c = Command::new("curl");
            c.args(["-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
                .arg(format!("{key}:{secret}"))
                .args([
                    "-H",
                    "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                    "--cacert",
                    &ca,
                    "-T",
                ])
                .arg(p)
                .arg(format!("{host}/{bucket}/bench-{run_id}/curl/{i}"));
            c
        },
    ));
    rows.push(run_cmd("aws s3 cp (awscli v1)", &files, |p, i| {
        let mut c = Command::new(&aws);
        c.env("AWS_ACCESS_KEY_ID", &key)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .args([
                "--endpoint-url",
                &host,
                "--ca-bundle",
                &ca,
                "s3",
                "cp",
                "--quiet",
            ])
            .arg(p)
            .arg(format!("s3://{bucket}/bench-{run_id}/aws/{i}"));
        c
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
