//! Pumps between tokio `AsyncRead` and `AsyncWrite`, one frame at a time,
//! driving the same sans-I/O encoder and decoder as the std adapters.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use super::{MAX_STREAMED_HEADER, MAX_STREAMED_NON_FRAMED_BODY};
use crate::error::{Error, FormatError};
use crate::format::header::{Header, ParsedHeader};
use crate::materials::{DecryptionMaterials, EncryptionMaterials};
use crate::message::decoder::{BodyDecoder, Step};
use crate::message::encoder::BodyEncoder;

const READ_CHUNK: usize = 256 * 1024;

fn io(error: std::io::Error) -> Error {
    Error::Io(error.to_string())
}

/// Reads until `buf` holds `want` bytes or the input ends; returns the length.
async fn read_up_to<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    want: usize,
) -> Result<usize, Error> {
    while buf.len() < want {
        let have = buf.len();
        buf.resize(want, 0);
        let read = reader.read(&mut buf[have..]).await.map_err(io);
        let read = match read {
            Ok(read) => read,
            Err(e) => {
                buf.truncate(have);
                return Err(e);
            }
        };
        buf.truncate(have + read);
        if read == 0 {
            break;
        }
    }
    Ok(buf.len())
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
    let mut out = Vec::with_capacity(frame + 64);
    let mut encoder = BodyEncoder::start(&mut out, materials, frame_length, max_edks)?;
    writer.write_all(&out).await.map_err(io)?;
    // One frame plus one byte of look-ahead tells whether a frame is the last.
    let mut pending = Zeroizing::new(Vec::with_capacity(frame + 1));
    let mut total = 0u64;
    loop {
        read_up_to(reader, &mut pending, frame + 1).await?;
        let is_final = pending.len() <= frame;
        let take = pending.len().min(frame);
        total += take as u64;
        if declared_length.is_some_and(|declared| total > declared) {
            return Err(FormatError::InvalidField {
                field: "plaintext length",
                reason: "more plaintext was read than was declared",
            }
            .into());
        }
        out.clear();
        encoder.frame(&mut out, &pending[..take], is_final)?;
        writer.write_all(&out).await.map_err(io)?;
        pending.drain(..take);
        if is_final {
            break;
        }
    }
    if declared_length.is_some_and(|declared| total != declared) {
        return Err(FormatError::InvalidField {
            field: "plaintext length",
            reason: "the stream ended before the declared length",
        }
        .into());
    }
    out.clear();
    encoder.finish(&mut out, materials)?;
    writer.write_all(&out).await.map_err(io)?;
    writer.flush().await.map_err(io)?;
    Ok(total)
}

/// Reads a whole header; returns the bytes read so far and the header.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_edks: Option<usize>,
) -> Result<(Vec<u8>, ParsedHeader), Error> {
    let mut buf = Vec::new();
    loop {
        match Header::parse(&buf, max_edks) {
            Ok(parsed) => return Ok((buf, parsed)),
            Err(FormatError::Truncated { field, needed }) => {
                let want = buf.len() + needed.max(READ_CHUNK.min(MAX_STREAMED_HEADER));
                if buf.len() + needed > MAX_STREAMED_HEADER {
                    return Err(FormatError::TooLong {
                        field: "message header",
                        actual: buf.len() + needed,
                        limit: MAX_STREAMED_HEADER,
                    }
                    .into());
                }
                let before = buf.len();
                if read_up_to(reader, &mut buf, want).await? == before {
                    return Err(FormatError::Truncated { field, needed }.into());
                }
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Decrypts the body after a parsed header, writing each frame once it
/// verifies (the last once the end and signature verify).
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
    let mut plaintext = Zeroizing::new(Vec::new());
    let mut held = Zeroizing::new(Vec::new());
    let mut total = 0u64;
    loop {
        if decoder.is_done() {
            buf.drain(..start);
            if !buf.is_empty() || read_up_to(reader, &mut buf, 1).await? > 0 {
                return Err(FormatError::TrailingBytes(buf.len()).into());
            }
            writer.write_all(&held).await.map_err(io)?;
            total += held.len() as u64;
            writer.flush().await.map_err(io)?;
            return Ok(total);
        }
        plaintext.clear();
        match decoder.step(&buf[start..], &mut plaintext)? {
            Step::NeedMore(truncated) => {
                let needed = match &truncated {
                    FormatError::Truncated { needed, .. } => *needed,
                    _ => 1,
                };
                buf.drain(..start);
                start = 0;
                let before = buf.len();
                if read_up_to(reader, &mut buf, before + needed.max(READ_CHUNK)).await? == before {
                    return Err(truncated.into());
                }
            }
            Step::Block {
                consumed, is_final, ..
            } => {
                start += consumed;
                if is_final {
                    std::mem::swap(&mut held, &mut plaintext);
                } else {
                    writer.write_all(&plaintext).await.map_err(io)?;
                    total += plaintext.len() as u64;
                }
            }
            Step::Done { consumed } => start += consumed,
        }
    }
}
