//! End-to-end tests of `inspect`.
