#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The node over real HTTPS on 127.0.0.1:0: RPC round trips, the HTTP layer's exact error
//! replies, metrics, rate limiting, and a restart on the same data directory.

use serde_json::{Value, json};
use umbra_node::testing::{
    TestAccount, TestNode, https_client, now_ms, raw_https, rpc, test_config,
};

fn status_line(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn body_of(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw).to_string();
    s.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_retrieve_over_https_and_restart_keeps_everything() {
    let node = TestNode::start().await.unwrap();
    let client = https_client().unwrap();
    let url = node.rpc_url();
    let a = TestAccount::new(11);

    let (status, body) = rpc(&client, &url, "info", json!({})).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["version"], json!([2, 8, 0]));

    let mut hashes = Vec::new();
    for i in 0..25u8 {
        let ns = if i % 2 == 0 { 0 } else { 3 };
        let (status, body) = rpc(
            &client,
            &url,
            "store",
            a.store_params(ns, now_ms(), 86_400_000, &[i; 100]),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        hashes.push((ns, v["hash"].as_str().unwrap().to_string()));
    }
    let (_, body) = rpc(
        &client,
        &url,
        "get_swarm",
        json!({"pubkey": a.pubkey_hex()}),
    )
    .await
    .unwrap();
    let swarm_before: Value = serde_json::from_str(&body).unwrap();

    let node = node.restart().await.unwrap();
    let url = node.rpc_url();
    for ns in [0i16, 3] {
        let (status, body) = rpc(&client, &url, "retrieve", a.retrieve_params(ns, now_ms()))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let got: Vec<String> = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["hash"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = hashes
            .iter()
            .filter(|(n, _)| *n == ns)
            .map(|(_, h)| h.clone())
            .collect();
        assert_eq!(got, want, "namespace {ns}");
    }
    // Same identity after the restart.
    let (_, body) = rpc(
        &client,
        &url,
        "get_swarm",
        json!({"pubkey": a.pubkey_hex()}),
    )
    .await
    .unwrap();
    let swarm_after: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        swarm_before["snodes"][0]["pubkey_ed25519"],
        swarm_after["snodes"][0]["pubkey_ed25519"]
    );

    // Metrics on the operator port.
    let metrics = reqwest::get(node.metrics_url())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("umbra_node_requests_total{method=\"retrieve\",status=\"200\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("umbra_node_messages_stored 25"),
        "{metrics}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_layer_errors_are_exact() {
    let node = TestNode::start_with(|c| c.limits.max_body_bytes = 1000)
        .await
        .unwrap();
    let addr = node.node().unwrap().client_addr();
    let client = https_client().unwrap();

    // Unknown path and method.
    let r = client
        .get(format!("{}/foo", node.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.text().await.unwrap(), "GET /foo Not Found");
    // Obsolete long polling.
    let r = client
        .post(node.rpc_url())
        .header("X-Loki-Long-Poll", "true")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);
    assert_eq!(
        r.text().await.unwrap(),
        "long polling is no longer supported, client upgrade required"
    );
    // Not JSON.
    let r = client
        .post(node.rpc_url())
        .body("\u{0}\u{1}garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "invalid json");

    // A declared body over the limit is refused before it is sent.
    let req = b"POST /storage_rpc/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 20000000\r\n\r\n";
    let raw = raw_https(addr, req).await.unwrap();
    assert_eq!(status_line(&raw), "HTTP/1.1 413 Payload Too Large");
    assert_eq!(body_of(&raw), "Request body too large");
    // Unparsable Content-Length.
    let req = b"POST /storage_rpc/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 12abc\r\n\r\n";
    let raw = raw_https(addr, req).await.unwrap();
    assert!(
        status_line(&raw).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    // A chunked body that grows past the limit.
    let mut req = b"POST /storage_rpc/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'a'; 0x200]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let raw = raw_https(addr, &req).await.unwrap();
    assert_eq!(status_line(&raw), "HTTP/1.1 413 Payload Too Large");
    assert_eq!(body_of(&raw), "Request body too large");
    // The node is still fine.
    let (status, _) = rpc(&client, &node.rpc_url(), "info", json!({}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429() {
    let node = TestNode::start_with(|c| {
        c.rate_limit.burst = 1;
        c.rate_limit.per_second = 1;
    })
    .await
    .unwrap();
    let client = https_client().unwrap();
    let mut limited = None;
    for _ in 0..20 {
        let r = client
            .post(node.rpc_url())
            .json(&json!({"method": "info", "params": {}}))
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r.text().await.unwrap());
            break;
        }
    }
    assert_eq!(limited.as_deref(), Some("Too Many Requests\n"));
    node.stop().await;
}

/// `NodeBuilder::clock`: the node answers with the time of the clock it was given, and accepts
/// a store stamped with that time although the machine's clock is years away from it.
#[tokio::test]
async fn a_node_built_with_a_clock_reads_time_from_it() {
    const THEN: u64 = 1_600_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let clock = std::sync::Arc::new(umbra_clock::ManualClock::new(THEN));
    let builder = umbra_node::NodeBuilder::new(config.clone()).clock(clock.clone());
    let node = TestNode::start_builder(dir, config, builder).await.unwrap();
    let client = https_client().unwrap();
    let (status, body) = rpc(&client, &node.rpc_url(), "info", json!({}))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let t = |body: &str| serde_json::from_str::<Value>(body).unwrap()["t"].clone();
    assert_eq!(t(&body), THEN);
    clock.advance(5_000);
    let (_, body) = rpc(&client, &node.rpc_url(), "info", json!({}))
        .await
        .unwrap();
    assert_eq!(t(&body), THEN + 5_000);

    let account = TestAccount::new(41);
    let then = i64::try_from(THEN).unwrap() + 5_000;
    let (status, body) = rpc(
        &client,
        &node.rpc_url(),
        "store",
        account.store_params(0, then, 86_400_000, b"from the past"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _) = rpc(
        &client,
        &node.rpc_url(),
        "store",
        account.store_params(0, now_ms(), 86_400_000, b"from the machine's now"),
    )
    .await
    .unwrap();
    assert_eq!(
        status, 406,
        "a timestamp far from the node's clock is refused"
    );
}

/// One HTTP/2 connection (another node relaying many clients' onion requests) can hold more
/// long-polls than hyper's default of 200 streams: all 250 wait at the node at once, and a
/// store on the same connection is answered while they wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_http2_connection_carries_more_than_200_long_polls() {
    const POLLS: usize = 250;
    let node = TestNode::start_with(|c| c.rate_limit.enabled = false)
        .await
        .unwrap();
    let state = node.node().unwrap().state().clone();
    let client = https_client().unwrap();
    let url = node.rpc_url();
    // Open the connection first, so every poll shares it.
    let r = client
        .post(&url)
        .json(&json!({"method": "info", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let a = TestAccount::new(12);
    let polls: Vec<_> = (0..POLLS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            let mut p = a.retrieve_params(0, now_ms());
            p["umbra_wait_ms"] = json!(20_000);
            tokio::spawn(async move { rpc(&client, &url, "retrieve", p).await })
        })
        .collect();
    // Bounded by the polls' own 20 s: before they end, all of them must be waiting.
    let mut waited = 0;
    while state.long_poll.waiting() < POLLS {
        assert!(
            waited < 15_000,
            "only {} of {POLLS} long-polls reached the node over one connection",
            state.long_poll.waiting()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 10;
    }
    let (status, body) = rpc(
        &client,
        &url,
        "store",
        a.store_params(0, now_ms(), 86_400_000, b"wake"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    for p in polls {
        let (status, body) = p.await.unwrap().unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["messages"].as_array().unwrap().len(),
            1,
            "woken by the store"
        );
    }
    node.stop().await;
}
