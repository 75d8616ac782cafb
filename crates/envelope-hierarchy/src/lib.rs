//! The AWS KMS hierarchical keyring (`aws-kms-hierarchy`) for envelope, on
//! a DynamoDB branch key store: byte-compatible with the official SDKs'
//! (Python, Java, .NET and Rust through the Material Providers Library).
//!
//! One 32-byte **branch key** per tenant lives in DynamoDB, wrapped by one
//! KMS key. Each process fetches a branch key once per TTL (one GetItem and
//! one KMS Decrypt, however many callers miss at once) and then wraps every
//! message's data key locally: no network call per message.
//!
//! - [`DynamoDbKeyStore`]: the official table schema; create the table,
//!   create and version branch keys, read them (checking `kms-arn`, and
//!   decrypting only with the configured KMS key). [`StaticKeyStore`]
//!   holds one key in memory for offline tests.
//! - [`HierarchicalKeyring`]: a fixed branch key id or a
//!   [`BranchKeyIdSupplier`] (a function of the encryption context); every
//!   suite; composes with the multi-keyring and the materials managers.
//! - [`BranchKeyCache`]: single flight per miss with woken waiters,
//!   background refresh ahead of expiry, TTL and capacity bounds,
//!   shareable and partitioned, zeroized on eviction, with counters.
//! - [`HierarchyError`]: typed failures, naming the service (DynamoDB or
//!   KMS) and the branch key; retryable when a service was unreachable.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod branch_key;
mod cache;
mod error;
mod keyring;
mod store;
mod version;
mod wrap;

pub use branch_key::BranchKey;
pub use cache::{BranchKeyCache, BranchKeyCacheStats};
pub use error::{HierarchyError, HierarchyErrorKind};
pub use keyring::{BranchKeyIdSupplier, HierarchicalKeyring, HierarchicalKeyringBuilder};
pub use store::{BranchKeyStore, DynamoDbKeyStore, StaticKeyStore, StoreCalls};
pub use version::BranchKeyVersion;
pub use wrap::PROVIDER_ID;
