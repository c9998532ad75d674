//! The hand-moved clock of tests (feature `test-support`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{BoxFuture, Clock, millis};

/// A clock moved by hand, for tests: [`Clock::sleep`] advances it and returns at once, so
/// nothing a test checks depends on the machine's speed.
///
/// Its monotonic side starts at the real [`Instant`] of its creation and moves only with
/// [`ManualClock::advance`] and [`Clock::sleep`]; [`ManualClock::set`] moves only the wall time.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
    elapsed_ms: AtomicU64,
    slept_ms: AtomicU64,
    base: Instant,
}

impl ManualClock {
    /// A clock showing `now_ms` (milliseconds since the Unix epoch).
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
            elapsed_ms: AtomicU64::new(0),
            slept_ms: AtomicU64::new(0),
            // An `Instant` can only be made from a real reading; the clock's own home may.
            #[allow(clippy::disallowed_methods)]
            base: Instant::now(),
        }
    }

    /// Sets the wall time (monotonic time does not jump, as with a system clock reset).
    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves both the wall time and the monotonic time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
        self.elapsed_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Total time spent in [`Clock::sleep`] so far (to check backoff).
    pub fn slept_ms(&self) -> u64 {
        self.slept_ms.load(Ordering::SeqCst)
    }
}

impl Default for ManualClock {
    /// A clock showing the Unix epoch.
    fn default() -> Self {
        Self::new(0)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn instant(&self) -> Instant {
        let elapsed = Duration::from_millis(self.elapsed_ms.load(Ordering::SeqCst));
        // Past `Instant`'s range only after centuries of advancing: stay at the last instant.
        self.base.checked_add(elapsed).unwrap_or(self.base)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = millis(duration);
        self.advance(ms);
        self.slept_ms.fetch_add(ms, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_moves_wall_time_only() {
        let c = ManualClock::new(1_000);
        let i0 = c.instant();
        c.set(500);
        assert_eq!(c.now_ms(), 500);
        assert_eq!(c.instant(), i0);
        c.advance(250);
        assert_eq!(c.now_ms(), 750);
        assert_eq!(c.instant() - i0, Duration::from_millis(250));
    }

    #[tokio::test]
    async fn sleep_advances_and_counts() {
        let c = ManualClock::new(0);
        c.sleep(Duration::from_millis(1_500)).await;
        c.sleep(Duration::from_millis(500)).await;
        assert_eq!(c.now_ms(), 2_000);
        assert_eq!(c.slept_ms(), 2_000);
    }

    #[test]
    fn i64_view_matches() {
        let c = ManualClock::new(1_700_000_000_123);
        assert_eq!(c.now_ms_i64(), 1_700_000_000_123);
        c.set(u64::MAX);
        assert_eq!(c.now_ms_i64(), i64::MAX);
    }
}
