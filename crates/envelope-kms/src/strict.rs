//! The strict AWS KMS keyring and its multi-Region-key-aware variant.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use envelope_core::error::KeyringError;
use envelope_core::keyring::{decrypt_first_match, EdkUnwrapper, Keyring, UnwrapRequest};
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{DataKey, EncryptedDataKey, MultiKeyring};

use crate::arn::{mrk_match, KmsArn};
use crate::ops;
use crate::supplier::KmsClientSupplier;

/// Wraps data keys with one AWS KMS key, and unwraps only EDKs that key made.
///
/// - Encrypt: with no data key yet, `GenerateDataKey`; otherwise `Encrypt`.
///   Both send the full encryption context and the grant tokens. The EDK's
///   provider info is the key ARN from the response, so a keyring built
///   from an alias writes the key's ARN.
/// - Decrypt: only `aws-kms` EDKs whose provider info is this key (for the
///   MRK-aware variant: the same multi-Region key in any region) go to
///   `Decrypt`, with `KeyId` set to the configured key. The response must
///   name that key and carry a data key of the suite's length. A failure is
///   recorded and the next EDK is tried.
///
/// As in the official SDKs, a keyring configured with an alias or a bare
/// key id can encrypt but never matches an EDK on decrypt: decrypt needs the
/// key ARN.
#[derive(Clone)]
pub struct AwsKmsKeyring {
    key_id: String,
    mrk_aware: bool,
    grant_tokens: Vec<String>,
    supplier: KmsClientSupplier,
}

impl fmt::Debug for AwsKmsKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsKeyring")
            .field("key_id", &self.key_id)
            .field("mrk_aware", &self.mrk_aware)
            .field("grant_tokens", &self.grant_tokens.len())
            .finish_non_exhaustive()
    }
}

fn check_key_id(key_id: &str) -> Result<(), KeyringError> {
    if key_id.is_empty() {
        return Err(KeyringError::Config("AWS KMS key id is empty".into()));
    }
    if key_id.starts_with("arn:") {
        KmsArn::parse(key_id)
            .map_err(|e| KeyringError::Config(format!("AWS KMS key {key_id:?}: {e}")))?;
    }
    Ok(())
}

impl AwsKmsKeyring {
    /// A strict keyring for `key_id`: a key ARN, an alias ARN, a key id or
    /// `alias/NAME` (the last two in the supplier's default region).
    pub fn new(
        key_id: impl Into<String>,
        supplier: KmsClientSupplier,
    ) -> Result<Self, KeyringError> {
        let key_id = key_id.into();
        check_key_id(&key_id)?;
        Ok(Self {
            key_id,
            mrk_aware: false,
            grant_tokens: Vec::new(),
            supplier,
        })
    }

    /// A keyring aware of multi-Region keys: configured with a replica's
    /// ARN, it also decrypts EDKs that the same key wrote in other regions,
    /// calling KMS in the replica's region. For other keys it behaves as
    /// [`AwsKmsKeyring::new`].
    pub fn mrk_aware(
        key_id: impl Into<String>,
        supplier: KmsClientSupplier,
    ) -> Result<Self, KeyringError> {
        Ok(Self {
            mrk_aware: true,
            ..Self::new(key_id, supplier)?
        })
    }

    /// Sends `tokens` with every request.
    pub fn with_grant_tokens(mut self, tokens: Vec<String>) -> Self {
        self.grant_tokens = tokens;
        self
    }

    /// The configured key identifier.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn describe(&self) -> String {
        let kind = if self.mrk_aware {
            "AWS KMS MRK keyring"
        } else {
            "AWS KMS keyring"
        };
        format!("{kind} {}", self.key_id)
    }

    fn matches(&self, provider_info: &str) -> bool {
        if self.mrk_aware {
            mrk_match(&self.key_id, provider_info)
        } else {
            provider_info == self.key_id
        }
    }
}

#[async_trait]
impl Keyring for AwsKmsKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        let client = self.supplier.client_for_key(&self.key_id)?;
        let context = &materials.encryption_context;
        let edk = match &materials.data_key {
            None => {
                let (key, edk) = ops::generate(
                    &client,
                    &self.key_id,
                    materials.suite.key_len(),
                    context,
                    &self.grant_tokens,
                )
                .await?;
                materials.data_key = Some(key);
                edk
            }
            Some(key) => {
                ops::encrypt(&client, &self.key_id, key, context, &self.grant_tokens).await?
            }
        };
        materials.encrypted_data_keys.push(edk);
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
impl EdkUnwrapper for AwsKmsKeyring {
    fn describe(&self) -> String {
        AwsKmsKeyring::describe(self)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        ops::edk_key_arn(edk).is_some_and(|(info, _)| AwsKmsKeyring::matches(self, info))
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let client = self.supplier.client_for_key(&self.key_id)?;
        ops::decrypt(
            &client,
            &self.key_id,
            edk,
            request.suite.key_len(),
            request.encryption_context,
            &self.grant_tokens,
        )
        .await
    }
}

/// A multi-keyring over several KMS keys: the first generates the data key
/// (`GenerateDataKey`) and every other key adds an EDK (`Encrypt`). On
/// decrypt, each key is tried in order. Set `mrk_aware` for
/// [`AwsKmsKeyring::mrk_aware`] keyrings.
pub fn multi_key_keyring(
    key_ids: &[impl AsRef<str>],
    supplier: &KmsClientSupplier,
    mrk_aware: bool,
) -> Result<MultiKeyring, KeyringError> {
    let mut keyrings = Vec::with_capacity(key_ids.len());
    for key_id in key_ids {
        let keyring = if mrk_aware {
            AwsKmsKeyring::mrk_aware(key_id.as_ref(), supplier.clone())?
        } else {
            AwsKmsKeyring::new(key_id.as_ref(), supplier.clone())?
        };
        keyrings.push(Arc::new(keyring) as Arc<dyn Keyring>);
    }
    let mut keyrings = keyrings.into_iter();
    let generator = keyrings
        .next()
        .ok_or_else(|| KeyringError::Config("at least one AWS KMS key is needed".into()))?;
    MultiKeyring::new(Some(generator), keyrings.collect())
}
