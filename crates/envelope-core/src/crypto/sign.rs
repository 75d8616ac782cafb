//! ECDSA message signatures (P-256/SHA-256 and P-384/SHA-384).
//!
//! Signing and verification work on a running digest, so streaming code can
//! hash the message as it goes and sign or verify at the end.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::error::CryptoError;
use crate::suite::SignatureAlgorithm;

impl SignatureAlgorithm {
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::EcdsaP256Sha256 => &digest::SHA256,
            Self::EcdsaP384Sha384 => &digest::SHA384,
        }
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Self::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Self::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    fn verification(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Self::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        }
    }

    /// Length of the base64 compressed public key in the encryption context.
    fn public_key_base64_len(self) -> usize {
        match self {
            Self::EcdsaP256Sha256 => 44,
            Self::EcdsaP384Sha384 => 68,
        }
    }
}

/// A message signing key. One is generated per message, or per cached data
/// key when a caching materials manager is used.
///
/// The private scalar lives inside aws-lc, which clears it when the key is
/// freed; `Debug` prints only the algorithm.
pub struct SigningKey {
    algorithm: SignatureAlgorithm,
    pair: EcdsaKeyPair,
    public_key_base64: String,
}

impl SigningKey {
    /// Generates a fresh key pair.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<Self, CryptoError> {
        let pair = EcdsaKeyPair::generate(algorithm.signing())
            .map_err(|_| CryptoError::Primitive("ECDSA key generation failed"))?;
        let compressed: EcPublicKeyCompressedBin<'static> = pair
            .public_key()
            .as_be_bytes()
            .map_err(|_| CryptoError::Primitive("ECDSA public key encoding failed"))?;
        let public_key_base64 = BASE64.encode(compressed.as_ref());
        Ok(Self {
            algorithm,
            pair,
            public_key_base64,
        })
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Base64 of the compressed public point, the value of
    /// `aws-crypto-public-key` in the encryption context.
    pub fn public_key_base64(&self) -> &str {
        &self.public_key_base64
    }

    /// Starts a digest of the message for this key.
    pub(crate) fn digester(&self) -> Digester {
        Digester::new(self.algorithm)
    }

    /// Signs a finished digest, returning the DER signature.
    pub(crate) fn sign(&self, digester: Digester) -> Result<Vec<u8>, CryptoError> {
        let digest = digester.0.finish();
        let signature = self
            .pair
            .sign_digest(&digest)
            .map_err(|_| CryptoError::Primitive("ECDSA signing failed"))?;
        Ok(signature.as_ref().to_vec())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// A running hash of the message bytes to be signed or verified.
pub(crate) struct Digester(digest::Context);

impl Digester {
    pub(crate) fn new(algorithm: SignatureAlgorithm) -> Self {
        Self(digest::Context::new(algorithm.digest()))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

/// A message verification key, parsed from `aws-crypto-public-key`.
#[derive(Clone, Debug)]
pub(crate) struct VerifyingKey {
    algorithm: SignatureAlgorithm,
    point: Vec<u8>,
}

impl VerifyingKey {
    /// Parses the base64 compressed point from the encryption context.
    pub(crate) fn from_base64(
        algorithm: SignatureAlgorithm,
        encoded: &str,
    ) -> Result<Self, CryptoError> {
        if encoded.len() != algorithm.public_key_base64_len() {
            return Err(CryptoError::InvalidPublicKey);
        }
        let point = BASE64
            .decode(encoded)
            .map_err(|_| CryptoError::InvalidPublicKey)?;
        if !matches!(point.first(), Some(2 | 3)) {
            return Err(CryptoError::InvalidPublicKey);
        }
        Ok(Self { algorithm, point })
    }

    pub(crate) fn digester(&self) -> Digester {
        Digester::new(self.algorithm)
    }

    /// Verifies a DER signature of any length over the finished digest.
    pub(crate) fn verify(&self, digester: Digester, signature: &[u8]) -> Result<(), CryptoError> {
        let digest = digester.0.finish();
        UnparsedPublicKey::new(self.algorithm.verification(), &self.point)
            .verify_digest(&digest, signature)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_with_compressed_key() {
        for alg in [
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP384Sha384,
        ] {
            let key = SigningKey::generate(alg).expect("keygen");
            assert_eq!(key.public_key_base64().len(), alg.public_key_base64_len());
            let mut d = key.digester();
            d.update(b"message");
            let sig = key.sign(d).expect("sign");
            let verifier = VerifyingKey::from_base64(alg, key.public_key_base64()).expect("parse");
            let mut d = verifier.digester();
            d.update(b"message");
            verifier.verify(d, &sig).expect("verifies");
            let mut d = verifier.digester();
            d.update(b"messagE");
            assert_eq!(verifier.verify(d, &sig), Err(CryptoError::SignatureInvalid));
            assert!(!format!("{key:?}").contains(key.public_key_base64()));
        }
    }
}
