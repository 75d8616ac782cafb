//! Timeouts and unreachable endpoints become retryable typed errors, after
//! the configured retries. Real sockets on loopback: one that accepts and
//! never answers, and one that refuses connections.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::config::{Credentials, Region};
use envelope_core::error::{Error, KeyringError};
use envelope_core::{Client, EncryptionContext};
use envelope_kms::{AwsKmsKeyring, KmsClientSupplier, KmsSettings};
use envelope_kms::{KmsError, KmsErrorKind};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

async fn config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .load()
        .await
}

async fn encrypt_error(endpoint: String, settings: KmsSettings) -> (KeyringError, u64, Duration) {
    let supplier = KmsClientSupplier::builder()
        .sdk_config(config().await)
        .endpoint_url(endpoint)
        .settings(settings)
        .build()
        .await;
    let client = Client::builder()
        .keyring(Arc::new(AwsKmsKeyring::new(KEY, supplier.clone()).unwrap()))
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client
        .encrypt(b"x", &EncryptionContext::new())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.is_retryable(), "{error}");
    let Error::Keyring(error) = error else {
        panic!("expected a keyring error, got {error}")
    };
    (
        error,
        supplier.request_counter().count("GenerateDataKey"),
        elapsed,
    )
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_after_the_retries() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // Accept connections and hold them open without a byte of response.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let settings = KmsSettings {
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_millis(300),
        operation_timeout: Duration::from_secs(5),
        max_attempts: 2,
    };
    let (error, attempts, elapsed) = encrypt_error(endpoint, settings).await;
    assert!(
        matches!(KmsError::find_in(&error)[..], [KmsError { key_id, kind: KmsErrorKind::Timeout, .. }] if key_id == KEY),
        "{error:?}"
    );
    assert_eq!(attempts, 2, "the attempt timed out and was retried once");
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );

    // The operation timeout caps the whole call, retries included.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let settings = KmsSettings {
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_millis(400),
        max_attempts: 3,
    };
    let (error, attempts, elapsed) = encrypt_error(endpoint, settings).await;
    assert!(
        matches!(
            KmsError::find_in(&error)[..],
            [KmsError {
                kind: KmsErrorKind::Timeout,
                ..
            }]
        ),
        "{error:?}"
    );
    assert_eq!(attempts, 1);
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_network_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = KmsSettings {
        max_attempts: 3,
        ..KmsSettings::default()
    };
    let (error, attempts, _) = encrypt_error(format!("http://127.0.0.1:{port}"), settings).await;
    assert!(
        matches!(KmsError::find_in(&error)[..], [KmsError { key_id, kind: KmsErrorKind::Network, .. }] if key_id == KEY),
        "{error:?}"
    );
    assert_eq!(attempts, 3, "connection failures are retried");
}
