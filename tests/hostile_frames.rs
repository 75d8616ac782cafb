//! A header's frame length costs nothing until the bytes arrive: a valid
//! message that claims 2^31 - 1-byte frames, cut a few bytes into its first
//! frame, fails as truncated on every decrypt path with a few MiB allocated
//! at most (a global allocator here counts the peak), and a frame length
//! over 2^31 - 1 is refused when the header is parsed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use envelope::error::{Error, FormatError};
use envelope::{AlgorithmSuite, Client, EncryptionContext, RawAesKeyring, ReleasePolicy};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator with the same
// arguments; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns the most memory it held at once above where it started.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

const LIMIT: usize = 64 << 20;
const MAX_FRAME: u32 = i32::MAX as u32;

fn client() -> Client {
    Client::builder()
        .keyring(Arc::new(
            RawAesKeyring::new("ns", "key", &[4u8; 32]).expect("keyring"),
        ))
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .frame_length(MAX_FRAME)
        .build()
        .expect("client")
}

#[tokio::test(flavor = "current_thread")]
async fn claimed_frame_lengths_cost_only_what_arrives() {
    let client = client();
    let context = EncryptionContext::default();
    // A valid header (its tag verifies) claiming 2^31 - 1-byte frames, then
    // the first frame's sequence number, IV and one byte: the decoder now
    // needs a whole 2 GiB frame that will never come.
    let message = client.encrypt_blocking(b"", &context).expect("encrypt");
    let (_, header_len) = envelope::format::Header::parse_prefix(&message, None).expect("header");
    let mut hostile = message[..header_len].to_vec();
    hostile.extend_from_slice(&[0, 0, 0, 1]);
    hostile.extend_from_slice(&[0xAB; 13]);

    let truncated = |e: &Error| matches!(e, Error::Format(FormatError::Truncated { .. }));
    let (result, peak) = peak_of(|| client.decrypt_blocking(&hostile, &context));
    assert!(truncated(&result.expect_err("in memory")), "in memory");
    assert!(peak < LIMIT, "in memory: {peak} bytes");

    for policy in [
        ReleasePolicy::PerFrame,
        ReleasePolicy::VerifiedOnly {
            max_in_memory: 1 << 20,
            spill_dir: None,
        },
    ] {
        let (result, peak) = peak_of(|| -> Result<Vec<u8>, std::io::Error> {
            let mut reader = client
                .decrypting_reader_blocking(&hostile[..], &context, policy.clone())
                .map_err(std::io::Error::other)?;
            let mut out = Vec::new();
            reader.read_to_end(&mut out)?;
            Ok(out)
        });
        assert!(result.is_err(), "{policy:?}: a truncated message");
        assert!(peak < LIMIT, "std reader {policy:?}: {peak} bytes");
    }

    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut sink = Vec::new();
    let result = client
        .decrypt_stream(&mut &hostile[..], &mut sink, &context)
        .await;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    assert!(result.is_err(), "tokio: a truncated message");
    assert!(peak < LIMIT, "tokio: {peak} bytes");
    assert!(sink.is_empty());

    // Over the format's limit: refused when the header is parsed, before
    // any key is unwrapped.
    let at = hostile[..header_len]
        .windows(4)
        .rposition(|w| w == MAX_FRAME.to_be_bytes())
        .expect("the frame length field");
    let mut over = hostile.clone();
    over[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let error = client
        .decrypt_blocking(&over, &context)
        .expect_err("over the limit");
    assert!(
        matches!(
            error,
            Error::Format(FormatError::TooLong {
                field: "frame length",
                ..
            })
        ),
        "{error}"
    );
}
