//! HTTPS to the proxy: rustls (aws-lc-rs) with a configured CA and an
//! optional client certificate, hyper 1 over HTTP/1.1 with a keep-alive
//! connection pool, and a hard deadline on every call.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use envelope_core::error::KeyringError;

/// Responses larger than this are not XKS answers (the largest is a
/// decrypt's base64 plaintext of a few dozen bytes, or an error body).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// TLS trust and identity for the connection to the proxy.
#[derive(Clone, Default)]
pub struct TlsSettings {
    ca_pem: Vec<u8>,
    client_identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field(
                "client_certificate",
                &self.client_identity.as_ref().map(|_| "<key redacted>"),
            )
            .finish()
    }
}

impl TlsSettings {
    /// Trust the CA certificates in `pem` (one or more PEM certificates).
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            client_identity: None,
        }
    }

    /// Presents this certificate chain (PEM, leaf first) and private key
    /// (PEM, PKCS#8, SEC1 or PKCS#1) for mTLS. The key bytes are zeroized
    /// on drop.
    pub fn with_client_certificate(
        mut self,
        cert_chain_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.client_identity = Some((cert_chain_pem.into(), Zeroizing::new(key_pem.into())));
        self
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, KeyringError> {
        let config = |reason: String| KeyringError::Config(format!("XKS TLS: {reason}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca_pem) {
            let cert = cert.map_err(|e| config(format!("cannot read the CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| config(format!("unusable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(config("no CA certificate given".into()));
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config(e.to_string()))?
        .with_root_certificates(roots);
        match &self.client_identity {
            None => Ok(builder.with_no_client_auth()),
            Some((chain_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(chain_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config(format!("cannot read the client certificate: {e}")))?;
                if chain.is_empty() {
                    return Err(config(
                        "the client certificate PEM holds no certificate".into(),
                    ));
                }
                // The error of a key that does not parse never quotes the key.
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|_| config("cannot read the client private key PEM".into()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| config(format!("unusable client certificate or key: {e}")))
            }
        }
    }
}

/// Connection and request deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to open a TCP connection (default 1 s).
    pub connect: Duration,
    /// Time allowed for a whole call: connecting, TLS, the request, the
    /// response and the one retry on a broken pooled connection
    /// (default 3 s). No call takes longer.
    pub request: Duration,
    /// How long an idle connection stays in the pool (default 30 s).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(3),
            idle: Duration::from_secs(30),
        }
    }
}

/// A transport failure (the proxy's own error answers are not failures here).
#[derive(Debug)]
pub(crate) enum TransportError {
    /// The request deadline expired.
    Timeout(Duration),
    /// Connecting, TLS or I/O failed.
    Network(String),
}

/// A pooled HTTPS client.
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeouts: Timeouts,
}

impl Transport {
    pub(crate) fn new(tls: &TlsSettings, timeouts: Timeouts) -> Result<Self, KeyringError> {
        if timeouts.connect.is_zero() || timeouts.request.is_zero() {
            return Err(KeyringError::Config("XKS timeouts must be positive".into()));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeouts.connect));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config()?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(timeouts.idle)
            .build(https);
        Ok(Self { client, timeouts })
    }

    /// POSTs `body` to `uri` with `headers`, within the request deadline;
    /// returns the status and the body (wiped on drop: a decrypt's answer
    /// holds a data key).
    pub(crate) async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Zeroizing<Vec<u8>>,
    ) -> Result<(u16, Zeroizing<Vec<u8>>), TransportError> {
        // The body may hold a data key: its buffer is zeroized when hyper
        // drops the last reference.
        let body = Bytes::from_owner(body);
        let call = async {
            match self.attempt(uri, headers, body.clone()).await {
                // A pooled connection the proxy closed (a restart, an idle
                // timeout) fails once; a fresh connection is worth one more
                // try within the same deadline. Encrypt and decrypt are safe
                // to repeat.
                Err(TransportError::Network(_)) => self.attempt(uri, headers, body).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.timeouts.request, call).await {
            Ok(result) => result.map(|(status, body)| (status, Zeroizing::new(Vec::from(body)))),
            Err(_) => Err(TransportError::Timeout(self.timeouts.request)),
        }
    }

    async fn attempt(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<(u16, Bytes), TransportError> {
        let mut request = hyper::Request::builder().method("POST").uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| TransportError::Network(format!("cannot build the request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| TransportError::Network(describe(&e)))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| TransportError::Network(format!("reading the response: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The error and its sources, one line (hyper's top-level message alone
/// says little: "client error (Connect)").
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
