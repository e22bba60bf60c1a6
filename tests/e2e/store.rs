//! End-to-end tests of `store`.
