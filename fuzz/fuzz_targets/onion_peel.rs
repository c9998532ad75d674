//! A node peeling one onion layer (`peel`, and `peel_bencoded` for the same layer in Session's
//! node-to-node form), with a fixed node key.
//!
//! The first input byte picks the mode:
//! - `0..=127`: the rest is the raw frame a client POSTs to `/onion_req/v2`;
//! - otherwise the rest is the *decrypted layer* (a frame with this node's instructions): the
//!   target seals it for the node under a fixed ephemeral key (enc type from the byte), frames
//!   it as a client would (or bencodes it as a relay would) and peels it, so the fuzzer reaches
//!   the layer parser behind the AEAD.
//!
//! Properties: never panics; whatever was peeled can be answered, forwarded and failed.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use umbra_crypto::SeededRandom;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::{OnionError, PeelError, Peeled, ReplyBody, peel, peel_bencoded};

struct Fixture {
    node: X25519KeyPair,
    ephemeral: X25519KeyPair,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| Fixture {
    node: X25519KeyPair::from_secret([7; 32]),
    ephemeral: X25519KeyPair::from_secret([9; 32]),
});

fn outer_frame(ciphertext: &[u8], control: &serde_json::Value) -> Vec<u8> {
    umbra_onion::frame::encode(ciphertext, control.to_string().as_bytes())
}

fn bencoded(ciphertext: &[u8], enc: EncType, eph: &[u8; 32], hop_no: i64) -> Vec<u8> {
    // Keys in ascending order: data, enc_type, ephemeral_key, hop_no.
    let mut out = b"d4:data".to_vec();
    out.extend_from_slice(format!("{}:", ciphertext.len()).as_bytes());
    out.extend_from_slice(ciphertext);
    let enc = enc.as_str();
    out.extend_from_slice(format!("8:enc_type{}:{enc}", enc.len()).as_bytes());
    out.extend_from_slice(b"13:ephemeral_key32:");
    out.extend_from_slice(eph);
    out.extend_from_slice(format!("6:hop_noi{hop_no}ee").as_bytes());
    out
}

fn exercise(result: Result<Peeled, PeelError>, rng: &mut SeededRandom) {
    match result {
        Ok(Peeled::Forward(f)) => {
            let _ = (f.next_node(), f.next_hop_no(), f.ciphertext());
            let frame = f.to_frame();
            let _ = f.to_bencoded();
            let _ = f.fail(&OnionError::NextNodeNotFound(*f.next_node()), rng);
            // The forwarded frame is well-formed for the next node: this node cannot open it,
            // but it must be refused as ciphertext, not as a malformed frame.
            if let Err(e) = peel(&FIXTURE.node, &frame) {
                let _ = e.response(rng);
            }
        }
        Ok(Peeled::Destination(d)) => {
            let _ = (d.body(), d.embed_json());
            let _ = d.reply(200, ReplyBody::Text("ok".into()), rng);
            let _ = d.reply(421, ReplyBody::Json(serde_json::json!({"snodes": []})), rng);
            let _ = d.fail(&OnionError::InvalidJson, rng);
        }
        Ok(Peeled::Exit(e)) => {
            let _ = (e.protocol(), e.host(), e.port(), e.target(), e.body());
            let url = e.url();
            assert!(url.starts_with("http"), "exit url {url:?}");
            let _ = e.reply(200, b"{}".to_vec(), rng);
            let _ = e.fail(&OnionError::ServerUnreachable("fuzz".into()), rng);
        }
        Ok(_) => {}
        Err(e) => {
            let _ = (e.error().status(), e.error().body());
            let _ = e.response(rng);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut rng = SeededRandom::new(u64::from(mode));
    let fx = &*FIXTURE;
    if mode < 128 {
        exercise(peel(&fx.node, rest), &mut rng);
        return;
    }
    let enc = if mode & 1 == 0 {
        EncType::AesGcm
    } else {
        EncType::XChaCha20
    };
    let hop_no = i64::from((mode >> 1) & 0x1f) - 8;
    let Ok(key) = HopKey::client(enc, &fx.ephemeral, &fx.node.public()) else {
        return;
    };
    let Ok(sealed) = key.encrypt(rest, &mut rng) else {
        return;
    };
    let eph = fx.ephemeral.public().to_bytes();
    let mut control = serde_json::json!({
        "ephemeral_key": to_hex(&eph),
        "enc_type": enc.as_str(),
        "hop_no": hop_no,
    });
    if mode & 0x40 != 0 {
        control["umbra"] = serde_json::json!({"v": 1, "pad": true, "herr": true});
    }
    exercise(peel(&fx.node, &outer_frame(&sealed, &control)), &mut rng);
    exercise(
        peel_bencoded(&fx.node, &bencoded(&sealed, enc, &eph, hop_no)),
        &mut rng,
    );
});

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
