//! The wire format: typed structs and their encoding. Nothing here touches
//! keys; the message layer above does the cryptography.

pub(crate) mod body;
pub mod context;
pub mod edk;
pub mod header;
pub(crate) mod reader;

pub use context::EncryptionContext;
pub use edk::EncryptedDataKey;
pub use header::{ContentType, Header, MessageId};
