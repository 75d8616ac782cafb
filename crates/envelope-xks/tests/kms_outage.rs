//! KMS outage: moto is stopped in the middle of a run of cached
//! encryptions, then restarted on the same port.
//!
//! moto keeps keys in memory, so a restarted moto has lost the key and its
//! key material. The keyring therefore names the key by an alias
//! (`alias/envelope-outage`), and after the restart the test creates a new
//! key under the same alias, as an operator restoring service would. So:
//! - the keyring works again after the restart without any change to it or
//!   to the cache: this shows the cache recovering by itself;
//! - messages written before the restart cannot be decrypted by the new
//!   moto (their key is gone). To check that none of them is corrupted,
//!   every message also carries a raw AES EDK (a multi-keyring: KMS
//!   generator, raw AES child), and every message is decrypted with the
//!   raw AES key alone. Messages written after the restart are also
//!   decrypted through KMS alone.
//! - Between moto listening again and the alias existing, GenerateDataKey
//!   gets `NotFoundException`; those failures are an artefact of
//!   re-provisioning the emulator and are counted apart.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_kms::config::{Credentials, Region};
use envelope_core::error::Error;
use envelope_core::keyring::Keyring;
use envelope_core::{
    CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext, MultiKeyring,
    RawAesKeyring,
};
use envelope_kms::KmsErrorKind;
use envelope_kms::{AwsKmsKeyring, KmsClientSupplier, KmsSettings};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// moto under envelope-kms's launcher (which stops the server's process
/// group when its stdin closes: on drop, on panic, on exit).
struct Moto {
    port: u16,
    launcher: Option<(Child, ChildStdin)>,
    dir: tempfile::TempDir,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut moto = Moto {
            port,
            launcher: None,
            dir: tempfile::tempdir().unwrap(),
        };
        moto.launch();
        moto
    }

    fn launch(&mut self) {
        let python = root().join(".venv/bin/python");
        let server = root().join(".venv/bin/moto_server");
        assert!(
            server.exists(),
            "{} missing: run scripts/install-test-deps.sh",
            server.display()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("moto.log"))
            .unwrap();
        let mut child = Command::new(python)
            .arg(root().join("crates/envelope-kms/tests/support/launcher.py"))
            .arg(server)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto not listening after 60 s");
            assert!(child.try_wait().unwrap().is_none(), "moto exited early");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.launcher = Some((child, stdin));
    }

    fn stop(&mut self) {
        if let Some((mut child, stdin)) = self.launcher.take() {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(6);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
            "moto still listening after stop"
        );
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.launcher.take() {
            drop(stdin);
            std::thread::sleep(Duration::from_millis(300));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const ALIAS: &str = "alias/envelope-outage";

/// Creates a key and points [`ALIAS`] at it; returns the key ARN.
async fn create_key(moto: &Moto) -> String {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(moto.endpoint())
        .load()
        .await;
    let admin = aws_sdk_kms::Client::new(&config);
    let arn = admin
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .arn
        .unwrap();
    admin
        .create_alias()
        .alias_name(ALIAS)
        .target_key_id(&arn)
        .send()
        .await
        .unwrap();
    arn
}

fn kms_kinds(error: &Error) -> Vec<KmsErrorKind> {
    envelope_kms::KmsError::find(error)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

const UP: usize = 0;
const DOWN: usize = 1;
const BACK: usize = 2;
/// moto is listening again but the key is not re-created yet.
const RESTORING: usize = 3;

#[derive(Debug, Default)]
struct Tally {
    ok: [u64; 4],
    failed: [u64; 4],
    failure_kinds: Vec<KmsErrorKind>,
    restoring_kinds: Vec<KmsErrorKind>,
    undocumented: Vec<String>,
    slowest_failure: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_outage_with_cache_then_recovery() {
    let mut moto = Moto::start();
    let arn = create_key(&moto).await;
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .load()
        .await;
    let supplier = KmsClientSupplier::builder()
        .sdk_config(config)
        .endpoint_url(moto.endpoint())
        .settings(KmsSettings {
            connect_timeout: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
            max_attempts: 2,
        })
        .build()
        .await;
    let kms: Arc<dyn Keyring> = Arc::new(AwsKmsKeyring::new(ALIAS, supplier.clone()).unwrap());
    let aes: Arc<dyn Keyring> =
        Arc::new(RawAesKeyring::new("outage-test", "verify", &[7u8; 32]).unwrap());
    let multi: Arc<dyn Keyring> =
        Arc::new(MultiKeyring::new(Some(kms.clone()), vec![aes.clone()]).unwrap());
    let cache = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(multi)))
        .max_age(Duration::from_secs(120))
        .max_messages(20)
        .build()
        .unwrap();
    let client = Arc::new(
        Client::builder()
            .materials_manager(Arc::new(cache.clone()))
            .build()
            .unwrap(),
    );

    let phase = Arc::new(AtomicU8::new(UP as u8));
    let stop = Arc::new(AtomicU8::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut writers = Vec::new();
    for w in 0..3u8 {
        let (client, phase, stop, tally) =
            (client.clone(), phase.clone(), stop.clone(), tally.clone());
        writers.push(tokio::spawn(async move {
            let ctx: EncryptionContext = [("writer", format!("{w}"))].into_iter().collect();
            let mut done = Vec::new();
            let mut n = 0u32;
            while stop.load(Ordering::Relaxed) == 0 {
                let plaintext = format!("writer {w} message {n} ")
                    .repeat(1 + n as usize % 50)
                    .into_bytes();
                let started = Instant::now();
                let from = phase.load(Ordering::Relaxed) as usize;
                let result = client.encrypt(&plaintext, &ctx).await;
                let at = phase.load(Ordering::Relaxed) as usize;
                // The call overlapped the window in which moto had no key.
                let restoring =
                    from == RESTORING || at == RESTORING || (from == DOWN && at == BACK);
                {
                    let mut t = tally.lock().unwrap();
                    match result {
                        Ok(message) => {
                            t.ok[at] += 1;
                            done.push((at, plaintext, message));
                        }
                        Err(error) => {
                            t.failed[at] += 1;
                            t.slowest_failure = t.slowest_failure.max(started.elapsed());
                            let kinds = kms_kinds(&error);
                            if restoring && kinds == [KmsErrorKind::NotFound] {
                                t.restoring_kinds.extend(kinds);
                            } else if error.is_retryable() && !kinds.is_empty() {
                                t.failure_kinds.extend(kinds);
                            } else {
                                t.undocumented.push(error.to_string());
                            }
                        }
                    }
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ctx, done)
        }));
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    phase.store(DOWN as u8, Ordering::Relaxed);
    let calls_before = supplier.request_counter().count("GenerateDataKey");
    let restoring = phase.clone();
    let mut moto = tokio::task::spawn_blocking(move || {
        moto.stop();
        std::thread::sleep(Duration::from_secs(3));
        restoring.store(RESTORING as u8, Ordering::Relaxed);
        moto.launch();
        moto
    })
    .await
    .unwrap();
    let recreated = create_key(&moto).await;
    assert_ne!(recreated, arn);
    phase.store(BACK as u8, Ordering::Relaxed);
    let calls_at_restart = supplier.request_counter().count("GenerateDataKey");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(1, Ordering::Relaxed);
    let mut all = Vec::new();
    for writer in writers {
        all.push(writer.await.unwrap());
    }
    let calls_after = supplier.request_counter().count("GenerateDataKey");
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let stats = cache.stats();
    let mut kinds = tally.failure_kinds.clone();
    kinds.sort_by_key(|k| format!("{k:?}"));
    kinds.dedup();
    eprintln!(
        "KMS outage: ok up/down/back/restoring = {:?}, failed up/down/back/restoring = {:?}, failure kinds {kinds:?} \
         (while re-creating the key: {} NotFound), \
         slowest failure {:?}, GenerateDataKey requests before/at restart/after = {calls_before}/{calls_at_restart}/{calls_after}, cache {stats:?}",
        tally.ok, tally.failed, tally.restoring_kinds.len(), tally.slowest_failure
    );
    // Every failure is the documented error: a KmsError, retryable
    // (Network or Timeout), returned promptly.
    assert!(tally.undocumented.is_empty(), "{:?}", tally.undocumented);
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k, KmsErrorKind::Network | KmsErrorKind::Timeout)),
        "{kinds:?}"
    );
    assert!(tally.slowest_failure < Duration::from_secs(4), "{tally:?}");
    // The cache kept encryption going into the outage, then ran out.
    assert!(tally.ok[DOWN] > 0, "{tally:?}");
    assert!(tally.failed[DOWN] > 0, "{tally:?}");
    assert_eq!(tally.failed[UP], 0, "{tally:?}");
    // Recovery by itself: new data keys from the restarted moto.
    assert!(tally.ok[BACK] > 0, "{tally:?}");
    assert!(
        calls_after > calls_at_restart,
        "no GenerateDataKey after the restart"
    );

    // Nothing corrupted: every success decrypts with the raw AES key alone;
    // those written after the restart also decrypt through KMS alone.
    let by_aes = Client::builder().keyring(aes).build().unwrap();
    drop(kms);
    let by_kms = Client::builder()
        .keyring(Arc::new(
            AwsKmsKeyring::new(&recreated, supplier.clone()).unwrap(),
        ))
        .build()
        .unwrap();
    let (mut checked, mut via_kms) = (0u64, 0u64);
    for (ctx, done) in &all {
        for (at, plaintext, message) in done {
            assert_eq!(
                &by_aes.decrypt(message, ctx).await.unwrap().plaintext,
                plaintext
            );
            checked += 1;
            if *at == BACK {
                assert_eq!(
                    &by_kms.decrypt(message, ctx).await.unwrap().plaintext,
                    plaintext
                );
                via_kms += 1;
            }
        }
    }
    assert_eq!(checked, tally.ok.iter().sum::<u64>());
    eprintln!("KMS outage: {checked} messages decrypted correctly with the raw AES key, {via_kms} of them also through KMS");
    moto.stop();
}
