//! A long-running service that encrypts records: one `Client` over one
//! caching materials manager, built at startup and shared by every worker
//! thread, with the cache's counters exported periodically (as a service
//! would to its metrics system).
//!
//! `cargo run --release --example caching_records`
//!
//! The wrapping key is an embedded demo key (a raw AES keyring), so this
//! runs offline; with AWS KMS only the keyring changes, and every keyring
//! call counted below becomes one KMS request.
//!
//! What to take from it:
//! - Build the client once. `Client` is cheap to clone (it shares the
//!   cache), `Send` and `Sync`; clones in different threads share data keys.
//! - Bound each data key by age, messages and bytes: the cache retires a
//!   key exactly at its limits however many threads encrypt, and fetches
//!   the next one in the background before it is needed.
//! - The encryption context selects the cache entry: each tenant gets its
//!   own data keys, so one tenant's key never encrypts another's records.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{
    AlgorithmSuite, CacheStats, CachingMaterialsManager, Client, DefaultMaterialsManager,
    EncryptionContext, RawAesKeyring,
};

/// Demo only: a real deployment keeps its wrapping key in KMS or an HSM.
const DEMO_WRAPPING_KEY: [u8; 32] = *b"envelope-records-demo-key-32B!!!";

const WORKERS: usize = 4;
const RECORDS_PER_WORKER: usize = 10_000;
const RECORD_SIZE: usize = 2048;
const TENANTS: [&str; 3] = ["acme", "globex", "initech"];

/// What the service builds once at startup.
struct Service {
    client: Client,
    cache: CachingMaterialsManager,
}

impl Service {
    fn start() -> Result<Self, envelope::Error> {
        let keyring = Arc::new(RawAesKeyring::new(
            "records-demo",
            "demo-key",
            &DEMO_WRAPPING_KEY,
        )?);
        let cache =
            CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
                .max_age(Duration::from_secs(60))
                .max_messages(2_000)
                .max_bytes(2_000 * RECORD_SIZE as u64)
                .capacity(1_000)
                .build()?;
        let client = Client::builder()
            .materials_manager(Arc::new(cache.clone()))
            // Unsigned committing suite: records are small and verified by
            // the same service, so the ECDSA signature's cost buys nothing.
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .build()?;
        Ok(Self { client, cache })
    }
}

fn context(tenant: &str) -> EncryptionContext {
    [("tenant", tenant), ("table", "orders")]
        .into_iter()
        .collect()
}

fn report(label: &str, stats: &CacheStats, done: u64) {
    println!(
        "  [{label}] records {done:>6}: hits {:>6}, misses {:>3}, keyring calls {:>3}, refreshes {:>3}, retired at message limit {:>3}",
        stats.hits, stats.misses, stats.keyring_calls, stats.refreshes, stats.evicted_messages
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = Service::start()?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    println!(
        "{WORKERS} workers x {RECORDS_PER_WORKER} records of {RECORD_SIZE} B, {} tenants, one shared client",
        TENANTS.len()
    );

    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let client = service.client.clone();
            let done = Arc::clone(&done);
            std::thread::spawn(move || -> Result<(), envelope::Error> {
                let record = vec![b'0' + worker as u8; RECORD_SIZE];
                for i in 0..RECORDS_PER_WORKER {
                    let tenant = TENANTS[(worker + i) % TENANTS.len()];
                    let context = context(tenant);
                    let message = client.encrypt_blocking(&record, &context)?;
                    // Read it back now and then, as the service's readers
                    // would: decrypt materials are cached too.
                    if i % 10 == 0 {
                        let decrypted = client.decrypt_blocking(&message, &context)?;
                        assert_eq!(decrypted.plaintext, record);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();

    // The metrics exporter: a snapshot of the counters every 500 ms.
    let exporter = {
        let cache = service.cache.clone();
        let done = Arc::clone(&done);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                report("metrics", &cache.stats(), done.load(Ordering::Relaxed));
            }
        })
    };

    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    exporter.join().map_err(|_| "the exporter panicked")?;

    let stats = service.cache.stats();
    let records = (WORKERS * RECORDS_PER_WORKER) as u64;
    report("final", &stats, done.load(Ordering::Relaxed));
    println!(
        "  {records} records in {elapsed:.2?} ({:.0} records/s)",
        records as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  keyring calls: {} for {} encryptions and {} decryptions (a KMS call each without the cache)",
        stats.keyring_calls,
        records,
        records / 10
    );
    println!(
        "  each data key encrypted at most 2,000 records of one tenant; {} retired at that limit, {} by age",
        stats.evicted_messages, stats.evicted_age
    );
    Ok(())
}
