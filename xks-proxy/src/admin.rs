//! `xks-proxy keys ...`: key management on a key store's token.
//!
//! These run synchronously in the admin process (no server involved) and
//! print one line per result.

use std::io::Write;

use cryptoki::session::Session;

use crate::config::{Config, ConfigError};
use crate::hsm::{keys, HsmError, KeyStatus, Module};

/// An admin command failure.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Bad configuration or secret.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// HSM failure.
    #[error(transparent)]
    Hsm(#[from] HsmError),
    /// A key with this label already exists.
    #[error("a key labelled {0} already exists")]
    Exists(String),
    /// The label is not a valid XKS key id.
    #[error("label must be 1-128 characters from [A-Za-z0-9._-]")]
    BadLabel,
    /// Writing the output failed.
    #[error("output: {0}")]
    Io(#[from] std::io::Error),
}

/// An admin action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create an AES-256 key.
    Create {
        /// Label (the XKS key id).
        label: String,
        /// Allow encrypt.
        encrypt: bool,
        /// Allow decrypt.
        decrypt: bool,
    },
    /// List keys.
    List,
    /// Enable (`true`) or disable (`false`) a key.
    SetEnabled {
        /// Label.
        label: String,
        /// New state.
        enabled: bool,
    },
}

fn open_session(cfg: &Config, store: &str) -> Result<Session, AdminError> {
    let ks = cfg.key_store(store)?;
    let module = Module::load(&cfg.hsm.module)?;
    let slot = module.slot_for_token(&ks.token_label)?;
    let pin = ks.pin.load(&cfg.base_dir).map_err(ConfigError::from)?;
    let session = module
        .context()
        .open_rw_session(slot)
        .map_err(HsmError::from)?;
    crate::hsm::module::login(&session, &pin)?;
    Ok(session)
}

fn valid_label(l: &str) -> bool {
    crate::api::routes::parse(&format!("/kms/xks/v1/keys/{l}/metadata")).is_ok()
}

/// Runs `action` on key store `store`, writing results to `out`.
pub fn run(
    cfg: &Config,
    store: &str,
    action: &Action,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let session = open_session(cfg, store)?;
    match action {
        Action::Create {
            label,
            encrypt,
            decrypt,
        } => {
            if !valid_label(label) {
                return Err(AdminError::BadLabel);
            }
            if keys::find(&session, label)?.is_some() {
                return Err(AdminError::Exists(label.clone()));
            }
            keys::create_aes256(&session, label, *encrypt, *decrypt)?;
            writeln!(out, "created {label}")?;
        }
        Action::List => {
            for (label, info) in keys::list(&session)? {
                let status = match info.status {
                    KeyStatus::Enabled => "ENABLED",
                    KeyStatus::Disabled => "DISABLED",
                };
                writeln!(out, "{label}\t{status}\t{}", info.usages().join(","))?;
            }
        }
        Action::SetEnabled { label, enabled } => {
            keys::set_enabled(&session, label, *enabled)?;
            writeln!(
                out,
                "{} {label}",
                if *enabled { "enabled" } else { "disabled" }
            )?;
        }
    }
    Ok(())
}
