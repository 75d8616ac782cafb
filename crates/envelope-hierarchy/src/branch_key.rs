//! A branch key as the keyring uses it: the 32-byte key, its id and
//! version. The key is zeroized when the last holder drops it (the cache
//! evicting it included) and never printed.

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::version::BranchKeyVersion;

/// One version of one branch key, decrypted.
pub struct BranchKey {
    branch_key_id: String,
    version: BranchKeyVersion,
    key: Zeroizing<[u8; 32]>,
    /// The HMAC-SHA256 key schedule of `key`, computed once: every wrap
    /// derives its wrapping key with it.
    kdf: hmac::Key,
}

impl BranchKey {
    /// A branch key from its parts.
    pub fn new(branch_key_id: impl Into<String>, version: BranchKeyVersion, key: [u8; 32]) -> Self {
        let kdf = hmac::Key::new(hmac::HMAC_SHA256, &key);
        Self {
            branch_key_id: branch_key_id.into(),
            version,
            key: Zeroizing::new(key),
            kdf,
        }
    }

    /// The branch key id.
    pub fn branch_key_id(&self) -> &str {
        &self.branch_key_id
    }

    /// The version.
    pub fn version(&self) -> BranchKeyVersion {
        self.version
    }

    /// The key bytes (for tests and stores that copy it).
    #[allow(dead_code)]
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub(crate) fn kdf(&self) -> &hmac::Key {
        &self.kdf
    }
}

impl fmt::Debug for BranchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchKey")
            .field("branch_key_id", &self.branch_key_id)
            .field("version", &self.version)
            .field("key", &"<redacted>")
            .finish()
    }
}
