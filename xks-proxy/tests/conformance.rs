//! The XKS conformance checklist (xks-api.md §3), driven over HTTPS with
//! real SigV4 signatures against the real `xks-proxy` binary and SoftHSM.
//! Item numbers refer to the checklist.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xks_proxy::sigv4::XKS_SERVICE;

fn encrypt_body(plaintext: &[u8], aad: Option<&[u8]>, cdiv: bool) -> Value {
    let mut b = json!({
        "requestMetadata": meta("Encrypt"),
        "plaintext": b64(plaintext),
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        b["additionalAuthenticatedData"] = json!(b64(a));
    }
    if cdiv {
        b["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    b
}

/// Builds a decrypt body from an encrypt response.
fn decrypt_body(enc: &Value, aad: Option<&[u8]>) -> Value {
    let mut b = json!({
        "requestMetadata": meta("Decrypt"),
        "ciphertext": enc["ciphertext"],
        "initializationVector": enc["initializationVector"],
        "authenticationTag": enc["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    });
    if let Some(a) = aad {
        b["additionalAuthenticatedData"] = json!(b64(a));
    }
    if let Some(cm) = enc.get("ciphertextMetadata") {
        b["ciphertextMetadata"] = cm.clone();
    }
    b
}

fn flip(v: &Value) -> Value {
    let mut bytes = unb64(v);
    bytes[0] ^= 1;
    json!(b64(&bytes))
}

/// Items 1 and 2: TLS versions and suites, HTTP/1.1 and h2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_tls_and_http_versions() {
    let proxy = Proxy::start(Options::default());
    let body = json!({"requestMetadata": meta("KmsHealthCheck")});
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;

    // TLS 1.3 with each spec suite, over HTTP/1.1.
    for suite in [
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
    ] {
        let c = proxy.client_with(ClientOptions {
            versions: vec![&rustls::version::TLS13],
            suites: Some(vec![suite]),
            ..Default::default()
        });
        let r = c.post(&health_path(PREFIX_A), &body).await;
        assert_eq!(r.status, StatusCode::OK, "{suite:?}: {:?}", r.json);
        assert_eq!(r.version, hyper::Version::HTTP_11);
    }
    // TLS 1.2 with ECDHE-ECDSA-AES256-GCM-SHA384 (the server key is ECDSA).
    let c = proxy.client_with(ClientOptions {
        versions: vec![&rustls::version::TLS12],
        suites: Some(vec![cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]),
        ..Default::default()
    });
    assert_eq!(
        c.post(&health_path(PREFIX_A), &body).await.status,
        StatusCode::OK
    );
    // A suite outside the spec's list is refused.
    let c = proxy.client_with(ClientOptions {
        versions: vec![&rustls::version::TLS12],
        suites: Some(vec![cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]),
        ..Default::default()
    });
    let err = c
        .connect()
        .await
        .err()
        .expect("AES-128 suite must be refused");
    assert!(err.contains("HandshakeFailure"), "{err}");

    // h2 through ALPN.
    let c = proxy.client_with(ClientOptions {
        h2: true,
        ..Default::default()
    });
    let r = c.post(&health_path(PREFIX_A), &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.version, hyper::Version::HTTP_2);

    // TLS 1.1: a hand-made ClientHello gets a fatal alert, not a ServerHello.
    let mut hello = vec![0x03, 0x02];
    hello.extend([7u8; 32]);
    hello.push(0);
    // Suites: ECDHE-ECDSA/RSA-AES256-GCM-SHA384 (which the server does
    // support), so the only reason to refuse is the version.
    hello.extend([0x00, 0x04, 0xc0, 0x2c, 0xc0, 0x30, 0x01, 0x00]);
    // Extensions the server can use: signature_algorithms
    // (ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256), supported_groups
    // (x25519, secp256r1), ec_point_formats (uncompressed).
    let ext: [u8; 26] = [
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, //
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, //
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,
    ];
    hello.extend([0x00, ext.len() as u8]);
    hello.extend(&ext);
    let mut hs = vec![0x01, 0x00, 0x00, hello.len() as u8];
    hs.extend(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    record.extend(&hs);
    let mut tcp = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut reply = [0u8; 7];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 0x15, "expected an alert record, got {reply:?}");
    assert_eq!(reply[5], 2, "alert must be fatal");
    assert_eq!(reply[6], 70, "alert must be protocol_version");
}

/// Item 1 for ECDHE-RSA: a proxy with an RSA server key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_tls12_ecdhe_rsa() {
    let proxy = Proxy::start(Options {
        rsa_server: true,
        ..Default::default()
    });
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let c = proxy.client_with(ClientOptions {
        versions: vec![&rustls::version::TLS12],
        suites: Some(vec![cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]),
        ..Default::default()
    });
    let r = c
        .post(
            &health_path(PREFIX_A),
            &json!({"requestMetadata": meta("KmsHealthCheck")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Items 3-8: methods, paths, key ids, error bodies, body limits; plus /ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_and_limits() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();

    // Item 3: GET on every route is 405.
    for path in [
        health_path(PREFIX_A),
        key_path(PREFIX_A, "k1", "metadata"),
        key_path(PREFIX_A, "k1", "encrypt"),
        key_path(PREFIX_A, "k1", "decrypt"),
    ] {
        let req = hyper::Request::get(&path)
            .header("host", "localhost")
            .body(http_body_util::Full::new(hyper::body::Bytes::new()))
            .unwrap();
        let r = c.send(req).await.unwrap();
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert!(r.json["errorName"].is_string());
    }
    let m = json!({"requestMetadata": meta("DescribeKey")});
    // Item 4: unknown path under a prefix.
    for path in [
        format!("{PREFIX_A}/kms/xks/v1/keys/k1/rotate"),
        format!("{PREFIX_A}/kms/xks/v1/nothing"),
        format!("{PREFIX_A}/kms/xks/v2/health"),
    ] {
        assert_error(&c.post(&path, &m).await, 404, "InvalidUriPathException");
    }
    // Item 5: unknown prefix.
    assert_error(
        &c.post(&health_path("/ks/zzz"), &m).await,
        404,
        "InvalidUriPathException",
    );
    // Item 6: illegal key id characters or length.
    assert_error(
        &c.post(&key_path(PREFIX_A, "bad$id", "metadata"), &m).await,
        400,
        "ValidationException",
    );
    let long = "k".repeat(129);
    assert_error(
        &c.post(&key_path(PREFIX_A, &long, "metadata"), &m).await,
        400,
        "ValidationException",
    );
    // 128 characters is legal (and simply not found).
    let max = "k".repeat(128);
    assert_error(
        &c.post(&key_path(PREFIX_A, &max, "metadata"), &m).await,
        404,
        "KeyNotFoundException",
    );

    // Item 8: oversized body, declared and chunked.
    // Declared too large: refused from the headers alone, before the body
    // is read (so the test sends none).
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 70000\r\n\r\n",
        key_path(PREFIX_A, "k1", "encrypt")
    );
    let text = c.raw_http1(head.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("ValidationException"), "{text}");
    let mut raw = format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n",
        key_path(PREFIX_A, "k1", "encrypt")
    )
    .into_bytes();
    for _ in 0..3 {
        raw.extend(format!("{:x}\r\n", 22_000).as_bytes());
        raw.extend(vec![b' '; 22_000]);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    let text = c.raw_http1(&raw).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("ValidationException"), "{text}");

    // The load-balancer endpoint needs no signature.
    let req = hyper::Request::get("/ping")
        .header("host", "localhost")
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    assert_eq!(c.send(req).await.unwrap().status, StatusCode::OK);

    // Malformed JSON and missing fields.
    let mut s = c.connect().await.unwrap();
    let req = SignedRequest::new(&health_path(PREFIX_A), b"{not json".to_vec())
        .sign(
            &signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE),
            SystemTime::now(),
        )
        .build();
    assert_error(
        &send_on(&mut s, req).await.unwrap(),
        400,
        "ValidationException",
    );
}

async fn send_signed(
    c: &Client,
    path: &str,
    body: &Value,
    signer: &xks_proxy::sigv4::Signer,
    at: SystemTime,
) -> Resp {
    let req = SignedRequest::new(path, body.to_string().into_bytes())
        .sign(signer, at)
        .build();
    c.send(req).await.unwrap()
}

/// Items 9-17 and 19: SigV4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_authentication() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let path = key_path(PREFIX_A, "k1", "metadata");
    let body = json!({"requestMetadata": meta("DescribeKey")});
    let now = SystemTime::now();
    let good = signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE);

    // Item 9: KMS's minimal signed headers.
    let req = SignedRequest::new(&path, body.to_string().into_bytes()).sign(&good, now);
    assert!(req.headers[1].1.contains("SignedHeaders=host;x-amz-date,"));
    assert_eq!(c.send(req.build()).await.unwrap().status, StatusCode::OK);
    // Item 10: extra signed header.
    let req = SignedRequest::new(&path, body.to_string().into_bytes())
        .with_content_type()
        .sign(&good, now);
    assert!(req.headers[1]
        .1
        .contains("SignedHeaders=content-type;host;x-amz-date,"));
    assert_eq!(c.send(req.build()).await.unwrap().status, StatusCode::OK);
    // Signed content-type changed in transit.
    let mut req = SignedRequest::new(&path, body.to_string().into_bytes())
        .with_content_type()
        .sign(&good, now);
    req.extra[0].1 = "text/plain".into();
    assert_error(
        &c.send(req.build()).await.unwrap(),
        401,
        "AuthenticationFailedException",
    );

    // Item 11: wrong secret.
    let r = send_signed(
        &c,
        &path,
        &body,
        &signer(AKID_A1, SECRET_A2, REGION, XKS_SERVICE),
        now,
    )
    .await;
    assert_error(&r, 401, "AuthenticationFailedException");
    // Item 12: unknown access key id.
    let r = send_signed(
        &c,
        &path,
        &body,
        &signer("AKIAUNKNOWNUNKNOWN22", SECRET_A1, REGION, XKS_SERVICE),
        now,
    )
    .await;
    assert_error(&r, 401, "AuthenticationFailedException");
    // Item 13: +-6 minutes.
    for at in [
        now + Duration::from_secs(360),
        now - Duration::from_secs(360),
    ] {
        assert_error(
            &send_signed(&c, &path, &body, &good, at).await,
            401,
            "AuthenticationFailedException",
        );
    }
    // Item 14: +-4 minutes.
    for at in [
        now + Duration::from_secs(240),
        now - Duration::from_secs(240),
    ] {
        assert_eq!(
            send_signed(&c, &path, &body, &good, at).await.status,
            StatusCode::OK
        );
    }
    // Item 15: wrong region.
    let r = send_signed(
        &c,
        &path,
        &body,
        &signer(AKID_A1, SECRET_A1, "eu-west-1", XKS_SERVICE),
        now,
    )
    .await;
    assert_error(&r, 401, "AuthenticationFailedException");
    // Item 16: wrong service.
    let r = send_signed(
        &c,
        &path,
        &body,
        &signer(AKID_A1, SECRET_A1, REGION, "kms"),
        now,
    )
    .await;
    assert_error(&r, 401, "AuthenticationFailedException");
    // Item 17: body changed after signing.
    let mut req = SignedRequest::new(&path, body.to_string().into_bytes()).sign(&good, now);
    req.body = json!({"requestMetadata": meta("Other")})
        .to_string()
        .into_bytes();
    assert_error(
        &c.send(req.build()).await.unwrap(),
        401,
        "AuthenticationFailedException",
    );
    // No signature at all, and a path changed after signing.
    let req = SignedRequest::new(&path, body.to_string().into_bytes()).build();
    assert_error(
        &c.send(req).await.unwrap(),
        401,
        "AuthenticationFailedException",
    );
    let mut req = SignedRequest::new(&path, body.to_string().into_bytes()).sign(&good, now);
    req.path = key_path(PREFIX_A, "health", "metadata");
    assert_error(
        &c.send(req.build()).await.unwrap(),
        401,
        "AuthenticationFailedException",
    );

    // Item 19: A's credentials on B, and B's on A.
    let r = send_signed(&c, &key_path(PREFIX_B, "kb", "metadata"), &body, &good, now).await;
    assert_error(&r, 401, "AuthenticationFailedException");
    let b = signer(AKID_B, SECRET_B, REGION, XKS_SERVICE);
    let r = send_signed(&c, &key_path(PREFIX_B, "kb", "metadata"), &body, &b, now).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send_signed(&c, &path, &body, &b, now).await;
    assert_error(&r, 401, "AuthenticationFailedException");
    // Each prefix has its own key set.
    let r = send_signed(&c, &key_path(PREFIX_B, "k1", "metadata"), &body, &b, now).await;
    assert_error(&r, 404, "KeyNotFoundException");

    // Secrets never reach the log.
    let log = proxy.log();
    for s in [SECRET_A1, SECRET_A2, SECRET_B, USER_PIN] {
        assert!(!log.contains(s), "secret in log");
    }
}

/// Item 18: two pairs work; after rotation and SIGHUP the old pair fails and
/// the new one works, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_rotation_on_sighup() {
    rotation(Options::default(), true).await;
}

/// Item 18 again, with no signal: the proxy notices the changed files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_rotation_on_file_change() {
    let opts = Options {
        credential_poll_seconds: 1,
        ..Default::default()
    };
    rotation(opts, false).await;
}

async fn rotation(opts: Options, sighup: bool) {
    let mut proxy = Proxy::start(opts);
    let c = proxy.client();
    let path = health_path(PREFIX_A);
    let body = json!({"requestMetadata": meta("KmsHealthCheck")});
    let pid = proxy.pid();
    for (id, secret) in [(AKID_A1, SECRET_A1), (AKID_A2, SECRET_A2)] {
        let r = send_signed(
            &c,
            &path,
            &body,
            &signer(id, secret, REGION, XKS_SERVICE),
            SystemTime::now(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{id}");
    }
    // Rotate: A1 is retired, NEW joins, A2 stays.
    proxy.rotate_a(
        vec![
            (AKID_A2.to_string(), SECRET_A2.to_string()),
            (AKID_NEW.to_string(), SECRET_NEW.to_string()),
        ],
        sighup,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let old = send_signed(
            &c,
            &path,
            &body,
            &signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE),
            SystemTime::now(),
        )
        .await;
        if old.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(Instant::now() < deadline, "rotation not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (id, secret) in [(AKID_A2, SECRET_A2), (AKID_NEW, SECRET_NEW)] {
        let r = send_signed(
            &c,
            &path,
            &body,
            &signer(id, secret, REGION, XKS_SERVICE),
            SystemTime::now(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{id}");
    }
    assert_eq!(proxy.pid(), pid);
    assert!(proxy.log().contains("credentials reloaded"));
}

/// Items 24, 25 and 27.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let r = c
        .post(
            &health_path(PREFIX_A),
            &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["xksProxyFleetSize"], 2);
    assert_eq!(r.json["xksProxyVendor"], "test vendor");
    assert_eq!(r.json["xksProxyModel"], "test model");
    assert_eq!(r.json["ekmVendor"], "SoftHSM");
    let fleet = r.json["ekmFleetDetails"].as_array().unwrap();
    assert_eq!(fleet.len(), 1);
    assert_eq!(
        fleet[0],
        json!({"id": "softhsm-1", "model": "SoftHSMv2", "healthStatus": "ACTIVE"})
    );
    // Item 25.
    assert_error(
        &c.post(&health_path(PREFIX_A), &json!({})).await,
        400,
        "ValidationException",
    );
    assert_error(
        &c.post(&health_path(PREFIX_A), &json!({"requestMetadata": {}}))
            .await,
        400,
        "ValidationException",
    );
    // Item 27: the proxy has no secondary authorization (issue 7), so any
    // principal, even one with no key access anywhere, gets health.
    let mut m = meta("KmsHealthCheck");
    m["awsPrincipalArn"] = json!("arn:aws:iam::000000000000:role/nobody");
    m["unknownField"] = json!({"nested": true});
    let r = c
        .post(&health_path(PREFIX_A), &json!({"requestMetadata": m}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Items 26 and 56: a hung HSM (object files locked under SoftHSM) gives
/// DependencyTimeoutException within the deadline and DEGRADED health; the
/// proxy recovers by itself once the HSM answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_fault_and_recovery() {
    let proxy = Proxy::start(Options {
        operation_timeout_ms: 300,
        session_wait_ms: 300,
        ..Default::default()
    });
    let c = proxy.client();
    let hp = health_path(PREFIX_A);
    let hb = json!({"requestMetadata": meta("KmsHealthCheck")});
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let eb = encrypt_body(b"fault test", None, true);
    assert_eq!(c.post(&ep, &eb).await.status, StatusCode::OK);
    assert_eq!(
        c.post(&hp, &hb).await.json["ekmFleetDetails"][0]["healthStatus"],
        "ACTIVE"
    );

    let stall = HsmStall::start(&proxy.hsm.token_dir);
    let started = Instant::now();
    let r = c.post(&ep, &eb).await;
    assert_error(&r, 503, "DependencyTimeoutException");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no hang past the deadline"
    );
    // Health cache is 1 s; within it the stall must show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let h = c.post(&hp, &hb).await;
    assert_eq!(h.status, StatusCode::OK);
    let status = h.json["ekmFleetDetails"][0]["healthStatus"].clone();
    assert!(status == "DEGRADED" || status == "UNAVAILABLE", "{status}");
    drop(stall);

    // Recovery with no restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.post(&ep, &eb).await;
        if r.status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {:?}", r.json);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        c.post(&hp, &hb).await.json["ekmFleetDetails"][0]["healthStatus"],
        "ACTIVE"
    );
}

/// Items 28-35.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let m = json!({"requestMetadata": meta("DescribeKey")});
    let get = |k: &'static str| {
        let c = c.clone();
        let m = m.clone();
        async move { c.post(&key_path(PREFIX_A, k, "metadata"), &m).await }
    };
    // Item 28.
    let r = get("k1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json,
        json!({"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"})
    );
    // Items 29-31 (a key with no usage returns an empty list).
    assert_eq!(get("enc-only").await.json["keyUsage"], json!(["ENCRYPT"]));
    assert_eq!(get("dec-only").await.json["keyUsage"], json!(["DECRYPT"]));
    let r = get("no-usage").await;
    assert_eq!(
        r.json,
        json!({"keySpec": "AES_256", "keyUsage": [], "keyStatus": "ENABLED"})
    );
    // Item 32, then enable/disable through the admin commands.
    assert_eq!(get("disabled").await.json["keyStatus"], "DISABLED");
    proxy.admin(&["--key-store", "a", "enable", "--label", "disabled"]);
    assert_eq!(get("disabled").await.json["keyStatus"], "ENABLED");
    proxy.admin(&["--key-store", "a", "disable", "--label", "disabled"]);
    assert_eq!(get("disabled").await.json["keyStatus"], "DISABLED");
    let list = proxy.admin(&["--key-store", "a", "list"]);
    assert!(
        list.contains("disabled\tDISABLED\tENCRYPT,DECRYPT"),
        "{list}"
    );
    assert!(list.contains("enc-only\tENABLED\tENCRYPT\n"), "{list}");
    // Item 33.
    assert_error(&get("nope").await, 404, "KeyNotFoundException");
    // Item 34.
    let r = c
        .post(&key_path(PREFIX_A, "k1", "metadata"), &json!({"other": 1}))
        .await;
    assert_error(&r, 400, "ValidationException");
    // Item 35.
    let mut md = meta("DescribeKey");
    md["someFutureField"] = json!("x");
    md["kmsOperation"] = json!("SomeFutureOperation");
    md["awsSourceVpc"] = json!("vpc-1");
    md["awsSourceVpce"] = json!("vpce-1");
    md["awsPrincipalArn"] = json!(format!(
        "arn:aws:iam::123456789012:role/{}",
        "r".repeat(2000)
    ));
    let r = c
        .post(
            &key_path(PREFIX_A, "k1", "metadata"),
            &json!({"requestMetadata": md, "extraTopLevel": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// Items 36-45.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let dp = key_path(PREFIX_A, "k1", "decrypt");

    // Item 36: round trips with and without AAD.
    for aad in [None, Some(&b"project=nile,department=marketing"[..])] {
        let e = c
            .post(&ep, &encrypt_body(b"Hello World!", aad, false))
            .await;
        assert_eq!(e.status, StatusCode::OK, "{:?}", e.json);
        let d = c.post(&dp, &decrypt_body(&e.json, aad)).await;
        assert_eq!(d.status, StatusCode::OK, "{:?}", d.json);
        assert_eq!(unb64(&d.json["plaintext"]), b"Hello World!");
    }
    // Items 37-40: large inputs, sizes, CDIV.
    let pt: Vec<u8> = (0..4300u32).map(|i| i as u8).collect();
    let aad: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    let e = c.post(&ep, &encrypt_body(&pt, Some(&aad), true)).await;
    assert_eq!(e.status, StatusCode::OK, "{:?}", e.json);
    let (ct, iv, tag, cm) = (
        unb64(&e.json["ciphertext"]),
        unb64(&e.json["initializationVector"]),
        unb64(&e.json["authenticationTag"]),
        unb64(&e.json["ciphertextMetadata"]),
    );
    assert_eq!(iv.len(), 12);
    assert_eq!(tag.len(), 16);
    assert_eq!(ct.len(), pt.len());
    assert!(cm.len() <= 20);
    let mut all = aad.clone();
    for part in [&cm, &iv, &ct, &tag] {
        all.extend_from_slice(part);
    }
    let expected = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &all);
    assert_eq!(
        unb64(&e.json["ciphertextDataIntegrityValue"]),
        expected.as_ref()
    );
    let d = c.post(&dp, &decrypt_body(&e.json, Some(&aad))).await;
    assert_eq!(unb64(&d.json["plaintext"]), pt);
    // No CDIV unless asked for; fresh IVs.
    let e1 = c.post(&ep, &encrypt_body(b"x", None, false)).await;
    let e2 = c.post(&ep, &encrypt_body(b"x", None, false)).await;
    assert!(e1.json.get("ciphertextDataIntegrityValue").is_none());
    assert_ne!(
        e1.json["initializationVector"],
        e2.json["initializationVector"]
    );

    // Item 41.
    let mut b = encrypt_body(b"x", None, false);
    b["encryptionAlgorithm"] = json!("AES_CBC");
    assert_error(&c.post(&ep, &b).await, 400, "ValidationException");
    let mut b = encrypt_body(b"x", None, false);
    b["ciphertextDataIntegrityValueAlgorithm"] = json!("MD5");
    assert_error(&c.post(&ep, &b).await, 400, "ValidationException");
    // Item 42.
    let mut b = encrypt_body(b"x", None, false);
    b["plaintext"] = json!("not base64!");
    assert_error(&c.post(&ep, &b).await, 400, "ValidationException");
    let mut b = encrypt_body(b"x", None, false);
    b["additionalAuthenticatedData"] = json!("QQ");
    assert_error(&c.post(&ep, &b).await, 400, "ValidationException");
    // Item 43: encrypt-only key with CDIV (needs the verification decrypt).
    let r = c
        .post(
            &key_path(PREFIX_A, "enc-only", "encrypt"),
            &encrypt_body(b"x", None, true),
        )
        .await;
    assert_error(&r, 400, "InvalidKeyUsageException");
    let r = c
        .post(
            &key_path(PREFIX_A, "enc-only", "encrypt"),
            &encrypt_body(b"x", None, false),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    // Item 44.
    for k in ["dec-only", "no-usage"] {
        let r = c
            .post(
                &key_path(PREFIX_A, k, "encrypt"),
                &encrypt_body(b"x", None, false),
            )
            .await;
        assert_error(&r, 400, "InvalidKeyUsageException");
    }
    // Item 45.
    let r = c
        .post(
            &key_path(PREFIX_A, "disabled", "encrypt"),
            &encrypt_body(b"x", None, false),
        )
        .await;
    assert_error(&r, 400, "InvalidStateException");
    // Unknown key.
    let r = c
        .post(
            &key_path(PREFIX_A, "nope", "encrypt"),
            &encrypt_body(b"x", None, false),
        )
        .await;
    assert_error(&r, 404, "KeyNotFoundException");

    // Plaintext and AAD never reach the log.
    let log = proxy.log();
    assert!(!log.contains(&b64(b"Hello World!")) && !log.contains("Hello World!"));
    assert!(!log.contains("project=nile"));
}

/// Items 46-53.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypt() {
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let dp = key_path(PREFIX_A, "k1", "decrypt");
    let aad = b"context=a";
    let e = c
        .post(&ep, &encrypt_body(b"secret data", Some(aad), true))
        .await;
    assert_eq!(e.status, StatusCode::OK);
    let good = decrypt_body(&e.json, Some(aad));
    assert_eq!(c.post(&dp, &good).await.status, StatusCode::OK);

    // Item 46: wrong AAD. Item 47: missing AAD.
    assert_error(
        &c.post(&dp, &decrypt_body(&e.json, Some(b"context=b")))
            .await,
        400,
        "InvalidCiphertextException",
    );
    assert_error(
        &c.post(&dp, &decrypt_body(&e.json, None)).await,
        400,
        "InvalidCiphertextException",
    );
    // Item 48: tampered ciphertext, tag, IV.
    for field in ["ciphertext", "authenticationTag", "initializationVector"] {
        let mut b = good.clone();
        b[field] = flip(&good[field]);
        assert_error(&c.post(&dp, &b).await, 400, "InvalidCiphertextException");
    }
    // Item 49: tampered or missing ciphertextMetadata.
    let mut b = good.clone();
    b["ciphertextMetadata"] = flip(&good["ciphertextMetadata"]);
    assert_error(&c.post(&dp, &b).await, 400, "InvalidCiphertextException");
    let mut b = good.clone();
    b.as_object_mut().unwrap().remove("ciphertextMetadata");
    assert_error(&c.post(&dp, &b).await, 400, "InvalidCiphertextException");
    // Item 50: metadata moved into the AAD (lengths are bound).
    let cm = unb64(&good["ciphertextMetadata"]);
    let mut moved = aad.to_vec();
    moved.extend_from_slice(&cm);
    let mut b = good.clone();
    b.as_object_mut().unwrap().remove("ciphertextMetadata");
    b["additionalAuthenticatedData"] = json!(b64(&moved));
    assert_error(&c.post(&dp, &b).await, 400, "InvalidCiphertextException");
    // The session survives authentication failures: a good decrypt still works.
    assert_eq!(c.post(&dp, &good).await.status, StatusCode::OK);

    // Item 51: decrypt on encrypt-only keys.
    let e2 = c
        .post(
            &key_path(PREFIX_A, "enc-only", "encrypt"),
            &encrypt_body(b"x", None, false),
        )
        .await;
    let r = c
        .post(
            &key_path(PREFIX_A, "enc-only", "decrypt"),
            &decrypt_body(&e2.json, None),
        )
        .await;
    assert_error(&r, 400, "InvalidKeyUsageException");
    // A decrypt-only key works for decrypt (wrong key: fails authentication).
    let r = c
        .post(&key_path(PREFIX_A, "dec-only", "decrypt"), &good)
        .await;
    assert_error(&r, 400, "InvalidCiphertextException");
    // Item 52: disabled key.
    let r = c
        .post(&key_path(PREFIX_A, "disabled", "decrypt"), &good)
        .await;
    assert_error(&r, 400, "InvalidStateException");
    // Item 53: tag and IV lengths.
    let mut b = good.clone();
    b["authenticationTag"] = json!(b64(&[0u8; 12]));
    assert_error(&c.post(&dp, &b).await, 400, "ValidationException");
    for n in [8usize, 13, 32] {
        let mut b = good.clone();
        b["initializationVector"] = json!(b64(&vec![0u8; n]));
        assert_error(&c.post(&dp, &b).await, 400, "ValidationException");
    }
    // A 16-byte IV is legal (and here simply does not authenticate).
    let mut b = good.clone();
    b["initializationVector"] = json!(b64(&[0u8; 16]));
    assert_error(&c.post(&dp, &b).await, 400, "InvalidCiphertextException");
    // Metadata longer than 20 bytes cannot be ours.
    let mut b = good.clone();
    b["ciphertextMetadata"] = json!(b64(&[1u8; 21]));
    assert_error(&c.post(&dp, &b).await, 400, "ValidationException");
    // Decrypting A's ciphertext with B's key fails.
    let bs = signer(AKID_B, SECRET_B, REGION, XKS_SERVICE);
    let r = send_signed(
        &c,
        &key_path(PREFIX_B, "kb", "decrypt"),
        &good,
        &bs,
        SystemTime::now(),
    )
    .await;
    assert_error(&r, 400, "InvalidCiphertextException");
}

/// The `hsm` IV capability against an HSM that does not generate IVs
/// (SoftHSM): the proxy refuses to return a ciphertext under the zero IV,
/// and health reflects the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_iv_source_never_returns_a_zero_iv() {
    let proxy = Proxy::start(Options {
        iv_source: "hsm",
        ..Default::default()
    });
    let c = proxy.client();
    let r = c
        .post(
            &key_path(PREFIX_A, "k1", "encrypt"),
            &encrypt_body(b"x", None, false),
        )
        .await;
    assert_error(&r, 500, "InternalException");
    let h = c
        .post(
            &health_path(PREFIX_A),
            &json!({"requestMetadata": meta("KmsHealthCheck")}),
        )
        .await;
    assert_eq!(h.json["ekmFleetDetails"][0]["healthStatus"], "UNAVAILABLE");
    assert!(proxy.log().contains("HSM did not generate an IV"));
}

/// The AAD handed to the HSM is exactly be16(len AAD) ‖ AAD ‖ u8(len cm) ‖ cm:
/// proxy ciphertexts open with an independent AES-GCM (aws-lc-rs) under that
/// AAD, and ciphertexts made that way decrypt through the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aad_composition_matches_independent_aes_gcm() {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let proxy = Proxy::start(Options::default());
    let c = proxy.client();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, KNOWN_KEY).unwrap());
    let compose = |aad: &[u8], cm: &[u8]| {
        let mut v = (aad.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(aad);
        v.push(cm.len() as u8);
        v.extend_from_slice(cm);
        v
    };
    for aad in [&b""[..], b"project=nile,department=marketing"] {
        let aad_opt = (!aad.is_empty()).then_some(aad);
        // Proxy encrypts; aws-lc-rs decrypts.
        let e = c
            .post(
                &key_path(PREFIX_A, "known", "encrypt"),
                &encrypt_body(b"Hello World!", aad_opt, true),
            )
            .await;
        assert_eq!(e.status, StatusCode::OK, "{:?}", e.json);
        let cm = unb64(&e.json["ciphertextMetadata"]);
        let iv = unb64(&e.json["initializationVector"]);
        let mut buf = unb64(&e.json["ciphertext"]);
        buf.extend(unb64(&e.json["authenticationTag"]));
        let nonce = Nonce::try_assume_unique_for_key(&iv).unwrap();
        let pt = key
            .open_in_place(nonce, Aad::from(compose(aad, &cm)), &mut buf)
            .expect("opens under the spec's AAD composition");
        assert_eq!(pt, b"Hello World!");

        // aws-lc-rs encrypts with caller-chosen metadata; the proxy decrypts.
        let cm = b"key_version=1";
        let iv = [9u8; 12];
        let mut ct = b"independent".to_vec();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(compose(aad, cm)),
                &mut ct,
            )
            .unwrap();
        let mut body = json!({
            "requestMetadata": meta("Decrypt"),
            "ciphertext": b64(&ct),
            "initializationVector": b64(&iv),
            "authenticationTag": b64(tag.as_ref()),
            "ciphertextMetadata": b64(cm),
            "encryptionAlgorithm": "AES_GCM",
        });
        if let Some(a) = aad_opt {
            body["additionalAuthenticatedData"] = json!(b64(a));
        }
        let d = c.post(&key_path(PREFIX_A, "known", "decrypt"), &body).await;
        assert_eq!(d.status, StatusCode::OK, "{:?}", d.json);
        assert_eq!(unb64(&d.json["plaintext"]), b"independent");
    }
}
