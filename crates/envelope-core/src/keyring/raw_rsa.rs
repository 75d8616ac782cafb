//! The raw RSA keyring: wraps data keys with a local RSA key pair.
//!
//! Provider id = namespace, provider info = key name, ciphertext = the data
//! key RSA-encrypted with the configured padding. Encrypt needs the public
//! key and decrypt the private key; neither is derived from the other, as
//! in the official SDKs.
//!
//! PKCS#1 v1.5 is supported for compatibility only: it is vulnerable to
//! padding-oracle attacks when an attacker can submit ciphertexts and
//! observe failures. Prefer OAEP.

use std::fmt;

use async_trait::async_trait;
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
};
use zeroize::Zeroizing;

use super::unwrap::{decrypt_first_match, EdkUnwrapper, UnwrapRequest};
use super::{pem, Keyring, KMS_PROVIDER_PREFIX};
use crate::crypto::DataKey;
use crate::error::KeyringError;
use crate::format::EncryptedDataKey;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};

/// RSA padding scheme for wrapping data keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    /// PKCS#1 v1.5 (legacy).
    Pkcs1,
    /// OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
    /// OAEP with SHA-384 and MGF1-SHA-384.
    OaepSha384,
    /// OAEP with SHA-512 and MGF1-SHA-512.
    OaepSha512,
}

impl RsaPadding {
    fn oaep(self) -> Option<&'static OaepAlgorithm> {
        match self {
            Self::Pkcs1 => None,
            Self::OaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
            Self::OaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
            Self::OaepSha384 => Some(&OAEP_SHA384_MGF1SHA384),
            Self::OaepSha512 => Some(&OAEP_SHA512_MGF1SHA512),
        }
    }
}

enum PublicKey {
    Oaep(OaepPublicEncryptingKey, &'static OaepAlgorithm),
    Pkcs1(Pkcs1PublicEncryptingKey),
}

enum PrivateKey {
    Oaep(OaepPrivateDecryptingKey, &'static OaepAlgorithm),
    Pkcs1(Pkcs1PrivateDecryptingKey),
}

/// A keyring holding an RSA public key (to encrypt), private key (to
/// decrypt), or both.
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: RsaPadding,
    public: Option<PublicKey>,
    private: Option<PrivateKey>,
    private_operations: std::sync::atomic::AtomicU64,
}

impl RawRsaKeyring {
    /// A keyring from PEM keys: a SubjectPublicKeyInfo `PUBLIC KEY` block
    /// and/or a PKCS#8 `PRIVATE KEY` block. At least one must be given.
    pub fn from_pem(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key_pem: Option<&str>,
        private_key_pem: Option<&str>,
    ) -> Result<Self, KeyringError> {
        let namespace = namespace.into();
        if namespace.starts_with(KMS_PROVIDER_PREFIX) {
            return Err(KeyringError::Config(format!(
                "raw RSA key namespace {namespace:?} must not start with \"aws-kms\""
            )));
        }
        if public_key_pem.is_none() && private_key_pem.is_none() {
            return Err(KeyringError::Config(
                "a raw RSA keyring needs a public key, a private key, or both".into(),
            ));
        }
        let bad = |what: &str| KeyringError::Config(format!("invalid RSA {what} key"));
        let public = public_key_pem
            .map(|pem_text| -> Result<PublicKey, KeyringError> {
                let der = pem::decode(pem_text, "PUBLIC KEY")?;
                let key = PublicEncryptingKey::from_der(&der).map_err(|_| bad("public"))?;
                Ok(match padding.oaep() {
                    Some(alg) => PublicKey::Oaep(
                        OaepPublicEncryptingKey::new(key).map_err(|_| bad("public"))?,
                        alg,
                    ),
                    None => PublicKey::Pkcs1(
                        Pkcs1PublicEncryptingKey::new(key).map_err(|_| bad("public"))?,
                    ),
                })
            })
            .transpose()?;
        let private = private_key_pem
            .map(|pem_text| -> Result<PrivateKey, KeyringError> {
                let der = pem::decode(pem_text, "PRIVATE KEY")?;
                let key = PrivateDecryptingKey::from_pkcs8(&der).map_err(|_| bad("private"))?;
                Ok(match padding.oaep() {
                    Some(alg) => PrivateKey::Oaep(
                        OaepPrivateDecryptingKey::new(key).map_err(|_| bad("private"))?,
                        alg,
                    ),
                    None => PrivateKey::Pkcs1(
                        Pkcs1PrivateDecryptingKey::new(key).map_err(|_| bad("private"))?,
                    ),
                })
            })
            .transpose()?;
        Ok(Self {
            namespace,
            name: name.into(),
            padding,
            public,
            private,
            private_operations: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn describe(&self) -> String {
        format!("raw RSA keyring {}/{}", self.namespace, self.name)
    }

    fn wrap(&self, key: &[u8]) -> Result<Vec<u8>, KeyringError> {
        let failed = |reason: &str| KeyringError::WrapFailed {
            keyring: self.describe(),
            reason: reason.to_owned(),
        };
        let mut out = vec![0u8; 1024];
        let len = match &self.public {
            None => return Err(failed("no public key configured")),
            Some(PublicKey::Oaep(public, alg)) => {
                out.resize(public.ciphertext_size(), 0);
                public
                    .encrypt(alg, key, &mut out, None)
                    .map_err(|_| failed("RSA-OAEP encryption failed"))?
                    .len()
            }
            Some(PublicKey::Pkcs1(public)) => {
                out.resize(public.ciphertext_size(), 0);
                public
                    .encrypt(key, &mut out)
                    .map_err(|_| failed("RSA PKCS#1 encryption failed"))?
                    .len()
            }
        };
        out.truncate(len);
        Ok(out)
    }

    /// Private-key operations (decryptions) performed so far: each one
    /// costs milliseconds, which is why a decrypt bounds its attempts.
    pub fn private_key_operations(&self) -> u64 {
        self.private_operations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn unwrap_key(&self, private: &PrivateKey, ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        self.private_operations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut out = Zeroizing::new(vec![0u8; 1024]);
        let len = match private {
            PrivateKey::Oaep(key, alg) => {
                out.resize(key.min_output_size(), 0);
                key.decrypt(alg, ciphertext, &mut out, None).ok()?.len()
            }
            PrivateKey::Pkcs1(key) => {
                out.resize(key.min_output_size(), 0);
                key.decrypt(ciphertext, &mut out).ok()?.len()
            }
        };
        out.truncate(len);
        Some(out)
    }
}

impl fmt::Debug for RawRsaKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRsaKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("padding", &self.padding)
            .field("has_public_key", &self.public.is_some())
            .field("has_private_key", &self.private.is_some())
            .finish()
    }
}

#[async_trait]
impl Keyring for RawRsaKeyring {
    async fn on_encrypt(&self, materials: &mut EncryptionMaterials) -> Result<(), KeyringError> {
        let data_key = materials
            .data_key_or_generate()
            .map_err(|e| KeyringError::WrapFailed {
                keyring: self.describe(),
                reason: e.to_string(),
            })?;
        let ciphertext = self.wrap(data_key.expose_secret())?;
        materials.encrypted_data_keys.push(EncryptedDataKey {
            provider_id: self.namespace.clone(),
            provider_info: self.name.as_bytes().to_vec(),
            ciphertext,
        });
        Ok(())
    }

    async fn on_decrypt(
        &self,
        materials: &mut DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<(), KeyringError> {
        if self.private.is_none() && materials.data_key.is_none() {
            return Err(KeyringError::Config(format!(
                "{} has no private key to decrypt with",
                RawRsaKeyring::describe(self)
            )));
        }
        decrypt_first_match(self, materials, edks).await
    }
}

#[async_trait]
impl EdkUnwrapper for RawRsaKeyring {
    fn describe(&self) -> String {
        RawRsaKeyring::describe(self)
    }

    fn matches(&self, edk: &EncryptedDataKey) -> bool {
        edk.provider_id == self.namespace && edk.provider_info == self.name.as_bytes()
    }

    async fn unwrap(
        &self,
        edk: &EncryptedDataKey,
        request: &UnwrapRequest<'_>,
    ) -> Result<DataKey, KeyringError> {
        let failed = || KeyringError::UnwrapFailed {
            keyring: RawRsaKeyring::describe(self),
            reason: "RSA decryption failed (wrong key or padding)".into(),
        };
        let private = self.private.as_ref().ok_or_else(failed)?;
        let key = self
            .unwrap_key(private, &edk.ciphertext)
            .ok_or_else(failed)?;
        if key.len() != request.suite.key_len() {
            return Err(failed());
        }
        DataKey::from_slice(&key).map_err(|_| failed())
    }
}
