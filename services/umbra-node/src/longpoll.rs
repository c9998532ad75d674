//! Long-poll retrieve: an Umbra extension of `retrieve` that Session nodes simply ignore.
//!
//! A client that adds `"umbra_wait_ms": N` to the params of an authenticated `retrieve` sent
//! as a top-level request (directly or as the destination of an onion request, not inside
//! `batch`/`sequence`/`ifelse`, and not forwarded by a peer) gets its answer as soon as there is
//! something after its `last_hash`, or after at most `N` ms (capped at [`MAX_WAIT_MS`]) with
//! an empty page, exactly like an ordinary retrieve. Nothing else changes: authentication,
//! paging, the reply's shape. The reply's `t` is the time of the answer, not of the request.
//!
//! The wait ends at once when the node shuts down, and at most [`MAX_WAITERS`] requests wait
//! at a time (beyond that a retrieve answers at once, as if no wait had been asked for), so
//! waiting requests can neither hold a shutdown up nor exhaust the node. The cap of 20 s
//! stays well inside the onion relays' hop timeouts (24 s and more, see
//! [`crate::onion::hop_timeout`]).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit, watch};
use tokio::time::Instant;
use umbra_store::Arrival;

/// The longest wait a client can ask for, ms.
pub const MAX_WAIT_MS: u64 = 20_000;
/// How many retrieves may wait at the same time.
pub const MAX_WAITERS: usize = 4_096;

/// The node's long-poll state: the waiter limit and the shutdown signal.
#[derive(Debug)]
pub struct LongPoll {
    permits: Semaphore,
    stopping: watch::Sender<bool>,
    woken: AtomicU64,
}

impl Default for LongPoll {
    fn default() -> Self {
        LongPoll {
            permits: Semaphore::new(MAX_WAITERS),
            stopping: watch::Sender::new(false),
            woken: AtomicU64::new(0),
        }
    }
}

impl LongPoll {
    /// Ends every wait now and refuses new ones (the node is shutting down).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// How many retrieves are waiting now.
    pub fn waiting(&self) -> usize {
        MAX_WAITERS - self.permits.available_permits()
    }

    /// How many waits ended because something arrived (rather than at their deadline).
    pub fn woken(&self) -> u64 {
        self.woken.load(Ordering::Relaxed)
    }

    /// A waiting slot, unless [`MAX_WAITERS`] are taken or the node is stopping.
    pub(crate) fn enter(&self) -> Option<SemaphorePermit<'_>> {
        if *self.stopping.borrow() {
            return None;
        }
        self.permits.try_acquire().ok()
    }

    /// Waits for `arrival` until `deadline`. `true`: something arrived (look again);
    /// `false`: the deadline passed or the node is stopping (answer now).
    pub(crate) async fn wait(&self, arrival: Arrival, deadline: Instant) -> bool {
        let mut stopping = self.stopping.subscribe();
        tokio::select! {
            () = arrival => {
                self.woken.fetch_add(1, Ordering::Relaxed);
                true
            }
            () = tokio::time::sleep_until(deadline) => false,
            _ = stopping.wait_for(|s| *s) => false,
        }
    }
}
