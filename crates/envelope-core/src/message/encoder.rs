//! Sans-I/O message writer: header, then frames one at a time, then the
//! footer. Both the in-memory and the streaming APIs drive this.

use crate::crypto::kdf::MessageKeys;
use crate::crypto::sign::Digester;
use crate::error::{Error, PolicyError};
use crate::format::body::MAX_FRAMES;
use crate::format::header::MessageId;
use crate::materials::EncryptionMaterials;

use super::encrypt::{
    check_edk_count, check_frame_length, write_footer, write_frame, write_header,
};

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

    /// Appends one frame of `chunk` (a full frame unless `is_final`).
    pub(crate) fn frame(
        &mut self,
        out: &mut Vec<u8>,
        chunk: &[u8],
        is_final: bool,
    ) -> Result<(), Error> {
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
