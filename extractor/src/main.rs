//! `redovault-extractor`: thin entry point; everything lives in the library.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("redovault-extractor: not built yet")
}
