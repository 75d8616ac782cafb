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

pub(crate) fn io_error(error: crate::Error) -> std::io::Error {
    std::io::Error::other(error)
}

/// The crate error behind an I/O error from a stream, if there is one.
pub fn stream_error(error: &std::io::Error) -> Option<&crate::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<crate::Error>())
}
