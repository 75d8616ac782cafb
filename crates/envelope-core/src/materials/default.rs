//! The default materials manager: one keyring, a fresh data key and (for
//! signed suites) a fresh signing key per message.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    DecryptRequest, DecryptionMaterials, EncryptionMaterials, EncryptionRequest, MaterialsManager,
};
use crate::crypto::sign::VerifyingKey;
use crate::crypto::SigningKey;
use crate::error::{Error, PolicyError};
use crate::format::context::PUBLIC_KEY_FIELD;
use crate::keyring::Keyring;

/// Materials from one keyring, with the SDK's policy checks.
#[derive(Clone)]
pub struct DefaultMaterialsManager {
    keyring: Arc<dyn Keyring>,
}

impl DefaultMaterialsManager {
    /// A manager over `keyring`.
    pub fn new(keyring: Arc<dyn Keyring>) -> Self {
        Self { keyring }
    }
}

impl fmt::Debug for DefaultMaterialsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultMaterialsManager")
    }
}

#[async_trait]
impl MaterialsManager for DefaultMaterialsManager {
    async fn get_encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Arc<EncryptionMaterials>, Error> {
        let suite = request
            .suite
            .unwrap_or_else(|| request.commitment_policy.default_suite());
        request.commitment_policy.check_encrypt(suite)?;
        let mut context = request.encryption_context.clone();
        let signing_key = match suite.signature() {
            Some(algorithm) => {
                let key = SigningKey::generate(algorithm)?;
                context.insert(PUBLIC_KEY_FIELD, key.public_key_base64());
                Some(key)
            }
            None => None,
        };
        for key in &request.required_encryption_context_keys {
            if !context.contains_key(key) {
                return Err(PolicyError::ContextMismatch {
                    key: key.clone(),
                    reason: "required key is missing from the encryption context",
                }
                .into());
            }
        }
        let mut materials = EncryptionMaterials::new(suite, context);
        materials.signing_key = signing_key;
        materials.required_encryption_context_keys =
            request.required_encryption_context_keys.clone();
        self.keyring.on_encrypt(&mut materials).await?;
        match &materials.data_key {
            Some(key) if key.len() == suite.key_len() => {}
            _ => {
                return Err(PolicyError::InvalidMaterials(
                    "the keyring produced no data key of the suite's length",
                )
                .into())
            }
        }
        if materials.encrypted_data_keys.is_empty() {
            return Err(PolicyError::InvalidMaterials(
                "the keyring produced no encrypted data key",
            )
            .into());
        }
        Ok(Arc::new(materials))
    }

    async fn decrypt_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<Arc<DecryptionMaterials>, Error> {
        let suite = request.suite;
        request.commitment_policy.check_decrypt(suite)?;
        let public_key = request.encryption_context.get(PUBLIC_KEY_FIELD);
        let verifying_key = match (suite.signature(), public_key) {
            (Some(algorithm), Some(encoded)) => Some(VerifyingKey::from_base64(algorithm, encoded)?),
            (Some(_), None) => {
                return Err(PolicyError::PublicKeyPresence(
                    "the message's suite is signed but its encryption context has no aws-crypto-public-key",
                )
                .into())
            }
            (None, Some(_)) => {
                return Err(PolicyError::PublicKeyPresence(
                    "the message's suite is unsigned but its encryption context has an aws-crypto-public-key",
                )
                .into())
            }
            (None, None) => None,
        };
        let mut context = request.encryption_context.clone();
        let mut required_keys = Vec::new();
        if let Some(reproduced) = request.reproduced_encryption_context {
            for (key, value) in reproduced.iter() {
                match context.get(key) {
                    Some(stored) if stored == value => {}
                    Some(_) => {
                        return Err(PolicyError::ContextMismatch {
                            key: key.to_owned(),
                            reason: "the message stores a different value",
                        }
                        .into())
                    }
                    // Not stored: it must be one the header authenticates,
                    // which the header tag will confirm or refute.
                    None => {
                        context.insert(key, value);
                        required_keys.push(key.to_owned());
                    }
                }
            }
        }
        let mut materials = DecryptionMaterials::new(suite, context);
        materials.max_unwrap_attempts = request.max_unwrap_attempts;
        materials.required_encryption_context_keys = required_keys;
        materials.verifying_key = verifying_key;
        self.keyring
            .on_decrypt(&mut materials, request.encrypted_data_keys)
            .await?;
        match &materials.data_key {
            Some(key) if key.len() == suite.key_len() => Ok(Arc::new(materials)),
            _ => Err(PolicyError::InvalidMaterials(
                "the keyring returned no data key of the suite's length",
            )
            .into()),
        }
    }
}
