//! The bench report: one table of cache-hit throughput against the floor
//! (the unavoidable work per message), against two threads, and against the
//! official Python ESDK's caching materials manager, all measured in this
//! one run. floor/python bounds ours/python: no implementation of the
//! format can do less per message than the floor.
//!
//! The contenders of a cell are measured side by side: each runs for one
//! short slice in turn, round after round, and every ratio is the median of
//! the per-round ratios. Measured one after the other in long blocks, the
//! ratios here moved by tens of percent with the machine's speed.
//!
//! `cargo bench --bench report` (options: `--rounds N`, default 150;
//! `--slice-ms N`, default 10; `REPORT_DUMP=1` prints every round's rates
//! to stderr). Python is taken from `.venv` (scripts/install-test-deps.sh);
//! without it that column is left empty.

mod support;

use std::time::Duration;

use envelope::AlgorithmSuite;
use support::python::PythonPeer;
use support::steal::{cpu_ticks, steal_percent_since};
use support::{cached_client, context, Contender, Floor, Interleaved, SUITES};

/// The Python ESDK's caching materials manager, for `suite` and `size`.
fn python_peer(suite: AlgorithmSuite, size: usize) -> Option<PythonPeer> {
    PythonPeer::start(
        "benches/python_esdk_cache.py",
        &[format!("{:04x}", suite.id()), size.to_string()],
    )
}

fn main() {
    let mut rounds = 150usize;
    let mut slice_ms = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().and_then(|s| s.parse().ok()).unwrap_or(rounds),
            "--slice-ms" => slice_ms = args.next().and_then(|s| s.parse().ok()).unwrap_or(slice_ms),
            _ => {}
        }
    }
    let slice = Duration::from_millis(slice_ms);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "bench report: cache-hit messages/s, {rounds} interleaved rounds of {slice_ms} ms per contender, \
         {cores} cores, release build; rates are medians, ratios medians of per-round ratios\n"
    );
    println!(
        "| suite  | size   | op      | ours 1T    | floor 1T   | ours/floor | ours 2T    | 2T/1T | python     | ours/python | floor/python |"
    );
    println!(
        "|--------|--------|---------|------------|------------|------------|------------|-------|------------|-------------|--------------|"
    );
    let ticks = cpu_ticks();
    let mut python_versions = None;
    for suite in SUITES {
        for size in [1024usize, 16 * 1024] {
            let plaintext = vec![0x61u8; size];
            let (client, _cmm) = cached_client(suite);
            let ctx = context();
            let message = client.encrypt_blocking(&plaintext, &ctx).expect("encrypt");
            let mut python = if size == 1024 {
                python_peer(suite, size)
            } else {
                None
            };
            if let Some(p) = &python {
                python_versions.get_or_insert_with(|| p.versions.clone());
            }
            let encrypt = || {
                let (client, plaintext, ctx) = (client.clone(), plaintext.clone(), ctx.clone());
                move || {
                    std::hint::black_box(
                        client.encrypt_blocking(&plaintext, &ctx).expect("encrypt"),
                    );
                }
            };
            let decrypt = || {
                let (client, message, ctx) = (client.clone(), message.clone(), ctx.clone());
                move || {
                    std::hint::black_box(client.decrypt_blocking(&message, &ctx).expect("decrypt"));
                }
            };
            for op in ["encrypt", "decrypt"] {
                let mut contenders = if op == "encrypt" {
                    [
                        Contender::new(1, encrypt),
                        Contender::new(1, || {
                            let mut floor = Floor::new(suite, size);
                            move || floor.encrypt()
                        }),
                        Contender::new(2, encrypt),
                    ]
                } else {
                    [
                        Contender::new(1, decrypt),
                        Contender::new(1, || {
                            let mut floor = Floor::new(suite, size);
                            move || floor.decrypt()
                        }),
                        Contender::new(2, decrypt),
                    ]
                };
                let mut python_slice = |slice| python.as_mut()?.rate(op, slice);
                let mut external: Vec<&mut dyn FnMut(Duration) -> Option<f64>> = Vec::new();
                if size == 1024 {
                    external.push(&mut python_slice);
                }
                let m = Interleaved::measure(&mut contenders, &mut external, rounds, slice);
                if std::env::var_os("REPORT_DUMP").is_some() {
                    for (c, rates) in m.rates.iter().enumerate() {
                        let cells: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
                        eprintln!("{op} {size} contender {c}: {}", cells.join(" "));
                    }
                }
                let (ours, floor, two) = (m.median(0), m.median(1), m.median(2));
                let python_column = m.rates.len() > 3;
                let (py_cell, ratio_cell, floor_ratio_cell) = match (
                    python_column.then(|| m.median(3)).flatten(),
                    python_column.then(|| m.ratio(0, 3)).flatten(),
                    python_column.then(|| m.ratio(1, 3)).flatten(),
                ) {
                    (Some(py), Some(ratio), Some(floor_ratio)) => (
                        format!("{py:>10.0}"),
                        format!("{ratio:>10.1}x"),
                        format!("{floor_ratio:>11.1}x"),
                    ),
                    _ => (
                        format!("{:>10}", "-"),
                        format!("{:>11}", "-"),
                        format!("{:>12}", "-"),
                    ),
                };
                println!(
                    "| 0x{:04X} | {:>6} | {op:<7} | {:>10.0} | {:>10.0} | {:>9.0}% | {:>10.0} | {:>4.2}x | {py_cell} | {ratio_cell} | {floor_ratio_cell} |",
                    suite.id(),
                    size,
                    ours.unwrap_or(0.0),
                    floor.unwrap_or(0.0),
                    100.0 * m.ratio(0, 1).unwrap_or(0.0),
                    two.unwrap_or(0.0),
                    m.ratio(2, 0).unwrap_or(0.0),
                );
            }
        }
    }
    println!(
        "\nhost steal during the run: {:.1} % of CPU time",
        steal_percent_since(ticks)
    );
    if let Some(versions) = python_versions {
        // The peer's speed moves with these: cryptography 50 ran the same
        // ESDK 1.2-1.3x faster than cryptography 44, side by side.
        println!("python: {versions}");
    }
}
