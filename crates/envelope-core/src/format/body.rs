//! Body framing: frame layout, sequence numbers, IVs and per-frame AAD.

use super::reader::Reader;
use crate::crypto::aead::{IV_LEN, TAG_LEN};
use crate::error::FormatError;

/// Marks the final frame in place of a sequence number.
pub(crate) const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// The most frames a message can have.
/// The largest frame length the official SDKs write or read: 2^31 - 1.
/// A header claiming more is refused before anything is allocated for it.
pub const MAX_FRAME_LENGTH: u32 = i32::MAX as u32;
pub(crate) const MAX_FRAMES: u64 = 0xFFFF_FFFF;

/// Which AAD label a block of ciphertext uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BlockKind {
    Frame,
    FinalFrame,
    SingleBlock,
}

impl BlockKind {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Frame => b"AWSKMSEncryptionClient Frame",
            Self::FinalFrame => b"AWSKMSEncryptionClient Final Frame",
            Self::SingleBlock => b"AWSKMSEncryptionClient Single Block",
        }
    }
}

/// The per-frame AAD, built on the stack: message id ‖ label ‖ seq ‖ length.
pub(crate) struct BodyAad {
    buf: [u8; 32 + 35 + 4 + 8],
    len: usize,
}

impl BodyAad {
    pub(crate) fn new(
        message_id: &[u8],
        kind: BlockKind,
        sequence: u32,
        plaintext_len: u64,
    ) -> Self {
        let mut buf = [0u8; 32 + 35 + 4 + 8];
        let mut len = 0;
        for part in [
            message_id,
            kind.label(),
            &sequence.to_be_bytes()[..],
            &plaintext_len.to_be_bytes()[..],
        ] {
            buf[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        Self { buf, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The IV of frame `sequence`: eight zero bytes then the sequence number.
pub(crate) fn frame_iv(sequence: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[8..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// One block of ciphertext borrowed from the input.
pub(crate) struct Block<'a> {
    pub(crate) kind: BlockKind,
    pub(crate) sequence: u32,
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) ciphertext: &'a [u8],
    pub(crate) tag: [u8; TAG_LEN],
}

/// Reads the sequence number and IV of a frame that must be a regular
/// (not final) frame with sequence number `expected`.
pub(crate) fn read_regular_frame_head(
    r: &mut Reader<'_>,
    expected: u32,
) -> Result<(u32, [u8; IV_LEN]), FormatError> {
    let sequence = r.u32("frame sequence number")?;
    if sequence == FINAL_FRAME_MARKER {
        return Err(FormatError::InvalidField {
            field: "frame",
            reason: "expected a regular frame, found the final frame",
        });
    }
    if sequence != expected {
        return Err(FormatError::FrameOutOfOrder {
            expected,
            found: sequence,
        });
    }
    Ok((sequence, r.array("frame IV")?))
}

/// Reads the next frame, checking its sequence number and length.
pub(crate) fn read_frame<'a>(
    r: &mut Reader<'a>,
    frame_length: u32,
    expected: u32,
) -> Result<Block<'a>, FormatError> {
    let first = r.u32("frame sequence number")?;
    let (kind, sequence) = if first == FINAL_FRAME_MARKER {
        (BlockKind::FinalFrame, r.u32("final frame sequence number")?)
    } else {
        (BlockKind::Frame, first)
    };
    if sequence != expected {
        return Err(FormatError::FrameOutOfOrder {
            expected,
            found: sequence,
        });
    }
    let iv = r.array("frame IV")?;
    let len = match kind {
        BlockKind::FinalFrame => {
            let len = r.u32("final frame content length")?;
            if len > frame_length {
                return Err(FormatError::TooLong {
                    field: "final frame content",
                    actual: len as usize,
                    limit: frame_length as usize,
                });
            }
            len
        }
        _ => frame_length,
    };
    let ciphertext = r.bytes(len as usize, "frame ciphertext")?;
    let tag = r.array("frame tag")?;
    Ok(Block {
        kind,
        sequence,
        iv,
        ciphertext,
        tag,
    })
}

/// Reads the body of a non-framed message.
pub(crate) fn read_single_block<'a>(r: &mut Reader<'a>) -> Result<Block<'a>, FormatError> {
    let iv = r.array("body IV")?;
    let len = r.u64("body content length")?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= r.remaining())
        .ok_or(FormatError::Truncated {
            field: "body ciphertext",
            needed: usize::try_from(len)
                .unwrap_or(usize::MAX)
                .saturating_sub(r.remaining()),
        })?;
    let ciphertext = r.bytes(len, "body ciphertext")?;
    let tag = r.array("body tag")?;
    Ok(Block {
        kind: BlockKind::SingleBlock,
        sequence: 1,
        iv,
        ciphertext,
        tag,
    })
}
