//! Checklist items 54 and 55: 64 concurrent clients for 30 s (override with
//! XKS_LOAD_SECONDS) against SoftHSM, with a session pool of 4, so callers
//! must queue for sessions. Zero errors allowed.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use hyper::StatusCode;
use serde_json::json;
use xks_proxy::sigv4::XKS_SERVICE;

const CLIENTS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_zero_errors() {
    let secs: u64 = std::env::var("XKS_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let proxy = Proxy::start(Options {
        pool_size: 4,
        ..Default::default()
    });
    let client = proxy.client();
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let end = Instant::now() + Duration::from_secs(secs);
    let signer = Arc::new(signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (client, ok, errors, signer) =
            (client.clone(), ok.clone(), errors.clone(), signer.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = client.connect().await.expect("connect");
            let pt = format!("client {i} plaintext").into_bytes();
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                // Alternate encrypt+decrypt round trips and metadata calls.
                let result = if n.is_multiple_of(4) {
                    let body = json!({"requestMetadata": meta("DescribeKey")});
                    call(
                        &mut conn,
                        &signer,
                        &key_path(PREFIX_A, "k1", "metadata"),
                        &body,
                    )
                    .await
                    .map(|_| 1)
                } else {
                    let body = json!({
                        "requestMetadata": meta("Encrypt"),
                        "plaintext": b64(&pt),
                        "encryptionAlgorithm": "AES_GCM",
                        "additionalAuthenticatedData": b64(b"aad"),
                        "ciphertextDataIntegrityValueAlgorithm": "SHA_256",
                    });
                    match call(
                        &mut conn,
                        &signer,
                        &key_path(PREFIX_A, "k1", "encrypt"),
                        &body,
                    )
                    .await
                    {
                        Err(e) => Err(e),
                        Ok(enc) => {
                            let body = json!({
                                "requestMetadata": meta("Decrypt"),
                                "ciphertext": enc["ciphertext"],
                                "initializationVector": enc["initializationVector"],
                                "authenticationTag": enc["authenticationTag"],
                                "ciphertextMetadata": enc["ciphertextMetadata"],
                                "additionalAuthenticatedData": b64(b"aad"),
                                "encryptionAlgorithm": "AES_GCM",
                            });
                            match call(
                                &mut conn,
                                &signer,
                                &key_path(PREFIX_A, "k1", "decrypt"),
                                &body,
                            )
                            .await
                            {
                                Ok(d) if unb64(&d["plaintext"]) == pt => Ok(2),
                                Ok(d) => Err(format!("round trip mismatch: {d}")),
                                Err(e) => Err(e),
                            }
                        }
                    }
                };
                match result {
                    Ok(k) => {
                        ok.fetch_add(k, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.lock().unwrap().push(e);
                        // Keep going on a fresh connection so one error does
                        // not hide the rest.
                        conn = client.connect().await.expect("reconnect");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = ok.load(Ordering::Relaxed);
    let errors = errors.lock().unwrap();
    println!(
        "load: {CLIENTS} clients, {secs} s, {total} successful requests ({:.0}/s), {} errors",
        total as f64 / secs as f64,
        errors.len()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(total > 0);
}

use std::sync::Mutex;

async fn call(
    conn: &mut Sender,
    signer: &xks_proxy::sigv4::Signer,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let req = SignedRequest::new(path, body.to_string().into_bytes())
        .sign(signer, SystemTime::now())
        .build();
    let r = send_on(conn, req).await?;
    if r.status != StatusCode::OK {
        return Err(format!("{} {}", r.status, r.json));
    }
    Ok(r.json)
}
