//! The 16-bit XOR checksum of redo blocks.
//!
//! A block is valid when the XOR of all its 16-bit words is zero; the word at offset 14 (16 for
//! block 0) is chosen by the writer to make it so. The rule does not depend on byte order, so it
//! is computed here on byte pairs: folding 64-bit words gives the same result as XOR-ing the
//! 16-bit words, and runs at memory speed.

/// Folds the XOR of all 16-bit words of `block` into two bytes.
///
/// `block.len()` need not be a multiple of 8; a trailing odd byte counts as the first byte of
/// a word whose second byte is zero.
pub fn xor_fold(block: &[u8]) -> [u8; 2] {
    let mut acc: u64 = 0;
    let mut chunks = block.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc ^= u64::from_le_bytes(w);
    }
    let mut tail = [0u8; 8];
    for (t, r) in tail.iter_mut().zip(chunks.remainder()) {
        *t = *r;
    }
    acc ^= u64::from_le_bytes(tail);
    acc ^= acc >> 32;
    acc ^= acc >> 16;
    let v = (acc & 0xffff) as u16;
    v.to_le_bytes()
}

/// True when the XOR of all 16-bit words of `block` is zero.
pub fn block_checksum_ok(block: &[u8]) -> bool {
    xor_fold(block) == [0, 0]
}

/// Writes the check value into `block[at..at + 2]` so that [`block_checksum_ok`] holds.
///
/// `at` is 14 for redo blocks and 16 for block 0. Does nothing when the block is too short.
pub fn set_checksum(block: &mut [u8], at: usize) {
    let Some(end) = at.checked_add(2) else {
        return;
    };
    if let Some(w) = block.get_mut(at..end) {
        w.fill(0);
    } else {
        return;
    }
    let v = xor_fold(block);
    if let Some(w) = block.get_mut(at..end) {
        w.copy_from_slice(&v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_then_check() {
        let mut b: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
        assert!(!block_checksum_ok(&b) || xor_fold(&b) == [0, 0]);
        set_checksum(&mut b, 14);
        assert!(block_checksum_ok(&b));
        b[100] ^= 0x10;
        assert!(!block_checksum_ok(&b));
    }

    #[test]
    fn published_12_1_block_header_vector() {
        // The word-wise rule equals the byte-pair rule for any length multiple of two.
        let b = [
            0x01u8, 0x22, 0, 0, 0x82, 0, 0, 0, 0x24, 0x1e, 0, 0, 0x40, 0x80,
        ];
        let mut pairs = [0u8; 2];
        for p in b.chunks_exact(2) {
            pairs[0] ^= p[0];
            pairs[1] ^= p[1];
        }
        assert_eq!(xor_fold(&b), pairs);
    }
}
