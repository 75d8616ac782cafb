//! A bounded pool of logged-in sessions on one token.
//!
//! A semaphore bounds the number of sessions; a caller waits for a permit up
//! to a deadline rather than failing when the pool is busy (a burst should
//! queue, not error). Sessions live in the [`Device`] (so that recovery can
//! close them all) and are opened lazily on the HSM thread that first
//! needs one. The pool also owns the threads that make its calls (see
//! [`HsmThreads`]), one per session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::session::Session;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::device::Device;
use super::threads::HsmThreads;
use super::HsmError;
use crate::secret::Secret;

/// A bounded session pool.
#[derive(Debug)]
pub struct SessionPool {
    device: Arc<Device>,
    token: String,
    pin: Secret,
    permits: Arc<Semaphore>,
    size: usize,
    wait: Duration,
    wait_timeouts: AtomicU64,
    threads: HsmThreads,
}

/// The right to use one session; held across the blocking operation.
#[derive(Debug)]
pub struct Lease {
    _permit: OwnedSemaphorePermit,
}

impl SessionPool {
    /// A pool of at most `size` sessions on the token labelled `token`, and
    /// as many threads to use them; callers wait up to `wait` for one.
    pub fn new(
        device: Arc<Device>,
        token: String,
        pin: Secret,
        size: usize,
        wait: Duration,
    ) -> std::io::Result<Self> {
        let threads = HsmThreads::start(size, "xks-hsm")?;
        Ok(SessionPool {
            device,
            token,
            pin,
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
            wait_timeouts: AtomicU64::new(0),
            threads,
        })
    }

    /// Waits for a free slot in the pool, up to the configured deadline.
    pub async fn acquire(&self) -> Result<Lease, HsmError> {
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Lease { _permit: permit }),
            Ok(Err(_closed)) => Err(HsmError::Worker),
            Err(_) => {
                self.wait_timeouts.fetch_add(1, Ordering::Relaxed);
                Err(HsmError::PoolTimeout(self.wait))
            }
        }
    }

    /// Runs `f` on a session. Blocking: call on one of [`Self::threads`],
    /// holding a [`Lease`].
    ///
    /// On an error that means the module or its sessions are gone (see
    /// [`HsmError::needs_recovery`]) the device is recovered and `f` runs
    /// once more on a fresh session, if `deadline` has not passed. Both
    /// operations this is used for are safe to repeat: an encrypt draws a
    /// new IV, and metadata and decrypt have no side effects.
    pub fn run_blocking<T>(
        &self,
        deadline: Instant,
        f: &dyn Fn(&Session, u64) -> Result<T, HsmError>,
    ) -> Result<T, HsmError> {
        let mut retried = false;
        loop {
            // Declared first, so that on any exit path the session (declared
            // after it) is dropped while the read lock is still held.
            let state = self.device.read();
            let generation = state.generation();
            let (error, bad) = match state.checkout(&self.token, &self.pin) {
                Err(e) => (e, None),
                Ok(session) => match f(&session, generation) {
                    Ok(v) => {
                        state.checkin(&self.token, session);
                        return Ok(v);
                    }
                    Err(e) if e.needs_recovery() => (e, Some(session)),
                    // Tell a deleted key from a vanished token.
                    Err(e @ HsmError::KeyNotFound(_)) => match state.check_token(&self.token) {
                        Ok(()) => {
                            state.checkin(&self.token, session);
                            return Err(e);
                        }
                        Err(gone) => (gone, Some(session)),
                    },
                    Err(e) => {
                        if e.poisons_session() {
                            drop(session);
                        } else {
                            state.checkin(&self.token, session);
                        }
                        return Err(e);
                    }
                },
            };
            if !error.needs_recovery() {
                return Err(error);
            }
            drop(state);
            let recovered = self.device.recover(generation, bad, &error);
            if !recovered || retried || Instant::now() >= deadline {
                return Err(error);
            }
            retried = true;
        }
    }

    /// Configured size.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Sessions leased right now.
    pub fn in_use(&self) -> usize {
        self.size.saturating_sub(self.permits.available_permits())
    }

    /// Requests that gave up waiting for a session.
    pub fn wait_timeouts(&self) -> u64 {
        self.wait_timeouts.load(Ordering::Relaxed)
    }

    /// The threads that make this pool's HSM calls.
    pub fn threads(&self) -> &HsmThreads {
        &self.threads
    }

    /// The device the pool draws from.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }
}
