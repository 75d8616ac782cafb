//! Building a [`CachingMaterialsManager`]: the limits (age, messages,
//! bytes), the refresh-ahead fraction, the store and its partition.

use super::*;

/// The default (and largest) message limit of the spec: 2^32.
pub const DEFAULT_MAX_MESSAGES: u64 = 1 << 32;
/// The largest byte limit the spec allows: 2^63 - 1.
pub const MAX_BYTES_LIMIT: u64 = i64::MAX as u64;

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
    /// run on the tokio runtime current at this call, if any; else on the
    /// one current when the refresh starts; else on a short-lived thread
    /// (fine for local keyrings, which never suspend).
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
    /// A builder over `backing` (for example a [`crate::materials::DefaultMaterialsManager`]).
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
}
