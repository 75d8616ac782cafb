//! The branch key store: the official DynamoDB schema, one KMS key.
//!
//! Items of one branch key, partition key `branch-key-id`, sort key `type`:
//! `branch:ACTIVE` (the version to encrypt with, in `version`),
//! `branch:version:<uuid>` (every version) and `beacon:ACTIVE` (made for the
//! DynamoDB Encryption Client, never used here). Each holds `enc` (the KMS
//! ciphertext of the 32-byte key), `kms-arn`, `create-time`,
//! `hierarchy-version` (number 1) and `aws-crypto-ec:<k>` for each custom
//! context pair. The KMS encryption context of an item is every attribute
//! but `enc`, as text, plus `tablename` = the logical key store name.
//!
//! Reads check `kms-arn` against the configured ARN and decrypt only with
//! the configured ARN, never one read from the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_kms::primitives::Blob;

use crate::branch_key::BranchKey;
use crate::error::{HierarchyError, HierarchyErrorKind};
use crate::version::BranchKeyVersion;

const PARTITION_KEY: &str = "branch-key-id";
const SORT_KEY: &str = "type";
const ACTIVE: &str = "branch:ACTIVE";
const VERSION_PREFIX: &str = "branch:version:";
const BEACON: &str = "beacon:ACTIVE";
const ENC: &str = "enc";
const KMS_ARN: &str = "kms-arn";
const CREATE_TIME: &str = "create-time";
const HIERARCHY_VERSION: &str = "hierarchy-version";
const VERSION: &str = "version";
const TABLE_NAME_CONTEXT: &str = "tablename";
const CUSTOM_PREFIX: &str = "aws-crypto-ec:";

/// Where the keyring gets branch keys: the DynamoDB store, or a fixed key
/// for tests and offline vectors ([`StaticKeyStore`]).
#[async_trait]
pub trait BranchKeyStore: Send + Sync {
    /// Names the store in cache keys and errors (its logical name).
    fn logical_name(&self) -> &str;

    /// The ACTIVE version of `branch_key_id`, decrypted.
    async fn get_active(&self, branch_key_id: &str) -> Result<BranchKey, HierarchyError>;

    /// Version `version` of `branch_key_id`, decrypted.
    async fn get_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError>;
}

/// Requests a store has sent, for tests and cost accounting.
#[derive(Debug, Default)]
pub struct StoreCalls {
    get_item: AtomicU64,
    kms_decrypt: AtomicU64,
}

impl StoreCalls {
    /// DynamoDB GetItem requests sent.
    pub fn get_item(&self) -> u64 {
        self.get_item.load(Ordering::Relaxed)
    }

    /// KMS Decrypt requests sent.
    pub fn kms_decrypt(&self) -> u64 {
        self.kms_decrypt.load(Ordering::Relaxed)
    }
}

/// The DynamoDB branch key store.
#[derive(Debug)]
pub struct DynamoDbKeyStore {
    ddb: aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    table: String,
    logical_name: String,
    kms_arn: String,
    calls: StoreCalls,
}

impl DynamoDbKeyStore {
    /// A store over `table`, its keys wrapped by `kms_arn` (a full key ARN,
    /// never an alias), with clients from the standard AWS configuration
    /// (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_KMS`, profiles,
    /// `credential_process`, ...). The logical name defaults to the table
    /// name; it is bound into every key's KMS encryption context, so every
    /// reader must use the same one.
    pub async fn from_env(
        table: impl Into<String>,
        kms_arn: impl Into<String>,
        logical_name: Option<String>,
    ) -> Result<Self, HierarchyError> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(
            aws_sdk_dynamodb::Client::new(&config),
            aws_sdk_kms::Client::new(&config),
            table,
            kms_arn,
            logical_name,
        )
    }

    /// A store with the given clients.
    pub fn new(
        ddb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        table: impl Into<String>,
        kms_arn: impl Into<String>,
        logical_name: Option<String>,
    ) -> Result<Self, HierarchyError> {
        let table = table.into();
        let kms_arn = kms_arn.into();
        if table.len() < 3 {
            return Err(HierarchyError::new(
                HierarchyErrorKind::Config,
                "a DynamoDB table name has at least 3 characters",
            ));
        }
        if !kms_arn.starts_with("arn:") || !kms_arn.contains(":key/") {
            return Err(HierarchyError::new(
                HierarchyErrorKind::Config,
                format!("{kms_arn:?} is not a KMS key ARN (aliases are not accepted)"),
            ));
        }
        Ok(Self {
            ddb,
            kms,
            logical_name: logical_name.unwrap_or_else(|| table.clone()),
            table,
            kms_arn,
            calls: StoreCalls::default(),
        })
    }

    /// The requests sent so far.
    pub fn calls(&self) -> &StoreCalls {
        &self.calls
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing) unless it exists.
    pub async fn create_table(&self) -> Result<(), HierarchyError> {
        create_table(&self.ddb, &self.table).await
    }

    /// Creates `table` (on-demand billing) unless it exists, with a
    /// DynamoDB client from the standard AWS configuration. No KMS key is
    /// involved.
    pub async fn create_table_from_env(table: &str) -> Result<(), HierarchyError> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        create_table(&aws_sdk_dynamodb::Client::new(&config), table).await
    }

    /// Creates a branch key and returns its id: a random UUID unless
    /// `branch_key_id` is given, which needs a custom context (as in the
    /// official SDKs), stored as `aws-crypto-ec:<k>` attributes.
    pub async fn create_key(
        &self,
        branch_key_id: Option<String>,
        custom_context: BTreeMap<String, String>,
    ) -> Result<String, HierarchyError> {
        let id = match branch_key_id {
            Some(id) if custom_context.is_empty() => {
                return Err(HierarchyError::new(
                    HierarchyErrorKind::Config,
                    "a branch key id given at creation needs an encryption context",
                )
                .for_key(&id))
            }
            Some(id) if id.is_empty() => {
                return Err(HierarchyError::new(
                    HierarchyErrorKind::Config,
                    "empty branch key id",
                ))
            }
            Some(id) => id,
            None => random_version()?.to_string(),
        };
        let version = random_version()?;
        let create_time = now_iso8601();
        let mut base = BTreeMap::new();
        base.insert(PARTITION_KEY.to_owned(), id.clone());
        base.insert(CREATE_TIME.to_owned(), create_time);
        base.insert(HIERARCHY_VERSION.to_owned(), "1".to_owned());
        base.insert(KMS_ARN.to_owned(), self.kms_arn.clone());
        for (k, v) in &custom_context {
            base.insert(format!("{CUSTOM_PREFIX}{k}"), v.clone());
        }
        let (version_item, active_item) = self.new_version_items(&base, version).await?;
        let mut beacon = base.clone();
        beacon.insert(SORT_KEY.to_owned(), BEACON.to_owned());
        let beacon_enc = self.generate(&beacon).await?;
        let beacon_item = item(&beacon, beacon_enc);
        self.ddb
            .transact_write_items()
            .transact_items(put(&self.table, version_item, "attribute_not_exists(#pk)")?)
            .transact_items(put(&self.table, active_item, "attribute_not_exists(#pk)")?)
            .transact_items(put(&self.table, beacon_item, "attribute_not_exists(#pk)")?)
            .send()
            .await
            .map_err(|e| write_error(e, &id))?;
        Ok(id)
    }

    /// Makes a new ACTIVE version of `branch_key_id`; older versions stay
    /// readable for decryption.
    pub async fn version_key(&self, branch_key_id: &str) -> Result<(), HierarchyError> {
        let active = self.get_item(branch_key_id, ACTIVE).await?;
        let context = self.item_context(&active, branch_key_id)?;
        let enc = binary(&active, ENC, branch_key_id)?;
        // Authenticates the ACTIVE item with KMS without decrypting it.
        let reencrypted = self
            .kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(enc))
            .source_key_id(&self.kms_arn)
            .set_source_encryption_context(Some(to_hash(&context)))
            .destination_key_id(&self.kms_arn)
            .set_destination_encryption_context(Some(to_hash(&context)))
            .send()
            .await
            .map_err(|e| kms_error(e, branch_key_id))?;
        if reencrypted.source_key_id() != Some(self.kms_arn.as_str())
            || reencrypted.key_id() != Some(self.kms_arn.as_str())
        {
            return Err(HierarchyError::new(
                HierarchyErrorKind::KmsArnMismatch,
                "KMS authenticated the ACTIVE item under another key",
            )
            .for_key(branch_key_id));
        }
        let mut base: BTreeMap<String, String> = context
            .into_iter()
            .filter(|(k, _)| k != TABLE_NAME_CONTEXT && k != SORT_KEY && k != VERSION)
            .collect();
        base.insert(CREATE_TIME.to_owned(), now_iso8601());
        let (version_item, active_item) = self.new_version_items(&base, random_version()?).await?;
        self.ddb
            .transact_write_items()
            .transact_items(put(&self.table, version_item, "attribute_not_exists(#pk)")?)
            .transact_items(put(&self.table, active_item, "attribute_exists(#pk)")?)
            .send()
            .await
            .map_err(|e| write_error(e, branch_key_id))?;
        Ok(())
    }

    /// The version and ACTIVE items of a new version: one key from KMS
    /// (GenerateDataKeyWithoutPlaintext under the version item's context),
    /// re-encrypted to the ACTIVE item's context.
    async fn new_version_items(
        &self,
        base: &BTreeMap<String, String>,
        version: BranchKeyVersion,
    ) -> Result<
        (
            HashMap<String, AttributeValue>,
            HashMap<String, AttributeValue>,
        ),
        HierarchyError,
    > {
        let id = base.get(PARTITION_KEY).cloned().unwrap_or_default();
        let mut version_attrs = base.clone();
        version_attrs.insert(SORT_KEY.to_owned(), format!("{VERSION_PREFIX}{version}"));
        let version_enc = self.generate(&version_attrs).await?;
        let mut active_attrs = base.clone();
        active_attrs.insert(SORT_KEY.to_owned(), ACTIVE.to_owned());
        active_attrs.insert(VERSION.to_owned(), format!("{VERSION_PREFIX}{version}"));
        let active_enc = self
            .kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(version_enc.clone()))
            .source_key_id(&self.kms_arn)
            .set_source_encryption_context(Some(self.kms_context(&version_attrs)))
            .destination_key_id(&self.kms_arn)
            .set_destination_encryption_context(Some(self.kms_context(&active_attrs)))
            .send()
            .await
            .map_err(|e| kms_error(e, &id))?
            .ciphertext_blob
            .ok_or_else(|| {
                HierarchyError::new(HierarchyErrorKind::Kms, "ReEncrypt returned no ciphertext")
                    .for_key(&id)
            })?
            .into_inner();
        Ok((
            item(&version_attrs, version_enc),
            item(&active_attrs, active_enc),
        ))
    }

    async fn generate(&self, attrs: &BTreeMap<String, String>) -> Result<Vec<u8>, HierarchyError> {
        let id = attrs.get(PARTITION_KEY).cloned().unwrap_or_default();
        Ok(self
            .kms
            .generate_data_key_without_plaintext()
            .key_id(&self.kms_arn)
            .number_of_bytes(32)
            .set_encryption_context(Some(self.kms_context(attrs)))
            .send()
            .await
            .map_err(|e| kms_error(e, &id))?
            .ciphertext_blob
            .ok_or_else(|| {
                HierarchyError::new(
                    HierarchyErrorKind::Kms,
                    "GenerateDataKeyWithoutPlaintext returned no ciphertext",
                )
                .for_key(&id)
            })?
            .into_inner())
    }

    /// An item's attributes (less `enc`) plus `tablename`.
    fn kms_context(&self, attrs: &BTreeMap<String, String>) -> HashMap<String, String> {
        let mut context: HashMap<String, String> = attrs.clone().into_iter().collect();
        context.insert(TABLE_NAME_CONTEXT.to_owned(), self.logical_name.clone());
        context
    }

    async fn get_item(
        &self,
        branch_key_id: &str,
        sort: &str,
    ) -> Result<HashMap<String, AttributeValue>, HierarchyError> {
        self.calls.get_item.fetch_add(1, Ordering::Relaxed);
        let output = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(branch_key_id.to_owned()))
            .key(SORT_KEY, AttributeValue::S(sort.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ddb_error(e).for_key(branch_key_id))?;
        output.item.ok_or_else(|| {
            let kind = if sort == ACTIVE {
                HierarchyErrorKind::BranchKeyNotFound
            } else {
                HierarchyErrorKind::VersionNotFound
            };
            HierarchyError::new(kind, format!("no item {sort:?} in table {}", self.table))
                .for_key(branch_key_id)
        })
    }

    /// The item's KMS encryption context, after checking that it is a
    /// branch key item of `branch_key_id` wrapped by the configured key.
    fn item_context(
        &self,
        item: &HashMap<String, AttributeValue>,
        branch_key_id: &str,
    ) -> Result<BTreeMap<String, String>, HierarchyError> {
        let malformed = |what: String| {
            HierarchyError::new(HierarchyErrorKind::MalformedItem, what).for_key(branch_key_id)
        };
        let mut context = BTreeMap::new();
        for (name, value) in item {
            if name == ENC {
                continue;
            }
            let text = match value {
                AttributeValue::S(s) => s.clone(),
                AttributeValue::N(n) if name == HIERARCHY_VERSION => n.clone(),
                _ => {
                    return Err(malformed(format!(
                        "attribute {name:?} has an unexpected type"
                    )))
                }
            };
            context.insert(name.clone(), text);
        }
        if context.get(PARTITION_KEY).map(String::as_str) != Some(branch_key_id) {
            return Err(malformed("the item's branch-key-id differs".into()));
        }
        if context.get(HIERARCHY_VERSION).map(String::as_str) != Some("1") {
            return Err(malformed("hierarchy-version is not 1".into()));
        }
        match context.get(KMS_ARN) {
            Some(arn) if *arn == self.kms_arn => {}
            Some(arn) => {
                return Err(HierarchyError::new(
                    HierarchyErrorKind::KmsArnMismatch,
                    format!(
                        "the item is wrapped by {arn}, not the configured {}",
                        self.kms_arn
                    ),
                )
                .for_key(branch_key_id))
            }
            None => return Err(malformed("no kms-arn".into())),
        }
        context.insert(TABLE_NAME_CONTEXT.to_owned(), self.logical_name.clone());
        Ok(context)
    }

    /// Decrypts an item's `enc` with the configured key and its context.
    async fn decrypt_item(
        &self,
        item: &HashMap<String, AttributeValue>,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        let context = self.item_context(item, branch_key_id)?;
        let enc = binary(item, ENC, branch_key_id)?;
        self.calls.kms_decrypt.fetch_add(1, Ordering::Relaxed);
        let output = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(enc))
            .key_id(&self.kms_arn)
            .set_encryption_context(Some(to_hash(&context)))
            .send()
            .await
            .map_err(|e| kms_error(e, branch_key_id))?;
        if output.key_id() != Some(self.kms_arn.as_str()) {
            return Err(HierarchyError::new(
                HierarchyErrorKind::KmsArnMismatch,
                "KMS decrypted with another key than the configured one",
            )
            .for_key(branch_key_id));
        }
        let plaintext =
            zeroize::Zeroizing::new(output.plaintext.map(Blob::into_inner).unwrap_or_default());
        let key: [u8; 32] = plaintext.as_slice().try_into().map_err(|_| {
            HierarchyError::new(
                HierarchyErrorKind::MalformedItem,
                format!("the branch key is {} bytes, not 32", plaintext.len()),
            )
            .for_key(branch_key_id)
        })?;
        Ok(BranchKey::new(branch_key_id, version, key))
    }
}

#[async_trait]
impl BranchKeyStore for DynamoDbKeyStore {
    fn logical_name(&self) -> &str {
        &self.logical_name
    }

    async fn get_active(&self, branch_key_id: &str) -> Result<BranchKey, HierarchyError> {
        let item = self.get_item(branch_key_id, ACTIVE).await?;
        let version = match item.get(VERSION) {
            Some(AttributeValue::S(v)) => v
                .strip_prefix(VERSION_PREFIX)
                .and_then(BranchKeyVersion::parse),
            _ => None,
        }
        .ok_or_else(|| {
            HierarchyError::new(
                HierarchyErrorKind::MalformedItem,
                "the ACTIVE item has no valid version",
            )
            .for_key(branch_key_id)
        })?;
        self.decrypt_item(&item, branch_key_id, version).await
    }

    async fn get_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        let item = self
            .get_item(branch_key_id, &format!("{VERSION_PREFIX}{version}"))
            .await?;
        self.decrypt_item(&item, branch_key_id, version).await
    }
}

/// One branch key, held in memory: the official SDKs' "static" key store
/// of their test vectors, for offline tests. Not for production.
pub struct StaticKeyStore {
    branch_key_id: String,
    version: BranchKeyVersion,
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl StaticKeyStore {
    /// A store that knows one version of one branch key.
    pub fn new(branch_key_id: impl Into<String>, version: BranchKeyVersion, key: [u8; 32]) -> Self {
        Self {
            branch_key_id: branch_key_id.into(),
            version,
            key: zeroize::Zeroizing::new(key),
        }
    }

    fn get(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        if branch_key_id != self.branch_key_id {
            return Err(HierarchyError::new(
                HierarchyErrorKind::BranchKeyNotFound,
                "not in the static store",
            )
            .for_key(branch_key_id));
        }
        if version != self.version {
            return Err(HierarchyError::new(
                HierarchyErrorKind::VersionNotFound,
                format!("no version {version}"),
            )
            .for_key(branch_key_id));
        }
        Ok(BranchKey::new(branch_key_id, version, *self.key))
    }
}

impl std::fmt::Debug for StaticKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeyStore")
            .field("branch_key_id", &self.branch_key_id)
            .field("version", &self.version)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[async_trait]
impl BranchKeyStore for StaticKeyStore {
    fn logical_name(&self) -> &str {
        "static"
    }

    async fn get_active(&self, branch_key_id: &str) -> Result<BranchKey, HierarchyError> {
        self.get(branch_key_id, self.version)
    }

    async fn get_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        self.get(branch_key_id, version)
    }
}

/// Creates the key store table unless it exists: partition key
/// `branch-key-id`, sort key `type`, both strings, on-demand billing.
async fn create_table(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), HierarchyError> {
    match ddb.describe_table().table_name(table).send().await {
        Ok(_) => return Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().is_resource_not_found_exception() => {}
        Err(e) => return Err(ddb_error(e)),
    }
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let built = |e: aws_sdk_dynamodb::error::BuildError| {
        HierarchyError::new(HierarchyErrorKind::Config, e.to_string())
    };
    ddb.create_table()
        .table_name(table)
        .attribute_definitions(attribute(PARTITION_KEY).map_err(built)?)
        .attribute_definitions(attribute(SORT_KEY).map_err(built)?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash).map_err(built)?)
        .key_schema(key(SORT_KEY, KeyType::Range).map_err(built)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(ddb_error)?;
    Ok(())
}

fn random_version() -> Result<BranchKeyVersion, HierarchyError> {
    BranchKeyVersion::random()
        .ok_or_else(|| HierarchyError::new(HierarchyErrorKind::Crypto, "the random source failed"))
}

fn to_hash(context: &BTreeMap<String, String>) -> HashMap<String, String> {
    context.clone().into_iter().collect()
}

fn item(attrs: &BTreeMap<String, String>, enc: Vec<u8>) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = attrs
        .iter()
        .map(|(k, v)| {
            let value = if k == HIERARCHY_VERSION {
                AttributeValue::N(v.clone())
            } else {
                AttributeValue::S(v.clone())
            };
            (k.clone(), value)
        })
        .collect();
    item.insert(ENC.to_owned(), AttributeValue::B(enc.into()));
    item
}

fn put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    condition: &str,
) -> Result<TransactWriteItem, HierarchyError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .expression_attribute_names("#pk", PARTITION_KEY)
        .build()
        .map_err(|e| HierarchyError::new(HierarchyErrorKind::Config, e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn binary(
    item: &HashMap<String, AttributeValue>,
    name: &str,
    branch_key_id: &str,
) -> Result<Vec<u8>, HierarchyError> {
    match item.get(name) {
        Some(AttributeValue::B(blob)) => Ok(blob.clone().into_inner()),
        _ => Err(HierarchyError::new(
            HierarchyErrorKind::MalformedItem,
            format!("attribute {name:?} is missing or not binary"),
        )
        .for_key(branch_key_id)),
    }
}

/// Whether an SDK failure is one a retry may cure: no answer, a timeout,
/// throttling or a service fault.
fn transient<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "KMSInternalException"
                    | "DependencyTimeoutException"
                    | "KeyUnavailableException"
            )
        ),
        _ => false,
    }
}

fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error {
        SdkError::ServiceError(service) => match (service.err().code(), service.err().message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => DisplayErrorContext(error).to_string(),
        },
        _ => DisplayErrorContext(error).to_string(),
    }
}

fn ddb_error<E, R>(error: SdkError<E, R>) -> HierarchyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = if transient(&error) {
        HierarchyErrorKind::DynamoDbUnavailable
    } else {
        HierarchyErrorKind::DynamoDb
    };
    HierarchyError::new(kind, describe(&error))
}

fn kms_error<E, R>(error: SdkError<E, R>, branch_key_id: &str) -> HierarchyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = if transient(&error) {
        HierarchyErrorKind::KmsUnavailable
    } else {
        HierarchyErrorKind::Kms
    };
    HierarchyError::new(kind, describe(&error)).for_key(branch_key_id)
}

fn write_error<E, R>(error: SdkError<E, R>, branch_key_id: &str) -> HierarchyError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let conflict = matches!(&error, SdkError::ServiceError(s)
        if matches!(s.err().code(), Some("TransactionCanceledException" | "ConditionalCheckFailedException")));
    if conflict {
        HierarchyError::new(
            HierarchyErrorKind::Conflict,
            format!(
                "the write's condition failed (the key exists, or ACTIVE changed): {}",
                describe(&error)
            ),
        )
        .for_key(branch_key_id)
    } else {
        ddb_error(error).for_key(branch_key_id)
    }
}

/// The current time as the official SDKs write `create-time`:
/// `2023-06-03T19:03:29.358000Z`.
fn now_iso8601() -> String {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_time_is_iso8601_utc_with_microseconds() {
        let t = now_iso8601();
        assert_eq!(t.len(), "2023-06-03T19:03:29.358000Z".len(), "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }
}
