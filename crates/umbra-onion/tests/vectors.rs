//! The contract with Session: every vector in `shared/vectors/onion.json`, read through this
//! crate's node-side parser.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use serde_json::Value;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Random, X25519PublicKey};
use umbra_onion::{OnionError, frame, peel};

fn vectors() -> Vec<Value> {
    let path = format!(
        "{}/../../../shared/vectors/onion.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn by_name(name: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn key32(v: &Value) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

/// Random bytes from a fixed script (to replay a vector's nonce).
struct Scripted(Vec<u8>);

impl Random for Scripted {
    fn fill(&mut self, out: &mut [u8]) {
        assert!(self.0.len() >= out.len(), "script exhausted");
        let rest = self.0.split_off(out.len());
        out.copy_from_slice(&self.0);
        self.0 = rest;
    }
}

/// What the client of a vector reads from the node's answer to a layer it could decrypt but
/// not parse ("Hello world" is not a frame): Session's wrapped `Invalid json`, sealed under the
/// very key the vector's client holds.
fn check_wrapped_invalid_json(
    err: &umbra_onion::PeelError,
    enc: EncType,
    client: &X25519KeyPair,
    node_pub: &X25519PublicKey,
) {
    assert_eq!(err.error(), &OnionError::InvalidJson);
    let resp = err.response(&mut umbra_crypto::SeededRandom::new(1));
    assert_eq!(resp.status, 200, "Session wraps Invalid json in a 200");
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&resp.body)
        .unwrap();
    let key = HopKey::client(enc, client, node_pub).unwrap();
    let pt = key.decrypt(&sealed).unwrap();
    let v: Value = serde_json::from_slice(&pt).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status": 400, "body": "Invalid json"})
    );
}

#[test]
fn first_hop_frames_peel_and_rebuild_byte_exact() {
    for (name, enc) in [
        ("first_hop_frame_aes_gcm", EncType::AesGcm),
        ("first_hop_frame_xchacha20", EncType::XChaCha20),
    ] {
        let v = by_name(name);
        let node = X25519KeyPair::from_secret(key32(&v["node_x25519_secret"]));
        assert_eq!(node.public().to_bytes(), key32(&v["node_x25519_pubkey"]));
        let client = X25519KeyPair::from_secret(key32(&v["client_ephemeral_secret"]));
        assert_eq!(
            client.public().to_bytes(),
            key32(&v["client_ephemeral_pubkey"])
        );
        let frame_bytes = hx(&v["frame"]);
        let ct_len = v["ciphertext_length"].as_u64().unwrap() as usize;
        assert_eq!(ct_len, enc.overhead() + 11);

        // Our peel parses the frame (spaces in its JSON), reads ephemeral_key and enc_type,
        // derives the key and decrypts: "Hello world" is not an inner frame, so it answers
        // Session's wrapped "Invalid json" under the vector's layer key.
        let err = peel(&node, &frame_bytes).unwrap_err();
        check_wrapped_invalid_json(&err, enc, &client, &node.public());
        assert_eq!(err.replier().unwrap().enc_type(), enc);

        // The same frame with a wrong node key, or one flipped ciphertext byte, is refused.
        let other = X25519KeyPair::from_secret([9u8; 32]);
        assert_eq!(
            peel(&other, &frame_bytes).unwrap_err().error(),
            &OnionError::InvalidCiphertext
        );
        let mut flipped = frame_bytes.clone();
        flipped[4 + ct_len - 1] ^= 1;
        assert_eq!(
            peel(&node, &flipped).unwrap_err().error(),
            &OnionError::InvalidCiphertext
        );

        // Construction with the vector's fixed ephemeral key and nonce reproduces the frame
        // byte for byte (with the vector's own JSON formatting).
        let ct = &frame_bytes[4..4 + ct_len];
        let key = HopKey::client(enc, &client, &node.public()).unwrap();
        let mut rng = Scripted(ct[..enc.nonce_len()].to_vec());
        let rebuilt_ct = key.encrypt(b"Hello world", &mut rng).unwrap();
        assert_eq!(rebuilt_ct, ct);
        let json = v["control_json"].as_str().unwrap();
        assert_eq!(frame::encode(&rebuilt_ct, json.as_bytes()), frame_bytes);

        // Our own emitter writes the same control JSON up to whitespace.
        assert_eq!(&frame_bytes[4 + ct_len..], json.as_bytes());
        let ours = serde_json::json!({"ephemeral_key": hex::encode(client.public()), "enc_type": enc.as_str()});
        assert_eq!(serde_json::from_str::<Value>(json).unwrap(), ours);

        // reply_check: a reply of 13 bytes under the same key is nonce + 13 + tag.
        let reply = key
            .encrypt(b"Goodbye world", &mut umbra_crypto::SeededRandom::new(2))
            .unwrap();
        let expect = if enc == EncType::AesGcm { 41 } else { 53 };
        assert_eq!(reply.len(), expect, "{}", v["reply_check"]);
    }
}

#[test]
fn hop_decrypt_blobs_through_peel() {
    let v = by_name("hop_decrypt");
    let node = X25519KeyPair::from_secret(key32(&v["node_x25519_secret"]));
    assert_eq!(node.public().to_bytes(), key32(&v["node_x25519_pubkey"]));
    let client = X25519KeyPair::from_secret(key32(&v["client_ephemeral_secret"]));
    assert_eq!(
        client.public().to_bytes(),
        key32(&v["client_ephemeral_pubkey"])
    );
    let eph_hex = v["client_ephemeral_pubkey"].as_str().unwrap();
    for (enc, blob_key, fail_key) in [
        (EncType::AesGcm, "aes_gcm_blob", "aes_gcm"),
        (EncType::XChaCha20, "xchacha20_blob", "xchacha20"),
    ] {
        let json = format!(
            r#"{{"ephemeral_key":"{eph_hex}","enc_type":"{}"}}"#,
            enc.as_str()
        );
        // The valid blob decrypts ("Hello world", not a frame → wrapped Invalid json).
        let f = frame::encode(&hx(&v[blob_key]), json.as_bytes());
        let err = peel(&node, &f).unwrap_err();
        check_wrapped_invalid_json(&err, enc, &client, &node.public());
        // The must-fail variants are refused as Invalid ciphertext, in plain text.
        for bad in v["must_fail"][fail_key].as_array().unwrap() {
            let f = frame::encode(&hx(bad), json.as_bytes());
            let err = peel(&node, &f).unwrap_err();
            assert_eq!(err.error(), &OnionError::InvalidCiphertext);
            let resp = err.response(&mut umbra_crypto::SeededRandom::new(3));
            assert_eq!(
                (resp.status, resp.body.as_slice()),
                (400, &b"Invalid ciphertext"[..])
            );
        }
        // Without enc_type the frame means aes-gcm: the xchacha20 blob then fails.
        let f = frame::encode(
            &hx(&v["xchacha20_blob"]),
            format!(r#"{{"ephemeral_key":"{eph_hex}"}}"#).as_bytes(),
        );
        assert_eq!(
            peel(&node, &f).unwrap_err().error(),
            &OnionError::InvalidCiphertext
        );
    }
}
