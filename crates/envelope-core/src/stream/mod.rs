//! Streaming encryption and decryption, frame by frame, in memory bounded
//! by the frame length whatever the message size.
//!
//! - [`EncryptingWriter`] is a `std::io::Write`: plaintext in, message out.
//! - [`DecryptingReader`] is a `std::io::Read`: message in, plaintext out.
//! - [`crate::Client::encrypt_stream`] and [`crate::Client::decrypt_stream`]
//!   pump a tokio `AsyncRead` into an `AsyncWrite`.
//!
//! # Release policy
//! Every frame is authenticated before any of its plaintext is released.
//! What a *frame* tag cannot prove is that the message goes on: a stream
//! cut at a frame boundary, or (for signed suites) a message whose footer
//! signature is wrong, is only detected at the end. [`ReleasePolicy`]
//! chooses between:
//! - [`ReleasePolicy::PerFrame`] (default, as the official SDKs do): each
//!   frame is released once it verifies; the last frame is held back until
//!   the end of the message (and the signature) verifies. Consumers must
//!   treat earlier output as provisional until the reader returns end of
//!   file without an error (the CLI writes to a temporary file and renames
//!   it only then).
//! - [`ReleasePolicy::VerifiedOnly`]: nothing is released until the whole
//!   message, signature included, has verified. The ciphertext (never the
//!   plaintext) is buffered, in memory up to a limit and then in a
//!   temporary file if a directory is given, and decrypted a second time.

pub(crate) mod async_io;
pub(crate) mod reader;
mod writer;

use std::path::PathBuf;

pub use reader::DecryptingReader;
pub use writer::EncryptingWriter;

/// When a streaming decryptor releases plaintext. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// Release each frame once it authenticates (the last one once the
    /// message end and signature verify).
    #[default]
    PerFrame,
    /// Release nothing until the whole message has verified.
    VerifiedOnly {
        /// Bytes of ciphertext to buffer in memory.
        max_in_memory: usize,
        /// Where to buffer ciphertext beyond that; `None` fails instead.
        spill_dir: Option<PathBuf>,
    },
}

/// The largest non-framed body a stream accepts: such a body has one tag
/// at its end, so it must be held whole before any of it is released.
pub const MAX_STREAMED_NON_FRAMED_BODY: usize = 64 << 20;

/// The largest header a stream reads before giving up.
pub const MAX_STREAMED_HEADER: usize = 16 << 20;

/// Bytes the streaming readers' header parser has looked at, in all. Lets a
/// test count the parsing work of a header read in small pieces; not part
/// of the API.
static HEADER_BYTES_PARSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[doc(hidden)]
pub fn __header_bytes_parsed() -> u64 {
    HEADER_BYTES_PARSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Parses what a streaming reader has buffered with its resumable
/// parser, counting the bytes this call looks at (from where the parser
/// resumes to the end of what it read).
pub(crate) fn parse_buffered_header(
    parser: &mut crate::format::header::HeaderParser,
    buffered: &[u8],
    max_edks: Option<usize>,
) -> Result<crate::format::header::ParsedHeader, crate::error::FormatError> {
    let from = parser.resume_offset();
    let result = parser.parse(buffered, max_edks);
    let to = result
        .as_ref()
        .map_or(buffered.len(), |parsed| parsed.total_len);
    HEADER_BYTES_PARSED.fetch_add(
        to.saturating_sub(from) as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    result
}

/// How many bytes to have buffered before parsing a header again, after a
/// parse of `buffered` bytes found it `needed` bytes short: at least double
/// what is buffered (or the input's end, whichever comes first). The parser
/// resumes after the EDKs it completed, but the fields before the EDKs
/// (an encryption context of up to 64 KiB) are parsed from the start until
/// they are complete: doubling keeps that part linear too.
pub(crate) fn header_parse_target(buffered: usize, needed: usize) -> usize {
    (buffered + needed).max(buffered.saturating_mul(2).min(MAX_STREAMED_HEADER))
}

pub(crate) fn io_error(error: crate::Error) -> std::io::Error {
    std::io::Error::other(error)
}

/// The crate error behind an I/O error from a stream, if there is one.
pub fn stream_error(error: &std::io::Error) -> Option<&crate::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::Error>())
}
