//! The contract: every vector in `shared/vectors/{keys,session-v1,onion,hashes}.json`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use umbra_crypto::hash::{
    blake2b_32, blake2b_32_keyed, blake2b_64, blake2b_64_keyed, message_hash,
};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::{X25519KeyPair, ed25519_pk_to_x25519};
use umbra_crypto::{AccountId, Identity, SessionId, X25519PublicKey, session_v1};

fn load(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../../shared/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn by_name<'a>(vs: &'a [Value], name: &str) -> &'a Value {
    vs.iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn h32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn keys_session_ids() {
    let vs = load("keys.json");
    for name in ["session_id_seed1", "session_id_seed2"] {
        let v = by_name(&vs, name);
        let id = Identity::from_seed(&h32(&v["ed25519_seed"]));
        assert_eq!(
            id.ed25519_public().to_bytes(),
            h32(&v["ed25519_pubkey"]),
            "{name}"
        );
        assert_eq!(
            id.x25519_public().to_bytes(),
            h32(&v["x25519_pubkey"]),
            "{name}"
        );
        assert_eq!(
            id.session_id().to_hex(),
            v["session_id"].as_str().unwrap(),
            "{name}"
        );
        let parsed: SessionId = v["session_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(parsed, id.session_id());
        assert_eq!(
            ed25519_pk_to_x25519(&id.ed25519_public()).unwrap(),
            id.x25519_public()
        );
        // The 16-byte restore path gives the same identity as the padded seed.
        let entropy = id.entropy16().unwrap();
        assert_eq!(
            Identity::from_entropy16(&entropy).session_id(),
            id.session_id()
        );
    }
}

#[test]
fn keys_signing_and_secret_conversion() {
    let vs = load("keys.json");
    let v = by_name(&vs, "ed25519_sign");
    let id = Identity::from_seed(&h32(&v["ed25519_seed"]));
    assert_eq!(id.ed25519_public().to_bytes(), h32(&v["ed25519_pubkey"]));
    let sig = id.sign(v["message_utf8"].as_str().unwrap().as_bytes());
    assert_eq!(sig.as_bytes().to_vec(), hx(&v["signature"]));
    umbra_crypto::sign::verify(&id.ed25519_public(), b"hello", &sig).unwrap();
    assert!(umbra_crypto::sign::verify(&id.ed25519_public(), b"hellp", &sig).is_err());

    for name in ["ed25519_sk_to_x25519_sk_1", "ed25519_sk_to_x25519_sk_2"] {
        let v = by_name(&vs, name);
        let sk64 = hx(&v["ed25519_secret_key_64"]);
        let id = Identity::from_seed_slice(&sk64[..32]).unwrap();
        assert_eq!(
            id.ed25519_public().as_bytes().to_vec(),
            sk64[32..].to_vec(),
            "{name}"
        );
        assert_eq!(*id.x25519_secret(), h32(&v["x25519_secret_key"]), "{name}");
    }
}

#[test]
fn session_v1_deterministic_vector() {
    let vs = load("session-v1.json");
    let v = by_name(&vs, "deterministic_encrypt_hello");
    let sender = Identity::from_seed(&h32(&v["sender_ed25519_seed"]));
    assert_eq!(
        sender.ed25519_public().to_bytes(),
        h32(&v["sender_ed25519_pubkey"])
    );
    let recipient = Identity::from_seed(&h32(&v["recipient_ed25519_seed"]));
    let rid: SessionId = v["recipient_session_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(recipient.session_id(), rid);
    let msg = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    let ct = session_v1::encrypt_deterministic(&sender, &rid, msg).unwrap();
    assert_eq!(ct.len() as u64, v["ciphertext_length"].as_u64().unwrap());
    assert_eq!(hex::encode(&ct), v["ciphertext"].as_str().unwrap());

    let opened = session_v1::decrypt(&recipient, &hx(&v["ciphertext"])).unwrap();
    assert_eq!(&opened.plaintext[..], msg);
    assert_eq!(opened.sender, sender.session_id());
    assert_eq!(opened.sender_ed25519, sender.ed25519_public());

    // Anyone else cannot open it; a flipped byte anywhere is refused.
    assert!(session_v1::decrypt(&sender, &ct).is_err());
    for i in [0, 31, 32, 47, 48, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 1;
        assert!(
            session_v1::decrypt(&recipient, &bad).is_err(),
            "flip at {i}"
        );
    }
}

#[test]
fn onion_hop_vectors() {
    let vs = load("onion.json");
    let v = by_name(&vs, "hop_decrypt");
    let node = X25519KeyPair::from_secret(h32(&v["node_x25519_secret"]));
    assert_eq!(node.public().to_bytes(), h32(&v["node_x25519_pubkey"]));
    let client = X25519KeyPair::from_secret(h32(&v["client_ephemeral_secret"]));
    assert_eq!(
        client.public().to_bytes(),
        h32(&v["client_ephemeral_pubkey"])
    );
    let plain = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    for (enc, blob_key, fail_key) in [
        (EncType::AesGcm, "aes_gcm_blob", "aes_gcm"),
        (EncType::XChaCha20, "xchacha20_blob", "xchacha20"),
    ] {
        let node_key = HopKey::node(enc, &node, &client.public()).unwrap();
        let client_key = HopKey::client(enc, &client, &node.public()).unwrap();
        assert_eq!(&node_key.decrypt(&hx(&v[blob_key])).unwrap()[..], plain);
        assert_eq!(&client_key.decrypt(&hx(&v[blob_key])).unwrap()[..], plain);
        for bad in v["must_fail"][fail_key].as_array().unwrap() {
            assert!(
                node_key.decrypt(&hx(bad)).is_err(),
                "{enc:?} must refuse {bad}"
            );
        }
    }

    for name in ["first_hop_frame_aes_gcm", "first_hop_frame_xchacha20"] {
        let v = by_name(&vs, name);
        let frame = hx(&v["frame"]);
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len as u64, v["ciphertext_length"].as_u64().unwrap());
        let blob = &frame[4..4 + len];
        let json: Value = serde_json::from_slice(&frame[4 + len..]).unwrap();
        assert_eq!(
            std::str::from_utf8(&frame[4 + len..]).unwrap(),
            v["control_json"].as_str().unwrap()
        );
        let enc = EncType::parse(json["enc_type"].as_str()).unwrap();
        let eph = h32(&json["ephemeral_key"]);
        let node = X25519KeyPair::from_secret(h32(&v["node_x25519_secret"]));
        let key = HopKey::node(enc, &node, &X25519PublicKey::from_bytes(eph)).unwrap();
        assert_eq!(
            &key.decrypt(blob).unwrap()[..],
            v["plaintext_utf8"].as_str().unwrap().as_bytes()
        );
        let mut rng = umbra_crypto::SeededRandom::new(1);
        let reply = key.encrypt(b"Goodbye world", &mut rng).unwrap();
        assert_eq!(reply.len(), enc.nonce_len() + 13 + 16, "{name}");
        let client = X25519KeyPair::from_secret(h32(&v["client_ephemeral_secret"]));
        let ck = HopKey::client(enc, &client, &node.public()).unwrap();
        assert_eq!(&ck.decrypt(&reply).unwrap()[..], b"Goodbye world");
    }
}

#[test]
fn hash_vectors() {
    let vs = load("hashes.json");
    for v in &vs {
        let name = v["name"].as_str().unwrap();
        if name.starts_with("message_hash") {
            let pk: [u8; 33] = hx(&v["pubkey"]).try_into().unwrap();
            let ns = v["namespace"].as_i64().unwrap() as i32;
            let h = message_hash(
                &AccountId::new(pk),
                ns,
                v["data_utf8"].as_str().unwrap().as_bytes(),
            );
            assert_eq!(h.as_str(), v["hash"].as_str().unwrap(), "{name}");
            assert_eq!(h.as_str().len(), 43);
        } else {
            let msg = v["message_utf8"].as_str().unwrap().as_bytes();
            let key = v["key_utf8"].as_str().map(str::as_bytes);
            let got = match (v["output_bytes"].as_u64().unwrap(), key) {
                (32, None) => blake2b_32(&[msg]).to_vec(),
                (32, Some(k)) => blake2b_32_keyed(k, &[msg]).to_vec(),
                (64, None) => blake2b_64(&[msg]).to_vec(),
                (64, Some(k)) => blake2b_64_keyed(k, &[msg]).to_vec(),
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(hex::encode(got), v["digest"].as_str().unwrap(), "{name}");
        }
    }
}
