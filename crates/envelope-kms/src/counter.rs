//! Counts KMS requests per operation with an SDK interceptor.
//!
//! The count is taken just before each HTTP request is sent, so a request
//! the SDK retries counts once per attempt: it is what KMS bills and
//! throttles. The caching materials manager's tests use it to prove a cache
//! hit makes no call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;

/// KMS requests sent, per operation (`Decrypt`, `GenerateDataKey`, ...).
///
/// Cheap to clone; clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct KmsRequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl KmsRequestCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests sent for `operation` (for example `"Decrypt"`).
    pub fn count(&self, operation: &str) -> u64 {
        self.lock().get(operation).copied().unwrap_or(0)
    }

    /// Requests sent for all operations.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// A copy of every operation's count.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.lock().clone()
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn record(&self, operation: &str) {
        *self.lock().entry(operation.to_owned()).or_insert(0) += 1;
    }

    // A panic while holding this lock cannot leave the map inconsistent.
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Intercept for KmsRequestCounter {
    fn name(&self) -> &'static str {
        "envelope-kms request counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The KMS JSON protocol names the operation in this header.
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target);
        self.record(operation);
        Ok(())
    }
}
