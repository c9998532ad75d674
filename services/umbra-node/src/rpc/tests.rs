//! Unit tests of every RPC method through [`handle_method`]/[`handle_rpc`], with a real store in
//! a temporary directory and a fixed clock. Status codes and bodies are compared exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use umbra_crypto::AccountId;

use serde_json::{Value, json};
use tempfile::TempDir;
use umbra_clock::{Clock as _, SystemClock};
use umbra_crypto::Identity;
use umbra_crypto::hash::message_hash;
use umbra_crypto::sign::verify;
use umbra_store::{Store, StoreConfig};

use super::params::b64;
use super::*;
use crate::node::NodeState;
use crate::oxend::{Oxend, OxendError, OxendFuture};
use crate::replicate::{RecursiveRequest, ReplicateFuture, Replicator};
use crate::swarm::SwarmHandle;
use crate::testing::TestAccount;
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

struct Fx {
    state: Arc<NodeState>,
    _dir: TempDir,
}

/// This node, alone in swarm 0.
fn me(identity: &Identity) -> NodeEntry {
    NodeEntry {
        pubkey_ed25519: identity.ed25519_public(),
        pubkey_x25519: identity.x25519_public(),
        public_ip: std::net::Ipv4Addr::new(10, 1, 2, 3),
        storage_port: 22021,
        storage_lmq_port: 22020,
        swarm_id: 0,
        active: true,
        version: crate::STORAGE_SERVER_VERSION,
    }
}

/// This node in swarm 0 and another node in swarm 2^63.
fn two_swarms(identity: &Identity) -> SwarmView {
    let other = NodeEntry {
        pubkey_ed25519: umbra_crypto::Ed25519PublicKey::from_bytes([5u8; 32]),
        pubkey_x25519: umbra_crypto::X25519PublicKey::from_bytes([6u8; 32]),
        public_ip: std::net::Ipv4Addr::new(10, 9, 9, 9),
        storage_port: 1234,
        storage_lmq_port: 1235,
        swarm_id: 1 << 63,
        active: true,
        version: crate::STORAGE_SERVER_VERSION,
    };
    SwarmView::new(0, identity.ed25519_public(), [me(identity), other])
}

fn fixture_with(f: impl FnOnce(NodeState) -> NodeState) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store"), StoreConfig::default()).unwrap();
    let identity = Identity::from_seed(&[9u8; 32]);
    let view = SwarmView::single(me(&identity));
    let state = f(NodeState::new(identity, store, SwarmHandle::new(view)));
    Fx {
        state: Arc::new(state),
        _dir: dir,
    }
}

fn fixture() -> Fx {
    fixture_with(|s| s)
}

impl Fx {
    async fn call(&self, method: &str, params: Value) -> RpcResponse {
        handle_method(&self.state, NOW, method, &params).await
    }
    async fn call_at(&self, now: i64, method: &str, params: Value) -> RpcResponse {
        handle_method(&self.state, now, method, &params).await
    }
    fn node_hex(&self) -> String {
        hex::encode(self.state.identity.ed25519_public())
    }
    fn node_verifies(&self, msg: &[u8], sig_b64: &str) -> bool {
        let sig = params::b64_decode(sig_b64).unwrap();
        verify(
            &self.state.identity.ed25519_public(),
            msg,
            &umbra_crypto::Signature::from_slice(&sig).unwrap(),
        )
        .is_ok()
    }
    /// Stores `data` for `a` in `ns` (signed) and returns the hash.
    async fn put(&self, a: &TestAccount, ns: i16, ts: i64, ttl: i64, data: &[u8]) -> String {
        let r = self.call("store", a.store_params(ns, ts, ttl, data)).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json_body().unwrap()["hash"].as_str().unwrap().to_string()
    }
    async fn fetch(&self, a: &TestAccount, ns: i16) -> Vec<Value> {
        let r = self.call("retrieve", a.retrieve_params(ns, NOW)).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json_body().unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn assert_text(r: &RpcResponse, status: u16, body: &str) {
    assert_eq!(
        (r.status, r.text_body()),
        (status, Some(body)),
        "full response: {r:?}"
    );
}

fn acct() -> TestAccount {
    TestAccount::new(1)
}

fn signed(a: &TestAccount, mut params: Value, msg: &[u8]) -> Value {
    params["pubkey"] = json!(a.pubkey_hex());
    params["pubkey_ed25519"] = json!(a.ed25519_hex());
    params["signature"] = json!(a.sign_b64(msg));
    params
}

// ---------------------------------------------------------------------------------------------
// envelope
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn envelope_errors() {
    let fx = fixture();
    let r = handle_rpc(&fx.state, NOW, b"{not json").await;
    assert_text(&r, 400, "invalid json");
    let r = handle_rpc(&fx.state, NOW, br#"{"params": {}}"#).await;
    assert_text(&r, 400, "invalid json: no `method` field");
    let r = handle_rpc(&fx.state, NOW, br#"{"method": 5, "params": {}}"#).await;
    assert_text(&r, 400, "invalid json: no `method` field");
    let r = handle_rpc(&fx.state, NOW, br#"{"method": "info"}"#).await;
    assert_text(&r, 400, "invalid json: no `params` field");
    let r = handle_rpc(&fx.state, NOW, br#"{"method": "info", "params": [1]}"#).await;
    assert_text(&r, 400, "invalid json: no `params` field");
    let r = handle_rpc(&fx.state, NOW, br#"{"method": "frobnicate", "params": {}}"#).await;
    assert_text(&r, 400, "no method frobnicate");
    let r = handle_rpc(
        &fx.state,
        NOW,
        br#"{"jsonrpc": "2.0", "method": "info", "params": {}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(fx.state.metrics.request_count("info", 200), 1);
    assert_eq!(fx.state.metrics.request_count("unknown", 400), 1);
}

#[tokio::test]
async fn info_reports_version_time_and_hf() {
    let fx = fixture();
    let r = fx.call("info", json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json_body().unwrap(),
        &json!({"version": [2, 8, 0], "timestamp": NOW, "t": NOW, "hf": [19, 3]})
    );
}

// ---------------------------------------------------------------------------------------------
// store
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn store_public_inbox_without_signature_and_duplicate() {
    let fx = fixture();
    let a = acct();
    let params =
        json!({"pubkey": a.pubkey_hex(), "timestamp": NOW, "ttl": DAY, "data": b64(b"hello")});
    let r = fx.call("store", params.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json_body().unwrap();
    let hash = message_hash(&a.pubkey_bytes(), 0, b"hello").to_string();
    assert_eq!(body["hash"], hash);
    assert_eq!(body["t"], NOW);
    assert_eq!(body["hf"], json!([19, 3]));
    let own = &body["swarm"][fx.node_hex()];
    assert_eq!(own["hash"], hash);
    assert_eq!(own["expiry"], NOW + DAY);
    assert_eq!(own["t"], NOW);
    assert!(own.get("already").is_none());
    assert!(fx.node_verifies(hash.as_bytes(), own["signature"].as_str().unwrap()));
    assert_eq!(body["swarm"].as_object().unwrap().len(), 1);

    // Same message again with a later expiry: already, expiry raised; stringified ints accepted.
    let again = json!({"pubkey": a.pubkey_hex(), "timestamp": NOW.to_string(), "ttl": (2 * DAY).to_string(), "data": b64(b"hello")});
    let r = fx.call("store", again).await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["already"], true);
    assert_eq!(own["expiry"], NOW + 2 * DAY);
    let msgs = fx.fetch(&a, 0).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["timestamp"], NOW);
    assert_eq!(msgs[0]["expiration"], NOW + 2 * DAY);
}

#[tokio::test]
async fn store_checks_in_order_with_exact_errors() {
    let fx = fixture();
    let a = acct();
    let pk = a.pubkey_hex();
    let base = |ns: i64, ttl: i64| json!({"pubkey": pk, "namespace": ns, "timestamp": NOW, "ttl": ttl, "data": b64(b"x")});
    assert_text(
        &fx.call("store", base(0, 9_999)).await,
        403,
        "Provided expiry/TTL is not valid.",
    );
    assert_text(
        &fx.call("store", base(0, 14 * DAY + 1)).await,
        403,
        "Provided expiry/TTL is not valid.",
    );
    // Private namespaces allow 30 days (the TTL check comes before the signature check).
    assert_text(
        &fx.call("store", base(5, 30 * DAY + 1)).await,
        403,
        "Provided expiry/TTL is not valid.",
    );
    assert_text(
        &fx.call("store", base(5, 30 * DAY)).await,
        401,
        "store: signature required to store to namespace 5",
    );
    for ns in [42, -1, 33] {
        assert_text(
            &fx.call("store", base(ns, DAY)).await,
            401,
            &format!("store: signature required to store to namespace {ns}"),
        );
    }
    // Clock: timestamp too far ahead / expiry already past.
    let r = fx.call_at(NOW - 11_000, "store", base(0, DAY)).await;
    assert_text(&r, 406, "Timestamp error: check your clock");
    let r = fx.call_at(NOW + DAY + 11_000, "store", base(0, DAY)).await;
    assert_text(&r, 406, "Timestamp error: check your clock");
    // Signed store to a private namespace: stale signature timestamp, bad signature, good.
    let stale = a.store_params(3, NOW - 61_000, DAY, b"x");
    assert_text(
        &fx.call("store", stale).await,
        406,
        "store signature timestamp too far from current time",
    );
    let mut bad = a.store_params(3, NOW, DAY, b"x");
    bad["signature"] = json!(a.sign_b64(format!("store4{NOW}").as_bytes()));
    assert_text(
        &fx.call("store", bad).await,
        401,
        "store signature verification failed",
    );
    let h = fx.put(&a, 3, NOW, DAY, b"x").await;
    assert_eq!(h, message_hash(&a.pubkey_bytes(), 3, b"x").as_str());
    // A 05 account without pubkey_ed25519 cannot authenticate.
    let mut no_ed = a.store_params(3, NOW, DAY, b"y");
    no_ed.as_object_mut().unwrap().remove("pubkey_ed25519");
    assert_text(
        &fx.call("store", no_ed).await,
        401,
        "store signature verification failed",
    );
    // sig_timestamp is what is signed and checked when given.
    let mut p = a.store_params(3, NOW - 5_000, DAY, b"z");
    p["sig_timestamp"] = json!(NOW);
    p["signature"] = json!(a.sign_b64(format!("store3{NOW}").as_bytes()));
    assert_eq!(fx.call("store", p).await.status, 200);
}

#[tokio::test]
async fn store_parse_errors() {
    let fx = fixture();
    let a = acct();
    let pk = a.pubkey_hex();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"pubkey": pk, "ttl": DAY, "data": ""}),
            "invalid request: Required field 'timestamp' missing",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "data": ""}),
            "invalid request: Required field 'expiry' or 'ttl' missing",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "expiry": NOW + DAY, "data": ""}),
            "invalid request: Cannot specify both 'expiry' and 'ttl'",
        ),
        (
            json!({"timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: Required field 'pubkey' missing",
        ),
        (
            json!({"pubkey": pk, "pubKey": pk, "timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: Cannot specify both 'pubkey' and 'pubKey'",
        ),
        (
            json!({"pubkey": "05abc", "timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: Pubkey must be 66 hex digits (33 bytes) long",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY}),
            "invalid request: Required field 'data' missing",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": "!!!"}),
            "invalid request: Invalid 'data' value: not base64 encoded",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": "A".repeat(102_404)}),
            "invalid request: Message body exceeds maximum allowed length of 76800 bytes",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": "", "namespace": 32768}),
            "invalid request: Invalid value given for 'namespace': value out of range",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": "", "namespace": "x"}),
            "invalid request: Invalid value given for 'namespace': expected 16-bit integer",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": -5, "data": ""}),
            "invalid request: Invalid value given for 'ttl': expected positive integer",
        ),
        (
            json!({"pubkey": pk, "timestamp": 1_700_000, "ttl": DAY, "data": ""}),
            "invalid request: Invalid timestamp for 'timestamp': timestamp must be in milliseconds",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": "", "signature": "abc"}),
            "invalid request: invalid signature: expected base64 encoded Ed25519 signature",
        ),
        (
            json!({"pubkey": pk, "timestamp": NOW, "ttl": DAY, "data": 5}),
            "invalid request: Invalid value given for 'data': expected string",
        ),
        (
            json!({"pubkey": format!("03{}", &pk[2..]), "pubkey_ed25519": a.ed25519_hex(), "signature": a.sign_b64(b"x"), "timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: pubkey_ed25519 is only permitted for 05[...] pubkeys",
        ),
        (
            json!({"pubkey": pk, "pubkey_ed25519": "zz".repeat(32), "signature": a.sign_b64(b"x"), "timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: invalid pubkey_ed25519: value is not hex",
        ),
        (
            json!({"pubkey": pk, "pubkey_ed25519": "abc", "signature": a.sign_b64(b"x"), "timestamp": NOW, "ttl": DAY, "data": ""}),
            "invalid request: Invalid pubkey_ed25519: expected 64 hex char or 32 byte pubkey",
        ),
    ];
    for (params, want) in cases {
        let r = fx.call("store", params.clone()).await;
        assert_text(&r, 400, want);
    }
}

#[tokio::test]
async fn public_outbox_keeps_one_and_legacy_group_needs_no_auth() {
    let fx = fixture();
    let a = acct();
    fx.put(&a, -1, NOW - 2000, DAY, b"first").await;
    fx.put(&a, -1, NOW - 1000, DAY, b"second").await;
    // Outbox retrieve needs no auth.
    let r = fx
        .call(
            "retrieve",
            json!({"pubkey": a.pubkey_hex(), "namespace": -1}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let msgs = r.json_body().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["data"], b64(b"second"));
    // Legacy closed group -10: store and retrieve without any signature.
    let r = fx.call("store", json!({"pubkey": a.pubkey_hex(), "namespace": -10, "timestamp": NOW, "ttl": DAY, "data": b64(b"g")})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = fx
        .call(
            "retrieve",
            json!({"pubkey": a.pubkey_hex(), "namespace": -10}),
        )
        .await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// retrieve
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn retrieve_shape_auth_rules_and_errors() {
    let fx = fixture();
    let a = acct();
    let h = fx.put(&a, 0, NOW, DAY, b"m1").await;
    let r = fx.call("retrieve", a.retrieve_params(0, NOW)).await;
    let mut body = r.json_body().unwrap().clone();
    // `t` is the time of the answer: NOW plus however long the read took on a loaded machine.
    let t = body["t"].as_i64().unwrap();
    assert!((NOW..NOW + 1000).contains(&t), "t = {t}");
    body.as_object_mut().unwrap().remove("t");
    body.as_object_mut().unwrap().remove("hf");
    assert_eq!(
        body,
        json!({"messages": [{"data": b64(b"m1"), "expiration": NOW + DAY, "hash": h, "timestamp": NOW}], "more": false})
    );
    let pk = a.pubkey_hex();
    assert_text(
        &fx.call("retrieve", json!({"pubkey": pk})).await,
        401,
        "retrieve: request signature required",
    );
    assert_text(
        &fx.call("retrieve", json!({"pubkey": pk, "namespace": 0}))
            .await,
        400,
        "invalid request: Required field 'signature' missing",
    );
    assert_text(
        &fx.call("retrieve", a.retrieve_params(0, NOW - 61_000))
            .await,
        406,
        "retrieve timestamp too far from current time",
    );
    let mut bad = a.retrieve_params(0, NOW);
    bad["signature"] = json!(a.sign_b64(b"retrieve1"));
    assert_text(
        &fx.call("retrieve", bad).await,
        401,
        "retrieve signature verification failed",
    );
    let mut p = a.retrieve_params(0, NOW);
    p["last_hash"] = json!("short");
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: Invalid last_hash: expected base64 (43 chars)",
    );
    let mut p = a.retrieve_params(0, NOW);
    p["last_hash"] = json!("!".repeat(43));
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: Invalid last_hash: not base64",
    );
    let mut p = a.retrieve_params(0, NOW);
    p["last_hash"] = json!(h.clone());
    p["lastHash"] = json!(h.clone());
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: Cannot specify both 'last_hash' and 'lastHash'",
    );
    // Another account's signature does not open this mailbox.
    let b = TestAccount::new(2);
    let mut p = b.retrieve_params(0, NOW);
    p["pubkey"] = json!(pk);
    assert_text(
        &fx.call("retrieve", p).await,
        401,
        "retrieve signature verification failed",
    );
}

#[tokio::test]
async fn retrieve_pages_by_last_hash_count_and_size() {
    let fx = fixture();
    let a = acct();
    let mut hashes = Vec::new();
    for i in 0..12u8 {
        hashes.push(fx.put(&a, 0, NOW - 100 + i64::from(i), DAY, &[i; 30]).await);
    }
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut p = a.retrieve_params(0, NOW);
        p["max_count"] = json!(5);
        if let Some(l) = &last {
            p["last_hash"] = json!(l);
        }
        let r = fx.call("retrieve", p).await;
        let body = r.json_body().unwrap();
        let page: Vec<String> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["hash"].as_str().unwrap().to_string())
            .collect();
        let more = body["more"].as_bool().unwrap();
        seen.extend(page.iter().cloned());
        last = page.last().cloned();
        if !more {
            break;
        }
    }
    assert_eq!(seen, hashes);
    // Unknown last_hash: from the beginning.
    let mut p = a.retrieve_params(0, NOW);
    p["last_hash"] = json!("A".repeat(43));
    let r = fx.call("retrieve", p).await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        12
    );
    // max_size: 100 + 43 + 40 = 183 bytes per message; 400 bytes → 2 messages, more.
    let mut p = a.retrieve_params(0, NOW);
    p["max_size"] = json!(400);
    let r = fx.call("retrieve", p).await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        2
    );
    assert_eq!(r.json_body().unwrap()["more"], true);
    // The first message always comes even if alone it is too large.
    let mut p = a.retrieve_params(0, NOW);
    p["max_size"] = json!(1);
    let r = fx.call("retrieve", p).await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn expired_messages_are_never_returned() {
    let fx = fixture();
    let a = acct();
    fx.put(&a, 0, NOW, 10_000, b"short").await;
    let later = NOW + 10_000;
    let r = fx
        .call_at(later, "retrieve", a.retrieve_params(0, later))
        .await;
    assert_eq!(r.json_body().unwrap()["messages"], json!([]));
}

#[tokio::test]
async fn group_account_signs_with_its_own_key() {
    let fx = fixture();
    let g = Identity::from_seed(&[77u8; 32]);
    let mut pk = [0u8; 33];
    pk[0] = 0x03;
    pk[1..].copy_from_slice(g.ed25519_public().as_bytes());
    let pk_hex = hex::encode(pk);
    let sig = b64(g.sign(format!("store11{NOW}").as_bytes()));
    let r = fx.call("store", json!({"pubkey": pk_hex, "namespace": 11, "timestamp": NOW, "ttl": DAY, "data": b64(b"grp"), "signature": sig})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let sig = b64(g.sign(format!("retrieve11{NOW}").as_bytes()));
    let r = fx
        .call(
            "retrieve",
            json!({"pubkey": pk_hex, "namespace": 11, "timestamp": NOW, "signature": sig}),
        )
        .await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// delete, delete_all, delete_before
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_signed_results_and_required() {
    let fx = fixture();
    let a = acct();
    let h1 = fx.put(&a, 0, NOW, DAY, b"1").await;
    let h2 = fx.put(&a, 0, NOW, DAY, b"2").await;
    let unknown = "B".repeat(43);
    let msgs = vec![h2.clone(), unknown.clone(), h1.clone()];
    let sigmsg = format!("delete{}", msgs.concat());
    let r = fx
        .call(
            "delete",
            signed(&a, json!({"messages": msgs}), sigmsg.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    let mut deleted = vec![h1.clone(), h2.clone()];
    deleted.sort();
    assert_eq!(own["deleted"], json!(deleted));
    let node_msg = format!("{}{}{}", a.pubkey_hex(), msgs.concat(), deleted.concat());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    assert!(fx.fetch(&a, 0).await.is_empty());
    // Nothing left: required → 404 with the normal body.
    let one = vec![h1.clone()];
    let sigmsg = format!("delete{h1}");
    let r = fx
        .call(
            "delete",
            signed(
                &a,
                json!({"messages": one, "required": true}),
                sigmsg.as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json_body().unwrap()["swarm"][fx.node_hex()]["deleted"],
        json!([])
    );
    // Errors.
    let r = fx
        .call(
            "delete",
            signed(&a, json!({"messages": [h1.clone()]}), b"delete"),
        )
        .await;
    assert_text(&r, 401, "delete_msgs signature verification failed");
    let r = fx
        .call("delete", signed(&a, json!({"messages": []}), b"delete"))
        .await;
    assert_text(
        &r,
        400,
        "invalid request: messages does not contain any message hashes",
    );
    let r = fx
        .call(
            "delete",
            signed(&a, json!({"messages": ["nothash"]}), b"delete"),
        )
        .await;
    assert_text(&r, 400, "invalid request: invalid message hash: nothash");
    let r = fx
        .call(
            "delete",
            json!({"pubkey": a.pubkey_hex(), "messages": [h1]}),
        )
        .await;
    assert_text(
        &r,
        400,
        "invalid request: Required field 'signature' missing",
    );
}

#[tokio::test]
async fn delete_all_one_and_all_namespaces() {
    let fx = fixture();
    let a = acct();
    let h0 = fx.put(&a, 0, NOW, DAY, b"a").await;
    let h3 = fx.put(&a, 3, NOW, DAY, b"b").await;
    let h5 = fx.put(&a, 5, NOW, DAY, b"c").await;
    // One namespace (3).
    let r = fx
        .call(
            "delete_all",
            signed(
                &a,
                json!({"namespace": 3, "timestamp": NOW}),
                format!("delete_all3{NOW}").as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["deleted"], json!([h3]));
    let node_msg = format!("{}{NOW}{h3}", a.pubkey_hex());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // All namespaces.
    let r = fx
        .call(
            "delete_all",
            signed(
                &a,
                json!({"namespace": "all", "timestamp": NOW}),
                format!("delete_allall{NOW}").as_bytes(),
            ),
        )
        .await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(
        own["deleted"],
        json!({"0": [h0.clone()], "5": [h5.clone()]})
    );
    let mut all = [h0, h5];
    all.sort();
    let node_msg = format!("{}{NOW}{}", a.pubkey_hex(), all.concat());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // Errors.
    let r = fx
        .call(
            "delete_all",
            signed(
                &a,
                json!({"timestamp": NOW - 61_000}),
                format!("delete_all{}", NOW - 61_000).as_bytes(),
            ),
        )
        .await;
    assert_text(&r, 406, "delete_all timestamp too far from current time");
    let r = fx
        .call(
            "delete_all",
            signed(&a, json!({"timestamp": NOW}), b"delete_all"),
        )
        .await;
    assert_text(&r, 401, "delete_all signature verification failed");
    let r = fx
        .call(
            "delete_all",
            signed(&a, json!({"timestamp": NOW, "namespace": [1]}), b"x"),
        )
        .await;
    assert_text(
        &r,
        400,
        "invalid request: Invalid value given for 'namespace': expected integer or \"all\"",
    );
    // A forwarded copy gets ±70 s.
    let p = signed(
        &a,
        json!({"timestamp": NOW - 65_000}),
        format!("delete_all{}", NOW - 65_000).as_bytes(),
    );
    let r = handle_forwarded(&fx.state, NOW, "delete_all", &p).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.json_body().unwrap().get("swarm").is_none());
}

#[tokio::test]
async fn delete_before_by_timestamp() {
    let fx = fixture();
    let a = acct();
    let old = fx.put(&a, 0, NOW - 5000, DAY, b"old").await;
    let _new = fx.put(&a, 0, NOW, DAY, b"new").await;
    let before = NOW - 1000;
    let r = fx
        .call(
            "delete_before",
            signed(
                &a,
                json!({"before": before}),
                format!("delete_before{before}").as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["deleted"], json!([old.clone()]));
    let node_msg = format!("{}{before}{old}", a.pubkey_hex());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    assert_eq!(fx.fetch(&a, 0).await.len(), 1);
    let future = NOW + 61_000;
    let r = fx
        .call(
            "delete_before",
            signed(
                &a,
                json!({"before": future}),
                format!("delete_before{future}").as_bytes(),
            ),
        )
        .await;
    assert_text(&r, 401, "delete_before timestamp too far in the future");
    let r = fx
        .call(
            "delete_before",
            signed(&a, json!({"before": before}), b"nope"),
        )
        .await;
    assert_text(&r, 401, "delete_before signature verification failed");
    let r = fx
        .call("delete_before", signed(&a, json!({}), b"nope"))
        .await;
    assert_text(&r, 400, "invalid request: Required field 'before' missing");
}

// ---------------------------------------------------------------------------------------------
// expire, expire_all, get_expiries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expire_plain_shorten_extend_and_multi() {
    let fx = fixture();
    let a = acct();
    let h1 = fx.put(&a, 0, NOW, DAY, b"1").await;
    let h2 = fx.put(&a, 0, NOW, 2 * DAY, b"2").await;
    let msgs = vec![h1.clone(), h2.clone()];
    let mut sorted = msgs.clone();
    sorted.sort();
    // Plain: set both to 3 days.
    let e = NOW + 3 * DAY;
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": msgs, "expiry": e}),
                format!("expire{e}{}", msgs.concat()).as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!(sorted));
    assert_eq!(own["expiry"], e);
    assert!(own.get("unchanged").is_none());
    let node_msg = format!("{}{e}{}{}", a.pubkey_hex(), msgs.concat(), sorted.concat());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // Shorten to 2 days for h1 only changes h1 … extend leaves both unchanged.
    let e2 = NOW + 2 * DAY;
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": e2, "shorten": true}),
                format!("expireshorten{e2}{h1}").as_bytes(),
            ),
        )
        .await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([h1.clone()]));
    assert_eq!(own["unchanged"], json!({}));
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": msgs, "expiry": e2, "extend": true}),
                format!("expireextend{e2}{}", msgs.concat()).as_bytes(),
            ),
        )
        .await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([]));
    let mut unchanged = BTreeMap::new();
    unchanged.insert(h1.clone(), e2);
    unchanged.insert(h2.clone(), e);
    assert_eq!(own["unchanged"], json!(unchanged));
    let mut node_msg = format!("{}{e2}{}", a.pubkey_hex(), msgs.concat());
    for (h, x) in &unchanged {
        node_msg.push_str(&format!("{h}{x}"));
    }
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // Capped at now + 30 days.
    let far = NOW + 40 * DAY;
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": far}),
                format!("expire{far}{h1}").as_bytes(),
            ),
        )
        .await;
    assert_eq!(
        r.json_body().unwrap()["swarm"][fx.node_hex()]["expiry"],
        NOW + 30 * DAY
    );
    // Multi-expiry.
    let (x1, x2) = (NOW + DAY, NOW + 5 * DAY);
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": msgs, "expiry": [x1, x2]}),
                format!("expire{x1}{x2}{}", msgs.concat()).as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    let updated: Vec<String> = own["updated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(updated, sorted);
    let want: Vec<i64> = updated
        .iter()
        .map(|h| if *h == h1 { x1 } else { x2 })
        .collect();
    assert_eq!(own["expiry"], json!(want));
    // Errors.
    let past = NOW - 61_000;
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": past}),
                format!("expire{past}{h1}").as_bytes(),
            ),
        )
        .await;
    assert_text(&r, 401, "expire: timestamp should be >= current time");
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": e}),
                b"expire",
            ),
        )
        .await;
    assert_text(&r, 401, "expire: signature verification failed");
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": e, "shorten": true, "extend": true}),
                b"x",
            ),
        )
        .await;
    assert_text(
        &r,
        400,
        "invalid request: cannot specify both 'shorten' and 'extend'",
    );
    let r = fx
        .call(
            "expire",
            signed(&a, json!({"messages": [h1.clone()], "expiry": []}), b"x"),
        )
        .await;
    assert_text(
        &r,
        400,
        "invalid request: 'expiry' does not contain any expiration timestamps",
    );
    let r = fx
        .call(
            "expire",
            signed(
                &a,
                json!({"messages": [h1.clone()], "expiry": [e, e, e]}),
                b"x",
            ),
        )
        .await;
    assert_text(
        &r,
        400,
        "invalid request: 'expiry' must be a single expiry, or the same length as 'messages'",
    );
}

#[tokio::test]
async fn expire_all_only_shortens() {
    let fx = fixture();
    let a = acct();
    let h1 = fx.put(&a, 0, NOW, DAY, b"1").await;
    let _h2 = fx.put(&a, 0, NOW, 10_000 + 1, b"2").await;
    let e = NOW + 20_000;
    let r = fx
        .call(
            "expire_all",
            signed(
                &a,
                json!({"expiry": e}),
                format!("expire_all{e}").as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([h1.clone()]));
    let node_msg = format!("{}{e}{h1}", a.pubkey_hex());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    let r = fx
        .call(
            "expire_all",
            signed(
                &a,
                json!({"expiry": e, "namespace": "all"}),
                format!("expire_allall{e}").as_bytes(),
            ),
        )
        .await;
    assert_eq!(
        r.json_body().unwrap()["swarm"][fx.node_hex()]["updated"],
        json!({})
    );
    let past = NOW - 61_000;
    let r = fx
        .call(
            "expire_all",
            signed(
                &a,
                json!({"expiry": past}),
                format!("expire_all{past}").as_bytes(),
            ),
        )
        .await;
    assert_text(&r, 406, "expire_all timestamp should be >= current time");
    let r = fx
        .call(
            "expire_all",
            signed(&a, json!({"expiry": e}), b"expire_all"),
        )
        .await;
    assert_text(&r, 401, "expire_all signature verification failed");
}

#[tokio::test]
async fn get_expiries_map_without_t_and_hf() {
    let fx = fixture();
    let a = acct();
    let h1 = fx.put(&a, 0, NOW, DAY, b"1").await;
    let msgs = vec![h1.clone(), "all".to_string()];
    let r = fx
        .call(
            "get_expiries",
            signed(
                &a,
                json!({"messages": msgs, "timestamp": NOW}),
                format!("get_expiries{NOW}{}", msgs.concat()).as_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json_body().unwrap(),
        &json!({"expiries": {h1.clone(): NOW + DAY}})
    );
    let ts = NOW + 61_000;
    let r = fx
        .call(
            "get_expiries",
            signed(
                &a,
                json!({"messages": [h1.clone()], "timestamp": ts}),
                format!("get_expiries{ts}{h1}").as_bytes(),
            ),
        )
        .await;
    assert_text(&r, 406, "get_expiries timestamp too far from current time");
    let r = fx
        .call(
            "get_expiries",
            signed(&a, json!({"messages": [h1], "timestamp": NOW}), b"x"),
        )
        .await;
    assert_text(&r, 401, "get_expiries signature verification failed");
}

// ---------------------------------------------------------------------------------------------
// subaccounts
// ---------------------------------------------------------------------------------------------

/// A group account and a member key, with a token of `flags`.
struct Sub {
    group: Identity,
    pk_hex: String,
    member: Identity,
    token: [u8; 36],
}

impl Sub {
    fn new(flags: u8) -> Sub {
        let group = Identity::from_seed(&[41u8; 32]);
        let member = Identity::from_seed(&[42u8; 32]);
        let mut pk = [0u8; 33];
        pk[0] = 0x03;
        pk[1..].copy_from_slice(group.ed25519_public().as_bytes());
        let mut token = [0u8; 36];
        token[0] = 0x03;
        token[1] = flags;
        token[4..].copy_from_slice(member.ed25519_public().as_bytes());
        Sub {
            group,
            pk_hex: hex::encode(pk),
            member,
            token,
        }
    }
    fn params(&self, mut p: Value, msg: &[u8]) -> Value {
        p["pubkey"] = json!(self.pk_hex);
        p["subaccount"] = json!(b64(self.token));
        p["subaccount_sig"] = json!(b64(self.group.sign(&self.token)));
        p["signature"] = json!(b64(self.member.sign(msg)));
        p
    }
    fn owner_signed(&self, mut p: Value, msg: &[u8]) -> Value {
        p["pubkey"] = json!(self.pk_hex);
        p["signature"] = json!(b64(self.group.sign(msg)));
        p
    }
}

#[tokio::test]
async fn subaccount_permissions_and_revocation() {
    let fx = fixture();
    let rw = Sub::new(0x03);
    // Store with a read+write token (namespace 11), then retrieve with it.
    let p = rw.params(
        json!({"namespace": 11, "timestamp": NOW, "ttl": DAY, "data": b64(b"s")}),
        format!("store11{NOW}").as_bytes(),
    );
    assert_eq!(fx.call("store", p).await.status, 200);
    let retrieve = |s: &Sub, ns: i16| {
        let ns_s = if ns == 0 {
            String::new()
        } else {
            ns.to_string()
        };
        s.params(
            json!({"namespace": ns, "timestamp": NOW}),
            format!("retrieve{ns_s}{NOW}").as_bytes(),
        )
    };
    let r = fx.call("retrieve", retrieve(&rw, 11)).await;
    assert_eq!(
        r.json_body().unwrap()["messages"].as_array().unwrap().len(),
        1
    );
    // A read-only token cannot store.
    let ro = Sub::new(0x01);
    let p = ro.params(
        json!({"namespace": 11, "timestamp": NOW, "ttl": DAY, "data": b64(b"t")}),
        format!("store11{NOW}").as_bytes(),
    );
    assert_text(
        &fx.call("store", p).await,
        401,
        "store signature verification failed",
    );
    // A token without delete cannot shorten.
    let h = message_hash(&rw.token_owner(), 11, b"s").to_string();
    let e = NOW + 1000;
    let p = rw.params(
        json!({"messages": [h.clone()], "expiry": e, "shorten": true}),
        format!("expireshorten{e}{h}").as_bytes(),
    );
    assert_text(
        &fx.call("expire", p).await,
        400,
        "expire: shorten parameter cannot be used with this subaccount token (missing delete access)",
    );
    // …and a plain expire is treated as extend-only (no change to an earlier expiry).
    let p = rw.params(
        json!({"messages": [h.clone()], "expiry": e}),
        format!("expire{e}{h}").as_bytes(),
    );
    let r = fx.call("expire", p).await;
    assert_eq!(
        r.json_body().unwrap()["swarm"][fx.node_hex()]["updated"],
        json!([])
    );
    // A token for another prefix fails unless AnyPrefix.
    let mut other = Sub::new(0x03);
    other.token[0] = 0x05;
    assert_text(
        &fx.call("retrieve", retrieve(&other, 11)).await,
        401,
        "retrieve signature verification failed",
    );
    let mut any = Sub::new(0x0b);
    any.token[0] = 0x05;
    assert_eq!(fx.call("retrieve", retrieve(&any, 11)).await.status, 200);

    // Revoke the rw token: it can no longer read 11, but can still read -11.
    let msg = [
        b"revoke_subaccount".as_slice(),
        NOW.to_string().as_bytes(),
        &rw.token,
    ]
    .concat();
    let p = rw.owner_signed(json!({"revoke": b64(rw.token), "timestamp": NOW}), &msg);
    let r = fx.call("revoke_subaccount", p).await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    let node_msg = [rw.pk_hex.as_bytes(), NOW.to_string().as_bytes(), &rw.token].concat();
    assert!(fx.node_verifies(&node_msg, own["signature"].as_str().unwrap()));
    assert_text(
        &fx.call("retrieve", retrieve(&rw, 11)).await,
        401,
        "retrieve signature verification failed",
    );
    assert_eq!(fx.call("retrieve", retrieve(&rw, -11)).await.status, 200);
    // The list, then unrevoke (count 1) and the token works again.
    let p = rw.owner_signed(
        json!({"timestamp": NOW}),
        format!("revoked_subaccounts{NOW}").as_bytes(),
    );
    let r = fx.call("revoked_subaccounts", p).await;
    assert_eq!(
        r.json_body().unwrap()["revoked_subaccounts"],
        json!([b64(rw.token)])
    );
    let msg = [
        b"unrevoke_subaccount".as_slice(),
        NOW.to_string().as_bytes(),
        &rw.token,
    ]
    .concat();
    let p = rw.owner_signed(
        json!({"unrevoke": [hex::encode(rw.token)], "timestamp": NOW}),
        &msg,
    );
    let r = fx.call("unrevoke_subaccount", p).await;
    assert_eq!(r.json_body().unwrap()["swarm"][fx.node_hex()]["count"], 1);
    assert_eq!(fx.call("retrieve", retrieve(&rw, 11)).await.status, 200);
    // Errors.
    let p = rw.owner_signed(
        json!({"revoke": b64(rw.token), "timestamp": NOW - 61_000}),
        b"x",
    );
    assert_text(
        &fx.call("revoke_subaccount", p).await,
        406,
        "revoke_subaccount timestamp too far from current time",
    );
    let p = rw.owner_signed(json!({"unrevoke": b64(rw.token), "timestamp": NOW}), b"x");
    assert_text(
        &fx.call("unrevoke_subaccount", p).await,
        401,
        "unrevoke_subaccount signature verification failed",
    );
    let p = rw.owner_signed(json!({"revoke": "nope", "timestamp": NOW}), b"x");
    assert_text(
        &fx.call("revoke_subaccount", p).await,
        400,
        "invalid request: invalid revoke: expected base64 or hex-encoded subaccount tag",
    );
    let many: Vec<String> = (0..51).map(|_| b64(rw.token)).collect();
    let p = rw.owner_signed(json!({"revoke": many, "timestamp": NOW}), b"x");
    assert_text(
        &fx.call("revoke_subaccount", p).await,
        400,
        "invalid request: invalid revoke: cannot revoke more than 50 subaccounts at once",
    );
    let mut p = rw.params(json!({"namespace": 11, "timestamp": NOW}), b"x");
    p.as_object_mut().unwrap().remove("subaccount_sig");
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: invalid subaccount: subaccount_sig is required when using subaccount",
    );
    let mut p = rw.params(json!({"namespace": 11, "timestamp": NOW}), b"x");
    p["subaccount"] = json!("xyz");
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: invalid subaccount: expected base64 or hex-encoded subaccount token",
    );
}

impl Sub {
    fn token_owner(&self) -> AccountId {
        let v = hex::decode(&self.pk_hex).unwrap();
        AccountId::try_from(v.as_slice()).unwrap()
    }
}

/// The spec's subaccount vector (`groups-config-attachments.json`, `subaccount_auth_member`,
/// from libsession's tests): the node accepts the request the client side (`umbra-groups`,
/// checked against the same vector) makes, refuses it tampered, and refuses it once the token
/// is revoked. Both sides' checks are thereby pinned to the same bytes.
#[tokio::test]
async fn the_specs_subaccount_vector_is_accepted_until_revoked() {
    let path = format!(
        "{}/../../../shared/vectors/groups-config-attachments.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "subaccount_auth_member")
        .unwrap()
        .clone();
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let seed: [u8; 32] = hex::decode(s("group_seed")).unwrap().try_into().unwrap();
    let group = Identity::from_seed(&seed);
    let mut pk = [0u8; 33];
    pk[0] = 0x03;
    pk[1..].copy_from_slice(group.ed25519_public().as_bytes());
    // "retrieve" ‖ namespace 999 ‖ timestamp, as the vector's message says.
    let msg = s("message_utf8");
    assert_eq!(msg, "retrieve9991693340111000");
    let now = 1_693_340_111_000;
    let request = |signature: &str| {
        json!({
            "pubkey": hex::encode(pk),
            "namespace": 999,
            "timestamp": now,
            "subaccount": s("subaccount_b64"),
            "subaccount_sig": s("subaccount_sig_b64"),
            "signature": signature,
        })
    };
    let fx = fixture();
    let r = fx
        .call_at(now, "retrieve", request(&s("signature_b64")))
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let mut sig = params::b64_decode(&s("signature_b64")).unwrap();
    sig[0] ^= 1;
    assert_text(
        &fx.call_at(now, "retrieve", request(&b64(&sig))).await,
        401,
        "retrieve signature verification failed",
    );

    let token = params::b64_decode(&s("subaccount_b64")).unwrap();
    let revoke_msg = [
        b"revoke_subaccount".as_slice(),
        now.to_string().as_bytes(),
        &token,
    ]
    .concat();
    let p = json!({
        "pubkey": hex::encode(pk),
        "revoke": s("subaccount_b64"),
        "timestamp": now,
        "signature": b64(group.sign(&revoke_msg)),
    });
    assert_eq!(fx.call_at(now, "revoke_subaccount", p).await.status, 200);
    assert_text(
        &fx.call_at(now, "retrieve", request(&s("signature_b64")))
            .await,
        401,
        "retrieve signature verification failed",
    );
}

// ---------------------------------------------------------------------------------------------
// swarms
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn get_swarm_and_wrong_swarm() {
    let fx = fixture();
    let a = acct();
    let r = fx
        .call("get_swarm", json!({"pubkey": a.pubkey_hex()}))
        .await;
    assert_eq!(r.status, 200);
    let body = r.json_body().unwrap();
    assert_eq!(body["swarm"], "0");
    assert_eq!(body["snodes"][0]["pubkey_ed25519"], fx.node_hex());
    assert_eq!(body["snodes"][0]["ip"], "10.1.2.3");
    assert_eq!(body["snodes"][0]["port_https"], 22021);
    assert_eq!(body["t"], NOW);
    let r = fx
        .call("get_snodes_for_pubkey", json!({"pubKey": a.pubkey_hex()}))
        .await;
    assert_eq!(r.status, 200);
    let r = fx.call("get_swarm", json!({"pubkey": "05"})).await;
    assert_text(
        &r,
        400,
        "invalid request: Pubkey must be 66 hex digits/33 bytes long",
    );

    // Two swarms; find an account that maps to the other one.
    let view = two_swarms(&fx.state.identity);
    let foreign = (1..200u64)
        .map(TestAccount::new)
        .find(|t| view.swarm_for(&t.pubkey_bytes()) == Some(1 << 63))
        .unwrap();
    fx.state.swarm.set(view);
    let r = fx
        .call("store", foreign.store_params(0, NOW, DAY, b"x"))
        .await;
    assert_eq!(r.status, 421);
    let body = r.json_body().unwrap();
    assert_eq!(body["swarm"], format!("{:x}", 1u64 << 63));
    assert_eq!(body["snodes"][0]["pubkey_ed25519"], hex::encode([5u8; 32]));
    assert_eq!(body["snodes"][0]["port_https"], 1234);
    assert_eq!(body["t"], NOW);
    assert_eq!(body["hf"], json!([19, 3]));
    let r = fx.call("retrieve", foreign.retrieve_params(0, NOW)).await;
    assert_eq!(r.status, 421);
    // No swarm information at all: not ready.
    fx.state.swarm.set(SwarmView::empty(
        umbra_crypto::Ed25519PublicKey::from_bytes([0; 32]),
    ));
    let r = fx.call("retrieve", a.retrieve_params(0, NOW)).await;
    assert_text(
        &r,
        503,
        "Service node is not ready: no swarm information yet\n",
    );
}

// ---------------------------------------------------------------------------------------------
// batch, sequence, ifelse
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn batch_and_sequence() {
    let fx = fixture();
    let a = acct();
    let ok_store = json!({"method": "store", "params": a.store_params(0, NOW, DAY, b"b1")});
    let bad_store = json!({"method": "store", "params": {"pubkey": a.pubkey_hex(), "namespace": 33, "timestamp": NOW, "ttl": DAY, "data": ""}});
    let info = json!({"method": "info", "params": {}});
    let r = fx
        .call(
            "batch",
            json!({"requests": [ok_store.clone(), bad_store.clone(), info.clone()]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let results = r.json_body().unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["code"], 200);
    assert!(results[0]["body"]["swarm"].is_object());
    assert_eq!(results[0]["body"]["t"], NOW);
    assert_eq!(
        results[1],
        json!({"code": 401, "body": "store: signature required to store to namespace 33"})
    );
    assert_eq!(results[2]["body"]["version"], json!([2, 8, 0]));
    assert!(r.json_body().unwrap().get("t").is_none());
    let r = fx
        .call(
            "sequence",
            json!({"requests": [info.clone(), bad_store.clone(), info.clone()]}),
        )
        .await;
    let results = r.json_body().unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 2);
    // Parse errors.
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({}),
            "invalid request: Invalid batch request: no valid \"requests\" field",
        ),
        (
            json!({"requests": []}),
            "invalid request: Invalid batch request: no valid \"requests\" field",
        ),
        (
            json!({"requests": vec![info.clone(); 21]}),
            "invalid request: Invalid batch request: subrequest limit exceeded",
        ),
        (
            json!({"requests": [5]}),
            "invalid request: Invalid batch request: requests must be objects",
        ),
        (
            json!({"requests": [{"method": "info"}]}),
            "invalid request: Invalid batch request: subrequests must have method/params keys",
        ),
        (
            json!({"requests": [{"method": "zap", "params": {}}]}),
            "invalid request: Invalid batch subrequest: invalid method \"zap\"",
        ),
        (
            json!({"requests": [{"method": "batch", "params": {"requests": [info.clone()]}}]}),
            "invalid request: Invalid batch subrequest: subrequests may not contain meta-requests",
        ),
        (
            json!({"requests": [{"method": "store", "params": {}}]}),
            "invalid request: Required field 'timestamp' missing",
        ),
    ];
    for (p, want) in cases {
        assert_text(&fx.call("batch", p).await, 400, want);
    }
}

#[tokio::test]
async fn ifelse_conditions_and_nesting() {
    let fx = fixture();
    let info = json!({"method": "info", "params": {}});
    let r = fx.call("ifelse", json!({"if": {"hf_at_least": [19, 0]}, "then": info, "else": {"method": "sequence", "params": {"requests": [info]}}})).await;
    assert_eq!(r.status, 200);
    let body = r.json_body().unwrap();
    assert_eq!(body["condition"], true);
    assert_eq!(body["hf"], json!([19, 3]));
    assert_eq!(body["v"], json!([2, 8, 0]));
    // storage-rpc-addendum.md A4: 582 088 + ⌊(1 700 000 000 − 1 595 359 932) / 120⌋.
    assert_eq!(body["height"], 1_454_088);
    assert_eq!(body["result"]["code"], 200);
    assert_eq!(body["result"]["body"]["version"], json!([2, 8, 0]));
    // Parse errors in a branch fail the whole request, even if not taken.
    let r = fx.call("ifelse", json!({"if": {"v_at_least": [2, 2]}, "then": info, "else": {"method": "get_swarm", "params": {"pubkey": "x"}}})).await;
    assert_text(
        &r,
        400,
        "invalid request: Pubkey must be 66 hex digits/33 bytes long",
    );
    let r = fx
        .call(
            "ifelse",
            json!({"if": {"hf_before": [19], "height_at_least": 0}, "then": info}),
        )
        .await;
    let body = r.json_body().unwrap();
    assert_eq!(body["condition"], false);
    assert!(body.get("result").is_none());
    // Nested: an ifelse whose branch is a batch.
    let r = fx.call("ifelse", json!({"if": {"v_before": [3]}, "then": {"method": "ifelse", "params": {"if": {"height_at_least": 10}, "then": {"method": "batch", "params": {"requests": [info]}}}}})).await;
    let body = r.json_body().unwrap();
    assert_eq!(
        body["result"]["body"]["result"]["body"]["results"][0]["code"],
        200
    );
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"then": info}),
            "invalid request: Invalid ifelse request: no valid \"if\" field",
        ),
        (
            json!({"if": {}, "then": info}),
            "invalid request: Invalid ifelse request: must specify at least one \"if\" condition",
        ),
        (
            json!({"if": {"hf_at_least": []}, "then": info}),
            "invalid request: Invalid ifelse request: must specify at least one \"if\" condition",
        ),
        (
            json!({"if": {"height_before": 1}}),
            "invalid request: Invalid ifelse request: at least one of \"then\"/\"else\" required",
        ),
        (
            json!({"if": {"height_before": 1}, "then": 3}),
            "invalid request: Invalid ifelse request: then must be an object",
        ),
        (
            json!({"if": {"height_before": 1}, "else": {"method": "info"}}),
            "invalid request: Invalid ifelse request: else must have method/params keys",
        ),
        (
            json!({"if": {"height_before": 1}, "then": {"method": "zap", "params": {}}}),
            "invalid request: Invalid ifelse request method \"then\"",
        ),
        (
            json!({"if": {"height_before": "x"}, "then": info}),
            "invalid request: Invalid value given for 'height_before': expected integer",
        ),
    ];
    for (p, want) in cases {
        assert_text(&fx.call("ifelse", p).await, 400, want);
    }
}

// ---------------------------------------------------------------------------------------------
// oxend_request
// ---------------------------------------------------------------------------------------------

struct StubOxend;

impl Oxend for StubOxend {
    fn request(&self, endpoint: &str, params: Option<Value>) -> OxendFuture<'_> {
        let endpoint = endpoint.to_string();
        Box::pin(async move {
            match params
                .as_ref()
                .and_then(|p| p.get("mode"))
                .and_then(Value::as_str)
            {
                Some("garbage") => Err(OxendError::Unparsable),
                Some("error") => Err(OxendError::Rpc("bad things".into())),
                _ => Ok(json!({"endpoint": endpoint, "service_node_states": []})),
            }
        })
    }
}

#[tokio::test]
async fn oxend_request_proxies_to_the_registry() {
    let fx = fixture_with(|s| s.with_oxend(Arc::new(StubOxend)));
    let r = fx
        .call(
            "oxend_request",
            json!({"endpoint": "get_service_nodes", "params": {"active_only": true}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json_body().unwrap();
    assert_eq!(body["result"]["endpoint"], "get_service_nodes");
    assert_eq!(body["t"], NOW);
    let r = fx
        .call("oxend_request", json!({"endpoint": "get_block"}))
        .await;
    assert_text(
        &r,
        400,
        "invalid request: Invalid oxend endpoint 'get_block'",
    );
    let r = fx.call("oxend_request", json!({})).await;
    assert_text(
        &r,
        400,
        "invalid request: Required field 'endpoint' missing",
    );
    let r = fx
        .call(
            "oxend_request",
            json!({"endpoint": "get_service_nodes", "params": {"mode": "garbage"}}),
        )
        .await;
    assert_text(&r, 502, "oxend returned unparsable data");
    let r = fx
        .call(
            "oxend_request",
            json!({"endpoint": "get_service_nodes", "params": {"mode": "error"}}),
        )
        .await;
    assert_text(&r, 400, "bad things");
    let plain = fixture();
    let r = plain
        .call("oxend_request", json!({"endpoint": "get_service_nodes"}))
        .await;
    assert_text(&r, 503, "Service node is not ready: registry unavailable\n");
}

// ---------------------------------------------------------------------------------------------
// replication seam
// ---------------------------------------------------------------------------------------------

struct FakePeers;

impl Replicator for FakePeers {
    fn replicate(&self, req: RecursiveRequest) -> ReplicateFuture<'_> {
        Box::pin(async move {
            let mut m = crate::replicate::MemberResults::new();
            m.insert("aa".repeat(32), json!({"failed": true, "timeout": true}));
            m.insert(
                "bb".repeat(32),
                json!({"method": req.method, "params_seen": req.params.get("pubkey").is_some()}),
            );
            m
        })
    }
}

#[tokio::test]
async fn recursive_replies_merge_member_results_and_forwarded_requests_do_not() {
    let fx = fixture_with(|s| s.with_replicator(Arc::new(FakePeers)));
    let a = acct();
    let r = fx.call("store", a.store_params(0, NOW, DAY, b"r")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let swarm = r.json_body().unwrap()["swarm"].as_object().unwrap().clone();
    assert_eq!(swarm.len(), 3);
    assert_eq!(
        swarm[&"aa".repeat(32)],
        json!({"failed": true, "timeout": true})
    );
    assert_eq!(
        swarm[&"bb".repeat(32)],
        json!({"method": "store", "params_seen": true})
    );
    assert!(swarm[&fx.node_hex()]["signature"].is_string());
    // A forwarded store: own result only, no t, not forwarded again.
    let r = handle_forwarded(&fx.state, NOW, "store", &a.store_params(0, NOW, DAY, b"f")).await;
    assert_eq!(r.status, 200);
    let body = r.json_body().unwrap();
    assert!(body.get("swarm").is_none() && body.get("t").is_none());
    assert_eq!(
        body["hash"],
        message_hash(&a.pubkey_bytes(), 0, b"f").as_str()
    );
}

#[tokio::test]
async fn a_forwarded_copy_trusts_the_entry_nodes_signature_check() {
    let fx = fixture();
    let a = acct();
    // A store to a private namespace whose signature is another account's.
    let mut p = a.store_params(2, NOW, DAY, b"copy");
    p["signature"] = TestAccount::new(2).store_params(2, NOW, DAY, b"copy")["signature"].clone();
    // From a client: refused (§5.1).
    assert_text(
        &fx.call("store", p.clone()).await,
        401,
        "store signature verification failed",
    );
    assert!(fx.fetch(&a, 2).await.is_empty());
    // Forwarded by a member (which checked it; the peer service authenticated the member):
    // applied without checking again.
    let r = handle_forwarded(&fx.state, NOW, "store", &p).await;
    assert_eq!(r.status, 200, "{r:?}");
    let stored = fx.fetch(&a, 2).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["data"], json!(b64(b"copy")));
    // What is not a signature check still applies to a copy: a private namespace needs a
    // signature at all, and the TTL rule holds.
    let mut unsigned = a.store_params(3, NOW, DAY, b"x");
    unsigned.as_object_mut().unwrap().remove("signature");
    assert_text(
        &handle_forwarded(&fx.state, NOW, "store", &unsigned).await,
        401,
        "store: signature required to store to namespace 3",
    );
    let r = handle_forwarded(&fx.state, NOW, "store", &a.store_params(2, NOW, 1, b"y")).await;
    assert_text(&r, 403, "Provided expiry/TTL is not valid.");
}

#[tokio::test]
async fn quota_failure_names_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        quota: umbra_store::Quota {
            max_messages: 1,
            max_bytes: 1 << 20,
        },
        ..StoreConfig::default()
    };
    let store = Store::open(dir.path().join("store"), cfg).unwrap();
    let identity = Identity::from_seed(&[9u8; 32]);
    let view = SwarmView::single(me(&identity));
    let fx = Fx {
        state: Arc::new(NodeState::new(identity, store, SwarmHandle::new(view))),
        _dir: dir,
    };
    let a = acct();
    fx.put(&a, 0, NOW, DAY, b"1").await;
    let r = fx.call("store", a.store_params(0, NOW, DAY, b"2")).await;
    assert_eq!(r.status, 500, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["failed"], true);
    assert_eq!(own["query_failure"], true);
    assert!(
        own["reason"].as_str().unwrap().contains("message count"),
        "{own}"
    );
}

// ----- long-poll retrieve (`crate::longpoll`) -------------------------------------------------

/// Waits (without a clock) until `n` retrieves are long-polling on `state`.
async fn until_waiting(state: &NodeState, n: usize) {
    while state.long_poll.waiting() != n {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

fn messages(r: &RpcResponse) -> Vec<Value> {
    r.json_body().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_long_poll_retrieve_answers_as_soon_as_a_message_arrives() {
    let fx = fixture();
    let a = acct();
    let first = fx.put(&a, 0, NOW, DAY, b"old").await;
    let mut p = a.retrieve_params(0, NOW);
    p["last_hash"] = json!(first);
    p["umbra_wait_ms"] = json!(20_000);
    let state = fx.state.clone();
    let store = a.store_params(0, NOW + 1, DAY, b"new");
    let writer = tokio::spawn(async move {
        until_waiting(&state, 1).await;
        handle_method(&state, NOW, "store", &store).await
    });
    let r = fx.call("retrieve", p).await;
    assert_eq!(writer.await.unwrap().status, 200);
    assert_eq!(r.status, 200, "{r:?}");
    let got = messages(&r);
    assert_eq!(got.len(), 1, "woken by the store, not by the deadline");
    assert_eq!(got[0]["data"], b64(b"new"));
    assert_eq!(fx.state.long_poll.woken(), 1);
    assert_eq!(fx.state.long_poll.waiting(), 0, "the slot is given back");
}

#[tokio::test]
async fn a_long_poll_with_nothing_new_answers_empty_at_its_deadline_stamped_then() {
    let fx = fixture();
    let a = acct();
    let mut p = a.retrieve_params(0, NOW);
    p["umbra_wait_ms"] = json!(300);
    let t0 = SystemClock.instant();
    let r = fx.call("retrieve", p).await;
    assert!(SystemClock.since(t0) >= std::time::Duration::from_millis(300));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(messages(&r).is_empty());
    assert_eq!(r.json_body().unwrap()["more"], false);
    let t = r.json_body().unwrap()["t"].as_i64().unwrap();
    assert!(t >= NOW + 300, "t is the time of the answer: {t}");
    // A message already there is answered at once, whatever the wait asked for.
    fx.put(&a, 0, NOW, DAY, b"here").await;
    let mut p = a.retrieve_params(0, NOW);
    p["umbra_wait_ms"] = json!(20_000);
    assert_eq!(messages(&fx.call("retrieve", p).await).len(), 1);
    // A wait that is not a number is a parse error like any other.
    let mut p = a.retrieve_params(0, NOW);
    p["umbra_wait_ms"] = json!("soon");
    assert_eq!(fx.call("retrieve", p).await.status, 400);
}

#[tokio::test]
async fn a_retrieve_inside_a_batch_never_waits() {
    let fx = fixture();
    let a = acct();
    let mut p = a.retrieve_params(0, NOW);
    p["umbra_wait_ms"] = json!(20_000);
    let t0 = SystemClock.instant();
    let r = fx
        .call(
            "batch",
            json!({"requests": [{"method": "retrieve", "params": p}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json_body().unwrap()["results"][0]["code"], 200);
    assert!(
        SystemClock.since(t0) < std::time::Duration::from_secs(15),
        "answered without waiting"
    );
}

#[tokio::test]
async fn stopping_the_node_ends_every_wait_and_refuses_new_ones() {
    let fx = fixture();
    let a = acct();
    let mut p = a.retrieve_params(0, NOW);
    p["umbra_wait_ms"] = json!(20_000);
    let state = fx.state.clone();
    let params = p.clone();
    let waiter = tokio::spawn(async move { handle_method(&state, NOW, "retrieve", &params).await });
    until_waiting(&fx.state, 1).await;
    let t0 = SystemClock.instant();
    fx.state.long_poll.stop();
    let r = waiter.await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(messages(&r).is_empty());
    let r = fx.call("retrieve", p).await;
    assert_eq!(r.status, 200);
    assert!(
        SystemClock.since(t0) < std::time::Duration::from_secs(15),
        "neither the waiting nor the new retrieve held on"
    );
    assert_eq!(fx.state.long_poll.waiting(), 0);
}

// ---------------------------------------------------------------------------------------------
// storage-rpc-addendum.md A1–A5
// ---------------------------------------------------------------------------------------------

fn page_hashes(r: &RpcResponse) -> Vec<String> {
    messages(r)
        .iter()
        .map(|m| m["hash"].as_str().unwrap().to_string())
        .collect()
}

/// A1, the worked example: 50 000-byte messages count 66 809 bytes each, so `max_count: 500`
/// without `max_size` returns 116 of them (7 749 844 bytes), with `more: true`.
#[tokio::test]
async fn retrieve_with_only_max_count_is_cut_at_7_8_mb() {
    let fx = fixture();
    let a = acct();
    let mut hashes = Vec::new();
    for i in 0..120u32 {
        let mut data = i.to_be_bytes().to_vec();
        data.resize(50_000, 7);
        hashes.push(fx.put(&a, 0, NOW - 1000 + i64::from(i), DAY, &data).await);
    }
    let mut p = a.retrieve_params(0, NOW);
    p["max_count"] = json!(500);
    let r = fx.call("retrieve", p).await;
    assert_eq!(r.status, 200);
    assert_eq!(page_hashes(&r), hashes[..116]);
    assert_eq!(r.json_body().unwrap()["more"], true);
    let first = &messages(&r)[0];
    assert_eq!(first["data"].as_str().unwrap().len(), 66_668);
    // The next page holds the last 4 and reaches the end.
    let mut p = a.retrieve_params(0, NOW);
    p["max_count"] = json!(500);
    p["last_hash"] = json!(hashes[115]);
    let r = fx.call("retrieve", p).await;
    assert_eq!(page_hashes(&r), hashes[116..]);
    assert_eq!(r.json_body().unwrap()["more"], false);
    // A negative max_count acts as 1.
    let mut p = a.retrieve_params(0, NOW);
    p["max_count"] = json!(-4);
    let r = fx.call("retrieve", p).await;
    assert_eq!(
        (page_hashes(&r), &r.json_body().unwrap()["more"]),
        (vec![hashes[0].clone()], &json!(true))
    );
    // Neither limit: 1 560 000 bytes, 23 messages (23 × 66 809 = 1 536 607).
    let r = fx.call("retrieve", a.retrieve_params(0, NOW)).await;
    assert_eq!(page_hashes(&r), hashes[..23]);
    assert_eq!(r.json_body().unwrap()["more"], true);
}

/// A2: `reverse_direction` pages newest first, backwards from `last_hash`; it is not signed.
#[tokio::test]
async fn retrieve_reverse_direction_pages_backwards() {
    let fx = fixture();
    let a = acct();
    let mut hashes = Vec::new();
    for i in 0..5u8 {
        hashes.push(fx.put(&a, 0, NOW - 100 + i64::from(i), DAY, &[i]).await);
    }
    let reverse = |last: Option<&str>, max_count: Option<i64>| {
        // Signed exactly as a forward retrieve: "retrieve" || ns || timestamp.
        let mut p = a.retrieve_params(0, NOW);
        p["reverse_direction"] = json!(true);
        if let Some(l) = last {
            p["last_hash"] = json!(l);
        }
        if let Some(n) = max_count {
            p["max_count"] = json!(n);
        }
        p
    };
    let r = fx.call("retrieve", reverse(None, None)).await;
    assert_eq!(r.status, 200, "{r:?}");
    let want: Vec<Value> = (0..5u8)
        .rev()
        .map(|i| {
            json!({"data": b64([i]), "expiration": NOW - 100 + i64::from(i) + DAY,
                "hash": hashes[usize::from(i)], "timestamp": NOW - 100 + i64::from(i)})
        })
        .collect();
    let mut body = r.json_body().unwrap().clone();
    assert_eq!(body["hf"], json!([19, 3]));
    body.as_object_mut().unwrap().remove("t");
    body.as_object_mut().unwrap().remove("hf");
    assert_eq!(body, json!({"messages": want, "more": false}));
    // Pages of 2, the last (oldest) element of each page as the next cursor.
    let r = fx.call("retrieve", reverse(None, Some(2))).await;
    assert_eq!(page_hashes(&r), [hashes[4].clone(), hashes[3].clone()]);
    assert_eq!(r.json_body().unwrap()["more"], true);
    let r = fx
        .call("retrieve", reverse(Some(&hashes[3]), Some(2)))
        .await;
    assert_eq!(page_hashes(&r), [hashes[2].clone(), hashes[1].clone()]);
    assert_eq!(r.json_body().unwrap()["more"], true);
    let r = fx
        .call("retrieve", reverse(Some(&hashes[1]), Some(2)))
        .await;
    assert_eq!(page_hashes(&r), [hashes[0].clone()]);
    assert_eq!(r.json_body().unwrap()["more"], false);
    // The oldest message as cursor: nothing older.
    let r = fx.call("retrieve", reverse(Some(&hashes[0]), None)).await;
    let mut body = r.json_body().unwrap().clone();
    body.as_object_mut().unwrap().remove("t");
    body.as_object_mut().unwrap().remove("hf");
    assert_eq!(body, json!({"messages": [], "more": false}));
    // Unknown or empty last_hash: from the newest.
    for unknown in ["A".repeat(43), String::new()] {
        let r = fx.call("retrieve", reverse(Some(&unknown), Some(1))).await;
        assert_eq!(page_hashes(&r), [hashes[4].clone()]);
        assert_eq!(r.json_body().unwrap()["more"], true);
    }
    // false is the forward order; a non-boolean is a parse error.
    let mut p = a.retrieve_params(0, NOW);
    p["reverse_direction"] = json!(false);
    p["max_count"] = json!(2);
    let r = fx.call("retrieve", p).await;
    assert_eq!(page_hashes(&r), hashes[..2]);
    let mut p = a.retrieve_params(0, NOW);
    p["reverse_direction"] = json!("yes");
    assert_text(
        &fx.call("retrieve", p).await,
        400,
        "invalid request: Invalid value given for 'reverse_direction': expected boolean",
    );
}

/// A3: an explicit `extend: true` skips extensions below 1 % of the message's lifetime
/// (30-day message: 7.2 h); skipped messages are in `unchanged` with their current expiry.
#[tokio::test]
async fn explicit_extend_skips_trivial_extensions() {
    const HOUR: i64 = 3_600_000;
    let fx = fixture();
    let a = acct();
    let h = fx.put(&a, 1, NOW, 30 * DAY, b"thirty days").await;
    let current = NOW + 30 * DAY;
    let later = NOW + DAY;
    let expire = |e: i64, flag: &str| {
        let mut p = json!({"messages": [h.clone()], "expiry": e});
        if !flag.is_empty() {
            p[flag] = json!(true);
        }
        signed(&a, p, format!("expire{flag}{e}{h}").as_bytes())
    };
    // + 1 h with extend: skipped.
    let e = current + HOUR;
    let r = fx.call_at(later, "expire", expire(e, "extend")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    let mut unchanged = BTreeMap::new();
    unchanged.insert(h.clone(), current);
    assert_eq!(own["updated"], json!([]));
    assert_eq!(own["unchanged"], json!(unchanged));
    assert_eq!(own["expiry"], e);
    let node_msg = format!("{}{e}{h}{h}{current}", a.pubkey_hex());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // A forwarded copy of the same request (what swarm peers get) decides the same.
    let r = handle_forwarded(&fx.state, later, "expire", &expire(e, "extend")).await;
    let body = r.json_body().unwrap();
    assert_eq!(
        (&body["updated"], &body["unchanged"]),
        (&json!([]), &json!(unchanged))
    );
    // + 8 h with extend: applied.
    let e8 = current + 8 * HOUR;
    let r = fx.call_at(later, "expire", expire(e8, "extend")).await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([h.clone()]));
    assert_eq!(own["unchanged"], json!({}));
    let node_msg = format!("{}{e8}{h}{h}", a.pubkey_hex());
    assert!(fx.node_verifies(node_msg.as_bytes(), own["signature"].as_str().unwrap()));
    // Without `extend` the rule does not apply: a plain + 1 min is set.
    let e9 = e8 + 60_000;
    let r = fx.call_at(later, "expire", expire(e9, "")).await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([h.clone()]));
    assert!(own.get("unchanged").is_none());
}

/// A3: a subaccount without Delete sending neither flag is extend-only, but trivial extensions
/// are applied and there is no `unchanged` key; with its own `extend: true` they are skipped.
#[tokio::test]
async fn implicit_extend_only_of_a_subaccount_applies_trivial_extensions() {
    let fx = fixture();
    let rw = Sub::new(0x03);
    let p = rw.params(
        json!({"namespace": 11, "timestamp": NOW, "ttl": 30 * DAY, "data": b64(b"s")}),
        format!("store11{NOW}").as_bytes(),
    );
    assert_eq!(fx.call("store", p).await.status, 200);
    let h = message_hash(&rw.token_owner(), 11, b"s").to_string();
    let later = NOW + DAY;
    let e = NOW + 30 * DAY + 60_000;
    let p = rw.params(
        json!({"messages": [h.clone()], "expiry": e}),
        format!("expire{e}{h}").as_bytes(),
    );
    let r = fx.call_at(later, "expire", p).await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([h.clone()]));
    assert!(own.get("unchanged").is_none());
    let e2 = e + 60_000;
    let p = rw.params(
        json!({"messages": [h.clone()], "expiry": e2, "extend": true}),
        format!("expireextend{e2}{h}").as_bytes(),
    );
    let r = fx.call_at(later, "expire", p).await;
    let own = &r.json_body().unwrap()["swarm"][fx.node_hex()];
    assert_eq!(own["updated"], json!([]));
    assert_eq!(own["unchanged"], json!({h.clone(): e}));
}

/// A4: `ifelse` compares against the chain-scale height of the request's clock.
#[tokio::test]
async fn ifelse_height_is_the_chain_scale_estimate() {
    let fx = fixture();
    let info = json!({"method": "info", "params": {}});
    let cond = |r: &RpcResponse| r.json_body().unwrap()["condition"].clone();
    let r = fx
        .call(
            "ifelse",
            json!({"if": {"height_before": 1234}, "then": info}),
        )
        .await;
    assert_eq!(
        r.json_body().unwrap(),
        &json!({"hf": [19, 3], "v": [2, 8, 0], "height": 1_454_088, "condition": false})
    );
    let r = fx
        .call(
            "ifelse",
            json!({"if": {"height_at_least": 1_454_088, "height_before": 1_454_089}, "then": info}),
        )
        .await;
    assert_eq!(cond(&r), true);
    // Two minutes later the height is one more.
    let r = fx
        .call_at(
            NOW + 120_000,
            "ifelse",
            json!({"if": {"height_at_least": 1_454_089}, "then": info}),
        )
        .await;
    assert_eq!(r.json_body().unwrap()["height"], 1_454_089);
    assert_eq!(cond(&r), true);
    // The node-list epoch does not leak into it.
    fx.state.set_list_epoch(7);
    let r = fx
        .call("ifelse", json!({"if": {"height_before": 8}, "then": info}))
        .await;
    assert_eq!(cond(&r), false);
}

/// A5: more than 50 tokens is a parse error of `revoke_subaccount` only, before the 421,
/// timestamp and signature checks.
#[tokio::test]
async fn revoke_limit_is_checked_first_and_only_for_revoke() {
    let fx = fixture();
    // Two swarms; an account that maps to the other one.
    let view = two_swarms(&fx.state.identity);
    let foreign = (1..200u64)
        .map(TestAccount::new)
        .find(|t| view.swarm_for(&t.pubkey_bytes()) == Some(1 << 63))
        .unwrap();
    fx.state.swarm.set(view);
    let tokens = |n: u8| -> Vec<String> { (0..n).map(|i| b64([i; 36])).collect() };
    // Stale timestamp, wrong signature, wrong swarm: the count error still comes first.
    let stale = NOW - 3_600_000;
    let p = signed(
        &foreign,
        json!({"revoke": tokens(51), "timestamp": stale}),
        b"nonsense",
    );
    assert_text(
        &fx.call("revoke_subaccount", p).await,
        400,
        "invalid request: invalid revoke: cannot revoke more than 50 subaccounts at once",
    );
    let p = signed(
        &foreign,
        json!({"revoke": tokens(50), "timestamp": stale}),
        b"nonsense",
    );
    assert_eq!(fx.call("revoke_subaccount", p).await.status, 421);
    // unrevoke has no count limit: 51 tokens get as far as the swarm check.
    let p = signed(
        &foreign,
        json!({"unrevoke": tokens(51), "timestamp": stale}),
        b"nonsense",
    );
    assert_eq!(fx.call("unrevoke_subaccount", p).await.status, 421);
}

/// A5: `unrevoke_subaccount` takes any number of tokens; `count` is how many listed tokens were
/// removed (duplicates once); both signatures cover every requested token in request order.
#[tokio::test]
async fn unrevoke_takes_any_number_and_counts_removed_tokens() {
    let fx = fixture();
    let rw = Sub::new(0x03);
    let tok = |i: u8| {
        let mut t = rw.token;
        t[35] = i;
        t
    };
    // Revoke 40 tokens (0..40) in one request.
    let revoked: Vec<[u8; 36]> = (0..40).map(tok).collect();
    let msg = [
        b"revoke_subaccount".as_slice(),
        NOW.to_string().as_bytes(),
        &revoked.concat(),
    ]
    .concat();
    let list: Vec<String> = revoked.iter().map(b64).collect();
    let p = rw.owner_signed(json!({"revoke": list, "timestamp": NOW}), &msg);
    let r = fx.call("revoke_subaccount", p).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Unrevoke 64 tokens: 30 revoked ones, one of them twice, and 33 never revoked (100..133),
    // hex and base64 mixed.
    let mut requested: Vec<[u8; 36]> = (10..40).map(tok).collect();
    requested.push(tok(12));
    requested.extend((100..133).map(tok));
    assert_eq!(requested.len(), 64);
    let list: Vec<String> = requested
        .iter()
        .enumerate()
        .map(|(i, t)| if i % 2 == 0 { hex::encode(t) } else { b64(t) })
        .collect();
    let msg = [
        b"unrevoke_subaccount".as_slice(),
        NOW.to_string().as_bytes(),
        &requested.concat(),
    ]
    .concat();
    let p = rw.owner_signed(json!({"unrevoke": list, "timestamp": NOW}), &msg);
    let r = fx.call("unrevoke_subaccount", p).await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json_body().unwrap();
    assert_eq!(body["t"], NOW);
    assert_eq!(body["hf"], json!([19, 3]));
    let own = &body["swarm"][fx.node_hex()];
    assert_eq!(own["count"], 30);
    assert_eq!(own.as_object().unwrap().len(), 2);
    let node_msg = [
        rw.pk_hex.as_bytes(),
        NOW.to_string().as_bytes(),
        &requested.concat(),
    ]
    .concat();
    assert!(fx.node_verifies(&node_msg, own["signature"].as_str().unwrap()));
    // Tokens 0..10 remain revoked, newest first.
    let p = rw.owner_signed(
        json!({"timestamp": NOW}),
        format!("revoked_subaccounts{NOW}").as_bytes(),
    );
    let r = fx.call("revoked_subaccounts", p).await;
    let want: Vec<String> = (0..10).rev().map(|i| b64(tok(i))).collect();
    assert_eq!(r.json_body().unwrap()["revoked_subaccounts"], json!(want));
}
