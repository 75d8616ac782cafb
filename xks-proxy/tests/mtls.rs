//! mTLS (checklist items 20-23): client certificates from the configured CA
//! with an allowed subject succeed; anything else ends the handshake with a
//! fatal alert and never reaches HTTP.

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::json;

async fn health(c: &Client) -> Result<StatusCode, String> {
    let mut s = c.connect().await?;
    let req = SignedRequest::new(
        &health_path(PREFIX_A),
        json!({"requestMetadata": meta("KmsHealthCheck")})
            .to_string()
            .into_bytes(),
    )
    .sign(
        &signer(AKID_A1, SECRET_A1, REGION, xks_proxy::sigv4::XKS_SERVICE),
        std::time::SystemTime::now(),
    )
    .build();
    send_on(&mut s, req).await.map(|r| r.status)
}

/// Handshake, then one raw request, reading until the server closes. The
/// alert shows up either in the handshake (TLS 1.2) or on the first read
/// (TLS 1.3, where the server checks the client's certificate after the
/// client considers the handshake done).
async fn raw_ping(c: &Client) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(c.addr)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = c
        .connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("{e:?}"))?;
    tls.write_all(b"GET /ping HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("{e:?}"))?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out)
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn versions() -> [(&'static str, Vec<&'static rustls::SupportedProtocolVersion>); 2] {
    [
        ("TLS1.3", vec![&rustls::version::TLS13]),
        ("TLS1.2", vec![&rustls::version::TLS12]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_positive_and_negative() {
    let proxy = Proxy::start(Options {
        mtls: true,
        ..Default::default()
    });
    for (name, v) in versions() {
        let with = |cert: Option<(String, String)>| {
            proxy.client_with(ClientOptions {
                versions: v.clone(),
                client_cert: cert,
                ..Default::default()
            })
        };
        // Item 20.
        let ok = health(&with(Some(proxy.pki.client_good.clone()))).await;
        assert_eq!(ok, Ok(StatusCode::OK), "{name}");
        let ok = raw_ping(&with(Some(proxy.pki.client_good.clone()))).await;
        assert!(
            ok.as_deref().is_ok_and(|t| t.starts_with("HTTP/1.1 200")),
            "{name}: {ok:?}"
        );

        // Item 21: no certificate. rustls refuses this before any verifier
        // runs, with the certificate_required alert (see src/tls.rs).
        let err = raw_ping(&with(None)).await.expect_err(name);
        assert!(
            err.contains("AlertReceived(CertificateRequired)"),
            "{name}: {err}"
        );

        // Item 22: certificate from another CA -> handshake_failure.
        let err = raw_ping(&with(Some(proxy.pki.client_other_ca.clone())))
            .await
            .expect_err(name);
        assert!(
            err.contains("AlertReceived(HandshakeFailure)"),
            "{name}: {err}"
        );

        // Item 23: trusted CA, subject not on the allow-list -> handshake_failure.
        let err = raw_ping(&with(Some(proxy.pki.client_bad_subject.clone())))
            .await
            .expect_err(name);
        assert!(
            err.contains("AlertReceived(HandshakeFailure)"),
            "{name}: {err}"
        );
    }
    let log = proxy.log();
    assert!(
        log.contains("client certificate rejected"),
        "rejections are logged"
    );
}
