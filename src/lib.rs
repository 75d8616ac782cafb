//! `envelope`: envelope encryption in the AWS Encryption SDK message format.
//!
//! Messages written here decrypt with the official AWS Encryption SDKs and
//! the other way round. Start with [`Client`]:
//!
//! ```
//! use std::sync::Arc;
//! use envelope::{Client, EncryptionContext, RawAesKeyring};
//!
//! let keyring = RawAesKeyring::new("my-namespace", "my-key", &[7u8; 32])?;
//! let client = Client::builder().keyring(Arc::new(keyring)).build()?;
//! let context: EncryptionContext = [("tenant", "acme")].into_iter().collect();
//! let message = client.encrypt_blocking(b"hello", &context)?;
//! let decrypted = client.decrypt_blocking(&message, &context)?;
//! assert_eq!(decrypted.plaintext, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use envelope_core::*;
