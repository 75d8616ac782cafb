//! A manager that requires certain encryption context keys and keeps their
//! pairs out of the message: authenticated, but not stored.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    DecryptRequest, DecryptionMaterials, EncryptionMaterials, EncryptionRequest, MaterialsManager,
};
use crate::error::{Error, PolicyError};

/// Wraps another manager. Every encryption context must contain the
/// required keys; their pairs are left out of the header and bound through
/// the header tag, so decrypt must be given them again.
pub struct RequiredContextMaterialsManager {
    inner: Arc<dyn MaterialsManager>,
    required_keys: Vec<String>,
}

impl RequiredContextMaterialsManager {
    /// Requires `required_keys` on top of `inner`.
    pub fn new(
        inner: Arc<dyn MaterialsManager>,
        required_keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        let mut required_keys: Vec<String> = required_keys.into_iter().map(Into::into).collect();
        required_keys.sort();
        required_keys.dedup();
        Self {
            inner,
            required_keys,
        }
    }
}

impl fmt::Debug for RequiredContextMaterialsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredContextMaterialsManager")
            .field("required_keys", &self.required_keys)
            .finish()
    }
}

#[async_trait]
impl MaterialsManager for RequiredContextMaterialsManager {
    async fn get_encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Arc<EncryptionMaterials>, Error> {
        for key in &self.required_keys {
            if !request.encryption_context.contains_key(key) {
                return Err(PolicyError::ContextMismatch {
                    key: key.clone(),
                    reason: "required key is missing from the encryption context",
                }
                .into());
            }
        }
        let mut request = request.clone();
        for key in &self.required_keys {
            if !request.required_encryption_context_keys.contains(key) {
                request.required_encryption_context_keys.push(key.clone());
            }
        }
        self.inner.get_encryption_materials(&request).await
    }

    async fn decrypt_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<Arc<DecryptionMaterials>, Error> {
        for key in &self.required_keys {
            if !request
                .reproduced_encryption_context
                .is_some_and(|reproduced| reproduced.contains_key(key))
            {
                return Err(PolicyError::ContextMismatch {
                    key: key.clone(),
                    reason: "required key was not supplied on decrypt",
                }
                .into());
            }
        }
        self.inner.decrypt_materials(request).await
    }
}
