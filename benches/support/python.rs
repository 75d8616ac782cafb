//! An official Python peer kept running beside a bench, so that a slice
//! costs one line of IPC: the script prints `ready` and its versions once
//! warm, then answers each `OP SECONDS` line with the operations per second
//! it measured.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// A running peer script from `.venv`.
pub struct PythonPeer {
    /// The versions the script reports (its ESDK and `cryptography`).
    pub versions: String,
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl PythonPeer {
    /// Starts `script` (relative to the workspace) with `args`; `None`, with
    /// a note on stderr, when `.venv` is missing or the script fails.
    pub fn start(script: &str, args: &[String]) -> Option<PythonPeer> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bin/python");
        if !python.exists() {
            eprintln!(
                "note: {} missing (run scripts/install-test-deps.sh); Python column skipped",
                python.display()
            );
            return None;
        }
        let mut child = Command::new(python)
            .arg(root.join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let input = child.stdin.take()?;
        let mut output = BufReader::new(child.stdout.take()?);
        let mut ready = String::new();
        output.read_line(&mut ready).ok()?;
        let versions = ready.trim().strip_prefix("ready")?.trim().to_owned();
        Some(PythonPeer {
            versions,
            child,
            input,
            output,
        })
    }

    /// Runs `op` for `slice` in the peer; its rate.
    pub fn rate(&mut self, op: &str, slice: Duration) -> Option<f64> {
        writeln!(self.input, "{op} {}", slice.as_secs_f64()).ok()?;
        let mut line = String::new();
        self.output.read_line(&mut line).ok()?;
        line.trim().parse().ok()
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
