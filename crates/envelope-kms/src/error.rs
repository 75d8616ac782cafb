//! This crate's errors: [`KmsError`], one per failed request or failed
//! check, naming the key and a [`KmsErrorKind`]; and the mapping from
//! aws-sdk-kms errors. A `KmsError` travels through envelope as
//! `KeyringError::Other` (retryable or not); [`KmsError::find`] gets it back.

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use envelope_core::error::{Error, KeyringError, OtherError};

/// An AWS KMS request for the named key failed, or its response failed a
/// check. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AWS KMS key {key_id}: {kind}: {message}")]
pub struct KmsError {
    /// The key ARN, alias or key id the request named.
    pub key_id: String,
    /// The kind of failure.
    pub kind: KmsErrorKind,
    /// The service's message, or the check that failed.
    pub message: String,
}

impl KmsError {
    /// Every `KmsError` in `error`, nested ones (a multi-keyring's) included.
    pub fn find(error: &Error) -> Vec<&KmsError> {
        error.plugin_errors::<KmsError>()
    }

    /// Every `KmsError` in a keyring error, nested ones included.
    pub fn find_in(error: &KeyringError) -> Vec<&KmsError> {
        error.plugin_errors::<KmsError>()
    }
}

impl From<KmsError> for KeyringError {
    fn from(error: KmsError) -> Self {
        let retryable = error.kind.is_retryable();
        KeyringError::Other(OtherError::new(error, retryable))
    }
}

/// Why an AWS KMS request failed (see [`KmsError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KmsErrorKind {
    /// `NotFoundException`: the key does not exist.
    NotFound,
    /// `DisabledException`: the key is disabled.
    Disabled,
    /// `KMSInvalidStateException`: for example, pending deletion.
    InvalidState,
    /// `AccessDeniedException`: the caller may not use the key.
    AccessDenied,
    /// `InvalidCiphertextException` or `IncorrectKeyException`: the
    /// ciphertext or the encryption context is wrong.
    InvalidCiphertext,
    /// Throttled (`ThrottlingException`, `LimitExceededException`) after
    /// the client's retries.
    Throttled,
    /// The connect, attempt or operation timeout expired.
    Timeout,
    /// The service could not be reached (DNS, connection, TLS, I/O).
    Network,
    /// The service reported an internal or dependency failure.
    Unavailable,
    /// The response failed a check: wrong key ARN or data key length.
    InvalidResponse,
    /// Any other error.
    Other,
}

impl KmsErrorKind {
    /// Whether retrying later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Timeout | Self::Network | Self::Unavailable
        )
    }
}

impl std::fmt::Display for KmsErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotFound => "not found",
            Self::Disabled => "disabled",
            Self::InvalidState => "invalid key state",
            Self::AccessDenied => "access denied",
            Self::InvalidCiphertext => "invalid ciphertext or encryption context",
            Self::Throttled => "throttled",
            Self::Timeout => "timed out",
            Self::Network => "network failure",
            Self::Unavailable => "service unavailable",
            Self::InvalidResponse => "invalid response",
            Self::Other => "request failed",
        })
    }
}

/// The error kind for a KMS exception code (`NotFoundException`, ...).
pub(crate) fn kind_for_code(code: Option<&str>) -> KmsErrorKind {
    match code {
        Some("NotFoundException") => KmsErrorKind::NotFound,
        Some("DisabledException") => KmsErrorKind::Disabled,
        Some("KMSInvalidStateException") => KmsErrorKind::InvalidState,
        Some("AccessDeniedException") => KmsErrorKind::AccessDenied,
        Some("InvalidCiphertextException") | Some("IncorrectKeyException") => {
            KmsErrorKind::InvalidCiphertext
        }
        Some("ThrottlingException")
        | Some("LimitExceededException")
        | Some("RequestLimitExceeded") => KmsErrorKind::Throttled,
        Some("KMSInternalException")
        | Some("DependencyTimeoutException")
        | Some("KeyUnavailableException")
        | Some("ServiceUnavailable")
        | Some("InternalFailure") => KmsErrorKind::Unavailable,
        _ => KmsErrorKind::Other,
    }
}

/// Converts a failed request for `key_id` into a typed keyring error.
pub(crate) fn from_sdk<E, R>(key_id: &str, error: SdkError<E, R>) -> KeyringError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match &error {
        SdkError::ServiceError(service) => kind_for_code(service.err().code()),
        SdkError::TimeoutError(_) => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_timeout() => KmsErrorKind::Timeout,
        SdkError::DispatchFailure(failure) if failure.is_io() || failure.is_other() => {
            KmsErrorKind::Network
        }
        // A response that could not be read or parsed: treat as transient.
        SdkError::ResponseError(_) => KmsErrorKind::Network,
        _ => KmsErrorKind::Other,
    };
    let message = match &error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => DisplayErrorContext(&error).to_string(),
            }
        }
        _ => DisplayErrorContext(&error).to_string(),
    };
    KmsError {
        key_id: key_id.to_owned(),
        kind,
        message,
    }
    .into()
}

/// A response that failed one of the keyring's checks.
pub(crate) fn invalid_response(key_id: &str, message: impl Into<String>) -> KeyringError {
    KmsError {
        key_id: key_id.to_owned(),
        kind: KmsErrorKind::InvalidResponse,
        message: message.into(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes_map_to_kinds() {
        let cases = [
            ("NotFoundException", KmsErrorKind::NotFound, false),
            ("DisabledException", KmsErrorKind::Disabled, false),
            (
                "KMSInvalidStateException",
                KmsErrorKind::InvalidState,
                false,
            ),
            ("AccessDeniedException", KmsErrorKind::AccessDenied, false),
            (
                "InvalidCiphertextException",
                KmsErrorKind::InvalidCiphertext,
                false,
            ),
            (
                "IncorrectKeyException",
                KmsErrorKind::InvalidCiphertext,
                false,
            ),
            ("ThrottlingException", KmsErrorKind::Throttled, true),
            ("LimitExceededException", KmsErrorKind::Throttled, true),
            ("KMSInternalException", KmsErrorKind::Unavailable, true),
            (
                "DependencyTimeoutException",
                KmsErrorKind::Unavailable,
                true,
            ),
            ("InvalidKeyUsageException", KmsErrorKind::Other, false),
        ];
        for (code, kind, retryable) in cases {
            assert_eq!(kind_for_code(Some(code)), kind, "{code}");
            assert_eq!(kind.is_retryable(), retryable, "{code}");
        }
        assert_eq!(kind_for_code(None), KmsErrorKind::Other);
    }

    #[test]
    fn service_errors_name_the_key_and_code() {
        use aws_sdk_kms::operation::decrypt::DecryptError;
        let error: SdkError<DecryptError, ()> = SdkError::service_error(
            DecryptError::generic(
                aws_sdk_kms::error::ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            ),
            (),
        );
        let mapped = from_sdk("arn:aws:kms:us-east-1:111122223333:key/k", error);
        assert_eq!(
            KmsError::find_in(&mapped),
            [&KmsError {
                key_id: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
                kind: KmsErrorKind::Throttled,
                message: "ThrottlingException: Rate exceeded".into(),
            }]
        );
        assert!(mapped.is_retryable());
        assert!(mapped
            .to_string()
            .contains("arn:aws:kms:us-east-1:111122223333:key/k"));
    }
}
