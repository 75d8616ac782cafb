//! The HSM side: a recoverable PKCS#11 module ([`device`]), a bounded
//! session pool per key store, key handles by label and AES-256-GCM with the
//! XKS AAD composition.
//!
//! All PKCS#11 calls run on the session pool's own threads
//! ([`threads::HsmThreads`], see [`KeyStoreHsm::run`]): they block,
//! sometimes for milliseconds, and must never stall the reactor threads
//! that carry TLS and HTTP. Every call has a deadline (session wait plus
//! operation timeout); a caller that misses it gets
//! [`HsmError::PoolTimeout`] or [`HsmError::OperationTimeout`] while the
//! blocking call finishes in the background, still occupying its thread,
//! so the pool stays bounded.

pub mod device;
pub mod gcm;
pub mod keys;
pub mod module;
pub mod pool;
pub mod threads;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::Session;
use tokio::task::futures::TaskLocalFuture;

use crate::config::IvSource;

pub use device::Device;
pub use gcm::{DecryptInput, EncryptInput, EncryptOutput};
pub use keys::{KeyCache, KeyInfo, KeyStatus};
pub use module::Module;
pub use pool::SessionPool;

tokio::task_local! {
    /// Microseconds spent in the HSM by the current request (see [`timed`]).
    static HSM_TIME_US: Cell<u64>;
}

/// Runs `fut` and returns its output with the time it spent in
/// [`KeyStoreHsm`] calls (session waits included), for the audit log and
/// metrics.
///
/// A named future rather than an `async fn`: `fut` is nearly the whole
/// request's state machine, and an `async` wrapper around the scope held it
/// three times over (the argument, the inner block's capture and the
/// awaited copy). The future hyper stores per request was 9,624 bytes that
/// way and is 3,976 bytes this way, and every request copies it.
pub fn timed<F: Future>(fut: F) -> Timed<F> {
    Timed {
        scoped: HSM_TIME_US.scope(Cell::new(0), fut),
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`timed`].
    pub struct Timed<F: Future> {
        #[pin]
        scoped: TaskLocalFuture<Cell<u64>, F>,
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = (F::Output, Duration);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut scoped = self.project().scoped;
        let out = std::task::ready!(scoped.as_mut().poll(cx));
        let us = scoped.take_value().map_or(0, Cell::into_inner);
        Poll::Ready((out, Duration::from_micros(us)))
    }
}

fn add_hsm_time(d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    // Outside `timed` (e.g. start-up checks) there is nothing to add to.
    let _ = HSM_TIME_US.try_with(|c| c.set(c.get().saturating_add(us)));
}

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
    /// The module is not usable (a re-initialization failed).
    #[error("HSM unavailable: {0}")]
    Unavailable(&'static str),
    /// The verification decrypt after an encrypt did not give the plaintext back.
    #[error("verification decrypt did not reproduce the plaintext")]
    VerificationFailed,
    /// The HSM returned something the proxy cannot use.
    #[error("unexpected HSM output: {0}")]
    Unexpected(&'static str),
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {0}")]
    Pkcs11(#[from] CkError),
    /// The HSM call panicked.
    #[error("HSM worker failed")]
    Worker,
}

/// Return values that mean the device, the token or the session is gone
/// or broken, not that one request was wrong: these poison the session and
/// call for recovery.
fn module_in_trouble(rv: RvError) -> bool {
    matches!(
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
    )
}

impl HsmError {
    /// Whether the session that produced this error should be closed rather
    /// than reused. Authentication failures and usage errors leave a session
    /// healthy; device and session errors do not.
    pub fn poisons_session(&self) -> bool {
        match self {
            // An operation left active (a call cut short) blocks this
            // session only; the module is fine.
            HsmError::Pkcs11(CkError::Pkcs11(rv, _)) => {
                module_in_trouble(*rv) || *rv == RvError::OperationActive
            }
            HsmError::Worker => true,
            _ => false,
        }
    }

    /// Whether the module or the token itself is in trouble, so that
    /// closing every session and re-initializing the module is the remedy
    /// (see [`device::Device::recover`]).
    pub fn needs_recovery(&self) -> bool {
        match self {
            HsmError::Pkcs11(CkError::Pkcs11(rv, _)) => module_in_trouble(*rv),
            HsmError::Unavailable(_) | HsmError::TokenNotFound(_) => true,
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
    pub fn new(
        pool: SessionPool,
        keys: KeyCache,
        iv_source: IvSource,
        op_timeout: Duration,
    ) -> Self {
        KeyStoreHsm {
            pool: Arc::new(pool),
            keys: Arc::new(keys),
            iv_source,
            op_timeout,
        }
    }

    /// The session pool (for metrics).
    pub fn pool(&self) -> &SessionPool {
        &self.pool
    }

    /// Runs `f` on a pooled session on the pool's HSM threads.
    ///
    /// Waits for a session up to the pool's deadline, then gives the
    /// operation `op_timeout`, a device recovery and one retry included
    /// (see [`SessionPool::run`] and [`SessionPool::run_blocking`]). A key
    /// handle is dropped from the cache on any error that could mean it is
    /// stale.
    pub async fn run<T, F>(&self, key: &str, f: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: Fn(&Session, &KeyCache, u64) -> Result<T, HsmError> + Send + 'static,
    {
        let started = Instant::now();
        let keys = Arc::clone(&self.keys);
        let result = self
            .pool
            .run(self.op_timeout, move |pool, deadline| {
                pool.run_blocking(deadline, &|s, generation| f(s, &keys, generation))
            })
            .await;
        add_hsm_time(started.elapsed());
        if let Err(e) = &result {
            if matches!(
                e,
                HsmError::Pkcs11(_)
                    | HsmError::Worker
                    | HsmError::Unexpected(_)
                    | HsmError::Unavailable(_)
                    | HsmError::TokenNotFound(_)
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
    ///
    /// Within `hsm.key_info_cache_ms` of the last read, and while the
    /// module is up, the cached answer is returned on the calling task:
    /// there is no HSM call to make, and taking a session and a blocking
    /// thread for it cost 40 % of a metadata request's CPU here.
    pub async fn key_info(&self, key: &str) -> Result<KeyInfo, HsmError> {
        let device = self.pool.device();
        if let Some(generation) = device.generation_now().filter(|_| device.is_available()) {
            if let Some(info) = self.keys.fresh_info(key, generation) {
                return Ok(info);
            }
        }
        let label = key.to_owned();
        self.run(key, move |s, keys, generation| {
            keys.resolve(s, &label, generation).map(|(_, info)| info)
        })
        .await
    }

    /// Encrypts under the spec's AAD composition; see [`gcm::encrypt`].
    pub async fn encrypt(&self, key: &str, input: EncryptInput) -> Result<EncryptOutput, HsmError> {
        let label = key.to_owned();
        let iv_source = self.iv_source;
        self.run(key, move |s, keys, generation| {
            let (handle, info) = keys.resolve(s, &label, generation)?;
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
    ) -> Result<crate::secret::Secret, HsmError> {
        let label = key.to_owned();
        self.run(key, move |s, keys, generation| {
            let (handle, info) = keys.resolve(s, &label, generation)?;
            info.require_enabled(&label)?;
            info.require(&label, false, true)?;
            gcm::decrypt(s, handle, &input).map_err(|e| e.for_key(&label))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    fn rv(code: RvError) -> HsmError {
        HsmError::Pkcs11(CkError::Pkcs11(code, Function::Encrypt))
    }

    #[test]
    fn a_broken_device_poisons_the_session_and_calls_for_recovery() {
        for code in [RvError::DeviceRemoved, RvError::SessionHandleInvalid] {
            assert!(rv(code).poisons_session(), "{code:?}");
            assert!(rv(code).needs_recovery(), "{code:?}");
        }
    }

    #[test]
    fn other_errors_touch_only_what_they_break() {
        // A stuck operation spoils its session, not the module.
        assert!(rv(RvError::OperationActive).poisons_session());
        assert!(!rv(RvError::OperationActive).needs_recovery());
        // A bad request leaves both alone.
        assert!(!rv(RvError::EncryptedDataInvalid).poisons_session());
        assert!(!rv(RvError::EncryptedDataInvalid).needs_recovery());
        // A panicked call loses its session; a missing token needs recovery.
        assert!(HsmError::Worker.poisons_session() && !HsmError::Worker.needs_recovery());
        let gone = HsmError::TokenNotFound("tokA".into());
        assert!(gone.needs_recovery() && !gone.poisons_session());
    }
}
