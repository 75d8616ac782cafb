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

/// The default (and largest) message limit of the spec: 2^32.
pub const DEFAULT_MAX_MESSAGES: u64 = 1 << 32;
/// The largest byte limit the spec allows: 2^63 - 1.
pub const MAX_BYTES_LIMIT: u64 = i64::MAX as u64;

#[derive(Clone)]
enum CacheValue {
    Encrypt(Arc<EncryptEntry>),
    Decrypt(Arc<DecryptEntry>),
}

struct EncryptEntry {
    materials: Arc<EncryptionMaterials>,
    created: Instant,
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Identity-KDF materials from a custom backing manager: one message only.
    single_use: bool,
    refresh_started: AtomicBool,
    successor: OnceLock<Arc<EncryptEntry>>,
}

impl EncryptEntry {
    fn new(materials: Arc<EncryptionMaterials>) -> Self {
        Self {
            single_use: materials.suite.kdf() == Kdf::Identity,
            materials,
            created: Instant::now(),
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            refresh_started: AtomicBool::new(false),
            successor: OnceLock::new(),
        }
    }
}

struct DecryptEntry {
    materials: Arc<DecryptionMaterials>,
    created: Instant,
}

/// Counts of evictions by reason, shared by everything using one cache.
#[derive(Default)]
struct EvictionCounters {
    capacity: AtomicU64,
    expired: AtomicU64,
}

/// A bounded, thread-safe store of materials (an LRU-like `moka` cache).
///
/// One cache can serve several [`CachingMaterialsManager`]s; each manager's
/// partition id keeps its entries apart. Cloning shares the same store.
#[derive(Clone)]
pub struct MaterialsCache {
    cache: Cache<CacheId, CacheValue, KeyHasher>,
    evictions: Arc<EvictionCounters>,
}

impl MaterialsCache {
    /// A cache of at most `capacity` entries, each dropped (and its data key
    /// zeroized, once no message holds it) after `idle_expiry` at the latest.
    pub fn new(capacity: u64, idle_expiry: Duration) -> Self {
        let evictions = Arc::new(EvictionCounters::default());
        let counters = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .time_to_live(idle_expiry)
            .eviction_listener(move |_key, _value, cause| {
                let counter = match cause {
                    RemovalCause::Size => &counters.capacity,
                    RemovalCause::Expired => &counters.expired,
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .build_with_hasher(KeyHasher::default());
        Self { cache, evictions }
    }

    /// Runs pending maintenance (evictions), then counts the entries.
    pub fn entry_count(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

impl fmt::Debug for MaterialsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaterialsCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// A snapshot of a caching manager's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests served from the cache.
    pub hits: u64,
    /// Requests the cache could not serve at once (they waited on a fetch).
    pub misses: u64,
    /// Requests that skipped the cache (unknown length, too large, no KDF).
    pub bypasses: u64,
    /// Calls to the backing manager (and so to its keyring).
    pub keyring_calls: u64,
    /// Background refreshes started.
    pub refreshes: u64,
    /// Background refreshes that failed.
    pub refresh_failures: u64,
    /// Entries retired because they reached the age limit.
    pub evicted_age: u64,
    /// Entries retired at the message limit.
    pub evicted_messages: u64,
    /// Entries retired at the byte limit.
    pub evicted_bytes: u64,
    /// Entries evicted because the cache was full (shared cache-wide).
    pub evicted_capacity: u64,
    /// Entries that expired unused (shared cache-wide).
    pub evicted_idle: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    keyring_calls: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    evicted_age: AtomicU64,
    evicted_messages: AtomicU64,
    evicted_bytes: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

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

/// Builds a [`CachingMaterialsManager`].
pub struct CachingMaterialsManagerBuilder {
    backing: Arc<dyn MaterialsManager>,
    cache: Option<MaterialsCache>,
    capacity: u64,
    partition: Option<Vec<u8>>,
    max_age: Option<Duration>,
    max_messages: u64,
    max_bytes: u64,
    refresh_at: Option<f64>,
}

impl CachingMaterialsManagerBuilder {
    /// Shares `cache` (possibly with other managers) instead of a new one.
    pub fn cache(mut self, cache: MaterialsCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Capacity in entries of a new cache (default 1000).
    pub fn capacity(mut self, entries: u64) -> Self {
        self.capacity = entries;
        self
    }

    /// The partition id; managers sharing a cache must use different ones
    /// (default: 16 random bytes, so they do).
    pub fn partition(mut self, partition: impl Into<Vec<u8>>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// How long a data key may be used (required).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Messages per data key (default and maximum 2^32).
    pub fn max_messages(mut self, max: u64) -> Self {
        self.max_messages = max;
        self
    }

    /// Plaintext bytes per data key, inclusive (default and maximum 2^63 - 1).
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// Fetch an entry's successor in the background once it passes this
    /// fraction of any limit (default `Some(0.8)`); `None` turns it off.
    pub fn refresh_ahead(mut self, fraction: Option<f64>) -> Self {
        self.refresh_at = fraction;
        self
    }

    /// Validates the limits and builds the manager. Background refreshes
    /// run on the tokio runtime current at this call, if any, and on a
    /// short-lived thread otherwise.
    pub fn build(self) -> Result<CachingMaterialsManager, Error> {
        let config = |reason: &str| {
            Error::Keyring(KeyringError::Config(format!(
                "caching materials manager: {reason}"
            )))
        };
        let max_age = self.max_age.ok_or_else(|| config("max_age is required"))?;
        if max_age.is_zero() {
            return Err(config("max_age must be positive"));
        }
        if self.max_messages == 0 || self.max_messages > DEFAULT_MAX_MESSAGES {
            return Err(config("max_messages must be between 1 and 2^32"));
        }
        if self.max_bytes == 0 || self.max_bytes > MAX_BYTES_LIMIT {
            return Err(config("max_bytes must be between 1 and 2^63 - 1"));
        }
        if self.refresh_at.is_some_and(|f| !(f > 0.0 && f < 1.0)) {
            return Err(config("refresh_ahead must be a fraction between 0 and 1"));
        }
        if self.capacity == 0 && self.cache.is_none() {
            return Err(config("capacity must be at least 1"));
        }
        let partition = match self.partition {
            Some(partition) => partition,
            None => {
                let mut random = vec![0u8; 16];
                crate::crypto::rng::fill(&mut random)?;
                random
            }
        };
        let cache = self
            .cache
            .unwrap_or_else(|| MaterialsCache::new(self.capacity, max_age.saturating_mul(2)));
        Ok(CachingMaterialsManager {
            inner: Arc::new(Inner {
                backing: self.backing,
                cache,
                partition: partition.into(),
                max_age,
                max_messages: self.max_messages,
                max_bytes: self.max_bytes,
                refresh_at: self.refresh_at,
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                counters: Counters::default(),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        })
    }
}

impl CachingMaterialsManager {
    /// A builder over `backing` (for example a [`super::DefaultMaterialsManager`]).
    pub fn builder(backing: Arc<dyn MaterialsManager>) -> CachingMaterialsManagerBuilder {
        CachingMaterialsManagerBuilder {
            backing,
            cache: None,
            capacity: 1000,
            partition: None,
            max_age: None,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_bytes: MAX_BYTES_LIMIT,
            refresh_at: Some(0.8),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let e = &self.inner.cache.evictions;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CacheStats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            bypasses: load(&c.bypasses),
            keyring_calls: load(&c.keyring_calls),
            refreshes: load(&c.refreshes),
            refresh_failures: load(&c.refresh_failures),
            evicted_age: load(&c.evicted_age),
            evicted_messages: load(&c.evicted_messages),
            evicted_bytes: load(&c.evicted_bytes),
            evicted_capacity: load(&e.capacity),
            evicted_idle: load(&e.expired),
        }
    }

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

/// What the flight needs of an encryption request, owned so the fetch can
/// outlive the caller that started it.
struct OwnedEncryptionRequest {
    context: EncryptionContext,
    suite: Option<AlgorithmSuite>,
    policy: CommitmentPolicy,
    required_keys: Vec<String>,
}

impl OwnedEncryptionRequest {
    fn new(request: &EncryptionRequest<'_>) -> Self {
        Self {
            context: request.encryption_context.clone(),
            suite: request.suite,
            policy: request.commitment_policy,
            required_keys: request.required_encryption_context_keys.clone(),
        }
    }

    fn as_request(&self) -> EncryptionRequest<'_> {
        EncryptionRequest {
            encryption_context: &self.context,
            suite: self.suite,
            commitment_policy: self.policy,
            plaintext_length: None,
            required_encryption_context_keys: self.required_keys.clone(),
        }
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

    /// Starts fetching `entry`'s successor in the background, once. The
    /// fetch is registered as the flight for `id`, so callers that run out
    /// of the old key before it lands wait for it instead of fetching
    /// another key.
    fn refresh(self: &Arc<Self>, key: KeyRef<'_>, entry: &Arc<EncryptEntry>) {
        if entry.refresh_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let id = key.to_owned_id(&self.partition);
        let request = OwnedEncryptionRequest {
            context: strip_public_key(&entry.materials.encryption_context),
            suite: Some(entry.materials.suite),
            policy: CommitmentPolicy::default_for(entry.materials.suite),
            required_keys: entry.materials.required_encryption_context_keys.clone(),
        };
        let predecessor = entry.clone();
        // A fetch already under way for this id will serve as the successor.
        let fetch_id = id.clone();
        let Ok((flight, true)) = self.join_or_start(id, false, move |inner, generation| {
            inner.fetch_encrypt(fetch_id, generation, request, Some(predecessor))
        }) else {
            return;
        };
        bump(&self.counters.refreshes);
        let task = async move {
            if let Err(error) = flight.await {
                tracing::warn!(%error, "background refresh of cached materials failed");
            }
        };
        match &self.runtime {
            Some(handle) => {
                handle.spawn(task);
            }
            None => {
                std::thread::spawn(move || crate::block_on(task));
            }
        }
    }

    /// Fetches encryption materials and installs them: in the cache if the
    /// current entry cannot serve, else as the predecessor's successor.
    fn fetch_encrypt(
        self: Arc<Self>,
        id: CacheId,
        generation: u64,
        request: OwnedEncryptionRequest,
        predecessor: Option<Arc<EncryptEntry>>,
    ) -> BoxFuture<'static, Result<CacheValue, Error>> {
        async move {
            let span = tracing::debug_span!("envelope.cache.fetch", operation = "encrypt");
            let _guard = span.enter();
            bump(&self.counters.keyring_calls);
            let result = self
                .backing
                .get_encryption_materials(&request.as_request())
                .await;
            let result = match result {
                Ok(materials) => {
                    let entry = Arc::new(EncryptEntry::new(materials));
                    if let Some(predecessor) = &predecessor {
                        let _ = predecessor.successor.set(entry.clone());
                    }
                    let installed = CacheValue::Encrypt(entry.clone());
                    let _ =
                        self.cache.cache.entry(id.clone()).and_compute_with(
                            |current| match current {
                                Some(current) if self.usable(current.value()) => Op::Nop,
                                _ => Op::Put(installed),
                            },
                        );
                    Ok(CacheValue::Encrypt(entry))
                }
                Err(error) => {
                    if predecessor.is_some() {
                        bump(&self.counters.refresh_failures);
                    }
                    Err(error)
                }
            };
            self.land(&id, generation);
            result
        }
        .boxed()
    }

    /// The flight for `id`: the one under way, or a new one from `fetch`
    /// (`fresh` says which). Without `reuse_cached`, a usable cached entry
    /// is returned instead of starting a flight.
    fn join_or_start(
        self: &Arc<Self>,
        id: CacheId,
        reuse_cached: bool,
        fetch: impl FnOnce(Arc<Self>, u64) -> BoxFuture<'static, Result<CacheValue, Error>>,
    ) -> Result<(Flight, bool), CacheValue> {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, flight)) = flights.get(&id) {
            return Ok((flight.clone(), false));
        }
        // A flight that landed between a caller's miss and now may have left
        // a fresh entry: use it rather than fetch another key.
        if reuse_cached {
            if let Some(value) = self.cache.cache.get(&id).filter(|v| self.usable(v)) {
                return Err(value);
            }
        }
        let generation = self.next_flight.fetch_add(1, Ordering::Relaxed);
        let flight = fetch(self.clone(), generation).shared();
        flights.insert(id, (generation, flight.clone()));
        Ok((flight, true))
    }

    /// Joins (or starts) the one fetch for `id`.
    async fn fly(
        self: &Arc<Self>,
        id: CacheId,
        fetch: impl FnOnce(Arc<Self>, u64) -> BoxFuture<'static, Result<CacheValue, Error>>,
    ) -> Result<CacheValue, Error> {
        match self.join_or_start(id, true, fetch) {
            Ok((flight, _)) => flight.await,
            Err(cached) => Ok(cached),
        }
    }

    /// Whether an entry looks able to serve another message (a peek: the
    /// reservation that follows decides).
    fn usable(&self, value: &CacheValue) -> bool {
        match value {
            CacheValue::Encrypt(entry) => {
                let messages = entry.messages.load(Ordering::Acquire);
                entry.created.elapsed() <= self.max_age
                    && messages < self.max_messages
                    && !(entry.single_use && messages >= 1)
                    && entry.bytes.load(Ordering::Acquire) < self.max_bytes
            }
            CacheValue::Decrypt(entry) => entry.created.elapsed() <= self.max_age,
        }
    }

    /// Ends flight `generation` for `id`: called by the flight itself as it
    /// completes, so no caller can join a finished flight.
    fn land(&self, id: &CacheId, generation: u64) {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if flights.get(id).is_some_and(|(g, _)| *g == generation) {
            flights.remove(id);
        }
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
