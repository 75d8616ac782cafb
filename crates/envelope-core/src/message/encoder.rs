//! Sans-I/O message writing: the header, frame and footer primitives, and
//! [`BodyEncoder`], which drives them one frame at a time. Both the
//! in-memory path (`encrypt`) and the streaming writers sit on top of this
//! module; it imports neither.

use crate::crypto::aead::IV_LEN;
use crate::crypto::kdf::{self, MessageKeys};
use crate::crypto::sign::Digester;
use crate::error::{Error, FormatError, PolicyError};
use crate::format::body::{frame_iv, BlockKind, BodyAad, FINAL_FRAME_MARKER, MAX_FRAMES};
use crate::format::header::{self, MessageId};
use crate::materials::EncryptionMaterials;
use crate::suite::MessageFormatVersion;

use crate::format::body::MAX_FRAME_LENGTH;

/// Checks the configured frame length.
pub(crate) fn check_frame_length(frame_length: u32) -> Result<(), PolicyError> {
    if frame_length == 0 || frame_length > MAX_FRAME_LENGTH {
        return Err(PolicyError::FrameLength(u64::from(frame_length)));
    }
    Ok(())
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

/// Per-frame overhead of a regular frame (sequence, IV, tag).
pub(crate) const FRAME_OVERHEAD: usize = 4 + 12 + 16;
/// Extra overhead of the final frame (marker, content length).
pub(crate) const FINAL_FRAME_EXTRA: usize = 4 + 4;

pub(crate) struct BodyEncoder {
    keys: MessageKeys,
    message_id: MessageId,
    frame_length: u32,
    next_sequence: u64,
    digester: Option<Digester>,
}

impl BodyEncoder {
    /// Checks the configuration, writes the header to `out` and returns the
    /// encoder for the frames.
    pub(crate) fn start(
        out: &mut Vec<u8>,
        materials: &EncryptionMaterials,
        frame_length: u32,
        max_edks: Option<usize>,
    ) -> Result<Self, Error> {
        check_frame_length(frame_length)?;
        check_edk_count(materials, max_edks)?;
        let start = out.len();
        let (message_id, keys) = write_header(out, materials, frame_length)?;
        let digester = materials.signing_key.as_ref().map(|key| {
            let mut digester = key.digester();
            digester.update(&out[start..]);
            digester
        });
        Ok(Self {
            keys,
            message_id,
            frame_length,
            next_sequence: 1,
            digester,
        })
    }

    /// Appends the frames for `chunk`: a regular frame, or with `is_final`
    /// the end of the body.
    ///
    /// A final chunk of exactly one frame length is written as a regular
    /// frame followed by an empty final frame. That is what the official
    /// Python, Java and C SDKs write, and the Python 3.x line (which
    /// `aws-encryption-cli` pins) rejects a final frame whose content is a
    /// full frame length, though the format allows it.
    pub(crate) fn frame(
        &mut self,
        out: &mut Vec<u8>,
        chunk: &[u8],
        is_final: bool,
    ) -> Result<(), Error> {
        if is_final && !chunk.is_empty() && chunk.len() == self.frame_length as usize {
            self.seal(out, chunk, false)?;
            return self.seal(out, &[], true);
        }
        self.seal(out, chunk, is_final)
    }

    /// Appends exactly one frame.
    fn seal(&mut self, out: &mut Vec<u8>, chunk: &[u8], is_final: bool) -> Result<(), Error> {
        if self.next_sequence > MAX_FRAMES {
            return Err(PolicyError::TooManyFrames(
                self.next_sequence * u64::from(self.frame_length),
            )
            .into());
        }
        let start = out.len();
        // next_sequence <= MAX_FRAMES = u32::MAX, checked above.
        write_frame(
            out,
            &self.keys,
            &self.message_id,
            self.next_sequence as u32,
            chunk,
            is_final,
        )?;
        self.next_sequence += 1;
        if let Some(digester) = &mut self.digester {
            digester.update(&out[start..]);
        }
        Ok(())
    }

    /// Appends the footer (signed suites only).
    pub(crate) fn finish(
        self,
        out: &mut Vec<u8>,
        materials: &EncryptionMaterials,
    ) -> Result<(), Error> {
        if let (Some(digester), Some(key)) = (self.digester, &materials.signing_key) {
            let signature = key.sign(digester)?;
            write_footer(out, &signature)?;
        }
        Ok(())
    }
}
