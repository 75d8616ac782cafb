//! HSM errors as XKS errors: the error name each failure maps to, and a
//! fixed message where the PKCS#11 detail belongs in the log, not in KMS.

use xks_api::{ErrorName, XksError};

use crate::hsm::HsmError;

impl From<HsmError> for XksError {
    fn from(e: HsmError) -> Self {
        use ErrorName::*;
        let name = match &e {
            HsmError::KeyNotFound(_) => KeyNotFoundException,
            HsmError::KeyDisabled(_) => InvalidStateException,
            HsmError::KeyUsage { .. } => InvalidKeyUsageException,
            HsmError::InvalidCiphertext => InvalidCiphertextException,
            HsmError::PoolTimeout(_) | HsmError::OperationTimeout(_) => DependencyTimeoutException,
            HsmError::TokenNotFound(_)
            | HsmError::Unavailable(_)
            | HsmError::VerificationFailed
            | HsmError::Unexpected(_)
            | HsmError::Pkcs11(_)
            | HsmError::Worker => InternalException,
        };
        let message = match (&e, name) {
            (HsmError::Unavailable(_) | HsmError::TokenNotFound(_), _) => {
                "HSM unavailable".to_owned()
            }
            (_, InternalException) => "HSM operation failed".to_owned(),
            _ => e.to_string(),
        };
        XksError::new(name, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsm_errors_map_to_their_names() {
        assert_eq!(
            XksError::from(HsmError::InvalidCiphertext).name,
            ErrorName::InvalidCiphertextException
        );
        let unavailable = XksError::from(HsmError::Worker);
        assert_eq!(unavailable.name, ErrorName::InternalException);
        assert_eq!(unavailable.message, "HSM operation failed");
    }
}
