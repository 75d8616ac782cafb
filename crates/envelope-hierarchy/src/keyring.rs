//! The `aws-kms-hierarchy` keyring: wraps each message's data key under a
//! tenant's branch key, fetched from the key store once per TTL.

use std::sync::Arc;

use async_trait::async_trait;
use envelope_core::error::KeyringError;
use envelope_core::keyring::{decrypt_first_match, EdkUnwrapper, Keyring, UnwrapRequest};
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{DataKey, EncryptedDataKey, EncryptionContext};
use futures_util::FutureExt;

use crate::branch_key::BranchKey;
use crate::cache::{BranchKeyCache, CacheKey};
use crate::error::{HierarchyError, HierarchyErrorKind};
use crate::store::BranchKeyStore;
use crate::wrap::{self, WrappedKey, PROVIDER_ID};

/// Chooses a branch key id from a message's encryption context: the
/// multi-tenant case (`tenant=acme` -> acme's branch key).
pub trait BranchKeyIdSupplier: Send + Sync {
    /// The branch key id for `context`.
    fn branch_key_id(&self, context: &EncryptionContext) -> Result<String, HierarchyError>;
}

impl<F> BranchKeyIdSupplier for F
where
    F: Fn(&EncryptionContext) -> Result<String, HierarchyError> + Send + Sync,
{
    fn branch_key_id(&self, context: &EncryptionContext) -> Result<String, HierarchyError> {
        self(context)
    }
}

enum BranchKeyId {
    Fixed(Arc<str>),
    Supplied(Arc<dyn BranchKeyIdSupplier>),
}

/// The hierarchical keyring. Build one with [`HierarchicalKeyring::builder`].
pub struct HierarchicalKeyring {
    store: Arc<dyn BranchKeyStore>,
    store_name: Arc<str>,
    cache: BranchKeyCache,
    partition: Arc<str>,
    branch_key_id: BranchKeyId,
}

/// Builds a [`HierarchicalKeyring`].
pub struct HierarchicalKeyringBuilder {
    store: Arc<dyn BranchKeyStore>,
    cache: Option<BranchKeyCache>,
    partition: String,
    branch_key_id: Option<BranchKeyId>,
}

impl HierarchicalKeyringBuilder {
    /// Always this branch key.
    pub fn branch_key_id(mut self, id: impl Into<String>) -> Self {
        self.branch_key_id = Some(BranchKeyId::Fixed(Arc::from(id.into())));
        self
    }

    /// The branch key chosen per message from its encryption context.
    pub fn branch_key_id_supplier(mut self, supplier: impl BranchKeyIdSupplier + 'static) -> Self {
        self.branch_key_id = Some(BranchKeyId::Supplied(Arc::new(supplier)));
        self
    }

    /// The cache to use (share one between keyrings); by default a cache of
    /// 1,000 keys kept 10 minutes.
    pub fn cache(mut self, cache: BranchKeyCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Keeps this keyring's entries apart from other keyrings' in a shared
    /// cache (as the official SDKs' partition id does).
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = partition.into();
        self
    }

    /// The keyring.
    pub fn build(self) -> Result<HierarchicalKeyring, HierarchyError> {
        let branch_key_id = self.branch_key_id.ok_or_else(|| {
            HierarchyError::new(
                HierarchyErrorKind::Config,
                "a branch key id or a branch key id supplier is required",
            )
        })?;
        Ok(HierarchicalKeyring {
            store_name: self.store.logical_name().into(),
            store: self.store,
            cache: self
                .cache
                .unwrap_or_else(|| BranchKeyCache::new(1000, std::time::Duration::from_secs(600))),
            partition: self.partition.into(),
            branch_key_id,
        })
    }
}

impl std::fmt::Debug for HierarchicalKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HierarchicalKeyring")
            .field("store", &self.store_name)
            .field("partition", &self.partition)
            .field(
                "branch_key_id",
                &match &self.branch_key_id {
                    BranchKeyId::Fixed(id) => &**id,
                    BranchKeyId::Supplied(_) => "<supplier>",
                },
            )
            .field("cache", &self.cache)
            .finish()
    }
}

impl HierarchicalKeyring {
    /// A builder over `store`.
    pub fn builder(store: Arc<dyn BranchKeyStore>) -> HierarchicalKeyringBuilder {
        HierarchicalKeyringBuilder {
            store,
            cache: None,
            partition: String::new(),
            branch_key_id: None,
        }
    }

    /// The cache this keyring uses.
    pub fn cache(&self) -> &BranchKeyCache {
        &self.cache
    }

    /// The branch key id for `context`; a fixed id is shared, not copied.
    fn resolve(&self, context: &EncryptionContext) -> Result<Arc<str>, HierarchyError> {
        match &self.branch_key_id {
            BranchKeyId::Fixed(id) => Ok(id.clone()),
            BranchKeyId::Supplied(supplier) => supplier.branch_key_id(context).map(Arc::from),
        }
    }

    fn cache_key(
        &self,
        branch_key_id: &Arc<str>,
        version: Option<crate::BranchKeyVersion>,
    ) -> CacheKey {
        CacheKey {
            partition: self.partition.clone(),
            store: self.store_name.clone(),
            branch_key_id: branch_key_id.clone(),
            version,
        }
    }

    async fn active(&self, branch_key_id: &Arc<str>) -> Result<Arc<BranchKey>, HierarchyError> {
        let store = self.store.clone();
        let id = branch_key_id.clone();
        self.cache
            .get(self.cache_key(branch_key_id, None), move || {
                let (store, id) = (store.clone(), id.clone());
                async move { store.get_active(&id).await }.boxed()
            })
            .await
    }

    async fn version(
        &self,
        branch_key_id: &Arc<str>,
        version: crate::BranchKeyVersion,
    ) -> Result<Arc<BranchKey>, HierarchyError> {
        let store = self.store.clone();
        let id = branch_key_id.clone();
        self.cache
            .get(self.cache_key(branch_key_id, Some(version)), move || {
                let (store, id) = (store.clone(), id.clone());
                async move { store.get_version(&id, version).await }.boxed()
            })
            .await
    }

    fn describe(&self, branch_key_id: &str) -> String {
        format!("aws-kms-hierarchy keyring (branch key {branch_key_id})")
    }
}

#[async_trait]
impl Keyring for HierarchicalKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        let branch_key_id = self.resolve(&materials.encryption_context)?;
        let branch_key = self.active(&branch_key_id).await?;
        let failed = |reason: String| KeyringError::WrapFailed {
            keyring: self.describe(&branch_key_id),
            reason,
        };
        let serialized = materials
            .encryption_context
            .serialize()
            .map_err(|e| failed(e.to_string()))?;
        // One call to the random source per message: the salt and IV, and
        // the data key when this keyring generates it.
        let mut random = zeroize::Zeroizing::new([0u8; wrap::RANDOM_LEN + 32]);
        let key_len = materials.suite.key_len();
        let generate = materials.data_key.is_none();
        let drawn = if generate {
            wrap::RANDOM_LEN + key_len
        } else {
            wrap::RANDOM_LEN
        };
        aws_lc_rs::rand::fill(&mut random[..drawn])
            .map_err(|_| failed("the random source failed".into()))?;
        if generate {
            materials.data_key = Some(
                DataKey::from_slice(&random[wrap::RANDOM_LEN..drawn])
                    .map_err(|e| failed(e.to_string()))?,
            );
        }
        let data_key = materials
            .data_key
            .as_ref()
            .ok_or_else(|| failed("no data key".into()))?;
        let salt_iv: &[u8; wrap::RANDOM_LEN] = random[..wrap::RANDOM_LEN]
            .try_into()
            .map_err(|_| failed("random length".into()))?;
        let ciphertext = wrap::wrap(
            branch_key.kdf(),
            &branch_key_id,
            &branch_key.version(),
            &serialized,
            data_key.expose_secret(),
            salt_iv,
        )?;
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: PROVIDER_ID.to_owned(),
            provider_info: branch_key_id.as_bytes().to_vec(),
            ciphertext,
        });
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
        let branch_key_id = self.resolve(&materials.encryption_context)?;
        let unwrapper = Unwrapper {
            keyring: self,
            branch_key_id,
        };
        decrypt_first_match(&unwrapper, materials, edks).await
    }
}

/// One decrypt's side of the shared skeleton: the branch key id is the
/// one the context selects.
struct Unwrapper<'a> {
    keyring: &'a HierarchicalKeyring,
    branch_key_id: Arc<str>,
}

#[async_trait]
impl EdkUnwrapper for Unwrapper<'_> {
    fn describe(&self) -> String {
        self.keyring.describe(&self.branch_key_id)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        edk.provider_id == PROVIDER_ID && edk.provider_info == self.branch_key_id.as_bytes()
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let key_len = request.suite.key_len();
        let wrapped = WrappedKey::parse(&edk.ciphertext, key_len)
            .map_err(|e| e.for_key(&self.branch_key_id))?;
        let branch_key = self
            .keyring
            .version(&self.branch_key_id, wrapped.version)
            .await?;
        let data_key = wrap::unwrap(
            branch_key.kdf(),
            &self.branch_key_id,
            &wrapped,
            request.serialized_context,
        )?;
        DataKey::from_slice(&data_key).map_err(|e| {
            HierarchyError::new(HierarchyErrorKind::InvalidEdk, e.to_string())
                .for_key(&self.branch_key_id)
                .into()
        })
    }
}
