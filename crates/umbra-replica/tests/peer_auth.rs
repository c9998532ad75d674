//! Bad peers: the peer API refuses outsiders (at the TLS handshake, including a certificate of
//! a member's key without that key), non-members, nodes removed from the list while their
//! connection lives, and oversized or out-of-bounds stream messages — each refusal counted,
//! nothing stored — and a client refuses a server that is not the node it dialed.
//!
//! Replay and tampering of messages are not tested here: there is no message-level
//! authentication left to replay or tamper with; TLS 1.3 record protection is rustls's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Net, SWARM_A, SWARM_B, hash_of, node_identity, owner_at, store_params};
use tonic::transport::Channel;
use umbra_crypto::Identity;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_proto::umbra::peer::v2::peer_client::PeerClient as RawClient;
use umbra_replica::ReplicaError;
use umbra_replica::client::PeerClient;
use umbra_replica::tls::{self, NodeCertificate};
use umbra_replica::wire::MAX_REQUEST_BYTES;

fn client(identity: Identity) -> PeerClient {
    PeerClient::new(&identity, std::time::Duration::from_secs(30))
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

/// A bare gRPC client of the peer API (no size limit of its own), over TLS as `own` to the node
/// `server`.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_swarm_are_served() {
    // Nodes 0-2 in swarm A, node 3 in swarm B.
    let mut net = Net::start(4).await;
    net.assign(&[Some(SWARM_A), Some(SWARM_A), Some(SWARM_A), Some(SWARM_B)]);
    let target = net.nodes[0].member(SWARM_A, true);

    // A member is served.
    let member = client(node_identity(1));
    let (_, answer) = member.reconcile(&target, &digests_page()).await.unwrap();
    let Some(pb::reconcile_response::Answer::Digests(page)) = answer.answer else {
        panic!("a digest page");
    };
    assert!(page.buckets.is_empty());

    // A key that is not in the node list: its certificate is refused at the TLS handshake,
    // before any gRPC work; nothing stored.
    let owner = owner_at(SWARM_A + 1, 1);
    let stranger = client(Identity::from_seed(&[0x55; 32]));
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
    let other = client(node_identity(3));
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
    assert_eq!(m.refused_malformed, 1, "not a recursive method");
    assert_eq!(m.requests_refused, 4);
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
}

/// A client TLS configuration towards `server` presenting `cert` but signing the handshake with
/// the key whose PKCS#8 v1 DER is `pkcs8`: what a node without a member's key can do at best.
fn claiming(
    cert: &NodeCertificate,
    pkcs8: Vec<u8>,
    server: umbra_crypto::Ed25519PublicKey,
) -> Arc<rustls::ClientConfig> {
    use rustls::client::ResolvesClientCert;
    use rustls::sign::CertifiedKey;
    #[derive(Debug)]
    struct Present(Arc<CertifiedKey>);
    impl ResolvesClientCert for Present {
        fn resolve(
            &self,
            _hints: &[&[u8]],
            _schemes: &[rustls::SignatureScheme],
        ) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }
    let provider = rustls::crypto::ring::default_provider();
    let signer = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(pkcs8.into()))
        .unwrap();
    // `CertifiedKey::new` does not check that the key matches the certificate: the server must.
    let key = CertifiedKey::new(vec![cert.certificate().clone()], signer);
    let mut config = (*tls::client_config(None, server).unwrap()).clone();
    config.client_auth_cert_resolver = Arc::new(Present(Arc::new(key)));
    Arc::new(config)
}

/// PKCS#8 v1 DER (RFC 8410) of the Ed25519 key with `seed`.
fn pkcs8_of_seed(seed: [u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    der
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forging_a_call_needs_a_listed_nodes_tls_key() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let owner = owner_at(SWARM_A + 7, 7);
    let now = net.now();
    let forward = |data: &[u8]| forward_store(&owner, data, now);
    let handshakes = || net.nodes[0].replica.metrics().refused_handshake;

    // The genuine member, over its own key: served.
    let mut genuine = raw(&node_identity(1), &net.nodes[0]);
    let answer = genuine
        .forward(forward(b"genuine"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, 200, "{answer:?}");

    // A stranger presents a certificate of the member's key but can only sign the handshake
    // with its own key: rustls's check of the CertificateVerify signature against the
    // certificate's key refuses it, counted; nothing stored.
    let member_cert = NodeCertificate::new(&node_identity(1)).unwrap();
    let before = handshakes();
    let config = claiming(&member_cert, pkcs8_of_seed([0x66; 32]), net.nodes[0].key);
    let channel = tls::channel_with(config, net.nodes[0].addr, |e| e).unwrap();
    let r = RawClient::new(channel)
        .forward(forward(b"impersonated"))
        .await;
    assert!(r.is_err(), "{r:?}");
    eventually(|| handshakes() > before).await;

    // The control: the same forged set-up with the member's real key completes the handshake
    // and is served (so the refusal above was the key, not the set-up).
    let config = claiming(
        &member_cert,
        pkcs8_of_seed(*node_identity(1).seed()),
        net.nodes[0].key,
    );
    let channel = tls::channel_with(config, net.nodes[0].addr, |e| e).unwrap();
    RawClient::new(channel)
        .forward(forward(b"real key"))
        .await
        .unwrap();

    // A certificate of its own, unlisted key: refused at the handshake too, counted.
    let before = handshakes();
    let mut stranger = raw(&Identity::from_seed(&[0x66; 32]), &net.nodes[0]);
    assert!(stranger.forward(forward(b"stranger")).await.is_err());
    eventually(|| handshakes() > before).await;

    assert_eq!(
        net.nodes[0].hashes(&owner, 0, now),
        [
            hash_of(&owner, 0, b"genuine"),
            hash_of(&owner, 0, b"real key")
        ]
        .into()
    );
    let m = net.nodes[0].replica.metrics();
    assert_eq!((m.requests_served, m.requests_refused), (2, 0), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_removed_from_the_list_is_refused_on_its_next_call() {
    let mut net = Net::start(3).await;
    net.assign(&[Some(SWARM_A); 3]);
    let owner = owner_at(SWARM_A + 5, 5);
    let now = net.now();
    let mut grpc = raw(&node_identity(2), &net.nodes[0]);
    grpc.forward(forward_store(&owner, b"while listed", now))
        .await
        .unwrap();
    // A stream opened while listed.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(digests_page()).await.unwrap();
    let mut stream = grpc
        .reconcile(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());

    // The registry drops node 2; its TLS connection to node 0 stays open, but the next call on
    // it is checked against the new list.
    let members = vec![
        net.nodes[0].member(SWARM_A, true),
        net.nodes[1].member(SWARM_A, true),
    ];
    net.publish(members);
    let handshakes = net.nodes[0].replica.metrics().refused_handshake;
    let e = grpc
        .forward(forward_store(&owner, b"after removal", now))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("not a registered node"), "{e:?}");
    let e = grpc
        .reconcile(tokio_stream::iter(vec![digests_page()]))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    // Refused per call, not by a new handshake: the same connection carried the calls.
    assert_eq!(net.nodes[0].replica.metrics().refused_handshake, handshakes);
    // (A stream admitted before the change runs to its end: at most MAX_RECONCILE_STEPS
    // steps, each a read of this swarm's own data.)
    drop(tx);
    assert_eq!(
        net.nodes[0].hashes(&owner, 0, now),
        [hash_of(&owner, 0, b"while listed")].into()
    );
    let m = net.nodes[0].replica.metrics();
    assert_eq!((m.refused_forbidden, m.requests_refused), (2, 2), "{m:?}");

    // Listed again (say, re-registered): served again on the same connection.
    net.assign(&[Some(SWARM_A); 3]);
    grpc.forward(forward_store(&owner, b"listed again", now))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_messages_must_be_within_size_and_bounds() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let mut grpc = raw(&node_identity(1), &net.nodes[0]);

    // Opens a stream with a good first request, then sends `second`; returns the second
    // answer's status.
    let mut try_second = async |second: pb::ReconcileRequest| {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tx.send(digests_page()).await.unwrap();
        let mut answers = grpc
            .reconcile(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        assert!(answers.message().await.unwrap().is_some(), "first answered");
        tx.send(second).await.unwrap();
        answers.message().await.unwrap_err().code()
    };
    let replicas = |n: usize| pb::ReconcileRequest {
        ask: Some(pb::reconcile_request::Ask::Replicas(pb::ReplicasRequest {
            hashes: vec![vec![0; 32]; n],
        })),
    };
    // Larger than the limit: refused while decoding, counted.
    let code = try_second(replicas(MAX_REQUEST_BYTES / 32 + 1)).await;
    assert_eq!(code, tonic::Code::ResourceExhausted);
    // Within the size limit but beyond a list bound: refused before any work.
    let code = try_second(replicas(65)).await;
    assert_eq!(code, tonic::Code::InvalidArgument);
    let m = net.nodes[0].replica.metrics();
    assert_eq!(m.refused_too_large, 1);
    assert_eq!(m.refused_malformed, 1);
    assert_eq!(m.requests_refused, 2);

    // An oversized first message is refused too (while decoding; counted).
    let r = grpc
        .reconcile(tokio_stream::iter(vec![replicas(
            MAX_REQUEST_BYTES / 32 + 1,
        )]))
        .await
        .map(|_| ());
    let code = match r {
        Err(s) => s.code(),
        Ok(()) => tonic::Code::Ok,
    };
    assert_eq!(code, tonic::Code::ResourceExhausted);
    assert_eq!(net.nodes[0].replica.metrics().refused_too_large, 2);

    // A unary call beyond the limit is refused by gRPC's decoder before any handler runs
    // (`OUT_OF_RANGE`), counted all the same; nothing of it is stored.
    let owner = owner_at(SWARM_A + 4, 4);
    let now = net.now();
    let big = vec![b'a'; MAX_REQUEST_BYTES + 1024];
    let e = grpc
        .forward(forward_store(&owner, &big, now))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
    let m = net.nodes[0].replica.metrics();
    assert_eq!((m.refused_too_large, m.requests_refused), (3, 4), "{m:?}");
    assert!(net.nodes[0].hashes(&owner, 0, now).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_at_a_members_address_is_refused_at_the_handshake() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    // The view says node 1 lives at node 0's address: node 0's certificate is not node 1's
    // key, so the client refuses the server before sending anything.
    let mut impostor = net.nodes[1].member(SWARM_A, true);
    impostor.storage_lmq_port = net.nodes[0].addr.port();
    let c = client(node_identity(0));
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_client_certificate_or_plaintext_gets_no_peer_service() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let now = net.now();
    let owner = owner_at(SWARM_A + 3, 3);
    let request = || forward_store(&owner, b"no cert", now);
    // TLS without a client certificate (as a health probe connects): the peer service
    // refuses before decoding anything.
    let channel = tls::channel(None, net.nodes[0].key, net.nodes[0].addr, |e| e).unwrap();
    let e = RawClient::new(channel)
        .forward(request())
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
        Ok(c) => RawClient::new(c).forward(request()).await.map(|_| ()),
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
    let member = client(node_identity(1));
    let target = net.nodes[0].member(SWARM_A, true);
    member.reconcile(&target, &digests_page()).await.unwrap();
    assert!(net.nodes[0].replica.metrics().refused_handshake > tls::MAX_HANDSHAKES as u64);
}

/// A TCP connection to `addr` from the loopback address `from` (any of 127.0.0.0/8).
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Whether the node closes `conn` at once (a refused handshake slot) rather than waiting for
/// a ClientHello.
async fn closed_at_once(conn: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(2), conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_stalling_handshakes_cannot_lock_the_members_out() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    let addr = net.nodes[0].addr;
    // The list's nodes are at 127.0.0.1; 127.0.0.2 and up are strangers.
    let mut idle = Vec::new();
    for _ in 0..tls::MAX_HANDSHAKES_PER_STRANGER {
        idle.push(connect_from([127, 0, 0, 2], addr).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut extra = connect_from([127, 0, 0, 2], addr).await;
    assert!(
        closed_at_once(&mut extra).await,
        "one stranger beyond its share"
    );
    assert!(
        !closed_at_once(&mut idle[0]).await,
        "its first ones wait for a hello"
    );
    // Other strangers fill the strangers' share...
    let others = tls::MAX_STRANGER_HANDSHAKES / tls::MAX_HANDSHAKES_PER_STRANGER - 1;
    for i in 0..others {
        for _ in 0..tls::MAX_HANDSHAKES_PER_STRANGER {
            idle.push(connect_from([127, 0, 0, 3 + i as u8], addr).await);
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut fresh = connect_from([127, 0, 0, 100], addr).await;
    assert!(
        closed_at_once(&mut fresh).await,
        "a new stranger once the share is taken"
    );
    let refused = net.nodes[0].replica.metrics().refused_handshake;
    assert!(refused >= 2, "{refused}");
    // ...and a member is served all the same, while they stall.
    let member = client(node_identity(1));
    let target = net.nodes[0].member(SWARM_A, true);
    member.reconcile(&target, &digests_page()).await.unwrap();
    assert_eq!(idle.len(), tls::MAX_STRANGER_HANDSHAKES);
}
