//! Maps aws-sdk-kms errors to [`KeyringError::Kms`], naming the key.

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use envelope_core::error::{KeyringError, KmsErrorKind};

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
    KeyringError::Kms {
        key_id: key_id.to_owned(),
        kind,
        message,
    }
}

/// A response that failed one of the keyring's checks.
pub(crate) fn invalid_response(key_id: &str, message: impl Into<String>) -> KeyringError {
    KeyringError::Kms {
        key_id: key_id.to_owned(),
        kind: KmsErrorKind::InvalidResponse,
        message: message.into(),
    }
}

/// Folds the per-EDK errors of one keyring: none means no EDK matched.
pub(crate) fn collect(keyring: String, mut errors: Vec<KeyringError>) -> KeyringError {
    match errors.len() {
        0 => KeyringError::NoMatchingKey { keyring },
        1 => errors.remove(0),
        _ => KeyringError::AllFailed(errors),
    }
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
            mapped,
            KeyringError::Kms {
                key_id: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
                kind: KmsErrorKind::Throttled,
                message: "ThrottlingException: Rate exceeded".into(),
            }
        );
        assert!(mapped.is_retryable());
        assert!(mapped
            .to_string()
            .contains("arn:aws:kms:us-east-1:111122223333:key/k"));
    }
}
