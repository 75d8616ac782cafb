//! Parses `--wrapping-key` specifications into keyrings.

use std::sync::Arc;

use envelope_core::keyring::Keyring;
use envelope_core::{MultiKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding};
use zeroize::Zeroizing;

/// Where `hierarchy:` wrapping keys find their branch keys.
pub(crate) struct KeyStoreSpec {
    pub(crate) table: Option<String>,
    pub(crate) kms_key: Option<String>,
    pub(crate) logical_name: Option<String>,
}

impl KeyStoreSpec {
    /// The DynamoDB key store, from the standard AWS configuration.
    pub(crate) async fn open(&self) -> Result<envelope_hierarchy::DynamoDbKeyStore, String> {
        let (Some(table), Some(kms_key)) = (&self.table, &self.kms_key) else {
            return Err(
                "hierarchy: wrapping keys need --key-store-table and --key-store-kms-key".into(),
            );
        };
        envelope_hierarchy::DynamoDbKeyStore::from_env(
            table.clone(),
            kms_key.clone(),
            self.logical_name.clone(),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// One keyring for all `--wrapping-key` values (the first one generates),
/// plus an AWS KMS discovery keyring when asked for.
pub(crate) async fn keyring(
    specs: &[String],
    discovery: Option<envelope_kms::DiscoverySpec>,
    key_store: &KeyStoreSpec,
) -> Result<Arc<dyn Keyring>, String> {
    let mut store: Option<Arc<envelope_hierarchy::DynamoDbKeyStore>> = None;
    let uses_kms = discovery.is_some() || specs.iter().any(|s| s.starts_with("kms:"));
    let supplier = if uses_kms {
        Some(envelope_kms::KmsClientSupplier::from_env().await)
    } else {
        None
    };
    let mut keyrings = Vec::with_capacity(specs.len() + 1);
    for spec in specs {
        if let Some(branch_key_id) = spec.strip_prefix("hierarchy:") {
            let store = match &store {
                Some(store) => store.clone(),
                None => store.insert(Arc::new(key_store.open().await?)).clone(),
            };
            let keyring = envelope_hierarchy::HierarchicalKeyring::builder(store)
                .branch_key_id(branch_key_id)
                .build()
                .map_err(|e| e.to_string())?;
            keyrings.push(Arc::new(keyring) as Arc<dyn Keyring>);
            continue;
        }
        match (spec.starts_with("kms:"), &supplier) {
            (true, Some(supplier)) => keyrings.push(
                envelope_kms::keyring_from_specs_with(supplier, std::slice::from_ref(spec), None)
                    .map_err(|e| e.to_string())?,
            ),
            _ => keyrings.push(parse(spec)?),
        }
    }
    if let (Some(discovery), Some(supplier)) = (discovery, &supplier) {
        keyrings.push(
            envelope_kms::keyring_from_specs_with(supplier, &[], Some(discovery))
                .map_err(|e| e.to_string())?,
        );
    }
    if keyrings.is_empty() {
        return Err("no wrapping key".into());
    }
    if keyrings.len() == 1 {
        return Ok(keyrings.remove(0));
    }
    let generator = keyrings.remove(0);
    MultiKeyring::new(Some(generator), keyrings)
        .map(|k| Arc::new(k) as Arc<dyn Keyring>)
        .map_err(|e| e.to_string())
}

fn parse(spec: &str) -> Result<Arc<dyn Keyring>, String> {
    let (kind, rest) = spec.split_once(':').ok_or_else(|| {
        format!("wrapping key {spec:?} has no type prefix (kms:, xks:, hierarchy:, aes: or rsa:)")
    })?;
    match kind {
        "aes" => {
            let parts: Vec<&str> = rest.splitn(3, ':').collect();
            let [namespace, name, keyfile] = parts[..] else {
                return Err(format!(
                    "wrapping key {spec:?}: expected aes:NAMESPACE:NAME:KEYFILE"
                ));
            };
            let key = Zeroizing::new(
                std::fs::read(keyfile).map_err(|e| format!("reading key file {keyfile}: {e}"))?,
            );
            let keyring = RawAesKeyring::new(namespace, name, &key)
                .map_err(|e| format!("{e} (key file {keyfile})"))?;
            Ok(Arc::new(keyring))
        }
        "xks" => envelope_xks::keyring_from_spec(rest).map_err(|e| e.to_string()),
        "rsa" => {
            let parts: Vec<&str> = rest.splitn(4, ':').collect();
            let [namespace, name, padding, pemfile] = parts[..] else {
                return Err(format!(
                    "wrapping key {spec:?}: expected rsa:NAMESPACE:NAME:PADDING:PEMFILE"
                ));
            };
            let padding = match padding {
                "pkcs1" => RsaPadding::Pkcs1,
                "oaep-sha1" => RsaPadding::OaepSha1,
                "oaep-sha256" => RsaPadding::OaepSha256,
                "oaep-sha384" => RsaPadding::OaepSha384,
                "oaep-sha512" => RsaPadding::OaepSha512,
                other => return Err(format!("unknown RSA padding {other:?}")),
            };
            let pem = Zeroizing::new(
                std::fs::read_to_string(pemfile)
                    .map_err(|e| format!("reading PEM file {pemfile}: {e}"))?,
            );
            let public = pem.contains("BEGIN PUBLIC KEY").then_some(pem.as_str());
            let private = pem.contains("BEGIN PRIVATE KEY").then_some(pem.as_str());
            let keyring = RawRsaKeyring::from_pem(namespace, name, padding, public, private)
                .map_err(|e| format!("{e} (PEM file {pemfile})"))?;
            Ok(Arc::new(keyring))
        }
        other => Err(format!(
            "unknown wrapping key type {other:?} in {spec:?} (expected kms, xks, hierarchy, aes or rsa)"
        )),
    }
}
