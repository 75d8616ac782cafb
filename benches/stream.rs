//! Streaming throughput against raw AES-256-GCM, in one run:
//! `cargo bench --bench stream` (add `-- --gib 1` for the size, default 1).
//! Ours and raw alternate MiB by MiB within each cell, each side timed
//! separately, so that both see the same drift in machine speed (which here
//! moved best-of-3 ratios of whole runs by up to 50 points).
//!
//! - raw: `ring` AES-256-GCM sealing/opening 1 MiB buffers in place, the
//!   machine's limit for this work;
//! - ours: `EncryptingWriter` into a sink, and `DecryptingReader` over the
//!   message held in memory (so neither side measures disk or page faults),
//!   at several frame lengths.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{AlgorithmSuite, Client, EncryptionContext, RawAesKeyring, ReleasePolicy};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// Raw AES-256-GCM on 1 MiB buffers in place: the machine's limit for this
/// work, one step at a time so that it can be interleaved with ours.
struct Raw {
    key: LessSafeKey,
    buf: Vec<u8>,
    sealed: Vec<u8>,
    tag: ring::aead::Tag,
    step: u64,
}

impl Raw {
    fn new() -> Self {
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[1u8; 32]).expect("key"));
        let mut sealed = vec![0x5Au8; 1 << 20];
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([9; 12]),
                Aad::empty(),
                &mut sealed,
            )
            .expect("seal");
        Self {
            key,
            buf: vec![0x5Au8; 1 << 20],
            sealed,
            tag,
            step: 0,
        }
    }

    /// Seals one MiB in place.
    fn seal(&mut self) {
        self.step += 1;
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.step.to_be_bytes());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut self.buf,
            )
            .expect("seal");
        let _ = std::hint::black_box(tag);
    }

    /// Opens one MiB: the sealed copy is brought into the work buffer first,
    /// as any decryptor must take ciphertext from where it was read.
    fn open(&mut self) {
        self.buf.copy_from_slice(&self.sealed);
        self.key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key([9; 12]),
                Aad::empty(),
                self.tag,
                &mut self.buf,
                0..,
            )
            .expect("open");
    }
}

/// Times `ours` and `raw` alternately, one MiB each, over the whole stream:
/// both see the same drift in machine speed. Returns their elapsed times.
struct Alternating {
    ours: Duration,
    raw: Duration,
}

impl Alternating {
    fn ours<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.ours += start.elapsed();
        out
    }

    fn raw(&mut self, f: impl FnOnce()) {
        let start = Instant::now();
        f();
        self.raw += start.elapsed();
    }
}

/// One cell: (ours encrypt, raw seal, ours decrypt, raw open) in bytes/s.
fn cell(suite: AlgorithmSuite, frame: u32, total: usize) -> (f64, f64, f64, f64) {
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
    let mut raw = Raw::new();
    let rate = |d: Duration| total as f64 / d.as_secs_f64();

    // Encrypt into a sink, so only the streaming work is measured.
    let mut clock = Alternating {
        ours: Duration::ZERO,
        raw: Duration::ZERO,
    };
    let mut writer = clock.ours(|| {
        client
            .encrypting_writer_blocking(std::io::sink(), &context, Some(total as u64))
            .expect("writer")
    });
    for _ in 0..total / chunk.len() {
        clock.ours(|| writer.write_all(&chunk).expect("write"));
        clock.raw(|| raw.seal());
    }
    clock.ours(|| writer.finish().expect("finish"));
    let (encrypt, seal) = (rate(clock.ours), rate(clock.raw));

    // Untimed: the message to decrypt, held in memory.
    let mut message = Vec::with_capacity(total + total / frame as usize * 40 + 4096);
    let mut writer = client
        .encrypting_writer_blocking(&mut message, &context, Some(total as u64))
        .expect("writer");
    for _ in 0..total / chunk.len() {
        writer.write_all(&chunk).expect("write");
    }
    writer.finish().expect("finish");

    let mut clock = Alternating {
        ours: Duration::ZERO,
        raw: Duration::ZERO,
    };
    let mut reader = clock.ours(|| {
        client
            .decrypting_reader_blocking(&message[..], &context, ReleasePolicy::PerFrame)
            .expect("reader")
    });
    let mut buf = vec![0u8; 1 << 20];
    let (mut read, mut opened) = (0usize, 0usize);
    loop {
        let n = clock.ours(|| reader.read(&mut buf).expect("read"));
        if n == 0 {
            break;
        }
        read += n;
        // One raw MiB for each MiB of ours (reads may return less).
        while opened < read >> 20 {
            opened += 1;
            clock.raw(|| raw.open());
        }
    }
    assert_eq!(read, total);
    (encrypt, seal, rate(clock.ours), rate(clock.raw))
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
    println!(
        "raw: ring AES-256-GCM sealing/opening 1 MiB buffers in place, interleaved MiB by MiB with ours\n"
    );
    println!("| suite  | frame   | encrypt GB/s | raw seal | of raw | decrypt GB/s | raw open | of raw |");
    println!("|--------|---------|--------------|----------|--------|--------------|----------|--------|");
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        for frame in [4096u32, 65_536, 1 << 20] {
            let (encrypt, raw_seal, decrypt, raw_open) = cell(suite, frame, total);
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
