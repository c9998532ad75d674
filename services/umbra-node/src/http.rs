//! The HTTP layer: the client HTTPS listener (`storage-rpc.md` §1.1) and the operator listener.
//!
//! Client listener, per request, in order: non-IPv4 peer → `400 Bad Request\n`;
//! `X-Loki-Long-Poll` header → 410; rate limit → `429 Too Many Requests\n`; routing (unknown
//! path → `404 <METHOD> <URL> Not Found`); for `POST /storage_rpc/v1`: too many requests in
//! flight → `503 Server busy, try again later`; `Content-Length` unparsable → 400
//! `invalid Content-Length`, larger than the limit → `413 Request body too large` (before any of
//! the body is read); a body that grows past the limit while streaming → 413 as well; a body
//! that does not arrive in time → 408. Then [`crate::handle_rpc`]. `POST /onion_req/v2`: the same
//! in-flight limit, then [`crate::onion::handle_onion`] (registered nodes' addresses are not rate
//! limited on this route: relays carry many clients).
//!
//! The peer channel is not here: it is gRPC on the node's peer port ([`crate::peer`]).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use umbra_report::ErrorExt as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, SERVER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::{Config, LimitsConfig};
use crate::node::NodeState;
use crate::ratelimit::RateLimiter;
use crate::{RpcResponse, handle_rpc};

/// The `Server` header value.
const SERVER_BANNER: &str = concat!("umbra-node/", env!("CARGO_PKG_VERSION"));
/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client listener's shared state.
pub(crate) struct HttpApp {
    state: Arc<NodeState>,
    limiter: RateLimiter,
    limits: LimitsConfig,
    inflight: Arc<Semaphore>,
}

impl HttpApp {
    pub(crate) fn new(state: Arc<NodeState>, cfg: &Config) -> HttpApp {
        HttpApp {
            state,
            limiter: RateLimiter::new(cfg.rate_limit),
            limits: cfg.limits,
            inflight: Arc::new(Semaphore::new(cfg.limits.max_inflight)),
        }
    }

    async fn handle(&self, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        // Who asked for what (the address only when the operator reveals metadata).
        tracing::debug!(
            peer = %umbra_crypto::Redacted::new(peer),
            method = %req.method(),
            path = req.uri().path(),
            "request"
        );
        let ip: Ipv4Addr = match peer {
            SocketAddr::V4(a) => *a.ip(),
            SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
                Some(ip) => ip,
                None => {
                    self.state.metrics.rejected("not_ipv4");
                    return text(StatusCode::BAD_REQUEST, "Bad Request\n");
                }
            },
        };
        if req.headers().contains_key("x-loki-long-poll") {
            return text(
                StatusCode::GONE,
                "long polling is no longer supported, client upgrade required",
            );
        }
        // Relays carry many clients' onion requests: registered nodes are not limited per IP
        // on the onion route.
        let relay = req.uri().path() == crate::onion::ONION_PATH
            && self.state.onion.is_node_ip(&self.state.swarm, ip);
        if !relay && !self.limiter.allow(ip, self.state.clock.instant()) {
            self.state.metrics.rejected("rate_limited");
            return text(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
        }
        match (req.method(), req.uri().path()) {
            (&Method::POST, "/storage_rpc/v1") => self.storage_rpc(req).await,
            (&Method::POST, crate::onion::ONION_PATH) => self.onion_req(peer, req).await,
            (&Method::GET, "/get_stats/v1") => with_type(
                StatusCode::OK,
                "application/json",
                Bytes::from_static(br#"{"version":"2.8.0"}"#),
            ),
            (&Method::POST, "/ping_test/v1") => text(StatusCode::OK, ""),
            (m, _) => {
                let body = format!("{} {} Not Found", m, path_and_query(&req));
                text(StatusCode::NOT_FOUND, &body)
            }
        }
    }

    async fn onion_req(&self, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            self.state.onion.count(crate::onion::Outcome::Busy);
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy, try again later",
            );
        };
        crate::onion::serve(&self.state, &self.limits, peer, req).await
    }

    async fn storage_rpc(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let Ok(_permit) = self.inflight.clone().try_acquire_owned() else {
            self.state.metrics.rejected("busy");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy, try again later",
            );
        };
        let body = match read_limited_body(req, &self.limits).await {
            Ok(b) => b,
            Err(resp) => {
                self.state.metrics.rejected("bad_body");
                return resp;
            }
        };
        let rpc = handle_rpc(&self.state, self.state.clock.now_ms_i64(), &body).await;
        to_http(&rpc)
    }
}

/// Reads a request body of at most `limits.max_body_bytes`, refusing early: a `Content-Length`
/// over the limit is refused before any body byte is read, a streamed body as soon as it
/// passes the limit. The `Err` is the reply to send.
pub async fn read_limited_body(
    req: Request<Incoming>,
    limits: &LimitsConfig,
) -> Result<Bytes, Response<Full<Bytes>>> {
    let max = limits.max_body_bytes;
    if let Some(cl) = req.headers().get(CONTENT_LENGTH) {
        let Some(n) = cl.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) else {
            return Err(text(StatusCode::BAD_REQUEST, "invalid Content-Length"));
        };
        if n > max {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ));
        }
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let body = Limited::new(req.into_body(), limit);
    let timeout = Duration::from_secs(limits.request_timeout_secs);
    match tokio::time::timeout(timeout, body.collect()).await {
        Err(_) => Err(text(StatusCode::REQUEST_TIMEOUT, "Request Timeout\n")),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body too large",
                ))
            } else {
                Err(text(StatusCode::BAD_REQUEST, "Bad Request\n"))
            }
        }
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// The request target as the client wrote it in HTTP/1.1 origin form (`/path?query`), also for
/// HTTP/2 requests whose URI is absolute.
fn path_and_query<B>(req: &Request<B>) -> &str {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
}

/// Converts an RPC reply to an HTTP response.
pub fn to_http(rpc: &RpcResponse) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(rpc.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_type(status, rpc.content_type(), Bytes::from(rpc.body_bytes()))
}

fn with_type(status: StatusCode, ctype: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(SERVER, HeaderValue::from_static(SERVER_BANNER));
    r
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::copy_from_slice(body.as_bytes()),
    )
}

/// Accepts TLS connections until `stop`, then waits (up to `grace`) for in-flight requests.
pub(crate) async fn serve_client(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Arc<HttpApp>,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let header_timeout = Duration::from_secs(app.limits.request_timeout_secs);
    let max_streams = u32::try_from(app.limits.max_inflight).unwrap_or(u32::MAX);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("accept failed: {}", e.report());
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(peer, req).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            // One HTTP/2 connection from another node carries the onion requests of all the
            // clients whose paths cross both nodes, and a long-poll holds its stream for up
            // to 20 s: hyper's default of 200 streams per connection then queues everything
            // behind 200 waiting polls (a 1 000-member group's store took 30 s). The node's
            // own in-flight cap bounds the work, whatever the connection.
            builder.http2().max_concurrent_streams(max_streams);
            let conn = builder.serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::trace!("connection ended: {}", umbra_report::Report(&*e));
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace period over; dropping remaining connections");
        }
    }
}

/// Serves `GET /metrics` (Prometheus text), `GET /healthz` and `GET /status` (the node list the
/// node serves and whether it knows its swarm, [`crate::swarm::SwarmHandle::status_json`]) over
/// plain HTTP until `stop`.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    state: Arc<NodeState>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Ok((tcp, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let resp = match (req.method(), req.uri().path()) {
                        (&Method::GET, "/metrics") => with_type(
                            StatusCode::OK,
                            "text/plain; version=0.0.4",
                            Bytes::from(render_metrics(&state).await),
                        ),
                        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
                        (&Method::GET, "/status") => with_type(
                            StatusCode::OK,
                            "application/json",
                            Bytes::from(state.swarm.status_json().to_string()),
                        ),
                        (m, _) => {
                            let body = format!("{} {} Not Found", m, path_and_query(&req));
                            text(StatusCode::NOT_FOUND, &body)
                        }
                    };
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), svc);
            let _ = conn.await;
        });
    }
}

/// The full metrics page.
pub async fn render_metrics(state: &NodeState) -> String {
    let mut out = String::new();
    state.metrics.render(&mut out);
    let store = state.store.clone();
    if let Ok(Ok(stats)) = tokio::task::spawn_blocking(move || store.stats()).await {
        crate::metrics::render_store_stats(&stats, &mut out);
    }
    state.onion.render_metrics(&mut out);
    state.replicator.render_metrics(&mut out);
    state.swarm.render_metrics(&mut out);
    out
}
