//! Prometheus text metrics for the operator port.
//!
//! - `umbra_node_requests_total{method,status}`: RPC requests by method and HTTP status.
//! - `umbra_node_http_rejected_total{reason}`: requests refused before the RPC layer
//!   (rate limit, body too large, …).
//! - `umbra_node_store_latency_seconds`: histogram of the durable-write latency of `store`.
//! - `umbra_node_messages_stored`, `umbra_node_bytes_stored`, `umbra_node_tombstones`,
//!   `umbra_node_db_bytes`: gauges read from the store at scrape time.
//! - `umbra_node_expired_swept_total`: messages removed by the expiry sweep.
//! - Replication metrics are appended by the [`crate::replicate::Replicator`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the store latency histogram buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    store_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    store_count: AtomicU64,
    store_sum_micros: AtomicU64,
    swept: AtomicU64,
}

impl Metrics {
    /// New, all zero.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one RPC request. `method` must come from a fixed set (never client text).
    pub fn request(&self, method: &'static str, status: u16) {
        let mut m = match self.requests.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *m.entry((method, status)).or_insert(0) += 1;
    }

    /// Counts a request refused by the HTTP layer.
    pub fn rejected(&self, reason: &'static str) {
        let mut m = match self.rejected.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *m.entry(reason).or_insert(0) += 1;
    }

    /// Records the latency of one durable store write.
    pub fn store_latency(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.store_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.store_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.store_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts messages removed by the expiry sweep.
    pub fn swept(&self, n: u64) {
        self.swept.fetch_add(n, Ordering::Relaxed);
    }

    /// How many requests were counted for `(method, status)`.
    pub fn request_count(&self, method: &str, status: u16) -> u64 {
        let m = match self.requests.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        m.iter()
            .filter(|((me, st), _)| *me == method && *st == status)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Renders the counters (not the store gauges) in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP umbra_node_requests_total RPC requests by method and HTTP status.\n");
        out.push_str("# TYPE umbra_node_requests_total counter\n");
        {
            let m = match self.requests.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for ((method, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "umbra_node_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP umbra_node_http_rejected_total Requests refused before the RPC layer.\n",
        );
        out.push_str("# TYPE umbra_node_http_rejected_total counter\n");
        {
            let m = match self.rejected.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "umbra_node_http_rejected_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP umbra_node_store_latency_seconds Latency of durable store writes.\n");
        out.push_str("# TYPE umbra_node_store_latency_seconds histogram\n");
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "umbra_node_store_latency_seconds_bucket{{le=\"{le}\"}} {}",
                self.store_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.store_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "umbra_node_store_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "umbra_node_store_latency_seconds_sum {}",
            self.store_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "umbra_node_store_latency_seconds_count {count}");
        out.push_str("# HELP umbra_node_expired_swept_total Expired messages removed.\n");
        out.push_str("# TYPE umbra_node_expired_swept_total counter\n");
        let _ = writeln!(
            out,
            "umbra_node_expired_swept_total {}",
            self.swept.load(Ordering::Relaxed)
        );
    }
}

/// Renders the store gauges.
pub fn render_store_stats(stats: &umbra_store::Stats, out: &mut String) {
    let gauges = [
        (
            "umbra_node_messages_stored",
            "Messages held (including expired, not yet swept).",
            stats.messages,
        ),
        (
            "umbra_node_bytes_stored",
            "Message data bytes held.",
            stats.bytes,
        ),
        (
            "umbra_node_tombstones",
            "Deletion records kept for reconciliation.",
            stats.tombstones,
        ),
        (
            "umbra_node_db_bytes",
            "Size of the message store's files (RocksDB SST files and memtables).",
            stats.db_bytes,
        ),
    ];
    for (name, help, v) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::new();
        m.request("store", 200);
        m.request("store", 200);
        m.request("retrieve", 401);
        m.rejected("rate_limited");
        m.store_latency(Duration::from_millis(3));
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("umbra_node_requests_total{method=\"store\",status=\"200\"} 2"));
        assert!(s.contains("umbra_node_requests_total{method=\"retrieve\",status=\"401\"} 1"));
        assert!(s.contains("umbra_node_http_rejected_total{reason=\"rate_limited\"} 1"));
        assert!(s.contains("umbra_node_store_latency_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(s.contains("umbra_node_store_latency_seconds_bucket{le=\"0.005\"} 1"));
        assert!(s.contains("umbra_node_store_latency_seconds_count 1"));
        assert_eq!(m.request_count("store", 200), 2);
        let mut g = String::new();
        render_store_stats(
            &umbra_store::Stats {
                messages: 4,
                bytes: 10,
                tombstones: 1,
                db_bytes: 4096,
            },
            &mut g,
        );
        assert!(g.contains("umbra_node_messages_stored 4"));
        assert!(g.contains("umbra_node_bytes_stored 10"));
    }
}
