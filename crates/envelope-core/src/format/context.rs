//! The encryption context: a map of UTF-8 pairs bound to the message as AAD.

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
///
/// # Why a sorted `Vec`
/// Contexts hold a handful of pairs and are parsed from every message
/// header, compared and hashed on every cache hit, and dropped after. A
/// sorted vector does each with one allocation and straight slice
/// operations; a `BTreeMap` allocated a node of several hundred bytes and
/// walked it for each (together about 5 % of a cache-hit decrypt).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct EncryptionContext(Vec<(String, String)>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// Adds or replaces a pair.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let (key, value) = (key.into(), value.into());
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes a pair.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|i| self.0[i].1.as_str())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
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

    /// Sorts pairs added in any order and drops repeated keys, keeping the
    /// value added last (as repeated inserts would).
    fn from_unsorted(mut pairs: Vec<(String, String)>) -> Self {
        // Stable: among equal keys the last added stays last.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(&mut later.1, &mut earlier.1);
            }
            same
        });
        Self(pairs)
    }

    /// Rejects keys with the reserved `aws-crypto-` prefix. Callers'
    /// contexts go through this; the SDK adds its own reserved keys after.
    pub fn check_no_reserved_keys(&self) -> Result<(), FormatError> {
        match self.0.iter().find(|(k, _)| k.starts_with(RESERVED_PREFIX)) {
            Some((key, _)) => Err(FormatError::ReservedContextKey(key.clone())),
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

    /// Parses a serialized context of exactly `bytes.len()` bytes. Pairs
    /// may come in any order (the format writes them sorted); a repeated
    /// key is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut reader = Reader::new(bytes);
        let count = reader.u16("encryption context pair count")?;
        // Each pair takes at least four bytes: no count can make this
        // reserve more than the input could fill.
        let mut pairs: Vec<(String, String)> =
            Vec::with_capacity(usize::from(count).min(bytes.len() / 4));
        let mut sorted = true;
        for _ in 0..count {
            let key = reader.short_bytes("encryption context key")?;
            let value = reader.short_bytes("encryption context value")?;
            let key = std::str::from_utf8(key)
                .map_err(|_| FormatError::NotUtf8("encryption context key"))?;
            let value = std::str::from_utf8(value)
                .map_err(|_| FormatError::NotUtf8("encryption context value"))?;
            if let Some((last, _)) = pairs.last() {
                match last.as_str().cmp(key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(FormatError::DuplicateContextKey(key.to_owned()))
                    }
                    std::cmp::Ordering::Greater => sorted = false,
                }
            }
            pairs.push((key.to_owned(), value.to_owned()));
        }
        if reader.remaining() != 0 {
            return Err(FormatError::InvalidField {
                field: "encryption context",
                reason: "its length field covers more bytes than its pairs",
            });
        }
        if !sorted {
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(pair) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(FormatError::DuplicateContextKey(pair[0].0.clone()));
            }
        }
        Ok(Self(pairs))
    }
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_unsorted(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<'a> IntoIterator for &'a EncryptionContext {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_order_in_one_order_out() {
        // Unsorted on the wire (other writers may do this): parsed sorted.
        let unsorted = b"\x00\x02\x00\x01b\x00\x012\x00\x01a\x00\x011";
        let parsed = EncryptionContext::parse(unsorted).expect("parses");
        let built: EncryptionContext = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(parsed, built);
        assert_eq!(parsed.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        // Collected pairs behave as inserts: sorted, the last value wins.
        let mut inserted = EncryptionContext::new();
        for (k, v) in [("z", "1"), ("a", "2"), ("z", "3"), ("m", "4")] {
            inserted.insert(k, v);
        }
        let collected: EncryptionContext = [("z", "1"), ("a", "2"), ("z", "3"), ("m", "4")]
            .into_iter()
            .collect();
        assert_eq!(inserted, collected);
        assert_eq!(collected.get("z"), Some("3"));
        assert_eq!(collected.iter().map(|(k, _)| k).collect::<String>(), "amz");
        let mut removed = collected.clone();
        assert_eq!(removed.remove("m"), Some("4".to_owned()));
        assert!(!removed.contains_key("m") && removed.len() == 2);
    }

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
        let dup_unsorted = b"\x00\x03\x00\x01b\x00\x011\x00\x01a\x00\x012\x00\x01b\x00\x013";
        assert!(matches!(
            EncryptionContext::parse(dup_unsorted),
            Err(FormatError::DuplicateContextKey(_))
        ));
        assert!(EncryptionContext::parse(b"\x00\x01\x00\x05ab").is_err());
        assert!(EncryptionContext::parse(b"\x00\x00\x00").is_err());
    }
}
