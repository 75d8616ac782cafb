//! Operation handlers: JSON in, typed and decoded, HSM call, JSON out.
//! This module parses bodies and dispatches; each operation's handler is
//! in its own file.

mod decrypt;
mod encrypt;
mod metadata;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::error::XksError;
use super::routes::Operation;
use super::types::{DecryptRequest, EncryptRequest, MetadataOnlyRequest, RequestMetadata};
use crate::key_store::KeyStore;
use crate::secret::secret_json;

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

pub(super) fn b64(field: &str, value: &str) -> Result<Vec<u8>, XksError> {
    STANDARD
        .decode(value)
        .map_err(|_| XksError::validation(format!("{field} is not valid base64")))
}

pub(super) fn opt_b64(field: &str, value: Option<&str>) -> Result<Vec<u8>, XksError> {
    value.map_or(Ok(Vec::new()), |v| b64(field, v))
}

pub(super) fn require_aes_gcm(alg: &str) -> Result<(), XksError> {
    if alg == "AES_GCM" {
        Ok(())
    } else {
        Err(XksError::validation("encryptionAlgorithm must be AES_GCM"))
    }
}

/// A response body, wiped when dropped (a decrypt's holds the plaintext).
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<Zeroizing<Vec<u8>>, XksError> {
    secret_json(v)
        .map_err(|_| XksError::new(super::ErrorName::InternalException, "serialization failed"))
}

/// Runs a key operation and returns the response body: one handler per
/// operation, each in its own file. Health is answered by [`crate::health`].
pub async fn execute(
    store: &KeyStore,
    key_id: &str,
    req: ParsedRequest,
) -> Result<Zeroizing<Vec<u8>>, XksError> {
    match req {
        ParsedRequest::Health(_) => to_json(&store.health.response(&store.hsm).await),
        ParsedRequest::Metadata(_) => metadata::handle(store, key_id).await,
        ParsedRequest::Encrypt(r) => encrypt::handle(store, key_id, r).await,
        ParsedRequest::Decrypt(r) => decrypt::handle(store, key_id, r).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::DecryptResponse;
    use crate::hsm::EncryptInput;
    use crate::secret::{Secret, SecretText};

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
