//! Prometheus metrics, kept in atomics and rendered in the text exposition
//! format by hand.
//!
//! The set of series is fixed (operations × outcomes, a few per key store),
//! so plain arrays of atomic counters cover it: recording costs a handful
//! of relaxed atomic adds on the request path, with no locks, no maps and
//! no allocation, and no metrics crate is needed.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::api::{ErrorName, Operation};

/// Histogram bucket upper bounds, in microseconds (0.25 ms to 1 s). KMS's
/// budget is 250 ms; the fine low buckets show whether p99 stays in
/// single-digit milliseconds.
pub const BUCKETS_US: [u64; 13] = [
    250, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 25_000, 50_000, 100_000, 150_000, 250_000,
    1_000_000,
];

/// Operation labels; the last is for requests that did not route.
const OPS: [&str; 5] = ["health", "metadata", "encrypt", "decrypt", "unknown"];
const OUTCOMES: usize = ErrorName::ALL.len() + 1;

/// The metrics index of an operation (`None`: did not route).
fn op_index(op: Option<Operation>) -> usize {
    match op {
        Some(Operation::Health) => 0,
        Some(Operation::Metadata) => 1,
        Some(Operation::Encrypt) => 2,
        Some(Operation::Decrypt) => 3,
        None => 4,
    }
}

fn outcome_index(err: Option<ErrorName>) -> usize {
    match err {
        None => 0,
        Some(e) => 1 + ErrorName::ALL.iter().position(|x| *x == e).unwrap_or(0),
    }
}

fn outcome_label(i: usize) -> &'static str {
    match i.checked_sub(1) {
        None => "OK",
        Some(j) => ErrorName::ALL.get(j).map_or("unknown", |e| e.as_str()),
    }
}

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, n) in BUCKETS_US.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let le = *b as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// A per-key-store series: name, type, help, and how to read it.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&PoolSnapshot) -> f64,
);

/// Per-key-store counters.
#[derive(Debug, Default)]
pub struct KeyStoreMetrics {
    /// Requests refused by the quota.
    pub throttled: AtomicU64,
    /// Requests refused by the authorization policy.
    pub denied: AtomicU64,
}

/// Process-wide request metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: [[AtomicU64; OUTCOMES]; OPS.len()],
    latency: [Histogram; OPS.len()],
    hsm_latency: [Histogram; OPS.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: Default::default(),
            hsm_latency: Default::default(),
        }
    }
}

/// A point-in-time view of one key store's HSM session pool and health,
/// gathered by the caller at render time.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    /// Key store name.
    pub key_store: String,
    /// Configured pool size.
    pub size: usize,
    /// Sessions leased right now.
    pub in_use: usize,
    /// Requests that gave up waiting for a session.
    pub wait_timeouts: u64,
    /// Last health status: 0 ACTIVE, 1 DEGRADED, 2 UNAVAILABLE, -1 unknown.
    pub health: i8,
    /// Throttled requests.
    pub throttled: u64,
    /// Denied requests.
    pub denied: u64,
}

impl Metrics {
    /// Records a finished request.
    pub fn record(
        &self,
        op: Option<Operation>,
        err: Option<ErrorName>,
        latency: Duration,
        hsm: Duration,
    ) {
        let o = op_index(op);
        self.requests[o][outcome_index(err)].fetch_add(1, Ordering::Relaxed);
        self.latency[o].observe(latency);
        if !hsm.is_zero() {
            self.hsm_latency[o].observe(hsm);
        }
    }

    /// The text exposition.
    pub fn render(&self, pools: &[PoolSnapshot], reinits: u64, hsm_available: bool) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP xks_requests_total Requests by XKS operation and outcome (OK or the XKS error name).\n");
        out.push_str("# TYPE xks_requests_total counter\n");
        for (o, row) in self.requests.iter().enumerate() {
            for (i, n) in row.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "xks_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                        OPS[o],
                        outcome_label(i)
                    );
                }
            }
        }
        out.push_str(
            "# HELP xks_request_duration_seconds Time from request arrival to response.\n",
        );
        out.push_str("# TYPE xks_request_duration_seconds histogram\n");
        for (o, h) in self.latency.iter().enumerate() {
            h.render(
                &mut out,
                "xks_request_duration_seconds",
                &format!("operation=\"{}\"", OPS[o]),
            );
        }
        out.push_str("# HELP xks_hsm_duration_seconds Time spent in the HSM per request, including the wait for a session.\n");
        out.push_str("# TYPE xks_hsm_duration_seconds histogram\n");
        for (o, h) in self.hsm_latency.iter().enumerate() {
            h.render(
                &mut out,
                "xks_hsm_duration_seconds",
                &format!("operation=\"{}\"", OPS[o]),
            );
        }
        let gauges: [Series; 6] = [
            (
                "xks_hsm_sessions_max",
                "gauge",
                "Configured HSM session pool size.",
                |p| p.size as f64,
            ),
            (
                "xks_hsm_sessions_in_use",
                "gauge",
                "HSM sessions leased right now.",
                |p| p.in_use as f64,
            ),
            (
                "xks_hsm_session_wait_timeouts_total",
                "counter",
                "Requests that found no free HSM session in time.",
                |p| p.wait_timeouts as f64,
            ),
            (
                "xks_health_status",
                "gauge",
                "Last deep health check: 0 ACTIVE, 1 DEGRADED, 2 UNAVAILABLE, -1 not run yet.",
                |p| f64::from(p.health),
            ),
            (
                "xks_throttled_requests_total",
                "counter",
                "Requests refused with ThrottlingException by the quota.",
                |p| p.throttled as f64,
            ),
            (
                "xks_authz_denied_requests_total",
                "counter",
                "Requests refused with AccessDeniedException by the policy.",
                |p| p.denied as f64,
            ),
        ];
        for (name, kind, help, get) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for p in pools {
                let _ = writeln!(
                    out,
                    "{name}{{key_store=\"{}\"}} {}",
                    escape(&p.key_store),
                    get(p)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP xks_hsm_reinitializations_total Successful PKCS#11 module re-initializations after HSM errors.\n\
             # TYPE xks_hsm_reinitializations_total counter\nxks_hsm_reinitializations_total {reinits}"
        );
        let _ = writeln!(
            out,
            "# HELP xks_hsm_module_available Whether the PKCS#11 module is initialized.\n\
             # TYPE xks_hsm_module_available gauge\nxks_hsm_module_available {}",
            u8::from(hsm_available)
        );
        out
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record(
            Some(Operation::Encrypt),
            None,
            Duration::from_micros(800),
            Duration::from_micros(300),
        );
        m.record(
            Some(Operation::Encrypt),
            None,
            Duration::from_millis(20),
            Duration::ZERO,
        );
        m.record(
            Some(Operation::Encrypt),
            Some(ErrorName::ThrottlingException),
            Duration::from_micros(10),
            Duration::ZERO,
        );
        m.record(
            None,
            Some(ErrorName::InvalidUriPathException),
            Duration::from_micros(5),
            Duration::ZERO,
        );
        let pools = [PoolSnapshot {
            key_store: "a\"b".into(),
            size: 8,
            in_use: 3,
            wait_timeouts: 1,
            health: 0,
            throttled: 1,
            denied: 0,
        }];
        let text = m.render(&pools, 2, true);
        assert!(text.contains("xks_requests_total{operation=\"encrypt\",outcome=\"OK\"} 2\n"));
        assert!(text.contains(
            "xks_requests_total{operation=\"encrypt\",outcome=\"ThrottlingException\"} 1\n"
        ));
        assert!(text.contains(
            "xks_requests_total{operation=\"unknown\",outcome=\"InvalidUriPathException\"} 1\n"
        ));
        assert!(text.contains(
            "xks_request_duration_seconds_bucket{operation=\"encrypt\",le=\"0.001\"} 2\n"
        ));
        assert!(text.contains(
            "xks_request_duration_seconds_bucket{operation=\"encrypt\",le=\"0.025\"} 3\n"
        ));
        assert!(text.contains("xks_request_duration_seconds_count{operation=\"encrypt\"} 3\n"));
        assert!(text.contains("xks_hsm_duration_seconds_count{operation=\"encrypt\"} 1\n"));
        assert!(text.contains("xks_hsm_sessions_in_use{key_store=\"a\\\"b\"} 3\n"));
        assert!(text.contains("xks_hsm_reinitializations_total 2\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
        }
    }
}
