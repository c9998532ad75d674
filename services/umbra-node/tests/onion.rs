#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Onion requests through in-process nodes on 127.0.0.1:0 that know each other: 3 relays to a
//! destination node and back, to a stand-in external server, hop-attributable errors for a
//! down or unknown hop, Session-style unpadded requests, refusals of bad frames, and the
//! nodes' own record of what they saw (the destination never sees the client's connection,
//! the edge never sees the request).
//!
//! The client binds 127.0.0.2, so a node that sees a connection from 127.0.0.2 saw the client;
//! nodes connect to each other from 127.0.0.1.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use umbra_crypto::SeededRandom;
use umbra_crypto::keys::X25519KeyPair;
use umbra_node::onion::Outcome;
use umbra_node::testing::{TestAccount, TestNode, now_ms, raw_https, share_view};
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;
use umbra_onion::padding::SIZE_CLASSES;
use umbra_onion::{
    Destination, EncType, Hop, Protocol, Reply, RequestBuilder, Server, V4Request, V4Response,
    open_server_request,
};

const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const SWARM_A: u64 = 0x1000_0000_0000_0000;
const SWARM_B: u64 = 0x9000_0000_0000_0000;

struct Net {
    nodes: Vec<TestNode>,
    infos: Vec<NodeEntry>,
}

impl Net {
    /// `swarm_of[i]` is node i's swarm. Every node knows every node.
    async fn start(swarm_of: &[u64]) -> Net {
        let mut nodes = Vec::new();
        for _ in swarm_of {
            nodes.push(TestNode::start().await.unwrap());
        }
        let infos = share_view(nodes.iter().zip(swarm_of.iter().copied()));
        Net { nodes, infos }
    }

    fn hop(&self, i: usize) -> Hop {
        Hop {
            ed25519: self.infos[i].pubkey_ed25519,
            x25519: self.infos[i].pubkey_x25519,
        }
    }

    fn path(&self, idx: &[usize]) -> Vec<Hop> {
        idx.iter().map(|&i| self.hop(i)).collect()
    }

    fn state(&self, i: usize) -> &Arc<umbra_node::NodeState> {
        self.nodes[i].node().unwrap().state()
    }

    fn url(&self, i: usize) -> String {
        format!("{}/onion_req/v2", self.nodes[i].base_url())
    }
}

/// The client's HTTPS client, connecting from 127.0.0.2 and accepting self-signed certificates.
fn client() -> reqwest::Client {
    umbra_node::identity::install_default_crypto_provider();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(IpAddr::V4(CLIENT_IP))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = client.post(url).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

fn rpc(method: &str, params: Value) -> Vec<u8> {
    json!({"method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// Sends `request` through `path` (node indices, edge first) to node `dest`; opens the reply.
async fn via(
    net: &Net,
    client: &reqwest::Client,
    builder: RequestBuilder,
    path: &[usize],
    dest: usize,
    request: &[u8],
    rng: &mut SeededRandom,
) -> (Reply, usize) {
    let req = builder
        .build(
            &net.path(path),
            Destination::Node {
                node: net.hop(dest),
                request,
            },
            rng,
        )
        .unwrap();
    let (status, body) = post(client, &net.url(path[0]), req.body).await;
    (req.reply.open(status, &body).unwrap(), body.len())
}

fn storage(reply: Reply) -> (u16, Value) {
    match reply {
        Reply::Storage(r) => {
            let status = r.status;
            let body = r.json().unwrap_or(r.body);
            (status, body)
        }
        other => panic!("expected a storage reply, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_to_a_destination_and_back_and_what_each_node_saw() {
    let net = Net::start(&[SWARM_A; 4]).await;
    let client = client();
    let mut rng = SeededRandom::new(1);
    let acct = TestAccount::new(7);
    let data = b"through three relays".to_vec();

    // Store and retrieve through N0 → N1 → N2 → D(3), with Umbra's padding and hop errors.
    let store = rpc("store", acct.store_params(0, now_ms(), 3_600_000, &data));
    let (reply, len) = via(
        &net,
        &client,
        RequestBuilder::umbra(),
        &[0, 1, 2],
        3,
        &store,
        &mut rng,
    )
    .await;
    let (status, body) = storage(reply);
    assert_eq!(status, 200, "{body}");
    let hash = body["hash"].as_str().unwrap().to_string();
    assert!(SIZE_CLASSES.contains(&len), "padded reply of {len} bytes");

    let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
    let (reply, len) = via(
        &net,
        &client,
        RequestBuilder::umbra(),
        &[0, 1, 2],
        3,
        &retrieve,
        &mut rng,
    )
    .await;
    let (status, body) = storage(reply);
    assert_eq!(status, 200, "{body}");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["hash"], hash);
    assert_eq!(
        msgs[0]["data"],
        base64::engine::general_purpose::STANDARD.encode(&data)
    );
    assert!(SIZE_CLASSES.contains(&len), "padded reply of {len} bytes");

    // What each node saw. The edge: the client's connection, a layer it forwarded, no request.
    let edge = net.state(0).onion.events();
    assert_eq!(edge.len(), 2);
    for ev in &edge {
        assert_eq!(ev.peer.ip(), IpAddr::V4(CLIENT_IP));
        assert_eq!(ev.outcome, Outcome::Forwarded);
        assert_eq!(ev.hop_no, Some(1));
        assert_eq!(ev.next_node, Some(net.infos[1].pubkey_ed25519));
        assert!(!ev.saw_plaintext_rpc);
    }
    // Relays: only other nodes' connections, no request.
    for i in [1, 2] {
        for ev in net.state(i).onion.events() {
            assert_ne!(ev.peer.ip(), IpAddr::V4(CLIENT_IP));
            assert_eq!(ev.outcome, Outcome::Forwarded);
            assert_eq!(ev.hop_no, Some(u8::try_from(i + 1).unwrap()));
            assert!(!ev.saw_plaintext_rpc);
        }
    }
    // The destination: the request, but never the client's connection.
    let dest = net.state(3).onion.events();
    assert_eq!(dest.len(), 2);
    for ev in &dest {
        assert_ne!(ev.peer.ip(), IpAddr::V4(CLIENT_IP));
        assert_eq!(ev.outcome, Outcome::Destination);
        assert_eq!(ev.hop_no, Some(4));
        assert!(ev.saw_plaintext_rpc);
    }
    // Only the destination ran the storage RPC.
    for i in 0..3 {
        assert_eq!(net.state(i).metrics.request_count("store", 200), 0);
        assert_eq!(net.state(i).metrics.request_count("retrieve", 200), 0);
    }
    assert_eq!(net.state(3).metrics.request_count("store", 200), 1);
    assert_eq!(net.state(3).metrics.request_count("retrieve", 200), 1);

    // Relays reuse their connection to the next node: more requests, still one connection
    // from N0 to N1 (HTTP/2 or keep-alive), so no new TLS handshake per hop.
    for _ in 0..5 {
        let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
        let (reply, _) = via(
            &net,
            &client,
            RequestBuilder::umbra(),
            &[0, 1, 2],
            3,
            &retrieve,
            &mut rng,
        )
        .await;
        assert_eq!(storage(reply).0, 200);
    }
    let peers: HashSet<_> = net.state(1).onion.events().iter().map(|e| e.peer).collect();
    assert_eq!(peers.len(), 1, "N1 saw N0 on {peers:?}");
    assert!(net.state(1).onion.events().iter().all(|e| e.http2));
    assert_eq!(net.state(1).onion.outcome_count(Outcome::Forwarded), 7);

    // Metrics by outcome on the operator port.
    let m = reqwest::get(net.nodes[3].metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("umbra_node_onion_requests_total{outcome=\"destination\"} 7"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_style_unpadded_requests_are_served() {
    let net = Net::start(&[SWARM_A; 4]).await;
    let client = client();
    let mut rng = SeededRandom::new(2);
    let acct = TestAccount::new(8);
    let store = rpc("store", acct.store_params(0, now_ms(), 3_600_000, b"hi"));
    // libsession (xchacha20) and desktop (aes-gcm) shapes; no `umbra` key anywhere.
    for enc in [EncType::XChaCha20, EncType::AesGcm] {
        let builder = RequestBuilder::new().enc_type(enc);
        let (reply, _) = via(&net, &client, builder, &[0, 1, 2], 3, &store, &mut rng).await;
        assert_eq!(storage(reply).0, 200);
        let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
        let (reply, len) = via(&net, &client, builder, &[2, 0, 1], 3, &retrieve, &mut rng).await;
        let (status, body) = storage(reply);
        assert_eq!(status, 200, "{body}");
        assert!(!body["messages"].as_array().unwrap().is_empty());
        // Unpadded: a Session client gets Session's exact reply size, not a size class.
        assert!(!SIZE_CLASSES.contains(&len), "{len}");
    }
    // "json": true embeds the result (Session's option).
    let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
    let builder = RequestBuilder::new().embed_json(true).base64(false);
    let (reply, _) = via(&net, &client, builder, &[0, 1, 2], 3, &retrieve, &mut rng).await;
    let Reply::Storage(r) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(r.status, 200);
    assert!(r.body.is_object(), "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_outside_the_accounts_swarm_answers_421() {
    let net = Net::start(&[SWARM_A, SWARM_A, SWARM_A, SWARM_B]).await;
    let client = client();
    let mut rng = SeededRandom::new(3);
    // An account that maps to swarm A, sent to node 3 (swarm B).
    let view = net.state(0).swarm.get();
    let acct = (0..100u64)
        .map(TestAccount::new)
        .find(|a| view.swarm_for(&a.pubkey_bytes()) == Some(SWARM_A))
        .unwrap();
    let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
    let (reply, _) = via(
        &net,
        &client,
        RequestBuilder::umbra(),
        &[0, 1, 2],
        3,
        &retrieve,
        &mut rng,
    )
    .await;
    let (status, body) = storage(reply);
    assert_eq!(status, 421);
    assert_eq!(body["swarm"], format!("{SWARM_A:x}"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_middle_hop_is_named_by_the_hop_before_it_and_another_path_works() {
    let mut net = Net::start(&[SWARM_A; 5]).await;
    let client = client();
    let mut rng = SeededRandom::new(4);
    let acct = TestAccount::new(9);
    let down = net.infos[1].pubkey_ed25519;
    let n1 = net.nodes.remove(1);
    let _dir = n1.stop().await;
    let infos = net.infos.clone();
    net.infos.remove(1); // indices below are into the nodes still running …
    let hop_of = |i: usize| Hop {
        ed25519: infos[i].pubkey_ed25519,
        x25519: infos[i].pubkey_x25519,
    };
    let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
    // … but the path is built from the original list: N0 → N1 (down) → N2 → D(N3).
    let path = [hop_of(0), hop_of(1), hop_of(2)];
    let dest = Destination::Node {
        node: hop_of(3),
        request: &retrieve,
    };

    // Umbra client: an error sealed by N0 under its own layer key, naming N1.
    let req = RequestBuilder::umbra()
        .build(&path, dest, &mut rng)
        .unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    match req.reply.open(status, &body).unwrap() {
        Reply::HopError(f) => {
            assert_eq!(f.hop, 0);
            assert_eq!(f.node, infos[0].pubkey_ed25519);
            assert_eq!(f.status, 502);
            assert_eq!(
                f.body,
                format!("Next node is currently unreachable: {}", hex::encode(down))
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        net.state(0)
            .onion
            .outcome_count(Outcome::NextNodeUnreachable),
        1
    );

    // Session client: the plain text Session nodes send (unauthenticated).
    let req = RequestBuilder::new().build(&path, dest, &mut rng).unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    assert_eq!(status, 502);
    match req.reply.open(status, &body).unwrap() {
        Reply::Unauthenticated { status, body } => {
            assert_eq!(status, 502);
            assert_eq!(
                String::from_utf8(body).unwrap(),
                format!("Next node is currently unreachable: {}", hex::encode(down))
            );
        }
        other => panic!("{other:?}"),
    }

    // Another path without N1 works: N0 → N2 → N4 → D(N3).
    let path = [hop_of(0), hop_of(2), hop_of(4)];
    let req = RequestBuilder::umbra()
        .build(&path, dest, &mut rng)
        .unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    assert_eq!(storage(req.reply.open(status, &body).unwrap()).0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_next_node_is_not_contacted() {
    let net = Net::start(&[SWARM_A; 3]).await;
    let client = client();
    let mut rng = SeededRandom::new(5);
    let stranger = umbra_crypto::Identity::generate(&mut rng);
    let stranger = Hop {
        ed25519: stranger.ed25519_public(),
        x25519: stranger.x25519_public(),
    };
    let request = rpc("info", json!({}));
    let path = [net.hop(0), stranger, net.hop(1)];
    let dest = Destination::Node {
        node: net.hop(2),
        request: &request,
    };
    let req = RequestBuilder::umbra()
        .build(&path, dest, &mut rng)
        .unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    match req.reply.open(status, &body).unwrap() {
        Reply::HopError(f) => {
            assert_eq!((f.hop, f.status), (0, 502));
            assert_eq!(
                f.body,
                format!("Next node not found: {}", hex::encode(stranger.ed25519))
            );
        }
        other => panic!("{other:?}"),
    }
    let req = RequestBuilder::new().build(&path, dest, &mut rng).unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    assert_eq!(status, 502);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("Next node not found: {}", hex::encode(stranger.ed25519))
    );
    assert_eq!(
        net.state(0).onion.outcome_count(Outcome::NextNodeNotFound),
        2
    );
    assert_eq!(net.state(0).onion.outcome_count(Outcome::Forwarded), 0);
}

/// A stand-in community server: answers `POST /oxen/v4/lsrpc` by decrypting the request and
/// echoing its method, endpoint and body in a v4 reply. Returns its port and X25519 key.
async fn stand_in_server() -> (
    u16,
    umbra_crypto::X25519PublicKey,
    tokio::sync::mpsc::Receiver<String>,
) {
    let key = Arc::new(X25519KeyPair::generate(&mut SeededRandom::new(99)));
    let public = key.public();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen_rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let key = key.clone();
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let key = key.clone();
                    let seen_tx = seen_tx.clone();
                    async move {
                        let path = req.uri().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = seen_tx.send(path).await;
                        let resp = match open_server_request(&key, &body) {
                            Ok(sr) => {
                                let v4 = sr.v4().unwrap();
                                let echo = json!({
                                    "method": v4.method,
                                    "endpoint": v4.endpoint,
                                    "body": String::from_utf8_lossy(&v4.body.unwrap_or_default()),
                                });
                                let reply = V4Response {
                                    code: 201,
                                    headers: BTreeMap::from([(
                                        "content-type".to_string(),
                                        "application/json".to_string(),
                                    )]),
                                    body: echo.to_string().into_bytes(),
                                };
                                hyper::Response::new(Full::new(Bytes::from(
                                    sr.reply(&reply, &mut SeededRandom::new(1)),
                                )))
                            }
                            Err(e) => {
                                let mut r = hyper::Response::new(Full::new(Bytes::from(e.body())));
                                *r.status_mut() = hyper::StatusCode::BAD_REQUEST;
                                r
                            }
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (port, public, seen_rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_to_an_external_server_and_back() {
    let net = Net::start(&[SWARM_A; 3]).await;
    let client = client();
    let mut rng = SeededRandom::new(6);
    let (port, server_key, mut seen) = stand_in_server().await;
    let server = Server {
        host: "127.0.0.1".into(),
        port: Some(port),
        protocol: Protocol::Http,
        target: "/oxen/v4/lsrpc".into(),
        x25519: server_key,
    };
    let request = V4Request::post_json("/room/lobby/message", &json!({"text": "hello"}));
    for builder in [RequestBuilder::umbra(), RequestBuilder::new()] {
        let req = builder
            .build(
                &net.path(&[0, 1, 2]),
                Destination::Server {
                    server: &server,
                    request: &request,
                },
                &mut rng,
            )
            .unwrap();
        let (status, body) = post(&client, &net.url(0), req.body).await;
        match req.reply.open(status, &body).unwrap() {
            Reply::Server(r) => {
                assert_eq!(r.code, 201);
                let echo: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(echo["method"], "POST");
                assert_eq!(echo["endpoint"], "/room/lobby/message");
                assert_eq!(echo["body"], r#"{"text":"hello"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(seen.recv().await.unwrap(), "/oxen/v4/lsrpc");
    }
    let exit = net.state(2).onion.events();
    assert!(
        exit.iter()
            .all(|e| e.outcome == Outcome::Exit && e.hop_no == Some(3))
    );
    assert!(exit.iter().all(|e| e.peer.ip() != IpAddr::V4(CLIENT_IP)));

    // A server that is down: the exit says so, sealed under its key for an Umbra client.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let gone = Server {
        port: Some(dead_port),
        ..server.clone()
    };
    let req = RequestBuilder::umbra()
        .build(
            &net.path(&[0, 1, 2]),
            Destination::Server {
                server: &gone,
                request: &request,
            },
            &mut rng,
        )
        .unwrap();
    let (status, body) = post(&client, &net.url(0), req.body).await;
    match req.reply.open(status, &body).unwrap() {
        Reply::HopError(f) => {
            assert_eq!((f.hop, f.status), (2, 502));
            assert_eq!(f.node, net.infos[2].pubkey_ed25519);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        net.state(2).onion.outcome_count(Outcome::ServerUnreachable),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_looping_frames_are_refused_early() {
    let net = Net::start(&[SWARM_A; 2]).await;
    let client = client();
    let mut rng = SeededRandom::new(7);

    // Not a frame.
    let (status, body) = post(&client, &net.url(0), b"ab".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with("Error parsing onion request: ")
    );

    // Larger than the frame limit: refused on Content-Length, before any body is read.
    let raw = b"POST /onion_req/v2 HTTP/1.1\r\nHost: n\r\nContent-Length: 20000000\r\nConnection: close\r\n\r\n";
    let out = raw_https(net.nodes[0].node().unwrap().client_addr(), raw)
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(
        out.contains("Error parsing onion request: frame of 20000000 bytes exceeds"),
        "{out}"
    );

    // A valid request, then tampered with.
    let request = rpc("info", json!({}));
    let build = |rng: &mut SeededRandom| {
        RequestBuilder::new()
            .build(
                &net.path(&[0]),
                Destination::Node {
                    node: net.hop(1),
                    request: &request,
                },
                rng,
            )
            .unwrap()
    };
    let mut bad = build(&mut rng).body;
    bad[10] ^= 1;
    let (status, body) = post(&client, &net.url(0), bad).await;
    assert_eq!((status, body.as_slice()), (400, &b"Invalid ciphertext"[..]));

    // hop_no above the limit (a loop, or a client lying about its position).
    let frame = build(&mut rng).body;
    let n = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    let mut json: serde_json::Map<String, Value> = serde_json::from_slice(&frame[4 + n..]).unwrap();
    json.insert("hop_no".into(), json!(16));
    let mut looped = frame[..4 + n].to_vec();
    looped.extend_from_slice(Value::Object(json).to_string().as_bytes());
    let (status, body) = post(&client, &net.url(0), looped).await;
    assert_eq!(
        (status, body.as_slice()),
        (400, &b"onion request max path length exceeded"[..])
    );

    // And the untouched request still works (1 relay, then the destination).
    let req = build(&mut rng);
    let (status, body) = post(&client, &net.url(0), req.body).await;
    assert_eq!(storage(req.reply.open(status, &body).unwrap()).0, 200);

    // A node without a node list is not ready.
    let s = net.state(0);
    let view = s.swarm.get();
    s.swarm.set(SwarmView::empty(
        umbra_crypto::Ed25519PublicKey::from_bytes([0; 32]),
    ));
    let req = build(&mut rng);
    let (status, body) = post(&client, &net.url(0), req.body).await;
    assert_eq!(status, 503);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!(
            "Snode not ready: {}",
            hex::encode(net.infos[0].pubkey_ed25519)
        )
    );
    s.swarm.set((*view).clone());
    assert_eq!(s.onion.outcome_count(Outcome::NotReady), 1);

    assert_eq!(s.onion.outcome_count(Outcome::Malformed), 2);
    assert_eq!(s.onion.outcome_count(Outcome::InvalidCiphertext), 1);
    assert_eq!(s.onion.outcome_count(Outcome::HopLimit), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_learn_each_other_from_the_registry_relay_onions() {
    use umbra_node::testing::TestNetwork;
    let net = TestNetwork::start(5).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let client = client();
    let mut rng = SeededRandom::new(8);
    let hop = |i: usize| {
        let id = &net.node(i).unwrap().node().unwrap().state().identity;
        Hop {
            ed25519: id.ed25519_public(),
            x25519: id.x25519_public(),
        }
    };
    let url = |i: usize| format!("{}/onion_req/v2", net.node(i).unwrap().base_url());
    let acct = TestAccount::new(21);
    let owners = net.owners_of(&acct).unwrap();
    let dest = owners[0];
    let others: Vec<usize> = (0..5).filter(|i| *i != dest).collect();

    // Store at one owner through three relays (the view came from the signed list) …
    let store = rpc(
        "store",
        acct.store_params(0, now_ms(), 3_600_000, b"via registry"),
    );
    let path: Vec<Hop> = others[..3].iter().map(|&i| hop(i)).collect();
    let req = RequestBuilder::umbra()
        .build(
            &path,
            Destination::Node {
                node: hop(dest),
                request: &store,
            },
            &mut rng,
        )
        .unwrap();
    let (status, body) = post(&client, &url(others[0]), req.body).await;
    let (status, body) = storage(req.reply.open(status, &body).unwrap());
    assert_eq!(status, 200, "{body}");

    // … and read it back from every owner through another path (replication did the rest).
    for &owner in &owners {
        let relays: Vec<usize> = (0..5).filter(|i| *i != owner).take(3).collect();
        let path: Vec<Hop> = relays.iter().rev().map(|&i| hop(i)).collect();
        let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
        let req = RequestBuilder::umbra()
            .build(
                &path,
                Destination::Node {
                    node: hop(owner),
                    request: &retrieve,
                },
                &mut rng,
            )
            .unwrap();
        let (status, body) = post(&client, &url(relays[2]), req.body).await;
        let (status, body) = storage(req.reply.open(status, &body).unwrap());
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["messages"].as_array().unwrap().len(), 1, "{body}");
    }
}
