//! The CLI's `--wrapping-key xks:...` form: a key URI (or `discovery`) in
//! the argument, credentials and TLS trust from the environment.

use std::sync::Arc;
use std::time::Duration;

use envelope_core::error::KeyringError;
use envelope_core::keyring::Keyring;

use crate::keyring::{XksCredentials, XksKeyring};
use crate::transport::{Timeouts, TlsSettings};
use crate::uri::XksKeyUri;

/// The CA bundle used when `XKS_CA_FILE` is unset.
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Builds a keyring from the text after `xks:` (the `xks:` prefix itself is
/// also accepted), reading the rest of its settings from the environment.
///
/// Spec syntax:
/// - `https://HOST[:PORT][/PREFIX]#KEY_ID`: wrap with that key; unwrap EDKs
///   that name it.
/// - `discovery`: decrypt only; unwrap any XKS EDK at the proxy, key store
///   and key that the EDK records.
///
/// Environment:
///
/// | variable | meaning |
/// |---|---|
/// | `XKS_ACCESS_KEY_ID` | SigV4 access key id of the key store (required) |
/// | `XKS_SECRET_ACCESS_KEY` or `XKS_SECRET_ACCESS_KEY_FILE` | its secret (required; the file form strips one trailing newline) |
/// | `XKS_REGION` | SigV4 region (default `us-east-1`) |
/// | `XKS_CA_FILE` | PEM CA bundle that signs the proxy's certificate (default the system bundle, [`SYSTEM_CA_FILE`]) |
/// | `XKS_CLIENT_CERT_FILE`, `XKS_CLIENT_KEY_FILE` | PEM client certificate chain and key, for mTLS (both or neither) |
/// | `XKS_PRINCIPAL_ARN` | `awsPrincipalArn` sent in `requestMetadata` |
/// | `XKS_CONNECT_TIMEOUT_MS`, `XKS_REQUEST_TIMEOUT_MS` | deadlines (default 1000 and 3000) |
pub fn keyring_from_spec(spec: &str) -> Result<Arc<dyn Keyring>, KeyringError> {
    keyring_from_spec_with(spec, |name| std::env::var(name).ok())
}

/// [`keyring_from_spec`] with the variables read through `env`.
pub fn keyring_from_spec_with(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn Keyring>, KeyringError> {
    Ok(Arc::new(builder_from_spec(spec, env)?.build()?))
}

fn config(reason: String) -> KeyringError {
    KeyringError::Config(reason)
}

fn read_file(variable: &str, path: &str) -> Result<Vec<u8>, KeyringError> {
    std::fs::read(path).map_err(|e| config(format!("{variable}: cannot read {path}: {e}")))
}

fn millis(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration, KeyringError> {
    match env(name) {
        None => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| config(format!("{name} must be a positive number of milliseconds"))),
    }
}

pub(crate) fn builder_from_spec(
    spec: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<crate::XksKeyringBuilder, KeyringError> {
    let spec = spec.strip_prefix("xks:").unwrap_or(spec);
    let access_key_id =
        env("XKS_ACCESS_KEY_ID").ok_or_else(|| config("XKS_ACCESS_KEY_ID is not set".into()))?;
    let secret = match (
        env("XKS_SECRET_ACCESS_KEY"),
        env("XKS_SECRET_ACCESS_KEY_FILE"),
    ) {
        (Some(secret), None) => zeroize::Zeroizing::new(secret.into_bytes()),
        (None, Some(path)) => {
            let mut bytes =
                zeroize::Zeroizing::new(read_file("XKS_SECRET_ACCESS_KEY_FILE", &path)?);
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            bytes
        }
        (Some(_), Some(_)) => {
            return Err(config(
                "set XKS_SECRET_ACCESS_KEY or XKS_SECRET_ACCESS_KEY_FILE, not both".into(),
            ))
        }
        (None, None) => {
            return Err(config(
                "XKS_SECRET_ACCESS_KEY (or XKS_SECRET_ACCESS_KEY_FILE) is not set".into(),
            ))
        }
    };
    let credentials = XksCredentials::new(access_key_id, secret.to_vec())?;
    let ca_path = env("XKS_CA_FILE").unwrap_or_else(|| SYSTEM_CA_FILE.to_owned());
    let mut tls = TlsSettings::new(read_file("XKS_CA_FILE", &ca_path)?);
    match (env("XKS_CLIENT_CERT_FILE"), env("XKS_CLIENT_KEY_FILE")) {
        (Some(cert), Some(key)) => {
            tls = tls.with_client_certificate(
                read_file("XKS_CLIENT_CERT_FILE", &cert)?,
                read_file("XKS_CLIENT_KEY_FILE", &key)?,
            );
        }
        (None, None) => {}
        _ => {
            return Err(config(
                "set both XKS_CLIENT_CERT_FILE and XKS_CLIENT_KEY_FILE, or neither".into(),
            ))
        }
    }
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        connect: millis(&env, "XKS_CONNECT_TIMEOUT_MS", defaults.connect)?,
        request: millis(&env, "XKS_REQUEST_TIMEOUT_MS", defaults.request)?,
        idle: defaults.idle,
    };
    let mut builder = XksKeyring::builder(credentials).tls(tls).timeouts(timeouts);
    if let Some(region) = env("XKS_REGION") {
        builder = builder.region(region);
    }
    if let Some(principal) = env("XKS_PRINCIPAL_ARN") {
        builder = builder.principal_arn(principal);
    }
    if spec == "discovery" {
        Ok(builder.discovery(true))
    } else {
        Ok(builder.key(XksKeyUri::parse(spec)?))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_with(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn spec_and_environment_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let base = vec![
            ("XKS_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAA2".to_owned()),
            (
                "XKS_SECRET_ACCESS_KEY",
                "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".to_owned(),
            ),
            ("XKS_CA_FILE", ca.display().to_string()),
        ];
        let message = |spec: &str, env: &[(&str, String)]| match keyring_from_spec_with(
            spec,
            env_with(env),
        ) {
            Err(KeyringError::Config(m)) => m,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("accepted {spec}"),
        };
        assert!(message("xks:https://h/ks#k", &base[..1]).contains("XKS_SECRET_ACCESS_KEY"));
        assert!(message("xks:https://h/ks#k", &base[1..]).contains("XKS_ACCESS_KEY_ID"));
        assert!(message("xks:http://h/ks#k", &base).contains("https://"));
        assert!(message("xks:https://h/ks#k", &base).contains("CA"));
        let mut timeout = base.clone();
        timeout.push(("XKS_REQUEST_TIMEOUT_MS", "0".to_owned()));
        assert!(message("xks:https://h/ks#k", &timeout).contains("XKS_REQUEST_TIMEOUT_MS"));
        let mut half_mtls = base.clone();
        half_mtls.push(("XKS_CLIENT_CERT_FILE", "x".to_owned()));
        assert!(message("xks:discovery", &half_mtls).contains("XKS_CLIENT_KEY_FILE"));
        // No secret in any message.
        for env in [&base[..], &timeout[..], &half_mtls[..]] {
            assert!(!message("xks:https://h/ks#k", env).contains("a1a1a1"));
        }
    }
}
