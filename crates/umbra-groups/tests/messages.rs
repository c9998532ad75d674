//! Group messages (namespace 11): members read what any member wrote under any key they hold;
//! a removed member cannot read what is sent after the rekey; tampering is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_crypto::{Identity, SeededRandom};
use umbra_groups::{GroupAdmin, GroupError, GroupKeys, Role, decrypt_message, encrypt_message};

#[test]
fn removed_members_cannot_read_after_the_rekey() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let (ann, bob) = (Identity::from_seed(&[2; 32]), Identity::from_seed(&[3; 32]));
    let mut admin = GroupKeys::new(*group.public());
    let mut ann_keys = GroupKeys::new(*group.public());
    let mut bob_keys = GroupKeys::new(*group.public());
    let mut rng = SeededRandom::new(9);

    let first = admin
        .rekey(&group, &[ann.session_id(), bob.session_id()], 0)
        .unwrap();
    for (k, role) in [
        (&mut admin, Role::Admin(&group)),
        (&mut ann_keys, Role::Member(&ann)),
        (&mut bob_keys, Role::Member(&bob)),
    ] {
        k.load(role, "h0", &first, 1).unwrap();
    }
    let before = encrypt_message(&ann, &ann_keys, b"hello both", true, &mut rng).unwrap();
    assert_eq!(
        decrypt_message(&bob_keys, &before).unwrap().payload,
        b"hello both"
    );

    let second = admin.rekey(&group, &[ann.session_id()], 2).unwrap();
    for (k, role) in [
        (&mut admin, Role::Admin(&group)),
        (&mut ann_keys, Role::Member(&ann)),
        (&mut bob_keys, Role::Member(&bob)),
    ] {
        k.load(role, "h1", &second, 3).unwrap();
    }
    let after = encrypt_message(&ann, &ann_keys, b"just us", false, &mut rng).unwrap();
    assert_eq!(decrypt_message(&admin, &after).unwrap().payload, b"just us");
    assert_eq!(
        decrypt_message(&bob_keys, &after),
        Err(GroupError::Message("no group key held decrypts it"))
    );
    // Older messages stay readable with the older key.
    assert_eq!(
        decrypt_message(&ann_keys, &before).unwrap().payload,
        b"hello both"
    );

    let mut tampered = after.clone();
    tampered[30] ^= 1;
    assert!(decrypt_message(&ann_keys, &tampered).is_err());
    for n in 0..after.len() {
        assert!(decrypt_message(&ann_keys, &after[..n]).is_err());
    }
}

/// Older libsession signed the stored payload alone (§1.7): still accepted, and flagged.
#[test]
fn payload_only_signatures_of_old_senders_are_accepted_and_flagged() {
    let group = GroupAdmin::from_seed(&[1; 32]);
    let ann = Identity::from_seed(&[2; 32]);
    let mut keys = GroupKeys::new(*group.public());
    let m = keys.rekey(&group, &[ann.session_id()], 0).unwrap();
    keys.load(Role::Admin(&group), "h", &m, 1).unwrap();

    let payload = b"from an old client";
    let sig = ann.sign(payload);
    let mut dict = b"d0:i1e1:a32:".to_vec();
    dict.extend_from_slice(ann.ed25519_public().as_bytes());
    dict.extend_from_slice(format!("1:d{}:", payload.len()).as_bytes());
    dict.extend_from_slice(payload);
    dict.extend_from_slice(b"1:s64:");
    dict.extend_from_slice(sig.as_bytes());
    dict.push(b'e');
    let nonce = [5u8; 24];
    let key = keys.encryption_key().unwrap().key();
    let mut stored = nonce.to_vec();
    stored.extend_from_slice(&umbra_groups::multi::seal(key, &nonce, &dict).unwrap());
    let got = decrypt_message(&keys, &stored).unwrap();
    assert!(got.legacy_signature);
    assert_eq!(got.payload, payload);

    // Signed by someone else than `a`: refused.
    let other = Identity::from_seed(&[3; 32]).sign(payload);
    let forged: Vec<u8> = [&dict[..dict.len() - 65], other.as_bytes(), b"e"].concat();
    let mut stored = nonce.to_vec();
    stored.extend_from_slice(&umbra_groups::multi::seal(key, &nonce, &forged).unwrap());
    assert_eq!(
        decrypt_message(&keys, &stored),
        Err(GroupError::Message("sender signature does not verify"))
    );
}

/// The kicked notice (namespace −11) tells exactly the removed members their generation.
#[test]
fn kicked_notices_reach_only_the_removed() {
    use umbra_groups::kicked::{kicked_notice, read_kicked_notice};

    let group = GroupAdmin::from_seed(&[1; 32]);
    let (ann, bob, cat) = (
        Identity::from_seed(&[2; 32]),
        Identity::from_seed(&[3; 32]),
        Identity::from_seed(&[4; 32]),
    );
    let notice = kicked_notice(
        &group,
        &[ann.session_id(), bob.session_id()],
        17,
        &mut SeededRandom::new(3),
    )
    .unwrap();
    for who in [&ann, &bob] {
        assert_eq!(
            read_kicked_notice(who, group.public(), &notice),
            Ok(Some(17))
        );
    }
    assert_eq!(read_kicked_notice(&cat, group.public(), &notice), Ok(None));
    let other = GroupAdmin::from_seed(&[2; 32]);
    assert_eq!(read_kicked_notice(&ann, other.public(), &notice), Ok(None));
    assert!(read_kicked_notice(&ann, group.public(), &notice[..notice.len() - 3]).is_err());
}
