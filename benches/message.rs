//! Criterion benches: cache-hit encrypt and decrypt at 1 KiB and 16 KiB for
//! 0x0478 and 0x0578, beside the floor of each. `cargo bench --bench message`.
//! For one table with ratios and the Python ESDK, see `benches/report.rs`.

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use support::{cached_client, context, Floor, SUITES};

fn cache_hits(c: &mut Criterion) {
    for suite in SUITES {
        let mut group = c.benchmark_group(format!("0x{:04X}", suite.id()));
        for size in [1024usize, 16 * 1024] {
            group.throughput(Throughput::Elements(1));
            let plaintext = vec![0x61u8; size];
            let (client, _cmm) = cached_client(suite);
            let ctx = context();
            let message = client.encrypt_blocking(&plaintext, &ctx).expect("encrypt");
            group.bench_with_input(BenchmarkId::new("encrypt", size), &size, |b, _| {
                b.iter(|| client.encrypt_blocking(&plaintext, &ctx).expect("encrypt"))
            });
            group.bench_with_input(BenchmarkId::new("decrypt", size), &size, |b, _| {
                b.iter(|| client.decrypt_blocking(&message, &ctx).expect("decrypt"))
            });
            let mut floor = Floor::new(suite, size);
            group.bench_with_input(BenchmarkId::new("floor-encrypt", size), &size, |b, _| {
                b.iter(|| floor.encrypt())
            });
            group.bench_with_input(BenchmarkId::new("floor-decrypt", size), &size, |b, _| {
                b.iter(|| floor.decrypt())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, cache_hits);
criterion_main!(benches);
