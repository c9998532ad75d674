//! The storage RPC request parser without a node, for the cargo-fuzz targets (`fuzz/` at the
//! workspace root), behind the `fuzzing` feature. Parsing only: nothing here touches a store,
//! a clock or the network. Not an API.

use serde_json::Value;

/// Parses the body of a `/storage_rpc/v1` request (or an onion destination's payload) the way
/// [`handle_rpc`](super::handle_rpc) does before it executes anything.
///
/// `Ok(Some(method))`: a known method whose `params` parse; `Ok(None)`: an unknown method;
/// `Err((status, body))`: what the node would answer.
pub fn parse_rpc_body(body: &[u8]) -> Result<Option<String>, (u16, String)> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Err((400, "invalid json".into()));
    };
    let Some(Value::String(method)) = v.get("method") else {
        return Err((400, "invalid json: no `method` field".into()));
    };
    parse_method(method, v.get("params").unwrap_or(&Value::Null))
}

/// Parses one method's `params` the way [`handle_method`](super::handle_method) does before it
/// executes anything (see [`parse_rpc_body`] for the result).
pub fn parse_method(method: &str, params: &Value) -> Result<Option<String>, (u16, String)> {
    let Value::Object(p) = params else {
        return Err((400, "invalid json: no `params` field".into()));
    };
    match super::parse_request(method, p) {
        Ok(Some(_)) => Ok(Some(method.to_owned())),
        Ok(None) => Ok(None),
        Err(e) => Err((e.status, e.body)),
    }
}
