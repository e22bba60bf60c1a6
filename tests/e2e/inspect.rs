//! End-to-end tests of `redovault inspect`: the real binary on the real Oracle 23ai logs and
//! on damaged copies of them (exit codes 0/2/1, JSON fields, golden snapshots).
//!
//! Golden snapshots live in `fixtures/golden/*.inspect.json`; regenerate them with
//! `REDOVAULT_BLESS=1 cargo test --test e2e inspect`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::oracle_real;
use redovault_redo::{block::CHECKSUM_AT, checksum};
use serde_json::Value;

const BS: usize = 512;
const SEQ15: &str = "arch1_15_1224959854.dbf";
const SEQ16: &str = "arch1_16_1224959854.dbf";

/// A real log's path, or `None` (the test skips, saying so) without `../shared`.
fn fixture_path(name: &str) -> Option<PathBuf> {
    Some(oracle_real::free23()?.join(name))
}

/// A real log's bytes, or `None` as [`fixture_path`].
fn fixture(name: &str) -> Option<Vec<u8>> {
    oracle_real::free23_log(name)
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn inspect(args: &[&str], file: &Path) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_redovault"))
        .arg("inspect")
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn inspect_json(file: &Path) -> (i32, Value) {
    let o = inspect(&["--json"], file);
    let v: Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}\n{}", o.stdout, o.stderr));
    (o.code, v)
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn reseal(f: &mut [u8], n: usize) {
    checksum::set_checksum(&mut f[n * BS..(n + 1) * BS], CHECKSUM_AT);
}

fn put_u32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn golden(name: &str) {
    let Some(path) = fixture_path(name) else {
        return;
    };
    let o = inspect(&["--json"], &path);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/golden")
        .join(format!("{}.inspect.json", name.trim_end_matches(".dbf")));
    if std::env::var_os("REDOVAULT_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &o.stdout).unwrap();
    }
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(&golden).unwrap_or_else(|e| {
            panic!("{}: {e} (bless with REDOVAULT_BLESS=1)", golden.display())
        }))
        .unwrap();
    assert_eq!(v, want, "inspect --json differs from {}", golden.display());
}

#[test]
fn golden_seq15() {
    golden(SEQ15);
}

#[test]
fn golden_seq16() {
    golden(SEQ16);
}

#[test]
fn real_seq15_ground_truth() {
    let Some(path) = fixture_path(SEQ15) else {
        return;
    };
    let (code, v) = inspect_json(&path);
    assert_eq!(code, 0);
    assert_eq!(v["block_size"], 512);
    assert_eq!(v["endianness"], "little");
    assert_eq!(v["block_count"], 597);
    assert_eq!(v["db_id"], 1_497_016_494u32);
    assert_eq!(v["db_name"], "FREE");
    assert_eq!(v["thread"], 1);
    assert_eq!(v["sequence"], 15);
    assert_eq!(v["resetlogs_id"], 1_224_959_854u32);
    assert_eq!(v["first_scn"], 2_266_630);
    assert_eq!(v["next_scn"], 2_267_717);
    // The header's times are the database's local time (no zone); commit times are UTC.
    assert_eq!(v["first_time"], "2026-03-07T01:44:38");
    assert_eq!(v["next_time"], "2026-03-07T01:44:40");
    assert_eq!(v["header_times"], "database local time (no zone)");
    assert_eq!(v["commit_times"], "UTC");
    // Every redo block's first-record offset as Oracle's rule says.
    assert_eq!(
        v["first_record_offsets"],
        serde_json::json!({"checked": 596, "consistent": true, "mismatches": [], "mismatches_omitted": 0})
    );
    assert_eq!(v["compat_version"], "23.6.0");
    assert_eq!(v["log_state"], "archived");
    assert_eq!(v["records"], 1154);
    assert_eq!(v["block_states"]["valid"], 597);
    assert_eq!(v["bad_blocks"], Value::Array(vec![]));
    assert_eq!(v["errors"], Value::Array(vec![]));
    let commits = v["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 20);
    let want = serde_json::json!({
        "xid": "10.12.572", "scn": 2_267_708, "rollback": false,
        "block": 582, "offset": 336, "time": "2026-03-07T01:44:40Z"
    });
    assert_eq!(commits.last().unwrap(), &want);
    assert_eq!(v["last_commit"], want);
    let insert = v["row_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["xid"] == "10.12.572")
        .unwrap();
    assert_eq!(insert["opcode"], "11.2");
    assert_eq!(insert["data_object"], 72_726);
}

#[test]
fn real_seq16() {
    let Some(path) = fixture_path(SEQ16) else {
        return;
    };
    let (code, v) = inspect_json(&path);
    assert_eq!(code, 0);
    assert_eq!(v["block_count"], 9);
    assert_eq!(v["block_states"]["valid"], 9);
    assert_eq!(v["records"], 7);
    assert_eq!(v["commits"].as_array().unwrap().len(), 1);
}

#[test]
fn human_summary() {
    let Some(path) = fixture_path(SEQ15) else {
        return;
    };
    let o = inspect(&[], &path);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for want in [
        "FREE (DBID 1497016494), thread 1, sequence 15",
        "ARCHIVED",
        "23.6.0",
        "597 blocks of 512 bytes, little-endian",
        "1154 records",
        "first SCN     2266630 at 2026-03-07T01:44:38 (database local time (no zone))",
        "last commit   XID 10.12.572 at SCN 2267708 (2026-03-07T01:44:40Z UTC)",
        "596 first-record offsets checked, all consistent",
        "CLEAN",
    ] {
        assert!(
            o.stdout.contains(want),
            "missing {want:?} in:\n{}",
            o.stdout
        );
    }
}

#[test]
fn flipped_bit_exits_2_with_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut f) = fixture(SEQ15) else {
        return;
    };
    f[300 * BS + 200] ^= 0x08;
    let p = write_temp(&dir, "flip.dbf", &f);
    let (code, v) = inspect_json(&p);
    assert_eq!(code, 2);
    assert_eq!(
        v["bad_blocks"],
        serde_json::json!([{"block": 300, "reason": "checksum"}])
    );
    assert_eq!(v["last_commit"]["xid"], "9.27.598");
    let o = inspect(&[], &p);
    assert_eq!(o.code, 2);
    assert!(o.stdout.contains("DAMAGED"), "{}", o.stdout);
    assert!(
        o.stdout
            .contains("block 300 (file offset 153600): checksum"),
        "{}",
        o.stdout
    );
}

#[test]
fn damage_reasons_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let Some(base) = fixture(SEQ15) else {
        return;
    };

    let mut f = base.clone();
    put_u32(&mut f, 300 * BS + 4, 301);
    reseal(&mut f, 300);
    let (code, v) = inspect_json(&write_temp(&dir, "blockno.dbf", &f));
    assert_eq!(
        (code, &v["bad_blocks"]),
        (
            2,
            &serde_json::json!([{"block": 300, "reason": "block_number"}])
        )
    );

    let mut f = base.clone();
    put_u32(&mut f, 300 * BS + 8, 14);
    reseal(&mut f, 300);
    let (code, v) = inspect_json(&write_temp(&dir, "stale.dbf", &f));
    assert_eq!(
        (code, &v["bad_blocks"]),
        (
            2,
            &serde_json::json!([{"block": 300, "reason": "sequence"}])
        )
    );

    let (code, v) = inspect_json(&write_temp(&dir, "trunc.dbf", &base[..300 * BS + 100]));
    assert_eq!(
        (code, &v["bad_blocks"]),
        (
            2,
            &serde_json::json!([{"block": 300, "reason": "truncated"}])
        )
    );
    assert_eq!(v["commits"].as_array().unwrap().len(), 4);

    let mut f = base.clone();
    f[300 * BS..302 * BS].fill(0);
    let (code, v) = inspect_json(&write_temp(&dir, "zero.dbf", &f));
    assert_eq!(
        (code, &v["bad_blocks"]),
        (
            2,
            &serde_json::json!([{"block": 300, "reason": "zero"}, {"block": 301, "reason": "zero"}])
        )
    );
}

#[test]
fn record_length_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for len in [16u32 << 20, u32::MAX] {
        let Some(mut f) = fixture(SEQ15) else {
            return;
        };
        put_u32(&mut f, 582 * BS + 0x150, len);
        reseal(&mut f, 582);
        let (code, v) = inspect_json(&write_temp(&dir, "len.dbf", &f));
        assert_eq!(code, 2);
        assert_eq!(v["bad_blocks"], Value::Array(vec![]));
        let e = &v["errors"][0];
        assert_eq!(
            (&e["kind"], &e["block"], &e["offset"]),
            (&"record_length".into(), &582.into(), &336.into())
        );
        assert_eq!(v["commits"].as_array().unwrap().len(), 19);
        assert_eq!(v["last_commit"]["xid"], "1.30.566");
    }
}

#[test]
fn current_log_with_stale_tail_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut f) = fixture(SEQ15) else {
        return;
    };
    f[BS + 192..BS + 200].fill(0xFF);
    put_u32(&mut f, BS + 156, u32::MAX);
    reseal(&mut f, 1);
    for n in 590..=597 {
        put_u32(&mut f, n * BS + 8, 14);
        reseal(&mut f, n);
    }
    let (code, v) = inspect_json(&write_temp(&dir, "current.dbf", &f));
    assert_eq!(code, 0);
    assert_eq!(v["log_state"], "current");
    assert_eq!(v["next_scn"], Value::Null);
    assert_eq!(
        v["next_time"],
        Value::Null,
        "a CURRENT log has no switch time yet"
    );
    assert_eq!(v["bad_blocks"], Value::Array(vec![]));
    assert_eq!(v["write_point"], 590);
    assert_eq!(v["commits"].as_array().unwrap().len(), 20);
    assert_eq!(v["last_commit"]["scn"], 2_267_708);
}

#[test]
fn not_a_redo_log_exits_1_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_temp(
        &dir,
        "notes.txt",
        b"this is not a redo log, just some text that is long enough",
    );
    let o = inspect(&["--json"], &p);
    assert_eq!(o.code, 1);
    assert!(o.stdout.is_empty());
    assert!(o.stderr.contains("notes.txt"), "{}", o.stderr);
    assert!(o.stderr.contains("not an Oracle redo log"), "{}", o.stderr);
    assert!(o.stderr.contains("offset"), "{}", o.stderr);
    assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);

    let o = inspect(&[], &dir.path().join("missing.dbf"));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("missing.dbf"), "{}", o.stderr);
}

/// Logs written by `redovault simulate` in the variants no real file covers: big-endian with
/// 4096-byte blocks and 11.2 headers, little-endian 1024-byte 12.1. Every online and archived
/// log is clean; the CURRENT online log has no next SCN and a write point.
#[test]
fn simulated_variants_through_the_binary() {
    for (endian, bs, version, compat) in [
        ("big", 4096, "11.2.0.4", "11.2.0.4"),
        ("little", 1024, "12.1.0.2", "12.1.0.2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new(&crate::netkit::bins().redovault)
            .args([
                "simulate",
                "--fast",
                "--switches",
                "3",
                "--log-size",
                "128K",
            ])
            .args([
                "--endian",
                endian,
                "--block-size",
                &bs.to_string(),
                "--db-version",
                version,
            ])
            .arg("--dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let mut current = 0;
        let mut files = 0;
        for sub in ["online", "archive"] {
            for entry in std::fs::read_dir(dir.path().join(sub)).unwrap() {
                let p = entry.unwrap().path();
                let (code, v) = inspect_json(&p);
                assert_eq!(code, 0, "{}: {v}", p.display());
                assert_eq!(v["endianness"], endian);
                assert_eq!(v["block_size"], bs);
                assert_eq!(v["compat_version"], compat);
                assert_eq!(v["bad_blocks"], Value::Array(vec![]));
                assert!(v["records"].as_u64().unwrap() > 0);
                // The simulator writes every first-record offset as Oracle does.
                let o = &v["first_record_offsets"];
                assert_eq!(o["consistent"], true, "{}: {o}", p.display());
                assert!(o["checked"].as_u64().unwrap() > 0, "{}: {o}", p.display());
                if v["log_state"] == "current" {
                    current += 1;
                    assert_eq!(v["next_scn"], Value::Null);
                    assert!(v["write_point"].is_u64());
                } else {
                    assert!(v["next_scn"].is_u64());
                }
                files += 1;
            }
        }
        assert_eq!(current, 1);
        assert!(files >= 5);
    }
}
