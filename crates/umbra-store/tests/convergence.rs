//! Anti-entropy: tombstones, digests, and convergence of replicas that apply the same
//! operations in different orders.

#![allow(
    clippy::cloned_ref_to_slice_refs,
    clippy::unwrap_used,
    clippy::manual_is_multiple_of
)]

mod common;

use common::*;
use proptest::prelude::*;
use umbra_store::*;

fn replica(m: &NewMessage) -> ReplicaMessage {
    ReplicaMessage {
        owner: m.owner,
        namespace: m.namespace,
        hash: m.hash,
        data: m.data.clone(),
        timestamp_ms: m.timestamp_ms,
        expiry_ms: m.expiry_ms,
        expiry_version: m.timestamp_ms,
    }
}

fn digests(s: &Store, now: i64) -> Vec<BucketDigest> {
    s.bucket_digests(None, now).unwrap()
}

/// One full reconciliation pass from `from` into `to`, as the node would run it, using only the
/// public API.
fn pull(from: &Store, to: &Store, now: i64) {
    let theirs = digests(from, now);
    let mine = digests(to, now);
    for d in theirs {
        if mine
            .iter()
            .any(|m| m.owner == d.owner && m.namespace == d.namespace && m.digest == d.digest)
        {
            continue;
        }
        let remote = from.bucket_entries(&d.owner, d.namespace, now).unwrap();
        let local = to.bucket_entries(&d.owner, d.namespace, now).unwrap();
        let mut missing = Vec::new();
        for m in &remote.messages {
            match local.messages.iter().find(|l| l.hash == m.hash) {
                None => missing.push(m.hash),
                Some(l)
                    if (l.timestamp_ms, l.expiry_version, l.expiry_ms)
                        != (m.timestamp_ms, m.expiry_version, m.expiry_ms) =>
                {
                    to.apply_remote_expiry(
                        ExpiryUpdate {
                            owner: d.owner,
                            hash: m.hash,
                            timestamp_ms: m.timestamp_ms,
                            expiry_ms: m.expiry_ms,
                            expiry_version: m.expiry_version,
                        },
                        now,
                    )
                    .wait()
                    .unwrap();
                }
                Some(_) => {}
            }
        }
        for r in from.get_replicas(&missing, now).unwrap() {
            to.apply_remote_message(r, now).wait().unwrap();
        }
        for t in remote.tombstones {
            to.apply_remote_tombstone(t, now).wait().unwrap();
        }
    }
}

#[test]
fn delete_is_not_resurrected_by_reconciliation() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(&da), open(&db));
    let o = owner(1);
    let m = msg(&o, 0, b"secret", NOW, NOW + DAY);
    a.store(m.clone(), NOW).wait().unwrap();
    b.store(m.clone(), NOW).wait().unwrap();
    // b misses the delete.
    assert_eq!(a.delete(o, vec![m.hash], NOW + 5).wait().unwrap().len(), 1);
    assert_ne!(digests(&a, NOW + 6), digests(&b, NOW + 6));
    // a pulls from b: the tombstone beats b's copy; nothing comes back.
    pull(&b, &a, NOW + 6);
    assert!(
        a.retrieve(&o, 0, None, RetrieveLimits::default(), NOW + 6)
            .unwrap()
            .messages
            .is_empty()
    );
    // b pulls from a: b deletes its copy.
    pull(&a, &b, NOW + 6);
    assert!(
        b.retrieve(&o, 0, None, RetrieveLimits::default(), NOW + 6)
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(digests(&a, NOW + 6), digests(&b, NOW + 6));
    // Direct apply of the old copy is refused.
    assert_eq!(
        a.apply_remote_message(replica(&m), NOW + 7).wait().unwrap(),
        ApplyOutcome::Tombstoned
    );
    // A client re-storing it (same timestamp) does not bring it back either.
    assert_eq!(
        a.store(m.clone(), NOW + 8).wait().unwrap(),
        StoreOutcome::Deleted
    );
    // A genuinely new store (later timestamp) does, and beats the tombstone on the peer.
    let mut again = m.clone();
    again.timestamp_ms = NOW + 10;
    assert!(matches!(
        a.store(again, NOW + 10).wait().unwrap(),
        StoreOutcome::Stored { .. }
    ));
    pull(&a, &b, NOW + 11);
    assert_eq!(
        b.retrieve(&o, 0, None, RetrieveLimits::default(), NOW + 11)
            .unwrap()
            .messages
            .len(),
        1
    );
    assert_eq!(digests(&a, NOW + 11), digests(&b, NOW + 11));
}

#[test]
fn tombstone_is_kept_for_the_retention() {
    let d = tempfile::tempdir().unwrap();
    let s = open_with(
        &d,
        StoreConfig {
            tombstone_retention_ms: 3000,
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    let m = msg(&o, 0, b"long", NOW, NOW + 2000);
    s.store(m.clone(), NOW).wait().unwrap();
    s.delete(o, vec![m.hash], NOW + 10).wait().unwrap();
    let e = s.bucket_entries(&o, 0, NOW + 10).unwrap();
    assert_eq!(e.tombstones.len(), 1);
    assert_eq!(
        (e.tombstones[0].deleted_ms, e.tombstones[0].keep_until_ms),
        (NOW + 10, NOW + 3010)
    );
    // The old copy of the deleted message is refused while the tombstone lives.
    assert_eq!(
        s.apply_remote_message(replica(&m), NOW + 1000)
            .wait()
            .unwrap(),
        ApplyOutcome::Tombstoned
    );
    assert_eq!(s.sweep_expired(NOW + 3009).wait().unwrap().tombstones, 0);
    assert_eq!(s.sweep_expired(NOW + 3010).wait().unwrap().tombstones, 1);
    assert_eq!(s.stats().unwrap().tombstones, 0);
    // Default retention outlives the longest possible TTL.
    let def = StoreConfig::default();
    assert!(def.tombstone_retention_ms > def.max_expire_ahead_ms);
}

#[test]
fn remote_apply_is_idempotent_and_validated() {
    let d = tempfile::tempdir().unwrap();
    let s = open(&d);
    let o = owner(1);
    let m = replica(&msg(&o, 3, b"r", NOW, NOW + DAY));
    assert_eq!(
        s.apply_remote_message(m.clone(), NOW).wait().unwrap(),
        ApplyOutcome::Changed
    );
    assert_eq!(
        s.apply_remote_message(m.clone(), NOW).wait().unwrap(),
        ApplyOutcome::Unchanged
    );
    let mut expired = replica(&msg(&o, 3, b"old", NOW, NOW + 10));
    expired.expiry_version = NOW;
    assert_eq!(
        s.apply_remote_message(expired, NOW + 10).wait().unwrap(),
        ApplyOutcome::Expired
    );
    // A replica with a malformed hash cannot be built: `ReplicaMessage` holds a `MessageHash`.
    assert!("nope".parse::<MessageHash>().is_err());
    let mut conflict = m.clone();
    conflict.owner = owner(2);
    assert!(matches!(
        s.apply_remote_message(conflict, NOW).wait(),
        Err(StoreError::HashConflict { .. })
    ));
    // Expiry: larger (version, expiry) wins, smaller is ignored, unknown hash is NotFound.
    let upd = |v, e| ExpiryUpdate {
        owner: o,
        hash: m.hash,
        timestamp_ms: NOW,
        expiry_ms: e,
        expiry_version: v,
    };
    assert_eq!(
        s.apply_remote_expiry(upd(NOW + 5, NOW + 2 * DAY), NOW)
            .wait()
            .unwrap(),
        ApplyOutcome::Changed
    );
    assert_eq!(
        s.apply_remote_expiry(upd(NOW + 4, NOW + 3 * DAY), NOW)
            .wait()
            .unwrap(),
        ApplyOutcome::Unchanged
    );
    assert_eq!(
        s.apply_remote_expiry(upd(NOW + 5, NOW + 2 * DAY), NOW)
            .wait()
            .unwrap(),
        ApplyOutcome::Unchanged
    );
    assert_eq!(
        s.get_expiries(&o, &[m.hash], NOW).unwrap()[&m.hash],
        NOW + 2 * DAY
    );
    let mut other = upd(NOW + 9, NOW + DAY);
    other.hash = h(&"q".repeat(43));
    assert_eq!(
        s.apply_remote_expiry(other, NOW).wait().unwrap(),
        ApplyOutcome::NotFound
    );
    // Tombstones: applying twice is unchanged; a stale one (before the message's timestamp)
    // does not delete it; an expired one with nothing to delete is ignored.
    let t = Tombstone {
        owner: o,
        namespace: 3,
        hash: m.hash,
        deleted_ms: NOW - 1,
        keep_until_ms: NOW + DAY,
    };
    assert_eq!(
        s.apply_remote_tombstone(t.clone(), NOW).wait().unwrap(),
        ApplyOutcome::Unchanged
    );
    let t = Tombstone {
        deleted_ms: NOW + 1,
        ..t
    };
    assert_eq!(
        s.apply_remote_tombstone(t.clone(), NOW).wait().unwrap(),
        ApplyOutcome::Changed
    );
    assert_eq!(
        s.apply_remote_tombstone(t.clone(), NOW).wait().unwrap(),
        ApplyOutcome::Unchanged
    );
    assert!(s.get_expiries(&o, &[m.hash], NOW).unwrap().is_empty());
    let stale = Tombstone {
        hash: h(&"s".repeat(43)),
        deleted_ms: NOW - 32 * DAY,
        keep_until_ms: NOW - DAY,
        ..t
    };
    assert_eq!(
        s.apply_remote_tombstone(stale, NOW).wait().unwrap(),
        ApplyOutcome::Expired
    );
}

#[test]
fn outbox_replicas_converge_to_newest() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(&da), open(&db));
    let o = owner(1);
    let old = msg(&o, -21, b"old", NOW, NOW + DAY);
    let new = msg(&o, -21, b"new", NOW + 5, NOW + DAY);
    a.store(old.clone(), NOW).wait().unwrap();
    a.store(new.clone(), NOW + 5).wait().unwrap();
    b.apply_remote_message(replica(&new), NOW + 6)
        .wait()
        .unwrap();
    assert_eq!(
        b.apply_remote_message(replica(&old), NOW + 6)
            .wait()
            .unwrap(),
        ApplyOutcome::Obsolete
    );
    assert_eq!(digests(&a, NOW + 6), digests(&b, NOW + 6));
}

#[test]
fn digest_depends_on_expiry_and_membership_only() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(&da), open(&db));
    let o = owner(1);
    let ms: Vec<_> = (0..5u8).map(|i| msg(&o, 0, &[i], NOW, NOW + DAY)).collect();
    for m in &ms {
        a.store(m.clone(), NOW).wait().unwrap();
    }
    for m in ms.iter().rev() {
        b.store(m.clone(), NOW + 3).wait().unwrap();
    }
    let (x, y) = (digests(&a, NOW + 4), digests(&b, NOW + 4));
    assert_eq!(x, y);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].messages, 5);
    // Per-owner query matches.
    assert_eq!(a.bucket_digests(Some(&o), NOW + 4).unwrap(), x);
    assert!(
        a.bucket_digests(Some(&owner(9)), NOW + 4)
            .unwrap()
            .is_empty()
    );
    // An expiry change shows.
    a.expire_all(o, NamespaceSel::All, NOW + 1000, NOW + 4)
        .wait()
        .unwrap();
    assert_ne!(digests(&a, NOW + 5), digests(&b, NOW + 5));
    pull(&a, &b, NOW + 5);
    assert_eq!(digests(&a, NOW + 5), digests(&b, NOW + 5));
}

#[derive(Debug, Clone)]
enum Op {
    Store(u8, i16, i64, i64),
    Delete(u8),
    Expire(u8, i64, u8),
    ExpireAll(i64),
    DeleteBefore(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, prop_oneof![Just(0i16), Just(-1i16), Just(2i16)], 0i64..50, 1_000i64..40_000)
            .prop_map(|(d, ns, ts, ttl)| Op::Store(d, ns, ts, ttl)),
        2 => (0u8..12).prop_map(Op::Delete),
        2 => (0u8..12, 1_000i64..40_000, 0u8..3).prop_map(|(d, e, m)| Op::Expire(d, e, m)),
        1 => (1_000i64..40_000).prop_map(Op::ExpireAll),
        1 => (0i64..50).prop_map(Op::DeleteBefore),
    ]
}

/// Applies a client operation on one node at time `now`.
fn run(s: &Store, o: &AccountId, op: &Op, now: i64) {
    let hash = |d: u8, ns: i16| hash_of(o, ns, &[d]);
    match *op {
        Op::Store(d, ns, ts, ttl) => {
            let m = msg(o, ns, &[d], NOW + ts, now + ttl);
            let _ = s.store(m, now).wait().unwrap();
        }
        Op::Delete(d) => {
            let hs = [0, -1, 2].iter().map(|ns| hash(d, *ns)).collect();
            s.delete(*o, hs, now).wait().unwrap();
        }
        Op::Expire(d, e, mode) => {
            let mode =
                [ExpireMode::Set, ExpireMode::Shorten, ExpireMode::Extend][usize::from(mode)];
            s.expire(
                ExpireRequest {
                    owner: *o,
                    hashes: [0, -1, 2].iter().map(|ns| hash(d, *ns)).collect(),
                    expiry: ExpiryTarget::Single(now + e),
                    mode,
                },
                now,
            )
            .wait()
            .unwrap();
        }
        Op::ExpireAll(e) => {
            s.expire_all(*o, NamespaceSel::All, now + e, now)
                .wait()
                .unwrap();
        }
        Op::DeleteBefore(ts) => {
            s.delete_before(*o, NamespaceSel::All, NOW + ts, now)
                .wait()
                .unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Three replicas each see a different subset of the client operations (some in a different
    /// order, as forwarded requests can arrive); after pairwise reconciliation they all have the
    /// same digest, and it equals the digest after a second round (a fixpoint).
    #[test]
    fn replicas_converge(
        ops in proptest::collection::vec((op(), any::<[bool; 3]>()), 1..25),
        shuffle_seed in any::<u64>(),
    ) {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let nodes: Vec<Store> = dirs.iter().map(open).collect();
        let o = owner(1);
        // Node i applies the ops whose mask has bit i; node 2 applies its subset in a rotated
        // order (deterministic from the seed), each at the same "now" it would have had.
        for (i, node) in nodes.iter().enumerate() {
            let mut mine: Vec<(usize, &Op)> = ops.iter().enumerate()
                .filter(|(_, (_, mask))| mask[i])
                .map(|(k, (op, _))| (k, op))
                .collect();
            if i == 2 && !mine.is_empty() {
                let r = (shuffle_seed as usize) % mine.len();
                mine.rotate_left(r);
            }
            for (k, op) in mine {
                run(node, &o, op, NOW + 100 * k as i64);
            }
        }
        let now = NOW + 100 * ops.len() as i64;
        for _round in 0..2 {
            for i in 0..3 {
                for j in 0..3 {
                    if i != j {
                        pull(&nodes[i], &nodes[j], now);
                    }
                }
            }
        }
        let d0 = digests(&nodes[0], now);
        prop_assert_eq!(&d0, &digests(&nodes[1], now));
        prop_assert_eq!(&d0, &digests(&nodes[2], now));
        // Each public outbox holds at most one live message on every node.
        for n in &nodes {
            let r = n.retrieve(&o, -1, None, RetrieveLimits::default(), now).unwrap();
            prop_assert!(r.messages.len() <= 1);
        }
        // What a client sees is identical everywhere (hash and expiry per namespace).
        for ns in [0i16, -1, 2] {
            let view = |s: &Store| {
                let mut v: Vec<(MessageHash, i64)> = s.retrieve(&o, ns, None, RetrieveLimits::default(), now)
                    .unwrap().messages.into_iter().map(|m| (m.hash, m.expiry_ms)).collect();
                v.sort();
                v
            };
            let v0 = view(&nodes[0]);
            prop_assert_eq!(&v0, &view(&nodes[1]));
            prop_assert_eq!(&v0, &view(&nodes[2]));
        }
    }

    /// Two stores applying the same replicated items (messages, tombstones, expiry updates) in
    /// different orders end with the same digest and the same bucket entries. (Public outboxes
    /// also create tombstones for replaced messages, which depend on what was live when; they
    /// converge through reconciliation, which `replicas_converge` checks.)
    #[test]
    fn apply_order_does_not_matter(
        items in proptest::collection::vec((0u8..6, 0u8..3, 0i64..30, 1_000i64..30_000), 1..30),
        perm_seed in any::<u64>(),
    ) {
        let o = owner(1);
        let mk = |&(d, kind, t, e): &(u8, u8, i64, i64)| -> (u8, ReplicaMessage, Tombstone, ExpiryUpdate) {
            let m = msg(&o, if d % 2 == 0 { 0 } else { 2 }, &[d], NOW + t, NOW + e);
            let r = ReplicaMessage { expiry_version: NOW + t + e % 7, ..replica(&m) };
            let tomb = Tombstone { owner: o, namespace: m.namespace, hash: m.hash, deleted_ms: NOW + t + 3, keep_until_ms: NOW + e };
            let up = ExpiryUpdate { owner: o, hash: m.hash, timestamp_ms: NOW + t, expiry_ms: NOW + e + 11, expiry_version: NOW + t + e };
            (kind, r, tomb, up)
        };
        let apply = |s: &Store, it: &(u8, ReplicaMessage, Tombstone, ExpiryUpdate)| {
            match it.0 {
                0 => { s.apply_remote_message(it.1.clone(), NOW).wait().unwrap(); }
                1 => { s.apply_remote_tombstone(it.2.clone(), NOW).wait().unwrap(); }
                _ => {
                    // An expiry update only lands on a held message; the node pulls the message
                    // first, so deliver both.
                    s.apply_remote_message(it.1.clone(), NOW).wait().unwrap();
                    s.apply_remote_expiry(it.3.clone(), NOW).wait().unwrap();
                }
            }
        };
        let built: Vec<_> = items.iter().map(mk).collect();
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (open(&da), open(&db));
        for it in &built { apply(&a, it); }
        let mut order: Vec<usize> = (0..built.len()).collect();
        let mut x = perm_seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for &i in &order { apply(&b, &built[i]); }
        prop_assert_eq!(digests(&a, NOW), digests(&b, NOW));
        for ns in [0i16, 2] {
            prop_assert_eq!(a.bucket_entries(&o, ns, NOW).unwrap(), b.bucket_entries(&o, ns, NOW).unwrap());
        }
    }
}
