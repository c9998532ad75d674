#![doc = include_str!("../README.md")]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

// Documented always (`doc`), compiled only for tests (`test-support`).
#[cfg(any(feature = "test-support", doc))]
mod manual;
#[cfg(any(feature = "test-support", doc))]
pub use manual::ManualClock;

/// A boxed future, as [`Clock::sleep`] and the object-safe async traits built on it return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of the current time and of waits.
pub trait Clock: Send + Sync + 'static {
    /// Wall time: milliseconds since the Unix epoch (UTC).
    fn now_ms(&self) -> u64;

    /// [`Clock::now_ms`] as the signed milliseconds that SQLite columns and the storage RPC's
    /// JSON fields hold. A `u64` of milliseconds passes `i64::MAX` only in the year 292 million,
    /// so the saturation here is never reached by a real clock.
    fn now_ms_i64(&self) -> i64 {
        i64::try_from(self.now_ms()).unwrap_or(i64::MAX)
    }

    /// Monotonic time, for timeouts, deadlines and latencies: never goes back, unrelated to the
    /// wall time.
    fn instant(&self) -> Instant;

    /// How long ago `earlier` (an [`Clock::instant`] of this clock) was: what
    /// `Instant::elapsed` would say, but read from this clock, so a test's hand-moved clock
    /// moves it too (`clippy.toml` bans `elapsed`).
    fn since(&self, earlier: Instant) -> Duration {
        self.instant().saturating_duration_since(earlier)
    }

    /// Waits `duration` (a retry backoff, a poll interval).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The system clock and tokio's timer: the only code in the workspace that reads real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

// The one home of the real clock: clippy's `disallowed-methods` (workspace `clippy.toml`)
// bans these reads everywhere else so that every other crate goes through `Clock`.
#[allow(clippy::disallowed_methods)]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // Before 1970 (a badly set clock) reads as 0, as every clock of the workspace did.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Milliseconds in `duration`, saturating at `u64::MAX` (585 million years).
#[cfg(any(feature = "test-support", doc))]
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
