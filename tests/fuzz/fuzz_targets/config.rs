//! Fuzz target: configuration text through the parse-from-string function of every program:
//! the watcher's `Config::parse`, the extractor's `Settings::parse`, the collector's
//! `CollectorConfig::parse` and the verifier's `VerifierConfig::parse`. Each either accepts the
//! text or lists its problems: at least one, none empty (every problem is reported at once,
//! and each says what to change).
#![no_main]

use libfuzzer_sys::fuzz_target;
use redovault::watcher::config::Config;
use redovault_collector::config::CollectorConfig;
use redovault_extractor::settings::Settings;
use redovault_verifier::config::VerifierConfig;

fn problems<T>(program: &str, r: Result<T, Vec<String>>) {
    if let Err(list) = r {
        assert!(!list.is_empty(), "{program}: refused without a problem");
        for p in &list {
            assert!(
                !p.trim().is_empty(),
                "{program}: an empty problem in {list:?}"
            );
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    problems("watcher", Config::parse(text));
    problems("extractor", Settings::parse(text));
    problems("collector", CollectorConfig::parse(text));
    problems("verifier", VerifierConfig::parse(text));
});
