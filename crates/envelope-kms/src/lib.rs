//! AWS KMS keyrings for `envelope`, on aws-sdk-kms, byte-compatible with
//! the official AWS Encryption SDKs' KMS keyrings.
//!
//! - [`AwsKmsKeyring`]: a strict keyring for one key, and its
//!   multi-Region-key-aware variant ([`AwsKmsKeyring::mrk_aware`]).
//!   [`multi_key_keyring`] combines several keys.
//! - [`AwsKmsDiscoveryKeyring`]: decrypt-only, using the key each EDK
//!   names, limited by a [`DiscoveryFilter`].
//! - [`KmsClientSupplier`]: one KMS client per region, built on first use
//!   and cached, with [`KmsSettings`] timeouts and retries and a
//!   [`KmsRequestCounter`].
//!
//! # Configuration
//! Credentials and settings come from aws-config's default chain:
//! environment variables, the shared config and credentials files
//! (profiles, `credential_process`, SSO), web identity, ECS and IMDS. The
//! KMS endpoint can be overridden with the standard `AWS_ENDPOINT_URL_KMS`
//! (or `endpoint_url` in a profile).
//!
//! Workloads outside AWS that use IAM Roles Anywhere get temporary
//! credentials from its signing helper through `credential_process`:
//!
//! ```ini
//! # ~/.aws/config (or the file AWS_CONFIG_FILE names)
//! [profile roles-anywhere]
//! region = eu-west-1
//! credential_process = aws_signing_helper credential-process --certificate /etc/pki/app.pem --private-key /etc/pki/app.key --trust-anchor-arn arn:aws:rolesanywhere:... --profile-arn arn:aws:rolesanywhere:... --role-arn arn:aws:iam::111122223333:role/app
//! ```
//!
//! then run with `AWS_PROFILE=roles-anywhere`. The helper prints
//! `{"Version": 1, "AccessKeyId": ..., "SecretAccessKey": ..., "SessionToken": ..., "Expiration": ...}`
//! and the SDK runs it again before the credentials expire.
//!
//! # Errors
//! Every KMS failure is a [`KmsError`] (carried through envelope as
//! `KeyringError::Other`; [`KmsError::find`] gets it back) naming the key
//! and a [`KmsErrorKind`]:
//! not found, disabled, invalid state, access denied, invalid ciphertext,
//! throttled, timeout, network, unavailable, invalid response. Throttling,
//! timeouts, network failures and service faults are retryable; the SDK has
//! already retried them `max_attempts` times.
//!
//! # Secrets
//! Plaintext data keys from KMS responses are moved into
//! [`DataKey`](envelope_core::DataKey) at once and the intermediate buffer
//! is zeroized. The SDK's own request and response buffers (which hold the
//! key in transit) are outside this crate's control.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod arn;
mod counter;
mod discovery;
mod error;
mod ops;
mod strict;
mod supplier;

use std::sync::Arc;

use envelope_core::error::KeyringError;
use envelope_core::keyring::Keyring;
use envelope_core::MultiKeyring;

pub use counter::KmsRequestCounter;
pub use discovery::{AwsKmsDiscoveryKeyring, DiscoveryFilter};
pub use error::{KmsError, KmsErrorKind};
pub use ops::PROVIDER_ID;
pub use strict::{multi_key_keyring, AwsKmsKeyring};
pub use supplier::{KmsClientSupplier, KmsClientSupplierBuilder, KmsSettings, MAX_CACHED_CLIENTS};

/// The CLI's `--discovery [--discovery-account ID ...] [--discovery-partition P]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoverySpec {
    /// The partition (default `aws` when accounts are given).
    pub partition: Option<String>,
    /// Accounts to allow; empty means no filter.
    pub account_ids: Vec<String>,
}

/// One keyring for the CLI's `kms:KEY` wrapping keys (the `kms:` prefix is
/// optional; the first key generates the data key) and, when `discovery`
/// is set, a discovery keyring tried after them. Loads aws-config's
/// default chain.
///
/// Keys are MRK-aware strict keyrings: for single-region keys that is the
/// same as strict, and a replica's ARN also decrypts what its primary
/// wrote. Discovery calls KMS in the region each EDK names.
pub async fn keyring_from_specs(
    key_specs: &[String],
    discovery: Option<DiscoverySpec>,
) -> Result<Arc<dyn Keyring>, KeyringError> {
    let supplier = KmsClientSupplier::from_env().await;
    keyring_from_specs_with(&supplier, key_specs, discovery)
}

/// [`keyring_from_specs`] with a given supplier.
pub fn keyring_from_specs_with(
    supplier: &KmsClientSupplier,
    key_specs: &[String],
    discovery: Option<DiscoverySpec>,
) -> Result<Arc<dyn Keyring>, KeyringError> {
    let mut keyrings: Vec<Arc<dyn Keyring>> = Vec::with_capacity(key_specs.len() + 1);
    for spec in key_specs {
        let key_id = spec.strip_prefix("kms:").unwrap_or(spec);
        keyrings.push(Arc::new(AwsKmsKeyring::mrk_aware(
            key_id,
            supplier.clone(),
        )?));
    }
    if let Some(spec) = discovery {
        let filter = match (spec.partition, spec.account_ids.is_empty()) {
            (None, true) => None,
            (Some(_), true) => {
                return Err(KeyringError::Config(
                    "a discovery partition needs at least one discovery account".into(),
                ))
            }
            (partition, false) => Some(DiscoveryFilter::new(
                partition.unwrap_or_else(|| "aws".to_owned()),
                spec.account_ids,
            )?),
        };
        keyrings.push(Arc::new(AwsKmsDiscoveryKeyring::new(
            supplier.clone(),
            filter,
        )));
    }
    match keyrings.len() {
        0 => Err(KeyringError::Config(
            "no AWS KMS key and no discovery: nothing to wrap or unwrap with".into(),
        )),
        1 => Ok(keyrings.remove(0)),
        _ => {
            let generator = keyrings.remove(0);
            Ok(Arc::new(MultiKeyring::new(Some(generator), keyrings)?))
        }
    }
}
