//! The cache's counters: hits, misses, bypasses, keyring calls, refreshes
//! and their failures, evictions by reason; atomics bumped on the way, read
//! as one [`CacheStats`] snapshot.

use super::*;

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
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) bypasses: AtomicU64,
    pub(super) keyring_calls: AtomicU64,
    pub(super) refreshes: AtomicU64,
    pub(super) refresh_failures: AtomicU64,
    pub(super) evicted_age: AtomicU64,
    pub(super) evicted_messages: AtomicU64,
    pub(super) evicted_bytes: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl CachingMaterialsManager {
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
}
