//! Stream-encrypt a file and decrypt it back, in memory bounded by the
//! frame length whatever the file size.
//!
//! `cargo run --release --example streaming_file [-- PATH]`
//!
//! Without PATH, a 64 MiB file of generated data is used. The outputs go to
//! a temporary directory and are removed at the end.
//!
//! Two habits worth copying:
//! - Declare the plaintext length when you know it (a file's size): a
//!   caching materials manager can then account for the bytes, and a file
//!   that changes while being read fails instead of encrypting silently.
//! - With the default per-frame release policy, plaintext leaves the
//!   decryptor frame by frame, before the end of the message (and for
//!   signed suites the signature) has verified. Write it to a temporary
//!   file and rename it only once the reader has returned end of file, as
//!   below, so a truncated or forged message leaves nothing behind. Where
//!   that is impossible (a socket, a pipe), use `ReleasePolicy::VerifiedOnly`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use envelope::{Client, EncryptionContext, RawAesKeyring, ReleasePolicy};

/// Demo only: a real deployment keeps its wrapping key in KMS or an HSM.
const DEMO_WRAPPING_KEY: [u8; 32] = *b"envelope-streaming-demo-key-32B!";

const GENERATED_SIZE: u64 = 64 << 20;
const CHUNK: usize = 256 << 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let input = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => generate(&work.path().join("input.bin"), GENERATED_SIZE)?,
    };
    let sealed = work.path().join("input.bin.encrypted");
    let restored = work.path().join("input.bin.decrypted");

    let keyring = Arc::new(RawAesKeyring::new(
        "streaming-demo",
        "demo-key",
        &DEMO_WRAPPING_KEY,
    )?);
    // 64 KiB frames: fewer frame headers and tags than the 4 KiB default,
    // still a small, fixed amount of memory per stream.
    let client = Client::builder()
        .keyring(keyring)
        .frame_length(64 << 10)
        .build()?;
    let context: EncryptionContext = [("file", "input.bin"), ("purpose", "example")]
        .into_iter()
        .collect();

    // Encrypt: plaintext in through `Write`, message out to the file.
    let start = Instant::now();
    let length = std::fs::metadata(&input)?.len();
    let mut source = File::open(&input)?;
    let mut writer = client.encrypting_writer_blocking(
        BufWriter::new(File::create(&sealed)?),
        &context,
        Some(length),
    )?;
    copy(&mut source, &mut writer)?;
    writer.finish()?.flush()?;
    let encrypt_time = start.elapsed();

    // Decrypt: message in, plaintext out through `Read`, into a temporary
    // file that gets its real name only after the whole message verified.
    let start = Instant::now();
    let mut reader = client.decrypting_reader_blocking(
        BufReader::new(File::open(&sealed)?),
        &context,
        ReleasePolicy::PerFrame,
    )?;
    let mut pending = tempfile::NamedTempFile::new_in(work.path())?;
    let written = copy(&mut reader, &mut pending)?;
    pending.as_file().sync_all()?;
    pending.persist(&restored)?;
    let decrypt_time = start.elapsed();

    if !same_contents(&input, &restored)? {
        return Err("the decrypted file differs from the input".into());
    }
    let mib = length as f64 / f64::from(1 << 20);
    println!(
        "streamed {mib:.1} MiB under suite {}",
        reader.header().suite
    );
    println!(
        "  encrypt: {encrypt_time:.2?} ({:.0} MiB/s), message {} bytes",
        mib / encrypt_time.as_secs_f64(),
        std::fs::metadata(&sealed)?.len()
    );
    println!(
        "  decrypt: {decrypt_time:.2?} ({:.0} MiB/s), {written} bytes, identical to the input",
        mib / decrypt_time.as_secs_f64()
    );
    println!(
        "  context carried by the message: {:?}",
        reader
            .encryption_context()
            .iter()
            .filter(|(k, _)| !k.starts_with("aws-crypto-"))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// Copies in fixed chunks; returns the byte count.
fn copy(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match from.read(&mut buf)? {
            0 => return Ok(total),
            n => {
                to.write_all(&buf[..n])?;
                total += n as u64;
            }
        }
    }
}

/// Writes `size` bytes of cheap pseudo-random data to `path`.
fn generate(path: &Path, size: u64) -> std::io::Result<PathBuf> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64: fast, and incompressible enough for a demo.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(CHUNK as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(path.to_path_buf())
}

fn same_contents(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (mut a, mut b) = (
        BufReader::new(File::open(a)?),
        BufReader::new(File::open(b)?),
    );
    let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(from: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match from.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
