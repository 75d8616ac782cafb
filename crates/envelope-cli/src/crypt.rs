//! One file through the streaming API. Memory stays bounded by the copy
//! buffer and a frame whatever the input size: plaintext is read and
//! written in [`CHUNK`]-byte pieces, never whole.

use std::io::{self, BufWriter, Read, Write};

use envelope_core::format::header::Header;
use envelope_core::stream::{stream_error, MAX_STREAMED_HEADER};
use envelope_core::{Client, EncryptionContext, ReleasePolicy};
use zeroize::Zeroizing;

use crate::args::Release;
use crate::atomic::Output;
use crate::plan::{Endpoint, Job};
use crate::progress::Progress;

/// Bytes per read and write: large enough that syscalls do not dominate,
/// small enough to leave the memory bound to the frame machinery.
const CHUNK: usize = 256 << 10;

/// Ciphertext held in memory by `--release verified` before it spills to a
/// temporary file (the plaintext is never buffered).
const VERIFIED_IN_MEMORY: usize = 4 << 20;

/// What a finished job reports for the metadata.
pub(crate) struct Done {
    pub(crate) header: Header,
    pub(crate) plaintext_length: u64,
}

/// Settings shared by every job of a run.
pub(crate) struct Crypt<'a> {
    pub(crate) client: &'a Client,
    pub(crate) runtime: &'a tokio::runtime::Runtime,
    pub(crate) progress: &'a Progress,
    pub(crate) max_edks: Option<usize>,
    /// Base64-decode the input first (aws-encryption-cli's `--decode`).
    pub(crate) base64_input: bool,
    /// Base64-encode the output (aws-encryption-cli's `--encode`).
    pub(crate) base64_output: bool,
}

/// A check of an authenticated header before any output is created, such
/// as aws-encryption-cli's required context or `--decrypt-unsigned`.
pub(crate) type HeaderCheck<'a> = &'a dyn Fn(&Header) -> Result<(), String>;

impl Crypt<'_> {
    /// Encrypts `job.input` into `job.output`, declaring the input's length
    /// when known (so a caching manager can account for the bytes, and a
    /// file that changes size while being read fails instead of producing
    /// a message of another length).
    pub(crate) fn encrypt(&self, job: &Job, context: &EncryptionContext) -> Result<Done, String> {
        let mut input = self.progress.wrap(self.open(&job.input)?);
        let output = Sink::create(&job.output, self.base64_output)?;
        let tap = HeaderTap::new(BufWriter::with_capacity(CHUNK, output), self.max_edks);
        // Base64 input has a length the encoder cannot know in advance.
        let declared = job.size.filter(|_| !self.base64_input);
        let mut writer = self
            .runtime
            .block_on(self.client.encrypting_writer(tap, context, declared))
            .map_err(|e| format!("encryption failed: {e}"))?;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf)
                .map_err(|e| format!("reading {}: {e}", job.input))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            writer
                .write_all(&buf[..n])
                .map_err(|e| match stream_error(&e) {
                    Some(inner) => format!("encryption failed: {inner}"),
                    None => e.to_string(),
                })?;
        }
        let tap = writer
            .finish()
            .map_err(|e| format!("encryption failed: {e}"))?;
        let (buffered, header) = tap.into_parts();
        let output = buffered.into_inner().map_err(|e| e.error().to_string())?;
        output.commit()?;
        let header = header.ok_or("encryption failed: the written header did not parse back")?;
        Ok(Done {
            header,
            plaintext_length: total,
        })
    }

    /// Decrypts `job.input` into `job.output` under `release`. The output
    /// is created only once the header has authenticated and passed
    /// `check` (and, for `verified`, once the whole message has verified).
    pub(crate) fn decrypt(
        &self,
        job: &Job,
        required: &EncryptionContext,
        release: Release,
        check: HeaderCheck<'_>,
    ) -> Result<Done, String> {
        let input = self.progress.wrap(self.open(&job.input)?);
        let policy = match release {
            Release::PerFrame => ReleasePolicy::PerFrame,
            Release::Verified => ReleasePolicy::VerifiedOnly {
                max_in_memory: VERIFIED_IN_MEMORY,
                spill_dir: Some(std::env::temp_dir()),
            },
        };
        let mut reader = self
            .runtime
            .block_on(self.client.decrypting_reader(input, required, policy))
            .map_err(|e| format!("decryption failed: {e}"))?;
        check(reader.header())?;
        let mut output = Sink::create(&job.output, self.base64_output)?;
        let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
        let mut total = 0u64;
        loop {
            let n = read_full(&mut reader, &mut buf).map_err(|e| match stream_error(&e) {
                Some(inner) => format!("decryption failed: {inner}"),
                None => format!("decryption failed: {e}"),
            })?;
            if n == 0 {
                break;
            }
            total += n as u64;
            output.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        }
        // The reader returned end of file: the message, signature included,
        // verified. Only now does the output get its name.
        output.commit()?;
        Ok(Done {
            header: reader.header().clone(),
            plaintext_length: total,
        })
    }
}

impl Crypt<'_> {
    fn open(&self, input: &Endpoint) -> Result<Box<dyn Read>, String> {
        let raw: Box<dyn Read> = match input {
            Endpoint::Std => Box::new(io::stdin().lock()),
            Endpoint::Path(path) => std::fs::File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read>)
                .map_err(|e| format!("reading {}: {e}", path.display()))?,
        };
        Ok(if self.base64_input {
            Box::new(base64::read::DecoderReader::new(
                SkipWhitespace(raw),
                &base64::engine::general_purpose::STANDARD,
            ))
        } else {
            raw
        })
    }
}

/// Base64 text with its line breaks and spaces removed, as the official
/// tool's `--decode` reads it.
struct SkipWhitespace<R>(R);

impl<R: Read> Read for SkipWhitespace<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut kept = 0;
            for i in 0..n {
                if !buf[i].is_ascii_whitespace() {
                    buf[kept] = buf[i];
                    kept += 1;
                }
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

/// A job's output, base64-encoded on the way when asked; committed (given
/// its name) only at the end, like [`Output`].
enum Sink {
    Raw(Output),
    Base64(Box<base64::write::EncoderWriter<'static, base64::engine::GeneralPurpose, Output>>),
}

impl Sink {
    fn create(target: &Endpoint, base64: bool) -> Result<Self, String> {
        let output = Output::create(target)?;
        Ok(if base64 {
            Self::Base64(Box::new(base64::write::EncoderWriter::new(
                output,
                &base64::engine::general_purpose::STANDARD,
            )))
        } else {
            Self::Raw(output)
        })
    }

    fn commit(self) -> Result<(), String> {
        match self {
            Self::Raw(output) => output.commit(),
            Self::Base64(mut encoder) => encoder
                .finish()
                .map_err(|e| format!("writing output: {e}"))?
                .commit(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Raw(output) => output.write(buf),
            Self::Base64(encoder) => encoder.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Raw(output) => output.flush(),
            Self::Base64(encoder) => encoder.flush(),
        }
    }
}

/// Reads until `buf` is full or the input ends. Filling the buffer turns
/// the decryptor's frame-sized reads into few large writes.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Passes writes through and parses the header out of the first bytes, so
/// the metadata can describe exactly what was written (suite, EDKs)
/// without the encryptor exposing its materials.
struct HeaderTap<W> {
    inner: W,
    captured: Vec<u8>,
    header: Option<Header>,
    /// Set once the header parsed, or once parsing is hopeless.
    done: bool,
    max_edks: Option<usize>,
}

impl<W: Write> HeaderTap<W> {
    fn new(inner: W, max_edks: Option<usize>) -> Self {
        Self {
            inner,
            captured: Vec::new(),
            header: None,
            done: false,
            max_edks,
        }
    }

    fn into_parts(self) -> (W, Option<Header>) {
        (self.inner, self.header)
    }

    fn observe(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        self.captured.extend_from_slice(bytes);
        match Header::parse_prefix(&self.captured, self.max_edks) {
            Ok((header, _)) => {
                self.header = Some(header);
                self.done = true;
            }
            Err(envelope_core::error::FormatError::Truncated { .. })
                if self.captured.len() <= MAX_STREAMED_HEADER => {}
            Err(_) => self.done = true,
        }
        if self.done {
            self.captured = Vec::new();
        }
    }
}

impl<W: Write> Write for HeaderTap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.observe(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tap_parses_a_header_written_in_pieces() -> Result<(), Box<dyn std::error::Error>> {
        let keyring = std::sync::Arc::new(envelope_core::RawAesKeyring::new("ns", "k", &[1; 32])?);
        let client = Client::builder().keyring(keyring).build()?;
        let context: EncryptionContext = [("a", "b")].into_iter().collect();
        let message = client.encrypt_blocking(b"hello", &context)?;
        let mut tap = HeaderTap::new(Vec::new(), None);
        for byte in &message {
            tap.write_all(std::slice::from_ref(byte))?;
        }
        let (written, header) = tap.into_parts();
        assert_eq!(written, message);
        let header = header.ok_or("no header")?;
        assert_eq!(header.encryption_context.get("a"), Some("b"));
        assert_eq!(header.encrypted_data_keys[0].provider_id, "ns");

        let mut tap = HeaderTap::new(Vec::new(), None);
        tap.write_all(&[9; 100])?;
        assert!(tap.into_parts().1.is_none(), "not a header: gives up");
        Ok(())
    }
}
