//! Test harness pieces shared by the `xks-proxy` and `envelope-xks` tests:
//! a private SoftHSM token directory (never the machine's global
//! configuration) and certificates generated at run time. Both harnesses
//! start the real proxy binary against these; what differs between them
//! (configuration, clients) stays in each crate's `tests/common`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The SoftHSM module path on Debian and Ubuntu.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The security officer PIN of every test token.
pub const SO_PIN: &str = "12345678";
/// The user PIN of every test token.
pub const USER_PIN: &str = "87654321";

/// Fails loudly (never skips) when SoftHSM is missing.
pub fn require_softhsm() {
    let util = Command::new("softhsm2-util").arg("--version").output();
    assert!(
        Path::new(MODULE).exists() && util.is_ok(),
        "SoftHSM2 is not installed ({MODULE} or softhsm2-util missing). Run \
         scripts/install-test-deps.sh (apt-get install -y softhsm2 opensc)"
    );
}

/// A private SoftHSM configuration and token directory under `dir`; point
/// a process at it with `SOFTHSM2_CONF` = [`SoftHsm::conf`].
pub struct SoftHsm {
    /// The configuration file.
    pub conf: PathBuf,
    /// Where the tokens live.
    pub token_dir: PathBuf,
}

impl SoftHsm {
    /// Writes the configuration; no token yet.
    pub fn new(dir: &Path) -> SoftHsm {
        require_softhsm();
        let token_dir = dir.join("tokens");
        std::fs::create_dir_all(&token_dir).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                token_dir.display()
            ),
        )
        .unwrap();
        SoftHsm { conf, token_dir }
    }

    /// Initializes a token labelled `label` with [`SO_PIN`] and [`USER_PIN`].
    pub fn init_token(&self, label: &str) {
        self.util([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            USER_PIN,
        ]);
    }

    /// Runs `softhsm2-util ARGS` on this configuration; panics with its
    /// stderr unless it succeeds.
    pub fn util<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "softhsm2-util {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A self-signed certificate authority made for one test run.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// What an issued certificate may be used for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Usage {
    /// A TLS server.
    Server,
    /// A TLS client (mTLS).
    Client,
}

impl TestCa {
    /// A new CA named `name` (its common name), with a P-256 key.
    pub fn new(name: &str) -> TestCa {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            cert: p.self_signed(&key).unwrap(),
            key,
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `cn` with DNS names `dns`, and its key (P-256, or
    /// RSA-2048 when `rsa`), both PEM.
    pub fn issue(&self, cn: &str, dns: &[&str], usage: Usage, rsa: bool) -> (String, String) {
        let mut p =
            rcgen::CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.extended_key_usages = vec![match usage {
            Usage::Server => rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let key = if rsa {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            rcgen::KeyPair::generate().unwrap()
        };
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A free 127.0.0.1 address (bound and released; the race with other
/// processes is acceptable in tests).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
