//! The two ways the CLI fails, mapped to exit codes in `main`.

use std::fmt;

/// A failure, carrying the one line printed on stderr.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line cannot work as given (exit 2). Found before any
    /// key is loaded or any output is written.
    Usage(String),
    /// Encryption, decryption or I/O failed (exit 1).
    Failed(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) | Self::Failed(message) => f.write_str(message),
        }
    }
}

/// Most helpers report plain strings: those are runtime failures.
impl From<String> for CliError {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}
