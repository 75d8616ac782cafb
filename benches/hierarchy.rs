//! The hierarchical keyring on branch-key cache hits, 1 KiB, suite 0x0478:
//! ours on one and two threads, against its floor and the official Python
//! hierarchical keyring, interleaved in one run.
//!
//! The floor is the message floor of the bench report (HKDF, header tag,
//! body AES-GCM) plus what wrapping under a branch key cannot avoid: one
//! HMAC-SHA256 block (the wrapping key) and one AES-256-GCM key setup and
//! seal (or open) of the 32-byte data key. Python runs against a moto
//! server (DynamoDB + KMS) this bench starts on 127.0.0.1; on a cache hit
//! neither side calls it.
//!
//! `cargo bench --bench hierarchy` (options: `--rounds N`, default 100;
//! `--slice-ms N`, default 20).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hmac;
use envelope::{AlgorithmSuite, Client};
use envelope_hierarchy::{BranchKeyCache, BranchKeyVersion, HierarchicalKeyring, StaticKeyStore};
use support::python::PythonPeer;
use support::{context, Contender, Floor, Interleaved};

const SIZE: usize = 1024;
const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

/// The message floor plus the branch-key wrap of one data key.
struct HierarchyFloor {
    floor: Floor,
    branch_key: hmac::Key,
    label: Vec<u8>,
    aad: Vec<u8>,
    sealed: Vec<u8>,
}

impl HierarchyFloor {
    fn new() -> Self {
        let mut label = Vec::new();
        label.extend_from_slice(&1u32.to_be_bytes());
        label.extend_from_slice(b"aws-kms-hierarchy\0");
        label.extend_from_slice(&[0x5A; 16]);
        label.extend_from_slice(&256u32.to_be_bytes());
        let aad = vec![0x33; 17 + 36 + 16 + 40];
        let mut floor = Self {
            floor: Floor::new(SUITE, SIZE),
            branch_key: hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]),
            label,
            aad,
            sealed: Vec::new(),
        };
        floor.sealed = floor.wrap();
        floor
    }

    fn key(&self) -> LessSafeKey {
        let wrapping = hmac::sign(&self.branch_key, &self.label);
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, wrapping.as_ref()).expect("key"))
    }

    fn wrap(&self) -> Vec<u8> {
        let mut data_key = vec![0x42u8; 32];
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&self.aad),
                &mut data_key,
            )
            .expect("seal");
        data_key
    }

    fn encrypt(&mut self) {
        self.floor.encrypt();
        std::hint::black_box(self.wrap());
    }

    fn decrypt(&mut self) {
        let mut sealed = self.sealed.clone();
        self.key()
            .open_in_place(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&self.aad),
                &mut sealed,
            )
            .expect("open");
        self.floor.decrypt();
    }
}

/// The Python hierarchical keyring and the moto server it reads from
/// (the peer first, so that it stops before its server).
struct Python {
    peer: PythonPeer,
    moto: Child,
}

impl Python {
    fn start() -> Option<Python> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let moto_server = root.join(".venv/bin/moto_server");
        if !moto_server.exists() {
            eprintln!(
                "note: .venv missing (run scripts/install-test-deps.sh); Python column skipped"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut moto = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match PythonPeer::start(
            "benches/python_hierarchy.py",
            &[format!("http://127.0.0.1:{port}"), SIZE.to_string()],
        ) {
            Some(peer) => Some(Python { peer, moto }),
            None => {
                let _ = moto.kill();
                let _ = moto.wait();
                None
            }
        }
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.moto.kill();
        let _ = self.moto.wait();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut slice_ms) = (100usize, 20u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().and_then(|s| s.parse().ok()).unwrap_or(rounds),
            "--slice-ms" => slice_ms = args.next().and_then(|s| s.parse().ok()).unwrap_or(slice_ms),
            _ => {}
        }
    }
    let slice = Duration::from_millis(slice_ms);
    let store = Arc::new(StaticKeyStore::new(
        "bench-branch-key",
        BranchKeyVersion::parse("e9ce18a3-edb5-4272-9f86-1cacb7997ff6").expect("uuid"),
        [9; 32],
    ));
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id("bench-branch-key")
        .cache(BranchKeyCache::new(100, Duration::from_secs(3600)))
        .build()
        .expect("keyring");
    let client = Client::builder()
        .keyring(Arc::new(keyring))
        .suite(SUITE)
        .build()
        .expect("client");
    let plaintext = vec![0x61u8; SIZE];
    let ctx = context();
    let message = client.encrypt_blocking(&plaintext, &ctx).expect("encrypt");
    let mut python = Python::start();
    println!(
        "hierarchy bench: branch-key cache hits, 1 KiB, 0x0478, messages/s, {rounds} interleaved rounds of {slice_ms} ms per contender; rates are medians, ratios medians of per-round ratios\n"
    );
    println!("| op      | ours 1T    | floor 1T   | ours/floor | ours 2T    | 2T/1T | python     | ours/python |");
    println!("|---------|------------|------------|------------|------------|-------|------------|-------------|");
    for op in ["encrypt", "decrypt"] {
        let ours = || {
            let (client, plaintext, message, ctx) = (
                client.clone(),
                plaintext.clone(),
                message.clone(),
                ctx.clone(),
            );
            move || {
                if op == "encrypt" {
                    std::hint::black_box(
                        client.encrypt_blocking(&plaintext, &ctx).expect("encrypt"),
                    );
                } else {
                    std::hint::black_box(client.decrypt_blocking(&message, &ctx).expect("decrypt"));
                }
            }
        };
        let mut contenders = [
            Contender::new(1, ours),
            Contender::new(1, || {
                let mut floor = HierarchyFloor::new();
                move || {
                    if op == "encrypt" {
                        floor.encrypt()
                    } else {
                        floor.decrypt()
                    }
                }
            }),
            Contender::new(2, ours),
        ];
        let mut python_slice = |slice| python.as_mut()?.peer.rate(op, slice);
        let mut external: Vec<&mut dyn FnMut(Duration) -> Option<f64>> = vec![&mut python_slice];
        let m = Interleaved::measure(&mut contenders, &mut external, rounds, slice);
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        println!(
            "| {op:<7} | {:>10} | {:>10} | {:>9.0}% | {:>10} | {:>4.2}x | {:>10} | {:>10}x |",
            cell(m.median(0)),
            cell(m.median(1)),
            100.0 * m.ratio(0, 1).unwrap_or(0.0),
            cell(m.median(2)),
            m.ratio(2, 0).unwrap_or(0.0),
            cell((m.rates.len() > 3).then(|| m.median(3)).flatten()),
            (m.rates.len() > 3)
                .then(|| m.ratio(0, 3))
                .flatten()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}")),
        );
    }
    if let Some(p) = &python {
        println!("\npython: {}", p.peer.versions);
    }
}
