//! The gRPC shell around [`Registry`]: the node API of
//! `proto/umbra/registry/v1/registry.proto` (tonic), served on its own listener beside the HTTP
//! one and sharing its [`AppState`].
//!
//! `Register`, `Heartbeat` and `Leave` take the same signed payloads as `POST /v1/register`,
//! `/v1/heartbeat` and `/v1/leave` (converted by [`umbra_nodelist::proto`]) and answer the same
//! [`NodeStatus`]; refusals map to gRPC codes as the HTTP
//! statuses do (crate docs). `WatchNodeList` streams the current signed list, then every newer
//! one as soon as the registry signs it ([`AppState::subscribe_lists`]).
//!
//! Bounds: request messages at [`MAX_REQUEST_BYTES`], stream messages at
//! [`MAX_LIST_MESSAGE_BYTES`], [`MAX_WATCHERS`] streams at once, [`UNARY_DEADLINE`] per unary
//! call (a client's shorter `grpc-timeout` wins), [`MAX_STREAMS_PER_CONNECTION`] calls per
//! connection; HTTP/2 keep-alive pings find dead peers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};
use umbra_nodelist::NodeListError;
use umbra_nodelist::api::{
    HeartbeatRequest, LeaveRequest, MAX_REQUEST_BYTES, NodeStatus, RegisterRequest,
};
use umbra_nodelist::proto::MAX_LIST_MESSAGE_BYTES;
use umbra_proto::umbra::registry::v1 as pb;
use umbra_proto::umbra::registry::v1::registry_server::{Registry as RegistryApi, RegistryServer};
use umbra_report::ErrorExt as _;

use crate::RegistryError;
use crate::error::Refusal;
use crate::registry::Registry;
use crate::server::AppState;

/// Most `WatchNodeList` streams open at once; beyond it a new one is refused with
/// `RESOURCE_EXHAUSTED`.
pub const MAX_WATCHERS: usize = 4096;
/// Longest time a unary call (register, heartbeat, leave) may take on the server.
pub const UNARY_DEADLINE: Duration = Duration::from_secs(10);
/// Most concurrent calls (HTTP/2 streams) on one connection.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 16;
/// Interval of the HTTP/2 keep-alive pings, and how long an answer may take.
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(10));

fn to_status(e: &RegistryError) -> Status {
    let code = match e.refusal() {
        Refusal::Malformed => tonic::Code::InvalidArgument,
        Refusal::Unauthenticated => tonic::Code::Unauthenticated,
        Refusal::NotRegistered => tonic::Code::NotFound,
        Refusal::Stale => tonic::Code::FailedPrecondition,
        Refusal::Replayed => tonic::Code::AlreadyExists,
        Refusal::Internal => tonic::Code::Internal,
    };
    if code == tonic::Code::Internal {
        tracing::error!(error = %e.report(), "registry gRPC call failed");
    } else {
        tracing::debug!(error = %e.report(), "gRPC request refused");
    }
    Status::new(code, e.to_string())
}

/// The registry's gRPC service.
#[derive(Debug, Clone)]
pub struct RegistryService {
    state: Arc<AppState>,
    watchers: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl RegistryService {
    /// A service over `state`; its streams end when `stop` turns `true` (so that a graceful
    /// shutdown is not held up by nodes following the list).
    pub fn new(state: Arc<AppState>, stop: watch::Receiver<bool>) -> Self {
        Self {
            state,
            watchers: Arc::new(Semaphore::new(MAX_WATCHERS)),
            stop,
        }
    }

    /// The tonic server of this service, with its message size limits.
    pub fn into_server(self) -> RegistryServer<Self> {
        RegistryServer::new(self)
            .max_decoding_message_size(MAX_REQUEST_BYTES)
            .max_encoding_message_size(MAX_LIST_MESSAGE_BYTES)
    }
}

/// Applies a converted unary request to the registry and answers its status.
fn call<R>(
    state: &AppState,
    request: Result<R, NodeListError>,
    apply: impl FnOnce(&mut Registry, &R, u64) -> Result<NodeStatus, RegistryError>,
) -> Result<Response<pb::NodeStatus>, Status> {
    let request = request.map_err(|e| to_status(&e.into()))?;
    let status = state
        .with_registry(|r, now| apply(r, &request, now))
        .map_err(|e| to_status(&e))?;
    Ok(Response::new((&status).into()))
}

#[tonic::async_trait]
impl RegistryApi for RegistryService {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        call(
            &self.state,
            RegisterRequest::try_from(request.get_ref()),
            |r, q, now| r.register(q, now),
        )
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        call(
            &self.state,
            HeartbeatRequest::try_from(request.get_ref()),
            |r, q, now| r.heartbeat(q, now),
        )
    }

    async fn leave(
        &self,
        request: Request<pb::LeaveRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        call(
            &self.state,
            LeaveRequest::try_from(request.get_ref()),
            |r, q, now| r.leave(q, now),
        )
    }

    type WatchNodeListStream = ListStream;

    async fn watch_node_list(
        &self,
        _request: Request<pb::WatchNodeListRequest>,
    ) -> Result<Response<Self::WatchNodeListStream>, Status> {
        let permit = Arc::clone(&self.watchers)
            .try_acquire_owned()
            .map_err(|_| {
                tracing::warn!(limit = MAX_WATCHERS, "node list watcher limit reached");
                Status::resource_exhausted(format!(
                    "more than {MAX_WATCHERS} node list watchers: retry later"
                ))
            })?;
        let mut stop = self.stop.clone();
        Ok(Response::new(ListStream {
            lists: WatchStream::new(self.state.subscribe_lists()),
            stop: Box::pin(async move {
                let _ = stop.wait_for(|s| *s).await;
            }),
            _permit: permit,
        }))
    }
}

/// A `WatchNodeList` stream: the registry's list channel until the server stops. Holds one
/// of the [`MAX_WATCHERS`] slots while open.
pub struct ListStream {
    lists: WatchStream<Arc<pb::SignedNodeList>>,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for ListStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListStream").finish_non_exhaustive()
    }
}

impl Stream for ListStream {
    type Item = Result<pb::SignedNodeList, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.stop.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.lists)
            .poll_next(cx)
            .map(|list| list.map(|l| Ok(pb::SignedNodeList::clone(&l))))
    }
}

/// Serves the gRPC API on `listener` until `shutdown` completes; open `WatchNodeList` streams
/// end then, and calls in flight get [`crate::server::SHUTDOWN_GRACE`] to finish.
///
/// # Errors
/// Transport errors of the server.
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = RegistryService::new(state, stop_rx.clone());
    // grpc.health.v1: "" and the registry service SERVING while it serves, NOT_SERVING from
    // the moment it starts shutting down (health watchers hear it before their stream ends).
    let (mut health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RegistryServer<RegistryService>>()
        .await;
    let mut stopped = stop_rx;
    let server = tonic::transport::Server::builder()
        .timeout(UNARY_DEADLINE)
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .http2_keepalive_interval(Some(KEEPALIVE.0))
        .http2_keepalive_timeout(Some(KEEPALIVE.1))
        .add_service(health_service)
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        );
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        () = shutdown => {}
    }
    health
        .set_not_serving::<RegistryServer<RegistryService>>()
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    // Forgetting the statuses ends the health watchers' streams (after NOT_SERVING), so they do
    // not hold the shutdown for its whole grace period.
    for name in [
        "",
        <RegistryServer<RegistryService> as tonic::server::NamedService>::NAME,
    ] {
        health.clear_service_status(name).await;
    }
    let _ = stop_tx.send(true);
    match tokio::time::timeout(crate::server::SHUTDOWN_GRACE, server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("gRPC calls still open after the shutdown grace period; dropping them");
            Ok(())
        }
    }
}
