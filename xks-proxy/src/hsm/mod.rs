//! The HSM side: a PKCS#11 module, a bounded session pool per key store,
//! key handles by label and AES-256-GCM with the XKS AAD composition.
//!
//! All PKCS#11 calls run inside [`tokio::task::spawn_blocking`] (see
//! [`KeyStoreHsm::run`]): they block, sometimes for milliseconds, and must
//! never stall the reactor threads that carry TLS and HTTP.

pub mod gcm;
pub mod keys;
pub mod module;
pub mod pool;

use std::sync::Arc;
use std::time::Duration;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;

use crate::config::IvSource;

pub use gcm::{DecryptInput, EncryptInput, EncryptOutput};
pub use keys::{KeyCache, KeyInfo, KeyStatus};
pub use module::Module;
pub use pool::SessionPool;

/// An HSM-layer error. [`crate::api::error`] maps each to an XKS error name.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// No AES-256 secret key with this label on the token.
    #[error("key {0} not found")]
    KeyNotFound(String),
    /// The key is disabled (see [`keys::DISABLED_MARKER`]).
    #[error("key {0} is disabled")]
    KeyDisabled(String),
    /// The key's CKA_ENCRYPT/CKA_DECRYPT forbid the operation.
    #[error("key {key} does not allow {operation}")]
    KeyUsage {
        /// Key label.
        key: String,
        /// `encrypt` or `decrypt`.
        operation: &'static str,
    },
    /// GCM authentication failed (SoftHSM reports this as CKR_GENERAL_ERROR).
    #[error("ciphertext, tag, IV or AAD do not authenticate")]
    InvalidCiphertext,
    /// No session became free before the wait deadline.
    #[error("no HSM session became free within {0:?}")]
    PoolTimeout(Duration),
    /// The operation did not finish before its deadline.
    #[error("HSM operation exceeded {0:?}")]
    OperationTimeout(Duration),
    /// The token with this label is not present.
    #[error("no token labelled {0}")]
    TokenNotFound(String),
    /// The verification decrypt after an encrypt did not give the plaintext back.
    #[error("verification decrypt did not reproduce the plaintext")]
    VerificationFailed,
    /// The HSM returned something the proxy cannot use.
    #[error("unexpected HSM output: {0}")]
    Unexpected(&'static str),
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {0}")]
    Pkcs11(#[from] CkError),
    /// The blocking task panicked or was cancelled.
    #[error("HSM worker failed")]
    Worker,
}

impl HsmError {
    /// Whether the session that produced this error should be closed rather
    /// than reused. Authentication failures and usage errors leave a session
    /// healthy; device and session errors do not.
    pub fn poisons_session(&self) -> bool {
        match self {
            HsmError::Pkcs11(CkError::Pkcs11(rv, _)) => matches!(
                rv,
                RvError::DeviceError
                    | RvError::DeviceRemoved
                    | RvError::DeviceMemory
                    | RvError::SessionClosed
                    | RvError::SessionHandleInvalid
                    | RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::UserNotLoggedIn
                    | RvError::CryptokiNotInitialized
                    | RvError::OperationActive
            ),
            HsmError::Worker => true,
            _ => false,
        }
    }

    /// Names the key in a usage error raised by the HSM itself (which does
    /// not know the label).
    fn for_key(self, label: &str) -> Self {
        match self {
            HsmError::KeyUsage { operation, .. } => HsmError::KeyUsage {
                key: label.to_owned(),
                operation,
            },
            other => other,
        }
    }

    /// Whether a cached key handle should be forgotten after this error.
    fn invalidates_key(&self) -> bool {
        !matches!(
            self,
            HsmError::InvalidCiphertext
                | HsmError::KeyDisabled(_)
                | HsmError::KeyUsage { .. }
                | HsmError::PoolTimeout(_)
        )
    }
}

/// One key store's view of the HSM: its session pool, key cache and settings.
#[derive(Debug)]
pub struct KeyStoreHsm {
    pool: Arc<SessionPool>,
    keys: Arc<KeyCache>,
    iv_source: IvSource,
    op_timeout: Duration,
}

impl KeyStoreHsm {
    /// Combines a pool with the module's settings.
    pub fn new(pool: SessionPool, iv_source: IvSource, op_timeout: Duration) -> Self {
        KeyStoreHsm {
            pool: Arc::new(pool),
            keys: Arc::new(KeyCache::default()),
            iv_source,
            op_timeout,
        }
    }

    /// Runs `f` on a pooled session on the blocking thread pool.
    ///
    /// Waits for a session up to the pool's deadline, then gives the
    /// operation `op_timeout`. A session is discarded when the error says it
    /// is unusable; a key handle is dropped from the cache on any error that
    /// could mean it is stale.
    pub async fn run<T, F>(&self, key: &str, f: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnOnce(&Session, &KeyCache) -> Result<T, HsmError> + Send + 'static,
    {
        let mut lease = self.pool.acquire().await?;
        let keys = Arc::clone(&self.keys);
        let task = tokio::task::spawn_blocking(move || {
            let result = lease.session().and_then(|s| f(s, &keys));
            if let Err(e) = &result {
                if e.poisons_session() {
                    lease.discard();
                }
            }
            result
        });
        let result = match tokio::time::timeout(self.op_timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(_join)) => Err(HsmError::Worker),
            // The blocking call keeps its session until it returns; the lease
            // (and its permit) are released then, so the pool stays bounded.
            Err(_) => Err(HsmError::OperationTimeout(self.op_timeout)),
        };
        if let Err(e) = &result {
            if matches!(
                e,
                HsmError::Pkcs11(_)
                    | HsmError::Worker
                    | HsmError::Unexpected(_)
                    | HsmError::VerificationFailed
            ) {
                tracing::error!(error = %e, key, "HSM operation failed");
            }
            if e.invalidates_key() {
                self.keys.forget(key);
            }
        }
        result
    }

    /// Reads a key's usage and status.
    pub async fn key_info(&self, key: &str) -> Result<KeyInfo, HsmError> {
        let label = key.to_owned();
        self.run(key, move |s, keys| {
            keys.resolve(s, &label).map(|(_, info)| info)
        })
        .await
    }

    /// Encrypts under the spec's AAD composition; see [`gcm::encrypt`].
    pub async fn encrypt(&self, key: &str, input: EncryptInput) -> Result<EncryptOutput, HsmError> {
        let label = key.to_owned();
        let iv_source = self.iv_source;
        self.run(key, move |s, keys| {
            let (handle, info) = keys.resolve(s, &label)?;
            info.require_enabled(&label)?;
            info.require(&label, true, input.cdiv)?;
            gcm::encrypt(s, handle, iv_source, &input).map_err(|e| e.for_key(&label))
        })
        .await
    }

    /// Decrypts; see [`gcm::decrypt`].
    pub async fn decrypt(
        &self,
        key: &str,
        input: DecryptInput,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, HsmError> {
        let label = key.to_owned();
        self.run(key, move |s, keys| {
            let (handle, info) = keys.resolve(s, &label)?;
            info.require_enabled(&label)?;
            info.require(&label, false, true)?;
            gcm::decrypt(s, handle, &input).map_err(|e| e.for_key(&label))
        })
        .await
    }
}
