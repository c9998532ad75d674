//! `revoke_subaccount`, `unrevoke_subaccount` (recursive, `storage-rpc.md` §5.9, §7;
//! `storage-rpc-addendum.md` A5) and `revoked_subaccounts` (§5.10). Only the account key may
//! sign these (§9).

use umbra_report::ErrorExt as _;

use serde_json::{Map, Value, json};
use umbra_store::{AccountId, SubaccountToken};

use super::{
    Exec, SIG_WINDOW, blocking, check_recent, check_swarm, concat, node_sig, recursive,
    require_signature, server_error, signed_bytes,
};
use crate::rpc::auth::{Auth, Requirement, load_pk_signature};
use crate::rpc::params::{PResult, Params, b64, parse_token, require};
use crate::rpc::{Ctx, RpcError, RpcResponse};

/// Most tokens one `revoke_subaccount` may carry; `unrevoke_subaccount` has no limit
/// (`storage-rpc-addendum.md` A5).
const MAX_REVOKE_TOKENS: usize = 50;

/// No subaccount permission: a subaccount never passes (§9).
const ACCOUNT_KEY: Requirement = Requirement::perms(0);

pub(crate) struct RevokeReq {
    owner: AccountId,
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
    // storage-rpc.md §5.9: b64 (48 chars) or hex (72 chars) tokens.
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
    // storage-rpc.md §5.9: 406 outside ±60 s, 401 when the signature fails.
    check_recent(
        ctx,
        r.timestamp,
        SIG_WINDOW,
        format!("{method} timestamp too far from current time"),
    )?;
    // Client and node signatures cover every requested token, raw, in request order, found or
    // not (storage-rpc-addendum.md A5): `timestamp || token_0 || … || token_n`, after the
    // method name (§3.2) or PUBKEY_HEX (§7).
    let ts = r.timestamp.to_string();
    let signed = signed_bytes(&[ts.as_bytes()], &r.tokens);
    let msg = concat(&[method.as_bytes(), &signed]);
    require_signature(
        ctx,
        &r.owner,
        &r.auth,
        ACCOUNT_KEY,
        &msg,
        format!("{method} signature verification failed"),
    )
    .await?;
    let node_msg = concat(&[hex::encode(r.owner).as_bytes(), &signed]);
    let tokens: Vec<SubaccountToken> = r.tokens.iter().map(|t| SubaccountToken(*t)).collect();
    let owner = r.owner;
    let write = || async {
        if revoke {
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
        }
    };
    // §5.9: `count` for unrevoke only.
    let entry = |count: Option<u64>| {
        let mut own = json!({"signature": node_sig(ctx, &node_msg)});
        if let Some(c) = count {
            own["count"] = json!(c);
        }
        own
    };
    Ok(recursive(ctx, method, r.owner, r.raw, Map::new(), write, entry).await)
}

pub(crate) struct RevokedListReq {
    owner: AccountId,
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
    // storage-rpc.md §5.10 (texts as for §5.9): 406 outside ±60 s, 401 on a bad signature.
    check_recent(
        ctx,
        r.timestamp,
        SIG_WINDOW,
        "revoked_subaccounts timestamp too far from current time",
    )?;
    // §3.2: "revoked_subaccounts" || timestamp.
    let msg = concat(&[b"revoked_subaccounts", r.timestamp.to_string().as_bytes()]);
    require_signature(
        ctx,
        &r.owner,
        &r.auth,
        ACCOUNT_KEY,
        &msg,
        "revoked_subaccounts signature verification failed",
    )
    .await?;
    let store = ctx.state.store.clone();
    let owner = r.owner;
    let list = blocking(move || store.revoked_subaccounts(&owner))
        .await
        .map_err(|e| {
            tracing::warn!("revoked_subaccounts failed: {}", e.report());
            server_error()
        })?;
    let tokens: Vec<String> = list.iter().map(|t| b64(t.0)).collect();
    Ok(RpcResponse::json(
        200,
        ctx.stamp(json!({"revoked_subaccounts": tokens})),
    ))
}
