//! Discovery keyrings: decrypt with whichever KMS key an EDK names.
//!
//! # Security
//! A discovery keyring trusts the message to say which key to use. Without
//! a filter it will ask KMS to decrypt with any key ARN an attacker writes
//! into a message; KMS still enforces that the caller may use that key, but
//! the caller's credentials are put to work on keys the application never
//! chose. A [`DiscoveryFilter`] (partition and account allow-list) limits
//! this: an EDK from another account is never sent to KMS.

use std::fmt;

use async_trait::async_trait;
use envelope_core::error::KeyringError;
use envelope_core::keyring::{decrypt_first_match, EdkUnwrapper, Keyring, UnwrapRequest};
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{DataKey, EncryptedDataKey};

use crate::arn::KmsArn;
use crate::ops;
use crate::supplier::KmsClientSupplier;

/// Accept only keys in one partition and a set of accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryFilter {
    partition: String,
    account_ids: Vec<String>,
}

impl DiscoveryFilter {
    /// A filter for `partition` (for example `aws`) and `account_ids`
    /// (at least one; none empty).
    pub fn new(
        partition: impl Into<String>,
        account_ids: Vec<String>,
    ) -> Result<Self, KeyringError> {
        let partition = partition.into();
        if partition.is_empty() {
            return Err(KeyringError::Config(
                "discovery filter partition is empty".into(),
            ));
        }
        if account_ids.is_empty() || account_ids.iter().any(String::is_empty) {
            return Err(KeyringError::Config(
                "a discovery filter needs one or more non-empty account ids".into(),
            ));
        }
        Ok(Self {
            partition,
            account_ids,
        })
    }

    /// The partition.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The accounts.
    pub fn account_ids(&self) -> &[String] {
        &self.account_ids
    }

    /// Whether `arn` passes.
    pub fn allows(&self, arn: &KmsArn) -> bool {
        arn.partition == self.partition && self.account_ids.contains(&arn.account)
    }
}

/// A decrypt-only keyring that uses the key ARN each `aws-kms` EDK names.
///
/// - Plain ([`AwsKmsDiscoveryKeyring::new`]): calls `Decrypt` in the ARN's
///   own region, with `KeyId` = that ARN.
/// - MRK-aware ([`AwsKmsDiscoveryKeyring::mrk_aware`]): bound to one region.
///   A multi-Region key's ARN is rewritten to that region (the local
///   replica decrypts); an EDK of another single-region key from another
///   region is skipped.
///
/// EDKs whose ARN the filter rejects are skipped before any request.
/// Encrypting with a discovery keyring is an error.
#[derive(Clone)]
pub struct AwsKmsDiscoveryKeyring {
    supplier: KmsClientSupplier,
    filter: Option<DiscoveryFilter>,
    region: Option<String>,
    grant_tokens: Vec<String>,
}

impl fmt::Debug for AwsKmsDiscoveryKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKmsDiscoveryKeyring")
            .field("filter", &self.filter)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring that calls KMS in each EDK's own region.
    pub fn new(supplier: KmsClientSupplier, filter: Option<DiscoveryFilter>) -> Self {
        Self {
            supplier,
            filter,
            region: None,
            grant_tokens: Vec::new(),
        }
    }

    /// An MRK-aware discovery keyring calling KMS in `region` only.
    pub fn mrk_aware(
        supplier: KmsClientSupplier,
        region: impl Into<String>,
        filter: Option<DiscoveryFilter>,
    ) -> Result<Self, KeyringError> {
        let region = region.into();
        if region.is_empty() {
            return Err(KeyringError::Config(
                "MRK discovery keyring region is empty".into(),
            ));
        }
        Ok(Self {
            region: Some(region),
            ..Self::new(supplier, filter)
        })
    }

    /// Sends `tokens` with every request.
    pub fn with_grant_tokens(mut self, tokens: Vec<String>) -> Self {
        self.grant_tokens = tokens;
        self
    }

    fn describe(&self) -> String {
        match &self.region {
            Some(region) => format!("AWS KMS MRK discovery keyring ({region})"),
            None => "AWS KMS discovery keyring".to_owned(),
        }
    }

    /// The region to call and the `KeyId` to send, or `None` to skip.
    fn target(&self, arn: KmsArn) -> Option<(String, String)> {
        if self.filter.as_ref().is_some_and(|f| !f.allows(&arn)) {
            return None;
        }
        match &self.region {
            None => Some((arn.region.clone(), arn.to_string())),
            Some(region) if arn.is_mrk() => {
                Some((region.clone(), arn.with_region(region).to_string()))
            }
            Some(region) if *region == arn.region => Some((region.clone(), arn.to_string())),
            Some(_) => None,
        }
    }
}

#[async_trait]
impl Keyring for AwsKmsDiscoveryKeyring {
    async fn on_encrypt(&self, _materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        Err(KeyringError::WrapFailed {
            keyring: self.describe(),
            reason: "a discovery keyring can only decrypt".into(),
        })
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
impl EdkUnwrapper for AwsKmsDiscoveryKeyring {
    fn describe(&self) -> String {
        AwsKmsDiscoveryKeyring::describe(self)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        ops::edk_key_arn(edk).is_some_and(|(_, arn)| self.target(arn).is_some())
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let Some((region, key_id)) = ops::edk_key_arn(edk).and_then(|(_, arn)| self.target(arn))
        else {
            return Err(KeyringError::NoMatchingKey {
                keyring: AwsKmsDiscoveryKeyring::describe(self),
            });
        };
        ops::decrypt(
            &self.supplier.client(&region),
            &key_id,
            edk,
            request.suite.key_len(),
            request.encryption_context,
            &self.grant_tokens,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_checks_partition_and_account() {
        let filter = DiscoveryFilter::new("aws", vec!["111122223333".into()]).unwrap();
        let ok = KmsArn::parse("arn:aws:kms:us-east-1:111122223333:key/k").unwrap();
        let other_account = KmsArn::parse("arn:aws:kms:us-east-1:444455556666:key/k").unwrap();
        let other_partition =
            KmsArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:key/k").unwrap();
        assert!(filter.allows(&ok));
        assert!(!filter.allows(&other_account));
        assert!(!filter.allows(&other_partition));
        assert!(DiscoveryFilter::new("aws", vec![]).is_err());
        assert!(DiscoveryFilter::new("", vec!["1".into()]).is_err());
        assert!(DiscoveryFilter::new("aws", vec!["".into()]).is_err());
    }
}
