//! The gRPC node API against the real service on loopback: the list stream (current list
//! first, each newly signed list pushed), the unary calls and their refusals, the size limit,
//! and streams ending at shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{node_identity, register_req, registry_identity};
use umbra_clock::{Clock, SystemClock};
use umbra_nodelist::api::HeartbeatRequest;
use umbra_nodelist::list::{SignedNodeList, TrustPolicy};
use umbra_proto::umbra::registry::v1 as pb;
use umbra_proto::umbra::registry::v1::registry_client::RegistryClient;
use umbra_registry::grpc::serve_grpc;
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::AppState;
use umbra_registry::store::Store;

/// Hang guard only: every wait below ends on an event long before.
const HANG: Duration = Duration::from_secs(30);

struct Server {
    client: RegistryClient<tonic::transport::Channel>,
    channel: tonic::transport::Channel,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// A registry with the default configuration, in memory, on the system clock.
fn new_state() -> Arc<AppState> {
    let registry = Registry::open(
        Store::open_in_memory().unwrap(),
        registry_identity(),
        RegistryConfig::default(),
        SystemClock.now_ms(),
    )
    .unwrap();
    AppState::new(registry, Arc::new(SystemClock))
}

async fn start() -> Server {
    let state = new_state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_grpc(listener, state, async move {
        let _ = rx.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    Server {
        client: RegistryClient::new(channel.clone()).max_decoding_message_size(4 << 20),
        channel,
        stop,
        task,
    }
}

async fn watch(s: &mut Server) -> tonic::Streaming<pb::SignedNodeList> {
    s.client
        .watch_node_list(pb::WatchNodeListRequest {})
        .await
        .unwrap()
        .into_inner()
}

/// The next list of `stream`, verified against the registry key.
async fn next_list(stream: &mut tonic::Streaming<pb::SignedNodeList>) -> SignedNodeList {
    let m = tokio::time::timeout(HANG, stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let l = SignedNodeList::try_from(&m).unwrap();
    TrustPolicy::single(registry_identity().ed25519_public())
        .verify(&l)
        .unwrap();
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_get_the_current_list_then_each_new_one() {
    let mut s = start().await;
    let mut stream = watch(&mut s).await;
    let first = next_list(&mut stream).await;
    let rpk = registry_identity().ed25519_public();
    let now = SystemClock.now_ms();
    let status = s
        .client
        .register(pb::RegisterRequest::from(&register_req(1, &rpk, now)))
        .await
        .unwrap()
        .into_inner();
    assert!(status.active);
    assert_eq!(status.epoch, first.list.epoch + 1);
    let next = next_list(&mut stream).await;
    assert_eq!(next.list.epoch, status.epoch);
    assert!(next.list.node(&node_identity(1).ed25519_public()).is_some());

    // A second watcher (a node that reconnects) starts with the current list, not the first.
    let mut late = watch(&mut s).await;
    let current = next_list(&mut late).await;
    assert_eq!(current, next);

    // Stopping the server ends the streams, and the server itself stops.
    s.stop.send(()).unwrap();
    assert!(
        tokio::time::timeout(HANG, stream.message())
            .await
            .unwrap()
            .map_or(true, |m| m.is_none())
    );
    tokio::time::timeout(HANG, s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_map_to_grpc_codes() {
    let mut s = start().await;
    let rpk = registry_identity().ed25519_public();
    let now = SystemClock.now_ms();
    let hb = HeartbeatRequest::new(&node_identity(2), &rpk, now);
    let e = s
        .client
        .heartbeat(pb::HeartbeatRequest::from(&hb))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

    let mut bad = pb::RegisterRequest::from(&register_req(2, &rpk, now));
    bad.signature[0] ^= 1;
    let e = s.client.register(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated, "{e:?}");

    let mut short = pb::RegisterRequest::from(&register_req(2, &rpk, now));
    short.pubkey_ed25519.truncate(31);
    let e = s.client.register(short).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let stale = pb::RegisterRequest::from(&register_req(2, &rpk, now - 3_600_000));
    let e = s.client.register(stale).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");

    let req = register_req(2, &rpk, now);
    s.client
        .register(pb::RegisterRequest::from(&req))
        .await
        .unwrap();
    let e = s
        .client
        .register(pb::RegisterRequest::from(&req))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::AlreadyExists, "{e:?}");

    // A request above the size limit is refused before it is parsed.
    let mut huge = pb::RegisterRequest::from(&register_req(3, &rpk, now));
    huge.x25519_proof = vec![0; umbra_nodelist::api::MAX_REQUEST_BYTES + 1];
    let e = s.client.register(huge).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::OutOfRange, "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_does_not_read_gets_only_the_newest_list() {
    use tokio_stream::StreamExt as _;
    use umbra_proto::umbra::registry::v1::registry_server::Registry as _;
    use umbra_registry::grpc::RegistryService;

    let state = new_state();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let service = RegistryService::new(state.clone(), stop_rx);
    let mut stream = service
        .watch_node_list(tonic::Request::new(pb::WatchNodeListRequest {}))
        .await
        .unwrap()
        .into_inner();
    // Twenty lists are signed while the watcher reads nothing: nothing queues up for it.
    let rpk = registry_identity().ed25519_public();
    for i in 0..20 {
        let req = register_req(i, &rpk, SystemClock.now_ms());
        state.with_registry(|r, now| r.register(&req, now)).unwrap();
    }
    let newest = state.with_registry(|r, _| Ok(r.epoch())).unwrap();
    let first = tokio::time::timeout(HANG, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.list.unwrap().epoch, newest);
    // And nothing else is pending: polled once (tokio's `timeout` polls before it checks its
    // deadline), the stream has nothing ready.
    assert!(
        tokio::time::timeout(Duration::ZERO, stream.next())
            .await
            .is_err(),
        "a stale list was queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_serving_then_not_serving_at_shutdown() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let s = start().await;
    let mut health = HealthClient::new(s.channel.clone());
    let check = |service: &str| HealthCheckRequest {
        service: service.to_owned(),
    };
    for name in ["", "umbra.registry.v1.Registry"] {
        let r = health.check(check(name)).await.unwrap().into_inner();
        assert_eq!(r.status(), ServingStatus::Serving, "{name:?}");
    }
    let unknown = health.check(check("umbra.nothing.v1.Nothing")).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);

    let mut watch = health.watch(check("")).await.unwrap().into_inner();
    let first = tokio::time::timeout(HANG, watch.message()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().status(), ServingStatus::Serving);
    s.stop.send(()).unwrap();
    let next = tokio::time::timeout(HANG, watch.message()).await.unwrap();
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    tokio::time::timeout(HANG, s.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
