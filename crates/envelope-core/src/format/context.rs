//! The encryption context: a map of UTF-8 pairs bound to the message as AAD.

use std::collections::BTreeMap;
use std::fmt;

use super::reader::{put_short_bytes, Reader};
use crate::error::FormatError;

/// Keys with this prefix are reserved for the SDK itself.
pub const RESERVED_PREFIX: &str = "aws-crypto-";
/// The context key that carries the message signature's public key.
pub const PUBLIC_KEY_FIELD: &str = "aws-crypto-public-key";
/// Largest serialized context the header's u16 length can describe.
pub const MAX_SERIALIZED_LEN: usize = u16::MAX as usize;

/// An encryption context: non-secret pairs, authenticated with the message.
///
/// Pairs are kept sorted by the UTF-8 bytes of their keys, which is the
/// order the format serializes them in.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a pair.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes a pair.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The pairs in serialization order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rejects keys with the reserved `aws-crypto-` prefix. Callers'
    /// contexts go through this; the SDK adds its own reserved keys after.
    pub fn check_no_reserved_keys(&self) -> Result<(), FormatError> {
        match self.0.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
            Some(key) => Err(FormatError::ReservedContextKey(key.clone())),
            None => Ok(()),
        }
    }

    /// The serialized form: empty for an empty context, otherwise a u16
    /// count and each pair as u16-length-prefixed key and value.
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.serialize_into(&mut out)?;
        Ok(out)
    }

    /// Appends the serialized form to `out`.
    pub fn serialize_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let start = out.len();
        let count = u16::try_from(self.0.len()).map_err(|_| FormatError::TooLong {
            field: "encryption context pair count",
            actual: self.0.len(),
            limit: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        for (key, value) in &self.0 {
            put_short_bytes(out, key.as_bytes(), "encryption context key")?;
            put_short_bytes(out, value.as_bytes(), "encryption context value")?;
        }
        let total = out.len() - start;
        if total > MAX_SERIALIZED_LEN {
            out.truncate(start);
            return Err(FormatError::TooLong {
                field: "serialized encryption context",
                actual: total,
                limit: MAX_SERIALIZED_LEN,
            });
        }
        Ok(())
    }

    /// Parses a serialized context of exactly `bytes.len()` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut map = BTreeMap::new();
        if bytes.is_empty() {
            return Ok(Self(map));
        }
        let mut reader = Reader::new(bytes);
        let count = reader.u16("encryption context pair count")?;
        for _ in 0..count {
            let key = reader.short_bytes("encryption context key")?;
            let value = reader.short_bytes("encryption context value")?;
            let key = std::str::from_utf8(key)
                .map_err(|_| FormatError::NotUtf8("encryption context key"))?;
            let value = std::str::from_utf8(value)
                .map_err(|_| FormatError::NotUtf8("encryption context value"))?;
            if map.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(FormatError::DuplicateContextKey(key.to_owned()));
            }
        }
        if reader.remaining() != 0 {
            return Err(FormatError::InvalidField {
                field: "encryption context",
                reason: "its length field covers more bytes than its pairs",
            });
        }
        Ok(Self(map))
    }
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a EncryptionContext {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_sorted_and_round_trips() {
        let ec: EncryptionContext = [("b", "2"), ("a", "1")].into_iter().collect();
        let bytes = ec.serialize().expect("fits");
        assert_eq!(bytes, b"\x00\x02\x00\x01a\x00\x011\x00\x01b\x00\x012");
        assert_eq!(EncryptionContext::parse(&bytes).expect("parses"), ec);
        assert!(EncryptionContext::new()
            .serialize()
            .expect("fits")
            .is_empty());
    }

    #[test]
    fn enforces_limits_and_reserved_prefix() {
        let big: EncryptionContext = [("k", "v".repeat(65_530))].into_iter().collect();
        assert!(matches!(big.serialize(), Err(FormatError::TooLong { .. })));
        let reserved: EncryptionContext = [("aws-crypto-x", "v")].into_iter().collect();
        assert!(matches!(
            reserved.check_no_reserved_keys(),
            Err(FormatError::ReservedContextKey(_))
        ));
    }

    #[test]
    fn rejects_duplicates_and_bad_lengths() {
        let dup = b"\x00\x02\x00\x01a\x00\x011\x00\x01a\x00\x012";
        assert!(matches!(
            EncryptionContext::parse(dup),
            Err(FormatError::DuplicateContextKey(_))
        ));
        assert!(EncryptionContext::parse(b"\x00\x01\x00\x05ab").is_err());
        assert!(EncryptionContext::parse(b"\x00\x00\x00").is_err());
    }
}
