//! The key URI: `https://HOST[:PORT][/PREFIX]#KEY_ID`, which names one key
//! in one XKS key store and is what an EDK's provider info records.
//!
//! The canonical form (always written with the port, so that two spellings
//! of one key compare equal) is `https://HOST:PORT/PREFIX#KEY_ID`, or
//! `https://HOST:PORT#KEY_ID` when the key store has no prefix.

use std::fmt;

use envelope_core::error::KeyringError;

/// The longest key id the XKS API allows.
pub const MAX_KEY_ID_LEN: usize = 128;
/// The longest URI path (`PREFIX/kms/xks/v1/keys/ID/decrypt`) the API allows.
const MAX_PATH_LEN: usize = 128;
/// The longest whole URI the API allows.
const MAX_URI_LEN: usize = 256;

/// One key of one XKS key store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XksKeyUri {
    host: String,
    port: u16,
    prefix: String,
    key_id: String,
}

fn invalid(uri: &str, reason: &str) -> KeyringError {
    KeyringError::Config(format!("invalid XKS key URI {uri:?}: {reason}"))
}

impl XksKeyUri {
    /// Parses `https://HOST[:PORT][/PREFIX]#KEY_ID` (port 443 by default).
    ///
    /// HOST is a DNS name or an IPv4 address (the proxy's certificate must
    /// name it); PREFIX is the key store's URI prefix, from
    /// `[A-Za-z0-9/_-]`; KEY_ID is from `[A-Za-z0-9._-]`, at most 128.
    pub fn parse(uri: &str) -> Result<Self, KeyringError> {
        let rest = uri
            .strip_prefix("https://")
            .ok_or_else(|| invalid(uri, "it must start with https://"))?;
        let (location, key_id) = rest
            .split_once('#')
            .ok_or_else(|| invalid(uri, "it must end with #KEY_ID"))?;
        let (authority, prefix) = match location.find('/') {
            Some(at) => location.split_at(at),
            None => (location, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| invalid(uri, "the port must be a number from 1 to 65535"))?,
            ),
            None => (authority, 443),
        };
        Self::new(host, port, prefix, key_id).map_err(|reason| invalid(uri, reason))
    }

    /// A key URI from its parts. `prefix` is empty or starts with `/`.
    pub fn from_parts(
        host: &str,
        port: u16,
        prefix: &str,
        key_id: &str,
    ) -> Result<Self, KeyringError> {
        Self::new(host, port, prefix, key_id).map_err(|reason| {
            KeyringError::Config(format!(
                "invalid XKS key {host}:{port}{prefix}#{key_id}: {reason}"
            ))
        })
    }

    fn new(host: &str, port: u16, prefix: &str, key_id: &str) -> Result<Self, &'static str> {
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err("the host must be a DNS name or an IPv4 address");
        }
        if port == 0 {
            return Err("the port must be from 1 to 65535");
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty()
            && (!prefix.starts_with('/')
                || !prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-')))
        {
            return Err("the URI prefix may only hold [A-Za-z0-9/_-] and must start with /");
        }
        if key_id.is_empty()
            || key_id.len() > MAX_KEY_ID_LEN
            || !key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err("the key id must be 1 to 128 characters from [A-Za-z0-9._-]");
        }
        let uri = Self {
            host: host.to_ascii_lowercase(),
            port,
            prefix: prefix.to_owned(),
            key_id: key_id.to_owned(),
        };
        if uri.operation_path("decrypt").len() > MAX_PATH_LEN {
            return Err("the request path would be longer than the 128 characters XKS allows");
        }
        if uri.operation_path("decrypt").len() + uri.authority().len() + "https://".len()
            > MAX_URI_LEN
        {
            return Err("the request URI would be longer than the 256 characters XKS allows");
        }
        Ok(uri)
    }

    /// The host name (lower case).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The key store's URI prefix (empty or starting with `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The XKS key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `host` or `host:port`, as sent in the `Host` header and signed.
    pub fn authority(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `https://host:port/prefix`: the key store, without the key.
    pub fn endpoint(&self) -> String {
        format!("https://{}:{}{}", self.host, self.port, self.prefix)
    }

    /// The request path of `operation` (`encrypt` or `decrypt`) on this key.
    pub fn operation_path(&self, operation: &str) -> String {
        format!(
            "{}/kms/xks/v1/keys/{}/{operation}",
            self.prefix, self.key_id
        )
    }
}

impl fmt::Display for XksKeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.endpoint(), self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalizes() {
        let uri = XksKeyUri::parse("https://Proxy.example.com/ks/a/#k1").unwrap();
        assert_eq!(uri.to_string(), "https://proxy.example.com:443/ks/a#k1");
        assert_eq!(uri.authority(), "proxy.example.com");
        assert_eq!(
            uri.operation_path("encrypt"),
            "/ks/a/kms/xks/v1/keys/k1/encrypt"
        );
        let again = XksKeyUri::parse(&uri.to_string()).unwrap();
        assert_eq!(again, uri);

        let bare = XksKeyUri::parse("https://localhost:8443#key.1").unwrap();
        assert_eq!(bare.to_string(), "https://localhost:8443#key.1");
        assert_eq!(bare.authority(), "localhost:8443");
        assert_eq!(
            bare.operation_path("decrypt"),
            "/kms/xks/v1/keys/key.1/decrypt"
        );
    }

    #[test]
    fn rejects_bad_uris() {
        for bad in [
            "http://h/ks#k",
            "https://h/ks",
            "https://h:0/ks#k",
            "https://h:99999/ks#k",
            "https://h/ks#",
            "https://h/k s#k",
            "https://h/ks#k/1",
            "https://h?x/ks#k",
            "https://user@h/ks#k",
            "https:///ks#k",
        ] {
            assert!(XksKeyUri::parse(bad).is_err(), "{bad} accepted");
        }
        let long_id = "k".repeat(129);
        assert!(XksKeyUri::parse(&format!("https://h#{long_id}")).is_err());
        let long_prefix = format!("/{}", "p".repeat(120));
        assert!(XksKeyUri::parse(&format!("https://h{long_prefix}#k")).is_err());
    }
}
