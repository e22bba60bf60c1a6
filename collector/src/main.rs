//! `redovault-collector`: thin entry point; everything lives in the library.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("redovault-collector: not built yet")
}
