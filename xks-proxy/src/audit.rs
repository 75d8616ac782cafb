//! The audit log: one JSON object per line per request, to a file or stdout.
//!
//! A record carries identifiers, the decision and timings only. It is built
//! from typed fields (never from request bodies), so plaintext, AAD,
//! ciphertext, key material, PINs and SigV4 secrets cannot reach it.
//!
//! Lines are written under a mutex with one `write` call each, so lines
//! from concurrent requests never interleave, and a reader tailing the file
//! sees whole records.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::sigv4::time::civil_from_days;

/// One request, as logged.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// RFC 3339 UTC time the request arrived, with milliseconds.
    pub time: String,
    /// `kmsRequestId` from the request metadata, when the body parsed.
    pub kms_request_id: Option<String>,
    /// `kmsOperation` from the request metadata.
    pub kms_operation: Option<String>,
    /// The XKS operation from the URI (`health`, `metadata`, `encrypt`,
    /// `decrypt`), when the URI routed.
    pub operation: Option<&'static str>,
    /// `awsPrincipalArn`.
    pub principal: Option<String>,
    /// The XKS key id from the URI.
    pub key_id: Option<String>,
    /// The URI prefix (key store).
    pub prefix: Option<String>,
    /// The SigV4 access key id that signed the request, once verified.
    pub access_key_id: Option<String>,
    /// `OK` or `ERROR`.
    pub outcome: &'static str,
    /// The XKS error name, for errors.
    pub error_name: Option<&'static str>,
    /// The policy rule that decided the request, when a policy applied.
    pub authz_rule: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Time from arrival to response, in microseconds.
    pub latency_us: u64,
    /// Time spent in the HSM (including waiting for a session), in
    /// microseconds.
    pub hsm_latency_us: u64,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

enum Sink {
    Stdout,
    File(File),
}

/// Where audit records go.
pub struct AuditLog {
    sink: Mutex<Sink>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// `"stdout"` or a file path, opened for appending (created if missing).
    pub fn open(output: &str, base: &Path) -> std::io::Result<AuditLog> {
        let sink = if output == "stdout" {
            Sink::Stdout
        } else {
            Sink::File(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(base.join(output))?,
            )
        };
        Ok(AuditLog {
            sink: Mutex::new(sink),
        })
    }

    /// Writes one record as one line. A failed write is reported on the
    /// diagnostic log, never to the client: the request already happened.
    pub fn write(&self, rec: &AuditRecord) {
        let mut line = match serde_json::to_vec(rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "audit record did not serialize");
                return;
            }
        };
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        let result = match &mut *sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&line).and_then(|()| out.flush())
            }
            // O_APPEND: one write_all of a short line is one write(2).
            Sink::File(f) => f.write_all(&line),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "audit write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert_eq!(rfc3339(t), "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn lines_are_whole_json_objects() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open("audit.log", dir.path()).unwrap();
        let rec = AuditRecord {
            time: rfc3339(SystemTime::now()),
            outcome: "OK",
            status: 200,
            ..Default::default()
        };
        log.write(&rec);
        log.write(&rec);
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["outcome"], "OK");
        assert!(v["kmsRequestId"].is_null());
    }
}
