//! The EDK ciphertext: everything an XKS decrypt needs, in one byte string.
//!
//! ```text
//! version      u8   = 0x01
//! iv length    u8   = 12 or 16
//! iv           (iv length) bytes
//! tag          16 bytes                (the proxy's authenticationTag)
//! cm length    u8   = 0..=20
//! cm           (cm length) bytes       (the proxy's ciphertextMetadata)
//! ciphertext   the rest                (as long as the data key)
//! ```
//!
//! The provider id is [`PROVIDER_ID`] and the provider info the key's URI
//! in canonical form (see [`crate::XksKeyUri`]), UTF-8.

/// The EDK provider id of XKS keyrings.
pub const PROVIDER_ID: &str = "aws-xks";

/// The layout version this crate writes and reads.
const VERSION: u8 = 1;
/// The authentication tag length (the XKS API fixes it).
pub(crate) const TAG_LEN: usize = 16;
/// The longest `ciphertextMetadata` the API allows.
pub(crate) const MAX_METADATA_LEN: usize = 20;

/// A data key as an XKS proxy encrypted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WrappedKey {
    pub(crate) iv: Vec<u8>,
    pub(crate) tag: [u8; TAG_LEN],
    pub(crate) metadata: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

/// Why an EDK ciphertext does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LayoutError {
    /// The version byte is not 1.
    Version(u8),
    /// The bytes end inside the named field.
    Truncated(&'static str),
    /// The IV is neither 12 nor 16 bytes.
    IvLength(usize),
    /// The metadata is over 20 bytes.
    MetadataLength(usize),
    /// No ciphertext.
    EmptyCiphertext,
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Version(v) => write!(f, "unknown XKS EDK layout version {v}"),
            Self::Truncated(field) => write!(f, "XKS EDK truncated in its {field}"),
            Self::IvLength(n) => write!(f, "XKS EDK IV of {n} bytes (12 or 16 expected)"),
            Self::MetadataLength(n) => {
                write!(f, "XKS EDK ciphertext metadata of {n} bytes (at most 20)")
            }
            Self::EmptyCiphertext => f.write_str("XKS EDK has no ciphertext"),
        }
    }
}

fn valid_iv_len(len: usize) -> bool {
    len == 12 || len == 16
}

impl WrappedKey {
    /// Checks the field lengths (for a proxy's response).
    pub(crate) fn check(&self) -> Result<(), LayoutError> {
        if !valid_iv_len(self.iv.len()) {
            return Err(LayoutError::IvLength(self.iv.len()));
        }
        if self.metadata.len() > MAX_METADATA_LEN {
            return Err(LayoutError::MetadataLength(self.metadata.len()));
        }
        if self.ciphertext.is_empty() {
            return Err(LayoutError::EmptyCiphertext);
        }
        Ok(())
    }

    /// Serializes, after [`WrappedKey::check`].
    pub(crate) fn encode(&self) -> Result<Vec<u8>, LayoutError> {
        self.check()?;
        let mut out = Vec::with_capacity(
            3 + self.iv.len() + TAG_LEN + self.metadata.len() + self.ciphertext.len(),
        );
        out.push(VERSION);
        // Lengths fit in a byte: check() bounded them.
        out.push(self.iv.len() as u8);
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&self.tag);
        out.push(self.metadata.len() as u8);
        out.extend_from_slice(&self.metadata);
        out.extend_from_slice(&self.ciphertext);
        Ok(out)
    }

    /// Parses an EDK ciphertext.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LayoutError> {
        let (&version, rest) = bytes
            .split_first()
            .ok_or(LayoutError::Truncated("version"))?;
        if version != VERSION {
            return Err(LayoutError::Version(version));
        }
        let (&iv_len, rest) = rest
            .split_first()
            .ok_or(LayoutError::Truncated("IV length"))?;
        let iv_len = usize::from(iv_len);
        if !valid_iv_len(iv_len) {
            return Err(LayoutError::IvLength(iv_len));
        }
        let (iv, rest) = rest
            .split_at_checked(iv_len)
            .ok_or(LayoutError::Truncated("IV"))?;
        let (tag, rest) = rest
            .split_at_checked(TAG_LEN)
            .ok_or(LayoutError::Truncated("tag"))?;
        let (&md_len, rest) = rest
            .split_first()
            .ok_or(LayoutError::Truncated("metadata length"))?;
        let md_len = usize::from(md_len);
        if md_len > MAX_METADATA_LEN {
            return Err(LayoutError::MetadataLength(md_len));
        }
        let (metadata, ciphertext) = rest
            .split_at_checked(md_len)
            .ok_or(LayoutError::Truncated("metadata"))?;
        if ciphertext.is_empty() {
            return Err(LayoutError::EmptyCiphertext);
        }
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        Ok(Self {
            iv: iv.to_vec(),
            tag: tag_bytes,
            metadata: metadata.to_vec(),
            ciphertext: ciphertext.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WrappedKey {
        WrappedKey {
            iv: vec![7; 12],
            tag: [9; 16],
            metadata: b"xks-proxy:aad=v1".to_vec(),
            ciphertext: vec![1; 32],
        }
    }

    #[test]
    fn round_trips_with_the_documented_layout() {
        let key = sample();
        let bytes = key.encode().unwrap();
        assert_eq!(bytes.len(), 1 + 1 + 12 + 16 + 1 + 16 + 32);
        assert_eq!(&bytes[..2], &[1, 12]);
        assert_eq!(bytes[30], 16);
        assert_eq!(WrappedKey::decode(&bytes).unwrap(), key);

        let no_md = WrappedKey {
            metadata: Vec::new(),
            iv: vec![3; 16],
            ..sample()
        };
        assert_eq!(WrappedKey::decode(&no_md.encode().unwrap()).unwrap(), no_md);
    }

    #[test]
    fn every_truncation_and_bad_length_is_an_error() {
        let bytes = sample().encode().unwrap();
        // Cutting inside the header fields, or dropping the whole ciphertext.
        for cut in 0..=(bytes.len() - 32) {
            assert!(WrappedKey::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert_eq!(WrappedKey::decode(&bad), Err(LayoutError::Version(2)));
        let mut bad = bytes.clone();
        bad[1] = 13;
        assert_eq!(WrappedKey::decode(&bad), Err(LayoutError::IvLength(13)));
        let mut bad = bytes;
        bad[30] = 21;
        assert_eq!(
            WrappedKey::decode(&bad),
            Err(LayoutError::MetadataLength(21))
        );
        let long_md = WrappedKey {
            metadata: vec![0; 21],
            ..sample()
        };
        assert!(long_md.encode().is_err());
    }
}
