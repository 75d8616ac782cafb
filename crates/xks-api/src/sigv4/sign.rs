//! A client-side SigV4 signer for XKS requests.

use std::time::SystemTime;

use aws_lc_rs::digest;

use crate::secret::Secret;

use super::{time, CanonicalRequest, DayKey, Scope};

/// Signs requests with one credential pair for one region and service.
///
/// It keeps the day's signing key ([`DayKey`]), so a request costs one
/// HMAC rather than five.
#[derive(Clone, Debug)]
pub struct Signer {
    access_key_id: String,
    secret: Secret,
    region: String,
    service: String,
    day_key: DayKey,
}

/// The headers a signed request must carry, in addition to the ones signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRequestHeaders {
    /// Value of `x-amz-date`.
    pub x_amz_date: String,
    /// Value of `authorization`.
    pub authorization: String,
}

impl Signer {
    /// A signer for `service` (normally [`super::XKS_SERVICE`]) in `region`.
    pub fn new(access_key_id: &str, secret: Secret, region: &str, service: &str) -> Self {
        Signer {
            access_key_id: access_key_id.to_owned(),
            secret,
            region: region.to_owned(),
            service: service.to_owned(),
            day_key: DayKey::new(),
        }
    }

    /// Signs a request at time `at`.
    ///
    /// `path_and_query` is the request target exactly as sent; `host` the
    /// `Host` header value. `extra_headers` are further headers to sign (for
    /// example `content-type`); they must be sent unchanged. `host` and
    /// `x-amz-date` are always signed, which is what KMS itself signs.
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        host: &str,
        extra_headers: &[(&str, &str)],
        body: &[u8],
        at: SystemTime,
    ) -> SignedRequestHeaders {
        let amz_date = time::format_amz_date(at);
        let date = &amz_date[..8];
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let mut headers: Vec<(String, &str)> =
            vec![("host".into(), host), ("x-amz-date".into(), &amz_date)];
        for (name, value) in extra_headers {
            headers.push((name.to_ascii_lowercase(), value));
        }
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let signed = headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let mut creq =
            CanonicalRequest::start(digest::Context::new(&digest::SHA256), method, path, query);
        for (name, value) in &headers {
            creq.header(name, [*value]);
        }
        let scope = Scope {
            date,
            region: &self.region,
            service: &self.service,
        };
        let mac = self.day_key.context(self.secret.expose(), scope);
        let sig = creq.sign(&signed, body, &amz_date, scope, mac);
        SignedRequestHeaders {
            authorization: format!(
                "{} Credential={}/{date}/{}/{}/aws4_request, SignedHeaders={signed}, Signature={}",
                super::ALGORITHM,
                self.access_key_id,
                self.region,
                self.service,
                hex::encode(sig)
            ),
            x_amz_date: amz_date,
        }
    }
}
