//! The peer channel refuses outsiders, non-members, stale and replayed requests, and a client
//! detects an answer not signed by the member it addressed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::{Net, SWARM_A, SWARM_B, hash_of, node_identity, owner_at, store_params};
use serde_json::{Value, json};
use umbra_clock::{Clock, ManualClock};
use umbra_crypto::Identity;
use umbra_replica::ReplicaError;
use umbra_replica::auth::{AUTH_HEADER, RequestAuth};
use umbra_replica::client::{PeerAddressing, PeerClient, PeerPort, PeerScheme};
use umbra_replica::wire::{
    DigestsRequest, DigestsResponse, Endpoint, ForwardRequest, HandoverRequest, HandoverResponse,
    WireReplica,
};
use umbra_store::ReplicaMessage;

fn client(identity: Identity, clock: Arc<dyn Clock>) -> PeerClient {
    PeerClient::new(
        Arc::new(identity),
        clock,
        PeerAddressing {
            scheme: PeerScheme::Http,
            port: PeerPort::Storage,
        },
        std::time::Duration::from_secs(30),
    )
    .unwrap()
}

fn status_of<T: std::fmt::Debug>(r: Result<T, ReplicaError>) -> u16 {
    match r {
        Err(ReplicaError::PeerStatus { status, .. }) => status,
        other => panic!("expected an error status, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_of_the_swarm_are_served() {
    // Nodes 0-2 in swarm A, node 3 in swarm B.
    let mut net = Net::start(4).await;
    net.assign(&[Some(SWARM_A), Some(SWARM_A), Some(SWARM_A), Some(SWARM_B)]);
    let target = net.nodes[0].member(SWARM_A, true);
    let page = DigestsRequest {
        after: None,
        limit: 10,
    };
    let clock: Arc<dyn Clock> = net.clock.clone();

    // A member is served.
    let member = client(node_identity(1), clock.clone());
    let ok: DigestsResponse = member
        .call(&target, Endpoint::Digests, &page)
        .await
        .unwrap();
    assert!(ok.buckets.is_empty());

    // An unknown key: 403.
    let stranger = client(Identity::from_seed(&[0x55; 32]), clock.clone());
    let r = stranger
        .call::<_, DigestsResponse>(&target, Endpoint::Digests, &page)
        .await;
    assert_eq!(status_of(r), 403);

    // A registered node of another swarm: no forwarded writes, no reads...
    let other = client(node_identity(3), clock.clone());
    let owner = owner_at(SWARM_A + 1, 1);
    let fwd = ForwardRequest {
        method: "store".into(),
        params: store_params(&owner, 0, b"sneaky", net.now()),
    };
    let r = other
        .call::<_, Value>(&target, Endpoint::Forward, &fwd)
        .await;
    assert_eq!(status_of(r), 403);
    assert!(net.nodes[0].hashes(&owner, 0, net.now()).is_empty());
    let r = other
        .call::<_, DigestsResponse>(&target, Endpoint::Digests, &page)
        .await;
    assert_eq!(status_of(r), 403);

    // ...but it may hand over accounts that map to the receiver's swarm.
    let data = b"handed".to_vec();
    let replica = ReplicaMessage {
        owner,
        namespace: 0,
        hash: hash_of(&owner, 0, &data),
        data,
        timestamp_ms: net.now(),
        expiry_ms: net.now() + 1_000_000,
        expiry_version: net.now(),
    };
    let ho = HandoverRequest {
        messages: vec![WireReplica::from_store(&replica)],
        tombstones: vec![],
    };
    let ack: HandoverResponse = other.call(&target, Endpoint::Handover, &ho).await.unwrap();
    assert_eq!(ack.applied, 1);
    assert!(
        net.nodes[0]
            .hashes(&owner, 0, net.now())
            .contains(&replica.hash)
    );
    // Not an account of the receiver's swarm: 421, nothing applied.
    let foreign_owner = owner_at(SWARM_B, 2);
    let mut foreign = replica.clone();
    foreign.owner = foreign_owner;
    foreign.hash = hash_of(&foreign_owner, 0, &foreign.data);
    let r = other
        .call::<_, HandoverResponse>(
            &target,
            Endpoint::Handover,
            &HandoverRequest {
                messages: vec![WireReplica::from_store(&foreign)],
                tombstones: vec![],
            },
        )
        .await;
    assert_eq!(status_of(r), 421);
    // A replica whose hash does not match its content: 400.
    let mut forged = WireReplica::from_store(&replica);
    forged.data = "Zm9yZ2Vk".into();
    let r = other
        .call::<_, HandoverResponse>(
            &target,
            Endpoint::Handover,
            &HandoverRequest {
                messages: vec![forged],
                tombstones: vec![],
            },
        )
        .await;
    assert_eq!(status_of(r), 400);

    // A member whose clock is far off: 401 (stale timestamp).
    let skewed: Arc<dyn Clock> = Arc::new(ManualClock::new(net.clock.now_ms() - 5 * 60_000));
    let late = client(node_identity(2), skewed);
    let r = late
        .call::<_, DigestsResponse>(&target, Endpoint::Digests, &page)
        .await;
    assert_eq!(status_of(r), 401);

    // Only recursive methods may be forwarded.
    let r = member
        .call::<_, Value>(
            &target,
            Endpoint::Forward,
            &ForwardRequest {
                method: "retrieve".into(),
                params: json!({}),
            },
        )
        .await;
    assert_eq!(status_of(r), 400);
    assert_eq!(
        net.nodes[0].replica.metrics().requests_refused,
        4,
        "stranger, other swarm twice, stale clock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_or_tampered_requests_are_refused() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    umbra_replica::client::install_crypto_provider();
    let http = reqwest::Client::new();
    let sender = node_identity(1);
    let recipient = net.nodes[0].key;
    let url = format!("http://{}{}", net.nodes[0].addr, Endpoint::Digests.path());
    let body = serde_json::to_vec(&DigestsRequest {
        after: None,
        limit: 5,
    })
    .unwrap();
    let auth = RequestAuth::sign(
        &sender,
        &recipient,
        net.now(),
        "POST",
        Endpoint::Digests.path(),
        &body,
    );
    let send = |b: Vec<u8>, h: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(url)
                .header(AUTH_HEADER, h)
                .body(b)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone(), auth.to_header()).await;
    assert_eq!(first.status(), 200);
    assert!(
        first.headers().contains_key(AUTH_HEADER),
        "answers are signed"
    );
    let replay = send(body.clone(), auth.to_header()).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(
        replay.text().await.unwrap(),
        "authenticating a peer request: replayed request"
    );
    // Same header, different body.
    let auth2 = RequestAuth::sign(
        &sender,
        &recipient,
        net.now() + 1,
        "POST",
        Endpoint::Digests.path(),
        &body,
    );
    let tampered = send(b"{\"after\":null,\"limit\":9}".to_vec(), auth2.to_header()).await;
    assert_eq!(tampered.status(), 401);
    // Signed for another endpoint.
    let auth3 = RequestAuth::sign(
        &sender,
        &recipient,
        net.now() + 2,
        "POST",
        Endpoint::Entries.path(),
        &body,
    );
    assert_eq!(send(body.clone(), auth3.to_header()).await.status(), 401);
    // No header, garbage header, unknown endpoint.
    let bare = http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    assert_eq!(send(body.clone(), "v1 nonsense".into()).await.status(), 401);
    let unknown = http
        .post(format!("http://{}/umbra/peer/v1/nope", net.nodes[0].addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_at_a_members_address_is_detected() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    // The view says node 1 lives at node 0's address.
    let mut impostor = net.nodes[1].member(SWARM_A, true);
    impostor.storage_port = net.nodes[0].addr.port();
    let c = client(node_identity(0), net.clock.clone());
    let r = c
        .call::<_, DigestsResponse>(
            &impostor,
            Endpoint::Digests,
            &DigestsRequest {
                after: None,
                limit: 1,
            },
        )
        .await;
    assert!(
        matches!(r, Err(ReplicaError::BadPeerResponse { .. })),
        "{r:?}"
    );
}
