//! Negative cases that need the crate's internals to build their inputs:
//! a valid header tag over a forged commitment, messages written with the
//! other SDKs' frame ending, and frames out of order.

use std::sync::Arc;

use super::{decrypt, encoder, encrypt};
use crate::crypto::aead::IV_LEN;
use crate::crypto::{kdf, DataKey, SigningKey};
use crate::error::{CryptoError, Error, FormatError, PolicyError};
use crate::format::context::PUBLIC_KEY_FIELD;
use crate::format::header::Header;
use crate::format::{EncryptedDataKey, EncryptionContext};
use crate::keyring::Keyring;
use crate::materials::{
    DecryptRequest, DecryptionMaterials, DefaultMaterialsManager, EncryptionMaterials,
    MaterialsManager,
};
use crate::policy::CommitmentPolicy;
use crate::suite::AlgorithmSuite;
use crate::RawAesKeyring;

const KEY: [u8; 32] = [0x11; 32];

fn materials(suite: AlgorithmSuite, context: EncryptionContext) -> EncryptionMaterials {
    let mut m = EncryptionMaterials::new(suite, context);
    m.data_key = DataKey::from_slice(&KEY[..suite.key_len()]).ok();
    m.encrypted_data_keys.push(EncryptedDataKey {
        provider_id: "p".into(),
        provider_info: b"i".to_vec(),
        ciphertext: b"c".to_vec(),
    });
    m
}

fn decrypt_with_key(message: &[u8]) -> Result<Vec<u8>, Error> {
    let parsed = Header::parse(message, None)?;
    let mut m = DecryptionMaterials::new(
        parsed.header.suite,
        parsed.header.encryption_context.clone(),
    );
    m.data_key = DataKey::from_slice(&KEY[..parsed.header.suite.key_len()]).ok();
    decrypt::decrypt(message, &parsed, &m)
}

#[test]
fn forged_commitment_with_valid_header_tag_is_rejected() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let mut message = encrypt::encrypt(
        &materials(suite, EncryptionContext::new()),
        b"hello",
        4096,
        None,
    )
    .expect("encrypt");
    assert_eq!(decrypt_with_key(&message).expect("valid"), b"hello");
    let parsed = Header::parse(&message, None).expect("parse");
    // Alter the commitment and recompute the header tag under the real key,
    // so only the commitment check can catch it.
    let commit_at = parsed.body_len - 32;
    message[commit_at] ^= 1;
    let data_key = DataKey::from_slice(&KEY).expect("key");
    let keys = kdf::derive(suite, &data_key, parsed.header.message_id.as_bytes()).expect("derive");
    let tag = keys
        .content
        .seal_in_place([0; IV_LEN], &message[..parsed.body_len], &mut [])
        .expect("tag");
    message[parsed.body_len..parsed.body_len + 16].copy_from_slice(&tag);
    assert_eq!(
        decrypt_with_key(&message),
        Err(Error::Crypto(CryptoError::CommitmentMismatch))
    );
}

#[test]
fn python_style_empty_final_frame_decrypts() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let m = materials(suite, EncryptionContext::new());
    let mut out = Vec::new();
    let (id, keys) = encoder::write_header(&mut out, &m, 4).expect("header");
    encoder::write_frame(&mut out, &keys, &id, 1, b"abcd", false).expect("frame");
    encoder::write_frame(&mut out, &keys, &id, 2, b"efgh", false).expect("frame");
    encoder::write_frame(&mut out, &keys, &id, 3, b"", true).expect("final");
    assert_eq!(decrypt_with_key(&out).expect("decrypts"), b"abcdefgh");
}

fn three_frames() -> (Vec<u8>, usize, usize) {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let message = encrypt::encrypt(
        &materials(suite, EncryptionContext::new()),
        &[9u8; 48],
        16,
        None,
    )
    .expect("encrypt");
    let header_len = Header::parse(&message, None).expect("parse").total_len;
    let frame_len = 4 + 12 + 16 + 16;
    (message, header_len, frame_len)
}

#[test]
fn reordered_duplicated_and_missing_frames_are_rejected() {
    let (message, h, f) = three_frames();
    let frame = |i: usize| &message[h + i * f..h + (i + 1) * f];
    let rest = &message[h + 2 * f..];

    let swapped = [&message[..h], frame(1), frame(0), rest].concat();
    assert_eq!(
        decrypt_with_key(&swapped),
        Err(Error::Format(FormatError::FrameOutOfOrder {
            expected: 1,
            found: 2
        }))
    );
    let duplicated = [&message[..h], frame(0), frame(0), rest].concat();
    assert_eq!(
        decrypt_with_key(&duplicated),
        Err(Error::Format(FormatError::FrameOutOfOrder {
            expected: 2,
            found: 1
        }))
    );
    let no_final = [&message[..h], frame(0), frame(1)].concat();
    assert!(matches!(
        decrypt_with_key(&no_final),
        Err(Error::Format(FormatError::Truncated { .. }))
    ));
}

#[test]
fn huge_declared_lengths_fail_fast() {
    let (message, _, _) = three_frames();
    // Encryption context length 0xFFFF with a short input.
    let mut huge_ec = message.clone();
    huge_ec[35] = 0xFF;
    huge_ec[36] = 0xFF;
    assert!(matches!(
        Header::parse(&huge_ec, None),
        Err(FormatError::Truncated { .. })
    ));
    // Frame length 0xFFFFFFFF: rejected by the header tag or truncation, never allocated.
    let parsed = Header::parse(&message, None).expect("parse");
    let mut huge_frame = message.clone();
    let at = parsed.body_len - 32 - 4;
    huge_frame[at..at + 4].copy_from_slice(&[0xFF; 4]);
    assert!(decrypt_with_key(&huge_frame).is_err());
    // A non-framed body claiming u64::MAX bytes.
    let mut bytes = vec![0u8; 12];
    bytes.extend_from_slice(&u64::MAX.to_be_bytes());
    let mut r = crate::format::reader::Reader::new(&bytes);
    assert!(matches!(
        crate::format::body::read_single_block(&mut r),
        Err(FormatError::Truncated { .. })
    ));
}

fn default_cmm() -> DefaultMaterialsManager {
    let keyring: Arc<dyn Keyring> = Arc::new(RawAesKeyring::new("ns", "k", &KEY).expect("keyring"));
    DefaultMaterialsManager::new(keyring)
}

#[test]
fn public_key_presence_must_match_the_suite() {
    let cmm = default_cmm();
    let edks = [];
    let check = |suite: AlgorithmSuite, context: &EncryptionContext| {
        crate::block_on(cmm.decrypt_materials(&DecryptRequest {
            suite,
            commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
            encrypted_data_keys: &edks,
            encryption_context: context,
            reproduced_encryption_context: None,
            max_unwrap_attempts: crate::materials::DEFAULT_MAX_UNWRAP_ATTEMPTS,
        }))
    };
    let signed = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    assert!(matches!(
        check(signed, &EncryptionContext::new()),
        Err(Error::Policy(PolicyError::PublicKeyPresence(_)))
    ));
    let key = SigningKey::generate(signed.signature().expect("signed")).expect("key");
    let with_key: EncryptionContext = [(PUBLIC_KEY_FIELD, key.public_key_base64())]
        .into_iter()
        .collect();
    assert!(matches!(
        check(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, &with_key),
        Err(Error::Policy(PolicyError::PublicKeyPresence(_)))
    ));
    let bad_key: EncryptionContext = [(PUBLIC_KEY_FIELD, "AAAA")].into_iter().collect();
    assert!(matches!(
        check(signed, &bad_key),
        Err(Error::Crypto(CryptoError::InvalidPublicKey))
    ));
}

#[test]
fn signature_from_another_key_is_rejected() {
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let algorithm = suite.signature().expect("signed");
    let signer = SigningKey::generate(algorithm).expect("key");
    let advertised = SigningKey::generate(algorithm).expect("key");
    let context: EncryptionContext = [(PUBLIC_KEY_FIELD, advertised.public_key_base64())]
        .into_iter()
        .collect();
    let mut m = materials(suite, context);
    m.signing_key = Some(signer);
    let message = encrypt::encrypt(&m, b"signed", 4096, None).expect("encrypt");
    let parsed = Header::parse(&message, None).expect("parse");
    // Materials as the default manager builds them, with the known data key.
    let mut dm = DecryptionMaterials::new(suite, parsed.header.encryption_context.clone());
    dm.verifying_key = Some(
        crate::crypto::sign::VerifyingKey::from_base64(algorithm, advertised.public_key_base64())
            .expect("vk"),
    );
    dm.data_key = DataKey::from_slice(&KEY).ok();
    assert_eq!(
        decrypt::decrypt(&message, &parsed, &dm),
        Err(Error::Crypto(CryptoError::SignatureInvalid))
    );
}
