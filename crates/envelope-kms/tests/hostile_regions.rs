//! A message whose KMS EDKs name hundreds of regions under an allowed
//! account costs a bounded number of KMS calls (the decrypt's unwrap
//! attempts) and a bounded number of regional clients, against moto.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use envelope_core::error::{Error, KeyringError};
use envelope_core::keyring::Keyring;
use envelope_core::materials::{
    DecryptionMaterials, EncryptionMaterials, DEFAULT_MAX_UNWRAP_ATTEMPTS,
};
use envelope_core::{Client, EncryptedDataKey, EncryptionContext, MultiKeyring, RawAesKeyring};
use envelope_kms::{AwsKmsDiscoveryKeyring, DiscoveryFilter, MAX_CACHED_CLIENTS};

/// EDKs naming a key in each of `regions` regions of `account`.
struct RegionEdks {
    account: String,
    regions: std::ops::Range<usize>,
}

#[async_trait]
impl Keyring for RegionEdks {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        for n in self.regions.clone() {
            materials.encrypted_data_keys.push(EncryptedDataKey {
                provider_id: "aws-kms".into(),
                provider_info: format!(
                    "arn:aws:kms:zz-test-{n}:{}:key/11111111-2222-3333-4444-555555555555",
                    self.account
                )
                .into_bytes(),
                ciphertext: vec![7; 184],
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

#[tokio::test]
async fn hostile_regions_cost_bounded_kms_calls_and_clients() {
    let emulator = support::shared_moto();
    let admin = support::admin(emulator, support::REGION).await;
    let key = support::create_key(&admin).await;
    let account = key.split(':').nth(4).expect("account").to_owned();
    // One attempt per call, so that each unwrap attempt is one request.
    let supplier = envelope_kms::KmsClientSupplier::builder()
        .sdk_config(support::sdk_config(emulator, support::REGION).await)
        .settings(envelope_kms::KmsSettings {
            max_attempts: 1,
            ..envelope_kms::KmsSettings::default()
        })
        .build()
        .await;
    let discovery = Arc::new(AwsKmsDiscoveryKeyring::new(
        supplier.clone(),
        Some(DiscoveryFilter::new("aws", vec![account.clone()]).expect("filter")),
    ));
    let reader = Client::builder()
        .keyring(discovery)
        .build()
        .expect("client");
    let context = EncryptionContext::default();
    for batch in 0..10 {
        let generator: Arc<dyn Keyring> =
            Arc::new(RawAesKeyring::new("aes", "gen", &[2; 32]).expect("aes"));
        let junk = RegionEdks {
            account: account.clone(),
            regions: batch * 500..(batch + 1) * 500,
        };
        let writer = Client::builder()
            .keyring(Arc::new(
                MultiKeyring::new(Some(generator), vec![Arc::new(junk)]).expect("multi"),
            ))
            .build()
            .expect("client");
        let message = writer.encrypt(b"x", &context).await.expect("encrypt");
        supplier.request_counter().reset();
        let error = reader
            .decrypt(&message, &context)
            .await
            .expect_err("nothing unwraps");
        assert!(
            matches!(error, Error::Keyring(KeyringError::TooManyAttempts { limit, .. }) if limit == DEFAULT_MAX_UNWRAP_ATTEMPTS),
            "{error}"
        );
        assert_eq!(
            supplier.request_counter().count("Decrypt"),
            DEFAULT_MAX_UNWRAP_ATTEMPTS as u64,
            "Decrypt requests for 500 EDKs"
        );
    }
    assert!(
        supplier.cached_clients() <= MAX_CACHED_CLIENTS,
        "{} regional clients cached",
        supplier.cached_clients()
    );
}
