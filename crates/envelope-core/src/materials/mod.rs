//! Cryptographic materials and the managers that produce them.
//!
//! A materials manager turns a request (context, suite, policy) into the
//! materials one message needs: the data key, its EDKs, the signing key.
//! Managers are async because keyrings may call a key service, but they may
//! also answer synchronously through [`MaterialsManager::ready_encryption_materials`]
//! and [`MaterialsManager::ready_decryption_materials`]: that is how a cache
//! hit encrypts without awaiting anything.

mod cache;
mod cache_key;
mod default;
mod required_context;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

pub use cache::{
    CacheStats, CachingMaterialsManager, CachingMaterialsManagerBuilder, MaterialsCache,
    DEFAULT_MAX_MESSAGES, MAX_BYTES_LIMIT,
};
pub use default::DefaultMaterialsManager;
pub use required_context::RequiredContextMaterialsManager;

use crate::crypto::sign::VerifyingKey;
use crate::crypto::{DataKey, SigningKey};
use crate::error::{Error, FormatError};
use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::policy::CommitmentPolicy;
use crate::suite::AlgorithmSuite;

/// Everything needed to encrypt a message.
#[derive(Debug)]
pub struct EncryptionMaterials {
    /// The suite to encrypt with.
    pub suite: AlgorithmSuite,
    /// The full encryption context, including `aws-crypto-public-key` for
    /// signed suites and the pairs that are authenticated but not stored.
    pub encryption_context: EncryptionContext,
    /// Keys of pairs that are authenticated but not stored in the header.
    pub required_encryption_context_keys: Vec<String>,
    /// The wrapped copies of the data key.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The plaintext data key (set by the generating keyring).
    pub data_key: Option<DataKey>,
    /// The signing key, for signed suites.
    pub signing_key: Option<SigningKey>,
    serialized: OnceLock<SerializedContexts>,
}

/// The two serialized halves of the context, computed once per materials
/// so that cached materials do not re-serialize on every message.
#[derive(Debug)]
pub(crate) struct SerializedContexts {
    pub(crate) stored: Vec<u8>,
    pub(crate) authenticated_only: Vec<u8>,
}

impl EncryptionMaterials {
    /// Empty materials for `suite` and `encryption_context`.
    pub fn new(suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        Self {
            suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            encrypted_data_keys: Vec::new(),
            data_key: None,
            signing_key: None,
            serialized: OnceLock::new(),
        }
    }

    /// The data key, generated first if no keyring has set one yet: what a
    /// keyring that can generate does before wrapping.
    pub fn data_key_or_generate(&mut self) -> Result<&DataKey, crate::error::CryptoError> {
        if self.data_key.is_none() {
            self.data_key = Some(DataKey::generate(self.suite.key_len())?);
        }
        self.data_key
            .as_ref()
            .ok_or(crate::error::CryptoError::Primitive("data key generation"))
    }

    pub(crate) fn serialized_contexts(&self) -> Result<&SerializedContexts, FormatError> {
        if let Some(done) = self.serialized.get() {
            return Ok(done);
        }
        let (stored, authenticated_only) = split_context(
            &self.encryption_context,
            &self.required_encryption_context_keys,
        );
        let computed = SerializedContexts {
            stored: stored.serialize()?,
            authenticated_only: authenticated_only.serialize()?,
        };
        Ok(self.serialized.get_or_init(|| computed))
    }
}

/// Splits a context into (stored, authenticated-only) by the required keys.
pub(crate) fn split_context(
    context: &EncryptionContext,
    required_keys: &[String],
) -> (EncryptionContext, EncryptionContext) {
    let mut stored = EncryptionContext::new();
    let mut authenticated_only = EncryptionContext::new();
    for (key, value) in context.iter() {
        if required_keys.iter().any(|k| k == key) {
            authenticated_only.insert(key, value);
        } else {
            stored.insert(key, value);
        }
    }
    (stored, authenticated_only)
}

/// Everything needed to decrypt a message.
#[derive(Debug)]
pub struct DecryptionMaterials {
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The stored context plus the reproduced pairs that are authenticated only.
    pub encryption_context: EncryptionContext,
    /// Keys of pairs that the header authenticates but does not store.
    pub required_encryption_context_keys: Vec<String>,
    /// The unwrapped data key.
    pub data_key: Option<DataKey>,
    /// How many unwrap attempts may fail for this decrypt, over all
    /// keyrings (see [`DecryptRequest::max_unwrap_attempts`]).
    pub max_unwrap_attempts: usize,
    /// Unwrap attempts made so far (by keyrings using
    /// [`decrypt_first_match`](crate::keyring::decrypt_first_match)).
    pub(crate) unwrap_attempts: usize,
    pub(crate) verifying_key: Option<VerifyingKey>,
}

/// The default bound on failed unwrap attempts per decrypt: a message
/// whose EDKs all name the caller's key (an RSA private-key operation, a
/// KMS call each) costs at most this many before it fails. The official
/// SDKs have no such bound (only an optional maximum number of EDKs).
pub const DEFAULT_MAX_UNWRAP_ATTEMPTS: usize = 10;

impl DecryptionMaterials {
    /// Materials awaiting a data key.
    pub fn new(suite: AlgorithmSuite, encryption_context: EncryptionContext) -> Self {
        Self {
            suite,
            encryption_context,
            required_encryption_context_keys: Vec::new(),
            data_key: None,
            max_unwrap_attempts: DEFAULT_MAX_UNWRAP_ATTEMPTS,
            unwrap_attempts: 0,
            verifying_key: None,
        }
    }

    /// The serialized authenticated-only pairs, for the header tag's AAD.
    pub(crate) fn authenticated_only_context(&self) -> Result<Vec<u8>, FormatError> {
        // The usual case, on the cache-hit path: nothing to split or copy.
        if self.required_encryption_context_keys.is_empty() {
            return Ok(Vec::new());
        }
        split_context(
            &self.encryption_context,
            &self.required_encryption_context_keys,
        )
        .1
        .serialize()
    }
}

/// What an encryption needs materials for.
#[derive(Clone, Debug)]
pub struct EncryptionRequest<'a> {
    /// The caller's encryption context.
    pub encryption_context: &'a EncryptionContext,
    /// The suite the caller asked for, if any.
    pub suite: Option<AlgorithmSuite>,
    /// The commitment policy in force.
    pub commitment_policy: CommitmentPolicy,
    /// The plaintext length, when known in advance.
    pub plaintext_length: Option<u64>,
    /// Context keys to authenticate without storing.
    pub required_encryption_context_keys: Vec<String>,
}

/// What a decryption needs materials for.
#[derive(Clone, Debug)]
pub struct DecryptRequest<'a> {
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The commitment policy in force.
    pub commitment_policy: CommitmentPolicy,
    /// The message's EDKs.
    pub encrypted_data_keys: &'a [EncryptedDataKey],
    /// The context stored in the header.
    pub encryption_context: &'a EncryptionContext,
    /// Pairs the caller supplies again: stored ones must match, the others
    /// must be authenticated by the header.
    pub reproduced_encryption_context: Option<&'a EncryptionContext>,
    /// How many unwrap attempts may fail before the decrypt gives up
    /// ([`DEFAULT_MAX_UNWRAP_ATTEMPTS`] unless the client raised it).
    pub max_unwrap_attempts: usize,
}

/// Produces materials for each message.
#[async_trait]
pub trait MaterialsManager: Send + Sync {
    /// Materials to encrypt one message.
    async fn get_encryption_materials(
        &self,
        request: &EncryptionRequest<'_>,
    ) -> Result<Arc<EncryptionMaterials>, Error>;

    /// Materials to decrypt one message.
    async fn decrypt_materials(
        &self,
        request: &DecryptRequest<'_>,
    ) -> Result<Arc<DecryptionMaterials>, Error>;

    /// Encryption materials available right now without awaiting (a cache
    /// hit), or `None` to take the async path.
    fn ready_encryption_materials(
        &self,
        _request: &EncryptionRequest<'_>,
    ) -> Option<Result<Arc<EncryptionMaterials>, Error>> {
        None
    }

    /// Decryption materials available right now without awaiting, or `None`.
    fn ready_decryption_materials(
        &self,
        _request: &DecryptRequest<'_>,
    ) -> Option<Result<Arc<DecryptionMaterials>, Error>> {
        None
    }
}
