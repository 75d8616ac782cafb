//! `DecryptingReader`: a `std::io::Read` over a message that releases
//! plaintext as the release policy allows.

use std::fmt;
use std::io::{self, Read, Seek, Write};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::{io_error, ReleasePolicy, MAX_STREAMED_HEADER, MAX_STREAMED_NON_FRAMED_BODY};
use crate::crypto::aead::{IV_LEN, TAG_LEN};
use crate::error::{Error, FormatError};
use crate::format::body::FINAL_FRAME_MARKER;
use crate::format::header::{Header, ParsedHeader};
use crate::format::EncryptionContext;
use crate::materials::DecryptionMaterials;
use crate::message::decoder::{BodyDecoder, Step};

const READ_CHUNK: usize = 256 * 1024;
/// The most the input buffer grows ahead of the bytes received, per read.
const MAX_GROWTH: usize = 4 << 20;

/// Where message bytes come from: the caller's reader, or the buffered
/// ciphertext of a message that has already verified once.
enum Source<R> {
    Direct(R),
    Memory(io::Cursor<Vec<u8>>),
    File(std::fs::File),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Direct(r) => r.read(buf),
            Self::Memory(r) => r.read(buf),
            Self::File(r) => r.read(buf),
        }
    }
}

/// Buffered input: `buf[start..end]` is read but not yet decoded. The
/// buffer keeps its length between reads, so refills neither zero memory
/// nor shift more than the partial block at its end.
struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Input {
    fn new(buf: Vec<u8>, start: usize) -> Self {
        let end = buf.len();
        Self { buf, start, end }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Makes `bytes` the whole pending input (the buffer must hold none).
    fn replace_pending(&mut self, bytes: &[u8]) {
        if self.buf.len() < bytes.len() {
            self.buf.resize(bytes.len(), 0);
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.start = 0;
        self.end = bytes.len();
    }

    /// Appends `bytes` to the pending input.
    fn append(&mut self, bytes: &[u8]) {
        if self.buf.len() < self.end + bytes.len() {
            self.buf.resize(self.end + bytes.len(), 0);
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Reads at least once more from `source`, making room for `at_least`
    /// more bytes; false at end of input.
    fn fill<R: Read>(&mut self, source: &mut R, at_least: usize) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // Grows with what arrives, not with what the header claims: a frame
        // length of 2 GiB followed by one byte costs one step, not 2 GiB.
        let want = self.end + at_least.clamp(READ_CHUNK, MAX_GROWTH);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        loop {
            match source.read(&mut self.buf[self.end..]) {
                Ok(read) => {
                    self.end += read;
                    return Ok(read > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads until `dst` is full or the source ends. The count read comes back
/// with any error, so that the bytes already read are not lost.
fn read_fully<R: Read>(source: &mut R, dst: &mut [u8]) -> (usize, io::Result<()>) {
    let mut filled = 0;
    while filled < dst.len() {
        match source.read(&mut dst[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(()))
}

/// Reads a whole header from `source`, growing the buffer as the parser
/// asks; re-parses only once the buffer has doubled (or the input ended).
pub(crate) fn read_header<R: Read>(
    source: &mut R,
    max_edks: Option<usize>,
) -> Result<(Vec<u8>, ParsedHeader), Error> {
    let mut input = Input::new(Vec::new(), 0);
    let mut parser = crate::format::header::HeaderParser::default();
    loop {
        match super::parse_buffered_header(&mut parser, input.pending(), max_edks) {
            Ok(parsed) => {
                input.buf.truncate(input.end);
                return Ok((input.buf, parsed));
            }
            Err(FormatError::Truncated { field, needed }) => {
                if input.end + needed > MAX_STREAMED_HEADER {
                    return Err(FormatError::TooLong {
                        field: "message header",
                        actual: input.end + needed,
                        limit: MAX_STREAMED_HEADER,
                    }
                    .into());
                }
                let parsed_len = input.pending().len();
                let target = super::header_parse_target(input.end, needed);
                while input.end < target {
                    if !input
                        .fill(source, target - input.end)
                        .map_err(|e| Error::Io(e.to_string()))?
                    {
                        break;
                    }
                }
                if input.pending().len() < parsed_len + needed {
                    return Err(FormatError::Truncated { field, needed }.into());
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Decrypts a message read from `R`. See [`ReleasePolicy`].
pub struct DecryptingReader<R: Read> {
    source: Source<R>,
    input: Input,
    decoder: BodyDecoder,
    plaintext: Zeroizing<Vec<u8>>,
    released: usize,
    finished: bool,
    failed: bool,
    header: Header,
    materials: Arc<DecryptionMaterials>,
}

impl<R: Read> DecryptingReader<R> {
    /// `buffered` holds the header (parsed into `parsed`) and maybe more.
    pub(crate) fn new(
        source: R,
        buffered: Vec<u8>,
        parsed: ParsedHeader,
        materials: Arc<DecryptionMaterials>,
        policy: &ReleasePolicy,
    ) -> Result<Self, Error> {
        let decoder =
            BodyDecoder::new(&buffered, &parsed, &materials, MAX_STREAMED_NON_FRAMED_BODY)?;
        let mut reader = Self {
            source: Source::Direct(source),
            input: Input::new(buffered, parsed.total_len),
            decoder,
            plaintext: Zeroizing::new(Vec::new()),
            released: 0,
            finished: false,
            failed: false,
            header: parsed.header.clone(),
            materials,
        };
        if let ReleasePolicy::VerifiedOnly {
            max_in_memory,
            spill_dir,
        } = policy
        {
            reader.verify_first(parsed, *max_in_memory, spill_dir.as_deref())?;
        }
        Ok(reader)
    }

    /// Authenticates the whole message, keeping its ciphertext, then
    /// rewinds to decrypt it again from the kept copy.
    fn verify_first(
        &mut self,
        parsed: ParsedHeader,
        max_in_memory: usize,
        spill_dir: Option<&std::path::Path>,
    ) -> Result<(), Error> {
        let io = |e: io::Error| Error::Io(e.to_string());
        let header_bytes = self.input.buf[..parsed.total_len].to_vec();
        let mut kept: Vec<u8> = header_bytes.clone();
        let mut file: Option<std::fs::File> = None;
        let keep = |bytes: &[u8],
                    kept: &mut Vec<u8>,
                    file: &mut Option<std::fs::File>|
         -> Result<(), Error> {
            if let Some(file) = file {
                return file.write_all(bytes).map_err(io);
            }
            if kept.len() + bytes.len() <= max_in_memory {
                kept.extend_from_slice(bytes);
                return Ok(());
            }
            let dir = spill_dir.ok_or(FormatError::TooLong {
                field: "message held for verification",
                actual: kept.len() + bytes.len(),
                limit: max_in_memory,
            })?;
            let mut spill = tempfile::tempfile_in(dir).map_err(io)?;
            spill.write_all(kept).map_err(io)?;
            spill.write_all(bytes).map_err(io)?;
            kept.clear();
            *file = Some(spill);
            Ok(())
        };
        // Pass one: authenticate everything, discarding the plaintext.
        loop {
            if self.decoder.is_done() {
                if !self.input.pending().is_empty()
                    || self.input.fill(&mut self.source, 1).map_err(io)?
                {
                    return Err(FormatError::TrailingBytes(self.input.pending().len()).into());
                }
                break;
            }
            match self
                .decoder
                .step(self.input.pending(), &mut self.plaintext)?
            {
                Step::NeedMore(truncated) => {
                    let needed = match &truncated {
                        FormatError::Truncated { needed, .. } => *needed,
                        _ => 1,
                    };
                    if !self.input.fill(&mut self.source, needed).map_err(io)? {
                        return Err(truncated.into());
                    }
                }
                Step::Block { consumed, .. } | Step::Done { consumed } => {
                    keep(&self.input.pending()[..consumed], &mut kept, &mut file)?;
                    self.input.consume(consumed);
                    self.plaintext.clear();
                }
            }
        }
        // Pass two reads the kept copy, which has verified.
        let source = match file {
            Some(mut file) => {
                file.rewind().map_err(io)?;
                Source::File(file)
            }
            None => Source::Memory(io::Cursor::new(kept)),
        };
        let mut source = source;
        let mut skip = vec![0u8; header_bytes.len()];
        source.read_exact(&mut skip).map_err(io)?;
        self.decoder = BodyDecoder::new(
            &header_bytes,
            &parsed,
            &self.materials,
            MAX_STREAMED_NON_FRAMED_BODY,
        )?;
        self.source = source;
        self.input = Input::new(Vec::new(), 0);
        self.finished = false;
        Ok(())
    }

    /// Decodes the next block into `plaintext`; true once the message is
    /// complete, verified and followed by nothing.
    fn advance(&mut self) -> Result<bool, Error> {
        loop {
            if self.decoder.is_done() {
                if !self.input.pending().is_empty()
                    || self
                        .input
                        .fill(&mut self.source, 1)
                        .map_err(|e| Error::Io(e.to_string()))?
                {
                    return Err(FormatError::TrailingBytes(self.input.pending().len()).into());
                }
                self.finished = true;
                return Ok(true);
            }
            match self
                .decoder
                .step(self.input.pending(), &mut self.plaintext)?
            {
                Step::NeedMore(truncated) => {
                    let needed = match &truncated {
                        FormatError::Truncated { needed, .. } => *needed,
                        _ => 1,
                    };
                    if !self
                        .input
                        .fill(&mut self.source, needed)
                        .map_err(|e| Error::Io(e.to_string()))?
                    {
                        return Err(truncated.into());
                    }
                }
                Step::Block {
                    consumed, is_final, ..
                } => {
                    self.input.consume(consumed);
                    // The last frame waits for the end (and signature) check.
                    if !is_final {
                        return Ok(false);
                    }
                }
                Step::Done { consumed } => self.input.consume(consumed),
            }
        }
    }

    /// Reads message bytes straight into `buf` and decrypts the whole
    /// regular frames there, each moved down over the frame headers before
    /// it as it is decrypted: this saves the copy through the internal
    /// buffer, which cost about a third of streaming decrypt time. Taken
    /// when regular frames come next, less than one frame is buffered, and
    /// `buf` holds a whole frame. Each frame is still released only once its
    /// own tag verifies. `Ok(None)`: nothing released; the bytes read are
    /// left to the buffered path (the final frame, a truncated stream, a
    /// `buf` too small to be worth it).
    fn read_direct(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        let Some(frame_len) = self.decoder.regular_frame_len() else {
            return Ok(None);
        };
        let carried = self.input.pending().len();
        // A small `buf` would turn each read into a read of the source (a
        // system call for files and sockets); the buffered path reads
        // `READ_CHUNK` at a time instead.
        if buf.len() < frame_len.max(READ_CHUNK / 4) || carried >= frame_len {
            return Ok(None);
        }
        buf[..carried].copy_from_slice(self.input.pending());
        self.input.consume(carried);
        let mut filled = carried;
        while filled < frame_len {
            match self.source.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.input.replace_pending(&buf[..filled]);
                    return Err(Error::Io(e.to_string()));
                }
            }
        }
        let (mut pos, mut released) = (0, 0);
        while filled - pos >= frame_len && buf[pos..pos + 4] != FINAL_FRAME_MARKER.to_be_bytes() {
            released += self
                .decoder
                .open_frame_within(&mut buf[released..pos + frame_len], pos - released)?;
            pos += frame_len;
        }
        self.input.replace_pending(&buf[pos..filled]);
        Ok((released > 0).then_some(released))
    }

    /// Like [`Self::read_direct`], for a `buf` that holds a frame's
    /// plaintext but not its whole wire form (a 1 MiB read of 1 MiB frames):
    /// the frame's sequence number, IV and tag are read aside, and its
    /// ciphertext straight into `buf`, where it is decrypted in place. This
    /// saves two passes over the frame (into the internal buffer, and out
    /// of it). `Ok(None)`: nothing released, and every byte read is left
    /// to the buffered path (the final frame, a truncated stream).
    fn read_split(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Error> {
        const HEAD: usize = 4 + IV_LEN;
        let Some(frame_len) = self.decoder.regular_frame_len() else {
            return Ok(None);
        };
        let data_len = frame_len - HEAD - TAG_LEN;
        if buf.len() < data_len.max(READ_CHUNK / 4) || self.input.pending().len() >= frame_len {
            return Ok(None);
        }
        // The head first, to tell a regular frame from the final one before
        // anything leaves the input buffer.
        let carried = self.input.pending().len();
        if carried < HEAD {
            let mut head = [0u8; HEAD];
            let (read, result) = read_fully(&mut self.source, &mut head[..HEAD - carried]);
            self.input.append(&head[..read]);
            result.map_err(|e| Error::Io(e.to_string()))?;
            if carried + read < HEAD {
                return Ok(None);
            }
        }
        let pending = self.input.pending();
        if pending[..4] == FINAL_FRAME_MARKER.to_be_bytes() {
            return Ok(None);
        }
        let mut head = [0u8; HEAD];
        head.copy_from_slice(&pending[..HEAD]);
        let carried_data = (pending.len() - HEAD).min(data_len);
        buf[..carried_data].copy_from_slice(&pending[HEAD..HEAD + carried_data]);
        let mut tag = [0u8; TAG_LEN];
        // Less than a whole tag: the input holds less than a whole frame.
        let carried_tag = pending.len() - HEAD - carried_data;
        tag[..carried_tag].copy_from_slice(&pending[HEAD + carried_data..]);
        let all = pending.len();
        self.input.consume(all);

        let (read, mut result) = read_fully(&mut self.source, &mut buf[carried_data..data_len]);
        let data_read = carried_data + read;
        let mut tag_read = carried_tag;
        if result.is_ok() && data_read == data_len {
            let (read, tag_result) = read_fully(&mut self.source, &mut tag[carried_tag..]);
            tag_read += read;
            result = tag_result;
        }
        if result.is_err() || tag_read < TAG_LEN {
            // Everything read goes back to the input: a truncated stream is
            // then reported by the buffered path, and after an I/O error
            // nothing is lost.
            let mut back = Vec::with_capacity(HEAD + data_read + tag_read);
            back.extend_from_slice(&head);
            back.extend_from_slice(&buf[..data_read]);
            back.extend_from_slice(&tag[..tag_read]);
            self.input.replace_pending(&back);
            result.map_err(|e| Error::Io(e.to_string()))?;
            return Ok(None);
        }
        self.decoder
            .open_frame_split(&head, &mut buf[..data_len], &tag)
            .map(Some)
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The encryption context: stored pairs plus authenticated reproduced ones.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.materials.encryption_context
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io_error(Error::Io(
                "the message already failed to decrypt".into(),
            )));
        }
        loop {
            if self.released < self.plaintext.len() {
                let n = buf.len().min(self.plaintext.len() - self.released);
                buf[..n].copy_from_slice(&self.plaintext[self.released..self.released + n]);
                self.released += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            self.plaintext.clear();
            self.released = 0;
            // Regular frames that fit go straight into the caller's buffer,
            // as many as are already read in: one call per small frame cost
            // more than the frame's decryption. Each frame is released only
            // once its own tag has verified. Anything else (more input
            // needed, the final frame, the footer) goes through `advance`.
            let mut written = 0;
            while written < buf.len() {
                match self
                    .decoder
                    .step_into(self.input.pending(), &mut buf[written..])
                {
                    Ok(Some(Step::Block {
                        consumed,
                        written: n,
                        ..
                    })) => {
                        self.input.consume(consumed);
                        written += n;
                    }
                    Ok(_) => break,
                    Err(error) => {
                        self.failed = true;
                        return Err(io_error(error));
                    }
                }
            }
            if written > 0 {
                return Ok(written);
            }
            let direct = match self.read_direct(buf) {
                Ok(None) => self.read_split(buf),
                other => other,
            };
            match direct {
                Ok(Some(released)) => return Ok(released),
                Ok(None) => {}
                Err(error) => {
                    self.failed = true;
                    return Err(io_error(error));
                }
            }
            if let Err(error) = self.advance() {
                self.failed = true;
                self.plaintext.clear();
                return Err(io_error(error));
            }
        }
    }
}

impl<R: Read> fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("suite", &self.header.suite)
            .field("finished", &self.finished)
            .finish()
    }
}
