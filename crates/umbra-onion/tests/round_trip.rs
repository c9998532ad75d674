//! Whole onion requests and their replies as plain function calls: client → N1 → N2 → N3 →
//! destination (storage node or external server) → back, for both ciphers, Session-compatible
//! and with Umbra's extensions; hop errors, forgeries, padding, limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::{Net, Wire, back, deliver};
use serde_json::{Value, json};
use umbra_crypto::hop::{EncType, HopKey};
use umbra_crypto::keys::X25519KeyPair;
use umbra_crypto::{Ed25519PublicKey, X25519PublicKey};
use umbra_onion::padding::SIZE_CLASSES;
use umbra_onion::{
    BuildError, Destination, HopFailure, HopMessage, HopMessageKind, MAX_FRAME_LEN, OnionError,
    Peeled, Protocol, Reply, ReplyBody, RequestBuilder, Server, StorageReply, UmbraOptions,
    V4Request, V4Response, frame, open_server_request, peel,
};

const ENCS: [EncType; 2] = [EncType::AesGcm, EncType::XChaCha20];

fn builders() -> Vec<(&'static str, RequestBuilder)> {
    vec![
        ("session", RequestBuilder::new()),
        ("umbra", RequestBuilder::umbra()),
    ]
}

const RETRIEVE: &[u8] = br#"{"method":"retrieve","params":{"pubkey":"05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72","namespace":0,"timestamp":1700000000000,"signature":"AAAA"}}"#;

fn store_rpc(data_len: usize) -> Vec<u8> {
    json!({"method": "store", "params": {
        "pubkey": "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72",
        "namespace": 0, "timestamp": 1700000000000u64, "ttl": 1209600000u64,
        "data": "A".repeat(data_len)}})
    .to_string()
    .into_bytes()
}

#[test]
fn storage_destination_round_trip_three_relays() {
    for enc in ENCS {
        for (mode, builder) in builders() {
            for wire in [Wire::Frame, Wire::Bencoded] {
                let mut net = Net::new(1);
                let dest = net.hop(3);
                let req = builder
                    .enc_type(enc)
                    .build(
                        &net.path(),
                        Destination::Node {
                            node: dest,
                            request: RETRIEVE,
                        },
                        &mut net.rng,
                    )
                    .unwrap();
                assert_eq!(req.reply.nodes().count(), 4);

                let (at, peeled, _) = deliver(&net, 0, &req.body, wire);
                assert_eq!(at, 3, "{mode} {enc:?}: the fourth node is the destination");
                let Peeled::Destination(d) = peeled else {
                    panic!("{mode}: not a destination")
                };
                assert_eq!(d.body(), RETRIEVE);
                assert!(!d.embed_json());
                assert_eq!(d.replier().enc_type(), enc);
                assert_eq!(d.replier().hop_no(), 4);

                let result = json!({"messages": [{"hash": "abc", "data": "AAAA"}], "more": false});
                let resp = d.reply(200, ReplyBody::Json(result.clone()), &mut net.rng);
                assert_eq!(resp.status, 200);
                let (status, body) = back(resp);
                let reply = req.reply.open(status, &body).unwrap();
                let Reply::Storage(StorageReply { status, body }) = reply else {
                    panic!("{mode} {enc:?}: {reply:?}")
                };
                assert_eq!(status, 200);
                // Session double-encodes JSON results unless the client asked for "json": true.
                assert_eq!(body, Value::String(result.to_string()));
                assert_eq!(
                    StorageReply { status, body }.json(),
                    Some(result),
                    "{mode} {enc:?} {wire:?}"
                );
            }
        }
    }
}

#[test]
fn storage_destination_as_third_hop_and_json_options() {
    // The brief's literal shape: hop1 → forward, hop2 → forward, hop3 is the destination.
    for enc in ENCS {
        let mut net = Net::new(2);
        let path = [net.hop(0), net.hop(1)];
        let req = RequestBuilder::umbra()
            .enc_type(enc)
            .embed_json(true)
            .base64(false)
            .build(
                &path,
                Destination::Node {
                    node: net.hop(2),
                    request: RETRIEVE,
                },
                &mut net.rng,
            )
            .unwrap();
        let (at, peeled, sizes) = deliver(&net, 0, &req.body, Wire::Frame);
        assert_eq!((at, sizes.len()), (2, 3));
        let Peeled::Destination(d) = peeled else {
            panic!()
        };
        assert!(d.embed_json());
        // A wrong-swarm answer: the real status is inside.
        let swarm = json!({"snodes": [{"ip": "127.0.0.1", "port": "22021"}]});
        let (status, body) = back(d.reply(421, ReplyBody::Json(swarm.clone()), &mut net.rng));
        assert_eq!(status, 200);
        assert!(
            base64::engine::general_purpose::STANDARD
                .decode(&body)
                .is_err(),
            "raw reply when base64 is false"
        );
        match req.reply.open(status, &body).unwrap() {
            Reply::Storage(r) => assert_eq!((r.status, r.body), (421, swarm)),
            other => panic!("{other:?}"),
        }
    }
}

fn server_request() -> V4Request {
    let mut r = V4Request::post_json("/room/lobby/message", &json!({"data": "aGk="}));
    r.headers.insert("X-SOGS-Pubkey".into(), "00abc".into());
    r
}

#[test]
fn external_server_round_trip() {
    for enc in ENCS {
        for (mode, builder) in builders() {
            let mut net = Net::new(3);
            let server = Server::https("sogs.example.org", net.server.public());
            let request = server_request();
            let req = builder
                .enc_type(enc)
                .build(
                    &net.path(),
                    Destination::Server {
                        server: &server,
                        request: &request,
                    },
                    &mut net.rng,
                )
                .unwrap();
            assert_eq!(req.reply.nodes().count(), 3);
            let (at, peeled, _) = deliver(&net, 0, &req.body, Wire::Frame);
            assert_eq!(at, 2, "N3 is the exit");
            let Peeled::Exit(exit) = peeled else {
                panic!("{mode}: not an exit")
            };
            assert_eq!(exit.url(), "https://sogs.example.org/oxen/v4/lsrpc");
            assert_eq!(
                (exit.protocol(), exit.port(), exit.target()),
                (Protocol::Https, 443, "/oxen/v4/lsrpc")
            );
            // The exit POSTs its whole decrypted frame, without Umbra's padding.
            assert_eq!(exit.body().last(), Some(&b'}'));

            // The stand-in server opens the frame, decodes v4 and answers.
            let opened = open_server_request(&net.server, exit.body()).unwrap();
            assert_eq!(opened.v4().unwrap(), request);
            let answer = V4Response {
                code: 201,
                headers: [("content-type".to_string(), "application/json".to_string())].into(),
                body: br#"{"id": 123}"#.to_vec(),
            };
            let sealed = opened.reply(&answer, &mut net.rng);
            let resp = exit.reply(200, sealed.clone(), &mut net.rng);
            if mode == "umbra" {
                assert_eq!(resp.status, 200);
                assert!(SIZE_CLASSES.contains(&resp.body.len()), "padded to a class");
            } else {
                assert_eq!(
                    (resp.status, &resp.body),
                    (200, &sealed),
                    "Session: passed through"
                );
            }
            let (status, body) = back(resp);
            assert_eq!(
                req.reply.open(status, &body).unwrap(),
                Reply::Server(answer),
                "{mode} {enc:?}"
            );
        }
    }
}

#[test]
fn server_reply_parser_falls_back_to_aes_gcm() {
    // An old push server answers an xchacha20 request with aes-gcm under the same DH.
    let mut net = Net::new(4);
    let server = Server::https("push.example.org", net.server.public());
    let request = V4Request::get("/status");
    let req = RequestBuilder::new()
        .build(
            &net.path(),
            Destination::Server {
                server: &server,
                request: &request,
            },
            &mut net.rng,
        )
        .unwrap();
    let (_, Peeled::Exit(exit), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
        panic!()
    };
    let parsed: Value = {
        let b = exit.body();
        let n = u32::from_le_bytes(b[..4].try_into().unwrap()) as usize;
        serde_json::from_slice(&b[4 + n..]).unwrap()
    };
    let eph: [u8; 32] = hex::decode(parsed["ephemeral_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let gcm = HopKey::node(
        EncType::AesGcm,
        &net.server,
        &X25519PublicKey::from_bytes(eph),
    )
    .unwrap();
    let answer = V4Response {
        code: 200,
        headers: Default::default(),
        body: b"up".to_vec(),
    };
    let sealed = gcm.encrypt(&answer.encode(), &mut net.rng).unwrap();
    assert_eq!(req.reply.open(200, &sealed).unwrap(), Reply::Server(answer));
}

#[test]
fn server_that_cannot_decrypt() {
    for (mode, builder) in builders() {
        let mut net = Net::new(5);
        // The client has the wrong key for the server.
        let server = Server::https(
            "files.example.org",
            X25519KeyPair::generate(&mut net.rng).public(),
        );
        let request = V4Request::get("/file/1");
        let req = builder
            .build(
                &net.path(),
                Destination::Server {
                    server: &server,
                    request: &request,
                },
                &mut net.rng,
            )
            .unwrap();
        let (_, Peeled::Exit(exit), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
            panic!()
        };
        let err = open_server_request(&net.server, exit.body()).unwrap_err();
        assert_eq!(err, OnionError::InvalidCiphertext);
        let plain = err.plain_response();
        let (status, body) = back(exit.reply(plain.status, plain.body, &mut net.rng));
        let reply = req.reply.open(status, &body).unwrap();
        match mode {
            "umbra" => assert_eq!(
                reply,
                Reply::ServerUnencrypted {
                    exit: 2,
                    status: 400,
                    body: b"Invalid ciphertext".to_vec()
                }
            ),
            _ => assert_eq!(
                reply,
                Reply::Unauthenticated {
                    status: 400,
                    body: b"Invalid ciphertext".to_vec()
                }
            ),
        }
    }
}

#[test]
fn middle_hop_error_names_that_hop_and_only_with_its_key() {
    for enc in ENCS {
        for (mode, builder) in builders() {
            let mut net = Net::new(6);
            let req = builder
                .enc_type(enc)
                .build(
                    &net.path(),
                    Destination::Node {
                        node: net.hop(3),
                        request: RETRIEVE,
                    },
                    &mut net.rng,
                )
                .unwrap();
            // N1 forwards to N2; N2 cannot reach N3.
            let Peeled::Forward(f1) = peel(&net.keys(0), &req.body).unwrap() else {
                panic!()
            };
            let Peeled::Forward(f2) = peel(&net.keys(1), &f1.to_frame()).unwrap() else {
                panic!()
            };
            let n3 = net.hop(2).ed25519;
            assert_eq!(f2.next_node(), &n3);
            let err = OnionError::NextNodeNotFound(n3);
            let resp = f2.fail(&err, &mut net.rng);
            assert_eq!(resp.status, 502);
            let (status, body) = back(resp);
            let reply = req.reply.open(status, &body).unwrap();
            let text = format!("Next node not found: {}", hex::encode(n3));
            if mode == "umbra" {
                assert_eq!(
                    reply,
                    Reply::HopError(HopFailure {
                        hop: 1,
                        node: net.hop(1).ed25519,
                        status: 502,
                        body: text.clone()
                    })
                );
                assert!(SIZE_CLASSES.contains(&body.len()), "hop errors are padded");
            } else {
                assert_eq!(
                    body,
                    text.as_bytes(),
                    "Session: plain text, exactly the spec's body"
                );
                assert_eq!(
                    reply,
                    Reply::Unauthenticated {
                        status: 502,
                        body: text.clone().into_bytes()
                    }
                );
            }

            // The edge forges the same error on N2's behalf: plain text, or sealed under a key
            // it made up. Neither is attributed to N2.
            let forged_plain = req.reply.open(502, text.as_bytes()).unwrap();
            assert!(matches!(forged_plain, Reply::Unauthenticated { .. }));
            let fake_key = HopKey::client(
                enc,
                &X25519KeyPair::generate(&mut net.rng),
                &net.hop(1).x25519,
            )
            .unwrap();
            let forged = HopMessage {
                kind: HopMessageKind::Error,
                status: 502,
                body: text.clone().into_bytes(),
            }
            .seal(&fake_key, true, &mut net.rng);
            assert!(matches!(
                req.reply.open(502, &forged).unwrap(),
                Reply::Unauthenticated { .. }
            ));
            // What the edge *can* seal is an error in its own name: attributed to the edge.
            let own = f1.fail(
                &OnionError::NextNodeUnreachable(net.hop(1).ed25519),
                &mut net.rng,
            );
            if mode == "umbra" {
                let Reply::HopError(h) = req.reply.open(own.status, &own.body).unwrap() else {
                    panic!()
                };
                assert_eq!((h.hop, h.node), (0, net.hop(0).ed25519));
            }
        }
    }
}

#[test]
fn tampering_relay_makes_the_next_hop_report_invalid_ciphertext() {
    for (mode, builder) in builders() {
        let mut net = Net::new(7);
        let req = builder
            .build(
                &net.path(),
                Destination::Node {
                    node: net.hop(3),
                    request: RETRIEVE,
                },
                &mut net.rng,
            )
            .unwrap();
        let Peeled::Forward(f1) = peel(&net.keys(0), &req.body).unwrap() else {
            panic!()
        };
        let mut tampered = f1.to_frame();
        tampered[10] ^= 0x80;
        let err = peel(&net.keys(1), &tampered).unwrap_err();
        assert_eq!(err.error(), &OnionError::InvalidCiphertext);
        let (status, body) = back(err.response(&mut net.rng));
        assert_eq!(status, 400);
        match (mode, req.reply.open(status, &body).unwrap()) {
            ("umbra", Reply::HopError(h)) => {
                assert_eq!((h.hop, h.body.as_str()), (1, "Invalid ciphertext"))
            }
            ("session", Reply::Unauthenticated { body, .. }) => {
                assert_eq!(body, b"Invalid ciphertext")
            }
            (m, r) => panic!("{m}: {r:?}"),
        }
    }
}

#[test]
fn session_wrapped_errors_are_attributed_too() {
    // Session nodes wrap "Invalid json" under the failing hop's key; the client names the hop.
    let mut net = Net::new(8);
    let req = RequestBuilder::new()
        .build(
            &net.path(),
            Destination::Node {
                node: net.hop(3),
                request: RETRIEVE,
            },
            &mut net.rng,
        )
        .unwrap();
    let Peeled::Forward(f1) = peel(&net.keys(0), &req.body).unwrap() else {
        panic!()
    };
    let Peeled::Forward(f2) = peel(&net.keys(1), &f1.to_frame()).unwrap() else {
        panic!()
    };
    let resp = f2.replier().error(&OnionError::InvalidJson, &mut net.rng);
    assert_eq!(resp.status, 200);
    let Reply::HopError(h) = req.reply.open(resp.status, &resp.body).unwrap() else {
        panic!()
    };
    assert_eq!((h.hop, h.status, h.body.as_str()), (1, 400, "Invalid json"));

    // The destination's wrapped "Snode not ready" reads as its reply, as in Session.
    let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
        panic!()
    };
    let resp = d.fail(&OnionError::DestinationNotReady, &mut net.rng);
    let Reply::Storage(r) = req.reply.open(resp.status, &resp.body).unwrap() else {
        panic!()
    };
    assert_eq!(
        (r.status, r.body),
        (503, Value::String("Snode not ready".into()))
    );
}

#[test]
fn reflected_request_layer_is_not_a_reply() {
    // N3 returns the destination's layer (sealed under the destination key) as "the reply".
    let mut net = Net::new(9);
    for base64 in [true, false] {
        let req = RequestBuilder::new()
            .base64(base64)
            .build(
                &net.path(),
                Destination::Node {
                    node: net.hop(3),
                    request: RETRIEVE,
                },
                &mut net.rng,
            )
            .unwrap();
        let Peeled::Forward(f1) = peel(&net.keys(0), &req.body).unwrap() else {
            panic!()
        };
        let Peeled::Forward(f2) = peel(&net.keys(1), &f1.to_frame()).unwrap() else {
            panic!()
        };
        let Peeled::Forward(f3) = peel(&net.keys(2), &f2.to_frame()).unwrap() else {
            panic!()
        };
        let layer = f3.ciphertext().to_vec();
        let body = if base64 {
            base64::engine::general_purpose::STANDARD
                .encode(&layer)
                .into_bytes()
        } else {
            layer
        };
        assert!(matches!(
            req.reply.open(200, &body).unwrap(),
            Reply::Unauthenticated { .. }
        ));
    }
}

#[test]
fn padding_hides_request_kind_and_size() {
    for enc in ENCS {
        let mut net = Net::new(10);
        let server = Server::https("sogs.example.org", net.server.public());
        let small = V4Request::get("/capabilities");
        let store = store_rpc(600);
        let big_store = store_rpc(102_400);
        let b = RequestBuilder::umbra().enc_type(enc);
        let mut traces = Vec::new();
        for dest in [
            Destination::Node {
                node: net.hop(3),
                request: RETRIEVE,
            },
            Destination::Node {
                node: net.hop(3),
                request: &store,
            },
            Destination::Server {
                server: &server,
                request: &small,
            },
        ] {
            let req = b.build(&net.path(), dest, &mut net.rng).unwrap();
            assert_eq!(req.body.len(), SIZE_CLASSES[0]);
            let (_, _, sizes) = deliver(&net, 0, &req.body, Wire::Frame);
            traces.push(sizes);
        }
        // N1, N2 and N3 see the same sizes whatever the request (N3 learns the kind from its
        // own layer anyway).
        assert_eq!(traces[0], traces[1]);
        assert_eq!(traces[0][..3], traces[2][..3]);
        let req = b
            .build(
                &net.path(),
                Destination::Node {
                    node: net.hop(3),
                    request: &big_store,
                },
                &mut net.rng,
            )
            .unwrap();
        assert_eq!(req.body.len(), SIZE_CLASSES[3]);
        let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
            panic!()
        };
        assert_eq!(
            d.body(),
            big_store,
            "padding is invisible to the storage RPC"
        );

        // Replies: an empty retrieve and one with messages land in the same class.
        for result in [
            json!({"messages": []}),
            json!({"messages": [{"data": "B".repeat(2500)}]}),
        ] {
            let resp = d.reply(200, ReplyBody::Json(result.clone()), &mut net.rng);
            assert_eq!(resp.body.len(), SIZE_CLASSES[0]);
            let Reply::Storage(r) = req.reply.open(resp.status, &resp.body).unwrap() else {
                panic!()
            };
            assert_eq!(r.json(), Some(result));
        }
        let resp = d.reply(200, ReplyBody::Text("x".repeat(20_000)), &mut net.rng);
        assert_eq!(resp.body.len(), SIZE_CLASSES[2]);
    }
}

#[test]
fn session_clients_are_never_padded() {
    let mut net = Net::new(11);
    let req = RequestBuilder::new()
        .build(
            &net.path(),
            Destination::Node {
                node: net.hop(3),
                request: RETRIEVE,
            },
            &mut net.rng,
        )
        .unwrap();
    assert!(!SIZE_CLASSES.contains(&req.body.len()));
    let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
        panic!()
    };
    assert_eq!(d.replier().umbra(), None);
    let resp = d.reply(200, ReplyBody::Text("ok".into()), &mut net.rng);
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&resp.body)
        .unwrap();
    // Exactly Session's reply: nonce + {"body":"ok","status":200} + tag.
    assert_eq!(
        sealed.len(),
        EncType::XChaCha20.overhead() + r#"{"body":"ok","status":200}"#.len()
    );
}

#[test]
fn an_unknown_umbra_version_is_ignored() {
    // A node meets `"umbra": {"v": 2, …}`: it behaves like a Session node.
    let mut net = Net::new(12);
    let eph = X25519KeyPair::generate(&mut net.rng);
    let key = HopKey::client(EncType::XChaCha20, &eph, &net.hop(0).x25519).unwrap();
    let inner = frame::encode(
        b"{}",
        br#"{"headers":"","umbra":{"v":2,"pad":true,"herr":true}}"#,
    );
    let ct = key.encrypt(&inner, &mut net.rng).unwrap();
    let outer = json!({"ephemeral_key": hex::encode(eph.public()), "enc_type": "xchacha20", "umbra": {"v": 2, "herr": true}});
    let f = frame::encode(&ct, outer.to_string().as_bytes());
    let Peeled::Destination(d) = peel(&net.keys(0), &f).unwrap() else {
        panic!()
    };
    assert_eq!(d.replier().umbra(), None);
    // v1 with a non-boolean flag reads as false.
    let outer = json!({"ephemeral_key": hex::encode(eph.public()), "enc_type": "xchacha20", "umbra": {"v": 1, "herr": "yes", "pad": true}});
    let f = frame::encode(&ct, outer.to_string().as_bytes());
    let Peeled::Destination(d) = peel(&net.keys(0), &f).unwrap() else {
        panic!()
    };
    assert_eq!(
        d.replier().umbra(),
        Some(UmbraOptions {
            pad: true,
            hop_errors: false
        })
    );
}

/// One layer to node `i` whose plaintext is `inner`, as a client would send it to the edge.
fn single_layer(net: &mut Net, i: usize, inner: &[u8], outer_extra: Value) -> (Vec<u8>, HopKey) {
    let eph = X25519KeyPair::generate(&mut net.rng);
    let key = HopKey::client(EncType::XChaCha20, &eph, &net.hop(i).x25519).unwrap();
    let ct = key.encrypt(inner, &mut net.rng).unwrap();
    let mut outer = json!({"ephemeral_key": hex::encode(eph.public()), "enc_type": "xchacha20"});
    if let (Value::Object(o), Value::Object(extra)) = (&mut outer, outer_extra) {
        o.extend(extra);
    }
    (frame::encode(&ct, outer.to_string().as_bytes()), key)
}

#[test]
fn exit_rules() {
    let mut net = Net::new(13);
    let cases = [
        (
            json!({"host": "h.example", "target": "/oxen/v4/lsrpc"}),
            Ok("https://h.example/oxen/v4/lsrpc"),
        ),
        (
            json!({"host": "h.example", "target": "/loki/v3/lsrpc", "protocol": "http", "port": 80}),
            Ok("http://h.example/loki/v3/lsrpc"),
        ),
        (
            json!({"host": "10.1.2.3", "target": "/oxen/v4/lsrpc", "protocol": "http", "port": 8080}),
            Ok("http://10.1.2.3:8080/oxen/v4/lsrpc"),
        ),
        (
            json!({"host": "::1", "target": "/oxen/v4/lsrpc", "port": 4443}),
            Ok("https://[::1]:4443/oxen/v4/lsrpc"),
        ),
        (
            json!({"host": "h.example", "target": "/oxen/v4/lsrpc?x=1"}),
            Err(OnionError::InvalidUrl),
        ),
        (
            json!({"host": "h.example", "target": "/api/lsrpc"}),
            Err(OnionError::InvalidUrl),
        ),
        (
            json!({"host": "h.example", "target": "/oxen/v4/rpc"}),
            Err(OnionError::InvalidUrl),
        ),
        (
            json!({"host": "h.example", "target": "/oxen/v4/lsrpc", "protocol": "ftp"}),
            Err(OnionError::InvalidUrl),
        ),
        (
            json!({"host": "evil.example/x?", "target": "/oxen/v4/lsrpc"}),
            Err(OnionError::InvalidUrl),
        ),
        (
            json!({"host": "user@h.example", "target": "/oxen/v4/lsrpc"}),
            Err(OnionError::InvalidUrl),
        ),
        (json!({"host": "h.example"}), Err(OnionError::InvalidJson)),
        (
            json!({"host": "h.example", "target": "/oxen/v4/lsrpc", "port": 70000}),
            Err(OnionError::InvalidJson),
        ),
        (
            json!({"host": 5, "target": "/oxen/v4/lsrpc"}),
            Err(OnionError::InvalidJson),
        ),
    ];
    for (control, expect) in cases {
        let inner = frame::encode(b"sealed-for-server", control.to_string().as_bytes());
        let (f, key) = single_layer(&mut net, 0, &inner, json!({}));
        match (peel(&net.keys(0), &f), expect) {
            (Ok(Peeled::Exit(e)), Ok(url)) => {
                assert_eq!(e.url(), url);
                assert_eq!(e.body(), inner, "the whole decrypted frame is POSTed");
            }
            (Err(err), Err(want)) => {
                assert_eq!(err.error(), &want, "{control}");
                // Session wraps both under the layer key, base64, in a 200.
                let resp = err.response(&mut net.rng);
                assert_eq!(resp.status, 200);
                let pt = key
                    .decrypt(
                        &base64::engine::general_purpose::STANDARD
                            .decode(&resp.body)
                            .unwrap(),
                    )
                    .unwrap();
                let v: Value = serde_json::from_slice(&pt).unwrap();
                assert_eq!(v, json!({"status": 400, "body": want.body()}));
            }
            (got, want) => panic!("{control}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn control_json_dispatch_and_relay_refusals() {
    let mut net = Net::new(14);
    let n2 = hex::encode(net.hop(1).ed25519);
    let eph = hex::encode([9u8; 32]);
    // `headers` wins over `host` and `destination`, whatever its value (desktop sends an object).
    let inner = frame::encode(
        b"{}",
        br#"{"body":null,"headers":{"a":"b"},"host":"x","destination":"y"}"#,
    );
    let (f, _) = single_layer(&mut net, 0, &inner, json!({}));
    assert!(matches!(peel(&net.keys(0), &f), Ok(Peeled::Destination(_))));
    // Relay: enc_type defaults to aes-gcm; aliases are accepted.
    for (enc, want) in [
        (None, EncType::AesGcm),
        (Some("gcm"), EncType::AesGcm),
        (Some("xchacha20-poly1305"), EncType::XChaCha20),
    ] {
        let mut c = json!({"destination": n2, "ephemeral_key": eph});
        if let Some(e) = enc {
            c["enc_type"] = e.into();
        }
        let (f, _) = single_layer(
            &mut net,
            0,
            &frame::encode(b"next", c.to_string().as_bytes()),
            json!({}),
        );
        let Ok(Peeled::Forward(fw)) = peel(&net.keys(0), &f) else {
            panic!()
        };
        assert_eq!((fw.ciphertext(), fw.next_hop_no()), (&b"next"[..], 2));
        let next: Value = {
            let fr = fw.to_frame();
            serde_json::from_slice(&fr[4 + 4..]).unwrap()
        };
        assert_eq!(next["enc_type"], want.as_str());
        assert_eq!(next["ephemeral_key"], eph);
    }
    // Relay layers missing a key, with a bad key or an unknown cipher: wrapped Invalid json.
    for c in [
        json!({"ephemeral_key": eph}),
        json!({"destination": n2}),
        json!({"destination": "zz", "ephemeral_key": eph}),
        json!({"destination": n2, "ephemeral_key": eph, "enc_type": "aes-cbc"}),
        json!({"headers": "", "json": "yes"}),
    ] {
        let (f, _) = single_layer(
            &mut net,
            0,
            &frame::encode(b"", c.to_string().as_bytes()),
            json!({}),
        );
        assert_eq!(
            peel(&net.keys(0), &f).unwrap_err().error(),
            &OnionError::InvalidJson,
            "{c}"
        );
    }
    // A layer whose plaintext is not a frame at all.
    for inner in [
        &b""[..],
        b"abc",
        b"\x05\x00\x00\x00abc{}",
        b"\x00\x00\x00\x00[1,2]",
    ] {
        let (f, _) = single_layer(&mut net, 0, inner, json!({}));
        assert_eq!(
            peel(&net.keys(0), &f).unwrap_err().error(),
            &OnionError::InvalidJson
        );
    }
}

#[test]
fn outer_frame_refusals_map_to_the_spec() {
    let mut net = Net::new(15);
    let k = net.keys(0);
    let eph = hex::encode(X25519KeyPair::generate(&mut net.rng).public());
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (vec![], 400, "Error parsing onion request: "),
        (vec![1, 0, 0], 400, "Error parsing onion request: "),
        (
            frame::encode(b"abc", b"{}")[..6].to_vec(),
            400,
            "Error parsing onion request: Unexpected payload size",
        ),
        (
            frame::encode(b"abc", b"not json"),
            400,
            "Error parsing onion request: ",
        ),
        (
            frame::encode(b"abc", b"[1]"),
            400,
            "Error parsing onion request: ",
        ),
        (
            frame::encode(b"abc", b"{}"),
            400,
            "Error parsing onion request: missing or invalid ephemeral_key",
        ),
        (
            frame::encode(b"abc", br#"{"ephemeral_key":"00"}"#),
            400,
            "Error parsing onion request: missing or invalid ephemeral_key",
        ),
        (
            frame::encode(
                b"abc",
                format!(r#"{{"ephemeral_key":"{eph}","enc_type":"aes-cbc"}}"#).as_bytes(),
            ),
            400,
            "Error parsing onion request: unknown enc_type",
        ),
        (
            frame::encode(
                b"abc",
                format!(r#"{{"ephemeral_key":"{eph}","hop_no":"2"}}"#).as_bytes(),
            ),
            400,
            "Error parsing onion request: hop_no is not an integer",
        ),
        (
            frame::encode(
                b"abc",
                format!(r#"{{"ephemeral_key":"{eph}","hop_no":16}}"#).as_bytes(),
            ),
            400,
            "onion request max path length exceeded",
        ),
        (
            frame::encode(b"abc", format!(r#"{{"ephemeral_key":"{eph}"}}"#).as_bytes()),
            400,
            "Invalid ciphertext",
        ),
        // A low-order ephemeral key (all zero) cannot give a key.
        (
            frame::encode(
                b"abc",
                format!(r#"{{"ephemeral_key":"{}"}}"#, "00".repeat(32)).as_bytes(),
            ),
            400,
            "Invalid ciphertext",
        ),
    ];
    for (f, status, prefix) in cases {
        let err = peel(&k, &f).unwrap_err();
        let resp = err.response(&mut net.rng);
        assert_eq!(resp.status, status);
        let body = String::from_utf8(resp.body).unwrap();
        assert!(
            body.starts_with(prefix),
            "{body:?} should start with {prefix:?}"
        );
    }
    let big = vec![0u8; MAX_FRAME_LEN + 1];
    let err = peel(&k, &big).unwrap_err();
    assert!(matches!(err.error(), OnionError::FrameTooLarge { .. }));
    assert_eq!(err.error().status(), 400);
    // hop_no below 1 counts as 1; 15 is accepted.
    for (hop, ok) in [
        (-5i64, true),
        (0, true),
        (15, true),
        (16, false),
        (i64::MAX, false),
    ] {
        let (f, _) = single_layer(
            &mut net,
            0,
            &frame::encode(b"{}", br#"{"headers":""}"#),
            json!({"hop_no": hop}),
        );
        assert_eq!(peel(&net.keys(0), &f).is_ok(), ok, "hop_no {hop}");
    }
}

#[test]
fn build_limits() {
    let mut net = Net::new(16);
    let dest = Destination::Node {
        node: net.hop(3),
        request: RETRIEVE,
    };
    assert_eq!(
        RequestBuilder::new()
            .build(&[], dest, &mut net.rng)
            .unwrap_err(),
        BuildError::EmptyPath
    );
    // 3 relays + destination = 4 nodes; starting at 12 reaches 15, starting at 13 would be 16.
    assert!(
        RequestBuilder::new()
            .start_hop_no(12)
            .build(&net.path(), dest, &mut net.rng)
            .is_ok()
    );
    assert!(matches!(
        RequestBuilder::new()
            .start_hop_no(13)
            .build(&net.path(), dest, &mut net.rng),
        Err(BuildError::TooManyHops { hops: 4, .. })
    ));
    let huge = vec![b'x'; MAX_FRAME_LEN];
    assert!(matches!(
        RequestBuilder::umbra().build(
            &net.path(),
            Destination::Node {
                node: net.hop(3),
                request: &huge
            },
            &mut net.rng
        ),
        Err(BuildError::TooLarge { .. })
    ));
    let bad = Server {
        target: "/oxen/v4/lsrpc?q".into(),
        ..Server::https("h", X25519PublicKey::from_bytes([1; 32]))
    };
    let r = V4Request::get("/");
    assert!(matches!(
        RequestBuilder::new().build(
            &net.path(),
            Destination::Server {
                server: &bad,
                request: &r
            },
            &mut net.rng
        ),
        Err(BuildError::InvalidServer(_))
    ));
    // A low-order node key cannot be encrypted to.
    let weak = umbra_onion::Hop {
        ed25519: Ed25519PublicKey::from_bytes([1; 32]),
        x25519: X25519PublicKey::from_bytes([0; 32]),
    };
    assert_eq!(
        RequestBuilder::new()
            .build(&[weak], dest, &mut net.rng)
            .unwrap_err(),
        BuildError::WeakKey
    );
    // A start hop_no reaches the edge and the count carries on from there.
    let req = RequestBuilder::new()
        .start_hop_no(5)
        .build(&net.path(), dest, &mut net.rng)
        .unwrap();
    let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
        panic!()
    };
    assert_eq!(d.replier().hop_no(), 8);
}

#[test]
fn error_table_matches_the_spec() {
    let k = Ed25519PublicKey::from_bytes([0xabu8; 32]);
    let hexk = hex::encode(k);
    let table: Vec<(OnionError, u16, String, bool)> = vec![
        (
            OnionError::InvalidCiphertext,
            400,
            "Invalid ciphertext".into(),
            false,
        ),
        (OnionError::InvalidJson, 400, "Invalid json".into(), true),
        (
            OnionError::MalformedFrame("x".into()),
            400,
            "Error parsing onion request: x".into(),
            false,
        ),
        (OnionError::InvalidUrl, 400, "Invalid url".into(), true),
        (
            OnionError::HopLimitExceeded,
            400,
            "onion request max path length exceeded".into(),
            false,
        ),
        (
            OnionError::InvalidInternal("d".into()),
            400,
            "Invalid internal onion request: d".into(),
            false,
        ),
        (
            OnionError::NextNodeNotFound(k),
            502,
            format!("Next node not found: {hexk}"),
            false,
        ),
        (
            OnionError::NextNodeUnreachable(k),
            502,
            format!("Next node is currently unreachable: {hexk}"),
            false,
        ),
        (
            OnionError::ServerUnreachable("connect error".into()),
            502,
            "connect error".into(),
            false,
        ),
        (
            OnionError::ServerTimeout("timed out".into()),
            504,
            "timed out".into(),
            false,
        ),
        (
            OnionError::HopNotReady(k),
            503,
            format!("Snode not ready: {hexk}"),
            false,
        ),
        (
            OnionError::DestinationNotReady,
            503,
            "Snode not ready".into(),
            true,
        ),
        (
            OnionError::EdgeNotReady("syncing".into()),
            503,
            "Service node is not ready: syncing\n".into(),
            false,
        ),
        (
            OnionError::ServerBusy,
            503,
            "Server busy, try again later".into(),
            false,
        ),
        (
            OnionError::RequestTimeout,
            504,
            "Request time out".into(),
            false,
        ),
        (
            OnionError::InvalidSnodeResponse,
            500,
            "Invalid response from snode".into(),
            false,
        ),
    ];
    for (e, status, body, wrapped) in table {
        assert_eq!(
            (e.status(), e.body(), e.is_wrapped()),
            (status, body.clone(), wrapped),
            "{e:?}"
        );
        assert_eq!(
            e.plain_response(),
            umbra_onion::Response {
                status,
                body: body.into_bytes()
            }
        );
    }
}

#[test]
fn destination_errors_are_attributed_to_the_destination() {
    for enc in ENCS {
        let mut net = Net::new(17);
        let req = RequestBuilder::umbra()
            .enc_type(enc)
            .build(
                &net.path(),
                Destination::Node {
                    node: net.hop(3),
                    request: RETRIEVE,
                },
                &mut net.rng,
            )
            .unwrap();
        let (_, Peeled::Destination(d), _) = deliver(&net, 0, &req.body, Wire::Frame) else {
            panic!()
        };
        let resp = d.fail(&OnionError::DestinationNotReady, &mut net.rng);
        assert_eq!(resp.status, 503);
        assert_eq!(
            req.reply.open(resp.status, &resp.body).unwrap(),
            Reply::HopError(HopFailure {
                hop: 3,
                node: net.hop(3).ed25519,
                status: 503,
                body: "Snode not ready".into()
            })
        );
    }
}
