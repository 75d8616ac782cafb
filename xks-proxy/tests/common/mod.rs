//! Test support: a private SoftHSM token directory, run-time certificates,
//! the real `xks-proxy` binary as a child process, and an HTTPS client that
//! signs requests with the crate's SigV4 signer.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use xks_proxy::secret::Secret;
use xks_proxy::sigv4::{Signer, XKS_SERVICE};
pub use xks_test_support::{free_addr, SoftHsm, TestCa, Usage, MODULE, USER_PIN};

pub const REGION: &str = "us-east-1";

/// Credential pairs: two for key store A, one for B, one spare for rotation.
pub const AKID_A1: &str = "AKIAAAAAAAAAAAAAAAA2";
pub const SECRET_A1: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const AKID_A2: &str = "AKIAAAAAAAAAAAAAAAA3";
pub const SECRET_A2: &str = "a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2";
pub const AKID_B: &str = "AKIABBBBBBBBBBBBBBB2";
pub const SECRET_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const AKID_NEW: &str = "AKIANEWNEWNEWNEWNEW2";
pub const SECRET_NEW: &str = "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn+/=";

pub const PREFIX_A: &str = "/ks/a";
pub const PREFIX_B: &str = "/ks/b";

/// Certificates generated at run time.
pub struct Pki {
    pub server_ca_pem: String,
    pub server_chain_pem: String,
    pub server_key_pem: String,
    pub client_ca_pem: String,
    /// Client certificate from the trusted CA with the allowed subject.
    pub client_good: (String, String),
    /// Client certificate from the trusted CA with a subject not allowed.
    pub client_bad_subject: (String, String),
    /// Client certificate from an untrusted CA with the allowed subject.
    pub client_other_ca: (String, String),
}

pub const KMS_SUBJECT: &str = "cks.kms.us-east-1.amazonaws.com";

impl Pki {
    pub fn new(rsa_server: bool) -> Pki {
        let server_ca = TestCa::new("test server CA");
        let client_ca = TestCa::new("test client CA");
        let other_ca = TestCa::new("other client CA");
        let (chain, key) = server_ca.issue("localhost", &["localhost"], Usage::Server, rsa_server);
        Pki {
            server_ca_pem: server_ca.pem(),
            server_chain_pem: chain,
            server_key_pem: key,
            client_ca_pem: client_ca.pem(),
            client_good: client_ca.issue(KMS_SUBJECT, &[], Usage::Client, false),
            client_bad_subject: client_ca.issue(
                "cks.kms.eu-west-1.example.com",
                &[],
                Usage::Client,
                false,
            ),
            client_other_ca: other_ca.issue(KMS_SUBJECT, &[], Usage::Client, false),
        }
    }
}

/// Proxy settings the tests vary.
#[derive(Clone, Debug)]
pub struct Options {
    pub mtls: bool,
    pub http2: bool,
    pub rsa_server: bool,
    pub pool_size: usize,
    pub session_wait_ms: u64,
    pub operation_timeout_ms: u64,
    pub health_cache_seconds: u64,
    pub max_body_bytes: usize,
    pub credential_poll_seconds: u64,
    pub iv_source: &'static str,
    /// Extra lines for the `[hsm]` table.
    pub hsm_extra: String,
    /// Extra lines for key store A (keys, then optional sub-tables).
    pub store_a_extra: String,
    /// Extra top-level tables (`[audit]`, `[metrics]`), appended last.
    pub tables_extra: String,
    /// Extra files to write next to the configuration: (name, contents).
    pub files: Vec<(String, String)>,
    /// `XKS_PROXY_LOG` for the child.
    pub log_level: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mtls: false,
            http2: true,
            rsa_server: false,
            pool_size: 4,
            // Generous: CI machines are slow and shared.
            session_wait_ms: 2000,
            operation_timeout_ms: 2000,
            health_cache_seconds: 1,
            max_body_bytes: 65536,
            credential_poll_seconds: 0,
            iv_source: "proxy",
            hsm_extra: String::new(),
            store_a_extra: String::new(),
            tables_extra: String::new(),
            files: Vec::new(),
            log_level: "info",
        }
    }
}

/// The value of the imported key labelled `known` in key store A. Printable
/// bytes only: softhsm2-util reads the file as is.
pub const KNOWN_KEY: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`";

/// The keys every proxy starts with: (key store, label, usage).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("a", "health", "encrypt,decrypt"),
    ("a", "k1", "encrypt,decrypt"),
    ("a", "enc-only", "encrypt"),
    ("a", "dec-only", "decrypt"),
    ("a", "no-usage", "none"),
    ("a", "disabled", "encrypt,decrypt"),
    ("b", "health", "encrypt,decrypt"),
    ("b", "kb", "encrypt,decrypt"),
];

/// A running proxy child process, killed on drop (also on panic).
pub struct Proxy {
    pub dir: tempfile::TempDir,
    pub hsm: SoftHsm,
    pub pki: Pki,
    pub opts: Options,
    pub config: PathBuf,
    pub addr: SocketAddr,
    child: Child,
    /// Credentials of key store A as currently configured.
    pub creds_a: Vec<(String, String)>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.path().join("proxy.log")) {
                // Warnings and errors first: under load the tail is all
                // request lines, and the cause sits far above it.
                eprintln!("--- proxy log: warnings and errors ---");
                for l in log
                    .lines()
                    .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                    .take(60)
                {
                    eprintln!("{l}");
                }
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- proxy log (last lines) ---");
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xks-proxy")
}

impl Proxy {
    pub fn start(opts: Options) -> Proxy {
        Proxy::try_start(opts).unwrap_or_else(|log| panic!("proxy did not start:\n{log}"))
    }

    /// Starts a proxy whose metrics listener (configured by `make`) is on a
    /// free port. The port is found by binding and releasing it, so another
    /// socket may take it first: startup is then retried on a new port.
    pub fn start_with_metrics(make: impl Fn(SocketAddr) -> Options) -> (Proxy, SocketAddr) {
        let mut log = String::new();
        for _ in 0..5 {
            let addr = free_addr();
            match Proxy::try_start(make(addr)) {
                Ok(proxy) => return (proxy, addr),
                Err(e) if e.contains("in use") => log = e,
                Err(e) => panic!("proxy did not start:\n{e}"),
            }
        }
        panic!("proxy did not start:\n{log}");
    }

    /// Starts a proxy; on failure, its log.
    pub fn try_start(opts: Options) -> Result<Proxy, String> {
        let dir = tempfile::tempdir().unwrap();
        let hsm = SoftHsm::new(dir.path());
        hsm.init_token("tokA");
        hsm.init_token("tokB");
        let pki = Pki::new(opts.rsa_server);
        let p = dir.path();
        std::fs::write(p.join("server-chain.pem"), &pki.server_chain_pem).unwrap();
        std::fs::write(p.join("server-key.pem"), &pki.server_key_pem).unwrap();
        std::fs::write(p.join("client-ca.pem"), &pki.client_ca_pem).unwrap();
        std::fs::write(p.join("server-ca.pem"), &pki.server_ca_pem).unwrap();
        std::fs::write(p.join("pin"), format!("{USER_PIN}\n")).unwrap();
        std::fs::write(p.join("secret-b"), SECRET_B).unwrap();
        for (name, contents) in &opts.files {
            std::fs::write(p.join(name), contents).unwrap();
        }
        let config = p.join("xks-proxy.toml");
        let mut proxy_cfg = ProxyConfigWriter {
            dir: p.to_path_buf(),
            opts: opts.clone(),
            softhsm_conf: hsm.conf.clone(),
        };
        let creds_a = vec![
            (AKID_A1.to_string(), SECRET_A1.to_string()),
            (AKID_A2.to_string(), SECRET_A2.to_string()),
        ];
        proxy_cfg.write(&config, &creds_a);

        // A key with a known value (a test fixture, not a secret), so tests
        // can check the proxy's ciphertexts with an independent AES-GCM.
        let known = p.join("known.key");
        std::fs::write(&known, KNOWN_KEY).unwrap();
        hsm.util([
            "--import",
            known.to_str().expect("a UTF-8 temp path"),
            "--aes",
            "--token",
            "tokA",
            "--label",
            "known",
            "--id",
            "01",
            "--pin",
            USER_PIN,
        ]);

        for (store, label, usage) in KEYS {
            admin(
                &hsm,
                &config,
                &[
                    "--key-store",
                    store,
                    "create",
                    "--label",
                    label,
                    "--usage",
                    usage,
                ],
            );
        }
        admin(
            &hsm,
            &config,
            &["--key-store", "a", "disable", "--label", "disabled"],
        );

        let log = std::fs::File::create(p.join("proxy.log")).unwrap();
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("SOFTHSM2_CONF", &hsm.conf)
            .env("XKS_PROXY_LOG", opts.log_level)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let n = reader.read_line(&mut line).unwrap_or(0);
        if n == 0 {
            let _ = child.wait();
            let mut log = String::new();
            std::fs::File::open(p.join("proxy.log"))
                .unwrap()
                .read_to_string(&mut log)
                .unwrap();
            return Err(log);
        }
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = reader.read_to_string(&mut sink);
        });
        Ok(Proxy {
            dir,
            hsm,
            pki,
            opts,
            config,
            addr,
            child,
            creds_a,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`-TERM`, `-USR1`...) to the proxy.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Waits up to `limit` for the proxy to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if std::time::Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /metrics` from the metrics listener at `addr`.
    pub fn scrape(addr: SocketAddr) -> String {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        out
    }

    /// Rewrites key store A's credentials, then sends SIGHUP if asked.
    pub fn rotate_a(&mut self, creds: Vec<(String, String)>, sighup: bool) {
        let mut w = ProxyConfigWriter {
            dir: self.dir.path().to_path_buf(),
            opts: self.opts.clone(),
            softhsm_conf: self.hsm.conf.clone(),
        };
        w.write(&self.config, &creds);
        self.creds_a = creds;
        if !sighup {
            return;
        }
        let st = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Runs an admin subcommand against this proxy's token.
    pub fn admin(&self, args: &[&str]) -> String {
        admin(&self.hsm, &self.config, args)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }

    /// A TLS client trusting this proxy's server CA.
    pub fn client(&self) -> Client {
        Client::new(self, ClientOptions::default())
    }

    pub fn client_with(&self, o: ClientOptions) -> Client {
        Client::new(self, o)
    }
}

pub fn admin(hsm: &SoftHsm, config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(["keys", "--config"])
        .arg(config)
        .args(args)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct ProxyConfigWriter {
    dir: PathBuf,
    opts: Options,
    softhsm_conf: PathBuf,
}

impl ProxyConfigWriter {
    fn write(&mut self, path: &Path, creds_a: &[(String, String)]) {
        let o = &self.opts;
        let mut creds = String::new();
        for (i, (id, secret)) in creds_a.iter().enumerate() {
            let f = format!("secret-a-{id}-{i}");
            std::fs::write(self.dir.join(&f), secret).unwrap();
            creds.push_str(&format!(
                "[[key_store.credentials]]\naccess_key_id = \"{id}\"\nsecret = {{ file = \"{f}\" }}\n"
            ));
        }
        let mtls = if o.mtls {
            format!("[tls.client_auth]\nca_bundle = \"client-ca.pem\"\nallowed_subjects = [\"{KMS_SUBJECT}\"]\n")
        } else {
            String::new()
        };
        let text = format!(
            r#"# generated by the test harness; SOFTHSM2_CONF={conf}
[server]
listen = "127.0.0.1:0"
max_body_bytes = {max_body}
http2 = {http2}
credential_poll_seconds = {poll}

[tls]
cert_chain = "server-chain.pem"
private_key = "server-key.pem"
{mtls}
[hsm]
module = "{MODULE}"
iv_source = "{iv}"
session_wait_ms = {wait}
operation_timeout_ms = {op}
{hsm_extra}

[health]
xks_proxy_fleet_size = 2
xks_proxy_vendor = "test vendor"
xks_proxy_model = "test model"
ekm_vendor = "SoftHSM"
cache_seconds = {cache}
[[health.ekm_fleet]]
id = "softhsm-1"
model = "SoftHSMv2"

[[key_store]]
name = "a"
uri_prefix = "{PREFIX_A}"
region = "{REGION}"
token_label = "tokA"
pin = {{ file = "pin" }}
pool_size = {pool}
health_key = "health"
{store_a_extra}
{creds}
[[key_store]]
name = "b"
uri_prefix = "{PREFIX_B}"
region = "{REGION}"
token_label = "tokB"
pin = {{ file = "pin" }}
pool_size = {pool}
health_key = "health"
[[key_store.credentials]]
access_key_id = "{AKID_B}"
secret = {{ file = "secret-b" }}

{tables_extra}
"#,
            hsm_extra = o.hsm_extra,
            store_a_extra = o.store_a_extra,
            tables_extra = o.tables_extra,
            conf = self.softhsm_conf.display(),
            max_body = o.max_body_bytes,
            poll = o.credential_poll_seconds,
            iv = o.iv_source,
            http2 = o.http2,
            wait = o.session_wait_ms,
            op = o.operation_timeout_ms,
            cache = o.health_cache_seconds,
            pool = o.pool_size,
        );
        // Write then rename, so a reload never sees a half-written file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

/// TLS client knobs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Restrict the offered suites (None: the provider's defaults).
    pub suites: Option<Vec<rustls::SupportedCipherSuite>>,
    /// PEM (cert, key) to present.
    pub client_cert: Option<(String, String)>,
    pub h2: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            suites: None,
            client_cert: None,
            h2: false,
        }
    }
}

/// An HTTPS client for one proxy.
#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub connector: TlsConnector,
    pub h2: bool,
}

pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// A response: status, parsed JSON (or Null), negotiated protocol version.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub json: Value,
    pub version: hyper::Version,
}

impl Client {
    pub fn new(proxy: &Proxy, o: ClientOptions) -> Client {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(s) = &o.suites {
            provider.cipher_suites = s.clone();
        }
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(proxy.pki.server_ca_pem.as_bytes()).unwrap())
            .unwrap();
        let b = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&o.versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match &o.client_cert {
            None => b.with_no_client_auth(),
            Some((cert, key)) => b
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        cfg.alpn_protocols = if o.h2 {
            vec![b"h2".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Client {
            addr: proxy.addr,
            connector: TlsConnector::from(Arc::new(cfg)),
            h2: o.h2,
        }
    }

    /// Opens a connection. Errors are returned as their Debug text so tests
    /// can look for the TLS alert.
    pub async fn connect(&self) -> Result<Sender, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let tls = self
            .connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let io = TokioIo::new(tls);
        if self.h2 {
            let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("{e:?}"))?;
            tokio::spawn(conn);
            Ok(Sender::H2(s))
        } else {
            let (s, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("{e:?}"))?;
            tokio::spawn(conn);
            Ok(Sender::H1(s))
        }
    }

    /// Writes raw bytes on a fresh TLS connection and returns what the
    /// server sends back until it closes or 2 s pass.
    pub async fn raw_http1(&self, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let mut tls = self
            .connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        // The server may answer (and close) before the whole body is sent.
        let _ = tls.write_all(bytes).await;
        let _ = tls.flush().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends one request on a fresh connection.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Resp, String> {
        let mut s = self.connect().await?;
        send_on(&mut s, req).await
    }

    /// Signs and sends a POST with key store A's first credential pair.
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        let req = SignedRequest::new(path, body.to_string().into_bytes())
            .sign(
                &signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE),
                SystemTime::now(),
            )
            .build();
        self.send(req).await.unwrap()
    }
}

pub async fn send_on(s: &mut Sender, req: Request<Full<Bytes>>) -> Result<Resp, String> {
    let resp = match s {
        Sender::H1(s) => {
            s.ready().await.map_err(|e| format!("{e:?}"))?;
            s.send_request(req).await
        }
        Sender::H2(s) => {
            s.ready().await.map_err(|e| format!("{e:?}"))?;
            s.send_request(req).await
        }
    }
    .map_err(|e| format!("{e:?}"))?;
    let status = resp.status();
    let version = resp.version();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Resp {
        status,
        json,
        version,
    })
}

pub fn signer(akid: &str, secret: &str, region: &str, service: &str) -> Signer {
    Signer::new(
        akid,
        Secret::new(secret.as_bytes().to_vec()),
        region,
        service,
    )
}

/// A request under construction: signed, then optionally tampered with.
pub struct SignedRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
    pub extra: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl SignedRequest {
    pub fn new(path: &str, body: Vec<u8>) -> SignedRequest {
        SignedRequest {
            method: "POST",
            path: path.to_string(),
            body,
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Also sign (and send) `content-type`.
    pub fn with_content_type(mut self) -> Self {
        self.extra
            .push(("content-type".into(), "application/json".into()));
        self
    }

    pub fn sign(mut self, signer: &Signer, at: SystemTime) -> Self {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let s = signer.sign(self.method, &self.path, "localhost", &extra, &self.body, at);
        self.headers = vec![
            ("x-amz-date".into(), s.x_amz_date),
            ("authorization".into(), s.authorization),
        ];
        self
    }

    pub fn build(self) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(self.method)
            .uri(&self.path)
            .header("host", "localhost");
        for (n, v) in self.extra.iter().chain(self.headers.iter()) {
            b = b.header(n.as_str(), v.as_str());
        }
        b.body(Full::new(Bytes::from(self.body))).unwrap()
    }
}

/// Minimal valid request metadata.
pub fn meta(op: &str) -> Value {
    json!({
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsOperation": op,
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/8f3c1d0e-0000-0000-0000-000000000000"
    })
}

pub fn key_path(prefix: &str, key: &str, op: &str) -> String {
    format!("{prefix}/kms/xks/v1/keys/{key}/{op}")
}

pub fn health_path(prefix: &str) -> String {
    format!("{prefix}/kms/xks/v1/health")
}

/// Checks status, error name and the error-body rules (checklist item 7).
#[track_caller]
pub fn assert_error(r: &Resp, status: u16, name: &str) {
    assert_eq!(r.status.as_u16(), status, "status for {:?}", r.json);
    assert_eq!(r.json["errorName"], name, "body {:?}", r.json);
    if let Some(m) = r.json.get("errorMessage") {
        let m = m.as_str().expect("errorMessage is a string");
        assert!(m.len() < 512, "errorMessage too long");
        assert!(
            m.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "errorMessage not printable ASCII"
        );
    }
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

/// Holds fcntl write locks on every SoftHSM object file, which makes every
/// token-key operation block: a real "HSM hangs" fault. Dropping releases.
pub struct HsmStall {
    child: Child,
}

impl HsmStall {
    pub fn start(token_dir: &Path) -> HsmStall {
        let script = "import fcntl,glob,sys\n\
            fs=[open(p,'r+') for p in glob.glob(sys.argv[1]+'/*/*.object')]\n\
            [fcntl.lockf(f, fcntl.LOCK_EX) for f in fs]\n\
            print(len(fs), flush=True)\n\
            sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(token_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the HSM stall fault test");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.trim().parse::<usize>().unwrap() > 0,
            "no object files locked"
        );
        HsmStall { child }
    }
}

impl Drop for HsmStall {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a sample line `name{labels} value` (or `name value`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub fn wait_ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}
