//! One test (or a few) per store operation, positive and negative.

#![allow(
    clippy::cloned_ref_to_slice_refs,
    clippy::unwrap_used,
    clippy::manual_is_multiple_of
)]

mod common;

use common::*;
use umbra_store::*;

fn limits(count: usize) -> RetrieveLimits {
    RetrieveLimits {
        max_count: Some(count),
        max_size: None,
    }
}

fn all() -> RetrieveLimits {
    RetrieveLimits::default()
}

fn hashes(r: &Retrieved) -> Vec<MessageHash> {
    r.messages.iter().map(|m| m.hash).collect()
}

#[test]
fn store_then_retrieve_returns_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let m = msg(&o, 0, b"hello", NOW, NOW + DAY);
    let out = s.store(m.clone(), NOW).wait().unwrap();
    assert_eq!(
        out,
        StoreOutcome::Stored {
            expiry_ms: NOW + DAY
        }
    );
    assert!(!out.already());
    let r = s.retrieve(&o, 0, None, all(), NOW).unwrap();
    assert_eq!(
        r.messages,
        vec![StoredMessage {
            hash: m.hash,
            namespace: 0,
            data: b"hello".to_vec(),
            timestamp_ms: NOW,
            expiry_ms: NOW + DAY,
        }]
    );
    assert!(!r.more);
    // Other account, other namespace: nothing.
    assert!(
        s.retrieve(&owner(2), 0, None, all(), NOW)
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(
        s.retrieve(&o, 1, None, all(), NOW)
            .unwrap()
            .messages
            .is_empty()
    );
    let st = s.stats().unwrap();
    assert_eq!((st.messages, st.bytes), (1, 5));
}

#[test]
fn duplicate_store_is_already_and_only_raises_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let m = msg(&o, 0, b"x", NOW, NOW + DAY);
    s.store(m.clone(), NOW).wait().unwrap();

    // Earlier expiry and different timestamp: unchanged.
    let mut earlier = m.clone();
    earlier.expiry_ms = NOW + 1000;
    earlier.timestamp_ms = NOW + 5;
    let out = s.store(earlier, NOW + 1).wait().unwrap();
    assert_eq!(
        out,
        StoreOutcome::Already {
            expiry_ms: NOW + DAY
        }
    );
    assert!(out.already());

    // Later expiry: raised; timestamp unchanged.
    let mut later = m.clone();
    later.expiry_ms = NOW + 2 * DAY;
    later.timestamp_ms = NOW + 7;
    let out = s.store(later, NOW + 2).wait().unwrap();
    assert_eq!(
        out,
        StoreOutcome::Already {
            expiry_ms: NOW + 2 * DAY
        }
    );
    let r = s.retrieve(&o, 0, None, all(), NOW + 3).unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].timestamp_ms, NOW);
    assert_eq!(r.messages[0].expiry_ms, NOW + 2 * DAY);
    assert_eq!(s.stats().unwrap().messages, 1);
}

#[test]
fn store_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    // A malformed hash cannot reach the store: `NewMessage` holds a parsed `MessageHash`.
    assert!("short".parse::<MessageHash>().is_err());
    let big = msg(&o, 0, &vec![0u8; 76_801], NOW, NOW + DAY);
    let e = s.store(big, NOW).wait().unwrap_err();
    assert!(matches!(
        e,
        StoreError::MessageTooLarge {
            len: 76_801,
            max: 76_800
        }
    ));
    assert!(e.to_string().contains("76800"), "{e}");
    // Same hash under another account or namespace is a conflict.
    let m = msg(&o, 0, b"y", NOW, NOW + DAY);
    s.store(m.clone(), NOW).wait().unwrap();
    let mut other = m.clone();
    other.owner = owner(2);
    assert!(matches!(
        s.store(other, NOW).wait(),
        Err(StoreError::HashConflict { op: "store" })
    ));
    let mut other = m;
    other.namespace = 3;
    assert!(matches!(
        s.store(other, NOW).wait(),
        Err(StoreError::HashConflict { .. })
    ));
}

#[test]
fn expired_messages_are_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let m = msg(&o, 0, b"short-lived", NOW, NOW + 10_000);
    s.store(m.clone(), NOW).wait().unwrap();
    assert_eq!(
        s.retrieve(&o, 0, None, all(), NOW + 9_999)
            .unwrap()
            .messages
            .len(),
        1
    );
    // At the expiry instant it is gone, before any sweep.
    assert!(
        s.retrieve(&o, 0, None, all(), NOW + 10_000)
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(
        s.get_expiries(&o, &[m.hash], NOW + 10_000)
            .unwrap()
            .is_empty()
    );
    assert!(s.get_replicas(&[m.hash], NOW + 10_000).unwrap().is_empty());
    // Not deletable either (nothing to delete).
    assert!(
        s.delete(o, vec![m.hash], NOW + 10_000)
            .wait()
            .unwrap()
            .is_empty()
    );
    // A store of the same hash after expiry is a new message.
    let mut again = m.clone();
    again.expiry_ms = NOW + DAY;
    assert_eq!(
        s.store(again, NOW + 20_000).wait().unwrap(),
        StoreOutcome::Stored {
            expiry_ms: NOW + DAY
        }
    );
}

#[test]
fn sweep_removes_expired_rows_and_old_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreConfig {
            tombstone_retention_ms: 5000,
            expired_grace_ms: 0,
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    for i in 0..10u8 {
        s.store(msg(&o, 0, &[i], NOW, NOW + 1000 + i64::from(i)), NOW)
            .wait()
            .unwrap();
    }
    let keep = msg(&o, 0, b"keep", NOW, NOW + DAY);
    s.store(keep.clone(), NOW).wait().unwrap();
    let gone = msg(&o, 0, b"gone", NOW, NOW + 5000);
    s.store(gone.clone(), NOW).wait().unwrap();
    s.delete(o, vec![gone.hash], NOW).wait().unwrap();
    assert_eq!(s.stats().unwrap().messages, 11);
    assert_eq!(s.stats().unwrap().tombstones, 1);

    let out = s.sweep_expired(NOW + 1005).wait().unwrap();
    assert_eq!(
        out,
        SweepOutcome {
            messages: 6,
            tombstones: 0,
            more: false
        }
    );
    let out = s.sweep_expired(NOW + 6000).wait().unwrap();
    assert_eq!(
        out,
        SweepOutcome {
            messages: 4,
            tombstones: 1,
            more: false
        }
    );
    let st = s.stats().unwrap();
    assert_eq!((st.messages, st.tombstones, st.bytes), (1, 0, 4));
    assert_eq!(
        hashes(&s.retrieve(&o, 0, None, all(), NOW + 6000).unwrap()),
        [keep.hash]
    );
}

#[test]
fn sweep_reports_more_when_limited() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreConfig {
            sweep_limit: 3,
            expired_grace_ms: 0,
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    for i in 0..5u8 {
        s.store(msg(&o, 0, &[i], NOW, NOW + 1000), NOW)
            .wait()
            .unwrap();
    }
    let a = s.sweep_expired(NOW + 2000).wait().unwrap();
    assert_eq!((a.messages, a.more), (3, true));
    let b = s.sweep_expired(NOW + 2000).wait().unwrap();
    assert_eq!((b.messages, b.more), (2, false));
}

#[test]
fn retrieve_pages_by_last_hash_count_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let mut all_hashes = Vec::new();
    for i in 0..120u8 {
        let m = msg(&o, 0, &[i; 30], NOW + i64::from(i), NOW + DAY);
        all_hashes.push(m.hash);
        s.store(m, NOW).wait().unwrap();
    }
    // Count paging.
    let mut got = Vec::new();
    let mut last: Option<MessageHash> = None;
    loop {
        let r = s.retrieve(&o, 0, last.as_ref(), limits(50), NOW).unwrap();
        got.extend(hashes(&r));
        last = got.last().cloned();
        if !r.more {
            break;
        }
        assert_eq!(r.messages.len(), 50);
    }
    assert_eq!(got, all_hashes);

    // Size paging: each message counts 100 + 43 + 40 = 183 bytes.
    let l = RetrieveLimits {
        max_count: None,
        max_size: Some(183 * 7),
    };
    let r = s.retrieve(&o, 0, None, l, NOW).unwrap();
    assert_eq!(r.messages.len(), 7);
    assert!(r.more);
    // The first message is always returned even if it alone exceeds the limit.
    let l = RetrieveLimits {
        max_size: Some(1),
        ..l
    };
    let r = s.retrieve(&o, 0, None, l, NOW).unwrap();
    assert_eq!((r.messages.len(), r.more), (1, true));
    // max_count 0 acts as 1.
    let r = s.retrieve(&o, 0, None, limits(0), NOW).unwrap();
    assert_eq!((r.messages.len(), r.more), (1, true));
    // Exactly at the end: more = false.
    let r = s.retrieve(&o, 0, None, limits(120), NOW).unwrap();
    assert_eq!((r.messages.len(), r.more), (120, false));
    // Unknown last_hash starts from the beginning, as does none (the node passes an empty or
    // malformed one as none).
    let r = s
        .retrieve(&o, 0, Some(&h(&"Z".repeat(43))), limits(2), NOW)
        .unwrap();
    assert_eq!(hashes(&r), all_hashes[..2]);
    let r = s.retrieve(&o, 0, None, limits(2), NOW).unwrap();
    assert_eq!(hashes(&r), all_hashes[..2]);
    // Default request limits (1/5 of 7.8 MB) return everything here.
    let r = s
        .retrieve(&o, 0, None, RetrieveLimits::from_request(0, 0), NOW)
        .unwrap();
    assert_eq!((r.messages.len(), r.more), (120, false));
}

#[test]
fn last_hash_of_deleted_message_keeps_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let ms: Vec<_> = (0..6u8).map(|i| msg(&o, 0, &[i], NOW, NOW + DAY)).collect();
    for m in &ms {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let r = s.retrieve(&o, 0, None, limits(3), NOW).unwrap();
    let last = r.messages[2].hash;
    s.delete(o, vec![last], NOW).wait().unwrap();
    let r = s.retrieve(&o, 0, Some(&last), all(), NOW).unwrap();
    assert_eq!(
        hashes(&r),
        ms[3..].iter().map(|m| m.hash).collect::<Vec<_>>()
    );
}

#[test]
fn last_hash_of_expired_message_keeps_its_position_during_grace() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let long = msg(&o, 0, b"long", NOW, NOW + DAY);
    let short = msg(&o, 0, b"short", NOW, NOW + 1000);
    let later = msg(&o, 0, b"later", NOW, NOW + DAY);
    for m in [&long, &short] {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let r = s.retrieve(&o, 0, None, all(), NOW).unwrap();
    assert_eq!(hashes(&r), [long.hash, short.hash]);
    s.store(later.clone(), NOW + 500).wait().unwrap();
    // `short` expires and the sweep runs, within the grace period.
    assert_eq!(s.sweep_expired(NOW + 2000).wait().unwrap().messages, 0);
    let r = s
        .retrieve(&o, 0, Some(&short.hash), all(), NOW + 2000)
        .unwrap();
    assert_eq!(hashes(&r), [later.hash]);
    // After the grace period the row is gone and paging restarts from the beginning.
    let grace = StoreConfig::default().expired_grace_ms;
    assert_eq!(
        s.sweep_expired(NOW + 1000 + grace).wait().unwrap().messages,
        1
    );
    let r = s
        .retrieve(&o, 0, Some(&short.hash), all(), NOW + 1000 + grace)
        .unwrap();
    assert_eq!(hashes(&r), [long.hash, later.hash]);
}

#[test]
fn delete_by_hash_reports_sorted_deleted_only_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let (a, b) = (owner(1), owner(2));
    let ma: Vec<_> = (0..4u8)
        .map(|i| msg(&a, (i % 2).into(), &[i], NOW, NOW + DAY))
        .collect();
    let mb = msg(&b, 0, b"b", NOW, NOW + DAY);
    for m in ma.iter().chain([&mb]) {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let req = vec![
        ma[3].hash,
        ma[0].hash,
        mb.hash,
        h("unknown+hash+unknown+hash+unknown+hash+xxxx"),
        ma[0].hash,
    ];
    let deleted = s.delete(a, req, NOW).wait().unwrap();
    let mut want = vec![ma[0].hash, ma[3].hash];
    want.sort();
    assert_eq!(deleted, want);
    // b's message untouched; deleting again deletes nothing.
    assert_eq!(
        s.retrieve(&b, 0, None, all(), NOW).unwrap().messages.len(),
        1
    );
    assert!(s.delete(a, want.clone(), NOW).wait().unwrap().is_empty());
    assert_eq!(s.stats().unwrap().messages, 3);
    // Tombstones recorded for both deleted messages.
    assert_eq!(s.stats().unwrap().tombstones, 2);
}

#[test]
fn delete_all_one_namespace_and_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let mut by_ns: std::collections::BTreeMap<i16, Vec<MessageHash>> = Default::default();
    for (i, ns) in [0i16, 0, 5, -10, 5].into_iter().enumerate() {
        let m = msg(&o, ns, &[i as u8], NOW, NOW + DAY);
        by_ns.entry(ns).or_default().push(m.hash);
        s.store(m, NOW).wait().unwrap();
    }
    s.store(msg(&owner(2), 0, b"other", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    for v in by_ns.values_mut() {
        v.sort();
    }
    let d = s.delete_all(o, NamespaceSel::One(5), NOW).wait().unwrap();
    assert_eq!(d.namespace(5), by_ns[&5].as_slice());
    assert_eq!(d.len(), 2);
    let d = s.delete_all(o, NamespaceSel::One(5), NOW).wait().unwrap();
    assert!(d.is_empty());
    let d = s.delete_all(o, NamespaceSel::All, NOW).wait().unwrap();
    assert_eq!(d.namespace(0), by_ns[&0].as_slice());
    assert_eq!(d.namespace(-10), by_ns[&-10].as_slice());
    assert_eq!(d.len(), 3);
    assert_eq!(s.stats().unwrap().messages, 1);
    assert_eq!(
        s.retrieve(&owner(2), 0, None, all(), NOW)
            .unwrap()
            .messages
            .len(),
        1
    );
}

#[test]
fn delete_before_uses_timestamp_inclusive() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let ms: Vec<_> = (0..5u8)
        .map(|i| msg(&o, 0, &[i], NOW + i64::from(i) * 100, NOW + DAY))
        .collect();
    for m in &ms {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    s.store(msg(&o, 2, b"ns2", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    let d = s
        .delete_before(o, NamespaceSel::One(0), NOW + 200, NOW)
        .wait()
        .unwrap();
    let mut want: Vec<MessageHash> = ms[..3].iter().map(|m| m.hash).collect();
    want.sort();
    assert_eq!(d.namespace(0), want.as_slice());
    assert_eq!(d.len(), 3);
    let d = s
        .delete_before(o, NamespaceSel::All, NOW + 200, NOW)
        .wait()
        .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d.namespace(2).len(), 1);
    let left = s.retrieve(&o, 0, None, all(), NOW).unwrap();
    assert_eq!(hashes(&left), [ms[3].hash, ms[4].hash]);
}

#[test]
fn expire_plain_shorten_extend() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let a = msg(&o, 0, b"a", NOW, NOW + 2 * DAY);
    let b = msg(&o, 0, b"b", NOW, NOW + 4 * DAY);
    let foreign = msg(&owner(2), 0, b"f", NOW, NOW + 4 * DAY);
    for m in [&a, &b, &foreign] {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let req = |mode, e| ExpireRequest {
        owner: o,
        hashes: vec![b.hash, a.hash, foreign.hash, b.hash],
        expiry: ExpiryTarget::Single(e),
        mode,
    };
    let sorted = |mut v: Vec<MessageHash>| {
        v.sort();
        v
    };
    let ab = sorted(vec![a.hash, b.hash]);

    // Extend to 3 days: only a (2d) moves; b (4d) unchanged.
    let out = s
        .expire(req(ExpireMode::Extend, NOW + 3 * DAY), NOW)
        .wait()
        .unwrap();
    assert_eq!(out.applied_expiry_ms, Some(NOW + 3 * DAY));
    assert_eq!(
        out.updated,
        [UpdatedExpiry {
            hash: a.hash,
            expiry_ms: NOW + 3 * DAY
        }]
    );
    assert_eq!(out.unchanged.get(&b.hash), Some(&(NOW + 4 * DAY)));
    assert_eq!(out.unchanged.len(), 1);

    // Shorten to 3.5 days: only b moves.
    let e = NOW + 3 * DAY + DAY / 2;
    let out = s.expire(req(ExpireMode::Shorten, e), NOW).wait().unwrap();
    assert_eq!(
        out.updated,
        [UpdatedExpiry {
            hash: b.hash,
            expiry_ms: e
        }]
    );
    assert_eq!(out.unchanged.get(&a.hash), Some(&(NOW + 3 * DAY)));

    // Plain: both updated (sorted), either direction; a repeated hash counts once.
    let out = s
        .expire(req(ExpireMode::Set, NOW + DAY), NOW)
        .wait()
        .unwrap();
    assert_eq!(out.updated.iter().map(|u| u.hash).collect::<Vec<_>>(), ab);
    assert!(out.unchanged.is_empty());
    let ex = s.get_expiries(&o, &[a.hash, b.hash], NOW).unwrap();
    assert_eq!(
        ex.values().copied().collect::<Vec<_>>(),
        [NOW + DAY, NOW + DAY]
    );
    // Foreign account's message untouched.
    assert_eq!(
        s.get_expiries(&owner(2), &[foreign.hash], NOW).unwrap()[&foreign.hash],
        NOW + 4 * DAY
    );

    // Capped at now + 30 days.
    let out = s
        .expire(req(ExpireMode::Set, NOW + 90 * DAY), NOW)
        .wait()
        .unwrap();
    assert_eq!(out.applied_expiry_ms, Some(NOW + 30 * DAY));
    assert!(out.updated.iter().all(|u| u.expiry_ms == NOW + 30 * DAY));

    // Shortening to the past makes them disappear at once.
    let out = s
        .expire(req(ExpireMode::Shorten, NOW + 5), NOW)
        .wait()
        .unwrap();
    assert_eq!(out.updated.len(), 2);
    assert!(
        s.retrieve(&o, 0, None, all(), NOW + 5)
            .unwrap()
            .messages
            .is_empty()
    );
}

#[test]
fn expire_multi_and_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let a = msg(&o, 0, b"a", NOW, NOW + 2 * DAY);
    let b = msg(&o, 0, b"b", NOW, NOW + 2 * DAY);
    for m in [&a, &b] {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let out = s
        .expire(
            ExpireRequest {
                owner: o,
                hashes: vec![a.hash, b.hash],
                expiry: ExpiryTarget::PerMessage(vec![NOW + DAY, NOW + 3 * DAY]),
                mode: ExpireMode::Extend,
            },
            NOW,
        )
        .wait()
        .unwrap();
    assert_eq!(out.applied_expiry_ms, None);
    assert_eq!(
        out.updated,
        [UpdatedExpiry {
            hash: b.hash,
            expiry_ms: NOW + 3 * DAY
        }]
    );
    assert_eq!(out.unchanged[&a.hash], NOW + 2 * DAY);
    let e = s
        .expire(
            ExpireRequest {
                owner: o,
                hashes: vec![a.hash, b.hash],
                expiry: ExpiryTarget::PerMessage(vec![NOW + DAY]),
                mode: ExpireMode::Set,
            },
            NOW,
        )
        .wait()
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::ExpiryCountMismatch {
            expiries: 1,
            hashes: 2
        }
    ));
}

#[test]
fn expire_all_only_shortens() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let a = msg(&o, 0, b"a", NOW, NOW + DAY);
    let b = msg(&o, 0, b"b", NOW, NOW + 3 * DAY);
    let c = msg(&o, 7, b"c", NOW, NOW + 3 * DAY);
    for m in [&a, &b, &c] {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    let u = s
        .expire_all(o, NamespaceSel::One(0), NOW + 2 * DAY, NOW)
        .wait()
        .unwrap();
    assert_eq!(u.namespace(0), [b.hash]);
    assert_eq!(u.len(), 1);
    let u = s
        .expire_all(o, NamespaceSel::All, NOW + 2 * DAY, NOW)
        .wait()
        .unwrap();
    assert_eq!(u.namespace(7), [c.hash]);
    assert_eq!(u.len(), 1);
    let ex = s.get_expiries(&o, &[a.hash, b.hash, c.hash], NOW).unwrap();
    assert_eq!(ex[&a.hash], NOW + DAY);
    assert_eq!(ex[&b.hash], NOW + 2 * DAY);
    assert_eq!(ex[&c.hash], NOW + 2 * DAY);
    assert!(
        s.expire_all(owner(9), NamespaceSel::All, NOW, NOW)
            .wait()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn get_expiries_only_existing_own_messages() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let a = msg(&o, 3, b"a", NOW, NOW + DAY);
    s.store(a.clone(), NOW).wait().unwrap();
    let ex = s
        .get_expiries(&o, &[a.hash, h(&"x".repeat(43))], NOW)
        .unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[&a.hash], NOW + DAY);
    assert!(
        s.get_expiries(&owner(2), &[a.hash], NOW)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn public_outbox_keeps_only_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let first = msg(&o, -1, b"first", NOW, NOW + DAY);
    let second = msg(&o, -1, b"second", NOW + 10, NOW + DAY);
    let older = msg(&o, -1, b"older", NOW - 10, NOW + DAY);
    s.store(first.clone(), NOW).wait().unwrap();
    s.store(msg(&o, -2, b"not an outbox", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    s.store(msg(&o, -2, b"not an outbox 2", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    assert_eq!(
        s.store(second.clone(), NOW + 10).wait().unwrap(),
        StoreOutcome::Stored {
            expiry_ms: NOW + DAY
        }
    );
    assert_eq!(
        hashes(&s.retrieve(&o, -1, None, all(), NOW).unwrap()),
        [second.hash]
    );
    // An older message does not replace the newer one.
    assert_eq!(
        s.store(older, NOW + 11).wait().unwrap(),
        StoreOutcome::Obsolete
    );
    // Re-storing the replaced one stays deleted.
    assert_eq!(
        s.store(first, NOW + 12).wait().unwrap(),
        StoreOutcome::Deleted
    );
    // Duplicate of the kept one updates expiry but not timestamp.
    let mut dup = second.clone();
    dup.expiry_ms = NOW + 2 * DAY;
    dup.timestamp_ms = NOW + 99;
    assert_eq!(
        s.store(dup, NOW + 13).wait().unwrap(),
        StoreOutcome::Already {
            expiry_ms: NOW + 2 * DAY
        }
    );
    let r = s.retrieve(&o, -1, None, all(), NOW + 14).unwrap();
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].timestamp_ms, NOW + 10);
    assert_eq!(r.messages[0].expiry_ms, NOW + 2 * DAY);
    // Non-outbox namespace keeps both.
    assert_eq!(
        s.retrieve(&o, -2, None, all(), NOW).unwrap().messages.len(),
        2
    );
    assert_eq!(s.stats().unwrap().messages, 3);
}

#[test]
fn quota_count_and_bytes_name_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreConfig {
            quota: Quota {
                max_messages: 3,
                max_bytes: 100,
            },
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    for i in 0..3u8 {
        s.store(msg(&o, 0, &[i; 10], NOW, NOW + DAY), NOW)
            .wait()
            .unwrap();
    }
    let e = s
        .store(msg(&o, 0, b"4th", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::QuotaExceeded {
            limit: QuotaLimit::MessageCount,
            max: 3
        }
    ));
    assert!(
        e.to_string()
            .contains("per-account message count limit of 3"),
        "{e}"
    );
    // Duplicates do not count against the quota.
    assert!(
        s.store(msg(&o, 0, &[0; 10], NOW, NOW + DAY), NOW)
            .wait()
            .unwrap()
            .already()
    );
    // Another account is unaffected.
    s.store(msg(&owner(2), 0, b"fine", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    // Deleting frees quota.
    let h = hash_of(&o, 0, &[0; 10]);
    s.delete(o, vec![h], NOW).wait().unwrap();
    s.store(msg(&o, 0, b"4th", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();

    // Bytes: 71 bytes held by owner 3 would go over 100.
    let o3 = owner(3);
    s.store(msg(&o3, 0, &[1; 60], NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    let e = s
        .store(msg(&o3, 0, &[2; 41], NOW, NOW + DAY), NOW)
        .wait()
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::QuotaExceeded {
            limit: QuotaLimit::Bytes,
            max: 100
        }
    ));
    assert!(
        e.to_string().contains("per-account bytes limit of 100"),
        "{e}"
    );
    s.store(msg(&o3, 0, &[2; 40], NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
}

#[test]
fn quota_usage_survives_reopen_and_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        quota: Quota {
            max_messages: 2,
            max_bytes: 1000,
        },
        expired_grace_ms: 0,
        ..StoreConfig::default()
    };
    let o = owner(1);
    {
        let s = open_with(&dir, cfg.clone());
        s.store(msg(&o, 0, b"a", NOW, NOW + 1000), NOW)
            .wait()
            .unwrap();
        s.store(msg(&o, 0, b"b", NOW, NOW + DAY), NOW)
            .wait()
            .unwrap();
    }
    let s = open_with(&dir, cfg);
    assert!(matches!(
        s.store(msg(&o, 0, b"c", NOW, NOW + DAY), NOW).wait(),
        Err(StoreError::QuotaExceeded { .. })
    ));
    s.sweep_expired(NOW + 1000).wait().unwrap();
    s.store(msg(&o, 0, b"c", NOW, NOW + DAY), NOW + 1000)
        .wait()
        .unwrap();
    assert_eq!(s.stats().unwrap().messages, 2);
}

#[test]
fn subaccount_revocation_list() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let tok = |i: u8| SubaccountToken([i; 36]);
    s.revoke_subaccounts(o, vec![tok(1), tok(2)], NOW)
        .wait()
        .unwrap();
    assert!(s.is_subaccount_revoked(&o, &tok(1)).unwrap());
    assert!(!s.is_subaccount_revoked(&o, &tok(3)).unwrap());
    assert!(!s.is_subaccount_revoked(&owner(2), &tok(1)).unwrap());
    assert_eq!(s.revoked_subaccounts(&o).unwrap(), [tok(2), tok(1)]);
    // Re-revoking refreshes recency.
    s.revoke_subaccounts(o, vec![tok(1)], NOW + 1)
        .wait()
        .unwrap();
    assert_eq!(s.revoked_subaccounts(&o).unwrap(), [tok(1), tok(2)]);
    assert_eq!(
        s.unrevoke_subaccounts(o, vec![tok(1), tok(9)])
            .wait()
            .unwrap(),
        1
    );
    assert_eq!(s.unrevoke_subaccounts(o, vec![tok(1)]).wait().unwrap(), 0);
    assert_eq!(s.revoked_subaccounts(&o).unwrap(), [tok(2)]);
    // Only the 50 most recent are kept.
    for i in 0..60u8 {
        s.revoke_subaccounts(o, vec![tok(100 + i)], NOW + 10)
            .wait()
            .unwrap();
    }
    let list = s.revoked_subaccounts(&o).unwrap();
    assert_eq!(list.len(), 50);
    assert_eq!(list[0], tok(159));
    assert_eq!(list[49], tok(110));
    assert!(!s.is_subaccount_revoked(&o, &tok(2)).unwrap());
    // storage-rpc-addendum.md A5: unrevoke takes any number of tokens; `count` is how many
    // listed tokens were removed, a token listed twice counting once.
    let listed: Vec<SubaccountToken> = (100..160u8).chain([159, 2, 110, 200]).map(tok).collect();
    assert_eq!(listed.len(), 64);
    assert_eq!(s.unrevoke_subaccounts(o, listed).wait().unwrap(), 50);
    assert!(s.revoked_subaccounts(&o).unwrap().is_empty());
    // More than 50 per revoke request is refused.
    let e = s
        .revoke_subaccounts(o, (0..51).map(tok).collect(), NOW)
        .wait()
        .unwrap_err();
    assert!(matches!(
        e,
        StoreError::TooManyTokens {
            given: 51,
            max: 50,
            ..
        }
    ));
}

#[test]
fn owners_and_export_for_handover() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    for i in 1..=5u8 {
        for j in 0..3u8 {
            s.store(msg(&owner(i), 0, &[i, j], NOW, NOW + DAY), NOW)
                .wait()
                .unwrap();
        }
    }
    s.store(msg(&owner(6), 0, b"expired", NOW, NOW + 10), NOW)
        .wait()
        .unwrap();
    let owners = s.owners(NOW + 10).unwrap();
    assert_eq!(owners, (1..=5).map(owner).collect::<Vec<_>>());
    let moving = |o: &AccountId| o.as_bytes()[1] % 2 == 0;
    let mut got = Vec::new();
    let mut cursor = ExportCursor::default();
    let mut pages = 0;
    loop {
        let p = s.export_messages(&moving, cursor, 4, NOW + 10).unwrap();
        pages += 1;
        got.extend(p.messages);
        match p.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    assert!(pages >= 4);
    assert_eq!(got.len(), 6);
    assert!(
        got.iter()
            .all(|m| moving(&m.owner) && m.expiry_ms == NOW + DAY)
    );
    // The replica carries everything needed to re-apply it elsewhere.
    let dir2 = tempfile::tempdir().unwrap();
    let t = open(&dir2);
    for m in got {
        assert_eq!(
            t.apply_remote_message(m, NOW).wait().unwrap(),
            ApplyOutcome::Changed
        );
    }
    assert_eq!(t.owners(NOW).unwrap(), [owner(2), owner(4)]);
}

#[test]
fn writes_fail_fast_when_queue_full_and_after_drop() {
    // A queue of one with a writer that is busy: at least one of many submissions must be refused
    // with QueueFull, and every accepted one must succeed.
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreConfig {
            write_queue_capacity: 1,
            max_batch: 1,
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    let replies: Vec<_> = (0..2000u32)
        .map(|i| s.store(msg(&o, 0, &i.to_be_bytes(), NOW, NOW + DAY), NOW))
        .collect();
    let (mut ok, mut full) = (0, 0);
    for r in replies {
        match r.wait() {
            Ok(_) => ok += 1,
            Err(StoreError::QueueFull {
                capacity: 1,
                op: "store",
            }) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full > 0, "queue never filled");
    assert_eq!(s.stats().unwrap().messages, ok);
}

#[test]
fn reply_can_be_awaited() {
    // A minimal executor: poll with a no-op waker until ready (the writer completes it).
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut fut = s.store(msg(&owner(1), 0, b"async", NOW, NOW + DAY), NOW);
    let mut cx = Context::from_waker(Waker::noop());
    let out = loop {
        match std::pin::Pin::new(&mut fut).poll(&mut cx) {
            Poll::Ready(r) => break r.unwrap(),
            Poll::Pending => std::thread::yield_now(),
        }
    };
    assert!(matches!(out, StoreOutcome::Stored { .. }));
}

#[test]
fn database_size_cap_gives_database_full() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreConfig {
            max_db_bytes: Some(256 * 1024),
            ..StoreConfig::default()
        },
    );
    let o = owner(1);
    let mut full = None;
    for i in 0..100u32 {
        match s
            .store(
                msg(&o, 0, &[i as u8; 20_000], NOW + i64::from(i), NOW + DAY),
                NOW,
            )
            .wait()
        {
            Ok(_) => {}
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let e = full.expect("cap never reached");
    assert!(
        matches!(
            e,
            StoreError::DatabaseFull {
                op: "store",
                max_db_bytes: 262_144
            }
        ),
        "{e}"
    );
    // The store keeps working for reads and deletes.
    assert!(
        !s.retrieve(&o, 0, None, all(), NOW)
            .unwrap()
            .messages
            .is_empty()
    );
    assert!(
        !s.delete_all(o, NamespaceSel::All, NOW)
            .wait()
            .unwrap()
            .is_empty()
    );
}

/// `storage-rpc-addendum.md` A1, worked example: 50 000-byte messages count
/// 100 + 43 + 66 666 = 66 809 bytes each; `max_count: 500` without `max_size` is still cut at
/// 7 800 000 bytes, after 116 messages, with `more: true`.
#[test]
fn retrieve_with_only_max_count_keeps_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    for i in 0..120u32 {
        let mut data = i.to_be_bytes().to_vec();
        data.resize(50_000, 0xab);
        s.store(msg(&o, 0, &data, NOW, NOW + DAY), NOW)
            .wait()
            .unwrap();
    }
    assert_eq!(RetrieveLimits::message_size(43, 50_000), 66_809);
    let l = RetrieveLimits::from_request(500, 0);
    let r = s.retrieve(&o, 0, None, l, NOW).unwrap();
    assert_eq!((r.messages.len(), r.more), (116, true));
    // 116 × 66 809 = 7 749 844 ≤ 7 800 000 < 117 × 66 809 = 7 816 653.
    // The rest comes on the next page; the last page ends with more: false.
    let last = r.messages.last().map(|m| m.hash);
    let r = s.retrieve(&o, 0, last.as_ref(), l, NOW).unwrap();
    assert_eq!((r.messages.len(), r.more), (4, false));
    // A negative max_count acts as 1; a message alone over max_size is still returned.
    let r = s
        .retrieve(&o, 0, None, RetrieveLimits::from_request(-7, 0), NOW)
        .unwrap();
    assert_eq!((r.messages.len(), r.more), (1, true));
    let r = s
        .retrieve(&o, 0, None, RetrieveLimits::from_request(0, 10), NOW)
        .unwrap();
    assert_eq!((r.messages.len(), r.more), (1, true));
}

/// `storage-rpc-addendum.md` A2: newest first, paging backwards from `last_hash` (strictly
/// older); an absent, empty or unknown `last_hash` starts at the newest.
#[test]
fn retrieve_reverse_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    let mut stored = Vec::new();
    for i in 0..7u8 {
        let m = msg(&o, 0, &[i; 30], NOW + i64::from(i), NOW + DAY);
        s.store(m.clone(), NOW).wait().unwrap();
        stored.push(m.hash);
    }
    // Another namespace and another account do not interleave.
    s.store(msg(&o, 1, b"ns1", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    s.store(msg(&owner(2), 0, b"other", NOW, NOW + DAY), NOW)
        .wait()
        .unwrap();
    let newest_first: Vec<MessageHash> = stored.iter().rev().cloned().collect();
    let rev = |last: Option<&MessageHash>, l: RetrieveLimits| {
        s.retrieve_in(&o, 0, last, l, RetrieveDirection::Reverse, NOW)
            .unwrap()
    };
    let r = rev(None, all());
    assert_eq!((hashes(&r), r.more), (newest_first.clone(), false));
    // Pages of 3: the last (oldest) element of a page is the cursor of the next.
    let mut seen = Vec::new();
    let mut last: Option<MessageHash> = None;
    let mut pages = Vec::new();
    loop {
        let r = rev(last.as_ref(), limits(3));
        seen.extend(hashes(&r));
        pages.push((r.messages.len(), r.more));
        last = seen.last().cloned();
        if !r.more {
            break;
        }
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, [(3, true), (3, true), (1, false)]);
    // The oldest message as last_hash: nothing older.
    let r = rev(Some(&stored[0]), all());
    assert_eq!((r.messages.len(), r.more), (0, false));
    // Strictly older than last_hash, never repeating it.
    let r = rev(Some(&stored[4]), limits(2));
    assert_eq!((hashes(&r), r.more), (vec![stored[3], stored[2]], true));
    // None, unknown, or another namespace's hash: from the newest.
    for unknown in [None, Some(h(&"Z".repeat(43))), Some(hash_of(&o, 1, b"ns1"))] {
        let r = rev(unknown.as_ref(), limits(2));
        assert_eq!(hashes(&r), newest_first[..2], "{unknown:?}");
    }
    // Size limits count the same way: 183 bytes a message, 400 bytes → 2, more.
    let l = RetrieveLimits {
        max_count: None,
        max_size: Some(400),
    };
    let r = rev(None, l);
    assert_eq!((hashes(&r), r.more), (newest_first[..2].to_vec(), true));
    // Forward with the same cursor: strictly newer, as before.
    let r = s
        .retrieve_in(
            &o,
            0,
            Some(&stored[4]),
            all(),
            RetrieveDirection::Forward,
            NOW,
        )
        .unwrap();
    assert_eq!(hashes(&r), stored[5..]);
}

/// `storage-rpc-addendum.md` A3: with `ExtendNonTrivial` (an explicit `extend: true`) an
/// extension of less than 1 % of the current lifetime is skipped and the message is reported
/// unchanged with its current expiry; plain `Extend` still applies it.
#[test]
fn explicit_extend_skips_trivial_extensions() {
    const HOUR: i64 = 3600 * 1000;
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let o = owner(1);
    // 30-day messages stored at NOW: lifetime 2 592 000 000 ms, 1 % = 7.2 h.
    let a = msg(&o, 0, b"a", NOW, NOW + 30 * DAY);
    let b = msg(&o, 0, b"b", NOW, NOW + 30 * DAY);
    for m in [&a, &b] {
        s.store(m.clone(), NOW).wait().unwrap();
    }
    // At NOW + 1 day the 30-day cap allows up to NOW + 31 days.
    let now = NOW + DAY;
    let req = |mode, hashes: Vec<MessageHash>, expiry| ExpireRequest {
        owner: o,
        hashes,
        expiry,
        mode,
    };
    let both = vec![a.hash, b.hash];
    // + 1 h: trivial, skipped.
    let one_hour = NOW + 30 * DAY + HOUR;
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                both.clone(),
                ExpiryTarget::Single(one_hour),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert_eq!(out.applied_expiry_ms, Some(one_hour));
    assert!(out.updated.is_empty());
    let mut unchanged = std::collections::BTreeMap::new();
    unchanged.insert(a.hash, NOW + 30 * DAY);
    unchanged.insert(b.hash, NOW + 30 * DAY);
    assert_eq!(out.unchanged, unchanged);
    // The skipped messages were not rewritten: same expiry, same replication version.
    let before = s.bucket_entries(&o, 0, now).unwrap();
    assert!(
        before
            .messages
            .iter()
            .all(|m| m.expiry_ms == NOW + 30 * DAY && m.expiry_version == NOW)
    );
    // Exactly 1 %: 100 × 7.2 h = the lifetime, not trivial.
    let exactly = NOW + 30 * DAY + 7 * HOUR + HOUR / 5;
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                vec![a.hash],
                ExpiryTarget::Single(exactly),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert_eq!(
        out.updated,
        [UpdatedExpiry {
            hash: a.hash,
            expiry_ms: exactly
        }]
    );
    // One millisecond less is trivial.
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                vec![b.hash],
                ExpiryTarget::Single(exactly - 1),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert!(out.updated.is_empty());
    assert_eq!(out.unchanged.get(&b.hash), Some(&(NOW + 30 * DAY)));
    // + 8 h: applied.
    let eight = NOW + 30 * DAY + 8 * HOUR;
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                vec![b.hash],
                ExpiryTarget::Single(eight),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert_eq!(out.updated.len(), 1);
    assert!(out.unchanged.is_empty());
    // Multi-expiry: each message against its own (capped) value.
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                both.clone(),
                ExpiryTarget::PerMessage(vec![exactly + HOUR, eight + 9 * HOUR]),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert_eq!(
        out.updated,
        [UpdatedExpiry {
            hash: b.hash,
            expiry_ms: eight + 9 * HOUR
        }]
    );
    assert_eq!(out.unchanged.get(&a.hash), Some(&exactly));
    // Plain Extend (a subaccount's implicit extend-only) applies the trivial extension.
    let out = s
        .expire(
            req(
                ExpireMode::Extend,
                vec![a.hash],
                ExpiryTarget::Single(exactly + 1),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert_eq!(out.updated.len(), 1);
    // Never lowers, never resurrects: unknown hashes are in neither list.
    let out = s
        .expire(
            req(
                ExpireMode::ExtendNonTrivial,
                vec![h(&"Q".repeat(43))],
                ExpiryTarget::Single(eight),
            ),
            now,
        )
        .wait()
        .unwrap();
    assert!(out.updated.is_empty() && out.unchanged.is_empty());
}
