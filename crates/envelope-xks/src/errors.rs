//! This crate's errors: [`XksKeyError`], one per failed proxy request or
//! failed check, naming the key and an [`XksErrorKind`]; and the mapping
//! from the proxy's error answers and transport failures. An
//! `XksKeyError` travels through envelope as `KeyringError::Other`
//! (retryable or not); [`XksKeyError::find`] gets it back.

use envelope_core::error::{Error, KeyringError, OtherError};
use xks_api::types::ErrorBody;

/// An XKS proxy request for the named key failed, or its response failed a
/// check. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("XKS key {key}: {kind}: {message}")]
pub struct XksKeyError {
    /// The key, as `https://host:port/prefix#keyId`.
    pub key: String,
    /// The kind of failure (the proxy's `errorName`, or a transport failure).
    pub kind: XksErrorKind,
    /// The proxy's `errorMessage`, or the check that failed.
    pub message: String,
}

impl XksKeyError {
    /// Every `XksKeyError` in `error`, nested ones (a multi-keyring's) included.
    pub fn find(error: &Error) -> Vec<&XksKeyError> {
        error.plugin_errors::<XksKeyError>()
    }

    /// Every `XksKeyError` in a keyring error, nested ones included.
    pub fn find_in(error: &KeyringError) -> Vec<&XksKeyError> {
        error.plugin_errors::<XksKeyError>()
    }
}

impl From<XksKeyError> for KeyringError {
    fn from(error: XksKeyError) -> Self {
        let retryable = error.kind.is_retryable();
        KeyringError::Other(OtherError::new(error, retryable))
    }
}

/// Why an XKS proxy request failed (see [`XksKeyError`]). One kind per
/// `errorName` of the XKS API, plus transport failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum XksErrorKind {
    /// `ValidationException`: the proxy rejected the request as malformed.
    Validation,
    /// `AuthenticationFailedException`: the SigV4 signature or credentials.
    AuthenticationFailed,
    /// `AccessDeniedException`: secondary authorization refused the call.
    AccessDenied,
    /// `KeyNotFoundException`: no such key in the key store.
    KeyNotFound,
    /// `InvalidUriPathException`: no such key store (URI prefix).
    InvalidUriPath,
    /// `InvalidKeyUsageException`: the key may not encrypt (or decrypt).
    InvalidKeyUsage,
    /// `InvalidStateException`: the key is disabled.
    InvalidState,
    /// `InvalidCiphertextException`: wrong ciphertext or encryption context.
    InvalidCiphertext,
    /// `UnsupportedOperationException`.
    UnsupportedOperation,
    /// `ThrottlingException`: over the key store's quota.
    Throttled,
    /// `DependencyTimeoutException`: the HSM did not answer in time.
    DependencyTimeout,
    /// `InternalException`: the proxy or the HSM failed.
    Internal,
    /// The connect or request timeout expired.
    Timeout,
    /// The proxy could not be reached (DNS, connection, TLS, I/O).
    Network,
    /// The proxy answered with a status or body that is not an XKS answer
    /// (for example a load balancer's 502/503).
    Unavailable,
    /// The response failed a check (bad JSON, base64 or field lengths).
    InvalidResponse,
}

impl XksErrorKind {
    /// Whether retrying later may succeed: throttling, HSM timeouts,
    /// internal failures, timeouts, network failures and unavailability.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled
                | Self::DependencyTimeout
                | Self::Internal
                | Self::Timeout
                | Self::Network
                | Self::Unavailable
        )
    }
}

impl std::fmt::Display for XksErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validation => "ValidationException",
            Self::AuthenticationFailed => "AuthenticationFailedException",
            Self::AccessDenied => "AccessDeniedException",
            Self::KeyNotFound => "KeyNotFoundException",
            Self::InvalidUriPath => "InvalidUriPathException",
            Self::InvalidKeyUsage => "InvalidKeyUsageException",
            Self::InvalidState => "InvalidStateException",
            Self::InvalidCiphertext => "InvalidCiphertextException",
            Self::UnsupportedOperation => "UnsupportedOperationException",
            Self::Throttled => "ThrottlingException",
            Self::DependencyTimeout => "DependencyTimeoutException",
            Self::Internal => "InternalException",
            Self::Timeout => "timed out",
            Self::Network => "network failure",
            Self::Unavailable => "proxy unavailable",
            Self::InvalidResponse => "invalid response",
        })
    }
}

use crate::transport::TransportError;

/// Messages are cut to this many characters.
const MAX_MESSAGE: usize = 256;

/// The kind for an XKS `errorName`.
fn kind_of_name(name: &str) -> Option<XksErrorKind> {
    Some(match name {
        "ValidationException" => XksErrorKind::Validation,
        "AuthenticationFailedException" => XksErrorKind::AuthenticationFailed,
        "AccessDeniedException" => XksErrorKind::AccessDenied,
        "KeyNotFoundException" => XksErrorKind::KeyNotFound,
        "InvalidUriPathException" => XksErrorKind::InvalidUriPath,
        "InvalidKeyUsageException" => XksErrorKind::InvalidKeyUsage,
        "InvalidStateException" => XksErrorKind::InvalidState,
        "InvalidCiphertextException" => XksErrorKind::InvalidCiphertext,
        "UnsupportedOperationException" => XksErrorKind::UnsupportedOperation,
        "ThrottlingException" => XksErrorKind::Throttled,
        "DependencyTimeoutException" => XksErrorKind::DependencyTimeout,
        "InternalException" => XksErrorKind::Internal,
        _ => return None,
    })
}

/// The kind for a status without a recognizable XKS error body.
fn kind_of_status(status: u16) -> XksErrorKind {
    match status {
        429 => XksErrorKind::Throttled,
        500 => XksErrorKind::Internal,
        502..=504 => XksErrorKind::Unavailable,
        _ => XksErrorKind::InvalidResponse,
    }
}

/// Printable ASCII only, cut short: the message goes into logs and errors.
fn sanitize(message: &str) -> String {
    message
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .take(MAX_MESSAGE)
        .collect()
}

/// The error for a non-200 answer.
pub(crate) fn from_answer(key: &str, status: u16, body: &[u8]) -> KeyringError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (kind, message) = match parsed {
        Some(body) => match kind_of_name(&body.error_name) {
            Some(kind) => (
                kind,
                sanitize(body.error_message.as_deref().unwrap_or("no message")),
            ),
            None => (
                kind_of_status(status),
                format!(
                    "HTTP {status} with unknown errorName {:?}",
                    sanitize(&body.error_name)
                ),
            ),
        },
        None => (
            kind_of_status(status),
            format!("HTTP {status} without an XKS error body"),
        ),
    };
    XksKeyError {
        key: key.to_owned(),
        kind,
        message,
    }
    .into()
}

/// The error for a transport failure.
pub(crate) fn from_transport(key: &str, error: TransportError) -> KeyringError {
    let (kind, message) = match error {
        TransportError::Timeout(after) => (
            XksErrorKind::Timeout,
            format!("no answer within {} ms", after.as_millis()),
        ),
        TransportError::Network(text) => (XksErrorKind::Network, sanitize(&text)),
    };
    XksKeyError {
        key: key.to_owned(),
        kind,
        message,
    }
    .into()
}

/// The error for an answer that fails a check.
pub(crate) fn invalid_response(key: &str, what: impl Into<String>) -> KeyringError {
    XksKeyError {
        key: key.to_owned(),
        kind: XksErrorKind::InvalidResponse,
        message: what.into(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: &KeyringError) -> XksErrorKind {
        match XksKeyError::find_in(error)[..] {
            [found] => found.kind,
            _ => panic!("not an XKS error: {error:?}"),
        }
    }

    #[test]
    fn every_error_name_maps_and_retryability_follows_the_docs() {
        let cases = [
            (400, "ValidationException", XksErrorKind::Validation, false),
            (
                401,
                "AuthenticationFailedException",
                XksErrorKind::AuthenticationFailed,
                false,
            ),
            (
                403,
                "AccessDeniedException",
                XksErrorKind::AccessDenied,
                false,
            ),
            (
                404,
                "KeyNotFoundException",
                XksErrorKind::KeyNotFound,
                false,
            ),
            (
                404,
                "InvalidUriPathException",
                XksErrorKind::InvalidUriPath,
                false,
            ),
            (
                400,
                "InvalidKeyUsageException",
                XksErrorKind::InvalidKeyUsage,
                false,
            ),
            (
                400,
                "InvalidStateException",
                XksErrorKind::InvalidState,
                false,
            ),
            (
                400,
                "InvalidCiphertextException",
                XksErrorKind::InvalidCiphertext,
                false,
            ),
            (
                501,
                "UnsupportedOperationException",
                XksErrorKind::UnsupportedOperation,
                false,
            ),
            (429, "ThrottlingException", XksErrorKind::Throttled, true),
            (
                503,
                "DependencyTimeoutException",
                XksErrorKind::DependencyTimeout,
                true,
            ),
            (500, "InternalException", XksErrorKind::Internal, true),
        ];
        for (status, name, expected, retryable) in cases {
            let body = format!(r#"{{"errorName":"{name}","errorMessage":"m\u0007sg"}}"#);
            let error = from_answer("https://h:1#k", status, body.as_bytes());
            assert_eq!(kind(&error), expected, "{name}");
            assert_eq!(error.is_retryable(), retryable, "{name}");
            assert_eq!(
                error.to_string(),
                format!("XKS key https://h:1#k: {name}: msg")
            );
        }
    }

    #[test]
    fn answers_without_an_xks_body_map_by_status() {
        assert_eq!(
            kind(&from_answer("k", 502, b"<html>")),
            XksErrorKind::Unavailable
        );
        assert_eq!(kind(&from_answer("k", 429, b"")), XksErrorKind::Throttled);
        assert_eq!(
            kind(&from_answer("k", 418, b"{}")),
            XksErrorKind::InvalidResponse
        );
        let unknown = from_answer("k", 503, br#"{"errorName":"NewException"}"#);
        assert_eq!(kind(&unknown), XksErrorKind::Unavailable);
        assert!(unknown.is_retryable());
        let timeout = from_transport(
            "k",
            TransportError::Timeout(std::time::Duration::from_millis(5)),
        );
        assert_eq!(kind(&timeout), XksErrorKind::Timeout);
        assert!(timeout.is_retryable());
        let network = from_transport("k", TransportError::Network("refused".into()));
        assert!(network.is_retryable());
        assert!(!invalid_response("k", "bad").is_retryable());
    }
}
