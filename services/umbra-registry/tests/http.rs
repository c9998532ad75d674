//! The HTTP API and the oxend-compatible JSON-RPC, through the router and over a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{T0, node_identity, register_req, registry_identity};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use umbra_clock::ManualClock;
use umbra_nodelist::api::{HeartbeatRequest, NodeStatus, RegistryInfo};
use umbra_nodelist::list::{ListVerifier, SignedNodeList, TrustPolicy};
use umbra_registry::registry::{Registry, RegistryConfig};
use umbra_registry::server::{AppState, router};
use umbra_registry::store::Store;
use umbra_swarm::{MAX_SWARM_ID, UNASSIGNED_SWARM_ID};

fn state(clock: Arc<ManualClock>) -> Arc<AppState> {
    let reg = Registry::open(
        Store::open_in_memory().unwrap(),
        registry_identity(),
        RegistryConfig::default(),
        clock.now(),
    )
    .unwrap();
    AppState::new(reg, clock)
}

trait Now {
    fn now(&self) -> u64;
}
impl Now for ManualClock {
    fn now(&self) -> u64 {
        umbra_clock::Clock::now_ms(self)
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let req = Request::builder().method(method).uri(path);
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&b).unwrap())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ctype, v)
}

fn rpk() -> umbra_crypto::Ed25519PublicKey {
    registry_identity().ed25519_public()
}

async fn register_nodes(app: &axum::Router, n: u32) {
    for i in 0..n {
        let body = serde_json::to_value(register_req(i, &rpk(), T0)).unwrap();
        let (status, _, v) = call(app, "POST", "/v1/register", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
}

#[tokio::test]
async fn info_register_heartbeat_and_nodelist() {
    let clock = Arc::new(ManualClock::new(T0));
    let app = router(state(clock.clone()));
    let (status, ctype, v) = call(&app, "GET", "/v1/info", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let info: RegistryInfo = serde_json::from_value(v).unwrap();
    assert_eq!(info.registry_pubkey, rpk());
    assert_eq!(
        info.registry_pubkey_x25519,
        registry_identity().x25519_public()
    );

    register_nodes(&app, 14).await;
    let hb = HeartbeatRequest::new(&node_identity(3), &rpk(), T0 + 1);
    let (status, _, v) = call(
        &app,
        "POST",
        "/v1/heartbeat",
        Some(serde_json::to_value(&hb).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let st: NodeStatus = serde_json::from_value(v).unwrap();
    assert!(st.active);
    assert!(st.swarm_id == 0 || st.swarm_id == MAX_SWARM_ID / 2);

    let (status, _, v) = call(&app, "GET", "/v1/nodelist", None).await;
    assert_eq!(status, StatusCode::OK);
    let list: SignedNodeList = serde_json::from_value(v).unwrap();
    let mut verifier = ListVerifier::new(TrustPolicy::single(rpk()));
    verifier.accept(list).unwrap();
    assert_eq!(verifier.current().unwrap().list.epoch, st.epoch);
    assert_eq!(verifier.current().unwrap().list.swarm_ring().len(), 2);
}

#[tokio::test]
async fn refusals_have_clear_json_errors() {
    let clock = Arc::new(ManualClock::new(T0));
    let app = router(state(clock.clone()));
    let mut bad_sig = serde_json::to_value(register_req(1, &rpk(), T0)).unwrap();
    bad_sig["storage_port"] = json!(1);
    let (status, _, v) = call(&app, "POST", "/v1/register", Some(bad_sig)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "bad_signature");
    assert_eq!(v["error"], "register signature verification failed");

    let stale = serde_json::to_value(register_req(1, &rpk(), T0 - 120_000)).unwrap();
    let (status, _, v) = call(&app, "POST", "/v1/register", Some(stale)).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(v["code"], "stale_timestamp");

    let (status, _, v) = call(
        &app,
        "POST",
        "/v1/register",
        Some(json!({"pubkey_ed25519": "zz"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "bad_request");

    let hb = HeartbeatRequest::new(&node_identity(5), &rpk(), T0);
    let (status, _, v) = call(
        &app,
        "POST",
        "/v1/heartbeat",
        Some(serde_json::to_value(&hb).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "not_registered");

    // Oversized bodies are refused before parsing.
    let huge = json!({"pad": "x".repeat(64 * 1024)});
    let (status, _, _) = call(&app, "POST", "/v1/register", Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn inactive_nodes_leave_their_swarm() {
    let clock = Arc::new(ManualClock::new(T0));
    let st = state(clock.clone());
    let app = router(st.clone());
    register_nodes(&app, 6).await;
    clock.advance(RegistryConfig::default().inactive_after_ms + 1);
    let now = clock.now();
    for i in 1..6 {
        let hb = HeartbeatRequest::new(&node_identity(i), &rpk(), now);
        let (s, _, _) = call(
            &app,
            "POST",
            "/v1/heartbeat",
            Some(serde_json::to_value(&hb).unwrap()),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert!(st.with_registry(|r, now| r.expire(now)).unwrap());
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(
            json!({"jsonrpc": "2.0", "id": 1, "method": "get_service_nodes",
                    "params": {"fields": ["pubkey_ed25519", "swarm_id", "active"]}}),
        ),
    )
    .await;
    let states = v["result"]["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 6);
    let gone = hex::encode(node_identity(0).ed25519_public());
    for s in states {
        if s["pubkey_ed25519"] == gone {
            assert_eq!(s["swarm_id"], json!(UNASSIGNED_SWARM_ID));
            assert_eq!(s["active"], json!(false));
        } else {
            assert_eq!(s["swarm_id"], json!(0));
        }
    }
}

#[tokio::test]
async fn oxend_json_rpc_is_compatible() {
    let clock = Arc::new(ManualClock::new(T0));
    let st = state(clock.clone());
    let app = router(st.clone());
    register_nodes(&app, 14).await;
    let epoch = st.with_registry(|r, _| Ok(r.epoch())).unwrap();

    // The desktop's request: dict-style fields, active_only.
    let (status, ctype, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"jsonrpc": "2.0", "method": "get_n_service_nodes",
            "params": {"active_only": true, "fields": {"public_ip": true, "storage_port": true,
                "pubkey_x25519": true, "pubkey_ed25519": true, "requested_unlock_height": true,
                "height": true}}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let result = &v["result"];
    // storage-rpc-addendum.md A4: chain-scale height from the registry's clock; epoch apart.
    assert_eq!(
        result["height"],
        json!(umbra_nodelist::chain_height(i64::try_from(T0).unwrap()))
    );
    assert_eq!(result["epoch"], json!(epoch));
    assert_eq!(result["status"], "OK");
    assert!(result["block_hash"].as_str().unwrap().len() == 64);
    let states = result["service_node_states"].as_array().unwrap();
    assert_eq!(states.len(), 14);
    for s in states {
        let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys.clone();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "pubkey_ed25519",
                "pubkey_x25519",
                "public_ip",
                "requested_unlock_height",
                "storage_port"
            ]
        );
        assert_eq!(s["public_ip"], "127.0.0.1");
        assert!(s["requested_unlock_height"].is_number());
    }

    // The network tests' request: list-style fields.
    let fields = [
        "public_ip",
        "storage_port",
        "storage_lmq_port",
        "pubkey_ed25519",
        "pubkey_x25519",
        "service_node_pubkey",
    ];
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(
            json!({"jsonrpc": "2.0", "id": "x", "method": "get_service_nodes",
            "params": {"active_only": true, "fields": fields}}),
        ),
    )
    .await;
    assert_eq!(v["id"], "x");
    let s0 = &v["result"]["service_node_states"][0];
    assert_eq!(s0.as_object().unwrap().len(), fields.len());
    assert_eq!(s0["service_node_pubkey"], s0["pubkey_ed25519"]);

    // All fields by default; swarm ids as u64 and hex; removal with "-name"; limit.
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"method": "get_all_service_nodes"})),
    )
    .await;
    let all = v["result"]["service_node_states"].as_array().unwrap();
    let mut swarm_ids: Vec<u64> = all
        .iter()
        .map(|s| s["swarm_id"].as_u64().unwrap())
        .collect();
    swarm_ids.sort_unstable();
    swarm_ids.dedup();
    assert_eq!(swarm_ids, vec![0, MAX_SWARM_ID / 2]);
    assert!(all.iter().any(|s| s["swarm"] == "7fffffffffffffff"));
    assert_eq!(all[0]["storage_server_version"], json!([2, 8, 0]));
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"method": "get_n_service_nodes", "params": {"fields": ["-swarm", "-funded"], "limit": 5}})),
    )
    .await;
    let some = v["result"]["service_node_states"].as_array().unwrap();
    assert_eq!(some.len(), 5);
    assert!(some[0].get("swarm").is_none() && some[0].get("swarm_id").is_some());

    // service_node_pubkeys filter and poll_block_hash.
    let key = hex::encode(node_identity(2).ed25519_public());
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"method": "get_service_nodes", "params": {"service_node_pubkeys": [key]}})),
    )
    .await;
    assert_eq!(
        v["result"]["service_node_states"].as_array().unwrap().len(),
        1
    );
    let hash = v["result"]["block_hash"].clone();
    let (_, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"method": "get_service_nodes", "params": {"poll_block_hash": hash}})),
    )
    .await;
    assert_eq!(v["result"]["unchanged"], json!(true));
    assert!(v["result"].get("service_node_states").is_none());

    // Errors.
    let (status, _, v) = call(
        &app,
        "POST",
        "/json_rpc",
        Some(json!({"method": "get_info"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["error"]["code"], -32601);
    let req = Request::post("/json_rpc")
        .body(Body::from("not json"))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"]["code"], -32700);
}

#[tokio::test]
async fn serves_over_a_real_socket() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let clock = Arc::new(ManualClock::new(T0));
    let st = state(clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(umbra_registry::server::serve(listener, st, async move {
        let _ = stop_rx.await;
    }));
    let body =
        r#"{"jsonrpc":"2.0","id":0,"method":"get_n_service_nodes","params":{"active_only":true}}"#;
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /json_rpc HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        sock.read_to_string(&mut resp),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.to_ascii_lowercase()
            .contains("content-type: application/json")
    );
    assert!(resp.contains("\"service_node_states\":[]"));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
