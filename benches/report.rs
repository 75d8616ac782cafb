//! The bench report: one table of cache-hit throughput against the floor
//! (the unavoidable work per message) and against the official Python ESDK's
//! caching materials manager, all measured in this one run.
//!
//! `cargo bench --bench report` (add `-- --seconds 5` for longer runs).
//! Python is taken from `.venv` (scripts/install-test-deps.sh).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use envelope::AlgorithmSuite;
use support::{cached_client, context, rate, Floor, SUITES};

fn python_rates(suite: AlgorithmSuite, size: usize, seconds: f64) -> Option<(f64, f64)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        eprintln!(
            "note: {} missing (run scripts/install-test-deps.sh); Python column skipped",
            python.display()
        );
        return None;
    }
    let output = Command::new(python)
        .arg(root.join("benches/python_esdk_cache.py"))
        .arg(format!("{:04x}", suite.id()))
        .arg(size.to_string())
        .arg(seconds.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let value: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    Some((value["encrypt"].as_f64()?, value["decrypt"].as_f64()?))
}

fn main() {
    let mut seconds = 2.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        }
    }
    let duration = Duration::from_secs_f64(seconds);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "bench report: cache-hit messages/s, {seconds} s per cell, {cores} cores, release build\n"
    );
    println!(
        "| suite  | size   | op      | ours 1T    | floor 1T   | ours/floor | ours 2T    | 2T/1T | python     | ours/python |"
    );
    println!(
        "|--------|--------|---------|------------|------------|------------|------------|-------|------------|-------------|"
    );
    for suite in SUITES {
        for size in [1024usize, 16 * 1024] {
            let plaintext = vec![0x61u8; size];
            let (client, _cmm) = cached_client(suite);
            let ctx = context();
            let message = client.encrypt_blocking(&plaintext, &ctx).expect("encrypt");
            let python = if size == 1024 {
                python_rates(suite, size, seconds)
            } else {
                None
            };

            let ours_enc = |threads| {
                rate(threads, duration, || {
                    let client = client.clone();
                    let plaintext = plaintext.clone();
                    let ctx = ctx.clone();
                    move || {
                        std::hint::black_box(
                            client.encrypt_blocking(&plaintext, &ctx).expect("encrypt"),
                        );
                    }
                })
            };
            let ours_dec = |threads| {
                rate(threads, duration, || {
                    let client = client.clone();
                    let message = message.clone();
                    let ctx = ctx.clone();
                    move || {
                        std::hint::black_box(
                            client.decrypt_blocking(&message, &ctx).expect("decrypt"),
                        );
                    }
                })
            };
            let floor_enc = rate(1, duration, || {
                let mut floor = Floor::new(suite, size);
                move || floor.encrypt()
            });
            let floor_dec = rate(1, duration, || {
                let mut floor = Floor::new(suite, size);
                move || floor.decrypt()
            });
            for (op, one, two, floor, py) in [
                (
                    "encrypt",
                    ours_enc(1),
                    ours_enc(2),
                    floor_enc,
                    python.map(|p| p.0),
                ),
                (
                    "decrypt",
                    ours_dec(1),
                    ours_dec(2),
                    floor_dec,
                    python.map(|p| p.1),
                ),
            ] {
                let (py_cell, ratio_cell) = match py {
                    Some(py) => (format!("{py:>10.0}"), format!("{:>10.1}x", one / py)),
                    None => (format!("{:>10}", "-"), format!("{:>11}", "-")),
                };
                println!(
                    "| 0x{:04X} | {:>6} | {op:<7} | {one:>10.0} | {floor:>10.0} | {:>9.0}% | {two:>10.0} | {:>4.2}x | {py_cell} | {ratio_cell} |",
                    suite.id(),
                    size,
                    100.0 * one / floor,
                    two / one,
                );
            }
        }
    }
}
