//! `store` (`storage-rpc.md` §5.1).

use serde_json::{Map, Value, json};
use umbra_crypto::hash::message_hash;
use umbra_store::{
    AccountId, Namespace, NewMessage, StoreOutcome, is_public_inbox, is_public_outbox,
};

use super::{
    DAY, Exec, SECOND, SIG_WINDOW, SignedBy, check_recent, check_swarm, concat, node_sig, ns_str,
    recursive, require_signature,
};
use crate::rpc::auth::{Auth, PERM_DELETE, PERM_WRITE, Requirement};
use crate::rpc::params::{
    PResult, Params, b64_decode, check_ms, choose_pubkey, is_base64, load_pk, require,
};
use crate::rpc::{Ctx, Origin, RpcError, RpcResponse};

/// Store clock tolerance (§8).
const STORE_TOLERANCE: i64 = 10 * SECOND;
const TTL_MIN: i64 = 10 * SECOND;
const TTL_MAX_PUBLIC: i64 = 14 * DAY;
const TTL_MAX: i64 = 30 * DAY;
/// Largest `data` accepted, in base64 characters (76 800 bytes, §8).
const MAX_DATA_B64: usize = 102_400;
const MAX_MESSAGE_BODY: usize = 76_800;

pub(crate) struct StoreReq {
    owner: AccountId,
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
    // §5.1: exactly one of `ttl` / `expiry`; §10 gives both texts.
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
        let (owner, auth) = SignedBy {
            pubkey: pk,
            pubkey_ed25519: pk_ed,
            signature: sig,
            subaccount: subacc,
            subaccount_sig: subacc_sig,
        }
        .load()?;
        // §3.2: `sig_timestamp` defaults to `timestamp`.
        (owner, Some(auth), sig_ts.unwrap_or(timestamp))
    } else {
        (load_pk(pk)?, None, timestamp)
    };
    let data = require("data", data)?;
    // §10: `Invalid 'data' value: not base64 encoded`, then the 76 800-byte limit (§8).
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

/// The checks of §5.1 in their order (421, 403, 406, then the signature for non-public
/// namespaces), then the recursive write (§7).
pub(crate) async fn exec_store(ctx: &Ctx<'_>, r: StoreReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    let ttl = r.expiry.saturating_sub(r.timestamp);
    let max_ttl = if is_public_inbox(r.ns) {
        TTL_MAX_PUBLIC
    } else {
        TTL_MAX
    };
    // storage-rpc.md §5.1: TTL in [10 s, 14 d] (public inbox) or [10 s, 30 d], else 403.
    if !(TTL_MIN..=max_ttl).contains(&ttl) {
        return Err(RpcResponse::text(403, "Provided expiry/TTL is not valid."));
    }
    let now = ctx.now;
    // §5.1: `timestamp ≤ now + 10 s` and `expiry ≥ now − 10 s`, else 406.
    if r.timestamp > now.saturating_add(STORE_TOLERANCE)
        || r.expiry < now.saturating_sub(STORE_TOLERANCE)
    {
        return Err(RpcResponse::text(406, "Timestamp error: check your clock"));
    }
    if !is_public_inbox(r.ns) {
        // §5.1: 401 without a signature, 406 outside ±60 s, 401 when it fails.
        let Some(auth) = &r.auth else {
            return Err(RpcResponse::text(
                401,
                format!("store: signature required to store to namespace {}", r.ns),
            ));
        };
        check_recent(
            ctx,
            r.sig_ts,
            SIG_WINDOW,
            "store signature timestamp too far from current time",
        )?;
        // §9: Write, plus Delete for a public outbox.
        let perms = if is_public_outbox(r.ns) {
            PERM_WRITE | PERM_DELETE
        } else {
            PERM_WRITE
        };
        // §3.2: "store" || ns || sig_timestamp.
        let msg = concat(&[
            b"store",
            ns_str(r.ns).as_bytes(),
            r.sig_ts.to_string().as_bytes(),
        ]);
        require_signature(
            ctx,
            &r.owner,
            auth,
            Requirement::perms(perms),
            &msg,
            "store signature verification failed",
        )
        .await?;
    }

    let hash = message_hash(&r.owner, i32::from(r.ns), &r.data);
    let requested_expiry = r.expiry;
    let msg = NewMessage {
        owner: r.owner,
        namespace: r.ns,
        hash,
        data: r.data,
        timestamp_ms: r.timestamp,
        expiry_ms: r.expiry,
    };
    // §5.1: the top-level `hash` is kept for old clients.
    let mut extra = Map::new();
    extra.insert("hash".into(), json!(hash));
    let write = || async {
        let started = ctx.state.clock.instant();
        let res = ctx.state.store.store(msg, now).await;
        let took = ctx.state.clock.instant().saturating_duration_since(started);
        ctx.state.metrics.store_latency(took);
        res
    };
    let entry = |outcome: StoreOutcome| {
        let expiry = match outcome {
            StoreOutcome::Stored { expiry_ms } | StoreOutcome::Already { expiry_ms } => expiry_ms,
            _ => requested_expiry,
        };
        // §7: the node signs the hash string.
        let mut own = json!({
            "hash": hash,
            "signature": node_sig(ctx, hash.as_str().as_bytes()),
            "expiry": expiry,
        });
        // §5.1: `already` only when true; the entry node's own entry carries a deprecated `t`.
        if outcome.already() {
            own["already"] = json!(true);
        }
        if ctx.origin == Origin::Client {
            own["t"] = json!(now);
        }
        own
    };
    Ok(recursive(ctx, "store", r.owner, r.raw, extra, write, entry).await)
}
