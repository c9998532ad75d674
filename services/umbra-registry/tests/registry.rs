//! The registry state machine: admission checks, swarm formation over scripted joins and
//! departures, inactivity, persistence.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{T0, announcement, node_identity, register_req, registry_identity};
use umbra_crypto::{Ed25519PublicKey, Identity};
use umbra_nodelist::NodeListError;
use umbra_nodelist::api::{HeartbeatRequest, LeaveRequest, RegisterRequest};
use umbra_nodelist::list::{ListVerifier, TrustPolicy};
use umbra_registry::RegistryError;
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::store::Store;
use umbra_swarm::{MAX_SWARM_ID, UNASSIGNED_SWARM_ID};

const HALF: u64 = MAX_SWARM_ID / 2;

fn config() -> RegistryConfig {
    RegistryConfig {
        inactive_after_ms: 10_000,
        heartbeat_interval_ms: 2_000,
        max_clock_skew_ms: 30_000,
        seed: 77,
    }
}

fn open(now: u64) -> Registry {
    Registry::open(
        Store::open_in_memory().unwrap(),
        registry_identity(),
        config(),
        now,
    )
    .unwrap()
}

fn rpk() -> Ed25519PublicKey {
    registry_identity().ed25519_public()
}

fn sizes(reg: &Registry) -> BTreeMap<u64, usize> {
    let mut s = BTreeMap::new();
    for n in reg.current().list.nodes.iter().filter(|n| n.in_swarm()) {
        *s.entry(n.swarm_id).or_insert(0) += 1;
    }
    s
}

fn swarm_of(reg: &Registry, i: u32) -> u64 {
    reg.current()
        .list
        .node(&node_identity(i).ed25519_public())
        .unwrap()
        .swarm_id
}

fn register_all(reg: &mut Registry, nodes: impl IntoIterator<Item = u32>, now: u64) {
    for i in nodes {
        reg.register(&register_req(i, &rpk(), now), now).unwrap();
    }
}

#[test]
fn a_good_registration_is_accepted() {
    let mut reg = open(T0);
    let e0 = reg.epoch();
    let st = reg.register(&register_req(1, &rpk(), T0), T0 + 5).unwrap();
    assert!(st.active);
    assert_eq!(st.swarm_id, 0);
    assert_eq!(st.swarm, "0");
    assert_eq!(st.epoch, e0 + 1);
    TrustPolicy::single(rpk()).verify(reg.current()).unwrap();
}

#[test]
fn a_bad_signature_is_refused() {
    let mut reg = open(T0);
    let mut req = register_req(1, &rpk(), T0);
    req.announcement.storage_port += 1; // changed after signing
    let err = reg.register(&req, T0).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NodeList(NodeListError::BadSignature { what: "register" })
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "register signature verification failed");
    let mut req = register_req(1, &rpk(), T0);
    let mut sig = req.signature.to_bytes();
    sig[0] ^= 1;
    req.signature = umbra_crypto::Signature::from_bytes(sig);
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(NodeListError::BadSignature { .. }))
    ));
    // Signed for another registry.
    let other = Identity::from_seed(&[3; 32]).ed25519_public();
    let req = register_req(1, &other, T0);
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(NodeListError::BadSignature { .. }))
    ));
    assert!(reg.current().list.nodes.is_empty());
}

#[test]
fn a_stale_timestamp_is_refused() {
    let mut reg = open(T0);
    let req = register_req(1, &rpk(), T0 - 31_000);
    let err = reg.register(&req, T0).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NodeList(NodeListError::StaleTimestamp {
                skew_ms: 31_000,
                max_ms: 30_000,
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("too far from the registry's clock")
    );
    let req = register_req(1, &rpk(), T0 + 31_000);
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(
            NodeListError::StaleTimestamp { .. }
        ))
    ));
    let hb = HeartbeatRequest::new(&node_identity(1), &rpk(), T0 - 60_000);
    reg.register(&register_req(1, &rpk(), T0), T0).unwrap();
    assert!(matches!(
        reg.heartbeat(&hb, T0),
        Err(RegistryError::NodeList(
            NodeListError::StaleTimestamp { .. }
        ))
    ));
}

#[test]
fn keys_that_do_not_match_are_refused() {
    let mut reg = open(T0);
    // Announcing someone else's X25519 key: the proof cannot match it.
    let mut req = register_req(1, &rpk(), T0);
    req.pubkey_x25519 = node_identity(2).x25519_public();
    let err = reg.register(&req, T0).unwrap_err();
    // The signature covers the X25519 key too, so re-sign to reach the proof check.
    assert!(matches!(
        err,
        RegistryError::NodeList(NodeListError::BadSignature { .. })
    ));
    let node = node_identity(1);
    let mut forged = req.clone();
    forged.signature = node.sign(&forged.signed_bytes(&rpk()));
    let err = reg.register(&forged, T0).unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NodeList(NodeListError::X25519ProofMismatch)
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the X25519 key proof does not match the announced X25519 public key"
    );
    // An Ed25519 key that did not sign.
    let mut req = register_req(1, &rpk(), T0);
    req.pubkey_ed25519 = node_identity(3).ed25519_public();
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(NodeListError::BadSignature { .. }))
    ));
    // A small-order X25519 key (all zeros) is unusable.
    let mut zero = register_req(1, &rpk(), T0);
    zero.pubkey_x25519 = umbra_crypto::X25519PublicKey::from_bytes([0; 32]);
    zero.signature = node.sign(&zero.signed_bytes(&rpk()));
    assert!(matches!(
        reg.register(&zero, T0),
        Err(RegistryError::NodeList(NodeListError::BadX25519Key))
    ));
}

#[test]
fn bad_announcements_and_replays_are_refused() {
    let mut reg = open(T0);
    let mut a = announcement(1);
    a.public_ip = std::net::Ipv4Addr::UNSPECIFIED;
    let req = RegisterRequest::new(&node_identity(1), &rpk(), a, T0).unwrap();
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(NodeListError::BadAnnouncement(_)))
    ));
    let mut a = announcement(1);
    a.storage_lmq_port = 0;
    let req = RegisterRequest::new(&node_identity(1), &rpk(), a, T0).unwrap();
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::NodeList(NodeListError::BadAnnouncement(_)))
    ));
    let req = register_req(1, &rpk(), T0);
    reg.register(&req, T0).unwrap();
    assert!(matches!(
        reg.register(&req, T0),
        Err(RegistryError::ReplayedTimestamp { .. })
    ));
    let hb = HeartbeatRequest::new(&node_identity(1), &rpk(), T0 + 1);
    reg.heartbeat(&hb, T0 + 1).unwrap();
    assert!(matches!(
        reg.heartbeat(&hb, T0 + 2),
        Err(RegistryError::ReplayedTimestamp { .. })
    ));
    let stranger = HeartbeatRequest::new(&node_identity(9), &rpk(), T0);
    assert!(matches!(
        reg.heartbeat(&stranger, T0),
        Err(RegistryError::NotRegistered)
    ));
}

#[test]
fn twelve_nodes_form_one_swarm_and_fourteen_two() {
    let mut reg = open(T0);
    register_all(&mut reg, 0..12, T0);
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 12)]));
    register_all(&mut reg, 12..14, T0);
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 7), (HALF, 7)]));
}

#[test]
fn fewer_nodes_than_the_minimum_form_one_swarm() {
    let mut reg = open(T0);
    register_all(&mut reg, 0..3, T0);
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 3)]));
}

#[test]
fn every_change_bumps_the_epoch_and_verifies() {
    let mut reg = open(T0);
    let mut v = ListVerifier::new(TrustPolicy::single(rpk()));
    let mut last = reg.epoch();
    v.accept(reg.current().clone()).unwrap();
    for i in 0..16 {
        reg.register(&register_req(i, &rpk(), T0), T0).unwrap();
        assert_eq!(reg.epoch(), last + 1);
        last = reg.epoch();
        assert!(v.accept(reg.current().clone()).unwrap());
    }
    // Re-registering unchanged does not make a new list; a new port does.
    reg.register(&register_req(3, &rpk(), T0 + 1), T0 + 1)
        .unwrap();
    assert_eq!(reg.epoch(), last);
    let mut a = announcement(3);
    a.storage_port = 40_000;
    let req = RegisterRequest::new(&node_identity(3), &rpk(), a, T0 + 2).unwrap();
    let before = swarm_of(&reg, 3);
    reg.register(&req, T0 + 2).unwrap();
    assert_eq!(reg.epoch(), last + 1);
    assert_eq!(
        swarm_of(&reg, 3),
        before,
        "an address change does not move a node"
    );
}

/// Nodes 0..14 in two swarms of 7; heartbeats from `alive` only; time passes beyond the
/// inactivity limit.
fn after_silence(alive: &dyn Fn(u32) -> bool) -> (Registry, Vec<u32>, Vec<u32>) {
    let mut reg = open(T0);
    register_all(&mut reg, 0..14, T0);
    let a: Vec<u32> = (0..14).filter(|&i| swarm_of(&reg, i) == 0).collect();
    let b: Vec<u32> = (0..14).filter(|&i| swarm_of(&reg, i) == HALF).collect();
    let now = T0 + 11_000;
    for i in 0..14 {
        if alive(i) {
            let hb = HeartbeatRequest::new(&node_identity(i), &rpk(), now);
            reg.heartbeat(&hb, now).unwrap();
        }
    }
    (reg, a, b)
}

#[test]
fn silent_nodes_become_inactive_and_a_starving_swarm_dissolves() {
    // Five of swarm 0's seven stop: 2 left, deficit 3 > excess 2 of the other swarm.
    let mut a_dead = Vec::new();
    let (mut reg, a, b) = after_silence(&|_| true);
    a_dead.extend_from_slice(&a[..5]);
    let (mut reg2, _, _) = after_silence(&|i| !a_dead.contains(&i));
    assert!(!reg.expire(T0 + 12_000).unwrap(), "everyone heartbeated");
    let epoch = reg2.epoch();
    assert!(reg2.expire(T0 + 12_000).unwrap());
    assert_eq!(reg2.epoch(), epoch + 1);
    assert_eq!(sizes(&reg2), BTreeMap::from([(HALF, 9)]));
    for &i in &a[..5] {
        let n = reg2
            .current()
            .list
            .node(&node_identity(i).ed25519_public())
            .unwrap()
            .clone();
        assert!(!n.active);
        assert_eq!(n.swarm_id, UNASSIGNED_SWARM_ID);
    }
    for &i in a[5..].iter().chain(&b) {
        assert_eq!(swarm_of(&reg2, i), HALF);
    }
    // One comes back with a heartbeat and rejoins (the only swarm).
    let now = T0 + 13_000;
    let hb = HeartbeatRequest::new(&node_identity(a[0]), &rpk(), now);
    let st = reg2.heartbeat(&hb, now).unwrap();
    assert!(st.active);
    assert_eq!(st.swarm_id, HALF);
    assert_eq!(sizes(&reg2), BTreeMap::from([(HALF, 10)]));
    reg.expire(T0 + 12_000).unwrap();
}

#[test]
fn robin_hood_refills_a_swarm_that_lost_three() {
    let mut dead = Vec::new();
    let (probe, a, _) = after_silence(&|_| true);
    drop(probe);
    dead.extend_from_slice(&a[..3]);
    let (mut reg, _, _) = after_silence(&|i| !dead.contains(&i));
    reg.expire(T0 + 12_000).unwrap();
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 5), (HALF, 6)]));
}

#[test]
fn a_clean_leave_takes_effect_at_once() {
    let mut reg = open(T0);
    register_all(&mut reg, 0..6, T0);
    let leave = LeaveRequest::new(&node_identity(2), &rpk(), T0 + 10);
    let st = reg.leave(&leave, T0 + 10).unwrap();
    assert!(!st.active);
    assert_eq!(st.swarm_id, UNASSIGNED_SWARM_ID);
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 5)]));
    // Registering again rejoins.
    let st = reg
        .register(&register_req(2, &rpk(), T0 + 20), T0 + 20)
        .unwrap();
    assert!(st.active);
    assert_eq!(sizes(&reg), BTreeMap::from([(0, 6)]));
}

#[test]
fn same_events_and_seed_give_the_same_lists() {
    let run = || {
        let mut reg = open(T0);
        register_all(&mut reg, 0..25, T0);
        let leave = LeaveRequest::new(&node_identity(4), &rpk(), T0 + 1);
        reg.leave(&leave, T0 + 1).unwrap();
        register_all(&mut reg, 30..35, T0 + 2);
        reg.current().clone()
    };
    assert_eq!(run(), run());
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.sqlite");
    let (epoch, list) = {
        let mut reg = Registry::open(
            Store::open(&path).unwrap(),
            registry_identity(),
            config(),
            T0,
        )
        .unwrap();
        register_all(&mut reg, 0..14, T0);
        (reg.epoch(), reg.current().clone())
    };
    // Restart much later: nodes get a grace period instead of being expired at once.
    let later = T0 + 3_600_000;
    let mut reg = Registry::open(
        Store::open(&path).unwrap(),
        registry_identity(),
        config(),
        later,
    )
    .unwrap();
    assert_eq!(reg.epoch(), epoch);
    assert_eq!(reg.current(), &list);
    assert!(!reg.expire(later + 1_000).unwrap());
    // Replay protection survives too.
    assert!(matches!(
        reg.register(&register_req(1, &rpk(), T0), T0),
        Err(RegistryError::ReplayedTimestamp { .. })
    ));
    // Heartbeats continue; silence still expires.
    let hb = HeartbeatRequest::new(&node_identity(1), &rpk(), later + 1);
    reg.heartbeat(&hb, later + 1).unwrap();
    assert!(reg.expire(later + 20_000).unwrap());
    assert!(reg.epoch() > epoch);
    drop(reg);
    // A different registry key re-signs with a newer epoch; lists stay monotonic.
    let other = Identity::from_seed(&[0x99; 32]);
    let reg = Registry::open(
        Store::open(&path).unwrap(),
        Identity::from_seed(&[0x99; 32]),
        config(),
        later,
    )
    .unwrap();
    assert!(reg.epoch() > epoch + 1);
    TrustPolicy::single(other.ed25519_public())
        .verify(reg.current())
        .unwrap();
}
