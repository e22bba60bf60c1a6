//! Decode throughput benchmark (filled in with the decoder).
fn main() {}
