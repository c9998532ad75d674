//! A few counters in Prometheus text (`GET /metrics`).
//!
//! - `umbra_attachments_uploads_total`: files stored (simple and chunked; re-uploads included).
//! - `umbra_attachments_chunks_total`: chunks accepted.
//! - `umbra_attachments_downloads_total`: whole files, ranges and chunks served.
//! - `umbra_attachments_bytes_received_total`, `umbra_attachments_bytes_served_total`.
//! - `umbra_attachments_rejected_total{reason}`: refused requests by reason (a fixed set).
//! - `umbra_attachments_expired_total`: files removed by the expiry sweep.
//! - `umbra_attachments_files`, `umbra_attachments_bytes_used`: gauges read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reasons a request is refused, as the `reason` label shows them.
pub const REASONS: [&str; 6] = [
    "too_large",
    "quota",
    "not_found",
    "bad_request",
    "incomplete",
    "internal",
];

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    uploads: AtomicU64,
    chunks: AtomicU64,
    downloads: AtomicU64,
    bytes_received: AtomicU64,
    bytes_served: AtomicU64,
    expired: AtomicU64,
    rejected: [AtomicU64; REASONS.len()],
}

impl Metrics {
    /// One file stored.
    pub fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One chunk accepted.
    pub fn chunk(&self, bytes: u64) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One download started (`bytes` about to be sent).
    pub fn download(&self, bytes: u64) {
        self.downloads.fetch_add(1, Ordering::Relaxed);
        self.bytes_served.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Files removed by a sweep.
    pub fn expired(&self, n: u64) {
        self.expired.fetch_add(n, Ordering::Relaxed);
    }

    /// A refused request; `reason` is one of [`REASONS`] (others are counted as `internal`).
    pub fn rejected(&self, reason: &'static str) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REASONS.len() - 1);
        if let Some(c) = self.rejected.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text, with the gauges given.
    pub fn render(&self, files: u64, bytes_used: u64) -> String {
        let mut out = String::new();
        let counters = [
            ("uploads_total", "Files stored.", &self.uploads),
            ("chunks_total", "Chunks accepted.", &self.chunks),
            ("downloads_total", "Downloads served.", &self.downloads),
            (
                "bytes_received_total",
                "Body bytes stored.",
                &self.bytes_received,
            ),
            (
                "bytes_served_total",
                "Body bytes served.",
                &self.bytes_served,
            ),
            (
                "expired_total",
                "Files removed by the expiry sweep.",
                &self.expired,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP umbra_attachments_{name} {help}");
            let _ = writeln!(out, "# TYPE umbra_attachments_{name} counter");
            let _ = writeln!(
                out,
                "umbra_attachments_{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP umbra_attachments_rejected_total Refused requests by reason."
        );
        let _ = writeln!(out, "# TYPE umbra_attachments_rejected_total counter");
        for (reason, v) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "umbra_attachments_rejected_total{{reason=\"{reason}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in [
            ("files", "Files stored (expired ones until swept).", files),
            (
                "bytes_used",
                "Bytes stored or reserved by open uploads.",
                bytes_used,
            ),
        ] {
            let _ = writeln!(out, "# HELP umbra_attachments_{name} {help}");
            let _ = writeln!(out, "# TYPE umbra_attachments_{name} gauge");
            let _ = writeln!(out, "umbra_attachments_{name} {v}");
        }
        out
    }
}
