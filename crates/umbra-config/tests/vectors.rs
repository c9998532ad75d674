//! The contract: every config vector of `shared/vectors/config.json` and the `config_*`
//! vectors of `shared/vectors/groups-config-attachments.json`, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value as Json;
use umbra_config::crypt::{self, Opened};
use umbra_config::diff::diff;
use umbra_config::message::merge;
use umbra_config::{ConfigHash, ConfigMessage, MergeOutcome, Parsed, Value};

fn load(name: &str) -> Json {
    let path = format!(
        "{}/../../../shared/vectors/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn by_name(file: &Json, name: &str) -> Json {
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

fn key(v: &Json) -> [u8; 32] {
    hx(v).try_into().unwrap()
}

fn gca(name: &str) -> Json {
    by_name(&load("groups-config-attachments.json"), name)
}

/// Parses a serialised message vector and checks its hash and that it re-serialises exactly.
fn message(name: &str) -> Parsed {
    let v = gca(name);
    let bytes = hx(&v["serialized_hex"]);
    let p = ConfigMessage::parse(&bytes).unwrap();
    assert_eq!(p.hash.0.to_vec(), hx(&v["hash"]), "{name} hash");
    assert_eq!(p.message.serialise(), bytes, "{name} round trip");
    assert_eq!(p.message.hash(), p.hash);
    p
}

#[test]
fn config_encrypt_vectors() {
    let file = load("config.json");
    let v = by_name(&file, "config_encrypt_1");
    let pt = v["plaintext_utf8"].as_str().unwrap().as_bytes();
    let ct = crypt::encrypt(&key(&v["key_base"]), v["domain"].as_str().unwrap(), pt).unwrap();
    assert_eq!(ct, hx(&v["ciphertext"]));
    assert_eq!(ct[ct.len() - 24..], hx(&v["nonce"])[..]);
    let back = crypt::decrypt(&key(&v["key_base"]), v["domain"].as_str().unwrap(), &ct).unwrap();
    assert_eq!(&back[..], pt);

    for name in [
        "config_encrypt_nonce_other_domain",
        "config_encrypt_nonce_other_key",
    ] {
        let v = by_name(&file, name);
        let pt = v["plaintext_utf8"].as_str().unwrap().as_bytes();
        let ct = crypt::encrypt(&key(&v["key_base"]), v["domain"].as_str().unwrap(), pt).unwrap();
        assert_eq!(ct[ct.len() - 24..], hx(&v["nonce"])[..], "{name}");
    }
}

#[test]
fn padded_size_table() {
    let file = load("config.json");
    let cases = file["padded_size"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for c in cases {
        let [size, overhead, want] = [0, 1, 2].map(|i| c[i].as_u64().unwrap() as usize);
        assert_eq!(crypt::padded_size(size, overhead), want, "{c}");
    }
}

#[test]
fn user_profile_push_seqno1() {
    let v = by_name(&load("config.json"), "user_profile_push_seqno1");
    let hash0 = hx(&v["HASH0"]);
    let empty = ConfigMessage::empty();
    assert_eq!(empty.serialise(), b"d1:#i0e1:&de1:<le1:=dee");
    assert_eq!(empty.hash().0.to_vec(), hash0);

    let template = v["plaintext_after_padding_template"].as_str().unwrap();
    let (before, after) = template.split_once("<HASH0>").unwrap();
    let want = [before.as_bytes(), &hash0, after.as_bytes()].concat();

    let mut m = empty.increment(empty.hash());
    let orig = m.data.clone();
    m.data.insert(b"+".to_vec(), Value::from(9));
    m.data.insert(b"n".to_vec(), Value::from("Kallie"));
    m.data.insert(
        b"p".to_vec(),
        Value::from("http://example.org/omg-pic-123.bmp"),
    );
    m.data.insert(
        b"q".to_vec(),
        Value::from("secret78901234567890123456789012"),
    );
    m.diff = diff(&orig, &m.data);
    assert_eq!(m.serialise(), want);

    let seed = key(&v["key_base"]);
    let sealed = crypt::seal(&seed, "UserProfile", &want).unwrap();
    assert_eq!(sealed, vec![hx(&v["ciphertext"])]);
    assert_eq!(sealed[0].len(), 256);
    let plain = crypt::decrypt(&seed, "UserProfile", &sealed[0]).unwrap();
    assert_eq!(plain.iter().take_while(|&&b| b == 0).count(), 36);
    assert_eq!(
        crypt::open(&seed, "UserProfile", &sealed[0]).unwrap(),
        Opened::Whole(want)
    );
}

#[test]
fn config_signature() {
    use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
    let v = gca("config_signature");
    let signed = hx(&v["signed_message_hex"]);
    let p = ConfigMessage::parse(&signed).unwrap();
    assert_eq!(p.hash.0.to_vec(), hx(&v["signed_message_hash"]));
    assert_eq!(p.message.serialise(), signed);
    assert_eq!(p.message.signed_bytes(), hx(&v["signed_bytes_hex"]));
    let (signed_part, sig_part) = ConfigMessage::signed_part(&signed).unwrap();
    assert_eq!(signed_part, hx(&v["signed_bytes_hex"]));
    assert_eq!(sig_part.to_vec(), hx(&v["signature"]));
    let unsigned = hx(&gca("config_message_seqno10")["serialized_hex"]);
    assert_eq!(ConfigMessage::signed_part(&unsigned), None);
    let sk = hx(&v["ed25519_secret_key"]);
    let key = SigningKey::from_bytes(&sk[..32].try_into().unwrap());
    let sig = key.sign(&p.message.signed_bytes());
    assert_eq!(sig.to_bytes().to_vec(), hx(&v["signature"]));
    assert_eq!(p.message.signature, Some(sig.to_bytes()));
    key.verifying_key()
        .verify(&p.message.signed_bytes(), &sig)
        .unwrap();
}

#[test]
fn serialised_messages() {
    message("config_message_seqno10");
    message("config_message_seqno123");
}

/// `next` is `prev` incremented, with its data changed to `next`'s: checks the lag rules and
/// the diff generation of §2.6.
fn check_increment(prev: &Parsed, next: &Parsed) {
    let mut m = prev.message.increment(prev.hash);
    let orig = m.data.clone();
    m.data = next.message.data.clone();
    m.diff = diff(&orig, &m.data);
    assert_eq!(m.serialise(), next.message.serialise());
    assert_eq!(m.hash(), next.hash);
}

#[test]
fn increments_124_125a_125b() {
    let m123 = message("config_message_seqno123");
    let m124 = message("config_message_seqno124");
    let m125a = message("config_message_seqno125a");
    let m125b = message("config_message_seqno125b");
    check_increment(&m123, &m124);
    check_increment(&m124, &m125a);
    check_increment(&m124, &m125b);
}

#[test]
fn merge_125a_125b() {
    let v = gca("config_merge_125a_125b");
    let want = hx(&v["merged_serialized_hex"]);
    let want_hash = hx(&v["merged_hash"]);
    let m124 = message("config_message_seqno124");
    let a = message("config_message_seqno125a");
    let b = message("config_message_seqno125b");
    // A stale message: seqno 120 is 5 behind 125, so redundant whatever it holds.
    let mut stale = ConfigMessage::empty();
    stale.seqno = 120;
    stale.data.insert(b"zzz".to_vec(), Value::from(1));
    let stale = stale.into_parsed();
    for inputs in [
        vec![a.clone(), b.clone()],
        vec![b.clone(), a.clone()],
        vec![m124.clone(), a.clone(), b.clone()],
        vec![b.clone(), stale.clone(), a.clone(), m124.clone(), b.clone()],
    ] {
        let Some(MergeOutcome::Merged(m)) = merge(&inputs) else {
            panic!("expected a merge");
        };
        assert_eq!(m.seqno, 126);
        assert_eq!(m.serialise(), want);
        assert_eq!(m.hash(), ConfigHash(want_hash.clone().try_into().unwrap()));
    }
    // One live message: adopted unchanged (124 is listed by 125a's lag; 120 is too old).
    assert_eq!(
        merge(&[m124.clone(), a.clone(), stale]),
        Some(MergeOutcome::Adopt(1))
    );
}
