//! Reads one message: header authentication, frames, footer, in that order,
//! releasing nothing until every check has passed.

use zeroize::Zeroizing;

use crate::crypto::kdf;
use crate::error::{CryptoError, Error, FormatError, PolicyError};
use crate::format::body::{self, BlockKind, BodyAad};
use crate::format::header::ParsedHeader;
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

/// Decrypts the body of a header-authenticated message held in `input`
/// and verifies its footer. The plaintext is returned only if everything
/// verified; on any failure it is zeroized.
pub(crate) fn decrypt(
    input: &[u8],
    parsed: &ParsedHeader,
    materials: &DecryptionMaterials,
) -> Result<Vec<u8>, Error> {
    let keys = authenticate_header(input, parsed, materials)?;
    let header = &parsed.header;
    let message_id = header.message_id.as_bytes();
    let body_input = input.get(parsed.total_len..).unwrap_or(&[]);
    let mut r = Reader::new(body_input);
    let mut plaintext = Zeroizing::new(Vec::with_capacity(body_input.len()));

    let open = |block: body::Block<'_>, plaintext: &mut Vec<u8>| -> Result<(), Error> {
        let start = plaintext.len();
        plaintext.extend_from_slice(block.ciphertext);
        let aad = BodyAad::new(
            message_id,
            block.kind,
            block.sequence,
            block.ciphertext.len() as u64,
        );
        keys.content
            .open_in_place(
                block.iv,
                aad.as_bytes(),
                &mut plaintext[start..],
                &block.tag,
            )
            .map_err(|()| CryptoError::BodyAuthentication {
                sequence: block.sequence,
            })?;
        Ok(())
    };

    match header.content_type {
        ContentType::NonFramed => open(body::read_single_block(&mut r)?, &mut plaintext)?,
        ContentType::Framed => {
            let mut expected = 1u32;
            loop {
                let block = body::read_frame(&mut r, header.frame_length, expected)?;
                let is_final = block.kind == BlockKind::FinalFrame;
                open(block, &mut plaintext)?;
                if is_final {
                    break;
                }
                expected = expected
                    .checked_add(1)
                    .filter(|n| *n != body::FINAL_FRAME_MARKER)
                    .ok_or(FormatError::InvalidField {
                        field: "frame sequence number",
                        reason: "the message has more than 2^32 - 1 frames",
                    })?;
            }
        }
    }
    let signed_len = parsed.total_len + r.position();
    if let Some(verifying_key) = &materials.verifying_key {
        let signature = r.short_bytes("footer signature")?;
        let mut digester = verifying_key.digester();
        digester.update(&input[..signed_len]);
        verifying_key.verify(digester, signature)?;
    }
    if r.remaining() != 0 {
        return Err(FormatError::TrailingBytes(r.remaining()).into());
    }
    Ok(std::mem::take(&mut *plaintext))
}
