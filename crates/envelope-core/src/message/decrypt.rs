//! Reads one message: header authentication, frames, footer, in that order,
//! releasing nothing until every check has passed.

use zeroize::Zeroizing;

use super::decoder::{BodyDecoder, Step};
use crate::error::{Error, FormatError};
use crate::format::header::ParsedHeader;
use crate::materials::DecryptionMaterials;

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
