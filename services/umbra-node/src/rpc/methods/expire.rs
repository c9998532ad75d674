//! `expire`, `expire_all` (recursive, `storage-rpc.md` §5.6–5.7, §7;
//! `storage-rpc-addendum.md` A3) and `get_expiries` (§5.8).

use std::collections::BTreeMap;
use umbra_report::ErrorExt as _;

use serde_json::{Map, Value, json};
use umbra_crypto::MessageHash;
use umbra_store::{AccountId, ExpireMode, ExpireOutcome, ExpireRequest, ExpiryTarget};

use super::{
    Exec, NamespaceReq, SIG_WINDOW, SignedBy, blocking, check_recent, check_swarm, node_sig,
    parse_hashes, recursive, require_signature, server_error, signed_bytes, window,
};
use crate::rpc::auth::{Auth, PERM_DELETE, PERM_READ, PERM_WRITE, Requirement};
use crate::rpc::params::{PResult, Params, require};
use crate::rpc::{Ctx, RpcError, RpcResponse};

pub(crate) struct ExpireReq {
    owner: AccountId,
    auth: Auth,
    expiry: Vec<i64>,
    shorten: bool,
    extend: bool,
    messages: Vec<MessageHash>,
    raw: Value,
}

pub(crate) fn parse_expire(p: Params<'_>) -> PResult<ExpireReq> {
    let expiry = p.timestamp_array("expiry")?;
    let extend = p.boolean("extend")?;
    let messages = p.str_array("messages")?;
    let (signed_by, shorten) = SignedBy::read_around(p, || p.boolean("shorten"))?;
    let (owner, auth) = signed_by.load()?;
    // storage-rpc.md §5.6: the parse errors, in this order.
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
    let messages = parse_hashes(&messages)?;
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
    // storage-rpc.md §5.6: every expiry ≥ now − 60 s, else 401 (not 406).
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
    // §3.2: "expire" || mode || expiry (all of them, in order) || hash_0 || … || hash_n.
    let head = signed_bytes(
        &[b"expire", mode_str.as_bytes()],
        r.expiry.iter().map(i64::to_string),
    );
    let msg = signed_bytes(&[&head], r.messages.iter().map(MessageHash::as_str));
    // §9: Write (Delete is checked below, for shortening).
    require_signature(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_WRITE),
        &msg,
        "expire: signature verification failed",
    )
    .await?;
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
        // storage-rpc.md §5.6, §10: 400 for `shorten` with a subaccount lacking Delete.
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
        owner: r.owner,
        hashes: r.messages,
        expiry: target,
        mode,
    };
    let write = || ctx.state.store.expire(req, ctx.now);
    let entry = |out: ExpireOutcome| {
        let updated: Vec<&str> = out.updated.iter().map(|u| u.hash.as_str()).collect();
        // §5.6: the single applied expiry, or the per-message ones aligned with `updated`.
        let (expiry_json, expiry_sig) = if multi {
            let v: Vec<i64> = out.updated.iter().map(|u| u.expiry_ms).collect();
            let s: String = v.iter().map(i64::to_string).collect();
            (json!(v), s)
        } else {
            let e = out.applied_expiry_ms.unwrap_or(0);
            (json!(e), e.to_string())
        };
        // §7: PUBKEY_HEX || expiry || requested hashes (request order) || updated hashes
        // (sorted) || for each unchanged message, sorted by hash: hash || expiry.
        let mut m = signed_bytes(
            &[pk_hex.as_bytes(), expiry_sig.as_bytes()],
            requested
                .iter()
                .map(MessageHash::as_str)
                .chain(updated.iter().copied()),
        );
        if explicit {
            for (h, e) in &out.unchanged {
                m.extend_from_slice(h.as_str().as_bytes());
                m.extend_from_slice(e.to_string().as_bytes());
            }
        }
        let mut own = json!({
            "updated": updated,
            "expiry": expiry_json,
            "signature": node_sig(ctx, &m),
        });
        // §5.6: `unchanged` only when `shorten` or `extend` was given explicitly.
        if explicit {
            own["unchanged"] = json!(out.unchanged);
        }
        own
    };
    Ok(recursive(ctx, "expire", r.owner, r.raw, Map::new(), write, entry).await)
}

/// `expire_all`: `value` is `expiry`.
pub(crate) type ExpireAllReq = NamespaceReq;

pub(crate) fn parse_expire_all(p: Params<'_>) -> PResult<ExpireAllReq> {
    NamespaceReq::parse(p, "expiry")
}

/// Only shortens (§5.7).
pub(crate) async fn exec_expire_all(ctx: &Ctx<'_>, r: ExpireAllReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    // storage-rpc.md §5.7: 406 when expiry < now − 60 s (− 70 s forwarded, §3.2).
    if r.value < ctx.now.saturating_sub(window(ctx)) {
        return Err(RpcResponse::text(
            406,
            "expire_all timestamp should be >= current time",
        ));
    }
    let store = &ctx.state.store;
    r.apply(ctx, "expire_all", "updated", |owner, ns, expiry| {
        store.expire_all(owner, ns, expiry, ctx.now)
    })
    .await
}

pub(crate) struct GetExpiriesReq {
    owner: AccountId,
    auth: Auth,
    timestamp: i64,
    messages: Vec<String>,
}

pub(crate) fn parse_get_expiries(p: Params<'_>) -> PResult<GetExpiriesReq> {
    let messages = p.str_array("messages")?;
    let signed_by = SignedBy::read(p)?;
    let timestamp = p.timestamp("timestamp")?;
    let (owner, auth) = signed_by.load()?;
    let timestamp = require("timestamp", timestamp)?;
    let messages = require("messages", messages)?;
    // storage-rpc.md §5.8: hashes are not format-checked here, only the list's emptiness.
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

/// Not recursive (§5.8).
pub(crate) async fn exec_get_expiries(ctx: &Ctx<'_>, r: GetExpiriesReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    // storage-rpc.md §5.8: 406 outside ±60 s, 401 when the signature fails.
    check_recent(
        ctx,
        r.timestamp,
        SIG_WINDOW,
        "get_expiries timestamp too far from current time",
    )?;
    // §3.2: "get_expiries" || timestamp || hash_0 || … || hash_n.
    let msg = signed_bytes(
        &[b"get_expiries", r.timestamp.to_string().as_bytes()],
        &r.messages,
    );
    // §9: Read.
    require_signature(
        ctx,
        &r.owner,
        &r.auth,
        Requirement::perms(PERM_READ),
        &msg,
        "get_expiries signature verification failed",
    )
    .await?;
    let store = ctx.state.store.clone();
    let owner = r.owner;
    let now = ctx.now;
    // §5.8 signs and accepts hashes of any shape; one that is not a message hash cannot be
    // stored, so it is simply not found.
    let hashes: Vec<MessageHash> = r.messages.iter().filter_map(|h| h.parse().ok()).collect();
    let found: BTreeMap<MessageHash, i64> =
        blocking(move || store.get_expiries(&owner, &hashes, now))
            .await
            .map_err(|e| {
                tracing::warn!("get_expiries failed: {}", e.report());
                server_error()
            })?;
    // §5.8, §6: no `t`/`hf` here.
    Ok(RpcResponse::json(200, json!({"expiries": found})))
}
