//! WORM store (being built).
