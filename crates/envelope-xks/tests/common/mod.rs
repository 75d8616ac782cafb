//! Test support: the real `xks-proxy` binary on a fixed 127.0.0.1 port (so
//! it can be restarted in place), over TLS with mTLS, on a private SoftHSM
//! token; certificates generated at run time.
//!
//! The binary: `$XKS_PROXY_BIN` if set, else `cargo build -p xks-proxy
//! --bin xks-proxy` (same profile as this test) is run once per test
//! binary and `target/<profile>/xks-proxy` is used.
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use envelope_core::error::Error;
use envelope_xks::{Timeouts, TlsSettings, XksCredentials, XksKeyUri, XksKeyring};
use envelope_xks::{XksErrorKind, XksKeyError};
pub use xks_test_support::{free_addr, SoftHsm, TestCa, Usage, MODULE, USER_PIN};

pub const REGION: &str = "us-east-1";
pub const AKID: &str = "AKIAAAAAAAAAAAAAAAA2";
pub const SECRET: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
pub const PREFIX: &str = "/ks/a";
pub const CLIENT_SUBJECT: &str = "cks.kms.us-east-1.amazonaws.com";
/// Keys every proxy starts with.
pub const KEYS: &[&str] = &["health", "k1", "k2", "k3"];

/// The proxy binary (built once per test binary unless `$XKS_PROXY_BIN`).
pub fn proxy_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("XKS_PROXY_BIN") {
            return PathBuf::from(bin);
        }
        // target/<profile>/deps/<test> -> target/<profile>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .args(["build", "-p", "xks-proxy", "--bin", "xks-proxy"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build -p xks-proxy");
        assert!(status.success(), "cargo build -p xks-proxy failed");
        let bin = profile_dir.join("xks-proxy");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
}

/// A proxy child process on a fixed port; killed on drop (also on panic).
pub struct Proxy {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub config: PathBuf,
    pub softhsm_conf: PathBuf,
    pub server_ca_pem: String,
    pub client_cert: (String, String),
    child: Option<Child>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- proxy log (last lines) ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl Proxy {
    /// A token with [`KEYS`], a config with mTLS, and the proxy started.
    pub fn start() -> Proxy {
        proxy_bin();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let hsm = SoftHsm::new(p);
        hsm.init_token("tokA");
        let softhsm_conf = hsm.conf;

        let server_ca = TestCa::new("envelope-xks test server CA");
        let client_ca = TestCa::new("envelope-xks test client CA");
        let (chain, key) = server_ca.issue("localhost", &["localhost"], Usage::Server, false);
        let client_cert = client_ca.issue(CLIENT_SUBJECT, &[], Usage::Client, false);
        std::fs::write(p.join("server-chain.pem"), chain).unwrap();
        std::fs::write(p.join("server-key.pem"), key).unwrap();
        std::fs::write(p.join("client-ca.pem"), client_ca.pem()).unwrap();
        std::fs::write(p.join("pin"), format!("{USER_PIN}\n")).unwrap();
        std::fs::write(p.join("secret-a"), SECRET).unwrap();
        let port = free_addr().port();
        let config = p.join("xks-proxy.toml");
        std::fs::write(
            &config,
            format!(
                r#"[server]
listen = "127.0.0.1:{port}"
max_body_bytes = 65536
http2 = false
credential_poll_seconds = 0

[tls]
cert_chain = "server-chain.pem"
private_key = "server-key.pem"
[tls.client_auth]
ca_bundle = "client-ca.pem"
allowed_subjects = ["{CLIENT_SUBJECT}"]

[hsm]
module = "{MODULE}"
iv_source = "proxy"
session_wait_ms = 2000
operation_timeout_ms = 2000

[health]
xks_proxy_fleet_size = 1
xks_proxy_vendor = "test vendor"
xks_proxy_model = "test model"
ekm_vendor = "SoftHSM"
cache_seconds = 1
[[health.ekm_fleet]]
id = "softhsm-1"
model = "SoftHSMv2"

[[key_store]]
name = "a"
uri_prefix = "{PREFIX}"
region = "{REGION}"
token_label = "tokA"
pin = {{ file = "pin" }}
pool_size = 4
health_key = "health"
[[key_store.credentials]]
access_key_id = "{AKID}"
secret = {{ file = "secret-a" }}
"#
            ),
        )
        .unwrap();
        let mut proxy = Proxy {
            dir,
            port,
            config,
            softhsm_conf,
            server_ca_pem: server_ca.pem(),
            client_cert,
            child: None,
        };
        for label in KEYS {
            proxy.admin(&["create", "--label", label]);
        }
        proxy.launch();
        proxy
    }

    /// Starts the process and waits for `listening on`.
    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "proxy already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("proxy.log"))
            .unwrap();
        let mut child = Command::new(proxy_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .env("XKS_PROXY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap_or(0);
        if n == 0 || !line.starts_with("listening on ") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "proxy did not start ({line:?}):\n{}",
                std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
            );
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = reader.read_to_string(&mut sink);
        });
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL: an abrupt outage, not a graceful stop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs `xks-proxy keys --key-store a ARGS`.
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(proxy_bin())
            .args(["keys", "--config"])
            .arg(&self.config)
            .args(["--key-store", "a"])
            .args(args)
            .env("SOFTHSM2_CONF", &self.softhsm_conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "admin {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `https://localhost:PORT/ks/a#KEY`.
    pub fn key_uri(&self, key: &str) -> XksKeyUri {
        XksKeyUri::parse(&format!("https://localhost:{}{PREFIX}#{key}", self.port)).unwrap()
    }

    pub fn tls(&self) -> TlsSettings {
        TlsSettings::new(self.server_ca_pem.clone())
            .with_client_certificate(self.client_cert.0.clone(), self.client_cert.1.clone())
    }

    /// A keyring for `key` (or discovery) with short deadlines.
    pub fn keyring(&self, key: Option<&str>) -> Arc<XksKeyring> {
        let mut builder = XksKeyring::builder(XksCredentials::new(AKID, SECRET).unwrap())
            .tls(self.tls())
            .timeouts(Timeouts {
                connect: Duration::from_millis(500),
                request: Duration::from_secs(2),
                idle: Duration::from_secs(30),
            })
            .principal_arn("arn:aws:iam::111122223333:role/envelope-xks-tests");
        builder = match key {
            Some(key) => builder.key(self.key_uri(key)),
            None => builder.discovery(true),
        };
        Arc::new(builder.build().unwrap())
    }

    /// The environment `keyring_from_spec` reads, for this proxy.
    pub fn spec_env(&self) -> impl Fn(&str) -> Option<String> {
        let p = self.dir.path();
        std::fs::write(p.join("server-ca.pem"), &self.server_ca_pem).unwrap();
        std::fs::write(p.join("client.pem"), &self.client_cert.0).unwrap();
        std::fs::write(p.join("client.key"), &self.client_cert.1).unwrap();
        let vars: Vec<(&'static str, String)> = vec![
            ("XKS_ACCESS_KEY_ID", AKID.to_owned()),
            ("XKS_SECRET_ACCESS_KEY", SECRET.to_owned()),
            ("XKS_CA_FILE", p.join("server-ca.pem").display().to_string()),
            (
                "XKS_CLIENT_CERT_FILE",
                p.join("client.pem").display().to_string(),
            ),
            (
                "XKS_CLIENT_KEY_FILE",
                p.join("client.key").display().to_string(),
            ),
        ];
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }
}

/// The XKS error kinds inside `error` (flattening multi-EDK aggregates).
pub fn xks_kinds(error: &Error) -> Vec<XksErrorKind> {
    XksKeyError::find(error)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}
