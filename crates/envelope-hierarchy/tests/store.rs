//! The DynamoDB branch key store on real emulators (moto for DynamoDB and
//! KMS, localstack for KMS key state): exact request counts for concurrent
//! misses and for a fleet, items wrapped by another KMS key, unreachable
//! services, and a disabled KMS key. Every failure is a typed
//! `HierarchyError` naming the service.

#[path = "../../envelope-kms/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use envelope_core::error::Error;
use envelope_core::{AlgorithmSuite, Client, EncryptionContext};
use envelope_hierarchy::{
    BranchKeyCache, DynamoDbKeyStore, HierarchicalKeyring, HierarchyError, HierarchyErrorKind,
};

async fn store(
    ddb: &aws_config::SdkConfig,
    kms: &aws_config::SdkConfig,
    table: &str,
    arn: &str,
) -> Arc<DynamoDbKeyStore> {
    let store = DynamoDbKeyStore::new(
        aws_sdk_dynamodb::Client::new(ddb),
        aws_sdk_kms::Client::new(kms),
        table,
        arn,
        None,
    )
    .expect("store");
    store.create_table().await.expect("create table");
    Arc::new(store)
}

fn client_for(store: Arc<DynamoDbKeyStore>, id: &str) -> Client {
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id(id)
        .cache(BranchKeyCache::new(100, Duration::from_secs(600)))
        .build()
        .expect("keyring");
    Client::builder()
        .keyring(Arc::new(keyring))
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .build()
        .expect("client")
}

fn kinds(error: &Error) -> Vec<HierarchyErrorKind> {
    HierarchyError::find(error)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn tenant(n: usize) -> EncryptionContext {
    [("tenant", format!("tenant-{n}"))].into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_and_a_fleet_make_exactly_one_fetch_per_key_per_process() {
    let moto = support::Emulator::moto();
    let config = support::sdk_config(&moto, support::REGION).await;
    let arn = support::create_key(&aws_sdk_kms::Client::new(&config)).await;
    let admin = store(&config, &config, "fleet-keys", &arn).await;

    // 64 threads missing on one branch key: 1 GetItem + 1 KMS Decrypt.
    let id = admin
        .create_key(None, BTreeMap::new())
        .await
        .expect("create_key");
    let reader = store(&config, &config, "fleet-keys", &arn).await;
    let client = Arc::new(client_for(reader.clone(), &id));
    // 64 OS threads, each blocking on the runtime (the AWS SDK needs its
    // reactor), all missing at once.
    let runtime = tokio::runtime::Handle::current();
    let threads: Vec<_> = (0..64)
        .map(|n| {
            let (client, runtime) = (client.clone(), runtime.clone());
            std::thread::spawn(move || {
                runtime
                    .block_on(client.encrypt(format!("message {n}").as_bytes(), &tenant(0)))
                    .expect("encrypt")
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("join");
    }
    assert_eq!(
        (reader.calls().get_item(), reader.calls().kms_decrypt()),
        (1, 1)
    );

    // A fleet: 4 processes (independent clients, stores and caches, as
    // separate processes have), 1,000 tenants with a branch key each, 20
    // messages per tenant per process within one TTL: processes x tenants
    // GetItem and Decrypt calls, none per message.
    const PROCESSES: usize = 4;
    const TENANTS: usize = 1000;
    const MESSAGES: usize = 20;
    for n in 0..TENANTS {
        let context: BTreeMap<String, String> =
            [("tenant".to_owned(), format!("tenant-{n}"))].into();
        admin
            .create_key(Some(format!("tenant-{n}")), context)
            .await
            .expect("create a tenant's branch key");
    }
    let mut processes = Vec::new();
    for _ in 0..PROCESSES {
        let config = support::sdk_config(&moto, support::REGION).await;
        let store = store(&config, &config, "fleet-keys", &arn).await;
        let keyring = HierarchicalKeyring::builder(store.clone())
            .branch_key_id_supplier(|context: &EncryptionContext| {
                context.get("tenant").map(str::to_owned).ok_or_else(|| {
                    HierarchyError::new(HierarchyErrorKind::Supplier, "no tenant in the context")
                })
            })
            .cache(BranchKeyCache::new(2 * TENANTS, Duration::from_secs(600)))
            .build()
            .expect("keyring");
        let client = Client::builder()
            .keyring(Arc::new(keyring))
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .build()
            .expect("client");
        processes.push(tokio::spawn(async move {
            for _ in 0..MESSAGES {
                for n in 0..TENANTS {
                    let message = client.encrypt(b"fleet", &tenant(n)).await.expect("encrypt");
                    if n % 100 == 0 {
                        client.decrypt(&message, &tenant(n)).await.expect("decrypt");
                    }
                }
            }
            (store.calls().get_item(), store.calls().kms_decrypt())
        }));
    }
    for process in processes {
        let (get_item, decrypt) = process.await.expect("join");
        // One ACTIVE read per tenant; the decrypts of messages under the
        // ACTIVE version read that version's item once more.
        assert_eq!(
            get_item,
            TENANTS as u64 + 10,
            "GetItem calls of one process"
        );
        assert_eq!(
            decrypt,
            TENANTS as u64 + 10,
            "KMS Decrypt calls of one process"
        );
    }
    println!(
        "fleet: {PROCESSES} processes x {TENANTS} tenants x {MESSAGES} messages: {} GetItem and {} Decrypt per process",
        TENANTS + 10,
        TENANTS + 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_of_another_kms_key_and_unreachable_services_fail_typed() {
    let moto = support::Emulator::moto();
    let config = support::sdk_config(&moto, support::REGION).await;
    let kms = aws_sdk_kms::Client::new(&config);
    let (arn, other_arn) = (
        support::create_key(&kms).await,
        support::create_key(&kms).await,
    );
    let ours = store(&config, &config, "mixed-keys", &arn).await;
    let theirs = store(&config, &config, "mixed-keys", &other_arn).await;
    let foreign = theirs
        .create_key(None, BTreeMap::new())
        .await
        .expect("create_key");
    let error = client_for(ours.clone(), &foreign)
        .encrypt(b"x", &tenant(1))
        .await
        .expect_err("wrapped by another key");
    assert_eq!(
        kinds(&error),
        [HierarchyErrorKind::KmsArnMismatch],
        "{error}"
    );
    assert_eq!(ours.calls().kms_decrypt(), 0, "never decrypted");

    let missing = client_for(ours.clone(), "no-such-branch-key")
        .encrypt(b"x", &tenant(1))
        .await
        .expect_err("no such key");
    assert_eq!(
        kinds(&missing),
        [HierarchyErrorKind::BranchKeyNotFound],
        "{missing}"
    );

    // DynamoDB unreachable, then KMS unreachable (DynamoDB answering).
    let id = ours
        .create_key(None, BTreeMap::new())
        .await
        .expect("create_key");
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let dead = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(support::REGION))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            support::ACCESS_KEY,
            support::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .endpoint_url(&closed)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let no_ddb = Arc::new(
        DynamoDbKeyStore::new(
            aws_sdk_dynamodb::Client::new(&dead),
            aws_sdk_kms::Client::new(&config),
            "mixed-keys",
            &arn,
            None,
        )
        .expect("store"),
    );
    let error = client_for(no_ddb, &id)
        .encrypt(b"x", &tenant(1))
        .await
        .expect_err("no DynamoDB");
    assert_eq!(
        kinds(&error),
        [HierarchyErrorKind::DynamoDbUnavailable],
        "{error}"
    );
    assert!(
        error.is_retryable() && error.to_string().contains("DynamoDB unavailable"),
        "{error}"
    );
    let no_kms = Arc::new(
        DynamoDbKeyStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            aws_sdk_kms::Client::new(&dead),
            "mixed-keys",
            &arn,
            None,
        )
        .expect("store"),
    );
    let error = client_for(no_kms, &id)
        .encrypt(b"x", &tenant(1))
        .await
        .expect_err("no KMS");
    assert_eq!(
        kinds(&error),
        [HierarchyErrorKind::KmsUnavailable],
        "{error}"
    );
    assert!(
        error.is_retryable() && error.to_string().contains("AWS KMS unavailable"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_kms_key_fails_typed() {
    let moto = support::Emulator::moto();
    let localstack = support::shared_localstack();
    let ddb = support::sdk_config(&moto, support::REGION).await;
    let kms_config = support::sdk_config(localstack, support::REGION).await;
    let kms = aws_sdk_kms::Client::new(&kms_config);
    let arn = support::create_key(&kms).await;
    let store = store(&ddb, &kms_config, "disabled-key", &arn).await;
    let id = store
        .create_key(None, BTreeMap::new())
        .await
        .expect("create_key");
    client_for(store.clone(), &id)
        .encrypt(b"x", &tenant(1))
        .await
        .expect("works while enabled");
    kms.disable_key()
        .key_id(&arn)
        .send()
        .await
        .expect("DisableKey");
    let error = client_for(store, &id)
        .encrypt(b"x", &tenant(1))
        .await
        .expect_err("disabled");
    assert_eq!(kinds(&error), [HierarchyErrorKind::Kms], "{error}");
    assert!(error.to_string().contains("DisabledException"), "{error}");
    assert!(!error.is_retryable());
}
