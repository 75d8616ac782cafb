//! End to end on real parts: `envelope::Client` with the caching manager
//! and the XKS keyring, against the real `xks-proxy` process over TLS with
//! mTLS, on SoftHSM.

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{xks_kinds, Proxy};
use envelope_core::keyring::Keyring;
use envelope_core::materials::{DecryptionMaterials, EncryptionMaterials};
use envelope_core::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext,
};
use envelope_xks::{keyring_from_spec_with, XksCredentials, XksKeyring, PROVIDER_ID};
use envelope_xks::{XksErrorKind, XksKeyError};

fn context(tenant: &str) -> EncryptionContext {
    [("tenant", tenant), ("purpose", "e2e")]
        .into_iter()
        .collect()
}

fn plain_client(keyring: Arc<dyn Keyring>) -> Client {
    Client::builder()
        .materials_manager(Arc::new(DefaultMaterialsManager::new(keyring)))
        .build()
        .unwrap()
}

fn caching(keyring: Arc<dyn Keyring>, max_messages: u64) -> CachingMaterialsManager {
    CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
        .max_age(Duration::from_secs(120))
        .max_messages(max_messages)
        .build()
        .unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_wrong_context_disabled_key_and_bad_credentials() {
    let proxy = Proxy::start();
    let keyring = proxy.keyring(Some("k1"));
    let cache = caching(keyring.clone(), 10);
    let client = Client::builder()
        .materials_manager(Arc::new(cache.clone()))
        .build()
        .unwrap();

    // Round trips through the cache: 30 messages in 3 contexts, sizes 0 to 20 KiB.
    let mut messages = Vec::new();
    for i in 0..30usize {
        let ctx = context(["acme", "globex", "initech"][i % 3]);
        let plaintext: Vec<u8> = (0..i * 700).map(|b| (b * 31 + i) as u8).collect();
        let message = client.encrypt(&plaintext, &ctx).await.unwrap();
        messages.push((ctx, plaintext, message));
    }
    let stats = cache.stats();
    assert_eq!(stats.hits + stats.misses, 30, "{stats:?}");
    // 10 messages per context at max_messages 10: one key per context, plus
    // at most one background refresh each (refresh-ahead at 80 %).
    let xks = keyring.stats();
    assert!((3..=6).contains(&xks.encrypt_calls), "{xks:?} {stats:?}");
    assert_eq!(xks.failed_calls, 0);

    // The EDK names the provider and the key URI: decrypt needs only
    // credentials and the CA (a discovery keyring built from the CLI spec).
    let uri = proxy.key_uri("k1").to_string();
    assert_eq!(uri, format!("https://localhost:{}/ks/a#k1", proxy.port));
    let env = proxy.spec_env();
    let discovery = keyring_from_spec_with("xks:discovery", &env).unwrap();
    let decryptor = plain_client(discovery);
    for (ctx, plaintext, message) in &messages {
        assert!(contains(message, PROVIDER_ID.as_bytes()));
        assert!(contains(message, uri.as_bytes()));
        let out = decryptor.decrypt(message, ctx).await.unwrap();
        assert_eq!(&out.plaintext, plaintext);
        // The caching client decrypts them too.
        assert_eq!(
            &client.decrypt(message, ctx).await.unwrap().plaintext,
            plaintext
        );
    }
    // The strict keyring from the spec form also round-trips.
    let strict = keyring_from_spec_with(&format!("xks:{uri}"), &env).unwrap();
    let strict_client = plain_client(strict);
    let m = strict_client
        .encrypt(b"spec", &context("acme"))
        .await
        .unwrap();
    assert_eq!(
        strict_client
            .decrypt(&m, &context("acme"))
            .await
            .unwrap()
            .plaintext,
        b"spec"
    );

    // Wrong context, at the SDK: a pair that differs fails before any key call.
    let (_, _, first) = &messages[0];
    assert!(decryptor.decrypt(first, &context("globex")).await.is_err());
    // Wrong context at the proxy: the EDK was bound to the context as AAD,
    // so unwrapping under another context fails in the HSM.
    let suite = AlgorithmSuite::from_id(0x0478).unwrap();
    let mut enc = EncryptionMaterials::new(suite, context("acme"));
    keyring.on_encrypt(&mut enc).await.unwrap();
    let edks = enc.encrypted_data_keys.clone();
    let mut right = DecryptionMaterials::new(suite, context("acme"));
    keyring.on_decrypt(&mut right, &edks).await.unwrap();
    assert_eq!(
        right.data_key.as_ref().unwrap().expose_secret(),
        enc.data_key.as_ref().unwrap().expose_secret()
    );
    let mut wrong = DecryptionMaterials::new(suite, context("globex"));
    let error = keyring.on_decrypt(&mut wrong, &edks).await.unwrap_err();
    assert!(
        matches!(XksKeyError::find_in(&error)[..], [XksKeyError { kind: XksErrorKind::InvalidCiphertext, key, .. }] if *key == uri),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(wrong.data_key.is_none());
    // A tampered EDK (one ciphertext bit) fails the same way.
    let mut tampered = edks.clone();
    let last = tampered[0].ciphertext.len() - 1;
    tampered[0].ciphertext[last] ^= 1;
    let mut m2 = DecryptionMaterials::new(suite, context("acme"));
    let error = keyring.on_decrypt(&mut m2, &tampered).await.unwrap_err();
    assert!(
        matches!(
            XksKeyError::find_in(&error)[..],
            [XksKeyError {
                kind: XksErrorKind::InvalidCiphertext,
                ..
            }]
        ),
        "{error:?}"
    );

    // A disabled key: encrypt and decrypt both fail with InvalidState (not
    // retryable) naming the key; enabling it again restores both.
    let k2 = proxy.keyring(Some("k2"));
    let k2_client = plain_client(k2.clone());
    let before = k2_client
        .encrypt(b"before", &context("acme"))
        .await
        .unwrap();
    proxy.admin(&["disable", "--label", "k2"]);
    let k2_uri = proxy.key_uri("k2").to_string();
    for error in [
        k2_client
            .encrypt(b"after", &context("acme"))
            .await
            .unwrap_err(),
        k2_client
            .decrypt(&before, &context("acme"))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            xks_kinds(&error),
            vec![XksErrorKind::InvalidState],
            "{error:?}"
        );
        assert!(!error.is_retryable());
        assert!(error.to_string().contains(&k2_uri), "{error}");
    }
    proxy.admin(&["enable", "--label", "k2"]);
    assert_eq!(
        k2_client
            .decrypt(&before, &context("acme"))
            .await
            .unwrap()
            .plaintext,
        b"before"
    );

    // Wrong secret: AuthenticationFailed. Unknown key: KeyNotFound.
    let wrong_secret =
        XksKeyring::builder(XksCredentials::new(common::AKID, "b".repeat(46)).unwrap())
            .tls(proxy.tls())
            .key(proxy.key_uri("k1"))
            .build()
            .unwrap();
    let error = plain_client(Arc::new(wrong_secret))
        .encrypt(b"x", &context("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        xks_kinds(&error),
        vec![XksErrorKind::AuthenticationFailed],
        "{error:?}"
    );
    let error = plain_client(proxy.keyring(Some("no-such-key")))
        .encrypt(b"x", &context("acme"))
        .await
        .unwrap_err();
    assert_eq!(
        xks_kinds(&error),
        vec![XksErrorKind::KeyNotFound],
        "{error:?}"
    );

    // Without the client certificate the mTLS handshake fails: a network
    // error (retryable: it may be a transient TLS failure), never a hang.
    let no_cert = XksKeyring::builder(XksCredentials::new(common::AKID, common::SECRET).unwrap())
        .tls(envelope_xks::TlsSettings::new(proxy.server_ca_pem.clone()))
        .key(proxy.key_uri("k1"))
        .build()
        .unwrap();
    let error = plain_client(Arc::new(no_cert))
        .encrypt(b"x", &context("acme"))
        .await
        .unwrap_err();
    assert_eq!(xks_kinds(&error), vec![XksErrorKind::Network], "{error:?}");
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;

#[derive(Default, Debug)]
struct Tally {
    ok: [u64; 3],
    retryable_failures: [u64; 3],
    other_failures: Vec<String>,
    slowest_failure: Duration,
}

/// A proxy restart in the middle of a run: 4 writers encrypt continuously
/// (retrying a message after a retryable error, as an application would);
/// the proxy is killed, stays down 2 s, and is restarted on the same port.
/// Every message must end up encrypted, and decrypt to its plaintext.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_restart_mid_run_loses_and_corrupts_nothing() {
    let mut proxy = Proxy::start();
    let keyring = proxy.keyring(Some("k3"));
    let cache = caching(keyring.clone(), 25);
    let client = Arc::new(
        Client::builder()
            .materials_manager(Arc::new(cache.clone()))
            .build()
            .unwrap(),
    );
    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicU8::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut writers = Vec::new();
    for w in 0..4u8 {
        let (client, phase, stop, tally) =
            (client.clone(), phase.clone(), stop.clone(), tally.clone());
        writers.push(tokio::spawn(async move {
            let ctx = context(&format!("writer-{w}"));
            let mut done = Vec::new();
            let mut n = 0u32;
            while stop.load(Ordering::Relaxed) == 0 {
                let plaintext = format!("writer {w} message {n}")
                    .repeat(1 + (n as usize % 40))
                    .into_bytes();
                loop {
                    let started = Instant::now();
                    let result = client.encrypt(&plaintext, &ctx).await;
                    let at = phase.load(Ordering::Relaxed) as usize;
                    let finished = {
                        let mut t = tally.lock().unwrap();
                        match result {
                            Ok(message) => {
                                t.ok[at] += 1;
                                done.push((plaintext.clone(), message));
                                true
                            }
                            Err(error) if error.is_retryable() && !xks_kinds(&error).is_empty() => {
                                t.retryable_failures[at] += 1;
                                t.slowest_failure = t.slowest_failure.max(started.elapsed());
                                false
                            }
                            Err(error) => {
                                t.other_failures.push(error.to_string());
                                true
                            }
                        }
                    };
                    if finished {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ctx, done)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let calls_before_outage = keyring.stats().encrypt_calls;
    phase.store(DOWN, Ordering::Relaxed);
    proxy.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls_during_outage = keyring.stats().encrypt_calls - calls_before_outage;
    let proxy = tokio::task::spawn_blocking(move || {
        proxy.launch();
        proxy
    })
    .await
    .unwrap();
    phase.store(BACK, Ordering::Relaxed);
    let calls_at_restart = keyring.stats().encrypt_calls;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(1, Ordering::Relaxed);
    let mut all = Vec::new();
    for writer in writers {
        all.push(writer.await.unwrap());
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    let xks = keyring.stats();
    let stats = cache.stats();
    eprintln!(
        "restart run: ok up/down/back = {:?}, retryable failures up/down/back = {:?}, \
         slowest failure {:?}, XKS encrypt calls {} (failed {}), during outage {}, cache {stats:?}",
        tally.ok,
        tally.retryable_failures,
        tally.slowest_failure,
        xks.encrypt_calls,
        xks.failed_calls,
        calls_during_outage
    );
    assert!(
        tally.other_failures.is_empty(),
        "{:?}",
        tally.other_failures
    );
    assert!(
        tally.ok[UP as usize] > 0 && tally.ok[BACK as usize] > 0,
        "{tally:?}"
    );
    // The cache carried encryption into the outage, then ran out and the
    // writers saw retryable errors, promptly (no hang past the deadline).
    assert!(
        tally.ok[DOWN as usize] > 0,
        "no message encrypted from the cache while down: {tally:?}"
    );
    assert!(
        tally.retryable_failures[DOWN as usize] > 0,
        "the outage never reached the callers: {tally:?}"
    );
    assert!(
        tally.slowest_failure < Duration::from_millis(2500),
        "{tally:?}"
    );
    // Recovered by itself: new data keys came from the restarted proxy.
    assert!(
        xks.encrypt_calls > calls_at_restart,
        "no XKS call after the restart"
    );

    // No lost or corrupted message: each writer's messages, in order, all
    // decrypt to their plaintexts (decrypt materials cached per EDK, each
    // EDK unwrapped by the restarted proxy).
    let decrypt_cache = caching(proxy.keyring(None), 1_000_000);
    let decryptor = Client::builder()
        .materials_manager(Arc::new(decrypt_cache))
        .build()
        .unwrap();
    let mut total = 0u64;
    for (ctx, done) in &all {
        for (plaintext, message) in done {
            let out = decryptor.decrypt(message, ctx).await.unwrap();
            assert_eq!(&out.plaintext, plaintext);
            total += 1;
        }
    }
    assert_eq!(total, tally.ok.iter().sum::<u64>());
    eprintln!("restart run: {total} messages encrypted, all decrypted correctly");
}

/// A proxy that accepts connections and never answers (a hung process, a
/// black-holed load balancer): the call ends at the request deadline with a
/// retryable `Timeout`, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_proxy_gives_a_prompt_retryable_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let uri = envelope_xks::XksKeyUri::parse(&format!("https://localhost:{port}/ks/a#k1")).unwrap();
    let keyring = XksKeyring::builder(XksCredentials::new(common::AKID, common::SECRET).unwrap())
        .tls(envelope_xks::TlsSettings::new(ca.cert.pem()))
        .timeouts(envelope_xks::Timeouts {
            connect: Duration::from_millis(200),
            request: Duration::from_millis(400),
            idle: Duration::from_secs(30),
        })
        .key(uri.clone())
        .build()
        .unwrap();
    let cache = caching(Arc::new(keyring), 100);
    let client = Client::builder()
        .materials_manager(Arc::new(cache))
        .build()
        .unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let error = client.encrypt(b"x", &context("acme")).await.unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(xks_kinds(&error), vec![XksErrorKind::Timeout], "{error:?}");
        assert!(error.is_retryable());
        assert!(error.to_string().contains(&uri.to_string()), "{error}");
        assert!(
            elapsed >= Duration::from_millis(390) && elapsed < Duration::from_millis(1500),
            "{elapsed:?}"
        );
    }
    drop(listener);
}
