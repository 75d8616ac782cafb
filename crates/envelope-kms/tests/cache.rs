//! The caching materials manager over a real AWS KMS API (moto): one
//! `GenerateDataKey` for 64 concurrent cold misses, counted by the SDK
//! interceptor, and decrypt-side caching of `Decrypt`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use envelope_core::{CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext};
use envelope_kms::AwsKmsKeyring;
use support::{admin, create_key, shared_moto, supplier, REGION};

fn context() -> EncryptionContext {
    [("service", "orders")].into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_cold_misses_make_one_generate_data_key_call() {
    let moto = shared_moto();
    let key = create_key(&admin(moto, REGION).await).await;
    let supplier = supplier(moto).await;
    let keyring = Arc::new(AwsKmsKeyring::new(&key, supplier.clone()).expect("keyring"));
    let cache = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
        .max_age(Duration::from_secs(300))
        .max_messages(1000)
        .build()
        .expect("cache");
    let client = Client::builder()
        .materials_manager(Arc::new(cache.clone()))
        .build()
        .expect("client");
    supplier.request_counter().reset();

    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .encrypt(format!("record {i}").as_bytes(), &context())
                    .await
            })
        })
        .collect();
    let mut messages = Vec::new();
    for task in tasks {
        messages.push(task.await.expect("join").expect("encrypt"));
    }
    assert_eq!(
        supplier.request_counter().count("GenerateDataKey"),
        1,
        "one KMS call for 64 misses"
    );
    assert_eq!(cache.stats().keyring_calls, 1);

    // Decrypting all 64 (one data key) makes one Decrypt call.
    for (i, message) in messages.iter().enumerate() {
        let decrypted = client.decrypt(message, &context()).await.expect("decrypt");
        assert_eq!(decrypted.plaintext, format!("record {i}").as_bytes());
    }
    assert_eq!(supplier.request_counter().count("Decrypt"), 1);
}
