//! Sans-I/O message reader: after the header authenticates, each call
//! decodes one block (frame, non-framed body or footer) from the front of
//! the bytes it is given, or says how many more it needs. Both the
//! in-memory and the streaming APIs drive this.

use crate::crypto::aead::{IV_LEN, TAG_LEN};
use crate::crypto::kdf::{self, MessageKeys};
use crate::crypto::sign::{Digester, VerifyingKey};
use crate::error::{CryptoError, Error, FormatError, PolicyError};
use crate::format::body::{self, BlockKind, BodyAad, FINAL_FRAME_MARKER};
use crate::format::header::{MessageId, ParsedHeader};
use crate::format::reader::Reader;
use crate::format::ContentType;
use crate::materials::DecryptionMaterials;

/// Derives the message keys and checks commitment and the header tag.
pub(crate) fn authenticate_header(
    header_bytes: &[u8],
    parsed: &ParsedHeader,
    materials: &DecryptionMaterials,
) -> Result<kdf::MessageKeys, Error> {
    let header = &parsed.header;
    let data_key = materials
        .data_key
        .as_ref()
        .ok_or(PolicyError::InvalidMaterials("no data key"))?;
    let keys = kdf::derive(header.suite, data_key, header.message_id.as_bytes())?;
    keys.verify_commitment(header.commitment.as_ref())?;
    let authenticated_only = materials.authenticated_only_context()?;
    let body = header_bytes
        .get(..parsed.body_len)
        .ok_or(FormatError::Truncated {
            field: "header",
            needed: parsed.body_len,
        })?;
    let verified = if authenticated_only.is_empty() {
        keys.content
            .open_in_place(header.header_iv, body, &mut [], &header.tag)
    } else {
        let mut aad = body.to_vec();
        aad.extend_from_slice(&authenticated_only);
        keys.content
            .open_in_place(header.header_iv, &aad, &mut [], &header.tag)
    };
    verified.map_err(|()| CryptoError::HeaderAuthentication)?;
    Ok(keys)
}

/// What one decoding step did.
pub(crate) enum Step {
    /// The next block is incomplete; the error says which field and how
    /// many more bytes it needs.
    NeedMore(FormatError),
    /// A block was decoded: `consumed` input bytes; `written` plaintext
    /// bytes were appended (or put at the front of the output slice).
    Block {
        consumed: usize,
        written: usize,
        is_final: bool,
    },
    /// The footer (if any) verified; the message is complete.
    Done { consumed: usize },
}

pub(crate) struct BodyDecoder {
    keys: MessageKeys,
    message_id: MessageId,
    content_type: ContentType,
    frame_length: u32,
    expected: u32,
    verifier: Option<(VerifyingKey, Digester)>,
    body_done: bool,
    done: bool,
    max_block: usize,
}

impl BodyDecoder {
    /// Authenticates the header (`header_bytes` starts with it) and starts
    /// the signature digest. Blocks larger than `max_block` bytes (only a
    /// non-framed body can be) are refused, so streaming stays bounded.
    pub(crate) fn new(
        header_bytes: &[u8],
        parsed: &ParsedHeader,
        materials: &DecryptionMaterials,
        max_block: usize,
    ) -> Result<Self, Error> {
        let keys = authenticate_header(header_bytes, parsed, materials)?;
        let verifier = materials.verifying_key.as_ref().map(|key| {
            let mut digester = key.digester();
            digester.update(&header_bytes[..parsed.total_len]);
            (key.clone(), digester)
        });
        Ok(Self {
            keys,
            message_id: parsed.header.message_id,
            content_type: parsed.header.content_type,
            frame_length: parsed.header.frame_length,
            expected: 1,
            verifier,
            body_done: false,
            done: false,
            max_block,
        })
    }

    /// Whether the message is complete and verified.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Decodes the next block from the front of `input`, appending its
    /// plaintext to `plaintext`.
    pub(crate) fn step(&mut self, input: &[u8], plaintext: &mut Vec<u8>) -> Result<Step, Error> {
        // Appending always takes the block, so `None` cannot come back.
        self.step_to(input, Output::Append(plaintext))?
            .ok_or(Error::Format(FormatError::InvalidField {
                field: "decoder",
                reason: "an appending step declined a block",
            }))
    }

    /// Decodes the next block straight into `out` when it is a regular
    /// frame that fits (saving a copy). `None` leaves the block (the final
    /// one, or too large) for [`BodyDecoder::step`]; nothing changed then.
    pub(crate) fn step_into(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<Option<Step>, Error> {
        self.step_to(input, Output::Into(out))
    }

    /// The length on the wire of one whole regular frame (sequence number,
    /// IV, ciphertext, tag) while regular frames may still come; `None` for
    /// a non-framed body and once the final frame has been read.
    pub(crate) fn regular_frame_len(&self) -> Option<usize> {
        (self.content_type == ContentType::Framed && !self.body_done && !self.done)
            .then(|| 4 + IV_LEN + self.frame_length as usize + TAG_LEN)
    }

    /// Opens the one regular frame that fills `in_out[src..]` and writes its
    /// plaintext to the front of `in_out`, moving it down over whatever lay
    /// before (frame headers, tags) as it decrypts. Returns the plaintext
    /// length. On failure `in_out` is wiped. The streaming reader uses this
    /// to decrypt frames where they were read, in the caller's buffer.
    pub(crate) fn open_frame_within(
        &mut self,
        in_out: &mut [u8],
        src: usize,
    ) -> Result<usize, Error> {
        let frame = in_out.get(src..).unwrap_or_default();
        let mut r = Reader::new(frame);
        let block = body::read_frame(&mut r, self.frame_length, self.expected)?;
        if block.kind != BlockKind::Frame || r.position() != frame.len() {
            return Err(FormatError::InvalidField {
                field: "frame",
                reason: "expected one whole regular frame",
            }
            .into());
        }
        let (iv, sequence) = (block.iv, block.sequence);
        let aad = BodyAad::new(
            self.message_id.as_bytes(),
            block.kind,
            sequence,
            block.ciphertext.len() as u64,
        );
        // The signature covers the frame as sent: digest it before it is
        // decrypted in place.
        if let Some((_, digester)) = &mut self.verifier {
            digester.update(frame);
        }
        let written = self
            .keys
            .content
            .open_within(iv, aad.as_bytes(), in_out, src + 4 + IV_LEN)
            .map_err(|()| CryptoError::BodyAuthentication { sequence })?;
        self.advance_sequence()?;
        Ok(written)
    }

    /// Opens one regular frame whose parts were read apart: `head` (the
    /// sequence number and IV), `data` (the ciphertext, decrypted in place)
    /// and `tag`. The streaming reader uses this to decrypt a frame in a
    /// caller's buffer that holds its plaintext but not its whole wire
    /// form. Returns the plaintext length. On failure `data` is wiped.
    pub(crate) fn open_frame_split(
        &mut self,
        head: &[u8; 4 + IV_LEN],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<usize, Error> {
        let mut r = Reader::new(head);
        let (sequence, iv) = body::read_regular_frame_head(&mut r, self.expected)?;
        if data.len() != self.frame_length as usize {
            return Err(FormatError::InvalidField {
                field: "frame",
                reason: "expected one whole regular frame",
            }
            .into());
        }
        let aad = BodyAad::new(
            self.message_id.as_bytes(),
            BlockKind::Frame,
            sequence,
            data.len() as u64,
        );
        // The signature covers the frame as sent: digest it before it is
        // decrypted in place.
        if let Some((_, digester)) = &mut self.verifier {
            digester.update(head);
            digester.update(data);
            digester.update(tag);
        }
        self.keys
            .content
            .open_in_place(iv, aad.as_bytes(), data, tag)
            .map_err(|()| CryptoError::BodyAuthentication { sequence })?;
        self.advance_sequence()?;
        Ok(data.len())
    }

    fn advance_sequence(&mut self) -> Result<(), FormatError> {
        self.expected = self
            .expected
            .checked_add(1)
            .filter(|n| *n != FINAL_FRAME_MARKER)
            .ok_or(FormatError::InvalidField {
                field: "frame sequence number",
                reason: "the message has more than 2^32 - 1 frames",
            })?;
        Ok(())
    }

    fn step_to(&mut self, input: &[u8], out: Output<'_>) -> Result<Option<Step>, Error> {
        if self.done {
            return Ok(Some(Step::Done { consumed: 0 }));
        }
        let mut r = Reader::new(input);
        if self.body_done {
            let signature = match r.short_bytes("footer signature") {
                Ok(signature) => signature,
                Err(truncated @ FormatError::Truncated { .. }) => {
                    return Ok(Some(Step::NeedMore(truncated)))
                }
                Err(other) => return Err(other.into()),
            };
            if let Some((key, digester)) = self.verifier.take() {
                key.verify(digester, signature)?;
            }
            self.done = true;
            return Ok(Some(Step::Done {
                consumed: r.position(),
            }));
        }
        let block = match self.content_type {
            ContentType::Framed => body::read_frame(&mut r, self.frame_length, self.expected),
            ContentType::NonFramed => {
                if let Some(len) = input.get(12..20) {
                    let mut declared = [0u8; 8];
                    declared.copy_from_slice(len);
                    let declared = u64::from_be_bytes(declared);
                    if declared > self.max_block as u64 {
                        return Err(FormatError::TooLong {
                            field: "non-framed body (it cannot be streamed in bounded memory)",
                            actual: usize::try_from(declared).unwrap_or(usize::MAX),
                            limit: self.max_block,
                        }
                        .into());
                    }
                }
                body::read_single_block(&mut r)
            }
        };
        let block = match block {
            Ok(block) => block,
            Err(truncated @ FormatError::Truncated { .. }) => {
                return Ok(Some(Step::NeedMore(truncated)))
            }
            Err(other) => return Err(other.into()),
        };
        let is_final = block.kind != BlockKind::Frame;
        let written = block.ciphertext.len();
        let aad = BodyAad::new(
            self.message_id.as_bytes(),
            block.kind,
            block.sequence,
            written as u64,
        );
        let opened = match out {
            Output::Into(out) => {
                let Some(target) = out.get_mut(..written).filter(|_| !is_final) else {
                    return Ok(None);
                };
                target.copy_from_slice(block.ciphertext);
                self.keys
                    .content
                    .open_in_place(block.iv, aad.as_bytes(), target, &block.tag)
            }
            Output::Append(plaintext) => {
                let start = plaintext.len();
                plaintext.extend_from_slice(block.ciphertext);
                let opened = self.keys.content.open_in_place(
                    block.iv,
                    aad.as_bytes(),
                    &mut plaintext[start..],
                    &block.tag,
                );
                if opened.is_err() {
                    plaintext.truncate(start);
                }
                opened
            }
        };
        if opened.is_err() {
            return Err(CryptoError::BodyAuthentication {
                sequence: block.sequence,
            }
            .into());
        }
        let consumed = r.position();
        if let Some((_, digester)) = &mut self.verifier {
            digester.update(&input[..consumed]);
        }
        if is_final {
            self.body_done = true;
            self.done = self.verifier.is_none();
        } else {
            self.advance_sequence()?;
        }
        Ok(Some(Step::Block {
            consumed,
            written,
            is_final,
        }))
    }
}

/// Where a step puts plaintext.
enum Output<'a> {
    Append(&'a mut Vec<u8>),
    Into(&'a mut [u8]),
}
