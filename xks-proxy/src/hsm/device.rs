//! The PKCS#11 module as a recoverable device: one initialized context,
//! the slot of each token in use, and the idle sessions on each token.
//!
//! # Why a read-write lock
//! Recovery from a device error means `C_Finalize` and `C_Initialize`, and
//! before that closing every session. Two hazards decide the design:
//!
//! - `C_Finalize` while another thread is inside a PKCS#11 call is
//!   undefined behaviour in most modules (SoftHSM frees the session the
//!   other thread is using).
//! - Session handles are small integers that a module reuses. After the
//!   module has lost its sessions (a reset, `C_CloseAllSessions`), closing a
//!   stale `Session` could close a *new* session that got the same number.
//!
//! So every operation holds the read lock from checking out a session until
//! it has handed it back (or dropped it), and recovery takes the write lock:
//! at that point no call is in flight and no session is out of the pool, so
//! closing every pooled session and finalizing is safe. A blocked
//! operation delays recovery, but never past its own return, and callers
//! stop waiting at their deadline anyway.
//!
//! Recovery is triggered by the operation that hit the error (and by health
//! checks), at most once per `reinit_interval` while it keeps failing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::session::Session;
use cryptoki::slot::Slot;

use super::HsmError;
use crate::secret::Secret;

/// One token in use.
#[derive(Debug)]
struct Token {
    /// `None` while the token is missing.
    slot: Option<Slot>,
    idle: Mutex<Vec<Session>>,
}

/// The module's state; see the module docs for the locking rules.
#[derive(Debug)]
pub struct State {
    ctx: Option<Pkcs11>,
    generation: u64,
    tokens: HashMap<String, Token>,
    last_attempt: Option<Instant>,
}

/// A PKCS#11 module that can be re-initialized without a restart.
#[derive(Debug)]
pub struct Device {
    path: PathBuf,
    state: RwLock<State>,
    reinit_interval: Duration,
    reinits: AtomicU64,
    available: AtomicBool,
}

/// Loads the module, initializes it for multi-threaded use and finds the
/// slot of each token label. A missing token is `None`, not an error: the
/// other key stores can still work.
fn initialize(
    path: &Path,
    labels: &[String],
) -> Result<(Pkcs11, HashMap<String, Option<Slot>>), HsmError> {
    let ctx = Pkcs11::new(path)?;
    // CKF_OS_LOCKING_OK: without it SoftHSM and others are not safe to call
    // from several threads at once.
    ctx.initialize(CInitializeArgs::OsThreads)?;
    let mut slots: HashMap<String, Option<Slot>> =
        labels.iter().map(|l| (l.clone(), None)).collect();
    for slot in ctx.get_slots_with_token()? {
        let label = ctx.get_token_info(slot)?.label().trim_end().to_owned();
        if let Some(s) = slots.get_mut(&label) {
            s.get_or_insert(slot);
        }
    }
    Ok((ctx, slots))
}

impl State {
    /// Changes whenever the module is re-initialized; key handles and
    /// sessions from another generation are not valid.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// An idle session on the token, or a new logged-in one. Blocking.
    pub fn checkout(&self, label: &str, pin: &Secret) -> Result<Session, HsmError> {
        let (Some(ctx), Some(token)) = (&self.ctx, self.tokens.get(label)) else {
            return Err(HsmError::Unavailable("PKCS#11 module not initialized"));
        };
        let slot = token
            .slot
            .ok_or_else(|| HsmError::TokenNotFound(label.to_owned()))?;
        if let Some(s) = lock(&token.idle).pop() {
            return Ok(s);
        }
        let session = ctx.open_rw_session(slot)?;
        super::module::login(&session, pin)?;
        Ok(session)
    }

    /// Checks that the token is still there and readable. A key that
    /// cannot be found may mean the token itself is gone: SoftHSM, for
    /// one, reports the objects of a removed token as simply absent.
    pub fn check_token(&self, label: &str) -> Result<(), HsmError> {
        let (Some(ctx), Some(slot)) = (&self.ctx, self.tokens.get(label).and_then(|t| t.slot))
        else {
            return Err(HsmError::Unavailable("PKCS#11 module not initialized"));
        };
        match ctx.get_token_info(slot) {
            Ok(info) if info.label().trim_end() == label => Ok(()),
            Ok(_) => Err(HsmError::Unavailable("token changed")),
            Err(e) => {
                tracing::warn!(token = %label, error = %e, "token not readable");
                Err(HsmError::Unavailable("token not readable"))
            }
        }
    }

    /// Returns a healthy session to the token's idle list.
    pub fn checkin(&self, label: &str, session: Session) {
        if let Some(t) = self.tokens.get(label) {
            lock(&t.idle).push(session);
        }
    }

    /// Idle sessions on a token.
    pub fn idle(&self, label: &str) -> usize {
        self.tokens.get(label).map_or(0, |t| lock(&t.idle).len())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The protected Vec stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Device {
    /// Initializes the module. Start-up is strict: every token must be
    /// present, since a missing one is more likely a configuration mistake
    /// than an outage.
    pub fn open(
        path: &Path,
        labels: &[String],
        reinit_interval: Duration,
    ) -> Result<Device, HsmError> {
        let (ctx, slots) = initialize(path, labels)?;
        if let Some((label, _)) = slots.iter().find(|(_, s)| s.is_none()) {
            return Err(HsmError::TokenNotFound(label.clone()));
        }
        let tokens = slots
            .into_iter()
            .map(|(l, slot)| {
                (
                    l,
                    Token {
                        slot,
                        idle: Mutex::new(Vec::new()),
                    },
                )
            })
            .collect();
        Ok(Device {
            path: path.to_owned(),
            state: RwLock::new(State {
                ctx: Some(ctx),
                generation: 0,
                tokens,
                last_attempt: None,
            }),
            reinit_interval,
            reinits: AtomicU64::new(0),
            available: AtomicBool::new(true),
        })
    }

    /// Shared access for one operation. Blocking: call from a blocking
    /// thread only (recovery may hold the write lock for a module init).
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        // Recovery never leaves the state half-updated across a panic
        // point that matters: the worst case is a module marked missing,
        // which the next recovery repairs.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The module's generation, or `None` while a recovery holds the
    /// state. Never blocks, so async code may call it.
    pub fn generation_now(&self) -> Option<u64> {
        match self.state.try_read() {
            Ok(st) => Some(st.generation),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner().generation),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Successful re-initializations so far.
    pub fn reinitializations(&self) -> u64 {
        self.reinits.load(Ordering::Relaxed)
    }

    /// Whether the module is initialized (false after a failed recovery).
    pub fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Recovers from `cause`, seen on generation `seen`: closes every pooled
    /// session (and `bad`, the session that failed), finalizes the module
    /// and initializes it again. Returns whether the caller should retry:
    /// true when this or a concurrent recovery produced a working module.
    /// Blocking.
    pub fn recover(&self, seen: u64, bad: Option<Session>, cause: &HsmError) -> bool {
        let mut st = self.write();
        if st.generation != seen {
            // `bad` belongs to a module generation that a concurrent
            // recovery has already replaced. Its drop would close a handle
            // number the new module may have handed out again, and, when it
            // holds the last clone of the old context, call `C_Finalize` on
            // the shared library underneath the new initialization. Leaking
            // it costs a few bytes once per straggler per recovery.
            if let Some(stale) = bad {
                std::mem::forget(stale);
            }
            return st.ctx.is_some();
        }
        // Same generation, under the write lock: no other session is in
        // use, so closing this stale handle cannot hit a live session that
        // reused its number.
        drop(bad);
        if st
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.reinit_interval)
        {
            return false;
        }
        st.last_attempt = Some(Instant::now());
        tracing::warn!(cause = %cause, "HSM error; re-initializing the PKCS#11 module");
        for t in st.tokens.values_mut() {
            t.idle.get_mut().unwrap_or_else(|p| p.into_inner()).clear();
            t.slot = None;
        }
        // Our reference to the old context: when it is the last one,
        // dropping it calls C_Finalize (harmless if the module already lost
        // its state).
        st.ctx = None;
        // Callers queued behind this lock may still hold sessions (and so
        // clones) of the old context, in which case dropping ours did not
        // finalize the library. Finalize it through a throwaway handle, so
        // that `C_Initialize` below starts from a clean module rather than
        // failing with CKR_CRYPTOKI_ALREADY_INITIALIZED. On a module that
        // is already finalized this is a no-op error.
        drop(Pkcs11::new(&self.path));
        self.available.store(false, Ordering::Relaxed);
        let labels: Vec<String> = st.tokens.keys().cloned().collect();
        match initialize(&self.path, &labels) {
            Ok((ctx, slots)) => {
                for (label, slot) in slots {
                    if slot.is_none() {
                        tracing::error!(token = %label, "token not present after re-initialization");
                    }
                    if let Some(t) = st.tokens.get_mut(&label) {
                        t.slot = slot;
                    }
                }
                st.ctx = Some(ctx);
                st.generation += 1;
                self.reinits.fetch_add(1, Ordering::Relaxed);
                self.available.store(true, Ordering::Relaxed);
                tracing::info!(generation = st.generation, "PKCS#11 module re-initialized");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "PKCS#11 re-initialization failed; will retry");
                false
            }
        }
    }

    /// TEST ONLY (`hsm.fault_injection`): makes the module drop every
    /// session and its login state underneath the proxy, by finalizing it
    /// through a second handle on the same library, as a vendor library
    /// reset or another component calling `C_Finalize` would. The proxy's
    /// own context still believes it is initialized. Taken under the write
    /// lock so that no call is in flight during the finalize. Blocking.
    pub fn inject_session_loss(&self) -> Result<(), HsmError> {
        let _exclusive = self.write();
        // Dropping an extra context calls C_Finalize on the shared library.
        drop(Pkcs11::new(&self.path)?);
        tracing::warn!("fault injection: PKCS#11 module finalized underneath the proxy");
        Ok(())
    }
}
