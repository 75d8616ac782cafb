//! Envelope encryption in the AWS Encryption SDK message format.
//!
//! This crate holds everything that needs no network: the message format,
//! the algorithm suites, key derivation, the keyring and materials-manager
//! traits, the raw AES, raw RSA and multi keyrings, and the [`Client`].
//!
//! # Security notes
//! - Decryption releases nothing until the header, every frame and (for
//!   signed suites) the footer signature have verified.
//! - Data keys ([`DataKey`]) are zeroized on drop and never printed.
//!   AES key schedules live inside the crypto backends (`ring`,
//!   `aws-lc`); aws-lc clears freed memory, `ring` does not zeroize its
//!   expanded AES schedules.
//! - The default commitment policy and suite (0x0578) give key commitment
//!   and message signatures, as the official SDKs do.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod client;
pub mod crypto;
pub mod error;
pub mod format;
pub mod keyring;
pub mod materials;
mod message;
pub mod policy;
pub mod stream;
pub mod suite;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

pub use client::{Client, ClientBuilder, Decrypted, StreamDecrypted, DEFAULT_FRAME_LENGTH};
pub use crypto::{DataKey, SigningKey};
pub use error::Error;
pub use format::{EncryptedDataKey, EncryptionContext};
pub use keyring::{Keyring, MultiKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding};
pub use materials::{
    CacheStats, CachingMaterialsManager, DefaultMaterialsManager, MaterialsCache, MaterialsManager,
    RequiredContextMaterialsManager,
};
pub use policy::CommitmentPolicy;
pub use stream::{DecryptingReader, EncryptingWriter, ReleasePolicy};
pub use suite::AlgorithmSuite;

/// The committing suites' key derivation (HKDF-SHA512 from the data key and
/// message id to the content and commitment keys), exposed only so that the
/// benches' floor does the unavoidable work per message with the same
/// fastest primitive. Not a stable API.
#[doc(hidden)]
pub fn __floor_derive_committing(
    message_id: &[u8],
    data_key: &[u8],
    suite_id: u16,
) -> (zeroize::Zeroizing<[u8; 32]>, [u8; 32]) {
    let keys = crypto::hkdf_sha512::derive_committing(message_id, data_key, suite_id.to_be_bytes());
    (keys.content, keys.commitment)
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread, parking while it is
/// pending. For the blocking API: local keyrings never suspend, so this
/// returns after one poll.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    // A cache hit completes on its first poll: try that with a waker that
    // costs nothing before allocating one that can unpark this thread.
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}
