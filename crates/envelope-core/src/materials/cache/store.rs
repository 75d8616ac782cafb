//! The store under the cache: a bounded `moka` cache of entries, shareable
//! by several managers, with eviction counters. An encrypt entry counts its
//! own usage with atomics (the hit path takes no lock) and holds its
//! refresh-ahead successor once fetched.

use super::*;

#[derive(Clone)]
pub(super) enum CacheValue {
    Encrypt(Arc<EncryptEntry>),
    Decrypt(Arc<DecryptEntry>),
}

pub(super) struct EncryptEntry {
    pub(super) materials: Arc<EncryptionMaterials>,
    pub(super) created: Instant,
    pub(super) messages: AtomicU64,
    pub(super) bytes: AtomicU64,
    /// Identity-KDF materials from a custom backing manager: one message only.
    pub(super) single_use: bool,
    pub(super) refresh_started: AtomicBool,
    pub(super) successor: OnceLock<Arc<EncryptEntry>>,
}

impl EncryptEntry {
    pub(super) fn new(materials: Arc<EncryptionMaterials>) -> Self {
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

pub(super) struct DecryptEntry {
    pub(super) materials: Arc<DecryptionMaterials>,
    pub(super) created: Instant,
}

/// Counts of evictions by reason, shared by everything using one cache.
#[derive(Default)]
pub(super) struct EvictionCounters {
    pub(super) capacity: AtomicU64,
    pub(super) expired: AtomicU64,
}

/// A bounded, thread-safe store of materials (an LRU-like `moka` cache).
///
/// One cache can serve several [`CachingMaterialsManager`]s; each manager's
/// partition id keeps its entries apart. Cloning shares the same store.
#[derive(Clone)]
pub struct MaterialsCache {
    pub(super) cache: Cache<CacheId, CacheValue, KeyHasher>,
    pub(super) evictions: Arc<EvictionCounters>,
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
