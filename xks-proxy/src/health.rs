//! The deep health check: a real encrypt on a test key, cached.
//!
//! Reading token info would report ACTIVE while encryption fails, so the
//! check encrypts 32 bytes with the key store's `health_key`. The result is
//! reused for `cache_seconds` (at most 60, as the spec allows); the cache
//! lock is held during the check so that concurrent polls run it once.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::secret::Secret;
use tokio::sync::Mutex;

use crate::api::types::{EkmFleetDetail, HealthResponse};
use crate::config::HealthConfig;
use crate::hsm::{EncryptInput, HsmError, KeyStoreHsm};

/// An HSM's health as the API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    /// The test encrypt worked.
    Active,
    /// The HSM answered too slowly (no free session or a timeout).
    Degraded,
    /// The test encrypt failed.
    Unavailable,
}

impl HealthStatus {
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Active => "ACTIVE",
            HealthStatus::Degraded => "DEGRADED",
            HealthStatus::Unavailable => "UNAVAILABLE",
        }
    }
}

/// Static fleet facts from the configuration.
#[derive(Clone, Debug)]
pub struct FleetInfo {
    fleet_size: u32,
    vendor: String,
    model: String,
    ekm_vendor: String,
    ekms: Vec<(String, String)>,
}

impl From<&HealthConfig> for FleetInfo {
    fn from(c: &HealthConfig) -> Self {
        FleetInfo {
            fleet_size: c.xks_proxy_fleet_size,
            vendor: c.xks_proxy_vendor.clone(),
            model: c.xks_proxy_model.clone(),
            ekm_vendor: c.ekm_vendor.clone(),
            ekms: c
                .ekm_fleet
                .iter()
                .map(|e| (e.id.clone(), e.model.clone()))
                .collect(),
        }
    }
}

/// One key store's health checker.
#[derive(Debug)]
pub struct HealthChecker {
    key: String,
    ttl: Duration,
    fleet: FleetInfo,
    cache: Mutex<Option<(Instant, HealthStatus)>>,
    /// The last result, readable without the lock (metrics): 0, 1, 2 as
    /// [`HealthStatus`], `u8::MAX` before the first check.
    last: AtomicU8,
}

impl HealthChecker {
    /// A checker encrypting with `key`, caching for `ttl`.
    pub fn new(key: String, ttl: Duration, fleet: FleetInfo) -> Self {
        HealthChecker {
            key,
            ttl,
            fleet,
            cache: Mutex::new(None),
            last: AtomicU8::new(u8::MAX),
        }
    }

    /// The last check's result, without running one.
    pub fn last_status(&self) -> Option<HealthStatus> {
        match self.last.load(Ordering::Relaxed) {
            0 => Some(HealthStatus::Active),
            1 => Some(HealthStatus::Degraded),
            2 => Some(HealthStatus::Unavailable),
            _ => None,
        }
    }

    /// The current status, from the cache or a fresh check.
    pub async fn status(&self, hsm: &KeyStoreHsm) -> HealthStatus {
        let mut cache = self.cache.lock().await;
        if let Some((at, status)) = *cache {
            if at.elapsed() < self.ttl {
                return status;
            }
        }
        let input = EncryptInput {
            plaintext: Secret::new(vec![0u8; 32]),
            aad: b"xks-proxy health check".to_vec(),
            cdiv: false,
        };
        let status = match hsm.encrypt(&self.key, input).await {
            Ok(_) => HealthStatus::Active,
            // Slow but answering: the HSM works, too slowly for KMS.
            Err(HsmError::PoolTimeout(_) | HsmError::OperationTimeout(_)) => HealthStatus::Degraded,
            Err(e) => {
                tracing::warn!(error = %e, key = %self.key, "health check encrypt failed");
                HealthStatus::Unavailable
            }
        };
        *cache = Some((Instant::now(), status));
        self.last.store(status as u8, Ordering::Relaxed);
        status
    }

    /// The health response body. Every configured HSM reports the deep
    /// check's status, since the proxy reaches them through one module.
    pub async fn response(&self, hsm: &KeyStoreHsm) -> HealthResponse {
        let status = self.status(hsm).await;
        HealthResponse {
            xks_proxy_fleet_size: self.fleet.fleet_size,
            xks_proxy_vendor: self.fleet.vendor.clone(),
            xks_proxy_model: self.fleet.model.clone(),
            ekm_vendor: self.fleet.ekm_vendor.clone(),
            ekm_fleet_details: self
                .fleet
                .ekms
                .iter()
                .map(|(id, model)| EkmFleetDetail {
                    id: id.clone(),
                    model: model.clone(),
                    health_status: status.as_str().into(),
                })
                .collect(),
        }
    }
}
