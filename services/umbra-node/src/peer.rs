//! Serving the node-to-node channel (`POST /umbra/peer/v1/*`, `umbra_replica::server`).
//!
//! The peer router of [`umbra_replica::Replica`] is an axum router; this module puts it behind
//! the node's own HTTPS listeners. On the client listener, requests whose path starts with
//! [`PEER_PREFIX`] are handed here before the client rate limiter; with `peer_listen`
//! configured, `serve_peer_listener` runs a second HTTPS listener that serves only them.
//!
//! Per request: a source address that is not a node of the current swarm view is subject to
//! this module's own per-IP token bucket (`429 Too Many Requests`; nodes are never limited:
//! they carry the whole swarm's replication); at most `replication.max_peer_inflight` requests
//! at once (`503`); the request must complete within `limits.request_timeout_secs` (`408`).
//! Authentication and authorisation (signed requests, members of this node's swarm only) are
//! the router's.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::config::Config;
use crate::node::NodeState;
use crate::ratelimit::RateLimiter;

/// Every peer endpoint's path starts with this.
pub const PEER_PREFIX: &str = umbra_replica::wire::PEER_PATH_PREFIX;

/// How long a peer may take for the TLS handshake on the peer listener.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `path` is a peer endpoint's.
pub fn is_peer_path(path: &str) -> bool {
    path.starts_with(PEER_PREFIX)
}

/// The peer endpoints with their limits, shared by the listeners that serve them.
pub struct PeerService {
    state: Arc<NodeState>,
    router: axum::Router,
    limiter: RateLimiter,
    inflight: Arc<Semaphore>,
    timeout: Duration,
}

impl std::fmt::Debug for PeerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerService").finish_non_exhaustive()
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl PeerService {
    /// Serves `router` (the replica's peer router) for the node `state` with `cfg`'s limits.
    pub fn new(state: Arc<NodeState>, router: axum::Router, cfg: &Config) -> PeerService {
        PeerService {
            state,
            router,
            limiter: RateLimiter::new(cfg.rate_limit),
            inflight: Arc::new(Semaphore::new(cfg.replication.max_peer_inflight)),
            timeout: Duration::from_secs(cfg.limits.request_timeout_secs),
        }
    }

    /// Serves one request to a peer endpoint from `ip`.
    pub async fn handle(&self, ip: Ipv4Addr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.state.onion.is_node_ip(&self.state.swarm, ip)
            && !self.limiter.allow(ip, self.state.clock.instant())
        {
            self.state.metrics.rejected("rate_limited");
            return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
        }
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            self.state.metrics.rejected("busy");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy, try again later",
            );
        };
        let served = async {
            let resp = match self.router.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let (parts, body) = resp.into_parts();
            // The router's answers are built in memory and bounded by the replica crate.
            let limit = umbra_replica::wire::MAX_RESPONSE_BYTES;
            match Limited::new(body, limit).collect().await {
                Ok(c) => Response::from_parts(parts, Full::new(c.to_bytes())),
                Err(_) => plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "peer answer could not be produced",
                ),
            }
        };
        match tokio::time::timeout(self.timeout, served).await {
            Ok(r) => r,
            Err(_) => plain(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n"),
        }
    }
}

/// The IPv4 address of a connection's peer (`None` for real IPv6 peers).
fn ipv4_of(peer: SocketAddr) -> Option<Ipv4Addr> {
    match peer {
        SocketAddr::V4(a) => Some(*a.ip()),
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped(),
    }
}

/// Accepts TLS connections on the separate peer listener until `stop` and serves only the
/// peer endpoints there (other paths: 404); then waits up to `grace` for open requests.
pub(crate) async fn serve_peer_listener(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    peer: Arc<PeerService>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok((tcp, addr)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Some(ip) = ipv4_of(addr) else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let peer = peer.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let svc = service_fn(move |req: Request<Incoming>| {
                let peer = peer.clone();
                async move {
                    let resp = if is_peer_path(req.uri().path()) {
                        peer.handle(ip, req).await
                    } else {
                        plain(StatusCode::NOT_FOUND, "Not Found")
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::trace!("peer connection ended: {}", umbra_report::Report(&*e));
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {}
    }
}
