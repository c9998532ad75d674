//! `batch`, `sequence`, `ifelse` (`storage-rpc.md` §5.14–5.15; `storage-rpc-addendum.md` A4):
//! requests that hold requests, parsed with [`parse_request`] and run with [`execute`].

use serde_json::{Map, Value, json};

use crate::rpc::params::{PResult, Params};
use crate::rpc::{Ctx, Request, RpcError, RpcResponse, execute, parse_request};

/// Most sub-requests in one `batch`/`sequence` (§5.14, §8).
const MAX_BATCH: usize = 20;

/// §5.14: sub-requests may not themselves be `batch`, `sequence` or `ifelse`.
fn is_meta(r: &Request) -> bool {
    matches!(
        r,
        Request::Batch(_) | Request::Sequence(_) | Request::IfElse(_)
    )
}

/// `batch` and `sequence` alike; the parse errors are those of §5.14, in its order.
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

/// Always 200 with `{"results": [{"code", "body"}, …]}` and no `t`/`hf` (§5.14, §6); a
/// `sequence` stops after the first non-2xx result.
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

/// §5.15: shorter version arrays are zero-filled.
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

/// Always 200 with `{"hf", "v", "height", "condition", "result"?}` (§5.15); the conditions
/// are ANDed.
pub(crate) async fn exec_ifelse(ctx: &Ctx<'_>, r: IfElseReq) -> RpcResponse {
    let hf = crate::HARDFORK.map(i64::from);
    let v = crate::STORAGE_SERVER_VERSION.map(i64::from);
    // storage-rpc-addendum.md A4: the chain-scale estimate from the request's clock, the same
    // function the registry's seed reply uses (not the node-list epoch).
    let height = i64::try_from(umbra_nodelist::chain_height(ctx.now)).unwrap_or(i64::MAX);
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
