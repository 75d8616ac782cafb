//! Test harness: a real KMS API emulator on a free 127.0.0.1 port.
//!
//! The servers come from the Python venvs that `scripts/install-test-deps.sh`
//! installs: moto (`.venv`) and localstack-core (`.venv-ls`). Each server
//! runs under `launcher.py`, which stops it when its stdin pipe closes, so
//! it goes away when the handle drops, when a test panics, and when the
//! test process exits (shared servers live in statics that never drop).
#![allow(dead_code)] // each test binary uses a different part

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_kms::config::{Credentials, Region};
use aws_sdk_kms::types::{KeyState, MultiRegionKeyType};
use envelope_core::error::Error;
use envelope_kms::{KmsClientSupplier, KmsSettings};
use envelope_kms::{KmsError, KmsErrorKind};

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY: &str = "AKIDTESTTESTTEST";
pub const SECRET_KEY: &str = "testsecretkeytestsecretkey";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file the install script provides, or a loud failure naming the script.
pub fn require(relative: &str) -> PathBuf {
    let path = workspace_root().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh from the workspace root",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Which emulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Moto,
    Localstack,
}

/// A running emulator; stopped on drop.
pub struct Emulator {
    pub kind: Kind,
    pub port: u16,
    pub endpoint: String,
    launcher: Child,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl Emulator {
    pub fn moto() -> Self {
        let server = require(".venv/bin/moto_server");
        let python = require(".venv/bin/python");
        let port = free_port();
        let mut command = Command::new(python);
        command
            .arg(launcher())
            .arg(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        Self::start(Kind::Moto, port, command, None)
    }

    pub fn localstack() -> Self {
        let python = require(".venv-ls/bin/python");
        let port = free_port();
        let mut command = Command::new(python);
        command
            .arg(launcher())
            .arg(require(".venv-ls/bin/python"))
            .args(["-m", "localstack.runtime.main"])
            .env("SERVICES", "kms")
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("DNS_ADDRESS", "0")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .env("DISABLE_EVENTS", "1");
        Self::start(Kind::Localstack, port, command, Some("Ready."))
    }

    fn start(kind: Kind, port: u16, mut command: Command, ready_line: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).expect("create log");
        let err_file = log_file.try_clone().expect("clone log");
        command
            .env("TMPDIR", dir.path())
            .env("LOCALSTACK_VOLUME_DIR", dir.path().join("volume"))
            .env("FILESYSTEM_ROOT", dir.path().join("fs"))
            .stdin(Stdio::piped())
            .stdout(log_file)
            .stderr(err_file);
        let mut launcher = command.spawn().expect("spawn the emulator");
        let stdin = launcher.stdin.take();
        let mut emulator = Self {
            kind,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            launcher,
            stdin,
            _dir: dir,
            log,
        };
        emulator.wait_ready(ready_line);
        emulator
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn wait_ready(&mut self, ready_line: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Ok(Some(status)) = self.launcher.try_wait() {
                panic!(
                    "{:?} exited early ({status}); log:\n{}",
                    self.kind,
                    self.log_text()
                );
            }
            let listening = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
            let logged = ready_line.is_none_or(|line| self.log_text().contains(line));
            if listening && logged {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?} not ready after 60 s; log:\n{}",
                self.kind,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Closing the pipe tells the launcher to stop the server's group.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(6);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.launcher.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.launcher.kill();
        let _ = self.launcher.wait();
    }
}

fn launcher() -> PathBuf {
    workspace_root().join("crates/envelope-kms/tests/support/launcher.py")
}

/// One moto server for the whole test binary.
pub fn shared_moto() -> &'static Emulator {
    static MOTO: OnceLock<Emulator> = OnceLock::new();
    MOTO.get_or_init(Emulator::moto)
}

/// One localstack server for the whole test binary.
pub fn shared_localstack() -> &'static Emulator {
    static LOCALSTACK: OnceLock<Emulator> = OnceLock::new();
    LOCALSTACK.get_or_init(Emulator::localstack)
}

/// SDK config with static dummy credentials, pointed at the emulator.
pub async fn sdk_config(emulator: &Emulator, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "envelope-kms tests",
        ))
        .endpoint_url(&emulator.endpoint)
        .load()
        .await
}

/// A supplier for the emulator with short timeouts.
pub async fn supplier(emulator: &Emulator) -> KmsClientSupplier {
    KmsClientSupplier::builder()
        .sdk_config(sdk_config(emulator, REGION).await)
        .settings(KmsSettings {
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(20),
            max_attempts: 2,
        })
        .build()
        .await
}

/// A plain SDK client for setting up keys.
pub async fn admin(emulator: &Emulator, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&sdk_config(emulator, region).await)
}

/// Creates a symmetric key; returns its ARN.
pub async fn create_key(client: &aws_sdk_kms::Client) -> String {
    let meta = client
        .create_key()
        .description("envelope-kms test key")
        .send()
        .await
        .expect("CreateKey")
        .key_metadata
        .expect("key metadata");
    meta.arn.expect("key ARN")
}

/// Creates a multi-Region primary key; returns its ARN.
pub async fn create_mrk(client: &aws_sdk_kms::Client) -> String {
    let meta = client
        .create_key()
        .multi_region(true)
        .send()
        .await
        .expect("CreateKey (multi-Region)")
        .key_metadata
        .expect("key metadata");
    assert_eq!(
        meta.multi_region_configuration
            .and_then(|c| c.multi_region_key_type),
        Some(MultiRegionKeyType::Primary)
    );
    meta.arn.expect("key ARN")
}

/// Replicates `primary_arn` into `region`; returns the replica's ARN.
pub async fn replicate(client: &aws_sdk_kms::Client, primary_arn: &str, region: &str) -> String {
    let meta = client
        .replicate_key()
        .key_id(primary_arn)
        .replica_region(region)
        .send()
        .await
        .expect("ReplicateKey")
        .replica_key_metadata
        .expect("replica metadata");
    meta.arn.expect("replica ARN")
}

pub async fn key_state(client: &aws_sdk_kms::Client, key_id: &str) -> Option<KeyState> {
    client
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .expect("DescribeKey")
        .key_metadata
        .and_then(|m| m.key_state)
}

/// Every `Kms` error in `error`, flattening multi-keyring aggregates.
pub fn kms_errors(error: &Error) -> Vec<(String, KmsErrorKind)> {
    KmsError::find(error)
        .into_iter()
        .map(|e| (e.key_id.clone(), e.kind))
        .collect()
}
