//! The only module that imports cipher and TLS crates.
//!
//! - [`tls`]: TLS 1.3 with mutual certificate authentication (rustls), the link's default;
//!   PEM loading, peer identity, and a generator of test/quickstart certificates.
//! - [`legacy`]: the opt-in legacy Blowfish link (`cipher = "blowfish"`): PSK handshake,
//!   per-session keys, encrypt-then-MAC frames, forced rekey (Sweet32).
//! - [`cert_expiry`]: the not-after time of the link's certificates (their expiry metrics).
//! - [`keys`]: the collector's key ring (AES-256 keys from a key file; one active, older ones
//!   kept for reading).
//! - [`envelope`]: AES-256-GCM sealing of the collector's segments (versioned header, nonce
//!   scheme, chunk AAD).
//! - [`recovery`]: sealing to the offline recovery key (HPKE, RFC 9180): what the collector
//!   puts into WORM, readable only with a private key kept off every server.
//!
//! Everything else (framing, messages, the link's I/O, segments) uses these through their
//! own types.

pub mod cert_expiry;
pub mod envelope;
pub mod keys;
pub mod legacy;
pub mod recovery;
pub mod tls;
