//! Sustained throughput, extractor to collector, with the real binaries: TLS 1.3 and the
//! legacy Blowfish mode.
//!
//! A simulated database first writes a backlog of `REDOVAULT_BENCH_SHIP_MIB` MiB of redo (64 MiB
//! logs, 3 groups: all but the last log are archived, their online groups reused). The
//! extractor (`redovault-extractor`, release build) starts from a checkpoint at the start of
//! the first log, so it reads the whole backlog (archived copies, then the CURRENT log),
//! decodes it, and ships it to the collector (`redovault-collector`: AES-256-GCM segments,
//! group commit with fdatasync before every Ack) over 127.0.0.1. Timed from the extractor's
//! start until the collector holds the backlog's last commit durably. CPU seconds per side
//! are each process's user + system time (`/proc/<pid>/stat`), the collector's idle start-up
//! subtracted. Goal (issue 5): >= 100 MB/s with TLS, under one core per side.
//!
//! Run: `cargo bench --bench ship_throughput` (or `deploy/bench.sh ship-throughput`).
//! `REDOVAULT_BENCH_SHIP_MIB` (default 1024), `REDOVAULT_BENCH_SHIP_DIR` (default
//! `<target>/bench-ship-throughput`), `REDOVAULT_BENCH_MODES` (`tls,blowfish`).

#[path = "common.rs"]
mod common;

use common::{env_u64, free_port};
use redovault_redo::position::ResetlogsId;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redovault::crypto::legacy::Psk;
use redovault::crypto::tls;
use redovault::wire::{StreamId, StreamPos};
use redovault_drill::simulate::{Rate, SimConfig};
use redovault_redo::{LogSeq, ThreadId};

/// The target directory and profile directory of the binary under bench.
fn profile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_redovault"))
        .parent()
        .expect("profile dir")
        .to_path_buf()
}

/// User + system CPU seconds of a process.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn metric(addr: SocketAddr, key: &str) -> Option<f64> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    use std::io::Write;
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.trim().parse().ok()))
}

fn spawn(bin: &Path, cfg: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).unwrap();
    Command::new(bin)
        .arg("--config")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn")
}

fn stop(mut c: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    for _ in 0..200 {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

struct Result {
    mode: &'static str,
    mb: f64,
    secs: f64,
    ext_cpu: f64,
    col_cpu: f64,
}

#[allow(clippy::too_many_arguments)]
fn run_mode(
    mode: &'static str,
    root: &Path,
    sim: &SimConfig,
    last_scn: u64,
    bins: &(PathBuf, PathBuf),
    pki: &tls::PkiPaths,
    keys: &Path,
    psk: &Path,
) -> Result {
    let dir = root.join(mode);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, cport, eport) = (free_port(), free_port(), free_port());
    let (ccipher, ecipher) = if mode == "tls" {
        (
            format!(
                "[tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
                pki.server_cert.display(),
                pki.server_key.display(),
                pki.ca.display()
            ),
            format!(
                "ca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
                pki.ca.display(),
                pki.client_cert.display(),
                pki.client_key.display()
            ),
        )
    } else {
        (
            format!("[legacy]\npsk_file = \"{}\"\n", psk.display()),
            format!("cipher = \"blowfish\"\npsk_file = \"{}\"\n", psk.display()),
        )
    };
    let listen_cipher = if mode == "tls" { "tls" } else { "blowfish" };
    let ccfg = dir.join("collector.toml");
    std::fs::write(
        &ccfg,
        format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\ncipher = \"{listen_cipher}\"\n{ccipher}\
             [store]\ndir = \"{}\"\nkey_file = \"{}\"\n\
             [telemetry]\nlog_level = \"warn\"\nmetrics_listen = \"127.0.0.1:{cport}\"\n",
            dir.join("store").display(),
            keys.display()
        ),
    )
    .unwrap();
    let groups: String = (1..=sim.groups)
        .map(|g| {
            format!(
                "[[online.group]]\nmembers = [\"{}\"]\n",
                sim.dir.join(format!("online/redo_t1_g{g}.log")).display()
            )
        })
        .collect();
    let state = dir.join("extractor-state");
    let ecfg = dir.join("extractor.toml");
    std::fs::write(
        &ecfg,
        format!(
            "[online]\n{groups}[archive]\ndirs = [\"{}\"]\n[state]\ndir = \"{}\"\n\
             [collector]\naddress = \"127.0.0.1:{port}\"\nserver_name = \"localhost\"\n\
             extractor_id = \"redovault-extractor\"\n{ecipher}\
             [telemetry]\nlog_level = \"warn\"\nmetrics_listen = \"127.0.0.1:{eport}\"\n",
            sim.dir.join("archive").display(),
            state.display()
        ),
    )
    .unwrap();
    // Ship the whole backlog: a checkpoint at the start of the first log.
    let stream = StreamId {
        db_id: sim.db_id,
        resetlogs_id: ResetlogsId(sim.resetlogs_id()),
        thread: ThreadId(1),
    };
    let mut cp = redovault_extractor::checkpoint::CheckpointStore::open(&state, stream).unwrap();
    cp.advance(
        StreamPos {
            seq: LogSeq(sim.start_sequence),
            offset: 0,
        },
        None,
    )
    .unwrap();
    let collector = spawn(&bins.1, &ccfg, &dir.join("collector.log"));
    let caddr = SocketAddr::from(([127, 0, 0, 1], cport));
    let t = Instant::now();
    while metric(caddr, "redovault_collector_store_failed").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "collector did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let col_cpu0 = process_cpu(collector.id());
    let scn_key = format!("redovault_collector_durable_scn{{stream=\"{stream}\"}}");
    let bytes_key = format!("redovault_collector_stored_bytes_total{{stream=\"{stream}\"}}");
    let start = Instant::now();
    let extractor = spawn(&bins.0, &ecfg, &dir.join("extractor.log"));
    loop {
        if metric(caddr, &scn_key).is_some_and(|v| v >= last_scn as f64) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1200),
            "the backlog was not shipped in 20 min; see {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let secs = start.elapsed().as_secs_f64();
    let ext_cpu = process_cpu(extractor.id());
    let col_cpu = process_cpu(collector.id()) - col_cpu0;
    let bytes = metric(caddr, &bytes_key).unwrap_or(0.0);
    stop(extractor);
    stop(collector);
    let _ = std::fs::remove_dir_all(dir.join("store"));
    Result {
        mode,
        mb: bytes / 1e6,
        secs,
        ext_cpu,
        col_cpu,
    }
}

fn main() {
    let mib = env_u64("REDOVAULT_BENCH_SHIP_MIB", 1024);
    let root = std::env::var_os("REDOVAULT_BENCH_SHIP_DIR").map_or_else(
        || {
            profile_dir()
                .parent()
                .expect("target")
                .join("bench-ship-throughput")
        },
        PathBuf::from,
    );
    let modes = std::env::var("REDOVAULT_BENCH_MODES").unwrap_or_else(|_| "tls,blowfish".into());
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let bins = common::build_role_bins();

    let mut sim = SimConfig::new(root.join("db"));
    sim.log_size = 64 << 20;
    sim.groups = 3;
    sim.rate = Rate::BytesPerSec(10 << 20);
    sim.realtime = false;
    sim.switches = Some(mib.div_ceil(64).saturating_sub(1).max(1));
    let t = Instant::now();
    let summary = redovault_drill::simulate::run(sim.clone()).expect("simulate");
    let journal = std::fs::read_to_string(sim.dir.join("journal.jsonl")).unwrap();
    let last_scn = redovault_drill::simulate::journal::parse_journal(&journal)
        .unwrap()
        .iter()
        .rev()
        .find(|e| !e.rollback)
        .expect("a commit")
        .scn;
    println!(
        "ship_throughput: backlog of {} logs ({} commits) written in {:.1} s",
        summary.switches + 1,
        summary.commits,
        t.elapsed().as_secs_f64()
    );

    let pki_dir = root.join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = tls::generate_pki(&pki_dir).unwrap();
    let keys = root.join("keys");
    std::fs::write(
        &keys,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .unwrap();
    let psk = root.join("link.psk");
    std::fs::write(&psk, Psk::generate().to_hex()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for f in [&keys, &psk] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut results = Vec::new();
    for mode in ["tls", "blowfish"] {
        if modes.split(',').any(|m| m.trim() == mode) {
            results.push(run_mode(
                mode, &root, &sim, last_scn, &bins, &pki, &keys, &psk,
            ));
        }
    }
    println!(
        "| mode | MB shipped | seconds | MB/s | extractor CPU s | collector CPU s | cores (ext / col) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} / {:.2} |",
            r.mode,
            r.mb,
            r.secs,
            r.mb / r.secs,
            r.ext_cpu,
            r.col_cpu,
            r.ext_cpu / r.secs,
            r.col_cpu / r.secs
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
