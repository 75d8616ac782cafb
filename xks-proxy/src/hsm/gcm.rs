//! AES-256-GCM as the XKS API defines it.
//!
//! The HSM gets `be16(len AAD) ‖ AAD ‖ u8(len cm) ‖ cm` as its AAD, so the
//! request AAD and the ciphertext metadata are both authenticated and their
//! boundary is bound (moving bytes from one to the other fails). The CDIV is
//! SHA-256 over `AAD ‖ cm ‖ IV ‖ ciphertext ‖ tag` without lengths; it is
//! computed first and then a verification decrypt proves the ciphertext
//! opens before it is returned.

use aws_lc_rs::{constant_time, digest, rand};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;

use super::HsmError;
use crate::config::IvSource;
use crate::secret::Secret;

/// Tag length in bytes.
pub const TAG_LEN: usize = 16;
/// IV length this proxy generates.
pub const IV_LEN: usize = 12;
/// The `ciphertextMetadata` this proxy returns: a version marker for the AAD
/// composition, so a future format can still open old ciphertexts.
pub const CIPHERTEXT_METADATA: &[u8] = b"xks-proxy:aad=v1";
/// Longest AAD the composition can encode (its length is a be16).
pub const MAX_AAD_LEN: usize = u16::MAX as usize;
/// Longest ciphertext metadata the API allows.
pub const MAX_METADATA_LEN: usize = 20;

/// An encrypt request, decoded.
#[derive(Debug)]
pub struct EncryptInput {
    /// The plaintext (zeroized on drop, redacted in `Debug`).
    pub plaintext: Secret,
    /// The request AAD (empty when absent).
    pub aad: Vec<u8>,
    /// Whether a CDIV was requested.
    pub cdiv: bool,
}

/// An encrypt result.
#[derive(Debug, PartialEq, Eq)]
pub struct EncryptOutput {
    /// Ciphertext, the same length as the plaintext.
    pub ciphertext: Vec<u8>,
    /// The IV used.
    pub iv: Vec<u8>,
    /// The 16-byte tag.
    pub tag: Vec<u8>,
    /// The `ciphertextMetadata` that was authenticated.
    pub metadata: Vec<u8>,
    /// SHA-256 CDIV, when requested.
    pub cdiv: Option<[u8; 32]>,
}

/// A decrypt request, decoded.
#[derive(Debug)]
pub struct DecryptInput {
    /// Ciphertext without the tag.
    pub ciphertext: Vec<u8>,
    /// 12 or 16 bytes.
    pub iv: Vec<u8>,
    /// 16 bytes.
    pub tag: Vec<u8>,
    /// The request AAD (empty when absent).
    pub aad: Vec<u8>,
    /// The `ciphertextMetadata` (empty when absent).
    pub metadata: Vec<u8>,
}

/// `be16(len AAD) ‖ AAD ‖ u8(len cm) ‖ cm`.
pub fn compose_aad(aad: &[u8], metadata: &[u8]) -> Result<Vec<u8>, HsmError> {
    let aad_len = u16::try_from(aad.len()).map_err(|_| HsmError::Unexpected("AAD too long"))?;
    let cm_len =
        u8::try_from(metadata.len()).map_err(|_| HsmError::Unexpected("metadata too long"))?;
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(cm_len);
    out.extend_from_slice(metadata);
    Ok(out)
}

/// `SHA-256(AAD ‖ cm ‖ IV ‖ ciphertext ‖ tag)`.
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [aad, metadata, iv, ciphertext, tag] {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn map_decrypt_error(e: CkError) -> HsmError {
    match e {
        // SoftHSM reports a failed tag check as CKR_GENERAL_ERROR; others use
        // the dedicated codes. None of them means the session is broken.
        CkError::Pkcs11(
            RvError::GeneralError
            | RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::MechanismParamInvalid,
            _,
        ) => HsmError::InvalidCiphertext,
        other => map_usage_error(other, "decrypt"),
    }
}

/// The key label is filled in by the caller ([`super::KeyStoreHsm`]).
fn map_usage_error(e: CkError, operation: &'static str) -> HsmError {
    match e {
        CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => HsmError::KeyUsage {
            key: String::new(),
            operation,
        },
        other => HsmError::Pkcs11(other),
    }
}

fn hsm_decrypt(
    s: &Session,
    key: ObjectHandle,
    iv: &[u8],
    full_aad: &[u8],
    ct_and_tag: &[u8],
) -> Result<Secret, HsmError> {
    let mut iv = iv.to_vec();
    let params = GcmParams::new(&mut iv, full_aad, ((TAG_LEN * 8) as u64).into())?;
    s.decrypt(&Mechanism::AesGcm(params), key, ct_and_tag)
        .map(Secret::new)
        .map_err(map_decrypt_error)
}

/// Encrypts, computes the CDIV when asked, then verifies by decrypting.
pub fn encrypt(
    s: &Session,
    key: ObjectHandle,
    iv_source: IvSource,
    input: &EncryptInput,
) -> Result<EncryptOutput, HsmError> {
    let metadata = CIPHERTEXT_METADATA.to_vec();
    let full_aad = compose_aad(&input.aad, &metadata)?;
    let mut iv = [0u8; IV_LEN];
    if iv_source == IvSource::Proxy {
        rand::fill(&mut iv).map_err(|_| HsmError::Unexpected("CSPRNG failure"))?;
    }
    let out = {
        let params = GcmParams::new(&mut iv, &full_aad, ((TAG_LEN * 8) as u64).into())?;
        s.encrypt(&Mechanism::AesGcm(params), key, input.plaintext.expose())
            .map_err(|e| map_usage_error(e, "encrypt"))?
    };
    // An HSM that was expected to write its IV and did not would make every
    // ciphertext share the zero IV; refuse rather than return it.
    if iv_source == IvSource::Hsm && iv.iter().all(|b| *b == 0) {
        return Err(HsmError::Unexpected("HSM did not generate an IV"));
    }
    let plaintext = input.plaintext.expose();
    if out.len() != plaintext.len() + TAG_LEN {
        return Err(HsmError::Unexpected("ciphertext length"));
    }
    let (ct, tag) = out.split_at(plaintext.len());
    let cdiv = input
        .cdiv
        .then(|| cdiv(&input.aad, &metadata, &iv, ct, tag));
    if input.cdiv {
        let back = hsm_decrypt(s, key, &iv, &full_aad, &out).map_err(|e| match e {
            HsmError::InvalidCiphertext => HsmError::VerificationFailed,
            other => other,
        })?;
        constant_time::verify_slices_are_equal(back.expose(), plaintext)
            .map_err(|_| HsmError::VerificationFailed)?;
    }
    Ok(EncryptOutput {
        ciphertext: ct.to_vec(),
        iv: iv.to_vec(),
        tag: tag.to_vec(),
        metadata,
        cdiv,
    })
}

/// Decrypts; any authentication failure is [`HsmError::InvalidCiphertext`].
pub fn decrypt(s: &Session, key: ObjectHandle, input: &DecryptInput) -> Result<Secret, HsmError> {
    let full_aad = compose_aad(&input.aad, &input.metadata)?;
    let mut ct = Vec::with_capacity(input.ciphertext.len() + TAG_LEN);
    ct.extend_from_slice(&input.ciphertext);
    ct.extend_from_slice(&input.tag);
    hsm_decrypt(s, key, &input.iv, &full_aad, &ct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::STANDARD, Engine};

    #[test]
    fn spec_cdiv_vector() {
        let b = |s: &str| STANDARD.decode(s).unwrap();
        let d = cdiv(
            &b("cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n"),
            &b("a2V5X3ZlcnNpb249MQ=="),
            &b("HMrlRw85cAJUd5Ax"),
            &b("ghxkK1txeDNn3q8Y"),
            &b("vBxN2ncH1oEkR8WVXpmyYQ=="),
        );
        assert_eq!(
            STANDARD.encode(d),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }

    #[test]
    fn aad_composition_is_length_prefixed() {
        assert_eq!(compose_aad(b"", b"").unwrap(), vec![0, 0, 0]);
        assert_eq!(
            compose_aad(b"ab", b"c").unwrap(),
            vec![0, 2, b'a', b'b', 1, b'c']
        );
        // Moving bytes between AAD and metadata changes the composition.
        assert_ne!(
            compose_aad(b"abc", b"").unwrap(),
            compose_aad(b"", b"abc").unwrap()
        );
        assert!(compose_aad(&vec![0; MAX_AAD_LEN + 1], b"").is_err());
        assert!(CIPHERTEXT_METADATA.len() <= MAX_METADATA_LEN);
    }
}
