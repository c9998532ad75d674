//! `get_swarm` / `get_snodes_for_pubkey`, `info`, `oxend_request` (`storage-rpc.md`
//! §5.11–5.13): no account, no signature, no 421.

use serde_json::{Value, json};
use umbra_crypto::AccountId;

use super::Exec;
use crate::rpc::params::{PResult, Params, choose_pubkey, parse_account_hex, require};
use crate::rpc::{Ctx, RpcError, RpcResponse};

pub(crate) fn parse_get_swarm(p: Params<'_>) -> PResult<AccountId> {
    let alt = p.string("pubKey")?;
    let main = p.string("pubkey")?;
    let pk = choose_pubkey(main, alt)?.unwrap_or("");
    // storage-rpc.md §5.11, §10: this method's own wording of the pubkey error.
    parse_account_hex(pk)
        .ok_or_else(|| RpcError::invalid("Pubkey must be 66 hex digits/33 bytes long".into()))
}

/// §5.11: answered by any node.
pub(crate) fn exec_get_swarm(ctx: &Ctx<'_>, pk: &AccountId) -> RpcResponse {
    let view = ctx.state.swarm.get();
    RpcResponse::json(200, ctx.stamp(crate::swarm::swarm_json(&view, pk)))
}

/// §5.12: `{"version", "timestamp", "t", "hf"}`.
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
    // storage-rpc.md §5.13: only these two endpoints.
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
        // storage-rpc.md §5.13, §10: 502 on unparsable data, 400 with oxend's own message.
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
