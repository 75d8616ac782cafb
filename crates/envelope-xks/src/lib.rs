//! An XKS keyring for `envelope`: data keys wrapped by an AES-256 key held
//! in your own HSM, behind an AWS KMS External Key Store (XKS) proxy.
//!
//! [`XksKeyring`] calls the proxy's `encrypt` and `decrypt` operations
//! (`POST {prefix}/kms/xks/v1/keys/{keyId}/encrypt|decrypt`) itself, the way
//! KMS would, signed with SigV4 (service `kms-xks-proxy`) using the
//! [`Signer`](xks_api::sigv4::Signer) and wire types ([`xks_api::types`]) of
//! `xks-api`, the protocol crate the proxy uses too (so this keyring
//! compiles none of the proxy's server or PKCS#11 code).
//!
//! # Transport
//! HTTPS only: rustls with the aws-lc-rs provider, TLS 1.3 or 1.2, trust in
//! a configured CA bundle ([`TlsSettings`]), an optional client certificate
//! for mTLS. HTTP/1.1 with a keep-alive pool (connections are reused across
//! calls and dropped after [`Timeouts::idle`]). Every call has a hard
//! deadline, [`Timeouts::request`] (default 3 s), covering connect (itself
//! bounded by [`Timeouts::connect`], default 1 s), TLS, request, answer and
//! one retry on a fresh connection when a pooled one turns out broken (a
//! proxy restart); a call never hangs past it.
//!
//! # What is sent
//! - `plaintext`: the data key; `encryptionAlgorithm`: `AES_GCM`.
//! - `additionalAuthenticatedData`: the message's serialized encryption
//!   context (the full one, as the raw AES keyring binds), omitted when
//!   empty. A wrong context on decrypt fails in the HSM
//!   (`InvalidCiphertextException`).
//! - `ciphertextDataIntegrityValueAlgorithm`: `SHA_256`; the keyring checks
//!   the returned CDIV (SHA-256 of AAD ‖ metadata ‖ IV ‖ ciphertext ‖ tag),
//!   and the proxy runs a verification decrypt before answering.
//! - `requestMetadata`: `kmsRequestId` (a random UUID v4 per call, which
//!   the proxy logs), `kmsOperation` (`Encrypt` / `Decrypt`),
//!   `awsPrincipalArn` (configurable, [`XksKeyringBuilder::principal_arn`]),
//!   `kmsKeyArn` (configurable; by default the key URI), and
//!   `kmsViaService` = `envelope`.
//!
//! # EDK format
//! - provider id: [`PROVIDER_ID`] (`aws-xks`);
//! - provider info: the key URI in canonical form, UTF-8:
//!   `https://HOST:PORT/PREFIX#KEY_ID` (`https://HOST:PORT#KEY_ID` without a
//!   prefix), see [`XksKeyUri`]. It names the proxy, the key store (the URI
//!   prefix) and the key, so a decrypting keyring needs only credentials and
//!   TLS trust ([`XksKeyringBuilder::discovery`]).
//! - ciphertext: `0x01` ‖ u8 IV length (12 or 16) ‖ IV ‖ 16-byte tag ‖ u8
//!   metadata length (0–20) ‖ `ciphertextMetadata` ‖ XKS ciphertext (as long
//!   as the data key).
//!
//! # Errors
//! Failures are [`XksKeyError`]s (carried through envelope as
//! `KeyringError::Other`; [`XksKeyError::find`] gets them back) naming the
//! key URI, with an [`XksErrorKind`] per XKS
//! `errorName` (`ValidationException`, `AuthenticationFailedException`,
//! `AccessDeniedException`, `KeyNotFoundException`,
//! `InvalidUriPathException`, `InvalidKeyUsageException`,
//! `InvalidStateException`, `InvalidCiphertextException`,
//! `UnsupportedOperationException`, `ThrottlingException`,
//! `DependencyTimeoutException`, `InternalException`) plus `Timeout`,
//! `Network`, `Unavailable` (a non-XKS 5xx, such as a load balancer's 502)
//! and `InvalidResponse`. [`KeyringError::is_retryable`] (and
//! `envelope_core::Error::is_retryable`) is true for throttling, dependency
//! timeouts, internal errors, timeouts, network failures and
//! unavailability: the proxy or the HSM may answer later. It is false for a
//! disabled key, a wrong context, a missing key, bad credentials.
//!
//! # Outages, with the cache
//! Put a [`CachingMaterialsManager`](envelope_core::CachingMaterialsManager)
//! in front of the keyring. While the proxy (or its HSM) is down:
//! 1. Encryption goes on with cached data keys until each reaches its limits
//!    (`max_age`, `max_messages`, `max_bytes`): the hit path never calls the
//!    keyring. A background refresh-ahead that fails is counted in
//!    `CacheStats::refresh_failures` and does not touch the entry in use.
//! 2. Once an entry is used up, each message that needs a new data key
//!    waits for one keyring call, which fails within [`Timeouts::request`]
//!    (at once when the port refuses connections) with a retryable
//!    [`XksKeyError`] (`Network`, `Timeout`, `DependencyTimeout`,
//!    `Internal` or `Unavailable`). Failures are not cached: concurrent
//!    callers share one in-flight call and its error, and the next message
//!    tries again.
//! 3. When the proxy is back, the next miss fetches a new data key and the
//!    cache is whole again; nothing needs resetting. Decryption of messages
//!    whose materials are cached (decrypt entries, `max_age`) also goes on.
//!
//! The limits are the knobs: the larger `max_messages` and `max_age`, the
//! longer encryption survives an outage, and the more messages share one
//! data key. The deadlines bound how long a caller waits once the cache
//! cannot help. The tests in `tests/` show all three steps against a real
//! proxy that is killed and restarted mid-run.
//!
//! # Secrets
//! The SigV4 secret lives in [`xks_api::secret::Secret`] (zeroized on
//! drop, `<redacted>` in `Debug`); so does the client key PEM. Request
//! bodies holding a data key, and decoded plaintexts, are zeroized when
//! dropped. Buffers inside hyper and rustls (the TLS records themselves) are
//! outside this crate's control. Logs (`tracing`, debug level) carry the
//! key URI, operation, `kmsRequestId`, latency and outcome only.
//!
//! # Async only
//! The keyring needs a tokio runtime (with the time driver): use
//! `Client::encrypt`/`decrypt`, not the `_blocking` forms.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod edk;
mod errors;
mod keyring;
mod spec;
mod transport;
mod uri;

pub use edk::PROVIDER_ID;
pub use errors::{XksErrorKind, XksKeyError};
pub use keyring::{
    XksCallStats, XksCredentials, XksKeyring, XksKeyringBuilder, DEFAULT_PRINCIPAL, DEFAULT_REGION,
};
pub use spec::{keyring_from_spec, keyring_from_spec_with, SYSTEM_CA_FILE};
pub use transport::{Timeouts, TlsSettings};
pub use uri::{XksKeyUri, MAX_KEY_ID_LEN};

#[doc(no_inline)]
pub use envelope_core::error::KeyringError;
