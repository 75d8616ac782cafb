//! The main job, offline: encrypt and decrypt records with a data-key cache,
//! and show what the cache saved.
//!
//! `cargo run --release --example quickstart`
//!
//! The wrapping key is an embedded demo key (a raw AES keyring), so this
//! runs anywhere. With AWS KMS the keyring changes and nothing else; every
//! "keyring call" below is then one KMS request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{
    CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext, RawAesKeyring,
};

/// Demo only: a real deployment keeps its wrapping key in KMS or an HSM.
const DEMO_WRAPPING_KEY: [u8; 32] = *b"envelope-quickstart-demo-key-32B";

const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const RECORDS: usize = 20_000;
const RECORD_SIZE: usize = 1024;
const MESSAGES_PER_KEY: u64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keyring = Arc::new(RawAesKeyring::new(
        "quickstart",
        "demo-key",
        &DEMO_WRAPPING_KEY,
    )?);
    let cache = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
        .max_age(Duration::from_secs(300))
        .max_messages(MESSAGES_PER_KEY)
        .max_bytes(64 << 20)
        .build()?;
    // 0x0578 (committing, signed) is the default; this demo picks the
    // unsigned committing suite to show the cache rather than ECDSA's cost.
    let client = Client::builder()
        .materials_manager(Arc::new(cache.clone()))
        .suite(envelope::AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .build()?;

    let contexts: Vec<EncryptionContext> = TENANTS
        .iter()
        .map(|tenant| {
            [("tenant", *tenant), ("table", "orders")]
                .into_iter()
                .collect()
        })
        .collect();
    let record = vec![b'r'; RECORD_SIZE];

    let start = Instant::now();
    let mut messages = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        messages.push(client.encrypt_blocking(&record, &contexts[i % TENANTS.len()])?);
    }
    let encrypt_time = start.elapsed();
    let after_encrypt = cache.stats();

    let start = Instant::now();
    for (i, message) in messages.iter().enumerate() {
        let decrypted = client.decrypt_blocking(message, &contexts[i % TENANTS.len()])?;
        assert_eq!(decrypted.plaintext, record);
    }
    let decrypt_time = start.elapsed();
    let stats = cache.stats();

    let without_cache = 2 * RECORDS as u64;
    let saved = without_cache - stats.keyring_calls;
    println!(
        "envelope quickstart: {RECORDS} records of {RECORD_SIZE} B for {} tenants",
        TENANTS.len()
    );
    println!(
        "  encrypted in {encrypt_time:.2?} ({:.0} msg/s)",
        RECORDS as f64 / encrypt_time.as_secs_f64()
    );
    println!(
        "  decrypted in {decrypt_time:.2?} ({:.0} msg/s)",
        RECORDS as f64 / decrypt_time.as_secs_f64()
    );
    println!(
        "  data keys generated: {} (each serves at most {MESSAGES_PER_KEY} messages; refresh-ahead fetches the next one early)",
        after_encrypt.keyring_calls
    );
    println!("  cache hits: {}, misses: {}", stats.hits, stats.misses);
    println!(
        "  keyring calls: {} instead of {without_cache} without a cache: {saved} saved ({:.1}%)",
        stats.keyring_calls,
        100.0 * saved as f64 / without_cache as f64
    );
    println!(
        "  with AWS KMS at $0.03 per 10,000 requests, that is ${:.4} saved per {RECORDS} records, and {saved} round trips of milliseconds each",
        saved as f64 * 0.03 / 10_000.0
    );
    Ok(())
}
