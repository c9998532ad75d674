//! A client opening the answer to its onion request (`PendingReply::open`): the destination's
//! sealed `{"status", "body"}`, an exit's wrapped v4 answer, a hop's sealed error, or anything
//! a relay makes up.
//!
//! The fixture builds two requests once (3 relays to a storage node; 3 relays to an external
//! server), peels them through the fixed nodes, and keeps every layer key as the nodes compute
//! it. The first input byte picks the request and the mode, the next two the outer status:
//! - mode 0: the rest is the raw answer body;
//! - mode 1/2: the rest is a plaintext sealed under one layer's key (2: then base64), so the
//!   fuzzer reaches the reply parsers behind the AEAD;
//! - mode 3: the rest is the body of a hop error sealed by one hop (must be attributed to it);
//! - mode 4: the rest is the text of a storage reply from the destination (must open to it).
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Identity, SeededRandom};
use umbra_onion::fuzzing::parse_frame;
use umbra_onion::{
    Destination, DestinationRequest, Hop, HopMessage, HopMessageKind, Peeled, PendingReply, Reply,
    ReplyBody, RequestBuilder, Server, V4Request, peel,
};

struct Case {
    reply: PendingReply,
    /// Every layer's key as its node derives it, edge first (the server's last).
    keys: Vec<HopKey>,
    /// The destination's side of the storage request.
    dest: Option<DestinationRequest>,
}

fn layer_key(enc: EncType, node: &X25519KeyPair, frame: &[u8]) -> HopKey {
    let (_, json, _) = parse_frame(frame).expect("the fixture's frames parse");
    let eph = json["ephemeral_key"].as_str().expect("ephemeral_key");
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&eph[2 * i..2 * i + 2], 16).expect("hex");
    }
    HopKey::node(enc, node, &umbra_crypto::X25519PublicKey::from_bytes(k)).expect("layer key")
}

fn case(server: bool, enc: EncType) -> Case {
    let mut rng = SeededRandom::new(3);
    let ids: Vec<Identity> = (1..=5u8).map(|i| Identity::from_seed(&[i; 32])).collect();
    let hop = |id: &Identity| Hop {
        ed25519: id.ed25519_public(),
        x25519: id.x25519_public(),
    };
    let path = [hop(&ids[0]), hop(&ids[1]), hop(&ids[2])];
    let v4 = V4Request::get("/room/fuzz");
    let srv = Server::https("example.org", ids[4].x25519_public());
    let dest = if server {
        Destination::Server {
            server: &srv,
            request: &v4,
        }
    } else {
        Destination::Node {
            node: hop(&ids[3]),
            request: br#"{"method":"info","params":{}}"#,
        }
    };
    let req = RequestBuilder::umbra()
        .enc_type(enc)
        .build(&path, dest, &mut rng)
        .expect("the fixture builds");
    let mut keys = Vec::new();
    let mut frame = req.body.clone();
    let mut destination = None;
    for id in &ids[..4] {
        let kp = id.x25519_keypair();
        keys.push(layer_key(enc, &kp, &frame));
        match peel(&kp, &frame).expect("the fixture peels") {
            Peeled::Forward(f) => frame = f.to_frame(),
            Peeled::Destination(d) => {
                destination = Some(d);
                break;
            }
            Peeled::Exit(e) => {
                keys.push(layer_key(enc, &ids[4].x25519_keypair(), e.body()));
                break;
            }
            _ => unreachable!(),
        }
    }
    Case {
        reply: req.reply,
        keys,
        dest: destination,
    }
}

static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    vec![
        case(false, EncType::AesGcm),
        case(true, EncType::AesGcm),
        case(false, EncType::XChaCha20),
        case(true, EncType::XChaCha20),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&[sel, s0, s1], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let status = u16::from_be_bytes([s0, s1]);
    let case = &CASES[usize::from(sel & 3)];
    let mode = (sel >> 2) % 5;
    let which = usize::from(sel >> 5) % case.keys.len();
    let key = &case.keys[which];
    let mut rng = SeededRandom::new(u64::from(sel));
    match mode {
        0 => {
            let _ = case.reply.open(status, rest);
        }
        1 | 2 => {
            let Ok(sealed) = key.encrypt(rest, &mut rng) else {
                return;
            };
            let body = if mode == 2 {
                base64::engine::general_purpose::STANDARD
                    .encode(&sealed)
                    .into_bytes()
            } else {
                sealed
            };
            let _ = case.reply.open(status, &body);
        }
        3 => {
            // A hop message sealed by the server's key is not a hop's; skip it.
            if case.dest.is_none() && which == case.keys.len() - 1 {
                return;
            }
            let msg = HopMessage {
                kind: HopMessageKind::Error,
                status,
                body: rest.to_vec(),
            };
            let sealed = msg.seal(key, sel & 0x10 != 0, &mut rng);
            match case.reply.open(502, &sealed) {
                Ok(Reply::HopError(f)) => {
                    assert_eq!((f.hop, f.status), (which, status), "attributed to its hop");
                }
                other => panic!("a sealed hop error opened as {other:?}"),
            }
        }
        _ => {
            let Some(dest) = &case.dest else {
                return;
            };
            let text = String::from_utf8_lossy(rest).into_owned();
            let resp = dest.reply(status, ReplyBody::Text(text.clone()), &mut rng);
            match case.reply.open(resp.status, &resp.body) {
                Ok(Reply::Storage(r)) => {
                    assert_eq!(r.status, status);
                    assert_eq!(r.body, serde_json::Value::String(text));
                }
                other => panic!("a storage reply opened as {other:?}"),
            }
        }
    }
});
