//! The hierarchical keyring against the official Python implementation
//! (aws-cryptographic-material-providers + aws-encryption-sdk 4.x), both
//! ways, on one moto server (DynamoDB + KMS) on 127.0.0.1:
//!
//! - Python creates a branch key (on a table we created) and encrypts
//!   empty, 1,000 B and 300 KB plaintexts with 0x0578 and 0x0478; we decrypt.
//! - We encrypt the same; Python decrypts.
//! - Python versions the key; we decrypt messages of both versions, and
//!   our new messages (under the new version) decrypt in Python.
//! - Our `create_key` / `version_key` make keys Python uses across a
//!   rotation.
//!
//! Needs `.venv` from `scripts/install-test-deps.sh`.

#[path = "../../envelope-kms/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use envelope_core::{AlgorithmSuite, Client, EncryptionContext};
use envelope_hierarchy::{BranchKeyCache, DynamoDbKeyStore, HierarchicalKeyring};
use serde_json::{json, Value};

const TABLE: &str = "envelope-hierarchy-interop";
const LOGICAL: &str = "interop-store";

struct Python {
    job: Value,
    dir: PathBuf,
}

impl Python {
    fn run(&self, steps: Vec<Value>) -> Vec<Value> {
        let mut job = self.job.clone();
        job["steps"] = Value::Array(steps);
        let path = self.dir.join("job.json");
        std::fs::write(&path, serde_json::to_vec(&job).expect("json")).expect("write job");
        let output = Command::new(support::require(".venv/bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/hierarchy.py"))
            .arg(&path)
            .env("AWS_ACCESS_KEY_ID", support::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", support::SECRET_KEY)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
            .expect("run python");
        let results: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect();
        assert!(
            output.status.success(),
            "the Python hierarchical keyring failed: {results:?}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        results
    }
}

fn context(tenant: &str) -> EncryptionContext {
    [("tenant", tenant), ("purpose", "interop")]
        .into_iter()
        .collect()
}

fn context_json(context: &EncryptionContext) -> Value {
    Value::Object(
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect(),
    )
}

fn client(store: Arc<DynamoDbKeyStore>, branch_key_id: &str, suite: AlgorithmSuite) -> Client {
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id(branch_key_id)
        .cache(BranchKeyCache::new(
            100,
            std::time::Duration::from_secs(600),
        ))
        .build()
        .expect("keyring");
    Client::builder()
        .keyring(Arc::new(keyring))
        .suite(suite)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_we_read_each_others_messages_across_rotations() {
    let emulator = support::Emulator::moto();
    let config = support::sdk_config(&emulator, support::REGION).await;
    let kms_arn = support::create_key(&aws_sdk_kms::Client::new(&config)).await;
    let store = Arc::new(
        DynamoDbKeyStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            aws_sdk_kms::Client::new(&config),
            TABLE,
            kms_arn.clone(),
            Some(LOGICAL.into()),
        )
        .expect("store"),
    );
    store.create_table().await.expect("create table");
    store
        .create_table()
        .await
        .expect("create table again: a no-op");

    let dir = tempfile::tempdir().expect("tempdir");
    let python = Python {
        job: json!({"endpoint": emulator.endpoint, "region": support::REGION, "table": TABLE,
                     "logical_name": LOGICAL, "kms_arn": kms_arn}),
        dir: dir.path().to_owned(),
    };
    let sizes = [0usize, 1000, 300_000];
    let suites = [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    ];
    let plaintexts: Vec<PathBuf> = sizes
        .iter()
        .map(|&size| {
            let path = dir.path().join(format!("{size}.pt"));
            std::fs::write(
                &path,
                (0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>(),
            )
            .expect("write plaintext");
            path
        })
        .collect();

    // Python creates a branch key on our table and encrypts.
    let created = python.run(vec![json!({"op": "create_key"})]);
    let python_key = created[0]["branch_key_id"].as_str().expect("id").to_owned();
    let ctx = context("acme");
    let encrypt_steps = |key: &str, tag: &str| -> Vec<Value> {
        let mut steps = Vec::new();
        for suite in suites {
            for pt in &plaintexts {
                steps.push(
                    json!({"op": "encrypt", "branch_key_id": key, "suite": suite.id(),
                    "plaintext": pt, "context": context_json(&ctx),
                    "ciphertext": pt.with_extension(format!("{tag}.{:04x}.py.ct", suite.id()))}),
                );
            }
        }
        steps
    };
    python.run(encrypt_steps(&python_key, "v1"));
    let ours = client(store.clone(), &python_key, AlgorithmSuite::default());
    for suite in suites {
        for pt in &plaintexts {
            let message = std::fs::read(pt.with_extension(format!("v1.{:04x}.py.ct", suite.id())))
                .expect("read");
            let decrypted = ours
                .decrypt(&message, &ctx)
                .await
                .expect("decrypt Python's message");
            assert_eq!(decrypted.plaintext, std::fs::read(pt).expect("pt"));
            assert_eq!(decrypted.suite, suite);
        }
    }

    // We encrypt; Python decrypts.
    let mut decrypt_steps = Vec::new();
    for suite in suites {
        let ours = client(store.clone(), &python_key, suite);
        for pt in &plaintexts {
            let ct = pt.with_extension(format!("{:04x}.rs.ct", suite.id()));
            let message = ours
                .encrypt(&std::fs::read(pt).expect("pt"), &ctx)
                .await
                .expect("encrypt");
            std::fs::write(&ct, message).expect("write");
            decrypt_steps.push(
                json!({"op": "decrypt", "branch_key_id": python_key, "ciphertext": ct,
                "plaintext": pt, "context": context_json(&ctx)}),
            );
        }
    }
    let results = python.run(decrypt_steps.clone());
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");

    // Python rotates; we read both versions and write under the new one.
    let mut steps = vec![json!({"op": "version_key", "branch_key_id": python_key})];
    steps.extend(encrypt_steps(&python_key, "v2"));
    python.run(steps);
    let fresh = client(store.clone(), &python_key, AlgorithmSuite::default());
    for tag in ["v1", "v2"] {
        for pt in &plaintexts {
            let message =
                std::fs::read(pt.with_extension(format!("{tag}.0578.py.ct"))).expect("read");
            let decrypted = fresh
                .decrypt(&message, &ctx)
                .await
                .expect("decrypt across the rotation");
            assert_eq!(decrypted.plaintext, std::fs::read(pt).expect("pt"));
        }
    }
    let v2_ct = dir.path().join("after-rotation.rs.ct");
    std::fs::write(
        &v2_ct,
        fresh
            .encrypt(b"after the rotation", &ctx)
            .await
            .expect("encrypt"),
    )
    .expect("write");
    std::fs::write(dir.path().join("after-rotation.pt"), b"after the rotation").expect("write");
    let results = python.run(vec![json!({"op": "decrypt", "branch_key_id": python_key,
        "ciphertext": v2_ct, "plaintext": dir.path().join("after-rotation.pt"), "context": context_json(&ctx)})]);
    assert_eq!(results[0]["ok"], true, "{results:?}");

    // Our keys, with a chosen id and a custom context, used by Python across
    // our rotation.
    let custom: BTreeMap<String, String> = [("department".to_owned(), "finance".to_owned())].into();
    let our_key = store
        .create_key(Some("tenant-globex".into()), custom)
        .await
        .expect("create_key");
    assert_eq!(our_key, "tenant-globex");
    let random_key = store
        .create_key(None, BTreeMap::new())
        .await
        .expect("create_key, random id");
    assert_eq!(random_key.len(), 36, "a UUID: {random_key}");
    let pt = &plaintexts[1];
    let before = dir.path().join("ours-before.py.ct");
    python.run(vec![
        json!({"op": "encrypt", "branch_key_id": our_key, "suite": 0x0578,
        "plaintext": pt, "ciphertext": before, "context": context_json(&ctx)}),
    ]);
    store.version_key(&our_key).await.expect("version_key");
    let after = dir.path().join("ours-after.py.ct");
    let results = python.run(vec![
        json!({"op": "encrypt", "branch_key_id": our_key, "suite": 0x0578,
            "plaintext": pt, "ciphertext": after, "context": context_json(&ctx)}),
        json!({"op": "decrypt", "branch_key_id": our_key, "ciphertext": before, "plaintext": pt, "context": context_json(&ctx)}),
        json!({"op": "decrypt", "branch_key_id": our_key, "ciphertext": after, "plaintext": pt, "context": context_json(&ctx)}),
    ]);
    assert!(results[1..].iter().all(|r| r["ok"] == true), "{results:?}");
    let ours = client(store.clone(), &our_key, AlgorithmSuite::default());
    for ct in [&before, &after] {
        let decrypted = ours
            .decrypt(&std::fs::read(ct).expect("read"), &ctx)
            .await
            .expect("decrypt Python's message under our key");
        assert_eq!(decrypted.plaintext, std::fs::read(pt).expect("pt"));
    }
    // Python's create_key works on the table we created (done above), and
    // ours reads Python's; a creation with an existing id is refused.
    let again = store
        .create_key(
            Some("tenant-globex".into()),
            [("a".to_owned(), "b".to_owned())].into(),
        )
        .await
        .expect_err("the id exists");
    assert_eq!(
        again.kind,
        envelope_hierarchy::HierarchyErrorKind::Conflict,
        "{again}"
    );
}
