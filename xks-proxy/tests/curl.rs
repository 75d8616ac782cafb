//! `curl --aws-sigv4` against a running proxy (the README's command).

mod common;

use std::process::Command;

use common::*;

#[test]
fn curl_aws_sigv4_works() {
    let version = Command::new("curl").arg("--version").output();
    let Ok(version) = version else {
        panic!("curl is not installed; install it (apt-get install -y curl) to run this test");
    };
    assert!(String::from_utf8_lossy(&version.stdout).contains("curl"));
    let proxy = Proxy::start(Options::default());
    let dir = proxy.dir.path();
    let port = proxy.addr.port();
    let run = |path: &str, body: &str| {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "--cacert"])
            .arg(dir.join("server-ca.pem"))
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy"])
            .args(["--user", &format!("{AKID_A1}:{SECRET_A1}")])
            .args(["-H", "Content-Type: application/json"])
            .args(["-d", body])
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, out) = run(
        &health_path(PREFIX_A),
        r#"{"requestMetadata":{"kmsRequestId":"1","kmsOperation":"KmsHealthCheck"}}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains(r#""healthStatus":"ACTIVE""#), "{out}");
    let (ok, out) = run(
        &key_path(PREFIX_A, "k1", "encrypt"),
        r#"{"requestMetadata":{"kmsRequestId":"2","kmsOperation":"Encrypt","awsPrincipalArn":"arn:aws:iam::1:user/a","kmsKeyArn":"arn:k"},"plaintext":"SGVsbG8gV29ybGQh","encryptionAlgorithm":"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("ciphertextDataIntegrityValue"), "{out}");
    // A wrong secret is refused, so the success above is real.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("server-ca.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy"])
        .args(["--user", &format!("{AKID_A1}:{SECRET_A2}")])
        .args(["-d", "{}"])
        .arg(format!("https://localhost:{port}{}", health_path(PREFIX_A)))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("AuthenticationFailedException"));
}
