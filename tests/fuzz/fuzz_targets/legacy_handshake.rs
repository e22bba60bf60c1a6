//! Fuzz target: the legacy Blowfish mode from an attacker's side.
//!
//! The first byte chooses what the rest is:
//! - 0: bytes a client sends to the collector's `Link::accept` (hello, proof, ...);
//! - 1: bytes a server sends to the extractor's `Link::connect`;
//! - 2: sealed frame payloads fed to an established channel's `Opener` (each piece: one flag
//!   byte for the rekey bit, a length byte, then that many bytes of payload).
//!
//! The handshake runs over an in-memory pipe whose far end writes the fuzzed bytes and then
//! closes. Without the pre-shared key no handshake may succeed and no sealed payload may
//! open; what the legitimate peer seals must open to the same bytes (open(seal(x)) == x).
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use redovault::crypto::legacy::{Handshake, NONCE_LEN, Psk, Role, TAG_LEN};
use redovault::wire::transport::{ClientSecurity, Link, LinkConfig, ServerSecurity};
use tokio::io::AsyncWriteExt;

fn psk() -> &'static Psk {
    static PSK: OnceLock<Psk> = OnceLock::new();
    PSK.get_or_init(|| Psk::new(vec![0x42; 32]).expect("a 32-byte PSK"))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs one side of the handshake against a peer that sends `bytes` and hangs up.
fn handshake(server: bool, bytes: &[u8]) {
    let peer: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let config = LinkConfig::default();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let result = runtime().block_on(async {
        let side = async {
            if server {
                Link::accept(
                    ours,
                    peer,
                    &ServerSecurity::LegacyBlowfish(psk().clone()),
                    &config,
                )
                .await
            } else {
                Link::connect(
                    ours,
                    peer,
                    &ClientSecurity::LegacyBlowfish(psk().clone()),
                    &config,
                )
                .await
            }
        };
        let attacker = async move {
            let _ = theirs.write_all(bytes).await;
            drop(theirs);
        };
        tokio::join!(side, attacker).0
    });
    match result {
        Ok(_) => panic!("a legacy handshake succeeded without the pre-shared key"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Sealed payloads through an established channel (fixed nonces and transcript).
fn channel(bytes: &[u8]) {
    let keys = || Handshake::new(psk(), &[1; NONCE_LEN], &[2; NONCE_LEN], b"transcript");
    // The attacker's payloads meet a channel keyed from a PSK the fuzzer never saw (the seeds
    // hold payloads genuinely sealed under `psk()`: replaying those is not a forgery).
    let other = Psk::new(vec![0x24; 32]).expect("a 32-byte PSK");
    let (_, mut opener) = Handshake::new(&other, &[1; NONCE_LEN], &[2; NONCE_LEN], b"transcript")
        .into_channel(Role::Server, 1 << 20);
    let (mut sealer, _) = keys().into_channel(Role::Client, 64);
    let (_, mut twin) = keys().into_channel(Role::Server, 1 << 20);
    let mut rest = bytes;
    let aad = [7u8; 20];
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (piece, after) = tail.split_at(n);
        rest = after;
        // Forged: no tag made without the key verifies.
        let mut forged = piece.to_vec();
        assert!(
            opener.open(&aad, flags & 1 == 1, &mut forged).is_err(),
            "a forged sealed payload opened"
        );
        // Genuine: what the client seals opens to the same bytes on the server's side.
        let rekey = match sealer.prepare(piece.len()) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let mut buf = piece.to_vec();
        let tag = sealer.seal(&aad, &mut buf).expect("sealing after prepare");
        assert_eq!(tag.len(), TAG_LEN);
        buf.extend_from_slice(&tag);
        let len = twin
            .open(&aad, rekey, &mut buf)
            .expect("a genuine payload opens");
        assert_eq!(&buf[..len], piece, "open(seal(x)) != x");
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    match which % 3 {
        0 => handshake(true, rest),
        1 => handshake(false, rest),
        _ => channel(rest),
    }
});
