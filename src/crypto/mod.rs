//! Cryptography: the only module that imports cipher crates.
//!
//! - [`keys`]: the collector's key ring (AES-256 keys from a key file; one active, older ones
//!   kept for reading).
//! - [`envelope`]: AES-256-GCM sealing of the collector's segments (versioned header, nonce
//!   scheme, chunk AAD).

pub mod envelope;
pub mod keys;
