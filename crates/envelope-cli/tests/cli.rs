//! Drives the `envelope` binary: round trips, exit codes, one-line errors,
//! and no output left behind when decryption fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn envelope(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_envelope"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envelope");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn key_spec(dir: &Path, name: &str, byte: u8) -> String {
    let path = dir.join(format!("{name}-{byte}.key"));
    std::fs::write(&path, [byte; 32]).expect("write key");
    format!("aes:cli-ns:{name}:{}", path.display())
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "expected one line on stderr: {stderr:?}"
    );
    stderr
}

#[test]
fn round_trip_files_and_pipes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k1", 1);
    let second = key_spec(dir.path(), "k2", 2);
    let input = dir.path().join("plain.txt");
    std::fs::write(&input, b"hello from the CLI").expect("write");
    let sealed = dir.path().join("plain.txt.encrypted");
    let out = envelope(
        &[
            "encrypt",
            "--input",
            input.to_str().expect("utf8"),
            "--output",
            sealed.to_str().expect("utf8"),
            "--wrapping-key",
            &key,
            "--wrapping-key",
            &second,
            "--encryption-context",
            "team=blue",
            "--suite",
            "0x0478",
            "--frame-length",
            "8",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Decrypt with only the second key, from stdin to stdout, requiring the pair.
    let out = envelope(
        &[
            "decrypt",
            "--input",
            "-",
            "--output",
            "-",
            "--wrapping-key",
            &second,
            "--encryption-context",
            "team=blue",
        ],
        Some(&std::fs::read(&sealed).expect("read")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello from the CLI");
}

#[test]
fn failed_decrypt_exits_1_with_one_line_and_no_output_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k1", 1);
    let wrong = key_spec(dir.path(), "k1", 9);
    let sealed = dir.path().join("msg.encrypted");
    let out = envelope(
        &[
            "encrypt",
            "-i",
            "-",
            "-o",
            sealed.to_str().expect("utf8"),
            "-w",
            &key,
            "-c",
            "a=b",
        ],
        Some(&[0x33; 10_000]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = dir.path().join("msg.decrypted");
    let target_str = target.to_str().expect("utf8");
    let sealed_str = sealed.to_str().expect("utf8");

    let out = envelope(
        &["decrypt", "-i", sealed_str, "-o", target_str, "-w", &wrong],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("decryption failed"),
        "{}",
        stderr_line(&out)
    );
    assert!(!target.exists());

    // Tamper with the last frame: no partial plaintext may appear anywhere.
    let mut tampered = std::fs::read(&sealed).expect("read");
    let at = tampered.len() - 200;
    tampered[at] ^= 0x80;
    let tampered_path = dir.path().join("tampered");
    std::fs::write(&tampered_path, &tampered).expect("write");
    let out = envelope(
        &[
            "decrypt",
            "-i",
            tampered_path.to_str().expect("utf8"),
            "-o",
            target_str,
            "-w",
            &key,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    stderr_line(&out);
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(
        leftovers.len(),
        4,
        "only keys, message and tampered copy remain: {leftovers:?}"
    );

    // Tampered, to stdout: nothing is written.
    let out = envelope(
        &["decrypt", "-i", "-", "-o", "-", "-w", &key],
        Some(&tampered),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());

    // A required pair the message lacks.
    let out = envelope(
        &[
            "decrypt", "-i", sealed_str, "-o", target_str, "-w", &key, "-c", "a=c",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("\"a\""), "names the key");
    assert!(!target.exists());

    // Too many EDKs for the configured limit.
    let out = envelope(
        &[
            "decrypt",
            "-i",
            sealed_str,
            "-o",
            target_str,
            "-w",
            &key,
            "--max-encrypted-data-keys",
            "0",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2_and_bad_keys_exit_1() {
    let out = envelope(&["encrypt", "-i", "-", "-o", "-"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --wrapping-key is a usage error"
    );
    let out = envelope(
        &[
            "encrypt",
            "-i",
            "-",
            "-o",
            "-",
            "-w",
            "aes:ns:name:/nonexistent/key",
        ],
        Some(b"x"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("/nonexistent/key"));
    let out = envelope(
        &["encrypt", "-i", "-", "-o", "-", "-w", "des:x"],
        Some(b"x"),
    );
    assert_eq!(out.status.code(), Some(1));
    let out = envelope(
        &[
            "decrypt",
            "-i",
            "-",
            "-o",
            "-",
            "-w",
            "aes:a:b:c",
            "--commitment-policy",
            "nope",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn legacy_policy_reads_what_strict_policy_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = key_spec(dir.path(), "k", 4);
    // 0x0578 is the default, and require-encrypt-require-decrypt decrypts it.
    let sealed = envelope(
        &["encrypt", "-i", "-", "-o", "-", "-w", &key],
        Some(b"data"),
    )
    .stdout;
    assert_eq!(sealed[0], 2);
    for policy in [
        "require-encrypt-require-decrypt",
        "require-encrypt-allow-decrypt",
        "forbid-encrypt-allow-decrypt",
    ] {
        let out = envelope(
            &[
                "decrypt",
                "-i",
                "-",
                "-o",
                "-",
                "-w",
                &key,
                "--commitment-policy",
                policy,
            ],
            Some(&sealed),
        );
        assert!(
            out.status.success(),
            "{policy}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"data");
    }
}
