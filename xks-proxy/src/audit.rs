//! The audit log: one JSON object per line per request, to a file or stdout.
//!
//! A record carries identifiers, the decision and timings only. It is built
//! from typed fields (never from request bodies), so plaintext, AAD,
//! ciphertext, key material, PINs and SigV4 secrets cannot reach it.
//!
//! # Why a writer thread
//! A request hands its line to a queue and moves on; one thread writes the
//! queue out, a batch per `write` call. Writing from the request itself put
//! a file write on the reactor threads that carry TLS and HTTP, where a
//! write that waits on the disk (journal commits, page writeback) stalled
//! every connection of that thread. Lines stay whole and never interleave
//! (one writer, whole lines per batch). A full queue (a disk stalled for
//! tens of thousands of requests) makes requests wait rather than drop
//! records: the audit log is complete or the proxy slows down.
//! [`AuditLog::flush`] waits until everything queued is written; the proxy
//! calls it after draining at shutdown, and dropping the log does the same.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
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

/// Records queued at most before requests wait for the writer.
const QUEUE: usize = 65_536;
/// Bytes the writer gathers before a `write` call, when more are queued.
const BATCH: usize = 64 * 1024;

enum Sink {
    Stdout,
    File(File),
}

impl Sink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            // O_APPEND: each batch lands at the end, whole.
            Sink::File(f) => f.write_all(bytes),
        }
    }
}

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// Where audit records go: a queue drained by one writer thread.
pub struct AuditLog {
    queue: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

/// The writer thread: takes what is queued, writes it in batches, and
/// answers flushes once the lines before them are out.
fn write_queue(mut sink: Sink, queue: Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    let mut write_out = |batch: &mut Vec<u8>| {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = sink.write_all(batch) {
            tracing::error!(error = %e, "audit write failed");
        }
        batch.clear();
    };
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => batch.extend_from_slice(&line),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() >= BATCH {
                write_out(&mut batch);
            }
            next = queue.try_recv().ok();
        }
        write_out(&mut batch);
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
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
        let (queue, receiver) = mpsc::sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("xks-audit".into())
            .spawn(move || write_queue(sink, receiver))?;
        Ok(AuditLog {
            queue: Some(queue),
            writer: Some(writer),
        })
    }

    /// Queues one record as one line. A failure is reported on the
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
        let Some(queue) = &self.queue else { return };
        let sent = match queue.try_send(Message::Line(line)) {
            Ok(()) => Ok(()),
            // The writer is far behind: wait for room rather than lose the
            // record.
            Err(TrySendError::Full(message)) => {
                tracing::warn!("audit queue full: requests wait for the audit writer");
                queue.send(message).map_err(|_| ())
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            tracing::error!("audit writer has stopped; record not written");
        }
    }

    /// Waits until every record queued so far is written.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if let Some(queue) = &self.queue {
            if queue.send(Message::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written the rest.
        drop(self.queue.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
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
        log.flush();
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["outcome"], "OK");
        assert!(v["kmsRequestId"].is_null());
    }

    #[test]
    fn concurrent_records_are_whole_lines_and_dropping_writes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open("audit.log", dir.path()).unwrap());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        log.write(&AuditRecord {
                            time: rfc3339(SystemTime::now()),
                            kms_request_id: Some(format!("{t}-{i}")),
                            outcome: "OK",
                            status: 200,
                            ..Default::default()
                        });
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        // Dropping the last handle writes everything still queued.
        drop(std::sync::Arc::into_inner(log).expect("last handle"));
        let text = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let mut ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a whole record");
                v["kmsRequestId"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 20_000);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20_000, "every record exactly once");
    }
}
