//! The AWS KMS External Key Store (XKS) API v1, as it is on the wire.
//!
//! Both ends of the protocol use this crate: the proxy (`xks-proxy`), which
//! parses requests and writes responses, and the XKS keyring
//! (`envelope-xks`), which does the reverse. It holds no server and no HSM
//! code, so an application that only calls a proxy compiles neither.
//!
//! - [`types`]: request and response bodies (JSON, base64 fields as text).
//! - [`error`]: the spec's error names, their HTTP statuses, and the error body.
//! - [`routes`]: the URI layout (`{prefix}/kms/xks/v1/keys/{id}/{operation}`).
//! - [`sigv4`]: Signature Version 4 for service `kms-xks-proxy`: the
//!   client's [`sigv4::Signer`] and the server's [`sigv4::verify()`], on one
//!   canonical-request implementation so they cannot drift apart.
//! - [`secret`]: SigV4 secrets, PINs and plaintexts, zeroized on drop and
//!   printed as `<redacted>`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod routes;
pub mod secret;
pub mod sigv4;
pub mod types;

pub use error::{ErrorName, XksError};
pub use routes::{Operation, Route};
