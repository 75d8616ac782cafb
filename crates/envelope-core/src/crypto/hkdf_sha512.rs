//! HKDF-SHA512 (RFC 5869) for the committing suites, built on the raw
//! SHA-512 compression function.
//!
//! # Why not a general HKDF
//! Every committing message derives two keys: extract with the 32-byte
//! message id as salt, then expand `suite id ‖ "DERIVEKEY"` and
//! `"COMMITKEY"`, one output block each. That is ten SHA-512 compressions,
//! which cannot be avoided, and on the target machines (no SHA-512
//! instructions) they are about half of a cache-hit message. A general HMAC
//! adds buffering, state copies and finalization bookkeeping around each of
//! them; measured side by side here it cost about 10 % more than these ten
//! compressions alone. Because every input is short and of a known length,
//! each padded block can be laid out once, so this module does exactly the
//! ten compressions and nothing else.
//!
//! It is checked against `ring`'s HKDF in the tests below and by the
//! official ESDK test vectors.

use sha2::block_api::compress512;
use zeroize::{Zeroize, Zeroizing};

const BLOCK: usize = 128;
const OUT: usize = 64;
/// The longest message that fits with its padding in one block after the
/// key block: 128 − 1 (the 0x80 marker) − 16 (the length).
const MAX_SHORT_MESSAGE: usize = BLOCK - 1 - 16;

const INITIAL_STATE: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// The work area of one derivation. Every block is laid out in `block` in
/// turn, each digest written straight into the next block, so that secret
/// bytes sit in one place and are wiped once: wiping (a volatile store per
/// byte) cost more than the hashing around it when every step had a buffer
/// of its own.
struct Scratch {
    block: [u8; BLOCK],
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.block.zeroize();
    }
}

/// HMAC-SHA512 with its key absorbed: the states after the inner (ipad)
/// and outer (opad) key blocks.
struct HmacKey {
    inner: [u64; 8],
    outer: [u64; 8],
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5c;

impl Scratch {
    /// Absorbs the first `len` bytes of `block` (at most one block) as an
    /// HMAC key.
    fn hmac_key_in_block(&mut self, len: usize) -> HmacKey {
        let mut key = HmacKey {
            inner: INITIAL_STATE,
            outer: INITIAL_STATE,
        };
        self.block[..len].iter_mut().for_each(|b| *b ^= IPAD);
        self.block[len..].fill(IPAD);
        compress512(&mut key.inner, std::slice::from_ref(&self.block));
        self.block[..len].iter_mut().for_each(|b| *b ^= IPAD ^ OPAD);
        self.block[len..].fill(OPAD);
        compress512(&mut key.outer, std::slice::from_ref(&self.block));
        key
    }

    /// Completes a SHA-512 whose first block is already in `state`, over
    /// the first `len` bytes of `block` (at most [`MAX_SHORT_MESSAGE`]).
    fn finish_in_block(&mut self, mut state: [u64; 8], len: usize) -> [u64; 8] {
        debug_assert!(len <= MAX_SHORT_MESSAGE);
        self.block[len] = 0x80;
        self.block[len + 1..BLOCK - 16].fill(0);
        let bits = ((BLOCK + len) as u128) * 8;
        self.block[BLOCK - 16..].copy_from_slice(&bits.to_be_bytes());
        compress512(&mut state, std::slice::from_ref(&self.block));
        state
    }

    /// Writes a digest's 64 bytes at the start of `block`.
    fn digest_to_block(&mut self, mut state: [u64; 8]) {
        for (chunk, word) in self.block.chunks_exact_mut(8).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        state.zeroize();
    }

    /// HMAC under `key` of the first `len` bytes of `block`; the 64-byte
    /// result is left at the start of `block`.
    fn mac_in_block(&mut self, key: &HmacKey, len: usize) {
        let inner = self.finish_in_block(key.inner, len);
        self.digest_to_block(inner);
        let outer = self.finish_in_block(key.outer, OUT);
        self.digest_to_block(outer);
    }

    /// Places `parts` at the start of `block` and returns their length.
    fn put(&mut self, parts: &[&[u8]]) -> usize {
        let mut len = 0;
        for part in parts {
            self.block[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        len
    }
}

/// The two keys of a committing message.
pub(crate) struct CommittingKeys {
    /// The content key.
    pub(crate) content: Zeroizing<[u8; 32]>,
    /// The commitment key.
    pub(crate) commitment: [u8; 32],
}

/// HKDF-SHA512 with `salt`, `ikm`, and the ESDK's two expansions:
/// `suite id ‖ "DERIVEKEY"` (the content key) and `"COMMITKEY"`.
///
/// The single-block layout holds a salt of up to 128 bytes and a key of up
/// to 111; the one caller passes a 32-byte message id and a data key of at
/// most 32 bytes.
pub(crate) fn derive_committing(salt: &[u8], ikm: &[u8], suite_id: [u8; 2]) -> CommittingKeys {
    let mut scratch = Scratch {
        block: [0u8; BLOCK],
    };
    // Extract: PRK = HMAC(salt, IKM), then PRK becomes the HMAC key.
    let salt_len = scratch.put(&[salt]);
    let salt_key = scratch.hmac_key_in_block(salt_len);
    let ikm_len = scratch.put(&[ikm]);
    scratch.mac_in_block(&salt_key, ikm_len);
    let prk_key = scratch.hmac_key_in_block(OUT);
    // Expand: each key needs one output block, T(1) = HMAC(PRK, info ‖ 0x01).
    let mut content = Zeroizing::new([0u8; 32]);
    let info_len = scratch.put(&[&suite_id, b"DERIVEKEY", &[1]]);
    scratch.mac_in_block(&prk_key, info_len);
    content.copy_from_slice(&scratch.block[..32]);
    let mut commitment = [0u8; 32];
    let info_len = scratch.put(&[b"COMMITKEY", &[1]]);
    scratch.mac_in_block(&prk_key, info_len);
    commitment.copy_from_slice(&scratch.block[..32]);
    CommittingKeys {
        content,
        commitment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::hkdf;

    struct Len(usize);

    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    fn reference(salt: &[u8], ikm: &[u8], suite_id: [u8; 2]) -> ([u8; 32], [u8; 32]) {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, salt).extract(ikm);
        let (mut content, mut commit) = ([0u8; 32], [0u8; 32]);
        prk.expand(&[&suite_id, b"DERIVEKEY"], Len(32))
            .and_then(|o| o.fill(&mut content))
            .expect("expand");
        prk.expand(&[b"COMMITKEY"], Len(32))
            .and_then(|o| o.fill(&mut commit))
            .expect("expand");
        (content, commit)
    }

    #[test]
    fn matches_ring_hkdf_over_many_inputs() {
        let mut seed = [0u8; 64];
        for round in 0..200u32 {
            crate::crypto::rng::fill(&mut seed).expect("rng");
            let salt = &seed[..32];
            let ikm_len = [16, 24, 32][round as usize % 3];
            let ikm = &seed[32..32 + ikm_len];
            let suite_id = (round as u16).to_be_bytes();
            let ours = derive_committing(salt, ikm, suite_id);
            let (content, commit) = reference(salt, ikm, suite_id);
            assert_eq!(*ours.content, content);
            assert_eq!(ours.commitment, commit);
        }
    }

    #[test]
    fn rfc4231_hmac_sha512_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut scratch = Scratch { block: [0; BLOCK] };
        let len = scratch.put(&[b"Jefe"]);
        let key = scratch.hmac_key_in_block(len);
        let len = scratch.put(&[b"what do ya want ", b"for nothing?"]);
        scratch.mac_in_block(&key, len);
        let mac = &scratch.block[..OUT];
        let expected = "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737";
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }
}
