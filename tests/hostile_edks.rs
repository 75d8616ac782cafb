//! A message whose EDKs all name the decryptor's key costs a bounded number
//! of unwrap attempts by default: thousands of EDKs that match a raw RSA
//! keyring make exactly `DEFAULT_MAX_UNWRAP_ATTEMPTS` private-key
//! operations, shared by every keyring of the decrypt, before a typed
//! `TooManyAttempts` error. The bound is the client's to raise.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use envelope::error::{Error, KeyringError};
use envelope::keyring::Keyring;
use envelope::materials::{DecryptionMaterials, EncryptionMaterials, DEFAULT_MAX_UNWRAP_ATTEMPTS};
use envelope::{
    Client, EncryptedDataKey, EncryptionContext, MultiKeyring, RawAesKeyring, RawRsaKeyring,
    RsaPadding,
};

const JUNK_EDKS: usize = 3000;

/// Adds EDKs that name the RSA keyring's key but hold random bytes.
struct JunkEdks;

#[async_trait]
impl Keyring for JunkEdks {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        for n in 0..JUNK_EDKS {
            let mut ciphertext = vec![0u8; 512];
            ciphertext[..8].copy_from_slice(&(n as u64).to_be_bytes());
            materials.encrypted_data_keys.push(EncryptedDataKey {
                provider_id: "rsa-ns".into(),
                provider_info: b"rsa-key".to_vec(),
                ciphertext,
            });
        }
        Ok(())
    }

    async fn on_decrypt(
        &self,
        _: &mut DecryptionMaterials,
        _: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        Ok(())
    }
}

fn rsa_private() -> RawRsaKeyring {
    let keys_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/esdk/v4-Net-4.0.1/keys.json");
    let keys: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&keys_path)
            .expect("ESDK vector keys.json is missing from ../shared/vectors/esdk"),
    )
    .expect("json");
    let private = keys["keys"]["rsa-4096-private"]["material"]
        .as_str()
        .expect("pem");
    RawRsaKeyring::from_pem(
        "rsa-ns",
        "rsa-key",
        RsaPadding::OaepSha256,
        None,
        Some(private),
    )
    .expect("rsa")
}

fn too_many(error: &Error) -> Option<usize> {
    match error {
        Error::Keyring(KeyringError::TooManyAttempts { limit, .. }) => Some(*limit),
        _ => None,
    }
}

#[test]
fn matching_edks_cost_a_bounded_number_of_rsa_operations() {
    let generator: Arc<dyn Keyring> =
        Arc::new(RawAesKeyring::new("aes-ns", "gen", &[8; 32]).expect("aes"));
    let writer = Client::builder()
        .keyring(Arc::new(
            MultiKeyring::new(Some(generator), vec![Arc::new(JunkEdks)]).expect("multi"),
        ))
        .build()
        .expect("client");
    let context = EncryptionContext::default();
    let message = writer
        .encrypt_blocking(b"hostile", &context)
        .expect("encrypt");
    assert!(message.len() > 1_500_000, "{} bytes", message.len());

    // The default: exactly DEFAULT_MAX_UNWRAP_ATTEMPTS private-key operations.
    let rsa = Arc::new(rsa_private());
    let reader = Client::builder()
        .keyring(rsa.clone())
        .build()
        .expect("client");
    let started = Instant::now();
    let error = reader
        .decrypt_blocking(&message, &context)
        .expect_err("no EDK unwraps");
    let elapsed = started.elapsed();
    assert_eq!(
        too_many(&error),
        Some(DEFAULT_MAX_UNWRAP_ATTEMPTS),
        "{error}"
    );
    assert_eq!(
        rsa.private_key_operations(),
        DEFAULT_MAX_UNWRAP_ATTEMPTS as u64
    );
    assert!(!error.to_string().is_empty());
    println!(
        "{JUNK_EDKS} matching EDKs, RSA-4096: {} private-key operations, {elapsed:?}",
        rsa.private_key_operations()
    );

    // Raised by the caller.
    let rsa = Arc::new(rsa_private());
    let reader = Client::builder()
        .keyring(rsa.clone())
        .max_unwrap_attempts(25)
        .build()
        .expect("client");
    let error = reader
        .decrypt_blocking(&message, &context)
        .expect_err("no EDK unwraps");
    assert_eq!(too_many(&error), Some(25), "{error}");
    assert_eq!(rsa.private_key_operations(), 25);

    // Shared by every keyring of the decrypt.
    let (first, second) = (Arc::new(rsa_private()), Arc::new(rsa_private()));
    let both: Vec<Arc<dyn Keyring>> = vec![first.clone(), second.clone()];
    let reader = Client::builder()
        .keyring(Arc::new(MultiKeyring::new(None, both).expect("multi")))
        .build()
        .expect("client");
    reader
        .decrypt_blocking(&message, &context)
        .expect_err("no EDK unwraps");
    assert_eq!(
        first.private_key_operations() + second.private_key_operations(),
        DEFAULT_MAX_UNWRAP_ATTEMPTS as u64
    );
}
