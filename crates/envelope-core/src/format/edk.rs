//! Encrypted data keys: the data key wrapped by one keyring each.

use std::fmt;

use super::reader::{put_short_bytes, Reader};
use crate::error::FormatError;

/// One wrapped copy of the data key, as stored in the header.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncryptedDataKey {
    /// Who wrapped it: `aws-kms`, or a raw keyring's namespace.
    pub provider_id: String,
    /// Which key wrapped it: a KMS key ARN, or raw keyring key info.
    pub provider_info: Vec<u8>,
    /// The wrapped data key.
    pub ciphertext: Vec<u8>,
}

impl EncryptedDataKey {
    pub(crate) fn parse(reader: &mut Reader<'_>) -> Result<Self, FormatError> {
        let provider_id = reader.short_bytes("EDK provider id")?;
        let provider_id = std::str::from_utf8(provider_id)
            .map_err(|_| FormatError::NotUtf8("EDK provider id"))?
            .to_owned();
        let provider_info = reader.short_bytes("EDK provider info")?.to_vec();
        let ciphertext = reader.short_bytes("EDK ciphertext")?.to_vec();
        Ok(Self {
            provider_id,
            provider_info,
            ciphertext,
        })
    }

    pub(crate) fn serialize_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        put_short_bytes(out, self.provider_id.as_bytes(), "EDK provider id")?;
        put_short_bytes(out, &self.provider_info, "EDK provider info")?;
        put_short_bytes(out, &self.ciphertext, "EDK ciphertext")
    }

    /// Serialized size in bytes.
    pub(crate) fn serialized_len(&self) -> usize {
        6 + self.provider_id.len() + self.provider_info.len() + self.ciphertext.len()
    }
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field(
                "provider_info",
                &String::from_utf8_lossy(&self.provider_info),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}
