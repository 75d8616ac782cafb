//! Shared by the benches: the client under test (cache hits) and the
//! "floor", the work one message cannot avoid done with the fastest
//! primitives on the machine and no framing, allocation or cache.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::digest as lc_digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{self as lc_sig, EcdsaKeyPair, KeyPair};
use envelope::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext,
    RawAesKeyring,
};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};

pub mod python;
pub mod steal;

pub const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
];

pub fn context() -> EncryptionContext {
    [("tenant", "acme"), ("purpose", "bench")]
        .into_iter()
        .collect()
}

/// A client whose every request after the first is a cache hit.
pub fn cached_client(suite: AlgorithmSuite) -> (Client, CachingMaterialsManager) {
    let keyring = Arc::new(RawAesKeyring::new("bench", "key", &[7u8; 32]).expect("keyring"));
    let cmm = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
        .max_age(Duration::from_secs(3600))
        .build()
        .expect("cmm");
    let client = Client::builder()
        .materials_manager(Arc::new(cmm.clone()))
        .suite(suite)
        .build()
        .expect("client");
    (client, cmm)
}

/// The unavoidable per-message work of one suite and size.
pub struct Floor {
    signed: bool,
    data_key: [u8; 32],
    header: Vec<u8>,
    plaintext: Vec<u8>,
    buffer: Apart,
    scratch: Apart,
    signer: EcdsaKeyPair,
    public_key: Vec<u8>,
    signature: Vec<u8>,
    header_tag: [u8; 16],
    body_tag: [u8; 16],
    message_id: [u8; 32],
    rng: SystemRandom,
}

impl Floor {
    pub fn new(suite: AlgorithmSuite, size: usize) -> Self {
        let plaintext = vec![0x61; size];
        let buffer = Apart::new(size, &plaintext);
        let signer =
            EcdsaKeyPair::generate(&lc_sig::ECDSA_P384_SHA384_ASN1_SIGNING).expect("keygen");
        let compressed: EcPublicKeyCompressedBin<'static> =
            signer.public_key().as_be_bytes().expect("encode");
        let mut floor = Self {
            signed: suite.signature().is_some(),
            data_key: [7u8; 32],
            // A header of the size ours writes: EC, one raw AES EDK, commitment.
            header: vec![
                0x42;
                if suite.signature().is_some() {
                    260
                } else {
                    180
                }
            ],
            scratch: Apart::new(size, buffer.get()),
            buffer,
            plaintext,
            public_key: compressed.as_ref().to_vec(),
            signer,
            signature: Vec::new(),
            header_tag: [0; 16],
            body_tag: [0; 16],
            message_id: [0; 32],
            rng: SystemRandom::new(),
        };
        floor.encrypt();
        floor
    }

    /// The committing HKDF, with the fastest implementation available: the
    /// library's own ten-compression HKDF-SHA512 (about 10 % faster here
    /// than `ring`'s HKDF, which it replaced in both places).
    fn derive(&self) -> LessSafeKey {
        let (key, commit) =
            envelope::__floor_derive_committing(&self.message_id, &self.data_key, 0x0478);
        std::hint::black_box(&commit);
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key[..]).expect("key"))
    }

    fn digest(&self) -> lc_digest::Digest {
        let mut d = lc_digest::Context::new(&lc_digest::SHA384);
        d.update(&self.header);
        d.update(self.buffer.get());
        d.finish()
    }

    /// Derive, header tag, body seal and (signed suites) one signature.
    pub fn encrypt(&mut self) {
        self.rng.fill(&mut self.message_id).expect("rng");
        let key = self.derive();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(&self.header),
                &mut [],
            )
            .expect("seal");
        self.header_tag.copy_from_slice(tag.as_ref());
        self.buffer.get_mut().copy_from_slice(&self.plaintext);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&self.message_id),
                self.buffer.get_mut(),
            )
            .expect("seal");
        self.body_tag.copy_from_slice(tag.as_ref());
        if self.signed {
            let digest = self.digest();
            self.signature = self
                .signer
                .sign_digest(&digest)
                .expect("sign")
                .as_ref()
                .to_vec();
        }
    }

    /// Derive, header tag check, body open and (signed suites) one verification.
    pub fn decrypt(&mut self) {
        let key = self.derive();
        key.open_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(&self.header),
            ring::aead::Tag::from(self.header_tag),
            &mut [],
            0..,
        )
        .expect("header tag");
        if self.signed {
            let digest = self.digest();
            lc_sig::UnparsedPublicKey::new(&lc_sig::ECDSA_P384_SHA384_ASN1, &self.public_key)
                .verify_digest(&digest, &self.signature)
                .expect("verify");
        }
        let (buffer, scratch) = (self.buffer.get(), self.scratch.get_mut());
        scratch.copy_from_slice(buffer);
        key.open_in_place_separate_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::from(&self.message_id),
            ring::aead::Tag::from(self.body_tag),
            self.scratch.get_mut(),
            0..,
        )
        .expect("body");
        std::hint::black_box(self.scratch.get());
    }
}

/// A buffer of `len` bytes placed half a page away, modulo 4 KiB, from the
/// buffer it is copied from. Copies between buffers whose addresses agree
/// modulo 4 KiB ran 5 to 10 times slower here (4K aliasing: at 16 KiB the
/// floor's one copy took longer than our whole message); message buffers
/// from the allocator rarely line up that way, so the floor must not pay it.
struct Apart {
    storage: Vec<u8>,
    offset: usize,
    len: usize,
}

impl Apart {
    fn new(len: usize, from: &[u8]) -> Self {
        let storage = vec![0u8; len + 4096];
        let want = (from.as_ptr() as usize + 2048) % 4096;
        let offset = (want + 4096 - storage.as_ptr() as usize % 4096) % 4096;
        Self {
            storage,
            offset,
            len,
        }
    }

    fn get(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + self.len]
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + self.len]
    }
}

/// One measured operation: a closure per thread, built once.
pub struct Contender<'a> {
    per_thread: Vec<Box<dyn FnMut() + Send + 'a>>,
}

impl<'a> Contender<'a> {
    /// `threads` copies of the operation `make` builds.
    pub fn new<F: FnMut() + Send + 'a>(threads: usize, make: impl Fn() -> F) -> Self {
        let per_thread = (0..threads)
            .map(|_| {
                let mut op = make();
                op(); // warm: first-use costs stay out of the measurement
                Box::new(op) as Box<dyn FnMut() + Send + 'a>
            })
            .collect();
        Self { per_thread }
    }

    /// Operations per second, summed over the threads, for `slice`.
    pub fn run(&mut self, slice: Duration) -> f64 {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .per_thread
                .iter_mut()
                .map(|op| {
                    scope.spawn(move || {
                        let start = Instant::now();
                        let mut count = 0u64;
                        while start.elapsed() < slice {
                            for _ in 0..16 {
                                op();
                            }
                            count += 16;
                        }
                        count as f64 / start.elapsed().as_secs_f64()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread"))
                .sum()
        })
    }
}

/// Rates measured side by side: every contender runs for one short slice
/// in turn, round after round, so that the drift in machine speed seen
/// here (up to 40 % over minutes) falls on all of them alike. `rates[c][r]`
/// is contender `c`'s rate in round `r`.
pub struct Interleaved {
    pub rates: Vec<Vec<f64>>,
}

impl Interleaved {
    /// Runs `rounds` rounds of `slice` per contender. A contender may also
    /// be measured elsewhere (another process): `external[i]` is called with
    /// the slice and returns its rate, after the in-process contenders.
    pub fn measure(
        contenders: &mut [Contender<'_>],
        external: &mut [&mut dyn FnMut(Duration) -> Option<f64>],
        rounds: usize,
        slice: Duration,
    ) -> Self {
        let mut rates = vec![Vec::with_capacity(rounds); contenders.len() + external.len()];
        for _ in 0..rounds {
            for (c, contender) in contenders.iter_mut().enumerate() {
                rates[c].push(contender.run(slice));
            }
            for (e, run) in external.iter_mut().enumerate() {
                if let Some(rate) = run(slice) {
                    rates[contenders.len() + e].push(rate);
                }
            }
        }
        Self { rates }
    }

    /// Median rate of contender `c`.
    pub fn median(&self, c: usize) -> Option<f64> {
        median(self.rates[c].clone())
    }

    /// Median over rounds of `a`'s rate divided by `b`'s in the same round.
    pub fn ratio(&self, a: usize, b: usize) -> Option<f64> {
        median(
            self.rates[a]
                .iter()
                .zip(&self.rates[b])
                .map(|(x, y)| x / y)
                .collect(),
        )
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}
