//! The spec's error names and their HTTP statuses, and the error response.

use http::StatusCode;

use crate::sigv4::VerifyError;
use crate::types::ErrorBody;

/// The XKS error names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorName {
    /// 400: malformed request.
    ValidationException,
    /// 400: the key is disabled.
    InvalidStateException,
    /// 400: authentication of the ciphertext failed.
    InvalidCiphertextException,
    /// 400: the key's usage forbids the operation.
    InvalidKeyUsageException,
    /// 401: SigV4 failed.
    AuthenticationFailedException,
    /// 403: secondary authorization denied the call.
    AccessDeniedException,
    /// 404: no such key.
    KeyNotFoundException,
    /// 404: no such path or prefix.
    InvalidUriPathException,
    /// 429: over quota.
    ThrottlingException,
    /// 501: not implemented.
    UnsupportedOperationException,
    /// 503: the HSM did not answer in time.
    DependencyTimeoutException,
    /// 500: anything else.
    InternalException,
}

impl ErrorName {
    /// Every name, in a fixed order (metrics index by it).
    pub const ALL: [ErrorName; 12] = [
        ErrorName::ValidationException,
        ErrorName::InvalidStateException,
        ErrorName::InvalidCiphertextException,
        ErrorName::InvalidKeyUsageException,
        ErrorName::AuthenticationFailedException,
        ErrorName::AccessDeniedException,
        ErrorName::KeyNotFoundException,
        ErrorName::InvalidUriPathException,
        ErrorName::ThrottlingException,
        ErrorName::UnsupportedOperationException,
        ErrorName::DependencyTimeoutException,
        ErrorName::InternalException,
    ];

    /// The name as it appears in `errorName`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::ValidationException => "ValidationException",
            ErrorName::InvalidStateException => "InvalidStateException",
            ErrorName::InvalidCiphertextException => "InvalidCiphertextException",
            ErrorName::InvalidKeyUsageException => "InvalidKeyUsageException",
            ErrorName::AuthenticationFailedException => "AuthenticationFailedException",
            ErrorName::AccessDeniedException => "AccessDeniedException",
            ErrorName::KeyNotFoundException => "KeyNotFoundException",
            ErrorName::InvalidUriPathException => "InvalidUriPathException",
            ErrorName::ThrottlingException => "ThrottlingException",
            ErrorName::UnsupportedOperationException => "UnsupportedOperationException",
            ErrorName::DependencyTimeoutException => "DependencyTimeoutException",
            ErrorName::InternalException => "InternalException",
        }
    }

    /// The HTTP status the spec assigns.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorName::ValidationException
            | ErrorName::InvalidStateException
            | ErrorName::InvalidCiphertextException
            | ErrorName::InvalidKeyUsageException => StatusCode::BAD_REQUEST,
            ErrorName::AuthenticationFailedException => StatusCode::UNAUTHORIZED,
            ErrorName::AccessDeniedException => StatusCode::FORBIDDEN,
            ErrorName::KeyNotFoundException | ErrorName::InvalidUriPathException => {
                StatusCode::NOT_FOUND
            }
            ErrorName::ThrottlingException => StatusCode::TOO_MANY_REQUESTS,
            ErrorName::UnsupportedOperationException => StatusCode::NOT_IMPLEMENTED,
            ErrorName::DependencyTimeoutException => StatusCode::SERVICE_UNAVAILABLE,
            ErrorName::InternalException => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error response: a name and a short message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XksError {
    /// The error name.
    pub name: ErrorName,
    /// The message; sanitized to printable ASCII under 512 characters when
    /// the body is built.
    pub message: String,
}

impl XksError {
    /// A new error.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        XksError {
            name,
            message: message.into(),
        }
    }

    /// Shorthand for a `ValidationException`.
    pub fn validation(message: impl Into<String>) -> Self {
        XksError::new(ErrorName::ValidationException, message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let mut msg: String = self
            .message
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        msg.truncate(511);
        ErrorBody {
            error_name: self.name.as_str().to_owned(),
            error_message: (!msg.is_empty()).then_some(msg),
        }
    }
}

impl From<VerifyError> for XksError {
    fn from(e: VerifyError) -> Self {
        XksError::new(ErrorName::AuthenticationFailedException, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_sanitized() {
        let e = XksError::validation(format!("bad\u{7}\u{e9}{}", "x".repeat(600)));
        let b = e.body();
        let m = b.error_message.unwrap();
        assert!(m.len() < 512);
        assert!(m.starts_with("bad??"));
        assert_eq!(b.error_name, "ValidationException");
    }

    #[test]
    fn statuses() {
        assert_eq!(ErrorName::KeyNotFoundException.status(), 404);
        assert_eq!(ErrorName::DependencyTimeoutException.status(), 503);
    }
}
