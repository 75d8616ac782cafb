//! The `xks-proxy` binary: `serve` and the `keys` admin subcommands.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand, ValueEnum};
use xks_proxy::admin::{self, Action};
use xks_proxy::config::Config;

/// AWS KMS External Key Store proxy over PKCS#11.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the proxy. SIGHUP re-reads the credential pairs and policies;
    /// SIGTERM/SIGINT drain in-flight requests and exit.
    Serve {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage keys on a key store's token.
    Keys {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The key store (its `name` in the configuration).
        #[arg(long)]
        key_store: String,
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Usage {
    Encrypt,
    Decrypt,
    None,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create an AES-256 key.
    Create {
        /// Label, which is the XKS key id.
        #[arg(long)]
        label: String,
        /// Usages: `encrypt,decrypt` (the default), one of them, or `none`.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "encrypt,decrypt"
        )]
        usage: Vec<Usage>,
    },
    /// List keys with status and usage.
    List,
    /// Disable a key (sets CKA_ID to the disabled marker).
    Disable {
        /// Label.
        #[arg(long)]
        label: String,
    },
    /// Enable a key (clears CKA_ID).
    Enable {
        /// Label.
        #[arg(long)]
        label: String,
    },
}

fn init_logging() {
    let level = std::env::var("XKS_PROXY_LOG")
        .ok()
        .and_then(|l| tracing::Level::from_str(&l).ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Serve { config } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| {
                let result = rt.block_on(xks_proxy::server::run(config));
                // A PKCS#11 call stuck in a hung HSM must not keep the
                // process alive after the drain.
                rt.shutdown_timeout(std::time::Duration::from_secs(2));
                result.map_err(Into::into)
            }),
        Command::Keys {
            config,
            key_store,
            action,
        } => {
            let action = match action {
                KeysCommand::Create { label, usage } => Action::Create {
                    label,
                    encrypt: usage.contains(&Usage::Encrypt),
                    decrypt: usage.contains(&Usage::Decrypt),
                },
                KeysCommand::List => Action::List,
                KeysCommand::Disable { label } => Action::SetEnabled {
                    label,
                    enabled: false,
                },
                KeysCommand::Enable { label } => Action::SetEnabled {
                    label,
                    enabled: true,
                },
            };
            Config::load(&config).map_err(Into::into).and_then(|cfg| {
                admin::run(&cfg, &key_store, &action, &mut std::io::stdout().lock())
                    .map_err(Into::into)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xks-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}
