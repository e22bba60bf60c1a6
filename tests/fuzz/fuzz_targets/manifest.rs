//! Fuzz target: manifest lines and sealed manifest segments as read back from WORM.
//!
//! The input is one segment: the watcher's manifest (`ManifestEntry`) and the collector's
//! per-stream chain (`PieceEntry`) share the format, so both parse it. Every line that parses
//! is canonical: it re-encodes to itself (decode(encode(x)) == x and encode(decode(l)) == l).
//! `verify_segments_of` accepts the segment only if every line parses and chains, and then
//! stands after its last entry. The first line is also read as a sealed segment's key, and a
//! key parsed is the one `segment_key` writes for it.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use redovault::manifest::{
    ChainEntry, ChainState, ManifestEntry, SegmentInfo, segment_key, segment_lines,
    verify_segments_of,
};
use redovault_collector::worm::PieceEntry;
use redovault_verifier::chain::parse_segment_key;

fn lines_round_trip<E: ChainEntry + PartialEq>(text: &str) -> usize {
    let mut parsed = 0;
    for line in text.split('\n') {
        if let Ok(e) = E::parse_line(line) {
            assert_eq!(e.canonical_line(), line, "a parsed line is not canonical");
            assert_eq!(E::parse_line(&e.canonical_line()).ok(), Some(e.clone()));
            assert_eq!(
                e.hash(),
                redovault::manifest::Sha256Digest::of(line.as_bytes())
            );
            parsed += 1;
        }
    }
    parsed
}

fn segment<E: ChainEntry + PartialEq>(input: &[u8]) {
    let result = verify_segments_of::<E>([("fuzz.jsonl", input)]);
    match result {
        Ok(state) => {
            let lines = segment_lines(input, "fuzz.jsonl").expect("a verified segment splits");
            assert_eq!(state.next_index, lines.len() as u64 + 1);
            if let Some(last) = lines.last() {
                assert_eq!(
                    state.prev,
                    redovault::manifest::Sha256Digest::of(last.as_bytes())
                );
            } else {
                assert_eq!(state, ChainState::GENESIS);
            }
            let text = std::str::from_utf8(input).expect("UTF-8");
            assert_eq!(lines_round_trip::<E>(text), lines.len());
        }
        Err(e) => assert!(
            e.to_string().contains("fuzz.jsonl"),
            "error without origin: {e}"
        ),
    }
}

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input) {
        lines_round_trip::<ManifestEntry>(text);
        lines_round_trip::<PieceEntry>(text);
        let first = text.split('\n').next().unwrap_or_default();
        if let Some(k) = parse_segment_key(first) {
            let info = SegmentInfo {
                first: k.first,
                last: k.last,
                sha256: k.sha256,
                size: 0,
                path: PathBuf::new(),
            };
            let written = segment_key("", &info);
            let again = parse_segment_key(&written).expect("a written key parses");
            assert_eq!(
                (again.first, again.last, again.sha256),
                (k.first, k.last, k.sha256)
            );
        }
    }
    segment::<ManifestEntry>(input);
    segment::<PieceEntry>(input);
});
