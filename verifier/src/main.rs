//! `redovault-verifier`: thin entry point; everything lives in the library.

fn main() -> std::process::ExitCode {
    match redovault_verifier::cli::main() {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(2)),
        Err(e) => {
            eprintln!("redovault-verifier: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
