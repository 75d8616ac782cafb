//! The crypto backend seam: AES-GCM, HKDF, ECDSA and randomness.
//!
//! Nothing outside this module names a crypto library. The backends were
//! chosen by measurement on the target machines (see `benches/`):
//! - `ring` for AES-128/256-GCM and HKDF: its AES-GCM is about twice as fast
//!   as aws-lc-rs and RustCrypto at 1 KiB, and HKDF costs the same;
//! - `aws-lc-rs` for AES-192-GCM (which `ring` lacks), ECDSA (its P-384 is the
//!   fastest available in Rust) and RSA (OAEP with every SHA-2 hash and
//!   PKCS#1 v1.5, as the raw RSA keyring needs).

pub(crate) mod aead;
pub(crate) mod kdf;
pub(crate) mod rng;
mod secret;
pub(crate) mod sign;

pub use secret::DataKey;
pub use sign::SigningKey;
