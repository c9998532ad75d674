//! Property tests: paging never skips or repeats a message; expiry is never violated; the
//! store agrees with a simple in-memory model.

#![allow(
    clippy::cloned_ref_to_slice_refs,
    clippy::unwrap_used,
    clippy::manual_is_multiple_of
)]

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use proptest::prelude::*;
use umbra_store::*;

#[derive(Debug, Clone)]
enum Step {
    /// Store a message of `len` bytes with the given TTL (ms) into namespace `ns`.
    Store { ns: i16, len: usize, ttl: i64 },
    /// Retrieve a page with these limits from the client's cursor.
    Page { count: usize, size: usize },
    /// Delete the message at this index of the model's list (if any).
    Delete { pick: usize },
    /// Let time pass.
    Advance { ms: i64 },
    /// Run the sweep.
    Sweep,
    /// Change the expiry of one message.
    Expire { pick: usize, ttl: i64, mode: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0i16..2, 0usize..300, 1i64..5_000).prop_map(|(ns, len, ttl)| Step::Store { ns, len, ttl }),
        4 => (0usize..6, 0usize..2_000).prop_map(|(count, size)| Step::Page { count, size }),
        1 => any::<usize>().prop_map(|pick| Step::Delete { pick }),
        2 => (1i64..1_500).prop_map(|ms| Step::Advance { ms }),
        1 => Just(Step::Sweep),
        1 => (any::<usize>(), 1i64..5_000, 0u8..4).prop_map(|(pick, ttl, mode)| Step::Expire { pick, ttl, mode }),
    ]
}

#[derive(Debug, Clone)]
struct ModelMsg {
    hash: MessageHash,
    ns: i16,
    ts: i64,
    expiry: i64,
    deleted: bool,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A client paging through namespace 0 with `last_hash` while messages are stored, deleted,
    /// expired and swept: it sees every message that stays alive long enough exactly once, in
    /// insertion order, and never an expired one.
    #[test]
    fn paging_never_skips_or_repeats(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let o = owner(1);
        let mut now = NOW;
        let mut model: Vec<ModelMsg> = Vec::new();
        let mut seen: Vec<MessageHash> = Vec::new();
        let mut seen_set = HashSet::new();
        let mut cursor: Option<MessageHash> = None;
        let mut n = 0u32;
        for st in steps {
            match st {
                Step::Store { ns, len, ttl } => {
                    n += 1;
                    let mut data = n.to_be_bytes().to_vec();
                    data.resize(len.max(4), 7);
                    let m = msg(&o, ns, &data, now, now + ttl);
                    s.store(m.clone(), now).wait().unwrap();
                    model.push(ModelMsg { hash: m.hash, ns, ts: now, expiry: now + ttl, deleted: false });
                }
                Step::Page { count, size } => {
                    let limits = RetrieveLimits {
                        max_count: (count > 0).then_some(count),
                        max_size: (size > 0).then_some(size),
                    };
                    let r = s.retrieve(&o, 0, cursor.as_ref(), limits, now).unwrap();
                    if let Some(c) = limits.max_count {
                        prop_assert!(r.messages.len() <= c.max(1));
                    }
                    for m in &r.messages {
                        prop_assert!(m.expiry_ms > now, "expired message returned");
                        prop_assert!(seen_set.insert(m.hash), "message repeated");
                        seen.push(m.hash);
                    }
                    if let Some(last) = r.messages.last() {
                        cursor = Some(last.hash);
                    }
                    // `more` is exact: without it, nothing live remains after the cursor.
                    if !r.more {
                        let rest = s.retrieve(&o, 0, cursor.as_ref(), RetrieveLimits::default(), now).unwrap();
                        prop_assert!(rest.messages.is_empty(), "more=false but messages remained");
                    }
                }
                Step::Delete { pick } => {
                    if !model.is_empty() {
                        let i = pick % model.len();
                        let d = s.delete(o, vec![model[i].hash], now).wait().unwrap();
                        let live = !model[i].deleted && model[i].expiry > now;
                        prop_assert_eq!(d.len(), usize::from(live));
                        model[i].deleted = true;
                    }
                }
                Step::Advance { ms } => now += ms,
                Step::Sweep => { s.sweep_expired(now).wait().unwrap(); }
                Step::Expire { pick, ttl, mode } => {
                    if !model.is_empty() {
                        let i = pick % model.len();
                        let mode = [ExpireMode::Set, ExpireMode::Shorten, ExpireMode::Extend, ExpireMode::ExtendNonTrivial][usize::from(mode)];
                        let target = now + ttl;
                        let out = s.expire(ExpireRequest {
                            owner: o,
                            hashes: vec![model[i].hash],
                            expiry: ExpiryTarget::Single(target),
                            mode,
                        }, now).wait().unwrap();
                        let m = &mut model[i];
                        let live = !m.deleted && m.expiry > now;
                        let apply = live && match mode {
                            ExpireMode::Set => true,
                            ExpireMode::Shorten => m.expiry > target,
                            ExpireMode::Extend => m.expiry < target,
                            // storage-rpc-addendum.md A3.
                            ExpireMode::ExtendNonTrivial => m.expiry < target && 100 * (target - m.expiry) >= m.expiry - m.ts,
                        };
                        prop_assert_eq!(out.updated.len(), usize::from(apply));
                        prop_assert_eq!(out.unchanged.len(), usize::from(live && !apply));
                        if apply { m.expiry = target; }
                    }
                }
            }
        }
        // Drain the rest: after this, the client must have seen every message of namespace 0 that
        // is still alive, each once, in insertion order.
        loop {
            let r = s.retrieve(&o, 0, cursor.as_ref(), RetrieveLimits { max_count: Some(3), ..Default::default() }, now).unwrap();
            for m in &r.messages {
                prop_assert!(seen_set.insert(m.hash), "message repeated");
                seen.push(m.hash);
            }
            if let Some(last) = r.messages.last() { cursor = Some(last.hash); }
            if !r.more { break; }
        }
        let order: BTreeMap<&str, usize> = model.iter().enumerate().map(|(i, m)| (m.hash.as_str(), i)).collect();
        let idx: Vec<usize> = seen.iter().map(|h| order[h.as_str()]).collect();
        prop_assert!(idx.windows(2).all(|w| w[0] < w[1]), "out of insertion order");
        for m in model.iter().filter(|m| m.ns == 0 && !m.deleted && m.expiry > now) {
            prop_assert!(seen_set.contains(&m.hash), "live message skipped");
        }
        // And the store agrees with the model on what is alive and with which expiry.
        let all: Vec<MessageHash> = model.iter().map(|m| m.hash).collect();
        let ex = s.get_expiries(&o, &all, now).unwrap();
        let want: BTreeMap<MessageHash, i64> = model.iter()
            .filter(|m| !m.deleted && m.expiry > now)
            .map(|m| (m.hash, m.expiry)).collect();
        prop_assert_eq!(ex, want);
    }

    /// Size-limited pages respect the limit except for a lone first message, and `more` is set
    /// exactly when something was left out.
    #[test]
    fn size_limit_is_respected(lens in proptest::collection::vec(0usize..3000, 1..30), max_size in 1usize..20_000, reverse in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        let o = owner(2);
        for (i, len) in lens.iter().enumerate() {
            let mut data = (i as u32).to_be_bytes().to_vec();
            data.resize((*len).max(4), 1);
            s.store(msg(&o, 0, &data, NOW, NOW + DAY), NOW).wait().unwrap();
        }
        let limits = RetrieveLimits {
            max_count: None,
            max_size: Some(max_size),
        };
        // storage-rpc-addendum.md A1/A2: the same rules newest first.
        let (direction, lens) = if reverse {
            (RetrieveDirection::Reverse, lens.iter().rev().copied().collect::<Vec<_>>())
        } else {
            (RetrieveDirection::Forward, lens)
        };
        let r = s.retrieve_in(&o, 0, None, limits, direction, NOW).unwrap();
        let total: usize = r.messages.iter().map(|m| RetrieveLimits::message_size(m.hash.as_str().len(), m.data.len())).sum();
        prop_assert!(!r.messages.is_empty());
        prop_assert!(r.messages.len() == 1 || total <= max_size);
        prop_assert_eq!(r.more, r.messages.len() < lens.len());
        if r.more {
            let next = &lens[r.messages.len()];
            let next_size = RetrieveLimits::message_size(43, (*next).max(4));
            prop_assert!(total + next_size > max_size);
        }
    }
}
