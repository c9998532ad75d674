//! A one-shot reply channel usable from both blocking and async code.
//!
//! The writer thread completes a [`Reply`] after the batch holding the write has been committed.
//! A caller either blocks on [`Reply::wait`] (threads, `spawn_blocking`, tests) or `.await`s it
//! (it implements [`Future`], independent of any runtime). Written here rather than taken from
//! tokio so that this crate does not depend on an async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::error::{Result, StoreError};

struct Slot<T> {
    value: Option<Result<T>>,
    waker: Option<Waker>,
    /// Set when the sender was dropped without sending.
    closed: bool,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        // A poisoned lock only means another thread panicked while holding it; the slot is still
        // consistent (every write is a single assignment).
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pending result of a write submitted to the store.
///
/// Resolves once the write is durable (its batch committed) or has failed. Use
/// [`Reply::wait`] to block or `.await` it. Dropping it does not cancel the write.
#[must_use = "a write is acknowledged only when its Reply resolves"]
pub struct Reply<T> {
    shared: Arc<Shared<T>>,
    op: &'static str,
}

/// The writer's end of a [`Reply`].
pub(crate) struct ReplySender<T> {
    shared: Arc<Shared<T>>,
    sent: bool,
}

/// Creates a connected sender/reply pair.
pub(crate) fn channel<T>(op: &'static str) -> (ReplySender<T>, Reply<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            value: None,
            waker: None,
            closed: false,
        }),
        ready: Condvar::new(),
    });
    (
        ReplySender {
            shared: shared.clone(),
            sent: false,
        },
        Reply { shared, op },
    )
}

impl<T> ReplySender<T> {
    /// Completes the reply.
    pub(crate) fn send(mut self, value: Result<T>) {
        self.sent = true;
        let waker = {
            let mut slot = self.shared.lock();
            slot.value = Some(value);
            slot.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Drop for ReplySender<T> {
    fn drop(&mut self) {
        if self.sent {
            return;
        }
        let waker = {
            let mut slot = self.shared.lock();
            slot.closed = true;
            slot.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Reply<T> {
    /// A reply that is already resolved (used when a write is refused before being queued).
    pub(crate) fn ready(op: &'static str, value: Result<T>) -> Self {
        let (tx, rx) = channel(op);
        tx.send(value);
        rx
    }

    /// Blocks the calling thread until the write is committed (or failed).
    pub fn wait(self) -> Result<T> {
        let mut slot = self.shared.lock();
        loop {
            if let Some(v) = slot.value.take() {
                return v;
            }
            if slot.closed {
                return Err(StoreError::WriterGone { op: self.op });
            }
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Returns the result if it is already available, without blocking.
    pub fn try_take(&mut self) -> Option<Result<T>> {
        let mut slot = self.shared.lock();
        if let Some(v) = slot.value.take() {
            return Some(v);
        }
        if slot.closed {
            return Some(Err(StoreError::WriterGone { op: self.op }));
        }
        None
    }
}

impl<T> Future for Reply<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut slot = this.shared.lock();
        if let Some(v) = slot.value.take() {
            return Poll::Ready(v);
        }
        if slot.closed {
            return Poll::Ready(Err(StoreError::WriterGone { op: this.op }));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").field("op", &self.op).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn wait_gets_value_sent_from_another_thread() {
        let (tx, rx) = channel::<u32>("test");
        let t = std::thread::spawn(move || tx.send(Ok(7)));
        assert_eq!(rx.wait().unwrap(), 7);
        t.join().unwrap();
    }

    #[test]
    fn dropped_sender_resolves_to_writer_gone() {
        let (tx, rx) = channel::<u32>("test");
        drop(tx);
        assert!(matches!(
            rx.wait(),
            Err(StoreError::WriterGone { op: "test" })
        ));
    }

    #[test]
    fn future_is_woken() {
        let (tx, mut rx) = channel::<u32>("test");
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        tx.send(Ok(3));
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        match Pin::new(&mut rx).poll(&mut cx) {
            Poll::Ready(Ok(3)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
