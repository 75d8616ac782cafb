//! The rustls server configuration.
//!
//! - Protocols: TLS 1.3 and 1.2 only.
//! - Suites: exactly the spec's list (TLS 1.3 AES-256-GCM and
//!   ChaCha20-Poly1305; TLS 1.2 ECDHE-RSA/ECDSA-AES256-GCM-SHA384).
//! - ALPN: `h2` (when enabled) and `http/1.1`.
//! - mTLS: the client chain must verify against the configured CA bundle and
//!   its subject CN must be on the allow-list. Any rejection is reported to
//!   rustls as a general error, which rustls turns into a `handshake_failure`
//!   alert; rustls's own mapping would send `unknown_ca` or
//!   `certificate_unknown`.
//!
//! A client that sends no certificate at all is refused by rustls itself
//! before any verifier is consulted, with the `certificate_required` alert
//! (RFC 8446 §4.4.2.4); rustls offers no hook to change that alert.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use crate::config::TlsConfig;

/// A TLS configuration error.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what} from {path}: {detail}")]
    Pem {
        /// What was being loaded.
        what: &'static str,
        /// The file.
        path: String,
        /// The parser's error.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA bundle could not build a verifier.
    #[error("client CA bundle rejected: {0}")]
    Verifier(String),
}

/// The crypto provider restricted to the spec's cipher suites.
pub fn provider() -> CryptoProvider {
    use aws_lc_rs::cipher_suite as cs;
    let mut p = aws_lc_rs::default_provider();
    p.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    p
}

fn pem_err(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        what,
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

fn load_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_err(what, path, "no certificates"));
    }
    Ok(certs)
}

/// Builds the server configuration. Relative paths resolve against `base`.
pub fn server_config(
    cfg: &TlsConfig,
    base: &Path,
    http2: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider());
    let chain_path = base.join(&cfg.cert_chain);
    let key_path = base.join(&cfg.private_key);
    let chain = load_certs("certificate chain", &chain_path)?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| pem_err("private key", &key_path, e))?;

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match &cfg.client_auth {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let ca_path = base.join(&ca.ca_bundle);
            let mut roots = RootCertStore::empty();
            for c in load_certs("client CA bundle", &ca_path)? {
                roots.add(c)?;
            }
            let inner =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(Arc::new(StrictClientVerifier {
                inner,
                allowed_subjects: ca.allowed_subjects.clone(),
            }))
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(Arc::new(config))
}

/// Wraps the WebPKI verifier: adds the subject allow-list and turns every
/// rejection into a general error (hence a `handshake_failure` alert).
#[derive(Debug)]
struct StrictClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed_subjects: Vec<String>,
}

fn rejected(reason: &str) -> rustls::Error {
    tracing::warn!(reason, "client certificate rejected");
    rustls::Error::General("client certificate rejected".into())
}

impl ClientCertVerifier for StrictClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| rejected(&e.to_string()))?;
        if !self.allowed_subjects.is_empty() {
            let names = subject_common_names(end_entity.as_ref()).unwrap_or_default();
            if !names.iter().any(|n| self.allowed_subjects.contains(n)) {
                return Err(rejected(&format!("subject {names:?} is not allowed")));
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls12_signature(message, cert, dss)
            .map_err(|e| rejected(&e.to_string()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verify_tls13_signature(message, cert, dss)
            .map_err(|e| rejected(&e.to_string()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Reads one DER TLV: `(tag, contents, rest)`.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject's common names (OID 2.5.4.3) of a DER certificate. The chain
/// has already been verified, so this only has to read, not distrust, it.
pub fn subject_common_names(cert_der: &[u8]) -> Option<Vec<String>> {
    const SEQ: u8 = 0x30;
    let (SEQ, cert, _) = der_tlv(cert_der)? else {
        return None;
    };
    let (SEQ, tbs, _) = der_tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // Optional [0] version, then serial, signature, issuer, validity, subject.
    let (tag, _, r) = der_tlv(rest)?;
    if tag == 0xa0 {
        rest = r;
    }
    for _ in 0..4 {
        rest = der_tlv(rest)?.2;
    }
    let (SEQ, mut rdns, _) = der_tlv(rest)? else {
        return None;
    };
    let mut names = Vec::new();
    while !rdns.is_empty() {
        let (_, mut set, r) = der_tlv(rdns)?;
        rdns = r;
        while !set.is_empty() {
            let (_, atv, r) = der_tlv(set)?;
            set = r;
            let (_, oid, value) = der_tlv(atv)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, v, _) = der_tlv(value)?;
                names.push(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_name() {
        let mut params = rcgen::CertificateParams::new(vec!["x.example".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Org");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cks.kms.us-east-1.amazonaws.com");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject_common_names(cert.der()).unwrap(),
            vec!["cks.kms.us-east-1.amazonaws.com".to_string()]
        );
        assert!(subject_common_names(&[0x30, 0x05, 0x01]).is_none());
        assert!(subject_common_names(&[]).is_none());
    }

    #[test]
    fn only_spec_suites() {
        assert_eq!(provider().cipher_suites.len(), 4);
    }
}
