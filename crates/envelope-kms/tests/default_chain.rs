//! aws-config's default chain: a profile with `credential_process` and the
//! `AWS_ENDPOINT_URL_KMS` override, against moto.
//!
//! This binary holds a single test because it sets process-wide
//! environment variables.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;
use envelope_core::{Client, EncryptionContext};
use envelope_kms::{keyring_from_specs, AwsKmsKeyring, DiscoverySpec, KmsClientSupplier};
use support::{admin, create_key, Emulator, REGION};

const PROCESS_ACCESS_KEY: &str = "AKIDFROMCREDPROCESS";
const PROCESS_TOKEN: &str = "session-token-from-credential-process";

/// Records what each signed request carried.
#[derive(Debug, Default)]
struct Seen {
    authorization: Vec<String>,
    security_token: Vec<String>,
    hosts: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "test recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let mut seen = self.0.lock().unwrap();
        seen.authorization.push(
            request
                .headers()
                .get("authorization")
                .unwrap_or_default()
                .to_owned(),
        );
        seen.security_token.push(
            request
                .headers()
                .get("x-amz-security-token")
                .unwrap_or_default()
                .to_owned(),
        );
        seen.hosts.push(request.uri().to_owned());
        Ok(())
    }
}

#[tokio::test]
async fn credential_process_profile_and_endpoint_env_override() {
    let moto = Emulator::moto();
    let key = create_key(&admin(&moto, REGION).await).await;
    let account = key.split(':').nth(4).unwrap().to_owned();

    // A credential helper in the shape of IAM Roles Anywhere's signing helper.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = dir.path().join("credential-helper.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho ran >> '{marker}'\ncat <<'JSON'\n{{\"Version\": 1, \"AccessKeyId\": \"{PROCESS_ACCESS_KEY}\", \
             \"SecretAccessKey\": \"secret-from-credential-process\", \"SessionToken\": \"{PROCESS_TOKEN}\", \
             \"Expiration\": \"2099-01-01T00:00:00Z\"}}\nJSON\n",
            marker = marker.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = eu-central-1\n\n[profile roles-anywhere]\nregion = {REGION}\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();

    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        dir.path().join("no-credentials-file"),
    );
    std::env::set_var("AWS_PROFILE", "roles-anywhere");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_ENDPOINT_URL_KMS", &moto.endpoint);

    let recorder = Recorder::default();
    let supplier = KmsClientSupplier::builder()
        .interceptor(recorder.clone())
        .build()
        .await;
    assert_eq!(
        supplier.default_region(),
        Some(REGION),
        "region from the profile"
    );

    // A key id that is not an ARN resolves in the profile's region.
    let key_id = key.rsplit_once('/').unwrap().1.to_owned();
    let context: EncryptionContext = [("app", "roles-anywhere")].into_iter().collect();
    let by_id = Client::builder()
        .keyring(Arc::new(
            AwsKmsKeyring::new(&key_id, supplier.clone()).unwrap(),
        ))
        .build()
        .unwrap();
    let message = by_id
        .encrypt(b"from the default chain", &context)
        .await
        .unwrap();
    let by_arn = Client::builder()
        .keyring(Arc::new(
            AwsKmsKeyring::new(&key, supplier.clone()).unwrap(),
        ))
        .build()
        .unwrap();
    assert_eq!(
        by_arn.decrypt(&message, &context).await.unwrap().plaintext,
        b"from the default chain"
    );

    {
        let seen = recorder.0.lock().unwrap();
        assert_eq!(seen.authorization.len(), 2);
        for (auth, token) in seen.authorization.iter().zip(&seen.security_token) {
            assert!(
                auth.contains(&format!("Credential={PROCESS_ACCESS_KEY}/"))
                    && auth.contains(&format!("/{REGION}/kms/")),
                "signed with the credential_process key in the profile's region: {auth}"
            );
            assert_eq!(token, PROCESS_TOKEN);
        }
        for uri in &seen.hosts {
            assert!(
                uri.starts_with(&moto.endpoint),
                "AWS_ENDPOINT_URL_KMS honoured: {uri}"
            );
        }
    }
    let runs = std::fs::read_to_string(&marker).expect("the credential helper ran");
    assert!(runs.lines().count() >= 1);

    // The CLI's entry point loads the same chain.
    let specs = vec![format!("kms:{key}")];
    let cli_encrypt = Client::builder()
        .keyring(keyring_from_specs(&specs, None).await.unwrap())
        .build()
        .unwrap();
    let message = cli_encrypt.encrypt(b"cli path", &context).await.unwrap();
    let discovery = DiscoverySpec {
        partition: Some("aws".into()),
        account_ids: vec![account],
    };
    let cli_decrypt = Client::builder()
        .keyring(keyring_from_specs(&[], Some(discovery)).await.unwrap())
        .build()
        .unwrap();
    assert_eq!(
        cli_decrypt
            .decrypt(&message, &context)
            .await
            .unwrap()
            .plaintext,
        b"cli path"
    );
}
