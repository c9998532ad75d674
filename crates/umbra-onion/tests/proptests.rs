//! Properties: round trips for any payload, cipher, mode and path length; a layer peeled with
//! the wrong key, truncated or bit-flipped is refused cleanly; arbitrary bytes never panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Net, Wire, deliver};
use proptest::prelude::*;
use serde_json::{Value, json};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::{
    Destination, HopMessage, OnionError, OnionRequest, Peeled, Reply, ReplyBody, RequestBuilder,
    Server, V4Request, V4Response, open_server_request, peel, peel_bencoded,
};

fn enc() -> impl Strategy<Value = EncType> {
    prop_oneof![Just(EncType::AesGcm), Just(EncType::XChaCha20)]
}

fn builder() -> impl Strategy<Value = RequestBuilder> {
    (enc(), any::<bool>()).prop_map(|(e, umbra)| {
        let b = if umbra {
            RequestBuilder::umbra()
        } else {
            RequestBuilder::new()
        };
        b.enc_type(e)
    })
}

/// A request through nodes 0, 1, 2 to storage node 3.
fn request(seed: u64, b: RequestBuilder, payload: &[u8]) -> (Net, OnionRequest) {
    let mut net = Net::new(seed);
    let req = b
        .build(
            &net.path(),
            Destination::Node {
                node: net.hop(3),
                request: payload,
            },
            &mut net.rng,
        )
        .unwrap();
    (net, req)
}

/// What a successful peel amounts to, for comparing two peels.
fn outcome(p: &Peeled) -> (u8, Vec<u8>, Vec<u8>) {
    match p {
        Peeled::Forward(f) => (
            0,
            f.next_node().as_bytes().to_vec(),
            f.ciphertext().to_vec(),
        ),
        Peeled::Destination(d) => (1, vec![], d.body().to_vec()),
        Peeled::Exit(e) => (2, e.url().into_bytes(), e.body().to_vec()),
        _ => (3, vec![], vec![]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_payload_any_mode_any_path_round_trips(
        seed in any::<u64>(),
        b in builder(),
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
        relays in 1usize..=5,
        status in 100u16..600,
        text in ".{0,300}",
    ) {
        let mut net = Net::new(seed);
        let path: Vec<_> = (0..relays).map(|i| net.hop(i)).collect();
        let req = b
            .build(&path, Destination::Node { node: net.hop(5), request: &payload }, &mut net.rng)
            .unwrap();
        let (at, peeled, sizes) = deliver(&net, 0, &req.body, Wire::Frame);
        prop_assert_eq!((at, sizes.len()), (5, relays + 1));
        let Peeled::Destination(d) = peeled else { panic!("not a destination") };
        prop_assert_eq!(d.body(), &payload[..]);
        let resp = d.reply(status, ReplyBody::Text(text.clone()), &mut net.rng);
        match req.reply.open(resp.status, &resp.body).unwrap() {
            Reply::Storage(r) => prop_assert_eq!((r.status, r.body), (status, Value::String(text))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_round_trip(
        seed in any::<u64>(),
        b in builder(),
        body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..2000)),
        code in 100u16..600,
        answer in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let mut net = Net::new(seed);
        let server = Server::https("s.example", net.server.public());
        let request = V4Request { body, ..V4Request::get("/x?y=1") };
        let req = b
            .build(&net.path(), Destination::Server { server: &server, request: &request }, &mut net.rng)
            .unwrap();
        let (_, Peeled::Exit(exit), _) = deliver(&net, 0, &req.body, Wire::Frame) else { panic!() };
        let opened = open_server_request(&net.server, exit.body()).unwrap();
        prop_assert_eq!(opened.v4().unwrap(), request);
        let response = V4Response { code, headers: Default::default(), body: answer };
        let sealed = opened.reply(&response, &mut net.rng);
        let resp = exit.reply(200, sealed, &mut net.rng);
        prop_assert_eq!(req.reply.open(resp.status, &resp.body).unwrap(), Reply::Server(response));
    }

    #[test]
    fn wrong_key_is_refused(seed in any::<u64>(), b in builder(), wrong in 3usize..6) {
        let (net, req) = request(seed, b, b"{}");
        // The edge layer at any other node, and the second layer at any node but N2.
        let err = peel(&net.keys(wrong), &req.body).unwrap_err();
        prop_assert_eq!(err.error(), &OnionError::InvalidCiphertext);
        let Peeled::Forward(f) = peel(&net.keys(0), &req.body).unwrap() else { panic!() };
        let err = peel(&net.keys(wrong), &f.to_frame()).unwrap_err();
        prop_assert_eq!(err.error(), &OnionError::InvalidCiphertext);
        let err = peel_bencoded(&net.keys(0), &f.to_bencoded()).unwrap_err();
        prop_assert_eq!(err.error(), &OnionError::InvalidCiphertext);
    }

    #[test]
    fn truncation_is_refused(seed in any::<u64>(), b in builder(), cut in any::<prop::sample::Index>()) {
        let (net, req) = request(seed, b, b"{}");
        let n = cut.index(req.body.len());
        prop_assert!(peel(&net.keys(0), &req.body[..n]).is_err());
        let Peeled::Forward(f) = peel(&net.keys(0), &req.body).unwrap() else { panic!() };
        let fr = f.to_frame();
        prop_assert!(peel(&net.keys(1), &fr[..cut.index(fr.len())]).is_err());
        let be = f.to_bencoded();
        prop_assert!(peel_bencoded(&net.keys(1), &be[..cut.index(be.len())]).is_err());
    }

    #[test]
    fn bit_flips_are_refused_or_meaningless(
        seed in any::<u64>(),
        b in builder(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (net, req) = request(seed, b, b"{}");
        let keys = net.keys(0);
        let good = outcome(&peel(&keys, &req.body).unwrap());
        let ct_end = 4 + u32::from_le_bytes(req.body[..4].try_into().unwrap()) as usize;
        let i = at.index(req.body.len());
        let mut flipped = req.body.clone();
        flipped[i] ^= 1 << bit;
        match peel(&keys, &flipped) {
            // Length prefix and ciphertext: always refused.
            Err(_) => {}
            Ok(p) => {
                // Only a flip in the control JSON can leave it valid (say, the case of a hex
                // digit): then it must mean exactly the same.
                prop_assert!(i >= ct_end, "flip at {i} (< {ct_end}) accepted");
                prop_assert_eq!(outcome(&p), good);
            }
        }
    }

    #[test]
    fn tampered_replies_are_never_taken_for_the_destination(
        seed in any::<u64>(),
        b in builder(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (mut net, req) = request(seed, b, b"{}");
        let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else { panic!() };
        let resp = d.reply(200, ReplyBody::Json(json!({"ok": true})), &mut net.rng);
        let mut body = resp.body.clone();
        let i = at.index(body.len());
        body[i] ^= 1 << bit;
        match req.reply.open(200, &body) {
            Ok(Reply::Storage(r)) => {
                // Only whitespace around base64 may change without changing the sealed bytes.
                prop_assert_eq!(r.json(), Some(json!({"ok": true})));
            }
            Ok(Reply::Unauthenticated { .. }) | Err(_) => {}
            Ok(other) => panic!("tampered reply read as {other:?}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        seed in any::<u64>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        status in any::<u16>(),
    ) {
        let (net, req) = request(seed, RequestBuilder::umbra(), b"{}");
        let keys = net.keys(0);
        let _ = peel(&keys, &bytes);
        let _ = peel_bencoded(&keys, &bytes);
        let _ = open_server_request(&keys, &bytes);
        let _ = V4Request::decode(&bytes);
        let _ = V4Response::decode(&bytes);
        let _ = req.reply.open(status, &bytes);
        let key = HopKey::client(EncType::AesGcm, &X25519KeyPair::from_secret([3; 32]), &keys.public()).unwrap();
        let _ = HopMessage::open(&key, &bytes);
        // Arbitrary bytes behind a valid length prefix, and as a decrypted layer.
        let mut framed = (bytes.len() as u32 / 2).to_le_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        let _ = peel(&keys, &framed);
    }

    #[test]
    fn arbitrary_control_json_never_panics(
        seed in any::<u64>(),
        fields in proptest::collection::vec(
            (
                prop::sample::select(vec![
                    "headers", "host", "target", "port", "protocol", "destination",
                    "ephemeral_key", "enc_type", "hop_no", "json", "base64", "umbra", "v",
                ]),
                prop_oneof![
                    Just(Value::Null),
                    any::<bool>().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    any::<u64>().prop_map(Value::from),
                    any::<f64>().prop_map(|f| json!(f)),
                    ".{0,70}".prop_map(Value::from),
                    Just(json!("aes-gcm")),
                    Just(json!("/oxen/v4/lsrpc")),
                    Just(json!({"v": 1, "pad": true, "herr": true})),
                    Just(json!([1, "a", {}])),
                ],
            ),
            0..8,
        ),
        inner in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut net = Net::new(seed);
        let control = Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        let layer = umbra_onion::frame::encode(&inner, control.to_string().as_bytes());
        let eph = X25519KeyPair::generate(&mut net.rng);
        let key = HopKey::client(EncType::XChaCha20, &eph, &net.hop(0).x25519).unwrap();
        let ct = key.encrypt(&layer, &mut net.rng).unwrap();
        let mut outer = control.clone();
        if let Value::Object(o) = &mut outer {
            o.insert("ephemeral_key".into(), hex::encode(eph.public()).into());
            o.insert("enc_type".into(), "xchacha20".into());
        }
        let f = umbra_onion::frame::encode(&ct, outer.to_string().as_bytes());
        match peel(&net.keys(0), &f) {
            Ok(Peeled::Forward(fw)) => {
                let _ = fw.to_frame();
                let _ = fw.to_bencoded();
                let _ = fw.fail(&OnionError::RequestTimeout, &mut net.rng);
            }
            Ok(Peeled::Destination(d)) => {
                let _ = d.reply(200, ReplyBody::Json(control), &mut net.rng);
            }
            Ok(Peeled::Exit(e)) => {
                let _ = e.url();
                let _ = e.reply(200, inner, &mut net.rng);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = e.response(&mut net.rng);
            }
        }
        // The unencrypted control JSON alone, as an outer frame.
        let _ = peel(&net.keys(0), &umbra_onion::frame::encode(b"x", outer.to_string().as_bytes()));
    }
}
