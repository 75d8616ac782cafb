//! `/keys/{keyId}/metadata`: the key's spec, usages and status.

use zeroize::Zeroizing;

use super::to_json;
use crate::api::types::MetadataResponse;
use crate::api::XksError;
use crate::hsm::KeyStatus;
use crate::key_store::KeyStore;

/// Reads the key's attributes from the HSM.
pub(super) async fn handle(store: &KeyStore, key_id: &str) -> Result<Zeroizing<Vec<u8>>, XksError> {
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
