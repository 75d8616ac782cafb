//! Server-side SigV4 verification.
//!
//! The canonical request is rebuilt from the request's own `SignedHeaders`
//! list (KMS signs `host;x-amz-date`, curl adds more), the payload hash is
//! always computed from the received body, and the date, scope date, region
//! and service are all checked before the HMAC comparison.

use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use http::HeaderMap;

use crate::secret::Secret;

use super::{time, CanonicalRequest, Scope};

/// Largest accepted clock difference between client and proxy.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Why a signature was rejected. All of these become
/// `AuthenticationFailedException`; the variant is logged, not returned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    MissingAuthorization,
    /// The header is not `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// No or malformed `x-amz-date`.
    #[error("missing or malformed x-amz-date")]
    BadDate,
    /// `x-amz-date` is more than five minutes from the proxy's clock.
    #[error("request date is outside the allowed skew")]
    Skewed,
    /// The credential scope is malformed or its date differs from `x-amz-date`.
    #[error("credential scope is malformed or its date does not match x-amz-date")]
    BadScope,
    /// The scope names another region.
    #[error("credential scope has the wrong region")]
    WrongRegion,
    /// The scope names another service.
    #[error("credential scope has the wrong service")]
    WrongService,
    /// The access key id is not configured for this key store.
    #[error("unknown access key id")]
    UnknownAccessKey,
    /// `host` or `x-amz-date` is not in `SignedHeaders`.
    #[error("SignedHeaders must include host and x-amz-date")]
    RequiredHeaderNotSigned,
    /// A header in `SignedHeaders` is absent or not valid text.
    #[error("signed header {0} is missing")]
    SignedHeaderMissing(String),
    /// The signature does not match.
    #[error("signature does not match")]
    SignatureMismatch,
}

/// The parts of a request SigV4 covers.
#[derive(Debug)]
pub struct VerifyInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Raw path, as received.
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: &'a str,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// The `:authority` of an h2 request, used as `host` when there is no
    /// `Host` header.
    pub authority: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
}

struct AuthHeader<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(v: &str) -> Result<AuthHeader<'_>, VerifyError> {
    let rest = v
        .strip_prefix(super::ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(VerifyError::MalformedAuthorization)?;
    let (mut credential, mut signed_headers, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedAuthorization)?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut sig,
            _ => return Err(VerifyError::MalformedAuthorization),
        };
        if slot.replace(v).is_some() {
            return Err(VerifyError::MalformedAuthorization);
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, sig) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(VerifyError::MalformedAuthorization),
    };
    let mut it = credential.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    ) else {
        return Err(VerifyError::BadScope);
    };
    Ok(AuthHeader {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers,
        signature,
    })
}

/// A SigV4 credential pair a key store accepts, with the signing key of
/// the day derived from it (cached, since KMS signs with one scope a day).
#[derive(Clone, Debug)]
pub struct Credential {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (43-64 characters from `[A-Za-z0-9+/=]`). Not
    /// public: `day_key` is derived from it, so the two change together, by
    /// building a new `Credential`.
    secret: Secret,
    /// The signing key derived from `secret` for the current day.
    day_key: super::DayKey,
}

impl Credential {
    /// A credential pair, as loaded from the configuration.
    pub fn new(access_key_id: String, secret: Secret) -> Self {
        Credential {
            access_key_id,
            secret,
            day_key: super::DayKey::new(),
        }
    }
}

/// Verifies a request against `credentials` (one or two pairs of the key
/// store). Returns the access key id that signed it.
pub fn verify(
    req: &VerifyInput<'_>,
    credentials: &[Credential],
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<String, VerifyError> {
    let auth = req
        .headers
        .get(http::header::AUTHORIZATION)
        .ok_or(VerifyError::MissingAuthorization)?
        .to_str()
        .map_err(|_| VerifyError::MalformedAuthorization)?;
    let auth = parse_authorization(auth)?;

    let amz_date = req
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::BadDate)?;
    let at = time::parse_amz_date(amz_date).ok_or(VerifyError::BadDate)?;
    let skew = now.duration_since(at).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(VerifyError::Skewed);
    }
    if auth.date.len() != 8 || !amz_date.starts_with(auth.date) || auth.terminator != "aws4_request"
    {
        return Err(VerifyError::BadScope);
    }
    if auth.region != region {
        return Err(VerifyError::WrongRegion);
    }
    if auth.service != service {
        return Err(VerifyError::WrongService);
    }
    let cred = credentials
        .iter()
        .find(|c| c.access_key_id == auth.access_key_id)
        .ok_or(VerifyError::UnknownAccessKey)?;

    // Rebuild the canonical request from the client's own header list, and
    // hash it as it is written. The list must be lower-case and sorted; a
    // list that is not is simply signed differently and fails the
    // comparison below.
    let signed_headers = auth.signed_headers;
    let is_signed = |name: &str| signed_headers.split(';').any(|n| n == name);
    if !is_signed("host") || !is_signed("x-amz-date") {
        return Err(VerifyError::RequiredHeaderNotSigned);
    }
    let mut creq = CanonicalRequest::start(
        digest::Context::new(&digest::SHA256),
        req.method,
        req.path,
        req.query,
    );
    for name in signed_headers.split(';') {
        let missing = || VerifyError::SignedHeaderMissing(name.to_owned());
        let values = req.headers.get_all(name);
        if values.iter().any(|v| v.to_str().is_err()) {
            return Err(missing());
        }
        if values.iter().next().is_some() {
            // All values are text: checked just above.
            creq.header(name, values.iter().map(|v| v.to_str().unwrap_or_default()));
        } else {
            match (name, req.authority) {
                ("host", Some(authority)) => creq.header(name, [authority]),
                _ => return Err(missing()),
            }
        }
    }
    let scope = Scope {
        date: auth.date,
        region,
        service,
    };
    let mac = cred.day_key.context(cred.secret.expose(), scope);
    let expected = creq.sign(signed_headers, req.body, amz_date, scope, mac);
    let mut given = [0u8; 32];
    hex::decode_to_slice(auth.signature, &mut given).map_err(|_| VerifyError::SignatureMismatch)?;
    aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &given)
        .map_err(|_| VerifyError::SignatureMismatch)?;
    Ok(cred.access_key_id.clone())
}

#[cfg(test)]
mod tests {
    use super::super::{Signer, XKS_SERVICE};
    use super::*;
    use http::header::HeaderValue;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEYAAAA";

    fn creds() -> Vec<Credential> {
        vec![Credential::new(
            AKID.into(),
            Secret::new(SECRET.as_bytes().to_vec()),
        )]
    }

    fn signed(signer: &Signer, body: &[u8], at: SystemTime, extra: &[(&str, &str)]) -> HeaderMap {
        let s = signer.sign("POST", "/p/kms/xks/v1/health", "h.example", extra, body, at);
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("h.example"));
        for (n, v) in extra {
            h.insert(
                http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h.insert("x-amz-date", HeaderValue::from_str(&s.x_amz_date).unwrap());
        h.insert(
            "authorization",
            HeaderValue::from_str(&s.authorization).unwrap(),
        );
        h
    }

    fn check(h: &HeaderMap, body: &[u8], now: SystemTime) -> Result<String, VerifyError> {
        let input = VerifyInput {
            method: "POST",
            path: "/p/kms/xks/v1/health",
            query: "",
            headers: h,
            authority: None,
            body,
        };
        verify(&input, &creds(), "us-east-1", XKS_SERVICE, now)
    }

    #[test]
    fn sign_then_verify() {
        let now = SystemTime::now();
        let signer = Signer::new(AKID, Secret::new(SECRET.into()), "us-east-1", XKS_SERVICE);
        let h = signed(&signer, b"{}", now, &[("content-type", "application/json")]);
        assert_eq!(check(&h, b"{}", now).unwrap(), AKID);
        assert_eq!(check(&h, b"{ }", now), Err(VerifyError::SignatureMismatch));
        let late = now + Duration::from_secs(301);
        assert_eq!(check(&h, b"{}", late), Err(VerifyError::Skewed));
        let other = Signer::new(AKID, Secret::new(SECRET.into()), "eu-west-1", XKS_SERVICE);
        assert_eq!(
            check(&signed(&other, b"", now, &[]), b"", now),
            Err(VerifyError::WrongRegion)
        );
        let other = Signer::new(AKID, Secret::new(SECRET.into()), "us-east-1", "kms");
        assert_eq!(
            check(&signed(&other, b"", now, &[]), b"", now),
            Err(VerifyError::WrongService)
        );
    }

    /// An HTTP/2 request carries the host as `:authority`, not `Host`.
    #[test]
    fn authority_stands_in_for_a_missing_host_header() {
        let now = SystemTime::now();
        let signer = Signer::new(AKID, Secret::new(SECRET.into()), "us-east-1", XKS_SERVICE);
        let mut h = signed(&signer, b"{}", now, &[]);
        h.remove("host");
        let input = |authority| VerifyInput {
            method: "POST",
            path: "/p/kms/xks/v1/health",
            query: "",
            headers: &h,
            authority,
            body: b"{}",
        };
        let verify_with =
            |authority| verify(&input(authority), &creds(), "us-east-1", XKS_SERVICE, now);
        assert_eq!(verify_with(Some("h.example")).unwrap(), AKID);
        assert_eq!(
            verify_with(Some("other.example")),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify_with(None),
            Err(VerifyError::SignedHeaderMissing("host".into()))
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=a"),
        );
        assert_eq!(
            check(&h, b"", SystemTime::now()),
            Err(VerifyError::MalformedAuthorization)
        );
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(
            check(&h, b"", SystemTime::now()),
            Err(VerifyError::MalformedAuthorization)
        );
        assert_eq!(
            check(&HeaderMap::new(), b"", SystemTime::now()),
            Err(VerifyError::MissingAuthorization)
        );
    }
}
