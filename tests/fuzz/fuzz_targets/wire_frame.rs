//! Fuzz target: bytes from a link peer (either direction: the frame layer is the same both
//! ways) through the sans-IO `FrameDecoder`, whole and cut into chunks chosen by the first
//! bytes. Both feeds must give the same frames and the same error; every frame decoded must
//! re-encode (`FrameEncoder`, same kind, flags and payload) to exactly the bytes it came from;
//! the decoder never buffers more than its maximum frame plus one read.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redovault::wire::frame::{Frame, FrameDecoder, FrameEncoder, HEADER_LEN};

/// A small maximum, so the fuzzer meets the length check as well as whole frames.
const MAX_LEN: usize = 4096;

fn run(data: &[u8], cuts: &[usize]) -> (Vec<Frame>, Option<String>) {
    let mut dec = FrameDecoder::new(MAX_LEN);
    let mut frames = Vec::new();
    let mut at = 0usize;
    let mut pieces: Vec<&[u8]> = Vec::new();
    for &c in cuts {
        let end = at.saturating_add(c).min(data.len());
        pieces.push(&data[at..end]);
        at = end;
    }
    pieces.push(&data[at..]);
    for piece in pieces {
        dec.feed(piece);
        assert!(
            dec.buffered() <= HEADER_LEN + MAX_LEN + piece.len(),
            "decoder buffers {} bytes",
            dec.buffered()
        );
        loop {
            match dec.poll() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    let first = e.to_string();
                    // An error ends the direction: it comes back on every later call.
                    assert_eq!(dec.poll().err().map(|e| e.to_string()), Some(first.clone()));
                    return (frames, Some(first));
                }
            }
        }
    }
    (frames, None)
}

fuzz_target!(|input: &[u8]| {
    let (sizes, data) = input.split_at(input.len().min(4));
    let cuts: Vec<usize> = sizes.iter().map(|&b| usize::from(b) + 1).collect();
    let whole = run(data, &[]);
    let chunked = run(data, &cuts);
    assert_eq!(whole, chunked, "chunking changed the frames");
    // Round trip: the frames decoded re-encode to the bytes they were read from.
    let mut enc = FrameEncoder::new(MAX_LEN);
    let mut out = BytesMut::new();
    for f in &whole.0 {
        let h = enc
            .encode(f.header.kind, f.header.flags, &f.payload, &mut out)
            .expect("a decoded frame re-encodes");
        assert_eq!(h, f.header);
    }
    assert_eq!(&out[..], &data[..out.len()], "re-encoding differs");
});
