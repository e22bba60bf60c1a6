//! The only module that imports cipher and TLS crates.
//!
//! - [`tls`]: TLS 1.3 with mutual certificate authentication (rustls), the link's default;
//!   PEM loading, peer identity, and a generator of test/quickstart certificates.
//! - [`legacy`]: the opt-in legacy Blowfish link (`cipher = "blowfish"`): PSK handshake,
//!   per-session keys, encrypt-then-MAC frames, forced rekey (Sweet32).
//!
//! Everything else (framing, messages, the link's I/O) uses these through their own types.

pub mod legacy;
pub mod tls;
