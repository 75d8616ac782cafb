//! A bounded pool of logged-in sessions on one token.
//!
//! A semaphore bounds the number of sessions; a caller waits for a permit up
//! to a deadline rather than failing when the pool is busy (a burst should
//! queue, not error). Sessions are opened lazily on the blocking thread that
//! first needs one, and reused afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HsmError;
use crate::secret::Secret;

/// A bounded session pool.
#[derive(Debug)]
pub struct SessionPool {
    ctx: Pkcs11,
    slot: Slot,
    pin: Secret,
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl SessionPool {
    /// A pool of at most `size` sessions; callers wait up to `wait` for one.
    pub fn new(ctx: Pkcs11, slot: Slot, pin: Secret, size: usize, wait: Duration) -> Self {
        SessionPool {
            ctx,
            slot,
            pin,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
            wait,
        }
    }

    /// Waits for a free slot in the pool, up to the configured deadline.
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease, HsmError> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| HsmError::PoolTimeout(self.wait))?
            .map_err(|_| HsmError::Worker)?;
        Ok(Lease {
            pool: Arc::clone(self),
            session: None,
            _permit: permit,
        })
    }

    /// Opens a read-write session and logs in. Another session may already
    /// have logged the token in, which PKCS#11 reports as
    /// `CKR_USER_ALREADY_LOGGED_IN`; that is success here.
    fn open(&self) -> Result<Session, HsmError> {
        let session = self.ctx.open_rw_session(self.slot)?;
        let pin = AuthPin::new(
            self.pin
                .expose_str()
                .ok_or(HsmError::Unexpected("PIN is not UTF-8"))?
                .to_owned(),
        );
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(e.into()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        // A poisoned lock only means another thread panicked while pushing or
        // popping; the Vec itself is still consistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The right to use one session; returns the session to the pool on drop.
#[derive(Debug)]
pub struct Lease {
    pool: Arc<SessionPool>,
    session: Option<Session>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    /// The leased session, opening one if none is idle. Blocking: call only
    /// from a blocking thread.
    pub fn session(&mut self) -> Result<&Session, HsmError> {
        if self.session.is_none() {
            let reused = self.pool.idle().pop();
            self.session = Some(match reused {
                Some(s) => s,
                None => self.pool.open()?,
            });
        }
        self.session.as_ref().ok_or(HsmError::Worker)
    }

    /// Closes the session instead of returning it to the pool.
    pub fn discard(&mut self) {
        if let Some(s) = self.session.take() {
            s.close();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.pool.idle().push(s);
        }
    }
}
