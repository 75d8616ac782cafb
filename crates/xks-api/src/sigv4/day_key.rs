//! The day's SigV4 signing key, kept between requests.
//!
//! A signing key is four chained HMACs over the secret, the date, the
//! region and the service, and of those only the date changes, once a day.
//! Deriving it for every request cost the proxy about 3 us of CPU per
//! request under load (2.6 % of its profile), and the load client as much.
//! So the client-side [`super::Signer`] and each server-side credential
//! keep the current one, as the AWS SDKs do.

use std::sync::{Mutex, PoisonError};

use aws_lc_rs::hmac;

use super::{signing_key, Scope};

/// The signing key last derived from one secret, with the scope it was
/// derived for. Belongs next to that secret: it is keyed by scope only.
pub struct DayKey {
    slot: Mutex<Option<Cached>>,
}

struct Cached {
    date: String,
    region: String,
    service: String,
    /// Wiped by aws-lc when dropped.
    key: hmac::Key,
}

impl Cached {
    fn is_for(&self, scope: Scope<'_>) -> bool {
        self.date == scope.date && self.region == scope.region && self.service == scope.service
    }
}

impl DayKey {
    /// An empty cache; the first signature derives the key.
    pub fn new() -> Self {
        DayKey {
            slot: Mutex::new(None),
        }
    }

    /// An HMAC context under the signing key of `secret` for `scope`,
    /// ready for the string to sign. The key is derived again only when
    /// the scope differs from the last one.
    pub(crate) fn context(&self, secret: &[u8], scope: Scope<'_>) -> hmac::Context {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|c| c.is_for(scope)) {
            *slot = None;
        }
        let cached = slot.get_or_insert_with(|| Cached {
            date: scope.date.to_owned(),
            region: scope.region.to_owned(),
            service: scope.service.to_owned(),
            key: signing_key(secret, scope),
        });
        hmac::Context::with_key(&cached.key)
    }
}

impl Default for DayKey {
    fn default() -> Self {
        DayKey::new()
    }
}

/// A copy starts empty: the key is cheap to derive again, and a copy made
/// for another secret must not carry this one's key.
impl Clone for DayKey {
    fn clone(&self) -> Self {
        DayKey::new()
    }
}

/// Shows the scope, never the key.
impl std::fmt::Debug for DayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("DayKey")
            .field(
                "scope",
                &slot
                    .as_ref()
                    .map(|c| format!("{}/{}/{}", c.date, c.region, c.service)),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference_signature;
    use super::*;

    const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn agrees_with_a_fresh_derivation_as_the_scope_changes() {
        let day_key = DayKey::new();
        for (date, region, service) in [
            ("20150830", "us-east-1", "service"),
            ("20150830", "us-east-1", "service"),
            ("20150831", "us-east-1", "service"),
            ("20150831", "eu-west-1", "service"),
            ("20150831", "eu-west-1", "kms-xks-proxy"),
            ("20150830", "us-east-1", "service"),
        ] {
            let sts = format!("string to sign on {date} in {region} for {service}");
            let scope = Scope {
                date,
                region,
                service,
            };
            let mut mac = day_key.context(SECRET, scope);
            mac.update(sts.as_bytes());
            assert_eq!(
                mac.sign().as_ref(),
                reference_signature(SECRET, date, region, service, sts.as_bytes()),
                "{date} {region} {service}"
            );
        }
    }

    #[test]
    fn debug_shows_the_scope_but_not_the_key() {
        let day_key = DayKey::new();
        let scope = Scope {
            date: "20150830",
            region: "us-east-1",
            service: "service",
        };
        let _ = day_key.context(SECRET, scope);
        let shown = format!("{day_key:?}");
        assert!(shown.contains("20150830/us-east-1/service"), "{shown}");
        assert!(!shown.contains("key"), "{shown}");
    }
}
