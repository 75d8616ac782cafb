//! Refresh-ahead: once an entry passes a fraction of any limit, its
//! successor is fetched in the background (as a flight, so callers that run
//! out first wait for it instead of fetching another), and takes over when
//! the entry is used up.

use super::*;

impl Inner {
    /// Starts fetching `entry`'s successor in the background, once. The
    /// fetch is registered as the flight for `id`, so callers that run out
    /// of the old key before it lands wait for it instead of fetching
    /// another key.
    pub(super) fn refresh(self: &Arc<Self>, key: KeyRef<'_>, entry: &Arc<EncryptEntry>) {
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
        // The runtime current when the manager was built, else the one the
        // caller runs in now: a keyring on the network (KMS, DynamoDB) needs
        // a tokio reactor, which the plain thread below does not have.
        let runtime = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        match runtime {
            Some(handle) => {
                handle.spawn(task);
            }
            None => {
                std::thread::spawn(move || crate::block_on(task));
            }
        }
    }
}
