//! The storage RPC of a devnet node, spoken directly over HTTPS as a Session client's own
//! requests would be (no onion path): for scenarios that check what the nodes hold.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use umbra_clock::{Clock as _, SystemClock};
use umbra_crypto::Identity;

/// The authenticated namespace the scenarios store to (`storage-rpc.md` §4: signed stores).
pub(crate) const NAMESPACE: i16 = 2;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// An HTTPS client for devnet nodes, whose certificates are self-signed (as Session's are).
pub(crate) fn client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// `POST /storage_rpc/v1` to the node on `port`: (status, JSON body or the text as a
/// string), or the transport error (a node that is down, a reset connection).
pub(crate) async fn try_rpc(
    http: &reqwest::Client,
    port: u16,
    method: &str,
    params: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let url = format!("https://127.0.0.1:{port}/storage_rpc/v1");
    let resp = http
        .post(url)
        .json(&json!({"method": method, "params": params}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// [`try_rpc`] to a node that must answer.
pub(crate) async fn rpc(
    http: &reqwest::Client,
    port: u16,
    method: &str,
    params: Value,
) -> (u16, Value) {
    try_rpc(http, port, method, params)
        .await
        .unwrap_or_else(|e| panic!("{method} to the node on port {port}: {e}"))
}

/// The `store` params of a message to [`NAMESPACE`], signed by `me`
/// (§3.2: `"store" || "2" || sig_timestamp`).
pub(crate) fn signed_store(me: &Identity, data: &[u8], now: u64) -> Value {
    let sig = me.sign(format!("store{NAMESPACE}{now}").as_bytes());
    json!({
        "pubkey": me.session_id().to_hex(),
        "pubkey_ed25519": hex::encode(me.ed25519_public()),
        "namespace": NAMESPACE,
        "timestamp": now,
        "sig_timestamp": now,
        "ttl": 3_600_000,
        "data": B64.encode(data),
        "signature": B64.encode(sig),
    })
}

/// The `retrieve` params of [`NAMESPACE`] after `last_hash` (from the start when `None`),
/// signed by `me` (§3.2: `"retrieve" || "2" || timestamp`).
pub(crate) fn signed_retrieve(me: &Identity, last_hash: Option<&str>, now: u64) -> Value {
    let sig = me.sign(format!("retrieve{NAMESPACE}{now}").as_bytes());
    let mut params = json!({
        "pubkey": me.session_id().to_hex(),
        "pubkey_ed25519": hex::encode(me.ed25519_public()),
        "namespace": NAMESPACE,
        "timestamp": now,
        "signature": B64.encode(sig),
    });
    if let Some(h) = last_hash {
        params["last_hash"] = h.into();
    }
    params
}

/// Every hash the node on `port` returns for `me` in [`NAMESPACE`], page after page, or the
/// first error (transport or status) as one line.
pub(crate) async fn all_hashes(
    http: &reqwest::Client,
    port: u16,
    me: &Identity,
) -> Result<Vec<String>, String> {
    let mut hashes: Vec<String> = Vec::new();
    loop {
        let params = signed_retrieve(me, hashes.last().map(String::as_str), now_ms());
        let (status, body) = try_rpc(http, port, "retrieve", params)
            .await
            .map_err(|e| format!("retrieve: {e}"))?;
        if status != 200 {
            return Err(format!("retrieve answered {status}: {body}"));
        }
        let page = body["messages"]
            .as_array()
            .ok_or_else(|| format!("retrieve answered without messages: {body}"))?;
        hashes.extend(
            page.iter()
                .filter_map(|m| m["hash"].as_str().map(str::to_owned)),
        );
        if page.is_empty() || body["more"] != true {
            return Ok(hashes);
        }
    }
}

/// The `delete` params of `hashes`, signed by `me` (§3.2: `"delete" || hash_0 || … || hash_n`
/// in request order, no timestamp).
pub(crate) fn signed_delete(me: &Identity, hashes: &[String]) -> Value {
    let sig = me.sign(format!("delete{}", hashes.concat()).as_bytes());
    json!({
        "pubkey": me.session_id().to_hex(),
        "pubkey_ed25519": hex::encode(me.ed25519_public()),
        "messages": hashes,
        "signature": B64.encode(sig),
    })
}
