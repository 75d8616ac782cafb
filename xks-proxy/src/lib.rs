//! An AWS KMS External Key Store (XKS) proxy on PKCS#11 HSMs.
//!
//! KMS calls the proxy over HTTPS with SigV4-signed JSON requests; the proxy
//! runs AES-256-GCM in the HSM and returns the result. The request path is:
//!
//! 1. [`tls`]: TLS 1.2/1.3 with the spec's cipher suites, optional mTLS whose
//!    rejections end in a `handshake_failure` alert.
//! 2. [`server`]: the accept loop and hyper 1 (HTTP/1.1 and h2 by ALPN);
//!    credential reload on SIGHUP or file change.
//! 3. [`app`]: `/ping`, then [`api::routes`] (the URI prefix selects a key
//!    store; GET gets 405), body limits, then [`sigv4`] verification against
//!    the key store's credential pairs.
//! 4. [`api::handlers`]: JSON parsing and base64 decoding into typed requests;
//!    [`api::error`] maps every failure to the spec's error name and status.
//! 5. [`hsm`]: a bounded session pool, key handles by label, and AES-GCM with
//!    the spec's AAD composition, CDIV and a verification decrypt.
//!
//! Around the handlers: [`quota`] (a token bucket per key store, 429
//! `ThrottlingException`), [`authz`] (secondary authorization policies over
//! the request metadata, 403 `AccessDeniedException`), [`audit`] (one JSON
//! line per request) and [`metrics`] (Prometheus text). The HSM layer
//! recovers from device and session errors by re-initializing the module
//! ([`hsm::device`]); [`server`] drains in-flight requests on SIGTERM.
//!
//! [`health`] runs a real encrypt on a test key, cached; [`admin`] manages
//! keys; [`config`] and [`secret`] load the TOML file and its secrets. The
//! [`sigv4::Signer`] and [`api::types`] are usable by XKS clients too.
//!
//! # Key status
//! The XKS API needs ENABLED/DISABLED, which PKCS#11 has no attribute for. A
//! key is DISABLED when its `CKA_ID` equals [`hsm::keys::DISABLED_MARKER`]
//! (`xks-proxy keys disable` sets it; `enable` clears it). The proxy reads it
//! before every operation and refuses a disabled key with
//! `InvalidStateException`. See [`hsm::keys`] for why not `CKA_END_DATE`.
//!
//! # Secrets
//! PINs and SigV4 secrets come from files or environment variables (never from
//! the TOML itself), live in [`secret::Secret`], are zeroized on drop and print
//! as `<redacted>`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod authz;
pub mod config;
pub mod health;
pub mod hsm;
pub mod key_store;
pub mod metrics;
pub mod quota;
pub mod server;
pub mod tls;

// The wire protocol lives in `xks-api`, shared with the XKS keyring; these
// keep the proxy's own paths (`crate::sigv4`, `crate::secret`).
pub use xks_api::{secret, sigv4};
