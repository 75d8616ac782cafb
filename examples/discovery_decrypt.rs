//! Decrypt with an AWS KMS discovery keyring: the consumer does not know
//! which key encrypted a message, only which accounts it trusts.
//!
//! ```sh
//! export ENVELOPE_KMS_KEY_ARN=arn:aws:kms:us-east-1:111122223333:key/...   # a key you may use
//! # credentials from the standard chain (AWS_ACCESS_KEY_ID/..., AWS_PROFILE, SSO, ...)
//! # optional, for an emulator such as moto: export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:5000
//! cargo run --example discovery_decrypt
//! ```
//!
//! Without the key ARN or any credentials it explains what to set and
//! exits 0, so it can run anywhere.
//!
//! The producer encrypts with a strict keyring for one key. The consumer
//! decrypts with a discovery keyring, which asks KMS to decrypt with the
//! key each encrypted data key names. Always give it a filter: without
//! one, a message whose data key is wrapped by an attacker's KMS key (in
//! an account the attacker controls, and that grants your role Decrypt)
//! decrypts too, so the message proves nothing about who wrote it.

use std::sync::Arc;

use envelope::{Client, EncryptionContext};
use envelope_kms::arn::KmsArn;
use envelope_kms::{AwsKmsDiscoveryKeyring, AwsKmsKeyring, DiscoveryFilter, KmsClientSupplier};

const KEY_VAR: &str = "ENVELOPE_KMS_KEY_ARN";

/// Whether aws-config's default chain has something to find: an
/// environment variable it reads, or a shared config or credentials file.
fn credentials_configured() -> bool {
    let env = [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ];
    if env.iter().any(|var| std::env::var_os(var).is_some()) {
        return true;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let files = [
        std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(Into::into),
        std::env::var_os("AWS_CONFIG_FILE").map(Into::into),
        home.as_ref().map(|h| h.join(".aws/credentials")),
        home.as_ref().map(|h| h.join(".aws/config")),
    ];
    files
        .into_iter()
        .flatten()
        .any(|path: std::path::PathBuf| path.is_file())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key_arn = std::env::var(KEY_VAR).ok().filter(|v| !v.is_empty());
    let (Some(key_arn), true) = (key_arn, credentials_configured()) else {
        println!(
            "discovery_decrypt: skipped, no AWS KMS to talk to.\n  \
             Set {KEY_VAR} to a KMS key ARN you may encrypt and decrypt with, and AWS \
             credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...);\n  \
             for an emulator also AWS_ENDPOINT_URL_KMS (e.g. http://127.0.0.1:5000 for moto) \
             and AWS_REGION."
        );
        return Ok(());
    };
    let arn = KmsArn::parse(&key_arn).map_err(|e| format!("{KEY_VAR}: {e}"))?;
    let supplier = KmsClientSupplier::from_env().await;
    let context: EncryptionContext = [("purpose", "discovery-example")].into_iter().collect();

    // Producer: knows the key.
    let producer = Client::builder()
        .keyring(Arc::new(AwsKmsKeyring::new(
            key_arn.clone(),
            supplier.clone(),
        )?))
        .build()?;
    let message = producer
        .encrypt(b"a record for whoever holds the key", &context)
        .await?;
    println!("encrypted {} bytes under {key_arn}", message.len());

    // Consumer: knows only the account it trusts.
    let trusted = DiscoveryFilter::new(arn.partition.clone(), vec![arn.account.clone()])?;
    let consumer = Client::builder()
        .keyring(Arc::new(AwsKmsDiscoveryKeyring::new(
            supplier.clone(),
            Some(trusted),
        )))
        .build()?;
    let decrypted = consumer.decrypt(&message, &context).await?;
    println!(
        "decrypted with discovery (account {} in partition {}): {:?}",
        arn.account,
        arn.partition,
        String::from_utf8_lossy(&decrypted.plaintext)
    );
    for edk in &decrypted.header.encrypted_data_keys {
        println!(
            "  the message named {} key {}",
            edk.provider_id,
            String::from_utf8_lossy(&edk.provider_info)
        );
    }

    // A consumer that trusts another account refuses the same message
    // without calling KMS with the foreign key.
    let other_account = if arn.account == "111122223333" {
        "444455556666"
    } else {
        "111122223333"
    };
    let elsewhere = Client::builder()
        .keyring(Arc::new(AwsKmsDiscoveryKeyring::new(
            supplier,
            Some(DiscoveryFilter::new(
                arn.partition.clone(),
                vec![other_account.to_owned()],
            )?),
        )))
        .build()?;
    match elsewhere.decrypt(&message, &context).await {
        Ok(_) => return Err("a filter for another account decrypted the message".into()),
        Err(e) => println!("a consumer trusting only account {other_account} refuses it: {e}"),
    }
    Ok(())
}
