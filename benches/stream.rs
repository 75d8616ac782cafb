//! Streaming throughput against raw AES-256-GCM, in one run:
//! `cargo bench --bench stream` (add `-- --gib 1` for the size, default 1;
//! each cell is measured three times beside its own raw baseline).
//!
//! - raw: `ring` AES-256-GCM sealing/opening 1 MiB buffers in place, the
//!   machine's limit for this work;
//! - ours: `EncryptingWriter` into a sink, and `DecryptingReader` over the
//!   message held in memory (so neither side measures disk or page faults),
//!   at several frame lengths.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use envelope::{AlgorithmSuite, Client, EncryptionContext, RawAesKeyring, ReleasePolicy};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

fn raw_gcm(total: usize) -> (f64, f64) {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1u8; 32]).expect("key"));
    let mut buf = vec![0x5Au8; 1 << 20];
    let rounds = total / buf.len();
    let start = Instant::now();
    let mut tags = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
        tags.push(
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buf,
            )
            .expect("seal"),
        );
    }
    let seal = total as f64 / start.elapsed().as_secs_f64();
    // Open what the last round sealed, repeatedly (tags verify each time
    // only for that buffer, so re-seal first; opening cost is what counts).
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&(u64::MAX).to_be_bytes());
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .expect("seal");
    let sealed = buf.clone();
    let start = Instant::now();
    for _ in 0..rounds {
        buf.copy_from_slice(&sealed);
        key.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            tag,
            &mut buf,
            0..,
        )
        .expect("open");
    }
    let open = total as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box(tags);
    (seal, open)
}

fn ours(suite: AlgorithmSuite, frame: u32, total: usize) -> (f64, f64) {
    let client = Client::builder()
        .keyring(Arc::new(
            RawAesKeyring::new("bench", "key", &[7u8; 32]).expect("keyring"),
        ))
        .suite(suite)
        .frame_length(frame)
        .build()
        .expect("client");
    let context: EncryptionContext = [("bench", "stream")].into_iter().collect();
    let chunk = vec![0x61u8; 1 << 20];
    // Timed: encrypt into a sink, so only the streaming work is measured.
    let start = Instant::now();
    let mut writer = client
        .encrypting_writer_blocking(std::io::sink(), &context, Some(total as u64))
        .expect("writer");
    for _ in 0..total / chunk.len() {
        writer.write_all(&chunk).expect("write");
    }
    writer.finish().expect("finish");
    let encrypt = total as f64 / start.elapsed().as_secs_f64();
    // Untimed: the message to decrypt, held in memory.
    let mut message = Vec::with_capacity(total + total / frame as usize * 40 + 4096);
    let mut writer = client
        .encrypting_writer_blocking(&mut message, &context, Some(total as u64))
        .expect("writer");
    for _ in 0..total / chunk.len() {
        writer.write_all(&chunk).expect("write");
    }
    writer.finish().expect("finish");

    let start = Instant::now();
    let mut reader = client
        .decrypting_reader_blocking(&message[..], &context, ReleasePolicy::PerFrame)
        .expect("reader");
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0usize;
    loop {
        match reader.read(&mut buf).expect("read") {
            0 => break,
            n => read += n,
        }
    }
    assert_eq!(read, total);
    let decrypt = total as f64 / start.elapsed().as_secs_f64();
    (encrypt, decrypt)
}

fn main() {
    let mut gib = 1.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--gib" {
            gib = args.next().and_then(|s| s.parse().ok()).unwrap_or(gib);
        }
    }
    let total = ((gib * (1u64 << 30) as f64) as usize / (1 << 20)) * (1 << 20);
    let gbs = |rate: f64| rate / 1e9;
    println!(
        "stream bench: {} MiB per cell, release build\n",
        total >> 20
    );
    // The machine's speed drifts over a run of minutes, so each cell is
    // measured next to its own raw baseline, best of `ROUNDS` for both.
    const ROUNDS: usize = 3;
    println!(
        "raw: ring AES-256-GCM sealing/opening 1 MiB buffers in place, measured beside each cell; best of {ROUNDS}\n"
    );
    println!("| suite  | frame   | encrypt GB/s | raw seal | of raw | decrypt GB/s | raw open | of raw |");
    println!("|--------|---------|--------------|----------|--------|--------------|----------|--------|");
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        for frame in [4096u32, 65_536, 1 << 20] {
            let (mut raw_seal, mut raw_open, mut encrypt, mut decrypt) = (0f64, 0f64, 0f64, 0f64);
            for _ in 0..ROUNDS {
                let (seal, open) = raw_gcm(total);
                let (e, d) = ours(suite, frame, total);
                raw_seal = raw_seal.max(seal);
                raw_open = raw_open.max(open);
                encrypt = encrypt.max(e);
                decrypt = decrypt.max(d);
            }
            println!(
                "| 0x{:04X} | {:>7} | {:>12.2} | {:>8.2} | {:>5.0}% | {:>12.2} | {:>8.2} | {:>5.0}% |",
                suite.id(),
                frame,
                gbs(encrypt),
                gbs(raw_seal),
                100.0 * encrypt / raw_seal,
                gbs(decrypt),
                gbs(raw_open),
                100.0 * decrypt / raw_open
            );
        }
    }
}
