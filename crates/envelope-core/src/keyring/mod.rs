//! Keyrings generate, wrap and unwrap data keys.
//!
//! The trait is async because the keyrings that matter most (AWS KMS, XKS)
//! call a network service. Local keyrings complete without suspending.
//! A keyring sees materials by `&mut`: on encrypt it sets the data key if
//! none is set yet and appends its EDK; on decrypt it sets the data key if
//! it can unwrap one of the EDKs.

mod multi;
mod pem;
mod raw_aes;
mod raw_rsa;
mod unwrap;

use async_trait::async_trait;

pub use multi::MultiKeyring;
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::{RawRsaKeyring, RsaPadding};
pub use unwrap::{decrypt_first_match, EdkUnwrapper, UnwrapRequest};

use crate::error::KeyringError;
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// Wraps and unwraps data keys.
#[async_trait]
pub trait Keyring: Send + Sync {
    /// Generates the data key if `materials` has none, then wraps it and
    /// appends one encrypted data key.
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError>;

    /// Sets the data key in `materials` from the first of `edks` this
    /// keyring can unwrap. Does nothing if a data key is already set.
    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError>;
}

/// Namespaces starting with this are reserved for AWS KMS keyrings.
pub(crate) const KMS_PROVIDER_PREFIX: &str = "aws-kms";
