//! The hierarchical keyring without a network: the official static-branch-key
//! vector (messages written by the Python MPL), every suite, and bad input at
//! the keyring: wrong context, another branch key, every byte of the EDK
//! ciphertext tampered with, every truncation, an unknown version; and the
//! cache's single flight under 64 concurrent misses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use envelope_core::error::KeyringError;
use envelope_core::keyring::Keyring;
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext};
use envelope_hierarchy::{
    BranchKey, BranchKeyCache, BranchKeyStore, BranchKeyVersion, HierarchicalKeyring,
    HierarchyError, HierarchyErrorKind, StaticKeyStore, PROVIDER_ID,
};

const ID: &str = "bd3842ff-3076-4092-9918-4395730050b8";
const VERSION: &str = "e9ce18a3-edb5-4272-9f86-1cacb7997ff6";

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn static_store() -> Arc<StaticKeyStore> {
    let key: [u8; 32] = b64("tJwf65epYvUt5HMiQsl/6jlvLxS0tgdjIuvFy2BLIwg=")
        .try_into()
        .expect("32 bytes");
    Arc::new(StaticKeyStore::new(
        ID,
        BranchKeyVersion::parse(VERSION).expect("uuid"),
        key,
    ))
}

fn keyring(store: Arc<dyn BranchKeyStore>, id: &str) -> HierarchicalKeyring {
    HierarchicalKeyring::builder(store)
        .branch_key_id(id)
        .cache(BranchKeyCache::new(10, Duration::from_secs(60)))
        .build()
        .expect("keyring")
}

fn context() -> EncryptionContext {
    [("tenant", "static"), ("purpose", "offline vector")]
        .into_iter()
        .collect()
}

#[test]
fn the_static_branch_key_unwraps_the_python_keyrings_messages() {
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/static-branch-key.json"
        ))
        .expect("the committed vector"),
    )
    .expect("json");
    let client = Client::builder()
        .keyring(Arc::new(keyring(static_store(), ID)))
        .build()
        .expect("client");
    let plaintext = b64(vector["plaintext_b64"].as_str().expect("plaintext"));
    let messages = vector["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3);
    for case in messages {
        let context: EncryptionContext = case["context"]
            .as_object()
            .expect("context")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_owned()))
            .collect();
        let message = b64(case["message_b64"].as_str().expect("message"));
        let decrypted = client
            .decrypt_blocking(&message, &context)
            .expect("decrypt the vector");
        assert_eq!(decrypted.plaintext, plaintext);
        assert_eq!(
            decrypted.suite.to_string(),
            case["suite"].as_str().expect("suite")
        );
    }
}

#[test]
fn every_suite_round_trips() {
    let keyring = Arc::new(keyring(static_store(), ID));
    for suite in AlgorithmSuite::ALL {
        let policy = if suite.is_committing() {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        } else {
            CommitmentPolicy::ForbidEncryptAllowDecrypt
        };
        let client = Client::builder()
            .keyring(keyring.clone())
            .suite(suite)
            .commitment_policy(policy)
            .build()
            .expect("client");
        for context in [context(), EncryptionContext::default()] {
            let message = client
                .encrypt_blocking(b"every suite", &context)
                .expect("encrypt");
            let decrypted = client
                .decrypt_blocking(&message, &context)
                .expect("decrypt");
            assert_eq!(decrypted.plaintext, b"every suite", "{suite}");
        }
    }
}

/// The keyring's EDK for a fresh data key, and the materials' key.
async fn wrapped(
    keyring: &HierarchicalKeyring,
    suite: AlgorithmSuite,
) -> (envelope_core::EncryptedDataKey, Vec<u8>) {
    let mut materials = EncryptionMaterials::new(suite, context());
    keyring
        .on_encrypt(&mut materials)
        .await
        .expect("on_encrypt");
    let key = materials
        .data_key
        .as_ref()
        .expect("a data key")
        .expose_secret()
        .to_vec();
    let edk = materials.encrypted_data_keys.pop().expect("an EDK");
    assert_eq!(edk.provider_id, PROVIDER_ID);
    assert_eq!(edk.provider_info, ID.as_bytes());
    assert_eq!(edk.ciphertext.len(), 60 + suite.key_len());
    (edk, key)
}

async fn unwrap(
    keyring: &HierarchicalKeyring,
    suite: AlgorithmSuite,
    context: EncryptionContext,
    edk: &envelope_core::EncryptedDataKey,
) -> Result<Vec<u8>, KeyringError> {
    let mut materials = DecryptionMaterials::new(suite, context);
    keyring
        .on_decrypt(&mut materials, std::slice::from_ref(edk))
        .await?;
    Ok(materials
        .data_key
        .expect("set on success")
        .expose_secret()
        .to_vec())
}

fn kind(error: &KeyringError) -> Option<HierarchyErrorKind> {
    HierarchyError::find_in(error).first().map(|e| e.kind)
}

#[tokio::test]
async fn bad_input_fails_with_a_typed_error() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let keyring = keyring(static_store(), ID);
    let (edk, key) = wrapped(&keyring, suite).await;
    assert_eq!(
        unwrap(&keyring, suite, context(), &edk)
            .await
            .expect("intact"),
        key
    );

    // Another encryption context.
    let other: EncryptionContext = [("tenant", "globex")].into_iter().collect();
    let error = unwrap(&keyring, suite, other, &edk)
        .await
        .expect_err("wrong context");
    assert_eq!(
        kind(&error),
        Some(HierarchyErrorKind::UnwrapFailed),
        "{error}"
    );

    // A keyring of another branch key does not touch the EDK.
    let other_keyring = self::keyring(static_store(), "another-branch-key");
    let error = unwrap(&other_keyring, suite, context(), &edk)
        .await
        .expect_err("not ours");
    assert!(
        matches!(error, KeyringError::NoMatchingKey { .. }),
        "{error}"
    );

    // Every byte of the ciphertext, tampered with: salt, IV and wrapped key
    // and tag fail authentication; the version bytes name a version the
    // store does not have.
    for index in 0..edk.ciphertext.len() {
        let mut tampered = edk.clone();
        tampered.ciphertext[index] ^= 0x01;
        let error = unwrap(&keyring, suite, context(), &tampered)
            .await
            .expect_err("tampered");
        let expected = if (28..44).contains(&index) {
            HierarchyErrorKind::VersionNotFound
        } else {
            HierarchyErrorKind::UnwrapFailed
        };
        assert_eq!(kind(&error), Some(expected), "byte {index}: {error}");
    }
    // Every truncation, and one byte too many.
    for len in 0..edk.ciphertext.len() {
        let mut truncated = edk.clone();
        truncated.ciphertext.truncate(len);
        let error = unwrap(&keyring, suite, context(), &truncated)
            .await
            .expect_err("truncated");
        assert_eq!(
            kind(&error),
            Some(HierarchyErrorKind::InvalidEdk),
            "length {len}: {error}"
        );
    }
    let mut longer = edk.clone();
    longer.ciphertext.push(0);
    let error = unwrap(&keyring, suite, context(), &longer)
        .await
        .expect_err("too long");
    assert_eq!(
        kind(&error),
        Some(HierarchyErrorKind::InvalidEdk),
        "{error}"
    );
    // Nothing secret in the errors.
    assert!(!format!("{error:?}{error}").contains("tJwf65"));
}

/// A store that counts fetches and takes its time, so that callers pile up.
struct SlowCountingStore {
    inner: Arc<StaticKeyStore>,
    active: AtomicU64,
}

#[async_trait]
impl BranchKeyStore for SlowCountingStore {
    fn logical_name(&self) -> &str {
        "slow"
    }

    async fn get_active(&self, id: &str) -> Result<BranchKey, HierarchyError> {
        self.active.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.inner.get_active(id).await
    }

    async fn get_version(
        &self,
        id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        self.inner.get_version(id, version).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_misses_make_one_fetch() {
    let store = Arc::new(SlowCountingStore {
        inner: static_store(),
        active: AtomicU64::new(0),
    });
    let keyring = Arc::new(keyring(store.clone(), ID));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let keyring = keyring.clone();
        tasks.push(tokio::spawn(async move {
            let mut materials = EncryptionMaterials::new(AlgorithmSuite::default(), context());
            keyring
                .on_encrypt(&mut materials)
                .await
                .map(|()| materials.encrypted_data_keys.len())
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join").expect("on_encrypt"), 1);
    }
    assert_eq!(
        store.active.load(Ordering::SeqCst),
        1,
        "one fetch for 64 callers"
    );
    let stats = keyring.cache().stats();
    assert_eq!(stats.fetches, 1);
    assert_eq!(stats.misses + stats.hits, 64);
}

/// A store that fails, counting its attempts.
struct FailingStore(AtomicU64);

#[async_trait]
impl BranchKeyStore for FailingStore {
    fn logical_name(&self) -> &str {
        "failing"
    }

    async fn get_active(&self, id: &str) -> Result<BranchKey, HierarchyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err(HierarchyError::new(
            HierarchyErrorKind::DynamoDbUnavailable,
            "connection refused",
        )
        .for_key(id))
    }

    async fn get_version(
        &self,
        id: &str,
        _: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        self.get_active(id).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_reaches_every_waiter_and_is_not_cached() {
    let store = Arc::new(FailingStore(AtomicU64::new(0)));
    let keyring = Arc::new(keyring(store.clone(), ID));
    let attempt = || {
        let keyring = keyring.clone();
        tokio::spawn(async move {
            let mut materials = EncryptionMaterials::new(AlgorithmSuite::default(), context());
            keyring.on_encrypt(&mut materials).await
        })
    };
    let tasks: Vec<_> = (0..16).map(|_| attempt()).collect();
    for task in tasks {
        let error = task.await.expect("join").expect_err("the store fails");
        assert_eq!(kind(&error), Some(HierarchyErrorKind::DynamoDbUnavailable));
        assert!(error.is_retryable());
        assert!(
            error.to_string().contains("DynamoDB unavailable"),
            "{error}"
        );
    }
    assert_eq!(
        store.0.load(Ordering::SeqCst),
        1,
        "one attempt for 16 waiters"
    );
    attempt().await.expect("join").expect_err("still failing");
    assert_eq!(
        store.0.load(Ordering::SeqCst),
        2,
        "the failure was not cached"
    );
    assert_eq!(keyring.cache().stats().fetch_errors, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_refreshed_ahead_of_expiry_in_the_background() {
    let store = Arc::new(SlowCountingStore {
        inner: static_store(),
        active: AtomicU64::new(0),
    });
    // TTL 2 s, refresh from 1.5 s; each fetch takes 200 ms.
    let cache = BranchKeyCache::with_refresh(10, Duration::from_millis(2000), Some(0.75));
    let keyring = HierarchicalKeyring::builder(store.clone())
        .branch_key_id(ID)
        .cache(cache.clone())
        .build()
        .expect("keyring");
    let encrypt = || async {
        let mut materials = EncryptionMaterials::new(AlgorithmSuite::default(), context());
        let started = std::time::Instant::now();
        keyring
            .on_encrypt(&mut materials)
            .await
            .expect("on_encrypt");
        started.elapsed()
    };
    encrypt().await; // the first miss, fetched at about 0.2 s
    tokio::time::sleep(Duration::from_millis(1600)).await; // age 1.6 s: past 75 % of the TTL
    let waited = encrypt().await;
    assert!(
        waited < Duration::from_millis(100),
        "served from the cache while refreshing: {waited:?}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await; // the first entry would have expired
    let waited = encrypt().await;
    assert!(
        waited < Duration::from_millis(100),
        "the refreshed entry took over: {waited:?}"
    );
    assert_eq!(store.active.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().refreshes, 1);
}

#[test]
fn composes_with_the_multi_keyring_and_the_materials_managers() {
    use envelope_core::{
        CachingMaterialsManager, DefaultMaterialsManager, MultiKeyring, RawAesKeyring,
        RequiredContextMaterialsManager,
    };
    let hierarchy: Arc<dyn Keyring> = Arc::new(keyring(static_store(), ID));
    let aes: Arc<dyn Keyring> =
        Arc::new(RawAesKeyring::new("ns", "backup", &[3; 32]).expect("aes"));
    // Multi-keyring: the hierarchical keyring generates, raw AES adds an EDK;
    // either alone decrypts.
    let multi =
        Arc::new(MultiKeyring::new(Some(hierarchy.clone()), vec![aes.clone()]).expect("multi"));
    let message = Client::builder()
        .keyring(multi)
        .build()
        .expect("client")
        .encrypt_blocking(b"both", &context())
        .expect("encrypt");
    for alone in [hierarchy.clone(), aes] {
        let client = Client::builder().keyring(alone).build().expect("client");
        assert_eq!(
            client
                .decrypt_blocking(&message, &context())
                .expect("decrypt")
                .plaintext,
            b"both"
        );
    }
    // The data-key cache over it: one keyring call for many messages.
    let cache =
        CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(hierarchy.clone())))
            .max_age(Duration::from_secs(60))
            .build()
            .expect("cache");
    let stats = cache.clone();
    let client = Client::builder()
        .materials_manager(Arc::new(cache))
        .build()
        .expect("client");
    for _ in 0..10 {
        let message = client
            .encrypt_blocking(b"cached", &context())
            .expect("encrypt");
        assert_eq!(
            client
                .decrypt_blocking(&message, &context())
                .expect("decrypt")
                .plaintext,
            b"cached"
        );
    }
    assert_eq!(
        stats.stats().keyring_calls,
        2,
        "one encrypt and one decrypt fetch"
    );
    // Required encryption context: the pair is authenticated, not stored,
    // and decrypt must supply it.
    let required = RequiredContextMaterialsManager::new(
        Arc::new(DefaultMaterialsManager::new(hierarchy)),
        vec!["tenant".to_owned()],
    );
    let client = Client::builder()
        .materials_manager(Arc::new(required))
        .build()
        .expect("client");
    let message = client
        .encrypt_blocking(b"required", &context())
        .expect("encrypt");
    assert_eq!(
        client
            .decrypt_blocking(&message, &context())
            .expect("decrypt")
            .plaintext,
        b"required"
    );
    let purpose_only: EncryptionContext = [("purpose", "offline vector")].into_iter().collect();
    assert!(
        client.decrypt_blocking(&message, &purpose_only).is_err(),
        "the required pair is missing"
    );
}
