//! The session pool's queue, through the library API on a private SoftHSM
//! configuration: a call whose caller went away while it was queued never
//! runs, and a queued call whose caller waits does.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use xks_proxy::hsm::{Device, SessionPool};
use xks_proxy::secret::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_given_up_while_queued_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = SoftHsm::new(dir.path());
    // This test binary has only this test, so setting the variable that
    // this process's SoftHSM reads races with nothing.
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let device = Device::open(MODULE.as_ref(), &[], Duration::from_millis(500)).unwrap();
    let pool = Arc::new(
        SessionPool::new(
            Arc::new(device),
            "unused".into(),
            Secret::new(b"unused".to_vec()),
            1,
            Duration::from_secs(5),
        )
        .unwrap(),
    );
    // Occupy the pool's one thread until told to stop.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let busy = tokio::spawn({
        let pool = Arc::clone(&pool);
        async move {
            pool.run(Duration::from_secs(5), move |_, _| {
                held.recv().ok();
                Ok(())
            })
            .await
        }
    });
    while pool.in_use() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Queue two calls behind it; the first one's caller goes away.
    let ran = |flag: &Arc<AtomicBool>| {
        let (pool, flag) = (Arc::clone(&pool), Arc::clone(flag));
        async move {
            pool.run(Duration::from_secs(5), move |_, _| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await
        }
    };
    let (abandoned, kept) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    // In this order, so that the thread reaches the abandoned call first.
    let gone = tokio::spawn(ran(&abandoned));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let waiting = tokio::spawn(ran(&kept));
    tokio::time::sleep(Duration::from_millis(20)).await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    release.send(()).unwrap();
    busy.await.unwrap().unwrap();
    waiting.await.unwrap().unwrap();
    assert!(
        kept.load(Ordering::SeqCst),
        "the call whose caller waited ran"
    );
    assert!(
        !abandoned.load(Ordering::SeqCst),
        "the call whose caller went away ran anyway"
    );
    assert_eq!(pool.in_use(), 0);
}
