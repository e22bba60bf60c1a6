//! `deploy/config/collector.example.toml` documents every key: it parses with the
//! documented defaults, and `redovault-collector check-config` accepts it once the files it
//! names exist (and lists them when they do not).

use std::path::Path;
use std::process::Command;

use redovault_collector::config::{Cipher, CollectorConfig};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../deploy/config/collector.example.toml"
);

#[test]
fn example_parses_with_the_documented_defaults() {
    let c = CollectorConfig::load(Path::new(EXAMPLE)).unwrap();
    assert_eq!(c.address().to_string(), "0.0.0.0:7070");
    assert_eq!(c.listen.max_connections, 256);
    assert_eq!(c.listen.cipher, Cipher::Tls);
    assert_eq!(
        c.link.config(),
        redovault::wire::transport::LinkConfig::default()
    );
    assert_eq!(
        c.store.options(),
        redovault_collector::store::StoreOptions::default()
    );
    assert_eq!(
        c.store.writer(),
        redovault_collector::writer::WriterConfig::default()
    );
    assert_eq!(c.extractor.len(), 1);
    assert_eq!(
        c.telemetry().metrics_listen.unwrap().to_string(),
        "127.0.0.1:9464"
    );
}

#[test]
fn check_config_accepts_the_example_with_real_files_and_names_missing_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // As shipped: the certificates and the key file do not exist here.
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-collector"))
        .args(["check-config", "--config", EXAMPLE])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("/etc/redovault/link/server.pem"), "{text}");
    assert!(text.contains("/etc/redovault/collector.keys"), "{text}");
    // With the files it names.
    let pki = redovault::crypto::tls::generate_pki(dir).unwrap();
    let keys = dir.join("collector.keys");
    std::fs::write(
        &keys,
        format!(
            "active = \"k1\"\n[keys]\nk1 = \"{}\"\n",
            &*redovault::crypto::keys::random_key_hex()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(EXAMPLE)
        .unwrap()
        .replace(
            "/etc/redovault/link/server.pem",
            pki.server_cert.to_str().unwrap(),
        )
        .replace("/etc/redovault/collector.keys", keys.to_str().unwrap())
        .replace(
            "/etc/redovault/link/server.key",
            pki.server_key.to_str().unwrap(),
        )
        .replace("/etc/redovault/link/ca.pem", pki.ca.to_str().unwrap())
        .replace(
            "/var/lib/redovault/collector",
            dir.join("store").to_str().unwrap(),
        );
    let cfg = dir.join("collector.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-collector"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(": OK\n") && text.contains("  listen: 0.0.0.0:7070, TLS 1.3"),
        "{text}"
    );
    // A typo is refused, with every other problem.
    std::fs::write(&cfg, "[listen]\nadress = \"x\"\n[store]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redovault-collector"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    for p in [
        "listen.address: missing",
        "listen.adress: unknown key",
        "store.dir: missing",
        "[tls]: missing",
    ] {
        assert!(text.contains(p), "{p:?} in {text}");
    }
}
