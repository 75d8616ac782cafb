//! Message key derivation: the data key and the message id become the
//! message's AES key and, for committing suites, its commitment key.

use ring::hkdf;
use zeroize::Zeroizing;

use super::aead::GcmKey;
use super::DataKey;
use crate::error::CryptoError;
use crate::suite::{AlgorithmSuite, Kdf};

/// Length of the commitment key written in v2 headers.
pub(crate) const COMMIT_KEY_LEN: usize = 32;

/// The keys one message is encrypted under.
pub(crate) struct MessageKeys {
    pub(crate) content: GcmKey,
    /// Present for committing suites only.
    pub(crate) commitment: Option<[u8; COMMIT_KEY_LEN]>,
}

impl MessageKeys {
    /// Constant-time check of the header's commitment against the derived one.
    pub(crate) fn verify_commitment(
        &self,
        from_header: Option<&[u8; COMMIT_KEY_LEN]>,
    ) -> Result<(), CryptoError> {
        match (&self.commitment, from_header) {
            (None, None) => Ok(()),
            // Constant time, so a forged header learns nothing about the derived
            // commitment key from how long the comparison took.
            (Some(derived), Some(stored))
                if aws_lc_rs::constant_time::verify_slices_are_equal(derived, stored).is_ok() =>
            {
                Ok(())
            }
            _ => Err(CryptoError::CommitmentMismatch),
        }
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::Primitive("HKDF expand failed"))
}

/// Derives the message keys for `suite` from `data_key` and `message_id`.
pub(crate) fn derive(
    suite: AlgorithmSuite,
    data_key: &DataKey,
    message_id: &[u8],
) -> Result<MessageKeys, CryptoError> {
    let key_len = suite.key_len();
    if data_key.len() != key_len {
        return Err(CryptoError::KeyLength {
            what: "data key",
            expected: key_len,
            actual: data_key.len(),
        });
    }
    let suite_id = suite.id().to_be_bytes();
    let mut derived = Zeroizing::new([0u8; 32]);
    let derived = &mut derived[..key_len];
    let mut commitment = None;
    match suite.kdf() {
        Kdf::Identity => derived.copy_from_slice(data_key.expose_secret()),
        Kdf::HkdfSha256 | Kdf::HkdfSha384 => {
            let alg = if suite.kdf() == Kdf::HkdfSha256 {
                hkdf::HKDF_SHA256
            } else {
                hkdf::HKDF_SHA384
            };
            // The legacy suites use no salt, i.e. HashLen zero bytes.
            let prk = hkdf::Salt::new(alg, &[]).extract(data_key.expose_secret());
            expand(&prk, &[&suite_id, message_id], derived)?;
        }
        Kdf::HkdfSha512 => {
            let keys = super::hkdf_sha512::derive_committing(
                message_id,
                data_key.expose_secret(),
                suite_id,
            );
            derived.copy_from_slice(&keys.content[..key_len]);
            commitment = Some(keys.commitment);
        }
    }
    Ok(MessageKeys {
        content: GcmKey::new(derived)?,
        commitment,
    })
}
