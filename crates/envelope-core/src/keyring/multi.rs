//! The multi-keyring: one generator and any number of children.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::Keyring;
use crate::error::KeyringError;
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Combines keyrings. On encrypt the generator makes the data key and every
/// keyring wraps it; any failure fails the encryption. On decrypt the
/// generator and then each child are tried in order; the first to unwrap wins.
#[derive(Clone)]
pub struct MultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl MultiKeyring {
    /// A multi-keyring. Without a generator it can only encrypt when the
    /// materials already carry a data key (as in decrypt-only setups).
    pub fn new(
        generator: Option<Arc<dyn Keyring>>,
        children: Vec<Arc<dyn Keyring>>,
    ) -> Result<Self, KeyringError> {
        if generator.is_none() && children.is_empty() {
            return Err(KeyringError::Config(
                "a multi-keyring needs at least one keyring".into(),
            ));
        }
        Ok(Self {
            generator,
            children,
        })
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Keyring>> {
        self.generator.iter().chain(self.children.iter())
    }
}

impl fmt::Debug for MultiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKeyring")
            .field("has_generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

#[async_trait]
impl Keyring for MultiKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        match &self.generator {
            Some(generator) => generator.on_encrypt(materials).await?,
            None if materials.data_key.is_none() => {
                return Err(KeyringError::CannotGenerate {
                    keyring: "multi-keyring without a generator".into(),
                })
            }
            None => {}
        }
        for child in &self.children {
            child.on_encrypt(materials).await?;
        }
        Ok(())
    }

    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        if materials.data_key.is_some() {
            return Ok(());
        }
        let mut errors = Vec::new();
        for keyring in self.all() {
            match keyring.on_decrypt(materials, edks).await {
                Ok(()) if materials.data_key.is_some() => return Ok(()),
                Ok(()) => {}
                Err(error) => errors.push(error),
            }
        }
        Err(KeyringError::AllFailed(errors))
    }
}
