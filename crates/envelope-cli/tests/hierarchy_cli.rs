//! The CLI with the hierarchical keyring, against moto (DynamoDB + KMS) on
//! 127.0.0.1: `key-store create-table|create-key|version-key`, then
//! `--wrapping-key hierarchy:ID` encrypt and decrypt across a rotation,
//! and the failures: exit codes, and no output file left.

#[path = "../../envelope-kms/tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Output};

fn envelope(emulator: &support::Emulator, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_envelope"))
        .args(args)
        .env("AWS_ENDPOINT_URL_KMS", &emulator.endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", support::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", support::SECRET_KEY)
        .env("AWS_REGION", support::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .expect("run envelope")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[tokio::test]
async fn key_store_admin_and_hierarchy_wrapping_keys() {
    let emulator = support::Emulator::moto();
    let kms = support::admin(&emulator, support::REGION).await;
    let arn = support::create_key(&kms).await;
    let table = "cli-branch-keys";
    ok(envelope(
        &emulator,
        &["key-store", "create-table", "--table", table],
    ));
    ok(envelope(
        &emulator,
        &["key-store", "create-table", "--table", table],
    ));
    let created = ok(envelope(
        &emulator,
        &[
            "key-store",
            "create-key",
            "--table",
            table,
            "--kms-key",
            &arn,
        ],
    ));
    let random_id = created
        .lines()
        .last()
        .expect("the id is the last line")
        .to_owned();
    assert_eq!(random_id.len(), 36, "{random_id}");
    let created = ok(envelope(
        &emulator,
        &[
            "key-store",
            "create-key",
            "--table",
            table,
            "--kms-key",
            &arn,
            "--branch-key-id",
            "tenant-acme",
            "-c",
            "tenant=acme",
        ],
    ));
    assert_eq!(created.lines().last(), Some("tenant-acme"));

    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("report.csv");
    std::fs::write(&plain, b"id,amount\n1,100\n").expect("write");
    let sealed = dir.path().join("report.csv.encrypted");
    let store = ["--key-store-table", table, "--key-store-kms-key", &arn];
    let mut encrypt = vec![
        "encrypt",
        "-i",
        s(&plain),
        "-o",
        s(&sealed),
        "-w",
        "hierarchy:tenant-acme",
        "-c",
        "tenant=acme",
    ];
    encrypt.extend(store);
    ok(envelope(&emulator, &encrypt));
    let opened = dir.path().join("report.out");
    let mut decrypt = vec![
        "decrypt",
        "-i",
        s(&sealed),
        "-o",
        s(&opened),
        "-w",
        "hierarchy:tenant-acme",
        "-c",
        "tenant=acme",
    ];
    decrypt.extend(store);
    ok(envelope(&emulator, &decrypt));
    assert_eq!(
        std::fs::read(&opened).expect("read"),
        std::fs::read(&plain).expect("read")
    );

    // A rotation: the old message still decrypts; new ones use the new version.
    ok(envelope(
        &emulator,
        &[
            "key-store",
            "version-key",
            "--table",
            table,
            "--kms-key",
            &arn,
            "--branch-key-id",
            "tenant-acme",
        ],
    ));
    std::fs::remove_file(&opened).expect("rm");
    ok(envelope(&emulator, &decrypt));
    let sealed2 = dir.path().join("report2.encrypted");
    encrypt[4] = s(&sealed2);
    ok(envelope(&emulator, &encrypt));
    assert_ne!(
        std::fs::read(&sealed).expect("read")[..],
        std::fs::read(&sealed2).expect("read")[..]
    );

    // Failures: a required pair the message lacks, another branch key, a
    // missing key store: exit 1 (2 for usage) and no output file.
    let refused = dir.path().join("refused.out");
    let mut wrong_context = vec![
        "decrypt",
        "-i",
        s(&sealed),
        "-o",
        s(&refused),
        "-w",
        "hierarchy:tenant-acme",
        "-c",
        "tenant=globex",
    ];
    wrong_context.extend(store);
    let out = envelope(&emulator, &wrong_context);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other_spec = format!("hierarchy:{random_id}");
    let mut other_key = vec![
        "decrypt",
        "-i",
        s(&sealed),
        "-o",
        s(&refused),
        "-w",
        &other_spec,
    ];
    other_key.extend(store);
    let out = envelope(&emulator, &other_key);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no encrypted data key matches"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = envelope(
        &emulator,
        &[
            "decrypt",
            "-i",
            s(&sealed),
            "-o",
            s(&refused),
            "-w",
            "hierarchy:tenant-acme",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!refused.exists(), "no output file after a failure");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
