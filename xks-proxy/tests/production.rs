//! Issue 7 in operation: secondary authorization, the audit log, metrics,
//! quotas and graceful shutdown, against the real binary and SoftHSM.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};

const ALICE: &str = "arn:aws:iam::123456789012:user/Alice";
const BOB: &str = "arn:aws:iam::123456789012:user/Bob";
const CAROL: &str = "arn:aws:iam::123456789012:role/carol";
const MALLORY: &str = "arn:aws:iam::999999999999:user/mallory";

/// Users of account 1234... may use keys `k*`; Bob is denied explicitly
/// even though the allow matches him too; Decrypt through S3 is denied.
const POLICY: &str = r#"
[[statement]]
sid = "deny-bob"
effect = "deny"
principals = ["arn:aws:iam::123456789012:user/Bob"]

[[statement]]
sid = "deny-decrypt-via-s3"
effect = "deny"
operations = ["Decrypt"]
via_services = ["s3.*.amazonaws.com"]

[[statement]]
sid = "allow-account-users"
effect = "allow"
principals = ["arn:aws:iam::123456789012:user/*"]
key_ids = ["k*", "known"]

[[statement]]
sid = "allow-carol-metadata"
effect = "allow"
principals = ["arn:aws:iam::123456789012:role/carol"]
operations = ["DescribeKey"]
"#;

fn meta_as(op: &str, principal: &str) -> Value {
    let mut m = meta(op);
    m["awsPrincipalArn"] = json!(principal);
    m
}

fn encrypt_as(principal: &str, plaintext: &[u8], aad: &[u8]) -> Value {
    json!({
        "requestMetadata": meta_as("Encrypt", principal),
        "plaintext": b64(plaintext),
        "additionalAuthenticatedData": b64(aad),
        "encryptionAlgorithm": "AES_GCM",
    })
}

/// The audit log's records once it holds `expected` of them (its writer
/// thread writes a request's line just after the response leaves), or
/// whatever it holds after five seconds.
fn audit_lines(proxy: &Proxy, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(proxy.dir.path().join("audit.log")).unwrap_or_default();
        if text.lines().count() >= expected || Instant::now() > deadline {
            return text
                .lines()
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}"))
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Authorization: allowed, denied by principal, explicit deny over allow,
/// implicit deny, health exempt; plus the audit log's shape and secrecy
/// and the metrics that count all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_audit_and_metrics() {
    let (proxy, metrics_addr) = Proxy::start_with_metrics(|metrics_addr| Options {
        store_a_extra: "policy = \"policy.toml\"".into(),
        tables_extra: format!(
            "[audit]\noutput = \"audit.log\"\n[metrics]\nlisten = \"{metrics_addr}\"\n"
        ),
        files: vec![("policy.toml".into(), POLICY.into())],
        ..Default::default()
    });
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let plaintext = b"audit-secret-plaintext-0123456789";
    let aad = b"audit-secret-aad-project=nile";

    // Allowed: Alice, key k1.
    let enc = c.post(&ep, &encrypt_as(ALICE, plaintext, aad)).await;
    assert_eq!(enc.status, StatusCode::OK, "{:?}", enc.json);
    let dec_body = |principal: &str| {
        json!({
            "requestMetadata": meta_as("Decrypt", principal),
            "ciphertext": enc.json["ciphertext"],
            "initializationVector": enc.json["initializationVector"],
            "authenticationTag": enc.json["authenticationTag"],
            "ciphertextMetadata": enc.json["ciphertextMetadata"],
            "additionalAuthenticatedData": b64(aad),
            "encryptionAlgorithm": "AES_GCM",
        })
    };
    let dp = key_path(PREFIX_A, "k1", "decrypt");
    let dec = c.post(&dp, &dec_body(ALICE)).await;
    assert_eq!(dec.status, StatusCode::OK);
    assert_eq!(unb64(&dec.json["plaintext"]), plaintext);

    // Denied by principal: Bob matches the allow but also the explicit deny.
    let r = c.post(&ep, &encrypt_as(BOB, plaintext, aad)).await;
    assert_error(&r, 403, "AccessDeniedException");
    // Explicit deny (Decrypt via S3) overriding the allow that matches Alice.
    let mut via_s3 = dec_body(ALICE);
    via_s3["requestMetadata"]["kmsViaService"] = json!("s3.us-east-1.amazonaws.com");
    assert_error(&c.post(&dp, &via_s3).await, 403, "AccessDeniedException");
    // Implicit deny: another account; Alice on a key outside the allow.
    assert_error(
        &c.post(&ep, &encrypt_as(MALLORY, plaintext, aad)).await,
        403,
        "AccessDeniedException",
    );
    let other_key = key_path(PREFIX_A, "enc-only", "encrypt");
    assert_error(
        &c.post(&other_key, &encrypt_as(ALICE, plaintext, aad)).await,
        403,
        "AccessDeniedException",
    );
    // Operation conditions: Carol may read metadata, not encrypt.
    let mp = key_path(PREFIX_A, "k1", "metadata");
    let r = c
        .post(
            &mp,
            &json!({"requestMetadata": meta_as("DescribeKey", CAROL)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    assert_error(
        &c.post(&ep, &encrypt_as(CAROL, plaintext, aad)).await,
        403,
        "AccessDeniedException",
    );
    // Health is exempt, whoever asks.
    for who in [BOB, MALLORY] {
        let r = c
            .post(
                &health_path(PREFIX_A),
                &json!({"requestMetadata": meta_as("KmsHealthCheck", who)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        assert_eq!(r.json["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");
    }
    // Key store B has no policy: anyone is allowed.
    let rb = c
        .send(
            SignedRequest::new(
                &key_path(PREFIX_B, "kb", "encrypt"),
                encrypt_as(MALLORY, b"x", b"y").to_string().into_bytes(),
            )
            .sign(
                &signer(AKID_B, SECRET_B, REGION, xks_proxy::sigv4::XKS_SERVICE),
                std::time::SystemTime::now(),
            )
            .build(),
        )
        .await
        .unwrap();
    assert_eq!(rb.status, StatusCode::OK);
    // An unauthenticated request and an unknown path are audited too.
    let bad = c
        .send(
            SignedRequest::new(&ep, b"{}".to_vec())
                .sign(
                    &signer(AKID_A1, SECRET_B, REGION, xks_proxy::sigv4::XKS_SERVICE),
                    std::time::SystemTime::now(),
                )
                .build(),
        )
        .await
        .unwrap();
    assert_error(&bad, 401, "AuthenticationFailedException");
    assert_error(
        &c.post("/nowhere/kms/xks/v1/keys/k1/encrypt", &json!({}))
            .await,
        404,
        "InvalidUriPathException",
    );

    // The log names the rule that denied each request.
    let log = proxy.log();
    for rule in ["deny-bob", "deny-decrypt-via-s3", "implicit-deny"] {
        assert!(
            log.contains(&format!("rule=\"{rule}\"")) || log.contains(&format!("rule={rule}")),
            "rule {rule} not logged"
        );
    }

    // Audit: one line per request (the 13 above), each a complete record.
    let lines = audit_lines(&proxy, 13);
    assert_eq!(lines.len(), 13, "{lines:#?}");
    for l in &lines {
        let obj = l.as_object().unwrap();
        for field in [
            "time",
            "kmsRequestId",
            "kmsOperation",
            "operation",
            "principal",
            "keyId",
            "prefix",
            "accessKeyId",
            "outcome",
            "errorName",
            "authzRule",
            "status",
            "latencyUs",
            "hsmLatencyUs",
        ] {
            assert!(obj.contains_key(field), "{field} missing in {l}");
        }
        let time = l["time"].as_str().unwrap();
        assert_eq!(time.len(), 24, "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T');
        let ok = l["outcome"] == "OK";
        assert_eq!(ok, l["errorName"].is_null(), "{l}");
        assert_eq!(ok, l["status"] == 200, "{l}");
        assert!(l["outcome"] == "OK" || l["outcome"] == "ERROR");
        assert!(l["latencyUs"].as_u64().unwrap() >= l["hsmLatencyUs"].as_u64().unwrap());
    }
    let find = |principal: &str, status: u64| {
        lines
            .iter()
            .find(|l| l["principal"] == principal && l["status"] == status)
            .unwrap_or_else(|| panic!("no {status} line for {principal}"))
    };
    let allowed = find(ALICE, 200);
    assert_eq!(
        allowed["kmsRequestId"],
        "4112f4d6-db54-4af4-ae30-c55a22a8dfae"
    );
    assert_eq!(allowed["kmsOperation"], "Encrypt");
    assert_eq!(allowed["keyId"], "k1");
    assert_eq!(allowed["prefix"], PREFIX_A);
    assert_eq!(allowed["accessKeyId"], AKID_A1);
    assert_eq!(allowed["authzRule"], "allow-account-users");
    assert!(allowed["hsmLatencyUs"].as_u64().unwrap() > 0);
    let denied = find(BOB, 403);
    assert_eq!(denied["errorName"], "AccessDeniedException");
    assert_eq!(denied["authzRule"], "deny-bob");
    assert_eq!(
        denied["hsmLatencyUs"], 0,
        "a denied request never reaches the HSM"
    );
    assert!(lines
        .iter()
        .any(|l| l["errorName"] == "AuthenticationFailedException" && l["accessKeyId"].is_null()));
    assert!(lines
        .iter()
        .any(|l| l["errorName"] == "InvalidUriPathException" && l["prefix"] == "/nowhere"));
    assert!(lines
        .iter()
        .any(|l| l["operation"] == "health" && l["authzRule"].is_null()));

    // No secrets anywhere in the audit log or the diagnostic log.
    let audit_text = std::fs::read_to_string(proxy.dir.path().join("audit.log")).unwrap();
    let secrets: Vec<String> = vec![
        String::from_utf8_lossy(plaintext).into_owned(),
        b64(plaintext),
        String::from_utf8_lossy(aad).into_owned(),
        b64(aad),
        enc.json["ciphertext"].as_str().unwrap().to_owned(),
        enc.json["authenticationTag"].as_str().unwrap().to_owned(),
        String::from_utf8_lossy(KNOWN_KEY).into_owned(),
        SECRET_A1.into(),
        SECRET_A2.into(),
        SECRET_B.into(),
        // (The SO PIN, 12345678, is part of the test account id and is
        // never given to the proxy.)
        USER_PIN.into(),
    ];
    for s in &secrets {
        assert!(
            !audit_text.contains(s.as_str()),
            "secret {s:?} in the audit log"
        );
        assert!(
            !log.contains(s.as_str()),
            "secret {s:?} in the diagnostic log"
        );
    }

    // Metrics count the same requests.
    let text = Proxy::scrape(metrics_addr);
    assert_eq!(
        metric(
            &text,
            "xks_requests_total{operation=\"encrypt\",outcome=\"AccessDeniedException\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        metric(
            &text,
            "xks_requests_total{operation=\"encrypt\",outcome=\"OK\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &text,
            "xks_requests_total{operation=\"health\",outcome=\"OK\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, "xks_authz_denied_requests_total{key_store=\"a\"}"),
        Some(5.0)
    );
    assert_eq!(
        metric(&text, "xks_hsm_sessions_max{key_store=\"a\"}"),
        Some(4.0)
    );
    assert_eq!(
        metric(&text, "xks_hsm_sessions_in_use{key_store=\"a\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&text, "xks_health_status{key_store=\"a\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(
            &text,
            "xks_request_duration_seconds_count{operation=\"encrypt\"}"
        ),
        Some(8.0)
    );
    assert!(
        metric(
            &text,
            "xks_hsm_duration_seconds_count{operation=\"encrypt\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert!(text.contains("# TYPE xks_request_duration_seconds histogram"));
}

/// Quota: a bucket of 5 at 2/s; a burst past it gets 429
/// ThrottlingException, health is not throttled, and the bucket refills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_throttles_per_key_store() {
    let (proxy, metrics_addr) = Proxy::start_with_metrics(|metrics_addr| Options {
        store_a_extra: "[key_store.quota]\nrequests_per_second = 2.0\nburst = 5.0".into(),
        tables_extra: format!("[metrics]\nlisten = \"{metrics_addr}\"\n"),
        ..Default::default()
    });
    let c = proxy.client();
    let mp = key_path(PREFIX_A, "k1", "metadata");
    let body = json!({"requestMetadata": meta("DescribeKey")});
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(c.post(&mp, &body).await);
    }
    let ok = statuses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert!((5..=6).contains(&ok), "{ok} of 8 passed a bucket of 5");
    let throttled = statuses.last().unwrap();
    assert_error(throttled, 429, "ThrottlingException");
    // Health is exempt; key store B has its own (absent) quota.
    let h = c
        .post(
            &health_path(PREFIX_A),
            &json!({"requestMetadata": meta("KmsHealthCheck")}),
        )
        .await;
    assert_eq!(h.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(c.post(&mp, &body).await.status, StatusCode::OK);
    let text = Proxy::scrape(metrics_addr);
    let n = metric(&text, "xks_throttled_requests_total{key_store=\"a\"}").unwrap();
    assert_eq!(n as usize, 8 - ok);
    assert_eq!(
        metric(
            &text,
            "xks_requests_total{operation=\"metadata\",outcome=\"ThrottlingException\"}"
        ),
        Some(n)
    );
}

/// With `key_info_cache_ms` set, a metadata request within the TTL of the
/// last read is answered from the cache without an HSM call (no session,
/// no blocking thread); encrypt still goes to the HSM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_key_info_answers_metadata_without_the_hsm() {
    let (proxy, metrics_addr) = Proxy::start_with_metrics(|metrics_addr| Options {
        hsm_extra: "key_info_cache_ms = 60000".into(),
        tables_extra: format!("[metrics]\nlisten = \"{metrics_addr}\"\n"),
        ..Default::default()
    });
    let c = proxy.client();
    let mp = key_path(PREFIX_A, "k1", "metadata");
    let body = json!({"requestMetadata": meta("DescribeKey")});
    let first = c.post(&mp, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.json);
    for _ in 0..3 {
        let again = c.post(&mp, &body).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.json, first.json);
    }
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let enc = c.post(&ep, &encrypt_as(ALICE, b"plaintext", b"")).await;
    assert_eq!(enc.status, StatusCode::OK, "{:?}", enc.json);
    let text = Proxy::scrape(metrics_addr);
    let series = |s: &str| metric(&text, s);
    assert_eq!(
        series("xks_requests_total{operation=\"metadata\",outcome=\"OK\"}"),
        Some(4.0)
    );
    assert_eq!(
        series("xks_hsm_duration_seconds_count{operation=\"metadata\"}"),
        Some(1.0),
        "only the first metadata request may reach the HSM"
    );
    assert_eq!(
        series("xks_hsm_duration_seconds_count{operation=\"encrypt\"}"),
        Some(1.0)
    );
}

/// SIGTERM drains: a request in flight (held up by a stalled HSM) still
/// gets its answer, then the process exits 0; new connections are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let mut proxy = Proxy::start(Options {
        operation_timeout_ms: 5000,
        ..Default::default()
    });
    let c = proxy.client();
    let ep = key_path(PREFIX_A, "k1", "encrypt");
    let body = encrypt_as(ALICE, b"drain me", b"");
    assert_eq!(c.post(&ep, &body).await.status, StatusCode::OK);
    let stall = HsmStall::start(&proxy.hsm.token_dir);
    let in_flight = {
        let (c, ep, body) = (c.clone(), ep.clone(), body.clone());
        tokio::spawn(async move { c.post(&ep, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    proxy.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.connect().await.is_err(),
        "the listener is closed while draining"
    );
    drop(stall);
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
    let st = proxy
        .wait_exit(Duration::from_secs(10))
        .expect("proxy exits after draining");
    assert!(st.success(), "exit status {st:?}");
    assert!(sent.elapsed() < Duration::from_secs(10));
    let log = proxy.log();
    assert!(log.contains("draining in-flight requests"));
    assert!(!log.contains("panicked"));
}
