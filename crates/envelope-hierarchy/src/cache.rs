//! The branch-key cache: what makes the hierarchical keyring cheap.
//!
//! - **One fetch per miss.** Callers that miss on one key join a single
//!   flight (one GetItem + one KMS Decrypt) and are woken when it lands;
//!   nobody polls. A failed fetch reaches every waiter and is not cached.
//! - **Refresh ahead.** Once an entry passes `refresh_at` of its TTL (by
//!   default 75 %), the first caller to see it starts a background fetch
//!   of its successor and goes on with the cached key, as does everyone
//!   else; the successor replaces the entry when it lands. In steady state
//!   no caller waits on DynamoDB or KMS. (Without a tokio runtime, as in
//!   the blocking API, there is no background: the entry expires instead.)
//! - **Bounds.** Entries live at most `ttl`; at `capacity` the oldest is
//!   evicted. A branch key is zeroized when the last holder drops it.
//! - **Shared.** One cache can serve several keyrings: entries are keyed
//!   by partition, logical key store name, branch key id and version.
//!
//! Compared with the official StormTracking cache: the same one-fetch
//! promise, but waiters are woken instead of polling every few
//! milliseconds, and the refresh happens in the background instead of on
//! the one caller who is told "miss" during the grace period.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::branch_key::BranchKey;
use crate::error::HierarchyError;
use crate::version::BranchKeyVersion;

/// Which key an entry holds: ACTIVE (`version: None`) or one version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) partition: Arc<str>,
    pub(crate) store: Arc<str>,
    pub(crate) branch_key_id: Arc<str>,
    pub(crate) version: Option<BranchKeyVersion>,
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<BranchKey>, HierarchyError>>>;

enum Slot {
    Ready {
        key: Arc<BranchKey>,
        fetched: Instant,
        refreshing: bool,
    },
    Fetching(Fetch),
}

/// A snapshot of the cache's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BranchKeyCacheStats {
    /// Requests served from a fresh entry.
    pub hits: u64,
    /// Requests that had to wait for a fetch (their own or one under way).
    pub misses: u64,
    /// Fetches started (each one GetItem and one KMS Decrypt).
    pub fetches: u64,
    /// Background refreshes started ahead of expiry.
    pub refreshes: u64,
    /// Fetches and refreshes that failed.
    pub fetch_errors: u64,
    /// Entries evicted for capacity.
    pub evictions: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fetches: AtomicU64,
    refreshes: AtomicU64,
    fetch_errors: AtomicU64,
    evictions: AtomicU64,
}

/// Keys are compared in full; the hasher only spreads them, fast.
type Hasher = foldhash::fast::RandomState;

struct Inner {
    slots: Mutex<HashMap<CacheKey, Slot, Hasher>>,
    capacity: usize,
    ttl: Duration,
    refresh_after: Option<Duration>,
    counters: Counters,
}

/// A cache of branch keys, shareable by several keyrings (clones share it).
#[derive(Clone)]
pub struct BranchKeyCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BranchKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BranchKeyCache")
            .field("capacity", &self.inner.capacity)
            .field("ttl", &self.inner.ttl)
            .field("stats", &self.stats())
            .finish()
    }
}

impl BranchKeyCache {
    /// A cache of at most `capacity` branch keys, each kept `ttl`, refreshed
    /// in the background from 75 % of it.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self::with_refresh(capacity, ttl, Some(0.75))
    }

    /// As [`new`](Self::new), refreshing from `refresh_at` of the TTL
    /// (a fraction in (0, 1)), or never with `None`.
    pub fn with_refresh(capacity: usize, ttl: Duration, refresh_at: Option<f64>) -> Self {
        let refresh_after = refresh_at
            .filter(|f| *f > 0.0 && *f < 1.0)
            .map(|f| ttl.mul_f64(f));
        Self {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::with_hasher(Hasher::default())),
                capacity: capacity.max(1),
                ttl,
                refresh_after,
                counters: Counters::default(),
            }),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> BranchKeyCacheStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BranchKeyCacheStats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            fetches: load(&c.fetches),
            refreshes: load(&c.refreshes),
            fetch_errors: load(&c.fetch_errors),
            evictions: load(&c.evictions),
        }
    }

    /// Entries held (fresh or being fetched).
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key for `key`, from the cache or through `fetch` (started at
    /// most once however many callers ask at the same time).
    pub(crate) async fn get<F>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> Result<Arc<BranchKey>, HierarchyError>
    where
        F: Fn() -> BoxFuture<'static, Result<BranchKey, HierarchyError>>,
    {
        let flight = {
            let mut slots = self.inner.lock();
            match slots.get_mut(&key) {
                Some(Slot::Ready {
                    key: found,
                    fetched,
                    refreshing,
                }) if fetched.elapsed() < self.inner.ttl => {
                    let found = found.clone();
                    let due = self
                        .inner
                        .refresh_after
                        .is_some_and(|after| fetched.elapsed() >= after);
                    if due && !*refreshing {
                        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                            *refreshing = true;
                            bump(&self.inner.counters.refreshes);
                            let refresh = self.inner.clone().flight(key.clone(), fetch(), true);
                            runtime.spawn(refresh);
                        }
                    }
                    bump(&self.inner.counters.hits);
                    return Ok(found);
                }
                Some(Slot::Fetching(flight)) => flight.clone(),
                _ => {
                    let flight = self
                        .inner
                        .clone()
                        .flight(key.clone(), fetch(), false)
                        .boxed()
                        .shared();
                    slots.insert(key, Slot::Fetching(flight.clone()));
                    flight
                }
            }
        };
        bump(&self.inner.counters.misses);
        flight.await
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Slot, Hasher>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one fetch and installs its result: a key replaces the entry; an
    /// error removes a pending entry (nothing is cached) or, for a refresh,
    /// leaves the current key in place to be retried by a later caller.
    async fn flight(
        self: Arc<Self>,
        key: CacheKey,
        fetch: BoxFuture<'static, Result<BranchKey, HierarchyError>>,
        refresh: bool,
    ) -> Result<Arc<BranchKey>, HierarchyError> {
        bump(&self.counters.fetches);
        let result = fetch.await.map(Arc::new);
        let mut slots = self.lock();
        match &result {
            Ok(found) => {
                slots.insert(
                    key,
                    Slot::Ready {
                        key: found.clone(),
                        fetched: Instant::now(),
                        refreshing: false,
                    },
                );
                self.evict(&mut slots);
            }
            Err(_) => {
                bump(&self.counters.fetch_errors);
                match slots.get_mut(&key) {
                    Some(Slot::Ready { refreshing, .. }) if refresh => *refreshing = false,
                    Some(Slot::Fetching(_)) if !refresh => {
                        slots.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        result
    }

    /// Drops expired entries, then the oldest ones, down to the capacity.
    fn evict(&self, slots: &mut HashMap<CacheKey, Slot, Hasher>) {
        if slots.len() <= self.capacity {
            return;
        }
        slots.retain(
            |_, slot| !matches!(slot, Slot::Ready { fetched, .. } if fetched.elapsed() >= self.ttl),
        );
        while slots.len() > self.capacity {
            let oldest = slots
                .iter()
                .filter_map(|(k, slot)| match slot {
                    Slot::Ready { fetched, .. } => Some((k, *fetched)),
                    Slot::Fetching(_) => None,
                })
                .min_by_key(|(_, fetched)| *fetched)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    slots.remove(&k);
                    bump(&self.counters.evictions);
                }
                None => break,
            }
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}
