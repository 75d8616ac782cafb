//! Single flight: one backing call per cache id however many callers wait.
//! A fetch is a shared future registered under its id; callers join it,
//! and it installs its result (or hands its error to every waiter, caching
//! nothing) when it lands.

use super::*;

/// What the flight needs of an encryption request, owned so the fetch can
/// outlive the caller that started it.
pub(super) struct OwnedEncryptionRequest {
    pub(super) context: EncryptionContext,
    pub(super) suite: Option<AlgorithmSuite>,
    pub(super) policy: CommitmentPolicy,
    pub(super) required_keys: Vec<String>,
}

impl OwnedEncryptionRequest {
    pub(super) fn new(request: &EncryptionRequest<'_>) -> Self {
        Self {
            context: request.encryption_context.clone(),
            suite: request.suite,
            policy: request.commitment_policy,
            required_keys: request.required_encryption_context_keys.clone(),
        }
    }

    pub(super) fn as_request(&self) -> EncryptionRequest<'_> {
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
    /// Fetches encryption materials and installs them: in the cache if the
    /// current entry cannot serve, else as the predecessor's successor.
    pub(super) fn fetch_encrypt(
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
    pub(super) fn join_or_start(
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
    pub(super) async fn fly(
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
    pub(super) fn usable(&self, value: &CacheValue) -> bool {
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
    pub(super) fn land(&self, id: &CacheId, generation: u64) {
        let mut flights = self
            .flights
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if flights.get(id).is_some_and(|(g, _)| *g == generation) {
            flights.remove(id);
        }
    }
}
