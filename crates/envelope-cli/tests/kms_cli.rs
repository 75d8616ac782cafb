//! The CLI with AWS KMS keys against a real KMS emulator (moto on
//! 127.0.0.1): `kms:` wrapping keys by alias and ARN, and `--discovery`
//! with and without an account filter. The harness is envelope-kms's.

#[path = "../../envelope-kms/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn envelope(emulator: &support::Emulator, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_envelope"))
        .args(args)
        .env("AWS_ENDPOINT_URL_KMS", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", support::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", support::SECRET_KEY)
        .env("AWS_REGION", support::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envelope");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn kms_keys_and_discovery_through_the_binary() {
    let emulator = support::Emulator::moto();
    let admin = support::admin(&emulator, support::REGION).await;
    let first = support::create_key(&admin).await;
    let second = support::create_key(&admin).await;
    admin
        .create_alias()
        .alias_name("alias/envelope-cli")
        .target_key_id(&first)
        .send()
        .await
        .expect("CreateAlias");
    let account = first.split(':').nth(4).expect("account in ARN").to_owned();

    let dir = tempfile::tempdir().expect("tempdir");
    let metadata = dir.path().join("metadata.json");
    let sealed = envelope(
        &emulator,
        &[
            "encrypt",
            "-i",
            "-",
            "-o",
            "-",
            "-w",
            "kms:alias/envelope-cli",
            "-w",
            &format!("kms:{second}"),
            "-c",
            "app=cli",
            "--metadata-output",
            metadata.to_str().expect("utf-8 path"),
        ],
        b"kms via the CLI",
    );
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    let message = sealed.stdout;

    // The metadata names each KMS key by ARN, as text.
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&metadata).expect("metadata"))
            .expect("one JSON object");
    let keys: Vec<(String, String)> = record["header"]["encrypted_data_keys"]
        .as_array()
        .expect("EDKs")
        .iter()
        .map(|edk| {
            let provider = &edk["key_provider"];
            assert_eq!(provider["key_info_encoding"], "utf-8");
            (
                provider["provider_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                provider["key_info"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("aws-kms".to_owned(), first.clone()),
            ("aws-kms".to_owned(), second.clone())
        ]
    );

    for args in [
        vec!["-w".to_owned(), format!("kms:{second}")],
        vec!["--discovery".to_owned()],
        vec![
            "--discovery".to_owned(),
            "--discovery-account".to_owned(),
            account.clone(),
        ],
    ] {
        let mut full = vec!["decrypt", "-i", "-", "-o", "-", "-c", "app=cli"];
        full.extend(args.iter().map(String::as_str));
        let out = envelope(&emulator, &full, &message);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"kms via the CLI", "{args:?}");
    }

    let out = envelope(
        &emulator,
        &[
            "decrypt",
            "-i",
            "-",
            "-o",
            "-",
            "--discovery",
            "--discovery-account",
            "111122223333",
        ],
        &message,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a filtered-out account cannot decrypt"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .lines()
            .count(),
        1
    );

    let out = envelope(&emulator, &["decrypt", "-i", "-", "-o", "-"], &message);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no key and no --discovery is a usage error"
    );
}
