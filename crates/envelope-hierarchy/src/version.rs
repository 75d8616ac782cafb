//! Branch key versions: UUIDs, written as text in the table
//! (`branch:version:<uuid>`) and as 16 raw bytes in EDKs.

use std::fmt;

/// A branch key version (a UUID).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BranchKeyVersion([u8; 16]);

impl BranchKeyVersion {
    /// From the 16 bytes of an EDK.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes, as EDKs carry them.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex, either case).
    pub fn parse(text: &str) -> Option<Self> {
        let groups: Vec<&str> = text.split('-').collect();
        if groups.iter().map(|g| g.len()).collect::<Vec<_>>() != [8, 4, 4, 4, 12] {
            return None;
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(groups.concat(), &mut out).ok()?;
        Some(Self(out))
    }

    /// A new random (version 4) UUID.
    pub fn random() -> Option<Self> {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).ok()?;
        bytes[6] = (bytes[6] & 0x0F) | 0x40;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        Some(Self(bytes))
    }
}

impl fmt::Display for BranchKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

impl fmt::Debug for BranchKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_between_text_and_bytes() {
        let text = "e9ce18a3-edb5-4272-9f86-1cacb7997ff6";
        let version = BranchKeyVersion::parse(text).expect("parses");
        assert_eq!(version.to_string(), text);
        assert_eq!(version.as_bytes()[0], 0xe9);
        assert!(BranchKeyVersion::parse("e9ce18a3edb542729f861cacb7997ff6").is_none());
        assert!(BranchKeyVersion::parse("e9ce18a3-edb5-4272-9f86-1cacb7997ffz").is_none());
        let random = BranchKeyVersion::random().expect("random");
        assert_eq!(random.to_string().as_bytes()[14], b'4');
        assert_eq!(BranchKeyVersion::parse(&random.to_string()), Some(random));
    }
}
