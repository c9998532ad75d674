//! Bad peers: the peer API refuses outsiders, non-members, stale, replayed, forged and
//! tampered messages and oversized stream messages — each refusal counted, nothing stored —
//! and a client detects an answer not signed by the member it addressed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Net, SWARM_A, SWARM_B, hash_of, node_identity, owner_at, store_params};
use prost::Message as _;
use tonic::transport::Channel;
use umbra_clock::{Clock, ManualClock};
use umbra_crypto::Identity;
use umbra_proto::umbra::peer::v1 as pb;
use umbra_proto::umbra::peer::v1::peer_client::PeerClient as RawClient;
use umbra_replica::ReplicaError;
use umbra_replica::auth::{self, Direction, Position, Rpc};
use umbra_replica::client::PeerClient;
use umbra_replica::tls::{self, NodeCertificate};
use umbra_replica::wire::MAX_REQUEST_BYTES;

fn client(identity: Identity, clock: Arc<dyn Clock>) -> PeerClient {
    PeerClient::new(
        Arc::new(identity),
        clock,
        std::time::Duration::from_secs(30),
    )
}

fn refused_with<T: std::fmt::Debug>(r: Result<T, ReplicaError>) -> tonic::Code {
    match r {
        Err(ReplicaError::PeerRefused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn digests_page() -> pb::ReconcileRequest {
    pb::ReconcileRequest {
        ask: Some(pb::reconcile_request::Ask::Digests(pb::DigestsRequest {
            after: None,
            limit: 10,
        })),
    }
}

fn forward_store(owner: &umbra_store::AccountId, data: &[u8], now: i64) -> pb::ForwardRequest {
    pb::ForwardRequest {
        method: "store".into(),
        params_json: serde_json::to_vec(&store_params(owner, 0, data, now)).unwrap(),
    }
}

/// A gRPC client of the peer API without the signing layer, over TLS as `own` (a listed node)
/// to the node `server`.
fn raw(own: &Identity, server: &common::TestNode) -> RawClient<Channel> {
    let cert = NodeCertificate::new(own).unwrap();
    let channel = tls::channel(Some(&cert), server.key, server.addr, |e| e).unwrap();
    RawClient::new(channel).max_encoding_message_size(usize::MAX)
}

/// Waits (up to twice the handshake timeout) until `cond` holds.
async fn eventually(cond: impl Fn() -> bool) {
    let wait = async {
        while !cond() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(tls::HANDSHAKE_TIMEOUT * 2, wait)
        .await
        .expect("condition never held");
}

fn opening(rpc: Rpc, ts: i64) -> Position<'static> {
    Position {
        rpc,
        direction: Direction::Request,
        call: None,
        seq: 0,
        timestamp_ms: ts,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_swarm_are_served() {
    // Nodes 0-2 in swarm A, node 3 in swarm B.
    let mut net = Net::start(4).await;
    net.assign(&[Some(SWARM_A), Some(SWARM_A), Some(SWARM_A), Some(SWARM_B)]);
    let target = net.nodes[0].member(SWARM_A, true);
    let clock: Arc<dyn Clock> = net.clock.clone();

    // A member is served.
    let member = client(node_identity(1), clock.clone());
    let (_, answer) = member.reconcile(&target, &digests_page()).await.unwrap();
    let Some(pb::reconcile_response::Answer::Digests(page)) = answer.answer else {
        panic!("a digest page");
    };
    assert!(page.buckets.is_empty());

    // A key that is not in the node list: its certificate is refused at the TLS handshake,
    // before any gRPC work; nothing stored.
    let owner = owner_at(SWARM_A + 1, 1);
    let stranger = client(Identity::from_seed(&[0x55; 32]), clock.clone());
    let r = stranger
        .forward(&target, &forward_store(&owner, b"stranger", net.now()))
        .await;
    assert!(
        matches!(r, Err(ReplicaError::PeerUnreachable { .. })),
        "{r:?}"
    );
    let r = stranger.reconcile(&target, &digests_page()).await;
    assert!(
        matches!(r, Err(ReplicaError::PeerUnreachable { .. })),
        "{r:?}"
    );
    // (Counted by the server's accepting task, maybe a moment after the client gave up.)
    eventually(|| net.nodes[0].replica.metrics().refused_handshake >= 2).await;

    // A registered node of another swarm: no forwarded writes, no reads.
    let other = client(node_identity(3), clock.clone());
    let r = other
        .forward(&target, &forward_store(&owner, b"sneaky", net.now()))
        .await;
    assert_eq!(refused_with(r), tonic::Code::PermissionDenied);
    let r = other.reconcile(&target, &digests_page()).await;
    assert_eq!(refused_with(r), tonic::Code::PermissionDenied);
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
    // ...but it may take its own swarm's range (nothing here: no account of B is held).
    let mut call = other
        .handover(
            &target,
            &pb::HandoverRequest {
                acknowledged: vec![],
                max_buckets: 10,
            },
        )
        .await
        .unwrap();
    assert!(call.next().await.unwrap().is_none());
    // A member of the receiver's own swarm has no range to take from it.
    let r = member
        .handover(
            &target,
            &pb::HandoverRequest {
                acknowledged: vec![],
                max_buckets: 10,
            },
        )
        .await;
    assert_eq!(refused_with(r), tonic::Code::PermissionDenied);

    // A member whose clock is far off: stale.
    let skewed: Arc<dyn Clock> = Arc::new(ManualClock::new(net.clock.now_ms() - 5 * 60_000));
    let late = client(node_identity(2), skewed);
    let r = late.reconcile(&target, &digests_page()).await;
    assert_eq!(refused_with(r), tonic::Code::Unauthenticated);

    // Only recursive methods may be forwarded.
    let r = member
        .forward(
            &target,
            &pb::ForwardRequest {
                method: "retrieve".into(),
                params_json: b"{}".to_vec(),
            },
        )
        .await;
    assert_eq!(refused_with(r), tonic::Code::InvalidArgument);
    let m = net.nodes[0].replica.metrics();
    assert_eq!(m.refused_forbidden, 3, "other swarm twice, member handover");
    assert_eq!(m.refused_unauthenticated, 1, "stale clock");
    assert_eq!(m.refused_malformed, 1, "not a recursive method");
    assert_eq!(m.requests_refused, 5);
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_forged_or_tampered_messages_are_refused() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let sender = node_identity(1);
    let recipient = net.nodes[0].key;
    let mut grpc = raw(&sender, &net.nodes[0]);
    let owner = owner_at(SWARM_A + 7, 7);
    let now = net.now();

    // A genuine forwarded store is applied once; the same message again is a replay.
    let at = opening(Rpc::Forward, now);
    let genuine = auth::seal(
        &sender,
        &recipient,
        &at,
        forward_store(&owner, b"once", now).encode_to_vec(),
    );
    let answer = grpc.forward(genuine.clone()).await.unwrap().into_inner();
    assert!(!answer.signature.is_empty(), "answers are signed");
    assert_eq!(
        net.nodes[0].hashes(&owner, 0, now),
        [hash_of(&owner, 0, b"once")].into()
    );
    let replay = grpc.forward(genuine.clone()).await.unwrap_err();
    assert_eq!(replay.code(), tonic::Code::Unauthenticated);
    assert!(
        replay.message().contains("replayed"),
        "{}",
        replay.message()
    );

    // Forged: another message under the genuine signature; signed by a stranger under a
    // member's key; tampered after signing; signed for another call or recipient.
    let at2 = opening(Rpc::Forward, now + 1);
    let mut forged = genuine.clone();
    forged.payload = forward_store(&owner, b"forged", now).encode_to_vec();
    let mut impersonated = auth::seal(
        &Identity::from_seed(&[0x66; 32]),
        &recipient,
        &at2,
        forward_store(&owner, b"impersonated", now).encode_to_vec(),
    );
    impersonated.signer = sender.ed25519_public().as_bytes().to_vec();
    let mut tampered = auth::seal(
        &sender,
        &recipient,
        &at2,
        forward_store(&owner, b"tampered", now).encode_to_vec(),
    );
    tampered.payload = forward_store(&owner, b"tampered!", now).encode_to_vec();
    let other_call = auth::seal(
        &sender,
        &recipient,
        &opening(Rpc::Reconcile, now + 2),
        forward_store(&owner, b"other call", now).encode_to_vec(),
    );
    let other_recipient = auth::seal(
        &sender,
        &net.nodes[1].key,
        &opening(Rpc::Forward, now + 3),
        forward_store(&owner, b"other node", now).encode_to_vec(),
    );
    let mut garbage = genuine.clone();
    garbage.signature = vec![1, 2, 3];
    for bad in [
        forged,
        impersonated,
        tampered,
        other_call,
        other_recipient,
        garbage,
    ] {
        let e = grpc.forward(bad).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    }
    // Nothing but the genuine message was stored.
    assert_eq!(
        net.nodes[0].hashes(&owner, 0, now),
        [hash_of(&owner, 0, b"once")].into()
    );
    let m = net.nodes[0].replica.metrics();
    assert_eq!(m.refused_replayed, 1);
    assert_eq!(m.refused_unauthenticated, 6);
    assert_eq!(m.requests_refused, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_messages_must_be_bound_in_order_and_within_size() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let sender = node_identity(1);
    let recipient = net.nodes[0].key;
    let mut grpc = raw(&sender, &net.nodes[0]);
    let now = net.now();

    // Opens a stream with a genuine first request, then sends `second`; returns the second
    // answer's status.
    let mut ts = now;
    let mut try_second = async |make: &dyn Fn(&auth::Opened, i64) -> pb::Signed| {
        ts += 1;
        let at = opening(Rpc::Reconcile, ts);
        let first = auth::seal(&sender, &recipient, &at, digests_page().encode_to_vec());
        let opened = auth::parse(&first).unwrap();
        let second = make(&opened, ts);
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tx.send(first).await.unwrap();
        let mut answers = grpc
            .reconcile(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        assert!(answers.message().await.unwrap().is_some(), "first answered");
        tx.send(second).await.unwrap();
        answers.message().await.unwrap_err().code()
    };
    fn next_at(o: &auth::Opened, ts: i64, seq: u64) -> Position<'_> {
        Position {
            rpc: Rpc::Reconcile,
            direction: Direction::Request,
            call: Some(&o.signature),
            seq,
            timestamp_ms: ts,
        }
    }
    // Out of sequence (a repeat of position 0, or a skip to 2).
    let code = try_second(&|o, ts| {
        auth::seal(
            &sender,
            &recipient,
            &next_at(o, ts, 2),
            digests_page().encode_to_vec(),
        )
    })
    .await;
    assert_eq!(code, tonic::Code::Unauthenticated);
    // Signed by another member.
    let code = try_second(&|o, ts| {
        auth::seal(
            &node_identity(0),
            &recipient,
            &next_at(o, ts, 1),
            digests_page().encode_to_vec(),
        )
    })
    .await;
    assert_eq!(code, tonic::Code::Unauthenticated);
    // Larger than the limit: refused while decoding, counted.
    let code = try_second(&|o, ts| {
        let big = pb::ReconcileRequest {
            ask: Some(pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
                hashes: vec![vec![0; 32]; MAX_REQUEST_BYTES / 32 + 1],
            })),
        };
        auth::seal(&sender, &recipient, &next_at(o, ts, 1), big.encode_to_vec())
    })
    .await;
    assert_eq!(code, tonic::Code::ResourceExhausted);
    // Within the size limit but beyond a list bound: refused before any work.
    let code = try_second(&|o, ts| {
        let many = pb::ReconcileRequest {
            ask: Some(pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
                hashes: vec![vec![0; 32]; 65],
            })),
        };
        auth::seal(
            &sender,
            &recipient,
            &next_at(o, ts, 1),
            many.encode_to_vec(),
        )
    })
    .await;
    assert_eq!(code, tonic::Code::InvalidArgument);
    let m = net.nodes[0].replica.metrics();
    assert_eq!(m.refused_unauthenticated, 2);
    assert_eq!(m.refused_too_large, 1);
    assert_eq!(m.refused_malformed, 1);
    assert_eq!(m.requests_refused, 4);

    // An oversized opening is refused too (while decoding; counted).
    let big = pb::ReconcileRequest {
        ask: Some(pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
            hashes: vec![vec![0; 32]; MAX_REQUEST_BYTES / 32 + 1],
        })),
    };
    let first = auth::seal(
        &sender,
        &recipient,
        &opening(Rpc::Reconcile, now + 100),
        big.encode_to_vec(),
    );
    let r = grpc
        .reconcile(tokio_stream::iter(vec![first]))
        .await
        .map(|_| ());
    let code = match r {
        Err(s) => s.code(),
        Ok(()) => tonic::Code::Ok,
    };
    assert_eq!(code, tonic::Code::ResourceExhausted);
    assert_eq!(net.nodes[0].replica.metrics().refused_too_large, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_at_a_members_address_is_refused_at_the_handshake() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    // The view says node 1 lives at node 0's address: node 0's certificate is not node 1's
    // key, so the client refuses the server before sending anything.
    let mut impostor = net.nodes[1].member(SWARM_A, true);
    impostor.storage_lmq_port = net.nodes[0].addr.port();
    let c = client(node_identity(0), net.clock.clone());
    let r = c.reconcile(&impostor, &digests_page()).await;
    assert!(
        matches!(r, Err(ReplicaError::PeerUnreachable { .. })),
        "{r:?}"
    );
    let owner = owner_at(SWARM_A + 9, 9);
    let r = c
        .forward(&impostor, &forward_store(&owner, b"x", net.now()))
        .await;
    assert!(
        matches!(r, Err(ReplicaError::PeerUnreachable { .. })),
        "{r:?}"
    );
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
    let m = net.nodes[0].replica.metrics();
    assert_eq!((m.requests_served, m.requests_refused), (0, 0), "{m:?}");
    // Even below TLS (the signed recipient): a call signed for node 1 but sent to node 0 over
    // a connection that authenticated node 0 is refused by node 0.
    let mut grpc = raw(&node_identity(1), &net.nodes[0]);
    let misaddressed = auth::seal(
        &node_identity(1),
        &net.nodes[1].key,
        &opening(Rpc::Forward, net.now()),
        forward_store(&owner, b"x", net.now()).encode_to_vec(),
    );
    let e = grpc.forward(misaddressed).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_signed_by_another_node_than_the_connection_is_refused() {
    let mut net = Net::start(3).await;
    net.assign(&[Some(SWARM_A); 3]);
    let owner = owner_at(SWARM_A + 5, 5);
    // Node 2's connection carries a message genuinely signed by node 1 (say, one it saw):
    // the TLS client key and the signer differ.
    let mut grpc = raw(&node_identity(2), &net.nodes[0]);
    let relayed = auth::seal(
        &node_identity(1),
        &net.nodes[0].key,
        &opening(Rpc::Forward, net.now()),
        forward_store(&owner, b"relayed", net.now()).encode_to_vec(),
    );
    let e = grpc.forward(relayed).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("connection"), "{}", e.message());
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_or_plaintext_gets_no_peer_service() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let now = net.now();
    let owner = owner_at(SWARM_A + 3, 3);
    let genuine = |ts: i64| {
        auth::seal(
            &node_identity(1),
            &net.nodes[0].key,
            &opening(Rpc::Forward, ts),
            forward_store(&owner, b"no cert", now).encode_to_vec(),
        )
    };
    // TLS without a client certificate (as a health probe connects): the peer service
    // refuses before decoding anything, even a genuinely signed message of a member.
    let channel = tls::channel(None, net.nodes[0].key, net.nodes[0].addr, |e| e).unwrap();
    let e = RawClient::new(channel)
        .forward(genuine(now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");
    let m = net.nodes[0].replica.metrics();
    assert_eq!((m.refused_unauthenticated, m.requests_served), (1, 0));

    // Plaintext HTTP/2 (h2c, the old transport) to the TLS port: no call gets through.
    let before = net.nodes[0].replica.metrics().refused_handshake;
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", net.nodes[0].addr))
        .unwrap()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(5));
    let r = match plain.connect().await {
        Ok(c) => RawClient::new(c)
            .forward(genuine(now + 1))
            .await
            .map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(r.is_err(), "plaintext must not be served");
    assert!(net.nodes[0].hashes(&owner, 0, now).is_empty());
    // The server saw a failed handshake (counted once the connection is given up).
    eventually(|| net.nodes[0].replica.metrics().refused_handshake > before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_handshakes_are_bounded_and_cut() {
    use tokio::io::AsyncReadExt as _;
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let addr = net.nodes[0].addr;
    // Clients that connect and never say a word hold every handshake slot...
    let mut idle = Vec::new();
    for _ in 0..tls::MAX_HANDSHAKES {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // ...so one more is closed at once, and counted.
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), extra.read(&mut buf))
        .await
        .expect("closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    eventually(|| net.nodes[0].replica.metrics().refused_handshake >= 1).await;
    // The silent ones are cut after the handshake timeout, and the port serves members again.
    let n = tokio::time::timeout(
        tls::HANDSHAKE_TIMEOUT + std::time::Duration::from_secs(3),
        idle[0].read(&mut buf),
    )
    .await
    .expect("cut after the handshake timeout")
    .unwrap_or(0);
    assert_eq!(n, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let member = client(node_identity(1), net.clock.clone());
    let target = net.nodes[0].member(SWARM_A, true);
    member.reconcile(&target, &digests_page()).await.unwrap();
    assert!(net.nodes[0].replica.metrics().refused_handshake > tls::MAX_HANDSHAKES as u64);
}
