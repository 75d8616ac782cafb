//! AWS Signature Version 4 for the XKS API (service `kms-xks-proxy`).
//!
//! [`verify()`] is the server side used by the proxy; [`Signer`] is a small,
//! reusable client-side signer (used by the tests, and meant for an XKS
//! keyring). Both share the canonical-request code here so that they cannot
//! drift apart.

pub mod day_key;
pub mod sign;
pub mod time;
pub mod verify;

pub use day_key::DayKey;
pub use sign::{SignedRequestHeaders, Signer};
pub use verify::{verify, VerifyError, VerifyInput};

use aws_lc_rs::{digest, hmac};

/// The service name KMS signs XKS requests with.
pub const XKS_SERVICE: &str = "kms-xks-proxy";

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// `<date>/<region>/<service>/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// Trims a header value and collapses runs of spaces, as SigV4 requires.
pub(crate) fn canonical_header_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for word in v.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word.trim_matches(|c| c == '\t'));
    }
    out
}

/// Percent-encodes a path the way SigV4 does for non-S3 services: every byte
/// outside the RFC 3986 unreserved set except `/` is encoded. The raw request
/// path goes in, so an already-encoded `%` is encoded again (AWS's "double
/// encoding").
pub(crate) fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sorts `a=b&c=d` pairs by name then value. KMS sends no query string; this
/// only has to agree with [`sign`], which uses the same function.
pub(crate) fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request. `headers` are `(lower-case name, canonical value)`
/// in the order of `signed_headers`.
pub(crate) fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    signed_headers: &str,
    payload_sha256_hex: &str,
) -> String {
    let mut s = String::with_capacity(256);
    s.push_str(method);
    s.push('\n');
    s.push_str(&canonical_uri(path));
    s.push('\n');
    s.push_str(&canonical_query(query));
    s.push('\n');
    for (name, value) in headers {
        s.push_str(name);
        s.push(':');
        s.push_str(value);
        s.push('\n');
    }
    s.push('\n');
    s.push_str(signed_headers);
    s.push('\n');
    s.push_str(payload_sha256_hex);
    s
}

/// The string to sign over a canonical request.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The final signature: HMAC chain over date, region, service and
/// `aws4_request`, then over the string to sign. Callers keep the day's key
/// in a [`DayKey`] instead; this is the reference the tests compare with.
#[cfg(test)]
pub(crate) fn signature(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> [u8; 32] {
    sign_with_key(&signing_key(secret, date, region, service), string_to_sign)
}

/// The day's signing key: the HMAC chain over date, region, service and
/// `aws4_request`. It depends on nothing per request, so a signer can keep
/// it for the day.
pub(crate) fn signing_key(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
) -> zeroize::Zeroizing<[u8; 32]> {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret);
    let secret_key = zeroize::Zeroizing::new(k);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &secret_key),
        date.as_bytes(),
    );
    key.copy_from_slice(tag.as_ref());
    for part in [region, service, "aws4_request"] {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key[..]),
            part.as_bytes(),
        );
        key.copy_from_slice(tag.as_ref());
    }
    key
}

/// The signature of `string_to_sign` under the day's signing key.
pub(crate) fn sign_with_key(key: &[u8; 32], string_to_sign: &str) -> [u8; 32] {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        string_to_sign.as_bytes(),
    );
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla` case from the AWS SigV4 test suite.
    #[test]
    fn aws_get_vanilla_vector() {
        let headers = vec![
            ("host".to_string(), "example.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let creq = canonical_request(
            "GET",
            "/",
            "",
            &headers,
            "host;x-amz-date",
            &sha256_hex(b""),
        );
        let sts = string_to_sign(
            "20150830T123600Z",
            &scope("20150830", "us-east-1", "service"),
            &creq,
        );
        let sig = signature(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "service",
            &sts,
        );
        assert_eq!(
            hex::encode(sig),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        assert_eq!(canonical_header_value("  a   b c  "), "a b c");
    }

    #[test]
    fn query_is_sorted() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
    }
}
