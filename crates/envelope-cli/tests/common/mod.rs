//! Running the `envelope` binary from tests.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_envelope"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn envelope")
}

/// Runs the binary with `stdin` (or an empty, closed stdin).
pub fn envelope(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = spawn(args);
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.map(<[u8]>::to_vec);
    // A writer thread, so a large input cannot deadlock against a full
    // stdout pipe.
    let writer = std::thread::spawn(move || {
        if let Some(input) = input {
            let _ = pipe.write_all(&input);
        }
    });
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    output
}

/// Asserts success and returns stdout.
pub fn ok(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = envelope(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn key_spec(dir: &Path, name: &str, byte: u8) -> String {
    let path = dir.join(format!("{name}-{byte}.key"));
    std::fs::write(&path, [byte; 32]).expect("write key");
    format!("aes:cli-ns:{name}:{}", path.display())
}

pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Every entry under `root`, relative, sorted; directories end in `/`.
pub fn tree(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path: PathBuf = entry.expect("entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.push((format!("{rel}/"), None));
                walk(root, &path, out);
            } else {
                out.push((rel, Some(std::fs::read(&path).expect("read"))));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
