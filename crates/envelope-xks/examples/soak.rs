//! Soak: N minutes (default 10) of mixed SDK traffic through a real
//! `xks-proxy` (TLS + mTLS, SoftHSM) with the caching manager. Run by hand:
//!
//! ```sh
//! cargo run --release -p envelope-xks --example soak -- [MINUTES] [WRITERS]
//! ```
//!
//! Each writer loops: encrypt a message (one of 8 tenants' contexts, 64 B to
//! 64 KiB, suite 0x0578 or 0x0478), decrypt it (through its own caching
//! manager), compare. Reports errors (expected 0), p50/p99/max latency per
//! operation, RSS at start, every minute and at the end, and the XKS calls
//! the cache saved.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use envelope_core::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext,
};

/// A log-linear latency histogram in microseconds (about 1.5 % resolution),
/// so that recording millions of samples takes constant memory.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    const LINEAR: u64 = 128;

    fn new() -> Self {
        Self {
            counts: vec![0; 128 + 58 * 64],
            total: 0,
            max: 0,
        }
    }

    fn bucket(v: u64) -> usize {
        if v < Self::LINEAR {
            return v as usize;
        }
        let e = 63 - u64::from(v.leading_zeros());
        let m = (v >> (e - 6)) & 63;
        (Self::LINEAR + (e - 7) * 64 + m) as usize
    }

    fn lower_bound(bucket: usize) -> u64 {
        let b = bucket as u64;
        if b < Self::LINEAR {
            return b;
        }
        let e = (b - Self::LINEAR) / 64 + 7;
        let m = (b - Self::LINEAR) % 64;
        (64 + m) << (e - 6)
    }

    fn record(&mut self, d: Duration) {
        let v = d.as_micros().min(u128::from(u64::MAX >> 8)) as u64;
        self.counts[Self::bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value (ms) at quantile `q`: the lower bound of its bucket.
    fn quantile_ms(&self, q: f64) -> f64 {
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(i) as f64 / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }
}

fn rss_kib() -> u64 {
    rss_of("self")
}

fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let minutes: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let writers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let duration = Duration::from_secs_f64(minutes * 60.0);

    let proxy = common::Proxy::start();
    let keyring = proxy.keyring(Some("k1"));
    let encrypt_cache =
        CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring.clone())))
            .max_age(Duration::from_secs(60))
            .max_messages(1000)
            .build()
            .unwrap_or_else(|e| panic!("cache: {e}"));
    let decrypt_cache =
        CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring.clone())))
            .max_age(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|e| panic!("cache: {e}"));
    let client = |suite: u16| {
        Arc::new(
            Client::builder()
                .materials_manager(Arc::new(encrypt_cache.clone()))
                .suite(AlgorithmSuite::from_id(suite).unwrap_or_else(|e| panic!("{e}")))
                .build()
                .unwrap_or_else(|e| panic!("client: {e}")),
        )
    };
    let signed = client(0x0578);
    let unsigned = client(0x0478);
    let decryptor = Arc::new(
        Client::builder()
            .materials_manager(Arc::new(decrypt_cache.clone()))
            .build()
            .unwrap_or_else(|e| panic!("client: {e}")),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let first_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let proxy_pid = proxy.pid().map(|p| p.to_string()).unwrap_or_default();
    let rss_start = rss_kib();
    let proxy_rss_start = rss_of(&proxy_pid);
    println!(
        "soak: {minutes} min, {writers} writers, proxy on port {}, RSS at start {rss_start} KiB (proxy {proxy_rss_start} KiB)",
        proxy.port
    );
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (signed, unsigned, decryptor) = (signed.clone(), unsigned.clone(), decryptor.clone());
        let (stop, errors, first_errors) = (stop.clone(), errors.clone(), first_errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut enc_lat = Histogram::new();
            let mut dec_lat = Histogram::new();
            let mut n: u64 = w as u64 * 7919;
            let mut plaintext_bytes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let tenant = format!("tenant-{}", n % 8);
                let ctx: EncryptionContext = [("tenant", tenant.as_str()), ("app", "soak")]
                    .into_iter()
                    .collect();
                let size = [64usize, 1024, 4096, 16384, 65536][(n % 5) as usize];
                let plaintext: Vec<u8> = (0..size).map(|i| (i as u64 ^ n) as u8).collect();
                let client = if n.is_multiple_of(2) {
                    &signed
                } else {
                    &unsigned
                };
                let t0 = Instant::now();
                let result = client.encrypt(&plaintext, &ctx).await;
                enc_lat.record(t0.elapsed());
                let message = match result {
                    Ok(m) => m,
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_errors.lock().map(|mut v| v.push(e.to_string())).ok();
                        continue;
                    }
                };
                let t1 = Instant::now();
                let result = decryptor.decrypt(&message, &ctx).await;
                dec_lat.record(t1.elapsed());
                match result {
                    Ok(out) if out.plaintext == plaintext => plaintext_bytes += size as u64,
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_errors
                            .lock()
                            .map(|mut v| v.push("plaintext mismatch".into()))
                            .ok();
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_errors.lock().map(|mut v| v.push(e.to_string())).ok();
                    }
                }
                // Yield now and then so the writers interleave on 2 threads.
                if n.is_multiple_of(16) {
                    tokio::task::yield_now().await;
                }
            }
            (enc_lat, dec_lat, plaintext_bytes)
        }));
    }
    let mut rss_samples = vec![rss_start];
    let mut proxy_rss_samples = vec![proxy_rss_start];
    while started.elapsed() < duration {
        let left = duration.saturating_sub(started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(60))).await;
        let rss = rss_kib();
        rss_samples.push(rss);
        let proxy_rss = rss_of(&proxy_pid);
        proxy_rss_samples.push(proxy_rss);
        let xks = keyring.stats();
        println!(
            "  t={:>5.0}s RSS {rss} KiB (proxy {proxy_rss} KiB), errors {}, XKS calls {} encrypt / {} decrypt",
            started.elapsed().as_secs_f64(),
            errors.load(Ordering::Relaxed),
            xks.encrypt_calls,
            xks.decrypt_calls
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (mut enc, mut dec, mut bytes) = (Histogram::new(), Histogram::new(), 0u64);
    for task in tasks {
        let (e, d, b) = task.await.unwrap_or_else(|e| panic!("writer: {e}"));
        enc.merge(&e);
        dec.merge(&d);
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let xks = keyring.stats();
    let (es, ds) = (encrypt_cache.stats(), decrypt_cache.stats());
    let operations = enc.total + dec.total;
    let xks_calls = xks.encrypt_calls + xks.decrypt_calls;
    println!("soak results after {elapsed:.0} s:");
    println!(
        "  messages: {} encrypted, {} decrypted ({:.1} MiB plaintext), {:.0} ops/s",
        enc.total,
        dec.total,
        bytes as f64 / 1048576.0,
        operations as f64 / elapsed
    );
    println!("  errors: {}", errors.load(Ordering::Relaxed));
    for e in first_errors
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default()
        .iter()
        .take(5)
    {
        println!("    {e}");
    }
    println!(
        "  encrypt latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        enc.quantile_ms(0.5),
        enc.quantile_ms(0.99),
        enc.quantile_ms(0.999),
        enc.max as f64 / 1000.0
    );
    println!(
        "  decrypt latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        dec.quantile_ms(0.5),
        dec.quantile_ms(0.99),
        dec.quantile_ms(0.999),
        dec.max as f64 / 1000.0
    );
    println!(
        "  RSS KiB: start {rss_start}, end {}, per minute {rss_samples:?}; proxy per minute {proxy_rss_samples:?}",
        rss_kib()
    );
    println!(
        "  XKS calls: {} encrypt + {} decrypt = {xks_calls} (failed {}) for {operations} SDK operations: {} saved by the cache ({:.3} % of operations reached the proxy)",
        xks.encrypt_calls,
        xks.decrypt_calls,
        xks.failed_calls,
        operations.saturating_sub(xks_calls),
        100.0 * xks_calls as f64 / operations.max(1) as f64
    );
    println!("  encrypt cache: {es:?}");
    println!("  decrypt cache: {ds:?}");
    drop(proxy);
}
