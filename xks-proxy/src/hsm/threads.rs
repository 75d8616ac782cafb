//! The threads that make a key store's blocking PKCS#11 calls.
//!
//! # Why not tokio's blocking pool
//! `spawn_blocking` per request was measured side by side against these
//! threads with the load tool (SoftHSM, 32 clients, same session pool of
//! 8): the proxy's CPU per encrypt request fell from 170-190 us to
//! 120-131 us, and its throughput rose by about a quarter. The blocking
//! pool is built for occasional calls: it keeps a thread per concurrent
//! call alive and hands each call over through a shared mutex and condvar,
//! which at thousands of calls a second cost more than the HSM call.
//!
//! A fixed set of threads, as many as the session pool has sessions, take
//! calls from one queue instead (a multi-consumer channel: a call wakes one
//! idle thread). Callers hold a pool lease while their call is queued or
//! running, so the queue never holds more calls than there are threads to
//! run them.

use std::panic::AssertUnwindSafe;

use crossbeam_channel::{unbounded, Receiver, Sender};
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
    /// Starts `count` threads (at least one) named `name`.
    pub fn start(count: usize, name: &str) -> std::io::Result<Self> {
        let (queue, calls) = unbounded::<Call>();
        for _ in 0..count.max(1) {
            let calls = calls.clone();
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || serve(&calls))?;
        }
        Ok(HsmThreads { queue })
    }

    /// Queues `call`; its result arrives through the returned receiver,
    /// which reports an error instead if the call panicked.
    pub fn run<T, F>(&self, call: F) -> oneshot::Receiver<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, receiver) = oneshot::channel();
        // The threads stop only once this sender is dropped, so the send
        // cannot fail while `self` exists; were it to, the dropped answer
        // sender reports it to the caller.
        let _ = self.queue.send(Box::new(move || {
            let _ = answer.send(call());
        }));
        receiver
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
        let threads = HsmThreads::start(2, "test-hsm").unwrap();
        let name = threads.run(|| std::thread::current().name().map(str::to_owned));
        assert_eq!(name.await.unwrap().as_deref(), Some("test-hsm"));
        let panicked = threads.run(|| -> u8 { panic!("injected") }).await;
        assert!(panicked.is_err(), "a panic closes the answer channel");
        // Both threads are still there: two calls that wait for each other
        // can only finish if they run at the same time.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (a, b) = (Arc::clone(&barrier), Arc::clone(&barrier));
        let first = threads.run(move || a.wait().is_leader());
        let second = threads.run(move || b.wait().is_leader());
        let both = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            (first.await.unwrap(), second.await.unwrap())
        });
        let (first, second) = both.await.expect("a thread was lost to the panic");
        assert!(first ^ second);
    }
}
