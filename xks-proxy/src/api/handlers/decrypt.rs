//! `/keys/{keyId}/decrypt`: checks the fields' lengths before the HSM
//! sees them, then AES-256-GCM decryption in the HSM.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use super::{b64, opt_b64, require_aes_gcm, to_json};
use crate::api::types::{DecryptRequest, DecryptResponse};
use crate::api::XksError;
use crate::hsm::gcm::{MAX_AAD_LEN, MAX_METADATA_LEN, TAG_LEN};
use crate::hsm::DecryptInput;
use crate::key_store::KeyStore;
use crate::secret::SecretText;

/// Checks and decodes the request, decrypts, and encodes the plaintext
/// into a body that is wiped when dropped.
pub(super) async fn handle(
    store: &KeyStore,
    key_id: &str,
    r: DecryptRequest,
) -> Result<Zeroizing<Vec<u8>>, XksError> {
    require_aes_gcm(&r.encryption_algorithm)?;
    let input = DecryptInput {
        ciphertext: b64("ciphertext", &r.ciphertext)?,
        iv: b64("initializationVector", &r.initialization_vector)?,
        tag: b64("authenticationTag", &r.authentication_tag)?,
        aad: opt_b64(
            "additionalAuthenticatedData",
            r.additional_authenticated_data.as_deref(),
        )?,
        metadata: opt_b64("ciphertextMetadata", r.ciphertext_metadata.as_deref())?,
    };
    if input.iv.len() != 12 && input.iv.len() != 16 {
        return Err(XksError::validation(
            "initializationVector must be 12 or 16 bytes",
        ));
    }
    if input.tag.len() != TAG_LEN {
        return Err(XksError::validation("authenticationTag must be 16 bytes"));
    }
    if input.aad.len() > MAX_AAD_LEN {
        return Err(XksError::validation(
            "additionalAuthenticatedData is too long",
        ));
    }
    if input.metadata.len() > MAX_METADATA_LEN {
        return Err(XksError::validation(
            "ciphertextMetadata is longer than 20 bytes",
        ));
    }
    let plaintext = store.hsm.decrypt(key_id, input).await?;
    to_json(&DecryptResponse {
        plaintext: SecretText::new(STANDARD.encode(plaintext.expose())),
    })
}
