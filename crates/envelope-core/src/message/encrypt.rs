//! Writes one message: header, frames and footer, into one buffer sized once.

use super::encoder::{BodyEncoder, FINAL_FRAME_EXTRA, FRAME_OVERHEAD};
use crate::crypto::aead::IV_LEN;
use crate::crypto::kdf;
use crate::error::{Error, FormatError, PolicyError};
use crate::format::body::{frame_iv, BlockKind, BodyAad, FINAL_FRAME_MARKER, MAX_FRAMES};
use crate::format::header::{self, MessageId};
use crate::materials::EncryptionMaterials;
use crate::suite::MessageFormatVersion;

/// The largest frame length the official SDKs accept.
pub(crate) const MAX_FRAME_LENGTH: u32 = i32::MAX as u32;

/// Checks the configured frame length.
pub(crate) fn check_frame_length(frame_length: u32) -> Result<(), PolicyError> {
    if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
        return Err(PolicyError::FrameLength(u64::from(frame_length)));
    }
    Ok(())
}

/// Number of frames for `len` bytes: the last frame is the final one, even
/// when full (as the official Rust, .NET and Java SDKs write it).
pub(crate) fn frame_count(len: u64, frame_length: u32) -> Result<u64, PolicyError> {
    let frames = len.div_ceil(u64::from(frame_length)).max(1);
    if frames > MAX_FRAMES {
        return Err(PolicyError::TooManyFrames(len));
    }
    Ok(frames)
}

/// Checks the materials against the EDK limit before anything is written.
pub(crate) fn check_edk_count(
    materials: &EncryptionMaterials,
    max_edks: Option<usize>,
) -> Result<(), FormatError> {
    match max_edks {
        Some(max) if materials.encrypted_data_keys.len() > max => {
            Err(FormatError::TooManyEncryptedDataKeys {
                count: materials.encrypted_data_keys.len(),
                max,
            })
        }
        _ => Ok(()),
    }
}

/// Writes the header (body and tag) and returns the message keys.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    materials: &EncryptionMaterials,
    frame_length: u32,
) -> Result<(MessageId, kdf::MessageKeys), Error> {
    let suite = materials.suite;
    let data_key = materials
        .data_key
        .as_ref()
        .ok_or(PolicyError::InvalidMaterials("no data key"))?;
    let message_id = MessageId::random(suite.message_format())?;
    let keys = kdf::derive(suite, data_key, message_id.as_bytes())?;
    let contexts = materials.serialized_contexts()?;
    let start = out.len();
    header::write_body(
        out,
        suite,
        &message_id,
        &contexts.stored,
        &materials.encrypted_data_keys,
        frame_length,
        keys.commitment.as_ref(),
    )?;
    let iv = [0u8; IV_LEN];
    let tag = if contexts.authenticated_only.is_empty() {
        keys.content.seal_in_place(iv, &out[start..], &mut [])?
    } else {
        let mut aad = out[start..].to_vec();
        aad.extend_from_slice(&contexts.authenticated_only);
        keys.content.seal_in_place(iv, &aad, &mut [])?
    };
    if suite.message_format() == MessageFormatVersion::V1 {
        out.extend_from_slice(&iv);
    }
    out.extend_from_slice(&tag);
    Ok((message_id, keys))
}

/// Appends one frame: its header fields, the sealed chunk and the tag.
pub(crate) fn write_frame(
    out: &mut Vec<u8>,
    keys: &kdf::MessageKeys,
    message_id: &MessageId,
    sequence: u32,
    chunk: &[u8],
    is_final: bool,
) -> Result<(), Error> {
    let kind = if is_final {
        out.extend_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
        BlockKind::FinalFrame
    } else {
        BlockKind::Frame
    };
    out.extend_from_slice(&sequence.to_be_bytes());
    let iv = frame_iv(sequence);
    out.extend_from_slice(&iv);
    if is_final {
        // Bounded by the frame length, which is at most i32::MAX.
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
    }
    let start = out.len();
    out.extend_from_slice(chunk);
    let aad = BodyAad::new(message_id.as_bytes(), kind, sequence, chunk.len() as u64);
    let tag = keys
        .content
        .seal_in_place(iv, aad.as_bytes(), &mut out[start..])?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// Appends the footer: the DER signature over everything before it.
pub(crate) fn write_footer(out: &mut Vec<u8>, signature: &[u8]) -> Result<(), FormatError> {
    crate::format::reader::put_short_bytes(out, signature, "footer signature")
}

/// Encrypts `plaintext` under `materials` into a complete message.
pub(crate) fn encrypt(
    materials: &EncryptionMaterials,
    plaintext: &[u8],
    frame_length: u32,
    max_edks: Option<usize>,
) -> Result<Vec<u8>, Error> {
    check_frame_length(frame_length)?;
    let frames = frame_count(plaintext.len() as u64, frame_length)?;
    let contexts = materials.serialized_contexts()?;
    let capacity = header::max_len(contexts.stored.len(), &materials.encrypted_data_keys)
        + plaintext.len()
        + frames as usize * FRAME_OVERHEAD
        + FINAL_FRAME_EXTRA
        + 2
        + 104;
    let mut out = Vec::with_capacity(capacity);
    let mut encoder = BodyEncoder::start(&mut out, materials, frame_length, max_edks)?;
    let mut chunks = plaintext.chunks(frame_length as usize);
    for index in 0..frames {
        let chunk = chunks.next().unwrap_or(&[]);
        encoder.frame(&mut out, chunk, index + 1 == frames)?;
    }
    encoder.finish(&mut out, materials)?;
    Ok(out)
}
