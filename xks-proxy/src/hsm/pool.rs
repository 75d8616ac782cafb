//! A bounded pool of logged-in sessions on one token, and the threads that
//! use them.
//!
//! Calls wait for a free session in a queue, up to a deadline, rather than
//! failing when the pool is busy (a burst should queue, not error). Sessions
//! live in the [`Device`] (so that recovery can close them all) and are
//! opened lazily on the HSM thread that first needs one; the pool has one
//! thread per session (see [`HsmThreads`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::session::Session;

use super::device::Device;
use super::threads::HsmThreads;
use super::HsmError;
use crate::secret::Secret;

/// Calls that may wait per thread before new ones are refused at once: far
/// more than a burst needs, and a bound on what a hung HSM lets pile up.
const QUEUE_PER_THREAD: usize = 64;

/// Where a queued call is, in one atomic word that the caller and the
/// thread settle with a compare-and-swap, so that a call is either run or
/// given up, never both: [`QUEUED`], [`ABANDONED`], or else started, as
/// one plus the microseconds it spent queued (so the caller knows when the
/// call's own deadline falls).
const QUEUED: u64 = 0;
const ABANDONED: u64 = u64::MAX;

/// A bounded session pool.
#[derive(Debug)]
pub struct SessionPool {
    device: Arc<Device>,
    token: String,
    pin: Secret,
    size: usize,
    wait: Duration,
    wait_timeouts: AtomicU64,
    busy: AtomicUsize,
    threads: HsmThreads,
}

/// Gives up a call that is still queued when its caller goes away (a
/// client that disconnected, a request that was cancelled), so that the
/// HSM does no work nobody will read. Once the call started, or was
/// settled, the swap fails and this does nothing.
struct GiveUpIfQueued(Arc<AtomicU64>);

impl Drop for GiveUpIfQueued {
    fn drop(&mut self) {
        let _ = self
            .0
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Counts a thread as busy while it lives.
struct Busy<'a>(&'a AtomicUsize);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SessionPool {
    /// A pool of at most `size` sessions on the token labelled `token`, and
    /// as many threads to use them; calls wait up to `wait` for one.
    pub fn new(
        device: Arc<Device>,
        token: String,
        pin: Secret,
        size: usize,
        wait: Duration,
    ) -> std::io::Result<Self> {
        let threads = HsmThreads::start(size, size.max(1) * QUEUE_PER_THREAD, "xks-hsm")?;
        Ok(SessionPool {
            device,
            token,
            pin,
            size,
            wait,
            wait_timeouts: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            threads,
        })
    }

    /// Runs `call` on one of the pool's threads, with the deadline it must
    /// keep (see [`Self::run_blocking`]).
    ///
    /// The call waits for a free thread (and so a session) up to the pool's
    /// wait, then has `op_timeout` to finish. A call still queued at the
    /// wait deadline is given up: [`HsmError::PoolTimeout`], and it never
    /// runs. A call that started and is late gives
    /// [`HsmError::OperationTimeout`] here while it finishes in the
    /// background, still occupying its thread, so the pool stays bounded.
    pub async fn run<T, F>(self: &Arc<Self>, op_timeout: Duration, call: F) -> Result<T, HsmError>
    where
        T: Send + 'static,
        F: FnOnce(&SessionPool, Instant) -> Result<T, HsmError> + Send + 'static,
    {
        let queued_at = Instant::now();
        let state = Arc::new(AtomicU64::new(QUEUED));
        let (pool, claim) = (Arc::clone(self), Arc::clone(&state));
        let answer = self.threads.try_run(move || {
            let queued_us = u64::try_from(queued_at.elapsed().as_micros()).unwrap_or(u64::MAX);
            let started = queued_us.saturating_add(1).min(ABANDONED - 1);
            if claim
                .compare_exchange(QUEUED, started, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // Given up by its caller while queued.
                return None;
            }
            pool.busy.fetch_add(1, Ordering::Relaxed);
            let _busy = Busy(&pool.busy);
            Some(call(&pool, Instant::now() + op_timeout))
        });
        let Some(mut answer) = answer else {
            return Err(self.wait_timed_out());
        };
        let _cancel = GiveUpIfQueued(Arc::clone(&state));
        let settle = |r: Result<Option<Result<T, HsmError>>, _>| match r {
            Ok(Some(result)) => result,
            // `None` only for a call this caller gave up, which it no longer
            // waits for; a closed channel means the call panicked.
            Ok(None) | Err(_) => Err(HsmError::Worker),
        };
        let wait_deadline = queued_at + self.wait;
        let started = match tokio::time::timeout_at(wait_deadline.into(), &mut answer).await {
            Ok(r) => return settle(r),
            Err(_) => {
                match state.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Err(self.wait_timed_out()),
                    Err(started) => started,
                }
            }
        };
        // It started before the wait deadline and has `op_timeout` from then.
        let started_at = queued_at + Duration::from_micros(started.saturating_sub(1));
        match tokio::time::timeout_at((started_at + op_timeout).into(), answer).await {
            Ok(r) => settle(r),
            Err(_) => Err(HsmError::OperationTimeout(op_timeout)),
        }
    }

    fn wait_timed_out(&self) -> HsmError {
        self.wait_timeouts.fetch_add(1, Ordering::Relaxed);
        HsmError::PoolTimeout(self.wait)
    }

    /// Runs `f` on a session. Blocking: call from [`Self::run`]'s call.
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

    /// Sessions in use right now: calls running on the pool's threads.
    pub fn in_use(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Requests that gave up waiting for a session.
    pub fn wait_timeouts(&self) -> u64 {
        self.wait_timeouts.load(Ordering::Relaxed)
    }

    /// The device the pool draws from.
    pub fn device(&self) -> &Arc<Device> {
        &self.device
    }
}
