//! `envelope` as a drop-in for `aws-encryption-cli` (4.x command line).
//!
//! Chosen when the program is called `aws-encryption-cli` (a symlink or a
//! copy of the binary) or when its first argument is a flag or an `@FILE`
//! rather than a subcommand. Everything is parsed and checked as the
//! official tool does (`args`, `paths`), metadata records have its shape
//! (`metadata`), and the work goes through the same streaming code as the
//! native commands, so these guarantees hold where the official tool's
//! behaviour is not safe:
//!
//! - Nothing partial: an output file appears only once its whole message
//!   verified; stdout receives plaintext only after the whole message
//!   verified (as `--buffer` does there).
//! - A decrypt whose message lacks a required context key or pair writes
//!   the official "skipped" metadata record and then fails (exit 1), where
//!   the official tool exits 0. A run stops at its first failing input.

mod args;
mod metadata;
mod paths;

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use envelope_core::format::header::{ContentType, Header};
use envelope_core::keyring::Keyring;
use envelope_core::{
    CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext, MultiKeyring,
};

use crate::args::Release;
use crate::crypt::Crypt;
use crate::plan::{Endpoint, Job};
use crate::progress::Progress;
use args::{Action, CompatArgs, MetadataTarget, ProviderConfig};
use metadata::MetadataWriter;

/// Whether `argv` asks for the aws-encryption-cli command line.
pub(crate) fn requested(argv: &[OsString]) -> bool {
    let called_official = argv
        .first()
        .and_then(|program| Path::new(program).file_name())
        .is_some_and(|name| name == "aws-encryption-cli");
    let first_is_flag = argv.get(1).and_then(|a| a.to_str()).is_some_and(|a| {
        (a.starts_with('-') || a.starts_with('@'))
            && !matches!(a, "-h" | "--help" | "-V" | "--version")
    });
    called_official || first_is_flag
}

/// Runs the aws-encryption-cli command line in `argv`.
pub(crate) fn main(argv: Vec<OsString>) -> ExitCode {
    let args = args::parse(argv);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("envelope: {message}");
            ExitCode::from(1)
        }
    }
}

fn warn(args: &CompatArgs, message: &str) {
    if !args.quiet {
        eprintln!("envelope: warning: {message}");
    }
}

fn run(args: &CompatArgs) -> Result<(), String> {
    let plan = paths::plan(args)?;
    for warning in &plan.warnings {
        warn(args, warning);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let keyring = runtime.block_on(keyring(&args.providers))?;
    let client = client(keyring, args)?;
    let mut metadata = match &args.metadata {
        MetadataTarget::Suppressed => None,
        MetadataTarget::Output { path, overwrite } => Some(MetadataWriter::new(path, *overwrite)),
    };
    let progress = Progress::new(None, true);
    let crypt = Crypt {
        client: &client,
        runtime: &runtime,
        progress: &progress,
        max_edks: args.max_encrypted_data_keys,
        base64_input: args.decode,
        base64_output: args.encode,
    };
    let context: EncryptionContext = args
        .encryption_context
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for job in &plan.jobs {
        if !should_write(args, job)? {
            continue;
        }
        let input_name = name(&job.input, true);
        let output_name = name(&job.output, false);
        if args.action == Action::Encrypt {
            let done = crypt.encrypt(job, &context)?;
            if let Some(sink) = metadata.as_mut() {
                sink.write(
                    &metadata::record(args.action, input_name, output_name, &done.header).into(),
                )?;
            }
            continue;
        }
        let refused: RefCell<Option<Refusal>> = RefCell::new(None);
        let check = |header: &Header| header_check(args, header, &refused);
        // A pipe cannot take plaintext back: it gets none until the whole
        // message verified. A file is renamed into place only at the end.
        let release = match job.output {
            Endpoint::Std => Release::Verified,
            Endpoint::Path(_) => Release::PerFrame,
        };
        match crypt.decrypt(job, &EncryptionContext::default(), release, &check) {
            Ok(done) => {
                if let Some(sink) = metadata.as_mut() {
                    sink.write(
                        &metadata::record(args.action, input_name, output_name, &done.header)
                            .into(),
                    )?;
                }
            }
            Err(message) => {
                if let (Some((header, keys, pairs)), Some(sink)) =
                    (refused.take(), metadata.as_mut())
                {
                    let mut record =
                        metadata::record(args.action, input_name, output_name, &header);
                    metadata::mark_skipped(&mut record, &keys, &pairs);
                    sink.write(&record.into())?;
                }
                return Err(format!("{}: {message}", job.input));
            }
        }
    }
    Ok(())
}

/// A decrypt refused for its context: the header, the missing keys and
/// the missing pairs, for the "skipped" metadata record.
type Refusal = (Header, Vec<String>, Vec<(String, String)>);

fn name(endpoint: &Endpoint, input: bool) -> String {
    match endpoint {
        Endpoint::Std => metadata::stream_name(None, input),
        Endpoint::Path(path) => metadata::stream_name(Some(path), input),
    }
}

/// The official checks on a decrypted message's header, made before any
/// plaintext exists: required context keys and pairs (against the context
/// stored in the header), `--decrypt-unsigned` and `--max-length`.
fn header_check(
    args: &CompatArgs,
    header: &Header,
    refused: &RefCell<Option<Refusal>>,
) -> Result<(), String> {
    if args.action == Action::DecryptUnsigned && header.suite.signature().is_some() {
        return Err(format!(
            "decrypt-unsigned: the message is signed ({}); nothing was decrypted",
            args::suite_name(header.suite)
        ));
    }
    if let Some(max) = args.max_length {
        if header.content_type == ContentType::Framed && u64::from(header.frame_length) > max {
            return Err(format!(
                "frame length {} is over --max-length {max}",
                header.frame_length
            ));
        }
    }
    let stored = &header.encryption_context;
    let mut keys: Vec<String> = args
        .required_keys
        .iter()
        .filter(|k| stored.get(k).is_none())
        .cloned()
        .collect();
    let mut pairs: Vec<(String, String)> = args
        .encryption_context
        .iter()
        .filter(|(k, v)| stored.get(k) != Some(v.as_str()))
        .cloned()
        .collect();
    if keys.is_empty() && pairs.is_empty() {
        return Ok(());
    }
    keys.sort();
    pairs.sort();
    let message = format!(
        "skipped: the message's encryption context lacks {}",
        keys.iter()
            .map(|k| format!("key {k:?}"))
            .chain(pairs.iter().map(|(k, v)| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    *refused.borrow_mut() = Some((header.clone(), keys, pairs));
    Err(message)
}

/// `--no-overwrite`, `--interactive`, and the official tool's warning
/// when an existing file is replaced; also a file that would be its own
/// output, which is passed over.
fn should_write(args: &CompatArgs, job: &Job) -> Result<bool, String> {
    let (Endpoint::Path(input), Endpoint::Path(output)) = (&job.input, &job.output) else {
        return Ok(true);
    };
    if paths::realpath(input) == paths::realpath(output) {
        warn(
            args,
            &format!(
                "Skipping because the source ({}) and destination ({}) are the same",
                input.display(),
                output.display()
            ),
        );
        return Ok(false);
    }
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    if !output.is_file() {
        return Ok(true);
    }
    if args.no_overwrite {
        warn(
            args,
            &format!(
                "Skipping existing output file because of \"no overwrite\" option: {}",
                output.display()
            ),
        );
        return Ok(false);
    }
    if args.interactive {
        eprint!(
            "Overwrite existing output file \"{}\" with new contents? [y/N]:",
            output.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| format!("reading the answer: {e}"))?;
        return Ok(answer.trim_start().starts_with(['y', 'Y']));
    }
    warn(
        args,
        &format!(
            "Overwriting existing output file because no action was specified otherwise: {}",
            output.display()
        ),
    );
    Ok(true)
}

/// One keyring for every `-w` group: the first key of the first group
/// generates the data key, as the official tool's primary master key does.
async fn keyring(providers: &[ProviderConfig]) -> Result<Arc<dyn Keyring>, String> {
    let mut keyrings = Vec::with_capacity(providers.len());
    for provider in providers {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(profile) = &provider.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &provider.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let supplier = envelope_kms::KmsClientSupplier::builder()
            .sdk_config(loader.load().await)
            .build()
            .await;
        let discovery = provider.discovery.then(|| envelope_kms::DiscoverySpec {
            partition: provider.discovery_partition.clone(),
            account_ids: provider.discovery_accounts.clone(),
        });
        keyrings.push(
            envelope_kms::keyring_from_specs_with(&supplier, &provider.keys, discovery)
                .map_err(|e| e.to_string())?,
        );
    }
    match keyrings.len() {
        0 => Err("no wrapping key".into()),
        1 => Ok(keyrings.remove(0)),
        _ => {
            let generator = keyrings.remove(0);
            MultiKeyring::new(Some(generator), keyrings)
                .map(|k| Arc::new(k) as Arc<dyn Keyring>)
                .map_err(|e| e.to_string())
        }
    }
}

fn client(keyring: Arc<dyn Keyring>, args: &CompatArgs) -> Result<Client, String> {
    let mut builder = Client::builder()
        .commitment_policy(args.commitment_policy)
        .frame_length(
            args.frame_length
                .unwrap_or(envelope_core::DEFAULT_FRAME_LENGTH),
        );
    builder = match &args.caching {
        None => builder.keyring(keyring),
        Some(caching) => {
            let mut cache =
                CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
                    .capacity(caching.capacity)
                    .max_age(Duration::from_secs_f64(caching.max_age));
            if let Some(max) = caching.max_messages_encrypted {
                cache = cache.max_messages(max);
            }
            if let Some(max) = caching.max_bytes_encrypted {
                cache = cache.max_bytes(max);
            }
            builder.materials_manager(Arc::new(cache.build().map_err(|e| e.to_string())?))
        }
    };
    if let Some(suite) = args.algorithm {
        builder = builder.suite(suite);
    }
    if let Some(max) = args.max_encrypted_data_keys {
        builder = builder.max_encrypted_data_keys(max);
    }
    builder.build().map_err(|e| e.to_string())
}
