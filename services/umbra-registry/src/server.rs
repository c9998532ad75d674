//! The HTTP shell around [`Registry`]: axum routes, a clock, and the inactivity sweep.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use umbra_report::ErrorExt as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use umbra_crypto::OsRandom;
use umbra_proto::umbra::registry::v1 as pb;

use umbra_nodelist::api::{
    ErrorBody, HeartbeatRequest, LeaveRequest, MAX_REQUEST_BYTES, RegisterRequest,
};

use crate::RegistryError;
use crate::error::Refusal;
use crate::oxend;
use crate::registry::Registry;
use umbra_nodelist::NodeListError;

// The workspace's one clock; re-exported because building an [`AppState`] takes one.
pub use umbra_clock::{Clock, SystemClock};

/// Shared state of the HTTP handlers and the gRPC service.
pub struct AppState {
    registry: Mutex<Registry>,
    clock: Arc<dyn Clock>,
    /// The newest signed list, in its gRPC form: every `WatchNodeList` stream follows it.
    /// A `watch` channel holds one value, so a slow watcher skips to the newest list and no
    /// queue ever grows.
    lists: watch::Sender<Arc<pb::SignedNodeList>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Wraps a registry and a clock for serving.
    pub fn new(registry: Registry, clock: Arc<dyn Clock>) -> Arc<Self> {
        let lists = watch::Sender::new(Arc::new(pb::SignedNodeList::from(registry.current())));
        Arc::new(Self {
            registry: Mutex::new(registry),
            clock,
            lists,
        })
    }

    /// The newest signed list now and every newer one as soon as it is signed (only the
    /// newest is kept for a receiver that has not looked yet).
    pub fn subscribe_lists(&self) -> watch::Receiver<Arc<pb::SignedNodeList>> {
        self.lists.subscribe()
    }

    /// Runs `f` on the registry with the current time.
    ///
    /// # Errors
    /// Whatever `f` returns; a poisoned lock is reported as [`RegistryError::Corrupt`].
    pub fn with_registry<T>(
        &self,
        f: impl FnOnce(&mut Registry, u64) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut guard = self.lock()?;
        let now = self.clock.now_ms();
        let result = f(&mut guard, now);
        // Still under the lock, so watchers see the lists in the order they were signed.
        let current = guard.current();
        self.lists.send_if_modified(|sent| {
            let newer = sent.list.as_ref().map(|l| l.epoch) != Some(current.list.epoch);
            if newer {
                *sent = Arc::new(pb::SignedNodeList::from(current));
            }
            newer
        });
        result
    }

    fn lock(&self) -> Result<MutexGuard<'_, Registry>, RegistryError> {
        self.registry
            .lock()
            .map_err(|_| RegistryError::Corrupt("registry lock poisoned".into()))
    }
}

fn status_of(e: &RegistryError) -> StatusCode {
    match e.refusal() {
        Refusal::Malformed => StatusCode::BAD_REQUEST,
        Refusal::Unauthenticated => StatusCode::UNAUTHORIZED,
        Refusal::NotRegistered => StatusCode::NOT_FOUND,
        Refusal::Stale => StatusCode::NOT_ACCEPTABLE,
        Refusal::Replayed => StatusCode::CONFLICT,
        Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error_response(e: &RegistryError) -> Response {
    let status = status_of(e);
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e.report(), "registry request failed");
    } else {
        tracing::debug!(error = %e.report(), "request refused");
    }
    json_response(status, &ErrorBody::from(e))
}

fn reply<T: Serialize>(r: Result<T, RegistryError>) -> Response {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(body).map_err(|e| NodeListError::BadRequest(e.to_string()).into())
}

async fn info(State(s): State<Arc<AppState>>) -> Response {
    reply(s.with_registry(|r, _| Ok(r.info())))
}

async fn nodelist(State(s): State<Arc<AppState>>) -> Response {
    reply(s.with_registry(|r, _| Ok(r.current().clone())))
}

async fn register(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    reply(
        parse::<RegisterRequest>(&body)
            .and_then(|req| s.with_registry(|r, now| r.register(&req, now))),
    )
}

async fn heartbeat(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    reply(
        parse::<HeartbeatRequest>(&body)
            .and_then(|req| s.with_registry(|r, now| r.heartbeat(&req, now))),
    )
}

async fn leave(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    reply(parse::<LeaveRequest>(&body).and_then(|req| s.with_registry(|r, now| r.leave(&req, now))))
}

async fn json_rpc(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return json_response(StatusCode::OK, &oxend::parse_error());
    };
    let (list, now) = match s.with_registry(|r, now| Ok((r.current().list.clone(), now))) {
        Ok(l) => l,
        Err(e) => return error_response(&e),
    };
    let now_ms = i64::try_from(now).unwrap_or(i64::MAX);
    json_response(
        StatusCode::OK,
        &oxend::answer(&req, &list, now_ms, &mut OsRandom),
    )
}

/// The registry's routes (see the crate docs for the API).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/nodelist", get(nodelist))
        .route("/v1/register", post(register))
        .route("/v1/heartbeat", post(heartbeat))
        .route("/v1/leave", post(leave))
        .route("/json_rpc", post(json_rpc))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}

/// Marks silent nodes inactive every `period`, forever.
pub async fn expiry_loop(state: Arc<AppState>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = state.with_registry(|r, now| r.expire(now)) {
            tracing::error!(error = %e.report(), "inactivity sweep failed");
        }
    }
}

/// Most connections served at once; further ones are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time a client has to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request may take from headers to answer (including reading the body).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn with_timeout(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => json_response(
            StatusCode::REQUEST_TIMEOUT,
            &ErrorBody {
                error: format!(
                    "request not completed within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
                code: "timeout".to_owned(),
            },
        ),
    }
}

/// Serves the registry on `listener` until `shutdown` completes, sweeping inactive nodes in
/// the background. Connections are bounded ([`MAX_CONNECTIONS`]), headers must arrive within
/// [`HEADER_READ_TIMEOUT`] and requests complete within [`REQUEST_TIMEOUT`]; on shutdown open
/// connections get [`SHUTDOWN_GRACE`] to finish.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let period = state
        .with_registry(|r, _| Ok(r.config().heartbeat_interval_ms))
        .unwrap_or(1000)
        .clamp(100, 5000);
    let sweeper = tokio::spawn(expiry_loop(
        Arc::clone(&state),
        Duration::from_millis(period),
    ));
    let app = router(state).layer(axum::middleware::from_fn(with_timeout));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e.report(), "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(limit = MAX_CONNECTIONS, "connection limit reached; closing a new connection");
                    continue;
                };
                let service = TowerToHyperService::new(app.clone());
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %umbra_report::Report(&*e), "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; dropping them");
    }
    Ok(())
}
