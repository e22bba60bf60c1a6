//! Fuzz target: key files, as text. The same bytes go to the collector's at-rest key file
//! parser (`KeyRing::parse`) and to the offline recovery key's public and private PEM
//! parsers. A key ring parsed has its active key among its keys; a recovery key parsed
//! survives a round trip through its own PEM writer (same key id), and a private key's public
//! half is the one its public PEM gives.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use redovault::crypto::keys::KeyRing;
use redovault::crypto::recovery::{RecoveryPrivateKey, RecoveryPublicKey};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let file = Path::new("fuzz.keys");
    match KeyRing::parse(text, file) {
        Ok(ring) => {
            assert!(
                ring.contains(ring.active_id()),
                "the active key is not in the ring"
            );
            assert!(ring.ids().count() >= 1);
        }
        Err(e) => assert!(
            e.to_string().contains("fuzz.keys"),
            "error without the file: {e}"
        ),
    }
    match RecoveryPublicKey::from_pem(text, "fuzz.pub") {
        Ok(key) => {
            let again = RecoveryPublicKey::from_pem(&key.to_pem(), "again")
                .expect("a written public key parses");
            assert_eq!(again.id(), key.id(), "public key round trip");
        }
        Err(e) => assert!(
            e.to_string().contains("fuzz.pub"),
            "error without the file: {e}"
        ),
    }
    match RecoveryPrivateKey::from_pem(text, "fuzz.key") {
        Ok(key) => {
            let again = RecoveryPrivateKey::from_pem(&key.to_pem(), "again")
                .expect("a written private key parses");
            assert_eq!(
                again.public().id(),
                key.public().id(),
                "private key round trip"
            );
            let public = RecoveryPublicKey::from_pem(&key.public().to_pem(), "public")
                .expect("its public half parses");
            assert_eq!(public.id(), key.public().id());
        }
        Err(e) => assert!(
            e.to_string().contains("fuzz.key"),
            "error without the file: {e}"
        ),
    }
});
