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
pub use verify::{verify, Credential, VerifyError, VerifyInput};

use aws_lc_rs::{digest, hmac};

/// The service name KMS signs XKS requests with.
pub const XKS_SERVICE: &str = "kms-xks-proxy";

/// The only algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Receives a canonical request or a string to sign piece by piece.
///
/// Signing and verifying feed a SHA-256 or HMAC context directly, so
/// neither text is built per request; the tests collect the bytes, to
/// compare them with AWS's examples.
pub(crate) trait Sink {
    /// Appends `piece`.
    fn put(&mut self, piece: &[u8]);
}

impl Sink for digest::Context {
    fn put(&mut self, piece: &[u8]) {
        self.update(piece);
    }
}

impl Sink for hmac::Context {
    fn put(&mut self, piece: &[u8]) {
        self.update(piece);
    }
}

#[cfg(test)]
impl Sink for Vec<u8> {
    fn put(&mut self, piece: &[u8]) {
        self.extend_from_slice(piece);
    }
}

/// Lower-case hex of a 32-byte value (a SHA-256 digest or a signature),
/// on the stack.
pub(crate) struct Hex32([u8; 64]);

impl Hex32 {
    /// Encodes the first 32 bytes of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        Hex32(out)
    }

    /// The 64 hex digits.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The hex SHA-256 of a request body, as the canonical request ends with.
pub(crate) fn payload_hash(body: &[u8]) -> Hex32 {
    Hex32::of(digest::digest(&digest::SHA256, body).as_ref())
}

/// Writes a canonical request into a [`Sink`]: [`Self::start`], then one
/// [`Self::header`] per name of `SignedHeaders`, in that order, then
/// [`Self::finish`].
pub(crate) struct CanonicalRequest<S> {
    sink: S,
}

impl<S: Sink> CanonicalRequest<S> {
    /// The method, the canonical path and the canonical query, a line each.
    pub(crate) fn start(mut sink: S, method: &str, path: &str, query: &str) -> Self {
        sink.put(method.as_bytes());
        sink.put(b"\n");
        put_canonical_uri(&mut sink, path);
        sink.put(b"\n");
        put_canonical_query(&mut sink, query);
        sink.put(b"\n");
        CanonicalRequest { sink }
    }

    /// One header line: the lower-case `name`, then its values (several
    /// when the header is repeated), each canonicalized, joined by commas.
    pub(crate) fn header<'v>(&mut self, name: &str, values: impl IntoIterator<Item = &'v str>) {
        self.sink.put(name.as_bytes());
        self.sink.put(b":");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.sink.put(b",");
            }
            put_canonical_header_value(&mut self.sink, value);
        }
        self.sink.put(b"\n");
    }

    /// The signed-header list and the payload hash; returns the sink.
    pub(crate) fn finish(mut self, signed_headers: &str, payload_hash: &Hex32) -> S {
        self.sink.put(b"\n");
        self.sink.put(signed_headers.as_bytes());
        self.sink.put(b"\n");
        self.sink.put(payload_hash.as_bytes());
        self.sink
    }
}

/// Trims a header value and collapses runs of spaces, as SigV4 requires.
fn put_canonical_header_value(sink: &mut impl Sink, value: &str) {
    let mut wrote_any = false;
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        let word = word.trim_matches('\t');
        if wrote_any {
            sink.put(b" ");
        }
        sink.put(word.as_bytes());
        wrote_any |= !word.is_empty();
    }
}

/// Percent-encodes a path the way SigV4 does for non-S3 services: every byte
/// outside the RFC 3986 unreserved set except `/` is encoded. The raw request
/// path goes in, so an already-encoded `%` is encoded again (AWS's "double
/// encoding").
fn put_canonical_uri(sink: &mut impl Sink, path: &str) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    if path.is_empty() {
        sink.put(b"/");
        return;
    }
    let bytes = path.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            continue;
        }
        sink.put(&bytes[run..i]);
        sink.put(&[
            b'%',
            DIGITS[usize::from(b >> 4)],
            DIGITS[usize::from(b & 0x0f)],
        ]);
        run = i + 1;
    }
    sink.put(&bytes[run..]);
}

/// Sorts `a=b&c=d` pairs by name then value. KMS sends no query string; this
/// only has to agree with [`Signer`], which uses the same function.
fn put_canonical_query(sink: &mut impl Sink, query: &str) {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        sink.put(name.as_bytes());
        sink.put(b"=");
        sink.put(value.as_bytes());
    }
}

/// The parts of a credential scope that vary:
/// `<date>/<region>/<service>/aws4_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scope<'a> {
    /// `YYYYMMDD`.
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
}

/// Feeds the string to sign: the algorithm, the request time, the scope
/// and the canonical request's hash, a line each.
pub(crate) fn put_string_to_sign(
    sink: &mut impl Sink,
    amz_date: &str,
    scope: Scope<'_>,
    canonical_request_hash: &Hex32,
) {
    for piece in [
        ALGORITHM.as_bytes(),
        b"\n",
        amz_date.as_bytes(),
        b"\n",
        scope.date.as_bytes(),
        b"/",
        scope.region.as_bytes(),
        b"/",
        scope.service.as_bytes(),
        b"/aws4_request\n",
        canonical_request_hash.as_bytes(),
    ] {
        sink.put(piece);
    }
}

impl CanonicalRequest<digest::Context> {
    /// Finishes the request and returns its signature: the string to sign
    /// over the request's hash, authenticated by `mac`, which holds the
    /// day's key for `scope`. The signer and the verifier both end here.
    pub(crate) fn sign(
        self,
        signed_headers: &str,
        body: &[u8],
        amz_date: &str,
        scope: Scope<'_>,
        mut mac: hmac::Context,
    ) -> hmac::Tag {
        let hash = self.finish(signed_headers, &payload_hash(body)).finish();
        put_string_to_sign(&mut mac, amz_date, scope, &Hex32::of(hash.as_ref()));
        mac.sign()
    }
}

/// The day's signing key: the HMAC chain over date, region, service and
/// `aws4_request`. It depends on nothing per request, so [`DayKey`] keeps
/// it for the day.
pub(crate) fn signing_key(secret: &[u8], scope: Scope<'_>) -> hmac::Key {
    let mut k = Vec::with_capacity(4 + secret.len());
    k.extend_from_slice(b"AWS4");
    k.extend_from_slice(secret);
    let secret_key = zeroize::Zeroizing::new(k);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &secret_key),
        scope.date.as_bytes(),
    );
    key.copy_from_slice(tag.as_ref());
    for part in [scope.region, scope.service, "aws4_request"] {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key[..]),
            part.as_bytes(),
        );
        key.copy_from_slice(tag.as_ref());
    }
    // aws-lc wipes an HMAC key's state when it is dropped.
    hmac::Key::new(hmac::HMAC_SHA256, &key[..])
}

/// The signature of `string_to_sign` derived from scratch, step by step
/// as the specification gives it: the reference the tests compare with.
#[cfg(test)]
pub(crate) fn reference_signature(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &[u8],
) -> [u8; 32] {
    let mut key = [b"AWS4".as_slice(), secret].concat();
    for part in [date, region, service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), string_to_sign);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VANILLA: Scope<'static> = Scope {
        date: "20150830",
        region: "us-east-1",
        service: "service",
    };

    fn canonical_text(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        signed_headers: &str,
        body: &[u8],
    ) -> String {
        let mut creq = CanonicalRequest::start(Vec::new(), method, path, query);
        for (name, value) in headers {
            creq.header(name, [*value]);
        }
        String::from_utf8(creq.finish(signed_headers, &payload_hash(body))).unwrap()
    }

    /// The `get-vanilla` case from the AWS SigV4 test suite: canonical
    /// request, string to sign and signature, each against AWS's text.
    #[test]
    fn aws_get_vanilla_vector() {
        let creq = canonical_text(
            "GET",
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                ("x-amz-date", "20150830T123600Z"),
            ],
            "host;x-amz-date",
            b"",
        );
        assert_eq!(
            creq,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut sts = Vec::new();
        let creq_hash = Hex32::of(digest::digest(&digest::SHA256, creq.as_bytes()).as_ref());
        put_string_to_sign(&mut sts, "20150830T123600Z", VANILLA, &creq_hash);
        assert_eq!(
            String::from_utf8(sts.clone()).unwrap(),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
             bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        let secret = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let expected = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let sig = reference_signature(secret, "20150830", "us-east-1", "service", &sts);
        assert_eq!(hex::encode(sig), expected);
        let mut mac = hmac::Context::with_key(&signing_key(secret, VANILLA));
        mac.put(&sts);
        assert_eq!(hex::encode(mac.sign()), expected);
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        put_canonical_header_value(&mut out, "  a   b c  ");
        assert_eq!(out, b"a b c");
    }

    #[test]
    fn query_is_sorted_and_path_encoded() {
        let mut out = Vec::new();
        put_canonical_query(&mut out, "b=2&a=1&a=0");
        assert_eq!(out, b"a=0&a=1&b=2");
        let mut out = Vec::new();
        put_canonical_uri(&mut out, "/a b/%2F~x");
        assert_eq!(out, b"/a%20b/%252F~x");
        let mut out = Vec::new();
        put_canonical_uri(&mut out, "");
        assert_eq!(out, b"/");
    }

    #[test]
    fn repeated_header_values_are_joined_with_commas() {
        let mut creq = CanonicalRequest::start(Vec::new(), "POST", "/", "");
        creq.header("x-custom", ["  a   b ", "c"]);
        let text = String::from_utf8(creq.finish("x-custom", &payload_hash(b""))).unwrap();
        assert!(text.contains("\nx-custom:a b,c\n"), "{text}");
    }

    #[test]
    fn hex32_is_lower_case_hex() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i * 8).collect();
        assert_eq!(Hex32::of(&bytes).as_bytes(), hex::encode(&bytes).as_bytes());
    }
}
