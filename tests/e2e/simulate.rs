//! End-to-end tests of `simulate`.
