//! The eleven algorithm suites of the AWS Encryption SDK, as one table.
//!
//! Every property the rest of the crate needs (key length, KDF, commitment,
//! signing, message format version) is a method on [`AlgorithmSuite`], so no
//! other module matches on suite ids.

use crate::error::FormatError;

/// Which key derivation a suite uses to turn the data key into the
/// message's encryption key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kdf {
    /// The data key is used directly. Frame IVs are sequence numbers, so a
    /// data key of such a suite must never encrypt two messages.
    Identity,
    /// HKDF with SHA-256.
    HkdfSha256,
    /// HKDF with SHA-384.
    HkdfSha384,
    /// HKDF with SHA-512 (the committing suites).
    HkdfSha512,
}

/// Which ECDSA curve (and hash) signs the message, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
}

/// The version of the message format a suite is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageFormatVersion {
    /// Version 1: 16-byte message id, no key commitment.
    V1,
    /// Version 2: 32-byte message id and a commitment key in the header.
    V2,
}

impl MessageFormatVersion {
    /// Length of the message id in bytes.
    pub const fn message_id_len(self) -> usize {
        match self {
            Self::V1 => 16,
            Self::V2 => 32,
        }
    }
}

/// One of the eleven algorithm suites.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AlgorithmSuite {
    /// 0x0014: AES-128-GCM, no KDF.
    Aes128GcmIv12Tag16NoKdf,
    /// 0x0046: AES-192-GCM, no KDF.
    Aes192GcmIv12Tag16NoKdf,
    /// 0x0078: AES-256-GCM, no KDF.
    Aes256GcmIv12Tag16NoKdf,
    /// 0x0114: AES-128-GCM, HKDF-SHA256.
    Aes128GcmIv12Tag16HkdfSha256,
    /// 0x0146: AES-192-GCM, HKDF-SHA256.
    Aes192GcmIv12Tag16HkdfSha256,
    /// 0x0178: AES-256-GCM, HKDF-SHA256.
    Aes256GcmIv12Tag16HkdfSha256,
    /// 0x0214: AES-128-GCM, HKDF-SHA256, ECDSA P-256.
    Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    /// 0x0346: AES-192-GCM, HKDF-SHA384, ECDSA P-384.
    Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0378: AES-256-GCM, HKDF-SHA384, ECDSA P-384.
    Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
    /// 0x0478: AES-256-GCM, HKDF-SHA512, key commitment.
    Aes256GcmHkdfSha512CommitKey,
    /// 0x0578: AES-256-GCM, HKDF-SHA512, key commitment, ECDSA P-384.
    /// The default, as in the official SDKs.
    #[default]
    Aes256GcmHkdfSha512CommitKeyEcdsaP384,
}

impl AlgorithmSuite {
    /// All suites, in id order.
    pub const ALL: [AlgorithmSuite; 11] = [
        Self::Aes128GcmIv12Tag16NoKdf,
        Self::Aes192GcmIv12Tag16NoKdf,
        Self::Aes256GcmIv12Tag16NoKdf,
        Self::Aes128GcmIv12Tag16HkdfSha256,
        Self::Aes192GcmIv12Tag16HkdfSha256,
        Self::Aes256GcmIv12Tag16HkdfSha256,
        Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
        Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        Self::Aes256GcmHkdfSha512CommitKey,
        Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ];

    /// The suite's two-byte id as written in the header.
    pub const fn id(self) -> u16 {
        match self {
            Self::Aes128GcmIv12Tag16NoKdf => 0x0014,
            Self::Aes192GcmIv12Tag16NoKdf => 0x0046,
            Self::Aes256GcmIv12Tag16NoKdf => 0x0078,
            Self::Aes128GcmIv12Tag16HkdfSha256 => 0x0114,
            Self::Aes192GcmIv12Tag16HkdfSha256 => 0x0146,
            Self::Aes256GcmIv12Tag16HkdfSha256 => 0x0178,
            Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => 0x0214,
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0346,
            Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => 0x0378,
            Self::Aes256GcmHkdfSha512CommitKey => 0x0478,
            Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => 0x0578,
        }
    }

    /// Looks a suite up by its id.
    pub fn from_id(id: u16) -> Result<Self, FormatError> {
        Self::ALL
            .into_iter()
            .find(|suite| suite.id() == id)
            .ok_or(FormatError::UnknownSuite(id))
    }

    /// Length of the data key (the KDF input) and of the AES key, in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128GcmIv12Tag16NoKdf
            | Self::Aes128GcmIv12Tag16HkdfSha256
            | Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => 16,
            Self::Aes192GcmIv12Tag16NoKdf
            | Self::Aes192GcmIv12Tag16HkdfSha256
            | Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => 24,
            _ => 32,
        }
    }

    /// The key derivation function.
    pub const fn kdf(self) -> Kdf {
        match self {
            Self::Aes128GcmIv12Tag16NoKdf
            | Self::Aes192GcmIv12Tag16NoKdf
            | Self::Aes256GcmIv12Tag16NoKdf => Kdf::Identity,
            Self::Aes128GcmIv12Tag16HkdfSha256
            | Self::Aes192GcmIv12Tag16HkdfSha256
            | Self::Aes256GcmIv12Tag16HkdfSha256
            | Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => Kdf::HkdfSha256,
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384
            | Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => Kdf::HkdfSha384,
            Self::Aes256GcmHkdfSha512CommitKey | Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
                Kdf::HkdfSha512
            }
        }
    }

    /// The signature algorithm, if the suite signs messages.
    pub const fn signature(self) -> Option<SignatureAlgorithm> {
        match self {
            Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => {
                Some(SignatureAlgorithm::EcdsaP256Sha256)
            }
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384
            | Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            | Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
                Some(SignatureAlgorithm::EcdsaP384Sha384)
            }
            _ => None,
        }
    }

    /// Whether the suite commits to its data key.
    pub const fn is_committing(self) -> bool {
        matches!(
            self,
            Self::Aes256GcmHkdfSha512CommitKey | Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384
        )
    }

    /// The suite's name as the specification and the official SDKs spell
    /// it (`AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`, ...). Python's
    /// `Algorithm` names the three suites without a KDF without the
    /// `_NO_KDF` ending.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes128GcmIv12Tag16NoKdf => "AES_128_GCM_IV12_TAG16_NO_KDF",
            Self::Aes192GcmIv12Tag16NoKdf => "AES_192_GCM_IV12_TAG16_NO_KDF",
            Self::Aes256GcmIv12Tag16NoKdf => "AES_256_GCM_IV12_TAG16_NO_KDF",
            Self::Aes128GcmIv12Tag16HkdfSha256 => "AES_128_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes192GcmIv12Tag16HkdfSha256 => "AES_192_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes256GcmIv12Tag16HkdfSha256 => "AES_256_GCM_IV12_TAG16_HKDF_SHA256",
            Self::Aes128GcmIv12Tag16HkdfSha256EcdsaP256 => {
                "AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256"
            }
            Self::Aes192GcmIv12Tag16HkdfSha384EcdsaP384 => {
                "AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384"
            }
            Self::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 => {
                "AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384"
            }
            Self::Aes256GcmHkdfSha512CommitKey => "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            Self::Aes256GcmHkdfSha512CommitKeyEcdsaP384 => {
                "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
            }
        }
    }

    /// The message format version the suite is written in.
    pub const fn message_format(self) -> MessageFormatVersion {
        if self.is_committing() {
            MessageFormatVersion::V2
        } else {
            MessageFormatVersion::V1
        }
    }
}

impl std::fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:04X}", self.id())
    }
}

impl std::str::FromStr for AlgorithmSuite {
    type Err = FormatError;

    /// Parses `0x0578`, `0578` or `578` (hex).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.trim_start_matches("0x").trim_start_matches("0X");
        let id = u16::from_str_radix(hex, 16)
            .map_err(|_| FormatError::UnknownSuiteName(s.to_owned()))?;
        Self::from_id(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for suite in AlgorithmSuite::ALL {
            assert_eq!(AlgorithmSuite::from_id(suite.id()).ok(), Some(suite));
            assert_eq!(
                suite.to_string().parse::<AlgorithmSuite>().ok(),
                Some(suite)
            );
        }
        assert!(AlgorithmSuite::from_id(0x0579).is_err());
    }

    #[test]
    fn default_is_committing_and_signed() {
        let suite = AlgorithmSuite::default();
        assert_eq!(suite.id(), 0x0578);
        assert!(suite.is_committing());
        assert!(suite.signature().is_some());
    }
}
