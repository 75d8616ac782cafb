//! One logical key store: its URI prefix, SigV4 region and credentials,
//! HSM access, health check, authorization policy and quota. The request
//! pipeline (`app`) and the handlers (`api::handlers`) both use it; it
//! imports neither.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::authz::Policy;
use crate::config::Credential;
use crate::health::HealthChecker;
use crate::hsm::KeyStoreHsm;
use crate::metrics::KeyStoreMetrics;
use crate::quota::TokenBucket;

/// One logical key store (one URI prefix).
#[derive(Debug)]
pub struct KeyStore {
    /// Configured name.
    pub name: String,
    /// URI prefix.
    pub prefix: String,
    /// SigV4 region.
    pub region: String,
    credentials: RwLock<Arc<Vec<Credential>>>,
    /// HSM access.
    pub hsm: KeyStoreHsm,
    /// Deep health check.
    pub health: HealthChecker,
    policy_path: Option<PathBuf>,
    policy: RwLock<Option<Arc<Policy>>>,
    quota: Option<TokenBucket>,
    /// Throttle and denial counters.
    pub metrics: KeyStoreMetrics,
}

impl KeyStore {
    /// A key store with its initial credentials.
    pub fn new(
        name: String,
        prefix: String,
        region: String,
        credentials: Vec<Credential>,
        hsm: KeyStoreHsm,
        health: HealthChecker,
    ) -> Self {
        KeyStore {
            name,
            prefix,
            region,
            credentials: RwLock::new(Arc::new(credentials)),
            hsm,
            health,
            policy_path: None,
            policy: RwLock::new(None),
            quota: None,
            metrics: KeyStoreMetrics::default(),
        }
    }

    /// Applies the secondary authorization policy loaded from `path`
    /// (re-read on reload).
    pub fn with_policy(mut self, path: PathBuf, policy: Policy) -> Self {
        self.policy_path = Some(path);
        self.policy = RwLock::new(Some(Arc::new(policy)));
        self
    }

    /// Limits requests with a token bucket.
    pub fn with_quota(mut self, bucket: TokenBucket) -> Self {
        self.quota = Some(bucket);
        self
    }

    /// The current policy, if any.
    pub fn policy(&self) -> Option<Arc<Policy>> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Arc::clone)
    }

    /// Re-reads the policy file. A file that fails to load leaves the old
    /// policy in force: a typo must not open the key store up.
    pub(crate) fn reload_policy(&self) {
        let Some(path) = &self.policy_path else {
            return;
        };
        match Policy::load(path) {
            Ok(p) => {
                *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(p));
                tracing::info!(key_store = %self.name, "policy reloaded");
            }
            Err(e) => {
                tracing::error!(key_store = %self.name, error = %e, "policy reload failed; keeping old policy")
            }
        }
    }

    /// The token bucket limiting this key store, if any.
    pub(crate) fn quota(&self) -> Option<&TokenBucket> {
        self.quota.as_ref()
    }

    /// The current credential pairs.
    pub fn credentials(&self) -> Arc<Vec<Credential>> {
        // A poisoned lock still holds a complete Arc.
        Arc::clone(&self.credentials.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the credential pairs (rotation).
    pub fn set_credentials(&self, creds: Vec<Credential>) {
        *self.credentials.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(creds);
    }
}
