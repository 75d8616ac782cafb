//! Parsing the request path into a key store prefix and an operation.

use crate::error::{ErrorName, XksError};

/// The path segment that separates the key store prefix from the operation.
pub const API_ROOT: &str = "/kms/xks/v1";
/// Longest accepted key id.
pub const MAX_KEY_ID_LEN: usize = 128;
/// Longest accepted URI.
pub const MAX_URI_LEN: usize = 256;

/// An XKS operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `/health`.
    Health,
    /// `/keys/{id}/metadata`.
    Metadata,
    /// `/keys/{id}/encrypt`.
    Encrypt,
    /// `/keys/{id}/decrypt`.
    Decrypt,
}

impl Operation {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Health => "health",
            Operation::Metadata => "metadata",
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
        }
    }
}

/// A parsed path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route<'a> {
    /// The key store prefix (possibly empty).
    pub prefix: &'a str,
    /// The operation.
    pub operation: Operation,
    /// The key id, for key operations.
    pub key_id: Option<&'a str>,
}

fn not_found(msg: &str) -> XksError {
    XksError::new(ErrorName::InvalidUriPathException, msg)
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Splits `<prefix>/kms/xks/v1/<operation>`. Unknown shapes are
/// `InvalidUriPathException`; a malformed key id is `ValidationException`.
pub fn parse(path: &str) -> Result<Route<'_>, XksError> {
    if path.len() > MAX_URI_LEN {
        return Err(not_found("URI too long"));
    }
    let Some(at) = path.find(API_ROOT) else {
        return Err(not_found("path does not contain /kms/xks/v1"));
    };
    let prefix = &path[..at];
    let rest = &path[at + API_ROOT.len()..];
    let segments: Vec<&str> = rest.split('/').collect();
    let (operation, key_id) = match segments.as_slice() {
        ["", "health"] => (Operation::Health, None),
        ["", "keys", id, op] => {
            let op = match *op {
                "metadata" => Operation::Metadata,
                "encrypt" => Operation::Encrypt,
                "decrypt" => Operation::Decrypt,
                _ => return Err(not_found("unknown key operation")),
            };
            if !valid_key_id(id) {
                return Err(XksError::validation(
                    "key id must be 1-128 characters from [A-Za-z0-9._-]",
                ));
            }
            (op, Some(*id))
        }
        _ => return Err(not_found("unknown XKS path")),
    };
    Ok(Route {
        prefix,
        operation,
        key_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_routes() {
        let r = parse("/a/b/kms/xks/v1/keys/k-1.x/encrypt").unwrap();
        assert_eq!(r.prefix, "/a/b");
        assert_eq!(r.operation, Operation::Encrypt);
        assert_eq!(r.key_id, Some("k-1.x"));
        let r = parse("/kms/xks/v1/health").unwrap();
        assert_eq!((r.prefix, r.operation), ("", Operation::Health));
    }

    #[test]
    fn rejects_bad_paths() {
        let name = |p: &str| parse(p).unwrap_err().name;
        assert_eq!(
            name("/a/kms/xks/v1/keys/k/rotate"),
            ErrorName::InvalidUriPathException
        );
        assert_eq!(
            name("/a/kms/xks/v1/health/"),
            ErrorName::InvalidUriPathException
        );
        assert_eq!(
            name("/a/kms/xks/v2/health"),
            ErrorName::InvalidUriPathException
        );
        assert_eq!(
            name("/a/kms/xks/v1/keys/k$/encrypt"),
            ErrorName::ValidationException
        );
        let long = format!("/kms/xks/v1/keys/{}/encrypt", "k".repeat(129));
        assert_eq!(name(&long), ErrorName::ValidationException);
    }
}
