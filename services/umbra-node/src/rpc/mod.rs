//! The storage RPC handler, independent of any transport.
//!
//! [`handle_rpc`] takes the raw body of a `POST /storage_rpc/v1` (or the decrypted payload of
//! an onion request) and the current time, and returns the HTTP status and body to send, exactly
//! as `storage-rpc.md` specifies. [`handle_method`] does the same from an already-parsed method
//! name and `params`; [`handle_forwarded`] is the entry point for a request forwarded by a swarm
//! peer (applied locally, never forwarded again, answered with this node's signed result only).
//!
//! Requests are parsed completely before anything is executed (so a malformed sub-request makes
//! a whole `batch` fail with 400, as in the reference), then executed against the store.

mod auth;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod methods;
mod params;

use std::future::Future;
use std::pin::Pin;
use umbra_crypto::AccountId;

use serde_json::{Map, Value, json};

use crate::node::NodeState;

pub(crate) use auth::KeyMatchCache;
#[cfg(feature = "test-support")]
pub(crate) use params::b64;

/// The body of an RPC reply.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcBody {
    /// A JSON document (`Content-Type: application/json`).
    Json(Value),
    /// A plain-text message (`Content-Type: text/plain`), byte for byte as the spec gives it.
    Text(String),
}

/// An RPC reply: HTTP status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcResponse {
    /// HTTP status code.
    pub status: u16,
    /// Body.
    pub body: RpcBody,
}

impl RpcResponse {
    /// A JSON reply.
    pub fn json(status: u16, v: Value) -> RpcResponse {
        RpcResponse {
            status,
            body: RpcBody::Json(v),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, s: impl Into<String>) -> RpcResponse {
        RpcResponse {
            status,
            body: RpcBody::Text(s.into()),
        }
    }

    /// The body as bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            RpcBody::Json(v) => v.to_string().into_bytes(),
            RpcBody::Text(s) => s.clone().into_bytes(),
        }
    }

    /// The `Content-Type` of the body.
    pub fn content_type(&self) -> &'static str {
        match self.body {
            RpcBody::Json(_) => "application/json",
            RpcBody::Text(_) => "text/plain; charset=utf-8",
        }
    }

    /// The JSON body, if it is one.
    pub fn json_body(&self) -> Option<&Value> {
        match &self.body {
            RpcBody::Json(v) => Some(v),
            RpcBody::Text(_) => None,
        }
    }

    /// The text body, if it is one.
    pub fn text_body(&self) -> Option<&str> {
        match &self.body {
            RpcBody::Json(_) => None,
            RpcBody::Text(s) => Some(s),
        }
    }

    /// The `{"code", "body"}` form used inside `batch`/`sequence`/`ifelse` results.
    fn as_subresult(&self) -> Value {
        let body = match &self.body {
            RpcBody::Json(v) => v.clone(),
            RpcBody::Text(s) => Value::String(s.clone()),
        };
        json!({"code": self.status, "body": body})
    }

    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request that cannot go on: status and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RpcError {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl RpcError {
    /// `400 invalid request: <msg>` (a parse error).
    pub(crate) fn invalid(msg: String) -> RpcError {
        RpcError {
            status: 400,
            body: format!("invalid request: {msg}"),
        }
    }
}

impl From<RpcError> for RpcResponse {
    fn from(e: RpcError) -> Self {
        RpcResponse::text(e.status, e.body)
    }
}

/// Who sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A client: recursive methods are forwarded to the swarm.
    Client,
    /// A swarm peer forwarding a client's request: apply only, wider time windows.
    Peer,
}

/// Per-request context.
pub(crate) struct Ctx<'a> {
    pub(crate) state: &'a NodeState,
    pub(crate) now: i64,
    pub(crate) origin: Origin,
}

impl Ctx<'_> {
    /// Adds `t` and `hf` to a JSON object.
    pub(crate) fn stamp(&self, v: Value) -> Value {
        self.stamp_at(v, self.now)
    }

    /// Adds `t` (as `now`) and `hf` to a JSON object: for an answer given later than the
    /// request's time (a long-poll).
    pub(crate) fn stamp_at(&self, mut v: Value, now: i64) -> Value {
        if let Value::Object(m) = &mut v {
            m.insert("t".into(), json!(now));
            m.insert("hf".into(), json!(crate::HARDFORK));
        }
        v
    }
}

/// Every method name this node knows (the metric labels come from this list).
pub(crate) const METHODS: &[&str] = &[
    "store",
    "retrieve",
    "delete",
    "delete_all",
    "delete_before",
    "expire",
    "expire_all",
    "get_expiries",
    "get_swarm",
    "get_snodes_for_pubkey",
    "info",
    "oxend_request",
    "batch",
    "sequence",
    "ifelse",
    "revoke_subaccount",
    "unrevoke_subaccount",
    "revoked_subaccounts",
];

/// The static label for a method name (client text never becomes a label).
fn method_label(name: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == name)
        .copied()
        .unwrap_or("unknown")
}

/// A parsed request, ready to execute.
pub(crate) enum Request {
    Store(methods::StoreReq),
    Retrieve(methods::RetrieveReq),
    Delete(methods::DeleteReq),
    DeleteAll(methods::DeleteAllReq),
    DeleteBefore(methods::DeleteBeforeReq),
    Expire(methods::ExpireReq),
    ExpireAll(methods::ExpireAllReq),
    GetExpiries(methods::GetExpiriesReq),
    Revoke(methods::RevokeReq),
    Unrevoke(methods::RevokeReq),
    RevokedList(methods::RevokedListReq),
    GetSwarm(AccountId),
    Info,
    Oxend(methods::OxendReq),
    Batch(Vec<Request>),
    Sequence(Vec<Request>),
    IfElse(Box<methods::IfElseReq>),
}

/// Parses `params` for `method`. `Ok(None)`: unknown method.
pub(crate) fn parse_request(
    method: &str,
    p: &Map<String, Value>,
) -> Result<Option<Request>, RpcError> {
    let p = params::Params(p);
    let req = match method {
        "store" => Request::Store(methods::parse_store(p)?),
        "retrieve" => Request::Retrieve(methods::parse_retrieve(p)?),
        "delete" => Request::Delete(methods::parse_delete(p)?),
        "delete_all" => Request::DeleteAll(methods::parse_delete_all(p)?),
        "delete_before" => Request::DeleteBefore(methods::parse_delete_before(p)?),
        "expire" => Request::Expire(methods::parse_expire(p)?),
        "expire_all" => Request::ExpireAll(methods::parse_expire_all(p)?),
        "get_expiries" => Request::GetExpiries(methods::parse_get_expiries(p)?),
        "revoke_subaccount" => Request::Revoke(methods::parse_revoke(p, true)?),
        "unrevoke_subaccount" => Request::Unrevoke(methods::parse_revoke(p, false)?),
        "revoked_subaccounts" => Request::RevokedList(methods::parse_revoked_list(p)?),
        "get_swarm" | "get_snodes_for_pubkey" => Request::GetSwarm(methods::parse_get_swarm(p)?),
        "info" => Request::Info,
        "oxend_request" => Request::Oxend(methods::parse_oxend(p)?),
        "batch" => Request::Batch(methods::parse_batch(p)?),
        "sequence" => Request::Sequence(methods::parse_batch(p)?),
        "ifelse" => Request::IfElse(Box::new(methods::parse_ifelse(p)?)),
        _ => return Ok(None),
    };
    Ok(Some(req))
}

/// A boxed response future (execution recurses through `batch` and `ifelse`).
pub(crate) type RespFuture<'a> = Pin<Box<dyn Future<Output = RpcResponse> + Send + 'a>>;

/// Executes a parsed request.
pub(crate) fn execute<'a>(ctx: &'a Ctx<'a>, req: Request) -> RespFuture<'a> {
    Box::pin(async move {
        let r = match req {
            Request::Store(r) => methods::exec_store(ctx, r).await,
            Request::Retrieve(r) => methods::exec_retrieve(ctx, r, false).await,
            Request::Delete(r) => methods::exec_delete(ctx, r).await,
            Request::DeleteAll(r) => methods::exec_delete_all(ctx, r).await,
            Request::DeleteBefore(r) => methods::exec_delete_before(ctx, r).await,
            Request::Expire(r) => methods::exec_expire(ctx, r).await,
            Request::ExpireAll(r) => methods::exec_expire_all(ctx, r).await,
            Request::GetExpiries(r) => methods::exec_get_expiries(ctx, r).await,
            Request::Revoke(r) => methods::exec_revoke(ctx, r, true).await,
            Request::Unrevoke(r) => methods::exec_revoke(ctx, r, false).await,
            Request::RevokedList(r) => methods::exec_revoked_list(ctx, r).await,
            Request::GetSwarm(pk) => Ok(methods::exec_get_swarm(ctx, &pk)),
            Request::Info => Ok(methods::exec_info(ctx)),
            Request::Oxend(r) => methods::exec_oxend(ctx, r).await,
            Request::Batch(reqs) => Ok(methods::exec_batch(ctx, reqs, false).await),
            Request::Sequence(reqs) => Ok(methods::exec_batch(ctx, reqs, true).await),
            Request::IfElse(r) => Ok(methods::exec_ifelse(ctx, *r).await),
        };
        r.unwrap_or_else(|e| e)
    })
}

/// Handles the raw body of a `/storage_rpc/v1` request at time `now_ms`.
pub async fn handle_rpc(state: &NodeState, now_ms: i64, body: &[u8]) -> RpcResponse {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        state.metrics.request("invalid", 400);
        return RpcResponse::text(400, "invalid json");
    };
    let method = match v.get("method") {
        Some(Value::String(m)) => m.as_str(),
        _ => {
            state.metrics.request("invalid", 400);
            return RpcResponse::text(400, "invalid json: no `method` field");
        }
    };
    let Some(params) = v.get("params") else {
        state.metrics.request("invalid", 400);
        return RpcResponse::text(400, "invalid json: no `params` field");
    };
    handle_method(state, now_ms, method, params).await
}

/// Handles one client request given its method name and `params` (e.g. from an onion request).
pub async fn handle_method(
    state: &NodeState,
    now_ms: i64,
    method: &str,
    params: &Value,
) -> RpcResponse {
    let resp = run(state, now_ms, method, params, Origin::Client).await;
    state.metrics.request(method_label(method), resp.status);
    resp
}

/// Handles a request forwarded by a member of this node's swarm (see [`crate::replicate`]):
/// applies it without forwarding and answers with this node's own signed result. The client's
/// signature is not checked again (the entry node checked it), so the caller must have
/// authenticated the sender as an active member of this node's swarm, as the peer service does.
pub async fn handle_forwarded(
    state: &NodeState,
    now_ms: i64,
    method: &str,
    params: &Value,
) -> RpcResponse {
    run(state, now_ms, method, params, Origin::Peer).await
}

async fn run(
    state: &NodeState,
    now_ms: i64,
    method: &str,
    params: &Value,
    origin: Origin,
) -> RpcResponse {
    let Value::Object(p) = params else {
        return RpcResponse::text(400, "invalid json: no `params` field");
    };
    let req = match parse_request(method, p) {
        Ok(Some(r)) => r,
        Ok(None) => return RpcResponse::text(400, format!("no method {method}")),
        Err(e) => {
            tracing::debug!(method = method_label(method), "invalid request: {}", e.body);
            return e.into();
        }
    };
    let ctx = Ctx {
        state,
        now: now_ms,
        origin,
    };
    match req {
        // Only a client's own top-level retrieve may wait (`crate::longpoll`).
        Request::Retrieve(r) if origin == Origin::Client => methods::exec_retrieve(&ctx, r, true)
            .await
            .unwrap_or_else(|e| e),
        req => execute(&ctx, req).await,
    }
}

#[cfg(test)]
mod tests;
