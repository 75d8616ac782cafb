//! No cache against cache, through a real KMS API (moto on 127.0.0.1):
//! KMS calls per 10,000 messages and messages per second.
//!
//! `cargo bench -p envelope-kms --bench kms_cache` (add `-- --messages N`).
//! Needs `.venv` from scripts/install-test-deps.sh.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope_core::keyring::Keyring;
use envelope_core::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext,
};
use envelope_kms::{AwsKmsKeyring, KmsClientSupplier};

async fn run(client: &Client, messages: usize, supplier: &KmsClientSupplier) -> (f64, u64) {
    let context: EncryptionContext = [("service", "orders")].into_iter().collect();
    let record = vec![0x61u8; 1024];
    supplier.request_counter().reset();
    let start = Instant::now();
    for _ in 0..messages {
        std::hint::black_box(client.encrypt(&record, &context).await.expect("encrypt"));
    }
    let rate = messages as f64 / start.elapsed().as_secs_f64();
    (rate, supplier.request_counter().total())
}

fn main() {
    let mut messages = 10_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--messages" {
            messages = args.next().and_then(|s| s.parse().ok()).unwrap_or(messages);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let moto = support::Emulator::moto();
        let key = support::create_key(&support::admin(&moto, support::REGION).await).await;
        let supplier = support::supplier(&moto).await;
        let keyring: Arc<dyn Keyring> = Arc::new(AwsKmsKeyring::new(&key, supplier.clone()).expect("keyring"));
        println!("KMS through moto on 127.0.0.1: {messages} messages of 1 KiB, suite 0x0478, one thread\n");
        println!("| setup                          | KMS calls | calls per 10k | messages/s |");
        println!("|--------------------------------|-----------|---------------|------------|");
        let plain = Client::builder()
            .keyring(keyring.clone())
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .build()
            .expect("client");
        let (rate, calls) = run(&plain, messages, &supplier).await;
        println!(
            "| no cache                       | {calls:>9} | {:>13.0} | {rate:>10.0} |",
            calls as f64 * 10_000.0 / messages as f64
        );
        let cache = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
            .max_age(Duration::from_secs(300))
            .max_messages(1000)
            .build()
            .expect("cache");
        let cached = Client::builder()
            .materials_manager(Arc::new(cache))
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .build()
            .expect("client");
        let (cached_rate, cached_calls) = run(&cached, messages, &supplier).await;
        println!(
            "| cache, 1,000 messages per key  | {cached_calls:>9} | {:>13.0} | {cached_rate:>10.0} |",
            cached_calls as f64 * 10_000.0 / messages as f64
        );
        println!("\ncache: {:.0}x fewer KMS calls, {:.0}x the throughput", calls as f64 / cached_calls.max(1) as f64, cached_rate / rate);
    });
}
