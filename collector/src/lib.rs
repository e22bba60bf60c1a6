//! redovault collector: receives redo streams from extractors, stores them AES-256-GCM
//! encrypted, and rebuilds the online redo log byte for byte up to the last commit.
