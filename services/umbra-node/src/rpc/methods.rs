//! Every storage RPC method: parameter loading (in the reference's field order, so the first
//! error reported is the same) and execution.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};
use umbra_report::ErrorExt as _;

use serde_json::{Map, Value, json};
use umbra_crypto::hash::message_hash;
use umbra_store::{
    ByNamespace, ExpireMode, ExpireRequest, ExpiryTarget, Namespace, NamespaceSel, NewMessage,
    Owner, RetrieveDirection, RetrieveLimits, StoreError, StoreOutcome, SubaccountToken,
    is_public_inbox, is_public_outbox,
};

use super::auth::{
    Auth, PERM_DELETE, PERM_READ, PERM_WRITE, Requirement, load_pk_signature, load_subaccount,
    verify_request,
};
use super::params::{
    PResult, Params, b64, b64_decode, check_ms, choose_pubkey, is_base64, is_valid_message_hash,
    load_pk, parse_account_hex, parse_token, require,
};
use super::{Ctx, Origin, Request, RpcError, RpcResponse, execute, parse_request};
use crate::replicate::{MemberResults, RecursiveRequest};

/// What an executor returns: the reply, or an early reply (error or 421).
pub(crate) type Exec = Result<RpcResponse, RpcResponse>;

const SECOND: i64 = 1000;
const DAY: i64 = 24 * 3600 * SECOND;
/// Signature timestamp tolerance.
const SIG_WINDOW: i64 = 60 * SECOND;
/// Tolerance on forwarded `delete_all`/`expire_all`.
const FORWARDED_WINDOW: i64 = 70 * SECOND;
/// Store clock tolerance.
const STORE_TOLERANCE: i64 = 10 * SECOND;
const TTL_MIN: i64 = 10 * SECOND;
const TTL_MAX_PUBLIC: i64 = 14 * DAY;
const TTL_MAX: i64 = 30 * DAY;
/// Largest `data` accepted, in base64 characters (76 800 bytes).
const MAX_DATA_B64: usize = 102_400;
const MAX_MESSAGE_BODY: usize = 76_800;
const MAX_BATCH: usize = 20;
/// Most tokens one `revoke_subaccount` may carry; `unrevoke_subaccount` has no limit
/// (`storage-rpc-addendum.md` A5).
const MAX_REVOKE_TOKENS: usize = 50;

/// The namespace as it appears in signed strings: empty for 0.
fn ns_str(ns: Namespace) -> String {
    if ns == 0 {
        String::new()
    } else {
        ns.to_string()
    }
}

fn ns_sel_str(sel: NamespaceSel) -> String {
    match sel {
        NamespaceSel::One(n) => ns_str(n),
        NamespaceSel::All => "all".to_string(),
    }
}

/// `−(100n + 11)`: revoked subaccounts may still retrieve here.
fn is_unrevocable(ns: Namespace) -> bool {
    let ns = i32::from(ns);
    ns < 0 && (-ns - 11) % 100 == 0
}

/// Namespaces readable without a signature: legacy closed groups and public outboxes.
fn is_noauth_retrieve(ns: Namespace) -> bool {
    ns == -10 || is_public_outbox(ns)
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn server_error() -> RpcResponse {
    RpcResponse::text(500, "request failed")
}

/// Runs a store read on the blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or(Err(StoreError::WriterGone { op: "read" }))
}

/// 421 (or 503 when no swarm is known at all) unless the account is ours.
fn check_swarm(ctx: &Ctx<'_>, owner: &[u8; 33]) -> Result<(), RpcResponse> {
    let view = ctx.state.swarm.get();
    if !view.has_swarms() {
        return Err(RpcResponse::text(
            503,
            "Service node is not ready: no swarm information yet\n",
        ));
    }
    if view.is_ours(owner) {
        return Ok(());
    }
    Err(RpcResponse::json(421, ctx.stamp(view.swarm_json(owner))))
}

/// Verifies, mapping a database failure to `500 request failed`.
async fn authenticate(
    ctx: &Ctx<'_>,
    owner: &[u8; 33],
    auth: &Auth,
    req: Requirement,
    msg: &[u8],
) -> Result<bool, RpcResponse> {
    verify_request(
        &ctx.state.store,
        &ctx.state.key_matches,
        owner,
        auth,
        req,
        msg,
    )
    .await
    .map_err(|e| {
        tracing::warn!("checking a subaccount revocation failed: {}", e.report());
        server_error()
    })
}

/// The failure entry of this node in a swarm reply.
fn failure_entry(e: &StoreError) -> Value {
    tracing::warn!("write failed: {}", e.report());
    json!({"failed": true, "query_failure": true, "reason": e.report().to_string()})
}

/// The node's Ed25519 signature over `msg`, base64.
fn node_sig(ctx: &Ctx<'_>, msg: &[u8]) -> String {
    b64(&ctx.state.identity.sign(msg))
}

/// Applies a recursive request locally while the replicator forwards it to the other members.
async fn fan_out<F>(
    ctx: &Ctx<'_>,
    method: &'static str,
    owner: [u8; 33],
    raw: Value,
    apply: F,
) -> (Value, MemberResults)
where
    F: Future<Output = Value>,
{
    if ctx.origin == Origin::Peer {
        return (apply.await, MemberResults::new());
    }
    let forward = ctx.state.replicator.replicate(RecursiveRequest {
        method,
        params: raw,
        owner,
    });
    tokio::join!(apply, forward)
}

/// Builds the reply of a recursive method: this node's result alone for a peer; for a client
/// `{"swarm": {...}, "t", "hf"}` plus `extra` keys, 500 if every member failed (503 when the
/// only failure is this node's full write queue).
fn swarm_reply(
    ctx: &Ctx<'_>,
    own: Value,
    mut others: MemberResults,
    extra: Map<String, Value>,
    busy: bool,
) -> RpcResponse {
    if ctx.origin == Origin::Peer {
        let status = if own.get("failed").is_some() {
            500
        } else {
            200
        };
        return RpcResponse::json(status, own);
    }
    others.insert(hex::encode(ctx.state.identity.ed25519_public()), own);
    let all_failed = others.values().all(|v| v.get("failed").is_some());
    if all_failed && busy && others.len() == 1 {
        return RpcResponse::text(503, "Server busy, try again later");
    }
    let mut body = Map::new();
    body.insert("swarm".into(), Value::Object(others.into_iter().collect()));
    body.extend(extra);
    let status = if all_failed { 500 } else { 200 };
    RpcResponse::json(status, ctx.stamp(Value::Object(body)))
}

fn is_busy(e: &StoreError) -> bool {
    matches!(e, StoreError::QueueFull { .. })
}

// ---------------------------------------------------------------------------------------------
// store
// ---------------------------------------------------------------------------------------------

pub(crate) struct StoreReq {
    owner: [u8; 33],
    ns: Namespace,
    timestamp: i64,
    expiry: i64,
    sig_ts: i64,
    auth: Option<Auth>,
    data: Vec<u8>,
    raw: Value,
}

pub(crate) fn parse_store(p: Params<'_>) -> PResult<StoreReq> {
    let data = p.string("data")?;
    let expiry = p.timestamp("expiry")?;
    let ns = p.namespace("namespace")?;
    let pubkey_alt = p.string("pubKey")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig_ts = p.timestamp("sig_timestamp")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let timestamp = p.stringified_int("timestamp")?;
    let ttl = p.stringified_uint("ttl")?;

    let timestamp = require("timestamp", timestamp)?;
    check_ms("timestamp", timestamp)?;
    let expiry = match (expiry, ttl) {
        (Some(_), Some(_)) => {
            return Err(RpcError::invalid(
                "Cannot specify both 'expiry' and 'ttl'".into(),
            ));
        }
        (Some(e), None) => e,
        (None, Some(t)) => timestamp.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)),
        (None, None) => {
            return Err(RpcError::invalid(
                "Required field 'expiry' or 'ttl' missing".into(),
            ));
        }
    };
    let pk = choose_pubkey(pubkey, pubkey_alt)?;
    let (owner, auth, sig_ts) = if sig.is_some() {
        let (owner, mut auth) = load_pk_signature(pk, pk_ed, sig)?;
        auth.subaccount = load_subaccount(subacc, subacc_sig)?;
        (owner, Some(auth), sig_ts.unwrap_or(timestamp))
    } else {
        (load_pk(pk)?, None, timestamp)
    };
    let data = require("data", data)?;
    if !is_base64(data) {
        return Err(RpcError::invalid(
            "Invalid 'data' value: not base64 encoded".into(),
        ));
    }
    if data.len() > MAX_DATA_B64 {
        return Err(RpcError::invalid(format!(
            "Message body exceeds maximum allowed length of {MAX_MESSAGE_BODY} bytes"
        )));
    }
    let data = b64_decode(data)
        .ok_or_else(|| RpcError::invalid("Invalid 'data' value: not base64 encoded".into()))?;
    Ok(StoreReq {
        owner,
        ns: ns.unwrap_or(0),
        timestamp,
        expiry,
        sig_ts,
        auth,
        data,
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_store(ctx: &Ctx<'_>, r: StoreReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    let ttl = r.expiry.saturating_sub(r.timestamp);
    let max_ttl = if is_public_inbox(r.ns) {
        TTL_MAX_PUBLIC
    } else {
        TTL_MAX
    };
    if !(TTL_MIN..=max_ttl).contains(&ttl) {
        return Err(RpcResponse::text(403, "Provided expiry/TTL is not valid."));
    }
    let now = ctx.now;
    if r.timestamp > now.saturating_add(STORE_TOLERANCE)
        || r.expiry < now.saturating_sub(STORE_TOLERANCE)
    {
        return Err(RpcResponse::text(406, "Timestamp error: check your clock"));
    }
    if !is_public_inbox(r.ns) {
        let Some(auth) = &r.auth else {
            return Err(RpcResponse::text(
                401,
                format!("store: signature required to store to namespace {}", r.ns),
            ));
        };
        if r.sig_ts.abs_diff(now) > SIG_WINDOW.unsigned_abs() {
            return Err(RpcResponse::text(
                406,
                "store signature timestamp too far from current time",
            ));
        }
        let perms = if is_public_outbox(r.ns) {
            PERM_WRITE | PERM_DELETE
        } else {
            PERM_WRITE
        };
        let msg = concat(&[
            b"store",
            ns_str(r.ns).as_bytes(),
            r.sig_ts.to_string().as_bytes(),
        ]);
        if !authenticate(ctx, &r.owner, auth, Requirement::perms(perms), &msg).await? {
            return Err(RpcResponse::text(
                401,
                "store signature verification failed",
            ));
        }
    }

    let hash = message_hash(&r.owner, i32::from(r.ns), &r.data);
    let requested_expiry = r.expiry;
    let msg = NewMessage {
        owner: Owner::new(r.owner),
        namespace: r.ns,
        hash: hash.clone(),
        data: r.data,
        timestamp_ms: r.timestamp,
        expiry_ms: r.expiry,
    };
    let mut busy = false;
    let apply = async {
        let started = Instant::now();
        let res = ctx.state.store.store(msg, now).await;
        ctx.state.metrics.store_latency(started.elapsed());
        match res {
            Ok(outcome) => {
                let expiry = match outcome {
                    StoreOutcome::Stored { expiry_ms } | StoreOutcome::Already { expiry_ms } => {
                        expiry_ms
                    }
                    _ => requested_expiry,
                };
                let mut own = json!({
                    "hash": hash,
                    "signature": node_sig(ctx, hash.as_bytes()),
                    "expiry": expiry,
                });
                if outcome.already() {
                    own["already"] = json!(true);
                }
                if ctx.origin == Origin::Client {
                    own["t"] = json!(now);
                }
                own
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "store", r.owner, r.raw, apply).await;
    let mut extra = Map::new();
    extra.insert("hash".into(), json!(hash));
    Ok(swarm_reply(ctx, own, others, extra, busy))
}

// ---------------------------------------------------------------------------------------------
// retrieve
// ---------------------------------------------------------------------------------------------

pub(crate) struct RetrieveReq {
    owner: [u8; 33],
    ns: Namespace,
    auth: Option<(Auth, i64)>,
    last_hash: Option<String>,
    max_count: i64,
    max_size: i64,
    /// `reverse_direction` (`storage-rpc-addendum.md` A2): newest first, paging backwards.
    reverse: bool,
    /// `umbra_wait_ms`, capped (`crate::longpoll`); 0: answer at once.
    wait_ms: u64,
}

pub(crate) fn parse_retrieve(p: Params<'_>) -> PResult<RetrieveReq> {
    let last_hash_alt = p.string("lastHash")?;
    let last_hash = p.string("last_hash")?;
    let max_count = p.int("max_count")?;
    let max_size = p.int("max_size")?;
    let ns = p.namespace("namespace")?;
    let pubkey_alt = p.string("pubKey")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    // storage-rpc-addendum.md A2: a boolean, not part of the signed message.
    let reverse = p.boolean("reverse_direction")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let ts = p.timestamp("timestamp")?;
    let wait_ms = p.uint("umbra_wait_ms")?.unwrap_or(0);

    let pk = choose_pubkey(pubkey, pubkey_alt)?;
    let needs_auth = pk_ed.is_some()
        || sig.is_some()
        || ts.is_some()
        || ns.is_some_and(|n| !is_noauth_retrieve(n));
    let (owner, auth) = if needs_auth {
        let (owner, mut auth) = load_pk_signature(pk, pk_ed, sig)?;
        auth.subaccount = load_subaccount(subacc, subacc_sig)?;
        let ts = require("timestamp", ts)?;
        (owner, Some((auth, ts)))
    } else {
        (load_pk(pk)?, None)
    };
    if last_hash.is_some() && last_hash_alt.is_some() {
        return Err(RpcError::invalid(
            "Cannot specify both 'last_hash' and 'lastHash'".into(),
        ));
    }
    let last_hash = match last_hash.or(last_hash_alt) {
        None | Some("") => None,
        Some(h) if h.len() == 43 => {
            if !is_base64(h) {
                return Err(RpcError::invalid("Invalid last_hash: not base64".into()));
            }
            Some(h.to_string())
        }
        Some(_) => {
            return Err(RpcError::invalid(
                "Invalid last_hash: expected base64 (43 chars)".into(),
            ));
        }
    };
    Ok(RetrieveReq {
        owner,
        ns: ns.unwrap_or(0),
        auth,
        last_hash,
        max_count: max_count.unwrap_or(0),
        max_size: max_size.unwrap_or(0),
        reverse: reverse.unwrap_or(false),
        wait_ms: wait_ms.min(crate::longpoll::MAX_WAIT_MS),
    })
}

/// `05ab…xyz`: enough to recognise an account in an error, not to identify it.
fn obfuscate(owner: &[u8; 33]) -> String {
    let h = hex::encode(owner);
    format!("{}...{}", &h[..4], &h[h.len() - 3..])
}

/// `retrieve`; with `may_wait` (a client's top-level request) an authenticated retrieve that
/// asks for it long-polls (`crate::longpoll`).
pub(crate) async fn exec_retrieve(ctx: &Ctx<'_>, r: RetrieveReq, may_wait: bool) -> Exec {
    check_swarm(ctx, &r.owner)?;
    match &r.auth {
        Some((auth, ts)) => {
            if ts.abs_diff(ctx.now) > SIG_WINDOW.unsigned_abs() {
                return Err(RpcResponse::text(
                    406,
                    "retrieve timestamp too far from current time",
                ));
            }
            let msg = concat(&[
                b"retrieve",
                ns_str(r.ns).as_bytes(),
                ts.to_string().as_bytes(),
            ]);
            let req = Requirement {
                perms: PERM_READ,
                allow_revoked: is_unrevocable(r.ns),
            };
            if !authenticate(ctx, &r.owner, auth, req, &msg).await? {
                return Err(RpcResponse::text(
                    401,
                    "retrieve signature verification failed",
                ));
            }
        }
        None => {
            if !is_noauth_retrieve(r.ns) {
                return Err(RpcResponse::text(
                    401,
                    "retrieve: request signature required",
                ));
            }
        }
    }
    let store = &ctx.state.store;
    let owner = Owner::new(r.owner);
    // storage-rpc-addendum.md A1: a 7 800 000-byte cap even with only `max_count`, every
    // message counted as 100 + len(hash) + ⌊len(data)·4/3⌋ whatever the request's encoding.
    let limits = RetrieveLimits::from_request(r.max_count, r.max_size);
    let direction = if r.reverse {
        RetrieveDirection::Reverse
    } else {
        RetrieveDirection::Forward
    };
    let fetch = |now: i64| {
        let (store, ns, last_hash) = (store.clone(), r.ns, r.last_hash.clone());
        async move {
            blocking(move || {
                store.retrieve_in(&owner, ns, last_hash.as_deref(), limits, direction, now)
            })
            .await
            .map_err(|e| {
                tracing::warn!("retrieve failed: {}", e.report());
                RpcResponse::text(
                    500,
                    format!(
                        "Internal Server Error. Could not retrieve messages for {}",
                        obfuscate(&r.owner)
                    ),
                )
            })
        }
    };
    let started = tokio::time::Instant::now();
    let now = || ctx.now + i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    // Taken before the first look, so that a message committed in between is not missed.
    let mut arrival = store.arrival(&owner);
    let mut page = fetch(ctx.now).await?;
    let wait = may_wait && r.wait_ms > 0 && r.auth.is_some() && page.messages.is_empty();
    if let Some(_slot) = wait.then(|| ctx.state.long_poll.enter()).flatten() {
        let deadline = started + Duration::from_millis(r.wait_ms);
        while page.messages.is_empty() && ctx.state.long_poll.wait(arrival, deadline).await {
            arrival = store.arrival(&owner);
            page = fetch(now()).await?;
        }
    }
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|m| {
            json!({
                "data": b64(&m.data),
                "expiration": m.expiry_ms,
                "hash": m.hash,
                "timestamp": m.timestamp_ms,
            })
        })
        .collect();
    Ok(RpcResponse::json(
        200,
        ctx.stamp_at(json!({"messages": messages, "more": page.more}), now()),
    ))
}

// ---------------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------------

pub(crate) struct DeleteReq {
    owner: [u8; 33],
    auth: Auth,
    messages: Vec<String>,
    required: bool,
    raw: Value,
}

fn check_hashes(hashes: &[String]) -> PResult<()> {
    if hashes.is_empty() {
        return Err(RpcError::invalid(
            "messages does not contain any message hashes".into(),
        ));
    }
    for h in hashes {
        if !is_valid_message_hash(h) {
            return Err(RpcError::invalid(format!("invalid message hash: {h}")));
        }
    }
    Ok(())
}

pub(crate) fn parse_delete(p: Params<'_>) -> PResult<DeleteReq> {
    let messages = p.str_array("messages")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let required = p.boolean("required")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let messages = require("messages", messages)?;
    check_hashes(&messages)?;
    Ok(DeleteReq {
        owner,
        auth,
        messages,
        required: required.unwrap_or(false),
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_delete(ctx: &Ctx<'_>, r: DeleteReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    let mut msg = b"delete".to_vec();
    for h in &r.messages {
        msg.extend_from_slice(h.as_bytes());
    }
    if !authenticate(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_DELETE),
        &msg,
    )
    .await?
    {
        return Err(RpcResponse::text(
            401,
            "delete_msgs signature verification failed",
        ));
    }
    let pk_hex = hex::encode(r.owner);
    let requested = r.messages.clone();
    let mut busy = false;
    let apply = async {
        match ctx
            .state
            .store
            .delete(Owner::new(r.owner), r.messages, ctx.now)
            .await
        {
            Ok(deleted) => {
                let mut m = pk_hex.clone().into_bytes();
                for h in requested.iter().chain(deleted.iter()) {
                    m.extend_from_slice(h.as_bytes());
                }
                json!({"deleted": deleted, "signature": node_sig(ctx, &m)})
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "delete", r.owner, r.raw, apply).await;
    let mut resp = swarm_reply(ctx, own, others, Map::new(), busy);
    if r.required && resp.status == 200 {
        let nothing = match resp.json_body() {
            Some(v) if ctx.origin == Origin::Client => v["swarm"]
                .as_object()
                .map(|m| {
                    m.values().all(|e| {
                        e.get("deleted")
                            .and_then(Value::as_array)
                            .is_none_or(|a| a.is_empty())
                    })
                })
                .unwrap_or(true),
            Some(v) => v
                .get("deleted")
                .and_then(Value::as_array)
                .is_none_or(|a| a.is_empty()),
            None => false,
        };
        if nothing {
            resp.status = 404;
        }
    }
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// delete_all / delete_before
// ---------------------------------------------------------------------------------------------

pub(crate) struct DeleteAllReq {
    owner: [u8; 33],
    auth: Auth,
    ns: NamespaceSel,
    timestamp: i64,
    raw: Value,
}

pub(crate) fn parse_delete_all(p: Params<'_>) -> PResult<DeleteAllReq> {
    let ns = p.namespace_var("namespace")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let timestamp = p.timestamp("timestamp")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let timestamp = require("timestamp", timestamp)?;
    Ok(DeleteAllReq {
        owner,
        auth,
        ns: ns.unwrap_or(NamespaceSel::One(0)),
        timestamp,
        raw: Value::Object(p.0.clone()),
    })
}

/// `deleted`/`updated` as the reply shows it: a list, or a dict by namespace for `"all"`.
fn by_ns_json(sel: NamespaceSel, v: &ByNamespace) -> Value {
    match sel {
        NamespaceSel::One(n) => json!(v.namespace(n)),
        NamespaceSel::All => Value::Object(
            v.0.iter()
                .map(|(ns, hashes)| (ns.to_string(), json!(hashes)))
                .collect(),
        ),
    }
}

fn window(ctx: &Ctx<'_>) -> i64 {
    if ctx.origin == Origin::Peer {
        FORWARDED_WINDOW
    } else {
        SIG_WINDOW
    }
}

pub(crate) async fn exec_delete_all(ctx: &Ctx<'_>, r: DeleteAllReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.timestamp.abs_diff(ctx.now) > window(ctx).unsigned_abs() {
        return Err(RpcResponse::text(
            406,
            "delete_all timestamp too far from current time",
        ));
    }
    let ts = r.timestamp.to_string();
    let msg = concat(&[b"delete_all", ns_sel_str(r.ns).as_bytes(), ts.as_bytes()]);
    if !authenticate(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_DELETE),
        &msg,
    )
    .await?
    {
        return Err(RpcResponse::text(
            401,
            "delete_all signature verification failed",
        ));
    }
    let mut busy = false;
    let apply = async {
        match ctx
            .state
            .store
            .delete_all(Owner::new(r.owner), r.ns, ctx.now)
            .await
        {
            Ok(deleted) => {
                let mut m = concat(&[hex::encode(r.owner).as_bytes(), ts.as_bytes()]);
                for h in deleted.all_sorted() {
                    m.extend_from_slice(h.as_bytes());
                }
                json!({"deleted": by_ns_json(r.ns, &deleted), "signature": node_sig(ctx, &m)})
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "delete_all", r.owner, r.raw, apply).await;
    Ok(swarm_reply(ctx, own, others, Map::new(), busy))
}

pub(crate) struct DeleteBeforeReq {
    owner: [u8; 33],
    auth: Auth,
    ns: NamespaceSel,
    before: i64,
    raw: Value,
}

pub(crate) fn parse_delete_before(p: Params<'_>) -> PResult<DeleteBeforeReq> {
    let before = p.timestamp("before")?;
    let ns = p.namespace_var("namespace")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let before = require("before", before)?;
    Ok(DeleteBeforeReq {
        owner,
        auth,
        ns: ns.unwrap_or(NamespaceSel::One(0)),
        before,
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_delete_before(ctx: &Ctx<'_>, r: DeleteBeforeReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.before > ctx.now.saturating_add(SIG_WINDOW) {
        return Err(RpcResponse::text(
            401,
            "delete_before timestamp too far in the future",
        ));
    }
    let before = r.before.to_string();
    let msg = concat(&[
        b"delete_before",
        ns_sel_str(r.ns).as_bytes(),
        before.as_bytes(),
    ]);
    if !authenticate(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_DELETE),
        &msg,
    )
    .await?
    {
        return Err(RpcResponse::text(
            401,
            "delete_before signature verification failed",
        ));
    }
    let mut busy = false;
    let apply = async {
        match ctx
            .state
            .store
            .delete_before(Owner::new(r.owner), r.ns, r.before, ctx.now)
            .await
        {
            Ok(deleted) => {
                let mut m = concat(&[hex::encode(r.owner).as_bytes(), before.as_bytes()]);
                for h in deleted.all_sorted() {
                    m.extend_from_slice(h.as_bytes());
                }
                json!({"deleted": by_ns_json(r.ns, &deleted), "signature": node_sig(ctx, &m)})
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "delete_before", r.owner, r.raw, apply).await;
    Ok(swarm_reply(ctx, own, others, Map::new(), busy))
}

// ---------------------------------------------------------------------------------------------
// expire / expire_all / get_expiries
// ---------------------------------------------------------------------------------------------

pub(crate) struct ExpireReq {
    owner: [u8; 33],
    auth: Auth,
    expiry: Vec<i64>,
    shorten: bool,
    extend: bool,
    messages: Vec<String>,
    raw: Value,
}

pub(crate) fn parse_expire(p: Params<'_>) -> PResult<ExpireReq> {
    let expiry = p.timestamp_array("expiry")?;
    let extend = p.boolean("extend")?;
    let messages = p.str_array("messages")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let shorten = p.boolean("shorten")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let expiry = require("expiry", expiry)?;
    if expiry.is_empty() {
        return Err(RpcError::invalid(
            "'expiry' does not contain any expiration timestamps".into(),
        ));
    }
    let shorten = shorten.unwrap_or(false);
    let extend = extend.unwrap_or(false);
    if shorten && extend {
        return Err(RpcError::invalid(
            "cannot specify both 'shorten' and 'extend'".into(),
        ));
    }
    let messages = require("messages", messages)?;
    if messages.is_empty() {
        return Err(RpcError::invalid(
            "messages does not contain any message hashes".into(),
        ));
    }
    if expiry.len() > 1 && expiry.len() != messages.len() {
        return Err(RpcError::invalid(
            "'expiry' must be a single expiry, or the same length as 'messages'".into(),
        ));
    }
    check_hashes(&messages)?;
    Ok(ExpireReq {
        owner,
        auth,
        expiry,
        shorten,
        extend,
        messages,
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_expire(ctx: &Ctx<'_>, r: ExpireReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.expiry
        .iter()
        .any(|e| *e < ctx.now.saturating_sub(SIG_WINDOW))
    {
        return Err(RpcResponse::text(
            401,
            "expire: timestamp should be >= current time",
        ));
    }
    let mode_str: &str = if r.shorten {
        "shorten"
    } else if r.extend {
        "extend"
    } else {
        ""
    };
    let mut msg = concat(&[b"expire", mode_str.as_bytes()]);
    for e in &r.expiry {
        msg.extend_from_slice(e.to_string().as_bytes());
    }
    for h in &r.messages {
        msg.extend_from_slice(h.as_bytes());
    }
    if !authenticate(ctx, &r.owner, &r.auth, Requirement::perms(PERM_WRITE), &msg).await? {
        return Err(RpcResponse::text(
            401,
            "expire: signature verification failed",
        ));
    }
    // storage-rpc-addendum.md A3: only the request's own `extend: true` skips trivial
    // extensions. Peers receive the same params and derive the same mode, and a skipped message
    // is not rewritten (its expiry version stays), so what each member applies is what it
    // reports and what anti-entropy spreads.
    let mut mode = if r.shorten {
        ExpireMode::Shorten
    } else if r.extend {
        ExpireMode::ExtendNonTrivial
    } else {
        ExpireMode::Set
    };
    if let Some(sub) = &r.auth.subaccount
        && sub.flags() & PERM_DELETE == 0
    {
        if r.shorten {
            return Err(RpcResponse::text(
                400,
                "expire: shorten parameter cannot be used with this subaccount token (missing delete access)",
            ));
        }
        // Silently extend-only (§5.6); trivial extensions are applied then (A3).
        if mode == ExpireMode::Set {
            mode = ExpireMode::Extend;
        }
    }
    let explicit = r.shorten || r.extend;
    let multi = r.expiry.len() > 1;
    let target = if multi {
        ExpiryTarget::PerMessage(r.expiry.clone())
    } else {
        ExpiryTarget::Single(r.expiry.first().copied().unwrap_or(0))
    };
    let requested = r.messages.clone();
    let pk_hex = hex::encode(r.owner);
    let req = ExpireRequest {
        owner: Owner::new(r.owner),
        hashes: r.messages,
        expiry: target,
        mode,
    };
    let mut busy = false;
    let apply = async {
        match ctx.state.store.expire(req, ctx.now).await {
            Ok(out) => {
                let updated: Vec<&str> = out.updated.iter().map(|u| u.hash.as_str()).collect();
                let (expiry_json, expiry_sig) = if multi {
                    let v: Vec<i64> = out.updated.iter().map(|u| u.expiry_ms).collect();
                    let s: String = v.iter().map(i64::to_string).collect();
                    (json!(v), s)
                } else {
                    let e = out.applied_expiry_ms.unwrap_or(0);
                    (json!(e), e.to_string())
                };
                let mut m = concat(&[pk_hex.as_bytes(), expiry_sig.as_bytes()]);
                for h in requested.iter() {
                    m.extend_from_slice(h.as_bytes());
                }
                for h in &updated {
                    m.extend_from_slice(h.as_bytes());
                }
                if explicit {
                    for (h, e) in &out.unchanged {
                        m.extend_from_slice(h.as_bytes());
                        m.extend_from_slice(e.to_string().as_bytes());
                    }
                }
                let mut own = json!({
                    "updated": updated,
                    "expiry": expiry_json,
                    "signature": node_sig(ctx, &m),
                });
                if explicit {
                    own["unchanged"] = json!(out.unchanged);
                }
                own
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "expire", r.owner, r.raw, apply).await;
    Ok(swarm_reply(ctx, own, others, Map::new(), busy))
}

pub(crate) struct ExpireAllReq {
    owner: [u8; 33],
    auth: Auth,
    ns: NamespaceSel,
    expiry: i64,
    raw: Value,
}

pub(crate) fn parse_expire_all(p: Params<'_>) -> PResult<ExpireAllReq> {
    let expiry = p.timestamp("expiry")?;
    let ns = p.namespace_var("namespace")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let expiry = require("expiry", expiry)?;
    Ok(ExpireAllReq {
        owner,
        auth,
        ns: ns.unwrap_or(NamespaceSel::One(0)),
        expiry,
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_expire_all(ctx: &Ctx<'_>, r: ExpireAllReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.expiry < ctx.now.saturating_sub(window(ctx)) {
        return Err(RpcResponse::text(
            406,
            "expire_all timestamp should be >= current time",
        ));
    }
    let expiry = r.expiry.to_string();
    let msg = concat(&[
        b"expire_all",
        ns_sel_str(r.ns).as_bytes(),
        expiry.as_bytes(),
    ]);
    if !authenticate(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_DELETE),
        &msg,
    )
    .await?
    {
        return Err(RpcResponse::text(
            401,
            "expire_all signature verification failed",
        ));
    }
    let mut busy = false;
    let apply = async {
        match ctx
            .state
            .store
            .expire_all(Owner::new(r.owner), r.ns, r.expiry, ctx.now)
            .await
        {
            Ok(updated) => {
                let mut m = concat(&[hex::encode(r.owner).as_bytes(), expiry.as_bytes()]);
                for h in updated.all_sorted() {
                    m.extend_from_slice(h.as_bytes());
                }
                json!({"updated": by_ns_json(r.ns, &updated), "signature": node_sig(ctx, &m)})
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, "expire_all", r.owner, r.raw, apply).await;
    Ok(swarm_reply(ctx, own, others, Map::new(), busy))
}

pub(crate) struct GetExpiriesReq {
    owner: [u8; 33],
    auth: Auth,
    timestamp: i64,
    messages: Vec<String>,
}

pub(crate) fn parse_get_expiries(p: Params<'_>) -> PResult<GetExpiriesReq> {
    let messages = p.str_array("messages")?;
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig = p.string("signature")?;
    let subacc = p.string("subaccount")?;
    let subacc_sig = p.string("subaccount_sig")?;
    let timestamp = p.timestamp("timestamp")?;
    let (owner, mut auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    auth.subaccount = load_subaccount(subacc, subacc_sig)?;
    let timestamp = require("timestamp", timestamp)?;
    let messages = require("messages", messages)?;
    if messages.is_empty() {
        return Err(RpcError::invalid(
            "messages does not contain any message hashes".into(),
        ));
    }
    Ok(GetExpiriesReq {
        owner,
        auth,
        timestamp,
        messages,
    })
}

pub(crate) async fn exec_get_expiries(ctx: &Ctx<'_>, r: GetExpiriesReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.timestamp.abs_diff(ctx.now) > SIG_WINDOW.unsigned_abs() {
        return Err(RpcResponse::text(
            406,
            "get_expiries timestamp too far from current time",
        ));
    }
    let mut msg = concat(&[b"get_expiries", r.timestamp.to_string().as_bytes()]);
    for h in &r.messages {
        msg.extend_from_slice(h.as_bytes());
    }
    if !authenticate(ctx, &r.owner, &r.auth, Requirement::perms(PERM_READ), &msg).await? {
        return Err(RpcResponse::text(
            401,
            "get_expiries signature verification failed",
        ));
    }
    let store = ctx.state.store.clone();
    let owner = Owner::new(r.owner);
    let now = ctx.now;
    let hashes = r.messages;
    let found: BTreeMap<String, i64> = blocking(move || store.get_expiries(&owner, &hashes, now))
        .await
        .map_err(|e| {
            tracing::warn!("get_expiries failed: {}", e.report());
            server_error()
        })?;
    Ok(RpcResponse::json(200, json!({"expiries": found})))
}

// ---------------------------------------------------------------------------------------------
// subaccount revocation
// ---------------------------------------------------------------------------------------------

pub(crate) struct RevokeReq {
    owner: [u8; 33],
    auth: Auth,
    tokens: Vec<[u8; 36]>,
    timestamp: i64,
    raw: Value,
}

pub(crate) fn parse_revoke(p: Params<'_>, revoke: bool) -> PResult<RevokeReq> {
    let (word, field) = if revoke {
        ("revoke", "revoke")
    } else {
        ("unrevoke", "unrevoke")
    };
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let revoke_list = if revoke { p.str_array(field)? } else { None };
    let sig = p.string("signature")?;
    let timestamp = p.timestamp("timestamp")?;
    let unrevoke_list = if revoke { None } else { p.str_array(field)? };
    let (owner, auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    let (list, timestamp) = if revoke {
        let list = require(field, revoke_list)?;
        // storage-rpc-addendum.md A5: a parse error, so before 421, timestamp and signature.
        if list.len() > MAX_REVOKE_TOKENS {
            return Err(RpcError::invalid(format!(
                "invalid revoke: cannot revoke more than {MAX_REVOKE_TOKENS} subaccounts at once"
            )));
        }
        (list, timestamp)
    } else {
        // storage-rpc-addendum.md A5: no count limit for unrevoke (the body size bounds it).
        let timestamp = require("timestamp", timestamp)?;
        (require(field, unrevoke_list)?, Some(timestamp))
    };
    let tokens = list
        .iter()
        .map(|t| parse_token(t))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            RpcError::invalid(format!(
                "invalid {word}: expected base64 or hex-encoded subaccount tag"
            ))
        })?;
    let timestamp = require("timestamp", timestamp)?;
    Ok(RevokeReq {
        owner,
        auth,
        tokens,
        timestamp,
        raw: Value::Object(p.0.clone()),
    })
}

pub(crate) async fn exec_revoke(ctx: &Ctx<'_>, r: RevokeReq, revoke: bool) -> Exec {
    let method: &'static str = if revoke {
        "revoke_subaccount"
    } else {
        "unrevoke_subaccount"
    };
    check_swarm(ctx, &r.owner)?;
    if r.timestamp.abs_diff(ctx.now) > SIG_WINDOW.unsigned_abs() {
        return Err(RpcResponse::text(
            406,
            format!("{method} timestamp too far from current time"),
        ));
    }
    // Client and node signatures cover every requested token, raw, in request order, found or
    // not (storage-rpc-addendum.md A5).
    let ts = r.timestamp.to_string();
    let mut signed = concat(&[ts.as_bytes()]);
    for t in &r.tokens {
        signed.extend_from_slice(t);
    }
    let msg = concat(&[method.as_bytes(), &signed]);
    if !authenticate(ctx, &r.owner, &r.auth, Requirement::perms(0), &msg).await? {
        return Err(RpcResponse::text(
            401,
            format!("{method} signature verification failed"),
        ));
    }
    let node_msg = concat(&[hex::encode(r.owner).as_bytes(), &signed]);
    let tokens: Vec<SubaccountToken> = r.tokens.iter().map(|t| SubaccountToken(*t)).collect();
    let owner = Owner::new(r.owner);
    let mut busy = false;
    let apply = async {
        let res = if revoke {
            ctx.state
                .store
                .revoke_subaccounts(owner, tokens, ctx.now)
                .await
                .map(|()| None)
        } else {
            ctx.state
                .store
                .unrevoke_subaccounts(owner, tokens)
                .await
                .map(Some)
        };
        match res {
            Ok(count) => {
                let mut own = json!({"signature": node_sig(ctx, &node_msg)});
                if let Some(c) = count {
                    own["count"] = json!(c);
                }
                own
            }
            Err(e) => {
                busy = is_busy(&e);
                failure_entry(&e)
            }
        }
    };
    let (own, others) = fan_out(ctx, method, r.owner, r.raw, apply).await;
    Ok(swarm_reply(ctx, own, others, Map::new(), busy))
}

pub(crate) struct RevokedListReq {
    owner: [u8; 33],
    auth: Auth,
    timestamp: i64,
}

pub(crate) fn parse_revoked_list(p: Params<'_>) -> PResult<RevokedListReq> {
    let pubkey = p.string("pubkey")?;
    let pk_ed = p.string("pubkey_ed25519")?;
    let sig = p.string("signature")?;
    let timestamp = p.timestamp("timestamp")?;
    let (owner, auth) = load_pk_signature(pubkey, pk_ed, sig)?;
    let timestamp = require("timestamp", timestamp)?;
    Ok(RevokedListReq {
        owner,
        auth,
        timestamp,
    })
}

pub(crate) async fn exec_revoked_list(ctx: &Ctx<'_>, r: RevokedListReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    if r.timestamp.abs_diff(ctx.now) > SIG_WINDOW.unsigned_abs() {
        return Err(RpcResponse::text(
            406,
            "revoked_subaccounts timestamp too far from current time",
        ));
    }
    let msg = concat(&[b"revoked_subaccounts", r.timestamp.to_string().as_bytes()]);
    if !authenticate(ctx, &r.owner, &r.auth, Requirement::perms(0), &msg).await? {
        return Err(RpcResponse::text(
            401,
            "revoked_subaccounts signature verification failed",
        ));
    }
    let store = ctx.state.store.clone();
    let owner = Owner::new(r.owner);
    let list = blocking(move || store.revoked_subaccounts(&owner))
        .await
        .map_err(|e| {
            tracing::warn!("revoked_subaccounts failed: {}", e.report());
            server_error()
        })?;
    let tokens: Vec<String> = list.iter().map(|t| b64(&t.0)).collect();
    Ok(RpcResponse::json(
        200,
        ctx.stamp(json!({"revoked_subaccounts": tokens})),
    ))
}

// ---------------------------------------------------------------------------------------------
// get_swarm, info, oxend_request
// ---------------------------------------------------------------------------------------------

pub(crate) fn parse_get_swarm(p: Params<'_>) -> PResult<[u8; 33]> {
    let alt = p.string("pubKey")?;
    let main = p.string("pubkey")?;
    let pk = choose_pubkey(main, alt)?.unwrap_or("");
    parse_account_hex(pk)
        .ok_or_else(|| RpcError::invalid("Pubkey must be 66 hex digits/33 bytes long".into()))
}

pub(crate) fn exec_get_swarm(ctx: &Ctx<'_>, pk: &[u8; 33]) -> RpcResponse {
    let view = ctx.state.swarm.get();
    RpcResponse::json(200, ctx.stamp(view.swarm_json(pk)))
}

pub(crate) fn exec_info(ctx: &Ctx<'_>) -> RpcResponse {
    RpcResponse::json(
        200,
        ctx.stamp(json!({
            "version": crate::STORAGE_SERVER_VERSION,
            "timestamp": ctx.now,
        })),
    )
}

pub(crate) struct OxendReq {
    endpoint: String,
    params: Option<Value>,
}

pub(crate) fn parse_oxend(p: Params<'_>) -> PResult<OxendReq> {
    let endpoint = require("endpoint", p.string("endpoint")?)?;
    if !matches!(endpoint, "get_service_nodes" | "ons_resolve") {
        return Err(RpcError::invalid(format!(
            "Invalid oxend endpoint '{endpoint}'"
        )));
    }
    Ok(OxendReq {
        endpoint: endpoint.to_string(),
        params: p.get("params").cloned(),
    })
}

pub(crate) async fn exec_oxend(ctx: &Ctx<'_>, r: OxendReq) -> Exec {
    use crate::oxend::OxendError;
    match ctx.state.oxend.request(&r.endpoint, r.params).await {
        Ok(result) => Ok(RpcResponse::json(200, ctx.stamp(json!({"result": result})))),
        Err(OxendError::Unparsable) => {
            Err(RpcResponse::text(502, "oxend returned unparsable data"))
        }
        Err(OxendError::Rpc(msg)) => Err(RpcResponse::text(400, msg)),
        Err(OxendError::Unavailable(why)) => {
            tracing::warn!("oxend_request: {why}");
            Err(RpcResponse::text(
                503,
                "Service node is not ready: registry unavailable\n",
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// batch, sequence, ifelse
// ---------------------------------------------------------------------------------------------

fn is_meta(r: &Request) -> bool {
    matches!(
        r,
        Request::Batch(_) | Request::Sequence(_) | Request::IfElse(_)
    )
}

pub(crate) fn parse_batch(p: Params<'_>) -> PResult<Vec<Request>> {
    let reqs = match p.0.get("requests") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(RpcError::invalid(
                "Invalid batch request: no valid \"requests\" field".into(),
            ));
        }
    };
    if reqs.len() > MAX_BATCH {
        return Err(RpcError::invalid(
            "Invalid batch request: subrequest limit exceeded".into(),
        ));
    }
    let mut out = Vec::with_capacity(reqs.len());
    for j in reqs {
        let Value::Object(obj) = j else {
            return Err(RpcError::invalid(
                "Invalid batch request: requests must be objects".into(),
            ));
        };
        let (Some(Value::String(method)), Some(Value::Object(params))) =
            (obj.get("method"), obj.get("params"))
        else {
            return Err(RpcError::invalid(
                "Invalid batch request: subrequests must have method/params keys".into(),
            ));
        };
        let Some(sub) = parse_request(method, params)? else {
            return Err(RpcError::invalid(format!(
                "Invalid batch subrequest: invalid method \"{method}\""
            )));
        };
        if is_meta(&sub) {
            return Err(RpcError::invalid(
                "Invalid batch subrequest: subrequests may not contain meta-requests".into(),
            ));
        }
        out.push(sub);
    }
    Ok(out)
}

pub(crate) async fn exec_batch(ctx: &Ctx<'_>, reqs: Vec<Request>, sequence: bool) -> RpcResponse {
    let mut results = Vec::with_capacity(reqs.len());
    for req in reqs {
        let resp = execute(ctx, req).await;
        let stop = sequence && !resp.is_success();
        results.push(resp.as_subresult());
        if stop {
            break;
        }
    }
    RpcResponse::json(200, json!({"results": results}))
}

/// A parsed `ifelse`.
pub(crate) struct IfElseReq {
    hf_ge: Option<[i64; 2]>,
    hf_lt: Option<[i64; 2]>,
    v_ge: Option<[i64; 3]>,
    v_lt: Option<[i64; 3]>,
    height_ge: Option<i64>,
    height_lt: Option<i64>,
    then: Option<Request>,
    otherwise: Option<Request>,
}

fn fixed<const N: usize>(v: Option<Vec<i64>>) -> Option<[i64; N]> {
    let v = v.filter(|v| !v.is_empty())?;
    let mut out = [0i64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = v.get(i).copied().unwrap_or(0);
    }
    Some(out)
}

fn parse_branch(p: &Map<String, Value>, key: &str) -> PResult<Option<Request>> {
    let Some(v) = p.get(key) else {
        return Ok(None);
    };
    let Value::Object(obj) = v else {
        return Err(RpcError::invalid(format!(
            "Invalid ifelse request: {key} must be an object"
        )));
    };
    let (Some(Value::String(method)), Some(params)) = (obj.get("method"), obj.get("params")) else {
        return Err(RpcError::invalid(format!(
            "Invalid ifelse request: {key} must have method/params keys"
        )));
    };
    let Value::Object(params) = params else {
        return Err(RpcError::invalid(format!(
            "Invalid ifelse request: {key} must have method/params keys"
        )));
    };
    match parse_request(method, params)? {
        Some(r) => Ok(Some(r)),
        None => Err(RpcError::invalid(format!(
            "Invalid ifelse request method \"{key}\""
        ))),
    }
}

pub(crate) fn parse_ifelse(p: Params<'_>) -> PResult<IfElseReq> {
    let Some(Value::Object(cond)) = p.0.get("if") else {
        return Err(RpcError::invalid(
            "Invalid ifelse request: no valid \"if\" field".into(),
        ));
    };
    let c = Params(cond);
    let height_ge = c.int("height_at_least")?;
    let height_lt = c.int("height_before")?;
    let hf_ge = fixed::<2>(c.int_array("hf_at_least")?);
    let hf_lt = fixed::<2>(c.int_array("hf_before")?);
    let v_ge = fixed::<3>(c.int_array("v_at_least")?);
    let v_lt = fixed::<3>(c.int_array("v_before")?);
    if height_ge.is_none()
        && height_lt.is_none()
        && hf_ge.is_none()
        && hf_lt.is_none()
        && v_ge.is_none()
        && v_lt.is_none()
    {
        return Err(RpcError::invalid(
            "Invalid ifelse request: must specify at least one \"if\" condition".into(),
        ));
    }
    let then = parse_branch(p.0, "then")?;
    let otherwise = parse_branch(p.0, "else")?;
    if then.is_none() && otherwise.is_none() {
        return Err(RpcError::invalid(
            "Invalid ifelse request: at least one of \"then\"/\"else\" required".into(),
        ));
    }
    Ok(IfElseReq {
        hf_ge,
        hf_lt,
        v_ge,
        v_lt,
        height_ge,
        height_lt,
        then,
        otherwise,
    })
}

pub(crate) async fn exec_ifelse(ctx: &Ctx<'_>, r: IfElseReq) -> RpcResponse {
    let hf = crate::HARDFORK.map(i64::from);
    let v = crate::STORAGE_SERVER_VERSION.map(i64::from);
    // storage-rpc-addendum.md A4: the chain-scale estimate from the request's clock, the same
    // function the registry's seed reply uses (not the node-list epoch).
    let height = i64::try_from(umbra_registry::oxend::chain_height(ctx.now)).unwrap_or(i64::MAX);
    let mut cond = true;
    if let Some(x) = r.hf_ge {
        cond &= hf >= x;
    }
    if let Some(x) = r.hf_lt {
        cond &= hf < x;
    }
    if let Some(x) = r.v_ge {
        cond &= v >= x;
    }
    if let Some(x) = r.v_lt {
        cond &= v < x;
    }
    if let Some(x) = r.height_ge {
        cond &= height >= x;
    }
    if let Some(x) = r.height_lt {
        cond &= height < x;
    }
    let branch = if cond { r.then } else { r.otherwise };
    let mut body = json!({"hf": hf, "v": v, "height": height, "condition": cond});
    if let Some(req) = branch {
        let resp = execute(ctx, req).await;
        body["result"] = resp.as_subresult();
    }
    RpcResponse::json(200, body)
}
