//! The signed node list: signatures, tampering, epochs, thresholds, bounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use proptest::prelude::*;
use umbra_crypto::{AccountId, Ed25519PublicKey, Identity, Signature, X25519PublicKey};
use umbra_nodelist::NodeListError;
use umbra_nodelist::list::{
    ListVerifier, MAX_LIST_SIGNATURES, NodeEntry, NodeList, SignedNodeList, TrustPolicy,
};

/// A deterministic identity for test node `i` (the same seeds as the registry's tests).
fn node_identity(i: u32) -> Identity {
    let mut seed = [0u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    seed[31] = 0x4e;
    Identity::from_seed(&seed)
}

fn registry_identity() -> Identity {
    Identity::from_seed(&[0x52; 32])
}

fn entry(i: u32, swarm: u64) -> NodeEntry {
    let id = node_identity(i);
    NodeEntry {
        pubkey_ed25519: id.ed25519_public(),
        pubkey_x25519: id.x25519_public(),
        public_ip: Ipv4Addr::new(127, 0, 0, 1),
        storage_port: 30_000 + u16::try_from(i).unwrap(),
        storage_lmq_port: 31_000 + u16::try_from(i).unwrap(),
        swarm_id: swarm,
        active: true,
        version: [2, 8, 0],
    }
}

fn list(epoch: u64, n: u32) -> NodeList {
    NodeList::new(
        epoch,
        epoch.wrapping_mul(1_000),
        (0..n).map(|i| entry(i, u64::from(i % 2) * 1000)).collect(),
    )
}

fn policy() -> TrustPolicy {
    TrustPolicy::single(registry_identity().ed25519_public())
}

#[test]
fn a_signed_list_verifies_and_survives_json() {
    let signed = SignedNodeList::sign(list(3, 6), &registry_identity());
    policy().verify(&signed).unwrap();
    let json = serde_json::to_vec(&signed).unwrap();
    let back = SignedNodeList::from_json(&json, 1 << 20).unwrap();
    assert_eq!(back, signed);
    policy().verify(&back).unwrap();
}

#[test]
fn tampered_lists_are_refused() {
    let signed = SignedNodeList::sign(list(3, 6), &registry_identity());
    type Tamper = Box<dyn Fn(&mut SignedNodeList)>;
    let cases: Vec<Tamper> = vec![
        Box::new(|s| s.list.epoch += 1),
        Box::new(|s| s.list.issued_at_ms += 1),
        Box::new(|s| s.list.nodes[2].storage_port += 1),
        Box::new(|s| s.list.nodes[0].swarm_id = 7),
        Box::new(|s| s.list.nodes[1].active = false),
        Box::new(|s| s.list.nodes[4].public_ip = Ipv4Addr::new(10, 0, 0, 1)),
        Box::new(|s| {
            let mut b = s.list.nodes[5].pubkey_x25519.to_bytes();
            b[0] ^= 1;
            s.list.nodes[5].pubkey_x25519 = X25519PublicKey::from_bytes(b);
        }),
        Box::new(|s| s.list.nodes[3].version = [9, 9, 9]),
        Box::new(|s| {
            s.list.nodes.pop();
        }),
        Box::new(|s| {
            let mut b = s.signatures[0].signature.to_bytes();
            b[10] ^= 1;
            s.signatures[0].signature = Signature::from_bytes(b);
        }),
    ];
    for (i, tamper) in cases.iter().enumerate() {
        let mut t = signed.clone();
        tamper(&mut t);
        let err = policy().verify(&t).unwrap_err();
        assert!(
            matches!(err, NodeListError::BadSignature { .. }),
            "case {i}: {err}"
        );
    }
}

#[test]
fn tampering_the_json_text_is_refused() {
    let signed = SignedNodeList::sign(list(3, 4), &registry_identity());
    let json = serde_json::to_string(&signed).unwrap();
    let port = signed.list.nodes[1].storage_port;
    let tampered = json.replacen(
        &format!("\"storage_port\":{port}"),
        "\"storage_port\":443",
        1,
    );
    assert_ne!(tampered, json);
    let parsed = SignedNodeList::from_json(tampered.as_bytes(), 1 << 20).unwrap();
    assert!(policy().verify(&parsed).is_err());
}

#[test]
fn lists_signed_by_someone_else_are_refused() {
    let mallory = Identity::from_seed(&[0x66; 32]);
    let signed = SignedNodeList::sign(list(3, 4), &mallory);
    assert!(matches!(
        policy().verify(&signed),
        Err(NodeListError::NotEnoughSignatures { got: 0, need: 1 })
    ));
    // Claiming to be the registry with Mallory's signature fails the signature check.
    let mut forged = signed;
    forged.signatures[0].signer = registry_identity().ed25519_public();
    assert!(matches!(
        policy().verify(&forged),
        Err(NodeListError::BadSignature { .. })
    ));
    // No signature at all.
    let mut bare = forged;
    bare.signatures.clear();
    assert!(matches!(
        policy().verify(&bare),
        Err(NodeListError::NotEnoughSignatures { got: 0, need: 1 })
    ));
}

#[test]
fn older_epochs_and_conflicting_lists_are_refused() {
    let reg = registry_identity();
    let mut v = ListVerifier::new(policy());
    assert!(v.accept(SignedNodeList::sign(list(5, 3), &reg)).unwrap());
    // The same list again is fine, and changes nothing.
    assert!(!v.accept(SignedNodeList::sign(list(5, 3), &reg)).unwrap());
    assert!(matches!(
        v.accept(SignedNodeList::sign(list(4, 3), &reg)),
        Err(NodeListError::OlderEpoch { got: 4, seen: 5 })
    ));
    assert!(matches!(
        v.accept(SignedNodeList::sign(list(5, 4), &reg)),
        Err(NodeListError::ConflictingList { epoch: 5 })
    ));
    assert_eq!(v.current().unwrap().list, list(5, 3));
    assert!(v.accept(SignedNodeList::sign(list(6, 4), &reg)).unwrap());
    assert_eq!(v.seen_epoch(), Some(6));
    // A tampered newer list does not move the verifier.
    let mut bad = SignedNodeList::sign(list(9, 4), &reg);
    bad.list.epoch = 10;
    assert!(v.accept(bad).is_err());
    assert_eq!(v.seen_epoch(), Some(6));
    // After a restart, the remembered epoch still holds.
    let mut v2 = ListVerifier::with_seen_epoch(policy(), 6);
    assert!(v2.accept(SignedNodeList::sign(list(5, 3), &reg)).is_err());
    assert!(v2.accept(SignedNodeList::sign(list(6, 3), &reg)).unwrap());
}

#[test]
fn several_signatures_and_thresholds() {
    let regs: Vec<Identity> = (1..=3u8).map(|b| Identity::from_seed(&[b; 32])).collect();
    let keys: Vec<Ed25519PublicKey> = regs.iter().map(Identity::ed25519_public).collect();
    let two_of_three = TrustPolicy::threshold(keys.clone(), 2).unwrap();
    let mut signed = SignedNodeList::sign(list(1, 5), &regs[0]);
    assert!(matches!(
        two_of_three.verify(&signed),
        Err(NodeListError::NotEnoughSignatures { got: 1, need: 2 })
    ));
    // The same signer twice counts once.
    signed.add_signature(&regs[0]);
    assert_eq!(signed.signatures.len(), 1);
    let mut dup = signed.clone();
    dup.signatures.push(dup.signatures[0].clone());
    assert!(two_of_three.verify(&dup).is_err());
    signed.add_signature(&regs[2]);
    two_of_three.verify(&signed).unwrap();
    // An extra signature by an unknown key is ignored.
    signed.add_signature(&Identity::from_seed(&[9; 32]));
    two_of_three.verify(&signed).unwrap();
    // Each single registry accepts the co-signed list.
    TrustPolicy::single(keys[0]).verify(&signed).unwrap();
    assert!(TrustPolicy::threshold(keys.clone(), 0).is_err());
    assert!(TrustPolicy::threshold(keys, 4).is_err());
}

#[test]
fn shape_limits() {
    let reg = registry_identity();
    let mut unsorted = SignedNodeList::sign(list(1, 4), &reg);
    unsorted.list.nodes.swap(0, 1);
    unsorted.add_signature(&reg);
    assert!(matches!(
        policy().verify(&unsorted),
        Err(NodeListError::ListNotCanonical)
    ));
    let mut dup = list(1, 3);
    dup.nodes.push(dup.nodes[2].clone());
    let dup = SignedNodeList::sign(dup, &reg);
    assert!(matches!(
        policy().verify(&dup),
        Err(NodeListError::ListNotCanonical)
    ));
    let mut v2 = list(1, 3);
    v2.version = 2;
    assert!(matches!(
        policy().verify(&SignedNodeList::sign(v2, &reg)),
        Err(NodeListError::ListVersion { got: 2, .. })
    ));
    let mut many = SignedNodeList::sign(list(1, 3), &reg);
    for _ in 0..MAX_LIST_SIGNATURES {
        many.signatures.push(many.signatures[0].clone());
    }
    assert!(matches!(
        policy().verify(&many),
        Err(NodeListError::ListTooLarge {
            what: "signatures",
            ..
        })
    ));
    assert!(matches!(
        SignedNodeList::from_json(&[b' '; 100], 10),
        Err(NodeListError::ListTooLarge { what: "bytes", .. })
    ));
    assert!(SignedNodeList::from_json(b"{\"list\":", 100).is_err());
}

#[test]
fn clients_find_an_accounts_swarm_in_the_list() {
    let l = list(1, 10); // swarms 0 and 1000, five nodes each
    let mut account = [0u8; 33];
    account[0] = 0x05;
    account[32] = 0x10; // space 16: nearest swarm 0
    let (id, members) = l
        .swarm_for_account(&AccountId::new(account))
        .unwrap()
        .unwrap();
    assert_eq!(id, 0);
    assert_eq!(members.len(), 5);
    account[31] = 0x03; // space 0x310 = 784: nearest 1000
    assert_eq!(
        l.swarm_for_account(&AccountId::new(account))
            .unwrap()
            .unwrap()
            .0,
        1000
    );
    // A wrong-length account id cannot even be made.
    assert!(AccountId::try_from(&account[..5]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn any_list_round_trips_and_any_flipped_signature_bit_is_refused(
        n in 0u32..12, epoch in any::<u64>(), byte in 0usize..64, bit in 0u8..8,
    ) {
        let signed = SignedNodeList::sign(list(epoch, n), &registry_identity());
        let back = SignedNodeList::from_json(&serde_json::to_vec(&signed).unwrap(), 1 << 20).unwrap();
        prop_assert!(policy().verify(&back).is_ok());
        let mut bad = back;
        let mut b = bad.signatures[0].signature.to_bytes();
        b[byte] ^= 1 << bit;
        bad.signatures[0].signature = Signature::from_bytes(b);
        prop_assert!(policy().verify(&bad).is_err());
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedNodeList::from_json(&bytes, 1 << 20);
    }
}
