//! Fuzzes the XKS proxy's request front: routing, SigV4 verification and
//! JSON parsing into typed requests (everything before the HSM), through
//! `xks_proxy::app::check_request`. Any input must give a typed error or a
//! parsed request, never a panic.
//!
//! Input layout: `flags ‖ request-target ‖ 0x00 ‖ headers ‖ 0x00 ‖ body`,
//! headers being `name:value` lines. When bit 0 of `flags` is set, the
//! target signs the request itself with the crate's `Signer`, so the fuzzer
//! also reaches the JSON parsers; such a request must then never fail SigV4
//! (a signer/verifier disagreement is a bug, and aborts).
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run xks_request -- -max_total_time=600`

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use hyper::header::{HeaderName, HeaderValue};
use hyper::{HeaderMap, Uri};
use libfuzzer_sys::fuzz_target;
use xks_proxy::api::ErrorName;
use xks_proxy::app::check_request;
use xks_proxy::config::Credential;
use xks_proxy::secret::Secret;
use xks_proxy::sigv4::{Signer, XKS_SERVICE};

const AKID: &str = "AKIAAAAAAAAAAAAAAAA2";
const SECRET: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const REGION: &str = "us-east-1";
const METHODS: [&str; 4] = ["POST", "GET", "PUT", "DELETE"];

fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (target, rest) = split_nul(rest);
    let (header_text, body) = split_nul(rest);
    // hyper hands the proxy a parsed URI; anything it cannot parse never
    // reaches the application.
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let sign = flags & 1 == 1;
    let method = METHODS[usize::from((flags >> 1) & 3)];
    let mut headers = HeaderMap::new();
    for line in header_text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 1..]),
        ) else {
            continue;
        };
        // A self-signed request controls the headers SigV4 always signs.
        if sign && matches!(name.as_str(), "host" | "x-amz-date" | "authorization") {
            continue;
        }
        headers.append(name, value);
    }
    let now = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    if sign {
        let signer = Signer::new(
            AKID,
            Secret::new(SECRET.as_bytes().to_vec()),
            REGION,
            XKS_SERVICE,
        );
        let s = signer.sign(method, path_and_query, "localhost", &[], body, now);
        headers.insert("host", HeaderValue::from_static("localhost"));
        for (name, value) in [
            ("x-amz-date", s.x_amz_date),
            ("authorization", s.authorization),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
    }
    let creds = [Credential::new(
        AKID.into(),
        Secret::new(SECRET.as_bytes().to_vec()),
    )];
    let result = check_request(
        method,
        uri.path(),
        uri.query().unwrap_or(""),
        &headers,
        None,
        body,
        &creds,
        REGION,
        now,
    );
    if sign {
        if let Err(e) = &result {
            assert_ne!(
                e.name,
                ErrorName::AuthenticationFailedException,
                "a request signed by Signer failed verification: {e:?}"
            );
        }
    }
});
