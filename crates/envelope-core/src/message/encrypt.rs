//! Writes one message: header, frames and footer, into one buffer sized once.

use super::encoder::{BodyEncoder, FINAL_FRAME_EXTRA, FRAME_OVERHEAD};
use crate::error::{Error, PolicyError};
use crate::format::body::MAX_FRAMES;
use crate::format::header;
use crate::materials::EncryptionMaterials;

/// Number of frames for `len` bytes: every full frame is a regular frame,
/// and the final frame holds the rest, which is empty when `len` is a
/// multiple of the frame length (as the official Python, Java and C SDKs
/// write it; see [`BodyEncoder::frame`]).
pub(crate) fn frame_count(len: u64, frame_length: u32) -> Result<u64, PolicyError> {
    let frames = len / u64::from(frame_length) + 1;
    if frames > MAX_FRAMES {
        return Err(PolicyError::TooManyFrames(len));
    }
    Ok(frames)
}

/// Encrypts `plaintext` under `materials` into a complete message.
pub(crate) fn encrypt(
    materials: &EncryptionMaterials,
    plaintext: &[u8],
    frame_length: u32,
    max_edks: Option<usize>,
) -> Result<Vec<u8>, Error> {
    super::encoder::check_frame_length(frame_length)?;
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
    let mut chunks = plaintext.chunks_exact(frame_length as usize);
    for chunk in chunks.by_ref() {
        encoder.frame(&mut out, chunk, false)?;
    }
    encoder.frame(&mut out, chunks.remainder(), true)?;
    encoder.finish(&mut out, materials)?;
    Ok(out)
}
