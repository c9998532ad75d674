//! `delete`, `delete_all`, `delete_before` (`storage-rpc.md` §5.3–5.5): recursive (§7).

use serde_json::{Map, Value, json};
use umbra_crypto::MessageHash;
use umbra_store::AccountId;

use super::{
    Exec, NamespaceReq, SIG_WINDOW, SignedBy, check_recent, check_swarm, node_sig, parse_hashes,
    recursive, require_signature, signed_bytes, window,
};
use crate::rpc::auth::{Auth, PERM_DELETE, Requirement};
use crate::rpc::params::{PResult, Params, require};
use crate::rpc::{Ctx, Origin, RpcResponse};

/// §9: every delete needs the Delete permission.
const DELETE: Requirement = Requirement::perms(PERM_DELETE);

pub(crate) struct DeleteReq {
    owner: AccountId,
    auth: Auth,
    messages: Vec<MessageHash>,
    required: bool,
    raw: Value,
}

pub(crate) fn parse_delete(p: Params<'_>) -> PResult<DeleteReq> {
    let messages = p.str_array("messages")?;
    let (signed_by, required) = SignedBy::read_around(p, || p.boolean("required"))?;
    let (owner, auth) = signed_by.load()?;
    let messages = parse_hashes(&require("messages", messages)?)?;
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
    // storage-rpc.md §3.2: "delete" || hash_0 || … || hash_n (request order), no timestamp.
    let msg = signed_bytes(&[b"delete"], r.messages.iter().map(MessageHash::as_str));
    // §5.3, §10: the 401 text says `delete_msgs`.
    require_signature(
        ctx,
        &r.owner,
        &r.auth,
        DELETE,
        &msg,
        "delete_msgs signature verification failed",
    )
    .await?;
    let pk_hex = hex::encode(r.owner);
    let requested = r.messages.clone();
    let write = || ctx.state.store.delete(r.owner, r.messages, ctx.now);
    // §7: PUBKEY_HEX || requested hashes (request order) || deleted hashes (sorted).
    let entry = |deleted: Vec<MessageHash>| {
        let m = signed_bytes(
            &[pk_hex.as_bytes()],
            requested
                .iter()
                .chain(deleted.iter())
                .map(MessageHash::as_str),
        );
        json!({"deleted": deleted, "signature": node_sig(ctx, &m)})
    };
    let mut resp = recursive(ctx, "delete", r.owner, r.raw, Map::new(), write, entry).await;
    // §5.3: with `required`, 404 when no node deleted anything.
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

/// `delete_all`: `value` is `timestamp`.
pub(crate) type DeleteAllReq = NamespaceReq;

pub(crate) fn parse_delete_all(p: Params<'_>) -> PResult<DeleteAllReq> {
    NamespaceReq::parse(p, "timestamp")
}

pub(crate) async fn exec_delete_all(ctx: &Ctx<'_>, r: DeleteAllReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    // storage-rpc.md §5.4: 406 outside ±60 s (±70 s forwarded, §3.2).
    check_recent(
        ctx,
        r.value,
        window(ctx),
        "delete_all timestamp too far from current time",
    )?;
    let store = &ctx.state.store;
    r.apply(ctx, "delete_all", "deleted", |owner, ns, _| {
        store.delete_all(owner, ns, ctx.now)
    })
    .await
}

/// `delete_before`: `value` is `before`.
pub(crate) type DeleteBeforeReq = NamespaceReq;

pub(crate) fn parse_delete_before(p: Params<'_>) -> PResult<DeleteBeforeReq> {
    NamespaceReq::parse(p, "before")
}

pub(crate) async fn exec_delete_before(ctx: &Ctx<'_>, r: DeleteBeforeReq) -> Exec {
    check_swarm(ctx, &r.owner)?;
    // storage-rpc.md §5.5: 401 (not 406) when `before` > now + 60 s; no lower bound.
    if r.value > ctx.now.saturating_add(SIG_WINDOW) {
        return Err(RpcResponse::text(
            401,
            "delete_before timestamp too far in the future",
        ));
    }
    let store = &ctx.state.store;
    r.apply(ctx, "delete_before", "deleted", |owner, ns, before| {
        store.delete_before(owner, ns, before, ctx.now)
    })
    .await
}
