#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `Store::arrival`: a waiter is woken by a committed message for its account, whether a
//! client stored it or a peer's copy was applied, and not by other accounts' writes; a
//! message committed before the wait began is not missed.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};

use common::*;
use umbra_store::*;

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn pending(a: &mut Arrival, flag: &Arc<Flag>) -> bool {
    let waker = Waker::from(flag.clone());
    Pin::new(a)
        .poll(&mut Context::from_waker(&waker))
        .is_pending()
}

/// An owner in a different arrival shard than `owner(n)`.
fn other_shard(of: &AccountId) -> AccountId {
    (0..=255u8)
        .map(owner)
        .find(|o| {
            let (a, b) = (o.as_bytes(), of.as_bytes());
            usize::from(a[32]) % ARRIVAL_SHARDS != usize::from(b[32]) % ARRIVAL_SHARDS
        })
        .unwrap()
}

#[test]
fn a_stored_message_wakes_its_accounts_waiter_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let me = owner(1);
    let them = other_shard(&me);
    let flag = Arc::new(Flag(AtomicBool::new(false)));

    let mut a = store.arrival(&me);
    assert!(pending(&mut a, &flag));
    store
        .store(msg(&them, 0, b"not for me", NOW, NOW + 60_000), NOW)
        .wait()
        .unwrap();
    assert!(pending(&mut a, &flag), "another account's message");
    assert!(!flag.0.load(Ordering::SeqCst));

    store
        .store(msg(&me, 0, b"for me", NOW, NOW + 60_000), NOW)
        .wait()
        .unwrap();
    assert!(flag.0.load(Ordering::SeqCst), "woken by the commit");
    assert!(!pending(&mut a, &flag));

    // Storing the same message again adds nothing: no wake-up.
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let mut a = store.arrival(&me);
    assert!(pending(&mut a, &flag));
    store
        .store(msg(&me, 0, b"for me", NOW, NOW + 60_000), NOW)
        .wait()
        .unwrap();
    assert!(pending(&mut a, &flag), "a duplicate is not an arrival");
}

#[test]
fn a_message_applied_from_a_peer_wakes_and_an_earlier_commit_is_not_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let me = owner(2);
    let flag = Arc::new(Flag(AtomicBool::new(false)));

    // Taken before the commit, polled after it: ready at once.
    let mut a = store.arrival(&me);
    let m = msg(&me, 0, b"replicated", NOW, NOW + 60_000);
    store
        .apply_remote_message(
            ReplicaMessage {
                owner: m.owner,
                namespace: m.namespace,
                hash: m.hash,
                data: m.data.clone(),
                timestamp_ms: m.timestamp_ms,
                expiry_ms: m.expiry_ms,
                expiry_version: m.timestamp_ms,
            },
            NOW,
        )
        .wait()
        .unwrap();
    assert!(!pending(&mut a, &flag));
}
