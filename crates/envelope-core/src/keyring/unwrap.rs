//! The shared body of [`Keyring::on_decrypt`](super::Keyring::on_decrypt)
//! for keyrings that unwrap one encrypted data key at a time.
//!
//! Every such keyring does the same around its own unwrap: nothing when the
//! materials already hold a data key; the encryption context serialized
//! once; each EDK that names this keyring's key tried in order until one
//! unwraps; the failures collected into one error (no match at all is
//! [`KeyringError::NoMatchingKey`]). A keyring implements [`EdkUnwrapper`]
//! (which EDKs are its own, and how to unwrap one) and calls
//! [`decrypt_first_match`] from `on_decrypt`.

use async_trait::async_trait;

use crate::crypto::DataKey;
use crate::error::KeyringError;
use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::materials::DecryptionMaterials;
use crate::suite::AlgorithmSuite;

/// What unwrapping one EDK may need, computed once per decrypt.
#[derive(Debug)]
pub struct UnwrapRequest<'a> {
    /// The message's suite: the data key must be `suite.key_len()` bytes.
    pub suite: AlgorithmSuite,
    /// The message's encryption context.
    pub encryption_context: &'a EncryptionContext,
    /// The encryption context serialized as in the message header: the AAD
    /// of raw AES and XKS wrapping.
    pub serialized_context: &'a [u8],
}

/// One keyring's side of [`decrypt_first_match`].
#[async_trait]
pub trait EdkUnwrapper: Send + Sync {
    /// Names the keyring in errors (no key material).
    fn describe(&self) -> String;

    /// Whether `edk` names this keyring's key. Only those are unwrapped;
    /// when none is, the decrypt fails with `NoMatchingKey`.
    fn matches(&self, edk: &EncryptedDataKey) -> bool;

    /// Unwraps one matching EDK into a data key of the suite's length.
    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError>;
}

/// Sets the data key in `materials` from the first of `edks` that
/// `unwrapper` matches and unwraps. Does nothing if a data key is already
/// set. Each attempt counts against the decrypt's
/// `max_unwrap_attempts` (shared by every keyring of the decrypt); once it
/// is reached the decrypt fails with `TooManyAttempts`. On failure: `NoMatchingKey` when no EDK matched, the one error when
/// every attempt failed the same way, else `AllFailed` with each distinct
/// failure once (in order; repeats of the previous failure are dropped, so
/// a message with thousands of identical EDKs yields one line, not
/// thousands).
pub async fn decrypt_first_match<U: EdkUnwrapper + ?Sized>(
    unwrapper: &U,
    materials: &mut DecryptionMaterials,
    edks: &[EncryptedDataKey],
) -> Result<(), KeyringError> {
    if materials.data_key.is_some() {
        return Ok(());
    }
    let serialized_context =
        materials
            .encryption_context
            .serialize()
            .map_err(|e| KeyringError::UnwrapFailed {
                keyring: unwrapper.describe(),
                reason: e.to_string(),
            })?;
    let request = UnwrapRequest {
        suite: materials.suite,
        encryption_context: &materials.encryption_context,
        serialized_context: &serialized_context,
    };
    let mut errors: Vec<KeyringError> = Vec::new();
    for edk in edks.iter().filter(|edk| unwrapper.matches(edk)) {
        if materials.unwrap_attempts >= materials.max_unwrap_attempts {
            return Err(KeyringError::TooManyAttempts {
                limit: materials.max_unwrap_attempts,
                errors,
            });
        }
        materials.unwrap_attempts += 1;
        match unwrapper.unwrap(edk, &request).await {
            Ok(key) => {
                materials.data_key = Some(key);
                return Ok(());
            }
            Err(error) => {
                if errors.last() != Some(&error) {
                    errors.push(error);
                }
            }
        }
    }
    Err(match errors.len() {
        0 => KeyringError::NoMatchingKey {
            keyring: unwrapper.describe(),
        },
        1 => errors.remove(0),
        _ => KeyringError::AllFailed(errors),
    })
}
