//! Property: devices of one account that edit offline, then exchange their config messages in
//! any order, with duplicates and lost pushes retried, all end with the same config, and no
//! delete is undone (`groups-config-attachments.md` §2.7).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use umbra_config::{ConfigHash, ConfigState, Dict, Push, Scalar, SwarmHash, Value};

const SEED: [u8; 32] = [42; 32];

/// The account's swarm for one namespace: stored messages by hash; a store of identical bytes
/// is one message (the storage server's hash is over the bytes).
#[derive(Default)]
struct Swarm {
    stored: BTreeMap<SwarmHash, Vec<u8>>,
    /// Every message ever stored, for replays of old messages.
    history: BTreeMap<SwarmHash, Vec<u8>>,
}

fn swarm_hash(bytes: &[u8]) -> SwarmHash {
    SwarmHash(hex::encode(ConfigHash::of(bytes).0))
}

impl Swarm {
    /// One store request: the messages, then the deletes, as the storage RPC batch does.
    fn store(&mut self, push: &Push) -> Vec<SwarmHash> {
        let hashes: Vec<SwarmHash> = push.messages.iter().map(|m| swarm_hash(m)).collect();
        for (h, m) in hashes.iter().zip(&push.messages) {
            self.stored.insert(h.clone(), m.clone());
            self.history.insert(h.clone(), m.clone());
        }
        for h in &push.obsolete {
            if !hashes.contains(h) {
                self.stored.remove(h);
            }
        }
        hashes
    }
}

/// Keys `s0..s3` are set and deleted freely; keys `d0..d3` exist from the start and are only
/// ever deleted, so once one is deleted it must stay deleted.
#[derive(Debug, Clone)]
enum Edit {
    Set(u8, i64),
    Delete(u8),
    DeleteOnly(u8),
    Nested(u8, u8, i64),
    SetAdd(i64),
    SetRemove(i64),
    /// A push whose request never reached the swarm (the device moves on to a new seqno).
    LostPush,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0u8..4, 0i64..3).prop_map(|(k, v)| Edit::Set(k, v)),
        (0u8..4).prop_map(Edit::Delete),
        (0u8..4).prop_map(Edit::DeleteOnly),
        (0u8..3, 0u8..3, 0i64..3).prop_map(|(a, b, v)| Edit::Nested(a, b, v)),
        (0i64..4).prop_map(Edit::SetAdd),
        (0i64..4).prop_map(Edit::SetRemove),
        Just(Edit::LostPush),
    ]
}

fn key(prefix: &str, k: u8) -> Vec<u8> {
    format!("{prefix}{k}").into_bytes()
}

fn apply(data: &mut Dict, e: &Edit) {
    match e {
        Edit::Set(k, v) => {
            data.insert(key("s", *k), Value::from(*v));
        }
        Edit::Delete(k) => {
            data.remove(&key("s", *k));
        }
        Edit::DeleteOnly(k) => {
            data.remove(&key("d", *k));
        }
        Edit::Nested(a, b, v) => {
            let entry = data
                .entry(key("c", *a))
                .or_insert_with(|| Value::Dict(Dict::new()));
            if let Value::Dict(d) = entry {
                d.insert(key("f", *b), Value::from(*v));
            }
        }
        Edit::SetAdd(x) | Edit::SetRemove(x) => {
            let entry = data
                .entry(b"set".to_vec())
                .or_insert_with(|| Value::Set(Default::default()));
            if let Value::Set(s) = entry {
                if matches!(e, Edit::SetAdd(_)) {
                    s.insert(Scalar::Int(*x));
                } else {
                    s.remove(&Scalar::Int(*x));
                }
            }
        }
        Edit::LostPush => {}
    }
}

/// One step of the exchange.
#[derive(Debug, Clone)]
enum Step {
    /// The device retrieves everything stored, in an order given by `rotate`, split in two
    /// batches at `split`, with the first `dups` messages delivered again in the second.
    Pull {
        dev: usize,
        rotate: usize,
        split: usize,
        dups: usize,
    },
    /// The device pushes what it has; `lost` drops the request (to be retried later).
    Push { dev: usize, lost: bool },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..n, 0usize..8, 0usize..8, 0usize..3).prop_map(|(dev, rotate, split, dups)| {
            Step::Pull {
                dev,
                rotate,
                split,
                dups,
            }
        }),
        (0..n, proptest::bool::weighted(0.3)).prop_map(|(dev, lost)| Step::Push { dev, lost }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<Vec<Edit>>, Vec<Step>)> {
    (2usize..=5).prop_flat_map(|n| {
        (
            proptest::collection::vec(proptest::collection::vec(edit(), 0..6), n),
            proptest::collection::vec(step(n), 0..24),
        )
    })
}

fn pull(dev: &mut ConfigState, swarm: &Swarm, rotate: usize, split: usize, dups: usize) {
    let mut all: Vec<(SwarmHash, &[u8])> = swarm
        .stored
        .iter()
        .map(|(h, m)| (h.clone(), m.as_slice()))
        .collect();
    if !all.is_empty() {
        let r = rotate % all.len();
        all.rotate_left(r);
    }
    let split = split.min(all.len());
    let (first, second) = all.split_at(split);
    let mut second = second.to_vec();
    second.extend(first.iter().take(dups).cloned());
    for batch in [first.to_vec(), second] {
        let report = dev.merge(&batch);
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    }
}

fn push(dev: &mut ConfigState, swarm: &mut Swarm, lost: bool) {
    if let Some(p) = dev.push().unwrap()
        && !lost
    {
        let hashes = swarm.store(&p);
        dev.confirm_pushed(p.seqno, &hashes);
    }
}

/// Runs a scenario: a common start, offline edits, the exchange `steps`, then rounds of sync
/// until nobody has anything to push. `lockstep` syncs in rounds where every device pulls, then
/// every device pushes (devices online together); otherwise one device after the other.
/// Returns whether the deleted keys stayed deleted; fails on anything else.
fn run(edits: &[Vec<Edit>], steps: &[Step], lockstep: bool) -> Result<bool, TestCaseError> {
    let n = edits.len();
    let mut swarm = Swarm::default();
    // A common start: one device creates d0..d3, every device syncs it.
    let mut devices: Vec<ConfigState> = (0..n)
        .map(|_| ConfigState::new(&SEED, "Contacts").unwrap())
        .collect();
    devices[0].edit(|d| {
        for k in 0..4 {
            d.insert(key("d", k), Value::from(1));
        }
    });
    push(&mut devices[0], &mut swarm, false);
    for dev in devices.iter_mut() {
        pull(dev, &swarm, 0, 0, 0);
    }

    // Offline edits.
    let mut deleted = BTreeSet::new();
    for (dev, list) in devices.iter_mut().zip(edits) {
        for e in list {
            if let Edit::DeleteOnly(k) = e {
                deleted.insert(key("d", *k));
            }
            if let Edit::LostPush = e {
                push(dev, &mut swarm, true);
            } else {
                dev.edit(|d| apply(d, e));
            }
        }
    }

    // Exchange in the generated order.
    for s in steps {
        match *s {
            Step::Pull {
                dev,
                rotate,
                split,
                dups,
            } => pull(&mut devices[dev], &swarm, rotate, split, dups),
            Step::Push { dev, lost } => push(&mut devices[dev], &mut swarm, lost),
        }
    }

    // Then everyone syncs until nobody has anything to push.
    let mut rounds = 0;
    loop {
        let mut pushed = false;
        if lockstep {
            for dev in devices.iter_mut() {
                pull(dev, &swarm, rounds, rounds % 3, rounds % 2);
            }
        }
        for dev in devices.iter_mut() {
            if !lockstep {
                pull(dev, &swarm, rounds, 0, 0);
            }
            if dev.needs_push() {
                push(dev, &mut swarm, false);
                pushed = true;
            }
        }
        if !pushed {
            break;
        }
        rounds += 1;
        prop_assert!(rounds < 20, "no convergence after 20 rounds");
    }
    // One more pull each: everyone has seen the last pushes.
    for dev in devices.iter_mut() {
        pull(dev, &swarm, 0, 0, 0);
        prop_assert!(!dev.needs_push());
        // Left-over obsolete messages go in a delete of their own.
        let gone = dev.deletable_hashes();
        for h in &gone {
            swarm.stored.remove(h);
        }
        dev.confirm_deleted(&gone);
    }

    let first = devices[0].data().clone();
    for dev in &devices {
        prop_assert_eq!(dev.data(), &first);
        prop_assert_eq!(dev.seqno(), devices[0].seqno());
    }
    prop_assert_eq!(
        swarm.stored.len(),
        1,
        "one current message left in the swarm"
    );
    let deletes_stayed = deleted.iter().all(|k| !first.contains_key(k));

    // Old messages delivered again, in any order and twice, change nothing.
    let old: Vec<(SwarmHash, &[u8])> = swarm
        .history
        .iter()
        .map(|(h, m)| (h.clone(), m.as_slice()))
        .collect();
    for (i, dev) in devices.iter_mut().enumerate() {
        let mut replay = old.clone();
        if !replay.is_empty() {
            let r = i % replay.len();
            replay.rotate_left(r);
        }
        replay.extend(old.iter().take(2).cloned());
        dev.merge(&replay);
        prop_assert_eq!(dev.data(), &first);
        prop_assert!(!dev.needs_push());
    }
    Ok(deletes_stayed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any order of pulls and pushes, duplicates, lost pushes retried: every device ends with
    /// the same data, one message is left in the swarm, and replaying old messages later
    /// changes nothing (a merged delete is never undone by a later merge).
    #[test]
    fn devices_converge_in_any_order((edits, steps) in scenario()) {
        run(&edits, &steps, false)?;
    }

    /// Devices that come online together (every device pulls, then every device pushes, each
    /// pull in its own order with duplicates): no delete is undone either. (In any order, a
    /// delete can be lost when a device's unpushed change is 5 or more seqnos behind a branch
    /// that no longer lists the delete: Session's lag window, §2.6–2.7, not this crate's.)
    #[test]
    fn deletes_stay_deleted((edits, _) in scenario()) {
        prop_assert!(run(&edits, &[], true)?, "a deleted key came back");
    }
}
