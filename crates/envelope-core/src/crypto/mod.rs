//! The crypto backend seam: AES-GCM, HKDF, ECDSA and randomness.
//!
//! Nothing outside this module names a crypto library. The backends were
//! chosen by measurement on the target machines (see `benches/`):
//! - `ring` for AES-128/256-GCM and the legacy suites' HKDF: its AES-GCM is
//!   about twice as fast as aws-lc-rs and RustCrypto at 1 KiB;
//! - RustCrypto's raw SHA-512 compression function (`sha2`, AVX2 where the
//!   CPU has it) for the committing suites' HKDF, the hottest work of a
//!   cache-hit message (see `hkdf_sha512.rs`);
//! - `aws-lc-rs` for AES-192-GCM (which `ring` lacks), ECDSA (its P-384 is the
//!   fastest available in Rust) and RSA (OAEP with every SHA-2 hash and
//!   PKCS#1 v1.5, as the raw RSA keyring needs).

pub(crate) mod aead;
pub(crate) mod hkdf_sha512;
pub(crate) mod kdf;
pub(crate) mod rng;
mod secret;
pub(crate) mod sign;

pub use secret::DataKey;
pub use sign::SigningKey;
