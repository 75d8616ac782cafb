//! This crate's error: what failed (the kind), for which branch key, and
//! whether a retry may succeed. It reaches envelope as
//! `KeyringError::Other`; [`HierarchyError::find`] gets it back.

use envelope_core::error::{Error, KeyringError, OtherError};

/// Why a hierarchical keyring or key store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HierarchyErrorKind {
    /// DynamoDB could not be reached, timed out, or throttled (retryable).
    DynamoDbUnavailable,
    /// DynamoDB refused the request (for example, no such table).
    DynamoDb,
    /// AWS KMS could not be reached, timed out, or throttled (retryable).
    KmsUnavailable,
    /// AWS KMS refused the request: a disabled key, a wrong encryption
    /// context, access denied.
    Kms,
    /// No such branch key (no `branch:ACTIVE` item).
    BranchKeyNotFound,
    /// No such version of the branch key.
    VersionNotFound,
    /// The item names another KMS key than the configured one: it is not
    /// decrypted.
    KmsArnMismatch,
    /// An item of the table is not a branch key item (missing or mistyped
    /// attributes, a key of the wrong length).
    MalformedItem,
    /// A branch key that already exists, or an ACTIVE item that changed
    /// while it was being versioned.
    Conflict,
    /// An EDK of this keyring that cannot be parsed (wrong length).
    InvalidEdk,
    /// The data key did not unwrap: wrong encryption context, a tampered
    /// EDK, or another key.
    UnwrapFailed,
    /// The branch key id supplier refused the encryption context.
    Supplier,
    /// The configuration is invalid.
    Config,
    /// A cryptographic primitive failed.
    Crypto,
}

impl HierarchyErrorKind {
    /// Whether retrying later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::DynamoDbUnavailable | Self::KmsUnavailable)
    }
}

impl std::fmt::Display for HierarchyErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DynamoDbUnavailable => "DynamoDB unavailable",
            Self::DynamoDb => "DynamoDB refused the request",
            Self::KmsUnavailable => "AWS KMS unavailable",
            Self::Kms => "AWS KMS refused the request",
            Self::BranchKeyNotFound => "branch key not found",
            Self::VersionNotFound => "branch key version not found",
            Self::KmsArnMismatch => "the item names another KMS key",
            Self::MalformedItem => "malformed key store item",
            Self::Conflict => "conflicting key store write",
            Self::InvalidEdk => "invalid encrypted data key",
            Self::UnwrapFailed => "unwrap failed",
            Self::Supplier => "branch key id supplier failed",
            Self::Config => "invalid configuration",
            Self::Crypto => "cryptographic failure",
        })
    }
}

/// A hierarchical keyring or key store failure. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hierarchical keyring{}: {kind}: {message}", branch_key_id.as_deref().map(|id| format!(" (branch key {id})")).unwrap_or_default())]
pub struct HierarchyError {
    /// What failed.
    pub kind: HierarchyErrorKind,
    /// The branch key concerned, when there is one.
    pub branch_key_id: Option<String>,
    /// Details: the service's message or the check that failed.
    pub message: String,
}

impl HierarchyError {
    /// An error of `kind`.
    pub fn new(kind: HierarchyErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            branch_key_id: None,
            message: message.into(),
        }
    }

    /// Names the branch key concerned.
    pub fn for_key(mut self, branch_key_id: &str) -> Self {
        self.branch_key_id = Some(branch_key_id.to_owned());
        self
    }

    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// Every `HierarchyError` in `error`, nested ones included.
    pub fn find(error: &Error) -> Vec<&HierarchyError> {
        error.plugin_errors::<HierarchyError>()
    }

    /// Every `HierarchyError` in a keyring error, nested ones included.
    pub fn find_in(error: &KeyringError) -> Vec<&HierarchyError> {
        error.plugin_errors::<HierarchyError>()
    }
}

impl From<HierarchyError> for KeyringError {
    fn from(error: HierarchyError) -> Self {
        let retryable = error.is_retryable();
        KeyringError::Other(OtherError::new(error, retryable))
    }
}
