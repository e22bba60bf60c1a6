//! `deploy/config/extractor.example.toml` documents every key: it parses with the
//! documented defaults, and `redovault-extractor check-config` accepts it once the files it
//! names exist (and lists them when they do not).

use std::path::Path;
use std::process::Command;

use redovault_extractor::config::TailConfig;
use redovault_extractor::settings::{Cipher, LinkSettings, Settings};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/config/extractor.example.toml"
);

#[test]
fn example_parses_with_the_documented_defaults() {
    let s = Settings::load(Path::new(EXAMPLE)).unwrap();
    assert_eq!(s.extract().online.groups.len(), 3);
    assert_eq!(s.extract().online.groups[0].members.len(), 2);
    assert_eq!(s.extract().tail, TailConfig::default());
    assert_eq!(s.link, LinkSettings::default());
    let c = &s.collectors.items[0];
    assert_eq!(c.address, "collector.example.net:7070");
    assert_eq!(c.cipher, Cipher::Tls);
    assert_eq!(
        s.telemetry().metrics_listen.unwrap().to_string(),
        "127.0.0.1:9465"
    );
}

#[test]
fn check_config_accepts_the_example_with_real_files_and_names_missing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-extractor"))
        .args(["check-config", "--config", EXAMPLE])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("/etc/redovault/link/client.pem"), "{text}");
    let pki = redovault::crypto::tls::generate_pki(dir).unwrap();
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace(
            "/etc/redovault/link/client.pem",
            pki.client_cert.to_str().unwrap(),
        )
        .replace(
            "/etc/redovault/link/client.key",
            pki.client_key.to_str().unwrap(),
        )
        .replace("/etc/redovault/link/ca.pem", pki.ca.to_str().unwrap());
    let cfg = dir.join("extractor.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-extractor"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(": OK\n")
            && text.contains("  online: 3 groups")
            && text.contains("  ship: to collector.example.net:7070"),
        "{text}"
    );
}
