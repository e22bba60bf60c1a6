//! redovault's drill and test machinery, apart from the product library so that no program of
//! the database host links it (`redovault` and `redovault-extractor` do not depend on this
//! crate; deploy/test.sh checks their dependency trees and release binaries).
//!
//! - [`drill`]: the attack drill end to end (`redovault drill`, which runs this crate's
//!   `redovault-drill drill`).
//! - [`simulate`]: a simulated Oracle instance writing real-format redo (`redovault simulate`).
//! - [`admin`]: the S3 requests the store never makes (deletes, retention changes, policy
//!   changes), to prove that the server refuses them.
//! - [`testserver`]: the real S3 test servers that `deploy/s3/server.sh up` describes.
//! - [`servers`]: the one rule for tests that need what `deploy/test.sh` installs: skipped
//!   with one line on a bare `cargo test`, a failure under `deploy/test.sh`.

pub mod admin;
pub mod drill;
pub mod servers;
pub mod simulate;
pub mod testserver;
