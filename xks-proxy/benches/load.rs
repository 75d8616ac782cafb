//! Load tool for the proxy: throughput against the raw HSM, and latency at
//! a fixed rate.
//!
//! It starts the real `xks-proxy` binary on a private SoftHSM token (the
//! integration-test harness), then, in one run:
//!
//! 1. **raw HSM against proxy encrypt, interleaved**: slices of
//!    `--slice-ms` (default 500) alternate between AES-256-GCM encrypts of
//!    32 bytes through cryptoki directly (one session, the same token key
//!    `k1`, as fast as possible) and encrypts through the proxy over TLS
//!    keep-alive (HTTP/1.1, SigV4-signed with the crate's `Signer`) from
//!    `--clients` connections, one operation at a time each. The ratio is
//!    the median of the per-round ratios: measured one after the other, the
//!    two drifted apart with the machine's speed;
//! 2. **proxy decrypt and metadata**, each for `--seconds`;
//! 3. prints requests/s and p50/p99/p99.9 for each, and CPU per request;
//! 4. with `--rate R`, also a fixed-rate run: R requests/s (an
//!    encrypt/decrypt/metadata mix) for `--fixed-seconds`, scheduled open
//!    loop, latency measured from each request's scheduled time (so a
//!    stall is not hidden by the client slowing down), reporting p99.
//!
//! ```sh
//! cargo bench -p xks-proxy --bench load -- --seconds 10 --clients 32
//! cargo bench -p xks-proxy --bench load -- --seconds 10 --rate 1800 --fixed-seconds 60
//! ```
//!
//! Options: `--seconds N` (each throughput phase; the interleaved one runs
//! N seconds of each side), `--slice-ms N`, `--clients N`, `--pool N`
//! (proxy session pool, default 8 as in production),
//! `--key-info-cache-ms N`, `--audit` (write the audit log to a file, as
//! production would), `--rate R`,
//! `--fixed-seconds N`, `--fixed-only` (skip the throughput phases).
//! Needs SoftHSM2 (see the crate README).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../benches/support/steal.rs"]
mod steal;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use hyper::StatusCode;
use serde_json::{json, Value};
use xks_proxy::sigv4::{Signer, XKS_SERVICE};

struct Args {
    seconds: u64,
    clients: usize,
    pool: usize,
    key_info_cache_ms: u64,
    audit: bool,
    rate: Option<f64>,
    fixed_seconds: u64,
    fixed_only: bool,
    slice_ms: u64,
}

fn parse_args() -> Args {
    let mut a = Args {
        seconds: 10,
        clients: 32,
        // The production default (`pool_size`): 2, 4, 8, 16 and 32 measured
        // against 4 interleaved gave 0.85, 1, 1.01-1.13, 1.07 and 1.10.
        pool: 8,
        key_info_cache_ms: 0,
        audit: false,
        rate: None,
        fixed_seconds: 60,
        fixed_only: false,
        slice_ms: 500,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let num = |i: usize| -> String { argv.get(i + 1).cloned().unwrap_or_default() };
    while i < argv.len() {
        let bad = |what: &str| -> ! {
            eprintln!("bad value for {what}");
            std::process::exit(2)
        };
        match argv[i].as_str() {
            "--seconds" => a.seconds = num(i).parse().unwrap_or_else(|_| bad("--seconds")),
            "--clients" => a.clients = num(i).parse().unwrap_or_else(|_| bad("--clients")),
            "--pool" => a.pool = num(i).parse().unwrap_or_else(|_| bad("--pool")),
            "--key-info-cache-ms" => {
                a.key_info_cache_ms = num(i)
                    .parse()
                    .unwrap_or_else(|_| bad("--key-info-cache-ms"))
            }
            "--rate" => a.rate = Some(num(i).parse().unwrap_or_else(|_| bad("--rate"))),
            "--slice-ms" => {
                a.slice_ms = num(i)
                    .parse::<u64>()
                    .unwrap_or_else(|_| bad("--slice-ms"))
                    .max(1)
            }
            "--fixed-seconds" => {
                a.fixed_seconds = num(i).parse().unwrap_or_else(|_| bad("--fixed-seconds"))
            }
            "--audit" => {
                a.audit = true;
                i += 1;
                continue;
            }
            "--fixed-only" => {
                a.fixed_only = true;
                i += 1;
                continue;
            }
            // `cargo bench` passes `--bench`; ignore flags we do not know.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Latency summary over microsecond samples.
struct Summary {
    count: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

fn summarize(mut us: Vec<u32>, elapsed: Duration) -> Summary {
    us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if us.is_empty() {
            return 0.0;
        }
        let i = ((us.len() as f64 * p).ceil() as usize).clamp(1, us.len()) - 1;
        f64::from(us[i]) / 1000.0
    };
    Summary {
        count: us.len(),
        rate: us.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50),
        p99: pct(0.99),
        p999: pct(0.999),
        max: us.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
    }
}

fn print(label: &str, s: &Summary, errors: u64) {
    println!(
        "{label:<44} {:>9.0} ops/s  n={:<8} p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>6.2} ms  max {:>7.2} ms  errors {errors}",
        s.rate, s.count, s.p50, s.p99, s.p999, s.max
    );
}

/// CPU time (user + system) of a process so far, from /proc.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime is
    // field 14 and stime 15 of the whole line, in clock ticks (100/s).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// The share of CPU time the hypervisor took since `before`: on a shared
/// VM it stalls every thread at once, and a tail latency measured while it
/// was high says more about the host than about the proxy.
fn steal_since(before: (u64, u64)) -> String {
    format!("{:.1} %", steal::steal_percent_since(before))
}

fn elapsed_us(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// One logged-in cryptoki session on the proxy's token, for raw encrypts
/// of 32 bytes with the same key `k1`.
struct RawHsm {
    // Keeps the module initialized for `session`.
    ctx: Pkcs11,
    session: cryptoki::session::Session,
    key: cryptoki::object::ObjectHandle,
    n: u64,
}

impl RawHsm {
    fn open(proxy: &Proxy) -> RawHsm {
        // Only this process's module instance reads it; the proxy child got
        // its own copy at spawn.
        std::env::set_var("SOFTHSM2_CONF", &proxy.hsm.conf);
        let ctx = Pkcs11::new(MODULE).expect("load SoftHSM");
        ctx.initialize(CInitializeArgs::OsThreads)
            .expect("C_Initialize");
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "tokA")
            .expect("token tokA");
        let session = ctx.open_rw_session(slot).unwrap();
        session
            .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
            .unwrap();
        let key = session
            .find_objects(&[Attribute::Label(b"k1".to_vec())])
            .unwrap()
            .into_iter()
            .next()
            .expect("key k1");
        RawHsm {
            ctx,
            session,
            key,
            n: 0,
        }
    }

    /// Another session on the same module and key, for a second thread.
    fn another(&self) -> RawHsm {
        let slot = self
            .session
            .get_session_info()
            .expect("session info")
            .slot_id();
        let session = self.ctx.open_rw_session(slot).expect("open session");
        RawHsm {
            ctx: self.ctx.clone(),
            session,
            key: self.key,
            // Disjoint IVs from the first session's.
            n: self.n + (1 << 40),
        }
    }

    /// Encrypts back to back for `dur`; appends latencies to `samples`.
    fn run(&mut self, dur: Duration, samples: &mut Vec<u32>) {
        let plaintext = [7u8; 32];
        let aad = [0u8; 19];
        let end = Instant::now() + dur;
        while Instant::now() < end {
            self.n += 1;
            let mut iv = [0u8; 12];
            iv[..8].copy_from_slice(&self.n.to_be_bytes());
            let t = Instant::now();
            let params = GcmParams::new(&mut iv, &aad, 128u64.into()).unwrap();
            let ct = self
                .session
                .encrypt(&Mechanism::AesGcm(params), self.key, &plaintext)
                .expect("raw encrypt");
            samples.push(elapsed_us(t.elapsed()));
            assert_eq!(ct.len(), 48);
        }
    }
}

/// Raw encrypts on `first` and a second session, each on its own thread,
/// for `dur`: (operations/s, CPU microseconds per operation).
fn raw_two_threads(mut first: RawHsm, dur: Duration) -> (f64, f64) {
    let mut second = first.another();
    let cpu = cpu_time("self");
    let t = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        [&mut first, &mut second]
            .map(|raw| {
                scope.spawn(move || {
                    let mut samples = Vec::new();
                    raw.run(dur, &mut samples);
                    samples.len()
                })
            })
            .into_iter()
            .map(|h| h.join().expect("raw thread"))
            .sum()
    });
    let elapsed = t.elapsed().as_secs_f64();
    let cpu = cpu_time("self").saturating_sub(cpu).as_secs_f64();
    (total as f64 / elapsed, cpu * 1e6 / total.max(1) as f64)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Encrypt,
    Decrypt,
    Metadata,
}

struct Bodies {
    encrypt: Vec<u8>,
    decrypt: Vec<u8>,
    metadata: Vec<u8>,
}

impl Bodies {
    fn new(enc: &Value) -> Bodies {
        let encrypt = json!({
            "requestMetadata": meta("Encrypt"),
            "plaintext": b64(&[7u8; 32]),
            "encryptionAlgorithm": "AES_GCM",
        });
        let decrypt = json!({
            "requestMetadata": meta("Decrypt"),
            "ciphertext": enc["ciphertext"],
            "initializationVector": enc["initializationVector"],
            "authenticationTag": enc["authenticationTag"],
            "ciphertextMetadata": enc["ciphertextMetadata"],
            "encryptionAlgorithm": "AES_GCM",
        });
        let metadata = json!({"requestMetadata": meta("DescribeKey")});
        Bodies {
            encrypt: encrypt.to_string().into_bytes(),
            decrypt: decrypt.to_string().into_bytes(),
            metadata: metadata.to_string().into_bytes(),
        }
    }

    fn get(&self, op: Op) -> (&'static str, &[u8]) {
        match op {
            Op::Encrypt => ("/ks/a/kms/xks/v1/keys/k1/encrypt", &self.encrypt),
            Op::Decrypt => ("/ks/a/kms/xks/v1/keys/k1/decrypt", &self.decrypt),
            Op::Metadata => ("/ks/a/kms/xks/v1/keys/k1/metadata", &self.metadata),
        }
    }
}

/// One keep-alive HTTP/1.1 connection over TLS, written and read by hand.
///
/// The load tool shares the machine's two cores with the proxy, so every
/// microsecond it spends per request is taken from the proxy under test.
/// Through hyper's client (a connection task beside the caller, a request
/// and a response built per call, the response parsed as JSON) it spent
/// 37-45 us of CPU per request; this writes each request with one TLS write
/// from a reused buffer and reads just the status line and
/// `content-length`, for 17-30 us. Requests are still signed one by one
/// with SigV4, as KMS signs them.
struct Conn {
    tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    out: Vec<u8>,
    input: Vec<u8>,
}

impl Conn {
    async fn open(client: &Client) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect(client.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
        let tls = client
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        Ok(Conn {
            tls,
            out: Vec::with_capacity(2048),
            input: Vec::with_capacity(4096),
        })
    }

    /// Sends one signed POST and returns the response status and body.
    async fn post(
        &mut self,
        signer: &Signer,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, &[u8]), String> {
        use std::io::Write as _;
        use tokio::io::AsyncWriteExt;
        let signed = signer.sign("POST", path, "localhost", &[], body, SystemTime::now());
        self.out.clear();
        write!(
            self.out,
            "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-amz-date: {}\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n",
            signed.x_amz_date,
            signed.authorization,
            body.len()
        )
        .expect("write to a Vec");
        self.out.extend_from_slice(body);
        self.tls
            .write_all(&self.out)
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.tls.flush().await.map_err(|e| format!("flush: {e}"))?;
        self.input.clear();
        loop {
            if let Some((status, start, len)) = parse_response_head(&self.input)? {
                while self.input.len() < start + len {
                    self.read_more().await?;
                }
                return Ok((status, &self.input[start..start + len]));
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<(), String> {
        use tokio::io::AsyncReadExt;
        if self
            .tls
            .read_buf(&mut self.input)
            .await
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("connection closed by the proxy".into());
        }
        Ok(())
    }
}

/// `(status, body start, body length)` once the head of a response is in
/// `input`. Only one response is ever in flight, so nothing follows it.
fn parse_response_head(input: &[u8]) -> Result<Option<(u16, usize, usize)>, String> {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&input[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let len = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .ok_or_else(|| format!("no content-length in {head:?}"))?;
    Ok(Some((status, end + 4, len)))
}

async fn one(conn: &mut Conn, signer: &Signer, bodies: &Bodies, op: Op) -> Result<(), String> {
    let (path, body) = bodies.get(op);
    match conn.post(signer, path, body).await? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{status} {}", String::from_utf8_lossy(body))),
    }
}

/// Closed loop: each of `conns` sends `op` back to back for `secs`
/// seconds. The connections come back for the next slice, so that an
/// interleaved run does not pay TLS handshakes per slice.
async fn closed_loop(
    client: &Client,
    bodies: &Arc<Bodies>,
    op: Op,
    conns: Vec<Conn>,
    dur: Duration,
) -> (Vec<u32>, u64, Vec<Conn>) {
    let errors = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + dur;
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (client, bodies, errors) = (client.clone(), Arc::clone(bodies), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let signer = signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE);
            let mut samples = Vec::with_capacity(100_000);
            while Instant::now() < end {
                let t = Instant::now();
                match one(&mut conn, &signer, &bodies, op).await {
                    Ok(()) => samples.push(elapsed_us(t.elapsed())),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e}");
                        }
                        conn = Conn::open(&client).await.expect("reconnect");
                    }
                }
            }
            (samples, conn)
        }));
    }
    let mut all = Vec::new();
    let mut conns = Vec::new();
    for t in tasks {
        let (samples, conn) = t.await.expect("client task");
        all.extend(samples);
        conns.push(conn);
    }
    (all, errors.load(Ordering::Relaxed), conns)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Open loop at `rate` requests/s over `conns` connections for `secs`.
///
/// Latency counts from each request's scheduled time, so that a late
/// response also charges the requests queued behind it. The second summary
/// counts from the moment the request was sent: the difference is the
/// load tool's own lateness, mostly tokio's timer, which wakes at the next
/// whole millisecond.
async fn fixed_rate(
    client: &Client,
    bodies: &Arc<Bodies>,
    rate: f64,
    secs: u64,
) -> (Summary, Summary, u64) {
    // Enough connections that one slow response does not hold up the
    // schedule of the others: each carries at most ~100 requests/s.
    let conns = ((rate / 100.0).ceil() as usize).max(4);
    let per_conn = Duration::from_secs_f64(conns as f64 / rate);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now() + Duration::from_millis(200);
    let end = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, bodies, errors) = (client.clone(), Arc::clone(bodies), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let signer = signer(AKID_A1, SECRET_A1, REGION, XKS_SERVICE);
            let mut conn = Conn::open(&client).await.expect("connect");
            let (mut samples, mut from_send) = (Vec::new(), Vec::new());
            // Stagger the connections evenly over one period.
            let mut due = started + per_conn.mul_f64(c as f64 / conns as f64);
            let mut k = c;
            while due < end {
                tokio::time::sleep_until(due.into()).await;
                let op = [Op::Encrypt, Op::Decrypt, Op::Metadata][k % 3];
                k += 1;
                let sent = Instant::now();
                match one(&mut conn, &signer, &bodies, op).await {
                    Ok(()) => {
                        samples.push(elapsed_us(due.elapsed()));
                        from_send.push(elapsed_us(sent.elapsed()));
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {e}");
                        }
                        conn = Conn::open(&client).await.expect("reconnect");
                    }
                }
                due += per_conn;
            }
            (samples, from_send)
        }));
    }
    let (mut all, mut all_from_send) = (Vec::new(), Vec::new());
    for t in tasks {
        let (samples, from_send) = t.await.expect("client task");
        all.extend(samples);
        all_from_send.extend(from_send);
    }
    let span = end.saturating_duration_since(started);
    (
        summarize(all, span),
        summarize(all_from_send, span),
        errors.load(Ordering::Relaxed),
    )
}

fn main() {
    let args = parse_args();
    let tables = if args.audit {
        "[audit]\noutput = \"audit.log\"\n".to_string()
    } else {
        String::new()
    };
    let proxy = Proxy::start(Options {
        pool_size: args.pool,
        // Production deadlines: an answer later than this is an error.
        session_wait_ms: 50,
        operation_timeout_ms: 150,
        hsm_extra: format!("key_info_cache_ms = {}", args.key_info_cache_ms),
        tables_extra: tables,
        log_level: "warn",
        ..Default::default()
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let client = proxy.client();
    let enc = rt.block_on(async {
        let body = json!({
            "requestMetadata": meta("Encrypt"),
            "plaintext": b64(&[7u8; 32]),
            "encryptionAlgorithm": "AES_GCM",
        });
        let r = client.post("/ks/a/kms/xks/v1/keys/k1/encrypt", &body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json);
        r.json
    });
    let bodies = Arc::new(Bodies::new(&enc));
    println!(
        "xks-proxy load: pool {}, key_info_cache_ms {}, audit {}, {} clients, {} s per phase",
        args.pool, args.key_info_cache_ms, args.audit, args.clients, args.seconds
    );
    if !args.fixed_only {
        // Raw and proxy encrypt alternate in slices of `--slice-ms`, each
        // timed on its own, so that both see the same drift in machine
        // speed; the ratio is the median of the per-round ratios.
        let mut raw_hsm = RawHsm::open(&proxy);
        let mut conns = rt.block_on(async {
            let mut conns = Vec::new();
            for _ in 0..args.clients {
                conns.push(Conn::open(&client).await.expect("connect"));
            }
            conns
        });
        let slice = Duration::from_millis(args.slice_ms);
        let rounds = ((args.seconds * 1000) / args.slice_ms).max(1);
        let (mut raw_samples, mut enc_samples) = (Vec::new(), Vec::new());
        let (mut raw_time, mut enc_time, mut enc_errors) = (Duration::ZERO, Duration::ZERO, 0);
        let mut ratios = Vec::new();
        let pid = proxy.pid().to_string();
        let (proxy_cpu, own_cpu) = (cpu_time(&pid), cpu_time("self"));
        let mut own_cpu_raw = Duration::ZERO;
        let ticks = steal::cpu_ticks();
        for _ in 0..rounds {
            let (before, cpu_before) = (raw_samples.len(), cpu_time("self"));
            let t = Instant::now();
            raw_hsm.run(slice, &mut raw_samples);
            let raw_elapsed = t.elapsed();
            own_cpu_raw += cpu_time("self").saturating_sub(cpu_before);
            raw_time += raw_elapsed;
            let raw_rate = (raw_samples.len() - before) as f64 / raw_elapsed.as_secs_f64();
            let t = Instant::now();
            let (samples, errors, back) =
                rt.block_on(closed_loop(&client, &bodies, Op::Encrypt, conns, slice));
            let enc_elapsed = t.elapsed();
            conns = back;
            enc_time += enc_elapsed;
            enc_errors += errors;
            ratios.push(samples.len() as f64 / enc_elapsed.as_secs_f64() / raw_rate);
            enc_samples.extend(samples);
        }
        let raw = summarize(raw_samples, raw_time);
        print("raw HSM encrypt (cryptoki, 1 session, 32 B)", &raw, 0);
        let enc = summarize(enc_samples, enc_time);
        print("proxy Encrypt over TLS keep-alive (32 B)", &enc, enc_errors);
        let per = |d: Duration| d.as_secs_f64() * 1e6 / enc.count.max(1) as f64;
        println!(
            "    CPU per request: proxy {:.0} us, load client {:.0} us",
            per(cpu_time(&pid).saturating_sub(proxy_cpu)),
            per(cpu_time("self")
                .saturating_sub(own_cpu)
                .saturating_sub(own_cpu_raw)),
        );
        // After the CPU figures above, which this would inflate.
        let stolen = steal_since(ticks);
        let (two_rate, two_cpu) = raw_two_threads(raw_hsm, Duration::from_secs(2));
        println!(
            "ratio proxy encrypt / raw HSM encrypt: {:.2} (median of {} interleaved rounds of {} ms; {:.0} / {:.0} overall); host steal {stolen}",
            median(ratios),
            rounds,
            args.slice_ms,
            enc.rate,
            raw.rate
        );
        println!(
            "raw HSM encrypt, 2 sessions on 2 threads: {two_rate:.0} ops/s, CPU per op {two_cpu:.0} us \
             (1 session: {:.0} us)",
            own_cpu_raw.as_secs_f64() * 1e6 / raw.count.max(1) as f64
        );
        for op in [Op::Decrypt, Op::Metadata] {
            let (proxy_cpu, own_cpu) = (cpu_time(&pid), cpu_time("self"));
            let t = Instant::now();
            let (samples, errors, back) = rt.block_on(closed_loop(
                &client,
                &bodies,
                op,
                conns,
                Duration::from_secs(args.seconds),
            ));
            conns = back;
            let s = summarize(samples, t.elapsed());
            print(
                &format!("proxy {op:?} over TLS keep-alive (32 B)"),
                &s,
                errors,
            );
            let per = |d: Duration| d.as_secs_f64() * 1e6 / s.count.max(1) as f64;
            println!(
                "    CPU per request: proxy {:.0} us, load client {:.0} us",
                per(cpu_time(&pid).saturating_sub(proxy_cpu)),
                per(cpu_time("self").saturating_sub(own_cpu)),
            );
        }
    }
    if let Some(rate) = args.rate {
        let ticks = steal::cpu_ticks();
        let (s, from_send, errors) =
            rt.block_on(fixed_rate(&client, &bodies, rate, args.fixed_seconds));
        print(
            &format!("fixed {rate:.0}/s for {} s (mix)", args.fixed_seconds),
            &s,
            errors,
        );
        print("  the same, timed from the send", &from_send, errors);
        println!(
            "fixed-rate p99 {:.2} ms, achieved {:.0}/s, {errors} errors; host steal {}",
            s.p99,
            s.rate,
            steal_since(ticks)
        );
    }
}
