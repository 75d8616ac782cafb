//! `EncryptingWriter`: a `std::io::Write` that emits a message frame by frame.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::io_error;
use crate::error::{Error, FormatError};
use crate::materials::EncryptionMaterials;
use crate::message::encoder::BodyEncoder;

/// Sealed frames are handed to the inner writer in batches of about this
/// many bytes: with the default 4 KiB frames, a writer without its own
/// buffer (a `File`, a socket) would otherwise see one system call per
/// frame. Not larger, because the batch must stay in L1 with the frame
/// being sealed: at 64 KiB, 4 KiB-frame encryption fell from 70 % to 63 % of
/// raw GCM (`cargo bench --bench stream`).
const WRITE_BATCH: usize = 16 * 1024;

/// Encrypts everything written to it into one message written to `W`.
///
/// Call [`EncryptingWriter::finish`] at the end: it writes the final frame
/// and the footer. A writer dropped without `finish` leaves an incomplete
/// message, which every decryptor rejects.
pub struct EncryptingWriter<W: Write> {
    inner: W,
    materials: Arc<EncryptionMaterials>,
    encoder: Option<BodyEncoder>,
    frame_length: usize,
    pending: Zeroizing<Vec<u8>>,
    out: Vec<u8>,
    declared_length: Option<u64>,
    written: u64,
}

impl<W: Write> EncryptingWriter<W> {
    pub(crate) fn new(
        mut inner: W,
        materials: Arc<EncryptionMaterials>,
        frame_length: u32,
        max_edks: Option<usize>,
        declared_length: Option<u64>,
    ) -> Result<Self, Error> {
        // A batch, plus the frame that completes it.
        let mut out = Vec::with_capacity(WRITE_BATCH + frame_length as usize + 64);
        let encoder = BodyEncoder::start(&mut out, &materials, frame_length, max_edks)?;
        inner
            .write_all(&out)
            .map_err(|e| Error::Io(e.to_string()))?;
        out.clear();
        Ok(Self {
            inner,
            materials,
            encoder: Some(encoder),
            frame_length: frame_length as usize,
            pending: Zeroizing::new(Vec::with_capacity(frame_length as usize)),
            out,
            declared_length,
            written: 0,
        })
    }

    fn emit(&mut self, chunk: Option<&[u8]>, is_final: bool) -> Result<(), Error> {
        let encoder = self.encoder.as_mut().ok_or(FormatError::InvalidField {
            field: "stream",
            reason: "written to after finish",
        })?;
        let chunk = chunk.unwrap_or(&self.pending);
        encoder.frame(&mut self.out, chunk, is_final)?;
        if self.out.len() >= WRITE_BATCH {
            self.write_out()?;
        }
        Ok(())
    }

    /// Hands the sealed frames held so far to the inner writer.
    fn write_out(&mut self) -> Result<(), Error> {
        self.inner
            .write_all(&self.out)
            .map_err(|e| Error::Io(e.to_string()))?;
        self.out.clear();
        Ok(())
    }

    /// Writes the final frame and the footer, flushes, and returns the
    /// inner writer.
    pub fn finish(mut self) -> Result<W, Error> {
        if let Some(declared) = self.declared_length {
            if declared != self.written {
                return Err(Error::Format(FormatError::InvalidField {
                    field: "plaintext length",
                    reason: "the stream ended before the declared length",
                }));
            }
        }
        self.emit(None, true)?;
        self.pending.clear();
        if let Some(encoder) = self.encoder.take() {
            encoder.finish(&mut self.out, &self.materials)?;
        }
        self.inner
            .write_all(&self.out)
            .map_err(|e| Error::Io(e.to_string()))?;
        self.inner.flush().map_err(|e| Error::Io(e.to_string()))?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let accepted = buf.len();
        self.written += accepted as u64;
        if self
            .declared_length
            .is_some_and(|declared| self.written > declared)
        {
            return Err(io_error(Error::Format(FormatError::InvalidField {
                field: "plaintext length",
                reason: "more plaintext was written than was declared",
            })));
        }
        while !buf.is_empty() {
            if self.pending.len() == self.frame_length {
                // More data follows, so the held frame is not the last.
                self.emit(None, false).map_err(io_error)?;
                self.pending.clear();
            }
            // A whole frame in the caller's buffer is sealed from there
            // (saving a copy) once more data is known to follow: more in
            // `buf`, or a declared length not yet reached. Otherwise it is
            // held, as it may be the final frame.
            let more_follows = buf.len() > self.frame_length
                || self
                    .declared_length
                    .is_some_and(|declared| declared > self.written);
            if self.pending.is_empty() && buf.len() >= self.frame_length && more_follows {
                let (frame, rest) = buf.split_at(self.frame_length);
                self.emit(Some(frame), false).map_err(io_error)?;
                buf = rest;
                continue;
            }
            let take = (self.frame_length - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
        }
        Ok(accepted)
    }

    /// Writes the sealed frames held so far, then flushes the inner
    /// writer. Plaintext of a frame not yet full stays held: a frame is
    /// sealed only once it is full or the stream is finished.
    fn flush(&mut self) -> io::Result<()> {
        self.write_out().map_err(io_error)?;
        self.inner.flush()
    }
}

impl<W: Write> fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("suite", &self.materials.suite)
            .field("frame_length", &self.frame_length)
            .field("written", &self.written)
            .finish()
    }
}
