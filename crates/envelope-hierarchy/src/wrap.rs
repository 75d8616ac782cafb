//! The hierarchical keyring's EDK: the wrapping-key derivation, the AAD and
//! the ciphertext layout, byte for byte as the Material Providers Library
//! writes them.
//!
//! ```text
//! ciphertext = salt (16) || IV (12) || branch key version (16, UUID bytes)
//!              || wrapped data key (suite key length) || GCM tag (16)
//! wrapping key = HMAC-SHA256(branch key, 00000001 || "aws-kms-hierarchy" || 00
//!                            || salt || 00000100)        (SP 800-108, one block)
//! AAD = "aws-kms-hierarchy" || branch key id || version (16)
//!       || serialized encryption context (empty context: no bytes)
//! ```

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::error::{HierarchyError, HierarchyErrorKind};
use crate::version::BranchKeyVersion;

/// The EDK's provider id.
pub const PROVIDER_ID: &str = "aws-kms-hierarchy";
const SALT_LEN: usize = 16;
const IV_LEN: usize = 12;
const VERSION_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// Everything in the ciphertext but the wrapped key.
pub(crate) const OVERHEAD: usize = SALT_LEN + IV_LEN + VERSION_LEN + TAG_LEN;

/// The fields of an EDK's ciphertext, borrowed.
#[derive(Debug)]
pub(crate) struct WrappedKey<'a> {
    pub(crate) salt: &'a [u8],
    pub(crate) iv: &'a [u8],
    pub(crate) version: BranchKeyVersion,
    pub(crate) wrapped: &'a [u8],
    pub(crate) tag: &'a [u8],
}

impl<'a> WrappedKey<'a> {
    /// Splits `ciphertext`, which must be exactly `OVERHEAD + key_len` bytes.
    pub(crate) fn parse(ciphertext: &'a [u8], key_len: usize) -> Result<Self, HierarchyError> {
        if ciphertext.len() != OVERHEAD + key_len {
            return Err(HierarchyError::new(
                HierarchyErrorKind::InvalidEdk,
                format!(
                    "the EDK ciphertext is {} bytes; this suite's is {}",
                    ciphertext.len(),
                    OVERHEAD + key_len
                ),
            ));
        }
        let (salt, rest) = ciphertext.split_at(SALT_LEN);
        let (iv, rest) = rest.split_at(IV_LEN);
        let (version, rest) = rest.split_at(VERSION_LEN);
        let (wrapped, tag) = rest.split_at(key_len);
        let version = BranchKeyVersion::from_bytes(version.try_into().map_err(|_| {
            HierarchyError::new(HierarchyErrorKind::InvalidEdk, "truncated version")
        })?);
        Ok(Self {
            salt,
            iv,
            version,
            wrapped,
            tag,
        })
    }
}

fn wrapping_key(branch_key: &hmac::Key, salt: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut context = hmac::Context::with_key(branch_key);
    context.update(&1u32.to_be_bytes());
    context.update(PROVIDER_ID.as_bytes());
    context.update(&[0]);
    context.update(salt);
    context.update(&256u32.to_be_bytes());
    let tag = context.sign();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

fn aad(branch_key_id: &str, version: &BranchKeyVersion, serialized_context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        PROVIDER_ID.len() + branch_key_id.len() + VERSION_LEN + serialized_context.len(),
    );
    aad.extend_from_slice(PROVIDER_ID.as_bytes());
    aad.extend_from_slice(branch_key_id.as_bytes());
    aad.extend_from_slice(version.as_bytes());
    aad.extend_from_slice(serialized_context);
    aad
}

/// The encryption context as the AAD takes it: the message format's
/// serialization, except that an empty context is no bytes at all.
pub(crate) fn context_bytes(serialized: &[u8]) -> &[u8] {
    if serialized == [0, 0] {
        &[]
    } else {
        serialized
    }
}

fn gcm(key: &[u8; 32]) -> Result<LessSafeKey, HierarchyError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| {
            HierarchyError::new(HierarchyErrorKind::Crypto, "AES-256-GCM key setup failed")
        })
}

/// Bytes of randomness one wrap needs: the salt and the IV.
pub(crate) const RANDOM_LEN: usize = SALT_LEN + IV_LEN;

/// Wraps `data_key` under a branch key, with `random` as salt and IV
/// (drawn by the caller, with the data key when it makes one, so that a
/// message costs one call to the random source); returns the EDK ciphertext.
pub(crate) fn wrap(
    branch_key: &hmac::Key,
    branch_key_id: &str,
    version: &BranchKeyVersion,
    serialized_context: &[u8],
    data_key: &[u8],
    random: &[u8; RANDOM_LEN],
) -> Result<Vec<u8>, HierarchyError> {
    let (salt, iv) = random.split_at(SALT_LEN);
    let iv: [u8; IV_LEN] = iv
        .try_into()
        .map_err(|_| HierarchyError::new(HierarchyErrorKind::Crypto, "IV length"))?;
    let key = gcm(&wrapping_key(branch_key, salt))?;
    let mut out = Vec::with_capacity(OVERHEAD + data_key.len());
    out.extend_from_slice(salt);
    out.extend_from_slice(&iv);
    out.extend_from_slice(version.as_bytes());
    let start = out.len();
    out.extend_from_slice(data_key);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad(
                branch_key_id,
                version,
                context_bytes(serialized_context),
            )),
            &mut out[start..],
        )
        .map_err(|_| HierarchyError::new(HierarchyErrorKind::Crypto, "AES-256-GCM seal failed"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Unwraps an EDK's data key with the branch key of its version.
pub(crate) fn unwrap(
    branch_key: &hmac::Key,
    branch_key_id: &str,
    edk: &WrappedKey<'_>,
    serialized_context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, HierarchyError> {
    let key = gcm(&wrapping_key(branch_key, edk.salt))?;
    let nonce = Nonce::try_assume_unique_for_key(edk.iv)
        .map_err(|_| HierarchyError::new(HierarchyErrorKind::InvalidEdk, "bad IV length"))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(edk.wrapped.len() + TAG_LEN));
    buf.extend_from_slice(edk.wrapped);
    buf.extend_from_slice(edk.tag);
    let len = key
        .open_in_place(
            nonce,
            Aad::from(aad(branch_key_id, &edk.version, context_bytes(serialized_context))),
            &mut buf,
        )
        .map_err(|_| {
            HierarchyError::new(
                HierarchyErrorKind::UnwrapFailed,
                "AES-GCM authentication failed (wrong encryption context, tampered EDK or wrong branch key)",
            )
            .for_key(branch_key_id)
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}
