//! The proxy's error answers and transport failures, as
//! [`KeyringError::Xks`] with an [`XksErrorKind`].

use envelope_core::error::{KeyringError, XksErrorKind};
use xks_proxy::api::types::ErrorBody;

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
    KeyringError::Xks {
        key: key.to_owned(),
        kind,
        message,
    }
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
    KeyringError::Xks {
        key: key.to_owned(),
        kind,
        message,
    }
}

/// The error for an answer that fails a check.
pub(crate) fn invalid_response(key: &str, what: impl Into<String>) -> KeyringError {
    KeyringError::Xks {
        key: key.to_owned(),
        kind: XksErrorKind::InvalidResponse,
        message: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(error: &KeyringError) -> XksErrorKind {
        match error {
            KeyringError::Xks { kind, .. } => *kind,
            other => panic!("not an XKS error: {other:?}"),
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
