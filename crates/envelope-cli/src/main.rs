//! `envelope`: encrypt and decrypt files in the AWS Encryption SDK format.
//!
//! Exit codes: 0 on success, 1 when encryption or decryption fails (the
//! reason is one line on stderr), 2 on a usage error.

#![forbid(unsafe_code)]

mod keys;
mod output;

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use envelope_core::{AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext};

#[derive(Parser)]
#[command(
    name = "envelope",
    version,
    about = "Envelope encryption in the AWS Encryption SDK message format"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Encrypt a file (or stdin) into an ESDK message.
    Encrypt(EncryptArgs),
    /// Decrypt an ESDK message, releasing nothing unless it all verifies.
    Decrypt(DecryptArgs),
}

#[derive(Args)]
struct Common {
    /// Input file, or `-` for stdin.
    #[arg(long, short)]
    input: String,
    /// Output file, or `-` for stdout. Written to a temporary file and
    /// renamed into place only on success.
    #[arg(long, short)]
    output: String,
    /// A wrapping key: `kms:KEY_ARN_OR_ALIAS` (AWS KMS; credentials and
    /// region from the standard AWS configuration), `aes:NAMESPACE:NAME:KEYFILE`
    /// (KEYFILE holds the raw 16, 24 or 32 key bytes) or
    /// `rsa:NAMESPACE:NAME:PADDING:PEMFILE` (PADDING: pkcs1, oaep-sha1,
    /// oaep-sha256, oaep-sha384, oaep-sha512). Repeatable; on encrypt the
    /// first one generates the data key.
    #[arg(long = "wrapping-key", short = 'w')]
    wrapping_keys: Vec<String>,
    /// Limit on the number of encrypted data keys in a message.
    #[arg(long)]
    max_encrypted_data_keys: Option<usize>,
}

#[derive(Args)]
struct EncryptArgs {
    #[command(flatten)]
    common: Common,
    /// An encryption context pair `key=value`. Repeatable.
    #[arg(long = "encryption-context", short = 'c', value_parser = parse_pair)]
    encryption_context: Vec<(String, String)>,
    /// Algorithm suite: 0x0478 (committing) or 0x0578 (committing and signed, the default).
    #[arg(long, value_parser = parse_suite)]
    suite: Option<AlgorithmSuite>,
    /// Plaintext bytes per frame.
    #[arg(long, default_value_t = envelope_core::DEFAULT_FRAME_LENGTH)]
    frame_length: u32,
}

#[derive(Args)]
struct DecryptArgs {
    #[command(flatten)]
    common: Common,
    /// A pair `key=value` that the message must carry. Repeatable.
    #[arg(long = "encryption-context", short = 'c', value_parser = parse_pair)]
    encryption_context: Vec<(String, String)>,
    /// forbid-encrypt-allow-decrypt, require-encrypt-allow-decrypt or
    /// require-encrypt-require-decrypt (the default).
    #[arg(long, default_value = "require-encrypt-require-decrypt", value_parser = parse_policy)]
    commitment_policy: CommitmentPolicy,
    /// Decrypt with whichever AWS KMS key each encrypted data key names.
    #[arg(long)]
    discovery: bool,
    /// With --discovery: accept only keys in this account. Repeatable.
    #[arg(long = "discovery-account", requires = "discovery")]
    discovery_accounts: Vec<String>,
    /// With --discovery-account: the partition (default `aws`).
    #[arg(long = "discovery-partition", requires = "discovery_accounts")]
    discovery_partition: Option<String>,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

fn parse_suite(s: &str) -> Result<AlgorithmSuite, String> {
    s.parse()
        .map_err(|e: envelope_core::error::FormatError| e.to_string())
}

fn parse_policy(s: &str) -> Result<CommitmentPolicy, String> {
    s.parse()
}

fn read_input(path: &str) -> Result<Vec<u8>, String> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))
    }
}

fn client(
    keyring: std::sync::Arc<dyn envelope_core::Keyring>,
    common: &Common,
    policy: CommitmentPolicy,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
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
    builder.build().map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    match cli.command {
        Command::Encrypt(args) => {
            let keyring = runtime.block_on(keys::keyring(&args.common.wrapping_keys, None))?;
            let client = client(
                keyring,
                &args.common,
                CommitmentPolicy::default(),
                args.suite,
                args.frame_length,
            )?;
            let context: EncryptionContext = args.encryption_context.into_iter().collect();
            let plaintext = zeroize::Zeroizing::new(read_input(&args.common.input)?);
            let message = runtime
                .block_on(client.encrypt(&plaintext, &context))
                .map_err(|e| format!("encryption failed: {e}"))?;
            output::write_atomically(&args.common.output, &message)
        }
        Command::Decrypt(args) => {
            let discovery = args.discovery.then(|| envelope_kms::DiscoverySpec {
                partition: args.discovery_partition.clone(),
                account_ids: args.discovery_accounts.clone(),
            });
            let keyring = runtime.block_on(keys::keyring(&args.common.wrapping_keys, discovery))?;
            let client = client(
                keyring,
                &args.common,
                args.commitment_policy,
                None,
                envelope_core::DEFAULT_FRAME_LENGTH,
            )?;
            let required: EncryptionContext = args.encryption_context.into_iter().collect();
            let message = read_input(&args.common.input)?;
            let decrypted = runtime
                .block_on(client.decrypt(&message, &required))
                .map_err(|e| format!("decryption failed: {e}"))?;
            let plaintext = zeroize::Zeroizing::new(decrypted.plaintext);
            output::write_atomically(&args.common.output, &plaintext)
        }
    }
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
        _ => None,
    };
    if let Some(message) = missing {
        Cli::command()
            .error(clap::error::ErrorKind::MissingRequiredArgument, message)
            .exit();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    check_usage(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("envelope: {message}");
            ExitCode::FAILURE
        }
    }
}
