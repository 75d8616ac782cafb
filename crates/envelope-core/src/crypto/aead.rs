//! AES-GCM with a 12-byte IV and a detached 16-byte tag, in place.

use crate::error::CryptoError;

/// GCM IV length, fixed by every suite.
pub(crate) const IV_LEN: usize = 12;
/// GCM tag length, fixed by every suite.
pub(crate) const TAG_LEN: usize = 16;

/// An AES-GCM key of 128, 192 or 256 bits.
pub(crate) struct GcmKey(Backend);

// The large variant is the hot one (AES-128/256); boxing it would add a
// pointer chase to every frame for the sake of the rare AES-192 suites.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Ring(ring::aead::LessSafeKey),
    // ring has no AES-192, which three legacy suites need.
    AwsLc(aws_lc_rs::aead::LessSafeKey),
}

impl GcmKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let bad_length = || CryptoError::KeyLength {
            what: "AES-GCM key",
            expected: 32,
            actual: key.len(),
        };
        let backend = match key.len() {
            16 | 32 => {
                let alg = if key.len() == 16 {
                    &ring::aead::AES_128_GCM
                } else {
                    &ring::aead::AES_256_GCM
                };
                let unbound = ring::aead::UnboundKey::new(alg, key).map_err(|_| bad_length())?;
                Backend::Ring(ring::aead::LessSafeKey::new(unbound))
            }
            24 => {
                let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_192_GCM, key)
                    .map_err(|_| bad_length())?;
                Backend::AwsLc(aws_lc_rs::aead::LessSafeKey::new(unbound))
            }
            _ => return Err(bad_length()),
        };
        Ok(Self(backend))
    }

    /// Encrypts `data` in place and returns the tag.
    pub(crate) fn seal_in_place(
        &self,
        iv: [u8; IV_LEN],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let failed = |_| CryptoError::Primitive("AES-GCM seal failed");
        let failed_lc = |_| CryptoError::Primitive("AES-GCM seal failed");
        let mut out = [0u8; TAG_LEN];
        match &self.0 {
            Backend::Ring(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(iv),
                        ring::aead::Aad::from(aad),
                        data,
                    )
                    .map_err(failed)?;
                out.copy_from_slice(tag.as_ref());
            }
            Backend::AwsLc(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(iv),
                        aws_lc_rs::aead::Aad::from(aad),
                        data,
                    )
                    .map_err(failed_lc)?;
                out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(out)
    }

    /// Decrypts the ciphertext and tag at `in_out[src..]` (the tag is its
    /// last 16 bytes) and writes the plaintext to the front of `in_out`,
    /// moving it down as it decrypts. Returns the plaintext length. On
    /// failure all of `in_out` is overwritten with zeros.
    pub(crate) fn open_within(
        &self,
        iv: [u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        src: usize,
    ) -> Result<usize, ()> {
        let result = match &self.0 {
            Backend::Ring(key) => key
                .open_within(
                    ring::aead::Nonce::assume_unique_for_key(iv),
                    ring::aead::Aad::from(aad),
                    in_out,
                    src..,
                )
                .map(|plaintext| plaintext.len())
                .map_err(|_| ()),
            Backend::AwsLc(key) => key
                .open_within(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(iv),
                    aws_lc_rs::aead::Aad::from(aad),
                    in_out,
                    src..,
                )
                .map(|plaintext| plaintext.len())
                .map_err(|_| ()),
        };
        if result.is_err() {
            in_out.fill(0);
        }
        result
    }

    /// Decrypts `data` in place if `tag` verifies. On failure `data` is
    /// overwritten with zeros, so no unauthenticated plaintext survives.
    pub(crate) fn open_in_place(
        &self,
        iv: [u8; IV_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), ()> {
        let result = match &self.0 {
            Backend::Ring(key) => key
                .open_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(iv),
                    ring::aead::Aad::from(aad),
                    ring::aead::Tag::from(*tag),
                    data,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| ()),
            Backend::AwsLc(key) => key
                .open_in_place_separate_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(iv),
                    aws_lc_rs::aead::Aad::from(aad),
                    tag,
                    data,
                )
                .map(|_| ())
                .map_err(|_| ()),
        };
        if result.is_err() {
            data.fill(0);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_key_size_and_tamper() {
        for len in [16, 24, 32] {
            let key = GcmKey::new(&vec![7u8; len]).expect("valid key");
            let mut data = b"attack at dawn".to_vec();
            let tag = key.seal_in_place([1; 12], b"aad", &mut data).expect("seal");
            assert_ne!(&data[..], b"attack at dawn");
            let mut copy = data.clone();
            key.open_in_place([1; 12], b"aad", &mut copy, &tag)
                .expect("open");
            assert_eq!(&copy[..], b"attack at dawn");
            let mut copy = data.clone();
            assert!(key.open_in_place([1; 12], b"aaD", &mut copy, &tag).is_err());
            assert!(copy.iter().all(|b| *b == 0));
        }
        assert!(GcmKey::new(&[0; 20]).is_err());
    }

    #[test]
    fn open_within_moves_plaintext_down_and_wipes_on_failure() {
        for len in [16, 24, 32] {
            let key = GcmKey::new(&vec![3u8; len]).expect("valid key");
            let mut data = b"frame plaintext".to_vec();
            let tag = key.seal_in_place([2; 12], b"aad", &mut data).expect("seal");
            let mut laid_out = b"HEADER".to_vec();
            laid_out.extend_from_slice(&data);
            laid_out.extend_from_slice(&tag);
            let mut copy = laid_out.clone();
            let n = key
                .open_within([2; 12], b"aad", &mut copy, 6)
                .expect("open");
            assert_eq!(&copy[..n], b"frame plaintext");
            let mut copy = laid_out.clone();
            assert!(key.open_within([2; 12], b"aaD", &mut copy, 6).is_err());
            assert!(copy.iter().all(|b| *b == 0));
        }
    }
}
