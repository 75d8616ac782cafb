//! Reads one message: header authentication, frames, footer, in that order,
//! releasing nothing until every check has passed.

use zeroize::Zeroizing;

use super::decoder::{BodyDecoder, Step};
use crate::crypto::kdf;
use crate::error::{CryptoError, Error, FormatError, PolicyError};
use crate::format::header::ParsedHeader;
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

/// Decrypts a whole message held in `input` whose header was parsed into
/// `parsed`. The plaintext is returned only if everything verified; on any
/// failure it is zeroized.
pub(crate) fn decrypt(
    input: &[u8],
    parsed: &ParsedHeader,
    materials: &DecryptionMaterials,
) -> Result<Vec<u8>, Error> {
    let mut decoder = BodyDecoder::new(input, parsed, materials, usize::MAX)?;
    let mut position = parsed.total_len;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(input.len().saturating_sub(position)));
    loop {
        match decoder.step(&input[position..], &mut plaintext)? {
            Step::NeedMore(truncated) => return Err(truncated.into()),
            Step::Block { consumed, .. } => position += consumed,
            Step::Done { consumed } => {
                position += consumed;
                break;
            }
        }
    }
    if position != input.len() {
        return Err(FormatError::TrailingBytes(input.len() - position).into());
    }
    Ok(std::mem::take(&mut *plaintext))
}
