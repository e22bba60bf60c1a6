//! Crash test: a child process appends to a store through the group-commit writer and prints
//! every acknowledgement; the parent kills it with SIGKILL at random moments (32 times),
//! reopens the store and checks that every acknowledged position survived, that torn tails
//! were dropped, and that each stream holds exactly the expected bytes and commit marks: no
//! gap, no duplicate. Some restarts resend already-stored redo first (as an extractor does
//! after a reconnect), which must be accepted without being stored twice. Every other kill
//! is also a power loss for the segments: every range held in a write-ahead frame is zeroed
//! in its segment before the reopen, which must restore it from the write-ahead file.
//!
//! One binary plays both parts (`harness = false`): with `REDOVAULT_CRASH_CHILD` set it is
//! the child.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use redovault::crypto::keys::{KeyId, KeyRing};
use redovault::wire::{CommitMark, StreamId, StreamPos};
use redovault_collector::fs::RealFs;
use redovault_collector::index::CommitQuery;
use redovault_collector::segment::{self, ScanMode};
use redovault_collector::store::{
    Store, StoreOptions, StreamStoreError, WAL_DIR, stream_dir_name, wal_frames,
};
use redovault_collector::writer::{self, AppendRequest, WriterConfig};
use redovault_redo::position::{DbId, LogSeq, ResetlogsId, Scn, ThreadId, Xid};

const STREAMS: u16 = 3;
const ROUNDS: u64 = 32;

fn keys() -> KeyRing {
    let id = KeyId::parse("crash").unwrap();
    KeyRing::from_keys(id.clone(), [(id, [0x42; 32])]).unwrap()
}

fn opts() -> StoreOptions {
    StoreOptions {
        segment_size: 256 * 1024,
        chunk_size: 16 * 1024,
        compress: None,
    }
}

fn stream(t: u16) -> StreamId {
    StreamId {
        db_id: DbId(99),
        resetlogs_id: ResetlogsId(1),
        thread: ThreadId(t),
    }
}

/// Length of log `seq` of thread `t` (whole 512-byte blocks).
fn log_len(t: u16, seq: u32) -> u64 {
    (100 + u64::from(seq * 7919 + u32::from(t) * 131) % 200) * 512
}

fn byte(t: u16, seq: u32, off: u64) -> u8 {
    let x = off.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(seq) << 40) ^ u64::from(t);
    (x >> 29) as u8
}

fn bytes(t: u16, seq: u32, from: u64, to: u64) -> Vec<u8> {
    (from..to).map(|o| byte(t, seq, o)).collect()
}

/// A commit ends at every 4 KiB boundary.
fn commits(t: u16, seq: u32, from: u64, to: u64) -> Vec<CommitMark> {
    (from / 4096 + 1..=to / 4096)
        .map(|k| CommitMark {
            xid: Xid {
                usn: t,
                slot: (k % 1000) as u16,
                sqn: seq,
            },
            scn: Scn(u64::from(seq) * 1_000_000 + k),
            time: Some(1_772_841_600 + k as i64),
            end: StreamPos {
                seq: LogSeq(seq),
                offset: k * 4096,
            },
        })
        .collect()
}

fn main() {
    if let Ok(dir) = std::env::var("REDOVAULT_CRASH_CHILD") {
        let seed = std::env::var("REDOVAULT_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        child(Path::new(&dir), seed);
        return;
    }
    parent();
    println!("crash test: ok");
}

/// Appends forever (until killed): one task per stream, printing `ACK t seq offset log_end`
/// after every acknowledgement.
fn child(dir: &Path, seed: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = Store::open_with(dir, keys(), opts(), Arc::new(RealFs)).unwrap();
        let (w, _task) = writer::spawn(
            store,
            WriterConfig::default(),
            tokio_util::sync::CancellationToken::new(),
        );
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for t in 1..=STREAMS {
            let w = w.clone();
            let out = out.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 10 + u64::from(t));
                let mut pos = w.durable(stream(t)).map_or(
                    StreamPos {
                        seq: LogSeq(1),
                        offset: 0,
                    },
                    |d| d.resume_pos(),
                );
                // After some restarts, resend what is already held (a reconnect).
                if seed.is_multiple_of(3) && pos.offset > 0 {
                    pos.offset = pos.offset.saturating_sub(rng.gen_range(1..20) * 512);
                }
                for _ in 0..100_000 {
                    let len = log_len(t, pos.seq.0);
                    let n = (rng.gen_range(1..16) * 512).min(len - pos.offset);
                    let end = pos.offset + n;
                    let req = AppendRequest {
                        stream: stream(t),
                        pos,
                        bytes: bytes(t, pos.seq.0, pos.offset, end),
                        commits: commits(t, pos.seq.0, pos.offset, end),
                        log_end: end == len,
                    };
                    let ack = w.append(req).await.unwrap();
                    let d = ack.durable;
                    {
                        let mut o = out.lock().unwrap();
                        writeln!(o, "ACK {t} {} {} {}", d.end.seq.0, d.end.offset, d.log_end)
                            .unwrap();
                        o.flush().unwrap();
                    }
                    pos = d.resume_pos();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Zeroes, in the segments, every byte range an intact write-ahead frame holds (what a
/// power loss leaves of bytes the segment never fdatasynced: unwritten extents read as
/// zeros); returns how many ranges were zeroed.
fn power_loss(dir: &Path) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir.join(WAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut zeroed = 0;
    for f in files {
        for fr in wal_frames(&f).unwrap() {
            let path = dir
                .join("streams")
                .join(stream_dir_name(fr.stream))
                .join(segment::segment_file_name(fr.segment));
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let len = file.metadata().unwrap().len();
            let end = (fr.offset + fr.len).min(len);
            if end > fr.offset {
                let zeros = vec![0u8; (end - fr.offset) as usize];
                std::os::unix::fs::FileExt::write_all_at(&file, &zeros, fr.offset).unwrap();
                zeroed += 1;
            }
        }
    }
    zeroed
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut acked: BTreeMap<u16, (StreamPos, bool)> = BTreeMap::new();
    let mut torn_total = 0;
    let mut acks_total = 0;
    let mut power_cuts = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .env("REDOVAULT_CRASH_CHILD", dir.path())
            .env("REDOVAULT_CRASH_SEED", round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        // Three rounds in four: kill while acknowledgements flow; the fourth at any moment
        // (during recovery, while a torn tail is being cut...).
        if round % 4 != 3 {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => lines.push(l),
                Err(e) => panic!("round {round}: no acknowledgement from the child: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child ended by itself: {status}"
        );
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        for line in lines {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 5, "{line}");
            let t: u16 = f[1].parse().unwrap();
            let p = StreamPos {
                seq: LogSeq(f[2].parse().unwrap()),
                offset: f[3].parse().unwrap(),
            };
            let log_end = f[4] == "true";
            let e = acked.entry(t).or_insert((p, log_end));
            if (p, log_end) > *e {
                *e = (p, log_end);
            }
            acks_total += 1;
        }
        // Every other round, a power loss as well, as bad as it can be: every byte a
        // write-ahead frame holds is gone from its segment. Acknowledged bytes among them
        // must come back from the write-ahead file.
        if round % 2 == 1 {
            power_cuts += power_loss(dir.path());
        }
        let store = match Store::open_with(dir.path(), keys(), opts(), Arc::new(RealFs)) {
            Ok(s) => s,
            Err(e @ StreamStoreError::Corrupt { .. }) => panic!("round {round}: {e}"),
            Err(e) => panic!("round {round}: {e}"),
        };
        torn_total += store.recovery().torn.len();
        for (&t, &(p, log_end)) in &acked {
            let d = store.durable(stream(t)).unwrap_or_else(|| {
                panic!("round {round}: stream {t} acknowledged to {p} but lost")
            });
            assert!(
                (d.end, d.log_end) >= (p, log_end),
                "round {round}: stream {t} acknowledged to {p} (log end {log_end}), \
                 durable only {} after the crash",
                d.end
            );
            // Open already authenticated every chunk and checked that positions run on;
            // reading every byte back against the generator is done every 8th round and
            // at the end (it decrypts the whole store again).
            if round % 8 == 7 {
                verify(&store, t, d.end, d.log_end, round);
            }
        }
    }
    assert!(acks_total > 100, "only {acks_total} acknowledgements");
    assert!(
        power_cuts > 0,
        "no write-ahead frame to lose: the power loss tested nothing"
    );
    println!(
        "crash test: {ROUNDS} kills, {acks_total} acknowledgements, {torn_total} torn tails dropped, \
         {power_cuts} write-ahead ranges zeroed in the segments and restored, final ends {acked:?}"
    );
}

/// The stream holds exactly the generator's bytes and commit marks up to `end`.
fn verify(store: &Store, t: u16, end: StreamPos, log_end: bool, round: u64) {
    let mut next = StreamPos {
        seq: LogSeq(1),
        offset: 0,
    };
    for seg in store.segments(stream(t)) {
        segment::scan::<StreamStoreError>(
            &seg.path,
            store.keys(),
            ScanMode::Strict,
            None,
            |_, c| {
                assert_eq!(c.start, next, "round {round}: stream {t} gap or duplicate");
                let want = bytes(t, c.start.seq.0, c.start.offset, c.end().offset);
                assert!(
                    c.data == want,
                    "round {round}: stream {t} bytes at {}",
                    c.start
                );
                next = if c.log_end {
                    assert_eq!(c.end().offset, log_len(t, c.start.seq.0));
                    StreamPos {
                        seq: LogSeq(c.start.seq.0 + 1),
                        offset: 0,
                    }
                } else {
                    c.end()
                };
                Ok(())
            },
        )
        .unwrap();
    }
    let want_next = if log_end {
        StreamPos {
            seq: LogSeq(end.seq.0 + 1),
            offset: 0,
        }
    } else {
        end
    };
    assert_eq!(next, want_next, "round {round}: stream {t}");
    let mut want = Vec::new();
    for seq in 1..=end.seq.0 {
        let to = if seq == end.seq.0 {
            end.offset
        } else {
            log_len(t, seq)
        };
        want.extend(commits(t, seq, 0, to));
    }
    let got = store.commits(stream(t), &CommitQuery::All, usize::MAX);
    assert!(
        got == want,
        "round {round}: stream {t}: {} commits indexed, {} expected",
        got.len(),
        want.len()
    );
}
