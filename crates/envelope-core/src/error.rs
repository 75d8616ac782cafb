//! One error enum per layer, and the top-level [`Error`](enum@Error) that wraps them.
//!
//! Every variant names the field, the limit or the key at fault. None of
//! them carries key material or plaintext.

use std::sync::Arc;

use thiserror::Error;

/// A message that cannot be parsed or an input that cannot be serialized.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before the named field was complete.
    #[error("message truncated: {field} needs {needed} more byte(s)")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many more bytes it needs.
        needed: usize,
    },
    /// Bytes remain after the end of the message.
    #[error("{0} trailing byte(s) after the end of the message")]
    TrailingBytes(usize),
    /// The version byte is neither 1 nor 2.
    #[error("unsupported message format version 0x{0:02X}")]
    UnsupportedVersion(u8),
    /// The suite id is not one of the eleven suites.
    #[error("unknown algorithm suite id 0x{0:04X}")]
    UnknownSuite(u16),
    /// A suite name that does not parse.
    #[error("unknown algorithm suite {0:?}")]
    UnknownSuiteName(String),
    /// The suite does not belong to the header version it appears in.
    #[error("suite 0x{suite:04X} cannot appear in a version {version} header")]
    SuiteVersionMismatch {
        /// The suite id.
        suite: u16,
        /// The header version.
        version: u8,
    },
    /// A field has a value the format forbids.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field at fault.
        field: &'static str,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A length exceeds a limit.
    #[error("{field} is {actual} bytes, over the limit of {limit}")]
    TooLong {
        /// The field at fault.
        field: &'static str,
        /// Its length.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// An encryption context key uses the reserved `aws-crypto-` prefix.
    #[error("encryption context key {0:?} uses the reserved prefix \"aws-crypto-\"")]
    ReservedContextKey(String),
    /// An encryption context key appears twice in a message.
    #[error("encryption context key {0:?} appears more than once")]
    DuplicateContextKey(String),
    /// A string in the message is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// The header lists more encrypted data keys than the configured maximum.
    #[error("the message has {count} encrypted data keys, over the configured maximum of {max}")]
    TooManyEncryptedDataKeys {
        /// The count in the header (or in the materials).
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame carries the wrong sequence number.
    #[error("frame sequence number {found} where {expected} was expected")]
    FrameOutOfOrder {
        /// The expected number.
        expected: u32,
        /// The number in the frame.
        found: u32,
    },
}

/// A cryptographic check or operation that failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The header tag did not verify: the header, the encryption context, or
    /// the authenticated-only pairs are not what was encrypted.
    #[error("header authentication failed (wrong key, tampered header, or required encryption context pairs that the message does not authenticate)")]
    HeaderAuthentication,
    /// A frame (or the non-framed body) did not authenticate.
    #[error("body authentication failed at frame {sequence}")]
    BodyAuthentication {
        /// The frame's sequence number.
        sequence: u32,
    },
    /// The commitment key in the header does not match the data key.
    #[error("key commitment mismatch: the data key does not match this message's commitment")]
    CommitmentMismatch,
    /// The footer signature does not verify.
    #[error("signature verification failed")]
    SignatureInvalid,
    /// The public key in the encryption context is malformed.
    #[error("invalid signature public key in the encryption context")]
    InvalidPublicKey,
    /// A key of the wrong length for its use.
    #[error("{what} must be {expected} bytes, got {actual}")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// The operating system's random source or a primitive failed.
    #[error("cryptographic primitive failed: {0}")]
    Primitive(&'static str),
}

/// A keyring that could not wrap or unwrap a data key.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// None of the message's encrypted data keys belongs to this keyring.
    #[error("no encrypted data key matches {keyring}")]
    NoMatchingKey {
        /// The keyring (namespace and name, or key ARN).
        keyring: String,
    },
    /// A matching encrypted data key did not unwrap.
    #[error("{keyring} could not unwrap an encrypted data key: {reason}")]
    UnwrapFailed {
        /// The keyring.
        keyring: String,
        /// Why (no key material).
        reason: String,
    },
    /// Wrapping the data key failed.
    #[error("{keyring} could not wrap the data key: {reason}")]
    WrapFailed {
        /// The keyring.
        keyring: String,
        /// Why.
        reason: String,
    },
    /// The keyring has no key to generate a data key with.
    #[error("{keyring} cannot generate a data key")]
    CannotGenerate {
        /// The keyring.
        keyring: String,
    },
    /// The keyring's own configuration is invalid.
    #[error("invalid keyring configuration: {0}")]
    Config(String),
    /// The decrypt's failed unwrap attempts reached their limit; the errors
    /// met on the way are kept.
    #[error("gave up after {limit} failed unwrap attempts (raise ClientBuilder::max_unwrap_attempts if your messages need more): {}", join(.errors))]
    TooManyAttempts {
        /// The limit in force.
        limit: usize,
        /// The distinct failures met.
        errors: Vec<KeyringError>,
    },
    /// Every keyring of a multi-keyring failed; one error per keyring.
    #[error("all {} keyrings failed: {}", .0.len(), join(.0))]
    AllFailed(Vec<KeyringError>),
    /// A failure of a keyring's own kind, from a keyring crate outside this
    /// one (AWS KMS, XKS, the hierarchical keyring, yours): see
    /// [`OtherError`].
    #[error(transparent)]
    Other(OtherError),
}

/// A keyring plugin's own typed error, carried by [`KeyringError::Other`]
/// (as rustls carries a provider's error in its `Other` variant), so that
/// this crate names no key service. The plugin's error type stays
/// reachable: match on it with [`OtherError::downcast_ref`] (the plugin
/// crates offer helpers, such as `envelope_kms::KmsError::find`). Its
/// `source()` chain is kept, and it says whether retrying may succeed.
#[derive(Clone)]
pub struct OtherError {
    error: Arc<dyn std::error::Error + Send + Sync + 'static>,
    retryable: bool,
}

impl OtherError {
    /// Wraps a plugin's error; `retryable` when a later retry may succeed
    /// (throttling, timeouts, an unreachable service).
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E, retryable: bool) -> Self {
        Self {
            error: Arc::new(error),
            retryable,
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The plugin's error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }

    /// The plugin's error.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl std::fmt::Debug for OtherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.error, f)
    }
}

impl std::fmt::Display for OtherError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for OtherError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// Two `OtherError`s are equal when they are the same error (clones of
/// one another): a plugin's error need not be comparable.
impl PartialEq for OtherError {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.error, &other.error)
    }
}

impl Eq for OtherError {}

impl KeyringError {
    /// This error and every error nested in it (through `AllFailed`), in
    /// order: where a plugin's typed errors are found.
    pub fn flatten(&self) -> Vec<&KeyringError> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(error) = stack.pop() {
            match error {
                KeyringError::AllFailed(errors) | KeyringError::TooManyAttempts { errors, .. } => {
                    stack.extend(errors.iter().rev())
                }
                other => out.push(other),
            }
        }
        out
    }

    /// Every plugin error of type `E` in this error, nested ones included.
    pub fn plugin_errors<E: std::error::Error + 'static>(&self) -> Vec<&E> {
        self.flatten()
            .into_iter()
            .filter_map(|error| match error {
                KeyringError::Other(other) => other.downcast_ref::<E>(),
                _ => None,
            })
            .collect()
    }

    /// Whether retrying later may succeed: a throttled, timed-out or
    /// unreachable key service, here or in any nested keyring error.
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyringError::Other(error) => error.is_retryable(),
            KeyringError::AllFailed(errors) => errors.iter().any(KeyringError::is_retryable),
            KeyringError::TooManyAttempts { errors, .. } => {
                errors.iter().any(KeyringError::is_retryable)
            }
            _ => false,
        }
    }
}

fn join(errors: &[KeyringError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the commitment policy or the caller's configuration forbids.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// The suite breaks the commitment policy.
    #[error("suite {suite} is not allowed under commitment policy {policy} when {operation}")]
    Commitment {
        /// The suite, as `0x....`.
        suite: String,
        /// The policy name.
        policy: &'static str,
        /// "encrypting" or "decrypting".
        operation: &'static str,
    },
    /// A required encryption context pair is missing or has another value.
    #[error("encryption context mismatch for key {key:?}: {reason}")]
    ContextMismatch {
        /// The key at fault.
        key: String,
        /// "missing" or "value differs".
        reason: &'static str,
    },
    /// The signature public key is missing for a signed suite, or present for an unsigned one.
    #[error("{0}")]
    PublicKeyPresence(&'static str),
    /// The frame length is outside what the format allows.
    #[error("frame length {0} is invalid: it must be between 1 and 2^31 - 1")]
    FrameLength(u64),
    /// The plaintext needs more frames than the format can number.
    #[error("plaintext of {0} bytes needs more than 2^32 - 1 frames at this frame length")]
    TooManyFrames(u64),
    /// A materials manager returned incomplete materials.
    #[error("invalid materials: {0}")]
    InvalidMaterials(&'static str),
}

/// Any error from encrypting or decrypting a message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The message or an input could not be parsed or serialized.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A cryptographic check failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A keyring failed.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A policy forbids the operation.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Reading or writing a stream failed.
    #[error("I/O error: {0}")]
    Io(String),
}

impl Error {
    /// Every plugin error of type `E` in this error (a keyring failure's
    /// [`OtherError`]s, nested ones included): for example
    /// `error.plugin_errors::<envelope_kms::KmsError>()`.
    pub fn plugin_errors<E: std::error::Error + 'static>(&self) -> Vec<&E> {
        match self {
            Error::Keyring(error) => error.plugin_errors(),
            _ => Vec::new(),
        }
    }

    /// Whether retrying later may succeed (a throttled or unreachable key service).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Keyring(error) => error.is_retryable(),
            _ => false,
        }
    }
}
