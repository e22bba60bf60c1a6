//! Fuzz target: a collector chunk plaintext through `StoredChunk::decode` (what a segment record or a
//! WORM piece holds once its tag verified: the key holder's bytes, still checked field by
//! field). A decoded chunk passes its own checks and survives a round trip:
//! decode(encode(x)) == x, and its encoding has the length `encoded_len` announces. Compressed
//! chunks (version 2, issue 19) decode to the original redo, bounded by the declared length;
//! they round-trip raw and compressed again, and a raw (version 1) input is canonical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redovault::compress::Level;
use redovault_collector::segment::{CHUNK_VERSION, StoredChunk};

fuzz_target!(|input: &[u8]| {
    let Ok(chunk) = StoredChunk::decode(input) else {
        return;
    };
    chunk.check().expect("a decoded chunk passes its checks");
    let bytes = chunk.encode().expect("a decoded chunk encodes");
    assert_eq!(bytes.len(), chunk.encoded_len());
    if input[0] == CHUNK_VERSION {
        assert_eq!(bytes.len(), input.len(), "re-encoding changed the length");
    }
    let again = StoredChunk::decode(&bytes).expect("an encoded chunk decodes");
    assert_eq!(again, chunk, "decode(encode(x)) != x");
    let packed = chunk.encode_with(Level::new(1)).expect("a decoded chunk compresses");
    assert!(packed.len() <= bytes.len(), "compressed longer than raw");
    let again = StoredChunk::decode(&packed).expect("a compressed chunk decodes");
    assert_eq!(again, chunk, "decode(encode_with(x)) != x");
});
