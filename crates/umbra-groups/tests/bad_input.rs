//! Keys messages and member auth data from the swarm or an invite that are forged, damaged or
//! malformed are refused with a clear error, never applied and never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use umbra_crypto::{Identity, SessionId};
use umbra_groups::parse::MAX_KEYS_MESSAGE;
use umbra_groups::rekey::{build_rekey, build_supplemental};
use umbra_groups::{
    Flags, GroupAdmin, GroupError, GroupKey, GroupKeys, KeysMessage, MemberAuth, Role, Subaccount,
};

fn people(n: usize) -> Vec<Identity> {
    (0..n)
        .map(|i| {
            let mut seed = [0x33u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Identity::from_seed(&seed)
        })
        .collect()
}

fn ids(p: &[Identity]) -> Vec<SessionId> {
    p.iter().map(Identity::session_id).collect()
}

#[test]
fn a_keys_message_of_another_group_key_is_refused() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let forger = GroupAdmin::from_seed(&[2; 32]);
    let members = people(3);
    let forged = build_rekey(&forger, &ids(&members), 5).unwrap().message;
    assert_eq!(
        KeysMessage::parse(&forged, group.public()),
        Err(GroupError::Signature)
    );
    let mut keys = GroupKeys::new(*group.public());
    assert_eq!(
        keys.load(Role::Member(&members[0]), "h", &forged, 1),
        Err(GroupError::Signature)
    );
    assert!(keys.keys().is_empty());
    assert_eq!(keys.active_hashes().count(), 0);
}

#[test]
fn every_flipped_bit_is_refused_without_panic() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let members = people(2);
    let msg = build_rekey(&group, &ids(&members), 3).unwrap().message;
    // Every byte of the message, one bit each: nothing altered may load.
    for i in 0..msg.len() {
        let mut m = msg.clone();
        m[i] ^= 0x04;
        assert!(
            KeysMessage::parse(&m, group.public()).is_err(),
            "flipped byte {i} accepted"
        );
    }
}

#[test]
fn every_truncation_is_refused() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let msg = build_rekey(&group, &ids(&people(1)), 0).unwrap().message;
    for n in 0..msg.len() {
        assert!(KeysMessage::parse(&msg[..n], group.public()).is_err());
    }
    let mut long = msg.clone();
    long.push(b'x');
    assert!(KeysMessage::parse(&long, group.public()).is_err());
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let big = vec![b'd'; MAX_KEYS_MESSAGE + 1];
    assert!(matches!(
        KeysMessage::parse(&big, group.public()),
        Err(GroupError::TooLarge { .. })
    ));
}

/// Properly signed, but the `k` list breaks the format (not a multiple of 75, a copy of the
/// wrong size): refused with the reason.
#[test]
fn signed_but_malformed_messages_say_why() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let sign = |body: &[u8]| {
        let mut m = body.to_vec();
        let sig = group.sign(&m);
        m.extend_from_slice(b"1:~64:");
        m.extend_from_slice(sig.as_bytes());
        m.push(b'e');
        m
    };
    let head = [
        b"d1:#24:".as_slice(),
        &[0u8; 24],
        b"1:Gi0e1:K48:",
        &[0u8; 48],
    ]
    .concat();
    let one_copy = sign(&[head.as_slice(), b"1:kl48:", &[0u8; 48], b"e"].concat());
    assert_eq!(
        KeysMessage::parse(&one_copy, group.public()),
        Err(GroupError::KeysMessage(
            "member copies `k` not a multiple of 75"
        ))
    );
    let mut list = b"1:kl".to_vec();
    for _ in 0..75 {
        list.extend_from_slice(b"2:ab");
    }
    list.push(b'e');
    let short_copies = sign(&[head.as_slice(), &list].concat());
    assert_eq!(
        KeysMessage::parse(&short_copies, group.public()),
        Err(GroupError::KeysMessage("member copy is not 48 bytes"))
    );
    let no_gen = sign(
        &[
            b"d1:#24:".as_slice(),
            &[0u8; 24],
            b"1:K48:",
            &[0u8; 48],
            b"1:kle",
        ]
        .concat(),
    );
    assert_eq!(
        KeysMessage::parse(&no_gen, group.public()),
        Err(GroupError::KeysMessage("generation `G` missing"))
    );
    // A valid signature over a message whose admin copy is junk: members may load it (they
    // find no copy), an admin rejects it.
    let empty = sign(&[head.as_slice(), b"1:kle"].concat());
    let KeysMessage::Full(f) = KeysMessage::parse(&empty, group.public()).unwrap() else {
        panic!("full");
    };
    assert_eq!(f.decrypt_admin(&group), Err(GroupError::AdminCopy));
    let mut keys = GroupKeys::new(*group.public());
    assert_eq!(
        keys.load(Role::Admin(&group), "h", &empty, 1),
        Err(GroupError::AdminCopy)
    );
}

#[test]
fn non_members_find_no_copy_and_members_find_theirs() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let all = people(80);
    let (inside, outside) = all.split_at(77);
    let rekey = build_rekey(&group, &ids(inside), 4).unwrap();
    let KeysMessage::Full(f) = KeysMessage::parse(&rekey.message, group.public()).unwrap() else {
        panic!("full");
    };
    assert_eq!(f.copies.len(), 150);
    for m in inside {
        let k = f.decrypt_member(m, group.public()).unwrap().unwrap();
        assert_eq!(&*k, rekey.key.key());
    }
    for m in outside {
        assert!(f.decrypt_member(m, group.public()).unwrap().is_none());
    }
}

#[test]
fn supplemental_keys_reach_only_their_recipients() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let p = people(3);
    let held = [
        GroupKey::new(0, 1_000, [10; 32]),
        GroupKey::new(1, 2_000, [11; 32]),
    ];
    let msg = build_supplemental(&group, &ids(&p[..2]), &held).unwrap();
    let KeysMessage::Supplemental(s) = KeysMessage::parse(&msg, group.public()).unwrap() else {
        panic!("supplemental");
    };
    assert_eq!(s.generation, 1);
    for m in &p[..2] {
        let got = s.decrypt_member(m, group.public()).unwrap().unwrap();
        assert_eq!(got, held.to_vec());
    }
    assert!(s.decrypt_member(&p[2], group.public()).unwrap().is_none());
    // Built twice, the same bytes (two admins store one message).
    assert_eq!(
        build_supplemental(&group, &ids(&p[..2]), &held).unwrap(),
        msg
    );
    assert!(build_supplemental(&group, &ids(&p[..2]), &[]).is_err());
}

#[test]
fn member_auth_from_another_group_or_member_is_refused() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let other = GroupAdmin::from_seed(&[2; 32]);
    let p = people(2);
    let auth = group.member_auth(&p[0].session_id(), Flags::member(false, false));
    assert!(Subaccount::verify(&auth, &p[0], group.public(), 0).is_ok());
    assert_eq!(
        Subaccount::verify(&auth, &p[0], group.public(), Flags::WRITE).map(|_| ()),
        Err(GroupError::MemberAuth("missing a required permission"))
    );
    assert_eq!(
        Subaccount::verify(&auth, &p[1], group.public(), 0).map(|_| ()),
        Err(GroupError::MemberAuth("not signed by the group"))
    );
    assert_eq!(
        Subaccount::verify(&auth, &p[0], other.public(), 0).map(|_| ()),
        Err(GroupError::MemberAuth("not signed by the group"))
    );
    assert!(MemberAuth::from_slice(&auth.0[..99]).is_err());
    let mut wrong_prefix = auth.clone();
    wrong_prefix.0[0] = 0x05;
    assert_eq!(
        Subaccount::verify(&wrong_prefix, &p[0], group.public(), 0).map(|_| ()),
        Err(GroupError::MemberAuth("not for a 03 group"))
    );
}

#[test]
fn concurrent_rekeys_ask_for_another() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let p = people(3);
    let mut keys = GroupKeys::new(*group.public());
    let a = build_rekey(&group, &ids(&p[..2]), 0).unwrap().message;
    let b = build_rekey(&group, &ids(&p), 0).unwrap().message;
    keys.load(Role::Admin(&group), "a", &a, 1).unwrap();
    assert!(!keys.needs_rekey());
    keys.load(Role::Admin(&group), "b", &b, 2).unwrap();
    assert!(keys.needs_rekey());
    let msg = keys.rekey(&group, &ids(&p), 3).unwrap();
    assert_eq!(keys.current_generation(), Some(1));
    keys.load(Role::Admin(&group), "c", &msg, 4).unwrap();
    assert!(!keys.needs_rekey());
    assert_eq!(keys.active_hashes().count(), 3);
}

#[test]
fn old_generations_expire_after_sixty_days() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let p = people(1);
    let day = 24 * 60 * 60 * 1000;
    let mut keys = GroupKeys::new(*group.public());
    for (g, t) in [(0, 0), (1, day), (2, 70 * day)] {
        let m = build_rekey(&group, &ids(&p), g).unwrap().message;
        keys.load(Role::Member(&p[0]), &format!("h{g}"), &m, t)
            .unwrap();
    }
    // Generation 1 became current on day 1, over 60 days before the newest key: generation 0
    // is gone; generation 1 stays (generation 2 is recent).
    let gens: Vec<u64> = keys.keys().iter().map(|k| k.generation).collect();
    assert_eq!(gens, vec![1, 2]);
    assert_eq!(keys.active_hashes().collect::<Vec<_>>(), vec!["h1", "h2"]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let group = GroupAdmin::from_seed(&[1; 32]);
        let _ = KeysMessage::parse(&bytes, group.public());
        let mut d = b"d1:#24:".to_vec();
        d.extend_from_slice(&bytes);
        let _ = KeysMessage::parse(&d, group.public());
    }
}
