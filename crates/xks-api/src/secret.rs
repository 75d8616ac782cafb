//! Secret values: PINs and SigV4 secret keys (loaded from a file or the
//! environment) and XKS plaintexts. All are zeroized on drop and redacted
//! in `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

/// Where a secret is read from. The TOML form is `{ file = "..." }` or
/// `{ env = "..." }`; inline secrets are deliberately not supported so that
/// the configuration file can be world-readable and committed.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// Read the whole file; one trailing newline is stripped.
    File(PathBuf),
    /// Read an environment variable.
    Env(String),
}

/// Failure to load a secret. Never contains the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The variable is unset or not UTF-8.
    #[error("environment variable {0} is unset or not valid UTF-8")]
    Env(String),
    /// The secret is empty after trimming the trailing newline.
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret now. Relative file paths are taken relative to `base`
    /// (the directory of the configuration file).
    pub fn load(&self, base: &Path) -> Result<Secret, SecretError> {
        let (mut value, origin) = match self {
            SecretSource::File(p) => {
                let path = base.join(p);
                let bytes = std::fs::read(&path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                (Zeroizing::new(bytes), path.display().to_string())
            }
            SecretSource::Env(name) => {
                let v = std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?;
                (Zeroizing::new(v.into_bytes()), format!("${name}"))
            }
        };
        // Files written by `echo` end in a newline that is not part of the secret.
        while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            value.pop();
        }
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret(value))
    }
}

/// A secret byte string: zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps bytes as a secret.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// The secret bytes; callers must not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8, if it is (PKCS#11 PINs must be).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Text that carries a secret, such as the base64 `plaintext` of an XKS
/// encrypt request or decrypt response: zeroized on drop, redacted in
/// `Debug`, and a plain JSON string on the wire.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps text as a secret.
    pub fn new(text: String) -> Self {
        SecretText(Zeroizing::new(text))
    }

    /// The text; callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for SecretText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretText::new)
    }
}

/// Serializes `value` to JSON in a buffer sized exactly beforehand and
/// wiped on drop, for bodies that carry a [`SecretText`]: a buffer that
/// grew while being written would leave copies of the secret behind in
/// the memory it gave back.
pub fn secret_json<T: serde::Serialize>(value: &T) -> serde_json::Result<Zeroizing<Vec<u8>>> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)?;
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *out, value)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "<redacted>");
        let t = SecretText::new("aHVudGVyMg==".into());
        assert_eq!(format!("{t:?}"), "<redacted>");
    }

    #[test]
    fn secret_text_is_a_plain_json_string() {
        let t: SecretText = serde_json::from_str("\"aHVudGVyMg==\"").unwrap();
        assert_eq!(t.expose(), "aHVudGVyMg==");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"aHVudGVyMg==\"");
        let body = secret_json(&t).unwrap();
        assert_eq!(&body[..], b"\"aHVudGVyMg==\"");
        assert_eq!(body.capacity(), body.len(), "sized exactly, never grown");
    }

    #[test]
    fn file_secret_strips_newline_and_rejects_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "abc\n").unwrap();
        std::fs::write(dir.path().join("e"), "\n").unwrap();
        let s = SecretSource::File("s".into()).load(dir.path()).unwrap();
        assert_eq!(s.expose(), b"abc");
        assert!(matches!(
            SecretSource::File("e".into()).load(dir.path()),
            Err(SecretError::Empty(_))
        ));
        assert!(SecretSource::File("missing".into())
            .load(dir.path())
            .is_err());
    }
}
