use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;

/// A plaintext data key: the secret that every message key is derived from.
///
/// It is zeroized on drop and never printed: `Debug` shows only its length.
/// There is no `Clone`, so a data key lives in exactly one place.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    bytes: [u8; 32],
    len: u8,
}

impl DataKey {
    /// Copies a data key of 16, 24 or 32 bytes.
    pub fn from_slice(key: &[u8]) -> Result<Self, CryptoError> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::KeyLength {
                what: "data key",
                expected: 32,
                actual: key.len(),
            });
        }
        let mut bytes = [0u8; 32];
        bytes[..key.len()].copy_from_slice(key);
        Ok(Self {
            bytes,
            len: key.len() as u8,
        })
    }

    /// Generates a random data key of `len` bytes (16, 24 or 32).
    pub fn generate(len: usize) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        let target = bytes.get_mut(..len).ok_or(CryptoError::KeyLength {
            what: "data key",
            expected: 32,
            actual: len,
        })?;
        super::rng::fill(target)?;
        let key = Self::from_slice(&bytes[..len]);
        bytes.zeroize();
        key
    }

    /// The key bytes. Named so that every use stands out in review: only
    /// keyrings (to wrap the key) and the KDF should call it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Always false: a data key has 16, 24 or 32 bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(<redacted {} bytes>)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = DataKey::from_slice(&[0xAB; 32]).expect("valid length");
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn rejects_bad_lengths() {
        assert!(DataKey::from_slice(&[0; 31]).is_err());
        assert!(DataKey::generate(33).is_err());
        assert_eq!(DataKey::generate(24).map(|k| k.len()).ok(), Some(24));
    }
}
