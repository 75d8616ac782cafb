//! Many tenants, one branch key each, with the hierarchical keyring.
//!
//! Offline by default: the branch keys live in an in-memory store defined
//! below (for the demo only). To use DynamoDB and KMS, point the standard
//! AWS configuration at them (for a local emulator: `moto_server` from
//! `.venv`, then `AWS_ENDPOINT_URL_DYNAMODB`/`AWS_ENDPOINT_URL_KMS`, dummy
//! credentials, `AWS_REGION`) and set `KEY_STORE_TABLE` and
//! `KEY_STORE_KMS_KEY` (a key ARN); the example creates the table and one
//! branch key per tenant.
//!
//! ```sh
//! cargo run --release --example multi_tenant
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use envelope::{Client, EncryptionContext};
use envelope_hierarchy::{
    BranchKey, BranchKeyCache, BranchKeyStore, BranchKeyVersion, DynamoDbKeyStore,
    HierarchicalKeyring, HierarchyError, HierarchyErrorKind,
};

const TENANTS: usize = 200;
const MESSAGES_PER_TENANT: usize = 50;

/// Branch keys in memory, counting fetches (stands in for DynamoDB + KMS).
#[derive(Default)]
struct MemoryStore {
    keys: Mutex<HashMap<String, (BranchKeyVersion, [u8; 32])>>,
    fetches: AtomicU64,
}

impl MemoryStore {
    fn create(&self, id: &str) {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).expect("random");
        let version = BranchKeyVersion::random().expect("random");
        self.keys
            .lock()
            .expect("lock")
            .insert(id.to_owned(), (version, key));
    }

    fn get(&self, id: &str) -> Result<BranchKey, HierarchyError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let keys = self.keys.lock().expect("lock");
        let (version, key) = keys.get(id).ok_or_else(|| {
            HierarchyError::new(HierarchyErrorKind::BranchKeyNotFound, "unknown tenant").for_key(id)
        })?;
        Ok(BranchKey::new(id, *version, *key))
    }
}

#[async_trait]
impl BranchKeyStore for MemoryStore {
    fn logical_name(&self) -> &str {
        "memory"
    }

    async fn get_active(&self, id: &str) -> Result<BranchKey, HierarchyError> {
        self.get(id)
    }

    async fn get_version(
        &self,
        id: &str,
        _: BranchKeyVersion,
    ) -> Result<BranchKey, HierarchyError> {
        self.get(id)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tenants: Vec<String> = (0..TENANTS).map(|n| format!("tenant-{n:04}")).collect();
    let (store, fetches): (Arc<dyn BranchKeyStore>, Box<dyn Fn() -> u64>) = match (
        std::env::var("KEY_STORE_TABLE"),
        std::env::var("KEY_STORE_KMS_KEY"),
    ) {
        (Ok(table), Ok(arn)) => {
            let store = Arc::new(DynamoDbKeyStore::from_env(table, arn, None).await?);
            store.create_table().await?;
            for tenant in &tenants {
                let context: BTreeMap<String, String> = [("tenant".into(), tenant.clone())].into();
                match store.create_key(Some(tenant.clone()), context).await {
                    Ok(_) => {}
                    Err(e) if e.kind == HierarchyErrorKind::Conflict => {} // from an earlier run
                    Err(e) => return Err(e.into()),
                }
            }
            println!("branch keys: DynamoDB table {}", store.table());
            let counter = store.clone();
            (store, Box::new(move || counter.calls().get_item()))
        }
        _ => {
            let store = Arc::new(MemoryStore::default());
            tenants.iter().for_each(|t| store.create(t));
            println!(
                "branch keys: in memory (set KEY_STORE_TABLE and KEY_STORE_KMS_KEY for DynamoDB)"
            );
            let counter = store.clone();
            (
                store,
                Box::new(move || counter.fetches.load(Ordering::Relaxed)),
            )
        }
    };

    // The supplier picks each message's branch key from its context.
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id_supplier(|context: &EncryptionContext| {
            context.get("tenant").map(str::to_owned).ok_or_else(|| {
                HierarchyError::new(HierarchyErrorKind::Supplier, "no tenant in the context")
            })
        })
        .cache(BranchKeyCache::new(1000, Duration::from_secs(300)))
        .build()?;
    let cache = keyring.cache().clone();
    let client = Client::builder().keyring(Arc::new(keyring)).build()?;

    let started = Instant::now();
    let mut messages = 0u64;
    for round in 0..MESSAGES_PER_TENANT {
        for tenant in &tenants {
            let context: EncryptionContext = [("tenant", tenant.as_str())].into_iter().collect();
            let record = format!("{tenant} record {round}");
            let message = client.encrypt(record.as_bytes(), &context).await?;
            let decrypted = client.decrypt(&message, &context).await?;
            assert_eq!(decrypted.plaintext, record.as_bytes());
            messages += 2;
        }
    }
    let elapsed = started.elapsed();
    let fetched = fetches();
    let stats = cache.stats();
    println!(
        "{TENANTS} tenants, {messages} encrypt+decrypt operations in {:.2} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    println!(
        "branch key fetches: {fetched} (one per tenant and version read; a KMS keyring would make {messages} KMS calls): {:.1} % saved",
        100.0 * (1.0 - fetched as f64 / messages as f64)
    );
    println!(
        "cache: {} hits, {} misses, {} fetches",
        stats.hits, stats.misses, stats.fetches
    );
    Ok(())
}
