//! Fuzzes the streaming decryptors, std and tokio, with read sizes chosen
//! by the input: whatever the message and however it is split, each must
//! give a typed error or exactly the plaintext the in-memory decrypt gives,
//! and never release plaintext the in-memory decrypt refuses.
//!
//! Run: `scripts/fuzz.sh stream 600`.

#![no_main]

use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use envelope_core::{Client, CommitmentPolicy, EncryptionContext, RawAesKeyring, ReleasePolicy};
use libfuzzer_sys::fuzz_target;

fn client() -> &'static Client {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let key: Vec<u8> = (0u8..32).map(|i| (i / 10) * 16 + i % 10).collect();
        Client::builder()
            .keyring(Arc::new(
                RawAesKeyring::new("aws-raw-vectors-persistant", "aes-256", &key).expect("keyring"),
            ))
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .max_encrypted_data_keys(16)
            .build()
            .expect("client")
    })
}

/// Read sizes from a seed: 1 to 4,096 bytes, varying read by read.
struct Jagged<'a> {
    data: &'a [u8],
    state: u32,
}

impl Jagged<'_> {
    fn next_size(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + (self.state % 4096) as usize
    }
}

impl Read for Jagged<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.next_size().min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl tokio::io::AsyncRead for Jagged<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.next_size().min(buf.remaining()).min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 4 {
        return;
    }
    let (seed, message) = input.split_at(4);
    let seed = u32::from_le_bytes(seed.try_into().expect("4 bytes")) | 1;
    let context = EncryptionContext::new();
    let expected = client()
        .decrypt_blocking(message, &context)
        .ok()
        .map(|d| d.plaintext);

    for policy in [
        ReleasePolicy::PerFrame,
        ReleasePolicy::VerifiedOnly {
            max_in_memory: 1 << 20,
            spill_dir: None,
        },
    ] {
        let verified = matches!(policy, ReleasePolicy::VerifiedOnly { .. });
        let source = Jagged {
            data: message,
            state: seed,
        };
        let mut out = Vec::new();
        let result = client()
            .decrypting_reader_blocking(source, &context, policy)
            .map_err(std::io::Error::other)
            .and_then(|mut reader| reader.read_to_end(&mut out));
        match (&expected, result) {
            (Some(plaintext), Ok(_)) => assert_eq!(&out, plaintext, "std stream differs"),
            (None, Ok(_)) => panic!("std stream accepted a message the in-memory decrypt refuses"),
            (_, Err(_)) if verified => assert!(out.is_empty(), "verified-only released plaintext"),
            (_, Err(_)) => {}
        }
    }

    let mut out = Vec::new();
    let result = runtime().block_on(client().decrypt_stream(
        &mut Jagged {
            data: message,
            state: seed,
        },
        &mut out,
        &context,
    ));
    match (&expected, result) {
        (Some(plaintext), Ok(_)) => assert_eq!(&out, plaintext, "tokio stream differs"),
        (None, Ok(_)) => panic!("tokio stream accepted a message the in-memory decrypt refuses"),
        (_, Err(_)) => {}
    }
});
