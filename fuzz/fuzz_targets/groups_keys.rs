//! Groups v2 keys messages (`umbra-groups`): the bounded parser of namespace 12, then what an
//! admin and a member do with a message that verified (open `K`, find a copy, read a
//! supplemental key list, load into the key ring), and the 100-byte member auth data.
//!
//! The first input byte picks the mode:
//! - `0..=95`: the rest is a keys message as retrieved (almost never correctly signed: this
//!   exercises the parser up to the signature check);
//! - `96..=191`: the rest is the body of a message before its signature; it is signed with the
//!   group key first, so the fuzzer reaches everything behind the signature check;
//! - `192..=223`: the rest is a group message (namespace 11) as retrieved;
//! - `224..=239`: the rest is a group message's plaintext, sealed under the group key first
//!   (reaches the dict, the signature check and zstd behind the AEAD);
//! - otherwise the rest is member auth data, checked by a member.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra_crypto::Identity;
use umbra_groups::{GroupAdmin, GroupKeys, KeysMessage, MemberAuth, Role, Subaccount};

fn load_all(group: &GroupAdmin, member: &Identity, bytes: &[u8]) {
    let parsed = KeysMessage::parse(bytes, group.public());
    if let Ok(KeysMessage::Full(f)) = &parsed {
        let _ = f.decrypt_admin(group);
        let _ = f.decrypt_member(member, group.public());
    }
    if let Ok(KeysMessage::Supplemental(s)) = &parsed {
        let _ = s.decrypt_member(member, group.public());
    }
    for role in [Role::Admin(group), Role::Member(member)] {
        let mut keys = GroupKeys::new(*group.public());
        let loaded = keys.load(role, "h", bytes, 1);
        assert!(
            loaded.is_ok() || keys.keys().is_empty(),
            "a refused message adds no key"
        );
        if let Ok(l) = loaded {
            assert_eq!(
                Some(l.generation),
                parsed.as_ref().ok().map(KeysMessage::generation)
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let group = GroupAdmin::from_seed(&[3; 32]);
    let member = Identity::from_seed(&[4; 32]);
    match mode {
        0..=95 => load_all(&group, &member, rest),
        96..=191 => {
            let mut m = rest.to_vec();
            let sig = group.sign(&m);
            m.extend_from_slice(b"1:~64:");
            m.extend_from_slice(sig.as_bytes());
            m.push(b'e');
            load_all(&group, &member, &m);
        }
        192..=239 => {
            let mut keys = GroupKeys::new(*group.public());
            let Ok(first) = keys.rekey(&group, &[], 0) else {
                return;
            };
            if keys.load(Role::Admin(&group), "h", &first, 1).is_err() {
                return;
            }
            let stored = if mode < 224 {
                rest.to_vec()
            } else {
                let Some(key) = keys.encryption_key() else {
                    return;
                };
                let nonce = [9u8; 24];
                let Ok(sealed) = umbra_groups::multi::seal(key.key(), &nonce, rest) else {
                    return;
                };
                [&nonce[..], &sealed].concat()
            };
            if let Ok(m) = umbra_groups::decrypt_message(&keys, &stored) {
                assert!(m.payload.len() <= umbra_groups::message::MAX_PAYLOAD);
            }
        }
        _ => {
            if let Ok(auth) = MemberAuth::from_slice(rest) {
                if let Ok(sub) = Subaccount::verify(&auth, &member, group.public(), 0) {
                    let _ = sub.sign(b"retrieve111700000000000");
                }
            }
        }
    }
});
