//! KMS keyrings against a real moto server on loopback (one per binary).

mod support;

use std::sync::Arc;

use envelope_core::error::{Error, KeyringError};
use envelope_core::keyring::Keyring;
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{AlgorithmSuite, Client, EncryptedDataKey, EncryptionContext};
use envelope_kms::arn::KmsArn;
use envelope_kms::{
    keyring_from_specs_with, multi_key_keyring, AwsKmsDiscoveryKeyring, AwsKmsKeyring,
    DiscoveryFilter, DiscoverySpec, KmsClientSupplier,
};
use envelope_kms::{KmsError, KmsErrorKind};
use support::{admin, create_key, kms_errors, shared_moto, supplier, REGION};

const PLAINTEXT: &[u8] = b"a secret worth wrapping with AWS KMS, twice over";

fn context() -> EncryptionContext {
    [("purpose", "envelope-kms-test"), ("tenant", "alpha")]
        .into_iter()
        .collect()
}

fn client(keyring: impl Keyring + 'static) -> Client {
    Client::builder()
        .keyring(Arc::new(keyring))
        .build()
        .unwrap()
}

fn provider_infos(decrypted: &envelope_core::Decrypted) -> Vec<String> {
    decrypted
        .header
        .encrypted_data_keys
        .iter()
        .map(|edk| {
            assert_eq!(edk.provider_id, "aws-kms");
            String::from_utf8(edk.provider_info.clone()).unwrap()
        })
        .collect()
}

async fn setup(keys: usize) -> (KmsClientSupplier, Vec<String>) {
    let moto = shared_moto();
    let admin = admin(moto, REGION).await;
    let mut arns = Vec::new();
    for _ in 0..keys {
        arns.push(create_key(&admin).await);
    }
    (supplier(moto).await, arns)
}

#[tokio::test]
async fn round_trip_with_one_key() {
    let (supplier, keys) = setup(1).await;
    let client = client(AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap());
    let message = client.encrypt(PLAINTEXT, &context()).await.unwrap();
    let decrypted = client.decrypt(&message, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(provider_infos(&decrypted), vec![keys[0].clone()]);
    let counter = supplier.request_counter();
    assert_eq!(counter.count("GenerateDataKey"), 1);
    assert_eq!(counter.count("Decrypt"), 1);
    assert_eq!(counter.total(), 2, "{:?}", counter.snapshot());
}

#[tokio::test]
async fn round_trip_with_three_keys_and_decrypt_with_the_second_only() {
    let (supplier, keys) = setup(3).await;
    let encryptor = client(multi_key_keyring(&keys, &supplier, false).unwrap());
    let message = encryptor.encrypt(PLAINTEXT, &context()).await.unwrap();
    let counter = supplier.request_counter();
    assert_eq!(counter.count("GenerateDataKey"), 1);
    assert_eq!(counter.count("Encrypt"), 2);

    let decrypted = encryptor.decrypt(&message, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(
        provider_infos(&decrypted),
        keys,
        "one EDK per key, in order, named by ARN"
    );
    assert_eq!(
        counter.count("Decrypt"),
        1,
        "the generator's EDK decrypts first"
    );

    counter.reset();
    let second_only = client(AwsKmsKeyring::new(&keys[1], supplier.clone()).unwrap());
    let decrypted = second_only.decrypt(&message, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(
        counter.count("Decrypt"),
        1,
        "only the second key's EDK goes to KMS"
    );
    assert_eq!(counter.total(), 1);
}

#[tokio::test]
async fn a_wrong_encryption_context_is_an_invalid_ciphertext_error() {
    let (supplier, keys) = setup(1).await;
    let keyring = AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap();
    let suite = AlgorithmSuite::default();

    let mut encryption = EncryptionMaterials::new(suite, context());
    keyring.on_encrypt(&mut encryption).await.unwrap();
    let edks = encryption.encrypted_data_keys.clone();

    let mut wrong = context();
    wrong.insert("tenant", "beta");
    let mut decryption = DecryptionMaterials::new(suite, wrong);
    let error = keyring
        .on_decrypt(&mut decryption, &edks)
        .await
        .unwrap_err();
    match KmsError::find_in(&error)[..] {
        [KmsError { key_id, kind, .. }] => {
            assert_eq!(key_id, &keys[0]);
            assert_eq!(*kind, KmsErrorKind::InvalidCiphertext);
        }
        _ => panic!("expected a KMS error, got {error:?}"),
    }
    assert!(!error.is_retryable());
    assert!(decryption.data_key.is_none());

    // The right context unwraps the same EDK.
    let mut decryption = DecryptionMaterials::new(suite, context());
    keyring.on_decrypt(&mut decryption, &edks).await.unwrap();
    assert_eq!(
        decryption
            .data_key
            .as_ref()
            .map(|k| k.expose_secret().to_vec()),
        encryption
            .data_key
            .as_ref()
            .map(|k| k.expose_secret().to_vec())
    );

    // Through the client: a message whose stored context was altered gets
    // no data key from KMS.
    let client = client(keyring);
    let mut message = client.encrypt(PLAINTEXT, &context()).await.unwrap();
    let at = message.windows(5).position(|w| w == b"alpha").unwrap();
    message[at + 4] = b'b';
    let error = client
        .decrypt(&message, &EncryptionContext::new())
        .await
        .unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(keys[0].clone(), KmsErrorKind::InvalidCiphertext)],
        "{error}"
    );
}

#[tokio::test]
async fn an_unknown_key_is_a_not_found_error_naming_the_key() {
    let (supplier, keys) = setup(1).await;
    let account = KmsArn::parse(&keys[0]).unwrap().account;
    let unknown =
        format!("arn:aws:kms:{REGION}:{account}:key/00000000-1111-2222-3333-444444444444");
    let client = client(AwsKmsKeyring::new(&unknown, supplier).unwrap());
    let error = client.encrypt(PLAINTEXT, &context()).await.unwrap_err();
    assert_eq!(
        kms_errors(&error),
        vec![(unknown.clone(), KmsErrorKind::NotFound)],
        "{error}"
    );
    assert!(error.to_string().contains(&unknown), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn an_alias_encrypts_and_the_edk_names_the_key_arn() {
    let (supplier, keys) = setup(1).await;
    let moto = shared_moto();
    let alias = "alias/envelope-kms-test-alias";
    admin(moto, REGION)
        .await
        .create_alias()
        .alias_name(alias)
        .target_key_id(&keys[0])
        .send()
        .await
        .unwrap();
    let by_alias = client(AwsKmsKeyring::new(alias, supplier.clone()).unwrap());
    let message = by_alias.encrypt(PLAINTEXT, &context()).await.unwrap();

    let by_arn = client(AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap());
    let decrypted = by_arn.decrypt(&message, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(
        provider_infos(&decrypted),
        vec![keys[0].clone()],
        "provider info is the ARN KMS returned"
    );

    // As in the official SDKs, a keyring configured with an alias never
    // matches an EDK on decrypt, and sends nothing to KMS trying.
    supplier.request_counter().reset();
    let error = by_alias.decrypt(&message, &context()).await.unwrap_err();
    assert!(
        matches!(error, Error::Keyring(KeyringError::NoMatchingKey { .. })),
        "{error}"
    );
    assert_eq!(supplier.request_counter().count("Decrypt"), 0);

    // The alias ARN form works for encryption too.
    let account = KmsArn::parse(&keys[0]).unwrap().account;
    let alias_arn = format!("arn:aws:kms:{REGION}:{account}:{alias}");
    let message = client(AwsKmsKeyring::new(alias_arn, supplier.clone()).unwrap())
        .encrypt(PLAINTEXT, &context())
        .await
        .unwrap();
    assert_eq!(
        by_arn
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );
}

/// A copy of `edk` that claims to come from `account`.
fn foreign(edk: &EncryptedDataKey, account: &str) -> EncryptedDataKey {
    let arn = KmsArn::parse(std::str::from_utf8(&edk.provider_info).unwrap()).unwrap();
    EncryptedDataKey {
        provider_info: KmsArn {
            account: account.into(),
            ..arn
        }
        .to_string()
        .into_bytes(),
        ..edk.clone()
    }
}

#[tokio::test]
async fn discovery_filter_keeps_other_accounts_edks_away_from_kms() {
    let (supplier, keys) = setup(1).await;
    let account = KmsArn::parse(&keys[0]).unwrap().account;
    let other_account = "111122223333";
    let suite = AlgorithmSuite::default();
    let mut encryption = EncryptionMaterials::new(suite, context());
    AwsKmsKeyring::new(&keys[0], supplier.clone())
        .unwrap()
        .on_encrypt(&mut encryption)
        .await
        .unwrap();
    let real = encryption.encrypted_data_keys[0].clone();
    // The other account's EDK comes first, so an unfiltered keyring tries it.
    let edks = vec![foreign(&real, other_account), real];
    let counter = supplier.request_counter();

    let run = |filter: Option<DiscoveryFilter>| {
        let keyring = AwsKmsDiscoveryKeyring::new(supplier.clone(), filter);
        let edks = edks.clone();
        async move {
            counter.reset();
            let mut materials = DecryptionMaterials::new(suite, context());
            let result = keyring.on_decrypt(&mut materials, &edks).await;
            (
                result,
                materials.data_key.is_some(),
                counter.count("Decrypt"),
            )
        }
    };

    // No filter: both EDKs go to KMS; the foreign one fails, the real one unwraps.
    let (result, unwrapped, decrypt_calls) = run(None).await;
    assert!(result.is_ok() && unwrapped, "{result:?}");
    assert_eq!(decrypt_calls, 2);

    // Filter on our account: the other account's EDK is never sent.
    let (result, unwrapped, decrypt_calls) = run(Some(
        DiscoveryFilter::new("aws", vec![account.clone()]).unwrap(),
    ))
    .await;
    assert!(result.is_ok() && unwrapped, "{result:?}");
    assert_eq!(decrypt_calls, 1);

    // Filter on the other account only: its EDK is sent (moto answers for
    // our key, which the response check rejects); ours is not.
    let (result, unwrapped, decrypt_calls) = run(Some(
        DiscoveryFilter::new("aws", vec![other_account.into()]).unwrap(),
    ))
    .await;
    assert!(
        matches!(result.as_ref().map_err(KmsError::find_in), Err(found) if matches!(found[..], [KmsError { kind: KmsErrorKind::InvalidResponse, key_id, .. }] if key_id.contains(other_account))),
        "{result:?}"
    );
    assert!(!unwrapped);
    assert_eq!(decrypt_calls, 1);

    // Filter on a third account: nothing is sent, nothing matches.
    let (result, unwrapped, decrypt_calls) = run(Some(
        DiscoveryFilter::new("aws", vec!["444455556666".into()]).unwrap(),
    ))
    .await;
    assert!(
        matches!(result, Err(KeyringError::NoMatchingKey { .. })),
        "{result:?}"
    );
    assert!(!unwrapped);
    assert_eq!(decrypt_calls, 0);

    // Right account, wrong partition: nothing is sent.
    let (result, _, decrypt_calls) =
        run(Some(DiscoveryFilter::new("aws-cn", vec![account]).unwrap())).await;
    assert!(
        matches!(result, Err(KeyringError::NoMatchingKey { .. })),
        "{result:?}"
    );
    assert_eq!(decrypt_calls, 0);
}

#[tokio::test]
async fn discovery_round_trips_through_the_client_and_cannot_encrypt() {
    let (supplier, keys) = setup(2).await;
    let account = KmsArn::parse(&keys[0]).unwrap().account;
    let message = client(multi_key_keyring(&keys, &supplier, false).unwrap())
        .encrypt(PLAINTEXT, &context())
        .await
        .unwrap();
    for filter in [
        None,
        Some(DiscoveryFilter::new("aws", vec![account.clone()]).unwrap()),
    ] {
        supplier.request_counter().reset();
        let discovery = client(AwsKmsDiscoveryKeyring::new(supplier.clone(), filter));
        let decrypted = discovery.decrypt(&message, &context()).await.unwrap();
        assert_eq!(decrypted.plaintext, PLAINTEXT);
        assert_eq!(supplier.request_counter().count("Decrypt"), 1);
        let error = discovery.encrypt(PLAINTEXT, &context()).await.unwrap_err();
        assert!(
            matches!(error, Error::Keyring(KeyringError::WrapFailed { .. })),
            "{error}"
        );
    }
}

#[tokio::test]
async fn cli_specs_build_strict_and_discovery_keyrings() {
    let (supplier, keys) = setup(2).await;
    let account = KmsArn::parse(&keys[0]).unwrap().account;
    let specs: Vec<String> = keys.iter().map(|k| format!("kms:{k}")).collect();
    let encryptor = Client::builder()
        .keyring(keyring_from_specs_with(&supplier, &specs, None).unwrap())
        .build()
        .unwrap();
    let message = encryptor.encrypt(PLAINTEXT, &context()).await.unwrap();
    assert_eq!(supplier.request_counter().count("GenerateDataKey"), 1);
    assert_eq!(supplier.request_counter().count("Encrypt"), 1);

    let second = Client::builder()
        .keyring(keyring_from_specs_with(&supplier, &specs[1..], None).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        second
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );

    let discovery = DiscoverySpec {
        partition: None,
        account_ids: vec![account],
    };
    let discovering = Client::builder()
        .keyring(keyring_from_specs_with(&supplier, &[], Some(discovery)).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        discovering
            .decrypt(&message, &context())
            .await
            .unwrap()
            .plaintext,
        PLAINTEXT
    );

    let nobody = DiscoverySpec {
        partition: None,
        account_ids: vec!["111122223333".into()],
    };
    let refusing = Client::builder()
        .keyring(keyring_from_specs_with(&supplier, &[], Some(nobody)).unwrap())
        .build()
        .unwrap();
    assert!(refusing.decrypt(&message, &context()).await.is_err());

    assert!(keyring_from_specs_with(&supplier, &[], None).is_err());
    assert!(keyring_from_specs_with(&supplier, &["kms:arn:aws:s3:::bucket".into()], None).is_err());
    let partition_only = DiscoverySpec {
        partition: Some("aws".into()),
        account_ids: vec![],
    };
    assert!(keyring_from_specs_with(&supplier, &[], Some(partition_only)).is_err());
}

#[tokio::test]
async fn the_supplier_builds_one_client_per_region_and_caches_it() {
    let (supplier, keys) = setup(1).await;
    assert_eq!(supplier.cached_clients(), 0);
    let keyring = client(AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap());
    for _ in 0..3 {
        keyring.encrypt(PLAINTEXT, &context()).await.unwrap();
    }
    assert_eq!(supplier.cached_clients(), 1);
    supplier.client_for_key("alias/whatever").unwrap(); // default region: us-east-1
    assert_eq!(supplier.cached_clients(), 1);
    supplier.client("eu-west-1");
    supplier.client("eu-west-1");
    assert_eq!(supplier.cached_clients(), 2);
}

/// Runs the official Python ESDK's KMS master key provider.
fn python(mode: &str, key: &str, input: &[u8]) -> Vec<u8> {
    let python = support::require(".venv/bin/python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop.py");
    let dir = tempfile::tempdir().unwrap();
    let (in_path, out_path) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::write(&in_path, input).unwrap();
    let context_json = serde_json::to_string(
        &context()
            .iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
    .unwrap();
    let output = std::process::Command::new(python)
        .arg(script)
        .args([mode, key, &context_json])
        .arg(&in_path)
        .arg(&out_path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL_KMS", &shared_moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", support::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", support::SECRET_KEY)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python {mode} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out_path).unwrap()
}

#[tokio::test]
async fn python_esdk_interop_in_both_directions() {
    let (supplier, keys) = setup(1).await;
    let ours = client(AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap());

    // Python encrypts, we decrypt.
    let from_python = tokio::task::spawn_blocking({
        let key = keys[0].clone();
        move || python("encrypt", &key, PLAINTEXT)
    })
    .await
    .unwrap();
    let decrypted = ours.decrypt(&from_python, &context()).await.unwrap();
    assert_eq!(decrypted.plaintext, PLAINTEXT);
    assert_eq!(provider_infos(&decrypted), vec![keys[0].clone()]);
    assert_eq!(decrypted.encryption_context().get("tenant"), Some("alpha"));
    assert_eq!(supplier.request_counter().count("Decrypt"), 1);

    // We encrypt, Python decrypts.
    let message = ours.encrypt(PLAINTEXT, &context()).await.unwrap();
    let key = keys[0].clone();
    let plaintext = tokio::task::spawn_blocking(move || python("decrypt", &key, &message))
        .await
        .unwrap();
    assert_eq!(plaintext, PLAINTEXT);
}

/// Captures the JSON body of each GenerateDataKey and Decrypt request
/// (neither carries key material; Encrypt requests are not captured).
#[derive(Clone, Debug, Default)]
struct Bodies(Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>);

impl aws_sdk_kms::config::Intercept for Bodies {
    fn name(&self) -> &'static str {
        "request body recorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_kms::config::RuntimeComponents,
        _: &mut aws_sdk_kms::config::ConfigBag,
    ) -> Result<(), aws_sdk_kms::error::BoxError> {
        let request = context.request();
        let target = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        if target.ends_with(".GenerateDataKey") || target.ends_with(".Decrypt") {
            let body = serde_json::from_slice(request.body().bytes().unwrap_or_default())?;
            self.0.lock().unwrap().push((target, body));
        }
        Ok(())
    }
}

#[tokio::test]
async fn requests_carry_the_full_context_grant_tokens_and_key_id() {
    let moto = shared_moto();
    let key = create_key(&admin(moto, REGION).await).await;
    let bodies = Bodies::default();
    let supplier = KmsClientSupplier::builder()
        .sdk_config(support::sdk_config(moto, REGION).await)
        .interceptor(bodies.clone())
        .build()
        .await;
    let tokens = vec!["grant-token-1".to_owned(), "grant-token-2".to_owned()];
    let client = client(
        AwsKmsKeyring::new(&key, supplier)
            .unwrap()
            .with_grant_tokens(tokens.clone()),
    );
    let message = client.encrypt(PLAINTEXT, &context()).await.unwrap();
    client.decrypt(&message, &context()).await.unwrap();

    let bodies = bodies.0.lock().unwrap();
    let [(generate_op, generate), (decrypt_op, decrypt)] = bodies.as_slice() else {
        panic!(
            "expected GenerateDataKey then Decrypt, got {} requests",
            bodies.len()
        )
    };
    assert_eq!(generate_op, "TrentService.GenerateDataKey");
    assert_eq!(decrypt_op, "TrentService.Decrypt");
    for body in [generate, decrypt] {
        assert_eq!(body["KeyId"], key.as_str());
        assert_eq!(body["GrantTokens"], serde_json::json!(tokens));
        let sent = body["EncryptionContext"].as_object().unwrap();
        assert_eq!(sent["purpose"], "envelope-kms-test");
        assert_eq!(sent["tenant"], "alpha");
        // The default suite is signed: the full context includes the public key.
        assert!(sent.contains_key("aws-crypto-public-key"), "{sent:?}");
        assert_eq!(sent.len(), 3);
    }
    assert_eq!(generate["NumberOfBytes"], 32);
}

#[tokio::test]
async fn a_data_key_of_the_wrong_length_is_rejected_and_the_next_edk_tried() {
    let (supplier, keys) = setup(1).await;
    let moto = shared_moto();
    let suite = AlgorithmSuite::default();
    // An EDK that KMS really decrypts, but to 16 bytes where the suite needs 32.
    let short = admin(moto, REGION)
        .await
        .encrypt()
        .key_id(&keys[0])
        .plaintext(aws_sdk_kms::primitives::Blob::new(vec![7u8; 16]))
        .set_encryption_context(Some(
            context()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    let short = EncryptedDataKey {
        provider_id: "aws-kms".into(),
        provider_info: keys[0].clone().into_bytes(),
        ciphertext: short.ciphertext_blob.unwrap().into_inner(),
    };
    let keyring = AwsKmsKeyring::new(&keys[0], supplier.clone()).unwrap();
    let mut materials = DecryptionMaterials::new(suite, context());
    let error = keyring
        .on_decrypt(&mut materials, std::slice::from_ref(&short))
        .await
        .unwrap_err();
    assert!(
        matches!(KmsError::find_in(&error)[..], [KmsError { kind: KmsErrorKind::InvalidResponse, message, .. }] if message.contains("16 bytes")),
        "{error:?}"
    );
    assert!(materials.data_key.is_none());

    // With a good EDK after it, the bad one's error is recorded and the good one wins.
    let mut encryption = EncryptionMaterials::new(suite, context());
    keyring.on_encrypt(&mut encryption).await.unwrap();
    let edks = vec![short, encryption.encrypted_data_keys[0].clone()];
    supplier.request_counter().reset();
    let mut materials = DecryptionMaterials::new(suite, context());
    keyring.on_decrypt(&mut materials, &edks).await.unwrap();
    assert!(materials.data_key.is_some());
    assert_eq!(supplier.request_counter().count("Decrypt"), 2);
}
