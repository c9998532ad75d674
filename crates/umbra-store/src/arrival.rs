//! Waiting for new messages: the base of the node's long-poll retrieve.
//!
//! The writer thread calls [`Hub::notify`] for every account that got a new message, after the
//! batch holding it committed (client stores and messages applied from peers alike). A reader
//! takes an [`Arrival`] *before* it looks at the store and awaits it only if it found nothing:
//! a message committed in between has already moved the arrival's shard on, so it resolves
//! at once and nothing is missed.
//!
//! Accounts are spread over [`SHARDS`] shards; an arrival resolves when anything arrives for
//! any account of its shard, so a waiter must look at the store again and may find nothing
//! (a spurious wake-up, cheap and rare). Like [`crate::Reply`], an arrival is a plain
//! [`Future`] that works with any runtime. A dropped arrival leaves nothing behind.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::types::AccountId;

/// How many shards the accounts are spread over.
pub const SHARDS: usize = 256;

#[derive(Default)]
struct Shard {
    /// Bumped by every arrival in the shard.
    seq: u64,
    /// Who waits: (arrival id, its waker).
    waiting: Vec<(u64, Waker)>,
}

/// The writer's side: one per store.
pub(crate) struct Hub {
    shards: Box<[Mutex<Shard>]>,
    next_id: AtomicU64,
}

fn shard_of(owner: &AccountId) -> usize {
    // Byte 0 is the network prefix; the key bytes after it are uniformly distributed.
    let b = owner.as_bytes();
    usize::from(b[b.len() - 1]) % SHARDS
}

impl Hub {
    pub(crate) fn new() -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            next_id: AtomicU64::new(0),
        }
    }

    fn shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        // A poisoned lock only means a waker panicked; the shard is still consistent.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wakes everyone waiting on `owner`'s shard.
    pub(crate) fn notify(&self, owner: &AccountId) {
        let wakers = {
            let mut s = self.shard(shard_of(owner));
            s.seq = s.seq.wrapping_add(1);
            std::mem::take(&mut s.waiting)
        };
        for (_, w) in wakers {
            w.wake();
        }
    }
}

/// Resolves when a message for the account it was taken for (or another account of its shard)
/// has been committed after it was taken. See the module docs.
#[must_use = "an arrival does nothing unless awaited"]
pub struct Arrival {
    hub: Arc<Hub>,
    shard: usize,
    seen: u64,
    id: u64,
    registered: bool,
}

impl std::fmt::Debug for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arrival").finish_non_exhaustive()
    }
}

impl Arrival {
    pub(crate) fn new(hub: &Arc<Hub>, owner: &AccountId) -> Arrival {
        let shard = shard_of(owner);
        let seen = hub.shard(shard).seq;
        Arrival {
            hub: hub.clone(),
            shard,
            seen,
            id: hub.next_id.fetch_add(1, Ordering::Relaxed),
            registered: false,
        }
    }
}

impl Future for Arrival {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let hub = this.hub.clone();
        let mut s = hub.shard(this.shard);
        if s.seq != this.seen {
            this.registered = false;
            return Poll::Ready(());
        }
        match s.waiting.iter_mut().find(|(id, _)| *id == this.id) {
            Some((_, w)) => w.clone_from(cx.waker()),
            None => s.waiting.push((this.id, cx.waker().clone())),
        }
        this.registered = true;
        Poll::Pending
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if self.registered {
            let id = self.id;
            self.hub.shard(self.shard).waiting.retain(|(i, _)| *i != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn owner(last: u8) -> AccountId {
        let mut b = [5u8; 33];
        b[32] = last;
        AccountId::new(b)
    }

    fn poll(a: &mut Arrival, flag: &Arc<Flag>) -> Poll<()> {
        let waker = Waker::from(flag.clone());
        Pin::new(a).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn resolves_on_a_later_arrival_and_not_before() {
        let hub = Arc::new(Hub::new());
        let flag = Arc::new(Flag(false.into()));
        let mut a = Arrival::new(&hub, &owner(1));
        assert!(poll(&mut a, &flag).is_pending());
        hub.notify(&owner(2)); // another shard
        assert!(!flag.0.load(Ordering::SeqCst));
        assert!(poll(&mut a, &flag).is_pending());
        hub.notify(&owner(1));
        assert!(flag.0.load(Ordering::SeqCst), "the waiter was woken");
        assert!(poll(&mut a, &flag).is_ready());
    }

    #[test]
    fn an_arrival_between_taking_and_awaiting_is_not_missed() {
        let hub = Arc::new(Hub::new());
        let flag = Arc::new(Flag(false.into()));
        let mut a = Arrival::new(&hub, &owner(7));
        hub.notify(&owner(7));
        assert!(poll(&mut a, &flag).is_ready());
    }

    #[test]
    fn a_dropped_arrival_leaves_no_waker_behind() {
        let hub = Arc::new(Hub::new());
        let flag = Arc::new(Flag(false.into()));
        for _ in 0..100 {
            let mut a = Arrival::new(&hub, &owner(9));
            assert!(poll(&mut a, &flag).is_pending());
            assert!(
                poll(&mut a, &flag).is_pending(),
                "polled twice, registered once"
            );
        }
        assert!(hub.shard(shard_of(&owner(9))).waiting.is_empty());
    }
}
