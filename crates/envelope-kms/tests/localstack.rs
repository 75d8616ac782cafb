//! Key state and multi-Region keys against localstack-core on loopback.
//!
//! moto does not enforce key state and fails MRK decrypts, so these tests
//! use localstack (one server for this test binary).

mod support;

use std::sync::Arc;

use aws_sdk_kms::types::KeyState;
use envelope_core::error::{Error, KeyringError};
use envelope_core::keyring::Keyring;
use envelope_core::{Client, EncryptionContext};
use envelope_kms::KmsErrorKind;
use envelope_kms::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter};
use support::{
    admin, create_key, create_mrk, key_state, kms_errors, replicate, shared_localstack, supplier,
    REGION,
};

const PLAINTEXT: &[u8] = b"localstack enforces key state";
const REPLICA_REGION: &str = "us-west-2";

fn context() -> EncryptionContext {
    [("purpose", "envelope-kms-localstack")]
        .into_iter()
        .collect()
}

fn client(keyring: impl Keyring + 'static) -> Client {
    Client::builder()
        .keyring(Arc::new(keyring))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_disabled_key_gives_disabled_errors_naming_the_key() {
    let localstack = shared_localstack();
    let admin = admin(localstack, REGION).await;
    let key = create_key(&admin).await;
    let supplier = supplier(localstack).await;
    let client = client(AwsKmsKeyring::new(&key, supplier).unwrap());
    let message = client.encrypt(PLAINTEXT, &context()).await.unwrap();

    admin.disable_key().key_id(&key).send().await.unwrap();
    assert_eq!(key_state(&admin, &key).await, Some(KeyState::Disabled));

    let error = client.encrypt(PLAINTEXT, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(key.clone(), KmsErrorKind::Disabled)],
        "{error}"
    );
    assert!(!error.is_retryable());
    let error = client.decrypt(&message, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(key.clone(), KmsErrorKind::Disabled)],
        "{error}"
    );
    assert!(error.to_string().contains(&key), "{error}");

    admin.enable_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        client
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );
}

#[tokio::test]
async fn a_key_pending_deletion_gives_invalid_state_errors() {
    let localstack = shared_localstack();
    let admin = admin(localstack, REGION).await;
    let key = create_key(&admin).await;
    let supplier = supplier(localstack).await;
    let client = client(AwsKmsKeyring::new(&key, supplier).unwrap());
    let message = client.encrypt(PLAINTEXT, &context()).await.unwrap();

    admin
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(
        key_state(&admin, &key).await,
        Some(KeyState::PendingDeletion)
    );

    let error = client.encrypt(PLAINTEXT, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(key.clone(), KmsErrorKind::InvalidState)],
        "{error}"
    );
    let error = client.decrypt(&message, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(key.clone(), KmsErrorKind::InvalidState)],
        "{error}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_unknown_key_is_not_found_on_localstack_too() {
    let localstack = shared_localstack();
    let admin = admin(localstack, REGION).await;
    let key = create_key(&admin).await;
    let unknown = key
        .rsplit_once('/')
        .map(|(prefix, _)| format!("{prefix}/11111111-2222-3333-4444-555555555555"))
        .unwrap();
    let client = client(AwsKmsKeyring::new(&unknown, supplier(localstack).await).unwrap());
    let error = client.encrypt(PLAINTEXT, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(unknown, KmsErrorKind::NotFound)],
        "{error}"
    );
}

#[tokio::test]
async fn an_mrk_replica_in_another_region_decrypts_what_its_primary_encrypted() {
    let localstack = shared_localstack();
    let primary_admin = admin(localstack, REGION).await;
    let primary = create_mrk(&primary_admin).await;
    let replica = replicate(&primary_admin, &primary, REPLICA_REGION).await;
    assert!(replica.contains(REPLICA_REGION) && primary.contains(REGION));
    assert_eq!(
        primary.rsplit_once('/').map(|p| p.1),
        replica.rsplit_once('/').map(|p| p.1)
    );

    let supplier = supplier(localstack).await;
    let counter = supplier.request_counter().clone();
    let message = client(AwsKmsKeyring::mrk_aware(&primary, supplier.clone()).unwrap())
        .encrypt(PLAINTEXT, &context())
        .await
        .unwrap();

    // The MRK-aware keyring on the replica decrypts, calling us-west-2.
    counter.reset();
    let at_replica = client(AwsKmsKeyring::mrk_aware(&replica, supplier.clone()).unwrap());
    let decrypted = at_replica.decrypt(&message, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(
        decrypted.header.encrypted_data_keys[0].provider_info,
        primary.as_bytes(),
        "the EDK names the primary"
    );
    assert_eq!(counter.count("Decrypt"), 1);
    assert_eq!(supplier.cached_clients(), 2, "one client per region");

    // A strict keyring that is not MRK-aware does not match the replica.
    counter.reset();
    let error = client(AwsKmsKeyring::new(&replica, supplier.clone()).unwrap())
        .decrypt(&message, &context())
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Keyring(KeyringError::NoMatchingKey { .. })),
        "{error}"
    );
    assert_eq!(counter.count("Decrypt"), 0);

    // The MRK-aware discovery keyring in us-west-2 rewrites the ARN to its region.
    let account = primary.split(':').nth(4).unwrap().to_owned();
    let filter = DiscoveryFilter::new("aws", vec![account]).unwrap();
    let discovery = client(
        AwsKmsDiscoveryKeyring::mrk_aware(supplier.clone(), REPLICA_REGION, Some(filter)).unwrap(),
    );
    assert_eq!(
        discovery
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );

    // And the other way round: the replica encrypts, the primary decrypts.
    let message = at_replica.encrypt(PLAINTEXT, &context()).await.unwrap();
    let at_primary = client(AwsKmsKeyring::mrk_aware(&primary, supplier.clone()).unwrap());
    assert_eq!(
        at_primary
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );
}

#[tokio::test]
async fn an_mrk_discovery_keyring_skips_single_region_keys_of_other_regions() {
    let localstack = shared_localstack();
    let west_key = create_key(&admin(localstack, REPLICA_REGION).await).await;
    let supplier = supplier(localstack).await;
    let message = client(AwsKmsKeyring::new(&west_key, supplier.clone()).unwrap())
        .encrypt(PLAINTEXT, &context())
        .await
        .unwrap();
    supplier.request_counter().reset();
    let east = client(AwsKmsDiscoveryKeyring::mrk_aware(supplier.clone(), REGION, None).unwrap());
    let error = east.decrypt(&message, &context()).await.unwrap_err();
    assert!(
        matches!(error, Error::Keyring(KeyringError::NoMatchingKey { .. })),
        "{error}"
    );
    assert_eq!(supplier.request_counter().total(), 0);
    // Plain discovery calls the key's own region.
    let anywhere = client(AwsKmsDiscoveryKeyring::new(supplier.clone(), None));
    assert_eq!(
        anywhere
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );
}
