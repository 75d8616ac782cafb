//! HSM faults under a running proxy, each followed by recovery with no
//! restart (same PID, no panic):
//!
//! - every PKCS#11 session lost underneath the proxy (the test-only
//!   `hsm.fault_injection` knob: SIGUSR1 finalizes the module behind the
//!   proxy's back, as a vendor library reset does);
//! - the token removed (its directory renamed away) and put back;
//! - a slow HSM (object files locked, so every operation blocks).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};

fn encrypt_body(plaintext: &[u8]) -> Value {
    json!({
        "requestMetadata": meta("Encrypt"),
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
        "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
    })
}

async fn health_status(c: &Client) -> String {
    let r = c
        .post(
            &health_path(PREFIX_A),
            &json!({"requestMetadata": meta("KmsHealthCheck")}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "health itself never fails: {:?}",
        r.json
    );
    r.json["ekmFleetDetails"][0]["healthStatus"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls encrypt until it succeeds (recovery), failing after `limit`.
async fn until_ok(c: &Client, limit: Duration) -> Duration {
    let started = Instant::now();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    loop {
        let r = c.post(&ep, &encrypt_body(b"recovered?")).await;
        if r.status == StatusCode::OK {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "no recovery: {:?}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fault_options() -> Options {
    Options {
        hsm_extra: "fault_injection = true\nreinit_interval_ms = 300".into(),
        ..Default::default()
    }
}

/// Sessions lost underneath: requests in flight and after it get answers
/// (the failed operation re-initializes the module and is retried once on
/// a fresh session), health stays ACTIVE, and the re-initialization shows
/// in the log and metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_lost_underneath_are_recovered_transparently() {
    let (proxy, metrics_addr) = Proxy::start_with_metrics(|metrics_addr| Options {
        tables_extra: format!("[metrics]\nlisten = \"{metrics_addr}\"\n"),
        ..fault_options()
    });
    let pid = proxy.pid();
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    // Warm the pool: several sessions open and logged in.
    let mut warm = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let ep = ep.clone();
        warm.push(tokio::spawn(async move {
            c.post(&ep, &encrypt_body(b"warm")).await
        }));
    }
    for w in warm {
        assert_eq!(w.await.unwrap().status, StatusCode::OK);
    }

    // Four clients keep encrypting while the sessions are killed twice.
    let end = Instant::now() + Duration::from_millis(2500);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let c = c.clone();
        let ep = ep.clone();
        clients.push(tokio::spawn(async move {
            let mut conn = c.connect().await.unwrap();
            let (mut ok, mut errors) = (0u32, Vec::new());
            while Instant::now() < end {
                let req =
                    SignedRequest::new(&ep, encrypt_body(b"under fire").to_string().into_bytes())
                        .sign(
                            &signer(AKID_A1, SECRET_A1, REGION, xks_proxy::sigv4::XKS_SERVICE),
                            std::time::SystemTime::now(),
                        )
                        .build();
                let r = send_on(&mut conn, req).await.unwrap();
                if r.status == StatusCode::OK {
                    ok += 1;
                } else {
                    errors.push(r.json);
                }
            }
            (ok, errors)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.signal("-USR1");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.signal("-USR1");
    let mut total_ok = 0;
    for t in clients {
        let (ok, errors) = t.await.unwrap();
        assert!(errors.is_empty(), "errors during session loss: {errors:?}");
        total_ok += ok;
    }
    assert!(total_ok > 20, "{total_ok}");
    assert_eq!(health_status(&c).await, "ACTIVE");
    until_ok(&c, Duration::from_secs(1)).await;

    let log = proxy.log();
    assert_eq!(
        log.matches("fault injection: PKCS#11 module finalized")
            .count(),
        2
    );
    assert!(log.contains("re-initializing the PKCS#11 module"));
    assert!(!log.contains("panicked"));
    let text = Proxy::scrape(metrics_addr);
    assert_eq!(metric(&text, "xks_hsm_reinitializations_total"), Some(2.0));
    assert_eq!(metric(&text, "xks_hsm_module_available"), Some(1.0));
    assert_eq!(proxy.pid(), pid);
}

/// Token removed: its directory renamed away. Requests fail with an
/// InternalException (never a hang, never a panic) and health reports
/// UNAVAILABLE; once the directory is back, the proxy re-initializes the
/// module by itself and serves again, health ACTIVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_removed_then_restored() {
    let proxy = Proxy::start(fault_options());
    let pid = proxy.pid();
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    assert_eq!(
        c.post(&ep, &encrypt_body(b"before")).await.status,
        StatusCode::OK
    );
    assert_eq!(health_status(&c).await, "ACTIVE");

    let away = proxy.hsm.token_dir.with_extension("away");
    std::fs::rename(&proxy.hsm.token_dir, &away).unwrap();
    let started = Instant::now();
    let r = c.post(&ep, &encrypt_body(b"while removed")).await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered in time"
    );
    assert_error(&r, 500, "InternalException");
    assert_eq!(r.json["errorMessage"], "HSM unavailable");
    // Still failing after the re-initialization interval (module init
    // fails while the token directory is gone), and health says so.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_error(
        &c.post(&ep, &encrypt_body(b"still removed")).await,
        500,
        "InternalException",
    );
    assert_eq!(health_status(&c).await, "UNAVAILABLE");
    let dp = key_path(PREFIX_A, "k1", "metadata");
    assert_error(
        &c.post(&dp, &json!({"requestMetadata": meta("DescribeKey")}))
            .await,
        500,
        "InternalException",
    );

    std::fs::rename(&away, &proxy.hsm.token_dir).unwrap();
    let took = until_ok(&c, Duration::from_secs(5)).await;
    println!("recovered {took:?} after the token came back");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health_status(&c).await, "ACTIVE");
    assert_eq!(proxy.pid(), pid);
    let log = proxy.log();
    assert!(log.contains("PKCS#11 module re-initialized"));
    assert!(!log.contains("panicked"));
}

/// Slow HSM: with the default deadlines (50 ms session wait, 150 ms
/// operation), a blocked HSM gives DependencyTimeoutException well inside
/// KMS's 250 ms, health DEGRADED; afterwards it serves again, ACTIVE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_hsm_times_out_inside_the_kms_budget() {
    let proxy = Proxy::start(Options {
        session_wait_ms: 50,
        operation_timeout_ms: 150,
        ..Default::default()
    });
    let pid = proxy.pid();
    let c = proxy.client();
    let mut conn = c.connect().await.unwrap();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let signed = |body: &Value| {
        SignedRequest::new(&ep, body.to_string().into_bytes())
            .sign(
                &signer(AKID_A1, SECRET_A1, REGION, xks_proxy::sigv4::XKS_SERVICE),
                std::time::SystemTime::now(),
            )
            .build()
    };
    let r = send_on(&mut conn, signed(&encrypt_body(b"fast")))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);

    let stall = HsmStall::start(&proxy.hsm.token_dir);
    // The first requests (one per session of the pool of 4) wait on the HSM
    // for the operation timeout; once every session is stuck, later ones
    // give up waiting for a session after the session wait, and never
    // reach the HSM. Both are bounded.
    let mut worst = Duration::ZERO;
    for i in 0..6 {
        let started = Instant::now();
        let r = send_on(&mut conn, signed(&encrypt_body(b"slow")))
            .await
            .unwrap();
        let took = started.elapsed();
        worst = worst.max(took);
        assert_error(&r, 503, "DependencyTimeoutException");
        let message = r.json["errorMessage"].as_str().unwrap_or_default();
        if i < 4 {
            assert!(message.contains("HSM operation exceeded"), "{i}: {message}");
            assert!(took >= Duration::from_millis(150), "{i}: {took:?}");
        } else {
            assert!(
                message.contains("no HSM session became free"),
                "{i}: {message}"
            );
            assert!(took < Duration::from_millis(150), "{i}: {took:?}");
        }
    }
    assert!(
        worst < Duration::from_millis(250),
        "slowest answer took {worst:?}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health_status(&c).await, "DEGRADED");
    drop(stall);

    until_ok(&c, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health_status(&c).await, "ACTIVE");
    assert_eq!(proxy.pid(), pid);
    assert!(!proxy.log().contains("panicked"));
}
