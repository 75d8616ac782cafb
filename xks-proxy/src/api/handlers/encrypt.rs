//! `/keys/{keyId}/encrypt`: AES-256-GCM in the HSM, with the optional
//! ciphertext data integrity value (SHA-256).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroizing;

use super::{b64, opt_b64, require_aes_gcm, to_json};
use crate::api::types::{EncryptRequest, EncryptResponse};
use crate::api::XksError;
use crate::hsm::gcm::MAX_AAD_LEN;
use crate::hsm::EncryptInput;
use crate::key_store::KeyStore;
use crate::secret::Secret;

/// Checks and decodes the request, encrypts, and encodes the result.
pub(super) async fn handle(
    store: &KeyStore,
    key_id: &str,
    r: EncryptRequest,
) -> Result<Zeroizing<Vec<u8>>, XksError> {
    require_aes_gcm(&r.encryption_algorithm)?;
    let cdiv = match r.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some("SHA_256") => true,
        Some(_) => {
            return Err(XksError::validation(
                "ciphertextDataIntegrityValueAlgorithm must be SHA_256",
            ))
        }
    };
    let plaintext = Secret::new(b64("plaintext", r.plaintext.expose())?);
    let aad = opt_b64(
        "additionalAuthenticatedData",
        r.additional_authenticated_data.as_deref(),
    )?;
    if aad.len() > MAX_AAD_LEN {
        return Err(XksError::validation(
            "additionalAuthenticatedData is too long",
        ));
    }
    let out = store
        .hsm
        .encrypt(
            key_id,
            EncryptInput {
                plaintext,
                aad,
                cdiv,
            },
        )
        .await?;
    to_json(&EncryptResponse {
        ciphertext: STANDARD.encode(&out.ciphertext),
        ciphertext_metadata: Some(STANDARD.encode(&out.metadata)),
        initialization_vector: STANDARD.encode(&out.iv),
        authentication_tag: STANDARD.encode(&out.tag),
        ciphertext_data_integrity_value: out.cdiv.map(|d| STANDARD.encode(d)),
    })
}
