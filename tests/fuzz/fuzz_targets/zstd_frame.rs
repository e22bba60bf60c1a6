//! Fuzz target: a compressed archived log as it comes back from WORM (`[watch] compress`),
//! through `compress::FrameDecoder` (what `verify` and `restore archive` decode while
//! downloading) and `verifier::unsealed::decode_head` (how an unsealed compressed log is
//! identified from its first bytes). The first 4 bytes are the declared log size (below
//! 4 MiB), the 5th the size of the download's pieces; the rest is the object.
//!
//! Asserted: no step gives more than its bound; a frame that finishes gave exactly the
//! declared bytes; fed whole and in pieces, two successes give the same bytes. Whether a
//! degenerate frame (an empty RLE block, say) is refused can depend on the pieces: that is
//! libzstd's streaming, not ours (see README.md, "Findings"); the callers then verify the
//! bytes against the manifest's size and SHA-256 either way. After an error the decoder is not
//! trusted again (the callers stop), so nothing is asserted past it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redovault::compress::FrameDecoder;
use redovault_verifier::unsealed::decode_head;

/// Decodes `frame` in `step`-byte pieces: the decoded bytes' length and a digest of them
/// (cheap: a running sum), or the error's text.
fn decode(frame: &[u8], declared: u64, step: usize) -> Result<(u64, u64), String> {
    let mut dec = FrameDecoder::new(declared).map_err(|e| e.to_string())?;
    let (mut n, mut sum) = (0u64, 0u64);
    for piece in frame.chunks(step.max(1)) {
        dec.feed_all(piece, |b| {
            assert!(b.len() <= 1 << 20, "a step gave {} bytes", b.len());
            n += b.len() as u64;
            sum = b.iter().fold(sum, |s, &x| s.wrapping_mul(31).wrapping_add(u64::from(x)));
        })
        .map_err(|e| e.to_string())?;
    }
    let done = dec.finish().map_err(|e| e.to_string())?;
    assert_eq!(done, declared, "finished short of the declared size");
    assert_eq!(n, declared, "gave other than the declared size");
    Ok((n, sum))
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let declared = u64::from(u32::from_le_bytes([input[0], input[1], input[2], input[3]])) % (4 << 20);
    let step = usize::from(input[4]).max(1);
    let frame = &input[5..];
    let whole = decode(frame, declared, frame.len().max(1));
    let pieces = decode(frame, declared, step);
    if let (Ok(a), Ok(b)) = (&whole, &pieces) {
        assert_eq!(a, b, "other bytes in pieces");
    }
    if let Ok((size, head)) = decode_head(frame) {
        assert!(head.len() <= 8192);
        assert!(head.len() as u64 <= size);
    }
});
