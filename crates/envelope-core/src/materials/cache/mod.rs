//! The caching materials manager: reuses a data key for many messages,
//! within limits on age, messages and bytes, with one backing call per
//! miss however many callers wait for it.
//!
//! # Semantics (as the official Python SDK behaves)
//! - A hit first reserves usage (messages + 1, bytes + length), then checks
//!   the limits. A reservation over a limit retires the entry, so each data
//!   key serves exactly `max_messages` messages and at most `max_bytes`
//!   bytes (inclusive), even with many threads encrypting at once: the
//!   counters are atomics in the entry, and the hit path takes no lock.
//! - Messages of unknown length, messages of `max_bytes` or more, and suites
//!   without a KDF bypass the cache: an identity-KDF data key reused across
//!   messages would reuse GCM nonces.
//! - Signing suites are cached: the signing key is reused with the data key.
//! - Decrypt entries are keyed by suite, EDKs and context, and check age only.
//!
//! # Security trade-off
//! Every message under one cached data key shares that key: compromise of
//! one data key exposes every message it encrypted. The limits bound that
//! exposure; keep them as small as throughput allows.
//!
//! # Refresh-ahead
//! When an entry passes a fraction (default 0.8) of any limit, a background
//! task fetches its successor. When the entry is used up, the successor
//! takes its place without any caller waiting on the key service, and
//! without cutting the old key's life short (limits stay exact).

mod builder;
mod flight;
mod refresh;
mod stats;
mod store;

pub use builder::{CachingMaterialsManagerBuilder, DEFAULT_MAX_MESSAGES, MAX_BYTES_LIMIT};
pub use stats::CacheStats;
pub use store::MaterialsCache;

use flight::OwnedEncryptionRequest;
use stats::{bump, Counters};
use store::{CacheValue, DecryptEntry, EncryptEntry};

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::sync::Cache;

use super::cache_key::{CacheId, KeyLike, KeyRef};
use super::{
    DecryptRequest, DecryptionMaterials, EncryptionMaterials, EncryptionRequest, MaterialsManager,
};
use crate::error::{Error, KeyringError};
use crate::format::EncryptionContext;
use crate::policy::CommitmentPolicy;
use crate::suite::{AlgorithmSuite, Kdf};

/// The hasher of cache keys: fast, and seeded per cache. Keys are compared
/// in full on a hit (see [`super::cache_key`]), so it need not resist
/// collisions, only spread keys.
type KeyHasher = foldhash::fast::RandomState;

#[derive(Clone, Copy, Debug)]
enum Exhausted {
    Age,
    Messages,
    Bytes,
}

type Flight = Shared<BoxFuture<'static, Result<CacheValue, Error>>>;

struct Inner {
    backing: Arc<dyn MaterialsManager>,
    cache: MaterialsCache,
    partition: Arc<[u8]>,
    max_age: Duration,
    max_messages: u64,
    max_bytes: u64,
    refresh_at: Option<f64>,
    flights: Mutex<HashMap<CacheId, (u64, Flight)>>,
    next_flight: AtomicU64,
    counters: Counters,
    runtime: Option<tokio::runtime::Handle>,
}

/// A materials manager that caches another's materials. See the module docs.
///
/// Cheap to clone; clones share the cache, counters and in-flight fetches.
#[derive(Clone)]
pub struct CachingMaterialsManager {
    inner: Arc<Inner>,
}

impl CachingMaterialsManager {
    /// The cache this manager uses.
    pub fn cache(&self) -> &MaterialsCache {
        &self.inner.cache
    }
}

impl fmt::Debug for CachingMaterialsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingMaterialsManager")
            .field("max_age", &self.inner.max_age)
            .field("max_messages", &self.inner.max_messages)
            .field("max_bytes", &self.inner.max_bytes)
            .field("refresh_at", &self.inner.refresh_at)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Inner {
    fn encrypt_key<'a>(&'a self, request: &'a EncryptionRequest<'_>) -> KeyRef<'a> {
        KeyRef::Encrypt {
            partition: &self.partition,
            suite: request.suite,
            policy: request.commitment_policy,
            required_keys: &request.required_encryption_context_keys,
            context: request.encryption_context,
        }
    }

    fn decrypt_key<'a>(&'a self, request: &DecryptRequest<'a>) -> KeyRef<'a> {
        KeyRef::Decrypt {
            partition: &self.partition,
            suite: request.suite,
            policy: request.commitment_policy,
            edks: request.encrypted_data_keys,
            context: request.encryption_context,
            reproduced: request.reproduced_encryption_context,
        }
    }

    fn bypasses_encrypt(&self, request: &EncryptionRequest<'_>) -> bool {
        match request.plaintext_length {
            None => true,
            Some(len) => {
                len >= self.max_bytes
                    || request
                        .suite
                        .is_some_and(|suite| suite.kdf() == Kdf::Identity)
            }
        }
    }

    /// Reserves one message of `len` bytes; `Ok(near_limit)` on success.
    fn reserve(&self, entry: &EncryptEntry, len: u64) -> Result<bool, Exhausted> {
        let age = entry.created.elapsed();
        if age > self.max_age {
            return Err(Exhausted::Age);
        }
        let messages = entry.messages.fetch_add(1, Ordering::AcqRel) + 1;
        if messages > self.max_messages || (entry.single_use && messages > 1) {
            return Err(Exhausted::Messages);
        }
        let bytes = entry
            .bytes
            .fetch_add(len, Ordering::AcqRel)
            .saturating_add(len);
        if bytes > self.max_bytes {
            return Err(Exhausted::Bytes);
        }
        Ok(self.refresh_at.is_some_and(|fraction| {
            messages as f64 >= fraction * self.max_messages as f64
                || bytes as f64 >= fraction * self.max_bytes as f64
                || age.as_secs_f64() >= fraction * self.max_age.as_secs_f64()
        }))
    }

    /// Replaces `old` under `id` with `new` (or removes it), unless another
    /// caller already did. Returns whether this call retired it.
    fn retire(
        &self,
        key: KeyRef<'_>,
        old: &Arc<EncryptEntry>,
        new: Option<Arc<EncryptEntry>>,
    ) -> bool {
        use moka::ops::compute::CompResult;
        let id = key.to_owned_id(&self.partition);
        let result = self.cache.cache.entry(id).and_compute_with(|current| match current {
            Some(current) if matches!(current.value(), CacheValue::Encrypt(e) if Arc::ptr_eq(e, old)) => match new {
                Some(new) => Op::Put(CacheValue::Encrypt(new)),
                None => Op::Remove,
            },
            _ => Op::Nop,
        });
        matches!(result, CompResult::ReplacedWith(_) | CompResult::Removed(_))
    }

    /// The synchronous hit path: a cache lookup and an atomic reservation.
    fn try_hit(self: &Arc<Self>, key: KeyRef<'_>, len: u64) -> Option<Arc<EncryptionMaterials>> {
        // A few rounds cover promotions racing with other callers.
        for _ in 0..4 {
            let Some(CacheValue::Encrypt(entry)) = self.cache.cache.get(&key as &dyn KeyLike)
            else {
                return None;
            };
            match self.reserve(&entry, len) {
                Ok(near_limit) => {
                    bump(&self.counters.hits);
                    if near_limit {
                        self.refresh(key, &entry);
                    }
                    return Some(entry.materials.clone());
                }
                Err(reason) => {
                    let counter = match reason {
                        Exhausted::Age => &self.counters.evicted_age,
                        Exhausted::Messages => &self.counters.evicted_messages,
                        Exhausted::Bytes => &self.counters.evicted_bytes,
                    };
                    let successor = entry.successor.get().cloned();
                    let fresh = successor.filter(|s| s.created.elapsed() <= self.max_age);
                    let promoted = fresh.is_some();
                    if self.retire(key, &entry, fresh) {
                        bump(counter);
                    }
                    if !promoted {
                        return None;
                    }
                }
            }
        }
        None
    }
}

/// The caller's context: materials carry the signing public key too.
fn strip_public_key(context: &EncryptionContext) -> EncryptionContext {
    let mut context = context.clone();
    context.remove(crate::format::context::PUBLIC_KEY_FIELD);
    context
}

impl CommitmentPolicy {
    /// A policy under which `suite` may encrypt (for background refreshes).
    fn default_for(suite: AlgorithmSuite) -> Self {
        if suite.is_committing() {
            Self::RequireEncryptRequireDecrypt
        } else {
            Self::ForbidEncryptAllowDecrypt
        }
    }
}

#[async_trait]
impl MaterialsManager for CachingMaterialsManager {
    async fn get_encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Arc<EncryptionMaterials>, Error> {
        let inner = &self.inner;
        if inner.bypasses_encrypt(request) {
            bump(&inner.counters.bypasses);
            bump(&inner.counters.keyring_calls);
            return inner.backing.get_encryption_materials(request).await;
        }
        let len = request.plaintext_length.unwrap_or(0);
        let key = inner.encrypt_key(request);
        if let Some(materials) = inner.try_hit(key, len) {
            return Ok(materials);
        }
        bump(&inner.counters.misses);
        let id = key.to_owned_id(&inner.partition);
        loop {
            let owned = OwnedEncryptionRequest::new(request);
            let fetch_id = id.clone();
            let value = inner
                .fly(id.clone(), move |inner, generation| {
                    inner.fetch_encrypt(fetch_id, generation, owned, None)
                })
                .await?;
            let CacheValue::Encrypt(entry) = value else {
                return Err(KeyringError::Config(
                    "cache entry of the wrong kind (encrypt and decrypt keys never compare equal)"
                        .into(),
                )
                .into());
            };
            if inner.reserve(&entry, len).is_ok() {
                return Ok(entry.materials.clone());
            }
            // Other waiters used the fresh key up first: take the next one.
            if let Some(materials) = inner.try_hit(key, len) {
                return Ok(materials);
            }
        }
    }

    async fn decrypt_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<Arc<DecryptionMaterials>, Error> {
        let inner = &self.inner;
        if request.suite.kdf() == Kdf::Identity {
            bump(&inner.counters.bypasses);
            bump(&inner.counters.keyring_calls);
            return inner.backing.decrypt_materials(request).await;
        }
        if let Some(Ok(materials)) = self.ready_decryption_materials(request) {
            return Ok(materials);
        }
        bump(&inner.counters.misses);
        let id = inner.decrypt_key(request).to_owned_id(&inner.partition);
        let flight_id = id.clone();
        let suite = request.suite;
        let policy = request.commitment_policy;
        let edks = request.encrypted_data_keys.to_vec();
        let context = request.encryption_context.clone();
        let reproduced = request.reproduced_encryption_context.cloned();
        let max_unwrap_attempts = request.max_unwrap_attempts;
        let value = inner
            .fly(flight_id, move |inner, generation| {
                async move {
                    bump(&inner.counters.keyring_calls);
                    let request = DecryptRequest {
                        suite,
                        commitment_policy: policy,
                        encrypted_data_keys: &edks,
                        encryption_context: &context,
                        reproduced_encryption_context: reproduced.as_ref(),
                        max_unwrap_attempts,
                    };
                    let result = inner
                        .backing
                        .decrypt_materials(&request)
                        .await
                        .map(|materials| {
                            let entry = Arc::new(DecryptEntry {
                                materials,
                                created: Instant::now(),
                            });
                            inner
                                .cache
                                .cache
                                .insert(id.clone(), CacheValue::Decrypt(entry.clone()));
                            CacheValue::Decrypt(entry)
                        });
                    inner.land(&id, generation);
                    result
                }
                .boxed()
            })
            .await?;
        match value {
            CacheValue::Decrypt(entry) => Ok(entry.materials.clone()),
            CacheValue::Encrypt(_) => Err(KeyringError::Config(
                "cache entry of the wrong kind (encrypt and decrypt keys never compare equal)"
                    .into(),
            )
            .into()),
        }
    }

    fn ready_encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Option<Result<Arc<EncryptionMaterials>, Error>> {
        let inner = &self.inner;
        if inner.bypasses_encrypt(request) {
            return None;
        }
        inner
            .try_hit(
                inner.encrypt_key(request),
                request.plaintext_length.unwrap_or(0),
            )
            .map(Ok)
    }

    fn ready_decryption_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Option<Result<Arc<DecryptionMaterials>, Error>> {
        let inner = &self.inner;
        if request.suite.kdf() == Kdf::Identity {
            return None;
        }
        let key = inner.decrypt_key(request);
        let Some(CacheValue::Decrypt(entry)) = inner.cache.cache.get(&key as &dyn KeyLike) else {
            return None;
        };
        if entry.created.elapsed() > inner.max_age {
            inner.cache.cache.invalidate(&key as &dyn KeyLike);
            bump(&inner.counters.evicted_age);
            return None;
        }
        bump(&inner.counters.hits);
        Some(Ok(entry.materials.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::EncryptedDataKey;
    use crate::keyring::RawAesKeyring;
    use crate::materials::DefaultMaterialsManager;

    fn inner() -> Arc<Inner> {
        let keyring = Arc::new(RawAesKeyring::new("ns", "key", &[1u8; 32]).expect("keyring"));
        CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
            .partition(b"p".to_vec())
            .max_age(Duration::from_secs(60))
            .build()
            .expect("cache")
            .inner
    }

    fn edk(provider: &str, info: &[u8], ciphertext: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: provider.into(),
            provider_info: info.to_vec(),
            ciphertext: ciphertext.to_vec(),
        }
    }

    fn id(
        inner: &Inner,
        edks: &[EncryptedDataKey],
        context: &EncryptionContext,
        reproduced: Option<&EncryptionContext>,
    ) -> CacheId {
        let request = DecryptRequest {
            suite: AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            commitment_policy: CommitmentPolicy::RequireEncryptRequireDecrypt,
            encrypted_data_keys: edks,
            encryption_context: context,
            reproduced_encryption_context: reproduced,
            max_unwrap_attempts: crate::materials::DEFAULT_MAX_UNWRAP_ATTEMPTS,
        };
        let key = inner.decrypt_key(&request);
        let id = key.to_owned_id(&inner.partition);
        // The borrowed form a hit looks up with must hash and compare like
        // the owned form the cache keeps.
        assert_eq!(hash(&key as &dyn KeyLike), hash(&id as &dyn KeyLike));
        assert!(&key as &dyn KeyLike == &id as &dyn KeyLike);
        id
    }

    fn hash(key: &dyn KeyLike) -> u64 {
        use std::hash::BuildHasher;
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(key)
    }

    #[test]
    fn decrypt_ids_ignore_edk_order_and_nothing_else() {
        let inner = inner();
        let ctx: EncryptionContext = [("a", "b")].into_iter().collect();
        let (x, y, z) = (
            edk("p", b"1", b"c1"),
            edk("p", b"2", b"c2"),
            edk("q", b"1", b"c1"),
        );
        let base = id(&inner, &[x.clone(), y.clone(), z.clone()], &ctx, None);
        assert_eq!(
            base,
            id(&inner, &[z.clone(), x.clone(), y.clone()], &ctx, None)
        );
        assert_eq!(
            base,
            id(&inner, &[y.clone(), z.clone(), x.clone()], &ctx, None)
        );
        // Any change to the EDK set, the context or the reproduced pairs is another id.
        assert_ne!(base, id(&inner, &[x.clone(), y.clone()], &ctx, None));
        assert_ne!(
            base,
            id(&inner, &[x.clone(), y.clone(), y.clone()], &ctx, None)
        );
        let other: EncryptionContext = [("a", "c")].into_iter().collect();
        assert_ne!(
            base,
            id(&inner, &[x.clone(), y.clone(), z.clone()], &other, None)
        );
        assert_ne!(
            base,
            id(&inner, &[x.clone(), y.clone(), z.clone()], &ctx, Some(&ctx))
        );
        // Field boundaries are length-prefixed: shifting bytes between the
        // provider info and the ciphertext, or between a key and its value,
        // cannot collide.
        assert_ne!(
            id(&inner, &[edk("p", b"12", b"c")], &ctx, None),
            id(&inner, &[edk("p", b"1", b"2c")], &ctx, None)
        );
        let ab_c: EncryptionContext = [("ab", "c")].into_iter().collect();
        let a_bc: EncryptionContext = [("a", "bc")].into_iter().collect();
        assert_ne!(
            id(&inner, std::slice::from_ref(&x), &ab_c, None),
            id(&inner, &[x], &a_bc, None)
        );
    }

    #[test]
    fn many_edks_compare_as_a_multiset() {
        let inner = inner();
        let ctx = EncryptionContext::new();
        let many: Vec<EncryptedDataKey> = (0..10u8).map(|i| edk("p", &[i], b"c")).collect();
        let reversed: Vec<EncryptedDataKey> = many.iter().rev().cloned().collect();
        assert_eq!(
            id(&inner, &many, &ctx, None),
            id(&inner, &reversed, &ctx, None)
        );
        let mut repeated = many.clone();
        repeated[9] = repeated[0].clone();
        assert_ne!(
            id(&inner, &many, &ctx, None),
            id(&inner, &repeated, &ctx, None)
        );
    }

    #[test]
    fn long_fields_are_compared_in_full() {
        let inner = inner();
        let ctx = EncryptionContext::new();
        let long = vec![7u8; 1000];
        let mut longer = long.clone();
        longer[999] = 8;
        assert_ne!(
            id(&inner, &[edk("p", b"i", &long)], &ctx, None),
            id(&inner, &[edk("p", b"i", &longer)], &ctx, None)
        );
        assert_eq!(
            id(&inner, &[edk("p", b"i", &long)], &ctx, None),
            id(&inner, &[edk("p", b"i", &long)], &ctx, None)
        );
    }
}
