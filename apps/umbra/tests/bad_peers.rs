#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault scenario of the storage nodes (issue 12 §5) on a real devnet of 5 nodes (one swarm):
//! **bad peers on the peer port are refused, counted in the node's metrics, and store
//! nothing.** This process plays each bad peer against one member over the network, as a
//! stranger would:
//!
//! - **a node not in the list**: a certificate of a fresh key is refused at the TLS handshake,
//!   so its forwarded store never reaches gRPC (`refused_handshake`), and the node holds
//!   nothing of it;
//! - **a replayed replication message**: the bytes a member sent on a real connection (a
//!   forwarded store, recorded by a relay in this process) sent again on a new connection are
//!   refused at the handshake too (the node's fresh key exchange makes the recorded records
//!   undecryptable), and the node serves nothing more (`requests_served` unchanged);
//! - **an oversized message**: a member's `Reconcile` stream message beyond the 8 MiB request
//!   limit is refused while decoding (`RESOURCE_EXHAUSTED`); a unary forward beyond it is
//!   refused by gRPC's decoder before any handler (`OUT_OF_RANGE`) and nothing of it is
//!   stored. Each is counted in `refused_too_large`.
//!
//! The member's key comes from its data directory (`data/node_ed25519.key`): what a compromised
//! member would hold. The in-process tests of `umbra-replica` (`tests/peer_auth.rs`) cover
//! the rest: members of other swarms, a certificate of a member's key without the key, nodes
//! dropped from the list mid-connection, out-of-bounds lists.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::devnet_up;
use common::storage::{self, NAMESPACE, all_hashes, now_ms, signed_store};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use umbra_clock::{Clock as _, SystemClock};
use umbra_crypto::{Ed25519PublicKey, Identity, OsRandom};
use umbra_peer_tls::NodeCertificate;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_proto::umbra::peer::v2::peer_client::PeerClient;

/// The peer API's request limit (`umbra_replica::wire::MAX_REQUEST_BYTES`).
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// How long a counter may take to move: the node counts a failed handshake in its accepting
/// task, maybe a moment after the client gave up.
const COUNTED_WITHIN: Duration = Duration::from_secs(10);

/// A member as `devnet status --json` shows it.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    key: Ed25519PublicKey,
    https_port: u16,
    metrics_port: u16,
    peer: SocketAddr,
}

fn members(status: &Value) -> Vec<Member> {
    let port = |n: &Value, f: &str| u16::try_from(n[f].as_u64().unwrap()).unwrap();
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Member {
            name: n["name"].as_str().unwrap().to_owned(),
            key: n["pubkey_ed25519"].as_str().unwrap().parse().unwrap(),
            https_port: port(n, "https_port"),
            metrics_port: port(n, "metrics_port"),
            peer: SocketAddr::from(([127, 0, 0, 1], port(n, "peer_port"))),
        })
        .collect()
}

/// The node key of member `name`, from its data directory.
fn member_identity(devnet: &Path, name: &str) -> Identity {
    let seed: [u8; 32] = std::fs::read(
        devnet
            .join("nodes")
            .join(name)
            .join("data/node_ed25519.key"),
    )
    .unwrap()
    .try_into()
    .expect("a 32-byte seed");
    Identity::from_seed(&seed)
}

/// The node's replication counters (`umbra_replica_*`) from its metrics endpoint.
async fn counters(http: &reqwest::Client, m: &Member) -> BTreeMap<String, u64> {
    let url = format!("http://127.0.0.1:{}/metrics", m.metrics_port);
    let text = http.get(url).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("umbra_replica_"))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// Waits until counter `name` of `m` exceeds `before`; panics after [`COUNTED_WITHIN`].
async fn counted(http: &reqwest::Client, m: &Member, name: &str, before: u64) -> u64 {
    let start = SystemClock.instant();
    loop {
        let now = counters(http, m).await.get(name).copied().unwrap_or(0);
        if now > before {
            return now;
        }
        assert!(
            SystemClock.since(start) < COUNTED_WITHIN,
            "{name} of {} stayed at {before}",
            m.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A gRPC client of `server`'s peer API over TLS as `own`, connecting to `via` (the node's
/// peer port, or a relay in front of it).
fn peer_client(
    own: &Identity,
    server: &Member,
    via: SocketAddr,
) -> PeerClient<tonic::transport::Channel> {
    let cert = NodeCertificate::new(own).unwrap();
    let config = umbra_peer_tls::client_config(Some(&cert), server.key).unwrap();
    let channel = umbra_peer_tls::channel_with(config, via, |e| {
        e.timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(10))
    })
    .unwrap();
    PeerClient::new(channel).max_encoding_message_size(usize::MAX)
}

/// A forwarded `store` of `data` for `me` (signed as a client's would be).
fn forward_store(me: &Identity, data: &[u8]) -> pb::ForwardRequest {
    pb::ForwardRequest {
        method: "store".into(),
        params_json: serde_json::to_vec(&signed_store(me, data, now_ms())).unwrap(),
    }
}

/// The first page of digests: a harmless first message of a `Reconcile` stream.
fn digests_page() -> pb::ReconcileRequest {
    pb::ReconcileRequest {
        ask: Some(pb::reconcile_request::Ask::Digests(pb::DigestsRequest {
            after: None,
            limit: 10,
        })),
    }
}

/// A relay on loopback to `target` that records every byte its (single) client sends.
async fn recording_relay(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = sent.clone();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(target).await.unwrap();
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let up = async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if to_server.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = to_server.shutdown().await;
        };
        let down = async move {
            let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
            let _ = to_client.shutdown().await;
        };
        tokio::join!(up, down);
    });
    (addr, sent)
}

/// Sends `bytes` to `target` on a new connection and returns what comes back until the node
/// closes it (bounded in time).
async fn replay(target: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(target).await.unwrap();
    // A write may fail once the node has refused and closed; what it answered is the point.
    let _ = tcp.write_all(bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    answer
}

#[test]
fn bad_peers_are_refused_counted_and_store_nothing() {
    let (devnet, _network) = devnet_up("5");
    let all = members(&devnet.status());
    assert_eq!(all.len(), 5, "{all:?}");
    let (target, member) = (&all[0], &all[1]);
    let member_key = member_identity(devnet.path(), &member.name);
    assert_eq!(
        member_key.ed25519_public(),
        member.key,
        "the member's key file"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = storage::client(Duration::from_secs(20));
        let before = counters(&http, target).await;
        let count = |name: &str| before.get(name).copied().unwrap_or(0);

        // A node not in the list: refused at the handshake, counted, nothing stored.
        let alice = Identity::generate(&mut OsRandom);
        let stranger = Identity::generate(&mut OsRandom);
        let r = peer_client(&stranger, target, target.peer)
            .forward(forward_store(&alice, b"from a stranger"))
            .await;
        assert!(r.is_err(), "a stranger's forward was answered: {r:?}");
        let refused = counted(
            &http,
            target,
            "umbra_replica_refused_handshake_total",
            count("umbra_replica_refused_handshake_total"),
        )
        .await;
        assert!(
            all_hashes(&http, target.https_port, &alice).await.unwrap().is_empty(),
            "the stranger's store was kept"
        );

        // A member's real forward, recorded on its way.
        let bob = Identity::generate(&mut OsRandom);
        let (relay, recorded) = recording_relay(target.peer).await;
        let answer = peer_client(&member_key, target, relay)
            .forward(forward_store(&bob, b"a real copy"))
            .await
            .expect("a member's forward is served")
            .into_inner();
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(all_hashes(&http, target.https_port, &bob).await.unwrap().len(), 1);
        let served = counters(&http, target).await["umbra_replica_requests_served_total"];

        // The same bytes again, on a new connection: the handshake fails (counted) and no
        // HTTP/2 frame comes back, so nothing is served.
        let bytes = recorded.lock().unwrap().clone();
        assert!(bytes.len() > 500, "recorded {} bytes", bytes.len());
        let back = replay(target.peer, &bytes).await;
        // TLS records only (a ServerHello, encrypted records, an alert): never a plaintext
        // HTTP/2 frame, which starts with a length and a frame type, not a record type.
        assert!(
            back.first().is_none_or(|t| (0x15..=0x17).contains(t)),
            "the replay got something else than TLS records: {:?}",
            &back[..back.len().min(16)]
        );
        counted(&http, target, "umbra_replica_refused_handshake_total", refused).await;
        let after = counters(&http, target).await;
        assert_eq!(
            after["umbra_replica_requests_served_total"], served,
            "the replay was served"
        );

        // Oversized messages from the member. A unary forward beyond the limit is refused by
        // gRPC's decoder before any handler (`OUT_OF_RANGE`) and stores nothing; a stream
        // message beyond it is refused while decoding. Both are counted.
        let carol = Identity::generate(&mut OsRandom);
        let big = vec![b'a'; MAX_REQUEST_BYTES + 1024];
        let mut grpc = peer_client(&member_key, target, target.peer);
        let r = grpc.forward(forward_store(&carol, &big)).await;
        assert_eq!(r.map(|_| ()).unwrap_err().code(), tonic::Code::OutOfRange);
        assert!(
            all_hashes(&http, target.https_port, &carol).await.unwrap().is_empty(),
            "the oversized store was kept"
        );
        let too_large = counted(
            &http,
            target,
            "umbra_replica_refused_too_large_total",
            count("umbra_replica_refused_too_large_total"),
        )
        .await;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tx.send(digests_page()).await.unwrap();
        let mut answers = grpc
            .reconcile(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .expect("a member may reconcile")
            .into_inner();
        assert!(answers.message().await.unwrap().is_some(), "the first page");
        let oversized = pb::ReconcileRequest {
            ask: Some(pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
                hashes: vec![vec![0; 32]; MAX_REQUEST_BYTES / 32 + 1],
            })),
        };
        tx.send(oversized).await.unwrap();
        let code = answers.message().await.unwrap_err().code();
        assert_eq!(code, tonic::Code::ResourceExhausted);
        counted(
            &http,
            target,
            "umbra_replica_refused_too_large_total",
            too_large,
        )
        .await;
        eprintln!(
            "refused: {} handshakes, {} too large; namespace {NAMESPACE} of the bad peers' accounts empty",
            counters(&http, target).await["umbra_replica_refused_handshake_total"]
                - count("umbra_replica_refused_handshake_total"),
            counters(&http, target).await["umbra_replica_refused_too_large_total"]
                - count("umbra_replica_refused_too_large_total"),
        );
    });
}
