//! Pumps between tokio `AsyncRead` and `AsyncWrite` frame by frame, driving
//! the same sans-I/O encoder and decoder as the std adapters. Input is read
//! in pieces of up to 256 KiB, taking what is ready; output goes out in
//! batches of about 64 KiB, and always before waiting on more input, so a
//! slow source still sees each verified frame released promptly.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::{MAX_STREAMED_HEADER, MAX_STREAMED_NON_FRAMED_BODY};
use crate::error::{Error, FormatError};
use crate::format::header::ParsedHeader;
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use crate::message::decoder::{BodyDecoder, Step};
use crate::message::encoder::BodyEncoder;

const READ_CHUNK: usize = 256 * 1024;
/// The most a buffer grows ahead of the bytes received, per read.
const MAX_GROWTH: usize = 4 << 20;

fn io(error: std::io::Error) -> Error {
    Error::Io(error.to_string())
}

/// Sealed or verified bytes are handed to the writer in batches of about
/// this size: one write per frame cost a system call (and for tokio's
/// `File`, a trip to the blocking pool) per 4 KiB frame, which held
/// file-to-file streaming to a few dozen MB/s.
const OUT_BATCH: usize = 64 * 1024;

/// Reads until `buf` holds at least `min` bytes, each read taking whatever
/// is ready into spare room up to `max` (so a slow source is not waited on
/// for more than is needed, and the room is not zeroed first). False if the
/// input ended first.
async fn fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    min: usize,
    max: usize,
) -> Result<bool, Error> {
    while buf.len() < min {
        // Room grows with what arrives, not with what the header claims.
        buf.reserve((max.max(min) - buf.len()).min(MAX_GROWTH));
        if reader.read_buf(buf).await.map_err(io)? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Makes room for `additional` more bytes in a buffer of plaintext without
/// leaving a copy behind: a larger buffer is allocated, the contents moved
/// over, and the old one wiped (by `Zeroizing`) as it is dropped.
fn reserve_wiping(out: &mut Zeroizing<Vec<u8>>, additional: usize) {
    if out.capacity() - out.len() >= additional {
        return;
    }
    let mut larger = Zeroizing::new(Vec::with_capacity(
        (out.len() + additional).max(2 * out.capacity()),
    ));
    larger.extend_from_slice(out);
    *out = larger;
}

/// Hands the batch to the writer and empties it.
async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &mut Vec<u8>,
) -> Result<(), Error> {
    if !batch.is_empty() {
        writer.write_all(batch).await.map_err(io)?;
        batch.clear();
    }
    Ok(())
}

/// Encrypts everything `reader` yields into one message on `writer`.
/// Returns the plaintext length.
pub(crate) async fn encrypt<R, W>(
    reader: &mut R,
    writer: &mut W,
    materials: &EncryptionMaterials,
    frame_length: u32,
    max_edks: Option<usize>,
    declared_length: Option<u64>,
) -> Result<u64, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = frame_length as usize;
    let mut out = Vec::with_capacity(OUT_BATCH + frame + 64);
    let mut encoder = BodyEncoder::start(&mut out, materials, frame_length, max_edks)?;
    // Input is read in large pieces. A frame is sealed once a byte after it
    // shows that it is not the last.
    let window = READ_CHUNK.max(frame + 1);
    let mut input = Zeroizing::new(Vec::with_capacity(window));
    let mut total = 0u64;
    let mut count = |len: usize| -> Result<(), Error> {
        total += len as u64;
        if declared_length.is_some_and(|declared| total > declared) {
            return Err(FormatError::InvalidField {
                field: "plaintext length",
                reason: "more plaintext was read than was declared",
            }
            .into());
        }
        Ok(())
    };
    loop {
        // What is sealed goes out before waiting on the input.
        write_batch(writer, &mut out).await?;
        let more = fill(reader, &mut input, frame + 1, window).await?;
        let mut pos = 0;
        while input.len() - pos > frame {
            count(frame)?;
            encoder.frame(&mut out, &input[pos..pos + frame], false)?;
            pos += frame;
            if out.len() >= OUT_BATCH {
                write_batch(writer, &mut out).await?;
            }
        }
        if !more {
            // At most one frame is left: the final one.
            count(input.len() - pos)?;
            encoder.frame(&mut out, &input[pos..], true)?;
            break;
        }
        input.drain(..pos);
    }
    if declared_length.is_some_and(|declared| total != declared) {
        return Err(FormatError::InvalidField {
            field: "plaintext length",
            reason: "the stream ended before the declared length",
        }
        .into());
    }
    encoder.finish(&mut out, materials)?;
    write_batch(writer, &mut out).await?;
    writer.flush().await.map_err(io)?;
    Ok(total)
}

/// Reads a whole header; returns the bytes read so far and the header.
/// Re-parses only once the buffer has doubled (or the input ended).
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_edks: Option<usize>,
) -> Result<(Vec<u8>, ParsedHeader), Error> {
    let mut buf = Vec::new();
    let mut parser = crate::format::header::HeaderParser::default();
    loop {
        match super::parse_buffered_header(&mut parser, &buf, max_edks) {
            Ok(parsed) => return Ok((buf, parsed)),
            Err(FormatError::Truncated { field, needed }) => {
                if buf.len() + needed > MAX_STREAMED_HEADER {
                    return Err(FormatError::TooLong {
                        field: "message header",
                        actual: buf.len() + needed,
                        limit: MAX_STREAMED_HEADER,
                    }
                    .into());
                }
                let parsed_len = buf.len();
                let target = super::header_parse_target(parsed_len, needed);
                let max = target.max(parsed_len + READ_CHUNK.min(MAX_STREAMED_HEADER));
                if !fill(reader, &mut buf, target, max).await? && buf.len() < parsed_len + needed {
                    return Err(FormatError::Truncated { field, needed }.into());
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Decrypts the body after a parsed header, writing each frame once it
/// verifies (the last once the end and signature verify). Verified frames
/// are written in batches, and always before waiting on more input.
pub(crate) async fn decrypt_body<R, W>(
    reader: &mut R,
    writer: &mut W,
    mut buf: Vec<u8>,
    parsed: &ParsedHeader,
    materials: &DecryptionMaterials,
) -> Result<u64, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = BodyDecoder::new(&buf, parsed, materials, MAX_STREAMED_NON_FRAMED_BODY)?;
    // Decoded bytes are skipped by `start` and dropped only before a read,
    // so buffered frames are not shifted one by one.
    let mut start = parsed.total_len;
    // Room for a batch to start with; before each step it is made to hold
    // whatever that step may write (no more plaintext than the ciphertext
    // buffered), so it never grows inside the decoder, and it grows only
    // with bytes received, whatever frame length the header claims.
    let mut out = Zeroizing::new(Vec::with_capacity(OUT_BATCH));
    let mut held = Zeroizing::new(Vec::new());
    let mut total = 0u64;
    loop {
        if decoder.is_done() {
            buf.drain(..start);
            if !buf.is_empty() || fill(reader, &mut buf, 1, 1).await? {
                return Err(FormatError::TrailingBytes(buf.len()).into());
            }
            total += (out.len() + held.len()) as u64;
            write_batch(writer, &mut out).await?;
            write_batch(writer, &mut held).await?;
            writer.flush().await.map_err(io)?;
            return Ok(total);
        }
        let before = out.len();
        reserve_wiping(&mut out, buf.len() - start);
        match decoder.step(&buf[start..], &mut out)? {
            Step::NeedMore(truncated) => {
                let needed = match &truncated {
                    FormatError::Truncated { needed, .. } => *needed,
                    _ => 1,
                };
                total += out.len() as u64;
                write_batch(writer, &mut out).await?;
                buf.drain(..start);
                start = 0;
                let (min, max) = (buf.len() + needed, buf.len() + needed.max(READ_CHUNK));
                if !fill(reader, &mut buf, min, max).await? {
                    return Err(truncated.into());
                }
            }
            Step::Block {
                consumed, is_final, ..
            } => {
                start += consumed;
                if is_final {
                    // The last frame waits for the end (and signature) check.
                    held.extend_from_slice(&out[before..]);
                    out[before..].fill(0);
                    out.truncate(before);
                } else if out.len() >= OUT_BATCH {
                    total += out.len() as u64;
                    write_batch(writer, &mut out).await?;
                }
            }
            Step::Done { consumed } => start += consumed,
        }
    }
}
