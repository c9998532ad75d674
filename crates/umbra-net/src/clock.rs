//! The one clock of the client: every time it reads (path rotation, guard expiry, list
//! refresh) and every wait it makes (retry backoff) goes through a [`Clock`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A boxed future, as the traits of this crate return them (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of the current time and of waits.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Waits `duration` (a retry backoff).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The system clock and tokio's timer (the only place this crate reads real time).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock moved by hand, for tests: [`Clock::sleep`] advances it and returns at once, so
/// nothing a test checks depends on the machine's speed.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
    slept_ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
            slept_ms: AtomicU64::new(0),
        }
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Total time spent in [`Clock::sleep`] so far (to check backoff).
    pub fn slept_ms(&self) -> u64 {
        self.slept_ms.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
        self.slept_ms.fetch_add(ms, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}
