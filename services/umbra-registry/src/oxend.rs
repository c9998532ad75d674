//! Oxend-compatible seed JSON-RPC (`shared/spec/storage-rpc.md` §13), pure: a request value
//! and a node list in, a reply value out.
//!
//! Methods `get_service_nodes`, `get_n_service_nodes` and `get_all_service_nodes` are the same
//! call. Params: `active_only` (bool), `fields` (list of names with `"all"` and `-name`, or
//! the deprecated dict `{"name": true}`), `limit` (random subset; negative = all, shuffled;
//! 0 = no limit), `service_node_pubkeys` (hex list), `poll_block_hash` (answer `unchanged: true` without the
//! list when it equals the current `block_hash`). The `height` (and `target_height`) is the
//! chain-scale estimate of [`umbra_nodelist::chain_height`] at the time of the answer
//! (`storage-rpc-addendum.md` A4); the list epoch is the separate `epoch` field, and the
//! `block_hash` is the epoch as 64 hex digits (so `poll_block_hash` follows list changes).

use serde_json::{Map, Value, json};
use umbra_crypto::Random;
use umbra_nodelist::chain_height;
use umbra_nodelist::list::{NodeEntry, NodeList};
use umbra_swarm::UNASSIGNED_SWARM_ID;

/// The hard fork reported to Session software (which checks `hf ≥ 19`).
pub const HARDFORK: u64 = 19;
/// The `snode_revision` reported.
pub const SNODE_REVISION: u64 = 0;
/// Most `service_node_pubkeys` or `fields` entries read from one request.
pub const MAX_PARAM_ITEMS: usize = 1024;

/// Every per-node field this seed can return, in output order.
pub const ALL_FIELDS: &[&str] = &[
    "service_node_pubkey",
    "pubkey_ed25519",
    "pubkey_x25519",
    "public_ip",
    "storage_port",
    "storage_https_port",
    "storage_lmq_port",
    "swarm_id",
    "swarm",
    "storage_server_version",
    "requested_unlock_height",
    "funded",
    "active",
    "last_uptime_proof",
];

const METHODS: &[&str] = &[
    "get_service_nodes",
    "get_n_service_nodes",
    "get_all_service_nodes",
];

/// The `block_hash` this seed reports for an epoch.
#[must_use]
pub fn block_hash(epoch: u64) -> String {
    format!("{epoch:064x}")
}

fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The JSON-RPC "parse error" reply (for bodies that are not JSON).
#[must_use]
pub fn parse_error() -> Value {
    error(&Value::Null, -32700, "Parse error")
}

/// Which fields to return.
fn selected_fields(params: &Map<String, Value>) -> Result<Vec<&'static str>, String> {
    let mut chosen: Vec<&'static str> = Vec::new();
    let add = |chosen: &mut Vec<&'static str>, name: &str| {
        if name == "all" {
            for f in ALL_FIELDS {
                if !chosen.contains(f) {
                    chosen.push(f);
                }
            }
        } else if let Some(f) = ALL_FIELDS.iter().find(|&&f| f == name)
            && !chosen.contains(f)
        {
            chosen.push(f);
        }
        // Unknown fields are ignored, as oxend ignores fields it does not have.
    };
    match params.get("fields") {
        None | Some(Value::Null) => return Ok(ALL_FIELDS.to_vec()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_PARAM_ITEMS {
                return Err("too many fields".into());
            }
            let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            let removals: Vec<&str> = names.iter().filter_map(|n| n.strip_prefix('-')).collect();
            let additions: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !n.starts_with('-'))
                .collect();
            if additions.is_empty() {
                add(&mut chosen, "all");
            }
            for n in additions {
                add(&mut chosen, n);
            }
            chosen.retain(|f| !removals.contains(f));
        }
        Some(Value::Object(map)) => {
            if map.len() > MAX_PARAM_ITEMS {
                return Err("too many fields".into());
            }
            for (name, on) in map {
                if on.as_bool() == Some(true) {
                    add(&mut chosen, name);
                }
            }
        }
        Some(_) => return Err("fields must be a list or an object".into()),
    }
    // Keep the canonical order.
    Ok(ALL_FIELDS
        .iter()
        .copied()
        .filter(|f| chosen.contains(f))
        .collect())
}

fn node_value(n: &NodeEntry, fields: &[&str], last_seen_s: u64) -> Value {
    let swarm_id = if n.in_swarm() {
        n.swarm_id
    } else {
        UNASSIGNED_SWARM_ID
    };
    let mut m = Map::new();
    for &f in fields {
        let v = match f {
            "service_node_pubkey" | "pubkey_ed25519" => json!(hex::encode(n.pubkey_ed25519)),
            "pubkey_x25519" => json!(hex::encode(n.pubkey_x25519)),
            "public_ip" => json!(n.public_ip.to_string()),
            "storage_port" | "storage_https_port" => json!(n.storage_port),
            "storage_lmq_port" => json!(n.storage_lmq_port),
            "swarm_id" => json!(swarm_id),
            "swarm" => json!(format!("{swarm_id:x}")),
            "storage_server_version" => json!(n.version),
            "requested_unlock_height" => json!(0),
            "funded" => json!(true),
            "active" => json!(n.in_swarm()),
            "last_uptime_proof" => json!(last_seen_s),
            _ => continue,
        };
        m.insert(f.to_owned(), v);
    }
    Value::Object(m)
}

/// Answers one JSON-RPC request `req` from `list` at Unix time `now_ms` (for `height`, see
/// [`chain_height`]). `rng` shuffles for `limit`. Unknown methods get the JSON-RPC "method not
/// found" error; bad params "invalid params".
pub fn answer(req: &Value, list: &NodeList, now_ms: i64, rng: &mut dyn Random) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return error(&id, -32600, "Invalid Request");
    };
    if !METHODS.contains(&method) {
        return error(&id, -32601, "Method not found");
    }
    let empty = Map::new();
    let params = match req.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return error(&id, -32602, "Invalid params: params must be an object"),
    };
    let fields = match selected_fields(params) {
        Ok(f) => f,
        Err(e) => return error(&id, -32602, &format!("Invalid params: {e}")),
    };
    let active_only = params
        .get("active_only")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let hash = block_hash(list.epoch);
    let mut result = Map::new();
    // storage-rpc-addendum.md A4: a chain-scale height; the list epoch is its own field.
    let height = chain_height(now_ms);
    result.insert("height".into(), json!(height));
    result.insert("target_height".into(), json!(height));
    result.insert("epoch".into(), json!(list.epoch));
    result.insert("block_hash".into(), json!(hash));
    result.insert("hardfork".into(), json!(HARDFORK));
    result.insert("snode_revision".into(), json!(SNODE_REVISION));
    result.insert("status".into(), json!("OK"));
    if let Some(poll) = params.get("poll_block_hash").and_then(Value::as_str) {
        if poll == hash {
            result.insert("unchanged".into(), json!(true));
            return json!({"jsonrpc": "2.0", "id": id, "result": result});
        }
        result.insert("unchanged".into(), json!(false));
    }
    let wanted: Option<Vec<String>> = match params.get("service_node_pubkeys") {
        Some(Value::Array(keys)) if !keys.is_empty() => Some(
            keys.iter()
                .take(MAX_PARAM_ITEMS)
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect(),
        ),
        _ => None,
    };
    let mut nodes: Vec<&NodeEntry> = list
        .nodes
        .iter()
        .filter(|n| !active_only || n.in_swarm())
        .filter(|n| {
            wanted
                .as_ref()
                .is_none_or(|w| w.contains(&hex::encode(n.pubkey_ed25519)))
        })
        .collect();
    // oxend: 0 (the default) = everything in list order, > 0 = a random subset of that
    // size, < 0 = everything shuffled.
    if let Some(limit) = params
        .get("limit")
        .and_then(Value::as_i64)
        .filter(|&l| l != 0)
    {
        shuffle(&mut nodes, rng);
        if let Ok(limit) = usize::try_from(limit) {
            nodes.truncate(limit);
        }
    }
    let last_seen_s = list.issued_at_ms / 1000;
    let states: Vec<Value> = nodes
        .iter()
        .map(|n| node_value(n, &fields, last_seen_s))
        .collect();
    result.insert("service_node_states".into(), Value::Array(states));
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn shuffle<T>(items: &mut [T], rng: &mut dyn Random) {
    for i in (1..items.len()).rev() {
        let mut b = [0u8; 8];
        rng.fill(&mut b);
        let j = usize::try_from(u64::from_le_bytes(b) % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}
