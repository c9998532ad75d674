//! Being the destination of onion requests, as Session's file server is (`onion-requests.md`
//! §6, `messages.md` §7): an exit node POSTs `u32 ‖ L_S ‖ control JSON` to `/oxen/v4/lsrpc`;
//! the server decrypts `L_S` with its X25519 key ([`umbra_onion::open_server_request`]), runs
//! the v4 request it holds against its own routes, and answers `200` with the v4 response
//! sealed under the same key. So a client reaches the server only through exit nodes, and the
//! server never learns the client's address.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, Limited};
use tower::ServiceExt as _;
use umbra_crypto::OsRandom;
use umbra_crypto::keys::X25519KeyPair;
use umbra_onion::v4::INVALID_V4_REQUEST;
use umbra_onion::{V4Request, V4Response, open_server_request};

use crate::AttachmentError;

/// The paths exits POST v4 requests to (`onion-requests.md` §4: a target under `/oxen/` or
/// `/loki/` ending in `/lsrpc`).
pub const V4_PATHS: [&str; 2] = ["/oxen/v4/lsrpc", "/loki/v4/lsrpc"];

/// Largest onion body accepted: an onion frame's limit (`umbra_onion::MAX_FRAME_LEN`).
pub const MAX_ONION_BODY: usize = umbra_onion::MAX_FRAME_LEN;

/// Largest response body sent back through an onion path: what fits one reply frame with room
/// for the v4 and encryption overhead. A bigger file answers `413`; fetch it by chunk
/// (`GET /file/<id>/chunk/<n>`) or range instead.
pub const MAX_V4_RESPONSE_BODY: usize = 10 * 1024 * 1024 - 64 * 1024;

/// Onion requests handled at once; more are answered `503` at once (each holds up to a few
/// frames of memory).
pub const MAX_CONCURRENT_ONION: usize = 16;

/// Headers a v4 request may carry, and the longest name or value looked at.
const MAX_V4_HEADERS: usize = 64;
const MAX_V4_HEADER_LEN: usize = 8 * 1024;

/// Reads the server's X25519 key from `path` (64 hex digits of the secret), creating it with
/// fresh randomness (mode 0600) if missing.
///
/// # Errors
/// [`AttachmentError::Io`] if the file cannot be read or written, [`AttachmentError::Corrupt`]
/// if it does not hold 64 hex digits.
pub fn load_or_create_key(path: &Path) -> Result<X25519KeyPair, AttachmentError> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).map_err(AttachmentError::io("reading the server key"))?;
        let secret = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                AttachmentError::Corrupt(format!(
                    "{} is not a 64-hex-digit key: restore it, or delete it to make a new server key (clients must then learn the new one)",
                    path.display()
                ))
            })?;
        return Ok(X25519KeyPair::from_secret(secret));
    }
    let key = X25519KeyPair::generate(&mut OsRandom);
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(AttachmentError::io("creating the server key"))?;
        f.write_all(hex::encode(key.secret().as_slice()).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(AttachmentError::io("writing the server key"))?;
    }
    std::fs::rename(&tmp, path).map_err(AttachmentError::io("writing the server key"))?;
    Ok(key)
}

/// The v4 destination: the key, the routes it dispatches to, and a bound on concurrency.
#[derive(Clone)]
pub(crate) struct Destination {
    key: Arc<X25519KeyPair>,
    routes: Router,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Destination {
    pub(crate) fn new(key: Arc<X25519KeyPair>, routes: Router) -> Self {
        Self {
            key,
            routes,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_ONION)),
        }
    }

    /// Answers one exit POST.
    pub(crate) async fn handle(self, body: Bytes) -> Response {
        let Ok(_permit) = self.slots.try_acquire() else {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Server busy, try again later",
            );
        };
        // `onion-requests.md` §6: a frame the server cannot open gets a plain 400.
        let opened = match open_server_request(&self.key, &body) {
            Ok(o) => o,
            Err(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                return plain(status, &e.body());
            }
        };
        drop(body);
        let answer = match opened.v4() {
            Ok(req) => dispatch(self.routes, req).await,
            Err(_) => v4_text(StatusCode::BAD_REQUEST, INVALID_V4_REQUEST),
        };
        let sealed = opened.reply(&answer, &mut OsRandom);
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            sealed,
        )
            .into_response()
    }
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.to_owned(),
    )
        .into_response()
}

fn v4_text(status: StatusCode, text: &str) -> V4Response {
    V4Response {
        code: status.as_u16(),
        headers: BTreeMap::from([(
            "content-type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        )]),
        body: text.as_bytes().to_vec(),
    }
}

fn v4_status(status: StatusCode) -> V4Response {
    V4Response {
        code: status.as_u16(),
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: format!("{{\"status_code\":{}}}", status.as_u16()).into_bytes(),
    }
}

/// The HTTP request a v4 request stands for, or the v4 answer refusing it.
fn to_http(req: V4Request) -> Result<Request<Body>, V4Response> {
    let bad = || v4_text(StatusCode::BAD_REQUEST, INVALID_V4_REQUEST);
    // No onion inside an onion: the v4 paths are not reachable through themselves.
    if req.endpoint.starts_with("/oxen/") || req.endpoint.starts_with("/loki/") {
        return Err(v4_status(StatusCode::NOT_FOUND));
    }
    if req.endpoint.len() > MAX_V4_HEADER_LEN || req.headers.len() > MAX_V4_HEADERS {
        return Err(bad());
    }
    let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| bad())?;
    let mut http = Request::builder().method(method).uri(req.endpoint.as_str());
    for (name, value) in &req.headers {
        if name.len() > MAX_V4_HEADER_LEN || value.len() > MAX_V4_HEADER_LEN {
            return Err(bad());
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        // `onion-requests.md` §6: `Content-Length` is ignored (the body is whole).
        if name == header::CONTENT_LENGTH || name == header::HOST {
            continue;
        }
        let value = HeaderValue::from_str(value).map_err(|_| bad())?;
        http = http.header(name, value);
    }
    http.body(Body::from(req.body.unwrap_or_default()))
        .map_err(|_| bad())
}

async fn dispatch(routes: Router, req: V4Request) -> V4Response {
    let http = match to_http(req) {
        Ok(h) => h,
        Err(answer) => return answer,
    };
    let Ok(resp) = routes.oneshot(http).await;
    let (parts, body) = resp.into_parts();
    let too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_V4_RESPONSE_BODY);
    if too_large {
        return v4_status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let Ok(collected) = Limited::new(body, MAX_V4_RESPONSE_BODY).collect().await else {
        return v4_status(StatusCode::PAYLOAD_TOO_LARGE);
    };
    // `onion-requests.md` §6: lower-case names, no content-length.
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| *name != header::CONTENT_LENGTH)
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    V4Response {
        code: parts.status.as_u16(),
        headers,
        body: collected.to_bytes().to_vec(),
    }
}
