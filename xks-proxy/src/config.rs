//! The TOML configuration: parsing, validation and secret loading.
//!
//! The file holds no secrets itself; PINs and SigV4 secret keys are
//! [`SecretSource`]s. [`Config::load`] reads everything once at start-up, and
//! [`KeyStoreConfig::load_credentials`] re-reads only the credential pairs, for a
//! reload on SIGHUP.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::{SecretError, SecretSource};

/// A configuration error, naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// A secret could not be loaded.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener and HTTP settings.
    pub server: ServerConfig,
    /// TLS settings; required unless `server.plaintext_http_for_development`.
    pub tls: Option<TlsConfig>,
    /// The PKCS#11 module and its capabilities.
    pub hsm: HsmConfig,
    /// What health responses report.
    pub health: HealthConfig,
    /// The audit log (one JSON line per request); off when absent.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// The Prometheus metrics endpoint; off when absent.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// One entry per URI prefix (logical key store).
    #[serde(rename = "key_store")]
    pub key_stores: Vec<KeyStoreConfig>,
    /// The directory of the configuration file; relative paths resolve here.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Listener and HTTP settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind, e.g. `0.0.0.0:443`. Port 0 picks a free port; the
    /// bound address is printed on stdout as `listening on ADDR`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes. The default (64 KiB) holds a
    /// 4300-byte plaintext, an 8192-byte AAD and 2048-byte ARNs in base64.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Offer h2 through ALPN (HTTP/1.1 is always served).
    #[serde(default = "default_true")]
    pub http2: bool,
    /// Serve plain HTTP without TLS. For local development only.
    #[serde(default)]
    pub plaintext_http_for_development: bool,
    /// When > 0, check the configuration and credential secret files this
    /// often and reload the credentials when they change. SIGHUP always
    /// reloads.
    #[serde(default)]
    pub credential_poll_seconds: u64,
    /// On SIGTERM or SIGINT, stop accepting connections and give in-flight
    /// requests this long to finish before exiting.
    #[serde(default = "default_drain_seconds")]
    pub drain_seconds: u64,
}

fn default_drain_seconds() -> u64 {
    10
}

/// Where audit lines go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `"stdout"`, or the path of a file to append to (created if missing).
    pub output: String,
}

/// The metrics listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of a plain-HTTP listener serving `GET /metrics` in the
    /// Prometheus text format. Keep it on a private interface: it is not
    /// authenticated.
    pub listen: SocketAddr,
}

/// A token bucket for one key store.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Sustained rate (KMS's default quota is 1800 per key store).
    pub requests_per_second: f64,
    /// Bucket size: how many requests may arrive at once after an idle
    /// period. Defaults to one second's worth.
    pub burst: Option<f64>,
}

fn default_max_body() -> usize {
    64 * 1024
}
fn default_true() -> bool {
    true
}

/// Server certificate and optional mTLS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain, leaf first.
    pub cert_chain: PathBuf,
    /// PEM file with the server private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// Require client certificates (mTLS) when present.
    pub client_auth: Option<ClientAuthConfig>,
}

/// mTLS settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// PEM bundle of the CAs that may issue client certificates.
    pub ca_bundle: PathBuf,
    /// Allowed subject common names (e.g. `cks.kms.us-east-1.amazonaws.com`).
    /// Empty means any certificate from the CA is accepted.
    #[serde(default)]
    pub allowed_subjects: Vec<String>,
}

/// How the GCM IV is produced, per HSM capability.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IvSource {
    /// 12 random bytes from the proxy's CSPRNG (SoftHSM, most HSMs).
    Proxy,
    /// The HSM generates the IV and writes it into a zeroed buffer
    /// (Luna, CloudHSM, nShield).
    Hsm,
}

/// The PKCS#11 module.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 shared library.
    pub module: PathBuf,
    /// IV source capability.
    #[serde(default = "default_iv_source")]
    pub iv_source: IvSource,
    /// How long a request waits for a free session before
    /// `DependencyTimeoutException`. With `operation_timeout_ms`, this bounds
    /// the HSM's share of KMS's 250 ms budget (defaults: 50 + 150 ms).
    #[serde(default = "default_session_wait_ms")]
    pub session_wait_ms: u64,
    /// Deadline for one HSM operation (including its verification decrypt
    /// and one retry after a recovered session error).
    #[serde(default = "default_op_timeout_ms")]
    pub operation_timeout_ms: u64,
    /// After an HSM device or session error, the proxy finalizes and
    /// re-initializes the PKCS#11 module; failed attempts are retried at
    /// most this often (requests and health checks trigger them).
    #[serde(default = "default_reinit_interval_ms")]
    pub reinit_interval_ms: u64,
    /// How long a key's usage and status (read from the HSM) are reused.
    /// 0 (the default) re-reads them on every request, so `keys disable`
    /// takes effect at once; a few hundred ms saves an HSM round trip per
    /// request at high rates, and within it metadata requests make no HSM
    /// call at all.
    #[serde(default)]
    pub key_info_cache_ms: u64,
    /// TEST ONLY. When true, SIGUSR1 makes the proxy close every PKCS#11
    /// session underneath itself (it finalizes the module through a second
    /// handle, as a vendor library reset does), to exercise recovery. Never
    /// enable in production.
    #[serde(default)]
    pub fault_injection: bool,
}

fn default_reinit_interval_ms() -> u64 {
    500
}

fn default_iv_source() -> IvSource {
    IvSource::Proxy
}
fn default_session_wait_ms() -> u64 {
    50
}
fn default_op_timeout_ms() -> u64 {
    150
}

impl HsmConfig {
    /// `session_wait_ms` as a duration.
    pub fn session_wait(&self) -> Duration {
        Duration::from_millis(self.session_wait_ms)
    }
    /// `operation_timeout_ms` as a duration.
    pub fn operation_timeout(&self) -> Duration {
        Duration::from_millis(self.operation_timeout_ms)
    }
    /// `reinit_interval_ms` as a duration.
    pub fn reinit_interval(&self) -> Duration {
        Duration::from_millis(self.reinit_interval_ms)
    }
}

/// What health responses report about the fleet.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// `xksProxyFleetSize` (> 0).
    #[serde(default = "default_fleet_size")]
    pub xks_proxy_fleet_size: u32,
    /// `xksProxyVendor`.
    #[serde(default = "default_vendor")]
    pub xks_proxy_vendor: String,
    /// `xksProxyModel`.
    #[serde(default = "default_model")]
    pub xks_proxy_model: String,
    /// `ekmVendor`.
    pub ekm_vendor: String,
    /// `ekmFleetDetails`: 1 to 10 HSMs. Each reports the deep check's status.
    pub ekm_fleet: Vec<EkmConfig>,
    /// How long a deep-check result is reused (at most 60 s).
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_fleet_size() -> u32 {
    1
}
fn default_vendor() -> String {
    "envelope".into()
}
fn default_model() -> String {
    concat!("xks-proxy ", env!("CARGO_PKG_VERSION")).into()
}
fn default_cache_seconds() -> u64 {
    30
}

/// One `ekmFleetDetails` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EkmConfig {
    /// `id`.
    pub id: String,
    /// `model`.
    pub model: String,
}

/// One logical key store, served under one URI prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStoreConfig {
    /// A short name, used by the admin subcommands and in logs.
    pub name: String,
    /// The URI path prefix before `/kms/xks/v1`: empty, or `/` followed by
    /// `[A-Za-z0-9/_-]`, not ending in `/`.
    pub uri_prefix: String,
    /// The SigV4 region this key store accepts.
    pub region: String,
    /// Label of the PKCS#11 token holding this key store's keys.
    pub token_label: String,
    /// The token's user PIN.
    pub pin: SecretSource,
    /// Maximum number of open sessions on the token, and the number of
    /// threads that make this key store's HSM calls (one per session).
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Label of the key the health check encrypts with.
    pub health_key: String,
    /// One or two SigV4 credential pairs (two during a rotation).
    pub credentials: Vec<CredentialConfig>,
    /// Secondary authorization policy file (TOML, see [`crate::authz`]).
    /// Without one, every authenticated request is allowed.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Request quota; unlimited when absent.
    #[serde(default)]
    pub quota: Option<QuotaConfig>,
}

fn default_pool_size() -> usize {
    8
}

/// The most sessions (and HSM threads) one key store may have: well above
/// what KMS's 1,800 requests/s need even from a slow HSM, and below where
/// thread stacks and HSM session limits start to bite.
const MAX_POOL_SIZE: usize = 1024;

/// A SigV4 credential pair.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// Access key id: 20-30 characters from `[A-Z2-7]`.
    pub access_key_id: String,
    /// The secret access key.
    pub secret: SecretSource,
}

/// A loaded credential pair (defined with SigV4 verification, in `xks-api`).
pub use xks_api::sigv4::Credential;

/// Prefix alphabet from the spec: `[A-Za-z0-9/_-]`.
fn valid_prefix(p: &str) -> bool {
    p.is_empty()
        || (p.starts_with('/')
            && !p.ends_with('/')
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-')))
}

impl Config {
    /// Reads and validates the file; secrets are not loaded yet.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: Config = toml::from_str(&text)?;
        cfg.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.is_none() && !self.server.plaintext_http_for_development {
            return Err(invalid(
                "[tls] is required (plain HTTP needs server.plaintext_http_for_development = true)",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes must be at least 1024"));
        }
        let h = &self.health;
        if h.xks_proxy_fleet_size == 0 {
            return Err(invalid("health.xks_proxy_fleet_size must be > 0"));
        }
        if h.ekm_fleet.is_empty() || h.ekm_fleet.len() > 10 {
            return Err(invalid("health.ekm_fleet must have 1 to 10 entries"));
        }
        if h.cache_seconds > 60 {
            return Err(invalid("health.cache_seconds must be at most 60"));
        }
        if self.hsm.operation_timeout_ms == 0 || self.hsm.session_wait_ms == 0 {
            return Err(invalid(
                "hsm.operation_timeout_ms and hsm.session_wait_ms must be > 0",
            ));
        }
        if self.key_stores.is_empty() {
            return Err(invalid("at least one [[key_store]] is required"));
        }
        let mut prefixes = HashSet::new();
        let mut names = HashSet::new();
        for ks in &self.key_stores {
            if !valid_prefix(&ks.uri_prefix) {
                return Err(invalid(format!(
                    "key_store {}: uri_prefix {:?} must be empty or /[A-Za-z0-9/_-]* not ending in /",
                    ks.name, ks.uri_prefix
                )));
            }
            if !prefixes.insert(ks.uri_prefix.as_str()) || !names.insert(ks.name.as_str()) {
                return Err(invalid(format!(
                    "key_store {}: duplicate name or uri_prefix",
                    ks.name
                )));
            }
            if !(1..=MAX_POOL_SIZE).contains(&ks.pool_size) {
                return Err(invalid(format!(
                    "key_store {}: pool_size must be 1 to {MAX_POOL_SIZE} (one thread and one HSM session each)",
                    ks.name
                )));
            }
            if ks.credentials.is_empty() || ks.credentials.len() > 2 {
                return Err(invalid(format!(
                    "key_store {}: needs one or two credential pairs",
                    ks.name
                )));
            }
            if let Some(q) = &ks.quota {
                let burst_ok = q.burst.is_none_or(|b| b.is_finite() && b >= 1.0);
                if !(q.requests_per_second.is_finite() && q.requests_per_second > 0.0 && burst_ok) {
                    return Err(invalid(format!(
                        "key_store {}: quota needs requests_per_second > 0 and burst >= 1",
                        ks.name
                    )));
                }
            }
            for c in &ks.credentials {
                let id = &c.access_key_id;
                if !(20..=30).contains(&id.len())
                    || !id
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
                {
                    return Err(invalid(format!(
                        "key_store {}: access_key_id {id:?} must be 20-30 characters from [A-Z2-7]",
                        ks.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Finds a key store by name.
    pub fn key_store(&self, name: &str) -> Result<&KeyStoreConfig, ConfigError> {
        self.key_stores
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| invalid(format!("no key_store named {name:?}")))
    }
}

impl KeyStoreConfig {
    /// Loads this key store's credential pairs (secrets included).
    pub fn load_credentials(&self, base: &Path) -> Result<Vec<Credential>, ConfigError> {
        self.credentials
            .iter()
            .map(|c| {
                let secret = c.secret.load(base)?;
                let ok_len = (43..=64).contains(&secret.expose().len());
                let ok_chars = secret
                    .expose()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                if !ok_len || !ok_chars {
                    return Err(invalid(format!(
                        "key_store {}: secret for {} must be 43-64 characters from [A-Za-z0-9+/=]",
                        self.name, c.access_key_id
                    )));
                }
                Ok(Credential::new(c.access_key_id.clone(), secret))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"
[tls]
cert_chain = "c.pem"
private_key = "k.pem"
[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
[health]
ekm_vendor = "SoftHSM"
[[health.ekm_fleet]]
id = "h1"
model = "SoftHSMv2"
[[key_store]]
name = "a"
uri_prefix = "/a"
region = "us-east-1"
token_label = "t"
pin = { env = "PIN" }
health_key = "hk"
[[key_store.credentials]]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret = { file = "s" }
"#;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(s)?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let cfg = parse(GOOD).unwrap();
        assert_eq!(cfg.server.max_body_bytes, 65536);
        assert_eq!(cfg.hsm.iv_source, IvSource::Proxy);
        assert_eq!(cfg.key_stores[0].pool_size, 8);
        assert_eq!(cfg.key_stores[0].pin, SecretSource::Env("PIN".into()));
    }

    #[test]
    fn example_config_is_valid() {
        let cfg = parse(include_str!("../xks-proxy.example.toml")).unwrap();
        assert_eq!(cfg.key_stores[0].credentials.len(), 2);
        assert!(cfg.tls.unwrap().client_auth.is_some());
    }

    #[test]
    fn deployment_examples_are_valid() {
        let cfg = parse(include_str!("../deploy/softhsm.toml")).unwrap();
        assert_eq!(cfg.key_stores[0].quota.unwrap().burst, Some(3600.0));
        assert!(cfg.audit.is_some() && cfg.metrics.is_some());
        let cfg = parse(include_str!("../deploy/network-hsm.toml")).unwrap();
        assert_eq!(cfg.hsm.iv_source, IvSource::Hsm);
        assert_eq!(cfg.key_stores[0].pool_size, 32);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(parse(&GOOD.replace("\"/a\"", "\"/a/\"")).is_err());
        assert!(parse(&GOOD.replace("\"/a\"", "\"/a?b\"")).is_err());
        assert!(parse(&GOOD.replace("AKIAIOSFODNN7EXAMPLE", "akia")).is_err());
        assert!(parse(&GOOD.replace(
            "[tls]\ncert_chain = \"c.pem\"\nprivate_key = \"k.pem\"\n",
            ""
        ))
        .is_err());
        assert!(parse(&GOOD.replace("ekm_vendor", "unknown_field = 1\nekm_vendor")).is_err());
        let quota = |q: &str| {
            GOOD.replace(
                "health_key = \"hk\"\n",
                &format!("health_key = \"hk\"\n{q}\n"),
            )
        };
        let pool = |n: usize| quota(&format!("pool_size = {n}"));
        assert!(parse(&pool(1024)).is_ok());
        assert!(parse(&pool(0)).is_err());
        assert!(parse(&pool(1025)).is_err());
        assert!(parse(&quota("[key_store.quota]\nrequests_per_second = 10.0")).is_ok());
        assert!(parse(&quota("[key_store.quota]\nrequests_per_second = 0.0")).is_err());
        assert!(parse(&quota(
            "[key_store.quota]\nrequests_per_second = 5.0\nburst = 0.5"
        ))
        .is_err());
    }
}
