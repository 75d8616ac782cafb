//! `envelope`: encrypt and decrypt files, directory trees and pipes in the
//! AWS Encryption SDK format, streaming in constant memory.
//!
//! Exit codes: 0 on success, 1 when encryption or decryption fails (the
//! reason is one line on stderr), 2 on a usage error. See [`args::EXIT_CODES`].
//!
//! Modules: `args` (the command line), `plan` (paths into jobs), `crypt`
//! (one job through the streaming API), `atomic` (temp file + rename),
//! `interrupt` (cleanup on signals), `metadata` (`--metadata-output`),
//! `progress` (the bar), `keys` (`--wrapping-key`), `compat` (the
//! aws-encryption-cli command line).

#![forbid(unsafe_code)]

mod args;
mod atomic;
mod compat;
mod crypt;
mod error;
mod interrupt;
mod keys;
mod metadata;
mod plan;
mod progress;

use std::process::ExitCode;

use clap::Parser;
use envelope_core::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext};

use args::{Cli, Command, Common, Release};
use crypt::Crypt;
use error::CliError;
use metadata::MetadataSink;
use plan::{Endpoint, Mode, Plan};
use progress::Progress;

fn client(
    keyring: std::sync::Arc<dyn envelope_core::Keyring>,
    common: &Common,
    policy: CommitmentPolicy,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
    max_unwrap_attempts: Option<usize>,
) -> Result<Client, String> {
    let mut builder = Client::builder()
        .keyring(keyring)
        .commitment_policy(policy)
        .frame_length(frame_length);
    if let Some(suite) = suite {
        builder = builder.suite(suite);
    }
    if let Some(max) = common.max_encrypted_data_keys {
        builder = builder.max_encrypted_data_keys(max);
    }
    if let Some(max) = max_unwrap_attempts {
        builder = builder.max_unwrap_attempts(max);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Plans the jobs and checks the flags that depend on each other, all
/// before any key is loaded: every usage error comes first.
fn prepare(common: &Common, mode: Mode) -> Result<Plan, CliError> {
    let plan = plan::plan(
        &common.input,
        &common.output,
        common.recursive,
        common.suffix.as_deref(),
        mode,
    )?;
    let to_stdout = plan.jobs.iter().any(|job| job.output == Endpoint::Std);
    if to_stdout && common.metadata_output.as_deref() == Some("-") {
        return Err(CliError::Usage(
            "--metadata-output - and --output - would mix metadata into the data on stdout".into(),
        ));
    }
    if !common.quiet {
        for skipped in &plan.skipped {
            eprintln!(
                "envelope: skipping {} (not a regular file or folder)",
                skipped.display()
            );
        }
    }
    Ok(plan)
}

/// Runs `each` over the plan's jobs with a progress bar, recording
/// metadata. Stops at the first failure: outputs already renamed into
/// place are complete; the failed one is removed.
fn execute(
    plan: &Plan,
    common: &Common,
    mode: Mode,
    mut each: impl FnMut(&plan::Job, &Progress) -> Result<crypt::Done, String>,
) -> Result<(), CliError> {
    let mut sink = common
        .metadata_output
        .as_deref()
        .map(MetadataSink::open)
        .transpose()?;
    plan.create_dirs()?;
    let progress = Progress::new(plan.total_bytes(), common.quiet);
    for job in &plan.jobs {
        progress.set_file(job.input.to_string());
        let done = each(job, &progress)?;
        if let Some(sink) = sink.as_mut() {
            sink.write(&metadata::record(
                mode,
                &job.input,
                &job.output,
                &done.header,
                done.plaintext_length,
            ))?;
        }
    }
    Ok(())
}

fn key_store(common: &Common) -> keys::KeyStoreSpec {
    keys::KeyStoreSpec {
        table: common.key_store_table.clone(),
        kms_key: common.key_store_kms_key.clone(),
        logical_name: common.key_store_logical_name.clone(),
    }
}

/// `envelope key-store ...`.
fn key_store_command(
    runtime: &tokio::runtime::Runtime,
    command: args::KeyStoreCommand,
) -> Result<(), CliError> {
    use args::KeyStoreCommand;
    let open = |store: &args::KeyStoreArgs| {
        runtime.block_on(
            keys::KeyStoreSpec {
                table: Some(store.table.clone()),
                kms_key: Some(store.kms_key.clone()),
                logical_name: store.logical_name.clone(),
            }
            .open(),
        )
    };
    match command {
        KeyStoreCommand::CreateTable { table } => {
            runtime
                .block_on(envelope_hierarchy::DynamoDbKeyStore::create_table_from_env(
                    &table,
                ))
                .map_err(|e| e.to_string())?;
        }
        KeyStoreCommand::CreateKey {
            store,
            branch_key_id,
            encryption_context,
        } => {
            let store = open(&store)?;
            let id = runtime
                .block_on(store.create_key(branch_key_id, encryption_context.into_iter().collect()))
                .map_err(|e| e.to_string())?;
            println!("{id}");
        }
        KeyStoreCommand::VersionKey {
            store,
            branch_key_id,
        } => {
            let store = open(&store)?;
            runtime
                .block_on(store.version_key(&branch_key_id))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    match cli.command {
        Command::KeyStore(command) => key_store_command(&runtime, command),
        Command::Encrypt(args) => {
            let plan = prepare(&args.common, Mode::Encrypt)?;
            let keyring = runtime.block_on(keys::keyring(
                &args.common.wrapping_keys,
                None,
                &key_store(&args.common),
            ))?;
            let client = client(
                keyring,
                &args.common,
                CommitmentPolicy::default(),
                args.suite,
                args.frame_length,
                None,
            )?;
            let context: EncryptionContext = args.encryption_context.into_iter().collect();
            execute(&plan, &args.common, Mode::Encrypt, |job, progress| {
                Crypt {
                    client: &client,
                    runtime: &runtime,
                    progress,
                    max_edks: args.common.max_encrypted_data_keys,
                    base64_input: false,
                    base64_output: false,
                }
                .encrypt(job, &context)
            })
        }
        Command::Decrypt(args) => {
            let plan = prepare(&args.common, Mode::Decrypt)?;
            let discovery = args.discovery.then(|| envelope_kms::DiscoverySpec {
                partition: args.discovery_partition.clone(),
                account_ids: args.discovery_accounts.clone(),
            });
            let keyring = runtime.block_on(keys::keyring(
                &args.common.wrapping_keys,
                discovery,
                &key_store(&args.common),
            ))?;
            let client = client(
                keyring,
                &args.common,
                args.commitment_policy,
                None,
                envelope_core::DEFAULT_FRAME_LENGTH,
                args.max_unwrap_attempts,
            )?;
            let required: EncryptionContext = args.encryption_context.into_iter().collect();
            execute(&plan, &args.common, Mode::Decrypt, |job, progress| {
                // Files are all-or-nothing through the rename, so frames may
                // stream into them; a pipe cannot take output back.
                let release = args.release.unwrap_or(match job.output {
                    Endpoint::Std => Release::Verified,
                    Endpoint::Path(_) => Release::PerFrame,
                });
                Crypt {
                    client: &client,
                    runtime: &runtime,
                    progress,
                    max_edks: args.common.max_encrypted_data_keys,
                    base64_input: false,
                    base64_output: false,
                }
                .decrypt(job, &required, release, &|_| Ok(()))
            })
        }
    }
}

const KEY_STORE_FLAGS: &str =
    "hierarchy: wrapping keys need --key-store-table and --key-store-kms-key";

/// A `hierarchy:` wrapping key without its key store.
fn needs_key_store(common: &Common) -> bool {
    common
        .wrapping_keys
        .iter()
        .any(|k| k.starts_with("hierarchy:"))
        && (common.key_store_table.is_none() || common.key_store_kms_key.is_none())
}

/// Checks what clap's derive cannot express, as usage errors (exit 2).
fn check_usage(cli: &Cli) {
    use clap::CommandFactory;
    let missing = match &cli.command {
        Command::Encrypt(args) if args.common.wrapping_keys.is_empty() => {
            Some("encrypt needs at least one --wrapping-key")
        }
        Command::Decrypt(args) if args.common.wrapping_keys.is_empty() && !args.discovery => {
            Some("decrypt needs --wrapping-key or --discovery")
        }
        Command::Encrypt(args) if needs_key_store(&args.common) => Some(KEY_STORE_FLAGS),
        Command::Decrypt(args) if needs_key_store(&args.common) => Some(KEY_STORE_FLAGS),
        _ => None,
    };
    if let Some(message) = missing {
        Cli::command()
            .error(clap::error::ErrorKind::MissingRequiredArgument, message)
            .exit();
    }
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if compat::requested(&argv) {
        interrupt::install();
        return compat::main(argv);
    }
    let cli = Cli::parse_from(argv);
    check_usage(&cli);
    interrupt::install();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("envelope: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
