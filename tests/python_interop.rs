//! The peer matrix with the official Python ESDK, both lines that are
//! supported (3.x, which aws-encryption-cli pins, and 4.x), both directions,
//! raw AES keys: every suite we encrypt with (the legacy ones under
//! forbid-encrypt-allow-decrypt), frame lengths 128, 1024 and 4096, sizes 0,
//! 1, frame - 1, frame, frame + 1 and 2 x frame, and a few MiB; a non-empty
//! encryption context. Then 100 MiB, streamed both ways.
//!
//! Needs `.venv` (ESDK 4.x) and `.venv-esdk3` (ESDK 3.x) from
//! `scripts/install-test-deps.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use envelope::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext, RawAesKeyring};

const NAMESPACE: &str = "interop-namespace";
const NAME: &str = "interop-key";
const FRAMES: [u32; 3] = [128, 1024, 4096];
/// A few MiB, not a multiple of any frame length; with 4096-byte frames.
const LARGE: usize = (3 << 20) + 7;

/// The Python of one of the project's virtual environments.
fn python(venv: &str) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(venv)
        .join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh to install the official Python ESDKs",
        python.display()
    );
    python
}

fn sizes(frame: usize) -> Vec<usize> {
    let mut sizes = vec![0, 1, frame - 1, frame, frame + 1, 2 * frame];
    if frame == 4096 {
        sizes.push(LARGE);
    }
    sizes
}

/// Runs the whole matrix against the ESDK in `venv`.
fn peer_matrix(venv: &str) {
    let python = python(venv);
    let dir = tempfile::tempdir().expect("tempdir");
    let key = [0x5Au8; 32];
    let key_file = dir.path().join("key.bin");
    std::fs::write(&key_file, key).expect("write key");
    let context: EncryptionContext = [("department", "finance"), ("purpose", "interop test")]
        .into_iter()
        .collect();
    let context_json: serde_json::Map<String, serde_json::Value> = context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    let keyring = Arc::new(RawAesKeyring::new(NAMESPACE, NAME, &key).expect("keyring"));

    let mut to_python = Vec::new();
    let mut from_python = Vec::new();
    for suite in AlgorithmSuite::ALL {
        let policy = if suite.is_committing() {
            CommitmentPolicy::RequireEncryptRequireDecrypt
        } else {
            CommitmentPolicy::ForbidEncryptAllowDecrypt
        };
        for frame in FRAMES {
            let client = Client::builder()
                .keyring(keyring.clone())
                .commitment_policy(policy)
                .suite(suite)
                .frame_length(frame)
                .build()
                .expect("client");
            for size in sizes(frame as usize) {
                let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
                let stem = format!("{:04x}-{frame}-{size}", suite.id());
                let pt_path = dir.path().join(format!("{stem}.pt"));
                std::fs::write(&pt_path, &plaintext).expect("write plaintext");
                let ct_path = dir.path().join(format!("{stem}.rust.ct"));
                let message = client
                    .encrypt_blocking(&plaintext, &context)
                    .expect("encrypt");
                std::fs::write(&ct_path, message).expect("write");
                to_python.push(serde_json::json!({
                    "ciphertext": ct_path, "plaintext": pt_path, "context": context_json,
                    "suite": suite.id(),
                }));
                from_python.push(serde_json::json!({
                    "plaintext": pt_path, "ciphertext": dir.path().join(format!("{stem}.python.ct")),
                    "context": context_json, "suite": suite.id(), "frame_length": frame,
                }));
            }
        }
    }
    let job = dir.path().join("job.json");
    let job_json = serde_json::json!({
        "key_file": key_file, "namespace": NAMESPACE, "name": NAME,
        "decrypt": to_python, "encrypt": from_python,
    });
    std::fs::write(&job, serde_json::to_vec(&job_json).expect("json")).expect("write job");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/esdk_raw_aes.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&job)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the Python ESDK in {venv} failed:\n{}\n{}",
        stdout
            .lines()
            .filter(|line| !line.ends_with(": ok"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    let cases = to_python.len();
    assert_eq!(stdout.matches("python-decrypt").count(), cases);
    assert_eq!(stdout.matches(": ok").count(), 2 * cases);

    // Python's messages, decrypted by us under the permissive policy.
    let client = Client::builder()
        .keyring(keyring)
        .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
        .build()
        .expect("client");
    for case in job_json["encrypt"].as_array().expect("cases") {
        let ciphertext =
            std::fs::read(case["ciphertext"].as_str().expect("path")).expect("python ciphertext");
        let plaintext =
            std::fs::read(case["plaintext"].as_str().expect("path")).expect("plaintext");
        let decrypted = client
            .decrypt_blocking(&ciphertext, &context)
            .unwrap_or_else(|e| panic!("decrypt {}: {e}", case["ciphertext"]));
        assert_eq!(decrypted.plaintext, plaintext, "{}", case["ciphertext"]);
        assert_eq!(
            u64::from(decrypted.suite.id()),
            case["suite"].as_u64().expect("suite")
        );
    }
    println!(
        "peer matrix ({venv}): {}; we decrypted {cases} of its messages",
        stdout.lines().last().unwrap_or_default()
    );
}

#[test]
fn peer_matrix_python_esdk_4() {
    peer_matrix(".venv");
}

#[test]
fn peer_matrix_python_esdk_3() {
    peer_matrix(".venv-esdk3");
}

/// 100 MiB (a multiple of the frame length), streamed both ways, with the
/// ESDK 4.x and 3.x: each decrypts our streamed
/// multi-frame message, and we stream-decrypt its message of the same file.
#[test]
fn python_esdk_streams_100_mib_both_ways() {
    for venv in [".venv", ".venv-esdk3"] {
        streams_100_mib_both_ways(venv);
    }
}

fn streams_100_mib_both_ways(venv: &str) {
    use std::io::{BufReader, BufWriter, Read, Write};

    let python = python(venv);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/esdk_stream.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let key = [0x3Cu8; 32];
    let key_file = dir.path().join("key.bin");
    std::fs::write(&key_file, key).expect("write key");
    let plain_path = dir.path().join("big.bin");
    const SIZE: usize = 100 << 20;
    {
        // Deterministic, non-repeating content.
        let mut file = BufWriter::new(std::fs::File::create(&plain_path).expect("create"));
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..SIZE / block.len() {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            file.write_all(&block).expect("write");
        }
        file.flush().expect("flush");
    }
    let client = Client::builder()
        .keyring(Arc::new(
            RawAesKeyring::new("interop-stream", "stream-key", &key).expect("keyring"),
        ))
        .build()
        .expect("client");
    let context: EncryptionContext = [("file", "big.bin")].into_iter().collect();

    // Ours, streamed, to Python.
    let ours = dir.path().join("big.rust.ct");
    let mut writer = client
        .encrypting_writer_blocking(
            BufWriter::new(std::fs::File::create(&ours).expect("create")),
            &context,
            Some(SIZE as u64),
        )
        .expect("writer");
    std::io::copy(
        &mut BufReader::new(std::fs::File::open(&plain_path).expect("open")),
        &mut writer,
    )
    .expect("copy");
    writer.finish().expect("finish").flush().expect("flush");
    let python_out = dir.path().join("big.python.pt");
    let status = Command::new(&python)
        .arg(&script)
        .args([
            "decrypt",
            key_file.to_str().expect("utf8"),
            ours.to_str().expect("utf8"),
        ])
        .arg(&python_out)
        .status()
        .expect("run python");
    assert!(
        status.success(),
        "the Python ESDK could not decrypt our 100 MiB stream"
    );
    assert!(
        files_equal(&plain_path, &python_out),
        "Python's plaintext differs"
    );

    // Python's, streamed, to us.
    let theirs = dir.path().join("big.python.ct");
    let status = Command::new(&python)
        .arg(&script)
        .args([
            "encrypt",
            key_file.to_str().expect("utf8"),
            plain_path.to_str().expect("utf8"),
        ])
        .arg(&theirs)
        .status()
        .expect("run python");
    assert!(status.success(), "the Python ESDK could not encrypt");
    let mut reader = client
        .decrypting_reader_blocking(
            BufReader::new(std::fs::File::open(&theirs).expect("open")),
            &context,
            envelope::ReleasePolicy::PerFrame,
        )
        .expect("reader");
    let ours_out = dir.path().join("big.rust.pt");
    std::io::copy(
        &mut reader,
        &mut BufWriter::new(std::fs::File::create(&ours_out).expect("create")),
    )
    .expect("decrypt");
    assert!(
        files_equal(&plain_path, &ours_out),
        "our plaintext of Python's message differs"
    );
    assert_eq!(reader.header().suite.id(), 0x0578);
    assert!(reader.header().frame_length == 4096);

    fn files_equal(a: &Path, b: &Path) -> bool {
        let (mut a, mut b) = (
            BufReader::new(std::fs::File::open(a).expect("open")),
            BufReader::new(std::fs::File::open(b).expect("open")),
        );
        let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
        loop {
            let n = a.read(&mut x).expect("read");
            if n == 0 {
                return b.read(&mut y).expect("read") == 0;
            }
            if b.read_exact(&mut y[..n]).is_err() || x[..n] != y[..n] {
                return false;
            }
        }
    }
}
