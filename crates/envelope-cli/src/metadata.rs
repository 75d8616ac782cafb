//! `--metadata-output`: one JSON object per processed file, one per line
//! (JSON Lines), in the spirit of aws-encryption-cli's metadata. It says
//! what was done and under which keys, never key material: the wrapped
//! data keys themselves are left out, only who wrapped them is listed.
//!
//! ```json
//! {"mode":"encrypt","input":"/abs/in.txt","output":"/abs/in.txt.encrypted",
//!  "plaintext_length":1234,
//!  "header":{"version":2,"algorithm":"AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
//!   "algorithm_id":"0x0478","message_id":"<base64>",
//!   "encryption_context":{"team":"blue"},
//!   "encrypted_data_keys":[{"key_provider":{"provider_id":"aws-kms",
//!     "key_info":"arn:aws:kms:...","key_info_encoding":"utf-8"}}],
//!   "content_type":"framed","frame_length":4096}}
//! ```
//!
//! `input`/`output` are absolute paths, or `-` for stdin/stdout.
//! `encryption_context` is the context stored in the header (for signed
//! suites it includes `aws-crypto-public-key`). `key_info` is text when the
//! provider info is UTF-8 (KMS key ARNs) and base64 otherwise (raw keyrings
//! append binary IV fields to the key name).

use std::io::{BufWriter, Write};

use base64::Engine;
use envelope_core::format::header::{ContentType, Header};
use envelope_core::suite::MessageFormatVersion;
use serde_json::{json, Map, Value};

use crate::plan::{Endpoint, Mode};

/// Where metadata goes.
pub(crate) struct MetadataSink {
    out: BufWriter<Box<dyn Write>>,
    target: String,
}

impl MetadataSink {
    /// Opens (and truncates) `target`, or stdout for `-`.
    pub(crate) fn open(target: &str) -> Result<Self, String> {
        let out: Box<dyn Write> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::File::create(target)
                    .map_err(|e| format!("creating metadata output {target}: {e}"))?,
            )
        };
        Ok(Self {
            out: BufWriter::new(out),
            target: target.to_owned(),
        })
    }

    /// Writes one record as a line, flushed so a later failure keeps it.
    pub(crate) fn write(&mut self, record: &Value) -> Result<(), String> {
        serde_json::to_writer(&mut self.out, record)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush())
            .map_err(|e| format!("writing metadata output {}: {e}", self.target))
    }
}

/// The record for one file.
pub(crate) fn record(
    mode: Mode,
    input: &Endpoint,
    output: &Endpoint,
    header: &Header,
    plaintext_length: u64,
) -> Value {
    json!({
        "mode": match mode {
            Mode::Encrypt => "encrypt",
            Mode::Decrypt => "decrypt",
        },
        "input": path(input),
        "output": path(output),
        "plaintext_length": plaintext_length,
        "header": header_json(header),
    })
}

fn path(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Std => "-".into(),
        Endpoint::Path(path) => std::path::absolute(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string(),
    }
}

fn header_json(header: &Header) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let context: Map<String, Value> = header
        .encryption_context
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    let keys: Vec<Value> = header
        .encrypted_data_keys
        .iter()
        .map(|edk| {
            let (info, encoding) = match std::str::from_utf8(&edk.provider_info) {
                Ok(text) => (text.to_owned(), "utf-8"),
                Err(_) => (b64.encode(&edk.provider_info), "base64"),
            };
            json!({"key_provider": {
                "provider_id": edk.provider_id,
                "key_info": info,
                "key_info_encoding": encoding,
            }})
        })
        .collect();
    json!({
        "version": match header.suite.message_format() {
            MessageFormatVersion::V1 => 1,
            MessageFormatVersion::V2 => 2,
        },
        "algorithm": header.suite.name(),
        "algorithm_id": header.suite.to_string(),
        "message_id": b64.encode(header.message_id.as_bytes()),
        "encryption_context": context,
        "encrypted_data_keys": keys,
        "content_type": match header.content_type {
            ContentType::Framed => "framed",
            ContentType::NonFramed => "non-framed",
        },
        "frame_length": header.frame_length,
    })
}
