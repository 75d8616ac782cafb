//! The command line, as clap derives it. Everything here is syntax; what
//! the paths mean is decided in `plan`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use envelope_core::{AlgorithmSuite, CommitmentPolicy};

/// Exit codes, also shown in `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  encryption or decryption failed (bad key, tampered or truncated message,
     I/O error); the reason is one line on stderr and no output file is left
  2  usage error: bad flags, or paths that cannot work together (a directory
     without --recursive, a directory to stdout, output inside the input tree),
     found before any key is loaded
  130, 143  interrupted by Ctrl-C or SIGTERM; temporary output files removed";

#[derive(Parser)]
#[command(
    name = "envelope",
    version,
    about = "Envelope encryption in the AWS Encryption SDK message format",
    after_help = EXIT_CODES
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Encrypt files, a directory tree or stdin into ESDK messages, streaming
    /// in constant memory.
    #[command(after_help = EXIT_CODES)]
    Encrypt(EncryptArgs),
    /// Decrypt ESDK messages, streaming in constant memory. Output files
    /// appear only once the whole message, signature included, verifies.
    #[command(after_help = EXIT_CODES)]
    Decrypt(DecryptArgs),
    /// Manage a hierarchical keyring's branch key store (DynamoDB).
    #[command(subcommand, name = "key-store")]
    KeyStore(KeyStoreCommand),
}

/// `envelope key-store ...`: the official DynamoDB schema, one KMS key.
#[derive(Subcommand)]
pub(crate) enum KeyStoreCommand {
    /// Create the key store's DynamoDB table unless it exists.
    CreateTable {
        /// The DynamoDB table.
        #[arg(long)]
        table: String,
    },
    /// Create a branch key; prints its id as the last line on stdout.
    CreateKey {
        #[command(flatten)]
        store: KeyStoreArgs,
        /// The branch key id (a random UUID by default); needs --encryption-context.
        #[arg(long)]
        branch_key_id: Option<String>,
        /// A pair `key=value` bound to the branch key (stored as
        /// `aws-crypto-ec:key`). Repeatable.
        #[arg(long = "encryption-context", short = 'c', value_parser = parse_pair)]
        encryption_context: Vec<(String, String)>,
    },
    /// Make a new ACTIVE version of a branch key (older versions still decrypt).
    VersionKey {
        #[command(flatten)]
        store: KeyStoreArgs,
        /// The branch key id.
        #[arg(long)]
        branch_key_id: String,
    },
}

/// Where a hierarchical keyring's branch keys live.
#[derive(Args, Clone)]
pub(crate) struct KeyStoreArgs {
    /// The DynamoDB table.
    #[arg(long = "table")]
    pub(crate) table: String,
    /// The KMS key ARN that wraps the branch keys.
    #[arg(long = "kms-key")]
    pub(crate) kms_key: String,
    /// The logical key store name bound into every branch key (default: the table name).
    #[arg(long = "logical-name")]
    pub(crate) logical_name: Option<String>,
}

#[derive(Args)]
pub(crate) struct Common {
    /// Input file, directory (with --recursive), or `-` for stdin.
    #[arg(long, short)]
    pub(crate) input: String,
    /// Output file, directory, or `-` for stdout. Files are written to a
    /// temporary file beside the target and renamed into place only on
    /// success. When the input is a directory, or the output is an existing
    /// directory, outputs are named after the inputs plus --suffix.
    #[arg(long, short)]
    pub(crate) output: String,
    /// A wrapping key: `kms:KEY_ARN_OR_ALIAS` (AWS KMS; credentials and
    /// region from the standard AWS configuration), `aes:NAMESPACE:NAME:KEYFILE`
    /// (KEYFILE holds the raw 16, 24 or 32 key bytes) or
    /// `rsa:NAMESPACE:NAME:PADDING:PEMFILE` (PADDING: pkcs1, oaep-sha1,
    /// oaep-sha256, oaep-sha384, oaep-sha512) or `hierarchy:BRANCH_KEY_ID`
    /// (with --key-store-table and --key-store-kms-key). Repeatable; on
    /// encrypt the first one generates the data key.
    #[arg(long = "wrapping-key", short = 'w')]
    pub(crate) wrapping_keys: Vec<String>,
    /// For `hierarchy:` wrapping keys: the branch key store's DynamoDB table.
    #[arg(long)]
    pub(crate) key_store_table: Option<String>,
    /// For `hierarchy:` wrapping keys: the KMS key ARN that wraps the branch keys.
    #[arg(long)]
    pub(crate) key_store_kms_key: Option<String>,
    /// For `hierarchy:` wrapping keys: the logical key store name (default: the table name).
    #[arg(long)]
    pub(crate) key_store_logical_name: Option<String>,
    /// Limit on the number of encrypted data keys in a message.
    #[arg(long)]
    pub(crate) max_encrypted_data_keys: Option<usize>,
    /// Process every file under an input directory, mirroring its folders
    /// (empty ones included) under the output directory.
    #[arg(long, short)]
    pub(crate) recursive: bool,
    /// Suffix for output names derived from input names. Encrypt: default
    /// `.encrypted`. Decrypt: by default `.encrypted` is stripped when the
    /// input name ends with it, otherwise `.decrypted` is appended; an
    /// explicit suffix is always appended.
    #[arg(long, short = 'S')]
    pub(crate) suffix: Option<String>,
    /// Write one JSON object per processed file (mode, paths, suite,
    /// encryption context, key providers; never key material) to PATH, or
    /// `-` for stdout. The file is replaced, not appended to.
    #[arg(long, value_name = "PATH")]
    pub(crate) metadata_output: Option<String>,
    /// Print nothing but errors: no progress bar, no warnings.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

#[derive(Args)]
pub(crate) struct EncryptArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// An encryption context pair `key=value`. Repeatable.
    #[arg(long = "encryption-context", short = 'c', value_parser = parse_pair)]
    pub(crate) encryption_context: Vec<(String, String)>,
    /// Algorithm suite: 0x0478 (committing) or 0x0578 (committing and signed, the default).
    #[arg(long, value_parser = parse_suite)]
    pub(crate) suite: Option<AlgorithmSuite>,
    /// Plaintext bytes per frame.
    #[arg(long, default_value_t = envelope_core::DEFAULT_FRAME_LENGTH)]
    pub(crate) frame_length: u32,
}

/// When decrypted plaintext may leave the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Release {
    /// Nothing is written until the whole message, signature included, has
    /// verified: the ciphertext is checked once (spilled to a temporary
    /// file in $TMPDIR beyond 4 MiB) and then decrypted again.
    Verified,
    /// Each frame is written once its tag verifies, as the official SDKs
    /// do. A truncated or forged-signature message is only detected at the
    /// end, so earlier output must be discarded then: safe for files (they
    /// are renamed into place only on success), a risk for stdout.
    PerFrame,
}

#[derive(Args)]
pub(crate) struct DecryptArgs {
    #[command(flatten)]
    pub(crate) common: Common,
    /// A pair `key=value` that the message must carry. Repeatable.
    #[arg(long = "encryption-context", short = 'c', value_parser = parse_pair)]
    pub(crate) encryption_context: Vec<(String, String)>,
    /// forbid-encrypt-allow-decrypt, require-encrypt-allow-decrypt or
    /// require-encrypt-require-decrypt (the default).
    #[arg(long, default_value = "require-encrypt-require-decrypt", value_parser = parse_policy)]
    pub(crate) commitment_policy: CommitmentPolicy,
    /// Decrypt with whichever AWS KMS key each encrypted data key names.
    #[arg(long)]
    pub(crate) discovery: bool,
    /// With --discovery: accept only keys in this account. Repeatable.
    #[arg(long = "discovery-account", requires = "discovery")]
    pub(crate) discovery_accounts: Vec<String>,
    /// With --discovery-account: the partition (default `aws`).
    #[arg(long = "discovery-partition", requires = "discovery_accounts")]
    pub(crate) discovery_partition: Option<String>,
    /// How many unwrap attempts may fail, over all keys, before a message is
    /// refused (default 10): bounds the RSA operations or KMS calls a hostile
    /// message with many matching encrypted data keys can cost.
    #[arg(long)]
    pub(crate) max_unwrap_attempts: Option<usize>,
    /// When plaintext is released. Default: per-frame for output files
    /// (the temporary file and rename already make them all-or-nothing),
    /// verified for stdout (so a reader of the pipe never sees plaintext of
    /// a message that later fails).
    #[arg(long, value_enum)]
    pub(crate) release: Option<Release>,
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
