//! The HTML audit report in a real browser: headless Chromium renders it, takes a screenshot,
//! and must log no console message other than the report's own "ready" line; the screenshot
//! must show the timeline (its gap and tampered bars are large areas of their colours).

use redovault_redo::position::ResetlogsId;
use std::path::{Path, PathBuf};
use std::process::Command;

use redovault_verifier::html;
use redovault_verifier::report::{
    AuditReport, CellState, FileResult, FileStatus, Finding, FindingKind, LogRef, RunInfo, Summary,
    ThreadTimeline, TimelineCell,
};

/// Gap colour (`--gap` in the report's CSS).
const GAP_RGB: [u8; 3] = [0xf4, 0xa2, 0x61];
/// Verified colour (`--verified`; the banner of a report with findings is red, so this colour
/// appears only in the timeline and its legend).
const VERIFIED_RGB: [u8; 3] = [0x2a, 0x9d, 0x8f];

/// The headless browser (also the console test's); None (skip) when it is not installed.
pub fn chromium() -> Option<PathBuf> {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            && out.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    redovault_drill::servers::skip(
        "no headless Chromium (chromium, chromium-browser or google-chrome)",
    );
    None
}

/// Two threads, 40 sequences each; thread 1 has a gap at 20-23 and a tampered log at 30.
fn report() -> AuditReport {
    let rl = 1_190_000_000;
    let mut files = Vec::new();
    let mut threads = Vec::new();
    let mut entry = 0u64;
    for thread in [1u16, 2] {
        let mut cells = Vec::new();
        for seq in 1..=40u32 {
            let state = match (thread, seq) {
                (1, 20..=23) => CellState::Gap,
                (1, 30) => CellState::Tampered,
                _ => CellState::Verified,
            };
            cells.push(TimelineCell {
                sequence: seq,
                state,
            });
            if state != CellState::Gap {
                files.push(FileResult {
                    entry,
                    log: LogRef {
                        resetlogs_id: ResetlogsId(rl),
                        thread,
                        sequence: seq,
                    },
                    file_name: format!("arch_{thread}_{seq}_{rl}.arc"),
                    key: format!("rv/archive/sha256/{entry:064x}"),
                    size: 50 << 20,
                    sha256: format!("{entry:064x}"),
                    status: if state == CellState::Tampered {
                        FileStatus::Tampered
                    } else {
                        FileStatus::DeepVerified
                    },
                    last_deep_verified: Some("2026-11-21T04:00:00Z".into()),
                    cross_checked: true,
                });
                entry += 1;
            }
        }
        threads.push(ThreadTimeline {
            resetlogs_id: ResetlogsId(rl),
            thread,
            cells,
        });
    }
    let findings = vec![
        Finding::error(
            FindingKind::SequenceGap,
            "thread 1 sequences 20-23",
            "missing between 19 and 24",
        ),
        Finding::error(
            FindingKind::ArchiveDiffersFromStream,
            "thread 1 sequence 30",
            "block 17 differs from the streamed redo",
        ),
    ];
    AuditReport::new(
        RunInfo {
            target: "s3://rv-lock/drill".into(),
            mode: "deep".into(),
            started_at: "2026-11-21T04:00:00Z".into(),
            finished_at: "2026-11-21T04:00:09Z".into(),
        },
        Summary {
            manifest_entries: entry,
            objects_checked: entry,
            objects_deep_verified: entry,
            bytes_rehashed: entry * (50 << 20),
            ..Summary::default()
        },
        findings,
        files,
        threads,
    )
}

/// Pixels of exactly this colour in a PNG (also the console test's).
pub fn count_pixels(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "unexpected colour type {:?}",
        info.color_type
    );
    buf[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|p| p[..3] == rgb)
        .count()
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let shot = dir.path().join("report.png");
    std::fs::write(&page, html::render(&report())).unwrap();
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1400",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert_eq!(
        console.len(),
        1,
        "exactly one console line (the report's ready line), got: {console:#?}"
    );
    assert!(
        console[0].contains("redovault-report ready threads=2 bars=80 files=76 findings=2"),
        "{}",
        console[0]
    );
    if let Some(keep) = std::env::var_os("REDOVAULT_REPORT_SCREENSHOT") {
        // For a human look: REDOVAULT_REPORT_SCREENSHOT=/tmp/report.png cargo test ... report_html
        std::fs::copy(&shot, keep).unwrap();
    }
    let gap = count_pixels(&shot, GAP_RGB);
    let verified = count_pixels(&shot, VERIFIED_RGB);
    // The legend squares are 12x12 pixels; four gap bars and 75 verified bars of the
    // timelines cover thousands of pixels when the timeline is visible.
    assert!(gap > 2_000, "timeline gap bars not visible: {gap} pixels");
    assert!(
        verified > 20_000,
        "timeline verified bars not visible: {verified} pixels"
    );
}
