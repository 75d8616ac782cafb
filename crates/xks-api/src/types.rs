//! Request and response bodies of the XKS API, as JSON.
//!
//! These types are shared by the proxy (which parses requests and writes
//! responses) and by clients (which do the reverse), so each derives both
//! `Serialize` and `Deserialize`. Unknown fields are ignored, as the spec
//! requires for `requestMetadata`. Binary fields stay base64 strings here;
//! the handlers decode them.

use serde::{Deserialize, Serialize};

use crate::secret::SecretText;

/// `requestMetadata`. Only the two fields every operation carries are
/// required; the rest are logged when present and otherwise not validated.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    /// Opaque KMS request id, logged for correlation.
    pub kms_request_id: String,
    /// The KMS operation; unknown values are accepted.
    pub kms_operation: String,
    /// The calling principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    /// The KMS key ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// The AWS service acting for the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
    /// Source VPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    /// Source VPC endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
}

/// Health and metadata requests carry only `requestMetadata`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOnlyRequest {
    /// The request metadata.
    pub request_metadata: RequestMetadata,
}

/// Encrypt request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    /// The request metadata.
    pub request_metadata: RequestMetadata,
    /// Base64 plaintext (a secret: zeroized, redacted in `Debug`).
    pub plaintext: SecretText,
    /// Must be `AES_GCM`.
    pub encryption_algorithm: String,
    /// Base64 AAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
    /// `SHA_256` to request a CDIV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

/// Encrypt response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    /// Base64 ciphertext, as long as the plaintext.
    pub ciphertext: String,
    /// Base64 metadata to pass back on decrypt (at most 20 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
    /// Base64 IV.
    pub initialization_vector: String,
    /// Base64 16-byte tag.
    pub authentication_tag: String,
    /// Base64 SHA-256 CDIV, when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<String>,
}

/// Decrypt request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    /// The request metadata.
    pub request_metadata: RequestMetadata,
    /// Base64 ciphertext.
    pub ciphertext: String,
    /// Base64 IV (12 or 16 bytes).
    pub initialization_vector: String,
    /// Base64 tag (16 bytes).
    pub authentication_tag: String,
    /// Must be `AES_GCM`.
    pub encryption_algorithm: String,
    /// Base64 AAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
    /// Base64 metadata returned by encrypt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
}

/// Decrypt response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DecryptResponse {
    /// Base64 plaintext (a secret: zeroized, redacted in `Debug`).
    pub plaintext: SecretText,
}

/// Metadata response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MetadataResponse {
    /// Always `AES_256`.
    pub key_spec: String,
    /// `ENCRYPT` and/or `DECRYPT`.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// One HSM in a health response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EkmFleetDetail {
    /// HSM id.
    pub id: String,
    /// HSM model.
    pub model: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// Health response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// Number of proxy instances (> 0).
    pub xks_proxy_fleet_size: u32,
    /// Proxy vendor.
    pub xks_proxy_vendor: String,
    /// Proxy model.
    pub xks_proxy_model: String,
    /// HSM vendor.
    pub ekm_vendor: String,
    /// 1 to 10 HSMs.
    pub ekm_fleet_details: Vec<EkmFleetDetail>,
}

/// Error body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// One of the spec's error names.
    pub error_name: String,
    /// Printable ASCII, under 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}
