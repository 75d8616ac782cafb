//! Minimal PEM decoding: one labelled block to DER.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use zeroize::Zeroizing;

use crate::error::KeyringError;

/// Decodes the first PEM block labelled `label` (for example `PUBLIC KEY`).
pub(crate) fn decode(pem: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, KeyringError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| KeyringError::Config(format!("no \"{begin}\" line in the PEM input")))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| KeyringError::Config(format!("no \"{end}\" line in the PEM input")))?
        + start;
    let body: Zeroizing<String> = Zeroizing::new(
        pem[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    BASE64
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| KeyringError::Config(format!("the {label} PEM block is not valid base64")))
}
