//! Fingerprints of stored bytes: SHA-256 of the whole object and the S3 ETag (MD5 of a
//! single-part body, or MD5 of the part MD5s with a `-N` suffix for a multipart upload).
//!
//! The ETag lets us compare a new source with an object already stored by multipart upload,
//! whose whole-object SHA-256 the server cannot report.

use crate::manifest::Sha256Digest;
use md5::{Digest as _, Md5};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt};

/// SHA-256, size and ETag of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of all bytes.
    pub sha256: Sha256Digest,
    /// The ETag S3 would give these bytes uploaded with the hasher's part size.
    pub etag: String,
}

/// Computes a [`Fingerprint`] incrementally.
#[derive(Debug, Clone)]
pub struct FingerprintHasher {
    sha: Sha256,
    part_size: Option<u64>,
    part_md5: Md5,
    in_part: u64,
    part_md5s: Vec<[u8; 16]>,
    size: u64,
}

impl FingerprintHasher {
    /// `part_size` None: single-part ETag (MD5 of the body).
    pub fn new(part_size: Option<u64>) -> FingerprintHasher {
        FingerprintHasher {
            sha: Sha256::new(),
            part_size: part_size.filter(|p| *p > 0),
            part_md5: Md5::new(),
            in_part: 0,
            part_md5s: Vec::new(),
            size: 0,
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.sha.update(data);
        self.size += data.len() as u64;
        match self.part_size {
            None => self.part_md5.update(data),
            Some(ps) => {
                while !data.is_empty() {
                    let room = (ps - self.in_part).min(data.len() as u64) as usize;
                    let (now, rest) = data.split_at(room);
                    self.part_md5.update(now);
                    self.in_part += room as u64;
                    data = rest;
                    if self.in_part == ps {
                        let done = std::mem::replace(&mut self.part_md5, Md5::new());
                        self.part_md5s.push(done.finalize().into());
                        self.in_part = 0;
                    }
                }
            }
        }
    }

    /// Finishes.
    pub fn finish(mut self) -> Fingerprint {
        let sha256: [u8; 32] = self.sha.finalize().into();
        let etag = match self.part_size {
            None => hex::encode(self.part_md5.finalize()),
            Some(_) => {
                if self.in_part > 0 || self.part_md5s.is_empty() {
                    self.part_md5s.push(self.part_md5.finalize().into());
                }
                multipart_etag(&self.part_md5s)
            }
        };
        Fingerprint {
            size: self.size,
            sha256: Sha256Digest(sha256),
            etag,
        }
    }
}

/// Reads `src` to its end in 1 MiB chunks, handing each to `f`; returns the byte count.
pub async fn for_each_chunk<R: AsyncRead + Unpin>(
    src: &mut R,
    mut f: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            return Ok(total);
        }
        f(&buf[..n]);
        total += n as u64;
    }
}

/// The ETag of a multipart upload from its part MD5s.
pub(crate) fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut m = Md5::new();
    for p in part_md5s {
        m.update(p);
    }
    format!("{}-{}", hex::encode(m.finalize()), part_md5s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part_etag_is_md5() {
        let mut h = FingerprintHasher::new(None);
        h.update(b"hello ");
        h.update(b"world");
        let f = h.finish();
        assert_eq!(f.etag, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            hex::encode(f.sha256),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(f.size, 11);
    }

    #[test]
    fn multipart_etag_independent_of_feed_chunking() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut a = FingerprintHasher::new(Some(4096));
        a.update(&data);
        let mut b = FingerprintHasher::new(Some(4096));
        for c in data.chunks(777) {
            b.update(c);
        }
        let (a, b) = (a.finish(), b.finish());
        assert_eq!(a, b);
        assert!(a.etag.ends_with("-3"));
        let parts: Vec<[u8; 16]> = data.chunks(4096).map(|c| Md5::digest(c).into()).collect();
        assert_eq!(a.etag, multipart_etag(&parts));
    }
}
