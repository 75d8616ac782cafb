//! One aws-sdk-kms client per region, built on first use and cached.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{Region, SharedInterceptor};
use aws_sdk_kms::Client;
use envelope_core::error::KeyringError;

use crate::arn::region_of;
use crate::counter::KmsRequestCounter;

/// Timeouts and retries for every KMS client a supplier builds.
///
/// The defaults suit a KMS endpoint in the same region: a connection
/// should open in well under a second, a KMS call takes milliseconds, and
/// the SDK's standard retry mode (exponential backoff with jitter, and a
/// retry token bucket) retries throttling, transient and timeout errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsSettings {
    /// Time allowed to open a connection (default 3 s).
    pub connect_timeout: Duration,
    /// Time allowed for one attempt, from sending to the parsed response
    /// (default 10 s).
    pub attempt_timeout: Duration,
    /// Time allowed for a whole call, retries included (default 30 s).
    pub operation_timeout: Duration,
    /// Attempts per call, the first included (default 3; 1 disables retries).
    pub max_attempts: u32,
}

impl Default for KmsSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

/// The most regional clients a supplier keeps (AWS has fewer regions).
pub const MAX_CACHED_CLIENTS: usize = 64;

/// Builds and caches one KMS client per region.
///
/// Every client shares the loaded [`SdkConfig`] (credentials, endpoint
/// overrides such as `AWS_ENDPOINT_URL_KMS`, profile settings), the
/// [`KmsSettings`] and a [`KmsRequestCounter`]. Cheap to clone; clones share
/// the cache and the counter.
#[derive(Clone)]
pub struct KmsClientSupplier {
    inner: Arc<Inner>,
}

struct Inner {
    sdk_config: SdkConfig,
    settings: KmsSettings,
    endpoint_url: Option<String>,
    interceptors: Vec<SharedInterceptor>,
    counter: KmsRequestCounter,
    clients: Mutex<HashMap<String, Client>>,
}

impl fmt::Debug for KmsClientSupplier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClientSupplier")
            .field("default_region", &self.default_region())
            .field("settings", &self.inner.settings)
            .field("endpoint_url", &self.inner.endpoint_url)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KmsClientSupplier`].
#[derive(Default)]
pub struct KmsClientSupplierBuilder {
    sdk_config: Option<SdkConfig>,
    settings: KmsSettings,
    endpoint_url: Option<String>,
    interceptors: Vec<SharedInterceptor>,
}

impl fmt::Debug for KmsClientSupplierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClientSupplierBuilder")
            .field("has_sdk_config", &self.sdk_config.is_some())
            .field("settings", &self.settings)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl KmsClientSupplierBuilder {
    /// Uses `config` instead of loading aws-config's default chain.
    pub fn sdk_config(mut self, config: SdkConfig) -> Self {
        self.sdk_config = Some(config);
        self
    }

    /// Sets the timeouts and retries.
    pub fn settings(mut self, settings: KmsSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sends every request to `url` (otherwise the SDK's resolution
    /// applies, including `AWS_ENDPOINT_URL_KMS`).
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Adds an SDK interceptor to every client.
    pub fn interceptor(
        mut self,
        interceptor: impl aws_sdk_kms::config::Intercept + 'static,
    ) -> Self {
        self.interceptors.push(SharedInterceptor::new(interceptor));
        self
    }

    /// Loads aws-config's default chain (environment, profiles,
    /// `credential_process`, SSO, web identity, ECS, IMDS) unless a config
    /// was given. Credentials are resolved lazily, on the first request.
    pub async fn build(self) -> KmsClientSupplier {
        let sdk_config = match self.sdk_config {
            Some(config) => config,
            None => aws_config::defaults(BehaviorVersion::latest()).load().await,
        };
        KmsClientSupplier {
            inner: Arc::new(Inner {
                sdk_config,
                settings: self.settings,
                endpoint_url: self.endpoint_url,
                interceptors: self.interceptors,
                counter: KmsRequestCounter::new(),
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl KmsClientSupplier {
    /// A builder with the default settings.
    pub fn builder() -> KmsClientSupplierBuilder {
        KmsClientSupplierBuilder::default()
    }

    /// A supplier over aws-config's default chain with the default settings.
    pub async fn from_env() -> Self {
        Self::builder().build().await
    }

    /// The region of the loaded configuration (`AWS_REGION`, the profile's
    /// `region`, or IMDS), used for keys that are not ARNs.
    pub fn default_region(&self) -> Option<&str> {
        self.inner.sdk_config.region().map(Region::as_ref)
    }

    /// Counts of the requests every client of this supplier has sent.
    pub fn request_counter(&self) -> &KmsRequestCounter {
        &self.inner.counter
    }

    /// The client for `region`, built on first use.
    pub fn client(&self, region: &str) -> Client {
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let client = self.build_client(region);
        // Regions come from EDKs, which an attacker writes: the cache keeps
        // at most MAX_CACHED_CLIENTS; past that a client serves its call and
        // is dropped.
        if clients.len() < MAX_CACHED_CLIENTS {
            clients.insert(region.to_owned(), client.clone());
        }
        client
    }

    /// How many regional clients have been built so far.
    pub fn cached_clients(&self) -> usize {
        self.inner
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The client for the region of `key_id` (an ARN's region, or the
    /// default region for key ids and alias names).
    pub fn client_for_key(&self, key_id: &str) -> Result<Client, KeyringError> {
        match region_of(key_id) {
            Some(region) => Ok(self.client(&region)),
            None => match self.default_region() {
                Some(region) => Ok(self.client(region)),
                None => Err(KeyringError::Config(format!(
                    "AWS KMS key {key_id:?} is not an ARN and no default region is configured \
                     (set AWS_REGION or a profile region)"
                ))),
            },
        }
    }

    fn build_client(&self, region: &str) -> Client {
        let settings = &self.inner.settings;
        let mut builder = aws_sdk_kms::config::Builder::from(&self.inner.sdk_config)
            .region(Region::new(region.to_owned()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .operation_attempt_timeout(settings.attempt_timeout)
                    .operation_timeout(settings.operation_timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)))
            .interceptor(self.inner.counter.clone());
        if let Some(url) = &self.inner.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        for interceptor in &self.inner.interceptors {
            builder.push_interceptor(interceptor.clone());
        }
        Client::from_conf(builder.build())
    }
}
