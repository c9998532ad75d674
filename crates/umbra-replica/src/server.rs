//! The peer endpoints as an axum [`Router`] for the node to mount.
//!
//! `POST /umbra/peer/v1/{forward,digests,entries,replicas,handover}`. Each request is, in
//! order: matched to an endpoint (`404`), its body read up to
//! [`crate::wire::MAX_REQUEST_BYTES`] (`413`), its `x-umbra-peer-auth` header parsed and
//! verified — recipient is this node, timestamp fresh, signature valid (`401`) — its sender
//! authorised: an active member of this node's swarm, or for `handover` any node in the
//! registry's list (`403`), checked against replays (`401`), then served. Every answer to an
//! authenticated request is signed ([`crate::auth::ResponseAuth`]), errors included; errors are
//! short plain-text bodies.
//!
//! The routes use absolute paths: mount the router with [`Router::merge`] (not `nest`) on the
//! listener the peers reach (see [`crate::client::PeerAddressing`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::Replica;
use crate::auth::{AUTH_HEADER, RequestAuth, ResponseAuth};
use crate::engine::Served;
use crate::wire::{Endpoint, MAX_REQUEST_BYTES};

/// The route pattern of the peer endpoints.
pub const ROUTE: &str = "/umbra/peer/v1/{endpoint}";

/// The router serving `replica`'s peer endpoints.
pub fn router(replica: Replica) -> Router {
    Router::new()
        .route(ROUTE, post(handle))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(replica)
}

impl Replica {
    /// The axum router of the peer endpoints (see [`crate::server`]).
    pub fn router(&self) -> Router {
        router(self.clone())
    }
}

fn plain(status: u16, text: &'static str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn handle(
    State(replica): State<Replica>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(endpoint) = Endpoint::from_name(&name) else {
        replica.count_request(false);
        return plain(404, "unknown peer endpoint");
    };
    let auth = headers
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(RequestAuth::parse_header);
    let auth = match auth {
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            replica.count_request(false);
            return plain(401, "malformed peer authentication");
        }
        None => {
            replica.count_request(false);
            return plain(401, "peer authentication required");
        }
    };
    let served = match replica.admit(&auth, endpoint, &body) {
        Ok(()) => {
            replica.count_request(true);
            replica.serve(endpoint, &body).await
        }
        Err(refused) => {
            replica.count_request(false);
            tracing::debug!(
                endpoint = endpoint.name(),
                status = refused.status,
                "peer request refused"
            );
            refused
        }
    };
    signed(&replica, &auth, served)
}

fn signed(replica: &Replica, auth: &RequestAuth, served: Served) -> Response {
    let rauth = ResponseAuth::sign(replica.identity(), auth, served.status, &served.body);
    let status = StatusCode::from_u16(served.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if served.status == 200 {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut resp = (status, served.body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&rauth.to_header()) {
        h.insert(AUTH_HEADER, v);
    }
    resp
}
