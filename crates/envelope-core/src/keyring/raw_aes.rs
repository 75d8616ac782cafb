//! The raw AES keyring: wraps data keys with a local AES-GCM key.
//!
//! Wire-compatible with the official SDKs' raw AES keyring and the legacy
//! `RawMasterKey`: provider id = namespace; provider info = key name ‖ tag
//! length in bits (u32) ‖ IV length (u32) ‖ IV; ciphertext = wrapped key ‖
//! tag; AAD = the full serialized encryption context.

use std::fmt;

use async_trait::async_trait;

use super::unwrap::{decrypt_first_match, EdkUnwrapper, UnwrapRequest};
use super::{Keyring, KMS_PROVIDER_PREFIX};
use crate::crypto::aead::{GcmKey, IV_LEN, TAG_LEN};
use crate::crypto::{rng, DataKey};
use crate::error::KeyringError;
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

const TAG_BITS: u32 = (TAG_LEN * 8) as u32;

/// A keyring holding one AES-128, AES-192 or AES-256 wrapping key.
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    key: GcmKey,
}

impl RawAesKeyring {
    /// A keyring for `wrapping_key` (16, 24 or 32 bytes) named
    /// `namespace`/`name`. The namespace must not start with `aws-kms`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        wrapping_key: &[u8],
    ) -> Result<Self, KeyringError> {
        let namespace = namespace.into();
        if namespace.starts_with(KMS_PROVIDER_PREFIX) {
            return Err(KeyringError::Config(format!(
                "raw AES key namespace {namespace:?} must not start with \"aws-kms\""
            )));
        }
        let key = GcmKey::new(wrapping_key).map_err(|_| {
            KeyringError::Config(format!(
                "raw AES wrapping key must be 16, 24 or 32 bytes, got {}",
                wrapping_key.len()
            ))
        })?;
        Ok(Self {
            namespace,
            name: name.into(),
            key,
        })
    }

    fn describe(&self) -> String {
        format!("raw AES keyring {}/{}", self.namespace, self.name)
    }

    /// The IV if `edk` names this keyring with the expected tag and IV lengths.
    fn matching_iv(&self, edk: &EncryptedDataKey) -> Option<[u8; IV_LEN]> {
        if edk.provider_id != self.namespace {
            return None;
        }
        let info = edk.provider_info.strip_prefix(self.name.as_bytes())?;
        let (lengths, iv) = info.split_at_checked(8)?;
        if lengths[..4] != TAG_BITS.to_be_bytes() || lengths[4..] != (IV_LEN as u32).to_be_bytes() {
            return None;
        }
        iv.try_into().ok()
    }
}

impl fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[async_trait]
impl Keyring for RawAesKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        let wrap_failed = |reason: &str| KeyringError::WrapFailed {
            keyring: self.describe(),
            reason: reason.to_owned(),
        };
        let aad = materials
            .encryption_context
            .serialize()
            .map_err(|e| wrap_failed(&e.to_string()))?;
        let data_key = materials
            .data_key_or_generate()
            .map_err(|e| wrap_failed(&e.to_string()))?;
        let mut iv = [0u8; IV_LEN];
        rng::fill(&mut iv).map_err(|e| wrap_failed(&e.to_string()))?;
        let mut ciphertext = Vec::with_capacity(data_key.len() + TAG_LEN);
        ciphertext.extend_from_slice(data_key.expose_secret());
        let tag = self
            .key
            .seal_in_place(iv, &aad, &mut ciphertext)
            .map_err(|e| wrap_failed(&e.to_string()))?;
        ciphertext.extend_from_slice(&tag);
        let mut provider_info = Vec::with_capacity(self.name.len() + 8 + IV_LEN);
        provider_info.extend_from_slice(self.name.as_bytes());
        provider_info.extend_from_slice(&TAG_BITS.to_be_bytes());
        provider_info.extend_from_slice(&(IV_LEN as u32).to_be_bytes());
        provider_info.extend_from_slice(&iv);
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info,
            ciphertext,
        });
        Ok(())
    }

    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        decrypt_first_match(self, materials, edks).await
    }
}

#[async_trait]
impl EdkUnwrapper for RawAesKeyring {
    fn describe(&self) -> String {
        RawAesKeyring::describe(self)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        self.matching_iv(edk).is_some()
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let failed = |reason: String| KeyringError::UnwrapFailed {
            keyring: RawAesKeyring::describe(self),
            reason,
        };
        let authentication_failed =
            || failed("AES-GCM authentication failed (wrong key or encryption context)".into());
        let iv = self.matching_iv(edk).ok_or_else(authentication_failed)?;
        let (wrapped, tag) = edk
            .ciphertext
            .split_at_checked(edk.ciphertext.len().saturating_sub(TAG_LEN))
            .ok_or_else(authentication_failed)?;
        let tag = <&[u8; TAG_LEN]>::try_from(tag).map_err(|_| authentication_failed())?;
        if wrapped.len() != request.suite.key_len() {
            return Err(authentication_failed());
        }
        let mut key = zeroize::Zeroizing::new(wrapped.to_vec());
        self.key
            .open_in_place(iv, request.serialized_context, &mut key, tag)
            .map_err(|_| authentication_failed())?;
        DataKey::from_slice(&key).map_err(|e| failed(e.to_string()))
    }
}
