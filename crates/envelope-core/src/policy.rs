//! Commitment policy: which suites may encrypt and decrypt.

use crate::error::PolicyError;
use crate::suite::AlgorithmSuite;

/// Whether messages must use key-committing suites.
///
/// Key commitment guarantees a message decrypts to one plaintext only, even
/// if its EDKs wrap different data keys for different recipients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CommitmentPolicy {
    /// Encrypt with non-committing suites only; decrypt anything (migration step 1).
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites; decrypt anything (migration step 2).
    RequireEncryptAllowDecrypt,
    /// Committing suites only, both ways. The default.
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// The policy's name as the official SDKs spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ForbidEncryptAllowDecrypt => "FORBID_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptAllowDecrypt => "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptRequireDecrypt => "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
        }
    }

    /// A distinct byte per policy, for cache ids.
    pub(crate) const fn id_byte(self) -> u8 {
        match self {
            Self::ForbidEncryptAllowDecrypt => 1,
            Self::RequireEncryptAllowDecrypt => 2,
            Self::RequireEncryptRequireDecrypt => 3,
        }
    }

    /// The suite to encrypt with when the caller names none. For FORBID
    /// this is 0x0378, as in the official Python and Rust SDKs.
    pub const fn default_suite(self) -> AlgorithmSuite {
        match self {
            Self::ForbidEncryptAllowDecrypt => {
                AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            }
            _ => AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        }
    }

    /// Checks that `suite` may encrypt.
    pub fn check_encrypt(self, suite: AlgorithmSuite) -> Result<(), PolicyError> {
        let allowed = match self {
            Self::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            _ => suite.is_committing(),
        };
        self.result(allowed, suite, "encrypting")
    }

    /// Checks that `suite` may decrypt.
    pub fn check_decrypt(self, suite: AlgorithmSuite) -> Result<(), PolicyError> {
        let allowed = self != Self::RequireEncryptRequireDecrypt || suite.is_committing();
        self.result(allowed, suite, "decrypting")
    }

    fn result(
        self,
        allowed: bool,
        suite: AlgorithmSuite,
        operation: &'static str,
    ) -> Result<(), PolicyError> {
        if allowed {
            Ok(())
        } else {
            Err(PolicyError::Commitment {
                suite: suite.to_string(),
                policy: self.name(),
                operation,
            })
        }
    }
}

impl std::str::FromStr for CommitmentPolicy {
    type Err = String;

    /// Accepts `forbid-encrypt-allow-decrypt` and the SDKs' upper-case names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "forbid-encrypt-allow-decrypt" => Ok(Self::ForbidEncryptAllowDecrypt),
            "require-encrypt-allow-decrypt" => Ok(Self::RequireEncryptAllowDecrypt),
            "require-encrypt-require-decrypt" => Ok(Self::RequireEncryptRequireDecrypt),
            _ => Err(format!("unknown commitment policy {s:?}")),
        }
    }
}
