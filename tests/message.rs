//! Round trips and negative cases for the message format, through the
//! public API with raw keyrings.

use std::sync::Arc;

use envelope::error::{CryptoError, FormatError, PolicyError};
use envelope::keyring::Keyring;
use envelope::{
    AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext, Error, MultiKeyring,
    RawAesKeyring, RawRsaKeyring, RequiredContextMaterialsManager, RsaPadding,
};

fn aes(name: &str, byte: u8) -> Arc<dyn Keyring> {
    Arc::new(RawAesKeyring::new("test-ns", name, &[byte; 32]).expect("keyring"))
}

fn client_with(
    keyring: Arc<dyn Keyring>,
    policy: CommitmentPolicy,
    suite: AlgorithmSuite,
    frame: u32,
) -> Client {
    Client::builder()
        .keyring(keyring)
        .commitment_policy(policy)
        .suite(suite)
        .frame_length(frame)
        .build()
        .expect("client")
}

fn context() -> EncryptionContext {
    [("purpose", "test"), ("tenant", "acme")]
        .into_iter()
        .collect()
}

fn policy_for(suite: AlgorithmSuite) -> CommitmentPolicy {
    if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    }
}

#[test]
fn round_trips_every_suite_and_size() {
    for suite in AlgorithmSuite::ALL {
        let client = client_with(aes("k", 1), policy_for(suite), suite, 128);
        for len in [0usize, 1, 127, 128, 129, 256, 1000] {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let message = client
                .encrypt_blocking(&plaintext, &context())
                .expect("encrypt");
            let decrypted = client
                .decrypt_blocking(&message, &context())
                .expect("decrypt");
            assert_eq!(decrypted.plaintext, plaintext, "suite {suite} len {len}");
            assert_eq!(decrypted.suite, suite);
            assert_eq!(decrypted.encryption_context().get("tenant"), Some("acme"));
            assert_eq!(
                decrypted
                    .encryption_context()
                    .contains_key("aws-crypto-public-key"),
                suite.signature().is_some()
            );
        }
    }
}

#[test]
fn default_client_uses_0578_and_4096_byte_frames() {
    let client = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    let message = client
        .encrypt_blocking(&[5u8; 10_000], &context())
        .expect("encrypt");
    let decrypted = client
        .decrypt_blocking(&message, &EncryptionContext::new())
        .expect("decrypt");
    assert_eq!(decrypted.suite.id(), 0x0578);
    assert_eq!(decrypted.header.frame_length, 4096);
    assert_eq!(message[0], 2, "version 2 message");
}

#[test]
fn rsa_every_padding_round_trips_and_multi_keyring_decrypts_with_any_child() {
    let keys: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/esdk/v4-Net-4.0.1/keys.json"
        ))
        .expect("ESDK vector keys.json is missing from ../shared/vectors/esdk"),
    )
    .expect("json");
    let private = keys["keys"]["rsa-4096-private"]["material"]
        .as_str()
        .expect("pem");
    let public = keys["keys"]["rsa-4096-public"]["material"]
        .as_str()
        .expect("pem");
    for padding in [
        RsaPadding::Pkcs1,
        RsaPadding::OaepSha1,
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ] {
        let encryptor: Arc<dyn Keyring> = Arc::new(
            RawRsaKeyring::from_pem("rsa-ns", "rsa-key", padding, Some(public), None)
                .expect("public"),
        );
        let decryptor: Arc<dyn Keyring> = Arc::new(
            RawRsaKeyring::from_pem("rsa-ns", "rsa-key", padding, None, Some(private))
                .expect("private"),
        );
        let multi: Arc<dyn Keyring> =
            Arc::new(MultiKeyring::new(Some(aes("gen", 9)), vec![encryptor]).expect("multi"));
        let writer = Client::builder().keyring(multi).build().expect("client");
        let message = writer
            .encrypt_blocking(b"rsa wrapped", &context())
            .expect("encrypt");
        // Only the RSA child can decrypt here: the AES generator's key differs.
        let reader_multi: Arc<dyn Keyring> =
            Arc::new(MultiKeyring::new(None, vec![aes("gen", 8), decryptor]).expect("multi"));
        let reader = Client::builder()
            .keyring(reader_multi)
            .build()
            .expect("client");
        let decrypted = reader
            .decrypt_blocking(&message, &context())
            .expect("decrypt");
        assert_eq!(decrypted.plaintext, b"rsa wrapped", "{padding:?}");
    }
}

/// A pair that is not stored is checked cryptographically: the raw AES
/// keyring binds the whole context to its EDK, and the header tag binds the
/// authenticated-only pairs, so whichever check runs first rejects it.
fn assert_context_rejected(err: &Error) {
    let unwrap_failed = matches!(
        err,
        Error::Keyring(envelope::error::KeyringError::UnwrapFailed { .. })
    );
    assert!(
        unwrap_failed || *err == Error::Crypto(CryptoError::HeaderAuthentication),
        "unexpected error {err}"
    );
}

#[test]
fn wrong_context_value_and_missing_required_pair_fail_before_plaintext() {
    let client = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    let message = client
        .encrypt_blocking(b"secret", &context())
        .expect("encrypt");
    let wrong: EncryptionContext = [("tenant", "evil")].into_iter().collect();
    let err = client
        .decrypt_blocking(&message, &wrong)
        .expect_err("wrong value");
    assert!(
        matches!(err, Error::Policy(PolicyError::ContextMismatch { ref key, .. }) if key == "tenant"),
        "{err}"
    );
    let missing: EncryptionContext = [("region", "eu")].into_iter().collect();
    let err = client
        .decrypt_blocking(&message, &missing)
        .expect_err("missing pair");
    assert_context_rejected(&err);
}

#[test]
fn required_context_pairs_are_authenticated_but_not_stored() {
    let inner = Arc::new(envelope::DefaultMaterialsManager::new(aes("k", 1)));
    let cmm = Arc::new(RequiredContextMaterialsManager::new(
        inner.clone(),
        ["tenant"],
    ));
    let client = Client::builder()
        .materials_manager(cmm)
        .build()
        .expect("client");
    let message = client
        .encrypt_blocking(b"secret", &context())
        .expect("encrypt");
    assert!(
        !message.windows(4).any(|w| w == b"acme"),
        "the required pair must not be stored"
    );

    let tenant: EncryptionContext = [("tenant", "acme")].into_iter().collect();
    let decrypted = client
        .decrypt_blocking(&message, &tenant)
        .expect("decrypt with the pair");
    assert_eq!(decrypted.plaintext, b"secret");
    assert_eq!(decrypted.encryption_context().get("tenant"), Some("acme"));
    assert_eq!(decrypted.encryption_context().get("purpose"), Some("test"));

    let err = client
        .decrypt_blocking(&message, &EncryptionContext::new())
        .expect_err("pair not supplied");
    assert!(
        matches!(err, Error::Policy(PolicyError::ContextMismatch { .. })),
        "{err}"
    );
    let wrong: EncryptionContext = [("tenant", "other")].into_iter().collect();
    let err = client
        .decrypt_blocking(&message, &wrong)
        .expect_err("wrong value");
    assert_context_rejected(&err);

    // A plain client given the pair again also decrypts (the pair is authenticated).
    let plain = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    assert!(plain.decrypt_blocking(&message, &tenant).is_ok());
    assert_context_rejected(
        &plain
            .decrypt_blocking(&message, &EncryptionContext::new())
            .expect_err("no pair"),
    );
    // Encrypting without the required key fails.
    let no_tenant: EncryptionContext = [("purpose", "x")].into_iter().collect();
    assert!(client.encrypt_blocking(b"x", &no_tenant).is_err());
}

#[test]
fn reserved_prefix_is_rejected_on_encrypt() {
    let client = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    let ec: EncryptionContext = [("aws-crypto-public-key", "x")].into_iter().collect();
    assert!(matches!(
        client.encrypt_blocking(b"x", &ec),
        Err(Error::Format(FormatError::ReservedContextKey(_)))
    ));
}

#[test]
fn max_encrypted_data_keys_on_encrypt_and_decrypt() {
    let multi: Arc<dyn Keyring> = Arc::new(
        MultiKeyring::new(Some(aes("a", 1)), vec![aes("b", 2), aes("c", 3)]).expect("multi"),
    );
    let unlimited = Client::builder()
        .keyring(multi.clone())
        .build()
        .expect("client");
    let message = unlimited
        .encrypt_blocking(b"x", &context())
        .expect("3 EDKs");

    let limited = Client::builder()
        .keyring(multi)
        .max_encrypted_data_keys(2)
        .build()
        .expect("client");
    assert_eq!(
        limited
            .encrypt_blocking(b"x", &context())
            .expect_err("too many on encrypt"),
        Error::Format(FormatError::TooManyEncryptedDataKeys { count: 3, max: 2 })
    );
    assert_eq!(
        limited
            .decrypt_blocking(&message, &context())
            .expect_err("too many on decrypt"),
        Error::Format(FormatError::TooManyEncryptedDataKeys { count: 3, max: 2 })
    );
    // The count check happens before the EDKs are read: cut the message
    // right after the count and the error is still the limit, not truncation.
    let count_offset = 1 + 2 + 32 + 2 + u16::from_be_bytes([message[35], message[36]]) as usize;
    assert_eq!(&message[count_offset..count_offset + 2], &[0, 3]);
    assert_eq!(
        limited
            .decrypt_blocking(&message[..count_offset + 2], &context())
            .expect_err("stops at count"),
        Error::Format(FormatError::TooManyEncryptedDataKeys { count: 3, max: 2 })
    );
}

#[test]
fn commitment_policy_violations_both_ways() {
    let legacy = client_with(
        aes("k", 1),
        CommitmentPolicy::ForbidEncryptAllowDecrypt,
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        4096,
    );
    let message = legacy
        .encrypt_blocking(b"old", &context())
        .expect("encrypt non-committing");
    let strict = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    assert!(matches!(
        strict.decrypt_blocking(&message, &context()),
        Err(Error::Policy(PolicyError::Commitment { .. }))
    ));
    let allow = Client::builder()
        .keyring(aes("k", 1))
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()
        .expect("client");
    assert_eq!(
        allow
            .decrypt_blocking(&message, &context())
            .expect("allowed")
            .plaintext,
        b"old"
    );
    // Encrypting a non-committing suite under a REQUIRE policy is refused at build time.
    assert!(matches!(
        Client::builder()
            .keyring(aes("k", 1))
            .suite(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256)
            .build(),
        Err(Error::Policy(PolicyError::Commitment { .. }))
    ));
    // FORBID defaults to 0x0378, as the official SDKs do, and refuses committing suites.
    let forbid = Client::builder()
        .keyring(aes("k", 1))
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .build()
        .expect("client");
    let message = forbid.encrypt_blocking(b"x", &context()).expect("encrypt");
    assert_eq!(
        forbid
            .decrypt_blocking(&message, &context())
            .expect("decrypt")
            .suite
            .id(),
        0x0378
    );
    assert!(Client::builder()
        .keyring(aes("k", 1))
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .build()
        .is_err());
}

#[test]
fn wrong_wrapping_key_is_a_keyring_error() {
    let writer = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    let message = writer.encrypt_blocking(b"x", &context()).expect("encrypt");
    let reader = Client::builder()
        .keyring(aes("k", 2))
        .build()
        .expect("client");
    let err = reader
        .decrypt_blocking(&message, &context())
        .expect_err("wrong key");
    assert!(matches!(err, Error::Keyring(_)), "{err}");
    assert!(
        err.to_string().contains("test-ns/k"),
        "names the key: {err}"
    );
    let other_name = Client::builder()
        .keyring(aes("other", 1))
        .build()
        .expect("client");
    let err = other_name
        .decrypt_blocking(&message, &context())
        .expect_err("no match");
    assert!(
        err.to_string().contains("no encrypted data key matches"),
        "{err}"
    );
}

/// Flips every bit of small messages of each committing suite, and a
/// sample of bits of a multi-frame one: each flip must fail with no plaintext.
#[test]
fn every_single_bit_flip_is_rejected() {
    let mut flips = 0usize;
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let client = client_with(
            aes("k", 1),
            CommitmentPolicy::RequireEncryptRequireDecrypt,
            suite,
            64,
        );
        let message = client
            .encrypt_blocking(&[0x42; 150], &context())
            .expect("encrypt");
        for byte in 0..message.len() {
            for bit in 0..8 {
                let mut tampered = message.clone();
                tampered[byte] ^= 1 << bit;
                assert!(
                    client.decrypt_blocking(&tampered, &context()).is_err(),
                    "suite {suite}: flip of byte {byte} bit {bit} was accepted"
                );
                flips += 1;
            }
        }
    }
    assert!(flips >= 2000, "only {flips} flips");
    println!("{flips} single-bit flips rejected");
}

#[test]
fn truncation_at_every_offset_is_rejected() {
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let client = client_with(
            aes("k", 1),
            CommitmentPolicy::RequireEncryptRequireDecrypt,
            suite,
            32,
        );
        let message = client
            .encrypt_blocking(&[7u8; 100], &context())
            .expect("encrypt");
        for cut in 0..message.len() {
            assert!(
                client
                    .decrypt_blocking(&message[..cut], &context())
                    .is_err(),
                "suite {suite}: truncation at {cut} of {} accepted",
                message.len()
            );
        }
        let mut extended = message.clone();
        extended.push(0);
        assert_eq!(
            client
                .decrypt_blocking(&extended, &context())
                .expect_err("trailing byte"),
            Error::Format(FormatError::TrailingBytes(1))
        );
    }
}

#[test]
fn garbage_inputs_fail_cleanly() {
    let client = Client::builder()
        .keyring(aes("k", 1))
        .build()
        .expect("client");
    for input in [
        &b""[..],
        b"\x00",
        b"\x03",
        b"\x02\x05\x78",
        b"\x01\x80\x00\x14",
        &[0xFF; 64],
    ] {
        assert!(client
            .decrypt_blocking(input, &EncryptionContext::new())
            .is_err());
    }
}
