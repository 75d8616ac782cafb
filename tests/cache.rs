//! The caching materials manager: exact limits under concurrency, single
//! flight, shared-but-uncached errors, capacity, decrypt caching, bypasses
//! and refresh-ahead. The backing keyring is a real raw AES keyring wrapped
//! to count (and optionally slow down or fail) its calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use envelope::error::{KeyringError, OtherError};
use envelope::keyring::Keyring;
use envelope::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptedDataKey,
    EncryptionContext, RawAesKeyring,
};

struct CountingKeyring {
    inner: RawAesKeyring,
    encrypts: AtomicU64,
    decrypts: AtomicU64,
    delay: Duration,
    fail: AtomicBool,
}

impl CountingKeyring {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: RawAesKeyring::new("cache-test", "key", &[3u8; 32]).expect("keyring"),
            encrypts: AtomicU64::new(0),
            decrypts: AtomicU64::new(0),
            delay,
            fail: AtomicBool::new(false),
        })
    }
}

#[async_trait]
impl Keyring for CountingKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(KeyringError::Other(OtherError::new(
                std::io::Error::other("counting: service unavailable"),
                true,
            )));
        }
        self.inner.on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.on_decrypt(materials, edks).await
    }
}

fn caching(
    keyring: Arc<CountingKeyring>,
    configure: impl FnOnce(
        envelope::materials::CachingMaterialsManagerBuilder,
    ) -> envelope::materials::CachingMaterialsManagerBuilder,
) -> (CachingMaterialsManager, Client) {
    let backing = Arc::new(DefaultMaterialsManager::new(keyring));
    let cmm =
        configure(CachingMaterialsManager::builder(backing).max_age(Duration::from_secs(600)))
            .build()
            .expect("cmm");
    let client = Client::builder()
        .materials_manager(Arc::new(cmm.clone()))
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .build()
        .expect("client");
    (cmm, client)
}

fn context() -> EncryptionContext {
    [("tenant", "acme")].into_iter().collect()
}

fn encrypt_across_threads(client: &Client, threads: usize, per_thread: usize, len: usize) {
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let plaintext = vec![1u8; len];
                let context = context();
                for _ in 0..per_thread {
                    client
                        .encrypt_blocking(&plaintext, &context)
                        .expect("encrypt");
                }
            });
        }
    });
}

#[test]
fn message_limit_is_exact_across_threads() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (cmm, client) = caching(keyring.clone(), |b| {
        b.max_messages(1000).refresh_ahead(None)
    });
    encrypt_across_threads(&client, 4, 25_000, 16);
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        100,
        "100,000 messages / 1,000 per key"
    );
    let stats = cmm.stats();
    assert_eq!(stats.hits + stats.misses, 100_000);
    assert_eq!(stats.keyring_calls, 100);
    println!("message limit: {stats:?}");
}

#[test]
fn message_limit_is_exact_with_refresh_ahead() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (cmm, client) = caching(keyring.clone(), |b| {
        b.max_messages(1000).refresh_ahead(Some(0.5))
    });
    encrypt_across_threads(&client, 4, 25_000, 16);
    let calls = keyring.encrypts.load(Ordering::SeqCst);
    // Every key serves its full 1,000 messages; at most the last key's
    // successor is fetched and never used.
    assert!((100..=101).contains(&calls), "{calls} keyring calls");
    let stats = cmm.stats();
    assert!(stats.refreshes >= 99, "{stats:?}");
    assert!(
        stats.misses < 10,
        "refresh-ahead keeps callers off the miss path: {stats:?}"
    );
}

#[test]
fn byte_limit_is_exact_and_inclusive_across_threads() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (_, client) = caching(keyring.clone(), |b| b.max_bytes(10_000).refresh_ahead(None));
    encrypt_across_threads(&client, 4, 5_000, 100);
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        200,
        "20,000 x 100 B / 10,000 B per key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_make_one_keyring_call() {
    let keyring = CountingKeyring::new(Duration::from_millis(200));
    let (cmm, client) = caching(keyring.clone(), |b| b);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.encrypt(b"payload", &context()).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("encrypt");
    }
    assert_eq!(keyring.encrypts.load(Ordering::SeqCst), 1);
    assert_eq!(cmm.stats().keyring_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_reach_every_waiter_and_are_not_cached() {
    let keyring = CountingKeyring::new(Duration::from_millis(100));
    keyring.fail.store(true, Ordering::SeqCst);
    let (_, client) = caching(keyring.clone(), |b| b);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.encrypt(b"payload", &context()).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.expect("join").expect_err("fails");
        assert!(err.is_retryable(), "{err}");
    }
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        1,
        "one call for all waiters"
    );
    keyring.fail.store(false, Ordering::SeqCst);
    client
        .encrypt(b"payload", &context())
        .await
        .expect("recovers");
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        2,
        "the error was not cached"
    );
}

#[test]
fn capacity_bounds_the_entry_count() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (cmm, client) = caching(keyring.clone(), |b| b.capacity(10));
    for i in 0..200 {
        let context: EncryptionContext = [("n", i.to_string())].into_iter().collect();
        client.encrypt_blocking(b"x", &context).expect("encrypt");
        if i % 20 == 0 {
            assert!(cmm.cache().entry_count() <= 10);
        }
    }
    assert!(cmm.cache().entry_count() <= 10);
    assert!(cmm.stats().evicted_capacity >= 190, "{:?}", cmm.stats());
}

#[test]
fn decrypts_of_one_data_key_call_the_keyring_once() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (cmm, client) = caching(keyring.clone(), |b| b);
    let messages: Vec<_> = (0..100)
        .map(|i| {
            client
                .encrypt_blocking(format!("m{i}").as_bytes(), &context())
                .expect("encrypt")
        })
        .collect();
    for (i, message) in messages.iter().enumerate() {
        let decrypted = client
            .decrypt_blocking(message, &context())
            .expect("decrypt");
        assert_eq!(decrypted.plaintext, format!("m{i}").as_bytes());
    }
    assert_eq!(keyring.encrypts.load(Ordering::SeqCst), 1);
    assert_eq!(keyring.decrypts.load(Ordering::SeqCst), 1);
    assert_eq!(cmm.stats().hits, 99 + 99);
}

#[test]
fn large_messages_and_identity_suites_bypass_the_cache() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let (cmm, client) = caching(keyring.clone(), |b| b.max_bytes(100));
    for _ in 0..3 {
        client
            .encrypt_blocking(&[0u8; 100], &context())
            .expect("encrypt");
    }
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        3,
        "a message >= max_bytes is never cached"
    );
    assert_eq!(cmm.stats().bypasses, 3);

    let legacy = Client::builder()
        .materials_manager(Arc::new(cmm.clone()))
        .commitment_policy(envelope::CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .suite(AlgorithmSuite::Aes256GcmIv12Tag16NoKdf)
        .build()
        .expect("client");
    for _ in 0..3 {
        let message = legacy.encrypt_blocking(b"x", &context()).expect("encrypt");
        legacy
            .decrypt_blocking(&message, &context())
            .expect("decrypt");
    }
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        6,
        "identity-KDF keys are never reused"
    );
    assert_eq!(keyring.decrypts.load(Ordering::SeqCst), 3);
}

#[test]
fn signing_suites_are_cached_and_age_limit_retires_keys() {
    let keyring = CountingKeyring::new(Duration::ZERO);
    let backing = Arc::new(DefaultMaterialsManager::new(keyring.clone()));
    let cmm = CachingMaterialsManager::builder(backing)
        .max_age(Duration::from_millis(300))
        .refresh_ahead(None)
        .build()
        .expect("cmm");
    let client = Client::builder()
        .materials_manager(Arc::new(cmm.clone()))
        .build()
        .expect("client");
    for _ in 0..5 {
        client
            .encrypt_blocking(b"signed", &context())
            .expect("encrypt");
    }
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        1,
        "0x0578 materials are cached"
    );
    std::thread::sleep(Duration::from_millis(350));
    client
        .encrypt_blocking(b"signed", &context())
        .expect("encrypt");
    assert_eq!(
        keyring.encrypts.load(Ordering::SeqCst),
        2,
        "an expired key is replaced"
    );
    assert_eq!(cmm.stats().evicted_age, 1);
}

#[test]
fn partitions_keep_managers_sharing_a_cache_apart() {
    let shared = envelope::MaterialsCache::new(100, Duration::from_secs(60));
    let a = CountingKeyring::new(Duration::ZERO);
    let b = CountingKeyring::new(Duration::ZERO);
    let (_, client_a) = caching(a.clone(), |builder| builder.cache(shared.clone()));
    let (_, client_b) = caching(b.clone(), |builder| builder.cache(shared.clone()));
    client_a
        .encrypt_blocking(b"x", &context())
        .expect("encrypt");
    client_b
        .encrypt_blocking(b"x", &context())
        .expect("encrypt");
    client_a
        .encrypt_blocking(b"x", &context())
        .expect("encrypt");
    assert_eq!(a.encrypts.load(Ordering::SeqCst), 1);
    assert_eq!(b.encrypts.load(Ordering::SeqCst), 1);
    assert_eq!(shared.entry_count(), 2);
}

#[test]
fn builder_rejects_bad_limits() {
    let backing = Arc::new(DefaultMaterialsManager::new(CountingKeyring::new(
        Duration::ZERO,
    )));
    let base = || CachingMaterialsManager::builder(backing.clone());
    assert!(base().build().is_err(), "max_age is required");
    assert!(base().max_age(Duration::ZERO).build().is_err());
    assert!(base()
        .max_age(Duration::from_secs(1))
        .max_messages(0)
        .build()
        .is_err());
    assert!(base()
        .max_age(Duration::from_secs(1))
        .max_messages((1 << 32) + 1)
        .build()
        .is_err());
    assert!(base()
        .max_age(Duration::from_secs(1))
        .max_bytes(1 << 63)
        .build()
        .is_err());
    assert!(base()
        .max_age(Duration::from_secs(1))
        .refresh_ahead(Some(1.0))
        .build()
        .is_err());
}
