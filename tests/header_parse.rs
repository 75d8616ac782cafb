//! A header read a byte at a time costs at most twice the parsing of the
//! same header read at once, on the std and tokio streaming readers (the
//! parser's work is counted, not timed): the readers parse again only once
//! their buffer has doubled. Before, each byte re-parsed the whole buffer.

use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use envelope::stream::__header_bytes_parsed;
use envelope::{Client, EncryptionContext, Keyring, MultiKeyring, RawAesKeyring, ReleasePolicy};

/// Hands out `step` bytes per read.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl tokio::io::AsyncRead for Dribble<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.step.min(buf.remaining()).min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_header_read_a_byte_at_a_time_is_parsed_in_linear_work() {
    // 1,001 EDKs: a header of about 90 KB.
    let generator: Arc<dyn Keyring> =
        Arc::new(RawAesKeyring::new("ns", "key-0", &[1; 32]).expect("keyring"));
    let children: Vec<Arc<dyn Keyring>> = (1..=1000)
        .map(|n| {
            Arc::new(RawAesKeyring::new("ns", format!("key-{n}"), &[1; 32]).expect("keyring"))
                as Arc<dyn Keyring>
        })
        .collect();
    let writer = Client::builder()
        .keyring(Arc::new(
            MultiKeyring::new(Some(generator.clone()), children).expect("multi"),
        ))
        .max_encrypted_data_keys(2000)
        .build()
        .expect("client");
    let context = EncryptionContext::default();
    let message = writer
        .encrypt_blocking(b"many keys", &context)
        .expect("encrypt");
    let (_, header_len) = envelope::format::Header::parse_prefix(&message, None).expect("header");
    assert!(header_len > 80_000, "{header_len}");
    let reader = Client::builder()
        .keyring(generator)
        .max_encrypted_data_keys(2000)
        .build()
        .expect("client");

    let std_work = |step: usize| {
        let before = __header_bytes_parsed();
        let mut plaintext = Vec::new();
        reader
            .decrypting_reader_blocking(
                Dribble {
                    data: &message,
                    step,
                },
                &context,
                ReleasePolicy::PerFrame,
            )
            .expect("header")
            .read_to_end(&mut plaintext)
            .expect("decrypt");
        assert_eq!(plaintext, b"many keys");
        __header_bytes_parsed() - before
    };
    let (whole, dribbled) = (std_work(message.len()), std_work(1));
    assert!(whole >= header_len as u64, "{whole}");
    assert!(
        dribbled <= 2 * whole + 64,
        "std: {dribbled} bytes parsed a byte at a time, {whole} at once"
    );

    let mut tokio_work = Vec::new();
    for step in [message.len(), 1] {
        let before = __header_bytes_parsed();
        let mut out = Vec::new();
        reader
            .decrypt_stream(
                &mut Dribble {
                    data: &message,
                    step,
                },
                &mut out,
                &context,
            )
            .await
            .expect("decrypt");
        assert_eq!(out, b"many keys");
        tokio_work.push(__header_bytes_parsed() - before);
    }
    assert!(
        tokio_work[1] <= 2 * tokio_work[0] + 64,
        "tokio: {} bytes parsed a byte at a time, {} at once",
        tokio_work[1],
        tokio_work[0]
    );
    println!("header of {header_len} B: std {whole} / {dribbled}, tokio {} / {} bytes parsed (at once / a byte at a time)", tokio_work[0], tokio_work[1]);
}
