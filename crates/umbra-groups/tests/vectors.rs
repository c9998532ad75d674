//! The contract: every group vector of `shared/vectors/groups-config-attachments.json`
//! (identity, seed hashes, key generation, subaccounts, per-recipient copies), byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value as Json;
use umbra_crypto::{Identity, SessionId, Signature, X25519PublicKey};
use umbra_groups::multi::{self, DOMAIN_MEMBER_KEY};
use umbra_groups::rekey::{RekeyValues, build_rekey, deterministic_bytes};
use umbra_groups::{
    Flags, GroupAdmin, GroupError, KeysMessage, RevocationList, SignedRequest, Subaccount,
};

fn vector(name: &str) -> Json {
    let path = format!(
        "{}/../../../shared/vectors/groups-config-attachments.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let file: Json = serde_json::from_str(&text).unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
        .clone()
}

fn hx(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn b32(v: &Json) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

fn s(v: &Json) -> &str {
    v.as_str().unwrap()
}

#[test]
fn group_identity_and_members() {
    let v = vector("group_identity_and_members");
    let group = GroupAdmin::from_seed(&b32(&v["group_seed"]));
    assert_eq!(
        group.public().ed25519().to_hex(),
        s(&v["group_ed25519_pubkey"])
    );
    assert_eq!(group.id().to_hex(), s(&v["group_id"]));
    let parsed = s(&v["group_id"]).parse().unwrap();
    assert_eq!(
        umbra_groups::GroupPublic::from_id(&parsed).unwrap(),
        *group.public()
    );
    for (seed, id) in [
        ("admin_seed", "admin_session_id"),
        ("member_seed", "member_session_id"),
    ] {
        let who = Identity::from_seed(&b32(&v[seed]));
        assert_eq!(who.session_id().to_hex(), s(&v[id]), "{id}");
    }
}

#[test]
fn group_seed_hashes() {
    let v = vector("group_seed_hashes");
    let group = GroupAdmin::from_seed(&b32(&v["group_seed"]));
    assert_eq!(hex::encode(*group.key_seed()), s(&v["SessionGroupKeySeed"]));
    assert_eq!(
        hex::encode(*group.admin_key()),
        s(&v["SessionGroupKeyAdminKey"])
    );
    assert_eq!(
        hex::encode(*group.subaccount_mask()),
        s(&v["SessionGroupSubaccountMask"])
    );
}

#[test]
fn group_key_gen0_no_members() {
    let v = vector("group_key_gen0_no_members");
    let group = GroupAdmin::from_seed(&b32(&v["group_seed"]));
    // The hashed input is dec(0) ‖ S: check it names the same S.
    assert_eq!(
        s(&v["hashed_input_hex"]),
        format!("30{}", hex::encode(*group.key_seed()))
    );
    let values = RekeyValues::derive(&group, &[], 0);
    assert_eq!(hex::encode(values.key()), s(&v["group_key"]));
    assert_eq!(hex::encode(values.nonce()), s(&v["keys_message_nonce"]));
    assert_eq!(
        hex::encode(*values.junk_seed(&group)),
        s(&v["junk_rng_seed"])
    );

    // The whole generation-0 message: no members, no junk, 166 + 1 bytes, and the key it
    // carries is the vector's (through the admin copy).
    let rekey = build_rekey(&group, &[], 0).unwrap();
    assert_eq!(rekey.message.len(), 167);
    assert_eq!(hex::encode(rekey.key.key()), s(&v["group_key"]));
    let KeysMessage::Full(full) = KeysMessage::parse(&rekey.message, group.public()).unwrap()
    else {
        panic!("a full keys message");
    };
    assert!(full.copies.is_empty());
    assert_eq!(full.nonce.to_vec(), hx(&v["keys_message_nonce"]));
    assert_eq!(
        hex::encode(*full.decrypt_admin(&group).unwrap()),
        s(&v["group_key"])
    );
}

/// The junk generator is libsodium's `randombytes_buf_deterministic`, checked against
/// libsodium itself with the vector's junk seed.
#[test]
fn junk_matches_libsodium() {
    let v = vector("group_key_gen0_no_members");
    let seed = b32(&v["junk_rng_seed"]);
    for len in [0, 48, 48 * 74, 48 * 75 + 1] {
        assert_eq!(
            deterministic_bytes(&seed, len),
            umbra_sodium_check::randombytes_buf_deterministic(len, &seed),
            "{len} bytes"
        );
    }
}

#[test]
fn subaccount_auth_member() {
    let v = vector("subaccount_auth_member");
    let group = GroupAdmin::from_seed(&b32(&v["group_seed"]));
    let member = Identity::from_seed(&b32(&v["member_seed"]));
    let flags = Flags::member(
        v["write"].as_bool().unwrap(),
        v["delete"].as_bool().unwrap(),
    );

    let auth = group.member_auth(&member.session_id(), flags);
    assert_eq!(hex::encode(auth.0), s(&v["member_auth_data_100"]));
    assert_eq!(hex::encode(&auth.0[4..36]), s(&v["blinding_factor_k"]));
    let token = group.member_token(&member.session_id(), flags);
    assert_eq!(hex::encode(&token.0[4..]), s(&v["blinded_pubkey_kT"]));
    assert_eq!(token.to_base64(), s(&v["subaccount_b64"]));

    let sub = Subaccount::verify(&auth, &member, group.public(), Flags::WRITE).unwrap();
    assert_eq!(sub.token(), &token);
    let msg = s(&v["message_utf8"]).as_bytes();
    let req = sub.authorize(msg);
    assert_eq!(req.subaccount, s(&v["subaccount_b64"]));
    assert_eq!(req.subaccount_sig, s(&v["subaccount_sig_b64"]));
    assert_eq!(req.signature, s(&v["signature_b64"]));

    // The swarm's side accepts it, and refuses it once revoked.
    let signed = SignedRequest {
        token,
        token_sig: Signature::from_slice(&B64.decode(&req.subaccount_sig).unwrap()).unwrap(),
        msg,
        signature: Signature::from_slice(&B64.decode(&req.signature).unwrap()).unwrap(),
    };
    assert_eq!(sub.request(msg), signed);
    let mut revoked = RevocationList::new();
    let g = group.public();
    revoked
        .check_request(g, &signed, Flags::READ, false)
        .unwrap();
    revoked.revoke(&[token]);
    assert_eq!(
        revoked.check_request(g, &signed, Flags::READ, false),
        Err(GroupError::Subaccount("token is revoked"))
    );
    // Namespace −11 stays readable for a revoked member.
    revoked
        .check_request(g, &signed, Flags::READ, true)
        .unwrap();
    // Delete was not granted.
    assert!(
        revoked
            .check_request(g, &signed, Flags::DELETE, true)
            .is_err()
    );
    // Another message under the same signature is refused.
    let replayed = SignedRequest {
        msg: b"retrieve9991693340111001",
        ..signed.clone()
    };
    assert_eq!(
        RevocationList::new().check_request(g, &replayed, Flags::READ, false),
        Err(GroupError::Subaccount("request signature does not verify"))
    );
}

#[test]
fn multi_encrypt_per_recipient() {
    let v = vector("multi_encrypt_per_recipient");
    let sender = Identity::from_seed(&b32(&v["sender_ed25519_seed"]));
    assert_eq!(
        sender.x25519_public().to_hex(),
        s(&v["sender_x25519_pubkey"])
    );
    let domain = s(&v["domain_utf8"]).as_bytes();
    let nonce: [u8; 24] = hx(&v["nonce"]).try_into().unwrap();
    let recipients: Vec<Identity> = v["recipient_ed25519_seeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Identity::from_seed(&b32(s)))
        .collect();
    let same = s(&v["same_message_utf8"]).as_bytes();
    let per: Vec<&str> = v["per_recipient_messages_utf8"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    for (i, r) in recipients.iter().enumerate() {
        assert_eq!(
            r.x25519_public().to_hex(),
            s(&v["recipient_x25519_pubkeys"][i])
        );
        let key = multi::sender_key(domain, &sender, &r.x25519_public()).unwrap();
        assert_eq!(
            *multi::recipient_key(domain, r, &sender.x25519_public()).unwrap(),
            *key
        );
        let c = multi::seal(&key, &nonce, same).unwrap();
        assert_eq!(hex::encode(&c), s(&v["ciphertexts_same_message"][i]));
        let c = multi::seal(&key, &nonce, per[i].as_bytes()).unwrap();
        assert_eq!(hex::encode(&c), s(&v["ciphertexts_per_recipient"][i]));
        assert_eq!(
            multi::open(&key, &nonce, &c).unwrap().as_slice(),
            per[i].as_bytes()
        );
    }

    let to: Vec<(X25519PublicKey, &[u8])> = recipients
        .iter()
        .zip(&per)
        .map(|(r, m)| (r.x25519_public(), m.as_bytes()))
        .collect();
    let encoded = multi::encrypt_simple(domain, &sender, &to, &nonce).unwrap();
    assert_eq!(hex::encode(&encoded), s(&v["simple_encoding_hex"]));
    for (r, m) in recipients.iter().zip(&per) {
        let got = multi::decrypt_simple(domain, r, &sender.x25519_public(), &encoded).unwrap();
        assert_eq!(got.unwrap().as_slice(), m.as_bytes());
    }
    let outsider = Identity::from_seed(&[9; 32]);
    assert!(
        multi::decrypt_simple(domain, &outsider, &sender.x25519_public(), &encoded)
            .unwrap()
            .is_none()
    );
    // The member-key domain is another key: the same copies do not open under it.
    let other =
        multi::recipient_key(DOMAIN_MEMBER_KEY, &recipients[0], &sender.x25519_public()).unwrap();
    let c = hx(&v["ciphertexts_per_recipient"][0]);
    assert!(multi::open(&other, &nonce, &c).is_err());
}

/// The encoded size of a full keys message is `166 + len(dec(G)) + 51 × count(k)` (§1.3),
/// with `k` padded to a multiple of 75.
#[test]
fn keys_message_size_formula() {
    let group = GroupAdmin::from_seed(&[7; 32]);
    for (n, generation) in [(1usize, 0u64), (75, 9), (76, 17), (200, 1234)] {
        let members: Vec<SessionId> = (0..n)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Identity::from_seed(&seed).session_id()
            })
            .collect();
        let rekey = build_rekey(&group, &members, generation).unwrap();
        let padded = n.div_ceil(75) * 75;
        assert_eq!(rekey.copies, n);
        assert_eq!(
            rekey.message.len(),
            166 + generation.to_string().len() + 51 * padded,
            "{n} members"
        );
    }
}

/// A 1632-byte text encrypts to 256 bytes compressed and 2048 uncompressed.
#[test]
fn group_message_sizes() {
    use umbra_groups::message::{decrypt_message, encrypt_message_with_nonce};
    use umbra_groups::{GroupKeys, Role};

    let v = vector("group_message_sizes");
    let spec = &v["plaintext_utf8_repeat"];
    let mut text = s(&spec["text"]).to_owned();
    for _ in 0..spec["doubled_times"].as_u64().unwrap() {
        text = text.repeat(2);
    }
    assert_eq!(text.len() as u64, spec["total_length"].as_u64().unwrap());

    let group = GroupAdmin::from_seed(&[1; 32]);
    let sender = Identity::from_seed(&[2; 32]);
    let mut keys = GroupKeys::new(*group.public());
    let msg = keys.rekey(&group, &[sender.session_id()], 0).unwrap();
    keys.load(Role::Admin(&group), "h", &msg, 1).unwrap();
    for (compress, size) in [
        (true, &v["encrypted_size_compressed"]),
        (false, &v["encrypted_size_uncompressed"]),
    ] {
        let ct = encrypt_message_with_nonce(&sender, &keys, text.as_bytes(), compress, &[7; 24])
            .unwrap();
        assert_eq!(
            ct.len() as u64,
            size.as_u64().unwrap(),
            "compress {compress}"
        );
        let m = decrypt_message(&keys, &ct).unwrap();
        assert_eq!(m.payload, text.as_bytes());
        assert_eq!(m.sender, sender.session_id());
        assert!(!m.legacy_signature);
    }
}
