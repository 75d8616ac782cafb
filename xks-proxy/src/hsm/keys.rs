//! Key handles by label, usage and status.
//!
//! A key is an AES secret key object on the token with `CKA_VALUE_LEN = 32`
//! and `CKA_LABEL` equal to the XKS key id. Handles are cached per label
//! and dropped from the cache when an operation on them errors (see
//! [`super::KeyStoreHsm::run`]). Usage and status are re-read on every
//! operation (unless `hsm.key_info_cache_ms` is set), so `keys disable`
//! takes effect on the next request.
//! Status is carried by `CKA_ID`; see [`DISABLED_MARKER`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::HsmError;

/// The `CKA_ID` value that marks a key DISABLED.
///
/// PKCS#11 has no enabled/disabled attribute. `CKA_END_DATE` would be the
/// natural carrier, but SoftHSM cannot read back a date set on a private
/// object (it stores it unencrypted and then tries to decrypt it, failing
/// with CKR_GENERAL_ERROR), and tokens do not enforce dates anyway. `CKA_ID`
/// is modifiable on every token, readable on private objects, and unused by
/// the XKS API, so it carries the marker; any other value means ENABLED.
pub const DISABLED_MARKER: &[u8] = b"xks-proxy:disabled";

/// ENABLED or DISABLED, as the metadata response reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// `CKA_ID` is anything but [`DISABLED_MARKER`].
    Enabled,
    /// `CKA_ID` is [`DISABLED_MARKER`].
    Disabled,
}

/// What the proxy knows about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// `CKA_ENCRYPT`.
    pub can_encrypt: bool,
    /// `CKA_DECRYPT`.
    pub can_decrypt: bool,
    /// From `CKA_ID`.
    pub status: KeyStatus,
}

impl KeyInfo {
    /// The XKS `keyUsage` list: the key's real usages, possibly empty.
    pub fn usages(&self) -> Vec<&'static str> {
        let mut v = Vec::with_capacity(2);
        if self.can_encrypt {
            v.push("ENCRYPT");
        }
        if self.can_decrypt {
            v.push("DECRYPT");
        }
        v
    }

    /// Fails with [`HsmError::KeyDisabled`] unless enabled.
    pub fn require_enabled(&self, label: &str) -> Result<(), HsmError> {
        match self.status {
            KeyStatus::Enabled => Ok(()),
            KeyStatus::Disabled => Err(HsmError::KeyDisabled(label.to_owned())),
        }
    }

    /// Fails with [`HsmError::KeyUsage`] when a needed usage is missing. An
    /// encrypt that asks for a CDIV needs decrypt too, for the verification
    /// decrypt.
    pub fn require(&self, label: &str, encrypt: bool, decrypt: bool) -> Result<(), HsmError> {
        if encrypt && !self.can_encrypt {
            return Err(HsmError::KeyUsage {
                key: label.to_owned(),
                operation: "encrypt",
            });
        }
        if decrypt && !self.can_decrypt {
            return Err(HsmError::KeyUsage {
                key: label.to_owned(),
                operation: "decrypt",
            });
        }
        Ok(())
    }
}

/// A cached key: handle, info, and when the info was read.
#[derive(Clone, Copy, Debug)]
struct Cached {
    generation: u64,
    handle: ObjectHandle,
    info: KeyInfo,
    read_at: Instant,
}

/// Label -> handle cache. Entries are tagged with the module generation
/// (see [`super::device::State::generation`]): handles do not survive a
/// re-initialization. The key's info is re-read on every use unless an
/// info TTL is set.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, Cached>>,
    info_ttl: Duration,
}

impl KeyCache {
    /// A cache reusing key info for `info_ttl` (zero: re-read every time).
    pub fn new(info_ttl: Duration) -> Self {
        KeyCache {
            entries: Mutex::default(),
            info_ttl,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // The map stays consistent even if a holder panicked.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle and current info of the key labelled `label`.
    pub fn resolve(
        &self,
        s: &Session,
        label: &str,
        generation: u64,
    ) -> Result<(ObjectHandle, KeyInfo), HsmError> {
        let cached = self
            .map()
            .get(label)
            .copied()
            .filter(|c| c.generation == generation);
        if let Some(c) = cached {
            if self.is_fresh(&c) {
                return Ok((c.handle, c.info));
            }
            match read_info(s, c.handle) {
                Ok(info) => {
                    self.store(label, generation, c.handle, info);
                    return Ok((c.handle, info));
                }
                // Device and session errors are the caller's to handle;
                // anything else may mean the object was deleted and
                // recreated, so look again.
                Err(e) if e.needs_recovery() => return Err(e),
                Err(_) => self.forget(label),
            }
        }
        let h = find(s, label)?.ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
        let info = read_info(s, h)?;
        self.store(label, generation, h, info);
        Ok((h, info))
    }

    /// The key's usage and status if read on `generation` less than the
    /// info TTL ago: what [`Self::resolve`] would return without touching
    /// the HSM.
    pub fn fresh_info(&self, label: &str, generation: u64) -> Option<KeyInfo> {
        if self.info_ttl.is_zero() {
            return None;
        }
        let cached = self.map().get(label).copied()?;
        (cached.generation == generation && self.is_fresh(&cached)).then_some(cached.info)
    }

    fn is_fresh(&self, cached: &Cached) -> bool {
        cached.read_at.elapsed() < self.info_ttl
    }

    fn store(&self, label: &str, generation: u64, handle: ObjectHandle, info: KeyInfo) {
        let entry = Cached {
            generation,
            handle,
            info,
            read_at: Instant::now(),
        };
        let mut map = self.map();
        match map.get_mut(label) {
            Some(e) => *e = entry,
            None => {
                map.insert(label.to_owned(), entry);
            }
        }
    }

    /// Drops a cached handle.
    pub fn forget(&self, label: &str) {
        self.map().remove(label);
    }
}

fn aes256_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32u64.into()),
        Attribute::Token(true),
    ]
}

/// Finds the AES-256 key with this label.
pub fn find(s: &Session, label: &str) -> Result<Option<ObjectHandle>, HsmError> {
    let mut t = aes256_template();
    t.push(Attribute::Label(label.as_bytes().to_vec()));
    Ok(s.find_objects(&t)?.into_iter().next())
}

/// Reads usage and status.
pub fn read_info(s: &Session, h: ObjectHandle) -> Result<KeyInfo, HsmError> {
    let attrs = s.get_attributes(
        h,
        &[
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Id,
        ],
    )?;
    let mut info = KeyInfo {
        can_encrypt: false,
        can_decrypt: false,
        status: KeyStatus::Enabled,
    };
    for a in attrs {
        match a {
            Attribute::Encrypt(b) => info.can_encrypt = b,
            Attribute::Decrypt(b) => info.can_decrypt = b,
            Attribute::Id(id) if id == DISABLED_MARKER => info.status = KeyStatus::Disabled,
            _ => {}
        }
    }
    Ok(info)
}

/// Creates a persistent, sensitive, non-extractable AES-256 key.
pub fn create_aes256(
    s: &Session,
    label: &str,
    encrypt: bool,
    decrypt: bool,
) -> Result<ObjectHandle, HsmError> {
    let t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::ValueLen(32u64.into()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Encrypt(encrypt),
        Attribute::Decrypt(decrypt),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
    ];
    Ok(s.generate_key(&Mechanism::AesKeyGen, &t)?)
}

/// All AES-256 keys on the token, by label.
pub fn list(s: &Session) -> Result<Vec<(String, KeyInfo)>, HsmError> {
    let mut out = Vec::new();
    for h in s.find_objects(&aes256_template())? {
        let label = s
            .get_attributes(h, &[AttributeType::Label])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Label(l) => Some(String::from_utf8_lossy(&l).into_owned()),
                _ => None,
            })
            .unwrap_or_default();
        out.push((label, read_info(s, h)?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Enables (clears `CKA_ID`) or disables (sets it to [`DISABLED_MARKER`]) a key.
pub fn set_enabled(s: &Session, label: &str, enabled: bool) -> Result<(), HsmError> {
    let h = find(s, label)?.ok_or_else(|| HsmError::KeyNotFound(label.to_owned()))?;
    let id = if enabled {
        Vec::new()
    } else {
        DISABLED_MARKER.to_vec()
    };
    s.update_attributes(h, &[Attribute::Id(id)])?;
    Ok(())
}
