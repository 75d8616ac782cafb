//! The threads that make a key store's blocking PKCS#11 calls.
//!
//! # Why not tokio's blocking pool and a semaphore
//! The proxy used to wait for a session on an async semaphore, then hand
//! the call to `spawn_blocking`. Measured with the load tool (SoftHSM, 32
//! clients, a session pool of 8), the proxy spent 147-207 us of CPU per
//! encrypt request that way; dedicated threads behind the same semaphore
//! spent 119-144 us, and dedicated threads with the wait moved into their
//! queue 87-121 us, for 0.43-0.58 of the raw HSM rate instead of
//! 0.23-0.39. Every semaphore release and every blocking-pool hand-off
//! wakes a sleeping thread; a busy HSM thread here takes its next call
//! from the queue without sleeping at all.
//!
//! A fixed set of threads, as many as the session pool has sessions, take
//! calls from one bounded queue instead (a multi-consumer channel: a call
//! wakes one idle thread, and a busy thread takes the next call without
//! sleeping). Waiting for a free session is waiting in this queue; see
//! [`super::pool::SessionPool::run`] for the deadlines.
//!
//! The channel's receivers spin, then yield, before they sleep, and that
//! is kept on purpose: a queue of a mutex and a condition variable, whose
//! idle threads sleep at once, cost 133-140 us of proxy CPU per encrypt
//! request against 101-111 us, measured alternately in one session.
//! Sleeping and being woken costs more here than yielding.

use std::panic::AssertUnwindSafe;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use tokio::sync::oneshot;

type Call = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads running blocking calls in arrival order.
///
/// Dropping it lets the threads finish their current call and exit; it does
/// not wait for them, since a hung HSM call would hang the drop.
#[derive(Debug)]
pub struct HsmThreads {
    queue: Sender<Call>,
}

impl HsmThreads {
    /// Starts `count` threads (at least one) named `name`, with room for
    /// `capacity` calls waiting.
    pub fn start(count: usize, capacity: usize, name: &str) -> std::io::Result<Self> {
        let (queue, calls) = bounded::<Call>(capacity);
        for _ in 0..count.max(1) {
            let calls = calls.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || serve(&calls))?;
        }
        Ok(HsmThreads { queue })
    }

    /// Queues `call`; its result arrives through the returned receiver,
    /// which reports an error instead if the call panicked. `None` when
    /// the queue is full.
    pub fn try_run<T, F>(&self, call: F) -> Option<oneshot::Receiver<T>>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, receiver) = oneshot::channel();
        let call: Call = Box::new(move || {
            let _ = answer.send(call());
        });
        match self.queue.try_send(call) {
            Ok(()) => Some(receiver),
            // The threads stop only once this sender is dropped, so
            // `Disconnected` cannot happen while `self` exists.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => None,
        }
    }
}

fn serve(calls: &Receiver<Call>) {
    // Ends once the sender is dropped and the queue is empty.
    while let Ok(call) = calls.recv() {
        // A panicking call must not take the thread with it: its caller sees
        // the answer channel close, and the next call gets this thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(call));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn runs_calls_on_its_threads_and_survives_a_panicking_one() {
        let threads = HsmThreads::start(2, 4, "test-hsm").unwrap();
        let name = threads.try_run(|| std::thread::current().name().map(str::to_owned));
        assert_eq!(name.unwrap().await.unwrap().as_deref(), Some("test-hsm"));
        let panicked = threads.try_run(|| -> u8 { panic!("injected") });
        let panicked = panicked.unwrap().await;
        assert!(panicked.is_err(), "a panic closes the answer channel");
        // Both threads are still there: two calls that wait for each other
        // can only finish if they run at the same time.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (a, b) = (Arc::clone(&barrier), Arc::clone(&barrier));
        let first = threads.try_run(move || a.wait().is_leader()).unwrap();
        let second = threads.try_run(move || b.wait().is_leader()).unwrap();
        let both = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            (first.await.unwrap(), second.await.unwrap())
        });
        let (first, second) = both.await.expect("a thread was lost to the panic");
        assert!(first ^ second);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_calls() {
        let threads = HsmThreads::start(1, 1, "test-hsm").unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let busy = threads
            .try_run(move || {
                started.send(()).unwrap();
                held.recv().unwrap();
            })
            .unwrap();
        running.recv().unwrap();
        let queued = threads.try_run(|| 1).expect("room for one waiting call");
        assert!(threads.try_run(|| 2).is_none(), "the queue is full");
        release.send(()).unwrap();
        busy.await.unwrap();
        assert_eq!(queued.await.unwrap(), 1);
    }
}
