//! Message headers, versions 1 and 2.

use super::reader::Reader;
use super::{EncryptedDataKey, EncryptionContext};
use crate::crypto::aead::{IV_LEN, TAG_LEN};
use crate::crypto::kdf::COMMIT_KEY_LEN;
use crate::error::FormatError;
use crate::suite::{AlgorithmSuite, MessageFormatVersion};

/// The message id: 16 random bytes in v1, 32 in v2 (where it also salts
/// the key derivation).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MessageId {
    /// A version 1 id.
    V1([u8; 16]),
    /// A version 2 id.
    V2([u8; 32]),
}

impl MessageId {
    /// The raw id.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::V1(id) => id,
            Self::V2(id) => id,
        }
    }

    /// A random id of the version's length.
    pub(crate) fn random(version: MessageFormatVersion) -> Result<Self, crate::error::CryptoError> {
        Ok(match version {
            MessageFormatVersion::V1 => {
                let mut id = [0u8; 16];
                crate::crypto::rng::fill(&mut id)?;
                Self::V1(id)
            }
            MessageFormatVersion::V2 => {
                let mut id = [0u8; 32];
                crate::crypto::rng::fill(&mut id)?;
                Self::V2(id)
            }
        })
    }
}

/// How the body is laid out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ContentType {
    /// One AES-GCM block (legacy; decrypt only).
    NonFramed,
    /// A sequence of frames of `frame_length` bytes.
    Framed,
}

const V1_TYPE: u8 = 0x80;

/// A parsed message header.
#[derive(Clone, Debug)]
pub struct Header {
    /// The algorithm suite.
    pub suite: AlgorithmSuite,
    /// The message id.
    pub message_id: MessageId,
    /// The stored encryption context (pairs that were authenticated but not
    /// stored are not here).
    pub encryption_context: EncryptionContext,
    /// The wrapped data keys.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// Framed or not.
    pub content_type: ContentType,
    /// Plaintext bytes per frame (0 when non-framed).
    pub frame_length: u32,
    /// The commitment key (v2 only).
    pub(crate) commitment: Option<[u8; COMMIT_KEY_LEN]>,
    /// The IV of the header tag (v1 only; v2 uses zeros).
    pub(crate) header_iv: [u8; IV_LEN],
    /// The header tag.
    pub(crate) tag: [u8; TAG_LEN],
}

/// A header and where its authenticated part ends in the input.
pub(crate) struct ParsedHeader {
    pub(crate) header: Header,
    /// Length of the header body: the bytes the header tag authenticates.
    pub(crate) body_len: usize,
    /// Length of the whole header, tag included.
    pub(crate) total_len: usize,
}

impl Header {
    /// The commitment key (v2 messages), as stored in the header: public,
    /// it binds the data key to the message without revealing it.
    pub fn commitment_key(&self) -> Option<&[u8]> {
        self.commitment.as_ref().map(|key| key.as_slice())
    }

    /// The IV of the header tag (v1 messages; 12 zero bytes in v2).
    pub fn header_iv(&self) -> &[u8] {
        &self.header_iv
    }

    /// The header authentication tag.
    pub fn header_tag(&self) -> &[u8] {
        &self.tag
    }

    /// Parses the header at the start of a message without decrypting
    /// anything; returns it and its length in bytes. The header is not
    /// authenticated by this: use it to inspect, never to trust.
    pub fn parse_prefix(
        input: &[u8],
        max_edks: Option<usize>,
    ) -> Result<(Header, usize), FormatError> {
        Self::parse(input, max_edks).map(|parsed| (parsed.header, parsed.total_len))
    }

    /// Parses a header from the start of `input`. Parsing stops as soon as
    /// the EDK count exceeds `max_edks`, before any EDK is read.
    pub(crate) fn parse(
        input: &[u8],
        max_edks: Option<usize>,
    ) -> Result<ParsedHeader, FormatError> {
        HeaderParser::default().parse(input, max_edks)
    }
}

/// The fields before the EDKs.
struct Prefix {
    version: MessageFormatVersion,
    suite: AlgorithmSuite,
    message_id: MessageId,
    encryption_context: EncryptionContext,
    edk_count: usize,
}

/// Parses a header that arrives in pieces, looking at each byte once: the
/// fields up to the EDK count are kept once complete, then each EDK as it
/// completes; only the partial field at the end of the input, and the
/// short tail after the EDKs, are looked at again when more arrives. (A
/// parser that started over on every read made a header of thousands of
/// EDKs, dribbled a byte at a time, cost time quadratic in its length.)
#[derive(Default)]
pub(crate) struct HeaderParser {
    prefix: Option<Prefix>,
    edks: Vec<EncryptedDataKey>,
    /// Where parsing resumes: after the prefix and the complete EDKs.
    offset: usize,
}

impl HeaderParser {
    /// Where the next call resumes (the bytes before it are parsed).
    pub(crate) fn resume_offset(&self) -> usize {
        self.offset
    }

    /// Parses `input` (the whole header so far, from its first byte),
    /// resuming after what earlier calls parsed. `Truncated` asks for more.
    pub(crate) fn parse(
        &mut self,
        input: &[u8],
        max_edks: Option<usize>,
    ) -> Result<ParsedHeader, FormatError> {
        if self.prefix.is_none() {
            let mut r = Reader::new(input);
            let prefix = parse_prefix(&mut r, max_edks)?;
            self.offset = r.position();
            self.prefix = Some(prefix);
        }
        let Some(prefix) = &self.prefix else {
            return Err(FormatError::InvalidField {
                field: "message header",
                reason: "parser state lost",
            });
        };
        let rest = input.get(self.offset..).unwrap_or_default();
        // Each EDK is at least 6 bytes: a count the input cannot hold asks
        // for the bytes before any EDK is parsed.
        let missing = prefix.edk_count - self.edks.len();
        if missing * 6 > rest.len() {
            return Err(FormatError::Truncated {
                field: "encrypted data keys",
                needed: missing * 6 - rest.len(),
            });
        }
        while self.edks.len() < prefix.edk_count {
            let mut r = Reader::new(input.get(self.offset..).unwrap_or_default());
            let edk = EncryptedDataKey::parse(&mut r)?;
            self.offset += r.position();
            self.edks.push(edk);
        }
        let mut r = Reader::new(input.get(self.offset..).unwrap_or_default());
        let tail = parse_tail(&mut r, prefix.version)?;
        let body_len = self.offset + tail.body_len;
        let total_len = self.offset + r.position();
        let Some(prefix) = self.prefix.take() else {
            return Err(FormatError::InvalidField {
                field: "message header",
                reason: "parser state lost",
            });
        };
        Ok(ParsedHeader {
            header: Header {
                suite: prefix.suite,
                message_id: prefix.message_id,
                encryption_context: prefix.encryption_context,
                encrypted_data_keys: std::mem::take(&mut self.edks),
                content_type: tail.content_type,
                frame_length: tail.frame_length,
                commitment: tail.commitment,
                header_iv: tail.header_iv,
                tag: tail.tag,
            },
            body_len,
            total_len,
        })
    }
}

/// The fields after the EDKs.
struct Tail {
    content_type: ContentType,
    frame_length: u32,
    commitment: Option<[u8; COMMIT_KEY_LEN]>,
    /// Where the authenticated part ends, from the start of the tail.
    body_len: usize,
    header_iv: [u8; IV_LEN],
    tag: [u8; TAG_LEN],
}

fn parse_prefix(r: &mut Reader<'_>, max_edks: Option<usize>) -> Result<Prefix, FormatError> {
    let version = r.u8("version")?;
    let version = match version {
        1 => MessageFormatVersion::V1,
        2 => MessageFormatVersion::V2,
        other => return Err(FormatError::UnsupportedVersion(other)),
    };
    if version == MessageFormatVersion::V1 && r.u8("message type")? != V1_TYPE {
        return Err(FormatError::InvalidField {
            field: "message type",
            reason: "must be 0x80 (customer authenticated encrypted data)",
        });
    }
    let suite = AlgorithmSuite::from_id(r.u16("algorithm suite id")?)?;
    if suite.message_format() != version {
        return Err(FormatError::SuiteVersionMismatch {
            suite: suite.id(),
            version: if version == MessageFormatVersion::V1 {
                1
            } else {
                2
            },
        });
    }
    let message_id = match version {
        MessageFormatVersion::V1 => MessageId::V1(r.array("message id")?),
        MessageFormatVersion::V2 => MessageId::V2(r.array("message id")?),
    };
    let ec_len = r.u16("encryption context length")?;
    let encryption_context =
        EncryptionContext::parse(r.bytes(usize::from(ec_len), "encryption context")?)?;

    let edk_count = usize::from(r.u16("encrypted data key count")?);
    if edk_count == 0 {
        return Err(FormatError::InvalidField {
            field: "encrypted data key count",
            reason: "must be at least 1",
        });
    }
    if let Some(max) = max_edks {
        if edk_count > max {
            return Err(FormatError::TooManyEncryptedDataKeys {
                count: edk_count,
                max,
            });
        }
    }
    Ok(Prefix {
        version,
        suite,
        message_id,
        encryption_context,
        edk_count,
    })
}

fn parse_tail(r: &mut Reader<'_>, version: MessageFormatVersion) -> Result<Tail, FormatError> {
    let content_type = match r.u8("content type")? {
        1 => ContentType::NonFramed,
        2 => ContentType::Framed,
        _ => {
            return Err(FormatError::InvalidField {
                field: "content type",
                reason: "must be 1 (non-framed) or 2 (framed)",
            })
        }
    };
    if version == MessageFormatVersion::V1 {
        if r.u32("reserved field")? != 0 {
            return Err(FormatError::InvalidField {
                field: "reserved field",
                reason: "must be zero",
            });
        }
        if usize::from(r.u8("IV length")?) != IV_LEN {
            return Err(FormatError::InvalidField {
                field: "IV length",
                reason: "must be 12",
            });
        }
    }
    let frame_length = r.u32("frame length")?;
    match content_type {
        ContentType::NonFramed if frame_length != 0 => {
            return Err(FormatError::InvalidField {
                field: "frame length",
                reason: "must be 0 for non-framed content",
            })
        }
        ContentType::Framed if frame_length == 0 => {
            return Err(FormatError::InvalidField {
                field: "frame length",
                reason: "must be positive for framed content",
            })
        }
        ContentType::Framed if frame_length > super::body::MAX_FRAME_LENGTH => {
            return Err(FormatError::TooLong {
                field: "frame length",
                actual: frame_length as usize,
                limit: super::body::MAX_FRAME_LENGTH as usize,
            })
        }
        _ => {}
    }
    let commitment = match version {
        MessageFormatVersion::V2 => Some(r.array("commitment key")?),
        MessageFormatVersion::V1 => None,
    };
    let body_len = r.position();
    let header_iv = match version {
        MessageFormatVersion::V1 => r.array("header IV")?,
        MessageFormatVersion::V2 => [0u8; IV_LEN],
    };
    let tag = r.array("header tag")?;
    Ok(Tail {
        content_type,
        frame_length,
        commitment,
        body_len,
        header_iv,
        tag,
    })
}

/// Writes a framed header body (everything the header tag authenticates).
/// `serialized_context` is the stored context, already serialized.
pub(crate) fn write_body(
    out: &mut Vec<u8>,
    suite: AlgorithmSuite,
    message_id: &MessageId,
    serialized_context: &[u8],
    edks: &[EncryptedDataKey],
    frame_length: u32,
    commitment: Option<&[u8; COMMIT_KEY_LEN]>,
) -> Result<(), FormatError> {
    let version = suite.message_format();
    match version {
        MessageFormatVersion::V1 => out.extend_from_slice(&[1, V1_TYPE]),
        MessageFormatVersion::V2 => out.push(2),
    }
    out.extend_from_slice(&suite.id().to_be_bytes());
    out.extend_from_slice(message_id.as_bytes());
    super::reader::put_short_bytes(out, serialized_context, "serialized encryption context")?;
    let count = u16::try_from(edks.len()).map_err(|_| FormatError::TooLong {
        field: "encrypted data key count",
        actual: edks.len(),
        limit: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&count.to_be_bytes());
    for edk in edks {
        edk.serialize_into(out)?;
    }
    out.push(2); // framed
    if version == MessageFormatVersion::V1 {
        out.extend_from_slice(&[0, 0, 0, 0, IV_LEN as u8]);
    }
    out.extend_from_slice(&frame_length.to_be_bytes());
    if let Some(commitment) = commitment {
        out.extend_from_slice(commitment);
    }
    Ok(())
}

/// Upper bound of the header size, for sizing the output buffer once.
pub(crate) fn max_len(serialized_context_len: usize, edks: &[EncryptedDataKey]) -> usize {
    let edks: usize = edks.iter().map(EncryptedDataKey::serialized_len).sum();
    // version+type+suite+id(32)+ec len+count+content+reserved+ivlen+frame+commit+iv+tag
    1 + 1
        + 2
        + 32
        + 2
        + serialized_context_len
        + 2
        + edks
        + 1
        + 5
        + 4
        + COMMIT_KEY_LEN
        + IV_LEN
        + TAG_LEN
}
