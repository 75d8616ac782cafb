//! Streaming encryption and decryption: std::io and tokio, every size and
//! frame boundary, truncation, tampering, both release policies, declared
//! lengths, and compatibility with the in-memory API.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use envelope::stream::stream_error;
use envelope::{
    AlgorithmSuite, CachingMaterialsManager, Client, DefaultMaterialsManager, EncryptionContext,
    RawAesKeyring, ReleasePolicy,
};

/// `len` bytes of a pattern whose period (251, a prime) is no frame length,
/// so that equal frames never hide a misplaced one.
fn patterned(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn client(suite: AlgorithmSuite, frame: u32) -> Client {
    Client::builder()
        .keyring(Arc::new(
            RawAesKeyring::new("stream", "key", &[9u8; 32]).expect("keyring"),
        ))
        .suite(suite)
        .frame_length(frame)
        .build()
        .expect("client")
}

fn context() -> EncryptionContext {
    [("file", "report.csv")].into_iter().collect()
}

const SUITES: [AlgorithmSuite; 2] = [
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
];

fn stream_encrypt(
    client: &Client,
    plaintext: &[u8],
    write_size: usize,
    declared: Option<u64>,
) -> Vec<u8> {
    let mut writer = client
        .encrypting_writer_blocking(Vec::new(), &context(), declared)
        .expect("writer");
    for chunk in plaintext.chunks(write_size.max(1)) {
        writer.write_all(chunk).expect("write");
    }
    writer.finish().expect("finish")
}

fn stream_decrypt(
    client: &Client,
    message: &[u8],
    read_size: usize,
    policy: ReleasePolicy,
) -> std::io::Result<Vec<u8>> {
    let mut reader = client
        .decrypting_reader_blocking(message, &context(), policy)
        .map_err(std::io::Error::other)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match reader.read(&mut buf)? {
            0 => return Ok(out),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn verified_only() -> ReleasePolicy {
    ReleasePolicy::VerifiedOnly {
        max_in_memory: 1 << 20,
        spill_dir: None,
    }
}

#[test]
fn std_round_trips_match_the_in_memory_api() {
    for suite in SUITES {
        let client = client(suite, 64);
        for len in [0usize, 1, 63, 64, 65, 128, 1000] {
            let plaintext = patterned(len);
            for write_size in [1usize, 7, 64, 4096] {
                let message = stream_encrypt(&client, &plaintext, write_size, None);
                let in_memory = client
                    .decrypt_blocking(&message, &context())
                    .expect("in-memory decrypt");
                assert_eq!(
                    in_memory.plaintext, plaintext,
                    "{suite} len {len} write {write_size}"
                );
            }
            let message = client
                .encrypt_blocking(&plaintext, &context())
                .expect("encrypt");
            for read_size in [1usize, 13, 4096] {
                for policy in [ReleasePolicy::PerFrame, verified_only()] {
                    let out = stream_decrypt(&client, &message, read_size, policy)
                        .expect("stream decrypt");
                    assert_eq!(out, plaintext, "{suite} len {len} read {read_size}");
                }
            }
        }
    }
}

#[test]
fn truncation_at_every_frame_boundary_fails() {
    for suite in SUITES {
        let client = client(suite, 32);
        let plaintext = vec![5u8; 32 * 6 + 5];
        let message = stream_encrypt(&client, &plaintext, 100, None);
        let header_len = envelope::format::Header::parse_prefix(&message, None)
            .expect("header")
            .1;
        let frame = 4 + 12 + 32 + 16;
        let mut cuts: Vec<usize> = (0..=6).map(|i| header_len + i * frame).collect();
        cuts.push(message.len() - 1);
        cuts.push(message.len() - 50);
        for cut in cuts {
            for policy in [ReleasePolicy::PerFrame, verified_only()] {
                let result = stream_decrypt(&client, &message[..cut], 4096, policy.clone());
                assert!(
                    result.is_err(),
                    "{suite}: cut at {cut} of {} accepted ({policy:?})",
                    message.len()
                );
            }
        }
    }
}

#[test]
fn tampering_releases_nothing_unverified() {
    for suite in SUITES {
        let client = client(suite, 64);
        // Not a multiple of the frame length, so the final frame holds
        // plaintext (a multiple ends with an empty final frame).
        let plaintext = vec![0x77u8; 64 * 4 + 10];
        let message = stream_encrypt(&client, &plaintext, 4096, None);
        // Flip a bit in the last byte: the footer signature, or the final frame's tag.
        let mut tampered = message.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;

        // Per frame: the first frames come out, the final one never does.
        let mut reader = client
            .decrypting_reader_blocking(&tampered[..], &context(), ReleasePolicy::PerFrame)
            .expect("header is intact");
        let mut out = Vec::new();
        let err = reader
            .read_to_end(&mut out)
            .expect_err("tampering detected");
        assert!(stream_error(&err).is_some(), "a typed error inside: {err}");
        assert!(out.len() < plaintext.len(), "the last frame was withheld");
        assert_eq!(out, plaintext[..out.len()]);

        // Verified only: nothing at all.
        let result = client.decrypting_reader_blocking(&tampered[..], &context(), verified_only());
        assert!(
            result.is_err(),
            "{suite}: verification happens before the reader is returned"
        );
    }
}

#[test]
fn a_tampered_middle_frame_stops_a_read_spanning_many_frames() {
    // 0x0478 has no footer, so the body's layout is known from the end:
    // 7 regular frames of 4 + 12 + 64 + 16 bytes, then a final frame of
    // 4 + 4 + 12 + 4 + 10 + 16 bytes.
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 64);
    let plaintext: Vec<u8> = (0..64 * 7 + 10).map(|i| i as u8).collect();
    let message = stream_encrypt(&client, &plaintext, 4096, None);
    let header_len = message.len() - (7 * 96 + 50);
    let mut tampered = message.clone();
    // The last tag byte of the third regular frame.
    tampered[header_len + 3 * 96 - 1] ^= 1;

    let mut reader = client
        .decrypting_reader_blocking(&tampered[..], &context(), ReleasePolicy::PerFrame)
        .expect("header is intact");
    // One buffer large enough for the whole plaintext: a single read may
    // decrypt several frames, and must still stop at the bad one.
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("a tampered frame was accepted"),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(stream_error(&err).is_some(), "a typed error inside: {err}");
    assert!(
        out.len() <= 2 * 64,
        "only frames before the bad one: {}",
        out.len()
    );
    assert_eq!(out, plaintext[..out.len()]);
    // The reader stays failed.
    assert!(reader.read(&mut buf).is_err());

    // The same message untampered, read the same way, is whole.
    let mut reader = client
        .decrypting_reader_blocking(&message[..], &context(), ReleasePolicy::PerFrame)
        .expect("reader");
    let mut whole = Vec::new();
    loop {
        match reader.read(&mut buf).expect("read") {
            0 => break,
            n => whole.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(whole, plaintext);
}

/// A source that yields at most `step` bytes per read, as pipes and
/// sockets do, so that frames arrive split across reads.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn trickle_decrypt(
    client: &Client,
    message: &[u8],
    step: usize,
    read_size: usize,
) -> (Vec<u8>, Option<std::io::Error>) {
    let source = Trickle {
        data: message,
        step,
    };
    let mut reader = client
        .decrypting_reader_blocking(source, &context(), ReleasePolicy::PerFrame)
        .expect("header is intact");
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Decrypts `message` from sources yielding `steps` bytes at a time into
/// buffers of `read_sizes`, and checks every combination gives `plaintext`.
fn assert_trickles_back(
    label: &str,
    client: &Client,
    message: &[u8],
    plaintext: &[u8],
    steps: &[usize],
    read_sizes: &[usize],
) {
    for &step in steps {
        for &read_size in read_sizes {
            let (out, err) = trickle_decrypt(client, message, step, read_size);
            assert!(
                err.is_none(),
                "{label} step {step} read {read_size}: {err:?}"
            );
            assert!(
                out == plaintext,
                "{label} step {step} read {read_size}: differs"
            );
        }
    }
}

#[test]
fn frames_decrypted_in_the_callers_buffer_split_anywhere() {
    // Reads into large buffers take the path that decrypts frames where
    // they were read (small ones the buffered path); sources that return
    // small pieces split frames (and their headers and tags) across reads.
    let frame = 256u32;
    let wire = 4 + 12 + frame as usize + 16;
    for suite in SUITES {
        let client = client(suite, frame);
        let plaintext = patterned(frame as usize * 40 + 17);
        let message = stream_encrypt(&client, &plaintext, 1000, None);
        assert_trickles_back(
            &format!("suite {suite}"),
            &client,
            &message,
            &plaintext,
            &[1, 7, wire - 1, wire, wire + 1, 4096, usize::MAX],
            &[wire, wire + 5, 3 * wire - 1, 64 * 1024],
        );
    }

    // Tampering and truncation on that path. 0x0478 has no footer, so the
    // header's length is known from the end: 40 regular frames, then a
    // final frame of 4 + 4 + 12 + 4 + 17 + 16 bytes.
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, frame);
    let plaintext = patterned(frame as usize * 40 + 17);
    let message = stream_encrypt(&client, &plaintext, 1000, None);
    let header_len = message.len() - (40 * wire + 57);
    for step in [7, wire + 1, usize::MAX] {
        let mut tampered = message.clone();
        // A ciphertext byte of the eleventh frame.
        tampered[header_len + 10 * wire + 20] ^= 1;
        let (out, err) = trickle_decrypt(&client, &tampered, step, 64 * 1024);
        let err = err.expect("a tampered frame is refused");
        assert!(stream_error(&err).is_some(), "a typed error inside: {err}");
        assert!(
            out.len() <= 10 * frame as usize,
            "only frames before the bad one"
        );
        assert_eq!(out, plaintext[..out.len()]);
        for frames in [0, 1, 20, 40] {
            let cut = &message[..header_len + frames * wire];
            let (out, err) = trickle_decrypt(&client, cut, step, 64 * 1024);
            assert!(err.is_some(), "truncated after {frames} frames: accepted");
            assert_eq!(out, plaintext[..out.len()]);
        }
    }
}

#[test]
fn frames_larger_than_the_read_buffer_with_it_decrypt_in_place() {
    // A read buffer that holds a frame's plaintext but not its wire form
    // (a 64 KiB read of 64 KiB frames) takes the path that reads the
    // frame's head and tag aside. Sources split frames anywhere.
    let frame = 64 * 1024u32;
    let wire = 4 + 12 + frame as usize + 16;
    let plaintext = patterned(frame as usize * 6 + 17);
    for suite in SUITES {
        let client = client(suite, frame);
        let message = stream_encrypt(&client, &plaintext, 1 << 20, None);
        assert_trickles_back(
            &format!("suite {suite}"),
            &client,
            &message,
            &plaintext,
            &[15, 16, 17, 4096, wire - 1, wire + 1, usize::MAX],
            &[frame as usize, frame as usize + 8],
        );
    }

    // Tampering with each part of a frame, and truncation inside each part.
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, frame);
    let message = stream_encrypt(&client, &plaintext, 1 << 20, None);
    let header_len = message.len() - (6 * wire + 57);
    let third = header_len + 2 * wire;
    for step in [16, 4096, usize::MAX] {
        // Sequence number, IV, ciphertext, tag of the third frame.
        for at in [third + 3, third + 9, third + 16 + 1000, third + wire - 1] {
            let mut tampered = message.clone();
            tampered[at] ^= 1;
            let (out, err) = trickle_decrypt(&client, &tampered, step, frame as usize);
            let err = err.expect("a tampered frame is refused");
            assert!(stream_error(&err).is_some(), "a typed error inside: {err}");
            assert_eq!(
                out,
                plaintext[..2 * frame as usize],
                "only the frames before"
            );
        }
        for cut in [third, third + 2, third + 16, third + 500, third + wire - 3] {
            let (out, err) = trickle_decrypt(&client, &message[..cut], step, frame as usize);
            assert!(err.is_some(), "truncated at {cut}: accepted");
            assert_eq!(out, plaintext[..2 * frame as usize]);
        }
    }
}

#[test]
fn frame_sized_writes_of_a_declared_length_give_the_same_message() {
    // With a declared length, a write of exactly one frame is sealed from
    // the caller's buffer when more is due; the message has the same shape
    // (the last frame is the final frame, even when full) and decrypts.
    let frame = 4096u32;
    for suite in SUITES {
        let client = client(suite, frame);
        for len in [frame as usize * 5, frame as usize * 5 + 9, frame as usize] {
            let plaintext = patterned(len);
            let declared = stream_encrypt(&client, &plaintext, frame as usize, Some(len as u64));
            let undeclared = stream_encrypt(&client, &plaintext, frame as usize, None);
            // (A signature's DER length varies, so compare unsigned suites.)
            if suite.signature().is_none() {
                assert_eq!(declared.len(), undeclared.len(), "suite {suite} len {len}");
            }
            let back = stream_decrypt(&client, &declared, 1000, ReleasePolicy::PerFrame);
            assert_eq!(back.expect("decrypt"), plaintext);
            let back = stream_decrypt(&client, &undeclared, 1000, ReleasePolicy::PerFrame);
            assert_eq!(back.expect("decrypt"), plaintext);
        }
    }
}

/// A small deterministic generator (xorshift64*), so that the jagged test
/// below covers many read patterns yet always the same ones.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    /// A size from one of three ranges: tiny, about one frame, several frames.
    fn size(&mut self, frame: usize) -> usize {
        match self.below(3) {
            0 => 1 + self.below(300),
            1 => frame - 64 + self.below(128),
            _ => 2 * frame + self.below(2 * frame),
        }
    }
}

/// A source whose every read returns a size drawn from `rng`.
struct Jagged<'a> {
    data: &'a [u8],
    rng: Xorshift,
    frame: usize,
}

impl Read for Jagged<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(self.rng.size(self.frame))
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn jagged_reads_switching_between_paths_release_only_verified_frames() {
    // Read sizes and source pieces change on every call, so one stream
    // moves between the buffered path, whole frames in the caller's buffer,
    // and frames split around it, with bytes carried from one to the next.
    let frame = 64 * 1024usize;
    let wire = 4 + 12 + frame + 16;
    let plaintext = patterned(frame * 7 + 1000);
    let decrypt = |client: &Client, message: &[u8], seed: u64| {
        let source = Jagged {
            data: message,
            rng: Xorshift(seed),
            frame,
        };
        let mut reader = client
            .decrypting_reader_blocking(source, &context(), ReleasePolicy::PerFrame)
            .expect("header is intact");
        let mut sizes = Xorshift(seed ^ 0x9E37_79B9_7F4A_7C15);
        let mut buf = vec![0u8; 4 * frame + 1];
        let mut out = Vec::new();
        loop {
            let size = sizes.size(frame);
            match reader.read(&mut buf[..size]) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    };
    for suite in SUITES {
        let client = client(suite, frame as u32);
        let message = stream_encrypt(&client, &plaintext, 100_000, None);
        for seed in 1..=16u64 {
            let (out, err) = decrypt(&client, &message, seed);
            assert!(err.is_none(), "suite {suite} seed {seed}: {err:?}");
            assert!(
                out == plaintext,
                "suite {suite} seed {seed}: plaintext differs"
            );
        }
    }

    // One flipped bit anywhere in the body: every byte released is
    // plaintext of a frame before the damaged one.
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, frame as u32);
    let message = stream_encrypt(&client, &plaintext, 100_000, None);
    let header_len = message.len() - (7 * wire + 4 + 4 + 12 + 4 + 1000 + 16);
    let mut positions = Xorshift(7);
    for seed in 1..=24u64 {
        let at = header_len + positions.below(message.len() - header_len);
        let mut tampered = message.clone();
        tampered[at] ^= 1 << positions.below(8);
        let (out, err) = decrypt(&client, &tampered, seed);
        let err = err.unwrap_or_else(|| panic!("seed {seed}: a flip at {at} was accepted"));
        assert!(stream_error(&err).is_some(), "a typed error inside: {err}");
        let damaged_frame = (at - header_len) / wire;
        assert!(
            out.len() <= damaged_frame * frame,
            "seed {seed}: {} bytes released, frame {damaged_frame} was damaged",
            out.len()
        );
        assert!(
            out == plaintext[..out.len()],
            "seed {seed}: released bytes differ"
        );
    }
}

/// Counts the writes it receives.
struct CountingWriter {
    bytes: Vec<u8>,
    writes: usize,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writes += 1;
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn sealed_frames_reach_the_inner_writer_in_batches() {
    // 256 frames of 4 KiB: a writer without its own buffer must not see
    // a write per frame.
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096);
    let plaintext = vec![0x42u8; 256 * 4096];
    let sink = CountingWriter {
        bytes: Vec::new(),
        writes: 0,
    };
    let mut writer = client
        .encrypting_writer_blocking(sink, &context(), None)
        .expect("writer");
    for chunk in plaintext.chunks(1000) {
        writer.write_all(chunk).expect("write");
    }
    let sink = writer.finish().expect("finish");
    // Four frames to a 16 KiB batch, plus the header.
    assert!(sink.writes <= 72, "{} writes for 256 frames", sink.writes);
    let decrypted = client
        .decrypt_blocking(&sink.bytes, &context())
        .expect("decrypt");
    assert_eq!(decrypted.plaintext, plaintext);
}

#[test]
fn verified_only_spills_ciphertext_to_disk_or_refuses() {
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384, 1024);
    let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
    let message = stream_encrypt(&client, &plaintext, 10_000, Some(plaintext.len() as u64));
    let dir = tempfile::tempdir().expect("tempdir");
    let spill = ReleasePolicy::VerifiedOnly {
        max_in_memory: 16 * 1024,
        spill_dir: Some(dir.path().to_owned()),
    };
    assert_eq!(
        stream_decrypt(&client, &message, 4096, spill).expect("decrypt"),
        plaintext
    );
    let no_spill = ReleasePolicy::VerifiedOnly {
        max_in_memory: 16 * 1024,
        spill_dir: None,
    };
    assert!(client
        .decrypting_reader_blocking(&message[..], &context(), no_spill)
        .is_err());
}

#[test]
fn declared_length_is_enforced() {
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 64);
    let mut writer = client
        .encrypting_writer_blocking(Vec::new(), &context(), Some(10))
        .expect("writer");
    assert!(writer.write_all(&[0u8; 11]).is_err(), "more than declared");
    let mut writer = client
        .encrypting_writer_blocking(Vec::new(), &context(), Some(10))
        .expect("writer");
    writer.write_all(&[0u8; 9]).expect("write");
    assert!(writer.finish().is_err(), "less than declared");
}

#[test]
fn known_lengths_use_the_cache_and_unknown_lengths_bypass_it() {
    let keyring = Arc::new(RawAesKeyring::new("stream", "key", &[9u8; 32]).expect("keyring"));
    let cmm = CachingMaterialsManager::builder(Arc::new(DefaultMaterialsManager::new(keyring)))
        .max_age(Duration::from_secs(60))
        .max_bytes(1000)
        .build()
        .expect("cmm");
    let client = Client::builder()
        .materials_manager(Arc::new(cmm.clone()))
        .build()
        .expect("client");
    for _ in 0..3 {
        stream_encrypt(&client, &[1u8; 100], 50, Some(100));
    }
    assert_eq!(cmm.stats().keyring_calls, 1, "{:?}", cmm.stats());
    for _ in 0..3 {
        stream_encrypt(&client, &[1u8; 100], 50, None);
    }
    assert_eq!(cmm.stats().keyring_calls, 4);
    assert_eq!(cmm.stats().bypasses, 3);
}

#[tokio::test]
async fn tokio_streams_round_trip_and_detect_truncation() {
    for suite in SUITES {
        let client = client(suite, 128);
        let plaintext: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let mut message = Vec::new();
        let written = client
            .encrypt_stream(&mut &plaintext[..], &mut message, &context(), None)
            .await
            .expect("encrypt");
        assert_eq!(written, plaintext.len() as u64);
        assert_eq!(
            client
                .decrypt_blocking(&message, &context())
                .expect("decrypt")
                .plaintext,
            plaintext
        );

        let mut out = Vec::new();
        let summary = client
            .decrypt_stream(&mut &message[..], &mut out, &context())
            .await
            .expect("decrypt");
        assert_eq!(out, plaintext);
        assert_eq!(summary.plaintext_length, plaintext.len() as u64);
        assert_eq!(summary.encryption_context.get("file"), Some("report.csv"));

        for cut in [message.len() - 1, message.len() / 2, 10] {
            let mut out = Vec::new();
            assert!(client
                .decrypt_stream(&mut &message[..cut], &mut out, &context())
                .await
                .is_err());
            assert!(out.len() < plaintext.len());
        }
        let mut extra = message.clone();
        extra.push(0);
        let mut out = Vec::new();
        assert!(client
            .decrypt_stream(&mut &extra[..], &mut out, &context())
            .await
            .is_err());
    }
}

/// A tokio source that yields at most `step` bytes per read, and every
/// other read first answers "not ready" (waking itself), as sockets do.
/// With `stall_after`, it never answers again once that many bytes are out.
struct AsyncTrickle<'a> {
    data: &'a [u8],
    step: usize,
    ready: bool,
    stall_after: Option<usize>,
    sent: usize,
}

impl tokio::io::AsyncRead for AsyncTrickle<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.stall_after.is_some_and(|limit| self.sent >= limit) {
            return std::task::Poll::Pending;
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        self.ready = false;
        let limit = self.stall_after.map_or(usize::MAX, |l| l - self.sent);
        let n = buf
            .remaining()
            .min(self.step)
            .min(self.data.len())
            .min(limit);
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.sent += n;
        std::task::Poll::Ready(Ok(()))
    }
}

/// `plaintext` encrypted through the tokio stream API, length undeclared.
async fn tokio_encrypt(client: &Client, plaintext: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    client
        .encrypt_stream(&mut &plaintext[..], &mut message, &context(), None)
        .await
        .expect("encrypt");
    message
}

fn trickle(data: &[u8], step: usize) -> AsyncTrickle<'_> {
    AsyncTrickle {
        data,
        step,
        ready: false,
        stall_after: None,
        sent: 0,
    }
}

#[tokio::test]
async fn tokio_streams_through_piecemeal_sources() {
    // Sources that return a few bytes at a time, or a few frames, with
    // "not ready" in between: both directions round trip, a flipped bit
    // releases only frames before it, and a declared length is enforced.
    let frame = 4096u32;
    let wire = 4 + 12 + frame as usize + 16;
    let plaintext = patterned(frame as usize * 40 + 5);
    for suite in SUITES {
        let client = client(suite, frame);
        for step in [1000, wire + 3, 100_000] {
            let mut message = Vec::new();
            let len = Some(plaintext.len() as u64);
            let read = client
                .encrypt_stream(
                    &mut trickle(&plaintext, step),
                    &mut message,
                    &context(),
                    len,
                )
                .await
                .expect("encrypt");
            assert_eq!(read, plaintext.len() as u64);
            let mut out = Vec::new();
            client
                .decrypt_stream(&mut trickle(&message, step), &mut out, &context())
                .await
                .expect("decrypt");
            assert!(out == plaintext, "suite {suite} step {step}");
        }
        let mut message = Vec::new();
        let short = Some(plaintext.len() as u64 - 1);
        assert!(client
            .encrypt_stream(
                &mut trickle(&plaintext, 5000),
                &mut message,
                &context(),
                short
            )
            .await
            .is_err());
    }

    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, frame);
    let message = tokio_encrypt(&client, &plaintext).await;
    let header_len = message.len() - (40 * wire + 4 + 4 + 12 + 4 + 5 + 16);
    for damaged in [0, 17, 39] {
        let mut tampered = message.clone();
        tampered[header_len + damaged * wire + 100] ^= 1;
        let mut out = Vec::new();
        let result = client
            .decrypt_stream(&mut trickle(&tampered, 7000), &mut out, &context())
            .await;
        assert!(result.is_err(), "frame {damaged} tampered: accepted");
        assert!(out.len() <= damaged * frame as usize);
        assert!(out == plaintext[..out.len()]);
    }
}

#[tokio::test]
async fn tokio_decrypt_writes_verified_frames_before_waiting_for_more() {
    // The source delivers ten whole frames and then stalls: those frames
    // reach the writer although the message has not ended.
    let frame = 4096u32;
    let wire = 4 + 12 + frame as usize + 16;
    let plaintext = patterned(frame as usize * 40);
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, frame);
    let message = tokio_encrypt(&client, &plaintext).await;
    let header_len = message.len() - (39 * wire + 4 + 4 + 12 + 4 + frame as usize + 16);
    let mut source = trickle(&message, 3000);
    source.stall_after = Some(header_len + 10 * wire);
    let mut out = Vec::new();
    let stalled = tokio::time::timeout(
        Duration::from_millis(300),
        client.decrypt_stream(&mut source, &mut out, &context()),
    )
    .await;
    assert!(
        stalled.is_err(),
        "the source stalls, so decryption cannot end"
    );
    assert_eq!(out.len(), 10 * frame as usize);
    assert!(out == plaintext[..out.len()]);
}

/// The body's frames as (is_final, content length), walked from the header
/// of an unsigned (0x0478) message.
fn frame_layout(message: &[u8], frame: usize) -> Vec<(bool, usize)> {
    let (_, mut pos) = envelope::format::Header::parse_prefix(message, None).expect("header");
    let mut frames = Vec::new();
    while pos < message.len() {
        if message[pos..pos + 4] == [0xFF; 4] {
            let len = u32::from_be_bytes(message[pos + 20..pos + 24].try_into().expect("4 bytes"));
            frames.push((true, len as usize));
            pos += 4 + 4 + 12 + 4 + len as usize + 16;
        } else {
            frames.push((false, frame));
            pos += 4 + 12 + frame + 16;
        }
    }
    assert_eq!(pos, message.len(), "frames end where the message does");
    frames
}

/// A plaintext that ends on a frame boundary is written as the official
/// Python, Java and C SDKs write it: every full frame regular, then an
/// empty final frame (aws-encryption-cli's Python 3.x line rejects a final
/// frame of a full frame length). Checked on every write path: in memory,
/// the std writer (declared and unknown length, any write size) and tokio.
#[tokio::test]
async fn a_plaintext_ending_on_a_frame_boundary_ends_with_an_empty_final_frame() {
    const FRAME: usize = 64;
    let client = client(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, FRAME as u32);
    for len in [
        0usize,
        1,
        FRAME - 1,
        FRAME,
        FRAME + 1,
        2 * FRAME,
        5 * FRAME,
        5 * FRAME + 3,
    ] {
        let plaintext = patterned(len);
        let mut expected = vec![(false, FRAME); len / FRAME];
        expected.push((true, len % FRAME));
        let mut messages = vec![(
            "in memory".to_owned(),
            client
                .encrypt_blocking(&plaintext, &context())
                .expect("encrypt"),
        )];
        for write_size in [1usize, FRAME, FRAME + 1, 4096] {
            for declared in [None, Some(len as u64)] {
                messages.push((
                    format!("writer, writes of {write_size}, declared {declared:?}"),
                    stream_encrypt(&client, &plaintext, write_size, declared),
                ));
            }
        }
        messages.push(("tokio".to_owned(), tokio_encrypt(&client, &plaintext).await));
        for step in [1usize, FRAME, 1000] {
            let mut message = Vec::new();
            client
                .encrypt_stream(
                    &mut trickle(&plaintext, step),
                    &mut message,
                    &context(),
                    None,
                )
                .await
                .expect("encrypt_stream");
            messages.push((format!("tokio, reads of {step}"), message));
        }
        for (path, message) in messages {
            assert_eq!(
                frame_layout(&message, FRAME),
                expected,
                "{path}, {len} bytes"
            );
            let decrypted = client
                .decrypt_blocking(&message, &context())
                .expect("decrypt");
            assert_eq!(decrypted.plaintext, plaintext, "{path}, {len} bytes");
        }
    }
}
