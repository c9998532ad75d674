//! Latency distributions as the client benchmarks report them (nearest-rank quantiles).

use std::time::Duration;

use serde_json::{Value, json};

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile (0.0..=1.0) of sorted durations, in ms (nearest rank, as the storage
/// benchmark computes it).
pub(crate) fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let last = sorted.len() - 1;
    let i = ((last as f64) * q).round() as usize;
    ms(sorted[i.min(last)])
}

pub(crate) fn dist_json(sorted: &[Duration]) -> Value {
    json!({
        "count": sorted.len(),
        "p50_ms": quantile_ms(sorted, 0.50),
        "p90_ms": quantile_ms(sorted, 0.90),
        "p99_ms": quantile_ms(sorted, 0.99),
        "max_ms": quantile_ms(sorted, 1.0),
    })
}

pub(crate) fn dist_line(sorted: &[Duration]) -> String {
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        quantile_ms(sorted, 0.50),
        quantile_ms(sorted, 0.90),
        quantile_ms(sorted, 0.99),
        quantile_ms(sorted, 1.0)
    )
}
