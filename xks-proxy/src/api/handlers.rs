//! Operation handlers: JSON in, typed and decoded, HSM call, JSON out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::error::XksError;
use super::routes::Operation;
use super::types::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, MetadataOnlyRequest,
    MetadataResponse, RequestMetadata,
};
use crate::app::KeyStore;
use crate::hsm::gcm::{MAX_AAD_LEN, MAX_METADATA_LEN, TAG_LEN};
use crate::hsm::{DecryptInput, EncryptInput, KeyStatus};
use crate::secret::{secret_json, Secret, SecretText};

/// A request body parsed for its operation.
#[derive(Debug)]
pub enum ParsedRequest {
    /// Health.
    Health(MetadataOnlyRequest),
    /// Metadata.
    Metadata(MetadataOnlyRequest),
    /// Encrypt.
    Encrypt(EncryptRequest),
    /// Decrypt.
    Decrypt(DecryptRequest),
}

impl ParsedRequest {
    /// The request metadata, for logging.
    pub fn metadata(&self) -> &RequestMetadata {
        match self {
            ParsedRequest::Health(r) | ParsedRequest::Metadata(r) => &r.request_metadata,
            ParsedRequest::Encrypt(r) => &r.request_metadata,
            ParsedRequest::Decrypt(r) => &r.request_metadata,
        }
    }
}

fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, XksError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's messages can quote input values (which may be plaintext),
        // so only the "missing field" kind, which quotes a field name, is
        // passed on verbatim.
        let text = e.to_string();
        if text.starts_with("missing field") {
            XksError::validation(text)
        } else {
            XksError::validation(format!(
                "request body is not valid JSON for this operation (line {}, column {})",
                e.line(),
                e.column()
            ))
        }
    })
}

/// Parses a body for `op`.
pub fn parse(op: Operation, body: &[u8]) -> Result<ParsedRequest, XksError> {
    Ok(match op {
        Operation::Health => ParsedRequest::Health(from_json(body)?),
        Operation::Metadata => ParsedRequest::Metadata(from_json(body)?),
        Operation::Encrypt => ParsedRequest::Encrypt(from_json(body)?),
        Operation::Decrypt => ParsedRequest::Decrypt(from_json(body)?),
    })
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, XksError> {
    STANDARD
        .decode(value)
        .map_err(|_| XksError::validation(format!("{field} is not valid base64")))
}

fn opt_b64(field: &str, value: Option<&str>) -> Result<Vec<u8>, XksError> {
    value.map_or(Ok(Vec::new()), |v| b64(field, v))
}

fn require_aes_gcm(alg: &str) -> Result<(), XksError> {
    if alg == "AES_GCM" {
        Ok(())
    } else {
        Err(XksError::validation("encryptionAlgorithm must be AES_GCM"))
    }
}

/// A response body, wiped when dropped (a decrypt's holds the plaintext).
fn to_json<T: serde::Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, XksError> {
    secret_json(v)
        .map_err(|_| XksError::new(super::ErrorName::InternalException, "serialization failed"))
}

/// Runs a key operation and returns the response body. Health is answered
/// by [`crate::health`].
pub async fn execute(
    store: &KeyStore,
    key_id: &str,
    req: ParsedRequest,
) -> Result<Zeroizing<Vec<u8>>, XksError> {
    match req {
        ParsedRequest::Health(_) => to_json(&store.health.response(&store.hsm).await),
        ParsedRequest::Metadata(_) => {
            let info = store.hsm.key_info(key_id).await?;
            to_json(&MetadataResponse {
                key_spec: "AES_256".into(),
                key_usage: info.usages().into_iter().map(String::from).collect(),
                key_status: match info.status {
                    KeyStatus::Enabled => "ENABLED".into(),
                    KeyStatus::Disabled => "DISABLED".into(),
                },
            })
        }
        ParsedRequest::Encrypt(r) => {
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
        ParsedRequest::Decrypt(r) => {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintexts_never_show_in_debug() {
        // "top secret data key!" in base64.
        let secret = "dG9wIHNlY3JldCBkYXRhIGtleSE=";
        let body = format!(
            r#"{{"requestMetadata":{{"awsPrincipalArn":"arn:aws:iam::1:root","kmsOperation":"Encrypt","kmsRequestId":"r"}},"plaintext":"{secret}","encryptionAlgorithm":"AES_GCM"}}"#
        );
        let parsed = parse(Operation::Encrypt, body.as_bytes()).expect("parses");
        let ParsedRequest::Encrypt(request) = &parsed else {
            panic!("an encrypt request");
        };
        assert_eq!(request.plaintext.expose(), secret);
        assert!(!format!("{parsed:?}").contains(secret));
        let input = EncryptInput {
            plaintext: Secret::new(b64("plaintext", request.plaintext.expose()).unwrap()),
            aad: Vec::new(),
            cdiv: false,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("116, 111, 112") && !shown.contains("top secret"));
        let response = DecryptResponse {
            plaintext: SecretText::new(secret.to_owned()),
        };
        assert!(!format!("{response:?}").contains(secret));
        assert!(to_json(&response)
            .unwrap()
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()));
    }
}
