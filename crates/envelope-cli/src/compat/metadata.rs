//! Metadata records in aws-encryption-cli's shape: one JSON object per
//! line, keys sorted, Python's `json.dumps` spacing and ASCII escaping, the
//! header as the official tool prints it (base64 for ids, EDKs, provider
//! ids and key info; `version` as "1.0"/"2.0"; `content_type` as the format
//! byte), and `header_auth` on decrypt. Written to a file in append mode
//! unless `--overwrite-metadata`, or to stdout.

use std::io::{self, Write};

use base64::Engine;
use envelope_core::format::header::{ContentType, Header};
use envelope_core::suite::MessageFormatVersion;
use serde_json::{json, Map, Value};

use super::args::{suite_name, Action};

/// Where records go. The file is opened on the first record, as the
/// official tool does: a run that processes nothing leaves no file.
pub(crate) struct MetadataWriter {
    out: Option<Box<dyn Write>>,
    target: String,
    overwrite: bool,
}

impl MetadataWriter {
    /// Records for `path` (`-` for stdout), appended or overwriting.
    pub(crate) fn new(path: &str, overwrite: bool) -> Self {
        Self {
            out: None,
            target: path.to_owned(),
            overwrite,
        }
    }

    fn open(path: &str, overwrite: bool) -> Result<Box<dyn Write>, String> {
        Ok(if path == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(!overwrite)
                    .truncate(overwrite)
                    .open(path)
                    .map_err(|e| format!("opening metadata output {path}: {e}"))?,
            )
        })
    }

    /// Writes one record as a line, flushed so a later failure keeps it.
    pub(crate) fn write(&mut self, record: &Value) -> Result<(), String> {
        let mut line = Vec::with_capacity(1024);
        let mut serializer = serde_json::Serializer::with_formatter(&mut line, PythonFormatter);
        serde::Serialize::serialize(record, &mut serializer).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let out = match &mut self.out {
            Some(out) => out,
            None => self.out.insert(Self::open(&self.target, self.overwrite)?),
        };
        out.write_all(&line)
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing metadata output {}: {e}", self.target))
    }
}

/// `json.dumps(..., sort_keys=True)`: ", " and ": " separators, non-ASCII
/// escaped as \uXXXX (surrogate pairs above the BMP). serde_json's map is
/// sorted already.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// How the official tool names an input or output: the absolute path, or
/// Python's names for the standard streams.
pub(crate) fn stream_name(path: Option<&std::path::Path>, stdin: bool) -> String {
    match path {
        None if stdin => "<stdin>".into(),
        None => "<stdout>".into(),
        Some(path) => super::paths::lexical_absolute(path).display().to_string(),
    }
}

/// The record for one processed input.
pub(crate) fn record(
    action: Action,
    input: String,
    output: String,
    header: &Header,
) -> Map<String, Value> {
    let mut record = Map::new();
    record.insert("mode".into(), action.name().into());
    record.insert("input".into(), input.into());
    record.insert("output".into(), output.into());
    record.insert("header".into(), header_json(header));
    if action != Action::Encrypt {
        let b64 = base64::engine::general_purpose::STANDARD;
        record.insert(
            "header_auth".into(),
            json!({"iv": b64.encode(header.header_iv()), "tag": b64.encode(header.header_tag())}),
        );
    }
    record
}

/// Marks a decrypt record as skipped for a context that lacks required
/// keys or pairs, with the official fields.
pub(crate) fn mark_skipped(
    record: &mut Map<String, Value>,
    missing_keys: &[String],
    missing_pairs: &[(String, String)],
) {
    record.insert("skipped".into(), true.into());
    record.insert(
        "reason".into(),
        "Missing encryption context key or value".into(),
    );
    record.insert(
        "missing_encryption_context_keys".into(),
        json!(missing_keys),
    );
    record.insert(
        "missing_encryption_context_pairs".into(),
        Value::Array(missing_pairs.iter().map(|(k, v)| json!([k, v])).collect()),
    );
}

fn header_json(header: &Header) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let v1 = header.suite.message_format() == MessageFormatVersion::V1;
    let context: Map<String, Value> = header
        .encryption_context
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::from(v)))
        .collect();
    // Sorted as the official tool sorts them: provider id, then key info, as bytes.
    let mut edks: Vec<_> = header.encrypted_data_keys.iter().collect();
    edks.sort_by(|a, b| {
        (a.provider_id.as_bytes(), a.provider_info.as_slice())
            .cmp(&(b.provider_id.as_bytes(), b.provider_info.as_slice()))
    });
    let edks: Vec<Value> = edks
        .into_iter()
        .map(|edk| {
            json!({
                "encrypted_data_key": b64.encode(&edk.ciphertext),
                "key_provider": {
                    "key_info": b64.encode(&edk.provider_info),
                    "provider_id": b64.encode(edk.provider_id.as_bytes()),
                },
            })
        })
        .collect();
    json!({
        "algorithm": suite_name(header.suite),
        "commitment_key": header.commitment_key().map(|key| b64.encode(key)),
        "content_type": match header.content_type {
            ContentType::NonFramed => 1,
            ContentType::Framed => 2,
        },
        "encrypted_data_keys": edks,
        "encryption_context": context,
        "frame_length": header.frame_length,
        "header_iv_length": if v1 { Some(header.header_iv().len()) } else { None },
        "message_id": b64.encode(header.message_id.as_bytes()),
        "type": if v1 { Some(128) } else { None },
        "version": if v1 { "1.0" } else { "2.0" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_spaced_and_escaped_as_python_writes_them() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("m.json");
        let path = path.to_str().ok_or("utf-8")?;
        let record = json!({"b": [1, 2], "a": {"k": "caf\u{e9} \u{1F600}"}});
        MetadataWriter::new(path, false).write(&record)?;
        MetadataWriter::new(path, false).write(&json!({"c": null}))?;
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        assert_eq!(
            text,
            "{\"a\": {\"k\": \"caf\\u00e9 \\ud83d\\ude00\"}, \"b\": [1, 2]}\n{\"c\": null}\n"
        );
        let mut overwriting = MetadataWriter::new(path, true);
        overwriting.write(&json!({"c": null}))?;
        overwriting.write(&json!({"d": null}))?;
        assert_eq!(
            std::fs::read_to_string(path).map_err(|e| e.to_string())?,
            "{\"c\": null}\n{\"d\": null}\n"
        );
        assert_eq!(
            super::super::paths::lexical_absolute(std::path::Path::new("/a/./b/../c")),
            std::path::Path::new("/a/c")
        );
        Ok(())
    }
}
