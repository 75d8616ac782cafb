//! Fuzzes the whole decrypt path: header parsing, policy checks, the raw
//! AES and RSA keyrings' EDK matching, framing and the footer. Any input
//! must give a typed error or a plaintext, never a panic.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run decrypt fuzz/seeds -- -max_total_time=600`
//! (`fuzz/seeds` is made by `fuzz/make-seeds.sh` from the official vectors).

#![no_main]

use std::sync::{Arc, OnceLock};

use envelope_core::keyring::Keyring;
use envelope_core::{Client, CommitmentPolicy, EncryptionContext, MultiKeyring, RawAesKeyring};
use libfuzzer_sys::fuzz_target;

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // The key of the official vectors, so seeds from them decrypt.
        let key: Vec<u8> = (0u8..32).map(|i| (i / 10) * 16 + i % 10).collect();
        let vectors: Arc<dyn Keyring> = Arc::new(
            RawAesKeyring::new("aws-raw-vectors-persistant", "aes-256", &key).expect("keyring"),
        );
        let other: Arc<dyn Keyring> =
            Arc::new(RawAesKeyring::new("fuzz", "key", &[7u8; 32]).expect("keyring"));
        Client::builder()
            .keyring(Arc::new(
                MultiKeyring::new(None, vec![vectors, other]).expect("multi"),
            ))
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .max_encrypted_data_keys(16)
            .build()
            .expect("client")
    })
}

fuzz_target!(|data: &[u8]| {
    let reproduced: EncryptionContext = [("key1", "val1")].into_iter().collect();
    let _ = client().decrypt_blocking(data, &EncryptionContext::new());
    let _ = client().decrypt_blocking(data, &reproduced);
});
